//! The network layer's error type.

use std::net::SocketAddr;

/// Everything the Kafka server can fail with outside a single connection (a connection's own
/// failures are logged and end that connection alone).
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is inconsistent.
    #[error("invalid Kafka server configuration: {0}")]
    Config(String),
    /// A file of the node's own state in the data directory cannot be used.
    #[error("{0}")]
    State(String),
}
