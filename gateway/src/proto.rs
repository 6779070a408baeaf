//! The generated gRPC code for `spindle.v1`: messages, server traits and clients.
//!
//! Public so that Rust clients (`spindle-bench grpc`) use the same types the server serves:
//! `spindle_gateway::proto::producer_client::ProducerClient` and so on.
#![allow(missing_docs)]

tonic::include_proto!("spindle.v1");

/// The encoded file descriptor set of `spindle.v1`, served by server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("spindle_v1_descriptor");
