//! The sign-in front end's side of a pending request: bad answers change
//! nothing, only the right callers see it, it is answered once (accepted or
//! rejected), and it ends with its redirect URL or when it expires.

use extapps_client::v1 as pb;
use extapps_server::domain::caller::Role;
use tonic::Code;

use crate::support::fixtures::*;
use crate::support::harness::Backend;
use crate::support::user_flow::{
    LOOPBACK, USER, grpc_error, native, pending, query_of, setup, typed,
};

crate::on_both_backends!(the_sign_in_handoff_answers_each_request_once);

async fn the_sign_in_handoff_answers_each_request_once(backend: Backend) {
    let mut setup = setup(backend).await;
    let app = native(&mut setup, "Handoff").await;
    let server = &setup.server;
    let signin = &setup.signin;
    let id = pending(server, &app, LOOPBACK, "OR.Jobs OR.Queues offline_access").await;

    // Bad answers change nothing.
    let bad = grpc_error(
        signin
            .accept_authorization_request(
                &id,
                " spaced",
                vec!["OR.Jobs".into(), "OR.Assets".into()],
            )
            .await,
    );
    assert_eq!(bad.code, Code::InvalidArgument);
    let fields: Vec<_> = bad.violations.iter().map(|v| v.0.as_str()).collect();
    assert_eq!(fields, ["subject", "scopes[1]"]);
    let only_offline = grpc_error(
        signin
            .accept_authorization_request(&id, USER, vec!["offline_access".into()])
            .await,
    );
    assert_eq!(only_offline.code, Code::InvalidArgument);
    let none = grpc_error(signin.accept_authorization_request(&id, USER, vec![]).await);
    assert_eq!(none.violations[0].0, "scopes");
    let bad_error = grpc_error(signin.reject_authorization_request(&id, "nope", "").await);
    assert_eq!(bad_error.violations[0].0, "error");

    // Other callers: another organization's key, an altered ID, an admin.
    let other_org = typed(server, Some("globex"), Role::Signin).await;
    let hidden = grpc_error(other_org.authorization_request(&id).await);
    assert_eq!(hidden.code, Code::NotFound);
    assert_eq!(
        hidden.reason.as_deref(),
        Some("AUTHORIZATION_REQUEST_NOT_FOUND")
    );
    let altered = format!("{}A{}", &id[..40], &id[41..]);
    let altered = if altered == id {
        format!("{}B{}", &id[..40], &id[41..])
    } else {
        altered
    };
    let unknown = grpc_error(signin.authorization_request(&altered).await);
    assert_eq!(unknown.code, Code::NotFound);
    let admin = typed(server, Some("acme"), Role::Admin).await;
    let denied = grpc_error(admin.authorization_request(&id).await);
    assert_eq!(denied.code, Code::PermissionDenied);
    let platform = typed(server, None, Role::Signin).await;
    assert!(
        platform.authorization_request(&id).await.is_ok(),
        "platform-wide"
    );

    // One answer.
    let url = signin
        .accept_authorization_request(&id, USER, vec!["OR.Queues".into()])
        .await
        .unwrap();
    assert!(query_of(&url).contains_key("code"));
    for again in [
        grpc_error(signin.authorization_request(&id).await),
        grpc_error(
            signin
                .accept_authorization_request(&id, USER, vec!["OR.Jobs".into()])
                .await,
        ),
        grpc_error(signin.reject_authorization_request(&id, "", "").await),
    ] {
        assert_eq!(again.code, Code::FailedPrecondition);
        assert_eq!(
            again.reason.as_deref(),
            Some("AUTHORIZATION_REQUEST_ANSWERED")
        );
    }

    // A rejection goes back with `access_denied` (or the error chosen).
    let id = pending(server, &app, LOOPBACK, "OR.Jobs").await;
    let url = signin
        .reject_authorization_request(&id, "", "the user declined")
        .await
        .unwrap();
    assert!(url.starts_with(&format!("{LOOPBACK}?")));
    let answer = query_of(&url);
    assert_eq!(answer["error"], "access_denied");
    assert_eq!(answer["error_description"], "the user declined");
    assert_eq!(answer["state"], "s-123");
    assert_eq!(answer["iss"], server.url);
    let late = grpc_error(
        signin
            .accept_authorization_request(&id, USER, vec!["OR.Jobs".into()])
            .await,
    );
    assert_eq!(
        late.reason.as_deref(),
        Some("AUTHORIZATION_REQUEST_ANSWERED")
    );

    // A redirect URL removed since the request was made ends the request.
    let id = pending(server, &app, LOOPBACK, "OR.Jobs").await;
    setup
        .admin
        .update_application(pb::UpdateApplicationRequest {
            application: Some(pb::Application {
                name: app.name.clone(),
                redirect_urls: vec!["com.example.app:/callback".into()],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["redirect_urls".into()],
            }),
        })
        .await
        .unwrap();
    for gone in [
        grpc_error(signin.authorization_request(&id).await),
        grpc_error(
            signin
                .accept_authorization_request(&id, USER, vec!["OR.Jobs".into()])
                .await,
        ),
    ] {
        assert_eq!(gone.code, Code::NotFound);
    }

    // Requests expire (10 minutes by default).
    let id = pending(server, &app, "com.example.app:/callback", "OR.Jobs").await;
    server.clock.advance(time::Duration::minutes(10));
    for expired in [
        grpc_error(signin.authorization_request(&id).await),
        grpc_error(
            signin
                .accept_authorization_request(&id, USER, vec!["OR.Jobs".into()])
                .await,
        ),
    ] {
        assert_eq!(expired.code, Code::FailedPrecondition);
        assert_eq!(
            expired.reason.as_deref(),
            Some("AUTHORIZATION_REQUEST_EXPIRED")
        );
    }

    // Each answer is audited.
    let actions: Vec<_> = audit(&mut setup.admin, "acme")
        .await
        .iter()
        .map(|e| (e.action(), e.details.get("subject").cloned()))
        .collect();
    assert_eq!(
        actions[..3],
        [
            (pb::AuditAction::ApplicationUpdated, None),
            (pb::AuditAction::AuthorizationRejected, None),
            (
                pb::AuditAction::AuthorizationAccepted,
                Some(USER.to_owned())
            ),
        ]
    );
}
