//! Conversions between the engine's newtypes and the protocol's plain integers.

use spindle_engine::Offset;

/// An offset as the protocol carries it.
pub(crate) fn offset_to_wire(offset: Offset) -> i64 {
    i64::try_from(offset.0).unwrap_or(i64::MAX)
}

/// An offset from the protocol; `None` for the negative values that are not offsets.
pub(crate) fn offset_from_wire(offset: i64) -> Option<Offset> {
    u64::try_from(offset).ok().map(Offset)
}

/// A partition index from the protocol; `None` when negative.
pub(crate) fn partition_from_wire(partition: i32) -> Option<u32> {
    u32::try_from(partition).ok()
}

/// A count (partitions, bytes) as an `i32`, saturating.
pub(crate) fn count_to_wire(count: u32) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}
