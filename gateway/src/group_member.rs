//! A `Subscribe` stream as a member of a consumer group, in the same rebalance protocol as
//! Kafka consumers.
//!
//! The member joins with protocol type `consumer` and the `range` assignor, its metadata being
//! a Kafka `ConsumerProtocolSubscription` to the one topic, so Kafka consumers and gRPC
//! subscribers can share a group: whichever member the coordinator makes leader computes the
//! range assignment for everyone (Kafka's `RangeAssignor`: per topic, members sorted by id,
//! consecutive ranges, the first `partitions % members` one partition larger). Assignments are
//! `ConsumerProtocolAssignment`s, as Kafka consumers expect.
//!
//! After the join, the member heartbeats every [`HEARTBEAT_INTERVAL`] on the coordinator
//! shard. A heartbeat answered "rebalance in progress" (another member came or went) makes the
//! subscription stop its reads and rejoin; uncommitted records may then be read again by
//! whoever gets the partition, as with Kafka. When the stream ends for any reason the member
//! leaves the group at once (from `Drop`), so the others rebalance without waiting for its
//! session to expire.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use spindle_engine::group::{
    consumer_protocol, GroupError, HeartbeatRequest, JoinRequest, JoinResponse, JoinedMember,
    MemberIdentity, Protocol, SyncRequest, SyncResponse,
};
use spindle_engine::{EngineHandle, ShardId};
use tonic::Status;

use crate::status;

/// How often a member proves it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// A member silent for this long is removed by the coordinator.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a rebalance waits for this member to rejoin.
pub const REBALANCE_TIMEOUT: Duration = Duration::from_secs(10);
/// Joins retried after the coordinator asks (member id required, rebalance restarted).
const JOIN_ATTEMPTS_MAX: usize = 10;
const ASSIGNOR: &str = "range";

const _: () = assert!(HEARTBEAT_INTERVAL.as_millis() * 3 <= SESSION_TIMEOUT.as_millis());

/// This gateway's membership in one group, for one topic.
pub struct GroupMember {
    engine: EngineHandle,
    coordinator: ShardId,
    group_id: String,
    topic: String,
    member_id: String,
    generation: i32,
}

impl GroupMember {
    /// A member of `group_id` subscribed to `topic`, not joined yet.
    pub fn new(engine: EngineHandle, group_id: &str, topic: &str) -> Self {
        let coordinator = engine.group_coordinator(group_id);
        Self {
            engine,
            coordinator,
            group_id: group_id.to_string(),
            topic: topic.to_string(),
            member_id: String::new(),
            generation: -1,
        }
    }

    /// The generation of the last completed join.
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// Joins (or rejoins) the group and returns the partitions of the topic assigned to this
    /// member, in order (possibly none: more members than partitions).
    ///
    /// # Errors
    /// The coordinator's refusal, or the engine's failure.
    pub async fn join(&mut self) -> Result<Vec<u32>, Status> {
        for _ in 0..JOIN_ATTEMPTS_MAX {
            let request = JoinRequest {
                group_id: self.group_id.clone(),
                member_id: self.member_id.clone(),
                group_instance_id: None,
                require_known_member_id: false,
                client_id: "spindle-grpc".to_string(),
                client_host: String::new(),
                session_timeout: SESSION_TIMEOUT,
                rebalance_timeout: REBALANCE_TIMEOUT,
                protocol_type: consumer_protocol::PROTOCOL_TYPE.to_string(),
                protocols: vec![Protocol {
                    name: ASSIGNOR.to_string(),
                    metadata: consumer_protocol::subscription(&self.topic),
                }],
            };
            let joined = self
                .engine
                .run_on(self.coordinator, move |shard| async move {
                    shard.local_groups().join(&shard, request).await
                })
                .await
                .map_err(status::from_engine)?;
            let joined = match joined {
                Ok(joined) => joined,
                Err(GroupError::MemberIdRequired(id)) => {
                    self.member_id = id;
                    continue;
                }
                Err(GroupError::UnknownMemberId) => {
                    self.member_id.clear();
                    continue;
                }
                Err(err) => return Err(status::from_group(err)),
            };
            self.member_id = joined.member_id.clone();
            self.generation = joined.generation;
            let synced = self.sync(&joined).await?;
            match synced {
                Ok(synced) => return Ok(self.assigned_partitions(&synced.assignment)),
                Err(GroupError::RebalanceInProgress | GroupError::IllegalGeneration) => continue,
                Err(GroupError::UnknownMemberId) => {
                    self.member_id.clear();
                    continue;
                }
                Err(err) => return Err(status::from_group(err)),
            }
        }
        Err(Status::aborted(format!(
            "group {:?} kept rebalancing; gave up after {JOIN_ATTEMPTS_MAX} joins",
            self.group_id
        )))
    }

    /// Sends this member's SyncGroup, with everyone's assignment when it leads.
    async fn sync(
        &self,
        joined: &JoinResponse,
    ) -> Result<Result<SyncResponse, GroupError>, Status> {
        let assignments = if joined.leader == joined.member_id {
            assign(&self.engine, &joined.members).await?
        } else {
            Vec::new()
        };
        let request = SyncRequest {
            group_id: self.group_id.clone(),
            generation: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: None,
            protocol_type: Some(consumer_protocol::PROTOCOL_TYPE.to_string()),
            protocol_name: Some(joined.protocol_name.clone()),
            assignments,
        };
        self.engine
            .run_on(self.coordinator, move |shard| async move {
                shard.local_groups().sync(request).await
            })
            .await
            .map_err(status::from_engine)
    }

