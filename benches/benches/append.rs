//! Append: validation + append in memory (no I/O wait), and append + flush to disk.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use spindle_benches::{batch, on_executor, ScratchDir};
use spindle_log::batch::validate;
use spindle_log::{FsyncPolicy, Log, LogConfig, SystemClock};

/// Flush (untimed) every this many appends so the in-memory queue stays bounded.
const FLUSH_EVERY: u64 = 64;

fn validate_only(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate");
    for (records, value) in [(1usize, 100usize), (64, 1024)] {
        let b = batch(records, value);
        g.throughput(Throughput::Bytes(b.len() as u64));
        g.bench_with_input(
            BenchmarkId::new("batch", format!("{records}x{value}B")),
            &b,
            |bench, b| {
                bench.iter(|| validate(b).expect("valid"));
            },
        );
    }
    g.finish();
}

fn append_in_memory(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_in_memory");
    for (records, value) in [(1usize, 100usize), (16, 1024), (64, 1024)] {
        let b = batch(records, value);
        g.throughput(Throughput::Bytes(b.len() as u64));
        g.bench_function(
            BenchmarkId::new("batch", format!("{records}x{value}B")),
            |bench| {
                bench.iter_custom(|iters| {
                    let dir = ScratchDir::new("append");
                    on_executor(|| async {
                        let log = Log::open(dir.path(), LogConfig::default(), Rc::new(SystemClock))
                            .await
                            .expect("open");
                        let mut timed = Duration::ZERO;
                        for i in 0..iters {
                            // A buffer of its own, as a Kafka request's batches are: the log
                            // patches it in place.
                            let input = BytesMut::from(&b[..]);
                            let t = Instant::now();
                            log.append(input).expect("append");
                            timed += t.elapsed();
                            if i % FLUSH_EVERY == FLUSH_EVERY - 1 {
                                log.flush().await.expect("flush");
                            }
                        }
                        log.close().await.expect("close");
                        timed
                    })
                });
            },
        );
    }
    g.finish();
}

fn append_flush(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_flush");
    g.sample_size(10);
    let b = batch(64, 1024);
    g.throughput(Throughput::Bytes(b.len() as u64));
    for fsync in [FsyncPolicy::Never, FsyncPolicy::Batch] {
        g.bench_function(BenchmarkId::new("64x1KiB", fsync.to_string()), |bench| {
            bench.iter_custom(|iters| {
                let dir = ScratchDir::new("flush");
                let config = LogConfig {
                    fsync,
                    ..LogConfig::default()
                };
                on_executor(|| async {
                    let log = Log::open(dir.path(), config, Rc::new(SystemClock))
                        .await
                        .expect("open");
                    let t = Instant::now();
                    for _ in 0..iters {
                        log.append(b.clone()).expect("append");
                        log.flush().await.expect("flush");
                    }
                    let elapsed = t.elapsed();
                    log.close().await.expect("close");
                    elapsed
                })
            });
        });
    }
    g.finish();
}

/// Many producers on one shard, each appending a 64 KiB batch of 1 KiB records and awaiting its
/// flush (fsync never): the flushes group-commit into large writes. Throughput is per batch.
fn concurrent_producers(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_flush_concurrent");
    g.sample_size(10);
    let b = batch(63, 1024);
    g.throughput(Throughput::Bytes(b.len() as u64));
    for producers in [16u64, 64] {
        g.bench_function(BenchmarkId::new("producers", producers), |bench| {
            bench.iter_custom(|iters| {
                let dir = ScratchDir::new("concurrent");
                on_executor(|| async {
                    let log = Rc::new(
                        Log::open(dir.path(), LogConfig::default(), Rc::new(SystemClock))
                            .await
                            .expect("open"),
                    );
                    let per_producer = iters.div_ceil(producers);
                    let t = Instant::now();
                    let tasks: Vec<_> = (0..producers)
                        .map(|_| {
                            let (log, b) = (log.clone(), b.clone());
                            glommio::spawn_local(async move {
                                for _ in 0..per_producer {
                                    log.append(b.clone()).expect("append");
                                    log.flush().await.expect("flush");
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await;
                    }
                    let elapsed = t.elapsed();
                    log.close().await.expect("close");
                    elapsed.mul_f64(iters as f64 / (per_producer * producers) as f64)
                })
            });
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    validate_only,
    append_in_memory,
    append_flush,
    concurrent_producers
);
criterion_main!(benches);
