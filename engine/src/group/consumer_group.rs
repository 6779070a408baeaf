//! Consumer groups of Kafka's consumer protocol (KIP-848, `group.protocol=consumer`): the
//! coordinator assigns the partitions, and each member learns its share from its heartbeats.
//!
//! The group has an *epoch*, bumped whenever what the assignment depends on changes: a member
//! joins, leaves or is expired, a subscription changes, a subscribed topic gains partitions.
//! When a heartbeat finds the group epoch ahead of the *target assignment*'s, the target is
//! computed again (see [`assign`]): each subscribed topic's partitions spread evenly over its
//! subscribers, each member keeping what it had as far as the balance allows.
//!
//! Each member then moves to its target one heartbeat at a time, so that no partition is ever
//! held by two members (Kafka's reconciliation):
//! 1. a member holding partitions outside its target is told to give them up (its assignment
//!    without them) and keeps its epoch; they stay *revoking* until a heartbeat reports that
//!    the member no longer owns them (or its rebalance timeout passes, which expires it);
//! 2. a member with nothing to give up takes the target's epoch and those of its target's
//!    partitions that no other member holds or is still revoking; the rest follow in later
//!    heartbeats, once their previous owner has let them go.
//!
//! A heartbeat carries the member's epoch: the current one, or the one before when the answer
//! that moved it on was lost (then the partitions it reports must be among those it was given);
//! any other is fenced (FENCED_MEMBER_EPOCH) and the member joins again at epoch 0. Offset
//! commits carry the epoch too and are refused STALE_MEMBER_EPOCH when it is not the member's.
//!
//! A member subscribes to topic names, to a regular expression (RE2 syntax, as Kafka's RE2J,
//! matched against whole topic names), or both. The expression is resolved on the coordinator
//! at every heartbeat against the topics that exist then, leaving out internal topics and those
//! the member's principal has no grant on: a topic created later that matches joins the
//! subscription at the next heartbeat, and the group epoch moves on as for any other change.
//!
//! The state is pure: calls take `now` and return answers. What a restart needs of it (epochs,
//! members with their subscriptions, what each owns, is giving up and moves to) goes to the
//! offsets log after each change (`super::membership`, encoded by `stored`), so members
//! heartbeat on after a restart; a member the coordinator does not know (the record did not
//! land before a crash, or it expired) is fenced and joins again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::limits::{MEMBERS_PER_GROUP_MAX, REBALANCE_TIMEOUT_MAX};
use super::member::MemberDescription;
use super::state::GroupState;
use super::GroupError;
use crate::access::Principal;
use crate::NamePattern;

#[path = "consumer_group_assignment.rs"]
mod assignment;
#[path = "consumer_group_classic.rs"]
mod classic;
#[path = "consumer_group_stored.rs"]
mod stored;

pub use assignment::assign;
use assignment::{as_lists, as_sets, difference, overlaps, within};
pub(crate) use classic::ClassicMember;

/// Partitions by topic name.
pub type Assignment = BTreeMap<String, BTreeSet<u32>>;

/// A member's session ends when no heartbeat arrives for this long, unless configured otherwise
/// (Kafka's `group.consumer.session.timeout.ms`).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(45);
/// How often members are asked to heartbeat, unless configured otherwise (Kafka's
/// `group.consumer.heartbeat.interval.ms`).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// The session timeout and heartbeat interval of a node's consumer-protocol groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerTiming {
    /// A member's session ends when no heartbeat arrives for this long.
    pub session_timeout: Duration,
    /// How often members are asked to heartbeat; shorter than the session timeout.
    pub heartbeat_interval: Duration,
}

impl Default for ConsumerTiming {
    fn default() -> Self {
        Self {
            session_timeout: SESSION_TIMEOUT,
            heartbeat_interval: HEARTBEAT_INTERVAL,
        }
    }
}

/// Which way a group with members may move between the classic and the consumer protocol
/// (Kafka's `group.consumer.migration.policy`; see `consumer_group_classic.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MigrationPolicy {
    /// Neither way: a consumer-protocol member cannot join a classic group with members, and
    /// a group that its last consumer-protocol member leaves keeps running the consumer
    /// protocol for its classic members.
    Disabled,
    /// Only from the classic protocol to the consumer protocol.
    Upgrade,
    /// Only back from the consumer protocol to the classic one.
    Downgrade,
    /// Both ways, Kafka 4's default.
    #[default]
    Bidirectional,
}

impl MigrationPolicy {
    /// The policies by their Kafka names.
    pub const NAMES: [(&'static str, MigrationPolicy); 4] = [
        ("disabled", MigrationPolicy::Disabled),
        ("upgrade", MigrationPolicy::Upgrade),
        ("downgrade", MigrationPolicy::Downgrade),
        ("bidirectional", MigrationPolicy::Bidirectional),
    ];

    /// The policy of a Kafka name (any case); `None` for another.
    pub fn parse(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|&(_, policy)| policy)
    }

    /// The policy's Kafka name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|&&(_, policy)| policy == self)
            .map_or("bidirectional", |&(name, _)| name)
    }

    /// Whether a classic group with members may move to the consumer protocol.
    pub fn allows_upgrade(self) -> bool {
        matches!(self, Self::Upgrade | Self::Bidirectional)
    }

    /// Whether a consumer-protocol group with only classic members left may move back.
    pub fn allows_downgrade(self) -> bool {
        matches!(self, Self::Downgrade | Self::Bidirectional)
    }
}

/// The server-side assignors a member may name; both get the assignment of [`assign`].
pub const ASSIGNORS: [&str; 2] = ["uniform", "range"];

/// The member epoch of a ConsumerGroupHeartbeat that joins.
pub const JOIN_EPOCH: i32 = 0;
/// The member epoch of a heartbeat that leaves the group.
pub const LEAVE_EPOCH: i32 = -1;
/// The member epoch of a static member's heartbeat that leaves for now: it keeps its partitions
/// until its session ends or its instance joins again.
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// What a heartbeat sees of the node's topics.
pub trait TopicCatalog {
    /// A topic's partition count; `None` for a topic that does not exist.
    fn partitions(&self, topic: &str) -> Option<u32>;
    /// Every topic a pattern may match: all but the internal ones.
    fn pattern_candidates(&self) -> Vec<String>;
    /// A number that changes whenever the topics do (patterns are matched again only then).
    fn version(&self) -> u64;
}

