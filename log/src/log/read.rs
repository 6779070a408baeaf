//! The read path: fetch from an offset, and find the offset for a timestamp.
//!
//! Reads see only batches below the high watermark. Recent batches come from the tail cache
//! (reference-counted `Bytes`, no copy); older ones from the segment files through DMA reads, each
//! batch checked again (length, magic, CRC-32C, offset continuity) so that nothing damaged on disk
//! after recovery is ever returned.

use std::borrow::Cow;
use std::path::PathBuf;
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::DmaFile;

use super::Log;
use crate::batch::clean::records_section;
use crate::batch::{BatchHeader, Records};
use crate::error::LogError;
use crate::limits::{LONG_READ_WINDOW_BYTES, READ_WINDOW_BYTES};
use crate::offset::Offset;
use crate::segment::{BatchCursor, SegmentBatch, Step, NO_TIMESTAMP};

/// Smallest window a fetch reads from disk at once.
const MIN_READ_WINDOW_BYTES: usize = 16 << 10;

/// Where a disk walk starts.
pub(super) struct WalkStart {
    pub(super) file: Rc<DmaFile>,
    pub(super) path: PathBuf,
    pub(super) position: u64,
    pub(super) expected_base: Offset,
    pub(super) end: u64,
}

impl WalkStart {
    /// A cursor that walks from here, reading `window_bytes` at a time.
    pub(super) fn cursor(&self, window_bytes: usize) -> BatchCursor {
        BatchCursor::new(
            self.file.clone(),
            self.path.clone(),
            self.position,
            self.expected_base,
            self.end,
            window_bytes,
        )
    }
}

impl Log {
    /// Whole batches starting with the one holding `from`, below the high watermark, up to
    /// `max_bytes` but always at least one batch when any is available; empty when `from` is the
    /// high watermark.
    ///
    /// # Errors
    /// [`LogError::OffsetOutOfRange`] when `from` is below the start or above the high watermark;
    /// [`LogError::Corrupt`] if the first batch on disk no longer checks; [`LogError::Io`];
    /// [`LogError::Closed`].
    pub async fn read(&self, from: Offset, max_bytes: usize) -> Result<Vec<Bytes>, LogError> {
        let mut out: Vec<Bytes> = Vec::new();
        let mut at = from;
        let mut budget = max_bytes;
        // A segment compaction emptied holds batches without records only: a read that found
        // nothing else goes on into the next segment, so that no reader is answered with no
        // record while records follow (librdkafka takes such answers for a record too large
        // for its fetch size, and reports one after ten in a row).
        loop {
            let (batches, next) = match self.read_segment(at, budget).await {
                Ok(read) => read,
                // What was read stands (retention may have moved the start meanwhile).
                Err(_) if !out.is_empty() => return Ok(out),
                Err(e) => return Err(e),
            };
            budget = budget.saturating_sub(batches.iter().map(Bytes::len).sum());
            let go_on = next.filter(|_| {
                budget > 0
                    && !batches.is_empty()
                    && batches
                        .iter()
                        .all(|b| BatchHeader::parse(b).is_ok_and(|h| h.records_count() == 0))
            });
            out.extend(batches);
            match go_on {
                Some(next) => at = next,
                None => return Ok(out),
            }
        }
    }

