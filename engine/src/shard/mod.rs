//! A shard: one glommio executor pinned to one core, owning its partitions outright.
//!
//! [`Shard`] is the shard-local context handed to code that runs on a shard (the Kafka server,
//! the group coordinator). It is `!Send`: it never leaves its thread. Partitions owned by this
//! shard are served in place; for any other the request travels over the channel mesh as a
//! job built by [`Shard::run_on`], the one primitive every cross-shard request uses.
//!
//! Files: `executor.rs` starts the shard threads (io_uring probe, memlock sizing, placement),
//! `lifecycle.rs` is each shard's life from recovery to shutdown, `mesh.rs` the cross-shard
//! jobs and receive loops, `state.rs` what a shard owns and how it follows metadata changes.

pub(crate) mod executor;
pub(crate) mod lifecycle;
pub(crate) mod mesh;
pub(crate) mod state;

use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::time::Instant;

use bytes::BytesMut;
use spindle_log::Offset;

use crate::group::GroupCoordinator;
use crate::partition::Partition;
use crate::{
    admin, batch_builder, EngineError, FetchOutcome, FetchRequest, OffsetSpec, ProduceOutcome,
    Record, Result, TopicConfig, TopicDescription, TopicInfo, TopicPartition,
};
use state::ShardState;

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
    inner: Rc<ShardState>,
}

impl Shard {
    /// This shard's index.
    pub fn id(&self) -> ShardId {
        self.inner.id
    }

    /// How many shards the engine runs.
    pub fn shard_count(&self) -> usize {
        self.inner.count
    }

    /// Appends `records` (one or more Kafka v2 batches, as received) to a partition and returns
    /// once they are written (see DESIGN: an acknowledgement means the kernel has the bytes).
    /// Idempotent batches (producer id ≥ 0) are checked per producer: a duplicate returns its
    /// original offsets and is not stored twice.
    ///
    /// The engine takes the buffer over and assigns offsets by patching them into it; what is
    /// stored and served is that very memory. A `Bytes` converts to it without a copy when
    /// nothing else refers to its buffer, and is copied otherwise.
    ///
    /// # Errors
    /// Unknown topic/partition, invalid batch, sequence or epoch errors, oversize batch, I/O.
    pub async fn produce(
        &self,
        tp: &TopicPartition,
        records: impl Into<BytesMut>,
    ) -> Result<ProduceOutcome> {
        refuse_internal_write(tp)?;
        self.append_to(tp, records.into(), None).await
    }

    /// [`Shard::produce`] for a transactional producer (a Kafka Produce naming its
    /// `transactional_id`): a transactional batch for a partition where the producer has no
    /// transaction open yet is first checked with the id's coordinator, which must have the
    /// partition in the producer's open transaction (Kafka's KIP-890 verification). Without the
    /// check, a batch that arrived late, after its transaction ended, would open a transaction no
    /// marker ever closes, and hold every read-committed consumer of the partition at it.
    ///
    /// # Errors
    /// As [`Shard::produce`]; [`crate::txn::TxnError`] when the coordinator refuses.
    pub async fn produce_in_transaction(
        &self,
        tp: &TopicPartition,
        records: impl Into<BytesMut>,
        transactional_id: &str,
    ) -> Result<ProduceOutcome> {
        refuse_internal_write(tp)?;
        self.append_to(tp, records.into(), Some(transactional_id.to_owned()))
            .await
    }

    /// Appends plain records to an internal topic (the group coordinator's offsets log), which
    /// [`Shard::produce`] refuses to clients.
    pub(crate) async fn append_internal_records(
        &self,
        tp: &TopicPartition,
        records: Vec<Record>,
    ) -> Result<ProduceOutcome> {
        let batch = batch_builder::encode(&records, self.inner.clock.now_ms())?;
        self.append_to(tp, batch.into(), None).await
    }

