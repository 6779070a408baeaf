//! SASL authentication on the Kafka listener: SaslHandshake v1, then SaslAuthenticate (v0–v2)
//! carrying the mechanism's tokens, as Kafka's `SASL_PLAINTEXT` listeners do (KIP-152).
//!
//! With `kafka.sasl_mechanisms` set, a new connection may send only ApiVersions and the two
//! SASL requests until it has authenticated; any other request closes it with a warning, as
//! Kafka closes it. A failed authentication is answered SASL_AUTHENTICATION_FAILED and the
//! connection closes after the answer. Once authenticated, every request runs as the principal,
//! whose grants decide per topic (see [`RequestContext::allows`]). Without SASL configured every
//! connection is the anonymous principal, who may do everything, and a SaslHandshake is answered
//! ILLEGAL_SASL_STATE, which clients report as a listener without SASL.
//!
//! The one mechanism is PLAIN (RFC 4616): the user name is a principal's name and the password
//! its token (`[[grpc.auth.tokens]]`). PLAIN sends the password as it is; without TLS on the
//! listener it belongs on trusted networks only, as with Kafka.
//!
//! The handshake's steps depend on each other, so the connection's reader handles these two
//! requests itself, in order, before it reads the next frame.
//!
//! [`RequestContext::allows`]: crate::kafka::context::RequestContext::allows

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use spindle_engine::access::{Credentials, Principal};

/// A SASL mechanism the listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// RFC 4616: `authzid NUL authcid NUL password`.
    Plain,
}

impl SaslMechanism {
    /// The mechanism's name on the wire and in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
        }
    }

    /// Parses a configured name.
    ///
    /// # Errors
    /// A message naming the allowed values.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "PLAIN" => Ok(SaslMechanism::Plain),
            other => Err(format!("SASL mechanism {other:?}: allowed: PLAIN")),
        }
    }
}

/// What the listener asks of a connection before serving it.
#[derive(Debug, Clone)]
pub struct SaslConfig {
    /// Mechanisms offered, in the order the handshake lists them.
    pub mechanisms: Vec<SaslMechanism>,
    /// Who may authenticate, and what each may do.
    pub credentials: Arc<Credentials>,
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Authenticated, or no SASL configured: every request is served.
    Open,
    /// Only ApiVersions and SaslHandshake are served.
    AwaitingHandshake,
    /// The handshake chose a mechanism; SaslAuthenticate is next.
    AwaitingAuthenticate(SaslMechanism),
}

/// One connection's authentication: its stage and the principal its requests run as.
pub(crate) struct Session {
    config: Option<SaslConfig>,
    stage: Stage,
    principal: Principal,
}

/// A SASL answer, and whether the connection closes once it is written.
pub(crate) struct Reply<R> {
    pub response: R,
    pub close: bool,
}

impl Session {
    /// A new connection's session: open as the anonymous principal without SASL, awaiting the
    /// handshake with it.
    pub fn new(config: Option<&SaslConfig>) -> Self {
        Self {
            config: config.cloned(),
            stage: if config.is_some() {
                Stage::AwaitingHandshake
            } else {
                Stage::Open
            },
            principal: Principal::anonymous(),
        }
    }

    /// The principal the connection's requests run as.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Whether a request of `api_key` may be served now: ApiVersions and the SASL requests
    /// always (their answers say what is wrong), anything else once open.
    pub fn admits(&self, api_key: ApiKey) -> bool {
        self.stage == Stage::Open
            || matches!(
                api_key,
                ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
            )
    }

    /// Answers SaslHandshake: the mechanism is chosen, or refused with the ones offered.
    pub fn handshake(&mut self, req: &SaslHandshakeRequest) -> Reply<SaslHandshakeResponse> {
        let offered: Vec<StrBytes> = self
            .config
            .iter()
            .flat_map(|c| &c.mechanisms)
            .map(|m| StrBytes::from_static_str(m.name()))
            .collect();
        let answer = |error: Option<ResponseError>, close| Reply {
            response: SaslHandshakeResponse::default()
                .with_error_code(error.map_or(0, |e| e.code()))
                .with_mechanisms(offered.clone()),
            close,
        };
        if self.stage != Stage::AwaitingHandshake {
            // No SASL on this listener, or a second handshake: Kafka answers the same.
            return answer(Some(ResponseError::IllegalSaslState), false);
        }
        let chosen = self
            .config
            .iter()
            .flat_map(|c| &c.mechanisms)
            .copied()
            .find(|m| m.name() == req.mechanism.as_str());
        match chosen {
            Some(mechanism) => {
                self.stage = Stage::AwaitingAuthenticate(mechanism);
                answer(None, false)
            }
            None => answer(Some(ResponseError::UnsupportedSaslMechanism), true),
        }
    }

    /// Answers SaslAuthenticate: on success the connection is open as the principal; on
    /// failure it closes after the answer.
    pub fn authenticate(
        &mut self,
        req: &SaslAuthenticateRequest,
    ) -> Reply<SaslAuthenticateResponse> {
        let refuse = |error: ResponseError, message: &str, close| Reply {
            response: SaslAuthenticateResponse::default()
                .with_error_code(error.code())
                .with_error_message(Some(StrBytes::from_string(message.to_owned()))),
            close,
        };
        let Stage::AwaitingAuthenticate(mechanism) = self.stage else {
            let (message, close) = match self.stage {
                Stage::Open => (
                    "SaslAuthenticate after authentication, or without SASL",
                    false,
                ),
                _ => ("SaslAuthenticate before SaslHandshake", true),
            };
            return refuse(ResponseError::IllegalSaslState, message, close);
        };
        let principal = match mechanism {
            SaslMechanism::Plain => self.plain(&req.auth_bytes),
        };
        match principal {
            Some(principal) => {
                self.principal = principal;
                self.stage = Stage::Open;
                Reply {
                    response: SaslAuthenticateResponse::default(),
                    close: false,
                }
            }
            None => refuse(
                ResponseError::SaslAuthenticationFailed,
                "Authentication failed: invalid username or password",
                true,
            ),
        }
    }

