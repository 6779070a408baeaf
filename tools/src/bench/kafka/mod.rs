//! `spindle-bench kafka`: an open-loop load generator for any Kafka-compatible broker.
//!
//! It speaks the protocol itself (codecs from `kafka-protocol`, blocking TCP on plain threads)
//! rather than through a client library, so what it measures is the broker and the network,
//! and so the load it offers is exactly the one asked for: ApiVersions and Metadata find the
//! partition leaders ([`cluster`]), CreateTopics makes the topic if missing, then
//! `--producers` producers ([`producer`]) pipeline Produce requests and `--consumers`
//! consumers ([`consumer`]) Fetch from the start or the tail.

pub mod cluster;
pub mod connection;
pub mod consumer;
pub mod producer;
pub mod versions;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{ensure, Context};
use kafka_protocol::records::Compression;
use serde_json::json;

use crate::bench::args::{CompressionArg, KafkaArgs, StartArg};
use crate::bench::batch::{now_ms, BatchShape, RequestShape, Template};
use crate::bench::latency::Latency;
use crate::bench::limits;
use crate::bench::progress::Progress;
use crate::bench::report::{ConsumeReport, Report};
use crate::bench::schedule::Plan;
use crate::bench::throughput::{Sampler, Throughput};
use crate::transport::Security;

use self::cluster::Cluster;
use self::consumer::{ConsumeSetup, ConsumerOutcome};
use self::producer::ProduceSetup;
use crate::bench::producer_task::ProducerOutcome;

/// Runs the Kafka-protocol benchmark described by `args` and prints its report.
///
/// # Errors
/// Invalid flags, an unreachable or incompatible broker, a topic that cannot be created,
/// output files. Failed requests during the run are counted, not returned.
pub fn run(args: &KafkaArgs) -> anyhow::Result<()> {
    let load = &args.load;
    validate(args)?;
    let shape = shape(args);
    let templates = Template::build_set(&shape, limits::TEMPLATES_PER_PRODUCER)?;
    let cluster = connect(args)?;
    let start_offsets = start_offsets(args, &cluster)?;

    let throughput = Arc::new(Throughput::default());
    let start = Instant::now();
    let start_wall_ms = now_ms();
    let request = RequestShape {
        batch: shape,
        partitions: args.partitions_per_request,
    };
    let plan = Plan::new(load.stop(), start, request.records(), load.warmup());
    let producers_done = AtomicBool::new(false);
    let produce = ProduceSetup {
        cluster: &cluster,
        topic: &load.topic,
        acks: args.acks,
        timeout_ms: args.timeout_ms,
        in_flight: load.in_flight,
        producers: load.producers,
        rate: load.rate,
        request,
        templates: &templates,
        plan: &plan,
        throughput: &throughput,
        start,
        start_wall_ms,
    };
    let consume = ConsumeSetup {
        cluster: &cluster,
        topic: &load.topic,
        consumers: args.consumers,
        start_offsets: &start_offsets,
        with_producers: load.producers > 0,
        stop: load.stop(),
        producers_done: &producers_done,
        throughput: &throughput,
        start_wall_ms,
        measure_from: plan.measure_from(),
        isolation_level: args.isolation.wire(),
    };
    let sampler = Sampler::start(
        throughput.clone(),
        Progress::new(!load.json, load.stop(), load.warmup()),
        plan.measure_from(),
    );
    let (producer_outcomes, producers_elapsed, consumer_outcomes) =
        run_threads(&produce, &consume, &producers_done);
    let series = sampler.stop();
    let report = build_report(
        args,
        &shape,
        cluster.leaders.len(),
        &plan,
        producers_elapsed,
        series,
        &throughput,
        producer_outcomes,
        consumer_outcomes,
    );
    report.emit(load)
}

/// Finds the brokers that lead the topic's partitions (creating the topic if it must) and checks
/// that each producer's leader has the partitions a request names.
///
/// # Errors
/// TLS or SASL settings that cannot be used, a broker that cannot be reached or refuses the
/// topic, `--partitions-per-request` beyond what one broker leads.
fn connect(args: &KafkaArgs) -> anyhow::Result<Cluster> {
    let load = &args.load;
    let security = Security {
        tls: args.tls.client().map_err(anyhow::Error::msg)?,
        login: args.sasl.login().map_err(anyhow::Error::msg)?,
    };
    let cluster = Cluster::discover(
        &args.bootstrap,
        security,
        &load.topic,
        load.partitions,
        &args.topic_configs,
    )
    .with_context(|| format!("talking to {}", args.bootstrap))?;
    if load.producers > 0 {
        let fewest = cluster.fewest_partitions_of_a_leader();
        ensure!(
            args.partitions_per_request <= fewest,
            "--partitions-per-request {} is more than the {fewest} partitions of topic {} that a \
             producer writes (those one broker leads)",
            args.partitions_per_request,
            load.topic
        );
    }
    Ok(cluster)
}

/// Where the consumers start in each partition (`--from`: the start or the tail), by partition;
/// empty without consumers.
fn start_offsets(args: &KafkaArgs, cluster: &Cluster) -> anyhow::Result<HashMap<i32, i64>> {
    if args.consumers == 0 {
        return Ok(HashMap::new());
    }
    let partitions: Vec<i32> = (0..cluster.leaders.len() as i32).collect();
    let at = match args.from {
        StartArg::Start => -2,
        StartArg::Tail => -1,
    };
    cluster.offsets(&args.load.topic, &partitions, at)
}

