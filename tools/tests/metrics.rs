//! End-to-end test of the admin HTTP endpoint: the real `spindle serve` on free loopback ports,
//! a known Kafka workload sent with the tools' own Kafka client (raw v2 batches, one Produce
//! request each, then a simple offset commit), and `/metrics`, `/health`, `/ready` read over
//! plain HTTP. The counters must match the workload exactly.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, FetchRequest, GroupId, OffsetCommitRequest, ProduceRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use spindle_gateway::proto::admin_client::AdminClient;
use spindle_gateway::proto::{DescribeTopicRequest, ListTopicsRequest};
use spindle_server::Server;
use spindle_tools::admin::client::Client;
use spindle_tools::bench::batch::{BatchShape, Template};

mod spindle_server;

/// Produce requests sent, one batch each.
const BATCHES: usize = 5;
/// Records per batch.
const RECORDS_PER_BATCH: usize = 40;
/// Bytes of each record's value.
const VALUE_BYTES: usize = 100;
/// Records produced in all.
const RECORDS: u64 = (BATCHES * RECORDS_PER_BATCH) as u64;
/// The offset the group commits.
const COMMITTED: i64 = 73;
/// Produce v9: names topics, and the client and server both speak it.
const PRODUCE_VERSION: i16 = 9;
/// OffsetCommit v8: generation -1 is a simple commit.
const OFFSET_COMMIT_VERSION: i16 = 8;

/// A node whose every acknowledged produce is synced, so the fsync count is known.
fn start_server() -> Server {
    let server = Server::start_with("metrics", &["--fsync-policy", "batch"]);
    assert!(
        server.ready.contains(&format!("admin={}", server.admin)),
        "ready line names the admin address: {}",
        server.ready
    );
    server
}

impl Server {
    /// `GET path` over plain HTTP/1.1: the status code and the body.
    fn get(&self, path: &str) -> (u16, String) {
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.admin
        );
        self.send(head.as_bytes())
    }

    /// Sends `request` as it is: the status code and the body of the answer.
    fn send(&self, request: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.admin).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_owned())
    }
}

/// The sum of every sample of `name` whose labels include all of `labels`.
fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text, name, labels).iter().sum()
}

/// The values of every sample of `name` whose labels include all of `labels`.
fn samples(text: &str, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse().unwrap())
        })
        .collect()
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

fn create_topic(client: &mut Client, topic: &str, partitions: i32) {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(1)])
        .with_timeout_ms(10_000);
    let response = client.bootstrap().call(&request).unwrap();
    assert_eq!(response.topics[0].error_code, 0, "CreateTopics");
}

/// Sends every batch in its own Produce request (acks=1); returns the bytes sent in batches.
fn produce(client: &mut Client, topic: &str, batches: &[Template]) -> u64 {
    let mut bytes = 0;
    for batch in batches {
        bytes += batch.bytes.len() as u64;
        let error_code = produce_one(client, topic, 0, batch.bytes.clone());
        assert_eq!(error_code, 0, "Produce");
    }
    bytes
}

/// Fetches a partition of `topic` from offset 0 in one request; returns the record batches.
fn fetch_all(client: &mut Client, topic: &str, partition: i32) -> Bytes {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let response = client.bootstrap().call(&request).unwrap();
    let part = &response.responses[0].partitions[0];
    assert_eq!(part.error_code, 0, "Fetch");
    part.records.clone().unwrap_or_default()
}

/// One Produce request of one batch; returns the partition's error code.
fn produce_one(client: &mut Client, topic: &str, partition: i32, records: Bytes) -> i16 {
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])]);
    let response = client
        .bootstrap()
        .call_at(&request, PRODUCE_VERSION)
        .unwrap();
    response.responses[0].partition_responses[0].error_code
}

