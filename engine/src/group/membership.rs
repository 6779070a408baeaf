//! Groups' membership in the offsets log, so that a restart does not cost every group a
//! rebalance.
//!
//! Kafka keeps each group's metadata in `__consumer_offsets` beside its commits, and a
//! coordinator that loads it serves the members on as if nothing happened. Spindle does the
//! same: a record keyed by the group id (key version 2, see [`super::record`]) holds a classic
//! group's generation, protocol, leader and members with their subscriptions and assignments,
//! or a consumer-protocol group's epochs, members, subscriptions and assignments (see
//! `consumer_group_stored.rs`). After a restart a classic group is Stable at that generation
//! and a consumer-protocol group where it was, each member's session starting at the restart:
//! members that come back heartbeat on and keep their partitions (nothing consumed but not
//! committed is read again), a member that does not come back expires one session later and
//! the others rebalance.
//!
//! When: the state machines flag a change (`take_changed`). A classic group's is a generation
//! becoming Stable (the leader's assignment arrived), a static member taking over its
//! instance's slot, or the last member going; a consumer-protocol group's, any change of an
//! epoch, a member, a subscription or what a member owns, gives up or moves to. The coordinator
//! notes the group, and a writer on the shard's background queue appends the group's state *as
//! it is when written*: a burst of changes costs one record, and a later record always holds a
//! later state. A classic group found between join and sync is skipped, as the Stable that ends
//! its rebalance is written next; a group without members gets a tombstone (if it had a
//! record).
//!
//! The record is written after the answers, not before them: a crash before it lands leaves
//! an earlier state in the log. Members that moved on since are told ILLEGAL_GENERATION (or
//! fenced) and rejoin, which is what every restart cost before membership was kept.
//!
//! ```text
//! value, version 1:
//!   u16  value version = 1
//!   u8   protocol: 1 for a consumer-protocol group, followed by its body
//!        (consumer_group_stored.rs); 0 for a classic group, followed by:
//!   i32  generation
//!   str  protocol type, str protocol name, str leader
//!   u32  member count, then for each member, in member-id order:
//!     str  member id
//!     u8   1 if a static member, then str instance id; 0 if not
//!     str  client id, str client host
//!     u32  session timeout, ms          u32  rebalance timeout, ms
//!     u16  protocol count, then for each: str name, u32 metadata length, metadata
//!     u32  assignment length            assignment
//! ```
//! (`str`: a u16 length and that many bytes of UTF-8; all integers big-endian.)

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use super::consumer_group::ConsumerGroup;
use super::coordinator::GroupCoordinator;
use super::member::Member;
use super::record::{
    group_key, put_bytes32, put_count, put_millis, put_opt_str16, put_protocols, put_str16,
    DecodeError, Reader,
};
use super::state::{Group, GroupState};
use crate::{Record, Shard};

/// Version of the membership value.
const VALUE_VERSION_GROUP: u16 = 1;

/// A membership value larger than this is not written (a warning says so, and an earlier
/// record is deleted): the group then rebalances after a restart, as it would without one. Far below the offsets topic's
/// `max.message.bytes` of 1.5 MiB.
pub(super) const RECORD_BYTES_MAX: usize = 1 << 20;

/// The protocol byte of a classic group's record.
const PROTOCOL_CLASSIC: u8 = 0;
/// The protocol byte of a consumer-protocol group's record.
const PROTOCOL_CONSUMER: u8 = 1;

/// What a membership record holds.
#[derive(Debug)]
pub(crate) enum Stored {
    Classic(StoredGroup),
    Consumer(ConsumerGroup),
}

/// What a restart restores of a classic group.
#[derive(Debug, Clone)]
pub(crate) struct StoredGroup {
    pub(crate) generation: i32,
    pub(crate) protocol_type: String,
    pub(crate) protocol_name: String,
    pub(crate) leader: String,
    /// Each with its session starting when the record was read.
    pub(crate) members: Vec<Member>,
}

/// The coordinator's membership records: which groups changed, and what the log holds.
#[derive(Debug, Default)]
pub(super) struct MembershipLog {
    /// Groups whose record is to be written again.
    changed: BTreeSet<String>,
    /// Whether a writer is running.
    writing: bool,
    /// The value of each group's last record in the log (what a cleaning rewrites).
    pub(super) stored: HashMap<String, Bytes>,
}

