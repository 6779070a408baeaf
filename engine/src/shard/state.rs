//! [`ShardState`]: everything one shard owns, and how it follows metadata changes.
//!
//! All of it is `!Send` (`Rc`, `RefCell`, `Cell`) and stays on the shard's thread. The shard's
//! metadata is a read-only copy: only [`ShardState::apply_metadata`], called by a message from
//! the metadata owner, replaces it, opening the partitions newly placed here and closing those
//! deleted.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, RwLock};

use futures::FutureExt;
use glommio::TaskQueueHandle;

use crate::event::Event;
use crate::group::GroupCoordinator;
use crate::log_api::Clock;
use crate::metadata::{discard_dir, topic_dir, Metadata, TopicMeta};
use crate::partition::Partition;
use crate::shard::mesh::Mesh;
use crate::{EngineConfig, Result, ShardId, TopicPartition};

/// Where handles look up the owning shard of a partition. Written only by the metadata owner
/// (after every change), read by handles on other threads; never touched on the data path.
pub(crate) type Routes = Arc<RwLock<HashMap<Arc<str>, Vec<ShardId>>>>;

/// Counts the tasks spawned through the shard (services' and the engine's own), so shutdown
/// can wait for them to finish.
#[derive(Default)]
pub(crate) struct TaskTracker {
    live: Cell<usize>,
    idle: Event,
}

impl TaskTracker {
    /// Wraps `fut` so that it counts as live until it completes or is dropped.
    pub(crate) fn track<F: Future<Output = ()> + 'static>(
        self: &Rc<Self>,
        fut: F,
    ) -> impl Future<Output = ()> + 'static {
        struct Guard(Rc<TaskTracker>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.live.set(self.0.live.get() - 1);
                if self.0.live.get() == 0 {
                    self.0.idle.notify();
                }
            }
        }
        self.live.set(self.live.get() + 1);
        let guard = Guard(self.clone());
        // Not an `async move` block awaiting `fut`: such a block keeps `fut` twice, once as
        // what it captured and once as what it awaits, and a connection's task would take
        // twice its 8 KiB. `map` polls `fut` where it lies; the guard drops with it, whether
        // `fut` completed or was dropped unfinished.
        fut.map(move |()| drop(guard))
    }

    pub(crate) fn live(&self) -> usize {
        self.live.get()
    }

    pub(crate) fn idle(&self) -> &Event {
        &self.idle
    }
}

/// Everything one shard owns.
pub(crate) struct ShardState {
    pub id: ShardId,
    pub count: usize,
    pub config: EngineConfig,
    pub mesh: Option<Mesh>,
    pub request_queue: TaskQueueHandle,
    pub background_queue: TaskQueueHandle,
    pub clock: Rc<dyn Clock>,
    /// This shard's read-only copy of the metadata.
    pub metadata: RefCell<Metadata>,
    /// The names of the topics in `metadata` by Kafka topic id (Fetch v13+ names topics by id).
    pub topic_names: RefCell<HashMap<u128, String>>,
    pub partitions: RefCell<HashMap<TopicPartition, Rc<Partition>>>,
    pub groups: OnceCell<Rc<GroupCoordinator>>,
    /// The transaction coordinator, set once recovered (after the group coordinator).
    pub txns: OnceCell<Rc<crate::txn::TxnCoordinator>>,
    pub tasks: Rc<TaskTracker>,
    /// Notified once when shutdown begins.
    pub stopping: Event,
    pub stopped: Cell<bool>,
    /// Notified when the shard's main future should return.
    pub exit: Event,
    /// Set on the metadata owner (shard 0) only.
    pub owner: Option<crate::admin::MetadataOwner>,
    pub routes: Routes,
    /// This shard's counters, read by scrapes through a message.
    pub metrics: crate::metrics::ShardMetrics,
    /// The shard's memory budget: tail caches and request buffers.
    pub memory: crate::MemoryBudget,
}

impl ShardState {
    /// The local partition, if this shard owns it.
    pub(crate) fn partition(&self, tp: &TopicPartition) -> Option<Rc<Partition>> {
        self.partitions.borrow().get(tp).cloned()
    }

    /// Every local partition.
    pub(crate) fn local_partitions(&self) -> Vec<Rc<Partition>> {
        self.partitions.borrow().values().cloned().collect()
    }

    fn partition_dir(&self, name: &str, meta: &TopicMeta, partition: u32) -> PathBuf {
        topic_dir(&self.config.data_dir, name, meta.id).join(partition.to_string())
    }

