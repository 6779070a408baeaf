//! Client quotas (Kafka's KIP-13, throttled the KIP-219 way): byte rates for produce and fetch
//! per principal ("user") and client id, configured in `[[kafka.quotas]]` and changed at run time
//! by AlterClientQuotas (see `quota_changes`).
//!
//! Each entry names a user, a client id, both or neither, and sets `producer_byte_rate`,
//! `consumer_byte_rate` or both. For one kind of traffic a request is limited by the most
//! specific entry that sets a rate for it: user and client id, then user, then client id, then
//! neither (Kafka's order, without its separate defaults). The matching entry decides what
//! shares a rate: an entry naming a user limits all of that user's clients together, one naming
//! a client id all principals using it together, and one naming neither each client id on its
//! own.
//!
//! Rates are token buckets holding one second of the rate. A request's bytes are charged as
//! they become known: a Produce's batches as the request is read (see `api::produce::Arrival`),
//! a Fetch answer's records once it is served. When that leaves the bucket in debt, the answer
//! carries the time the debt takes to pay off as `throttle_time_ms` and its connection is not
//! read again until then (clients since KIP-219 also wait that long before their next request).
//! So a client over its quota is slowed to it, and nothing is refused.
//!
//! A rate is the node's, as a Kafka broker's is, while each shard keeps buckets of its own for
//! the connections it serves (no bucket is touched by two shards). So that the clients sharing
//! a rate from connections on several shards get it once between them, each shard tells the
//! others, [`SHARE_INTERVAL`] after its first charge since it last told them, what it charged (a
//! message over the mesh, only when the node has more than one shard and a quota was charged;
//! a shard charging nothing sleeps), and they take it from their own buckets too.
//! Clients spread over shards may get up to one interval's worth of bytes more than the rate
//! before the others' charges arrive.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::sync::Semaphore;
use spindle_engine::{Shard, ShardId};

/// One `[[kafka.quotas]]` entry, or an entity altered at run time (see `quota_changes`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// How often a shard tells the other shards what it charged.
pub(crate) const SHARE_INTERVAL: Duration = Duration::from_millis(100);

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
        self.take(bytes, now);
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate).min(THROTTLE_MAX)
        }
    }

    /// Takes `bytes`, possibly into debt.
    fn take(&mut self, bytes: u64, now: Instant) {
        self.refill(now);
        self.tokens -= bytes as f64;
    }

    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.rate
    }
}

/// What a bucket limits: the kind of traffic, and the user and client id the matching entry
/// shares it between (`None` for a part the entry leaves open).
type BucketKey = (QuotaKind, Option<String>, Option<String>);

/// Bytes charged to one bucket on one shard, for the other shards to take too.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Charge {
    key: BucketKey,
    rate: u64,
    bytes: u64,
}

/// One shard's buckets.
pub(crate) struct ShardQuotas {
    buckets: RefCell<HashMap<BucketKey, Bucket>>,
    /// What was charged here since the other shards were last told, by bucket: (rate, bytes);
    /// `None` while nothing is shared (one shard, or no quotas).
    unshared: RefCell<Option<HashMap<BucketKey, (u64, u64)>>>,
    /// A permit for each first charge since the other shards were last told: what
    /// [`share_charges`] waits for.
    first_charge: Semaphore,
    /// The quotas in force, and the number of the change that set them (shard 0 numbers its
    /// changes, so that a shard never goes back to older quotas).
    in_force: RefCell<(u64, Rc<[ClientQuota]>)>,
    /// The entities altered at run time, as the data directory keeps them: shard 0 changes
    /// them (see `quota_changes`).
    pub(crate) altered: RefCell<Vec<ClientQuota>>,
    /// Shard 0's count of the changes it made, which numbers the quotas it puts in force.
    pub(crate) changes: Cell<u64>,
    /// One permit: shard 0 makes one change at a time, as its file is written off the shard.
    pub(crate) changing: Semaphore,
}

impl Default for ShardQuotas {
    fn default() -> Self {
        Self {
            buckets: RefCell::default(),
            unshared: RefCell::default(),
            first_charge: Semaphore::new(0),
            in_force: RefCell::new((0, Rc::from(Vec::new()))),
            altered: RefCell::default(),
            changes: Cell::new(0),
            changing: Semaphore::new(1),
        }
    }
}

thread_local! {
    /// The buckets of the shard this thread runs: the connections' and the other shards'
    /// charges meet here.
    static SHARD_QUOTAS: Rc<ShardQuotas> = Rc::new(ShardQuotas::default());
}

/// This shard's buckets.
pub(crate) fn shard_quotas() -> Rc<ShardQuotas> {
    SHARD_QUOTAS.with(Rc::clone)
}

