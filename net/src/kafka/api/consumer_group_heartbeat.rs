//! ConsumerGroupHeartbeat (KIP-848, `group.protocol=consumer`): a member joins, stays and
//! leaves its group with this one request, and the coordinator answers with its share of the
//! partitions (`spindle_engine::group::consumer_group`). Topics travel by id on the wire and by
//! name in the engine; ids this node does not know (a topic deleted meanwhile) are left out.
//! A v1 member may subscribe to a regular expression (`subscribed_topic_regex`), which the
//! coordinator resolves against the topics the member's principal may see.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::group::consumer_group::ConsumerHeartbeat;
use spindle_engine::group::{self, GroupError};
use uuid::Uuid;

use crate::kafka::context::{RequestContext, GROUP_REFUSED};
use crate::kafka::wire::count_to_wire;

/// Answers one ConsumerGroupHeartbeat request.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    if let Err(code) = ctx.authorize_group(req.group_id.0.as_str()) {
        return ConsumerGroupHeartbeatResponse::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_static_str(GROUP_REFUSED)));
    }
    let owned = req.topic_partitions.map(|topics| {
        topics
            .iter()
            .filter_map(|t| {
                let name = ctx.shard.topic_name(t.topic_id.as_u128())?;
                let partitions = t.partitions.iter().filter_map(|&p| u32::try_from(p).ok());
                Some((name, partitions.collect()))
            })
            .collect()
    });
    let heartbeat = ConsumerHeartbeat {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.map(|i| i.to_string()),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
        rebalance_timeout: u64::try_from(req.rebalance_timeout_ms)
            .ok()
            .map(Duration::from_millis),
        subscribed_topics: req
            .subscribed_topic_names
            .map(|names| names.iter().map(|n| n.0.to_string()).collect()),
        // librdkafka sends an empty pattern beside its topic names: no pattern.
        subscribed_pattern: req.subscribed_topic_regex.map(|r| r.to_string()),
        principal: ctx.principal.clone(),
        server_assignor: req.server_assignor.map(|a| a.to_string()),
        owned,
    };
    let group_id = heartbeat.group_id.clone();
    let routed = group::on_coordinator(&ctx.shard, &group_id, move |shard, groups| async move {
        groups.consumer_heartbeat(&shard, heartbeat)
    })
    .await;
    let answer = match routed {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return refused(&e),
        Err(_) => return refused(&GroupError::CoordinatorNotAvailable),
    };
    let assignment = answer.assignment.map(|assigned| {
        let topics = assigned.into_iter().filter_map(|(topic, partitions)| {
            let info = ctx.shard.topic(&topic)?;
            Some(
                TopicPartitions::default()
                    .with_topic_id(Uuid::from_u128(info.topic_id))
                    .with_partitions(partitions.into_iter().map(count_to_wire).collect()),
            )
        });
        Assignment::default().with_topic_partitions(topics.collect())
    });
    let interval_ms = i32::try_from(answer.heartbeat_interval.as_millis()).unwrap_or(i32::MAX);
    ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(StrBytes::from_string(answer.member_id)))
        .with_member_epoch(answer.member_epoch)
        .with_heartbeat_interval_ms(interval_ms)
        .with_assignment(assignment)
}

fn refused(e: &GroupError) -> ConsumerGroupHeartbeatResponse {
    let code = e.kafka_code();
    let message = (code != ResponseError::CoordinatorNotAvailable.code())
        .then(|| StrBytes::from_string(e.to_string()));
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code)
        .with_error_message(message)
}
