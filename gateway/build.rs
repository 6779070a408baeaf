//! Compiles `proto/spindle/v1/*.proto` into the gRPC server and client code and the file
//! descriptor set that server reflection serves.
//!
//! `protoc` comes from the `protoc-bin-vendored` crate, so building needs no system protoc.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "proto/spindle/v1/record.proto",
    "proto/spindle/v1/producer.proto",
    "proto/spindle/v1/consumer.proto",
    "proto/spindle/v1/admin.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    config.bytes(["."]);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("spindle_v1_descriptor.bin"))
        .compile_with_config(config, PROTOS, &["proto"])?;
    Ok(())
}
