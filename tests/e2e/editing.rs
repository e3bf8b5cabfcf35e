//! Editing applications: UpdateApplication, UpdateApplicationScopes,
//! GenerateApplicationSecret and DeleteApplication (SPEC rules 2, 5, 7, 8, 9),
//! with etags (AIP-154).

use extapps_client::v1 as pb;
use prost_types::{Duration, FieldMask};
use tonic::Code;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer, error_of};

crate::on_both_backends!(
    update_changes_only_the_masked_fields,
    update_rejects_bad_masks_and_values_without_changing_anything,
    stale_etags_are_aborted_and_change_nothing,
    scopes_are_replaced_as_a_whole,
    bad_scope_edits_change_nothing,
    new_secret_replaces_the_old_one_at_once,
    grace_period_keeps_the_old_secret_until_it_ends,
    grace_period_is_bounded,
    delete_removes_the_application_and_its_secrets,
    missing_applications_are_not_found,
);

type Edit = Box<dyn Fn(&mut pb::Application)>;

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

async fn update_changes_only_the_masked_fields(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let app = register(&mut admin, "acme", service_app("Old name"))
        .await
        .application
        .unwrap();
    server.clock.advance(time::Duration::seconds(5));

    let mut edit = app.clone();
    edit.display_name = "  New name ".into();
    edit.redirect_urls = vec!["https://ignored.example.com/cb".into()];
    let updated = admin
        .update_application(pb::UpdateApplicationRequest {
            application: Some(edit),
            update_mask: mask(&["display_name"]),
        })
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();
    assert_eq!(updated.display_name, "New name");
    assert!(
        updated.redirect_urls.is_empty(),
        "redirect_urls was not in the mask"
    );
    assert_ne!(updated.etag, app.etag);
    assert!(updated.update_time.unwrap().seconds > app.update_time.unwrap().seconds);
    assert_eq!(updated.create_time, app.create_time);
    assert_eq!(
        updated.client_id, app.client_id,
        "the client ID is immutable"
    );

    let mut edit = updated.clone();
    edit.display_name = "Third".into();
    edit.redirect_urls = vec!["https://app.example.com/cb".into()];
    let both = admin
        .update_application(pb::UpdateApplicationRequest {
            application: Some(edit),
            update_mask: mask(&["*"]),
        })
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();
    assert_eq!(both.display_name, "Third");
    assert_eq!(both.redirect_urls, ["https://app.example.com/cb"]);
    assert_eq!(get(&mut admin, &app.name).await, both);
}

async fn update_rejects_bad_masks_and_values_without_changing_anything(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let app = register(&mut admin, "acme", native_app("Native"))
        .await
        .application
        .unwrap();
    register(&mut admin, "acme", service_app("Taken")).await;

    let cases: Vec<(Option<FieldMask>, Edit, Code, &str)> = vec![
        (None, Box::new(|_| {}), Code::InvalidArgument, "update_mask"),
        (
            mask(&["grants"]),
            Box::new(|_| {}),
            Code::InvalidArgument,
            "update_mask.paths[0]",
        ),
        (
            mask(&["type"]),
            Box::new(|_| {}),
            Code::InvalidArgument,
            "update_mask.paths[0]",
        ),
        (
            mask(&["colour"]),
            Box::new(|_| {}),
            Code::InvalidArgument,
            "update_mask.paths[0]",
        ),
        (
            mask(&["display_name"]),
            Box::new(|a| a.display_name = "".into()),
            Code::InvalidArgument,
            "application.display_name",
        ),
        (
            // The application holds user scopes: it needs a redirect URL.
            mask(&["redirect_urls"]),
            Box::new(|a| a.redirect_urls.clear()),
            Code::InvalidArgument,
            "application.redirect_urls",
        ),
        (
            mask(&["redirect_urls"]),
            Box::new(|a| a.redirect_urls = vec!["http://evil.example.com/".into()]),
            Code::InvalidArgument,
            "application.redirect_urls[0]",
        ),
        (
            mask(&["display_name"]),
            Box::new(|a| a.display_name = "Taken".into()),
            Code::AlreadyExists,
            "",
        ),
        (
            mask(&["display_name"]),
            Box::new(|a| a.etag = "garbage".into()),
            Code::InvalidArgument,
            "application.etag",
        ),
    ];
    for (update_mask, edit, code, field) in cases {
        let mut changed = app.clone();
        edit(&mut changed);
        let err = error_of(
            admin
                .update_application(pb::UpdateApplicationRequest {
                    application: Some(changed),
                    update_mask,
                })
                .await,
        );
        assert_eq!(err.code, code, "{field}: {err:?}");
        if !field.is_empty() {
            assert_eq!(err.violations[0].0, field, "{err:?}");
        }
    }
    assert_eq!(get(&mut admin, &app.name).await, app, "nothing changed");
}

