//! The Kafka server on a real engine, spoken to over real sockets with hand-built frames: what
//! the protocol demands of framing, versions, ordering and bad input, and one produce/fetch
//! round trip. (Real third-party clients are exercised by the end-to-end suites in `tests/`.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    FetchRequest, FetchResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, RequestHeader, RequestKind, ResponseHeader, SyncGroupRequest,
    SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use spindle_engine::{Engine, EngineConfig, Placement};
use spindle_net::kafka::{self, KafkaConfig};
use spindle_tests::{length_prefixed, request_bytes};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A running engine with the Kafka server on every shard.
struct Node {
    engine: Option<Engine>,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start() -> Node {
        Node::start_with(2, |_| {})
    }

    /// A node of `shards` shards whose Kafka config `tweak` adjusts.
    fn start_with(shards: usize, tweak: impl FnOnce(&mut KafkaConfig)) -> Node {
        Node::start_configured(shards, tweak, |_| {})
    }

    /// A node of `shards` shards whose Kafka and engine configs the tweaks adjust.
    fn start_configured(
        shards: usize,
        tweak: impl FnOnce(&mut KafkaConfig),
        tweak_engine: impl FnOnce(&mut EngineConfig),
    ) -> Node {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let reservation = kafka::reserve_listen_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = reservation.addr();
        let mut config = KafkaConfig::new(addr);
        tweak(&mut config);
        let config = Arc::new(config);
        let (tx, rx) = std::sync::mpsc::channel();
        let mut engine_config = EngineConfig {
            data_dir: dir.path().to_path_buf(),
            shards,
            placement: Placement::Unbound,
            ..EngineConfig::default()
        };
        tweak_engine(&mut engine_config);
        let engine = Engine::start_with_services(engine_config, move |shard| {
            let count = shard.shard_count();
            tx.send(kafka::start(shard, Arc::clone(&config)).map(|_| count))
                .unwrap();
        })
        .unwrap();
        let count = rx.recv_timeout(IO_TIMEOUT).unwrap().unwrap();
        for _ in 1..count {
            rx.recv_timeout(IO_TIMEOUT).unwrap().unwrap();
        }
        Node {
            engine: Some(engine),
            addr,
            _dir: dir,
        }
    }

    /// Kafka connections each shard holds open.
    fn open_connections(&self) -> Vec<u64> {
        let handle = self.engine.as_ref().expect("running").handle();
        (0..handle.shard_count())
            .map(|i| {
                let on = handle.run_on(spindle_engine::ShardId(i as u32), |shard| async move {
                    shard.metrics().connections_open()
                });
                futures::executor::block_on(on).expect("shard answers")
            })
            .collect()
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            engine.shutdown().unwrap();
        }
    }
}

fn frame<R: Request>(version: i16, correlation_id: i32, req: &R) -> Vec<u8> {
    let body = request_bytes(req, version, correlation_id, "kafka-wire-test")
        .unwrap_or_else(|| panic!("{} v{version} encodes", R::KEY));
    length_prefixed(&body)
}

fn read_frame(stream: &mut TcpStream) -> Option<Bytes> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(Bytes::from(body))
}

fn call<R: Request>(stream: &mut TcpStream, version: i16, req: &R) -> R::Response {
    stream.write_all(&frame(version, 7, req)).unwrap();
    let mut resp = read_frame(stream).expect("an answer");
    let header = ResponseHeader::decode(&mut resp, R::Response::header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 7);
    R::Response::decode(&mut resp, version).unwrap()
}

/// Whether the server closed the connection: end of stream, or a reset (a server that closes a
/// socket with unread bytes in it sends RST instead of FIN). One read decides: reading again
/// after a reset would see end of stream.
fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1];
    // A read that a signal interrupts (EINTR) says nothing about the connection: retry it.
    let outcome = loop {
        match stream.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    match outcome {
        Ok(0) => true,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ) =>
        {
            true
        }
        other => {
            eprintln!("the connection still reads: {other:?}");
            false
        }
    }
}

#[test]
fn api_versions_advertises_the_data_and_group_apis() {
    let node = Node::start();
    let mut conn = node.connect();
    let resp: ApiVersionsResponse = call(&mut conn, 3, &ApiVersionsRequest::default());
    assert_eq!(resp.error_code, 0);
    let range = |key: ApiKey| {
        resp.api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| (k.min_version, k.max_version))
    };
    assert_eq!(range(ApiKey::Produce).map(|r| r.0), Some(0));
    assert!(range(ApiKey::Fetch).is_some_and(|r| r.0 <= 4 && r.1 >= 11));
    assert!(range(ApiKey::JoinGroup).is_some());
    // Advertised from v0 for older librdkafka, served at v1 only.
    assert_eq!(range(ApiKey::SaslHandshake), Some((0, 1)));
    assert_eq!(range(ApiKey::SaslAuthenticate), Some((0, 2)));
    // The transactional APIs, at the versions before KIP-890's broker-side verification.
    assert_eq!(range(ApiKey::AddPartitionsToTxn), Some((0, 3)));
    assert_eq!(range(ApiKey::EndTxn), Some((0, 3)));
    // An operator's view of transactions (kafka-transactions.sh).
    assert_eq!(range(ApiKey::WriteTxnMarkers), Some((1, 1)));
    assert_eq!(range(ApiKey::ListTransactions), Some((0, 2)));
    assert_eq!(range(ApiKey::DescribeProducers), Some((0, 0)));
    // KIP-848's consumer groups.
    assert_eq!(range(ApiKey::ConsumerGroupHeartbeat), Some((0, 1)));
    assert_eq!(range(ApiKey::ConsumerGroupDescribe), Some((0, 1)));
    // Replica administration of a one-node cluster.
    assert_eq!(range(ApiKey::ElectLeaders), Some((0, 2)));
    assert_eq!(range(ApiKey::AlterPartitionReassignments), Some((0, 1)));
    assert_eq!(range(ApiKey::ListPartitionReassignments), Some((0, 0)));
    // Client quotas and SCRAM credentials, read-only.
    assert_eq!(range(ApiKey::DescribeClientQuotas), Some((0, 1)));
    assert_eq!(range(ApiKey::AlterClientQuotas), Some((0, 1)));
    assert_eq!(range(ApiKey::DescribeUserScramCredentials), Some((0, 0)));
    assert_eq!(range(ApiKey::AlterUserScramCredentials), Some((0, 0)));
}

#[test]
fn api_versions_at_an_unknown_version_is_answered_in_v0_with_the_ranges() {
    let node = Node::start();
    let mut conn = node.connect();
    let mut body = BytesMut::new();
    body.put_i16(ApiKey::ApiVersions as i16);
    body.put_i16(77);
    body.put_i32(42);
    body.put_i16(-1); // null client id, and nothing the server could parse after it
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    conn.write_all(&out).unwrap();
    let mut resp = read_frame(&mut conn).unwrap();
    assert_eq!(resp.get_i32(), 42);
    let body = ApiVersionsResponse::decode(&mut resp, 0).unwrap();
    assert_eq!(body.error_code, 35);
    assert!(body
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::ApiVersions as i16));
}

#[test]
fn bad_input_closes_that_connection_only() {
    let node = Node::start();
    let mut healthy = node.connect();
    let bad_inputs: Vec<Vec<u8>> = vec![
        i32::MAX.to_be_bytes().to_vec(), // oversize length
        (-5i32).to_be_bytes().to_vec(),  // negative length
        vec![0, 0, 0, 12, 0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0], // unknown API key 32639
        vec![0, 0, 0, 10, 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff], // Metadata v1 with no body
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), // not Kafka at all
    ];
    for input in bad_inputs {
        let mut conn = node.connect();
        conn.write_all(&input).unwrap();
        assert!(
            closed(&mut conn),
            "input {input:?} left the connection open"
        );
    }
    // A truncated frame: the peer gives up half-way.
    let mut conn = node.connect();
    conn.write_all(&[0, 0, 0, 100, 0, 18, 0, 3]).unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed(&mut conn));

    let resp: ApiVersionsResponse = call(&mut healthy, 3, &ApiVersionsRequest::default());
    assert_eq!(resp.error_code, 0);
}

#[test]
fn a_request_other_than_produce_too_large_to_decode_is_refused_before_its_body() {
    use spindle_net::limits::DECODED_BYTES_PER_REQUEST_BYTE;
    let node = Node::start();
    // The default shard memory's request share is 128 MiB: 8 MiB is the most for ListOffsets.
    let len = (128 << 20) / DECODED_BYTES_PER_REQUEST_BYTE + 1;
    let header = |key: ApiKey| {
        let mut wire = (len as i32).to_be_bytes().to_vec();
        wire.extend_from_slice(&(key as i16).to_be_bytes());
        wire
    };
    let mut refused = node.connect();
    refused.write_all(&header(ApiKey::ListOffsets)).unwrap();
    assert!(closed(&mut refused), "closed without waiting for the body");
    // A Produce request that large is within the limits: the server waits for its body.
    let mut produce = node.connect();
    produce.write_all(&header(ApiKey::Produce)).unwrap();
    produce
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0u8; 1];
    let waited = produce.read(&mut byte).unwrap_err();
    assert!(
        matches!(
            waited.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{waited}"
    );
    // Everyone else is served.
    let mut conn = node.connect();
    let versions: ApiVersionsResponse = call(&mut conn, 3, &ApiVersionsRequest::default());
    assert_eq!(versions.error_code, 0);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let node = Node::start();
    let mut conn = node.connect();
    let mut wire = Vec::new();
    for id in 0..20 {
        if id % 2 == 0 {
            wire.extend(frame(3, id, &ApiVersionsRequest::default()));
        } else {
            wire.extend(frame(
                9,
                id,
                &MetadataRequest::default().with_topics(Some(vec![])),
            ));
        }
    }
    conn.write_all(&wire).unwrap();
    for id in 0..20 {
        let mut resp = read_frame(&mut conn).unwrap();
        let header_version = if id % 2 == 0 { 0 } else { 1 };
        let header = ResponseHeader::decode(&mut resp, header_version).unwrap();
        assert_eq!(header.correlation_id, id);
    }
}

fn batch(values: &[&str]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Offsets and sequences advance together, so the encoder makes one batch.
            sequence: i as i32,
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.freeze()
}

/// Creates topic `name` with `partitions` partitions through CreateTopics v5.
fn create_topic(conn: &mut TcpStream, name: &TopicName, partitions: i32) {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    let created: CreateTopicsResponse = call(
        conn,
        5,
        &CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
            .with_name(name.clone())
            .with_num_partitions(partitions)
            .with_replication_factor(1)]),
    );
    assert_eq!(
        created.topics[0].error_code, 0,
        "{:?}",
        created.topics[0].error_message
    );
}

/// Produces `records` to one partition with acks=1 through Produce v7 and checks it succeeded.
fn produce_one(conn: &mut TcpStream, name: &TopicName, partition: i32, records: Bytes) {
    assert_eq!(produce_to(conn, name, partition, records), 0);
}

