//! `spindle-bench embedded`: produce into an engine started in this process.
//!
//! This is the ceiling the network modes are compared with: the same pre-built batches go
//! straight into [`EngineHandle::produce`] with no sockets or codecs in between. The producers
//! are async tasks on one tokio thread (the engine's shards own the other cores, so more
//! driver threads would only steal their CPU); each keeps up to `--in-flight` produce requests
//! outstanding, and the handle's futures wake that thread when a shard answers.
//!
//! Producer `i` writes its batches to partitions `i, i + 1, …` round robin, so any number of
//! producers spreads evenly over any number of partitions (and hence shards).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use kafka_protocol::records::Compression;
use serde_json::json;
use spindle_engine::{
    Engine, EngineConfig, EngineError, EngineHandle, Placement, TopicConfig, TopicPartition,
};

use crate::bench::args::EmbeddedArgs;
use crate::bench::batch::{BatchShape, Template};
use crate::bench::latency::Latency;
use crate::bench::limits;
use crate::bench::progress::Progress;
use crate::bench::report::Report;
use crate::bench::schedule::{Plan, Schedule};
use crate::bench::throughput::{Sampler, Throughput};

/// Runs the embedded benchmark described by `args` and prints its report.
///
/// # Errors
/// Invalid flags, the engine failing to start or to create the topic, output files.
pub fn run(args: &EmbeddedArgs) -> anyhow::Result<()> {
    args.load.validate()?;
    let shape = BatchShape::filling(
        args.load.batch_bytes,
        args.load.message_bytes,
        Compression::None,
    );
    let templates = Template::build_set(&shape, limits::TEMPLATES_PER_PRODUCER)?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let engine = Engine::start(engine_config(args)).context("starting the engine")?;
    let outcome = drive(args, &engine.handle(), &shape, &templates);
    let shutdown = engine.shutdown().context("shutting the engine down");
    let report = outcome?;
    shutdown?;
    report.emit(&args.load)
}

fn engine_config(args: &EmbeddedArgs) -> EngineConfig {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    EngineConfig {
        data_dir: PathBuf::from(&args.dir),
        shards: args.shards,
        // Pinning refuses more shards than CPUs; floating shards let a 2-core machine try more.
        placement: if args.shards <= cpus {
            Placement::Pinned
        } else {
            Placement::Unbound
        },
        topic_defaults: topic_config(args),
        auto_create_topics: false,
        default_partitions: args.load.partitions,
        spin_before_park_us: None,
    }
}

fn topic_config(args: &EmbeddedArgs) -> TopicConfig {
    TopicConfig {
        fsync: args.fsync.0,
        ..TopicConfig::default()
    }
}

/// Everything the producers of one run share.
struct Run<'a> {
    handle: &'a EngineHandle,
    partitions: Vec<TopicPartition>,
    templates: &'a [Template],
    shape: BatchShape,
    plan: Plan,
    throughput: Arc<Throughput>,
    start: Instant,
}

/// What one producer measured.
#[derive(Default)]
struct ProducerOutcome {
    latency: Latency,
    batches: u64,
    first_error: Option<String>,
}

