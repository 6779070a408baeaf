//! ListOffsets: earliest (-2), latest (-1), the first offset with the largest timestamp (-3), or
//! the first offset at or after a timestamp, for each partition asked,
//! [`LIST_OFFSETS_LOOKUPS_AT_ONCE`] partitions at once, answered in request
//! order. A lookup by timestamp reads a window of a segment file, and one request may name
//! millions of partitions (the same one again and again, too), so the lookups are not all
//! started together.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use spindle_engine::{OffsetSpec, TopicPartition};

use crate::kafka::api::per_partition;
use crate::kafka::context::RequestContext;
use crate::kafka::error_code;
use crate::kafka::wire::{check_leader_epoch, offset_to_wire, partition_from_wire, LEADER_EPOCH};
use crate::limits::LIST_OFFSETS_LOOKUPS_AT_ONCE;

/// Kafka's special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
/// The offset of the record with the largest timestamp (KIP-734).
const MAX_TIMESTAMP: i64 = -3;
/// The earliest offset still on local storage (KIP-405): all storage is local here.
const EARLIEST_LOCAL: i64 = -4;
/// The latest offset in tiered storage (KIP-1005): there is none.
const LATEST_TIERED: i64 = -5;

/// `isolation_level` of a consumer that reads only committed transactions.
const READ_COMMITTED: i8 = 1;

/// Answers one ListOffsets request.
pub(crate) async fn handle(ctx: &RequestContext, req: ListOffsetsRequest) -> ListOffsetsResponse {
    // A read-committed consumer's end is the last stable offset, as in Kafka.
    let latest = if req.isolation_level == READ_COMMITTED {
        OffsetSpec::LastStable
    } else {
        OffsetSpec::Latest
    };
    let answers = per_partition(
        &req.topics,
        |topic| &topic.partitions,
        |topic, part| lookup(ctx, topic.name.0.as_str(), part, latest),
        LIST_OFFSETS_LOOKUPS_AT_ONCE,
    )
    .await;
    // The answer names the offset's leader epoch from v4.
    let carries_epoch = ctx.api_version >= 4;
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
                    let base = ListOffsetsPartitionResponse::default()
                        .with_partition_index(part.partition_index);
                    match found {
                        Ok((offset, timestamp)) => base
                            .with_offset(offset)
                            .with_timestamp(timestamp)
                            .with_leader_epoch(if offset >= 0 && carries_epoch {
                                LEADER_EPOCH
                            } else {
                                -1
                            }),
                        Err(code) => base
                            .with_error_code(code)
                            .with_offset(-1)
                            .with_timestamp(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// `(offset, timestamp)` for one partition; `(-1, -1)` when no record is at or after the
/// timestamp.
async fn lookup(
    ctx: &RequestContext,
    topic: &str,
    part: &ListOffsetsPartition,
    latest: OffsetSpec,
) -> Result<(i64, i64), i16> {
    if !ctx.sees(topic) {
        return Err(ResponseError::TopicAuthorizationFailed.code());
    }
    let Some(partition) = partition_from_wire(part.partition_index) else {
        return Err(ResponseError::UnknownTopicOrPartition.code());
    };
    check_leader_epoch(part.current_leader_epoch)?;
    let spec = match part.timestamp {
        LATEST => latest,
        EARLIEST | EARLIEST_LOCAL => OffsetSpec::Earliest,
        LATEST_TIERED => return Ok((-1, -1)),
        MAX_TIMESTAMP => OffsetSpec::MaxTimestamp,
        ts if ts >= 0 => OffsetSpec::Timestamp(ts),
        _ => return Err(ResponseError::InvalidRequest.code()),
    };
    let tp = TopicPartition::new(topic, partition);
    match ctx.shard.list_offset(&tp, spec).await {
        Ok(Some((offset, ts))) => Ok((offset_to_wire(offset), ts)),
        Ok(None) => Ok((-1, -1)),
        Err(e) => Err(error_code::code_of(&e)),
    }
}
