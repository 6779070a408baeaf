//! [`MemoryBudget`]: one shard's memory budget for the tail caches of its logs, the Fetch
//! answers and the request buffers of its connections.
//!
//! The budget is split once, at start, into three charged shares (an eighth for the caches, an
//! eighth for Fetch answers, a quarter for requests) and a half of headroom. The *cache share*
//! is divided evenly among the shard's logs, each capped at the log's own maximum; the shard
//! re-divides it whenever a partition opens or closes, and a log whose share shrinks drops its
//! oldest cached batches at once (reads for them go to the segment files). The *request share*
//! is a FIFO counting semaphore of bytes: a connection reserves a frame's length before it reads
//! the frame's body and gives the bytes back once the request is handled (the frame is freed
//! with it). When the share is spent, the connection stops reading its socket, so the kernel's
//! TCP window pushes back on the client, and Produce answers carry a throttle time so that Kafka
//! clients also back off on their own (KIP-219).
//!
//! The *fetch share* bounds what Fetch answers read and hold until they are written to their
//! sockets (the bytes read from segment files, and the encoded answer). A Fetch is granted what
//! it asks or what is left of the share, whichever is less, but never less than
//! [`FETCH_GRANT_FLOOR_BYTES`] (or what it asked, if less), and never waits: under pressure
//! answers get smaller instead, so a consumer that does not read its answers cannot hold up
//! another, and produce requests never wait for fetches. Once encoded, the answer is charged
//! its real size until it is written. The share can so be exceeded by at most the floor (or one
//! batch, which an answer always carries whole) per Fetch in progress.
//!
//! The headroom half pays for what is not charged but follows from the request share: a write
//! round copies its pending batches (at most the request share) into one buffer, and cached
//! batches are slices of such round buffers, so the oldest cached batch may keep the rest of
//! its round (at most the request share again) alive. Frames + round copies + pinned rounds +
//! cache + answers is therefore at most the whole budget, beyond the fetch floors above.
//!
//! Everything is shard-local (`Cell`, `Rc`, glommio's `!Send` semaphore): no atomics on the hot
//! path, where a reservation that fits costs one borrow and a subtraction.
//!
//! Traps: a reservation larger than the whole request share would wait forever, so it is
//! clamped to the share (the server refuses a `max_frame_bytes` above the share at start, so
//! this only guards against a misconfigured embedded user). The semaphore is FIFO: a large frame
//! waiting at the head is not starved by small ones behind it. A log's tail cache always keeps
//! its newest batch, so with very many partitions the caches may exceed their share by up to
//! one batch each.

use std::cell::Cell;
use std::rc::Rc;

use glommio::sync::{Semaphore, StaticPermit};

use crate::limits::{
    FETCH_GRANT_FLOOR_BYTES, SHARD_MEMORY_CACHE_DIVISOR, SHARD_MEMORY_FETCH_DIVISOR,
    SHARD_MEMORY_REQUEST_DIVISOR, TAIL_CACHE_BYTES_PER_LOG_MAX, THROTTLE_TIME_MS_MAX,
};

/// One shard's memory budget (see the module doc).
pub struct MemoryBudget {
    limit_bytes: usize,
    cache_bytes: usize,
    request_bytes: usize,
    requests: Rc<Semaphore>,
    fetch_bytes: usize,
    /// Fetch answer bytes charged now (may exceed `fetch_bytes` by the floors).
    fetch_used: Rc<Cell<usize>>,
    /// Reservations waiting for bytes to be given back right now.
    waiting: Cell<usize>,
    /// Reservations that had to wait, since start.
    waited_total: Cell<u64>,
}

/// Request bytes held until dropped (when the request has been handled).
#[derive(Debug)]
pub struct RequestReservation {
    _permit: StaticPermit,
}

/// Fetch answer bytes charged to the fetch share until dropped (when the answer is written).
#[derive(Debug)]
pub struct AnswerReservation {
    used: Rc<Cell<usize>>,
    bytes: usize,
}

impl AnswerReservation {
    /// The bytes charged.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Charges exactly `bytes` from now on: what the answer really holds, which may be more than
    /// was granted (an answer's first batch is always whole) or less (most answers).
    pub fn set(&mut self, bytes: usize) {
        self.used.set(
            self.used
                .get()
                .saturating_sub(self.bytes)
                .saturating_add(bytes),
        );
        self.bytes = bytes;
    }
}

