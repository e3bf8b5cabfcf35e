//! A standard OAuth client library runs the whole code flow against the
//! server: PKCE, consent through the sign-in front end, the code redeemed,
//! refresh tokens rotated, and nothing usable stored.

use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, RefreshToken,
    Scope, TokenResponse, TokenUrl, basic::BasicClient,
};

use crate::support::harness::{Backend, SIGNIN_URL, TestServer};
use crate::support::oauth_http::{http, introspect_grpc, is_active};
use crate::support::user_flow::{USER, native, query_of, redirected, setup};

crate::on_both_backends!(an_oauth_library_runs_the_code_flow_with_pkce_and_refresh_tokens);

async fn an_oauth_library_runs_the_code_flow_with_pkce_and_refresh_tokens(backend: Backend) {
    let mut setup = setup(backend).await;
    let app = native(&mut setup, "Desktop Robot").await;
    let server = &setup.server;
    // A native application picks its loopback port at start (RFC 8252).
    let redirect = "http://127.0.0.1:49152/callback";
    let oauth = BasicClient::new(ClientId::new(app.id.clone()))
        .set_auth_uri(AuthUrl::new(format!("{}/oauth2/authorize", server.url)).unwrap())
        .set_token_uri(TokenUrl::new(format!("{}/oauth2/token", server.url)).unwrap())
        .set_redirect_uri(RedirectUrl::new(redirect.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("OR.Jobs".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let id = redirected(&response, SIGNIN_URL)["authorization_request"].clone();

    // The front end shows the consent screen...
    let request = setup.signin.authorization_request(&id).await.unwrap();
    assert_eq!(request.id(), id);
    assert_eq!(request.application.to_string(), app.name);
    assert_eq!(request.application_display_name, "Desktop Robot");
    assert_eq!(
        request.application_kind,
        extapps_client::model::ApplicationType::NonConfidential
    );
    assert!(request.offline_access);
    assert_eq!(request.redirect_host, "127.0.0.1");
    let scopes: Vec<_> = request
        .scopes
        .iter()
        .map(|s| {
            (
                s.scope.as_str(),
                s.resource.as_str(),
                s.description.as_str(),
            )
        })
        .collect();
    assert_eq!(scopes, [("OR.Jobs", "OR", "Start, stop and read jobs")]);
    assert_eq!(
        request.scopes[0].resource_display_name,
        "Orchestrator API Access"
    );
    // ... and the user consents.
    let back = setup
        .signin
        .accept_authorization_request(&id, USER, vec!["OR.Jobs".into(), "offline_access".into()])
        .await
        .unwrap();
    assert!(back.starts_with(&format!("{redirect}?")), "{back}");
    let answer = query_of(&back);
    assert_eq!(&answer["state"], csrf.secret());
    assert_eq!(answer["iss"], server.url, "RFC 9207");
    let code = answer["code"].clone();
    assert!(code.starts_with("extapps_ac_"));

    let client = http();
    let tokens = oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&client)
        .await
        .unwrap();
    let access = tokens.access_token().secret().clone();
    let first_refresh = tokens.refresh_token().unwrap().secret().clone();
    assert!(first_refresh.starts_with("extapps_rt_"));
    let introspected = introspect_grpc(&server.url, &setup.introspect_key, &access).await;
    assert!(introspected.active);
    assert_eq!(introspected.sub, USER);
    assert_eq!(introspected.scope, "OR.Jobs");
    assert_eq!(introspected.client_id, app.id);
    assert_eq!(introspected.aud, ["OR"]);
    let http_view =
        crate::support::oauth_http::introspect_http(&server.url, &setup.introspect_key, &access)
            .await;
    assert_eq!(http_view["sub"], USER);

    // The refresh token rotates; both access tokens stay valid.
    let refreshed = oauth
        .exchange_refresh_token(&RefreshToken::new(first_refresh.clone()))
        .request_async(&client)
        .await
        .unwrap();
    let second_refresh = refreshed.refresh_token().unwrap().secret().clone();
    assert_ne!(second_refresh, first_refresh);
    assert!(
        is_active(
            &server.url,
            &setup.introspect_key,
            refreshed.access_token().secret()
        )
        .await
    );
    assert!(is_active(&server.url, &setup.introspect_key, &access).await);
    let again = oauth
        .exchange_refresh_token(&RefreshToken::new(second_refresh))
        .request_async(&client)
        .await
        .unwrap();
    assert_eq!(
        again
            .scopes()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        ["OR.Jobs", "offline_access"]
    );

    // Nothing usable is stored: codes and refresh tokens as digests only.
    let dump = stored_grants(server).await;
    assert!(
        !dump.contains(&first_refresh[11..]),
        "no refresh token in the database"
    );
    assert!(!dump.contains("extapps_rt_") && !dump.contains("extapps_ac_"));
}

/// Every grant row, as text, for checking what is stored.
async fn stored_grants(server: &TestServer) -> String {
    use sea_orm::{ConnectionTrait, Statement};
    let db = server.store().connection();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT * FROM user_grants",
        ))
        .await
        .unwrap();
    format!("{rows:?}")
}
