//! What the application's administrator does ends or narrows user tokens:
//! removed scopes (which never come back), deletion, and a new secret with
//! `revoke_tokens`.

use extapps_client::v1 as pb;
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;

use crate::support::fixtures::*;
use crate::support::harness::Backend;
use crate::support::oauth_http::{introspect_grpc, is_active};
use crate::support::stored::count;
use crate::support::user_flow::{
    App, LOOPBACK, WEB_CALLBACK, consented_code, native, redeem, refresh, setup, text,
    token_request, web, web_code,
};

crate::on_both_backends!(
    application_changes_end_or_narrow_user_tokens,
    removed_user_scopes_never_come_back,
    refresh_tokens_end_with_the_secret_they_were_issued_under,
    refresh_tokens_end_with_a_deleted_secret_and_no_other,
);

async fn application_changes_end_or_narrow_user_tokens(backend: Backend) {
    let mut setup = setup(backend).await;
    let app = native(&mut setup, "Native").await;
    let web_app = web(&mut setup, "Web").await;
    let server = &setup.server;
    let key = setup.introspect_key.clone();
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs OR.Queues offline_access").await;
    let (_, body) = redeem(server, &app, &code, LOOPBACK).await;
    let access = text(&body, "access_token").to_owned();
    let refresh_token = text(&body, "refresh_token").to_owned();

    // Removing a user scope narrows live tokens at once.
    setup
        .admin
        .update_application_scopes(pb::UpdateApplicationScopesRequest {
            name: app.name.clone(),
            grants: vec![grant("OR", &["OR.Queues", "OR.Assets"], &[])],
            etag: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        introspect_grpc(&server.url, &key, &access).await.scope,
        "OR.Queues"
    );
    let (status, body) = refresh(server, &app, &refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        text(&body, "scope"),
        "OR.Queues offline_access",
        "never the new OR.Assets"
    );
    let refresh_token = text(&body, "refresh_token").to_owned();

    // Deleting the application ends everything.
    setup
        .admin
        .delete_application(pb::DeleteApplicationRequest {
            name: app.name.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    assert!(!is_active(&server.url, &key, &access).await);
    let (status, _) = refresh(server, &app, &refresh_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the client is gone");
    assert_eq!(count(server, "user_grants").await, 0, "its grants with it");

    // A new secret with `revoke_tokens` ends the refresh tokens and codes
    // of a confidential application too.
    let first = web_code(&setup, &web_app, "OR.Jobs offline_access").await;
    let (status, body) = token_request(
        server,
        &web_app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &first),
            ("redirect_uri", WEB_CALLBACK),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let web_refresh = text(&body, "refresh_token").to_owned();
    let unredeemed = web_code(&setup, &web_app, "OR.Jobs offline_access").await;
    server.clock.advance(time::Duration::milliseconds(1));
    let new_secret = rotate(&mut setup.admin, &web_app.name, 0, true)
        .await
        .client_secret;
    let rotated = App {
        name: web_app.name.clone(),
        id: web_app.id.clone(),
        secret: Some(new_secret),
    };
    let (status, body) = refresh(server, &rotated, &web_refresh).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (status, body) = token_request(
        server,
        &rotated,
        &[
            ("grant_type", "authorization_code"),
            ("code", &unredeemed),
            ("redirect_uri", WEB_CALLBACK),
        ],
    )
    .await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

/// A user scope removed from an application never comes back to access or
/// refresh tokens issued before its removal, even once granted again.
async fn removed_user_scopes_never_come_back(backend: Backend) {
    let mut setup = setup(backend).await;
    let web_app = web(&mut setup, "Web").await;
    let native_app = native(&mut setup, "Native").await;
    let server = &setup.server;
    let key = setup.introspect_key.clone();
    let code = web_code(&setup, &web_app, "OR.Jobs OR.Queues offline_access").await;
    let (status, body) = token_request(
        server,
        &web_app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", WEB_CALLBACK),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let web_access = text(&body, "access_token").to_owned();
    let web_refresh = text(&body, "refresh_token").to_owned();
    let code = consented_code(
        &setup,
        &native_app,
        LOOPBACK,
        "OR.Jobs OR.Queues offline_access",
    )
    .await;
    let (_, body) = redeem(server, &native_app, &code, LOOPBACK).await;
    let native_access = text(&body, "access_token").to_owned();
    let native_refresh = text(&body, "refresh_token").to_owned();

    // Every user scope of the web application goes; OR.Jobs of the native
    // one (which keeps OR.Queues).
    let web_grants = |user: &[&str]| vec![grant("OR", user, &["OR.Jobs.Read"])];
    set_scopes(&mut setup.admin, &web_app.name, web_grants(&[])).await;
    set_scopes(
        &mut setup.admin,
        &native_app.name,
        vec![grant("OR", &["OR.Queues"], &[])],
    )
    .await;
    let ended = async |access: &str| !is_active(&server.url, &key, access).await;
    let scope = async |access: &str| introspect_grpc(&server.url, &key, access).await.scope;
    assert!(ended(&web_access).await);
    assert_eq!(scope(&native_access).await, "OR.Queues");
    // Granted again: nothing issued before comes back.
    set_scopes(
        &mut setup.admin,
        &web_app.name,
        web_grants(&["OR.Jobs", "OR.Queues"]),
    )
    .await;
    set_scopes(
        &mut setup.admin,
        &native_app.name,
        vec![grant("OR", &["OR.Jobs", "OR.Queues"], &[])],
    )
    .await;
    assert!(ended(&web_access).await);
    assert_eq!(scope(&native_access).await, "OR.Queues");
    let (status, body) = refresh(server, &web_app, &web_refresh).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "{body}"
    );
    // The native authorization goes on with what it kept, never more.
    let (status, body) = refresh(server, &native_app, &native_refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(text(&body, "scope"), "OR.Queues offline_access");
    assert_eq!(
        scope(text(&body, "access_token")).await,
        "OR.Queues",
        "the new access token"
    );
    // The user authorizes again: the new grant has the scopes.
    let code = consented_code(&setup, &native_app, LOOPBACK, "OR.Jobs").await;
    let (_, body) = redeem(server, &native_app, &code, LOOPBACK).await;
    assert_eq!(
        introspect_grpc(&server.url, &key, text(&body, "access_token"))
            .await
            .scope,
        "OR.Jobs"
    );
}

/// A refresh token issued to a client whose secret a rotation with
/// `revoke_tokens` then ended ends too, even on a grant the rotation's own
/// revocation of grants did not see (one accepted while it committed): the
/// grant records what its refresh token was issued under.
async fn refresh_tokens_end_with_the_secret_they_were_issued_under(backend: Backend) {
    let mut setup = setup(backend).await;
    let web_app = web(&mut setup, "Web").await;
    let server = &setup.server;
    let redeem_web = async |code: &str| {
        let (status, body) = token_request(
            server,
            &web_app,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", WEB_CALLBACK),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        text(&body, "refresh_token").to_owned()
    };
    let code = web_code(&setup, &web_app, "OR.Jobs offline_access").await;
    let before = redeem_web(&code).await;
    // The old secret keeps working for an hour, but its tokens end.
    rotate(&mut setup.admin, &web_app.name, 3600, true).await;
    // As if the grant had been accepted while the rotation committed.
    let db = server.store().connection();
    let sql = match backend {
        Backend::Sqlite => "UPDATE user_grants SET revoke_time = NULL WHERE application_id = ?",
        Backend::Postgres => "UPDATE user_grants SET revoke_time = NULL WHERE application_id = $1",
    };
    let revived = db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            [web_app.id.clone().into()],
        ))
        .await
        .unwrap();
    assert_eq!(revived.rows_affected(), 1, "the grant the rotation revoked");
    let (status, body) = refresh(server, &web_app, &before).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "{body}"
    );
    // What the old secret gets during its grace period works.
    let code = web_code(&setup, &web_app, "OR.Jobs offline_access").await;
    let during = redeem_web(&code).await;
    let (status, body) = refresh(server, &web_app, &during).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn refresh_tokens_end_with_a_deleted_secret_and_no_other(backend: Backend) {
    let mut setup = setup(backend).await;
    let web_app = web(&mut setup, "Web").await;
    let first = get(&mut setup.admin, &web_app.name).await.secrets[0].clone();
    let (second_secret, after) = add_secret(&mut setup.admin, &web_app.name, "", None).await;
    let second_info = newest(&after, &[&first]);
    let second = App {
        name: web_app.name.clone(),
        id: web_app.id.clone(),
        secret: Some(second_secret),
    };
    let server = &setup.server;
    let redeem_with = async |app: &App| {
        let code = web_code(&setup, &web_app, "OR.Jobs offline_access").await;
        let (status, body) = token_request(
            server,
            app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", WEB_CALLBACK),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        text(&body, "refresh_token").to_owned()
    };
    let by_first = redeem_with(&web_app).await;
    let by_second = redeem_with(&second).await;
    // It refreshes while its secret lives (the refresh token rotates, and
    // the new one is again the second secret's).
    let (status, body) = refresh(server, &second, &by_second).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let by_second = text(&body, "refresh_token").to_owned();

    let mut admin = server.admin("acme").await;
    delete_secret(&mut admin, &second_info, true).await.unwrap();
    // The client refreshes with the secret it still has.
    let (status, body) = refresh(server, &web_app, &by_second).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "the refresh token the deleted secret got ended: {body}"
    );
    let (status, body) = refresh(server, &web_app, &by_first).await;
    assert_eq!(status, StatusCode::OK, "the other secret's goes on: {body}");
}