/// A consumer-protocol group as ConsumerGroupDescribe reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    /// Empty, Assigning, Reconciling or Stable.
    pub state: GroupState,
    /// The group epoch.
    pub epoch: i32,
    /// The epoch of the target assignment.
    pub assignment_epoch: i32,
    /// The server-side assignor in use: the one most members ask for, else the first of
    /// [`ASSIGNORS`].
    pub assignor: String,
    /// The members, in member-id order.
    pub members: Vec<ConsumerMemberDescription>,
}

/// One member of a consumer-protocol group, as ConsumerGroupDescribe reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMemberDescription {
    /// The member's id.
    pub member_id: String,
    /// Its `group.instance.id`, for a static member.
    pub instance_id: Option<String>,
    /// Its epoch.
    pub epoch: i32,
    /// The client id it connected with.
    pub client_id: String,
    /// The client's host.
    pub client_host: String,
    /// The topics it subscribes to by name.
    pub subscribed_topics: Vec<String>,
    /// The regular expression it subscribes to, if any.
    pub subscribed_pattern: Option<String>,
    /// The partitions it owns now.
    pub assignment: Assignment,
    /// The partitions it is moving to.
    pub target: Assignment,
}

/// One ConsumerGroupHeartbeat, as the coordinator needs it (topic ids already resolved).
#[derive(Debug, Clone, Default)]
pub struct ConsumerHeartbeat {
    /// The group.
    pub group_id: String,
    /// The member's id; empty when it lets the coordinator choose one (v0's first heartbeat).
    pub member_id: String,
    /// [`JOIN_EPOCH`], [`LEAVE_EPOCH`], [`STATIC_LEAVE_EPOCH`] or the member's epoch.
    pub member_epoch: i32,
    /// `group.instance.id`, shown by describe.
    pub instance_id: Option<String>,
    /// The client id and host, shown by describe.
    pub client_id: String,
    /// The client's host.
    pub client_host: String,
    /// How long the member may take to give partitions up; `None` when unchanged.
    pub rebalance_timeout: Option<Duration>,
    /// The topics subscribed to; `None` when unchanged.
    pub subscribed_topics: Option<Vec<String>>,
    /// The regular expression subscribed to: `None` when unchanged, `Some("")` for none.
    pub subscribed_pattern: Option<String>,
    /// Who sent it: a pattern matches only topics it has a grant on.
    pub principal: Principal,
    /// The assignor asked for; `None` for the coordinator's choice.
    pub server_assignor: Option<String>,
    /// The partitions the member owns now; `None` when unchanged.
    pub owned: Option<Assignment>,
}

/// What a heartbeat says of its member's pattern: `None` unchanged, `Some(None)` dropped,
/// `Some(Some(_))` the new one.
///
/// # Errors
/// [`GroupError::InvalidRegularExpression`] for a pattern that does not compile.
fn pattern_change(req: &ConsumerHeartbeat) -> Result<Option<Option<NamePattern>>, GroupError> {
    Ok(match req.subscribed_pattern.as_deref() {
        None => None,
        Some("") => Some(None),
        Some(source) => Some(Some(
            NamePattern::new(source).map_err(GroupError::InvalidRegularExpression)?,
        )),
    })
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerHeartbeatAnswer {
    /// The member's id (chosen by the coordinator when the heartbeat had none).
    pub member_id: String,
    /// The member's epoch now.
    pub member_epoch: i32,
    /// How long the member waits before its next heartbeat.
    pub heartbeat_interval: Duration,
    /// The partitions the member is to own now, when that changed since the last answer.
    pub assignment: Option<Assignment>,
}

#[derive(Debug, Clone)]
struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    subscribed: BTreeSet<String>,
    pattern: Option<NamePattern>,
    /// The topics `pattern` matched at the last heartbeat.
    matched: BTreeSet<String>,
    /// Whose grants limit what `pattern` matches; `None` from a restore until the member's
    /// next heartbeat says (the engine keeps no credentials).
    principal: Option<Principal>,
    assignor: Option<String>,
    rebalance_timeout: Duration,
    epoch: i32,
    previous_epoch: i32,
    /// What the member may own now.
    assigned: Assignment,
    /// What it was told to give up and has not reported given up yet.
    revoking: Assignment,
    session_deadline: Instant,
    revoke_deadline: Option<Instant>,
    /// The assignment last sent to it.
    sent: Option<Assignment>,
    /// Set for a member of the classic protocol (see `consumer_group_classic.rs`).
    classic: Option<ClassicMember>,
}

impl Member {
    /// A member at [`JOIN_EPOCH`] that owns nothing, subscribes to nothing yet and whose session
    /// ends at `session_deadline`.
    fn joining(session_deadline: Instant) -> Self {
        Member {
            instance_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed: BTreeSet::new(),
            pattern: None,
            matched: BTreeSet::new(),
            principal: None,
            assignor: None,
            rebalance_timeout: REBALANCE_TIMEOUT_MAX,
            epoch: JOIN_EPOCH,
            previous_epoch: JOIN_EPOCH,
            assigned: Assignment::new(),
            revoking: Assignment::new(),
            session_deadline,
            revoke_deadline: None,
            sent: None,
            classic: None,
        }
    }

    /// The topics subscribed to, by name or by pattern.
    fn subscription(&self) -> BTreeSet<String> {
        self.subscribed.union(&self.matched).cloned().collect()
    }
}

/// One consumer group of the consumer protocol.
#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    epoch: i32,
    assignment_epoch: i32,
    members: BTreeMap<String, Member>,
    /// Each member's target at `assignment_epoch`.
    target: BTreeMap<String, Assignment>,
    /// The partition count of every subscribed topic when the target was computed.
    topics_seen: BTreeMap<String, u32>,
    /// The topics' version the members' patterns were last matched against; `None` when a
    /// pattern changed since.
    patterns_matched_at: Option<u64>,
    /// What a restart restores of the group changed (see [`ConsumerGroup::take_changed`]).
    changed: bool,
    /// Its members' session timeout and heartbeat interval.
    timing: ConsumerTiming,
}

impl ConsumerGroup {
    /// An empty group whose members have `timing`'s session and heartbeat interval.
    pub fn new(timing: ConsumerTiming) -> Self {
        Self {
            timing,
            ..Self::default()
        }
    }

    /// The group with `timing`'s session and heartbeat interval (a group read back from its
    /// record), each consumer-protocol member's session starting again at `now`.
    pub(crate) fn with_timing(mut self, timing: ConsumerTiming, now: Instant) -> Self {
        self.timing = timing;
        for member in self.members.values_mut().filter(|m| m.classic.is_none()) {
            member.session_deadline = now + timing.session_timeout;
        }
        self
    }

