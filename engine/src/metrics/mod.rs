//! Metrics: per-shard counters, gathered by message at scrape time and rendered in the
//! Prometheus text format.
//!
//! Design: each shard keeps a [`ShardMetrics`] in its own state (plain `Cell`s: the hot path
//! pays an add, no atomic, no lock, no shared cache line). Nothing reads those cells from
//! another thread. A scrape calls [`gather`], which sends one job per shard with
//! [`EngineHandle::run_on`]; each job builds a `Send` [`ShardSnapshot`] on its shard
//! ([`snapshot`]), copying the counters and computing the gauges that cost nothing on the hot
//! path because they are read from the logs and the group coordinator only then (log start,
//! high watermark, size, committed offsets). [`Scrape::render`] joins what needs more than one
//! shard (a group's lag needs its coordinator's committed offset and the partition owner's high
//! watermark) and writes the exposition.
//!
//! Files: `shard_metrics.rs` the counters, `histogram.rs` the fixed-bucket latency histogram,
//! `scrape.rs` the snapshots and the families rendered, `exposition.rs` the text format.

mod exposition;
mod histogram;
mod scrape;
mod shard_metrics;

pub use exposition::{Exposition, Kind, CONTENT_TYPE};
pub use histogram::{HistogramSnapshot, LatencyHistogram, LATENCY_BOUNDS_US};
pub use scrape::{snapshot, GroupOffsetSnapshot, PartitionSnapshot, Scrape, ShardSnapshot};
pub use shard_metrics::{Counter, LogCounters, RequestSnapshot, ShardMetrics};

use crate::{EngineHandle, Result, ShardId};

/// Takes a snapshot on every shard, one message each, all in flight at once.
///
/// # Errors
/// [`crate::EngineError::ShuttingDown`] when a shard no longer takes work.
pub async fn gather(handle: &EngineHandle) -> Result<Scrape> {
    let jobs = (0..handle.shard_count()).map(|i| {
        let target = ShardId(u32::try_from(i).expect("the shard count fits in u32"));
        handle.run_on(target, |shard| async move { snapshot(&shard) })
    });
    let mut shards = Vec::with_capacity(handle.shard_count());
    for snapshot in futures::future::join_all(jobs).await {
        shards.push(snapshot?);
    }
    Ok(Scrape { shards })
}
