//! The transactional APIs a producer with a `transactional.id` uses between InitProducerId and
//! the end of each transaction: AddPartitionsToTxn (v0–3), AddOffsetsToTxn, TxnOffsetCommit and
//! EndTxn. Each is routed to the transactional id's coordinator shard (`spindle_engine::txn`).
//!
//! A newer instance of the producer is answered PRODUCER_FENCED from the versions that know it
//! (AddPartitionsToTxn and AddOffsetsToTxn v2, TxnOffsetCommit v3, EndTxn v2), and
//! INVALID_PRODUCER_EPOCH before, as Kafka does (KIP-588).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
};
use spindle_engine::access::Operation;
use spindle_engine::group::CommittedOffset;
use spindle_engine::{txn, EngineError, Result, TopicPartition};

use super::{readable, PartitionCodes};
use crate::kafka::context::RequestContext;
use crate::kafka::error_code;

/// The Kafka code of a transactional request's outcome; `fenced_from` is the first version of
/// the API that knows PRODUCER_FENCED.
fn code(ctx: &RequestContext, outcome: Result<Result<()>>, fenced_from: i16) -> i16 {
    let code = match outcome {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => error_code::code_of(&e),
        Err(_) => ResponseError::CoordinatorNotAvailable.code(),
    };
    if code == ResponseError::ProducerFenced.code() && ctx.api_version < fenced_from {
        return ResponseError::InvalidProducerEpoch.code();
    }
    code
}

