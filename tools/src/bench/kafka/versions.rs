//! [`Versions`]: the API versions this generator uses with one broker, negotiated from the
//! broker's ApiVersions answer.
//!
//! The generator speaks a range of each API and picks the highest version both sides know.
//! The upper ends stop where Kafka switched from topic names to topic ids (Produce v13,
//! Fetch v13), which this generator does not track. Fetch stops lower, at v11, the last
//! version without tagged fields: the `kafka-protocol` decoder refuses a tagged field sent at a
//! version that does not define it (Java's clients skip it), and some brokers send one (Tansu
//! 0.6 answers Fetch v12 with a field of later versions), so a consume-side run against them
//! would fail at its first Fetch. v11 carries everything the generator reads.

use anyhow::{bail, Context};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

/// The versions of each API to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// Produce.
    pub produce: i16,
    /// Fetch.
    pub fetch: i16,
    /// Metadata.
    pub metadata: i16,
    /// CreateTopics.
    pub create_topics: i16,
    /// ListOffsets.
    pub list_offsets: i16,
}

/// The ranges this generator speaks: `(api, min, max)` (what `spindle-bench sink` advertises).
pub const SPOKEN: [(ApiKey, i16, i16); 5] = [
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 11),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::ListOffsets, 1, 7),
];

impl Versions {
    /// Picks, for each API, the highest version both this generator and the broker speak.
    ///
    /// # Errors
    /// The broker's error code, or an API the broker lacks or speaks no common version of.
    pub fn negotiate(broker: &ApiVersionsResponse) -> anyhow::Result<Self> {
        if broker.error_code != 0 {
            bail!("ApiVersions failed with error code {}", broker.error_code);
        }
        let pick = |key: ApiKey| -> anyhow::Result<i16> {
            let (_, min, max) = SPOKEN
                .iter()
                .find(|(k, _, _)| *k == key)
                .context("an API missing from SPOKEN")?;
            let theirs = broker
                .api_keys
                .iter()
                .find(|k| k.api_key == key as i16)
                .with_context(|| format!("the broker does not offer {key:?}"))?;
            let version = (*max).min(theirs.max_version);
            if version < *min.max(&theirs.min_version) {
                bail!(
                    "no common {key:?} version: broker {}..={}, spindle-bench {min}..={max}",
                    theirs.min_version,
                    theirs.max_version
                );
            }
            Ok(version)
        };
        Ok(Self {
            produce: pick(ApiKey::Produce)?,
            fetch: pick(ApiKey::Fetch)?,
            metadata: pick(ApiKey::Metadata)?,
            create_topics: pick(ApiKey::CreateTopics)?,
            list_offsets: pick(ApiKey::ListOffsets)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;

    fn broker(ranges: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
        ApiVersionsResponse::default().with_api_keys(
            ranges
                .iter()
                .map(|(k, min, max)| {
                    ApiVersion::default()
                        .with_api_key(*k as i16)
                        .with_min_version(*min)
                        .with_max_version(*max)
                })
                .collect(),
        )
    }

    #[test]
    fn picks_the_highest_common_version() {
        let v = Versions::negotiate(&broker(&[
            (ApiKey::Produce, 0, 13),
            (ApiKey::Fetch, 0, 7),
            (ApiKey::Metadata, 0, 12),
            (ApiKey::CreateTopics, 0, 7),
            (ApiKey::ListOffsets, 0, 5),
        ]))
        .expect("negotiates");
        assert_eq!(v.produce, 9);
        assert_eq!(v.fetch, 7);
        assert_eq!(v.list_offsets, 5);
    }

    #[test]
    fn fetch_stops_at_v11_whatever_the_broker_offers() {
        let v = Versions::negotiate(&broker(&[
            (ApiKey::Produce, 3, 11),
            (ApiKey::Fetch, 4, 16),
            (ApiKey::Metadata, 0, 12),
            (ApiKey::CreateTopics, 0, 7),
            (ApiKey::ListOffsets, 0, 9),
        ]))
        .expect("negotiates");
        assert_eq!(v.fetch, 11);
    }

    #[test]
    fn refuses_a_broker_without_a_common_version() {
        let too_old = broker(&[
            (ApiKey::Produce, 0, 2),
            (ApiKey::Fetch, 0, 7),
            (ApiKey::Metadata, 0, 12),
            (ApiKey::CreateTopics, 0, 7),
            (ApiKey::ListOffsets, 0, 5),
        ]);
        assert!(Versions::negotiate(&too_old).is_err());
        assert!(Versions::negotiate(&broker(&[])).is_err());
    }
}
