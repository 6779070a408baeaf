//! [`Scrape`]: every shard's [`ShardSnapshot`] gathered at one moment, rendered as one
//! Prometheus exposition.
//!
//! Snapshots are built on their shard by [`snapshot`] and cross threads as plain data. Values
//! that depend on more than one shard are computed here, after gathering: a group's committed
//! offsets live on its coordinator shard while the partition's high watermark lives on the
//! partition's owner, so the lag is `high watermark - committed` joined by topic-partition.

use std::collections::HashMap;

use super::exposition::{seconds, Exposition, Kind};
use super::histogram::HistogramSnapshot;
use super::shard_metrics::{LogCounters, RequestSnapshot};
use crate::{Shard, ShardId, TopicPartition};

/// One partition's log as its owner sees it at scrape time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSnapshot {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// First offset still in the log.
    pub log_start_offset: u64,
    /// Offset after the last readable record.
    pub high_watermark: u64,
    /// Bytes on disk.
    pub size_bytes: u64,
}

/// One committed offset of a group, from its coordinator shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffsetSnapshot {
    /// Group id.
    pub group: String,
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// The committed offset (the next record the group will read).
    pub committed: i64,
}

/// One shard's numbers at one moment; `Send`, built on the shard by [`snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSnapshot {
    /// The shard.
    pub shard: ShardId,
    /// Kafka requests by API.
    pub kafka: Vec<RequestSnapshot>,
    /// Kafka bytes read.
    pub bytes_in: u64,
    /// Kafka bytes written.
    pub bytes_out: u64,
    /// Kafka connections open.
    pub connections_open: u64,
    /// Records appended.
    pub records_appended: u64,
    /// Batch bytes appended.
    pub bytes_appended: u64,
    /// Of those, Kafka Produce bytes copied before the append.
    pub bytes_copied: u64,
    /// Time from a produce reaching the shard to its acknowledgement by the log.
    pub append_latency: HistogramSnapshot,
    /// Time the shard's write rounds took.
    pub write_latency: HistogramSnapshot,
    /// Jobs sent to other shards.
    pub cross_shard_messages: u64,
    /// Cleanings of the shard's partitions of the offsets log.
    pub offsets_cleanings: u64,
    /// Compaction passes over partitions of compacted topics.
    pub log_compactions: u64,
    /// Records those passes removed.
    pub compaction_records_removed: u64,
    /// Groups whose committed offsets expired.
    pub offsets_expired_groups: u64,
    /// Transactions committed, aborted, and aborted past their timeout.
    pub txn_commits: u64,
    /// See `txn_commits`.
    pub txn_aborts: u64,
    /// See `txn_commits`.
    pub txn_timeouts: u64,
    /// What the shard's logs counted: syncs and their time, bytes read from caches and disk.
    pub logs: LogCounters,
    /// The partitions this shard owns.
    pub partitions: Vec<PartitionSnapshot>,
    /// Committed offsets of the groups this shard coordinates.
    pub group_offsets: Vec<GroupOffsetSnapshot>,
}

