//! The gateway's error type: what can go wrong starting or running it. Errors of single calls
//! are `tonic::Status` values built in [`crate::status`].

/// Errors starting or running the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The `[grpc]` configuration is inconsistent.
    #[error("invalid [grpc] configuration: {0}")]
    Config(String),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A TLS certificate or key file cannot be read.
    #[error("cannot read TLS file {path}: {source}")]
    TlsFile {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The gateway's tokio runtime cannot be built.
    #[error("cannot start the gRPC runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The gRPC server failed to start (bad TLS material, for one).
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The reflection service cannot load the compiled descriptors.
    #[error("server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}
