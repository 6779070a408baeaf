//! A running node: the engine with the Kafka server on every shard, the gRPC gateway beside it,
//! the ready line, and a clean stop on SIGINT or SIGTERM.
//!
//! Start-up order matters for tests and operators alike: the Kafka port is reserved first (so
//! port 0 resolves to one port all shards share), the engine recovers every partition and then
//! starts the listener on each shard, and only when every shard reports its listener bound is
//! `spindle ready: …` printed on stdout. A failure anywhere before that is one plain error line
//! and a non-zero exit.
//!
//! Stopping: the first SIGINT/SIGTERM stops the gateway and then the engine, whose shutdown
//! tells every service to stop (listeners close, connections answer what they have read and
//! close), then flushes and syncs every log. A second signal during that exits at once.

use std::io::Write;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use spindle_engine::{Engine, EngineError};
use spindle_gateway::Gateway;
use spindle_net::kafka::{self, KafkaConfig};

use crate::server::admin_http::AdminServer;
use crate::server::config::ServeConfig;
use crate::server::preflight;

/// How long the shards may take to recover their partitions and bind their listeners.
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// Exit status after a second signal cut the shutdown short (128 + SIGINT, as shells do).
const FORCED_EXIT_STATUS: i32 = 130;

/// Runs a node until SIGINT or SIGTERM.
///
/// # Errors
/// The machine cannot run the engine, a port cannot be bound, the engine fails to start or to
/// shut down cleanly.
pub fn run(config: ServeConfig) -> anyhow::Result<()> {
    let shards_hint = match config.engine.shards {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    preflight::check(shards_hint).map_err(|e| anyhow!("cannot start: {e}"))?;
    let signals = watch_signals()?;

    let reservation = kafka::reserve_listen_addr(config.kafka.listen)?;
    let mut kafka_config = config.kafka.clone();
    kafka_config.listen = reservation.addr();
    if !config.advertise_given {
        kafka_config.advertised_port = reservation.addr().port();
    }
    if !config.cluster_id_given {
        kafka_config.cluster_id = super::cluster_id::stored(&config.engine.data_dir)?;
    }
    let kafka_config = Arc::new(kafka_config);
    let (admin, admin_shown) = start_admin(&config);
    let engine = start_engine(&config, &kafka_config)?;
    drop(reservation);
    let (gateway, grpc_shown) = match start_gateway(&config, &engine) {
        Ok(started) => started,
        Err(e) => return Err(abandon(engine, e)),
    };
    if let Some(admin) = &admin {
        admin.set_engine(engine.handle());
        if let Some(gateway) = &gateway {
            admin.set_call_metrics(gateway.call_metrics());
        }
        admin.mark_ready();
    }
    let shards = ready_shards(&config, shards_hint);
    println!(
        "spindle ready: kafka={} advertised={}:{} grpc={} data={} shards={} admin={}",
        kafka_config.listen,
        kafka_config.advertised_host,
        kafka_config.advertised_port,
        grpc_shown,
        config.engine.data_dir.display(),
        shards,
        admin_shown
    );
    std::io::stdout()
        .flush()
        .context("cannot write the ready line")?;
    tracing::info!(
        kafka = %kafka_config.listen,
        tls = kafka_config.tls.is_some(),
        sasl = kafka_config.sasl.is_some(),
        shards,
        "serving"
    );

    let signal = signals
        .recv()
        .map_err(|_| anyhow!("stopped watching SIGINT/SIGTERM"))?;
    tracing::info!(signal, "stopping");
    if let Some(admin) = &admin {
        admin.mark_stopping();
    }
    stop(engine, gateway)
}

/// Starts the engine with the Kafka server on every shard, and waits until every shard's
/// listener is bound; on failure the engine is shut down again.
fn start_engine(config: &ServeConfig, kafka_config: &Arc<KafkaConfig>) -> anyhow::Result<Engine> {
    let (ready_tx, ready_rx) = mpsc::channel::<Result<usize, String>>();
    let service_config = Arc::clone(kafka_config);
    let engine = Engine::start_with_services(config.engine.clone(), move |shard| {
        let count = shard.shard_count();
        let bound = kafka::start(shard, Arc::clone(&service_config))
            .map(|_| count)
            // The error and its causes, as `{:#}` of anyhow prints them.
            .map_err(|e| format!("{:#}", anyhow::Error::new(e)));
        // The receiver outlives start-up; if it is gone the node is already failing.
        if ready_tx.send(bound).is_err() {
            tracing::debug!("start-up already abandoned");
        }
    })
    .map_err(|e| match e {
        EngineError::Start(reason) => anyhow!("cannot start the engine: {reason}"),
        other => anyhow!("cannot start the engine: {other}"),
    })?;
    match await_listeners(&ready_rx) {
        Ok(()) => Ok(engine),
        Err(e) => Err(abandon(engine, e)),
    }
}

/// Shuts down the engine of a node whose start failed with `error`, and returns `error`.
fn abandon(engine: Engine, error: anyhow::Error) -> anyhow::Error {
    if let Err(stop) = engine.shutdown() {
        tracing::error!(error = %stop, "shutdown after a failed start also failed");
    }
    error
}

/// Waits until every shard reports its listener bound; the first report gives the count.
fn await_listeners(ready: &mpsc::Receiver<Result<usize, String>>) -> anyhow::Result<()> {
    let first = ready
        .recv_timeout(START_TIMEOUT)
        .map_err(|_| anyhow!("no shard started its Kafka listener within {START_TIMEOUT:?}"))?;
    let count = first.map_err(|e| anyhow!("cannot start the Kafka listener: {e}"))?;
    for _ in 1..count {
        ready
            .recv_timeout(START_TIMEOUT)
            .map_err(|_| anyhow!("not every shard started its Kafka listener"))?
            .map_err(|e| anyhow!("cannot start the Kafka listener: {e}"))?;
    }
    Ok(())
}

fn ready_shards(config: &ServeConfig, hint: usize) -> usize {
    match config.engine.shards {
        0 => hint,
        n => n,
    }
}

/// Starts the admin HTTP endpoint before the engine, so `/health` answers during recovery; one
/// that cannot bind (say, a second node on the same host) leaves the node serving without it.
fn start_admin(config: &ServeConfig) -> (Option<AdminServer>, String) {
    match AdminServer::start(config.admin_listen) {
        Ok(admin) => {
            let addr = admin.local_addr().to_string();
            (Some(admin), addr)
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "admin HTTP endpoint not started");
            (None, "unavailable".to_owned())
        }
    }
}

