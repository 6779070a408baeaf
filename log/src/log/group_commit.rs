//! Group commit: flushers share write rounds.
//!
//! A flusher first checks whether the high watermark already covers what it appended. If some of
//! its batches are still queued and no round is on its way, it starts a round with everything
//! queued, up to `ROUND_BYTES_MAX` (its own batches and those of everyone who appended
//! meanwhile); otherwise it waits for the next change and checks again. Most flushers find their
//! batches in a round someone else started and do no I/O of their own; a queue on a lock
//! instead would hand the lock to flushers whose batches were already written, one by one: no
//! grouping at all.
//!
//! Before a durable round the flusher that starts it may first *gather*: while fewer batches
//! are queued than the last durable round carried, it waits (up to a third of that round's
//! time, at most `GATHER_WAIT_MAX`, and only while appends keep coming `GATHER_GAP_MAX` apart)
//! for the producers that round answered to append again, and the other flushers wait for the
//! round it then starts. Without it, a producer answered by a round and appending again a few
//! tens of microseconds after the next round started waits for that round and then its own.
//!
//! A round's writes are waited for in a task of their own, so a round completes even if the
//! flush that started it is dropped (a client that hangs up mid-request). The round then
//! *settles* (its batches are indexed, cached and acknowledged by moving the high watermark) in
//! whichever flusher looks first. If it failed, its batches go back to the front of the queue in
//! order and the flushers that were waiting get the error; the next flush rewrites the batches
//! at the same positions.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

use glommio::sync::Permit;

use crate::error::LogError;
use crate::segment::WriteOutcome;

/// Counts changes (a round's writes ended, a round settled, the write lock was released) and
/// wakes whoever waits for the next.
#[derive(Debug, Default)]
pub(super) struct Progress {
    changes: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Progress {
    /// How many changes there have been so far.
    pub fn seen(&self) -> u64 {
        self.changes.get()
    }

    /// Records a change and wakes every waiter.
    pub fn notify(&self) {
        self.changes.set(self.changes.get() + 1);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            w.wake();
        }
    }

    /// Waits until a change after the first `seen`.
    pub async fn after(&self, seen: u64) {
        poll_fn(|cx| {
            if self.changes.get() != seen {
                Poll::Ready(())
            } else {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

/// How one round's writes ended, set by the task that runs them and taken by the settle.
#[derive(Debug, Default)]
pub(super) struct RoundWrites {
    outcome: RefCell<Option<Result<WriteOutcome, LogError>>>,
}

impl RoundWrites {
    /// Records the outcome.
    pub fn set(&self, outcome: Result<WriteOutcome, LogError>) {
        *self.outcome.borrow_mut() = Some(outcome);
    }

    /// The outcome, once the writes have ended.
    pub fn take(&self) -> Option<Result<WriteOutcome, LogError>> {
        self.outcome.borrow_mut().take()
    }
}

/// A copy of a write error, for each flusher that waited on the failed round.
pub(super) fn again(e: &LogError) -> LogError {
    match e {
        LogError::Io { context, source } => LogError::Io {
            context: context.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        other => LogError::Io {
            context: "writing the log".to_owned(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// The write lock, held; releasing it is a change.
pub(super) struct WriteGuard<'a> {
    _permit: Permit<'a>,
    progress: &'a Progress,
}

impl<'a> WriteGuard<'a> {
    pub fn new(permit: Permit<'a>, progress: &'a Progress) -> Self {
        WriteGuard {
            _permit: permit,
            progress,
        }
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.progress.notify();
    }
}

/// A flusher gathering batches for the next round: while it lives the other flushers wait;
/// when it ends (the round starts, or the flusher is dropped) they are woken to look again.
pub(super) struct Gathering<'a> {
    flag: &'a Cell<bool>,
    progress: &'a Progress,
}

impl<'a> Gathering<'a> {
    pub fn start(flag: &'a Cell<bool>, progress: &'a Progress) -> Self {
        flag.set(true);
        Gathering { flag, progress }
    }
}

impl Drop for Gathering<'_> {
    fn drop(&mut self) {
        self.flag.set(false);
        self.progress.notify();
    }
}
