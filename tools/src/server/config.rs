//! `spindle serve` configuration: a TOML file, `SPINDLE_*` environment variables and flags, in
//! rising precedence, merged into one validated [`ServeConfig`].
//!
//! Every option has exactly one name per layer, derived from one another: the TOML key
//! `topic_defaults.retention_ms`, the flag `--retention-ms`, the variable `SPINDLE_RETENTION_MS`
//! (`docs/OPERATIONS.md` lists them all). Flags and variables are one clap layer (clap's `env`
//! gives a flag precedence over its variable); the file is read first and each set flag or
//! variable replaces the file's value. Validation names the offending key in the form the
//! operator wrote it, with the allowed values.

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;
use spindle_engine::EngineConfig;
use spindle_gateway::GatewayConfig;
use spindle_net::kafka::KafkaConfig;

/// Default Kafka listen address.
pub const DEFAULT_KAFKA_LISTEN: &str = "127.0.0.1:9092";
/// Default admin HTTP listen address (`/metrics`, `/health`, `/ready`).
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9644";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Log levels accepted by `log_level`.
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// A configuration error, naming the key (as written in the layer it came from) and what is
/// allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key, flag or variable at fault.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// `spindle serve` flags; each also reads its `SPINDLE_*` variable.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file (the lowest-precedence layer).
    #[arg(long, env = "SPINDLE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of partitions and metadata [default: ./data].
    #[arg(long, env = "SPINDLE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Kafka listen address, IP:PORT (port 0 picks a free port) [default: 127.0.0.1:9092].
    #[arg(long, env = "SPINDLE_KAFKA_LISTEN", value_name = "ADDR")]
    pub kafka_listen: Option<String>,
    /// Address advertised to Kafka clients, HOST:PORT [default: the listen address].
    #[arg(long, env = "SPINDLE_KAFKA_ADVERTISE", value_name = "HOST:PORT")]
    pub kafka_advertise: Option<String>,
    /// Largest Kafka request frame in bytes [default: 104857600].
    #[arg(long, env = "SPINDLE_MAX_FRAME_BYTES", value_name = "BYTES")]
    pub max_frame_bytes: Option<String>,
    /// Time a Kafka request's body may take to arrive, plus 1 s per MiB [default: 30000].
    #[arg(long, env = "SPINDLE_FRAME_BODY_TIMEOUT_MS", value_name = "MS")]
    pub frame_body_timeout_ms: Option<String>,
    /// Time a Kafka connection may go without a request before it is closed [default: 600000].
    #[arg(long, env = "SPINDLE_CONNECTIONS_MAX_IDLE_MS", value_name = "MS")]
    pub connections_max_idle_ms: Option<String>,
    /// Most bytes one Kafka Fetch answer carries, whatever the client asks [default: 57671680].
    #[arg(long, env = "SPINDLE_FETCH_MAX_BYTES", value_name = "BYTES")]
    pub fetch_max_bytes: Option<String>,
    /// Kafka connections each shard serves at once [default: 100000].
    #[arg(long, env = "SPINDLE_MAX_CONNECTIONS_PER_SHARD", value_name = "N")]
    pub max_connections_per_shard: Option<String>,
    /// Create unknown topics on Metadata requests: true or false [default: true].
    #[arg(long, env = "SPINDLE_AUTO_CREATE_TOPICS", value_name = "BOOL")]
    pub auto_create_topics: Option<String>,
    /// SASL mechanisms Kafka clients must authenticate with, comma-separated: PLAIN,
    /// SCRAM-SHA-256, SCRAM-SHA-512, or empty for none [default: none]. User names and passwords are `[[grpc.auth.tokens]]` principals
    /// and tokens.
    #[arg(long, env = "SPINDLE_KAFKA_SASL_MECHANISMS", value_name = "LIST")]
    pub kafka_sasl_mechanisms: Option<String>,
    /// gRPC listen address, IP:PORT [default: 127.0.0.1:50051].
    #[arg(long, env = "SPINDLE_GRPC_LISTEN", value_name = "ADDR")]
    pub grpc_listen: Option<String>,
    /// Run the gRPC gateway: true or false [default: true].
    #[arg(long, env = "SPINDLE_GRPC_ENABLED", value_name = "BOOL")]
    pub grpc_enabled: Option<String>,
    /// Admin HTTP listen address (/metrics, /health, /ready), IP:PORT [default: 127.0.0.1:9644].
    #[arg(long, env = "SPINDLE_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Memory budget of each shard for tail caches and request buffers [default: 536870912].
    #[arg(long, env = "SPINDLE_SHARD_MEMORY_BYTES", value_name = "BYTES")]
    pub shard_memory_bytes: Option<String>,
    /// Number of shards; 0 is one per CPU [default: 0].
    #[arg(long, env = "SPINDLE_SHARDS", value_name = "N")]
    pub shards: Option<String>,
    /// Shard placement: pinned (one per CPU) or unbound [default: pinned].
    #[arg(long, env = "SPINDLE_PLACEMENT", value_name = "MODE")]
    pub placement: Option<String>,
    /// CPUs to pin shards to, in shard order, e.g. 1 or 0,2-3 [default: every online CPU].
    #[arg(long, env = "SPINDLE_CPUSET", value_name = "LIST")]
    pub cpuset: Option<String>,
    /// µs an idle pinned shard keeps polling for work before it sleeps; 0 sleeps at once
    /// [default: 0].
    #[arg(long, env = "SPINDLE_IDLE_POLL_US", value_name = "US")]
    pub idle_poll_us: Option<String>,
    /// This node's id [default: 0].
    #[arg(long, env = "SPINDLE_NODE_ID", value_name = "N")]
    pub node_id: Option<String>,
    /// Cluster id reported to clients [default: one made at the first start, kept in DATA_DIR/cluster.id].
    #[arg(long, env = "SPINDLE_CLUSTER_ID", value_name = "ID")]
    pub cluster_id: Option<String>,
    /// Partitions of auto-created topics and of CreateTopics with -1 [default: 1].
    #[arg(long, env = "SPINDLE_DEFAULT_PARTITIONS", value_name = "N")]
    pub default_partitions: Option<String>,
    /// Default retention.ms of topics; -1 keeps everything [default: 604800000].
    #[arg(long, env = "SPINDLE_RETENTION_MS", value_name = "MS")]
    pub retention_ms: Option<String>,
    /// Default retention.bytes of topics; -1 keeps everything [default: -1].
    #[arg(long, env = "SPINDLE_RETENTION_BYTES", value_name = "BYTES")]
    pub retention_bytes: Option<String>,
    /// Default segment.bytes of topics [default: 1073741824].
    #[arg(long, env = "SPINDLE_SEGMENT_BYTES", value_name = "BYTES")]
    pub segment_bytes: Option<String>,
    /// Default segment.ms of topics; -1 rolls by size only [default: 604800000].
    #[arg(long, env = "SPINDLE_SEGMENT_MS", value_name = "MS")]
    pub segment_ms: Option<String>,
    /// Default fsync.policy of topics: batch, interval:MS or never [default: never].
    #[arg(long, env = "SPINDLE_FSYNC_POLICY", value_name = "POLICY")]
    pub fsync_policy: Option<String>,
    /// Default max.message.bytes of topics [default: 1572864].
    #[arg(long, env = "SPINDLE_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub max_message_bytes: Option<String>,
    /// How long a group without members keeps its committed offsets after its last commit;
    /// -1 keeps them forever [default: 604800000].
    #[arg(long, env = "SPINDLE_OFFSETS_RETENTION_MS", value_name = "MS")]
    pub offsets_retention_ms: Option<String>,
    /// How long the first join into an empty consumer group waits for more members, 0 to
    /// 1800000 [default: 1000].
    #[arg(
        long,
        env = "SPINDLE_GROUP_INITIAL_REBALANCE_DELAY_MS",
        value_name = "MS"
    )]
    pub group_initial_rebalance_delay_ms: Option<String>,
    /// Session timeout of consumer-protocol (KIP-848) group members, 1000 to 1800000
    /// [default: 45000].
    #[arg(
        long,
        env = "SPINDLE_GROUP_CONSUMER_SESSION_TIMEOUT_MS",
        value_name = "MS"
    )]
    pub group_consumer_session_timeout_ms: Option<String>,
    /// How often consumer-protocol group members heartbeat, from 100 to less than their
    /// session timeout [default: 5000].
    #[arg(
        long,
        env = "SPINDLE_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS",
        value_name = "MS"
    )]
    pub group_consumer_heartbeat_interval_ms: Option<String>,
    /// Which way a consumer group with members may move between the classic and the consumer
    /// protocol: disabled, upgrade, downgrade or bidirectional [default: bidirectional].
    #[arg(
        long,
        env = "SPINDLE_GROUP_CONSUMER_MIGRATION_POLICY",
        value_name = "POLICY"
    )]
    pub group_consumer_migration_policy: Option<String>,
    /// Log level: error, warn, info, debug or trace; RUST_LOG, when set, wins [default: info].
    #[arg(long, env = "SPINDLE_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// The TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    node_id: Option<i32>,
    cluster_id: Option<String>,
    data_dir: Option<PathBuf>,
    shards: Option<usize>,
    shard_memory_bytes: Option<usize>,
    offsets_retention_ms: Option<i64>,
    group_initial_rebalance_delay_ms: Option<u64>,
    group_consumer_session_timeout_ms: Option<u64>,
    group_consumer_heartbeat_interval_ms: Option<u64>,
    group_consumer_migration_policy: Option<String>,
    placement: Option<String>,
    cpuset: Option<String>,
    idle_poll_us: Option<u64>,
    log_level: Option<String>,
    #[serde(default)]
    kafka: KafkaFile,
    grpc: Option<GatewayConfig>,
    #[serde(default)]
    admin: AdminFile,
    #[serde(default)]
    topic_defaults: TopicDefaultsFile,
}

