//! Fetch: stored batches returned as they are, with Kafka's long poll across partitions.
//!
//! The partitions are read first without waiting, in request order, `FETCH_READ_GROUP` at once:
//! each read is allowed what the answer's budget had left when its group started (Kafka's broker
//! reads them one by one, each with what is left), and once the budget is spent the rest are
//! asked only for their watermarks. If that already gives `min_bytes` (or an error to report)
//! the answer goes out at once. Otherwise the partitions that were allowed bytes and returned
//! none (they are at their high watermark) are read again, concurrently, each allowed to wait
//! until `max_wait` for its first bytes (the engine wakes the read on append, no polling) and to
//! bring what is left of `max_bytes`; the answer goes out as soon as the bytes gathered reach
//! `min_bytes`, or at `max_wait`. The partitions asked only for their watermarks are not read
//! again: they were skipped because the budget was spent, not because they had nothing, and
//! each read returns at least a whole batch, so reading them would take a batch of every one of
//! them. For the same reason `min_bytes` is capped at `max_bytes` (Kafka allows an answer to
//! return early once it is full): a client asking `i32::MAX` must not keep the answer reading.
//!
//! `max_bytes` bounds the whole answer and `partition_max_bytes` each partition, except that the
//! first batch of the answer is always returned whole, so a batch larger than the limits cannot
//! stall a consumer (Kafka's rule since KIP-74). `max_bytes` is itself capped by the server's
//! `fetch_max_bytes` (Kafka's broker `fetch.max.bytes`), so no client can make one answer, or
//! one partition's read, larger than that.
//!
//! Memory: before reading, the answer is granted up to `max_bytes` of the shard's fetch share
//! ([`spindle_engine::MemoryBudget::grant_answer`]: what is left of it, never less than a floor,
//! never waiting) and reads only that much. While it long-polls it holds only what it has read;
//! what arrives is granted again before the answer takes it. The connection keeps the answer's
//! encoded size charged until it is written.
//!
//! A read-committed fetch (`isolation_level` 1) reads each partition only up to its last stable
//! offset, the first offset of its oldest open transaction, and lists the aborted transactions
//! its batches overlap, whose records the consumer drops; its long poll waits for the last
//! stable offset to move.
//!
//! Fetch sessions (KIP-227, `crate::kafka::fetch_session`): an incremental fetch is read as the
//! full fetch of its session's partitions, and its answer then keeps only those with something
//! to say.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::future::join_all;
use futures::stream::{FuturesUnordered, StreamExt};
use futures_lite::future;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId};
use spindle_engine::{EngineError, FetchOutcome, Isolation, TopicPartition};

use spindle_engine::access::Operation;

use crate::kafka::context::RequestContext;
use crate::kafka::error_code;
use crate::kafka::quota::QuotaKind;
use crate::kafka::wire::{
    check_leader_epoch, offset_from_wire, offset_to_wire, partition_from_wire,
};
use crate::limits::{FETCH_READ_GROUP, MAX_FETCH_WAIT_MS};

/// One partition of the request and what was read from it.
struct Slot {
    /// Index of its topic in the request.
    topic: usize,
    /// The partition index as the client sent it.
    index: i32,
    /// The engine's read, or the error code found before reading.
    read: Result<spindle_engine::FetchRequest, i16>,
    /// The bytes the first read was allowed: 0 when it asked only for the watermarks.
    allowed_bytes: usize,
    /// What came back.
    outcome: Option<Result<FetchOutcome, EngineError>>,
}

impl Slot {
    fn bytes(&self) -> usize {
        match &self.outcome {
            Some(Ok(outcome)) => outcome.bytes(),
            _ => 0,
        }
    }

    /// Whether the partition was allowed bytes and had none: it is at its high watermark, and
    /// the long poll waits for what is appended to it.
    fn awaits_data(&self) -> bool {
        self.allowed_bytes > 0
            && matches!(&self.outcome, Some(Ok(outcome)) if outcome.batches.is_empty())
    }

    fn failed(&self) -> bool {
        self.read.is_err() || matches!(self.outcome, Some(Err(_)))
    }
}

/// `isolation_level` of a consumer that reads only committed transactions.
const READ_COMMITTED: i8 = 1;

