//! IAM OpenID Connect providers and web identity token verification (AssumeRoleWithWebIdentity).
//!
//! A provider is registered by its issuer URL (`https://host/path`; plain `http://` only for
//! loopback issuers, for local identity providers and tests). A token is accepted when:
//! its `iss` names a provider of the role's account; its signature verifies (RS256/384/512,
//! ES256/384) against a key of the issuer's JWKS, found through
//! `{issuer}/.well-known/openid-configuration` → `jwks_uri`; its `aud` is one of the provider's
//! client IDs; and it has not expired (`exp`, no leeway) and is already valid (`nbf`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rampart_protocol::AwsError;
use serde::{Deserialize, Serialize};

use crate::model::Tag;

/// Table: `{account}/{provider key}` → [`ProviderRec`].
pub const PROVIDERS: &str = "iam_oidc_providers";
/// How long a fetched JWKS is trusted before it is fetched again (a token with an unknown `kid`
/// refetches at once, at most every [`REFETCH_MIN`]).
const JWKS_TTL: Duration = Duration::from_secs(300);
const REFETCH_MIN: Duration = Duration::from_secs(5);
/// Discovery documents and key sets larger than this are refused.
const MAX_DOC_BYTES: u64 = 256 * 1024;
/// Default total time for fetching an issuer's discovery document and key set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A registered OIDC provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRec {
    /// The issuer URL as registered, with its scheme (`https://host/path`).
    pub url: String,
    pub created: i64,
    #[serde(default)]
    pub client_ids: Vec<String>,
    #[serde(default)]
    pub thumbprints: Vec<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl ProviderRec {
    /// `host/path`: the ARN's resource part and the condition-key prefix (`host/path:aud`).
    pub fn key(&self) -> &str {
        provider_key(&self.url)
    }

    pub fn arn(&self, account: &str) -> String {
        format!("arn:aws:iam::{account}:oidc-provider/{}", self.key())
    }
}

/// The URL without its scheme.
pub fn provider_key(url: &str) -> &str {
    url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).unwrap_or(url)
}

/// Whether `host` (with an optional port) is a loopback address.
fn is_loopback(host_port: &str) -> bool {
    let host = match host_port.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// IAM's answer (a ValidationError) for a provider URL without a scheme or host.
pub const INVALID_URL: &str = "Invalid Open ID Connect Provider URL";

/// Check and normalize a provider URL: `https://` (or `http://` for loopback hosts), a host, an
/// optional path, no query or fragment. Trailing `/` is dropped.
pub fn normalize_url(url: &str) -> Result<String, String> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        ("https://", r)
    } else if let Some(r) = url.strip_prefix("http://") {
        ("http://", r)
    } else {
        return Err(INVALID_URL.into());
    };
    let rest = rest.trim_end_matches('/');
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err(INVALID_URL.into());
    }
    if rest.contains(['?', '#', ' ']) {
        return Err("Invalid URL".into());
    }
    if scheme == "http://" && !is_loopback(host) {
        return Err("Invalid URL: the URL must begin with https://".into());
    }
    Ok(format!("{scheme}{rest}"))
}

