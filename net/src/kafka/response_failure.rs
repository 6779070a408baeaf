//! Whether an answer reports a failure, for the per-API error counts of
//! [`spindle_engine::metrics`].
//!
//! Kafka answers most failures inside a successful response, as error codes per partition,
//! topic or group. An answer counts as failed when any of those codes is not zero. Only the
//! APIs whose failures operators watch are inspected (produce, fetch, offsets, groups, topic
//! administration); for the others only a closed connection counts as an error.

use kafka_protocol::messages::ResponseKind;

/// Whether `response` carries a non-zero error code anywhere it has one.
pub(crate) fn is_failure(response: &ResponseKind) -> bool {
    match response {
        ResponseKind::Produce(r) => r
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .any(|p| p.error_code != 0),
        ResponseKind::Fetch(r) => {
            r.error_code != 0
                || r.responses
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .any(|p| p.error_code != 0)
        }
        ResponseKind::ListOffsets(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|p| p.error_code != 0),
        ResponseKind::OffsetForLeaderEpoch(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|p| p.error_code != 0),
        ResponseKind::OffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|p| p.error_code != 0),
        ResponseKind::OffsetFetch(r) => {
            r.error_code != 0
                || r.groups.iter().any(|g| g.error_code != 0)
                || r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .any(|p| p.error_code != 0)
        }
        ResponseKind::FindCoordinator(r) => {
            r.error_code != 0 || r.coordinators.iter().any(|c| c.error_code != 0)
        }
        ResponseKind::JoinGroup(r) => r.error_code != 0,
        ResponseKind::SyncGroup(r) => r.error_code != 0,
        ResponseKind::Heartbeat(r) => r.error_code != 0,
        ResponseKind::LeaveGroup(r) => {
            r.error_code != 0 || r.members.iter().any(|m| m.error_code != 0)
        }
        ResponseKind::InitProducerId(r) => r.error_code != 0,
        ResponseKind::CreateTopics(r) => r.topics.iter().any(|t| t.error_code != 0),
        ResponseKind::DeleteTopics(r) => r.responses.iter().any(|t| t.error_code != 0),
        ResponseKind::DescribeLogDirs(r) => {
            r.error_code != 0 || r.results.iter().any(|d| d.error_code != 0)
        }
        ResponseKind::OffsetDelete(r) => {
            r.error_code != 0
                || r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .any(|p| p.error_code != 0)
        }
        ResponseKind::DeleteRecords(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|p| p.error_code != 0),
        ResponseKind::SaslHandshake(r) => r.error_code != 0,
        ResponseKind::SaslAuthenticate(r) => r.error_code != 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{HeartbeatResponse, ProduceResponse};

    #[test]
    fn a_partition_error_fails_a_produce() {
        let answer = |code| {
            ResponseKind::Produce(ProduceResponse::default().with_responses(vec![
                TopicProduceResponse::default().with_partition_responses(vec![
                    PartitionProduceResponse::default(),
                    PartitionProduceResponse::default().with_error_code(code),
                ]),
            ]))
        };
        assert!(!is_failure(&answer(0)));
        assert!(is_failure(&answer(3)));
    }

    #[test]
    fn a_top_level_error_fails_a_group_answer() {
        let ok = ResponseKind::Heartbeat(HeartbeatResponse::default());
        let rebalancing = ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(27));
        assert!(!is_failure(&ok));
        assert!(is_failure(&rebalancing));
    }
}
