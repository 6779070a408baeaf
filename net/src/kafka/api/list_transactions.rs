//! ListTransactions: every transactional id this node coordinates, gathered from every shard,
//! filtered by state, producer id, (v1+) how long the transaction has run and (v2+, KIP-1152) a
//! regular expression the whole id matches, as Kafka filters them. A state filter naming no
//! state Kafka knows is returned in `unknown_state_filters`; a pattern that does not compile is
//! answered INVALID_REGULAR_EXPRESSION.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::{txn, NamePattern};
use spindle_log::{Clock, SystemClock};

use crate::kafka::context::RequestContext;

/// Every state name Kafka's ListTransactions filters by (Spindle's coordinator reaches the
/// first six).
const KNOWN_STATES: [&str; 8] = [
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "Dead",
    "PrepareEpochFence",
];

/// Answers one ListTransactions request.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let pattern = match req.transactional_id_pattern.as_deref() {
        None | Some("") => None,
        Some(source) => match NamePattern::new(source) {
            Ok(pattern) => Some(pattern),
            Err(why) => {
                tracing::debug!(peer = %ctx.peer, %why, "ListTransactions pattern refused");
                return ListTransactionsResponse::default()
                    .with_error_code(ResponseError::InvalidRegularExpression.code());
            }
        },
    };
    let Ok(all) = txn::list(&ctx.shard).await else {
        return ListTransactionsResponse::default()
            .with_error_code(ResponseError::CoordinatorNotAvailable.code());
    };
    let (known, unknown): (Vec<&StrBytes>, Vec<&StrBytes>) = req
        .state_filters
        .iter()
        .partition(|s| KNOWN_STATES.contains(&s.as_str()));
    let now = SystemClock.now_ms();
    let listed = all
        .into_iter()
        .filter(|t| req.state_filters.is_empty() || known.iter().any(|s| s.as_str() == t.state))
        .filter(|t| {
            req.producer_id_filters.is_empty()
                || req.producer_id_filters.contains(&ProducerId(t.producer_id))
        })
        // Kafka's rule: with a duration filter, only transactions running longer than it (an
        // id with no transaction started counts from -1, so it always passes).
        .filter(|t| {
            req.duration_filter < 0 || now.saturating_sub(t.started_ms) > req.duration_filter
        })
        .filter(|t| {
            pattern
                .as_ref()
                .is_none_or(|p| p.matches(&t.transactional_id))
        })
        // Ids the principal may not use are left out, as Kafka lists only those it may describe.
        .filter(|t| ctx.authorize_transactional_id(&t.transactional_id).is_ok())
        .map(|t| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(t.transactional_id)))
                .with_producer_id(ProducerId(t.producer_id))
                .with_transaction_state(StrBytes::from_static_str(t.state))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown.into_iter().cloned().collect())
        .with_transaction_states(listed)
}
