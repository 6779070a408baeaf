//! Compaction: keeping only the last record of each key in the sealed segments.
//!
//! A pass works as Kafka's cleaner does. It maps each key to its latest offset over the *dirty*
//! sealed segments (those written since the last pass), as far as [`KEY_MAP_BYTES_MAX`] allows
//! but at least one segment, then rewrites every sealed segment below the map's end, oldest
//! first, without the records a later record of the same key supersedes, and without tombstones
//! (a key with a null value) whose batch is older than the delete retention. Records without a
//! key stay. The active segment is never touched, so the latest records of a partition are all
//! there to read, and the offsets a consumer holds stay meaningful: a record keeps its offset.
//!
//! A rewritten batch keeps its offset range (see `batch::clean`). Batches emptied entirely go,
//! and the kept batch before them grows its last offset delta to cover their offsets; where no
//! kept batch precedes them in the segment, one batch without records covers them. So the
//! segment's batches still follow one another offset after offset, which recovery and reads
//! check, and its base and end do not move.
//!
//! A segment is rewritten into `<base>.log.cleaning`, and the rewrite goes on with the segments
//! after it while what it wrote and the next one fit in `segment_bytes`: small segments merge
//! into the first one's name. The file is synced and renamed over the first segment under the
//! write lock, if the segments are still in the log as they were (retention or a truncation may
//! have taken them meanwhile), then the merged ones' files are removed; the index is rebuilt
//! from the batches written. A crash leaves the old segments or the new one: recovery deletes a
//! `.cleaning` file, and removes segments a merged one covers. Reads that started on an old
//! file finish on it (it stays open until they drop it); the tail cache forgets the batches
//! below the rewrite's end, so later reads see it. A lone segment from which nothing goes is
//! left as it is. Where the pass ended is kept in the `cleaner-offset` file (see `offset_file`).
//! A pass stops before the first sealed segment holding a record younger than the minimum
//! compaction lag.
//!
//! Transactional batches are judged by their transaction's fate, which the log's owner knows
//! ([`TxnFate`]): an aborted transaction's records supersede nothing and go (a read-committed
//! consumer would never see them, and they must not take a committed record's place); an open
//! transaction's records supersede nothing yet and stay; a committed one's are like any other.
//! A commit marker (control batch) goes, as Kafka's cleaner removes it, once no record of its
//! transaction is left and it is older than the delete retention (see [`Markers`]); while a
//! record of the transaction stays, so does its marker, which tells recovery that the
//! transaction ended. Abort markers stay: the aborted transactions a read-committed fetch lists
//! end at them (a consumer skips the producer's transactional records from the transaction's
//! first offset until it reads the marker), and aborts are rare.

use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

use futures_lite::AsyncWriteExt;
use glommio::io::{DmaFile, DmaStreamWriter, DmaStreamWriterBuilder};

use super::Log;
use crate::batch::clean::{self, CleanError, Cleaned, KeyedRecord};
use crate::batch::{marker_of, BatchHeader, TxnMarker};
use crate::error::{IoContext, LogError};
use crate::io;
use crate::limits::{KEY_MAP_BYTES_MAX, LONG_READ_WINDOW_BYTES, WRITE_CHUNK_BYTES};
use crate::offset::Offset;
use crate::segment::{
    cleaning_path, within_offset_span, BatchCursor, Segment, SegmentBatch, NO_TIMESTAMP,
};

/// What became of the transaction a transactional batch belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnFate {
    /// Committed: its records are like any other.
    Committed,
    /// Aborted: its records go, and supersede nothing.
    Aborted,
    /// Still open: its records stay, and supersede nothing yet.
    Open,
}

/// Which commit markers a pass removes. A pass reads the sealed segments from the log start in
/// offset order, so the records of a producer's transaction all come before the marker that
/// ends it; `kept` notes, per producer, whether any of them stays. A commit marker goes when none
/// did and its timestamp (when it was written) is older than the delete-retention horizon.
struct Markers {
    kept: HashMap<i64, bool>,
    horizon_ms: i64,
}

impl Markers {
    fn new(horizon_ms: i64) -> Self {
        Self {
            kept: HashMap::new(),
            horizon_ms,
        }
    }

    /// A transactional data batch of `producer` that stays (`kept`) or goes.
    fn on_data(&mut self, producer: i64, kept: bool) {
        *self.kept.entry(producer).or_default() |= kept;
    }

