//! Observability: WAF log records in AWS WAF's JSON format, sampled requests (as GetSampledRequests
//! returns them), and gateway counters for Prometheus.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};

use serde_json::{json, Value};

use crate::waf::eval::Verdict;
use crate::waf::rate::now_ms;
use crate::waf::WafRequest;

#[derive(Debug, Default)]
pub struct GatewayStats {
    pub requests: AtomicU64,
    pub allowed: AtomicU64,
    pub blocked: AtomicU64,
    pub shield_mitigated: AtomicU64,
    pub too_large: AtomicU64,
    pub body_timeouts: AtomicU64,
    pub upstream_errors: AtomicU64,
    pub upstream_timeouts: AtomicU64,
    pub logs_dropped: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_errors: AtomicU64,
    /// Request latency through the gateway (WAF + upstream), histogram buckets in ms.
    pub latency_buckets: [AtomicU64; LATENCY_BOUNDS_MS.len() + 1],
    pub latency_sum_us: AtomicU64,
}

pub const LATENCY_BOUNDS_MS: [f64; 10] = [0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0];

impl GatewayStats {
    pub fn observe_latency(&self, micros: u64) {
        let ms = micros as f64 / 1000.0;
        let i = LATENCY_BOUNDS_MS.iter().position(|b| ms <= *b).unwrap_or(LATENCY_BOUNDS_MS.len());
        self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(micros, Ordering::Relaxed);
    }
}

/// The request as AWS WAF logs it.
pub fn http_request_json(req: &WafRequest, country: Option<&str>, request_id: &str) -> Value {
    let headers: Vec<Value> = req
        .headers
        .iter()
        .map(|(k, v)| {
            // Never log credentials in full.
            let val = if matches!(k.as_str(), "authorization" | "proxy-authorization") {
                "<redacted>".to_string()
            } else {
                String::from_utf8_lossy(v).into_owned()
            };
            json!({"name": k, "value": val})
        })
        .collect();
    json!({
        "clientIp": req.client_ip.to_string(),
        "country": country.unwrap_or("-"),
        "headers": headers,
        "uri": req.path,
        "args": req.query,
        "httpVersion": req.http_version,
        "httpMethod": req.method,
        "requestId": request_id,
    })
}

/// One WAF log record (AWS WAF log format, formatVersion 1).
pub fn log_record(acl_arn: &str, v: &Verdict, http_request: Value, response_code: Option<u16>) -> Value {
    let labels: Vec<Value> = v.labels.iter().map(|l| json!({"name": l})).collect();
    let inserted: Option<Vec<Value>> = if v.insert_headers.is_empty() {
        None
    } else {
        Some(v.insert_headers.iter().map(|(k, val)| json!({"name": k, "value": val})).collect())
    };
    json!({
        "timestamp": now_ms(),
        "formatVersion": 1,
        "webaclId": acl_arn,
        "terminatingRuleId": v.terminating_rule_id,
        "terminatingRuleType": v.terminating_rule_type,
        "action": v.action.name(),
        "terminatingRuleMatchDetails": v.terminating_details,
        "httpSourceName": "ALB",
        "httpSourceId": "rampart-gateway",
        "ruleGroupList": v.rule_groups,
        "rateBasedRuleList": v.rate_based,
        "nonTerminatingMatchingRules": v.non_terminating,
        "requestHeadersInserted": inserted,
        "responseCodeSent": response_code,
        "httpRequest": http_request,
        "labels": labels,
    })
}

/// Writes log records on a thread of its own; drops (and counts) records when it cannot keep up.
pub struct LogSink {
    tx: mpsc::SyncSender<Value>,
}

impl LogSink {
    pub fn open(path: &Path) -> std::io::Result<LogSink> {
        let mut out: Box<dyn Write + Send> = if path.as_os_str() == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?)
        };
        let (tx, rx) = mpsc::sync_channel::<Value>(16_384);
        std::thread::Builder::new().name("waf-log".into()).spawn(move || {
            let mut buf = Vec::with_capacity(64 * 1024);
            while let Ok(first) = rx.recv() {
                buf.clear();
                let mut rec = Some(first);
                while let Some(r) = rec.take() {
                    if serde_json::to_writer(&mut buf, &r).is_ok() {
                        buf.push(b'\n');
                    }
                    if buf.len() < 256 * 1024 {
                        rec = rx.try_recv().ok();
                    }
                }
                if out.write_all(&buf).and_then(|_| out.flush()).is_err() {
                    tracing::warn!("WAF log: write failed");
                }
            }
        })?;
        Ok(LogSink { tx })
    }

    pub fn send(&self, rec: Value, stats: &GatewayStats) {
        if self.tx.try_send(rec).is_err() {
            stats.logs_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sampled requests per metric name (the rule's or web ACL's VisibilityConfig.MetricName).
#[derive(Default)]
pub struct Sampler {
    inner: Mutex<HashMap<String, (u64, VecDeque<Value>)>>,
}

const SAMPLES_KEPT: usize = 500;

impl Sampler {
    pub fn record(&self, metric: &str, sample: Value) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let e = g.entry(metric.to_string()).or_default();
        e.0 += 1;
        if e.1.len() >= SAMPLES_KEPT {
            e.1.pop_front();
        }
        e.1.push_back(sample);
    }

    /// GetSampledRequests' output for one metric name over [start, end] (unix ms).
    pub fn get(&self, metric: &str, start: u64, end: u64, max: usize) -> Value {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (population, items): (u64, Vec<Value>) = match g.get(metric) {
            Some((n, q)) => (
                *n,
                q.iter()
                    .rev()
                    .filter(|s| {
                        s["Timestamp"]
                            .as_f64()
                            .is_some_and(|t| (t * 1000.0) as u64 >= start && (t * 1000.0) as u64 <= end)
                    })
                    .take(max)
                    .cloned()
                    .collect(),
            ),
            None => (0, Vec::new()),
        };
        json!({
            "SampledRequests": items,
            "PopulationSize": population,
            "TimeWindow": {"StartTime": start as f64 / 1000.0, "EndTime": end as f64 / 1000.0},
        })
    }

    pub fn metrics(&self) -> Vec<String> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }
}

/// One sampled request in GetSampledRequests' shape.
pub fn sample_json(
    req: &WafRequest,
    country: Option<&str>,
    v: &Verdict,
    rule_in_group: Option<&str>,
    code: u16,
) -> Value {
    let headers: Vec<Value> = req
        .headers
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "authorization" | "proxy-authorization" | "cookie"))
        .map(|(k, val)| json!({"Name": k, "Value": String::from_utf8_lossy(val)}))
        .collect();
    let mut s = json!({
        "Request": {
            "ClientIP": req.client_ip.to_string(),
            "Country": country.unwrap_or("-"),
            "URI": req.path,
            "Method": req.method,
            "HTTPVersion": req.http_version,
            "Headers": headers,
        },
        "Weight": 1,
        "Timestamp": now_ms() as f64 / 1000.0,
        "Action": v.action.name(),
        "ResponseCodeSent": code,
        "Labels": v.labels.iter().map(|l| json!({"Name": l})).collect::<Vec<_>>(),
    });
    if let Some(r) = rule_in_group {
        s["RuleNameWithinRuleGroup"] = json!(r);
    }
    if !v.insert_headers.is_empty() {
        s["RequestHeadersInserted"] =
            v.insert_headers.iter().map(|(k, val)| json!({"Name": k, "Value": val})).collect();
    }
    s
}
