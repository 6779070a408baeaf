//! Command-line flags of `spindle-bench`.
//!
//! The workload flags ([`LoadArgs`]) are shared by every mode and mean the same thing in each,
//! so an embedded run and a Kafka-protocol run with the same flags do the same work and their
//! JSON reports compare key by key.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, ensure};
use clap::{Args, Parser, Subcommand, ValueEnum};
use spindle_engine::FsyncPolicy;

use crate::bench::limits;
use crate::sasl::SaslArgs;
use crate::transport::TlsArgs;

/// Spindle's load generator: drives the engine in-process or any Kafka-compatible broker, and
/// reports throughput and latency percentiles.
#[derive(Debug, Parser)]
#[command(name = "spindle-bench", version)]
pub struct Cli {
    /// What to drive.
    #[command(subcommand)]
    pub mode: Mode,
}

/// The system under test.
#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Produce into an engine started in this process (no network).
    Embedded(EmbeddedArgs),
    /// Produce (and optionally consume) over the Kafka wire protocol against any broker.
    Kafka(KafkaArgs),
    /// Produce through the gRPC gateway (`spindle.v1.Producer/Produce`).
    Grpc(GrpcArgs),
    /// Serve a Kafka-protocol endpoint that acknowledges every Produce at once and keeps
    /// nothing: `kafka` pointed at it measures the generator's and the network's own latency.
    Sink(SinkArgs),
}

/// Flags of `spindle-bench sink`.
#[derive(Debug, Args)]
pub struct SinkArgs {
    /// Address to listen on (host:port; port 0 picks a free one, printed on the ready line).
    #[arg(long, default_value = "127.0.0.1:19093")]
    pub listen: String,
    /// Partitions every topic has in the sink's metadata.
    #[arg(long, default_value_t = 1)]
    pub partitions: u32,
}

