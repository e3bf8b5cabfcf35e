//! **Development only.** A reference sign-in front end for extapps: the part
//! of the platform that signs a user in and asks for consent, while extapps
//! does all of OAuth. It shows how a real front end uses the `signin` calls
//! of the API through the Rust client crate:
//!
//! 1. extapps sends the browser to `GET /signin?authorization_request=ID`.
//! 2. The front end reads the request (`GetAuthorizationRequest`), so an
//!    expired or answered one is refused before the user types anything,
//!    and shows a sign-in form.
//! 3. After sign-in it shows the consent page: the application's name and
//!    each requested scope with its description.
//! 4. Allow or deny calls `AcceptAuthorizationRequest` or
//!    `RejectAuthorizationRequest` and sends the browser where extapps says.
//!
//! It is not fit for production: users and their passwords come from a
//! small file in plain text, and there are no sessions (the signed-in user
//! travels to the consent form in a hidden field, with a MAC under a key
//! that lives as long as the process).

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderValue, StatusCode, Uri, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use extapps_client::{Client, model::AuthorizationRequest};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The path extapps's `--signin-url` should point at.
pub const SIGNIN_PATH: &str = "/signin";
const CONSENT_PATH: &str = "/consent";

/// The users built into the binary, for trying it out.
pub const EXAMPLE_USERS: &str = include_str!("../users.toml");

/// A user of the file. Never a real person.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevUser {
    pub username: String,
    pub password: String,
    /// The stable ID extapps puts in tokens as `sub`.
    pub subject: String,
}

impl std::fmt::Debug for DevUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevUser")
            .field("username", &self.username)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    users: Vec<DevUser>,
}

/// Reads a users file (TOML, see `users.toml`).
pub fn parse_users(text: &str) -> Result<Vec<DevUser>, String> {
    let file: UsersFile = toml::from_str(text).map_err(|e| e.to_string())?;
    if file.users.is_empty() {
        return Err("the users file names no user".into());
    }
    Ok(file.users)
}

/// What the front end runs with.
#[derive(Clone)]
pub struct SignIn {
    extapps: Client,
    users: Arc<Vec<DevUser>>,
    /// Signs "this user signed in for this request" between the two forms.
    proof_key: Arc<[u8; 32]>,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl SignIn {
    /// A front end calling extapps through `extapps` (a client with a
    /// `signin` key) for `users`.
    pub fn new(extapps: Client, users: Vec<DevUser>) -> Result<Self, String> {
        let mut proof_key = [0u8; 32];
        rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut proof_key)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            extapps,
            users: Arc::new(users),
            proof_key: Arc::new(proof_key),
        })
    }

    fn proof(&self, request: &str, subject: &str) -> Vec<u8> {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.proof_key.as_slice()) else {
            return Vec::new();
        };
        mac.update(&(request.len() as u64).to_be_bytes());
        mac.update(request.as_bytes());
        mac.update(subject.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn user(&self, username: &str, password: &str) -> Option<&DevUser> {
        self.users.iter().find(|u| {
            u.username == username && bool::from(u.password.as_bytes().ct_eq(password.as_bytes()))
        })
    }
}

/// The front end's routes.
pub fn router(state: SignIn) -> Router {
    Router::new()
        .route("/", get(index))
        .route(SIGNIN_PATH, get(sign_in_form).post(sign_in))
        .route(CONSENT_PATH, axum::routing::post(consent))
        .with_state(state)
}

async fn index() -> Response {
    page(
        StatusCode::OK,
        "extapps sign-in (development only)",
        "<p>This is the reference sign-in front end of extapps, for development only. \
         Applications send browsers here through <code>/oauth2/authorize</code>.</p>",
    )
}

/// Step 2: the request must be live before the user types anything.
async fn sign_in_form(State(state): State<SignIn>, uri: Uri) -> Response {
    let query = Form::parse(uri.query().unwrap_or_default().as_bytes());
    let Some(id) = query.one("authorization_request") else {
        return failure(
            StatusCode::BAD_REQUEST,
            "This page needs an authorization request.",
        );
    };
    let request = match state.extapps.authorization_request(id).await {
        Ok(request) => request,
        Err(error) => return refused(&error),
    };
    sign_in_page(&request, None)
}

fn sign_in_page(request: &AuthorizationRequest, problem: Option<&str>) -> Response {
    let problem = problem
        .map(|p| format!("<p class=\"problem\" id=\"problem\">{}</p>", escape(p)))
        .unwrap_or_default();
    page(
        StatusCode::OK,
        "Sign in",
        &format!(
            "<p><strong>{}</strong> asks to use your account.</p>{problem}\
             <form method=\"post\" action=\"{SIGNIN_PATH}\">\
             <input type=\"hidden\" name=\"authorization_request\" value=\"{}\">\
             <label>User name <input id=\"username\" name=\"username\" autocomplete=\"username\"></label>\
             <label>Password <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\"></label>\
             <button id=\"sign-in\" type=\"submit\">Sign in</button></form>",
            escape(&request.application_display_name),
            escape(request.id()),
        ),
    )
}

