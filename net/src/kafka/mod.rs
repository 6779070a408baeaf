//! The Kafka wire-protocol server.
//!
//! Every shard runs the whole server: it binds the Kafka port itself (see `listener`), reads
//! its connections, and answers each request through its [`spindle_engine::Shard`] context,
//! which serves local partitions in place and routes the rest over the engine's mesh.
//!
//! A request travels: `frame` (length-prefixed bytes) → `dispatch` (header and body decoded
//! with the `kafka-protocol` crate, routed to one file under `api/`, answer encoded) →
//! `connection` (answers written strictly in request order). `versions` is the single table
//! of the API versions served: dispatch refuses what is not in it and ApiVersions advertises it.

mod acl;
mod answer;
mod api;
mod config;
mod config_resource;
mod connection;
mod connections;
mod context;
mod dispatch;
mod error_code;
mod fetch_session;
mod frame;
mod listener;
mod quota;
mod quota_changes;
mod response_failure;
mod sasl;
mod tls;
mod versions;
mod wire;

pub use config::KafkaConfig;
pub use listener::{reserve_listen_addr, start, ListenReservation};
pub use quota::ClientQuota;
pub use sasl::{SaslConfig, SaslMechanism};
pub use tls::TlsConfig;
