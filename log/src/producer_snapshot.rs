//! Producer-state snapshots: the idempotent producers' state as of an offset, kept beside the
//! segments so that a restart knows every producer, not only those whose batches recovery reads.
//!
//! The log does not read the state. It keeps an opaque body (the engine's producer table) with
//! the offset it holds for, `S`: the state after every batch below `S` and none at or above it.
//! A snapshot is the file `<S, 20 digits>.producers`, written to a temporary file, synced,
//! renamed into place and the directory synced, so that a crash leaves a whole snapshot or none;
//! the newest [`SNAPSHOTS_KEPT`] are kept. Its layout (big-endian, see docs/FORMAT.md):
//!
//! ```text
//! magic "SPPS" | version u16 = 1 | offset u64 | body length u32 | CRC-32C of the body u32 | body
//! ```
//!
//! At open, recovery takes the newest snapshot that checks and lies between the log's end and
//! the base of the oldest sealed segment it may read for a replay (the one before the active
//! one, and those before it within
//! [`SNAPSHOT_REPLAY_BYTES_MAX`](crate::limits::SNAPSHOT_REPLAY_BYTES_MAX)), and hands it over
//! with the headers of the idempotent batches from its offset on: replaying them onto the
//! snapshot gives the state at the end of the log. The lower bound keeps a start's reading
//! bounded beyond the active segment, which recovery reads whole anyway; a snapshot beyond the
//! end describes batches a crash lost. Without such a snapshot (a log older than snapshots, or a
//! crash after rolls past that bound since the last snapshot), the headers of the log's last
//! [`PRODUCER_HISTORY_BYTES`](crate::limits::PRODUCER_HISTORY_BYTES) are handed over instead.

use std::path::{Path, PathBuf};

use crate::batch::ProducerBatchHeader;
use crate::error::{IoContext, LogError};
use crate::io;
use crate::offset::Offset;

/// Snapshots kept per log: the newest, and the one before in case the newest lies beyond the end
/// of a log that lost its last writes (a power loss under `fsync=never`).
pub(crate) const SNAPSHOTS_KEPT: usize = 2;
/// Largest snapshot file read back; a bigger one is not a snapshot this log wrote.
const SNAPSHOT_BYTES_MAX: u64 = 64 << 20;
const MAGIC: &[u8; 4] = b"SPPS";
const VERSION: u16 = 1;
const HEADER_BYTES: usize = 4 + 2 + 8 + 4 + 4;
const SUFFIX: &str = ".producers";

/// A producer-state snapshot: the state after every batch below `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerSnapshot {
    /// The offset the state holds for.
    pub offset: Offset,
    /// The state, as its owner encoded it.
    pub body: Vec<u8>,
}

/// What recovery hands over for rebuilding the producers' state.
#[derive(Debug, Default)]
pub struct RecoveredProducers {
    /// The newest usable snapshot, if any.
    pub snapshot: Option<ProducerSnapshot>,
    /// The headers of the idempotent batches (producer id ≥ 0) to replay, in log order: those
    /// from the snapshot's offset on, or without a snapshot those of the log's last
    /// [`PRODUCER_HISTORY_BYTES`](crate::limits::PRODUCER_HISTORY_BYTES).
    pub batches: Vec<ProducerBatchHeader>,
}

fn path(dir: &Path, offset: Offset) -> PathBuf {
    dir.join(format!("{:020}{SUFFIX}", offset.0))
}

/// The offsets of the snapshot files in `dir`, ascending.
fn list(dir: &Path) -> Result<Vec<Offset>, LogError> {
    io::offsets_named(dir, SUFFIX)
}

fn encode(offset: Offset, body: &[u8]) -> Result<Vec<u8>, LogError> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&n| u64::from(n) + HEADER_BYTES as u64 <= SNAPSHOT_BYTES_MAX)
        .ok_or_else(|| LogError::InvalidConfig {
            reason: format!("a producer snapshot of {} bytes is too large", body.len()),
        })?;
    let mut file = Vec::with_capacity(HEADER_BYTES + body.len());
    file.extend_from_slice(MAGIC);
    file.extend_from_slice(&VERSION.to_be_bytes());
    file.extend_from_slice(&offset.0.to_be_bytes());
    file.extend_from_slice(&len.to_be_bytes());
    file.extend_from_slice(&crc32c::crc32c(body).to_be_bytes());
    file.extend_from_slice(body);
    Ok(file)
}

