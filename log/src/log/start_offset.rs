//! Deleting records: the log start offset moved by hand, and kept across restarts.
//!
//! Retention moves a log's start by whole segments, and after a restart the first segment's base
//! offset says where it is. Deleting records (Kafka's DeleteRecords) moves it to any offset up
//! to the high watermark, also into the middle of a segment: reads below it are refused at once,
//! and the next retention run deletes the segments wholly below it. So that a restart does not
//! bring those records back, the new start is written to [`FILE_NAME`] in the log's directory
//! (decimal text; written to a temporary file, synced, renamed over the old one, the directory
//! synced) before it takes effect. On open, the offset found there counts when it lies within
//! the recovered log: one below the first segment is outdated (retention has passed it), one
//! above the log end is taken as the log end.

use std::path::Path;

use super::Log;
use crate::error::{IoContext, LogError};
use crate::io;
use crate::offset::Offset;

/// The file holding a start offset set by deleting records.
pub(super) const FILE_NAME: &str = "log-start-offset";
/// Where the next one is written before it is renamed over the old.
const TEMP_FILE_NAME: &str = "log-start-offset.tmp";

impl Log {
    /// Deletes every record below `before` (the high watermark if `None`): the log start offset
    /// moves there, reads below it are refused from now on and after a restart, and the next
    /// retention run deletes the segments wholly below it. Returns the log start offset, which
    /// stays where it is if it is already at or past `before`.
    ///
    /// # Errors
    /// [`LogError::OffsetOutOfRange`] when `before` is above the high watermark;
    /// [`LogError::Io`] if the start offset cannot be persisted; [`LogError::Closed`].
    pub async fn delete_records_before(&self, before: Option<Offset>) -> Result<Offset, LogError> {
        // Held so that two deletions persist their offsets in the order they take effect.
        let _permit = self.lock().await?;
        let target = {
            let st = self.state.borrow();
            let target = before.unwrap_or(st.high_watermark);
            if target > st.high_watermark {
                return Err(LogError::OffsetOutOfRange {
                    requested: target,
                    start: st.start_offset,
                    end: st.high_watermark,
                });
            }
            if target <= st.start_offset {
                return Ok(st.start_offset);
            }
            target
        };
        persist(&self.dir, target).await?;
        let mut st = self.state.borrow_mut();
        let (hw, next) = (st.high_watermark, st.next_offset);
        st.set_watermarks(target, hw, next);
        st.tail.drop_before(target);
        tracing::debug!(dir = %self.dir.display(), start = %target, "records deleted");
        Ok(target)
    }
}

/// The start offset a deletion left in `dir`, if any; an unreadable file is reported and
/// ignored (the log then starts at its first segment, as before any deletion).
pub(super) fn load(dir: &Path) -> Option<Offset> {
    let path = dir.join(FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read the log start offset; ignoring it");
            return None;
        }
    };
    match text.trim().parse::<u64>() {
        Ok(offset) => Some(Offset(offset)),
        Err(_) => {
            tracing::warn!(file = %path.display(), content = %text.trim(), "the log start offset is not a number; ignoring it");
            None
        }
    }
}

/// Writes `offset` as the start offset of the log in `dir`, durably.
async fn persist(dir: &Path, offset: Offset) -> Result<(), LogError> {
    let temp = dir.join(TEMP_FILE_NAME);
    let path = dir.join(FILE_NAME);
    io::write_whole_file(&temp, format!("{}\n", offset.0).as_bytes(), true).await?;
    std::fs::rename(&temp, &path)
        .context(|| format!("renaming {} to {}", temp.display(), path.display()))?;
    io::sync_dir_async(dir).await
}

/// Forgets a deletion's start offset (the log was emptied and continues elsewhere).
pub(super) async fn forget(dir: &Path) -> Result<(), LogError> {
    io::remove_if_exists(&dir.join(FILE_NAME)).await
}
