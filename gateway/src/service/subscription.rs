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
//!
//! As a group member (see [`crate::group_member`]) the task joins, announces its assignment,
//! reads the assigned partitions from the group's committed offsets, and heartbeats alongside;
//! when the group rebalances it drops its reads and starts over with the new assignment.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use spindle_engine::{
    EngineError, EngineHandle, FetchOutcome, FetchRequest, Isolation, Offset, OffsetSpec,
    TopicPartition,
};
use tokio::sync::mpsc;
use tonic::Status;

use super::Context;
use crate::batch_decoder::{self, record_bytes, ReadAt};
use crate::committed_offsets;
use crate::gauges::{Gauge, GaugeGuard};
use crate::group_member::GroupMember;
use crate::limits::{
    SUBSCRIBE_READS_BYTES_MAX, SUBSCRIBE_READ_BYTES_MIN, SUBSCRIBE_RECORDS_PER_RESPONSE_MAX,
    SUBSCRIBE_RESPONSE_BYTES_TARGET,
};
use crate::proto::{Assignment, ConsumedRecord, SubscribeResponse};
use crate::status;

/// A queued response and the gauge that counts its bytes until it is sent.
pub type Queued = (Result<SubscribeResponse, Status>, Option<GaugeGuard>);

/// Which partitions a subscription reads.
pub enum Plan {
    /// These partitions from these offsets.
    Fixed(Vec<(u32, i64)>),
    /// What the group assigns, from its committed offsets, else from `reset`.
    Member {
        /// The membership (not joined yet).
        member: GroupMember,
        /// Group id, for the committed offsets.
        group: String,
        /// Where a partition without a committed offset starts.
        reset: OffsetSpec,
    },
}

/// What a subscription reads.
pub struct Subscription {
    /// Shared services.
    pub ctx: Arc<Context>,
    /// The topic.
    pub topic: Arc<str>,
    /// Which partitions, from where.
    pub plan: Plan,
    /// Long-poll time of one read.
    pub max_wait: Duration,
    /// Byte budget of one read (less when many partitions share the subscription's budget).
    pub max_bytes: usize,
    /// Whether reads stop at the last stable offset and leave out aborted transactions.
    pub isolation: Isolation,
}

impl Subscription {
    /// Reads until the client leaves, a read fails or the gateway shuts down.
    pub async fn run(mut self, queue: mpsc::Sender<Queued>) {
        let ctx = Arc::clone(&self.ctx);
        let _open = ctx.gauges.raise(Gauge::ActiveSubscriptions, 1);
        let plan = std::mem::replace(&mut self.plan, Plan::Fixed(Vec::new()));
        let work = async {
            let ended = match plan {
                Plan::Fixed(positions) => self.pump(&positions, &queue).await,
                Plan::Member {
                    member,
                    group,
                    reset,
                } => self.as_member(member, &group, reset, &queue).await,
            };
            if let Err(status) = ended {
                tracing::debug!(topic = %self.topic, %status, "subscription ends");
                if queue.send((Err(status), None)).await.is_err() {
                    tracing::debug!("subscriber gone before its error");
                }
            }
        };
        tokio::select! {
            () = queue.closed() => tracing::debug!(topic = %self.topic, "subscriber left"),
            () = ctx.stopping() => {
                // Best effort: the client may already be gone.
                if queue.try_send((Err(Status::unavailable("the gateway is shutting down")), None)).is_err() {
                    tracing::debug!("subscriber not told of the shutdown");
                }
            }
            () = work => {}
        }
    }

    /// Joins, reads the assignment, and starts over at each rebalance. Dropping this future
    /// drops the member, which leaves the group.
    async fn as_member(
        &self,
        mut member: GroupMember,
        group: &str,
        reset: OffsetSpec,
        queue: &mpsc::Sender<Queued>,
    ) -> Result<(), Status> {
        loop {
            let partitions = member.join().await?;
            tracing::debug!(topic = %self.topic, group, generation = member.generation(), ?partitions, "assigned");
            let committed = committed_offsets::fetch(&self.ctx.engine, group, &self.topic).await?;
            let mut positions = Vec::with_capacity(partitions.len());
            for &partition in &partitions {
                let committed = committed
                    .iter()
                    .find(|(p, _)| *p == partition)
                    .map(|&(_, offset)| offset);
                let offset =
                    from_committed(&self.ctx.engine, &self.topic, partition, committed, reset)
                        .await?;
                positions.push((partition, offset));
            }
            let notice = SubscribeResponse {
                records: Vec::new(),
                high_watermark: 0,
                assignment: Some(Assignment {
                    generation: member.generation(),
                    partitions,
                }),
            };
            if queue.send((Ok(notice), None)).await.is_err() {
                return Ok(());
            }
            tokio::select! {
                ended = self.pump(&positions, queue) => return ended,
                rebalance = member.heartbeat_until_rebalance() => rebalance?,
            }
        }
    }

