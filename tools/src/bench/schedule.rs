//! When batches are meant to be sent, and when a run is over.
//!
//! [`Plan`] is shared by all producers of a run: for `--count` runs it hands out batches from one
//! atomic budget (so the total is exact to a batch whatever the producers' speeds); for
//! `--duration-secs` runs it answers whether a batch's intended time is before the deadline.
//! With `--warmup-secs` the same load runs for that long first, and nothing intended during
//! the warm-up is measured or taken from the count (as OpenMessaging Benchmark's warm-up).
//!
//! [`Schedule`] is one producer's clock. With `--rate` it is open loop: batch `k` is intended
//! at `start + phase + k * interval` whatever happened to earlier batches, and latency is
//! measured from that intended time; a producer that falls behind sends at once and its
//! latency shows the delay (no coordinated omission). Without `--rate` the intended time is
//! the moment the producer gets a free in-flight slot, which measures service time at the
//! maximum sustainable load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::bench::args::Stop;
use crate::bench::latency::{LatencySample, LatencySeries};

/// A run's end, shared by its producers, and the latency of its seconds (one series for all of
/// them, behind a lock taken once per completed request).
#[derive(Debug)]
pub struct Plan {
    measure_from: Instant,
    deadline: Option<Instant>,
    batches_left: AtomicU64,
    latency_series: Mutex<LatencySeries>,
}

impl Plan {
    /// The plan of a run that started at `start`, with `records_per_batch` records a batch, and
    /// measures from `warmup` after it. Count runs round up to whole batches.
    pub fn new(stop: Stop, start: Instant, records_per_batch: u64, warmup: Duration) -> Self {
        let measure_from = start + warmup;
        match stop {
            Stop::Count(n) => Self {
                measure_from,
                deadline: None,
                batches_left: AtomicU64::new(n.div_ceil(records_per_batch.max(1))),
                latency_series: Mutex::default(),
            },
            Stop::Duration(d) => Self {
                measure_from,
                deadline: Some(measure_from + d),
                batches_left: AtomicU64::new(u64::MAX),
                latency_series: Mutex::default(),
            },
        }
    }

    /// When the measured part of the run starts (the run's start when there is no warm-up).
    pub fn measure_from(&self) -> Instant {
        self.measure_from
    }

    /// Whether a batch intended at `intended` counts in the figures (it is past the warm-up).
    pub fn measured(&self, intended: Instant) -> bool {
        intended >= self.measure_from
    }

    /// Counts a measured request intended at `intended` that took `elapsed` in its second.
    pub fn record_latency(&self, intended: Instant, elapsed: Duration) {
        let since = intended.saturating_duration_since(self.measure_from);
        self.series().record(since, elapsed);
    }

    /// The latency of each second so far.
    pub fn latency_samples(&self) -> Vec<LatencySample> {
        self.series().samples()
    }

    /// The series; a producer that panicked while recording left it whole (one record is one
    /// histogram add), so a poisoned lock is taken as it is.
    fn series(&self) -> MutexGuard<'_, LatencySeries> {
        self.latency_series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a batch intended at `intended` should be sent; takes it from the budget if so
    /// (warm-up batches take nothing).
    pub fn claim(&self, intended: Instant) -> bool {
        if let Some(deadline) = self.deadline {
            return intended < deadline;
        }
        if !self.measured(intended) {
            return true;
        }
        self.batches_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Whether the run's time is up (always false for count runs).
    pub fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }
}

/// One producer's send clock.
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Instant,
    interval: Option<Duration>,
    sent: u32,
}

impl Schedule {
    /// The clock of producer `index` of `producers`, sending batches of `records_per_batch`
    /// records so that all producers together offer `rate` messages per second (`None`: as
    /// fast as the in-flight window allows). Producers are phase-shifted so their sends
    /// interleave instead of arriving in bursts.
    pub fn new(
        start: Instant,
        rate: Option<u64>,
        producers: usize,
        index: usize,
        records_per_batch: u64,
    ) -> Self {
        let interval = rate.map(|rate| {
            let batches_per_sec = rate as f64 / records_per_batch.max(1) as f64;
            Duration::from_secs_f64(producers.max(1) as f64 / batches_per_sec)
        });
        let phase = interval.map_or(Duration::ZERO, |i| {
            i.mul_f64(index as f64 / producers.max(1) as f64)
        });
        Self {
            start: start + phase,
            interval,
            sent: 0,
        }
    }