    /// Whether the group has members.
    pub fn has_members(&self) -> bool {
        !self.members.is_empty()
    }

    /// The group's state by Kafka's consumer-group names: Empty, Assigning (the target is
    /// behind the group epoch), Reconciling (a member is not at its target yet) or Stable.
    pub fn state(&self) -> GroupState {
        if self.members.is_empty() {
            GroupState::Empty
        } else if self.assignment_epoch < self.epoch {
            GroupState::Assigning
        } else if self.members.iter().any(|(id, m)| {
            m.epoch != self.assignment_epoch
                || !m.revoking.is_empty()
                || self.target.get(id) != Some(&m.assigned)
        }) {
            GroupState::Reconciling
        } else {
            GroupState::Stable
        }
    }

    /// The group epoch.
    pub fn epoch(&self) -> i32 {
        self.epoch
    }

    /// The group for ConsumerGroupDescribe: epochs, assignor, and each member with its
    /// subscription, its partitions and its target.
    pub fn describe(&self) -> ConsumerGroupDescription {
        let mut asked: BTreeMap<&str, usize> = BTreeMap::new();
        for assignor in self.members.values().filter_map(|m| m.assignor.as_deref()) {
            *asked.entry(assignor).or_default() += 1;
        }
        let assignor = asked
            .into_iter()
            .max_by_key(|&(name, count)| (count, std::cmp::Reverse(name)))
            .map_or(ASSIGNORS[0], |(name, _)| name);
        let members = self
            .members
            .iter()
            .map(|(id, m)| ConsumerMemberDescription {
                member_id: id.clone(),
                instance_id: m.instance_id.clone(),
                epoch: m.epoch,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed_topics: m.subscribed.iter().cloned().collect(),
                subscribed_pattern: m.pattern.as_ref().map(|p| p.as_str().to_owned()),
                assignment: m.assigned.clone(),
                target: self.target.get(id).cloned().unwrap_or_default(),
            });
        ConsumerGroupDescription {
            state: self.state(),
            epoch: self.epoch,
            assignment_epoch: self.assignment_epoch,
            assignor: assignor.to_owned(),
            members: members.collect(),
        }
    }

    /// Every member, for DescribeGroups: id, instance id, client, and its current assignment
    /// in the classic consumer protocol's format (what tools decode to show partitions).
    pub fn describe_members(&self) -> Vec<MemberDescription> {
        self.members
            .iter()
            .map(|(id, m)| MemberDescription {
                member_id: id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: Default::default(),
                assignment: super::consumer_protocol::assignment(&as_lists(&m.assigned)),
            })
            .collect()
    }

