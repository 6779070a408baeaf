//! `spindle topic create|list|describe|alter|delete`.
//!
//! Each command is a few Kafka requests to the bootstrap node (CreateTopics, Metadata,
//! DescribeConfigs, CreatePartitions, IncrementalAlterConfigs, DeleteTopics) plus ListOffsets
//! to the leaders for `describe`. Commands that name a topic check it exists first, through
//! Metadata, so a misspelt name gives `unknown topic: NAME` rather than a protocol error code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::admin::args::TopicCommand;
use crate::admin::client::{Client, PartitionLeader, EARLIEST, LATEST, UNKNOWN_TOPIC_OR_PARTITION};
use crate::admin::console::{self, ConsumeOptions, ProduceOptions};
use crate::admin::error::AdminError;
use crate::admin::limits;
use crate::admin::records;
use crate::admin::table::{Printer, Table};

/// The config resource type of a topic in DescribeConfigs and IncrementalAlterConfigs.
const RESOURCE_TOPIC: i8 = 2;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
/// TOPIC_ALREADY_EXISTS.
const TOPIC_ALREADY_EXISTS: i16 = 36;

/// Runs one topic command.
///
/// # Errors
/// Connection errors, Kafka errors, [`AdminError::UnknownTopic`].
pub fn run(client: &mut Client, cmd: TopicCommand, out: &mut Printer) -> Result<(), AdminError> {
    match cmd {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
        } => {
            let spec = TopicSpec {
                name,
                partitions,
                replication_factor,
                configs,
            };
            create(client, &spec, if_not_exists, out)
        }
        TopicCommand::List => list(client, out),
        TopicCommand::Describe { name } => describe(client, &name, out),
        TopicCommand::Alter {
            name,
            partitions,
            set,
            delete,
        } => alter(client, &name, partitions, &set, &delete, out),
        TopicCommand::DeleteRecords {
            name,
            before,
            partitions,
        } => records::delete(client, &name, before, &partitions, out),
        TopicCommand::Produce {
            name,
            key_separator,
            partition,
            headers,
            compression,
        } => {
            let options = ProduceOptions {
                key_separator,
                partition,
                headers,
                compression: compression.compression(),
            };
            let stdin = std::io::stdin();
            console::produce(client, &name, &options, &mut stdin.lock(), out)
        }
        TopicCommand::Consume {
            name,
            partitions,
            from,
            count,
            follow,
            key_separator,
        } => {
            let options = ConsumeOptions {
                partitions,
                from,
                count,
                follow,
                key_separator,
            };
            console::consume(client, &name, &options, out)
        }
        TopicCommand::Delete { names, if_exists } => delete_topics(client, &names, if_exists, out),
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

/// The topic `topic create` asks for.
struct TopicSpec {
    name: String,
    partitions: Option<i32>,
    replication_factor: Option<i16>,
    configs: Vec<(String, String)>,
}

/// What `topic create` reports.
#[derive(Debug, Serialize)]
struct Created {
    topic: String,
    /// False when `--if-not-exists` found the topic already there.
    created: bool,
    partitions: i32,
    replication_factor: Option<i16>,
}

/// The CreateTopics request for `spec`; what it leaves out is asked of the server's defaults.
fn create_request(spec: &TopicSpec) -> CreateTopicsRequest {
    let configs = spec
        .configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_value(Some(StrBytes::from_string(v.clone())))
        })
        .collect();
    // -1 asks for the server's default (CreateTopics v4 and later).
    let topic = CreatableTopic::default()
        .with_name(topic_name(&spec.name))
        .with_num_partitions(spec.partitions.unwrap_or(-1))
        .with_replication_factor(spec.replication_factor.unwrap_or(-1))
        .with_configs(configs);
    CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(limits::SERVER_TIMEOUT_MS)
}