/// The snapshot in `file`, named for `offset`, or why it is not one.
fn decode(offset: Offset, file: &[u8]) -> Result<ProducerSnapshot, &'static str> {
    let (header, body) = file
        .split_at_checked(HEADER_BYTES)
        .ok_or("shorter than its header")?;
    let field = |at: usize, n: usize| &header[at..at + n];
    let number = |at: usize, n: usize| {
        field(at, n)
            .iter()
            .fold(0u64, |v, &b| v << 8 | u64::from(b))
    };
    if field(0, 4) != MAGIC {
        return Err("bad magic");
    }
    if number(4, 2) != u64::from(VERSION) {
        return Err("unknown version");
    }
    if number(6, 8) != offset.0 {
        return Err("its offset is not the one in its name");
    }
    if number(14, 4) != body.len() as u64 {
        return Err("its length does not match the file");
    }
    if number(18, 4) != u64::from(crc32c::crc32c(body)) {
        return Err("CRC mismatch");
    }
    Ok(ProducerSnapshot {
        offset,
        body: body.to_vec(),
    })
}

/// Saves `body` as the snapshot at `offset` in `dir`, durably, and removes all but the newest
/// [`SNAPSHOTS_KEPT`].
pub(crate) async fn save(dir: &Path, offset: Offset, body: &[u8]) -> Result<(), LogError> {
    let file = encode(offset, body)?;
    let path = path(dir, offset);
    let temp = path.with_extension("producers.tmp");
    io::write_whole_file(&temp, &file, true).await?;
    std::fs::rename(&temp, &path)
        .context(|| format!("renaming {} to {}", temp.display(), path.display()))?;
    io::sync_dir_async(dir).await?;
    let offsets = list(dir)?;
    let old = offsets.len().saturating_sub(SNAPSHOTS_KEPT);
    for &stale in &offsets[..old] {
        io::remove_if_exists(&self::path(dir, stale)).await?;
    }
    Ok(())
}

/// Removes the snapshots above `end` (the log was cut there).
pub(crate) async fn remove_above(dir: &Path, end: Offset) -> Result<(), LogError> {
    for offset in list(dir)?.into_iter().filter(|&o| o > end) {
        io::remove_if_exists(&path(dir, offset)).await?;
    }
    Ok(())
}

/// The newest snapshot in `dir` within `from..=end` that checks. A damaged one is skipped with
/// a warning, and so are snapshots of unreadable files.
pub(crate) fn newest_within(dir: &Path, from: Offset, end: Offset) -> Option<ProducerSnapshot> {
    let offsets = match list(dir) {
        Ok(offsets) => offsets,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list producer snapshots; ignoring them");
            return None;
        }
    };
    for &offset in offsets.iter().rev() {
        if offset > end || offset < from {
            continue;
        }
        let file = path(dir, offset);
        let read = std::fs::metadata(&file)
            .and_then(|m| {
                if m.len() > SNAPSHOT_BYTES_MAX {
                    Err(std::io::Error::other("larger than any snapshot"))
                } else {
                    std::fs::read(&file)
                }
            })
            .map_err(|e| e.to_string())
            .and_then(|bytes| decode(offset, &bytes).map_err(str::to_string));
        match read {
            Ok(snapshot) => return Some(snapshot),
            Err(reason) => tracing::warn!(
                file = %file.display(),
                %reason,
                "ignoring a producer snapshot that does not check"
            ),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_decodes_only_as_written() {
        let file = encode(Offset(42), b"state").expect("encode");
        assert_eq!(
            decode(Offset(42), &file),
            Ok(ProducerSnapshot {
                offset: Offset(42),
                body: b"state".to_vec()
            })
        );
        assert_eq!(
            decode(Offset(41), &file),
            Err("its offset is not the one in its name")
        );
        let mut flipped = file.clone();
        flipped[HEADER_BYTES + 1] ^= 1;
        assert_eq!(decode(Offset(42), &flipped), Err("CRC mismatch"));
        assert_eq!(
            decode(Offset(42), &file[..file.len() - 1]),
            Err("its length does not match the file")
        );
        assert_eq!(
            decode(Offset(42), &file[..10]),
            Err("shorter than its header")
        );
    }
}
