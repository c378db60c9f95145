//! The gateway in-process against a tiny upstream: forwarding, web ACL statements, actions, labels,
//! rule groups, managed rule groups, reload, CAPTCHA/Challenge, logs, samples and metrics.

mod common;

use std::time::Duration;

use common::*;
use rampart_gateway::clock::ManualClock;
use rampart_gateway::token;
use serde_json::json;

/// Where manual clocks start (Unix ms; a round number, so rate windows start with it).
const T0_MS: u64 = 1_800_000_000_000;

fn tx(t: &str) -> serde_json::Value {
    json!([{"Priority": 0, "Type": t}])
}

#[tokio::test]
async fn forwards_with_forwarding_headers_and_strips_hop_by_hop() {
    let g = start(None, |_| {}).await;
    let r = request(
        g.addr(),
        None,
        "POST",
        "/echo?a=1",
        &[
            ("X-Forwarded-For", "203.0.113.9"),
            ("Keep-Alive", "timeout=5"),
            ("Connection", "close, x-secret"),
            ("X-Secret", "s"),
        ],
        b"hello",
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.is_from_upstream());
    let e = r.json();
    assert_eq!(e["uri"], "/echo?a=1");
    assert_eq!(e["body"], "hello");
    assert_eq!(e["headers"]["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(e["headers"]["x-forwarded-proto"], "http");
    assert_eq!(e["headers"]["host"], "app.example");
    assert!(e["headers"].get("keep-alive").is_none());
    assert!(e["headers"].get("x-secret").is_none(), "headers named in Connection are hop-by-hop");
}

#[tokio::test]
async fn byte_match_block_with_custom_response() {
    let mut a = acl(json!([{
        "Name": "block-admin", "Priority": 1,
        "Statement": {"ByteMatchStatement": {"SearchString": "/admin", "FieldToMatch": {"UriPath": {}},
            "TextTransformations": tx("LOWERCASE"), "PositionalConstraint": "STARTS_WITH"}},
        "Action": {"Block": {"CustomResponse": {"ResponseCode": 418, "CustomResponseBodyKey": "teapot",
            "ResponseHeaders": [{"Name": "x-blocked-by", "Value": "rampart"}]}}},
        "VisibilityConfig": vis("block-admin")
    }]));
    a["CustomResponseBodies"] = json!({"teapot": {"ContentType": "APPLICATION_JSON", "Content": "{\"error\":\"no\"}"}});
    let g = start(Some(a), |_| {}).await;
    let r = get(g.addr(), "/ADMIN/users", &[]).await;
    assert_eq!(r.status, 418);
    assert_eq!(r.header("x-blocked-by"), Some("rampart"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), "{\"error\":\"no\"}");
    assert!(!r.is_from_upstream());
    let ok = get(g.addr(), "/public/admin", &[]).await;
    assert_eq!(ok.status, 200);
    assert_eq!(g.upstream.hits.load(std::sync::atomic::Ordering::SeqCst), 1, "blocked request never reached upstream");
}

#[tokio::test]
async fn sqli_and_xss_statements() {
    let a = acl(json!([
        {"Name": "sqli", "Priority": 1, "Action": {"Block": {}}, "VisibilityConfig": vis("sqli"),
         "Statement": {"SqliMatchStatement": {"FieldToMatch": {"AllQueryArguments": {}}, "TextTransformations": tx("URL_DECODE")}}},
        {"Name": "xss", "Priority": 2, "Action": {"Block": {}}, "VisibilityConfig": vis("xss"),
         "Statement": {"XssMatchStatement": {"FieldToMatch": {"Body": {"OversizeHandling": "MATCH"}},
            "TextTransformations": [{"Priority": 0, "Type": "URL_DECODE"}, {"Priority": 1, "Type": "HTML_ENTITY_DECODE"}]}}}
    ]));
    let g = start(Some(a), |_| {}).await;
    assert_eq!(get(g.addr(), "/items?id=1%27%20OR%20%271%27%3D%271", &[]).await.status, 403);
    assert_eq!(get(g.addr(), "/items?id=42&name=O%27Brien", &[]).await.status, 200);
    let xss = request(
        g.addr(),
        None,
        "POST",
        "/c",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"c=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    )
    .await;
    assert_eq!(xss.status, 403);
    let ent = request(g.addr(), None, "POST", "/c", &[], b"c=&lt;img src=x onerror=alert(1)&gt;").await;
    assert_eq!(ent.status, 403);
    let fine = request(g.addr(), None, "POST", "/c", &[], b"comment=I like 3 < 5 and rust").await;
    assert_eq!(fine.status, 200);
    // Oversize body with OversizeHandling MATCH: matches without inspection.
    let big = vec![b'a'; 9000];
    assert_eq!(request(g.addr(), None, "POST", "/c", &[], &big).await.status, 403);
}

#[tokio::test]
async fn labels_count_and_inserted_headers() {
    let a = acl(json!([
        {"Name": "tag-bots", "Priority": 1, "VisibilityConfig": vis("tag"),
         "Statement": {"ByteMatchStatement": {"SearchString": "bot", "FieldToMatch": {"SingleHeader": {"Name": "User-Agent"}},
            "TextTransformations": tx("LOWERCASE"), "PositionalConstraint": "CONTAINS_WORD"}},
         "Action": {"Count": {"CustomRequestHandling": {"InsertHeaders": [{"Name": "bot", "Value": "yes"}]}}},
         "RuleLabels": [{"Name": "traffic:bot"}]},
        {"Name": "block-bots-on-api", "Priority": 2, "VisibilityConfig": vis("api"), "Action": {"Block": {}},
         "Statement": {"AndStatement": {"Statements": [
            {"LabelMatchStatement": {"Scope": "LABEL", "Key": "traffic:bot"}},
            {"ByteMatchStatement": {"SearchString": "/api/", "FieldToMatch": {"UriPath": {}}, "TextTransformations": tx("NONE"), "PositionalConstraint": "STARTS_WITH"}}
         ]}}},
        {"Name": "ns", "Priority": 3, "VisibilityConfig": vis("ns"), "Action": {"Block": {}},
         "Statement": {"LabelMatchStatement": {"Scope": "NAMESPACE", "Key": "awswaf:000000000000:webacl:test-acl:traffic"}}}
    ]));
    let g = start(Some(a), |_| {}).await;
    // Count + label + inserted header: the request goes on, to the upstream, with x-amzn-waf-bot.
    let r = get(g.addr(), "/page", &[("User-Agent", "Good Bot/1.0")]).await;
    assert_eq!(r.status, 403, "namespace match on the label blocks at rule 3");
    // Without the namespace rule hitting (different label), check insert headers reach upstream.
    let a2 = acl(json!([
        {"Name": "tag-bots", "Priority": 1, "VisibilityConfig": vis("tag"),
         "Statement": {"ByteMatchStatement": {"SearchString": "bot", "FieldToMatch": {"SingleHeader": {"Name": "user-agent"}},
            "TextTransformations": tx("LOWERCASE"), "PositionalConstraint": "CONTAINS_WORD"}},
         "Action": {"Count": {"CustomRequestHandling": {"InsertHeaders": [{"Name": "bot", "Value": "yes"}]}}},
         "RuleLabels": [{"Name": "traffic:bot"}]},
        {"Name": "block-bots-on-api", "Priority": 2, "VisibilityConfig": vis("api"), "Action": {"Block": {}},
         "Statement": {"AndStatement": {"Statements": [
            {"LabelMatchStatement": {"Scope": "LABEL", "Key": "traffic:bot"}},
            {"ByteMatchStatement": {"SearchString": "/api/", "FieldToMatch": {"UriPath": {}}, "TextTransformations": tx("NONE"), "PositionalConstraint": "STARTS_WITH"}}
         ]}}}
    ]));
    g.write_acl(&a2);
    let reloads = || async { get(g.addr(), "/page", &[("User-Agent", "Good Bot/1.0")]).await.status == 200 };
    assert!(wait_until(Duration::from_secs(5), reloads).await, "reload picked up");
    let r = get(g.addr(), "/page", &[("User-Agent", "Good Bot/1.0")]).await;
    assert_eq!(r.json()["headers"]["x-amzn-waf-bot"], "yes");
    assert_eq!(get(g.addr(), "/api/x", &[("User-Agent", "Good Bot/1.0")]).await.status, 403);
    assert_eq!(
        get(g.addr(), "/api/x", &[("User-Agent", "robotics-lab")]).await.status,
        200,
        "CONTAINS_WORD needs word boundaries"
    );
}

#[tokio::test]
async fn ip_sets_with_forwarded_ip_and_regex_pattern_sets() {
    let mut a = acl(json!([
        {"Name": "deny-list", "Priority": 1, "Action": {"Block": {}}, "VisibilityConfig": vis("deny"),
         "Statement": {"IPSetReferenceStatement": {"ARN": "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/deny/1",
            "IPSetForwardedIPConfig": {"HeaderName": "X-Forwarded-For", "FallbackBehavior": "NO_MATCH", "Position": "ANY"}}}},
        {"Name": "v6", "Priority": 2, "Action": {"Block": {}}, "VisibilityConfig": vis("v6"),
         "Statement": {"IPSetReferenceStatement": {"ARN": "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/v6/2",
            "IPSetForwardedIPConfig": {"HeaderName": "X-Client-IP", "FallbackBehavior": "NO_MATCH", "Position": "FIRST"}}}},
        {"Name": "patterns", "Priority": 3, "Action": {"Block": {}}, "VisibilityConfig": vis("patterns"),
         "Statement": {"RegexPatternSetReferenceStatement": {"ARN": "arn:aws:wafv2:us-east-1:123456789012:regional/regexpatternset/p/3",
            "FieldToMatch": {"SingleQueryArgument": {"Name": "q"}}, "TextTransformations": tx("URL_DECODE")}}}
    ]));
    a["IPSets"] = json!([
        {"ARN": "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/deny/1", "Name": "deny", "Scope": "REGIONAL",
         "IPAddressVersion": "IPV4", "Addresses": ["198.51.100.0/24", "192.0.2.7/32"]},
        {"ARN": "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/v6/2", "Name": "v6", "Scope": "REGIONAL",
         "IPAddressVersion": "IPV6", "Addresses": ["2001:db8::/32"]}
    ]);
    a["RegexPatternSets"] = json!([{"ARN": "arn:aws:wafv2:us-east-1:123456789012:regional/regexpatternset/p/3", "Name": "p",
        "Scope": "REGIONAL", "RegularExpressionList": [{"RegexString": "^evil[0-9]+$"}, {"RegexString": "(?i)drop table"}]}]);
    let g = start(Some(a), |_| {}).await;
    assert_eq!(get(g.addr(), "/", &[("X-Forwarded-For", "10.0.0.1, 198.51.100.20")]).await.status, 403);
    assert_eq!(get(g.addr(), "/", &[("X-Forwarded-For", "10.0.0.1, 198.51.101.20")]).await.status, 200);
    assert_eq!(get(g.addr(), "/", &[("X-Forwarded-For", "not-an-ip")]).await.status, 200, "fallback NO_MATCH");
    assert_eq!(get(g.addr(), "/", &[("X-Client-IP", "2001:db8::1")]).await.status, 403);
    assert_eq!(get(g.addr(), "/?q=evil42", &[]).await.status, 403);
    assert_eq!(get(g.addr(), "/?q=Drop%20Table%20x", &[]).await.status, 403);
    assert_eq!(get(g.addr(), "/?q=evil42x&other=evil1", &[]).await.status, 200);
}

#[tokio::test]
async fn fields_json_headers_cookies_size_and_not() {
    let a = acl(json!([
        {"Name": "json-role", "Priority": 1, "Action": {"Block": {}}, "VisibilityConfig": vis("json"),
         "Statement": {"ByteMatchStatement": {"SearchString": "admin", "PositionalConstraint": "EXACTLY", "TextTransformations": tx("NONE"),
            "FieldToMatch": {"JsonBody": {"MatchPattern": {"IncludedPaths": ["/user/role"]}, "MatchScope": "VALUE", "InvalidFallbackBehavior": "NO_MATCH"}}}}},
        {"Name": "hdr-key", "Priority": 2, "Action": {"Block": {}}, "VisibilityConfig": vis("hdr"),
         "Statement": {"ByteMatchStatement": {"SearchString": "x-debug", "PositionalConstraint": "EXACTLY", "TextTransformations": tx("LOWERCASE"),
            "FieldToMatch": {"Headers": {"MatchPattern": {"All": {}}, "MatchScope": "KEY", "OversizeHandling": "CONTINUE"}}}}},
        {"Name": "cookie", "Priority": 3, "Action": {"Block": {}}, "VisibilityConfig": vis("cookie"),
         "Statement": {"ByteMatchStatement": {"SearchString": "true", "PositionalConstraint": "EXACTLY", "TextTransformations": tx("NONE"),
            "FieldToMatch": {"Cookies": {"MatchPattern": {"IncludedCookies": ["is_admin"]}, "MatchScope": "VALUE", "OversizeHandling": "CONTINUE"}}}}},
        {"Name": "long-query", "Priority": 4, "Action": {"Block": {}}, "VisibilityConfig": vis("size"),
         "Statement": {"SizeConstraintStatement": {"FieldToMatch": {"QueryString": {}}, "ComparisonOperator": "GT", "Size": 50, "TextTransformations": tx("NONE")}}},
        {"Name": "only-get-post", "Priority": 5, "Action": {"Block": {"CustomResponse": {"ResponseCode": 405}}}, "VisibilityConfig": vis("method"),
         "Statement": {"NotStatement": {"Statement": {"OrStatement": {"Statements": [
            {"ByteMatchStatement": {"SearchString": "GET", "PositionalConstraint": "EXACTLY", "TextTransformations": tx("NONE"), "FieldToMatch": {"Method": {}}}},
            {"ByteMatchStatement": {"SearchString": "POST", "PositionalConstraint": "EXACTLY", "TextTransformations": tx("NONE"), "FieldToMatch": {"Method": {}}}}
         ]}}}}},
        {"Name": "regex-path", "Priority": 6, "Action": {"Block": {}}, "VisibilityConfig": vis("regex"),
         "Statement": {"RegexMatchStatement": {"RegexString": "\\.(?:bak|old)$", "FieldToMatch": {"UriPath": {}}, "TextTransformations": tx("NONE")}}}
    ]));
    let g = start(Some(a), |_| {}).await;
    let a = g.addr();
    assert_eq!(
        request(a, None, "POST", "/u", &[("Content-Type", "application/json")], br#"{"user":{"role":"admin"}}"#)
            .await
            .status,
        403
    );
    assert_eq!(request(a, None, "POST", "/u", &[], br#"{"user":{"role":"viewer"},"x":"admin"}"#).await.status, 200);
    assert_eq!(request(a, None, "POST", "/u", &[], b"{not json admin").await.status, 200);
    assert_eq!(get(a, "/", &[("X-Debug", "1")]).await.status, 403);
    assert_eq!(get(a, "/", &[("Cookie", "a=b; is_admin=true")]).await.status, 403);
    assert_eq!(get(a, "/", &[("Cookie", "a=true; is_admin=false")]).await.status, 200);
    assert_eq!(get(a, &format!("/?q={}", "x".repeat(60)), &[]).await.status, 403);
    assert_eq!(request(a, None, "DELETE", "/thing", &[], b"").await.status, 405);
    assert_eq!(get(a, "/db.bak", &[]).await.status, 403);
    assert_eq!(get(a, "/db.backup", &[]).await.status, 200);
}

#[tokio::test]
async fn rate_based_rule_blocks_over_limit_per_key() {
    let a = acl(json!([{
        "Name": "rate", "Priority": 1, "Action": {"Block": {"CustomResponse": {"ResponseCode": 429}}}, "VisibilityConfig": vis("rate"),
        "Statement": {"RateBasedStatement": {"Limit": 10, "EvaluationWindowSec": 60, "AggregateKeyType": "CUSTOM_KEYS",
            "CustomKeys": [{"Header": {"Name": "x-api-key", "TextTransformations": tx("NONE")}}],
            "ScopeDownStatement": {"ByteMatchStatement": {"SearchString": "/api", "PositionalConstraint": "STARTS_WITH",
                "TextTransformations": tx("NONE"), "FieldToMatch": {"UriPath": {}}}}}}
    }]));
    let g = start(Some(a), |_| {}).await;
    let mut codes = Vec::new();
    for _ in 0..13 {
        codes.push(get(g.addr(), "/api/x", &[("x-api-key", "k1")]).await.status);
    }
    assert_eq!(&codes[..10], &[200; 10]);
    assert_eq!(&codes[10..], &[429; 3]);
    assert_eq!(get(g.addr(), "/api/x", &[("x-api-key", "k2")]).await.status, 200, "other key has its own count");
    assert_eq!(get(g.addr(), "/home", &[("x-api-key", "k1")]).await.status, 200, "out of scope-down");
    assert_eq!(get(g.addr(), "/api/x", &[]).await.status, 200, "no key: not counted");
}

#[tokio::test]
async fn managed_rule_groups_override_and_exclusions() {
    let a = acl(json!([
        {"Name": "crs", "Priority": 1, "OverrideAction": {"None": {}}, "VisibilityConfig": vis("crs"),
         "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": "AWSManagedRulesCommonRuleSet",
            "RuleActionOverrides": [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]}}},
        {"Name": "sqli", "Priority": 2, "OverrideAction": {"Count": {}}, "VisibilityConfig": vis("sqli"),
         "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": "AWSManagedRulesSQLiRuleSet"}}},
        {"Name": "block-sqli-label", "Priority": 3, "Action": {"Block": {"CustomResponse": {"ResponseCode": 406}}}, "VisibilityConfig": vis("lbl"),
         "Statement": {"LabelMatchStatement": {"Scope": "LABEL", "Key": "awswaf:managed:aws:sql-database:SQLi_QueryArguments"}}}
    ]));
    let g = start(Some(a), |_| {}).await;
    let a = g.addr();
    assert_eq!(get(a, "/download?file=../../../../etc/passwd", &[]).await.status, 403);
    assert_eq!(get(a, "/q?x=%3Cscript%3Ealert(1)%3C/script%3E", &[]).await.status, 403);
    assert_eq!(
        raw(a, None, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await.map(|r| r.status).ok(),
        Some(403),
        "no User-Agent"
    );
    // Override Count on the SQLi group: its rule only labels; the label rule then blocks with 406.
    assert_eq!(get(a, "/q?id=1%27%20OR%20%271%27%3D%271", &[]).await.status, 406);
    // SizeRestrictions_BODY overridden to Count: a big benign body passes.
    assert_eq!(request(a, None, "POST", "/upload", &[], &vec![b'x'; 20_000]).await.status, 200);
    assert_eq!(get(a, "/products?category=shoes&page=2", &[]).await.status, 200);
}

#[tokio::test]
async fn user_rule_groups_by_arn() {
    let mut a = acl(json!([
        {"Name": "mygroup", "Priority": 1, "OverrideAction": {"None": {}}, "VisibilityConfig": vis("g"),
         "Statement": {"RuleGroupReferenceStatement": {"ARN": "arn:aws:wafv2:us-east-1:123456789012:regional/rulegroup/g/1",
            "ExcludedRules": [{"Name": "no-beta"}]}}}
    ]));
    a["RuleGroups"] = json!([{"ARN": "arn:aws:wafv2:us-east-1:123456789012:regional/rulegroup/g/1", "Name": "g", "Capacity": 10,
    "VisibilityConfig": vis("g"),
    "Rules": [
        {"Name": "no-alpha", "Priority": 1, "Action": {"Block": {}}, "VisibilityConfig": vis("a"),
         "Statement": {"ByteMatchStatement": {"SearchString": "alpha", "PositionalConstraint": "CONTAINS", "TextTransformations": tx("NONE"), "FieldToMatch": {"UriPath": {}}}}},
        {"Name": "no-beta", "Priority": 2, "Action": {"Block": {}}, "VisibilityConfig": vis("b"),
         "Statement": {"ByteMatchStatement": {"SearchString": "beta", "PositionalConstraint": "CONTAINS", "TextTransformations": tx("NONE"), "FieldToMatch": {"UriPath": {}}}}}
    ]}]);
    let g = start(Some(a), |_| {}).await;
    assert_eq!(get(g.addr(), "/alpha", &[]).await.status, 403);
    assert_eq!(get(g.addr(), "/beta", &[]).await.status, 200, "excluded rule only counts");
}

#[tokio::test]
async fn invalid_acl_is_refused_at_start_and_on_reload() {
    let bad = json!({"Name": "x", "DefaultAction": {"Allow": {}, "Block": {}}, "Rules": []});
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("a.json");
    std::fs::write(&p, bad.to_string()).expect("write");
    let mut cfg =
        rampart_gateway::GatewayConfig::new("127.0.0.1:0".parse().expect("a"), "http://127.0.0.1:9").expect("cfg");
    cfg.web_acl = Some(p);
    let e = rampart_gateway::Gateway::start(cfg).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("exactly one of Allow or Block"), "{e}");

    let a = acl(json!([{"Name": "b", "Priority": 1, "Action": {"Block": {}}, "VisibilityConfig": vis("b"),
        "Statement": {"ByteMatchStatement": {"SearchString": "/x", "PositionalConstraint": "EXACTLY", "TextTransformations": tx("NONE"), "FieldToMatch": {"UriPath": {}}}}}]));
    let g = start(Some(a), |_| {}).await;
    std::fs::write(&g.acl_path, "{ not json").expect("write");
    let refused = || async { g.gw.state.stats.reload_errors.load(std::sync::atomic::Ordering::SeqCst) > 0 };
    assert!(wait_until(Duration::from_secs(5), refused).await);
    assert_eq!(get(g.addr(), "/x", &[]).await.status, 403, "previous ACL still in force");
    assert!(g.gw.reload().is_err());
}

#[tokio::test]
async fn reload_keeps_open_connections() {
    use tokio::io::AsyncWriteExt;
    let a = acl(json!([]));
    let g = start(Some(a), |_| {}).await;
    let mut s = connect_from(g.addr(), None).await.expect("connect");
    let req = b"GET /secret HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\n";
    s.write_all(req).await.expect("write");
    assert_eq!(read_response(&mut s).await.expect("resp").status, 200);
    let before = g.gw.state.stats.reloads.load(std::sync::atomic::Ordering::SeqCst);
    g.write_acl(&acl(json!([{"Name": "b", "Priority": 1, "Action": {"Block": {}}, "VisibilityConfig": vis("b"),
        "Statement": {"ByteMatchStatement": {"SearchString": "/secret", "PositionalConstraint": "EXACTLY", "TextTransformations": tx("NONE"), "FieldToMatch": {"UriPath": {}}}}}])));
    let reloaded = || async { g.gw.state.stats.reloads.load(std::sync::atomic::Ordering::SeqCst) > before };
    assert!(wait_until(Duration::from_secs(5), reloaded).await);
    // Same connection, new ACL.
    s.write_all(req).await.expect("write on the same connection");
    assert_eq!(read_response(&mut s).await.expect("resp").status, 403);
}

fn challenge_acl() -> serde_json::Value {
    acl(json!([
        {"Name": "captcha-login", "Priority": 1, "Action": {"Captcha": {}}, "VisibilityConfig": vis("c"),
         "Statement": {"ByteMatchStatement": {"SearchString": "/login", "PositionalConstraint": "EXACTLY", "TextTransformations": tx("NONE"), "FieldToMatch": {"UriPath": {}}}}},
        {"Name": "challenge-all", "Priority": 2, "Action": {"Challenge": {}}, "VisibilityConfig": vis("ch"),
         "Statement": {"ByteMatchStatement": {"SearchString": "/app", "PositionalConstraint": "STARTS_WITH", "TextTransformations": tx("NONE"), "FieldToMatch": {"UriPath": {}}}}}
    ]))
}

/// A gateway with the challenge ACL on a manual clock; the proof of work asks for `bits` bits.
async fn challenge_gateway(bits: u8) -> (TestGateway, std::sync::Arc<ManualClock>) {
    let clock = ManualClock::new(T0_MS);
    let c2 = clock.clone();
    let g = start(Some(challenge_acl()), move |c| {
        c.clock = c2;
        c.challenge_difficulty = bits;
    })
    .await;
    (g, clock)
}

/// What a script without a JavaScript engine can see: every attribute value and every quoted or
/// bare word of 16+ token characters in the page.
fn token_like_strings(page: &str) -> Vec<String> {
    page.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'))
        .filter(|w| w.len() >= 16)
        .map(str::to_string)
        .collect()
}

fn seed_of(page: &str) -> (String, u32) {
    let seed = page.split("var seed=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("").to_string();
    let bits = page.split("bits=").nth(1).and_then(|s| s.split(',').next()).and_then(|b| b.parse().ok()).unwrap_or(0);
    (seed, bits)
}

fn pow_bits(seed: &str, nonce: &str) -> u32 {
    use sha2::Digest;
    token::leading_zero_bits(&sha2::Sha256::new().chain_update(seed).chain_update(nonce).finalize())
}

/// The proof of work, done the way the page's script does it.
fn solve(seed: &str, bits: u32) -> String {
    (0u64..).map(|n| n.to_string()).find(|n| pow_bits(seed, n) >= bits).unwrap_or_default()
}

async fn post_form(
    addr: std::net::SocketAddr,
    src: Option<std::net::IpAddr>,
    path: &str,
    form: &str,
    cookie: Option<&str>,
) -> Resp {
    let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(c) = cookie {
        h.push(("Cookie", c));
    }
    request(addr, src, "POST", path, &h, form.as_bytes()).await
}

fn cookie_of(r: &Resp) -> Option<String> {
    r.header("set-cookie").and_then(|c| c.split(';').next()).map(str::to_string)
}

#[tokio::test]
async fn challenge_token_needs_the_proof_of_work() {
    let (g, clock) = challenge_gateway(12).await;
    let html = [("Accept", "text/html")];
    let ch = get(g.addr(), "/app/home", &html).await;
    assert_eq!(ch.status, 202);
    assert_eq!(ch.header("x-amzn-waf-action"), Some("challenge"));
    let page = ch.text();

    // As AWS: the page only for clients asking for HTML; others get the status and the header.
    let api = get(g.addr(), "/app/home", &[]).await;
    assert_eq!((api.status, api.header("x-amzn-waf-action")), (202, Some("challenge")));
    assert!(api.body.is_empty());
    let api = get(g.addr(), "/login", &[]).await;
    assert_eq!((api.status, api.header("x-amzn-waf-action")), (405, Some("captcha")));
    assert!(api.body.is_empty());
    // The old bypass: read a token out of the page. There is none, and nothing in it passes as one.
    assert!(!page.contains("aws-waf-token="), "no token in the page");
    for w in token_like_strings(&page) {
        let r = get(g.addr(), "/app/home", &[("Cookie", &format!("aws-waf-token={w}"))]).await;
        assert_eq!(r.status, 202, "a string from the page is not a token: {w}");
    }
    let (seed, bits) = seed_of(&page);
    assert_eq!(bits, 12);
    // Posting the seed back without the work: refused, no cookie.
    let lazy = (0u64..).map(|n| n.to_string()).find(|n| pow_bits(&seed, n) < bits).unwrap_or_default();
    let r = post_form(g.addr(), None, "/.rampart-waf/challenge", &format!("seed={seed}&nonce={lazy}"), None).await;
    assert_eq!(r.status, 403);
    assert!(r.header("set-cookie").is_none());

    // With the work done: the token cookie, and the page is served.
    let nonce = solve(&seed, bits);
    let form = format!("seed={seed}&nonce={nonce}");
    let ok = post_form(g.addr(), None, "/.rampart-waf/challenge", &form, None).await;
    assert_eq!(ok.status, 200);
    let cookie = cookie_of(&ok).expect("token cookie");
    assert!(cookie.starts_with("aws-waf-token="));
    let r = get(g.addr(), "/app/home", &[("Cookie", &cookie)]).await;
    assert_eq!(r.status, 200);
    assert!(r.is_from_upstream());
    // One seed, one token: the same work posted again is refused.
    assert_eq!(post_form(g.addr(), None, "/.rampart-waf/challenge", &form, None).await.status, 403);
    // The token is bound to the client's address.
    let other = Some(std::net::IpAddr::from([127, 0, 0, 2]));
    assert_eq!(request(g.addr(), other, "GET", "/app/home", &[("Cookie", &cookie)], b"").await.status, 202);

    // Within the immunity time (300 s by default) the token holds; after it, a new challenge.
    clock.advance(Duration::from_secs(299));
    assert_eq!(get(g.addr(), "/app/home", &[("Cookie", &cookie)]).await.status, 200);
    clock.advance(Duration::from_secs(2));
    assert_eq!(get(g.addr(), "/app/home", &[("Cookie", &cookie)]).await.status, 202);
}

#[tokio::test]
async fn expired_or_tampered_challenge_seeds_fail() {
    let (g, clock) = challenge_gateway(12).await;
    let addr = g.addr();
    let page = || async move { get(addr, "/app/x", &[("Accept", "text/html")]).await.text() };
    let post = |form: String| async move { post_form(addr, None, "/.rampart-waf/challenge", &form, None).await };

    // Tampered: a lower difficulty written into the seed (and the work done for it), another random
    // part, another issue time: the signature no longer matches.
    let (seed, bits) = seed_of(&page().await);
    let parts: Vec<&str> = seed.split('.').collect();
    assert_eq!(parts.len(), 5, "s1.<issued>.<bits>.<random>.<signature>: {seed}");
    let easier = format!("{}.{}.1.{}.{}", parts[0], parts[1], parts[3], parts[4]);
    assert_eq!(post(format!("seed={easier}&nonce={}", solve(&easier, 1))).await.status, 403);
    let other_rand = format!("{}.{}.{}.{}.{}", parts[0], parts[1], parts[2], "0".repeat(32), parts[4]);
    assert_eq!(post(format!("seed={other_rand}&nonce={}", solve(&other_rand, bits))).await.status, 403);
    let later =
        format!("{}.{}.{}.{}.{}", parts[0], parts[1].parse::<u64>().unwrap_or(0) + 1000, parts[2], parts[3], parts[4]);
    assert_eq!(post(format!("seed={later}&nonce={}", solve(&later, bits))).await.status, 403);
    // Another client's seed.
    let from_other = post_form(
        g.addr(),
        Some(std::net::IpAddr::from([127, 0, 0, 3])),
        "/.rampart-waf/challenge",
        &format!("seed={seed}&nonce={}", solve(&seed, bits)),
        None,
    )
    .await;
    assert_eq!(from_other.status, 403);
    // The untampered seed still works (nothing above used it up).
    assert_eq!(post(format!("seed={seed}&nonce={}", solve(&seed, bits))).await.status, 200);

    // Expired: solved, but posted after the seed's lifetime.
    let (seed, bits) = seed_of(&page().await);
    let nonce = solve(&seed, bits);
    clock.advance(Duration::from_secs(token::SEED_TTL_S + 1));
    let r = post(format!("seed={seed}&nonce={nonce}")).await;
    assert_eq!(r.status, 403);
    assert!(r.header("set-cookie").is_none());
    // Garbage is a 403, never a crash.
    for junk in ["", "seed=&nonce=", "seed=s1.....&nonce=1", "nonce=1", &format!("seed={}&nonce=1", "a.".repeat(5000))]
    {
        assert_eq!(post(junk.to_string()).await.status, 403, "{junk:.40}");
    }
}

/// The challenge page's own script, run by Node.js against the gateway, earns a token.
#[tokio::test]
async fn challenge_page_script_solves_it_in_a_javascript_engine() {
    let (g, _clock) = challenge_gateway(10).await;
    let page = get(g.addr(), "/app/home", &[("Accept", "text/html")]).await.text();
    let script = page.split("<script>").nth(1).and_then(|s| s.split("</script>").next()).expect("script").to_string();
    let harness = format!(
        "const base='http://{addr}';const f=globalThis.fetch;\n\
         globalThis.fetch=(p,o)=>f(base+p,o).then(r=>{{console.log('COOKIE '+r.headers.get('set-cookie'));return r;}});\n\
         globalThis.location={{reload(){{console.log('RELOAD');}}}};\n\
         globalThis.document={{getElementById(){{return {{set textContent(v){{console.log('FAILED '+v);}}}};}}}};\n{script}",
        addr = g.addr()
    );
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("challenge.js");
    std::fs::write(&file, harness).expect("write script");
    let f2 = file.clone();
    let out = tokio::task::spawn_blocking(move || std::process::Command::new("node").arg(&f2).output())
        .await
        .expect("join")
        .expect("Node.js (`node`) is needed for this test: install nodejs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "node failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("RELOAD"), "the script posted its work and reloaded: {stdout}");
    let cookie = stdout
        .lines()
        .find_map(|l| l.strip_prefix("COOKIE "))
        .and_then(|c| c.split(';').next())
        .expect("token cookie")
        .to_string();
    assert_eq!(get(g.addr(), "/app/home", &[("Cookie", &cookie)]).await.status, 200);
}

/// A form field's value in a page.
fn field(page: &str, name: &str) -> String {
    page.split(&format!("name=\"{name}\" value=\"")).nth(1).and_then(|s| s.split('"').next()).unwrap_or("").to_string()
}

/// The answer, recovered with the gateway's own key (only the server can do this).
fn answer_with_key(g: &TestGateway, state: &str) -> String {
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    let found: Vec<String> = (0..100_000u32)
        .map(|n| format!("{n:05}"))
        .filter(|c| g.gw.state.token_key.captcha_answer_matches(state, ip, c))
        .collect();
    assert_eq!(found.len(), 1, "exactly one answer fits the puzzle");
    found.into_iter().next().unwrap_or_default()
}

#[tokio::test]
async fn captcha_is_an_image_whose_answer_is_not_in_the_page() {
    let (g, clock) = challenge_gateway(12).await;
    let c = get(g.addr(), "/login", &[("Accept", "text/html")]).await;
    assert_eq!(c.status, 405);
    assert_eq!(c.header("x-amzn-waf-action"), Some("captcha"));
    let page = c.text();
    // The puzzle is a PNG image.
    let b64 = page.split("data:image/png;base64,").nth(1).and_then(|s| s.split('"').next()).expect("image");
    let png_bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).expect("base64");
    let dec = png::Decoder::new(std::io::Cursor::new(png_bytes)).read_info().expect("a PNG");
    assert!(dec.info().width >= 100 && dec.info().height >= 30);
    // The form has no operands, only an opaque state, and neither it nor the text holds the answer.
    assert_eq!(field(&page, "a"), "");
    assert_eq!(field(&page, "b"), "");
    let state = field(&page, "state");
    assert_eq!(field(&page, "return"), "/login");
    let answer = answer_with_key(&g, &state);
    let text = page.replace(b64, "");
    assert!(!text.contains(&answer), "answer {answer} not in the page's text or fields");
    for w in token_like_strings(&text) {
        assert!(!w.contains(&answer));
    }

    // A script answering from what it can read: every number in the page's text. The first wrong
    // answer uses the puzzle up; even the right answer is then refused.
    let mut numbers: Vec<String> =
        text.split(|c: char| !c.is_ascii_digit()).filter(|w| !w.is_empty()).map(str::to_string).collect();
    numbers.retain(|n| *n != answer);
    numbers.push("12345".into());
    let guess = format!("state={state}&answer={}&return=%2Flogin", numbers[0]);
    let r = post_form(g.addr(), None, "/.rampart-waf/captcha", &guess, None).await;
    assert_eq!(r.status, 403);
    assert!(r.header("set-cookie").is_none());
    assert_eq!(r.header("x-amzn-waf-action"), Some("captcha"), "a fresh puzzle comes back");
    let right = format!("state={state}&answer={answer}&return=%2Flogin");
    assert_eq!(post_form(g.addr(), None, "/.rampart-waf/captcha", &right, None).await.status, 403);

    // A person reading the image: a fresh puzzle, the right digits, the token, the page.
    let page = get(g.addr(), "/login", &[("Accept", "text/html")]).await.text();
    let state = field(&page, "state");
    let answer = answer_with_key(&g, &state);
    let form = format!("state={state}&answer={answer}&return=%2Flogin");
    let solved = post_form(g.addr(), None, "/.rampart-waf/captcha", &form, None).await;
    assert_eq!(solved.status, 303);
    assert_eq!(solved.header("location"), Some("/login"));
    let cookie = cookie_of(&solved).expect("cookie");
    assert_eq!(get(g.addr(), "/login", &[("Cookie", &cookie)]).await.status, 200);
    // A CAPTCHA token also passes the challenge.
    assert_eq!(get(g.addr(), "/app/home", &[("Cookie", &cookie)]).await.status, 200);
    // Used once only.
    assert_eq!(post_form(g.addr(), None, "/.rampart-waf/captcha", &form, None).await.status, 403);

    // Expired: the right answer after the puzzle's lifetime.
    let page = get(g.addr(), "/login", &[("Accept", "text/html")]).await.text();
    let state = field(&page, "state");
    let answer = answer_with_key(&g, &state);
    clock.advance(Duration::from_secs(token::PUZZLE_TTL_S + 1));
    let form = format!("state={state}&answer={answer}&return=%2Flogin");
    assert_eq!(post_form(g.addr(), None, "/.rampart-waf/captcha", &form, None).await.status, 403);
    // And the CAPTCHA token from before is past its immunity time (300 s) by now.
    assert_eq!(get(g.addr(), "/login", &[("Cookie", &cookie)]).await.status, 405);
}

#[tokio::test]
async fn logs_samples_and_metrics() {
    let a = acl(
        json!([{"Name": "sqli", "Priority": 1, "Action": {"Block": {}}, "VisibilityConfig": vis("sqli-metric"),
        "Statement": {"SqliMatchStatement": {"FieldToMatch": {"QueryString": {}}, "TextTransformations": tx("URL_DECODE")}}}]),
    );
    let log = tempfile::NamedTempFile::new().expect("tmp");
    let log_path = log.path().to_path_buf();
    let lp = log_path.clone();
    let g = start(Some(a), move |c| c.waf_log = Some(lp)).await;
    assert_eq!(
        get(
            g.addr(),
            "/?id=1%20UNION%20SELECT%20password%20FROM%20users--",
            &[("Authorization", "Bearer secret-token")]
        )
        .await
        .status,
        403
    );
    assert_eq!(get(g.addr(), "/fine", &[]).await.status, 200);
    let logged = || async { std::fs::read_to_string(&log_path).map(|s| s.lines().count() >= 2).unwrap_or(false) };
    assert!(wait_until(Duration::from_secs(5), logged).await);
    let text = std::fs::read_to_string(&log_path).expect("log");
    assert!(!text.contains("secret-token"), "credentials never logged");
    let recs: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let blocked = recs.iter().find(|r| r["action"] == "BLOCK").expect("block record");
    assert_eq!(blocked["formatVersion"], 1);
    assert_eq!(blocked["terminatingRuleId"], "sqli");
    assert_eq!(blocked["terminatingRuleType"], "REGULAR");
    assert_eq!(blocked["terminatingRuleMatchDetails"][0]["conditionType"], "SQL_INJECTION");
    assert_eq!(blocked["httpRequest"]["clientIp"], "127.0.0.1");
    assert_eq!(blocked["httpRequest"]["httpMethod"], "GET");
    assert_eq!(blocked["responseCodeSent"], 403);
    assert!(blocked["webaclId"].as_str().unwrap_or("").starts_with("arn:aws:wafv2:"));
    let allowed = recs.iter().find(|r| r["action"] == "ALLOW").expect("allow record");
    assert_eq!(allowed["terminatingRuleId"], "Default_Action");

    let s = admin_get(&g, "/sampled-requests?metric=sqli-metric").await.json();
    assert_eq!(s["SampledRequests"][0]["Action"], "BLOCK");
    assert_eq!(s["SampledRequests"][0]["Request"]["URI"], "/");
    assert!(s["PopulationSize"].as_u64().unwrap_or(0) >= 1);

    let m = admin_get(&g, "/metrics").await.text();
    assert!(m.contains("rampart_waf_rule_requests_total{rule=\"test-acl#sqli\",action=\"BLOCK\"} 1"), "{m}");
    assert!(m.contains("rampart_gateway_requests_total 2"));
    assert!(m.contains("rampart_waf_rule_requests_total{rule=\"test-acl#Default_Action\",action=\"ALLOW\"} 1"));
}

#[tokio::test]
async fn upstream_down_is_502_and_health_reports_it() {
    let mut cfg =
        rampart_gateway::GatewayConfig::new("127.0.0.1:0".parse().expect("a"), "http://127.0.0.1:1").expect("cfg");
    cfg.admin_listen = Some("127.0.0.1:0".parse().expect("a"));
    let gw = rampart_gateway::Gateway::start(cfg).await.expect("start");
    assert_eq!(get(gw.addr, "/", &[]).await.status, 502);
    let admin = gw.admin_addr.expect("admin");
    let unhealthy = || async {
        raw(admin, None, b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .await
            .map(|r| r.status == 503)
            .unwrap_or(false)
    };
    assert!(wait_until(Duration::from_secs(6), unhealthy).await);
    gw.shutdown(Duration::from_secs(1)).await;
}

/// Everyday traffic through every managed group of bench/gateway/crs-acl.json must pass: the corpus'
/// "false positive" tests are few, so this is the other half of the check.
#[tokio::test]
async fn managed_groups_let_ordinary_traffic_through() {
    let acl: serde_json::Value =
        serde_json::from_str(include_str!("../../../bench/gateway/crs-acl.json")).expect("acl json");
    let g = start(Some(acl), |_| {}).await;
    let a = g.addr();
    let ua = ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0");
    let gets = [
        "/",
        "/index.html",
        "/products?category=shoes&size=42&sort=price_asc&page=3",
        "/search?q=how+to+select+a+good+union+representative",
        "/search?q=rust%20async%20await%20tutorial",
        "/search?q=O%27Reilly+books+%26+more",
        "/blog/2024/05/why-we-moved-to-postgres",
        "/api/v1/users/12345/orders?status=shipped&from=2024-01-01&to=2024-02-01",
        "/static/js/app.min.js?v=3.2.1",
        "/images/logo@2x.png",
        "/docs/getting-started#install",
        "/redirect?next=%2Faccount%2Fsettings",
        "/calc?expr=1%2B2%3D3",
        "/feed.xml",
        "/search?q=select+the+best+drop+shipping+provider",
        "/wiki/Java_(programming_language)",
        "/recipes?ingredients=eggs,flour,sugar&time=30min",
    ];
    for p in gets {
        let r = get(
            a,
            p,
            &[ua, ("Referer", "https://www.example.com/"), ("Cookie", "session=abc123; theme=dark; lang=en-US")],
        )
        .await;
        assert_eq!(r.status, 200, "benign GET {p} blocked");
    }
    let posts: [(&str, &str, &[u8]); 7] = [
        ("/login", "application/x-www-form-urlencoded", b"username=alice%40example.com&password=S3cure%21Pass%23word&remember=on"),
        ("/comments", "application/x-www-form-urlencoded", b"name=Bob&comment=Great+article%21+I+especially+liked+the+part+about+caching.+Thanks+%3A%29"),
        ("/api/orders", "application/json", br#"{"items":[{"sku":"A-100","qty":2},{"sku":"B-7","qty":1}],"note":"Please leave at the door; ring twice.","coupon":null}"#),
        ("/api/profile", "application/json", br#"{"bio":"I write software and run marathons. Favourite languages: Rust, Go & SQL.","website":"https://example.org/about"}"#),
        ("/graphql", "application/json", br#"{"query":"query { user(id: 5) { name email } }","variables":{}}"#),
        ("/contact", "application/x-www-form-urlencoded", b"subject=Question+about+pricing&message=Hi%2C+do+you+offer+discounts+for+nonprofits%3F+We+have+10-20+users."),
        ("/upload", "text/plain", b"Meeting notes 2024-05-01\n- select vendor by Friday\n- update the roadmap\n"),
    ];
    for (p, ct, body) in posts {
        let r = request(a, None, "POST", p, &[ua, ("Content-Type", ct)], body).await;
        assert_eq!(r.status, 200, "benign POST {p} blocked");
    }
}
