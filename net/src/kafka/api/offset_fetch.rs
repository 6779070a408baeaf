//! OffsetFetch: a group's committed positions.
//!
//! v1–v7 ask for one group, v8+ for a batch of groups; each group is read on its coordinator
//! shard. A partition without a commit answers offset -1; topics absent (null) ask for every
//! partition the group has committed. A request asking for stable offsets (v7+, KIP-447; what a
//! read-committed consumer sends) gets UNSTABLE_OFFSET_COMMIT for a partition whose offset an
//! unfinished transaction holds for the group, and asks again until it is committed or dropped.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::group::{self, CommittedOffset};
use spindle_engine::{txn, TopicPartition};

use spindle_engine::access::Operation;

use crate::kafka::context::RequestContext;

/// One partition's answer.
struct Fetched {
    topic: String,
    partition: i32,
    committed: Option<CommittedOffset>,
    error_code: i16,
}

/// Answers one OffsetFetch request.
pub(crate) async fn handle(ctx: &RequestContext, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let stable = ctx.api_version >= 7 && req.require_stable;
    if ctx.api_version < 8 {
        let asked = req
            .topics
            .map(|topics| asked(topics.into_iter().map(|t| (t.name, t.partition_indexes))));
        let (error_code, fetched) = fetch_group(ctx, req.group_id.0.as_str(), asked, stable).await;
        return OffsetFetchResponse::default()
            .with_error_code(error_code)
            .with_topics(old_topics(fetched, ctx.api_version));
    }
    let mut groups = Vec::with_capacity(req.groups.len());
    for g in req.groups {
        let asked = g
            .topics
            .map(|topics| asked(topics.into_iter().map(|t| (t.name, t.partition_indexes))));
        let (error_code, fetched) = fetch_group(ctx, g.group_id.0.as_str(), asked, stable).await;
        groups.push(
            OffsetFetchResponseGroup::default()
                .with_group_id(g.group_id)
                .with_error_code(error_code)
                .with_topics(new_topics(fetched)),
        );
    }
    OffsetFetchResponse::default().with_groups(groups)
}

/// The (topic, partition) pairs a request's topics name, in order (v1–v7 and v8+ carry them in
/// types of their own).
fn asked(topics: impl Iterator<Item = (TopicName, Vec<i32>)>) -> Vec<(String, i32)> {
    topics
        .flat_map(|(name, partitions)| {
            let name = name.0.as_str().to_owned();
            partitions.into_iter().map(move |p| (name.clone(), p))
        })
        .collect()
}

/// Reads one group's offsets on its coordinator: the partitions asked, or all when `None`; with
/// `stable`, those an unfinished transaction holds are answered UNSTABLE_OFFSET_COMMIT. A group
/// the principal may not use is GROUP_AUTHORIZATION_FAILED: for the group from v2, which can
/// say so, and for each partition asked before.
async fn fetch_group(
    ctx: &RequestContext,
    group_id: &str,
    asked: Option<Vec<(String, i32)>>,
    stable: bool,
) -> (i16, Vec<Fetched>) {
    if let Err(code) = ctx.authorize_group(group_id) {
        if ctx.api_version >= 2 {
            return (code, Vec::new());
        }
        let refused = asked
            .unwrap_or_default()
            .into_iter()
            .map(|(topic, partition)| Fetched {
                topic,
                partition,
                committed: None,
                error_code: code,
            });
        return (0, refused.collect());
    }
    let (code, mut fetched) = committed_offsets(ctx, group_id, asked).await;
    if stable && code == 0 {
        let Ok(held) = txn::held_offsets(&ctx.shard, group_id).await else {
            return (ResponseError::CoordinatorNotAvailable.code(), Vec::new());
        };
        for f in &mut fetched {
            let unstable = held.iter().any(|tp| {
                *tp.topic == *f.topic && i64::from(tp.partition.0) == i64::from(f.partition)
            });
            if unstable && f.error_code == 0 {
                f.committed = None;
                f.error_code = ResponseError::UnstableOffsetCommit.code();
            }
        }
    }
    (code, fetched)
}