impl Drop for AnswerReservation {
    fn drop(&mut self) {
        self.used.set(self.used.get().saturating_sub(self.bytes));
    }
}

impl MemoryBudget {
    /// A budget of `limit_bytes` for one shard.
    ///
    /// # Panics
    /// If `limit_bytes` is zero (configuration validates a minimum long before).
    pub fn new(limit_bytes: usize) -> Self {
        assert!(limit_bytes > 0, "a shard memory budget must be positive");
        let cache_bytes = limit_bytes / SHARD_MEMORY_CACHE_DIVISOR;
        let request_bytes = Self::request_share_of(limit_bytes);
        MemoryBudget {
            limit_bytes,
            cache_bytes,
            request_bytes,
            requests: Rc::new(Semaphore::new(request_bytes as u64)),
            fetch_bytes: limit_bytes / SHARD_MEMORY_FETCH_DIVISOR,
            fetch_used: Rc::new(Cell::new(0)),
            waiting: Cell::new(0),
            waited_total: Cell::new(0),
        }
    }

    /// The whole budget.
    pub fn limit_bytes(&self) -> usize {
        self.limit_bytes
    }

    /// The share of the budget for request buffers (the largest frame must fit in it).
    pub fn request_bytes(&self) -> usize {
        self.request_bytes
    }

    /// The share of the budget for the tail caches of all the shard's logs.
    pub fn cache_bytes(&self) -> usize {
        self.cache_bytes
    }

    /// The request share of `limit_bytes`, for validating a frame limit before start.
    pub fn request_share_of(limit_bytes: usize) -> usize {
        limit_bytes / SHARD_MEMORY_REQUEST_DIVISOR
    }

    /// The share of the budget for Fetch answers.
    pub fn fetch_bytes(&self) -> usize {
        self.fetch_bytes
    }

    /// Fetch answer bytes charged now.
    pub fn fetch_bytes_used(&self) -> usize {
        self.fetch_used.get()
    }

    /// Grants a Fetch answer up to `wanted` bytes of the fetch share, without waiting: what is
    /// left of the share if that is less, but at least [`FETCH_GRANT_FLOOR_BYTES`] (or
    /// `wanted`, if less).
    pub fn grant_answer(&self, wanted: usize) -> AnswerReservation {
        let mut answer = AnswerReservation {
            used: Rc::clone(&self.fetch_used),
            bytes: 0,
        };
        answer.set(self.grantable(wanted));
        answer
    }

    /// Grants `answer` up to `more` bytes beyond what it holds, by the rule of
    /// [`MemoryBudget::grant_answer`].
    pub fn grow_answer(&self, answer: &mut AnswerReservation, more: usize) {
        answer.set(answer.bytes() + self.grantable(more));
    }

    fn grantable(&self, wanted: usize) -> usize {
        let left = self.fetch_bytes.saturating_sub(self.fetch_used.get());
        wanted.min(left).max(wanted.min(FETCH_GRANT_FLOOR_BYTES))
    }

    /// Each log's tail cache capacity when the shard holds `logs` logs.
    pub fn tail_cache_bytes_per_log(&self, logs: usize) -> usize {
        (self.cache_bytes / logs.max(1)).min(TAIL_CACHE_BYTES_PER_LOG_MAX)
    }

    /// Request bytes held now.
    pub fn request_bytes_used(&self) -> usize {
        self.request_bytes - self.requests.available() as usize
    }

    /// Reservations that have had to wait for memory since start.
    pub fn reservations_waited(&self) -> u64 {
        self.waited_total.get()
    }

    /// Reserves `bytes` of the request share, waiting (FIFO) while it is spent.
    pub async fn reserve_request(&self, bytes: usize) -> RequestReservation {
        let units = bytes.min(self.request_bytes) as u64;
        if let Ok(permit) = self.requests.try_acquire_static_permit(units) {
            return RequestReservation { _permit: permit };
        }
        self.waited_total.set(self.waited_total.get() + 1);
        self.waiting.set(self.waiting.get() + 1);
        let _waiting = WaitingGuard(&self.waiting);
        // The semaphore is never closed, so acquiring only ends with a permit.
        let permit = self
            .requests
            .acquire_static_permit(units)
            .await
            .expect("the request memory semaphore is never closed");
        RequestReservation { _permit: permit }
    }

