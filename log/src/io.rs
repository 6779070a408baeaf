//! Thin helpers over glommio's DMA files, and the per-thread probe that avoids glommio trap 1.
//!
//! glommio decides once per reactor whether the device supports polled I/O, by looking at the
//! first file opened with `DmaFile`. If that file is empty it decides wrongly and every later DMA
//! read fails with `EOPNOTSUPP` (errno 95). [`prepare_thread_io`] opens a small non-empty file
//! first; `Log::open` calls it, keyed by executor id, so callers need do nothing.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use glommio::io::{DmaFile, OpenOptions};

use crate::error::{IoContext, LogError};
use crate::limits::{REMOVE_STEP_BYTES, REMOVE_STEP_PAUSE};
use crate::offset::Offset;

/// Name of the probe file written in a log directory when none exists.
const PROBE_FILE: &str = ".spindle-io-probe";
/// Size of the probe file: one 4 KiB block, aligned for any device.
const PROBE_BYTES: usize = 4096;

thread_local! {
    /// Id of the executor on this thread whose reactor has been probed, if any.
    static PREPARED_EXECUTOR: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Makes DMA reads work on this executor thread: opens a non-empty file read-only with
/// `DmaFile::open` before any segment (writing a small probe file in `dir` if needed). Cheap
/// after the first call on an executor.
///
/// # Errors
/// [`LogError::Io`] if the probe file cannot be written or opened.
pub async fn prepare_thread_io(dir: &Path) -> Result<(), LogError> {
    let executor = glommio::executor().id();
    if PREPARED_EXECUTOR.with(Cell::get) == Some(executor) {
        return Ok(());
    }
    let path = dir.join(PROBE_FILE);
    let usable = std::fs::metadata(&path)
        .map(|m| m.len() > 0)
        .unwrap_or(false);
    if !usable {
        std::fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
        std::fs::write(&path, [0u8; PROBE_BYTES])
            .context(|| format!("writing {}", path.display()))?;
    }
    let file = DmaFile::open(&path)
        .await
        .context(|| format!("opening {}", path.display()))?;
    file.close()
        .await
        .context(|| format!("closing {}", path.display()))?;
    PREPARED_EXECUTOR.with(|p| p.set(Some(executor)));
    Ok(())
}

/// Opens (creating if missing, never truncating) a file for DMA reads and writes.
pub(crate) async fn open_rw(path: &Path) -> Result<DmaFile, LogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .dma_open(path)
        .await
        .context(|| format!("opening {} for writing", path.display()))
}

/// Opens an existing file for DMA writes that are durable when they complete (`O_DSYNC`).
pub(crate) async fn open_dsync(path: &Path) -> Result<DmaFile, LogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DSYNC)
        .dma_open(path)
        .await
        .context(|| format!("opening {} for durable writes", path.display()))
}

/// Opens an existing file for DMA reads.
pub(crate) async fn open_ro(path: &Path) -> Result<DmaFile, LogError> {
    DmaFile::open(path)
        .await
        .context(|| format!("opening {}", path.display()))
}

/// Creates the file at `path` for DMA writes, emptying it if it exists.
pub(crate) async fn create(path: &Path) -> Result<DmaFile, LogError> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .dma_open(path)
        .await
        .context(|| format!("creating {}", path.display()))
}

/// Writes `data` as the whole content of the file at `path` (replacing it) through DMA: one
/// aligned write, then a truncate to the real length, then an optional fdatasync.
pub(crate) async fn write_whole_file(path: &Path, data: &[u8], sync: bool) -> Result<(), LogError> {
    let file = create(path).await?;
    let padded = usize::try_from(file.align_up(data.len() as u64)).unwrap_or(usize::MAX);
    if padded > 0 {
        let mut buf = file.alloc_dma_buffer(padded);
        buf.as_bytes_mut()[..data.len()].copy_from_slice(data);
        buf.as_bytes_mut()[data.len()..].fill(0);
        let written = file
            .write_at(buf, 0)
            .await
            .context(|| format!("writing {}", path.display()))?;
        if written != padded {
            return Err(short_write(path, written, padded));
        }
    }
    file.truncate(data.len() as u64)
        .await
        .context(|| format!("truncating {}", path.display()))?;
    if sync {
        file.fdatasync()
            .await
            .context(|| format!("syncing {}", path.display()))?;
    }
    file.close()
        .await
        .context(|| format!("closing {}", path.display()))
}

/// The error for a DMA write that wrote fewer bytes than asked (a full device).
pub(crate) fn short_write(path: &Path, written: usize, wanted: usize) -> LogError {
    LogError::Io {
        context: format!(
            "writing {}: {written} of {wanted} bytes written",
            path.display()
        ),
        source: std::io::Error::new(std::io::ErrorKind::WriteZero, "short DMA write"),
    }
}