    async fn append_to(
        &self,
        tp: &TopicPartition,
        records: BytesMut,
        transactional_id: Option<String>,
    ) -> Result<ProduceOutcome> {
        let owner = self.route_produce(tp).await?;
        if owner == self.id() {
            return self.produce_local(tp, records, transactional_id).await;
        }
        let tp = tp.clone();
        self.run_on(owner, move |s| async move {
            s.produce_local(&tp, records, transactional_id).await
        })
        .await?
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
        let batch = batch_builder::encode(&records, self.inner.clock.now_ms())?;
        self.produce(tp, batch).await
    }

    /// Reads whole batches from `req.offset`, long-polling up to `req.max_wait` until
    /// `req.min_bytes` are available (woken by the append, no busy polling).
    ///
    /// # Errors
    /// Unknown topic/partition, [`crate::EngineError::OffsetOutOfRange`], I/O.
    pub async fn fetch(&self, req: FetchRequest) -> Result<FetchOutcome> {
        let owner = self.owner_or_unknown(&req.tp)?;
        if owner == self.id() {
            return self.local(&req.tp)?.fetch(&req).await;
        }
        self.run_on(owner, move |s| async move {
            s.local(&req.tp)?.fetch(&req).await
        })
        .await?
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
        let owner = self.owner_or_unknown(tp)?;
        let tp = tp.clone();
        self.run_on(owner, move |s| async move {
            s.local(&tp)?.list_offset(spec).await
        })
        .await?
    }

    /// Deletes a partition's records below `before` (its high watermark if `None`), as Kafka's
    /// DeleteRecords: the log start offset moves there, for good. Returns the new log start
    /// offset (unchanged if it was already past `before`).
    ///
    /// # Errors
    /// Unknown topic/partition; the internal offsets topic (refused as a write);
    /// [`crate::EngineError::OffsetOutOfRange`] when `before` is above the high watermark; I/O.
    pub async fn delete_records(
        &self,
        tp: &TopicPartition,
        before: Option<Offset>,
    ) -> Result<Offset> {
        refuse_internal_write(tp)?;
        let owner = self.owner_or_unknown(tp)?;
        let tp = tp.clone();
        self.run_on(owner, move |s| async move {
            s.local(&tp)?.delete_records(before).await
        })
        .await?
    }

    /// Moves the log start of a partition of the internal offsets topic that this shard owns
    /// to `before`: the group coordinator's cleaning, once it has rewritten every live commit
    /// at or above it. Returns the new log start offset.
    ///
    /// # Errors
    /// A partition this shard does not own; I/O.
    pub(crate) async fn move_internal_log_start(
        &self,
        tp: &TopicPartition,
        before: Offset,
    ) -> Result<Offset> {
        self.local(tp)?.delete_records(Some(before)).await
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
        let name = name.to_owned();
        self.run_on(METADATA_OWNER, move |s| async move {
            admin::create_topic(&s, &name, partitions, config).await
        })
        .await?
    }