    /// Whole batches starting with the one holding `from`, up to the end of its segment (or of
    /// the tail cache's part of the log), as [`Log::read`] describes; and where the next segment
    /// starts, if below the high watermark.
    async fn read_segment(
        &self,
        from: Offset,
        max_bytes: usize,
    ) -> Result<(Vec<Bytes>, Option<Offset>), LogError> {
        let start = {
            let st = self.state.borrow();
            if st.closed {
                return Err(self.closed_error());
            }
            if from < st.start_offset || from > st.high_watermark {
                return Err(LogError::OffsetOutOfRange {
                    requested: from,
                    start: st.start_offset,
                    end: st.high_watermark,
                });
            }
            if from == st.high_watermark {
                return Ok((Vec::new(), None));
            }
            if let Some(batches) = st.tail.read(from, st.high_watermark, max_bytes) {
                let bytes: usize = batches.iter().map(Bytes::len).sum();
                self.bump_stats(|s| s.bytes_read_cached += bytes as u64);
                return Ok((batches, None));
            }
            self.walk_start(&st, from, None)
        };
        // The wanted batch lies at most an index interval (plus a batch) past the index entry.
        let interval = self.config.borrow().index_interval_bytes as usize;
        let window = max_bytes
            .saturating_add(interval)
            .clamp(MIN_READ_WINDOW_BYTES, LONG_READ_WINDOW_BYTES);
        let mut cursor = start.cursor(window);
        let mut out = Vec::new();
        let mut total = 0usize;
        let mut ended = false;
        loop {
            match cursor.next().await? {
                Step::Batch(b) if b.last < from => continue,
                Step::Batch(b) => {
                    if !out.is_empty() && total + b.len > max_bytes {
                        break;
                    }
                    total += b.len;
                    out.push(Bytes::copy_from_slice(cursor.bytes(&b)));
                    if total >= max_bytes {
                        break;
                    }
                }
                Step::End => {
                    ended = true;
                    break;
                }
                Step::Damaged { position, reason } => {
                    if out.is_empty() {
                        return Err(LogError::Corrupt {
                            file: start.path,
                            position,
                            reason,
                        });
                    }
                    break;
                }
            }
        }
        self.bump_stats(|s| s.bytes_read_from_disk += total as u64);
        let next = cursor.expected_base();
        let more = ended && next < self.state.borrow().high_watermark;
        Ok((out, more.then_some(next)))
    }

    /// The first offset at or after the start whose record timestamp is at or after `ts_ms`,
    /// with that timestamp; `None` if no written record is that recent.
    ///
    /// # Errors
    /// [`LogError::Corrupt`] if a batch on the way no longer checks; [`LogError::Io`];
    /// [`LogError::Closed`].
    pub async fn offset_for_timestamp(
        &self,
        ts_ms: i64,
    ) -> Result<Option<(Offset, i64)>, LogError> {
        // The first segment that may hold such a record, then the next: records deleted below
        // the start (see `start_offset`) may have been the only recent ones of a segment.
        let mut walked: Option<Offset> = None;
        loop {
            let (start, start_offset) = {
                let st = self.state.borrow();
                if st.closed {
                    return Err(self.closed_error());
                }
                let Some(segment) = st.segments.iter().find(|s| {
                    walked.is_none_or(|w| s.base > w)
                        && s.next > st.start_offset
                        && s.max_timestamp >= ts_ms
                }) else {
                    return Ok(None);
                };
                walked = Some(segment.base);
                (
                    self.walk_start(&st, segment.base, Some(ts_ms)),
                    st.start_offset,
                )
            };
            if let Some(found) = walk_for_timestamp(start, ts_ms, start_offset).await? {
                return Ok(Some(found));
            }
        }
    }

    /// The first record at or after the start that has the log's largest timestamp, with that
    /// timestamp (Kafka's ListOffsets -3, KIP-734); `None` when no record is readable.
    ///
    /// # Errors
    /// [`LogError::Corrupt`] if a batch on the way no longer checks; [`LogError::Io`];
    /// [`LogError::Closed`].
    pub async fn offset_of_max_timestamp(&self) -> Result<Option<(Offset, i64)>, LogError> {
        let (partial, whole_max, start_offset) = {
            let st = self.state.borrow();
            if st.closed {
                return Err(self.closed_error());
            }
            let mut live = st
                .segments
                .iter()
                .filter(|s| s.next > st.start_offset && s.base < st.high_watermark)
                .peekable();
            // A segment that records were deleted from up to its middle knows the largest
            // timestamp of all its records, deleted ones included: walk what remains of it.
            let partial = live
                .next_if(|s| s.base < st.start_offset)
                .map(|_| self.walk_start(&st, st.start_offset, None));
            let whole_max = live
                .map(|s| s.max_timestamp)
                .filter(|&ts| ts != NO_TIMESTAMP)
                .max();
            (partial, whole_max, st.start_offset)
        };
        let partial_max = match partial {
            Some(start) => max_timestamp_from(start, start_offset).await?,
            None => None,
        };
        let Some(max) = partial_max.max(whole_max) else {
            return Ok(None);
        };
        // The first record at or after the start whose timestamp reaches the largest one.
        self.offset_for_timestamp(max).await
    }

