//! TLS on the Kafka listener: Kafka's `SSL` security protocol, and `SASL_SSL` with
//! `kafka.sasl_mechanisms`.
//!
//! With `[kafka.tls]` every connection begins with a TLS handshake (rustls, the ring provider,
//! TLS 1.2 and 1.3, no client certificates); the Kafka protocol then runs inside it unchanged.
//! A client that speaks plaintext, or that does not finish its handshake within
//! [`TLS_HANDSHAKE_TIMEOUT`], is closed with a warning naming the peer, and nothing else is
//! affected. The certificate and key are read once at start.

use std::path::Path;
use std::sync::Arc;

use futures_rustls::rustls::crypto::ring;
use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::ServerConfig;

use crate::NetError;

/// The listener's TLS settings, loaded.
#[derive(Debug, Clone)]
pub struct TlsConfig(pub(crate) Arc<ServerConfig>);

impl TlsConfig {
    /// Loads a PEM certificate chain (the server's certificate first) and its PEM private key
    /// (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    /// [`NetError::Config`] naming the file that cannot be read or holds no usable certificate
    /// or key, or a key that does not match the certificate.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, NetError> {
        let bad = |path: &Path, what: &str, e: &dyn std::fmt::Display| {
            NetError::Config(format!("{} {what}: {e}", path.display()))
        };
        let certs = CertificateDer::pem_file_iter(cert_path)
            .map_err(|e| bad(cert_path, "cannot be read as PEM", &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(cert_path, "holds a certificate that does not parse", &e))?;
        if certs.is_empty() {
            return Err(bad(
                cert_path,
                "holds no certificate",
                &"no CERTIFICATE block",
            ));
        }
        let key = PrivateKeyDer::from_pem_file(key_path)
            .map_err(|e| bad(key_path, "holds no usable private key", &e))?;
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| NetError::Config(format!("TLS: {e}")))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| bad(key_path, "does not fit the certificate", &e))?;
        Ok(Self(Arc::new(config)))
    }
}
