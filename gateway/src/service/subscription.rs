//! One `Subscribe` stream: a task that long-polls the owning shards and feeds a bounded queue.
//!
//! Each subscribed partition has at most one read in flight (`fetch` with `max_wait`, which
//! the shard answers when records arrive or the wait ends: no polling). Reads of all partitions
//! wait together in a `FuturesUnordered`; whichever answers first is decoded, queued and read
//! again from its next offset.
//!
//! Memory stays bounded whatever the client does: the queue holds at most
//! [`SUBSCRIBE_QUEUE_MESSAGES`] responses of about [`SUBSCRIBE_RESPONSE_BYTES_TARGET`] each;
//! when it is full the task waits on it and issues no new read, and tonic takes from the queue
//! only as fast as HTTP/2 flow control lets it send. When the client goes away the receiver is
//! dropped, `closed()` resolves and the task ends with its reads; the gauge guards drop with it.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use spindle_engine::{EngineError, FetchOutcome, FetchRequest, Offset, TopicPartition};
use tokio::sync::mpsc;
use tonic::Status;

use super::Context;
use crate::batch_decoder::{self, record_bytes};
use crate::gauges::{Gauge, GaugeGuard};
use crate::limits::{SUBSCRIBE_RECORDS_PER_RESPONSE_MAX, SUBSCRIBE_RESPONSE_BYTES_TARGET};
use crate::proto::{ConsumedRecord, SubscribeResponse};
use crate::status;

/// A queued response and the gauge that counts its bytes until it is sent.
pub type Queued = (Result<SubscribeResponse, Status>, Option<GaugeGuard>);

/// What a subscription reads.
pub struct Subscription {
    /// Shared services.
    pub ctx: Arc<Context>,
    /// The topic.
    pub topic: Arc<str>,
    /// Each partition and the offset to read from.
    pub positions: Vec<(u32, i64)>,
    /// Long-poll time of one read.
    pub max_wait: Duration,
    /// Byte budget of one read.
    pub max_bytes: usize,
}

impl Subscription {
    /// Reads until the client leaves, a read fails or the gateway shuts down.
    pub async fn run(self, queue: mpsc::Sender<Queued>) {
        let ctx = Arc::clone(&self.ctx);
        let _open = ctx.gauges.raise(Gauge::ActiveSubscriptions, 1);
        tokio::select! {
            () = queue.closed() => tracing::debug!(topic = %self.topic, "subscriber left"),
            () = ctx.stopping() => {
                // Best effort: the client may already be gone.
                if queue.try_send((Err(Status::unavailable("the gateway is shutting down")), None)).is_err() {
                    tracing::debug!("subscriber not told of the shutdown");
                }
            }
            () = self.pump(&queue) => {}
        }
    }

    async fn pump(&self, queue: &mpsc::Sender<Queued>) {
        let mut reads: FuturesUnordered<_> = self
            .positions
            .iter()
            .map(|&(partition, offset)| self.read(partition, offset))
            .collect();
        while let Some((partition, position, result)) = reads.next().await {
            let next = match result {
                Ok(outcome) => self.deliver(partition, position, outcome, queue).await,
                Err(err) => Err(status::from_engine(err)),
            };
            match next {
                Ok(next) => reads.push(self.read(partition, next)),
                Err(status) => {
                    tracing::debug!(topic = %self.topic, partition, %status, "subscription ends");
                    if queue.send((Err(status), None)).await.is_err() {
                        tracing::debug!("subscriber gone before its error");
                    }
                    return;
                }
            }
        }
    }

    /// One long-poll read of `partition` from `position`.
    fn read(
        &self,
        partition: u32,
        position: i64,
    ) -> impl std::future::Future<Output = (u32, i64, Result<FetchOutcome, EngineError>)> + Send + 'static
    {
        let engine = self.ctx.engine.clone();
        let request = FetchRequest {
            tp: TopicPartition {
                topic: Arc::clone(&self.topic),
                partition: spindle_engine::PartitionId(partition),
            },
            offset: Offset(position.max(0) as u64),
            max_bytes: self.max_bytes,
            max_wait: self.max_wait,
            min_bytes: 1,
        };
        async move { (partition, position, engine.fetch(request).await) }
    }

    /// Decodes one read, queues its records and returns the next position.
    async fn deliver(
        &self,
        partition: u32,
        position: i64,
        outcome: FetchOutcome,
        queue: &mpsc::Sender<Queued>,
    ) -> Result<i64, Status> {
        let decoded = batch_decoder::decode(partition, position, &outcome.batches)?;
        if decoded.next_offset == position && !outcome.batches.is_empty() {
            // Batches that hold nothing at or after the position would be read again forever.
            return Err(Status::internal(format!(
                "partition {partition}: a read at offset {position} made no progress"
            )));
        }
        let high_watermark = i64::try_from(outcome.high_watermark.0).unwrap_or(i64::MAX);
        for chunk in chunks(decoded.records) {
            let bytes: usize = chunk.iter().map(record_bytes).sum();
            let guard = self
                .ctx
                .gauges
                .raise(Gauge::QueuedSubscriberBytes, bytes as u64);
            let response = SubscribeResponse {
                records: chunk,
                high_watermark,
            };
            if queue.send((Ok(response), Some(guard))).await.is_err() {
                return Err(Status::cancelled("subscriber gone"));
            }
        }
        Ok(decoded.next_offset)
    }
}

/// Splits records into responses of bounded count and size.
fn chunks(records: Vec<ConsumedRecord>) -> Vec<Vec<ConsumedRecord>> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for record in records {
        bytes += record_bytes(&record);
        current.push(record);
        if current.len() >= SUBSCRIBE_RECORDS_PER_RESPONSE_MAX
            || bytes >= SUBSCRIBE_RESPONSE_BYTES_TARGET
        {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}
