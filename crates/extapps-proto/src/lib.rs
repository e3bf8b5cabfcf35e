//! Generated code of the `extapps.v1` gRPC API, and its file descriptor set
//! for server reflection. The API reference is the `proto/` directory.

#![allow(missing_docs, missing_debug_implementations, clippy::all)]

/// The `extapps.v1` package.
pub mod v1 {
    tonic::include_proto!("extapps.v1");
}

/// Encoded `FileDescriptorSet` of the `extapps.v1` files, comments included.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/extapps_descriptor.bin"));
