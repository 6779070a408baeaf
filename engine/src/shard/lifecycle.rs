//! A shard's life: recovery, serving, draining, closing.
//!
//! Start: join the mesh, open this shard's partitions from the metadata copy it was started
//! with, recover its group coordinator, start the background tasks, report ready. The engine
//! starts services only once every shard is ready, so a service never routes to a shard still
//! recovering.
//!
//! Shutdown runs in three engine-wide phases, each a job sent to every shard and awaited before
//! the next: *drain* (signal [`crate::Shard::stopping`], end long polls, give tracked tasks up to
//! [`SERVICE_DRAIN_MAX`] to finish; the mesh still works so in-flight cross-shard requests
//! complete), *close* (flush, sync and close every log; the owner persists the metadata), and
//! *exit* (the shard's main future returns and its thread ends).

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers};
use glommio::{Latency, Shares};

use crate::admin::MetadataOwner;
use crate::event::Event;
use crate::group::GroupCoordinator;
use crate::limits::{
    FSYNC_TICK_MAX, FSYNC_TICK_MIN, RETENTION_CHECK_INTERVAL, SERVICE_DRAIN_MAX,
    SNAPSHOT_CHECK_INTERVAL, WAKE_GUARD_INTERVAL,
};
use crate::log_api::SystemClock;
use crate::metadata::Metadata;
use crate::shard::mesh::{self, Job, Mesh};
use crate::shard::state::{Routes, ShardState, TaskTracker};
use crate::shard::METADATA_OWNER;
use crate::{EngineConfig, EngineError, Result, Shard, ShardId};
use spindle_log::LogError;

/// What a shard thread starts with.
pub(crate) struct ShardStart {
    pub id: ShardId,
    pub count: usize,
    pub config: EngineConfig,
    pub mesh: Option<MeshBuilder<Job, Full>>,
    pub inbox: flume::Receiver<Job>,
    pub metadata: Metadata,
    pub routes: Routes,
}

/// The shard's main future: starts, reports to `ready`, serves until told to exit.
pub(crate) async fn run(start: ShardStart, ready: std::sync::mpsc::Sender<Result<()>>) {
    let id = start.id;
    let shard = match recover(start).await {
        Ok(shard) => shard,
        Err(e) => {
            tracing::error!(shard = %id, error = %e, "shard failed to start");
            if ready.send(Err(e)).is_err() {
                tracing::warn!(shard = %id, "engine stopped waiting for the shard");
            }
            return;
        }
    };
    let exit_seen = shard.state().exit.generation();
    if ready.send(Ok(())).is_err() {
        tracing::warn!(shard = %id, "engine stopped waiting for the shard");
        return;
    }
    // Wake at least every `WAKE_GUARD_INTERVAL` until told to exit. glommio 0.9 can miss the
    // wake-up of a parked executor by another thread (a handle's job), and then sleeps until
    // something else wakes it; while the shard serves, its timers do, but the shutdown phases
    // come after the timer tasks ended, and a missed wake-up there would hang the shutdown.
    // A wake finds any job that arrived meanwhile.
    let exit = shard.state().exit.wait_past(exit_seen);
    futures_lite::pin!(exit);
    while !crate::event::or_after(&mut exit, WAKE_GUARD_INTERVAL).await {}
    tracing::debug!(shard = %id, "shard exits");
}

async fn recover(start: ShardStart) -> Result<Shard> {
    // DESIGN trap 1: open a non-empty file with DmaFile before any segment on this thread.
    spindle_log::prepare_thread_io(&start.config.data_dir).await?;
    let executor = glommio::executor();
    let request_queue =
        executor.create_task_queue(Shares::Static(1000), Latency::NotImportant, "request");
    let background_queue =
        executor.create_task_queue(Shares::Static(100), Latency::NotImportant, "background");
    let (mesh, receivers) = join_mesh(start.mesh, start.id).await?;
    let owner = (start.id == METADATA_OWNER).then(|| MetadataOwner::new(&start.metadata));
    let memory = crate::MemoryBudget::new(start.config.shard_memory_bytes);
    let state = ShardState {
        id: start.id,
        count: start.count,
        config: start.config,
        mesh,
        request_queue,
        background_queue,
        clock: Rc::new(SystemClock),
        metadata: RefCell::new(Metadata::default()),
        topic_names: RefCell::new(HashMap::new()),
        partitions: RefCell::new(HashMap::new()),
        groups: OnceCell::new(),
        txns: OnceCell::new(),
        tasks: Rc::new(TaskTracker::default()),
        stopping: Event::default(),
        stopped: Cell::new(false),
        exit: Event::default(),
        owner,
        routes: start.routes,
        metrics: crate::metrics::ShardMetrics::default(),
        memory,
    };
    let shard = Shard::new(Rc::new(state));
    if let Some(receivers) = receivers {
        mesh::spawn_receive_loops(&shard, receivers, request_queue);
    }
    mesh::spawn_inbox_loop(&shard, start.inbox, request_queue);
    let opened = Instant::now();
    shard.state().apply_metadata(start.metadata).await?;
    tracing::info!(
        shard = %start.id,
        partitions = shard.state().partitions.borrow().len(),
        elapsed_ms = opened.elapsed().as_millis() as u64,
        "partitions recovered"
    );
    let groups = GroupCoordinator::recover(&shard).await?;
    if shard.state().groups.set(groups).is_err() {
        unreachable!("the group coordinator is recovered once per shard");
    }
    let txns = crate::txn::TxnCoordinator::recover(&shard)?;
    if shard.state().txns.set(txns).is_err() {
        unreachable!("the transaction coordinator is recovered once per shard");
    }
    if start.id.0 == 0 {
        crate::metadata::empty_trash(&shard.state().config.data_dir);
    }
    shard.spawn_background(retention_loop(shard.clone()));
    shard.spawn_background(snapshot_loop(shard.clone()));
    shard.spawn_background(compaction_loop(shard.clone()));
    shard.spawn_background(fsync_loop(shard.clone()));
    Ok(shard)
}

