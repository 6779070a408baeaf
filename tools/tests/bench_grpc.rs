//! Runs `spindle-bench grpc` against a real `spindle serve` with its gateway on a free port.

mod spindle_server;

use std::process::Command;

use spindle_server::{bench_json, Server};

fn count_run_reports_every_batch_acknowledged(name: &str, extra: &[&str]) {
    let server = Server::start(name);
    let v = bench_json(
        Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
            .arg("grpc")
            .arg("--endpoint")
            .arg(format!("http://{}", server.grpc))
            .args(extra)
            .args(["--count", "1000", "--producers", "2", "--partitions", "2"])
            .args(["--message-bytes", "100", "--batch-bytes", "1000", "--json"]),
    );
    assert_eq!(v["mode"].as_str(), Some("grpc"), "{v}");
    assert_eq!(v["errors"].as_u64(), Some(0), "{v}");
    assert_eq!(v["messages"].as_u64(), Some(1000), "{v}");
    assert_eq!(v["batches"].as_u64(), Some(100), "{v}");
    assert!(v["latency_us"]["p99"].is_u64(), "{v}");
}

#[test]
fn grpc_unary_count_run_reports_every_batch_acknowledged() {
    count_run_reports_every_batch_acknowledged("grpc-unary", &[]);
}

#[test]
fn grpc_stream_count_run_reports_every_batch_acknowledged() {
    count_run_reports_every_batch_acknowledged("grpc-stream", &["--stream", "--in-flight", "8"]);
}
