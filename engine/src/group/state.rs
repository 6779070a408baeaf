//! `Group`: one group's state machine of the classic rebalance protocol.
//!
//! ```text
//!            join                 all joined / deadline           leader syncs
//!   Empty ───────────► Preparing ─────────────────► Completing ───────────────► Stable
//!     ▲                Rebalance ◄───────────────── Rebalance  ◄─────────────────  │
//!     │                    │      join, leave, expiry         join, leave, expiry  │
//!     └────────────────────┘ (no member left when the join completes)              │
//! ```
//!
//! The machine is pure: it never reads the clock (every call takes `now`), never waits and
//! never writes. A call answers its own caller at once (`JoinReply::Done`) or tells it to wait
//! (`JoinReply::Wait`); answers due to *other* members (the join completes for everyone when
//! the last one arrives, followers get their assignment when the leader syncs) are queued as
//! `Notice`s that the coordinator drains after every call and delivers to the waiting requests.
//! That keeps every transition testable without timers or tasks.
//!
//! A rebalance completes when every known member has rejoined and no member id handed out by
//! KIP-394 is still outstanding, or when the rebalance deadline (the longest rebalance timeout of
//! the members) passes; members that did not rejoin by then are removed.
//!
//! The first join into an empty group waits an initial delay (Kafka's
//! `group.initial.rebalance.delay.ms`), extended by each member joining meanwhile, so that
//! consumers started together share one generation instead of rebalancing once per arrival. It
//! also lets a leader's first assignment see the subscribed topics' metadata: kafka-python 3.0
//! stops heartbeating if a rebalance that its own metadata refresh started completes while its
//! `poll()` has timed out, which a second generation right after the first provokes.
//!
//! The join phase (JoinGroup, PreparingRebalance, the completed join) is in `state_join.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::consumer_protocol;
use super::limits::{MEMBER_METADATA_BYTES_MAX, PROTOCOLS_PER_MEMBER_MAX};
use super::member::{
    HeartbeatRequest, JoinRequest, JoinResponse, Member, MemberDescription, MemberIdentity,
    SyncRequest, SyncResponse,
};
use super::membership::StoredGroup;
use super::GroupError;

/// Where a group is in the rebalance protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members (it may still have committed offsets).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// KIP-848 consumer groups only: the target assignment is being computed.
    Assigning,
    /// KIP-848 consumer groups only: a member is still moving to its target assignment.
    Reconciling,
    /// Deleted; never held by a live group, reported for groups that do not exist.
    Dead,
}

impl GroupState {
    /// The state's name as Kafka reports it (ListGroups, DescribeGroups).
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Assigning => "Assigning",
            GroupState::Reconciling => "Reconciling",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a join tells its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JoinReply {
    /// The answer is ready.
    Done(JoinResponse),
    /// Wait for a [`Notice::Join`] to this member id.
    Wait(String),
}

/// What a sync tells its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SyncReply {
    /// The answer is ready.
    Done(SyncResponse),
    /// Wait for a [`Notice::Sync`] to the member.
    Wait,
}

/// An answer due to a member whose request is waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Notice {
    /// The join of `member_id` is answered.
    Join {
        member_id: String,
        result: Result<JoinResponse, GroupError>,
    },
    /// The sync of `member_id` is answered.
    Sync {
        member_id: String,
        result: Result<SyncResponse, GroupError>,
    },
}

/// The topics a consumer group's members subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subscribed {
    /// These topics.
    Topics(BTreeSet<String>),
    /// Any topic, as far as anyone can tell: a member's subscription could not be read.
    All,
}

impl Subscribed {
    pub(crate) fn includes(&self, topic: &str) -> bool {
        match self {
            Subscribed::Topics(topics) => topics.contains(topic),
            Subscribed::All => true,
        }
    }
}

/// One group's membership and rebalance state.
#[derive(Debug)]
pub(crate) struct Group {
    id: String,
    state: GroupState,
    /// Incremented by every completed join; 0 before the first.
    generation: i32,
    protocol_type: Option<String>,
    /// The protocol chosen at the last completed join; `None` while Empty.
    protocol_name: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// `group.instance.id` → member id of static members.
    static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the instant they lapse.
    pending_members: HashMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
    /// How long the first join into an empty group waits for more members.
    initial_delay: Duration,
    /// While set, a join does not complete before this instant (the initial delay).
    join_not_before: Option<Instant>,
    outbox: Vec<Notice>,
    /// What a restart restores of the group changed (see [`Group::take_changed`]).
    changed: bool,
}

