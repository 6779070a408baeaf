//! Engine errors mapped to Kafka error codes: the one place where the engine's error type meets
//! the wire.

use kafka_protocol::error::ResponseError;
use spindle_engine::txn::TxnError;
use spindle_engine::EngineError;

/// The Kafka error code a client should see for an engine error.
pub(crate) fn code_of(err: &EngineError) -> i16 {
    let kind = match err {
        EngineError::UnknownTopic(_) | EngineError::UnknownPartition { .. } => {
            ResponseError::UnknownTopicOrPartition
        }
        EngineError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        EngineError::InvalidTopic { .. } => ResponseError::InvalidTopicException,
        EngineError::InvalidPartitions { .. } => ResponseError::InvalidPartitions,
        EngineError::InvalidConfig { .. } => ResponseError::InvalidConfig,
        EngineError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        EngineError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        EngineError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        EngineError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
        EngineError::InvalidBatch(_) => ResponseError::CorruptMessage,
        EngineError::KeylessRecord { .. } => ResponseError::InvalidRecord,
        EngineError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp,
        EngineError::Transaction(e) => match e {
            TxnError::ProducerFenced { .. } => ResponseError::ProducerFenced,
            TxnError::UnknownProducer { .. } => ResponseError::InvalidProducerIdMapping,
            TxnError::Completing => ResponseError::ConcurrentTransactions,
            TxnError::InvalidState(_) => ResponseError::InvalidTxnState,
            TxnError::InvalidTimeout(_) => ResponseError::InvalidTransactionTimeout,
        },
        // Retriable: the client tries again, against this node after a restart.
        EngineError::ShuttingDown => ResponseError::NotLeaderOrFollower,
        EngineError::Log(_) | EngineError::Io { .. } => ResponseError::KafkaStorageError,
        EngineError::Start(_) => ResponseError::UnknownServerError,
    };
    kind.code()
}
