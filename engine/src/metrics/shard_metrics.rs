//! [`ShardMetrics`]: the counters one shard keeps about its own work.
//!
//! Every field is a plain `Cell` or `RefCell` in shard-local state: the hot path pays an add,
//! never an atomic or a lock, and no other thread ever reads these cells. A scrape reads them
//! by message ([`crate::metrics::gather`] runs [`crate::metrics::snapshot`] on every shard),
//! which copies them into a `Send` [`ShardSnapshot`](crate::metrics::ShardSnapshot).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use spindle_log::RoundObserver;

use super::histogram::{HistogramSnapshot, LatencyHistogram};
use crate::TopicPartition;

/// A monotonically increasing shard-local count.
#[derive(Debug, Default)]
pub struct Counter(Cell<u64>);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.set(self.0.get().wrapping_add(n));
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// Requests, failures and latency of one request kind (a Kafka API).
#[derive(Debug, Default)]
pub(crate) struct RequestStats {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) latency: LatencyHistogram,
}

/// One request kind's numbers, copied off the shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSnapshot {
    /// The request kind (a Kafka API name such as `Produce`).
    pub api: String,
    /// Requests handled.
    pub requests: u64,
    /// Requests that failed (see [`ShardMetrics::record_kafka_request`]).
    pub errors: u64,
    /// Time from decoded request to encoded answer.
    pub latency: HistogramSnapshot,
}

/// What one shard counts about its own work.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    /// Kafka requests by API key.
    kafka: RefCell<BTreeMap<i16, RequestStats>>,
    /// Kafka frame bytes read, length prefix included.
    pub bytes_in: Counter,
    /// Kafka answer bytes written, length prefix included.
    pub bytes_out: Counter,
    /// Kafka connections open on this shard.
    connections_open: Cell<u64>,
    /// Records appended to this shard's partitions (internal topics included).
    pub records_appended: Counter,
    /// Batch bytes appended to this shard's partitions.
    pub bytes_appended: Counter,
    /// Of those, bytes the Kafka server copied before the append: the batches of a Produce
    /// request's partitions other than one filling at least half of the request; the others
    /// were patched in place in the memory they arrived in.
    pub bytes_copied: Counter,
    /// Time from a produce reaching its partition's shard to its acknowledgement by the log.
    append_latency: LatencyHistogram,
    /// Time the shard's write rounds took, each from its submission to its completion (shared
    /// with the logs, which record into it: see [`ShardMetrics::round_observer`]).
    write_latency: Rc<LatencyHistogram>,
    /// Jobs this shard sent to another shard.
    pub cross_shard_messages: Counter,
    /// Cleanings of this shard's partitions of the offsets log.
    pub offsets_cleanings: Counter,
    /// Compaction passes over partitions of compacted topics.
    pub log_compactions: Counter,
    /// Records those passes removed.
    pub compaction_records_removed: Counter,
    /// Groups whose committed offsets this shard's coordinator expired.
    pub offsets_expired_groups: Counter,
    /// Transactions this shard's coordinator committed.
    pub txn_commits: Counter,
    /// Transactions this shard's coordinator aborted (at the producer's request, to fence it,
    /// or past their timeout).
    pub txn_aborts: Counter,
    /// Of those, transactions aborted because they were open past their timeout.
    pub txn_timeouts: Counter,
    /// What this shard's logs counted, as of the last scrape.
    logs: Cell<LogCounters>,
    /// Each open log's counters when they were last added to `logs`.
    logs_seen: RefCell<HashMap<TopicPartition, LogCounters>>,
}

/// What a log counts itself (no cost on the shard's hot path), summed over a shard's logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCounters {
    /// fdatasync calls, and write rounds made durable by `O_DSYNC`.
    pub syncs: u64,
    /// Microseconds spent in those.
    pub sync_micros: u64,
    /// Bytes reads returned from the tail caches.
    pub bytes_read_cached: u64,
    /// Bytes reads returned from segment files.
    pub bytes_read_from_disk: u64,
    /// Segments rolled into a new file.
    pub segments_new: u64,
    /// Segments rolled into a retired segment's file.
    pub segments_recycled: u64,
}

