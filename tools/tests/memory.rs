//! End-to-end tests of the shard memory budget and of retention changed at run time, against
//! the real `spindle serve` binary on free loopback ports.
//!
//! `producer_outrunning_the_budget_is_throttled_and_memory_stays_bounded` starts one shard with
//! a 32 MiB budget and pushes 240 MiB at it from four pipelined connections as fast as the
//! sockets take it, sampling the server's resident memory (`VmRSS`) meanwhile. It asserts the
//! peak stays under the budget plus [`FIXED_OVERHEAD_BYTES`], that some Produce answer carried a
//! throttle time, and that every acknowledged batch reads back at the offset it was given.
//!
//! `a_client_that_reads_no_answers_does_not_stall_other_connections` checks that request memory
//! is given back when a request is handled, not when its answer is written: a client that piles
//! up unread Fetch answers and then sends more produce bytes than the request share must not
//! keep another connection from being answered.
//!
//! `pipelined_fetches_of_old_data_stay_within_the_fetch_share` stores 48 MiB, then pipelines 32
//! Fetches of all of it from offset 0 on one connection and reads none of their answers for a
//! second: each answer must stay within the shard's fetch share (an eighth of the budget) and
//! still carry a batch, another consumer must be answered meanwhile, and the server's resident
//! memory must stay under the budget plus the fixed overhead. (Before answers were charged, the
//! 32 answers of up to 48 MiB each kept the other consumer waiting beyond 5 s.)
//!
//! `retention_changed_at_run_time_deletes_old_segments` rolls many small segments, lowers
//! `retention.bytes` with `spindle topic alter`, and waits for the shard's retention task to
//! delete the old segments: the earliest offset moves and the segment files leave the disk.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, HeaderVersion, StrBytes};
use kafka_protocol::records::Compression;
use spindle_server::{rss_bytes, Server};
use spindle_tests::{length_prefixed, request_bytes};
use spindle_tools::admin::client::{Client, EARLIEST};
use spindle_tools::bench::batch::{BatchShape, Template};

mod spindle_server;

/// The shard memory budget the pressure test runs with.
const BUDGET_BYTES: u64 = 32 << 20;
/// Memory the server holds beyond its budget whatever the load: code and libraries, the tokio
/// runtime of the gateway, glommio's rings and its registered I/O buffers (10 MiB per shard),
/// per-connection read and write buffers, each log's DMA write buffers and indexes (27 MiB at
/// rest, debug build), plus what the allocator keeps after freeing (glibc holds freed 1 MiB
/// buffers in per-thread arenas). Measured peaks of this test: 74 to 96 MiB while frame bodies
/// were read with `read_to_end` (2.8 s a run in a debug build), 86 to 114 MiB since they are read
/// straight into their buffer (0.55 s a run: more frames are allocated and freed while the
/// allocator holds on to freed ones), i.e. up to 82 MiB above the budget; the rest is margin.
const FIXED_OVERHEAD_BYTES: u64 = 96 << 20;
/// Producer connections of the pressure test.
const PRODUCERS: usize = 4;
/// Produce requests each connection sends (one batch of [`BATCH_BYTES`] each).
const REQUESTS_PER_PRODUCER: usize = 60;
/// Bytes of record values in each batch.
const BATCH_BYTES: usize = 1 << 20;
/// Longest the produce phase may take.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(30);
/// Produce request version sent (flexible, with throttle time).
const PRODUCE_VERSION: i16 = 9;

/// A one-shard node started with `extra` flags.
fn start_server(extra: &[&str]) -> Server {
    let flags: Vec<&str> = ["--shards", "1"].iter().chain(extra).copied().collect();
    Server::start_with("memory", &flags)
}

/// One length-prefixed Produce request of `batch` to partition 0 of `topic`.
fn produce_frame(topic: &str, batch: Bytes, correlation_id: i32) -> Vec<u8> {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    let body = request_bytes(&request, PRODUCE_VERSION, correlation_id, "memory-test").unwrap();
    length_prefixed(&body)
}

/// One length-prefixed Fetch request (v12) of partition 0 of `topic` from `offset`, answering
/// up to `max_bytes` at once.
fn fetch_frame(topic: &str, offset: i64, correlation_id: i32, max_bytes: i32) -> Vec<u8> {
    let request = FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(max_bytes)])]);
    let body = request_bytes(&request, 12, correlation_id, "memory-test").unwrap();
    length_prefixed(&body)
}

