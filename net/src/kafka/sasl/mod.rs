//! SASL authentication on the Kafka listener: SaslHandshake v1, then SaslAuthenticate (v0–v2)
//! carrying the mechanism's messages, as Kafka's `SASL_PLAINTEXT` and `SASL_SSL` listeners do
//! (KIP-152).
//!
//! With `kafka.sasl_mechanisms` set, a new connection may send only ApiVersions and the two
//! SASL requests until it has authenticated; any other request closes it with a warning, as
//! Kafka closes it. A failed authentication is answered SASL_AUTHENTICATION_FAILED and the
//! connection closes after the answer. Once authenticated, every request runs as the principal,
//! whose grants decide per topic (see [`RequestContext::allows`]). Without SASL configured every
//! connection is the anonymous principal, who may do everything, and a SaslHandshake is answered
//! ILLEGAL_SASL_STATE, which clients report as a listener without SASL.
//!
//! The mechanisms are PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802, RFC 7677), served by
//! rsasl (see [`authority`]): the user name is a principal's name and the password its token
//! (`[[grpc.auth.tokens]]`). PLAIN sends the password as it is; SCRAM proves knowledge of it
//! without sending it, in two SaslAuthenticate round trips.
//!
//! The handshake's steps depend on each other, so the connection's reader handles these two
//! requests itself, in order, before it reads the next frame.
//!
//! [`RequestContext::allows`]: crate::kafka::context::RequestContext::allows

pub(crate) mod authority;

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use rsasl::mechname::Mechname;
use rsasl::prelude::{SASLConfig, SASLServer, State};
use spindle_engine::access::{Credentials, Principal};

use authority::{Authenticated, Authority};

/// A SASL mechanism the listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// RFC 4616: `authzid NUL authcid NUL password`.
    Plain,
    /// RFC 7677, SCRAM with SHA-256.
    ScramSha256,
    /// SCRAM with SHA-512, as Kafka and Redpanda offer it.
    ScramSha512,
}

impl SaslMechanism {
    /// Every mechanism, in the order a handshake lists them.
    pub const ALL: [SaslMechanism; 3] = [
        SaslMechanism::ScramSha512,
        SaslMechanism::ScramSha256,
        SaslMechanism::Plain,
    ];

    /// The mechanism's name on the wire and in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// Parses a configured name.
    ///
    /// # Errors
    /// A message naming the allowed values.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                format!("SASL mechanism {name:?}: allowed: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")
            })
    }
}

/// What the listener asks of a connection before serving it.
#[derive(Clone)]
pub struct SaslConfig {
    mechanisms: Vec<SaslMechanism>,
    credentials: Arc<Credentials>,
    /// rsasl's configuration around the [`Authority`].
    rsasl: Arc<SASLConfig>,
}

impl std::fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanisms", &self.mechanisms)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl SaslConfig {
    /// Offers `mechanisms` (in this order) to the principals of `credentials`, deriving their
    /// SCRAM keys.
    ///
    /// # Errors
    /// A message when there is no mechanism or no principal.
    pub fn new(
        mechanisms: Vec<SaslMechanism>,
        credentials: Arc<Credentials>,
    ) -> Result<Self, String> {
        if mechanisms.is_empty() || credentials.is_empty() {
            return Err(
                "SASL needs at least one mechanism and one principal with a token".to_owned(),
            );
        }
        let rsasl = SASLConfig::builder()
            .with_defaults()
            .with_callback(Authority::new(Arc::clone(&credentials)))
            .map_err(|e| format!("SASL: {e}"))?;
        Ok(Self {
            mechanisms,
            credentials,
            rsasl,
        })
    }

    /// The mechanisms offered.
    pub fn mechanisms(&self) -> &[SaslMechanism] {
        &self.mechanisms
    }

    /// Who may authenticate, and what each may do.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }
}

/// Where a connection stands.
enum Stage {
    /// Authenticated, or no SASL configured: every request is served.
    Open,
    /// Only ApiVersions and SaslHandshake are served.
    AwaitingHandshake,
    /// The handshake chose a mechanism; SaslAuthenticate requests carry its messages.
    Exchanging(Box<rsasl::prelude::Session<Authenticated>>),
}

