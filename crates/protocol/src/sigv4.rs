//! AWS Signature Version 4 verification: the `Authorization` header form and presigned query strings.
//!
//! Two steps, so the caller can look up the secret in between:
//! * [`parse`] reads what the request claims (access key, scope, timestamp, signed headers, signature)
//!   without any secret, applying AWS's auth error ordering and messages.
//! * [`verify`] checks the clock window, that SignedHeaders lists headers the request carries
//!   (sorted, once) and the payload hash, then recomputes the signature and compares the two in
//!   constant time. Outside S3 the payload hash signed is always the SHA-256 of the body received
//!   (`UNSIGNED-PAYLOAD` is S3's alone); S3's rules are [`VerifyOptions`] for [`verify_with`].
//!
//! Anything SigV4 reads once but the request carries twice (`Authorization`, `X-Amz-Date`, the
//! security token, an Authorization parameter, a presigned `X-Amz-*` parameter) is refused with
//! IncompleteSignature: which copy was signed would be ambiguous.
//!
//! AWS's own signer (`aws-sigv4`) is the authority on the signature: [`verify`] can re-sign the
//! request with *its* SignedHeaders, timestamp and credential scope, so the canonicalisation (path
//! normalisation and double percent-encoding, query sorting and re-encoding, header value
//! trimming, repeated headers) is exactly the SDKs', not ours. Doing that on every call is costly
//! (Strings, formatting, four HMACs to derive the signing key), so verification first tries a fast
//! path (`fast.rs`):
//! * **The common SDK shape only.** Header-form signatures whose canonical request is unambiguous:
//!   a path of unreserved characters and `/` that normalisation leaves unchanged, a query of
//!   simple `k=v` pairs (unreserved characters, `%XX` of ASCII, `+`), lowercase SignedHeaders in
//!   strictly ascending order all present in the request, visible-ASCII values. The canonical
//!   request and string to sign are streamed into SHA-256/HMAC without building Strings. Anything
//!   else (presigned URLs included) goes straight to aws-sigv4.
//! * **A signing-key cache.** The derived key depends only on (secret, date, region, service), so
//!   it is kept in a small direct-mapped cache (256 slots, a mutex each; a new scope overwrites its
//!   slot). Entries hold a copy of the secret and the key, in memory only, zeroized when replaced,
//!   never logged.
//! * **Why it cannot change a decision.** A fast-path match accepts; a mismatch does not reject but
//!   falls back to aws-sigv4, which decides as before, so the fast path never rejects on its own.
//!   It never accepts what aws-sigv4 would reject because where it answers it computes aws-sigv4's
//!   signature: the differential property tests in `fast/tests.rs` sign random requests (methods,
//!   paths, queries, header sets and values, bodies, payload modes, regions, services, dates,
//!   session tokens) with aws-sigv4, mutate them (header values, path, query, body, date, region,
//!   method, SignedHeaders list), and check that the fast path's signature equals aws-sigv4's
//!   wherever it answers and that [`verify`] decides exactly as aws-sigv4-only verification; its
//!   canonical requests also equal the AWS test suite's `.creq` files.
//!
//! Errors and messages follow AWS's documented auth error ordering (MissingAuthenticationToken,
//! IncompleteSignature, SignatureDoesNotMatch with its "Signature expired" / "not yet current" /
//! credential scope variants). [`AuthError::to_aws_error`] gives the awsQuery (IAM, STS) shape;
//! [`AuthError::to_aws_error_for`] the JSON services' (`InvalidSignatureException`, …).
//!
//! Known limits (no SDK produces these): a signed `X-Amz-Date` header in ISO 8601 *extended* form
//! parses but cannot verify (the signer writes the basic form into the canonical request), and
//! signed header values that are not visible ASCII answer SignatureDoesNotMatch. Over HTTP/2 the
//! caller must supply `host` from the `:authority` before calling [`parse`] (the server's
//! connection layer does).

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::{echo, AwsError, Protocol};

/// The only algorithm SigV4 verification accepts.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash a client sends when it does not sign the body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// How far a request's timestamp may be from the server's clock, either way.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(15);
/// The longest `X-Amz-Expires` SigV4 allows (seven days).
pub const MAX_PRESIGN_EXPIRES: u64 = 604_800;

const TERMINATOR: &str = "aws4_request";
// Header names looked up on every call, built once (a `&str` name is parsed on each lookup).
const X_AMZ_DATE: http::HeaderName = http::HeaderName::from_static("x-amz-date");
const X_AMZ_SECURITY_TOKEN: http::HeaderName = http::HeaderName::from_static("x-amz-security-token");
const X_AMZ_CONTENT_SHA256: http::HeaderName = http::HeaderName::from_static("x-amz-content-sha256");
const MSG_SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. \
Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const MSG_MISSING_TOKEN: &str = "Request is missing Authentication Token";
const MSG_INVALID_TOKEN: &str = "The security token included in the request is invalid.";
const MSG_EXPIRED_TOKEN: &str = "The security token included in the request is expired";

