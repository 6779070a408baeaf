//! Members of the classic protocol in a group of the consumer protocol: Kafka's online migration
//! (KIP-848), which moves a group from one protocol to the other a member at a time, so that
//! consumers can be upgraded to `group.protocol=consumer` (or back) in a rolling restart.
//!
//! - **Upgrade.** The first consumer-protocol member to join a classic group of Kafka consumers
//!   that has members converts it ([`ConsumerGroup::from_classic`]): each classic member keeps
//!   its partitions (decoded from the assignment its leader gave it) and its subscription, at
//!   an epoch equal to the classic generation, which becomes the group epoch. The joining
//!   member then moves the epoch on and the coordinator computes the assignment, as for any
//!   consumer-protocol group.
//! - **Classic members** go on with JoinGroup, SyncGroup and Heartbeat, which the group answers
//!   from its own assignment: a JoinGroup is answered at once, with the member's epoch as the
//!   generation and no leader (so every classic member is a follower that sends an empty
//!   SyncGroup); a SyncGroup hands the member its partitions. A member with partitions to give
//!   up is handed its partitions without them and told REBALANCE_IN_PROGRESS at its next
//!   heartbeat; it rejoins, and what its subscription says it still owns (cooperative
//!   consumers; eager ones own nothing at a rejoin) decides whether it gave them up. A member
//!   behind the group epoch, or with partitions of its target freed since, is told to rejoin
//!   too. It must rejoin within its rebalance timeout, and heartbeat within its session.
//! - **Downgrade.** When the last consumer-protocol member leaves (or expires) and classic
//!   members remain, the group becomes a classic group again
//!   ([`ConsumerGroup::to_classic`]), Stable at the members' generation with each member's
//!   target assignment, and rebalances at once, as Kafka does.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::super::consumer_protocol::{
    assigned_topics, assignment, owned_partitions, subscribed_topics,
};
use super::super::limits::{MEMBERS_PER_GROUP_MAX, SESSION_TIMEOUT_MAX, SESSION_TIMEOUT_MIN};
use super::super::member::{
    HeartbeatRequest, JoinRequest, JoinResponse, Member as GroupMember, MemberIdentity, Protocol,
    SyncRequest, SyncResponse,
};
use super::super::membership::StoredGroup;
use super::super::state::Group;
use super::super::GroupError;
use super::{difference, Assignment, ConsumerGroup, Member, TopicCatalog, JOIN_EPOCH};

/// The protocol type of Kafka consumers, the only classic groups that can move protocols.
const CONSUMER: &str = "consumer";

/// What a classic member keeps beyond a consumer-protocol member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClassicMember {
    /// Its session timeout (a consumer-protocol member's is the coordinator's).
    pub(crate) session_timeout: Duration,
    /// The assignors it supports, with its subscription as each one's metadata.
    pub(crate) protocols: Vec<Protocol>,
}

impl ConsumerGroup {
    /// Converts a classic group of Kafka consumers (the online upgrade). Its members keep what
    /// they were assigned (a member that never synced, nothing), a partition claimed twice
    /// going to the first member alone.
    ///
    /// # Errors
    /// [`GroupError::GroupIdNotFound`], as Kafka answers, for a group that is not of Kafka
    /// consumers, or whose subscriptions or assignments cannot be read.
    pub(crate) fn from_classic(
        group: &Group,
        now: Instant,
        topics: &impl TopicCatalog,
    ) -> Result<ConsumerGroup, GroupError> {
        if group.protocol_type() != CONSUMER {
            return Err(GroupError::GroupIdNotFound);
        }
        let generation = group.generation();
        let mut converted = ConsumerGroup {
            epoch: generation,
            assignment_epoch: generation,
            ..ConsumerGroup::default()
        };
        let mut claimed: Assignment = Assignment::new();
        for member in group.members() {
            let metadata = match group.protocol_name() {
                Some(name) => member.metadata(name),
                None => member.protocols.first().map(|p| p.metadata.clone()).unwrap_or_default(),
            };
            let subscribed: BTreeSet<String> = subscribed_topics(&metadata)
                .map_err(|_| GroupError::GroupIdNotFound)?
                .into_iter()
                .collect();
            let held = to_assignment(
                assigned_topics(&member.assignment).map_err(|_| GroupError::GroupIdNotFound)?,
            );
            let assigned = difference(&held, &claimed);
            for (topic, partitions) in &assigned {
                claimed.entry(topic.clone()).or_default().extend(partitions);
            }
            converted.target.insert(member.id.clone(), assigned.clone());
            converted.members.insert(
                member.id.clone(),
                Member {
                    instance_id: member.instance_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    subscribed,
                    pattern: None,
                    matched: BTreeSet::new(),
                    principal: None,
                    assignor: None,
                    rebalance_timeout: member.rebalance_timeout,
                    epoch: generation,
                    previous_epoch: generation,
                    assigned,
                    revoking: Assignment::new(),
                    session_deadline: now + member.session_timeout,
                    revoke_deadline: None,
                    sent: None,
                    classic: Some(ClassicMember {
                        session_timeout: member.session_timeout,
                        protocols: member.protocols.clone(),
                    }),
                },
            );
        }
        converted.topics_seen = converted
            .subscribed_topics()
            .into_iter()
            .filter_map(|t| topics.partitions(&t).map(|n| (t, n)))
            .collect();
        converted.changed = true;
        Ok(converted)
    }

