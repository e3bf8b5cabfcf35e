//! Reviewed snapshots (`insta`, in `tests/snapshots/`) of what a caller sees
//! for bad input: for each RPC its status code, `ErrorInfo` reason, message
//! and field violations, and for each OAuth endpoint its status and RFC 6749
//! error body. Both databases compare with the same snapshot, so they must
//! answer alike. Registration's own cases are in `registration.rs`.

use std::fmt::Write as _;

use extapps_client::v1 as pb;
use extapps_server::domain::{
    caller::Role,
    credential::{self, CredentialKind},
};
use secrecy::ExposeSecret;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer, error_of};
use crate::support::snapshot::assert_snapshot;

mod oauth;
mod signin;

crate::on_both_backends!(bad_input_to_each_rpc_is_refused_field_by_field);

/// Appends one case: the call must have failed.
fn case<T: std::fmt::Debug>(report: &mut String, name: &str, result: Result<T, tonic::Status>) {
    let error = error_of(result);
    writeln!(
        report,
        "## {name}\n{:?} {}\n{}",
        error.code,
        error.reason.as_deref().unwrap_or("(no reason)"),
        error.message
    )
    .unwrap();
    for (field, description) in &error.violations {
        writeln!(report, "- {field}: {description}").unwrap();
    }
    report.push('\n');
}

