//! Per-principal produce quotas: token buckets of records and bytes per second.
//!
//! Each limited principal has one bucket per configured rate, holding at most one second of
//! budget and refilled continuously. A request is admitted when the bucket holds its cost, or
//! when the bucket is full (so a request larger than one second of budget is still possible,
//! once, and then the principal waits it off); an admitted request takes its whole cost, which
//! may leave the bucket in debt. A refused request takes nothing and is answered
//! RESOURCE_EXHAUSTED with the time after which it would be admitted.
//!
//! [`TokenBucket`] is pure: it takes the time as an argument, so its tests need no sleeping.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tonic::Status;

use crate::config::{AuthConfig, QuotaConfig};

/// A refill rate per second with a burst of one second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_sec: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    ///
    /// # Panics
    /// When `rate_per_sec` is zero (a zero quota is refused at configuration).
    pub fn new(rate_per_sec: u64, now: Instant) -> Self {
        assert!(rate_per_sec > 0, "a token bucket needs a positive rate");
        Self {
            rate_per_sec: rate_per_sec as f64,
            tokens: rate_per_sec as f64,
            refilled_at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.rate_per_sec);
        self.refilled_at = now;
    }

    /// Whether `cost` would be admitted now; `Err` carries how long until it would be.
    pub fn check(&mut self, cost: u64, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        let needed = (cost as f64).min(self.rate_per_sec);
        if self.tokens >= needed {
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (needed - self.tokens) / self.rate_per_sec,
            ))
        }
    }

    /// Takes `cost`, possibly into debt. Call after a successful [`TokenBucket::check`].
    pub fn take(&mut self, cost: u64) {
        self.tokens -= cost as f64;
    }
}

#[derive(Debug)]
struct PrincipalBuckets {
    records: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
}

/// The quotas of every principal.
#[derive(Debug)]
pub struct Quotas {
    default: QuotaConfig,
    overrides: HashMap<String, QuotaConfig>,
    buckets: Mutex<HashMap<String, PrincipalBuckets>>,
}

impl Quotas {
    /// The default quota and the per-principal overrides from the auth table.
    ///
    /// # Errors
    /// A zero rate, which would refuse everything: say so at start rather than at the first
    /// produce.
    pub fn new(
        default: Option<QuotaConfig>,
        auth: Option<&AuthConfig>,
    ) -> Result<Self, crate::GatewayError> {
        let default = default.unwrap_or_default();
        let mut overrides = HashMap::new();
        for token in auth.map(|a| a.tokens.as_slice()).unwrap_or_default() {
            if let Some(quota) = token.quota {
                overrides.insert(token.principal.clone(), quota);
            }
        }
        for quota in overrides.values().chain([&default]) {
            if quota.records_per_sec == Some(0) || quota.bytes_per_sec == Some(0) {
                return Err(crate::GatewayError::Config(
                    "a quota rate must be positive (leave it out for no limit)".to_string(),
                ));
            }
        }
        Ok(Self {
            default,
            overrides,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Admits `records` records of `bytes` bytes for `principal`, or refuses them.
    ///
    /// # Errors
    /// RESOURCE_EXHAUSTED naming the principal, the rate and when to retry.
    pub fn admit(&self, principal: &str, records: u64, bytes: u64) -> Result<(), Status> {
        self.admit_at(principal, records, bytes, Instant::now())
    }

    fn admit_at(
        &self,
        principal: &str,
        records: u64,
        bytes: u64,
        now: Instant,
    ) -> Result<(), Status> {
        let quota = self.overrides.get(principal).unwrap_or(&self.default);
        if quota.records_per_sec.is_none() && quota.bytes_per_sec.is_none() {
            return Ok(());
        }
        let mut all = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let buckets = all
            .entry(principal.to_string())
            .or_insert_with(|| PrincipalBuckets {
                records: quota.records_per_sec.map(|r| TokenBucket::new(r, now)),
                bytes: quota.bytes_per_sec.map(|r| TokenBucket::new(r, now)),
            });
        // Both buckets are checked before either is charged, so a refusal costs nothing.
        for (bucket, cost, unit) in [
            (&mut buckets.records, records, "records"),
            (&mut buckets.bytes, bytes, "bytes"),
        ] {
            if let Some(bucket) = bucket {
                if let Err(wait) = bucket.check(cost, now) {
                    return Err(Status::resource_exhausted(format!(
                        "principal {principal:?} is over its quota of {} {unit}/s; retry in {} ms",
                        bucket.rate_per_sec,
                        wait.as_millis().max(1)
                    )));
                }
            }
        }
        if let Some(bucket) = &mut buckets.records {
            bucket.take(records);
        }
        if let Some(bucket) = &mut buckets.bytes {
            bucket.take(bytes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenConfig;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_bucket_admits_its_rate_then_refills() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, t0);
        for _ in 0..10 {
            bucket.check(1, t0).unwrap();
            bucket.take(1);
        }
        let wait = bucket.check(1, t0).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        assert!(bucket.check(1, t0 + SEC / 10).is_ok());
        assert!(bucket.check(10, t0 + SEC).is_ok());
        // Refill never exceeds one second of budget.
        assert!(bucket.check(10, t0 + 100 * SEC).is_ok());
        bucket.take(10);
        assert!(bucket.check(1, t0 + 100 * SEC).is_err());
    }

    #[test]
    fn an_oversized_request_passes_only_when_full_and_leaves_debt() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, t0);
        bucket.check(25, t0).unwrap();
        bucket.take(25);
        // 15 in debt: one record needs 1.6 s.
        assert!(bucket.check(1, t0 + SEC).is_err());
        assert!(bucket.check(1, t0 + SEC * 2).is_ok());
    }

    #[test]
    fn quotas_are_per_principal_with_overrides() {
        let auth = AuthConfig {
            tokens: vec![TokenConfig {
                principal: "slow".to_string(),
                token: "t".to_string(),
                permissions: vec![],
                transactional_ids: None,
                groups: None,
                quota: Some(QuotaConfig {
                    records_per_sec: Some(2),
                    bytes_per_sec: None,
                }),
            }],
        };
        let default = QuotaConfig {
            records_per_sec: Some(100),
            bytes_per_sec: Some(1000),
        };
        let quotas = Quotas::new(Some(default), Some(&auth)).unwrap();
        let t0 = Instant::now();
        quotas.admit_at("slow", 2, 1_000_000, t0).unwrap();
        let refused = quotas.admit_at("slow", 1, 1, t0).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        quotas.admit_at("slow", 1, 1, t0 + SEC).unwrap();
        // Another principal has its own buckets, from the default.
        quotas.admit_at("other", 100, 1000, t0).unwrap();
        let refused = quotas.admit_at("other", 1, 1, t0).unwrap_err();
        assert!(refused.message().contains("other"));
        // A refusal on bytes charges no records.
        quotas.admit_at("third", 1, 1000, t0).unwrap();
        assert!(quotas.admit_at("third", 1, 1, t0).is_err());
        quotas.admit_at("third", 99, 0, t0).unwrap();
    }

    #[test]
    fn no_quota_is_unlimited_and_zero_is_refused() {
        let quotas = Quotas::new(None, None).unwrap();
        quotas.admit("anyone", u64::MAX, u64::MAX).unwrap();
        let zero = QuotaConfig {
            records_per_sec: Some(0),
            bytes_per_sec: None,
        };
        assert!(Quotas::new(Some(zero), None).is_err());
    }
}
