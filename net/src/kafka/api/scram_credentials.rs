//! DescribeUserScramCredentials and AlterUserScramCredentials: which principals may log in
//! with SCRAM, and with what (`kafka-configs.sh --describe --entity-type users`, admin clients'
//! `describe_user_scram_credentials`). Every principal of `[[grpc.auth.tokens]]` has a
//! credential for each SCRAM mechanism `kafka.sasl_mechanisms` offers, derived from its token
//! at start with [`SCRAM_ITERATIONS`] rounds. Credentials change in the configuration file, so
//! AlterUserScramCredentials is refused with a message saying so. Both need `admin` on every
//! topic (Kafka's DESCRIBE and ALTER on the cluster).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::context::RequestContext;
use crate::kafka::sasl::authority::SCRAM_ITERATIONS;
use crate::kafka::sasl::SaslMechanism;

/// Kafka's codes of the SCRAM mechanisms.
fn mechanism_code(mechanism: SaslMechanism) -> Option<i8> {
    match mechanism {
        SaslMechanism::ScramSha256 => Some(1),
        SaslMechanism::ScramSha512 => Some(2),
        SaslMechanism::Plain => None,
    }
}

/// Answers one DescribeUserScramCredentials request: every principal with a SCRAM credential
/// when no user is named, else each user named (RESOURCE_NOT_FOUND for one without, and
/// DUPLICATE_RESOURCE for a user named twice, as Kafka answers).
pub(crate) async fn describe(
    ctx: &RequestContext,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    if let Err((code, message)) = ctx.authorize_cluster("describe SCRAM credentials") {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)));
    }
    let (mechanisms, credentials) = match &ctx.config.sasl {
        Some(sasl) => (sasl.mechanisms(), Some(sasl.credentials())),
        None => (&[][..], None),
    };
    let infos: Vec<CredentialInfo> = mechanisms
        .iter()
        .filter_map(|&m| mechanism_code(m))
        .map(|code| {
            CredentialInfo::default()
                .with_mechanism(code)
                .with_iterations(i32::try_from(SCRAM_ITERATIONS).unwrap_or(i32::MAX))
        })
        .collect();
    let known: std::collections::BTreeSet<&str> = credentials
        .into_iter()
        .flat_map(|c| c.entries().map(|(_, p)| p.name()))
        .filter(|_| !infos.is_empty())
        .collect();
    let found = |user: &str| {
        let answer = DescribeUserScramCredentialsResult::default()
            .with_user(StrBytes::from_string(user.to_owned()));
        if known.contains(user) {
            answer.with_credential_infos(infos.clone())
        } else {
            answer
                .with_error_code(ResponseError::ResourceNotFound.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "user {user:?} has no SCRAM credential"
                ))))
        }
    };
    let results = match req.users {
        None => known.iter().map(|user| found(user)).collect(),
        Some(users) if users.is_empty() => known.iter().map(|user| found(user)).collect(),
        Some(users) => {
            let mut asked: BTreeMap<&str, usize> = BTreeMap::new();
            for u in &users {
                *asked.entry(u.name.as_str()).or_default() += 1;
            }
            asked
                .into_iter()
                .map(|(user, times)| {
                    if times > 1 {
                        DescribeUserScramCredentialsResult::default()
                            .with_user(StrBytes::from_string(user.to_owned()))
                            .with_error_code(ResponseError::DuplicateResource.code())
                    } else {
                        found(user)
                    }
                })
                .collect()
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

/// Answers one AlterUserScramCredentials request: each user's change refused (see the module
/// docs).
pub(crate) async fn alter(
    ctx: &RequestContext,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let (code, message) = ctx
        .authorize_cluster("alter SCRAM credentials")
        .err()
        .unwrap_or_else(|| {
            (
                ResponseError::InvalidRequest.code(),
                "SCRAM credentials come from the tokens of [[grpc.auth.tokens]] in the \
                 configuration file; change them there and restart the node"
                    .to_owned(),
            )
        });
    let message = StrBytes::from_string(message);
    let users: std::collections::BTreeSet<&str> = req
        .deletions
        .iter()
        .map(|d| d.name.as_str())
        .chain(req.upsertions.iter().map(|u| u.name.as_str()))
        .collect();
    let results = users
        .into_iter()
        .map(|user| {
            AlterUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user.to_owned()))
                .with_error_code(code)
                .with_error_message(Some(message.clone()))
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}
