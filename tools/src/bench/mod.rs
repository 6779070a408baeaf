//! `spindle-bench`: load generators and latency reports.
//!
//! Every load-generating mode (`embedded`, `kafka`, `grpc`) follows the same shape so that their
//! figures compare (`sink` is the endpoint that measures the generator itself, see [`sink`]):
//!
//! 1. [`args`] parses the flags; the workload part ([`args::LoadArgs`]) is shared by all modes.
//! 2. [`batch`] builds the Kafka v2 record batches once, up front: the hot loop only stamps a
//!    fresh timestamp into a copy (and recomputes the CRC32C), so the generator spends its CPU
//!    on sending rather than on encoding.
//! 3. [`schedule`] decides when each batch is *meant* to be sent. Latency is always measured
//!    from that intended time, so a stalled server cannot hide its stall by slowing the load
//!    generator down (no coordinated omission). Without `--rate` the intended time is simply
//!    the moment a slot in the in-flight window frees up.
//! 4. Producers record each batch's latency into their own [`latency::Latency`] histogram and
//!    count messages and bytes in a shared [`throughput::Throughput`], which a sampler thread
//!    turns into a per-second series and a live [`progress::Progress`] line on stderr.
//! 5. [`report::Report`] merges it all and prints text, JSON (one object on stdout with
//!    `--json`, so scripts can parse it) and an SVG plot ([`plot`]).
//!
//! Bench tools are binaries: errors are `anyhow` with context, and a failed request is counted
//! in the report's `errors` rather than aborting the run.

pub mod args;
pub mod batch;
pub mod embedded;
pub mod grpc;
pub mod kafka;
pub mod latency;
pub mod limits;
pub mod plot;
pub mod producer_task;
pub mod progress;
pub mod report;
pub mod schedule;
pub mod sink;
pub mod throughput;

/// Runs the parsed command line and returns the process exit status.
///
/// # Errors
/// Setup failures (engine start, broker unreachable, bad flag combinations, output files).
pub fn run(cli: args::Cli) -> anyhow::Result<()> {
    match cli.mode {
        args::Mode::Embedded(a) => embedded::run(&a),
        args::Mode::Kafka(a) => kafka::run(&a),
        args::Mode::Grpc(a) => grpc::run(&a),
        args::Mode::Sink(a) => sink::run(&a),
    }
}
