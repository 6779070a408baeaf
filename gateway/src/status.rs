//! Engine errors as gRPC statuses: the one place where [`EngineError`] meets the network.
//!
//! | engine error | gRPC code |
//! | --- | --- |
//! | unknown topic or partition | NOT_FOUND |
//! | topic exists | ALREADY_EXISTS |
//! | invalid name, partition count, config, batch; message too large | INVALID_ARGUMENT (field named) |
//! | offset out of range | OUT_OF_RANGE |
//! | producer sequence or epoch | FAILED_PRECONDITION |
//! | shutting down | UNAVAILABLE |
//! | log or I/O failure, start failure | INTERNAL |

use spindle_engine::group::GroupError;
use spindle_engine::EngineError;
use tonic::Status;

/// The status a call answers when the engine fails it.
pub fn from_engine(err: EngineError) -> Status {
    match err {
        EngineError::UnknownTopic(_) | EngineError::UnknownPartition { .. } => {
            Status::not_found(err.to_string())
        }
        EngineError::TopicExists(_) => Status::already_exists(err.to_string()),
        EngineError::InvalidTopic { .. } => invalid_argument("topic", &err),
        EngineError::InvalidPartitions { .. } => invalid_argument("partitions", &err),
        EngineError::InvalidConfig { .. } => invalid_argument("config", &err),
        EngineError::MessageTooLarge { .. }
        | EngineError::InvalidBatch(_)
        | EngineError::KeylessRecord { .. }
        | EngineError::InvalidTimestamp { .. } => invalid_argument("records", &err),
        EngineError::OffsetOutOfRange { .. } => Status::out_of_range(err.to_string()),
        EngineError::OutOfOrderSequence { .. }
        | EngineError::InvalidProducerEpoch { .. }
        | EngineError::Transaction(_) => Status::failed_precondition(err.to_string()),
        EngineError::ShuttingDown => Status::unavailable(err.to_string()),
        EngineError::Log(_) | EngineError::Io { .. } | EngineError::Start(_) => {
            tracing::error!(error = %err, "engine failure answered INTERNAL");
            Status::internal(err.to_string())
        }
    }
}

/// INVALID_ARGUMENT naming the request field at fault.
pub fn invalid_argument(field: &str, why: &dyn std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {why}"))
}

/// The status for a group coordinator's refusal.
pub fn from_group(err: GroupError) -> Status {
    let message = err.to_string();
    match err {
        GroupError::InvalidGroupId
        | GroupError::InvalidRequest(_)
        | GroupError::InvalidRegularExpression(_) => invalid_argument("group", &message),
        GroupError::OffsetMetadataTooLarge | GroupError::InvalidCommitOffsetSize => {
            invalid_argument("offsets", &message)
        }
        GroupError::UnknownTopicOrPartition
        | GroupError::GroupIdNotFound
        | GroupError::NotConsumerGroup(_) => Status::not_found(message),
        GroupError::CoordinatorNotAvailable => Status::unavailable(message),
        _ => Status::failed_precondition(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn engine_errors_map_to_precise_codes() {
        let cases = [
            (EngineError::UnknownTopic("t".into()), Code::NotFound),
            (
                EngineError::UnknownPartition {
                    topic: "t".into(),
                    partition: 3,
                },
                Code::NotFound,
            ),
            (EngineError::TopicExists("t".into()), Code::AlreadyExists),
            (EngineError::ShuttingDown, Code::Unavailable),
        ];
        for (err, code) in cases {
            assert_eq!(from_engine(err).code(), code);
        }
        let invalid = from_engine(EngineError::InvalidPartitions {
            count: 0,
            reason: "must be positive".into(),
        });
        assert_eq!(invalid.code(), Code::InvalidArgument);
        assert!(invalid.message().starts_with("partitions: "));
    }

    #[test]
    fn group_refusals_map_to_precise_codes() {
        let too_big = from_group(GroupError::InvalidRequest("64 protocols at most".into()));
        assert_eq!(too_big.code(), Code::InvalidArgument);
        assert!(
            too_big.message().starts_with("group: "),
            "{}",
            too_big.message()
        );
        assert_eq!(
            from_group(GroupError::CoordinatorNotAvailable).code(),
            Code::Unavailable
        );
        assert_eq!(
            from_group(GroupError::RebalanceInProgress).code(),
            Code::FailedPrecondition
        );
    }
}
