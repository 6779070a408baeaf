//! ConsumerGroupDescribe (KIP-848): a consumer-protocol group's epochs, assignor and members,
//! each with its subscription, the partitions it owns and those it is moving to (what
//! `kafka-consumer-groups.sh --describe --members` and admin clients' `describe_consumer_groups`
//! show for such groups). Any other group (classic, offsets only, unknown) is answered
//! GROUP_ID_NOT_FOUND with a message, as Kafka does, and admin clients then describe it with
//! DescribeGroups.

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, GroupId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::group::consumer_group::{self, ConsumerGroupDescription};
use spindle_engine::group::{self, GroupError};
use uuid::Uuid;

use crate::kafka::acl::Authorized;
use crate::kafka::context::{RequestContext, GROUP_REFUSED};
use crate::kafka::wire::count_to_wire;

/// ConsumerGroupDescribe v1's member type of a member that joined with the consumer protocol.
const CONSUMER_MEMBER: i8 = 1;

/// Answers one ConsumerGroupDescribe request.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let operations = Authorized::of(req.include_authorized_operations, &ctx.principal);
    let mut described = Vec::with_capacity(req.group_ids.len());
    for group_id in req.group_ids {
        described.push(describe(ctx, group_id, &operations).await);
    }
    ConsumerGroupDescribeResponse::default().with_groups(described)
}

/// One group, with its bitfield from the principal's `operations`.
async fn describe(
    ctx: &RequestContext,
    group_id: GroupId,
    operations: &Authorized,
) -> DescribedGroup {
    if let Err(code) = ctx.authorize_group(group_id.0.as_str()) {
        return DescribedGroup::default()
            .with_group_id(group_id)
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_static_str(GROUP_REFUSED)));
    }
    let id = group_id.0.to_string();
    let routed = group::on_coordinator(
        &ctx.shard,
        group_id.0.as_str(),
        move |_, groups| async move { groups.describe_consumer_group(&id) },
    )
    .await;
    let outcome = routed.unwrap_or(Err(GroupError::CoordinatorNotAvailable));
    match outcome {
        Ok(d) => {
            let operations = operations.on_group(group_id.0.as_str());
            described(ctx, group_id, d).with_authorized_operations(operations)
        }
        Err(e) => DescribedGroup::default()
            .with_group_id(group_id)
            .with_error_code(e.kafka_code())
            .with_error_message(Some(StrBytes::from_string(e.to_string()))),
    }
}

fn described(
    ctx: &RequestContext,
    group_id: GroupId,
    d: ConsumerGroupDescription,
) -> DescribedGroup {
    let members = d.members.into_iter().map(|m| {
        Member::default()
            .with_member_id(StrBytes::from_string(m.member_id))
            .with_instance_id(m.instance_id.map(StrBytes::from_string))
            .with_member_epoch(m.epoch)
            .with_client_id(StrBytes::from_string(m.client_id))
            .with_client_host(StrBytes::from_string(m.client_host))
            .with_subscribed_topic_names(
                m.subscribed_topics
                    .into_iter()
                    .map(|t| TopicName(StrBytes::from_string(t)))
                    .collect(),
            )
            .with_subscribed_topic_regex(m.subscribed_pattern.map(StrBytes::from_string))
            .with_assignment(assignment(ctx, m.assignment))
            .with_target_assignment(assignment(ctx, m.target))
            .with_member_type(CONSUMER_MEMBER)
    });
    DescribedGroup::default()
        .with_group_id(group_id)
        .with_group_state(StrBytes::from_static_str(d.state.as_str()))
        .with_group_epoch(d.epoch)
        .with_assignment_epoch(d.assignment_epoch)
        .with_assignor_name(StrBytes::from_string(d.assignor))
        .with_members(members.collect())
}

/// Partitions by topic, with each topic's id; a topic deleted meanwhile is left out.
fn assignment(ctx: &RequestContext, partitions: consumer_group::Assignment) -> Assignment {
    let topics = partitions.into_iter().filter_map(|(topic, partitions)| {
        let info = ctx.shard.topic(&topic)?;
        Some(
            TopicPartitions::default()
                .with_topic_id(Uuid::from_u128(info.topic_id))
                .with_topic_name(TopicName(StrBytes::from_string(topic)))
                .with_partitions(partitions.into_iter().map(count_to_wire).collect()),
        )
    });
    Assignment::default().with_topic_partitions(topics.collect())
}
