//! DescribeTopicPartitions (KIP-966): topics and their partitions, a page at a time, as Kafka
//! 3.7+ admin clients describe topics. Topics go in name order; an answer holds at most the
//! partition count the request asks for (and at most [`DESCRIBE_TOPIC_PARTITIONS_MAX`]), and
//! when it stops inside the list, `next_cursor` names the topic and partition the next page
//! starts from. With no topics named it pages through every topic the principal may see.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::kafka::acl::Authorized;
use crate::kafka::context::RequestContext;
use crate::kafka::wire::{count_to_wire, LEADER_EPOCH};
use crate::limits::DESCRIBE_TOPIC_PARTITIONS_MAX;

/// Answers one DescribeTopicPartitions request.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let named = !req.topics.is_empty();
    let mut names = topic_names(ctx, &req);
    let cursor = req.cursor.map(|c| {
        (
            c.topic_name.0.to_string(),
            u32::try_from(c.partition_index).unwrap_or(0),
        )
    });
    if let Some((from, _)) = &cursor {
        // Kafka's rule: a cursor must name one of the topics asked for.
        if named && !names.contains(from) {
            let refused = names
                .iter()
                .map(|name| error_entry(name, ResponseError::InvalidRequest.code()))
                .collect();
            return DescribeTopicPartitionsResponse::default().with_topics(refused);
        }
        names.retain(|name| name >= from);
    }
    let limit = usize::try_from(req.response_partition_limit)
        .unwrap_or(0)
        .clamp(1, DESCRIBE_TOPIC_PARTITIONS_MAX);
    let mut room = limit;
    let mut topics = Vec::new();
    let mut next_cursor = None;
    let operations = Authorized::of(true, &ctx.principal);
    for name in names {
        let first = match &cursor {
            Some((from, partition)) if *from == name => *partition,
            _ => 0,
        };
        if room == 0 {
            next_cursor = Some(cursor_at(&name, first));
            break;
        }
        if !ctx.sees(&name) {
            topics.push(error_entry(
                &name,
                ResponseError::TopicAuthorizationFailed.code(),
            ));
            continue;
        }
        let Some(info) = ctx.shard.topic(&name) else {
            topics.push(error_entry(
                &name,
                ResponseError::UnknownTopicOrPartition.code(),
            ));
            continue;
        };
        let first = first.min(info.partitions);
        let end = info.partitions.min(first.saturating_add(count_u32(room)));
        room -= (end - first) as usize;
        let partitions = (first..end)
            .map(|p| partition_entry(BrokerId(ctx.node_id), p))
            .collect();
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                .with_topic_id(Uuid::from_u128(info.topic_id))
                .with_is_internal(info.internal)
                .with_partitions(partitions)
                .with_topic_authorized_operations(operations.on_topic(&name)),
        );
        if end < info.partitions {
            next_cursor = Some(cursor_at(&name, end));
            break;
        }
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}

/// The topics asked for, or, when none are named, every topic the principal may see: sorted,
/// each once.
fn topic_names(ctx: &RequestContext, req: &DescribeTopicPartitionsRequest) -> Vec<String> {
    let mut names: Vec<String> = if req.topics.is_empty() {
        let visible = ctx.shard.topics().into_iter().map(|t| t.name);
        visible.filter(|name| ctx.sees(name)).collect()
    } else {
        req.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    names.sort_unstable();
    names.dedup();
    names
}

/// Partition `p`, led by this node, its only replica.
fn partition_entry(node: BrokerId, p: u32) -> DescribeTopicPartitionsResponsePartition {
    DescribeTopicPartitionsResponsePartition::default()
        .with_partition_index(count_to_wire(p))
        .with_leader_id(node)
        .with_leader_epoch(LEADER_EPOCH)
        .with_replica_nodes(vec![node])
        .with_isr_nodes(vec![node])
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn cursor_at(topic: &str, partition: u32) -> Cursor {
    Cursor::default()
        .with_topic_name(TopicName(StrBytes::from_string(topic.to_owned())))
        .with_partition_index(count_to_wire(partition))
}

fn error_entry(name: &str, code: i16) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(code)
        .with_name(Some(TopicName(StrBytes::from_string(name.to_owned()))))
}
