//! The HTTP edge: axum routes, body limits, the blocking pool, graceful shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::bootstrap::{bootstrap, Bootstrapped, ServerConfig, StartupError};
use crate::compat::{format_no_auth_count, parse_no_auth_count, CompatMode, NoAuthBudget};
use crate::metrics::Metrics;
use crate::pipeline::{new_request_id, Pipeline, RawRequest, RawResponse};

struct AppState {
    /// Swapped whole by `POST /moto-api/reset` (`--compat moto`); otherwise fixed.
    pipeline: RwLock<Arc<Pipeline>>,
    config: ServerConfig,
    no_auth: Option<Arc<NoAuthBudget>>,
    /// Run calls on the async worker itself (the store is local: SQLite answers in microseconds).
    /// Handing each call to the blocking pool and back cost ~40 % of the server's CPU per call;
    /// a networked store (PostgreSQL) keeps the hand-off so a round trip never stalls a worker.
    inline: bool,
    started: Instant,
}

impl AppState {
    fn pipeline(&self) -> Arc<Pipeline> {
        self.pipeline.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Build the pipeline with every service wired to the same store.
pub fn build_pipeline(boot: &Bootstrapped) -> Result<Pipeline, StartupError> {
    // The services' store: a call's transactions join its unit of work (see Pipeline::with_units).
    let units = rampart_store::UnitStore::new(boot.store.clone());
    let store: Arc<dyn rampart_store::Store> = units.clone();
    let iam = rampart_iam::Iam::new(store.clone(), boot.sealer.clone());
    iam.set_public_url(&boot.public_url);
    iam.bootstrap_account(
        &boot.identity.account_id,
        &boot.identity.root_access_key_id,
        &boot.identity.root_secret_access_key,
    )
    .map_err(|e| StartupError::Config(format!("cannot bootstrap the account: {e}")))?;
    if boot.dev_account_keys {
        iam.enable_account_keys();
    }
    let kms = rampart_kms::Kms::new(store.clone(), boot.sealer.clone(), iam.authorizer());
    // External key store proxies over http:// (and on any port): `--dev` or
    // RAMPART_KMS_XKS_ALLOW_HTTP=1. AWS requires https:// on port 443.
    kms.allow_xks_http(
        boot.dev_account_keys || std::env::var("RAMPART_KMS_XKS_ALLOW_HTTP").is_ok_and(|v| v == "1" || v == "true"),
    );
    let secrets = secrets_service(boot, &store, &iam, &kms)?;
    iam.set_activity_log(Arc::new(rampart_trail::activity::TrailActivity::new(boot.store.clone())));
    let audit = rampart_trail::AuditLog::start_with(boot.store.clone(), trail_retention(boot)?)
        .map_err(|e| StartupError::Config(format!("cannot start the audit writer: {e}")))?;
    let trail = rampart_trail::CloudTrail::start(
        store.clone(),
        boot.sealer.clone(),
        rampart_trail::TrailConfig {
            root: boot.trail_dir.clone(),
            interval: boot.trail_delivery_interval,
            insights: rampart_trail::InsightsConfig::from_env().map_err(StartupError::Config)?,
        },
    );
    trail.set_organizations(iam.organizations());
    Ok(Pipeline::new(
        vec![
            iam.iam_service(),
            iam.sts_service(),
            iam.organizations_service(),
            secrets,
            kms.service(),
            trail.service(),
            trail.data_service(),
        ],
        iam.authorizer(),
        iam.credentials(),
    )
    .with_audit(audit, &boot.identity.account_id)
    .with_units(units))
}

/// How long LookupEvents' records are kept: `RAMPART_TRAIL_RETENTION_DAYS` (default 90, as
/// CloudTrail's event history) and, in memory, at most `RAMPART_TRAIL_MAX_RECORDS` (default 200,000).
fn trail_retention(boot: &Bootstrapped) -> Result<rampart_trail::Retention, StartupError> {
    let mut retention =
        if boot.store.in_memory() { rampart_trail::Retention::EPHEMERAL } else { rampart_trail::Retention::DURABLE };
    let positive = |name: &str| -> Result<Option<u64>, StartupError> {
        match std::env::var(name) {
            Ok(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| StartupError::Config(format!("{name} must be a positive integer, got {v:?}"))),
            Err(_) => Ok(None),
        }
    };
    if let Some(days) = positive("RAMPART_TRAIL_RETENTION_DAYS")? {
        retention.max_age = std::time::Duration::from_secs(days.saturating_mul(86_400));
    }
    if let Some(n) = positive("RAMPART_TRAIL_MAX_RECORDS")? {
        retention.max_records = Some(n);
    }
    Ok(retention)
}

/// Secrets Manager: values envelope-encrypted with data keys from KMS (as the caller, via
/// secretsmanager.<region>.amazonaws.com), rotators from `RAMPART_SECRETS_ROTATORS`, deletions purged and scheduled rotations
/// started by a sweep every `RAMPART_SECRETS_SWEEP_SECONDS` (default 60).
fn secrets_service(
    boot: &Bootstrapped,
    store: &Arc<dyn rampart_store::Store>,
    iam: &rampart_iam::Iam,
    kms: &Arc<rampart_kms::Kms>,
) -> Result<Arc<dyn rampart_service::Service>, StartupError> {
    let rotators = rampart_secrets::rotation::Rotators::from_env().map_err(StartupError::Config)?;
    let legacy = rampart_secrets::keys::SealerKeys::new(boot.sealer.clone());
    let keys = Arc::new(crate::envelope::KmsEnvelopeKeys::new(kms.clone(), legacy));
    let sm = rampart_secrets::SecretsManager::new(store.clone(), keys, rotators);
    sm.set_authorizer(iam.authorizer());
    let sweep = match std::env::var("RAMPART_SECRETS_SWEEP_SECONDS") {
        Ok(v) => v.parse::<u64>().ok().filter(|s| *s > 0).ok_or_else(|| {
            StartupError::Config(format!("RAMPART_SECRETS_SWEEP_SECONDS must be a positive integer, got {v:?}"))
        })?,
        Err(_) => 60,
    };
    sm.start_sweeper(std::time::Duration::from_secs(sweep));
    Ok(sm.service())
}

/// The pipeline as `config` asks for it: with moto's no-auth budget under `--compat moto`.
fn configured_pipeline(
    boot: &Bootstrapped,
    no_auth: &Option<Arc<NoAuthBudget>>,
    metrics: &Metrics,
) -> Result<Pipeline, StartupError> {
    let pipeline = build_pipeline(boot)?.with_metrics(metrics.clone());
    Ok(match no_auth {
        Some(budget) => pipeline.with_no_auth_budget(budget.clone(), boot.identity.account_id.clone()),
        None => pipeline,
    })
}

/// The axum router for a pipeline built from `config`.
fn router(pipeline: Pipeline, config: ServerConfig, no_auth: Option<Arc<NoAuthBudget>>, inline: bool) -> Router {
    let moto = config.compat == Some(CompatMode::Moto);
    let state = Arc::new(AppState {
        pipeline: RwLock::new(Arc::new(pipeline)),
        config,
        no_auth,
        inline,
        started: Instant::now(),
    });
    let mut app = Router::new()
        .route("/_rampart/health", get(health))
        .route("/_rampart/operations", get(operations))
        .route("/_localstack/health", get(localstack_health))
        .route("/_rampart/oidc/{*rest}", get(oidc_document));
    app = app.route("/metrics", get(metrics)); // metrics
    if moto {
        app = app.route("/moto-api/reset", post(moto_reset)).route("/moto-api/reset-auth", post(moto_reset_auth));
    }
    app.fallback(aws_call).with_state(state)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

/// `GET /metrics`: Prometheus / OpenMetrics text (measuring the store may block: off the workers).
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let pipeline = state.pipeline();
    let metrics = pipeline.metrics().clone();
    metrics.observe_audit_dropped_total(pipeline.audit_pruned_total());
    match tokio::task::spawn_blocking(move || metrics.render()).await {
        Ok(text) => (StatusCode::OK, [("content-type", crate::metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => json_response(StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({"error": e.to_string()})),
    }
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let pipeline = state.pipeline();
    // Per service: how many of its botocore model's operations it answers (docs/coverage.md).
    let coverage: serde_json::Map<String, serde_json::Value> = pipeline
        .coverage()
        .into_iter()
        .map(|c| {
            let model = c.implemented.len() + c.missing.len();
            (c.service.to_string(), serde_json::json!({"implemented": c.implemented.len(), "inModel": model}))
        })
        .collect();
    let body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "services": pipeline.service_names(),
        "coverage": coverage,
        "botocore": rampart_service::BOTOCORE_VERSION,
        "uptimeSeconds": state.started.elapsed().as_secs(),
    });
    json_response(StatusCode::OK, body)
}

/// Every service's implemented and missing operations, against the botocore models Rampart is
/// built with.
async fn operations(State(state): State<Arc<AppState>>) -> Response {
    let services: serde_json::Map<String, serde_json::Value> = state
        .pipeline()
        .coverage()
        .into_iter()
        .map(|c| (c.service.to_string(), serde_json::json!({"implemented": c.implemented, "missing": c.missing})))
        .collect();
    json_response(
        StatusCode::OK,
        serde_json::json!({"botocore": rampart_service::BOTOCORE_VERSION, "services": services}),
    )
}

/// `GET /_rampart/oidc/{issuer id}/.well-known/{openid-configuration,jwks.json}`: the public
/// documents of an outbound web identity federation issuer (unauthenticated, as AWS's are).
async fn oidc_document(State(state): State<Arc<AppState>>, uri: axum::http::Uri) -> Response {
    let pipeline = state.pipeline();
    let path = uri.path().to_string();
    let found = tokio::task::spawn_blocking(move || pipeline.public_document(&path)).await;
    match found {
        Ok(Some(Ok(doc))) => {
            (StatusCode::OK, [("content-type", "application/json"), ("cache-control", "max-age=300")], doc.to_string())
                .into_response()
        }
        Ok(Some(Err(e))) if e.status == 404 => {
            json_response(StatusCode::NOT_FOUND, serde_json::json!({"error": "not found"}))
        }
        Ok(None) => json_response(StatusCode::NOT_FOUND, serde_json::json!({"error": "not found"})),
        Ok(Some(Err(_))) | Err(_) => {
            json_response(StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({"error": "internal error"}))
        }
    }
}

/// LocalStack's health answer, so tools that wait on it (awslocal, testcontainers) work unchanged.
async fn localstack_health(State(state): State<Arc<AppState>>) -> Response {
    let services: serde_json::Map<String, serde_json::Value> =
        state.pipeline().service_names().into_iter().map(|s| (s.to_string(), "running".into())).collect();
    let body = serde_json::json!({
        "services": services,
        "edition": "community",
        "version": concat!("rampart-", env!("CARGO_PKG_VERSION")),
    });
    json_response(StatusCode::OK, body)
}

/// moto answers a bare `GET /` (its dashboard); clients probe it to see the server is up.
fn is_moto_index(state: &AppState, parts: &axum::http::request::Parts) -> bool {
    state.config.compat == Some(CompatMode::Moto)
        && parts.method == axum::http::Method::GET
        && parts.uri.path() == "/"
        && parts.uri.query().is_none_or(str::is_empty)
        && !parts.headers.contains_key("authorization")
}

/// `POST /moto-api/reset`: forget everything — a fresh in-memory store and account, same keys.
async fn moto_reset(State(state): State<Arc<AppState>>) -> Response {
    let rebuilt = tokio::task::spawn_blocking({
        let state = state.clone();
        move || {
            let boot = bootstrap(&state.config)?;
            configured_pipeline(&boot, &state.no_auth, state.pipeline().metrics())
        }
    })
    .await;
    match rebuilt {
        Ok(Ok(pipeline)) => {
            let old =
                std::mem::replace(&mut *state.pipeline.write().unwrap_or_else(|p| p.into_inner()), Arc::new(pipeline));
            // Dropping the last reference stops the old services' threads and delivers pending
            // trail files: blocking work, done outside the lock and off the async workers.
            let _ = tokio::task::spawn_blocking(move || drop(old)).await;
            json_response(StatusCode::OK, serde_json::json!({"status": "ok"}))
        }
        Ok(Err(e)) => json_response(StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({"error": e.to_string()})),
        Err(e) => json_response(StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({"error": e.to_string()})),
    }
}

/// `POST /moto-api/reset-auth` with a body of a number or `inf`: moto's INITIAL_NO_AUTH_ACTION_COUNT.
async fn moto_reset_auth(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let Some(budget) = &state.no_auth else { return StatusCode::NOT_FOUND.into_response() };
    match parse_no_auth_count(&String::from_utf8_lossy(&body)) {
        Ok(count) => {
            let previous = budget.reset(count);
            let body = serde_json::json!({ "PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT": format_no_auth_count(previous) });
            json_response(StatusCode::OK, body)
        }
        Err(e) => json_response(StatusCode::BAD_REQUEST, serde_json::json!({"error": e})),
    }
}

async fn aws_call(
    State(state): State<Arc<AppState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    if is_moto_index(&state, &parts) {
        return json_response(
            StatusCode::OK,
            serde_json::json!({"status": "ok", "server": "rampart", "compat": "moto"}),
        );
    }
    // Bounded per protocol before reading, and in time (crate::conn).
    let limit = crate::conn::body_limit(&parts.headers);
    let body =
        match crate::conn::read_body(&parts.headers, body, limit, state.config.connections.body_read_timeout).await {
            Ok(b) => b,
            Err(e) => {
                let pipeline = state.pipeline();
                if matches!(e, crate::conn::BodyError::TooLarge { .. }) {
                    pipeline.metrics().observe_refusal("body_too_large"); // metrics
                }
                // Recorded like any call of the service the signature names, then answered;
                // the connection is closed after it (what is left of the body cannot be trusted).
                let pending = pipeline.refused(&raw_request(&parts, &[], remote), e.to_aws_error());
                let mut response = to_response(pending.finish().await);
                response.headers_mut().insert("connection", HeaderValue::from_static("close"));
                return response;
            }
        };
    let pipeline = state.pipeline();
    let inline = state.inline && !pipeline.may_block(&raw_request(&parts, &body, remote));
    let run = move || pipeline.handle_pending(&raw_request(&parts, &body, remote));
    let result = if inline {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).map_err(|_| "handler panicked".to_string())
    } else {
        tokio::task::spawn_blocking(|| rampart_store::blocking_section(run)).await.map_err(|e| e.to_string())
    };
    match result {
        // Released only once the call's audit record is committed.
        Ok(pending) => to_response(pending.finish().await),
        Err(e) => {
            // A panic in a handler is a bug; answer like AWS's InternalFailure, never drop the connection.
            tracing::error!(error = %e, "handler panicked");
            let rid = new_request_id();
            let err = rampart_protocol::AwsError::internal("We encountered an internal error. Please try again.");
            let (ct, body) = err.render(rampart_protocol::Protocol::AwsQuery, "", &rid);
            to_response(RawResponse { status: 500, content_type: ct, request_id: rid, body })
        }
    }
}

/// The pipeline's view of a request's parts and body.
fn raw_request<'a>(parts: &'a axum::http::request::Parts, body: &'a [u8], remote: SocketAddr) -> RawRequest<'a> {
    RawRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body,
        remote,
        secure_transport: false,
    }
}

fn to_response(r: RawResponse) -> Response {
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static(r.content_type));
    if let Ok(v) = HeaderValue::from_str(&r.request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

/// Run `rampart serve` until SIGINT/SIGTERM. In-flight calls finish before the store closes.
///
/// Thread per core: each serving thread has its own single-threaded runtime and its own listening
/// socket on the same address (`SO_REUSEPORT`; the kernel spreads connections over them). A call
/// then never hops between threads: no work-stealing wake-ups, ~5 µs less kernel time per call
/// than one multi-threaded runtime on the same cores (bench/server).
pub fn serve(config: ServerConfig) -> Result<(), StartupError> {
    let started = Instant::now();
    let boot = bootstrap(&config)?;
    if boot.generated_credentials {
        // Printed once, at first start; afterwards they live only in the data dir (mode 0600).
        println!(
            "Root credentials for account {} (shown once; kept in the data directory):\n  AWS_ACCESS_KEY_ID={}\n  AWS_SECRET_ACCESS_KEY={}",
            boot.identity.account_id, boot.identity.root_access_key_id, boot.identity.root_secret_access_key
        );
    }
    let no_auth = match config.compat {
        Some(CompatMode::Moto) => Some(Arc::new(NoAuthBudget::new(config.initial_no_auth_action_count))),
        None => None,
    };
    let pipeline = configured_pipeline(&boot, &no_auth, &Metrics::new(Some(boot.store.clone())))?;
    let threads = config.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let listeners = listen(&config.listen, threads)?;
    let local = listeners[0].local_addr().map_err(|e| StartupError::Serve(e.to_string()))?;
    tracing::info!(
        address = %local,
        account_id = %boot.identity.account_id,
        store = %boot.store.backend(),
        threads,
        ready_ms = started.elapsed().as_millis() as u64,
        "rampart serve ready"
    );
    let inline = boot.store.is_local();
    let limits = config.connections.clone();
    let registry = crate::conn::Registry::new(limits.effective_max_connections());
    let app = router(pipeline, config, no_auth, inline);

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut listeners = listeners.into_iter();
    let first = listeners.next().ok_or_else(|| StartupError::Serve("no listening socket".into()))?;
    let mut others = Vec::new();
    for (i, listener) in listeners.enumerate() {
        let (app, mut stopped) = (app.clone(), stopped.clone());
        let (limits, registry) = (limits.clone(), registry.clone());
        let thread = std::thread::Builder::new()
            .name(format!("rampart-serve-{}", i + 1))
            .spawn(move || {
                serve_thread(listener, app, limits, registry, async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
            })
            .map_err(|e| StartupError::Serve(format!("cannot start a serving thread: {e}")))?;
        others.push(thread);
    }
    // This thread serves too, and owns the signal handling.
    let result = serve_thread(first, app, limits, registry, shutdown_signal());
    let _ = stop.send(true);
    for thread in others {
        match thread.join() {
            Ok(Err(e)) => tracing::error!(error = %e, "serving thread failed"),
            Err(_) => tracing::error!("serving thread panicked"),
            Ok(Ok(())) => {}
        }
    }
    tracing::info!("rampart serve stopped");
    drop(boot);
    result
}

/// `threads` listening sockets on `addr`, all bound to the same port (the first one's when `addr`
/// asks for port 0). A port some other server already listens on is refused, as a plain bind
/// would: `SO_REUSEPORT` must only ever group this process's own sockets.
fn listen(addr: &str, threads: usize) -> Result<Vec<std::net::TcpListener>, StartupError> {
    use std::net::ToSocketAddrs;
    let fail = |source: std::io::Error| StartupError::Listen { addr: addr.to_string(), source };
    let mut at = addr.to_socket_addrs().map_err(fail)?.next().ok_or_else(|| {
        fail(std::io::Error::new(std::io::ErrorKind::InvalidInput, "the address resolves to nothing"))
    })?;
    if at.port() != 0 {
        port_is_free(at).map_err(fail)?;
    }
    let mut listeners = Vec::with_capacity(threads);
    for _ in 0..threads {
        let listener = listener(at, threads > 1).map_err(fail)?;
        at = listener.local_addr().map_err(fail)?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Fails with `AddrInUse` when something listens on `at` (a bind without `SO_REUSEPORT`).
fn port_is_free(at: SocketAddr) -> std::io::Result<()> {
    let probe = socket2::Socket::new(socket2::Domain::for_address(at), socket2::Type::STREAM, None)?;
    probe.set_reuse_address(true)?;
    probe.bind(&at.into())
}

fn listener(at: SocketAddr, reuse_port: bool) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(at), socket2::Type::STREAM, None)?;
    // As std's and tokio's listeners: a restart may bind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(reuse_port)?;
    socket.set_nonblocking(true)?;
    socket.bind(&at.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Serve `listener` on this thread (a single-threaded runtime) until `shutdown`, then let
/// in-flight calls finish. Connections are bounded as `limits` say; `registry` is shared by every
/// serving thread (the connection cap is for the process).
fn serve_thread(
    listener: std::net::TcpListener,
    app: Router,
    limits: crate::conn::ConnectionLimits,
    registry: Arc<crate::conn::Registry>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StartupError::Serve(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| StartupError::Serve(e.to_string()))?;
        crate::conn::serve(listener, app, limits, registry, shutdown).await;
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight calls");
}