/// Produces `records` to one partition with acks=1 through Produce v7; the partition's error
/// code.
fn produce_to(conn: &mut TcpStream, name: &TopicName, partition: i32, records: Bytes) -> i16 {
    produce_answer(conn, name, partition, records).responses[0].partition_responses[0].error_code
}

/// Produces `records` to one partition with acks=1 through Produce v7; the answer.
fn produce_answer(
    conn: &mut TcpStream,
    name: &TopicName,
    partition: i32,
    records: Bytes,
) -> ProduceResponse {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    call(
        conn,
        7,
        &ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name.clone())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(records))])]),
    )
}

/// A client quota is the node's: connections of the client on both shards of a two-shard node
/// get its rate between them, not each shard's worth of it. Twelve connections (all on one
/// shard only about once in 2,000 runs, when this test cannot tell) produce 8 KiB batches for
/// three seconds against 256 KiB/s.
#[test]
fn a_quota_is_shared_by_a_clients_connections_on_every_shard() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use spindle_net::kafka::ClientQuota;
    const RATE: u64 = 256 * 1024;
    const WINDOW: Duration = Duration::from_secs(3);
    let node = Node::start_with(2, |config| {
        config.quotas = vec![ClientQuota {
            user: None,
            client_id: Some("kafka-wire-test".to_owned()),
            producer_byte_rate: Some(RATE),
            consumer_byte_rate: None,
        }];
    });
    let topic = TopicName(StrBytes::from_static_str("quoted"));
    create_topic(&mut node.connect(), &topic, 2);
    let value = "q".repeat(8 * 1024);
    let request = |partition| {
        frame(
            7,
            1,
            &ProduceRequest::default()
                .with_acks(1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(topic.clone())
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(batch(&[&value])))])]),
        )
    };
    let batch_bytes = value.len() as u64;
    // At least twelve connections, and more until both shards hold some (the kernel deals
    // them by a hash of the address pair): with all of them on one shard there would be
    // nothing to share, and the test could not fail.
    let mut conns: Vec<TcpStream> = (0..12).map(|_| node.connect()).collect();
    let settled_by = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        // Until the count is ours alone: every connection accepted, the topic's one closed.
        let open = node.open_connections();
        let settled = open.iter().sum::<u64>() == conns.len() as u64;
        if settled && open.iter().all(|n| *n > 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < settled_by && conns.len() < 64,
            "connections by shard {open:?} after opening {}",
            conns.len()
        );
        if settled {
            conns.push(node.connect());
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let deadline = std::time::Instant::now() + WINDOW;
    let acknowledged: u64 = std::thread::scope(|scope| {
        let producers: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(i, mut conn)| {
                let wire = request(i as i32 % 2);
                scope.spawn(move || {
                    let mut bytes = 0u64;
                    loop {
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        if left.is_zero() {
                            return bytes;
                        }
                        // A throttled connection is not read until its debt is paid: wait no
                        // longer than the window.
                        conn.set_read_timeout(Some(left)).unwrap();
                        conn.write_all(&wire).unwrap();
                        if read_frame(&mut conn).is_none() || std::time::Instant::now() > deadline {
                            return bytes;
                        }
                        bytes += batch_bytes;
                    }
                })
            })
            .collect();
        producers.into_iter().map(|p| p.join().unwrap()).sum()
    });
    // Once the shards share their charges: the first second's worth (taken on each shard before
    // the first exchange) and the rate over the window, with some slack for requests admitted
    // before their charges arrive. Each shard on its own would let through twice the rate.
    let shared_at_most = 2 * RATE + RATE * WINDOW.as_secs() + RATE / 2;
    assert!(
        acknowledged <= shared_at_most,
        "{acknowledged} bytes acknowledged in {WINDOW:?}, at most {shared_at_most} expected"
    );
    assert!(
        acknowledged >= RATE * WINDOW.as_secs() / 2,
        "{acknowledged} bytes: the quota slowed the client far below its rate"
    );
}

#[test]
fn quotas_altered_at_run_time_are_in_force_on_every_shard_until_removed() {
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
    use kafka_protocol::messages::{
        AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
        DescribeClientQuotasResponse,
    };
    let node = Node::start_with(2, |_| {});
    let topic = TopicName(StrBytes::from_static_str("altered-quota"));
    create_topic(&mut node.connect(), &topic, 1);
    let text = |s: &str| StrBytes::from_string(s.to_owned());
    let entry = |parts: &[(&str, Option<&str>)], ops: Vec<OpData>| {
        EntryData::default()
            .with_entity(
                parts
                    .iter()
                    .map(|&(kind, name)| {
                        EntityData::default()
                            .with_entity_type(text(kind))
                            .with_entity_name(name.map(text))
                    })
                    .collect(),
            )
            .with_ops(ops)
    };
    let set = |key: &str, value: f64| OpData::default().with_key(text(key)).with_value(value);
    let remove = |key: &str| OpData::default().with_key(text(key)).with_remove(true);
    let alter = |conn: &mut TcpStream, entries: Vec<EntryData>, validate_only: bool| {
        let answer: AlterClientQuotasResponse = call(
            conn,
            1,
            &AlterClientQuotasRequest::default()
                .with_entries(entries)
                .with_validate_only(validate_only),
        );
        answer
            .entries
            .iter()
            .map(|e| {
                (
                    e.error_code,
                    e.error_message.as_ref().map(|m| m.to_string()),
                )
            })
            .collect::<Vec<_>>()
    };
    let described = |conn: &mut TcpStream| {
        let answer: DescribeClientQuotasResponse =
            call(conn, 1, &DescribeClientQuotasRequest::default());
        let mut entries: Vec<(String, Vec<(String, f64)>)> = answer
            .entries
            .unwrap_or_default()
            .iter()
            .map(|e| {
                let entity = e
                    .entity
                    .iter()
                    .map(|p| {
                        format!(
                            "{}={}",
                            p.entity_type.as_str(),
                            p.entity_name.as_deref().unwrap_or("<default>")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                let values = e
                    .values
                    .iter()
                    .map(|v| (v.key.to_string(), v.value))
                    .collect();
                (entity, values)
            })
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    };
    let mut conn = node.connect();
    // What cannot be kept is refused entry by entry, with the reason; the rest is made.
    let answers = alter(
        &mut conn,
        vec![
            entry(
                &[("client-id", Some("kafka-wire-test"))],
                vec![set("producer_byte_rate", 1000.0)],
            ),
            entry(&[("user", None)], vec![set("producer_byte_rate", 1000.0)]),
            entry(
                &[("client-id", Some("x"))],
                vec![set("request_percentage", 50.0)],
            ),
            entry(
                &[("client-id", Some("y"))],
                vec![set("consumer_byte_rate", 0.5)],
            ),
            entry(
                &[("ip", Some("10.0.0.1"))],
                vec![set("producer_byte_rate", 1.0)],
            ),
        ],
        false,
    );
    let invalid = ResponseError::InvalidRequest.code();
    assert_eq!(answers[0], (0, None));
    for (answer, reason) in answers[1..].iter().zip([
        "default user",
        "request_percentage",
        "whole number",
        "entity type",
    ]) {
        assert_eq!(answer.0, invalid, "{answer:?}");
        assert!(
            answer.1.as_deref().unwrap_or_default().contains(reason),
            "{answer:?}"
        );
    }
    // Validated only: answered, not made.
    let answers = alter(
        &mut conn,
        vec![entry(
            &[("client-id", Some("dry-run"))],
            vec![set("producer_byte_rate", 5.0)],
        )],
        true,
    );
    assert_eq!(answers, [(0, None)]);
    let expected = vec![(
        "client-id=kafka-wire-test".to_owned(),
        vec![("producer_byte_rate".to_owned(), 1000.0)],
    )];
    // In force on every shard: connections until both shards hold some, each asked.
    let mut conns: Vec<TcpStream> = (0..4).map(|_| node.connect()).collect();
    let settled_by = std::time::Instant::now() + Duration::from_secs(10);
    while !node.open_connections().iter().all(|n| *n > 0) {
        assert!(
            std::time::Instant::now() < settled_by && conns.len() < 64,
            "one shard holds every connection"
        );
        conns.push(node.connect());
    }
    for conn in &mut conns {
        assert_eq!(described(conn), expected);
    }
    // And it slows the client: 8 KiB against 1000 bytes a second.
    let produce = |conn: &mut TcpStream| {
        produce_answer(conn, &topic, 0, batch(&[&"q".repeat(8 * 1024)])).throttle_time_ms
    };
    let mut producer = node.connect();
    assert!(produce(&mut producer) > 0, "over the altered rate");
    // Removing the entity's only rate leaves it without a quota.
    let answers = alter(
        &mut conn,
        vec![entry(
            &[("client-id", Some("kafka-wire-test"))],
            vec![remove("producer_byte_rate")],
        )],
        false,
    );
    assert_eq!(answers, [(0, None)]);
    for conn in &mut conns {
        assert_eq!(described(conn), vec![]);
    }
    let mut unthrottled = node.connect();
    assert_eq!(produce(&mut unthrottled), 0, "no quota left");
}

#[test]
fn produce_fetch_and_list_offsets_round_trip() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};

    let node = Node::start();
    let mut conn = node.connect();
    let name = TopicName(StrBytes::from_static_str("round-trip"));
    create_topic(&mut conn, &name, 3);

    let meta: MetadataResponse = call(&mut conn, 9, &MetadataRequest::default().with_topics(None));
    let topic = meta
        .topics
        .iter()
        .find(|t| t.name.as_ref() == Some(&name))
        .unwrap();
    assert_eq!(topic.partitions.len(), 3);
    assert_eq!(meta.brokers[0].port, i32::from(node.addr.port()));

    let produced: ProduceResponse = call(
        &mut conn,
        7,
        &ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name.clone())
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(1)
                        .with_records(Some(batch(&["a", "b", "c"]))),
                    PartitionProduceData::default()
                        .with_index(9)
                        .with_records(Some(batch(&["x"]))),
                ])]),
    );
    let parts = &produced.responses[0].partition_responses;
    assert_eq!((parts[0].error_code, parts[0].base_offset), (0, 0));
    assert_eq!(parts[1].error_code, 3, "partition 9 does not exist");

    let fetched: FetchResponse = call(
        &mut conn,
        11,
        &FetchRequest::default()
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name.clone())
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(1)
                    .with_fetch_offset(1)
                    .with_partition_max_bytes(1 << 20)])]),
    );
    let part = &fetched.responses[0].partitions[0];
    assert_eq!((part.error_code, part.high_watermark), (0, 3));
    let mut records = part.records.clone().unwrap();
    let sets = RecordBatchDecoder::decode_all(&mut records).unwrap();
    let values: Vec<_> = sets
        .iter()
        .flat_map(|s| s.records.iter())
        .map(|r| r.value.clone().unwrap())
        .collect();
    assert_eq!(
        values,
        vec![Bytes::from("a"), Bytes::from("b"), Bytes::from("c")]
    );

    // From v13 a Fetch names topics by the id Metadata reported; an id no topic has is
    // UNKNOWN_TOPIC_ID.
    assert!(topic.topic_id.is_nil(), "Metadata v9 reports no id...");
    let by_id = |id: uuid::Uuid| {
        FetchRequest::default()
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic_id(id)
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(1)
                    .with_partition_max_bytes(1 << 20)])])
    };
    let meta: MetadataResponse = call(&mut conn, 12, &MetadataRequest::default().with_topics(None));
    let id = meta
        .topics
        .iter()
        .find(|t| t.name.as_ref() == Some(&name))
        .unwrap()
        .topic_id;
    assert!(!id.is_nil(), "...and v10+ does");
    let fetched: FetchResponse = call(&mut conn, 16, &by_id(id));
    let topic_answer = &fetched.responses[0];
    assert_eq!(topic_answer.topic_id, id);
    let part = &topic_answer.partitions[0];
    assert_eq!((part.error_code, part.high_watermark), (0, 3));
    let mut records = part.records.clone().unwrap();
    assert_eq!(
        RecordBatchDecoder::decode_all(&mut records).unwrap().len(),
        1
    );
    let unknown: FetchResponse = call(&mut conn, 13, &by_id(uuid::Uuid::from_u128(7)));
    assert_eq!(
        unknown.responses[0].partitions[0].error_code,
        ResponseError::UnknownTopicId.code()
    );

    let listed: ListOffsetsResponse = call(
        &mut conn,
        5,
        &ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
            .with_name(name)
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(1)
                .with_timestamp(-1)])]),
    );
    assert_eq!(listed.topics[0].partitions[0].offset, 3);
}