/// Step 3: the user signed in; ask for consent.
async fn sign_in(State(state): State<SignIn>, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let (Some(id), Some(username), Some(password)) = (
        form.one("authorization_request"),
        form.one("username"),
        form.one("password"),
    ) else {
        return failure(StatusCode::BAD_REQUEST, "The sign-in form is incomplete.");
    };
    let request = match state.extapps.authorization_request(id).await {
        Ok(request) => request,
        Err(error) => return refused(&error),
    };
    let Some(user) = state.user(username, password) else {
        return sign_in_page(&request, Some("Unknown user name or wrong password."));
    };
    let proof = hex(&state.proof(id, &user.subject));
    let mut scopes = String::new();
    for scope in &request.scopes {
        scopes.push_str(&format!(
            "<li><label><input type=\"checkbox\" name=\"scope\" value=\"{}\" checked> \
             <strong>{}</strong> ({}): {}</label></li>",
            escape(&scope.scope),
            escape(&scope.scope),
            escape(&scope.resource_display_name),
            escape(&scope.description),
        ));
    }
    if request.offline_access {
        scopes.push_str(
            "<li><label><input type=\"checkbox\" name=\"scope\" value=\"offline_access\" checked> \
             <strong>offline_access</strong>: keep access while you are away</label></li>",
        );
    }
    page(
        StatusCode::OK,
        "Allow access?",
        &format!(
            "<p>Signed in as <strong id=\"subject\">{}</strong>.</p>\
             <p><strong id=\"application\">{}</strong> ({}) asks to:</p>\
             <form method=\"post\" action=\"{CONSENT_PATH}\"><ul id=\"scopes\">{scopes}</ul>\
             <p>You will be sent back to <strong>{}</strong>.</p>\
             <input type=\"hidden\" name=\"authorization_request\" value=\"{}\">\
             <input type=\"hidden\" name=\"subject\" value=\"{}\">\
             <input type=\"hidden\" name=\"proof\" value=\"{proof}\">\
             <button id=\"allow\" name=\"decision\" value=\"allow\" type=\"submit\">Allow</button> \
             <button id=\"deny\" name=\"decision\" value=\"deny\" type=\"submit\">Deny</button></form>",
            escape(&user.username),
            escape(&request.application_display_name),
            escape(request.application.to_string().as_str()),
            escape(&request.redirect_host),
            escape(request.id()),
            escape(&user.subject),
        ),
    )
}

/// Step 4: the answer goes to extapps, the browser where extapps says.
async fn consent(State(state): State<SignIn>, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let (Some(id), Some(subject), Some(proof), Some(decision)) = (
        form.one("authorization_request"),
        form.one("subject"),
        form.one("proof"),
        form.one("decision"),
    ) else {
        return failure(StatusCode::BAD_REQUEST, "The consent form is incomplete.");
    };
    if !bool::from(
        hex(&state.proof(id, subject))
            .as_bytes()
            .ct_eq(proof.as_bytes()),
    ) {
        return failure(StatusCode::FORBIDDEN, "Sign in again.");
    }
    let answer = match decision {
        "allow" => {
            let scopes = form.all("scope");
            if scopes.is_empty() {
                state.extapps.reject_authorization_request(id, "", "").await
            } else {
                state
                    .extapps
                    .accept_authorization_request(id, subject, scopes)
                    .await
            }
        }
        _ => {
            state
                .extapps
                .reject_authorization_request(id, "", "the user declined")
                .await
        }
    };
    match answer {
        Ok(url) => see_other(&url),
        Err(error) => refused(&error),
    }
}

/// The parameters of a form body, repeated ones kept.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The value of a parameter sent exactly once, non-empty.
    fn one(&self, name: &str) -> Option<&str> {
        let mut values = self.0.iter().filter(|(k, _)| k == name);
        match (values.next(), values.next()) {
            (Some((_, value)), None) if !value.is_empty() => Some(value),
            _ => None,
        }
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

fn see_other(url: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(url) else {
        return failure(StatusCode::BAD_GATEWAY, "extapps answered an unusable URL.");
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    response
}

/// What extapps refused, in words for the user.
fn refused(error: &extapps_client::Error) -> Response {
    let reason = error.report().and_then(|r| r.reason.as_deref());
    let (status, text) = match reason {
        Some("AUTHORIZATION_REQUEST_EXPIRED") => (
            StatusCode::GONE,
            "This sign-in request expired. Go back to the application and start again.",
        ),
        Some("AUTHORIZATION_REQUEST_ANSWERED") => (
            StatusCode::CONFLICT,
            "This sign-in request was already answered. Go back to the application.",
        ),
        Some("AUTHORIZATION_REQUEST_NOT_FOUND") => {
            (StatusCode::NOT_FOUND, "This sign-in request is unknown.")
        }
        _ => {
            tracing::warn!(%error, "extapps refused a call");
            (
                StatusCode::BAD_GATEWAY,
                "The sign-in service cannot answer now. Try again later.",
            )
        }
    };
    failure(status, text)
}

fn failure(status: StatusCode, text: &str) -> Response {
    page(
        status,
        "Sign-in problem",
        &format!("<p id=\"problem\">{}</p>", escape(text)),
    )
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let mut response = (
        status,
        Html(format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>{title}</title></head><body>\
             <p><em>extapps development sign-in: not for production use.</em></p>\
             <h1>{title}</h1>{body}</body></html>\n"
        )),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // No `form-action`: browsers apply it to the redirect after the consent
    // form too, which goes to the application.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Text made safe inside HTML text and quoted attribute values.
fn escape(text: &str) -> String {
    html_escape::encode_quoted_attribute(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_users_parse_and_nothing_else_does() {
        let users = parse_users(EXAMPLE_USERS).unwrap();
        assert_eq!(users[0].username, "alice");
        assert!(!format!("{users:?}").contains("password"));
        assert!(!format!("{:?}", users[0]).contains(&users[0].password));
        assert!(parse_users("users = []").is_err());
        assert!(parse_users("[[users]]\nusername = \"x\"").is_err());
    }

    #[test]
    fn forms_keep_repeated_scopes_and_refuse_repeated_singles() {
        let form = Form::parse(b"scope=a&scope=b&subject=s&subject=t&x=");
        assert_eq!(form.all("scope"), ["a", "b"]);
        assert_eq!(form.one("subject"), None);
        assert_eq!(form.one("x"), None);
        assert_eq!(
            escape("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;"
        );
    }
}
