//! The client side of AWS's External Key Store (XKS) Proxy API: what KMS sends an external key
//! store proxy. JSON over HTTP(S) POST to `<UriEndpoint><UriPath>/health` and
//! `<UriEndpoint><UriPath>/keys/<XksKeyId>/{metadata,encrypt,decrypt}`, signed with SigV4
//! (service name `kms-xks-proxy`, the request's Region) with the store's proxy authentication
//! credential as the access key ID and secret.
//!
//! Every call has a timeout ([`XKS_TIMEOUT`]) and reads at most [`MAX_RESPONSE`] bytes; callers
//! run on blocking threads (the pipeline sends KMS's cryptographic calls there once a custom key
//! store exists, see `Kms::may_call_out`).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// How long KMS waits for the proxy to answer one request.
pub const XKS_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest proxy response read.
const MAX_RESPONSE: u64 = 64 * 1024;

/// Where a proxy is and how to sign for it.
pub(crate) struct Proxy<'a> {
    /// `https://host` (or `http://host:port` where allowed).
    pub endpoint: &'a str,
    /// `/kms/xks/v1` or `/<prefix>/kms/xks/v1`.
    pub path: &'a str,
    pub access_key_id: &'a str,
    pub secret: &'a str,
    pub region: &'a str,
}

/// How a proxy call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum XksFailure {
    /// Nothing answered (connection refused, name not resolved, TLS failure).
    Unreachable,
    /// No answer within [`XKS_TIMEOUT`].
    TimedOut,
    /// The proxy answered, but not with what the API specifies.
    InvalidResponse,
    /// An error the proxy named (`errorName` of its JSON error body) with its HTTP status.
    Proxy { status: u16, name: String },
}

impl XksFailure {
    pub fn named(&self, name: &str) -> bool {
        matches!(self, XksFailure::Proxy { name: n, .. } if n == name)
    }
}

