//! `spindle group reset-offsets`: move a group's committed offsets on every partition of a
//! topic to the earliest or latest offset, to an offset, or to a point in time.
//!
//! The new offsets are committed as an admin does in Kafka: OffsetCommit with generation -1
//! and an empty member id, which the coordinator accepts only while the group has no members.
//! The group's state is checked first so a running group is refused with a clear message
//! instead of an UNKNOWN_MEMBER_ID code; a group that has never existed may be given offsets
//! (its consumers then start from them). The plan is always computed and shown; it is
//! committed only with `--execute`, so the default is a dry run.
//!
//! Targets are kept inside each partition: `--to-offset` beyond the end becomes the end, and
//! before the start becomes the start (a consumer would be reset anyway, losing the intent);
//! `--to-timestamp` after the last record becomes the end, as Kafka's own tool does.

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use crate::admin::args::ResetArgs;
use crate::admin::client::{Client, PartitionLeader, TopicPartition, EARLIEST, LATEST};
use crate::admin::error::AdminError;
use crate::admin::group;
use crate::admin::table::{Printer, Table};

/// Highest OffsetCommit version used: v10 names topics by id only.
const OFFSET_COMMIT_VERSION_MAX: i16 = 9;

/// Where the offsets go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    Timestamp(i64),
}

impl Target {
    fn from_args(args: &ResetArgs) -> Self {
        // clap's "target" group guarantees exactly one of these.
        match (args.to_offset, args.to_timestamp) {
            (Some(offset), _) => Self::Offset(offset),
            (_, Some(ms)) => Self::Timestamp(ms),
            _ if args.to_latest => Self::Latest,
            _ => Self::Earliest,
        }
    }
}

/// What `group reset-offsets` reports.
#[derive(Debug, Serialize)]
struct Plan {
    group: String,
    topic: String,
    executed: bool,
    partitions: Vec<PlannedPartition>,
}

/// One partition of the plan.
#[derive(Debug, Serialize)]
struct PlannedPartition {
    partition: i32,
    current_offset: Option<i64>,
    new_offset: i64,
}

/// Runs `group reset-offsets`.
///
/// # Errors
/// [`AdminError::GroupNotEmpty`] while the group has members; [`AdminError::UnknownTopic`];
/// connection and Kafka errors.
pub fn run(client: &mut Client, args: &ResetArgs, out: &mut Printer) -> Result<(), AdminError> {
    let group = args.group.as_str();
    match group::describe_group(client, group) {
        Ok(state) if !state.members.is_empty() || state.state != "Empty" => {
            return Err(AdminError::GroupNotEmpty {
                group: group.to_owned(),
                state: state.state,
                members: state.members.len(),
            });
        }
        Ok(_) | Err(AdminError::UnknownGroup(_)) => {}
        Err(e) => return Err(e),
    }
    let leaders = client.partitions(&args.topic)?;
    let current = group::committed_offsets(client, group)?;
    let targets = target_offsets(client, &leaders, Target::from_args(args))?;
    let partitions = leaders
        .iter()
        .map(|l| {
            let key = (l.topic.clone(), l.partition);
            PlannedPartition {
                partition: l.partition,
                current_offset: current.get(&key).copied(),
                new_offset: targets.get(&key).copied().unwrap_or(0),
            }
        })
        .collect();
    let mut plan = Plan {
        group: group.to_owned(),
        topic: args.topic.clone(),
        executed: false,
        partitions,
    };
    if args.execute {
        commit(client, &plan)?;
        plan.executed = true;
    }
    out.print(&plan, render)
}