/// Reads one group's committed offsets on its coordinator.
async fn committed_offsets(
    ctx: &RequestContext,
    group_id: &str,
    asked: Option<Vec<(String, i32)>>,
) -> (i16, Vec<Fetched>) {
    let tps: Option<Vec<TopicPartition>> = asked.as_ref().map(|asked| {
        asked
            .iter()
            .filter(|(t, _)| ctx.allows(Operation::Read, t))
            .filter_map(|(t, p)| Some(TopicPartition::new(t.as_str(), u32::try_from(*p).ok()?)))
            .collect()
    });
    let id = group_id.to_owned();
    let routed = group::on_coordinator(&ctx.shard, group_id, move |_, groups| async move {
        groups.fetch_offsets(&id, tps.as_deref())
    })
    .await;
    let Ok(found) = routed else {
        return (ResponseError::CoordinatorNotAvailable.code(), Vec::new());
    };
    let Some(asked) = asked else {
        // Topics the principal may not read are left out, as Kafka leaves them out.
        let all = found
            .into_iter()
            .filter(|(tp, _)| ctx.allows(Operation::Read, &tp.topic))
            .map(|(tp, committed)| Fetched {
                topic: tp.topic.to_string(),
                partition: i32::try_from(tp.partition.0).unwrap_or(i32::MAX),
                committed,
                error_code: 0,
            })
            .collect();
        return (0, all);
    };
    // `found` holds the valid partitions of `asked`, in order.
    let mut found = found.into_iter();
    let fetched = asked
        .into_iter()
        .map(|(topic, partition)| {
            let (committed, error_code) = if !ctx.allows(Operation::Read, &topic) {
                (None, ResponseError::TopicAuthorizationFailed.code())
            } else if partition < 0 {
                (None, ResponseError::UnknownTopicOrPartition.code())
            } else {
                (found.next().and_then(|(_, c)| c), 0)
            };
            Fetched {
                topic,
                partition,
                committed,
                error_code,
            }
        })
        .collect();
    (0, fetched)
}

/// Groups consecutive answers by topic, preserving order.
fn by_topic(fetched: Vec<Fetched>) -> Vec<(String, Vec<Fetched>)> {
    let mut topics: Vec<(String, Vec<Fetched>)> = Vec::new();
    for f in fetched {
        match topics.last_mut() {
            Some((name, parts)) if *name == f.topic => parts.push(f),
            _ => topics.push((f.topic.clone(), vec![f])),
        }
    }
    topics
}

/// Kafka answers a partition without a commit with offset -1 and empty metadata.
fn parts_of(f: &Fetched) -> (i64, i32, Option<StrBytes>) {
    match &f.committed {
        Some(c) => (
            c.offset,
            c.leader_epoch,
            Some(StrBytes::from_string(
                c.metadata.clone().unwrap_or_default(),
            )),
        ),
        None => (-1, -1, Some(StrBytes::new())),
    }
}

fn old_topics(fetched: Vec<Fetched>, version: i16) -> Vec<OffsetFetchResponseTopic> {
    by_topic(fetched)
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts
                .iter()
                .map(|f| {
                    let (offset, epoch, metadata) = parts_of(f);
                    let p = OffsetFetchResponsePartition::default()
                        .with_partition_index(f.partition)
                        .with_committed_offset(offset)
                        .with_metadata(metadata)
                        .with_error_code(f.error_code);
                    if version >= 5 {
                        p.with_committed_leader_epoch(epoch)
                    } else {
                        p
                    }
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions)
        })
        .collect()
}

fn new_topics(fetched: Vec<Fetched>) -> Vec<OffsetFetchResponseTopics> {
    by_topic(fetched)
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts
                .iter()
                .map(|f| {
                    let (offset, epoch, metadata) = parts_of(f);
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(f.partition)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(epoch)
                        .with_metadata(metadata)
                        .with_error_code(f.error_code)
                })
                .collect();
            OffsetFetchResponseTopics::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions)
        })
        .collect()
}
