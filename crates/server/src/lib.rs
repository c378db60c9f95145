//! `rampart serve`: the control-plane HTTP server.
//!
//! * [`bootstrap`]: the data directory — account ID, root credentials, master key — and the store.
//! * [`pipeline`]: the one request path every service shares (protocol → authenticate → decode →
//!   authorize → handler → encode).
//! * [`http`]: the axum app, health endpoint, graceful shutdown.
//! * [`metrics`]: `GET /metrics` (Prometheus text).
//! * [`conn`]: serving connections: timeouts, the connection cap, request body limits.

pub mod backup;
pub mod bootstrap;
pub mod compat;
pub mod conn;
mod envelope;
pub mod http;
pub mod metrics;
pub mod pipeline;

pub use bootstrap::{ServerConfig, StartupError};
pub use http::serve;
