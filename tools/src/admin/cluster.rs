//! `spindle cluster info`: the cluster id, the controller and the brokers; `spindle cluster
//! quotas`: the client quotas.
//!
//! DescribeCluster is asked when the node serves it (it is the API meant for this); Metadata,
//! which every Kafka server serves, gives the same facts otherwise.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, DescribeClientQuotasRequest, DescribeClusterRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::admin::args::{ClusterCommand, QuotasCommand};
use crate::admin::client::Client;
use crate::admin::error::AdminError;
use crate::admin::table::{Printer, Table, NO_VALUE};

/// What `cluster info` reports.
#[derive(Debug, Serialize)]
struct Info {
    cluster_id: Option<String>,
    controller_id: i32,
    brokers: Vec<Broker>,
}

/// One broker.
#[derive(Debug, Serialize)]
struct Broker {
    node_id: i32,
    host: String,
    port: i32,
    rack: Option<String>,
}

/// One quota entity and the rates set for it.
#[derive(Debug, Serialize)]
struct Quota {
    /// Its parts: `user` and `client-id`, each with a name or `None` for the default.
    entity: BTreeMap<String, Option<String>>,
    /// Each rate set for it, by Kafka's key (`producer_byte_rate`, `consumer_byte_rate`, ...).
    values: BTreeMap<String, f64>,
}

/// Runs one cluster command.
///
/// # Errors
/// Connection and Kafka errors.
pub fn run(client: &mut Client, cmd: ClusterCommand, out: &mut Printer) -> Result<(), AdminError> {
    match cmd {
        ClusterCommand::Info => {
            let mut info = if client
                .bootstrap()
                .version::<DescribeClusterRequest>()
                .is_ok()
            {
                describe_cluster(client)?
            } else {
                from_metadata(client)?
            };
            info.brokers.sort_by_key(|b| b.node_id);
            out.print(&info, render)
        }
        ClusterCommand::Quotas { command: None } => {
            let quotas = quotas(client)?;
            out.print(&quotas, |q| render_quotas(q))
        }
        ClusterCommand::Quotas {
            command: Some(alter),
        } => {
            let altered = alter_quotas(client, alter)?;
            out.print(&altered, |a| {
                let verb = if a.dry_run { "would alter" } else { "altered" };
                format!("{verb} the quotas of {}\n", a.entity)
            })
        }
    }
}

/// What `cluster quotas alter` did.
#[derive(Debug, Serialize)]
struct Altered {
    /// The entity, as `type=name` parts (`<default>` for a default).
    entity: String,
    /// Whether the server only checked the change.
    dry_run: bool,
}

fn alter_quotas(client: &mut Client, command: QuotasCommand) -> Result<Altered, AdminError> {
    let QuotasCommand::Alter {
        names,
        defaults,
        add,
        delete,
        dry_run,
    } = command;
    let parts: Vec<(String, Option<String>)> = names
        .into_iter()
        .map(|(kind, name)| (kind, Some(name)))
        .chain(defaults.into_iter().map(|kind| (kind, None)))
        .collect();
    if parts.is_empty() {
        return Err(AdminError::Invalid(
            "name the entity: --name user=NAME, --name client-id=NAME or --default client-id"
                .to_owned(),
        ));
    }
    let mut ops = Vec::with_capacity(add.len() + delete.len());
    for (key, value) in add {
        let value: f64 = value.parse().map_err(|_| {
            AdminError::Invalid(format!("--add {key}={value}: the value is not a number"))
        })?;
        ops.push(
            OpData::default()
                .with_key(StrBytes::from_string(key))
                .with_value(value),
        );
    }
    for key in delete {
        ops.push(
            OpData::default()
                .with_key(StrBytes::from_string(key))
                .with_remove(true),
        );
    }
    if ops.is_empty() {
        return Err(AdminError::Invalid(
            "nothing to change: give --add KEY=VALUE or --delete KEY".to_owned(),
        ));
    }
    let entity = entity_label(parts.iter().map(|(kind, name)| (kind, name)));
    let request = AlterClientQuotasRequest::default()
        .with_validate_only(dry_run)
        .with_entries(vec![EntryData::default()
            .with_entity(
                parts
                    .into_iter()
                    .map(|(kind, name)| {
                        EntityData::default()
                            .with_entity_type(StrBytes::from_string(kind))
                            .with_entity_name(name.map(StrBytes::from_string))
                    })
                    .collect(),
            )
            .with_ops(ops)]);
    let response = client.bootstrap().call(&request)?;
    for entry in &response.entries {
        AdminError::check(entry.error_code, entry.error_message.as_deref(), || {
            format!("altering the quotas of {entity}")
        })?;
    }
    Ok(Altered { entity, dry_run })
}

