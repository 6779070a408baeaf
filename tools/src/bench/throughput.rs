//! [`Throughput`]: counters shared by every producer and consumer of a run, and the
//! [`Sampler`] thread that turns them into a per-second series and the live progress line.
//!
//! Counters are relaxed atomics bumped once per batch (not per record), so sharing them across
//! producer threads costs one cache-line transfer per batch, far below the cost of the batch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bench::limits;
use crate::bench::progress::Progress;

/// Totals of a run so far.
#[derive(Debug, Default)]
pub struct Throughput {
    produced_messages: AtomicU64,
    produced_bytes: AtomicU64,
    consumed_messages: AtomicU64,
    consumed_bytes: AtomicU64,
    errors: AtomicU64,
}

/// A snapshot of [`Throughput`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Messages acknowledged.
    pub produced_messages: u64,
    /// Payload bytes acknowledged.
    pub produced_bytes: u64,
    /// Messages consumed.
    pub consumed_messages: u64,
    /// Payload bytes consumed.
    pub consumed_bytes: u64,
    /// Failed requests.
    pub errors: u64,
}

impl Throughput {
    /// Counts one acknowledged batch.
    pub fn produced(&self, messages: u64, bytes: u64) {
        self.produced_messages
            .fetch_add(messages, Ordering::Relaxed);
        self.produced_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts consumed records.
    pub fn consumed(&self, messages: u64, bytes: u64) {
        self.consumed_messages
            .fetch_add(messages, Ordering::Relaxed);
        self.consumed_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts one failed request.
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The totals now.
    pub fn totals(&self) -> Totals {
        Totals {
            produced_messages: self.produced_messages.load(Ordering::Relaxed),
            produced_bytes: self.produced_bytes.load(Ordering::Relaxed),
            consumed_messages: self.consumed_messages.load(Ordering::Relaxed),
            consumed_bytes: self.consumed_bytes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// Throughput over one sampling interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the run started, at the end of the interval.
    pub second: f64,
    /// Messages acknowledged per second.
    pub messages_per_sec: f64,
    /// Payload bytes acknowledged per second.
    pub bytes_per_sec: f64,
    /// Messages consumed per second.
    pub consumed_per_sec: f64,
}

/// The thread that samples a [`Throughput`] every [`limits::SAMPLE_INTERVAL_MS`].
pub struct Sampler {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Starts sampling `throughput`, reporting each sample to `progress`.
    pub fn start(throughput: Arc<Throughput>, progress: Progress, start: Instant) -> Self {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let interval = Duration::from_millis(limits::SAMPLE_INTERVAL_MS);
            let mut series = Vec::new();
            let mut last = (start, Totals::default());
            let mut next = start + interval;
            loop {
                let wait = next.saturating_duration_since(Instant::now());
                let done = !matches!(
                    stopped.recv_timeout(wait),
                    Err(mpsc::RecvTimeoutError::Timeout)
                );
                let now = Instant::now();
                let totals = throughput.totals();
                let secs = now.duration_since(last.0).as_secs_f64();
                // A last partial interval shorter than a tenth would give a noisy rate.
                if !done || secs * 10_000.0 >= interval.as_millis() as f64 {
                    let rate = |now: u64, then: u64| (now - then) as f64 / secs.max(1e-9);
                    series.push(Sample {
                        second: now.duration_since(start).as_secs_f64(),
                        messages_per_sec: rate(totals.produced_messages, last.1.produced_messages),
                        bytes_per_sec: rate(totals.produced_bytes, last.1.produced_bytes),
                        consumed_per_sec: rate(totals.consumed_messages, last.1.consumed_messages),
                    });
                }
                progress.update(&totals, series.last(), now.duration_since(start));
                if done {
                    progress.finish();
                    return series;
                }
                last = (now, totals);
                next += interval;
            }
        });
        Self { stop, thread }
    }

    /// Stops sampling and returns the series.
    pub fn stop(self) -> Vec<Sample> {
        // The thread may already be gone only if it panicked, which join reports below.
        if self.stop.send(()).is_err() {
            eprintln!("throughput sampler stopped early");
        }
        self.thread.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up() {
        let t = Throughput::default();
        t.produced(64, 65536);
        t.produced(64, 65536);
        t.consumed(10, 100);
        t.error();
        let totals = t.totals();
        assert_eq!(totals.produced_messages, 128);
        assert_eq!(totals.produced_bytes, 131072);
        assert_eq!(totals.consumed_messages, 10);
        assert_eq!(totals.errors, 1);
    }

    #[test]
    fn sampler_stops_promptly_and_returns_a_series() {
        let t = Arc::new(Throughput::default());
        let start = Instant::now();
        let sampler = Sampler::start(t.clone(), Progress::disabled(), start);
        t.produced(5, 50);
        let series = sampler.stop();
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(series.len() <= 1);
    }
}