    /// The intended send time of the next batch (now, when there is no target rate).
    pub fn next_send(&mut self) -> Instant {
        match self.interval {
            Some(interval) => {
                let at = self.start + interval * self.sent;
                self.sent = self.sent.saturating_add(1);
                at
            }
            None => Instant::now(),
        }
    }

    /// Whether the clock is open loop (has a target rate).
    pub fn is_paced(&self) -> bool {
        self.interval.is_some()
    }
}

/// Makes this thread's sleeps end when asked rather than up to 50 µs later (Linux's default
/// timer slack), so that a paced producer thread sends at its intended times: the overshoot
/// would be charged to the broker's latency. Best effort: on failure sleeps stay as they were.
pub fn precise_sleeps_on_this_thread() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and changes only the calling thread.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        eprintln!(
            "cannot set the timer slack: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_plan_hands_out_whole_batches_once() {
        let start = Instant::now();
        let plan = Plan::new(Stop::Count(1000), start, 64, Duration::ZERO);
        let claimed = (0..100).filter(|_| plan.claim(start)).count();
        assert_eq!(claimed, 16); // 1000 / 64 rounded up
        assert!(!plan.expired(start + Duration::from_secs(3600)));
    }

    #[test]
    fn duration_plan_stops_at_the_deadline() {
        let start = Instant::now();
        let plan = Plan::new(
            Stop::Duration(Duration::from_secs(2)),
            start,
            64,
            Duration::ZERO,
        );
        assert!(plan.claim(start + Duration::from_secs(1)));
        assert!(!plan.claim(start + Duration::from_secs(2)));
        assert!(plan.expired(start + Duration::from_secs(2)));
    }

    #[test]
    fn warm_up_is_sent_but_neither_measured_nor_counted() {
        let start = Instant::now();
        let warmup = Duration::from_secs(5);
        let plan = Plan::new(Stop::Count(128), start, 64, warmup);
        assert_eq!(plan.measure_from(), start + warmup);
        assert!(!plan.measured(start + Duration::from_secs(4)));
        let during = (0..10)
            .filter(|_| plan.claim(start + Duration::from_secs(1)))
            .count();
        assert_eq!(during, 10, "warm-up batches take nothing from the count");
        let after = (0..10).filter(|_| plan.claim(start + warmup)).count();
        assert_eq!(after, 2, "the count is all measured: 128 / 64");
        assert!(plan.measured(start + warmup));

        let plan = Plan::new(Stop::Duration(Duration::from_secs(2)), start, 64, warmup);
        assert!(plan.claim(start + Duration::from_secs(6)));
        assert!(
            !plan.claim(start + Duration::from_secs(7)),
            "2 s after the warm-up"
        );
    }

    #[test]
    fn latency_is_counted_in_the_second_after_the_warm_up_it_was_meant_for() {
        let start = Instant::now();
        let plan = Plan::new(Stop::Count(1000), start, 64, Duration::from_secs(5));
        let at = |ms| start + Duration::from_millis(ms);
        plan.record_latency(at(5_100), Duration::from_micros(200));
        plan.record_latency(at(5_900), Duration::from_micros(400));
        plan.record_latency(at(7_050), Duration::from_micros(900));
        let seconds: Vec<(u64, u64)> = plan
            .latency_samples()
            .iter()
            .map(|s| (s.second, s.count))
            .collect();
        assert_eq!(seconds, vec![(1, 2), (3, 1)]);
    }

    #[test]
    fn paced_schedule_is_open_loop_and_phase_shifted() {
        let start = Instant::now();
        // 1000 msgs/s, 10 per batch, 2 producers: 50 batches/s each, one every 20 ms.
        let mut a = Schedule::new(start, Some(1000), 2, 0, 10);
        let mut b = Schedule::new(start, Some(1000), 2, 1, 10);
        assert!(a.is_paced());
        assert_eq!(a.next_send(), start);
        assert_eq!(a.next_send(), start + Duration::from_millis(20));
        assert_eq!(b.next_send(), start + Duration::from_millis(10));
        assert_eq!(b.next_send(), start + Duration::from_millis(30));
    }

    #[test]
    fn precise_sleeps_lower_this_threads_timer_slack() {
        std::thread::spawn(|| {
            precise_sleeps_on_this_thread();
            // SAFETY: PR_GET_TIMERSLACK takes no argument and reads the calling thread's slack.
            let slack = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
            assert_eq!(slack, 1);
        })
        .join()
        .expect("thread");
    }

    #[test]
    fn unpaced_schedule_is_now() {
        let before = Instant::now();
        let mut s = Schedule::new(before, None, 4, 3, 64);
        assert!(!s.is_paced());
        assert!(s.next_send() >= before);
    }
}
