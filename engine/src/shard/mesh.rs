//! The cross-shard channel mesh and the jobs that travel on it.
//!
//! Every cross-shard request is a [`Job`]: a boxed `Send` closure that the target shard calls
//! with its own [`Shard`] and whose future runs there; its result returns through a
//! `tokio::sync::oneshot` (which works in any runtime). The same jobs arrive from
//! [`crate::EngineHandle`]s through each shard's flume inbox.
//!
//! The mesh is glommio's full channel mesh: one bounded channel per ordered pair of shards,
//! connected from inside each executor. A task that both sends and receives on bounded channels
//! can deadlock two shards (each waiting for room in the other's full channel, DESIGN trap 7),
//! so each shard has exactly one receive loop per incoming channel, and that loop does nothing
//! but spawn each job as its own task; a job may send freely.

use std::future::Future;
use std::pin::Pin;

use glommio::channels::channel_mesh::{Receivers, Senders};
use glommio::TaskQueueHandle;

use crate::Shard;

/// A unit of work sent to a shard.
pub(crate) type Job = Box<dyn FnOnce(Shard) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// Wraps `f` into a job whose output goes to `reply`.
pub(crate) fn job<T, F, Fut>(f: F, reply: tokio::sync::oneshot::Sender<T>) -> Job
where
    T: Send + 'static,
    F: FnOnce(Shard) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    Box::new(move |shard| {
        Box::pin(async move {
            let out = f(shard).await;
            if reply.send(out).is_err() {
                // The caller stopped waiting (its future was dropped); nothing to answer.
                tracing::trace!("cross-shard reply dropped: caller went away");
            }
        })
    })
}

/// This shard's sending side of the mesh.
pub(crate) struct Mesh {
    senders: Senders<Job>,
}

impl Mesh {
    pub(crate) fn new(senders: Senders<Job>) -> Self {
        Self { senders }
    }

    /// Sends `job` to shard `target`; gives it back if the target is gone.
    pub(crate) async fn send(&self, target: usize, job: Job) -> Result<(), ()> {
        self.senders.send_to(target, job).await.map_err(|_| ())
    }
}

/// Spawns one receive loop per incoming mesh channel; each loop only spawns the jobs it
/// receives (trap 7).
pub(crate) fn spawn_receive_loops(
    shard: &Shard,
    mut receivers: Receivers<Job>,
    queue: TaskQueueHandle,
) {
    for (_peer, receiver) in receivers.streams() {
        let shard = shard.clone();
        let receive = async move {
            while let Some(job) = receiver.recv().await {
                spawn_job(&shard, job, queue);
            }
        };
        glommio::spawn_local_into(receive, queue)
            .expect("the request task queue lives as long as the executor")
            .detach();
    }
}

/// Spawns the loop that takes jobs from [`crate::EngineHandle`]s.
pub(crate) fn spawn_inbox_loop(shard: &Shard, inbox: flume::Receiver<Job>, queue: TaskQueueHandle) {
    let shard = shard.clone();
    let receive = async move {
        while let Ok(job) = inbox.recv_async().await {
            spawn_job(&shard, job, queue);
        }
    };
    glommio::spawn_local_into(receive, queue)
        .expect("the request task queue lives as long as the executor")
        .detach();
}

fn spawn_job(shard: &Shard, job: Job, queue: TaskQueueHandle) {
    glommio::spawn_local_into(job(shard.clone()), queue)
        .expect("the request task queue lives as long as the executor")
        .detach();
}
