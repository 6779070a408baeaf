//! Produce: every partition's record batches handed to the engine as received, all partitions
//! of the request at once, answers gathered in request order.
//!
//! The records stay the client's bytes end to end (DESIGN decision 2): the engine validates and
//! stores them, and the broker never decompresses. A transactional producer's batches are
//! stored like any other; their partition opens the producer's transaction at the first one,
//! once the transaction's coordinator confirms that the partition was added to it (KIP-890's
//! check, see `Shard::produce_in_transaction`).
//!
//! A partition refused for what the client sent (a batch that does not check, a record without
//! a key in a compacted topic, a sequence gap, ...) is answered with the error code and, from
//! v8, the reason as text, as Kafka does; the node's own failures (I/O) with the code alone.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::{EngineError, ProduceOutcome, TopicPartition};

use spindle_engine::access::Operation;

use crate::kafka::context::RequestContext;
use crate::kafka::error_code;
use crate::kafka::quota::QuotaKind;
use crate::kafka::wire::{offset_to_wire, partition_from_wire};

/// Answers one Produce request (the dispatcher drops the answer when acks is 0).
pub(crate) async fn handle(ctx: &RequestContext, req: ProduceRequest) -> ProduceResponse {
    let refusal = if !matches!(req.acks, -1..=1) {
        Some(ResponseError::InvalidRequiredAcks)
    } else {
        None
    };
    let transactional_id = req
        .transactional_id
        .as_ref()
        .map(|id| id.0.as_str().to_owned());
    let (topics, batches) = take_batches(req);
    let bytes: usize = batches
        .iter()
        .filter_map(|(_, _, records)| records.as_ref().map(Bytes::len))
        .sum();
    let transactional_id = transactional_id.as_deref();
    let writes = batches
        .into_iter()
        .map(|(topic, partition, records)| async move {
            match refusal {
                Some(kind) => Err(Refusal::from(kind.code())),
                None => write(ctx, topic, partition, records, transactional_id).await,
            }
        });
    let mut results = join_all(writes).await.into_iter();
    let responses = topics
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|index| partition_response(index, results.next(), ctx.api_version))
                .collect();
            TopicProduceResponse::default()
                .with_name(name)
                .with_partition_responses(partitions)
        })
        .collect();
    // Over its quota, or under memory pressure, the client is asked to hold back (KIP-219: it
    // mutes the connection for this long), beside the TCP backpressure of a connection that
    // stops reading.
    let over_quota = ctx.charge_quota(QuotaKind::Produce, bytes);
    ProduceResponse::default()
        .with_responses(responses)
        .with_throttle_time_ms(over_quota.max(ctx.shard.memory().throttle_time_ms()))
}

/// Takes the request apart: each topic's name (copied) and partition indexes, for the answer,
/// and each partition's batches, in request order. Nothing else of the request outlives this
/// call, so when the request carries one partition its batches are the only reference to the
/// frame they were decoded from, and the log patches their offsets in place rather than
/// copying them (`spindle_log::Log::append`).
fn take_batches(req: ProduceRequest) -> (Vec<(TopicName, Vec<i32>)>, Vec<Batches>) {
    let mut topics = Vec::with_capacity(req.topic_data.len());
    let mut batches = Vec::new();
    for topic in req.topic_data {
        let name: Arc<str> = Arc::from(topic.name.0.as_str());
        let mut indexes = Vec::with_capacity(topic.partition_data.len());
        for part in topic.partition_data {
            indexes.push(part.index);
            batches.push((Arc::clone(&name), part.index, part.records));
        }
        topics.push((TopicName(StrBytes::from_string(name.to_string())), indexes));
    }
    (topics, batches)
}

/// One partition's share of a Produce request: topic, partition index, batches.
type Batches = (Arc<str>, i32, Option<Bytes>);

/// Why a partition's batches were not written: a Kafka error code, and the reason where the
/// client caused it.
#[derive(Debug)]
struct Refusal {
    code: i16,
    message: Option<String>,
}

impl From<i16> for Refusal {
    fn from(code: i16) -> Self {
        Refusal {
            code,
            message: None,
        }
    }
}

/// Writes one partition's batches.
async fn write(
    ctx: &RequestContext,
    topic: Arc<str>,
    partition: i32,
    records: Option<Bytes>,
    transactional_id: Option<&str>,
) -> Result<ProduceOutcome, Refusal> {
    ctx.authorize(Operation::Write, &topic)?;
    let Some(partition) = partition_from_wire(partition) else {
        return Err(ResponseError::UnknownTopicOrPartition.code().into());
    };
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Err(ResponseError::CorruptMessage.code().into());
    };
    let tp = TopicPartition::new(topic, partition);
    let written = match transactional_id {
        Some(id) => ctx.shard.produce_in_transaction(&tp, records, id).await,
        None => ctx.shard.produce(&tp, records).await,
    };
    written.map_err(|e| {
        // The node's own failure is logged as one and its details stay here; a refusal of what
        // the client sent goes back to it with its reason.
        let node_failure = matches!(e, EngineError::Log(_) | EngineError::Io { .. });
        if node_failure {
            tracing::error!(peer = %ctx.peer, partition = %tp, error = %e, "produce failed");
        } else {
            tracing::debug!(peer = %ctx.peer, partition = %tp, error = %e, "produce refused");
        }
        Refusal {
            code: error_code::code_of(&e),
            message: (!node_failure).then(|| e.to_string()),
        }
    })
}

fn partition_response(
    index: i32,
    result: Option<Result<ProduceOutcome, Refusal>>,
    version: i16,
) -> PartitionProduceResponse {
    let base = PartitionProduceResponse::default().with_index(index);
    match result {
        Some(Ok(outcome)) => base
            .with_base_offset(offset_to_wire(outcome.base_offset))
            .with_log_append_time_ms(outcome.log_append_time_ms)
            .with_log_start_offset(offset_to_wire(outcome.log_start_offset)),
        Some(Err(refusal)) => base
            .with_error_code(refusal.code)
            // The field exists from v8.
            .with_error_message(
                refusal
                    .message
                    .filter(|_| version >= 8)
                    .map(StrBytes::from_string),
            )
            .with_base_offset(-1)
            .with_log_append_time_ms(-1)
            .with_log_start_offset(-1),
        // One result per partition is gathered above; a missing one is a server error.
        None => base
            .with_error_code(ResponseError::UnknownServerError.code())
            .with_base_offset(-1),
    }
}