    /// Deletes a topic and its data.
    ///
    /// # Errors
    /// [`crate::EngineError::UnknownTopic`], I/O.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.run_on(METADATA_OWNER, move |s| async move {
            admin::delete_topic(&s, &name).await
        })
        .await?
    }

    /// Raises a topic's partition count to `total`.
    ///
    /// # Errors
    /// Unknown topic, a count that is not an increase, I/O.
    pub async fn create_partitions(&self, name: &str, total: u32) -> Result<()> {
        let name = name.to_owned();
        self.run_on(METADATA_OWNER, move |s| async move {
            admin::create_partitions(&s, &name, total).await
        })
        .await?
    }

    /// Replaces a topic's configuration; takes effect at once, without a restart.
    ///
    /// # Errors
    /// Unknown topic, I/O.
    pub async fn alter_topic_config(&self, name: &str, config: TopicConfig) -> Result<()> {
        let name = name.to_owned();
        self.run_on(METADATA_OWNER, move |s| async move {
            admin::alter_topic_config(&s, &name, config).await
        })
        .await?
    }

    /// The node's data directory, which holds every partition's log.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.state().config.data_dir.clone()
    }

    /// Every topic, from this shard's read-only copy of the metadata.
    pub fn topics(&self) -> Vec<TopicInfo> {
        self.inner.metadata.borrow().topic_infos()
    }

    /// The version of this shard's copy of the metadata, bumped by every topic change.
    pub fn metadata_version(&self) -> u64 {
        self.inner.metadata.borrow().version
    }

    /// One topic from this shard's copy of the metadata.
    pub fn topic(&self, name: &str) -> Option<TopicInfo> {
        self.inner.metadata.borrow().topic_info(name)
    }

    /// The name of the topic with Kafka topic id `topic_id`, from this shard's copy of the
    /// metadata.
    pub fn topic_name(&self, topic_id: u128) -> Option<String> {
        self.inner.topic_names.borrow().get(&topic_id).cloned()
    }

    /// The shard that owns a partition, from this shard's copy of the metadata.
    pub fn owner_of(&self, tp: &TopicPartition) -> Option<ShardId> {
        self.inner
            .metadata
            .borrow()
            .owner_of(&tp.topic, tp.partition.0)
    }

    /// A topic with the live state of each partition (gathered from the owning shards).
    ///
    /// # Errors
    /// Unknown topic.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let (info, placement) = {
            let metadata = self.inner.metadata.borrow();
            let meta = metadata
                .topics
                .get(name)
                .ok_or_else(|| EngineError::UnknownTopic(name.to_owned()))?;
            let info = metadata
                .topic_info(name)
                .ok_or_else(|| EngineError::UnknownTopic(name.to_owned()))?;
            (info, meta.placement.clone())
        };
        let states = placement.iter().enumerate().map(|(p, owner)| {
            let tp = TopicPartition::new(name, p as u32);
            self.run_on(*owner, move |s| async move {
                s.local(&tp).map(|partition| partition.state(s.id()))
            })
        });
        let mut partitions = Vec::with_capacity(placement.len());
        for state in futures::future::join_all(states).await {
            partitions.push(state??);
        }
        Ok(TopicDescription { info, partitions })
    }

    /// Allocates a new idempotent producer id (persisted, never reused) with epoch 0.
    ///
    /// # Errors
    /// I/O.
    pub async fn init_producer_id(&self) -> Result<(i64, i16)> {
        self.run_on(METADATA_OWNER, |s| async move {
            admin::init_producer_id(&s).await
        })
        .await?
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
        assert!(
            (target.0 as usize) < self.inner.count,
            "shard {target} does not exist (the engine runs {} shards)",
            self.inner.count
        );
        if target == self.id() {
            return Ok(f(self.clone()).await);
        }
        let mesh = self
            .inner
            .mesh
            .as_ref()
            .expect("an engine with more than one shard has a mesh");
        self.inner.metrics.cross_shard_messages.add(1);
        let (reply, answer) = tokio::sync::oneshot::channel();
        mesh.send(target.0 as usize, mesh::job(f, reply))
            .await
            .map_err(|()| EngineError::ShuttingDown)?;
        answer.await.map_err(|_| EngineError::ShuttingDown)
    }

    /// Runs `f` on every shard at once (this one in place) and returns each shard's output, or
    /// [`crate::EngineError::ShuttingDown`] for a shard that no longer takes work, in shard
    /// order.
    pub async fn run_on_every_shard<T, F, Fut>(&self, f: F) -> Vec<Result<T>>
    where
        T: Send + 'static,
        F: FnOnce(Shard) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        // The last shard takes `f` itself, the others a clone each.
        let every = std::iter::repeat_n(f, self.shard_count())
            .zip(0..)
            .map(|(f, i)| self.run_on(ShardId(i), f));
        futures::future::join_all(every).await
    }

    /// The shard that coordinates `group_id`: the owner of the group's partition of the offsets
    /// topic (see [`crate::group`]).
    pub fn group_coordinator(&self, group_id: &str) -> ShardId {
        let metadata = self.state().metadata.borrow();
        let placement = metadata
            .topics
            .get(crate::CONSUMER_OFFSETS_TOPIC)
            .map_or(&[][..], |t| &t.placement[..]);
        crate::group::coordinator_in(placement, group_id)
    }

    /// This shard's group coordinator (for the groups whose coordinator this shard is).
    pub fn local_groups(&self) -> Rc<GroupCoordinator> {
        self.inner
            .groups
            .get()
            .cloned()
            .expect("the group coordinator is recovered before any service starts")
    }

    /// This shard's transaction coordinator (for the transactional ids whose coordinator this
    /// shard is, the same shard as a group of that name).
    pub fn local_transactions(&self) -> Rc<crate::txn::TxnCoordinator> {
        self.inner
            .txns
            .get()
            .cloned()
            .expect("the transaction coordinator is recovered before any service starts")
    }

    /// The partition count of the offsets topic.
    pub(crate) fn offsets_partition_count(&self) -> usize {
        self.offsets_placement().len()
    }

    /// The partitions of the offsets topic this shard owns.
    pub(crate) fn owned_offsets_partitions(&self) -> Vec<u32> {
        let placement = self.offsets_placement();
        (0u32..)
            .zip(placement)
            .filter(|(_, owner)| *owner == self.id())
            .map(|(p, _)| p)
            .collect()
    }

    fn offsets_placement(&self) -> Vec<ShardId> {
        self.state()
            .metadata
            .borrow()
            .topics
            .get(crate::CONSUMER_OFFSETS_TOPIC)
            .map(|t| t.placement.clone())
            .unwrap_or_default()
    }

    /// Ends producer `producer_id`'s transaction in `tp` with `marker`, on the partition's
    /// owner (see `Partition::write_marker`); the marker's offset. The transaction coordinator
    /// writes markers this way, and so does an operator aborting a hanging transaction (Kafka's
    /// WriteTxnMarkers, sent by `kafka-transactions.sh abort`).
    ///
    /// # Errors
    /// An unknown partition; the internal offsets topic (refused as a write); a later epoch
    /// seen there; I/O.
    pub async fn write_marker(
        &self,
        tp: &TopicPartition,
        producer_id: i64,
        epoch: i16,
        marker: crate::log_api::batch::TxnMarker,
    ) -> Result<Offset> {
        refuse_internal_write(tp)?;
        let owner = self.owner_or_unknown(tp)?;
        let tp = tp.clone();
        self.run_on(owner, move |s| async move {
            s.local(&tp)?
                .write_marker(producer_id, epoch, marker, 0)
                .await
        })
        .await?
    }

    /// Every producer a partition knows: its epoch, last sequence and timestamp, and the start
    /// of its open transaction (Kafka's DescribeProducers).
    ///
    /// # Errors
    /// Unknown topic/partition.
    pub async fn producers(&self, tp: &TopicPartition) -> Result<Vec<crate::ProducerState>> {
        let owner = self.owner_or_unknown(tp)?;
        let tp = tp.clone();
        self.run_on(owner, move |s| async move { Ok(s.local(&tp)?.producers()) })
            .await?
    }

    /// This shard's counters (see [`crate::metrics`]).
    pub fn metrics(&self) -> &crate::metrics::ShardMetrics {
        &self.inner.metrics
    }

    /// This shard's memory budget: connections reserve their request buffers from it.
    pub fn memory(&self) -> &crate::MemoryBudget {
        &self.inner.memory
    }

    /// Spawns request work on this shard's request task queue.
    pub fn spawn_request(&self, fut: impl Future<Output = ()> + 'static) {
        glommio::spawn_local_into(self.inner.tasks.track(fut), self.inner.request_queue)
            .expect("the request task queue lives as long as the executor")
            .detach();
    }

    /// Spawns work on this shard's background task queue (retention, flushing, timers).
    pub fn spawn_background(&self, fut: impl Future<Output = ()> + 'static) {
        glommio::spawn_local_into(self.inner.tasks.track(fut), self.inner.background_queue)
            .expect("the background task queue lives as long as the executor")
            .detach();
    }

    /// Resolves when the engine begins to shut down: services stop accepting, answer what is in
    /// flight and return.
    pub async fn stopping(&self) {
        let seen = self.inner.stopping.generation();
        if self.inner.stopped.get() {
            return;
        }
        self.inner.stopping.wait_past(seen).await;
    }

    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopped.get()
    }

    pub(crate) fn new(state: Rc<ShardState>) -> Self {
        Self { inner: state }
    }

    pub(crate) fn state(&self) -> &ShardState {
        &self.inner
    }

    /// The partition if this shard owns it.
    fn local(&self, tp: &TopicPartition) -> Result<Rc<Partition>> {
        self.inner.partition(tp).ok_or_else(|| self.unknown(tp))
    }

    async fn produce_local(
        &self,
        tp: &TopicPartition,
        records: BytesMut,
        transactional_id: Option<String>,
    ) -> Result<ProduceOutcome> {
        let started = Instant::now();
        let bytes = records.len() as u64;
        let partition = self.local(tp)?;
        if let Some(id) = transactional_id {
            if let Some(opening) = partition.transaction_to_verify(&records) {
                crate::txn::verify(self, &id, opening.producer_id, opening.epoch, tp).await?;
                // The transaction may have ended while the coordinator answered.
                partition.check_still_open(&opening)?;
            }
        }
        let outcome = partition.produce(records).await?;
        let appended = outcome.last_offset.0 + 1 - outcome.base_offset.0;
        self.inner
            .metrics
            .record_append(appended, bytes, started.elapsed());
        Ok(outcome)
    }

    fn owner_or_unknown(&self, tp: &TopicPartition) -> Result<ShardId> {
        self.owner_of(tp).ok_or_else(|| self.unknown(tp))
    }

    fn unknown(&self, tp: &TopicPartition) -> EngineError {
        if self.inner.metadata.borrow().topics.contains_key(&*tp.topic) {
            EngineError::UnknownPartition {
                topic: tp.topic.to_string(),
                partition: tp.partition.0,
            }
        } else {
            EngineError::UnknownTopic(tp.topic.to_string())
        }
    }

    /// The owner of `tp`, creating its topic first when it is unknown and the engine
    /// auto-creates topics.
    async fn route_produce(&self, tp: &TopicPartition) -> Result<ShardId> {
        if let Some(owner) = self.owner_of(tp) {
            return Ok(owner);
        }
        let config = &self.inner.config;
        if self.topic(&tp.topic).is_some() || !config.auto_create_topics {
            return Err(self.unknown(tp));
        }
        let created = self
            .create_topic(
                &tp.topic,
                config.default_partitions,
                config.topic_defaults.clone(),
            )
            .await;
        match created {
            Ok(_) | Err(EngineError::TopicExists(_)) => self.owner_or_unknown(tp),
            Err(e) => Err(e),
        }
    }
}

/// Refuses a client's write to an internal topic, as Kafka does: the offsets log holds what the
/// group coordinator replays at start, and only the coordinator writes it.
fn refuse_internal_write(tp: &TopicPartition) -> Result<()> {
    if &*tp.topic == crate::CONSUMER_OFFSETS_TOPIC {
        return Err(EngineError::InvalidTopic {
            name: tp.topic.to_string(),
            reason: "internal topics cannot be written to".to_owned(),
        });
    }
    Ok(())
}

/// The shard that owns the metadata (decision 7) and hands out producer ids.
pub(crate) const METADATA_OWNER: ShardId = ShardId(0);
