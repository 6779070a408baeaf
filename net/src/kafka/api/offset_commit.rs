//! OffsetCommit: a group stores its consumers' positions.
//!
//! Routed to the group's coordinator shard, which checks the committer and appends the offsets
//! to its partition of `__consumer_offsets` before answering. A commit with generation -1 and
//! no member id comes from outside group management (an `assign()` consumer, an offset-reset
//! tool) and, as in Kafka, is refused with UNKNOWN_MEMBER_ID while the group has members. Every partition is answered, in the
//! order asked.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use spindle_engine::group::{self, CommittedOffset, Committer, OffsetCommit};
use spindle_engine::TopicPartition;

use super::{readable, PartitionCodes};
use crate::kafka::context::RequestContext;

/// Answers one OffsetCommit request.
pub(crate) async fn handle(ctx: &RequestContext, req: OffsetCommitRequest) -> OffsetCommitResponse {
    if let Err(code) = ctx.authorize_group(req.group_id.0.as_str()) {
        return answer(ctx, req, PartitionCodes::all(code));
    }
    // Partitions that reach the coordinator, in request order; negative indexes never do.
    let mut offsets = Vec::new();
    for topic in req.topics.iter().filter(|t| readable(ctx, &t.name)) {
        for p in &topic.partitions {
            if let Ok(partition) = u32::try_from(p.partition_index) {
                let tp = TopicPartition::new(topic.name.0.as_str(), partition);
                let offset = CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(|m| m.as_str().to_owned()),
                    commit_timestamp_ms: -1,
                };
                offsets.push((tp, offset));
            }
        }
    }
    let commit = OffsetCommit {
        group_id: req.group_id.0.as_str().to_owned(),
        committer: Committer::from_kafka(
            req.generation_id_or_member_epoch,
            req.member_id.as_str(),
            req.group_instance_id.as_ref().map(|s| s.as_str()),
        ),
        offsets,
    };
    let group_id = commit.group_id.clone();
    let routed = group::on_coordinator(&ctx.shard, &group_id, move |shard, groups| async move {
        groups.commit_offsets(&shard, commit).await
    })
    .await;
    // One code for all when the commit as a whole was refused, else each partition's own.
    let (whole, outcome) = match routed {
        Ok(Ok(outcome)) => (0, outcome),
        Ok(Err(e)) => (e.kafka_code(), Vec::new()),
        Err(_) => (ResponseError::CoordinatorNotAvailable.code(), Vec::new()),
    };
    answer(ctx, req, PartitionCodes::new(whole, outcome))
}

/// Answers every partition asked, in order, with its code from `codes`.
fn answer(
    ctx: &RequestContext,
    req: OffsetCommitRequest,
    mut codes: PartitionCodes,
) -> OffsetCommitResponse {
    let asked = req.topics.into_iter().map(|t| {
        let indexes = t.partitions.iter().map(|p| p.partition_index).collect();
        (t.name, indexes)
    });
    let topics = codes.answer(
        ctx,
        asked,
        |index, code| {
            OffsetCommitResponsePartition::default()
                .with_partition_index(index)
                .with_error_code(code)
        },
        |name, partitions| {
            OffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        },
    );
    OffsetCommitResponse::default().with_topics(topics)
}
