//! One Kafka-protocol consumer: fetches its share of the partitions in a loop and measures
//! end-to-end latency from the producers' batch timestamps.
//!
//! Consumers do not decode records: the batch headers give the record count, the offset of the
//! last record and the first timestamp, which is all a throughput and latency figure needs
//! (and what a broker that stores batches as received hands out unchanged). Timestamps are in
//! ms, so end-to-end latency has a resolution of one ms; batches older than the run (read with
//! `--from start`) are counted but not timed.
//!
//! A consumer stops once the producers are done and it has caught up with the high watermark
//! of every partition it reads, as fetches sent after the producers were done report it (an
//! earlier answer can predate the last acknowledged batch), when a consume-only run reaches its
//! count or deadline, or
//! [`limits::DRAIN_TIMEOUT_SECS`] after the producers finished.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse};

use crate::bench::args::Stop;
use crate::bench::batch::first_timestamp_ms;
use crate::bench::kafka::cluster::{topic_name, Cluster};
use crate::bench::kafka::connection::Connection;
use crate::bench::latency::Latency;
use crate::bench::limits;
use crate::bench::throughput::Throughput;

/// Longest a fetch waits at the broker for data.
const FETCH_MAX_WAIT_MS: i32 = 100;
/// Bytes asked per partition per fetch.
const PARTITION_MAX_BYTES: i32 = 4 << 20;
/// Bytes asked per fetch.
const FETCH_MAX_BYTES: i32 = 32 << 20;

/// What every consumer of a run shares.
pub struct ConsumeSetup<'a> {
    /// The cluster and its leaders.
    pub cluster: &'a Cluster,
    /// Topic name.
    pub topic: &'a str,
    /// Consumers in the run.
    pub consumers: usize,
    /// First offset of each partition.
    pub start_offsets: &'a HashMap<i32, i64>,
    /// Whether the run has producers (else it is consume-only).
    pub with_producers: bool,
    /// The run's end, for consume-only runs.
    pub stop: Stop,
    /// Set once every producer has finished.
    pub producers_done: &'a AtomicBool,
    /// Shared counters.
    pub throughput: &'a Arc<Throughput>,
    /// Wall clock (ms since the epoch) at the run's start: records stamped earlier were not
    /// produced by this run and are counted but not timed.
    pub start_wall_ms: i64,
    /// When the warm-up ends: what arrives before is not counted.
    pub measure_from: Instant,
    /// The fetches' `isolation_level`.
    pub isolation_level: i8,
}

/// What one consumer measured.
#[derive(Debug, Default)]
pub struct ConsumerOutcome {
    /// End-to-end latency per batch produced during the run.
    pub e2e: Latency,
    /// Records read.
    pub messages: u64,
    /// Batch bytes read.
    pub bytes: u64,
    /// When the last record arrived.
    pub last_record_at: Option<Instant>,
    /// The first error met.
    pub first_error: Option<String>,
}

/// One partition's read position.
struct Position {
    partition: i32,
    next_offset: i64,
    high_watermark: i64,
}

/// Runs consumer `index` until its stop condition.
pub fn run(setup: &ConsumeSetup<'_>, index: usize) -> ConsumerOutcome {
    let mut out = ConsumerOutcome::default();
    if let Err(e) = consume(setup, index, &mut out) {
        setup.throughput.error();
        out.first_error.get_or_insert_with(|| format!("{e:#}"));
    }
    out
}

fn consume(
    setup: &ConsumeSetup<'_>,
    index: usize,
    out: &mut ConsumerOutcome,
) -> anyhow::Result<()> {
    // Partitions dealt round robin, grouped by leader: one connection per leader.
    let mut by_leader: HashMap<i32, Vec<Position>> = HashMap::new();
    for p in (0..setup.cluster.leaders.len()).filter(|p| p % setup.consumers == index) {
        let partition = p as i32;
        let next_offset = *setup
            .start_offsets
            .get(&partition)
            .with_context(|| format!("no start offset for partition {partition}"))?;
        by_leader
            .entry(setup.cluster.leaders[p])
            .or_default()
            .push(Position {
                partition,
                next_offset,
                high_watermark: next_offset,
            });
    }
    let mut readers = Vec::new();
    for (leader, positions) in by_leader {
        readers.push((setup.cluster.connect(leader)?, positions));
    }
    let mut drain_deadline: Option<Instant> = None;
    while !readers.is_empty() {
        // A Fetch answered before the last produce was acknowledged carries a high watermark
        // without it: only a round of fetches sent after the producers were done can say the
        // consumer has caught up with everything they wrote.
        let producers_were_done = setup.producers_done.load(Ordering::Acquire);
        for (conn, positions) in &mut readers {
            fetch(setup, conn, positions, out)?;
        }
        let caught_up = producers_were_done
            && readers
                .iter()
                .flat_map(|(_, ps)| ps)
                .all(|p| p.next_offset >= p.high_watermark);
        if finished(setup, caught_up, &mut drain_deadline) {
            return Ok(());
        }
    }
    Ok(())
}