impl Group {
    pub(crate) fn new(id: &str, initial_delay: Duration) -> Group {
        Group {
            id: id.to_owned(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            rebalance_deadline: None,
            initial_delay,
            join_not_before: None,
            outbox: Vec::new(),
            changed: false,
        }
    }

    /// The group as a restart finds it in the offsets log (see [`super::membership`]): Stable
    /// at its stored generation, with its leader, protocol, members and assignments (each
    /// member's session counted from when the record was read).
    pub(crate) fn restore(id: &str, initial_delay: Duration, stored: StoredGroup) -> Group {
        let mut group = Group::new(id, initial_delay);
        group.state = GroupState::Stable;
        group.generation = stored.generation;
        group.protocol_type = Some(stored.protocol_type);
        group.protocol_name = Some(stored.protocol_name);
        group.leader = Some(stored.leader);
        for member in stored.members {
            if let Some(instance) = &member.instance_id {
                group
                    .static_members
                    .insert(instance.clone(), member.id.clone());
            }
            group.members.insert(member.id.clone(), member);
        }
        group
    }

    pub(crate) fn state(&self) -> GroupState {
        self.state
    }

    pub(crate) fn generation(&self) -> i32 {
        self.generation
    }

    pub(crate) fn protocol_type(&self) -> &str {
        self.protocol_type.as_deref().unwrap_or("")
    }

    /// Whether anyone has joined (outstanding member ids from MEMBER_ID_REQUIRED do not count:
    /// Kafka's group is still Empty then).
    pub(crate) fn has_members(&self) -> bool {
        !self.members.is_empty()
    }

    /// No members and no outstanding member ids: the group may be forgotten (its offsets live
    /// apart).
    pub(crate) fn is_vacant(&self) -> bool {
        self.members.is_empty() && self.pending_members.is_empty()
    }

    /// What OffsetDelete may remove while the group has members: `None` when it may remove
    /// nothing (the group is not a consumer group, so its members' use of offsets is unknown);
    /// else the topics its members subscribe to, `Subscribed::All` when a subscription does not
    /// read (the safe answer).
    pub(crate) fn subscriptions(&self) -> Option<Subscribed> {
        if self.protocol_type() != consumer_protocol::PROTOCOL_TYPE {
            return None;
        }
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            for protocol in &member.protocols {
                match consumer_protocol::subscribed_topics(&protocol.metadata) {
                    Ok(subscribed) => topics.extend(subscribed),
                    Err(_) => return Some(Subscribed::All),
                }
            }
        }
        Some(Subscribed::Topics(topics))
    }

    #[cfg(test)]
    pub(crate) fn has_member(&self, member_id: &str) -> bool {
        self.members.contains_key(member_id)
    }

    /// Starts a rebalance of a Stable group: the group that a consumer-protocol group became
    /// when its last consumer-protocol member left (see `consumer_group_classic.rs`).
    pub(crate) fn start_rebalance(&mut self, now: Instant) {
        if self.state == GroupState::Stable {
            self.prepare_rebalance(now);
        }
    }