    /// Whether `producer`'s marker `kind` written at `timestamp` goes; the next batches of the
    /// producer belong to its next transaction.
    fn removes(&mut self, producer: i64, kind: Option<TxnMarker>, timestamp: i64) -> bool {
        let kept = self.kept.remove(&producer).unwrap_or(false);
        kind == Some(TxnMarker::Commit) && !kept && timestamp < self.horizon_ms
    }
}

/// Bytes a key-map entry costs beyond its key (the key's allocation, the offset, the table).
const KEY_ENTRY_OVERHEAD_BYTES: usize = 48;

/// What a compaction pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionOutcome {
    /// Sealed segments read to map keys.
    pub segments_mapped: u32,
    /// Segments rewritten (those from which records went, and those merged with others).
    pub segments_rewritten: u32,
    /// Of those, segments merged into the one before them (the segment count fell by this).
    pub segments_merged: u32,
    /// Records removed.
    pub records_removed: u64,
    /// Bytes of the rewritten segments before and after.
    pub bytes_before: u64,
    /// See `bytes_before`.
    pub bytes_after: u64,
}

/// How much of the sealed segments a pass would clean.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleanable {
    /// Bytes of sealed segments written since the last pass (all of them after an open).
    pub dirty_bytes: u64,
    /// Bytes of all sealed segments.
    pub sealed_bytes: u64,
    /// The max timestamp of the oldest sealed segment written since the last pass: its records
    /// are at least this old (for Kafka's `max.compaction.lag.ms`).
    pub oldest_dirty_timestamp: Option<i64>,
}

/// A sealed segment as a pass found it.
struct Sealed {
    base: Offset,
    next: Offset,
    size: u64,
    file: Rc<DmaFile>,
    path: PathBuf,
}

impl Sealed {
    fn cursor(&self) -> BatchCursor {
        BatchCursor::new(
            self.file.clone(),
            self.path.clone(),
            0,
            self.base,
            self.size,
            LONG_READ_WINDOW_BYTES,
        )
    }
}

/// Each key's latest offset over the mapped segments.
#[derive(Default)]
struct KeyMap {
    latest: HashMap<Vec<u8>, i64>,
    bytes: usize,
}

impl KeyMap {
    fn insert(&mut self, key: &[u8], offset: i64) {
        match self.latest.get_mut(key) {
            Some(latest) => *latest = offset,
            None => {
                self.bytes += key.len() + KEY_ENTRY_OVERHEAD_BYTES;
                self.latest.insert(key.to_vec(), offset);
            }
        }
    }

    /// Whether a record stays: no later record of its key is mapped, and it is not a tombstone
    /// whose batch is older than `tombstone_horizon_ms`.
    /// Maps the keys of every record of `segment` to their offsets, but those of transactions
    /// aborted or still open (`fate_of`): those records supersede nothing.
    ///
    /// # Errors
    /// [`LogError::Io`] if reading the segment fails.
    async fn add_segment(
        &mut self,
        segment: &Sealed,
        fate_of: &dyn Fn(&[u8]) -> Option<TxnFate>,
    ) -> Result<(), LogError> {
        let mut cursor = segment.cursor();
        while let Some(b) = cursor.next_checked().await? {
            if matches!(
                fate_of(cursor.bytes(&b)),
                Some(TxnFate::Aborted | TxnFate::Open)
            ) {
                continue;
            }
            let mapped = clean::for_each_record(cursor.bytes(&b), |r| {
                if let Some(key) = r.key {
                    self.insert(key, r.offset);
                }
            });
            if let Err(e) = mapped {
                // Its records stay, and supersede nothing: the pass keeps more, never less.
                tracing::warn!(file = %segment.path.display(), offset = %b.base, error = %e,
                        "compaction: a batch's keys cannot be read; it is kept as it is");
            }
        }
        Ok(())
    }

    fn keeps(&self, record: &KeyedRecord<'_>, batch_max_timestamp: i64, horizon_ms: i64) -> bool {
        let Some(key) = record.key else {
            return true;
        };
        if self
            .latest
            .get(key)
            .is_some_and(|&latest| record.offset < latest)
        {
            return false;
        }
        !(record.tombstone && batch_max_timestamp < horizon_ms)
    }
}