/// Copies `shard`'s counters and computes its partition and group gauges. Runs on the shard.
pub fn snapshot(shard: &Shard) -> ShardSnapshot {
    let state = shard.state();
    let metrics = &state.metrics;
    let mut partitions: Vec<PartitionSnapshot> = state
        .partitions
        .borrow()
        .iter()
        .map(|(tp, p)| {
            let s = p.state(state.id);
            PartitionSnapshot {
                topic: tp.topic.to_string(),
                partition: s.partition.0,
                log_start_offset: s.log_start_offset.0,
                high_watermark: s.high_watermark.0,
                size_bytes: s.size_bytes,
            }
        })
        .collect();
    let counters: Vec<(TopicPartition, LogCounters)> = state
        .partitions
        .borrow()
        .iter()
        .map(|(tp, p)| (tp.clone(), p.log_counters()))
        .collect();
    let logs = metrics.collect_log_counters(&counters);
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    ShardSnapshot {
        shard: state.id,
        kafka: metrics.kafka_snapshot(),
        bytes_in: metrics.bytes_in.get(),
        bytes_out: metrics.bytes_out.get(),
        connections_open: metrics.connections_open(),
        records_appended: metrics.records_appended.get(),
        bytes_appended: metrics.bytes_appended.get(),
        bytes_copied: metrics.bytes_copied.get(),
        append_latency: metrics.append_latency(),
        write_latency: metrics.write_latency(),
        cross_shard_messages: metrics.cross_shard_messages.get(),
        offsets_cleanings: metrics.offsets_cleanings.get(),
        log_compactions: metrics.log_compactions.get(),
        compaction_records_removed: metrics.compaction_records_removed.get(),
        offsets_expired_groups: metrics.offsets_expired_groups.get(),
        txn_commits: metrics.txn_commits.get(),
        txn_aborts: metrics.txn_aborts.get(),
        txn_timeouts: metrics.txn_timeouts.get(),
        logs,
        partitions,
        group_offsets: group_offsets(shard),
    }
}

/// Every committed offset of the groups `shard` coordinates.
fn group_offsets(shard: &Shard) -> Vec<GroupOffsetSnapshot> {
    let Some(groups) = shard.state().groups.get() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for listing in groups.list_groups() {
        for (tp, committed) in groups.fetch_offsets(&listing.group_id, None) {
            let Some(committed) = committed else { continue };
            out.push(GroupOffsetSnapshot {
                group: listing.group_id.clone(),
                topic: tp.topic.to_string(),
                partition: tp.partition.0,
                committed: committed.offset,
            });
        }
    }
    out
}

/// Every shard's snapshot, in shard order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scrape {
    /// One per shard.
    pub shards: Vec<ShardSnapshot>,
}

/// A plain counter or gauge sampled once per shard: name, help, kind and where it is read.
type ShardCounter = (&'static str, &'static str, Kind, fn(&ShardSnapshot) -> u64);

/// The plain per-shard counters and gauges, in the order they are exposed.
const SHARD_COUNTERS: [ShardCounter; 16] = [
    (
        "spindle_kafka_bytes_received_total",
        "Kafka request bytes read.",
        Kind::Counter,
        |s| s.bytes_in,
    ),
    (
        "spindle_kafka_bytes_sent_total",
        "Kafka answer bytes written.",
        Kind::Counter,
        |s| s.bytes_out,
    ),
    (
        "spindle_kafka_connections_open",
        "Kafka connections open.",
        Kind::Gauge,
        |s| s.connections_open,
    ),
    (
        "spindle_records_appended_total",
        "Records appended to the shard's partitions, internal topics included.",
        Kind::Counter,
        |s| s.records_appended,
    ),
    (
        "spindle_bytes_appended_total",
        "Record batch bytes appended to the shard's partitions.",
        Kind::Counter,
        |s| s.bytes_appended,
    ),
    (
        "spindle_bytes_copied_total",
        "Of those, bytes of Kafka Produce requests copied before the append (partitions other than one filling half the request).",
        Kind::Counter,
        |s| s.bytes_copied,
    ),
    (
        "spindle_cross_shard_messages_total",
        "Jobs this shard sent to other shards.",
        Kind::Counter,
        |s| s.cross_shard_messages,
    ),
    (
        "spindle_offsets_log_cleanings_total",
        "Cleanings of the shard's partitions of __consumer_offsets (live commits rewritten, log start moved).",
        Kind::Counter,
        |s| s.offsets_cleanings,
    ),
    (
        "spindle_log_compactions_total",
        "Compaction passes over the shard's partitions of compacted topics (cleanup.policy=compact).",
        Kind::Counter,
        |s| s.log_compactions,
    ),
    (
        "spindle_log_compaction_records_removed_total",
        "Records compaction removed (superseded by a later record of their key, or expired tombstones).",
        Kind::Counter,
        |s| s.compaction_records_removed,
    ),
    (
        "spindle_transactions_committed_total",
        "Transactions the shard's coordinator committed (markers written, offsets committed).",
        Kind::Counter,
        |s| s.txn_commits,
    ),
    (
        "spindle_transactions_aborted_total",
        "Transactions the shard's coordinator aborted: by the producer, to fence it, or past their timeout.",
        Kind::Counter,
        |s| s.txn_aborts,
    ),
    (
        "spindle_transactions_timed_out_total",
        "Transactions the shard's coordinator aborted because they were open past their timeout.",
        Kind::Counter,
        |s| s.txn_timeouts,
    ),
    (
        "spindle_group_offsets_expired_total",
        "Groups whose committed offsets expired (no members, nothing committed within the offsets retention).",
        Kind::Counter,
        |s| s.offsets_expired_groups,
    ),
    (
        "spindle_fsyncs_total",
        "fdatasync calls on the shard's logs (counted by the logs, read at scrape time).",
        Kind::Counter,
        |s| s.logs.syncs,
    ),
    (
        "spindle_partitions_owned",
        "Partitions this shard owns.",
        Kind::Gauge,
        |s| s.partitions.len() as u64,
    ),
];