/// Starts the gateway if enabled. A gateway that was asked for but cannot start (address taken,
/// unreadable TLS material) stops the node's start: serving Kafka alone would hide a wrong
/// `[grpc]` section from the operator.
fn start_gateway(
    config: &ServeConfig,
    engine: &Engine,
) -> anyhow::Result<(Option<Gateway>, String)> {
    if !config.grpc.enabled {
        return Ok((None, "disabled".to_owned()));
    }
    let gateway = Gateway::start(config.grpc.clone(), engine.handle())
        .with_context(|| format!("cannot start the gRPC gateway on {}", config.grpc.listen))?;
    let addr = gateway.local_addr().to_string();
    Ok((Some(gateway), addr))
}

/// Installs the SIGINT/SIGTERM handlers and returns the channel that delivers the first signal.
/// A thread keeps watching after that, and a second signal exits the process at once.
///
/// The handlers are in place when this returns, before the engine starts and long before the
/// ready line: a supervisor that stops the node the moment it reports ready gets a clean stop,
/// never the signal's default action.
fn watch_signals() -> anyhow::Result<mpsc::Receiver<&'static str>> {
    let (first_tx, first_rx) = mpsc::channel();
    let (installed_tx, installed_rx) = mpsc::channel::<Result<(), String>>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal runtime")?;
    std::thread::Builder::new()
        .name("spindle-signals".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let watched = signal(SignalKind::terminate())
                    .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)));
                let (mut term, mut int) = match watched {
                    Ok(pair) => pair,
                    Err(e) => {
                        // The main thread reports it; nothing else to do here.
                        drop(installed_tx.send(Err(e.to_string())));
                        return;
                    }
                };
                if installed_tx.send(Ok(())).is_err() {
                    return;
                }
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                };
                if first_tx.send(name).is_err() {
                    return;
                }
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
                eprintln!("spindle: second signal, exiting without a clean shutdown");
                std::process::exit(FORCED_EXIT_STATUS);
            });
        })
        .context("cannot start the signal thread")?;
    installed_rx
        .recv()
        .map_err(|_| anyhow!("the signal thread ended before watching SIGINT/SIGTERM"))?
        .map_err(|e| anyhow!("cannot watch SIGINT/SIGTERM: {e}"))?;
    Ok(first_rx)
}

fn stop(engine: Engine, gateway: Option<Gateway>) -> anyhow::Result<()> {
    if let Some(gateway) = gateway {
        gateway.shutdown();
    }
    match engine.shutdown() {
        Ok(()) => {
            tracing::info!("stopped cleanly");
            Ok(())
        }
        Err(e) => bail!("shutdown failed: {e}"),
    }
}
