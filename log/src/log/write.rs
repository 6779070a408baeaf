//! The write path: append (memory only), flush (group-committed DMA writes), sync and roll.

use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use bytes::BytesMut;

use super::group_commit::{self, Gathering, RoundWrites, WriteGuard};
use super::{AppendInfo, Log};
use crate::batch::{frame, rewrite_base, validate, BatchDefect};
use crate::config::FsyncPolicy;
use crate::error::{IoContext, LogError};
use crate::io;
use crate::limits::{GATHER_GAP_MAX, GATHER_WAIT_MAX, ROUND_BYTES_MAX};
use crate::offset::Offset;
use crate::segment::{
    log_path, within_offset_span, write_index_files, Appender, Segment, SegmentBatch,
};
use crate::tail_cache::CachedBatch;

impl Log {
    /// Validates every v2 batch in `records` (one or more, back to back: length, magic 2,
    /// CRC-32C, records count), assigns offsets by rewriting each base offset and leader epoch
    /// in place, and queues the batches for writing and for the tail cache. No I/O, no await.
    ///
    /// The log takes the buffer over: what the file and the tail cache get are these very bytes,
    /// patched (both fields lie outside the CRC). A `Bytes` converts to it without a copy when
    /// nothing else refers to its buffer, and is copied otherwise, leaving the caller's bytes as
    /// they were.
    ///
    /// # Errors
    /// [`LogError::InvalidBatch`] naming the first bad batch's position and defect,
    /// [`LogError::OffsetOverflow`], or [`LogError::Closed`]. On any error nothing is appended.
    pub fn append(&self, records: impl Into<BytesMut>) -> Result<AppendInfo, LogError> {
        let mut records = records.into();
        let mut st = self.state.borrow_mut();
        if st.closed {
            return Err(self.closed_error());
        }
        let (records_total, batches, max_timestamp_ms) = check_all(&records)?;
        let base = st.next_offset;
        if base
            .0
            .checked_add(records_total)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return Err(LogError::OffsetOverflow {
                next: base,
                records: records_total,
            });
        }
        let len = records.len();
        patch_in_place(&mut records, base, st.leader_epoch);
        let records = records.freeze();
        let mut walk = BatchWalk::new(base);
        while let Some(b) = walk.next(&records) {
            st.pending.push_back(CachedBatch {
                base: b.base,
                last: b.last,
                max_timestamp: b.max_timestamp,
                bytes: records.slice(b.range),
            });
        }
        let next = walk.next_offset();
        let (start, hw) = (st.start_offset, st.high_watermark);
        st.set_watermarks(start, hw, next);
        drop(st);
        self.appended.notify();
        Ok(AppendInfo {
            base_offset: base,
            last_offset: Offset(next.0 - 1),
            max_timestamp_ms,
            batches,
            bytes: len,
        })
    }

    /// Writes everything appended before the call, and syncs it if the fsync policy is `Batch`.
    /// Concurrent callers share write rounds (group commit, see `group_commit`). Once it
    /// returns, what was appended before the call survives a process kill.
    ///
    /// # Errors
    /// [`LogError::Io`] if a write or sync fails (the batches stay queued for the next flush),
    /// [`LogError::Closed`].
    pub async fn flush(&self) -> Result<Offset, LogError> {
        let target = {
            let st = self.state.borrow();
            if st.high_watermark >= st.next_offset {
                return Ok(st.high_watermark);
            }
            st.next_offset
        };
        self.flush_to(target, false).await
    }

    /// Syncs written data to the device now (the engine calls it on the `IntervalMs` timer).
    ///
    /// # Errors
    /// [`LogError::Io`] if fdatasync fails, [`LogError::Closed`].
    pub async fn sync(&self) -> Result<(), LogError> {
        let (file, path) = {
            let st = self.state.borrow();
            if st.closed {
                return Err(self.closed_error());
            }
            (st.active().file.clone(), st.active().path.clone())
        };
        self.sync_file(&file, &path).await
    }

    /// Seals the active segment and starts a new one (nothing happens if it is empty).
    ///
    /// # Errors
    /// [`LogError::Io`] if sealing or creating a file fails, [`LogError::Closed`].
    pub async fn roll(&self) -> Result<(), LogError> {
        let _permit = self.lock_active().await?;
        self.roll_locked().await
    }

    /// Takes the write lock, then waits for a round already on its way to settle and for the
    /// index files of the segment the last roll sealed: whoever holds the lock has the segment
    /// files to itself.
    pub(super) async fn lock(&self) -> Result<WriteGuard<'_>, LogError> {
        let guard = self.lock_active().await?;
        self.sealed_indexes_written().await?;
        Ok(guard)
    }

    /// Waits until no task is writing a sealed segment's index files.
    async fn sealed_indexes_written(&self) -> Result<(), LogError> {
        self.index_writes
            .acquire_permit(1)
            .await
            .map(drop)
            .map_err(|_| self.closed_error())
    }

    /// The write lock with no round on its way, the active segment to its holder; sealed
    /// segments' index files may still be being written. Enough to roll.
    async fn lock_active(&self) -> Result<WriteGuard<'_>, LogError> {
        let permit = self
            .write_lock
            .acquire_permit(1)
            .await
            .map_err(|_| self.closed_error())?;
        let guard = WriteGuard::new(permit, &self.progress);
        loop {
            let seen = self.progress.seen();
            self.settle();
            if self.state.borrow().round.is_none() {
                return Ok(guard);
            }
            self.progress.after(seen).await;
        }
    }

    /// Writes pending batches until the high watermark reaches `target` (or the log end, if a
    /// truncation moved it below `target`). Requires the write lock.
    pub(super) async fn flush_locked(&self, target: Offset) -> Result<Offset, LogError> {
        self.flush_to(target, true).await
    }

    /// Starts and settles rounds until the high watermark reaches `target` (or the log end).
    /// `locked`: the caller holds the write lock, so a roll happens in place.
    async fn flush_to(&self, target: Offset, locked: bool) -> Result<Offset, LogError> {
        let failures = self.state.borrow().failures;
        let mut gathered = false;
        loop {
            let seen = self.progress.seen();
            self.settle();
            let step = {
                let st = self.state.borrow();
                if st.closed {
                    return Err(self.closed_error());
                }
                if st.high_watermark >= target.min(st.next_offset) {
                    return Ok(st.high_watermark);
                }
                if st.failures != failures {
                    return Err(st
                        .last_failure
                        .as_ref()
                        .map_or_else(|| self.closed_error(), group_commit::again));
                }
                self.next_step(&st, target, locked)
            };
            match step {
                Next::Wait => self.progress.after(seen).await,
                Next::Roll if locked => self.roll_under_lock().await?,
                Next::Roll => {
                    let _permit = self.lock_active().await?;
                    if self.needs_roll(&self.state.borrow()) {
                        self.roll_locked().await?;
                    }
                }
                Next::Write if !locked && !gathered => {
                    // Let the tasks that are ready (producers woken by the last round) append
                    // first, so that their batches join this round instead of the next; before a
                    // durable round, wait a moment for those still on their way.
                    gathered = true;
                    futures_lite::future::yield_now().await;
                    self.gather().await;
                }
                Next::Write => {
                    gathered = false;
                    let durable = self.config.borrow().fsync == FsyncPolicy::Batch;
                    if durable {
                        self.open_durable_handle().await?;
                    }
                    self.start_round(target, locked, durable);
                }
            }
        }
    }

    /// Before a durable round, while fewer batches are queued than the last durable round
    /// carried, waits for more to be appended: up to a third of that round's time, at most
    /// `GATHER_WAIT_MAX`, and only while appends keep coming at most `GATHER_GAP_MAX` apart.
    /// The producers that round answered are appending again; one that misses this round would
    /// wait for it and then for its own, about twice as long. This is the delay of PostgreSQL's
    /// `commit_delay` and MySQL's `binlog_group_commit_sync_delay`, sized from the last round.
    /// Meanwhile the other flushers wait for the round this one starts.
    async fn gather(&self) {
        let Some(wait) = self.gather_wait() else {
            return;
        };
        let _gathering = Gathering::start(&self.gathering, &self.progress);
        let deadline = Instant::now() + wait;
        while self.gather_wait().is_some() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            // Producers answered together append again in a burst; once none has come for
            // `GATHER_GAP_MAX`, the rest are far behind and waiting for them costs everyone.
            let seen = self.appended.seen();
            let appended = async {
                self.appended.after(seen).await;
                true
            };
            let quiet = async {
                glommio::timer::sleep(left.min(GATHER_GAP_MAX)).await;
                false
            };
            if !futures_lite::future::or(appended, quiet).await {
                break;
            }
        }
    }

    /// How long to gather before the next round: `None` unless it is durable and fewer batches
    /// are queued than the last durable round carried.
    fn gather_wait(&self) -> Option<std::time::Duration> {
        if self.config.borrow().fsync != FsyncPolicy::Batch {
            return None;
        }
        let st = self.state.borrow();
        let (batches, took) = st.last_durable_round?;
        (st.pending.len() < batches).then(|| (took / 3).min(GATHER_WAIT_MAX))
    }

    /// What a flusher whose batches end before `target` does next.
    fn next_step(&self, st: &super::State, target: Offset, locked: bool) -> Next {
        let queued = st.pending.front().is_some_and(|b| b.base < target);
        // Without the lock, a roll, truncation or close holding it goes first, and a flusher
        // gathering for the next round starts it.
        if !queued
            || st.round.is_some()
            || (!locked && (self.write_lock.available() == 0 || self.gathering.get()))
        {
            Next::Wait
        } else if self.needs_roll(st) {
            Next::Roll
        } else {
            Next::Write
        }
    }

    /// Whether the next pending batch must go to a new segment (by size or age).
    fn needs_roll(&self, st: &super::State) -> bool {
        let config = self.config.borrow();
        let size = st.active().size;
        if size == 0 {
            return false;
        }
        let next_len = st.pending.front().map_or(0, |b| b.bytes.len() as u64);
        let by_size = size + next_len > config.segment_bytes;
        let by_offsets = st
            .pending
            .front()
            .is_some_and(|b| !within_offset_span(st.active().base, b.last));
        let by_age = match (config.segment_ms, st.active().first_write_ms) {
            (Some(ms), Some(first)) => {
                self.clock.now_ms().saturating_sub(first) >= i64::try_from(ms).unwrap_or(i64::MAX)
            }
            _ => false,
        };
        by_size || by_age || by_offsets
    }

    /// Plans a round of the pending batches that fit in the active segment (up to
    /// `ROUND_BYTES_MAX`), submits its writes and leaves waiting for them to a task of its own;
    /// nothing happens if the state changed so that this flusher should not write now. A
    /// `durable` round goes through the segment's `O_DSYNC` handle, so that it is on stable
    /// storage when its writes complete (or, without one, is followed by an fdatasync).
    ///
    /// One `O_DSYNC` write is cheaper than a write and then an fdatasync: over blocks already
    /// written (a reused segment file) the kernel has no metadata to commit, only the write and
    /// a cache flush (or one FUA write where the device has FUA); 64 KiB was durable in about the
    /// time of a 4 KiB `dd oflag=dsync`, against 1.3–1.6 × that for write + fdatasync.
    fn start_round(&self, target: Offset, locked: bool, durable: bool) {
        let segment_bytes = self.config.borrow().segment_bytes;
        let mut st = self.state.borrow_mut();
        if self.next_step(&st, target, locked) != Next::Write {
            return;
        }
        let active = st.active();
        let size = active.size;
        let dsync = st.appender.durable_file().filter(|_| durable);
        let file = dsync.clone().unwrap_or_else(|| active.file.clone());
        let path = active.path.clone();
        let sync_after = (durable && dsync.is_none()).then(|| (active.file.clone(), path.clone()));
        let base = active.base;
        let mut count = 0;
        let mut end = size;
        for b in &st.pending {
            let len = b.bytes.len() as u64;
            let full = end + len > segment_bytes || !within_offset_span(base, b.last);
            if end > size && (full || end + len - size > ROUND_BYTES_MAX) {
                break;
            }
            end += len;
            count += 1;
        }
        let batches: Vec<CachedBatch> = st.pending.drain(..count).collect();
        let data = batches.iter().map(|b| b.bytes.clone()).collect();
        let plan = st.appender.plan(file, path, size, data, segment_bytes);
        let writes = Rc::new(RoundWrites::default());
        st.round = Some(Round {
            batches,
            durable,
            writes: writes.clone(),
            started: Instant::now(),
        });
        drop(st);
        // The writes are submitted now; the task only waits for them, so that the round ends
        // even if this flush is dropped.
        let round_writes = plan.start();
        let progress = self.progress.clone();
        glommio::spawn_local(async move {
            let mut outcome = round_writes.await;
            if let (Ok(_), Some((file, path))) = (&outcome, sync_after) {
                if let Err(e) = file
                    .fdatasync()
                    .await
                    .context(|| format!("syncing {}", path.display()))
                {
                    outcome = Err(e);
                }
            }
            writes.set(outcome);
            progress.notify();
        })
        .detach();
    }

    /// Settles the round on its way if its writes have ended: if they succeeded, indexes its
    /// batches, caches them and moves the high watermark; if they failed, puts its batches back
    /// at the front of the queue (see `group_commit`).
    fn settle(&self) {
        let mut st = self.state.borrow_mut();
        let Some(outcome) = st.round.as_ref().and_then(|round| round.writes.take()) else {
            return;
        };
        let round = st.round.take().expect("a round on its way");
        match outcome {
            Ok(written) => {
                st.appender.finish(written);
                self.record_round(&mut st, round);
            }
            Err(e) => self.requeue_round(&mut st, round, e),
        }
        drop(st);
        self.progress.notify();
    }

    /// Records a settled round's batches in the active segment and the tail cache.
    fn record_round(&self, st: &mut super::State, round: Round) {
        let interval = self.config.borrow().index_interval_bytes;
        let now = self.clock.now_ms();
        let active = st.active_mut();
        if active.first_write_ms.is_none() {
            active.first_write_ms = Some(now);
        }
        let mut bytes = 0;
        for b in &round.batches {
            let written = SegmentBatch {
                position: active.size,
                len: b.bytes.len(),
                base: b.base,
                last: b.last,
                max_timestamp: b.max_timestamp,
            };
            active.record_batch(&written, interval);
            bytes += b.bytes.len() as u64;
        }
        let hw = active.next;
        let batches = round.batches.len();
        for b in round.batches {
            st.tail.push(b);
        }
        let (start, next) = (st.start_offset, st.next_offset);
        st.set_watermarks(start, hw, next);
        let took = round.started.elapsed();
        if round.durable {
            st.last_durable_round = Some((batches, took));
        }
        if let Some(observe) = self.round_observer.borrow().as_ref() {
            observe(took);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.bump_stats(|s| {
            s.writes += 1;
            s.bytes_written += bytes;
            if round.durable {
                s.syncs += 1;
                s.sync_micros = s.sync_micros.saturating_add(micros);
            }
        });
    }

    /// After a failed round: its batches go back to the front of the queue in order.
    fn requeue_round(&self, st: &mut super::State, round: Round, error: LogError) {
        let epoch = st.leader_epoch;
        for b in round.batches.into_iter().rev() {
            // The epoch may have changed since: patch again, in place, or in a copy where the
            // failed writes still hold the bytes (a rare path).
            let mut bytes = BytesMut::from(b.bytes);
            rewrite_base(&mut bytes, b.base.to_kafka(), epoch);
            st.pending.push_front(CachedBatch {
                base: b.base,
                last: b.last,
                max_timestamp: b.max_timestamp,
                bytes: bytes.freeze(),
            });
        }
        tracing::warn!(dir = %self.dir.display(), error = %error, "write failed; the batches stay queued");
        st.failures += 1;
        st.last_failure = Some(error);
    }

    /// Opens the active segment's `O_DSYNC` handle if it is not open; without one (and a
    /// warning) durable rounds are followed by an fdatasync instead.
    ///
    /// An `O_DSYNC` write makes only its own blocks durable, so when the segment already holds
    /// bytes (written before `fsync.policy` became `batch`, or found on open) the file is
    /// fdatasynced once first: from then on every byte of the segment is durable, which lets
    /// the roll skip its sync.
    async fn open_durable_handle(&self) -> Result<(), LogError> {
        let (path, file, size) = {
            let st = self.state.borrow();
            if st.appender.durable_file().is_some() {
                return Ok(());
            }
            let a = st.active();
            (a.path.clone(), a.file.clone(), a.size)
        };
        let durable = match io::open_dsync(&path).await {
            Ok(durable) => Rc::new(durable),
            Err(e) => {
                tracing::warn!(error = %e, "cannot open a durable handle; syncing after writes instead");
                return Ok(());
            }
        };
        if size > 0 {
            self.sync_file(&file, &path).await?;
        }
        let mut st = self.state.borrow_mut();
        // A roll or truncation while the file opened gave the log another segment.
        if st.active().path == path && st.appender.durable_file().is_none() {
            st.appender.set_durable_file(durable);
        }
        Ok(())
    }

    /// [`Log::roll_locked`] for a holder of [`Log::lock`], who has every segment's files to
    /// itself: returns once the sealed segment's index files are written too.
    pub(super) async fn roll_under_lock(&self) -> Result<(), LogError> {
        self.roll_locked().await?;
        self.sealed_indexes_written().await
    }

    /// Seals the active segment and opens a new one at its next offset. Requires the write lock
    /// ([`Log::lock_active`] is enough; under [`Log::lock`] use [`Log::roll_under_lock`]).
    ///
    /// Sealing truncates the file to its real length and syncs it unless fsync is `never` or
    /// every byte of it is already durable (`batch` rounds written through the `O_DSYNC`
    /// handle). Under `batch` the directory is synced (through io_uring) so the new segment's
    /// name is durable before anything is acknowledged in it. The sealed segment's indexes are
    /// written after the new segment is in place, by [`Log::write_sealed_indexes`].
    async fn roll_locked(&self) -> Result<(), LogError> {
        let (file, path, size, base, indexes, durable) = {
            let st = self.state.borrow();
            if st.closed {
                return Err(self.closed_error());
            }
            let a = st.active();
            if a.size == 0 {
                return Ok(());
            }
            (
                a.file.clone(),
                a.path.clone(),
                a.size,
                a.next,
                a.encoded_indexes(&self.dir),
                st.appender.durable_file().is_some(),
            )
        };
        let policy = self.config.borrow().fsync;
        file.truncate(size)
            .await
            .context(|| format!("truncating {} to {size} bytes", path.display()))?;
        if policy != FsyncPolicy::Never && !(policy == FsyncPolicy::Batch && durable) {
            self.sync_file(&file, &path).await?;
        }
        let new_path = log_path(&self.dir, base);
        let new_file = self.start_segment_file(&new_path).await?;
        let appender = Appender::resume(&new_file, &new_path, 0).await?;
        if policy == FsyncPolicy::Batch {
            io::sync_dir_async(&self.dir).await?;
        }
        {
            let mut st = self.state.borrow_mut();
            st.segments
                .push(Segment::empty(base, Rc::new(new_file), new_path));
            st.appender = appender;
            st.rolls_since_retention += 1;
        }
        tracing::debug!(dir = %self.dir.display(), base = %base, "rolled to a new segment");
        self.write_sealed_indexes(indexes).await
    }

    /// Writes a sealed segment's index files in a task of its own, so that the rounds into the
    /// next segment do not wait for them (they took 0.7-1.3 ms of a 1 GiB segment's roll, with
    /// appends held up meanwhile: docs/BENCHMARKS.md). The task holds `index_writes`, which
    /// whoever takes the lock next waits for, so retention, compaction, truncation and close
    /// never meet a segment whose files are still being written. The files are not synced and a
    /// failure is only a warning: indexes that a crash or an error leaves missing or stale are
    /// rebuilt when the log is opened. Waits first for the task of an earlier roll, if it runs.
    /// (The lock matters beyond tidiness: glommio's DMA open panics, ENOENT from a `statfs` of
    /// the path, when the file it has just created is removed before that.)
    async fn write_sealed_indexes(&self, indexes: [(PathBuf, Vec<u8>); 2]) -> Result<(), LogError> {
        let permit = self
            .index_writes
            .acquire_static_permit(1)
            .await
            .map_err(|_| self.closed_error())?;
        glommio::spawn_local(async move {
            if let Err(e) = write_index_files(indexes, false).await {
                tracing::warn!(error = %e, "writing a sealed segment's index files failed; opening the log rebuilds them");
            }
            drop(permit);
        })
        .detach();
        Ok(())
    }

    /// Opens the file of a new segment: a spare (a retired segment's file) renamed into place if
    /// there is one, else a new empty file.
    ///
    /// Writing over a spare's blocks is a plain overwrite, which the file system does with no
    /// journal work. Writing into fresh preallocated (unwritten) extents makes ext4 convert them
    /// as each write completes, and a later fdatasync commit the journal: on a virtio disk that
    /// measured about twice the latency and half the throughput of overwrites. A spare's old
    /// bytes beyond the new segment's end are never read: reads stop at the segment's size, and
    /// recovery stops at the first batch that does not continue the log (the old batches' offsets
    /// are all below the new segment's base).
    async fn start_segment_file(
        &self,
        path: &std::path::Path,
    ) -> Result<glommio::io::DmaFile, LogError> {
        let spare = self.state.borrow_mut().spares.pop().map(|s| s.path);
        if let Some(spare) = spare {
            match glommio::io::rename(&spare, path).await {
                Ok(()) => {
                    self.bump_stats(|s| s.segments_recycled += 1);
                    return io::open_rw(path).await;
                }
                Err(e) => {
                    // Left where it is: the next open deletes or adopts it.
                    tracing::warn!(file = %spare.display(), error = %e, "cannot reuse a retired segment file");
                }
            }
        }
        let file = io::open_rw(path).await?;
        file.truncate(0)
            .await
            .context(|| format!("truncating {}", path.display()))?;
        self.bump_stats(|s| s.segments_new += 1);
        Ok(file)
    }

    /// fdatasyncs one segment file and counts it.
    pub(super) async fn sync_file(
        &self,
        file: &glommio::io::DmaFile,
        path: &std::path::Path,
    ) -> Result<(), LogError> {
        let started = std::time::Instant::now();
        file.fdatasync()
            .await
            .context(|| format!("syncing {}", path.display()))?;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.bump_stats(|s| {
            s.syncs += 1;
            s.sync_micros = s.sync_micros.saturating_add(micros);
        });
        Ok(())
    }
}