/// Reads one length-prefixed Fetch response (v12): its correlation id and partition 0's records.
fn read_fetch_response(stream: &mut TcpStream) -> (i32, Bytes) {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    let mut body = Bytes::from(body);
    let header = ResponseHeader::decode(&mut body, FetchResponse::header_version(12)).unwrap();
    let response = FetchResponse::decode(&mut body, 12).unwrap();
    let part = &response.responses[0].partitions[0];
    assert_eq!(part.error_code, 0, "fetch failed: {part:?}");
    (
        header.correlation_id,
        part.records.clone().unwrap_or_default(),
    )
}

/// Reads one length-prefixed Produce response.
fn read_produce_response(stream: &mut TcpStream) -> (i32, ProduceResponse) {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    let mut body = Bytes::from(body);
    let header =
        ResponseHeader::decode(&mut body, ProduceResponse::header_version(PRODUCE_VERSION))
            .unwrap();
    let response = ProduceResponse::decode(&mut body, PRODUCE_VERSION).unwrap();
    (header.correlation_id, response)
}

/// What the producers saw.
#[derive(Default)]
struct Acknowledged {
    /// Acknowledged base offset → records in the batch.
    batches: BTreeMap<i64, i32>,
    max_throttle_ms: i32,
}

/// One connection: a thread writes every request back to back (pipelined; the server's
/// in-flight limit and TCP hold it back), this thread reads the answers.
fn produce_pipelined(kafka: &str, topic: &str, template: &Template) -> Acknowledged {
    let mut stream = TcpStream::connect(kafka).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(PRODUCE_TIMEOUT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let frame = produce_frame(topic, template.bytes.clone(), 0);
    let sender = std::thread::spawn(move || {
        for id in 0..REQUESTS_PER_PRODUCER as i32 {
            let mut frame = frame.clone();
            // The correlation id sits right after the api key and version.
            frame[8..12].copy_from_slice(&id.to_be_bytes());
            writer.write_all(&frame).unwrap();
        }
    });
    let mut acked = Acknowledged::default();
    for expected in 0..REQUESTS_PER_PRODUCER as i32 {
        let (id, response) = read_produce_response(&mut stream);
        assert_eq!(id, expected, "answers come back in request order");
        acked.max_throttle_ms = acked.max_throttle_ms.max(response.throttle_time_ms);
        let part = &response.responses[0].partition_responses[0];
        assert_eq!(part.error_code, 0, "produce failed: {part:?}");
        acked
            .batches
            .insert(part.base_offset, template.record_count());
    }
    sender.join().unwrap();
    acked
}

/// Reads partition 0 of `topic` from offset 0 to its end: base offset → records, per batch.
fn read_back(kafka: &str, topic: &str) -> BTreeMap<i64, i32> {
    let mut client = Client::connect(kafka).unwrap();
    let mut batches = BTreeMap::new();
    let mut offset = 0i64;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "reading back took too long");
        let request = FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(8 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(8 << 20)])]);
        let response = client.bootstrap().call(&request).unwrap();
        let part = &response.responses[0].partitions[0];
        assert_eq!(part.error_code, 0);
        let records = part.records.clone().unwrap_or_default();
        let mut at = 0usize;
        while records.len() >= at + 61 {
            let base = i64::from_be_bytes(records[at..at + 8].try_into().unwrap());
            let len = i32::from_be_bytes(records[at + 8..at + 12].try_into().unwrap()) as usize;
            if records.len() < at + 12 + len {
                break;
            }
            let count = i32::from_be_bytes(records[at + 57..at + 61].try_into().unwrap());
            let last_delta = i32::from_be_bytes(records[at + 23..at + 27].try_into().unwrap());
            batches.insert(base, count);
            offset = base + i64::from(last_delta) + 1;
            at += 12 + len;
        }
        if offset >= part.high_watermark {
            return batches;
        }
    }
}

