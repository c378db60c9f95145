//! The view of one request that rules inspect, with lazily parsed parts (query arguments, cookies, JSON).

use std::net::IpAddr;
use std::sync::OnceLock;

use bytes::Bytes;

pub struct WafRequest {
    /// The TCP peer.
    pub client_ip: IpAddr,
    pub method: String,
    /// Raw path as received (not decoded).
    pub path: String,
    /// Raw query string without the '?'.
    pub query: String,
    pub http_version: &'static str,
    /// In arrival order; names lowercase (HTTP/2 style), values raw bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The whole body (the gateway buffers it before anything is decided).
    pub body: Bytes,
    args: OnceLock<Vec<(Vec<u8>, Vec<u8>)>>,
    cookies: OnceLock<Vec<(Vec<u8>, Vec<u8>)>>,
    json: OnceLock<Option<serde_json::Value>>,
}

impl WafRequest {
    pub fn new(
        client_ip: IpAddr,
        method: String,
        path: String,
        query: String,
        http_version: &'static str,
        headers: Vec<(String, Vec<u8>)>,
        body: Bytes,
    ) -> Self {
        WafRequest {
            client_ip,
            method,
            path,
            query,
            http_version,
            headers,
            body,
            args: OnceLock::new(),
            cookies: OnceLock::new(),
            json: OnceLock::new(),
        }
    }

    pub fn uri(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    /// All values of one header (name compared case-insensitively).
    pub fn header_values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.header_values(name).next()
    }

    /// Query arguments, raw (not URL-decoded: rules decode with URL_DECODE as in AWS).
    pub fn query_args(&self) -> &[(Vec<u8>, Vec<u8>)] {
        self.args.get_or_init(|| split_pairs(self.query.as_bytes(), b'&'))
    }

    pub fn cookies(&self) -> &[(Vec<u8>, Vec<u8>)] {
        self.cookies.get_or_init(|| {
            let mut out = Vec::new();
            for v in self.header_values("cookie") {
                for part in v.split(|&b| b == b';') {
                    let part = trim(part);
                    if part.is_empty() {
                        continue;
                    }
                    match memchr::memchr(b'=', part) {
                        Some(i) => out.push((trim(&part[..i]).to_vec(), trim(&part[i + 1..]).to_vec())),
                        None => out.push((part.to_vec(), Vec::new())),
                    }
                }
            }
            out
        })
    }

    pub fn cookie(&self, name: &str) -> Option<&[u8]> {
        self.cookies().iter().find(|(n, _)| n == name.as_bytes()).map(|(_, v)| v.as_slice())
    }

    /// The body parsed as JSON (None when it is not valid JSON).
    pub fn json(&self, limit: usize) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| {
                let b = &self.body[..self.body.len().min(limit)];
                serde_json::from_slice(b).ok()
            })
            .as_ref()
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let e = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(s, |e| e + 1);
    &b[s..e]
}

pub fn split_pairs(s: &[u8], sep: u8) -> Vec<(Vec<u8>, Vec<u8>)> {
    s.split(|&b| b == sep)
        .filter(|p| !p.is_empty())
        .map(|p| match memchr::memchr(b'=', p) {
            Some(i) => (p[..i].to_vec(), p[i + 1..].to_vec()),
            None => (p.to_vec(), Vec::new()),
        })
        .collect()
}
