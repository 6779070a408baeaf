//! [`MemoryBudget`]: one shard's memory budget for the tail caches of its logs and the request
//! buffers of its connections.
//!
//! The budget is split once, at start, into two charged shares of a quarter each and a half of
//! headroom. The *cache share* is divided evenly among the shard's logs, each capped at the
//! log's own maximum; the shard re-divides it whenever a partition opens or closes, and a log
//! whose share shrinks drops its oldest cached batches at once (reads for them go to the segment
//! files). The *request share* is a FIFO counting semaphore of bytes: a connection reserves a
//! frame's length before it reads the frame's body and gives the bytes back once the request is
//! handled (the frame is freed with it). When the share is spent, the connection stops reading
//! its socket, so the kernel's TCP window pushes back on the client, and Produce answers carry a
//! throttle time so that Kafka clients also back off on their own (KIP-219).
//!
//! The headroom half pays for what is not charged but follows from the two shares: a write
//! round copies its pending batches (at most the request share) into one buffer, and cached
//! batches are slices of such round buffers, so the oldest cached batch may keep the rest of
//! its round (at most the request share again) alive. Frames + round copies + pinned rounds +
//! cache is therefore at most the whole budget.
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
    SHARD_MEMORY_SHARE_DIVISOR, TAIL_CACHE_BYTES_PER_LOG_MAX, THROTTLE_TIME_MS_MAX,
};

/// One shard's memory budget (see the module doc).
pub struct MemoryBudget {
    limit_bytes: usize,
    cache_bytes: usize,
    request_bytes: usize,
    requests: Rc<Semaphore>,
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

impl MemoryBudget {
    /// A budget of `limit_bytes` for one shard.
    ///
    /// # Panics
    /// If `limit_bytes` is zero (configuration validates a minimum long before).
    pub fn new(limit_bytes: usize) -> Self {
        assert!(limit_bytes > 0, "a shard memory budget must be positive");
        let cache_bytes = limit_bytes / SHARD_MEMORY_SHARE_DIVISOR;
        let request_bytes = Self::request_share_of(limit_bytes);
        MemoryBudget {
            limit_bytes,
            cache_bytes,
            request_bytes,
            requests: Rc::new(Semaphore::new(request_bytes as u64)),
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
        limit_bytes / SHARD_MEMORY_SHARE_DIVISOR
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
        assert_eq!(budget.cache_bytes() + budget.request_bytes(), 32 << 20);
        assert_eq!(
            MemoryBudget::request_share_of(64 << 20),
            budget.request_bytes()
        );
        assert_eq!(
            budget.tail_cache_bytes_per_log(0),
            TAIL_CACHE_BYTES_PER_LOG_MAX
        );
        assert_eq!(budget.tail_cache_bytes_per_log(1000), (16 << 20) / 1000);
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
}
