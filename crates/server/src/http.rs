//! The HTTP edge: axum routes, body limits, the blocking pool, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::bootstrap::{bootstrap, Bootstrapped, ServerConfig, StartupError};
use crate::pipeline::{new_request_id, Pipeline, RawRequest, RawResponse};

/// Larger bodies are refused before any work (AWS's largest control-plane inputs are far smaller).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

struct AppState {
    pipeline: Pipeline,
    started: Instant,
}

/// Build the pipeline with every service wired to the same store.
pub fn build_pipeline(boot: &Bootstrapped) -> Result<Pipeline, StartupError> {
    let iam = rampart_iam::Iam::new(boot.store.clone(), boot.sealer.clone());
    iam.bootstrap_account(
        &boot.identity.account_id,
        &boot.identity.root_access_key_id,
        &boot.identity.root_secret_access_key,
    )
    .map_err(|e| StartupError::Config(format!("cannot bootstrap the account: {e}")))?;
    Ok(Pipeline::new(vec![iam.iam_service(), iam.sts_service()], iam.authorizer(), iam.credentials()))
}

/// The axum router for a pipeline.
pub fn router(pipeline: Pipeline) -> Router {
    let state = Arc::new(AppState { pipeline, started: Instant::now() });
    Router::new().route("/_rampart/health", get(health)).fallback(aws_call).with_state(state)
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "services": state.pipeline.service_names(),
        "uptimeSeconds": state.started.elapsed().as_secs(),
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}

async fn aws_call(
    State(state): State<Arc<AppState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let rid = new_request_id();
            let err = rampart_protocol::AwsError::new(
                "RequestEntityTooLarge",
                format!("Request body must be at most {MAX_BODY_BYTES} bytes"),
                413,
            );
            let (ct, body) = err.render(rampart_protocol::Protocol::AwsQuery, "", &rid);
            return to_response(RawResponse { status: 413, content_type: ct, request_id: rid, body });
        }
    };
    let state2 = state.clone();
    let result = tokio::task::spawn_blocking(move || {
        let path = parts.uri.path();
        let query = parts.uri.query().unwrap_or("");
        let raw = RawRequest {
            method: parts.method.as_str(),
            path,
            query,
            headers: &parts.headers,
            body: &body,
            remote,
            secure_transport: false,
        };
        state2.pipeline.handle(&raw)
    })
    .await;
    match result {
        Ok(resp) => to_response(resp),
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
pub async fn serve(config: ServerConfig) -> Result<(), StartupError> {
    let started = Instant::now();
    let boot = tokio::task::spawn_blocking({
        let config = config.clone();
        move || bootstrap(&config)
    })
    .await
    .map_err(|e| StartupError::Serve(e.to_string()))??;
    if boot.generated_credentials {
        // Printed once, at first start; afterwards they live only in the data dir (mode 0600).
        println!(
            "Root credentials for account {} (shown once; kept in the data directory):\n  AWS_ACCESS_KEY_ID={}\n  AWS_SECRET_ACCESS_KEY={}",
            boot.identity.account_id, boot.identity.root_access_key_id, boot.identity.root_secret_access_key
        );
    }
    let pipeline = build_pipeline(&boot)?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|source| StartupError::Listen { addr: config.listen.clone(), source })?;
    let local = listener.local_addr().map_err(|e| StartupError::Serve(e.to_string()))?;
    tracing::info!(
        address = %local,
        account_id = %boot.identity.account_id,
        ready_ms = started.elapsed().as_millis() as u64,
        "rampart serve ready"
    );
    let app = router(pipeline).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| StartupError::Serve(e.to_string()))?;
    tracing::info!("rampart serve stopped");
    drop(boot);
    Ok(())
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
