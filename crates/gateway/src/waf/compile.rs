//! Checks a web ACL file and compiles it into what requests are evaluated against: regexes built once,
//! IP sets as sorted ranges, ARNs resolved, labels fully qualified, managed rule groups expanded.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::fields::{Field, JsonFallback, NameFilter, Oversize, Scope};
use super::managed;
use super::metrics::{RuleMetrics, WafMetrics};
use super::model;
use super::transform::Transform;

#[derive(Debug, thiserror::Error)]
#[error("web ACL: {0}")]
pub struct AclError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, AclError> {
    Err(AclError(msg.into()))
}

#[derive(Debug, Clone)]
pub struct CustomResp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<(String, String)>,
}

#[derive(Debug, Clone)]
pub enum Action {
    Allow(Vec<(String, String)>),
    Block(Option<Arc<CustomResp>>),
    Count(Vec<(String, String)>),
    Captcha(Vec<(String, String)>),
    Challenge(Vec<(String, String)>),
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Allow(_) => "ALLOW",
            Action::Block(_) => "BLOCK",
            Action::Count(_) => "COUNT",
            Action::Captcha(_) => "CAPTCHA",
            Action::Challenge(_) => "CHALLENGE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positional {
    Exactly,
    StartsWith,
    EndsWith,
    Contains,
    ContainsWord,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Le,
    Lt,
    Ge,
    Gt,
}

#[derive(Debug, Clone)]
pub struct FwdConfig {
    pub header: String,
    /// FallbackBehavior MATCH: a missing/invalid header makes the statement match.
    pub fallback_match: bool,
    /// IP sets only: FIRST, LAST or ANY address of the header's list.
    pub position: FwdPosition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FwdPosition {
    First,
    Last,
    Any,
}

/// An IP set as sorted, merged [start, end] ranges over the 128-bit space (v4 mapped into v6).
#[derive(Debug, Default)]
pub struct IpRanges {
    ranges: Vec<(u128, u128)>,
}

pub fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(v4.to_ipv6_mapped()),
            None => u128::from(v6),
        },
    }
}

