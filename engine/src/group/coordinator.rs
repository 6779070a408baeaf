//! [`GroupCoordinator`]: the groups one shard coordinates, their waiting requests, their timer
//! and their committed offsets.
//!
//! Group `g` is coordinated by the shard that owns its partition of the offsets topic
//! ([`crate::Shard::group_coordinator`]); every request about it runs there, so a group's
//! state is touched by one thread only and needs no lock. The state machine
//! ([`super::state`]) is pure; this layer gives it the clock, parks the requests it tells to
//! wait (a JoinGroup until the rebalance completes, a follower's SyncGroup until the leader's
//! assignment arrives) on one-shot channels, and delivers the answers it queues. A timer on the shard's background queue ticks every group
//! ([`super::limits::TICK_INTERVAL`]) to expire sessions and close rebalances whose deadline
//! passed.
//!
//! Committed offsets go to the group's partition of `__consumer_offsets` (one this shard owns)
//! before they are answered or visible (see [`super::record`] for the format), and groups'
//! membership after it changes (`super::membership`);
//! [`GroupCoordinator::recover`] replays this shard's partitions at start,
//! [`super::cleaning`] keeps them short, and [`super::expiry`] deletes the offsets of groups
//! gone for good.
//!
//! Trap: no `RefCell` borrow is held across an `.await`. Every await (an append, a waiting
//! request) happens after the state machine call returned and its borrow ended, so a second
//! request on the same shard can always take the borrow.
//!
//! What the coordinator tells of its groups (listing, describing, committed offsets read back)
//! is in `coordinator_describe.rs`; who may commit, and what a deletion may remove, in
//! `coordinator_offsets.rs`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::channel::oneshot;
use glommio::sync::Semaphore;

use super::cleaning::{CleaningSchedule, WRITE_GATE_UNITS};
use super::consumer_group::{
    ConsumerGroup, ConsumerHeartbeat, ConsumerHeartbeatAnswer, ConsumerTiming, MigrationPolicy,
    TopicCatalog,
};
use super::expiry::Expiry;
use super::limits::{NAME_BYTES_MAX, REBALANCE_TIMEOUT_MAX, TICK_INTERVAL};
use super::member::{
    HeartbeatRequest, JoinRequest, JoinResponse, MemberDescription, MemberIdentity, SyncRequest,
    SyncResponse,
};
use super::membership::MembershipLog;
use super::offsets::{CommittedOffset, OffsetStore};
use super::replay::Replayed;
use super::state::{Group, GroupState, JoinReply, Notice, SyncReply};
use super::{GroupError, OFFSETS_TOPIC};
use crate::{EngineConfig, Result, Shard, TopicPartition};

type Waiters<T> = RefCell<HashMap<(String, String), oneshot::Sender<Result<T, GroupError>>>>;

/// Which rebalance protocol a group runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupType {
    /// The classic protocol (JoinGroup, SyncGroup, Heartbeat); also groups that only store
    /// offsets.
    Classic,
    /// KIP-848's consumer protocol (ConsumerGroupHeartbeat).
    Consumer,
}

impl GroupType {
    /// The type's name in ListGroups.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupType::Classic => "classic",
            GroupType::Consumer => "consumer",
        }
    }
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// The protocol it runs.
    pub group_type: GroupType,
    /// Protocol type (`consumer`), empty for groups that only store offsets.
    pub protocol_type: String,
    /// Current state.
    pub state: GroupState,
}

/// A group as DescribeGroups reports it, with its committed offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// Current state; [`GroupState::Dead`] for a group that does not exist.
    pub state: GroupState,
    /// Protocol type, empty when unknown.
    pub protocol_type: String,
    /// The generation's protocol once Stable, else empty.
    pub protocol: String,
    /// Current generation (0 before the first rebalance).
    pub generation: i32,
    /// Members in member-id order.
    pub members: Vec<MemberDescription>,
    /// Committed offsets in topic-partition order.
    pub offsets: Vec<(TopicPartition, CommittedOffset)>,
}

/// An offset commit: who commits and what.
#[derive(Debug, Clone)]
pub struct OffsetCommit {
    /// The group.
    pub group_id: String,
    /// Who commits, which decides whether the group accepts the commit now.
    pub committer: Committer,
    /// The offsets. Their `commit_timestamp_ms` is replaced by the coordinator's clock.
    pub offsets: Vec<(TopicPartition, CommittedOffset)>,
}

