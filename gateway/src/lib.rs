//! Spindle's gRPC gateway: produce, subscribe and administer over gRPC.
//!
//! The services (`spindle.v1.Producer`, `Consumer`, `Admin`, plus the standard
//! `grpc.health.v1.Health` and server reflection) run on a tokio runtime of their own, started
//! by [`Gateway::start`]; every call reaches the shards through the engine's thread-safe
//! [`spindle_engine::EngineHandle`] (see `bridge`). Where to look:
//!
//! | concern | file |
//! | --- | --- |
//! | runtime, listener, TLS, shutdown | `bridge.rs` |
//! | the `[grpc]` configuration | `config.rs` |
//! | bearer tokens and per-topic permissions | `auth.rs` |
//! | per-principal quotas | `quota.rs` |
//! | engine errors as gRPC statuses | `status.rs` |
//! | produce, subscribe, admin | `service/` |
//! | decoding stored Kafka batches | `batch_decoder.rs` |
//! | decompressing them, bounded | `spindle_log::batch::codec` |
//! | committed offsets through the group coordinator | `committed_offsets.rs` |
//! | subscribers as consumer group members | `group_member.rs` |
//! | their subscriptions and assignments in Kafka's format | `spindle_engine::group::consumer_protocol` |
//! | gRPC calls counted by method | `call_metrics.rs` |
//! | every bound | `limits.rs` |
//!
//! The generated code is public in [`proto`] so Rust clients share the server's types.
#![deny(missing_docs)]

mod auth;
mod batch_decoder;
mod bridge;
mod call_metrics;
mod committed_offsets;
mod config;
mod error;
mod gauges;
mod group_member;
pub mod limits;
mod partitioner;
mod produce_memory;
pub mod proto;
mod quota;
mod service;
mod status;
mod topic_cache;

pub use auth::{Authenticator, Principal, TopicPattern};
pub use bridge::Gateway;
pub use call_metrics::CallMetrics;
pub use config::{
    AuthConfig, GatewayConfig, Operation, PermissionConfig, QuotaConfig, TlsConfig, TokenConfig,
};
pub use error::GatewayError;
pub use partitioner::{key_partition, murmur2};