/// The parts of an HTTP request SigV4 covers (raw, as received).
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// Raw, percent-encoded as sent.
    pub path: &'a str,
    /// Raw query string without `?`.
    pub query: &'a str,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

/// What the request claims (parsed without any secret).
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key ID, the scope's date, region and service, the signature, then the signed
    /// header names joined by `;`: one allocation per parse rather than one per part.
    text: String,
    /// Where each of the first five parts of `text` ends.
    ends: [usize; 5],
    /// From `X-Amz-Date` (header or query), else the `Date` header.
    pub timestamp: OffsetDateTime,
    /// `X-Amz-Security-Token` (header, or query when presigned). Checking it is the caller's job.
    pub session_token: Option<String>,
    /// Signed in the query string (`X-Amz-Algorithm=…`) rather than the `Authorization` header.
    pub presigned: bool,
    /// `X-Amz-Expires` of a presigned request.
    pub expires_seconds: Option<u64>,
}

impl Authorization {
    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    pub fn access_key_id(&self) -> &str {
        self.part(0)
    }

    /// `yyyymmdd`, the credential scope's date.
    pub fn date(&self) -> &str {
        self.part(1)
    }

    pub fn region(&self) -> &str {
        self.part(2)
    }

    pub fn service(&self) -> &str {
        self.part(3)
    }

    /// Lowercase hex, as sent.
    pub fn signature(&self) -> &str {
        self.part(4)
    }

    /// As listed in SignedHeaders (lowercase names, in the order given, empty names left out).
    pub fn signed_headers(&self) -> impl Iterator<Item = &str> + Clone {
        SplitByte::new(self.signed_header_list(), b';')
    }

    /// The SignedHeaders names joined by `;` (never empty: `host` is always signed).
    fn signed_header_list(&self) -> &str {
        &self.text[self.ends[4]..]
    }
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorization")
            .field("access_key_id", &self.access_key_id())
            .field("region", &self.region())
            .field("service", &self.service())
            .field("date", &self.date())
            .field("timestamp", &self.timestamp)
            .field("signed_headers", &self.signed_headers().collect::<Vec<_>>())
            .field("signature", &self.signature())
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .field("presigned", &self.presigned)
            .field("expires_seconds", &self.expires_seconds)
            .finish()
    }
}

/// Why a request failed authentication. `Display` is AWS's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor `X-Amz-Algorithm=AWS4-HMAC-SHA256` in the query.
    #[error("{}", MSG_MISSING_TOKEN)]
    MissingAuthenticationToken,
    /// Signed both in the header and in the query string. AWS answers SignatureDoesNotMatch with
    /// an empty message.
    #[error("")]
    AmbiguousSignature,
    /// The signature's parameters are malformed or missing (AWS's message).
    #[error("{0}")]
    IncompleteSignature(String),
    /// The signature's claims are inconsistent: host not signed, bad credential scope (AWS's message).
    #[error("{0}")]
    InvalidScope(String),
    /// The timestamp is more than 15 minutes in the past.
    #[error(
        "Signature expired: {} is now earlier than {} ({} - 15 min.)",
        iso_basic(*timestamp),
        iso_basic(*now - MAX_CLOCK_SKEW),
        iso_basic(*now)
    )]
    SignatureExpired { timestamp: OffsetDateTime, now: OffsetDateTime },
    /// The timestamp is more than 15 minutes in the future.
    #[error(
        "Signature not yet current: {} is still later than {} ({} + 15 min.)",
        iso_basic(*timestamp),
        iso_basic(*now + MAX_CLOCK_SKEW),
        iso_basic(*now)
    )]
    SignatureNotYetCurrent { timestamp: OffsetDateTime, now: OffsetDateTime },
    /// A presigned URL used after `X-Amz-Date` + `X-Amz-Expires` (only where the service applies
    /// it: [`VerifyOptions::presigned_expiry`]).
    #[error("Request has expired")]
    PresignedExpired,
    /// A header SigV4 reads (`Authorization`, `X-Amz-Date`, `X-Amz-Security-Token`, …) or a
    /// presigned query parameter appears more than once: which one was signed is ambiguous.
    #[error("{0}")]
    Duplicate(String),
    /// The recomputed signature differs.
    #[error("{}", MSG_SIGNATURE_MISMATCH)]
    SignatureDoesNotMatch,
    /// `x-amz-content-sha256` is neither UNSIGNED-PAYLOAD nor the body's SHA-256. Reported as
    /// SignatureDoesNotMatch: for a non-S3 service the signed payload hash is the body's.
    #[error("{}", MSG_SIGNATURE_MISMATCH)]
    PayloadHashMismatch,
    /// Unknown or inactive access key, or a session token that does not belong to it (decided by
    /// the caller).
    #[error("{}", MSG_INVALID_TOKEN)]
    InvalidClientTokenId,
    /// The session credentials have expired (decided by the caller).
    #[error("{}", MSG_EXPIRED_TOKEN)]
    ExpiredToken,
}