/// Who commits offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committer {
    /// A member of the group's current generation: a Kafka consumer under group management.
    /// At generation -1 (a consumer between generations) it is taken, as an outsider's, while
    /// the group has no members.
    Member {
        /// The generation the member belongs to.
        generation: i32,
        /// The member's id.
        member_id: String,
        /// Its `group.instance.id`, if static.
        group_instance_id: Option<String>,
    },
    /// A commit from outside group management (Kafka's generation -1 with no member id): a
    /// consumer that assigns itself partitions, an offset-reset tool. As in Kafka, accepted
    /// only while the group has no members, whose own commits it would otherwise overwrite.
    Outsider,
    /// The gRPC gateway's Commit call, made for its group subscriptions by a call that carries
    /// no member id: accepted whatever the group's state.
    Gateway,
    /// A committed transaction's offsets (Kafka's TxnOffsetCommit, applied at the commit):
    /// accepted whatever the group's state, as the transaction's own fencing already decided.
    Transaction,
}

impl Committer {
    /// The committer a Kafka OffsetCommit names: generation -1 without a member or instance id
    /// is an outsider, anything else claims membership and is checked as such.
    pub fn from_kafka(generation: i32, member_id: &str, group_instance_id: Option<&str>) -> Self {
        if generation < 0 && member_id.is_empty() && group_instance_id.is_none() {
            return Self::Outsider;
        }
        Self::Member {
            generation,
            member_id: member_id.to_owned(),
            group_instance_id: group_instance_id.map(str::to_owned),
        }
    }
}

/// A consumer-protocol heartbeat sees the topics of the coordinator shard's metadata copy.
impl TopicCatalog for Shard {
    fn partitions(&self, topic: &str) -> Option<u32> {
        self.topic(topic).map(|t| t.partitions)
    }

    fn pattern_candidates(&self) -> Vec<String> {
        let topics = self.topics().into_iter();
        topics.filter(|t| !t.internal).map(|t| t.name).collect()
    }

    fn version(&self) -> u64 {
        self.metadata_version()
    }
}

/// The coordinator of the groups whose coordinator shard this is.
pub struct GroupCoordinator {
    /// How many partitions the offsets topic has (which one holds a group's commits).
    offsets_partitions: usize,
    pub(super) groups: RefCell<HashMap<String, Group>>,
    /// Groups of the consumer protocol (KIP-848), by id; a group id is in at most one of the
    /// two maps with members.
    pub(super) consumer_groups: RefCell<HashMap<String, ConsumerGroup>>,
    pub(super) offsets: RefCell<OffsetStore>,
    join_waiters: Waiters<JoinResponse>,
    sync_waiters: Waiters<SyncResponse>,
    /// Makes generated member ids unique within this run; `id_salt` across runs.
    member_seq: Cell<u64>,
    id_salt: u64,
    /// The initial rebalance delay of new groups.
    pub(super) initial_delay: Duration,
    /// The session timeout and heartbeat interval of consumer-protocol members.
    pub(super) consumer_timing: ConsumerTiming,
    /// Which way groups with members may move between the protocols.
    migration: MigrationPolicy,
    /// Every write to the offsets log holds a unit; a cleaning holds them all.
    pub(super) write_gate: Semaphore,
    /// Groups' membership records: which are to be written, what the log holds.
    pub(super) membership: RefCell<MembershipLog>,
    /// When the offsets partitions are next cleaned.
    pub(super) cleaning: RefCell<CleaningSchedule>,
    /// Which groups' committed offsets expire, and when the coordinator last looked.
    pub(super) expiry: RefCell<Expiry>,
}

impl GroupCoordinator {
    /// Rebuilds this shard's groups and committed offsets from its partitions of the internal
    /// offsets topic. Called once per shard at start, after its partitions are open and before
    /// any service starts. Also starts the coordinator's timer on the shard's background queue;
    /// it ends when the engine stops.
    ///
    /// # Errors
    /// I/O reading the offsets log.
    pub async fn recover(shard: &Shard) -> Result<Rc<GroupCoordinator>> {
        let placement = shard
            .state()
            .metadata
            .borrow()
            .topics
            .get(OFFSETS_TOPIC)
            .map(|t| t.placement.clone())
            .unwrap_or_default();
        let mut replayed = Replayed::default();
        let mut owned = Vec::new();
        for (p, owner) in placement.iter().enumerate() {
            if *owner == shard.id() {
                let tp = TopicPartition::new(OFFSETS_TOPIC, p as u32);
                super::replay::replay(shard, &tp, &mut replayed).await?;
                owned.push(tp);
            }
        }
        let coordinator = Rc::new(GroupCoordinator::new(
            placement.len(),
            replayed,
            shard.id().0,
            &shard.state().config,
        ));
        coordinator.restore_groups();
        coordinator.schedule_after_replay(&owned);
        start_timer(shard, Rc::downgrade(&coordinator));
        Ok(coordinator)
    }