/// The `[kafka]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KafkaFile {
    listen: Option<String>,
    advertise: Option<String>,
    max_frame_bytes: Option<usize>,
    frame_body_timeout_ms: Option<u64>,
    connections_max_idle_ms: Option<u64>,
    fetch_max_bytes: Option<usize>,
    max_connections_per_shard: Option<usize>,
    auto_create_topics: Option<bool>,
    sasl_mechanisms: Option<Vec<String>>,
    tls: Option<KafkaTlsFile>,
    #[serde(default)]
    quotas: Vec<KafkaQuotaFile>,
}

/// One `[[kafka.quotas]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KafkaQuotaFile {
    user: Option<String>,
    client_id: Option<String>,
    producer_byte_rate: Option<u64>,
    consumer_byte_rate: Option<u64>,
}

/// The `[kafka.tls]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KafkaTlsFile {
    cert_path: PathBuf,
    key_path: PathBuf,
    client_ca_path: Option<PathBuf>,
}

/// The `[admin]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminFile {
    listen: Option<String>,
}

/// The `[topic_defaults]` table. Numbers use -1 for "none", as Kafka does.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicDefaultsFile {
    partitions: Option<u32>,
    retention_ms: Option<i64>,
    retention_bytes: Option<i64>,
    segment_bytes: Option<i64>,
    segment_ms: Option<i64>,
    fsync_policy: Option<String>,
    max_message_bytes: Option<i64>,
}

