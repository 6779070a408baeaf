//! `spindle-bench grpc`: produce through the gRPC gateway with the client generated from the
//! gateway's own protos (`spindle_gateway::proto`).
//!
//! The gateway takes plain records and builds the Kafka batch itself, so the unit of work here
//! is a `Produce` call carrying one batch's worth of records for one partition (or, with
//! `--stream`, one message on a `ProduceStream`, which the gateway acknowledges in order).
//! Each producer owns one HTTP/2 channel (as a separate client process would) and keeps up to
//! `--in-flight` requests outstanding on it; all producers run as tasks on one tokio thread, through the same
//! loop as the embedded mode ([`producer_task`]), so the two modes' figures compare.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::FutureExt;
use kafka_protocol::records::Compression;
use rand::distributions::Alphanumeric;
use rand::{Rng, SeedableRng};
use serde_json::json;
use spindle_gateway::proto::admin_client::AdminClient;
use spindle_gateway::proto::producer_client::ProducerClient;
use spindle_gateway::proto::{
    ConfigEntry, CreateTopicRequest, ProduceAck, ProduceRequest, ProduceStreamRequest, Record,
};
use tonic::transport::Channel;

use crate::bench::args::GrpcArgs;
use crate::bench::batch::BatchShape;
use crate::bench::limits;
use crate::bench::producer_task::{self, ProducerOutcome, TaskSetup};
use crate::bench::progress::Progress;
use crate::bench::report::Report;
use crate::bench::schedule::Plan;
use crate::bench::throughput::{Sampler, Throughput};

/// Runs the gRPC benchmark described by `args` and prints its report.
///
/// # Errors
/// Invalid flags, an unreachable gateway, a topic that cannot be created, output files.
pub fn run(args: &GrpcArgs) -> anyhow::Result<()> {
    let load = &args.load;
    load.validate()?;
    let shape = BatchShape::filling(load.batch_bytes, load.message_bytes, Compression::None);
    let batches = record_sets(&shape, limits::TEMPLATES_PER_PRODUCER);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the client runtime")?;
    let report = runtime.block_on(drive(args, &shape, &batches))?;
    report.emit(load)
}

/// `count` sets of records shaped like `shape`, with pseudo-random text values.
fn record_sets(shape: &BatchShape, count: usize) -> Vec<Vec<Record>> {
    (0..count as u64)
        .map(|seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            (0..shape.records)
                .map(|i| Record {
                    key: Some(Bytes::from((i as u32).to_be_bytes().to_vec())),
                    value: Some(
                        (&mut rng)
                            .sample_iter(Alphanumeric)
                            .take(shape.message_bytes)
                            .collect::<Vec<u8>>()
                            .into(),
                    ),
                    headers: Vec::new(),
                    timestamp_ms: None,
                })
                .collect()
        })
        .collect()
}

/// Wraps `message` in a request carrying the bearer token, if any.
fn request<T>(message: T, token: Option<&str>) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .context("the token is not a valid header value")?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

async fn ensure_topic(args: &GrpcArgs) -> anyhow::Result<()> {
    let mut admin = AdminClient::connect(args.endpoint.clone())
        .await
        .with_context(|| format!("connecting to {}", args.endpoint))?;
    let create = CreateTopicRequest {
        name: args.load.topic.clone(),
        partitions: args.load.partitions,
        config: args
            .topic_configs
            .iter()
            .map(|(key, value)| ConfigEntry {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
    };
    match admin
        .create_topic(request(create, args.token.as_deref())?)
        .await
    {
        Ok(_) => Ok(()),
        Err(status) if status.code() == tonic::Code::AlreadyExists => Ok(()),
        Err(status) => Err(status).context("creating the bench topic"),
    }
}

async fn drive(
    args: &GrpcArgs,
    shape: &BatchShape,
    batches: &[Vec<Record>],
) -> anyhow::Result<Report> {
    let load = &args.load;
    ensure_topic(args).await?;
    let producers = load.producers.max(1);
    let clients = connect_producers(args, producers).await?;
    let throughput = Arc::new(Throughput::default());
    let start = Instant::now();
    let plan = Plan::new(load.stop(), start, shape.records as u64, load.warmup());
    let setup = TaskSetup {
        plan: &plan,
        throughput: &throughput,
        shape: *shape,
        start,
        rate: load.rate,
        producers,
        in_flight: load.in_flight,
    };
    let sampler = Sampler::start(
        throughput.clone(),
        Progress::new(!load.json, load.stop(), load.warmup()),
        plan.measure_from(),
    );
    let work = Work {
        topic: &load.topic,
        partitions: load.partitions as usize,
        batches,
        token: args.token.as_deref(),
    };
    let tasks = clients.into_iter().enumerate().map(|(i, client)| {
        if args.stream {
            stream_producer(&setup, i, client, &work).boxed_local()
        } else {
            unary_producer(&setup, i, client, &work).boxed_local()
        }
    });
    let outcomes = futures::future::join_all(tasks).await;
    let elapsed = plan.measure_from().elapsed();
    let series = sampler.stop();
    let config = load.report_config(producers, shape.records, mode_config(args));
    let outcome = ProducerOutcome::merged(outcomes);
    Ok(Report::produced(
        "grpc",
        config,
        elapsed,
        throughput.totals(),
        series,
        plan.latency_samples(),
        outcome,
    ))
}

/// One client per producer, each on an HTTP/2 channel of its own.
async fn connect_producers(
    args: &GrpcArgs,
    producers: usize,
) -> anyhow::Result<Vec<ProducerClient<Channel>>> {
    let mut clients = Vec::with_capacity(producers);
    for _ in 0..producers {
        let client = ProducerClient::connect(args.endpoint.clone())
            .await
            .with_context(|| format!("connecting to {}", args.endpoint))?
            .max_encoding_message_size(limits::BATCH_BYTES_MAX * 2);
        clients.push(client);
    }
    Ok(clients)
}

/// The report's `config` keys of this mode.
fn mode_config(args: &GrpcArgs) -> serde_json::Value {
    json!({
        "endpoint": args.endpoint,
        "stream": args.stream,
        "topic_configs": args.topic_configs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
    })
}

/// What every request of a run is made of.
struct Work<'a> {
    topic: &'a str,
    partitions: usize,
    batches: &'a [Vec<Record>],
    token: Option<&'a str>,
}

impl Work<'_> {
    /// Request `n` of producer `index`: the next batch, for the next partition.
    fn message(&self, index: usize, n: usize) -> ProduceRequest {
        ProduceRequest {
            topic: self.topic.to_owned(),
            partition: Some(((index + n) % self.partitions) as u32),
            records: self.batches[n % self.batches.len()].clone(),
        }
    }
}