    /// A coordinator holding what replay found, with `config`'s group settings; its groups are
    /// not restored yet.
    fn new(
        offsets_partitions: usize,
        replayed: Replayed,
        shard_index: u32,
        config: &EngineConfig,
    ) -> Self {
        let salt = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        GroupCoordinator {
            offsets_partitions,
            groups: RefCell::new(HashMap::new()),
            consumer_groups: RefCell::new(HashMap::new()),
            offsets: RefCell::new(replayed.offsets),
            join_waiters: RefCell::new(HashMap::new()),
            sync_waiters: RefCell::new(HashMap::new()),
            member_seq: Cell::new(0),
            id_salt: salt ^ u64::from(shard_index).rotate_left(48),
            initial_delay: config
                .group_initial_rebalance_delay
                .min(REBALANCE_TIMEOUT_MAX),
            consumer_timing: config.group_consumer_timing,
            migration: config.group_consumer_migration_policy,
            write_gate: Semaphore::new(WRITE_GATE_UNITS),
            membership: RefCell::new(MembershipLog::replayed(replayed.memberships)),
            cleaning: RefCell::new(CleaningSchedule::default()),
            expiry: RefCell::new(Expiry::new(config.offsets_retention, Instant::now())),
        }
    }

    /// Joins (or rejoins) a group and waits until the rebalance completes.
    ///
    /// # Errors
    /// The JoinGroup answers of the protocol, e.g. [`GroupError::MemberIdRequired`] for a first
    /// join that must be retried with the id given, [`GroupError::UnknownMemberId`].
    ///
    /// In a group of the consumer protocol (one moving between protocols) the group answers at
    /// once from its own assignment, for which `topics` gives the subscribed topics' partition
    /// counts (see `consumer_group_classic.rs`).
    pub async fn join(
        &self,
        topics: &impl TopicCatalog,
        req: JoinRequest,
    ) -> Result<JoinResponse, GroupError> {
        check_name(&req.group_id)?;
        let fresh_id = self.fresh_member_id(&req.client_id);
        if let Some(joined) = self.with_consumer_group(&req.group_id, |g, now| {
            g.classic_join(now, &req, topics, || fresh_id.clone())
        }) {
            tracing::debug!(group = %req.group_id, member = %req.member_id, ?joined, "classic join to a consumer group");
            return joined;
        }
        let reply = {
            let mut groups = self.groups.borrow_mut();
            let group = groups
                .entry(req.group_id.clone())
                .or_insert_with(|| Group::new(&req.group_id, self.initial_delay));
            let reply = group.join(Instant::now(), &req, fresh_id);
            tracing::debug!(group = %req.group_id, member = %req.member_id, ?reply, state = ?group.state(), "join");
            let notices = self.after_call(&req.group_id, group);
            if reply.is_err() && group.is_vacant() && group.generation() == 0 {
                groups.remove(&req.group_id);
            }
            drop(groups);
            self.deliver(&req.group_id, notices);
            reply?
        };
        match reply {
            JoinReply::Done(response) => Ok(response),
            JoinReply::Wait(member_id) => {
                let rx = park(&self.join_waiters, &req.group_id, member_id);
                rx.await.unwrap_or(Err(GroupError::CoordinatorNotAvailable))
            }
        }
    }

    /// Sends a member's SyncGroup; a follower waits for the leader's assignment.
    ///
    /// # Errors
    /// [`GroupError::UnknownMemberId`], [`GroupError::IllegalGeneration`],
    /// [`GroupError::RebalanceInProgress`] (the member must rejoin).
    pub async fn sync(&self, req: SyncRequest) -> Result<SyncResponse, GroupError> {
        if let Some(synced) =
            self.with_consumer_group(&req.group_id, |g, now| g.classic_sync(now, &req))
        {
            return synced;
        }
        let reply = self.with_group(&req.group_id, |g, now| g.sync(now, &req));
        tracing::debug!(group = %req.group_id, member = %req.member_id, generation = req.generation, ?reply, "sync");
        let reply = reply?;
        match reply {
            SyncReply::Done(response) => Ok(response),
            SyncReply::Wait => {
                let rx = park(&self.sync_waiters, &req.group_id, req.member_id.clone());
                rx.await.unwrap_or(Err(GroupError::CoordinatorNotAvailable))
            }
        }
    }

