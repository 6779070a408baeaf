//! [`Latency`]: an HDR histogram of request latencies in microseconds, and its summaries;
//! [`LatencySeries`]: one per second of the run.
//!
//! Each producer owns one (recording is a few adds, no lock) and the run merges them at the
//! end. Values above [`limits::LATENCY_US_MAX`] saturate instead of failing, so one pathological
//! request shows up as the maximum rather than vanishing.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::bench::limits;

/// Percentiles of one latency distribution, in µs; the `latency_us` object of the JSON report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Requests recorded.
    pub count: u64,
    /// Fastest.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Slowest.
    pub max: u64,
}

/// One bar of the compact histogram: requests whose latency falls in `(previous le_us, le_us]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Upper bound of the bucket in µs (a power of two).
    pub le_us: u64,
    /// Requests in the bucket.
    pub count: u64,
}

/// One second of the latency series: requests intended to be sent in it, and their latency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySample {
    /// Seconds since the measured part of the run began, at the end of this second.
    pub second: u64,
    /// Requests intended to be sent in this second.
    pub count: u64,
    /// Median latency, µs.
    pub p50: u64,
    /// 99th percentile, µs.
    pub p99: u64,
    /// Slowest, µs.
    pub max: u64,
}

/// A latency histogram in µs.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

/// Latency second by second (by each request's intended send time), to tell a steady tail from
/// stalls: a p99 made of one bad second looks the same in the run's histogram.
#[derive(Debug, Clone, Default)]
pub struct LatencySeries {
    seconds: Vec<Latency>,
}

impl LatencySeries {
    /// Records a request intended `since` after the measured part of the run began, that took
    /// `elapsed`; past [`limits::LATENCY_SERIES_SECS_MAX`] the series records nothing more.
    pub fn record(&mut self, since: Duration, elapsed: Duration) {
        let second = usize::try_from(since.as_secs()).unwrap_or(usize::MAX);
        if second >= limits::LATENCY_SERIES_SECS_MAX {
            return;
        }
        if self.seconds.len() <= second {
            self.seconds.resize_with(second + 1, Latency::coarse);
        }
        self.seconds[second].record(elapsed);
    }

    /// One sample per second that had requests.
    pub fn samples(&self) -> Vec<LatencySample> {
        (1..)
            .zip(&self.seconds)
            .filter(|(_, l)| l.count() > 0)
            .map(|(second, l)| {
                let s = l.summary();
                LatencySample {
                    second,
                    count: s.count,
                    p50: s.p50,
                    p99: s.p99,
                    max: s.max,
                }
            })
            .collect()
    }
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram covering 1 µs to [`limits::LATENCY_US_MAX`].
    ///
    /// # Panics
    /// Never: the bounds are constants that `hdrhistogram` accepts.
    pub fn new() -> Self {
        Self::with_sigfig(limits::LATENCY_SIGFIG)
    }

    /// As [`Latency::new`] with [`limits::LATENCY_SERIES_SIGFIG`] digits, for the series.
    fn coarse() -> Self {
        Self::with_sigfig(limits::LATENCY_SERIES_SIGFIG)
    }

    fn with_sigfig(sigfig: u8) -> Self {
        let hist = Histogram::new_with_bounds(1, limits::LATENCY_US_MAX, sigfig)
            .expect("constant histogram bounds are valid");
        Self { hist }
    }

