//! The gateway's own gauges, served by `Admin/GetGatewayStatus`: how many streams are open and
//! how many decoded bytes wait for subscribers. Each is raised by creating a guard and lowered
//! when the guard drops, so a stream that ends in any way (client gone, error, shutdown) can
//! never leave a count behind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters shared by every service.
#[derive(Debug, Default)]
pub struct Gauges {
    active_subscriptions: AtomicU64,
    active_produce_streams: AtomicU64,
    queued_subscriber_bytes: AtomicU64,
}

/// Which gauge a [`GaugeGuard`] holds up.
#[derive(Debug, Clone, Copy)]
pub enum Gauge {
    /// Open `Subscribe` streams.
    ActiveSubscriptions,
    /// Open `ProduceStream` streams.
    ActiveProduceStreams,
    /// Bytes decoded for subscribers and not yet handed to HTTP/2.
    QueuedSubscriberBytes,
}

impl Gauges {
    fn counter(&self, gauge: Gauge) -> &AtomicU64 {
        match gauge {
            Gauge::ActiveSubscriptions => &self.active_subscriptions,
            Gauge::ActiveProduceStreams => &self.active_produce_streams,
            Gauge::QueuedSubscriberBytes => &self.queued_subscriber_bytes,
        }
    }

    /// The current value of `gauge`.
    pub fn get(&self, gauge: Gauge) -> u64 {
        self.counter(gauge).load(Ordering::Relaxed)
    }

    /// Raises `gauge` by `amount` until the guard drops.
    pub fn raise(self: &Arc<Self>, gauge: Gauge, amount: u64) -> GaugeGuard {
        self.counter(gauge).fetch_add(amount, Ordering::Relaxed);
        GaugeGuard {
            gauges: Arc::clone(self),
            gauge,
            amount,
        }
    }
}

/// Holds a gauge up by a fixed amount while it lives.
#[derive(Debug)]
pub struct GaugeGuard {
    gauges: Arc<Gauges>,
    gauge: Gauge,
    amount: u64,
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        let previous = self
            .gauges
            .counter(self.gauge)
            .fetch_sub(self.amount, Ordering::Relaxed);
        assert!(
            previous >= self.amount,
            "gauge {:?} went negative",
            self.gauge
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_raise_and_lower() {
        let gauges = Arc::new(Gauges::default());
        let a = gauges.raise(Gauge::QueuedSubscriberBytes, 10);
        let b = gauges.raise(Gauge::QueuedSubscriberBytes, 5);
        assert_eq!(gauges.get(Gauge::QueuedSubscriberBytes), 15);
        drop(a);
        assert_eq!(gauges.get(Gauge::QueuedSubscriberBytes), 5);
        drop(b);
        assert_eq!(gauges.get(Gauge::QueuedSubscriberBytes), 0);
        assert_eq!(gauges.get(Gauge::ActiveSubscriptions), 0);
    }
}
