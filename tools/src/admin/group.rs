//! `spindle group list|describe`, and the group reads `reset-offsets` shares (`delete` and
//! `delete-offsets` are in `group_delete`).
//!
//! A group lives on its coordinator: DescribeGroups gives its state and members, OffsetFetch
//! its committed offsets; ListOffsets (latest) on the partitions' leaders gives the end of
//! each partition, and lag is end minus committed. ListGroups goes to every broker, since each
//! lists only the groups it coordinates.
//!
//! Members' assignments travel as opaque bytes chosen by the group's protocol; for the
//! `consumer` protocol they are a version (i16) and a ConsumerProtocolAssignment, read with
//! the engine's consumer protocol reader (which refuses hostile counts before allocating) to
//! show which partitions each member owns. Bytes that do not decode are shown as undecodable
//! rather than failing the whole command: a broken client must not hide the rest of its group
//! from the operator.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;
use spindle_engine::group::consumer_protocol;

use crate::admin::args::GroupCommand;
use crate::admin::client::{Client, TopicPartition, LATEST};
use crate::admin::error::AdminError;
use crate::admin::table::{Printer, Table, NO_VALUE};
use crate::admin::{group_delete, reset};

/// Highest OffsetFetch version used: v10 names topics by id only.
const OFFSET_FETCH_VERSION_MAX: i16 = 9;
/// GROUP_ID_NOT_FOUND.
pub(crate) const GROUP_ID_NOT_FOUND: i16 = 69;

/// Runs one group command.
///
/// # Errors
/// Connection errors, Kafka errors, [`AdminError::UnknownGroup`].
pub fn run(client: &mut Client, cmd: GroupCommand, out: &mut Printer) -> Result<(), AdminError> {
    match cmd {
        GroupCommand::List => list(client, out),
        GroupCommand::Describe { group } => describe(client, &group, out),
        GroupCommand::ResetOffsets(args) => reset::run(client, &args, out),
        GroupCommand::Delete { groups } => group_delete::delete_groups(client, &groups, out),
        GroupCommand::DeleteOffsets {
            group,
            topic,
            partitions,
        } => group_delete::delete_offsets(client, &group, &topic, &partitions, out),
    }
}

/// One row of `group list`.
#[derive(Debug, Serialize)]
struct ListedGroup {
    group: String,
    state: String,
    /// `classic` or `consumer` (KIP-848's protocol); empty from a broker before ListGroups v5.
    group_type: String,
    protocol_type: String,
}

fn list(client: &mut Client, out: &mut Printer) -> Result<(), AdminError> {
    let metadata = client.metadata(None)?;
    let mut groups = Vec::new();
    for broker in &metadata.brokers {
        let response = client
            .broker(broker.node_id.0)?
            .call(&ListGroupsRequest::default())?;
        AdminError::check(response.error_code, None, || {
            format!("listing the groups of broker {}", broker.node_id.0)
        })?;
        groups.extend(response.groups.into_iter().map(|g| ListedGroup {
            group: g.group_id.to_string(),
            state: g.group_state.to_string(),
            group_type: g.group_type.to_string(),
            protocol_type: g.protocol_type.to_string(),
        }));
    }
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    out.print(&groups, |groups| {
        let mut table = Table::new(&["GROUP", "STATE", "TYPE", "PROTOCOL-TYPE"]);
        for g in groups {
            let or_dash = |s: &str| if s.is_empty() { NO_VALUE } else { s }.to_owned();
            table.row(vec![
                g.group.clone(),
                or_dash(&g.state),
                or_dash(&g.group_type),
                or_dash(&g.protocol_type),
            ]);
        }
        table.render()
    })
}

/// A group as its coordinator describes it.
#[derive(Debug, Serialize)]
pub struct GroupState {
    /// The group id.
    pub group: String,
    /// Kafka's state name: Empty, Stable, PreparingRebalance, CompletingRebalance, Dead.
    pub state: String,
    /// The protocol type, `consumer` for consumer groups.
    pub protocol_type: String,
    /// The assignor in use (e.g. `range`), empty between generations.
    pub protocol: String,
    /// The members.
    pub members: Vec<Member>,
}

/// One member of a group.
#[derive(Debug, Serialize)]
pub struct Member {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its `group.instance.id` when it is a static member.
    pub group_instance_id: Option<String>,
    /// The client id it connected with.
    pub client_id: String,
    /// Where it connected from.
    pub client_host: String,
    /// Its partitions, when the assignment decodes.
    pub assignment: Option<Vec<AssignedTopic>>,
}

/// The partitions of one topic assigned to one member.
#[derive(Debug, Serialize)]
pub struct AssignedTopic {
    /// The topic.
    pub topic: String,
    /// The partitions.
    pub partitions: Vec<i32>,
}

