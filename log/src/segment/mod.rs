//! A segment: one file of back-to-back batches starting at a base offset, with its indexes.
//!
//! Files in a partition directory are named by the segment's base offset, 20 digits zero-padded:
//! `00000000000000000000.log`, `.index`, `.timeindex`. Only the last segment (the active one)
//! grows; the others are sealed, truncated to their real length and never written again except
//! by `truncate`, which may cut the newest ones.

mod appender;
mod cursor;
mod index;
mod recovery;

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use glommio::io::DmaFile;

pub(crate) use appender::{Appender, WriteOutcome};
pub(crate) use cursor::{BatchCursor, Step};
pub use index::SegmentIndex;
pub(crate) use index::SegmentSummary;
pub(crate) use recovery::recover;

use crate::error::{IoContext, LogError};
use crate::io;
use crate::limits::SEGMENT_OFFSET_SPAN_MAX;
use crate::offset::Offset;

/// A batch's place in a segment: where it starts, its size, its offsets and its largest
/// timestamp; what a round records for each batch it wrote and what a cursor finds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentBatch {
    /// Byte position in the segment.
    pub position: u64,
    /// Total bytes.
    pub len: usize,
    /// Base offset.
    pub base: Offset,
    /// Last offset.
    pub last: Offset,
    /// Largest timestamp.
    pub max_timestamp: i64,
}

/// The max timestamp of a segment without batches.
pub(crate) const NO_TIMESTAMP: i64 = i64::MIN;

/// Whether a batch whose last offset is `last` may lie in the segment based at `base`: its
/// offsets stay within [`SEGMENT_OFFSET_SPAN_MAX`] of the base, so every index entry's relative
/// offset fits 32 bits. Rolls keep to it, and recovery ends a segment before a batch that does
/// not (an empty segment takes any batch: its base is the batch's own, and a batch spans at
/// most `i32::MAX` offsets).
pub(crate) fn within_offset_span(base: Offset, last: Offset) -> bool {
    last.0.saturating_sub(base.0) <= SEGMENT_OFFSET_SPAN_MAX
}

/// Path of the log file of the segment at `base` in `dir`.
pub(crate) fn log_path(dir: &Path, base: Offset) -> PathBuf {
    dir.join(format!("{:020}.log", base.0))
}

/// Path of the offset index of the segment at `base` in `dir`.
pub(crate) fn index_path(dir: &Path, base: Offset) -> PathBuf {
    dir.join(format!("{:020}.index", base.0))
}

/// Path of the time index of the segment at `base` in `dir`.
pub(crate) fn time_index_path(dir: &Path, base: Offset) -> PathBuf {
    dir.join(format!("{:020}.timeindex", base.0))
}

/// Suffix added to a segment's log file when retention takes it out of the log. Such a file is
/// never read again: it is kept as a spare for a later roll to write over, or deleted.
pub(crate) const RETIRED_SUFFIX: &str = ".retired";

/// Suffix of the file compaction rewrites a segment into before that file replaces it; recovery
/// deletes such a file (a rewrite a crash interrupted).
pub(crate) const CLEANING_SUFFIX: &str = ".cleaning";

/// The path the segment whose log file is `log` is rewritten into.
pub(crate) fn cleaning_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(CLEANING_SUFFIX);
    PathBuf::from(name)
}

/// How long retiring a segment waits for reads still holding its file.
const READS_GRACE: Duration = Duration::from_secs(10);
/// How often it checks whether those reads are done.
const READS_POLL: Duration = Duration::from_millis(10);

/// Where a segment's log file goes when retention retires it.
pub(crate) fn retired_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(RETIRED_SUFFIX);
    PathBuf::from(name)
}

/// A segment's log file that retention took out of the log.
pub(crate) struct Retired {
    /// Its path, ending in [`RETIRED_SUFFIX`].
    pub path: PathBuf,
    /// Whether every read that held the file has finished, so it may be written over.
    pub unread: bool,
}

/// Writes index files encoded by [`Segment::encoded_indexes`], both at once.
///
/// # Errors
/// [`LogError::Io`] if a write fails.
pub(crate) async fn write_index_files(
    [(offsets, offset_bytes), (times, time_bytes)]: [(PathBuf, Vec<u8>); 2],
    sync: bool,
) -> Result<(), LogError> {
    let (offsets, times) = futures_lite::future::zip(
        io::write_whole_file(&offsets, &offset_bytes, sync),
        io::write_whole_file(&times, &time_bytes, sync),
    )
    .await;
    offsets.and(times)
}

