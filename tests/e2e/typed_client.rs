//! The typed Rust client (`extapps_client::Client`): the administrator's
//! cycle in its types, retries of what is safe to repeat, timeouts.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use extapps_client::{
    Client, RetryPolicy,
    model::{
        ApplicationType, ApplicationUpdate, Grant, Introspection, NewApplication, NewSecret,
        PageRequest,
    },
    v1::AuditAction,
};
use extapps_server::domain::caller::Role;
use reqwest::StatusCode;
use tokio::net::TcpListener;
use tonic::Code;

use crate::support::harness::{Backend, TestServer};
use crate::support::oauth_http::post_form;

crate::on_both_backends!(a_rust_service_runs_the_administrator_cycle_with_the_typed_client);

async fn a_rust_service_runs_the_administrator_cycle_with_the_typed_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin_key = server.key(Some("acme"), Role::Admin, &[]).await;
    let client = Client::builder(&server.url, &admin_key)
        .connect()
        .await
        .unwrap();

    let resources = client.resources().await.unwrap();
    let orchestrator = resources.iter().find(|r| r.id == "OR").unwrap();
    assert!(
        orchestrator
            .application_scopes
            .iter()
            .any(|(name, _)| name == "OR.Jobs.Read")
    );

    let registered = client
        .register(
            "acme",
            NewApplication::new("Typed client", ApplicationType::Confidential)
                .grant(Grant::on("OR").application_scopes(["OR.Jobs.Read", "OR.Queues"])),
        )
        .await
        .unwrap();
    let secret = registered.secret.clone().unwrap();
    assert!(secret.expose().starts_with("extapps_cs_"));
    assert!(
        !format!("{registered:?}").contains(secret.expose()),
        "Debug shows the secret"
    );
    let app = registered.application;
    assert_eq!(app.name.organization, "acme");
    assert_eq!(app.kind, ApplicationType::Confidential);
    assert_eq!(app.secrets.len(), 1);
    assert_eq!(client.get(&app.name).await.unwrap(), app);
    let first_page = client
        .list(
            "acme",
            PageRequest {
                size: 10,
                ..PageRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first_page.items, vec![app.clone()]);
    assert_eq!(first_page.next_page_token, None);

    // A token of the application, introspected in the client's types.
    let (status, body) = post_form(
        &server.url,
        "/oauth2/token",
        Some((&app.client_id().to_string(), secret.expose())),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let introspect_key = server.key(Some("acme"), Role::Introspect, &[]).await;
    let introspector = Client::builder(&server.url, &introspect_key)
        .connect()
        .await
        .unwrap();
    let Introspection::Active(claims) = introspector.introspect(token).await.unwrap() else {
        panic!("a fresh token is inactive");
    };
    assert_eq!(claims.client_id, app.client_id());
    assert_eq!(claims.scopes, ["OR.Jobs.Read", "OR.Queues"]);
    assert_eq!(claims.audience, ["OR"]);
    assert!(claims.expires > claims.issued);
    assert_eq!(
        introspector.introspect("extapps_at_forged").await.unwrap(),
        Introspection::Inactive
    );

    let renamed = client
        .update(
            &app.name,
            ApplicationUpdate {
                display_name: Some("Typed client, renamed".to_owned()),
                etag: Some(app.etag.clone()),
                ..ApplicationUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.display_name, "Typed client, renamed");
    assert_ne!(renamed.etag, app.etag);

    let narrowed = client
        .set_scopes(
            &app.name,
            vec![Grant::on("OR").application_scopes(["OR.Jobs.Read"])],
            Some(renamed.etag.clone()),
        )
        .await
        .unwrap();
    assert_eq!(narrowed.grants[0].application_scopes, ["OR.Jobs.Read"]);
    let Introspection::Active(claims) = introspector.introspect(token).await.unwrap() else {
        panic!("the token lost its last scope");
    };
    assert_eq!(claims.scopes, ["OR.Jobs.Read"]);

    let rotated = client
        .generate_secret(
            &app.name,
            NewSecret {
                grace_period: Some(Duration::from_secs(3600)),
                ..NewSecret::default()
            },
        )
        .await
        .unwrap();
    assert_ne!(rotated.secret.expose(), secret.expose());
    assert_eq!(rotated.application.secrets.len(), 2, "old one in its grace");
    assert_eq!(
        rotated
            .application
            .secrets
            .iter()
            .filter(|s| s.expires.is_some())
            .count(),
        1
    );

    // A refused call carries the server's reason and field violations.
    let refused = client
        .register(
            "acme",
            NewApplication::new(" ", ApplicationType::NonConfidential),
        )
        .await
        .unwrap_err();
    let report = refused.report().unwrap();
    assert_eq!(report.code, Code::InvalidArgument);
    assert!(
        report.violation("application.display_name").is_some(),
        "{report}"
    );
    let stale = client
        .delete(&app.name, Some(app.etag.clone()))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Some(Code::Aborted), "{stale}");
    assert_eq!(
        stale.report().unwrap().reason.as_deref(),
        Some("ETAG_MISMATCH")
    );

    let events = client
        .audit_events("acme", Some(&app.name), PageRequest::default())
        .await
        .unwrap();
    let actions: Vec<AuditAction> = events.items.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::ApplicationSecretGenerated,
            AuditAction::ApplicationScopesUpdated,
            AuditAction::ApplicationUpdated,
            AuditAction::ApplicationRegistered,
        ]
    );
    assert_eq!(events.items[0].application.as_ref(), Some(&app.name));

    client.delete(&app.name, None).await.unwrap();
    let gone = client.get(&app.name).await.unwrap_err();
    assert_eq!(gone.code(), Some(Code::NotFound));
    assert_eq!(
        introspector.introspect(token).await.unwrap(),
        Introspection::Inactive
    );
}

