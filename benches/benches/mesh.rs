//! Cross-shard round trip: `Shard::run_on` from shard 0 to shard 1 with a trivial closure,
//! measured beside a plain two-thread channel round trip (`std::sync::mpsc` ping-pong) in the
//! same run, and the `EngineHandle` round trip from a plain thread into a shard.
//!
//! Besides criterion's estimates, a full run (`cargo bench -p spindle-benches --bench mesh`)
//! prints p50/p99 per round trip for each path, with and without `spin_before_park` (DESIGN
//! trap 4: a parked executor is slow to wake from another thread in a VM).

use std::future::Future;
use std::pin::pin;
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use spindle_benches::ScratchDir;
use spindle_engine::{Engine, EngineConfig, EngineHandle, Placement, ShardId};

/// Round trips per percentile report.
const REPORT_ROUND_TRIPS: usize = 20_000;

/// Runs a `Send` future to completion on this thread (the handle's futures need no runtime).
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

fn start_engine(dir: &ScratchDir, spin_before_park_us: Option<u64>) -> Engine {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    Engine::start(EngineConfig {
        data_dir: dir.path().to_path_buf(),
        shards: 2,
        placement: if cpus >= 2 {
            Placement::Pinned
        } else {
            Placement::Unbound
        },
        spin_before_park_us,
        ..EngineConfig::default()
    })
    .expect("engine starts")
}

/// `iters` round trips shard 0 → shard 1 → shard 0; returns each one's time (ns) if `record`.
fn cross_shard(handle: &EngineHandle, iters: u64, record: bool) -> (Duration, Vec<u64>) {
    block_on(handle.run_on(ShardId(0), move |shard| async move {
        let mut samples = Vec::with_capacity(if record { iters as usize } else { 0 });
        let started = Instant::now();
        for _ in 0..iters {
            let t = Instant::now();
            let id = shard
                .run_on(ShardId(1), |other| async move { other.id() })
                .await
                .expect("run_on");
            assert_eq!(id, ShardId(1));
            if record {
                samples.push(t.elapsed().as_nanos() as u64);
            }
        }
        (started.elapsed(), samples)
    }))
    .expect("run_on shard 0")
}

/// As [`cross_shard`], but shard 0 reaches shard 1 through its flume inbox (a handle) instead
/// of the glommio mesh: the same job and one-shot reply, another channel.
fn cross_shard_via_inbox(handle: &EngineHandle, iters: u64) -> Vec<u64> {
    let inner = handle.clone();
    block_on(handle.run_on(ShardId(0), move |_shard| async move {
        let mut samples = Vec::with_capacity(iters as usize);
        for _ in 0..iters {
            let t = Instant::now();
            let id = inner
                .run_on(ShardId(1), |other| async move { other.id() })
                .await
                .expect("run_on");
            assert_eq!(id, ShardId(1));
            samples.push(t.elapsed().as_nanos() as u64);
        }
        samples
    }))
    .expect("run_on shard 0")
}

/// `iters` round trips plain thread → shard 1 → plain thread through the handle.
fn from_handle(handle: &EngineHandle, iters: u64, record: bool) -> (Duration, Vec<u64>) {
    let mut samples = Vec::new();
    let started = Instant::now();
    for _ in 0..iters {
        let t = Instant::now();
        let id = block_on(handle.run_on(ShardId(1), |s| async move { s.id() })).expect("run_on");
        assert_eq!(id, ShardId(1));
        if record {
            samples.push(t.elapsed().as_nanos() as u64);
        }
    }
    (started.elapsed(), samples)
}

/// `iters` ping-pongs between this thread and a second one over `std::sync::mpsc`.
fn plain_channel(iters: u64, record: bool) -> (Duration, Vec<u64>) {
    let (ping_tx, ping_rx) = mpsc::channel::<u64>();
    let (pong_tx, pong_rx) = mpsc::channel::<u64>();
    let echo = std::thread::spawn(move || {
        while let Ok(n) = ping_rx.recv() {
            if pong_tx.send(n).is_err() {
                break;
            }
        }
    });
    let mut samples = Vec::new();
    let started = Instant::now();
    for i in 0..iters {
        let t = Instant::now();
        ping_tx.send(i).expect("ping");
        assert_eq!(pong_rx.recv().expect("pong"), i);
        if record {
            samples.push(t.elapsed().as_nanos() as u64);
        }
    }
    let elapsed = started.elapsed();
    drop(ping_tx);
    echo.join().expect("echo thread");
    (elapsed, samples)
}

fn round_trips(c: &mut Criterion) {
    let dir = ScratchDir::new("mesh");
    let engine = start_engine(&dir, None);
    let handle = engine.handle();
    let mut g = c.benchmark_group("round_trip");
    g.bench_function("cross_shard_run_on", |b| {
        b.iter_custom(|iters| cross_shard(&handle, iters, false).0)
    });
    g.bench_function("handle_to_shard", |b| {
        b.iter_custom(|iters| from_handle(&handle, iters, false).0)
    });
    g.bench_function("plain_mpsc_two_threads", |b| {
        b.iter_custom(|iters| plain_channel(iters, false).0)
    });
    g.finish();
    engine.shutdown().expect("shutdown");
}

fn percentiles(mut samples: Vec<u64>) -> String {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    format!(
        "p50 {:>7.1} µs  p99 {:>7.1} µs  (n = {})",
        at(0.50) as f64 / 1e3,
        at(0.99) as f64 / 1e3,
        samples.len()
    )
}

/// Prints p50/p99 of each path, parked and spinning, in one run.
fn report() {
    let n = REPORT_ROUND_TRIPS as u64;
    println!("\nround trip latency, {n} each:");
    println!(
        "  plain mpsc, two threads           {}",
        percentiles(plain_channel(n, true).1)
    );
    for (label, spin) in [("parked", None), ("spin_before_park 100µs", Some(100))] {
        let dir = ScratchDir::new("mesh-report");
        let engine = start_engine(&dir, spin);
        let handle = engine.handle();
        // Warm up both directions before measuring.
        cross_shard(&handle, 1000, false);
        println!(
            "  cross-shard run_on, {label:<22} {}",
            percentiles(cross_shard(&handle, n, true).1)
        );
        println!(
            "  shard -> shard via inbox, {label:<16} {}",
            percentiles(cross_shard_via_inbox(&handle, n))
        );
        println!(
            "  handle -> shard, {label:<25} {}",
            percentiles(from_handle(&handle, n, true).1)
        );
        engine.shutdown().expect("shutdown");
    }
}

criterion_group!(benches, round_trips);

fn main() {
    benches();
    // `cargo test --benches` runs each bench once in test mode; the report is for real runs.
    if std::env::args().any(|a| a == "--bench") {
        report();
    }
    Criterion::default().configure_from_args().final_summary();
}
