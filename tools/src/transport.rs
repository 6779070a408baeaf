//! The byte stream under the admin commands' and `spindle-bench kafka`'s Kafka connections:
//! plain TCP, or TLS (rustls) when a CA to trust is given, presenting a client certificate when
//! one is given too ([`TlsArgs`]).
//!
//! Both clients are synchronous: a [`Stream`] is a blocking socket with [`Read`] and [`Write`].
//! The load generator's producers also [`Stream::split`] theirs into a writing and a reading
//! half on two threads. Over plain TCP each half is a duplicate of the socket. Over TLS both
//! halves share the one rustls session behind a mutex that is held only while records are
//! sealed or opened, never across a blocking socket call: a writer stalled on a full socket
//! buffer (the broker not reading until its answers are read) then cannot keep the reader from
//! reading those answers. Only the writing half sends what the session produces, so records
//! reach the socket in the order they were sealed (anything the reading half's records make
//! the session owe the peer, such as a TLS 1.3 key update, goes out with the next request).

use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use clap::Args;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::sasl::SaslLogin;

/// The TLS flags of a command that connects to Kafka listeners.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Connect with TLS, trusting the CA certificates in this PEM file (a Kafka client's
    /// `ssl.ca.location`; on Spindle the listener has `[kafka.tls]`).
    #[arg(long, global = true, env = "SPINDLE_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// The name the server's certificate must carry, when it is not the host of the address
    /// connected to (an IP address there is checked as an IP address).
    #[arg(long, global = true, requires = "tls_ca", value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// A client certificate (PEM chain) to present, for a listener that asks for one (on
    /// Spindle: `[kafka.tls] client_ca_path`; its common name is the principal).
    #[arg(long, global = true, requires_all = ["tls_ca", "tls_key"], env = "SPINDLE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long,
        global = true,
        requires = "tls_cert",
        env = "SPINDLE_TLS_KEY",
        value_name = "FILE"
    )]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The TLS client these flags ask for, `None` without `--tls-ca`.
    ///
    /// # Errors
    /// A message naming the CA file that cannot be read or holds no certificate.
    pub fn client(&self) -> Result<Option<TlsClient>, String> {
        let Some(ca) = &self.tls_ca else {
            return Ok(None);
        };
        let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(trusted_roots(ca)?);
        let config = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let (chain, key) = client_identity(cert, key)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("--tls-key {}: {e}", cert.display()))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Some(TlsClient {
            config: Arc::new(config),
            server_name: self.tls_server_name.clone(),
        }))
    }
}

/// The CA certificates of the PEM file `ca` (`--tls-ca`), at least one.
fn trusted_roots(ca: &Path) -> Result<RootCertStore, String> {
    let bad = |e: &dyn std::fmt::Display| format!("--tls-ca {}: {e}", ca.display());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| bad(&e))? {
        roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    }
    if roots.is_empty() {
        return Err(bad(&"no CERTIFICATE block"));
    }
    Ok(roots)
}

/// The client certificate chain of `cert` (`--tls-cert`) and its private key `key`
/// (`--tls-key`).
fn client_identity(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let bad = |flag: &str, path: &Path, e: &dyn std::fmt::Display| {
        format!("{flag} {}: {e}", path.display())
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("--tls-cert", cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("--tls-cert", cert, &e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("--tls-key", key, &e))?;
    Ok((chain, key))
}

/// How a client reaches the brokers: over TLS or not, logged in with SASL or not.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// TLS, when the listeners serve it.
    pub tls: Option<TlsClient>,
    /// The SASL login each connection starts with, when the listeners ask for one.
    pub login: Option<SaslLogin>,
}

/// How to open TLS sessions: the CAs trusted, and the server name to check if not the host's.
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
}

