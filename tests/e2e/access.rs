//! Caller keys and roles (SPEC section 6): every RPC needs a key, roles limit
//! what a key may call, and a key never reaches another organization's data.

use extapps_client::{ErrorReport, GeneratedClient as Client, v1 as pb};
use extapps_server::domain::caller::Role;
use prost_types::FieldMask;
use reqwest::StatusCode;
use tonic::Code;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer, error_of};
use crate::support::oauth_http::{
    App, introspect_grpc, introspect_http, is_active, post_form, service_client, token,
};
use crate::support::signing::{Alg, SigningKey};

crate::on_both_backends!(
    no_organization_reaches_another_organizations_tokens,
    calls_without_a_valid_key_are_unauthenticated,
    roles_limit_what_a_key_may_call,
    keys_never_reach_another_organization,
    operators_reach_every_organization,
);

/// The calls of the sign-in front end.
const SIGNIN_RPCS: [&str; 5] = [
    "GetAuthorizationRequest",
    "AcceptAuthorizationRequest",
    "RejectAuthorizationRequest",
    "ListUserAuthorizations",
    "RevokeUserAuthorization",
];
/// An authorization request ID no server issued.
const UNKNOWN_REQUEST: &str = "authorizationRequests/extapps_ar_unknown";

/// One call of every RPC, aimed at `app` in `organization`, reduced to its
/// outcome: `Ok(())` or the error details.
async fn call_every_rpc(
    client: &mut Client,
    organization: &str,
    app: &pb::Application,
) -> Vec<(&'static str, Result<(), ErrorReport>)> {
    fn outcome<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Result<(), ErrorReport> {
        r.map(|_| ()).map_err(|s| ErrorReport::from(&s))
    }
    let parent = format!("organizations/{organization}");
    let mut renamed = app.clone();
    renamed.display_name = format!("{} (renamed)", app.display_name);
    // Changed below before it is renamed: no etag precondition.
    renamed.etag.clear();
    // A key is added first, so that deleting it has something to delete.
    let added = client
        .add_application_key(pb::AddApplicationKeyRequest {
            name: app.name.clone(),
            jwk: SigningKey::generate(Alg::EdDsa).public_jwk().to_string(),
            ..Default::default()
        })
        .await;
    let key_name = match &added {
        Ok(response) => response.get_ref().key.as_ref().unwrap().name.clone(),
        Err(_) => format!("{}/keys/{}", app.name, uuid::Uuid::new_v4()),
    };
    vec![
        ("AddApplicationKey", outcome(added)),
        (
            "DeleteApplicationKey",
            outcome(
                client
                    .delete_application_key(pb::DeleteApplicationKeyRequest {
                        name: key_name,
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "RegisterApplication",
            outcome(
                client
                    .register_application(register_request(organization, service_app("Probe")))
                    .await,
            ),
        ),
        (
            "GetApplication",
            outcome(
                client
                    .get_application(pb::GetApplicationRequest {
                        name: app.name.clone(),
                    })
                    .await,
            ),
        ),
        (
            "ListApplications",
            outcome(
                client
                    .list_applications(pb::ListApplicationsRequest {
                        parent: parent.clone(),
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "UpdateApplication",
            outcome(
                client
                    .update_application(pb::UpdateApplicationRequest {
                        application: Some(renamed),
                        update_mask: Some(FieldMask {
                            paths: vec!["display_name".into()],
                        }),
                    })
                    .await,
            ),
        ),
        (
            "UpdateApplicationScopes",
            outcome(
                client
                    .update_application_scopes(pb::UpdateApplicationScopesRequest {
                        name: app.name.clone(),
                        grants: vec![grant("OR", &[], &["OR.Assets.Read"])],
                        etag: String::new(),
                    })
                    .await,
            ),
        ),
        (
            "DeleteApplicationSecret",
            outcome(
                client
                    .delete_application_secret(pb::DeleteApplicationSecretRequest {
                        name: app.secrets[0].name.clone(),
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "GenerateApplicationSecret",
            outcome(
                client
                    .generate_application_secret(pb::GenerateApplicationSecretRequest {
                        name: app.name.clone(),
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "ListAuditEvents",
            outcome(
                client
                    .list_audit_events(pb::ListAuditEventsRequest {
                        parent: parent.clone(),
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "ListResources",
            outcome(client.list_resources(pb::ListResourcesRequest {}).await),
        ),
        (
            "IntrospectToken",
            outcome(
                client
                    .introspect_token(pb::IntrospectTokenRequest {
                        token: "extapps_at_unknown".into(),
                    })
                    .await,
            ),
        ),
        (
            "GetAuthorizationRequest",
            outcome(
                client
                    .get_authorization_request(pb::GetAuthorizationRequestRequest {
                        name: UNKNOWN_REQUEST.into(),
                    })
                    .await,
            ),
        ),
        (
            "AcceptAuthorizationRequest",
            outcome(
                client
                    .accept_authorization_request(pb::AcceptAuthorizationRequestRequest {
                        name: UNKNOWN_REQUEST.into(),
                        subject: "user-1".into(),
                        scopes: vec!["OR.Jobs".into()],
                    })
                    .await,
            ),
        ),
        (
            "RejectAuthorizationRequest",
            outcome(
                client
                    .reject_authorization_request(pb::RejectAuthorizationRequestRequest {
                        name: UNKNOWN_REQUEST.into(),
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "ListUserAuthorizations",
            outcome(
                client
                    .list_user_authorizations(pb::ListUserAuthorizationsRequest {
                        subject: "user-1".into(),
                        ..Default::default()
                    })
                    .await,
            ),
        ),
        (
            "RevokeUserAuthorization",
            outcome(
                client
                    .revoke_user_authorization(pb::RevokeUserAuthorizationRequest {
                        subject: "user-1".into(),
                        application: app.name.clone(),
                    })
                    .await,
            ),
        ),
        (
            "DeleteApplication",
            outcome(
                client
                    .delete_application(pb::DeleteApplicationRequest {
                        name: app.name.clone(),
                        etag: String::new(),
                    })
                    .await,
            ),
        ),
    ]
}

async fn calls_without_a_valid_key_are_unauthenticated(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let app = register(&mut admin, "acme", service_app("Guarded"))
        .await
        .application
        .unwrap();
    let (revoked_id, revoked) = server.key_with_id(Some("acme"), Role::Admin, &[]).await;
    server.service.revoke_caller_key(&revoked_id).await.unwrap();

    let no_key = extapps_client::v1::external_applications_client::ExternalApplicationsClient::new(
        server.channel(),
    );
    let mut no_key_calls = Vec::new();
    {
        // A client without the interceptor: no `authorization` at all.
        let mut c = no_key;
        no_key_calls.push(error_of(
            c.get_application(pb::GetApplicationRequest {
                name: app.name.clone(),
            })
            .await,
        ));
        no_key_calls.push(error_of(
            c.list_resources(pb::ListResourcesRequest {}).await,
        ));
    }
    for err in no_key_calls {
        assert_eq!(err.code, Code::Unauthenticated);
        assert_eq!(err.reason.as_deref(), Some("MISSING_CREDENTIALS"));
    }

    let valid = server.key(Some("acme"), Role::Admin, &[]).await;
    let swapped = if &valid[20..21] == "A" { "B" } else { "A" };
    let typo = format!("{}{swapped}{}", &valid[..20], &valid[21..]);
    for key in ["not-a-key".to_owned(), typo, revoked] {
        let mut client = server.client(&key);
        for (rpc, outcome) in call_every_rpc(&mut client, "acme", &app).await {
            let err = outcome.expect_err(rpc);
            assert_eq!(err.code, Code::Unauthenticated, "{rpc}");
            assert_eq!(err.reason.as_deref(), Some("INVALID_CREDENTIALS"), "{rpc}");
        }
    }
    assert_eq!(get(&mut admin, &app.name).await, app, "nothing changed");
}

async fn roles_limit_what_a_key_may_call(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let app = register(&mut admin, "acme", service_app("Roles"))
        .await
        .application
        .unwrap();
    for role in [Role::Introspect, Role::Signin] {
        let key = server.key(Some("acme"), role, &[]).await;
        let mut client = server.client(&key);
        for (rpc, outcome) in call_every_rpc(&mut client, "acme", &app).await {
            match (role, rpc) {
                (_, "ListResources") => assert!(outcome.is_ok(), "{role:?} {rpc}"),
                (Role::Introspect, "IntrospectToken") => assert!(outcome.is_ok(), "{outcome:?}"),
                (Role::Signin, "ListUserAuthorizations") => assert!(outcome.is_ok(), "{outcome:?}"),
                // Allowed, about things that do not exist.
                (Role::Signin, rpc) if SIGNIN_RPCS.contains(&rpc) => {
                    let err = outcome.expect_err(rpc);
                    assert_eq!(err.code, Code::NotFound, "{rpc}: {err:?}");
                }
                _ => {
                    let err = outcome.expect_err(rpc);
                    assert_eq!(err.code, Code::PermissionDenied, "{role:?} {rpc}");
                    assert_eq!(err.reason.as_deref(), Some("ROLE_NOT_ALLOWED"));
                }
            }
        }
    }
    // An admin key may not introspect or act for the sign-in front end.
    let mut probe = server.admin("acme").await;
    let app2 = register(&mut probe, "acme", service_app("Roles 2"))
        .await
        .application
        .unwrap();
    let outcomes = call_every_rpc(&mut probe, "acme", &app2).await;
    for (rpc, outcome) in outcomes {
        match rpc {
            rpc if rpc == "IntrospectToken" || SIGNIN_RPCS.contains(&rpc) => {
                assert_eq!(
                    outcome.expect_err(rpc).code,
                    Code::PermissionDenied,
                    "{rpc}"
                )
            }
            _ => assert!(outcome.is_ok(), "admin {rpc}: {outcome:?}"),
        }
    }
    assert_eq!(
        get(&mut admin, &app.name).await,
        app,
        "the other roles changed nothing"
    );
}

async fn keys_never_reach_another_organization(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut acme = server.admin("acme").await;
    let mut other = server.admin("other").await;
    let app = register(&mut acme, "acme", service_app("Private"))
        .await
        .application
        .unwrap();
    for (rpc, outcome) in call_every_rpc(&mut other, "acme", &app).await {
        match rpc {
            "ListResources" => assert!(outcome.is_ok()),
            rpc if rpc == "IntrospectToken" || SIGNIN_RPCS.contains(&rpc) => {
                assert_eq!(outcome.expect_err(rpc).code, Code::PermissionDenied)
            }
            "RegisterApplication" | "ListApplications" | "ListAuditEvents" => {
                let err = outcome.expect_err(rpc);
                assert_eq!(err.code, Code::NotFound, "{rpc}");
                assert_eq!(
                    err.reason.as_deref(),
                    Some("ORGANIZATION_NOT_FOUND"),
                    "{rpc}"
                );
            }
            _ => {
                let err = outcome.expect_err(rpc);
                assert_eq!(err.code, Code::NotFound, "{rpc}");
                assert_eq!(
                    err.reason.as_deref(),
                    Some("APPLICATION_NOT_FOUND"),
                    "{rpc}"
                );
            }
        }
    }
    // The answer is the same as for an application that does not exist.
    let missing = format!("organizations/acme/applications/{}", uuid::Uuid::new_v4());
    let err = error_of(
        acme.get_application(pb::GetApplicationRequest { name: missing })
            .await,
    );
    let cross = error_of(
        other
            .get_application(pb::GetApplicationRequest {
                name: app.name.clone(),
            })
            .await,
    );
    assert_eq!(
        (err.code, err.reason, err.message),
        (cross.code, cross.reason, cross.message)
    );
    assert_eq!(get(&mut acme, &app.name).await, app, "nothing changed");
    assert!(list_all(&mut other, "other").await.is_empty());
}

async fn operators_reach_every_organization(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut acme = server.admin("acme").await;
    let app = register(&mut acme, "acme", service_app("Operated"))
        .await
        .application
        .unwrap();
    let key = server.key(None, Role::Operator, &[]).await;
    let mut operator = server.client(&key);
    for (rpc, outcome) in call_every_rpc(&mut operator, "acme", &app).await {
        match rpc {
            rpc if SIGNIN_RPCS.contains(&rpc) => {
                assert_eq!(
                    outcome.expect_err(rpc).code,
                    Code::PermissionDenied,
                    "{rpc}"
                )
            }
            _ => assert!(outcome.is_ok(), "operator {rpc}: {outcome:?}"),
        }
    }
    // The operator's changes are audited under its key.
    let events = audit(&mut acme, "acme").await;
    assert_eq!(events[0].action(), pb::AuditAction::ApplicationDeleted);
    assert_ne!(events[0].actor_key_id, "");
}

async fn no_organization_reaches_another_organizations_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let acme = service_client(&server, "Acme sync").await;
    let acme_token = token(&server.url, &acme, &acme.secret, None).await.unwrap();
    let mut globex_admin = server.admin("globex").await;
    let registered = register(&mut globex_admin, "globex", service_app("Globex sync")).await;
    let globex = App {
        app: registered.application.unwrap(),
        secret: registered.client_secret,
    };

    // An introspect key of another organization sees the token as inactive,
    // over gRPC and HTTP alike.
    let globex_key = server.key(Some("globex"), Role::Introspect, &[]).await;
    assert!(!is_active(&server.url, &globex_key, &acme_token).await);

    // The token's own organization sees it, without an organization field.
    let acme_key = server.key(Some("acme"), Role::Introspect, &[]).await;
    assert!(is_active(&server.url, &acme_key, &acme_token).await);
    assert_eq!(
        introspect_grpc(&server.url, &acme_key, &acme_token)
            .await
            .organization,
        ""
    );
    assert!(
        introspect_http(&server.url, &acme_key, &acme_token)
            .await
            .get("organization")
            .is_none()
    );

    // A platform-wide key sees every organization's tokens and is told whose.
    let platform_key = server.key(None, Role::Introspect, &[]).await;
    assert!(is_active(&server.url, &platform_key, &acme_token).await);
    assert_eq!(
        introspect_grpc(&server.url, &platform_key, &acme_token)
            .await
            .organization,
        "acme"
    );
    assert_eq!(
        introspect_http(&server.url, &platform_key, &acme_token).await["organization"],
        "acme"
    );

    // Another organization's client cannot revoke the token (RFC 7009: the
    // answer is the same, and nothing happens).
    let (status, _) = post_form(
        &server.url,
        "/oauth2/revoke",
        Some((&globex.app.client_id, &globex.secret)),
        &[("token", &acme_token)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(is_active(&server.url, &acme_key, &acme_token).await);
}
