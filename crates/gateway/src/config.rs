//! Gateway settings: the `rampart gateway` flags and the configuration they become.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::clock::{SharedClock, SystemClock};
use crate::GatewayError;

#[derive(Debug, Clone)]
pub struct ShieldConfig {
    /// Open client connections at most (0: no cap). When full, the slowest half-open or idle
    /// connection is closed to make room; if none, the new one gets a 503.
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// A request head must arrive within this time...
    pub header_timeout: Duration,
    /// ...and, after `rate_grace`, at this average rate at least (Slowloris).
    pub min_rate_bytes_per_sec: u64,
    pub rate_grace: Duration,
    /// The whole body must arrive within this time, at `min_rate_bytes_per_sec` after the grace (slow POST).
    pub body_timeout: Duration,
    /// A keep-alive connection may idle this long between requests.
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
    pub auto_mitigation: bool,
    /// An attack is traffic above max(attack_min_rps, baseline × attack_multiplier).
    pub attack_min_rps: f64,
    pub attack_multiplier: f64,
    /// During an attack a source above max(source_min_rps, threshold × source_share) gets 429.
    pub source_share: f64,
    pub source_min_rps: f64,
    /// Quiet time before an attack event ends.
    pub attack_cooldown: Duration,
}

impl Default for ShieldConfig {
    fn default() -> Self {
        ShieldConfig {
            max_connections: 10_000,
            max_connections_per_ip: 256,
            header_timeout: Duration::from_secs(10),
            min_rate_bytes_per_sec: 256,
            rate_grace: Duration::from_secs(2),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 64 * 1024,
            max_body_bytes: 10 * 1024 * 1024,
            auto_mitigation: true,
            attack_min_rps: 2000.0,
            attack_multiplier: 4.0,
            source_share: 0.2,
            source_min_rps: 50.0,
            attack_cooldown: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    pub upstream: http::Uri,
    pub web_acl: Option<PathBuf>,
    pub admin_listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub redis: Option<String>,
    /// Prefix of the shared counters in Redis (gateways sharing counts use the same one).
    pub redis_prefix: String,
    pub geoip_db: Option<PathBuf>,
    /// WAF log records (JSON lines); "-" for standard output.
    pub waf_log: Option<PathBuf>,
    pub upstream_timeout: Duration,
    /// How often the web ACL file is checked for changes (0: only on SIGHUP / reload()).
    pub reload_poll: Duration,
    pub shield: ShieldConfig,
    /// Leading zero bits the Challenge's proof of work asks for.
    pub challenge_difficulty: u8,
    /// The clock every deadline, window and token reads (tests swap in a manual one).
    pub clock: SharedClock,
}

impl GatewayConfig {
    pub fn new(listen: SocketAddr, upstream: &str) -> Result<GatewayConfig, GatewayError> {
        Ok(GatewayConfig {
            listen,
            upstream: parse_upstream(upstream)?,
            web_acl: None,
            admin_listen: None,
            tls_cert: None,
            tls_key: None,
            redis: None,
            redis_prefix: "rampart:gw:".to_string(),
            geoip_db: None,
            waf_log: None,
            upstream_timeout: Duration::from_secs(30),
            reload_poll: Duration::from_secs(1),
            shield: ShieldConfig::default(),
            challenge_difficulty: crate::token::DEFAULT_DIFFICULTY,
            clock: SystemClock::shared(),
        })
    }
}

pub fn parse_upstream(s: &str) -> Result<http::Uri, GatewayError> {
    let u: http::Uri = s.parse().map_err(|_| GatewayError::Config(format!("invalid --upstream {s:?}")))?;
    if u.scheme_str() != Some("http") || u.authority().is_none() {
        return Err(GatewayError::Config(format!("--upstream must be http://host:port, got {s:?}")));
    }
    Ok(u)
}

fn secs(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mul) = if let Some(v) = s.strip_suffix("ms") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('m') {
        (v, 60.0)
    } else {
        (s, 1.0)
    };
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?} (e.g. 10s, 500ms, 2m)"))?;
    if !(0.0..=86_400.0 * 365.0).contains(&(n * mul)) {
        return Err(format!("duration out of range: {s}"));
    }
    Ok(Duration::from_secs_f64(n * mul))
}

