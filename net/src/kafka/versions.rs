//! The API versions this server serves: the one table that dispatch checks requests against and
//! ApiVersions advertises, so the two can never disagree.
//!
//! Ranges stop where Spindle stops implementing the semantics, not where the codec stops:
//! Produce and OffsetCommit/OffsetFetch end at the last versions that name topics (Produce v13
//! and OffsetCommit v10 name them by topic id only); Fetch goes on to v16, naming topics by id
//! from v13 (v17 and later add fields for replicas only).
//!
//! Produce is advertised from v0 although v0–v2 are refused (the connection is closed, as the
//! codec cannot read them): librdkafka enables compression only when the advertised range
//! reaches back to the old message formats (KAFKA-18659), and Kafka 4 does the same.
//!
//! SaslHandshake is likewise advertised from v0 but served only at v1 (the tokens then travel
//! in SaslAuthenticate requests): librdkafka before 2.x offers SASL only to a broker whose
//! range reaches v0, and then sends v1 when the range goes up to it.
//!
//! The codec's `ApiKey::valid_versions` is not always what its message types accept
//! (InitProducerId claims v6, its request decodes only to v5), so the integration test
//! `every_served_version_answers_and_decodes` sends every version advertised here.

use kafka_protocol::messages::ApiKey;

/// One API's served versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Served {
    /// The API.
    pub key: ApiKey,
    /// Lowest version advertised in ApiVersions.
    pub advertised_min: i16,
    /// Lowest version actually accepted.
    pub min: i16,
    /// Highest version accepted and advertised.
    pub max: i16,
}

const fn served(key: ApiKey, min: i16, max: i16) -> Served {
    Served {
        key,
        advertised_min: min,
        min,
        max,
    }
}

/// Every API served, in API key order.
pub(crate) const SERVED: &[Served] = &[
    Served {
        key: ApiKey::Produce,
        advertised_min: 0,
        min: 3,
        max: 12,
    },
    served(ApiKey::Fetch, 4, 16),
    served(ApiKey::ListOffsets, 1, 10),
    served(ApiKey::Metadata, 0, 13),
    served(ApiKey::OffsetCommit, 2, 9),
    served(ApiKey::OffsetFetch, 1, 9),
    served(ApiKey::FindCoordinator, 0, 4),
    served(ApiKey::JoinGroup, 0, 9),
    served(ApiKey::Heartbeat, 0, 4),
    served(ApiKey::LeaveGroup, 0, 5),
    served(ApiKey::SyncGroup, 0, 5),
    served(ApiKey::DescribeGroups, 0, 6),
    served(ApiKey::ListGroups, 0, 5),
    Served {
        key: ApiKey::SaslHandshake,
        advertised_min: 0,
        min: 1,
        max: 1,
    },
    served(ApiKey::ApiVersions, 0, 4),
    served(ApiKey::CreateTopics, 2, 7),
    served(ApiKey::DeleteTopics, 1, 6),
    served(ApiKey::DeleteRecords, 0, 2),
    served(ApiKey::InitProducerId, 0, 5),
    served(ApiKey::OffsetForLeaderEpoch, 2, 4),
    served(ApiKey::AddPartitionsToTxn, 0, 3),
    served(ApiKey::AddOffsetsToTxn, 0, 3),
    served(ApiKey::EndTxn, 0, 3),
    served(ApiKey::WriteTxnMarkers, 1, 1),
    served(ApiKey::TxnOffsetCommit, 0, 3),
    served(ApiKey::DescribeAcls, 1, 3),
    served(ApiKey::CreateAcls, 1, 3),
    served(ApiKey::DeleteAcls, 1, 3),
    served(ApiKey::DescribeConfigs, 1, 4),
    served(ApiKey::AlterConfigs, 0, 2),
    served(ApiKey::DescribeLogDirs, 1, 4),
    served(ApiKey::SaslAuthenticate, 0, 2),
    served(ApiKey::CreatePartitions, 0, 3),
    served(ApiKey::DeleteGroups, 0, 2),
    served(ApiKey::ElectLeaders, 0, 2),
    served(ApiKey::IncrementalAlterConfigs, 0, 1),
    served(ApiKey::AlterPartitionReassignments, 0, 1),
    served(ApiKey::ListPartitionReassignments, 0, 0),
    served(ApiKey::OffsetDelete, 0, 0),
    served(ApiKey::DescribeClientQuotas, 0, 1),
    served(ApiKey::AlterClientQuotas, 0, 1),
    served(ApiKey::DescribeUserScramCredentials, 0, 0),
    served(ApiKey::AlterUserScramCredentials, 0, 0),
    served(ApiKey::DescribeCluster, 0, 2),
    served(ApiKey::DescribeProducers, 0, 0),
    served(ApiKey::DescribeTransactions, 0, 0),
    served(ApiKey::ListTransactions, 0, 2),
    served(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    served(ApiKey::ConsumerGroupDescribe, 0, 1),
    served(ApiKey::ListConfigResources, 0, 1),
    served(ApiKey::DescribeTopicPartitions, 0, 0),
];

/// The served range of `key`, or `None` when the API is not served at all.
pub(crate) fn served_range(key: ApiKey) -> Option<Served> {
    SERVED.iter().copied().find(|s| s.key == key)
}

/// Whether `version` of `key` is accepted.
pub(crate) fn accepts(key: ApiKey, version: i16) -> bool {
    served_range(key).is_some_and(|s| (s.min..=s.max).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_versions_are_within_what_the_codec_supports() {
        for s in SERVED {
            let codec = s.key.valid_versions();
            assert!(s.min >= codec.min && s.max <= codec.max, "{:?}", s.key);
            assert!(s.advertised_min <= s.min && s.min <= s.max, "{:?}", s.key);
        }
    }

    #[test]
    fn table_is_in_key_order_without_duplicates() {
        for pair in SERVED.windows(2) {
            assert!((pair[0].key as i16) < (pair[1].key as i16));
        }
    }

    #[test]
    fn old_produce_is_advertised_but_refused() {
        assert!(!accepts(ApiKey::Produce, 2));
        assert!(accepts(ApiKey::Produce, 3));
        assert_eq!(
            served_range(ApiKey::Produce).map(|s| s.advertised_min),
            Some(0)
        );
    }
}