    /// Whether every member is of the classic protocol (and there is one): the group goes back
    /// to being a classic group.
    pub(crate) fn has_only_classic_members(&self) -> bool {
        self.has_members() && self.members.values().all(|m| m.classic.is_some())
    }

    /// The classic group this one becomes when only classic members are left (the online
    /// downgrade): Stable at the members' generation, each member assigned its target, the
    /// first member leader, and rebalancing at once.
    pub(crate) fn to_classic(&self, group_id: &str, now: Instant, initial_delay: Duration) -> Group {
        let members: Vec<GroupMember> = self
            .members
            .iter()
            .filter_map(|(id, m)| {
                let classic = m.classic.as_ref()?;
                let target = self.target.get(id).unwrap_or(&m.assigned);
                Some(GroupMember {
                    id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout: classic.session_timeout,
                    rebalance_timeout: m.rebalance_timeout,
                    protocols: classic.protocols.clone(),
                    assignment: assignment(&from_assignment(target)),
                    last_seen: now,
                    awaiting_join: false,
                    awaiting_sync: false,
                })
            })
            .collect();
        let protocol_name = self.shared_protocol(None, |_| true).unwrap_or_default();
        // The members' own generation (the group epoch moved on when the last consumer-protocol
        // member left): their heartbeats are then told to rejoin, not that their generation
        // is unknown, which librdkafka 2.16 does not recover from until its session ends.
        let generation = self.members.values().map(|m| m.epoch).max().unwrap_or(self.epoch);
        let stored = StoredGroup {
            generation,
            protocol_type: CONSUMER.to_owned(),
            protocol_name,
            leader: members.first().map(|m| m.id.clone()).unwrap_or_default(),
            members,
        };
        let mut group = Group::restore(group_id, initial_delay, stored);
        group.start_rebalance(now);
        group
    }

