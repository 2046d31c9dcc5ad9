//! The consumer side of a BPF ring buffer map, read straight from its
//! memory. libbpf's consumer maps the data area twice in a row, so that a
//! record crossing the end reads as one slice: every page of the ring is then
//! counted twice in the agent's RSS (16 MiB for the 8 MiB ring). Here the
//! data is mapped once and a record crossing the end comes in two parts.
//! libbpf also publishes the consumer position after every record, a cache
//! line the producing CPU reads for every reservation; here it is published
//! once per `PUBLISH_BYTES` and at the end of each read.
use std::{
    io,
    os::fd::{AsFd, AsRawFd, OwnedFd},
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::Duration,
};

use libbpf_rs::{MapCore, MapHandle, MapType};
use memmap2::{Mmap, MmapMut, MmapOptions};

/// The kernel's record header: a 32-bit length with two flag bits, then the
/// record's page offset (of no use to a reader).
const HEADER_BYTES: u64 = 8;
/// Set while the producer is still writing the record.
const BUSY_BIT: u32 = 1 << 31;
/// Set when the producer gave the record up: skip it.
const DISCARD_BIT: u32 = 1 << 30;
/// The consumer position is published at least this often during a read,
/// so that a long read frees space for the producer as it goes.
const PUBLISH_BYTES: u64 = 256 << 10;

pub struct KernelRing {
    fd: OwnedFd,
    /// The first page: the consumer position, the one part user space writes.
    consumer: MmapMut,
    /// The producer position's page followed by the data area, mapped once.
    producer: Mmap,
    page: usize,
    mask: u64,
}

/// What one read of the ring found.
pub struct Taken {
    /// Ring space the read gave back, headers and discarded records included.
    pub bytes: u64,
    /// True when the read stopped at the last committed record.
    pub drained: bool,
}

impl KernelRing {
    pub fn open(map: &MapHandle) -> io::Result<Self> {
        if map.map_type() != MapType::RingBuf {
            return Err(io::Error::other(format!(
                "map {} is a {:?}, not a ring buffer",
                map.name().to_string_lossy(),
                map.map_type()
            )));
        }
        let size = map.max_entries() as usize;
        if !size.is_power_of_two() {
            return Err(io::Error::other(format!(
                "ring buffer size {size} is not a power of two"
            )));
        }
        let fd = map.as_fd().try_clone_to_owned()?;
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .map_err(|_| io::Error::other("no page size"))?;
        let raw = fd.as_raw_fd();
        // SAFETY: the kernel owns these pages for the map's lifetime, which
        // the duplicated fd extends past the mappings'; the kernel lets user
        // space write only the consumer page, and this struct only ever
        // reads the producer mapping through atomics and copies.
        let consumer = unsafe { MmapOptions::new().len(page).map_mut(raw)? };
        let producer = unsafe {
            MmapOptions::new()
                .offset(page as u64)
                .len(page + size)
                .map(raw)?
        };
        Ok(Self {
            fd,
            consumer,
            producer,
            page,
            mask: size as u64 - 1,
        })
    }

    /// Hands the committed records in order to `record` (as one part, or two
    /// when it crosses the ring's end) until none is left or `max_records`
    /// were taken; the space they took is given back to the kernel.
    pub fn take(
        &mut self,
        max_records: usize,
        mut record: impl FnMut(&[u8], &[u8]),
    ) -> io::Result<Taken> {
        // SAFETY: the consumer position sits at the start of the writable,
        // page-aligned consumer mapping, which `self` keeps for longer than
        // this call; only this reader writes it, the kernel only reads it.
        let consumer_pos = unsafe { AtomicU64::from_ptr(self.consumer.as_mut_ptr().cast()) };
        let mut cons = consumer_pos.load(Ordering::Relaxed);
        let mut published = cons;
        let start = cons;
        let mut records = 0;
        let mut drained = false;
        // Read again only when the records known committed are used up: the
        // producing CPU writes this line for every record.
        let mut prod = self.producer_pos().load(Ordering::Acquire);
        while records < max_records {
            if cons >= prod {
                prod = self.producer_pos().load(Ordering::Acquire);
                if cons >= prod {
                    drained = true;
                    break;
                }
            }
            let len = self.header(cons).load(Ordering::Acquire);
            if len & BUSY_BIT != 0 {
                // Reserved earlier than a record already committed: records
                // are taken in order, so wait for it.
                drained = true;
                break;
            }
            let body = u64::from(len & !(BUSY_BIT | DISCARD_BIT));
            if body + HEADER_BYTES > self.mask + 1 {
                return Err(io::Error::other(format!(
                    "ring buffer record of {body} bytes at {cons}: larger than the ring"
                )));
            }
            if len & DISCARD_BIT == 0 {
                let (first, second) = self.body(cons + HEADER_BYTES, body as usize);
                record(first, second);
                records += 1;
            }
            cons += (body + HEADER_BYTES + 7) & !7;
            if cons - published >= PUBLISH_BYTES {
                consumer_pos.store(cons, Ordering::Release);
                published = cons;
            }
        }
        if cons != published {
            consumer_pos.store(cons, Ordering::Release);
        }
        Ok(Taken {
            bytes: cons - start,
            drained,
        })
    }

    /// Sleeps until the ring has data the kernel woke readers for, or
    /// `timeout` ends; a signal ending the wait early is no error.
    pub fn wait(&self, timeout: Duration) -> io::Result<()> {
        let mut poll = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one pollfd, owned by this frame, for the duration of the call.
        if unsafe { libc::poll(&mut poll, 1, ms) } < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        Ok(())
    }

    /// How far the kernel has reserved records, at the start of the producer
    /// mapping.
    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: page-aligned, inside the mapping, which outlives the
        // returned reference; only read here, written by the kernel.
        unsafe { &*(self.producer.as_ptr() as *const AtomicU64) }
    }

    /// The header of the record at ring position `pos`.
    fn header(&self, pos: u64) -> &AtomicU32 {
        let at = self.page + (pos & self.mask) as usize;
        // SAFETY: the header is 8-byte aligned inside the data area (the
        // kernel rounds every record to 8 bytes and the area's size is a
        // multiple of the page size), so it is in the mapping whole.
        unsafe { &*(self.producer[at..].as_ptr() as *const AtomicU32) }
    }

    /// The `len` bytes at ring position `pos`: one slice, or two when they
    /// cross the end of the data area.
    fn body(&self, pos: u64, len: usize) -> (&[u8], &[u8]) {
        let data = &self.producer[self.page..];
        let start = (pos & self.mask) as usize;
        let first = len.min(data.len() - start);
        (&data[start..start + first], &data[..len - first])
    }
}