#[test]
fn a_leader_epoch_ends_at_the_log_end_and_other_epochs_are_answered_as_kafka_answers_them() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

    let node = Node::start();
    let mut conn = node.connect();
    let name = TopicName(StrBytes::from_static_str("epochs"));
    create_topic(&mut conn, &name, 1);
    let produced: ProduceResponse = call(
        &mut conn,
        7,
        &ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name.clone())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(&["a", "b", "c"])))])]),
    );
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);

    // (partition, epoch asked, current epoch) -> (error, epoch, end offset)
    let cases = [
        ((0, 0, -1), (0, 0, 3)),
        ((0, 0, 0), (0, 0, 3)),
        ((0, 5, 0), (0, -1, -1)),
        ((0, -1, 0), (0, -1, -1)),
        (
            (0, 0, 1),
            (ResponseError::UnknownLeaderEpoch.code(), -1, -1),
        ),
        (
            (0, 0, -2),
            (ResponseError::FencedLeaderEpoch.code(), -1, -1),
        ),
        (
            (7, 0, -1),
            (ResponseError::UnknownTopicOrPartition.code(), -1, -1),
        ),
    ];
    let partitions = cases
        .iter()
        .map(|&((partition, epoch, current), _)| {
            OffsetForLeaderPartition::default()
                .with_partition(partition)
                .with_leader_epoch(epoch)
                .with_current_leader_epoch(current)
        })
        .collect();
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(name.clone())
            .with_partitions(partitions)]);
    for version in 2..=4 {
        let answer: OffsetForLeaderEpochResponse = call(&mut conn, version, &request);
        let got: Vec<_> = answer.topics[0]
            .partitions
            .iter()
            .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
            .collect();
        let want: Vec<_> = cases.iter().map(|&(_, answer)| answer).collect();
        assert_eq!(got, want, "v{version}");
    }

    // Fetch and ListOffsets check the client's current epoch the same way.
    let fetch = |current| {
        FetchRequest::default()
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name.clone())
                .with_partitions(vec![FetchPartition::default()
                    .with_current_leader_epoch(current)
                    .with_partition_max_bytes(1 << 20)])])
    };
    let stale: FetchResponse = call(&mut conn, 11, &fetch(1));
    let part = &stale.responses[0].partitions[0];
    assert_eq!(part.error_code, ResponseError::UnknownLeaderEpoch.code());
    let current: FetchResponse = call(&mut conn, 11, &fetch(0));
    let part = &current.responses[0].partitions[0];
    assert_eq!((part.error_code, part.high_watermark), (0, 3));
    let mut records = part.records.clone().unwrap();
    let sets = RecordBatchDecoder::decode_all(&mut records).unwrap();
    assert!(
        sets.iter()
            .flat_map(|s| &s.records)
            .all(|r| r.partition_leader_epoch == 0),
        "stored batches carry the epoch"
    );
    let list = |current| {
        ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
            .with_name(name.clone())
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_current_leader_epoch(current)
                .with_timestamp(-1)])])
    };
    let listed: ListOffsetsResponse = call(&mut conn, 4, &list(2));
    let part = &listed.topics[0].partitions[0];
    assert_eq!(part.error_code, ResponseError::UnknownLeaderEpoch.code());
    let listed: ListOffsetsResponse = call(&mut conn, 4, &list(0));
    let part = &listed.topics[0].partitions[0];
    assert_eq!((part.error_code, part.offset, part.leader_epoch), (0, 3, 0));
}

/// A request of every served API at `version`, naming topic `topic` where one is needed.
fn request_for(key: ApiKey, version: i16, topic: &TopicName, step: i32) -> Option<RequestKind> {
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::incremental_alter_configs_request as incremental;
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::*;

    let group = || GroupId(StrBytes::from_static_str("versions-group"));
    let text = |s: &'static str| StrBytes::from_static_str(s);
    let kind = match key {
        ApiKey::Produce => RequestKind::Produce(
            ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(topic.clone())
                    // Two partitions, as most clients send them: one frame cut in two.
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(batch(&["v"]))),
                        PartitionProduceData::default()
                            .with_index(1)
                            .with_records(Some(batch(&["w", "x"]))),
                    ])]),
        ),
        ApiKey::Fetch => {
            RequestKind::Fetch(FetchRequest::default().with_max_bytes(1 << 20).with_topics(
                vec![FetchTopic::default()
                    .with_topic(topic.clone())
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition_max_bytes(1 << 20)])],
            ))
        }
        ApiKey::ListOffsets => {
            RequestKind::ListOffsets(ListOffsetsRequest::default().with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(topic.clone())
                    .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(-2)]),
            ]))
        }
        ApiKey::OffsetForLeaderEpoch => {
            use kafka_protocol::messages::offset_for_leader_epoch_request::{
                OffsetForLeaderPartition, OffsetForLeaderTopic,
            };
            RequestKind::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default().with_topics(
                vec![OffsetForLeaderTopic::default()
                    .with_topic(topic.clone())
                    .with_partitions(vec![OffsetForLeaderPartition::default()])],
            ))
        }
        ApiKey::Metadata => {
            let req = MetadataRequest::default().with_topics((version == 0).then(Vec::new));
            RequestKind::Metadata(if version >= 8 {
                req.with_include_topic_authorized_operations(true)
                    .with_include_cluster_authorized_operations(version <= 10)
            } else {
                req
            })
        }
        // Without SASL on the listener both are answered ILLEGAL_SASL_STATE.
        ApiKey::SaslHandshake => RequestKind::SaslHandshake(
            kafka_protocol::messages::SaslHandshakeRequest::default().with_mechanism(text("PLAIN")),
        ),
        ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate(
            kafka_protocol::messages::SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from_static(b"\0user\0password")),
        ),
        ApiKey::ApiVersions => RequestKind::ApiVersions(if version >= 3 {
            ApiVersionsRequest::default()
                .with_client_software_name(text("wire-test"))
                .with_client_software_version(text("1"))
        } else {
            ApiVersionsRequest::default()
        }),
        ApiKey::CreateTopics => RequestKind::CreateTopics(
            CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(format!("created-{step}"))))
                .with_num_partitions(-1)
                .with_replication_factor(-1)]),
        ),
        ApiKey::DeleteTopics => {
            let name = TopicName(StrBytes::from_string(format!("created-{}", step - 1)));
            RequestKind::DeleteTopics(if version >= 6 {
                DeleteTopicsRequest::default()
                    .with_topics(vec![DeleteTopicState::default().with_name(Some(name))])
            } else {
                DeleteTopicsRequest::default().with_topic_names(vec![name])
            })
        }
        ApiKey::DescribeLogDirs => {
            RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default().with_topics(Some(vec![
                describe_log_dirs_request::DescribableLogDirTopic::default()
                    .with_topic(topic.clone())
                    .with_partitions(vec![0]),
            ])))
        }
        // Deleting below the log start keeps every record the later steps read.
        ApiKey::DeleteRecords => {
            RequestKind::DeleteRecords(DeleteRecordsRequest::default().with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default()
                    .with_name(topic.clone())
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default()
                            .with_partition_index(0)
                            .with_offset(0),
                    ]),
            ]))
        }
        ApiKey::InitProducerId => RequestKind::InitProducerId(InitProducerIdRequest::default()),
        ApiKey::DescribeConfigs => {
            RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(topic.0.clone()),
                DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(text("0")),
            ]))
        }
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(
            AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(topic.0.clone())
                .with_configs(vec![AlterableConfig::default()
                    .with_name(text("retention.ms"))
                    .with_value(Some(text("86400000")))])]),
        ),
        ApiKey::CreatePartitions => RequestKind::CreatePartitions(
            CreatePartitionsRequest::default().with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic.clone())
                .with_count(1 + step)]),
        ),
        ApiKey::IncrementalAlterConfigs => RequestKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(topic.0.clone())
                    .with_configs(vec![incremental::AlterableConfig::default()
                        .with_name(text("retention.bytes"))
                        .with_config_operation(0)
                        .with_value(Some(text("1000000")))]),
            ]),
        ),
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(
            DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
        ),
        ApiKey::ListConfigResources => {
            RequestKind::ListConfigResources(ListConfigResourcesRequest::default())
        }
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(if version >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![text("versions-group")])
        } else {
            FindCoordinatorRequest::default().with_key(text("versions-group"))
        }),
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::DescribeGroups => {
            RequestKind::DescribeGroups(DescribeGroupsRequest::default().with_groups(vec![group()]))
        }
        ApiKey::Heartbeat => RequestKind::Heartbeat(
            HeartbeatRequest::default()
                .with_group_id(group())
                .with_member_id(text("nobody")),
        ),
        ApiKey::OffsetFetch if version < 8 => {
            RequestKind::OffsetFetch(OffsetFetchRequest::default().with_group_id(group()))
        }
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![group()]),
        ),
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(
            OffsetDeleteRequest::default()
                .with_group_id(group())
                .with_topics(vec![
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(topic.clone())
                        .with_partitions(vec![
                            offset_delete_request::OffsetDeleteRequestPartition::default(),
                        ]),
                ]),
        ),
        // Join/Sync park until the group settles, and the rest need a live member: the group
        // coordinator's own tests cover them.
        _ => return None,
    };
    Some(kind)
}