impl IpRanges {
    pub fn from_cidrs<S: AsRef<str>>(list: &[S]) -> Result<IpRanges, String> {
        let mut ranges = Vec::with_capacity(list.len());
        for s in list {
            let s = s.as_ref().trim();
            let net: ipnet::IpNet = match s.parse() {
                Ok(n) => n,
                Err(_) => match s.parse::<IpAddr>() {
                    Ok(ip) => ipnet::IpNet::from(ip),
                    Err(_) => return Err(format!("invalid address or CIDR {s:?}")),
                },
            };
            let (lo, hi) = match net {
                ipnet::IpNet::V4(n) => (ip_to_u128(IpAddr::V4(n.network())), ip_to_u128(IpAddr::V4(n.broadcast()))),
                ipnet::IpNet::V6(n) => (u128::from(n.network()), u128::from(n.broadcast())),
            };
            ranges.push((lo, hi));
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        Ok(IpRanges { ranges: merged })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let x = ip_to_u128(ip);
        let i = self.ranges.partition_point(|r| r.0 <= x);
        i > 0 && self.ranges[i - 1].1 >= x
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[derive(Debug, Clone)]
pub enum AggKey {
    Ip,
    ForwardedIp,
    Constant,
    Custom(Vec<CustomKey>),
}

#[derive(Debug, Clone)]
pub enum CustomKey {
    Header(String, Vec<Transform>),
    Cookie(String, Vec<Transform>),
    QueryArgument(String, Vec<Transform>),
    QueryString(Vec<Transform>),
    UriPath(Vec<Transform>),
    HttpMethod,
    ForwardedIp,
    Ip,
    LabelNamespace(String),
}

#[derive(Debug)]
pub struct RateRule {
    /// Shared name of the counters (the same on every gateway running this ACL).
    pub id: String,
    pub limit: u64,
    pub window_sec: u64,
    pub key: AggKey,
    pub scope_down: Option<Stmt>,
    pub fwd: Option<FwdConfig>,
}

#[derive(Debug)]
pub enum Stmt {
    Byte {
        field: Field,
        tx: Vec<Transform>,
        pos: Positional,
        needle: Vec<u8>,
        finder: Box<memchr::memmem::Finder<'static>>,
    },
    Regex {
        field: Field,
        tx: Vec<Transform>,
        re: Arc<Regex>,
    },
    RegexSet {
        field: Field,
        tx: Vec<Transform>,
        set: Arc<RegexSet>,
    },
    Sqli {
        field: Field,
        tx: Vec<Transform>,
        high: bool,
    },
    Xss {
        field: Field,
        tx: Vec<Transform>,
    },
    Size {
        field: Field,
        tx: Vec<Transform>,
        op: CmpOp,
        size: u64,
    },
    Geo {
        codes: BTreeSet<String>,
        fwd: Option<FwdConfig>,
    },
    Ip {
        set: Arc<IpRanges>,
        fwd: Option<FwdConfig>,
    },
    Label {
        namespace: bool,
        key: String,
    },
    Rate(Arc<RateRule>),
    And(Vec<Stmt>),
    Or(Vec<Stmt>),
    Not(Box<Stmt>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleType {
    Regular,
    RateBased,
    Group,
    ManagedGroup,
}

impl RuleType {
    pub fn log_name(self) -> &'static str {
        match self {
            RuleType::Regular => "REGULAR",
            RuleType::RateBased => "RATE_BASED",
            RuleType::Group => "GROUP",
            RuleType::ManagedGroup => "MANAGED_RULE_GROUP",
        }
    }
}

#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub priority: i64,
    pub labels: Vec<String>,
    pub metrics: Arc<RuleMetrics>,
    pub sampled: bool,
    pub metric_name: String,
    pub body: RuleBody,
    pub rule_type: RuleType,
    pub captcha_immunity: Option<u64>,
    pub challenge_immunity: Option<u64>,
}

#[derive(Debug)]
pub enum RuleBody {
    Plain { stmt: Stmt, action: Action },
    Group(GroupRef),
}

#[derive(Debug)]
pub struct GroupRef {
    /// The group's identifier in logs (its ARN, or `AWS#<name>` for a managed group).
    pub id: String,
    pub rules: Vec<Rule>,
    /// OverrideAction Count: every rule in the group only counts.
    pub override_count: bool,
    pub overrides: HashMap<String, Action>,
    pub scope_down: Option<Stmt>,
}

#[derive(Debug)]
pub struct WebAcl {
    pub name: String,
    pub arn: String,
    pub default_action: Action,
    pub rules: Vec<Rule>,
    pub body_limit: usize,
    pub metric_name: String,
    pub sampled: bool,
    pub captcha_immunity: u64,
    pub challenge_immunity: u64,
    pub metrics: Arc<RuleMetrics>,
}

struct Ctx<'a> {
    file: &'a model::AclFile,
    account: String,
    ip_sets: HashMap<String, Arc<IpRanges>>,
    regex_sets: HashMap<&'a str, Arc<RegexSet>>,
    groups: HashMap<&'a str, &'a model::RuleGroup>,
    metrics: &'a WafMetrics,
}

/// Compiles an ACL file. `metrics` keeps per-rule counters across reloads.
pub fn compile(file: &model::AclFile, metrics: &WafMetrics) -> Result<WebAcl, AclError> {
    if file.name.is_empty() || file.name.len() > 128 {
        return err("Name must be 1-128 characters");
    }
    let arn = match &file.arn {
        Some(a) => a.clone(),
        None => format!(
            "arn:aws:wafv2:us-east-1:000000000000:regional/webacl/{}/00000000-0000-0000-0000-000000000000",
            file.name
        ),
    };
    let account = arn.split(':').nth(4).filter(|a| !a.is_empty()).unwrap_or("000000000000").to_string();
    let mut ctx =
        Ctx { file, account, ip_sets: HashMap::new(), regex_sets: HashMap::new(), groups: HashMap::new(), metrics };
    for s in &file.ip_sets {
        let ranges = IpRanges::from_cidrs(&s.addresses).map_err(|e| AclError(format!("IP set {}: {e}", s.name)))?;
        let v = s.ip_address_version.as_str();
        if v != "IPV4" && v != "IPV6" {
            return err(format!("IP set {}: IPAddressVersion must be IPV4 or IPV6", s.name));
        }
        ctx.ip_sets.insert(s.arn.clone(), Arc::new(ranges));
    }
    for k in file.managed_ip_lists.keys() {
        if !managed::IP_LISTS.contains(&k.as_str()) {
            return err(format!("ManagedIpLists: unknown list {k} (known: {})", managed::IP_LISTS.join(", ")));
        }
    }
    for name in managed::IP_LISTS {
        let list = file.managed_ip_lists.get(*name).map(Vec::as_slice).unwrap_or_default();
        let ranges = IpRanges::from_cidrs(list).map_err(|e| AclError(format!("ManagedIpLists {name}: {e}")))?;
        ctx.ip_sets.insert(managed::ip_list_arn(name), Arc::new(ranges));
    }
    for s in &file.regex_pattern_sets {
        let pats: Vec<&str> = s.regular_expression_list.iter().map(|r| r.regex_string.as_str()).collect();
        let set = RegexSetBuilder::new(&pats)
            .size_limit(32 << 20)
            .build()
            .map_err(|e| AclError(format!("regex pattern set {}: {e}", s.name)))?;
        ctx.regex_sets.insert(s.arn.as_str(), Arc::new(set));
    }
    for g in &file.rule_groups {
        ctx.groups.insert(g.arn.as_str(), g);
    }
    let default_action = match (&file.default_action.allow, &file.default_action.block) {
        (Some(a), None) => Action::Allow(insert_headers(a.custom_request_handling.as_ref())),
        (None, Some(b)) => Action::Block(custom_response(b, &file.custom_response_bodies)?),
        _ => return err("DefaultAction must have exactly one of Allow or Block"),
    };
    let prefix = format!("awswaf:{}:webacl:{}:", ctx.account, file.name);
    let rules = compile_rules(&ctx, &file.rules, &prefix, &file.custom_response_bodies, &file.name, true)?;
    let body_limit = file
        .association_config
        .as_ref()
        .and_then(|a| a.request_body.values().next())
        .map(|r| match r.default_size_inspection_limit.as_str() {
            "KB_16" => Ok(16 * 1024),
            "KB_32" => Ok(32 * 1024),
            "KB_48" => Ok(48 * 1024),
            "KB_64" => Ok(64 * 1024),
            other => err(format!("unknown DefaultSizeInspectionLimit {other}")),
        })
        .transpose()?
        .unwrap_or(8 * 1024);
    let vis = file.visibility_config.as_ref();
    let metric_name = vis.map(|v| v.metric_name.clone()).unwrap_or_else(|| file.name.clone());
    Ok(WebAcl {
        name: file.name.clone(),
        arn,
        default_action,
        rules,
        body_limit,
        sampled: vis.is_none_or(|v| v.sampled_requests_enabled),
        metrics: metrics.rule(&format!("{}#{}", file.name, "Default_Action")),
        metric_name,
        captcha_immunity: file.captcha_config.as_ref().map_or(300, |c| c.immunity_time_property.immunity_time),
        challenge_immunity: file.challenge_config.as_ref().map_or(300, |c| c.immunity_time_property.immunity_time),
    })
}

fn insert_headers(h: Option<&model::CustomRequestHandling>) -> Vec<(String, String)> {
    h.map(|h| {
        h.insert_headers
            .iter()
            .map(|nv| (format!("x-amzn-waf-{}", nv.name.to_ascii_lowercase()), nv.value.clone()))
            .collect()
    })
    .unwrap_or_default()
}

fn custom_response(
    b: &model::BlockAction,
    bodies: &std::collections::BTreeMap<String, model::CustomResponseBody>,
) -> Result<Option<Arc<CustomResp>>, AclError> {
    let Some(cr) = &b.custom_response else { return Ok(None) };
    if !(200..=599).contains(&cr.response_code) {
        return err(format!("CustomResponse ResponseCode {} is not in 200-599", cr.response_code));
    }
    let body = match &cr.custom_response_body_key {
        None => None,
        Some(k) => match bodies.get(k) {
            Some(b) => {
                let ct = match b.content_type.as_str() {
                    "TEXT_PLAIN" => "text/plain",
                    "TEXT_HTML" => "text/html",
                    "APPLICATION_JSON" => "application/json",
                    other => return err(format!("custom response body {k}: unknown ContentType {other}")),
                };
                Some((ct.to_string(), b.content.clone()))
            }
            None => return err(format!("CustomResponseBodyKey {k} is not in CustomResponseBodies")),
        },
    };
    for h in &cr.response_headers {
        if http::HeaderName::from_bytes(h.name.as_bytes()).is_err() || http::HeaderValue::from_str(&h.value).is_err() {
            return err(format!("invalid custom response header {:?}", h.name));
        }
    }
    Ok(Some(Arc::new(CustomResp {
        status: cr.response_code,
        headers: cr.response_headers.iter().map(|h| (h.name.clone(), h.value.clone())).collect(),
        body,
    })))
}

fn rule_action(
    a: &model::RuleAction,
    bodies: &std::collections::BTreeMap<String, model::CustomResponseBody>,
) -> Result<Action, AclError> {
    let n = [a.block.is_some(), a.allow.is_some(), a.count.is_some(), a.captcha.is_some(), a.challenge.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if n != 1 {
        return err("an Action must have exactly one of Block, Allow, Count, Captcha, Challenge");
    }
    Ok(if let Some(b) = &a.block {
        Action::Block(custom_response(b, bodies)?)
    } else if let Some(x) = &a.allow {
        Action::Allow(insert_headers(x.custom_request_handling.as_ref()))
    } else if let Some(x) = &a.count {
        Action::Count(insert_headers(x.custom_request_handling.as_ref()))
    } else if let Some(x) = &a.captcha {
        Action::Captcha(insert_headers(x.custom_request_handling.as_ref()))
    } else if let Some(x) = &a.challenge {
        Action::Challenge(insert_headers(x.custom_request_handling.as_ref()))
    } else {
        return err("empty Action");
    })
}

fn check_label_name(l: &str) -> Result<(), AclError> {
    if l.is_empty()
        || l.len() > 1024
        || !l.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':'))
    {
        return err(format!("invalid label {l:?}: use letters, digits, '_', '-' and ':'"));
    }
    Ok(())
}

fn compile_rules(
    ctx: &Ctx<'_>,
    rules: &[model::Rule],
    label_prefix: &str,
    bodies: &std::collections::BTreeMap<String, model::CustomResponseBody>,
    scope_name: &str,
    top_level: bool,
) -> Result<Vec<Rule>, AclError> {
    let mut names = BTreeSet::new();
    let mut priorities = BTreeSet::new();
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        if !names.insert(r.name.as_str()) {
            return err(format!("duplicate rule name {}", r.name));
        }
        if !priorities.insert(r.priority) {
            return err(format!("rule {}: duplicate Priority {}", r.name, r.priority));
        }
        let labels = r
            .rule_labels
            .iter()
            .map(|l| check_label_name(&l.name).map(|_| format!("{label_prefix}{}", l.name)))
            .collect::<Result<Vec<_>, _>>()?;
        let metric_name = r.visibility_config.as_ref().map_or_else(|| r.name.clone(), |v| v.metric_name.clone());
        let sampled = r.visibility_config.as_ref().is_none_or(|v| v.sampled_requests_enabled);
        let metrics = ctx.metrics.rule(&format!("{scope_name}#{}", r.name));
        let st = &r.statement;
        let is_group = st.managed_rule_group_statement.is_some() || st.rule_group_reference_statement.is_some();
        let (body, rule_type) = if is_group {
            if !top_level {
                return err(format!("rule {}: a rule group cannot reference another rule group", r.name));
            }
            if r.action.is_some() {
                return err(format!("rule {}: a rule group reference takes OverrideAction, not Action", r.name));
            }
            let override_count = match &r.override_action {
                Some(o) if o.count.is_some() && o.none.is_none() => true,
                Some(o) if o.none.is_some() && o.count.is_none() => false,
                _ => return err(format!("rule {}: OverrideAction must have exactly one of Count or None", r.name)),
            };
            let (g, t) = compile_group_ref(ctx, r, override_count)?;
            (RuleBody::Group(g), t)
        } else {
            if r.override_action.is_some() {
                return err(format!("rule {}: OverrideAction is only for rule group references", r.name));
            }
            let Some(a) = &r.action else {
                return err(format!("rule {}: Action is required", r.name));
            };
            let action = rule_action(a, bodies).map_err(|e| AclError(format!("rule {}: {}", r.name, e.0)))?;
            let rate = st.rate_based_statement.is_some();
            let stmt = compile_stmt(ctx, st, &format!("{scope_name}/{}", r.name), true)
                .map_err(|e| AclError(format!("rule {}: {}", r.name, e.0)))?;
            (RuleBody::Plain { stmt, action }, if rate { RuleType::RateBased } else { RuleType::Regular })
        };
        out.push(Rule {
            name: r.name.clone(),
            priority: r.priority,
            labels,
            metrics,
            sampled,
            metric_name,
            body,
            rule_type,
            captcha_immunity: r.captcha_config.as_ref().map(|c| c.immunity_time_property.immunity_time),
            challenge_immunity: r.challenge_config.as_ref().map(|c| c.immunity_time_property.immunity_time),
        });
    }
    out.sort_by_key(|r| r.priority);
    Ok(out)
}

