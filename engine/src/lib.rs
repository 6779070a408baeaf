//! The Spindle engine: one glommio executor per core (a *shard*), each owning its partitions'
//! logs outright, and the embedded API that drives them.
//!
//! Code running on a shard uses [`Shard`], the shard-local context: partitions owned by this
//! shard are served in place and everything else travels over the channel mesh as a message.
//! Code running on any other thread (a plain thread, a tokio task, the gRPC gateway) uses
//! [`EngineHandle`], which is `Send + Sync + Clone` and is the single place where a thread-safe
//! handle enters the shards (see `docs/ARCHITECTURE.md`).
#![deny(missing_docs)]

mod api;
mod engine;
mod error;
pub mod group;
mod handle;
mod shard;
mod topic;

pub use api::{FetchOutcome, FetchRequest, OffsetSpec, ProduceOutcome, Record, RecordHeader};
pub use engine::{Engine, EngineConfig, Placement};
pub use error::EngineError;
pub use handle::EngineHandle;
pub use shard::{Shard, ShardId};
pub use spindle_log::{FsyncPolicy, Offset};
pub use topic::{
    PartitionId, PartitionState, TopicConfig, TopicDescription, TopicInfo, TopicPartition,
};

/// The result type of every engine operation.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
