//! Committed offsets: the in-memory map of one coordinator shard and its replay from the log.
//!
//! The map is a cache of the shard's partition of `__consumer_offsets`: a commit is appended to
//! the log first and enters the map only once the append returned, so the map never holds what
//! a restart would lose. At start [`OffsetStore::apply`] replays every record in log order.
//!
//! Each entry remembers the log offset of the record it came from, and a commit replaces an
//! entry only if its record lies later in the log. Two commits of the same partition racing on
//! one shard may finish their appends in either order; the map still ends as replay would
//! rebuild it (the later record wins), so what a consumer reads never changes across a restart.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use super::record::{decode_value, DecodeError, OffsetKey};
use crate::TopicPartition;

/// One committed offset of a group for a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The offset committed: by Kafka convention the next record the group will read.
    pub offset: i64,
    /// Leader epoch of the committed record, -1 when unknown.
    pub leader_epoch: i32,
    /// Opaque metadata the client stored with the commit.
    pub metadata: Option<String>,
    /// When the commit was stored, ms since the Unix epoch.
    pub commit_timestamp_ms: i64,
}

/// A committed offset and the log offset of the record that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) log_offset: u64,
    pub(crate) committed: CommittedOffset,
}

/// Every committed offset of the groups this shard coordinates.
#[derive(Debug, Default)]
pub(crate) struct OffsetStore {
    groups: HashMap<String, BTreeMap<TopicPartition, Stored>>,
}

impl OffsetStore {
    /// Stores a commit (after its record was appended at `log_offset`), unless the entry
    /// already comes from a later record.
    pub(crate) fn insert(
        &mut self,
        group: &str,
        tp: TopicPartition,
        committed: CommittedOffset,
        log_offset: u64,
    ) {
        let offsets = self.groups.entry(group.to_owned()).or_default();
        match offsets.get_mut(&tp) {
            Some(stored) if stored.log_offset > log_offset => {}
            Some(stored) => {
                *stored = Stored {
                    log_offset,
                    committed,
                }
            }
            None => {
                offsets.insert(
                    tp,
                    Stored {
                        log_offset,
                        committed,
                    },
                );
            }
        }
    }

    /// Forgets a group's offsets (after their tombstones were appended).
    pub(crate) fn remove_group(&mut self, group: &str) {
        self.groups.remove(group);
    }

    /// One group's offsets, in topic-partition order.
    pub(crate) fn group(&self, group: &str) -> Option<&BTreeMap<TopicPartition, Stored>> {
        self.groups.get(group)
    }

    pub(crate) fn get(&self, group: &str, tp: &TopicPartition) -> Option<&CommittedOffset> {
        self.groups.get(group)?.get(tp).map(|s| &s.committed)
    }

    /// Every group that has at least one committed offset.
    pub(crate) fn group_ids(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// Replays the record at `log_offset` of the offsets log: a value sets the key's offset, a
    /// null value (a tombstone) deletes it.
    ///
    /// # Errors
    /// The record's value cannot be decoded; the store is unchanged.
    pub(crate) fn apply(
        &mut self,
        log_offset: u64,
        key: OffsetKey,
        value: Option<&Bytes>,
    ) -> Result<(), DecodeError> {
        match value {
            Some(value) => {
                let offset = decode_value(value)?;
                self.insert(&key.group, key.tp, offset, log_offset);
            }
            None => self.remove(&key.group, &key.tp),
        }
        Ok(())
    }

    /// Forgets one committed offset (its tombstone is in the log).
    pub(crate) fn remove(&mut self, group: &str, tp: &TopicPartition) {
        if let Some(offsets) = self.groups.get_mut(group) {
            offsets.remove(tp);
            if offsets.is_empty() {
                self.groups.remove(group);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::record::encode_value;

    fn key(group: &str, topic: &str, partition: u32) -> OffsetKey {
        OffsetKey {
            group: group.into(),
            tp: TopicPartition::new(topic, partition),
        }
    }

    fn value(offset: i64) -> Option<Bytes> {
        Some(encode_value(&CommittedOffset {
            offset,
            leader_epoch: 3,
            metadata: Some(format!("m{offset}")),
            commit_timestamp_ms: 1_000 + offset,
        }))
    }

    #[test]
    fn replay_keeps_the_last_commit_and_honours_tombstones() {
        let log: Vec<(OffsetKey, Option<Bytes>)> = vec![
            (key("g", "t", 0), value(5)),
            (key("g", "t", 1), value(7)),
            (key("h", "t", 0), value(1)),
            (key("g", "t", 0), value(9)),
            (key("g", "t", 1), None),
            (key("h", "t", 0), None),
            (key("h", "t", 0), value(2)),
            (key("gone", "t", 0), value(4)),
            (key("gone", "t", 0), None),
        ];
        let mut store = OffsetStore::default();
        for (i, (k, v)) in log.iter().enumerate() {
            store.apply(i as u64, k.clone(), v.as_ref()).unwrap();
        }
        let tp0 = TopicPartition::new("t", 0);
        let g0 = store.get("g", &tp0).unwrap();
        assert_eq!((g0.offset, g0.metadata.as_deref()), (9, Some("m9")));
        assert_eq!(store.get("g", &TopicPartition::new("t", 1)), None);
        assert_eq!(store.get("h", &tp0).map(|c| c.offset), Some(2));
        let mut groups: Vec<&str> = store.group_ids().collect();
        groups.sort_unstable();
        assert_eq!(groups, vec!["g", "h"]);
    }

    #[test]
    fn undecodable_record_leaves_the_store_unchanged() {
        let mut store = OffsetStore::default();
        store.apply(0, key("g", "t", 0), value(5).as_ref()).unwrap();
        let bad = Bytes::from_static(&[0, 1, 0]);
        assert_eq!(
            store.apply(1, key("g", "t", 0), Some(&bad)),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            store
                .get("g", &TopicPartition::new("t", 0))
                .map(|c| c.offset),
            Some(5)
        );
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;

    #[test]
    fn a_commit_from_an_earlier_record_never_replaces_a_later_one() {
        let commit = |offset| CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: None,
            commit_timestamp_ms: 0,
        };
        let tp = TopicPartition::new("t", 0);
        let mut store = OffsetStore::default();
        // The append at log offset 8 finished before the one at log offset 7.
        store.insert("g", tp.clone(), commit(20), 8);
        store.insert("g", tp.clone(), commit(10), 7);
        assert_eq!(store.get("g", &tp).map(|c| c.offset), Some(20));
        store.insert("g", tp.clone(), commit(30), 9);
        assert_eq!(store.get("g", &tp).map(|c| c.offset), Some(30));
    }
}
