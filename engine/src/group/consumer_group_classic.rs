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

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::super::consumer_protocol::{
    assigned_topics, assignment, subscribed_topics, subscription_with_owned, PROTOCOL_TYPE,
};
use super::super::limits::{MEMBERS_PER_GROUP_MAX, SESSION_TIMEOUT_MAX, SESSION_TIMEOUT_MIN};
use super::super::member::{
    HeartbeatRequest, JoinRequest, JoinResponse, Member as GroupMember, MemberIdentity, Protocol,
    SyncRequest, SyncResponse,
};
use super::super::membership::StoredGroup;
use super::super::state::Group;
use super::super::GroupError;
use super::{
    as_lists, as_sets, difference, Assignment, ConsumerGroup, Member, TopicCatalog, JOIN_EPOCH,
};

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
        if group.protocol_type() != PROTOCOL_TYPE {
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
                None => member
                    .protocols
                    .first()
                    .map(|p| p.metadata.clone())
                    .unwrap_or_default(),
            };
            let subscribed: BTreeSet<String> = subscribed_topics(&metadata)
                .map_err(|_| GroupError::GroupIdNotFound)?
                .into_iter()
                .collect();
            let held = as_sets(
                assigned_topics(&member.assignment).map_err(|_| GroupError::GroupIdNotFound)?,
            );
            let assigned = difference(&held, &claimed);
            for (topic, partitions) in &assigned {
                claimed.entry(topic.clone()).or_default().extend(partitions);
            }
            converted.target.insert(member.id.clone(), assigned.clone());
            converted.members.insert(
                member.id.clone(),
                Member::classic(member, subscribed, generation, assigned, now),
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
    pub(crate) fn to_classic(
        &self,
        group_id: &str,
        now: Instant,
        initial_delay: Duration,
    ) -> Group {
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
                    assignment: assignment(&as_lists(target)),
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
        let generation = self
            .members
            .values()
            .map(|m| m.epoch)
            .max()
            .unwrap_or(self.epoch);
        let stored = StoredGroup {
            generation,
            protocol_type: PROTOCOL_TYPE.to_owned(),
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
        if req.protocol_type != PROTOCOL_TYPE {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        let protocol = self
            .shared_protocol(Some(&req.member_id), |name| {
                req.protocols.iter().any(|p| p.name == name)
            })
            .or_else(|| self.first_protocol_all_support(req))
            .ok_or(GroupError::InconsistentGroupProtocol)?;
        let (subscribed, owned) = subscription(req, &protocol)?;
        let member_id = match (&req.group_instance_id, req.member_id.is_empty()) {
            (None, true) if req.require_known_member_id => {
                return Err(GroupError::MemberIdRequired(fresh_id()))
            }
            (_, true) => fresh_id(),
            (_, false) => req.member_id.clone(),
        };
        // A static member under a new id takes its instance's place.
        if let Some(old) = self.instance_holder(req.group_instance_id.as_deref(), &member_id) {
            self.members.remove(&old);
            self.target.remove(&old);
            self.bump();
        }
        // The join as a classic group would keep it: timeouts clamped, protocols copied out of
        // the request frame.
        let joined = GroupMember::new(member_id.clone(), req, now);
        self.take_classic_join(&member_id, &joined, subscribed, now)?;
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
            protocol_type: PROTOCOL_TYPE.to_owned(),
            protocol_name: protocol,
            leader: String::new(),
            member_id,
            members: Vec::new(),
            skip_assignment: false,
        })
    }

    /// Adds the classic member `joined`, subscribed to `subscribed`, or takes its join again:
    /// a member rejoining keeps its identity and what it owns or gives up. A change of
    /// subscription, or a new member, bumps the group epoch.
    ///
    /// # Errors
    /// [`GroupError::UnknownMemberId`] for the id of a consumer-protocol member,
    /// [`GroupError::GroupMaxSizeReached`].
    fn take_classic_join(
        &mut self,
        member_id: &str,
        joined: &GroupMember,
        subscribed: BTreeSet<String>,
        now: Instant,
    ) -> Result<(), GroupError> {
        match self.members.get_mut(member_id) {
            Some(member) if member.classic.is_none() => return Err(GroupError::UnknownMemberId),
            Some(member) => {
                let rejoined =
                    Member::classic(joined, subscribed, member.epoch, Assignment::new(), now);
                let subscription_changed = member.subscribed != rejoined.subscribed;
                // Its identity and what it owns or gives up stay; how it joined is new.
                *member = Member {
                    instance_id: member.instance_id.take(),
                    epoch: member.epoch,
                    previous_epoch: member.previous_epoch,
                    assigned: std::mem::take(&mut member.assigned),
                    revoking: std::mem::take(&mut member.revoking),
                    sent: member.sent.take(),
                    ..rejoined
                };
                if subscription_changed {
                    self.bump();
                }
            }
            None => {
                if self.members.len() >= MEMBERS_PER_GROUP_MAX {
                    return Err(GroupError::GroupMaxSizeReached);
                }
                let member =
                    Member::classic(joined, subscribed, JOIN_EPOCH, Assignment::new(), now);
                self.members.insert(member_id.to_owned(), member);
                self.bump();
            }
        }
        Ok(())
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
        if req
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != PROTOCOL_TYPE)
        {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        let group_epoch = self.epoch;
        let member = self.classic_member(
            now,
            &req.member_id,
            req.group_instance_id.as_ref(),
            req.generation,
        )?;
        let protocol = match &req.protocol_name {
            Some(name) if member.supports(name) => name.clone(),
            Some(_) => return Err(GroupError::InconsistentGroupProtocol),
            None => member.first_protocol(),
        };
        if group_epoch > member.epoch && member.revoking.is_empty() {
            member
                .revoke_deadline
                .get_or_insert(now + member.rebalance_timeout);
            return Err(GroupError::RebalanceInProgress);
        }
        member.sent = Some(member.assigned.clone());
        Ok(SyncResponse {
            protocol_type: PROTOCOL_TYPE.to_owned(),
            protocol_name: protocol,
            assignment: assignment(&as_lists(&member.assigned)),
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
        self.classic_member(
            now,
            &req.member_id,
            req.group_instance_id.as_ref(),
            req.generation,
        )?;
        if !self.classic_must_rejoin(&req.member_id) {
            return Ok(());
        }
        if let Some(member) = self.members.get_mut(&req.member_id) {
            member
                .revoke_deadline
                .get_or_insert(now + member.rebalance_timeout);
        }
        Err(GroupError::RebalanceInProgress)
    }

    /// A LeaveGroup of classic members, each answered on its own.
    pub(crate) fn classic_leave(
        &mut self,
        members: &[MemberIdentity],
    ) -> Vec<Result<(), GroupError>> {
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
        let member = self
            .members
            .get_mut(member_id)
            .ok_or(GroupError::UnknownMemberId)?;
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
    fn shared_protocol(
        &self,
        except: Option<&str>,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<String> {
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
            .find(|name| {
                wanted(name)
                    && others
                        .iter()
                        .all(|o| o.protocols.iter().any(|p| p.name == *name))
            })
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

/// The topics a classic member's JoinGroup subscribes to and the partitions it says it owns,
/// from its metadata for `protocol`.
///
/// # Errors
/// [`GroupError::InvalidRequest`] for metadata that cannot be read.
fn subscription(
    req: &JoinRequest,
    protocol: &str,
) -> Result<(BTreeSet<String>, Assignment), GroupError> {
    let metadata = req
        .protocols
        .iter()
        .find(|p| p.name == protocol)
        .map(|p| p.metadata.clone())
        .unwrap_or_default();
    let malformed = |e| GroupError::InvalidRequest(format!("the subscription cannot be read: {e}"));
    let (subscribed, owned) = subscription_with_owned(&metadata).map_err(malformed)?;
    Ok((subscribed.into_iter().collect(), as_sets(owned)))
}

impl Member {
    /// A classic member at `epoch` owning `assigned`, as `joined` describes it (its session
    /// counted from `now`).
    fn classic(
        joined: &GroupMember,
        subscribed: BTreeSet<String>,
        epoch: i32,
        assigned: Assignment,
        now: Instant,
    ) -> Member {
        Member {
            instance_id: joined.instance_id.clone(),
            client_id: joined.client_id.clone(),
            client_host: joined.client_host.clone(),
            subscribed,
            rebalance_timeout: joined.rebalance_timeout,
            epoch,
            previous_epoch: epoch,
            assigned,
            classic: Some(ClassicMember {
                session_timeout: joined.session_timeout,
                protocols: joined.protocols.clone(),
            }),
            ..Member::joining(now + joined.session_timeout)
        }
    }

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

/// Groups, requests and records the tests below share.
#[cfg(test)]
mod tests_support {
    pub(super) use std::collections::BTreeMap;

    use bytes::BytesMut;
    use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
    use kafka_protocol::messages::{ConsumerProtocolSubscription, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    pub(super) use super::super::{ConsumerHeartbeat, ConsumerHeartbeatAnswer, LEAVE_EPOCH};
    pub(super) use super::*;
    pub(super) use crate::group::state::{GroupState, JoinReply, SyncReply};
    pub(super) use bytes::Bytes;

    pub(super) const SESSION: Duration = Duration::from_secs(10);

    /// One topic, "t", of four partitions.
    pub(super) fn catalog() -> BTreeMap<String, u32> {
        [("t".to_owned(), 4)].into()
    }

    /// A Kafka consumer's subscription to "t" (version 1), saying it owns `owned`.
    pub(super) fn subscription(owned: &[u32]) -> Bytes {
        let message = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("t")])
            .with_owned_partitions(vec![OwnedTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(owned.iter().map(|p| *p as i32).collect())]);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&1i16.to_be_bytes());
        message.encode(&mut buf, 1).expect("encodes");
        buf.freeze()
    }

    pub(super) fn join_req(member_id: &str, owned: &[u32]) -> JoinRequest {
        JoinRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            group_instance_id: None,
            require_known_member_id: false,
            client_id: member_id.into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: SESSION,
            rebalance_timeout: Duration::from_secs(30),
            protocol_type: "consumer".into(),
            protocols: vec![Protocol {
                name: "range".into(),
                metadata: subscription(owned),
            }],
        }
    }

    pub(super) fn sync_req(member_id: &str, generation: i32) -> SyncRequest {
        SyncRequest {
            group_id: "g".into(),
            generation,
            member_id: member_id.into(),
            group_instance_id: None,
            protocol_type: None,
            protocol_name: None,
            assignments: Vec::new(),
        }
    }

    pub(super) fn heartbeat(id: &str, generation: i32) -> HeartbeatRequest {
        HeartbeatRequest {
            group_id: "g".into(),
            generation,
            member_id: id.into(),
            group_instance_id: None,
        }
    }

    pub(super) fn partitions(assignment: &Bytes) -> Vec<u32> {
        assigned_topics(assignment)
            .expect("an assignment")
            .remove("t")
            .unwrap_or_default()
    }

    /// A classic group at generation 2: "a" (leader) with partitions 0 and 1, "b" with 2 and 3.
    pub(super) fn stable_classic_pair(now: Instant) -> Group {
        let mut group = Group::new("g", Duration::ZERO);
        assert!(matches!(
            group.join(now, &join_req("", &[]), "a".into()),
            Ok(JoinReply::Done(_))
        ));
        assert!(matches!(
            group.join(now, &join_req("", &[]), "b".into()),
            Ok(JoinReply::Wait(_))
        ));
        assert!(matches!(
            group.join(now, &join_req("a", &[]), "x".into()),
            Ok(JoinReply::Done(_))
        ));
        group.take_notices();
        let halves = |p: Vec<u32>| assignment(&BTreeMap::from([("t".to_owned(), p)]));
        let mut leader = sync_req("a", 2);
        leader.assignments = vec![
            ("a".into(), halves(vec![0, 1])),
            ("b".into(), halves(vec![2, 3])),
        ];
        assert!(matches!(group.sync(now, &leader), Ok(SyncReply::Done(_))));
        assert_eq!(group.state(), GroupState::Stable);
        group
    }

    pub(super) fn consumer_join(
        group: &mut ConsumerGroup,
        now: Instant,
    ) -> ConsumerHeartbeatAnswer {
        let join = ConsumerHeartbeat {
            group_id: "g".into(),
            member_id: "c".into(),
            member_epoch: JOIN_EPOCH,
            subscribed_topics: Some(vec!["t".into()]),
            ..ConsumerHeartbeat::default()
        };
        group
            .heartbeat(now, join, &catalog(), || "c".into())
            .expect("joined")
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;

    #[test]
    fn an_upgraded_group_shares_its_partitions_with_the_new_member_without_a_partition_held_twice()
    {
        let now = Instant::now();
        let classic = stable_classic_pair(now);
        let mut group = ConsumerGroup::from_classic(&classic, now, &catalog()).expect("converts");
        // The classic members keep their partitions at their generation.
        let described = group.describe();
        assert_eq!(described.epoch, 2);
        assert_eq!(group.state(), GroupState::Stable);
        let held: Vec<(String, i32, Vec<u32>)> = described
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.clone(),
                    m.epoch,
                    m.assignment["t"].iter().copied().collect(),
                )
            })
            .collect();
        assert_eq!(
            held,
            [("a".into(), 2, vec![0, 1]), ("b".into(), 2, vec![2, 3])]
        );
        assert_eq!(group.check_commit("a", 2), Ok(()));
        assert_eq!(
            group.check_commit("a", 1),
            Err(GroupError::IllegalGeneration)
        );

        // A consumer-protocol member joins: nothing is free for it yet.
        let c = consumer_join(&mut group, now);
        assert_eq!(c.assignment.as_ref().map(BTreeMap::len), Some(0));
        // The classic members are told to rejoin; a cooperative one rejoins still owning its
        // partitions, is handed those it keeps, and moves on once it says it gave the rest up.
        for (id, owned) in [("a", vec![0, 1]), ("b", vec![2, 3])] {
            assert_eq!(
                group.classic_heartbeat(now, &heartbeat(id, 2)),
                Err(GroupError::RebalanceInProgress)
            );
            let joined = group
                .classic_join(now, &join_req(id, &owned), &catalog(), || unreachable!())
                .expect("joins");
            assert_eq!((joined.leader.as_str(), joined.members.len()), ("", 0));
            let kept = partitions(
                &group
                    .classic_sync(now, &sync_req(id, joined.generation))
                    .expect("synced")
                    .assignment,
            );
            if kept != owned {
                assert_eq!(
                    joined.generation, 2,
                    "{id} stays at its epoch while it gives partitions up"
                );
                assert_eq!(
                    group.classic_heartbeat(now, &heartbeat(id, joined.generation)),
                    Err(GroupError::RebalanceInProgress)
                );
                let again = group
                    .classic_join(now, &join_req(id, &kept), &catalog(), || unreachable!())
                    .expect("joins");
                assert_eq!(again.generation, group.epoch());
                let synced = group
                    .classic_sync(now, &sync_req(id, again.generation))
                    .expect("synced");
                assert_eq!(partitions(&synced.assignment), kept);
            }
        }
        let beat = ConsumerHeartbeat {
            group_id: "g".into(),
            member_id: "c".into(),
            member_epoch: c.member_epoch,
            owned: Some(Assignment::new()),
            ..ConsumerHeartbeat::default()
        };
        let c = group
            .heartbeat(now, beat, &catalog(), || unreachable!())
            .expect("accepted");
        assert!(
            !c.assignment.unwrap_or_default().is_empty(),
            "the new member got its share"
        );
        let mut all: Vec<u32> = group
            .describe()
            .members
            .iter()
            .flat_map(|m| m.assignment.get("t").into_iter().flatten().copied())
            .collect();
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, 3], "each partition held once");
        assert_eq!(group.state(), GroupState::Stable);
        for id in ["a", "b"] {
            let epoch = group.epoch();
            assert_eq!(group.classic_heartbeat(now, &heartbeat(id, epoch)), Ok(()));
        }
    }

    #[test]
    fn an_eager_member_gives_up_and_moves_on_in_one_join() {
        let now = Instant::now();
        let mut group = ConsumerGroup::from_classic(&stable_classic_pair(now), now, &catalog())
            .expect("converts");
        consumer_join(&mut group, now);
        // An eager consumer revokes everything before it rejoins: it owns nothing.
        let joined = group
            .classic_join(now, &join_req("a", &[]), &catalog(), || unreachable!())
            .expect("joins");
        assert_eq!(joined.generation, group.epoch());
        let synced = group
            .classic_sync(now, &sync_req("a", joined.generation))
            .expect("synced");
        assert!(!partitions(&synced.assignment).is_empty());
    }

    #[test]
    fn when_only_classic_members_are_left_the_group_is_classic_again_and_rebalances() {
        let now = Instant::now();
        let mut group = ConsumerGroup::from_classic(&stable_classic_pair(now), now, &catalog())
            .expect("converts");
        let c = consumer_join(&mut group, now);
        assert!(!group.has_only_classic_members());
        let leave = ConsumerHeartbeat {
            group_id: "g".into(),
            member_id: "c".into(),
            member_epoch: LEAVE_EPOCH,
            ..ConsumerHeartbeat::default()
        };
        group
            .heartbeat(now, leave, &catalog(), || unreachable!())
            .expect("left");
        assert!(c.member_epoch > 2);
        assert!(group.has_only_classic_members());
        let mut classic = group.to_classic("g", now, Duration::ZERO);
        assert_eq!(classic.state(), GroupState::PreparingRebalance);
        // At the members' own generation: their heartbeats are told to rejoin.
        assert_eq!(classic.generation(), 2);
        assert_eq!(
            classic.heartbeat(now, &heartbeat("a", 2)),
            Err(GroupError::RebalanceInProgress)
        );
        let ids: Vec<String> = classic.members().map(|m| m.id.clone()).collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn a_classic_join_to_a_group_of_other_consumers_is_refused_like_a_classic_groups() {
        let now = Instant::now();
        let mut group = ConsumerGroup::from_classic(&stable_classic_pair(now), now, &catalog())
            .expect("converts");
        let mut other = join_req("", &[]);
        other.protocol_type = "connect".into();
        assert_eq!(
            group.classic_join(now, &other, &catalog(), || "d".into()),
            Err(GroupError::InconsistentGroupProtocol)
        );
        let mut roundrobin = join_req("", &[]);
        roundrobin.protocols[0].name = "roundrobin".into();
        assert_eq!(
            group.classic_join(now, &roundrobin, &catalog(), || "d".into()),
            Err(GroupError::InconsistentGroupProtocol)
        );
        let mut first = join_req("", &[]);
        first.require_known_member_id = true;
        assert_eq!(
            group.classic_join(now, &first, &catalog(), || "d".into()),
            Err(GroupError::MemberIdRequired("d".into()))
        );
        // A classic group of other clients does not move to the consumer protocol.
        let mut connect = Group::new("g", Duration::ZERO);
        let mut worker = join_req("", &[]);
        worker.protocol_type = "connect".into();
        assert!(connect.join(now, &worker, "w".into()).is_ok());
        assert_eq!(
            ConsumerGroup::from_classic(&connect, now, &catalog()).map(|_| ()),
            Err(GroupError::GroupIdNotFound)
        );
    }

    #[test]
    fn a_classic_member_is_stored_and_restored_with_its_protocols_and_session() {
        let now = Instant::now();
        let group = ConsumerGroup::from_classic(&stable_classic_pair(now), now, &catalog())
            .expect("converts");
        use crate::group::membership::{decode, encode_consumer, Stored};
        let later = now + Duration::from_secs(60);
        let Ok(Stored::Consumer(mut restored)) =
            decode(&encode_consumer(&group).expect("small"), later)
        else {
            panic!("not restored as a consumer group");
        };
        assert_eq!(restored.describe(), group.describe());
        assert!(restored.has_only_classic_members());
        let beat = later + Duration::from_secs(1);
        assert_eq!(restored.classic_heartbeat(beat, &heartbeat("a", 2)), Ok(()));
        // The classic session (10 s) counts from the restore.
        assert!(restored
            .tick(later + SESSION - Duration::from_millis(1))
            .is_empty());
        assert_eq!(restored.tick(later + SESSION).len(), 1, "b never heartbeat");
    }
}

#[cfg(test)]
mod damaged_records {
    use super::tests_support::*;
    use crate::group::membership::{decode, encode, encode_consumer};

    #[test]
    fn no_damaged_membership_record_panics_or_decodes_into_garbage_silently() {
        let now = std::time::Instant::now();
        let classic = stable_classic_pair(now);
        let converted =
            super::ConsumerGroup::from_classic(&classic, now, &catalog()).expect("converts");
        let records = [
            encode(&classic).expect("small"),
            encode_consumer(&converted).expect("small"),
        ];
        let mut next = crate::group::noise(0x5eed);
        let (mut read, mut refused) = (0, 0);
        for record in &records {
            for end in 0..record.len() {
                assert!(
                    decode(&record[..end], now).is_err(),
                    "a record cut at {end} decoded"
                );
            }
            for _ in 0..20_000 {
                let mut noisy = record.to_vec();
                let at = next() as usize % noisy.len();
                noisy[at] = next() as u8;
                match decode(&noisy, now) {
                    Ok(_) => read += 1,
                    Err(_) => refused += 1,
                }
            }
        }
        assert!(read > 0 && refused > 0, "{read} read, {refused} refused");
    }
}