#[test]
fn producer_outrunning_the_budget_is_throttled_and_memory_stays_bounded() {
    let server = start_server(&[
        "--shard-memory-bytes",
        &BUDGET_BYTES.to_string(),
        "--max-frame-bytes",
        &(4u64 << 20).to_string(),
    ]);
    let topic = "pressure";
    server.admin(&["topic", "create", topic, "--partitions", "1"]);
    let idle_rss = rss_bytes(server.pid());
    let shape = BatchShape::filling(BATCH_BYTES, 1000, Compression::None);
    let template = Template::build(&shape, 7, 1_700_000_000_000).unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(idle_rss));
    let sampler = {
        let (done, peak, pid) = (done.clone(), peak.clone(), server.pid());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let started = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let (kafka, template) = (server.kafka.clone(), template.clone());
            std::thread::spawn(move || produce_pipelined(&kafka, topic, &template))
        })
        .collect();
    let results: Vec<Acknowledged> = producers.into_iter().map(|p| p.join().unwrap()).collect();
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(Ordering::Relaxed);
    let sent_bytes = (PRODUCERS * REQUESTS_PER_PRODUCER * template.bytes.len()) as u64;
    let max_throttle_ms = results.iter().map(|r| r.max_throttle_ms).max().unwrap();
    eprintln!(
        "memory test: sent {} MiB in {elapsed:?}; RSS idle {} MiB, peak {} MiB; budget {} MiB, \
         allowed peak {} MiB; max throttle {max_throttle_ms} ms",
        sent_bytes >> 20,
        idle_rss >> 20,
        peak >> 20,
        BUDGET_BYTES >> 20,
        (BUDGET_BYTES + FIXED_OVERHEAD_BYTES) >> 20
    );
    assert!(
        sent_bytes > 4 * BUDGET_BYTES,
        "the load must outrun the budget"
    );
    assert!(
        peak <= BUDGET_BYTES + FIXED_OVERHEAD_BYTES,
        "peak RSS {peak} above budget {BUDGET_BYTES} + overhead {FIXED_OVERHEAD_BYTES}"
    );
    assert!(
        max_throttle_ms > 0,
        "no Produce answer carried a throttle time"
    );

    let mut acked = BTreeMap::new();
    for r in &results {
        acked.extend(r.batches.iter().map(|(k, v)| (*k, *v)));
    }
    assert_eq!(acked.len(), PRODUCERS * REQUESTS_PER_PRODUCER);
    let stored = read_back(&server.kafka, topic);
    for (base, count) in &acked {
        assert_eq!(
            stored.get(base),
            Some(count),
            "acknowledged batch at {base} reads back"
        );
    }
}

/// Samples `pid`'s resident memory every 10 ms until `done`, keeping the peak.
fn sample_peak_rss(pid: u32, done: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !done.load(Ordering::Relaxed) {
            peak = peak.max(rss_bytes(pid));
            std::thread::sleep(Duration::from_millis(10));
        }
        peak
    })
}

/// A one-shard node with the test budget and 4 MiB frames, holding one-partition `topic`, and
/// a template of [`BATCH_BYTES`] whose records carry `seed`.
fn budgeted_server_with_topic(topic: &str, seed: u64) -> (Server, Template) {
    let server = start_server(&[
        "--shard-memory-bytes",
        &BUDGET_BYTES.to_string(),
        "--max-frame-bytes",
        &(4u64 << 20).to_string(),
    ]);
    server.admin(&["topic", "create", topic, "--partitions", "1"]);
    let shape = BatchShape::filling(BATCH_BYTES, 1000, Compression::None);
    let template = Template::build(&shape, seed, 1_700_000_000_000).unwrap();
    (server, template)
}

/// Produces `batches` copies of `template` to partition 0 of `topic`, one at a time.
fn fill(server: &Server, topic: &str, template: &Template, batches: i32) {
    let mut filler = TcpStream::connect(&server.kafka).unwrap();
    filler
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    for id in 0..batches {
        filler
            .write_all(&produce_frame(topic, template.bytes.clone(), id))
            .unwrap();
        let (_, response) = read_produce_response(&mut filler);
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    }
}