/// Flags of `spindle-bench embedded`.
#[derive(Debug, Args)]
pub struct EmbeddedArgs {
    /// Data directory of the engine (created if missing; use a fresh one per run).
    #[arg(long, default_value = "./spindle-bench-data")]
    pub dir: PathBuf,
    /// Engine shards; 0 is one per CPU.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// When the log syncs: `never`, `batch` (before every acknowledgement) or `interval:MS`.
    #[arg(long, default_value = "never")]
    pub fsync: FsyncArg,
    /// Let idle shards spin this many µs before parking (cheaper wake-ups from the producer
    /// thread, at the cost of CPU).
    #[arg(long)]
    pub spin_before_park_us: Option<u64>,
    /// Run the producers as tasks on the shard that owns their first partition (as the Kafka
    /// server's connections run), instead of on a thread of their own: no wake-up of another
    /// thread between an acknowledgement and the next produce.
    #[arg(long)]
    pub producers_on_shards: bool,
    /// A topic config `KEY=VALUE` for the bench topic when it is created (repeatable), e.g.
    /// `retention.bytes=2147483648`; `--fsync` wins over `fsync.policy`.
    #[arg(long = "topic-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub topic_configs: Vec<(String, String)>,
    /// The workload.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Flags of `spindle-bench kafka`.
#[derive(Debug, Args)]
pub struct KafkaArgs {
    /// A broker to bootstrap from (host:port).
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Producer acknowledgement mode: 0, 1 or -1 (all).
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub acks: i16,
    /// Compression codec of the produced batches.
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    pub compression: CompressionArg,
    /// With `--rate`, close a batch after this long even if not full (as a Kafka producer's
    /// `linger.ms`); batches then hold about `rate / producers * linger` records.
    #[arg(long, default_value_t = 0)]
    pub linger_ms: u64,
    /// Consumers reading the topic while the producers write (0: produce only). With
    /// `--producers 0` they read what is already there.
    #[arg(long, default_value_t = 0)]
    pub consumers: usize,
    /// Where consumers start reading.
    #[arg(long, value_enum, default_value_t = StartArg::Tail)]
    pub from: StartArg,
    /// What consumers read of transactions: everything (Kafka's Java default) or only what is
    /// committed, stopping at open transactions (librdkafka's default).
    #[arg(long, value_enum, default_value_t = IsolationArg::ReadUncommitted)]
    pub isolation: IsolationArg,
    /// A topic config `KEY=VALUE` sent with CreateTopics when the topic is created (repeatable),
    /// e.g. `fsync.policy=batch` on Spindle or `min.insync.replicas=2` on Kafka.
    #[arg(long = "topic-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub topic_configs: Vec<(String, String)>,
    /// Broker request timeout for produce (ms).
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: i32,
    /// Partitions each Produce request carries, a batch for each, from those its producer
    /// writes (the Java client, kafka-python and kafkajs put every partition of a broker with a
    /// batch ready into one request; librdkafka sends a request per partition).
    #[arg(long, default_value_t = 1)]
    pub partitions_per_request: usize,
    /// TLS, for a broker whose listener serves it.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// SASL login, for a broker whose listener asks for it.
    #[command(flatten)]
    pub sasl: SaslArgs,
    /// The workload.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Flags of `spindle-bench grpc`.
#[derive(Debug, Args)]
pub struct GrpcArgs {
    /// The gateway's address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub endpoint: String,
    /// Bearer token sent as `authorization: Bearer TOKEN`, for gateways with auth.
    #[arg(long, env = "SPINDLE_BENCH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A topic config `KEY=VALUE` sent with CreateTopic when the topic is created (repeatable).
    #[arg(long = "topic-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub topic_configs: Vec<(String, String)>,
    /// Send on one `ProduceStream` per producer instead of unary `Produce` calls.
    #[arg(long)]
    pub stream: bool,
    /// The workload.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// The workload, shared by every mode.
#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// Topic to produce to (created with `--partitions` if missing).
    #[arg(long, default_value = "spindle-bench")]
    pub topic: String,
    /// Partitions of the topic; producers spread their batches over them.
    #[arg(long, default_value_t = 1)]
    pub partitions: u32,
    /// Concurrent producers.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Requests each producer keeps outstanding at most.
    #[arg(long, default_value_t = 4)]
    pub in_flight: usize,
    /// Size of each record's value in bytes.
    #[arg(long, default_value_t = 1024)]
    pub message_bytes: usize,
    /// Target size of each record batch (records per batch = this / record size, at least 1).
    #[arg(long, default_value_t = 64 * 1024)]
    pub batch_bytes: usize,
    /// Run for this long (the default unless `--count` is given).
    #[arg(long, conflicts_with = "count")]
    pub duration_secs: Option<u64>,
    /// Produce this many messages in all, then stop.
    #[arg(long)]
    pub count: Option<u64>,
    /// Offer the same load for this long first and leave it out of every figure (a fresh
    /// topic's first segment, connections and caches warming up).
    #[arg(long, default_value_t = 0)]
    pub warmup_secs: u64,
    /// Target messages per second over all producers (open loop); the maximum when absent.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Print one JSON object on stdout instead of the text report (progress is off).
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
    /// Draw the latency percentile curve and the throughput series into this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

impl LoadArgs {
    /// The report's `config`: the workload flags every mode shares, with the producers the run
    /// actually started and the records each batch holds, then the mode's own keys (`mode`, a
    /// JSON object) on top.
    pub fn report_config(
        &self,
        producers: usize,
        records_per_batch: usize,
        mode: serde_json::Value,
    ) -> serde_json::Value {
        let mut config = serde_json::json!({
            "topic": self.topic,
            "partitions": self.partitions,
            "producers": producers,
            "in_flight": self.in_flight,
            "message_bytes": self.message_bytes,
            "batch_bytes": self.batch_bytes,
            "records_per_batch": records_per_batch,
            "count": self.count,
            "duration_secs": self.duration_secs,
            "warmup_secs": self.warmup_secs,
            "rate": self.rate,
        });
        if let (serde_json::Value::Object(shared), serde_json::Value::Object(own)) =
            (&mut config, mode)
        {
            shared.extend(own);
        }
        config
    }
}

/// Default run length when neither `--count` nor `--duration-secs` is given.
pub const DEFAULT_DURATION_SECS: u64 = 10;

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this many messages in all.
    Count(u64),
    /// After this long.
    Duration(Duration),
}

impl LoadArgs {
    /// When this run stops.
    pub fn stop(&self) -> Stop {
        match (self.count, self.duration_secs) {
            (Some(n), _) => Stop::Count(n),
            (None, secs) => {
                Stop::Duration(Duration::from_secs(secs.unwrap_or(DEFAULT_DURATION_SECS)))
            }
        }
    }