impl MembershipLog {
    /// The log as replay left it: the last record of each group.
    pub(super) fn replayed(stored: HashMap<String, Bytes>) -> Self {
        Self {
            stored,
            ..Self::default()
        }
    }

    pub(super) fn note_changed(&mut self, group_id: &str) {
        self.changed.insert(group_id.to_owned());
    }
}

/// What the writer appends for a group.
enum Write {
    Record(Bytes),
    Tombstone,
}

impl GroupCoordinator {
    /// Starts a writer on the background queue if a group's record is to be written and none
    /// is running.
    pub(super) fn write_memberships_soon(self: &Rc<Self>, shard: &Shard) {
        {
            let mut log = self.membership.borrow_mut();
            if log.writing || log.changed.is_empty() {
                return;
            }
            log.writing = true;
        }
        let (coordinator, task_shard) = (self.clone(), shard.clone());
        shard.spawn_background(async move {
            coordinator.write_memberships(&task_shard).await;
            coordinator.membership.borrow_mut().writing = false;
        });
    }

    /// Writes the record of every group noted as changed, one at a time, until none is left.
    pub(super) async fn write_memberships(&self, shard: &Shard) {
        loop {
            let Some(group_id) = self.membership.borrow_mut().changed.pop_first() else {
                return;
            };
            let Ok(_writing) = self.write_gate.acquire_permit(1).await else {
                return; // the engine is stopping
            };
            let value = match self.membership_write(&group_id) {
                Some(Write::Record(value)) => Some(value),
                Some(Write::Tombstone) => None,
                None => continue,
            };
            let record = membership_record(&group_id, value.clone());
            let tp = self.offsets_tp(&group_id);
            match shard.append_internal_records(&tp, vec![record]).await {
                Ok(appended) => {
                    let stored = &mut self.membership.borrow_mut().stored;
                    match value {
                        Some(value) => stored.insert(group_id, value),
                        None => stored.remove(&group_id),
                    };
                    self.clean_if_due(shard, &tp, &appended);
                }
                Err(e) => {
                    tracing::warn!(group = %group_id, error = %e, "group membership not stored; a restart will rebalance the group");
                }
            }
        }
    }

    /// What to append for `group_id` now: its record (a classic group's while Stable), a
    /// tombstone once it has no members or is too large to store (if it has a record), nothing
    /// for a classic group between join and sync.
    fn membership_write(&self, group_id: &str) -> Option<Write> {
        let value = match self.consumer_groups.borrow().get(group_id) {
            Some(group) if group.has_members() => Some(encode_consumer(group)),
            _ => match self.groups.borrow().get(group_id) {
                Some(group) if group.state() == GroupState::Stable => Some(encode(group)),
                Some(group) if group.has_members() => return None,
                _ => None,
            },
        };
        match value {
            Some(Some(value)) => Some(Write::Record(value)),
            none_or_too_large => {
                if none_or_too_large.is_some() {
                    tracing::warn!(group = %group_id, limit = RECORD_BYTES_MAX, "group membership too large to store; a restart will rebalance the group");
                }
                // An earlier record must not bring an old state back after a restart.
                let stored = self.membership.borrow().stored.contains_key(group_id);
                stored.then_some(Write::Tombstone)
            }
        }
    }

    /// Brings back the groups of the records replay found (classic groups Stable, consumer-
    /// protocol groups as they were), each member's session starting now. A record that cannot
    /// be read is dropped with a warning: its group starts empty, as it would have without one.
    pub(super) fn restore_groups(&self) {
        let now = Instant::now();
        let mut log = self.membership.borrow_mut();
        let mut groups = self.groups.borrow_mut();
        let mut consumer_groups = self.consumer_groups.borrow_mut();
        log.stored.retain(|group_id, value| match decode(value, now) {
            Ok(Stored::Classic(stored)) => {
                groups.insert(
                    group_id.clone(),
                    Group::restore(group_id, self.initial_delay, stored),
                );
                true
            }
            Ok(Stored::Consumer(group)) => {
                let group = group.with_timing(self.consumer_timing, now);
                consumer_groups.insert(group_id.clone(), group);
                true
            }
            Err(e) => {
                tracing::warn!(group = %group_id, error = ?e, "group membership record unreadable; the group starts empty");
                false
            }
        });
        if !log.stored.is_empty() {
            tracing::info!(groups = log.stored.len(), "group memberships restored");
        }
    }
}

