//! Serving connections with a bound on every wait: a cap on open
//! connections, overall and per peer address, a deadline for the TLS
//! handshake and the first request's head, a deadline for each request
//! body, an idle timeout, HTTP/2 keep-alive pings and a cap on concurrent
//! streams, and a shutdown that closes idle and stalled connections at once
//! and waits only for requests in progress. Accepted sockets set
//! `TCP_NODELAY`: a response written in pieces must not wait for the peer's
//! delayed ACK.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::{Request, body::Incoming};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{
    net::TcpListener,
    sync::{OwnedSemaphorePermit, Semaphore, watch},
    time::{Instant, Sleep},
};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::service::SourceKey;

/// The limits every connection is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A new connection must send a complete request head within this (and
    /// an HTTP/1 connection each later head, once it starts waiting for one).
    pub header_read_timeout: Duration,
    /// A request body must arrive whole within this of its head.
    pub body_timeout: Duration,
    /// A connection with no request in progress for this long is closed.
    pub idle_timeout: Duration,
    /// HTTP/2 pings this often; a peer that does not answer one within the
    /// same time is dropped.
    pub http2_keepalive: Duration,
    /// Connections open at once; more are closed as soon as accepted.
    pub max_connections: usize,
    /// Connections open at once from one peer address (IPv6: its /64).
    pub max_connections_per_source: usize,
    /// How long shutdown waits for requests in progress.
    pub drain: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            http2_keepalive: Duration::from_secs(20),
            max_connections: 4096,
            max_connections_per_source: 1024,
            drain: Duration::from_secs(30),
        }
    }
}

/// HTTP/2 streams (calls) one connection may have open at once.
const MAX_STREAMS_PER_CONNECTION: u32 = 100;

/// Serves `router` on `listener` (over TLS with `tls`) until `shutdown`
/// resolves; then closes every connection without a request in progress and
/// gives the others at most `limits.drain` to finish.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_keepalive)
        .keep_alive_timeout(limits.http2_keepalive)
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_source = PerSource::new(limits.max_connections_per_source);
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, say: wait a moment rather than spin.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "connection refused: too many open connections");
            continue;
        };
        let Some(source_slot) = per_source.take(peer.ip()) else {
            tracing::debug!(%peer, "connection refused: too many open connections from this address");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (router, builder, tls, stopped) = (
            router.clone(),
            builder.clone(),
            tls.clone(),
            stopped.clone(),
        );
        tokio::spawn(async move {
            let slots = (slot, source_slot);
            let Some(tls) = tls else {
                return connection(tcp, peer, router, builder, limits, stopped, slots).await;
            };
            // The handshake happens here, in the connection's own task and
            // within the header deadline, never in the accept loop; shutdown
            // does not wait for it.
            let mut stopping = stopped.clone();
            let handshake = tokio::select! {
                handshake = tokio::time::timeout(limits.header_read_timeout, tls.accept(tcp)) => handshake,
                _ = stopping.wait_for(|stop| *stop) => return,
            };
            match handshake {
                Ok(Ok(stream)) => {
                    connection(stream, peer, router, builder, limits, stopped, slots).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    drop(stopped);
    let _ = stop.send(true);
    if tokio::time::timeout(limits.drain, stop.closed())
        .await
        .is_err()
    {
        tracing::warn!(drain = ?limits.drain, "requests in progress did not finish in time; closing");
    }
    Ok(())
}

/// One connection, from accept to close.
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: ConnectionLimits,
    mut stopped: watch::Receiver<bool>,
    _slots: (OwnedSemaphorePermit, SourceSlot),
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let in_progress = activity.begin();
            request.extensions_mut().insert(ConnectInfo(peer));
            let request = request.map(|body| DeadlineBody::new(body, limits.body_timeout));
            let router = router.clone();
            async move {
                let response = match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                // In progress while the handler runs; a response body the
                // peer will not take (an HTTP/2 window kept at zero) does not
                // keep the connection from idling out.
                drop(in_progress);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(activity.deadline(&limits)) => {
                if activity.expired(&limits) {
                    tracing::debug!(%peer, "closing an idle or stalled connection");
                    conn.as_mut().graceful_shutdown();
                    // An HTTP/2 peer may still start calls until it hears the
                    // GOAWAY: let those finish, within the drain time.
                    let _ = tokio::time::timeout(limits.drain, conn.as_mut()).await;
                    return;
                }
            }
            _ = async { stopped.wait_for(|stop| *stop).await.map(|_| ()) } => {
                conn.as_mut().graceful_shutdown();
                if activity.in_flight() > 0 {
                    let _ = conn.as_mut().await;
                }
                return;
            }
        }
    }
}

/// Open connections per peer address.
struct PerSource {
    open: Arc<Mutex<HashMap<SourceKey, usize>>>,
    limit: usize,
}

/// One connection counted against its address until dropped.
struct SourceSlot {
    source: SourceKey,
    open: Arc<Mutex<HashMap<SourceKey, usize>>>,
}

impl PerSource {
    fn new(limit: usize) -> Self {
        Self {
            open: Arc::default(),
            limit: limit.max(1),
        }
    }

    fn take(&self, ip: std::net::IpAddr) -> Option<SourceSlot> {
        let source = SourceKey::from(ip);
        let mut open = self.open.lock().ok()?;
        let count = open.entry(source).or_default();
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(SourceSlot {
            source,
            open: self.open.clone(),
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock()
            && let Some(count) = open.get_mut(&self.source)
        {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.source);
            }
        }
    }
}

/// Requests in progress on one connection, and when the last one ended.
/// Atomics rather than a lock, and one clock read per request: this is on
/// every request's path.
#[derive(Debug)]
struct Activity {
    accepted: Instant,
    in_flight: AtomicUsize,
    /// When the last request ended, in nanoseconds after `accepted` plus
    /// one; zero before any has.
    last_ended: AtomicU64,
}

/// Marks a request in progress until dropped.
#[derive(Debug)]
struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        let activity = &self.0;
        let since = Instant::now().saturating_duration_since(activity.accepted);
        let nanos = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX - 1);
        // The latest end wins, whichever of two requests ending together
        // writes last.
        activity.last_ended.fetch_max(nanos + 1, Ordering::AcqRel);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    fn new() -> Self {
        Self {
            accepted: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ended: AtomicU64::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> InProgress {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InProgress(self.clone())
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// When the connection is next due for closing, if nothing happens: the
    /// header deadline before its first request, the idle timeout after.
    fn deadline(&self, limits: &ConnectionLimits) -> Instant {
        if self.in_flight() > 0 {
            return Instant::now() + limits.idle_timeout;
        }
        match self.last_ended.load(Ordering::Acquire) {
            0 => self.accepted + limits.header_read_timeout,
            ended => self.accepted + Duration::from_nanos(ended - 1) + limits.idle_timeout,
        }
    }

    fn expired(&self, limits: &ConnectionLimits) -> bool {
        self.in_flight() == 0 && self.deadline(limits) <= Instant::now()
    }
}

/// A request body that must arrive whole before a deadline: a client that
/// dribbles or never ends its body cannot hold a request open.
/// The deadline counts from the head; its timer is armed the first time
/// the body is not at hand, so a small body that arrives with its head
/// (nearly every request) never needs one.
struct DeadlineBody {
    inner: Incoming,
    due: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            due: Instant::now() + timeout,
            timer: None,
        }
    }
}

/// The body error a late body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let due = this.due;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
