//! Writing batches at the end of the active segment with O_DIRECT.
//!
//! O_DIRECT wants every write aligned in position and length (`DmaFile::alignment()`, 512 bytes
//! here; the appender uses 4 KiB, the ext4 block, since ext4 serialises direct writes that are
//! not block-aligned, halving throughput). Batches have any length, so the appender keeps the *tail block*: the bytes of the last,
//! partially filled aligned block. Each write starts at that block's aligned position, carries the
//! tail block again followed by the new batches, and is zero-padded to the alignment. The padding
//! lies beyond the segment's real length; recovery reads it as "never written" and a seal or close
//! truncates the file to its real length.
//!
//! A flush's bytes are cut into `WRITE_CHUNK_BYTES` DMA buffers that are all submitted at once, so
//! one large flush keeps several writes in flight. The file is preallocated in
//! `PREALLOCATE_STEP_BYTES` steps (fallocate without `KEEP_SIZE`), so writes do not change the
//! file size and fdatasync has no size metadata to commit.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::DmaFile;

use crate::error::{IoContext, LogError};
use crate::io::short_write;
use crate::limits::{PREALLOCATE_STEP_BYTES, WRITE_CHUNK_BYTES};
use crate::offset::Offset;

/// Writes are aligned to at least this (the file-system block size).
const FS_BLOCK_BYTES: u64 = 4096;

/// A batch as written into a segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WrittenBatch {
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

/// Write state of the active segment.
#[derive(Debug)]
pub(crate) struct Appender {
    alignment: u64,
    /// Bytes of the segment from its last aligned position to its real end.
    tail_block: Vec<u8>,
    /// The file's size: bytes allocated by fallocate (or written) so far.
    preallocated: u64,
    /// A second handle on the file opened with `O_DSYNC`, for the rounds that must be durable.
    durable: Option<Rc<DmaFile>>,
}

/// One flush's worth of I/O, prepared while the state is borrowed, executed without it.
pub(crate) struct WritePlan {
    file: Rc<DmaFile>,
    path: PathBuf,
    alignment: u64,
    start: u64,
    tail_block: Vec<u8>,
    preallocate_to: Option<u64>,
    data: Vec<Bytes>,
    data_bytes: u64,
}

impl Appender {
    /// Resumes writing a segment whose real length is `size` (the file holds no more).
    ///
    /// # Errors
    /// [`LogError::Io`] if reading the last partial block fails.
    pub async fn resume(file: &DmaFile, path: &Path, size: u64) -> Result<Appender, LogError> {
        // The device takes 512-byte-aligned DMA, but ext4 serialises (and may zero-fill) direct
        // writes that are not aligned to its 4 KiB block: write whole file-system blocks.
        let alignment = file.alignment().max(FS_BLOCK_BYTES);
        let aligned = size / alignment * alignment;
        let partial = usize::try_from(size - aligned).expect("partial block fits usize");
        let mut tail_block = Vec::with_capacity(usize::try_from(alignment).unwrap_or(4096));
        if partial > 0 {
            let block = file
                .read_at_aligned(aligned, usize::try_from(alignment).unwrap_or(4096))
                .await
                .context(|| format!("reading the last block of {}", path.display()))?;
            if block.len() < partial {
                return Err(LogError::Io {
                    context: format!("reading the last block of {}", path.display()),
                    source: std::io::ErrorKind::UnexpectedEof.into(),
                });
            }
            tail_block.extend_from_slice(&block[..partial]);
        }
        let preallocated = file
            .file_size()
            .await
            .context(|| format!("sizing {}", path.display()))?;
        Ok(Appender {
            alignment,
            tail_block,
            preallocated,
            durable: None,
        })
    }

    /// The `O_DSYNC` handle on the segment file, if one is open.
    pub fn durable_file(&self) -> Option<Rc<DmaFile>> {
        self.durable.clone()
    }

    /// Keeps an `O_DSYNC` handle on the segment file for durable rounds.
    pub fn set_durable_file(&mut self, file: Rc<DmaFile>) {
        self.durable = Some(file);
    }