/// How a front of the server fails its first calls.
#[derive(Clone, Copy)]
enum Outage {
    /// Answers UNAVAILABLE without reaching the server, as a proxy does
    /// while the server restarts.
    Refuse,
    /// Lets the server do the call, then loses its answer and says
    /// UNAVAILABLE: the caller cannot know the call happened.
    LoseAnswer,
}

/// A second server on the same service, failing its first `failures` calls;
/// `calls` counts every call it saw.
struct Front {
    url: String,
    calls: Arc<AtomicUsize>,
}

async fn front(server: &TestServer, outage: Outage, failures: usize) -> Front {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = extapps_server::server::router(server.service.clone())
        .await
        .unwrap()
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let failing = counter.fetch_add(1, Ordering::SeqCst) < failures;
                async move {
                    let unavailable = || tonic::Status::unavailable("restarting").into_http();
                    match (failing, outage) {
                        (false, _) => next.run(request).await,
                        (true, Outage::Refuse) => unavailable(),
                        (true, Outage::LoseAnswer) => {
                            let _lost = next.run(request).await;
                            unavailable()
                        }
                    }
                }
            },
        ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(extapps_server::server::serve(
        listener,
        None,
        router,
        std::future::pending(),
        extapps_server::server::ConnectionLimits::default(),
    ));
    Front { url, calls }
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        retries: 3,
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_calls_are_retried_while_the_server_is_unavailable_and_others_are_not() {
    let server = TestServer::start(Backend::Sqlite).await;
    let key = server.key(Some("acme"), Role::Admin, &[]).await;
    let direct = Client::builder(&server.url, &key).connect().await.unwrap();
    let app = direct
        .register(
            "acme",
            NewApplication::new("Flaky", ApplicationType::NonConfidential)
                .grant(Grant::on("OR").user_scopes(["OR.Jobs"]))
                .redirect_url("https://flaky.example/cb"),
        )
        .await
        .unwrap()
        .application;
    let through = |front: &Front, retry: RetryPolicy| {
        Client::builder(&front.url, &key)
            .retry(retry)
            .connect_lazy()
            .unwrap()
    };

    // A read succeeds once the server is back: two refusals, then the third
    // attempt.
    let front = front(&server, Outage::Refuse, 2).await;
    let client = through(&front, quick_retries());
    assert_eq!(client.get(&app.name).await.unwrap(), app);
    assert_eq!(front.calls.load(Ordering::SeqCst), 3);

    // The answer to a registration is lost: the retry carries the same
    // request ID, so the server answers with the application it registered
    // the first time, and its secret works.
    let front = self::front(&server, Outage::LoseAnswer, 1).await;
    let client = through(&front, quick_retries());
    let registered = client
        .register(
            "acme",
            NewApplication::new("Retried", ApplicationType::Confidential)
                .grant(Grant::on("OR").application_scopes(["OR.Jobs.Read"])),
        )
        .await
        .unwrap();
    assert_eq!(front.calls.load(Ordering::SeqCst), 2);
    let names: Vec<String> = direct
        .list("acme", PageRequest::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|a| a.display_name)
        .collect();
    assert_eq!(names, ["Flaky", "Retried"], "registered once");
    let (status, body) = post_form(
        &server.url,
        "/oauth2/token",
        Some((
            &registered.application.client_id().to_string(),
            registered.secret.unwrap().expose(),
        )),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Deletion is never retried: its answer lost, the caller hears
    // UNAVAILABLE once, and must look before trying again.
    let front = self::front(&server, Outage::LoseAnswer, 1).await;
    let client = through(&front, quick_retries());
    let refused = client.delete(&app.name, None).await.unwrap_err();
    assert_eq!(refused.code(), Some(Code::Unavailable), "{refused}");
    assert_eq!(front.calls.load(Ordering::SeqCst), 1);
    let gone = direct.get(&app.name).await.unwrap_err();
    assert_eq!(gone.code(), Some(Code::NotFound));

    // Without retries, a read fails on the first refusal.
    let front = self::front(&server, Outage::Refuse, 1).await;
    let client = through(&front, RetryPolicy::never());
    let refused = client.get(&registered.application.name).await.unwrap_err();
    assert_eq!(refused.code(), Some(Code::Unavailable), "{refused}");
    assert_eq!(front.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_a_server_that_never_answers_ends_at_the_timeout() {
    // Speaks HTTP/2 but never answers a call.
    let stalled = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stalled_url = format!("http://{}", stalled.local_addr().unwrap());
    let router = axum::Router::new().fallback(std::future::pending::<()>);
    tokio::spawn(async move { axum::serve(stalled, router).await });
    let client = Client::builder(&stalled_url, "extapps_key_x")
        .timeout(Some(Duration::from_millis(50)))
        .connect()
        .await
        .unwrap();
    // Bounded from outside too: a client timeout that did not work fails
    // this test instead of hanging it.
    let timed_out = tokio::time::timeout(Duration::from_secs(10), client.resources())
        .await
        .expect("the client's own timeout ends the call")
        .unwrap_err();
    assert_eq!(timed_out.code(), Some(Code::Cancelled), "{timed_out}");
}