/// One membership record of the offsets log; `None` writes a tombstone.
pub(super) fn membership_record(group_id: &str, value: Option<Bytes>) -> Record {
    Record {
        key: Some(group_key(group_id)),
        value,
        headers: Vec::new(),
        timestamp_ms: Some(super::unix_ms()),
    }
}

/// Encodes a consumer-protocol group as a version-1 value; `None` once it passes
/// [`RECORD_BYTES_MAX`].
pub(crate) fn encode_consumer(group: &ConsumerGroup) -> Option<Bytes> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_u16(VALUE_VERSION_GROUP);
    buf.put_u8(PROTOCOL_CONSUMER);
    group.encode_into(&mut buf)?;
    Some(buf.freeze())
}

/// Encodes a Stable classic group's membership as a version-1 value; `None` as soon as it
/// passes [`RECORD_BYTES_MAX`] (members' subscriptions and assignments may each be up to 1 MiB,
/// and a group too large to store is not copied whole first).
pub(crate) fn encode(group: &Group) -> Option<Bytes> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_u16(VALUE_VERSION_GROUP);
    buf.put_u8(PROTOCOL_CLASSIC);
    buf.put_i32(group.generation());
    put_str16(&mut buf, group.protocol_type());
    put_str16(&mut buf, group.protocol_name().unwrap_or(""));
    put_str16(&mut buf, group.leader().unwrap_or(""));
    let members: Vec<&Member> = group.members().collect();
    put_count(&mut buf, members.len());
    for member in members {
        put_str16(&mut buf, &member.id);
        put_opt_str16(&mut buf, member.instance_id.as_deref());
        put_str16(&mut buf, &member.client_id);
        put_str16(&mut buf, &member.client_host);
        put_millis(&mut buf, member.session_timeout);
        put_millis(&mut buf, member.rebalance_timeout);
        put_protocols(&mut buf, &member.protocols);
        put_bytes32(&mut buf, &member.assignment);
        if buf.len() > RECORD_BYTES_MAX {
            return None;
        }
    }
    Some(buf.freeze())
}

/// Decodes a value written by [`encode`] or [`encode_consumer`]; every member's session starts
/// at `now`.
pub(crate) fn decode(bytes: &[u8], now: Instant) -> Result<Stored, DecodeError> {
    let mut r = Reader(bytes);
    let version = r.u16()?;
    if version != VALUE_VERSION_GROUP {
        return Err(DecodeError::UnknownVersion(version));
    }
    let stored = match r.u8()? {
        PROTOCOL_CLASSIC => Stored::Classic(decode_classic(&mut r, now)?),
        PROTOCOL_CONSUMER => Stored::Consumer(ConsumerGroup::decode_from(&mut r, now)?),
        other => return Err(DecodeError::UnknownVersion(u16::from(other))),
    };
    r.finish()?;
    Ok(stored)
}

fn decode_classic(r: &mut Reader<'_>, now: Instant) -> Result<StoredGroup, DecodeError> {
    let generation = r.i32()?;
    let protocol_type = r.str16()?;
    let protocol_name = r.str16()?;
    let leader = r.str16()?;
    let count = r.u32()?;
    let mut members = Vec::new();
    for _ in 0..count {
        let id = r.str16()?;
        let instance_id = r.opt_str16()?;
        let client_id = r.str16()?;
        let client_host = r.str16()?;
        let session_timeout = r.millis()?;
        let rebalance_timeout = r.millis()?;
        let protocols = r.protocols()?;
        let assignment = Bytes::copy_from_slice(r.bytes32()?);
        members.push(Member {
            id,
            instance_id,
            client_id,
            client_host,
            session_timeout,
            rebalance_timeout,
            protocols,
            assignment,
            last_seen: now,
            awaiting_join: false,
            awaiting_sync: false,
        });
    }
    Ok(StoredGroup {
        generation,
        protocol_type,
        protocol_name,
        leader,
        members,
    })
}
