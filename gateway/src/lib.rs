//! Spindle's gRPC gateway: produce, subscribe and administer over gRPC.
#![deny(missing_docs)]

use std::net::SocketAddr;

use spindle_engine::EngineHandle;

/// The gateway's configuration: the `[grpc]` table of the server's TOML file.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Whether the gateway runs at all.
    pub enabled: bool,
    /// Address the gRPC server listens on.
    pub listen: SocketAddr,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
        }
    }
}

/// Errors starting or running the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Placeholder until the gateway lands.
    #[error("the gRPC gateway is not built yet")]
    NotBuilt,
}

/// A running gateway: its own tokio runtime serving gRPC.
pub struct Gateway {
    _private: (),
}

impl Gateway {
    /// Starts serving on its own tokio runtime threads; every call becomes a message to the
    /// owning shard through `engine`.
    ///
    /// # Errors
    /// The listen address cannot be bound, TLS material cannot be read.
    pub fn start(config: GatewayConfig, engine: EngineHandle) -> Result<Gateway, GatewayError> {
        let _ = (config, engine);
        Err(GatewayError::NotBuilt)
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        todo!()
    }

    /// Stops accepting, ends streams and joins the runtime.
    pub fn shutdown(self) {}
}
