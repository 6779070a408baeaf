//! Embedded append throughput and in-memory append latency on one shard.
//!
//! Appends `MIB` MiB of 1 KiB records in 64 KiB batches (fsync never by default) from `WRITERS`
//! concurrent producer tasks, each appending one batch and awaiting its flush, then prints the
//! bandwidth and the p50/p99/p999 of the in-memory `append` call.
//!
//! Usage: `cargo run --release -p spindle-log --example append_throughput -- DIR [MIB] [WRITERS] [FSYNC]`

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use spindle_log::testing::batch;
use spindle_log::{FsyncPolicy, Log, LogConfig, SystemClock};

const RECORD_BYTES: usize = 1024;
/// 1 KiB records in a batch of about 64 KiB.
const RECORDS_PER_BATCH: usize = 63;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).map_or("/tmp/spindle-append-throughput", |s| s));
    let mib: u64 = args.get(2).map_or(1024, |s| s.parse().expect("MIB"));
    let writers: usize = args.get(3).map_or(4, |s| s.parse().expect("WRITERS"));
    let fsync: FsyncPolicy = args
        .get(4)
        .map_or(FsyncPolicy::Never, |s| s.parse().expect("FSYNC"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("clean dir");
    }
    let one = batch(RECORDS_PER_BATCH, RECORD_BYTES, 1_700_000_000_000);
    let total_batches = (mib << 20) / one.len() as u64;
    let spin_us: u64 = std::env::var("SPIN_US").map_or(0, |s| s.parse().expect("SPIN_US"));
    let (elapsed, mut latencies, stats) = glommio::LocalExecutorBuilder::default()
        .spin_before_park(Duration::from_micros(spin_us))
        .spawn(move || async move {
            let config = LogConfig {
                fsync,
                ..LogConfig::default()
            };
            let log = Rc::new(
                Log::open(&dir, config, Rc::new(SystemClock))
                    .await
                    .expect("open"),
            );
            let start = Instant::now();
            let per_writer = total_batches / writers as u64;
            let tasks: Vec<_> = (0..writers)
                .map(|_| {
                    let (log, one) = (log.clone(), one.clone());
                    glommio::spawn_local(async move {
                        let mut lat = Vec::with_capacity(per_writer as usize);
                        for _ in 0..per_writer {
                            // A buffer of its own, as a Kafka request's batches are.
                            let input = BytesMut::from(&one[..]);
                            let t = Instant::now();
                            log.append(input).expect("append");
                            lat.push(t.elapsed());
                            log.flush().await.expect("flush");
                        }
                        lat
                    })
                })
                .collect();
            let mut all: Vec<Duration> = Vec::new();
            for t in tasks {
                all.extend(t.await);
            }
            let elapsed = start.elapsed();
            let stats = log.io_stats();
            log.close().await.expect("close");
            std::fs::remove_dir_all(&dir).expect("clean dir");
            (elapsed, all, stats)
        })
        .expect("executor")
        .join()
        .expect("join");
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let bytes = stats.bytes_written as f64;
    println!(
        "{{\"mib\": {mib}, \"writers\": {writers}, \"fsync\": \"{fsync}\", \"bytes_per_sec\": {:.0}, \"mib_per_sec\": {:.1}, \"writes\": {}, \"syncs\": {}, \"append_p50_us\": {:.2}, \"append_p99_us\": {:.2}, \"append_p999_us\": {:.2}}}",
        bytes / elapsed.as_secs_f64(),
        bytes / elapsed.as_secs_f64() / 1048576.0,
        stats.writes,
        stats.syncs,
        pct(0.5).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
        pct(0.999).as_secs_f64() * 1e6,
    );
}
