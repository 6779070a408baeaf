//! [`Client`]: the admin commands' view of a cluster, reached through one bootstrap address.
//!
//! Kafka routes some requests to a particular broker, and the client follows those rules so
//! the commands work against any node of any cluster, not only against a single Spindle node:
//! - topic and configuration administration (CreateTopics, DeleteTopics, CreatePartitions,
//!   DescribeConfigs, IncrementalAlterConfigs, Metadata, DescribeCluster, ListGroups) go to
//!   the bootstrap node, which answers or forwards them;
//! - ListOffsets goes to each partition's leader (from Metadata), one request per leader;
//! - group requests (DescribeGroups, OffsetFetch, OffsetCommit) go to the group's coordinator
//!   (from FindCoordinator), retried for a bounded time while it is still loading.
//!
//! Connections to other brokers are opened on first use and reused; brokers are reached at
//! the address they advertise, as every Kafka client does.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    BrokerId, ListOffsetsRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::connection::Connection;
use crate::admin::error::AdminError;
use crate::admin::limits;
use crate::transport::Security;

/// ListOffsets timestamp meaning "the offset after the last record".
pub const LATEST: i64 = -1;
/// ListOffsets timestamp meaning "the first offset still in the log".
pub const EARLIEST: i64 = -2;

/// Kafka's UNKNOWN_TOPIC_OR_PARTITION error code.
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// COORDINATOR_LOAD_IN_PROGRESS: the coordinator is replaying its log; ask again.
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
/// COORDINATOR_NOT_AVAILABLE: no coordinator yet; ask again.
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// One partition of a topic and the broker that leads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLeader {
    /// The topic.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
    /// The leader's node id (-1 when it has none).
    pub leader: i32,
}

/// A topic-partition, ordered by topic then partition (the order tables print in).
pub type TopicPartition = (String, i32);

/// A connection to a cluster through its bootstrap node.
pub struct Client {
    bootstrap: Connection,
    /// Connections to other brokers, by the address they advertise.
    others: HashMap<String, Connection>,
    /// Broker addresses from the last Metadata answer.
    brokers: HashMap<i32, String>,
    /// Coordinator addresses already found, by group.
    coordinators: HashMap<String, String>,
    /// TLS and the SASL login, for every connection.
    security: Security,
}

impl Client {
    /// Connects to the first node of `bootstrap` (`HOST:PORT`, or several separated by
    /// commas, tried in order) that answers.
    ///
    /// # Errors
    /// The error of the last node tried, as [`Connection::connect`] gives it.
    pub fn connect(bootstrap: &str) -> Result<Self, AdminError> {
        Self::connect_as(bootstrap, Security::default())
    }

    /// As [`Client::connect`], over TLS and logged in (SASL) as `security` says, there and on
    /// every broker it connects to later.
    ///
    /// # Errors
    /// The error of the last node tried, as [`Connection::connect_as`] gives it.
    pub fn connect_as(bootstrap: &str, security: Security) -> Result<Self, AdminError> {
        let mut last = None;
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match Connection::connect_as(addr, &security) {
                Ok(conn) => {
                    return Ok(Self {
                        bootstrap: conn,
                        others: HashMap::new(),
                        brokers: HashMap::new(),
                        coordinators: HashMap::new(),
                        security,
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            AdminError::Invalid(format!("no address in --bootstrap {bootstrap:?}"))
        }))
    }

    /// The bootstrap node's connection, for requests any node answers.
    pub fn bootstrap(&mut self) -> &mut Connection {
        &mut self.bootstrap
    }

    /// Metadata for `topics` (all topics when `None`), never creating a topic.
    ///
    /// # Errors
    /// Connection errors and a top-level Metadata error.
    pub fn metadata(&mut self, topics: Option<&[String]>) -> Result<MetadataResponse, AdminError> {
        let topics = topics.map(|names| {
            names
                .iter()
                .map(|n| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                })
                .collect()
        });
        let request = MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(false);
        let response = self.bootstrap.call(&request)?;
        AdminError::check(response.error_code, None, || "reading metadata".to_owned())?;
        self.brokers = response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        Ok(response)
    }

