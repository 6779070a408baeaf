//! `spindle.v1.Producer`: `Produce` and `ProduceStream`.
//!
//! A request's records are grouped by partition (the one named, or Kafka's key hash), and each
//! group becomes one `produce_records` call, so one v2 batch per partition; the calls to
//! different partitions run concurrently. A record's offset is its batch's base offset plus its
//! place in the batch. When a request spans partitions and one append fails, the others may
//! have been written, as with a Kafka producer's batches.
//!
//! `ProduceStream` keeps up to [`PRODUCE_STREAM_IN_FLIGHT_MAX`] requests in flight and answers
//! them in order. While that many are pending it stops reading the stream, so HTTP/2 flow
//! control pushes back on the client instead of the server queueing without bound. Its requests
//! are also *appended* in order, as a Kafka connection's are: each waits for its [`Turn`], until
//! the one before it has handed its records to the engine, and only the acknowledgements overlap.

use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;

use futures::stream::{FuturesOrdered, StreamExt};
use futures::Stream;
use spindle_engine::{Record, RecordHeader, TopicPartition};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::Context;
use crate::auth::{principal_of, Principal, PrincipalCheck};
use crate::config::Operation;
use crate::gauges::Gauge;
use crate::limits::{PRODUCE_RECORDS_MAX, PRODUCE_STREAM_IN_FLIGHT_MAX};
use crate::proto::producer_server::Producer;
use crate::proto::{
    ProduceAck, ProduceRequest, ProduceResponse, ProduceStreamRequest, RecordOffset,
};
use crate::status::{self, invalid_argument};

/// The `Producer` service.
pub struct ProducerService {
    ctx: Arc<Context>,
}

impl ProducerService {
    /// Serves produce calls through `ctx`.
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { ctx }
    }
}

type AckStream = Pin<Box<dyn Stream<Item = Result<ProduceAck, Status>> + Send>>;

#[tonic::async_trait]
impl Producer for ProducerService {
    async fn produce(
        &self,
        request: Request<ProduceRequest>,
    ) -> Result<Response<ProduceResponse>, Status> {
        let principal = principal_of(&request)?;
        let offsets = produce(&self.ctx, &principal, request.into_inner(), None).await?;
        Ok(Response::new(ProduceResponse { offsets }))
    }

    type ProduceStreamStream = AckStream;