    /// Replaces this shard's copy of the metadata with `next` (ignored when not newer): opens
    /// the partitions newly placed here, pushes changed configurations to their logs, and closes
    /// (and deletes the data of) partitions of deleted topics.
    ///
    /// # Errors
    /// The first error opening or closing a partition; the others are still attempted.
    pub(crate) async fn apply_metadata(&self, next: Metadata) -> Result<()> {
        let previous = self.metadata.borrow().clone();
        if next.version <= previous.version {
            return Ok(());
        }
        let mut first_error = None;
        // First close what is gone: topics deleted or re-created (new id), partitions moved.
        let gone: Vec<TopicPartition> = self
            .partitions
            .borrow()
            .keys()
            .filter(|tp| match next.topics.get(&*tp.topic) {
                None => true,
                Some(meta) => {
                    previous.topics.get(&*tp.topic).map(|m| m.id) != Some(meta.id)
                        || meta.placement.get(tp.partition.0 as usize) != Some(&self.id)
                }
            })
            .cloned()
            .collect();
        for tp in gone {
            let Some(partition) = self.partitions.borrow_mut().remove(&tp) else {
                continue;
            };
            let deleted = next.topics.get(&*tp.topic).map(|m| m.id)
                != previous.topics.get(&*tp.topic).map(|m| m.id);
            if let Err(e) = close_partition(&partition, deleted, &self.config.data_dir).await {
                tracing::error!(partition = %tp, error = %e, "closing partition failed");
                first_error.get_or_insert(e);
            }
        }
        // Then open what is new here and push changed configurations to the logs.
        for (name, meta) in &next.topics {
            for (p, shard) in meta.placement.iter().enumerate() {
                if *shard != self.id {
                    continue;
                }
                let tp = TopicPartition::new(name.as_str(), p as u32);
                if let Some(existing) = self.partition(&tp) {
                    existing.set_config(&meta.config);
                    continue;
                }
                let dir = self.partition_dir(name, meta, p as u32);
                match Partition::open(tp.clone(), dir, &meta.config, self.clock.clone()).await {
                    Ok(partition) => {
                        partition.observe_rounds(self.metrics.round_observer());
                        self.partitions.borrow_mut().insert(tp, Rc::new(partition));
                    }
                    Err(e) => {
                        tracing::error!(partition = %tp, error = %e, "opening partition failed");
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        *self.topic_names.borrow_mut() = next
            .topics
            .iter()
            .map(|(name, meta)| (meta.uuid, name.clone()))
            .collect();
        *self.metadata.borrow_mut() = next;
        self.share_cache_memory();
        first_error.map_or(Ok(()), Err)
    }

    /// Divides the cache share of the memory budget evenly among the shard's logs.
    fn share_cache_memory(&self) {
        let partitions = self.partitions.borrow();
        let per_log = self.memory.tail_cache_bytes_per_log(partitions.len());
        for partition in partitions.values() {
            partition.set_tail_cache_bytes(per_log);
        }
    }
}

/// Closes a partition and, when its topic was deleted, moves its data to the trash.
async fn close_partition(partition: &Partition, delete_data: bool, data_dir: &Path) -> Result<()> {
    partition.close().await?;
    if delete_data {
        discard_dir(data_dir, partition.dir()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A future that holds 4 KiB across an await, as a connection's does.
    async fn holding_4_kib(go: Rc<Event>) {
        let held = [7u8; 4096];
        go.wait_past(0).await;
        assert_eq!(std::hint::black_box(&held)[4095], 7);
    }

    #[test]
    fn a_tracked_future_is_stored_once_and_counted_until_done_or_dropped() {
        let tracker = Rc::new(TaskTracker::default());
        let go = Rc::new(Event::default());
        let fut = holding_4_kib(go.clone());
        let alone = std::mem::size_of_val(&fut);
        let tracked = tracker.track(fut);
        assert!(
            std::mem::size_of_val(&tracked) < alone + 64,
            "{} bytes tracked, {alone} alone",
            std::mem::size_of_val(&tracked)
        );
        assert_eq!(tracker.live(), 1);
        drop(tracked);
        assert_eq!(tracker.live(), 0, "dropped unfinished");

        let tracked = tracker.track(holding_4_kib(go.clone()));
        assert_eq!(tracker.live(), 1);
        go.notify();
        futures_lite::future::block_on(tracked);
        assert_eq!(tracker.live(), 0, "done");
    }
}