    /// Whether what a restart restores of the group changed since the last call: a generation
    /// became Stable, a static member took over its instance's slot, or the last member went.
    pub(crate) fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The protocol chosen at the last completed join.
    pub(crate) fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    /// The member that assigns the partitions.
    pub(crate) fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    /// The members in member-id order.
    pub(crate) fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// Answers due to waiting members, in the order they became due.
    pub(crate) fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.outbox)
    }

    /// Checks that a request comes from a current member: the member exists, its static
    /// instance id matches and its generation is the group's.
    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&String>,
        generation: i32,
    ) -> Result<(), GroupError> {
        if let Some(instance) = instance_id {
            if let Some(id) = self.static_members.get(instance) {
                if id != member_id {
                    return Err(GroupError::FencedInstanceId);
                }
            }
        }
        if self.state == GroupState::Empty || !self.members.contains_key(member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }

    /// Checks an offset commit of a generation (`generation >= 0`): the member must be current
    /// and the group not between join and sync. The commit refreshes the member's session.
    ///
    /// # Errors
    /// [`GroupError::UnknownMemberId`], [`GroupError::IllegalGeneration`],
    /// [`GroupError::FencedInstanceId`], [`GroupError::RebalanceInProgress`].
    pub(crate) fn check_commit(
        &mut self,
        now: Instant,
        member_id: &str,
        instance_id: Option<&String>,
        generation: i32,
    ) -> Result<(), GroupError> {
        self.check_member(member_id, instance_id, generation)?;
        // Commits stay open while members rejoin (consumers commit when their partitions are
        // revoked), but between join and sync the assignment is in flux.
        if self.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        if let Some(member) = self.members.get_mut(member_id) {
            member.last_seen = now;
        }
        Ok(())
    }

    /// Handles a SyncGroup.
    ///
    /// # Errors
    /// [`GroupError::UnknownMemberId`], [`GroupError::IllegalGeneration`],
    /// [`GroupError::RebalanceInProgress`], [`GroupError::InconsistentGroupProtocol`].
    pub(crate) fn sync(
        &mut self,
        now: Instant,
        req: &SyncRequest,
    ) -> Result<SyncReply, GroupError> {
        self.check_member(
            &req.member_id,
            req.group_instance_id.as_ref(),
            req.generation,
        )?;
        let type_differs = req
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref());
        let name_differs = req
            .protocol_name
            .as_ref()
            .is_some_and(|n| Some(n) != self.protocol_name.as_ref());
        if type_differs || name_differs {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        if let Some((id, a)) = req
            .assignments
            .iter()
            .find(|(_, a)| a.len() > MEMBER_METADATA_BYTES_MAX)
        {
            return Err(GroupError::InvalidRequest(format!(
                "the assignment of {id} is {} bytes, more than {MEMBER_METADATA_BYTES_MAX}",
                a.len()
            )));
        }
        if let Some(member) = self.members.get_mut(&req.member_id) {
            member.last_seen = now;
        }
        match self.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            GroupState::Stable => Ok(SyncReply::Done(self.sync_response(&req.member_id))),
            GroupState::CompletingRebalance => {
                if self.leader.as_deref() != Some(req.member_id.as_str()) {
                    if let Some(member) = self.members.get_mut(&req.member_id) {
                        member.awaiting_sync = true;
                    }
                    return Ok(SyncReply::Wait);
                }
                self.apply_assignments(&req.assignments);
                Ok(SyncReply::Done(self.sync_response(&req.member_id)))
            }
            GroupState::Empty
            | GroupState::Dead
            | GroupState::Assigning
            | GroupState::Reconciling => Err(GroupError::UnknownMemberId),
        }
    }

    /// Stores the leader's assignments (members it left out get an empty one), makes the group
    /// Stable and answers the followers waiting in SyncGroup.
    fn apply_assignments(&mut self, assignments: &[(String, Bytes)]) {
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
        }
        for (id, assignment) in assignments {
            if let Some(member) = self.members.get_mut(id) {
                // Copied out of the request frame, which it would otherwise keep alive.
                member.assignment = Bytes::copy_from_slice(assignment);
            }
        }
        self.state = GroupState::Stable;
        self.changed = true;
        let waiting: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_sync)
            .map(|m| m.id.clone())
            .collect();
        for id in waiting {
            let response = self.sync_response(&id);
            if let Some(member) = self.members.get_mut(&id) {
                member.awaiting_sync = false;
            }
            self.outbox.push(Notice::Sync {
                member_id: id,
                result: Ok(response),
            });
        }
    }

    fn sync_response(&self, member_id: &str) -> SyncResponse {
        SyncResponse {
            protocol_type: self.protocol_type().to_owned(),
            protocol_name: self.protocol_name.clone().unwrap_or_default(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    /// Handles a Heartbeat.
    ///
    /// # Errors
    /// [`GroupError::UnknownMemberId`], [`GroupError::IllegalGeneration`], and
    /// [`GroupError::RebalanceInProgress`] while the group waits for members to rejoin.
    pub(crate) fn heartbeat(
        &mut self,
        now: Instant,
        req: &HeartbeatRequest,
    ) -> Result<(), GroupError> {
        self.check_member(
            &req.member_id,
            req.group_instance_id.as_ref(),
            req.generation,
        )?;
        if let Some(member) = self.members.get_mut(&req.member_id) {
            member.last_seen = now;
        }
        match self.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Handles a LeaveGroup for each of `members`, in order.
    pub(crate) fn leave(
        &mut self,
        now: Instant,
        members: &[MemberIdentity],
    ) -> Vec<Result<(), GroupError>> {
        members.iter().map(|m| self.leave_one(now, m)).collect()
    }

    fn leave_one(&mut self, now: Instant, who: &MemberIdentity) -> Result<(), GroupError> {
        let member_id = match &who.group_instance_id {
            Some(instance) => match self.static_members.get(instance) {
                Some(id) if who.member_id.is_empty() || *id == who.member_id => id.clone(),
                Some(_) => return Err(GroupError::FencedInstanceId),
                None => return Err(GroupError::UnknownMemberId),
            },
            None => who.member_id.clone(),
        };
        if self.pending_members.remove(&member_id).is_some() {
            self.maybe_complete_join(now);
            return Ok(());
        }
        if !self.members.contains_key(&member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        self.remove_member(now, &member_id, GroupError::UnknownMemberId);
        Ok(())
    }

    /// Removes a member (left, expired or fenced) and rebalances the rest. A request of the
    /// member still waiting is answered with `reason`.
    fn remove_member(&mut self, now: Instant, member_id: &str, reason: GroupError) {
        let Some(member) = self.forget_member(member_id) else {
            return;
        };
        if member.awaiting_join {
            self.outbox.push(Notice::Join {
                member_id: member.id.clone(),
                result: Err(reason.clone()),
            });
        }
        if member.awaiting_sync {
            self.outbox.push(Notice::Sync {
                member_id: member.id,
                result: Err(reason),
            });
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now),
            GroupState::PreparingRebalance
            | GroupState::Empty
            | GroupState::Dead
            | GroupState::Assigning
            | GroupState::Reconciling => {}
        }
        self.maybe_complete_join(now);
    }

    fn forget_member(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.remove(member_id)?;
        if let Some(instance) = &member.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        self.changed |= self.members.is_empty();
        Some(member)
    }

    /// Advances time: lapses outstanding member ids, removes members whose session expired and
    /// completes a join whose deadline or initial delay passed.
    pub(crate) fn tick(&mut self, now: Instant) {
        self.pending_members.retain(|_, deadline| *deadline > now);
        // Members waiting in a join are covered by the rebalance deadline, not their session.
        let preparing = self.state == GroupState::PreparingRebalance;
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| !(preparing && m.awaiting_join) && m.session_expired(now))
            .map(|m| m.id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.id, member = %id, "session expired; removing member");
            self.remove_member(now, id, GroupError::UnknownMemberId);
        }
        let deadline_passed = self.rebalance_deadline.is_some_and(|d| d <= now);
        if self.state == GroupState::PreparingRebalance && deadline_passed {
            self.complete_join(now);
        } else {
            // Lapsed member ids or the end of the initial delay may let the join complete.
            self.maybe_complete_join(now);
        }
    }

    /// The members as DescribeGroups reports them: metadata and assignments only when Stable.
    pub(crate) fn describe_members(&self) -> Vec<MemberDescription> {
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol_name.as_deref().unwrap_or("");
        self.members
            .values()
            .map(|m| MemberDescription {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata(protocol)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect()
    }

    /// The protocol reported by DescribeGroups: the chosen one once Stable, else empty.
    pub(crate) fn described_protocol(&self) -> &str {
        match self.state {
            GroupState::Stable => self.protocol_name.as_deref().unwrap_or(""),
            _ => "",
        }
    }
}

#[path = "state_join.rs"]
mod join;
#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

/// Refuses a join whose protocols are beyond the coordinator's limits.
pub(super) fn check_protocols(req: &JoinRequest) -> Result<(), GroupError> {
    if req.protocols.len() > PROTOCOLS_PER_MEMBER_MAX {
        return Err(GroupError::InvalidRequest(format!(
            "{} protocols offered, at most {PROTOCOLS_PER_MEMBER_MAX} accepted",
            req.protocols.len()
        )));
    }
    let metadata: usize = req.protocols.iter().map(|p| p.metadata.len()).sum();
    if metadata > MEMBER_METADATA_BYTES_MAX {
        return Err(GroupError::InvalidRequest(format!(
            "{metadata} bytes of protocol metadata, at most {MEMBER_METADATA_BYTES_MAX} accepted"
        )));
    }
    Ok(())
}
