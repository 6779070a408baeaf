//! Offsets: the position of a record within a partition.

use std::fmt;

/// An offset within a partition: record number `n` since the partition was created.
///
/// Kafka offsets are signed 64-bit on the wire; a stored offset is never negative, so the log
/// keeps them unsigned and converts at the batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub u64);

impl Offset {
    /// The offset `n` records later.
    ///
    /// # Panics
    /// Panics on overflow, which the append path rules out by checking against `i64::MAX`.
    #[must_use]
    pub fn plus(self, n: u64) -> Offset {
        Offset(self.0.checked_add(n).expect("offset overflow"))
    }

    /// The offset as Kafka writes it on the wire.
    ///
    /// # Panics
    /// Panics if the offset exceeds `i64::MAX`, which the append path rules out.
    #[must_use]
    pub fn to_kafka(self) -> i64 {
        i64::try_from(self.0).expect("offset beyond i64::MAX")
    }
}

impl Offset {
    /// The offset of a stored batch header's field, which the log checked is not negative
    /// (a negative one reads as 0).
    pub(crate) fn from_stored(v: i64) -> Offset {
        Offset(u64::try_from(v).unwrap_or(0))
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u64> for Offset {
    fn from(v: u64) -> Self {
        Offset(v)
    }
}