fn compile_overrides(
    list: &[model::RuleActionOverride],
    excluded: &[model::NameOnly],
    bodies: &std::collections::BTreeMap<String, model::CustomResponseBody>,
) -> Result<HashMap<String, Action>, AclError> {
    let mut m = HashMap::new();
    for e in excluded {
        m.insert(e.name.clone(), Action::Count(Vec::new()));
    }
    for o in list {
        m.insert(o.name.clone(), rule_action(&o.action_to_use, bodies)?);
    }
    Ok(m)
}

fn compile_group_ref(ctx: &Ctx<'_>, r: &model::Rule, override_count: bool) -> Result<(GroupRef, RuleType), AclError> {
    let st = &r.statement;
    let acl_bodies = &ctx.file.custom_response_bodies;
    if let Some(m) = &st.managed_rule_group_statement {
        if m.vendor_name != "AWS" {
            return err(format!("rule {}: managed rule groups are only available from VendorName AWS", r.name));
        }
        let Some(def) = managed::group(&m.name, &ctx.file.managed_ip_lists) else {
            return err(format!("rule {}: unknown managed rule group {} (see docs/gateway.md)", r.name, m.name));
        };
        let def = def.map_err(|e| AclError(format!("rule {}: managed rule group {}: {e}", r.name, m.name)))?;
        let prefix = format!("awswaf:managed:aws:{}:", def.label_namespace);
        let scope = format!("AWS#{}", m.name);
        let rules = compile_rules(ctx, &def.rules, &prefix, acl_bodies, &scope, false)?;
        for o in m.rule_action_overrides.iter().map(|o| &o.name).chain(m.excluded_rules.iter().map(|e| &e.name)) {
            if !rules.iter().any(|x| &x.name == o) {
                return err(format!("rule {}: {} has no rule named {o}", r.name, m.name));
            }
        }
        let scope_down = m.scope_down_statement.as_ref().map(|s| compile_stmt(ctx, s, &r.name, false)).transpose()?;
        let overrides = compile_overrides(&m.rule_action_overrides, &m.excluded_rules, acl_bodies)?;
        return Ok((GroupRef { id: scope, rules, override_count, overrides, scope_down }, RuleType::ManagedGroup));
    }
    let Some(g) = &st.rule_group_reference_statement else {
        return err("internal: not a group reference");
    };
    let Some(def) = ctx.groups.get(g.arn.as_str()) else {
        return err(format!("rule {}: no rule group with ARN {} in RuleGroups", r.name, g.arn));
    };
    let prefix = format!("awswaf:{}:rulegroup:{}:", ctx.account, def.name);
    let rules = compile_rules(ctx, &def.rules, &prefix, &def.custom_response_bodies, &def.name, false)?;
    let overrides = compile_overrides(&g.rule_action_overrides, &g.excluded_rules, acl_bodies)?;
    Ok((GroupRef { id: g.arn.clone(), rules, override_count, overrides, scope_down: None }, RuleType::Group))
}

