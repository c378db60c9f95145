//! GeoMatchStatement with a MaxMind-format database: the test writes a tiny MMDB (IPv4 tree, 24-bit
//! records, one country record per network) and looks requests up by peer and forwarded address.

mod common;

use common::*;
use serde_json::json;

/// Encodes a control byte + size for MMDB data (sizes < 29 only, enough here).
fn ctrl(kind: u8, size: usize) -> Vec<u8> {
    assert!(size < 29);
    if kind <= 7 {
        vec![(kind << 5) | size as u8]
    } else {
        vec![size as u8, kind - 7]
    }
}
fn s(v: &str) -> Vec<u8> {
    let mut o = ctrl(2, v.len());
    o.extend_from_slice(v.as_bytes());
    o
}
fn u16v(v: u16) -> Vec<u8> {
    let mut o = ctrl(5, 2);
    o.extend_from_slice(&v.to_be_bytes());
    o
}
fn u32v(v: u32) -> Vec<u8> {
    let mut o = ctrl(6, 4);
    o.extend_from_slice(&v.to_be_bytes());
    o
}
fn u64v(v: u64) -> Vec<u8> {
    let mut o = ctrl(9, 8);
    o.extend_from_slice(&v.to_be_bytes());
    o
}
fn map(entries: Vec<(&str, Vec<u8>)>) -> Vec<u8> {
    let mut o = ctrl(7, entries.len());
    for (k, v) in entries {
        o.extend(s(k));
        o.extend(v);
    }
    o
}

/// A database mapping IPv4 networks to ISO country codes.
fn mmdb(nets: &[([u8; 4], u8, &str)]) -> Vec<u8> {
    // Data section: one record per network.
    let mut data = Vec::new();
    let mut offsets = Vec::new();
    for (_, _, cc) in nets {
        offsets.push(data.len());
        data.extend(map(vec![("country", map(vec![("iso_code", s(cc))]))]));
    }
    // Search tree: nodes as [left, right]; u32::MAX marks "empty" until numbered.
    let mut nodes: Vec<[i64; 2]> = vec![[-1, -1]];
    for (k, (ip, len, _)) in nets.iter().enumerate() {
        let bits = u32::from_be_bytes(*ip);
        let mut node = 0usize;
        for d in 0..*len {
            let bit = ((bits >> (31 - d)) & 1) as usize;
            if d + 1 == *len {
                nodes[node][bit] = -(2 + k as i64); // data k
            } else {
                if nodes[node][bit] < 0 {
                    nodes.push([-1, -1]);
                    nodes[node][bit] = (nodes.len() - 1) as i64;
                }
                node = nodes[node][bit] as usize;
            }
        }
    }
    let n = nodes.len() as u32;
    let mut out = Vec::new();
    for nd in &nodes {
        for r in nd {
            let v: u32 = match *r {
                -1 => n,
                x if x < -1 => n + 16 + offsets[(-x - 2) as usize] as u32,
                x => x as u32,
            };
            out.extend_from_slice(&v.to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend(data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    out.extend(map(vec![
        ("binary_format_major_version", u16v(2)),
        ("binary_format_minor_version", u16v(0)),
        ("build_epoch", u64v(1_700_000_000)),
        ("database_type", s("GeoLite2-Country")),
        ("description", map(vec![("en", s("rampart test"))])),
        ("ip_version", u16v(4)),
        ("languages", {
            let mut a = ctrl(11, 1);
            a.extend(s("en"));
            a
        }),
        ("node_count", u32v(n)),
        ("record_size", u16v(24)),
    ]));
    out
}

#[tokio::test]
async fn geo_match_by_peer_and_forwarded_ip() {
    let db = mmdb(&[([127, 0, 0, 0], 8, "DE"), ([203, 0, 113, 0], 24, "FR"), ([198, 51, 100, 0], 24, "US")]);
    let a = acl(json!([
        {"Name": "no-fr-via-xff", "Priority": 1, "Action": {"Block": {"CustomResponse": {"ResponseCode": 451}}}, "VisibilityConfig": vis("fr"),
         "Statement": {"GeoMatchStatement": {"CountryCodes": ["FR"],
            "ForwardedIPConfig": {"HeaderName": "X-Forwarded-For", "FallbackBehavior": "NO_MATCH"}}}},
        {"Name": "de-only-admin", "Priority": 2, "Action": {"Block": {}}, "VisibilityConfig": vis("de"),
         "Statement": {"AndStatement": {"Statements": [
            {"ByteMatchStatement": {"SearchString": "/admin", "PositionalConstraint": "STARTS_WITH", "TextTransformations": [{"Priority": 0, "Type": "NONE"}], "FieldToMatch": {"UriPath": {}}}},
            {"NotStatement": {"Statement": {"GeoMatchStatement": {"CountryCodes": ["US"]}}}}
         ]}}}
    ]));
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("country.mmdb");
    std::fs::write(&path, db).expect("write mmdb");
    let p = path.clone();
    let g = start(Some(a), move |c| c.geoip_db = Some(p)).await;
    assert_eq!(get(g.addr(), "/", &[("X-Forwarded-For", "203.0.113.5")]).await.status, 451);
    assert_eq!(get(g.addr(), "/", &[("X-Forwarded-For", "198.51.100.5")]).await.status, 200);
    assert_eq!(get(g.addr(), "/", &[]).await.status, 200, "no header: fallback NO_MATCH");
    // The peer (127.0.0.1) is in DE: not US, so /admin is blocked.
    assert_eq!(get(g.addr(), "/admin", &[]).await.status, 403);
}
