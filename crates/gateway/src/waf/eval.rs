//! Evaluates a request against a compiled web ACL with AWS WAFv2's semantics: rules in priority order,
//! labels visible to later rules, Count non-terminating, Allow/Block terminating, CAPTCHA/Challenge
//! terminating unless the request carries a valid token, rule group override actions.

use std::borrow::Cow;
use std::net::IpAddr;

use super::compile::{
    Action, AggKey, CmpOp, CustomKey, FwdConfig, FwdPosition, GroupRef, Positional, RateRule, Rule, RuleBody, RuleType,
    Stmt, WebAcl,
};
use super::detect;
use super::fields::{Extracted, Field};
use super::rate::RateCounters;
use super::request::WafRequest;
use super::transform::{apply_all, Transform};

/// What the evaluator needs from outside the request.
pub struct EvalEnv<'a> {
    pub rates: &'a RateCounters,
    pub geo: Option<&'a maxminddb::Reader<Vec<u8>>>,
    /// Age in seconds of the request's valid token, if any (`aws-waf-token` cookie): (challenge, captcha).
    pub token_age: Option<(u64, Option<u64>)>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchDetail {
    pub condition_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensitivity_level: Option<&'static str>,
    pub location: &'static str,
    pub matched_data: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleHit {
    pub rule_id: String,
    pub action: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rule_match_details: Vec<MatchDetail>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupLog {
    pub rule_group_id: String,
    pub terminating_rule: Option<RuleHit>,
    pub non_terminating_matching_rules: Vec<RuleHit>,
    pub excluded_rules: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLog {
    pub rate_based_rule_id: String,
    pub rate_based_rule_name: String,
    pub limit_key: &'static str,
    pub max_rate_allowed: u64,
    pub evaluation_window_sec: String,
    pub limit_value: String,
}

#[derive(Debug)]
pub struct Verdict {
    pub action: Action,
    pub terminating_rule_id: String,
    pub terminating_rule_type: &'static str,
    pub terminating_details: Vec<MatchDetail>,
    pub labels: Vec<String>,
    pub non_terminating: Vec<RuleHit>,
    pub rule_groups: Vec<GroupLog>,
    pub rate_based: Vec<RateLog>,
    pub insert_headers: Vec<(String, String)>,
    /// (metric name, rule name within group) when this request is to be sampled.
    pub sample: Option<(String, Option<String>)>,
}

impl Verdict {
    pub fn blocked(&self) -> bool {
        !matches!(self.action, Action::Allow(_))
    }
}

struct State<'r> {
    req: &'r WafRequest,
    body_limit: usize,
    labels: Vec<String>,
    details: Vec<MatchDetail>,
    rate_logs: Vec<RateLog>,
}

enum Outcome {
    Continue,
    Terminate {
        action: Action,
        rule_id: String,
        rule_type: RuleType,
        details: Vec<MatchDetail>,
        within_group: Option<String>,
    },
}

pub fn evaluate(acl: &WebAcl, req: &WafRequest, env: &EvalEnv<'_>) -> Verdict {
    let mut st =
        State { req, body_limit: acl.body_limit, labels: Vec::new(), details: Vec::new(), rate_logs: Vec::new() };
    let mut verdict = Verdict {
        action: acl.default_action.clone(),
        terminating_rule_id: "Default_Action".to_string(),
        terminating_rule_type: "REGULAR",
        terminating_details: Vec::new(),
        labels: Vec::new(),
        non_terminating: Vec::new(),
        rule_groups: Vec::new(),
        rate_based: Vec::new(),
        insert_headers: Vec::new(),
        sample: None,
    };
    let mut sample_metric: Option<(String, Option<String>)> = None;
    for rule in &acl.rules {
        let outcome = match &rule.body {
            RuleBody::Plain { stmt, action } => eval_rule(rule, stmt, action, &mut st, env, acl, &mut verdict, None),
            RuleBody::Group(g) => eval_group(rule, g, &mut st, env, acl, &mut verdict),
        };
        if let Outcome::Terminate { action, rule_id, rule_type, details, within_group } = outcome {
            if rule.sampled {
                sample_metric = Some((rule.metric_name.clone(), within_group));
            }
            rule.metrics.record(action.name());
            verdict.terminating_rule_id = rule_id;
            verdict.terminating_rule_type = rule_type.log_name();
            verdict.terminating_details = details;
            if let Action::Allow(h) = &action {
                verdict.insert_headers.extend(h.iter().cloned());
            }
            verdict.action = action;
            break;
        }
    }
    if verdict.terminating_rule_id == "Default_Action" {
        acl.metrics.record(verdict.action.name());
        if acl.sampled {
            sample_metric = Some((acl.metric_name.clone(), None));
        }
        if let Action::Allow(h) = &acl.default_action {
            verdict.insert_headers.extend(h.iter().cloned());
        }
    }
    verdict.sample = sample_metric;
    verdict.labels = st.labels;
    verdict.rate_based = st.rate_logs;
    verdict
}

/// Applies a matched rule's action. Returns the effective action name and whether it terminates.
fn effective(action: &Action, rule: &Rule, acl: &WebAcl, env: &EvalEnv<'_>) -> bool {
    match action {
        Action::Allow(_) | Action::Block(_) => true,
        Action::Count(_) => false,
        Action::Captcha(_) => {
            let immunity = rule.captcha_immunity.unwrap_or(acl.captcha_immunity);
            !matches!(env.token_age, Some((_, Some(age))) if age <= immunity)
        }
        Action::Challenge(_) => {
            let immunity = rule.challenge_immunity.unwrap_or(acl.challenge_immunity);
            !matches!(env.token_age, Some((age, _)) if age <= immunity)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn eval_rule(
    rule: &Rule,
    stmt: &Stmt,
    action: &Action,
    st: &mut State<'_>,
    env: &EvalEnv<'_>,
    acl: &WebAcl,
    verdict: &mut Verdict,
    group: Option<(&GroupRef, &mut GroupLog)>,
) -> Outcome {
    st.details.clear();
    if !matches(stmt, st, env) {
        return Outcome::Continue;
    }
    let details = std::mem::take(&mut st.details);
    st.labels.extend(rule.labels.iter().cloned());
    // Inside a group: per-rule overrides, then the group's OverrideAction Count.
    let mut action = action.clone();
    let mut group_log = None;
    if let Some((g, log)) = group {
        if let Some(o) = g.overrides.get(&rule.name) {
            action = o.clone();
        }
        if g.override_count {
            action = Action::Count(Vec::new());
        }
        group_log = Some(log);
    }
    let terminates = effective(&action, rule, acl, env);
    let hit = RuleHit { rule_id: rule.name.clone(), action: action.name(), rule_match_details: details.clone() };
    if !terminates {
        // Count (or a CAPTCHA/Challenge with a valid token): labels and headers, evaluation goes on.
        rule.metrics.record(if matches!(action, Action::Count(_)) { "COUNT" } else { action.name() });
        if let Action::Count(h) | Action::Captcha(h) | Action::Challenge(h) = &action {
            verdict.insert_headers.extend(h.iter().cloned());
        }
        match group_log {
            Some(log) => log.non_terminating_matching_rules.push(hit),
            None => verdict.non_terminating.push(hit),
        }
        return Outcome::Continue;
    }
    if let Some(log) = group_log {
        rule.metrics.record(action.name());
        log.terminating_rule = Some(RuleHit { rule_match_details: Vec::new(), ..hit });
    }
    Outcome::Terminate { action, rule_id: rule.name.clone(), rule_type: rule.rule_type, details, within_group: None }
}

fn eval_group(
    rule: &Rule,
    g: &GroupRef,
    st: &mut State<'_>,
    env: &EvalEnv<'_>,
    acl: &WebAcl,
    verdict: &mut Verdict,
) -> Outcome {
    if let Some(sd) = &g.scope_down {
        if !matches(sd, st, env) {
            return Outcome::Continue;
        }
    }
    let mut log = GroupLog {
        rule_group_id: g.id.clone(),
        terminating_rule: None,
        non_terminating_matching_rules: Vec::new(),
        excluded_rules: None,
    };
    let mut result = Outcome::Continue;
    let mut any_match = false;
    for inner in &g.rules {
        let RuleBody::Plain { stmt, action } = &inner.body else { continue };
        let before = log.non_terminating_matching_rules.len();
        match eval_rule(inner, stmt, action, st, env, acl, verdict, Some((g, &mut log))) {
            Outcome::Continue => {
                if log.non_terminating_matching_rules.len() > before {
                    any_match = true;
                }
            }
            Outcome::Terminate { action, details, .. } => {
                any_match = true;
                result = Outcome::Terminate {
                    action,
                    rule_id: rule.name.clone(),
                    rule_type: rule.rule_type,
                    details,
                    within_group: Some(inner.name.clone()),
                };
                break;
            }
        }
    }
    if rule.labels.is_empty() || !any_match {
        // Rule labels on a group reference rule are added when the group matches.
    } else {
        st.labels.extend(rule.labels.iter().cloned());
    }
    if any_match {
        verdict.rule_groups.push(log);
        if matches!(result, Outcome::Continue) && g.override_count {
            rule.metrics.record("COUNT");
        }
    }
    result
}

fn items_match(
    field: &Field,
    tx: &[Transform],
    st: &mut State<'_>,
    detail: Option<(&'static str, Option<&'static str>)>,
    pred: impl Fn(&[u8]) -> bool,
) -> bool {
    match field.extract(st.req, st.body_limit) {
        Extracted::ForceMatch => true,
        Extracted::ForceNoMatch => false,
        Extracted::Items(items) => {
            for it in &items {
                let v: Cow<'_, [u8]> = apply_all(tx, it);
                if pred(&v) {
                    if let Some((cond, level)) = detail {
                        st.details.push(MatchDetail {
                            condition_type: cond,
                            sensitivity_level: level,
                            location: field.location(),
                            matched_data: matched_tokens(&v),
                        });
                    }
                    return true;
                }
            }
            false
        }
    }
}

fn matched_tokens(v: &[u8]) -> Vec<String> {
    let s = String::from_utf8_lossy(&v[..v.len().min(100)]);
    s.split_whitespace().take(10).map(|t| t.to_string()).collect()
}

fn contains_word(hay: &[u8], finder: &memchr::memmem::Finder<'_>, n: usize) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut start = 0;
    while let Some(i) = finder.find(&hay[start..]) {
        let at = start + i;
        let before_ok = at == 0 || !word(hay[at - 1]);
        let after_ok = at + n >= hay.len() || !word(hay[at + n]);
        if before_ok && after_ok {
            return true;
        }
        start = at + 1;
        if start >= hay.len() {
            break;
        }
    }
    false
}

fn cmp(op: CmpOp, a: u64, b: u64) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Le => a <= b,
        CmpOp::Lt => a < b,
        CmpOp::Ge => a >= b,
        CmpOp::Gt => a > b,
    }
}

/// The addresses named by a forwarded-IP header (e.g. X-Forwarded-For), in order; None when absent or invalid.
fn forwarded_ips(req: &WafRequest, fwd: &FwdConfig) -> Option<Vec<IpAddr>> {
    let v = req.header(&fwd.header)?;
    let s = std::str::from_utf8(v).ok()?;
    let mut out = Vec::new();
    for part in s.split(',') {
        let p = part.trim();
        // Strip an optional port ("1.2.3.4:80", "[::1]:80").
        let p = p.strip_prefix('[').and_then(|x| x.split(']').next()).unwrap_or(p);
        let ip = p.parse::<IpAddr>().ok().or_else(|| p.rsplit_once(':').and_then(|(h, _)| h.parse().ok()))?;
        out.push(ip);
    }
    (!out.is_empty()).then_some(out)
}

fn first_forwarded_ip(req: &WafRequest, fwd: &FwdConfig) -> Option<IpAddr> {
    forwarded_ips(req, fwd).and_then(|v| v.first().copied())
}

pub fn label_matches(labels: &[String], namespace: bool, key: &str) -> bool {
    labels.iter().any(|l| {
        if namespace {
            let ns = match l.rfind(':') {
                Some(i) => &l[..=i],
                None => return false,
            };
            ns.starts_with(key) || ns.contains(&format!(":{key}"))
        } else {
            l == key || (l.ends_with(key) && l.as_bytes().get(l.len() - key.len() - 1) == Some(&b':'))
        }
    })
}

fn country(env: &EvalEnv<'_>, ip: IpAddr) -> Option<String> {
    lookup_country(env.geo, ip)
}

pub fn lookup_country(geo: Option<&maxminddb::Reader<Vec<u8>>>, ip: IpAddr) -> Option<String> {
    let db = geo?;
    let r = db.lookup(ip).ok()?;
    let c: maxminddb::geoip2::Country = r.decode().ok()??;
    c.country.iso_code.map(|s| s.to_string())
}

fn matches(stmt: &Stmt, st: &mut State<'_>, env: &EvalEnv<'_>) -> bool {
    match stmt {
        Stmt::Byte { field, tx, pos, needle, finder } => {
            let (pos, n) = (*pos, needle.len());
            items_match(field, tx, st, None, |v| match pos {
                Positional::Exactly => v == needle.as_slice(),
                Positional::StartsWith => v.starts_with(needle),
                Positional::EndsWith => v.ends_with(needle),
                Positional::Contains => finder.find(v).is_some(),
                Positional::ContainsWord => contains_word(v, finder, n),
            })
        }
        Stmt::Regex { field, tx, re } => items_match(field, tx, st, None, |v| re.is_match(v)),
        Stmt::RegexSet { field, tx, set } => items_match(field, tx, st, None, |v| set.is_match(v)),
        Stmt::Sqli { field, tx, high } => {
            let level = if *high { "HIGH" } else { "LOW" };
            items_match(field, tx, st, Some(("SQL_INJECTION", Some(level))), |v| detect::is_sqli(v, *high))
        }
        Stmt::Xss { field, tx } => items_match(field, tx, st, Some(("XSS", None)), detect::is_xss),
        Stmt::Size { field, tx, op, size } => {
            // Size of the whole field: for multi-item fields any item's size may match.
            let (op, size) = (*op, *size);
            match field.extract(st.req, usize::MAX) {
                Extracted::ForceMatch => true,
                Extracted::ForceNoMatch => false,
                Extracted::Items(items) => {
                    if items.is_empty() {
                        return cmp(op, 0, size);
                    }
                    items.iter().any(|it| cmp(op, apply_all(tx, it).len() as u64, size))
                }
            }
        }
        Stmt::Geo { codes, fwd } => {
            let ip = match fwd {
                Some(f) => match first_forwarded_ip(st.req, f) {
                    Some(ip) => ip,
                    None => return f.fallback_match,
                },
                None => st.req.client_ip,
            };
            country(env, ip).is_some_and(|c| codes.contains(&c))
        }
        Stmt::Ip { set, fwd } => match fwd {
            None => set.contains(st.req.client_ip),
            Some(f) => match forwarded_ips(st.req, f) {
                None => f.fallback_match,
                Some(ips) => match f.position {
                    FwdPosition::First => ips.first().is_some_and(|ip| set.contains(*ip)),
                    FwdPosition::Last => ips.last().is_some_and(|ip| set.contains(*ip)),
                    FwdPosition::Any => ips.iter().any(|ip| set.contains(*ip)),
                },
            },
        },
        Stmt::Label { namespace, key } => label_matches(&st.labels, *namespace, key),
        Stmt::Rate(r) => rate_matches(r, st, env),
        Stmt::And(v) => v.iter().all(|s| matches(s, st, env)),
        Stmt::Or(v) => v.iter().any(|s| matches(s, st, env)),
        Stmt::Not(s) => {
            let saved = st.details.len();
            let m = matches(s, st, env);
            st.details.truncate(saved);
            !m
        }
    }
}

fn rate_key(r: &RateRule, st: &State<'_>) -> Option<(String, &'static str)> {
    let req = st.req;
    Some(match &r.key {
        AggKey::Ip => (req.client_ip.to_string(), "IP"),
        AggKey::Constant => (String::new(), "CONSTANT"),
        AggKey::ForwardedIp => (first_forwarded_ip(req, r.fwd.as_ref()?)?.to_string(), "FORWARDED_IP"),
        AggKey::Custom(keys) => {
            let mut parts: Vec<String> = Vec::with_capacity(keys.len());
            for k in keys {
                let v: Vec<u8> = match k {
                    CustomKey::Header(n, tx) => apply_all(tx, req.header(n)?).into_owned(),
                    CustomKey::Cookie(n, tx) => apply_all(tx, req.cookie(n)?).into_owned(),
                    CustomKey::QueryArgument(n, tx) => {
                        let v = req.query_args().iter().find(|(k, _)| k.eq_ignore_ascii_case(n.as_bytes()))?;
                        apply_all(tx, &v.1).into_owned()
                    }
                    CustomKey::QueryString(tx) => {
                        if req.query.is_empty() {
                            return None;
                        }
                        apply_all(tx, req.query.as_bytes()).into_owned()
                    }
                    CustomKey::UriPath(tx) => apply_all(tx, req.path.as_bytes()).into_owned(),
                    CustomKey::HttpMethod => req.method.as_bytes().to_vec(),
                    CustomKey::Ip => req.client_ip.to_string().into_bytes(),
                    CustomKey::ForwardedIp => first_forwarded_ip(req, r.fwd.as_ref()?)?.to_string().into_bytes(),
                    CustomKey::LabelNamespace(ns) => {
                        let l =
                            st.labels.iter().find(|l| l.starts_with(ns.as_str()) || l.contains(&format!(":{ns}")))?;
                        l.as_bytes().to_vec()
                    }
                };
                parts.push(String::from_utf8_lossy(&v).into_owned());
            }
            (parts.join("\u{1f}"), "CUSTOM_KEYS")
        }
    })
}

fn rate_matches(r: &RateRule, st: &mut State<'_>, env: &EvalEnv<'_>) -> bool {
    if let Some(sd) = &r.scope_down {
        if !matches(sd, st, env) {
            return false;
        }
    }
    // A request without the aggregation key's components is not counted (as in AWS).
    let Some((key, kind)) = rate_key(r, st) else { return false };
    let count = env.rates.hit(&r.id, &key, r.window_sec);
    if count > r.limit {
        st.rate_logs.push(RateLog {
            rate_based_rule_id: r.id.clone(),
            rate_based_rule_name: r.id.rsplit('/').next().unwrap_or_default().to_string(),
            limit_key: kind,
            max_rate_allowed: r.limit,
            evaluation_window_sec: r.window_sec.to_string(),
            limit_value: key,
        });
        true
    } else {
        false
    }
}
