//! Registering applications: SPEC section 2, rules 1 to 6 and 10.

use extapps_client::v1 as pb;
use tonic::Code;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer, error_of};
use crate::support::snapshot::assert_snapshot;

crate::on_both_backends!(
    confidential_application_gets_its_secret_once,
    non_confidential_application_never_has_a_secret,
    display_names_are_trimmed_and_unique_per_organization,
    same_scope_name_in_both_sets_is_kept_apart,
    redirect_urls_follow_the_rules,
    bad_registrations_are_refused_field_by_field,
    list_resources_shows_the_catalog,
);

async fn confidential_application_gets_its_secret_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let registered = register(&mut admin, "acme", service_app("Billing sync")).await;
    let app = registered.application.unwrap();

    assert!(registered.client_secret.starts_with("extapps_cs_"));
    assert!(registered.client_secret.len() >= 11 + 43);
    assert!(uuid::Uuid::parse_str(&app.client_id).is_ok());
    assert_eq!(
        app.name,
        format!("organizations/acme/applications/{}", app.client_id)
    );
    assert_eq!(app.r#type(), pb::ApplicationType::Confidential);
    assert_eq!(app.secrets.len(), 1);
    assert!(app.secrets[0].expire_time.is_none());
    assert!(app.secrets[0].last_use_time.is_none());

    // Rule 10: what is shared with the developer is exactly what Get returns,
    // and nothing returns the secret again.
    let fetched = get(&mut admin, &app.name).await;
    assert_eq!(fetched, app);
    let listed = list_all(&mut admin, "acme").await;
    assert_eq!(listed, vec![app.clone()]);
    for shown in [format!("{fetched:?}"), format!("{listed:?}")] {
        assert!(!shown.contains(&registered.client_secret));
    }
}