    /// How long the unmeasured warm-up lasts.
    pub fn warmup(&self) -> Duration {
        Duration::from_secs(self.warmup_secs)
    }

    /// Checks the flags against each other and against [`limits`].
    ///
    /// # Errors
    /// A message naming the flag that is out of range.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            (1..=limits::MESSAGE_BYTES_MAX).contains(&self.message_bytes),
            "--message-bytes must be 1..={}",
            limits::MESSAGE_BYTES_MAX
        );
        ensure!(
            (1..=limits::BATCH_BYTES_MAX).contains(&self.batch_bytes),
            "--batch-bytes must be 1..={}",
            limits::BATCH_BYTES_MAX
        );
        ensure!(
            self.producers <= limits::PRODUCERS_MAX,
            "--producers must be at most {}",
            limits::PRODUCERS_MAX
        );
        ensure!(
            (1..=limits::IN_FLIGHT_MAX).contains(&self.in_flight),
            "--in-flight must be 1..={}",
            limits::IN_FLIGHT_MAX
        );
        ensure!(
            (1..=limits::PARTITIONS_MAX).contains(&self.partitions),
            "--partitions must be 1..={}",
            limits::PARTITIONS_MAX
        );
        ensure!(!self.topic.is_empty(), "--topic must not be empty");
        if let Some(secs) = self.duration_secs {
            ensure!(
                (1..=limits::DURATION_SECS_MAX).contains(&secs),
                "--duration-secs must be 1..={}",
                limits::DURATION_SECS_MAX
            );
        }
        ensure!(
            self.warmup_secs <= limits::DURATION_SECS_MAX,
            "--warmup-secs must be 0..={}",
            limits::DURATION_SECS_MAX
        );
        ensure!(self.count != Some(0), "--count must be at least 1");
        ensure!(self.rate != Some(0), "--rate must be at least 1");
        Ok(())
    }
}

fn parse_key_value(s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => bail!("expected KEY=VALUE, got {s:?}"),
    }
}

/// `--fsync`: parsed into the log's [`FsyncPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsyncArg(pub FsyncPolicy);

impl FromStr for FsyncArg {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let policy = match s {
            "never" => FsyncPolicy::Never,
            "batch" => FsyncPolicy::Batch,
            _ => match s.strip_prefix("interval:") {
                Some(ms) => match ms.parse::<u64>() {
                    Ok(ms) if ms > 0 => FsyncPolicy::IntervalMs(ms),
                    _ => bail!("interval must be a positive number of ms, got {ms:?}"),
                },
                None => bail!("expected never, batch or interval:MS, got {s:?}"),
            },
        };
        Ok(Self(policy))
    }
}

impl std::fmt::Display for FsyncArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            FsyncPolicy::Never => f.write_str("never"),
            FsyncPolicy::Batch => f.write_str("batch"),
            FsyncPolicy::IntervalMs(ms) => write!(f, "interval:{ms}"),
        }
    }
}

/// `--compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// Uncompressed.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4 frame.
    Lz4,
    /// Zstandard.
    Zstd,
}

/// `--isolation`: Kafka's `isolation.level` of the consumers' fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IsolationArg {
    /// Every record below the high watermark.
    ReadUncommitted,
    /// Only records below the last stable offset; aborted transactions are listed.
    ReadCommitted,
}

impl IsolationArg {
    /// The Fetch request's `isolation_level`.
    pub fn wire(self) -> i8 {
        match self {
            IsolationArg::ReadUncommitted => 0,
            IsolationArg::ReadCommitted => 1,
        }
    }
}

