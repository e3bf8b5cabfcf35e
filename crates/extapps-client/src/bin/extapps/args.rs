//! The command line: global connection options and one subcommand per RPC,
//! named after the administrator's workflows.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use extapps_client::model::{ApplicationName, ApplicationType};

/// Manage external OAuth applications on an extapps server.
#[derive(Parser)]
#[command(name = "extapps", version, about)]
pub struct Cli {
    /// Server URL.
    #[arg(
        long,
        env = "EXTAPPS_URL",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub url: String,

    /// Caller key (from `extapps-server keys create`).
    #[arg(long, env = "EXTAPPS_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,

    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// How long a call may take, e.g. `30s`.
    #[arg(long, env = "EXTAPPS_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub timeout: Duration,

    #[command(subcommand)]
    pub command: Command,
}

/// TLS options, for an `https://` URL. Without `--ca-cert`, the system's
/// root certificates are trusted.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// PEM CA certificate to trust instead of the system's roots.
    #[arg(long, env = "EXTAPPS_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,

    /// The name the server's certificate must carry, if not the URL's host.
    #[arg(long, env = "EXTAPPS_TLS_DOMAIN", global = true)]
    pub tls_domain: Option<String>,

    /// PEM client certificate, for servers that require mutual TLS.
    #[arg(
        long,
        env = "EXTAPPS_CLIENT_CERT",
        requires = "client_key",
        global = true
    )]
    pub client_cert: Option<PathBuf>,

    /// PEM private key of `--client-cert`.
    #[arg(
        long,
        env = "EXTAPPS_CLIENT_KEY",
        requires = "client_cert",
        global = true
    )]
    pub client_key: Option<PathBuf>,
}

// Written by hand so the key never reaches a Debug output.
impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cli")
            .field("url", &self.url)
            .field("key", &self.key.as_ref().map(|_| "[REDACTED]"))
            .field("output", &self.output)
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .field("command", &self.command)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Readable tables.
    Table,
    /// JSON, for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register, inspect, edit and delete applications.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// The resource catalog.
    #[command(subcommand)]
    Resources(ResourcesCommand),
    /// Access tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