/// Creates the topic `spec` describes; with `if_not_exists`, reports one already there instead.
fn create(
    client: &mut Client,
    spec: &TopicSpec,
    if_not_exists: bool,
    out: &mut Printer,
) -> Result<(), AdminError> {
    let (name, partitions, replication_factor) =
        (spec.name.as_str(), spec.partitions, spec.replication_factor);
    let response = client.bootstrap().call(&create_request(spec))?;
    let result = response
        .topics
        .iter()
        .find(|t| t.name.as_str() == name)
        .ok_or_else(|| {
            AdminError::Invalid(format!("the server did not answer for topic {name}"))
        })?;
    if result.error_code == TOPIC_ALREADY_EXISTS && if_not_exists {
        let existing = Created {
            topic: name.to_owned(),
            created: false,
            partitions: i32::try_from(client.partitions(name)?.len()).unwrap_or(i32::MAX),
            replication_factor: None,
        };
        return out.print(&existing, |c| {
            format!(
                "topic {} already exists with {} partition(s)\n",
                c.topic, c.partitions
            )
        });
    }
    AdminError::check(result.error_code, result.error_message.as_deref(), || {
        format!("creating topic {name}")
    })?;
    // Older versions do not echo the partition count; read it back when it is not known.
    let partitions = match (result.num_partitions, partitions) {
        (n, _) if n > 0 => n,
        (_, Some(n)) => n,
        (_, None) => client.partitions(name)?.len() as i32,
    };
    // The echoed replication factor is -1 before v5; then only the asked one is known.
    let replication_factor = Some(result.replication_factor)
        .filter(|r| *r > 0)
        .or(replication_factor);
    let created = Created {
        topic: name.to_owned(),
        created: true,
        partitions,
        replication_factor,
    };
    out.print(&created, |c| {
        format!(
            "created topic {} with {} partition(s)\n",
            c.topic, c.partitions
        )
    })
}

/// One row of `topic list`.
#[derive(Debug, Serialize)]
struct ListedTopic {
    name: String,
    partitions: usize,
    replication_factor: usize,
    internal: bool,
}

fn list(client: &mut Client, out: &mut Printer) -> Result<(), AdminError> {
    let metadata = client.metadata(None)?;
    let mut topics: Vec<ListedTopic> = metadata
        .topics
        .iter()
        .filter(|t| t.error_code == 0)
        .filter_map(|t| {
            let name = t.name.as_ref()?.to_string();
            let replication_factor = t.partitions.first().map_or(0, |p| p.replica_nodes.len());
            Some(ListedTopic {
                name,
                partitions: t.partitions.len(),
                replication_factor,
                internal: t.is_internal,
            })
        })
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    out.print(&topics, |topics| {
        let mut table = Table::new(&["TOPIC", "PARTITIONS", "REPLICATION", "INTERNAL"]);
        for t in topics {
            table.row(vec![
                t.name.clone(),
                t.partitions.to_string(),
                t.replication_factor.to_string(),
                if t.internal { "yes" } else { "no" }.to_owned(),
            ]);
        }
        table.render()
    })
}

/// What `topic describe` reports.
#[derive(Debug, Serialize)]
struct Description {
    topic: String,
    /// Kafka's topic id as Kafka's tools print it (URL-safe base64, 22 characters); `None` when
    /// the server reports none.
    topic_id: Option<String>,
    partitions: Vec<PartitionInfo>,
    configs: Vec<ConfigEntry>,
}

/// One partition in `topic describe`.
#[derive(Debug, Serialize)]
struct PartitionInfo {
    partition: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    start_offset: Option<i64>,
    end_offset: Option<i64>,
    /// The last stable offset: where read-committed consumers stop (below `end_offset` while a
    /// transaction is open).
    stable_offset: Option<i64>,
}

/// One configuration in `topic describe`.
#[derive(Debug, Serialize)]
struct ConfigEntry {
    name: String,
    value: Option<String>,
    source: &'static str,
    read_only: bool,
    sensitive: bool,
}

fn describe(client: &mut Client, name: &str, out: &mut Printer) -> Result<(), AdminError> {
    let metadata = client.topic(name)?;
    let leaders: Vec<PartitionLeader> = metadata
        .partitions
        .iter()
        .map(|p| PartitionLeader {
            topic: name.to_owned(),
            partition: p.partition_index,
            leader: p.leader_id.0,
        })
        .collect();
    let starts = client.list_offsets(&leaders, EARLIEST)?;
    let ends = client.list_offsets(&leaders, LATEST)?;
    let stable = client.last_stable_offsets(&leaders)?;
    let mut partitions: Vec<PartitionInfo> = metadata
        .partitions
        .iter()
        .map(|p| {
            let key = (name.to_owned(), p.partition_index);
            PartitionInfo {
                partition: p.partition_index,
                leader: p.leader_id.0,
                replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                start_offset: starts.get(&key).copied().flatten(),
                end_offset: ends.get(&key).copied().flatten(),
                stable_offset: stable.get(&key).copied().flatten(),
            }
        })
        .collect();
    partitions.sort_by_key(|p| p.partition);
    let id = metadata.topic_id;
    let description = Description {
        topic: name.to_owned(),
        topic_id: (!id.is_nil()).then(|| URL_SAFE_NO_PAD.encode(id.as_bytes())),
        partitions,
        configs: configs(client, name)?,
    };
    out.print(&description, render_description)
}

