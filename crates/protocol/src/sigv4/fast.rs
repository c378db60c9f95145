//! The fast path of [`super::verify`]: SigV4's signature for the request shape SDKs send, computed
//! by streaming the canonical request and string to sign straight into SHA-256/HMAC (no Strings,
//! no formatting), with the derived signing key taken from a small cache.
//!
//! It only handles requests whose canonicalisation is unambiguous: header-form signatures, a path
//! of unreserved characters and `/` with no empty, `.` or `..` segment, a query of `k=v` pairs
//! (unreserved characters, `%XX` of ASCII bytes, `+`), lowercase SignedHeaders in strictly
//! ascending order, every one of them present, with visible-ASCII values. For anything else
//! [`signature`] answers `None` and the caller asks aws-sigv4. Where it answers, the signature is
//! the one aws-sigv4 computes (see the differential tests), so [`super::verify`] accepts on a match
//! and still lets aws-sigv4 decide on a mismatch.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Mutex, OnceLock};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{iso_basic_bytes, Authorization, SignedRequest, ALGORITHM, TERMINATOR};

type HmacSha256 = Hmac<Sha256>;

/// The hex signature SigV4 gives `req` under `secret_access_key`, or `None` when the request is
/// not of the simple shape this path handles.
pub(super) fn signature(
    req: &SignedRequest<'_>,
    auth: &Authorization,
    secret_access_key: &str,
    payload_hash: &str,
) -> Option<[u8; 64]> {
    // Presigned URLs, and years SigV4's four-digit timestamps cannot carry, go to aws-sigv4.
    if auth.presigned || !(0..=9999).contains(&auth.timestamp.to_offset(time::UtcOffset::UTC).year()) {
        return None;
    }
    let mut creq = Sha256::new();
    write_canonical_request(req, auth, payload_hash, &mut creq)?;
    let creq_hash = hex_lower(&creq.finalize());

    let timestamp = iso_basic_bytes(auth.timestamp);
    let date = &timestamp[..8];
    let key = signing_keys().get(secret_access_key, date, auth.region(), auth.service());
    let mut mac = HmacSha256::new_from_slice(&key[..]).expect("HMAC takes any key length");
    for part in [
        ALGORITHM.as_bytes(),
        b"\n",
        &timestamp,
        b"\n",
        date,
        b"/",
        auth.region().as_bytes(),
        b"/",
        auth.service().as_bytes(),
        b"/",
        TERMINATOR.as_bytes(),
        b"\n",
        &creq_hash,
    ] {
        mac.update(part);
    }
    Some(hex_lower(&mac.finalize().into_bytes()))
}

/// Where the canonical request goes: SHA-256 in production, a buffer in tests.
pub(super) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Writes the canonical request (method, path, query, headers, signed headers, payload hash), or
/// answers `None` (the output is then garbage) when the request is not of the simple shape.
pub(super) fn write_canonical_request(
    req: &SignedRequest<'_>,
    auth: &Authorization,
    payload_hash: &str,
    out: &mut impl Sink,
) -> Option<()> {
    let path = canonical_path(req.path)?;
    let query = CanonicalQuery::parse(req.query)?;
    if !is_simple_signed_headers(auth.signed_headers()) {
        return None;
    }
    out.put(req.method.as_bytes());
    out.put(b"\n");
    out.put(path.as_bytes());
    out.put(b"\n");
    query.write(out);
    out.put(b"\n");
    for name in auth.signed_headers() {
        write_canonical_header(req, auth, name, out)?;
    }
    out.put(b"\n");
    // The names joined by `;`, as they are held.
    out.put(auth.signed_header_list().as_bytes());
    out.put(b"\n");
    out.put(payload_hash.as_bytes());
    Some(())
}

/// The path as SigV4 canonicalises it (normalised, then every `%` encoded again) when that is the
/// path itself: only unreserved characters and `/`, and no segment normalisation would change.
fn canonical_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return Some("/");
    }
    let rest = path.strip_prefix('/')?;
    if !path.bytes().all(|b| is_unreserved(b) || b == b'/') {
        return None;
    }
    // The last segment may be empty (a trailing `/`), no other one.
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if (segment.is_empty() && !last) || segment == "." || segment == ".." {
            return None;
        }
    }
    Some(path)
}

