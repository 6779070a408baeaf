//! The `spindle.v1` services and what they share.
//!
//! Every handler runs on the gateway's tokio runtime and reaches the shards only through
//! [`EngineHandle`], whose calls are a message to the owning shard and a one-shot reply: a
//! shard thread never waits for the gateway, and the gateway never touches shard state.

mod admin;
mod consumer;
mod producer;
mod subscription;

use std::sync::Arc;

use spindle_engine::EngineHandle;
use tokio::sync::watch;

pub use admin::AdminService;
pub use consumer::ConsumerService;
pub use producer::ProducerService;

use crate::gauges::Gauges;
use crate::partitioner::Partitioner;
use crate::quota::Quotas;
use crate::topic_cache::TopicCache;

/// What every service shares.
pub struct Context {
    /// The way into the shards.
    pub engine: EngineHandle,
    /// Partition counts for placing records.
    pub topics: TopicCache,
    /// Produce quotas.
    pub quotas: Quotas,
    /// Placement of records that name no partition.
    pub partitioner: Partitioner,
    /// Open streams and queued bytes.
    pub gauges: Arc<Gauges>,
    /// Turns `true` when the gateway shuts down: long-lived streams end.
    pub shutdown: watch::Receiver<bool>,
}

impl Context {
    /// Resolves when the gateway begins to shut down (or has been dropped).
    pub async fn stopping(&self) {
        let mut shutdown = self.shutdown.clone();
        // An error means the sender is gone, which is a shutdown too.
        while !*shutdown.borrow_and_update() {
            if shutdown.changed().await.is_err() {
                return;
            }
        }
    }
}