async fn bad_input_to_each_rpc_is_refused_field_by_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let mut other_admin = server.admin("globex").await;
    let mut introspector = server.client(&server.key(Some("acme"), Role::Introspect, &[]).await);
    let mut signin = server.client(&server.key(Some("acme"), Role::Signin, &[]).await);
    let app = register(&mut admin, "acme", service_app("Snapshots"))
        .await
        .application
        .unwrap();
    let native = register(&mut admin, "acme", native_app("Snapshots native"))
        .await
        .application
        .unwrap();
    let foreign = register(&mut other_admin, "globex", service_app("Elsewhere"))
        .await
        .application
        .unwrap();
    let unknown = format!("organizations/acme/applications/{}", uuid::Uuid::nil());
    let before = audit(&mut admin, "acme").await.len();
    let r = &mut String::new();

    let get = |name: &str| pb::GetApplicationRequest { name: name.into() };
    case(
        r,
        "GetApplication: empty name",
        admin.get_application(get("")).await,
    );
    case(
        r,
        "GetApplication: not a resource name",
        admin.get_application(get("apps/1")).await,
    );
    case(
        r,
        "GetApplication: client ID not a UUID",
        admin
            .get_application(get("organizations/acme/applications/42"))
            .await,
    );
    case(
        r,
        "GetApplication: unknown",
        admin.get_application(get(&unknown)).await,
    );
    case(
        r,
        "GetApplication: another organization's",
        admin.get_application(get(&foreign.name)).await,
    );
    case(
        r,
        "GetApplication: no key",
        pb::external_applications_client::ExternalApplicationsClient::new(server.channel())
            .get_application(get(&app.name))
            .await,
    );
    case(
        r,
        "GetApplication: a malformed key",
        server
            .client("extapps_ck_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .get_application(get(&app.name))
            .await,
    );
    let stranger = credential::generate(CredentialKind::CallerKey).unwrap();
    case(
        r,
        "GetApplication: a well-formed key nobody issued",
        server
            .client(stranger.expose_secret())
            .get_application(get(&app.name))
            .await,
    );
    case(
        r,
        "GetApplication: an introspect key",
        introspector.get_application(get(&app.name)).await,
    );

    let list = |parent: &str, size: i32, token: &str| pb::ListApplicationsRequest {
        parent: parent.into(),
        page_size: size,
        page_token: token.into(),
    };
    case(
        r,
        "ListApplications: negative page size",
        admin
            .list_applications(list("organizations/acme", -1, ""))
            .await,
    );
    case(
        r,
        "ListApplications: altered page token",
        admin
            .list_applications(list("organizations/acme", 1, "AAAA"))
            .await,
    );
    case(
        r,
        "ListApplications: bad parent",
        admin.list_applications(list("organizations/", 1, "")).await,
    );

    let update = |application: pb::Application, paths: &[&str]| pb::UpdateApplicationRequest {
        application: Some(application),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }),
    };
    let named = |f: &dyn Fn(&mut pb::Application)| {
        let mut a = pb::Application {
            name: app.name.clone(),
            ..Default::default()
        };
        f(&mut a);
        a
    };
    case(
        r,
        "UpdateApplication: no application",
        admin
            .update_application(pb::UpdateApplicationRequest {
                application: None,
                update_mask: None,
            })
            .await,
    );
    case(
        r,
        "UpdateApplication: empty mask",
        admin.update_application(update(named(&|_| {}), &[])).await,
    );
    case(
        r,
        "UpdateApplication: immutable and unknown fields",
        admin
            .update_application(update(named(&|_| {}), &["type", "client_id", "colour"]))
            .await,
    );
    case(
        r,
        "UpdateApplication: blank display name",
        admin
            .update_application(update(
                named(&|a| a.display_name = "  ".into()),
                &["display_name"],
            ))
            .await,
    );
    case(
        r,
        "UpdateApplication: plain http redirect URL",
        admin
            .update_application(update(
                named(&|a| a.redirect_urls = vec!["http://example.com/cb".into()]),
                &["redirect_urls"],
            ))
            .await,
    );
    case(
        r,
        "UpdateApplication: stale etag",
        admin
            .update_application(update(
                named(&|a| {
                    a.display_name = "Renamed".into();
                    a.etag = "\"0\"".into();
                }),
                &["display_name"],
            ))
            .await,
    );

    let scopes = |grants: Vec<pb::ResourceGrant>, etag: &str| pb::UpdateApplicationScopesRequest {
        name: app.name.clone(),
        grants,
        etag: etag.into(),
    };
    case(
        r,
        "UpdateApplicationScopes: no grants",
        admin.update_application_scopes(scopes(vec![], "")).await,
    );
    case(
        r,
        "UpdateApplicationScopes: the same resource twice",
        admin
            .update_application_scopes(scopes(
                vec![
                    grant("OR", &[], &["OR.Jobs"]),
                    grant("OR", &[], &["OR.Queues"]),
                ],
                "",
            ))
            .await,
    );
    case(
        r,
        "UpdateApplicationScopes: user scopes without a redirect URL",
        admin
            .update_application_scopes(scopes(vec![grant("OR", &["OR.Jobs"], &[])], ""))
            .await,
    );
    case(
        r,
        "UpdateApplicationScopes: application scopes for a non-confidential application",
        admin
            .update_application_scopes(pb::UpdateApplicationScopesRequest {
                name: native.name.clone(),
                grants: vec![grant("OR", &["OR.Jobs"], &["OR.Jobs"])],
                etag: String::new(),
            })
            .await,
    );
    case(
        r,
        "UpdateApplicationScopes: stale etag",
        admin
            .update_application_scopes(scopes(vec![grant("OR", &[], &["OR.Jobs"])], "\"0\""))
            .await,
    );

    let secret =
        |name: &str, seconds: i64, request_id: &str| pb::GenerateApplicationSecretRequest {
            name: name.into(),
            grace_period: Some(prost_types::Duration { seconds, nanos: 0 }),
            revoke_tokens: false,
            etag: String::new(),
            request_id: request_id.into(),
            ..Default::default()
        };
    case(
        r,
        "GenerateApplicationSecret: grace period over 7 days",
        admin
            .generate_application_secret(secret(&app.name, 8 * 86_400, ""))
            .await,
    );
    case(
        r,
        "GenerateApplicationSecret: negative grace period",
        admin
            .generate_application_secret(secret(&app.name, -1, ""))
            .await,
    );
    case(
        r,
        "GenerateApplicationSecret: request ID not a UUID",
        admin
            .generate_application_secret(secret(&app.name, 0, "again"))
            .await,
    );
    case(
        r,
        "GenerateApplicationSecret: a non-confidential application",
        admin
            .generate_application_secret(secret(&native.name, 0, ""))
            .await,
    );

    use pb::generate_application_secret_request::Expiration;
    case(
        r,
        "GenerateApplicationSecret: every new-secret field wrong at once",
        admin
            .generate_application_secret(pb::GenerateApplicationSecretRequest {
                keep_existing_secrets: true,
                grace_period: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
                revoke_tokens: true,
                description: "line\nbreak".into(),
                expiration: Some(Expiration::Ttl(prost_types::Duration::default())),
                ..secret(&app.name, 0, "")
            })
            .await,
    );
    case(
        r,
        "GenerateApplicationSecret: an expiry in the past",
        admin
            .generate_application_secret(pb::GenerateApplicationSecretRequest {
                expiration: Some(Expiration::ExpireTime(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 0,
                })),
                ..secret(&app.name, 0, "")
            })
            .await,
    );
    let delete_secret = |name: String| pb::DeleteApplicationSecretRequest {
        name,
        ..Default::default()
    };
    case(
        r,
        "DeleteApplicationSecret: an application's name, not a secret's",
        admin
            .delete_application_secret(delete_secret(app.name.clone()))
            .await,
    );
    case(
        r,
        "DeleteApplicationSecret: a secret ID not in canonical form",
        admin
            .delete_application_secret(delete_secret(format!(
                "{}/secrets/{}",
                app.name,
                app.secrets[0].secret_id.to_uppercase()
            )))
            .await,
    );
    case(
        r,
        "DeleteApplicationSecret: an unknown secret",
        admin
            .delete_application_secret(delete_secret(format!(
                "{}/secrets/00000000-0000-4000-8000-000000000000",
                app.name
            )))
            .await,
    );
    let add_key = |jwk: &str| pb::AddApplicationKeyRequest {
        name: app.name.clone(),
        jwk: jwk.into(),
        ..Default::default()
    };
    case(
        r,
        "AddApplicationKey: a JWK set, not one key",
        admin.add_application_key(add_key(r#"{"keys":[]}"#)).await,
    );
    case(
        r,
        "AddApplicationKey: a private EC key, a bad description and expiry",
        admin
            .add_application_key(pb::AddApplicationKeyRequest {
                description: "line\nbreak".into(),
                expiration: Some(pb::add_application_key_request::Expiration::Ttl(
                    prost_types::Duration {
                        seconds: 11 * 366 * 86_400,
                        nanos: 0,
                    },
                )),
                ..add_key(
                    r#"{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"}"#,
                )
            })
            .await,
    );
    case(
        r,
        "AddApplicationKey: an RSA key of 1024 bits",
        admin
            .add_application_key(add_key(&format!(
                r#"{{"kty":"RSA","alg":"RS256","e":"AQAB","n":"{}"}}"#,
                "w".repeat(171)
            )))
            .await,
    );
    case(
        r,
        "DeleteApplicationKey: a secret's name, not a key's",
        admin
            .delete_application_key(pb::DeleteApplicationKeyRequest {
                name: app.secrets[0].name.clone(),
                ..Default::default()
            })
            .await,
    );

    case(
        r,
        "DeleteApplication: bad name",
        admin
            .delete_application(pb::DeleteApplicationRequest {
                name: "organizations/acme".into(),
                etag: String::new(),
            })
            .await,
    );
    case(
        r,
        "DeleteApplication: stale etag",
        admin
            .delete_application(pb::DeleteApplicationRequest {
                name: app.name.clone(),
                etag: "\"0\"".into(),
            })
            .await,
    );

    let introspect = |token: &str| pb::IntrospectTokenRequest {
        token: token.into(),
    };
    case(
        r,
        "IntrospectToken: empty token",
        introspector.introspect_token(introspect("")).await,
    );
    case(
        r,
        "IntrospectToken: an admin key",
        admin.introspect_token(introspect("extapps_at_x")).await,
    );

    let audit_request = |size: i32, application: &str| pb::ListAuditEventsRequest {
        parent: "organizations/acme".into(),
        page_size: size,
        page_token: String::new(),
        application: application.into(),
    };
    case(
        r,
        "ListAuditEvents: negative page size",
        admin.list_audit_events(audit_request(-5, "")).await,
    );
    case(
        r,
        "ListAuditEvents: application of another organization",
        admin
            .list_audit_events(audit_request(10, &foreign.name))
            .await,
    );
    case(
        r,
        "ListAuditEvents: application not a resource name",
        admin
            .list_audit_events(audit_request(10, "Snapshots"))
            .await,
    );

    let pending = signin::authorization_request(&server, &native.client_id).await;
    signin::cases(r, &mut signin, &mut admin, &native.name, &pending).await;

    assert_snapshot("bad_grpc_input", r);
    assert_eq!(
        audit(&mut admin, "acme").await.len(),
        before,
        "no bad input changed anything"
    );
}
