//! Refresh tokens: each use rotates them, a retry within the grace window
//! gets the same successor, reuse after it revokes the whole grant, idle
//! ones expire, forged ones are merely invalid, and the application revokes
//! them (RFC 7009).

use extapps_client::v1 as pb;
use reqwest::StatusCode;

use crate::support::fixtures::*;
use crate::support::harness::Backend;
use crate::support::oauth_http::{is_active, post_form};
use crate::support::user_flow::{
    LOOPBACK, USER, consented_code, native, redeem, refresh, setup, text, token_request,
};

crate::on_both_backends!(refresh_tokens_rotate_and_reuse_revokes_the_whole_grant);

async fn refresh_tokens_rotate_and_reuse_revokes_the_whole_grant(backend: Backend) {
    let mut setup = setup(backend).await;
    let app = native(&mut setup, "Native").await;
    let server = &setup.server;
    let key = &setup.introspect_key;
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs OR.Queues offline_access").await;
    let (_, first) = redeem(server, &app, &code, LOOPBACK).await;
    let r1 = text(&first, "refresh_token").to_owned();

    let (status, second) = refresh(server, &app, &r1).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let r2 = text(&second, "refresh_token").to_owned();
    assert_ne!(r1, r2);
    // A client that lost the answer retries within the grace window and
    // gets the same successor.
    server.clock.advance(time::Duration::seconds(20));
    let (status, retried) = refresh(server, &app, &r1).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(text(&retried, "refresh_token"), r2);
    // Narrowing: a subset of the granted scopes.
    let (status, narrowed) = token_request(
        server,
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r2),
            ("scope", "OR.Queues"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{narrowed}");
    assert_eq!(text(&narrowed, "scope"), "OR.Queues offline_access");
    let r3 = text(&narrowed, "refresh_token").to_owned();
    let (status, wider) = token_request(
        server,
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r3),
            ("scope", "OR.Assets"),
        ],
    )
    .await;
    assert_eq!(
        (status, text(&wider, "error")),
        (StatusCode::BAD_REQUEST, "invalid_scope")
    );

    // The token just replaced (r2) gets its successor again up to 30 s
    // after the rotation, and is reuse after that: the whole grant ends.
    server.clock.advance(time::Duration::seconds(30));
    let (status, body) = refresh(server, &app, &r2).await;
    assert_eq!(status, StatusCode::OK, "the last moment of grace: {body}");
    assert_eq!(text(&body, "refresh_token"), r3);
    server.clock.advance(time::Duration::milliseconds(1));
    let (status, body) = refresh(server, &app, &r2).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (status, _) = refresh(server, &app, &r3).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the newest token died too");
    for body in [&first, &second, &narrowed] {
        assert!(!is_active(&server.url, key, text(body, "access_token")).await);
    }
    let events = audit(&mut setup.admin, "acme").await;
    assert_eq!(events[0].action(), pb::AuditAction::GrantReplayed);
    assert_eq!(events[0].details["replayed"], "refresh_token");
    assert_eq!(events[0].details["subject"], USER);

    // A refresh token unused for 30 days stops working.
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs offline_access").await;
    let (_, body) = redeem(server, &app, &code, LOOPBACK).await;
    let idle = text(&body, "refresh_token").to_owned();
    server.clock.advance(time::Duration::days(30));
    let (status, _) = refresh(server, &app, &idle).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A forged token naming a real grant (its MAC altered, its checksum
    // made right) is merely invalid: it does not end the grant.
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs offline_access").await;
    let (_, body) = redeem(server, &app, &code, LOOPBACK).await;
    let genuine = text(&body, "refresh_token").to_owned();
    let forged = forge(&genuine);
    let (status, body) = refresh(server, &app, &forged).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (status, body) = refresh(server, &app, &genuine).await;
    assert_eq!(status, StatusCode::OK, "the grant lives on: {body}");

    // RFC 7009: the application revokes its refresh token, and with it the
    // grant's access tokens; the token just replaced revokes it too (a
    // client that lost a rotation's answer can still log out).
    let access = text(&body, "access_token").to_owned();
    let revocable = genuine;
    let (status, _) = post_form(
        &server.url,
        "/oauth2/revoke",
        None,
        &[("token", &revocable), ("client_id", &app.id)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!is_active(&server.url, key, &access).await);
    let (status, _) = refresh(server, &app, &revocable).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// `token` with one byte of its MAC changed and its checksum made right
/// again: what someone who knows the grant's ID could make.
fn forge(token: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let prefix = "extapps_rt_";
    let mut body = URL_SAFE_NO_PAD
        .decode(&token[prefix.len()..token.len() - 8])
        .unwrap();
    let last = body.len() - 1;
    body[last] ^= 0x55;
    let mut forged = String::from(prefix);
    URL_SAFE_NO_PAD.encode_string(&body, &mut forged);
    let checksum = crc32fast::hash(forged.as_bytes());
    forged.push_str(&format!("{checksum:08x}"));
    forged
}
