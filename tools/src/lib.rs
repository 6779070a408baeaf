//! The code behind the `spindle` and `spindle-bench` binaries.
#![deny(missing_docs)]

pub mod admin;
pub mod bench;
pub mod sasl;
pub mod server;
pub mod transport;