fn quotas(client: &mut Client) -> Result<Vec<Quota>, AdminError> {
    // No component filters: every entity.
    let response = client
        .bootstrap()
        .call(&DescribeClientQuotasRequest::default())?;
    AdminError::check(
        response.error_code,
        response.error_message.as_deref(),
        || "describing client quotas".to_owned(),
    )?;
    let mut quotas: Vec<Quota> = response
        .entries
        .unwrap_or_default()
        .into_iter()
        .map(|entry| Quota {
            entity: entry
                .entity
                .into_iter()
                .map(|e| {
                    (
                        e.entity_type.to_string(),
                        e.entity_name.map(|n| n.to_string()),
                    )
                })
                .collect(),
            values: entry
                .values
                .into_iter()
                .map(|v| (v.key.to_string(), v.value))
                .collect(),
        })
        .collect();
    quotas.sort_by(|a, b| a.entity.cmp(&b.entity));
    Ok(quotas)
}

fn render_quotas(quotas: &[Quota]) -> String {
    let keys: BTreeSet<&String> = quotas.iter().flat_map(|q| q.values.keys()).collect();
    let mut header = vec!["ENTITY".to_owned()];
    header.extend(keys.iter().map(|k| k.to_uppercase()));
    let mut table = Table::new(&header.iter().map(String::as_str).collect::<Vec<_>>());
    for q in quotas {
        let mut row = vec![entity_label(&q.entity)];
        row.extend(keys.iter().map(|k| {
            q.values
                .get(*k)
                .map_or_else(|| NO_VALUE.to_owned(), |v| format!("{v}"))
        }));
        table.row(row);
    }
    table.render()
}

/// A quota entity as `type=name` parts, `<default>` for a type's default: `user=app,
/// client-id=loader`.
fn entity_label<'a>(parts: impl IntoIterator<Item = (&'a String, &'a Option<String>)>) -> String {
    parts
        .into_iter()
        .map(|(kind, name)| format!("{kind}={}", name.as_deref().unwrap_or("<default>")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_cluster(client: &mut Client) -> Result<Info, AdminError> {
    let response = client
        .bootstrap()
        .call(&DescribeClusterRequest::default())?;
    AdminError::check(
        response.error_code,
        response.error_message.as_deref(),
        || "describing the cluster".to_owned(),
    )?;
    Ok(Info {
        cluster_id: Some(response.cluster_id.to_string()),
        controller_id: response.controller_id.0,
        brokers: response
            .brokers
            .into_iter()
            .map(|b| Broker {
                node_id: b.broker_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.map(|r| r.to_string()),
            })
            .collect(),
    })
}

fn from_metadata(client: &mut Client) -> Result<Info, AdminError> {
    let metadata = client.metadata(Some(&[]))?;
    Ok(Info {
        cluster_id: metadata.cluster_id.map(|c| c.to_string()),
        controller_id: metadata.controller_id.0,
        brokers: metadata
            .brokers
            .into_iter()
            .map(|b| Broker {
                node_id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.map(|r| r.to_string()),
            })
            .collect(),
    })
}

fn render(info: &Info) -> String {
    let mut table = Table::new(&["NODE", "HOST", "PORT", "RACK", "CONTROLLER"]);
    for b in &info.brokers {
        table.row(vec![
            b.node_id.to_string(),
            b.host.clone(),
            b.port.to_string(),
            b.rack.clone().unwrap_or_else(|| "-".to_owned()),
            if b.node_id == info.controller_id {
                "yes"
            } else {
                ""
            }
            .to_owned(),
        ]);
    }
    format!(
        "Cluster: {}  Controller: {}  Brokers: {}\n\n{}",
        info.cluster_id.as_deref().unwrap_or("-"),
        info.controller_id,
        info.brokers.len(),
        table.render()
    )
}