fn commit(client: &mut Client, group: &str, topic: &str, offset: i64) {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::default())
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])]);
    let response = client
        .coordinator(group)
        .unwrap()
        .call_at(&request, OFFSET_COMMIT_VERSION)
        .unwrap();
    assert_eq!(
        response.topics[0].partitions[0].error_code, 0,
        "OffsetCommit"
    );
}

#[test]
fn health_ready_and_unknown_paths() {
    let server = start_server();
    assert_eq!(server.get("/health"), (200, "alive\n".to_owned()));
    assert_eq!(server.get("/ready"), (200, "ready\n".to_owned()));
    assert_eq!(server.get("/nope").0, 404);
    assert_eq!(server.get("/metrics?x=1").0, 200);
    assert_eq!(server.send(b"POST /metrics HTTP/1.1\r\n\r\n").0, 405);
    assert_eq!(server.send(b"\x00\x01 nonsense\r\n\r\n").0, 400);
    let oversize = format!(
        "GET /metrics HTTP/1.1\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(16 * 1024)
    );
    assert_eq!(server.send(oversize.as_bytes()).0, 431);
}

#[test]
fn metrics_count_a_known_workload_exactly() {
    let server = start_server();
    let topic = "metrics-topic".to_owned();
    let group = "metrics-group";
    let mut client = Client::connect(&server.kafka).unwrap();
    create_topic(&mut client, &topic, 1);

    let shape = BatchShape {
        records: RECORDS_PER_BATCH,
        message_bytes: VALUE_BYTES,
        compression: Compression::None,
    };
    let batches = Template::build_set(&shape, BATCHES).unwrap();
    let batch_bytes = produce(&mut client, &topic, &batches);
    assert_eq!(
        fetch_all(&mut client, &topic, 0).len() as u64,
        batch_bytes,
        "Fetch from 0"
    );

    // Before any commit only the workload has appended records.
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        sum(&text, "spindle_records_appended_total", &[]),
        RECORDS as f64
    );
    assert_eq!(
        sum(&text, "spindle_bytes_appended_total", &[]),
        batch_bytes as f64
    );
    // Each Produce request carried one partition: its batches were patched in place, not copied.
    assert_eq!(sum(&text, "spindle_bytes_copied_total", &[]), 0.0);
    let tp = [("topic", topic.as_str()), ("partition", "0")];
    assert_eq!(
        samples(&text, "spindle_partition_high_watermark", &tp),
        vec![RECORDS as f64]
    );
    assert_eq!(
        samples(&text, "spindle_partition_log_start_offset", &tp),
        vec![0.0]
    );
    assert!(samples(&text, "spindle_partition_size_bytes", &tp)[0] >= batch_bytes as f64);
    let produce_api = [("api", "Produce")];
    assert!(sum(&text, "spindle_kafka_requests_total", &produce_api) >= BATCHES as f64);
    assert_eq!(
        sum(&text, "spindle_kafka_request_errors_total", &produce_api),
        0.0
    );
    assert_eq!(
        sum(
            &text,
            "spindle_kafka_request_duration_seconds_bucket",
            &[("api", "Produce"), ("le", "+Inf")]
        ),
        sum(&text, "spindle_kafka_requests_total", &produce_api)
    );
    assert!(sum(&text, "spindle_kafka_connections_open", &[]) >= 1.0);
    assert!(sum(&text, "spindle_fsyncs_total", &[]) >= BATCHES as f64);
    assert!(sum(&text, "spindle_fsync_seconds_total", &[]) > 0.0);
    // Each batch was a produce of its own, acknowledged after its write round.
    assert_eq!(
        sum(&text, "spindle_append_duration_seconds_count", &[]),
        BATCHES as f64
    );
    assert_eq!(
        sum(
            &text,
            "spindle_append_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        BATCHES as f64
    );
    assert!(sum(&text, "spindle_append_duration_seconds_sum", &[]) > 0.0);
    // Every acknowledged batch was written by a round, each round timed.
    assert!(sum(&text, "spindle_log_write_duration_seconds_count", &[]) >= BATCHES as f64);
    assert!(sum(&text, "spindle_log_write_duration_seconds_sum", &[]) > 0.0);
    // The Fetch read everything just written: from the tail cache, none from the disk.
    assert_eq!(
        sum(&text, "spindle_read_bytes_total", &[("source", "cache")]),
        batch_bytes as f64
    );
    assert_eq!(
        sum(&text, "spindle_read_bytes_total", &[("source", "disk")]),
        0.0
    );
    assert!(sum(&text, "spindle_kafka_bytes_received_total", &[]) > batch_bytes as f64);
    assert!(sum(&text, "spindle_kafka_bytes_sent_total", &[]) > 0.0);
    // The topic's partition and the __consumer_offsets partitions (16, or one per shard).
    let shards = samples(&text, "spindle_partitions_owned", &[]).len();
    assert!(shards >= 1);
    // Every shard reports the segments its logs rolled into, by file (none rolled here).
    for file in ["new", "recycled"] {
        let started = samples(&text, "spindle_segments_started_total", &[("file", file)]);
        assert_eq!(started, vec![0.0; shards], "{file}");
    }
    let offsets_partitions = spindle_engine::limits::OFFSETS_PARTITIONS_MIN.max(shards);
    assert_eq!(
        sum(&text, "spindle_partitions_owned", &[]),
        (offsets_partitions + 1) as f64
    );

    commit(&mut client, group, &topic, COMMITTED);
    let (_, text) = server.get("/metrics");
    let gtp = [
        ("group", group),
        ("topic", topic.as_str()),
        ("partition", "0"),
    ];
    assert_eq!(
        samples(&text, "spindle_group_committed_offset", &gtp),
        vec![COMMITTED as f64]
    );
    assert_eq!(
        samples(&text, "spindle_group_lag", &gtp),
        vec![(RECORDS as i64 - COMMITTED) as f64]
    );
    // The commit is one record in __consumer_offsets.
    assert_eq!(
        sum(&text, "spindle_records_appended_total", &[]),
        (RECORDS + 1) as f64
    );

    // A produce to a partition that does not exist is answered with an error code: one error.
    let refused = produce_one(&mut client, &topic, 7, batches[0].bytes.clone());
    assert_ne!(refused, 0);
    let (_, text) = server.get("/metrics");
    assert_eq!(
        sum(&text, "spindle_kafka_request_errors_total", &produce_api),
        1.0
    );
    assert_eq!(
        sum(&text, "spindle_records_appended_total", &[]),
        (RECORDS + 1) as f64
    );
}

