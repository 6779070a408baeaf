//! Per-log configuration: segment size and age, retention, fsync policy, index spacing.

use std::fmt;
use std::str::FromStr;

use crate::error::LogError;
use crate::limits;

/// When appended data is synced to the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Sync before acknowledging every (group-committed) write.
    Batch,
    /// Sync in the background every this many ms (the engine calls `Log::sync` on a timer).
    IntervalMs(u64),
    /// Never sync explicitly (except on close); durability comes from replication.
    Never,
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsyncPolicy::Batch => f.write_str("batch"),
            FsyncPolicy::IntervalMs(ms) => write!(f, "interval:{ms}"),
            FsyncPolicy::Never => f.write_str("never"),
        }
    }
}

impl FromStr for FsyncPolicy {
    type Err = LogError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || LogError::InvalidConfig {
            reason: format!(
                "fsync policy {s:?}: expected \"batch\", \"interval:MS\" (MS > 0) or \"never\""
            ),
        };
        match s {
            "batch" => Ok(FsyncPolicy::Batch),
            "never" => Ok(FsyncPolicy::Never),
            _ => {
                let ms = s.strip_prefix("interval:").ok_or_else(invalid)?;
                match ms.parse::<u64>() {
                    Ok(ms) if ms > 0 => Ok(FsyncPolicy::IntervalMs(ms)),
                    _ => Err(invalid()),
                }
            }
        }
    }
}

/// How one partition log rolls, retains and syncs its segments.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Roll when the active segment would grow past this size.
    pub segment_bytes: u64,
    /// Roll when the active segment is this old.
    pub segment_ms: Option<u64>,
    /// Delete the oldest whole segments while the log's segment bytes exceed this.
    pub retention_bytes: Option<u64>,
    /// Delete whole segments whose newest record is older than this.
    pub retention_ms: Option<u64>,
    /// When written data is synced to the device.
    pub fsync: FsyncPolicy,
    /// Sparse index: one entry per this many bytes of batches.
    pub index_interval_bytes: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: limits::SEGMENT_BYTES_DEFAULT,
            segment_ms: None,
            retention_bytes: None,
            retention_ms: None,
            fsync: FsyncPolicy::Never,
            index_interval_bytes: limits::INDEX_INTERVAL_BYTES_DEFAULT,
        }
    }
}

impl LogConfig {
    /// Checks the values against the log's limits.
    ///
    /// # Errors
    /// [`LogError::InvalidConfig`] naming the field out of range.
    pub fn validate(&self) -> Result<(), LogError> {
        if !(limits::SEGMENT_BYTES_MIN..=limits::SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return Err(LogError::InvalidConfig {
                reason: format!(
                    "segment_bytes {} outside [{}, {}]",
                    self.segment_bytes,
                    limits::SEGMENT_BYTES_MIN,
                    limits::SEGMENT_BYTES_MAX
                ),
            });
        }
        if self.index_interval_bytes == 0 {
            return Err(LogError::InvalidConfig {
                reason: "index_interval_bytes must be > 0".into(),
            });
        }
        if self.fsync == FsyncPolicy::IntervalMs(0) {
            return Err(LogError::InvalidConfig {
                reason: "fsync interval must be > 0 ms".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_policy_round_trips_and_names_allowed_values() {
        for p in [
            FsyncPolicy::Batch,
            FsyncPolicy::Never,
            FsyncPolicy::IntervalMs(250),
        ] {
            assert_eq!(p.to_string().parse::<FsyncPolicy>().unwrap(), p);
        }
        let err = "sometimes".parse::<FsyncPolicy>().unwrap_err().to_string();
        assert!(err.contains("batch") && err.contains("interval:MS") && err.contains("never"));
        assert!("interval:0".parse::<FsyncPolicy>().is_err());
        assert!("interval:x".parse::<FsyncPolicy>().is_err());
    }
}
