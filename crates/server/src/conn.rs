//! Serving connections: HTTP/1.1 and HTTP/2 (TLS-less prior knowledge too) on hyper's server
//! builder, with the bounds a server facing the network needs and `axum::serve` does not give:
//!
//! * **Header read timeout** ([`ConnectionLimits::header_read_timeout`]): a connection that sends
//!   nothing, or starts a request's headers and does not finish them, is closed once this long has
//!   passed since its first byte (or since it was accepted, when it sends none).
//! * **Body read timeout** ([`ConnectionLimits::body_read_timeout`]): a request body must arrive
//!   whole within this long ([`read_body`]); otherwise the call answers 400 `RequestTimeout` and
//!   the connection is closed.
//! * **Idle timeout** ([`ConnectionLimits::idle_timeout`]): a keep-alive connection with no request
//!   in progress is closed after this long.
//! * **Connection cap** ([`ConnectionLimits::max_connections`], shared by every serving thread and
//!   bounded by the process's open-file limit): at the cap, a new connection takes the place of the
//!   oldest one that has no request in progress (idle, or still sending headers); when every
//!   connection has a call in progress, the new one is closed at once. Either way the process never
//!   runs out of file descriptors and `/_rampart/health` keeps answering while idle or half-open
//!   connections pile up.
//!
//! It also makes HTTP/2 requests look like HTTP/1.1 ones to the layers above: their `:authority`
//! becomes the `host` header SigV4 signs (clients sign `host` whatever the HTTP version).
//!
//! Request body sizes are bounded per protocol before the body is read ([`body_limit`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Connection bounds (`ServerConfig::connections`). The defaults suit a server on a network:
/// generous for SDK clients (which keep connections alive between calls), short enough that idle
/// or half-open connections cannot pile up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest wait for a request's headers, from the connection's first byte (or its accept, when
    /// no byte comes). Default 20 s.
    pub header_read_timeout: Duration,
    /// Longest wait for a whole request body, once its headers are in. Default 60 s.
    pub body_read_timeout: Duration,
    /// How long a keep-alive connection may sit with no request in progress. Default 60 s (an
    /// Application Load Balancer's default).
    pub idle_timeout: Duration,
    /// Most open client connections over all serving threads. Default 4096; never more than the
    /// process's open-file limit leaves room for (the limit minus an eighth of it, at least 64).
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(20),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

impl ConnectionLimits {
    /// [`ConnectionLimits::max_connections`], lowered to what the open-file limit leaves room for.
    pub fn effective_max_connections(&self) -> usize {
        let room = open_file_limit().map_or(usize::MAX, |limit| limit.saturating_sub((limit / 8).max(64)));
        self.max_connections.min(room).max(1)
    }
}

/// The soft `RLIMIT_NOFILE` of this process (Linux: from `/proc/self/limits`); `None` when unknown.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let soft = limits.lines().find_map(|l| l.strip_prefix("Max open files"))?;
    soft.split_whitespace().next()?.parse().ok()
}

/// Largest awsQuery / awsJson request body, in bytes, unless [`MAX_IAM_QUERY_BODY_BYTES`] applies.
/// AWS's largest inputs on these services are far below it: IAM policy documents (131,072
/// characters), STS `SAMLAssertion` (100,000), Secrets Manager secret values (65,536 bytes), KMS
/// plaintexts (4,096 bytes), all of which fit even percent-encoded.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest awsQuery body signed for IAM: `CreateSAMLProvider`/`UpdateSAMLProvider` take SAML
/// metadata documents of up to 10,000,000 characters.
pub const MAX_IAM_QUERY_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The largest body a request may carry: [`MAX_IAM_QUERY_BODY_BYTES`] for awsQuery requests signed
/// for IAM, [`MAX_BODY_BYTES`] for everything else (awsJson is recognised by `X-Amz-Target`).
pub fn body_limit(headers: &HeaderMap) -> usize {
    if headers.contains_key("x-amz-target") {
        return MAX_BODY_BYTES;
    }
    let signed_for_iam = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split(['/', ',']).nth(3))
        .is_some_and(|service| service.trim() == "iam");
    if signed_for_iam {
        MAX_IAM_QUERY_BODY_BYTES
    } else {
        MAX_BODY_BYTES
    }
}

/// Why a request body could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("Request body must be at most {limit} bytes")]
    TooLarge { limit: usize },
    #[error("Your socket connection to the server was not read from or written to within the timeout period.")]
    Timeout,
    #[error("The request body could not be read: it is malformed or ended early.")]
    Malformed,
}

impl BodyError {
    /// The AWS-shaped error for it: 413 `RequestEntityTooLarge`, 400 `RequestTimeout`, 400
    /// `IncompleteBody`.
    pub fn to_aws_error(self) -> rampart_protocol::AwsError {
        let (code, status) = match self {
            BodyError::TooLarge { .. } => ("RequestEntityTooLarge", 413),
            BodyError::Timeout => ("RequestTimeout", 400),
            BodyError::Malformed => ("IncompleteBody", 400),
        };
        rampart_protocol::AwsError::new(code, self.to_string(), status)
    }

