//! DeleteRecords: moves partitions' log start offsets forward (`kafka-delete-records`,
//! `AdminClient.delete_records`, Kafka Streams purging its repartition topics). Records below
//! the new start are gone for consumers at once (a Fetch below it is OFFSET_OUT_OF_RANGE, and
//! ListOffsets earliest answers it); the segments wholly below it are deleted by the next
//! retention run. An offset of -1 means the high watermark, as in Kafka.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use spindle_engine::{Offset, TopicPartition};

use spindle_engine::access::Operation;

use crate::kafka::context::RequestContext;
use crate::kafka::error_code;
use crate::kafka::wire::{offset_from_wire, offset_to_wire, partition_from_wire};
use crate::limits::MAX_ADMIN_RESOURCES;

/// The offset that asks for everything below the high watermark to go.
const HIGH_WATERMARK: i64 = -1;

/// Answers one DeleteRecords request, partition by partition in request order.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut named = 0usize;
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for part in topic.partitions {
            named += 1;
            let result = if named > MAX_ADMIN_RESOURCES {
                Err(ResponseError::PolicyViolation.code())
            } else {
                delete(
                    ctx,
                    topic.name.0.as_str(),
                    part.partition_index,
                    part.offset,
                )
                .await
            };
            let base =
                DeleteRecordsPartitionResult::default().with_partition_index(part.partition_index);
            partitions.push(match result {
                Ok(low_watermark) => base.with_low_watermark(low_watermark),
                Err(code) => base.with_low_watermark(-1).with_error_code(code),
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

/// Deletes the records of one partition below `offset`; the new log start offset.
async fn delete(
    ctx: &RequestContext,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<i64, i16> {
    ctx.authorize(Operation::Admin, topic)?;
    let Some(partition) = partition_from_wire(partition) else {
        return Err(ResponseError::UnknownTopicOrPartition.code());
    };
    let before = requested(offset).ok_or(ResponseError::OffsetOutOfRange.code())?;
    let tp = TopicPartition::new(topic, partition);
    match ctx.shard.delete_records(&tp, before).await {
        Ok(start) => {
            tracing::info!(topic, partition, log_start_offset = %start, "records deleted");
            Ok(offset_to_wire(start))
        }
        Err(e) => Err(error_code::code_of(&e)),
    }
}

/// What the engine is asked to delete below: `Some(None)` for the high watermark, `None` for a
/// negative offset that means nothing.
fn requested(offset: i64) -> Option<Option<Offset>> {
    match offset {
        HIGH_WATERMARK => Some(None),
        _ => offset_from_wire(offset).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_one_asks_for_the_high_watermark_and_other_negatives_are_refused() {
        assert_eq!(requested(-1), Some(None));
        assert_eq!(requested(0), Some(Some(Offset(0))));
        assert_eq!(requested(42), Some(Some(Offset(42))));
        assert_eq!(requested(-2), None);
    }
}
