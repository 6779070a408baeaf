//! [`ShardMetrics`]: the counters one shard keeps about its own work.
//!
//! Every field is a plain `Cell` or `RefCell` in shard-local state: the hot path pays an add,
//! never an atomic or a lock, and no other thread ever reads these cells. A scrape reads them
//! by message ([`crate::metrics::gather`] runs [`crate::metrics::snapshot`] on every shard),
//! which copies them into a `Send` [`ShardSnapshot`](crate::metrics::ShardSnapshot).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

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
    /// Of those, bytes a write round copied to patch their offsets, because their buffer was
    /// shared (a Kafka request for several partitions); the others were patched in place.
    pub bytes_copied: Counter,
    /// Jobs this shard sent to another shard.
    pub cross_shard_messages: Counter,
    /// fdatasync calls on this shard's logs, as of the last scrape.
    fsyncs: Counter,
    /// Microseconds spent in those calls.
    fsync_micros: Counter,
    /// Each open log's `(syncs, microseconds)` when they were last added to the counters.
    syncs_seen: RefCell<HashMap<TopicPartition, (u64, u64)>>,
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

    /// Counts records appended by one produce, and the bytes its write copied to patch them.
    pub(crate) fn record_append(&self, records: u64, bytes: u64, copied: u64) {
        self.records_appended.add(records);
        self.bytes_appended.add(bytes);
        self.bytes_copied.add(copied);
    }

    /// Adds the syncs each log made since the last call, and their time, to the shard's
    /// counters and returns `(syncs, microseconds)`. The logs count their own syncs (no cost
    /// here on the write path); a log that reports fewer than last seen was re-opened and
    /// counts from zero. Syncs of a log closed between two scrapes since the first are lost.
    pub(crate) fn collect_fsyncs(&self, logs: &[(TopicPartition, (u64, u64))]) -> (u64, u64) {
        let mut seen = self.syncs_seen.borrow_mut();
        let mut next = HashMap::with_capacity(logs.len());
        for (tp, (syncs, micros)) in logs {
            let (syncs_before, micros_before) = seen.remove(tp).unwrap_or((0, 0));
            if *syncs >= syncs_before {
                self.fsyncs.add(syncs - syncs_before);
                self.fsync_micros.add(micros.saturating_sub(micros_before));
            } else {
                self.fsyncs.add(*syncs);
                self.fsync_micros.add(*micros);
            }
            next.insert(tp.clone(), (*syncs, *micros));
        }
        *seen = next;
        (self.fsyncs.get(), self.fsync_micros.get())
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
