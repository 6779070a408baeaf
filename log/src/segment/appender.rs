//! Writing batches at the end of the active segment with O_DIRECT.
//!
//! O_DIRECT wants every write aligned in position and length (`DmaFile::alignment()`, 512 bytes
//! here; the appender uses 4 KiB, the ext4 block, since ext4 serialises direct writes that are
//! not block-aligned, halving throughput). Batches have any length, so the appender keeps the
//! *tail block*: the bytes of the last, partially filled aligned block. Each round's writes start
//! at that block's aligned position, carry the tail block again followed by the new batches, and
//! are zero-padded to the alignment. The padding lies beyond the segment's real length; recovery
//! reads it as "never written" and a seal or close truncates the file to its real length.
//!
//! A reused file (a spare) holds its old bytes beyond the new segment's end. When a round ends
//! exactly on a block boundary inside them, it also writes the next block as zeros: otherwise,
//! after a crash, recovery would find the old bytes right after the last batch, most likely
//! from the middle of an old batch, and report damage where the log simply ends.
//!
//! Write rounds go one at a time: each round rewrites the tail block that the round before it
//! wrote with fewer bytes, and the device may complete two writes in flight in either order.
//! (Pipelining rounds, with only that block's write held back until the earlier round's had
//! completed, measured slower on a virtio disk: the extra dependent write per round cost more
//! than the overlap saved. See docs/BENCHMARKS.md.)
//!
//! A round's bytes are cut into `WRITE_CHUNK_BYTES` DMA buffers that are all submitted at once,
//! so one large round keeps several writes in flight. Where the round runs on from the tail
//! block into blocks never written, the tail block is a write of its own (see
//! `Appender::tail_apart`: ext4 cannot take a write over both kinds of extent without blocking,
//! and io_uring would hand it to a worker thread). The file is preallocated in
//! `PREALLOCATE_STEP_BYTES` steps (fallocate without `KEEP_SIZE`), so writes do not change the
//! file size and fdatasync has no size metadata to commit.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::DmaFile;
use glommio::Task;

use crate::error::{IoContext, LogError};
use crate::io::short_write;
use crate::limits::{PREALLOCATE_STEP_BYTES, WRITE_CHUNK_BYTES};

/// Writes are aligned to at least this (the file-system block size).
const FS_BLOCK_BYTES: u64 = 4096;

/// Write state of the active segment.
#[derive(Debug)]
pub(crate) struct Appender {
    alignment: u64,
    /// Bytes of the segment from its last aligned position to its real end.
    tail_block: Vec<u8>,
    /// The file's size: bytes allocated by fallocate (or written) so far.
    preallocated: u64,
    /// Bytes before this position, beyond the segment's end, may be a reused file's old data.
    stale_to: u64,
    /// A second handle on the file opened with `O_DSYNC`, for the rounds that must be durable.
    durable: Option<Rc<DmaFile>>,
}

/// One write round's I/O, prepared while the log's state is borrowed and run without it (in a
/// task of its own, so that it completes even if the flush that started it is dropped).
pub(crate) struct WritePlan {
    file: Rc<DmaFile>,
    path: PathBuf,
    alignment: u64,
    /// Aligned position where the round's first write starts (the tail block's position).
    stream_start: u64,
    tail_block: Vec<u8>,
    /// Whether the round ends on a block boundary in front of a reused file's old bytes, and so
    /// writes one more block of zeros.
    zero_block_after: bool,
    /// Whether the tail block goes in a write of its own (see `Appender::tail_apart`).
    tail_apart: bool,
    /// Where the file must grow to first, if it must: a whole preallocation step.
    preallocate_to: Option<u64>,
    /// The block-aligned end of the round's writes: what the file must hold at least.
    end: u64,
    data: Vec<Bytes>,
    data_bytes: u64,
}

/// What a completed round leaves behind, for [`Appender::finish`].
#[derive(Debug)]
pub(crate) struct WriteOutcome {
    tail_block: Vec<u8>,
    file_bytes: u64,
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
            stale_to: if preallocated > size { preallocated } else { 0 },
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

    /// Plans writing `data` after the segment's first `size` bytes; `segment_bytes` bounds the
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
        let real_end = size + data_bytes;
        let end = align_up(real_end, self.alignment);
        let preallocate_to = (end > self.preallocated).then(|| {
            let step = align_up(end, PREALLOCATE_STEP_BYTES);
            step.min(end.max(align_up(segment_bytes, self.alignment)))
        });
        let stream_start = size - self.tail_block.len() as u64;
        let tail_apart = self.tail_apart(stream_start, end);
        WritePlan {
            file,
            path,
            alignment: self.alignment,
            stream_start,
            tail_block: self.tail_block.clone(),
            zero_block_after: real_end % self.alignment == 0 && real_end < self.stale_to,
            tail_apart,
            preallocate_to,
            end,
            data,
            data_bytes,
        }
    }

    /// Whether a round writing from `stream_start` (the tail block's position) to `end` writes
    /// the tail block apart from the rest. A write that starts in the tail block (written by
    /// the round before) and runs on into blocks never written (preallocated: unwritten
    /// extents) spans two kinds of extent, which ext4 writes only under its inode lock held
    /// exclusively; io_uring then cannot submit the write at once and hands it to a worker
    /// thread, one more thread hop per round. Written apart, the tail block and the rest are
    /// each of one kind and both go at once. Over a reused file's old bytes every block is
    /// written already: one write.
    fn tail_apart(&self, stream_start: u64, end: u64) -> bool {
        let rest = stream_start + self.alignment;
        !self.tail_block.is_empty() && end > rest && rest >= align_up(self.stale_to, self.alignment)
    }

    /// Records a completed round's outcome.
    pub fn finish(&mut self, outcome: WriteOutcome) {
        self.tail_block = outcome.tail_block;
        self.preallocated = self.preallocated.max(outcome.file_bytes);
    }
}

