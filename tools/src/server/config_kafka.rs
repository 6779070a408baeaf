//! The Kafka listener's part of `spindle serve`'s configuration: addresses, identity, SASL,
//! TLS, quotas and limits.

use std::net::SocketAddr;

use spindle_engine::{EngineConfig, MemoryBudget};
use spindle_gateway::{Authenticator, GatewayConfig};
use spindle_net::kafka::{ClientQuota, KafkaConfig, SaslConfig, SaslMechanism, TlsConfig};
use spindle_net::limits::{
    DEFAULT_CONNECTIONS_MAX_IDLE_MS, DEFAULT_FETCH_MAX_BYTES, DEFAULT_FRAME_BODY_TIMEOUT_MS,
    DEFAULT_MAX_FRAME_BYTES, MAX_CONNECTIONS_MAX_IDLE_MS, MAX_FRAME_BODY_TIMEOUT_MS,
    MAX_FRAME_BYTES_CEILING, MIN_CONNECTIONS_MAX_IDLE_MS, MIN_FETCH_MAX_BYTES,
    MIN_FRAME_BODY_TIMEOUT_MS, MIN_FRAME_BYTES,
};

use super::{
    bounded, parse_host_port, pick, ConfigError, FileConfig, ServeArgs, BYTES,
    DEFAULT_KAFKA_LISTEN, MILLISECONDS,
};

/// The Kafka server's settings: where it listens and the address it advertises, this node's
/// identity, its limits, and the topic settings it shares with the engine. Also returns whether
/// an address to advertise was given.
pub(super) fn kafka_config(
    file: &FileConfig,
    args: &ServeArgs,
    engine: &EngineConfig,
) -> Result<(KafkaConfig, bool), ConfigError> {
    let listen = kafka_listen(file, args)?;
    let mut kafka = KafkaConfig::new(listen);
    let advertised = advertised_address(file, args, listen)?;
    let advertise_given = advertised.is_some();
    if let Some((host, port)) = advertised {
        kafka.advertised_host = host;
        kafka.advertised_port = port;
    }
    set_kafka_identity(&mut kafka, file, args)?;
    set_kafka_limits(&mut kafka, file, args)?;
    check_request_share(&kafka, engine)?;
    kafka.auto_create_topics = engine.auto_create_topics;
    kafka.default_partitions = engine.default_partitions;
    kafka.topic_defaults = engine.topic_defaults.clone();
    Ok((kafka, advertise_given))
}

/// The Kafka listen address, from the flag, else the file, else [`DEFAULT_KAFKA_LISTEN`].
fn kafka_listen(file: &FileConfig, args: &ServeArgs) -> Result<SocketAddr, ConfigError> {
    let (listen_raw, listen_key) = args
        .kafka_listen
        .clone()
        .map(|v| (v, "--kafka-listen"))
        .or_else(|| file.kafka.listen.clone().map(|v| (v, "kafka.listen")))
        .unwrap_or_else(|| (DEFAULT_KAFKA_LISTEN.to_owned(), "kafka.listen"));
    listen_raw.trim().parse().map_err(|_| {
        ConfigError::new(
            listen_key,
            format!("{listen_raw:?} is not an IP:PORT address such as 127.0.0.1:9092"),
        )
    })
}

/// This node's id (0 or more) and the cluster id it reports to clients.
fn set_kafka_identity(
    kafka: &mut KafkaConfig,
    file: &FileConfig,
    args: &ServeArgs,
) -> Result<(), ConfigError> {
    kafka.node_id = pick(&args.node_id, "--node-id", file.node_id, "a node id")?.unwrap_or(0);
    if kafka.node_id < 0 {
        return Err(ConfigError::new(
            "node_id",
            format!("{}: must be 0 or more", kafka.node_id),
        ));
    }
    if let Some(id) = pick(
        &args.cluster_id,
        "--cluster-id",
        file.cluster_id.clone(),
        "an id",
    )? {
        kafka.cluster_id = id;
    }
    Ok(())
}