#[test]
fn every_served_version_answers_and_decodes() {
    use kafka_protocol::messages::ResponseKind;

    let node = Node::start();
    let mut conn = node.connect();
    let versions: ApiVersionsResponse = call(&mut conn, 3, &ApiVersionsRequest::default());
    let topic = TopicName(StrBytes::from_static_str("versions"));
    let mut created: CreateTopicsResponse = call(
        &mut conn,
        5,
        &CreateTopicsRequest::default().with_topics(vec![
            kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                .with_name(topic.clone())
                .with_num_partitions(2)
                .with_replication_factor(1),
        ]),
    );
    assert_eq!(created.topics.remove(0).error_code, 0);
    let mut step = 0;
    let mut covered = 0;
    for range in &versions.api_keys {
        let key = ApiKey::try_from(range.api_key).unwrap();
        // Produce below v3 and SaslHandshake v0 are advertised for librdkafka's sake but
        // refused.
        let min = match key {
            ApiKey::Produce => 3,
            ApiKey::SaslHandshake => 1,
            _ => range.min_version,
        };
        for version in min..=range.max_version {
            step += 1;
            let Some(request) = request_for(key, version, &topic, step) else {
                continue;
            };
            let mut body = BytesMut::new();
            RequestHeader::default()
                .with_request_api_key(range.api_key)
                .with_request_api_version(version)
                .with_correlation_id(step)
                .encode(&mut body, key.request_header_version(version))
                .unwrap();
            request.encode(&mut body, version).unwrap();
            let mut wire = (body.len() as i32).to_be_bytes().to_vec();
            wire.extend_from_slice(&body);
            conn.write_all(&wire).unwrap();
            let mut resp =
                read_frame(&mut conn).unwrap_or_else(|| panic!("no answer to {key:?} v{version}"));
            let header =
                ResponseHeader::decode(&mut resp, key.response_header_version(version)).unwrap();
            assert_eq!(header.correlation_id, step, "{key:?} v{version}");
            let decoded = ResponseKind::decode(key, &mut resp, version)
                .unwrap_or_else(|e| panic!("{key:?} v{version}: {e:#}"));
            if let ResponseKind::Produce(p) = &decoded {
                let codes: Vec<i16> = p.responses[0]
                    .partition_responses
                    .iter()
                    .map(|r| r.error_code)
                    .collect();
                assert_eq!(codes, vec![0, 0], "v{version}");
            }
            covered += 1;
        }
    }
    assert!(covered > 80, "only {covered} API versions exercised");
}

#[test]
fn connections_beyond_the_per_shard_limit_are_closed_and_a_freed_slot_is_reused() {
    let node = Node::start_with(1, |c| c.max_connections_per_shard = 2);
    let mut first = node.connect();
    let mut second = node.connect();
    for conn in [&mut first, &mut second] {
        let resp: ApiVersionsResponse = call(conn, 3, &ApiVersionsRequest::default());
        assert_eq!(resp.error_code, 0);
    }
    let mut third = node.connect();
    third
        .write_all(&frame(3, 7, &ApiVersionsRequest::default()))
        .unwrap();
    assert!(closed(&mut third), "a third connection is refused");
    let resp: ApiVersionsResponse = call(&mut second, 3, &ApiVersionsRequest::default());
    assert_eq!(
        resp.error_code, 0,
        "the connections within the limit still work"
    );

    drop(first);
    // The shard frees the slot once it reads the end of the first connection.
    let served = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        let mut conn = node.connect();
        conn.write_all(&frame(3, 7, &ApiVersionsRequest::default()))
            .is_ok()
            && read_frame(&mut conn).is_some()
    });
    assert!(served, "a connection after one closed is served");
}

#[test]
fn the_server_keeps_its_connections_alive_with_tcp_keepalive() {
    let node = Node::start_with(1, |_| {});
    let mut conn = node.connect();
    let resp: ApiVersionsResponse = call(&mut conn, 3, &ApiVersionsRequest::default());
    assert_eq!(resp.error_code, 0);
    // The server's end of the connection, as the kernel lists it: local address the node's,
    // remote the client's. An idle socket with SO_KEEPALIVE has its keepalive timer armed
    // (timer kind 2 in /proc/net/tcp); without it, no timer (0).
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        ),
        SocketAddr::V6(_) => panic!("the test node listens on IPv4"),
    };
    let (server, client) = (hex(node.addr), hex(conn.local_addr().unwrap()));
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let timer = table
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 5 && f[1] == server && f[2] == client)
        .map(|f| f[5].split(':').next().unwrap_or_default().to_owned())
        .expect("the server's socket is listed");
    assert_eq!(timer, "02", "keepalive timer armed on the server's socket");
}

#[test]
fn fetch_answers_are_capped_by_the_server_whatever_the_client_asks() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};

    const CAP: usize = 4096;
    let node = Node::start_with(1, |c| c.fetch_max_bytes = CAP);
    let mut conn = node.connect();
    let name = TopicName(StrBytes::from_static_str("capped"));
    create_topic(&mut conn, &name, 1);
    // Offset 0: one batch larger than the cap; offsets 1..=8: batches of about 1 KiB.
    let large = "L".repeat(CAP + 1000);
    let small = "s".repeat(1000);
    let values: Vec<&str> = std::iter::once(large.as_str())
        .chain(std::iter::repeat_n(small.as_str(), 8))
        .collect();
    for value in values {
        produce_one(&mut conn, &name, 0, batch(&[value]));
    }
    let fetch = |conn: &mut TcpStream, offset: i64| -> (Bytes, Vec<i64>) {
        let fetched: FetchResponse = call(
            conn,
            11,
            &FetchRequest::default()
                .with_max_wait_ms(0)
                .with_max_bytes(i32::MAX)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(name.clone())
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(i32::MAX)])]),
        );
        let part = &fetched.responses[0].partitions[0];
        assert_eq!(part.error_code, 0);
        let records = part.records.clone().unwrap();
        let offsets = RecordBatchDecoder::decode_all(&mut records.clone())
            .unwrap()
            .iter()
            .flat_map(|s| s.records.iter().map(|r| r.offset))
            .collect();
        (records, offsets)
    };
    // A first batch larger than the cap still comes whole, and alone.
    let (records, offsets) = fetch(&mut conn, 0);
    assert!(records.len() > CAP);
    assert_eq!(offsets, vec![0]);
    // Otherwise the answer stops within the cap: three of the eight small batches fit.
    let (records, offsets) = fetch(&mut conn, 1);
    assert!(records.len() <= CAP, "{} bytes", records.len());
    assert_eq!(offsets, vec![1, 2, 3]);
}

#[test]
fn a_fetch_over_many_partitions_fills_its_budget_in_request_order_and_reports_every_watermark() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};

    const PARTITIONS: i32 = 20;
    let node = Node::start();
    let mut conn = node.connect();
    let name = TopicName(StrBytes::from_static_str("budgeted"));
    create_topic(&mut conn, &name, PARTITIONS);
    // Partition p holds p % 3 + 1 batches of about 1 KiB each.
    let value = "v".repeat(1000);
    let one = batch(&[value.as_str()]);
    for p in 0..PARTITIONS {
        for _ in 0..=p % 3 {
            produce_one(&mut conn, &name, p, one.clone());
        }
    }
    // Room for three and a half batches: partition 0's one, partition 1's two, none after.
    let budget = one.len() * 7 / 2;
    let fetched: FetchResponse = call(
        &mut conn,
        11,
        &FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(i32::try_from(budget).unwrap())
            .with_topics(vec![FetchTopic::default()
                .with_topic(name.clone())
                .with_partitions(
                    (0..PARTITIONS)
                        .map(|p| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_fetch_offset(0)
                                .with_partition_max_bytes(1 << 20)
                        })
                        .collect(),
                )]),
    );
    let parts = &fetched.responses[0].partitions;
    assert_eq!(parts.len(), PARTITIONS as usize);
    for (p, part) in (0..PARTITIONS).zip(parts) {
        assert_eq!(part.partition_index, p);
        assert_eq!(part.error_code, 0, "partition {p}");
        assert_eq!(part.high_watermark, i64::from(p % 3 + 1), "partition {p}");
        assert_eq!(part.log_start_offset, 0, "partition {p}");
        let records = part.records.clone().unwrap_or_default();
        let batches = if records.is_empty() {
            0
        } else {
            RecordBatchDecoder::decode_all(&mut records.clone())
                .unwrap()
                .len()
        };
        let expected = match p {
            0 => 1,
            1 => 2,
            _ => 0,
        };
        assert_eq!(batches, expected, "partition {p}");
    }
}

#[test]
fn a_setting_out_of_range_stops_the_listener_from_starting() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut config = KafkaConfig::new("127.0.0.1:0".parse().unwrap());
    config.frame_body_timeout_ms = 0;
    let config = Arc::new(config);
    let (tx, rx) = std::sync::mpsc::channel();
    let engine_config = EngineConfig {
        data_dir: dir.path().to_path_buf(),
        shards: 1,
        placement: Placement::Unbound,
        ..EngineConfig::default()
    };
    let engine = Engine::start_with_services(engine_config, move |shard| {
        tx.send(kafka::start(shard, Arc::clone(&config)).map(|_| ()))
            .unwrap();
    })
    .unwrap();
    let err = rx.recv_timeout(IO_TIMEOUT).unwrap().unwrap_err();
    assert!(err.to_string().contains("frame_body_timeout_ms"), "{err}");
    engine.shutdown().unwrap();
}

/// A JoinGroup of the static member `instance` with no member id (a first start or a restart).
fn static_join(conn: &mut TcpStream, version: i16, instance: &'static str) -> JoinGroupResponse {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("static-group")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_group_instance_id(Some(StrBytes::from_static_str(instance)))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from_static(b"subscription"))]);
    let joined: JoinGroupResponse = call(conn, version, &req);
    assert_eq!(joined.error_code, 0, "JoinGroup v{version}");
    joined
}

/// A SyncGroup of the static member "i-a"; returns the assignment it is given.
fn static_sync(conn: &mut TcpStream, joined: &JoinGroupResponse, assignment: &[u8]) -> Bytes {
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    let assignments = if assignment.is_empty() {
        Vec::new()
    } else {
        vec![SyncGroupRequestAssignment::default()
            .with_member_id(joined.member_id.clone())
            .with_assignment(Bytes::copy_from_slice(assignment))]
    };
    let req = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("static-group")))
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone())
        .with_group_instance_id(Some(StrBytes::from_static_str("i-a")))
        .with_assignments(assignments);
    let synced: SyncGroupResponse = call(conn, 3, &req);
    assert_eq!(synced.error_code, 0);
    synced.assignment
}

