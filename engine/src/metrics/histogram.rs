//! [`LatencyHistogram`]: a fixed-bucket latency histogram owned by one shard.
//!
//! The bucket bounds are fixed at compile time ([`LATENCY_BOUNDS_US`]) so recording is one
//! comparison walk and two `Cell` updates: no allocation, no atomic, no lock. The shard keeps
//! the counts per bucket (not cumulative); the renderer makes them cumulative, as Prometheus
//! wants, and adds the `+Inf` bucket from the total count.

use std::cell::Cell;
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds: 50 µs to 30 s, in steps of 50-100 µs up
/// to 500 µs and of a half up to 2.5 ms (where most of a storage node's requests and appends
/// end, so that a quantile near 1 ms can be read off them), then roughly 1-2.5-5.
pub const LATENCY_BOUNDS_US: [u64; 24] = [
    50, 100, 150, 200, 300, 400, 500, 750, 1_000, 1_500, 2_000, 2_500, 5_000, 10_000, 25_000,
    50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

/// Buckets kept: one per bound and one for everything above the last bound.
const BUCKETS: usize = LATENCY_BOUNDS_US.len() + 1;

/// A shard-local latency histogram (`!Sync`: it never leaves its shard).
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    counts: [Cell<u64>; BUCKETS],
    sum_us: Cell<u64>,
}

impl LatencyHistogram {
    /// Records one observation.
    pub fn record(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_US
            .iter()
            .position(|bound| us <= *bound)
            .unwrap_or(BUCKETS - 1);
        let cell = &self.counts[bucket];
        cell.set(cell.get() + 1);
        self.sum_us.set(self.sum_us.get().saturating_add(us));
    }

    /// A copy of the counts that can cross threads.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self.counts.iter().map(Cell::get).collect(),
            sum_us: self.sum_us.get(),
        }
    }
}

/// A histogram's counts at one moment: per bucket (not cumulative), bounds
/// [`LATENCY_BOUNDS_US`] then one bucket above the last bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Observations per bucket, `LATENCY_BOUNDS_US.len() + 1` entries.
    pub counts: Vec<u64>,
    /// Sum of every observation, in microseconds.
    pub sum_us: u64,
}

impl HistogramSnapshot {
    /// Observations in all buckets.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `(upper bound in µs, observations at or below it)` for each finite bound, cumulative.
    pub fn cumulative(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        LATENCY_BOUNDS_US
            .iter()
            .zip(&self.counts)
            .scan(0u64, |seen, (bound, count)| {
                *seen += count;
                Some((*bound, *seen))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = LatencyHistogram::default();
        h.record(Duration::from_micros(50));
        h.record(Duration::from_micros(51));
        h.record(Duration::from_secs(3600));
        let s = h.snapshot();
        assert_eq!(s.counts[0], 1);
        assert_eq!(s.counts[1], 1);
        assert_eq!(s.counts[BUCKETS - 1], 1);
        assert_eq!(s.count(), 3);
        assert_eq!(s.sum_us, 50 + 51 + 3_600_000_000);
    }

    #[test]
    fn cumulative_counts_never_decrease_and_end_below_the_total() {
        let h = LatencyHistogram::default();
        for us in [10, 300, 300, 7_000, 60_000_000] {
            h.record(Duration::from_micros(us));
        }
        let s = h.snapshot();
        let cumulative: Vec<u64> = s.cumulative().map(|(_, c)| c).collect();
        assert!(cumulative.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(cumulative[0], 1);
        assert_eq!(*cumulative.last().unwrap(), 4);
        assert_eq!(s.count(), 5);
    }
}
