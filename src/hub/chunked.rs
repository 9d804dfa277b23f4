//! One large file as parallel ranged requests, handed on strictly in order.
//!
//! Up to `connections` workers each claim the next chunk, fetch its byte range into a reused
//! buffer and leave it in a shared queue. Two consumers take the chunks in order, each at its own
//! pace: the calling thread appends them to the file, another thread hashes them. Fetched but
//! not yet consumed chunks are bounded (`2 × connections`), so one slow chunk cannot pile up
//! memory, and the first failure of any thread stops them all.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use sha2::{Digest, Sha256};

use super::http::{ByteSink, HubHttp};
use crate::error::{Error, Result};
use crate::observe::Cancellation;
use crate::sync::{into_inner, lock, wait};

/// Work on a chunk's bytes by one consumer; an error stops the download.
type Work<'w> = dyn FnMut(&[u8]) -> Result<()> + 'w;

/// The bytes `range` of one file, fetched as parallel ranged chunks.
pub struct ChunkedDownload<'a> {
    http: &'a HubHttp,
    url: &'a str,
    range: Range<u64>,
    chunk_bytes: u64,
    chunk_count: usize,
    connections: usize,
    on_bytes: &'a (dyn Fn(u64) + Sync),
    queue: Mutex<ChunkQueue>,
    /// Signalled whenever the queue changes: a chunk arrived, was consumed, or a thread failed.
    changed: Condvar,
    /// Set by the first failure, so that chunks in flight stop receiving.
    stop: AtomicBool,
    /// The run's cancellation: once raised, chunks in flight stop receiving too.
    cancellation: &'a Cancellation,
}

impl<'a> ChunkedDownload<'a> {
    /// A download of bytes `range` of `url` in ranged requests of `chunk_bytes`, up to
    /// `connections` at once; `on_bytes` hears every piece received. A raised `cancellation`
    /// stops it as a failure does.
    pub fn new(
        http: &'a HubHttp,
        url: &'a str,
        range: Range<u64>,
        chunk_bytes: u64,
        connections: usize,
        on_bytes: &'a (dyn Fn(u64) + Sync),
        cancellation: &'a Cancellation,
    ) -> ChunkedDownload<'a> {
        let chunk_bytes = chunk_bytes.max(1);
        let chunk_count = (range.end - range.start).div_ceil(chunk_bytes) as usize;
        ChunkedDownload {
            http,
            url,
            range,
            chunk_bytes,
            chunk_count,
            connections: connections.clamp(1, chunk_count.max(1)),
            on_bytes,
            queue: Mutex::new(ChunkQueue {
                next_to_fetch: 0,
                appended: 0,
                hashed: 0,
                ready: BTreeMap::new(),
                failure: None,
                spare: Vec::new(),
            }),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            cancellation,
        }
    }

    /// Runs the download: the chunks go in order to `append` on this thread and, when given,
    /// to `hasher` on another. Returns the bytes transferred.
    pub fn run(self, append: &mut Work<'_>, hasher: Option<&mut Sha256>) -> Result<u64> {
        if hasher.is_none() {
            // Nothing to hash: the hasher counts as done with every chunk from the start.
            lock(&self.queue).hashed = self.chunk_count;
        }
        std::thread::scope(|scope| {
            for _ in 0..self.connections {
                scope.spawn(|| self.fetch_chunks());
            }
            // Hashing costs about as much as the kernel's copy into the page cache; on their
            // own threads neither waits for the other, and the slower one sets the pace.
            if let Some(hasher) = hasher {
                scope.spawn(|| {
                    self.consume(Consumer::Hasher, &mut |bytes| {
                        hasher.update(bytes);
                        Ok(())
                    })
                });
            }
            self.consume(Consumer::Appender, append);
        });
        match into_inner(self.queue).failure {
            Some(error) => Err(error),
            None => Ok(self.range.end - self.range.start),
        }
    }

    /// A worker: claims and fetches chunks until none is left or something failed.
    fn fetch_chunks(&self) {
        while let Some((index, buffer)) = self.claim_chunk() {
            match self.fetch_chunk(index, buffer) {
                Ok(bytes) => {
                    lock(&self.queue).ready.insert(index, Arc::new(bytes));
                    self.changed.notify_all();
                }
                Err(error) => return self.fail(error),
            }
        }
    }

    /// The next chunk to fetch and a buffer for it, once the window of unconsumed chunks has
    /// room; `None` when every chunk is claimed or a thread failed.
    fn claim_chunk(&self) -> Option<(usize, Vec<u8>)> {
        let window = 2 * self.connections;
        let mut state = lock(&self.queue);
        while state.failure.is_none()
            && state.next_to_fetch < self.chunk_count
            && state.next_to_fetch >= state.consumed() + window
        {
            state = wait(&self.changed, state);
        }
        if state.failure.is_some() || state.next_to_fetch >= self.chunk_count {
            return None;
        }
        state.next_to_fetch += 1;
        Some((
            state.next_to_fetch - 1,
            state.spare.pop().unwrap_or_default(),
        ))
    }

    /// Fetches chunk `index` into `bytes`.
    fn fetch_chunk(&self, index: usize, mut bytes: Vec<u8>) -> Result<Vec<u8>> {
        let begin = self.range.start + index as u64 * self.chunk_bytes;
        let end = (begin + self.chunk_bytes).min(self.range.end);
        // A reused buffer of the same length is not touched; only a fresh one is zeroed, once.
        bytes.resize((end - begin) as usize, 0);
        let mut sink = ChunkSink {
            bytes: &mut bytes,
            length: 0,
            stop: &self.stop,
            cancellation: self.cancellation,
            url: self.url,
            on_bytes: self.on_bytes,
        };
        self.http.download(self.url, begin, Some(end), &mut sink)?;
        Ok(bytes)
    }

    /// Takes the chunks in order as they arrive and hands each to `work`, until all are done
    /// or a thread failed.
    fn consume(&self, consumer: Consumer, work: &mut Work<'_>) {
        while let Some(bytes) = self.next_in_order(consumer) {
            let done = work(&bytes);
            // Dropped before the chunk counts as done, so that recycling finds the last handle.
            drop(bytes);
            if let Err(error) = done {
                return self.fail(error);
            }
            let mut state = lock(&self.queue);
            *state.progress(consumer) += 1;
            state.recycle();
            self.changed.notify_all();
        }
    }

    /// The chunk `consumer` needs next, once it has arrived; `None` when it has had every
    /// chunk or a thread failed.
    fn next_in_order(&self, consumer: Consumer) -> Option<Arc<Vec<u8>>> {
        let mut state = lock(&self.queue);
        loop {
            let next = *state.progress(consumer);
            if state.failure.is_some() || next >= self.chunk_count {
                return None;
            }
            if let Some(bytes) = state.ready.get(&next) {
                return Some(bytes.clone());
            }
            state = wait(&self.changed, state);
        }
    }

    /// Records the first failure and wakes every thread, so that all of them stop.
    fn fail(&self, error: Error) {
        self.stop.store(true, Ordering::Relaxed);
        lock(&self.queue).failure.get_or_insert(error);
        self.changed.notify_all();
    }
}