    /// The topics some member subscribes to, by name or by pattern.
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.subscribed.iter().chain(&m.matched).cloned())
            .collect()
    }

    /// Handles one heartbeat at `now`. `topics` gives the topics' partition counts and what a
    /// pattern may match; `fresh_id` names a member whose heartbeat has none.
    ///
    /// # Errors
    /// [`GroupError::UnknownMemberId`] for a member leaving that the group does not know,
    /// [`GroupError::FencedMemberEpoch`] for an epoch that is not the member's (or a member the
    /// group does not know, unless it leaves or joins in full),
    /// [`GroupError::UnsupportedAssignor`], [`GroupError::GroupMaxSizeReached`],
    /// [`GroupError::InvalidRegularExpression`] for a pattern that does not compile,
    /// [`GroupError::InvalidRequest`] for a join without a subscription (unless it names a
    /// member the group does not know: fenced, as above).
    pub fn heartbeat(
        &mut self,
        now: Instant,
        req: ConsumerHeartbeat,
        topics: &impl TopicCatalog,
        fresh_id: impl FnOnce() -> String,
    ) -> Result<ConsumerHeartbeatAnswer, GroupError> {
        if let Some(assignor) = &req.server_assignor {
            if !ASSIGNORS.contains(&assignor.as_str()) {
                return Err(GroupError::UnsupportedAssignor(assignor.clone()));
            }
        }
        let pattern = pattern_change(&req)?;
        // Clamped, as a classic join's: refused, it would be fatal to the consumer (librdkafka
        // sends its `max.poll.interval.ms`, which may be up to a day).
        let rebalance_timeout = req.rebalance_timeout.map(|t| t.min(REBALANCE_TIMEOUT_MAX));
        let member_id = match req.member_epoch {
            STATIC_LEAVE_EPOCH if self.pauses(now, &req.member_id) => {
                return Ok(ConsumerHeartbeatAnswer {
                    member_id: req.member_id,
                    member_epoch: STATIC_LEAVE_EPOCH,
                    heartbeat_interval: self.timing.heartbeat_interval,
                    assignment: None,
                });
            }
            LEAVE_EPOCH | STATIC_LEAVE_EPOCH => return self.leave(req),
            JOIN_EPOCH => self.join(now, &req, pattern.clone(), rebalance_timeout, fresh_id)?,
            epoch => self.check_epoch(&req, epoch)?,
        };
        let subscription_changed =
            self.update_member(now, &member_id, &req, pattern, rebalance_timeout);
        if let Some(owned) = &req.owned {
            self.release_revoked(&member_id, owned);
        }
        if subscription_changed {
            self.bump();
        }
        self.refresh_target(topics);
        let full = req.member_epoch == JOIN_EPOCH || req.owned.is_some();
        Ok(self.reconcile(now, &member_id, full))
    }

    /// A member leaving the group for good (or a static one whose instance has no member to
    /// pause: see [`Self::pauses`]).
    fn leave(&mut self, req: ConsumerHeartbeat) -> Result<ConsumerHeartbeatAnswer, GroupError> {
        if self.members.remove(&req.member_id).is_none() {
            return Err(GroupError::UnknownMemberId);
        }
        self.target.remove(&req.member_id);
        self.bump();
        Ok(ConsumerHeartbeatAnswer {
            member_id: req.member_id,
            member_epoch: req.member_epoch,
            heartbeat_interval: self.timing.heartbeat_interval,
            assignment: None,
        })
    }

    /// Checks the epoch of a known member's heartbeat: its current one, or the one before it
    /// resent with owned partitions it still may own (an answer lost on the way). Its id.
    fn check_epoch(&self, req: &ConsumerHeartbeat, epoch: i32) -> Result<String, GroupError> {
        // A member this coordinator does not know (forgotten in a restart, or expired) is
        // fenced rather than UNKNOWN_MEMBER_ID, as Kafka would say: librdkafka and the Java
        // client join again at epoch 0 after either, @platformatic/kafka only after this one
        // (it heartbeats on, unknown, forever after the other).
        let member = self
            .members
            .get(&req.member_id)
            .ok_or(GroupError::FencedMemberEpoch)?;
        let resent = epoch == member.previous_epoch
            && req
                .owned
                .as_ref()
                .is_some_and(|owned| within(owned, &member.assigned));
        if epoch != member.epoch && !resent {
            return Err(GroupError::FencedMemberEpoch);
        }
        Ok(req.member_id.clone())
    }

    /// Takes what a heartbeat says of its member: a new session, its principal (once, after a
    /// restore), rebalance timeout, subscription, pattern and assignor. Whether the member's
    /// subscription changed (which bumps the group epoch).
    fn update_member(
        &mut self,
        now: Instant,
        member_id: &str,
        req: &ConsumerHeartbeat,
        pattern: Option<Option<NamePattern>>,
        rebalance_timeout: Option<Duration>,
    ) -> bool {
        let Some(member) = self.members.get_mut(member_id) else {
            return false;
        };
        let mut changed = false;
        member.session_deadline = now + self.timing.session_timeout;
        if member.principal.is_none() {
            // Restored: its pattern is matched again under its own grants.
            member.principal = Some(req.principal.clone());
            if member.pattern.is_some() {
                self.patterns_matched_at = None;
            }
        }
        if let Some(timeout) = rebalance_timeout {
            self.changed |= member.rebalance_timeout != timeout;
            member.rebalance_timeout = timeout;
        }
        if let Some(topics) = &req.subscribed_topics {
            let topics: BTreeSet<String> = topics.iter().cloned().collect();
            if topics != member.subscribed {
                member.subscribed = topics;
                changed = true;
            }
        }
        if let Some(pattern) = pattern {
            if pattern != member.pattern {
                member.pattern = pattern;
                member.matched.clear();
                self.patterns_matched_at = None;
                changed = true;
            }
        }
        if req.server_assignor.is_some() {
            self.changed |= member.assignor != req.server_assignor;
            member.assignor.clone_from(&req.server_assignor);
        }
        changed
    }

    /// A static member leaving for now (KIP-345's restart, under this protocol): it stays, with
    /// its partitions, for one more session, in which its instance may join again under a new
    /// member id and carry on without a rebalance (see [`Self::join`]). Whether `member_id` is
    /// such a member.
    fn pauses(&mut self, now: Instant, member_id: &str) -> bool {
        match self.members.get_mut(member_id) {
            Some(member) if member.instance_id.is_some() => {
                member.session_deadline = now + self.timing.session_timeout;
                true
            }
            _ => false,
        }
    }

    /// Adds (or resets) the member of a joining heartbeat; its id.
    fn join(
        &mut self,
        now: Instant,
        req: &ConsumerHeartbeat,
        pattern: Option<Option<NamePattern>>,
        rebalance_timeout: Option<Duration>,
        fresh_id: impl FnOnce() -> String,
    ) -> Result<String, GroupError> {
        let pattern = pattern.flatten();
        if req.subscribed_topics.is_none() && pattern.is_none() {
            // librdkafka may rejoin under a member id this coordinator no longer knows (it
            // forgot its members in a restart) with a heartbeat that leaves out the subscription
            // it sent before, after an OffsetCommit refused the old epoch. Told it is fenced,
            // as below, it joins again in full; told the request is invalid it stops for good.
            if !req.member_id.is_empty() && !self.members.contains_key(&req.member_id) {
                return Err(GroupError::FencedMemberEpoch);
            }
            return Err(GroupError::InvalidRequest(
                "a joining heartbeat must name its subscribed topics or a pattern".to_owned(),
            ));
        }
        let member_id = if req.member_id.is_empty() {
            fresh_id()
        } else {
            req.member_id.clone()
        };
        // A static member restarting under a new member id takes its instance's place: the old
        // member goes and the new one carries on with its partitions, without a rebalance.
        let replaced = self.instance_holder(req.instance_id.as_deref(), &member_id);
        if replaced.is_none()
            && !self.members.contains_key(&member_id)
            && self.members.len() >= MEMBERS_PER_GROUP_MAX
        {
            return Err(GroupError::GroupMaxSizeReached);
        }
        // A member joining again starts afresh: what it held is released.
        self.target.remove(&member_id);
        let mut member = Member {
            instance_id: req.instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            subscribed: req.subscribed_topics.iter().flatten().cloned().collect(),
            pattern,
            principal: Some(req.principal.clone()),
            assignor: req.server_assignor.clone(),
            rebalance_timeout: rebalance_timeout.unwrap_or(REBALANCE_TIMEOUT_MAX),
            ..Member::joining(now + self.timing.session_timeout)
        };
        let unchanged = replaced.is_some_and(|old| self.take_over(&old, &member_id, &mut member));
        if member.pattern.is_some() && member.matched.is_empty() {
            self.patterns_matched_at = None;
        }
        self.members.insert(member_id.clone(), member);
        if !unchanged {
            self.bump();
        }
        self.changed = true;
        Ok(member_id)
    }

    /// The member other than `except` that holds static instance `instance`, if any.
    pub(super) fn instance_holder(&self, instance: Option<&str>, except: &str) -> Option<String> {
        let instance = instance?;
        self.members
            .iter()
            .find(|(id, m)| *id != except && m.instance_id.as_deref() == Some(instance))
            .map(|(id, _)| id.clone())
    }

    /// Lets `member`, joining as `member_id`, take the place of the member `old` of its static
    /// instance: `old` goes, and the new member carries on with its partitions, epochs and
    /// target. Whether its subscription is the old member's (so no rebalance is needed).
    fn take_over(&mut self, old: &str, member_id: &str, member: &mut Member) -> bool {
        let target = self.target.remove(old);
        let Some(old) = self.members.remove(old) else {
            return false;
        };
        let unchanged = old.subscribed == member.subscribed && old.pattern == member.pattern;
        if unchanged {
            member.matched = old.matched;
        }
        if let Some(target) = target {
            self.target.insert(member_id.to_owned(), target);
        }
        // What the old member was giving up is free: the new one never owned it.
        member.assigned = old.assigned;
        member.epoch = old.epoch;
        member.previous_epoch = old.previous_epoch;
        unchanged
    }

    fn bump(&mut self) {
        self.epoch = self.epoch.saturating_add(1);
        self.changed = true;
    }

    /// Whether what a restart restores of the group (epochs, members, subscriptions, targets
    /// and what each member owns or is giving up) changed since the last call.
    pub(crate) fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Matches every member's pattern against the topics there are now, when they or a pattern
    /// changed since the last time; whether some member's matches changed.
    fn resolve_patterns(&mut self, topics: &impl TopicCatalog) -> bool {
        let version = topics.version();
        if self.patterns_matched_at == Some(version)
            || self.members.values().all(|m| m.pattern.is_none())
        {
            return false;
        }
        self.patterns_matched_at = Some(version);
        let candidates = topics.pattern_candidates();
        let mut changed = false;
        for member in self.members.values_mut() {
            // A restored member keeps what it matched until its heartbeat names its principal.
            let (Some(pattern), Some(principal)) = (&member.pattern, &member.principal) else {
                continue;
            };
            let matched: BTreeSet<String> = candidates
                .iter()
                .filter(|t| pattern.matches(t) && principal.allows_any(t))
                .cloned()
                .collect();
            if matched != member.matched {
                member.matched = matched;
                changed = true;
            }
        }
        changed
    }

    /// Computes the target again when the group epoch moved past it, a pattern matches other
    /// topics, or a subscribed topic's partition count changed.
    fn refresh_target(&mut self, topics: &impl TopicCatalog) {
        if self.resolve_patterns(topics) {
            self.bump();
        }
        let seen: BTreeMap<String, u32> = self
            .subscribed_topics()
            .into_iter()
            .filter_map(|t| topics.partitions(&t).map(|n| (t, n)))
            .collect();
        if seen != self.topics_seen {
            self.topics_seen = seen;
            self.bump();
        }
        if self.assignment_epoch == self.epoch {
            return;
        }
        let subscriptions: BTreeMap<&str, BTreeSet<String>> = self
            .members
            .iter()
            .map(|(id, m)| (id.as_str(), m.subscription()))
            .collect();
        let subscriptions = subscriptions.iter().map(|(id, s)| (*id, s)).collect();
        self.target = assign(&subscriptions, &self.topics_seen, &self.target);
        self.assignment_epoch = self.epoch;
    }

    /// Moves `member_id` towards its target (see the module docs) and answers it; `full` sends
    /// the assignment even when unchanged.
    fn reconcile(&mut self, now: Instant, member_id: &str, full: bool) -> ConsumerHeartbeatAnswer {
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let held_by_others = self.held_by_others(member_id);
        let assignment_epoch = self.assignment_epoch;
        let Some(member) = self.members.get_mut(member_id) else {
            return ConsumerHeartbeatAnswer {
                member_id: member_id.to_owned(),
                member_epoch: LEAVE_EPOCH,
                heartbeat_interval: self.timing.heartbeat_interval,
                assignment: None,
            };
        };
        if member.revoking.is_empty() {
            let to_revoke = difference(&member.assigned, &target);
            if to_revoke.is_empty() {
                let assigned = difference(&target, &held_by_others);
                self.changed |= assigned != member.assigned;
                member.assigned = assigned;
                if member.epoch != assignment_epoch {
                    member.previous_epoch = member.epoch;
                    member.epoch = assignment_epoch;
                    self.changed = true;
                }
            } else {
                member.assigned = difference(&member.assigned, &to_revoke);
                member.revoking = to_revoke;
                member.revoke_deadline = Some(now + member.rebalance_timeout);
                self.changed = true;
            }
        }
        let assignment = (full || member.sent.as_ref() != Some(&member.assigned)).then(|| {
            member.sent = Some(member.assigned.clone());
            member.assigned.clone()
        });
        ConsumerHeartbeatAnswer {
            member_id: member_id.to_owned(),
            member_epoch: member.epoch,
            heartbeat_interval: self.timing.heartbeat_interval,
            assignment,
        }
    }

    /// What members other than `member_id` own or are still giving up.
    fn held_by_others(&self, member_id: &str) -> Assignment {
        let mut held = Assignment::new();
        let others = self
            .members
            .iter()
            .filter(|(id, _)| id.as_str() != member_id);
        for (_, m) in others {
            for (topic, partitions) in m.assigned.iter().chain(m.revoking.iter()) {
                held.entry(topic.clone())
                    .or_default()
                    .extend(partitions.iter().copied());
            }
        }
        held
    }

    /// A member reports owning `owned`: if that no longer holds what it was giving up, it is
    /// done giving it up.
    fn release_revoked(&mut self, member_id: &str, owned: &Assignment) {
        if let Some(member) = self.members.get_mut(member_id) {
            if !member.revoking.is_empty() && !overlaps(owned, &member.revoking) {
                member.revoking.clear();
                member.revoke_deadline = None;
                self.changed = true;
            }
        }
    }

    /// Expires members whose session or revocation deadline passed at `now`; their ids.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.session_deadline <= now || m.revoke_deadline.is_some_and(|d| d <= now)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.members.remove(id);
            self.target.remove(id);
        }
        if !expired.is_empty() {
            self.bump();
        }
        expired
    }

    /// Whether a commit of `member_id` at `epoch` is accepted: the member's current epoch, or
    /// the one before while its move to the current one may not have reached it (a classic
    /// member's generation must be its epoch).
    ///
    /// # Errors
    /// [`GroupError::UnknownMemberId`], [`GroupError::StaleMemberEpoch`],
    /// [`GroupError::IllegalGeneration`] for a classic member.
    pub fn check_commit(&self, member_id: &str, epoch: i32) -> Result<(), GroupError> {
        let member = self
            .members
            .get(member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        if member.classic.is_some() {
            return if epoch == member.epoch {
                Ok(())
            } else {
                Err(GroupError::IllegalGeneration)
            };
        }
        if epoch == member.epoch || epoch == member.previous_epoch {
            Ok(())
        } else {
            Err(GroupError::StaleMemberEpoch)
        }
    }
}

