//! End-to-end tests of requests built to make the Kafka server hold memory, read data or wait
//! beyond what one request is allowed, against the real `spindle serve` binary.
//!
//! `a_stalled_frame_body_is_cut_off_and_its_memory_given_back` fills a one-shard node's request
//! memory with two connections that announce frames and send no body, so that every later
//! request on the shard waits for memory. Once the frame body deadline (lowered with
//! `--frame-body-timeout-ms`) has passed, the server closes the two connections and another one
//! is answered again.
//!
//! `a_request_followed_by_extra_bytes_closes_its_connection` pads a valid request with bytes
//! after its body: the connection is closed and another one is served.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use spindle_server::Server;

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
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("kafka-abuse-test")))
        .encode(&mut body, R::header_version(version))
        .unwrap();
    request.encode(&mut body, version).unwrap();
    body.extend_from_slice(extra);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
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
            // A length prefix and the start of a header, then nothing.
            let mut start = (1i32 << 20).to_be_bytes().to_vec();
            start.extend_from_slice(&[0, 3, 0, 1]);
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
