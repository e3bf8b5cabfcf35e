//! `extapps`: the administrator's command line for extapps.
//!
//! Every command is a call of the typed client (`extapps_client::Client`,
//! which retries what is safe to repeat) with the key in `EXTAPPS_KEY` (or
//! `--key`) against `EXTAPPS_URL` (or `--url`). Output is a readable table,
//! or JSON with `--output json`; errors name the field at fault and exit with
//! a code per kind (see `ExitKind`).

mod args;
mod render;

use std::process::ExitCode;

use args::{
    AppsCommand, AuditCommand, Cli, Command, FederatedCommand, KeyCommand, ResourcesCommand,
    ScopeArgs, ScopesCommand, SecretCommand, TokensCommand,
};
use clap::{CommandFactory, Parser};
use extapps_client::{
    Client, Error, Tls,
    model::{
        ApplicationUpdate, Grant, NewApplication, NewKey, NewSecret, PageRequest, SecretExpiry,
    },
};
use render::Render;
use tonic::Code;

/// Exit codes, by what went wrong.
#[derive(Debug, Clone, Copy)]
enum ExitKind {
    /// The server or the connection failed in an unexpected way.
    Failure = 1,
    /// Bad input (also what clap uses for bad command lines).
    InvalidInput = 2,
    NotFound = 3,
    /// Missing, unknown or insufficient key.
    Denied = 4,
    /// Already exists, changed meanwhile (stale etag), or not possible now.
    Conflict = 5,
    /// The server cannot be reached or is unavailable: retry.
    Unavailable = 6,
}

fn exit_kind(code: Code) -> ExitKind {
    match code {
        Code::InvalidArgument | Code::OutOfRange => ExitKind::InvalidInput,
        Code::NotFound => ExitKind::NotFound,
        Code::Unauthenticated | Code::PermissionDenied => ExitKind::Denied,
        Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => ExitKind::Conflict,
        Code::Unavailable | Code::DeadlineExceeded => ExitKind::Unavailable,
        _ => ExitKind::Failure,
    }
}

/// What a command failed with, for the user.
struct Failure {
    kind: ExitKind,
    message: String,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let Error::Status(report) = error else {
            let kind = match error {
                Error::Connect(_) => ExitKind::Unavailable,
                Error::Response(_) => ExitKind::Failure,
                _ => ExitKind::InvalidInput,
            };
            return Self {
                kind,
                message: with_causes(&error),
            };
        };
        let mut message = match report.violations.as_slice() {
            [] => report.message.clone(),
            _ => "the request is invalid:".to_owned(),
        };
        for (field, description) in &report.violations {
            message.push_str(&format!("\n  {field}: {description}"));
        }
        if let Some(reason) = &report.reason {
            message.push_str(&format!("\n  (reason: {reason})"));
        }
        Self {
            kind: exit_kind(report.code),
            message,
        }
    }
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure {
        kind: ExitKind::InvalidInput,
        message: message.into(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.kind as u8)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "extapps",
            &mut std::io::stdout(),
        );
        return Ok(());
    }
    let key = cli
        .key
        .ok_or_else(|| invalid("no key: set EXTAPPS_KEY or pass --key"))?;
    let mut builder = Client::builder(&cli.url, &key).timeout(Some(cli.timeout));
    if let Some(tls) = tls_options(&cli.tls)? {
        builder = builder.tls(tls);
    }
    let client = builder.connect().await?;
    let out = Render::new(cli.output);
    match cli.command {
        Command::Completions { .. } => Ok(()),
        Command::Resources(ResourcesCommand::List) => {
            out.resources(&client.resources().await?);
            Ok(())
        }
        Command::Tokens(TokensCommand::Introspect { token }) => {
            out.introspection(&client.introspect(&token).await?);
            Ok(())
        }
        Command::Audit(AuditCommand::List {
            organization,
            application,
            limit,
        }) => {
            let size = |read: usize| u32::try_from(limit - read).unwrap_or(u32::MAX);
            let mut request = Some(PageRequest {
                size: size(0),
                ..PageRequest::default()
            });
            let mut events = Vec::new();
            while let Some(next) = request.take().filter(|_| events.len() < limit) {
                let page = client
                    .audit_events(&organization, application.as_ref(), next)
                    .await?;
                request = page.next(size(events.len() + page.items.len()));
                events.extend(page.items);
            }
            events.truncate(limit);
            out.audit(&events);
            Ok(())
        }
        Command::Apps(command) => apps(&client, &out, command).await,
    }
}

