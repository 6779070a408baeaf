//! Runs `spindle-bench kafka` against a real `spindle serve` on a free local port and checks
//! that what the producers had acknowledged, the consumers read back.

mod spindle_server;

use std::process::Command;

use spindle_server::{bench_json, Certificates, Server, PRINCIPALS};

fn bench(args: &[&str]) -> serde_json::Value {
    bench_json(
        Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
            .arg("kafka")
            .args(args)
            .arg("--json"),
    )
}

/// A run of 2000 records of 100 bytes in batches of 10 to `topic`, with `extra` flags and one
/// consumer; checks that every record was acknowledged and consumed, and returns the report.
fn two_thousand_through(server: &Server, topic: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "--bootstrap",
        &server.kafka,
        "--topic",
        topic,
        "--consumers",
        "1",
    ];
    args.extend([
        "--count",
        "2000",
        "--message-bytes",
        "100",
        "--batch-bytes",
        "1000",
    ]);
    args.extend(extra);
    let v = bench(&args);
    assert_eq!(v["errors"].as_u64(), Some(0), "{v}");
    assert_eq!(v["messages"].as_u64(), Some(2000), "{v}");
    assert_eq!(v["consume"]["messages"].as_u64(), Some(2000), "{v}");
    v
}

#[test]
fn kafka_produce_and_consume_through_spindle_serve_agree() {
    let server = Server::start("e2e");
    let v = two_thousand_through(
        &server,
        "bench-e2e",
        &[
            "--partitions",
            "2",
            "--producers",
            "2",
            "--compression",
            "lz4",
        ],
    );
    for key in ["p50", "p99", "p999", "p9999", "max"] {
        assert!(v["latency_us"][key].is_u64(), "latency_us.{key} in {v}");
        assert!(
            v["consume"]["e2e_latency_us"][key].is_u64(),
            "e2e {key} in {v}"
        );
    }
    assert_eq!(v["latency_us"]["count"].as_u64(), Some(200), "{v}");

    // A consume-only run from the start reads back what the first run wrote.
    let again = bench(&[
        "--bootstrap",
        &server.kafka,
        "--topic",
        "bench-e2e",
        "--producers",
        "0",
        "--consumers",
        "2",
        "--from",
        "start",
        "--count",
        "2000",
    ]);
    assert_eq!(again["consume"]["messages"].as_u64(), Some(2000), "{again}");
    assert_eq!(again["errors"].as_u64(), Some(0), "{again}");
}

#[test]
fn requests_for_several_partitions_fill_each_one() {
    let server = Server::start("per-request");
    let v = two_thousand_through(
        &server,
        "bench-several",
        &[
            "--partitions",
            "4",
            "--producers",
            "1",
            "--partitions-per-request",
            "4",
        ],
    );
    // 200 batches of 10 records, four to a request.
    assert_eq!(v["batches"].as_u64(), Some(200), "{v}");
    assert_eq!(v["latency_us"]["count"].as_u64(), Some(50), "{v}");
    let described = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["topic", "describe", "bench-several", "--json"])
        .args(["--bootstrap", &server.kafka])
        .env_remove("SPINDLE_BOOTSTRAP")
        .output()
        .expect("spindle runs");
    assert!(described.status.success(), "{described:?}");
    let described: serde_json::Value =
        serde_json::from_slice(&described.stdout).expect("JSON description");
    let ends: Vec<u64> = described["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["end_offset"].as_u64().expect("end offset"))
        .collect();
    assert_eq!(ends, vec![500; 4], "each partition got a quarter");

    // More partitions per request than the producer writes is refused at the start.
    let refused = Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
        .args([
            "kafka",
            "--bootstrap",
            &server.kafka,
            "--topic",
            "bench-several",
        ])
        .args(["--partitions-per-request", "5", "--count", "10"])
        .output()
        .expect("spindle-bench runs");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--partitions-per-request 5 is more than the 4 partitions"),
        "{stderr}"
    );
}

#[test]
fn acks_zero_paced_run_sends_at_the_asked_rate() {
    let server = Server::start("paced");
    let v = bench(&[
        "--bootstrap",
        &server.kafka,
        "--acks",
        "0",
        "--rate",
        "2000",
        "--duration-secs",
        "1",
        "--message-bytes",
        "100",
        "--batch-bytes",
        "1000",
    ]);
    assert_eq!(v["errors"].as_u64(), Some(0), "{v}");
    // 2000 msgs/s for 1 s in batches of 10: 200 batches.
    assert_eq!(v["batches"].as_u64(), Some(200), "{v}");
    // Each paced request says how late it left.
    assert_eq!(v["send_delay_us"]["count"].as_u64(), Some(200), "{v}");
}

#[test]
fn a_run_logs_in_with_sasl_on_every_connection() {
    let server = Server::start_sasl("bench-sasl", "PLAIN,SCRAM-SHA-256");
    let as_app = |password: &str| {
        Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
            .arg("kafka")
            .args(["--bootstrap", &server.kafka, "--topic", "app.bench"])
            .args([
                "--sasl-mechanism",
                "SCRAM-SHA-256",
                "--sasl-username",
                "app",
            ])
            .env("SPINDLE_SASL_PASSWORD", password)
            .args(["--producers", "2", "--consumers", "1", "--count", "1000"])
            .args(["--message-bytes", "100", "--batch-bytes", "1000", "--json"])
            .output()
            .unwrap()
    };
    // The topic is created by the operator: the bench's principal may not create topics.
    server.admin_as(
        "ops",
        "ops-token",
        &["topic", "create", "app.bench", "--partitions", "2"],
    );
    let run = as_app("app-token");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(v["errors"].as_u64(), Some(0), "{v}");
    assert_eq!(v["consume"]["messages"].as_u64(), Some(1000), "{v}");

    let refused = as_app("wrong");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("SASL_AUTHENTICATION_FAILED"), "{stderr}");
}

