//! `extapps`: the administrator's command line for extapps.
//!
//! Every command is one gRPC call with the key in `EXTAPPS_KEY` (or `--key`)
//! against `EXTAPPS_URL` (or `--url`). Output is a readable table, or JSON
//! with `--output json`; errors name the field at fault and exit with a code
//! per kind (see `ExitKind`).

mod args;
mod render;

use std::process::ExitCode;

use args::{
    AppsCommand, AuditCommand, Cli, Command, ResourcesCommand, ScopeArgs, ScopesCommand,
    SecretCommand, TokensCommand,
};
use clap::{CommandFactory, Parser};
use extapps_client::{Client, ErrorReport, Tls, v1 as pb};
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

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        let report = ErrorReport::from(&status);
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
    let mut client = builder
        .connect()
        .await
        .map_err(|e| Failure {
            kind: ExitKind::Unavailable,
            message: with_causes(&e),
        })?
        .generated();
    let out = Render::new(cli.output);
    match cli.command {
        Command::Completions { .. } => Ok(()),
        Command::Resources(ResourcesCommand::List) => {
            let resources = client
                .list_resources(pb::ListResourcesRequest {})
                .await?
                .into_inner()
                .resources;
            out.resources(&resources);
            Ok(())
        }
        Command::Tokens(TokensCommand::Introspect { token }) => {
            let answer = client
                .introspect_token(pb::IntrospectTokenRequest { token })
                .await?
                .into_inner();
            out.introspection(&answer);
            Ok(())
        }
        Command::Audit(AuditCommand::List {
            organization,
            application,
            limit,
        }) => {
            let mut page_token = String::new();
            let mut events = Vec::new();
            while events.len() < limit {
                let page = client
                    .list_audit_events(pb::ListAuditEventsRequest {
                        parent: format!("organizations/{organization}"),
                        page_size: i32::try_from(limit - events.len()).unwrap_or(1000),
                        page_token,
                        application: application.clone().unwrap_or_default(),
                    })
                    .await?
                    .into_inner();
                events.extend(page.audit_events);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            events.truncate(limit);
            out.audit(&events);
            Ok(())
        }
        Command::Apps(command) => apps(&mut client, &out, command).await,
    }
}

fn grants(scopes: &ScopeArgs) -> Result<Vec<pb::ResourceGrant>, Failure> {
    let mut grants: Vec<pb::ResourceGrant> = Vec::new();
    let mut add = |pair: &str, user: bool| -> Result<(), Failure> {
        let (resource, scope) = pair.split_once(':').ok_or_else(|| {
            invalid(format!(
                "`{pair}`: write a scope as RESOURCE:SCOPE, e.g. OR:OR.Jobs"
            ))
        })?;
        let position = match grants.iter().position(|g| g.resource == resource) {
            Some(position) => position,
            None => {
                grants.push(pb::ResourceGrant {
                    resource: resource.to_owned(),
                    ..Default::default()
                });
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

async fn apps(
    client: &mut extapps_client::GeneratedClient,
    out: &Render,
    command: AppsCommand,
) -> Result<(), Failure> {
    match command {
        AppsCommand::Register {
            organization,
            name,
            app_type,
            scopes,
            redirect_urls,
        } => {
            let response = client
                .register_application(pb::RegisterApplicationRequest {
                    parent: format!("organizations/{organization}"),
                    application: Some(pb::Application {
                        display_name: name,
                        r#type: app_type.to_proto().into(),
                        grants: grants(&scopes)?,
                        redirect_urls,
                        ..Default::default()
                    }),
                    // A retry after a lost answer must not register twice.
                    request_id: uuid::Uuid::new_v4().to_string(),
                })
                .await?
                .into_inner();
            out.with_secret(response.application.as_ref(), &response.client_secret);
            Ok(())
        }
        AppsCommand::List { organization } => {
            let mut page_token = String::new();
            let mut apps = Vec::new();
            loop {
                let page = client
                    .list_applications(pb::ListApplicationsRequest {
                        parent: format!("organizations/{organization}"),
                        page_size: 1000,
                        page_token,
                    })
                    .await?
                    .into_inner();
                apps.extend(page.applications);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            out.applications(&apps);
            Ok(())
        }
        AppsCommand::Get { name } => {
            let app = client
                .get_application(pb::GetApplicationRequest { name })
                .await?
                .into_inner()
                .application;
            out.application(app.as_ref());
            Ok(())
        }
        AppsCommand::Update {
            name,
            display_name,
            redirect_urls,
            clear_redirect_urls,
            etag,
        } => {
            let mut paths = Vec::new();
            if display_name.is_some() {
                paths.push("display_name".to_owned());
            }
            if !redirect_urls.is_empty() || clear_redirect_urls {
                paths.push("redirect_urls".to_owned());
            }
            if paths.is_empty() {
                return Err(invalid(
                    "nothing to change: pass --display-name, --redirect-url or --clear-redirect-urls",
                ));
            }
            let app = client
                .update_application(pb::UpdateApplicationRequest {
                    application: Some(pb::Application {
                        name,
                        display_name: display_name.unwrap_or_default(),
                        redirect_urls,
                        etag: etag.unwrap_or_default(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask { paths }),
                })
                .await?
                .into_inner()
                .application;
            out.application(app.as_ref());
            Ok(())
        }
        AppsCommand::Scopes(ScopesCommand::Set { name, scopes, etag }) => {
            let app = client
                .update_application_scopes(pb::UpdateApplicationScopesRequest {
                    name,
                    grants: grants(&scopes)?,
                    etag: etag.unwrap_or_default(),
                })
                .await?
                .into_inner()
                .application;
            out.application(app.as_ref());
            Ok(())
        }
        AppsCommand::Secret(SecretCommand::Generate {
            name,
            grace,
            revoke_tokens,
            etag,
        }) => {
            let grace_period = grace
                .map(|g| {
                    prost_types::Duration::try_from(g).map_err(|_| invalid("--grace is too long"))
                })
                .transpose()?;
            let response = client
                .generate_application_secret(pb::GenerateApplicationSecretRequest {
                    name,
                    grace_period,
                    revoke_tokens,
                    etag: etag.unwrap_or_default(),
                    request_id: uuid::Uuid::new_v4().to_string(),
                })
                .await?
                .into_inner();
            out.with_secret(response.application.as_ref(), &response.client_secret);
            Ok(())
        }
        AppsCommand::Delete { name, etag } => {
            client
                .delete_application(pb::DeleteApplicationRequest {
                    name: name.clone(),
                    etag: etag.unwrap_or_default(),
                })
                .await?;
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
