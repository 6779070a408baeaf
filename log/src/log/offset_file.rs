//! Offsets a log keeps in small files of its directory: where deleting records moved the log
//! start, and up to where compaction has cleaned.
//!
//! Each is decimal text and a newline, written to a temporary file, renamed over the old one
//! (synced, with the directory, when it must survive a crash), so that a crash leaves the old
//! offset or the new one. An unreadable file is reported and ignored: each caller's default is
//! the safe reading (the log starts at its first segment; nothing counts as cleaned).

use std::path::Path;

use crate::error::{IoContext, LogError};
use crate::io;
use crate::offset::Offset;

/// One offset file.
pub(super) struct OffsetFile {
    /// Its name in the log's directory.
    name: &'static str,
    /// What it holds, for messages.
    what: &'static str,
}

/// Where deleting records moved the log start (see `start_offset`).
pub(super) const LOG_START: OffsetFile = OffsetFile {
    name: "log-start-offset",
    what: "the log start offset",
};

/// The end of the sealed segments the last compaction pass cleaned (see `compact`).
pub(super) const CLEANED_TO: OffsetFile = OffsetFile {
    name: "cleaner-offset",
    what: "the compaction checkpoint",
};

impl OffsetFile {
    /// The offset in `dir`, if any.
    pub(super) fn load(&self, dir: &Path) -> Option<Offset> {
        let path = dir.join(self.name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read {}; ignoring it", self.what);
                return None;
            }
        };
        match text.trim().parse::<u64>() {
            Ok(offset) => Some(Offset(offset)),
            Err(_) => {
                tracing::warn!(file = %path.display(), content = %text.trim(), "{} is not a number; ignoring it", self.what);
                None
            }
        }
    }

    /// Writes `offset` in `dir`; durably (file and directory synced) if `durable`.
    pub(super) async fn persist(
        &self,
        dir: &Path,
        offset: Offset,
        durable: bool,
    ) -> Result<(), LogError> {
        let temp = dir.join(format!("{}.tmp", self.name));
        let path = dir.join(self.name);
        io::write_whole_file(&temp, format!("{}\n", offset.0).as_bytes(), durable).await?;
        std::fs::rename(&temp, &path)
            .context(|| format!("renaming {} to {}", temp.display(), path.display()))?;
        if durable {
            io::sync_dir_async(dir).await?;
        }
        Ok(())
    }

    /// Removes the file from `dir`.
    pub(super) async fn forget(&self, dir: &Path) -> Result<(), LogError> {
        io::remove_if_exists(&dir.join(self.name)).await
    }
}