/// Answers one Fetch request.
pub(crate) async fn handle(ctx: &RequestContext, mut req: FetchRequest) -> FetchResponse {
    let session = match ctx.conn.fetch_session.begin(&mut req) {
        Ok(session) => session,
        Err(code) => return FetchResponse::default().with_error_code(code),
    };
    let max_wait = Duration::from_millis(
        u64::try_from(req.max_wait_ms)
            .unwrap_or(0)
            .min(MAX_FETCH_WAIT_MS),
    );
    let deadline = Instant::now() + max_wait;
    let max_bytes = usize::try_from(req.max_bytes)
        .unwrap_or(0)
        .min(ctx.config.fetch_max_bytes);
    // An answer is full at `max_bytes`: waiting for more would only read what it cannot carry.
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0).min(max_bytes);
    let memory = ctx.shard.memory();
    let mut granted = memory.grant_answer(max_bytes);
    let mut slots = plan(ctx, &req, granted.bytes());

    // At least one byte, so that a client asking `max_bytes` 0 still gets the first batch (the
    // first batch of an answer is returned whole whatever the limits).
    read_in_order(ctx, &mut slots, granted.bytes().max(1)).await;
    let gathered: usize = slots.iter().map(Slot::bytes).sum();
    let done = gathered >= min_bytes.max(1) || slots.iter().any(Slot::failed);
    if !done && !max_wait.is_zero() {
        // An idle consumer's wait must not hold memory others could read with.
        granted.set(gathered);
        let wanted = min_bytes.max(1) - gathered;
        let left = max_bytes.saturating_sub(gathered);
        long_poll(ctx, &mut slots, deadline, wanted, left).await;
        let arrived = slots
            .iter()
            .map(Slot::bytes)
            .sum::<usize>()
            .saturating_sub(gathered);
        memory.grow_answer(&mut granted, arrived.min(left));
    }
    let response = ctx
        .conn
        .fetch_session
        .finish(session, respond(&req, slots, granted.bytes()));
    let records: usize = response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .filter_map(|p| p.records.as_ref().map(Bytes::len))
        .sum();
    let response = response.with_throttle_time_ms(ctx.charge_quota(QuotaKind::Fetch, records));
    ctx.hold_until_written(granted);
    response
}

