//! The reverse proxy: accepts client connections (HTTP/1.1 and HTTP/2 via hyper), applies Shield's
//! connection and request limits, buffers each request whole, evaluates the web ACL, and forwards
//! allowed requests to the upstream, streaming the response back.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::shield::conn::{ActiveGuard, Admission, ConnGuard, ShieldedIo};
use crate::shield::ddos::Decision;
use crate::token;
use crate::waf::compile::{Action, CustomResp};
use crate::waf::eval::{evaluate, lookup_country, EvalEnv, Verdict};
use crate::waf::WafRequest;
use crate::{observe, State};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type RespBody = GuardedBody;

/// A response body that keeps its connection marked busy until hyper is done with it.
pub struct GuardedBody {
    inner: UnsyncBoxBody<Bytes, BoxError>,
    _guard: Option<ActiveGuard>,
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn full(b: impl Into<Bytes>) -> UnsyncBoxBody<Bytes, BoxError> {
    Full::new(b.into()).map_err(|e: Infallible| -> BoxError { match e {} }).boxed_unsync()
}

fn simple(status: StatusCode, ctype: &str, body: impl Into<Bytes>, guard: Option<ActiveGuard>) -> Response<RespBody> {
    let mut r = Response::new(GuardedBody { inner: full(body), _guard: guard });
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(ctype) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "proxy-authenticate",
];

fn is_hop_by_hop(name: &str, conn_tokens: &[String]) -> bool {
    HOP_BY_HOP.contains(&name) || conn_tokens.iter().any(|t| t == name)
}

/// Accepts connections until `shutdown` fires; each is served on its own task.
pub async fn accept_loop(
    state: Arc<State>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    graceful: Arc<hyper_util::server::graceful::GracefulShutdown>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        match state.registry.admit(peer.ip()) {
            Admission::Admitted(guard) => {
                let state = state.clone();
                let tls = tls.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    match tls {
                        None => serve_connection(state, tcp, peer, guard, watcher).await,
                        Some(acc) => {
                            let hs = tokio::time::timeout(state.cfg.shield.header_timeout, acc.accept(tcp)).await;
                            if let Ok(Ok(s)) = hs {
                                serve_connection(state, s, peer, guard, watcher).await;
                            }
                        }
                    }
                });
            }
            Admission::RejectedPerIp | Admission::RejectedGlobal => {
                // A clean 503 without reading the request; the socket closes right after.
                tokio::spawn(async move {
                    let mut tcp = tcp;
                    let msg = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nretry-after: 5\r\nconnection: close\r\n\r\n";
                    let _ = tokio::time::timeout(Duration::from_secs(2), tcp.write_all(msg)).await;
                    let _ = tcp.shutdown().await;
                });
            }
        }
    }
}

