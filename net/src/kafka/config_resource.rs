//! What DescribeConfigs, AlterConfigs and IncrementalAlterConfigs share: resource types and
//! changes to a topic's [`TopicConfig`] by key, validated by [`TopicConfig::set`].

use kafka_protocol::error::ResponseError;
use spindle_engine::{EngineError, TopicConfig};

use spindle_engine::access::Operation;

use crate::kafka::context::RequestContext;
use crate::kafka::error_code;

/// Kafka's resource type of a topic.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
/// Kafka's resource type of a broker.
pub(crate) const RESOURCE_BROKER: i8 = 4;

/// One requested change to a key.
pub(crate) enum Change<'a> {
    /// Set the key to this value.
    Set(&'a str, &'a str),
    /// Return the key to the server's default for topics.
    Reset(&'a str),
}

impl<'a> Change<'a> {
    /// A key with a value sets it; a key given without one (a null value in AlterConfigs and
    /// CreateTopics) returns it to the default.
    pub(crate) fn of(key: &'a str, value: Option<&'a str>) -> Self {
        match value {
            Some(value) => Change::Set(key, value),
            None => Change::Reset(key),
        }
    }
}

/// `current` with `changes` applied in order; a key reset takes its value from `defaults`.
///
/// # Errors
/// [`EngineError::InvalidConfig`] for the first key or value refused.
pub(crate) fn apply(
    current: &TopicConfig,
    defaults: &TopicConfig,
    changes: &[Change<'_>],
) -> Result<TopicConfig, EngineError> {
    let mut config = current.clone();
    for change in changes {
        match *change {
            Change::Set(key, value) => config.set(key, value)?,
            // An unknown key has no default: `set` refuses it, naming the keys it knows.
            Change::Reset(key) => {
                config.set(key, &default_of(defaults, key).unwrap_or_default())?
            }
        }
    }
    Ok(config)
}

/// The default value of `key` in Kafka's string form, `None` if the key is unknown.
pub(crate) fn default_of(defaults: &TopicConfig, key: &str) -> Option<String> {
    defaults
        .entries()
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Alters the configuration of one resource: `change` computes the new topic configuration from
/// the current one; nothing is stored when `validate_only`.
///
/// # Errors
/// `(error code, message)` for an unknown or unsupported resource or a refused change.
pub(crate) async fn alter(
    ctx: &RequestContext,
    resource_type: i8,
    name: &str,
    change: impl FnOnce(&TopicConfig) -> Result<TopicConfig, EngineError>,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    if resource_type != RESOURCE_TOPIC {
        return Err((
            ResponseError::InvalidRequest.code(),
            format!("only topic configurations (resource type {RESOURCE_TOPIC}) can be altered"),
        ));
    }
    ctx.authorize_explained(Operation::Admin, name)?;
    let Some(info) = ctx.shard.topic(name) else {
        return Err((
            ResponseError::UnknownTopicOrPartition.code(),
            format!("unknown topic {name:?}"),
        ));
    };
    let refused = |e: EngineError| (error_code::code_of(&e), e.to_string());
    let config = change(&info.config).map_err(refused)?;
    if validate_only || config == info.config {
        return Ok(());
    }
    ctx.shard
        .alter_topic_config(name, config)
        .await
        .map_err(refused)?;
    tracing::info!(topic = %name, "altered topic configuration");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_returns_a_key_to_its_default_and_refuses_an_unknown_key() {
        let mut current = TopicConfig::default();
        current.set("min.insync.replicas", "2").expect("valid");
        current.set("retention.ms", "1000").expect("valid");
        let defaults = TopicConfig::default();
        let reset = [
            Change::Reset("min.insync.replicas"),
            Change::Reset("retention.ms"),
        ];
        assert_eq!(
            apply(&current, &defaults, &reset).expect("known keys"),
            defaults
        );
        let err = apply(&current, &defaults, &[Change::Reset("no.such.key")]).unwrap_err();
        let EngineError::InvalidConfig { key, reason, .. } = err else {
            panic!("{err:?}");
        };
        assert_eq!(key, "no.such.key");
        assert!(
            reason.contains("retention.ms") && reason.contains("min.insync.replicas"),
            "{reason}"
        );
    }
}
