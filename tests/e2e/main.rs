//! End-to-end tests: real servers over real gRPC, on SQLite and PostgreSQL.
//! One test binary for the whole workspace, to keep builds short.
//! Shared helpers live in `support/`; every other module is a group of
//! scenarios.

// Tests state their expectations by unwrapping and panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod access;
mod attacks;
mod binary;
mod cli;
mod client_keys;
mod database_faults;
mod editing;
mod ended;
mod error_snapshots;
mod federation;
mod hostile_input;
mod hot_path;
mod key_ring;
mod listing;
mod logs;
mod persistence;
mod readme;
mod registration;
mod replicas;
mod revocations;
mod sdk;
mod secrets;
mod signin_front_end;
mod slow_clients;
mod sockets;
mod tls;
mod tokens;
mod typed_client;
mod upgrade;
mod user_access;
