//! Idle memory: starts an engine, creates many empty partitions, lets it settle and prints the
//! process's resident memory (VmRSS) before and after.
//!
//! `cargo run --release -p spindle-engine --example idle_memory [PARTITIONS] [SHARDS]`
//! (defaults: 1000 partitions, 2 shards). Target: 1,000 idle partitions under 100 MiB resident.

use std::time::Duration;

use bytes::Bytes;
use futures::executor::block_on;
use spindle_engine::{Engine, EngineConfig, Placement, Record, TopicConfig, TopicPartition};

/// Most partitions the example writes to (see the disk note in `main`).
const WRITTEN_PARTITIONS_MAX: u32 = 1000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let partitions: u32 = std::env::args().nth(1).map_or(Ok(1000), |a| a.parse())?;
    let shards: usize = std::env::args().nth(2).map_or(Ok(2), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let before = rss_kib();
    let engine = Engine::start(EngineConfig {
        data_dir: dir.path().to_path_buf(),
        shards,
        placement: Placement::Unbound,
        ..EngineConfig::default()
    })?;
    let started = rss_kib();
    let handle = engine.handle();
    // Topics of 100 partitions each, like a node with many modest topics.
    let per_topic = 100.min(partitions);
    let mut created = 0;
    let mut topic = 0;
    while created < partitions {
        let n = per_topic.min(partitions - created);
        block_on(handle.create_topic(&format!("idle-{topic}"), n, TopicConfig::default()))?;
        created += n;
        topic += 1;
    }
    std::thread::sleep(Duration::from_secs(2));
    let idle = rss_kib();
    println!(
        "process before engine start: {:>8.1} MiB",
        before as f64 / 1024.0
    );
    println!(
        "engine started, no topics:   {:>8.1} MiB",
        started as f64 / 1024.0
    );
    println!(
        "{partitions} idle partitions on {shards} shards: {:>8.1} MiB ({:.1} KiB per partition)",
        idle as f64 / 1024.0,
        (idle.saturating_sub(started)) as f64 / f64::from(partitions.max(1))
    );
    // One small record in every partition: what a partition costs once it has been written.
    // Each written partition preallocates its first segment on disk (16 MiB at the time of
    // writing), so this step is skipped for large counts.
    if partitions > WRITTEN_PARTITIONS_MAX {
        engine.shutdown()?;
        return Ok(());
    }
    let mut topic = 0;
    let mut done = 0;
    while done < partitions {
        let n = per_topic.min(partitions - done);
        for p in 0..n {
            let tp = TopicPartition::new(format!("idle-{topic}"), p);
            let record = Record {
                value: Some(Bytes::from_static(b"x")),
                ..Record::default()
            };
            block_on(handle.produce_records(&tp, vec![record]))?;
        }
        done += n;
        topic += 1;
    }
    std::thread::sleep(Duration::from_secs(1));
    let written = rss_kib();
    println!(
        "after one record in each:    {:>8.1} MiB ({:.1} KiB per partition)",
        written as f64 / 1024.0,
        (written.saturating_sub(started)) as f64 / f64::from(partitions.max(1))
    );
    engine.shutdown()?;
    Ok(())
}
