//! Command line and environment. Every setting is a flag and an `EXTAPPS_*`
//! environment variable with a documented default (see the README table).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The database used when none is configured: an SQLite file in the working
/// directory, created on first use.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://extapps.db?mode=rwc";

/// extapps: registry of external OAuth applications and their token authority.
#[derive(Debug, Parser)]
#[command(name = "extapps-server", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Args)]
pub struct GlobalOptions {
    /// Database URL: `sqlite://PATH?mode=rwc` or `postgres://USER:PASSWORD@HOST/DB`.
    #[arg(long, env = "EXTAPPS_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true, hide_env_values = true)]
    pub database_url: String,

    /// Resource catalog file (TOML). Default: the catalog built into the server.
    #[arg(long, env = "EXTAPPS_CATALOG", global = true)]
    pub catalog: Option<PathBuf>,

    /// Log filter, in `tracing` env-filter syntax.
    #[arg(long, env = "EXTAPPS_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Log format.
    #[arg(long, env = "EXTAPPS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

// Written by hand: the database URL may carry a password.
impl std::fmt::Debug for GlobalOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalOptions")
            .field("database_url", &"[REDACTED]")
            .field("catalog", &self.catalog)
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: gRPC and the OAuth 2.0 endpoints on one port.
    Serve(ServeOptions),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage the keys gRPC callers authenticate with.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Clone, Args)]
pub struct ServeOptions {
    /// Address to listen on.
    #[arg(long, env = "EXTAPPS_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Do not apply migrations at startup; refuse to start if any is pending.
    #[arg(long, env = "EXTAPPS_NO_MIGRATE")]
    pub no_migrate: bool,

    /// Lifetime of access tokens, e.g. `1h` or `15m`.
    #[arg(long, env = "EXTAPPS_TOKEN_TTL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub token_ttl: Duration,

    /// Issuer identifier (RFC 8414): the base URL clients reach this server
    /// at. Default: `http://` and the listen address.
    #[arg(long, env = "EXTAPPS_ISSUER")]
    pub issuer: Option<String>,

    /// How long shutdown waits for in-flight calls before closing, e.g. `30s`.
    #[arg(long, env = "EXTAPPS_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// PEM certificate chain to serve TLS with (gRPC and OAuth alike).
    /// Without it the port speaks plaintext: keep it on loopback or behind a
    /// TLS proxy.
    #[arg(long, env = "EXTAPPS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "EXTAPPS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificates: every client must present a certificate signed
    /// by one of them (mutual TLS), on top of its bearer key.
    #[arg(long, env = "EXTAPPS_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it, once, alone on standard output.
    Create {
        /// The organization the key belongs to (all roles but `operator`).
        #[arg(long)]
        organization: Option<String>,
        /// What the key may do.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Bind an `introspect` key to a resource (repeatable): it then sees
        /// only tokens whose audience includes one of them.
        #[arg(long = "resource")]
        resources: Vec<String>,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key at once.
    Revoke {
        /// The key ID shown by `keys create` and `keys list`.
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Admin,
    Introspect,
    Signin,
    Operator,
}
