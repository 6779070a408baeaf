//! The join phase of a classic group's rebalance: JoinGroup requests, the group's move to
//! PreparingRebalance and, once every member has joined (or the deadline passed), to
//! CompletingRebalance with a new generation, its protocol and its leader (see [`super`] for
//! the whole state machine).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{check_protocols, Group, GroupState, JoinReply, Notice};
use crate::group::limits::{
    MEMBERS_PER_GROUP_MAX, REBALANCE_TIMEOUT_MAX, SESSION_TIMEOUT_MAX, SESSION_TIMEOUT_MIN,
};
use crate::group::member::{JoinRequest, JoinResponse, JoinedMember, Member};
use crate::group::GroupError;

impl Group {
    /// Handles a JoinGroup.
    ///
    /// `fresh_member_id` is used when the caller needs a new member id.
    ///
    /// # Errors
    /// The protocol answers of JoinGroup: [`GroupError::MemberIdRequired`],
    /// [`GroupError::UnknownMemberId`], [`GroupError::InconsistentGroupProtocol`], ...
    pub(crate) fn join(
        &mut self,
        now: Instant,
        req: &JoinRequest,
        fresh_member_id: String,
    ) -> Result<JoinReply, GroupError> {
        if req.session_timeout < SESSION_TIMEOUT_MIN || req.session_timeout > SESSION_TIMEOUT_MAX {
            return Err(GroupError::InvalidSessionTimeout);
        }
        check_protocols(req)?;
        if req.protocol_type.is_empty() || req.protocols.is_empty() || !self.accepts(req) {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        let member_id = match (&req.group_instance_id, req.member_id.is_empty()) {
            (Some(instance), true) => {
                // A static member restarting takes over its instance's slot under a new id;
                // the old id is fenced. Into a stable group, with the same protocols, it keeps
                // its assignment and nobody rebalances (what static membership is for).
                if let Some(old) = self.static_members.get(instance).cloned() {
                    if self.state == GroupState::Stable
                        && self
                            .members
                            .get(&old)
                            .is_some_and(|m| m.protocols == req.protocols)
                    {
                        return Ok(self.replace_static_member(now, req, &old, fresh_member_id));
                    }
                    self.remove_member(now, &old, GroupError::FencedInstanceId);
                }
                return self.join_new_member(now, req, fresh_member_id);
            }
            (Some(instance), false) => {
                match self.static_members.get(instance) {
                    Some(id) if *id != req.member_id => return Err(GroupError::FencedInstanceId),
                    Some(_) => {}
                    None => return Err(GroupError::UnknownMemberId),
                }
                req.member_id.clone()
            }
            (None, true) if req.require_known_member_id => {
                // Outstanding ids count against the group's size, so a client looping on first
                // joins cannot grow the map without bound.
                if self.members.len() + self.pending_members.len() >= MEMBERS_PER_GROUP_MAX {
                    return Err(GroupError::GroupMaxSizeReached);
                }
                let deadline = now + req.session_timeout;
                self.pending_members
                    .insert(fresh_member_id.clone(), deadline);
                return Err(GroupError::MemberIdRequired(fresh_member_id));
            }
            (None, true) => return self.join_new_member(now, req, fresh_member_id),
            (None, false) => {
                if self.pending_members.remove(&req.member_id).is_some() {
                    return self.join_new_member(now, req, req.member_id.clone());
                }
                req.member_id.clone()
            }
        };
        self.join_existing_member(now, req, &member_id)
    }

    /// Whether a join's protocol type and protocols fit the current members.
    fn accepts(&self, req: &JoinRequest) -> bool {
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(req.protocol_type.as_str()) {
            return false;
        }
        let others = || self.members.values().filter(|m| m.id != req.member_id);
        req.protocols
            .iter()
            .any(|p| others().all(|m| m.supports(&p.name)))
    }

    fn join_new_member(
        &mut self,
        now: Instant,
        req: &JoinRequest,
        member_id: String,
    ) -> Result<JoinReply, GroupError> {
        if self.members.len() >= MEMBERS_PER_GROUP_MAX {
            return Err(GroupError::GroupMaxSizeReached);
        }
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        let mut member = Member::new(member_id.clone(), req, now);
        member.awaiting_join = true;
        if let Some(instance) = &req.group_instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        self.members.insert(member_id.clone(), member);
        let was_empty = self.state == GroupState::Empty;
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now);
        }
        self.extend_rebalance_deadline(now, req.rebalance_timeout);
        self.delay_initial_join(now, was_empty);
        self.maybe_complete_join(now);
        Ok(self.reply_to_joiner(member_id))
    }

    /// Moves a static member of a stable group to its new id, keeping its assignment, and
    /// answers its join with the current generation. A leader is told to skip the assignment.
    fn replace_static_member(
        &mut self,
        now: Instant,
        req: &JoinRequest,
        old_id: &str,
        new_id: String,
    ) -> JoinReply {
        if let Some(mut member) = self.members.remove(old_id) {
            member.id.clone_from(&new_id);
            member.update(req, now);
            self.members.insert(new_id.clone(), member);
        }
        if let Some(instance) = &req.group_instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        self.changed = true;
        let mut response = self.join_response(&new_id);
        response.skip_assignment = self.leader.as_deref() == Some(new_id.as_str());
        JoinReply::Done(response)
    }

    fn join_existing_member(
        &mut self,
        now: Instant,
        req: &JoinRequest,
        member_id: &str,
    ) -> Result<JoinReply, GroupError> {
        let Some(member) = self.members.get_mut(member_id) else {
            return Err(GroupError::UnknownMemberId);
        };
        let unchanged = member.protocols == req.protocols;
        member.update(req, now);
        let is_leader = self.leader.as_deref() == Some(member_id);
        match self.state {
            GroupState::PreparingRebalance => {}
            // A retried join of the current generation (its answer was lost): answer it again.
            GroupState::CompletingRebalance if unchanged => {
                return Ok(JoinReply::Done(self.join_response(member_id)));
            }
            // A follower rejoining without change gets the current generation back; the leader
            // rejoining, or any change of subscription, starts a rebalance.
            GroupState::Stable if unchanged && !is_leader => {
                return Ok(JoinReply::Done(self.join_response(member_id)));
            }
            GroupState::CompletingRebalance | GroupState::Stable => self.prepare_rebalance(now),
            // A classic group is never in the consumer protocol's states.
            GroupState::Empty
            | GroupState::Dead
            | GroupState::Assigning
            | GroupState::Reconciling => return Err(GroupError::UnknownMemberId),
        }
        if let Some(member) = self.members.get_mut(member_id) {
            member.awaiting_join = true;
        }
        self.extend_rebalance_deadline(now, req.rebalance_timeout);
        self.maybe_complete_join(now);
        Ok(self.reply_to_joiner(member_id.to_owned()))
    }

    /// Takes the caller's own answer out of the notices if the join completed, else tells it
    /// to wait.
    fn reply_to_joiner(&mut self, member_id: String) -> JoinReply {
        let own = self.outbox.iter().position(
            |n| matches!(n, Notice::Join { member_id: id, result: Ok(_) } if *id == member_id),
        );
        match own.map(|i| self.outbox.remove(i)) {
            Some(Notice::Join {
                result: Ok(response),
                ..
            }) => JoinReply::Done(response),
            _ => JoinReply::Wait(member_id),
        }
    }

    /// Enters PreparingRebalance: assignments are void and waiting syncs are told to rejoin.
    pub(super) fn prepare_rebalance(&mut self, now: Instant) {
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
            if member.awaiting_sync {
                member.awaiting_sync = false;
                self.outbox.push(Notice::Sync {
                    member_id: member.id.clone(),
                    result: Err(GroupError::RebalanceInProgress),
                });
            }
        }
        self.state = GroupState::PreparingRebalance;
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::ZERO);
        self.rebalance_deadline = Some(now + timeout);
    }

    /// Starts the initial delay when the first member joins an empty group, and extends it
    /// (never past the rebalance deadline) for each member joining while it runs.
    fn delay_initial_join(&mut self, now: Instant, was_empty: bool) {
        let until = now + self.initial_delay;
        let until = self.rebalance_deadline.map_or(until, |d| until.min(d));
        if was_empty || self.join_not_before.is_some() {
            self.join_not_before = Some(until);
        }
    }

    /// A member joining mid-rebalance may have a longer rebalance timeout than the deadline.
    fn extend_rebalance_deadline(&mut self, now: Instant, timeout: Duration) {
        if let Some(deadline) = &mut self.rebalance_deadline {
            *deadline = (*deadline).max(now + timeout.min(REBALANCE_TIMEOUT_MAX));
        }
    }

    pub(super) fn maybe_complete_join(&mut self, now: Instant) {
        let all_joined = self.members.values().all(|m| m.awaiting_join);
        let delay_over = self.join_not_before.is_none_or(|t| now >= t);
        if self.state == GroupState::PreparingRebalance
            && all_joined
            && self.pending_members.is_empty()
            && delay_over
        {
            self.complete_join(now);
        }
    }

    /// Ends the join phase: members that did not rejoin are dropped, the generation advances,
    /// a protocol and a leader are chosen and every joined member is answered.
    pub(super) fn complete_join(&mut self, now: Instant) {
        assert_eq!(self.state, GroupState::PreparingRebalance);
        let absent: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join)
            .map(|m| m.id.clone())
            .collect();
        for id in absent {
            self.forget_member(&id);
        }
        self.generation = self.generation.wrapping_add(1).max(1);
        self.rebalance_deadline = None;
        self.join_not_before = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol_name = None;
            self.leader = None;
            return;
        }
        self.protocol_name = Some(self.select_protocol());
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let response = self.join_response(&id);
            if let Some(member) = self.members.get_mut(&id) {
                member.awaiting_join = false;
                member.last_seen = now;
            }
            self.outbox.push(Notice::Join {
                member_id: id,
                result: Ok(response),
            });
        }
    }

    /// The protocol every member supports that most members prefer (ties go to the name that
    /// sorts first, so the choice is deterministic).
    fn select_protocol(&self) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            let choice = member
                .protocols
                .iter()
                .find(|p| self.members.values().all(|m| m.supports(&p.name)));
            if let Some(p) = choice {
                *votes.entry(p.name.as_str()).or_default() += 1;
            }
        }
        let best = votes.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)));
        match best {
            Some((name, _)) => (*name).to_owned(),
            // Joins are refused unless they share a protocol with everyone, so this is only
            // reachable with a member that sent no protocols, which join also refuses.
            None => String::new(),
        }
    }

    fn join_response(&self, member_id: &str) -> JoinResponse {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let is_leader = self.leader.as_deref() == Some(member_id);
        let members = if is_leader {
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    metadata: m.metadata(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            generation: self.generation,
            protocol_type: self.protocol_type().to_owned(),
            protocol_name: protocol,
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_owned(),
            members,
            skip_assignment: false,
        }
    }
}