/// The claims Rampart reads from a verified token.
#[derive(Clone, Debug, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    #[serde(default)]
    pub aud: Audience,
    #[serde(default)]
    pub amr: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn values(&self) -> Vec<&str> {
        match self {
            Audience::None => vec![],
            Audience::One(a) => vec![a.as_str()],
            Audience::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

fn invalid_token(message: impl Into<String>) -> AwsError {
    AwsError::new("InvalidIdentityToken", message, 400)
}

/// AWS's answer when the issuer's documents were fetched but hold no usable key set (an HTTP error
/// status, a body that is not a discovery document or JWKS, one over the size limit).
const NO_VERIFICATION_KEY: &str = "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements";

fn no_verification_key() -> AwsError {
    invalid_token(NO_VERIFICATION_KEY)
}

/// The issuer could not be reached in time (connection refused or reset, DNS, TLS, timeout):
/// `IDPCommunicationError`, which AWS documents as transient and SDKs retry.
fn idp_unreachable(issuer: &str) -> AwsError {
    AwsError::new(
        "IDPCommunicationError",
        format!(
            "The request could not be fulfilled because the identity provider (IDP) that was asked to verify the incoming identity token could not be reached: {}",
            provider_key(issuer)
        ),
        400,
    )
}

/// The unverified `iss` claim of a token (to find its provider).
pub fn unverified_issuer(token: &str) -> Result<String, AwsError> {
    use base64::Engine;
    let payload = token.split('.').nth(1).ok_or_else(|| invalid_token("The ID token provided is not a valid JWT."))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| invalid_token("The ID token provided is not a valid JWT."))?;
    #[derive(Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    let iss: Iss =
        serde_json::from_slice(&bytes).map_err(|_| invalid_token("The ID token provided is not a valid JWT."))?;
    iss.iss.ok_or_else(|| invalid_token("The ID token provided does not have an issuer (iss)."))
}

/// Bounds on fetching an issuer's discovery document and key set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OidcFetchLimits {
    /// Total time for one verification's fetches — discovery document and key set together,
    /// connect, TLS, redirects and body included. Default 5 s; `RAMPART_OIDC_FETCH_TIMEOUT_MS`.
    pub timeout: Duration,
    /// Largest discovery document or key set read (default 256 KiB).
    pub max_bytes: u64,
}

/// Environment variable overriding [`OidcFetchLimits::timeout`] (milliseconds, 100–60000).
pub const TIMEOUT_ENV: &str = "RAMPART_OIDC_FETCH_TIMEOUT_MS";

impl Default for OidcFetchLimits {
    fn default() -> Self {
        let timeout = std::env::var(TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|ms| Duration::from_millis(ms.clamp(100, 60_000)))
            .unwrap_or(DEFAULT_TIMEOUT);
        OidcFetchLimits { timeout, max_bytes: MAX_DOC_BYTES }
    }
}

/// A failed fetch is remembered this long: calls naming a dead or slow issuer fail at once
/// instead of each waiting out the timeout again.
const FAILURE_TTL: Duration = Duration::from_secs(5);
/// Issuers remembered (key sets, failures) before the memory is cleared.
const MAX_ISSUERS: usize = 1024;

/// Fetches and caches issuers' key sets.
pub struct JwksCache {
    agent: ureq::Agent,
    limits: Mutex<OidcFetchLimits>,
    /// issuer → (fetched at, keys).
    sets: Mutex<HashMap<String, (Instant, JwkSet)>>,
    /// issuer → (failed at, the error answered).
    failures: Mutex<HashMap<String, (Instant, AwsError)>>,
    /// issuer → its fetch gate: one fetch per issuer at a time; concurrent calls wait for it and
    /// use its result (the key set, or the remembered failure) instead of fetching again.
    gates: Mutex<HashMap<String, std::sync::Arc<Mutex<()>>>>,
}