    /// The partitions of `topic` with their leaders, in partition order.
    ///
    /// # Errors
    /// [`AdminError::UnknownTopic`] when the cluster does not have it; connection errors.
    pub fn partitions(&mut self, topic: &str) -> Result<Vec<PartitionLeader>, AdminError> {
        let found = self.topic(topic)?;
        let mut partitions: Vec<_> = found
            .partitions
            .iter()
            .map(|p| PartitionLeader {
                topic: topic.to_owned(),
                partition: p.partition_index,
                leader: p.leader_id.0,
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        Ok(partitions)
    }

    /// The metadata of `topic`.
    ///
    /// # Errors
    /// [`AdminError::UnknownTopic`] when the cluster does not have it; connection errors.
    pub fn topic(&mut self, topic: &str) -> Result<MetadataResponseTopic, AdminError> {
        let metadata = self.metadata(Some(&[topic.to_owned()]))?;
        let found = metadata
            .topics
            .into_iter()
            .find(|t| t.name.as_deref().map(|n| n.as_str()) == Some(topic));
        let Some(found) = found else {
            return Err(AdminError::UnknownTopic(topic.to_owned()));
        };
        if found.error_code == UNKNOWN_TOPIC_OR_PARTITION {
            return Err(AdminError::UnknownTopic(topic.to_owned()));
        }
        AdminError::check(found.error_code, None, || format!("reading topic {topic}"))?;
        Ok(found)
    }

    /// The offset for `timestamp` ([`LATEST`], [`EARLIEST`] or milliseconds since the epoch)
    /// of each partition, asking each leader once. A timestamp after the last record gives
    /// `None` (Kafka answers -1).
    ///
    /// # Errors
    /// A partition without a leader or with an error; connection errors.
    pub fn list_offsets(
        &mut self,
        partitions: &[PartitionLeader],
        timestamp: i64,
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>, AdminError> {
        self.list_offsets_as(partitions, timestamp, READ_UNCOMMITTED)
    }

    /// Each partition's last stable offset: the end a read-committed consumer sees (the first
    /// offset of the oldest open transaction, or the end).
    ///
    /// # Errors
    /// As [`Client::list_offsets`].
    pub fn last_stable_offsets(
        &mut self,
        partitions: &[PartitionLeader],
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>, AdminError> {
        self.list_offsets_as(partitions, LATEST, READ_COMMITTED)
    }

    fn list_offsets_as(
        &mut self,
        partitions: &[PartitionLeader],
        timestamp: i64,
        isolation_level: i8,
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>, AdminError> {
        let mut offsets = BTreeMap::new();
        for (leader, led) in by_leader(partitions)? {
            let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for p in led {
                topics.entry(&p.topic).or_default().push(p.partition);
            }
            let request =
                list_offsets_request(&topics, timestamp).with_isolation_level(isolation_level);
            let response = self.broker(leader)?.call(&request)?;
            for t in response.topics {
                for p in t.partitions {
                    AdminError::check(p.error_code, None, || {
                        format!(
                            "listing offsets of {}-{}",
                            t.name.as_str(),
                            p.partition_index
                        )
                    })?;
                    let offset = (p.offset >= 0).then_some(p.offset);
                    offsets.insert((t.name.to_string(), p.partition_index), offset);
                }
            }
        }
        Ok(offsets)
    }

    /// The connection to broker `node`, opened on first use.
    ///
    /// # Errors
    /// A node the last Metadata answer did not list; connection errors.
    pub fn broker(&mut self, node: i32) -> Result<&mut Connection, AdminError> {
        let addr =
            self.brokers.get(&node).cloned().ok_or_else(|| {
                AdminError::Invalid(format!("broker {node} is not in the metadata"))
            })?;
        self.connection_to(&addr)
    }

    /// The connection to the coordinator of `group`, found with FindCoordinator.
    ///
    /// # Errors
    /// No coordinator within the bounded retries; connection errors.
    pub fn coordinator(&mut self, group: &str) -> Result<&mut Connection, AdminError> {
        let addr = match self.coordinators.get(group) {
            Some(addr) => addr.clone(),
            None => {
                let addr = self.find_coordinator(group)?;
                self.coordinators.insert(group.to_owned(), addr.clone());
                addr
            }
        };
        self.connection_to(&addr)
    }

    fn find_coordinator(&mut self, group: &str) -> Result<String, AdminError> {
        let version = self.bootstrap.version::<FindCoordinatorRequest>()?;
        let key = StrBytes::from_string(group.to_owned());
        // v4 batches keys; earlier versions take one key.
        let request = if version >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![key])
        } else {
            FindCoordinatorRequest::default().with_key(key)
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let response = self.bootstrap.call_at(&request, version)?;
            let (code, message, host, port) = match response.coordinators.first() {
                Some(c) if version >= 4 => (c.error_code, c.error_message.clone(), &c.host, c.port),
                _ => (
                    response.error_code,
                    response.error_message.clone(),
                    &response.host,
                    response.port,
                ),
            };
            let retriable = matches!(
                code,
                COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE
            );
            if retriable && attempt < limits::COORDINATOR_RETRIES_MAX {
                std::thread::sleep(limits::COORDINATOR_RETRY_PAUSE);
                continue;
            }
            AdminError::check(code, message.as_deref(), || {
                format!("finding the coordinator of group {group}")
            })?;
            return Ok(format!("{}:{port}", host.as_str()));
        }
    }

    fn connection_to(&mut self, addr: &str) -> Result<&mut Connection, AdminError> {
        if self.bootstrap.addr() == addr {
            return Ok(&mut self.bootstrap);
        }
        match self.others.entry(addr.to_owned()) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(e) => Ok(e.insert(Connection::connect_as(addr, &self.security)?)),
        }
    }
}

/// The partitions of `all` (one topic's) named in `wanted`, in that order; all of them when
/// `wanted` is empty.
///
/// # Errors
/// [`AdminError::Invalid`] for a partition the topic does not have.
pub fn select_partitions<'a>(
    all: &'a [PartitionLeader],
    topic: &str,
    wanted: &[i32],
) -> Result<Vec<&'a PartitionLeader>, AdminError> {
    if wanted.is_empty() {
        return Ok(all.iter().collect());
    }
    wanted
        .iter()
        .map(|&p| {
            all.iter()
                .find(|l| l.partition == p)
                .ok_or_else(|| AdminError::Invalid(format!("topic {topic} has no partition {p}")))
        })
        .collect()
}

