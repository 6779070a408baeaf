//! The Kafka wire-protocol server.

mod api;
mod context;