/// The new offset of every partition.
fn target_offsets(
    client: &mut Client,
    leaders: &[PartitionLeader],
    target: Target,
) -> Result<BTreeMap<TopicPartition, i64>, AdminError> {
    let starts = client.list_offsets(leaders, EARLIEST)?;
    let ends = client.list_offsets(leaders, LATEST)?;
    let at_time = match target {
        Target::Timestamp(ms) => Some(client.list_offsets(leaders, ms)?),
        _ => None,
    };
    let mut targets = BTreeMap::new();
    for l in leaders {
        let key = (l.topic.clone(), l.partition);
        let start = starts.get(&key).copied().flatten().unwrap_or(0);
        let end = ends.get(&key).copied().flatten().unwrap_or(start);
        let found = at_time
            .as_ref()
            .and_then(|m| m.get(&key).copied().flatten());
        targets.insert(key, choose(target, start, end, found));
    }
    Ok(targets)
}

/// The new offset of one partition whose log spans `start..end`; `found` is the ListOffsets
/// answer for a timestamp target.
fn choose(target: Target, start: i64, end: i64, found: Option<i64>) -> i64 {
    match target {
        Target::Earliest => start,
        Target::Latest => end,
        Target::Offset(offset) => offset.clamp(start, end.max(start)),
        Target::Timestamp(_) => found.unwrap_or(end),
    }
}

/// Commits the plan as an admin: generation -1, no member id.
fn commit(client: &mut Client, plan: &Plan) -> Result<(), AdminError> {
    let partitions = plan
        .partitions
        .iter()
        .map(|p| {
            OffsetCommitRequestPartition::default()
                .with_partition_index(p.partition)
                .with_committed_offset(p.new_offset)
        })
        .collect();
    let topic = OffsetCommitRequestTopic::default()
        .with_name(TopicName(StrBytes::from_string(plan.topic.clone())))
        .with_partitions(partitions);
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(plan.group.clone())))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::default())
        .with_topics(vec![topic]);
    let conn = client.coordinator(&plan.group)?;
    let version = conn
        .version::<OffsetCommitRequest>()?
        .min(OFFSET_COMMIT_VERSION_MAX);
    let response = conn.call_at(&request, version)?;
    for t in response.topics {
        for p in t.partitions {
            AdminError::check(p.error_code, None, || {
                format!(
                    "committing the offset of group {} on {}-{}",
                    plan.group,
                    t.name.as_str(),
                    p.partition_index
                )
            })?;
        }
    }
    Ok(())
}

fn render(plan: &Plan) -> String {
    let mut table = Table::new(&["TOPIC", "PARTITION", "CURRENT", "NEW"]);
    for p in &plan.partitions {
        table.row(vec![
            plan.topic.clone(),
            p.partition.to_string(),
            p.current_offset
                .map_or_else(|| "-".to_owned(), |o| o.to_string()),
            p.new_offset.to_string(),
        ]);
    }
    let verdict = if plan.executed {
        format!("committed the new offsets of group {}\n", plan.group)
    } else {
        "dry run: nothing changed (add --execute to commit)\n".to_owned()
    };
    format!("{}\n{verdict}", table.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_stay_inside_the_partition() {
        assert_eq!(choose(Target::Earliest, 5, 9, None), 5);
        assert_eq!(choose(Target::Latest, 5, 9, None), 9);
        assert_eq!(choose(Target::Offset(7), 5, 9, None), 7);
        assert_eq!(choose(Target::Offset(100), 5, 9, None), 9);
        assert_eq!(choose(Target::Offset(0), 5, 9, None), 5);
        assert_eq!(choose(Target::Timestamp(1), 5, 9, Some(6)), 6);
        assert_eq!(choose(Target::Timestamp(1), 5, 9, None), 9);
    }

    #[test]
    fn dry_runs_say_nothing_changed() {
        let plan = Plan {
            group: "g".into(),
            topic: "orders".into(),
            executed: false,
            partitions: vec![PlannedPartition {
                partition: 0,
                current_offset: None,
                new_offset: 3,
            }],
        };
        let text = render(&plan);
        assert!(text.contains("orders          0  -          3\n"), "{text}");
        assert!(text.ends_with("dry run: nothing changed (add --execute to commit)\n"));
    }
}
