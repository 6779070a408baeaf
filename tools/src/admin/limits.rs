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

const _: () = assert!((SERVER_TIMEOUT_MS as u64) < CALL_TIMEOUT.as_millis() as u64);
