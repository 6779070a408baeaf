//! Placeholder until the log crate lands.

/// An offset within a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub u64);

impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// When appended data is synced to the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Sync before acknowledging every (group-committed) write.
    Batch,
    /// Sync in the background every this many ms.
    IntervalMs(u64),
    /// Never sync explicitly.
    Never,
}

/// Log errors.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Placeholder.
    #[error("placeholder")]
    Placeholder,
}
