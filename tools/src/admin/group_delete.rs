//! `spindle group delete` and `spindle group delete-offsets`: what `kafka-consumer-groups.sh
//! --delete` and `--delete-offsets` do. Both go to the group's coordinator: DeleteGroups
//! removes groups without members together with their offsets, OffsetDelete some of a group's
//! offsets (while the group has members, not those of a topic they subscribe to).

use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{DeleteGroupsRequest, GroupId, OffsetDeleteRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::admin::client::{select_partitions, Client};
use crate::admin::error::AdminError;
use crate::admin::group::GROUP_ID_NOT_FOUND;
use crate::admin::table::{Printer, Table};

#[derive(Debug, Serialize)]
struct DeletedGroups {
    deleted: Vec<String>,
}

/// Deletes `groups` (each through its coordinator) and prints those deleted.
///
/// # Errors
/// [`AdminError::UnknownGroup`], the server's refusal (NON_EMPTY_GROUP while a group has
/// members), connection errors. Groups deleted before the first failure are still printed.
pub fn delete_groups(
    client: &mut Client,
    groups: &[String],
    out: &mut Printer,
) -> Result<(), AdminError> {
    let mut deleted = Vec::new();
    let mut failure = None;
    for group in groups {
        match delete_group(client, group) {
            Ok(()) => deleted.push(group.clone()),
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    if failure.is_none() || !deleted.is_empty() {
        out.print(&DeletedGroups { deleted }, |d| {
            d.deleted
                .iter()
                .map(|g| format!("deleted group {g}\n"))
                .collect()
        })?;
    }
    failure.map_or(Ok(()), Err)
}

fn delete_group(client: &mut Client, group: &str) -> Result<(), AdminError> {
    let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
    let response = client.coordinator(group)?.call(&request)?;
    for result in response.results {
        if result.error_code == GROUP_ID_NOT_FOUND {
            return Err(AdminError::UnknownGroup(group.to_owned()));
        }
        AdminError::check(result.error_code, None, || {
            format!("deleting group {group}")
        })?;
    }
    Ok(())
}

/// One partition whose committed offset is gone.
#[derive(Debug, Serialize)]
struct DeletedOffset {
    topic: String,
    partition: i32,
}

/// Deletes `group`'s committed offsets of `topic` in `partitions` (all of the topic's when
/// empty) and prints the partitions done.
///
/// # Errors
/// [`AdminError::UnknownGroup`], [`AdminError::UnknownTopic`], a partition the topic does not
/// have, the server's refusal (GROUP_SUBSCRIBED_TO_TOPIC), connection errors.
pub fn delete_offsets(
    client: &mut Client,
    group: &str,
    topic: &str,
    partitions: &[i32],
    out: &mut Printer,
) -> Result<(), AdminError> {
    let all = client.partitions(topic)?;
    let chosen = select_partitions(&all, topic, partitions)?;
    let request = OffsetDeleteRequest::default()
        .with_group_id(group_id(group))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partitions(
                chosen
                    .iter()
                    .map(|p| {
                        OffsetDeleteRequestPartition::default().with_partition_index(p.partition)
                    })
                    .collect(),
            )]);
    let response = client.coordinator(group)?.call(&request)?;
    if response.error_code == GROUP_ID_NOT_FOUND {
        return Err(AdminError::UnknownGroup(group.to_owned()));
    }
    AdminError::check(response.error_code, None, || {
        format!("deleting the offsets of group {group}")
    })?;
    let mut deleted = Vec::new();
    for t in response.topics {
        for p in t.partitions {
            AdminError::check(p.error_code, None, || {
                format!(
                    "deleting the offset of group {group} on {topic}-{}",
                    p.partition_index
                )
            })?;
            deleted.push(DeletedOffset {
                topic: topic.to_owned(),
                partition: p.partition_index,
            });
        }
    }
    out.print(&deleted, |deleted| {
        let mut table = Table::new(&["TOPIC", "PARTITION"]);
        for d in deleted {
            table.row(vec![d.topic.clone(), d.partition.to_string()]);
        }
        format!(
            "deleted the committed offsets of group {group}:\n{}",
            table.render()
        )
    })
}

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_owned()))
}
