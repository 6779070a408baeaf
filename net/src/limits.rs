//! Named limits of the Kafka server. Every buffer and queue a client can grow has its maximum
//! here (or in [`crate::kafka::KafkaConfig`] where an operator may change it).

/// Default largest request frame accepted, like Kafka's `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

/// Largest frame size an operator may configure: the length prefix is an `i32`.
pub const MAX_FRAME_BYTES_CEILING: usize = i32::MAX as usize;

/// What a request other than Produce is charged to the shard's request memory per byte of its
/// frame: the memory its decoded form and its answer may take. Produce requests keep their
/// batches as slices of the frame, so their decoded form is about their size; the others decode
/// into one structure per element, each several times the bytes it came from (a ListOffsets
/// request of 34 MiB naming 3 million partitions took 424 MiB at its peak, 12 times its size; a
/// Fetch of 7.6 MiB naming 500,000 partitions 319 MiB, 40 times). Charged by this, such requests
/// together take at most a small multiple of the request share, and one larger than the share
/// divided by this is refused (8 MiB with the default shard memory: Metadata, ListOffsets,
/// OffsetCommit or Fetch for a hundred thousand partitions fit).
pub const DECODED_BYTES_PER_REQUEST_BYTE: usize = 16;

/// The smallest well-formed request: api key, api version and correlation id.
pub const MIN_FRAME_BYTES: usize = 8;

/// Default time the body of a frame may take to arrive once its length is read and its memory
/// reserved, beyond the time its bytes take at [`FRAME_BODY_MIN_BYTES_PER_SEC`]. A client that
/// announces a frame and stalls holds that memory, and the shard's request memory is handed out
/// in FIFO order, so every later request of the shard may wait behind it: this bounds that wait.
/// Generous, like Kafka clients' 30 s request timeout, so a real client on a slow link is never
/// cut off.
pub const DEFAULT_FRAME_BODY_TIMEOUT_MS: u64 = 30_000;

/// Shortest frame body timeout an operator may configure: a frame's body follows its length in
/// the same write of any real client, so a tenth of a second is ample on any network.
pub const MIN_FRAME_BODY_TIMEOUT_MS: u64 = 100;

/// Longest frame body timeout an operator may configure (an hour): beyond that a stalled client
/// holds its memory as good as forever.
pub const MAX_FRAME_BODY_TIMEOUT_MS: u64 = 3_600_000;

/// Default time a connection may go without sending a request before it is closed, like Kafka's
/// `connections.max.idle.ms` (10 minutes). Clients reconnect when they need to; a peer that
/// vanished without closing (a crashed host, a lost network) stops holding its socket and
/// buffers.
pub const DEFAULT_CONNECTIONS_MAX_IDLE_MS: u64 = 600_000;

/// Shortest idle time an operator may configure: Kafka clients send a request at least every
/// few seconds while they work (heartbeats every 3 s by default).
pub const MIN_CONNECTIONS_MAX_IDLE_MS: u64 = 1_000;

/// Longest idle time an operator may configure (a week).
pub const MAX_CONNECTIONS_MAX_IDLE_MS: u64 = 604_800_000;

/// The slowest rate a frame's body is allowed to arrive at (1 MiB/s, a tenth of a 100 Mbit/s
/// link) on top of the frame body timeout: a 100 MiB frame has 100 s more, a small one none to
/// speak of.
pub const FRAME_BODY_MIN_BYTES_PER_SEC: u64 = 1024 * 1024;

/// Bytes a request may leave in its frame after its body and still be served; more close the
/// connection. Produce batches and group metadata are slices of the frame, so a small body padded
/// with many bytes would keep the whole frame alive after its memory is given back (Kafka's
/// broker ignores such bytes, but it copies what it keeps). A few are let through because
/// librdkafka (2.16 and before, its issue #5049) writes the null topic array of a flexible
/// Metadata request as a 1-byte length followed by 3 zero bytes; 16 leave room for a few such
/// arrays and pin nothing worth speaking of.
pub const MAX_TRAILING_BYTES: usize = 16;

/// Requests read from one connection and not yet answered. When the client pipelines more, the
/// connection stops reading until the oldest answer is written (backpressure, bounded memory).
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 32;

/// Default number of Kafka connections one shard serves at once; more are accepted and closed
/// with a warning. High enough that open files, not this, bound a node by default.
pub const DEFAULT_MAX_CONNECTIONS_PER_SHARD: usize = 100_000;

