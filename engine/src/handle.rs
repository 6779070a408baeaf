//! [`EngineHandle`]: the thread-safe way into the shards, usable from any thread or runtime.
//!
//! Every method sends one message to a shard (over a channel that any thread may send on) and
//! awaits a one-shot reply, so its futures are `Send` and need no particular runtime: a plain
//! thread may `futures::executor::block_on` them and a tokio task may `.await` them.

use std::future::Future;

use bytes::Bytes;
use spindle_log::Offset;

use crate::{
    FetchOutcome, FetchRequest, OffsetSpec, ProduceOutcome, Record, Result, Shard, ShardId,
    TopicConfig, TopicDescription, TopicInfo, TopicPartition,
};

/// A cloneable, `Send + Sync` handle to a running engine.
#[derive(Clone)]
pub struct EngineHandle {
    _inner: (),
}

impl EngineHandle {
    /// How many shards the engine runs.
    pub fn shard_count(&self) -> usize {
        todo!()
    }

    /// As [`Shard::produce`].
    ///
    /// # Errors
    /// As [`Shard::produce`].
    pub async fn produce(&self, tp: &TopicPartition, records: Bytes) -> Result<ProduceOutcome> {
        let _ = (tp, records);
        todo!()
    }

    /// As [`Shard::produce_records`].
    ///
    /// # Errors
    /// As [`Shard::produce`].
    pub async fn produce_records(
        &self,
        tp: &TopicPartition,
        records: Vec<Record>,
    ) -> Result<ProduceOutcome> {
        let _ = (tp, records);
        todo!()
    }

    /// As [`Shard::fetch`].
    ///
    /// # Errors
    /// As [`Shard::fetch`].
    pub async fn fetch(&self, req: FetchRequest) -> Result<FetchOutcome> {
        let _ = req;
        todo!()
    }

    /// As [`Shard::list_offset`].
    ///
    /// # Errors
    /// As [`Shard::list_offset`].
    pub async fn list_offset(
        &self,
        tp: &TopicPartition,
        spec: OffsetSpec,
    ) -> Result<Option<(Offset, i64)>> {
        let _ = (tp, spec);
        todo!()
    }

    /// As [`Shard::create_topic`].
    ///
    /// # Errors
    /// As [`Shard::create_topic`].
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<TopicInfo> {
        let _ = (name, partitions, config);
        todo!()
    }

    /// As [`Shard::delete_topic`].
    ///
    /// # Errors
    /// As [`Shard::delete_topic`].
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let _ = name;
        todo!()
    }

    /// As [`Shard::create_partitions`].
    ///
    /// # Errors
    /// As [`Shard::create_partitions`].
    pub async fn create_partitions(&self, name: &str, total: u32) -> Result<()> {
        let _ = (name, total);
        todo!()
    }

    /// As [`Shard::alter_topic_config`].
    ///
    /// # Errors
    /// As [`Shard::alter_topic_config`].
    pub async fn alter_topic_config(&self, name: &str, config: TopicConfig) -> Result<()> {
        let _ = (name, config);
        todo!()
    }

    /// Every topic.
    ///
    /// # Errors
    /// [`crate::EngineError::ShuttingDown`].
    pub async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        todo!()
    }

    /// As [`Shard::describe_topic`].
    ///
    /// # Errors
    /// As [`Shard::describe_topic`].
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let _ = name;
        todo!()
    }

    /// As [`Shard::run_on`]: runs `f` on shard `target` and returns its output.
    ///
    /// # Errors
    /// [`crate::EngineError::ShuttingDown`].
    pub async fn run_on<T, F, Fut>(&self, target: ShardId, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Shard) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let _ = (target, f);
        todo!()
    }
}