impl Default for JwksCache {
    fn default() -> Self {
        Self::new(OidcFetchLimits::default())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl JwksCache {
    pub fn new(limits: OidcFetchLimits) -> Self {
        let agent = ureq::Agent::config_builder()
            // Per request, the time left of the verification's budget replaces this.
            .timeout_global(Some(limits.timeout))
            .max_redirects(3)
            .http_status_as_error(true)
            .build()
            .new_agent();
        JwksCache {
            agent,
            limits: Mutex::new(limits),
            sets: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// Change the limits (later fetches use them).
    pub fn set_limits(&self, limits: OidcFetchLimits) {
        *lock(&self.limits) = limits;
    }

    pub fn limits(&self) -> OidcFetchLimits {
        *lock(&self.limits)
    }

    /// GET `url` as JSON within what is left until `deadline`.
    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        issuer: &str,
        url: &str,
        deadline: Instant,
        max_bytes: u64,
    ) -> Result<T, AwsError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(idp_unreachable(issuer));
        }
        let fetch_error = |e: ureq::Error| {
            tracing::warn!(issuer, url, error = %e, "OIDC fetch failed");
            match e {
                ureq::Error::StatusCode(500..) => idp_unreachable(issuer),
                ureq::Error::StatusCode(_) | ureq::Error::BodyExceedsLimit(_) | ureq::Error::RequireHttpsOnly(_) => {
                    no_verification_key()
                }
                _ => idp_unreachable(issuer),
            }
        };
        let mut resp = self.agent.get(url).config().timeout_global(Some(left)).build().call().map_err(fetch_error)?;
        let text = resp.body_mut().with_config().limit(max_bytes).read_to_string().map_err(fetch_error)?;
        serde_json::from_str(&text).map_err(|e| {
            tracing::warn!(issuer, url, error = %e, "OIDC document is not the expected JSON");
            no_verification_key()
        })
    }

    /// Discovery document, then key set: both within one [`OidcFetchLimits::timeout`].
    fn fetch(&self, issuer: &str) -> Result<JwkSet, AwsError> {
        #[derive(Deserialize)]
        struct Discovery {
            jwks_uri: String,
        }
        let limits = self.limits();
        let deadline = Instant::now() + limits.timeout;
        let discovery: Discovery =
            self.get_json(issuer, &format!("{issuer}/.well-known/openid-configuration"), deadline, limits.max_bytes)?;
        // The key set must be served as the issuer is: https, or http on loopback only.
        normalize_url(&discovery.jwks_uri).map_err(|_| {
            tracing::warn!(issuer, "the jwks_uri must use https:// (or http:// on loopback)");
            no_verification_key()
        })?;
        self.get_json(issuer, &discovery.jwks_uri, deadline, limits.max_bytes)
    }

    /// [`JwksCache::fetch`], remembering a failure for [`FAILURE_TTL`].
    fn fetch_remembering_failure(&self, issuer: &str) -> Result<JwkSet, AwsError> {
        if let Some((at, e)) = lock(&self.failures).get(issuer) {
            if at.elapsed() < FAILURE_TTL {
                return Err(e.clone());
            }
        }
        let result = self.fetch(issuer);
        let mut failures = lock(&self.failures);
        match &result {
            Ok(_) => {
                failures.remove(issuer);
            }
            Err(e) => {
                if failures.len() >= MAX_ISSUERS {
                    failures.clear();
                }
                failures.insert(issuer.to_string(), (Instant::now(), e.clone()));
            }
        }
        result
    }

    /// The issuer's key for `kid` (or its only key), fetching the set when absent or stale.
    fn key(&self, issuer: &str, kid: Option<&str>) -> Result<Jwk, AwsError> {
        let pick = |set: &JwkSet| -> Option<Jwk> {
            match kid {
                Some(k) => set.find(k).cloned(),
                None if set.keys.len() == 1 => set.keys.first().cloned(),
                None => None,
            }
        };
        let cached = lock(&self.sets).get(issuer).cloned();
        if let Some((at, set)) = &cached {
            let fresh = at.elapsed() < JWKS_TTL;
            if let Some(k) = pick(set).filter(|_| fresh) {
                return Ok(k);
            }
            if fresh && at.elapsed() < REFETCH_MIN {
                return Err(invalid_token("No key of the issuer matches the token's key ID (kid)."));
            }
        }
        let asked = Instant::now();
        let gate = {
            let mut gates = lock(&self.gates);
            if gates.len() >= MAX_ISSUERS {
                gates.clear();
            }
            gates.entry(issuer.to_string()).or_default().clone()
        };
        let _turn = lock(&gate);
        // A call ahead of this one fetched while this one waited: use its key set.
        if let Some((_, set)) = lock(&self.sets).get(issuer).cloned().filter(|(at, _)| *at >= asked) {
            return pick(&set).ok_or_else(|| invalid_token("No key of the issuer matches the token's key ID (kid)."));
        }
        let set = self.fetch_remembering_failure(issuer)?;
        let found = pick(&set);
        let mut sets = lock(&self.sets);
        if sets.len() >= MAX_ISSUERS {
            sets.clear();
        }
        sets.insert(issuer.to_string(), (Instant::now(), set));
        found.ok_or_else(|| invalid_token("No key of the issuer matches the token's key ID (kid)."))
    }

    /// Verify `token` issued by `provider`: signature, `iss`, `aud` ∈ client IDs, `exp`, `nbf`.
    pub fn verify(&self, provider: &ProviderRec, token: &str) -> Result<Claims, AwsError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid_token("The ID token provided is not a valid JWT."))?;
        let alg = header.alg;
        if !matches!(alg, Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::ES256 | Algorithm::ES384)
        {
            return Err(invalid_token(format!("The token's signing algorithm {alg:?} is not supported.")));
        }
        let jwk = self.key(&provider.url, header.kid.as_deref())?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| no_verification_key())?;
        let mut v = Validation::new(alg);
        v.leeway = 0;
        v.validate_nbf = true;
        v.set_issuer(&[&provider.url]);
        // The audience is checked below against the client IDs (with AWS's messages).
        v.validate_aud = false;
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => AwsError::new("ExpiredTokenException", "Token expired", 400),
                ErrorKind::ImmatureSignature => invalid_token("The token is not valid yet (nbf)."),
                ErrorKind::InvalidIssuer => invalid_token("The token's issuer (iss) does not match the provider."),
                ErrorKind::InvalidSignature => invalid_token("The token's signature does not verify."),
                ErrorKind::MissingRequiredClaim(c) => invalid_token(format!("The token has no {c} claim.")),
                _ => invalid_token("The ID token provided is not a valid JWT."),
            }
        })?;
        let claims = data.claims;
        if !claims.aud.values().iter().any(|a| provider.client_ids.iter().any(|c| c == a)) {
            return Err(invalid_token("Incorrect token audience."));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(normalize_url("https://example.com/").unwrap(), "https://example.com");
        assert_eq!(normalize_url("https://example.com/a/b").unwrap(), "https://example.com/a/b");
        assert_eq!(normalize_url("http://127.0.0.1:8080/x").unwrap(), "http://127.0.0.1:8080/x");
        assert_eq!(normalize_url("http://localhost:9").unwrap(), "http://localhost:9");
        assert_eq!(normalize_url("http://[::1]:9").unwrap(), "http://[::1]:9");
        assert!(normalize_url("http://example.com").is_err());
        assert!(normalize_url("ftp://example.com").is_err());
        assert!(normalize_url("https://example.com/?q=1").is_err());
        assert_eq!(normalize_url("https://").unwrap_err(), INVALID_URL);
        assert_eq!(normalize_url("example.org").unwrap_err(), INVALID_URL);
        let p = ProviderRec {
            url: "https://idp.example.com/tenant".into(),
            created: 0,
            client_ids: vec![],
            thumbprints: vec![],
            tags: vec![],
        };
        assert_eq!(p.arn("111122223333"), "arn:aws:iam::111122223333:oidc-provider/idp.example.com/tenant");
    }

    #[test]
    fn issuers_of_unverified_tokens() {
        use base64::Engine;
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let t = format!("{}.{}.sig", enc(r#"{"alg":"RS256"}"#), enc(r#"{"iss":"https://a.example"}"#));
        assert_eq!(unverified_issuer(&t).unwrap(), "https://a.example");
        assert_eq!(unverified_issuer("nope").unwrap_err().code, "InvalidIdentityToken");
        let t = format!("{}.{}.sig", enc("{}"), enc(r#"{"sub":"x"}"#));
        assert_eq!(unverified_issuer(&t).unwrap_err().code, "InvalidIdentityToken");
    }
}