async fn stale_etags_are_aborted_and_change_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let app = register(&mut admin, "acme", service_app("Etags"))
        .await
        .application
        .unwrap();
    let mut first = app.clone();
    first.display_name = "First writer".into();
    let current = admin
        .update_application(pb::UpdateApplicationRequest {
            application: Some(first),
            update_mask: mask(&["display_name"]),
        })
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();

    // A second writer still holds the etag of the original read.
    let mut second = app.clone();
    second.display_name = "Second writer".into();
    let stale = app.etag.clone();
    let rejections = [
        error_of(
            admin
                .update_application(pb::UpdateApplicationRequest {
                    application: Some(second),
                    update_mask: mask(&["display_name"]),
                })
                .await,
        ),
        error_of(
            admin
                .update_application_scopes(pb::UpdateApplicationScopesRequest {
                    name: app.name.clone(),
                    grants: vec![grant("PM", &[], &["PM.Users.Read"])],
                    etag: stale.clone(),
                })
                .await,
        ),
        error_of(
            admin
                .generate_application_secret(pb::GenerateApplicationSecretRequest {
                    name: app.name.clone(),
                    etag: stale.clone(),
                    ..Default::default()
                })
                .await,
        ),
        error_of(
            admin
                .delete_application(pb::DeleteApplicationRequest {
                    name: app.name.clone(),
                    etag: stale.clone(),
                })
                .await,
        ),
    ];
    for err in rejections {
        assert_eq!(err.code, Code::Aborted, "{err:?}");
        assert_eq!(err.reason.as_deref(), Some("ETAG_MISMATCH"));
    }
    assert_eq!(get(&mut admin, &app.name).await, current, "nothing changed");

    // The current etag works.
    admin
        .delete_application(pb::DeleteApplicationRequest {
            name: app.name.clone(),
            etag: current.etag.clone(),
        })
        .await
        .unwrap();
}

