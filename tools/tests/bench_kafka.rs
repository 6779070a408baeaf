//! Runs `spindle-bench kafka` against a real `spindle serve` on a free local port and checks
//! that what the producers had acknowledged, the consumers read back.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `spindle serve` child on its own data directory, stopped (by its PID) on drop.
struct Server {
    child: Child,
    dir: PathBuf,
    kafka: String,
}

impl Server {
    fn start(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("spindle-bench-kafka-{name}-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("clear stale dir");
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .arg("serve")
            .arg("--data-dir")
            .arg(&dir)
            .args(["--kafka-listen", "127.0.0.1:0", "--grpc-enabled", "false"])
            .args(["--shards", "1", "--log-level", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spindle serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut kafka = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("reads stdout");
            if let Some(rest) = line.strip_prefix("spindle ready: kafka=") {
                kafka = rest.split_whitespace().next().map(str::to_owned);
                break;
            }
            assert!(Instant::now() < deadline, "spindle serve not ready in time");
        }
        let kafka = kafka.expect("spindle serve printed its ready line");
        Self { child, dir, kafka }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("killing spindle serve: {e}");
        }
        if let Err(e) = self.child.wait() {
            eprintln!("waiting for spindle serve: {e}");
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("leaving {}: {e}", self.dir.display());
        }
    }
}

fn bench(args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
        .arg("kafka")
        .args(args)
        .arg("--json")
        .output()
        .expect("spindle-bench runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}: {stderr}",
        output.status
    );
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON object")
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
