//! CAPTCHA and Challenge: the `aws-waf-token` cookie (HMAC-signed timestamps bound to the client IP),
//! the interstitial pages (202 for Challenge, 405 for CAPTCHA, as AWS answers) and the CAPTCHA answer.
//! The challenge proves the client runs JavaScript; the CAPTCHA is a simple arithmetic question.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::waf::rate::now_ms;

pub const COOKIE: &str = "aws-waf-token";
pub const CAPTCHA_PATH: &str = "/.rampart-waf/captcha";

pub struct TokenKey([u8; 32]);

impl TokenKey {
    pub fn random() -> TokenKey {
        TokenKey(rand::random())
    }

    fn sign(&self, msg: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else { return String::new() };
        mac.update(msg.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A token: challenge solved at `challenge_s`, CAPTCHA at `captcha_s` (0: never), for `ip`.
    pub fn issue(&self, ip: IpAddr, challenge_s: u64, captcha_s: u64) -> String {
        let body = format!("v1.{challenge_s}.{captcha_s}");
        let sig = self.sign(&format!("{body}|{ip}"));
        format!("{body}.{sig}")
    }

    /// (challenge age, CAPTCHA age) in seconds of a valid token.
    pub fn verify(&self, token: &[u8], ip: IpAddr) -> Option<(u64, Option<u64>)> {
        let s = std::str::from_utf8(token).ok()?;
        let mut it = s.split('.');
        let (v, ch, ca, sig) = (it.next()?, it.next()?, it.next()?, it.next()?);
        if v != "v1" || it.next().is_some() {
            return None;
        }
        let expect = self.sign(&format!("v1.{ch}.{ca}|{ip}"));
        if !subtle_eq(expect.as_bytes(), sig.as_bytes()) {
            return None;
        }
        let now = now_ms() / 1000;
        let ch: u64 = ch.parse().ok()?;
        let ca: u64 = ca.parse().ok()?;
        let age = |t: u64| now.saturating_sub(t);
        Some((age(ch), (ca > 0).then(|| age(ca))))
    }

    pub fn captcha_sig(&self, a: u32, b: u32, ts: u64, ip: IpAddr) -> String {
        self.sign(&format!("captcha|{a}|{b}|{ts}|{ip}"))
    }
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The Challenge interstitial: sets a fresh token from JavaScript and reloads.
pub fn challenge_page(key: &TokenKey, ip: IpAddr) -> String {
    let now = now_ms() / 1000;
    let token = key.issue(ip, now, 0);
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Checking your browser</title></head>\
<body><noscript>Please enable JavaScript to continue.</noscript>\
<script>document.cookie=\"{COOKIE}={token}; path=/; SameSite=Lax\";location.reload();</script></body></html>"
    )
}

/// The CAPTCHA interstitial: an arithmetic question posted back to the gateway.
pub fn captcha_page(key: &TokenKey, ip: IpAddr, return_to: &str) -> String {
    let a: u32 = rand::random::<u32>() % 20 + 1;
    let b: u32 = rand::random::<u32>() % 20 + 1;
    let ts = now_ms() / 1000;
    let sig = key.captcha_sig(a, b, ts, ip);
    let ret = html_escape(return_to);
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Verification</title></head><body>\
<form method=\"POST\" action=\"{CAPTCHA_PATH}\"><p>To continue, answer: what is {a} + {b}?</p>\
<input name=\"answer\" autofocus><input type=\"hidden\" name=\"a\" value=\"{a}\"><input type=\"hidden\" name=\"b\" value=\"{b}\">\
<input type=\"hidden\" name=\"ts\" value=\"{ts}\"><input type=\"hidden\" name=\"sig\" value=\"{sig}\">\
<input type=\"hidden\" name=\"return\" value=\"{ret}\"><button>Continue</button></form></body></html>"
    )
}

/// Checks a posted CAPTCHA answer; on success returns (token, where to go back to).
pub fn check_captcha(key: &TokenKey, ip: IpAddr, form: &[u8]) -> Option<(String, String)> {
    let mut f = std::collections::HashMap::new();
    for (k, v) in form_urlencoded_parse(form) {
        f.insert(k, v);
    }
    let a: u32 = f.get("a")?.parse().ok()?;
    let b: u32 = f.get("b")?.parse().ok()?;
    let ts: u64 = f.get("ts")?.parse().ok()?;
    let answer: u32 = f.get("answer")?.trim().parse().ok()?;
    let sig = f.get("sig")?;
    if !subtle_eq(key.captcha_sig(a, b, ts, ip).as_bytes(), sig.as_bytes()) || answer != a + b {
        return None;
    }
    let now = now_ms() / 1000;
    if now.saturating_sub(ts) > 600 {
        return None;
    }
    let ret =
        f.get("return").filter(|r| r.starts_with('/') && !r.starts_with("//")).cloned().unwrap_or_else(|| "/".into());
    Some((key.issue(ip, now, now), ret))
}

fn form_urlencoded_parse(b: &[u8]) -> Vec<(String, String)> {
    crate::waf::request::split_pairs(b, b'&')
        .into_iter()
        .map(|(k, v)| {
            let d = |x: &[u8]| String::from_utf8_lossy(&crate::waf::transform::url_decode(x, false)).into_owned();
            (d(&k), d(&v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_and_bind_to_ip() {
        let k = TokenKey::random();
        let ip: IpAddr = "10.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let now = now_ms() / 1000;
        let t = k.issue(ip, now, 0);
        assert_eq!(k.verify(t.as_bytes(), ip).map(|x| x.1), Some(None));
        assert!(k.verify(t.as_bytes(), "10.0.0.2".parse().unwrap_or(ip)).is_none());
        assert!(k.verify(b"v1.1.2.deadbeef", ip).is_none());
        let t2 = k.issue(ip, now, now);
        assert!(matches!(k.verify(t2.as_bytes(), ip), Some((_, Some(_)))));
    }
}
