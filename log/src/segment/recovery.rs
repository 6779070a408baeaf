//! Opening a partition directory: finding segments, trusting or rebuilding their indexes, and
//! scanning the last segment so the log ends on the last good batch.
//!
//! Sealed segments were truncated and indexed when they were sealed; their index files are
//! trusted only if their checksum holds and they describe exactly this segment (base offset and
//! length) and its successor's base. Otherwise the segment is scanned (every batch checked) and
//! the indexes rewritten. The last segment is always scanned: it may end in a torn write, in
//! preallocated zeros, or in garbage. The first batch whose length, magic, CRC or offset does not
//! check ends the log there: the file is truncated and any later segment removed, with a warning
//! naming the file and position (no warning for never-written zeros, the normal tail after a
//! crash of a preallocated file).

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use crate::batch::{BatchDefect, ProducerBatchHeader};
use crate::clock::Clock;
use crate::config::LogConfig;
use crate::error::{IoContext, LogError};
use crate::io;
use crate::limits::{
    LONG_READ_WINDOW_BYTES, PRODUCER_HISTORY_BYTES, SCAN_PROGRESS_BYTES, SNAPSHOT_REPLAY_BYTES_MAX,
    SPARE_SEGMENTS_MAX,
};
use crate::offset::Offset;
use crate::producer_snapshot::{self, RecoveredProducers};
use crate::segment::{
    index_path, log_path, time_index_path, within_offset_span, Appender, BatchCursor, Segment,
    SegmentIndex, Step, CLEANING_SUFFIX, RETIRED_SUFFIX,
};

/// Segments found in a directory, the last one open for writing.
pub(crate) struct Recovered {
    pub segments: Vec<Segment>,
    pub appender: Appender,
    /// Retired segment files kept for rolls to write over.
    pub spares: Vec<PathBuf>,
    /// The newest usable producer snapshot and the idempotent batch headers to replay onto it
    /// (see `producer_snapshot`).
    pub producers: RecoveredProducers,
}

/// Opens and recovers every segment in `dir` (creating an empty one at offset 0 if none).
///
/// # Errors
/// [`LogError::Io`] if the directory cannot be listed or a file cannot be read, written,
/// truncated or removed.
pub(crate) async fn recover(
    dir: &Path,
    config: &LogConfig,
    clock: &dyn Clock,
) -> Result<Recovered, LogError> {
    remove_interrupted_rewrites(dir).await?;
    let spares = adopt_retired(dir).await?;
    let bases = list_bases(dir)?;
    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
    let mut producer_batches = Vec::new();
    let mut i = 0;
    while i < bases.len() {
        let base = bases[i];
        if let Some(&next_base) = bases.get(i + 1) {
            if let Some(segment) = load_indexed(dir, base, next_base).await? {
                segments.push(segment);
                i += 1;
                continue;
            }
        }
        producer_batches.clear();
        let (segment, reached) = scan(
            dir,
            base,
            &bases[i + 1..],
            config,
            clock,
            &mut producer_batches,
        )
        .await?;
        let is_last = match reached {
            Reached::Successor { covered } => {
                remove_segments(dir, &bases[i + 1..i + 1 + covered], Removed::Merged).await?;
                i += 1 + covered;
                i == bases.len()
            }
            Reached::End => {
                i += 1;
                true
            }
        };
        if !is_last {
            segment.write_indexes(dir, false).await?;
        }
        segments.push(segment);
        if is_last {
            remove_segments(dir, &bases[i..], Removed::AfterDamage).await?;
            break;
        }
    }
    if segments.is_empty() {
        let path = log_path(dir, Offset(0));
        let file = Rc::new(io::open_rw(&path).await?);
        segments.push(Segment::empty(Offset(0), file, path));
        io::sync_dir(dir)?;
    }
    let producers = producer_history(dir, &segments, producer_batches).await;
    let active = segments.last_mut().expect("at least one segment");
    let file = Rc::new(io::open_rw(&active.path).await?);
    active.file = file;
    let appender = Appender::resume(&active.file, &active.path, active.size).await?;
    Ok(Recovered {
        segments,
        appender,
        spares,
        producers,
    })
}

