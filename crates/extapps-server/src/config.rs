//! Command line and environment. Every setting is a flag and an `EXTAPPS_*`
//! environment variable with a documented default (see the README table).

use std::{
    net::SocketAddr,
    num::{NonZeroU32, NonZeroUsize},
    path::PathBuf,
    time::Duration,
};

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

    /// How long a call waits for a database connection before it fails with
    /// `UNAVAILABLE` (while the database is down, calls fail this fast).
    #[arg(long, env = "EXTAPPS_DB_ACQUIRE_TIMEOUT", default_value = "2s", value_parser = timeout, global = true)]
    pub db_acquire_timeout: Duration,

    /// Resource catalog file (TOML). Default: the catalog built into the server.
    #[arg(long, env = "EXTAPPS_CATALOG", global = true)]
    pub catalog: Option<PathBuf>,

    /// Key file: the key ring that seals access tokens, shared by every
    /// replica. Default: `EXTAPPS_KEY_RING`, else, on SQLite, a file beside
    /// the database (`extapps.keys`), created on first start.
    #[arg(long, env = "EXTAPPS_KEY_FILE", global = true)]
    pub key_file: Option<PathBuf>,

    /// The key ring itself (a key file's content), for orchestrators that
    /// inject secrets as environment variables. Set it in the environment,
    /// not on the command line.
    #[arg(
        long,
        env = "EXTAPPS_KEY_RING",
        global = true,
        hide_env_values = true,
        conflicts_with = "key_file"
    )]
    pub key_ring: Option<String>,

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
            .field("db_acquire_timeout", &self.db_acquire_timeout)
            .field("catalog", &self.catalog)
            .field("key_file", &self.key_file)
            .field("key_ring", &self.key_ring.as_ref().map(|_| "[REDACTED]"))
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .finish()
    }
}

