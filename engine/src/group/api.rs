//! Routing to a group's coordinator shard, for callers on any shard.

use std::future::Future;
use std::rc::Rc;

use super::coordinator::{GroupCoordinator, GroupDescription};
use crate::{Result, Shard, ShardId};

/// The partition of the offsets topic that holds `group_id`'s commits:
/// `crc32(group_id) % partitions`. The offsets topic keeps the partition count it was created
/// with, so a group's commits stay in one partition whatever the shard count of later starts.
pub(crate) fn offsets_partition(group_id: &str, partitions: usize) -> u32 {
    let hash = crc32fast::hash(group_id.as_bytes());
    // u32 % (a count that fits in u32) fits in u32; an empty topic is treated as one partition.
    hash % u32::try_from(partitions.max(1)).unwrap_or(u32::MAX)
}

/// The shard that coordinates `group_id`: the owner of its offsets partition, given the offsets
/// topic's `placement` (shard 0 if the topic has none).
pub(crate) fn coordinator_in(placement: &[ShardId], group_id: &str) -> ShardId {
    let partition = offsets_partition(group_id, placement.len());
    placement
        .get(partition as usize)
        .copied()
        .unwrap_or(crate::shard::METADATA_OWNER)
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
    let target = shard.group_coordinator(group_id);
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
    let per_shard = shard
        .run_on_every_shard(|s: Shard| async move {
            let groups = s.local_groups();
            groups
                .list_groups()
                .iter()
                .map(|listing| groups.describe_group(&listing.group_id))
                .collect::<Vec<_>>()
        })
        .await;
    let mut all = Vec::new();
    for described in per_shard {
        all.extend(described?);
    }
    all.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    Ok(all)
}