fn grants(scopes: &ScopeArgs) -> Result<Vec<Grant>, Failure> {
    let mut grants: Vec<Grant> = Vec::new();
    let mut add = |pair: &str, user: bool| -> Result<(), Failure> {
        let (resource, scope) = pair.split_once(':').ok_or_else(|| {
            invalid(format!(
                "`{pair}`: write a scope as RESOURCE:SCOPE, e.g. OR:OR.Jobs"
            ))
        })?;
        let position = match grants.iter().position(|g| g.resource == resource) {
            Some(position) => position,
            None => {
                grants.push(Grant::on(resource));
                grants.len() - 1
            }
        };
        let grant = &mut grants[position];
        if user {
            grant.user_scopes.push(scope.to_owned());
        } else {
            grant.application_scopes.push(scope.to_owned());
        }
        Ok(())
    };
    for pair in &scopes.user_scopes {
        add(pair, true)?;
    }
    for pair in &scopes.app_scopes {
        add(pair, false)?;
    }
    Ok(grants)
}

async fn apps(client: &Client, out: &Render, command: AppsCommand) -> Result<(), Failure> {
    match command {
        AppsCommand::Register {
            organization,
            name,
            app_type,
            scopes,
            redirect_urls,
        } => {
            let registered = client
                .register(
                    &organization,
                    NewApplication {
                        display_name: name,
                        kind: app_type.into(),
                        grants: grants(&scopes)?,
                        redirect_urls,
                    },
                )
                .await?;
            out.with_secret(&registered.application, registered.secret.as_ref());
            Ok(())
        }
        AppsCommand::List { organization } => {
            const PAGE: u32 = 1000;
            let mut request = Some(PageRequest {
                size: PAGE,
                ..PageRequest::default()
            });
            let mut apps = Vec::new();
            while let Some(next) = request.take() {
                let page = client.list(&organization, next).await?;
                request = page.next(PAGE);
                apps.extend(page.items);
            }
            out.applications(&apps);
            Ok(())
        }
        AppsCommand::Get { name } => {
            out.application(&client.get(&name).await?);
            Ok(())
        }
        AppsCommand::Update {
            name,
            display_name,
            redirect_urls,
            clear_redirect_urls,
            etag,
        } => {
            let redirect_urls =
                (!redirect_urls.is_empty() || clear_redirect_urls).then_some(redirect_urls);
            if display_name.is_none() && redirect_urls.is_none() {
                return Err(invalid(
                    "nothing to change: pass --display-name, --redirect-url or --clear-redirect-urls",
                ));
            }
            let update = ApplicationUpdate {
                display_name,
                redirect_urls,
                etag,
            };
            out.application(&client.update(&name, update).await?);
            Ok(())
        }
        AppsCommand::Scopes(ScopesCommand::Set { name, scopes, etag }) => {
            out.application(&client.set_scopes(&name, grants(&scopes)?, etag).await?);
            Ok(())
        }
        AppsCommand::Secrets(SecretCommand::Generate {
            name,
            grace,
            revoke_tokens,
            new,
            etag,
        }) => {
            let options = NewSecret {
                grace_period: grace,
                revoke_tokens,
                description: new.description,
                expiry: new.expires_in.map(SecretExpiry::After),
                etag,
                ..NewSecret::default()
            };
            let rotated = client.generate_secret(&name, options).await?;
            out.with_secret(&rotated.application, Some(&rotated.secret));
            Ok(())
        }
        AppsCommand::Secrets(SecretCommand::Add { name, new, etag }) => {
            let options = NewSecret {
                keep_existing: true,
                description: new.description,
                expiry: new.expires_in.map(SecretExpiry::After),
                etag,
                ..NewSecret::default()
            };
            let added = client.generate_secret(&name, options).await?;
            out.with_secret(&added.application, Some(&added.secret));
            Ok(())
        }
        AppsCommand::Secrets(SecretCommand::Delete {
            name,
            secret_id,
            revoke_tokens,
            etag,
        }) => {
            out.application(
                &client
                    .delete_secret(&name, &secret_id, revoke_tokens, etag)
                    .await?,
            );
            Ok(())
        }
        AppsCommand::Keys(KeyCommand::Add {
            name,
            jwk_file,
            new,
            etag,
        }) => {
            let jwk = read_jwk(&jwk_file)?;
            let options = NewKey {
                jwk,
                description: new.description,
                expiry: new.expires_in.map(SecretExpiry::After),
                etag,
            };
            let (application, _) = client.add_key(&name, options).await?;
            out.application(&application);
            Ok(())
        }
        AppsCommand::Keys(KeyCommand::Delete {
            name,
            key_id,
            revoke_tokens,
            etag,
        }) => {
            out.application(
                &client
                    .delete_key(&name, &key_id, revoke_tokens, etag)
                    .await?,
            );
            Ok(())
        }
        AppsCommand::Federated(FederatedCommand::Add {
            name,
            issuer,
            subject,
            audience,
            description,
        }) => {
            let (application, _) = client
                .add_federated_credential(&name, &issuer, &subject, &audience, description)
                .await?;
            out.application(&application);
            Ok(())
        }
        AppsCommand::Federated(FederatedCommand::Delete {
            name,
            credential_id,
            revoke_tokens,
        }) => {
            out.application(
                &client
                    .delete_federated_credential(&name, &credential_id, revoke_tokens)
                    .await?,
            );
            Ok(())
        }
        AppsCommand::Delete { name, etag } => {
            client.delete(&name, etag).await?;
            out.deleted(&name);
            Ok(())
        }
    }
}

