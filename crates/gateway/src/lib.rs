//! `rampart gateway`: a WAF + Shield reverse proxy in front of the user's own HTTP services.
//!
//! - [`waf`]: web ACLs in AWS WAFv2's JSON (statements, transformations, labels, rule groups, managed
//!   rule groups), evaluated per request with AWS's semantics.
//! - [`shield`]: connection caps, Slowloris / slow-POST deadlines, size limits, automatic mitigation.
//! - [`proxy`]: hyper-based HTTP/1.1 + HTTP/2 proxy that buffers each request before the upstream sees it.
//! - [`admin`] / [`observe`]: Prometheus metrics, sampled requests, WAF logs.

pub mod admin;
pub mod clock;
pub mod config;
pub mod observe;
pub mod proxy;
pub mod shield;
pub mod token;
pub mod waf;

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use config::{GatewayArgs, GatewayConfig, ShieldConfig};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Acl(#[from] waf::AclError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("redis: {0}")]
    Redis(String),
    #[error("GeoIP database: {0}")]
    Geo(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Everything the request path shares.
pub struct State {
    pub cfg: GatewayConfig,
    acl: RwLock<Option<Arc<waf::WebAcl>>>,
    /// Hash of the file text last loaded (or refused), to notice changes.
    acl_hash: RwLock<Option<u64>>,
    pub waf_metrics: waf::metrics::WafMetrics,
    pub rates: Arc<waf::rate::RateCounters>,
    pub geo: Option<maxminddb::Reader<Vec<u8>>>,
    pub client: Client<HttpConnector, Full<Bytes>>,
    pub registry: Arc<shield::conn::Registry>,
    pub mitigator: Arc<shield::ddos::Mitigator>,
    pub stats: observe::GatewayStats,
    pub sampler: observe::Sampler,
    pub sample_seq: AtomicU64,
    pub log: Option<observe::LogSink>,
    pub token_key: token::TokenKey,
    pub upstream_healthy: AtomicBool,
    pub clock: clock::SharedClock,
}

impl State {
    /// The web ACL in force (None: no --web-acl, everything allowed).
    pub fn acl(&self) -> Option<Arc<waf::WebAcl>> {
        self.acl.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-reads the web ACL file. An invalid file is refused and the ACL in force stays.
    pub fn reload(&self) -> Result<(), GatewayError> {
        let Some(path) = &self.cfg.web_acl else { return Ok(()) };
        let text = std::fs::read_to_string(path).map_err(|e| {
            self.stats.reload_errors.fetch_add(1, Ordering::Relaxed);
            GatewayError::Config(format!("cannot read {}: {e}", path.display()))
        })?;
        *self.acl_hash.write().unwrap_or_else(|p| p.into_inner()) = Some(text_hash(&text));
        match waf::load_str(&text, &self.waf_metrics) {
            Ok(acl) => {
                *self.acl.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(acl));
                self.stats.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(path = %path.display(), "web ACL loaded");
                Ok(())
            }
            Err(e) => {
                self.stats.reload_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "web ACL reload refused; keeping the previous one");
                Err(e.into())
            }
        }
    }

    fn reload_if_changed(&self) {
        let Some(path) = &self.cfg.web_acl else { return };
        // Content, not mtime: coarse timestamps can hide a quick rewrite.
        let Ok(text) = std::fs::read_to_string(path) else { return };
        let known = *self.acl_hash.read().unwrap_or_else(|p| p.into_inner());
        if known != Some(text_hash(&text)) {
            let _ = self.reload();
        }
    }
}

fn text_hash(s: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub state: Arc<State>,
    shutdown: tokio::sync::watch::Sender<bool>,
    graceful: Arc<hyper_util::server::graceful::GracefulShutdown>,
    tasks: Vec<JoinHandle<()>>,
}

fn load_tls(cert: &std::path::Path, key: &std::path::Path) -> Result<tokio_rustls::TlsAcceptor, GatewayError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| GatewayError::Tls(format!("{}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| GatewayError::Tls(format!("{}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| GatewayError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut cfg = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| GatewayError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

impl Gateway {
    /// Loads the configuration, binds the listeners and starts serving.
    pub async fn start(cfg: GatewayConfig) -> Result<Gateway, GatewayError> {
        let waf_metrics = waf::metrics::WafMetrics::default();
        let (acl, acl_hash) = match &cfg.web_acl {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| GatewayError::Config(format!("cannot read {}: {e}", p.display())))?;
                (Some(Arc::new(waf::load_str(&text, &waf_metrics)?)), Some(text_hash(&text)))
            }
            None => (None, None),
        };
        let geo = match &cfg.geoip_db {
            Some(p) => Some(
                maxminddb::Reader::open_readfile(p).map_err(|e| GatewayError::Geo(format!("{}: {e}", p.display())))?,
            ),
            None => None,
        };
        let tls = match (&cfg.tls_cert, &cfg.tls_key) {
            (Some(c), Some(k)) => Some(load_tls(c, k)?),
            (None, None) => None,
            _ => return Err(GatewayError::Config("TLS needs both --tls-cert and --tls-key".into())),
        };
        let log = match &cfg.waf_log {
            Some(p) => Some(
                observe::LogSink::open(p)
                    .map_err(|e| GatewayError::Config(format!("--waf-log {}: {e}", p.display())))?,
            ),
            None => None,
        };
        let redis_client = match &cfg.redis {
            Some(url) => Some(redis::Client::open(url.as_str()).map_err(|e| GatewayError::Redis(e.to_string()))?),
            None => None,
        };
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(http);
        let clock = cfg.clock.clone();
        let rates = Arc::new(waf::rate::RateCounters::with_clock(clock.clone()));
        let state = Arc::new(State {
            registry: shield::conn::Registry::new(cfg.shield.clone(), clock.clone()),
            mitigator: shield::ddos::Mitigator::new(cfg.shield.clone(), rates.clone(), clock.clone()),
            clock,
            rates: rates.clone(),
            acl: RwLock::new(acl),
            acl_hash: RwLock::new(acl_hash),
            waf_metrics,
            geo,
            client,
            stats: observe::GatewayStats::default(),
            sampler: observe::Sampler::default(),
            sample_seq: AtomicU64::new(0),
            log,
            token_key: token::TokenKey::random(),
            upstream_healthy: AtomicBool::new(true),
            cfg,
        });
        let listener = TcpListener::bind(state.cfg.listen)
            .await
            .map_err(|source| GatewayError::Listen { addr: state.cfg.listen, source })?;
        let addr = listener.local_addr()?;
        let (shutdown, rx) = tokio::sync::watch::channel(false);
        let graceful = Arc::new(hyper_util::server::graceful::GracefulShutdown::new());
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(proxy::accept_loop(state.clone(), listener, tls, rx.clone(), graceful.clone())));
        let admin_addr = match state.cfg.admin_listen {
            Some(a) => {
                let l = TcpListener::bind(a).await.map_err(|source| GatewayError::Listen { addr: a, source })?;
                let addr = l.local_addr()?;
                tasks.push(tokio::spawn(admin::serve(state.clone(), l, rx.clone())));
                Some(addr)
            }
            None => None,
        };
        if let Some(client) = redis_client {
            tasks.push(tokio::spawn(waf::rate::redis_sync_loop(
                state.rates.clone(),
                client,
                state.cfg.redis_prefix.clone(),
            )));
        } else {
            let rates = state.rates.clone();
            tasks.push(tokio::spawn(async move {
                let mut t = tokio::time::interval(Duration::from_secs(10));
                loop {
                    t.tick().await;
                    rates.sweep();
                }
            }));
        }
        let m = state.mitigator.clone();
        tasks.push(tokio::spawn(async move {
            let mut t = tokio::time::interval(shield::ddos::TICK);
            loop {
                t.tick().await;
                m.tick();
            }
        }));
        if !state.cfg.reload_poll.is_zero() && state.cfg.web_acl.is_some() {
            let s = state.clone();
            tasks.push(tokio::spawn(async move {
                let mut t = tokio::time::interval(s.cfg.reload_poll);
                loop {
                    t.tick().await;
                    let s2 = s.clone();
                    let _ = tokio::task::spawn_blocking(move || s2.reload_if_changed()).await;
                }
            }));
        }
        let s = state.clone();
        tasks.push(tokio::spawn(async move {
            let Some(auth) = s.cfg.upstream.authority().map(|a| a.to_string()) else { return };
            let auth = if auth.contains(':') { auth } else { format!("{auth}:80") };
            let mut t = tokio::time::interval(Duration::from_secs(2));
            loop {
                t.tick().await;
                let ok = matches!(
                    tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(&auth)).await,
                    Ok(Ok(_))
                );
                if ok != s.upstream_healthy.swap(ok, Ordering::Relaxed) {
                    tracing::warn!(upstream = %auth, healthy = ok, "upstream health changed");
                }
            }
        }));
        tracing::info!(%addr, upstream = %state.cfg.upstream, "gateway listening");
        Ok(Gateway { addr, admin_addr, state, shutdown, graceful, tasks })
    }

    pub fn reload(&self) -> Result<(), GatewayError> {
        self.state.reload()
    }

    /// Stops accepting, lets in-flight requests finish (up to `grace`), then stops.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let mut tasks = self.tasks.into_iter();
        // The accept loop ends on the signal (closing the listener, dropping its handle on `graceful`).
        if let Some(accept) = tasks.next() {
            let _ = accept.await;
        }
        for t in tasks {
            t.abort();
        }
        if let Ok(g) = Arc::try_unwrap(self.graceful) {
            let _ = tokio::time::timeout(grace, g.shutdown()).await;
        }
    }
}

/// `rampart gateway`: runs until SIGINT/SIGTERM (graceful stop); SIGHUP reloads the web ACL.
pub async fn run(args: GatewayArgs) -> Result<(), GatewayError> {
    let cfg = args.into_config()?;
    let gw = Gateway::start(cfg).await?;
    if let Some(a) = gw.admin_addr {
        tracing::info!(admin = %a, "admin listener (metrics, sampled requests, attacks)");
    }
    wait_for_signals(&gw).await?;
    tracing::info!("stopping: finishing in-flight requests");
    gw.shutdown(Duration::from_secs(30)).await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signals(gw: &Gateway) -> Result<(), GatewayError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the web ACL");
                let _ = gw.reload();
            }
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signals(_gw: &Gateway) -> Result<(), GatewayError> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}
