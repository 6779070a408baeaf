//! OffsetForLeaderEpoch (KIP-320): where a leader epoch of a partition ends, so that a consumer
//! resuming from an offset it got under that epoch (a committed offset, a seek) can tell whether
//! the log it read was truncated since. librdkafka and the Java consumer ask it before fetching
//! from such an offset; an end below the offset is *log truncation*, and the consumer resets.
//!
//! A partition here has one epoch, [`LEADER_EPOCH`], from its creation on, so the answers are
//! those of Kafka's leader-epoch cache holding that single entry: for [`LEADER_EPOCH`] the log
//! end (the high watermark); for a later epoch "no such epoch" (-1, -1); for no epoch (-1) the
//! same; for an earlier one (never stamped on a batch here) the epoch asked with the first
//! offset of the log, where the known epoch starts. The partitions are looked up
//! [`LIST_OFFSETS_LOOKUPS_AT_ONCE`] at a time, as ListOffsets does, and answered in request
//! order.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderPartition;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use spindle_engine::{OffsetSpec, TopicPartition};

use crate::kafka::api::per_partition;
use crate::kafka::context::RequestContext;
use crate::kafka::error_code;
use crate::kafka::wire::{check_leader_epoch, offset_to_wire, partition_from_wire, LEADER_EPOCH};
use crate::limits::LIST_OFFSETS_LOOKUPS_AT_ONCE;

/// The epoch a client names when it knows none, and the answer for an epoch not known here.
const UNDEFINED_EPOCH: i32 = -1;
/// The end offset answered with [`UNDEFINED_EPOCH`].
const UNDEFINED_OFFSET: i64 = -1;

/// Answers one OffsetForLeaderEpoch request.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let answers = per_partition(
        &req.topics,
        |topic| &topic.partitions,
        |topic, part| end_of_epoch(ctx, topic.topic.0.as_str(), part),
        LIST_OFFSETS_LOOKUPS_AT_ONCE,
    )
    .await;
    let topics = req
        .topics
        .iter()
        .zip(answers)
        .map(|(topic, answers)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(answers)
                .map(|(part, found)| {
                    let answer = EpochEndOffset::default().with_partition(part.partition);
                    match found {
                        Ok((epoch, end)) => answer.with_leader_epoch(epoch).with_end_offset(end),
                        Err(code) => answer
                            .with_error_code(code)
                            .with_leader_epoch(UNDEFINED_EPOCH)
                            .with_end_offset(UNDEFINED_OFFSET),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// `(epoch, end offset)` for one partition: the largest epoch at or below the one asked for,
/// and the offset where the epoch after it starts (or the log end).
async fn end_of_epoch(
    ctx: &RequestContext,
    topic: &str,
    part: &OffsetForLeaderPartition,
) -> Result<(i32, i64), i16> {
    if !ctx.sees(topic) {
        return Err(ResponseError::TopicAuthorizationFailed.code());
    }
    let Some(partition) = partition_from_wire(part.partition) else {
        return Err(ResponseError::UnknownTopicOrPartition.code());
    };
    check_leader_epoch(part.current_leader_epoch)?;
    let (epoch, spec) = match part.leader_epoch {
        LEADER_EPOCH => (LEADER_EPOCH, OffsetSpec::Latest),
        e if e == UNDEFINED_EPOCH || e > LEADER_EPOCH => (UNDEFINED_EPOCH, OffsetSpec::Latest),
        earlier => (earlier, OffsetSpec::Earliest),
    };
    let tp = TopicPartition::new(topic, partition);
    // The lookup also tells an unknown partition from a known one.
    let found = ctx
        .shard
        .list_offset(&tp, spec)
        .await
        .map_err(|e| error_code::code_of(&e))?;
    if epoch == UNDEFINED_EPOCH {
        return Ok((UNDEFINED_EPOCH, UNDEFINED_OFFSET));
    }
    let (offset, _) = found.ok_or(ResponseError::UnknownServerError.code())?;
    Ok((epoch, offset_to_wire(offset)))
}