/// The newest usable producer snapshot and the idempotent batch headers from its offset on, or
/// without one the headers of the log's last [`PRODUCER_HISTORY_BYTES`]. `active_batches` are
/// the active segment's, which recovery's scan collected.
async fn producer_history(
    dir: &Path,
    segments: &[Segment],
    active_batches: Vec<ProducerBatchHeader>,
) -> RecoveredProducers {
    let Some((active, sealed)) = segments.split_last() else {
        return RecoveredProducers::default();
    };
    // The sealed segments a replay may read: the one before the active one, and those before it
    // while they add up to at most SNAPSHOT_REPLAY_BYTES_MAX.
    let mut replayable = 0;
    let mut bytes = 0u64;
    for segment in sealed.iter().rev() {
        if replayable > 0 && bytes + segment.size > SNAPSHOT_REPLAY_BYTES_MAX {
            break;
        }
        bytes += segment.size;
        replayable += 1;
    }
    let replayable = &sealed[sealed.len() - replayable..];
    let from = replayable.first().map_or(active.base, |s| s.base);
    let Some(snapshot) = producer_snapshot::newest_within(dir, from, active.next) else {
        return RecoveredProducers {
            snapshot: None,
            batches: with_earlier_history(segments, active_batches).await,
        };
    };
    let mut batches = Vec::new();
    for segment in replayable.iter().filter(|s| s.next > snapshot.offset) {
        let position = if snapshot.offset > segment.base {
            let relative = u32::try_from(snapshot.offset.0 - segment.base.0).unwrap_or(u32::MAX);
            segment.index.entry_for(relative).1
        } else {
            0
        };
        batches.extend(producer_batches_from(segment, position).await);
    }
    batches.extend(active_batches);
    let start = i64::try_from(snapshot.offset.0).unwrap_or(i64::MAX);
    batches.retain(|h| h.header.base_offset() >= start);
    RecoveredProducers {
        snapshot: Some(snapshot),
        batches,
    }
}

/// `active_batches` (the active segment's idempotent batch headers) preceded by those of the
/// sealed segments' ends, back to [`PRODUCER_HISTORY_BYTES`] before the end of the log.
async fn with_earlier_history(
    segments: &[Segment],
    active_batches: Vec<ProducerBatchHeader>,
) -> Vec<ProducerBatchHeader> {
    let Some((active, sealed)) = segments.split_last() else {
        return active_batches;
    };
    let mut wanted = PRODUCER_HISTORY_BYTES.saturating_sub(active.size);
    let mut earlier = Vec::new();
    for segment in sealed.iter().rev() {
        if wanted == 0 {
            break;
        }
        let from = segment.size.saturating_sub(wanted);
        wanted -= segment.size - from;
        earlier.push(producer_batches_from(segment, from).await);
    }
    earlier
        .into_iter()
        .rev()
        .flatten()
        .chain(active_batches)
        .collect()
}

/// The headers of the idempotent batches of sealed `segment` from the indexed batch at or before
/// byte `from` to its end. Best effort: what a damaged batch or a failed read hides is left out
/// (with a warning), as the segment's own reads would find the damage anyway.
async fn producer_batches_from(segment: &Segment, from: u64) -> Vec<ProducerBatchHeader> {
    let (relative, position) = segment.index.entry_at_or_before_position(from);
    let mut cursor = BatchCursor::new(
        segment.file.clone(),
        segment.path.clone(),
        position,
        segment.base.plus(u64::from(relative)),
        segment.size,
        LONG_READ_WINDOW_BYTES,
    );
    let mut headers = Vec::new();
    loop {
        match cursor.next_checked().await {
            Ok(Some(b)) => headers.extend(ProducerBatchHeader::of(cursor.bytes(&b))),
            Ok(None) => return headers,
            Err(e) => {
                tracing::warn!(file = %segment.path.display(), error = %e, "reading producer history");
                return headers;
            }
        }
    }
}

/// Why recovery removes a segment.
#[derive(Debug, Clone, Copy)]
enum Removed {
    /// Compaction merged it into the segment before it (the process stopped before it could
    /// remove it).
    Merged,
    /// It comes after a segment whose damage ends the log.
    AfterDamage,
}