/// `--from`: where consumers start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartArg {
    /// The log start offset: read everything.
    Start,
    /// The high watermark at start-up: read only what is produced during the run.
    Tail,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Cli {
        Cli::try_parse_from(line.split_whitespace()).expect("parses")
    }

    #[test]
    fn report_config_holds_the_shared_flags_and_the_mode_keys() {
        let cli = parse("spindle-bench embedded --dir /tmp/x --count 1000 --producers 3 --rate 50");
        let Mode::Embedded(a) = cli.mode else {
            panic!("not embedded")
        };
        let config = a
            .load
            .report_config(3, 64, serde_json::json!({ "shards": 2 }));
        assert_eq!(config["producers"], 3);
        assert_eq!(config["records_per_batch"], 64);
        assert_eq!(config["count"], 1000);
        assert_eq!(config["rate"], 50);
        assert_eq!(config["topic"], "spindle-bench");
        assert_eq!(config["shards"], 2);
        assert!(config["duration_secs"].is_null(), "{config}");
    }

    #[test]
    fn embedded_flags_parse_with_defaults() {
        let cli = parse("spindle-bench embedded --dir /tmp/x --count 1000 --json --fsync batch");
        let Mode::Embedded(a) = cli.mode else {
            panic!("not embedded")
        };
        assert_eq!(a.dir, PathBuf::from("/tmp/x"));
        assert_eq!(a.fsync, FsyncArg(FsyncPolicy::Batch));
        assert_eq!(a.shards, 1);
        assert_eq!(a.load.stop(), Stop::Count(1000));
        assert_eq!(a.load.message_bytes, 1024);
        assert_eq!(a.load.batch_bytes, 65536);
        assert!(a.load.json);
        a.load.validate().expect("valid");
    }

    #[test]
    fn grpc_flags_parse() {
        let cli = parse("spindle-bench grpc --endpoint http://h:1 --token t --count 5 --json");
        let Mode::Grpc(a) = cli.mode else {
            panic!("not grpc")
        };
        assert_eq!(a.endpoint, "http://h:1");
        assert_eq!(a.token.as_deref(), Some("t"));
        assert_eq!(a.load.stop(), Stop::Count(5));
    }

    #[test]
    fn fsync_policies_parse_and_print_back() {
        for s in ["never", "batch", "interval:5"] {
            assert_eq!(s.parse::<FsyncArg>().expect("parses").to_string(), s);
        }
        assert!("interval:0".parse::<FsyncArg>().is_err());
        assert!("interval:x".parse::<FsyncArg>().is_err());
        assert!("always".parse::<FsyncArg>().is_err());
    }

    #[test]
    fn kafka_flags_parse_negative_acks_and_codecs() {
        let cli = parse(
            "spindle-bench kafka --bootstrap 127.0.0.1:1 --acks -1 --compression zstd \
             --consumers 2 --from start --rate 5000 --duration-secs 3 --producers 4 \
             --isolation read-committed --topic-config fsync.policy=batch --topic-config a=b=c",
        );
        let Mode::Kafka(a) = cli.mode else {
            panic!("not kafka")
        };
        assert_eq!(a.acks, -1);
        assert_eq!(a.compression, CompressionArg::Zstd);
        assert_eq!(a.from, StartArg::Start);
        assert_eq!(a.consumers, 2);
        assert_eq!(a.isolation.wire(), 1);
        assert_eq!(
            a.topic_configs,
            vec![
                ("fsync.policy".to_owned(), "batch".to_owned()),
                ("a".to_owned(), "b=c".to_owned())
            ]
        );
        assert_eq!(a.load.rate, Some(5000));
        assert_eq!(a.load.stop(), Stop::Duration(Duration::from_secs(3)));
        a.load.validate().expect("valid");
    }

    #[test]
    fn count_and_duration_conflict_and_limits_are_checked() {
        assert!(Cli::try_parse_from(
            "spindle-bench embedded --count 1 --duration-secs 1".split_whitespace()
        )
        .is_err());
        let Mode::Embedded(EmbeddedArgs { mut load, .. }) = parse("spindle-bench embedded").mode
        else {
            panic!("not embedded")
        };
        assert_eq!(load.stop(), Stop::Duration(Duration::from_secs(10)));
        load.in_flight = 0;
        assert!(load.validate().is_err());
        load.in_flight = 1;
        load.message_bytes = limits::MESSAGE_BYTES_MAX + 1;
        assert!(load.validate().is_err());
        load.message_bytes = 1;
        load.warmup_secs = limits::DURATION_SECS_MAX + 1;
        let err = load.validate().expect_err("too long a warm-up").to_string();
        assert!(err.contains("--warmup-secs"), "{err}");
    }
}