/// The merged, validated configuration of one node.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The engine's settings.
    pub engine: EngineConfig,
    /// The Kafka server's settings (listen port possibly still 0).
    pub kafka: KafkaConfig,
    /// Whether `--kafka-advertise` (or its key) fixed the advertised address.
    pub advertise_given: bool,
    /// Whether `--cluster-id` (or its key) set the cluster id; else the node reports the one
    /// kept in its data directory (`cluster_id::stored`).
    pub cluster_id_given: bool,
    /// The gateway's settings.
    pub grpc: GatewayConfig,
    /// Where the admin HTTP endpoint listens.
    pub admin_listen: SocketAddr,
    /// Log level for the tracing subscriber when RUST_LOG is not set.
    pub log_level: String,
}

/// Reads a TOML configuration file.
///
/// # Errors
/// The file cannot be read, or a key is unknown or of the wrong type (named in the message).
pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path.display().to_string(), format!("cannot read: {e}")))?;
    toml::from_str(&text).map_err(|e| {
        ConfigError::new(
            path.display().to_string(),
            e.to_string().trim_end().replace('\n', " "),
        )
    })
}

/// Checks a configuration file alone, as `spindle config check` does.
///
/// # Errors
/// The first problem found, naming its key.
pub fn check_file(path: &Path) -> Result<ServeConfig, ConfigError> {
    let file = read_file(path)?;
    resolve(file, &ServeArgs::default())
}

/// Merges the file (if any), the environment and the flags, and validates the result.
///
/// # Errors
/// The first problem found, naming its key.
pub fn load(args: &ServeArgs) -> Result<ServeConfig, ConfigError> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    resolve(file, args)
}

/// One option's value from the flag/variable layer (a string, parsed here so every error names
/// the flag) or else from the file.
fn pick<T: std::str::FromStr>(
    flag: &Option<String>,
    flag_name: &str,
    file: Option<T>,
    allowed: &str,
) -> Result<Option<T>, ConfigError> {
    match flag {
        Some(raw) => raw
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::new(flag_name, format!("{raw:?} is not {allowed}"))),
        None => Ok(file),
    }
}