    /// Prepares writing `data` after the segment's `size` bytes; `segment_bytes` bounds the
    /// preallocation.
    pub fn plan(
        &self,
        file: Rc<DmaFile>,
        path: PathBuf,
        size: u64,
        data: Vec<Bytes>,
        segment_bytes: u64,
    ) -> WritePlan {
        let data_bytes: u64 = data.iter().map(|b| b.len() as u64).sum();
        let end = align_up(size + data_bytes, self.alignment);
        let preallocate_to = (end > self.preallocated).then(|| {
            let step = align_up(end, PREALLOCATE_STEP_BYTES);
            step.min(end.max(align_up(segment_bytes, self.alignment)))
        });
        WritePlan {
            file,
            path,
            alignment: self.alignment,
            start: size,
            tail_block: self.tail_block.clone(),
            preallocate_to,
            data,
            data_bytes,
        }
    }

    /// Records a completed plan's outcome.
    pub fn finish(&mut self, outcome: WriteOutcome) {
        self.tail_block = outcome.tail_block;
        self.preallocated = self.preallocated.max(outcome.file_bytes);
    }
}

/// What a completed write leaves behind.
pub(crate) struct WriteOutcome {
    tail_block: Vec<u8>,
    file_bytes: u64,
}

impl WritePlan {
    /// Bytes of batches this plan writes.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// Preallocates if needed, then writes all chunks concurrently and waits for them all.
    ///
    /// # Errors
    /// [`LogError::Io`] if fallocate or a write fails or writes short.
    pub async fn execute(self) -> Result<WriteOutcome, LogError> {
        let mut file_bytes = 0;
        if let Some(to) = self.preallocate_to {
            self.file
                .pre_allocate(to, false)
                .await
                .context(|| format!("preallocating {} bytes of {}", to, self.path.display()))?;
            file_bytes = to;
        }
        let stream_start = self.start - self.tail_block.len() as u64;
        let stream_len = self.tail_block.len() + usize::try_from(self.data_bytes).unwrap_or(0);
        let align = usize::try_from(self.alignment).unwrap_or(4096);
        let mut pieces = std::iter::once(&self.tail_block[..])
            .chain(self.data.iter().map(|b| &b[..]))
            .filter(|p| !p.is_empty());
        let mut current: &[u8] = pieces.next().unwrap_or(&[]);
        let mut tasks = Vec::with_capacity(stream_len / WRITE_CHUNK_BYTES + 1);
        let mut tail_block = Vec::new();
        let mut done = 0usize;
        while done < stream_len {
            let chunk = (stream_len - done).min(WRITE_CHUNK_BYTES);
            let padded = chunk.div_ceil(align) * align;
            let mut buf = self.file.alloc_dma_buffer(padded);
            let out = buf.as_bytes_mut();
            let mut filled = 0;
            while filled < chunk {
                if current.is_empty() {
                    current = pieces.next().expect("pieces hold stream_len bytes");
                }
                let n = current.len().min(chunk - filled);
                out[filled..filled + n].copy_from_slice(&current[..n]);
                current = &current[n..];
                filled += n;
            }
            out[chunk..].fill(0);
            if done + chunk == stream_len {
                let partial = chunk % align;
                tail_block.extend_from_slice(&out[chunk - partial..chunk]);
            }
            let position = stream_start + done as u64;
            let file = self.file.clone();
            tasks.push((
                position,
                padded,
                glommio::spawn_local(async move { file.write_at(buf, position).await }),
            ));
            done += chunk;
        }
        for (position, padded, task) in tasks {
            let written = task
                .await
                .context(|| format!("writing {} at byte {position}", self.path.display()))?;
            if written != padded {
                return Err(short_write(&self.path, written, padded));
            }
            file_bytes = file_bytes.max(position + padded as u64);
        }
        Ok(WriteOutcome {
            tail_block,
            file_bytes,
        })
    }
}

/// Rounds `v` up to a multiple of `to` (a power of two or any positive step).
pub(crate) fn align_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}
