//! Named limits of the group coordinator and the relations between them.

use std::time::Duration;

/// Shortest session timeout a member may ask for (Kafka's `group.min.session.timeout.ms` is
/// 6 s; Spindle allows shorter so tests of member expiry need not wait long).
pub const SESSION_TIMEOUT_MIN: Duration = Duration::from_millis(1_000);

/// Longest session timeout a member may ask for (Kafka's `group.max.session.timeout.ms`).
pub const SESSION_TIMEOUT_MAX: Duration = Duration::from_millis(1_800_000);

/// Longest rebalance timeout honoured; longer requests are clamped (a join waits at most this).
pub const REBALANCE_TIMEOUT_MAX: Duration = Duration::from_millis(1_800_000);

/// How long the first join into an empty group waits for more members before completing, unless
/// configured otherwise (`EngineConfig::group_initial_rebalance_delay`; Kafka's
/// `group.initial.rebalance.delay.ms`, 3 s there). Consumers started together then
/// share the first generation, and its leader has the topics' metadata when it assigns.
pub const INITIAL_REBALANCE_DELAY_DEFAULT: Duration = Duration::from_millis(1_000);

/// Most members one group may hold (Kafka's `group.max.size`).
pub const MEMBERS_PER_GROUP_MAX: usize = 10_000;

/// Longest group id, topic name or member id accepted, in bytes. The offsets record format
/// stores names with a `u16` length.
pub const NAME_BYTES_MAX: usize = 1_024;

/// Most protocols one member may offer in a JoinGroup (Kafka consumers offer one to three
/// assignors). Choosing the group's protocol compares every member's list with every other's.
pub const PROTOCOLS_PER_MEMBER_MAX: usize = 64;

/// Most bytes of protocol metadata one member may send in a JoinGroup, all protocols together
/// (a consumer's subscription: its topic names and user data), and most bytes of one member's
/// assignment in a SyncGroup. The coordinator keeps both for as long as the member lives.
pub const MEMBER_METADATA_BYTES_MAX: usize = 1 << 20;

/// Longest metadata string stored with a committed offset (Kafka's `offset.metadata.max.bytes`).
pub const OFFSET_METADATA_BYTES_MAX: usize = 4_096;

/// Most offset records appended in one batch to the offsets log; larger commits are split so a
/// batch stays far below the topic's `max.message.bytes`.
pub const COMMIT_RECORDS_PER_BATCH_MAX: usize = 128;

/// How often the coordinator's timer looks for expired sessions and rebalance deadlines.
pub const TICK_INTERVAL: Duration = Duration::from_millis(100);

/// Bytes asked for per read while replaying the offsets log at start.
pub const RECOVERY_FETCH_BYTES: usize = 1 << 20;

const _: () = assert!(SESSION_TIMEOUT_MIN.as_millis() < SESSION_TIMEOUT_MAX.as_millis());
const _: () = assert!(TICK_INTERVAL.as_millis() * 5 <= SESSION_TIMEOUT_MIN.as_millis());
const _: () = assert!(TICK_INTERVAL.as_millis() < INITIAL_REBALANCE_DELAY_DEFAULT.as_millis());
const _: () = assert!(NAME_BYTES_MAX <= u16::MAX as usize);
const _: () = assert!(OFFSET_METADATA_BYTES_MAX <= i16::MAX as usize);
// A full batch of the largest records (group and topic names in the key, metadata in the value)
// must fit inside the default `max.message.bytes` of 1.5 MiB.
const _: () = assert!(
    COMMIT_RECORDS_PER_BATCH_MAX * (2 * NAME_BYTES_MAX + OFFSET_METADATA_BYTES_MAX + 64)
        < (1 << 20 | 1 << 19)
);

/// An offsets partition is cleaned once its log holds at least this many records...
pub const CLEAN_MIN_RECORDS: u64 = 10_000;

/// ...and this many times the live commits its last cleaning kept (see `cleaning`).
pub const CLEAN_FACTOR: u64 = 4;

/// How often a coordinator looks for expired committed offsets (more often when the retention
/// is shorter than four times this).
pub const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_secs(60);
