//! DescribeClientQuotas and AlterClientQuotas: the quotas in force (`[[kafka.quotas]]` and the
//! changes made at run time, see `quota_changes`) as Kafka's quota entities (`kafka-configs.sh
//! --describe|--alter --entity-type users|clients`, admin clients' `describeClientQuotas` and
//! `alterClientQuotas`). An entry naming a user and a client id is the entity
//! `user=U, client-id=C`; one naming a user, `user=U`; one naming a client id, `client-id=C`;
//! one naming neither, the default client id (`client-id` with no name), which it acts as (each
//! client id limited on its own). Kafka's default user, alone or with a client id, has no
//! counterpart here: altering it is refused, as are keys other than `producer_byte_rate` and
//! `consumer_byte_rate`. Both need `admin` on every topic (Kafka's DESCRIBE_CONFIGS and
//! ALTER_CONFIGS on the cluster).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_client_quotas_request::EntryData as AlterEntry;
use kafka_protocol::messages::alter_client_quotas_response::{
    EntityData as AlteredEntity, EntryData as AlteredEntry,
};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;

use spindle_engine::ShardId;

use crate::kafka::context::RequestContext;
use crate::kafka::quota::{ClientQuota, QuotaKind};
use crate::kafka::quota_changes::{self, Change};

const USER: &str = "user";
const CLIENT_ID: &str = "client-id";
/// A component filter's match types.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_ANY: i8 = 2;

/// An entry as a Kafka entity: (entity type, name; `None` for the default).
fn entity(quota: &ClientQuota) -> Vec<(&'static str, Option<&str>)> {
    match (&quota.user, &quota.client_id) {
        (Some(u), Some(c)) => vec![(USER, Some(u)), (CLIENT_ID, Some(c))],
        (Some(u), None) => vec![(USER, Some(u))],
        (None, Some(c)) => vec![(CLIENT_ID, Some(c))],
        (None, None) => vec![(CLIENT_ID, None)],
    }
}

/// Whether `entity` passes every component filter (and, when `strict`, has no other part).
fn matches(entity: &[(&str, Option<&str>)], filters: &[ComponentData], strict: bool) -> bool {
    let each = filters.iter().all(|f| {
        entity
            .iter()
            .find(|(kind, _)| *kind == f.entity_type.as_str())
            .is_some_and(|(_, name)| match f.match_type {
                MATCH_EXACT => *name == f._match.as_deref(),
                MATCH_DEFAULT => name.is_none(),
                MATCH_ANY => name.is_some(),
                _ => false,
            })
    });
    each && (!strict || entity.len() == filters.len())
}

/// Answers one DescribeClientQuotas request.
pub(crate) async fn describe(
    ctx: &RequestContext,
    req: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    if let Err((code, message)) = ctx.authorize_cluster("describe client quotas") {
        return DescribeClientQuotasResponse::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)));
    }
    if let Some(unknown) = req
        .components
        .iter()
        .find(|f| ![USER, CLIENT_ID].contains(&f.entity_type.as_str()))
    {
        return DescribeClientQuotasResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(StrBytes::from_string(format!(
                "no quotas are kept for entity type {:?}: only user and client-id",
                unknown.entity_type.as_str()
            ))));
    }
    let in_force = ctx.conn.quotas.in_force();
    let entries = in_force
        .iter()
        .filter(|q| matches(&entity(q), &req.components, req.strict))
        .map(|q| {
            let entity = entity(q).into_iter().map(|(kind, name)| {
                EntityData::default()
                    .with_entity_type(StrBytes::from_static_str(kind))
                    .with_entity_name(name.map(|n| StrBytes::from_string(n.to_owned())))
            });
            let rates = [
                ("producer_byte_rate", q.producer_byte_rate),
                ("consumer_byte_rate", q.consumer_byte_rate),
            ];
            let values = rates.into_iter().filter_map(|(key, rate)| {
                Some(
                    ValueData::default()
                        .with_key(StrBytes::from_static_str(key))
                        .with_value(rate? as f64),
                )
            });
            EntryData::default()
                .with_entity(entity.collect())
                .with_values(values.collect())
        });
    DescribeClientQuotasResponse::default().with_entries(Some(entries.collect()))
}

/// The largest rate taken: 2^53 bytes per second, the largest a double counts exactly.
const RATE_MAX: f64 = 9_007_199_254_740_992.0;

