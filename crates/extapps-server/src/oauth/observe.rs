//! What operators see of each OAuth call: its request span and DEBUG lines
//! (the same as the trace layer gives gRPC calls) and its count and
//! latency, by endpoint and HTTP status. A layer per route that wraps the
//! call's future in place: a middleware function would box every call's
//! future and copy the routes behind it per call, and the trace layer reads
//! the clock four times a call; this costs two clock reads and the counting.

use std::{
    borrow::Cow,
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use axum::{
    http::{Request, StatusCode},
    response::Response,
};
use tracing::{Instrument, instrument::Instrumented};

use crate::service::Service;

/// The layer observing the calls of one endpoint.
#[derive(Clone, Debug)]
pub struct ObserveCalls {
    service: Service,
    endpoint: &'static str,
}

impl ObserveCalls {
    pub fn new(service: Service, endpoint: &'static str) -> Self {
        Self { service, endpoint }
    }
}

impl<S> tower::Layer<S> for ObserveCalls {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observed {
            inner,
            layer: self.clone(),
        }
    }
}

/// An endpoint whose calls are observed.
#[derive(Clone, Debug)]
pub struct Observed<S> {
    inner: S,
    layer: ObserveCalls,
}

impl<S, B> tower::Service<Request<B>> for Observed<S>
where
    S: tower::Service<Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Counting<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let span = crate::spans::request_span(&request);
        tracing::debug!(parent: &span, "started processing request");
        Counting {
            call: span.in_scope(|| self.inner.call(request)).instrument(span),
            started: Instant::now(),
            service: self.layer.service.clone(),
            endpoint: self.layer.endpoint,
        }
    }
}

pin_project_lite::pin_project! {
    /// A call in progress, counted when it answers.
    pub struct Counting<F> {
        #[pin]
        call: Instrumented<F>,
        started: Instant,
        service: Service,
        endpoint: &'static str,
    }
}

impl<F> Future for Counting<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Poll::Ready(Ok(response)) = this.call.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        let latency = this.started.elapsed();
        this.service.metrics().call(
            "http",
            this.endpoint,
            status_label(response.status()),
            latency,
        );
        tracing::debug!(
            parent: this.call.span(),
            latency = %format_args!("{} ms", latency.as_millis()),
            status = response.status().as_u16(),
            "finished processing request"
        );
        Poll::Ready(Ok(response))
    }
}

/// The metrics label of an HTTP status: the usual ones without an
/// allocation per call.
fn status_label(status: StatusCode) -> Cow<'static, str> {
    match status {
        StatusCode::OK => "200".into(),
        StatusCode::SEE_OTHER => "303".into(),
        StatusCode::BAD_REQUEST => "400".into(),
        StatusCode::UNAUTHORIZED => "401".into(),
        other => other.as_str().to_owned().into(),
    }
}
