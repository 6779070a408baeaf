//! [`Cluster`]: what the generator learns about the brokers before a run: API versions, broker
//! addresses and the leader of each partition of the bench topic (created if missing).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiVersionsRequest, CreateTopicsRequest, ListOffsetsRequest, MetadataRequest, MetadataResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::bench::kafka::connection::Connection;
use crate::bench::kafka::versions::Versions;
use crate::transport::Security;

/// Kafka's UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// Kafka's LEADER_NOT_AVAILABLE (a topic being created).
const LEADER_NOT_AVAILABLE: i16 = 5;
/// Kafka's TOPIC_ALREADY_EXISTS.
const TOPIC_ALREADY_EXISTS: i16 = 36;
/// How often, and how long apart, metadata is asked for while a new topic gets its leaders.
const LEADER_POLLS: u32 = 100;
const LEADER_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The brokers and the bench topic's partition leaders.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Versions negotiated with the bootstrap broker (assumed alike across the cluster).
    pub versions: Versions,
    /// `host:port` of each broker id.
    pub brokers: HashMap<i32, String>,
    /// Leader broker id of partition `i` of the bench topic, for all its partitions (an
    /// existing topic may have more than `--partitions`; producers and consumers use them all,
    /// as Kafka clients would).
    pub leaders: Vec<i32>,
    /// TLS and the SASL login, for every connection.
    pub security: Security,
}

impl Cluster {
    /// Asks `bootstrap` about the cluster and `topic`, creating the topic with `partitions`
    /// partitions if it does not exist, and waits until every partition has a leader.
    ///
    /// # Errors
    /// Connection and protocol errors, a topic that cannot be created, leaders that do not
    /// appear in time, or an existing topic with fewer partitions than asked for.
    pub fn discover(
        bootstrap: &str,
        security: Security,
        topic: &str,
        partitions: u32,
        configs: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let mut conn = Connection::connect(bootstrap, &security)?;
        let api = conn
            .call(&ApiVersionsRequest::default(), 0)
            .context("ApiVersions")?;
        let versions = Versions::negotiate(&api)?;
        let mut created = false;
        let mut last_state = String::from("no metadata");
        for _ in 0..LEADER_POLLS {
            let meta = metadata(&mut conn, versions.metadata, topic)?;
            let brokers: HashMap<i32, String> = meta
                .brokers
                .iter()
                .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
                .collect();
            let Some(t) = meta.topics.first() else {
                bail!("metadata answer names no topic");
            };
            match t.error_code {
                0 => {}
                UNKNOWN_TOPIC_OR_PARTITION if !created => {
                    create_topic(
                        bootstrap, &security, &meta, versions, topic, partitions, configs,
                    )?;
                    created = true;
                    continue;
                }
                UNKNOWN_TOPIC_OR_PARTITION | LEADER_NOT_AVAILABLE => {
                    std::thread::sleep(LEADER_POLL_INTERVAL);
                    continue;
                }
                code => bail!("metadata for topic {topic} failed with error code {code}"),
            }
            ensure!(
                t.partitions.len() >= partitions as usize,
                "topic {topic} has {} partitions, fewer than --partitions {partitions}",
                t.partitions.len()
            );
            let mut leaders = vec![-1; t.partitions.len()];
            for p in &t.partitions {
                if let Some(slot) = usize::try_from(p.partition_index)
                    .ok()
                    .and_then(|i| leaders.get_mut(i))
                {
                    *slot = p.leader_id.0;
                }
            }
            last_state = format!(
                "leaders {leaders:?}, partition errors {:?}, brokers {:?}",
                t.partitions
                    .iter()
                    .map(|p| p.error_code)
                    .collect::<Vec<_>>(),
                brokers.keys().collect::<Vec<_>>()
            );
            if leaders.iter().all(|l| brokers.contains_key(l)) {
                return Ok(Self {
                    versions,
                    brokers,
                    leaders,
                    security,
                });
            }
            std::thread::sleep(LEADER_POLL_INTERVAL);
        }
        bail!("topic {topic} did not get leaders for all partitions in time ({last_state})")
    }

