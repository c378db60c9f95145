//! `GET /metrics`: the server's counters in the Prometheus / OpenMetrics text format.
//!
//! Built on `prometheus-client` (the Prometheus project's own Rust client): plain atomics, no
//! global registry and no HTTP server of its own; its dependencies are `dtoa`, `itoa`,
//! `parking_lot` and a derive macro. (`metrics` + `metrics-exporter-prometheus` would add a global
//! recorder facade and `metrics-util`'s storage layer with its own dependencies for the same text,
//! and label lookups through the facade on every call.)
//!
//! Series (see docs/operations.md#metrics):
//! * `rampart_calls_total{service,operation,status}`
//! * `rampart_call_duration_seconds{service,operation}` (histogram; from the request's arrival in
//!   the pipeline to its answer being ready, before the audit commit is awaited)
//! * `rampart_authorization_decisions_total{service,decision}`: `allow`, `explicit_deny`,
//!   `implicit_deny`
//! * `rampart_audit_commit_duration_seconds` (histogram: from a record's submission, with the
//!   call's unit of work, until its commit is durable and acknowledged to the call)
//! * `rampart_audit_dropped_total`
//! * `rampart_requests_refused_total{reason}`: refused before authentication
//! * `rampart_store_size_bytes{backend}` (gauge, read at scrape time), `process_resident_memory_bytes`
//!
//! Cardinality is bounded: `service` is one of the pipeline's services (or `unknown`), `operation`
//! one that service implements (anything else is `unknown`), `status` an HTTP status the pipeline
//! produced, `reason` a fixed set.
//!
//! The hot path ([`Metrics::observe_call`]) allocates nothing once a (service, operation, status)
//! has been seen: handles to its counters and histogram are cached per service and operation and
//! found by `&str` lookups under read locks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use rampart_protocol::AwsError;
use rampart_service::Service;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The label value for a service or operation the server does not offer.
const UNKNOWN: &str = "unknown";

/// Call latency buckets, seconds: 100 µs … 10 s.
const LATENCY_BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: &'static str,
    operation: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    service: &'static str,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    service: &'static str,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    backend: &'static str,
}

/// The authorizer's answer for a call (the first denial ends a call; all checks allowed = allow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

impl Decision {
    /// The decision an [`rampart_service::Authorizer::check`] result stands for; `None` when the
    /// check failed for another reason (a store error).
    pub fn of(result: &Result<(), AwsError>) -> Option<Decision> {
        match result {
            Ok(()) => Some(Decision::Allow),
            Err(e) if e.code == "AccessDenied" || e.code == "AccessDeniedException" => {
                // AWS's (and crates/iam's `access_denied`) wording for a Deny statement that matched.
                Some(if e.message.contains("with an explicit deny") {
                    Decision::ExplicitDeny
                } else {
                    Decision::ImplicitDeny
                })
            }
            Err(_) => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::ExplicitDeny => "explicit_deny",
            Decision::ImplicitDeny => "implicit_deny",
        }
    }
}

/// Why a request was refused before its caller was authenticated, from its AWS error; `None` for
/// errors that are not authentication failures.
pub fn refusal_reason(e: &AwsError) -> Option<&'static str> {
    Some(match &*e.code {
        "MissingAuthenticationToken" | "MissingAuthenticationTokenException" => "missing_signature",
        "IncompleteSignature" | "IncompleteSignatureException" => "malformed_signature",
        "SignatureDoesNotMatch" | "InvalidSignatureException" => {
            if e.message.starts_with("Signature expired") || e.message.starts_with("Signature not yet current") {
                "clock_skew"
            } else {
                "bad_signature"
            }
        }
        "InvalidClientTokenId" | "UnrecognizedClientException" => "unknown_access_key",
        "ExpiredToken" | "ExpiredTokenException" => "expired_token",
        "UnrecognizedService" => "unknown_service",
        "RequestEntityTooLarge" => "body_too_large",
        _ => return None,
    })
}

/// The server's metrics: a cheap handle (one `Arc`) to clone into whatever reports them.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(None)
    }
}

struct Inner {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    latency: Family<OpLabels, Histogram, fn() -> Histogram>,
    decisions: Family<DecisionLabels, Counter>,
    refused: Family<ReasonLabels, Counter>,
    audit_commit: Histogram,
    audit_dropped: Counter,
    /// The audit log's count at the last scrape.
    audit_dropped_seen: AtomicU64,
    store_size: Family<BackendLabels, Gauge>,
    resident_memory: Gauge,
    /// Measured at scrape time ([`rampart_store::Store::size_bytes`]).
    store: Option<Arc<dyn rampart_store::Store>>,
    /// Handles per service signing name (`unknown` for requests no service took).
    services: RwLock<HashMap<&'static str, Arc<ServiceMetrics>>>,
}

/// One service's cached handles.
struct ServiceMetrics {
    name: &'static str,
    operations: RwLock<HashMap<Box<str>, Arc<OperationMetrics>>>,
    unknown: Arc<OperationMetrics>,
    /// Indexed as [`Decision`]: allow, explicit deny, implicit deny.
    decisions: [Counter; 3],
}

