//! Mutated requests against the real `spindle serve`: well-formed requests of every API the
//! Kafka server answers, at every version the codec knows, are encoded, then damaged (bytes
//! flipped, a field overwritten with a huge count, the body cut short) and sent in length-prefixed
//! frames, 2 to a connection. Whatever each one gets (an error code, a closed connection), the
//! server must stay up and serve a normal client afterwards. The mutations come from a fixed
//! seed, printed, so a failure repeats; `SPINDLE_FUZZ_SEED` picks another.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Request, StrBytes};
use kafka_protocol::records::Compression;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spindle_server::Server;
use spindle_tests::{length_prefixed, request_bytes};
use spindle_tools::bench::batch::{BatchShape, Template};

mod spindle_server;

/// Damaged requests sent in all.
const MUTATIONS: usize = 10_000;
/// Requests written to one connection before it is half-closed and drained: a damaged request
/// often closes its connection, and what follows it on that connection is never read.
const PER_CONNECTION: usize = 2;
/// How long a connection is drained for its answers before it is dropped: long enough for most
/// answers, short enough that a request that waits (a JoinGroup waits a second for more members)
/// does not hold up the test. The server handles what it read either way.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(20);
/// The topic the requests name (created first, so that they reach the engine).
const TOPIC: &str = "fuzz";

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

/// Adds `request` (header and body, no length prefix) at every version the codec encodes it at.
fn encodings<R: Request>(request: &R, out: &mut Vec<Vec<u8>>) {
    for version in R::VERSIONS.min..=R::VERSIONS.max {
        out.extend(request_bytes(request, version, 7, "fuzz").map(|body| body.to_vec()));
    }
}

/// Well-formed requests of every API served, with content for the decoders to walk.
fn seeds(batch: Bytes) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let group = || GroupId(StrBytes::from_static_str("fuzz-group"));
    encodings(&ApiVersionsRequest::default(), &mut out);
    encodings(
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic()))
        ])),
        &mut out,
    );
    encodings(
        &ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(1000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch))])]),
        &mut out,
    );
    encodings(
        &FetchRequest::default()
            .with_max_wait_ms(10)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic())
                .with_partitions(vec![
                    FetchPartition::default().with_partition_max_bytes(1 << 20)
                ])]),
        &mut out,
    );
    encodings(
        &ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic())
            .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(-1)])]),
        &mut out,
    );
    encodings(
        &FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("fuzz-group")),
        &mut out,
    );
    encodings(
        &JoinGroupRequest::default()
            .with_group_id(group())
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from_static(
                    b"\x00\x01\x00\x00\x00\x01\x00\x04fuzz",
                ))]),
        &mut out,
    );
    encodings(
        &SyncGroupRequest::default()
            .with_group_id(group())
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_assignment(Bytes::from_static(b"\x00\x01\x00\x00\x00\x01"))]),
        &mut out,
    );
    encodings(
        &HeartbeatRequest::default().with_group_id(group()),
        &mut out,
    );
    encodings(
        &LeaveGroupRequest::default().with_group_id(group()),
        &mut out,
    );
    encodings(
        &OffsetCommitRequest::default()
            .with_group_id(group())
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic())
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default().with_committed_offset(1)
                ])]),
        &mut out,
    );
    encodings(
        &OffsetFetchRequest::default().with_group_id(group()),
        &mut out,
    );
    encodings(&ListGroupsRequest::default(), &mut out);
    encodings(
        &DescribeGroupsRequest::default().with_groups(vec![group()]),
        &mut out,
    );
    encodings(
        &DeleteGroupsRequest::default().with_groups_names(vec![group()]),
        &mut out,
    );
    encodings(
        &CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("fuzz-created")))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str("retention.ms"))
                .with_value(Some(StrBytes::from_static_str("1000")))])]),
        &mut out,
    );
    encodings(&DeleteTopicsRequest::default(), &mut out);
    encodings(&DescribeLogDirsRequest::default(), &mut out);
    encodings(
        &DeleteRecordsRequest::default().with_topics(vec![DeleteRecordsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("fuzz")))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(0)])]),
        &mut out,
    );
    encodings(
        &OffsetDeleteRequest::default()
            .with_group_id(group())
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("fuzz")))
                .with_partitions(vec![OffsetDeleteRequestPartition::default()])]),
        &mut out,
    );
    encodings(&CreatePartitionsRequest::default(), &mut out);
    encodings(&DescribeConfigsRequest::default(), &mut out);
    encodings(&AlterConfigsRequest::default(), &mut out);
    encodings(&IncrementalAlterConfigsRequest::default(), &mut out);
    encodings(&InitProducerIdRequest::default(), &mut out);
    encodings(&DescribeClusterRequest::default(), &mut out);
    encodings(
        &ListConfigResourcesRequest::default().with_resource_types(vec![2, 4]),
        &mut out,
    );
    out
}