impl LogCounters {
    /// What was counted since `before`; a log that counts less than `before` was re-opened and
    /// counts from zero.
    fn since(self, before: LogCounters) -> LogCounters {
        if self.syncs < before.syncs
            || self.bytes_read_cached < before.bytes_read_cached
            || self.bytes_read_from_disk < before.bytes_read_from_disk
            || self.segments_new < before.segments_new
            || self.segments_recycled < before.segments_recycled
        {
            return self;
        }
        LogCounters {
            syncs: self.syncs - before.syncs,
            sync_micros: self.sync_micros.saturating_sub(before.sync_micros),
            bytes_read_cached: self.bytes_read_cached - before.bytes_read_cached,
            bytes_read_from_disk: self.bytes_read_from_disk - before.bytes_read_from_disk,
            segments_new: self.segments_new - before.segments_new,
            segments_recycled: self.segments_recycled - before.segments_recycled,
        }
    }

    fn plus(self, other: LogCounters) -> LogCounters {
        LogCounters {
            syncs: self.syncs.wrapping_add(other.syncs),
            sync_micros: self.sync_micros.wrapping_add(other.sync_micros),
            bytes_read_cached: self.bytes_read_cached.wrapping_add(other.bytes_read_cached),
            bytes_read_from_disk: self
                .bytes_read_from_disk
                .wrapping_add(other.bytes_read_from_disk),
            segments_new: self.segments_new.wrapping_add(other.segments_new),
            segments_recycled: self.segments_recycled.wrapping_add(other.segments_recycled),
        }
    }
}

impl ShardMetrics {
    /// Counts one Kafka request: `failed` when the connection closed on it or its answer carries
    /// an error code.
    pub fn record_kafka_request(&self, api_key: i16, elapsed: Duration, failed: bool) {
        let mut kafka = self.kafka.borrow_mut();
        let stats = kafka.entry(api_key).or_default();
        stats.requests += 1;
        stats.errors += u64::from(failed);
        stats.latency.record(elapsed);
    }

    /// A Kafka connection opened on this shard.
    pub fn connection_opened(&self) {
        self.connections_open.set(self.connections_open.get() + 1);
    }

    /// A Kafka connection on this shard closed.
    ///
    /// # Panics
    /// When more connections close than opened (a bug in the caller).
    pub fn connection_closed(&self) {
        let open = self.connections_open.get();
        assert!(open > 0, "a connection closed that never opened");
        self.connections_open.set(open - 1);
    }

    /// Kafka connections open now.
    pub fn connections_open(&self) -> u64 {
        self.connections_open.get()
    }

    /// Counts records and bytes appended by one produce, and the time it took: its checks,
    /// its append and the wait for its write round (and sync).
    pub(crate) fn record_append(&self, records: u64, bytes: u64, elapsed: Duration) {
        self.records_appended.add(records);
        self.bytes_appended.add(bytes);
        self.append_latency.record(elapsed);
    }

    /// The produces' append latency so far.
    pub(crate) fn append_latency(&self) -> HistogramSnapshot {
        self.append_latency.snapshot()
    }

    /// What a log of this shard is given to record its write rounds' durations here.
    pub(crate) fn round_observer(&self) -> RoundObserver {
        let histogram = Rc::clone(&self.write_latency);
        Rc::new(move |took| histogram.record(took))
    }

    /// The write rounds' latency so far.
    pub(crate) fn write_latency(&self) -> HistogramSnapshot {
        self.write_latency.snapshot()
    }

    /// Adds what each log counted since the last call to the shard's counters and returns
    /// them. The logs count for themselves (no cost here on the write or read path); what a
    /// log closed between two scrapes counted since the first is lost.
    pub(crate) fn collect_log_counters(
        &self,
        logs: &[(TopicPartition, LogCounters)],
    ) -> LogCounters {
        let mut seen = self.logs_seen.borrow_mut();
        let mut next = HashMap::with_capacity(logs.len());
        let mut total = self.logs.get();
        for (tp, now) in logs {
            let before = seen.remove(tp).unwrap_or_default();
            total = total.plus(now.since(before));
            next.insert(tp.clone(), *now);
        }
        *seen = next;
        self.logs.set(total);
        total
    }

    /// Every Kafka API's numbers, named.
    pub(crate) fn kafka_snapshot(&self) -> Vec<RequestSnapshot> {
        self.kafka
            .borrow()
            .iter()
            .map(|(key, stats)| RequestSnapshot {
                api: api_name(*key),
                requests: stats.requests,
                errors: stats.errors,
                latency: stats.latency.snapshot(),
            })
            .collect()
    }
}

/// The Kafka API's name (`Produce`), or its number when the codec does not know it.
fn api_name(key: i16) -> String {
    match kafka_protocol::messages::ApiKey::try_from(key) {
        Ok(api) => format!("{api:?}"),
        Err(()) => key.to_string(),
    }
}
