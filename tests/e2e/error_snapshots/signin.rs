//! The sign-in front end's RPCs, given bad input.

use extapps_client::{GeneratedClient as Client, v1 as pb};
use reqwest::StatusCode;

use super::case;
use crate::support::harness::TestServer;
use crate::support::oauth_http::http;

/// A pending authorization request of the native application: its name.
pub(super) async fn authorization_request(server: &TestServer, client_id: &str) -> String {
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

pub(super) async fn cases(
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