/// `seed` damaged one way or another, length-prefixed. The first 8 bytes (api key, version,
/// correlation id) are kept, so the damage reaches the decoders of the API.
fn mutate(seed: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let mut body = seed.to_vec();
    let tail = body.len().saturating_sub(8).max(1);
    match rng.gen_range(0..4) {
        0 => {
            for _ in 0..rng.gen_range(1..=4) {
                let at = 8 + rng.gen_range(0..tail);
                if let Some(b) = body.get_mut(at) {
                    *b ^= rng.gen_range(1..=255u8);
                }
            }
        }
        1 => {
            // A length or count field turned huge (or negative).
            let at = 8 + rng.gen_range(0..tail);
            let huge: [u8; 4] = [0x7f, 0xff, 0xff, 0xff];
            for (i, b) in huge.iter().enumerate() {
                if let Some(slot) = body.get_mut(at + i) {
                    *slot = if rng.gen_bool(0.5) { *b } else { 0xff };
                }
            }
        }
        2 => body.truncate(8 + rng.gen_range(0..tail)),
        _ => body.extend((0..rng.gen_range(1..64)).map(|_| rng.gen::<u8>())),
    }
    length_prefixed(&body)
}

/// Writes `frames` on one connection, half-closes it and reads until the server closes it or
/// [`DRAIN_TIMEOUT`] passes without a byte; write errors (the server closed first) end the
/// writing early. Returns the bytes of answer read.
fn send(kafka: &str, frames: &[Vec<u8>]) -> usize {
    let Ok(mut stream) = TcpStream::connect(kafka) else {
        panic!("the server stopped accepting connections");
    };
    stream.set_read_timeout(Some(DRAIN_TIMEOUT)).unwrap();
    for frame in frames {
        if stream.write_all(frame).is_err() {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    let mut sink = [0u8; 64 << 10];
    let mut answered = 0;
    while let Ok(n @ 1..) = stream.read(&mut sink) {
        answered += n;
    }
    answered
}

#[test]
fn damaged_requests_of_every_api_never_take_the_server_down() {
    let server = Server::start_with("kafka-fuzz", &["--shards", "1"]);
    server.admin(&["topic", "create", TOPIC, "--partitions", "1"]);
    let shape = BatchShape::filling(4096, 10, Compression::None);
    let batch = Template::build(&shape, 1, 1_700_000_000_000).unwrap().bytes;
    let seeds = seeds(batch);
    assert!(
        seeds.len() > 100,
        "every API at its versions: {}",
        seeds.len()
    );
    // Another seed explores other damage: SPINDLE_FUZZ_SEED=<u64>.
    let rng_seed = std::env::var("SPINDLE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    eprintln!("fuzz seed {rng_seed}");
    let mut rng = StdRng::seed_from_u64(rng_seed);
    let mut frames = Vec::with_capacity(PER_CONNECTION);
    let (mut connections, mut answered) = (0, 0);
    for _ in 0..MUTATIONS {
        let seed = &seeds[rng.gen_range(0..seeds.len())];
        frames.push(mutate(seed, &mut rng));
        if frames.len() == PER_CONNECTION {
            connections += 1;
            answered += usize::from(send(&server.kafka, &frames) > 0);
            frames.clear();
        }
    }
    eprintln!(
        "{MUTATIONS} damaged requests from {} seeds on {connections} connections, {answered} of \
         which got an answer before closing",
        seeds.len()
    );

    // Still up, and a normal client is served: the topic holds what a well-formed produce wrote.
    server.admin(&["topic", "describe", TOPIC]);
    server.admin(&["topic", "create", "fuzz-after", "--partitions", "1"]);
    server.admin(&["topic", "describe", "fuzz-after"]);
}
