//! The partition log: segments, the write path, reads, and maintenance.
//!
//! A [`Log`] lives on one glommio executor and is used through `&self`, so the engine can hold it
//! in an `Rc` and serve reads while a flush is in flight. Its mutable state sits in one `RefCell`
//! that no method keeps borrowed across an `.await`: each method borrows, decides, releases, does
//! its I/O, and borrows again to record the outcome.
//!
//! Watermarks, in order: `start_offset <= high_watermark <= next_offset`. `append` moves
//! `next_offset` (memory only); a flush writes the pending batches in a round and moves
//! `high_watermark` once the round's writes have completed, which is what makes them readable
//! and acknowledged. One round is on its way at a time, and flushers share it (group commit,
//! see `group_commit`). Rolls, truncation, retention and close hold `write_lock`, which waits
//! for the round on its way and keeps new ones from starting. A roll leaves the sealed
//! segment's index files to a task of its own, which holds `index_writes`: everything else that
//! takes the lock waits for that task too (see `write::Log::lock`).

mod compact;
mod group_commit;
mod maintenance;
mod offset_file;
mod read;
mod start_offset;
mod write;

pub use compact::{Cleanable, CompactionOutcome, TxnFate};

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::sync::Semaphore;

use crate::clock::Clock;
use crate::config::LogConfig;
use crate::error::LogError;
use crate::io::prepare_thread_io;
use crate::limits::TAIL_CACHE_BYTES_MAX;
use crate::offset::Offset;
use crate::producer_snapshot::RecoveredProducers;
use crate::segment::{recover, Appender, Segment};
use crate::tail_cache::{CachedBatch, TailCache};

/// What an append assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub base_offset: Offset,
    /// Offset of the last record appended.
    pub last_offset: Offset,
    /// Largest max timestamp of the appended batches.
    pub max_timestamp_ms: i64,
    /// Number of batches appended.
    pub batches: u32,
    /// Bytes appended.
    pub bytes: usize,
}

/// What a retention run removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Whole segments deleted.
    pub segments_deleted: u32,
    /// Bytes of segment and index files deleted.
    pub bytes_deleted: u64,
}

/// What a log tells of each write round's duration (see [`Log::observe_rounds`]).
pub type RoundObserver = Rc<dyn Fn(std::time::Duration)>;

/// Counters of the log's I/O since open (for tests, metrics and benches).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Flush rounds that wrote data (each one or more concurrent DMA writes).
    pub writes: u64,
    /// Syncs: fdatasync calls on segment files, and write rounds made durable by `O_DSYNC`.
    pub syncs: u64,
    /// Microseconds spent in those (a statistic only: nothing decides by it).
    pub sync_micros: u64,
    /// Bytes of batches written.
    pub bytes_written: u64,
    /// Segments started in a new file (whose first writes go into fresh extents).
    pub segments_new: u64,
    /// Segments started in a retired segment's file rather than a new one.
    pub segments_recycled: u64,
    /// Bytes of batches reads returned from the tail cache.
    pub bytes_read_cached: u64,
    /// Bytes of batches reads returned from the segment files.
    pub bytes_read_from_disk: u64,
}

/// One partition's append-only log in one directory.
pub struct Log {
    dir: PathBuf,
    clock: Rc<dyn Clock>,
    config: RefCell<LogConfig>,
    state: RefCell<State>,
    /// Held by whoever rolls, truncates, deletes or closes.
    write_lock: Semaphore,
    /// Held by the task writing the index files of the segment the last roll sealed.
    index_writes: Rc<Semaphore>,
    /// Wakes flushers when a round's writes end, a round settles or the lock is released.
    progress: Rc<group_commit::Progress>,
    /// Wakes a flusher gathering batches for a durable round when a batch is appended.
    appended: group_commit::Progress,
    /// Whether a flusher is gathering batches for the next durable round (the others wait).
    gathering: Cell<bool>,
    stats: Cell<IoStats>,
    /// Told how long each write round took (see [`Log::observe_rounds`]).
    round_observer: RefCell<Option<RoundObserver>>,
    /// The producer snapshot and idempotent batch headers recovery found, until taken.
    recovered_producers: RefCell<RecoveredProducers>,
}