fn render_description(d: &Description) -> String {
    let ids = |ids: &[i32]| {
        let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
        ids.join(",")
    };
    let offset = |o: Option<i64>| o.map_or_else(|| "-".to_owned(), |o| o.to_string());
    let mut table = Table::new(&[
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "START",
        "END",
        "STABLE",
    ]);
    for p in &d.partitions {
        table.row(vec![
            p.partition.to_string(),
            p.leader.to_string(),
            ids(&p.replicas),
            ids(&p.isr),
            offset(p.start_offset),
            offset(p.end_offset),
            offset(p.stable_offset),
        ]);
    }
    let mut configs = Table::new(&["CONFIG", "VALUE", "SOURCE"]);
    for c in &d.configs {
        let value = match (&c.value, c.sensitive) {
            (_, true) => "(sensitive)".to_owned(),
            (Some(v), false) => v.clone(),
            (None, false) => "-".to_owned(),
        };
        configs.row(vec![c.name.clone(), value, c.source.to_owned()]);
    }
    format!(
        "Topic: {}  TopicId: {}  Partitions: {}\n\n{}\n{}",
        d.topic,
        d.topic_id.as_deref().unwrap_or("-"),
        d.partitions.len(),
        table.render(),
        configs.render()
    )
}

/// Every configuration of topic `name`, by name.
fn configs(client: &mut Client, name: &str) -> Result<Vec<ConfigEntry>, AdminError> {
    let resource = DescribeConfigsResource::default()
        .with_resource_type(RESOURCE_TOPIC)
        .with_resource_name(StrBytes::from_string(name.to_owned()))
        .with_configuration_keys(None);
    let request = DescribeConfigsRequest::default().with_resources(vec![resource]);
    let response = client.bootstrap().call(&request)?;
    let mut entries = Vec::new();
    for result in response.results {
        if result.error_code == UNKNOWN_TOPIC_OR_PARTITION {
            return Err(AdminError::UnknownTopic(name.to_owned()));
        }
        AdminError::check(result.error_code, result.error_message.as_deref(), || {
            format!("describing the configuration of topic {name}")
        })?;
        entries.extend(result.configs.into_iter().map(|c| ConfigEntry {
            name: c.name.to_string(),
            value: c.value.map(|v| v.to_string()),
            source: config_source(c.config_source),
            read_only: c.read_only,
            sensitive: c.is_sensitive,
        }));
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// DescribeConfigs' source codes, by Kafka's names.
fn config_source(code: i8) -> &'static str {
    match code {
        1 => "topic",
        2 => "dynamic-broker",
        3 => "dynamic-default-broker",
        4 => "static-broker",
        5 => "default",
        6 => "broker-logger",
        _ => "unknown",
    }
}

/// What `topic alter` reports.
#[derive(Debug, Serialize)]
struct Altered {
    topic: String,
    partitions: Option<i32>,
    set: Vec<(String, String)>,
    deleted: Vec<String>,
}

fn alter(
    client: &mut Client,
    name: &str,
    partitions: Option<i32>,
    set: &[(String, String)],
    delete: &[String],
    out: &mut Printer,
) -> Result<(), AdminError> {
    let current = client.partitions(name)?.len();
    if let Some(count) = partitions {
        if usize::try_from(count).is_ok_and(|c| c < current) {
            return Err(AdminError::Invalid(format!(
                "topic {name} has {current} partitions; partitions can be added, never removed"
            )));
        }
        if usize::try_from(count).is_ok_and(|c| c > current) {
            create_partitions(client, name, count)?;
        }
    }
    if !set.is_empty() || !delete.is_empty() {
        alter_configs(client, name, set, delete)?;
    }
    let altered = Altered {
        topic: name.to_owned(),
        partitions,
        set: set.to_vec(),
        deleted: delete.to_vec(),
    };
    out.print(&altered, |a| {
        let mut text = String::new();
        if let Some(p) = a.partitions {
            text.push_str(&format!("topic {}: {p} partition(s)\n", a.topic));
        }
        for (k, v) in &a.set {
            text.push_str(&format!("topic {}: set {k}={v}\n", a.topic));
        }
        for k in &a.deleted {
            text.push_str(&format!("topic {}: deleted {k}\n", a.topic));
        }
        text
    })
}

fn create_partitions(client: &mut Client, name: &str, count: i32) -> Result<(), AdminError> {
    let topic = CreatePartitionsTopic::default()
        .with_name(topic_name(name))
        .with_count(count)
        .with_assignments(None);
    let request = CreatePartitionsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(limits::SERVER_TIMEOUT_MS);
    let response = client.bootstrap().call(&request)?;
    for r in response.results {
        AdminError::check(r.error_code, r.error_message.as_deref(), || {
            format!("growing topic {name} to {count} partitions")
        })?;
    }
    Ok(())
}

fn alter_configs(
    client: &mut Client,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
) -> Result<(), AdminError> {
    let sets = set.iter().map(|(k, v)| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(k.clone()))
            .with_config_operation(OP_SET)
            .with_value(Some(StrBytes::from_string(v.clone())))
    });
    let deletes = delete.iter().map(|k| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(k.clone()))
            .with_config_operation(OP_DELETE)
            .with_value(None)
    });
    let resource = AlterConfigsResource::default()
        .with_resource_type(RESOURCE_TOPIC)
        .with_resource_name(StrBytes::from_string(name.to_owned()))
        .with_configs(sets.chain(deletes).collect());
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![resource]);
    let response = client.bootstrap().call(&request)?;
    for r in response.responses {
        AdminError::check(r.error_code, r.error_message.as_deref(), || {
            format!("altering the configuration of topic {name}")
        })?;
    }
    Ok(())
}

