//! `spindle-bench embedded`: produce into an engine started in this process.
//!
//! This is the ceiling the network modes are compared with: pre-built batches go straight into
//! [`EngineHandle::produce`] with no sockets or codecs in between. Each produce hands over a
//! fresh copy of its batch, as an application producing new data does and as the Kafka mode's
//! freshly encoded requests do, so the engine may patch it in place; a shared template would
//! make every write round copy it instead. The producers
//! are async tasks on one tokio thread (the engine's shards own the other cores, so more
//! driver threads would only steal their CPU); each keeps up to `--in-flight` produce requests
//! outstanding, and the handle's futures wake that thread when a shard answers. With
//! `--producers-on-shards` each producer is instead a task on the shard that owns its first
//! partition and produces through that shard, as the Kafka server's connections do: no other
//! thread is woken between an acknowledgement and the next produce.
//!
//! Producer `i` writes its batches to partitions `i, i + 1, …` round robin, so any number of
//! producers spreads evenly over any number of partitions (and hence shards).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use kafka_protocol::records::Compression;
use serde_json::json;
use spindle_engine::{
    Engine, EngineConfig, EngineError, EngineHandle, Placement, ShardId, TopicConfig,
    TopicPartition,
};

use crate::bench::args::EmbeddedArgs;
use crate::bench::batch::{BatchShape, Template};
use crate::bench::limits;
use crate::bench::producer_task::{self, ProducerOutcome, TaskSetup};
use crate::bench::progress::Progress;
use crate::bench::report::Report;
use crate::bench::schedule::Plan;
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
    let engine = Engine::start(engine_config(args)?).context("starting the engine")?;
    let outcome = drive(args, &engine.handle(), &shape, &templates);
    let shutdown = engine.shutdown().context("shutting the engine down");
    let report = outcome?;
    shutdown?;
    report.emit(&args.load)
}

fn engine_config(args: &EmbeddedArgs) -> anyhow::Result<EngineConfig> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(EngineConfig {
        data_dir: PathBuf::from(&args.dir),
        shards: args.shards,
        // Pinning refuses more shards than CPUs; floating shards let a 2-core machine try more.
        placement: if args.shards <= cpus {
            Placement::Pinned
        } else {
            Placement::Unbound
        },
        cpuset: None,
        topic_defaults: topic_config(args)?,
        auto_create_topics: false,
        default_partitions: args.load.partitions,
        spin_before_park_us: args.spin_before_park_us,
        shard_memory_bytes: spindle_engine::limits::SHARD_MEMORY_BYTES_DEFAULT,
        ..EngineConfig::default()
    })
}

fn topic_config(args: &EmbeddedArgs) -> anyhow::Result<TopicConfig> {
    let mut config = TopicConfig::default();
    for (key, value) in &args.topic_configs {
        config
            .set(key, value)
            .with_context(|| format!("--topic-config {key}={value}"))?;
    }
    config.fsync = args.fsync.0;
    Ok(config)
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
    let partitions: Vec<TopicPartition> = (0..load.partitions)
        .map(|p| TopicPartition::new(load.topic.as_str(), p))
        .collect();
    let plan = Arc::new(Plan::new(
        load.stop(),
        start,
        shape.records as u64,
        load.warmup(),
    ));
    let setup = TaskSetup {
        plan: &plan,
        throughput: &throughput,
        shape: *shape,
        start,
        rate: load.rate,
        producers: load.producers.max(1),
        in_flight: load.in_flight,
    };
    let progress = Progress::new(!load.json, load.stop(), load.warmup());
    let sampler = Sampler::start(throughput.clone(), progress, plan.measure_from());
    let producers = async {
        if args.producers_on_shards {
            on_shards(handle, &setup, (&plan, &throughput), &partitions, templates).await
        } else {
            on_this_thread(handle, &setup, &partitions, templates).await
        }
    };
    // Syncs are counted from the end of the warm-up, as the batches are.
    let syncs_at_start = async {
        async_io::Timer::at(plan.measure_from()).await;
        syncs_so_far(handle).await
    };
    let (outcomes, syncs_at_start) =
        runtime.block_on(futures::future::join(producers, syncs_at_start));
    let outcomes = outcomes?;
    let syncs = runtime
        .block_on(syncs_so_far(handle))?
        .saturating_sub(syncs_at_start?);
    let elapsed = plan.measure_from().elapsed();
    let series = sampler.stop();
    let config = load.report_config(setup.producers, shape.records, mode_config(args));
    let outcome = ProducerOutcome::merged(outcomes);
    Ok(Report {
        syncs: (syncs > 0).then_some(syncs),
        ..Report::produced(
            "embedded",
            config,
            elapsed,
            throughput.totals(),
            series,
            plan.latency_samples(),
            outcome,
        )
    })
}

