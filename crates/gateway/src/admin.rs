//! The admin listener: Prometheus /metrics, /sampled-requests (GetSampledRequests' shape),
//! /shield/attacks, /healthz, and POST /reload.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::observe::LATENCY_BOUNDS_MS;
use crate::waf::rate::now_ms;
use crate::State;

pub async fn serve(state: Arc<State>, listener: TcpListener, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
            _ = shutdown.changed() => break,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, req)) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

fn reply(status: StatusCode, ctype: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

fn query_param(q: &str, name: &str) -> Option<String> {
    crate::waf::request::split_pairs(q.as_bytes(), b'&')
        .into_iter()
        .find(|(k, _)| k == name.as_bytes())
        .map(|(_, v)| String::from_utf8_lossy(&crate::waf::transform::url_decode(&v, false)).into_owned())
}

fn route(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let q = req.uri().query().unwrap_or("");
    match (req.method().as_str(), req.uri().path()) {
        ("GET", "/metrics") => reply(StatusCode::OK, "text/plain; version=0.0.4", metrics(state)),
        ("GET", "/healthz") => {
            let up = state.upstream_healthy.load(Ordering::Relaxed);
            let body =
                serde_json::json!({"status": if up { "ok" } else { "upstream_unhealthy" }, "upstream_healthy": up});
            reply(
                if up { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE },
                "application/json",
                body.to_string(),
            )
        }
        ("GET", "/shield/attacks") => {
            let body = serde_json::json!({
                "UnderAttack": state.mitigator.under_attack(),
                "BaselineRps": state.mitigator.baseline(),
                "AttackEvents": state.mitigator.events(),
            });
            reply(StatusCode::OK, "application/json", body.to_string())
        }
        ("GET", "/sampled-requests") => {
            let Some(metric) = query_param(q, "metric") else {
                let names = state.sampler.metrics();
                return reply(
                    StatusCode::OK,
                    "application/json",
                    serde_json::json!({"MetricNames": names}).to_string(),
                );
            };
            let now = now_ms();
            let start = query_param(q, "start")
                .and_then(|s| s.parse::<f64>().ok())
                .map_or(now.saturating_sub(3 * 3600 * 1000), |s| (s * 1000.0) as u64);
            let end = query_param(q, "end").and_then(|s| s.parse::<f64>().ok()).map_or(now, |s| (s * 1000.0) as u64);
            let max = query_param(q, "max").and_then(|s| s.parse::<usize>().ok()).unwrap_or(100).min(500);
            reply(StatusCode::OK, "application/json", state.sampler.get(&metric, start, end, max).to_string())
        }
        ("POST", "/reload") => match state.reload() {
            Ok(()) => reply(StatusCode::OK, "application/json", "{\"reloaded\":true}".into()),
            Err(e) => reply(
                StatusCode::BAD_REQUEST,
                "application/json",
                serde_json::json!({"error": e.to_string()}).to_string(),
            ),
        },
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn metrics(state: &State) -> String {
    let mut o = String::with_capacity(4096);
    let s = &state.stats;
    let c = |o: &mut String, name: &str, help: &str, v: u64| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    };
    c(&mut o, "rampart_gateway_requests_total", "Requests received.", s.requests.load(Ordering::Relaxed));
    c(&mut o, "rampart_gateway_allowed_total", "Requests forwarded upstream.", s.allowed.load(Ordering::Relaxed));
    c(
        &mut o,
        "rampart_gateway_blocked_total",
        "Requests answered by the WAF (block, CAPTCHA, challenge).",
        s.blocked.load(Ordering::Relaxed),
    );
    c(
        &mut o,
        "rampart_shield_mitigated_total",
        "Requests answered 429 by automatic mitigation.",
        s.shield_mitigated.load(Ordering::Relaxed),
    );
    c(&mut o, "rampart_shield_too_large_total", "Requests over the size limit.", s.too_large.load(Ordering::Relaxed));
    c(
        &mut o,
        "rampart_shield_body_timeouts_total",
        "Bodies too slow or late.",
        s.body_timeouts.load(Ordering::Relaxed),
    );
    let cs = &state.registry.stats;
    c(
        &mut o,
        "rampart_shield_connections_accepted_total",
        "Connections accepted.",
        cs.accepted.load(Ordering::Relaxed),
    );
    c(
        &mut o,
        "rampart_shield_connections_rejected_per_ip_total",
        "Connections refused: per-IP cap.",
        cs.rejected_per_ip.load(Ordering::Relaxed),
    );
    c(
        &mut o,
        "rampart_shield_connections_rejected_global_total",
        "Connections refused: global cap.",
        cs.rejected_global.load(Ordering::Relaxed),
    );
    c(
        &mut o,
        "rampart_shield_connections_preempted_total",
        "Slow or idle connections closed to admit new ones.",
        cs.preempted.load(Ordering::Relaxed),
    );
    c(
        &mut o,
        "rampart_shield_read_timeouts_total",
        "Connections closed for slow or late request heads / idling.",
        cs.timed_out.load(Ordering::Relaxed),
    );
    c(
        &mut o,
        "rampart_gateway_upstream_errors_total",
        "Upstream connection failures (502).",
        s.upstream_errors.load(Ordering::Relaxed),
    );
    c(
        &mut o,
        "rampart_gateway_upstream_timeouts_total",
        "Upstream timeouts (504).",
        s.upstream_timeouts.load(Ordering::Relaxed),
    );
    c(
        &mut o,
        "rampart_waf_log_dropped_total",
        "WAF log records dropped (writer behind).",
        s.logs_dropped.load(Ordering::Relaxed),
    );
    c(&mut o, "rampart_waf_reloads_total", "Web ACL reloads.", s.reloads.load(Ordering::Relaxed));
    c(
        &mut o,
        "rampart_waf_reload_errors_total",
        "Web ACL reloads refused (invalid file; the old ACL stays).",
        s.reload_errors.load(Ordering::Relaxed),
    );
    let _ = writeln!(o, "# HELP rampart_shield_open_connections Open client connections.\n# TYPE rampart_shield_open_connections gauge\nrampart_shield_open_connections {}", state.registry.open_connections());
    let _ = writeln!(o, "# HELP rampart_shield_under_attack 1 during an attack event.\n# TYPE rampart_shield_under_attack gauge\nrampart_shield_under_attack {}", u8::from(state.mitigator.under_attack()));
    let _ = writeln!(o, "# HELP rampart_gateway_upstream_healthy 1 when the upstream accepts connections.\n# TYPE rampart_gateway_upstream_healthy gauge\nrampart_gateway_upstream_healthy {}", u8::from(state.upstream_healthy.load(Ordering::Relaxed)));
    let _ = writeln!(o, "# HELP rampart_gateway_request_duration_seconds Time in the gateway (WAF + upstream).\n# TYPE rampart_gateway_request_duration_seconds histogram");
    let mut cum = 0;
    for (i, b) in LATENCY_BOUNDS_MS.iter().enumerate() {
        cum += s.latency_buckets[i].load(Ordering::Relaxed);
        let _ = writeln!(o, "rampart_gateway_request_duration_seconds_bucket{{le=\"{}\"}} {cum}", b / 1000.0);
    }
    cum += s.latency_buckets[LATENCY_BOUNDS_MS.len()].load(Ordering::Relaxed);
    let _ = writeln!(o, "rampart_gateway_request_duration_seconds_bucket{{le=\"+Inf\"}} {cum}");
    let _ = writeln!(
        o,
        "rampart_gateway_request_duration_seconds_sum {}",
        s.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(o, "rampart_gateway_request_duration_seconds_count {cum}");
    let _ = writeln!(o, "# HELP rampart_waf_rule_requests_total Requests per rule and action (rule: <web ACL or rule group>#<rule>).\n# TYPE rampart_waf_rule_requests_total counter");
    for (rule, v) in state.waf_metrics.snapshot() {
        for (action, n) in ["ALLOW", "BLOCK", "COUNT", "CAPTCHA", "CHALLENGE"].iter().zip(v) {
            if n > 0 {
                let _ =
                    writeln!(o, "rampart_waf_rule_requests_total{{rule=\"{}\",action=\"{action}\"}} {n}", esc(&rule));
            }
        }
    }
    o
}
