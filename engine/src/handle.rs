//! [`EngineHandle`]: the thread-safe way into the shards, usable from any thread or runtime.
//!
//! This is the single place where something thread-safe enters the shards. Every method sends
//! one job (a boxed `Send` closure, the same kind the cross-shard mesh carries) to one shard's
//! inbox, a bounded flume channel (glommio's own shared channels must be connected from inside
//! an executor, flume's need nothing), and awaits a `tokio::sync::oneshot` reply. Its futures
//! are therefore `Send` and need no particular runtime: a plain thread may
//! `futures::executor::block_on` them and a tokio task may `.await` them.
//!
//! A data request goes straight to the shard owning its partition, looked up in a routing table
//! that the metadata owner (shard 0) replaces after every topic change. The table is only ever
//! read by handles, never by shards on their data path; if it is stale (a topic created a
//! moment ago by another handle), the job lands on shard 0 or on the wrong shard, which routes
//! it on over the mesh, so a stale table costs a hop, never a wrong answer.
//!
//! Once the engine has shut down, every method answers [`EngineError::ShuttingDown`].

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use spindle_log::Offset;
use tokio::sync::Notify;

use crate::shard::mesh::{self, Job};
use crate::shard::state::Routes;
use crate::shard::METADATA_OWNER;
use crate::{
    EngineError, FetchOutcome, FetchRequest, OffsetSpec, ProduceOutcome, Record, Result, Shard,
    ShardId, TopicConfig, TopicDescription, TopicInfo, TopicPartition,
};

/// A cloneable, `Send + Sync` handle to a running engine.
#[derive(Clone)]
pub struct EngineHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    /// One inbox per shard, by shard index.
    inboxes: Vec<flume::Sender<Job>>,
    routes: Routes,
    /// Set once every shard thread has ended: nothing sent will ever be answered.
    stopped: AtomicBool,
    /// Wakes callers still waiting for an answer when the engine has stopped.
    stop: Notify,
}

impl EngineHandle {
    /// How many shards the engine runs.
    pub fn shard_count(&self) -> usize {
        self.inner.inboxes.len()
    }

    /// The shard that coordinates `group_id` (see [`Shard::group_coordinator`]), for
    /// [`EngineHandle::run_on`].
    pub fn group_coordinator(&self, group_id: &str) -> ShardId {
        let routes = match self.inner.routes.read() {
            Ok(routes) => routes,
            Err(poisoned) => poisoned.into_inner(),
        };
        let placement = routes
            .get(crate::CONSUMER_OFFSETS_TOPIC)
            .map_or(&[][..], |p| &p[..]);
        crate::group::coordinator_in(placement, group_id)
    }

    /// As [`Shard::produce`]; a `Bytes` still shared is copied on the calling thread.
    ///
    /// # Errors
    /// As [`Shard::produce`].
    pub async fn produce(
        &self,
        tp: &TopicPartition,
        records: impl Into<BytesMut>,
    ) -> Result<ProduceOutcome> {
        let records = records.into();
        let tp = tp.clone();
        self.run_on(self.route(&tp), move |s| async move {
            s.produce(&tp, records).await
        })
        .await?
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
        let tp = tp.clone();
        self.run_on(self.route(&tp), move |s| async move {
            s.produce_records(&tp, records).await
        })
        .await?
    }

    /// As [`Shard::fetch`].
    ///
    /// # Errors
    /// As [`Shard::fetch`].
    pub async fn fetch(&self, req: FetchRequest) -> Result<FetchOutcome> {
        self.run_on(
            self.route(&req.tp),
            move |s| async move { s.fetch(req).await },
        )
        .await?
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
        let tp = tp.clone();
        self.run_on(self.route(&tp), move |s| async move {
            s.list_offset(&tp, spec).await
        })
        .await?
    }

    /// As [`Shard::delete_records`].
    ///
    /// # Errors
    /// As [`Shard::delete_records`].
    pub async fn delete_records(
        &self,
        tp: &TopicPartition,
        before: Option<Offset>,
    ) -> Result<Offset> {
        let tp = tp.clone();
        self.run_on(self.route(&tp), move |s| async move {
            s.delete_records(&tp, before).await
        })
        .await?
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
        let name = name.to_owned();
        self.run_on(METADATA_OWNER, move |s| async move {
            s.create_topic(&name, partitions, config).await
        })
        .await?
    }