/// A write round on its way: planned, its writes started, not yet settled.
pub(super) struct Round {
    /// Its batches, patched, in order (what the tail cache gets once it settles).
    batches: Vec<CachedBatch>,
    /// Whether it is on stable storage when its writes complete.
    durable: bool,
    writes: Rc<RoundWrites>,
    started: Instant,
}

/// What a flusher does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Nothing it can do now: its batches are on their way, or a round or the lock must end.
    Wait,
    /// Roll to a new segment first.
    Roll,
    /// Start a round.
    Write,
}

/// Patches every batch of a validated append in place: base offsets from `base` on, and the
/// leader epoch (both outside the CRC).
fn patch_in_place(records: &mut [u8], base: Offset, epoch: i32) {
    let mut walk = BatchWalk::new(base);
    while let Some(b) = walk.next(records) {
        rewrite_base(&mut records[b.range], b.base.to_kafka(), epoch);
    }
}

/// Walks the batches of a validated append in order, giving each one's place in the buffer and
/// the offsets it gets (from `base` on). It takes the buffer at each step, so that the caller
/// may patch the batch it was just given.
struct BatchWalk {
    next: Offset,
    position: usize,
}

/// One batch of a [`BatchWalk`].
struct WalkedBatch {
    range: std::ops::Range<usize>,
    base: Offset,
    last: Offset,
    max_timestamp: i64,
}