#[test]
fn a_static_leader_restarting_into_a_stable_group_keeps_its_assignment_without_a_rebalance() {
    let node = Node::start();
    let mut conn = node.connect();
    let first = static_join(&mut conn, 9, "i-a");
    assert_eq!((first.generation_id, first.skip_assignment), (1, false));
    assert_eq!(first.leader, first.member_id);
    assert_eq!(
        static_sync(&mut conn, &first, b"p0"),
        Bytes::from_static(b"p0")
    );

    // Restarted (a new connection, no member id): the same generation, a new member id that
    // leads, told at v9 to skip the assignment, and given the assignment it had.
    let mut conn = node.connect();
    let again = static_join(&mut conn, 9, "i-a");
    assert_eq!((again.generation_id, again.skip_assignment), (1, true));
    assert_ne!(again.member_id, first.member_id);
    assert_eq!(again.leader, again.member_id);
    assert_eq!(again.members.len(), 1);
    assert_eq!(
        static_sync(&mut conn, &again, b""),
        Bytes::from_static(b"p0")
    );

    // Before v9 the answer cannot say so; the leader assigns again and keeps what it had.
    let old = static_join(&mut conn, 5, "i-a");
    assert_eq!(old.generation_id, 1);
    assert_eq!(
        static_sync(&mut conn, &old, b"other"),
        Bytes::from_static(b"p0")
    );

    // The ids the instance had before are fenced.
    let heartbeat: HeartbeatResponse = call(
        &mut conn,
        3,
        &HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("static-group")))
            .with_generation_id(1)
            .with_member_id(first.member_id.clone())
            .with_group_instance_id(Some(StrBytes::from_static_str("i-a"))),
    );
    assert_eq!(heartbeat.error_code, ResponseError::FencedInstanceId.code());
}

/// A node whose Kafka listener asks for SASL/PLAIN, with four principals: `admin` (admin on
/// every topic), `ops` (the same, groups `ops-*`), `writer` (read and write on `orders`,
/// transactional ids `orders-tx-*`, groups `orders-*`) and `reader` (read on every topic).
fn sasl_node() -> Node {
    use spindle_engine::access::{Credentials, Grant, Operation, Principal, TopicPattern};
    let grant = |pattern: &str, ops: &[Operation]| Grant {
        pattern: TopicPattern::parse(pattern).unwrap(),
        ops: ops.to_vec(),
    };
    let credentials = Credentials::new([
        (
            "admin-secret".to_owned(),
            Principal::new("admin", vec![grant("*", &[Operation::Admin])]),
        ),
        (
            "writer-secret".to_owned(),
            Principal::new(
                "writer",
                vec![grant("orders", &[Operation::Read, Operation::Write])],
            )
            .with_transactional_ids(vec![TopicPattern::parse("orders-tx-*").unwrap()])
            .with_groups(vec![TopicPattern::parse("orders-*").unwrap()]),
        ),
        (
            "ops-secret".to_owned(),
            Principal::new("ops", vec![grant("*", &[Operation::Admin])])
                .with_groups(vec![TopicPattern::parse("ops-*").unwrap()]),
        ),
        (
            "reader-secret".to_owned(),
            Principal::new("reader", vec![grant("*", &[Operation::Read])]),
        ),
    ])
    .unwrap();
    Node::start_with(2, |config| {
        config.sasl = Some(
            kafka::SaslConfig::new(vec![kafka::SaslMechanism::Plain], Arc::new(credentials))
                .unwrap(),
        );
    })
}

/// SaslHandshake v1 for `mechanism`, then SaslAuthenticate v2 with a PLAIN token; the two
/// answers' error codes.
fn sasl_plain(
    conn: &mut TcpStream,
    mechanism: &'static str,
    user: &str,
    password: &str,
) -> (i16, i16) {
    use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
    let handshake = call(
        conn,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
    );
    if handshake.error_code != 0 {
        assert_eq!(handshake.mechanisms, [StrBytes::from_static_str("PLAIN")]);
        return (handshake.error_code, 0);
    }
    let token = format!("\0{user}\0{password}");
    let authenticated = call(
        conn,
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
    );
    (0, authenticated.error_code)
}

/// A connection authenticated as `user`.
fn sasl_connect(node: &Node, user: &str) -> TcpStream {
    let mut conn = node.connect();
    let (handshake, authenticate) = sasl_plain(&mut conn, "PLAIN", user, &format!("{user}-secret"));
    assert_eq!((handshake, authenticate), (0, 0), "{user}");
    conn
}

#[test]
fn every_transactional_api_refuses_a_transactional_id_the_principal_may_not_use() {
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::*;

    let node = sasl_node();
    let orders = TopicName(StrBytes::from_static_str("orders"));
    let mut admin = sasl_connect(&node, "admin");
    assert_eq!(create_topic_as(&mut admin, &orders), 0);
    let mut writer = sasl_connect(&node, "writer");
    let id = |s: &'static str| TransactionalId(StrBytes::from_static_str(s));
    let refused = ResponseError::TransactionalIdAuthorizationFailed.code();
    let init = |conn: &mut TcpStream, s: &'static str| -> i16 {
        let answer: InitProducerIdResponse = call(
            conn,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(id(s)))
                .with_transaction_timeout_ms(60_000),
        );
        answer.error_code
    };
    assert_eq!(init(&mut writer, "payments-tx"), refused);
    assert_eq!(init(&mut writer, "orders-tx-1"), 0);
    assert_eq!(init(&mut admin, "payments-tx"), 0, "admin may use any id");

    let codes = find_coordinators(&mut writer, 1, &["payments-tx", "orders-tx-1"]);
    assert_eq!(codes, [refused, 0]);

    let added: AddPartitionsToTxnResponse = call(
        &mut writer,
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(id("payments-tx"))
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(orders.clone())
                .with_partitions(vec![0])]),
    );
    let partition = &added.results_by_topic_v3_and_below[0].results_by_partition[0];
    assert_eq!(partition.partition_error_code, refused);
    let offsets: AddOffsetsToTxnResponse = call(
        &mut writer,
        3,
        &AddOffsetsToTxnRequest::default().with_transactional_id(id("payments-tx")),
    );
    assert_eq!(offsets.error_code, refused);
    let committed: TxnOffsetCommitResponse = call(
        &mut writer,
        3,
        &TxnOffsetCommitRequest::default()
            .with_transactional_id(id("payments-tx"))
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(orders)
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()])]),
    );
    assert_eq!(committed.topics[0].partitions[0].error_code, refused);
    let ended: EndTxnResponse = call(
        &mut writer,
        3,
        &EndTxnRequest::default().with_transactional_id(id("payments-tx")),
    );
    assert_eq!(ended.error_code, refused);
    let described: DescribeTransactionsResponse = call(
        &mut writer,
        0,
        &DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![id("payments-tx"), id("orders-tx-1")]),
    );
    let codes: Vec<_> = described
        .transaction_states
        .iter()
        .map(|s| s.error_code)
        .collect();
    assert_eq!(codes, [refused, 0]);
    let listed: ListTransactionsResponse =
        call(&mut writer, 0, &ListTransactionsRequest::default());
    let ids: Vec<_> = listed
        .transaction_states
        .iter()
        .map(|s| s.transactional_id.0.as_str())
        .collect();
    assert_eq!(
        ids,
        ["orders-tx-1"],
        "the ids the principal may not use are left out"
    );
}

#[test]
fn every_group_api_refuses_a_group_the_principal_may_not_use() {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::*;

    let node = sasl_node();
    let orders = TopicName(StrBytes::from_static_str("orders"));
    let mut admin = sasl_connect(&node, "admin");
    assert_eq!(create_topic_as(&mut admin, &orders), 0);
    let mut writer = sasl_connect(&node, "writer");
    let group = |s: &'static str| GroupId(StrBytes::from_static_str(s));
    let refused = ResponseError::GroupAuthorizationFailed.code();

    // Commits from outside group management (generation -1): one the writer may make, one only
    // the reader (any group) may.
    let commit = |conn: &mut TcpStream, g: &'static str| -> i16 {
        let answer: OffsetCommitResponse = call(
            conn,
            8,
            &OffsetCommitRequest::default()
                .with_group_id(group(g))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(orders.clone())
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default().with_committed_offset(1)
                    ])]),
        );
        answer.topics[0].partitions[0].error_code
    };
    assert_eq!(commit(&mut writer, "payments-g"), refused);
    assert_eq!(commit(&mut writer, "orders-g"), 0);
    let mut reader = sasl_connect(&node, "reader");
    assert_eq!(
        commit(&mut reader, "payments-g"),
        0,
        "reader may use any group"
    );

    let codes = find_coordinators(&mut writer, 0, &["payments-g", "orders-g"]);
    assert_eq!(codes, [refused, 0]);

    let join: JoinGroupResponse = call(
        &mut writer,
        5,
        &JoinGroupRequest::default()
            .with_group_id(group("payments-g"))
            .with_session_timeout_ms(10_000)
            .with_protocol_type(StrBytes::from_static_str("consumer")),
    );
    assert_eq!(join.error_code, refused);
    let sync: SyncGroupResponse = call(
        &mut writer,
        3,
        &SyncGroupRequest::default().with_group_id(group("payments-g")),
    );
    assert_eq!(sync.error_code, refused);
    let heartbeat: HeartbeatResponse = call(
        &mut writer,
        3,
        &HeartbeatRequest::default().with_group_id(group("payments-g")),
    );
    assert_eq!(heartbeat.error_code, refused);
    let leave: LeaveGroupResponse = call(
        &mut writer,
        3,
        &LeaveGroupRequest::default().with_group_id(group("payments-g")),
    );
    assert_eq!(leave.error_code, refused);

    // OffsetFetch: before v2 each partition says so, from v2 the group, from v8 each group.
    let old_fetch = |g: &'static str| {
        OffsetFetchRequest::default()
            .with_group_id(group(g))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(orders.clone())
                .with_partition_indexes(vec![0])]))
    };
    let v1: OffsetFetchResponse = call(&mut writer, 1, &old_fetch("payments-g"));
    assert_eq!(v1.topics[0].partitions[0].error_code, refused);
    let v5: OffsetFetchResponse = call(&mut writer, 5, &old_fetch("payments-g"));
    assert_eq!((v5.error_code, v5.topics.len()), (refused, 0));
    let v5: OffsetFetchResponse = call(&mut writer, 5, &old_fetch("orders-g"));
    assert_eq!(v5.error_code, 0);
    assert_eq!(v5.topics[0].partitions[0].committed_offset, 1);
    let batch = |g: &'static str| {
        OffsetFetchRequestGroup::default()
            .with_group_id(group(g))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(orders.clone())
                .with_partition_indexes(vec![0])]))
    };
    let v8: OffsetFetchResponse = call(
        &mut writer,
        8,
        &OffsetFetchRequest::default().with_groups(vec![batch("payments-g"), batch("orders-g")]),
    );
    let codes: Vec<_> = v8.groups.iter().map(|g| g.error_code).collect();
    assert_eq!(codes, [refused, 0]);
    assert_eq!(v8.groups[1].topics[0].partitions[0].committed_offset, 1);

    let deleted: OffsetDeleteResponse = call(
        &mut writer,
        0,
        &OffsetDeleteRequest::default()
            .with_group_id(group("payments-g"))
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(orders.clone())
                .with_partitions(vec![OffsetDeleteRequestPartition::default()])]),
    );
    assert_eq!(deleted.error_code, refused);

    let described: DescribeGroupsResponse = call(
        &mut writer,
        5,
        &DescribeGroupsRequest::default().with_groups(vec![group("payments-g"), group("orders-g")]),
    );
    let codes: Vec<_> = described.groups.iter().map(|g| g.error_code).collect();
    assert_eq!(codes, [refused, 0]);
    let listed: ListGroupsResponse = call(&mut writer, 4, &ListGroupsRequest::default());
    let ids: Vec<_> = listed
        .groups
        .iter()
        .map(|g| g.group_id.0.as_str())
        .collect();
    assert_eq!(
        ids,
        ["orders-g"],
        "the groups the principal may not use are left out"
    );
    let listed: ListGroupsResponse = call(&mut admin, 4, &ListGroupsRequest::default());
    let mut ids: Vec<_> = listed
        .groups
        .iter()
        .map(|g| g.group_id.0.as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["orders-g", "payments-g"]);

    let heartbeat: ConsumerGroupHeartbeatResponse = call(
        &mut writer,
        0,
        &ConsumerGroupHeartbeatRequest::default()
            .with_group_id(group("payments-g"))
            .with_rebalance_timeout_ms(10_000)
            .with_subscribed_topic_names(Some(vec![orders.clone()])),
    );
    assert_eq!(heartbeat.error_code, refused);
    let described: ConsumerGroupDescribeResponse = call(
        &mut writer,
        0,
        &ConsumerGroupDescribeRequest::default().with_group_ids(vec![group("payments-g")]),
    );
    assert_eq!(described.groups[0].error_code, refused);

    // A transaction's offsets go to a group too: the transactional id and the group must both
    // be allowed.
    let txn = TransactionalId(StrBytes::from_static_str("orders-tx-1"));
    let added: AddOffsetsToTxnResponse = call(
        &mut writer,
        3,
        &AddOffsetsToTxnRequest::default()
            .with_transactional_id(txn.clone())
            .with_group_id(group("payments-g")),
    );
    assert_eq!(added.error_code, refused);
    let txn_commit: TxnOffsetCommitResponse = call(
        &mut writer,
        3,
        &TxnOffsetCommitRequest::default()
            .with_transactional_id(txn)
            .with_group_id(group("payments-g"))
            .with_topics(vec![
                txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(orders.clone())
                    .with_partitions(vec![
                        txn_offset_commit_request::TxnOffsetCommitRequestPartition::default(),
                    ]),
            ]),
    );
    assert_eq!(txn_commit.topics[0].partitions[0].error_code, refused);

    // Deleting takes admin everywhere and the group: ops has both for `ops-*` only.
    let mut ops = sasl_connect(&node, "ops");
    let deleted: DeleteGroupsResponse = call(
        &mut ops,
        2,
        &DeleteGroupsRequest::default()
            .with_groups_names(vec![group("payments-g"), group("ops-g")]),
    );
    let codes: Vec<_> = deleted.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, [refused, ResponseError::GroupIdNotFound.code()]);
    let deleted: DeleteGroupsResponse = call(
        &mut admin,
        2,
        &DeleteGroupsRequest::default().with_groups_names(vec![group("payments-g")]),
    );
    assert_eq!(deleted.results[0].error_code, 0);
}

