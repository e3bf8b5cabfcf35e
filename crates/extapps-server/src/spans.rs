//! The span every request runs in, gRPC call or OAuth request alike.

/// One span per call, named by its path only: never the query string (a
/// client may wrongly put a secret there), headers or body.
pub(crate) fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
    )
}
