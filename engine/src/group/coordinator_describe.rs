//! What the coordinator tells of its groups: ListGroups, DescribeGroups, ConsumerGroupDescribe
//! and OffsetFetch.

use super::{check_name, GroupCoordinator, GroupDescription, GroupListing, GroupType};
use crate::group::consumer_group::{ConsumerGroup, ConsumerGroupDescription, ASSIGNORS};
use crate::group::consumer_protocol::PROTOCOL_TYPE;
use crate::group::offsets::CommittedOffset;
use crate::group::state::GroupState;
use crate::group::GroupError;
use crate::TopicPartition;

impl GroupCoordinator {
    /// Every group this shard coordinates: those with members and those with only offsets.
    pub fn list_groups(&self) -> Vec<GroupListing> {
        let groups = self.groups.borrow();
        let consumer_groups = self.consumer_groups.borrow();
        let mut listings: Vec<GroupListing> = consumer_groups
            .iter()
            .map(|(id, g)| GroupListing {
                group_id: id.clone(),
                group_type: GroupType::Consumer,
                protocol_type: PROTOCOL_TYPE.to_owned(),
                state: g.state(),
            })
            .collect();
        let classic = groups
            .iter()
            .filter(|(id, _)| !consumer_groups.contains_key(*id));
        listings.extend(classic.map(|(id, g)| GroupListing {
            group_id: id.clone(),
            group_type: GroupType::Classic,
            protocol_type: g.protocol_type().to_owned(),
            state: g.state(),
        }));
        let offsets = self.offsets.borrow();
        let offsets_only = offsets
            .group_ids()
            .filter(|id| !groups.contains_key(*id) && !consumer_groups.contains_key(*id));
        for id in offsets_only {
            listings.push(GroupListing {
                group_id: id.to_owned(),
                group_type: GroupType::Classic,
                protocol_type: String::new(),
                state: GroupState::Empty,
            });
        }
        listings.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        listings
    }

    /// One group's state, members and committed offsets; [`GroupState::Dead`] when the group
    /// does not exist.
    pub fn describe_group(&self, group_id: &str) -> GroupDescription {
        let groups = self.groups.borrow();
        let offsets: Vec<(TopicPartition, CommittedOffset)> = self
            .offsets
            .borrow()
            .group(group_id)
            .map(|o| {
                o.iter()
                    .map(|(tp, s)| (tp.clone(), s.committed.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut description = GroupDescription {
            group_id: group_id.to_owned(),
            state: GroupState::Dead,
            protocol_type: String::new(),
            protocol: String::new(),
            generation: 0,
            members: Vec::new(),
            offsets,
        };
        if let Some(group) = self.consumer_groups.borrow().get(group_id) {
            description.state = group.state();
            description.protocol_type = PROTOCOL_TYPE.to_owned();
            description.protocol = ASSIGNORS[0].to_owned();
            description.generation = group.epoch();
            description.members = group.describe_members();
        } else if let Some(group) = groups.get(group_id) {
            description.state = group.state();
            description.protocol_type = group.protocol_type().to_owned();
            description.protocol = group.described_protocol().to_owned();
            description.generation = group.generation();
            description.members = group.describe_members();
        } else if !description.offsets.is_empty() {
            description.state = GroupState::Empty;
        }
        description
    }

    /// A group of the consumer protocol with members, for ConsumerGroupDescribe.
    ///
    /// # Errors
    /// [`GroupError::NotConsumerGroup`] for any other group id (a classic group, a group that
    /// only holds committed offsets, one that does not exist), which Kafka answers
    /// GROUP_ID_NOT_FOUND so that admin clients describe it with DescribeGroups instead.
    pub fn describe_consumer_group(
        &self,
        group_id: &str,
    ) -> Result<ConsumerGroupDescription, GroupError> {
        check_name(group_id)?;
        self.consumer_groups
            .borrow()
            .get(group_id)
            .map(ConsumerGroup::describe)
            .ok_or_else(|| GroupError::NotConsumerGroup(group_id.to_owned()))
    }

    /// The offsets committed by `group_id`: for the partitions asked, or all of them when
    /// `partitions` is `None`. A partition without a commit is answered with `None`.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Vec<(TopicPartition, Option<CommittedOffset>)> {
        let offsets = self.offsets.borrow();
        match partitions {
            Some(tps) => tps
                .iter()
                .map(|tp| (tp.clone(), offsets.get(group_id, tp).cloned()))
                .collect(),
            None => offsets
                .group(group_id)
                .map(|o| {
                    o.iter()
                        .map(|(tp, s)| (tp.clone(), Some(s.committed.clone())))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}