fn finished(
    setup: &ConsumeSetup<'_>,
    caught_up: bool,
    drain_deadline: &mut Option<Instant>,
) -> bool {
    let now = Instant::now();
    if !setup.with_producers {
        return match setup.stop {
            Stop::Count(n) => setup.throughput.totals().consumed_messages >= n,
            Stop::Duration(d) => now >= setup.measure_from + d,
        };
    }
    if !setup.producers_done.load(Ordering::Acquire) {
        return false;
    }
    let deadline =
        *drain_deadline.get_or_insert(now + Duration::from_secs(limits::DRAIN_TIMEOUT_SECS));
    caught_up || now >= deadline
}

/// One Fetch of `positions` from one leader; counts and times what arrives.
fn fetch(
    setup: &ConsumeSetup<'_>,
    conn: &mut Connection,
    positions: &mut [Position],
    out: &mut ConsumerOutcome,
) -> anyhow::Result<()> {
    let request = FetchRequest::default()
        .with_isolation_level(setup.isolation_level)
        .with_max_wait_ms(FETCH_MAX_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(setup.topic))
            .with_partitions(
                positions
                    .iter()
                    .map(|p| {
                        FetchPartition::default()
                            .with_partition(p.partition)
                            .with_fetch_offset(p.next_offset)
                            .with_partition_max_bytes(PARTITION_MAX_BYTES)
                    })
                    .collect(),
            )]);
    let response: FetchResponse = conn
        .call(&request, setup.cluster.versions.fetch)
        .context("Fetch")?;
    ensure!(
        response.error_code == 0,
        "Fetch failed with error code {}",
        response.error_code
    );
    for t in &response.responses {
        for data in &t.partitions {
            ensure!(
                data.error_code == 0,
                "Fetch of partition {} failed with error code {}",
                data.partition_index,
                data.error_code
            );
            let Some(pos) = positions
                .iter_mut()
                .find(|p| p.partition == data.partition_index)
            else {
                continue;
            };
            pos.high_watermark = data.high_watermark;
            if let Some(records) = &data.records {
                pos.next_offset = count_batches(setup, records, pos.next_offset, out);
            }
        }
    }
    Ok(())
}

/// Walks the whole batches in `records`, counting those at or past `next_offset`, and returns
/// the offset after the last one. A trailing partial batch (cut by the byte budget) is left
/// for the next fetch.
fn count_batches(
    setup: &ConsumeSetup<'_>,
    records: &[u8],
    mut next_offset: i64,
    out: &mut ConsumerOutcome,
) -> i64 {
    let mut rest = records;
    let now_wall_us = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros()),
    )
    .unwrap_or(i64::MAX);
    let measured = Instant::now() >= setup.measure_from;
    while let Some(header) = BatchHeader::parse(rest) {
        let Some(next) = rest.get(header.total_len..) else {
            break;
        };
        if header.last_offset() >= next_offset && measured {
            out.messages += header.record_count;
            out.bytes += header.total_len as u64;
            setup
                .throughput
                .consumed(header.record_count, header.total_len as u64);
            if let Some(ts) = first_timestamp_ms(rest) {
                if ts >= setup.start_wall_ms {
                    out.e2e
                        .record_us(u64::try_from(now_wall_us - ts * 1000).unwrap_or(0));
                }
            }
            out.last_record_at = Some(Instant::now());
        }
        next_offset = next_offset.max(header.last_offset() + 1);
        rest = next;
    }
    next_offset
}

/// The fields of a stored batch header that a consumer needs.
struct BatchHeader {
    base_offset: i64,
    last_offset_delta: i32,
    record_count: u64,
    total_len: usize,
}

impl BatchHeader {
    fn parse(buf: &[u8]) -> Option<Self> {
        let i64_at = |at: usize| {
            buf.get(at..at + 8)
                .map(|b| i64::from_be_bytes(b.try_into().unwrap_or_default()))
        };
        let i32_at = |at: usize| {
            buf.get(at..at + 4)
                .map(|b| i32::from_be_bytes(b.try_into().unwrap_or_default()))
        };
        let length = usize::try_from(i32_at(8)?).ok()?;
        Some(Self {
            base_offset: i64_at(0)?,
            last_offset_delta: i32_at(23)?,
            record_count: u64::try_from(i32_at(57)?).ok()?,
            total_len: length + 12,
        })
    }

    fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::batch::{BatchShape, Template};
    use kafka_protocol::records::Compression;

    #[test]
    fn batch_headers_give_count_last_offset_and_length() {
        let shape = BatchShape::filling(1000, 100, Compression::None);
        let t = Template::build(&shape, 0, 5).expect("builds");
        let h = BatchHeader::parse(&t.bytes).expect("parses");
        assert_eq!(h.record_count, 10);
        assert_eq!(h.last_offset(), 9);
        assert_eq!(h.total_len, t.bytes.len());
        assert!(BatchHeader::parse(&t.bytes[..20]).is_none());
    }
}
