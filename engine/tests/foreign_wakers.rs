//! A shard's task whose last waker is dropped on another thread at the moment the shard drops
//! the task's `JoinHandle`. Every cross-shard reply ends this way now and then (the answering
//! shard frees the one-shot that holds the asking task's waker). glommio 0.9 let the task's
//! count touch zero on the foreign thread and raised it again; a handle dropped in between
//! freed the task, and the waker sent home freed it a second time, aborting the process
//! (third_party/README.md). Here the two drops are lined up on purpose, a million times over:
//! unpatched, every debug run of this test crashed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Poll, Waker};

use glommio::{LocalExecutorBuilder, Placement};

const ROUNDS: u64 = 1_000_000;

/// Spins until `round` reaches `n`.
fn wait_for(round: &AtomicU64, n: u64) {
    while round.load(Ordering::Acquire) < n {
        std::hint::spin_loop();
    }
}

#[test]
fn a_last_waker_dropped_on_another_thread_as_the_task_is_let_go_frees_it_once() {
    let round = Arc::new(AtomicU64::new(0));
    let (wakers, dropper_wakers) = mpsc::channel::<Waker>();
    let dropper = {
        let round = round.clone();
        std::thread::spawn(move || {
            let mut dropped = 0u64;
            for n in 1..=ROUNDS {
                let Ok(waker) = dropper_wakers.recv() else {
                    break;
                };
                wait_for(&round, n);
                drop(waker);
                dropped += 1;
            }
            dropped
        })
    };
    let ran = LocalExecutorBuilder::new(Placement::Unbound)
        .name("foreign-wakers")
        .spawn(move || async move {
            let mut ran = 0u64;
            for n in 1..=ROUNDS {
                let (keep, kept) = mpsc::channel::<Waker>();
                // A task that hands out a clone of its waker and ends at once.
                let task = glommio::spawn_local(std::future::poll_fn(move |cx| {
                    let _ = keep.send(cx.waker().clone());
                    Poll::Ready(())
                }));
                let waker = loop {
                    match kept.try_recv() {
                        Ok(waker) => break waker,
                        Err(_) => futures_lite::future::yield_now().await,
                    }
                };
                // The task has ended: the waker on its way to the other thread is the last
                // reference but the handle.
                if wakers.send(waker).is_err() {
                    break;
                }
                round.store(n, Ordering::Release);
                drop(task);
                ran += 1;
                // Lets the executor take back any waker sent home.
                futures_lite::future::yield_now().await;
            }
            ran
        })
        .expect("executor")
        .join()
        .expect("executor ran");
    assert_eq!(ran, ROUNDS);
    assert_eq!(dropper.join().expect("dropper"), ROUNDS);
}