/// A connected socket, plain or TLS.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: a session is large).
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// Connects to the first address `addr` (host:port) resolves to that accepts within
    /// `timeout`, with Nagle off (requests are whole frames already), and with `tls` completes
    /// the TLS handshake before returning, within the same `timeout`.
    ///
    /// # Errors
    /// Resolution, connection and handshake errors (a certificate the CAs do not vouch for,
    /// a plaintext listener), each with the address.
    pub fn connect(addr: &str, tls: Option<&TlsClient>, timeout: Duration) -> io::Result<Self> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address resolved");
        let mut socket = None;
        for resolved in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&resolved, timeout) {
                Ok(s) => {
                    socket = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let socket = socket.ok_or(last)?;
        socket.set_nodelay(true)?;
        let Some(tls) = tls else {
            return Ok(Self::Plain(socket));
        };
        let name = match &tls.server_name {
            Some(name) => name.as_str(),
            None => host_of(addr),
        };
        let name = match name.parse::<IpAddr>() {
            Ok(ip) => ServerName::from(ip),
            Err(_) => ServerName::try_from(name.to_owned()).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("server name {name:?}: {e}"),
                )
            })?,
        };
        let session = ClientConnection::new(Arc::clone(&tls.config), name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut stream = StreamOwned::new(session, socket);
        stream.sock.set_read_timeout(Some(timeout))?;
        stream.sock.set_write_timeout(Some(timeout))?;
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake with {addr}: {e}")))?;
        }
        // As over plain TCP, the caller sets the timeouts its calls need.
        stream.sock.set_read_timeout(None)?;
        stream.sock.set_write_timeout(None)?;
        Ok(Self::Tls(Box::new(stream)))
    }

    /// The TCP socket underneath.
    pub fn socket(&self) -> &TcpStream {
        match self {
            Self::Plain(socket) => socket,
            Self::Tls(tls) => &tls.sock,
        }
    }

    /// Splits into a writing and a reading half over the same connection (see the module
    /// docs).
    ///
    /// # Errors
    /// Failure to duplicate the socket.
    pub fn split(self) -> io::Result<(WriteHalf, ReadHalf)> {
        let (session, socket) = match self {
            Self::Plain(socket) => {
                let read = socket.try_clone()?;
                return Ok((
                    WriteHalf {
                        socket,
                        session: None,
                    },
                    ReadHalf {
                        socket: read,
                        session: None,
                    },
                ));
            }
            Self::Tls(tls) => {
                let StreamOwned { mut conn, sock } = *tls;
                // A request larger than rustls's default 64 KiB of pending records is sealed
                // whole: the writing half sends all it seals at once.
                conn.set_buffer_limit(None);
                (Arc::new(Mutex::new(conn)), sock)
            }
        };
        let read = socket.try_clone()?;
        Ok((
            WriteHalf {
                socket,
                session: Some(Arc::clone(&session)),
            },
            ReadHalf {
                socket: read,
                session: Some(session),
            },
        ))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(socket) => socket.read(buf),
            Self::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(socket) => socket.write(buf),
            Self::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(socket) => socket.flush(),
            Self::Tls(tls) => tls.flush(),
        }
    }
}

/// The sending half of a split [`Stream`].
pub struct WriteHalf {
    socket: TcpStream,
    session: Option<Arc<Mutex<ClientConnection>>>,
}

/// The receiving half of a split [`Stream`].
pub struct ReadHalf {
    socket: TcpStream,
    session: Option<Arc<Mutex<ClientConnection>>>,
}

impl WriteHalf {
    /// Sends all of `bytes`.
    ///
    /// # Errors
    /// I/O errors, a TLS session that failed.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(session) = &self.session else {
            return self.socket.write_all(bytes);
        };
        let mut sealed = Vec::with_capacity(bytes.len() + 64);
        {
            let mut session = lock(session);
            session.writer().write_all(bytes)?;
            while session.wants_write() {
                session.write_tls(&mut sealed)?;
            }
        }
        self.socket.write_all(&sealed)
    }
}

impl ReadHalf {
    /// The socket underneath (for its read timeout).
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(session) = &self.session else {
            return self.socket.read(buf);
        };
        // At most this much is opened per socket read, so what it adds to the session's
        // plaintext (read only when empty) stays within rustls's 16 KiB limit.
        let mut received = [0u8; 8 * 1024];
        loop {
            match lock(session).reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            // Nothing opened yet: wait for more records without holding the session.
            let n = self.socket.read(&mut received)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let mut session = lock(session);
            let mut records = &received[..n];
            while !records.is_empty() {
                session.read_tls(&mut records)?;
                session
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
        }
    }
}

/// The session, also after a thread panicked holding it (the run is failing anyway, and the
/// other half must be able to finish).
fn lock(session: &Mutex<ClientConnection>) -> MutexGuard<'_, ClientConnection> {
    session.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The host part of `host:port` (an IPv6 literal loses its brackets).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_what_precedes_the_port() {
        assert_eq!(host_of("broker.example:9093"), "broker.example");
        assert_eq!(host_of("127.0.0.1:9092"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9092"), "::1");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("spindle-tls-args-{}", std::process::id()));
        std::fs::write(&dir, "not a certificate\n").unwrap();
        let args = TlsArgs {
            tls_ca: Some(dir.clone()),
            tls_server_name: None,
            tls_cert: None,
            tls_key: None,
        };
        let err = args.client().unwrap_err();
        std::fs::remove_file(&dir).unwrap();
        assert!(
            err.contains("--tls-ca") && err.contains("no CERTIFICATE"),
            "{err}"
        );
        let missing = TlsArgs {
            tls_ca: Some("/nonexistent/ca.pem".into()),
            tls_server_name: None,
            tls_cert: None,
            tls_key: None,
        };
        assert!(missing
            .client()
            .unwrap_err()
            .contains("/nonexistent/ca.pem"));
    }
}
