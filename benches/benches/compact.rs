//! Compaction: rewriting one batch without the records a later record of their key supersedes
//! (uncompressed, and with the codecs that must be decompressed and compressed again), and a
//! whole pass over a partition's sealed segments on the real disk.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::records::Compression;
use spindle_benches::{on_executor, ScratchDir};
use spindle_log::batch::clean::{clean_batch, Cleaned};
use spindle_log::testing::BatchBuilder;
use spindle_log::{Log, LogConfig, SystemClock};

/// Records per batch, and value bytes per record: 64 KiB batches of 1 KiB records.
const RECORDS: usize = 64;
const VALUE_BYTES: usize = 1024;

/// A batch of `RECORDS` records whose keys are `first_key ..` (modulo `keys`).
fn keyed_batch(first_key: usize, keys: usize, compression: Compression) -> Bytes {
    let value: Vec<u8> = (0..VALUE_BYTES).map(|i| (i % 251) as u8).collect();
    (0..RECORDS)
        .fold(BatchBuilder::new(1_700_000_000_000), |b, i| {
            let key = format!("key-{:08}", (first_key + i) % keys);
            b.keyed(Some(key.as_bytes()), Some(&value))
        })
        .compression(compression)
        .build()
}

fn one_batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("clean_batch");
    g.throughput(Throughput::Bytes((RECORDS * VALUE_BYTES) as u64));
    for (name, codec) in [
        ("none", Compression::None),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        let batch = keyed_batch(0, usize::MAX, codec);
        g.bench_function(BenchmarkId::new("half_removed", name), |bench| {
            bench.iter(|| {
                let cleaned = clean_batch(&batch, |r| r.offset % 2 == 0).expect("clean");
                assert!(matches!(cleaned, Cleaned::Rewritten(_)));
                cleaned
            });
        });
    }
    g.finish();
}

/// Sealed bytes one pass compacts: 64 MiB in 8 MiB segments, each key written 8 times.
const LOG_BATCHES: usize = 1024;
const KEYS: usize = LOG_BATCHES * RECORDS / 8;

fn whole_pass(c: &mut Criterion) {
    let mut g = c.benchmark_group("compaction_pass");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(
        (LOG_BATCHES * RECORDS * VALUE_BYTES) as u64,
    ));
    let batches: Vec<Bytes> = (0..LOG_BATCHES)
        .map(|i| keyed_batch(i * RECORDS, KEYS, Compression::None))
        .collect();
    g.bench_function("64MiB_8_versions_per_key", |bench| {
        bench.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let dir = ScratchDir::new("compact");
                timed += on_executor(|| async {
                    let config = LogConfig {
                        segment_bytes: 8 << 20,
                        ..LogConfig::default()
                    };
                    let log = Log::open(dir.path(), config, Rc::new(SystemClock))
                        .await
                        .expect("open");
                    for b in &batches {
                        log.append(b.clone()).expect("append");
                        log.flush().await.expect("flush");
                    }
                    log.roll().await.expect("roll");
                    let t = Instant::now();
                    let outcome = log.compact(u64::MAX / 2, 0).await.expect("compact");
                    let elapsed = t.elapsed();
                    assert!(outcome.records_removed > 0, "{outcome:?}");
                    log.close().await.expect("close");
                    elapsed
                });
            }
            timed
        });
    });
    g.finish();
}

criterion_group!(benches, one_batch, whole_pass);
criterion_main!(benches);
