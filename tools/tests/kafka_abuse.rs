//! End-to-end tests of requests built to make the Kafka server hold memory, read data or wait
//! beyond what one request is allowed, against the real `spindle serve` binary.
//!
//! `a_stalled_frame_body_is_cut_off_and_its_memory_given_back` fills a one-shard node's request
//! memory with two connections that announce frames and send no body, so that every later
//! request on the shard waits for memory. Once the frame body deadline (lowered with
//! `--frame-body-timeout-ms`) has passed, the server closes the two connections and another one
//! is answered again.
//!
//! `a_fetch_never_reads_or_answers_beyond_its_max_bytes` asks a Fetch over ten partitions that
//! hold a batch each for at most 64 KiB, but for `min_bytes` of `i32::MAX`: the answer must
//! carry only the first batch (whole, as Kafka's rule has it), not a batch of every partition.
//!
//! `list_offsets_over_many_entries_looks_them_up_a_few_at_a_time` sends one ListOffsets that
//! names the same partition thousands of times by timestamp, each a lookup that reads a window
//! of the segment file: the server's resident memory must not grow with the number of entries.
//!
//! `a_request_followed_by_extra_bytes_closes_its_connection` pads a valid request with bytes
//! after its body: the connection is closed and another one is served.
//!
//! `a_connection_that_sends_nothing_for_its_idle_time_is_closed_and_a_busy_one_is_not` lowers
//! `--connections-max-idle-ms` to a second: a connection that asks nothing more is closed, one
//! that keeps asking stays served.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, ListOffsetsRequest,
    ProduceRequest, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::Compression;
use spindle_server::{rss_bytes, Server};
use spindle_tests::{length_prefixed, request_bytes};
use spindle_tools::admin::client::Client;
use spindle_tools::bench::batch::{BatchShape, Template};

mod spindle_server;

/// How long a test waits for an answer that must come.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

impl Server {
    /// A raw connection to the Kafka port that gives up reading after [`ANSWER_TIMEOUT`].
    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.kafka).unwrap();
        stream.set_read_timeout(Some(ANSWER_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }
}

/// `request` as one length-prefixed frame at `version`, with `extra` bytes after its body.
fn frame_with<R: Request>(request: &R, version: i16, correlation_id: i32, extra: &[u8]) -> Vec<u8> {
    let mut body = request_bytes(request, version, correlation_id, "kafka-abuse-test")
        .unwrap_or_else(|| panic!("{} v{version} encodes", R::KEY));
    body.extend_from_slice(extra);
    length_prefixed(&body)
}

/// Reads one length-prefixed answer; `None` when the server closed the connection first.
fn read_answer(stream: &mut TcpStream) -> Option<Bytes> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; usize::try_from(i32::from_be_bytes(len)).ok()?];
    stream.read_exact(&mut body).ok()?;
    Some(Bytes::from(body))
}

/// Sends ApiVersions (v3) on `stream` and waits for its answer.
fn api_versions(stream: &mut TcpStream, correlation_id: i32) -> Result<(), String> {
    const VERSION: i16 = 3;
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("kafka-abuse-test"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    stream
        .write_all(&frame_with(&request, VERSION, correlation_id, &[]))
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = read_answer(stream).ok_or("no answer")?;
    let header = ResponseHeader::decode(&mut answer, ApiVersionsResponse::header_version(0))
        .map_err(|e| format!("header: {e}"))?;
    let response =
        ApiVersionsResponse::decode(&mut answer, VERSION).map_err(|e| format!("body: {e}"))?;
    if header.correlation_id != correlation_id || response.error_code != 0 {
        return Err(format!("answer {header:?} {response:?}"));
    }
    Ok(())
}

/// Whether the server has closed `stream` (end of stream or reset) within [`ANSWER_TIMEOUT`].
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                )
            }
        }
    }
}

/// Produces `batch` to each of `partitions` of `topic`, which must succeed.
fn produce_to(kafka: &str, topic: &str, partitions: i32, batch: &Bytes) {
    let mut client = Client::connect(kafka).unwrap();
    for partition in 0..partitions {
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch.clone()))])]);
        let response = client.bootstrap().call(&request).unwrap();
        let part = &response.responses[0].partition_responses[0];
        assert_eq!(part.error_code, 0, "produce to {partition}: {part:?}");
    }
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

#[test]
fn a_stalled_frame_body_is_cut_off_and_its_memory_given_back() {
    // An 8 MiB budget leaves a 2 MiB request share: two 1 MiB frames fill it. The body deadline
    // of a 1 MiB frame is then 1 s plus 1 s for its bytes.
    let server = Server::start_with(
        "kafka-abuse-stall",
        &[
            "--shards",
            "1",
            "--shard-memory-bytes",
            &(8u64 << 20).to_string(),
            "--max-frame-bytes",
            &(1u64 << 20).to_string(),
            "--frame-body-timeout-ms",
            "1000",
        ],
    );
    let mut stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = server.connect();
            // A length prefix and the start of a Produce header (a request charged its bytes
            // alone, so a large one is let in), then nothing.
            let mut start = (1i32 << 20).to_be_bytes().to_vec();
            start.extend_from_slice(&[0, 0, 0, 3]);
            stream.write_all(&start).unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));

    let started = Instant::now();
    let mut other = server.connect();
    let answered = api_versions(&mut other, 1);
    let waited = started.elapsed();
    assert!(
        answered.is_ok(),
        "another connection was not answered within {ANSWER_TIMEOUT:?}: {answered:?}"
    );
    // It had to wait for the stalled frames' memory: the stall was real.
    assert!(
        waited >= Duration::from_millis(500),
        "answered after {waited:?}: the stalled frames held no memory"
    );
    for stream in &mut stalled {
        assert!(closed_by_server(stream), "a stalled connection stays open");
    }
    // The shard serves as before.
    let mut again = server.connect();
    api_versions(&mut again, 2).unwrap();
}

