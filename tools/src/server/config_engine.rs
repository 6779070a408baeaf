//! The engine's part of `spindle serve`'s configuration: placement, memory, consumer groups and
//! the defaults of new topics.

use std::path::PathBuf;
use std::time::Duration;

use spindle_engine::group::consumer_group::{ConsumerTiming, MigrationPolicy};
use spindle_engine::limits::{SHARD_MEMORY_BYTES_DEFAULT, SHARD_MEMORY_BYTES_MIN};
use spindle_engine::{EngineConfig, Placement, TopicConfig};

use super::{bounded, cpuset, pick, ConfigError, FileConfig, ServeArgs, DEFAULT_DATA_DIR};

/// The engine's settings: data directory, shards and their placement, memory, consumer
/// groups and the defaults of new topics.
pub(super) fn engine_config(
    file: &FileConfig,
    args: &ServeArgs,
) -> Result<EngineConfig, ConfigError> {
    let defaults = EngineConfig::default();
    let placement = match pick(
        &args.placement,
        "--placement",
        file.placement.clone(),
        "a placement",
    )?
    .as_deref()
    {
        None | Some("pinned") => Placement::Pinned,
        Some("unbound") => Placement::Unbound,
        Some(other) => {
            return Err(ConfigError::new(
                "placement",
                format!("{other:?}: allowed: pinned, unbound"),
            ))
        }
    };
    let default_partitions = pick(
        &args.default_partitions,
        "--default-partitions",
        file.topic_defaults.partitions,
        "a partition count",
    )?
    .unwrap_or(defaults.default_partitions);
    if default_partitions == 0 {
        return Err(ConfigError::new(
            "topic_defaults.partitions",
            "0: must be at least 1",
        ));
    }
    Ok(EngineConfig {
        data_dir: args
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        shards: pick(
            &args.shards,
            "--shards",
            file.shards,
            "a shard count (0 = one per CPU)",
        )?
        .unwrap_or(defaults.shards),
        placement,
        cpuset: cpuset(file, args)?,
        spin_before_park_us: idle_poll(file, args, placement)?,
        topic_defaults: topic_defaults(file, args)?,
        auto_create_topics: pick(
            &args.auto_create_topics,
            "--auto-create-topics",
            file.kafka.auto_create_topics,
            "true or false",
        )?
        .unwrap_or(defaults.auto_create_topics),
        default_partitions,
        shard_memory_bytes: shard_memory_bytes(file, args)?,
        offsets_retention: offsets_retention(file, args)?,
        group_initial_rebalance_delay: group_initial_rebalance_delay(file, args)?,
        group_consumer_timing: group_consumer_timing(file, args)?,
        group_consumer_migration_policy: group_consumer_migration_policy(file, args)?,
    })
}

/// Consumer-protocol members' session timeout (1 s to 30 min) and heartbeat interval (at least
/// 100 ms, and shorter than the session).
fn group_consumer_timing(
    file: &FileConfig,
    args: &ServeArgs,
) -> Result<ConsumerTiming, ConfigError> {
    let defaults = ConsumerTiming::default();
    let session_allowed = "a number of ms from 1000 to 1800000";
    let session = pick(
        &args.group_consumer_session_timeout_ms,
        "--group-consumer-session-timeout-ms",
        file.group_consumer_session_timeout_ms,
        session_allowed,
    )?
    .map_or(defaults.session_timeout, Duration::from_millis);
    if !(Duration::from_secs(1)..=Duration::from_secs(1800)).contains(&session) {
        return Err(ConfigError::new(
            "group_consumer_session_timeout_ms",
            format!("{}: allowed: {session_allowed}", session.as_millis()),
        ));
    }
    let interval_allowed = format!(
        "a number of ms from 100 to less than the session timeout ({})",
        session.as_millis()
    );
    let interval = pick(
        &args.group_consumer_heartbeat_interval_ms,
        "--group-consumer-heartbeat-interval-ms",
        file.group_consumer_heartbeat_interval_ms,
        &interval_allowed,
    )?
    .map_or(defaults.heartbeat_interval, Duration::from_millis);
    if interval < Duration::from_millis(100) || interval >= session {
        return Err(ConfigError::new(
            "group_consumer_heartbeat_interval_ms",
            format!("{}: allowed: {interval_allowed}", interval.as_millis()),
        ));
    }
    Ok(ConsumerTiming {
        session_timeout: session,
        heartbeat_interval: interval,
    })
}

/// Which way groups with members may move between the classic and the consumer protocol.
fn group_consumer_migration_policy(
    file: &FileConfig,
    args: &ServeArgs,
) -> Result<MigrationPolicy, ConfigError> {
    let name = pick(
        &args.group_consumer_migration_policy,
        "--group-consumer-migration-policy",
        file.group_consumer_migration_policy.clone(),
        "a policy",
    )?;
    let Some(name) = name else {
        return Ok(MigrationPolicy::default());
    };
    MigrationPolicy::parse(&name).ok_or_else(|| {
        let allowed: Vec<&str> = MigrationPolicy::NAMES.iter().map(|(n, _)| *n).collect();
        ConfigError::new(
            "group_consumer_migration_policy",
            format!("{name:?}: allowed: {}", allowed.join(", ")),
        )
    })
}