impl AuthError {
    /// The error as the awsQuery services (IAM, STS) report it.
    pub fn to_aws_error(&self) -> AwsError {
        let (code, status) = match self {
            AuthError::MissingAuthenticationToken => ("MissingAuthenticationToken", 403),
            AuthError::IncompleteSignature(_) | AuthError::Duplicate(_) => ("IncompleteSignature", 400),
            AuthError::PresignedExpired => ("AccessDenied", 403),
            AuthError::AmbiguousSignature
            | AuthError::InvalidScope(_)
            | AuthError::SignatureExpired { .. }
            | AuthError::SignatureNotYetCurrent { .. }
            | AuthError::SignatureDoesNotMatch
            | AuthError::PayloadHashMismatch => ("SignatureDoesNotMatch", 403),
            AuthError::InvalidClientTokenId => ("InvalidClientTokenId", 403),
            AuthError::ExpiredToken => ("ExpiredToken", 403),
        };
        AwsError::new(code, self.to_string(), status)
    }

    /// The error as a service speaking `protocol` reports it: awsQuery as [`Self::to_aws_error`];
    /// the JSON protocols use the `…Exception` codes (`InvalidSignatureException`,
    /// `UnrecognizedClientException`, …), HTTP 400 for awsJson and 403 for restJson1.
    pub fn to_aws_error_for(&self, protocol: Protocol) -> AwsError {
        let status = match protocol {
            Protocol::AwsQuery => return self.to_aws_error(),
            Protocol::AwsJson1_0 | Protocol::AwsJson1_1 => 400,
            Protocol::RestJson1 => 403,
        };
        let code = match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature(_) | AuthError::Duplicate(_) => "IncompleteSignatureException",
            AuthError::PresignedExpired => "AccessDeniedException",
            AuthError::AmbiguousSignature
            | AuthError::InvalidScope(_)
            | AuthError::SignatureExpired { .. }
            | AuthError::SignatureNotYetCurrent { .. }
            | AuthError::SignatureDoesNotMatch
            | AuthError::PayloadHashMismatch => "InvalidSignatureException",
            AuthError::InvalidClientTokenId => "UnrecognizedClientException",
            AuthError::ExpiredToken => "ExpiredTokenException",
        };
        AwsError::new(code, self.to_string(), status)
    }

    /// `InvalidClientTokenId` (awsQuery): unknown access key or a session token that does not match.
    pub fn invalid_client_token_id() -> AwsError {
        AuthError::InvalidClientTokenId.to_aws_error()
    }

    /// `ExpiredToken` (awsQuery): the session credentials have expired.
    pub fn expired_token() -> AwsError {
        AuthError::ExpiredToken.to_aws_error()
    }
}

/// Read the request's SigV4 claims (header or presigned query form), without any secret.
///
/// Applies AWS's auth error ordering up to the credential scope: missing/duplicate auth,
/// algorithm, `key=value` shape, required parameters, `host` signed, timestamp format, credential
/// shape, and scope terminator/date. Region and service are returned for the caller to route on.
pub fn parse(req: &SignedRequest<'_>) -> Result<Authorization, AuthError> {
    let mut authorizations = req.headers.get_all(http::header::AUTHORIZATION).iter();
    let header = authorizations.next();
    let query = QueryAuth::scan(req.query);
    match (header, query.algorithm.is_some()) {
        (Some(_), true) => Err(AuthError::AmbiguousSignature),
        (None, false) => Err(AuthError::MissingAuthenticationToken),
        (Some(value), false) => {
            if authorizations.next().is_some() {
                return Err(duplicate_header("Authorization"));
            }
            check_single_headers(req.headers)?;
            parse_header(req, &header_str(value))
        }
        (None, true) => {
            if let Some(name) = query.repeated {
                return Err(AuthError::Duplicate(format!(
                    "AWS query-string parameters must include '{name}' only once. Re-examine the query-string parameters."
                )));
            }
            parse_query(query)
        }
    }
}

fn duplicate_header(name: &str) -> AuthError {
    AuthError::Duplicate(format!("The request must include the '{name}' header only once."))
}

/// The headers a header-form signature reads must each come once: with two `X-Amz-Date` (or
/// security tokens, or payload hashes) which one the client signed is ambiguous.
fn check_single_headers(headers: &http::HeaderMap) -> Result<(), AuthError> {
    let once = |name: http::HeaderName, shown: &str| {
        let mut values = headers.get_all(name).iter();
        values.next();
        match values.next() {
            Some(_) => Err(duplicate_header(shown)),
            None => Ok(()),
        }
    };
    once(X_AMZ_DATE, "X-Amz-Date")?;
    once(X_AMZ_SECURITY_TOKEN, "X-Amz-Security-Token")?;
    once(X_AMZ_CONTENT_SHA256, "X-Amz-Content-Sha256")?;
    if !headers.contains_key(X_AMZ_DATE) {
        once(http::header::DATE, "Date")?;
    }
    Ok(())
}