async fn scopes_are_replaced_as_a_whole(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let mut app = service_app("Scopes");
    app.grants = vec![
        grant("OR", &[], &["OR.Jobs", "OR.Queues"]),
        grant("PM", &[], &["PM.Users.Read"]),
    ];
    let app = register(&mut admin, "acme", app).await.application.unwrap();
    // Edit the OR row, delete the PM row, add a DataService row (with a
    // redirect URL first, since user scopes need one).
    let mut with_url = app.clone();
    with_url.redirect_urls = vec!["https://scopes.example.com/cb".into()];
    let app = admin
        .update_application(pb::UpdateApplicationRequest {
            application: Some(with_url),
            update_mask: mask(&["redirect_urls"]),
        })
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();
    let new_grants = vec![
        grant("OR", &["OR.Jobs.Read"], &["OR.Jobs.Read"]),
        grant("DataService", &["DataService.Data.Read"], &[]),
    ];
    let updated = admin
        .update_application_scopes(pb::UpdateApplicationScopesRequest {
            name: app.name.clone(),
            grants: new_grants,
            etag: app.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .application
        .unwrap();
    let expected = vec![
        grant("DataService", &["DataService.Data.Read"], &[]),
        grant("OR", &["OR.Jobs.Read"], &["OR.Jobs.Read"]),
    ];
    assert_eq!(updated.grants, expected);
    assert_eq!(get(&mut admin, &app.name).await.grants, expected);
}

async fn bad_scope_edits_change_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let service = register(&mut admin, "acme", service_app("Service"))
        .await
        .application
        .unwrap();
    let native = register(&mut admin, "acme", native_app("Native"))
        .await
        .application
        .unwrap();
    let cases = [
        (&service, vec![], "grants"),
        (
            &service,
            vec![grant("OR", &[], &["OR.Nope"])],
            "grants[0].application_scopes[0]",
        ),
        // User scopes on an application without redirect URLs.
        (&service, vec![grant("OR", &["OR.Jobs"], &[])], "grants"),
        (
            &native,
            vec![grant("OR", &["OR.Jobs"], &["OR.Jobs"])],
            "grants[0].application_scopes",
        ),
        (&native, vec![grant("OR", &[], &[])], "grants[0]"),
    ];
    for (app, grants, field) in cases {
        let err = error_of(
            admin
                .update_application_scopes(pb::UpdateApplicationScopesRequest {
                    name: app.name.clone(),
                    grants,
                    etag: String::new(),
                })
                .await,
        );
        assert_eq!(err.code, Code::InvalidArgument);
        assert_eq!(err.violations[0].0, field, "{err:?}");
        assert_eq!(&get(&mut admin, &app.name).await, app, "nothing changed");
    }
}

async fn new_secret_replaces_the_old_one_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let registered = register(&mut admin, "acme", service_app("Rotate")).await;
    let app = registered.application.unwrap();
    let rotated = admin
        .generate_application_secret(pb::GenerateApplicationSecretRequest {
            name: app.name.clone(),
            etag: app.etag.clone(),
            revoke_tokens: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rotated.client_secret.starts_with("extapps_cs_"));
    assert_ne!(rotated.client_secret, registered.client_secret);
    let after = rotated.application.unwrap();
    assert_eq!(after.secrets.len(), 1, "the old secret is gone at once");
    assert_ne!(after.secrets[0].secret_id, app.secrets[0].secret_id);
    assert_eq!(get(&mut admin, &app.name).await, after);

    // Only the new secret verifies against what is stored.
    let stored = crate::support::stored::stored_secret_hashes(&server, &app.client_id).await;
    assert_eq!(stored.len(), 1);
    assert!(stored[0].starts_with("$argon2id$"));
    assert!(crate::support::stored::verifies(
        &rotated.client_secret,
        &stored[0]
    ));
    assert!(!crate::support::stored::verifies(
        &registered.client_secret,
        &stored[0]
    ));

    let events = audit(&mut admin, "acme").await;
    let event = &events[0];
    assert_eq!(event.action(), pb::AuditAction::ApplicationSecretGenerated);
    assert_eq!(event.details["revoke_tokens"], "true");
    assert_eq!(event.details["grace_period_seconds"], "0");
}

async fn grace_period_keeps_the_old_secret_until_it_ends(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let registered = register(&mut admin, "acme", service_app("Grace")).await;
    let app = registered.application.unwrap();
    let rotated = admin
        .generate_application_secret(pb::GenerateApplicationSecretRequest {
            name: app.name.clone(),
            grace_period: Some(Duration {
                seconds: 3600,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let after = rotated.application.unwrap();
    assert_eq!(after.secrets.len(), 2, "both work during the grace period");
    let old = after
        .secrets
        .iter()
        .find(|s| s.secret_id == app.secrets[0].secret_id)
        .expect("old secret listed");
    let new = after
        .secrets
        .iter()
        .find(|s| s.secret_id != app.secrets[0].secret_id)
        .unwrap();
    assert!(new.expire_time.is_none());
    let expires = old.expire_time.unwrap().seconds;
    assert_eq!(expires - new.create_time.unwrap().seconds, 3600);
    let stored = crate::support::stored::stored_secret_hashes(&server, &app.client_id).await;
    assert_eq!(stored.len(), 2);
    assert!(
        stored
            .iter()
            .any(|phc| crate::support::stored::verifies(&registered.client_secret, phc))
    );

    // After the grace period the old secret is gone on its own.
    server.clock.advance(time::Duration::seconds(3601));
    let later = get(&mut admin, &app.name).await;
    assert_eq!(later.secrets.len(), 1);
    assert_eq!(later.secrets[0].secret_id, new.secret_id);
}

async fn grace_period_is_bounded(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let app = register(&mut admin, "acme", service_app("Bounded"))
        .await
        .application
        .unwrap();
    for grace in [
        Duration {
            seconds: 7 * 86400 + 1,
            nanos: 0,
        },
        Duration {
            seconds: -1,
            nanos: 0,
        },
    ] {
        let err = error_of(
            admin
                .generate_application_secret(pb::GenerateApplicationSecretRequest {
                    name: app.name.clone(),
                    grace_period: Some(grace),
                    ..Default::default()
                })
                .await,
        );
        assert_eq!(err.code, Code::InvalidArgument);
        assert_eq!(err.violations[0].0, "grace_period");
    }
    // Exactly seven days is allowed.
    admin
        .generate_application_secret(pb::GenerateApplicationSecretRequest {
            name: app.name.clone(),
            grace_period: Some(Duration {
                seconds: 7 * 86400,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn delete_removes_the_application_and_its_secrets(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let app = register(&mut admin, "acme", service_app("Doomed"))
        .await
        .application
        .unwrap();
    let keep = register(&mut admin, "acme", service_app("Kept"))
        .await
        .application
        .unwrap();
    admin
        .delete_application(pb::DeleteApplicationRequest {
            name: app.name.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    let err = error_of(
        admin
            .get_application(pb::GetApplicationRequest {
                name: app.name.clone(),
            })
            .await,
    );
    assert_eq!(err.code, Code::NotFound);
    assert_eq!(list_all(&mut admin, "acme").await, vec![keep]);
    assert!(
        crate::support::stored::stored_secret_hashes(&server, &app.client_id)
            .await
            .is_empty()
    );

    let again = error_of(
        admin
            .delete_application(pb::DeleteApplicationRequest {
                name: app.name.clone(),
                etag: String::new(),
            })
            .await,
    );
    assert_eq!(again.code, Code::NotFound);
    // The name is free again.
    register(&mut admin, "acme", service_app("Doomed")).await;
}

async fn missing_applications_are_not_found(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let name = format!("organizations/acme/applications/{}", uuid::Uuid::new_v4());
    let results = [
        error_of(
            admin
                .get_application(pb::GetApplicationRequest { name: name.clone() })
                .await,
        ),
        error_of(
            admin
                .update_application(pb::UpdateApplicationRequest {
                    application: Some(pb::Application {
                        name: name.clone(),
                        display_name: "x".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["display_name"]),
                })
                .await,
        ),
        error_of(
            admin
                .update_application_scopes(pb::UpdateApplicationScopesRequest {
                    name: name.clone(),
                    grants: vec![grant("OR", &[], &["OR.Jobs"])],
                    etag: String::new(),
                })
                .await,
        ),
        error_of(
            admin
                .generate_application_secret(pb::GenerateApplicationSecretRequest {
                    name: name.clone(),
                    ..Default::default()
                })
                .await,
        ),
        error_of(
            admin
                .delete_application(pb::DeleteApplicationRequest {
                    name: name.clone(),
                    etag: String::new(),
                })
                .await,
        ),
    ];
    for err in results {
        assert_eq!(err.code, Code::NotFound, "{err:?}");
        assert_eq!(err.reason.as_deref(), Some("APPLICATION_NOT_FOUND"));
    }
    let malformed = error_of(
        admin
            .get_application(pb::GetApplicationRequest {
                name: "organizations/acme/applications/NOT-A-UUID".into(),
            })
            .await,
    );
    assert_eq!(malformed.code, Code::InvalidArgument);
    assert_eq!(malformed.violations[0].0, "name");
}
