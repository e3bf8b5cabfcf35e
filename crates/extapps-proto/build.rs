//! Compiles `proto/` with the pure-Rust `protox` compiler, so a fresh machine
//! needs no `protoc`, and keeps the descriptor set (with comments) for server
//! reflection.

use std::{env, error::Error, fs, path::PathBuf};

use prost::Message;

const FILES: &[&str] = &[
    "extapps/v1/application.proto",
    "extapps/v1/audit.proto",
    "extapps/v1/external_applications.proto",
    "extapps/v1/resource.proto",
    "extapps/v1/signin.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    println!("cargo:rerun-if-changed={}", root.display());

    let descriptors = protox::compile(FILES, [&root])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("extapps_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
