//! Named limits of the engine. Every queue, count and wait has its maximum here, with the
//! relations between them checked at compile time.

use std::time::Duration;

/// Most shards one engine runs.
pub const SHARDS_MAX: usize = 256;

/// Most partitions one topic may have.
pub const PARTITIONS_PER_TOPIC_MAX: u32 = 10_000;

/// Fewest partitions the internal offsets topic is created with (one per shard when there are
/// more shards). The count never changes afterwards: it decides which partition holds a group's
/// commits (Redpanda's default is 16, Kafka's 50).
pub const OFFSETS_PARTITIONS_MIN: usize = 16;

/// Segment size of the internal offsets topic, as Kafka's `offsets.topic.segment.bytes`: its
/// cleaning moves the log start, and only segments wholly below it (never the active one) are
/// deleted, so a smaller segment gives the disk back sooner.
pub const OFFSETS_SEGMENT_BYTES: u64 = 100 * 1024 * 1024;

/// Longest topic name (Kafka's limit).
pub const TOPIC_NAME_LEN_MAX: usize = 249;

/// Capacity of each channel of the cross-shard mesh (jobs in flight from one shard to another
/// before the sender waits).
pub const MESH_CHANNEL_CAPACITY: usize = 1024;

/// Capacity of each shard's inbox for jobs from [`crate::EngineHandle`]s.
pub const HANDLE_INBOX_CAPACITY: usize = 4096;

/// How many recent batches per producer a partition remembers to answer duplicates (Kafka
/// allows five in-flight requests per idempotent producer).
pub const PRODUCER_BATCHES_REMEMBERED: usize = 5;

/// Most idempotent producers one partition remembers. Producer ids come from clients, so the
/// table is bounded: a new producer beyond this evicts the one that wrote least recently
/// (Kafka instead forgets producers idle for `producer.id.expiration.ms`, a day); a retry from an
/// evicted producer is then not recognised as a duplicate.
pub const PRODUCERS_PER_PARTITION_MAX: usize = 4096;

/// Producer ids reserved (and persisted) at a time, so a restart never reuses one.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// Longest wait a fetch may ask for.
pub const FETCH_MAX_WAIT: Duration = Duration::from_secs(60);

/// How often each shard enforces retention on its partitions.
pub const RETENTION_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// How often each shard looks for partitions that rolled since their last producer snapshot,
/// and saves one: recovery after a crash reads producer state from a snapshot no older than the
/// segment before the active one, so a partition must not roll twice between two looks.
pub const SNAPSHOT_CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// Shortest and longest tick of the interval-fsync timer (the tick follows the smallest
/// `interval:MS` among the shard's partitions, clamped to this range).
pub const FSYNC_TICK_MIN: Duration = Duration::from_millis(5);
/// See [`FSYNC_TICK_MIN`].
pub const FSYNC_TICK_MAX: Duration = Duration::from_secs(1);

/// How long shutdown waits for services to finish their in-flight work.
pub const SERVICE_DRAIN_MAX: Duration = Duration::from_secs(5);

/// Most bytes of `io_memory` glommio is given per shard (its own default).
pub const IO_MEMORY_MAX: usize = 10 << 20;

/// Least bytes of `io_memory` glommio accepts.
pub const IO_MEMORY_MIN: usize = 64 << 10;

/// Least `RLIMIT_MEMLOCK` glommio can create an executor with.
pub const MEMLOCK_MIN: u64 = 512 << 10;

/// io_uring rings per glommio executor, each registering the shard's `io_memory`.
pub const RINGS_PER_SHARD: usize = 3;

/// Submission queue entries of each of a shard's io_uring rings (glommio's default is 128); the
/// completion queue gets twice as many. The kernel sizes a ring's table of pending polls from
/// its completion queue: `2^clamp(log2(entries) - 5, 1, 8)` buckets, 8 at glommio's default and
/// the most, 256, from 4096 on. Every connection waiting for its next request is one such poll,
/// and every cancel submitted to the ring (glommio cancels a timeout on most passes of its
/// reactor) first walks one bucket: with 10,000 idle connections in 8 buckets that walk took a
/// quarter of the shard's CPU and a fifth of the active clients' throughput.
pub const RING_DEPTH: usize = 4096;

/// Ring depth a shard falls back to where rings of [`RING_DEPTH`] cannot be set up (before Linux
/// 5.12 their memory counts against `RLIMIT_MEMLOCK`): glommio's default.
pub const RING_DEPTH_FALLBACK: usize = 128;

/// Default memory budget of one shard for its logs' tail caches, its Fetch answers and its
/// connections' request buffers (see `memory.rs`); its request share (a quarter) holds the
/// default largest frame.
pub const SHARD_MEMORY_BYTES_DEFAULT: usize = 512 << 20;

/// Smallest shard memory budget accepted: below it a shard could not hold one large request and
/// some cache at once.
pub const SHARD_MEMORY_BYTES_MIN: usize = 8 << 20;

/// The tail caches get one part in this many of the shard memory budget, Fetch answers another
/// (see `memory.rs`).
pub const SHARD_MEMORY_CACHE_DIVISOR: usize = 8;

/// Fetch answers get one part in this many of the shard memory budget.
pub const SHARD_MEMORY_FETCH_DIVISOR: usize = 8;

/// Request buffers get one part in this many of the shard memory budget; the other half is
/// headroom for the copies of in-flight batches the log makes (see `memory.rs`).
pub const SHARD_MEMORY_REQUEST_DIVISOR: usize = 4;

/// A Fetch answer may always read this much (or what it asked, if less), even when the shard's
/// fetch share is spent, so that no consumer waits for another's answers to be written.
pub const FETCH_GRANT_FLOOR_BYTES: usize = 1 << 20;

/// No log caches more than this, whatever its share of the budget.
pub const TAIL_CACHE_BYTES_PER_LOG_MAX: usize = spindle_log::limits::TAIL_CACHE_BYTES_MAX;

/// Longest throttle time a Produce answer carries when the shard's request memory is spent.
pub const THROTTLE_TIME_MS_MAX: i32 = 200;

const _: () = assert!(IO_MEMORY_MIN <= IO_MEMORY_MAX);
const _: () = assert!(FSYNC_TICK_MIN.as_nanos() < FSYNC_TICK_MAX.as_nanos());
const _: () = assert!(PRODUCER_ID_BLOCK > 0);
const _: () = assert!(MESH_CHANNEL_CAPACITY > 0 && HANDLE_INBOX_CAPACITY > 0);
const _: () = assert!(SHARD_MEMORY_BYTES_MIN <= SHARD_MEMORY_BYTES_DEFAULT);
// The charged shares (cache, fetch answers, requests) leave at least half the budget as headroom.
const _: () = assert!(
    SHARD_MEMORY_CACHE_DIVISOR >= 8
        && SHARD_MEMORY_FETCH_DIVISOR >= 8
        && SHARD_MEMORY_REQUEST_DIVISOR >= 4
);
const _: () = assert!(THROTTLE_TIME_MS_MAX > 0 && FETCH_GRANT_FLOOR_BYTES > 0);

/// How long a group without members keeps its committed offsets by default: 7 days, as
/// Kafka's `offsets.retention.minutes`.
pub const OFFSETS_RETENTION_DEFAULT: std::time::Duration =
    std::time::Duration::from_secs(7 * 24 * 3600);

/// How often an otherwise idle shard wakes to look for work another thread sent it, in case
/// the executor missed that thread's wake-up (see `shard::lifecycle::run`).
pub const WAKE_GUARD_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
