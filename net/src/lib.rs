//! Spindle's network layer: the Kafka wire-protocol server that runs on every shard.
//!
//! [`kafka::start`] binds a shard's listener and serves Kafka clients from it; everything a
//! request needs from the data (produce, fetch, topics) goes through the shard's
//! [`spindle_engine::Shard`] context, which routes to the owning shard.
#![deny(missing_docs)]

mod error;
pub mod kafka;
pub mod limits;

pub use error::NetError;