/// Check the request's timestamp against `now` (AWS allows 15 minutes either way; presigned
/// requests too — AWS's query services do not extend or shorten that window by `X-Amz-Expires`).
///
/// [`verify`] calls this; a caller that wants AWS's exact ordering (clock before unknown access
/// key) calls it after [`parse`] and before looking up the key.
pub fn check_time(auth: &Authorization, now: OffsetDateTime) -> Result<(), AuthError> {
    if auth.timestamp < now - MAX_CLOCK_SKEW {
        return Err(AuthError::SignatureExpired { timestamp: auth.timestamp, now });
    }
    if auth.timestamp > now + MAX_CLOCK_SKEW {
        return Err(AuthError::SignatureNotYetCurrent { timestamp: auth.timestamp, now });
    }
    Ok(())
}

/// [`check_time`] under a service's rules: with [`VerifyOptions::presigned_expiry`] (S3) a
/// presigned URL is good from its `X-Amz-Date` (15 minutes of clock skew allowed) until
/// `X-Amz-Expires` seconds later (15 minutes when absent), then answers AccessDenied "Request has
/// expired".
pub fn check_time_with(auth: &Authorization, now: OffsetDateTime, options: VerifyOptions) -> Result<(), AuthError> {
    if !(options.presigned_expiry && auth.presigned) {
        return check_time(auth, now);
    }
    if auth.timestamp > now + MAX_CLOCK_SKEW {
        return Err(AuthError::SignatureNotYetCurrent { timestamp: auth.timestamp, now });
    }
    let lifetime = auth.expires_seconds.map_or(MAX_CLOCK_SKEW, |s| Duration::seconds(s as i64));
    if now > auth.timestamp + lifetime {
        return Err(AuthError::PresignedExpired);
    }
    Ok(())
}

/// What a service accepts beyond SigV4's rules for every AWS service but S3. The default is every
/// service Rampart serves today; S3 (when it comes) opts in to both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// S3's rule: the canonical request's payload hash is what `x-amz-content-sha256` (or the
    /// presigned `X-Amz-Content-Sha256`) claims, `UNSIGNED-PAYLOAD` included, and a claimed hash
    /// must still be the body's. Off (every other service): the payload hash is always the SHA-256
    /// of the body as received, so a request signed with `UNSIGNED-PAYLOAD`, or replayed with
    /// another body, fails with SignatureDoesNotMatch.
    pub claimed_payload_hash: bool,
    /// S3's rule: a presigned URL is good from `X-Amz-Date` for `X-Amz-Expires` seconds, and
    /// refused after that with AccessDenied "Request has expired". Off (STS, IAM and the other
    /// query services): `X-Amz-Expires` must still be a number of at most seven days, but the
    /// window is the 15-minute clock window of every request, as those services apply it.
    pub presigned_expiry: bool,
}

/// Verify the signature of `req` (as parsed into `auth`) with `secret_access_key`, at `now`, under
/// the rules of every service but S3 ([`VerifyOptions::default`]).
pub fn verify(
    req: &SignedRequest<'_>,
    auth: &Authorization,
    secret_access_key: &str,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    verify_with(req, auth, secret_access_key, now, VerifyOptions::default())
}

/// [`verify`] under a service's own rules.
pub fn verify_with(
    req: &SignedRequest<'_>,
    auth: &Authorization,
    secret_access_key: &str,
    now: OffsetDateTime,
    options: VerifyOptions,
) -> Result<(), AuthError> {
    check_time_with(auth, now, options)?;
    check_signed_headers_sent(req, auth)?;
    let payload = payload_hash(req, auth, options);
    // The body must be what the request claims it is (when it claims anything).
    if !payload.matches_body {
        return Err(AuthError::PayloadHashMismatch);
    }
    // A match on the fast path is the signature aws-sigv4 would compute; on a mismatch (or a
    // request it does not handle) aws-sigv4 decides, so the fast path never rejects on its own.
    let fast_match = fast::signature(req, auth, secret_access_key, &payload.signed)
        .is_some_and(|expected| bool::from(expected.ct_eq(auth.signature().as_bytes())));
    if !fast_match {
        let expected = expected_signature(req, auth, secret_access_key, payload.signed)?;
        if !bool::from(expected.as_bytes().ct_eq(auth.signature().as_bytes())) {
            return Err(AuthError::SignatureDoesNotMatch);
        }
    }
    Ok(())
}

/// Every SignedHeaders name must name a header the request carries, and the list must be in
/// SigV4's order (lowercase names strictly ascending: sorted, no repeats). Otherwise the claimed
/// list is not the one the client signed, and AWS refuses it: SignatureDoesNotMatch.
fn check_signed_headers_sent(req: &SignedRequest<'_>, auth: &Authorization) -> Result<(), AuthError> {
    let mut previous: Option<&str> = None;
    for name in auth.signed_headers() {
        if previous.is_some_and(|p| !lowercase_less(p, name)) {
            return Err(AuthError::SignatureDoesNotMatch);
        }
        previous = Some(name);
        if !req.headers.contains_key(name) {
            return Err(AuthError::SignatureDoesNotMatch);
        }
    }
    Ok(())
}

