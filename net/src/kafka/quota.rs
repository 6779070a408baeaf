//! Client quotas (Kafka's KIP-13, throttled the KIP-219 way): byte rates for produce and fetch
//! per principal ("user") and client id, configured in `[[kafka.quotas]]`.
//!
//! Each entry names a user, a client id, both or neither, and sets `producer_byte_rate`,
//! `consumer_byte_rate` or both. For one kind of traffic a request is limited by the most
//! specific entry that sets a rate for it: user and client id, then user, then client id, then
//! neither (Kafka's order, without its separate defaults). The matching entry decides what
//! shares a rate: an entry naming a user limits all of that user's clients together, one naming
//! a client id all principals using it together, and one naming neither each client id on its
//! own.
//!
//! Rates are token buckets holding one second of the rate. A request's bytes (a Produce's
//! batches, a Fetch answer's records) are charged after it is served; when that leaves the
//! bucket in debt, the answer carries the time the debt takes to pay off as `throttle_time_ms`
//! and its connection is not read again until then (clients since KIP-219 also wait that long
//! before their next request). So a client over its quota is slowed to it, and nothing is
//! refused. Each shard keeps its own buckets for the connections it serves; a client with one
//! connection to the node (the usual case) gets exactly its rate, one with connections on
//! several shards up to that many times it (as Redpanda's per-shard quotas).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// One `[[kafka.quotas]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientQuota {
    /// The principal it applies to; `None`: every principal.
    pub user: Option<String>,
    /// The client id it applies to; `None`: every client id.
    pub client_id: Option<String>,
    /// Bytes per second of record batches produced; `None`: this entry sets none.
    pub producer_byte_rate: Option<u64>,
    /// Bytes per second of records fetched; `None`: this entry sets none.
    pub consumer_byte_rate: Option<u64>,
}

/// The traffic a rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum QuotaKind {
    /// Record batches produced.
    Produce,
    /// Records fetched.
    Fetch,
}

impl ClientQuota {
    fn rate(&self, kind: QuotaKind) -> Option<u64> {
        match kind {
            QuotaKind::Produce => self.producer_byte_rate,
            QuotaKind::Fetch => self.consumer_byte_rate,
        }
    }

    /// How specific the entry is: user and client id, user, client id, neither.
    fn rank(&self) -> u8 {
        match (&self.user, &self.client_id) {
            (Some(_), Some(_)) => 3,
            (Some(_), None) => 2,
            (None, Some(_)) => 1,
            (None, None) => 0,
        }
    }

    fn applies(&self, user: &str, client_id: &str) -> bool {
        self.user.as_deref().is_none_or(|u| u == user)
            && self.client_id.as_deref().is_none_or(|c| c == client_id)
    }
}

/// The entry that limits `kind` for `user` and `client_id`, if any.
pub(crate) fn limiting<'a>(
    quotas: &'a [ClientQuota],
    kind: QuotaKind,
    user: &str,
    client_id: &str,
) -> Option<&'a ClientQuota> {
    quotas
        .iter()
        .filter(|q| q.rate(kind).is_some() && q.applies(user, client_id))
        .max_by_key(|q| q.rank())
}

/// The longest one answer holds its connection back, however deep the debt.
pub(crate) const THROTTLE_MAX: Duration = Duration::from_secs(30);

/// How many buckets a shard keeps before it drops the full ones (a full bucket is as good as
/// none): client ids are the client's to choose.
const BUCKETS_SWEEP_AT: usize = 10_000;

/// A token bucket of bytes holding one second of its rate; it may go into debt.
#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u64, now: Instant) -> Self {
        let rate = rate as f64;
        Self {
            rate,
            tokens: rate,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.at = now;
    }

    /// Takes `bytes`; how long the debt that leaves takes to pay off.
    fn charge(&mut self, bytes: u64, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate).min(THROTTLE_MAX)
        }
    }

    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.rate
    }
}

/// What a bucket limits: the kind of traffic, and the user and client id the matching entry
/// shares it between (`None` for a part the entry leaves open).
type BucketKey = (QuotaKind, Option<String>, Option<String>);

/// One shard's buckets.
#[derive(Default)]
pub(crate) struct ShardQuotas {
    buckets: RefCell<HashMap<BucketKey, Bucket>>,
}

