//! The network server: gRPC (with reflection and health) and the OAuth 2.0
//! HTTP endpoints on one port, and graceful shutdown that drains in-flight
//! calls (see [`crate::connections`]).

use std::net::SocketAddr;

use extapps_proto::v1::external_applications_server::ExternalApplicationsServer;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tower_http::classify::GrpcFailureClass;

use crate::grpc::GrpcApi;
use crate::service::Service;

/// Builds every route the server answers.
pub async fn router(service: Service) -> Result<axum::Router, tonic_reflection::server::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<ExternalApplicationsServer<GrpcApi>>()
        .await;

    // grpcurl 1.8 speaks only v1alpha reflection, newer tools v1. Rich error
    // details show in grpcurl only if their descriptors are served too.
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(extapps_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(extapps_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let routes = Routes::new(ExternalApplicationsServer::new(GrpcApi::new(
        service.clone(),
    )))
    .add_service(health_service)
    .add_service(reflection_v1)
    .add_service(reflection_v1alpha);
    let metrics = service.metrics().clone();
    let trusted_proxies = service.client_auth().trusted_proxies;
    Ok(routes
        .into_axum_router()
        .layer(axum::middleware::map_response(
            undecodable_is_invalid_argument,
        ))
        .route(
            "/metrics",
            axum::routing::get(move || async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }),
        )
        .fallback(unknown_path)
        // The OAuth routes, merged after, are observed by their own layer.
        .layer(
            tower_http::trace::TraceLayer::new_for_grpc()
                .make_span_with(crate::spans::request_span)
                .on_failure(call_failed),
        )
        .merge(crate::oauth::router(service))
        .layer(crate::source::attach(trusted_proxies)))
}

/// A call that failed by the caller's doing (a bad key, bad input, not
/// found, a limit) is logged at DEBUG (it is counted in the metrics); ERROR
/// is kept for what needs an operator.
fn call_failed(failure: GrpcFailureClass, latency: std::time::Duration, _: &tracing::Span) {
    let latency_ms = latency.as_millis();
    match failure {
        GrpcFailureClass::Code(code) => {
            let code = tonic::Code::from(code.get());
            if needs_an_operator(code) {
                tracing::error!(%code, latency_ms, "call failed");
            } else {
                tracing::debug!(%code, latency_ms, "call refused");
            }
        }
        // The stream broke: almost always the peer going away.
        GrpcFailureClass::Error(error) => tracing::debug!(%error, latency_ms, "call ended early"),
    }
}

/// Whether a gRPC status means the server, not the caller, is at fault.
fn needs_an_operator(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unknown
            | tonic::Code::Internal
            | tonic::Code::Unavailable
            | tonic::Code::DataLoss
            | tonic::Code::DeadlineExceeded
    )
}

/// tonic answers a request message it cannot decode with `INTERNAL`, but
/// the fault is the caller's: answer `INVALID_ARGUMENT`, with the usual
/// details.
async fn undecodable_is_invalid_argument(
    response: axum::response::Response,
) -> axum::response::Response {
    let headers = response.headers();
    let undecodable = headers.get("grpc-status").is_some_and(|s| s == "13")
        && headers
            .get("grpc-message")
            .is_some_and(|m| m.as_bytes().starts_with(b"failed%20to%20decode"));
    if !undecodable {
        return response;
    }
    let status = crate::grpc::to_status(crate::domain::Error::invalid_field(
        "request",
        "is not a valid protobuf message of this method's request type",
    ));
    let (parts, ()) = status.into_http::<()>().into_parts();
    axum::response::Response::from_parts(parts, axum::body::Body::empty())
}

/// Any path no route serves: a gRPC `UNIMPLEMENTED` for gRPC clients, a plain
/// `404` for everyone else.
async fn unknown_path(request: axum::extract::Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    let grpc = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if grpc {
        let (parts, ()) = tonic::Status::unimplemented("no such method")
            .into_http::<()>()
            .into_parts();
        return axum::response::Response::from_parts(parts, axum::body::Body::empty());
    }
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": "not_found", "error_description": "no such path"})),
    )
        .into_response()
}

pub use crate::connections::{ConnectionLimits, serve};

/// Binds `addr`, reporting what failed in words an operator can act on.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}