/// `partitions` grouped by their leader's node id, so that each leader is asked once.
///
/// # Errors
/// [`AdminError::Invalid`] for a partition without a leader.
pub fn by_leader<'a>(
    partitions: impl IntoIterator<Item = &'a PartitionLeader>,
) -> Result<BTreeMap<i32, Vec<&'a PartitionLeader>>, AdminError> {
    let mut led: BTreeMap<i32, Vec<&PartitionLeader>> = BTreeMap::new();
    for p in partitions {
        if p.leader < 0 {
            return Err(AdminError::Invalid(format!(
                "partition {}-{} has no leader right now",
                p.topic, p.partition
            )));
        }
        led.entry(p.leader).or_default().push(p);
    }
    Ok(led)
}

/// ListOffsets `isolation_level`s.
const READ_UNCOMMITTED: i8 = 0;
const READ_COMMITTED: i8 = 1;

/// A ListOffsets request as a consumer sends it (replica id -1, read uncommitted).
fn list_offsets_request(topics: &BTreeMap<&str, Vec<i32>>, timestamp: i64) -> ListOffsetsRequest {
    let topics = topics
        .iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .iter()
                .map(|p| {
                    ListOffsetsPartition::default()
                        .with_partition_index(*p)
                        .with_timestamp(timestamp)
                })
                .collect();
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string((*name).to_owned())))
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(topics)
        .with_timeout_ms(limits::SERVER_TIMEOUT_MS)
}