    /// Records a member's heartbeat.
    ///
    /// # Errors
    /// [`GroupError::RebalanceInProgress`] while the group waits for members to rejoin,
    /// [`GroupError::UnknownMemberId`], [`GroupError::IllegalGeneration`].
    pub fn heartbeat(&self, req: &HeartbeatRequest) -> Result<(), GroupError> {
        let result = self
            .with_consumer_group(&req.group_id, |g, now| g.classic_heartbeat(now, req))
            .unwrap_or_else(|| self.with_group(&req.group_id, |g, now| g.heartbeat(now, req)));
        tracing::debug!(group = %req.group_id, member = %req.member_id, generation = req.generation, ?result, "heartbeat");
        result
    }

    /// Removes members from a group (each answered on its own) and rebalances the rest.
    ///
    /// # Errors
    /// [`GroupError::UnknownMemberId`] for the whole request when the group does not exist.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[MemberIdentity],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        if let Some(left) = self.with_consumer_group(group_id, |g, _| Ok(g.classic_leave(members)))
        {
            self.downgrade_if_only_classic(group_id);
            return left;
        }
        self.with_group(group_id, |g, now| Ok(g.leave(now, members)))
    }

    /// Runs one call on `group_id` if it is a consumer-protocol group with members (the classic
    /// requests of a group moving between protocols); `None` if it is not.
    fn with_consumer_group<T>(
        &self,
        group_id: &str,
        call: impl FnOnce(&mut ConsumerGroup, Instant) -> Result<T, GroupError>,
    ) -> Option<Result<T, GroupError>> {
        let mut groups = self.consumer_groups.borrow_mut();
        let group = groups.get_mut(group_id).filter(|g| g.has_members())?;
        let result = call(group, Instant::now());
        self.note_if_changed(group_id, group.take_changed());
        Some(result)
    }

    /// Turns a consumer-protocol group whose members are all of the classic protocol back into
    /// a classic group (Kafka's online downgrade), which then rebalances.
    fn downgrade_if_only_classic(&self, group_id: &str) {
        if !self.migration.allows_downgrade() {
            return;
        }
        let mut consumer_groups = self.consumer_groups.borrow_mut();
        let Some(group) = consumer_groups.get(group_id) else {
            return;
        };
        if !group.has_only_classic_members() {
            return;
        }
        let classic = group.to_classic(group_id, Instant::now(), self.initial_delay);
        consumer_groups.remove(group_id);
        drop(consumer_groups);
        self.groups
            .borrow_mut()
            .insert(group_id.to_owned(), classic);
        self.membership.borrow_mut().note_changed(group_id);
        tracing::info!(group = %group_id, "only members of the classic protocol are left: the group runs the classic protocol again");
    }

    /// Turns a classic group of Kafka consumers with members into a consumer-protocol group
    /// (Kafka's online upgrade), for the first consumer-protocol member to join it. Requests
    /// of its members waiting in a join or a sync are told to rejoin.
    fn upgrade(&self, topics: &impl TopicCatalog, group_id: &str) -> Result<(), GroupError> {
        let now = Instant::now();
        let converted = match self.groups.borrow().get(group_id) {
            Some(group) => ConsumerGroup::from_classic(group, now, topics)?
                .with_timing(self.consumer_timing, now),
            None => return Ok(()),
        };
        self.groups.borrow_mut().remove(group_id);
        tell_rejoin(&self.join_waiters, group_id);
        tell_rejoin(&self.sync_waiters, group_id);
        self.consumer_groups
            .borrow_mut()
            .insert(group_id.to_owned(), converted);
        self.membership.borrow_mut().note_changed(group_id);
        tracing::info!(group = %group_id, "a member of the consumer protocol joined: the classic group runs the consumer protocol now");
        Ok(())
    }

    /// Handles a ConsumerGroupHeartbeat (KIP-848): joins, leaves, or moves the member towards
    /// its share of the group's partitions (see [`super::consumer_group`]). `shard` gives the
    /// subscribed topics' partition counts.
    ///
    /// A joining heartbeat for a classic group of Kafka consumers with members converts it
    /// (the online upgrade, see `consumer_group_classic.rs`); a leave that leaves only classic
    /// members converts it back.
    ///
    /// # Errors
    /// [`GroupError::GroupIdNotFound`] for a classic group with members that cannot move (not
    /// Kafka consumers), or for a heartbeat other than a join;
    /// [`GroupError::UpgradeDisabled`] for a join to a classic group with members that the
    /// migration policy keeps classic; as [`ConsumerGroup::heartbeat`].
    pub fn consumer_heartbeat(
        &self,
        topics: &impl TopicCatalog,
        req: ConsumerHeartbeat,
    ) -> Result<ConsumerHeartbeatAnswer, GroupError> {
        check_name(&req.group_id)?;
        if self
            .groups
            .borrow()
            .get(&req.group_id)
            .is_some_and(|g| !g.is_vacant())
        {
            // Only a member joining moves the group; any other heartbeat names a member that a
            // classic group does not have.
            if req.member_epoch != super::consumer_group::JOIN_EPOCH {
                return Err(GroupError::GroupIdNotFound);
            }
            if !self.migration.allows_upgrade() {
                return Err(GroupError::UpgradeDisabled(req.group_id));
            }
            self.upgrade(topics, &req.group_id)?;
        }
        let group_id = req.group_id.clone();
        let client_id = req.client_id.clone();
        let (member_id, epoch) = (req.member_id.clone(), req.member_epoch);
        let mut groups = self.consumer_groups.borrow_mut();
        let group = groups
            .entry(group_id.clone())
            .or_insert_with(|| ConsumerGroup::new(self.consumer_timing));
        let answer = group.heartbeat(Instant::now(), req, topics, || {
            self.fresh_member_id(&client_id)
        });
        tracing::debug!(group = %group_id, member = %member_id, epoch, ?answer, group_epoch = group.epoch(), "consumer heartbeat");
        self.note_if_changed(&group_id, group.take_changed());
        if !group.has_members() {
            groups.remove(&group_id);
        }
        drop(groups);
        self.downgrade_if_only_classic(&group_id);
        answer
    }

    /// Whether `group_id` is a consumer-protocol group with members.
    fn runs_consumer_protocol(&self, group_id: &str) -> bool {
        self.consumer_groups
            .borrow()
            .get(group_id)
            .is_some_and(ConsumerGroup::has_members)
    }

    /// Whether `group_id` has members, in either protocol.
    pub(super) fn has_members(&self, group_id: &str) -> bool {
        self.runs_consumer_protocol(group_id)
            || self
                .groups
                .borrow()
                .get(group_id)
                .is_some_and(|g| !g.is_vacant())
    }

    /// Runs one state-machine call on an existing group and delivers the answers it queued.
    fn with_group<T>(
        &self,
        group_id: &str,
        call: impl FnOnce(&mut Group, Instant) -> Result<T, GroupError>,
    ) -> Result<T, GroupError> {
        let mut groups = self.groups.borrow_mut();
        let group = groups
            .get_mut(group_id)
            .ok_or(GroupError::UnknownMemberId)?;
        let result = call(group, Instant::now());
        let notices = self.after_call(group_id, group);
        drop(groups);
        self.deliver(group_id, notices);
        result
    }

    /// Takes what a state-machine call on `group` left for others: the answers due to waiting
    /// members, and a note to write the group's membership record again if it changed.
    fn after_call(&self, group_id: &str, group: &mut Group) -> Vec<Notice> {
        self.note_if_changed(group_id, group.take_changed());
        group.take_notices()
    }

    /// Notes that `group_id`'s membership record is to be written again if it `changed`.
    fn note_if_changed(&self, group_id: &str, changed: bool) {
        if changed {
            self.membership.borrow_mut().note_changed(group_id);
        }
    }

    /// Hands queued answers to the requests waiting for them. A member whose request is gone
    /// (connection closed) simply has no waiter; its session will expire.
    fn deliver(&self, group_id: &str, notices: Vec<Notice>) {
        for notice in notices {
            tracing::debug!(group = %group_id, ?notice, "deliver");
            match notice {
                Notice::Join { member_id, result } => {
                    let key = (group_id.to_owned(), member_id);
                    if let Some(tx) = self.join_waiters.borrow_mut().remove(&key) {
                        // The receiver may be gone with its connection; nothing to tell then.
                        drop(tx.send(result));
                    }
                }
                Notice::Sync { member_id, result } => {
                    let key = (group_id.to_owned(), member_id);
                    if let Some(tx) = self.sync_waiters.borrow_mut().remove(&key) {
                        drop(tx.send(result));
                    }
                }
            }
        }
    }

    /// Advances every group's clock: expires sessions and overdue rebalances.
    pub(crate) fn tick(&self, now: Instant) {
        let mut due = Vec::new();
        for (id, group) in self.groups.borrow_mut().iter_mut() {
            group.tick(now);
            let notices = self.after_call(id, group);
            if !notices.is_empty() {
                due.push((id.clone(), notices));
            }
        }
        for (id, notices) in due {
            self.deliver(&id, notices);
        }
        let mut only_classic = Vec::new();
        self.consumer_groups.borrow_mut().retain(|id, group| {
            for member in group.tick(now) {
                tracing::info!(group = %id, member = %member, "consumer group member expired (no heartbeat within its session, or partitions not given up within its rebalance timeout)");
            }
            self.note_if_changed(id, group.take_changed());
            if group.has_only_classic_members() {
                only_classic.push(id.clone());
            }
            group.has_members()
        });
        for id in only_classic {
            self.downgrade_if_only_classic(&id);
        }
    }

    /// Generates a member id: the client id (as Kafka does, so logs show whose it is), a salt
    /// unique to this shard's run, and a sequence number.
    fn fresh_member_id(&self, client_id: &str) -> String {
        let seq = self.member_seq.get() + 1;
        self.member_seq.set(seq);
        let prefix: String = client_id.chars().take(64).collect();
        format!("{prefix}-{:016x}-{seq}", self.id_salt)
    }
}