impl BatchWalk {
    fn new(base: Offset) -> Self {
        BatchWalk {
            next: base,
            position: 0,
        }
    }

    /// The next batch of `records` (the same validated bytes at every step), if any is left.
    fn next(&mut self, records: &[u8]) -> Option<WalkedBatch> {
        if self.position >= records.len() {
            return None;
        }
        let (header, total) = frame(&records[self.position..]).expect("validated above");
        let delta = u64::try_from(header.last_offset_delta()).expect("validated delta");
        let batch = WalkedBatch {
            range: self.position..self.position + total,
            base: self.next,
            last: self.next.plus(delta),
            max_timestamp: header.max_timestamp(),
        };
        self.next = batch.last.plus(1);
        self.position += total;
        Some(batch)
    }

    /// The offset after the last batch walked.
    fn next_offset(&self) -> Offset {
        self.next
    }
}

/// Validates every batch of an append; returns (records, batches, max timestamp).
fn check_all(records: &[u8]) -> Result<(u64, u32, i64), LogError> {
    if records.is_empty() {
        return Err(LogError::InvalidBatch {
            position: 0,
            reason: BatchDefect::Empty,
        });
    }
    let (mut count, mut batches, mut max_ts) = (0u64, 0u32, i64::MIN);
    let mut position = 0;
    while position < records.len() {
        let (header, total) = validate(&records[position..])
            .map_err(|reason| LogError::InvalidBatch { position, reason })?;
        count += u64::try_from(header.records_count()).expect("validated count");
        batches += 1;
        max_ts = max_ts.max(header.max_timestamp());
        position += total;
    }
    Ok((count, batches, max_ts))
}