/// The signed header names as SDKs write them: lowercase token characters, strictly ascending (so
/// no repeats), which is also the order of the canonical request.
fn is_simple_signed_headers<'a>(mut names: impl Iterator<Item = &'a str>) -> bool {
    let well_formed =
        |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let mut previous: Option<&str> = None;
    names.all(|n| {
        let ascending = previous.is_none_or(|p| p < n);
        previous = Some(n);
        well_formed(n) && ascending
    })
}

/// `name:value1,value2\n`, each value trimmed of spaces with inner runs of spaces collapsed. The
/// signer writes `x-amz-date` from the parsed timestamp, whatever the header says.
fn write_canonical_header(
    req: &SignedRequest<'_>,
    auth: &Authorization,
    name: &str,
    out: &mut impl Sink,
) -> Option<()> {
    out.put(name.as_bytes());
    out.put(b":");
    if name == "x-amz-date" {
        out.put(&iso_basic_bytes(auth.timestamp));
        out.put(b"\n");
        return Some(());
    }
    let mut values = req.headers.get_all(name).iter().peekable();
    values.peek()?; // a signed header the request lacks: leave it to aws-sigv4
    let mut first = true;
    for value in values {
        let value = value.as_bytes();
        // What `HeaderValue::to_str` accepts; anything else is aws-sigv4's to refuse.
        if !value.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
            return None;
        }
        if !first {
            out.put(b",");
        }
        first = false;
        write_trimmed_value(value, out);
    }
    out.put(b"\n");
    Some(())
}

/// A header value without leading/trailing spaces and with runs of spaces as one (spaces only,
/// not tabs, as the SDKs do).
fn write_trimmed_value(value: &[u8], out: &mut impl Sink) {
    let start = value.iter().position(|&b| b != b' ').unwrap_or(value.len());
    let end = value.iter().rposition(|&b| b != b' ').map_or(start, |i| i + 1);
    let value = &value[start..end];
    let mut from = 0;
    let mut i = 0;
    while i < value.len() {
        if value[i] == b' ' && value.get(i + 1) == Some(&b' ') {
            out.put(&value[from..=i]);
            while value.get(i + 1) == Some(&b' ') {
                i += 1;
            }
            from = i + 1;
        }
        i += 1;
    }
    out.put(&value[from..]);
}

/// The query's `key=value` pairs, each decoded as form-urlencoded and encoded again with only the
/// unreserved characters left as is, sorted by key then value.
struct CanonicalQuery {
    encoded: String,
    /// (key, value) ranges in `encoded`.
    pairs: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
}

impl CanonicalQuery {
    fn parse(query: &str) -> Option<Self> {
        let mut q = CanonicalQuery { encoded: String::new(), pairs: Vec::new() };
        if query.is_empty() {
            return Some(q);
        }
        q.encoded.reserve(query.len() + 16);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = q.push_encoded(key)?;
            let value = q.push_encoded(value)?;
            q.pairs.push((key, value));
        }
        let encoded = &q.encoded;
        q.pairs.sort_by(|a, b| {
            (&encoded[a.0.clone()], &encoded[a.1.clone()]).cmp(&(&encoded[b.0.clone()], &encoded[b.1.clone()]))
        });
        Some(q)
    }

    /// Appends the canonical encoding of one raw component; `None` for bytes or escapes outside
    /// the simple shape (non-ASCII, malformed `%`).
    fn push_encoded(&mut self, raw: &str) -> Option<std::ops::Range<usize>> {
        let start = self.encoded.len();
        let raw = raw.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            let byte = match raw[i] {
                b'+' => b' ',
                b'%' => {
                    let hi = hex_value(*raw.get(i + 1)?)?;
                    let lo = hex_value(*raw.get(i + 2)?)?;
                    i += 2;
                    hi << 4 | lo
                }
                b if is_unreserved(b) || b == b'=' => b,
                _ => return None,
            };
            if !byte.is_ascii() {
                return None;
            }
            if is_unreserved(byte) {
                self.encoded.push(byte as char);
            } else {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                self.encoded.push('%');
                self.encoded.push(HEX[usize::from(byte >> 4)] as char);
                self.encoded.push(HEX[usize::from(byte & 0xf)] as char);
            }
            i += 1;
        }
        Some(start..self.encoded.len())
    }

    fn write(&self, out: &mut impl Sink) {
        for (i, (key, value)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.put(b"&");
            }
            out.put(self.encoded[key.clone()].as_bytes());
            out.put(b"=");
            out.put(self.encoded[value.clone()].as_bytes());
        }
    }
}

