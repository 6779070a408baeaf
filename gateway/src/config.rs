//! The gateway's configuration: the `[grpc]` table of the server's TOML file.
//!
//! ```toml
//! [grpc]
//! enabled = true
//! listen = "127.0.0.1:50051"
//! runtime_threads = 2
//!
//! [grpc.tls]                       # absent: plaintext HTTP/2
//! cert_path = "server.pem"         # PEM certificate chain
//! key_path = "server.key"          # PEM private key
//!
//! [grpc.quota]                     # default for every principal; absent: unlimited
//! records_per_sec = 10000
//! bytes_per_sec = 10485760
//!
//! [[grpc.auth.tokens]]             # no [grpc.auth]: everything is allowed
//! principal = "orders-service"
//! token = "s3cret"
//! permissions = [
//!   { topic = "orders", ops = ["read", "write"] },
//!   { topic = "audit.*", ops = ["read"] },
//!   { topic = "*", ops = ["admin"] },
//! ]
//! quota = { records_per_sec = 100 }  # overrides [grpc.quota] for this principal
//! ```
//!
//! Every table rejects unknown keys, so a misspelt setting fails at start instead of being
//! silently ignored (an ignored `[grpc.auth]` would leave the server open).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
pub use spindle_engine::access::Operation;

use crate::auth::Authenticator;
use crate::limits;
use crate::quota::Quotas;
use crate::GatewayError;

/// The `[grpc]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Whether the gateway runs at all (default `true`).
    pub enabled: bool,
    /// Address the gRPC server listens on (default `127.0.0.1:50051`).
    pub listen: SocketAddr,
    /// Worker threads of the gateway's own tokio runtime (default 2).
    pub runtime_threads: usize,
    /// TLS material; `None` serves plaintext HTTP/2.
    pub tls: Option<TlsConfig>,
    /// Bearer tokens and their permissions; `None` allows every call.
    pub auth: Option<AuthConfig>,
    /// Default quota of every principal; `None` is unlimited.
    pub quota: Option<QuotaConfig>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            runtime_threads: limits::RUNTIME_THREADS_DEFAULT,
            tls: None,
            auth: None,
            quota: None,
        }
    }
}

impl GatewayConfig {
    /// Checks what can be checked without starting anything: the thread count, the tokens and
    /// their grants, and the quotas. `spindle serve` calls it with the rest of the configuration,
    /// before the engine opens the data directory, and so does `spindle config check`.
    ///
    /// # Errors
    /// [`GatewayError::Config`] saying what is wrong.
    pub fn validate(&self) -> Result<(), GatewayError> {
        if !(1..=limits::RUNTIME_THREADS_MAX).contains(&self.runtime_threads) {
            return Err(GatewayError::Config(format!(
                "runtime_threads must be 1..={}, not {}",
                limits::RUNTIME_THREADS_MAX,
                self.runtime_threads
            )));
        }
        Authenticator::new(self.auth.as_ref())?;
        Quotas::new(self.quota, self.auth.as_ref())?;
        Ok(())
    }
}

/// `[grpc.tls]`: the server's certificate chain and private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_path: PathBuf,
    /// PEM private key of the leaf certificate.
    pub key_path: PathBuf,
    /// PEM CA certificates whose client certificates are required (absent: none asked for).
    /// A call without a bearer token then runs as the principal its certificate's common name
    /// names.
    #[serde(default)]
    pub client_ca_path: Option<PathBuf>,
}

/// `[grpc.auth]`: the tokens the gateway accepts.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Every accepted token; a call with any other token, or none, is UNAUTHENTICATED.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

/// One `[[grpc.auth.tokens]]` entry: a bearer token and what its principal may do.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Name of the principal, used in logs and for quotas.
    pub principal: String,
    /// The secret sent as `authorization: Bearer <token>`.
    pub token: String,
    /// What the principal may do, on which topics.
    #[serde(default)]
    pub permissions: Vec<PermissionConfig>,
    /// The Kafka transactional ids the principal may use (`name`, `prefix*` or `*`); absent:
    /// any.
    pub transactional_ids: Option<Vec<String>>,
    /// The consumer groups the principal may use, over Kafka and gRPC (`name`, `prefix*` or
    /// `*`); absent: any.
    pub groups: Option<Vec<String>>,
    /// This principal's quota, replacing `[grpc.quota]`.
    pub quota: Option<QuotaConfig>,
}

impl std::fmt::Debug for TokenConfig {
    // The token is a secret: it never reaches a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("principal", &self.principal)
            .field("token", &"<redacted>")
            .field("permissions", &self.permissions)
            .field("transactional_ids", &self.transactional_ids)
            .field("groups", &self.groups)
            .field("quota", &self.quota)
            .finish()
    }
}

/// One permission: operations allowed on the topics a pattern matches.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionConfig {
    /// `name` (exactly that topic), `prefix*` (topics starting with `prefix`) or `*` (all).
    pub topic: String,
    /// Operations allowed.
    pub ops: Vec<Operation>,
}

/// A per-principal rate limit (token buckets holding one second of budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Records produced per second; `None` is unlimited.
    pub records_per_sec: Option<u64>,
    /// Record bytes (keys, values, headers) produced per second; `None` is unlimited.
    pub bytes_per_sec: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_table_is_the_default() {
        let config: GatewayConfig = toml::from_str("").unwrap();
        assert_eq!(config, GatewayConfig::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:50051");
    }

    #[test]
    fn the_documented_example_parses() {
        let text = r#"
            enabled = true
            listen = "127.0.0.1:0"
            runtime_threads = 3
            [tls]
            cert_path = "server.pem"
            key_path = "server.key"
            [quota]
            records_per_sec = 10000
            [[auth.tokens]]
            principal = "orders-service"
            token = "s3cret"
            permissions = [{ topic = "orders", ops = ["read", "write"] }, { topic = "*", ops = ["admin"] }]
            quota = { records_per_sec = 100 }
        "#;
        let config: GatewayConfig = toml::from_str(text).unwrap();
        assert_eq!(config.runtime_threads, 3);
        let auth = config.auth.unwrap();
        assert_eq!(
            auth.tokens[0].permissions[0].ops,
            [Operation::Read, Operation::Write]
        );
        assert_eq!(auth.tokens[0].quota.unwrap().records_per_sec, Some(100));
        assert!(!format!("{:?}", auth.tokens[0]).contains("s3cret"));
    }

    #[test]
    fn a_misspelt_key_is_refused() {
        assert!(toml::from_str::<GatewayConfig>("[auht]\ntokens = []").is_err());
        assert!(toml::from_str::<GatewayConfig>(
            "[[auth.tokens]]\nprincipal = \"a\"\ntoken = \"t\"\npermisions = []"
        )
        .is_err());
        let bad_op = "[[auth.tokens]]\nprincipal = \"a\"\ntoken = \"t\"\npermissions = [{ topic = \"x\", ops = [\"delete\"] }]";
        assert!(toml::from_str::<GatewayConfig>(bad_op).is_err());
    }
}
