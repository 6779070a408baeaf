//! Spindle's network layer: the Kafka wire-protocol server that runs on every shard.
#![deny(missing_docs)]

pub mod kafka;
