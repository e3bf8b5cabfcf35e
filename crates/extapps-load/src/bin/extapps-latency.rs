//! `extapps-latency`: the time of each RPC called one at a time, as an
//! administrator's tool, a resource server or a sign-in front end calls
//! them through the Rust client (`extapps-client`). Prints `rust RPC MICROS`
//! per call, for `latency.sh` to summarize; the cycle is the one the SDK
//! clients in `latency/` run.

use std::time::Instant;

use clap::Parser;
use extapps_client::model::{
    ApplicationType, ApplicationUpdate, Grant, Introspection, NewApplication, NewSecret,
    PageRequest,
};

/// Sequential latency of every RPC through the Rust client. (No `Debug`:
/// it holds keys.)
#[allow(missing_debug_implementations)]
#[derive(Parser)]
struct Options {
    #[arg(long, env = "EXTAPPS_URL")]
    url: String,
    #[arg(long, env = "EXTAPPS_ADMIN_KEY")]
    admin_key: String,
    #[arg(long, env = "EXTAPPS_INTROSPECT_KEY")]
    introspect_key: String,
    #[arg(long, env = "EXTAPPS_SIGNIN_KEY")]
    signin_key: String,
    #[arg(long, env = "EXTAPPS_ORGANIZATION", default_value = "acme")]
    organization: String,
    #[arg(long, env = "EXTAPPS_ROUNDS", default_value_t = 20)]
    rounds: u32,
}

type Failure = Box<dyn std::error::Error>;

/// Runs `call`, prints its time, and returns its answer.
async fn timed<T, E: Into<Failure>>(
    rpc: &str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, Failure> {
    let started = Instant::now();
    let answer = call.await.map_err(Into::into)?;
    println!("rust {rpc} {}", started.elapsed().as_micros());
    Ok(answer)
}

const CALLBACK: &str = "http://127.0.0.1/callback";

/// Starts a user authorization as a browser would, and returns the ID the
/// server hands to the sign-in front end.
async fn authorization_request(
    http: &reqwest::Client,
    url: &str,
    client_id: &str,
) -> Result<String, Failure> {
    let response = http
        .get(format!("{url}/oauth2/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", CALLBACK),
            ("scope", "OR.Jobs"),
            ("state", "s1"),
        ])
        .send()
        .await?;
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .ok_or("the authorization endpoint did not redirect")?;
    let location = url::Url::parse(location)?;
    let id = location
        .query_pairs()
        .find(|(k, _)| k == "authorization_request")
        .ok_or("no authorization_request in the redirect")?
        .1;
    Ok(id.into_owned())
}

async fn access_token(
    http: &reqwest::Client,
    url: &str,
    client_id: &str,
    secret: &str,
) -> Result<String, Failure> {
    let body: serde_json::Value = http
        .post(format!("{url}/oauth2/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(body["access_token"]
        .as_str()
        .ok_or("no access_token")?
        .to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let o = Options::parse();
    // A connection per key, as three services would each have their own.
    let (admin, introspector, signin) = (
        extapps_client::connect(&o.url, &o.admin_key).await?,
        extapps_client::connect(&o.url, &o.introspect_key).await?,
        extapps_client::connect(&o.url, &o.signin_key).await?,
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    admin.resources().await?;
    let first = |size| PageRequest {
        size,
        token: String::new(),
    };
    for round in 0..o.rounds {
        timed("ListResources", admin.resources()).await?;
        let display_name = format!("latency rust {round} {}", uuid::Uuid::new_v4().simple());
        let new = NewApplication::new(&display_name, ApplicationType::Confidential)
            .grant(
                Grant::on("OR")
                    .user_scopes(["OR.Jobs"])
                    .application_scopes(["OR.Jobs.Read"]),
            )
            .redirect_url(CALLBACK);
        let registered = timed("RegisterApplication", admin.register(&o.organization, new)).await?;
        let name = registered.application.name.clone();
        let client_id = registered.application.client_id().to_string();
        timed("GetApplication", admin.get(&name)).await?;
        timed("ListApplications", admin.list(&o.organization, first(10))).await?;
        let rename = ApplicationUpdate {
            display_name: Some(format!("{display_name} renamed")),
            ..Default::default()
        };
        timed("UpdateApplication", admin.update(&name, rename)).await?;
        let grants = vec![
            Grant::on("OR")
                .user_scopes(["OR.Jobs", "OR.Queues"])
                .application_scopes(["OR.Jobs.Read", "OR.Queues"]),
        ];
        timed(
            "UpdateApplicationScopes",
            admin.set_scopes(&name, grants, None),
        )
        .await?;
        let rotated = timed(
            "GenerateApplicationSecret",
            admin.generate_secret(&name, NewSecret::default()),
        )
        .await?;
        let token = access_token(&http, &o.url, &client_id, rotated.secret.expose()).await?;
        let introspected = timed("IntrospectToken", introspector.introspect(&token)).await?;
        if matches!(introspected, Introspection::Inactive) {
            return Err("a fresh token is not active".into());
        }
        let subject = format!("user-{round}");
        let id = authorization_request(&http, &o.url, &client_id).await?;
        timed("GetAuthorizationRequest", signin.authorization_request(&id)).await?;
        timed(
            "AcceptAuthorizationRequest",
            signin.accept_authorization_request(&id, &subject, vec!["OR.Jobs".into()]),
        )
        .await?;
        let id = authorization_request(&http, &o.url, &client_id).await?;
        timed(
            "RejectAuthorizationRequest",
            signin.reject_authorization_request(&id, "", ""),
        )
        .await?;
        timed(
            "ListUserAuthorizations",
            signin.user_authorizations(&subject, first(0)),
        )
        .await?;
        timed(
            "RevokeUserAuthorization",
            signin.revoke_user_authorization(&subject, &name),
        )
        .await?;
        timed(
            "ListAuditEvents",
            admin.audit_events(&o.organization, None, first(10)),
        )
        .await?;
        timed("DeleteApplication", admin.delete(&name, None)).await?;
    }
    Ok(())
}
