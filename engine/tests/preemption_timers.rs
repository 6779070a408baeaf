//! What the shards rely on from glommio's preemption and timers: a task queue that keeps the
//! CPU is still preempted so that another queue runs (the shards' request and background queues
//! share one thread this way), and an executor that goes to sleep with a short timer of its own
//! wakes for that timer, not for the longer preemption timer armed while it was busy. glommio
//! arms and cancels those timers on every pass through its reactor; a change to how it does
//! that (one was measured: docs/BENCHMARKS.md, "preemption timers kept armed") must keep both.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::{Latency, LocalExecutorBuilder, Placement, Shares};

/// The preemption period of the executors below.
const PREEMPT: Duration = Duration::from_millis(20);

#[test]
fn a_queue_that_keeps_the_cpu_is_preempted_so_another_queue_runs() {
    LocalExecutorBuilder::new(Placement::Unbound)
        .name("preempted")
        .preempt_timer(PREEMPT)
        .spawn(|| async move {
            let busy_queue = glommio::executor().create_task_queue(
                Shares::Static(1000),
                Latency::NotImportant,
                "busy",
            );
            let other_queue = glommio::executor().create_task_queue(
                Shares::Static(1000),
                Latency::NotImportant,
                "other",
            );
            let ran_at: Rc<Cell<Option<Instant>>> = Rc::default();
            for round in 0..5 {
                ran_at.set(None);
                let started = Instant::now();
                // Spins (yielding only when glommio asks it to) until the other queue's task
                // has run, or for 5 s: far longer than the preemption period.
                let busy = glommio::spawn_local_into(
                    {
                        let ran_at = ran_at.clone();
                        async move {
                            while ran_at.get().is_none()
                                && started.elapsed() < Duration::from_secs(5)
                            {
                                std::hint::spin_loop();
                                glommio::yield_if_needed().await;
                            }
                        }
                    },
                    busy_queue,
                )
                .expect("busy queue");
                // Spawned after the busy task has begun to spin.
                glommio::timer::sleep(Duration::from_millis(1)).await;
                let other = glommio::spawn_local_into(
                    {
                        let ran_at = ran_at.clone();
                        async move { ran_at.set(Some(Instant::now())) }
                    },
                    other_queue,
                )
                .expect("other queue");
                other.await;
                busy.await;
                let waited = ran_at
                    .get()
                    .map(|at| at.duration_since(started))
                    .unwrap_or(Duration::MAX);
                assert!(
                    waited < Duration::from_secs(2),
                    "round {round}: the other queue ran only after {waited:?}, the busy one was not preempted"
                );
            }
        })
        .expect("executor")
        .join()
        .expect("executor thread");
}

#[test]
fn an_executor_asleep_with_a_short_timer_wakes_for_it() {
    let sleeps = LocalExecutorBuilder::new(Placement::Unbound)
        .name("sleeper")
        .preempt_timer(Duration::from_millis(400))
        .spawn(|| async move {
            let mut took = Vec::new();
            for _ in 0..20 {
                // Busy for a moment, so that a preemption timer (400 ms) is armed, then asleep
                // with nothing to do but a 5 ms timer.
                let busy_until = Instant::now() + Duration::from_millis(2);
                while Instant::now() < busy_until {
                    std::hint::spin_loop();
                    glommio::yield_if_needed().await;
                }
                let asleep = Instant::now();
                glommio::timer::sleep(Duration::from_millis(5)).await;
                took.push(asleep.elapsed());
            }
            took
        })
        .expect("executor")
        .join()
        .expect("executor thread");
    let mut sorted = sleeps.clone();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    assert!(
        median >= Duration::from_millis(5),
        "a 5 ms sleep ended early: {sleeps:?}"
    );
    assert!(
        median < Duration::from_millis(200),
        "a 5 ms sleep took {median:?} at the median (the 400 ms preemption timer woke it?): {sleeps:?}"
    );
}