/// A timeout setting: a humantime duration between 1 ms and one day (zero
/// would close every connection at once, or spin).
fn timeout(text: &str) -> Result<Duration, String> {
    let value = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if value < Duration::from_millis(1) || value > Duration::from_secs(86_400) {
        return Err("must be between 1ms and 24h".into());
    }
    Ok(value)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: gRPC and the OAuth 2.0 endpoints on one port.
    Serve(Box<ServeOptions>),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage the keys gRPC callers authenticate with.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage the key ring that seals access tokens (the key file).
    #[command(subcommand)]
    KeyRing(KeyRingCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeyRingCommand {
    /// Create a key file with one key (refuses to overwrite one).
    Create,
    /// List the keys of the key file: ID, creation time, state.
    List,
    /// Add a fresh key that seals from now on; older keys still open what
    /// they sealed. With `--staged`, the key only opens until promoted: stage
    /// it, give every replica the file, then promote it.
    Rotate {
        #[arg(long)]
        staged: bool,
    },
    /// Make a staged key the one that seals.
    Promote {
        /// The key's ID, as `key-ring list` shows it.
        id: String,
    },
    /// Remove a key: tokens and page tokens it sealed stop working.
    Retire {
        /// The key's ID, as `key-ring list` shows it.
        id: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServeOptions {
    /// Address to listen on.
    #[arg(long, env = "EXTAPPS_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Do not apply migrations at startup; refuse to start if any is pending.
    #[arg(long, env = "EXTAPPS_NO_MIGRATE")]
    pub no_migrate: bool,

    /// Answer every request from the database, never from this replica's
    /// caches (it then does not follow other replicas' changes either):
    /// for troubleshooting, and to measure what the caches are worth.
    #[arg(long, env = "EXTAPPS_NO_CACHES")]
    pub no_caches: bool,

    /// Lifetime of access tokens, e.g. `1h` or `15m`.
    #[arg(long, env = "EXTAPPS_TOKEN_TTL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub token_ttl: Duration,

    /// Issuer identifier (RFC 8414): the base URL clients reach this server
    /// at. Default: `http://` and the listen address.
    #[arg(long, env = "EXTAPPS_ISSUER")]
    pub issuer: Option<String>,

    /// The platform's sign-in front end: `GET /oauth2/authorize` sends the
    /// browser there, with `?authorization_request={id}`, to sign the user
    /// in and ask for consent. Without it, user access is off and the
    /// endpoint says so.
    #[arg(long, env = "EXTAPPS_SIGNIN_URL")]
    pub signin_url: Option<url::Url>,

    /// How long a pending authorization request waits for the user.
    #[arg(long, env = "EXTAPPS_AUTHORIZATION_REQUEST_TTL", default_value = "10m", value_parser = timeout)]
    pub authorization_request_ttl: Duration,

    /// How long an authorization code may be redeemed.
    #[arg(long, env = "EXTAPPS_CODE_TTL", default_value = "60s", value_parser = timeout)]
    pub code_ttl: Duration,

    /// A refresh token unused for this long stops working (rotation starts
    /// it again).
    #[arg(long, env = "EXTAPPS_REFRESH_IDLE_TTL", default_value = "30days", value_parser = humantime::parse_duration)]
    pub refresh_idle_ttl: Duration,

    /// Nothing of a user's authorization with `offline_access` works after
    /// this, however often it is refreshed.
    #[arg(long, env = "EXTAPPS_REFRESH_LIFETIME", default_value = "90days", value_parser = humantime::parse_duration)]
    pub refresh_lifetime: Duration,

    /// How long the refresh token just replaced still gets its successor
    /// again (a client that lost the answer retries); any other reuse
    /// revokes the whole authorization. At most 5 minutes; `0s` turns it off.
    #[arg(long, env = "EXTAPPS_REFRESH_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub refresh_grace: Duration,

    /// How long shutdown waits for in-flight calls before closing, e.g. `30s`.
    #[arg(long, env = "EXTAPPS_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// A new connection must send its first request head within this; an
    /// HTTP/1 connection each later head too.
    #[arg(long, env = "EXTAPPS_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = timeout)]
    pub header_read_timeout: Duration,

    /// A request body must arrive whole within this of its head.
    #[arg(long, env = "EXTAPPS_BODY_TIMEOUT", default_value = "10s", value_parser = timeout)]
    pub body_timeout: Duration,

    /// A connection with no request in progress for this long is closed.
    #[arg(long, env = "EXTAPPS_IDLE_TIMEOUT", default_value = "60s", value_parser = timeout)]
    pub idle_timeout: Duration,

    /// Interval of HTTP/2 keep-alive pings; a peer that does not answer
    /// within the same time is dropped.
    #[arg(long, env = "EXTAPPS_HTTP2_KEEPALIVE", default_value = "20s", value_parser = timeout)]
    pub http2_keepalive: Duration,

    /// Connections open at once; further ones are closed when accepted.
    #[arg(long, env = "EXTAPPS_MAX_CONNECTIONS", default_value = "4096")]
    pub max_connections: NonZeroUsize,

    /// Connections open at once from one TCP peer address (an IPv6 peer
    /// counts as its /64). Behind a reverse proxy every connection comes from
    /// the proxy: raise it to `--max-connections` there.
    #[arg(
        long,
        env = "EXTAPPS_MAX_CONNECTIONS_PER_SOURCE",
        default_value = "1024"
    )]
    pub max_connections_per_source: NonZeroUsize,

    /// Verifications of secrets still hashed with the password-grade
    /// parameters of earlier versions (~15 ms each; a hash is replaced on
    /// its next successful use) running at once. Default: one less than
    /// the number of cores, at least one.
    #[arg(long, env = "EXTAPPS_VERIFY_WORKERS")]
    pub verify_workers: Option<NonZeroUsize>,

    /// Such slow verifications waiting for a worker; beyond this, token and
    /// revocation requests get `503` with `Retry-After` at once.
    #[arg(long, env = "EXTAPPS_VERIFY_QUEUE", default_value_t = 16)]
    pub verify_queue: usize,

    /// No longer used: secrets are not budgeted per client any more (a
    /// budget strangers could spend). Still accepted, with a warning, so
    /// deployments that set it keep starting.
    #[arg(long, env = "EXTAPPS_VERIFY_BUDGET_PER_CLIENT", hide = true)]
    pub verify_budget_per_client: Option<u32>,

    /// Slow verifications (see `--verify-workers`) per minute and source
    /// address (also the burst; an IPv6 source is its /64).
    #[arg(long, env = "EXTAPPS_VERIFY_BUDGET_PER_SOURCE", default_value = "30")]
    pub verify_budget_per_source: NonZeroU32,

    /// Failed client authentications per minute and source address (also
    /// the burst); beyond, the source gets `429` before any database read.
    /// No budget is kept per client: a stranger who knows a client ID
    /// cannot spend one to lock the client out.
    #[arg(long, env = "EXTAPPS_FAILURES_PER_SOURCE", default_value = "120")]
    pub failures_per_source: NonZeroU32,

    /// Reverse proxies in front of the server that append to
    /// `X-Forwarded-For`: the source address is read that many entries from
    /// its right end. 0 (the default) ignores the header and uses the peer.
    #[arg(long, env = "EXTAPPS_TRUSTED_PROXIES", default_value_t = 0)]
    pub trusted_proxies: usize,

    /// Outside identity providers whose tokens applications may present as
    /// federated credentials, as URL prefixes separated by commas (for
    /// example `https://token.actions.githubusercontent.com`). Their
    /// metadata and keys are fetched only under these prefixes, over https;
    /// plain http only on a loopback host named here (development, tests).
    /// None by default: no federated credential works.
    #[arg(
        long,
        env = "EXTAPPS_FEDERATION_ALLOWED_ISSUERS",
        value_delimiter = ','
    )]
    pub federation_allowed_issuers: Vec<String>,

    /// How long fetching an issuer's metadata or keys may take, in all.
    #[arg(long, env = "EXTAPPS_FEDERATION_FETCH_TIMEOUT", default_value = "5s", value_parser = timeout)]
    pub federation_fetch_timeout: Duration,

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
        /// An `introspect` or `signin` key for a service shared by every
        /// organization, instead of one organization's: it sees every
        /// organization's tokens, and introspection names each token's
        /// organization.
        #[arg(long, conflicts_with = "organization")]
        platform_wide: bool,
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