/// `a.to_ascii_lowercase() < b.to_ascii_lowercase()`, without allocating.
fn lowercase_less(a: &str, b: &str) -> bool {
    a.bytes().map(|c| c.to_ascii_lowercase()).lt(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// The payload hash of the canonical request, and whether the body agrees with what the request
/// claims.
struct PayloadHash<'a> {
    signed: Cow<'a, str>,
    matches_body: bool,
}

fn payload_hash<'a>(req: &SignedRequest<'a>, auth: &Authorization, options: VerifyOptions) -> PayloadHash<'a> {
    let claimed: Option<Cow<'a, str>> = if auth.presigned {
        QueryAuth::scan(req.query).content_sha256
    } else {
        req.headers.get(X_AMZ_CONTENT_SHA256).map(header_str)
    };
    let body_hash = || {
        let mut hex = [0u8; 64];
        hex::encode_to_slice(Sha256::digest(req.body), &mut hex).expect("32 bytes make 64 hex digits");
        // Hex digits only.
        String::from(std::str::from_utf8(&hex).unwrap_or_default())
    };
    match claimed {
        None => PayloadHash { signed: Cow::Owned(body_hash()), matches_body: true },
        Some(c) if options.claimed_payload_hash && c == UNSIGNED_PAYLOAD => {
            PayloadHash { signed: c, matches_body: true }
        }
        Some(c) if options.claimed_payload_hash => {
            let matches_body = c.eq_ignore_ascii_case(&body_hash());
            PayloadHash { signed: c, matches_body }
        }
        // Not S3: the body's own hash is signed, whatever the request claims; a claim that is
        // not the body's hash (`UNSIGNED-PAYLOAD` included) is refused.
        Some(c) => {
            let body = body_hash();
            let matches_body = c.eq_ignore_ascii_case(&body);
            PayloadHash { signed: Cow::Owned(body), matches_body }
        }
    }
}

/// Re-sign the request with AWS's signer, using the request's own signed headers, timestamp and
/// scope, and return the hex signature.
fn expected_signature(
    req: &SignedRequest<'_>,
    auth: &Authorization,
    secret_access_key: &str,
    payload_hash: Cow<'_, str>,
) -> Result<String, AuthError> {
    // Only the headers the client signed, every value of each, in arrival order.
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(auth.signed_headers().count() + 1);
    for name in auth.signed_headers() {
        for value in req.headers.get_all(name) {
            // Values that are not visible ASCII cannot be re-signed faithfully.
            let value = value.to_str().map_err(|_| AuthError::SignatureDoesNotMatch)?;
            headers.push((name, value));
        }
    }

    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Double;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Enabled;
    settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
    settings.signature_location = SignatureLocation::Headers;
    // "Include" so a signed X-Amz-Security-Token header is kept; the identity carries no token, so
    // the signer adds none of its own.
    settings.session_token_mode = SessionTokenMode::Include;
    // The signer adds `host` and `x-amz-date` on its own; keep them out unless the client signed them
    // (a `Date`-only request, a presigned URL). Everything else it only signs if we pass it.
    settings.excluded_headers = Some(
        ["host", "x-amz-date"]
            .into_iter()
            .filter(|h| !auth.signed_headers().any(|s| s == *h))
            .map(Cow::Borrowed)
            .collect(),
    );

    // The query as signed: a presigned request's signature is not part of it. Its other X-Amz-*
    // parameters are, exactly as sent.
    let query = if auth.presigned { strip_signature_param(req.query) } else { Cow::Borrowed(req.query) };
    let path = if req.path.is_empty() { "/" } else { req.path };
    // The authority is a placeholder: the signer needs one but only uses it when `host` is not
    // signed, and then `host` is excluded.
    let uri = if query.is_empty() {
        format!("http://rampart.invalid{path}")
    } else {
        format!("http://rampart.invalid{path}?{query}")
    };

    let identity = Credentials::new(auth.access_key_id(), secret_access_key, None, None, "rampart").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(auth.region())
        .name(auth.service())
        .time(SystemTime::from(auth.timestamp))
        .settings(settings)
        .build()
        .map_err(|_| AuthError::SignatureDoesNotMatch)?
        .into();
    let signable = SignableRequest::new(
        req.method,
        uri,
        headers.into_iter(),
        SignableBody::Precomputed(payload_hash.into_owned()),
    )
    .map_err(|_| AuthError::SignatureDoesNotMatch)?;
    let output = sign(signable, &params).map_err(|_| AuthError::SignatureDoesNotMatch)?;
    Ok(output.signature().to_string())
}

