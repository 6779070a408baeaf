//! Named limits of the admin client: how long it waits and how much it accepts from a server.

use std::time::Duration;

/// Longest a TCP connect to one address may take before the next address (or failure).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest one request may wait for its response. Topic creation on a busy node can take a
/// while (segments are preallocated), so this is well above a round trip.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Time the server may spend on CreateTopics, DeleteTopics and CreatePartitions; below
/// [`CALL_TIMEOUT`] so the server answers (with a timeout error) before the client gives up.
pub const SERVER_TIMEOUT_MS: i32 = 25_000;

/// Largest response frame accepted. Admin answers are small; a larger size prefix means the
/// peer is not speaking Kafka (an HTTP server, a TLS listener) and must not make us allocate.
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// How many times a group request is retried while the coordinator is loading or moving.
pub const COORDINATOR_RETRIES_MAX: u32 = 10;

/// Pause between two such retries.
pub const COORDINATOR_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// `topic produce` sends a partition's batch once it holds this many records...
pub const PRODUCE_BATCH_RECORDS: usize = 1000;

/// ...or this many bytes of keys and values.
pub const PRODUCE_BATCH_BYTES: usize = 1 << 20;

/// Time the server may take to acknowledge a `topic produce` batch (`acks=all`).
pub const PRODUCE_TIMEOUT_MS: i32 = 25_000;

/// Bytes `topic consume` asks for in one read of a partition.
pub const CONSUME_FETCH_BYTES: i32 = 1 << 20;

/// How long a read of `topic consume --follow` waits at the end for records to arrive.
pub const FOLLOW_WAIT_MS: i32 = 500;

const _: () = assert!((SERVER_TIMEOUT_MS as u64) < CALL_TIMEOUT.as_millis() as u64);
const _: () = assert!((PRODUCE_TIMEOUT_MS as u64) < CALL_TIMEOUT.as_millis() as u64);