    /// How long a client should hold back its next request, in ms: 0 while less than half the
    /// request share is in use, rising to [`THROTTLE_TIME_MS_MAX`] as it fills, and the maximum
    /// while any connection waits for memory.
    pub fn throttle_time_ms(&self) -> i32 {
        if self.waiting.get() > 0 {
            return THROTTLE_TIME_MS_MAX;
        }
        let half = self.request_bytes / 2;
        let used = self.request_bytes_used();
        if used <= half || half == 0 {
            return 0;
        }
        let over = (used - half) as u64;
        let ms = over * THROTTLE_TIME_MS_MAX as u64 / half as u64;
        (ms as i32).clamp(1, THROTTLE_TIME_MS_MAX)
    }
}

/// Counts a reservation as waiting until it is granted or dropped.
struct WaitingGuard<'a>(&'a Cell<usize>);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::LocalExecutor;

    #[test]
    fn shares_and_per_log_cache() {
        let budget = MemoryBudget::new(64 << 20);
        assert_eq!(
            budget.cache_bytes() + budget.fetch_bytes() + budget.request_bytes(),
            32 << 20
        );
        assert_eq!(
            MemoryBudget::request_share_of(64 << 20),
            budget.request_bytes()
        );
        assert_eq!(
            budget.tail_cache_bytes_per_log(0),
            TAIL_CACHE_BYTES_PER_LOG_MAX
        );
        assert_eq!(budget.tail_cache_bytes_per_log(1000), (8 << 20) / 1000);
    }

    #[test]
    fn reservations_wait_when_spent_and_throttle_rises() {
        LocalExecutor::default().run(async {
            let budget = Rc::new(MemoryBudget::new(4 << 20));
            let share = budget.request_bytes();
            assert_eq!(budget.throttle_time_ms(), 0);
            let first = budget.reserve_request(share * 3 / 4).await;
            let throttle = budget.throttle_time_ms();
            assert!(
                throttle > 0 && throttle < THROTTLE_TIME_MS_MAX,
                "{throttle}"
            );
            let b = budget.clone();
            let second = glommio::spawn_local(async move {
                let _r = b.reserve_request(share / 2).await;
                b.request_bytes_used()
            });
            glommio::executor().yield_task_queue_now().await;
            assert_eq!(budget.throttle_time_ms(), THROTTLE_TIME_MS_MAX);
            assert_eq!(budget.reservations_waited(), 1);
            drop(first);
            assert_eq!(second.await, share / 2);
            // Larger than the share: clamped rather than waiting forever.
            let all = budget.reserve_request(usize::MAX).await;
            assert_eq!(budget.request_bytes_used(), share);
            drop(all);
            assert_eq!(budget.request_bytes_used(), 0);
        });
    }

    #[test]
    fn fetch_answers_get_what_is_left_but_never_less_than_the_floor() {
        let budget = MemoryBudget::new(64 << 20);
        let share = budget.fetch_bytes();
        assert_eq!(share, 8 << 20);
        // Asking less than the share gets it all.
        let small = budget.grant_answer(3 << 20);
        assert_eq!(small.bytes(), 3 << 20);
        // Asking more gets what is left.
        let big = budget.grant_answer(55 << 20);
        assert_eq!(big.bytes(), 5 << 20);
        assert_eq!(budget.fetch_bytes_used(), share);
        // With the share spent, the floor (or less, if less is asked), without waiting.
        let floor = budget.grant_answer(55 << 20);
        assert_eq!(floor.bytes(), FETCH_GRANT_FLOOR_BYTES);
        let tiny = budget.grant_answer(100);
        assert_eq!(tiny.bytes(), 100);
        assert_eq!(
            budget.fetch_bytes_used(),
            share + FETCH_GRANT_FLOOR_BYTES + 100
        );
        drop((floor, tiny));
        // An answer is charged what it really holds once encoded.
        let mut big = big;
        big.set(1000);
        assert_eq!(budget.fetch_bytes_used(), (3 << 20) + 1000);
        budget.grow_answer(&mut big, 64 << 20);
        assert_eq!(big.bytes(), share - (3 << 20));
        drop((small, big));
        assert_eq!(budget.fetch_bytes_used(), 0);
    }
}