/// A producer of unary `Produce` calls, `--in-flight` at a time on its channel.
async fn unary_producer(
    setup: &TaskSetup<'_>,
    index: usize,
    client: ProducerClient<Channel>,
    work: &Work<'_>,
) -> ProducerOutcome {
    producer_task::run(setup, index, |n| {
        let mut client = client.clone();
        let message = work.message(index, n);
        async move {
            client.produce(request(message, work.token)?).await?;
            Ok(())
        }
    })
    .await
}

/// A producer on one `ProduceStream`: requests go out on the stream and the gateway answers
/// them in order, so a FIFO of one-shot replies matches each acknowledgement to its request.
async fn stream_producer(
    setup: &TaskSetup<'_>,
    index: usize,
    mut client: ProducerClient<Channel>,
    work: &Work<'_>,
) -> ProducerOutcome {
    let (requests, outbound) = mpsc::unbounded::<ProduceStreamRequest>();
    let mut acks = match open_stream(&mut client, outbound, work.token).await {
        Ok(acks) => acks,
        Err(e) => {
            setup.throughput.error();
            return ProducerOutcome {
                first_error: Some(format!("{e:#}")),
                ..ProducerOutcome::default()
            };
        }
    };
    let waiting: RefCell<VecDeque<(u64, oneshot::Sender<anyhow::Result<()>>)>> = RefCell::default();
    let closed = Cell::new(false);
    let (waiting, closed) = (&waiting, &closed);
    let reader = async move {
        let ended = loop {
            match acks.message().await {
                Ok(Some(ack)) => {
                    let Some((sequence, reply)) = waiting.borrow_mut().pop_front() else {
                        break anyhow::anyhow!("an acknowledgement for no request");
                    };
                    let result = if ack.sequence != sequence {
                        Err(anyhow::anyhow!(
                            "ack {} for request {sequence}",
                            ack.sequence
                        ))
                    } else if ack.code != 0 {
                        Err(anyhow::anyhow!("code {}: {}", ack.code, ack.message))
                    } else {
                        Ok(())
                    };
                    // The producer may have stopped waiting; nothing is lost then.
                    drop(reply.send(result));
                }
                Ok(None) => break anyhow::anyhow!("the produce stream ended"),
                Err(status) => break anyhow::Error::from(status),
            }
        };
        closed.set(true);
        for (_, reply) in waiting.borrow_mut().drain(..) {
            drop(reply.send(Err(anyhow::anyhow!("{ended:#}"))));
        }
    };
    let producing = producer_task::run(setup, index, move |n| {
        let (reply, answer) = oneshot::channel();
        if !closed.get() {
            let message = ProduceStreamRequest {
                sequence: n as u64,
                request: Some(work.message(index, n)),
            };
            if requests.unbounded_send(message).is_ok() {
                waiting.borrow_mut().push_back((n as u64, reply));
            }
        }
        // A request that could not be sent drops its reply, which fails it below.
        async move {
            answer
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the produce stream is closed")))
        }
    });
    // Finishing the producer drops `requests`, which ends the stream and then the reader.
    futures::future::join(producing, reader).await.0
}

async fn open_stream(
    client: &mut ProducerClient<Channel>,
    outbound: mpsc::UnboundedReceiver<ProduceStreamRequest>,
    token: Option<&str>,
) -> anyhow::Result<tonic::Streaming<ProduceAck>> {
    let response = client
        .produce_stream(request(outbound, token)?)
        .await
        .context("opening a produce stream")?;
    Ok(response.into_inner())
}
