//! WriteTxnMarkers: writes a transaction marker into partitions on an operator's behalf. In
//! Kafka the transaction coordinator sends it to partition leaders; Spindle's coordinator writes
//! its markers inside the node, so the request comes only from an operator aborting a hanging
//! transaction (`kafka-transactions.sh abort`, an admin client's `abort_transaction`) with the
//! producer id and epoch DescribeProducers showed. It needs `admin` on every topic (Kafka's
//! CLUSTER_ACTION); a marker at an epoch older than the partition has seen is refused
//! INVALID_PRODUCER_EPOCH.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use spindle_engine::access::Operation;
use spindle_engine::TopicPartition;
use spindle_log::batch::TxnMarker;

use crate::kafka::context::RequestContext;
use crate::kafka::error_code;

/// Answers one WriteTxnMarkers request, each partition with the outcome of its marker.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let allowed = ctx.principal.allows_everywhere(Operation::Admin);
    let mut results = Vec::with_capacity(req.markers.len());
    for marker in req.markers {
        let kind = if marker.transaction_result {
            TxnMarker::Commit
        } else {
            TxnMarker::Abort
        };
        let mut topics = Vec::with_capacity(marker.topics.len());
        for topic in marker.topics {
            let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
            for index in topic.partition_indexes {
                let code = if !allowed {
                    ResponseError::ClusterAuthorizationFailed.code()
                } else if let Ok(partition) = u32::try_from(index) {
                    let tp = TopicPartition::new(topic.name.0.as_str(), partition);
                    let written = ctx
                        .shard
                        .write_marker(&tp, marker.producer_id.0, marker.producer_epoch, kind)
                        .await;
                    match written {
                        Ok(offset) => {
                            tracing::info!(peer = %ctx.peer, principal = ctx.principal.name(), partition = %tp, producer_id = marker.producer_id.0, epoch = marker.producer_epoch, ?kind, %offset, "transaction marker written on request");
                            0
                        }
                        Err(e) => error_code::code_of(&e),
                    }
                } else {
                    ResponseError::UnknownTopicOrPartition.code()
                };
                partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(code),
                );
            }
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(partitions),
            );
        }
        results.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(results)
}