/// The producers as tasks of this thread, producing through the handle.
async fn on_this_thread(
    handle: &EngineHandle,
    setup: &TaskSetup<'_>,
    partitions: &[TopicPartition],
    templates: &[Template],
) -> anyhow::Result<Vec<ProducerOutcome>> {
    let producers = (0..setup.producers).map(|i| {
        producer_task::run(setup, i, move |n| {
            let tp = &partitions[(i + n) % partitions.len()];
            let batch = Bytes::copy_from_slice(&templates[n % templates.len()].bytes);
            async move {
                handle
                    .produce(tp, batch)
                    .await
                    .map(|_| ())
                    .map_err(anyhow::Error::from)
            }
        })
    });
    Ok(futures::future::join_all(producers).await)
}

/// Each producer as a task on the shard that owns its first partition, producing through that
/// shard (which forwards to the owners of its other partitions).
async fn on_shards(
    handle: &EngineHandle,
    setup: &TaskSetup<'_>,
    (plan, throughput): (&Arc<Plan>, &Arc<Throughput>),
    partitions: &[TopicPartition],
    templates: &[Template],
) -> anyhow::Result<Vec<ProducerOutcome>> {
    let partitions: Arc<[TopicPartition]> = partitions.into();
    let templates: Arc<[Template]> = templates.into();
    let mut producers = Vec::with_capacity(setup.producers);
    for i in 0..setup.producers {
        let first = partitions[i % partitions.len()].clone();
        let owner = handle
            .run_on(
                ShardId(0),
                move |shard| async move { shard.owner_of(&first) },
            )
            .await?
            .context("the bench topic's partition has no owner")?;
        let (partitions, templates) = (partitions.clone(), templates.clone());
        let (plan, throughput) = (plan.clone(), throughput.clone());
        let (shape, start, rate, count, in_flight) = (
            setup.shape,
            setup.start,
            setup.rate,
            setup.producers,
            setup.in_flight,
        );
        producers.push(handle.run_on(owner, move |shard| async move {
            let setup = TaskSetup {
                plan: &plan,
                throughput: &throughput,
                shape,
                start,
                rate,
                producers: count,
                in_flight,
            };
            producer_task::run(&setup, i, |n| {
                let tp = &partitions[(i + n) % partitions.len()];
                let batch = Bytes::copy_from_slice(&templates[n % templates.len()].bytes);
                let shard = &shard;
                async move {
                    shard
                        .produce(tp, batch)
                        .await
                        .map(|_| ())
                        .map_err(anyhow::Error::from)
                }
            })
            .await
        }));
    }
    let outcomes = futures::future::join_all(producers).await;
    outcomes
        .into_iter()
        .map(|o| o.map_err(anyhow::Error::from))
        .collect()
}

/// The report's `config` keys of this mode.
fn mode_config(args: &EmbeddedArgs) -> serde_json::Value {
    json!({
        "dir": args.dir,
        "shards": args.shards,
        "fsync": args.fsync.to_string(),
        "spin_before_park_us": args.spin_before_park_us,
        "producers_on_shards": args.producers_on_shards,
        "topic_configs": args.topic_configs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
    })
}

/// Syncs the engine's shards have made since start (durable write rounds and fdatasyncs).
async fn syncs_so_far(handle: &EngineHandle) -> anyhow::Result<u64> {
    let scrape = spindle_engine::metrics::gather(handle)
        .await
        .context("reading the engine's counters")?;
    Ok(scrape.shards.iter().map(|s| s.logs.syncs).sum())
}

/// Creates the bench topic, or accepts an existing one with enough partitions.
async fn ensure_topic(handle: &EngineHandle, args: &EmbeddedArgs) -> anyhow::Result<()> {
    let load = &args.load;
    match handle
        .create_topic(&load.topic, load.partitions, topic_config(args)?)
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
