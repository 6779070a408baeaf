//! Runs the real `spindle-bench embedded` binary on the real disk and checks its JSON report.

mod spindle_server;

use std::path::PathBuf;
use std::process::Command;

use spindle_server::bench_json;

/// A fresh directory under the system temp dir (on the real disk here), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path).expect("clear stale temp dir");
        }
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("leaving {}: {e}", self.0.display());
        }
    }
}

#[test]
fn embedded_count_run_prints_one_json_object_with_the_documented_keys() {
    let dir = TempDir::new("spindle-bench-smoke");
    let json_out = dir.0.join("report.json");
    let plot = dir.0.join("report.svg");
    let v = bench_json(
        Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
            .arg("embedded")
            .arg("--dir")
            .arg(dir.0.join("data"))
            .args([
                "--count",
                "1000",
                "--json",
                "--producers",
                "2",
                "--partitions",
                "2",
            ])
            .arg("--json-out")
            .arg(&json_out)
            .arg("--plot")
            .arg(&plot),
    );
    // 1000 messages of 1 KiB in 64-record batches round up to 16 batches.
    assert_eq!(v["messages"].as_u64(), Some(1024), "{v}");
    assert_eq!(v["batches"].as_u64(), Some(16), "{v}");
    assert_eq!(v["errors"].as_u64(), Some(0), "{v}");
    assert!(
        v["messages_per_sec"].as_f64().is_some_and(|r| r > 0.0),
        "{v}"
    );
    assert!(v["bytes_per_sec"].as_f64().is_some_and(|r| r > 0.0), "{v}");
    for key in ["p50", "p99", "p999", "p9999", "max"] {
        assert!(v["latency_us"][key].is_u64(), "latency_us.{key} in {v}");
    }
    assert_eq!(v["latency_us"]["count"].as_u64(), Some(16), "{v}");
    assert_eq!(v["config"]["fsync"].as_str(), Some("never"), "{v}");
    assert!(v.get("syncs").is_none(), "nothing synced: {v}");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_out).expect("json-out written"))
            .expect("json-out is JSON");
    assert_eq!(saved["messages"], v["messages"]);
    let svg = std::fs::read_to_string(&plot).expect("plot written");
    assert!(
        svg.starts_with("<svg"),
        "an SVG: {}",
        &svg[..svg.len().min(80)]
    );
}

#[test]
fn a_durable_run_reports_its_syncs_and_the_batches_each_carried() {
    let dir = TempDir::new("spindle-bench-syncs");
    let v = bench_json(
        Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
            .arg("embedded")
            .arg("--dir")
            .arg(dir.0.join("data"))
            .args(["--count", "2048", "--json", "--fsync", "batch"])
            .args(["--producers", "4", "--in-flight", "1"]),
    );
    assert_eq!(v["batches"].as_u64(), Some(32), "{v}");
    let syncs = v["syncs"]["count"].as_u64().unwrap_or(0);
    // Every acknowledged batch was synced by some round; rounds carry one batch or more.
    assert!((1..=32).contains(&syncs), "{v}");
    let per_sync = v["syncs"]["batches_per_sync"].as_f64().unwrap_or(0.0);
    assert!((per_sync - 32.0 / syncs as f64).abs() < 1e-9, "{v}");
}

#[test]
fn producers_on_the_shards_write_every_batch_to_partitions_of_two_shards() {
    let dir = TempDir::new("spindle-bench-on-shards");
    let v = bench_json(
        Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
            .arg("embedded")
            .arg("--dir")
            .arg(dir.0.join("data"))
            .args(["--count", "4096", "--json", "--producers-on-shards"])
            .args(["--shards", "2", "--partitions", "4", "--producers", "3"]),
    );
    assert_eq!(v["batches"].as_u64(), Some(64), "{v}");
    assert_eq!(v["messages"].as_u64(), Some(4096), "{v}");
    assert_eq!(v["config"]["producers_on_shards"], true, "{v}");
    // Every batch counts in the second it was meant to be sent in.
    let per_second = v["latency_series"].as_array().unwrap();
    let counted: u64 = per_second
        .iter()
        .map(|s| s["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 64, "{v}");
}

#[test]
fn a_warm_up_runs_first_and_counts_in_no_figure() {
    let dir = TempDir::new("spindle-bench-warmup");
    let v = bench_json(
        Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
            .arg("embedded")
            .arg("--dir")
            .arg(dir.0.join("data"))
            .args(["--count", "640", "--warmup-secs", "1", "--json"])
            .args(["--rate", "2000"]),
    );
    // At 2000 msgs/s the warm-up sends about 2000 messages; only the 640 after it count.
    assert_eq!(v["messages"].as_u64(), Some(640), "{v}");
    assert_eq!(v["batches"].as_u64(), Some(10), "{v}");
    assert_eq!(v["config"]["warmup_secs"].as_u64(), Some(1), "{v}");
    // Only the measured requests say how late they left.
    assert_eq!(v["send_delay_us"]["count"].as_u64(), Some(10), "{v}");
    let elapsed = v["elapsed_secs"].as_f64().unwrap_or(f64::MAX);
    assert!(
        elapsed < 0.9,
        "the measured part excludes the warm-up: {elapsed} s"
    );
}

#[test]
fn bad_flags_fail_with_a_message_and_no_json() {
    let output = Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
        .args(["embedded", "--in-flight", "0", "--json", "--count", "10"])
        .output()
        .expect("spindle-bench runs");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--in-flight"));
}
