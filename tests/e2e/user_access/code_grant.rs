//! Redeeming authorization codes: a code is used once, by its client, with
//! its redirect URL and PKCE verifier; a replay revokes what it gave, and of
//! simultaneous redemptions one wins.

use extapps_client::v1 as pb;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer};
use crate::support::oauth_http::{is_active, post_form};
use crate::support::user_flow::{
    App, LOOPBACK, VERIFIER, WEB_CALLBACK, consented_code, native, redeem, refresh, setup, text,
    token_request, web, web_code,
};

crate::on_both_backends!(
    codes_are_single_use_and_bound_to_client_redirect_and_verifier,
    simultaneous_redemptions_have_one_winner,
);

async fn codes_are_single_use_and_bound_to_client_redirect_and_verifier(backend: Backend) {
    let mut setup = setup(backend).await;
    let native_app = native(&mut setup, "Native").await;
    let web_app = web(&mut setup, "Web").await;
    let server = &setup.server;

    // A confidential application authenticates with its secret; PKCE is
    // optional for it.
    let web_code = web_code(&setup, &web_app, "OR.Jobs").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", web_code.as_str()),
        ("redirect_uri", WEB_CALLBACK),
    ];
    let (status, body) = post_form(
        &server.url,
        "/oauth2/token",
        None,
        &[&form[..], &[("client_id", &web_app.id)]].concat(),
    )
    .await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::UNAUTHORIZED, "invalid_client"),
        "no secret"
    );
    let with_verifier = [&form[..], &[("code_verifier", VERIFIER)]].concat();
    let (status, body) = token_request(server, &web_app, &with_verifier).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "PKCE downgrade"
    );
    let (status, body) = token_request(server, &web_app, &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    assert_eq!(text(&body, "scope"), "OR.Jobs");

    // The native application's code, tried every wrong way first.
    let code = consented_code(&setup, &native_app, LOOPBACK, "OR.Jobs offline_access").await;
    let wrong_verifier = VERIFIER.replace('d', "e");
    type Attempt<'a> = (&'a str, &'a App, Vec<(&'a str, &'a str)>, &'a str);
    let attempts: [Attempt; 6] = [
        (
            "another client",
            &web_app,
            vec![
                ("code", &code),
                ("redirect_uri", LOOPBACK),
                ("code_verifier", VERIFIER),
            ],
            "invalid_grant",
        ),
        (
            "another redirect",
            &native_app,
            vec![
                ("code", &code),
                ("redirect_uri", "com.example.app:/callback"),
                ("code_verifier", VERIFIER),
            ],
            "invalid_grant",
        ),
        (
            "no redirect",
            &native_app,
            vec![("code", &code), ("code_verifier", VERIFIER)],
            "invalid_request",
        ),
        (
            "no verifier",
            &native_app,
            vec![("code", &code), ("redirect_uri", LOOPBACK)],
            "invalid_request",
        ),
        (
            "wrong verifier",
            &native_app,
            vec![
                ("code", &code),
                ("redirect_uri", LOOPBACK),
                ("code_verifier", &wrong_verifier),
            ],
            "invalid_grant",
        ),
        (
            "a typo in the code",
            &native_app,
            vec![
                ("code", &code[..code.len() - 1]),
                ("redirect_uri", LOOPBACK),
                ("code_verifier", VERIFIER),
            ],
            "invalid_grant",
        ),
    ];
    for (case, client, form, error) in attempts {
        let form = [&[("grant_type", "authorization_code")][..], &form[..]].concat();
        let (status, body) = token_request(server, client, &form).await;
        assert_eq!(
            (status, text(&body, "error")),
            (StatusCode::BAD_REQUEST, error),
            "{case}: {body}"
        );
    }
    let (status, body) = redeem(server, &native_app, &code, LOOPBACK).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the wrong tries did not use the code up: {body}"
    );
    let access = text(&body, "access_token").to_owned();
    let refresh_token = text(&body, "refresh_token").to_owned();
    assert!(is_active(&server.url, &setup.introspect_key, &access).await);

    // A replayed code is refused and revokes what it gave (RFC 6749 4.1.2).
    let (status, body) = redeem(server, &native_app, &code, LOOPBACK).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert!(!is_active(&server.url, &setup.introspect_key, &access).await);
    let (status, _) = refresh(server, &native_app, &refresh_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let events = audit(&mut setup.admin, "acme").await;
    assert_eq!(events[0].action(), pb::AuditAction::GrantReplayed);
    assert_eq!(events[0].details["replayed"], "authorization_code");

    // Codes live 60 seconds.
    let late = consented_code(&setup, &native_app, LOOPBACK, "OR.Jobs").await;
    server.clock.advance(time::Duration::seconds(61));
    let (status, body) = redeem(server, &native_app, &late, LOOPBACK).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    // A non-confidential client may not use client credentials.
    let (status, body) =
        token_request(server, &native_app, &[("grant_type", "client_credentials")]).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "unauthorized_client")
    );
}

async fn simultaneous_redemptions_have_one_winner(backend: Backend) {
    let mut setup = setup(backend).await;
    let app = native(&mut setup, "Racer").await;
    let server = &setup.server;
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs offline_access").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", LOOPBACK),
        ("code_verifier", VERIFIER),
        ("client_id", app.id.as_str()),
    ];
    let outcomes = at_once(server, &form, 8).await;
    let winners = outcomes
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .count();
    assert_eq!(winners, 1, "{outcomes:?}");
    // The losers replayed the code: the winner's tokens were revoked too.
    let (_, won) = outcomes.iter().find(|(s, _)| *s == StatusCode::OK).unwrap();
    assert!(
        !is_active(
            &server.url,
            &setup.introspect_key,
            text(won, "access_token")
        )
        .await
    );

    // One refresh token sent eight times at once: one rotation; every
    // answer that succeeds carries the same successor.
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs offline_access").await;
    let (_, body) = redeem(server, &app, &code, LOOPBACK).await;
    let parent = text(&body, "refresh_token").to_owned();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", parent.as_str()),
        ("client_id", app.id.as_str()),
    ];
    let outcomes = at_once(server, &form, 8).await;
    let successors: std::collections::BTreeSet<_> = outcomes
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .map(|(_, b)| text(b, "refresh_token").to_owned())
        .collect();
    assert_eq!(successors.len(), 1, "{outcomes:?}");
    let successor = successors.into_iter().next().unwrap();
    let (status, _) = refresh(server, &app, &successor).await;
    assert_eq!(status, StatusCode::OK, "the one successor works");
}

/// Posts the same token request `times` times at once, as a public client.
async fn at_once(
    server: &TestServer,
    form: &[(&str, &str)],
    times: usize,
) -> Vec<(StatusCode, Value)> {
    let form: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(times));
    let tasks: Vec<_> = (0..times)
        .map(|_| {
            let (url, form, start) = (server.url.clone(), form.clone(), start.clone());
            tokio::spawn(async move {
                let pairs: Vec<(&str, &str)> =
                    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                start.wait().await;
                post_form(&url, "/oauth2/token", None, &pairs).await
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(times);
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}
