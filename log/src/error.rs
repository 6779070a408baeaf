//! The one error type of the log crate.
//!
//! Every variant says precisely what went wrong and keeps its `#[source]`, so the engine can map
//! it to a Kafka error code (or a `tonic::Status`) at the network edge without guessing.

use std::io;
use std::path::PathBuf;

use crate::batch::BatchDefect;
use crate::offset::Offset;

/// Everything that can go wrong in a partition log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A record batch handed to `append` (or `BatchHeader::parse`) is malformed. Nothing was
    /// appended.
    #[error("invalid record batch at byte {position} of the input: {reason}")]
    InvalidBatch {
        /// Byte position of the offending batch within the input.
        position: usize,
        /// What is wrong with it.
        reason: BatchDefect,
    },
    /// A read asked for an offset outside `[start, end]`.
    #[error("offset {requested} is out of range [{start}, {end}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        requested: Offset,
        /// The log start offset.
        start: Offset,
        /// The high watermark (last readable offset plus one).
        end: Offset,
    },
    /// Assigning offsets to the batch would overflow the 63-bit Kafka offset space.
    #[error("offset space exhausted: {next} + {records} records overflows")]
    OffsetOverflow {
        /// The next offset of the log.
        next: Offset,
        /// Records in the refused append.
        records: u64,
    },
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Stored data did not check (length, magic, CRC or offsets) when it was read back. Recovery
    /// removes such data on open, so this means the disk changed underneath a running log.
    #[error("corrupt data in {file} at byte {position}: {reason}")]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Byte position of the damaged batch.
        position: u64,
        /// What did not check.
        reason: BatchDefect,
    },
    /// A configuration value is not acceptable.
    #[error("invalid log configuration: {reason}")]
    InvalidConfig {
        /// What is wrong, naming the field and the accepted values.
        reason: String,
    },
    /// The log was closed; no further operation is possible.
    #[error("the log in {dir} is closed")]
    Closed {
        /// The log's directory.
        dir: PathBuf,
    },
}

/// Attaches a context (built only on failure) to an I/O result.
pub(crate) trait IoContext<T> {
    /// Maps the error into [`LogError::Io`] with the context `what()` returns.
    fn context<F: FnOnce() -> String>(self, what: F) -> Result<T, LogError>;
}

impl<T> IoContext<T> for Result<T, io::Error> {
    fn context<F: FnOnce() -> String>(self, what: F) -> Result<T, LogError> {
        self.map_err(|source| LogError::Io {
            context: what(),
            source,
        })
    }
}

impl<T> IoContext<T> for Result<T, glommio::GlommioError<()>> {
    fn context<F: FnOnce() -> String>(self, what: F) -> Result<T, LogError> {
        self.map_err(|e| LogError::Io {
            context: what(),
            source: e.into(),
        })
    }
}
