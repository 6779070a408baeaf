//! TLS on the Kafka listener: Kafka's `SSL` security protocol, and `SASL_SSL` with
//! `kafka.sasl_mechanisms`.
//!
//! With `[kafka.tls]` every connection begins with a TLS handshake (rustls, the ring provider,
//! TLS 1.2 and 1.3); the Kafka protocol then runs inside it unchanged. A client that speaks
//! plaintext, or that does not finish its handshake within [`TLS_HANDSHAKE_TIMEOUT`], is closed
//! with a warning naming the peer, and nothing else is affected. The certificate and key are
//! read once at start.
//!
//! With a client CA ([`TlsConfig::require_client_certs`], Kafka's `ssl.client.auth=required`)
//! every client must present a certificate that CA signed, and the certificate names the
//! connection's principal (see [`ClientAuth::principal_of`]) unless SASL runs inside the TLS,
//! whose login then decides, as on Kafka's `SASL_SSL` listeners.

use std::path::Path;
use std::sync::Arc;

use futures_rustls::rustls::crypto::ring;
use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::server::danger::ClientCertVerifier;
use futures_rustls::rustls::server::WebPkiClientVerifier;
use futures_rustls::rustls::{RootCertStore, ServerConfig};
use spindle_engine::access::{Credentials, Principal};

use crate::NetError;

/// The listener's TLS settings, loaded.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub(crate) server: Arc<ServerConfig>,
    /// Whether clients must present certificates, and who they are then.
    pub(crate) client_auth: Option<ClientAuth>,
}

/// How a client certificate names a principal.
#[derive(Debug, Clone)]
pub(crate) struct ClientAuth {
    /// The configured principals; `None` when none is, and every verified client may do
    /// everything (as on a Kafka listener without an authorizer).
    principals: Option<Arc<Credentials>>,
}

impl TlsConfig {
    /// The principals client certificates name, when certificates are required and principals
    /// configured.
    pub(crate) fn principals(&self) -> Option<&Credentials> {
        self.client_auth.as_ref()?.principals.as_deref()
    }

    /// Loads a PEM certificate chain (the server's certificate first) and its PEM private key
    /// (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    /// [`NetError::Config`] naming the file that cannot be read or holds no usable certificate
    /// or key, or a key that does not match the certificate.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, NetError> {
        Self::build(cert_path, key_path, None)
    }

    /// As [`TlsConfig::load`], and every client must present a certificate signed by a CA of
    /// the PEM file `client_ca_path`. Its subject's common name (CN) is the principal's name,
    /// looked up in `principals`; a certificate that names none of them is refused after the
    /// handshake. With no principals configured every verified client may do everything.
    ///
    /// # Errors
    /// As [`TlsConfig::load`], and for a CA file that cannot be read or holds no certificate.
    pub fn require_client_certs(
        cert_path: &Path,
        key_path: &Path,
        client_ca_path: &Path,
        principals: Option<Arc<Credentials>>,
    ) -> Result<Self, NetError> {
        let mut roots = RootCertStore::empty();
        for cert in read_certs(client_ca_path)? {
            roots.add(cert).map_err(|e| {
                bad(
                    client_ca_path,
                    "holds a CA certificate that cannot be used",
                    &e,
                )
            })?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(ring::default_provider()),
        )
        .build()
        .map_err(|e| bad(client_ca_path, "cannot verify client certificates", &e))?;
        Self::build(
            cert_path,
            key_path,
            Some((
                verifier,
                ClientAuth {
                    principals: principals.filter(|p| !p.is_empty()),
                },
            )),
        )
    }

    fn build(
        cert_path: &Path,
        key_path: &Path,
        client_auth: Option<(Arc<dyn ClientCertVerifier>, ClientAuth)>,
    ) -> Result<Self, NetError> {
        let certs = read_certs(cert_path)?;
        let key = PrivateKeyDer::from_pem_file(key_path)
            .map_err(|e| bad(key_path, "holds no usable private key", &e))?;
        let builder = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| NetError::Config(format!("TLS: {e}")))?;
        let (builder, client_auth) = match client_auth {
            Some((verifier, auth)) => (builder.with_client_cert_verifier(verifier), Some(auth)),
            None => (builder.with_no_client_auth(), None),
        };
        let server = builder
            .with_single_cert(certs, key)
            .map_err(|e| bad(key_path, "does not fit the certificate", &e))?;
        Ok(Self {
            server: Arc::new(server),
            client_auth,
        })
    }
}

impl ClientAuth {
    /// The principal of a connection whose handshake verified `peer` (the client's chain, leaf
    /// first), as [`ClientAuth::principal_of`] its leaf.
    ///
    /// # Errors
    /// As [`ClientAuth::principal_of`], and for a connection that presented no certificate.
    pub(crate) fn principal_of_peer(
        &self,
        peer: Option<&[CertificateDer<'_>]>,
    ) -> Result<Principal, String> {
        match peer.and_then(<[_]>::first) {
            Some(leaf) => self.principal_of(leaf),
            None => Err("no client certificate".to_owned()),
        }
    }

    /// The principal the verified client certificate `cert` names: the principal called as its
    /// subject's common name, or the anonymous principal when no principal is configured.
    ///
    /// # Errors
    /// A message for a certificate without a common name, or one that names no principal.
    pub(crate) fn principal_of(&self, cert: &CertificateDer<'_>) -> Result<Principal, String> {
        match &self.principals {
            None => {
                // Still a certificate with a subject: refuse what Kafka would not map.
                spindle_engine::access::common_name(cert.as_ref())?;
                Ok(Principal::anonymous())
            }
            Some(principals) => principals.by_certificate(cert.as_ref()).cloned(),
        }
    }
}

fn bad(path: &Path, what: &str, e: &dyn std::fmt::Display) -> NetError {
    NetError::Config(format!("{} {what}: {e}", path.display()))
}

/// The certificates of a PEM file, at least one.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(path, "cannot be read as PEM", &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(path, "holds a certificate that does not parse", &e))?;
    if certs.is_empty() {
        return Err(bad(path, "holds no certificate", &"no CERTIFICATE block"));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spindle_engine::access::{Grant, Operation, TopicPattern};

    fn cert(common_name: Option<&str>) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = common_name {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Spindle tests");
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    fn principals() -> Arc<Credentials> {
        let app = Principal::new(
            "app",
            vec![Grant {
                pattern: TopicPattern::parse("app.*").unwrap(),
                ops: vec![Operation::Read],
            }],
        );
        Arc::new(Credentials::new([("app-token".to_owned(), app)]).unwrap())
    }

    #[test]
    fn the_common_name_names_the_principal() {
        let auth = ClientAuth {
            principals: Some(principals()),
        };
        let app = auth.principal_of(&cert(Some("app"))).unwrap();
        assert_eq!(app.name(), "app");
        assert!(app.allows(Operation::Read, "app.events"));
        assert!(!app.allows(Operation::Read, "billing"));
        let err = auth.principal_of(&cert(Some("mallory"))).unwrap_err();
        assert!(err.contains("CN=mallory names no principal"), "{err}");
        let err = auth.principal_of(&cert(None)).unwrap_err();
        assert!(err.contains("no common name"), "{err}");
        // Without principals configured, any verified client may do everything.
        let open = ClientAuth { principals: None };
        let anyone = open.principal_of(&cert(Some("mallory"))).unwrap();
        assert!(anyone.allows(Operation::Admin, "billing"));
    }
}
