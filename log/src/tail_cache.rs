//! The tail cache: the most recent batches, in memory, so consumers at the tail never touch the
//! disk.
//!
//! It holds a contiguous run of batches ending at the log end (it also holds batches appended but
//! not yet written; reads only ever see those below the high watermark). When it grows past its
//! byte budget the oldest batches leave; reads for older offsets go to the segment files. The
//! batches are `Bytes` sharing the buffer the append copied them into, so a read is a few
//! reference-count increments.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::offset::Offset;

/// A batch with its offsets, as held in memory.
#[derive(Debug, Clone)]
pub(crate) struct CachedBatch {
    pub base: Offset,
    pub last: Offset,
    pub max_timestamp: i64,
    pub bytes: Bytes,
}

/// The most recent batches of a log, bounded in bytes.
#[derive(Debug)]
pub(crate) struct TailCache {
    batches: VecDeque<CachedBatch>,
    bytes: usize,
    capacity_bytes: usize,
}

impl TailCache {
    /// An empty cache holding at most `capacity_bytes` (always at least the newest batch).
    pub fn new(capacity_bytes: usize) -> Self {
        TailCache {
            batches: VecDeque::new(),
            bytes: 0,
            capacity_bytes,
        }
    }

    /// Changes the capacity, evicting the oldest batches beyond it at once.
    pub fn set_capacity(&mut self, capacity_bytes: usize) {
        self.capacity_bytes = capacity_bytes;
        while self.bytes > self.capacity_bytes && self.batches.len() > 1 {
            self.pop_front();
        }
    }

    /// Bytes of batches held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds the newest batch, evicting the oldest ones beyond the budget.
    pub fn push(&mut self, batch: CachedBatch) {
        if let Some(back) = self.batches.back() {
            assert_eq!(
                back.last.plus(1),
                batch.base,
                "the tail cache stays contiguous"
            );
        }
        self.bytes += batch.bytes.len();
        self.batches.push_back(batch);
        while self.bytes > self.capacity_bytes && self.batches.len() > 1 {
            self.pop_front();
        }
    }

    /// Whole batches from the one holding `from`, below `end`, up to `max_bytes` (at least one),
    /// or `None` if the cache does not reach back to `from`.
    pub fn read(&self, from: Offset, end: Offset, max_bytes: usize) -> Option<Vec<Bytes>> {
        if self.batches.front()?.base > from {
            return None;
        }
        let first = self.batches.partition_point(|b| b.last < from);
        let mut out = Vec::new();
        let mut total = 0usize;
        for b in self.batches.range(first..) {
            if b.base >= end || (!out.is_empty() && total + b.bytes.len() > max_bytes) {
                break;
            }
            total += b.bytes.len();
            out.push(b.bytes.clone());
        }
        Some(out)
    }

    /// Drops every batch at or after `cut` (a batch boundary).
    pub fn truncate_from(&mut self, cut: Offset) {
        while self.batches.back().is_some_and(|b| b.last >= cut) {
            let b = self.batches.pop_back().expect("checked non-empty");
            self.bytes -= b.bytes.len();
        }
    }

    /// Drops every batch that ends before `start` (the one holding `start` stays).
    pub fn drop_before(&mut self, start: Offset) {
        while self.batches.front().is_some_and(|b| b.last < start) {
            self.pop_front();
        }
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.batches.clear();
        self.bytes = 0;
    }

    fn pop_front(&mut self) {
        if let Some(b) = self.batches.pop_front() {
            self.bytes -= b.bytes.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(base: u64, last: u64, len: usize) -> CachedBatch {
        CachedBatch {
            base: Offset(base),
            last: Offset(last),
            max_timestamp: 0,
            bytes: Bytes::from(vec![0u8; len]),
        }
    }

    #[test]
    fn reads_evicts_truncates() {
        let mut c = TailCache::new(300);
        c.push(b(0, 9, 100));
        c.push(b(10, 19, 100));
        c.push(b(20, 29, 100));
        assert_eq!(
            c.read(Offset(15), Offset(30), 150).map(|v| v.len()),
            Some(1)
        );
        assert_eq!(
            c.read(Offset(15), Offset(30), 200).map(|v| v.len()),
            Some(2)
        );
        assert_eq!(
            c.read(Offset(15), Offset(20), 1000).map(|v| v.len()),
            Some(1)
        );
        c.push(b(30, 39, 100));
        assert!(c.read(Offset(5), Offset(40), 1000).is_none());
        c.truncate_from(Offset(30));
        assert_eq!(
            c.read(Offset(10), Offset(40), 1000).map(|v| v.len()),
            Some(2)
        );
        c.drop_before(Offset(20));
        assert!(c.read(Offset(10), Offset(40), 1000).is_none());
        c.push(b(30, 39, 100));
        c.set_capacity(100);
        assert_eq!(c.bytes(), 100);
        assert!(c.read(Offset(20), Offset(40), 1000).is_none());
    }
}
