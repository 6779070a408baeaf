//! [`run`]: one async producer with a bounded in-flight window, shared by the modes whose
//! clients are async (`embedded`, `grpc`).
//!
//! The loop keeps up to `in_flight` requests outstanding. With a target rate it waits for each
//! batch's intended time (or sends at once when behind), and every latency is measured from
//! the intended time, so a stall shows up in the figures rather than slowing the offered load
//! (see [`crate::bench::schedule`]). It polls completions and the send timer together, so a
//! completion is timed when it happens, not when the producer next gets round to it.
//!
//! The send timer is `async-io`'s, not tokio's: tokio rounds every sleep up to its 1 ms tick,
//! so a paced batch left up to a millisecond late and that lateness was charged to the engine
//! (at 50,000 msgs/s the median latency read 1.2 ms where the engine took 0.2 ms). `async-io`
//! keeps its timers on a thread of its own that sleeps to the microsecond and wakes the
//! producer's task from there.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};

use crate::bench::batch::{BatchShape, RequestShape};
use crate::bench::latency::Latency;
use crate::bench::limits;
use crate::bench::schedule::{Plan, Schedule};
use crate::bench::throughput::Throughput;

/// What one producer measured.
#[derive(Debug, Default)]
pub struct ProducerOutcome {
    /// Latency per batch, acknowledged or failed.
    pub latency: Latency,
    /// With a target rate, how late each request was sent after its intended time: the load
    /// generator's own lag (a slot, a CPU or the encoding it waited for), which the latency
    /// includes. On a machine the generator shares with the node, a large lag says the figures
    /// are the generator's as much as the node's.
    pub send_delay: Latency,
    /// Batches acknowledged.
    pub batches: u64,
    /// The first error met (the rest are only counted).
    pub first_error: Option<String>,
}

impl ProducerOutcome {
    /// Adds `other`'s figures to these; the earlier first error wins.
    pub fn merge(&mut self, other: ProducerOutcome) {
        self.latency.merge(&other.latency);
        self.send_delay.merge(&other.send_delay);
        self.batches += other.batches;
        self.first_error = self.first_error.take().or(other.first_error);
    }

    /// All of `outcomes` merged into one, in order (so the earliest first error wins).
    pub fn merged(outcomes: impl IntoIterator<Item = ProducerOutcome>) -> ProducerOutcome {
        let mut all = ProducerOutcome::default();
        for o in outcomes {
            all.merge(o);
        }
        all
    }

    /// Records that the request intended at `intended` is being sent now, unless `plan` says
    /// that was during the warm-up. Only paced runs call it: at full speed a request is due
    /// whenever it is sent.
    pub fn sent(&mut self, plan: &Plan, intended: Instant) {
        if plan.measured(intended) {
            self.send_delay.record(intended.elapsed());
        }
    }