/// `rampart gateway`: a WAF + Shield reverse proxy in front of your own HTTP service.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// Address to listen on.
    #[arg(long, env = "RAMPART_GATEWAY_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// The service to protect (http://host:port).
    #[arg(long, env = "RAMPART_GATEWAY_UPSTREAM")]
    pub upstream: String,
    /// Web ACL file: AWS WAFv2 create-web-acl JSON (+ IPSets, RegexPatternSets, RuleGroups).
    /// Reloaded on change and on SIGHUP. Without it every request is allowed (Shield still applies).
    #[arg(long, env = "RAMPART_GATEWAY_WEB_ACL")]
    pub web_acl: Option<PathBuf>,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Address for /metrics, /sampled-requests, /shield/attacks, /healthz (not exposed by default).
    #[arg(long, env = "RAMPART_GATEWAY_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Share rate-based counters and Shield baselines through Redis (e.g. redis://127.0.0.1:6379).
    #[arg(long, env = "RAMPART_GATEWAY_REDIS")]
    pub redis: Option<String>,
    /// MaxMind-format country database for GeoMatchStatement.
    #[arg(long)]
    pub geoip_db: Option<PathBuf>,
    /// Write WAF log records (AWS WAF's JSON format, one per line) here; "-" for standard output.
    #[arg(long)]
    pub waf_log: Option<PathBuf>,
    /// Upstream response timeout.
    #[arg(long, value_parser = secs, default_value = "30s")]
    pub upstream_timeout: Duration,
    /// Open client connections at most (0: no cap).
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// Open client connections per client IP at most (0: no cap).
    #[arg(long, default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// Time allowed for a request's headers.
    #[arg(long, value_parser = secs, default_value = "10s")]
    pub header_timeout: Duration,
    /// Time allowed for a request's body.
    #[arg(long, value_parser = secs, default_value = "30s")]
    pub body_timeout: Duration,
    /// Keep-alive idle timeout.
    #[arg(long, value_parser = secs, default_value = "60s")]
    pub idle_timeout: Duration,
    /// Minimum data rate (bytes/s) for request heads and bodies after a 2 s grace (0: off).
    #[arg(long, default_value_t = 256)]
    pub min_data_rate: u64,
    /// Largest request head (bytes).
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_header_bytes: usize,
    /// Largest request body (bytes); larger gets 413.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Turn off automatic rate-based mitigation.
    #[arg(long)]
    pub no_auto_mitigation: bool,
    /// Requests/s below which traffic is never an attack.
    #[arg(long, default_value_t = 2000.0)]
    pub attack_min_rps: f64,
    /// Traffic above baseline × this is an attack.
    #[arg(long, default_value_t = 4.0)]
    pub attack_multiplier: f64,
    /// Leading zero bits of SHA-256 the Challenge's proof of work needs (1-32; each bit doubles the work).
    #[arg(long, default_value_t = crate::token::DEFAULT_DIFFICULTY, env = "RAMPART_GATEWAY_CHALLENGE_DIFFICULTY",
          value_parser = clap::value_parser!(u8).range(1..=32))]
    pub challenge_difficulty: u8,
}

impl GatewayArgs {
    pub fn into_config(self) -> Result<GatewayConfig, GatewayError> {
        let mut c = GatewayConfig::new(self.listen, &self.upstream)?;
        c.web_acl = self.web_acl;
        c.admin_listen = self.admin_listen;
        c.tls_cert = self.tls_cert;
        c.tls_key = self.tls_key;
        c.redis = self.redis;
        c.geoip_db = self.geoip_db;
        c.waf_log = self.waf_log;
        c.upstream_timeout = self.upstream_timeout;
        c.challenge_difficulty = self.challenge_difficulty;
        c.shield = ShieldConfig {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            min_rate_bytes_per_sec: self.min_data_rate,
            max_header_bytes: self.max_header_bytes,
            max_body_bytes: self.max_body_bytes,
            auto_mitigation: !self.no_auto_mitigation,
            attack_min_rps: self.attack_min_rps,
            attack_multiplier: self.attack_multiplier,
            ..ShieldConfig::default()
        };
        Ok(c)
    }
}
