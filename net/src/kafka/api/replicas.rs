//! The replica administration a one-node cluster answers: ElectLeaders
//! (`kafka-leader-election.sh`), ListPartitionReassignments and AlterPartitionReassignments
//! (`kafka-reassign-partitions.sh`). This node is every partition's only replica and its
//! leader, so there is never a leader to elect or a reassignment in progress:
//! - ElectLeaders answers ELECTION_NOT_NEEDED for each partition named, and nothing when asked
//!   for all of them (as Kafka leaves out the partitions that need no election);
//! - ListPartitionReassignments lists none;
//! - AlterPartitionReassignments accepts a partition's reassignment to this node alone (already
//!   so, nothing moves), refuses any other with INVALID_REPLICA_ASSIGNMENT, and answers the
//!   cancellation of one NO_REASSIGNMENT_IN_PROGRESS.
//!
//! All three need `admin` on every topic (Kafka's ALTER and DESCRIBE on the cluster). A
//! partition that does not exist is UNKNOWN_TOPIC_OR_PARTITION.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ElectLeadersRequest, ElectLeadersResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::context::RequestContext;

/// Whether `partition` of `topic` exists (and the principal may see the topic).
fn exists(ctx: &RequestContext, topic: &TopicName, partition: i32) -> bool {
    let name = topic.0.as_str();
    ctx.sees(name)
        && ctx
            .shard
            .topic(name)
            .is_some_and(|t| u32::try_from(partition).is_ok_and(|p| p < t.partitions))
}

/// An error code with its message, or success.
fn outcome(code: i16, message: Option<String>) -> (i16, Option<StrBytes>) {
    (code, message.map(StrBytes::from_string))
}

/// Answers one ElectLeaders request. A refused principal gets CLUSTER_AUTHORIZATION_FAILED at
/// the top (v1+) and for every partition it named (v0 has no top-level error).
pub(crate) async fn elect(ctx: &RequestContext, req: ElectLeadersRequest) -> ElectLeadersResponse {
    let refused = ctx.authorize_cluster("elect leaders").err();
    // All partitions (`None`): none needs an election, and those are left out.
    let results = req.topic_partitions.into_iter().flatten().map(|t| {
        let partitions = t.partitions.iter().map(|&p| {
            let (code, message) = match &refused {
                Some((code, message)) => outcome(*code, Some(message.clone())),
                None if exists(ctx, &t.topic, p) => outcome(
                    ResponseError::ElectionNotNeeded.code(),
                    Some(format!(
                        "node {} is the partition's only replica and its leader",
                        ctx.node_id
                    )),
                ),
                None => outcome(ResponseError::UnknownTopicOrPartition.code(), None),
            };
            PartitionResult::default()
                .with_partition_id(p)
                .with_error_code(code)
                .with_error_message(message)
        });
        let partitions = partitions.collect();
        ReplicaElectionResult::default()
            .with_topic(t.topic)
            .with_partition_result(partitions)
    });
    let results = results.collect();
    ElectLeadersResponse::default()
        .with_error_code(refused.map_or(0, |(code, _)| code))
        .with_replica_election_results(results)
}

/// Answers one ListPartitionReassignments request: none is in progress.
pub(crate) async fn list_reassignments(
    ctx: &RequestContext,
    _req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    match ctx.authorize_cluster("list partition reassignments") {
        Ok(()) => ListPartitionReassignmentsResponse::default(),
        Err((code, message)) => ListPartitionReassignmentsResponse::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message))),
    }
}

/// Answers one AlterPartitionReassignments request (see the module docs).
pub(crate) async fn alter_reassignments(
    ctx: &RequestContext,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    if let Err((code, message)) = ctx.authorize_cluster("reassign partitions") {
        return AlterPartitionReassignmentsResponse::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)));
    }
    let this_node = [BrokerId(ctx.node_id)];
    let topics = req.topics.into_iter().map(|t| {
        let partitions = t.partitions.iter().map(|p| {
            let (code, message) = if !exists(ctx, &t.name, p.partition_index) {
                outcome(ResponseError::UnknownTopicOrPartition.code(), None)
            } else {
                match p.replicas.as_deref() {
                    None => outcome(
                        ResponseError::NoReassignmentInProgress.code(),
                        Some("no reassignment is in progress to cancel".to_owned()),
                    ),
                    Some(replicas) if replicas == this_node => outcome(0, None),
                    Some(replicas) => outcome(
                        ResponseError::InvalidReplicaAssignment.code(),
                        Some(format!(
                            "replicas {:?}: node {} is the only broker, and every partition's \
                             only replica",
                            replicas.iter().map(|b| b.0).collect::<Vec<_>>(),
                            ctx.node_id
                        )),
                    ),
                }
            };
            ReassignablePartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_error_code(code)
                .with_error_message(message)
        });
        let partitions = partitions.collect();
        ReassignableTopicResponse::default()
            .with_name(t.name)
            .with_partitions(partitions)
    });
    AlterPartitionReassignmentsResponse::default().with_responses(topics.collect())
}
