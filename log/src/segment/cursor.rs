//! Walking the batches of a segment file through DMA reads.
//!
//! Recovery, index rebuilds, disk reads and timestamp searches all walk batches the same way: from
//! a known position and offset, read a window, check each batch fully (framing, magic, CRC-32C,
//! and that its base offset follows the previous batch), and stop at the first that does not
//! check. Reads are windowed (`READ_WINDOW_BYTES` or the batch's size, whichever is larger) so a
//! walk costs one DMA read per window, not per batch.

use std::path::PathBuf;
use std::rc::Rc;

use glommio::io::{DmaFile, ReadResult};

use crate::batch::{validate_stored, BatchDefect, BatchHeader};
use crate::error::{IoContext, LogError};
use crate::limits::{
    BATCH_BYTES_MAX, BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES, READ_WINDOW_BYTES,
};
use crate::offset::Offset;
use crate::segment::SegmentBatch;

/// What the next step of a walk found.
#[derive(Debug)]
pub(crate) enum Step {
    /// A good batch.
    Batch(SegmentBatch),
    /// The end of the range was reached exactly on a batch boundary.
    End,
    /// The bytes at `position` are not a good batch.
    Damaged {
        /// Where the damage starts.
        position: u64,
        /// What did not check.
        reason: BatchDefect,
    },
}

/// Walks batches of one segment file between a start position and an end position.
pub(crate) struct BatchCursor {
    file: Rc<DmaFile>,
    path: PathBuf,
    end: u64,
    position: u64,
    expected_base: Offset,
    window: Option<(u64, ReadResult)>,
    window_bytes: usize,
}

impl BatchCursor {
    /// A cursor at `position`, where the batch with base offset `expected_base` starts, reading
    /// no further than `end`, in windows of at least `window_bytes`.
    pub fn new(
        file: Rc<DmaFile>,
        path: PathBuf,
        position: u64,
        expected_base: Offset,
        end: u64,
        window_bytes: usize,
    ) -> Self {
        BatchCursor {
            file,
            path,
            end,
            position,
            expected_base,
            window: None,
            window_bytes: window_bytes.clamp(BATCH_HEADER_BYTES, READ_WINDOW_BYTES * 16),
        }
    }

    /// The position of the next batch.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The base offset the next batch must have.
    pub fn expected_base(&self) -> Offset {
        self.expected_base
    }

    /// The bytes of a batch this cursor just returned (valid until the next call to `next`).
    pub fn bytes(&self, batch: &SegmentBatch) -> &[u8] {
        let (start, window) = self
            .window
            .as_ref()
            .expect("a found batch lies in the window");
        let from = usize::try_from(batch.position - start).expect("window offset fits usize");
        &window[from..from + batch.len]
    }

    /// Finds and checks the next batch.
    ///
    /// # Errors
    /// [`LogError::Io`] if a read fails; damage is a [`Step::Damaged`], not an error.
    pub async fn next(&mut self) -> Result<Step, LogError> {
        let position = self.position;
        if position >= self.end {
            return Ok(Step::End);
        }
        let remaining = self.end - position;
        let available = self
            .ensure(BATCH_LOG_OVERHEAD_BYTES.min(remaining as usize))
            .await?;
        if available < BATCH_LOG_OVERHEAD_BYTES {
            return Ok(self.damaged(BatchDefect::Truncated {
                needed: BATCH_HEADER_BYTES,
                available,
            }));
        }
        let declared = {
            let w = self.window_slice();
            i32::from_be_bytes([w[8], w[9], w[10], w[11]])
        };
        // A length beyond what any batch may have is damage: it is not read (up to 2 GiB).
        let total = match usize::try_from(declared) {
            Ok(l)
                if (BATCH_HEADER_BYTES..=BATCH_BYTES_MAX)
                    .contains(&(l + BATCH_LOG_OVERHEAD_BYTES)) =>
            {
                l + BATCH_LOG_OVERHEAD_BYTES
            }
            _ => return Ok(self.damaged(BatchDefect::BadLength { declared })),
        };
        let want = total.min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let available = self.ensure(want).await?;
        let slice = &self.window_slice()[..available.min(total)];
        let header: BatchHeader = match validate_stored(slice) {
            Ok((h, _)) => *h,
            Err(reason) => return Ok(self.damaged(reason)),
        };
        if header.base_offset() != self.expected_base.to_kafka() {
            let reason = BatchDefect::OffsetGap {
                expected: self.expected_base.0,
                found: header.base_offset(),
            };
            return Ok(self.damaged(reason));
        }
        let found = SegmentBatch {
            position,
            len: total,
            base: self.expected_base,
            last: self
                .expected_base
                .plus(u64::try_from(header.last_offset_delta()).unwrap_or(0)),
            max_timestamp: header.max_timestamp(),
        };
        self.position += total as u64;
        self.expected_base = found.last.plus(1);
        Ok(Step::Batch(found))
    }

    /// The next good batch, `None` at the end of the range; here damage is an error
    /// ([`LogError::Corrupt`] naming the file and position), for walks over what recovery has
    /// already checked.
    ///
    /// # Errors
    /// [`LogError::Corrupt`]; [`LogError::Io`] if a read fails.
    pub async fn next_checked(&mut self) -> Result<Option<SegmentBatch>, LogError> {
        match self.next().await? {
            Step::Batch(b) => Ok(Some(b)),
            Step::End => Ok(None),
            Step::Damaged { position, reason } => Err(LogError::Corrupt {
                file: self.path.clone(),
                position,
                reason,
            }),
        }
    }

    /// Whether the bytes at the cursor look never written (all zero), as after preallocation or
    /// the padding of the last aligned block, rather than damaged.
    pub async fn looks_unwritten(&mut self) -> Result<bool, LogError> {
        let remaining = usize::try_from(self.end - self.position).unwrap_or(usize::MAX);
        let n = self.ensure(BATCH_HEADER_BYTES.min(remaining)).await?;
        Ok(self.window_slice()[..n].iter().all(|&b| b == 0))
    }

    fn damaged(&self, reason: BatchDefect) -> Step {
        Step::Damaged {
            position: self.position,
            reason,
        }
    }

    /// The window from the cursor's position on.
    fn window_slice(&self) -> &[u8] {
        match &self.window {
            Some((start, w)) => {
                let from = usize::try_from(self.position - start).unwrap_or(usize::MAX);
                w.get(from..).unwrap_or(&[])
            }
            None => &[],
        }
    }

    /// Makes the window cover `len` bytes from the cursor if the file has them; returns how many
    /// bytes from the cursor the window holds (less than `len` only at the end of the file).
    async fn ensure(&mut self, len: usize) -> Result<usize, LogError> {
        let have = self.window_slice().len();
        if have >= len {
            return Ok(have);
        }
        let size = len.max(self.window_bytes);
        let size = size.min(usize::try_from(self.end - self.position).unwrap_or(usize::MAX));
        let read = self
            .file
            .read_at(self.position, size)
            .await
            .context(|| format!("reading {} at byte {}", self.path.display(), self.position))?;
        self.window = Some((self.position, read));
        Ok(self.window_slice().len())
    }
}