/// The `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` form.
fn parse_header(req: &SignedRequest<'_>, raw: &str) -> Result<Authorization, AuthError> {
    let raw = raw.trim();
    let (algorithm, params) = split_once_byte(raw, b' ').unwrap_or((raw, ""));
    if algorithm != ALGORITHM {
        return Err(AuthError::IncompleteSignature(format!("Unsupported AWS 'algorithm': '{}'.", echo(algorithm))));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for param in SplitByte::new(params, b',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = split_once_byte(param, b'=') else {
            return Err(AuthError::IncompleteSignature(format!(
                "'{}' not a valid key=value pair (missing equal-sign) in Authorization header: '{}'",
                echo(param),
                echo(raw)
            )));
        };
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        // A repeated parameter is ambiguous (which one did the client sign with?): refused.
        if slot.replace(value.trim()).is_some() {
            return Err(AuthError::Duplicate(format!(
                "'{}' appears more than once in Authorization header: '{}'",
                key.trim(),
                echo(raw)
            )));
        }
    }
    let date_header = header_lossy(req.headers, X_AMZ_DATE).or_else(|| header_lossy(req.headers, http::header::DATE));

    let mut missing = Vec::new();
    if credential.is_none() {
        missing.push("Authorization header requires 'Credential' parameter.");
    }
    if signature.is_none() {
        missing.push("Authorization header requires 'Signature' parameter.");
    }
    if signed_headers.is_none() {
        missing.push("Authorization header requires 'SignedHeaders' parameter.");
    }
    if date_header.is_none() {
        missing.push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some(date)) =
        (credential, signed_headers, signature, date_header)
    else {
        return Err(AuthError::IncompleteSignature(format!("{} Authorization={}", missing.join(" "), echo(raw))));
    };

    check_signed_headers(signed_headers)?;
    let timestamp = parse_timestamp(&date, true)?;
    let scope = parse_credential(credential, timestamp)?;
    let session_token = header_lossy(req.headers, X_AMZ_SECURITY_TOKEN).map(Cow::into_owned);
    Ok(scope.into_authorization(timestamp, signed_headers, signature, session_token, false, None))
}

/// The presigned form: `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-SignedHeaders`,
/// `X-Amz-Signature` (and optionally `X-Amz-Expires`, `X-Amz-Security-Token`) in the query string.
fn parse_query(query: QueryAuth<'_>) -> Result<Authorization, AuthError> {
    if query.algorithm.as_deref() != Some(ALGORITHM) {
        // AWS treats an unknown query algorithm as no signature at all.
        return Err(AuthError::MissingAuthenticationToken);
    }
    let mut missing = Vec::new();
    if query.credential.is_none() {
        missing.push("AWS query-string parameters must include 'X-Amz-Credential'.");
    }
    if query.signature.is_none() {
        missing.push("AWS query-string parameters must include 'X-Amz-Signature'.");
    }
    if query.signed_headers.is_none() {
        missing.push("AWS query-string parameters must include 'X-Amz-SignedHeaders'.");
    }
    if query.date.is_none() {
        missing.push("AWS query-string parameters must include 'X-Amz-Date'.");
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some(date)) =
        (query.credential, query.signed_headers, query.signature, query.date)
    else {
        return Err(AuthError::IncompleteSignature(format!(
            "{} Re-examine the query-string parameters.",
            missing.join(" ")
        )));
    };

    check_signed_headers(&signed_headers)?;
    let timestamp = parse_timestamp(&date, false)?;
    let scope = parse_credential(&credential, timestamp)?;
    let expires = match query.expires {
        None => None,
        Some(e) => match e.parse::<u64>() {
            Ok(secs) if secs <= MAX_PRESIGN_EXPIRES => Some(secs),
            Ok(_) => {
                return Err(AuthError::IncompleteSignature(format!(
                    "X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES}"
                )))
            }
            Err(_) => return Err(AuthError::IncompleteSignature("X-Amz-Expires should be a number".to_string())),
        },
    };
    Ok(scope.into_authorization(
        timestamp,
        &signed_headers,
        &signature,
        query.security_token.map(Cow::into_owned),
        true,
        expires,
    ))
}

/// SignedHeaders (`;`-separated, empty names ignored) must include `host` (AWS rule: the host is
/// always signed).
fn check_signed_headers(list: &str) -> Result<(), AuthError> {
    if !SplitByte::new(list, b';').any(|h| h.eq_ignore_ascii_case("host") || h == ":authority") {
        return Err(AuthError::InvalidScope(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_string(),
        ));
    }
    Ok(())
}

/// The credential's parts: `AKID/yyyymmdd/region/service/aws4_request`.
struct Scope<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

