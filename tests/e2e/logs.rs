//! The log of a real server process after hostile traffic: what callers
//! cause is counted in the metrics, never an ERROR line; no secret and no
//! query string reaches the log, at any level.

use extapps_client::v1 as pb;
use reqwest::StatusCode;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, fresh_database};
use crate::support::oauth_http::{http, metrics};
use crate::support::processes::{Serving, create_key, key_file};

crate::on_both_backends!(hostile_traffic_leaves_no_error_line_and_no_secret);

/// A well-formed caller key (prefix and checksum right) that nobody holds.
fn forged_key() -> String {
    let signed = format!("extapps_key_{}", "Q".repeat(43));
    format!("{signed}{:08x}", crc32fast::hash(signed.as_bytes()))
}

async fn hostile_traffic_leaves_no_error_line_and_no_secret(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(backend, &dir).await;
    let key_file = key_file(dir.path());
    let env = [
        ("EXTAPPS_DATABASE_URL", database.as_str()),
        ("EXTAPPS_KEY_FILE", key_file.as_str()),
        ("EXTAPPS_SIGNIN_URL", "https://signin.example/"),
    ];
    let admin_key = create_key(dir.path(), &env, "admin");
    let serving = Serving::start_with(dir.path(), &env);
    let url = serving.url();
    let mut admin = extapps_client::connect(&url, &admin_key)
        .await
        .unwrap()
        .generated();
    let registered = register(&mut admin, "acme", service_app("Logged")).await;
    let app = registered.application.unwrap();
    let secret = registered.client_secret;

    // An administrator's mistakes: not found, bad input, a name taken, a
    // stale etag, a secret for an application that cannot have one, and a
    // role that may not introspect.
    let missing = admin
        .get_application(pb::GetApplicationRequest {
            name: format!("organizations/acme/applications/{}", uuid::Uuid::new_v4()),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let mut nameless = service_app("");
    nameless.grants.clear();
    let invalid = admin
        .register_application(register_request("acme", nameless))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
    let taken = admin
        .register_application(register_request("acme", service_app("Logged")))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), tonic::Code::AlreadyExists);
    let stale = admin
        .update_application_scopes(pb::UpdateApplicationScopesRequest {
            name: app.name.clone(),
            grants: vec![grant("OR", &[], &["OR.Queues"])],
            etag: "\"999\"".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Aborted);
    let native = register(&mut admin, "acme", native_app("Native")).await;
    let precondition = admin
        .generate_application_secret(pb::GenerateApplicationSecretRequest {
            name: native.application.unwrap().name,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(precondition.code(), tonic::Code::FailedPrecondition);
    let denied = admin
        .introspect_token(pb::IntrospectTokenRequest { token: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    // OAuth clients that put secrets where they do not belong, or get
    // things wrong.
    let query_secret = format!("{url}/oauth2/token?client_secret={secret}&state=query-marker");
    let response = http()
        .post(&query_secret)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = http()
        .post(&query_secret)
        .basic_auth(&app.client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the query is ignored");
    let token = response.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for (path, body) in [
        ("/oauth2/token", "grant_type=password"),
        (
            "/oauth2/token",
            "grant_type=client_credentials&client_id=x&client_secret=y",
        ),
        ("/oauth2/revoke", "token=x"),
        ("/oauth2/introspect", "token=x"),
    ] {
        let response = http()
            .post(format!("{url}{path}?client_secret={secret}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{path}: {response:?}");
    }
    let response = http()
        .get(format!(
            "{url}/oauth2/authorize?client_id={}&state=query-marker",
            app.client_id
        ))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());

    // Last (it closes this address to failing clients): 300 calls with a
    // key nobody holds, UNAUTHENTICATED, then RESOURCE_EXHAUSTED once the
    // address has failed too often.
    let forged = forged_key();
    let mut stranger = extapps_client::connect(&url, &forged)
        .await
        .unwrap()
        .generated();
    for _ in 0..300 {
        let status = stranger
            .list_applications(pb::ListApplicationsRequest {
                parent: "organizations/acme".into(),
                page_size: 10,
                page_token: String::new(),
            })
            .await
            .unwrap_err();
        assert!(
            [tonic::Code::Unauthenticated, tonic::Code::ResourceExhausted].contains(&status.code()),
            "{status:?}"
        );
    }
    // Counted, by code.
    let counted = metrics(&url).await;
    for code in [
        "UNAUTHENTICATED",
        "RESOURCE_EXHAUSTED",
        "NOT_FOUND",
        "INVALID_ARGUMENT",
        "ALREADY_EXISTS",
        "ABORTED",
        "FAILED_PRECONDITION",
        "PERMISSION_DENIED",
    ] {
        assert!(
            counted.contains(&format!("code=\"{code}\"")),
            "{code} is counted:\n{counted}"
        );
    }
    assert!(counted.contains("code=\"401\""), "{counted}");

    // Everything above reached the log as it will (one more request's
    // lines, to be sure the earlier ones are in).
    let before = serving.count_logs("/metrics");
    metrics(&url).await;
    serving.wait_for_logs("/metrics", before + 1);
    let logs = serving.logs();
    let errors: Vec<&String> = logs
        .iter()
        .filter(|line| line.contains("\"level\":\"ERROR\""))
        .collect();
    assert!(errors.is_empty(), "ERROR lines: {errors:#?}");
    for (what, needle) in [
        ("the client secret", secret.as_str()),
        ("its random part", &secret[11..40]),
        ("the forged key", forged.as_str()),
        ("the admin key", admin_key.as_str()),
        ("the access token", token.as_str()),
        ("a query string", "query-marker"),
        ("a query string", "client_secret="),
    ] {
        assert!(
            !logs.iter().any(|line| line.contains(needle)),
            "{what} is in the log"
        );
    }
    // The log still says which paths were called.
    assert!(logs.iter().any(|line| line.contains("/oauth2/token")));
}