    async fn produce_stream(
        &self,
        request: Request<Streaming<ProduceStreamRequest>>,
    ) -> Result<Response<AckStream>, Status> {
        let principal = principal_of(&request)?;
        let inbound = request.into_inner();
        let (acks, rx) = mpsc::channel(PRODUCE_STREAM_IN_FLIGHT_MAX);
        let ctx = Arc::clone(&self.ctx);
        tokio::spawn(async move {
            let _open = ctx.gauges.raise(Gauge::ActiveProduceStreams, 1);
            tokio::select! {
                () = pump(&ctx, principal, inbound, acks) => {}
                () = ctx.stopping() => {}
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Reads requests, keeps a bounded number in flight, and sends their acknowledgements in order.
async fn pump(
    ctx: &Arc<Context>,
    principal: Principal,
    mut inbound: Streaming<ProduceStreamRequest>,
    acks: mpsc::Sender<Result<ProduceAck, Status>>,
) {
    let mut in_flight = FuturesOrdered::new();
    let mut inbound_open = true;
    let mut previous: Option<oneshot::Receiver<()>> = None;
    loop {
        tokio::select! {
            Some(ack) = in_flight.next(), if !in_flight.is_empty() => {
                if acks.send(Ok(ack)).await.is_err() {
                    return; // The client is gone.
                }
            }
            message = inbound.message(), if inbound_open && in_flight.len() < PRODUCE_STREAM_IN_FLIGHT_MAX => {
                match message {
                    Ok(Some(message)) => {
                        let ctx = Arc::clone(ctx);
                        let principal = principal.clone();
                        let (handed, next) = oneshot::channel();
                        let turn = Turn { after: previous.replace(next), handed };
                        in_flight.push_back(async move { acknowledge(&ctx, &principal, message, turn).await });
                    }
                    Ok(None) => inbound_open = false,
                    Err(status) => {
                        tracing::debug!(%status, "produce stream ended by the client");
                        return;
                    }
                }
            }
            else => return,
        }
    }
}

/// A stream request's place in the append order: it appends once `after` (the request before it
/// handed its records to the engine, or failed) resolves, and resolves `handed` when it has.
/// Dropping `handed` counts as resolving it, so a request that fails early does not block the
/// rest.
struct Turn {
    after: Option<oneshot::Receiver<()>>,
    handed: oneshot::Sender<()>,
}

impl Turn {
    async fn wait(&mut self) {
        if let Some(after) = self.after.take() {
            // An error only means the earlier request ended without appending.
            let _ = after.await;
        }
    }
}

async fn acknowledge(
    ctx: &Context,
    principal: &Principal,
    message: ProduceStreamRequest,
    turn: Turn,
) -> ProduceAck {
    let result = match message.request {
        Some(request) => produce(ctx, principal, request, Some(turn)).await,
        None => Err(invalid_argument("request", &"missing")),
    };
    match result {
        Ok(offsets) => ProduceAck {
            sequence: message.sequence,
            code: tonic::Code::Ok as i32,
            message: String::new(),
            offsets,
        },
        Err(status) => ProduceAck {
            sequence: message.sequence,
            code: status.code() as i32,
            message: status.message().to_string(),
            offsets: Vec::new(),
        },
    }
}

/// Checks, places and appends one request's records; their offsets in request order.
async fn produce(
    ctx: &Context,
    principal: &Principal,
    request: ProduceRequest,
    mut turn: Option<Turn>,
) -> Result<Vec<RecordOffset>, Status> {
    if let Some(turn) = turn.as_mut() {
        turn.wait().await;
    }
    if request.topic.is_empty() {
        return Err(invalid_argument("topic", &"empty"));
    }
    principal.check(Operation::Write, &request.topic)?;
    let (records, bytes) = validate_records(&request)?;
    ctx.quotas.admit(principal.name(), records, bytes)?;
    let partitions = ctx.topics.partitions(&ctx.engine, &request.topic).await?;
    if let Some(partition) = request.partition {
        if partition >= partitions {
            return Err(Status::not_found(format!(
                "topic {:?} has no partition {partition} (it has {partitions})",
                request.topic
            )));
        }
    }
    let count = request.records.len();
    let groups = group_by_partition(ctx, request.partition, partitions, request.records);
    let appends = groups.into_iter().map(|(partition, indexes, records)| {
        let tp = TopicPartition::new(request.topic.as_str(), partition);
        async move {
            let outcome = ctx.engine.produce_records(&tp, records).await;
            (partition, indexes, outcome)
        }
    });
    let mut appends = pin!(futures::future::join_all(appends));
    // The first poll hands every group to the engine (each call queues its job on the owning
    // shard before it waits); the next request of the stream may go once that is done.
    let first = futures::poll!(appends.as_mut());
    if let Some(turn) = turn {
        let _ = turn.handed.send(());
    }
    let outcomes = match first {
        Poll::Ready(outcomes) => outcomes,
        Poll::Pending => appends.await,
    };
    let mut offsets = vec![RecordOffset::default(); count];
    for (partition, indexes, outcome) in outcomes {
        let outcome = outcome.map_err(status::from_engine)?;
        let base = i64::try_from(outcome.base_offset.0)
            .map_err(|_| Status::internal("offset beyond i64"))?;
        for (place, index) in indexes.into_iter().enumerate() {
            offsets[index] = RecordOffset {
                partition,
                offset: base + place as i64,
            };
        }
    }
    Ok(offsets)
}

/// Checks the records' fields; their count and byte size for the quota.
fn validate_records(request: &ProduceRequest) -> Result<(u64, u64), Status> {
    if request.records.is_empty() {
        return Err(invalid_argument("records", &"empty"));
    }
    if request.records.len() > PRODUCE_RECORDS_MAX {
        return Err(invalid_argument(
            "records",
            &format!(
                "{} records, at most {PRODUCE_RECORDS_MAX}",
                request.records.len()
            ),
        ));
    }
    let mut bytes = 0u64;
    for (i, record) in request.records.iter().enumerate() {
        if record.timestamp_ms.is_some_and(|t| t < 0) {
            return Err(invalid_argument(
                &format!("records[{i}].timestamp_ms"),
                &"must not be negative",
            ));
        }
        let headers: usize = record
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len()))
            .sum();
        let size = record.key.as_ref().map_or(0, |k| k.len())
            + record.value.as_ref().map_or(0, |v| v.len())
            + headers;
        bytes += size as u64;
    }
    Ok((request.records.len() as u64, bytes))
}

/// Records grouped by partition, each with the request indexes of its records.
fn group_by_partition(
    ctx: &Context,
    explicit: Option<u32>,
    partitions: u32,
    records: Vec<crate::proto::Record>,
) -> Vec<(u32, Vec<usize>, Vec<Record>)> {
    let mut groups: Vec<(u32, Vec<usize>, Vec<Record>)> = Vec::new();
    for (index, record) in records.into_iter().enumerate() {
        let partition = explicit
            .unwrap_or_else(|| ctx.partitioner.partition(record.key.as_deref(), partitions));
        let record = Record {
            key: record.key,
            value: record.value,
            headers: record
                .headers
                .into_iter()
                .map(|h| RecordHeader {
                    key: h.key,
                    value: h.value,
                })
                .collect(),
            timestamp_ms: record.timestamp_ms,
        };
        match groups.iter_mut().find(|(p, _, _)| *p == partition) {
            Some((_, indexes, batch)) => {
                indexes.push(index);
                batch.push(record);
            }
            None => groups.push((partition, vec![index], vec![record])),
        }
    }
    groups
}