/// Parks a request until its answer is delivered. A second request of the same member replaces
/// the first, which is told to rejoin.
fn park<T>(
    waiters: &Waiters<T>,
    group_id: &str,
    member_id: String,
) -> oneshot::Receiver<Result<T, GroupError>> {
    let (tx, rx) = oneshot::channel();
    let previous = waiters
        .borrow_mut()
        .insert((group_id.to_owned(), member_id), tx);
    if let Some(previous) = previous {
        drop(previous.send(Err(GroupError::RebalanceInProgress)));
    }
    rx
}

/// Tells every request of `group_id` waiting in `waiters` to rejoin.
fn tell_rejoin<T>(waiters: &Waiters<T>, group_id: &str) {
    let mut waiters = waiters.borrow_mut();
    let keys: Vec<(String, String)> = waiters
        .keys()
        .filter(|(group, _)| group == group_id)
        .cloned()
        .collect();
    let waiting: Vec<_> = keys.iter().filter_map(|key| waiters.remove(key)).collect();
    drop(waiters);
    for tx in waiting {
        // The receiver may be gone with its connection; nothing to tell then.
        drop(tx.send(Err(GroupError::RebalanceInProgress)));
    }
}

/// Refuses group ids the offsets format or Kafka would not accept.
pub(crate) fn check_name(group_id: &str) -> Result<(), GroupError> {
    if group_id.is_empty() || group_id.len() > NAME_BYTES_MAX {
        return Err(GroupError::InvalidGroupId);
    }
    Ok(())
}

/// Ticks the coordinator until the engine stops or the coordinator is dropped.
fn start_timer(shard: &Shard, coordinator: Weak<GroupCoordinator>) {
    let shard_for_task = shard.clone();
    shard.spawn_background(async move {
        let mut stopping = Box::pin(shard_for_task.stopping());
        loop {
            let stop = crate::event::or_after(&mut stopping, TICK_INTERVAL).await;
            let Some(coordinator) = coordinator.upgrade() else {
                break;
            };
            if stop {
                // Waiting requests are answered COORDINATOR_NOT_AVAILABLE as their senders drop.
                coordinator.join_waiters.borrow_mut().clear();
                coordinator.sync_waiters.borrow_mut().clear();
                // The shutdown waits for this writer before it closes the logs.
                coordinator.write_memberships_soon(&shard_for_task);
                break;
            }
            let now = Instant::now();
            coordinator.tick(now);
            coordinator.write_memberships_soon(&shard_for_task);
            if coordinator.expiry.borrow_mut().check_due(now) {
                coordinator.expire_offsets(&shard_for_task).await;
            }
        }
    });
}

#[path = "coordinator_describe.rs"]
mod describe;
#[path = "coordinator_offsets.rs"]
mod offsets;
#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