/// `AES_GCM` ciphertext parts the proxy returns for an encrypt call.
pub(crate) struct Sealed {
    pub ciphertext: Vec<u8>,
    pub iv: Vec<u8>,
    pub tag: Vec<u8>,
    pub metadata: Vec<u8>,
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: `new_from_slice` does not fail for it.
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn amz_date(t: OffsetDateTime) -> String {
    format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", t.year(), t.month() as u8, t.day(), t.hour(), t.minute(), t.second())
}

/// The `host[:port]` of an endpoint URI.
fn host_of(endpoint: &str) -> &str {
    endpoint.split_once("://").map_or(endpoint, |(_, h)| h)
}

/// SigV4 `Authorization` for a POST of `body` to `path` (header names `host;x-amz-date`).
fn authorization(proxy: &Proxy<'_>, path: &str, date: &str, body: &[u8]) -> String {
    let day = date.get(..8).unwrap_or(date);
    let host = host_of(proxy.endpoint);
    let canonical = format!(
        "POST\n{path}\n\nhost:{host}\nx-amz-date:{date}\n\nhost;x-amz-date\n{}",
        hex::encode(Sha256::digest(body))
    );
    let scope = format!("{day}/{}/kms-xks-proxy/aws4_request", proxy.region);
    let to_sign = format!("AWS4-HMAC-SHA256\n{date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
    let secret = Zeroizing::new(format!("AWS4{}", proxy.secret));
    let k = hmac(secret.as_bytes(), day.as_bytes());
    let k = hmac(&k, proxy.region.as_bytes());
    let k = hmac(&k, b"kms-xks-proxy");
    let k = hmac(&k, b"aws4_request");
    let sig = hex::encode(hmac(&k, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=host;x-amz-date, Signature={sig}",
        proxy.access_key_id
    )
}

/// POST `body` to `<endpoint><path><suffix>`, signed; the proxy's JSON answer.
fn call(proxy: &Proxy<'_>, suffix: &str, body: &Value) -> Result<Value, XksFailure> {
    let path = format!("{}{suffix}", proxy.path);
    let url = format!("{}{path}", proxy.endpoint);
    let body = body.to_string();
    let date = amz_date(OffsetDateTime::now_utc());
    let auth = authorization(proxy, &path, &date, body.as_bytes());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(XKS_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let sent = agent
        .post(&url)
        .header("content-type", "application/json")
        .header("x-amz-date", &date)
        .header("authorization", &auth)
        .send(body);
    let mut resp = match sent {
        Ok(r) => r,
        Err(ureq::Error::Timeout(_)) => return Err(XksFailure::TimedOut),
        Err(e) => {
            tracing::warn!(endpoint = %proxy.endpoint, error = %e, "external key store proxy not reachable");
            return Err(XksFailure::Unreachable);
        }
    };
    let status = resp.status().as_u16();
    let text = match resp.body_mut().with_config().limit(MAX_RESPONSE).read_to_string() {
        Ok(t) => t,
        Err(ureq::Error::Timeout(_)) => return Err(XksFailure::TimedOut),
        Err(_) => return Err(XksFailure::InvalidResponse),
    };
    let v: Value = serde_json::from_str(&text).map_err(|_| XksFailure::InvalidResponse)?;
    if status == 200 {
        return Ok(v);
    }
    let name = v.get("errorName").and_then(Value::as_str).ok_or(XksFailure::InvalidResponse)?;
    tracing::info!(endpoint = %proxy.endpoint, status, error = %name, "external key store proxy answered an error");
    Err(XksFailure::Proxy { status, name: name.chars().take(64).collect() })
}

fn b64_member(v: &Value, name: &str) -> Result<Vec<u8>, XksFailure> {
    v.get(name).and_then(Value::as_str).and_then(|s| B64.decode(s).ok()).ok_or(XksFailure::InvalidResponse)
}

/// `GetHealthStatus`: the proxy answers and at least one external key manager is `ACTIVE`
/// (otherwise the proxy counts as unreachable, as AWS's XksProxyUriUnreachableException says).
pub(crate) fn health(proxy: &Proxy<'_>, operation: &str, request_id: &str) -> Result<(), XksFailure> {
    let v =
        call(proxy, "/health", &json!({"requestMetadata": {"kmsRequestId": request_id, "kmsOperation": operation}}))?;
    let fleet = v.get("ekmFleetDetails").and_then(Value::as_array).ok_or(XksFailure::InvalidResponse)?;
    if v.get("xksProxyFleetSize").and_then(Value::as_u64).is_none() {
        return Err(XksFailure::InvalidResponse);
    }
    if !fleet.iter().any(|e| e.get("healthStatus").and_then(Value::as_str) == Some("ACTIVE")) {
        return Err(XksFailure::Unreachable);
    }
    Ok(())
}

/// The external key's metadata: `(keySpec, keyUsage, keyStatus)` checked to be an enabled
/// AES-256 key that encrypts and decrypts: `Ok(false)` when it is not.
pub(crate) fn key_usable(proxy: &Proxy<'_>, xks_key_id: &str, metadata: &Value) -> Result<bool, XksFailure> {
    let v = call(proxy, &format!("/keys/{xks_key_id}/metadata"), &json!({"requestMetadata": metadata}))?;
    let spec = v.get("keySpec").and_then(Value::as_str).ok_or(XksFailure::InvalidResponse)?;
    let usage = v.get("keyUsage").and_then(Value::as_array).ok_or(XksFailure::InvalidResponse)?;
    let status = v.get("keyStatus").and_then(Value::as_str).ok_or(XksFailure::InvalidResponse)?;
    let has = |u: &str| usage.iter().any(|x| x.as_str() == Some(u));
    Ok(spec == "AES_256" && has("ENCRYPT") && has("DECRYPT") && status == "ENABLED")
}

/// The proxy's AES-GCM encryption of `plaintext` (KMS's own ciphertext) under `xks_key_id`.
pub(crate) fn encrypt(
    proxy: &Proxy<'_>,
    xks_key_id: &str,
    metadata: &Value,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Sealed, XksFailure> {
    let v = call(
        proxy,
        &format!("/keys/{xks_key_id}/encrypt"),
        &json!({
            "requestMetadata": metadata,
            "plaintext": B64.encode(plaintext),
            "encryptionAlgorithm": "AES_GCM",
            "additionalAuthenticatedData": B64.encode(aad),
        }),
    )?;
    let metadata = match v.get("ciphertextMetadata") {
        None | Some(Value::Null) => Vec::new(),
        Some(_) => b64_member(&v, "ciphertextMetadata")?,
    };
    let sealed = Sealed {
        ciphertext: b64_member(&v, "ciphertext")?,
        iv: b64_member(&v, "initializationVector")?,
        tag: b64_member(&v, "authenticationTag")?,
        metadata,
    };
    // The blob stores each part's length in one byte (the spec: IV 12 or 16, tag 16, metadata ≤ 20).
    if sealed.iv.is_empty() || sealed.iv.len() > 255 || sealed.tag.len() != 16 || sealed.metadata.len() > 255 {
        return Err(XksFailure::InvalidResponse);
    }
    Ok(sealed)
}

/// The proxy's decryption of what [`encrypt`] returned.
pub(crate) fn decrypt(
    proxy: &Proxy<'_>,
    xks_key_id: &str,
    metadata: &Value,
    sealed: &Sealed,
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, XksFailure> {
    let mut body = json!({
        "requestMetadata": metadata,
        "ciphertext": B64.encode(&sealed.ciphertext),
        "encryptionAlgorithm": "AES_GCM",
        "initializationVector": B64.encode(&sealed.iv),
        "authenticationTag": B64.encode(&sealed.tag),
        "additionalAuthenticatedData": B64.encode(aad),
    });
    if !sealed.metadata.is_empty() {
        crate::model::put(&mut body, "ciphertextMetadata", json!(B64.encode(&sealed.metadata)));
    }
    let v = call(proxy, &format!("/keys/{xks_key_id}/decrypt"), &body)?;
    Ok(Zeroizing::new(b64_member(&v, "plaintext")?))
}

/// The blob body of a double-encrypted ciphertext: `[iv len][iv][tag len][tag][metadata len]
/// [metadata][proxy ciphertext]`.
pub(crate) fn encode(sealed: &Sealed) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(3 + sealed.iv.len() + sealed.tag.len() + sealed.metadata.len() + sealed.ciphertext.len());
    for part in [&sealed.iv, &sealed.tag, &sealed.metadata] {
        out.push(part.len() as u8);
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&sealed.ciphertext);
    out
}

/// What [`encode`] wrote; `None` when it does not parse.
pub(crate) fn decode(mut b: &[u8]) -> Option<Sealed> {
    let mut parts: Vec<Vec<u8>> = Vec::with_capacity(3);
    for _ in 0..3 {
        let (len, rest) = b.split_first()?;
        let (part, rest) = rest.split_at_checked(*len as usize)?;
        parts.push(part.to_vec());
        b = rest;
    }
    if b.is_empty() {
        return None;
    }
    let metadata = parts.pop()?;
    let tag = parts.pop()?;
    let iv = parts.pop()?;
    Some(Sealed { ciphertext: b.to_vec(), iv, tag, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_body_round_trips() {
        let s = Sealed { ciphertext: vec![1, 2, 3], iv: vec![9; 12], tag: vec![7; 16], metadata: vec![] };
        let d = decode(&encode(&s)).unwrap();
        assert_eq!((d.ciphertext, d.iv, d.tag, d.metadata), (s.ciphertext, s.iv, s.tag, s.metadata));
        assert!(decode(&[12, 1]).is_none());
    }

    #[test]
    fn signature_matches_aws_example_shape() {
        let p = Proxy {
            endpoint: "https://example.com",
            path: "/kms/xks/v1",
            access_key_id: "ABCDEFGHIJKLMNOPQRST",
            secret: "a",
            region: "us-east-1",
        };
        let a = authorization(&p, "/kms/xks/v1/health", "20240101T000000Z", b"{}");
        assert!(a.starts_with(
            "AWS4-HMAC-SHA256 Credential=ABCDEFGHIJKLMNOPQRST/20240101/us-east-1/kms-xks-proxy/aws4_request, SignedHeaders=host;x-amz-date, Signature="
        ));
    }
}