/// Describes `group` through its coordinator.
///
/// # Errors
/// [`AdminError::UnknownGroup`] when the coordinator does not know it; connection and Kafka
/// errors.
pub fn describe_group(client: &mut Client, group: &str) -> Result<GroupState, AdminError> {
    let request = DescribeGroupsRequest::default()
        .with_groups(vec![GroupId(StrBytes::from_string(group.to_owned()))]);
    let response = client.coordinator(group)?.call(&request)?;
    let described = response
        .groups
        .into_iter()
        .find(|g| g.group_id.as_str() == group)
        .ok_or_else(|| AdminError::UnknownGroup(group.to_owned()))?;
    // Kafka describes a group it does not know as Dead (GROUP_ID_NOT_FOUND from v6 on).
    if described.error_code == GROUP_ID_NOT_FOUND || described.group_state.as_str() == "Dead" {
        return Err(AdminError::UnknownGroup(group.to_owned()));
    }
    AdminError::check(
        described.error_code,
        described.error_message.as_deref(),
        || format!("describing group {group}"),
    )?;
    let consumer = described.protocol_type.as_str() == consumer_protocol::PROTOCOL_TYPE;
    let members = described
        .members
        .into_iter()
        .map(|m| Member {
            member_id: m.member_id.to_string(),
            group_instance_id: m.group_instance_id.map(|id| id.to_string()),
            client_id: m.client_id.to_string(),
            client_host: m.client_host.to_string(),
            assignment: if consumer {
                decode_assignment(&m.member_assignment)
            } else {
                None
            },
        })
        .collect();
    Ok(GroupState {
        group: group.to_owned(),
        state: described.group_state.to_string(),
        protocol_type: described.protocol_type.to_string(),
        protocol: described.protocol_data.to_string(),
        members,
    })
}

/// A consumer-protocol assignment's topics and partitions, read by the engine's reader, which
/// refuses hostile counts before it allocates for them: the bytes come from whichever client
/// led the group.
fn decode_assignment(bytes: &[u8]) -> Option<Vec<AssignedTopic>> {
    let topics = consumer_protocol::assigned_topics(bytes).ok()?;
    let assigned = topics
        .into_iter()
        .map(|(topic, partitions)| AssignedTopic {
            topic,
            // Read from i32s, so each fits one.
            partitions: partitions
                .into_iter()
                .filter_map(|p| i32::try_from(p).ok())
                .collect(),
        })
        .collect();
    Some(assigned)
}

/// The committed offsets of `group`, for every partition it has committed.
///
/// # Errors
/// Connection and Kafka errors.
pub fn committed_offsets(
    client: &mut Client,
    group: &str,
) -> Result<BTreeMap<TopicPartition, i64>, AdminError> {
    let conn = client.coordinator(group)?;
    let version = conn
        .version::<OffsetFetchRequest>()?
        .min(OFFSET_FETCH_VERSION_MAX);
    let id = GroupId(StrBytes::from_string(group.to_owned()));
    // v8 batches groups; earlier versions take one. No topic list means every topic.
    let request = if version >= 8 {
        let one = OffsetFetchRequestGroup::default()
            .with_group_id(id)
            .with_topics(None);
        OffsetFetchRequest::default().with_groups(vec![one])
    } else {
        OffsetFetchRequest::default()
            .with_group_id(id)
            .with_topics(None)
    };
    let response = conn.call_at(&request, version)?;
    let what = || format!("fetching the committed offsets of group {group}");
    let mut offsets = BTreeMap::new();
    let mut keep = |topic: String, partition: i32, offset: i64, code: i16| {
        AdminError::check(code, None, || format!("{} ({topic}-{partition})", what()))?;
        // -1: nothing committed for this partition.
        if offset >= 0 {
            offsets.insert((topic, partition), offset);
        }
        Ok::<(), AdminError>(())
    };
    if version >= 8 {
        for g in response.groups {
            AdminError::check(g.error_code, None, what)?;
            for t in g.topics {
                for p in t.partitions {
                    keep(
                        t.name.to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    )?;
                }
            }
        }
    } else {
        AdminError::check(response.error_code, None, what)?;
        for t in response.topics {
            for p in t.partitions {
                keep(
                    t.name.to_string(),
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                )?;
            }
        }
    }
    Ok(offsets)
}

/// What `group describe` reports.
#[derive(Debug, Serialize)]
struct Description {
    #[serde(flatten)]
    state: GroupState,
    offsets: Vec<PartitionLag>,
}

/// One partition of a group: committed offset, end offset, lag and owner.
#[derive(Debug, Serialize)]
struct PartitionLag {
    topic: String,
    partition: i32,
    committed_offset: Option<i64>,
    end_offset: Option<i64>,
    lag: Option<i64>,
    member_id: Option<String>,
}

fn describe(client: &mut Client, group: &str, out: &mut Printer) -> Result<(), AdminError> {
    let state = describe_group(client, group)?;
    let committed = committed_offsets(client, group)?;
    let mut owners: BTreeMap<TopicPartition, String> = BTreeMap::new();
    for m in &state.members {
        for t in m.assignment.iter().flatten() {
            for p in &t.partitions {
                owners.insert((t.topic.clone(), *p), m.member_id.clone());
            }
        }
    }
    let partitions: BTreeSet<TopicPartition> =
        committed.keys().chain(owners.keys()).cloned().collect();
    let ends = end_offsets(client, &partitions)?;
    let offsets = partitions
        .into_iter()
        .map(|tp| {
            let committed_offset = committed.get(&tp).copied();
            let end_offset = ends.get(&tp).copied();
            let lag = committed_offset
                .zip(end_offset)
                .map(|(c, e)| e.saturating_sub(c).max(0));
            PartitionLag {
                member_id: owners.get(&tp).cloned(),
                topic: tp.0,
                partition: tp.1,
                committed_offset,
                end_offset,
                lag,
            }
        })
        .collect();
    out.print(&Description { state, offsets }, render_description)
}