#[test]
fn a_fetch_never_reads_or_answers_beyond_its_max_bytes() {
    let server = Server::start("kafka-abuse-fetch");
    let topic = "spread";
    const PARTITIONS: i32 = 10;
    server.admin(&[
        "topic",
        "create",
        topic,
        "--partitions",
        &PARTITIONS.to_string(),
    ]);
    let shape = BatchShape::filling(60 << 10, 1000, Compression::None);
    let template = Template::build(&shape, 5, 1_700_000_000_000).unwrap();
    produce_to(&server.kafka, topic, PARTITIONS, &template.bytes);

    const MAX_BYTES: i32 = 64 << 10;
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(2_000)
        .with_min_bytes(i32::MAX)
        .with_max_bytes(MAX_BYTES)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(
                (0..PARTITIONS)
                    .map(|p| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(0)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )]);
    let mut client = Client::connect(&server.kafka).unwrap();
    let response = client.bootstrap().call(&request).unwrap();
    let partitions = &response.responses[0].partitions;
    assert_eq!(partitions.len(), PARTITIONS as usize);
    let sizes: Vec<usize> = partitions
        .iter()
        .map(|p| p.records.as_ref().map_or(0, Bytes::len))
        .collect();
    for p in partitions {
        assert_eq!(p.error_code, 0, "{p:?}");
        assert_eq!(p.high_watermark, i64::from(template.record_count()));
    }
    // The first batch is returned whole although larger than what is left after it; no other
    // fits in the rest of the 64 KiB.
    let total: usize = sizes.iter().sum();
    assert_eq!(
        total,
        template.bytes.len(),
        "answer of {total} bytes for max_bytes {MAX_BYTES}: {sizes:?}"
    );
    assert_eq!(sizes[0], template.bytes.len(), "{sizes:?}");
}

#[test]
fn list_offsets_over_many_entries_looks_them_up_a_few_at_a_time() {
    let server = Server::start("kafka-abuse-list-offsets");
    let topic = "looked-up";
    server.admin(&["topic", "create", topic, "--partitions", "1"]);
    // 1 MiB in the segment, so every lookup by timestamp reads a full 256 KiB window of it.
    let shape = BatchShape::filling(128 << 10, 1000, Compression::None);
    let template = Template::build(&shape, 9, 1_700_000_000_000).unwrap();
    for _ in 0..8 {
        produce_to(&server.kafka, topic, 1, &template.bytes);
    }

    // 2048 lookups of 256 KiB each would be 512 MiB if they all ran at once.
    const ENTRIES: usize = 2048;
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                (0..ENTRIES)
                    .map(|_| {
                        ListOffsetsPartition::default()
                            .with_partition_index(0)
                            .with_timestamp(0)
                    })
                    .collect(),
            )]);
    let mut client = Client::connect(&server.kafka).unwrap();
    let before = rss_bytes(server.pid());
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, pid) = (Arc::clone(&done), server.pid());
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = rss_bytes(pid).max(peak);
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let response = client.bootstrap().call(&request).unwrap();
    done.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap().max(rss_bytes(server.pid()));
    let partitions = &response.topics[0].partitions;
    assert_eq!(partitions.len(), ENTRIES);
    for p in partitions {
        assert_eq!((p.error_code, p.offset), (0, 0), "{p:?}");
    }
    let grown = peak.saturating_sub(before);
    eprintln!(
        "list offsets: RSS {} MiB before, peak {} MiB",
        before >> 20,
        peak >> 20
    );
    assert!(
        grown < 64 << 20,
        "resident memory grew by {} MiB for one ListOffsets",
        grown >> 20
    );
}

#[test]
fn a_request_followed_by_extra_bytes_closes_its_connection() {
    let server = Server::start("kafka-abuse-trailing");
    let mut padded = server.connect();
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("kafka-abuse-test"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    padded
        .write_all(&frame_with(&request, 3, 1, &[0u8; 4096]))
        .unwrap();
    assert!(
        closed_by_server(&mut padded),
        "a request with bytes after its body was served"
    );
    let mut other = server.connect();
    api_versions(&mut other, 2).unwrap();
}

#[test]
fn a_connection_that_sends_nothing_for_its_idle_time_is_closed_and_a_busy_one_is_not() {
    let server = Server::start_with("kafka-abuse-idle", &["--connections-max-idle-ms", "1000"]);
    let mut quiet = server.connect();
    let mut busy = server.connect();
    api_versions(&mut quiet, 1).unwrap();
    let started = Instant::now();
    // The busy connection asks something every 300 ms for 2.5 s, well past the idle time.
    for id in 0..9 {
        api_versions(&mut busy, id).unwrap_or_else(|e| panic!("busy request {id}: {e}"));
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        closed_by_server(&mut quiet),
        "the quiet connection is closed"
    );
    eprintln!(
        "quiet connection closed; busy one answered for {:?}",
        started.elapsed()
    );
    api_versions(&mut busy, 100).expect("the busy connection is still served");
}
