//! Consumer groups' committed offsets, stored by the engine's group coordinator.
//!
//! A gRPC commit is the gateway's ([`Committer::Gateway`]): the Commit call carries no member
//! id, so the group coordinator accepts it whatever the group's state (a Kafka commit from
//! outside the group is refused while the group has members). It is written to
//! `__consumer_offsets` and answered once stored, so it survives a restart and a Kafka consumer
//! of the same group sees it (and the reverse).
//! Each call runs on the group's coordinator shard through [`EngineHandle::run_on`].

use spindle_engine::group::{CommittedOffset, Committer, OffsetCommit};
use spindle_engine::{EngineHandle, TopicPartition};
use tonic::Status;

use crate::status::{self, invalid_argument};

/// Commits `offsets` (partition, next offset to read) of `topic` for `group`.
///
/// # Errors
/// INVALID_ARGUMENT for a bad group id or offset, NOT_FOUND for an unknown partition,
/// UNAVAILABLE when the offsets log refused the write.
pub async fn commit(
    engine: &EngineHandle,
    group_id: &str,
    topic: &str,
    offsets: Vec<(u32, i64)>,
) -> Result<(), Status> {
    if let Some((partition, offset)) = offsets.iter().find(|(_, offset)| *offset < 0) {
        return Err(invalid_argument(
            "offsets",
            &format!("partition {partition}: offset {offset} is negative"),
        ));
    }
    let commit = OffsetCommit {
        group_id: group_id.to_string(),
        committer: Committer::Gateway,
        offsets: offsets
            .into_iter()
            .map(|(partition, offset)| {
                let committed = CommittedOffset {
                    offset,
                    leader_epoch: -1,
                    metadata: None,
                    commit_timestamp_ms: 0,
                };
                (TopicPartition::new(topic, partition), committed)
            })
            .collect(),
    };
    let target = engine.group_coordinator(group_id);
    let outcome = engine
        .run_on(target, move |shard| async move {
            shard.local_groups().commit_offsets(&shard, commit).await
        })
        .await
        .map_err(status::from_engine)?
        .map_err(status::from_group)?;
    for (tp, result) in outcome {
        result.map_err(|err| {
            let status = status::from_group(err);
            Status::new(status.code(), format!("{tp}: {}", status.message()))
        })?;
    }
    Ok(())
}

/// The committed offsets of `group` for `topic`, as (partition, offset), partitions without a
/// commit left out.
///
/// # Errors
/// The engine's failure (shutting down).
pub async fn fetch(
    engine: &EngineHandle,
    group_id: &str,
    topic: &str,
) -> Result<Vec<(u32, i64)>, Status> {
    let target = engine.group_coordinator(group_id);
    let group_id = group_id.to_string();
    let topic = topic.to_string();
    let offsets = engine
        .run_on(target, move |shard| async move {
            shard
                .local_groups()
                .fetch_offsets(&group_id, None)
                .into_iter()
                .filter(|(tp, _)| *tp.topic == *topic)
                .filter_map(|(tp, committed)| Some((tp.partition.0, committed?.offset)))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(status::from_engine)?;
    Ok(offsets)
}