/// One connection's authentication: its stage and the principal its requests run as.
pub(crate) struct Session<'a> {
    config: Option<&'a SaslConfig>,
    stage: Stage,
    principal: Principal,
}

/// A SASL answer, and whether the connection closes once it is written.
pub(crate) struct Reply<R> {
    pub response: R,
    pub close: bool,
}

impl<'a> Session<'a> {
    /// A new connection's session: awaiting the handshake with SASL; without it open, as the
    /// principal its client certificate named (`identity`) or else the anonymous principal.
    pub fn new(config: Option<&'a SaslConfig>, identity: Option<Principal>) -> Self {
        Self {
            config,
            stage: if config.is_some() {
                Stage::AwaitingHandshake
            } else {
                Stage::Open
            },
            principal: identity.unwrap_or_else(Principal::anonymous),
        }
    }

    /// The principal the connection's requests run as.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Whether a request of `api_key` may be served now: ApiVersions and the SASL requests
    /// always (their answers say what is wrong), anything else once open.
    pub fn admits(&self, api_key: ApiKey) -> bool {
        matches!(self.stage, Stage::Open)
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
        let Some(config) = self
            .config
            .filter(|_| matches!(self.stage, Stage::AwaitingHandshake))
        else {
            // No SASL on this listener, or a second handshake: Kafka answers the same.
            return answer(Some(ResponseError::IllegalSaslState), false);
        };
        let started = config
            .mechanisms
            .iter()
            .find(|m| m.name() == req.mechanism.as_str())
            .and_then(|m| {
                let name = Mechname::parse(m.name().as_bytes()).ok()?;
                SASLServer::<Authenticated>::new(Arc::clone(&config.rsasl))
                    .start_suggested(name)
                    .ok()
            });
        match started {
            Some(exchange) => {
                self.stage = Stage::Exchanging(Box::new(exchange));
                answer(None, false)
            }
            None => answer(Some(ResponseError::UnsupportedSaslMechanism), true),
        }
    }