/// Topics by name with their partition counts, for tests.
#[cfg(test)]
impl TopicCatalog for BTreeMap<String, u32> {
    fn partitions(&self, topic: &str) -> Option<u32> {
        self.get(topic).copied()
    }

    fn pattern_candidates(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }

    fn version(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut hasher);
        hasher.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "t";

    fn parts(partitions: &[u32]) -> Assignment {
        if partitions.is_empty() {
            return Assignment::new();
        }
        [(TOPIC.to_owned(), partitions.iter().copied().collect())].into()
    }

    /// One topic, TOPIC, of four partitions.
    fn catalog() -> BTreeMap<String, u32> {
        [(TOPIC.to_owned(), 4)].into()
    }

    fn beat(id: &str, epoch: i32, owned: Option<&[u32]>) -> ConsumerHeartbeat {
        ConsumerHeartbeat {
            group_id: "g".to_owned(),
            member_id: id.to_owned(),
            member_epoch: epoch,
            subscribed_topics: (epoch == JOIN_EPOCH).then(|| vec![TOPIC.to_owned()]),
            owned: owned.map(parts),
            ..ConsumerHeartbeat::default()
        }
    }

    fn send(
        group: &mut ConsumerGroup,
        now: Instant,
        req: ConsumerHeartbeat,
    ) -> ConsumerHeartbeatAnswer {
        group
            .heartbeat(now, req, &catalog(), || "generated".to_owned())
            .expect("the heartbeat is accepted")
    }