fn transforms(list: &[model::TextTransformation]) -> Result<Vec<Transform>, AclError> {
    let mut v: Vec<(i64, Transform)> = Vec::with_capacity(list.len());
    let mut seen = BTreeSet::new();
    for t in list {
        if !seen.insert(t.priority) {
            return err(format!("duplicate TextTransformation Priority {}", t.priority));
        }
        let Some(tr) = Transform::parse(&t.kind) else {
            return err(format!("unsupported TextTransformation Type {}", t.kind));
        };
        v.push((t.priority, tr));
    }
    if v.is_empty() {
        return err("TextTransformations must have at least one entry (use NONE)");
    }
    v.sort_by_key(|x| x.0);
    Ok(v.into_iter().map(|x| x.1).filter(|t| *t != Transform::None).collect())
}

fn oversize(s: &Option<String>) -> Result<Oversize, AclError> {
    Ok(match s.as_deref() {
        None | Some("CONTINUE") => Oversize::Continue,
        Some("MATCH") => Oversize::Match,
        Some("NO_MATCH") => Oversize::NoMatch,
        Some(o) => return err(format!("unknown OversizeHandling {o}")),
    })
}

fn scope(s: &str) -> Result<Scope, AclError> {
    Ok(match s {
        "ALL" => Scope::All,
        "KEY" => Scope::Key,
        "VALUE" => Scope::Value,
        o => return err(format!("unknown MatchScope {o}")),
    })
}