    /// The response, in the protocol the request looks like it speaks; the connection is closed
    /// after it (what is left of the body cannot be trusted).
    pub fn response(self, headers: &HeaderMap) -> Response<Body> {
        let protocol = if headers.contains_key("x-amz-target") {
            rampart_protocol::Protocol::AwsJson1_1
        } else {
            rampart_protocol::Protocol::AwsQuery
        };
        let request_id = crate::pipeline::new_request_id();
        let err = self.to_aws_error();
        let (content_type, body) = err.render(protocol, "", &request_id);
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
        let h = response.headers_mut();
        h.insert("content-type", HeaderValue::from_static(content_type));
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            h.insert("x-amzn-requestid", v);
        }
        h.insert("connection", HeaderValue::from_static("close"));
        response
    }
}

/// Read a whole request body of at most `limit` bytes within `timeout`. A `Content-Length` above
/// the limit is refused before any byte is read.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err(BodyError::Timeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(BodyError::TooLarge { limit }),
        Ok(Err(_)) => Err(BodyError::Malformed),
    }
}

/// The open connections of every serving thread, oldest first, for the cap.
pub struct Registry {
    max: usize,
    epoch: Instant,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    conns: BTreeMap<u64, Arc<ConnState>>,
}

impl Registry {
    pub fn new(max_connections: usize) -> Arc<Self> {
        Arc::new(Registry { max: max_connections.max(1), epoch: Instant::now(), open: Mutex::new(Open::default()) })
    }

    /// How many connections are open.
    pub fn open_connections(&self) -> usize {
        self.lock().conns.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Room for a new connection: below the cap, or by closing the oldest connection with no call
    /// in progress. `None` when every connection is busy.
    fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut open = self.lock();
        if open.conns.len() >= self.max {
            let idle = open.conns.iter().find(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0).map(|(id, _)| *id);
            let evicted = open.conns.remove(&idle?)?;
            evicted.evict.notify_one();
        }
        let id = open.next_id;
        open.next_id += 1;
        let state = Arc::new(ConnState::new(self.now_ms()));
        open.conns.insert(id, state.clone());
        Some(Admitted { registry: self.clone(), id, state })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn instant(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }
}

/// A connection's place in the [`Registry`], given back when dropped.
struct Admitted {
    registry: Arc<Registry>,
    id: u64,
    state: Arc<ConnState>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.registry.lock().conns.remove(&self.id);
    }
}

/// What the watchdog of one connection needs to know.
struct ConnState {
    /// Calls whose response is not ready yet.
    in_flight: AtomicUsize,
    /// Milliseconds (registry clock) of the last response, or of the accept.
    last_done: AtomicU64,
    /// Milliseconds of the first byte read while no call was in progress (a request's headers
    /// arriving); `u64::MAX` when none.
    first_unserved_read: AtomicU64,
    /// Whether a call has completed on this connection (the idle timeout applies, not the header
    /// one).
    served: AtomicUsize,
    /// The cap chose this connection to make room.
    evict: Notify,
    /// Something the deadline depends on changed.
    wake: Notify,
}

const NONE: u64 = u64::MAX;

impl ConnState {
    fn new(now_ms: u64) -> Self {
        ConnState {
            in_flight: AtomicUsize::new(0),
            last_done: AtomicU64::new(now_ms),
            first_unserved_read: AtomicU64::new(NONE),
            served: AtomicUsize::new(0),
            evict: Notify::new(),
            wake: Notify::new(),
        }
    }

    /// When the connection is to be closed if nothing changes; `None` while a call is in progress.
    fn deadline(&self, registry: &Registry, limits: &ConnectionLimits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let first_read = self.first_unserved_read.load(Ordering::Acquire);
        if first_read != NONE {
            return Some(registry.instant(first_read) + limits.header_read_timeout);
        }
        let wait =
            if self.served.load(Ordering::Acquire) > 0 { limits.idle_timeout } else { limits.header_read_timeout };
        Some(registry.instant(self.last_done.load(Ordering::Acquire)) + wait)
    }
}

/// Counts a call as in progress until dropped (its response is ready, or it was cancelled).
struct InFlight {
    state: Arc<ConnState>,
    registry: Arc<Registry>,
}

impl InFlight {
    fn start(state: &Arc<ConnState>, registry: &Arc<Registry>) -> Self {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        state.first_unserved_read.store(NONE, Ordering::Release);
        InFlight { state: state.clone(), registry: registry.clone() }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.state.last_done.store(self.registry.now_ms(), Ordering::Release);
        self.state.served.store(1, Ordering::Release);
        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.state.wake.notify_one();
    }
}