/// One segment of a partition log.
pub(crate) struct Segment {
    /// Offset of the first batch.
    pub base: Offset,
    /// Offset after the last written batch.
    pub next: Offset,
    /// Bytes of written batches (the file's real length).
    pub size: u64,
    /// Largest batch max timestamp, or [`NO_TIMESTAMP`].
    pub max_timestamp: i64,
    /// Clock time of the first write into the segment (or of the open that found it non-empty).
    pub first_write_ms: Option<i64>,
    /// The sparse offset and time index.
    pub index: SegmentIndex,
    /// Bytes written since the last index entry.
    pub bytes_since_index: u64,
    /// The open file (read-write for the active segment, read-only for sealed ones).
    pub file: Rc<DmaFile>,
    /// Path of the log file.
    pub path: PathBuf,
}

impl Segment {
    /// An empty segment over an open file.
    pub fn empty(base: Offset, file: Rc<DmaFile>, path: PathBuf) -> Self {
        Segment {
            base,
            next: base,
            size: 0,
            max_timestamp: NO_TIMESTAMP,
            first_write_ms: None,
            index: SegmentIndex::default(),
            bytes_since_index: 0,
            file,
            path,
        }
    }

    /// Accounts a batch written at the end of the segment: index entry every
    /// `index_interval_bytes`, sizes, next offset and max timestamp.
    pub fn record_batch(&mut self, b: &SegmentBatch, index_interval_bytes: u32) {
        assert_eq!(b.position, self.size, "batches are written back to back");
        assert_eq!(b.base, self.next, "offsets follow without gaps");
        // Rolls keep a segment's offsets within `SEGMENT_OFFSET_SPAN_MAX` of its base and its
        // size below 4 GiB, and recovery ends a segment before a batch outside them; an entry
        // that could not be stored is left out rather than wrapped (the index is sparse).
        if self.bytes_since_index >= u64::from(index_interval_bytes) {
            let relative = u32::try_from(b.base.0.saturating_sub(self.base.0));
            if let (Ok(relative), Ok(position)) = (relative, u32::try_from(b.position)) {
                self.index.push(relative, position, self.max_timestamp);
                self.bytes_since_index = 0;
            }
        }
        self.bytes_since_index += b.len as u64;
        self.size += b.len as u64;
        self.next = b.last.plus(1);
        self.max_timestamp = self.max_timestamp.max(b.max_timestamp);
    }

    /// What the index files say about this segment.
    pub fn summary(&self) -> SegmentSummary {
        SegmentSummary {
            base: self.base,
            log_bytes: self.size,
            next: self.next,
            max_timestamp: self.max_timestamp,
        }
    }

    /// Writes both index files for the segment as it is now.
    ///
    /// # Errors
    /// [`LogError::Io`] if a write fails.
    pub async fn write_indexes(&self, dir: &Path, sync: bool) -> Result<(), LogError> {
        write_index_files(self.encoded_indexes(dir), sync).await
    }

    /// The two index files' paths and contents, as the segment is now.
    pub fn encoded_indexes(&self, dir: &Path) -> [(PathBuf, Vec<u8>); 2] {
        let summary = self.summary();
        [
            (
                index_path(dir, self.base),
                self.index.encode_offsets(summary),
            ),
            (
                time_index_path(dir, self.base),
                self.index.encode_times(summary),
            ),
        ]
    }

    /// Removes the segment's three files.
    ///
    /// # Errors
    /// [`LogError::Io`] if a removal fails.
    pub async fn remove_files(&self, dir: &Path) -> Result<(), LogError> {
        io::remove_if_exists(&self.path).await?;
        io::remove_if_exists(&index_path(dir, self.base)).await?;
        io::remove_if_exists(&time_index_path(dir, self.base)).await
    }

    /// Takes a segment out of the log's directory for good: renames its log file out of the log
    /// (so a crash never brings it back, whatever happens to it next), removes its index files,
    /// and waits up to [`READS_GRACE`] for reads still holding the file to finish.
    ///
    /// # Errors
    /// [`LogError::Io`] if the rename or a removal fails.
    pub async fn retire(self, dir: &Path) -> Result<Retired, LogError> {
        let path = retired_path(&self.path);
        glommio::io::rename(&self.path, &path)
            .await
            .context(|| format!("renaming {} to retire it", self.path.display()))?;
        io::remove_if_exists(&index_path(dir, self.base)).await?;
        io::remove_if_exists(&time_index_path(dir, self.base)).await?;
        let mut waited = Duration::ZERO;
        while Rc::strong_count(&self.file) > 1 && waited < READS_GRACE {
            glommio::timer::sleep(READS_POLL).await;
            waited += READS_POLL;
        }
        let unread = Rc::strong_count(&self.file) == 1;
        Ok(Retired { path, unread })
    }

    /// Bytes on disk: the log file plus both index files.
    pub fn disk_bytes(&self) -> u64 {
        self.size + self.index.file_bytes()
    }
}
