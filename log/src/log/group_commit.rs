//! Group commit: flushers that find a write in flight wait for it instead of queueing for the
//! lock.
//!
//! A flusher first checks whether the high watermark already covers what it appended; if not, it
//! tries to take the write lock and become the writer, which writes *everything* pending (its own
//! batches and those of everyone who appended meanwhile) in one round. Flushers that find the lock
//! taken wait for the round to end, then check again: most find their batches written and return
//! without any I/O; the first that does not becomes the next writer. A queue on the lock instead
//! would hand it to flushers whose batches were already written, one by one, each writing a
//! single new batch: no grouping at all.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

use glommio::sync::Permit;

/// Counts ended write rounds (and lock releases) and wakes whoever waits for the next.
#[derive(Debug, Default)]
pub(super) struct Rounds {
    ended: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Rounds {
    /// How many rounds have ended so far.
    pub fn ended(&self) -> u64 {
        self.ended.get()
    }

    /// Marks a round ended and wakes every waiter.
    pub fn end_round(&self) {
        self.ended.set(self.ended.get() + 1);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            w.wake();
        }
    }

    /// Waits until a round ends after `seen` rounds had.
    pub async fn after(&self, seen: u64) {
        poll_fn(|cx| {
            if self.ended.get() != seen {
                Poll::Ready(())
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

/// The write lock, held; releasing it ends a round.
pub(super) struct WriteGuard<'a> {
    _permit: Permit<'a>,
    rounds: &'a Rounds,
}

impl<'a> WriteGuard<'a> {
    pub fn new(permit: Permit<'a>, rounds: &'a Rounds) -> Self {
        WriteGuard {
            _permit: permit,
            rounds,
        }
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.rounds.end_round();
    }
}