    fn assigned(answer: &ConsumerHeartbeatAnswer) -> Vec<u32> {
        let assignment = answer.assignment.as_ref().expect("an assignment");
        assignment
            .get(TOPIC)
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_partition_moves_only_once_its_owner_gave_it_up() {
        let now = Instant::now();
        let mut group = ConsumerGroup::default();
        let a = send(&mut group, now, beat("a", JOIN_EPOCH, None));
        assert_eq!(assigned(&a), [0, 1, 2, 3]);
        assert_eq!(group.state(), GroupState::Stable);

        // b joins: its share (two partitions) is still a's, so it gets nothing yet.
        let b = send(&mut group, now, beat("b", JOIN_EPOCH, None));
        assert_eq!(assigned(&b), Vec::<u32>::new());
        assert!(b.member_epoch > a.member_epoch);
        assert_eq!(group.state(), GroupState::Reconciling);
        // a is told to keep two, at its old epoch until it reports the others given up.
        let a2 = send(
            &mut group,
            now,
            beat("a", a.member_epoch, Some(&[0, 1, 2, 3])),
        );
        assert_eq!(a2.member_epoch, a.member_epoch);
        let kept = assigned(&a2);
        assert_eq!(kept.len(), 2);
        let b2 = send(&mut group, now, beat("b", b.member_epoch, None));
        assert_eq!(
            b2.assignment, None,
            "nothing released yet, nothing new to say"
        );
        // a reports owning only what it kept: it moves to the new epoch and b gets the rest.
        let a3 = send(&mut group, now, beat("a", a.member_epoch, Some(&kept)));
        assert_eq!(a3.member_epoch, b.member_epoch);
        let b3 = send(&mut group, now, beat("b", b.member_epoch, None));
        let mut all = [kept.clone(), assigned(&b3)].concat();
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, 3], "each partition to exactly one member");
        assert_eq!(group.state(), GroupState::Stable);