/// Mutable state of a log; never borrowed across an `.await`.
struct State {
    /// Ascending by base offset; the last one is active.
    segments: Vec<Segment>,
    appender: Appender,
    start_offset: Offset,
    high_watermark: Offset,
    next_offset: Offset,
    /// Appended, not yet in a write round, oldest first.
    pending: VecDeque<CachedBatch>,
    /// The write round on its way, if any.
    round: Option<write::Round>,
    /// Write rounds that failed so far, and the last one's error.
    failures: u64,
    last_failure: Option<LogError>,
    tail: TailCache,
    leader_epoch: i32,
    closed: bool,
    /// Retired segment files for the next rolls to write over (see `Log::start_segment_file`).
    spares: Vec<Spare>,
    /// Segments rolled since retention last ran: about how many spares the rolls before its
    /// next run will take.
    rolls_since_retention: usize,
    /// The last durable round's batch count and duration, which the next one's gathering goes
    /// by (see `group_commit`).
    last_durable_round: Option<(usize, std::time::Duration)>,
    /// Sealed segments ending at or below this offset were cleaned by the last compaction pass
    /// (see `compact`; kept in the `cleaner-offset` file).
    cleaned_to: Offset,
}

/// A retired segment file kept for a roll to write over.
struct Spare {
    path: PathBuf,
    /// Clock time when it became a spare.
    since_ms: i64,
}

impl State {
    fn active(&self) -> &Segment {
        self.segments.last().expect("a log has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log has an active segment")
    }

    /// Moves the watermarks, asserting `start <= high watermark <= next`.
    fn set_watermarks(&mut self, start: Offset, high_watermark: Offset, next: Offset) {
        assert!(
            start <= high_watermark && high_watermark <= next,
            "watermarks out of order: start {start}, high watermark {high_watermark}, next {next}"
        );
        self.start_offset = start;
        self.high_watermark = high_watermark;
        self.next_offset = next;
    }
}

impl Log {
    /// Opens the log in `dir` (creating the directory if needed) and recovers it: scans the last
    /// segment and truncates it at the first bad batch (warning with file and position), and
    /// rebuilds missing, stale or damaged indexes.
    ///
    /// # Errors
    /// [`LogError::InvalidConfig`] for an unacceptable config, [`LogError::Io`] if the directory
    /// or a segment cannot be read, written or truncated.
    pub async fn open(
        dir: &Path,
        config: LogConfig,
        clock: Rc<dyn Clock>,
    ) -> Result<Log, LogError> {
        use crate::error::IoContext;
        config.validate()?;
        std::fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
        prepare_thread_io(dir).await?;
        let recovered = recover(dir, &config, &*clock).await?;
        let opened_ms = clock.now_ms();
        let next = recovered
            .segments
            .last()
            .expect("recovery yields a segment")
            .next;
        // Records deleted below a later offset stay deleted (see `start_offset`).
        let first = recovered.segments[0].base;
        let start = offset_file::LOG_START
            .load(dir)
            .map_or(first, |s| s.clamp(first, next));
        // Sealed segments below the checkpoint were cleaned before the restart.
        let active_base = recovered.segments[recovered.segments.len() - 1].base;
        let cleaned_to = offset_file::CLEANED_TO
            .load(dir)
            .map_or(Offset(0), |c| c.min(active_base));
        tracing::debug!(dir = %dir.display(), %start, %next, segments = recovered.segments.len(), "log opened");
        Ok(Log {
            dir: dir.to_path_buf(),
            clock,
            config: RefCell::new(config),
            state: RefCell::new(State {
                segments: recovered.segments,
                appender: recovered.appender,
                start_offset: start,
                high_watermark: next,
                next_offset: next,
                pending: VecDeque::new(),
                round: None,
                failures: 0,
                last_failure: None,
                tail: TailCache::new(TAIL_CACHE_BYTES_MAX),
                leader_epoch: 0,
                closed: false,
                spares: recovered
                    .spares
                    .into_iter()
                    .map(|path| Spare {
                        path,
                        since_ms: opened_ms,
                    })
                    .collect(),
                rolls_since_retention: 0,
                last_durable_round: None,
                cleaned_to,
            }),
            write_lock: Semaphore::new(1),
            index_writes: Rc::new(Semaphore::new(1)),
            progress: Rc::default(),
            appended: group_commit::Progress::default(),
            gathering: Cell::new(false),
            stats: Cell::new(IoStats::default()),
            round_observer: RefCell::new(None),
            recovered_producers: RefCell::new(recovered.producers),
        })
    }