/// Removes the files of the segments at `bases`, saying why in the log.
///
/// # Errors
/// [`LogError::Io`] if a file cannot be removed.
async fn remove_segments(dir: &Path, bases: &[Offset], why: Removed) -> Result<(), LogError> {
    for &base in bases {
        let file = log_path(dir, base);
        match why {
            Removed::Merged => tracing::info!(file = %file.display(),
                "removing a segment compaction merged into the one before it"),
            Removed::AfterDamage => tracing::warn!(file = %file.display(),
                "removing segment after damaged segment"),
        }
        remove_segment_files(dir, base).await?;
    }
    Ok(())
}

/// Deletes the files compaction was rewriting segments into when the process stopped: the
/// segments they were to replace are still in place.
async fn remove_interrupted_rewrites(dir: &Path) -> Result<(), LogError> {
    for path in files_ending_with(dir, CLEANING_SUFFIX)? {
        tracing::info!(file = %path.display(), "deleting an interrupted compaction rewrite");
        io::remove_if_exists(&path).await?;
    }
    Ok(())
}

/// Keeps up to [`SPARE_SEGMENTS_MAX`] of the segment files that retention had retired as spares,
/// and deletes the others.
async fn adopt_retired(dir: &Path) -> Result<Vec<PathBuf>, LogError> {
    let mut retired = files_ending_with(dir, RETIRED_SUFFIX)?;
    retired.sort_unstable();
    let extra = retired.split_off(retired.len().min(SPARE_SEGMENTS_MAX));
    for path in extra {
        tracing::debug!(file = %path.display(), "deleting a retired segment");
        io::remove_gradually(&path).await?;
    }
    Ok(retired)
}

/// The paths of the files in `dir` whose names end with `suffix`.
fn files_ending_with(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>, LogError> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.context(|| format!("listing {}", dir.display()))?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(suffix))
        {
            found.push(entry.path());
        }
    }
    Ok(found)
}

/// Base offsets of the `.log` files in `dir`, ascending.
fn list_bases(dir: &Path) -> Result<Vec<Offset>, LogError> {
    io::offsets_named(dir, ".log")
}

/// A sealed segment whose index files check and describe it exactly, or `None`.
async fn load_indexed(
    dir: &Path,
    base: Offset,
    next_base: Offset,
) -> Result<Option<Segment>, LogError> {
    let path = log_path(dir, base);
    let log_bytes = std::fs::metadata(&path)
        .context(|| format!("reading metadata of {}", path.display()))?
        .len();
    let (Ok(offsets), Ok(times)) = (
        std::fs::read(index_path(dir, base)),
        std::fs::read(time_index_path(dir, base)),
    ) else {
        return Ok(None);
    };
    let Some((index, summary)) = SegmentIndex::decode(&offsets, &times, base, log_bytes) else {
        tracing::info!(file = %path.display(), "index missing, stale or damaged: rebuilding");
        return Ok(None);
    };
    if summary.next != next_base || summary.next <= base {
        return Ok(None);
    }
    let file = Rc::new(io::open_ro(&path).await?);
    Ok(Some(Segment {
        base,
        next: summary.next,
        size: log_bytes,
        max_timestamp: summary.max_timestamp,
        first_write_ms: None,
        index,
        bytes_since_index: 0,
        file,
        path,
    }))
}

/// Where a scanned segment ended.
enum Reached {
    /// Exactly where a later segment begins: the next one, or one after segments it `covered`
    /// (those a compaction merged into it, whose removal a crash interrupted).
    Successor { covered: usize },
    /// At its end, with no later segment to reach (the last one), or short of the next one
    /// (damage: the log ends here).
    End,
}