/// Refuses flag combinations that cannot make a run.
fn validate(args: &KafkaArgs) -> anyhow::Result<()> {
    args.load.validate()?;
    ensure!(
        matches!(args.acks, -1..=1),
        "--acks must be 0, 1 or -1, got {}",
        args.acks
    );
    ensure!(
        args.consumers <= limits::CONSUMERS_MAX,
        "--consumers must be at most {}",
        limits::CONSUMERS_MAX
    );
    ensure!(
        (1..=limits::PARTITIONS_MAX as usize).contains(&args.partitions_per_request),
        "--partitions-per-request must be 1..={}",
        limits::PARTITIONS_MAX
    );
    ensure!(
        args.load.producers > 0 || args.consumers > 0,
        "nothing to do: --producers 0 and --consumers 0"
    );
    Ok(())
}

/// Runs every producer and consumer on a thread of its own until the plan ends; returns the
/// producers' outcomes, the measured time until the last producer finished, and the
/// consumers' outcomes (with producers, consumers stop once they have caught up after the
/// producers finished, or a drain timeout later).
fn run_threads(
    produce: &ProduceSetup<'_>,
    consume: &ConsumeSetup<'_>,
    producers_done: &AtomicBool,
) -> (
    Vec<ProducerOutcome>,
    std::time::Duration,
    Vec<ConsumerOutcome>,
) {
    std::thread::scope(|s| {
        let consumers: Vec<_> = (0..consume.consumers)
            .map(|i| s.spawn(move || consumer::run(consume, i)))
            .collect();
        let producers: Vec<_> = (0..produce.producers)
            .map(|i| s.spawn(move || producer::run(produce, i)))
            .collect();
        let produced: Vec<ProducerOutcome> = producers.into_iter().map(join_or_default).collect();
        let elapsed = produce.plan.measure_from().elapsed();
        producers_done.store(true, Ordering::Release);
        let consumed: Vec<ConsumerOutcome> = consumers.into_iter().map(join_or_default).collect();
        (produced, elapsed, consumed)
    })
}

fn join_or_default<T: Default>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle.join().unwrap_or_else(|_| {
        eprintln!("a bench thread panicked; its figures are missing");
        T::default()
    })
}

/// The batch layout: full batches, or with `--rate` and `--linger-ms` the records that arrive
/// at one producer within one linger period (as a Kafka producer would send them).
fn shape(args: &KafkaArgs) -> BatchShape {
    let load = &args.load;
    let compression = match args.compression {
        CompressionArg::None => Compression::None,
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Snappy => Compression::Snappy,
        CompressionArg::Lz4 => Compression::Lz4,
        CompressionArg::Zstd => Compression::Zstd,
    };
    let mut shape = BatchShape::filling(load.batch_bytes, load.message_bytes, compression);
    if let (Some(rate), true) = (load.rate, args.linger_ms > 0) {
        let per_linger =
            rate as f64 / load.producers.max(1) as f64 * args.linger_ms as f64 / 1000.0;
        shape.records = shape.records.min((per_linger.ceil() as usize).max(1));
    }
    shape
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    args: &KafkaArgs,
    shape: &BatchShape,
    topic_partitions: usize,
    plan: &Plan,
    elapsed: std::time::Duration,
    series: Vec<crate::bench::throughput::Sample>,
    throughput: &Throughput,
    producers: Vec<ProducerOutcome>,
    consumers: Vec<ConsumerOutcome>,
) -> Report {
    let load = &args.load;
    let start = plan.measure_from();
    let mut all = ProducerOutcome::merged(producers);
    let mut first_error = all.first_error.take();
    let consume = (args.consumers > 0).then(|| {
        let mut c = ConsumeReport {
            elapsed: std::time::Duration::ZERO,
            messages: 0,
            bytes: 0,
            e2e: Latency::new(),
        };
        for o in consumers {
            c.e2e.merge(&o.e2e);
            c.messages += o.messages;
            c.bytes += o.bytes;
            if let Some(at) = o.last_record_at {
                c.elapsed = c.elapsed.max(at.duration_since(start));
            }
            first_error = first_error.take().or(o.first_error);
        }
        c
    });
    Report {
        mode: "kafka",
        config: load.report_config(
            load.producers,
            shape.records,
            json!({
            "bootstrap": args.bootstrap,
            "acks": args.acks,
            "compression": format!("{:?}", args.compression).to_lowercase(),
            "linger_ms": args.linger_ms,
            "partitions_per_request": args.partitions_per_request,
            "topic_configs": args.topic_configs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "consumers": args.consumers,
            "from": format!("{:?}", args.from).to_lowercase(),
            "topic_partitions": topic_partitions,
        }),
        ),
        elapsed,
        totals: throughput.totals(),
        batches: all.batches,
        latency: all.latency,
        send_delay: all.send_delay,
        latency_series: plan.latency_samples(),
        series,
        first_error,
        consume,
        syncs: None,
    }
}
