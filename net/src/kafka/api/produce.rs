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

use std::ops::Range;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::{EngineError, ProduceOutcome, TopicPartition};

use spindle_engine::access::Operation;

use crate::kafka::context::RequestContext;
use crate::kafka::error_code;
use crate::kafka::wire::{offset_to_wire, partition_from_wire};

/// What the connection learned of a Produce as it read it.
#[derive(Debug, Default)]
pub(crate) struct Arrival {
    /// The frame its batches are slices of (see [`owned_batches`]).
    pub(crate) frame: Option<Bytes>,
    /// The `throttle_time_ms` of its client's quota charge. A Produce is charged as it is read,
    /// not once answered: over the quota, the connection is then held back before its next
    /// request is read, so a client pipelining Produce requests cannot run ahead of its quota by
    /// all it has in flight (a Kafka broker handles one request of a connection at a time).
    pub(crate) throttle_ms: i32,
}

/// Answers one Produce request (the dispatcher drops the answer when acks is 0).
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: ProduceRequest,
    arrival: Arrival,
) -> ProduceResponse {
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
    let (batches, copied) = owned_batches(arrival.frame, batches);
    ctx.shard.metrics().bytes_copied.add(copied as u64);
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
    // Over its quota (charged as the request was read), or under memory pressure, the client is
    // asked to hold back (KIP-219: it mutes the connection for this long), beside the TCP
    // backpressure of a connection that stops reading.
    ProduceResponse::default()
        .with_responses(responses)
        .with_throttle_time_ms(
            arrival
                .throttle_ms
                .max(ctx.shard.memory().throttle_time_ms()),
        )
}

/// The bytes of a Produce request's batches, what its client's quota is charged.
pub(crate) fn records_bytes(req: &ProduceRequest) -> usize {
    req.topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .filter_map(|p| p.records.as_ref().map(Bytes::len))
        .sum()
}

