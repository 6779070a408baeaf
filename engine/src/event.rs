//! [`Event`]: a shard-local, generation-counted notification.
//!
//! A waiter reads the generation *before* it looks at the state it waits on, then waits for the
//! generation to move past it. A notification between the look and the wait is therefore never
//! lost, even when the look itself awaits (a fetch reads the log, then waits for the next
//! append). The event is `!Send` and lives on one shard: fetch long-polls wait on their
//! partition's event, services wait on the shard's stopping event.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A notification that wakes every waiter registered before it.
#[derive(Debug, Default)]
pub(crate) struct Event {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Event {
    /// The current generation; pass it to [`Event::wait_past`].
    pub(crate) fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Advances the generation and wakes every waiter.
    pub(crate) fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        // Take the list first: a woken task may register again while we iterate.
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waker in waiters {
            waker.wake();
        }
    }

    /// Resolves once the generation differs from `seen`.
    pub(crate) fn wait_past(&self, seen: u64) -> WaitPast<'_> {
        WaitPast { event: self, seen }
    }
}

/// The future of [`Event::wait_past`].
pub(crate) struct WaitPast<'a> {
    event: &'a Event,
    seen: u64,
}

impl Future for WaitPast<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.event.generation.get() != self.seen {
            return Poll::Ready(());
        }
        let mut waiters = self.event.waiters.borrow_mut();
        // A waiter polled again before a notification must not grow the list.
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Waits until `event` resolves or `period` passes, whichever comes first; `true` when the
/// event did. `event` stays usable for the next wait (a loop that ticks until something ends).
pub(crate) async fn or_after<F>(event: &mut F, period: std::time::Duration) -> bool
where
    F: std::future::Future<Output = ()> + Unpin,
{
    futures_lite::future::or(
        async {
            event.await;
            true
        },
        async {
            glommio::timer::sleep(period).await;
            false
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_between_look_and_wait_is_not_lost() {
        let event = Event::default();
        let seen = event.generation();
        event.notify();
        futures_lite::future::block_on(event.wait_past(seen));
    }
}
