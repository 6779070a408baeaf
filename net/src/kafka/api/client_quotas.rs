//! DescribeClientQuotas and AlterClientQuotas: the quotas of `[[kafka.quotas]]` as Kafka's quota
//! entities (`kafka-configs.sh --describe --entity-type users|clients`, admin clients'
//! `describeClientQuotas`). An entry naming a user and a client id is the entity
//! `user=U, client-id=C`; one naming a user, `user=U`; one naming a client id, `client-id=C`;
//! one naming neither, the default client id (`client-id` with no name), which it acts as (each
//! client id limited on its own). Quotas change in the configuration file, so AlterClientQuotas
//! is refused with a message saying so. Both need `admin` on every topic (Kafka's
//! DESCRIBE_CONFIGS and ALTER_CONFIGS on the cluster).

use kafka_protocol::error::ResponseError;
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

use crate::kafka::context::RequestContext;
use crate::kafka::quota::ClientQuota;

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
    let entries = ctx
        .config
        .quotas
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

/// Answers one AlterClientQuotas request: each entry refused (see the module docs).
pub(crate) async fn alter(
    ctx: &RequestContext,
    req: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let (code, message) = ctx
        .authorize_cluster("alter client quotas")
        .err()
        .unwrap_or_else(|| {
            (
                ResponseError::InvalidRequest.code(),
                "client quotas come from [[kafka.quotas]] in the configuration file; change them \
             there and restart the node"
                    .to_owned(),
            )
        });
    let entries = req.entries.into_iter().map(|entry| {
        let entity = entry.entity.into_iter().map(|e| {
            AlteredEntity::default()
                .with_entity_type(e.entity_type)
                .with_entity_name(e.entity_name)
        });
        AlteredEntry::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message.clone())))
            .with_entity(entity.collect())
    });
    AlterClientQuotasResponse::default().with_entries(entries.collect())
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