#[test]
fn a_produce_request_for_several_partitions_copies_only_the_smaller_shares() {
    let server = start_server();
    let topic = "several-partitions";
    let mut client = Client::connect(&server.kafka).unwrap();
    create_topic(&mut client, topic, 3);
    let shape = BatchShape {
        records: RECORDS_PER_BATCH,
        message_bytes: VALUE_BYTES,
        compression: Compression::None,
    };
    let sent = Template::build_set(&shape, 5).unwrap();
    // What the Java client sends: one request, each partition's batches back to back; partition
    // 0 gets three of the five, more than half the request.
    let shares: [(i32, Vec<&Template>); 3] = [
        (0, vec![&sent[0], &sent[1], &sent[2]]),
        (1, vec![&sent[3]]),
        (2, vec![&sent[4]]),
    ];
    let partition_data = shares
        .iter()
        .map(|(index, batches)| {
            let records: Vec<u8> = batches.iter().flat_map(|b| b.bytes.to_vec()).collect();
            PartitionProduceData::default()
                .with_index(*index)
                .with_records(Some(Bytes::from(records)))
        })
        .collect();
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(partition_data)]);
    let response = client
        .bootstrap()
        .call_at(&request, PRODUCE_VERSION)
        .unwrap();
    for answer in &response.responses[0].partition_responses {
        assert_eq!(
            (answer.error_code, answer.base_offset),
            (0, 0),
            "partition {}",
            answer.index
        );
    }

    let (_, text) = server.get("/metrics");
    let total: usize = sent.iter().map(|b| b.bytes.len()).sum();
    assert_eq!(
        sum(&text, "spindle_bytes_appended_total", &[]),
        total as f64
    );
    // Partition 0's batches were cut out of the request's frame and patched there; the two
    // smaller shares were copied, so that they do not keep the whole frame in memory.
    let smaller = sent[3].bytes.len() + sent[4].bytes.len();
    assert_eq!(
        sum(&text, "spindle_bytes_copied_total", &[]),
        smaller as f64
    );

    // Each partition holds its own batches, offsets assigned, bytes otherwise as sent.
    for (index, batches) in &shares {
        let stored = fetch_all(&mut client, topic, *index);
        let mut rest = &stored[..];
        let mut base = 0;
        for batch in batches {
            let (header, len) = spindle_log::batch::validate(rest).unwrap();
            assert_eq!(header.base_offset(), base, "partition {index}");
            let (got, want) = (&rest[..len], &batch.bytes[..]);
            // Base offset (0..8) and leader epoch (12..16) are the broker's.
            assert_eq!(
                (&got[8..12], &got[16..]),
                (&want[8..12], &want[16..]),
                "partition {index}"
            );
            base += RECORDS_PER_BATCH as i64;
            rest = &rest[len..];
        }
        assert!(rest.is_empty(), "partition {index} holds only its batches");
    }
}