/// What `topic delete` reports.
#[derive(Debug, Serialize)]
struct Deleted {
    deleted: Vec<String>,
}

fn delete_topics(
    client: &mut Client,
    names: &[String],
    if_exists: bool,
    out: &mut Printer,
) -> Result<(), AdminError> {
    let version = client.bootstrap().version::<DeleteTopicsRequest>()?;
    // v6 names topics in `topics` (by name or id); earlier versions in `topic_names`.
    let request = if version >= 6 {
        let topics = names
            .iter()
            .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
            .collect();
        DeleteTopicsRequest::default().with_topics(topics)
    } else {
        DeleteTopicsRequest::default()
            .with_topic_names(names.iter().map(|n| topic_name(n)).collect())
    }
    .with_timeout_ms(limits::SERVER_TIMEOUT_MS);
    let response = client.bootstrap().call_at(&request, version)?;
    // Topics are deleted one by one on the server: report those that went before the first
    // failure, so a partial success is not hidden behind the error.
    let mut deleted = Vec::new();
    let mut failure = None;
    for r in &response.responses {
        let name = r.name.as_ref().map_or_else(String::new, |n| n.to_string());
        if r.error_code == UNKNOWN_TOPIC_OR_PARTITION && if_exists {
            continue;
        }
        let outcome = if r.error_code == UNKNOWN_TOPIC_OR_PARTITION {
            Err(AdminError::UnknownTopic(name.clone()))
        } else {
            AdminError::check(r.error_code, r.error_message.as_deref(), || {
                format!("deleting topic {name}")
            })
        };
        match outcome {
            Ok(()) => deleted.push(name),
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    if failure.is_none() || !deleted.is_empty() {
        out.print(&Deleted { deleted }, |d| {
            d.deleted
                .iter()
                .map(|n| format!("deleted topic {n}\n"))
                .collect()
        })?;
    }
    failure.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_render_partitions_then_configs() {
        let d = Description {
            topic: "orders".into(),
            topic_id: Some("5Lp0jk3uRgi9wkdqhS2ZbA".into()),
            partitions: vec![PartitionInfo {
                partition: 0,
                leader: 1,
                replicas: vec![1],
                isr: vec![1],
                start_offset: Some(0),
                end_offset: None,
                stable_offset: None,
            }],
            configs: vec![ConfigEntry {
                name: "retention.ms".into(),
                value: Some("1000".into()),
                source: config_source(1),
                read_only: false,
                sensitive: false,
            }],
        };
        let text = render_description(&d);
        assert!(
            text.starts_with("Topic: orders  TopicId: 5Lp0jk3uRgi9wkdqhS2ZbA  Partitions: 1\n"),
            "{text}"
        );
        assert!(
            text.contains("        0       1         1    1      0  -    -\n"),
            "{text}"
        );
        assert!(text.contains("retention.ms   1000  topic\n"), "{text}");
    }
}