    /// Where to start walking the segment holding `from` (or, with `ts`, the segment's first
    /// batch that may hold a record at or after `ts`).
    pub(super) fn walk_start(&self, st: &super::State, from: Offset, ts: Option<i64>) -> WalkStart {
        let i = st.segments.partition_point(|s| s.base <= from).max(1) - 1;
        let segment = &st.segments[i];
        let (relative, position) = match ts {
            Some(ts) => segment.index.entry_for_timestamp(ts),
            None => segment
                .index
                .entry_for(u32::try_from(from.0 - segment.base.0).unwrap_or(u32::MAX)),
        };
        WalkStart {
            file: segment.file.clone(),
            path: segment.path.clone(),
            position,
            expected_base: segment.base.plus(u64::from(relative)),
            end: segment.size,
        }
    }
}

/// The largest timestamp of the batches from `start` to the end of its segment that end at or
/// after offset `from`.
async fn max_timestamp_from(start: WalkStart, from: Offset) -> Result<Option<i64>, LogError> {
    let mut cursor = start.cursor(LONG_READ_WINDOW_BYTES);
    let mut max = None;
    while let Some(b) = cursor.next_checked().await? {
        if b.base >= from {
            max = max.max(Some(b.max_timestamp));
        } else if b.last >= from {
            // The batch holding `from`: only its records from there on count.
            max = max.max(Some(max_record_timestamp_from(cursor.bytes(&b), &b, from)));
        }
    }
    Ok(max)
}

/// Walks one segment from `start` for the first record at or after offset `from` whose
/// timestamp is at or after `ts_ms`.
async fn walk_for_timestamp(
    start: WalkStart,
    ts_ms: i64,
    from: Offset,
) -> Result<Option<(Offset, i64)>, LogError> {
    let mut cursor = start.cursor(READ_WINDOW_BYTES);
    while let Some(b) = cursor.next_checked().await? {
        if b.max_timestamp >= ts_ms && b.last >= from {
            let found = first_record_at_or_after(cursor.bytes(&b), &b, ts_ms, from);
            if found.is_some() {
                return Ok(found);
            }
        }
    }
    Ok(None)
}

/// The records of a create-time batch (decompressed where compressed), or `None` where the
/// batch's own max timestamp must stand for its records': a log-append-time batch (every record
/// has that time, as Kafka reads it), or one whose records cannot be read.
fn create_time_records<'a>(bytes: &'a [u8]) -> Option<(i64, Cow<'a, [u8]>)> {
    let header = BatchHeader::parse(bytes).ok()?;
    if header.is_log_append_time() {
        return None;
    }
    let records = records_section(bytes, header).ok()?;
    Some((header.base_timestamp(), records))
}

/// The largest timestamp of a batch's records at or after `from`: each record's own for
/// create-time batches, compressed or not, the batch's max timestamp otherwise.
fn max_record_timestamp_from(bytes: &[u8], b: &SegmentBatch, from: Offset) -> i64 {
    let Some((base_ts, records)) = create_time_records(bytes) else {
        return b.max_timestamp;
    };
    let mut max = NO_TIMESTAMP;
    for record in Records::new(&records) {
        let Ok(r) = record else {
            return b.max_timestamp;
        };
        let delta = u64::try_from(r.offset_delta).unwrap_or(0);
        if Offset(b.base.0.saturating_add(delta)) >= from {
            max = max.max(base_ts.saturating_add(r.timestamp_delta));
        }
    }
    max
}

/// Within a batch whose max timestamp is at or after `ts` and that ends at or after `from`, the
/// first record at or after both, as Kafka finds it: each record's own timestamp for create-time
/// batches (a compressed one is decompressed, as Kafka does), the batch's base offset (at least
/// `from`) and max timestamp for log-append-time batches. `None` when the batch's records at or
/// after `from` are all older than `ts`.
fn first_record_at_or_after(
    bytes: &[u8],
    b: &SegmentBatch,
    ts: i64,
    from: Offset,
) -> Option<(Offset, i64)> {
    let fallback = Some((b.base.max(from), b.max_timestamp));
    let Some((base_ts, records)) = create_time_records(bytes) else {
        return fallback;
    };
    for record in Records::new(&records) {
        let Ok(r) = record else { return fallback };
        let record_ts = base_ts.saturating_add(r.timestamp_delta);
        // The delta is the producer's: kept within the batch's own offsets.
        let delta = u64::try_from(r.offset_delta).unwrap_or(0);
        let offset = Offset(b.base.0.saturating_add(delta)).min(b.last);
        if record_ts >= ts && offset >= from {
            return Some((offset, record_ts));
        }
    }
    None
}