    /// The principal a PLAIN token names, if its password is that principal's token.
    fn plain(&self, token: &[u8]) -> Option<Principal> {
        let credentials = &self.config.as_ref()?.credentials;
        let (user, password) = parse_plain(token)?;
        credentials.by_name_and_secret(user, password).cloned()
    }
}

/// Splits a PLAIN token into user name and password; `None` when it is malformed or asks to
/// act as another identity (an authorization id other than the user's own).
fn parse_plain(token: &[u8]) -> Option<(&str, &[u8])> {
    let mut parts = token.splitn(3, |&b| b == 0);
    let authzid = parts.next()?;
    let user = std::str::from_utf8(parts.next()?).ok()?;
    let password = parts.next()?;
    if user.is_empty() || (!authzid.is_empty() && authzid != user.as_bytes()) {
        return None;
    }
    Some((user, password))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use spindle_engine::access::{Grant, Operation, TopicPattern};

    fn config() -> SaslConfig {
        let reader = Principal::new(
            "reader",
            vec![Grant {
                pattern: TopicPattern::Any,
                ops: vec![Operation::Read],
            }],
        );
        SaslConfig {
            mechanisms: vec![SaslMechanism::Plain],
            credentials: Arc::new(Credentials::new([("r-secret".to_owned(), reader)]).unwrap()),
        }
    }

    fn handshake(mechanism: &'static str) -> SaslHandshakeRequest {
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism))
    }

    fn authenticate(token: &'static [u8]) -> SaslAuthenticateRequest {
        SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(token))
    }

    #[test]
    fn plain_opens_the_connection_as_the_principal() {
        let mut session = Session::new(Some(&config()));
        assert!(!session.admits(ApiKey::Produce));
        assert!(session.admits(ApiKey::ApiVersions));
        let reply = session.handshake(&handshake("PLAIN"));
        assert_eq!(reply.response.error_code, 0);
        assert_eq!(
            reply.response.mechanisms,
            [StrBytes::from_static_str("PLAIN")]
        );
        let reply = session.authenticate(&authenticate(b"\0reader\0r-secret"));
        assert_eq!(reply.response.error_code, 0);
        assert!(!reply.close);
        assert!(session.admits(ApiKey::Produce));
        assert_eq!(session.principal().name(), "reader");
        assert!(session.principal().allows(Operation::Read, "t"));
        assert!(!session.principal().allows(Operation::Write, "t"));
    }

    #[test]
    fn a_wrong_password_or_user_fails_and_closes() {
        for token in [
            &b"\0reader\0wrong"[..],
            b"\0nobody\0r-secret",
            b"other\0reader\0r-secret",
            b"reader\0r-secret",
            b"",
        ] {
            let mut session = Session::new(Some(&config()));
            session.handshake(&handshake("PLAIN"));
            let reply = session.authenticate(
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token)),
            );
            assert_eq!(
                reply.response.error_code,
                ResponseError::SaslAuthenticationFailed.code(),
                "{token:?}"
            );
            assert!(reply.close);
            assert!(!session.admits(ApiKey::Metadata));
        }
        // The user's own name as authorization id is the same identity.
        let mut session = Session::new(Some(&config()));
        session.handshake(&handshake("PLAIN"));
        let reply = session.authenticate(&authenticate(b"reader\0reader\0r-secret"));
        assert_eq!(reply.response.error_code, 0);
    }

    #[test]
    fn out_of_order_and_unknown_steps_are_refused() {
        let mut session = Session::new(Some(&config()));
        let reply = session.authenticate(&authenticate(b"\0reader\0r-secret"));
        assert_eq!(
            reply.response.error_code,
            ResponseError::IllegalSaslState.code()
        );
        assert!(reply.close);
        let reply = session.handshake(&handshake("SCRAM-SHA-256"));
        assert_eq!(
            reply.response.error_code,
            ResponseError::UnsupportedSaslMechanism.code()
        );
        assert_eq!(
            reply.response.mechanisms,
            [StrBytes::from_static_str("PLAIN")]
        );
        assert!(reply.close);
    }

    #[test]
    fn without_sasl_the_handshake_is_an_illegal_state_and_all_is_served() {
        let mut session = Session::new(None);
        assert!(session.admits(ApiKey::Produce));
        let reply = session.handshake(&handshake("PLAIN"));
        assert_eq!(
            reply.response.error_code,
            ResponseError::IllegalSaslState.code()
        );
        assert!(reply.response.mechanisms.is_empty());
        assert!(!reply.close);
        assert!(session.principal().allows(Operation::Admin, "any"));
    }

    #[test]
    fn mechanism_names_parse() {
        assert_eq!(SaslMechanism::parse("PLAIN"), Ok(SaslMechanism::Plain));
        assert!(SaslMechanism::parse("plain").unwrap_err().contains("PLAIN"));
    }
}
