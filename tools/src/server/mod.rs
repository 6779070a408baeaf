//! `spindle serve`: configuration and the running node.
//!
//! [`config`] merges the TOML file, `SPINDLE_*` variables and flags into one validated
//! [`config::ServeConfig`]; [`preflight`] checks the machine can run glommio; [`node`] starts
//! the engine with the Kafka server on every shard and the gRPC gateway beside it, prints the
//! ready line, and stops cleanly on SIGINT/SIGTERM. [`alloc`] is the binary's global allocator,
//! which keeps hostile array lengths on the wire from aborting the process. [`admin_http`] serves
//! `/metrics`, `/health` and `/ready`.

pub mod admin_http;
pub mod alloc;
pub mod cluster_id;
pub mod config;
pub mod node;
pub mod preflight;