/// The end offset of each of `partitions` whose topic still exists.
fn end_offsets(
    client: &mut Client,
    partitions: &BTreeSet<TopicPartition>,
) -> Result<BTreeMap<TopicPartition, i64>, AdminError> {
    let topics: BTreeSet<&str> = partitions.iter().map(|(t, _)| t.as_str()).collect();
    let mut ends = BTreeMap::new();
    for topic in topics {
        let leaders = match client.partitions(topic) {
            Ok(leaders) => leaders,
            // A group may keep offsets of a deleted topic: it has no end, hence no lag.
            Err(AdminError::UnknownTopic(_)) => continue,
            Err(e) => return Err(e),
        };
        let wanted: Vec<_> = leaders
            .into_iter()
            .filter(|l| partitions.contains(&(l.topic.clone(), l.partition)))
            .collect();
        for (tp, offset) in client.list_offsets(&wanted, LATEST)? {
            if let Some(offset) = offset {
                ends.insert(tp, offset);
            }
        }
    }
    Ok(ends)
}

fn render_description(d: &Description) -> String {
    let s = &d.state;
    let protocol = if s.protocol.is_empty() {
        s.protocol_type.clone()
    } else {
        format!("{}/{}", s.protocol_type, s.protocol)
    };
    let mut text = format!(
        "Group: {}  State: {}  Protocol: {}  Members: {}\n\n",
        s.group,
        s.state,
        if protocol.is_empty() { "-" } else { &protocol },
        s.members.len()
    );
    if !s.members.is_empty() {
        let mut members = Table::new(&["MEMBER", "INSTANCE", "CLIENT-ID", "HOST", "ASSIGNMENT"]);
        for m in &s.members {
            members.row(vec![
                m.member_id.clone(),
                m.group_instance_id
                    .clone()
                    .unwrap_or_else(|| "-".to_owned()),
                m.client_id.clone(),
                m.client_host.clone(),
                assignment_text(m.assignment.as_deref()),
            ]);
        }
        text.push_str(&members.render());
        text.push('\n');
    }
    let cell = |o: Option<i64>| o.map_or_else(|| "-".to_owned(), |o| o.to_string());
    let mut offsets = Table::new(&["TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "MEMBER"]);
    for p in &d.offsets {
        offsets.row(vec![
            p.topic.clone(),
            p.partition.to_string(),
            cell(p.committed_offset),
            cell(p.end_offset),
            cell(p.lag),
            p.member_id.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    text.push_str(&offsets.render());
    text
}

/// `orders:0,1 payments:2`, or why there is nothing to show.
fn assignment_text(assignment: Option<&[AssignedTopic]>) -> String {
    match assignment {
        None => "(not decodable)".to_owned(),
        Some([]) => "-".to_owned(),
        Some(topics) => topics
            .iter()
            .map(|t| {
                let partitions: Vec<String> = t.partitions.iter().map(i32::to_string).collect();
                format!("{}:{}", t.topic, partitions.join(","))
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, Bytes};
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as Assigned;
    use kafka_protocol::messages::{ConsumerProtocolAssignment, TopicName};
    use kafka_protocol::protocol::Encodable;

    fn assignment_bytes(version: i16) -> Bytes {
        let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            Assigned::default()
                .with_topic(TopicName(StrBytes::from_static_str("orders")))
                .with_partitions(vec![2, 0]),
        ]);
        let mut buf = bytes::BytesMut::new();
        buf.put_i16(version);
        assignment.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn consumer_assignments_decode_at_their_version() {
        for version in 0..=3 {
            let topics = decode_assignment(&assignment_bytes(version)).unwrap();
            assert_eq!(topics.len(), 1);
            assert_eq!(topics[0].topic, "orders");
            assert_eq!(topics[0].partitions, vec![0, 2]);
        }
        assert_eq!(
            assignment_text(Some(&decode_assignment(&assignment_bytes(1)).unwrap())),
            "orders:0,2"
        );
    }

    #[test]
    fn garbage_assignments_are_shown_as_such() {
        assert!(decode_assignment(&[0, 1, 0xff]).is_none());
        // A count of 2^31 - 1 topics in a few bytes, which a decoder that sizes its vector by
        // the count would try to allocate for.
        assert!(decode_assignment(&[0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 1, b'a']).is_none());
        assert!(decode_assignment(&[7]).is_none());
        assert_eq!(decode_assignment(&[]).map(|t| t.len()), Some(0));
        assert_eq!(assignment_text(None), "(not decodable)");
    }
}
