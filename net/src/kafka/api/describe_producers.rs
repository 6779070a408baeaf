//! DescribeProducers: the producers each partition knows, with their epoch, last sequence and
//! the start of their open transaction (what `kafka-transactions.sh describe-producers` shows,
//! and how an operator finds the producer of a transaction that holds a partition's last stable
//! offset back).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::access::Operation;
use spindle_engine::TopicPartition;

use crate::kafka::context::RequestContext;
use crate::kafka::error_code;

/// Answers one DescribeProducers request; each partition needs `read` on its topic, as Kafka's
/// READ.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let name = topic.name.0.as_str();
        let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
        for index in topic.partition_indexes {
            let answer = PartitionResponse::default().with_partition_index(index);
            let refused = |code: i16| answer.clone().with_error_code(code);
            if let Err(code) = ctx.authorize(Operation::Read, name) {
                partitions.push(refused(code));
                continue;
            }
            let Ok(partition) = u32::try_from(index) else {
                partitions.push(refused(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            let tp = TopicPartition::new(name, partition);
            match ctx.shard.producers(&tp).await {
                Ok(producers) => {
                    let active = producers.iter().map(|p| {
                        ProducerState::default()
                            .with_producer_id(ProducerId(p.producer_id))
                            .with_producer_epoch(i32::from(p.epoch))
                            .with_last_sequence(p.last_sequence)
                            .with_last_timestamp(p.last_timestamp)
                            .with_coordinator_epoch(-1)
                            .with_current_txn_start_offset(
                                p.transaction_start
                                    .map_or(-1, |o| i64::try_from(o.0).unwrap_or(i64::MAX)),
                            )
                    });
                    partitions.push(answer.with_active_producers(active.collect()));
                }
                Err(e) => partitions.push(
                    refused(error_code::code_of(&e))
                        .with_error_message(Some(StrBytes::from_string(e.to_string()))),
                ),
            }
        }
        topics.push(
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DescribeProducersResponse::default().with_topics(topics)
}
