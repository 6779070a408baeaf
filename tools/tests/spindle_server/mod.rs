//! A real `spindle serve` child process for the bench tests.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `spindle serve` child on its own data directory, stopped (by its PID) on drop.
pub struct Server {
    child: Child,
    dir: PathBuf,
    /// The Kafka listener, host:port.
    pub kafka: String,
    /// The gRPC listener, host:port.
    pub grpc: String,
}

impl Server {
    /// Starts a one-shard node with both listeners on free ports; `name` keeps concurrent
    /// tests' data directories apart.
    pub fn start(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("spindle-bench-kafka-{name}-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("clear stale dir");
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .arg("serve")
            .arg("--data-dir")
            .arg(&dir)
            .args([
                "--kafka-listen",
                "127.0.0.1:0",
                "--grpc-listen",
                "127.0.0.1:0",
            ])
            .args(["--shards", "1", "--log-level", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spindle serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut ready = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("reads stdout");
            if line.starts_with("spindle ready:") {
                ready = Some(line);
                break;
            }
            assert!(Instant::now() < deadline, "spindle serve not ready in time");
        }
        let ready = ready.expect("spindle serve printed its ready line");
        let field = |key: &str| {
            ready
                .split_whitespace()
                .find_map(|f| f.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in {ready:?}"))
                .to_owned()
        };
        let (kafka, grpc) = (field("kafka="), field("grpc="));
        Self {
            child,
            dir,
            kafka,
            grpc,
        }
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
