//! Writes from a thread of its own. At high event rates the write(2) calls
//! (the kernel's copy into the page cache) are about a third of the agent's
//! CPU; on this thread they run beside the event reader, which keeps
//! draining the kernel's ring while a write blocks.
use std::{
    io::{self, Write},
    mem,
    sync::{
        mpsc::{self, Receiver, SyncSender},
        Arc, Mutex,
    },
    thread::{self, JoinHandle},
};

/// Bytes gathered before they are handed to the writer thread.
const CHUNK_BYTES: usize = 256 << 10;
/// Chunks queued for the writer thread; past that the reader waits, so the
/// memory held is bounded (a few MiB), and the kernel counts what its ring
/// cannot hold meanwhile.
const CHUNKS_QUEUED: usize = 8;

pub struct BackgroundWriter {
    chunk: Vec<u8>,
    full: Option<SyncSender<Vec<u8>>>,
    empty: Receiver<Vec<u8>>,
    failure: Arc<Mutex<Option<io::Error>>>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundWriter {
    pub fn spawn(name: &str, mut out: Box<dyn Write + Send>) -> io::Result<Self> {
        let (full, chunks) = mpsc::sync_channel::<Vec<u8>>(CHUNKS_QUEUED);
        let (recycle, empty) = mpsc::channel();
        let failure = Arc::new(Mutex::new(None));
        let report = failure.clone();
        let thread = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                for mut chunk in chunks {
                    if let Err(e) = out.write_all(&chunk).and_then(|()| out.flush()) {
                        if let Ok(mut slot) = report.lock() {
                            slot.get_or_insert(e);
                        }
                    }
                    chunk.clear();
                    // The owner may be gone already; then nothing needs the buffer.
                    let _ = recycle.send(chunk);
                }
            })?;
        Ok(BackgroundWriter {
            chunk: Vec::with_capacity(CHUNK_BYTES),
            full: Some(full),
            empty,
            failure,
            thread: Some(thread),
        })
    }

    fn hand_over(&mut self) -> io::Result<()> {
        let next = self
            .empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK_BYTES));
        let chunk = mem::replace(&mut self.chunk, next);
        let sent = self.full.as_ref().map(|full| full.send(chunk));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the writer thread has stopped",
            )),
        }
    }

    /// Lets `fill` append to the chunk in place (serializers write straight
    /// into it, saving a copy of every event), then hands a full chunk over.
    pub fn append<E>(&mut self, fill: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> io::Result<()>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.take_failure()?;
        let mark = self.chunk.len();
        if let Err(e) = fill(&mut self.chunk) {
            self.chunk.truncate(mark);
            return Err(io::Error::other(e));
        }
        if self.chunk.len() >= CHUNK_BYTES {
            self.hand_over()?;
        }
        Ok(())
    }

    /// A write that failed on the writer thread, reported once.
    fn take_failure(&self) -> io::Result<()> {
        match self.failure.lock().ok().and_then(|mut slot| slot.take()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Write for BackgroundWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.take_failure()?;
        self.chunk.extend_from_slice(buf);
        if self.chunk.len() >= CHUNK_BYTES {
            self.hand_over()?;
        }
        Ok(buf.len())
    }

    /// Hands what is gathered to the writer thread without waiting for the disk.
    fn flush(&mut self) -> io::Result<()> {
        self.take_failure()?;
        if !self.chunk.is_empty() {
            self.hand_over()?;
        }
        Ok(())
    }
}

impl Drop for BackgroundWriter {
    /// Everything accepted is written before the writer goes.
    fn drop(&mut self) {
        if !self.chunk.is_empty() {
            let _ = self.hand_over();
        }
        self.full = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn everything_written_arrives_in_order_by_drop() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut w = BackgroundWriter::spawn("test-writer", Box::new(Shared(seen.clone()))).unwrap();
        let mut expected = Vec::new();
        for i in 0..100_000u32 {
            let line = format!("{i:08}\n");
            w.write_all(line.as_bytes()).unwrap();
            expected.extend_from_slice(line.as_bytes());
        }
        drop(w);
        assert_eq!(*seen.lock().unwrap(), expected);
    }

    struct Failing;
    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_is_reported_to_the_caller() {
        let mut w = BackgroundWriter::spawn("test-writer", Box::new(Failing)).unwrap();
        w.write_all(b"line\n").unwrap();
        w.flush().unwrap();
        let mut failed = false;
        for _ in 0..1000 {
            if w.write_all(b"line\n").is_err() {
                failed = true;
                break;
            }
            thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(failed);
    }
}
