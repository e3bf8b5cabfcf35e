//! The subcommands of `extapps-server`: `serve`, `migrate` and `keys`.

use std::{future::Future, path::Path, sync::Arc};

use secrecy::ExposeSecret;

use crate::config::{
    Cli, Command, GlobalOptions, KeyRingCommand, KeysCommand, RoleArg, ServeOptions,
};
use crate::domain::{
    Error,
    caller::Role,
    catalog::Catalog,
    catalog::DEFAULT_CATALOG,
    clock::{Clock, SystemClock},
    federation::AllowedIssuers,
    key_ring::KeyRing,
    names::OrganizationId,
};
use crate::issuers::FederationSettings;
use crate::server::ConnectionLimits;
use crate::service::{
    BudgetSettings, ClientAuthSettings, PoolSettings, Service, TokenSettings, UserAccessSettings,
};
use crate::store::Store;

/// Runs one command; the error is a message for the operator.
pub async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(options) => serve(&cli.global, &options, shutdown_signal()).await,
        Command::Migrate => {
            crate::key_file::load_for_commands(&cli.global, &SystemClock)?;
            let store = Store::connect(&cli.global.database_url)
                .await
                .map_err(|e| e.to_string())?;
            store.migrate().await.map_err(|e| e.to_string())?;
            tracing::info!("database schema is up to date");
            Ok(())
        }
        Command::Keys(command) => keys(&cli.global, command).await,
        Command::KeyRing(command) => key_ring(&cli.global, command),
    }
}

/// Reads the catalog named by `--catalog`, or the built-in one.
pub fn load_catalog(path: Option<&Path>) -> Result<Catalog, String> {
    match path {
        None => Catalog::from_toml(DEFAULT_CATALOG)
            .map_err(|e| format!("the built-in catalog is invalid: {e}")),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read catalog {}: {e}", path.display()))?;
            Catalog::from_toml(&text).map_err(|e| format!("catalog {}: {e}", path.display()))
        }
    }
}

