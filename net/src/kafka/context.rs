//! What every Kafka API handler is given besides its request body.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use spindle_engine::access::{Operation, Principal};
use spindle_engine::{AnswerReservation, Shard};

use crate::kafka::fetch_session::FetchSessionSlot;
use crate::kafka::quota::{self, Muted, QuotaKind, ShardQuotas};
use crate::kafka::KafkaConfig;

/// What the requests of one connection share: its fetch session, its hold after a throttled
/// answer, and the shard's quota buckets.
#[derive(Clone)]
pub(crate) struct ConnectionState {
    /// The connection's fetch session (KIP-227), if it has one.
    pub fetch_session: FetchSessionSlot,
    /// Until when the connection is not read, after an answer over a quota.
    pub muted: Muted,
    /// The shard's quota buckets.
    pub quotas: Rc<ShardQuotas>,
}

/// The message of an answer refusing a group the principal may not use.
pub(crate) const GROUP_REFUSED: &str = "the principal may not use this group";

/// The context of one decoded request: the shard serving the connection and the request header's
/// facts. Each file under `api/` exposes
/// `pub(crate) async fn handle(ctx: &RequestContext, req: XRequest) -> XResponse`
/// and maps engine errors to Kafka error codes inside the response.
pub(crate) struct RequestContext {
    /// The shard that owns this connection.
    pub shard: Shard,
    /// The request's API version (responses are encoded at the same version by the connection).
    pub api_version: i16,
    /// The request header's correlation id.
    pub correlation_id: i32,
    /// The request header's client id.
    pub client_id: Option<String>,
    /// The peer's address.
    pub peer: SocketAddr,
    /// This node's id, as advertised in Metadata and FindCoordinator.
    pub node_id: i32,
    /// The host advertised to clients.
    pub advertised_host: String,
    /// The port advertised to clients.
    pub advertised_port: i32,
    /// The server's configuration (topic defaults, auto-creation, cluster id).
    pub config: Arc<KafkaConfig>,
    /// Memory the answer holds until it is written (a Fetch's share of the shard's budget).
    pub answer_memory: RefCell<Option<AnswerReservation>>,
    /// Who sent the request (anonymous, allowed everything, without SASL).
    pub principal: Principal,
    /// What the connection's requests share.
    pub conn: ConnectionState,
}

impl RequestContext {
    /// Whether the request's principal may do `op` on `topic`; handlers answer
    /// TOPIC_AUTHORIZATION_FAILED for a topic it may not.
    pub fn allows(&self, op: Operation, topic: &str) -> bool {
        self.principal.allows(op, topic)
    }

    /// `Ok` if the principal may do `op` on `topic`, else TOPIC_AUTHORIZATION_FAILED.
    pub fn authorize(&self, op: Operation, topic: &str) -> Result<(), i16> {
        if self.allows(op, topic) {
            Ok(())
        } else {
            Err(ResponseError::TopicAuthorizationFailed.code())
        }
    }

    /// As [`RequestContext::authorize`], with a message naming the principal, the operation and
    /// the topic, for the answers that carry one.
    pub fn authorize_explained(&self, op: Operation, topic: &str) -> Result<(), (i16, String)> {
        self.authorize(op, topic).map_err(|code| {
            let who = self.principal.name();
            (
                code,
                format!("principal {who:?} may not {op} topic {topic:?}"),
            )
        })
    }

    /// `Ok` if the principal may act on the whole node (Kafka's operations on the cluster
    /// resource), which takes `admin` on every topic; else CLUSTER_AUTHORIZATION_FAILED with a
    /// message naming the principal and `what` it may not do.
    pub fn authorize_cluster(&self, what: &str) -> Result<(), (i16, String)> {
        if self.principal.allows_everywhere(Operation::Admin) {
            return Ok(());
        }
        let who = self.principal.name();
        Err((
            ResponseError::ClusterAuthorizationFailed.code(),
            format!("principal {who:?} may not {what}: it needs admin on every topic"),
        ))
    }

    /// `Ok` if the principal may use transactional id `id` (Kafka's WRITE and DESCRIBE on the
    /// TRANSACTIONAL_ID resource), else TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
    pub fn authorize_transactional_id(&self, id: &str) -> Result<(), i16> {
        if self.principal.may_use_transactional_id(id) {
            return Ok(());
        }
        tracing::debug!(peer = %self.peer, principal = self.principal.name(), id, "transactional id refused");
        Err(ResponseError::TransactionalIdAuthorizationFailed.code())
    }

    /// `Ok` if the principal may use consumer group `group` (Kafka's READ and DESCRIBE on the
    /// GROUP resource), else GROUP_AUTHORIZATION_FAILED (for the answers that carry a message:
    /// [`GROUP_REFUSED`]).
    pub fn authorize_group(&self, group: &str) -> Result<(), i16> {
        if self.principal.may_use_group(group) {
            return Ok(());
        }
        tracing::debug!(peer = %self.peer, principal = self.principal.name(), group, "group refused");
        Err(ResponseError::GroupAuthorizationFailed.code())
    }

    /// Whether the principal may see `topic` at all (list and describe it).
    pub fn sees(&self, topic: &str) -> bool {
        self.principal.allows_any(topic)
    }

    /// Charges `bytes` of `kind` to the client's quota, holds the connection back if that puts
    /// it over, and returns the answer's `throttle_time_ms`.
    pub fn charge_quota(&self, kind: QuotaKind, bytes: usize) -> i32 {
        let quotas = self.conn.quotas.in_force();
        if quotas.is_empty() {
            return 0;
        }
        let client = self.client_id.as_deref().unwrap_or_default();
        let throttle = self.conn.quotas.charge(
            &quotas,
            kind,
            (self.principal.name(), client),
            u64::try_from(bytes).unwrap_or(u64::MAX),
            Instant::now(),
        );
        self.conn.muted.hold_for(throttle);
        quota::throttle_ms(throttle)
    }

    /// Keeps `memory` charged until the answer has been written to the socket.
    pub fn hold_until_written(&self, memory: AnswerReservation) {
        *self.answer_memory.borrow_mut() = Some(memory);
    }
}