pub enum ResourcesCommand {
    /// List the resources and the user and application scopes of each.
    List,
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Tell whether an access token is active and what it may do.
    Introspect {
        /// The access token.
        token: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List changes, newest first.
    List {
        #[arg(long)]
        organization: String,
        /// Only the events of this application (its resource name).
        #[arg(long)]
        application: Option<ApplicationName>,
        /// At most this many events.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// Scopes to grant, each as `RESOURCE:SCOPE`.
#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// A user scope, e.g. `OR:OR.Jobs` (repeatable).
    #[arg(long = "user-scope", value_name = "RESOURCE:SCOPE")]
    pub user_scopes: Vec<String>,
    /// An application scope, e.g. `OR:OR.Jobs.Read` (repeatable).
    #[arg(long = "app-scope", value_name = "RESOURCE:SCOPE")]
    pub app_scopes: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AppType {
    /// Web or service application that can keep a secret.
    Confidential,
    /// Desktop or mobile application: no secret, user scopes only.
    NonConfidential,
}

impl From<AppType> for ApplicationType {
    fn from(kind: AppType) -> Self {
        match kind {
            AppType::Confidential => ApplicationType::Confidential,
            AppType::NonConfidential => ApplicationType::NonConfidential,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Register an application. A confidential one gets its secret, shown once.
    Register {
        #[arg(long)]
        organization: String,
        /// Display name.
        #[arg(long)]
        name: String,
        #[arg(long = "type", value_enum)]
        app_type: AppType,
        #[command(flatten)]
        scopes: ScopeArgs,
        /// A redirect URL (repeatable); required with user scopes.
        #[arg(long = "redirect-url")]
        redirect_urls: Vec<String>,
    },
    /// List an organization's applications.
    List {
        #[arg(long)]
        organization: String,
    },
    /// Show an application: type, client ID, scopes of each set, secrets' metadata.
    Get {
        /// `organizations/ORG/applications/CLIENT_ID`.
        name: ApplicationName,
    },
    /// Change the display name or the redirect URLs.
    Update {
        name: ApplicationName,
        #[arg(long)]
        display_name: Option<String>,
        /// The new redirect URLs, replacing all current ones (repeatable).
        #[arg(long = "redirect-url")]
        redirect_urls: Vec<String>,
        /// Remove every redirect URL.
        #[arg(long, conflicts_with = "redirect_urls")]
        clear_redirect_urls: bool,
        /// Apply only if the application still has this etag.
        #[arg(long)]
        etag: Option<String>,
    },
    /// Scopes of an application.
    #[command(subcommand)]
    Scopes(ScopesCommand),
    /// Client secrets of an application (at most 5 live at once).
    #[command(subcommand, visible_alias = "secret")]
    Secrets(SecretCommand),
    /// Public keys an application signs `private_key_jwt` client assertions
    /// with (at most 10).
    #[command(subcommand, visible_alias = "key")]
    Keys(KeyCommand),
    /// Outside identity providers' tokens an application accepts instead of
    /// a secret (federated credentials, at most 20).
    #[command(subcommand)]
    Federated(FederatedCommand),
    /// Delete an application: its secret and all its tokens stop working at once.
    Delete {
        name: ApplicationName,
        #[arg(long)]
        etag: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScopesCommand {
    /// Replace all scopes of an application with the ones given.
    Set {
        name: ApplicationName,
        #[command(flatten)]
        scopes: ScopeArgs,
        #[arg(long)]
        etag: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Generate a new secret, shown once, replacing the others: they stop
    /// working (at once, or after `--grace`).
    Generate {
        name: ApplicationName,
        /// Keep the old secrets working this long too (up to 7 days), e.g. `1h`.
        #[arg(long, value_parser = humantime::parse_duration)]
        grace: Option<Duration>,
        /// Also revoke every token issued so far.
        #[arg(long)]
        revoke_tokens: bool,
        #[command(flatten)]
        new: NewSecretArgs,
        #[arg(long)]
        etag: Option<String>,
    },
    /// Add a new secret, shown once, beside the live ones (at most 5).
    Add {
        name: ApplicationName,
        #[command(flatten)]
        new: NewSecretArgs,
        #[arg(long)]
        etag: Option<String>,
    },
    /// Delete one secret: it stops working at once.
    Delete {
        name: ApplicationName,
        /// The secret's ID, as `apps get` lists it.
        secret_id: String,
        /// Also end every token this secret authenticated.
        #[arg(long)]
        revoke_tokens: bool,
        #[arg(long)]
        etag: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Register a public key (a JWK file: EC P-256, Ed25519, or RSA of 2048
    /// bits or more with `alg` RS256 or PS256). Only the public half: the
    /// private key stays with the application.
    Add {
        name: ApplicationName,
        /// A file holding one JWK, in JSON; `-` reads standard input.
        #[arg(long)]
        jwk_file: std::path::PathBuf,
        #[command(flatten)]
        new: NewSecretArgs,
        #[arg(long)]
        etag: Option<String>,
    },
    /// Delete one key: assertions it signed are refused at once.
    Delete {
        name: ApplicationName,
        /// The key's ID, as `apps get` lists it.
        key_id: String,
        /// Also end every token this key authenticated.
        #[arg(long)]
        revoke_tokens: bool,
        #[arg(long)]
        etag: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum FederatedCommand {
    /// Trust the tokens of `--issuer` whose `sub` is `--subject` and whose
    /// `aud` holds `--audience`, exactly.
    Add {
        name: ApplicationName,
        /// The provider's issuer URL, as its tokens' `iss` says it.
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        subject: String,
        #[arg(long)]
        audience: String,
        /// What the credential is for, shown in listings.
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete one federated credential: its provider's tokens are refused at
    /// once.
    Delete {
        name: ApplicationName,
        /// The credential's ID, as `apps get` lists it.
        credential_id: String,
        /// Also end every token this credential authenticated.
        #[arg(long)]
        revoke_tokens: bool,
    },
}

/// What a new secret (or key) says about itself.
#[derive(Debug, Args)]
pub struct NewSecretArgs {
    /// What the secret is for, shown in listings (at most 128 characters).
    #[arg(long)]
    pub description: Option<String>,
    /// Let the secret stop working by itself after this long (up to 10
    /// years), e.g. `90d`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub expires_in: Option<Duration>,
}
