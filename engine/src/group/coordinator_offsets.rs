//! The coordinator's side of committed offsets: who may commit to a group now, where a group's
//! commits go, and what a deletion of groups or offsets may remove.

use std::time::Instant;

use super::{check_name, Committer, GroupCoordinator, OffsetCommit};
use crate::group::api::offsets_partition;
use crate::group::offsets::CommittedOffset;
use crate::group::state::{Group, Subscribed};
use crate::group::{GroupError, OFFSETS_TOPIC};
use crate::TopicPartition;

impl GroupCoordinator {
    /// Whether `commit`'s committer may commit to its group now (see [`Committer`]); a
    /// member's commit also counts as a sign of life.
    pub(crate) fn check_commit(&self, commit: &OffsetCommit) -> Result<(), GroupError> {
        check_name(&commit.group_id)?;
        if let Some(group) = self.consumer_groups.borrow().get(&commit.group_id) {
            return match &commit.committer {
                Committer::Gateway | Committer::Transaction => Ok(()),
                Committer::Outsider => Err(GroupError::UnknownMemberId),
                Committer::Member {
                    generation,
                    member_id,
                    ..
                } => group.check_commit(member_id, *generation),
            };
        }
        let mut groups = self.groups.borrow_mut();
        let group = groups.get_mut(&commit.group_id);
        let has_members = group.as_ref().is_some_and(|g| g.has_members());
        // Generation -1: from outside the group, or under a member id from a consumer between
        // generations (librdkafka commits so while it hands its partitions back).
        let at_no_generation = match &commit.committer {
            Committer::Outsider => true,
            Committer::Member { generation, .. } => *generation < 0,
            Committer::Gateway | Committer::Transaction => false,
        };
        match (&commit.committer, group) {
            (Committer::Gateway | Committer::Transaction, _) => Ok(()),
            // As in Kafka, accepted while the group has no members.
            _ if at_no_generation && !has_members => Ok(()),
            (Committer::Outsider, _) => Err(GroupError::UnknownMemberId),
            (Committer::Member { .. }, None) => Err(GroupError::IllegalGeneration),
            (
                Committer::Member {
                    generation,
                    member_id,
                    group_instance_id,
                },
                Some(group),
            ) => group.check_commit(
                Instant::now(),
                member_id,
                group_instance_id.as_ref(),
                *generation,
            ),
        }
    }

    /// The partition of the offsets topic that holds `group_id`'s commits.
    pub(crate) fn offsets_tp(&self, group_id: &str) -> TopicPartition {
        let partition = offsets_partition(group_id, self.offsets_partitions);
        TopicPartition::new(OFFSETS_TOPIC, partition)
    }

    /// Stores a commit whose record was appended at `log_offset`.
    pub(crate) fn store_offset(
        &self,
        group_id: &str,
        tp: TopicPartition,
        offset: CommittedOffset,
        log_offset: u64,
    ) {
        self.offsets
            .borrow_mut()
            .insert(group_id, tp, offset, log_offset);
    }

    /// Whether a group may be deleted now, and the partitions whose offsets it holds.
    pub(crate) fn deletable(&self, group_id: &str) -> Result<Vec<TopicPartition>, GroupError> {
        if self.runs_consumer_protocol(group_id) {
            return Err(GroupError::NonEmptyGroup);
        }
        let group_exists = match self.groups.borrow().get(group_id) {
            Some(group) if !group.is_vacant() => return Err(GroupError::NonEmptyGroup),
            Some(_) => true,
            None => false,
        };
        let partitions: Vec<TopicPartition> = self
            .offsets
            .borrow()
            .group(group_id)
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        if !group_exists && partitions.is_empty() {
            return Err(GroupError::GroupIdNotFound);
        }
        Ok(partitions)
    }

    /// What OffsetDelete may remove from `group_id` (see [`GroupCoordinator::delete_offsets`]):
    /// `None` for any partition (no members), else the subscriptions that keep theirs.
    pub(crate) fn offset_deletion_scope(
        &self,
        group_id: &str,
    ) -> Result<Option<Subscribed>, GroupError> {
        if let Some(group) = self.consumer_groups.borrow().get(group_id) {
            return Ok(Some(Subscribed::Topics(group.subscribed_topics())));
        }
        match self.groups.borrow().get(group_id) {
            Some(group) if !group.is_vacant() => group
                .subscriptions()
                .map(Some)
                .ok_or(GroupError::NonEmptyGroup),
            Some(_) => Ok(None),
            None if self.offsets.borrow().group(group_id).is_some() => Ok(None),
            None => Err(GroupError::GroupIdNotFound),
        }
    }

    /// Whether `group_id` has an offset committed for `tp`.
    pub(crate) fn has_committed(&self, group_id: &str, tp: &TopicPartition) -> bool {
        self.offsets.borrow().get(group_id, tp).is_some()
    }

    /// Forgets one committed offset whose tombstone is written.
    pub(crate) fn forget_offset(&self, group_id: &str, tp: &TopicPartition) {
        self.offsets.borrow_mut().remove(group_id, tp);
    }

    /// Forgets a deleted group: its offsets (whose tombstones are written) and, if nobody joined
    /// meanwhile, its membership state.
    pub(crate) fn forget_group(&self, group_id: &str) {
        self.offsets.borrow_mut().remove_group(group_id);
        let mut groups = self.groups.borrow_mut();
        if groups.get(group_id).is_some_and(Group::is_vacant) {
            groups.remove(group_id);
            self.membership.borrow_mut().note_changed(group_id);
        }
    }
}
