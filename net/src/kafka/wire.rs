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

/// Every partition's leader epoch. One node leads each partition from its creation on, so the
/// epoch never changes, and the log stamps every batch it appends with it (`spindle_log`'s
/// default epoch, 0).
pub(crate) const LEADER_EPOCH: i32 = 0;

/// A request's `current_leader_epoch` for a partition checked against [`LEADER_EPOCH`] as Kafka
/// checks it: -1 (the client knows none) passes, a later epoch is UNKNOWN_LEADER_EPOCH (the
/// client has heard of a leader this node does not know), an earlier one FENCED_LEADER_EPOCH
/// (the client's view is stale).
pub(crate) fn check_leader_epoch(current: i32) -> Result<(), i16> {
    use kafka_protocol::error::ResponseError;
    match current {
        -1 | LEADER_EPOCH => Ok(()),
        e if e > LEADER_EPOCH => Err(ResponseError::UnknownLeaderEpoch.code()),
        _ => Err(ResponseError::FencedLeaderEpoch.code()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::error::ResponseError;

    #[test]
    fn current_leader_epochs_are_checked_as_kafka_checks_them() {
        assert_eq!(check_leader_epoch(-1), Ok(()));
        assert_eq!(check_leader_epoch(LEADER_EPOCH), Ok(()));
        assert_eq!(
            check_leader_epoch(LEADER_EPOCH + 1),
            Err(ResponseError::UnknownLeaderEpoch.code())
        );
        assert_eq!(
            check_leader_epoch(-2),
            Err(ResponseError::FencedLeaderEpoch.code())
        );
    }
}
