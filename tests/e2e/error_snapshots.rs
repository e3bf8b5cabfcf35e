//! Reviewed snapshots (`insta`, in `tests/snapshots/`) of what a caller sees
//! for bad input: for each RPC its status code, `ErrorInfo` reason, message
//! and field violations, and for each OAuth endpoint its status and RFC 6749
//! error body. Both databases compare with the same snapshot, so they must
//! answer alike. Registration's own cases are in `registration.rs`.

use std::fmt::Write as _;

use extapps_client::{GeneratedClient as Client, v1 as pb};
use extapps_server::domain::caller::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::fixtures::*;
use crate::harness::{Backend, TestServer, error_of};
use crate::snapshot::assert_snapshot;
use crate::tokens::{http, post_form, service_client};

crate::on_both_backends!(
    bad_input_to_each_rpc_is_refused_field_by_field,
    oauth_endpoints_answer_bad_requests_with_rfc_6749_errors,
);

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
        server.client("").get_application(get(&app.name)).await,
    );
    case(
        r,
        "GetApplication: a key that does not exist",
        server
            .client("extapps_ck_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
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

    let pending = authorization_request(&server, &native.client_id).await;
    signin_cases(r, &mut signin, &mut admin, &native.name, &pending).await;

    assert_snapshot("bad_grpc_input", r);
    assert_eq!(
        audit(&mut admin, "acme").await.len(),
        before,
        "no bad input changed anything"
    );
}

/// A pending authorization request of the native application: its name.
async fn authorization_request(server: &TestServer, client_id: &str) -> String {
    let response = http()
        .get(format!("{}/oauth2/authorize", server.url))
        .query(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", "com.example.app:/callback"),
            ("scope", "OR.Jobs"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let (_, id) = location
        .query_pairs()
        .find(|(name, _)| name == "authorization_request")
        .unwrap();
    format!("authorizationRequests/{id}")
}

async fn signin_cases(
    r: &mut String,
    signin: &mut Client,
    admin: &mut Client,
    native: &str,
    pending: &str,
) {
    let garbage = "authorizationRequests/extapps_ar_AAAA";
    case(
        r,
        "GetAuthorizationRequest: empty name",
        signin
            .get_authorization_request(pb::GetAuthorizationRequestRequest {
                name: String::new(),
            })
            .await,
    );
    case(
        r,
        "GetAuthorizationRequest: altered ID",
        signin
            .get_authorization_request(pb::GetAuthorizationRequestRequest {
                name: garbage.into(),
            })
            .await,
    );
    case(
        r,
        "GetAuthorizationRequest: an admin key",
        admin
            .get_authorization_request(pb::GetAuthorizationRequestRequest {
                name: garbage.into(),
            })
            .await,
    );
    let accept =
        |name: &str, subject: &str, scopes: &[&str]| pb::AcceptAuthorizationRequestRequest {
            name: name.into(),
            subject: subject.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        };
    case(
        r,
        "AcceptAuthorizationRequest: no subject, no scopes",
        signin
            .accept_authorization_request(accept(pending, "", &[]))
            .await,
    );
    case(
        r,
        "AcceptAuthorizationRequest: control character in subject",
        signin
            .accept_authorization_request(accept(pending, "user\n1", &["OR.Jobs"]))
            .await,
    );
    case(
        r,
        "AcceptAuthorizationRequest: altered ID",
        signin
            .accept_authorization_request(accept(garbage, "user-1", &["OR.Jobs"]))
            .await,
    );
    case(
        r,
        "AcceptAuthorizationRequest: altered ID and a blank subject",
        signin
            .accept_authorization_request(accept(garbage, " ", &["OR.Jobs"]))
            .await,
    );
    case(
        r,
        "AcceptAuthorizationRequest: scopes that were not requested",
        signin
            .accept_authorization_request(accept(
                pending,
                "user-1",
                &["OR.Queues", "offline_access"],
            ))
            .await,
    );
    case(
        r,
        "AcceptAuthorizationRequest: bad name and no subject",
        signin
            .accept_authorization_request(accept("requests/1", "", &["OR.Jobs"]))
            .await,
    );
    let reject = |error: &str, description: &str| pb::RejectAuthorizationRequestRequest {
        name: pending.into(),
        error: error.into(),
        error_description: description.into(),
    };
    case(
        r,
        "RejectAuthorizationRequest: an error code OAuth does not define here",
        signin
            .reject_authorization_request(reject("invalid_client", ""))
            .await,
    );
    case(
        r,
        "RejectAuthorizationRequest: a quote in the description",
        signin
            .reject_authorization_request(reject("access_denied", "no \"thanks\""))
            .await,
    );
    case(
        r,
        "RejectAuthorizationRequest: altered ID",
        signin
            .reject_authorization_request(pb::RejectAuthorizationRequestRequest {
                name: garbage.into(),
                error: String::new(),
                error_description: String::new(),
            })
            .await,
    );
    case(
        r,
        "ListUserAuthorizations: no subject, negative page size",
        signin
            .list_user_authorizations(pb::ListUserAuthorizationsRequest {
                subject: String::new(),
                page_size: -1,
                page_token: String::new(),
            })
            .await,
    );
    case(
        r,
        "RevokeUserAuthorization: no subject, bad application",
        signin
            .revoke_user_authorization(pb::RevokeUserAuthorizationRequest {
                subject: String::new(),
                application: "applications/1".into(),
            })
            .await,
    );
    case(
        r,
        "RevokeUserAuthorization: nothing authorized",
        signin
            .revoke_user_authorization(pb::RevokeUserAuthorizationRequest {
                subject: "user-1".into(),
                application: native.into(),
            })
            .await,
    );
}

/// Appends one HTTP answer: status, then the JSON body with sorted keys.
fn answer(report: &mut String, name: &str, (status, body): (StatusCode, Value)) {
    assert!(!status.is_success(), "{name}: {status} {body}");
    let body = serde_json::to_string_pretty(&body).unwrap();
    writeln!(report, "## {name}\n{status}\n{body}\n").unwrap();
}

async fn oauth_endpoints_answer_bad_requests_with_rfc_6749_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = service_client(&server, "Snapshots").await;
    let introspect_key = server.key(Some("acme"), Role::Introspect, &[]).await;
    let (id, secret) = (client.app.client_id.as_str(), client.secret.as_str());
    let url = server.url.as_str();
    let r = &mut String::new();

    let token = |form: &'static [(&'static str, &'static str)]| {
        post_form(url, "/oauth2/token", Some((id, secret)), form)
    };
    answer(r, "token: no grant_type", token(&[]).await);
    answer(
        r,
        "token: unsupported grant_type",
        token(&[("grant_type", "password")]).await,
    );
    answer(
        r,
        "token: a parameter twice",
        token(&[
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ])
        .await,
    );
    answer(
        r,
        "token: unknown scope",
        token(&[("grant_type", "client_credentials"), ("scope", "OR.Nope")]).await,
    );
    answer(
        r,
        "token: authorization_code for a client without user scopes",
        token(&[("grant_type", "authorization_code"), ("code", "x")]).await,
    );
    answer(
        r,
        "token: no client authentication",
        post_form(
            url,
            "/oauth2/token",
            None,
            &[("grant_type", "client_credentials")],
        )
        .await,
    );
    answer(
        r,
        "token: a secret that fails its checksum",
        post_form(
            url,
            "/oauth2/token",
            Some((id, "extapps_cs_mistyped")),
            &[("grant_type", "client_credentials")],
        )
        .await,
    );
    // Another application's secret: well formed, checksum and all.
    let wrong = service_client(&server, "Snapshots other").await.secret;
    answer(
        r,
        "token: a well-formed secret that is not the client's",
        post_form(
            url,
            "/oauth2/token",
            Some((id, &wrong)),
            &[("grant_type", "client_credentials")],
        )
        .await,
    );
    answer(
        r,
        "token: unknown client",
        post_form(
            url,
            "/oauth2/token",
            Some(("00000000-0000-0000-0000-000000000000", secret)),
            &[("grant_type", "client_credentials")],
        )
        .await,
    );

    let introspect = |key: Option<&str>, form: &[(&str, &str)]| {
        let mut request = http().post(format!("{url}/oauth2/introspect")).form(form);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        async move {
            let response = request.send().await.unwrap();
            (
                response.status(),
                response.json().await.unwrap_or(Value::Null),
            )
        }
    };
    answer(
        r,
        "introspect: no caller key",
        introspect(None, &[("token", "x")]).await,
    );
    answer(
        r,
        "introspect: no token",
        introspect(Some(&introspect_key), &[]).await,
    );

    answer(
        r,
        "revoke: no client authentication",
        post_form(url, "/oauth2/revoke", None, &[("token", "x")]).await,
    );
    answer(
        r,
        "revoke: no token",
        post_form(url, "/oauth2/revoke", Some((id, secret)), &[]).await,
    );

    let authorize = |query: &[(&str, &str)]| {
        let request = http()
            .get(format!("{url}/oauth2/authorize"))
            .header("accept", "application/json")
            .query(query);
        async move {
            let response = request.send().await.unwrap();
            (
                response.status(),
                response.json().await.unwrap_or(Value::Null),
            )
        }
    };
    answer(
        r,
        "authorize: no client_id",
        authorize(&[("response_type", "code")]).await,
    );
    answer(
        r,
        "authorize: a redirect_uri that is not registered",
        authorize(&[
            ("response_type", "code"),
            ("client_id", id),
            ("redirect_uri", "https://attacker.example/cb"),
        ])
        .await,
    );

    assert_snapshot("oauth_errors", r);
}
