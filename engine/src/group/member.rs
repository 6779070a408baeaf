//! Group members and the requests and answers of the rebalance protocol.
//!
//! The request types are plain data so that any front end (the Kafka server, the gRPC gateway)
//! can fill them in; the coordinator validates them.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::limits::REBALANCE_TIMEOUT_MAX;

/// One assignment protocol a member supports, with its opaque metadata (for the Kafka consumer:
/// the subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// Protocol name, such as `range` or `cooperative-sticky`.
    pub name: String,
    /// Opaque metadata handed to the leader.
    pub metadata: Bytes,
}

/// A member's wish to join (or rejoin) a group.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The group.
    pub group_id: String,
    /// The member's id; empty for a first join.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// KIP-394: a first join without a member id is answered with
    /// [`super::GroupError::MemberIdRequired`] (Kafka JoinGroup v4+).
    pub require_known_member_id: bool,
    /// The client's id, shown by DescribeGroups.
    pub client_id: String,
    /// The client's host, shown by DescribeGroups.
    pub client_host: String,
    /// The member is removed when no heartbeat arrives for this long.
    pub session_timeout: Duration,
    /// How long a rebalance waits for this member to rejoin.
    pub rebalance_timeout: Duration,
    /// Protocol type, `consumer` for Kafka consumers.
    pub protocol_type: String,
    /// Supported protocols in order of preference.
    pub protocols: Vec<Protocol>,
}

/// A member as the leader sees it in its join answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The member's metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// The answer to a completed join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    /// The new generation.
    pub generation: i32,
    /// The group's protocol type.
    pub protocol_type: String,
    /// The protocol chosen for this generation.
    pub protocol_name: String,
    /// The leader's member id.
    pub leader: String,
    /// The receiver's member id.
    pub member_id: String,
    /// Every member with its metadata when the receiver is the leader; empty otherwise.
    pub members: Vec<JoinedMember>,
    /// The leader need not assign: the generation's assignments stand (a static leader that
    /// restarted into a stable group; JoinGroup v9's `skip_assignment`).
    pub skip_assignment: bool,
}

/// A member's request for its assignment; the leader's carries everyone's.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// The group.
    pub group_id: String,
    /// The generation the member joined.
    pub generation: i32,
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// Protocol type, checked when given (Kafka SyncGroup v5+).
    pub protocol_type: Option<String>,
    /// Protocol name, checked when given (Kafka SyncGroup v5+).
    pub protocol_name: Option<String>,
    /// `(member id, assignment)` from the leader; empty from followers.
    pub assignments: Vec<(String, Bytes)>,
}

/// The answer to a sync: the member's assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    /// The group's protocol type.
    pub protocol_type: String,
    /// The generation's protocol.
    pub protocol_name: String,
    /// This member's assignment, opaque to the coordinator.
    pub assignment: Bytes,
}

/// A member's proof of life.
#[derive(Debug, Clone)]
pub struct HeartbeatRequest {
    /// The group.
    pub group_id: String,
    /// The member's generation.
    pub generation: i32,
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
}

/// Who is leaving a group: a member id, a static instance id, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberIdentity {
    /// Member id; may be empty when the instance id is given.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
}

/// One member as described by DescribeGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The client's id.
    pub client_id: String,
    /// The client's host.
    pub client_host: String,
    /// Metadata for the current protocol (empty unless the group is stable).
    pub metadata: Bytes,
    /// The member's assignment (empty unless the group is stable).
    pub assignment: Bytes,
}

/// A member inside the coordinator.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) session_timeout: Duration,
    pub(crate) rebalance_timeout: Duration,
    pub(crate) protocols: Vec<Protocol>,
    pub(crate) assignment: Bytes,
    /// Last heartbeat, join or sync; the session expires `session_timeout` after it.
    pub(crate) last_seen: Instant,
    /// The member has joined during the current rebalance and awaits the join answer.
    pub(crate) awaiting_join: bool,
    /// The member has sent SyncGroup and awaits the leader's assignment.
    pub(crate) awaiting_sync: bool,
}

impl Member {
    pub(crate) fn new(id: String, req: &JoinRequest, now: Instant) -> Member {
        Member {
            id,
            instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout: req.session_timeout,
            rebalance_timeout: req.rebalance_timeout.min(REBALANCE_TIMEOUT_MAX),
            protocols: owned(&req.protocols),
            assignment: Bytes::new(),
            last_seen: now,
            awaiting_join: false,
            awaiting_sync: false,
        }
    }

    /// Takes the settings of a rejoin.
    pub(crate) fn update(&mut self, req: &JoinRequest, now: Instant) {
        self.client_id.clone_from(&req.client_id);
        self.client_host.clone_from(&req.client_host);
        self.session_timeout = req.session_timeout;
        self.rebalance_timeout = req.rebalance_timeout.min(REBALANCE_TIMEOUT_MAX);
        self.protocols = owned(&req.protocols);
        self.last_seen = now;
    }

    /// The member's metadata for `protocol`, empty if it does not support it.
    pub(crate) fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    pub(crate) fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }

    pub(crate) fn session_expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_seen) >= self.session_timeout
    }
}

/// The protocols with their metadata copied out of the request frame it arrived in, so that a
/// member kept for hours does not keep the whole frame alive.
fn owned(protocols: &[Protocol]) -> Vec<Protocol> {
    protocols
        .iter()
        .map(|p| Protocol {
            name: p.name.clone(),
            metadata: Bytes::copy_from_slice(&p.metadata),
        })
        .collect()
}