    /// Counts a completed request of `batches` batches of `shape` that was intended at
    /// `intended`, unless `plan` says that was during the warm-up.
    pub fn complete(
        &mut self,
        plan: &Plan,
        intended: Instant,
        result: anyhow::Result<()>,
        request: RequestShape,
        throughput: &Throughput,
    ) {
        if !plan.measured(intended) {
            return;
        }
        let elapsed = intended.elapsed();
        self.latency.record(elapsed);
        plan.record_latency(intended, elapsed);
        match result {
            Ok(()) => {
                self.batches += request.partitions as u64;
                throughput.produced(request.records(), request.payload_bytes());
            }
            Err(e) => {
                throughput.error();
                self.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
}

/// What the producers of one run share.
pub struct TaskSetup<'a> {
    /// When the run ends.
    pub plan: &'a Plan,
    /// Shared counters.
    pub throughput: &'a Throughput,
    /// Batch layout (for the counters).
    pub shape: BatchShape,
    /// The run's start.
    pub start: Instant,
    /// Target messages per second over all producers.
    pub rate: Option<u64>,
    /// Producers in the run.
    pub producers: usize,
    /// Requests outstanding per producer at most.
    pub in_flight: usize,
}

/// Runs producer `index` until the plan ends and its outstanding requests complete.
/// `send(n)` starts the producer's `n`-th request (0, 1, 2, …).
pub async fn run<F, Fut>(setup: &TaskSetup<'_>, index: usize, mut send: F) -> ProducerOutcome
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut out = ProducerOutcome::default();
    let mut schedule = Schedule::new(
        setup.start,
        setup.rate,
        setup.producers,
        index,
        setup.shape.records as u64,
    );
    let mut in_flight = FuturesUnordered::new();
    let mut next: Option<Instant> = None;
    let mut done = false;
    let mut sent = 0usize;
    loop {
        if next.is_none() && !done && in_flight.len() < setup.in_flight {
            let at = schedule.next_send();
            if setup.plan.claim(at) {
                next = Some(at);
            } else {
                done = true;
            }
        }
        if let Some(at) = next {
            if in_flight.len() < setup.in_flight && at <= Instant::now() {
                if setup.rate.is_some() {
                    out.sent(setup.plan, at);
                }
                let request = send(sent);
                in_flight.push(async move { (at, request.await) });
                sent += 1;
                next = None;
                continue;
            }
        }
        if in_flight.is_empty() && next.is_none() {
            return out;
        }
        let wake = next
            .filter(|_| in_flight.len() < setup.in_flight)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(limits::DRAIN_TIMEOUT_SECS));
        let can_send = next.is_some() && in_flight.len() < setup.in_flight;
        tokio::select! {
            biased;
            Some((at, result)) = in_flight.next(), if !in_flight.is_empty() => {
                out.complete(setup.plan, at, result, setup.shape.into(), setup.throughput);
            }
            _ = async_io::Timer::at(wake), if can_send => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::args::Stop;
    use kafka_protocol::records::Compression;

    fn setup<'a>(plan: &'a Plan, throughput: &'a Throughput, rate: Option<u64>) -> TaskSetup<'a> {
        TaskSetup {
            plan,
            throughput,
            shape: BatchShape::filling(1000, 100, Compression::None),
            start: Instant::now(),
            rate,
            producers: 1,
            in_flight: 3,
        }
    }

    #[test]
    fn count_run_sends_every_batch_and_counts_failures() {
        let start = Instant::now();
        let plan = Plan::new(Stop::Count(100), start, 10, Duration::ZERO);
        let throughput = Throughput::default();
        let setup = setup(&plan, &throughput, None);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let out = runtime.block_on(run(&setup, 0, |n| async move {
            tokio::task::yield_now().await;
            if n == 3 {
                anyhow::bail!("refused")
            }
            Ok(())
        }));
        assert_eq!(out.batches, 9);
        assert_eq!(out.latency.count(), 10);
        assert_eq!(out.first_error.as_deref(), Some("refused"));
        assert_eq!(throughput.totals().produced_messages, 90);
        assert_eq!(throughput.totals().errors, 1);
    }

    #[test]
    fn in_flight_window_is_never_exceeded() {
        use std::cell::Cell;
        let plan = Plan::new(Stop::Count(200), Instant::now(), 10, Duration::ZERO);
        let throughput = Throughput::default();
        let setup = setup(&plan, &throughput, None);
        let outstanding = Cell::new(0usize);
        let peak = Cell::new(0usize);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        runtime.block_on(run(&setup, 0, |_| {
            outstanding.set(outstanding.get() + 1);
            peak.set(peak.get().max(outstanding.get()));
            let outstanding = &outstanding;
            async move {
                tokio::time::sleep(Duration::from_micros(100)).await;
                outstanding.set(outstanding.get() - 1);
                Ok(())
            }
        }));
        assert_eq!(peak.get(), 3);
    }

    #[test]
    fn paced_run_offers_the_asked_rate() {
        // 2000 msgs/s in batches of 10: 200 batches/s, so 20 batches take about 95 ms.
        let start = Instant::now();
        let plan = Plan::new(Stop::Count(200), start, 10, Duration::ZERO);
        let throughput = Throughput::default();
        let setup = setup(&plan, &throughput, Some(2000));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let out = runtime.block_on(run(&setup, 0, |_| async { Ok(()) }));
        assert_eq!(out.batches, 20);
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(90), "{took:?}");
    }
}