async fn non_confidential_application_never_has_a_secret(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let registered = register(&mut admin, "acme", native_app("Desktop")).await;
    let app = registered.application.unwrap();
    assert_eq!(registered.client_secret, "");
    assert!(app.secrets.is_empty());

    let err = error_of(
        admin
            .generate_application_secret(pb::GenerateApplicationSecretRequest {
                name: app.name.clone(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(err.code, Code::FailedPrecondition);
    assert_eq!(err.reason.as_deref(), Some("APPLICATION_NOT_CONFIDENTIAL"));
    assert_eq!(get(&mut admin, &app.name).await, app, "nothing changed");
    assert_eq!(
        audit(&mut admin, "acme").await.len(),
        2,
        "key + registration only"
    );
}

async fn display_names_are_trimmed_and_unique_per_organization(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut acme = server.admin("acme").await;
    let mut other = server.admin("other").await;
    let first = register(&mut acme, "acme", service_app("  Reports  ")).await;
    assert_eq!(first.application.unwrap().display_name, "Reports");

    let err = error_of(
        acme.register_application(register_request("acme", service_app("Reports")))
            .await,
    );
    assert_eq!(err.code, Code::AlreadyExists);
    assert_eq!(err.reason.as_deref(), Some("DISPLAY_NAME_TAKEN"));
    assert_eq!(
        list_all(&mut acme, "acme").await.len(),
        1,
        "nothing was added"
    );

    // Another organization may use the same name.
    register(&mut other, "other", service_app("Reports")).await;

    // Names are shown on consent screens: compared without regard to case,
    // stored composed (NFC), never reordering or invisible.
    for (name, code) in [
        ("REPORTS", Code::AlreadyExists),
        ("Pay\u{202E}lagaP", Code::InvalidArgument),
        ("\u{200B}\u{2060}", Code::InvalidArgument),
        ("\u{3164}", Code::InvalidArgument),
        // Invisible characters do not make a name another...
        ("Reports\u{200B}", Code::AlreadyExists),
        ("Re\u{200D}ports\u{FE0F}", Code::AlreadyExists),
        // ...a name is one line, and shows at least one base character.
        ("Re\u{2028}ports", Code::InvalidArgument),
        ("Re\u{2029}ports", Code::InvalidArgument),
        ("\u{301}", Code::InvalidArgument),
        (" \u{20DD}\u{200B} ", Code::InvalidArgument),
    ] {
        let err = error_of(
            acme.register_application(register_request("acme", service_app(name)))
                .await,
        );
        assert_eq!(err.code, code, "{name:?}: {err:?}");
    }
    let composed = register(&mut acme, "acme", service_app("Cafe\u{301}"))
        .await
        .application
        .unwrap();
    assert_eq!(composed.display_name, "Caf\u{e9}");
    // A rename into another application's name in another case is refused.
    let err = error_of(
        acme.update_application(pb::UpdateApplicationRequest {
            application: Some(pb::Application {
                name: composed.name.clone(),
                display_name: "reports".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await,
    );
    assert_eq!(err.reason.as_deref(), Some("DISPLAY_NAME_TAKEN"));
    // Its own name in another case is fine.
    acme.update_application(pb::UpdateApplicationRequest {
        application: Some(pb::Application {
            name: composed.name.clone(),
            display_name: "CAFÉ".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["display_name".into()],
        }),
    })
    .await
    .unwrap();
    assert_eq!(
        list_all(&mut acme, "acme").await.len(),
        2,
        "nothing else was added"
    );
}

async fn same_scope_name_in_both_sets_is_kept_apart(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let mut app = service_app("Both sets");
    app.grants = vec![
        grant("PM", &["PM.Users.Read"], &["PM.Users.Read"]),
        grant("OR", &["OR.Jobs"], &["OR.Jobs.Read"]),
    ];
    app.redirect_urls = vec!["https://app.example.com/cb".into()];
    let app = register(&mut admin, "acme", app).await.application.unwrap();
    let fetched = get(&mut admin, &app.name).await;
    // Grants come back ordered by resource, each set as granted.
    assert_eq!(
        fetched.grants,
        vec![
            grant("OR", &["OR.Jobs"], &["OR.Jobs.Read"]),
            grant("PM", &["PM.Users.Read"], &["PM.Users.Read"]),
        ]
    );
}

async fn redirect_urls_follow_the_rules(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    // Application scopes only: redirect URLs are optional.
    register(&mut admin, "acme", service_app("No redirect")).await;
    // User scopes: https, loopback http and private-use schemes are accepted.
    let mut app = native_app("Native");
    app.redirect_urls = vec![
        "https://app.example.com/cb".into(),
        "http://127.0.0.1:8400/cb".into(),
        "http://[::1]/cb".into(),
        "com.example.desktop:/oauth".into(),
    ];
    let app = register(&mut admin, "acme", app).await.application.unwrap();
    assert_eq!(app.redirect_urls.len(), 4);
}

/// Every invalid registration is answered with INVALID_ARGUMENT, a
/// VALIDATION_FAILED reason and one violation per problem, and changes
/// nothing. The details are compared with a reviewed snapshot.
async fn bad_registrations_are_refused_field_by_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let with = |edit: &dyn Fn(&mut pb::Application)| {
        let mut app = service_app("Valid");
        edit(&mut app);
        register_request("acme", app)
    };
    let cases: Vec<(&str, pb::RegisterApplicationRequest)> = vec![
        (
            "empty display name",
            with(&|a| a.display_name = "   ".into()),
        ),
        (
            "display name too long",
            with(&|a| a.display_name = "x".repeat(129)),
        ),
        (
            "control character in name",
            with(&|a| a.display_name = "a\u{7}b".into()),
        ),
        ("type unspecified", with(&|a| a.r#type = 0)),
        ("type out of range", with(&|a| a.r#type = 9)),
        ("no grants", with(&|a| a.grants.clear())),
        (
            "unknown resource",
            with(&|a| a.grants = vec![grant("XX", &[], &["OR.Jobs"])]),
        ),
        (
            "empty resource",
            with(&|a| a.grants = vec![grant("", &[], &["OR.Jobs"])]),
        ),
        (
            "unknown scope",
            with(&|a| a.grants = vec![grant("OR", &[], &["OR.Nope"])]),
        ),
        (
            "user-only scope in the application set",
            with(&|a| a.grants = vec![grant("PM", &[], &["PM.AuthSetting"])]),
        ),
        (
            "scope of another resource",
            with(&|a| a.grants = vec![grant("OR", &[], &["PM.Users"])]),
        ),
        (
            "duplicate resource",
            with(&|a| {
                a.grants = vec![
                    grant("OR", &[], &["OR.Jobs"]),
                    grant("OR", &[], &["OR.Queues"]),
                ]
            }),
        ),
        (
            "duplicate scope",
            with(&|a| a.grants = vec![grant("OR", &[], &["OR.Jobs", "OR.Jobs"])]),
        ),
        (
            "empty grant",
            with(&|a| a.grants = vec![grant("OR", &[], &[])]),
        ),
        (
            "non-confidential with application scopes",
            with(&|a| {
                a.r#type = pb::ApplicationType::NonConfidential.into();
                a.grants = vec![grant("OR", &["OR.Jobs"], &["OR.Jobs"])];
                a.redirect_urls = vec!["https://a.example.com/cb".into()];
            }),
        ),
        (
            "user scopes without redirect URL",
            with(&|a| a.grants = vec![grant("DataService", &["DataService.Data.Read"], &[])]),
        ),
        (
            "http redirect on a public host",
            with(&|a| a.redirect_urls = vec!["http://example.com/cb".into()]),
        ),
        (
            "redirects a URL parser would rewrite",
            with(&|a| {
                a.redirect_urls = vec![
                    "https://app.example.com/c\nb".into(),
                    "https://app.example.com/c\tb".into(),
                    "https://app.example.com/c b".into(),
                    "https://app.example.com\\@evil.example/cb".into(),
                    "https://app.example.com/caf\u{e9}".into(),
                    "https://App.Example.com/cb".into(),
                ]
            }),
        ),
        (
            "line separator in name",
            with(&|a| a.display_name = "a\u{2028}b".into()),
        ),
        (
            "name of a combining mark only",
            with(&|a| a.display_name = "\u{301}".into()),
        ),
        (
            "redirect with fragment",
            with(&|a| a.redirect_urls = vec!["https://example.com/cb#x".into()]),
        ),
        (
            "relative redirect",
            with(&|a| a.redirect_urls = vec!["/cb".into()]),
        ),
        (
            "javascript redirect",
            with(&|a| a.redirect_urls = vec!["javascript:alert(1)".into()]),
        ),
        (
            "duplicate redirect",
            with(&|a| a.redirect_urls = vec!["https://e.com/cb".into(), "https://e.com/cb".into()]),
        ),
        (
            "too many redirect URLs",
            with(&|a| a.redirect_urls = (0..21).map(|i| format!("https://e.com/{i}")).collect()),
        ),
        (
            "many problems at once",
            with(&|a| {
                a.display_name = String::new();
                a.r#type = 0;
                a.grants = vec![grant("XX", &[], &[])];
            }),
        ),
        ("bad parent", {
            let mut r = with(&|_| {});
            r.parent = "orgs/acme".into();
            r
        }),
        ("upper-case organization", {
            let mut r = with(&|_| {});
            r.parent = "organizations/ACME".into();
            r
        }),
        ("missing application", {
            let mut r = with(&|_| {});
            r.application = None;
            r
        }),
        ("request ID not a UUID", {
            let mut r = with(&|_| {});
            r.request_id = "retry-1".into();
            r
        }),
    ];
    let mut report = String::new();
    for (case, request) in cases {
        let err = error_of(admin.register_application(request).await);
        assert_eq!(err.code, Code::InvalidArgument, "{case}");
        assert_eq!(err.reason.as_deref(), Some("VALIDATION_FAILED"), "{case}");
        assert!(!err.violations.is_empty(), "{case}");
        report.push_str(&format!("## {case}\n{}\n", err.message));
        for (field, description) in &err.violations {
            report.push_str(&format!("- {field}: {description}\n"));
        }
        report.push('\n');
    }
    assert_snapshot("register_invalid", &report);
    assert!(
        list_all(&mut admin, "acme").await.is_empty(),
        "nothing was registered"
    );
    assert_eq!(
        audit(&mut admin, "acme").await.len(),
        1,
        "only the key's creation"
    );
}

async fn list_resources_shows_the_catalog(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let resources = admin
        .list_resources(pb::ListResourcesRequest {})
        .await
        .unwrap()
        .into_inner()
        .resources;
    let ids: Vec<&str> = resources.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["DataService", "OR", "PM"]);
    let or = &resources[1];
    assert!(
        or.user_scopes
            .iter()
            .any(|s| s.name == "OR.Jobs" && !s.description.is_empty())
    );
    assert!(
        or.application_scopes
            .iter()
            .any(|s| s.name == "OR.Jobs.Read")
    );
    assert!(
        resources[0].application_scopes.is_empty(),
        "Data Service is user-only"
    );
}
