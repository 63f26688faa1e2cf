//! Group commit: one thread writes the log records of every batch waiting for
//! it, issues a single `fdatasync` for all of them, and only then releases the
//! replies those records made possible.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use bytes::BytesMut;

use super::txnlog::LogWriter;

/// Work released once a batch is durable.
pub trait Deliver: Send + 'static {
    fn deliver(self);
}

/// What one round of the state machine produced.
#[derive(Debug)]
pub struct Batch<D> {
    /// Framed log records; empty for a round of reads only.
    pub log: BytesMut,
    /// A snapshot was taken at the end of this round at this zxid: the log
    /// rolls to a new file right after the round's records.
    pub snapshot: Option<i64>,
    pub deliveries: D,
}

/// The handle the state machine submits batches through.
#[derive(Debug)]
pub struct Syncer<D> {
    tx: mpsc::Sender<Batch<D>>,
    submitted: u64,
    done: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl<D: Deliver> Syncer<D> {
    pub fn start(writer: LogWriter) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let done = Arc::new(AtomicU64::new(0));
        let counter = done.clone();
        let thread = std::thread::Builder::new()
            .name("txnlog-sync".into())
            .spawn(move || run(rx, writer, counter))?;
        Ok(Self {
            tx,
            submitted: 0,
            done,
            thread,
        })
    }

    /// Waits until everything submitted is written, synced and delivered.
    pub fn close(self) {
        drop(self.tx);
        if self.thread.join().is_err() {
            tracing::error!("transaction log thread panicked");
        }
    }

    /// True when every submitted batch has been delivered, so a reply may go
    /// out directly without overtaking one still waiting for its sync.
    pub fn idle(&self) -> bool {
        self.done.load(Ordering::Acquire) == self.submitted
    }

    pub fn submit(&mut self, batch: Batch<D>) {
        self.submitted += 1;
        if self.tx.send(batch).is_err() {
            // The thread only ends after a failed write, which exits the process.
            tracing::error!("transaction log thread is gone");
        }
    }
}

/// An I/O error on the log leaves us unable to promise durability: stop.
fn fail_stop(what: &str, e: &std::io::Error) -> ! {
    tracing::error!(error = %e, "transaction log {what} failed; stopping to avoid acknowledging lost writes");
    std::process::exit(70)
}

fn run<D: Deliver>(rx: mpsc::Receiver<Batch<D>>, mut writer: LogWriter, done: Arc<AtomicU64>) {
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        // Everything queued while the last fsync ran shares the next one.
        // A snapshot closes the group: the log rolls right after its records.
        while batches.last().is_some_and(|b| b.snapshot.is_none()) {
            match rx.try_recv() {
                Ok(b) => batches.push(b),
                Err(_) => break,
            }
        }
        let mut wrote = false;
        for b in &batches {
            if !b.log.is_empty() {
                if let Err(e) = writer.append(&b.log) {
                    fail_stop("write", &e);
                }
                wrote = true;
            }
        }
        if wrote {
            if let Err(e) = writer.sync() {
                fail_stop("fdatasync", &e);
            }
        }
        let count = batches.len() as u64;
        for b in batches {
            if let Some(zxid) = b.snapshot {
                if let Err(e) = writer.roll(zxid + 1) {
                    fail_stop("roll", &e);
                }
            }
            b.deliveries.deliver();
        }
        done.fetch_add(count, Ordering::Release);
    }
}
