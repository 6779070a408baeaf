//! One file per Kafka API. Each exposes
//! `pub(crate) async fn handle(ctx: &RequestContext, req: XRequest) -> XResponse`, answers every
//! part of the request (an error in one partition is that partition's error code, never the
//! whole request's failure) and maps engine errors to Kafka codes through `error_code`.

pub(crate) mod acls;
pub(crate) mod alter_configs;
pub(crate) mod api_versions;
pub(crate) mod client_quotas;
pub(crate) mod consumer_group_describe;
pub(crate) mod consumer_group_heartbeat;
pub(crate) mod create_partitions;
pub(crate) mod create_topics;
pub(crate) mod delete_groups;
pub(crate) mod delete_records;
pub(crate) mod delete_topics;
pub(crate) mod describe_cluster;
pub(crate) mod describe_configs;
pub(crate) mod describe_groups;
pub(crate) mod describe_log_dirs;
pub(crate) mod describe_producers;
pub(crate) mod describe_topic_partitions;
pub(crate) mod describe_transactions;
pub(crate) mod fetch;
pub(crate) mod find_coordinator;
pub(crate) mod heartbeat;
pub(crate) mod incremental_alter_configs;
pub(crate) mod init_producer_id;
pub(crate) mod join_group;
pub(crate) mod leave_group;
pub(crate) mod list_config_resources;
pub(crate) mod list_groups;
pub(crate) mod list_offsets;
pub(crate) mod list_transactions;
pub(crate) mod metadata;
pub(crate) mod offset_commit;
pub(crate) mod offset_delete;
pub(crate) mod offset_fetch;
pub(crate) mod offset_for_leader_epoch;
pub(crate) mod produce;
pub(crate) mod replicas;
pub(crate) mod scram_credentials;
pub(crate) mod sync_group;
pub(crate) mod transactions;
pub(crate) mod write_txn_markers;

use std::future::Future;

use futures::stream::{self, StreamExt};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::TopicName;
use spindle_engine::access::Operation;
use spindle_engine::group::{CommitOutcome, GroupError};

use crate::kafka::context::RequestContext;

/// The error code of each partition of a request a group coordinator answered partition by
/// partition (OffsetCommit, OffsetDelete), handed out in request order. Partitions with a
/// negative index never reached the coordinator and are UNKNOWN_TOPIC_OR_PARTITION; those of a
/// topic the principal may not read never reached it either and are TOPIC_AUTHORIZATION_FAILED.
pub(crate) struct PartitionCodes {
    /// A code for every partition when the request was refused as a whole, else 0.
    whole: i16,
    /// Whether `whole` answers every partition, 0 included (`all`).
    uniform: bool,
    each: std::vec::IntoIter<(spindle_engine::TopicPartition, Result<(), GroupError>)>,
}

/// Whether the request's principal may read `topic`: commit, fetch or delete its offsets.
pub(crate) fn readable(ctx: &RequestContext, topic: &TopicName) -> bool {
    ctx.allows(Operation::Read, topic.0.as_str())
}

impl PartitionCodes {
    pub(crate) fn new(whole: i16, outcome: CommitOutcome) -> Self {
        Self {
            whole,
            uniform: false,
            each: outcome.into_iter(),
        }
    }

    /// The same `code` for every partition that reached the coordinator (a request that
    /// succeeds or fails as a whole, as TxnOffsetCommit does).
    pub(crate) fn all(code: i16) -> Self {
        Self {
            whole: code,
            uniform: true,
            each: Vec::new().into_iter(),
        }
    }

    /// The answer's topics, in request order: each `(name, partition indexes)` asked, each
    /// partition answered `partition(index, code)` with its code from [`PartitionCodes::next`],
    /// gathered by `topic(name, partitions)`.
    pub(crate) fn answer<T, P>(
        &mut self,
        ctx: &RequestContext,
        asked: impl IntoIterator<Item = (TopicName, Vec<i32>)>,
        partition: impl Fn(i32, i16) -> P,
        topic: impl Fn(TopicName, Vec<P>) -> T,
    ) -> Vec<T> {
        asked
            .into_iter()
            .map(|(name, indexes)| {
                let may_read = readable(ctx, &name);
                let partitions = indexes
                    .into_iter()
                    .map(|index| partition(index, self.next(index, may_read)))
                    .collect();
                topic(name, partitions)
            })
            .collect()
    }

    /// The code of the next partition of the request, whose index was `partition_index`, of a
    /// topic the principal may (`readable`) or may not read.
    pub(crate) fn next(&mut self, partition_index: i32, readable: bool) -> i16 {
        if !readable {
            return ResponseError::TopicAuthorizationFailed.code();
        }
        if partition_index < 0 {
            return ResponseError::UnknownTopicOrPartition.code();
        }
        if self.whole != 0 || self.uniform {
            return self.whole;
        }
        match self.each.next() {
            Some((_, Ok(()))) => 0,
            Some((_, Err(e))) => e.kafka_code(),
            None => ResponseError::UnknownServerError.code(),
        }
    }
}

/// Looks up every partition of every topic of a request, at most `at_once` lookups at a time
/// (each may read a segment window or cross to another shard), and returns the answers nested
/// as the request nests its partitions: `answers[t][p]` for `partitions(&topics[t])[p]`.
pub(crate) async fn per_partition<'a, T, P: 'a, R, Fut>(
    topics: &'a [T],
    partitions: impl Fn(&'a T) -> &'a [P],
    lookup: impl Fn(&'a T, &'a P) -> Fut,
    at_once: usize,
) -> Vec<Vec<R>>
where
    Fut: Future<Output = R>,
{
    let (partitions, lookup) = (&partitions, &lookup);
    let lookups = topics.iter().flat_map(|topic| {
        partitions(topic)
            .iter()
            .map(move |part| lookup(topic, part))
    });
    let answers: Vec<R> = stream::iter(lookups).buffered(at_once).collect().await;
    let mut answers = answers.into_iter();
    topics
        .iter()
        .map(|topic| answers.by_ref().take(partitions(topic).len()).collect())
        .collect()
}
