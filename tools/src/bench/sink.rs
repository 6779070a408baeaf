//! `spindle-bench sink`: a Kafka-protocol endpoint that acknowledges every Produce request at
//! once and keeps nothing. Pointed at it with the same flags as at a broker, `spindle-bench
//! kafka` measures what the load generator, the loopback network and the machine's scheduling
//! cost by themselves: the floor under any broker's latency on that machine, which a broker's
//! figures are read against (docs/BENCHMARKS.md).
//!
//! It serves only what the generator's producers use: ApiVersions, Metadata (this endpoint
//! leads every partition of every topic asked about, `--partitions` of them), CreateTopics
//! (every topic is created at once) and Produce (each partition acknowledged with a base offset
//! counted per connection, nothing checked or stored). An ApiVersions at a version it does not
//! serve gets Kafka's answer, UNSUPPORTED_VERSION in a v0 body listing what it serves, so a
//! newer client downgrades. Any other request closes its connection with a message. Each
//! connection is a plain thread with blocking reads, the cheapest way to receive a request and
//! answer it, so what it adds to the floor is little.

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, CreateTopicsResponse, MetadataResponse, ProduceRequest,
    ProduceResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::bench::args::SinkArgs;
use crate::bench::kafka::connection::read_frame;
use crate::bench::kafka::versions::SPOKEN;

/// The node id the sink answers as.
const NODE: BrokerId = BrokerId(0);
/// Bytes of each connection's read buffer.
const READ_BUFFER_BYTES: usize = 64 << 10;

/// The ApiVersions versions the sink serves.
const API_VERSIONS: (ApiKey, i16, i16) = (ApiKey::ApiVersions, 0, 3);

/// What the sink advertises, `(api, min, max)`: what the generator speaks, and ApiVersions.
/// Fetch and ListOffsets are among them because the generator negotiates them up front; a
/// request for them closes the connection.
fn advertised() -> impl Iterator<Item = (ApiKey, i16, i16)> {
    SPOKEN.iter().copied().chain(std::iter::once(API_VERSIONS))
}

/// Whether the sink advertises API `key` at `version`.
fn advertises(key: i16, version: i16) -> bool {
    advertised().any(|(k, min, max)| k as i16 == key && (min..=max).contains(&version))
}

/// Where the sink listens and what its metadata says, shared by its connection threads.
struct Endpoint {
    host: String,
    port: u16,
    partitions: u32,
}

/// Listens on `args.listen` and serves connections until the process is stopped.
///
/// # Errors
/// An address that cannot be bound.
pub fn run(args: &SinkArgs) -> anyhow::Result<()> {
    let listener =
        TcpListener::bind(&args.listen).with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let endpoint = Arc::new(Endpoint {
        host: addr.ip().to_string(),
        port: addr.port(),
        partitions: args.partitions.max(1),
    });
    println!("sink ready: kafka={addr}");
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!("sink: accepting a connection: {e}");
                continue;
            }
        };
        let endpoint = Arc::clone(&endpoint);
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, &endpoint) {
                eprintln!("sink: connection closed: {e:#}");
            }
        });
    }
    Ok(())
}

/// Answers one connection's requests in order until it closes.
fn serve(stream: TcpStream, endpoint: &Endpoint) -> anyhow::Result<()> {
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    let mut writer = stream.try_clone().context("cloning the socket")?;
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, stream);
    let mut next_offset = 0i64;
    loop {
        let Ok(frame) = read_frame(&mut reader) else {
            return Ok(()); // the client hung up
        };
        if let Some(correlation_id) = unsupported_api_versions(&frame) {
            let refusal = ResponseKind::ApiVersions(
                api_versions().with_error_code(ResponseError::UnsupportedVersion.code()),
            );
            let frame = encode(correlation_id, ApiKey::ApiVersions, 0, &refusal)?;
            writer.write_all(&frame).context("writing an answer")?;
            continue;
        }
        let (header, api_key, request) = decode(frame)?;
        let version = header.request_api_version;
        let response = match request {
            RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions()),
            RequestKind::Metadata(req) => {
                let topics = req.topics.unwrap_or_default();
                let names = topics.into_iter().filter_map(|t| t.name);
                ResponseKind::Metadata(metadata(endpoint, names))
            }
            RequestKind::CreateTopics(req) => {
                let names = req.topics.into_iter().map(|t| t.name);
                ResponseKind::CreateTopics(
                    CreateTopicsResponse::default().with_topics(
                        names
                            .map(|name| CreatableTopicResult::default().with_name(name))
                            .collect(),
                    ),
                )
            }
            RequestKind::Produce(req) => {
                let silent = req.acks == 0;
                let answer = acknowledge(&req, &mut next_offset);
                if silent {
                    continue;
                }
                ResponseKind::Produce(answer)
            }
            _ => bail!("{api_key:?} is not served by the sink"),
        };
        let frame = encode(header.correlation_id, api_key, version, &response)?;
        writer.write_all(&frame).context("writing an answer")?;
    }
}

