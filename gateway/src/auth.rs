//! Bearer-token authentication and per-topic permissions.
//!
//! A call carries `authorization: Bearer <token>` metadata. The [`Authenticator`] maps the
//! token to a [`Principal`] before the service sees the call (a tonic interceptor, so a call
//! with a missing or unknown token never reaches the engine: UNAUTHENTICATED). Each service
//! then asks [`PrincipalCheck::check`] for the topic and [`Operation`] it is about to touch
//! (PERMISSION_DENIED). Without `[grpc.auth]` every call runs as the anonymous principal, who
//! may do everything. The model (principals, grants, constant-time lookup) is the engine's
//! [`spindle_engine::access`], which the Kafka listener's SASL authentication shares.

use std::sync::Arc;

pub use spindle_engine::access::{Credentials, Principal, TopicPattern};
use spindle_engine::access::{Grant, Operation};
use tonic::{Request, Status};

use crate::config::{AuthConfig, PermissionConfig};
use crate::error::GatewayError;

/// The gRPC face of [`Principal::allows`].
pub trait PrincipalCheck {
    /// # Errors
    /// PERMISSION_DENIED naming the principal, the operation and the topic.
    fn check(&self, op: Operation, topic: &str) -> Result<(), Status>;

    /// # Errors
    /// PERMISSION_DENIED naming the principal and the consumer group.
    fn check_group(&self, group: &str) -> Result<(), Status>;
}

impl PrincipalCheck for Principal {
    fn check(&self, op: Operation, topic: &str) -> Result<(), Status> {
        if self.allows(op, topic) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "principal {:?} may not {op} topic {topic:?}",
                self.name()
            )))
        }
    }

    fn check_group(&self, group: &str) -> Result<(), Status> {
        if self.may_use_group(group) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "principal {:?} may not use group {group:?}",
                self.name()
            )))
        }
    }
}

/// The principal a request was authenticated as (set by [`Authenticator::intercept`]).
///
/// # Errors
/// UNAUTHENTICATED when the request did not pass through the interceptor, which is a wiring
/// bug but must still never let a call through.
pub fn principal_of<T>(request: &Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no principal"))
}

/// Maps bearer tokens to principals.
#[derive(Debug, Clone)]
pub struct Authenticator {
    /// `None` when auth is not configured.
    credentials: Option<Arc<Credentials>>,
}

impl Authenticator {
    /// Builds the token table.
    ///
    /// # Errors
    /// [`GatewayError::Config`] for a bad topic pattern, an empty token, or a token listed twice.
    pub fn new(config: Option<&AuthConfig>) -> Result<Self, GatewayError> {
        let Some(config) = config else {
            return Ok(Self { credentials: None });
        };
        let entries = config
            .tokens
            .iter()
            .map(|entry| {
                let grants = entry
                    .permissions
                    .iter()
                    .map(|permission| parse_grant(permission, &entry.principal))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut principal = Principal::new(&entry.principal, grants);
                if let Some(ids) = &entry.transactional_ids {
                    let patterns = name_patterns(ids, "transactional_ids", &entry.principal)?;
                    principal = principal.with_transactional_ids(patterns);
                }
                if let Some(groups) = &entry.groups {
                    principal =
                        principal.with_groups(name_patterns(groups, "groups", &entry.principal)?);
                }
                Ok((entry.token.clone(), principal))
            })
            .collect::<Result<Vec<_>, GatewayError>>()?;
        let credentials = Credentials::new(entries).map_err(GatewayError::Config)?;
        Ok(Self {
            credentials: Some(Arc::new(credentials)),
        })
    }

    /// The configured tokens and their principals (`None` without `[grpc.auth]`), for the Kafka
    /// listener's SASL/PLAIN authentication.
    pub fn credentials(&self) -> Option<Arc<Credentials>> {
        self.credentials.clone()
    }