/// Answers one AlterClientQuotas request: each entry's change, or why it is refused (see the
/// module docs). Valid entries are made together, on shard 0, unless `validate_only`.
pub(crate) async fn alter(
    ctx: &RequestContext,
    req: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let authorized = ctx.authorize_cluster("alter client quotas");
    let mut changes = Vec::with_capacity(req.entries.len());
    let mut outcomes: Vec<Result<(), (i16, String)>> = Vec::with_capacity(req.entries.len());
    for entry in &req.entries {
        let change = match &authorized {
            Err(refusal) => Err(refusal.clone()),
            Ok(()) => change_of(entry).map_err(|why| (ResponseError::InvalidRequest.code(), why)),
        };
        match change {
            Ok(change) => {
                changes.push(change);
                outcomes.push(Ok(()));
            }
            Err(refusal) => outcomes.push(Err(refusal)),
        }
    }
    if !req.validate_only && !changes.is_empty() {
        let configured: Arc<[ClientQuota]> = ctx.config.quotas.clone().into();
        let made = ctx
            .shard
            .run_on(ShardId(0), move |shard| async move {
                quota_changes::make(&shard, configured, changes).await
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        if let Err(why) = made {
            tracing::error!(peer = %ctx.peer, error = %why, "client quotas not changed");
            for outcome in outcomes.iter_mut().filter(|o| o.is_ok()) {
                *outcome = Err((ResponseError::UnknownServerError.code(), why.clone()));
            }
        }
    }
    let entries = req
        .entries
        .into_iter()
        .zip(outcomes)
        .map(|(entry, outcome)| {
            let entity = entry.entity.into_iter().map(|e| {
                AlteredEntity::default()
                    .with_entity_type(e.entity_type)
                    .with_entity_name(e.entity_name)
            });
            let (code, message) = match outcome {
                Ok(()) => (0, None),
                Err((code, why)) => (code, Some(StrBytes::from_string(why))),
            };
            AlteredEntry::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_entity(entity.collect())
        });
    AlterClientQuotasResponse::default().with_entries(entries.collect())
}

/// The change one AlterClientQuotas entry asks for, or why it is refused.
fn change_of(entry: &AlterEntry) -> Result<Change, String> {
    let (mut user, mut client) = (None, None);
    for part in &entry.entity {
        let slot = match part.entity_type.as_str() {
            USER => &mut user,
            CLIENT_ID => &mut client,
            other => {
                return Err(format!(
                    "no quotas are kept for entity type {other:?}: only user and client-id"
                ))
            }
        };
        if slot.is_some() {
            return Err(format!(
                "the entity names {:?} twice",
                part.entity_type.as_str()
            ));
        }
        *slot = Some(part.entity_name.as_ref().map(|n| n.to_string()));
    }
    let (user, client_id) = match (user, client) {
        (None, None) => return Err("the entity names no user and no client id".to_owned()),
        (Some(None), _) => {
            return Err("a default user's quota is not kept here: name the user".to_owned())
        }
        (Some(Some(_)), Some(None)) => {
            return Err(
                "a user's default client id is not kept here: name the client id, or give the \
                 user alone"
                    .to_owned(),
            )
        }
        (Some(user), client) => (user, client.flatten()),
        // The default client id is the entry naming neither.
        (None, Some(client)) => (None, client),
    };
    let rates = entry
        .ops
        .iter()
        .map(|op| {
            let kind = match op.key.as_str() {
                "producer_byte_rate" => QuotaKind::Produce,
                "consumer_byte_rate" => QuotaKind::Fetch,
                other => {
                    return Err(format!(
                        "quota key {other:?} is not kept here: only producer_byte_rate and \
                         consumer_byte_rate"
                    ))
                }
            };
            if op.remove {
                return Ok((kind, None));
            }
            let value = op.value;
            if !(1.0..=RATE_MAX).contains(&value) || value.fract() != 0.0 {
                return Err(format!(
                    "{}: a rate is a whole number of bytes per second, at least 1: {value}",
                    op.key.as_str()
                ));
            }
            // A whole number within 1..=2^53 converts exactly.
            Ok((kind, Some(value as u64)))
        })
        .collect::<Result<_, _>>()?;
    Ok(Change {
        user,
        client_id,
        rates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(kind: &str, match_type: i8, name: Option<&str>) -> ComponentData {
        ComponentData::default()
            .with_entity_type(StrBytes::from_string(kind.to_owned()))
            .with_match_type(match_type)
            .with_match(name.map(|n| StrBytes::from_string(n.to_owned())))
    }

    #[test]
    fn filters_match_entities_as_kafka_does() {
        let both = [(USER, Some("app")), (CLIENT_ID, Some("loader"))];
        let user = [(USER, Some("app"))];
        let default_client = [(CLIENT_ID, None)];
        let exact_user = [filter(USER, MATCH_EXACT, Some("app"))];
        assert!(matches(&both, &exact_user, false));
        assert!(!matches(&both, &exact_user, true), "strict: no other part");
        assert!(matches(&user, &exact_user, true));
        let any_client = [filter(CLIENT_ID, MATCH_ANY, None)];
        assert!(matches(&both, &any_client, false));
        assert!(
            !matches(&default_client, &any_client, false),
            "any named one"
        );
        let default = [filter(CLIENT_ID, MATCH_DEFAULT, None)];
        assert!(matches(&default_client, &default, true));
        assert!(matches(&user, &[], false), "no filter: everything");
    }
}
