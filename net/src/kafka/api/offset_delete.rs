//! OffsetDelete: removes a group's committed offsets of some partitions (what
//! `kafka-consumer-groups.sh --delete-offsets` and kafka-python's `delete_group_offsets` send).
//!
//! Routed to the group's coordinator shard, which writes a tombstone to `__consumer_offsets`
//! for each offset it removes before answering. As in Kafka, a group with members keeps the
//! offsets of the topics its members subscribe to (GROUP_SUBSCRIBED_TO_TOPIC for those
//! partitions) and gives up the others; a group with members that is not a consumer group is
//! refused NON_EMPTY_GROUP; an unknown group GROUP_ID_NOT_FOUND.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use spindle_engine::group;
use spindle_engine::TopicPartition;

use super::{readable, PartitionCodes};
use crate::kafka::context::RequestContext;

/// Answers one OffsetDelete request.
pub(crate) async fn handle(ctx: &RequestContext, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    // Partitions that reach the coordinator, in request order; negative indexes never do.
    let partitions: Vec<TopicPartition> = req
        .topics
        .iter()
        .filter(|t| readable(ctx, &t.name))
        .flat_map(|topic| {
            topic.partitions.iter().filter_map(|p| {
                let partition = u32::try_from(p.partition_index).ok()?;
                Some(TopicPartition::new(topic.name.0.as_str(), partition))
            })
        })
        .collect();
    let group_id = req.group_id.0.as_str().to_owned();
    if let Err(code) = ctx.authorize_group(&group_id) {
        return OffsetDeleteResponse::default().with_error_code(code);
    }
    let id = group_id.clone();
    let routed = group::on_coordinator(&ctx.shard, &group_id, move |shard, groups| async move {
        groups.delete_offsets(&shard, &id, partitions).await
    })
    .await;
    let outcome = match routed {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => return OffsetDeleteResponse::default().with_error_code(e.kafka_code()),
        Err(_) => {
            return OffsetDeleteResponse::default()
                .with_error_code(ResponseError::CoordinatorNotAvailable.code())
        }
    };
    let mut codes = PartitionCodes::new(0, outcome);
    let asked = req.topics.into_iter().map(|t| {
        let indexes = t.partitions.iter().map(|p| p.partition_index).collect();
        (t.name, indexes)
    });
    let topics = codes.answer(
        ctx,
        asked,
        |index, code| {
            OffsetDeleteResponsePartition::default()
                .with_partition_index(index)
                .with_error_code(code)
        },
        |name, partitions| {
            OffsetDeleteResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        },
    );
    OffsetDeleteResponse::default().with_topics(topics)
}