#[test]
fn pipelined_fetches_of_old_data_stay_within_the_fetch_share() {
    let (server, template) = budgeted_server_with_topic("old-data", 3);
    let topic = "old-data";
    // Far more than the caches hold, so the fetches read segment files.
    fill(&server, topic, &template, 48);
    let fetch_share = BUDGET_BYTES as usize / 8;
    let done = Arc::new(AtomicBool::new(false));
    let sampler = sample_peak_rss(server.pid(), done.clone());

    // 32 pipelined Fetches of everything from offset 0 (48 MiB each, were it allowed), none of
    // whose answers is read for a second.
    const FETCHES: i32 = 32;
    let mut greedy = TcpStream::connect(&server.kafka).unwrap();
    greedy
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    for id in 0..FETCHES {
        greedy
            .write_all(&fetch_frame(topic, 0, id, 64 << 20))
            .unwrap();
    }
    std::thread::sleep(Duration::from_secs(1));

    // Meanwhile another consumer is answered at once, with at least the floor.
    let mut other = TcpStream::connect(&server.kafka).unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    other
        .write_all(&fetch_frame(topic, 0, 7, 64 << 20))
        .unwrap();
    let (id, records) = read_fetch_response(&mut other);
    assert_eq!(id, 7);
    assert!(
        !records.is_empty() && records.len() <= fetch_share,
        "the other consumer got {} bytes",
        records.len()
    );

    let mut sizes = Vec::new();
    for expected in 0..FETCHES {
        let (id, records) = read_fetch_response(&mut greedy);
        assert_eq!(id, expected, "answers come back in request order");
        sizes.push(records.len());
    }
    done.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    eprintln!(
        "fetch share {} MiB: answer sizes {sizes:?}; peak RSS {} MiB",
        fetch_share >> 20,
        peak >> 20
    );
    // Each answer is granted at most the share and starts at offset 0 with a whole batch.
    for size in &sizes {
        assert!(
            *size >= template.bytes.len() && *size <= fetch_share,
            "answer of {size} bytes: must hold a batch and stay within the fetch share"
        );
    }
    assert!(
        peak <= BUDGET_BYTES + FIXED_OVERHEAD_BYTES,
        "peak RSS {peak} above budget {BUDGET_BYTES} + overhead {FIXED_OVERHEAD_BYTES}"
    );
}

/// Segment files (`*.log`) under the data directory.
fn segment_files(dir: &Path) -> usize {
    let mut count = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "log") {
                count += 1;
            }
        }
    }
    count
}

fn earliest(kafka: &str, topic: &str) -> i64 {
    let mut client = Client::connect(kafka).unwrap();
    let partitions = client.partitions(topic).unwrap();
    let offsets = client.list_offsets(&partitions, EARLIEST).unwrap();
    offsets.values().next().copied().flatten().unwrap()
}

#[test]
fn retention_changed_at_run_time_deletes_old_segments() {
    let server = start_server(&[]);
    let topic = "retained";
    server.admin(&[
        "topic",
        "create",
        topic,
        "--partitions",
        "1",
        "--config",
        "segment.bytes=65536",
    ]);
    let shape = BatchShape::filling(16 << 10, 100, Compression::None);
    let template = Template::build(&shape, 3, 1_700_000_000_000).unwrap();
    let mut stream = TcpStream::connect(&server.kafka).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    for id in 0..64 {
        stream
            .write_all(&produce_frame(topic, template.bytes.clone(), id))
            .unwrap();
        let (_, response) = read_produce_response(&mut stream);
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    }
    let before = segment_files(&server.data_dir);
    assert!(before >= 10, "small segments rolled: {before}");
    assert_eq!(earliest(&server.kafka, topic), 0);

    server.admin(&["topic", "alter", topic, "--set", "retention.bytes=131072"]);
    // The retention task runs every few seconds; no restart.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (start, files) = (
            earliest(&server.kafka, topic),
            segment_files(&server.data_dir),
        );
        if start > 0 && files < before / 2 {
            eprintln!("retention: {before} segments → {files}, earliest offset 0 → {start}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention did not run: earliest {start}, {files} of {before} segments left"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_client_that_reads_no_answers_does_not_stall_other_connections() {
    let (server, template) = budgeted_server_with_topic("stall", 5);
    let topic = "stall";
    fill(&server, topic, &template, 16);

    // The stalled client asks for far more answer bytes than the sockets buffer, then sends
    // more produce bytes than the request share, and never reads.
    let stalled = TcpStream::connect(&server.kafka).unwrap();
    let mut stalled_writer = stalled.try_clone().unwrap();
    let (fetch, produce) = (
        fetch_frame(topic, 0, 0, 4 << 20),
        produce_frame(topic, template.bytes, 0),
    );
    let writer = std::thread::spawn(move || {
        for _ in 0..8 {
            if stalled_writer.write_all(&fetch).is_err() {
                return;
            }
        }
        for _ in 0..24 {
            // Blocks once the server stops reading; fails when the test shuts the socket.
            if stalled_writer.write_all(&produce).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_secs(1));

    let mut other = TcpStream::connect(&server.kafka).unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let small = Template::build(&BatchShape::filling(1000, 100, Compression::None), 9, 0).unwrap();
    let started = Instant::now();
    other
        .write_all(&produce_frame(topic, small.bytes, 1))
        .unwrap();
    let (_, response) = read_produce_response(&mut other);
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    eprintln!(
        "another connection was answered in {:?} beside a client that reads nothing",
        started.elapsed()
    );
    stalled.shutdown(std::net::Shutdown::Both).unwrap();
    writer.join().unwrap();
}
