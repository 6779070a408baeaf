//! Every bound the gateway keeps: queues, in-flight requests, request sizes.
//!
//! A subscriber's memory is bounded by `SUBSCRIBE_QUEUE_MESSAGES` decoded responses plus the
//! one read in progress per partition, whatever the client does: once the queue is full the
//! subscription task waits and stops reading the log. The reads of one subscription together
//! ask for at most `SUBSCRIBE_READS_BYTES_MAX` (each at most `max_bytes`, at least
//! `SUBSCRIBE_READ_BYTES_MIN`, and a read returns at least one whole batch). A read stops
//! decoding once its records cost its byte budget (decompressed bytes plus
//! `DECODED_RECORD_OVERHEAD_BYTES` per record), so it holds at most that budget plus one batch
//! of `DECOMPRESSED_BATCH_BYTES_MAX`, however well the stored batches compress.

use std::time::Duration;

/// Default worker threads of the gateway's tokio runtime.
pub const RUNTIME_THREADS_DEFAULT: usize = 2;
/// Most worker threads allowed (the gateway shares the machine with the shards).
pub const RUNTIME_THREADS_MAX: usize = 64;

/// Decoded responses queued per subscription before its task waits for the client.
pub const SUBSCRIBE_QUEUE_MESSAGES: usize = 8;
/// Default long-poll time of one read.
pub const SUBSCRIBE_MAX_WAIT_DEFAULT: Duration = Duration::from_millis(500);
/// Longest long poll a client may ask for.
pub const SUBSCRIBE_MAX_WAIT_MAX: Duration = Duration::from_secs(30);
/// Default byte budget of one read of one partition.
pub const SUBSCRIBE_MAX_BYTES_DEFAULT: usize = 1 << 20;
/// Largest byte budget of one read a client may ask for.
pub const SUBSCRIBE_MAX_BYTES_MAX: usize = 16 << 20;
/// Most records in one `SubscribeResponse` (a large read is split).
pub const SUBSCRIBE_RECORDS_PER_RESPONSE_MAX: usize = 1000;
/// Most partitions one subscription may read.
pub const SUBSCRIBE_PARTITIONS_MAX: usize = 4096;
/// What the reads of one subscription may ask for together: a subscription of many partitions
/// reads each with a smaller budget (as Kafka's `fetch.max.bytes` bounds one Fetch of many
/// partitions), so its reads in flight stay near this whatever `max_bytes` it asked for.
pub const SUBSCRIBE_READS_BYTES_MAX: usize = 64 << 20;
/// The smallest budget of one partition's read, however many partitions share
/// [`SUBSCRIBE_READS_BYTES_MAX`] (a read still returns at least one whole batch).
pub const SUBSCRIBE_READ_BYTES_MIN: usize = 16 << 10;
/// What a decoded record costs beyond its key, value and headers (the decoder's record and the
/// gRPC message's, measured at about 290 bytes together): a read stops decoding once its
/// records cost its byte budget, so a budget of tiny records does not decode into a hundred
/// times its size.
pub const DECODED_RECORD_OVERHEAD_BYTES: usize = 256;

/// Produce requests of one `ProduceStream` being written at once; beyond this the server
/// stops reading the stream and HTTP/2 flow control holds the client back.
pub const PRODUCE_STREAM_IN_FLIGHT_MAX: usize = 16;
/// Most records in one produce request.
pub const PRODUCE_RECORDS_MAX: usize = 100_000;

/// Most bytes the records of one stored batch may decompress to: a batch that would expand past
/// this is not decoded, and its subscriber gets RESOURCE_EXHAUSTED naming it. The log bounds a
/// batch by its stored size only, and a few KiB of zstd can expand to gigabytes in the process
/// that also runs the shards. Four times the largest stored batch lets ordinary records (text,
/// JSON, logs, which compress by a few times) through even in batches of the largest size, and
/// bounds what one batch costs while it is decoded.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 4 * spindle_engine::MESSAGE_BYTES_MAX as usize;
/// Fewest bytes a v2 record takes: one each for its length, attributes, timestamp delta, offset
/// delta, key length, value length and header count.
pub const RECORD_BYTES_MIN: usize = 7;
/// Most records one stored batch may declare: as many as the largest uncompressed batch the log
/// accepts can hold. Each decoded record costs a few hundred bytes of memory whatever its size,
/// so a compressed batch of empty records must not decode into more of them than an
/// uncompressed batch could.
pub const RECORDS_PER_BATCH_MAX: usize =
    spindle_engine::MESSAGE_BYTES_MAX as usize / RECORD_BYTES_MIN;

/// Largest gRPC message accepted or sent (tonic's default is 4 MiB).
pub const GRPC_MESSAGE_BYTES_MAX: usize = 64 << 20;

/// Bytes of unary `Produce` calls received and handled at once, gateway-wide (see
/// `produce_memory`): four calls of the largest message, or many of ordinary size.
pub const PRODUCE_BYTES_IN_FLIGHT_MAX: usize = 4 * GRPC_MESSAGE_BYTES_MAX;
const _: () = assert!(
    PRODUCE_BYTES_IN_FLIGHT_MAX >= GRPC_MESSAGE_BYTES_MAX + 1024,
    "a call of the largest message fits in the budget"
);

/// How long a topic's partition count is trusted before asking the engine again.
pub const TOPIC_CACHE_TTL: Duration = Duration::from_secs(1);

/// How long `shutdown` waits for open calls to finish before dropping them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

const _: () = assert!(SUBSCRIBE_MAX_BYTES_DEFAULT <= SUBSCRIBE_MAX_BYTES_MAX);
const _: () = assert!(SUBSCRIBE_READ_BYTES_MIN <= SUBSCRIBE_MAX_BYTES_DEFAULT);
const _: () = assert!(SUBSCRIBE_MAX_BYTES_MAX <= SUBSCRIBE_READS_BYTES_MAX);
const _: () = assert!(
    SUBSCRIBE_READ_BYTES_MIN * SUBSCRIBE_PARTITIONS_MAX <= SUBSCRIBE_READS_BYTES_MAX,
    "a subscription of the most partitions stays within its reads' budget"
);
const _: () = assert!(SUBSCRIBE_MAX_BYTES_MAX < GRPC_MESSAGE_BYTES_MAX);
const _: () = assert!(RUNTIME_THREADS_DEFAULT <= RUNTIME_THREADS_MAX);
const _: () = assert!(SUBSCRIBE_QUEUE_MESSAGES > 0 && PRODUCE_STREAM_IN_FLIGHT_MAX > 0);
const _: () = assert!(DECOMPRESSED_BATCH_BYTES_MAX >= spindle_engine::MESSAGE_BYTES_MAX as usize);
const _: () = assert!(RECORDS_PER_BATCH_MAX <= i32::MAX as usize);
/// A `SubscribeResponse` is sent once its records hold this many bytes (a large read is split,
/// so decompressed batches never make one oversized message).
pub const SUBSCRIBE_RESPONSE_BYTES_TARGET: usize = 1 << 20;
const _: () = assert!(SUBSCRIBE_RESPONSE_BYTES_TARGET * 2 < GRPC_MESSAGE_BYTES_MAX);