/// Joins the channel mesh, when the engine has more than one shard, and checks that this shard
/// got the position of its id.
async fn join_mesh(
    builder: Option<MeshBuilder<Job, Full>>,
    id: ShardId,
) -> Result<(Option<Mesh>, Option<Receivers<Job>>)> {
    let Some(builder) = builder else {
        return Ok((None, None));
    };
    let (senders, receivers) = builder
        .join()
        .await
        .map_err(|e| EngineError::Start(format!("joining the channel mesh: {e}")))?;
    // Peers are ordered by executor id, and executors are created in shard order.
    if senders.peer_id() != id.0 as usize {
        return Err(EngineError::Start(format!(
            "shard {} got mesh position {}",
            id,
            senders.peer_id()
        )));
    }
    Ok((Some(Mesh::new(senders)), Some(receivers)))
}

/// Sleeps for `period` or until shutdown begins; returns whether the shard is stopping.
pub(crate) async fn sleep_unless_stopping(shard: &Shard, period: std::time::Duration) -> bool {
    let state = shard.state();
    let seen = state.stopping.generation();
    if state.stopped.get() {
        return true;
    }
    let stopping = state.stopping.wait_past(seen);
    futures_lite::pin!(stopping);
    crate::event::or_after(&mut stopping, period).await;
    state.stopped.get()
}

/// Enforces retention on the shard's partitions every [`RETENTION_CHECK_INTERVAL`].
async fn retention_loop(shard: Shard) {
    while !sleep_unless_stopping(&shard, RETENTION_CHECK_INTERVAL).await {
        for partition in shard.state().local_partitions() {
            if let Err(e) = partition.enforce_retention().await {
                tracing::warn!(error = %e, "retention failed");
            }
        }
    }
}

/// Saves the producer snapshot of the shard's partitions that rolled since their last one, every
/// [`SNAPSHOT_CHECK_INTERVAL`].
async fn snapshot_loop(shard: Shard) {
    while !sleep_unless_stopping(&shard, SNAPSHOT_CHECK_INTERVAL).await {
        for partition in shard.state().local_partitions() {
            if let Err(e) = partition.snapshot_producers_if_rolled().await {
                tracing::warn!(error = %e, "saving a producer snapshot failed");
            }
        }
    }
}

/// Compacts the shard's partitions of compacted topics, one at a time, when a pass is due.
async fn compaction_loop(shard: Shard) {
    while !sleep_unless_stopping(&shard, RETENTION_CHECK_INTERVAL).await {
        for partition in shard.state().local_partitions() {
            if shard.state().stopped.get() {
                return;
            }
            match partition.compact_if_due().await {
                Ok(Some(outcome)) => {
                    let metrics = shard.metrics();
                    metrics.log_compactions.add(1);
                    metrics
                        .compaction_records_removed
                        .add(outcome.records_removed);
                }
                Ok(None) => {}
                // The partition closed under the pass (shutdown, deletion): nothing was lost.
                Err(EngineError::Log(LogError::Closed { .. })) => {}
                Err(e) => tracing::warn!(error = %e, "compaction failed"),
            }
        }
    }
}

async fn fsync_loop(shard: Shard) {
    loop {
        let tick = shard
            .state()
            .local_partitions()
            .iter()
            .filter_map(|p| p.fsync_interval())
            .min()
            .map_or(FSYNC_TICK_MAX, |t| t.clamp(FSYNC_TICK_MIN, FSYNC_TICK_MAX));
        if sleep_unless_stopping(&shard, tick).await {
            return;
        }
        let now = Instant::now();
        for partition in shard.state().local_partitions() {
            if let Err(e) = partition.sync_if_due(now).await {
                tracing::error!(error = %e, "interval fsync failed");
            }
        }
    }
}

/// Shutdown phase 1: signal services, end long polls, wait for tracked tasks.
pub(crate) async fn drain(shard: &Shard) {
    let state = shard.state();
    state.stopped.set(true);
    state.stopping.notify();
    for partition in state.local_partitions() {
        partition.end_long_polls();
    }
    let deadline = Instant::now() + SERVICE_DRAIN_MAX;
    while state.tasks.live() > 0 {
        let now = Instant::now();
        if now >= deadline {
            tracing::warn!(shard = %state.id, tasks = state.tasks.live(), "tasks still running at shutdown");
            break;
        }
        let seen = state.tasks.idle().generation();
        let idle = state.tasks.idle().wait_past(seen);
        futures_lite::pin!(idle);
        crate::event::or_after(&mut idle, deadline - now).await;
    }
}

/// Shutdown phase 2: flush, sync and close every log; the owner persists the metadata.
///
/// # Errors
/// The first error met; every partition is still closed.
pub(crate) async fn close(shard: &Shard) -> Result<()> {
    let state = shard.state();
    let partitions: Vec<_> = state.partitions.borrow_mut().drain().collect();
    let mut first_error = None;
    for (tp, partition) in partitions {
        if let Err(e) = partition.close().await {
            tracing::error!(partition = %tp, error = %e, "closing partition failed");
            first_error.get_or_insert(e);
        }
    }
    if state.owner.is_some() {
        let metadata = state.metadata.borrow().clone();
        let dir = state.config.data_dir.clone();
        if let Err(e) = glommio::executor()
            .spawn_blocking(move || metadata.persist(&dir))
            .await
        {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Shutdown phase 3: let the shard's main future return.
pub(crate) fn exit(shard: &Shard) {
    shard.state().exit.notify();
}