/// Removes a file; a file already gone is fine.
pub(crate) async fn remove_if_exists(path: &Path) -> Result<(), LogError> {
    if !path.exists() {
        return Ok(());
    }
    glommio::io::remove(path)
        .await
        .context(|| format!("removing {}", path.display()))
}

/// Deletes a file a step at a time: each step cuts [`REMOVE_STEP_BYTES`] off its end and syncs,
/// so that one file-system journal commit frees at most one step.
///
/// Unlinking a whole segment frees all its blocks in one commit. On ext4 mounted with `discard`,
/// that commit discards them all (about 170 ms for 1 GiB on a virtio disk) and every direct
/// write to the file system waits for it: produce requests at a steady 500 MB/s saw 150–500 ms
/// stalls each time retention deleted a segment. RocksDB deletes files in chunks for the same
/// reason.
///
/// # Errors
/// [`LogError::Io`] if the file cannot be opened, truncated, synced or removed.
pub(crate) async fn remove_gradually(path: &Path) -> Result<(), LogError> {
    let file = OpenOptions::new()
        .write(true)
        .dma_open(path)
        .await
        .context(|| format!("opening {} to delete it", path.display()))?;
    let mut size = file
        .file_size()
        .await
        .context(|| format!("sizing {}", path.display()))?;
    while size > REMOVE_STEP_BYTES {
        size = (size - 1) / REMOVE_STEP_BYTES * REMOVE_STEP_BYTES;
        file.truncate(size)
            .await
            .context(|| format!("truncating {} to {size} bytes", path.display()))?;
        file.fdatasync()
            .await
            .context(|| format!("syncing {}", path.display()))?;
        glommio::timer::sleep(REMOVE_STEP_PAUSE).await;
    }
    file.close()
        .await
        .context(|| format!("closing {}", path.display()))?;
    glommio::io::remove(path)
        .await
        .context(|| format!("removing {}", path.display()))
}

/// Deletes a file or a directory tree with `remove_tree_gradually` in a task of its own on
/// this executor; a failure is logged. What a stop leaves behind is found again at the next
/// start: a retired segment, which the next open adopts or deletes, or a topic in the trash.
pub fn remove_in_background(path: PathBuf) {
    glommio::spawn_local(async move {
        if let Err(e) = remove_tree_gradually(&path).await {
            tracing::warn!(path = %path.display(), error = %e, "freeing deleted data failed");
        }
    })
    .detach();
}

/// Removes a file or a directory tree without stalling the disk: files larger than one step go
/// through [`remove_gradually`], the rest are unlinked, then the directories. A path already gone
/// is fine.
///
/// # Errors
/// [`LogError::Io`] if an entry cannot be listed, cut or removed.
pub(crate) async fn remove_tree_gradually(path: &Path) -> Result<(), LogError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).context(|| format!("reading metadata of {}", path.display())),
    };
    if !meta.is_dir() {
        return if meta.len() > REMOVE_STEP_BYTES {
            remove_gradually(path).await
        } else {
            glommio::io::remove(path)
                .await
                .context(|| format!("removing {}", path.display()))
        };
    }
    let entries = std::fs::read_dir(path).context(|| format!("listing {}", path.display()))?;
    for entry in entries {
        let entry = entry.context(|| format!("listing {}", path.display()))?;
        Box::pin(remove_tree_gradually(&entry.path())).await?;
    }
    std::fs::remove_dir(path).context(|| format!("removing {}", path.display()))
}

/// Syncs a directory through io_uring (the shard thread does not block), so that file creations
/// and removals in it survive a power loss.
///
/// # Errors
/// [`LogError::Io`] if the directory cannot be opened or synced.
pub(crate) async fn sync_dir_async(dir: &Path) -> Result<(), LogError> {
    let handle = glommio::io::Directory::open(dir)
        .await
        .context(|| format!("opening directory {}", dir.display()))?;
    handle
        .sync()
        .await
        .context(|| format!("syncing directory {}", dir.display()))?;
    handle
        .close()
        .await
        .context(|| format!("closing directory {}", dir.display()))
}

/// The offsets that name files in `dir` as `<offset, 20 digits><suffix>`, ascending. A name
/// beyond any Kafka offset (`i64`) is no file a log wrote, and is passed over with a warning.
///
/// # Errors
/// [`LogError::Io`] if the directory cannot be listed.
pub(crate) fn offsets_named(dir: &Path, suffix: &str) -> Result<Vec<Offset>, LogError> {
    let mut offsets = Vec::new();
    let entries = std::fs::read_dir(dir).context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(suffix)) else {
            continue;
        };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            match stem.parse::<u64>() {
                Ok(offset) if i64::try_from(offset).is_ok() => offsets.push(Offset(offset)),
                _ => tracing::warn!(
                    file = %entry.path().display(),
                    "ignoring a file whose offset is beyond any Kafka offset"
                ),
            }
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

/// Syncs a directory so that file creations and removals in it survive a power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .context(|| format!("syncing directory {}", dir.display()))
}
