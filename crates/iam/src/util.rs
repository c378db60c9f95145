//! Small helpers: AWS-style IDs, timestamps, document encoding, ARNs.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::Rng;
use time::OffsetDateTime;

/// The characters AWS uses in unique IDs and access key IDs.
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A unique ID like AWS's: a 4-letter prefix (`AIDA`, `AGPA`, `AROA`, `ANPA`, `AIPA`) + 17 characters.
pub fn unique_id(prefix: &str) -> String {
    random_id(prefix, 21)
}

/// Whether `s` starts with `aws:` in any ASCII case (tag keys, SourceIdentity). Compares bytes, so
/// a multi-byte character among the first four bytes is no prefix (and no panic).
pub fn has_aws_prefix(s: &str) -> bool {
    s.as_bytes().get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"aws:"))
}

/// The character at `i` of an ASCII alphabet (`i` is always in range; the first one otherwise).
fn pick(alphabet: &[u8], i: usize) -> char {
    char::from(alphabet.get(i).or(alphabet.first()).copied().unwrap_or(b'A'))
}

/// An access key ID: `AKIA` + 16 characters.
pub fn access_key_id() -> String {
    random_id("AKIA", 20)
}

pub fn random_id(prefix: &str, len: usize) -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(len);
    s.push_str(prefix);
    while s.len() < len {
        s.push(pick(ID_ALPHABET, rng.random_range(0..ID_ALPHABET.len())));
    }
    s
}

/// A 40-character secret access key.
pub fn secret_access_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..40).map(|_| pick(ALPHABET, rng.random_range(0..ALPHABET.len()))).collect()
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Nanoseconds since the epoch, now (orders records made within one second).
pub fn now_nanos() -> u64 {
    u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(0)
}

/// ISO-8601 as IAM returns it: `2024-01-02T03:04:05Z`. Written digit by digit: it is on every
/// authorization (`aws:CurrentTime`) and in most responses.
pub fn iso8601(epoch_seconds: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(epoch_seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return iso8601_formatted(t);
    }
    let mut out = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for slot in out.iter_mut().skip(at).take(width).rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, u8::from(t.month()).into());
    put(8, 2, t.day().into());
    put(11, 2, t.hour().into());
    put(14, 2, t.minute().into());
    put(17, 2, t.second().into());
    out.iter().map(|&b| b as char).collect()
}

/// [`iso8601`] through the formatter (years outside 0..=9999).
fn iso8601_formatted(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Characters left as-is when IAM URL-encodes policy documents in responses.
const DOC_SAFE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'*');

/// IAM returns policy documents URL-encoded (RFC 3986 style, space as `%20`); SDKs decode them.
pub fn encode_document(doc: &str) -> String {
    utf8_percent_encode(doc, DOC_SAFE).to_string()
}

/// Lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(pick(HEX, usize::from(b >> 4)));
        s.push(pick(HEX, usize::from(b & 15)));
    }
    s
}

/// Parse lower- or upper-case hex.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| match p {
            &[hi, lo] => Some(digit(hi)? << 4 | digit(lo)?),
            _ => None,
        })
        .collect()
}

/// `arn:aws:iam::ACCOUNT:KIND/PATH-AND-NAME` (path starts and ends with `/`).
pub fn iam_arn(account: &str, kind: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{kind}{path}{name}")
}

/// A policy document's size as IAM counts it for quotas: characters other than whitespace.
pub fn policy_size(doc: &str) -> usize {
    doc.chars().filter(|c| !c.is_whitespace()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_digit_by_digit_matches_the_formatter() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_704_164_645), "2024-01-02T03:04:05Z");
        let mut t: i64 = -62_167_219_200 - 86_400; // the day before 0000-01-01
        while t < 253_402_300_800 + 86_400 {
            let at = OffsetDateTime::from_unix_timestamp(t).unwrap();
            assert_eq!(iso8601(t), iso8601_formatted(at), "{t}");
            t += 7_919_993; // steps through every field's values
        }
        assert_eq!(iso8601(-62_167_219_200 - 1), "-001-12-31T23:59:59Z");
    }

    #[test]
    fn ids_look_like_aws() {
        let id = unique_id("AIDA");
        assert_eq!(id.len(), 21);
        assert!(id.starts_with("AIDA"));
        assert!(id.bytes().all(|b| ID_ALPHABET.contains(&b)));
        let k = access_key_id();
        assert_eq!(k.len(), 20);
        assert!(k.starts_with("AKIA"));
        assert_eq!(secret_access_key().len(), 40);
    }

    #[test]
    fn dates_and_encoding() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(encode_document("{\"Action\": \"s3:*\"}"), "%7B%22Action%22%3A%20%22s3%3A*%22%7D");
        assert_eq!(from_hex(&to_hex(&[0, 1, 254, 255])).unwrap(), vec![0, 1, 254, 255]);
        assert!(from_hex("zz").is_none());
        assert_eq!(policy_size("{ \"a\" :\n 1 }"), 7);
    }
}