    /// The address of broker `id`.
    ///
    /// # Errors
    /// A broker id the metadata did not list.
    pub fn address(&self, id: i32) -> anyhow::Result<&str> {
        self.brokers
            .get(&id)
            .map(String::as_str)
            .with_context(|| format!("broker {id} is not in the metadata"))
    }

    /// A connection to broker `id`, over TLS and logged in as the run asks.
    ///
    /// # Errors
    /// As [`Cluster::address`] and [`Connection::connect`].
    pub fn connect(&self, id: i32) -> anyhow::Result<Connection> {
        Connection::connect(self.address(id)?, &self.security)
    }

    /// Distinct leader ids, sorted.
    pub fn leader_ids(&self) -> Vec<i32> {
        let mut ids = self.leaders.clone();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// How many partitions of the topic the broker leading the fewest leads (the partitions a
    /// producer writes are those of one broker).
    pub fn fewest_partitions_of_a_leader(&self) -> usize {
        self.leader_ids()
            .iter()
            .map(|id| self.leaders.iter().filter(|l| *l == id).count())
            .min()
            .unwrap_or(0)
    }

    /// Offsets of `partitions` at `timestamp` (-2: log start, -1: high watermark), asked of
    /// each partition's leader.
    ///
    /// # Errors
    /// Connection and protocol errors, or a partition answering with an error code.
    pub fn offsets(
        &self,
        topic: &str,
        partitions: &[i32],
        timestamp: i64,
    ) -> anyhow::Result<HashMap<i32, i64>> {
        let mut out = HashMap::new();
        for leader in self.leader_ids() {
            let mine: Vec<i32> = partitions
                .iter()
                .copied()
                .filter(|p| self.leaders.get(*p as usize) == Some(&leader))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let mut conn = self.connect(leader)?;
            let request = ListOffsetsRequest::default()
                .with_replica_id((-1).into())
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(
                        mine.iter()
                            .map(|p| {
                                ListOffsetsPartition::default()
                                    .with_partition_index(*p)
                                    .with_timestamp(timestamp)
                            })
                            .collect(),
                    )]);
            let response = conn
                .call(&request, self.versions.list_offsets)
                .context("ListOffsets")?;
            for t in response.topics {
                for p in t.partitions {
                    ensure!(
                        p.error_code == 0,
                        "ListOffsets of partition {} failed with error code {}",
                        p.partition_index,
                        p.error_code
                    );
                    out.insert(p.partition_index, p.offset);
                }
            }
        }
        Ok(out)
    }
}

/// A topic name in the protocol's type.
pub fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

fn metadata(conn: &mut Connection, version: i16, topic: &str) -> anyhow::Result<MetadataResponse> {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(topic)))
        ]))
        .with_allow_auto_topic_creation(false);
    conn.call(&request, version).context("Metadata")
}

/// Creates the topic through the controller (or the bootstrap broker when the controller is
/// unknown); an answer that it already exists is fine (another run may have raced us).
fn create_topic(
    bootstrap: &str,
    security: &Security,
    meta: &MetadataResponse,
    versions: Versions,
    topic: &str,
    partitions: u32,
    configs: &[(String, String)],
) -> anyhow::Result<()> {
    let controller = meta
        .brokers
        .iter()
        .find(|b| b.node_id == meta.controller_id)
        .map_or_else(
            || bootstrap.to_owned(),
            |b| format!("{}:{}", b.host.as_str(), b.port),
        );
    let mut conn = Connection::connect(&controller, security)?;
    // -1 (the broker's default) needs CreateTopics v4; before that, ask for one replica.
    let replication_factor = if versions.create_topics >= 4 { -1 } else { 1 };
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(topic))
            .with_num_partitions(i32::try_from(partitions).context("--partitions")?)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.clone()))
                            .with_value(Some(StrBytes::from_string(v.clone())))
                    })
                    .collect(),
            )])
        .with_timeout_ms(30_000);
    let response = conn
        .call(&request, versions.create_topics)
        .context("CreateTopics")?;
    for t in response.topics {
        if t.error_code != 0 && t.error_code != TOPIC_ALREADY_EXISTS {
            bail!(
                "creating topic {topic} failed with error code {}: {}",
                t.error_code,
                t.error_message.as_ref().map_or("", |m| m.as_str())
            );
        }
    }
    Ok(())
}