impl ShardQuotas {
    /// Charges `bytes` of `kind` by `user` with `client_id` at `now`; how long the client is to
    /// be held back (zero when no quota limits it or it is within its rate).
    pub(crate) fn charge(
        &self,
        quotas: &[ClientQuota],
        kind: QuotaKind,
        (user, client_id): (&str, &str),
        bytes: u64,
        now: Instant,
    ) -> Duration {
        let Some(quota) = limiting(quotas, kind, user, client_id) else {
            return Duration::ZERO;
        };
        let Some(rate) = quota.rate(kind) else {
            return Duration::ZERO;
        };
        let key: BucketKey = (
            kind,
            quota.user.as_ref().map(|_| user.to_owned()),
            // An entry naming neither limits each client id on its own.
            (quota.client_id.is_some() || quota.user.is_none()).then(|| client_id.to_owned()),
        );
        let mut buckets = self.buckets.borrow_mut();
        if buckets.len() >= BUCKETS_SWEEP_AT && !buckets.contains_key(&key) {
            buckets.retain(|_, bucket| !bucket.is_full(now));
        }
        buckets
            .entry(key)
            .or_insert_with(|| Bucket::new(rate, now))
            .charge(bytes, now)
    }
}

/// When a connection may be read again after a throttled answer.
#[derive(Default, Clone)]
pub(crate) struct Muted(Rc<Cell<Option<Instant>>>);

impl Muted {
    /// Holds the connection back for `throttle` from now (a later end wins).
    pub(crate) fn hold_for(&self, throttle: Duration) {
        if throttle.is_zero() {
            return;
        }
        let until = Instant::now() + throttle;
        if self.0.get().is_none_or(|held| held < until) {
            self.0.set(Some(until));
        }
    }

    /// Waits out the hold, if any.
    pub(crate) async fn wait(&self) {
        if let Some(until) = self.0.take() {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                glommio::timer::sleep(left).await;
            }
        }
    }
}

/// `throttle` in whole milliseconds, for an answer's `throttle_time_ms`.
pub(crate) fn throttle_ms(throttle: Duration) -> i32 {
    i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(user: Option<&str>, client: Option<&str>, produce: Option<u64>) -> ClientQuota {
        ClientQuota {
            user: user.map(str::to_owned),
            client_id: client.map(str::to_owned),
            producer_byte_rate: produce,
            consumer_byte_rate: None,
        }
    }

    #[test]
    fn the_most_specific_entry_that_sets_a_rate_limits() {
        let quotas = [
            quota(None, None, Some(1)),
            quota(None, Some("loader"), Some(2)),
            quota(Some("app"), None, Some(3)),
            quota(Some("app"), Some("loader"), None),
        ];
        let rate = |user, client| {
            limiting(&quotas, QuotaKind::Produce, user, client).and_then(|q| q.producer_byte_rate)
        };
        assert_eq!(
            rate("app", "loader"),
            Some(3),
            "the (app, loader) entry sets no rate"
        );
        assert_eq!(rate("app", "other"), Some(3));
        assert_eq!(rate("someone", "loader"), Some(2));
        assert_eq!(rate("someone", "other"), Some(1));
        assert!(limiting(&quotas, QuotaKind::Fetch, "app", "loader").is_none());
    }

    #[test]
    fn a_bucket_throttles_for_the_time_its_debt_takes_to_pay_off() {
        let quotas = [quota(None, Some("c"), Some(1000))];
        let shard = ShardQuotas::default();
        let now = Instant::now();
        let charge = |bytes, at| shard.charge(&quotas, QuotaKind::Produce, ("u", "c"), bytes, at);
        assert_eq!(
            charge(1000, now),
            Duration::ZERO,
            "a second's worth is free"
        );
        assert_eq!(charge(500, now), Duration::from_millis(500));
        // Half a second later the debt is paid.
        assert_eq!(charge(0, now + Duration::from_millis(500)), Duration::ZERO);
        assert_eq!(
            charge(10_000_000, now + Duration::from_millis(500)),
            THROTTLE_MAX
        );
        // Another client id is not limited at all.
        let other = shard.charge(&quotas, QuotaKind::Produce, ("u", "d"), 1 << 30, now);
        assert_eq!(other, Duration::ZERO);
    }

    #[test]
    fn a_user_entry_is_shared_by_its_clients_and_a_default_is_per_client() {
        let now = Instant::now();
        let shard = ShardQuotas::default();
        let by_user = [quota(Some("app"), None, Some(100))];
        let charge = |quotas: &[ClientQuota], client| {
            shard.charge(quotas, QuotaKind::Produce, ("app", client), 100, now)
        };
        assert_eq!(charge(&by_user, "a"), Duration::ZERO);
        assert!(charge(&by_user, "b") > Duration::ZERO, "the same bucket");
        let default = [quota(None, None, Some(100))];
        assert_eq!(charge(&default, "a"), Duration::ZERO);
        assert_eq!(
            charge(&default, "b"),
            Duration::ZERO,
            "a bucket per client id"
        );
    }
}
