//! Runs `spindle-bench kafka` against a real `spindle serve` on a free local port and checks
//! that what the producers had acknowledged, the consumers read back.

mod spindle_server;

use std::process::Command;

use spindle_server::{bench_json, Server};

fn bench(args: &[&str]) -> serde_json::Value {
    bench_json(
        Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
            .arg("kafka")
            .args(args)
            .arg("--json"),
    )
}

#[test]
fn kafka_produce_and_consume_through_spindle_serve_agree() {
    let server = Server::start("e2e");
    let v = bench(&[
        "--bootstrap",
        &server.kafka,
        "--topic",
        "bench-e2e",
        "--partitions",
        "2",
        "--producers",
        "2",
        "--consumers",
        "1",
        "--count",
        "2000",
        "--message-bytes",
        "100",
        "--batch-bytes",
        "1000",
        "--compression",
        "lz4",
    ]);
    assert_eq!(v["errors"].as_u64(), Some(0), "{v}");
    assert_eq!(v["messages"].as_u64(), Some(2000), "{v}");
    assert_eq!(v["consume"]["messages"].as_u64(), Some(2000), "{v}");
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
