//! Deleting records: the log start offset moved by hand, and kept across restarts.
//!
//! Retention moves a log's start by whole segments, and after a restart the first segment's base
//! offset says where it is. Deleting records (Kafka's DeleteRecords) moves it to any offset up
//! to the high watermark, also into the middle of a segment: reads below it are refused at once,
//! and the next retention run deletes the segments wholly below it. So that a restart does not
//! bring those records back, the new start is written to `log-start-offset` in the log's
//! directory (durably: see `offset_file`) before it takes effect. On open, the offset found
//! there counts when it lies within the recovered log: one below the first segment is outdated
//! (retention has passed it), one above the log end is taken as the log end.

use super::offset_file::LOG_START;
use super::Log;
use crate::error::LogError;
use crate::offset::Offset;

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
        LOG_START.persist(&self.dir, target, true).await?;
        let mut st = self.state.borrow_mut();
        let (hw, next) = (st.high_watermark, st.next_offset);
        st.set_watermarks(target, hw, next);
        st.tail.drop_before(target);
        tracing::debug!(dir = %self.dir.display(), start = %target, "records deleted");
        Ok(target)
    }
}
