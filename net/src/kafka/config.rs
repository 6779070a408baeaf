//! [`KafkaConfig`]: what the Kafka server on every shard is started with.

use std::net::SocketAddr;

use spindle_engine::TopicConfig;

use crate::kafka::quota::ClientQuota;
use crate::kafka::sasl::SaslConfig;
use crate::kafka::tls::TlsConfig;
use crate::limits::{
    DEFAULT_CONNECTIONS_MAX_IDLE_MS, DEFAULT_FETCH_MAX_BYTES, DEFAULT_FRAME_BODY_TIMEOUT_MS,
    DEFAULT_MAX_CONNECTIONS_PER_SHARD, DEFAULT_MAX_FRAME_BYTES, MAX_CONNECTIONS_MAX_IDLE_MS,
    MAX_FRAME_BODY_TIMEOUT_MS, MAX_FRAME_BYTES_CEILING, MIN_CONNECTIONS_MAX_IDLE_MS,
    MIN_FETCH_MAX_BYTES, MIN_FRAME_BODY_TIMEOUT_MS, MIN_FRAME_BYTES,
};
use crate::NetError;

/// The Kafka server's settings, shared read-only by every shard.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Address every shard listens on (SO_REUSEPORT); its port must be concrete, not 0 (see
    /// [`crate::kafka::reserve_listen_addr`]).
    pub listen: SocketAddr,
    /// Host advertised to clients in Metadata, FindCoordinator and DescribeCluster.
    pub advertised_host: String,
    /// Port advertised to clients.
    pub advertised_port: u16,
    /// This node's id.
    pub node_id: i32,
    /// The cluster id reported in Metadata and DescribeCluster.
    pub cluster_id: String,
    /// Largest request frame accepted; a larger length prefix closes the connection.
    pub max_frame_bytes: usize,
    /// How long a frame's body may take to arrive once its memory is reserved, beyond the time
    /// its bytes take at [`crate::limits::FRAME_BODY_MIN_BYTES_PER_SEC`]; a connection whose
    /// body is later is closed, so a stalled client cannot keep the shard's request memory.
    pub frame_body_timeout_ms: u64,
    /// How long a connection may go without sending a request before it is closed (Kafka's
    /// `connections.max.idle.ms`).
    pub connections_max_idle_ms: u64,
    /// Most bytes one Fetch answer carries, whatever the client asks (Kafka's broker setting
    /// `fetch.max.bytes`); the first batch is returned whole even if larger.
    pub fetch_max_bytes: usize,
    /// Connections one shard serves at once; more are accepted and closed with a warning.
    pub max_connections_per_shard: usize,
    /// Whether Metadata and Produce for an unknown topic create it.
    pub auto_create_topics: bool,
    /// Partition count of auto-created topics and of CreateTopics asking for the default (-1).
    pub default_partitions: u32,
    /// Configuration of topics created without one; also what DescribeConfigs reports as the
    /// default and what IncrementalAlterConfigs' DELETE restores.
    pub topic_defaults: TopicConfig,
    /// SASL authentication every connection must pass before it is served (`None`: none, and
    /// every connection may do everything).
    pub sasl: Option<SaslConfig>,
    /// TLS every connection begins with (`None`: plaintext).
    pub tls: Option<TlsConfig>,
    /// Client quotas (`[[kafka.quotas]]`): byte rates per principal and client id.
    pub quotas: Vec<ClientQuota>,
}

impl KafkaConfig {
    /// The principals and grants the listener authenticates clients against: SASL's, else those
    /// client certificates name; `None` when every client may do everything.
    pub(crate) fn credentials(&self) -> Option<&spindle_engine::access::Credentials> {
        match &self.sasl {
            Some(sasl) => Some(sasl.credentials()),
            None => self.tls.as_ref()?.principals(),
        }
    }

    /// A configuration listening (and advertising) on `listen` with every other setting at its
    /// default.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            advertised_host: listen.ip().to_string(),
            advertised_port: listen.port(),
            node_id: 0,
            cluster_id: "spindle".to_owned(),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            frame_body_timeout_ms: DEFAULT_FRAME_BODY_TIMEOUT_MS,
            connections_max_idle_ms: DEFAULT_CONNECTIONS_MAX_IDLE_MS,
            fetch_max_bytes: DEFAULT_FETCH_MAX_BYTES,
            max_connections_per_shard: DEFAULT_MAX_CONNECTIONS_PER_SHARD,
            auto_create_topics: true,
            default_partitions: 1,
            topic_defaults: TopicConfig::default(),
            sasl: None,
            tls: None,
            quotas: Vec::new(),
        }
    }

    /// Checks the settings that do not depend on the machine.
    ///
    /// # Errors
    /// [`NetError::Config`] naming the setting and its allowed range.
    pub fn validate(&self) -> Result<(), NetError> {
        in_range(
            "max_frame_bytes",
            self.max_frame_bytes,
            MIN_FRAME_BYTES..=MAX_FRAME_BYTES_CEILING,
        )?;
        in_range(
            "frame_body_timeout_ms",
            self.frame_body_timeout_ms,
            MIN_FRAME_BODY_TIMEOUT_MS..=MAX_FRAME_BODY_TIMEOUT_MS,
        )?;
        in_range(
            "connections_max_idle_ms",
            self.connections_max_idle_ms,
            MIN_CONNECTIONS_MAX_IDLE_MS..=MAX_CONNECTIONS_MAX_IDLE_MS,
        )?;
        in_range(
            "fetch_max_bytes",
            self.fetch_max_bytes,
            MIN_FETCH_MAX_BYTES..=i32::MAX as usize,
        )?;
        if self.max_connections_per_shard == 0 {
            return Err(NetError::Config(
                "max_connections_per_shard must be at least 1".to_owned(),
            ));
        }
        if self.default_partitions == 0 {
            return Err(NetError::Config(
                "default_partitions must be at least 1".to_owned(),
            ));
        }
        if self.node_id < 0 {
            return Err(NetError::Config(format!(
                "node_id {} must be 0 or more",
                self.node_id
            )));
        }
        if self.advertised_host.is_empty() || self.advertised_port == 0 {
            return Err(NetError::Config(
                "the advertised address needs a host and a non-zero port".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Refuses `value` of setting `name` outside `allowed`, naming both.
fn in_range<T: PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    allowed: std::ops::RangeInclusive<T>,
) -> Result<(), NetError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(NetError::Config(format!(
        "{name} {value} is outside {}..={}",
        allowed.start(),
        allowed.end()
    )))
}