#[test]
fn grpc_calls_are_counted_by_method() {
    let server = start_server();
    let endpoint = format!("http://{}", server.grpc);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut admin = AdminClient::connect(endpoint).await.unwrap();
        admin
            .list_topics(ListTopicsRequest {
                include_internal: false,
            })
            .await
            .unwrap();
        let missing = admin
            .describe_topic(DescribeTopicRequest {
                name: "no-such-topic".to_owned(),
            })
            .await;
        assert!(missing.is_err());
    });
    let (_, text) = server.get("/metrics");
    let list = [("method", "/spindle.v1.Admin/ListTopics")];
    let describe = [("method", "/spindle.v1.Admin/DescribeTopic")];
    assert_eq!(
        samples(&text, "spindle_grpc_requests_total", &list),
        vec![1.0]
    );
    assert_eq!(
        samples(&text, "spindle_grpc_request_errors_total", &list),
        vec![0.0]
    );
    assert_eq!(
        samples(&text, "spindle_grpc_requests_total", &describe),
        vec![1.0]
    );
    assert_eq!(
        samples(&text, "spindle_grpc_request_errors_total", &describe),
        vec![1.0]
    );
    let inf = [("method", "/spindle.v1.Admin/ListTopics"), ("le", "+Inf")];
    assert_eq!(
        samples(&text, "spindle_grpc_request_duration_seconds_bucket", &inf),
        vec![1.0]
    );
}

#[test]
fn sasl_answers_are_counted_with_the_time_they_took() {
    use spindle_tools::sasl::{SaslLogin, SaslMechanism};
    use spindle_tools::transport::Security;

    let server = Server::start_sasl("metrics-sasl", "SCRAM-SHA-256");
    let login = SaslLogin {
        mechanism: SaslMechanism::ScramSha256,
        username: "app".to_owned(),
        password: "app-token".to_owned(),
    };
    let security = Security {
        tls: None,
        login: Some(login),
    };
    Client::connect_as(&server.kafka, security).expect("logs in with SCRAM");
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200);
    let sasl = [("api", "SaslAuthenticate")];
    // SCRAM takes two SaslAuthenticate round trips, each answered by the connection's reader.
    assert!(
        sum(&text, "spindle_kafka_requests_total", &sasl) >= 2.0,
        "{text}"
    );
    assert!(
        sum(&text, "spindle_kafka_request_duration_seconds_sum", &sasl) > 0.0,
        "{text}"
    );
}