/// The SASL mechanisms of the Kafka listener (flag, else file) and the principals that may
/// authenticate with them: those of `[[grpc.auth.tokens]]`, user name = principal, password =
/// token. `None` when no mechanism is set.
pub(super) fn kafka_sasl(
    file: &FileConfig,
    args: &ServeArgs,
    grpc: &GatewayConfig,
) -> Result<Option<SaslConfig>, ConfigError> {
    let (names, key) = match (&args.kafka_sasl_mechanisms, &file.kafka.sasl_mechanisms) {
        (Some(flag), _) => (
            flag.split(',')
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
                .collect(),
            "--kafka-sasl-mechanisms",
        ),
        (None, Some(from_file)) => (from_file.clone(), "kafka.sasl_mechanisms"),
        (None, None) => return Ok(None),
    };
    if names.is_empty() {
        return Ok(None);
    }
    let mechanisms = names
        .iter()
        .map(|name| SaslMechanism::parse(name))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::new(key, e))?;
    let credentials = principals(grpc)?.filter(|c| !c.is_empty()).ok_or_else(|| {
        ConfigError::new(
            key,
            "needs [[grpc.auth.tokens]]: SASL user names and passwords are their principals \
                 and tokens"
                .to_owned(),
        )
    })?;
    SaslConfig::new(mechanisms, credentials)
        .map(Some)
        .map_err(|e| ConfigError::new(key, e))
}

/// The client quotas of `[[kafka.quotas]]`: each entry sets at least one rate, every rate is at
/// least one byte per second, and no two entries name the same user and client id.
pub(super) fn kafka_quotas(file: &FileConfig) -> Result<Vec<ClientQuota>, ConfigError> {
    let mut quotas: Vec<ClientQuota> = Vec::with_capacity(file.kafka.quotas.len());
    for (i, entry) in file.kafka.quotas.iter().enumerate() {
        let key = format!("kafka.quotas[{i}]");
        let rates = [entry.producer_byte_rate, entry.consumer_byte_rate];
        if rates.iter().all(Option::is_none) {
            return Err(ConfigError::new(
                key,
                "sets no rate: give producer_byte_rate, consumer_byte_rate or both".to_owned(),
            ));
        }
        if rates.contains(&Some(0)) {
            return Err(ConfigError::new(
                key,
                "a rate of 0 bytes per second: must be at least 1".to_owned(),
            ));
        }
        let quota = ClientQuota {
            user: entry.user.clone(),
            client_id: entry.client_id.clone(),
            producer_byte_rate: entry.producer_byte_rate,
            consumer_byte_rate: entry.consumer_byte_rate,
        };
        if quotas
            .iter()
            .any(|q| (&q.user, &q.client_id) == (&quota.user, &quota.client_id))
        {
            return Err(ConfigError::new(
                key,
                format!(
                    "user {:?} and client_id {:?} are already given a quota by an earlier entry",
                    quota.user, quota.client_id
                ),
            ));
        }
        quotas.push(quota);
    }
    Ok(quotas)
}

/// The principals of `[[grpc.auth.tokens]]`, which also name Kafka clients (by SASL login or
/// client certificate); `None` without `[grpc.auth]`.
fn principals(
    grpc: &GatewayConfig,
) -> Result<Option<std::sync::Arc<spindle_engine::access::Credentials>>, ConfigError> {
    Authenticator::new(grpc.auth.as_ref())
        .map(|auth| auth.credentials())
        .map_err(|e| ConfigError::new("grpc.auth", e.to_string()))
}

/// `[kafka.tls]`: the certificate and key, and with `client_ca_path` client certificates whose
/// common names name principals of `[[grpc.auth.tokens]]`.
pub(super) fn kafka_tls(
    file: &FileConfig,
    grpc: &GatewayConfig,
) -> Result<Option<TlsConfig>, ConfigError> {
    let Some(tls) = &file.kafka.tls else {
        return Ok(None);
    };
    let loaded = match &tls.client_ca_path {
        None => TlsConfig::load(&tls.cert_path, &tls.key_path),
        Some(client_ca) => {
            let principals = principals(grpc)?;
            TlsConfig::require_client_certs(&tls.cert_path, &tls.key_path, client_ca, principals)
        }
    };
    loaded
        .map(Some)
        .map_err(|e| ConfigError::new("kafka.tls", e.to_string()))
}