impl Scrape {
    /// The high watermark of every partition of every shard, by (topic, partition).
    fn high_watermarks(&self) -> HashMap<(&str, u32), u64> {
        self.shards
            .iter()
            .flat_map(|s| &s.partitions)
            .map(|p| ((p.topic.as_str(), p.partition), p.high_watermark))
            .collect()
    }

    /// The whole exposition.
    pub fn render(&self) -> String {
        let mut e = Exposition::default();
        self.render_kafka(&mut e);
        self.render_shard_counters(&mut e);
        self.render_log_counters(&mut e);
        self.render_partitions(&mut e);
        self.render_groups(&mut e);
        e.finish()
    }

    fn render_kafka(&self, e: &mut Exposition) {
        type Pick = fn(&RequestSnapshot) -> u64;
        let counters: [(&str, &str, Pick); 2] = [
            (
                "spindle_kafka_requests_total",
                "Kafka requests handled, by shard and API.",
                |r| r.requests,
            ),
            (
                "spindle_kafka_request_errors_total",
                "Kafka requests answered with an error code or that closed the connection, by shard and API.",
                |r| r.errors,
            ),
        ];
        for (name, help, pick) in counters {
            e.family(name, help, Kind::Counter);
            for s in &self.shards {
                let shard = s.shard.to_string();
                for r in &s.kafka {
                    e.sample(name, &[("shard", &shard), ("api", &r.api)], pick(r));
                }
            }
        }
        let name = "spindle_kafka_request_duration_seconds";
        e.family(
            name,
            "Time from a decoded Kafka request to its encoded answer.",
            Kind::Histogram,
        );
        for s in &self.shards {
            let shard = s.shard.to_string();
            for r in &s.kafka {
                e.histogram(name, &[("shard", &shard), ("api", &r.api)], &r.latency);
            }
        }
    }

    /// One sample per shard of each of its plain counters and gauges ([`SHARD_COUNTERS`]).
    fn render_shard_counters(&self, e: &mut Exposition) {
        for (name, help, kind, pick) in SHARD_COUNTERS {
            e.family(name, help, kind);
            for s in &self.shards {
                e.sample(name, &[("shard", &s.shard.to_string())], pick(s));
            }
        }
    }

