//! Takes the kernel's records out of its ring buffer as fast as they come,
//! on a thread of its own, into a queue that the event pipeline drains at
//! its own pace. A pipeline held up (a burst of 100,000 opens in a tenth of a
//! second, a CPU shared with the workload, a slow disk) then costs user-space
//! memory, bounded by `--event-queue-bytes`, instead of records the kernel
//! drops. With the queue full the thread stops taking records, the kernel
//! ring fills and the kernel counts what it cannot store: a record taken is
//! never dropped.
use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender},
        Arc,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{anyhow, Context, Result};
use libbpf_rs::MapHandle;

use crate::{
    agent::{boost_priority, monotonic_ns},
    kernel_ring::KernelRing,
};

/// Records taken per read of the ring, between two looks at the queue's fill.
const READ_BATCH: usize = 1024;
/// A batch is handed over once it holds this much, even if the ring still has
/// records: the pipeline starts on it while the rest is read.
const BATCH_BYTES: usize = 1 << 20;
/// Handled batches kept for reuse: fresh memory costs a page fault per 4 KiB
/// (in a VM, an exit to the hypervisor), which at a million records a second
/// kept the reader from the ring long enough for it to overflow.
const SPARE_BATCHES: usize = 2;
/// How long the reader waits for room when the queue is full.
const FULL_WAIT: Duration = Duration::from_millis(1);
/// How long the reader sleeps while records flow at BUSY_BYTES_PER_MS or
/// more: the ring is looked at again within this rather than when the
/// kernel's wakeup at a quarter of the ring comes.
const BUSY_POLL: Duration = Duration::from_millis(1);
/// The flow (ring bytes a millisecond) from which the reader polls at
/// BUSY_POLL. Below it, the usual poll: looking every millisecond at an exec
/// storm's few records a millisecond (the reader's and the pipeline's
/// wakeups preempting it a thousand times a second) doubled the agent's CPU
/// per exec and made the storm 8.6% slower than without an agent (5.1% after).
const BUSY_BYTES_PER_MS: u64 = 16 << 10;
/// How much further above normal priority than the event pipeline the
/// reader runs: it only copies records, and when it shares a CPU with the
/// pipeline at equal priority, a burst of a million records a second
/// overflowed the kernel ring (27,000 of 100,000 lost per burst, measured;
/// none at nice -15).
const READER_EXTRA_BOOST: u8 = 10;

/// Records in the order the ring gave them, stored back to back.
#[derive(Default)]
pub struct RecordBatch {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl RecordBatch {
    /// Adds a record given in one or two parts.
    fn push(&mut self, first: &[u8], second: &[u8]) {
        self.bytes.extend_from_slice(first);
        self.bytes.extend_from_slice(second);
        self.ends.push(self.bytes.len());
    }

    fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// An empty batch that keeps this one's memory (already faulted in).
    fn emptied(mut self) -> Self {
        self.bytes.clear();
        self.ends.clear();
        self
    }

    pub fn records(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.bytes[start..end])
    }
}

enum Message {
    Batch(RecordBatch),
    Failed(std::io::Error),
}