/// Size of the read buffer in front of each connection's socket. It gathers small requests
/// and length prefixes into few reads; the part of a larger body it does not hold is read
/// straight into the body. Small, so that the bulk of a large Produce bypasses it: with 64 KiB,
/// a producer keeping many requests in flight had nearly every body copied out of the buffer,
/// and the server spent about 50 % more CPU per GB (docs/BENCHMARKS.md). A connection waiting
/// for its next request gives it back (see [`IDLE_READ_BYTES`]).
pub const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Bytes a connection waiting for its next request reads into, held inline instead of the read
/// buffer: room for the length prefix and the start of any request, and for the whole of most
/// that are not Produce (Metadata, Fetch and Heartbeat requests of real clients are a few
/// hundred bytes). A read that fills it takes the read buffer back.
pub const IDLE_READ_BYTES: usize = 1024;

/// Size of the buffered writer behind each connection's socket; answers queued together are
/// written with one system call. Allocated for a burst of answers and freed once they are
/// flushed and the next is not ready.
pub const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// A Fetch answer's records of at least this many bytes are written to the socket from the
/// buffer that holds them, not copied into the answer (see `kafka::answer`): smaller ones are
/// copied into the write buffer anyway.
pub const STORED_PIECE_MIN_BYTES: usize = WRITE_BUFFER_BYTES;

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

/// The most partitions one fetch session (KIP-227) holds, about 200 bytes each; a request that
/// would make it hold more is served without a session (full fetches, as Kafka clients fall back
/// to when a broker declines one). Each connection holds at most one session.
pub const FETCH_SESSION_PARTITIONS_MAX: usize = 5_000;

/// Smallest `fetch_max_bytes` an operator may configure (Kafka's lower bound too).
pub const MIN_FETCH_MAX_BYTES: usize = 1024;

/// The longest a Fetch may wait for `min_bytes`, whatever the client asks (Kafka clients ask
/// 500 ms by default).
pub const MAX_FETCH_WAIT_MS: u64 = 30_000;

/// Partition lookups one ListOffsets request runs at once, in request order. A lookup by
/// timestamp reads a window of a segment file (256 KiB), and a 100 MiB request can name millions
/// of partitions, so one request holds at most this many windows (4 MiB) while the engine still
/// overlaps the lookups' disk reads and cross-shard trips.
pub const LIST_OFFSETS_LOOKUPS_AT_ONCE: usize = 16;

/// Topics one CreateTopics, DeleteTopics, CreatePartitions or config request may name.
pub const MAX_ADMIN_RESOURCES: usize = 10_000;

const _: () = assert!(MIN_FRAME_BYTES < DEFAULT_MAX_FRAME_BYTES);
const _: () = assert!(MIN_FETCH_MAX_BYTES <= DEFAULT_FETCH_MAX_BYTES);
const _: () = assert!(DEFAULT_FETCH_MAX_BYTES <= i32::MAX as usize);
const _: () = assert!(DEFAULT_MAX_FRAME_BYTES <= MAX_FRAME_BYTES_CEILING);
const _: () = assert!(MAX_IN_FLIGHT_PER_CONNECTION > 0);
const _: () = assert!(MIN_FRAME_BODY_TIMEOUT_MS <= DEFAULT_FRAME_BODY_TIMEOUT_MS);
const _: () = assert!(MIN_CONNECTIONS_MAX_IDLE_MS <= DEFAULT_CONNECTIONS_MAX_IDLE_MS);
const _: () = assert!(DEFAULT_CONNECTIONS_MAX_IDLE_MS <= MAX_CONNECTIONS_MAX_IDLE_MS);
const _: () = assert!(DEFAULT_FRAME_BODY_TIMEOUT_MS <= MAX_FRAME_BODY_TIMEOUT_MS);
const _: () = assert!(FRAME_BODY_MIN_BYTES_PER_SEC > 0);
const _: () = assert!(LIST_OFFSETS_LOOKUPS_AT_ONCE > 0);

/// How long a client has to finish its TLS handshake once connected (`[kafka.tls]`); a client
/// that takes longer, such as one that speaks plaintext and waits for an answer, is closed.
pub const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Partitions one DescribeTopicPartitions answer holds at most, whatever the request asks
/// (Kafka's `max.request.partition.size.limit` default); a client pages through the rest.
pub const DESCRIBE_TOPIC_PARTITIONS_MAX: usize = 2000;