/// The socket, noting when request bytes arrive while no call is in progress.
struct Tracked {
    inner: TcpStream,
    state: Arc<ConnState>,
    registry: Arc<Registry>,
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before
            && self.state.in_flight.load(Ordering::Acquire) == 0
            && self.state.first_unserved_read.load(Ordering::Acquire) == NONE
        {
            self.state.first_unserved_read.store(self.registry.now_ms(), Ordering::Release);
            self.state.wake.notify_one();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// HTTP/2 carries the host as `:authority` (the URI's authority); SigV4 signs it as `host`.
fn authority_as_host<B>(req: &mut Request<B>) {
    if req.headers().contains_key(axum::http::header::HOST) {
        return;
    }
    let host = req.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok());
    if let Some(host) = host {
        req.headers_mut().insert(axum::http::header::HOST, host);
    }
}

/// Serve `app` on `listener` until `shutdown`, then let calls in progress finish (connections with
/// none are closed at once).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnectionLimits,
    registry: Arc<Registry>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = Arc::new(limits);
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // Header and idle timeouts are the watchdog's (below): hyper's own header timer would also
    // cut idle keep-alive connections at the header timeout.
    builder.http1().header_read_timeout(None).keep_alive(true);
    builder.http2().max_concurrent_streams(128);
    let builder = Arc::new(builder);
    let (closing, closing_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let Some(admitted) = registry.admit() else {
                        // Every connection has a call in progress: refuse this one.
                        drop(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(
                        stream,
                        remote,
                        app.clone(),
                        builder.clone(),
                        limits.clone(),
                        admitted,
                        closing_rx.clone(),
                    ));
                }
                Err(e) => {
                    // Out of file descriptors (or another transient accept error): make room by
                    // closing an idle connection, and retry shortly rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    registry.evict_one_idle();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    let _ = closing.send(true);
    while connections.join_next().await.is_some() {}
}

impl Registry {
    /// Close the oldest connection with no call in progress, if any.
    fn evict_one_idle(&self) {
        let mut open = self.lock();
        let idle = open.conns.iter().find(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0).map(|(id, _)| *id);
        if let Some(evicted) = idle.and_then(|id| open.conns.remove(&id)) {
            evicted.evict.notify_one();
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    app: Router,
    builder: Arc<hyper_util::server::conn::auto::Builder<TokioExecutor>>,
    limits: Arc<ConnectionLimits>,
    admitted: Admitted,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    let state = admitted.state.clone();
    let registry = admitted.registry.clone();
    let io = TokioIo::new(Tracked { inner: stream, state: state.clone(), registry: registry.clone() });
    let service = hyper::service::service_fn({
        let (state, registry) = (state.clone(), registry.clone());
        move |mut req: Request<Incoming>| {
            let in_flight = InFlight::start(&state, &registry);
            req.extensions_mut().insert(ConnectInfo(remote));
            authority_as_host(&mut req);
            let mut app = app.clone();
            async move {
                let response = tower_service::Service::call(&mut app, req).await;
                drop(in_flight);
                response
            }
        }
    });
    let conn = builder.serve_connection(io, service);
    let mut conn = pin!(conn);
    let mut draining = false;
    loop {
        let deadline = state.deadline(&registry, &limits);
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = state.evict.notified() => break,
            _ = state.wake.notified() => {}
            _ = closing.changed(), if !draining => {
                draining = true;
                if state.in_flight.load(Ordering::Acquire) == 0 {
                    break;
                }
                conn.as_mut().graceful_shutdown();
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                if state.deadline(&registry, &limits).is_some_and(|d| d <= Instant::now()) {
                    break;
                }
            }
        }
    }
    // Dropping the connection closes the socket; `admitted` gives back its place.
    drop(admitted);
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_limits_by_protocol() {
        let mut h = HeaderMap::new();
        assert_eq!(body_limit(&h), MAX_BODY_BYTES);
        h.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00",
            ),
        );
        assert_eq!(body_limit(&h), MAX_IAM_QUERY_BODY_BYTES);
        h.insert("x-amz-target", HeaderValue::from_static("TrentService.Encrypt"));
        assert_eq!(body_limit(&h), MAX_BODY_BYTES);
        let mut sts = HeaderMap::new();
        sts.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00",
            ),
        );
        assert_eq!(body_limit(&sts), MAX_BODY_BYTES);
    }

    #[test]
    fn the_cap_leaves_room_under_the_open_file_limit() {
        let limits = ConnectionLimits { max_connections: usize::MAX, ..ConnectionLimits::default() };
        let max = limits.effective_max_connections();
        if let Some(files) = open_file_limit() {
            assert!(max < files, "{max} connections under a limit of {files} files");
        }
        let small = ConnectionLimits { max_connections: 3, ..ConnectionLimits::default() };
        assert_eq!(small.effective_max_connections(), 3);
    }

    #[test]
    fn http2_authority_becomes_host() {
        let mut req = Request::builder().uri("http://rampart.example:4566/").body(()).unwrap();
        authority_as_host(&mut req);
        assert_eq!(req.headers()["host"], "rampart.example:4566");
        let mut req = Request::builder().uri("http://other/").header("host", "kept").body(()).unwrap();
        authority_as_host(&mut req);
        assert_eq!(req.headers()["host"], "kept");
    }
}
