//! Bearer-token authentication and per-topic permissions.
//!
//! A call carries `authorization: Bearer <token>` metadata. The [`Authenticator`] maps the
//! token to a [`Principal`] before the service sees the call (a tonic interceptor, so a call
//! with a missing or unknown token never reaches the engine: UNAUTHENTICATED). Each service
//! then asks [`Principal::check`] for the topic and [`Operation`] it is about to touch
//! (PERMISSION_DENIED). Without `[grpc.auth]` every call runs as the anonymous principal, who
//! may do everything.
//!
//! Tokens are compared in constant time so the time a refusal takes says nothing about how
//! much of a token was right.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::{Request, Status};

use crate::config::{AuthConfig, Operation, PermissionConfig};
use crate::error::GatewayError;

/// Which topics a permission covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicPattern {
    /// Every topic (`*`).
    Any,
    /// Topics whose name starts with this (`prefix*`).
    Prefix(String),
    /// Exactly this topic.
    Exact(String),
}

impl TopicPattern {
    /// Parses `*`, `prefix*` or an exact name.
    ///
    /// # Errors
    /// [`GatewayError::Config`] for an empty pattern or a `*` anywhere but at the end.
    pub fn parse(pattern: &str) -> Result<Self, GatewayError> {
        let (body, wildcard) = match pattern.strip_suffix('*') {
            Some(body) => (body, true),
            None => (pattern, false),
        };
        if body.contains('*') {
            return Err(GatewayError::Config(format!(
                "topic pattern {pattern:?}: `*` is allowed only at the end"
            )));
        }
        Ok(match (body.is_empty(), wildcard) {
            (true, true) => TopicPattern::Any,
            (true, false) => {
                return Err(GatewayError::Config("empty topic pattern".to_string()));
            }
            (false, true) => TopicPattern::Prefix(body.to_string()),
            (false, false) => TopicPattern::Exact(body.to_string()),
        })
    }

    /// Whether `topic` is covered.
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            TopicPattern::Any => true,
            TopicPattern::Prefix(prefix) => topic.starts_with(prefix.as_str()),
            TopicPattern::Exact(name) => topic == name,
        }
    }
}

/// One parsed permission.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    pattern: TopicPattern,
    ops: Vec<Operation>,
}

/// Who is calling, and what they may do. Handed to services through request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    name: Arc<str>,
    /// `None` allows everything (auth not configured).
    grants: Option<Arc<[Grant]>>,
}

impl Principal {
    /// The principal of every call when auth is not configured: may do everything.
    pub fn anonymous() -> Self {
        Self {
            name: Arc::from("anonymous"),
            grants: None,
        }
    }

    /// The principal's name, as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the principal may do `op` on `topic`.
    pub fn allows(&self, op: Operation, topic: &str) -> bool {
        match &self.grants {
            None => true,
            Some(grants) => grants
                .iter()
                .any(|g| g.ops.contains(&op) && g.pattern.matches(topic)),
        }
    }

    /// Whether the principal may do anything at all on `topic` (used to filter listings).
    pub fn allows_any(&self, topic: &str) -> bool {
        [Operation::Read, Operation::Write, Operation::Admin]
            .into_iter()
            .any(|op| self.allows(op, topic))
    }

    /// # Errors
    /// PERMISSION_DENIED naming the principal, the operation and the topic.
    pub fn check(&self, op: Operation, topic: &str) -> Result<(), Status> {
        if self.allows(op, topic) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "principal {:?} may not {op} topic {topic:?}",
                self.name()
            )))
        }
    }

    /// The principal a request was authenticated as (set by [`Authenticator::intercept`]).
    ///
    /// # Errors
    /// UNAUTHENTICATED when the request did not pass through the interceptor, which is a
    /// wiring bug but must still never let a call through.
    pub fn of<T>(request: &Request<T>) -> Result<Principal, Status> {
        request
            .extensions()
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("no principal"))
    }
}

/// Maps bearer tokens to principals.
#[derive(Debug, Clone)]
pub struct Authenticator {
    /// `None` when auth is not configured.
    tokens: Option<Arc<HashMap<Vec<u8>, Principal>>>,
}