        // a leaves: b takes everything at a new epoch.
        send(&mut group, now, beat("a", LEAVE_EPOCH, None));
        let b4 = send(
            &mut group,
            now,
            beat("b", b.member_epoch, Some(&assigned(&b3))),
        );
        assert_eq!(assigned(&b4), [0, 1, 2, 3]);
        assert!(b4.member_epoch > b.member_epoch);
    }

    #[test]
    fn epochs_are_checked_and_a_resent_heartbeat_may_carry_the_one_before() {
        let now = Instant::now();
        let mut group = ConsumerGroup::default();
        let a = send(&mut group, now, beat("a", JOIN_EPOCH, None));
        let refused = |group: &mut ConsumerGroup, req| {
            group
                .heartbeat(now, req, &catalog(), || "x".to_owned())
                .unwrap_err()
        };
        assert_eq!(
            refused(&mut group, beat("a", a.member_epoch + 7, None)),
            GroupError::FencedMemberEpoch
        );
        // A member the group does not know (forgotten in a restart) is fenced too.
        assert_eq!(
            refused(&mut group, beat("nobody", 3, None)),
            GroupError::FencedMemberEpoch
        );
        // b joins and a gives up half: a moves on; a heartbeat of a at the epoch before, whose
        // answer was lost, is still accepted when it owns no more than it was given.
        send(&mut group, now, beat("b", JOIN_EPOCH, None));
        let a2 = send(
            &mut group,
            now,
            beat("a", a.member_epoch, Some(&[0, 1, 2, 3])),
        );
        let kept = assigned(&a2);
        let a3 = send(&mut group, now, beat("a", a.member_epoch, Some(&kept)));
        assert!(a3.member_epoch > a.member_epoch);
        send(&mut group, now, beat("a", a.member_epoch, Some(&kept)));
        assert_eq!(
            refused(&mut group, beat("a", a.member_epoch, Some(&[0, 1, 2, 3]))),
            GroupError::FencedMemberEpoch,
            "the epoch before, owning what it gave up"
        );
        // Commits: the member's epoch or the one before.
        assert_eq!(group.check_commit("a", a3.member_epoch), Ok(()));
        assert_eq!(group.check_commit("a", a.member_epoch), Ok(()));
        assert_eq!(
            group.check_commit("a", a3.member_epoch + 1),
            Err(GroupError::StaleMemberEpoch)
        );
        assert_eq!(
            group.check_commit("b-unknown", 1),
            Err(GroupError::UnknownMemberId)
        );
        // An assignor the coordinator does not have.
        let mut odd = beat("c", JOIN_EPOCH, None);
        odd.server_assignor = Some("sticky".to_owned());
        assert!(matches!(
            refused(&mut group, odd),
            GroupError::UnsupportedAssignor(_)
        ));
    }

    #[test]
    fn a_join_without_a_subscription_is_invalid_unless_it_names_a_member_the_group_forgot() {
        let now = Instant::now();
        let mut group = ConsumerGroup::default();
        let bare = |id: &str| ConsumerHeartbeat {
            subscribed_topics: None,
            ..beat(id, JOIN_EPOCH, None)
        };
        let mut refused = |req| {
            group
                .heartbeat(now, req, &catalog(), || "x".to_owned())
                .unwrap_err()
        };
        // A member the coordinator forgot (in a restart) is fenced, and joins again in full.
        assert_eq!(refused(bare("forgotten")), GroupError::FencedMemberEpoch);
        // A first join, with no member id yet, has no such excuse.
        assert!(matches!(refused(bare("")), GroupError::InvalidRequest(_)));
        send(&mut group, now, beat("a", JOIN_EPOCH, None));
        assert!(matches!(
            group.heartbeat(now, bare("a"), &catalog(), || "x".to_owned()),
            Err(GroupError::InvalidRequest(_))
        ));
        let full = send(&mut group, now, beat("forgotten", JOIN_EPOCH, None));
        assert_eq!(full.member_id, "forgotten");
    }

    #[test]
    fn a_static_member_restarting_under_a_new_id_keeps_its_partitions() {
        let now = Instant::now();
        let mut group = ConsumerGroup::default();
        let statically = |id: &str| ConsumerHeartbeat {
            instance_id: Some("instance-1".to_owned()),
            ..beat(id, JOIN_EPOCH, None)
        };
        let first = send(&mut group, now, statically("first"));
        assert_eq!(assigned(&first), [0, 1, 2, 3]);
        let epoch = group.epoch();
        let restarted = send(&mut group, now, statically("second"));
        assert_eq!(assigned(&restarted), [0, 1, 2, 3]);
        assert_eq!(restarted.member_epoch, first.member_epoch);
        assert_eq!(group.epoch(), epoch, "no rebalance");
        assert_eq!(group.describe_members().len(), 1);
        assert_eq!(
            group.check_commit("first", first.member_epoch),
            Err(GroupError::UnknownMemberId),
            "the old instance is gone"
        );

        // Leaving for now (epoch -2) keeps the partitions for one more session: the instance
        // coming back under a new id has them again, without a rebalance.
        let paused = send(&mut group, now, beat("second", STATIC_LEAVE_EPOCH, None));
        assert_eq!(paused.member_epoch, STATIC_LEAVE_EPOCH);
        assert_eq!(group.epoch(), epoch, "no rebalance");
        let back = send(&mut group, now, statically("third"));
        assert_eq!(assigned(&back), [0, 1, 2, 3]);
        assert_eq!(group.epoch(), epoch);
        // Not back within the session: it is expired and its partitions go.
        send(&mut group, now, beat("third", STATIC_LEAVE_EPOCH, None));
        let later = now + Duration::from_secs(1);
        assert_eq!(group.tick(later + SESSION_TIMEOUT), ["third"]);
        // A dynamic member's -2 is a leave.
        send(&mut group, now, beat("d", JOIN_EPOCH, None));
        send(&mut group, now, beat("d", STATIC_LEAVE_EPOCH, None));
        assert!(!group.has_members());
    }

    /// The group as a restart reads it back from its membership record at `at`.
    fn stored_and_restored(group: &ConsumerGroup, at: Instant) -> ConsumerGroup {
        use crate::group::membership::{decode, encode_consumer, Stored};
        match decode(&encode_consumer(group).expect("small"), at) {
            Ok(Stored::Consumer(restored)) => restored,
            other => panic!("not restored as a consumer group: {other:?}"),
        }
    }

    #[test]
    fn a_stored_group_comes_back_mid_reconciliation_and_its_members_carry_on() {
        let now = Instant::now();
        let mut group = ConsumerGroup::default();
        let a = send(&mut group, now, beat("a", JOIN_EPOCH, None));
        let b = send(&mut group, now, beat("b", JOIN_EPOCH, None));
        // a is told to give two partitions up; the restart comes before it reports them gone.
        let a2 = send(
            &mut group,
            now,
            beat("a", a.member_epoch, Some(&[0, 1, 2, 3])),
        );
        let kept = assigned(&a2);
        let later = now + Duration::from_secs(60);
        let mut restored = stored_and_restored(&group, later);
        assert_eq!(restored.describe(), group.describe());
        assert_eq!(restored.state(), GroupState::Reconciling);
        assert!(!restored.take_changed());
        // Both heartbeat on at their epochs: a's report of what it gave up moves it on, and b
        // gets the rest, with no member joining again.
        let a3 = send(&mut restored, later, beat("a", a.member_epoch, Some(&kept)));
        assert_eq!(a3.member_epoch, b.member_epoch);
        let b3 = send(&mut restored, later, beat("b", b.member_epoch, None));
        let mut all = [kept, assigned(&b3)].concat();
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, 3]);
        assert_eq!(restored.state(), GroupState::Stable);
        assert_eq!(restored.epoch(), group.epoch(), "no rebalance");
        assert!(restored.take_changed());
        // A heartbeat that changes nothing stored is not a change.
        send(&mut restored, later, beat("b", b.member_epoch, None));
        assert!(!restored.take_changed());
        // Sessions count from the restore.
        assert!(restored
            .tick(later + SESSION_TIMEOUT - Duration::from_millis(1))
            .is_empty());
    }

    #[test]
    fn a_restored_pattern_keeps_its_topics_until_the_member_names_its_principal() {
        use crate::access::{Grant, Operation, TopicPattern};

        let now = Instant::now();
        let mut group = ConsumerGroup::default();
        let topics: BTreeMap<String, u32> = [("t-1".to_owned(), 1), ("t-2".to_owned(), 1)].into();
        // A principal that may read t-1 only: its pattern matches t-1 alone.
        let grants = vec![Grant {
            pattern: TopicPattern::Prefix("t-1".to_owned()),
            ops: vec![Operation::Read],
        }];
        let principal = Principal::new("narrow", grants);
        let join = ConsumerHeartbeat {
            group_id: "g".to_owned(),
            member_id: "a".to_owned(),
            member_epoch: JOIN_EPOCH,
            subscribed_pattern: Some("t-.*".to_owned()),
            principal: principal.clone(),
            ..ConsumerHeartbeat::default()
        };
        let joined = group
            .heartbeat(now, join, &topics, || "x".to_owned())
            .expect("joined");
        let mut restored = stored_and_restored(&group, now);
        assert_eq!(restored.describe(), group.describe());
        let subscribed =
            |group: &ConsumerGroup| group.subscribed_topics().into_iter().collect::<Vec<_>>();
        assert_eq!(subscribed(&restored), ["t-1"]);
        // Another member's heartbeat matches patterns again: a's keeps what it matched under
        // its own grants (the restore does not know them), not what anyone could read.
        restored
            .heartbeat(now, beat("b", JOIN_EPOCH, None), &topics, || "x".to_owned())
            .expect("joined");
        assert_eq!(subscribed(&restored), ["t", "t-1"]);
        // a's own heartbeat names its principal and carries on at its epoch.
        let next = ConsumerHeartbeat {
            owned: joined.assignment.clone(),
            principal,
            ..beat("a", joined.member_epoch, None)
        };
        let answer = restored
            .heartbeat(now, next, &topics, || "x".to_owned())
            .expect("accepted");
        assert_eq!(
            answer.member_epoch,
            restored.epoch(),
            "moved on with the group"
        );
        assert_eq!(subscribed(&restored), ["t", "t-1"]);
    }

    #[test]
    fn members_are_expired_after_their_session_or_revocation_deadline() {
        let now = Instant::now();
        let mut group = ConsumerGroup::default();
        let a = send(&mut group, now, beat("a", JOIN_EPOCH, None));
        send(&mut group, now, beat("b", JOIN_EPOCH, None));
        // a is asked to give two partitions up and never does.
        let mut slow = beat("a", a.member_epoch, Some(&[0, 1, 2, 3]));
        slow.rebalance_timeout = Some(Duration::from_secs(10));
        send(&mut group, now, slow);
        assert!(group.tick(now + Duration::from_secs(5)).is_empty());
        assert_eq!(group.tick(now + Duration::from_secs(11)), ["a"]);
        // b, heartbeating no more, goes at the end of its session.
        assert_eq!(group.tick(now + SESSION_TIMEOUT), ["b"]);
        assert!(!group.has_members());
    }

    #[test]
    fn a_rebalance_timeout_above_the_longest_is_clamped_not_refused() {
        let now = Instant::now();
        let mut group = ConsumerGroup::default();
        let mut day_long = beat("a", JOIN_EPOCH, None);
        day_long.rebalance_timeout = Some(Duration::from_secs(24 * 3600));
        let a = send(&mut group, now, day_long);
        let b = send(&mut group, now, beat("b", JOIN_EPOCH, None));
        // a is asked to give two partitions up and never does: it goes after the longest.
        send(
            &mut group,
            now,
            beat("a", a.member_epoch, Some(&[0, 1, 2, 3])),
        );
        let almost = now + REBALANCE_TIMEOUT_MAX - Duration::from_secs(1);
        let still_all = beat("a", a.member_epoch, Some(&[0, 1, 2, 3]));
        send(&mut group, almost, still_all);
        send(&mut group, almost, beat("b", b.member_epoch, None));
        assert!(group.tick(almost).is_empty());
        assert_eq!(group.tick(almost + Duration::from_secs(2)), ["a"]);
    }

    #[test]
    fn a_pattern_subscribes_to_the_whole_names_it_matches_as_topics_come_and_go() {
        use crate::access::{Grant, Operation, TopicPattern};

        let now = Instant::now();
        let mut group = ConsumerGroup::default();
        let mut topics: BTreeMap<String, u32> = [
            ("orders".to_owned(), 2),
            ("orders-eu".to_owned(), 1),
            ("orders-secret".to_owned(), 1),
            ("audit-orders".to_owned(), 3),
        ]
        .into();
        let grants = vec![
            Grant {
                pattern: TopicPattern::Prefix("orders".to_owned()),
                ops: vec![Operation::Read],
            },
            Grant {
                pattern: TopicPattern::Prefix("audit".to_owned()),
                ops: vec![Operation::Read],
            },
        ];
        let join = ConsumerHeartbeat {
            group_id: "g".to_owned(),
            member_id: "a".to_owned(),
            member_epoch: JOIN_EPOCH,
            subscribed_pattern: Some("orders(-eu|-us)?|orders-se.*".to_owned()),
            principal: Principal::new("app", grants.clone()),
            ..ConsumerHeartbeat::default()
        };
        let beat = |group: &mut ConsumerGroup, topics: &BTreeMap<String, u32>, req| {
            group.heartbeat(now, req, topics, || "x".to_owned())
        };
        let first = beat(&mut group, &topics, join.clone()).expect("joined");
        let names = |a: &ConsumerHeartbeatAnswer| -> Vec<String> {
            a.assignment
                .iter()
                .flat_map(|a| a.keys().cloned())
                .collect()
        };
        // Whole names only: "audit-orders" holds a match but is not one.
        assert_eq!(names(&first), ["orders", "orders-eu", "orders-secret"]);

        // A principal without a grant on a topic does not get it through a pattern.
        let mut other = ConsumerGroup::default();
        let narrow = Principal::new("narrow", vec![grants[0].clone()]);
        let mut b = ConsumerHeartbeat {
            subscribed_pattern: Some(".*".to_owned()),
            principal: narrow,
            ..join.clone()
        };
        let answer = beat(&mut other, &topics, b.clone()).expect("joined");
        assert_eq!(names(&answer), ["orders", "orders-eu", "orders-secret"]);

        // A topic created later that matches joins at the next heartbeat, at a new epoch.
        topics.insert("orders-us".to_owned(), 1);
        let epoch = group.epoch();
        let next = ConsumerHeartbeat {
            member_epoch: first.member_epoch,
            owned: first.assignment.clone(),
            subscribed_pattern: None,
            ..join.clone()
        };
        let second = beat(&mut group, &topics, next).expect("accepted");
        assert!(group.epoch() > epoch);
        assert_eq!(
            names(&second),
            ["orders", "orders-eu", "orders-secret", "orders-us"]
        );
        assert!(group.subscribed_topics().contains("orders-us"));

        // A pattern that does not compile is refused and changes nothing.
        b.subscribed_pattern = Some("orders(".to_owned());
        assert!(matches!(
            beat(&mut other, &topics, b),
            Err(GroupError::InvalidRegularExpression(_))
        ));
        assert_eq!(other.describe_members().len(), 1);
    }

    #[test]
    fn the_assignment_is_balanced_and_keeps_what_it_can() {
        let topics: BTreeSet<String> = [TOPIC.to_owned()].into();
        let subscriptions: BTreeMap<&str, &BTreeSet<String>> =
            [("a", &topics), ("b", &topics), ("c", &topics)].into();
        let counts: BTreeMap<String, u32> = [(TOPIC.to_owned(), 7)].into();
        let previous: BTreeMap<String, Assignment> =
            [("a".to_owned(), parts(&[0, 1, 2, 3, 4, 5, 6]))].into();
        let target = assign(&subscriptions, &counts, &previous);
        let sizes: Vec<usize> = target
            .values()
            .map(|a| a.get(TOPIC).map_or(0, BTreeSet::len))
            .collect();
        assert_eq!(sizes, [3, 2, 2]);
        assert_eq!(
            target["a"],
            parts(&[0, 1, 2]),
            "a keeps what it had, up to its share"
        );
        let mut every: Vec<u32> = target
            .values()
            .flat_map(|a| a.get(TOPIC).into_iter().flatten().copied())
            .collect();
        every.sort_unstable();
        assert_eq!(every, (0..7).collect::<Vec<_>>());
        // A member not subscribed to a topic gets none of it.
        let none = BTreeSet::new();
        let mixed: BTreeMap<&str, &BTreeSet<String>> = [("a", &topics), ("z", &none)].into();
        let target = assign(&mixed, &counts, &BTreeMap::new());
        assert_eq!(target["z"], Assignment::new());
        assert_eq!(target["a"], parts(&[0, 1, 2, 3, 4, 5, 6]));
    }
}