fn name_filter(
    all: &Option<serde_json::Value>,
    inc: &Option<Vec<String>>,
    exc: &Option<Vec<String>>,
) -> Result<NameFilter, AclError> {
    match (all.is_some(), inc, exc) {
        (true, None, None) => Ok(NameFilter::All),
        (false, Some(i), None) => Ok(NameFilter::Include(i.clone())),
        (false, None, Some(e)) => Ok(NameFilter::Exclude(e.clone())),
        _ => err("MatchPattern must have exactly one of All, Included…, Excluded…"),
    }
}

fn field(f: &model::FieldToMatch) -> Result<Field, AclError> {
    let mut found: Vec<Field> = Vec::new();
    if let Some(h) = &f.single_header {
        found.push(Field::SingleHeader(h.name.to_ascii_lowercase()));
    }
    if let Some(q) = &f.single_query_argument {
        found.push(Field::SingleQueryArgument(q.name.clone()));
    }
    if f.all_query_arguments.is_some() {
        found.push(Field::AllQueryArguments);
    }
    if f.uri_path.is_some() {
        found.push(Field::UriPath);
    }
    if f.query_string.is_some() {
        found.push(Field::QueryString);
    }
    if let Some(b) = &f.body {
        found.push(Field::Body(oversize(&b.oversize_handling)?));
    }
    if f.method.is_some() {
        found.push(Field::Method);
    }
    if let Some(j) = &f.json_body {
        let paths = match (&j.match_pattern.all, &j.match_pattern.included_paths) {
            (Some(_), None) => None,
            (None, Some(p)) => {
                for x in p {
                    if !(x.is_empty() || x.starts_with('/')) {
                        return err(format!("JsonBody IncludedPaths must be JSON Pointers, got {x:?}"));
                    }
                }
                Some(p.clone())
            }
            _ => return err("JsonBody MatchPattern must have exactly one of All or IncludedPaths"),
        };
        let fallback = match j.invalid_fallback_behavior.as_deref() {
            Some("MATCH") => JsonFallback::Match,
            Some("NO_MATCH") => JsonFallback::NoMatch,
            None | Some("EVALUATE_AS_STRING") => JsonFallback::EvaluateAsString,
            Some(o) => return err(format!("unknown InvalidFallbackBehavior {o}")),
        };
        found.push(Field::JsonBody {
            paths,
            scope: scope(&j.match_scope)?,
            fallback,
            oversize: oversize(&j.oversize_handling)?,
        });
    }
    if let Some(h) = &f.headers {
        let p = &h.match_pattern;
        found.push(Field::Headers {
            filter: name_filter(&p.all, &p.included_headers, &p.excluded_headers)?,
            scope: scope(&h.match_scope)?,
            oversize: oversize(&h.oversize_handling)?,
        });
    }
    if let Some(c) = &f.cookies {
        let p = &c.match_pattern;
        found.push(Field::Cookies {
            filter: name_filter(&p.all, &p.included_cookies, &p.excluded_cookies)?,
            scope: scope(&c.match_scope)?,
            oversize: oversize(&c.oversize_handling)?,
        });
    }
    if f.header_order.is_some() {
        found.push(Field::HeaderOrder);
    }
    if found.len() != 1 {
        return err("FieldToMatch must have exactly one member");
    }
    Ok(found.remove(0))
}