/// Answers one AddPartitionsToTxn request (v0–3: one transaction). When any partition is
/// refused (an unknown one, a topic the principal may not write), none is added and the others
/// are answered OPERATION_NOT_ATTEMPTED, as in Kafka.
pub(crate) async fn add_partitions(
    ctx: &RequestContext,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let refusal = |topic: &str, partition: i32| {
        if ctx.authorize(Operation::Write, topic).is_err() {
            return Some(ResponseError::TopicAuthorizationFailed.code());
        }
        let known = u32::try_from(partition)
            .ok()
            .and_then(|p| ctx.shard.owner_of(&TopicPartition::new(topic, p)));
        known
            .is_none()
            .then_some(ResponseError::UnknownTopicOrPartition.code())
    };
    let asked: Vec<(String, i32, Option<i16>)> = req
        .v3_and_below_topics
        .iter()
        .flat_map(|t| {
            let topic = t.name.0.as_str();
            t.partitions
                .iter()
                .map(move |&p| (topic.to_owned(), p, refusal(topic, p)))
        })
        .collect();
    let denied = ctx
        .authorize_transactional_id(req.v3_and_below_transactional_id.0.as_str())
        .err();
    let whole = if denied.is_some() {
        denied
    } else if asked.iter().any(|(_, _, refused)| refused.is_some()) {
        None
    } else {
        let partitions = asked
            .iter()
            .filter_map(|(t, p, _)| Some(TopicPartition::new(t.as_str(), u32::try_from(*p).ok()?)))
            .collect();
        let id = req.v3_and_below_transactional_id.0.as_str().to_owned();
        let (producer_id, epoch) = (
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
        );
        let outcome = txn::on_coordinator(&ctx.shard, &id.clone(), move |_, txns| async move {
            txns.add_partitions(&id, producer_id, epoch, partitions)
                .await
        })
        .await;
        Some(code(ctx, outcome, 2))
    };
    // `asked` lists the partitions in request order, as the answer does.
    let mut codes = asked.iter().map(|(_, _, refused)| {
        whole.unwrap_or_else(|| refused.unwrap_or(ResponseError::OperationNotAttempted.code()))
    });
    let results = req
        .v3_and_below_topics
        .iter()
        .map(|t| {
            let results = t
                .partitions
                .iter()
                .map(|&p| {
                    let code = codes
                        .next()
                        .unwrap_or(ResponseError::UnknownServerError.code());
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p)
                        .with_partition_error_code(code)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(results)
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}

/// Answers one AddOffsetsToTxn request.
pub(crate) async fn add_offsets(
    ctx: &RequestContext,
    req: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let id = req.transactional_id.0.as_str().to_owned();
    let group = req.group_id.0.as_str().to_owned();
    let authorized = ctx
        .authorize_transactional_id(&id)
        .and_then(|()| ctx.authorize_group(&group));
    if let Err(code) = authorized {
        return AddOffsetsToTxnResponse::default().with_error_code(code);
    }
    let (producer_id, epoch) = (req.producer_id.0, req.producer_epoch);
    let outcome = txn::on_coordinator(&ctx.shard, &id.clone(), move |_, txns| async move {
        txns.add_offsets(&id, producer_id, epoch, &group).await
    })
    .await;
    AddOffsetsToTxnResponse::default().with_error_code(code(ctx, outcome, 2))
}

/// Answers one TxnOffsetCommit request: the offsets are held by the transaction and committed
/// to the group only when it commits. Every partition gets the request's one outcome, except
/// those of topics the principal may not read (TOPIC_AUTHORIZATION_FAILED, not held).
pub(crate) async fn commit_offsets(
    ctx: &RequestContext,
    req: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let id = req.transactional_id.0.as_str().to_owned();
    let group = req.group_id.0.as_str().to_owned();
    let authorized = ctx
        .authorize_transactional_id(&id)
        .and_then(|()| ctx.authorize_group(&group));
    let outcome = match authorized {
        Err(denied) => denied,
        Ok(()) => {
            let offsets = held_offsets(ctx, &req);
            let (producer_id, epoch) = (req.producer_id.0, req.producer_epoch);
            let outcome = txn::on_coordinator(&ctx.shard, &id.clone(), move |_, txns| async move {
                txns.commit_offsets(&id, producer_id, epoch, &group, offsets)
                    .await
            })
            .await;
            code(ctx, outcome, 3)
        }
    };
    let mut codes = PartitionCodes::all(outcome);
    let asked = req.topics.into_iter().map(|t| {
        let indexes = t.partitions.iter().map(|p| p.partition_index).collect();
        (t.name, indexes)
    });
    let topics = codes.answer(
        ctx,
        asked,
        |index, code| {
            TxnOffsetCommitResponsePartition::default()
                .with_partition_index(index)
                .with_error_code(code)
        },
        |name, partitions| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        },
    );
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// The offsets a TxnOffsetCommit hands to its transaction: those of the topics the principal
/// may read, partitions with a negative index left out.
fn held_offsets(
    ctx: &RequestContext,
    req: &TxnOffsetCommitRequest,
) -> Vec<(TopicPartition, CommittedOffset)> {
    let mut offsets = Vec::new();
    for topic in req.topics.iter().filter(|t| readable(ctx, &t.name)) {
        for p in &topic.partitions {
            if let Ok(partition) = u32::try_from(p.partition_index) {
                let offset = CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(|m| m.as_str().to_owned()),
                    commit_timestamp_ms: -1,
                };
                offsets.push((
                    TopicPartition::new(topic.name.0.as_str(), partition),
                    offset,
                ));
            }
        }
    }
    offsets
}

/// Answers one EndTxn request: once it is answered without error, the markers are written and
/// a commit's offsets are committed.
pub(crate) async fn end(ctx: &RequestContext, req: EndTxnRequest) -> EndTxnResponse {
    let id = req.transactional_id.0.as_str().to_owned();
    if let Err(code) = ctx.authorize_transactional_id(&id) {
        return EndTxnResponse::default().with_error_code(code);
    }
    let (producer_id, epoch, commit) = (req.producer_id.0, req.producer_epoch, req.committed);
    let outcome = txn::on_coordinator(&ctx.shard, &id.clone(), move |shard, txns| async move {
        txns.end(&shard, &id, producer_id, epoch, commit).await
    })
    .await;
    if let Ok(Err(e)) = &outcome {
        if !matches!(e, EngineError::Transaction(_)) {
            tracing::warn!(peer = %ctx.peer, error = %e, "ending a transaction");
        }
    }
    EndTxnResponse::default().with_error_code(code(ctx, outcome, 2))
}