    /// Resolves the `authorization` metadata value (`None` when absent).
    ///
    /// # Errors
    /// UNAUTHENTICATED when auth is configured and the header is missing, malformed or names
    /// no known token.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Principal, Status> {
        let Some(credentials) = &self.credentials else {
            return Ok(Principal::anonymous());
        };
        let header = authorization
            .ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer <token>`"))?;
        let token = header
            .strip_prefix(b"Bearer ")
            .or_else(|| header.strip_prefix(b"bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization is not `Bearer <token>`"))?;
        credentials
            .by_secret(token)
            .cloned()
            .ok_or_else(|| Status::unauthenticated("unknown token"))
    }

    /// The tonic interceptor: authenticates and stores the [`Principal`] in the request's
    /// extensions.
    ///
    /// # Errors
    /// As [`Authenticator::authenticate`].
    pub fn intercept(&self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .map(|value| value.as_bytes());
        let certificates = request.peer_certs();
        let leaf = certificates.as_deref().and_then(|chain| chain.first());
        let principal = match (header, leaf, &self.credentials) {
            // A client certificate (`client_ca_path`) names the principal of a call that
            // brings no token.
            (None, Some(leaf), Some(credentials)) => credentials
                .by_certificate(leaf.as_ref())
                .cloned()
                .map_err(Status::unauthenticated)?,
            _ => self.authenticate(header)?,
        };
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

fn parse_grant(config: &PermissionConfig, principal: &str) -> Result<Grant, GatewayError> {
    Ok(Grant {
        pattern: TopicPattern::parse(&config.topic).map_err(|e| {
            GatewayError::Config(format!("permissions of principal {principal:?}: topic {e}"))
        })?,
        ops: config.ops.clone(),
    })
}

/// The name patterns of a token entry's `key` (`transactional_ids`, `groups`).
fn name_patterns(
    names: &[String],
    key: &str,
    principal: &str,
) -> Result<Vec<TopicPattern>, GatewayError> {
    names
        .iter()
        .map(|name| {
            TopicPattern::parse(name)
                .map_err(|e| GatewayError::Config(format!("{key} of principal {principal:?}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenConfig;
    use tonic::Code;

    fn token(principal: &str, token: &str, perms: &[(&str, &[Operation])]) -> TokenConfig {
        TokenConfig {
            principal: principal.to_string(),
            token: token.to_string(),
            permissions: perms
                .iter()
                .map(|(topic, ops)| PermissionConfig {
                    topic: topic.to_string(),
                    ops: ops.to_vec(),
                })
                .collect(),
            transactional_ids: None,
            groups: None,
            quota: None,
        }
    }

    fn authenticator() -> Authenticator {
        let config = AuthConfig {
            tokens: vec![
                token(
                    "writer",
                    "w-token",
                    &[
                        ("orders", &[Operation::Read, Operation::Write]),
                        ("logs.*", &[Operation::Read]),
                    ],
                ),
                token("reader", "r-token", &[("*", &[Operation::Read])]),
                token("admin", "a-token", &[("*", &[Operation::Admin])]),
            ],
        };
        Authenticator::new(Some(&config)).unwrap()
    }

    /// The grants themselves are the engine's (`spindle_engine::access` tests them); here, that
    /// each token finds its principal and a refusal is PERMISSION_DENIED naming the topic.
    #[test]
    fn tokens_find_their_principal_and_refusals_are_permission_denied() {
        let auth = authenticator();
        let writer = auth.authenticate(Some(b"Bearer w-token")).unwrap();
        assert_eq!(writer.name(), "writer");
        assert!(writer.check(Operation::Write, "orders").is_ok());
        let denied = writer.check(Operation::Write, "logs.app").unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert!(denied.message().contains("logs.app"));
        let admin = auth.authenticate(Some(b"bearer a-token")).unwrap();
        assert_eq!(admin.name(), "admin");
    }

    #[test]
    fn transactional_ids_limit_a_principal_when_configured() {
        let mut app = token("app", "app-token", &[("*", &[Operation::Write])]);
        app.transactional_ids = Some(vec!["app-*".to_owned()]);
        let config = AuthConfig {
            tokens: vec![app.clone(), token("any", "any-token", &[])],
        };
        let auth = Authenticator::new(Some(&config)).unwrap();
        let app_principal = auth.authenticate(Some(b"Bearer app-token")).unwrap();
        assert!(app_principal.may_use_transactional_id("app-1"));
        assert!(!app_principal.may_use_transactional_id("other"));
        let any = auth.authenticate(Some(b"Bearer any-token")).unwrap();
        assert!(any.may_use_transactional_id("other"));

        app.transactional_ids = Some(vec!["a*b".to_owned()]);
        let bad = AuthConfig { tokens: vec![app] };
        let err = Authenticator::new(Some(&bad)).unwrap_err().to_string();
        assert!(
            err.contains("transactional_ids of principal \"app\""),
            "{err}"
        );
    }

    #[test]
    fn groups_limit_a_principal_when_configured() {
        let mut app = token("app", "app-token", &[("*", &[Operation::Read])]);
        app.groups = Some(vec!["billing-*".to_owned(), "audit".to_owned()]);
        let config = AuthConfig {
            tokens: vec![app.clone(), token("any", "any-token", &[])],
        };
        let auth = Authenticator::new(Some(&config)).unwrap();
        let app_principal = auth.authenticate(Some(b"Bearer app-token")).unwrap();
        assert!(app_principal.check_group("billing-eu").is_ok());
        assert!(app_principal.check_group("audit").is_ok());
        let denied = app_principal.check_group("audit-2").unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert!(denied.message().contains("\"audit-2\""), "{denied:?}");
        let any = auth.authenticate(Some(b"Bearer any-token")).unwrap();
        assert!(any.check_group("audit-2").is_ok());

        app.groups = Some(vec!["*x".to_owned()]);
        let bad = AuthConfig { tokens: vec![app] };
        let err = Authenticator::new(Some(&bad)).unwrap_err().to_string();
        assert!(err.contains("groups of principal \"app\""), "{err}");

        let bad = AuthConfig {
            tokens: vec![token("app", "app-token", &[("a*b", &[Operation::Read])])],
        };
        let err = Authenticator::new(Some(&bad)).unwrap_err().to_string();
        assert!(
            err.contains("permissions of principal \"app\": topic pattern \"a*b\""),
            "{err}"
        );
    }

    #[test]
    fn missing_malformed_and_unknown_tokens_are_unauthenticated() {
        let auth = authenticator();
        for header in [
            None,
            Some(&b"w-token"[..]),
            Some(b"Bearer nope"),
            Some(b"Bearer "),
        ] {
            let err = auth.authenticate(header).unwrap_err();
            assert_eq!(err.code(), Code::Unauthenticated, "{header:?}");
        }
    }

    #[test]
    fn without_auth_everything_is_allowed() {
        let auth = Authenticator::new(None).unwrap();
        let anyone = auth.authenticate(None).unwrap();
        assert!(anyone.allows(Operation::Admin, "x") && anyone.allows(Operation::Write, "y"));
    }

    #[test]
    fn bad_auth_config_is_refused() {
        let dup = AuthConfig {
            tokens: vec![token("a", "t", &[]), token("b", "t", &[])],
        };
        assert!(Authenticator::new(Some(&dup)).is_err());
        let empty = AuthConfig {
            tokens: vec![token("a", "", &[])],
        };
        assert!(Authenticator::new(Some(&empty)).is_err());
        let pattern = AuthConfig {
            tokens: vec![token("a", "t", &[("a*b", &[Operation::Read])])],
        };
        assert!(Authenticator::new(Some(&pattern)).is_err());
    }

    #[test]
    fn the_interceptor_stores_the_principal() {
        let auth = authenticator();
        let mut request = Request::new(());
        request
            .metadata_mut()
            .insert("authorization", "Bearer r-token".parse().unwrap());
        let request = auth.intercept(request).unwrap();
        assert_eq!(principal_of(&request).unwrap().name(), "reader");
        assert_eq!(
            auth.intercept(Request::new(())).unwrap_err().code(),
            Code::Unauthenticated
        );
    }
}