impl Scope<'_> {
    /// `signed_headers` as sent (checked by [`check_signed_headers`]).
    fn into_authorization(
        self,
        timestamp: OffsetDateTime,
        signed_headers: &str,
        signature: &str,
        session_token: Option<String>,
        presigned: bool,
        expires_seconds: Option<u64>,
    ) -> Authorization {
        let parts = [self.access_key_id, self.date, self.region, self.service, signature];
        let mut text = String::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + signed_headers.len());
        let mut ends = [0; 5];
        for (end, part) in ends.iter_mut().zip(parts) {
            text.push_str(part);
            *end = text.len();
        }
        if has_empty_names(signed_headers) {
            for name in SplitByte::new(signed_headers, b';').filter(|h| !h.is_empty()) {
                if text.len() > ends[4] {
                    text.push(';');
                }
                text.push_str(name);
            }
        } else {
            text.push_str(signed_headers);
        }
        Authorization { text, ends, timestamp, session_token, presigned, expires_seconds }
    }
}

fn parse_credential(credential: &str, timestamp: OffsetDateTime) -> Result<Scope<'_>, AuthError> {
    let Some([access_key_id, date, region, service, terminator]) = split5(credential) else {
        return Err(AuthError::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
            echo(credential)
        )));
    };
    // AWS reports every scope problem at once, each sentence ending in ". ".
    let mut problems = String::new();
    if !is_valid_region(region) {
        problems.push_str(&format!("Credential should be scoped to a valid region, not '{}'. ", echo(region)));
    }
    if service.is_empty() {
        problems.push_str(&format!("Credential should be scoped to correct service: '{}'. ", echo(service)));
    }
    if terminator != TERMINATOR {
        problems.push_str(&format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'. ",
            echo(terminator)
        ));
    }
    if !scope_date_matches(date, timestamp) {
        let http_date = iso_basic(timestamp);
        problems.push_str(&format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{http_date}'.",
            echo(date),
            &http_date[..8]
        ));
    }
    if !problems.is_empty() {
        return Err(AuthError::InvalidScope(problems.trim_end().to_string()));
    }
    if access_key_id.is_empty() {
        return Err(AuthError::InvalidClientTokenId);
    }
    Ok(Scope { access_key_id, date, region, service })
}

/// The five `/`-separated parts of `s`, when there are exactly five (what `split('/')` yields).
fn split5(s: &str) -> Option<[&str; 5]> {
    let mut parts = [""; 5];
    let mut n = 0;
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if b == b'/' {
            *parts.get_mut(n)? = &s[start..i];
            n += 1;
            start = i + 1;
        }
    }
    *parts.get_mut(n)? = &s[start..];
    (n == 4).then_some(parts)
}

/// Whether the credential scope's date is the first 8 characters of [`iso_basic`]`(timestamp)`.
fn scope_date_matches(date: &str, timestamp: OffsetDateTime) -> bool {
    if (0..=9999).contains(&timestamp.to_offset(time::UtcOffset::UTC).year()) {
        // The usual case, without building the string.
        date.as_bytes() == &iso_basic_bytes(timestamp)[..8]
    } else {
        date == &iso_basic(timestamp)[..8]
    }
}

/// Region names as AWS spells them (`us-east-1`, `eu-central-2`, `us-gov-west-1`, `local`…).
fn is_valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 64
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

/// `X-Amz-Date` is ISO 8601 basic (`20150830T123600Z`); AWS also takes the extended form in the
/// header, and `Date` headers in HTTP-date form (`Sun, 30 Aug 2015 12:36:00 GMT`).
fn parse_timestamp(raw: &str, from_header: bool) -> Result<OffsetDateTime, AuthError> {
    let raw = raw.trim();
    if let Some(t) = parse_iso_basic(raw) {
        return Ok(t);
    }
    let basic = format_description!("[year][month][day]T[hour][minute][second]Z");
    if let Ok(t) = PrimitiveDateTime::parse(raw, basic) {
        return Ok(t.assume_utc());
    }
    if from_header {
        if let Ok(t) = OffsetDateTime::parse(raw, &Rfc3339).or_else(|_| OffsetDateTime::parse(raw, &Rfc2822)) {
            return Ok(t.to_offset(time::UtcOffset::UTC));
        }
    }
    Err(AuthError::IncompleteSignature(format!(
        "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
        echo(raw)
    )))
}