/// One operation's cached handles.
struct OperationMetrics {
    operation: Box<str>,
    latency: Histogram,
    /// Call counters by HTTP status (a handful per operation).
    calls: RwLock<Vec<(u16, Counter)>>,
}

impl Metrics {
    /// An empty registry; `store`'s size is measured at scrape time.
    pub fn new(store: Option<Arc<dyn rampart_store::Store>>) -> Metrics {
        let mut registry = Registry::default();
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "rampart_calls",
            "AWS API calls answered, by service, operation and HTTP status",
            calls.clone(),
        );
        let latency = Family::<OpLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "rampart_call_duration",
            "Time from a call's arrival in the pipeline to its answer (before the audit commit)",
            Unit::Seconds,
            latency.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "rampart_authorization_decisions",
            "Authorization decisions on calls: allow, explicit_deny, implicit_deny",
            decisions.clone(),
        );
        let refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "rampart_requests_refused",
            "Requests refused before authentication, by reason",
            refused.clone(),
        );
        let audit_commit = Histogram::new(LATENCY_BUCKETS);
        registry.register_with_unit(
            "rampart_audit_commit_duration",
            "Time from an audit record's submission until its commit is acknowledged to the call",
            Unit::Seconds,
            audit_commit.clone(),
        );
        let audit_dropped = Counter::default();
        registry.register(
            "rampart_audit_dropped",
            "Audit records deleted by retention: older than 90 days, or beyond the in-memory store's 200,000",
            audit_dropped.clone(),
        );
        let store_size = Family::<BackendLabels, Gauge>::default();
        registry.register_with_unit(
            "rampart_store_size",
            "Size of the store (SQLite: database and WAL files; PostgreSQL: Rampart's tables with indexes and TOAST)",
            Unit::Bytes,
            store_size.clone(),
        );
        let resident_memory = Gauge::default();
        registry.register_with_unit(
            "process_resident_memory",
            "Resident memory of the rampart process (holds an in-memory store)",
            Unit::Bytes,
            resident_memory.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                calls,
                latency,
                decisions,
                refused,
                audit_commit,
                audit_dropped,
                audit_dropped_seen: AtomicU64::new(0),
                store_size,
                resident_memory,
                store,
                services: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// Record one answered call: the pipeline's one hook, at the end of each call.
    /// `service` is `None` when no service took the request; `operation` is the decoded operation
    /// name (counted as `unknown` unless `service` implements it); `decision` is the authorizer's
    /// answer when authorization ran.
    pub fn observe_call(
        &self,
        service: Option<&dyn Service>,
        operation: Option<&str>,
        status: u16,
        latency: Duration,
        decision: Option<Decision>,
    ) {
        let service_metrics = self.service(service.map_or(UNKNOWN, |s| s.signing_name()));
        let op = match (service, operation) {
            (Some(s), Some(op)) => service_metrics.operation(self, op, s),
            _ => service_metrics.unknown.clone(),
        };
        op.latency.observe(latency.as_secs_f64());
        op.count(self, service_metrics.name, status);
        if let Some(d) = decision {
            service_metrics.decisions[d as usize].inc();
        }
    }

    /// Count a request refused before authentication (`reason` from [`refusal_reason`]).
    pub fn observe_refusal(&self, reason: &'static str) {
        self.inner.refused.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Start timing one audit record's commit; [`AuditTimer::observe`] when it is acknowledged.
    pub fn audit_timer(&self) -> AuditTimer {
        AuditTimer { histogram: self.inner.audit_commit.clone(), started: Instant::now() }
    }

    /// Bring `rampart_audit_dropped_total` up to the audit log's own count of records deleted by
    /// retention ([`rampart_trail::AuditLog::pruned_total`]), read at scrape time. A smaller
    /// count than last time is a new audit log (`--compat moto` reset): its records add on, so the
    /// series never goes down.
    pub fn observe_audit_dropped_total(&self, total: u64) {
        let last = self.inner.audit_dropped_seen.swap(total, Ordering::Relaxed);
        self.inner.audit_dropped.inc_by(if total >= last { total - last } else { total });
    }

    /// The text exposition. Measures the store (a file `stat`, or one PostgreSQL query): blocking,
    /// call it off the async workers.
    pub fn render(&self) -> String {
        let inner = &self.inner;
        if let Some(store) = &inner.store {
            match store.size_bytes() {
                Ok(bytes) => {
                    let gauge = inner.store_size.get_or_create(&BackendLabels { backend: store.backend() });
                    gauge.set(i64::try_from(bytes).unwrap_or(i64::MAX));
                }
                Err(e) => tracing::warn!(error = %e, "metrics: cannot measure the store"),
            }
        }
        if let Some(bytes) = resident_memory() {
            inner.resident_memory.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        let mut out = String::with_capacity(16 * 1024);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &inner.registry) {
            tracing::error!(error = %e, "metrics: cannot encode");
        }
        out
    }

    fn service(&self, name: &'static str) -> Arc<ServiceMetrics> {
        if let Some(s) = self.inner.services.read().unwrap_or_else(|p| p.into_inner()).get(name) {
            return s.clone();
        }
        let mut services = self.inner.services.write().unwrap_or_else(|p| p.into_inner());
        services
            .entry(name)
            .or_insert_with(|| {
                let decision = |d: Decision| {
                    self.inner.decisions.get_or_create_owned(&DecisionLabels { service: name, decision: d.label() })
                };
                Arc::new(ServiceMetrics {
                    name,
                    operations: RwLock::new(HashMap::new()),
                    unknown: Arc::new(OperationMetrics::new(self, name, UNKNOWN)),
                    decisions: [
                        decision(Decision::Allow),
                        decision(Decision::ExplicitDeny),
                        decision(Decision::ImplicitDeny),
                    ],
                })
            })
            .clone()
    }
}

impl ServiceMetrics {
    fn operation(&self, metrics: &Metrics, operation: &str, service: &dyn Service) -> Arc<OperationMetrics> {
        if let Some(op) = self.operations.read().unwrap_or_else(|p| p.into_inner()).get(operation) {
            return op.clone();
        }
        // Only operations the service implements get a series of their own: the set is fixed.
        if !service.has_operation(operation) {
            return self.unknown.clone();
        }
        let mut ops = self.operations.write().unwrap_or_else(|p| p.into_inner());
        ops.entry(Box::from(operation))
            .or_insert_with(|| Arc::new(OperationMetrics::new(metrics, self.name, operation)))
            .clone()
    }
}

impl OperationMetrics {
    fn new(metrics: &Metrics, service: &'static str, operation: &str) -> Self {
        let latency =
            metrics.inner.latency.get_or_create_owned(&OpLabels { service, operation: operation.to_string() });
        OperationMetrics { operation: Box::from(operation), latency, calls: RwLock::new(Vec::new()) }
    }

    /// Count one call answered with `status`.
    fn count(&self, metrics: &Metrics, service: &'static str, status: u16) {
        let known = self.calls.read().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = known.iter().find(|(s, _)| *s == status) {
            c.inc();
            return;
        }
        drop(known);
        let mut calls = self.calls.write().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = calls.iter().find(|(s, _)| *s == status) {
            c.inc();
            return;
        }
        let labels = CallLabels { service, operation: self.operation.to_string(), status };
        let counter = metrics.inner.calls.get_or_create_owned(&labels);
        counter.inc();
        calls.push((status, counter));
    }
}

/// Times one audit record's commit.
pub struct AuditTimer {
    histogram: Histogram,
    started: Instant,
}

impl AuditTimer {
    /// The record's commit was acknowledged (or failed) now.
    pub fn observe(self) {
        self.histogram.observe(self.started.elapsed().as_secs_f64());
    }
}

/// This process's resident set size (Linux `/proc/self/statm`).
fn resident_memory() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // The page size of every Linux platform Rampart targets but a few arm64 configurations;
    // close enough for a gauge (std exposes no sysconf).
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_from_authorizer_answers() {
        assert_eq!(Decision::of(&Ok(())), Some(Decision::Allow));
        let explicit = AwsError::access_denied(
            "User: u is not authorized to perform: iam:GetUser on resource: r with an explicit deny in an identity-based policy",
        );
        assert_eq!(Decision::of(&Err(explicit)), Some(Decision::ExplicitDeny));
        let implicit = AwsError::new(
            "AccessDeniedException",
            "User: u is not authorized to perform: kms:Decrypt on resource: r because no identity-based policy allows the kms:Decrypt action",
            400,
        );
        assert_eq!(Decision::of(&Err(implicit)), Some(Decision::ImplicitDeny));
        assert_eq!(Decision::of(&Err(AwsError::internal("store down"))), None);
    }

    #[test]
    fn refusal_reasons() {
        let e = |code: &'static str, msg: &str| AwsError::new(code, msg, 403);
        assert_eq!(
            refusal_reason(&e("SignatureDoesNotMatch", "The request signature we calculated does not match")),
            Some("bad_signature")
        );
        assert_eq!(
            refusal_reason(&e(
                "InvalidSignatureException",
                "Signature expired: 20260101T000000Z is now earlier than …"
            )),
            Some("clock_skew")
        );
        assert_eq!(refusal_reason(&e("UnrecognizedClientException", "")), Some("unknown_access_key"));
        assert_eq!(refusal_reason(&e("NoSuchEntity", "")), None);
    }

    #[test]
    fn render_counts_refusals_and_dropped_events() {
        let m = Metrics::default();
        m.observe_refusal("bad_signature");
        m.observe_refusal("bad_signature");
        m.observe_audit_dropped_total(3);
        m.observe_audit_dropped_total(3);
        m.observe_audit_dropped_total(2); // a new audit log: its 2 add on
        m.observe_call(None, None, 400, Duration::from_millis(1), None);
        let text = m.render();
        assert!(text.contains("rampart_requests_refused_total{reason=\"bad_signature\"} 2\n"), "{text}");
        assert!(text.contains("rampart_audit_dropped_total 5\n"), "{text}");
        assert!(
            text.contains("rampart_calls_total{service=\"unknown\",operation=\"unknown\",status=\"400\"} 1\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
