//! Named limits of the load generator. Flags are checked against them before a run starts, so
//! a typo cannot ask for a terabyte of pre-built batches.

/// Largest record value a run may ask for (`--message-bytes`).
pub const MESSAGE_BYTES_MAX: usize = 1 << 20;

/// Largest batch a run may ask for (`--batch-bytes`); Kafka's default `max.message.bytes` is
/// about 1 MiB, Spindle's 1.5 MiB.
pub const BATCH_BYTES_MAX: usize = 1 << 20 | 1 << 19;

/// Most producers (tasks or threads) one run starts.
pub const PRODUCERS_MAX: usize = 1024;

/// Most consumers one run starts.
pub const CONSUMERS_MAX: usize = 256;

/// Most requests one producer may have outstanding at once (`--in-flight`).
pub const IN_FLIGHT_MAX: usize = 1024;

/// Most partitions a bench topic may have.
pub const PARTITIONS_MAX: u32 = 10_000;

/// Distinct pre-built batches each producer cycles through (different contents defeat any
/// compression or deduplication that identical batches would flatter).
pub const TEMPLATES_PER_PRODUCER: usize = 4;

/// Memory budget for all pre-built batches together.
pub const TEMPLATE_BYTES_MAX: usize = 256 << 20;

/// Highest latency the histograms track (µs); slower requests saturate at this value.
pub const LATENCY_US_MAX: u64 = 600_000_000;

/// Significant decimal digits the histograms keep (3: 0.1 % relative error).
pub const LATENCY_SIGFIG: u8 = 3;

/// Significant digits of the per-second latency histograms (2: 1 % relative error), coarser than
/// the run's own: about 25 KiB a second, one series for the whole run.
pub const LATENCY_SERIES_SIGFIG: u8 = 2;

/// Seconds the per-second latency series covers (the first hour, about 90 MiB at most); the
/// requests of later seconds count in the run's figures only.
pub const LATENCY_SERIES_SECS_MAX: usize = 3600;

/// Largest Kafka response frame accepted from a broker.
pub const FRAME_BYTES_MAX: usize = 256 << 20;

/// Longest run (`--duration-secs`).
pub const DURATION_SECS_MAX: u64 = 24 * 3600;

/// How often the sampler reads the counters for the per-second series and the progress line.
pub const SAMPLE_INTERVAL_MS: u64 = 1000;

/// How long producers wait for outstanding requests after the run's end before giving up.
pub const DRAIN_TIMEOUT_SECS: u64 = 30;

const _: () = assert!(MESSAGE_BYTES_MAX <= BATCH_BYTES_MAX);
const _: () = assert!(BATCH_BYTES_MAX * TEMPLATES_PER_PRODUCER <= TEMPLATE_BYTES_MAX);
const _: () = assert!(BATCH_BYTES_MAX < FRAME_BYTES_MAX);

/// How long connecting to a broker (and its TLS handshake) may take.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