/// The bookkeeping shared by chunk workers and the two in-order consumers (append, hash).
struct ChunkQueue {
    /// Index of the next chunk a worker may start.
    next_to_fetch: usize,
    /// Chunks appended to the file so far.
    appended: usize,
    /// Chunks hashed so far (all of them from the start when there is no hash to check).
    hashed: usize,
    /// Fetched chunks, kept until both consumers are past them; shared so that both can read
    /// one chunk at the same time.
    ready: BTreeMap<usize, Arc<Vec<u8>>>,
    /// The first error of any thread.
    failure: Option<Error>,
    /// Buffers of finished chunks, for reuse: fresh ones would cost a page fault per 4 KiB.
    spare: Vec<Vec<u8>>,
}

/// The two threads that take fetched chunks in order.
#[derive(Debug, Clone, Copy)]
enum Consumer {
    Appender,
    Hasher,
}

impl ChunkQueue {
    /// Chunks before this index have been appended and hashed.
    fn consumed(&self) -> usize {
        self.appended.min(self.hashed)
    }

    fn progress(&mut self, consumer: Consumer) -> &mut usize {
        match consumer {
            Consumer::Appender => &mut self.appended,
            Consumer::Hasher => &mut self.hashed,
        }
    }

    /// Moves the buffers of chunks both consumers are done with to the spares.
    fn recycle(&mut self) {
        let consumed = self.consumed();
        while let Some(entry) = self.ready.first_entry() {
            if *entry.key() >= consumed {
                return;
            }
            // Each consumer drops its handle before counting the chunk done, so this is the
            // last one; if not, the buffer is simply freed.
            if let Ok(bytes) = Arc::try_unwrap(entry.remove()) {
                self.spare.push(bytes);
            }
        }
    }
}

/// One ranged chunk, read straight into its (reused) buffer.
struct ChunkSink<'a> {
    bytes: &'a mut [u8],
    length: usize,
    stop: &'a AtomicBool,
    cancellation: &'a Cancellation,
    url: &'a str,
    on_bytes: &'a (dyn Fn(u64) + Sync),
}

impl ByteSink for ChunkSink<'_> {
    fn space(&mut self) -> &mut [u8] {
        &mut self.bytes[self.length..]
    }

    fn filled(&mut self, count: usize) -> Result<()> {
        // Another chunk failed, or the run was cancelled: stop instead of fetching bytes nobody
        // will write.
        if self.stop.load(Ordering::Relaxed) || self.cancellation.is_cancelled() {
            return Err(Error::network(format!("{}: download cancelled", self.url)));
        }
        self.length += count;
        (self.on_bytes)(count as u64);
        Ok(())
    }
}