/// An error and its causes, `outer: inner: ...`.
fn with_causes(error: &dyn std::error::Error) -> String {
    std::iter::successors(Some(error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// A JWK's text, from a file or standard input (`-`). Read up to a bound,
/// so a wrong file (or a stream that never ends) is refused, not cut and
/// sent: the server takes 8 KiB and says so.
fn read_jwk(path: &std::path::Path) -> Result<String, Failure> {
    use std::io::Read;
    const LIMIT: u64 = 64 * 1024;
    let from = match path.as_os_str() == "-" {
        true => "standard input".to_owned(),
        false => path.display().to_string(),
    };
    let mut bytes = Vec::new();
    let result = if path.as_os_str() == "-" {
        std::io::stdin().take(LIMIT + 1).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(LIMIT + 1).read_to_end(&mut bytes))
    };
    result.map_err(|e| invalid(format!("cannot read {from}: {e}")))?;
    if bytes.len() as u64 > LIMIT {
        return Err(invalid(format!(
            "{from} is larger than 64 KiB: a public key's JWK takes a few KiB at most"
        )));
    }
    String::from_utf8(bytes).map_err(|_| invalid(format!("{from} is not UTF-8 text")))
}

/// The TLS settings the flags ask for, with their files read.
fn tls_options(args: &args::TlsArgs) -> Result<Option<Tls>, Failure> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))
    };
    let mut tls = match &args.ca_cert {
        Some(path) => Tls::ca_pem(read(path)?),
        None if args.tls_domain.is_some() || args.client_cert.is_some() => Tls::system_roots(),
        None => return Ok(None),
    };
    if let Some(name) = &args.tls_domain {
        tls = tls.domain_name(name);
    }
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        tls = tls.identity(read(cert)?, read(key)?);
    }
    Ok(Some(tls))
}
