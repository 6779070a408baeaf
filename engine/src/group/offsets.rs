//! Committed offsets: the in-memory map of one coordinator shard and its replay from the log.
//!
//! The map is a cache of the shard's partition of `__consumer_offsets`: a commit is appended to
//! the log first and enters the map only once the append returned, so the map never holds what
//! a restart would lose. At start [`OffsetStore::apply`] replays every record in log order.

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

/// Every committed offset of the groups this shard coordinates.
#[derive(Debug, Default)]
pub(crate) struct OffsetStore {
    groups: HashMap<String, BTreeMap<TopicPartition, CommittedOffset>>,
}

impl OffsetStore {
    /// Stores a commit (after its record was appended).
    pub(crate) fn insert(&mut self, group: &str, tp: TopicPartition, offset: CommittedOffset) {
        self.groups
            .entry(group.to_owned())
            .or_default()
            .insert(tp, offset);
    }

    /// Forgets a group's offsets (after their tombstones were appended).
    pub(crate) fn remove_group(&mut self, group: &str) {
        self.groups.remove(group);
    }

    /// One group's offsets, in topic-partition order.
    pub(crate) fn group(&self, group: &str) -> Option<&BTreeMap<TopicPartition, CommittedOffset>> {
        self.groups.get(group)
    }

    pub(crate) fn get(&self, group: &str, tp: &TopicPartition) -> Option<&CommittedOffset> {
        self.groups.get(group)?.get(tp)
    }

    /// Every group that has at least one committed offset.
    pub(crate) fn group_ids(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// Replays one record of the offsets log: a value sets the key's offset, a null value (a
    /// tombstone) deletes it.
    ///
    /// # Errors
    /// The record's key or value cannot be decoded; the store is unchanged.
    pub(crate) fn apply(&mut self, key: &[u8], value: Option<&Bytes>) -> Result<(), DecodeError> {
        let key = OffsetKey::decode(key)?;
        match value {
            Some(value) => {
                let offset = decode_value(value)?;
                self.insert(&key.group, key.tp, offset);
            }
            None => {
                if let Some(offsets) = self.groups.get_mut(&key.group) {
                    offsets.remove(&key.tp);
                    if offsets.is_empty() {
                        self.groups.remove(&key.group);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::record::encode_value;

    fn key(group: &str, topic: &str, partition: u32) -> Bytes {
        OffsetKey {
            group: group.into(),
            tp: TopicPartition::new(topic, partition),
        }
        .encode()
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
        let log: Vec<(Bytes, Option<Bytes>)> = vec![
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
        for (k, v) in &log {
            store.apply(k, v.as_ref()).unwrap();
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
        store.apply(&key("g", "t", 0), value(5).as_ref()).unwrap();
        let bad = Bytes::from_static(&[0, 1, 0]);
        assert_eq!(
            store.apply(&key("g", "t", 0), Some(&bad)),
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