    /// As [`Shard::delete_topic`].
    ///
    /// # Errors
    /// As [`Shard::delete_topic`].
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.run_on(METADATA_OWNER, move |s| async move {
            s.delete_topic(&name).await
        })
        .await?
    }

    /// As [`Shard::create_partitions`].
    ///
    /// # Errors
    /// As [`Shard::create_partitions`].
    pub async fn create_partitions(&self, name: &str, total: u32) -> Result<()> {
        let name = name.to_owned();
        self.run_on(METADATA_OWNER, move |s| async move {
            s.create_partitions(&name, total).await
        })
        .await?
    }

    /// As [`Shard::alter_topic_config`].
    ///
    /// # Errors
    /// As [`Shard::alter_topic_config`].
    pub async fn alter_topic_config(&self, name: &str, config: TopicConfig) -> Result<()> {
        let name = name.to_owned();
        self.run_on(METADATA_OWNER, move |s| async move {
            s.alter_topic_config(&name, config).await
        })
        .await?
    }

    /// Every topic.
    ///
    /// # Errors
    /// [`crate::EngineError::ShuttingDown`].
    pub async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        self.run_on(METADATA_OWNER, |s| async move { s.topics() })
            .await
    }

    /// As [`Shard::describe_topic`].
    ///
    /// # Errors
    /// As [`Shard::describe_topic`].
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let name = name.to_owned();
        self.run_on(METADATA_OWNER, move |s| async move {
            s.describe_topic(&name).await
        })
        .await?
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
        let inbox = self
            .inner
            .inboxes
            .get(target.0 as usize)
            .unwrap_or_else(|| {
                panic!(
                    "shard {target} does not exist (the engine runs {} shards)",
                    self.inner.inboxes.len()
                )
            });
        // Registered before the check, so a stop between the check and the wait still wakes us.
        let mut stopped = pin!(self.inner.stop.notified());
        stopped.as_mut().enable();
        if self.inner.stopped.load(Ordering::SeqCst) {
            return Err(EngineError::ShuttingDown);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        inbox
            .send_async(mesh::job(f, reply))
            .await
            .map_err(|_| EngineError::ShuttingDown)?;
        // A job still queued when the shards ended is never answered (nor dropped: the
        // exited executor keeps its receive loop); the stop notification ends the wait.
        let answered = async { answer.await.map_err(|_| EngineError::ShuttingDown) };
        let stop = async {
            stopped.await;
            Err(EngineError::ShuttingDown)
        };
        futures_lite::future::or(answered, stop).await
    }

    /// Allocates a new idempotent producer id, as [`Shard::init_producer_id`].
    ///
    /// # Errors
    /// As [`Shard::init_producer_id`].
    pub async fn init_producer_id(&self) -> Result<(i64, i16)> {
        self.run_on(
            METADATA_OWNER,
            |s| async move { s.init_producer_id().await },
        )
        .await?
    }

    pub(crate) fn new(inboxes: Vec<flume::Sender<Job>>, routes: Routes) -> Self {
        Self {
            inner: Arc::new(HandleInner {
                inboxes,
                routes,
                stopped: AtomicBool::new(false),
                stop: Notify::new(),
            }),
        }
    }

    /// Marks the engine stopped (every shard thread has ended) and wakes every waiting caller.
    pub(crate) fn mark_stopped(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.stop.notify_waiters();
    }

    /// The shard owning `tp` by the routing table, or the metadata owner when the table does
    /// not know it (the shard routes it on).
    fn route(&self, tp: &TopicPartition) -> ShardId {
        let routes = match self.inner.routes.read() {
            Ok(routes) => routes,
            Err(poisoned) => poisoned.into_inner(),
        };
        routes
            .get(&*tp.topic)
            .and_then(|placement| placement.get(tp.partition.0 as usize))
            .copied()
            .unwrap_or(METADATA_OWNER)
    }
}