#[test]
fn a_run_over_tls_trusts_only_the_ca_it_is_given() {
    let certificates = Certificates::new("bench-tls");
    let config = format!("{PRINCIPALS}{}", certificates.kafka_tls_table());
    let server = Server::start_with_config(
        "bench-tls",
        &config,
        &["--kafka-sasl-mechanisms", "SCRAM-SHA-512"],
    );
    let run = |ca: Option<&std::path::Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_spindle-bench"));
        command
            .arg("kafka")
            .args(["--bootstrap", &server.kafka, "--topic", "tls-bench"])
            .args([
                "--sasl-mechanism",
                "SCRAM-SHA-512",
                "--sasl-username",
                "ops",
            ])
            .env("SPINDLE_SASL_PASSWORD", "ops-token")
            .args(["--producers", "2", "--in-flight", "4", "--consumers", "1"])
            // Requests of 100 KB: more than rustls seals at once by default.
            .args([
                "--count",
                "2000",
                "--message-bytes",
                "1000",
                "--batch-bytes",
                "100000",
            ])
            .arg("--json");
        if let Some(ca) = ca {
            command.arg("--tls-ca").arg(ca);
        }
        command.output().unwrap()
    };
    // SASL_SSL: the pipelined producers' halves share each TLS session.
    let ok = run(Some(&certificates.ca));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["errors"].as_u64(), Some(0), "{v}");
    assert_eq!(v["messages"].as_u64(), Some(2000), "{v}");
    assert_eq!(v["consume"]["messages"].as_u64(), Some(2000), "{v}");

    // A CA that did not sign the server's certificate, and no TLS at all, are both refused.
    let stranger = Certificates::new("bench-tls-stranger");
    let untrusted = run(Some(&stranger.ca));
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(!untrusted.status.success());
    assert!(
        stderr.contains("TLS handshake") && stderr.contains("certificate"),
        "{stderr}"
    );
    let plain = run(None);
    assert!(
        !plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stdout)
    );
}

/// `spindle-bench sink` on a free port, stopped when dropped.
struct Sink {
    child: std::process::Child,
    addr: String,
}

impl Sink {
    fn start(partitions: &str) -> Self {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
            .args([
                "sink",
                "--listen",
                "127.0.0.1:0",
                "--partitions",
                partitions,
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spindle-bench sink starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("a ready line");
        let addr = line
            .trim()
            .strip_prefix("sink ready: kafka=")
            .unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
            .to_owned();
        Self { child, addr }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_sink_acknowledges_every_batch_of_a_kafka_run() {
    let sink = Sink::start("3");
    let v = bench(&[
        "--bootstrap",
        &sink.addr,
        "--partitions",
        "3",
        "--producers",
        "2",
        "--in-flight",
        "8",
        "--count",
        "3000",
        "--message-bytes",
        "100",
        "--batch-bytes",
        "1000",
    ]);
    assert_eq!(v["errors"].as_u64(), Some(0), "{v}");
    assert_eq!(v["messages"].as_u64(), Some(3000), "{v}");
    assert_eq!(v["latency_us"]["count"].as_u64(), Some(300), "{v}");

    // More partitions than the sink's metadata lists is the generator's usual refusal.
    let short = Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
        .args(["kafka", "--bootstrap", &sink.addr, "--partitions", "4"])
        .args(["--count", "10", "--json"])
        .output()
        .expect("spindle-bench runs");
    assert!(!short.status.success());
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(stderr.contains("fewer than --partitions 4"), "{stderr}");
}

/// As a Kafka broker does, the sink answers an ApiVersions at a version it does not serve with
/// UNSUPPORTED_VERSION in a v0 body that lists what it serves, and keeps the connection.
#[test]
fn the_sink_answers_a_newer_api_versions_with_the_versions_it_serves() {
    use std::io::{Read, Write};
    let sink = Sink::start("1");
    let mut conn = std::net::TcpStream::connect(&sink.addr).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    // ApiVersions v9 (key 18), correlation id 77, a null client id and an empty tag buffer.
    let request: &[u8] = &[0, 0, 0, 11, 0, 18, 0, 9, 0, 0, 0, 77, 0xff, 0xff, 0];
    for _ in 0..2 {
        conn.write_all(request).unwrap();
        let mut len = [0u8; 4];
        conn.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        conn.read_exact(&mut body).unwrap();
        assert_eq!(&body[..4], &77i32.to_be_bytes(), "the correlation id");
        assert_eq!(&body[4..6], &35i16.to_be_bytes(), "UNSUPPORTED_VERSION");
        let keys = i32::from_be_bytes(body[6..10].try_into().unwrap());
        assert!(keys > 0, "the served APIs are listed");
        // (api key, min, max) triples: ApiVersions is served up to v3.
        let api_versions = body[10..]
            .chunks_exact(6)
            .find(|c| c[..2] == 18i16.to_be_bytes())
            .expect("ApiVersions listed");
        assert_eq!(&api_versions[4..6], &3i16.to_be_bytes());
    }
}
