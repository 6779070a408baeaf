//! Reads at the tail, served from the in-memory tail cache (no disk I/O).

use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use spindle_benches::{batch, on_executor, ScratchDir};
use spindle_log::{Log, LogConfig, Offset, SystemClock};

/// Batches in the log (all within the tail cache).
const BATCHES: u64 = 64;
const RECORDS: usize = 16;

fn tail_read(c: &mut Criterion) {
    let mut g = c.benchmark_group("tail_read");
    let b = batch(RECORDS, 1024);
    for max_bytes in [1usize << 10, 1 << 20] {
        let per_read = if max_bytes < b.len() {
            b.len()
        } else {
            max_bytes / b.len() * b.len()
        };
        g.throughput(Throughput::Bytes(per_read as u64));
        g.bench_function(BenchmarkId::new("max_bytes", max_bytes), |bench| {
            bench.iter_custom(|iters| {
                let dir = ScratchDir::new("read");
                on_executor(|| async {
                    let log = Log::open(dir.path(), LogConfig::default(), Rc::new(SystemClock))
                        .await
                        .expect("open");
                    for _ in 0..BATCHES {
                        log.append(b.clone()).expect("append");
                    }
                    log.flush().await.expect("flush");
                    let mut timed = Duration::ZERO;
                    let t = Instant::now();
                    for i in 0..iters {
                        let from = Offset(i % (BATCHES * RECORDS as u64));
                        let got = log.read(from, max_bytes).await.expect("read");
                        assert!(!got.is_empty());
                    }
                    timed += t.elapsed();
                    log.close().await.expect("close");
                    timed
                })
            });
        });
    }
    g.finish();
}

criterion_group!(benches, tail_read);
criterion_main!(benches);
