//! `GET /oauth2/authorize` (RFC 6749 section 4.1.1): sends the browser on to
//! sign in, back to the application with an error, or, when the application
//! or its redirect URL cannot be trusted, to an error page of our own.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::{Html, IntoResponse, Response},
};
use serde_json::json;

use super::{Source, form::Form, no_store, status_of, with_error_headers};
use crate::domain::oauth::OAuthError;
use crate::service::{AuthorizeOutcome, AuthorizeParams, Service};

pub async fn authorize(
    State(service): State<Service>,
    source: Source,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let outcome = match Form::from_query(uri.query().unwrap_or_default().as_bytes()) {
        Ok(form) => {
            let param = |name: &str| form.get(name).map(str::to_owned);
            let params = AuthorizeParams {
                response_type: param("response_type"),
                client_id: param("client_id"),
                redirect_uri: param("redirect_uri"),
                scope: param("scope"),
                state: param("state"),
                code_challenge: param("code_challenge"),
                code_challenge_method: param("code_challenge_method"),
            };
            service.start_authorization(&params, source.0).await
        }
        Err(error) => AuthorizeOutcome::Page(error),
    };
    match outcome {
        AuthorizeOutcome::SignIn(url) | AuthorizeOutcome::Redirect(url) => see_other(&url),
        AuthorizeOutcome::Page(error) => error_page(&headers, error),
    }
}

/// `303 See Other` to `url`, which nothing may cache or leak on.
fn see_other(url: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(url) else {
        return error_page(&HeaderMap::new(), OAuthError::ServerError);
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The error as JSON for a client that asks for it, else as a small HTML
/// page for the person at the browser: no redirect, no script, no frame.
fn error_page(headers: &HeaderMap, error: OAuthError) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json") && !accept.contains("text/html"));
    let status = status_of(&error);
    let response = if wants_json {
        no_store(
            status,
            json!({"error": error.code(), "error_description": error.description()}),
        )
    } else {
        let mut page = (
            status,
            Html(format!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <title>Authorization error</title></head><body>\
                 <h1>This application's request cannot be served</h1>\
                 <p><code>{}</code>: {}</p>\
                 <p>If you followed a link from an application, tell its developer.</p>\
                 </body></html>\n",
                error.code(),
                escape(&error.description())
            )),
        )
            .into_response();
        let headers = page.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        page
    };
    with_error_headers(response, &error)
}

/// Text made safe inside HTML text and quoted attribute values.
fn escape(text: &str) -> String {
    html_escape::encode_quoted_attribute(text).into_owned()
}