impl Authenticator {
    /// Builds the token table.
    ///
    /// # Errors
    /// [`GatewayError::Config`] for a bad topic pattern, an empty token, or a token listed twice.
    pub fn new(config: Option<&AuthConfig>) -> Result<Self, GatewayError> {
        let Some(config) = config else {
            return Ok(Self { tokens: None });
        };
        let mut tokens = HashMap::new();
        for entry in &config.tokens {
            if entry.token.is_empty() {
                return Err(GatewayError::Config(format!(
                    "principal {:?} has an empty token",
                    entry.principal
                )));
            }
            let grants = entry
                .permissions
                .iter()
                .map(parse_grant)
                .collect::<Result<Vec<_>, _>>()?;
            let principal = Principal {
                name: Arc::from(entry.principal.as_str()),
                grants: Some(Arc::from(grants)),
            };
            if tokens
                .insert(entry.token.as_bytes().to_vec(), principal)
                .is_some()
            {
                return Err(GatewayError::Config(format!(
                    "the token of principal {:?} is listed twice",
                    entry.principal
                )));
            }
        }
        Ok(Self {
            tokens: Some(Arc::new(tokens)),
        })
    }

    /// Resolves the `authorization` metadata value (`None` when absent).
    ///
    /// # Errors
    /// UNAUTHENTICATED when auth is configured and the header is missing, malformed or names
    /// no known token.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Principal, Status> {
        let Some(tokens) = &self.tokens else {
            return Ok(Principal::anonymous());
        };
        let header = authorization
            .ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer <token>`"))?;
        let token = header
            .strip_prefix(b"Bearer ")
            .or_else(|| header.strip_prefix(b"bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization is not `Bearer <token>`"))?;
        // Compare against every token so the time taken does not depend on which one matched.
        let mut found = None;
        for (known, principal) in tokens.iter() {
            if constant_time_eq(known, token) {
                found = Some(principal);
            }
        }
        found
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
        let principal = self.authenticate(header)?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

fn parse_grant(config: &PermissionConfig) -> Result<Grant, GatewayError> {
    Ok(Grant {
        pattern: TopicPattern::parse(&config.topic)?,
        ops: config.ops.clone(),
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

    #[test]
    fn patterns_parse_and_match() {
        assert_eq!(TopicPattern::parse("*").unwrap(), TopicPattern::Any);
        let prefix = TopicPattern::parse("logs.*").unwrap();
        assert!(prefix.matches("logs.app") && prefix.matches("logs."));
        assert!(!prefix.matches("logs") && !prefix.matches("xlogs.app"));
        let exact = TopicPattern::parse("orders").unwrap();
        assert!(exact.matches("orders") && !exact.matches("orders2"));
        assert!(TopicPattern::parse("").is_err());
        assert!(TopicPattern::parse("a*b").is_err());
        assert!(TopicPattern::parse("**").is_err());
    }

    #[test]
    fn permissions_are_per_topic_and_operation() {
        let auth = authenticator();
        let writer = auth.authenticate(Some(b"Bearer w-token")).unwrap();
        assert_eq!(writer.name(), "writer");
        assert!(writer.allows(Operation::Write, "orders"));
        assert!(writer.allows(Operation::Read, "logs.app"));
        assert!(!writer.allows(Operation::Write, "logs.app"));
        assert!(!writer.allows(Operation::Admin, "orders"));
        assert!(!writer.allows_any("payments"));
        let denied = writer.check(Operation::Write, "logs.app").unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert!(denied.message().contains("logs.app"));

        let reader = auth.authenticate(Some(b"Bearer r-token")).unwrap();
        assert!(reader.allows(Operation::Read, "anything"));
        assert!(!reader.allows(Operation::Write, "anything"));
        let admin = auth.authenticate(Some(b"bearer a-token")).unwrap();
        assert!(admin.allows(Operation::Admin, "x") && !admin.allows(Operation::Read, "x"));
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
        assert_eq!(Principal::of(&request).unwrap().name(), "reader");
        assert_eq!(
            auth.intercept(Request::new(())).unwrap_err().code(),
            Code::Unauthenticated
        );
    }
}
