//! The Spindle engine: one glommio executor per core (a *shard*), each owning its partitions'
//! logs outright, and the embedded API that drives them.
//!
//! Code running on a shard uses [`Shard`], the shard-local context: partitions owned by this
//! shard are served in place and everything else travels over the channel mesh as a message.
//! Code running on any other thread (a plain thread, a tokio task, the gRPC gateway) uses
//! [`EngineHandle`], which is `Send + Sync + Clone` and is the single place where a thread-safe
//! handle enters the shards (see `docs/ARCHITECTURE.md`).
#![deny(missing_docs)]

pub mod access;
mod admin;
mod api;
mod batch_builder;
pub mod durable_file;
mod engine;
mod error;
mod event;
pub mod group;
mod handle;
mod kept_keys;
pub mod limits;
mod log_api;
mod memory;
mod metadata;
pub mod metrics;
mod name_pattern;
mod partition;
mod shard;
mod topic;
pub mod txn;

pub use api::{
    AbortedTransaction, FetchOutcome, FetchRequest, Isolation, OffsetSpec, ProduceOutcome, Record,
    RecordHeader,
};
pub use batch_builder::encode_batch;
pub use engine::{Engine, EngineConfig, Placement};
pub use error::EngineError;
pub use handle::EngineHandle;
pub use memory::{AnswerReservation, MemoryBudget, RequestReservation};
pub use metadata::CONSUMER_OFFSETS_TOPIC;
pub use name_pattern::NamePattern;
pub use partition::ProducerState;
pub use shard::{Shard, ShardId};
pub use spindle_log::{FsyncPolicy, Offset};
pub use topic::{
    validate_topic_name, CleanupPolicy, PartitionId, PartitionState, TimestampType, TopicConfig,
    TopicDescription, TopicInfo, TopicPartition, MESSAGE_BYTES_MAX, SEGMENT_BYTES_MIN,
};

/// The result type of every engine operation.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