/// The correlation id of an ApiVersions request at a version the sink does not serve (its
/// header may be one the sink cannot decode, but the id is always at the same place).
fn unsupported_api_versions(frame: &[u8]) -> Option<i32> {
    let &[k0, k1, v0, v1, c0, c1, c2, c3, ..] = frame else {
        return None;
    };
    let (key, version) = (i16::from_be_bytes([k0, k1]), i16::from_be_bytes([v0, v1]));
    (key == ApiKey::ApiVersions as i16 && !advertises(key, version))
        .then(|| i32::from_be_bytes([c0, c1, c2, c3]))
}

/// The header, API and body of one request frame.
fn decode(mut frame: Bytes) -> anyhow::Result<(RequestHeader, ApiKey, RequestKind)> {
    let Some(&[k0, k1, v0, v1]) = frame.get(..4) else {
        bail!("a frame of {} bytes holds no request header", frame.len());
    };
    let (key, version) = (i16::from_be_bytes([k0, k1]), i16::from_be_bytes([v0, v1]));
    let api_key = ApiKey::try_from(key).map_err(|()| anyhow::anyhow!("unknown API key {key}"))?;
    if !advertises(key, version) {
        bail!("{api_key:?} v{version} is not served by the sink");
    }
    let header = RequestHeader::decode(&mut frame, api_key.request_header_version(version))
        .context("decoding a request header")?;
    let body = RequestKind::decode(api_key, &mut frame, version)
        .with_context(|| format!("decoding a {api_key:?} v{version} request"))?;
    Ok((header, api_key, body))
}

/// One response frame, size prefix included.
fn encode(
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    response: &ResponseKind,
) -> anyhow::Result<BytesMut> {
    let header_version = api_key.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut body = BytesMut::new();
    header.encode(&mut body, header_version)?;
    response.encode(&mut body, version)?;
    let mut frame = BytesMut::with_capacity(4 + body.len());
    frame.extend_from_slice(&i32::try_from(body.len())?.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

fn api_versions() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        advertised()
            .map(|(key, min, max)| {
                ApiVersion::default()
                    .with_api_key(key as i16)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect(),
    )
}

/// Every topic asked about exists with `endpoint.partitions` partitions, all led here.
fn metadata(
    endpoint: &Endpoint,
    names: impl Iterator<Item = kafka_protocol::messages::TopicName>,
) -> MetadataResponse {
    let partitions = (0..endpoint.partitions)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(i32::try_from(p).unwrap_or(i32::MAX))
                .with_leader_id(NODE)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![NODE])
                .with_isr_nodes(vec![NODE])
        })
        .collect::<Vec<_>>();
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(NODE)
            .with_host(StrBytes::from_string(endpoint.host.clone()))
            .with_port(i32::from(endpoint.port))])
        .with_controller_id(NODE)
        .with_topics(
            names
                .map(|name| {
                    MetadataResponseTopic::default()
                        .with_name(Some(name))
                        .with_partitions(partitions.clone())
                })
                .collect(),
        )
}

/// Acknowledges every partition of `req`, each with the next base offset of the connection.
fn acknowledge(req: &ProduceRequest, next_offset: &mut i64) -> ProduceResponse {
    let topics = req
        .topic_data
        .iter()
        .map(|topic| {
            let partitions = topic
                .partition_data
                .iter()
                .map(|part| {
                    let base = *next_offset;
                    *next_offset += 1;
                    PartitionProduceResponse::default()
                        .with_index(part.index)
                        .with_base_offset(base)
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_partition_responses(partitions)
        })
        .collect();
    ProduceResponse::default().with_responses(topics)
}