impl WritePlan {
    /// Starts the round: submits every chunk's write at once (each in a task of its own), or,
    /// if the file must grow first, does that in the returned future and then submits them.
    /// The future ends when all writes have.
    ///
    /// # Errors
    /// [`LogError::Io`] if fallocate or a write fails or writes short.
    pub fn start(self) -> Pin<Box<dyn Future<Output = Result<WriteOutcome, LogError>>>> {
        match self.preallocate_to {
            None => Box::pin(all_of(self.submit(), 0)),
            Some(to) => Box::pin(async move {
                let file_bytes = self.grow_file(to).await?;
                all_of(self.submit(), file_bytes).await
            }),
        }
    }

    /// Grows the file to `to`, or, when the file system has no room for a whole step (a nearly
    /// full disk), to just what this round writes, so that the disk fills to its last blocks
    /// before appends fail. Returns the size the file was grown to.
    async fn grow_file(&self, to: u64) -> Result<u64, LogError> {
        let grow = |size: u64| async move {
            self.file
                .pre_allocate(size, false)
                .await
                .context(|| format!("preallocating {size} bytes of {}", self.path.display()))
        };
        match grow(to).await {
            Ok(()) => Ok(to),
            Err(e) if self.end < to => {
                tracing::debug!(error = %e, needed = self.end, "preallocation step refused; growing only as needed");
                grow(self.end).await.map(|()| self.end)
            }
            Err(e) => Err(e),
        }
    }

    /// Copies the tail block and the batches into DMA buffers of at most `WRITE_CHUNK_BYTES`
    /// and submits a write for each; returns them and the new tail block.
    fn submit(&self) -> Submitted {
        let stream_len = self.tail_block.len() + usize::try_from(self.data_bytes).unwrap_or(0);
        let align = usize::try_from(self.alignment).unwrap_or(4096);
        let mut pieces = std::iter::once(&self.tail_block[..])
            .chain(self.data.iter().map(|b| &b[..]))
            .filter(|p| !p.is_empty());
        let mut current: &[u8] = pieces.next().unwrap_or(&[]);
        let mut writes = Vec::with_capacity(stream_len / WRITE_CHUNK_BYTES + 1);
        let mut tail_block = Vec::new();
        let mut done = 0usize;
        while done < stream_len {
            let most = if done == 0 && self.tail_apart {
                align
            } else {
                WRITE_CHUNK_BYTES
            };
            let chunk = (stream_len - done).min(most);
            let last = done + chunk == stream_len;
            let padded = chunk.div_ceil(align) * align
                + if last && self.zero_block_after {
                    align
                } else {
                    0
                };
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
            if last {
                let partial = chunk % align;
                tail_block.extend_from_slice(&out[chunk - partial..chunk]);
            }
            let position = self.stream_start + done as u64;
            let (file, path) = (self.file.clone(), self.path.clone());
            writes.push(glommio::spawn_local(async move {
                write_chunk(&file, &path, buf, position, padded).await?;
                Ok(position + padded as u64)
            }));
            done += chunk;
        }
        Submitted { writes, tail_block }
    }
}

/// A round's writes on their way, and the tail block they leave.
struct Submitted {
    /// Each resolves to the file position after its chunk.
    writes: Vec<Task<Result<u64, LogError>>>,
    tail_block: Vec<u8>,
}

/// Waits for every write (the first error wins); `file_bytes` is the size preallocation gave.
async fn all_of(submitted: Submitted, file_bytes: u64) -> Result<WriteOutcome, LogError> {
    let mut outcome = Ok(file_bytes);
    for write in submitted.writes {
        let result = write.await;
        outcome = outcome.and_then(|bytes| result.map(|end| bytes.max(end)));
    }
    Ok(WriteOutcome {
        tail_block: submitted.tail_block,
        file_bytes: outcome?,
    })
}

/// Writes one padded chunk at `position` and checks that all of it went.
async fn write_chunk(
    file: &DmaFile,
    path: &Path,
    buf: glommio::io::DmaBuffer,
    position: u64,
    padded: usize,
) -> Result<(), LogError> {
    let written = file
        .write_at(buf, position)
        .await
        .context(|| format!("writing {} at byte {position}", path.display()))?;
    if written != padded {
        return Err(short_write(path, written, padded));
    }
    Ok(())
}

/// Rounds `v` up to a multiple of `to` (a power of two or any positive step).
pub(crate) fn align_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appender(tail: usize, stale_to: u64) -> Appender {
        Appender {
            alignment: FS_BLOCK_BYTES,
            tail_block: vec![7; tail],
            preallocated: 1 << 20,
            stale_to,
            durable: None,
        }
    }

    #[test]
    fn the_tail_block_is_written_apart_only_before_blocks_never_written() {
        // A fresh file: the round runs from the tail block on into preallocated blocks.
        assert!(appender(100, 0).tail_apart(8192, 16384));
        // No tail block (the segment ends on a block boundary): one kind of extent already.
        assert!(!appender(0, 0).tail_apart(8192, 16384));
        // The round ends inside the tail block: nothing to split.
        assert!(!appender(100, 0).tail_apart(8192, 12288));
        // A reused file whose old bytes reach beyond the round's first block: all written.
        assert!(!appender(100, 20_000).tail_apart(8192, 16384));
        // ... and once the round is past them, apart again.
        assert!(appender(100, 10_000).tail_apart(12288, 20480));
    }
}