    /// This member's partitions of the topic in the assignment the leader sent; none when it
    /// does not decode (the leader may be any Kafka client), until the next rebalance.
    fn assigned_partitions(&self, assignment: &Bytes) -> Vec<u32> {
        consumer_protocol::assigned_partitions(assignment, &self.topic).unwrap_or_else(|err| {
            tracing::warn!(
                group = %self.group_id,
                %err,
                "the assignment does not decode; reading nothing until the next rebalance"
            );
            Vec::new()
        })
    }

    /// Heartbeats until the group needs this member to rejoin (`Ok`).
    ///
    /// # Errors
    /// The coordinator's refusal other than a rebalance, or the engine's failure.
    pub async fn heartbeat_until_rebalance(&self) -> Result<(), Status> {
        loop {
            tokio::time::sleep(HEARTBEAT_INTERVAL).await;
            let request = HeartbeatRequest {
                group_id: self.group_id.clone(),
                generation: self.generation,
                member_id: self.member_id.clone(),
                group_instance_id: None,
            };
            let beat = self
                .engine
                .run_on(self.coordinator, move |shard| async move {
                    shard.local_groups().heartbeat(&request)
                })
                .await
                .map_err(status::from_engine)?;
            match beat {
                Ok(()) => {}
                Err(
                    GroupError::RebalanceInProgress
                    | GroupError::IllegalGeneration
                    | GroupError::UnknownMemberId,
                ) => return Ok(()),
                Err(err) => return Err(status::from_group(err)),
            }
        }
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        if self.member_id.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // The runtime is going away; the session will expire.
        };
        let engine = self.engine.clone();
        let coordinator = self.coordinator;
        let group_id = std::mem::take(&mut self.group_id);
        let member = MemberIdentity {
            member_id: std::mem::take(&mut self.member_id),
            group_instance_id: None,
        };
        runtime.spawn(async move {
            let left = engine
                .run_on(coordinator, move |shard| async move {
                    shard.local_groups().leave(&group_id, &[member]).map(|_| ())
                })
                .await;
            if !matches!(left, Ok(Ok(()))) {
                tracing::debug!("leaving the group failed; the session will expire instead");
            }
        });
    }
}

/// The leader's work: Kafka's range assignment of every member's subscribed topics.
async fn assign(
    engine: &EngineHandle,
    members: &[JoinedMember],
) -> Result<Vec<(String, Bytes)>, Status> {
    let partition_counts: BTreeMap<String, u32> = engine
        .list_topics()
        .await
        .map_err(status::from_engine)?
        .into_iter()
        .map(|t| (t.name, t.partitions))
        .collect();
    let subscriptions: Vec<(String, Vec<String>)> = members
        .iter()
        .map(|m| {
            let topics = consumer_protocol::subscribed_topics(&m.metadata).unwrap_or_else(|err| {
                tracing::warn!(
                    member = %m.member_id,
                    %err,
                    "subscription metadata does not decode; the member is assigned nothing"
                );
                Vec::new()
            });
            (m.member_id.clone(), topics)
        })
        .collect();
    Ok(range_assign(&subscriptions, &partition_counts)
        .into_iter()
        .map(|(member, topics)| (member, consumer_protocol::assignment(&topics)))
        .collect())
}

/// Kafka's RangeAssignor over `(member id, topics)`; every member gets an entry.
pub fn range_assign(
    subscriptions: &[(String, Vec<String>)],
    partition_counts: &BTreeMap<String, u32>,
) -> BTreeMap<String, BTreeMap<String, Vec<u32>>> {
    let mut assignment: BTreeMap<String, BTreeMap<String, Vec<u32>>> = subscriptions
        .iter()
        .map(|(member, _)| (member.clone(), BTreeMap::new()))
        .collect();
    for (topic, &count) in partition_counts {
        let mut subscribers: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(member, _)| member)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        subscribers.sort();
        let members = subscribers.len() as u32;
        let (per_member, extra) = (count / members, count % members);
        let mut next = 0;
        for (i, member) in subscribers.into_iter().enumerate() {
            let take = per_member + u32::from((i as u32) < extra);
            if take > 0 {
                let partitions = (next..next + take).collect();
                if let Some(topics) = assignment.get_mut(member) {
                    topics.insert(topic.clone(), partitions);
                }
            }
            next += take;
        }
    }
    assignment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignment_matches_kafkas() {
        let subs = vec![
            ("b".to_string(), vec!["t".to_string(), "u".to_string()]),
            ("a".to_string(), vec!["t".to_string()]),
            ("c".to_string(), vec!["t".to_string()]),
        ];
        let counts = BTreeMap::from([
            ("t".to_string(), 7),
            ("u".to_string(), 2),
            ("v".to_string(), 3),
        ]);
        let assignment = range_assign(&subs, &counts);
        assert_eq!(assignment["a"]["t"], [0, 1, 2]);
        assert_eq!(assignment["b"]["t"], [3, 4]);
        assert_eq!(assignment["c"]["t"], [5, 6]);
        assert_eq!(assignment["b"]["u"], [0, 1]);
        assert!(!assignment["a"].contains_key("u"));
        // More members than partitions: the last ones get nothing, but are still answered.
        let counts = BTreeMap::from([("t".to_string(), 1)]);
        let assignment = range_assign(&subs, &counts);
        assert_eq!(assignment["a"]["t"], [0]);
        assert!(assignment["b"].is_empty() && assignment["c"].is_empty());
    }
}