    /// The shards' log counters that are not a plain count per shard: time spent syncing,
    /// bytes read by where they came from, segments started by the file they went into, and
    /// the latency of the produces' appends and of the write rounds.
    fn render_log_counters(&self, e: &mut Exposition) {
        // With spindle_fsyncs_total this gives the mean fsync latency over any window.
        let name = "spindle_fsync_seconds_total";
        e.family(
            name,
            "Time spent in fdatasync on the shard's logs.",
            Kind::Counter,
        );
        for s in &self.shards {
            let shard = s.shard.to_string();
            e.sample(name, &[("shard", &shard)], seconds(s.logs.sync_micros));
        }
        let name = "spindle_read_bytes_total";
        e.family(
            name,
            "Bytes of batches reads returned, by where they came from: the partitions' tail \
             caches or their segment files.",
            Kind::Counter,
        );
        for s in &self.shards {
            let shard = s.shard.to_string();
            e.sample(
                name,
                &[("shard", &shard), ("source", "cache")],
                s.logs.bytes_read_cached,
            );
            e.sample(
                name,
                &[("shard", &shard), ("source", "disk")],
                s.logs.bytes_read_from_disk,
            );
        }
        let name = "spindle_segments_started_total";
        e.family(
            name,
            "Segments the shard's logs rolled into, by file: a new one (whose first writes go \
             into fresh extents, slower on most file systems) or a retired segment's, reused.",
            Kind::Counter,
        );
        for s in &self.shards {
            let shard = s.shard.to_string();
            e.sample(
                name,
                &[("shard", &shard), ("file", "new")],
                s.logs.segments_new,
            );
            e.sample(
                name,
                &[("shard", &shard), ("file", "recycled")],
                s.logs.segments_recycled,
            );
        }
        let name = "spindle_append_duration_seconds";
        e.family(
            name,
            "Time from a produce reaching its partition's shard to its acknowledgement by the \
             log: checks, append, and the wait for its write round (and its sync under \
             fsync.policy=batch).",
            Kind::Histogram,
        );
        for s in &self.shards {
            e.histogram(name, &[("shard", &s.shard.to_string())], &s.append_latency);
        }
        let name = "spindle_log_write_duration_seconds";
        e.family(
            name,
            "Time the shard's write rounds took, each from its submission to the completion of \
             its writes (and sync): the disk's and the kernel's part of an append.",
            Kind::Histogram,
        );
        for s in &self.shards {
            e.histogram(name, &[("shard", &s.shard.to_string())], &s.write_latency);
        }
    }

    fn render_partitions(&self, e: &mut Exposition) {
        type Pick = fn(&PartitionSnapshot) -> u64;
        let families: [(&str, &str, Pick); 3] = [
            (
                "spindle_partition_log_start_offset",
                "First offset still in the partition's log.",
                |p| p.log_start_offset,
            ),
            (
                "spindle_partition_high_watermark",
                "Offset after the partition's last readable record.",
                |p| p.high_watermark,
            ),
            (
                "spindle_partition_size_bytes",
                "Bytes the partition's log holds on disk.",
                |p| p.size_bytes,
            ),
        ];
        for (name, help, pick) in families {
            e.family(name, help, Kind::Gauge);
            for s in &self.shards {
                for p in &s.partitions {
                    let partition = p.partition.to_string();
                    e.sample(
                        name,
                        &[("topic", &p.topic), ("partition", &partition)],
                        pick(p),
                    );
                }
            }
        }
    }

    fn render_groups(&self, e: &mut Exposition) {
        let offsets: Vec<&GroupOffsetSnapshot> =
            self.shards.iter().flat_map(|s| &s.group_offsets).collect();
        let name = "spindle_group_committed_offset";
        e.family(name, "A consumer group's committed offset.", Kind::Gauge);
        for o in &offsets {
            let partition = o.partition.to_string();
            let labels = [
                ("group", o.group.as_str()),
                ("topic", &o.topic),
                ("partition", &partition),
            ];
            e.sample(name, &labels, o.committed);
        }
        let high_watermarks = self.high_watermarks();
        let name = "spindle_group_lag";
        e.family(
            name,
            "Records between a group's committed offset and the partition's high watermark.",
            Kind::Gauge,
        );
        for o in &offsets {
            // A commit for a partition that no longer exists has no lag to report.
            let Some(hw) = high_watermarks.get(&(o.topic.as_str(), o.partition)) else {
                continue;
            };
            let lag = i64::try_from(*hw)
                .unwrap_or(i64::MAX)
                .saturating_sub(o.committed)
                .max(0);
            let partition = o.partition.to_string();
            let labels = [
                ("group", o.group.as_str()),
                ("topic", &o.topic),
                ("partition", &partition),
            ];
            e.sample(name, &labels, lag);
        }
    }
}