fn fwd_config(c: &model::ForwardedIpConfig, ip_set: bool) -> Result<FwdConfig, AclError> {
    let fallback_match = match c.fallback_behavior.as_str() {
        "MATCH" => true,
        "NO_MATCH" => false,
        o => return err(format!("unknown FallbackBehavior {o}")),
    };
    let position = match (ip_set, c.position.as_deref()) {
        (true, Some("FIRST")) | (false, None) => FwdPosition::First,
        (true, Some("LAST")) => FwdPosition::Last,
        (true, Some("ANY")) => FwdPosition::Any,
        (true, None) => return err("IPSetForwardedIPConfig requires Position"),
        (_, Some(o)) => return err(format!("unexpected Position {o}")),
    };
    if c.header_name.is_empty() {
        return err("ForwardedIPConfig HeaderName is required");
    }
    Ok(FwdConfig { header: c.header_name.to_ascii_lowercase(), fallback_match, position })
}

fn build_regex(s: &str) -> Result<Regex, AclError> {
    RegexBuilder::new(s).size_limit(16 << 20).build().map_err(|e| AclError(format!("invalid RegexString {s:?}: {e}")))
}

fn compile_stmt(ctx: &Ctx<'_>, st: &model::Statement, rule_id: &str, top: bool) -> Result<Stmt, AclError> {
    let count = [
        st.byte_match_statement.is_some(),
        st.sqli_match_statement.is_some(),
        st.xss_match_statement.is_some(),
        st.size_constraint_statement.is_some(),
        st.geo_match_statement.is_some(),
        st.rule_group_reference_statement.is_some(),
        st.ip_set_reference_statement.is_some(),
        st.regex_pattern_set_reference_statement.is_some(),
        st.rate_based_statement.is_some(),
        st.and_statement.is_some(),
        st.or_statement.is_some(),
        st.not_statement.is_some(),
        st.managed_rule_group_statement.is_some(),
        st.label_match_statement.is_some(),
        st.regex_match_statement.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if count != 1 {
        return err("a Statement must have exactly one member");
    }
    if let Some(b) = &st.byte_match_statement {
        let pos = match b.positional_constraint.as_str() {
            "EXACTLY" => Positional::Exactly,
            "STARTS_WITH" => Positional::StartsWith,
            "ENDS_WITH" => Positional::EndsWith,
            "CONTAINS" => Positional::Contains,
            "CONTAINS_WORD" => Positional::ContainsWord,
            o => return err(format!("unknown PositionalConstraint {o}")),
        };
        if b.search_string.is_empty() || b.search_string.len() > 200 {
            return err("SearchString must be 1-200 bytes");
        }
        let needle = b.search_string.as_bytes().to_vec();
        let finder = Box::new(memchr::memmem::Finder::new(&needle).into_owned());
        return Ok(Stmt::Byte {
            field: field(&b.field_to_match)?,
            tx: transforms(&b.text_transformations)?,
            pos,
            needle,
            finder,
        });
    }
    if let Some(s) = &st.sqli_match_statement {
        let high = match s.sensitivity_level.as_deref() {
            None | Some("LOW") => false,
            Some("HIGH") => true,
            Some(o) => return err(format!("unknown SensitivityLevel {o}")),
        };
        return Ok(Stmt::Sqli { field: field(&s.field_to_match)?, tx: transforms(&s.text_transformations)?, high });
    }
    if let Some(s) = &st.xss_match_statement {
        return Ok(Stmt::Xss { field: field(&s.field_to_match)?, tx: transforms(&s.text_transformations)? });
    }
    if let Some(s) = &st.size_constraint_statement {
        let op = match s.comparison_operator.as_str() {
            "EQ" => CmpOp::Eq,
            "NE" => CmpOp::Ne,
            "LE" => CmpOp::Le,
            "LT" => CmpOp::Lt,
            "GE" => CmpOp::Ge,
            "GT" => CmpOp::Gt,
            o => return err(format!("unknown ComparisonOperator {o}")),
        };
        return Ok(Stmt::Size {
            field: field(&s.field_to_match)?,
            tx: transforms(&s.text_transformations)?,
            op,
            size: s.size,
        });
    }
    if let Some(g) = &st.geo_match_statement {
        if g.country_codes.is_empty() {
            return err("GeoMatchStatement needs CountryCodes");
        }
        let fwd = g.forwarded_ip_config.as_ref().map(|c| fwd_config(c, false)).transpose()?;
        return Ok(Stmt::Geo { codes: g.country_codes.iter().map(|c| c.to_ascii_uppercase()).collect(), fwd });
    }
    if let Some(i) = &st.ip_set_reference_statement {
        let Some(set) = ctx.ip_sets.get(i.arn.as_str()) else {
            return err(format!("no IP set with ARN {} in IPSets", i.arn));
        };
        let fwd = i.ip_set_forwarded_ip_config.as_ref().map(|c| fwd_config(c, true)).transpose()?;
        return Ok(Stmt::Ip { set: set.clone(), fwd });
    }
    if let Some(r) = &st.regex_pattern_set_reference_statement {
        let Some(set) = ctx.regex_sets.get(r.arn.as_str()) else {
            return err(format!("no regex pattern set with ARN {} in RegexPatternSets", r.arn));
        };
        return Ok(Stmt::RegexSet {
            field: field(&r.field_to_match)?,
            tx: transforms(&r.text_transformations)?,
            set: set.clone(),
        });
    }
    if let Some(r) = &st.regex_match_statement {
        // AWS's limit for users' regexes; Rampart's own managed rules may be longer.
        let managed = rule_id.starts_with("AWS#");
        if r.regex_string.is_empty() || (r.regex_string.len() > 512 && !managed) {
            return err("RegexString must be 1-512 characters");
        }
        return Ok(Stmt::Regex {
            field: field(&r.field_to_match)?,
            tx: transforms(&r.text_transformations)?,
            re: Arc::new(build_regex(&r.regex_string)?),
        });
    }
    if let Some(l) = &st.label_match_statement {
        let namespace = match l.scope.as_str() {
            "LABEL" => false,
            "NAMESPACE" => true,
            o => return err(format!("unknown LabelMatchStatement Scope {o}")),
        };
        check_label_name(&l.key)?;
        let mut key = l.key.clone();
        if namespace && !key.ends_with(':') {
            key.push(':');
        }
        return Ok(Stmt::Label { namespace, key });
    }
    if let Some(r) = &st.rate_based_statement {
        if !top {
            return err("a RateBasedStatement cannot be nested");
        }
        return Ok(Stmt::Rate(Arc::new(compile_rate(ctx, r, rule_id)?)));
    }
    if let Some(a) = &st.and_statement {
        if a.statements.len() < 2 {
            return err("AndStatement needs at least two statements");
        }
        return Ok(Stmt::And(
            a.statements.iter().map(|s| compile_stmt(ctx, s, rule_id, false)).collect::<Result<_, _>>()?,
        ));
    }
    if let Some(a) = &st.or_statement {
        if a.statements.len() < 2 {
            return err("OrStatement needs at least two statements");
        }
        return Ok(Stmt::Or(
            a.statements.iter().map(|s| compile_stmt(ctx, s, rule_id, false)).collect::<Result<_, _>>()?,
        ));
    }
    if let Some(n) = &st.not_statement {
        return Ok(Stmt::Not(Box::new(compile_stmt(ctx, &n.statement, rule_id, false)?)));
    }
    err("rule group statements are only allowed at the top of a web ACL rule")
}

fn compile_rate(ctx: &Ctx<'_>, r: &model::RateBasedStatement, rule_id: &str) -> Result<RateRule, AclError> {
    if r.limit < 10 || r.limit > 2_000_000_000 {
        return err("RateBasedStatement Limit must be 10-2000000000");
    }
    let window_sec = r.evaluation_window_sec.unwrap_or(300);
    if ![60, 120, 300, 600].contains(&window_sec) {
        return err("EvaluationWindowSec must be 60, 120, 300 or 600");
    }
    let fwd = r.forwarded_ip_config.as_ref().map(|c| fwd_config(c, false)).transpose()?;
    let key = match r.aggregate_key_type.as_str() {
        "IP" => AggKey::Ip,
        "CONSTANT" => AggKey::Constant,
        "FORWARDED_IP" => {
            if fwd.is_none() {
                return err("AggregateKeyType FORWARDED_IP requires ForwardedIPConfig");
            }
            AggKey::ForwardedIp
        }
        "CUSTOM_KEYS" => {
            if r.custom_keys.is_empty() || r.custom_keys.len() > 5 {
                return err("CUSTOM_KEYS needs 1-5 CustomKeys");
            }
            let mut keys = Vec::new();
            for k in &r.custom_keys {
                let n = [
                    k.header.is_some(),
                    k.cookie.is_some(),
                    k.query_argument.is_some(),
                    k.query_string.is_some(),
                    k.http_method.is_some(),
                    k.forwarded_ip.is_some(),
                    k.ip.is_some(),
                    k.label_namespace.is_some(),
                    k.uri_path.is_some(),
                ]
                .iter()
                .filter(|x| **x)
                .count();
                if n != 1 {
                    return err("each CustomKey must have exactly one member");
                }
                keys.push(if let Some(h) = &k.header {
                    CustomKey::Header(h.name.to_ascii_lowercase(), transforms(&h.text_transformations)?)
                } else if let Some(c) = &k.cookie {
                    CustomKey::Cookie(c.name.clone(), transforms(&c.text_transformations)?)
                } else if let Some(q) = &k.query_argument {
                    CustomKey::QueryArgument(q.name.clone(), transforms(&q.text_transformations)?)
                } else if let Some(q) = &k.query_string {
                    CustomKey::QueryString(transforms(&q.text_transformations)?)
                } else if let Some(u) = &k.uri_path {
                    CustomKey::UriPath(transforms(&u.text_transformations)?)
                } else if k.http_method.is_some() {
                    CustomKey::HttpMethod
                } else if k.forwarded_ip.is_some() {
                    if fwd.is_none() {
                        return err("a ForwardedIP custom key requires ForwardedIPConfig");
                    }
                    CustomKey::ForwardedIp
                } else if k.ip.is_some() {
                    CustomKey::Ip
                } else if let Some(l) = &k.label_namespace {
                    let mut ns = l.namespace.clone();
                    if !ns.ends_with(':') {
                        ns.push(':');
                    }
                    CustomKey::LabelNamespace(ns)
                } else {
                    return err("empty CustomKey");
                });
            }
            AggKey::Custom(keys)
        }
        o => return err(format!("unknown AggregateKeyType {o}")),
    };
    let scope_down = r.scope_down_statement.as_ref().map(|s| compile_stmt(ctx, s, rule_id, false)).transpose()?;
    Ok(RateRule { id: rule_id.to_string(), limit: r.limit, window_sec, key, scope_down, fwd })
}