impl Log {
    /// The sealed segments' bytes, and how many of them were written since the last pass.
    pub fn cleanable(&self) -> Cleanable {
        let st = self.state.borrow();
        let sealed = &st.segments[..st.segments.len() - 1];
        let dirty = || sealed.iter().filter(|s| s.next > st.cleaned_to);
        Cleanable {
            dirty_bytes: dirty().map(|s| s.size).sum(),
            sealed_bytes: sealed.iter().map(|s| s.size).sum(),
            oldest_dirty_timestamp: dirty().next().map(|s| s.max_timestamp),
        }
    }

    /// Runs one compaction pass (see the module documentation); tombstones go once their batch
    /// is older than `delete_retention_ms`, and the pass stops before the first sealed segment
    /// holding a record younger than `min_lag_ms` (Kafka's `min.compaction.lag.ms`).
    ///
    /// # Errors
    /// [`LogError::Io`] if a segment cannot be read or its rewrite written, synced or renamed;
    /// [`LogError::Corrupt`] if a sealed batch no longer checks; [`LogError::Closed`].
    pub async fn compact(
        &self,
        delete_retention_ms: u64,
        min_lag_ms: u64,
    ) -> Result<CompactionOutcome, LogError> {
        self.compact_transactions(delete_retention_ms, min_lag_ms, &|_, _| TxnFate::Committed)
            .await
    }

    /// [`Log::compact`], with `fate(producer id, base offset)` telling what became of each
    /// transactional batch's transaction (see the module documentation).
    ///
    /// # Errors
    /// As [`Log::compact`].
    pub async fn compact_transactions(
        &self,
        delete_retention_ms: u64,
        min_lag_ms: u64,
        fate: &dyn Fn(i64, Offset) -> TxnFate,
    ) -> Result<CompactionOutcome, LogError> {
        let fate_of = |bytes: &[u8]| {
            let header = BatchHeader::parse(bytes).ok()?;
            let base = Offset(u64::try_from(header.base_offset()).ok()?);
            (header.is_transactional() && !header.is_control())
                .then(|| fate(header.producer_id(), base))
        };
        let now = self.clock.now_ms();
        let before = |ms: u64| now.saturating_sub(i64::try_from(ms).unwrap_or(i64::MAX));
        let horizon_ms = before(delete_retention_ms);
        let youngest_allowed = before(min_lag_ms);
        let (sealed, dirty_from) = self.sealed_older_than(youngest_allowed)?;
        let mut outcome = CompactionOutcome::default();
        let mut map = KeyMap::default();
        let mut map_end = None;
        for segment in sealed.iter().filter(|s| s.next > dirty_from) {
            if map_end.is_some() && map.bytes >= KEY_MAP_BYTES_MAX {
                break;
            }
            map.add_segment(segment, &fate_of).await?;
            map_end = Some(segment.next);
            outcome.segments_mapped += 1;
        }
        let Some(map_end) = map_end else {
            return Ok(outcome);
        };
        let cleanable: Vec<Sealed> = sealed.into_iter().filter(|s| s.base < map_end).collect();
        let mut start = 0;
        let mut markers = Markers::new(horizon_ms);
        while start < cleanable.len() {
            let keep = |r: &KeyedRecord<'_>, max_ts: i64| map.keeps(r, max_ts, horizon_ms);
            let rewritten = self
                .rewrite(&cleanable[start..], &keep, &fate_of, &mut markers)
                .await?;
            let Some(rewrite) = rewritten else {
                start += 1;
                continue;
            };
            let group = &cleanable[start..start + rewrite.merged];
            start += rewrite.merged;
            let before: u64 = group.iter().map(|s| s.size).sum();
            let (after, removed) = (rewrite.segment.size, rewrite.removed);
            if self.replace(group, rewrite).await? {
                outcome.segments_rewritten += u32::try_from(group.len()).unwrap_or(u32::MAX);
                outcome.segments_merged += u32::try_from(group.len() - 1).unwrap_or(u32::MAX);
                outcome.records_removed += removed;
                outcome.bytes_before += before;
                outcome.bytes_after += after;
            }
        }
        let cleaned_to = {
            let mut st = self.state.borrow_mut();
            st.cleaned_to = st.cleaned_to.max(map_end);
            st.cleaned_to
        };
        // Losing it only costs the next pass a reread of what is clean: no sync.
        super::offset_file::CLEANED_TO
            .persist(&self.dir, cleaned_to, false)
            .await?;
        Ok(outcome)
    }