/// Scans a segment, checking every batch and rebuilding its index, and adds the headers of its
/// idempotent batches to `producer_batches` (so that the partition need not read the active
/// segment again). Truncates the file after the last good batch. Returns the segment and where
/// it ended among the base offsets of the segments after it (`later`).
async fn scan(
    dir: &Path,
    base: Offset,
    later: &[Offset],
    config: &LogConfig,
    clock: &dyn Clock,
    producer_batches: &mut Vec<ProducerBatchHeader>,
) -> Result<(Segment, Reached), LogError> {
    let path = log_path(dir, base);
    let file = Rc::new(io::open_rw(&path).await?);
    let file_bytes = file
        .file_size()
        .await
        .context(|| format!("sizing {}", path.display()))?;
    let mut segment = Segment::empty(base, file.clone(), path.clone());
    let mut cursor = BatchCursor::new(
        file.clone(),
        path.clone(),
        0,
        base,
        file_bytes,
        LONG_READ_WINDOW_BYTES,
    );
    let started = Instant::now();
    let intact = scan_batches(
        &mut cursor,
        &mut segment,
        file_bytes,
        config,
        producer_batches,
    )
    .await?;
    if segment.size >= SCAN_PROGRESS_BYTES {
        tracing::info!(
            file = %path.display(),
            mib = segment.size >> 20,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "segment scanned"
        );
    }
    let reached = match later.iter().position(|&b| b == segment.next) {
        _ if !intact => Reached::End,
        None if later.is_empty() => Reached::End,
        Some(covered) => Reached::Successor { covered },
        None => {
            tracing::warn!(
                file = %path.display(),
                next = %segment.next,
                successor = %later[0],
                "segment does not reach its successor: the log ends here"
            );
            Reached::End
        }
    };
    if segment.size != file_bytes {
        file.truncate(segment.size)
            .await
            .context(|| format!("truncating {} to {} bytes", path.display(), segment.size))?;
    }
    if segment.size > 0 {
        segment.first_write_ms = Some(clock.now_ms());
    }
    Ok((segment, reached))
}

/// Walks `segment`'s file with `cursor`, recording every good batch in `segment` and the headers
/// of the idempotent ones in `producer_batches`, and logging progress every
/// [`SCAN_PROGRESS_BYTES`]. Returns whether the walk ended cleanly: `false` when a batch reaches
/// beyond the segment's offset span or is damaged.
async fn scan_batches(
    cursor: &mut BatchCursor,
    segment: &mut Segment,
    file_bytes: u64,
    config: &LogConfig,
    producer_batches: &mut Vec<ProducerBatchHeader>,
) -> Result<bool, LogError> {
    let base = segment.base;
    let mut next_report = SCAN_PROGRESS_BYTES;
    loop {
        let b = match cursor.next().await? {
            Step::Batch(b) => b,
            Step::End => return Ok(true),
            Step::Damaged { position, reason } => {
                return is_clean_end(cursor, base, &segment.path, position, reason).await;
            }
        };
        if b.position >= next_report {
            tracing::info!(
                file = %segment.path.display(),
                scanned_mib = b.position >> 20,
                file_mib = file_bytes >> 20,
                "recovering: scanning a segment"
            );
            next_report += SCAN_PROGRESS_BYTES;
        }
        if !within_offset_span(base, b.last) {
            tracing::warn!(
                file = %segment.path.display(),
                position = b.position,
                offset = %b.base,
                "log ends before a batch whose offsets reach beyond the segment's span: truncating"
            );
            return Ok(false);
        }
        if let Some(header) = ProducerBatchHeader::of(cursor.bytes(&b)) {
            producer_batches.push(header);
        }
        segment.record_batch(&b, config.index_interval_bytes);
    }
}

/// Whether the bytes at `position`, which are not a good batch, end the segment cleanly: they
/// were never written, or they are a whole batch from before the segment's `base`, which is what
/// a reused (spare) file held before. Anything else is damage, and is logged.
async fn is_clean_end(
    cursor: &mut BatchCursor,
    base: Offset,
    path: &Path,
    position: u64,
    reason: BatchDefect,
) -> Result<bool, LogError> {
    let leftover =
        matches!(reason, BatchDefect::OffsetGap { found, .. } if found < base.to_kafka());
    if leftover || cursor.looks_unwritten().await? {
        return Ok(true);
    }
    tracing::warn!(
        file = %path.display(),
        position,
        offset = %cursor.expected_base(),
        %reason,
        "log ends before a damaged batch: truncating"
    );
    Ok(false)
}

/// Removes the three files of the segment at `base`.
async fn remove_segment_files(dir: &Path, base: Offset) -> Result<(), LogError> {
    let paths: [PathBuf; 3] = [
        log_path(dir, base),
        index_path(dir, base),
        time_index_path(dir, base),
    ];
    for p in paths {
        io::remove_if_exists(&p).await?;
    }
    Ok(())
}