/// `20150830T123600Z` read by hand (the common case, without the `time` parser's generality);
/// `None` sends the caller to the full parser, so this only ever accepts what that accepts.
fn parse_iso_basic(raw: &str) -> Option<OffsetDateTime> {
    let b = raw.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let number = |from: usize, to: usize| {
        b[from..to].iter().try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    let month = time::Month::try_from(u8::try_from(number(4, 6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(number(0, 4)?).ok()?, month, number(6, 8)? as u8).ok()?;
    let time = time::Time::from_hms(number(9, 11)? as u8, number(11, 13)? as u8, number(13, 15)? as u8).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// `20150830T123600Z`.
fn iso_basic(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    if (0..=9999).contains(&t.year()) {
        return String::from_utf8_lossy(&iso_basic_bytes(t)).into_owned();
    }
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `20150830T123600Z` without formatting machinery, for years 0..=9999 (the fast path only meets
/// timestamps within minutes of now; other years come out clamped and never match).
fn iso_basic_bytes(t: OffsetDateTime) -> [u8; 16] {
    let t = t.to_offset(time::UtcOffset::UTC);
    let mut out = *b"00000000T000000Z";
    let year = t.year().clamp(0, 9999) as u32;
    let put = |out: &mut [u8; 16], at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(&mut out, 0, 4, year);
    put(&mut out, 4, 2, u8::from(t.month()).into());
    put(&mut out, 6, 2, t.day().into());
    put(&mut out, 9, 2, t.hour().into());
    put(&mut out, 11, 2, t.minute().into());
    put(&mut out, 13, 2, t.second().into());
    out
}

fn header_lossy(headers: &http::HeaderMap, name: http::HeaderName) -> Option<Cow<'_, str>> {
    headers.get(name).map(header_str)
}

/// A header value as text: borrowed when it is UTF-8 (every SDK value is visible ASCII), else
/// decoded lossily. The same text as `to_str` (visible ASCII) with a lossy fallback gave: what
/// `to_str` accepts is UTF-8, and UTF-8 decodes lossily to itself; `from_utf8` checks ASCII a
/// word at a time.
fn header_str(value: &http::HeaderValue) -> Cow<'_, str> {
    match std::str::from_utf8(value.as_bytes()) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(value.as_bytes()),
    }
}

/// `s.split(char::from(sep))` for an ASCII `sep`, with a plain byte scan (no pattern searcher).
#[derive(Clone)]
struct SplitByte<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> SplitByte<'a> {
    fn new(s: &'a str, sep: u8) -> Self {
        debug_assert!(sep.is_ascii());
        SplitByte { rest: Some(s), sep }
    }
}

impl<'a> Iterator for SplitByte<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match split_once_byte(rest, self.sep) {
            Some((item, after)) => {
                self.rest = Some(after);
                Some(item)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// `s.split_once(char::from(sep))` for an ASCII `sep`.
fn split_once_byte(s: &str, sep: u8) -> Option<(&str, &str)> {
    let at = s.bytes().position(|b| b == sep)?;
    Some((&s[..at], &s[at + 1..]))
}

/// Whether splitting `list` at `;` gives an empty name (empty list, leading, trailing or doubled `;`).
fn has_empty_names(list: &str) -> bool {
    let mut previous = b';';
    for b in list.bytes() {
        if b == b';' && previous == b';' {
            return true;
        }
        previous = b;
    }
    previous == b';'
}

/// The SigV4 parameters of a query string (the first value of each; a repeat is noted, and refused
/// by [`parse`]).
#[derive(Default)]
struct QueryAuth<'q> {
    algorithm: Option<Cow<'q, str>>,
    credential: Option<Cow<'q, str>>,
    date: Option<Cow<'q, str>>,
    signed_headers: Option<Cow<'q, str>>,
    signature: Option<Cow<'q, str>>,
    expires: Option<Cow<'q, str>>,
    security_token: Option<Cow<'q, str>>,
    content_sha256: Option<Cow<'q, str>>,
    /// The first SigV4 parameter that appears more than once.
    repeated: Option<&'static str>,
}

impl<'q> QueryAuth<'q> {
    fn scan(query: &'q str) -> Self {
        let mut q = QueryAuth::default();
        if !query.contains("X-Amz-") && !query.contains("X%2DAmz%2D") {
            return q;
        }
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let (name, slot) = match key.as_ref() {
                "X-Amz-Algorithm" => ("X-Amz-Algorithm", &mut q.algorithm),
                "X-Amz-Credential" => ("X-Amz-Credential", &mut q.credential),
                "X-Amz-Date" => ("X-Amz-Date", &mut q.date),
                "X-Amz-SignedHeaders" => ("X-Amz-SignedHeaders", &mut q.signed_headers),
                "X-Amz-Signature" => ("X-Amz-Signature", &mut q.signature),
                "X-Amz-Expires" => ("X-Amz-Expires", &mut q.expires),
                "X-Amz-Security-Token" => ("X-Amz-Security-Token", &mut q.security_token),
                "X-Amz-Content-Sha256" => ("X-Amz-Content-Sha256", &mut q.content_sha256),
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            } else if q.repeated.is_none() {
                q.repeated = Some(name);
            }
        }
        q
    }
}

/// The query string without its `X-Amz-Signature` parameter(s), otherwise byte for byte.
fn strip_signature_param(query: &str) -> Cow<'_, str> {
    let is_signature = |pair: &str| {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        form_urlencoded::parse(key.as_bytes()).next().is_some_and(|(k, _)| k == "X-Amz-Signature")
    };
    if !query.split('&').any(is_signature) {
        return Cow::Borrowed(query);
    }
    Cow::Owned(query.split('&').filter(|p| !is_signature(p)).collect::<Vec<_>>().join("&"))
}

mod fast;
#[cfg(test)]
mod tests;