/// One slot per requested partition, in request order, each to read at most `max_bytes` (the
/// answer's budget) or its own `partition_max_bytes` if that is less.
fn plan(ctx: &RequestContext, req: &FetchRequest, max_bytes: usize) -> Vec<Slot> {
    let max_bytes = max_bytes.max(1);
    let isolation = if req.isolation_level == READ_COMMITTED {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    let mut slots = Vec::new();
    for (t, topic) in req.topics.iter().enumerate() {
        // The topic's name, if the client may read it.
        let readable = topic_name(ctx, topic).and_then(|name| {
            ctx.authorize(Operation::Read, &name)?;
            Ok(name)
        });
        for part in &topic.partitions {
            let read = match (
                &readable,
                partition_from_wire(part.partition),
                check_leader_epoch(part.current_leader_epoch),
                offset_from_wire(part.fetch_offset),
            ) {
                (Err(code), _, _, _) => Err(*code),
                (_, None, _, _) => Err(ResponseError::UnknownTopicOrPartition.code()),
                (_, _, Err(code), _) => Err(code),
                (_, _, _, None) => Err(ResponseError::OffsetOutOfRange.code()),
                (Ok(name), Some(p), Ok(()), Some(offset)) => Ok(spindle_engine::FetchRequest {
                    tp: TopicPartition::new(name.as_str(), p),
                    offset,
                    max_bytes: usize::try_from(part.partition_max_bytes)
                        .unwrap_or(0)
                        .clamp(1, max_bytes),
                    max_wait: Duration::ZERO,
                    min_bytes: 0,
                    isolation,
                }),
            };
            slots.push(Slot {
                topic: t,
                index: part.partition,
                read,
                allowed_bytes: 0,
                outcome: None,
            });
        }
    }
    slots
}

/// The name of a requested topic: as given up to v12, from its id from v13 (an id no topic has
/// is UNKNOWN_TOPIC_ID).
fn topic_name(ctx: &RequestContext, topic: &FetchTopic) -> Result<String, i16> {
    if topic.topic_id.is_nil() {
        return Ok(topic.topic.0.to_string());
    }
    ctx.shard
        .topic_name(topic.topic_id.as_u128())
        .ok_or(ResponseError::UnknownTopicId.code())
}

/// Reads the slots without waiting, in request order, `FETCH_READ_GROUP` at once (all at once
/// if their own limits fit in what is left), each group's reads allowed what the `max_bytes`
/// budget had left when the group started; once it is spent, the rest only for their
/// watermarks.
async fn read_in_order(ctx: &RequestContext, slots: &mut [Slot], max_bytes: usize) {
    let (mut left, mut next, len) = (max_bytes, 0, slots.len());
    // What the unread slots' own limits add up to.
    let mut rest = limits_total(slots);
    while next < len {
        // All the rest at once when they cannot overshoot the budget together (the common
        // case of a few partitions), or when only their watermarks are wanted.
        let end = if left == 0 || rest <= left {
            len
        } else {
            (next + FETCH_READ_GROUP).min(len)
        };
        let group = &mut slots[next..end];
        next = end;
        rest = rest.saturating_sub(limits_total(group));
        read_group(ctx, group, left).await;
        let got: usize = group.iter().map(Slot::bytes).sum();
        left = left.saturating_sub(got);
    }
}

/// The sum of the readable slots' own byte limits (saturating).
fn limits_total(slots: &[Slot]) -> usize {
    slots
        .iter()
        .filter_map(|slot| slot.read.as_ref().ok())
        .map(|read| read.max_bytes)
        .fold(0, usize::saturating_add)
}

/// Reads every readable slot of `group` at once, none waiting, each allowed at most `budget`
/// bytes (0: only the watermarks).
async fn read_group(ctx: &RequestContext, group: &mut [Slot], budget: usize) {
    let reads: Vec<_> = group
        .iter_mut()
        .map(|slot| {
            slot.read.clone().ok().map(|mut r| {
                r.max_bytes = read_budget(r.max_bytes, budget);
                slot.allowed_bytes = r.max_bytes;
                r
            })
        })
        .collect();
    let reads = reads.into_iter().map(|read| async move {
        match read {
            Some(r) => Some(ctx.shard.fetch(r).await),
            None => None,
        }
    });
    for (slot, outcome) in group.iter_mut().zip(join_all(reads).await) {
        slot.outcome = outcome;
    }
}

/// What one partition's read may take: its own limit, or what is `left` of the answer's budget
/// if that is less.
fn read_budget(partition_max: usize, left: usize) -> usize {
    partition_max.min(left)
}

/// Waits for the slots that await data ([`Slot::awaits_data`]) until `wanted` more bytes arrive
/// or the deadline; each may bring at most what is `left` of the answer's budget.
async fn long_poll(
    ctx: &RequestContext,
    slots: &mut [Slot],
    deadline: Instant,
    wanted: usize,
    left: usize,
) {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let mut waits: FuturesUnordered<_> = slots
        .iter()
        .enumerate()
        .filter(|(_, slot)| slot.awaits_data())
        .filter_map(|(i, slot)| slot.read.clone().ok().map(|r| (i, r)))
        .map(|(i, mut read)| {
            read.max_wait = remaining;
            read.min_bytes = 1;
            read.max_bytes = read_budget(read.max_bytes, left.max(1));
            async move { (i, ctx.shard.fetch(read).await) }
        })
        .collect();
    let mut arrived = 0;
    let gather = async {
        while let Some((i, outcome)) = waits.next().await {
            let got = outcome.as_ref().map_or(0, FetchOutcome::bytes);
            let failed = outcome.is_err();
            if got > 0 || failed {
                slots[i].outcome = Some(outcome);
            }
            arrived += got;
            if arrived >= wanted || failed {
                break;
            }
        }
    };
    // The engine ends each wait at the deadline; the timer guards against a read that does not.
    future::or(
        gather,
        glommio::timer::sleep(remaining + Duration::from_millis(5)),
    )
    .await;
}

/// Builds the answer, trimming to the request's overall byte budget.
fn respond(req: &FetchRequest, slots: Vec<Slot>, max_bytes: usize) -> FetchResponse {
    let mut topics: Vec<FetchableTopicResponse> = req
        .topics
        .iter()
        .map(|t| {
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_topic_id(t.topic_id)
        })
        .collect();
    let mut budget = max_bytes;
    let mut first = true;
    for slot in slots {
        let data = partition_data(
            slot.index,
            slot.outcome,
            slot.read.err(),
            &mut budget,
            &mut first,
        );
        if let Some(topic) = topics.get_mut(slot.topic) {
            topic.partitions.push(data);
        }
    }
    FetchResponse::default().with_responses(topics)
}

fn partition_data(
    index: i32,
    outcome: Option<Result<FetchOutcome, EngineError>>,
    refused: Option<i16>,
    budget: &mut usize,
    first: &mut bool,
) -> PartitionData {
    let base = PartitionData::default()
        .with_partition_index(index)
        .with_aborted_transactions(Some(Vec::new()));
    match outcome {
        Some(Ok(outcome)) => {
            let aborted = outcome
                .aborted
                .iter()
                .map(|t| {
                    AbortedTransaction::default()
                        .with_producer_id(ProducerId(t.producer_id))
                        .with_first_offset(offset_to_wire(t.first_offset))
                })
                .collect();
            let records = take_within(outcome.batches, budget, first);
            base.with_high_watermark(offset_to_wire(outcome.high_watermark))
                .with_last_stable_offset(offset_to_wire(outcome.last_stable_offset))
                .with_log_start_offset(offset_to_wire(outcome.log_start_offset))
                .with_aborted_transactions(Some(aborted))
                .with_records(Some(records))
        }
        Some(Err(EngineError::OffsetOutOfRange {
            log_start,
            high_watermark,
            ..
        })) => base
            .with_error_code(ResponseError::OffsetOutOfRange.code())
            .with_high_watermark(offset_to_wire(high_watermark))
            .with_last_stable_offset(offset_to_wire(high_watermark))
            .with_log_start_offset(offset_to_wire(log_start))
            .with_records(Some(Bytes::new())),
        Some(Err(e)) => base
            .with_error_code(error_code::code_of(&e))
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_records(Some(Bytes::new())),
        None => base
            .with_error_code(refused.unwrap_or(ResponseError::UnknownServerError.code()))
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_records(Some(Bytes::new())),
    }
}

/// The batches that fit in `budget` (the first batch of the answer always does), concatenated.
fn take_within(batches: Vec<Bytes>, budget: &mut usize, first: &mut bool) -> Bytes {
    let mut kept = 0;
    let mut bytes = 0;
    for batch in &batches {
        if !*first && bytes + batch.len() > *budget {
            break;
        }
        *first = false;
        bytes += batch.len();
        kept += 1;
    }
    *budget = budget.saturating_sub(bytes);
    match kept {
        0 => Bytes::new(),
        1 => batches.into_iter().next().unwrap_or_default(),
        _ => {
            let mut joined = BytesMut::with_capacity(bytes);
            for batch in batches.iter().take(kept) {
                joined.extend_from_slice(batch);
            }
            joined.freeze()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batches(sizes: &[usize]) -> Vec<Bytes> {
        sizes.iter().map(|&n| Bytes::from(vec![7u8; n])).collect()
    }

    fn slot(allowed_bytes: usize, outcome: Option<Result<FetchOutcome, EngineError>>) -> Slot {
        Slot {
            topic: 0,
            index: 0,
            read: Ok(spindle_engine::FetchRequest {
                tp: TopicPartition::new("t", 0),
                offset: spindle_engine::Offset(0),
                max_bytes: 1 << 20,
                max_wait: Duration::ZERO,
                min_bytes: 0,
                isolation: Default::default(),
            }),
            allowed_bytes,
            outcome,
        }
    }

    fn found(sizes: &[usize]) -> Option<Result<FetchOutcome, EngineError>> {
        Some(Ok(FetchOutcome {
            batches: batches(sizes),
            ..FetchOutcome::default()
        }))
    }

    #[test]
    fn only_partitions_allowed_bytes_that_found_none_await_data() {
        assert!(
            slot(4096, found(&[])).awaits_data(),
            "at its high watermark"
        );
        assert!(
            !slot(0, found(&[])).awaits_data(),
            "asked only for its watermarks: the budget was spent, it may well hold data"
        );
        assert!(!slot(4096, found(&[100])).awaits_data(), "already has data");
        assert!(!slot(4096, None).awaits_data(), "not read");
        let mut refused = slot(0, None);
        refused.read = Err(ResponseError::UnknownTopicOrPartition.code());
        assert!(!refused.awaits_data());
    }

    #[test]
    fn first_batch_is_kept_even_when_over_budget() {
        let (mut budget, mut first) = (10, true);
        let got = take_within(batches(&[50, 5]), &mut budget, &mut first);
        assert_eq!(got.len(), 50);
        assert_eq!(budget, 0);
        assert!(!first);
    }

    #[test]
    fn later_batches_stop_at_the_budget() {
        let (mut budget, mut first) = (100, false);
        let got = take_within(batches(&[40, 40, 40]), &mut budget, &mut first);
        assert_eq!(got.len(), 80);
        assert_eq!(budget, 20);
        let got = take_within(batches(&[30]), &mut budget, &mut first);
        assert!(got.is_empty());
    }
}