    /// The first offset in the log.
    pub fn start_offset(&self) -> Offset {
        self.state.borrow().start_offset
    }

    /// The log end: the offset the next appended record gets.
    pub fn next_offset(&self) -> Offset {
        self.state.borrow().next_offset
    }

    /// The offset after the last written (readable, acknowledged) record.
    pub fn high_watermark(&self) -> Offset {
        self.state.borrow().high_watermark
    }

    /// The configuration in force.
    pub fn config(&self) -> LogConfig {
        self.config.borrow().clone()
    }

    /// Replaces the configuration; it applies from the next flush or retention run.
    /// An invalid config is refused with a warning and the old one kept (see
    /// [`LogConfig::validate`]).
    pub fn set_config(&self, config: LogConfig) {
        match config.validate() {
            Ok(()) => *self.config.borrow_mut() = config,
            Err(e) => tracing::warn!(dir = %self.dir.display(), error = %e, "config refused"),
        }
    }

    /// Bounds the in-memory tail cache to `bytes` (it always keeps the newest batch), evicting
    /// the oldest cached batches at once; reads for them go to the segment files. The owner of
    /// a memory budget calls this as its share for the log changes.
    pub fn set_tail_cache_bytes(&self, bytes: usize) {
        self.state.borrow_mut().tail.set_capacity(bytes);
    }

    /// Bytes of batches held in the tail cache.
    pub fn tail_cache_bytes(&self) -> usize {
        self.state.borrow().tail.bytes()
    }

    /// The leader epoch written into appended batches from now on (0 until set).
    pub fn set_leader_epoch(&self, epoch: i32) {
        self.state.borrow_mut().leader_epoch = epoch;
    }

    /// Bytes of all segments and their indexes on disk.
    pub fn size_bytes(&self) -> u64 {
        self.state
            .borrow()
            .segments
            .iter()
            .map(Segment::disk_bytes)
            .sum()
    }

    /// Base offset of the active segment.
    pub fn active_segment_base(&self) -> Offset {
        let st = self.state.borrow();
        st.segments.last().map_or(st.next_offset, |s| s.base)
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.state.borrow().segments.len()
    }

    /// What recovery found to rebuild the idempotent producers' state from: the newest usable
    /// producer snapshot and the headers of the idempotent batches to replay onto it (see
    /// [`RecoveredProducers`]); empty after the first call. A partition rebuilds its producers'
    /// state from them without reading the log again.
    pub fn take_recovered_producers(&self) -> RecoveredProducers {
        std::mem::take(&mut *self.recovered_producers.borrow_mut())
    }

    /// Saves `body`, the idempotent producers' state after every batch below `offset`, as the
    /// log's producer snapshot (see [`RecoveredProducers`]): durably, keeping the previous one.
    ///
    /// # Errors
    /// [`LogError::OffsetOutOfRange`] if `offset` is above the high watermark (a snapshot must
    /// not describe batches a crash could still lose), [`LogError::InvalidConfig`] for a body
    /// beyond 64 MiB, [`LogError::Io`], [`LogError::Closed`].
    pub async fn save_producer_snapshot(
        &self,
        offset: Offset,
        body: &[u8],
    ) -> Result<(), LogError> {
        let (start, end) = {
            let st = self.state.borrow();
            if st.closed {
                return Err(self.closed_error());
            }
            (st.start_offset, st.high_watermark)
        };
        if offset > end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                start,
                end,
            });
        }
        crate::producer_snapshot::save(&self.dir, offset, body).await?;
        // A truncation below `offset` while the file was written would make it describe batches
        // the log no longer has.
        crate::producer_snapshot::remove_above(&self.dir, self.next_offset()).await
    }

    /// I/O counters since open.
    pub fn io_stats(&self) -> IoStats {
        self.stats.get()
    }

    /// Has `observer` told, from now on, how long each write round took: from its submission
    /// to the completion of its writes (and of its sync, where it has one), the device's time
    /// and the kernel's as the shard saw them. It runs on the log's thread as the round
    /// settles, so it must be cheap (a histogram's record).
    pub fn observe_rounds(&self, observer: RoundObserver) {
        *self.round_observer.borrow_mut() = Some(observer);
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn closed_error(&self) -> LogError {
        LogError::Closed {
            dir: self.dir.clone(),
        }
    }

    fn bump_stats(&self, f: impl FnOnce(&mut IoStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }
}