    /// A JoinGroup of a classic member: answered at once with its epoch as the generation and
    /// no leader; a new member is added, a member's subscription taken, and the member moved
    /// towards its target as far as what it says it owns allows.
    ///
    /// # Errors
    /// As a classic group's JoinGroup: [`GroupError::InvalidSessionTimeout`],
    /// [`GroupError::InconsistentGroupProtocol`], [`GroupError::MemberIdRequired`],
    /// [`GroupError::GroupMaxSizeReached`], [`GroupError::UnknownMemberId`] for the id of a
    /// consumer-protocol member.
    pub(crate) fn classic_join(
        &mut self,
        now: Instant,
        req: &JoinRequest,
        topics: &impl TopicCatalog,
        fresh_id: impl FnOnce() -> String,
    ) -> Result<JoinResponse, GroupError> {
        if req.session_timeout < SESSION_TIMEOUT_MIN || req.session_timeout > SESSION_TIMEOUT_MAX {
            return Err(GroupError::InvalidSessionTimeout);
        }
        super::super::state::check_protocols(req)?;
        if req.protocol_type != CONSUMER {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        let protocol = self
            .shared_protocol(Some(&req.member_id), |name| {
                req.protocols.iter().any(|p| p.name == name)
            })
            .or_else(|| self.first_protocol_all_support(req))
            .ok_or(GroupError::InconsistentGroupProtocol)?;
        let metadata = req
            .protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default();
        let malformed = |e| GroupError::InvalidRequest(format!("the subscription cannot be read: {e}"));
        let subscribed: BTreeSet<String> =
            subscribed_topics(&metadata).map_err(malformed)?.into_iter().collect();
        let owned = to_assignment(owned_partitions(&metadata).map_err(malformed)?);
        let member_id = match (&req.group_instance_id, req.member_id.is_empty()) {
            (None, true) if req.require_known_member_id => {
                return Err(GroupError::MemberIdRequired(fresh_id()))
            }
            (_, true) => fresh_id(),
            (_, false) => req.member_id.clone(),
        };
        // A static member under a new id takes its instance's place.
        if let Some(instance) = &req.group_instance_id {
            let old = self
                .members
                .iter()
                .find(|(id, m)| **id != member_id && m.instance_id.as_ref() == Some(instance))
                .map(|(id, _)| id.clone());
            if let Some(old) = old {
                self.members.remove(&old);
                self.target.remove(&old);
                self.bump();
            }
        }
        let classic = ClassicMember {
            session_timeout: req.session_timeout,
            protocols: req
                .protocols
                .iter()
                .map(|p| Protocol {
                    name: p.name.clone(),
                    metadata: Bytes::copy_from_slice(&p.metadata),
                })
                .collect(),
        };
        match self.members.get_mut(&member_id) {
            Some(member) if member.classic.is_none() => return Err(GroupError::UnknownMemberId),
            Some(member) => {
                member.client_id.clone_from(&req.client_id);
                member.client_host.clone_from(&req.client_host);
                member.rebalance_timeout = req.rebalance_timeout;
                member.classic = Some(classic);
                if member.subscribed != subscribed {
                    member.subscribed = subscribed;
                    self.bump();
                }
            }
            None => {
                if self.members.len() >= MEMBERS_PER_GROUP_MAX {
                    return Err(GroupError::GroupMaxSizeReached);
                }
                self.members.insert(
                    member_id.clone(),
                    Member {
                        instance_id: req.group_instance_id.clone(),
                        client_id: req.client_id.clone(),
                        client_host: req.client_host.clone(),
                        subscribed,
                        pattern: None,
                        matched: BTreeSet::new(),
                        principal: None,
                        assignor: None,
                        rebalance_timeout: req.rebalance_timeout,
                        epoch: JOIN_EPOCH,
                        previous_epoch: JOIN_EPOCH,
                        assigned: Assignment::new(),
                        revoking: Assignment::new(),
                        session_deadline: now,
                        revoke_deadline: None,
                        sent: None,
                        classic: Some(classic),
                    },
                );
                self.bump();
            }
        }
        if let Some(member) = self.members.get_mut(&member_id) {
            member.session_deadline = now + req.session_timeout;
            member.revoke_deadline = None;
        }
        self.refresh_target(topics);
        // What it asked the member to give up and the member no longer owns is free; an eager
        // consumer gave up everything before it rejoined.
        for _ in 0..2 {
            self.release_revoked(&member_id, &owned);
            self.reconcile(now, &member_id, true);
        }
        let epoch = self.members.get(&member_id).map_or(JOIN_EPOCH, |m| m.epoch);
        Ok(JoinResponse {
            generation: epoch,
            protocol_type: CONSUMER.to_owned(),
            protocol_name: protocol,
            leader: String::new(),
            member_id,
            members: Vec::new(),
            skip_assignment: false,
        })
    }

    /// A SyncGroup of a classic member: its partitions, without those it is to give up.
    ///
    /// # Errors
    /// [`GroupError::UnknownMemberId`], [`GroupError::FencedInstanceId`],
    /// [`GroupError::IllegalGeneration`], [`GroupError::InconsistentGroupProtocol`], and
    /// [`GroupError::RebalanceInProgress`] when the member must join again first.
    pub(crate) fn classic_sync(
        &mut self,
        now: Instant,
        req: &SyncRequest,
    ) -> Result<SyncResponse, GroupError> {
        let group_epoch = self.epoch;
        let member = self.classic_member(now, &req.member_id, req.group_instance_id.as_ref(), req.generation)?;
        let protocol_type_differs = req.protocol_type.as_deref().is_some_and(|t| t != CONSUMER);
        let protocol = match &req.protocol_name {
            Some(name) if member.supports(name) => name.clone(),
            Some(_) => return Err(GroupError::InconsistentGroupProtocol),
            None => member.first_protocol(),
        };
        if protocol_type_differs {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        if group_epoch > member.epoch && member.revoking.is_empty() {
            member.revoke_deadline.get_or_insert(now + member.rebalance_timeout);
            return Err(GroupError::RebalanceInProgress);
        }
        member.sent = Some(member.assigned.clone());
        Ok(SyncResponse {
            protocol_type: CONSUMER.to_owned(),
            protocol_name: protocol,
            assignment: assignment(&from_assignment(&member.assigned)),
        })
    }

    /// A Heartbeat of a classic member: REBALANCE_IN_PROGRESS when it must join again (it is
    /// behind the group epoch, has partitions to give up, or partitions of its target are free).
    ///
    /// # Errors
    /// [`GroupError::UnknownMemberId`], [`GroupError::FencedInstanceId`],
    /// [`GroupError::IllegalGeneration`], [`GroupError::RebalanceInProgress`].
    pub(crate) fn classic_heartbeat(
        &mut self,
        now: Instant,
        req: &HeartbeatRequest,
    ) -> Result<(), GroupError> {
        self.classic_member(now, &req.member_id, req.group_instance_id.as_ref(), req.generation)?;
        if !self.classic_must_rejoin(&req.member_id) {
            return Ok(());
        }
        if let Some(member) = self.members.get_mut(&req.member_id) {
            member.revoke_deadline.get_or_insert(now + member.rebalance_timeout);
        }
        Err(GroupError::RebalanceInProgress)
    }

    /// A LeaveGroup of classic members, each answered on its own.
    pub(crate) fn classic_leave(&mut self, members: &[MemberIdentity]) -> Vec<Result<(), GroupError>> {
        members
            .iter()
            .map(|who| {
                let member_id = match &who.group_instance_id {
                    Some(instance) => {
                        let found = self
                            .members
                            .iter()
                            .find(|(_, m)| m.instance_id.as_ref() == Some(instance))
                            .map(|(id, _)| id.clone())
                            .ok_or(GroupError::UnknownMemberId)?;
                        if !who.member_id.is_empty() && who.member_id != found {
                            return Err(GroupError::FencedInstanceId);
                        }
                        found
                    }
                    None => who.member_id.clone(),
                };
                if self.members.remove(&member_id).is_none() {
                    return Err(GroupError::UnknownMemberId);
                }
                self.target.remove(&member_id);
                self.bump();
                Ok(())
            })
            .collect()
    }

    /// The classic member a request names, checked (instance id, generation) and its session
    /// renewed.
    fn classic_member(
        &mut self,
        now: Instant,
        member_id: &str,
        instance_id: Option<&String>,
        generation: i32,
    ) -> Result<&mut Member, GroupError> {
        let member = self.members.get_mut(member_id).ok_or(GroupError::UnknownMemberId)?;
        let Some(classic) = &member.classic else {
            return Err(GroupError::UnknownMemberId);
        };
        if instance_id.is_some() && member.instance_id.as_ref() != instance_id {
            return Err(GroupError::FencedInstanceId);
        }
        if generation != member.epoch {
            return Err(GroupError::IllegalGeneration);
        }
        member.session_deadline = now + classic.session_timeout;
        Ok(member)
    }

    /// Whether a classic member must join again to move towards its target.
    fn classic_must_rejoin(&self, member_id: &str) -> bool {
        let Some(member) = self.members.get(member_id) else {
            return false;
        };
        if member.epoch < self.epoch || !member.revoking.is_empty() {
            return true;
        }
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let missing = difference(&target, &member.assigned);
        !difference(&missing, &self.held_by_others(member_id)).is_empty()
    }

    /// The protocol every classic member other than `except` supports, among those `wanted`
    /// accepts, in the order of the first such member's preference.
    fn shared_protocol(&self, except: Option<&str>, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let mut classic = self
            .members
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != except)
            .filter_map(|(_, m)| m.classic.as_ref());
        let first = classic.next()?;
        let others: Vec<&ClassicMember> = classic.collect();
        first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .find(|name| wanted(name) && others.iter().all(|o| o.protocols.iter().any(|p| p.name == *name)))
            .map(str::to_owned)
    }

    /// For the first classic member of a group that has none yet: its own first protocol.
    fn first_protocol_all_support(&self, req: &JoinRequest) -> Option<String> {
        let other_classic = self
            .members
            .iter()
            .any(|(id, m)| *id != req.member_id && m.classic.is_some());
        (!other_classic)
            .then(|| req.protocols.first().map(|p| p.name.clone()))
            .flatten()
    }
}

impl Member {
    fn supports(&self, protocol: &str) -> bool {
        self.classic
            .as_ref()
            .is_some_and(|c| c.protocols.iter().any(|p| p.name == protocol))
    }

    fn first_protocol(&self) -> String {
        self.classic
            .as_ref()
            .and_then(|c| c.protocols.first())
            .map(|p| p.name.clone())
            .unwrap_or_default()
    }
}

fn to_assignment(topics: BTreeMap<String, Vec<u32>>) -> Assignment {
    topics
        .into_iter()
        .filter(|(_, partitions)| !partitions.is_empty())
        .map(|(topic, partitions)| (topic, partitions.into_iter().collect()))
        .collect()
}

fn from_assignment(assigned: &Assignment) -> BTreeMap<String, Vec<u32>> {
    assigned
        .iter()
        .map(|(topic, partitions)| (topic.clone(), partitions.iter().copied().collect()))
        .collect()
}