fn resolve(file: FileConfig, args: &ServeArgs) -> Result<ServeConfig, ConfigError> {
    let log_level = pick(
        &args.log_level,
        "--log-level",
        file.log_level.clone(),
        "a log level",
    )?
    .unwrap_or_else(|| "info".to_owned());
    if !LOG_LEVELS.contains(&log_level.as_str()) {
        return Err(ConfigError::new(
            "log_level",
            format!("{log_level:?}: allowed: {}", LOG_LEVELS.join(", ")),
        ));
    }
    let engine = engine_config(&file, args)?;
    let (mut kafka, advertise_given) = kafka_config(&file, args, &engine)?;
    let mut grpc = file.grpc.clone().unwrap_or_default();
    if let Some(listen) = pick(
        &args.grpc_listen,
        "--grpc-listen",
        None,
        "an IP:PORT address",
    )? {
        grpc.listen = listen;
    }
    if let Some(enabled) = pick(&args.grpc_enabled, "--grpc-enabled", None, "true or false")? {
        grpc.enabled = enabled;
    }
    if grpc.enabled {
        grpc.validate()
            .map_err(|e| ConfigError::new("grpc", e.to_string()))?;
    }
    kafka.sasl = kafka_sasl(&file, args, &grpc)?;
    kafka.tls = kafka_tls(&file, &grpc)?;
    kafka.quotas = kafka_quotas(&file)?;
    let (admin_listen, admin_key) = match (&args.admin_listen, &file.admin.listen) {
        (Some(flag), _) => (flag.clone(), "--admin-listen"),
        (None, Some(from_file)) => (from_file.clone(), "admin.listen"),
        (None, None) => (DEFAULT_ADMIN_LISTEN.to_owned(), "admin.listen"),
    };
    let admin_listen = admin_listen.trim().parse().map_err(|_| {
        ConfigError::new(
            admin_key,
            format!("{admin_listen:?} is not an IP:PORT address such as {DEFAULT_ADMIN_LISTEN}"),
        )
    })?;
    Ok(ServeConfig {
        engine,
        kafka,
        advertise_given,
        cluster_id_given: args.cluster_id.is_some() || file.cluster_id.is_some(),
        grpc,
        admin_listen,
        log_level,
    })
}

/// The `cpuset` list (`1`, `0,2-3`), from the flag or else the file; `None` when neither sets it.
fn cpuset(file: &FileConfig, args: &ServeArgs) -> Result<Option<Vec<usize>>, ConfigError> {
    let (key, raw) = match (&args.cpuset, &file.cpuset) {
        (Some(raw), _) => ("--cpuset", raw),
        (None, Some(raw)) => ("cpuset", raw),
        (None, None) => return Ok(None),
    };
    parse_cpu_list(raw).map(Some).map_err(|why| {
        ConfigError::new(
            key,
            format!("{raw:?}: {why}; allowed: CPU numbers and ranges, such as 1 or 0,2-3"),
        )
    })
}

/// Parses a CPU list: numbers and `A-B` ranges (A ≤ B) separated by commas, in the order given,
/// each CPU once. A CPU number is below `CPU_SETSIZE`, the most an affinity mask can name, which
/// also keeps a range such as `0-99999999999` from being expanded.
fn parse_cpu_list(raw: &str) -> Result<Vec<usize>, String> {
    let cpus_max = usize::try_from(libc::CPU_SETSIZE).unwrap_or(1024);
    let number = |s: &str| match s.trim().parse::<usize>() {
        Ok(cpu) if cpu < cpus_max => Ok(cpu),
        Ok(cpu) => Err(format!(
            "CPU {cpu} is beyond the last possible ({})",
            cpus_max - 1
        )),
        Err(_) => Err(format!("{:?} is not a CPU number", s.trim())),
    };
    let mut cpus = Vec::new();
    for item in raw.split(',') {
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(item)?, number(item)?),
        };
        if first > last {
            return Err(format!("the range {first}-{last} runs backwards"));
        }
        for cpu in first..=last {
            if cpus.contains(&cpu) {
                return Err(format!("CPU {cpu} is named twice"));
            }
            cpus.push(cpu);
        }
    }
    Ok(cpus)
}

/// What a byte count setting must be, for errors.
const BYTES: &str = "a byte count";
/// What a duration setting must be, for errors.
const MILLISECONDS: &str = "a number of milliseconds";

/// A numeric setting from the flag (or its variable), else the file, else `default`, refused
/// under `key` unless it lies in `allowed`; `what` says what the flag's text must be.
fn bounded<T>(
    flag: (&Option<String>, &str),
    file: Option<T>,
    default: T,
    allowed: RangeInclusive<T>,
    key: &str,
    what: &str,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let value = pick(flag.0, flag.1, file, what)?.unwrap_or(default);
    if !allowed.contains(&value) {
        return Err(ConfigError::new(
            key,
            format!("{value}: allowed: {}..={}", allowed.start(), allowed.end()),
        ));
    }
    Ok(value)
}

/// `HOST:PORT` with a non-empty host and a non-zero port; IPv6 hosts in brackets.
fn parse_host_port(raw: &str) -> Option<(String, u16)> {
    let (host, port) = raw.trim().rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

use engine::engine_config;
use kafka::{kafka_config, kafka_quotas, kafka_sasl, kafka_tls};

#[path = "config_engine.rs"]
mod engine;
#[path = "config_kafka.rs"]
mod kafka;
#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