fn drive(
    args: &EmbeddedArgs,
    handle: &EngineHandle,
    shape: &BatchShape,
    templates: &[Template],
) -> anyhow::Result<Report> {
    let load = &args.load;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("starting the producer runtime")?;
    runtime.block_on(ensure_topic(handle, args))?;
    let throughput = Arc::new(Throughput::default());
    let start = Instant::now();
    let run = Run {
        handle,
        partitions: (0..load.partitions)
            .map(|p| TopicPartition::new(load.topic.as_str(), p))
            .collect(),
        templates,
        shape: *shape,
        plan: Plan::new(load.stop(), start, shape.records as u64),
        throughput: throughput.clone(),
        start,
    };
    let progress = Progress::new(!load.json, load.stop());
    let sampler = Sampler::start(throughput.clone(), progress, start);
    let producers = (0..load.producers.max(1)).map(|i| produce(&run, load, i));
    let outcomes = runtime.block_on(futures::future::join_all(producers));
    let elapsed = start.elapsed();
    let series = sampler.stop();
    let mut latency = Latency::new();
    let mut batches = 0;
    let mut first_error = None;
    for o in outcomes {
        latency.merge(&o.latency);
        batches += o.batches;
        first_error = first_error.or(o.first_error);
    }
    Ok(Report {
        mode: "embedded",
        config: json!({
            "dir": args.dir,
            "shards": args.shards,
            "fsync": args.fsync.to_string(),
            "topic": load.topic,
            "partitions": load.partitions,
            "producers": load.producers.max(1),
            "in_flight": load.in_flight,
            "message_bytes": load.message_bytes,
            "batch_bytes": load.batch_bytes,
            "records_per_batch": shape.records,
            "count": load.count,
            "duration_secs": load.duration_secs,
            "rate": load.rate,
        }),
        elapsed,
        totals: throughput.totals(),
        batches,
        latency,
        series,
        first_error,
        consume: None,
    })
}

/// Creates the bench topic, or accepts an existing one with enough partitions.
async fn ensure_topic(handle: &EngineHandle, args: &EmbeddedArgs) -> anyhow::Result<()> {
    let load = &args.load;
    match handle
        .create_topic(&load.topic, load.partitions, topic_config(args))
        .await
    {
        Ok(_) => Ok(()),
        Err(EngineError::TopicExists(_)) => {
            let desc = handle.describe_topic(&load.topic).await?;
            anyhow::ensure!(
                desc.info.partitions >= load.partitions,
                "topic {} exists with {} partitions, fewer than --partitions {}",
                load.topic,
                desc.info.partitions,
                load.partitions
            );
            Ok(())
        }
        Err(e) => Err(e).context("creating the bench topic"),
    }
}

/// One producer: keeps up to `--in-flight` produce requests outstanding until the plan ends,
/// then waits for the outstanding ones.
async fn produce(
    run: &Run<'_>,
    load: &crate::bench::args::LoadArgs,
    index: usize,
) -> ProducerOutcome {
    let mut out = ProducerOutcome::default();
    let mut schedule = Schedule::new(
        run.start,
        load.rate,
        load.producers.max(1),
        index,
        run.shape.records as u64,
    );
    let mut in_flight = FuturesUnordered::new();
    let mut next: Option<Instant> = None;
    let mut done = false;
    let mut sent = 0usize;
    let far = Duration::from_secs(limits::DRAIN_TIMEOUT_SECS);
    loop {
        if next.is_none() && !done && in_flight.len() < load.in_flight {
            let at = schedule.next_send();
            if run.plan.claim(at) {
                next = Some(at);
            } else {
                done = true;
            }
        }
        if let Some(at) = next {
            if in_flight.len() < load.in_flight && at <= Instant::now() {
                let tp = &run.partitions[(index + sent) % run.partitions.len()];
                let batch = run.templates[sent % run.templates.len()].bytes.clone();
                in_flight.push(send(run.handle, tp, batch, at));
                sent += 1;
                next = None;
                continue;
            }
        }
        if in_flight.is_empty() && next.is_none() {
            return out;
        }
        let wake = next.filter(|_| in_flight.len() < load.in_flight);
        tokio::select! {
            biased;
            Some((at, result)) = in_flight.next(), if !in_flight.is_empty() => {
                out.latency.record(at.elapsed());
                match result {
                    Ok(()) => {
                        out.batches += 1;
                        run.throughput.produced(run.shape.records as u64, run.shape.payload_bytes());
                    }
                    Err(e) => {
                        run.throughput.error();
                        out.first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            () = tokio::time::sleep_until(wake.unwrap_or_else(|| Instant::now() + far).into()), if wake.is_some() => {}
        }
    }
}

async fn send(
    handle: &EngineHandle,
    tp: &TopicPartition,
    batch: Bytes,
    intended: Instant,
) -> (Instant, anyhow::Result<()>) {
    let result = handle
        .produce(tp, batch)
        .await
        .map(|_| ())
        .map_err(anyhow::Error::from);
    (intended, result)
}