pub struct RingReader {
    batches: Receiver<Message>,
    spares: SyncSender<RecordBatch>,
    queued_bytes: Arc<AtomicUsize>,
    drained_at: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RingReader {
    /// Starts reading `ring` (a BPF ring buffer map); the reader sleeps until
    /// the kernel wakes it or `poll` passes. With a `priority_boost` (the
    /// pipeline's nice -N), the reader runs 10 further above it, at most -20.
    pub fn spawn(
        ring: MapHandle,
        poll: Duration,
        queue_bytes: usize,
        priority_boost: u8,
    ) -> Result<Self> {
        let (tx, batches) = mpsc::channel();
        let (spares, spares_rx) = mpsc::sync_channel(SPARE_BATCHES);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let drained_at = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = Reader {
            tx,
            spares: spares_rx,
            queued_bytes: queued_bytes.clone(),
            drained_at: drained_at.clone(),
            stop: stop.clone(),
            poll,
            queue_bytes,
        };
        let ring = KernelRing::open(&ring).context("mapping the ring buffer")?;
        let thread = thread::Builder::new()
            .name("vigil-ring".into())
            .spawn(move || {
                if priority_boost > 0 {
                    boost_priority(priority_boost.saturating_add(READER_EXTRA_BOOST).min(20));
                }
                reader.run(ring)
            })
            .context("starting the ring buffer reader")?;
        Ok(Self {
            batches,
            spares,
            queued_bytes,
            drained_at,
            stop,
            thread: Some(thread),
        })
    }

    /// The next batch, waiting at most `timeout` (None: nothing came).
    pub fn next(&self, timeout: Duration) -> Result<Option<RecordBatch>> {
        match self.batches.recv_timeout(timeout) {
            Ok(message) => self.taken(message).map(Some),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(self.ended()),
        }
    }

    /// Gives a handled batch back for the reader to fill again; past
    /// SPARE_BATCHES spares its memory is freed.
    pub fn recycle(&self, batch: RecordBatch) {
        let _ = self.spares.try_send(batch.emptied());
    }

    /// The time (CLOCK_MONOTONIC, the kernel's ktime) before which every
    /// record the kernel committed has been handed over, if the queue is
    /// empty: each of them is in a batch already taken. None while records
    /// are waiting in the queue.
    pub fn caught_up_to(&self) -> Option<u64> {
        // Read before the fill: the reader publishes a time only after the
        // batch its read produced was counted in the fill.
        let drained_at = self.drained_at.load(Ordering::Acquire);
        (self.queued_bytes.load(Ordering::Acquire) == 0).then_some(drained_at)
    }

    /// Stops the reader after a last read of the ring and returns what it
    /// had not handed over yet, in order.
    pub fn finish(mut self) -> Result<Vec<RecordBatch>> {
        self.stop.store(true, Ordering::Release);
        let mut rest = Vec::new();
        while let Ok(message) = self.batches.recv() {
            rest.push(self.taken(message)?);
        }
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| anyhow!("the ring buffer reader panicked"))?;
        }
        Ok(rest)
    }

    fn taken(&self, message: Message) -> Result<RecordBatch> {
        match message {
            Message::Batch(batch) => {
                self.queued_bytes
                    .fetch_sub(batch.len_bytes(), Ordering::AcqRel);
                Ok(batch)
            }
            Message::Failed(e) => Err(e).context("reading the ring buffer"),
        }
    }

    fn ended(&self) -> anyhow::Error {
        anyhow!("the ring buffer reader stopped")
    }
}

impl Drop for RingReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

struct Reader {
    tx: Sender<Message>,
    spares: Receiver<RecordBatch>,
    queued_bytes: Arc<AtomicUsize>,
    drained_at: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    poll: Duration,
    queue_bytes: usize,
}

impl Reader {
    fn run(self, mut ring: KernelRing) {
        if let Err(e) = self.read(&mut ring) {
            let _ = self.tx.send(Message::Failed(e));
        }
    }

    fn read(&self, ring: &mut KernelRing) -> std::io::Result<()> {
        let mut batch = RecordBatch::default();
        // Ring bytes taken since the reader last went to sleep, and when.
        let mut taken_bytes = 0;
        let mut slept_at = Instant::now();
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            let queued = self.queued_bytes.load(Ordering::Acquire);
            if !stopping && queued > 0 && queued >= self.queue_bytes {
                // Full (with 0, one batch at a time): leave the records in
                // the kernel ring.
                thread::sleep(FULL_WAIT);
                continue;
            }
            let started = monotonic_ns();
            let read = ring.take(READ_BATCH, |first, second| batch.push(first, second))?;
            taken_bytes += read.bytes;
            let size = batch.len_bytes();
            if size > 0 && (read.drained || size >= BATCH_BYTES) {
                let next = self.spares.try_recv().unwrap_or_default();
                let full = std::mem::replace(&mut batch, next);
                self.queued_bytes.fetch_add(size, Ordering::AcqRel);
                if self.tx.send(Message::Batch(full)).is_err() {
                    return Ok(());
                }
            }
            if read.drained {
                // Every record committed before this read began is handed over.
                self.drained_at.store(started, Ordering::Release);
                if stopping {
                    return Ok(());
                }
                let ms = slept_at.elapsed().as_millis().max(1);
                let flowing = u128::from(taken_bytes) / ms >= u128::from(BUSY_BYTES_PER_MS);
                let wait = if flowing {
                    BUSY_POLL.min(self.poll)
                } else {
                    self.poll
                };
                taken_bytes = 0;
                slept_at = Instant::now();
                ring.wait(wait)?;
            }
        }
    }
}