/// FindCoordinator v4 for `keys` of `key_type` (0 groups, 1 transactional ids): each key's
/// error code.
fn find_coordinators(conn: &mut TcpStream, key_type: i8, keys: &[&'static str]) -> Vec<i16> {
    use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
    let found: FindCoordinatorResponse = call(
        conn,
        4,
        &FindCoordinatorRequest::default()
            .with_key_type(key_type)
            .with_coordinator_keys(keys.iter().map(|&k| StrBytes::from_static_str(k)).collect()),
    );
    found.coordinators.iter().map(|c| c.error_code).collect()
}

fn create_topic_as(conn: &mut TcpStream, name: &TopicName) -> i16 {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    let created: CreateTopicsResponse = call(
        conn,
        5,
        &CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
            .with_name(name.clone())
            .with_num_partitions(1)
            .with_replication_factor(1)]),
    );
    created.topics[0].error_code
}

fn produce_as(conn: &mut TcpStream, name: &TopicName) -> i16 {
    produce_to(conn, name, 0, batch(&["v"]))
}

fn fetch_as(conn: &mut TcpStream, name: &TopicName) -> (i16, i64) {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let fetched: FetchResponse = call(
        conn,
        11,
        &FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name.clone())
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_partition_max_bytes(1 << 20)])]),
    );
    let part = &fetched.responses[0].partitions[0];
    (part.error_code, part.high_watermark)
}

#[test]
fn with_sasl_nothing_but_api_versions_and_the_handshake_is_served_before_authentication() {
    let node = sasl_node();
    let mut conn = node.connect();
    let versions: ApiVersionsResponse = call(&mut conn, 3, &ApiVersionsRequest::default());
    for key in [ApiKey::SaslHandshake, ApiKey::SaslAuthenticate] {
        assert!(
            versions.api_keys.iter().any(|k| k.api_key == key as i16),
            "{key:?} advertised"
        );
    }
    conn.write_all(&frame(9, 8, &MetadataRequest::default().with_topics(None)))
        .unwrap();
    assert!(closed(&mut conn), "Metadata before authentication closes");

    let mut conn = node.connect();
    let (handshake, _) = sasl_plain(&mut conn, "SCRAM-SHA-256", "reader", "reader-secret");
    assert_eq!(handshake, ResponseError::UnsupportedSaslMechanism.code());
    assert!(closed(&mut conn), "an unsupported mechanism closes");

    for (user, password) in [
        ("reader", "wrong"),
        ("writer", "reader-secret"),
        ("nobody", "x"),
    ] {
        let mut conn = node.connect();
        let (_, authenticate) = sasl_plain(&mut conn, "PLAIN", user, password);
        assert_eq!(
            authenticate,
            ResponseError::SaslAuthenticationFailed.code(),
            "{user}/{password}"
        );
        assert!(closed(&mut conn), "a failed authentication closes");
    }

    // The server still serves everyone else.
    let mut conn = sasl_connect(&node, "reader");
    let meta: MetadataResponse = call(&mut conn, 9, &MetadataRequest::default().with_topics(None));
    assert_eq!(meta.brokers.len(), 1);
}

#[test]
fn authorized_operations_are_each_principals_own() {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{
        DescribeClusterRequest, DescribeClusterResponse, DescribeGroupsRequest,
        DescribeGroupsResponse, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
    };
    // Kafka's operation codes, as bits.
    let bits = |codes: &[i32]| codes.iter().fold(0, |field, code| field | 1 << code);
    let (read, write, create, delete, alter, describe) = (3, 4, 5, 6, 7, 8);
    let (cluster_action, describe_configs, alter_configs, idempotent_write) = (9, 10, 11, 12);
    let node = sasl_node();
    let orders = TopicName(StrBytes::from_static_str("orders"));
    assert_eq!(
        create_topic_as(&mut sasl_connect(&node, "admin"), &orders),
        0
    );
    let expected = [
        (
            "admin",
            bits(&[
                create,
                delete,
                alter,
                describe,
                describe_configs,
                alter_configs,
            ]),
            bits(&[idempotent_write, cluster_action]),
            bits(&[read, describe, delete]),
        ),
        (
            "writer",
            bits(&[read, write, describe]),
            bits(&[idempotent_write]),
            bits(&[read, describe]),
        ),
        (
            "reader",
            bits(&[read, describe]),
            bits(&[idempotent_write]),
            bits(&[read, describe]),
        ),
    ];
    for (principal, topic_ops, cluster_ops, group_ops) in expected {
        let mut conn = sasl_connect(&node, principal);
        let meta: MetadataResponse = call(
            &mut conn,
            10,
            &MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(orders.clone()))
                ]))
                .with_include_topic_authorized_operations(true)
                .with_include_cluster_authorized_operations(true),
        );
        assert_eq!(meta.topics[0].error_code, 0, "{principal}");
        assert_eq!(
            meta.topics[0].topic_authorized_operations, topic_ops,
            "{principal}: Metadata"
        );
        assert_eq!(
            meta.cluster_authorized_operations, cluster_ops,
            "{principal}: Metadata"
        );
        let described: DescribeTopicPartitionsResponse = call(
            &mut conn,
            0,
            &DescribeTopicPartitionsRequest::default()
                .with_topics(vec![
                    kafka_protocol::messages::describe_topic_partitions_request::TopicRequest::default()
                        .with_name(orders.clone()),
                ])
                .with_response_partition_limit(10),
        );
        assert_eq!(
            described.topics[0].topic_authorized_operations, topic_ops,
            "{principal}: DescribeTopicPartitions"
        );
        let cluster: DescribeClusterResponse = call(
            &mut conn,
            0,
            &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
        );
        assert_eq!(
            cluster.cluster_authorized_operations, cluster_ops,
            "{principal}: DescribeCluster"
        );
        // v5 describes a group that does not exist (yet) as Dead.
        let groups: DescribeGroupsResponse = call(
            &mut conn,
            5,
            &DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(StrBytes::from_static_str("orders-g"))])
                .with_include_authorized_operations(true),
        );
        assert_eq!(groups.groups[0].error_code, 0, "{principal}");
        assert_eq!(
            groups.groups[0].authorized_operations, group_ops,
            "{principal}: DescribeGroups"
        );
        // Not asked: Kafka's "not requested".
        let plain: MetadataResponse = call(
            &mut conn,
            10,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(orders.clone()))
            ])),
        );
        assert_eq!(plain.topics[0].topic_authorized_operations, i32::MIN);
    }
}

#[test]
fn config_resources_are_the_topics_each_principal_sees_and_this_broker() {
    use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
    let node = sasl_node();
    let mut admin = sasl_connect(&node, "admin");
    for name in ["payments", "orders"] {
        let topic = TopicName(StrBytes::from_static_str(name));
        assert_eq!(create_topic_as(&mut admin, &topic), 0, "{name}");
    }
    let meta: MetadataResponse = call(&mut admin, 1, &MetadataRequest::default());
    let broker = meta.brokers[0].node_id.0.to_string();
    let list = |conn: &mut TcpStream, version: i16, types: &[i8]| {
        let answer: ListConfigResourcesResponse = call(
            conn,
            version,
            &ListConfigResourcesRequest::default().with_resource_types(types.to_vec()),
        );
        let listed: Vec<(i8, String)> = answer
            .config_resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.to_string()))
            .collect();
        (answer.error_code, listed)
    };
    let (topic, broker_type) = (2, 4);
    let named = |pairs: &[(i8, &str)]| -> Vec<(i8, String)> {
        pairs.iter().map(|&(t, n)| (t, n.to_owned())).collect()
    };
    // Every type: the topics in name order (the internal one too, as Kafka lists it), then
    // the broker.
    assert_eq!(
        list(&mut admin, 1, &[]),
        (
            0,
            named(&[
                (topic, "__consumer_offsets"),
                (topic, "orders"),
                (topic, "payments"),
                (broker_type, &broker)
            ])
        )
    );
    // A principal lists only the topics it may see.
    let mut writer = sasl_connect(&node, "writer");
    assert_eq!(
        list(&mut writer, 1, &[topic]),
        (0, named(&[(topic, "orders")]))
    );
    assert_eq!(
        list(&mut writer, 1, &[broker_type]),
        (0, named(&[(broker_type, &broker)]))
    );
    // Groups, client-metrics subscriptions and broker loggers have no configs here.
    assert_eq!(list(&mut admin, 1, &[32, 16, 8]), (0, vec![]));
    // A type without configs in Kafka (3: none is defined) refuses the request.
    let unsupported = ResponseError::UnsupportedVersion.code();
    assert_eq!(list(&mut admin, 1, &[topic, 3]), (unsupported, vec![]));
    // v0 is KIP-714's ListClientMetricsResources: no subscriptions.
    assert_eq!(list(&mut admin, 0, &[]), (0, vec![]));
}

