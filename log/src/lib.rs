//! One partition's append-only log on disk: segments, offset and time indexes, append,
//! read-from-offset, recovery, roll, retention and the fsync policy.
//!
//! # Layout
//! A partition is a directory of segments named by base offset (`00000000000000000000.log`), each
//! with a sparse offset index (`.index`) and a time index (`.timeindex`); docs/FORMAT.md gives
//! every byte. The unit of storage is the Kafka v2 record batch, stored as the producer sent it
//! except for the base offset and leader epoch that the log assigns (both outside the CRC).
//!
//! # Write path
//! [`Log::append`] validates and queues batches in memory (no I/O). [`Log::flush`] writes
//! everything queued through glommio's io_uring DMA path (O_DIRECT, aligned buffers, preallocated
//! files) and, with [`FsyncPolicy::Batch`], fdatasyncs before returning; concurrent flushes share
//! one write and one sync (group commit). A flush that returned means the bytes are in the file.
//!
//! # Read path
//! [`Log::read`] serves recent batches from an in-memory tail cache and older ones from the
//! segment files through DMA reads, checking each batch read from disk again.
//!
//! # Recovery
//! [`Log::open`] scans the last segment and ends the log at the first batch whose length, magic,
//! CRC-32C or offset does not check; indexes that are missing, stale or damaged are rebuilt.
//!
//! # Traps
//! glommio's DMA reads fail with `EOPNOTSUPP` on a thread whose first `DmaFile` was empty;
//! [`prepare_thread_io`] (called by `Log::open`) avoids it. O_DIRECT needs aligned positions and
//! lengths (`DmaFile::alignment()`); the appender keeps the last partial block in memory for it.

#![deny(missing_docs)]

pub mod batch;
mod clock;
mod config;
mod error;
mod io;
pub mod limits;
mod log;
mod offset;
mod producer_snapshot;
mod segment;
mod tail_cache;
pub mod testing;

pub use crate::clock::{Clock, SystemClock};
pub use crate::config::{FsyncPolicy, LogConfig};
pub use crate::error::LogError;
pub use crate::io::{prepare_thread_io, remove_in_background};
pub use crate::log::{
    AppendInfo, Cleanable, CompactionOutcome, IoStats, Log, RetentionOutcome, RoundObserver,
    TxnFate,
};
pub use crate::offset::Offset;
pub use crate::producer_snapshot::{ProducerSnapshot, RecoveredProducers};
#[doc(hidden)]
pub use crate::segment::SegmentIndex;
