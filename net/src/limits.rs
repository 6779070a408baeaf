//! Named limits of the Kafka server. Every buffer and queue a client can grow has its maximum
//! here (or in [`crate::kafka::KafkaConfig`] where an operator may change it).

/// Default largest request frame accepted, like Kafka's `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

/// Largest frame size an operator may configure: the length prefix is an `i32`.
pub const MAX_FRAME_BYTES_CEILING: usize = i32::MAX as usize;

/// The smallest well-formed request: api key, api version and correlation id.
pub const MIN_FRAME_BYTES: usize = 8;

/// Requests read from one connection and not yet answered. When the client pipelines more, the
/// connection stops reading until the oldest answer is written (backpressure, bounded memory).
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 32;

/// Default number of Kafka connections one shard serves at once; more are accepted and closed
/// with a warning. High enough that open files, not this, bound a node by default.
pub const DEFAULT_MAX_CONNECTIONS_PER_SHARD: usize = 100_000;

/// Size of the buffered reader in front of each connection's socket.
pub const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Size of the buffered writer behind each connection's socket; answers queued together are
/// written with one system call.
pub const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Default cap on the bytes one Fetch answer carries, whatever the client asks, like Kafka's
/// broker setting `fetch.max.bytes` (55 MiB). The first batch of an answer is returned whole
/// even if it is larger, so a consumer never stalls on it.
pub const DEFAULT_FETCH_MAX_BYTES: usize = 55 * 1024 * 1024;

/// A Fetch reads its partitions in request order, this many at once (all at once when their
/// per-partition limits together fit in what is left), each allowed what the answer's budget
/// had left when its group started; once the budget is spent the rest are asked only for their
/// watermarks. So one answer reads at most this many times its budget, whatever the number of
/// partitions it names.
pub const FETCH_READ_GROUP: usize = 8;

/// Smallest `fetch_max_bytes` an operator may configure (Kafka's lower bound too).
pub const MIN_FETCH_MAX_BYTES: usize = 1024;

/// The longest a Fetch may wait for `min_bytes`, whatever the client asks (Kafka clients ask
/// 500 ms by default).
pub const MAX_FETCH_WAIT_MS: u64 = 30_000;

/// Topics one CreateTopics, DeleteTopics, CreatePartitions or config request may name.
pub const MAX_ADMIN_RESOURCES: usize = 10_000;

const _: () = assert!(MIN_FRAME_BYTES < DEFAULT_MAX_FRAME_BYTES);
const _: () = assert!(MIN_FETCH_MAX_BYTES <= DEFAULT_FETCH_MAX_BYTES);
const _: () = assert!(DEFAULT_FETCH_MAX_BYTES <= i32::MAX as usize);
const _: () = assert!(DEFAULT_MAX_FRAME_BYTES <= MAX_FRAME_BYTES_CEILING);
const _: () = assert!(MAX_IN_FLIGHT_PER_CONNECTION > 0);