    /// Reads `positions` until the client leaves (`Ok`) or a read fails.
    async fn pump(
        &self,
        positions: &[(u32, i64)],
        queue: &mpsc::Sender<Queued>,
    ) -> Result<(), Status> {
        let max_bytes = read_budget(self.max_bytes, positions.len());
        let mut reads: FuturesUnordered<_> = positions
            .iter()
            .map(|&(partition, offset)| self.read(partition, offset, max_bytes))
            .collect();
        if reads.is_empty() {
            // Nothing assigned: wait (for a rebalance, the client or shutdown).
            std::future::pending::<()>().await;
        }
        while let Some((partition, position, result)) = reads.next().await {
            let outcome = result.map_err(status::from_engine)?;
            match self
                .deliver(partition, position, outcome, max_bytes, queue)
                .await?
            {
                Some(next) => reads.push(self.read(partition, next, max_bytes)),
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// One long-poll read of `partition` from `position`, of up to `max_bytes`.
    fn read(
        &self,
        partition: u32,
        position: i64,
        max_bytes: usize,
    ) -> impl std::future::Future<Output = (u32, i64, Result<FetchOutcome, EngineError>)> + Send + 'static
    {
        let engine = self.ctx.engine.clone();
        let request = FetchRequest {
            tp: TopicPartition {
                topic: Arc::clone(&self.topic),
                partition: spindle_engine::PartitionId(partition),
            },
            offset: Offset(position.max(0) as u64),
            max_bytes,
            max_wait: self.max_wait,
            min_bytes: 1,
            isolation: self.isolation,
        };
        async move {
            let outcome = engine.fetch(request).await;
            (partition, position, outcome)
        }
    }

    /// Decodes one read (records costing up to `max_bytes`), queues its records and returns the
    /// next position (`None`: the client is gone).
    async fn deliver(
        &self,
        partition: u32,
        position: i64,
        outcome: FetchOutcome,
        max_bytes: usize,
        queue: &mpsc::Sender<Queued>,
    ) -> Result<Option<i64>, Status> {
        let at = ReadAt {
            topic: &self.topic,
            partition,
            position,
        };
        let decoded = batch_decoder::decode(at, max_bytes, &outcome.batches, &outcome.aborted)?;
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
                assignment: None,
            };
            if queue.send((Ok(response), Some(guard))).await.is_err() {
                return Ok(None);
            }
        }
        Ok(Some(decoded.next_offset))
    }
}

/// What one read of a subscription of `partitions` partitions may ask for: the subscriber's
/// `max_bytes`, or its share of [`SUBSCRIBE_READS_BYTES_MAX`] when that is less, never below
/// [`SUBSCRIBE_READ_BYTES_MIN`].
fn read_budget(max_bytes: usize, partitions: usize) -> usize {
    let share = SUBSCRIBE_READS_BYTES_MAX / partitions.max(1);
    max_bytes.min(share.max(SUBSCRIBE_READ_BYTES_MIN))
}

/// The offset a ListOffsets-style query names; a timestamp after every record is the end.
///
/// # Errors
/// The engine's failure (unknown topic or partition).
pub async fn resolve(
    engine: &EngineHandle,
    topic: &str,
    partition: u32,
    spec: OffsetSpec,
) -> Result<i64, Status> {
    let tp = TopicPartition::new(topic, partition);
    let found = engine
        .list_offset(&tp, spec)
        .await
        .map_err(status::from_engine)?;
    let offset = match found {
        Some((offset, _)) => offset,
        None => engine
            .list_offset(&tp, OffsetSpec::Latest)
            .await
            .map_err(status::from_engine)?
            .map_or(Offset(0), |(offset, _)| offset),
    };
    i64::try_from(offset.0).map_err(|_| Status::internal("offset beyond i64"))
}

/// Where a group starts reading a partition: its committed offset while that is still in the
/// log, else (no commit, or retention removed the records) `reset`, as Kafka consumers do with
/// `auto.offset.reset`.
///
/// # Errors
/// The engine's failure.
pub async fn from_committed(
    engine: &EngineHandle,
    topic: &str,
    partition: u32,
    committed: Option<i64>,
    reset: OffsetSpec,
) -> Result<i64, Status> {
    if let Some(offset) = committed {
        let earliest = resolve(engine, topic, partition, OffsetSpec::Earliest).await?;
        let latest = resolve(engine, topic, partition, OffsetSpec::Latest).await?;
        if (earliest..=latest).contains(&offset) {
            return Ok(offset);
        }
        tracing::info!(
            topic,
            partition,
            offset,
            earliest,
            latest,
            "committed offset is outside the log; using the reset position"
        );
    }
    resolve(engine, topic, partition, reset).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{SUBSCRIBE_MAX_BYTES_MAX, SUBSCRIBE_PARTITIONS_MAX};

    #[test]
    fn many_partitions_share_the_subscriptions_read_budget() {
        let mib = 1 << 20;
        assert_eq!(
            read_budget(mib, 1),
            mib,
            "one partition reads what it asked"
        );
        assert_eq!(read_budget(mib, 64), mib);
        assert_eq!(
            read_budget(SUBSCRIBE_MAX_BYTES_MAX, 64),
            mib,
            "64 x 16 MiB is shared"
        );
        assert_eq!(read_budget(mib, 1024), 64 << 10);
        assert_eq!(
            read_budget(mib, SUBSCRIBE_PARTITIONS_MAX),
            SUBSCRIBE_READ_BYTES_MIN,
            "never below the floor"
        );
        assert_eq!(read_budget(mib, 100_000), SUBSCRIBE_READ_BYTES_MIN);
        assert_eq!(read_budget(mib, 0), mib);
    }
}
