//! extapps server library: the registry of external OAuth applications.
//!
//! `domain` holds the rules, `store` the persistence, `service` the use cases,
//! `grpc` and `oauth` the transports, `server` the network, `commands` the binary's
//! subcommands. The binary `extapps-server` is a thin shell around
//! [`commands::run`].

pub mod commands;
pub mod config;
pub mod connections;
pub mod domain;
pub mod grpc;
pub mod issuers;
pub mod key_file;
pub mod metrics;
pub mod oauth;
pub mod server;
pub mod service;
pub mod source;
mod spans;
pub mod store;
pub mod tls;

#[cfg(test)]
mod layer_rules;