/// Takes the request apart: each topic's name (copied) and partition indexes, for the answer,
/// and each partition's batches, in request order. Nothing else of the request outlives this
/// call, so that the batches are the only slices left of the frame they were decoded from
/// (see [`owned_batches`]).
fn take_batches(req: ProduceRequest) -> (Vec<TopicIndexes>, Vec<Batches<Bytes>>) {
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

/// A topic's name and the indexes of its partitions in a Produce request, for the answer.
type TopicIndexes = (TopicName, Vec<i32>);

/// One partition's share of a Produce request: topic, partition index, batches.
type Batches<B> = (Arc<str>, i32, Option<B>);

/// Each partition's batches as a buffer of its own, which the log patches in place (it assigns
/// offsets by rewriting each batch's base offset) and keeps as it is.
///
/// The codec decodes batches as slices of the request's frame, and bytes other slices share
/// cannot be written to. So, once the rest of the request is dropped, the frame is taken back as
/// the one buffer it was read into. The partition whose batches fill at least half of it (all
/// of a request for one partition, the bulk of one for a hot partition and a few cold ones) is
/// cut out of it, with no copy; the others' batches are copied into buffers of their own. A
/// piece keeps its whole frame in memory as long as its partition's tail cache holds it, so a
/// piece must be most of its frame: small pieces of other partitions' frames, each kept by a
/// partition that appends rarely, would otherwise hold any amount of memory that no budget
/// counts. Should something else still hold the frame, or the batches not lie in it in order,
/// every partition's batches are copied. Returns the batches and the bytes copied
/// (`spindle_bytes_copied_total`).
fn owned_batches(
    frame: Option<Bytes>,
    batches: Vec<Batches<Bytes>>,
) -> (Vec<Batches<BytesMut>>, usize) {
    let places = frame.as_ref().and_then(|f| places_in(f, &batches));
    let (Some(frame), Some(places)) = (frame, places) else {
        let mut copied = 0;
        let mut own = |records: Bytes| {
            if !records.is_unique() {
                copied += records.len();
            }
            BytesMut::from(records)
        };
        let batches = batches
            .into_iter()
            .map(|(topic, partition, records)| (topic, partition, records.map(&mut own)))
            .collect();
        return (batches, copied);
    };
    // Drops the slices of the frame.
    let owners: Vec<(Arc<str>, i32)> = batches
        .into_iter()
        .map(|(topic, partition, _)| (topic, partition))
        .collect();
    match frame.try_into_mut() {
        Ok(mut rest) => {
            let frame_len = rest.len();
            let (mut at, mut copied) = (0, 0);
            let batches = owners
                .into_iter()
                .zip(places)
                .map(|((topic, partition), place)| {
                    let records = place.map(|range| {
                        rest.advance(range.start - at);
                        at = range.end;
                        if 2 * range.len() >= frame_len {
                            rest.split_to(range.len())
                        } else {
                            copied += range.len();
                            let copy = BytesMut::from(&rest[..range.len()]);
                            rest.advance(range.len());
                            copy
                        }
                    });
                    (topic, partition, records)
                })
                .collect();
            (batches, copied)
        }
        Err(frame) => {
            let copied = places.iter().flatten().map(Range::len).sum();
            let batches = owners
                .into_iter()
                .zip(places)
                .map(|((topic, partition), place)| {
                    (
                        topic,
                        partition,
                        place.map(|range| BytesMut::from(&frame[range])),
                    )
                })
                .collect();
            (batches, copied)
        }
    }
}

/// Where in `frame` each partition's batches lie, if they all lie in it, in order and apart.
fn places_in(frame: &Bytes, batches: &[Batches<Bytes>]) -> Option<Vec<Option<Range<usize>>>> {
    let origin = frame.as_ptr() as usize;
    let mut end = 0;
    batches
        .iter()
        .map(|(_, _, records)| {
            let Some(records) = records else {
                return Some(None);
            };
            // An empty slice may point anywhere; it takes nothing of the frame.
            if records.is_empty() {
                return Some(Some(end..end));
            }
            let start = (records.as_ptr() as usize).checked_sub(origin)?;
            let stop = start.checked_add(records.len())?;
            if start < end || stop > frame.len() {
                return None;
            }
            end = stop;
            Some(Some(start..stop))
        })
        .collect()
}

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
    records: Option<BytesMut>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of 60 bytes with three partitions' batches at 4..8, 10..40 and 50..56, as the
    /// codec leaves them: slices of the frame; partition 1's fill half of it.
    fn decoded() -> (Bytes, Vec<Batches<Bytes>>, *const u8) {
        let frame = Bytes::from((0..60u8).collect::<Vec<u8>>());
        let origin = frame.as_ptr();
        let topic: Arc<str> = Arc::from("t");
        let batches = vec![
            (topic.clone(), 0, Some(frame.slice(4..8))),
            (topic.clone(), 1, Some(frame.slice(10..40))),
            (topic.clone(), 2, None),
            (topic, 3, Some(frame.slice(50..56))),
        ];
        (frame, batches, origin)
    }

    fn contents(batches: &[Batches<BytesMut>]) -> Vec<Option<Vec<u8>>> {
        batches
            .iter()
            .map(|(_, _, r)| r.as_ref().map(|r| r.to_vec()))
            .collect()
    }

    fn expected() -> Vec<Option<Vec<u8>>> {
        vec![
            Some((4..8).collect()),
            Some((10..40).collect()),
            None,
            Some((50..56).collect()),
        ]
    }

    #[test]
    fn the_partition_filling_half_the_frame_is_cut_out_of_it_and_the_others_copied() {
        let (frame, batches, origin) = decoded();
        let (owned, copied) = owned_batches(Some(frame), batches);
        assert_eq!(copied, 4 + 6);
        assert_eq!(contents(&owned), expected());
        let at = |i: usize| owned[i].2.as_ref().unwrap().as_ptr();
        assert_eq!(at(1), origin.wrapping_add(10), "no copy");
        assert_ne!(at(0), origin.wrapping_add(4));
        assert_ne!(at(3), origin.wrapping_add(50));
    }

    #[test]
    fn a_request_for_one_partition_is_cut_out_of_its_frame() {
        let frame = Bytes::from(vec![9u8; 100]);
        let origin = frame.as_ptr();
        let batches = vec![(Arc::from("t"), 0, Some(frame.slice(12..97)))];
        let (owned, copied) = owned_batches(Some(frame), batches);
        assert_eq!(copied, 0);
        assert_eq!(
            owned[0].2.as_ref().unwrap().as_ptr(),
            origin.wrapping_add(12)
        );
    }

    #[test]
    fn a_frame_still_shared_is_copied_and_the_copy_counted() {
        let (frame, batches, origin) = decoded();
        let kept = frame.clone();
        let (owned, copied) = owned_batches(Some(frame), batches);
        assert_eq!(copied, 4 + 30 + 6);
        assert_eq!(contents(&owned), expected());
        assert_ne!(
            owned[1].2.as_ref().unwrap().as_ptr(),
            origin.wrapping_add(10)
        );
        assert_eq!(kept[4], 4, "the shared frame is untouched");
    }

    #[test]
    fn batches_out_of_order_or_outside_the_frame_are_taken_one_by_one() {
        let (frame, mut batches, _) = decoded();
        batches.swap(0, 1);
        assert!(places_in(&frame, &batches).is_none());
        let (owned, copied) = owned_batches(Some(frame), batches);
        // A slice that shares the frame with others is copied; the last one left is taken as
        // it is.
        assert_eq!(copied, 30 + 4);
        assert_eq!(
            owned[0].2.as_deref(),
            Some(&(10..40).collect::<Vec<u8>>()[..])
        );

        let elsewhere = Bytes::from(vec![7u8; 5]);
        let at = elsewhere.as_ptr();
        let (owned, copied) = owned_batches(None, vec![(Arc::from("t"), 0, Some(elsewhere))]);
        assert_eq!(copied, 0, "a buffer nothing else holds is taken as it is");
        assert_eq!(owned[0].2.as_ref().unwrap().as_ptr(), at);
    }

    #[test]
    fn an_empty_share_takes_nothing_of_the_frame() {
        let frame = Bytes::from(vec![1u8; 8]);
        let batches = vec![
            (Arc::from("t"), 0, Some(Bytes::new())),
            (Arc::from("t"), 1, Some(frame.slice(2..8))),
        ];
        let (owned, copied) = owned_batches(Some(frame), batches);
        assert_eq!(copied, 0);
        assert_eq!(owned[0].2.as_deref(), Some(&[][..]));
        assert_eq!(owned[1].2.as_deref(), Some(&[1u8; 6][..]));
    }
}
