//! Routing to a group's coordinator shard, for callers on any shard.

use std::future::Future;
use std::rc::Rc;

use super::coordinator::{GroupCoordinator, GroupDescription};
use crate::{Result, Shard, ShardId};

/// The shard that coordinates `group_id`: `crc32(group_id) % shard_count`. Stable across
/// restarts as long as the shard count is, since it also decides which partition of the
/// offsets topic holds the group's commits.
///
/// # Panics
/// If `shard_count` is 0 (an engine always has a shard).
pub fn coordinator_shard(group_id: &str, shard_count: usize) -> ShardId {
    assert!(shard_count > 0, "an engine has at least one shard");
    let hash = crc32fast::hash(group_id.as_bytes());
    // u32 % (a count that fits in u32) fits in u32.
    let count = u32::try_from(shard_count).unwrap_or(u32::MAX);
    ShardId(hash % count)
}

/// Runs `f` on the coordinator shard of `group_id` with that shard's context and group
/// coordinator, and returns its output.
///
/// # Errors
/// [`crate::EngineError::ShuttingDown`] when the coordinator shard no longer takes work.
pub async fn on_coordinator<T, F, Fut>(shard: &Shard, group_id: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(Shard, Rc<GroupCoordinator>) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    let target = coordinator_shard(group_id, shard.shard_count());
    shard
        .run_on(target, move |s: Shard| {
            let groups = s.local_groups();
            f(s, groups)
        })
        .await
}

/// Every group of every shard, described with members, assignments and committed offsets,
/// in group-id order.
///
/// # Errors
/// [`crate::EngineError::ShuttingDown`] when a shard no longer takes work.
pub async fn list_all_groups(shard: &Shard) -> Result<Vec<GroupDescription>> {
    let count = u32::try_from(shard.shard_count()).unwrap_or(u32::MAX);
    let per_shard = (0..count).map(|i| {
        shard.run_on(ShardId(i), |s: Shard| async move {
            let groups = s.local_groups();
            groups
                .list_groups()
                .iter()
                .map(|listing| groups.describe_group(&listing.group_id))
                .collect::<Vec<_>>()
        })
    });
    let mut all = Vec::new();
    for described in futures::future::join_all(per_shard).await {
        all.extend(described?);
    }
    all.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    Ok(all)
}