/// Tells the other shards, [`SHARE_INTERVAL`] after each first charge since they were last
/// told and until the engine stops, what this shard charged; a node of one shard has no one to
/// tell.
pub(crate) async fn share_charges(shard: Shard) {
    let count = shard.shard_count();
    if count < 2 {
        return;
    }
    let quotas = shard_quotas();
    quotas.unshared.replace(Some(HashMap::new()));
    loop {
        let stopping = future::or(
            async {
                // Nothing charged, nothing to tell: sleep until something is.
                if quotas.first_charge.acquire(1).await.is_err() {
                    return true;
                }
                glommio::timer::sleep(SHARE_INTERVAL).await;
                false
            },
            async {
                shard.stopping().await;
                true
            },
        )
        .await;
        if stopping {
            return;
        }
        let charges: Arc<[Charge]> = quotas.take_unshared().into();
        if charges.is_empty() {
            continue;
        }
        for other in (0..count)
            .filter_map(|i| u32::try_from(i).ok())
            .map(ShardId)
        {
            if other == shard.id() {
                continue;
            }
            let charges = Arc::clone(&charges);
            let told = shard
                .run_on(other, move |_| async move {
                    shard_quotas().absorb(&charges, Instant::now());
                })
                .await;
            if told.is_err() {
                return; // the engine is stopping
            }
        }
    }
}

impl ShardQuotas {
    /// The quotas in force.
    pub(crate) fn in_force(&self) -> Rc<[ClientQuota]> {
        Rc::clone(&self.in_force.borrow().1)
    }

    /// Puts `quotas` in force, unless quotas of a later change (a higher `change`) already are.
    pub(crate) fn put_in_force(&self, change: u64, quotas: Vec<ClientQuota>) {
        let mut in_force = self.in_force.borrow_mut();
        if change >= in_force.0 {
            *in_force = (change, Rc::from(quotas));
        }
    }

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
        if let Some(unshared) = self.unshared.borrow_mut().as_mut() {
            // The key is copied only for a bucket's first charge of the interval.
            match unshared.get_mut(&key) {
                Some((_, charged)) => *charged += bytes,
                None => {
                    if unshared.is_empty() {
                        self.first_charge.signal(1);
                    }
                    unshared.insert(key.clone(), (rate, bytes));
                }
            }
        }
        self.bucket(key, rate, now, |bucket| bucket.charge(bytes, now))
    }

    /// Takes what other shards charged from the same buckets here.
    pub(crate) fn absorb(&self, charges: &[Charge], now: Instant) {
        for c in charges {
            self.bucket(c.key.clone(), c.rate, now, |bucket| {
                bucket.take(c.bytes, now)
            });
        }
    }

    /// What was charged here since the last call, for the other shards.
    fn take_unshared(&self) -> Vec<Charge> {
        self.unshared
            .borrow_mut()
            .as_mut()
            .map(|unshared| {
                unshared
                    .drain()
                    .map(|(key, (rate, bytes))| Charge { key, rate, bytes })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Runs `f` on the bucket of `key` (a full new one at `rate` if there is none), sweeping
    /// full buckets out first when there are many.
    fn bucket<T>(
        &self,
        key: BucketKey,
        rate: u64,
        now: Instant,
        f: impl FnOnce(&mut Bucket) -> T,
    ) -> T {
        let mut buckets = self.buckets.borrow_mut();
        if buckets.len() >= BUCKETS_SWEEP_AT && !buckets.contains_key(&key) {
            buckets.retain(|_, bucket| !bucket.is_full(now));
        }
        f(buckets.entry(key).or_insert_with(|| Bucket::new(rate, now)))
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
pub(crate) mod tests {
    use super::*;

    /// An entry setting at most a produce rate.
    pub(crate) fn quota(
        user: Option<&str>,
        client: Option<&str>,
        produce: Option<u64>,
    ) -> ClientQuota {
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
    fn charges_made_on_another_shard_are_taken_from_this_shards_bucket_too() {
        let quotas = [quota(None, Some("c"), Some(1000))];
        let now = Instant::now();
        let (here, there) = (ShardQuotas::default(), ShardQuotas::default());
        there.unshared.replace(Some(HashMap::new()));
        let charge = |shard: &ShardQuotas, bytes| {
            shard.charge(&quotas, QuotaKind::Produce, ("u", "c"), bytes, now)
        };
        assert_eq!(charge(&there, 600), Duration::ZERO);
        assert_eq!(charge(&there, 300), Duration::ZERO);
        let charges = there.take_unshared();
        assert_eq!(charges.len(), 1, "one bucket, its charges summed");
        assert_eq!(charges[0].bytes, 900);
        assert!(there.take_unshared().is_empty(), "told once");
        here.absorb(&charges, now);
        // 900 of the second's 1000 are gone here too: 400 more is 300 in debt.
        assert_eq!(charge(&here, 400), Duration::from_millis(300));
        assert!(
            here.take_unshared().is_empty(),
            "a shard that shares nothing keeps no record"
        );
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