    /// Answers SaslAuthenticate: the mechanism's next message; once the exchange has finished
    /// with the right credentials the connection is open as the principal, and with wrong ones
    /// it closes after the answer.
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
        let Stage::Exchanging(exchange) = &mut self.stage else {
            let (message, close) = match self.stage {
                Stage::Open => (
                    "SaslAuthenticate after authentication, or without SASL",
                    false,
                ),
                _ => ("SaslAuthenticate before SaslHandshake", true),
            };
            return refuse(ResponseError::IllegalSaslState, message, close);
        };
        let mut out = Vec::new();
        let failed = || {
            refuse(
                ResponseError::SaslAuthenticationFailed,
                "Authentication failed: invalid username or password",
                true,
            )
        };
        match exchange.step(Some(&req.auth_bytes), &mut out) {
            Ok(State::Running) => Reply {
                response: SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(out)),
                close: false,
            },
            Ok(State::Finished(_)) => match exchange.validation().flatten() {
                Some(principal) => {
                    self.principal = principal;
                    self.stage = Stage::Open;
                    Reply {
                        response: SaslAuthenticateResponse::default()
                            .with_auth_bytes(Bytes::from(out)),
                        close: false,
                    }
                }
                None => failed(),
            },
            Err(_) => failed(),
        }
    }
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
        let credentials = Credentials::new([("r-secret".to_owned(), reader)]).unwrap();
        SaslConfig::new(SaslMechanism::ALL.to_vec(), Arc::new(credentials)).unwrap()
    }

    /// A full SCRAM exchange through `session` with rsasl's client, as `user` with `password`;
    /// the last reply.
    fn scram(
        session: &mut Session,
        mechanism: &'static str,
        user: &str,
        password: &str,
    ) -> Reply<SaslAuthenticateResponse> {
        use rsasl::prelude::SASLClient;
        let reply = session.handshake(&handshake(mechanism));
        assert_eq!(reply.response.error_code, 0);
        let client_config =
            SASLConfig::with_credentials(None, user.to_owned(), password.to_owned()).unwrap();
        let name = Mechname::parse(mechanism.as_bytes()).unwrap();
        let mut client = SASLClient::new(client_config)
            .start_suggested(&[name])
            .unwrap();
        let mut message = Vec::new();
        client.step(None, &mut message).unwrap();
        for _ in 0..4 {
            let reply = session.authenticate(
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message)),
            );
            let mut next = Vec::new();
            if reply.response.error_code != 0 {
                return reply;
            }
            // The client checks every server message, the last (the server's proof) included.
            client
                .step(Some(&reply.response.auth_bytes), &mut next)
                .unwrap();
            if session.admits(ApiKey::Produce) {
                return reply;
            }
            message = next;
        }
        panic!("SCRAM did not finish in 4 steps");
    }

    #[test]
    fn scram_opens_the_connection_without_the_password_crossing() {
        for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
            let sasl = config();
            let mut session = Session::new(Some(&sasl), None);
            let reply = scram(&mut session, mechanism, "reader", "r-secret");
            assert_eq!(reply.response.error_code, 0, "{mechanism}");
            assert!(!reply.close);
            assert_eq!(session.principal().name(), "reader");
            for (user, password) in [("reader", "wrong"), ("nobody", "r-secret")] {
                let sasl = config();
                let mut session = Session::new(Some(&sasl), None);
                let reply = scram(&mut session, mechanism, user, password);
                assert_eq!(
                    reply.response.error_code,
                    ResponseError::SaslAuthenticationFailed.code(),
                    "{mechanism} {user}/{password}"
                );
                assert!(reply.close);
                assert!(!session.admits(ApiKey::Metadata));
            }
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
        let sasl = config();
        let mut session = Session::new(Some(&sasl), None);
        assert!(!session.admits(ApiKey::Produce));
        assert!(session.admits(ApiKey::ApiVersions));
        let reply = session.handshake(&handshake("PLAIN"));
        assert_eq!(reply.response.error_code, 0);
        let offered: Vec<&str> = reply
            .response
            .mechanisms
            .iter()
            .map(|m| m.as_str())
            .collect();
        assert_eq!(offered, ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]);
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
            let sasl = config();
            let mut session = Session::new(Some(&sasl), None);
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
        let sasl = config();
        let mut session = Session::new(Some(&sasl), None);
        session.handshake(&handshake("PLAIN"));
        let reply = session.authenticate(&authenticate(b"reader\0reader\0r-secret"));
        assert_eq!(reply.response.error_code, 0);
    }

    #[test]
    fn out_of_order_and_unknown_steps_are_refused() {
        let sasl = config();
        let mut session = Session::new(Some(&sasl), None);
        let reply = session.authenticate(&authenticate(b"\0reader\0r-secret"));
        assert_eq!(
            reply.response.error_code,
            ResponseError::IllegalSaslState.code()
        );
        assert!(reply.close);
        let reply = session.handshake(&handshake("GSSAPI"));
        assert_eq!(
            reply.response.error_code,
            ResponseError::UnsupportedSaslMechanism.code()
        );
        assert_eq!(reply.response.mechanisms.len(), 3);
        assert!(reply.close);
        // A listener offering PLAIN alone refuses SCRAM.
        let plain_only = SaslConfig::new(
            vec![SaslMechanism::Plain],
            Arc::new(config().credentials().clone()),
        )
        .unwrap();
        let mut session = Session::new(Some(&plain_only), None);
        let reply = session.handshake(&handshake("SCRAM-SHA-256"));
        assert_eq!(
            reply.response.error_code,
            ResponseError::UnsupportedSaslMechanism.code()
        );
        assert_eq!(
            reply.response.mechanisms,
            [StrBytes::from_static_str("PLAIN")]
        );
    }

    #[test]
    fn without_sasl_the_handshake_is_an_illegal_state_and_all_is_served() {
        let mut session = Session::new(None, None);
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
        for m in SaslMechanism::ALL {
            assert_eq!(SaslMechanism::parse(m.name()), Ok(m));
        }
        assert!(SaslMechanism::parse("plain")
            .unwrap_err()
            .contains("PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"));
    }
}
