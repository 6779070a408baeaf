//! The client side of SASL on a Kafka connection, for the admin commands and `spindle-bench
//! kafka`: [`SaslArgs`] (the flags), [`SaslLogin`] (who logs in, and how) and
//! [`SaslLogin::authenticate`] (the exchange over any connection that can make a call).
//!
//! The exchange is Kafka's (KIP-43, KIP-152): SaslHandshake v1 names the mechanism, then each
//! message of the mechanism travels in a SaslAuthenticate request and the server's reply in its
//! response. rsasl runs the mechanisms (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), so a SCRAM login
//! also checks the server's final proof: a server that does not hold the password fails it.
//!
//! SaslAuthenticate goes at v0, which every broker since Kafka 1.0 serves: from v1 on, a broker
//! with `connections.max.reauth.ms` set closes a connection whose client does not log in again
//! before its session ends, which a load generator's long-lived connections would not do.

use std::fmt;

use bytes::Bytes;
use clap::Args;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::{Request, StrBytes};
use rsasl::prelude::{Mechname, SASLClient, SASLConfig};
pub use spindle_net::kafka::SaslMechanism;

use crate::admin::error::code_name;

/// The SaslHandshake version sent: v1 frames the mechanism's messages in SaslAuthenticate.
const HANDSHAKE_VERSION: i16 = 1;
/// The SaslAuthenticate version sent (see the module docs).
const AUTHENTICATE_VERSION: i16 = 0;
/// More SaslAuthenticate round trips than any of the mechanisms takes (SCRAM takes two).
const MAX_STEPS: usize = 4;

/// The SASL flags of a command that connects to Kafka listeners.
#[derive(Debug, Clone, Args)]
pub struct SaslArgs {
    /// SASL user name, for a listener that asks for SASL (on Spindle: a principal of
    /// `[[grpc.auth.tokens]]`).
    #[arg(
        long,
        global = true,
        env = "SPINDLE_SASL_USERNAME",
        value_name = "USER"
    )]
    pub sasl_username: Option<String>,
    /// SASL password (on Spindle: the principal's token); prefer the environment variable,
    /// which other users of the machine cannot read from the process list.
    #[arg(
        long,
        global = true,
        env = "SPINDLE_SASL_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub sasl_password: Option<String>,
    /// SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(
        long,
        global = true,
        env = "SPINDLE_SASL_MECHANISM",
        default_value = "PLAIN",
        value_parser = SaslMechanism::parse,
        value_name = "MECHANISM"
    )]
    pub sasl_mechanism: SaslMechanism,
}

impl SaslArgs {
    /// Who logs in, `None` when neither user name nor password is given. (Checked here rather
    /// than with clap's `requires`, which does not see a global flag given after the
    /// subcommand when its partner comes from the environment.)
    ///
    /// # Errors
    /// A message when only one of the two is given.
    pub fn login(&self) -> Result<Option<SaslLogin>, String> {
        match (&self.sasl_username, &self.sasl_password) {
            (None, None) => Ok(None),
            (Some(username), Some(password)) => Ok(Some(SaslLogin {
                mechanism: self.sasl_mechanism,
                username: username.clone(),
                password: password.clone(),
            })),
            _ => Err(
                "--sasl-username and --sasl-password (or SPINDLE_SASL_USERNAME and \
                      SPINDLE_SASL_PASSWORD) go together"
                    .to_owned(),
            ),
        }
    }
}

/// A user name and password, and the mechanism that proves them.
#[derive(Clone)]
pub struct SaslLogin {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for SaslLogin {
    // The password never reaches a log line or an error through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslLogin")
            .field("mechanism", &self.mechanism.name())
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A connection the exchange runs over: it sends one request and returns its response.
pub trait SaslCall {
    /// The connection's error, which a [`SaslFailure`] becomes.
    type Error: From<SaslFailure>;

    /// Sends `request` at `version` and waits for its response.
    ///
    /// # Errors
    /// The connection's own.
    fn sasl_call<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, Self::Error>;
}

/// Why a login failed, the connection being sound.
#[derive(Debug, thiserror::Error)]
pub enum SaslFailure {
    /// The broker answered a step with an error code.
    #[error(
        "{what}: {} ({code}){}",
        code_name(*code),
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
    )]
    Refused {
        /// The step, e.g. `authenticating as "alice" with SCRAM-SHA-256`.
        what: String,
        /// The broker's error code.
        code: i16,
        /// The broker's message, when it sent one.
        message: Option<String>,
    },
    /// This side of the mechanism failed: the server's SCRAM proof did not verify, or the
    /// exchange did not end.
    #[error("SASL {mechanism} as {username:?}: {reason}")]
    Mechanism {
        /// The mechanism.
        mechanism: &'static str,
        /// The user name.
        username: String,
        /// What went wrong.
        reason: String,
    },
}

impl SaslLogin {
    /// Logs in over `conn`, which must not have sent anything but ApiVersions yet.
    ///
    /// # Errors
    /// The connection's errors, and [`SaslFailure`] (converted) when the broker refuses the
    /// mechanism or the credentials, or its answers do not complete the mechanism.
    pub fn authenticate<C: SaslCall>(&self, conn: &mut C) -> Result<(), C::Error> {
        let mechanism = self.mechanism.name();
        let handshake = conn.sasl_call(
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
            HANDSHAKE_VERSION,
        )?;
        if handshake.error_code != 0 {
            let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(SaslFailure::Refused {
                what: format!("starting SASL/{mechanism}"),
                code: handshake.error_code,
                message: Some(format!(
                    "mechanisms offered: {offered:?}; none means the server does not ask for SASL"
                )),
            }
            .into());
        }
        let failed = |reason: String| SaslFailure::Mechanism {
            mechanism,
            username: self.username.clone(),
            reason,
        };
        let config =
            SASLConfig::with_credentials(None, self.username.clone(), self.password.clone())
                .map_err(|e| failed(e.to_string()))?;
        let name = Mechname::parse(mechanism.as_bytes()).map_err(|e| failed(e.to_string()))?;
        let mut session = SASLClient::new(config)
            .start_suggested(&[name])
            .map_err(|e| failed(e.to_string()))?;
        let mut message = Vec::new();
        let mut state = session
            .step(None, &mut message)
            .map_err(|e| failed(e.to_string()))?;
        for _ in 0..MAX_STEPS {
            let answer = conn.sasl_call(
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message)),
                AUTHENTICATE_VERSION,
            )?;
            if answer.error_code != 0 {
                return Err(SaslFailure::Refused {
                    what: format!("authenticating as {:?} with {mechanism}", self.username),
                    code: answer.error_code,
                    message: answer.error_message.map(|m| m.to_string()),
                }
                .into());
            }
            if state.is_finished() {
                return Ok(());
            }
            // The server's reply to a running mechanism: SCRAM's challenge, or its final proof,
            // which the client checks before it counts the login as done.
            message = Vec::new();
            state = session
                .step(Some(&answer.auth_bytes), &mut message)
                .map_err(|e| failed(e.to_string()))?;
            if !state.has_sent_message() {
                return Ok(());
            }
        }
        Err(failed(format!("the exchange did not end within {MAX_STEPS} steps")).into())
    }
}