/// The Kafka server's limits: the largest frame, the time a body may take, the idle time of a
/// connection, the Fetch answer cap and the connections per shard, each within its range.
fn set_kafka_limits(
    kafka: &mut KafkaConfig,
    file: &FileConfig,
    args: &ServeArgs,
) -> Result<(), ConfigError> {
    kafka.max_frame_bytes = bounded(
        (&args.max_frame_bytes, "--max-frame-bytes"),
        file.kafka.max_frame_bytes,
        DEFAULT_MAX_FRAME_BYTES,
        MIN_FRAME_BYTES..=MAX_FRAME_BYTES_CEILING,
        "kafka.max_frame_bytes",
        BYTES,
    )?;
    kafka.frame_body_timeout_ms = bounded(
        (&args.frame_body_timeout_ms, "--frame-body-timeout-ms"),
        file.kafka.frame_body_timeout_ms,
        DEFAULT_FRAME_BODY_TIMEOUT_MS,
        MIN_FRAME_BODY_TIMEOUT_MS..=MAX_FRAME_BODY_TIMEOUT_MS,
        "kafka.frame_body_timeout_ms",
        MILLISECONDS,
    )?;
    kafka.connections_max_idle_ms = bounded(
        (&args.connections_max_idle_ms, "--connections-max-idle-ms"),
        file.kafka.connections_max_idle_ms,
        DEFAULT_CONNECTIONS_MAX_IDLE_MS,
        MIN_CONNECTIONS_MAX_IDLE_MS..=MAX_CONNECTIONS_MAX_IDLE_MS,
        "kafka.connections_max_idle_ms",
        MILLISECONDS,
    )?;
    kafka.fetch_max_bytes = bounded(
        (&args.fetch_max_bytes, "--fetch-max-bytes"),
        file.kafka.fetch_max_bytes,
        DEFAULT_FETCH_MAX_BYTES,
        MIN_FETCH_MAX_BYTES..=i32::MAX as usize,
        "kafka.fetch_max_bytes",
        BYTES,
    )?;
    if let Some(n) = pick(
        &args.max_connections_per_shard,
        "--max-connections-per-shard",
        file.kafka.max_connections_per_shard,
        "a connection count",
    )? {
        if n == 0 {
            return Err(ConfigError::new(
                "kafka.max_connections_per_shard",
                "0: must be at least 1".to_owned(),
            ));
        }
        kafka.max_connections_per_shard = n;
    }
    Ok(())
}

/// Refuses a largest frame that does not fit in the shard's request memory: a frame is read
/// only once its length is reserved from that share, so a larger one could never be read.
fn check_request_share(kafka: &KafkaConfig, engine: &EngineConfig) -> Result<(), ConfigError> {
    let request_share = MemoryBudget::request_share_of(engine.shard_memory_bytes);
    if kafka.max_frame_bytes > request_share {
        return Err(ConfigError::new(
            "kafka.max_frame_bytes",
            format!(
                "{}: larger than the request share ({request_share} bytes, a quarter) of \
                 shard_memory_bytes {}: lower it or raise shard_memory_bytes",
                kafka.max_frame_bytes, engine.shard_memory_bytes
            ),
        ));
    }
    Ok(())
}

/// The address given to advertise, if any; required when the listen address is a wildcard.
fn advertised_address(
    file: &FileConfig,
    args: &ServeArgs,
    listen: SocketAddr,
) -> Result<Option<(String, u16)>, ConfigError> {
    let given = args
        .kafka_advertise
        .clone()
        .map(|v| (v, "--kafka-advertise"))
        .or_else(|| file.kafka.advertise.clone().map(|v| (v, "kafka.advertise")));
    match given {
        Some((raw, key)) => parse_host_port(&raw).map(Some).ok_or_else(|| {
            ConfigError::new(
                key,
                format!("{raw:?} is not HOST:PORT with a non-zero port"),
            )
        }),
        None if listen.ip().is_unspecified() => Err(ConfigError::new(
            "kafka.advertise",
            format!(
                "the listen address {listen} is not one clients can connect to: set \
                 --kafka-advertise (SPINDLE_KAFKA_ADVERTISE) to HOST:PORT"
            ),
        )),
        None => Ok(None),
    }
}