/// The groups' initial rebalance delay: at most the longest rebalance timeout.
fn group_initial_rebalance_delay(
    file: &FileConfig,
    args: &ServeArgs,
) -> Result<Duration, ConfigError> {
    let max =
        u64::try_from(spindle_engine::group::REBALANCE_TIMEOUT_MAX.as_millis()).unwrap_or(u64::MAX);
    let default = EngineConfig::default().group_initial_rebalance_delay;
    let ms = bounded(
        (
            &args.group_initial_rebalance_delay_ms,
            "--group-initial-rebalance-delay-ms",
        ),
        file.group_initial_rebalance_delay_ms,
        u64::try_from(default.as_millis()).unwrap_or(u64::MAX),
        0..=max,
        "group_initial_rebalance_delay_ms",
        "a number of ms",
    )?;
    Ok(Duration::from_millis(ms))
}

/// The committed offsets' retention: -1 keeps them forever, else at least 1 ms.
fn offsets_retention(file: &FileConfig, args: &ServeArgs) -> Result<Option<Duration>, ConfigError> {
    let allowed = "-1 (forever) or a number of ms >= 1";
    let ms = pick(
        &args.offsets_retention_ms,
        "--offsets-retention-ms",
        file.offsets_retention_ms,
        allowed,
    )?;
    match ms {
        None => Ok(EngineConfig::default().offsets_retention),
        Some(-1) => Ok(None),
        Some(ms) => u64::try_from(ms)
            .ok()
            .filter(|ms| *ms >= 1)
            .map(|ms| Some(Duration::from_millis(ms)))
            .ok_or_else(|| {
                ConfigError::new("offsets_retention_ms", format!("{ms}: allowed: {allowed}"))
            }),
    }
}

/// How long an idle shard polls before it sleeps (Seastar's `--idle-poll-time-us`): `None` for
/// 0 (the default), at most `IDLE_POLL_US_MAX`, and only for pinned shards, whose CPUs are
/// their own (glommio ignores it for unbound ones, which would spin on a CPU other threads
/// need).
fn idle_poll(
    file: &FileConfig,
    args: &ServeArgs,
    placement: Placement,
) -> Result<Option<u64>, ConfigError> {
    let us = bounded(
        (&args.idle_poll_us, "--idle-poll-us"),
        file.idle_poll_us,
        0,
        0..=IDLE_POLL_US_MAX,
        "idle_poll_us",
        "a number of µs",
    )?;
    match us {
        0 => Ok(None),
        _ if placement == Placement::Unbound => Err(ConfigError::new(
            "idle_poll_us",
            "needs placement = \"pinned\": an unbound shard would poll on a CPU it shares",
        )),
        us => Ok(Some(us)),
    }
}

/// The longest idle poll: 10 ms (beyond it a shard is as good as never sleeping).
const IDLE_POLL_US_MAX: u64 = 10_000;

/// The shard memory budget: at least the engine's minimum.
fn shard_memory_bytes(file: &FileConfig, args: &ServeArgs) -> Result<usize, ConfigError> {
    let bytes = pick(
        &args.shard_memory_bytes,
        "--shard-memory-bytes",
        file.shard_memory_bytes,
        "a byte count",
    )?
    .unwrap_or(SHARD_MEMORY_BYTES_DEFAULT);
    if bytes < SHARD_MEMORY_BYTES_MIN {
        return Err(ConfigError::new(
            "shard_memory_bytes",
            format!("{bytes}: must be at least {SHARD_MEMORY_BYTES_MIN} (8 MiB)"),
        ));
    }
    Ok(bytes)
}

/// The topic defaults: the engine's, with each given key set through [`TopicConfig::set`], which
/// validates it and names the allowed values.
fn topic_defaults(file: &FileConfig, args: &ServeArgs) -> Result<TopicConfig, ConfigError> {
    let t = &file.topic_defaults;
    let as_text = |v: Option<i64>| v.map(|v| v.to_string());
    let keys: [(&str, &str, &Option<String>, Option<String>); 6] = [
        (
            "retention.ms",
            "retention_ms",
            &args.retention_ms,
            as_text(t.retention_ms),
        ),
        (
            "retention.bytes",
            "retention_bytes",
            &args.retention_bytes,
            as_text(t.retention_bytes),
        ),
        (
            "segment.bytes",
            "segment_bytes",
            &args.segment_bytes,
            as_text(t.segment_bytes),
        ),
        (
            "segment.ms",
            "segment_ms",
            &args.segment_ms,
            as_text(t.segment_ms),
        ),
        (
            "fsync.policy",
            "fsync_policy",
            &args.fsync_policy,
            t.fsync_policy.clone(),
        ),
        (
            "max.message.bytes",
            "max_message_bytes",
            &args.max_message_bytes,
            as_text(t.max_message_bytes),
        ),
    ];
    let mut config = TopicConfig::default();
    for (kafka_key, field, flag, from_file) in keys {
        let (value, name) = match (flag, from_file) {
            (Some(v), _) => (
                v.trim().to_owned(),
                format!("--{}", field.replace('_', "-")),
            ),
            (None, Some(v)) => (v, format!("topic_defaults.{field}")),
            (None, None) => continue,
        };
        config
            .set(kafka_key, &value)
            .map_err(|e| ConfigError::new(name, e.to_string()))?;
    }
    Ok(config)
}
