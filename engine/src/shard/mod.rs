//! A shard: one glommio executor pinned to one core, owning its partitions outright.
//!
//! [`Shard`] is the shard-local context handed to code that runs on a shard (the Kafka server,
//! the group coordinator). It is `!Send`: it never leaves its thread. Partitions owned by this
//! shard are served in place; for any other the request travels over the channel mesh.

use std::fmt;
use std::future::Future;
use std::rc::Rc;

use bytes::Bytes;
use spindle_log::Offset;

use crate::group::GroupCoordinator;
use crate::{
    FetchOutcome, FetchRequest, OffsetSpec, ProduceOutcome, Record, Result, TopicConfig,
    TopicDescription, TopicInfo, TopicPartition,
};

/// A shard's index, `0..shard_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u32);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The shard-local context: cheap to clone, never crosses threads.
#[derive(Clone)]
pub struct Shard {
    inner: Rc<()>,
}

impl Shard {
    /// This shard's index.
    pub fn id(&self) -> ShardId {
        todo!()
    }

    /// How many shards the engine runs.
    pub fn shard_count(&self) -> usize {
        todo!()
    }

    /// Appends `records` (one or more Kafka v2 batches, as received) to a partition and returns
    /// once they are written (see DESIGN: an acknowledgement means the kernel has the bytes).
    /// Idempotent batches (producer id ≥ 0) are checked per producer: a duplicate returns its
    /// original offsets and is not stored twice.
    ///
    /// # Errors
    /// Unknown topic/partition, invalid batch, sequence or epoch errors, oversize batch, I/O.
    pub async fn produce(&self, tp: &TopicPartition, records: Bytes) -> Result<ProduceOutcome> {
        let _ = (tp, records, &self.inner);
        todo!()
    }

    /// Builds one v2 batch from plain records and appends it like [`Shard::produce`].
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

    /// Reads whole batches from `req.offset`, long-polling up to `req.max_wait` until
    /// `req.min_bytes` are available (woken by the append, no busy polling).
    ///
    /// # Errors
    /// Unknown topic/partition, [`crate::EngineError::OffsetOutOfRange`], I/O.
    pub async fn fetch(&self, req: FetchRequest) -> Result<FetchOutcome> {
        let _ = req;
        todo!()
    }

    /// Resolves a ListOffsets query: `(offset, timestamp_ms)`, or `None` when no record has a
    /// timestamp at or after the one asked. Earliest/Latest return timestamp -1.
    ///
    /// # Errors
    /// Unknown topic/partition, I/O.
    pub async fn list_offset(
        &self,
        tp: &TopicPartition,
        spec: OffsetSpec,
    ) -> Result<Option<(Offset, i64)>> {
        let _ = (tp, spec);
        todo!()
    }

    /// Creates a topic, places its partitions on shards and persists the metadata.
    ///
    /// # Errors
    /// [`crate::EngineError::TopicExists`], invalid name, partitions or config, I/O.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<TopicInfo> {
        let _ = (name, partitions, config);
        todo!()
    }

    /// Deletes a topic and its data.
    ///
    /// # Errors
    /// [`crate::EngineError::UnknownTopic`], I/O.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let _ = name;
        todo!()
    }

    /// Raises a topic's partition count to `total`.
    ///
    /// # Errors
    /// Unknown topic, a count that is not an increase, I/O.
    pub async fn create_partitions(&self, name: &str, total: u32) -> Result<()> {
        let _ = (name, total);
        todo!()
    }

    /// Replaces a topic's configuration; takes effect at once, without a restart.
    ///
    /// # Errors
    /// Unknown topic, I/O.
    pub async fn alter_topic_config(&self, name: &str, config: TopicConfig) -> Result<()> {
        let _ = (name, config);
        todo!()
    }

    /// Every topic, from this shard's read-only copy of the metadata.
    pub fn topics(&self) -> Vec<TopicInfo> {
        todo!()
    }

    /// One topic from this shard's copy of the metadata.
    pub fn topic(&self, name: &str) -> Option<TopicInfo> {
        let _ = name;
        todo!()
    }

    /// The shard that owns a partition, from this shard's copy of the metadata.
    pub fn owner_of(&self, tp: &TopicPartition) -> Option<ShardId> {
        let _ = tp;
        todo!()
    }

    /// A topic with the live state of each partition (gathered from the owning shards).
    ///
    /// # Errors
    /// Unknown topic.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let _ = name;
        todo!()
    }

    /// Allocates a new idempotent producer id (persisted, never reused) with epoch 0.
    ///
    /// # Errors
    /// I/O.
    pub async fn init_producer_id(&self) -> Result<(i64, i16)> {
        todo!()
    }

    /// Runs `f` on shard `target` (in place when it is this shard) and returns its output.
    /// This is the one primitive every cross-shard request is built on.
    ///
    /// # Errors
    /// [`crate::EngineError::ShuttingDown`] when the target no longer takes work.
    pub async fn run_on<T, F, Fut>(&self, target: ShardId, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Shard) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let _ = (target, f);
        todo!()
    }

    /// This shard's group coordinator (for the groups whose coordinator this shard is).
    pub fn local_groups(&self) -> Rc<GroupCoordinator> {
        todo!()
    }

    /// Spawns request work on this shard's request task queue.
    pub fn spawn_request(&self, fut: impl Future<Output = ()> + 'static) {
        let _ = fut;
        todo!()
    }

    /// Spawns work on this shard's background task queue (retention, flushing, timers).
    pub fn spawn_background(&self, fut: impl Future<Output = ()> + 'static) {
        let _ = fut;
        todo!()
    }

    /// Resolves when the engine begins to shut down: services stop accepting, answer what is in
    /// flight and return.
    pub async fn stopping(&self) {
        todo!()
    }
}