/// RFC 3986 unreserved characters: never percent-encoded.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn hex_lower(bytes: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    hex::encode_to_slice(bytes, &mut out).expect("32 bytes make 64 hex digits");
    out
}

/// The derived signing key `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
/// "aws4_request")`, as aws-sigv4 derives it.
fn derive_signing_key(secret: &str, date: &[u8], region: &str, service: &str) -> Zeroizing<[u8; 32]> {
    let mut seed = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
    seed.extend_from_slice(b"AWS4");
    seed.extend_from_slice(secret.as_bytes());
    // Each step's output keys the next; every intermediate is zeroized when dropped.
    let step = |k: &[u8], data: &[u8]| {
        let mut mac = HmacSha256::new_from_slice(k).expect("HMAC takes any key length");
        mac.update(data);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    };
    let k = step(&seed, date);
    let k = step(&k[..], region.as_bytes());
    let k = step(&k[..], service.as_bytes());
    step(&k[..], TERMINATOR.as_bytes())
}

/// Signing keys by (secret, date, region, service): a key only changes daily, so almost every
/// request of a caller reuses it. Direct-mapped: each scope hashes to one slot behind its own
/// mutex (little contention), and a new scope overwrites the slot's previous one, so the cache never
/// holds more than [`SigningKeyCache::SLOTS`] keys. Entries (the secret copy and the key) are
/// zeroized when overwritten; they live in memory only and are never logged (no `Debug`).
pub(super) struct SigningKeyCache {
    slots: Box<[Mutex<Option<CachedKey>>]>,
    hasher: RandomState,
}

struct CachedKey {
    secret: Zeroizing<String>,
    date: [u8; 8],
    region: String,
    service: String,
    key: Zeroizing<[u8; 32]>,
}

impl CachedKey {
    fn is_for(&self, secret: &str, date: &[u8], region: &str, service: &str) -> bool {
        // Constant time on the secret: another caller's secret may sit in the slot.
        bool::from(self.secret.as_bytes().ct_eq(secret.as_bytes()))
            && self.date == date
            && self.region == region
            && self.service == service
    }
}

pub(super) fn signing_keys() -> &'static SigningKeyCache {
    static CACHE: OnceLock<SigningKeyCache> = OnceLock::new();
    CACHE.get_or_init(SigningKeyCache::new)
}

impl SigningKeyCache {
    pub(super) const SLOTS: usize = 256;

    fn new() -> Self {
        SigningKeyCache { slots: (0..Self::SLOTS).map(|_| Mutex::new(None)).collect(), hasher: RandomState::new() }
    }

    /// The signing key for this scope, derived on a miss.
    pub(super) fn get(&self, secret: &str, date: &[u8], region: &str, service: &str) -> Zeroizing<[u8; 32]> {
        let slot = &self.slots[self.slot_of(secret, date, region, service)];
        {
            let entry = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(cached) = entry.as_ref().filter(|c| c.is_for(secret, date, region, service)) {
                return cached.key.clone();
            }
        }
        let key = derive_signing_key(secret, date, region, service);
        let Ok(date_bytes) = <[u8; 8]>::try_from(date) else { return key };
        let fresh = CachedKey {
            secret: Zeroizing::new(secret.to_string()),
            date: date_bytes,
            region: region.to_string(),
            service: service.to_string(),
            key: key.clone(),
        };
        // Replacing drops (and zeroizes) the slot's previous entry.
        *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(fresh);
        key
    }

    fn slot_of(&self, secret: &str, date: &[u8], region: &str, service: &str) -> usize {
        let hash = self.hasher.hash_one((secret, date, region, service));
        (hash as usize) % Self::SLOTS
    }
}

#[cfg(test)]
mod tests;
