//! Expiry of committed offsets: a group that has had no members, and committed nothing, for
//! the offsets retention ([`crate::EngineConfig::offsets_retention`], 7 days by default) loses
//! its committed offsets, as Kafka's `offsets.retention.minutes` has them dropped (KIP-211).
//! Without it every group ever used (each console consumer's made-up group, say) would stay in
//! memory and in the offsets log for good.
//!
//! A group expires when the newest of these is older than the retention: its newest commit,
//! the last time the coordinator saw it with members, and the coordinator's start. The last
//! matters after a restart: a group may come back without members (its membership record lost
//! in a crash, its members expired since) while the consumers of an idle topic committed long
//! ago, and their offsets must not go before they have had a retention's time to rejoin. An
//! expired group is deleted as DeleteGroups deletes one (tombstones in the offsets log, then
//! forgotten), and only if it still has no members by then.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::commit::unix_ms;
use super::coordinator::GroupCoordinator;
use super::limits::EXPIRY_CHECK_INTERVAL;
use super::GroupError;
use crate::Shard;

/// The expiry state of one coordinator.
#[derive(Debug)]
pub(crate) struct Expiry {
    /// The retention; `None` keeps offsets forever.
    retention: Option<Duration>,
    /// The coordinator's start, ms since the Unix epoch.
    started_ms: i64,
    /// When each group with offsets was last seen with members, ms since the Unix epoch.
    active_ms: HashMap<String, i64>,
    /// When the next look is due.
    next_check: Instant,
}

impl Expiry {
    pub(crate) fn new(retention: Option<Duration>, now: Instant) -> Self {
        Self {
            retention,
            started_ms: unix_ms(),
            active_ms: HashMap::new(),
            next_check: now + check_interval(retention),
        }
    }

    /// Whether a look for expired groups is due at `now` (and, if so, schedules the next).
    pub(crate) fn check_due(&mut self, now: Instant) -> bool {
        if self.retention.is_none() || now < self.next_check {
            return false;
        }
        self.next_check = now + check_interval(self.retention);
        true
    }
}

/// How often to look: every [`EXPIRY_CHECK_INTERVAL`], or four times per retention if shorter.
fn check_interval(retention: Option<Duration>) -> Duration {
    retention.map_or(EXPIRY_CHECK_INTERVAL, |r| EXPIRY_CHECK_INTERVAL.min(r / 4))
}

impl GroupCoordinator {
    /// Deletes the committed offsets of the groups that expired (see the module docs).
    pub(super) async fn expire_offsets(&self, shard: &Shard) {
        let expired = self.expired_groups(unix_ms());
        for group in expired {
            match self.delete_group(shard, &group).await {
                Ok(()) => {
                    shard.metrics().offsets_expired_groups.add(1);
                    tracing::info!(
                        group = %group,
                        "committed offsets expired: no members and no commit within the offsets retention"
                    );
                }
                // It rejoined (or was deleted) meanwhile.
                Err(GroupError::NonEmptyGroup | GroupError::GroupIdNotFound) => {}
                Err(e) => {
                    tracing::warn!(group = %group, error = %e, "expired offsets not deleted; tried again at the next look");
                }
            }
        }
    }

    /// The groups whose offsets expire at `now_ms`; notes the groups that have members as
    /// active now, and forgets the activity of groups that have no offsets left.
    pub(super) fn expired_groups(&self, now_ms: i64) -> Vec<String> {
        let mut expiry = self.expiry.borrow_mut();
        let Some(retention) = expiry.retention else {
            return Vec::new();
        };
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let offsets = self.offsets.borrow();
        let mut active_ms = std::mem::take(&mut expiry.active_ms);
        active_ms.retain(|group, _| offsets.group(group).is_some());
        let mut expired = Vec::new();
        for group in offsets.group_ids() {
            if self.has_members(group) {
                active_ms.insert(group.to_owned(), now_ms);
                continue;
            }
            let newest_commit = offsets
                .group(group)
                .and_then(|o| o.values().map(|s| s.committed.commit_timestamp_ms).max())
                .unwrap_or(i64::MIN);
            let last_sign_of_life = newest_commit
                .max(active_ms.get(group).copied().unwrap_or(i64::MIN))
                .max(expiry.started_ms);
            if now_ms.saturating_sub(last_sign_of_life) > retention_ms {
                expired.push(group.to_owned());
            }
        }
        expiry.active_ms = active_ms;
        expired
    }
}
