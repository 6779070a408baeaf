//! Smoke test of the real binary: it starts, answers a raw ApiVersions request, and stops
//! cleanly on SIGTERM. The full client suites are in tests/e2e (Python) and tests/node.

use std::io::{Read, Write};

use spindle_tests::{spindle_binary, Server};

const API_VERSIONS: i16 = 18;
const PRODUCE: i16 = 0;
const FETCH: i16 = 1;

/// An ApiVersions v0 request frame: size, api key, version, correlation id, client id.
fn api_versions_v0(correlation_id: i32) -> Vec<u8> {
    let client_id = b"rust-smoke";
    let mut request = Vec::new();
    request.extend_from_slice(&API_VERSIONS.to_be_bytes());
    request.extend_from_slice(&0i16.to_be_bytes());
    request.extend_from_slice(&correlation_id.to_be_bytes());
    request.extend_from_slice(&i16::try_from(client_id.len()).unwrap().to_be_bytes());
    request.extend_from_slice(client_id);
    let mut frame = i32::try_from(request.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(&request);
    frame
}

/// Parses an ApiVersions v0 response body: (correlation id, error, [(key, min, max)]).
fn parse_api_versions_v0(body: &[u8]) -> (i32, i16, Vec<(i16, i16, i16)>) {
    let i16_at = |at: usize| i16::from_be_bytes([body[at], body[at + 1]]);
    let i32_at = |at: usize| i32::from_be_bytes(body[at..at + 4].try_into().unwrap());
    let count = usize::try_from(i32_at(6)).unwrap();
    let ranges = (0..count)
        .map(|i| {
            let at = 10 + i * 6;
            (i16_at(at), i16_at(at + 2), i16_at(at + 4))
        })
        .collect();
    (i32_at(0), i16_at(4), ranges)
}

#[test]
fn serves_api_versions_and_stops_on_sigterm() {
    let Some(binary) = spindle_binary() else {
        eprintln!("SKIPPED: target/debug/spindle is not built (cargo build --bin spindle)");
        return;
    };
    let server = Server::start(&binary);
    assert!(server.ready_line.starts_with("spindle ready"));

    let mut stream = server.connect();
    stream.write_all(&api_versions_v0(7)).unwrap();
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).unwrap();
    let size = usize::try_from(i32::from_be_bytes(size)).unwrap();
    assert!((10..65_536).contains(&size), "response size {size}");
    let mut body = vec![0u8; size];
    stream.read_exact(&mut body).unwrap();

    let (correlation_id, error, ranges) = parse_api_versions_v0(&body);
    assert_eq!(correlation_id, 7);
    assert_eq!(error, 0);
    let range = |key: i16| ranges.iter().find(|(k, _, _)| *k == key).copied();
    let (_, _, produce_max) = range(PRODUCE).expect("Produce advertised");
    let (_, _, fetch_max) = range(FETCH).expect("Fetch advertised");
    assert!(produce_max >= 3, "record batches need Produce v3+");
    assert!(fetch_max >= 4, "record batches need Fetch v4+");
    assert!(range(API_VERSIONS).is_some());
    drop(stream);

    let status = server
        .stop()
        .expect("spindle exits within the SIGTERM timeout");
    assert!(status.success(), "spindle exited with {status}");
}