    /// The sealed segments whose records are all at least `min_lag` old (no newer than
    /// `youngest_allowed`), oldest first, and where the part not yet cleaned starts.
    ///
    /// # Errors
    /// [`LogError::Closed`].
    fn sealed_older_than(&self, youngest_allowed: i64) -> Result<(Vec<Sealed>, Offset), LogError> {
        let st = self.state.borrow();
        if st.closed {
            return Err(self.closed_error());
        }
        let sealed = st.segments[..st.segments.len() - 1]
            .iter()
            .take_while(|s| s.max_timestamp <= youngest_allowed)
            .map(|s| Sealed {
                base: s.base,
                next: s.next,
                size: s.size,
                file: s.file.clone(),
                path: s.path.clone(),
            })
            .collect();
        Ok((sealed, st.cleaned_to))
    }

    /// Writes the first of `segments`, without the records `keep` refuses, into its
    /// `.cleaning` file, and goes on with the next ones into the same file while what it wrote
    /// and the next one fit in one segment (`segment.bytes`, and the offset span an index
    /// can describe): small segments are merged as they are cleaned. Nothing is written until
    /// a record goes or a segment joins (the batches before are then copied as they are), so
    /// a lone segment from which no record goes is only read: `None`, and no file. `markers`
    /// follows the transactions through the batches read and removes the markers that may go.
    async fn rewrite(
        &self,
        segments: &[Sealed],
        keep: &dyn Fn(&KeyedRecord<'_>, i64) -> bool,
        fate: &dyn Fn(&[u8]) -> Option<TxnFate>,
        markers: &mut Markers,
    ) -> Result<Option<Rewrite>, LogError> {
        let first = &segments[0];
        let segment_bytes = self.config().segment_bytes;
        let mut out: Option<Output> = None;
        let mut removed = 0u64;
        let mut taken = 0;
        for (i, segment) in segments.iter().enumerate() {
            if i > 0 {
                let written = out.as_ref().map_or(first.size, Output::written_bytes);
                let joins = written + segment.size <= segment_bytes
                    && within_offset_span(first.base, Offset(segment.next.0.saturating_sub(1)));
                if !joins {
                    break;
                }
                if out.is_none() {
                    out = Some(self.start_rewrite(first, first.size).await?);
                }
            }
            taken = i + 1;
            let mut cursor = segment.cursor();
            while let Some(b) = cursor.next_checked().await? {
                let bytes = cursor.bytes(&b);
                let header = *BatchHeader::parse(bytes)?;
                let unreadable = |e: &CleanError| {
                    tracing::warn!(file = %segment.path.display(), offset = %b.base, error = %e,
                            "compaction: a batch's records cannot be read; it is kept as it is");
                };
                let cleaned = clean_one(bytes, &header, keep, fate, &unreadable, markers);
                let out = match (&mut out, &cleaned) {
                    (Some(out), _) => out,
                    (None, Cleaned::Unchanged) => continue,
                    (None, _) => out.insert(self.start_rewrite(first, b.position).await?),
                };
                removed += out.take(bytes, &header, cleaned).await?;
            }
        }
        let Some(out) = out else {
            return Ok(None);
        };
        let path = out.path.clone();
        let last = segments[taken - 1].next.to_kafka() - 1;
        let cleaned = out.finish(last).await?;
        Ok(Some(Rewrite {
            path,
            segment: cleaned,
            merged: taken,
            removed,
        }))
    }

    /// Starts rewriting the segments that begin with `first` into its `.cleaning` file, with
    /// its batches before byte `position` copied as they are.
    async fn start_rewrite(&self, first: &Sealed, position: u64) -> Result<Output, LogError> {
        let path = cleaning_path(&first.path);
        let file = io::create(&path).await?;
        let mut out = Output {
            writer: DmaStreamWriterBuilder::new(file)
                .with_buffer_size(WRITE_CHUNK_BYTES)
                .build(),
            path,
            segment: Segment::empty(first.base, first.file.clone(), first.path.clone()),
            index_interval_bytes: self.config().index_interval_bytes,
            pending: None,
            covered_to: first.base.to_kafka(),
            emptied: None,
        };
        let mut cursor = first.cursor();
        while let Some(b) = cursor.next_checked().await? {
            if b.position >= position {
                break;
            }
            let bytes = cursor.bytes(&b).to_vec();
            out.keep(bytes, b.base.to_kafka(), b.last.to_kafka())
                .await?;
        }
        Ok(out)
    }

    /// Puts a rewrite in place of the segments of `group` if the log still holds them as they
    /// were; returns whether it did (otherwise the rewrite is deleted). The rewrite takes the
    /// first segment's name; the others' files go after it is in place (a crash in between
    /// leaves segments that recovery finds covered by the merged one, and removes).
    async fn replace(&self, group: &[Sealed], rewrite: Rewrite) -> Result<bool, LogError> {
        let Rewrite {
            path,
            segment: mut cleaned,
            ..
        } = rewrite;
        let first = &group[0];
        let still_there = |st: &super::State| {
            let sealed = &st.segments[..st.segments.len() - 1];
            let i = sealed
                .iter()
                .position(|s| s.base == first.base && Rc::ptr_eq(&s.file, &first.file))?;
            let same = sealed.get(i..i + group.len()).is_some_and(|held| {
                held.iter()
                    .zip(group)
                    .all(|(s, g)| s.base == g.base && Rc::ptr_eq(&s.file, &g.file))
            });
            same.then_some(i)
        };
        let permit = match self.lock().await {
            Ok(permit) => permit,
            Err(e) => {
                io::remove_if_exists(&path).await?;
                return Err(e);
            }
        };
        if still_there(&self.state.borrow()).is_none() {
            drop(permit);
            io::remove_if_exists(&path).await?;
            return Ok(false);
        }
        glommio::io::rename(&path, &first.path)
            .await
            .context(|| format!("renaming {} over {}", path.display(), first.path.display()))?;
        io::sync_dir_async(&self.dir).await?;
        cleaned.file = Rc::new(io::open_ro(&first.path).await?);
        let indexes = cleaned.encoded_indexes(&self.dir);
        let merged: Vec<Segment> = {
            let mut st = self.state.borrow_mut();
            let i = still_there(&st).expect("the write lock keeps the segments in the log");
            cleaned.first_write_ms = st.segments[i].first_write_ms;
            // Reads of these offsets go to the rewritten file from now on, not to what the tail
            // cache still holds of them.
            st.tail.drop_before(cleaned.next);
            st.segments
                .splice(i..i + group.len(), [cleaned])
                .skip(1)
                .collect()
        };
        for segment in &merged {
            segment.remove_files(&self.dir).await?;
        }
        drop(permit);
        // Recovery rebuilds indexes that do not describe their segment, so these need no sync.
        crate::segment::write_index_files(indexes, false).await?;
        Ok(true)
    }
}

/// A segment rewritten into its `.cleaning` file.
struct Rewrite {
    path: PathBuf,
    /// The segment as rewritten (its `file` is still the old one's until it replaces it).
    segment: Segment,
    /// How many segments it replaces (the first one's name, and those merged into it).
    merged: usize,
    removed: u64,
}

/// Where a segment is being rewritten.
struct Output {
    writer: DmaStreamWriter,
    path: PathBuf,
    /// Accounts the batches written, and builds the index.
    segment: Segment,
    index_interval_bytes: u32,
    /// The last kept batch, held back so that it can still grow over emptied batches after it.
    pending: Option<Vec<u8>>,
    /// The offset after those the written and pending batches cover.
    covered_to: i64,
    /// Of the emptied batches since then: the largest max timestamp and the first's leader epoch.
    emptied: Option<(i64, i32)>,
}

/// What compaction makes of one batch: gone if its transaction was aborted or it is a marker
/// that may go, as it is if its transaction is open, else without the records `keep` refuses.
/// A batch whose records cannot be read is kept as it is, after a word to `unreadable`.
/// `markers` follows the transactions through the batches.
fn clean_one(
    bytes: &[u8],
    header: &BatchHeader,
    keep: &dyn Fn(&KeyedRecord<'_>, i64) -> bool,
    fate: &dyn Fn(&[u8]) -> Option<TxnFate>,
    unreadable: &dyn Fn(&CleanError),
    markers: &mut Markers,
) -> Cleaned {
    let mut cleaned = match fate(bytes) {
        Some(TxnFate::Aborted) => Cleaned::Emptied,
        Some(TxnFate::Open) => Cleaned::Unchanged,
        _ => clean::clean_batch(bytes, |r| keep(r, header.max_timestamp())).unwrap_or_else(|e| {
            unreadable(&e);
            Cleaned::Unchanged
        }),
    };
    if header.is_control() {
        let kind = marker_of(bytes);
        if markers.removes(header.producer_id(), kind, header.max_timestamp()) {
            cleaned = Cleaned::Emptied;
        }
    } else if header.is_transactional() {
        let kept = !matches!(cleaned, Cleaned::Emptied);
        markers.on_data(header.producer_id(), kept);
    }
    cleaned
}

impl Output {
    /// Writes what is left of the batch `bytes` (with `header`) once `cleaned`, or notes it
    /// emptied; how many of its records went.
    ///
    /// # Errors
    /// [`LogError::Io`] if writing fails.
    async fn take(
        &mut self,
        bytes: &[u8],
        header: &BatchHeader,
        cleaned: Cleaned,
    ) -> Result<u64, LogError> {
        let count = |n: i32| u64::try_from(n).unwrap_or(0);
        match cleaned {
            Cleaned::Unchanged => {
                self.keep(bytes.to_vec(), header.base_offset(), header.last_offset())
                    .await?;
                Ok(0)
            }
            Cleaned::Rewritten(rewritten) => {
                let now = BatchHeader::parse(&rewritten)?.records_count();
                self.keep(rewritten, header.base_offset(), header.last_offset())
                    .await?;
                Ok(count(header.records_count() - now))
            }
            Cleaned::Emptied => {
                self.note_emptied(header);
                Ok(count(header.records_count()))
            }
        }
    }

    /// Bytes written so far, and held back.
    fn written_bytes(&self) -> u64 {
        self.segment.size + self.pending.as_ref().map_or(0, |p| p.len() as u64)
    }

    fn note_emptied(&mut self, header: &BatchHeader) {
        let (max_ts, epoch) = self
            .emptied
            .unwrap_or((NO_TIMESTAMP, header.partition_leader_epoch()));
        self.emptied = Some((max_ts.max(header.max_timestamp()), epoch));
    }

    /// Takes a kept batch covering `base ..= last`.
    async fn keep(&mut self, batch: Vec<u8>, base: i64, last: i64) -> Result<(), LogError> {
        self.cover_to(base - 1).await?;
        if let Some(previous) = self.pending.replace(batch) {
            self.write(&previous).await?;
        }
        self.covered_to = last + 1;
        Ok(())
    }

    /// Makes the batches written cover every offset up to `last`: the pending batch grows over
    /// them, or batches without records stand for them.
    async fn cover_to(&mut self, last: i64) -> Result<(), LogError> {
        if last < self.covered_to {
            return Ok(());
        }
        let (max_ts, epoch) = self.emptied.take().unwrap_or((NO_TIMESTAMP, -1));
        if let Some(pending) = &mut self.pending {
            let base = BatchHeader::parse(pending)?.base_offset();
            if let Ok(delta) = i32::try_from(last - base) {
                clean::extend_last_offset(pending, delta);
                self.covered_to = last + 1;
                return Ok(());
            }
        }
        if let Some(previous) = self.pending.take() {
            self.write(&previous).await?;
        }
        while self.covered_to <= last {
            let span = (last - self.covered_to).min(i64::from(i32::MAX));
            let delta = i32::try_from(span).unwrap_or(i32::MAX);
            let empty = clean::empty_batch(self.covered_to, delta, max_ts, epoch);
            self.write(&empty).await?;
            self.covered_to += span + 1;
        }
        Ok(())
    }

    async fn write(&mut self, batch: &[u8]) -> Result<(), LogError> {
        let header = BatchHeader::parse(batch)?;
        let written = SegmentBatch {
            position: self.segment.size,
            len: batch.len(),
            base: Offset::from_stored(header.base_offset()),
            last: Offset::from_stored(header.last_offset()),
            max_timestamp: header.max_timestamp(),
        };
        self.writer
            .write_all(batch)
            .await
            .context(|| format!("writing {}", self.path.display()))?;
        self.segment
            .record_batch(&written, self.index_interval_bytes);
        Ok(())
    }

    /// Writes what is held back, covering the segment's offsets up to `last`, and syncs the
    /// file; returns the segment as written.
    async fn finish(mut self, last: i64) -> Result<Segment, LogError> {
        self.cover_to(last).await?;
        if let Some(previous) = self.pending.take() {
            self.write(&previous).await?;
        }
        // Closing syncs the file and truncates it to the bytes written.
        self.writer
            .close()
            .await
            .context(|| format!("closing {}", self.path.display()))?;
        Ok(self.segment)
    }
}
