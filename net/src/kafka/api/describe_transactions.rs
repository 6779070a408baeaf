//! DescribeTransactions: each transactional id's state at its coordinator: producer id and
//! epoch, timeout, when the transaction began and the partitions it wrote to (what
//! `kafka-transactions.sh describe` shows).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::txn;

use crate::kafka::context::RequestContext;

/// Answers one DescribeTransactions request. An id the coordinator does not know is
/// TRANSACTIONAL_ID_NOT_FOUND, one the principal may not use TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
/// partitions of topics the principal may not see are left out.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut states = Vec::with_capacity(req.transactional_ids.len());
    for id in req.transactional_ids {
        let asked = id.0.as_str().to_owned();
        if let Err(code) = ctx.authorize_transactional_id(&asked) {
            states.push(
                TransactionState::default()
                    .with_transactional_id(id)
                    .with_error_code(code),
            );
            continue;
        }
        let found = txn::on_coordinator(&ctx.shard, &asked.clone(), move |_, txns| async move {
            txns.describe(&asked)
        })
        .await;
        let answer = TransactionState::default().with_transactional_id(id);
        let state = match found {
            Ok(Some(t)) => {
                let mut topics: Vec<TopicData> = Vec::new();
                for tp in t.partitions.iter().filter(|tp| ctx.sees(&tp.topic)) {
                    let index = i32::try_from(tp.partition.0).unwrap_or(i32::MAX);
                    match topics.last_mut() {
                        Some(last) if last.topic.0.as_str() == &*tp.topic => {
                            last.partitions.push(index);
                        }
                        _ => topics.push(
                            TopicData::default()
                                .with_topic(TopicName(StrBytes::from_string(tp.topic.to_string())))
                                .with_partitions(vec![index]),
                        ),
                    }
                }
                answer
                    .with_transaction_state(StrBytes::from_static_str(t.state))
                    .with_transaction_timeout_ms(i32::try_from(t.timeout_ms).unwrap_or(i32::MAX))
                    .with_transaction_start_time_ms(t.started_ms)
                    .with_producer_id(ProducerId(t.producer_id))
                    .with_producer_epoch(t.epoch)
                    .with_topics(topics)
            }
            Ok(None) => answer.with_error_code(ResponseError::TransactionalIdNotFound.code()),
            Err(_) => answer.with_error_code(ResponseError::CoordinatorNotAvailable.code()),
        };
        states.push(state);
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
