//! Pagination (AIP-158), the audit log, and idempotent retries (AIP-155).

use std::collections::HashSet;

use base64::Engine;
use extapps_client::v1 as pb;
use extapps_server::domain::caller::Role;
use prost_types::FieldMask;
use tonic::Code;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer, error_of};

crate::on_both_backends!(
    applications_page_in_display_name_order,
    page_tokens_are_checked,
    audit_log_records_every_change_with_before_and_after,
    audit_log_pages_and_filters_by_application,
    register_retries_return_the_first_response,
    concurrent_register_retries_create_one_application,
    secret_generation_retries_return_the_same_secret,
);

fn list_request(
    organization: &str,
    page_size: i32,
    page_token: &str,
) -> pb::ListApplicationsRequest {
    pb::ListApplicationsRequest {
        parent: format!("organizations/{organization}"),
        page_size,
        page_token: page_token.into(),
    }
}

async fn applications_page_in_display_name_order(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let mut names: Vec<String> = (0..8)
        .map(|i| format!("App {}", (b'h' - i) as char))
        .collect();
    for name in &names {
        register(&mut admin, "acme", service_app(name)).await;
    }
    // Another organization's applications never show up.
    let mut other = server.admin("other").await;
    register(&mut other, "other", service_app("App 0")).await;
    names.sort();

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = admin
            .list_applications(list_request("acme", 3, &token))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.applications.len() <= 3);
        seen.extend(page.applications.into_iter().map(|a| a.display_name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3, "8 applications in pages of 3");
    assert_eq!(seen, names, "every application once, in order");

    // page_size 0 means the default (50): everything fits on one page.
    let all = admin
        .list_applications(list_request("acme", 0, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.applications.len(), 8);
    assert_eq!(all.next_page_token, "");
}

async fn page_tokens_are_checked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    for name in ["A", "B", "C"] {
        register(&mut admin, "acme", service_app(name)).await;
    }
    let first = admin
        .list_applications(list_request("acme", 1, ""))
        .await
        .unwrap()
        .into_inner();
    let token = first.next_page_token;
    assert!(!token.is_empty());

    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut raw = engine.decode(&token).unwrap();
    raw[1] ^= 1; // change the cursor, keep the tag
    let tampered = engine.encode(&raw);
    let operator_key = server.key(None, Role::Operator, &[]).await;
    let mut operator = server.client(&operator_key);
    let mut cases = vec![
        error_of(
            admin
                .list_applications(list_request("acme", 1, &tampered))
                .await,
        ),
        error_of(
            admin
                .list_applications(list_request("acme", 1, "garbage!"))
                .await,
        ),
        error_of(admin.list_applications(list_request("acme", -1, "")).await),
        // A token of one query is no good for another.
        error_of(
            operator
                .list_applications(list_request("other", 1, &token))
                .await,
        ),
        error_of(
            admin
                .list_audit_events(pb::ListAuditEventsRequest {
                    parent: "organizations/acme".into(),
                    page_size: 1,
                    page_token: token.clone(),
                    application: String::new(),
                })
                .await,
        ),
    ];
    let negative = cases.remove(2);
    assert_eq!(negative.code, Code::InvalidArgument);
    assert_eq!(negative.violations[0].0, "page_size");
    for err in cases {
        assert_eq!(err.code, Code::InvalidArgument, "{err:?}");
        assert_eq!(err.violations[0].0, "page_token");
    }
    // The untouched token still works.
    let second = admin
        .list_applications(list_request("acme", 1, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.applications[0].display_name, "B");
}

async fn audit_log_records_every_change_with_before_and_after(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (key_id, admin_key) = server.key_with_id(Some("acme"), Role::Admin, &[]).await;
    let mut admin = server.client(&admin_key);

    let registered = register(&mut admin, "acme", service_app("Audited")).await;
    let app = registered.application.unwrap();
    let mut renamed = app.clone();
    renamed.display_name = "Audited (renamed)".into();
    admin
        .update_application(pb::UpdateApplicationRequest {
            application: Some(renamed),
            update_mask: Some(FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .unwrap();
    admin
        .update_application_scopes(pb::UpdateApplicationScopesRequest {
            name: app.name.clone(),
            grants: vec![grant("PM", &[], &["PM.Users.Read"])],
            etag: String::new(),
        })
        .await
        .unwrap();
    let rotated = admin
        .generate_application_secret(pb::GenerateApplicationSecretRequest {
            name: app.name.clone(),
            grace_period: Some(prost_types::Duration {
                seconds: 600,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // A refused change writes no event.
    let _ = admin
        .update_application_scopes(pb::UpdateApplicationScopesRequest {
            name: app.name.clone(),
            grants: vec![],
            etag: String::new(),
        })
        .await
        .unwrap_err();
    admin
        .delete_application(pb::DeleteApplicationRequest {
            name: app.name.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();

    let events = audit(&mut admin, "acme").await;
    let actions: Vec<pb::AuditAction> = events.iter().map(|e| e.action()).collect();
    assert_eq!(
        actions,
        [
            pb::AuditAction::ApplicationDeleted,
            pb::AuditAction::ApplicationSecretGenerated,
            pb::AuditAction::ApplicationScopesUpdated,
            pb::AuditAction::ApplicationUpdated,
            pb::AuditAction::ApplicationRegistered,
            pb::AuditAction::KeyCreated,
        ]
    );
    for event in &events[..5] {
        assert_eq!(event.actor_key_id, key_id);
        assert_eq!(event.application, app.name);
        assert!(event.name.starts_with("organizations/acme/auditEvents/"));
        assert!(event.create_time.is_some());
    }
    let [deleted, secret, scopes, updated, registered_event, _] = events.as_slice() else {
        panic!("six events")
    };
    assert!(registered_event.before.is_none());
    assert_eq!(
        registered_event.after.as_ref().unwrap().display_name,
        "Audited"
    );
    assert_eq!(updated.before.as_ref().unwrap().display_name, "Audited");
    assert_eq!(
        updated.after.as_ref().unwrap().display_name,
        "Audited (renamed)"
    );
    assert_eq!(scopes.before.as_ref().unwrap().grants, app.grants);
    assert_eq!(
        scopes.after.as_ref().unwrap().grants,
        vec![grant("PM", &[], &["PM.Users.Read"])]
    );
    assert_eq!(secret.after.as_ref().unwrap().secrets.len(), 2);
    assert_eq!(secret.details["grace_period_seconds"], "600");
    assert_eq!(secret.details["revoke_tokens"], "false");
    assert!(deleted.after.is_none());
    assert!(deleted.before.is_some());
    // No secret anywhere in the log.
    let shown = format!("{events:?}");
    assert!(!shown.contains(&registered.client_secret));
    assert!(!shown.contains(&rotated.client_secret));
}

async fn audit_log_pages_and_filters_by_application(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let app = register(&mut admin, "acme", service_app("Busy"))
        .await
        .application
        .unwrap();
    register(&mut admin, "acme", service_app("Quiet")).await;
    for _ in 0..5 {
        admin
            .generate_application_secret(pb::GenerateApplicationSecretRequest {
                name: app.name.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    // Busy: 1 registration + 5 rotations, read 2 at a time.
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = admin
            .list_audit_events(pb::ListAuditEventsRequest {
                parent: "organizations/acme".into(),
                page_size: 2,
                page_token: token.clone(),
                application: app.name.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.audit_events.iter().all(|e| e.application == app.name));
        ids.extend(page.audit_events.into_iter().map(|e| e.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(ids.len(), 6);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        6,
        "no event twice"
    );
    let numbers: Vec<i64> = ids
        .iter()
        .map(|n| n.rsplit('/').next().unwrap().parse().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] > w[1]), "newest first");

    let err = error_of(
        admin
            .list_audit_events(pb::ListAuditEventsRequest {
                parent: "organizations/acme".into(),
                application: app.name.replace("acme", "other"),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(err.code, Code::InvalidArgument);
    assert_eq!(err.violations[0].0, "application");
}

async fn register_retries_return_the_first_response(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let mut request = register_request("acme", service_app("Once"));
    request.request_id = uuid::Uuid::new_v4().to_string();
    let first = admin
        .register_application(request.clone())
        .await
        .unwrap()
        .into_inner();
    let retry = admin
        .register_application(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry, first, "same application, same secret");
    assert_eq!(list_all(&mut admin, "acme").await.len(), 1);

    // The same ID with a different request is refused and registers nothing.
    let mut different = request.clone();
    different.application.as_mut().unwrap().display_name = "Twice".into();
    let err = error_of(admin.register_application(different).await);
    assert_eq!(err.code, Code::InvalidArgument);
    assert_eq!(err.reason.as_deref(), Some("REQUEST_ID_REUSED"));
    assert_eq!(err.violations[0].0, "request_id");

    // Another organization's request with the same ID is its own request.
    let mut other = server.admin("other").await;
    let mut theirs = request.clone();
    theirs.parent = "organizations/other".into();
    let their_app = other
        .register_application(theirs)
        .await
        .unwrap()
        .into_inner();
    assert_ne!(
        their_app.application.unwrap().client_id,
        first.application.unwrap().client_id
    );

    // A retry after 24 hours is a new request.
    server.clock.advance(time::Duration::hours(25));
    let err = error_of(admin.register_application(request).await);
    assert_eq!(err.reason.as_deref(), Some("DISPLAY_NAME_TAKEN"));
    let events = audit(&mut admin, "acme").await;
    let registrations = events
        .iter()
        .filter(|e| e.action() == pb::AuditAction::ApplicationRegistered)
        .count();
    assert_eq!(registrations, 1);
}

async fn concurrent_register_retries_create_one_application(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin("acme").await;
    let mut request = register_request("acme", service_app("Racy"));
    request.request_id = uuid::Uuid::new_v4().to_string();
    let calls = (0..4).map(|_| {
        let mut client = admin.clone();
        let request = request.clone();
        tokio::spawn(async move { client.register_application(request).await })
    });
    let mut responses = Vec::new();
    for call in calls {
        responses.push(call.await.unwrap().unwrap().into_inner());
    }
    assert!(
        responses.windows(2).all(|w| w[0] == w[1]),
        "every retry sees the same response"
    );
    let mut admin = admin;
    assert_eq!(list_all(&mut admin, "acme").await.len(), 1);
}

async fn secret_generation_retries_return_the_same_secret(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let app = register(&mut admin, "acme", service_app("Rotated once"))
        .await
        .application
        .unwrap();
    let request = pb::GenerateApplicationSecretRequest {
        name: app.name.clone(),
        etag: app.etag.clone(),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    let first = admin
        .generate_application_secret(request.clone())
        .await
        .unwrap()
        .into_inner();
    // The retry carries the etag of the original read, now stale: still the
    // first response, not ABORTED and not a second rotation.
    let retry = admin
        .generate_application_secret(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry, first);
    let current = get(&mut admin, &app.name).await;
    assert_eq!(current.secrets.len(), 1);
    assert_eq!(current.etag, first.application.unwrap().etag);
    let rotations = audit(&mut admin, "acme")
        .await
        .iter()
        .filter(|e| e.action() == pb::AuditAction::ApplicationSecretGenerated)
        .count();
    assert_eq!(rotations, 1);
}