async fn serve_connection<T>(
    state: Arc<State>,
    io: T,
    peer: SocketAddr,
    guard: ConnGuard,
    watcher: hyper_util::server::graceful::Watcher,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn_state = guard.state.clone();
    let io = TokioIo::new(ShieldedIo::new(io, &guard));
    let svc_state = state.clone();
    let svc_conn = conn_state.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let state = svc_state.clone();
        let active = svc_conn.begin_request();
        async move { Ok::<_, Infallible>(handle(state, peer.ip(), req, active).await) }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let shield = &state.cfg.shield;
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(shield.header_timeout)
        .max_buf_size(shield.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(shield.max_header_bytes as u32)
        .max_concurrent_streams(128)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let conn = builder.serve_connection(io, service);
    let conn = watcher.watch(conn.into_owned());
    tokio::select! {
        r = conn => {
            if let Err(e) = r {
                tracing::debug!(error = %e, %peer, "connection closed with error");
            }
        }
        _ = conn_state.cancel.notified() => {
            tracing::debug!(%peer, "connection preempted by Shield");
        }
    }
    drop(guard);
}

enum BodyError {
    TooLarge,
    Timeout,
    Broken,
}

/// Reads the whole body: within the size limit, the body timeout, and the minimum data rate, all
/// counted on the gateway clock from `start_ms` (when the request head had arrived).
async fn read_body(state: &State, body: Incoming, start_ms: u64) -> Result<Bytes, BodyError> {
    let cfg = &state.cfg.shield;
    let mut buf = BytesMut::new();
    let mut body = body;
    loop {
        let by_rate = match ((buf.len() as u64 + 1) * 1000).checked_div(cfg.min_rate_bytes_per_sec) {
            Some(ms) => Duration::from_millis(ms.max(cfg.rate_grace.as_millis() as u64)),
            None => cfg.body_timeout,
        };
        let deadline = start_ms + cfg.body_timeout.min(by_rate).as_millis() as u64;
        let next = tokio::select! {
            biased;
            f = body.frame() => Some(f),
            _ = state.clock.sleep_until(deadline) => None,
        };
        match next {
            None => return Err(BodyError::Timeout),
            Some(None) => break,
            Some(Some(Err(_))) => return Err(BodyError::Broken),
            Some(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > cfg.max_body_bytes {
                        return Err(BodyError::TooLarge);
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
    Ok(buf.freeze())
}

fn version_str(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

pub async fn handle(state: Arc<State>, ip: IpAddr, req: Request<Incoming>, active: ActiveGuard) -> Response<RespBody> {
    let started = Instant::now();
    state.stats.requests.fetch_add(1, Ordering::Relaxed);
    let resp = handle_inner(&state, ip, req, active).await;
    state.stats.observe_latency(started.elapsed().as_micros() as u64);
    resp
}

async fn handle_inner(
    state: &Arc<State>,
    ip: IpAddr,
    req: Request<Incoming>,
    active: ActiveGuard,
) -> Response<RespBody> {
    if let Decision::Mitigate = state.mitigator.observe(ip) {
        state.stats.shield_mitigated.fetch_add(1, Ordering::Relaxed);
        let mut r = simple(StatusCode::TOO_MANY_REQUESTS, "text/plain", "Too Many Requests\n", Some(active));
        r.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from_static("10"));
        return r;
    }
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.cfg.shield.max_body_bytes as u64) {
        state.stats.too_large.fetch_add(1, Ordering::Relaxed);
        let mut r = simple(StatusCode::PAYLOAD_TOO_LARGE, "text/plain", "Payload Too Large\n", Some(active));
        r.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    let body = match read_body(state, body, active.start_ms()).await {
        Ok(b) => b,
        Err(e) => {
            let (code, msg) = match e {
                BodyError::TooLarge => {
                    state.stats.too_large.fetch_add(1, Ordering::Relaxed);
                    (StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large\n")
                }
                BodyError::Timeout => {
                    state.stats.body_timeouts.fetch_add(1, Ordering::Relaxed);
                    (StatusCode::REQUEST_TIMEOUT, "Request Timeout\n")
                }
                BodyError::Broken => (StatusCode::BAD_REQUEST, "Bad Request\n"),
            };
            let mut r = simple(code, "text/plain", msg, Some(active));
            r.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    };

    let path = parts.uri.path().to_string();
    if parts.method == http::Method::POST {
        if path == token::CAPTCHA_PATH {
            return captcha_answer(state, ip, &body, active);
        }
        if path == token::CHALLENGE_PATH {
            let prior = cookie_value(&parts.headers, token::COOKIE);
            return challenge_answer(state, ip, &body, prior.as_deref(), active);
        }
    }
    let query = parts.uri.query().unwrap_or("").to_string();
    let mut headers: Vec<(String, Vec<u8>)> = Vec::with_capacity(parts.headers.len() + 1);
    if parts.version == http::Version::HTTP_2 && !parts.headers.contains_key(http::header::HOST) {
        if let Some(a) = parts.uri.authority() {
            headers.push(("host".to_string(), a.as_str().as_bytes().to_vec()));
        }
    }
    for (k, v) in &parts.headers {
        headers.push((k.as_str().to_string(), v.as_bytes().to_vec()));
    }
    let wreq =
        WafRequest::new(ip, parts.method.as_str().to_string(), path, query, version_str(parts.version), headers, body);

    let acl = state.acl();
    let verdict = match &acl {
        Some(acl) => {
            let now_s = state.clock.now_s();
            let token_age = wreq.cookie(token::COOKIE).and_then(|t| state.token_key.verify(t, ip, now_s));
            let env = EvalEnv { rates: &state.rates, geo: state.geo.as_ref(), token_age };
            Some(evaluate(acl, &wreq, &env))
        }
        None => None,
    };

    let resp = match verdict.as_ref().map(|v| &v.action) {
        None | Some(Action::Allow(_)) => {
            state.stats.allowed.fetch_add(1, Ordering::Relaxed);
            forward(state, &parts, &wreq, verdict.as_ref(), active).await
        }
        Some(Action::Block(custom)) => {
            state.stats.blocked.fetch_add(1, Ordering::Relaxed);
            block_response(custom.as_deref(), active)
        }
        Some(Action::Captcha(_)) if !wants_html(&wreq) => {
            state.stats.blocked.fetch_add(1, Ordering::Relaxed);
            interstitial_status_only(StatusCode::METHOD_NOT_ALLOWED, "captcha", active)
        }
        Some(Action::Challenge(_)) if !wants_html(&wreq) => {
            state.stats.blocked.fetch_add(1, Ordering::Relaxed);
            interstitial_status_only(StatusCode::ACCEPTED, "challenge", active)
        }
        Some(Action::Captcha(_)) => {
            state.stats.blocked.fetch_add(1, Ordering::Relaxed);
            captcha_response(
                state,
                ip,
                StatusCode::METHOD_NOT_ALLOWED,
                &wreq.uri(),
                "To continue, type the digits in the picture.",
                active,
            )
        }
        Some(Action::Challenge(_)) => {
            state.stats.blocked.fetch_add(1, Ordering::Relaxed);
            let seed = state.token_key.challenge_seed(ip, state.clock.now_s(), state.cfg.challenge_difficulty);
            let mut r = simple(
                StatusCode::ACCEPTED,
                "text/html; charset=utf-8",
                token::challenge_page(&seed, state.cfg.challenge_difficulty),
                Some(active),
            );
            r.headers_mut().insert(WAF_ACTION, HeaderValue::from_static("challenge"));
            r.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Some(Action::Count(_)) => {
            // Count is never terminating; treat defensively as allow.
            forward(state, &parts, &wreq, verdict.as_ref(), active).await
        }
    };
    if let (Some(acl), Some(v)) = (&acl, &verdict) {
        record(state, acl, &wreq, v, resp.status().as_u16());
    }
    resp
}

fn record(state: &State, acl: &crate::waf::WebAcl, wreq: &WafRequest, v: &Verdict, code: u16) {
    let country = if state.geo.is_some() { lookup_country(state.geo.as_ref(), wreq.client_ip) } else { None };
    if let Some((metric, within)) = &v.sample {
        let n = state.sample_seq.fetch_add(1, Ordering::Relaxed);
        if v.blocked() || n.is_multiple_of(8) {
            state.sampler.record(metric, observe::sample_json(wreq, country.as_deref(), v, within.as_deref(), code));
        }
    }
    if let Some(sink) = &state.log {
        let id = format!("{:016x}", rand::random::<u64>());
        let rec =
            observe::log_record(&acl.arn, v, observe::http_request_json(wreq, country.as_deref(), &id), Some(code));
        sink.send(rec, &state.stats);
    }
}

fn block_response(custom: Option<&CustomResp>, active: ActiveGuard) -> Response<RespBody> {
    let Some(c) = custom else {
        return simple(
            StatusCode::FORBIDDEN,
            "text/html; charset=utf-8",
            "<html><head><title>403 Forbidden</title></head><body><h1>403 Forbidden</h1></body></html>\n",
            Some(active),
        );
    };
    let status = StatusCode::from_u16(c.status).unwrap_or(StatusCode::FORBIDDEN);
    let (ctype, body) = match &c.body {
        Some((t, b)) => (t.as_str(), b.clone()),
        None => ("text/plain", String::new()),
    };
    let mut r = simple(status, ctype, body, Some(active));
    for (k, v) in &c.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            r.headers_mut().append(n, v);
        }
    }
    r
}

const WAF_ACTION: HeaderName = HeaderName::from_static("x-amzn-waf-action");

/// AWS sends the CAPTCHA / Challenge page only to requests whose `Accept` names `text/html`.
fn wants_html(w: &WafRequest) -> bool {
    w.header_values("accept").any(|v| v.windows(9).any(|x| x.eq_ignore_ascii_case(b"text/html")))
}

/// CAPTCHA / Challenge for a client that did not ask for HTML: the status and the action header only.
fn interstitial_status_only(status: StatusCode, action: &'static str, active: ActiveGuard) -> Response<RespBody> {
    let mut r = simple(status, "text/plain", "", Some(active));
    r.headers_mut().insert(WAF_ACTION, HeaderValue::from_static(action));
    r.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn set_token_cookie(r: &mut Response<RespBody>, tok: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("{}={tok}; Path=/; HttpOnly; SameSite=Lax", token::COOKIE)) {
        r.headers_mut().insert(http::header::SET_COOKIE, v);
    }
}

/// The value of cookie `name` in the request's Cookie headers.
fn cookie_value(h: &http::HeaderMap, name: &str) -> Option<Vec<u8>> {
    h.get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .filter_map(|kv| {
            let kv = kv.trim_ascii();
            let eq = kv.iter().position(|b| *b == b'=')?;
            let (k, v) = kv.split_at(eq);
            (k == name.as_bytes()).then(|| v.get(1..).unwrap_or_default().to_vec())
        })
        .next()
}

/// A CAPTCHA interstitial with a fresh puzzle (`x-amzn-waf-action: captcha`).
fn captcha_response(
    state: &State,
    ip: IpAddr,
    status: StatusCode,
    return_to: &str,
    message: &str,
    active: ActiveGuard,
) -> Response<RespBody> {
    let page = match state.token_key.captcha_puzzle(ip, state.clock.now_s()) {
        Some(p) => token::captcha_page(&p, return_to, message),
        None => "<!doctype html><p>Verification is unavailable; try again.</p>".to_string(),
    };
    let mut r = simple(status, "text/html; charset=utf-8", page, Some(active));
    r.headers_mut().insert(WAF_ACTION, HeaderValue::from_static("captcha"));
    r.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn captcha_answer(state: &State, ip: IpAddr, body: &[u8], active: ActiveGuard) -> Response<RespBody> {
    match state.token_key.check_captcha(ip, body, state.clock.now_s()) {
        Ok((tok, ret)) => {
            let mut r = simple(StatusCode::SEE_OTHER, "text/plain", "", Some(active));
            if let Ok(v) = HeaderValue::from_str(&ret) {
                r.headers_mut().insert(http::header::LOCATION, v);
            }
            set_token_cookie(&mut r, &tok);
            r
        }
        Err(why) => {
            tracing::debug!(?why, %ip, "CAPTCHA answer refused");
            let ret = token::return_path(body);
            captcha_response(state, ip, StatusCode::FORBIDDEN, &ret, "That was not it. Try this one.", active)
        }
    }
}

fn challenge_answer(
    state: &State,
    ip: IpAddr,
    body: &[u8],
    prior: Option<&[u8]>,
    active: ActiveGuard,
) -> Response<RespBody> {
    match state.token_key.check_challenge(ip, body, state.clock.now_s(), prior) {
        Ok(tok) => {
            let mut r = simple(StatusCode::OK, "text/plain", "ok\n", Some(active));
            set_token_cookie(&mut r, &tok);
            r.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(why) => {
            tracing::debug!(?why, %ip, "challenge answer refused");
            simple(StatusCode::FORBIDDEN, "text/plain", "Challenge failed\n", Some(active))
        }
    }
}

async fn forward(
    state: &Arc<State>,
    parts: &http::request::Parts,
    wreq: &WafRequest,
    verdict: Option<&Verdict>,
    active: ActiveGuard,
) -> Response<RespBody> {
    let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let up = &state.cfg.upstream;
    let uri = format!("http://{}{}", up.authority().map(|a| a.as_str()).unwrap_or("127.0.0.1"), pq);
    let Ok(uri) = uri.parse::<http::Uri>() else {
        return simple(StatusCode::BAD_REQUEST, "text/plain", "Bad Request\n", Some(active));
    };
    let mut b = Request::builder().method(parts.method.clone()).uri(uri).version(http::Version::HTTP_11);
    let conn_tokens: Vec<String> = parts
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .collect();
    let mut xff: Option<String> = None;
    if let Some(h) = b.headers_mut() {
        for (k, v) in &parts.headers {
            let name = k.as_str();
            if is_hop_by_hop(name, &conn_tokens) || name == "content-length" || name == "x-forwarded-for" {
                continue;
            }
            h.append(k.clone(), v.clone());
        }
        if !h.contains_key(http::header::HOST) {
            if let Some(a) = parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
                h.insert(http::header::HOST, a);
            }
        }
        let prior: Vec<&str> =
            parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        let value = if prior.is_empty() {
            wreq.client_ip.to_string()
        } else {
            format!("{}, {}", prior.join(", "), wreq.client_ip)
        };
        xff = Some(value);
        if let Some(v) = xff.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert(HeaderName::from_static("x-forwarded-for"), v);
        }
        let proto = if state.cfg.tls_cert.is_some() { "https" } else { "http" };
        h.insert(HeaderName::from_static("x-forwarded-proto"), HeaderValue::from_static(proto));
        if let Some(v) = verdict {
            for (k, val) in &v.insert_headers {
                if let (Ok(n), Ok(val)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(val)) {
                    h.insert(n, val);
                }
            }
        }
    }
    let _ = xff;
    let Ok(upreq) = b.body(Full::new(wreq.body.clone())) else {
        return simple(StatusCode::BAD_REQUEST, "text/plain", "Bad Request\n", Some(active));
    };
    let res = tokio::time::timeout(state.cfg.upstream_timeout, state.client.request(upreq)).await;
    let res = match res {
        Err(_) => {
            state.stats.upstream_timeouts.fetch_add(1, Ordering::Relaxed);
            return simple(StatusCode::GATEWAY_TIMEOUT, "text/plain", "Gateway Timeout\n", Some(active));
        }
        Ok(Err(e)) => {
            state.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(error = %e, "upstream request failed");
            return simple(StatusCode::BAD_GATEWAY, "text/plain", "Bad Gateway\n", Some(active));
        }
        Ok(Ok(r)) => r,
    };
    let (mut rparts, rbody) = res.into_parts();
    let conn_tokens: Vec<String> = rparts
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .collect();
    let drop_names: Vec<HeaderName> =
        rparts.headers.keys().filter(|k| is_hop_by_hop(k.as_str(), &conn_tokens)).cloned().collect();
    for k in drop_names {
        rparts.headers.remove(k);
    }
    rparts.version = parts.version;
    let inner = rbody.map_err(|e| -> BoxError { Box::new(e) }).boxed_unsync();
    Response::from_parts(rparts, GuardedBody { inner, _guard: Some(active) })
}