    /// Records one request that took `elapsed`.
    pub fn record(&mut self, elapsed: Duration) {
        self.record_us(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records one request that took `us` microseconds.
    pub fn record_us(&mut self, us: u64) {
        self.hist.saturating_record(us.min(limits::LATENCY_US_MAX));
    }

    /// Adds every value of `other`.
    ///
    /// # Panics
    /// Never: both histograms have the same bounds, so nothing can fall outside.
    pub fn merge(&mut self, other: &Latency) {
        self.hist
            .add(&other.hist)
            .expect("histograms with equal bounds always add");
    }

    /// Requests recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The percentiles every report prints (all zero when nothing was recorded).
    pub fn summary(&self) -> LatencySummary {
        let h = &self.hist;
        let empty = h.is_empty();
        let q = |q: f64| if empty { 0 } else { h.value_at_quantile(q) };
        LatencySummary {
            count: h.len(),
            min: if empty { 0 } else { h.min() },
            mean: if empty { 0.0 } else { h.mean() },
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            p9999: q(0.9999),
            max: if empty { 0 } else { h.max() },
        }
    }

    /// The percentile curve: `(quantile, µs)` at quantiles 0, 0.5, 0.75, … approaching 1 in
    /// steps of a tenth of a "nine", up to 99.999 %, for plotting.
    pub fn curve(&self) -> Vec<(f64, u64)> {
        if self.hist.is_empty() {
            return Vec::new();
        }
        (0..=50)
            .map(|step| {
                let quantile = 1.0 - 10f64.powf(-f64::from(step) / 10.0);
                (quantile, self.hist.value_at_quantile(quantile))
            })
            .collect()
    }

    /// Counts in power-of-two µs buckets from the fastest to the slowest non-empty one.
    pub fn buckets(&self) -> Vec<Bucket> {
        let mut buckets: Vec<Bucket> = Vec::new();
        for v in self.hist.iter_recorded() {
            let value = self.hist.highest_equivalent(v.value_iterated_to());
            let le_us = value.max(1).next_power_of_two();
            match buckets.last_mut() {
                Some(last) if last.le_us == le_us => last.count += v.count_at_value(),
                _ => buckets.push(Bucket {
                    le_us,
                    count: v.count_at_value(),
                }),
            }
        }
        buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reports_ordered_percentiles() {
        let mut l = Latency::new();
        for us in 1..=10_000 {
            l.record_us(us);
        }
        let s = l.summary();
        assert_eq!(s.count, 10_000);
        assert!(s.min <= s.p50 && s.p50 <= s.p90 && s.p90 <= s.p99);
        assert!(s.p99 <= s.p999 && s.p999 <= s.p9999 && s.p9999 <= s.max);
        assert!((4990..=5010).contains(&s.p50), "p50 {}", s.p50);
        assert!((9890..=9910).contains(&s.p99), "p99 {}", s.p99);
    }

    #[test]
    fn empty_histogram_summarises_to_zeros() {
        let s = Latency::new().summary();
        assert_eq!((s.count, s.p50, s.max), (0, 0, 0));
        assert!(Latency::new().curve().is_empty());
    }

    #[test]
    fn merge_adds_counts_and_saturation_keeps_outliers() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        a.record(Duration::from_micros(10));
        b.record(Duration::from_secs(100_000));
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert!(a.summary().max >= limits::LATENCY_US_MAX / 2);
    }

    #[test]
    fn the_series_counts_each_request_in_its_intended_second() {
        let mut a = LatencySeries::default();
        a.record(Duration::from_millis(200), Duration::from_micros(100));
        a.record(Duration::from_millis(2_500), Duration::from_micros(300));
        a.record(Duration::from_millis(900), Duration::from_micros(5_000));
        a.record(Duration::from_secs(1_000_000), Duration::from_micros(7));
        let samples = a.samples();
        let seconds: Vec<(u64, u64)> = samples.iter().map(|s| (s.second, s.count)).collect();
        assert_eq!(
            seconds,
            vec![(1, 2), (3, 1)],
            "second 2 had none; past the cap, nothing"
        );
        assert!(
            (4_950..=5_050).contains(&samples[0].max),
            "{:?}",
            samples[0]
        );
        assert!(samples[0].p50 <= samples[0].p99 && samples[0].p99 <= samples[0].max);
    }

    #[test]
    fn buckets_are_powers_of_two_and_sum_to_count() {
        let mut l = Latency::new();
        for us in [3, 3, 5, 100, 1000, 1000] {
            l.record_us(us);
        }
        let b = l.buckets();
        assert!(b.iter().all(|b| b.le_us.is_power_of_two()));
        assert!(b.windows(2).all(|w| w[0].le_us < w[1].le_us));
        assert_eq!(b.iter().map(|b| b.count).sum::<u64>(), 6);
        assert_eq!(b[0], Bucket { le_us: 4, count: 2 });
    }
}