#[test]
fn with_sasl_each_principals_grants_decide_per_topic() {
    let node = sasl_node();
    let orders = TopicName(StrBytes::from_static_str("orders"));
    let secret = TopicName(StrBytes::from_static_str("secret"));
    let mut admin = sasl_connect(&node, "admin");
    let mut writer = sasl_connect(&node, "writer");
    let mut reader = sasl_connect(&node, "reader");

    let denied = ResponseError::TopicAuthorizationFailed.code();
    assert_eq!(create_topic_as(&mut writer, &orders), denied);
    assert_eq!(create_topic_as(&mut admin, &orders), 0);
    assert_eq!(create_topic_as(&mut admin, &secret), 0);

    assert_eq!(produce_as(&mut writer, &orders), 0);
    assert_eq!(produce_as(&mut reader, &orders), denied);
    assert_eq!(produce_as(&mut writer, &secret), denied);
    assert_eq!(fetch_as(&mut reader, &orders), (0, 1));
    assert_eq!(fetch_as(&mut writer, &secret).0, denied);

    // Listings show only topics with a grant; a named topic without one is refused.
    let meta: MetadataResponse = call(
        &mut writer,
        9,
        &MetadataRequest::default().with_topics(None),
    );
    let names: Vec<_> = meta.topics.iter().filter_map(|t| t.name.clone()).collect();
    assert_eq!(names, std::slice::from_ref(&orders));
    let meta: MetadataResponse = call(
        &mut writer,
        9,
        &MetadataRequest::default().with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(secret.clone())),
        ])),
    );
    assert_eq!(meta.topics[0].error_code, denied);
    // Asked for by id (v10+), a topic without a grant is refused without telling its name; an
    // id no topic has is UNKNOWN_TOPIC_ID; a topic with a grant is described.
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let all: MetadataResponse = call(
        &mut admin,
        12,
        &MetadataRequest::default().with_topics(None),
    );
    let id_of = |name: &TopicName| {
        all.topics
            .iter()
            .find(|t| t.name.as_ref() == Some(name))
            .unwrap()
            .topic_id
    };
    let by_id = |ids: Vec<uuid::Uuid>| {
        MetadataRequest::default().with_topics(Some(
            ids.into_iter()
                .map(|id| {
                    MetadataRequestTopic::default()
                        .with_name(None)
                        .with_topic_id(id)
                })
                .collect(),
        ))
    };
    let meta: MetadataResponse = call(
        &mut writer,
        12,
        &by_id(vec![
            id_of(&secret),
            uuid::Uuid::from_u128(7),
            id_of(&orders),
        ]),
    );
    let answers: Vec<_> = meta
        .topics
        .iter()
        .map(|t| (t.error_code, t.name.clone()))
        .collect();
    assert_eq!(
        answers,
        [
            (denied, None),
            (ResponseError::UnknownTopicId.code(), None),
            (0, Some(orders.clone())),
        ]
    );
    // Nor does deleting it by id (DeleteTopics v6).
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    let deleted: kafka_protocol::messages::DeleteTopicsResponse = call(
        &mut writer,
        6,
        &kafka_protocol::messages::DeleteTopicsRequest::default().with_topics(vec![
            DeleteTopicState::default()
                .with_name(None)
                .with_topic_id(id_of(&secret)),
        ]),
    );
    let refused = &deleted.responses[0];
    assert_eq!((refused.error_code, &refused.name), (denied, &None));
    // Auto-creation takes admin on the topic.
    let meta: MetadataResponse = call(
        &mut reader,
        9,
        &MetadataRequest::default()
            .with_allow_auto_topic_creation(true)
            .with_topics(Some(vec![
                kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("fresh")))),
            ])),
    );
    assert_eq!(
        meta.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}

/// KIP-848 heartbeats the coordinator refuses, each answered with its error while the
/// connection keeps serving: a regular expression that does not compile, a join that names
/// neither topics nor a pattern, an assignor it does not have, and a classic group it cannot
/// take over. A join that names no topics under a member id the group does not know is
/// FENCED_MEMBER_EPOCH instead.
#[test]
fn consumer_group_heartbeats_that_cannot_be_served_are_refused_by_name() {
    use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
    let node = Node::start();
    let mut conn = node.connect();
    let join = |group: &'static str| {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str(group)))
            .with_member_id(StrBytes::from_static_str("m-1"))
            .with_rebalance_timeout_ms(10_000)
            .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str("t"))]))
    };
    let mut heartbeat = |req: ConsumerGroupHeartbeatRequest| -> ConsumerGroupHeartbeatResponse {
        call(&mut conn, 1, &req)
    };
    let regex = join("g848").with_subscribed_topic_regex(Some(StrBytes::from_static_str("t(.*")));
    let bad_pattern = heartbeat(regex);
    assert_eq!(
        bad_pattern.error_code,
        ResponseError::InvalidRegularExpression.code()
    );
    assert!(bad_pattern
        .error_message
        .is_some_and(|m| m.contains("t(.*")));
    let unsubscribed = join("g848")
        .with_subscribed_topic_names(None)
        .with_member_id(StrBytes::default());
    assert_eq!(
        heartbeat(unsubscribed).error_code,
        ResponseError::InvalidRequest.code()
    );
    // Under a member id the group does not know (it was forgotten in a restart): the member
    // is fenced, which makes librdkafka join again in full instead of failing for good.
    let forgotten = join("g848").with_subscribed_topic_names(None);
    assert_eq!(
        heartbeat(forgotten).error_code,
        ResponseError::FencedMemberEpoch.code()
    );
    let assignor = join("g848").with_server_assignor(Some(StrBytes::from_static_str("sticky")));
    assert_eq!(
        heartbeat(assignor).error_code,
        ResponseError::UnsupportedAssignor.code()
    );
    let joined = heartbeat(join("g848"));
    assert_eq!(joined.error_code, 0);
    assert!(joined.member_epoch > 0);
    assert_eq!(joined.heartbeat_interval_ms, 5_000);
    let stale = join("g848").with_member_epoch(joined.member_epoch + 5);
    assert_eq!(
        heartbeat(stale).error_code,
        ResponseError::FencedMemberEpoch.code()
    );

    // ConsumerGroupDescribe shows the member; a group of no consumer-protocol members is
    // GROUP_ID_NOT_FOUND, named in the message.
    use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};
    let describe = ConsumerGroupDescribeRequest::default().with_group_ids(vec![
        GroupId(StrBytes::from_static_str("g848")),
        GroupId(StrBytes::from_static_str("nobody-here")),
    ]);
    let described: ConsumerGroupDescribeResponse = call(&mut conn, 1, &describe);
    let [ours, missing] = &described.groups[..] else {
        panic!("two groups described: {described:?}");
    };
    assert_eq!(ours.error_code, 0);
    assert_eq!(ours.group_epoch, joined.member_epoch);
    assert_eq!(ours.members.len(), 1);
    assert_eq!(ours.members[0].member_epoch, joined.member_epoch);
    assert_eq!(missing.error_code, ResponseError::GroupIdNotFound.code());
    assert!(missing
        .error_message
        .as_ref()
        .is_some_and(|m| m.contains("nobody-here")));

    // A classic group whose member's subscription cannot be read: the consumer protocol cannot
    // take it over (a readable one it would, see docs/OPERATIONS.md on the migration).
    let mut classic = node.connect();
    static_join(&mut classic, 5, "i-a");
    let mut conn = node.connect();
    let refused: ConsumerGroupHeartbeatResponse = call(&mut conn, 1, &join("static-group"));
    assert_eq!(refused.error_code, ResponseError::GroupIdNotFound.code());
}

/// A ConsumerGroupHeartbeat answer carries the node's configured heartbeat interval.
#[test]
fn consumer_group_heartbeats_carry_the_configured_interval() {
    use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
    use spindle_engine::group::consumer_group::ConsumerTiming;
    let node = Node::start_configured(
        1,
        |_| {},
        |engine| {
            engine.group_consumer_timing = ConsumerTiming {
                session_timeout: Duration::from_secs(20),
                heartbeat_interval: Duration::from_millis(1_250),
            }
        },
    );
    let mut conn = node.connect();
    let join = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("timed")))
        .with_member_id(StrBytes::from_static_str("m-1"))
        .with_rebalance_timeout_ms(10_000)
        .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str("t"))]));
    let joined: ConsumerGroupHeartbeatResponse = call(&mut conn, 1, &join);
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.heartbeat_interval_ms, 1_250);
}

