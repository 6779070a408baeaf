//! Replacing a small file of the node's own state so that a crash leaves either the old file or
//! the whole new one: the bytes go to a temporary file beside it, which is synced and renamed
//! over the old one, and the directory is synced so the rename itself survives a power loss.
//! Topic metadata, transaction state, client quotas and the cluster id are written this way.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{EngineError, Result};

/// Replaces `path` with `bytes`, atomically and durably (see the module docs); creates its
/// directory if need be. The temporary file is `path` with `.tmp` appended.
///
/// # Errors
/// [`EngineError::Io`] naming the step and the file that failed.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |what: &str, p: &Path, source: std::io::Error| EngineError::Io {
        context: format!("{what} {}", p.display()),
        source,
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
    let temp = temp_path(path);
    let mut file = File::create(&temp).map_err(|e| io("creating", &temp, e))?;
    file.write_all(bytes).map_err(|e| io("writing", &temp, e))?;
    file.sync_all().map_err(|e| io("syncing", &temp, e))?;
    drop(file);
    fs::rename(&temp, path).map_err(|e| io("renaming to", path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing directory", dir, e))
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("cluster.id");
        replace(&path, b"first").unwrap();
        replace(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(
            temp_path(&path),
            dir.path().join("state").join("cluster.id.tmp")
        );
        assert!(!temp_path(&path).exists());
    }
}