/// Names, at start-up, the applications whose stored redirect URLs today's
/// rules refuse: they are never redirected to, and an administrator must
/// register them again. A failure to look only loses the report.
async fn report_invalid_redirect_urls(service: &Service) {
    match service
        .store()
        .applications_with_invalid_redirect_urls()
        .await
    {
        Ok(found) => {
            for (organization, client_id, invalid) in found {
                tracing::warn!(%organization, %client_id, invalid,
                    "redirect URLs registered under earlier, looser rules are not what a URL parser reads: they are never redirected to until an administrator replaces them (UpdateApplication)");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not check the stored redirect URLs"),
    }
}

/// Says, at start-up, how many client secrets still have password-grade
/// hashes from earlier versions: each costs a slow verification until its
/// next successful use replaces it.
async fn report_password_grade_hashes(service: &Service) {
    match service.store().password_grade_hashes().await {
        Ok(0) => {}
        Ok(count) => tracing::warn!(
            count,
            "client secrets still have password-grade hashes from earlier versions: each is replaced on its next successful use, until then verified on the bounded pool (rotate secrets left unused to finish the upgrade)"
        ),
        Err(e) => tracing::warn!(error = %e, "could not count password-grade secret hashes"),
    }
}

/// Connects, migrates (unless told not to) and builds the service.
pub async fn open(
    global: &GlobalOptions,
    migrate: bool,
    ring: &KeyRing,
    tokens: TokenSettings,
    client_auth: ClientAuthSettings,
) -> Result<Service, String> {
    let catalog = load_catalog(global.catalog.as_deref())?;
    let store = Store::connect_with(&global.database_url, global.db_acquire_timeout)
        .await
        .map_err(|e| e.to_string())?;
    if migrate {
        store.migrate().await.map_err(|e| e.to_string())?;
    } else {
        store.check_schema().await.map_err(|e| e.to_string())?;
    }
    Service::new(
        store,
        catalog,
        Arc::new(SystemClock),
        ring,
        tokens,
        client_auth,
    )
    .await
    .map_err(|e| format!("cannot start: {e}"))
}

async fn serve(
    global: &GlobalOptions,
    options: &ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let tls = match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(
            cert,
            key,
            options.tls_client_ca.as_deref(),
        )?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = crate::server::bind(options.listen).await?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let ttl = time::Duration::try_from(options.token_ttl)
        .map_err(|_| "--token-ttl is too long".to_owned())?;
    if ttl < time::Duration::SECOND || ttl > crate::service::MAX_TOKEN_TTL {
        return Err("--token-ttl must be between 1s and 24h".into());
    }
    let tokens = TokenSettings {
        ttl,
        issuer: options
            .issuer
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{addr}"))
            .trim_end_matches('/')
            .to_owned(),
        user: user_access_settings(options)?,
    };
    let client_auth = ClientAuthSettings {
        pool: PoolSettings {
            workers: options
                .verify_workers
                .map_or_else(|| PoolSettings::default().workers, usize::from),
            queue: options.verify_queue,
        },
        budget: BudgetSettings {
            slow_verifications_per_source: options.verify_budget_per_source,
            failures_per_source: options.failures_per_source,
        },
        trusted_proxies: options.trusted_proxies,
        federation: FederationSettings {
            allowed: AllowedIssuers::parse(&options.federation_allowed_issuers)
                .map_err(|e| format!("--federation-allowed-issuers: {e}"))?,
            timeout: options.federation_fetch_timeout,
            ..FederationSettings::default()
        },
    };
    let limits = ConnectionLimits {
        header_read_timeout: options.header_read_timeout,
        body_timeout: options.body_timeout,
        idle_timeout: options.idle_timeout,
        http2_keepalive: options.http2_keepalive,
        max_connections: options.max_connections.get(),
        max_connections_per_source: options.max_connections_per_source.get(),
        drain: options.shutdown_timeout,
    };
    let ring = crate::key_file::load_for_serving(global, &SystemClock)?;
    if options.verify_budget_per_client.is_some() {
        tracing::warn!(
            "--verify-budget-per-client (EXTAPPS_VERIFY_BUDGET_PER_CLIENT) is no longer used and is ignored: failures are limited per source address only"
        );
    }
    let service = open(global, !options.no_migrate, &ring, tokens, client_auth).await?;
    // Each report reads a whole table: beside the requests, not before the
    // server listens.
    let reporting = service.clone();
    tokio::spawn(async move {
        report_invalid_redirect_urls(&reporting).await;
        report_password_grade_hashes(&reporting).await;
    });
    service.start_background(!options.no_caches);
    let router = crate::server::router(service)
        .await
        .map_err(|e| format!("cannot build reflection service: {e}"))?;
    tracing::info!(%addr, %scheme, "extapps listening (gRPC and OAuth 2.0 over HTTP)");
    let served = crate::server::serve(listener, tls, router, shutdown, limits).await;
    served.map_err(|e| format!("server failed: {e}"))?;
    tracing::info!("extapps stopped");
    Ok(())
}

/// The user access settings, checked: lifetimes that make sense together.
fn user_access_settings(options: &ServeOptions) -> Result<UserAccessSettings, String> {
    let duration = |value: std::time::Duration, flag: &str| {
        time::Duration::try_from(value).map_err(|_| format!("{flag} is too long"))
    };
    let settings = UserAccessSettings {
        signin_url: options.signin_url.as_ref().map(|url| url.to_string()),
        request_ttl: duration(
            options.authorization_request_ttl,
            "--authorization-request-ttl",
        )?,
        code_ttl: duration(options.code_ttl, "--code-ttl")?,
        refresh_idle: duration(options.refresh_idle_ttl, "--refresh-idle-ttl")?,
        refresh_lifetime: duration(options.refresh_lifetime, "--refresh-lifetime")?,
        refresh_grace: duration(options.refresh_grace, "--refresh-grace")?,
    };
    if let Some(url) = &options.signin_url
        && !matches!(url.scheme(), "https" | "http")
    {
        return Err("--signin-url must be an http(s) URL".into());
    }
    if settings.code_ttl > time::Duration::minutes(10) {
        return Err("--code-ttl must be at most 10m (RFC 6749 section 4.1.2)".into());
    }
    if settings.refresh_grace > time::Duration::minutes(5) {
        return Err("--refresh-grace must be at most 5m".into());
    }
    if settings.refresh_idle < time::Duration::MINUTE
        || settings.refresh_idle > settings.refresh_lifetime
    {
        return Err("--refresh-idle-ttl must be at least 1m and at most --refresh-lifetime".into());
    }
    if settings.refresh_lifetime > time::Duration::days(3650) {
        return Err("--refresh-lifetime must be at most 10 years".into());
    }
    Ok(settings)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down: draining in-flight calls");
}

fn describe(error: Error) -> String {
    match error {
        Error::InvalidArgument { violations, .. } => violations
            .iter()
            .map(|v| format!("--{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

async fn keys(global: &GlobalOptions, command: KeysCommand) -> Result<(), String> {
    // Keys commands issue no tokens: the token settings do not matter here.
    let tokens = TokenSettings {
        ttl: time::Duration::HOUR,
        issuer: String::new(),
        user: Default::default(),
    };
    // Nor do they seal anything; but an SQLite database they create gets its
    // key ring beside it at once, as `serve` would make it.
    let ring = crate::key_file::load_for_commands(global, &SystemClock)?;
    let service = open(global, true, &ring, tokens, ClientAuthSettings::default()).await?;
    match command {
        KeysCommand::Create {
            organization,
            platform_wide,
            role,
            resources,
        } => {
            let organization = organization
                .as_deref()
                .map(OrganizationId::parse)
                .transpose()
                .map_err(|why| format!("--organization: {why}"))?;
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Introspect => Role::Introspect,
                RoleArg::Signin => Role::Signin,
                RoleArg::Operator => Role::Operator,
            };
            match (role, organization.is_some(), platform_wide) {
                (Role::Introspect | Role::Signin, false, false) => {
                    return Err(format!(
                        "a `{role}` key needs --organization, or --platform-wide for a \
                         service shared by every organization"
                    ));
                }
                (Role::Admin | Role::Operator, _, true) => {
                    return Err(format!(
                        "--platform-wide is for `introspect` and `signin` keys, not `{role}`"
                    ));
                }
                _ => {}
            }
            let created = service
                .create_caller_key(organization, role, resources)
                .await
                .map_err(describe)?;
            // The key alone on stdout, so scripts can capture it; the rest on stderr.
            println!("{}", created.key.expose_secret());
            eprintln!(
                "created {role} key {} (shown once: store it now; only its hash is kept)",
                created.id
            );
            Ok(())
        }
        KeysCommand::List => {
            let keys = service.list_caller_keys().await.map_err(describe)?;
            println!(
                "{:<36}  {:<10}  {:<20}  {:<20}  {:<25}  REVOKED",
                "ID", "ROLE", "ORGANIZATION", "RESOURCES", "CREATED"
            );
            for key in keys {
                println!(
                    "{:<36}  {:<10}  {:<20}  {:<20}  {:<25}  {}",
                    key.id,
                    key.role,
                    key.organization
                        .as_ref()
                        .map_or("*".to_owned(), ToString::to_string),
                    if key.resources.is_empty() {
                        "-".to_owned()
                    } else {
                        key.resources.join(",")
                    },
                    rfc3339(key.create_time),
                    key.revoke_time.map_or("-".to_owned(), rfc3339),
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { id } => {
            service.revoke_caller_key(&id).await.map_err(describe)?;
            eprintln!("revoked key {id}");
            Ok(())
        }
    }
}

fn key_ring(global: &GlobalOptions, command: KeyRingCommand) -> Result<(), String> {
    let file = crate::key_file::path(global).ok_or(
        "name the key file with --key-file (or EXTAPPS_KEY_FILE); only an SQLite database has a default one beside it",
    )?;
    let now = SystemClock.now();
    let changed = match command {
        KeyRingCommand::Create => {
            let ring = KeyRing::generate(now).map_err(|e| e.to_string())?;
            crate::key_file::create(&file, &ring)?;
            eprintln!(
                "created key file {} (mode 0600): give every replica this file",
                file.display()
            );
            return Ok(());
        }
        KeyRingCommand::List => {
            let ring = crate::key_file::read(&file)?;
            println!("{:<8}  {:<25}  STATE", "ID", "CREATED");
            for (id, created, state) in ring.describe() {
                println!("{id:<8}  {:<25}  {state}", rfc3339(created));
            }
            return Ok(());
        }
        KeyRingCommand::Rotate { staged } => {
            let ring = crate::key_file::read(&file)?
                .rotated(now, staged)
                .map_err(|e| e.to_string())?;
            let id = ring
                .ids()
                .last()
                .map(|(id, _)| id.clone())
                .unwrap_or_default();
            eprintln!(
                "added key {id}; {}",
                if staged {
                    "it opens only: once every replica has this file, `key-ring promote` it"
                } else {
                    "it seals new tokens once the servers are restarted with this file"
                }
            );
            ring
        }
        KeyRingCommand::Promote { id } => {
            let ring = crate::key_file::read(&file)?.promoted(&id)?;
            eprintln!("key {id} seals new tokens once the servers are restarted with this file");
            ring
        }
        KeyRingCommand::Retire { id } => {
            let ring = crate::key_file::read(&file)?.retired(&id)?;
            eprintln!(
                "retired key {id}: what it sealed stops working once the servers are restarted with this file"
            );
            ring
        }
    };
    crate::key_file::replace(&file, &changed)
}

fn rfc3339(time: time::OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
