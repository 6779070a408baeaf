//! A consumer-protocol group as its membership record holds it (the body after the record's
//! version and type, see `super::super::membership`):
//!
//! ```text
//!   i32  group epoch                  i32  assignment epoch
//!   u32  topic count, then for each: str topic, u32 partition count   (the partitions seen)
//!   u32  member count, then for each member, in member-id order:
//!     str  member id
//!     opt  instance id                str client id, str client host
//!     u32  topic count, then for each: str topic                    (subscribed by name)
//!     opt  pattern                    u32 topic count, then str each (what it matched)
//!     opt  server assignor            u32 rebalance timeout, ms
//!     i32  epoch                      i32 previous epoch
//!     asg  assigned                   asg revoking                asg target
//!     u8   1 for a member of the classic protocol, then: u32 session timeout, ms; u16 protocol
//!          count, then for each: str name, u32 metadata length, metadata; 0 otherwise
//! ```
//! (`str`: a u16 length and UTF-8; `opt`: u8 1 and a `str`, or u8 0; `asg`: u32 topic count,
//! then for each: str topic, u32 partition count, u32 partitions.)
//!
//! A restored member's session and any revocation start at the restore, its assignment is sent
//! again at its next heartbeat, and its pattern keeps what it matched until that heartbeat
//! names its principal (the engine keeps no credentials to look it up).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bytes::{BufMut, BytesMut};

use super::super::membership::RECORD_BYTES_MAX;
use super::super::record::{
    put_count, put_millis, put_opt_str16, put_protocols, put_str16, DecodeError, Reader,
};
use super::{Assignment, ClassicMember, ConsumerGroup, Member, SESSION_TIMEOUT};
use crate::NamePattern;

impl ConsumerGroup {
    /// Appends the group's body to `buf`; `None` (and `buf` left part-written) as soon as it
    /// passes the largest membership record.
    pub(in crate::group) fn encode_into(&self, buf: &mut BytesMut) -> Option<()> {
        buf.put_i32(self.epoch);
        buf.put_i32(self.assignment_epoch);
        put_count(buf, self.topics_seen.len());
        for (topic, partitions) in &self.topics_seen {
            put_str16(buf, topic);
            buf.put_u32(*partitions);
        }
        put_count(buf, self.members.len());
        for (id, member) in &self.members {
            put_str16(buf, id);
            put_opt_str16(buf, member.instance_id.as_deref());
            put_str16(buf, &member.client_id);
            put_str16(buf, &member.client_host);
            put_names(buf, &member.subscribed);
            put_opt_str16(buf, member.pattern.as_ref().map(NamePattern::as_str));
            put_names(buf, &member.matched);
            put_opt_str16(buf, member.assignor.as_deref());
            put_millis(buf, member.rebalance_timeout);
            buf.put_i32(member.epoch);
            buf.put_i32(member.previous_epoch);
            put_assignment(buf, &member.assigned);
            put_assignment(buf, &member.revoking);
            put_assignment(buf, self.target.get(id).unwrap_or(&Assignment::new()));
            match &member.classic {
                Some(classic) => {
                    buf.put_u8(1);
                    put_millis(buf, classic.session_timeout);
                    put_protocols(buf, &classic.protocols);
                }
                None => buf.put_u8(0),
            }
            if buf.len() > RECORD_BYTES_MAX {
                return None;
            }
        }
        Some(())
    }

    /// Reads a body written by [`ConsumerGroup::encode_into`]; sessions start at `now`.
    pub(in crate::group) fn decode_from(
        r: &mut Reader<'_>,
        now: Instant,
    ) -> Result<Self, DecodeError> {
        let mut group = ConsumerGroup {
            epoch: r.i32()?,
            assignment_epoch: r.i32()?,
            ..ConsumerGroup::default()
        };
        for _ in 0..r.u32()? {
            let topic = r.str16()?;
            group.topics_seen.insert(topic, r.u32()?);
        }
        for _ in 0..r.u32()? {
            let id = r.str16()?;
            let instance_id = r.opt_str16()?;
            let client_id = r.str16()?;
            let client_host = r.str16()?;
            let subscribed = names(r)?;
            // Compiled when it was stored; a build whose syntax refuses it drops the pattern.
            let pattern = r
                .opt_str16()?
                .and_then(|source| NamePattern::new(&source).ok());
            let matched = names(r)?;
            let assignor = r.opt_str16()?;
            let rebalance_timeout = r.millis()?;
            let epoch = r.i32()?;
            let previous_epoch = r.i32()?;
            let assigned = assignment(r)?;
            let revoking = assignment(r)?;
            let target = assignment(r)?;
            let classic = match r.u8()? {
                0 => None,
                _ => Some(ClassicMember {
                    session_timeout: r.millis()?,
                    protocols: r.protocols()?,
                }),
            };
            let session = classic
                .as_ref()
                .map_or(SESSION_TIMEOUT, |c| c.session_timeout);
            let revoke_deadline = (!revoking.is_empty()).then(|| now + rebalance_timeout);
            group.target.insert(id.clone(), target);
            group.members.insert(
                id,
                Member {
                    instance_id,
                    client_id,
                    client_host,
                    subscribed,
                    pattern,
                    matched,
                    principal: None,
                    assignor,
                    rebalance_timeout,
                    epoch,
                    previous_epoch,
                    assigned,
                    revoking,
                    session_deadline: now + session,
                    revoke_deadline,
                    sent: None,
                    classic,
                },
            );
        }
        Ok(group)
    }
}

fn put_names(buf: &mut BytesMut, names: &BTreeSet<String>) {
    put_count(buf, names.len());
    for name in names {
        put_str16(buf, name);
    }
}

fn names(r: &mut Reader<'_>) -> Result<BTreeSet<String>, DecodeError> {
    (0..r.u32()?).map(|_| r.str16()).collect()
}

fn put_assignment(buf: &mut BytesMut, assignment: &Assignment) {
    put_count(buf, assignment.len());
    for (topic, partitions) in assignment {
        put_str16(buf, topic);
        put_count(buf, partitions.len());
        for partition in partitions {
            buf.put_u32(*partition);
        }
    }
}

fn assignment(r: &mut Reader<'_>) -> Result<Assignment, DecodeError> {
    let mut assignment = BTreeMap::new();
    for _ in 0..r.u32()? {
        let topic = r.str16()?;
        let partitions: BTreeSet<u32> = (0..r.u32()?).map(|_| r.u32()).collect::<Result<_, _>>()?;
        assignment.insert(topic, partitions);
    }
    Ok(assignment)
}