/// Fetch sessions (KIP-227): a full fetch at epoch 0 opens one; incremental fetches then name
/// only what changed and are answered only with partitions that have something to say; a
/// stale epoch, an unknown id and a closed session are refused by name.
#[test]
fn a_fetch_session_answers_only_the_partitions_with_news() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};

    let node = Node::start();
    let mut conn = node.connect();
    let name = TopicName(StrBytes::from_static_str("sessions"));
    create_topic(&mut conn, &name, 3);
    for p in 0..3 {
        produce_one(&mut conn, &name, p, batch(&["first"]));
    }
    let at = |p: i32, offset: i64| {
        FetchPartition::default()
            .with_partition(p)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(1 << 20)
    };
    let fetch = |id: i32, epoch: i32, partitions: Vec<FetchPartition>| {
        let topics = if partitions.is_empty() {
            vec![]
        } else {
            vec![FetchTopic::default()
                .with_topic(name.clone())
                .with_partitions(partitions)]
        };
        FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_session_id(id)
            .with_session_epoch(epoch)
            .with_topics(topics)
    };
    let partitions_of = |answer: &FetchResponse| -> Vec<(i32, i64, bool)> {
        let parts = answer.responses.iter().flat_map(|t| &t.partitions);
        parts
            .map(|p| {
                let has_records = p.records.as_ref().is_some_and(|r| !r.is_empty());
                (p.partition_index, p.high_watermark, has_records)
            })
            .collect()
    };

    let opened: FetchResponse = call(
        &mut conn,
        12,
        &fetch(0, 0, (0..3).map(|p| at(p, 0)).collect()),
    );
    assert_eq!(opened.error_code, 0);
    let id = opened.session_id;
    assert_ne!(id, 0, "a full fetch at epoch 0 opens a session");
    assert_eq!(
        partitions_of(&opened),
        [(0, 1, true), (1, 1, true), (2, 1, true)]
    );

    // The client moved its offsets past what it read: nothing new anywhere.
    let quiet: FetchResponse = call(
        &mut conn,
        12,
        &fetch(id, 1, (0..3).map(|p| at(p, 1)).collect()),
    );
    assert_eq!((quiet.error_code, quiet.session_id), (0, id));
    assert!(partitions_of(&quiet).is_empty(), "{quiet:?}");

    // A record for partition 1: only it is answered, though the request names nothing.
    produce_one(&mut conn, &name, 1, batch(&["second"]));
    let news: FetchResponse = call(&mut conn, 12, &fetch(id, 2, vec![]));
    assert_eq!(partitions_of(&news), [(1, 2, true)]);

    let stale: FetchResponse = call(&mut conn, 12, &fetch(id, 2, vec![]));
    assert_eq!(
        stale.error_code,
        ResponseError::InvalidFetchSessionEpoch.code()
    );
    let unknown: FetchResponse = call(&mut conn, 12, &fetch(id + 1, 3, vec![]));
    assert_eq!(
        unknown.error_code,
        ResponseError::FetchSessionIdNotFound.code()
    );

    // Partition 1 forgotten: its records are no longer answered, partition 2's are.
    produce_one(&mut conn, &name, 1, batch(&["third"]));
    produce_one(&mut conn, &name, 2, batch(&["second"]));
    let forget = fetch(id, 3, vec![]).with_forgotten_topics_data(vec![ForgottenTopic::default()
        .with_topic(name.clone())
        .with_partitions(vec![1])]);
    let after: FetchResponse = call(&mut conn, 12, &forget);
    assert_eq!(partitions_of(&after), [(2, 2, true)]);

    // Epoch -1 closes the session and is answered as a full fetch without one.
    let closing: FetchResponse = call(&mut conn, 12, &fetch(id, -1, vec![at(0, 0)]));
    assert_eq!((closing.error_code, closing.session_id), (0, 0));
    assert_eq!(partitions_of(&closing), [(0, 1, true)]);
    let gone: FetchResponse = call(&mut conn, 12, &fetch(id, 4, vec![]));
    assert_eq!(
        gone.error_code,
        ResponseError::FetchSessionIdNotFound.code()
    );

    // A session is the connection's: another connection does not know it.
    let reopened: FetchResponse = call(&mut conn, 12, &fetch(0, 0, vec![at(0, 1)]));
    let mut other = node.connect();
    let elsewhere: FetchResponse = call(&mut other, 12, &fetch(reopened.session_id, 1, vec![]));
    assert_eq!(
        elsewhere.error_code,
        ResponseError::FetchSessionIdNotFound.code()
    );
}

/// A request of `key` with every field at its default, for the APIs `request_for` leaves out.
fn default_request(key: ApiKey) -> Option<RequestKind> {
    use kafka_protocol::messages::*;
    Some(match key {
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(OffsetCommitRequest::default()),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(OffsetFetchRequest::default()),
        ApiKey::JoinGroup => RequestKind::JoinGroup(JoinGroupRequest::default()),
        ApiKey::SyncGroup => RequestKind::SyncGroup(SyncGroupRequest::default()),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(LeaveGroupRequest::default()),
        ApiKey::AddPartitionsToTxn => {
            RequestKind::AddPartitionsToTxn(AddPartitionsToTxnRequest::default())
        }
        ApiKey::AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(AddOffsetsToTxnRequest::default()),
        ApiKey::EndTxn => RequestKind::EndTxn(EndTxnRequest::default()),
        ApiKey::WriteTxnMarkers => RequestKind::WriteTxnMarkers(WriteTxnMarkersRequest::default()),
        ApiKey::TxnOffsetCommit => RequestKind::TxnOffsetCommit(TxnOffsetCommitRequest::default()),
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(DescribeAclsRequest::default()),
        ApiKey::CreateAcls => RequestKind::CreateAcls(CreateAclsRequest::default()),
        ApiKey::DeleteAcls => RequestKind::DeleteAcls(DeleteAclsRequest::default()),
        ApiKey::ElectLeaders => RequestKind::ElectLeaders(ElectLeadersRequest::default()),
        ApiKey::AlterPartitionReassignments => {
            RequestKind::AlterPartitionReassignments(AlterPartitionReassignmentsRequest::default())
        }
        ApiKey::ListPartitionReassignments => {
            RequestKind::ListPartitionReassignments(ListPartitionReassignmentsRequest::default())
        }
        ApiKey::DescribeClientQuotas => {
            RequestKind::DescribeClientQuotas(DescribeClientQuotasRequest::default())
        }
        ApiKey::AlterClientQuotas => {
            RequestKind::AlterClientQuotas(AlterClientQuotasRequest::default())
        }
        ApiKey::DescribeUserScramCredentials => {
            RequestKind::DescribeUserScramCredentials(DescribeUserScramCredentialsRequest::default())
        }
        ApiKey::AlterUserScramCredentials => {
            RequestKind::AlterUserScramCredentials(AlterUserScramCredentialsRequest::default())
        }
        ApiKey::DescribeProducers => {
            RequestKind::DescribeProducers(DescribeProducersRequest::default())
        }
        ApiKey::DescribeTransactions => {
            RequestKind::DescribeTransactions(DescribeTransactionsRequest::default())
        }
        ApiKey::ListTransactions => {
            RequestKind::ListTransactions(ListTransactionsRequest::default())
        }
        ApiKey::ConsumerGroupHeartbeat => {
            RequestKind::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest::default())
        }
        ApiKey::ConsumerGroupDescribe => {
            RequestKind::ConsumerGroupDescribe(ConsumerGroupDescribeRequest::default())
        }
        ApiKey::DescribeTopicPartitions => {
            RequestKind::DescribeTopicPartitions(DescribeTopicPartitionsRequest::default())
        }
        _ => return None,
    })
}

/// A small deterministic generator (xorshift64*), so a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// `body` (a request after its header) changed the way a broken or hostile client might:
/// flipped bytes, a length or count field made extreme, cut short, or trailed by garbage.
fn mutate(rng: &mut Rng, body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    match rng.below(4) {
        0 if !out.is_empty() => {
            for _ in 0..=rng.below(3) {
                let at = rng.below(out.len());
                out[at] ^= 1 << rng.below(8);
            }
        }
        1 if out.len() >= 4 => {
            let at = rng.below(out.len() - 3);
            let extreme = [i32::MAX, i32::MIN, -1, 0x7FFF_0000][rng.below(4)];
            out[at..at + 4].copy_from_slice(&extreme.to_be_bytes());
        }
        2 if !out.is_empty() => out.truncate(rng.below(out.len())),
        _ => out.extend((0..=rng.below(16)).map(|_| rng.next() as u8)),
    }
    out
}

/// Every served API at every served version, its body mutated many times: each mutated request
/// is answered, or refused by closing its connection, or still waiting (a long poll, acks 0),
/// and the node keeps serving every shard throughout; it shuts down cleanly at the end (a
/// panicked shard would fail the shutdown).
#[test]
fn mutated_requests_of_every_api_leave_the_node_serving() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};

    const TRIALS: usize = 16;
    let node = Node::start();
    let mut conn = node.connect();
    let versions: ApiVersionsResponse = call(&mut conn, 3, &ApiVersionsRequest::default());
    let topic = TopicName(StrBytes::from_static_str("mutated"));
    create_topic(&mut conn, &topic, 2);
    let health = TopicName(StrBytes::from_static_str("health"));
    create_topic(&mut conn, &health, 4);
    let ping = frame(3, i32::MAX, &ApiVersionsRequest::default());
    // Another seed explores other mutations: SPINDLE_MUTATION_SEED=<u64>.
    let seed = std::env::var("SPINDLE_MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_1234_ABCD_0001);
    eprintln!("mutation seed {seed}");
    let mut rng = Rng(seed | 1);
    let (mut sent, mut answered, mut closed_by_server) = (0, 0, 0);
    let mut step = 0;
    for range in &versions.api_keys {
        let Ok(key) = ApiKey::try_from(range.api_key) else {
            continue;
        };
        for version in range.min_version..=range.max_version {
            step += 1;
            let Some(request) =
                request_for(key, version, &topic, step).or_else(|| default_request(key))
            else {
                continue;
            };
            let mut header = BytesMut::new();
            RequestHeader::default()
                .with_request_api_key(range.api_key)
                .with_request_api_version(version)
                .with_correlation_id(step)
                .with_client_id(Some(StrBytes::from_static_str("mutator")))
                .encode(&mut header, key.request_header_version(version))
                .unwrap();
            let mut body = BytesMut::new();
            if request.encode(&mut body, version).is_err() {
                continue;
            }
            for _ in 0..TRIALS {
                let mutated = mutate(&mut rng, &body);
                let mut wire = ((header.len() + mutated.len()) as i32)
                    .to_be_bytes()
                    .to_vec();
                wire.extend_from_slice(&header);
                wire.extend_from_slice(&mutated);
                wire.extend_from_slice(&ping);
                let mut probe = node.connect();
                probe
                    .set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                sent += 1;
                if probe.write_all(&wire).is_err() {
                    closed_by_server += 1;
                    continue;
                }
                // Read until the ping's answer (the mutated request was served), the end of the
                // connection (refused), or the timeout (still waiting).
                while let Some(mut answer) = read_frame(&mut probe) {
                    if answer.len() >= 4 && answer.get_i32() == i32::MAX {
                        answered += 1;
                        break;
                    }
                }
            }
            // Every shard still serves: a partition of each is written and read back.
            for p in 0..4 {
                produce_one(&mut conn, &health, p, batch(&["alive"]));
            }
            let fetched: FetchResponse = call(
                &mut conn,
                11,
                &FetchRequest::default()
                    .with_max_wait_ms(0)
                    .with_max_bytes(1 << 20)
                    .with_topics(vec![FetchTopic::default()
                        .with_topic(health.clone())
                        .with_partitions(
                            (0..4)
                                .map(|p| {
                                    FetchPartition::default()
                                        .with_partition(p)
                                        .with_partition_max_bytes(1 << 20)
                                })
                                .collect(),
                        )]),
            );
            let parts = &fetched.responses[0].partitions;
            assert!(
                parts
                    .iter()
                    .all(|p| p.error_code == 0 && p.high_watermark > 0),
                "after {key:?} v{version}: {parts:?}"
            );
        }
    }
    eprintln!("{sent} mutated requests: {answered} answered, the rest refused or waiting ({closed_by_server} refused before the ping was sent)");
    assert!(sent > 1000, "only {sent} mutated requests");
    assert!(answered > sent / 4, "only {answered} of {sent} answered");
}
