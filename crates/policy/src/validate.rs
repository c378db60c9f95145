//! AWS's checks after the grammar, in the order IAM applies them (IAM reports only the first failure):
//! principal rules of the policy type, version, the "legacy parser" (case-sensitive Effect, date values,
//! resource shapes), unique Sids, actions present, resources present, resource ARN format, action
//! vendors, then the type's own rules (trust policies: STS actions only, no Resource; SCPs/RCPs).
//! Messages are AWS's MalformedPolicyDocument texts.

use serde::{Deserialize, Serialize};

use crate::ast::{Document, Effect, PrincipalType, Statement, Version};
use crate::json::{Json, JsonValue};
use crate::PolicyType;

pub const NO_PRINCIPAL: &str = "Policy document should not specify a principal.";
pub const VERSION: &str = "Policy document must be version 2012-10-17 or greater.";
pub const LEGACY: &str = "The policy failed legacy parsing";
pub const SID_UNIQUE: &str = "Statement IDs (SID) in a single policy must be unique.";
pub const ACTIONS: &str = "Policy statement must contain actions.";
pub const RESOURCES: &str = "Policy statement must contain resources.";
pub const VENDOR_PREFIX: &str = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.";
pub const ONE_COLON: &str = "Actions/Condition can contain only one colon.";
pub const MISSING_PRINCIPAL: &str = "Missing required field Principal";
/// Role trust policies (AssumeRolePolicyDocument) have their own validator and messages in IAM.
pub const TRUST_INVALID_JSON: &str = "This policy contains invalid Json";
pub const TRUST_VERSION: &str = "The policy must contain a valid version string";
pub const TRUST_EMPTY: &str = "Could not parse the policy: Statement is empty!";
pub const TRUST_SID_UNIQUE: &str = "The Statement Ids in the policy are not unique";
pub const TRUST_MISSING_EFFECT: &str = "Missing required field Effect";
pub const TRUST_EMPTY_PRINCIPAL: &str = "Missing required field Principal cannot be empty!";
pub const TRUST_PRINCIPAL_OBJECT: &str = "Principal must be a JSON object.";
pub const TRUST_ALLOW_NOT_PRINCIPAL: &str = "Allow with NotPrincipal is not allowed.";
pub const TRUST_NOT_PRINCIPAL: &str = "AssumeRole policy must not contain NotPrincipal field.";
pub const TRUST_MISSING_ACTION: &str = "Missing required field Action";
pub const TRUST_ACTIONS: &str = "AssumeRole policy may only specify STS AssumeRole actions.";
pub const TRUST_RESOURCE: &str = "Has prohibited field Resource";
pub const TRUST_NOT_RESOURCE: &str = "AssumeRole policy must not contain resources.";
/// AWS Organizations' MalformedPolicyDocumentException text for SCPs/RCPs.
pub const ORGANIZATIONS: &str =
    "The provided policy document does not meet the requirements of the specified policy type.";

const PARTITIONS: &[&str] =
    &["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"];
const IAM_RESOURCE_TYPES: &[&str] = &[
    "user/",
    "federated-user/",
    "role/",
    "group/",
    "instance-profile/",
    "mfa/",
    "server-certificate/",
    "policy/",
    "sms-mfa/",
    "saml-provider/",
    "oidc-provider/",
    "report/",
    "access-report/",
];

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// AWS would reject the document.
    Error,
    /// Accepted, but probably not what the author meant.
    Warning,
}

/// One validation finding (`rampart policy validate` prints these).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
    /// 0-based statement index, when the finding is about one statement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// The first error AWS would report for `doc` as a policy of type `ty`.
pub fn check(doc: &Document, ty: PolicyType) -> Result<(), String> {
    if ty == PolicyType::Trust {
        // The shape rules ran on the JSON ([`check_trust_json`]); what is left is principal values
        // and condition values that cannot mean anything.
        principal_rules(doc, ty)?;
        return ip_values(doc);
    }
    principal_rules(doc, ty)?;
    if doc.version != Version::V2012 && matches!(ty, PolicyType::Identity | PolicyType::ResourceControl) {
        return Err(VERSION.into());
    }
    let resource_error = legacy(doc)?;
    let mut sids: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for s in &doc.statements {
        if let Some(sid) = s.sid.as_deref().filter(|s| !s.is_empty()) {
            if !sids.insert(sid) {
                return Err(SID_UNIQUE.into());
            }
        }
    }
    if doc.statements.iter().any(|s| s.action.as_ref().is_none_or(|a| a.values.is_empty())) {
        return Err(ACTIONS.into());
    }
    if ty != PolicyType::Trust && doc.statements.iter().any(|s| s.resource.as_ref().is_none_or(|r| r.values.is_empty()))
    {
        return Err(RESOURCES.into());
    }
    if let Some(e) = resource_error {
        return Err(e);
    }
    for s in &doc.statements {
        for a in s.action.iter().flat_map(|a| &a.values) {
            action_prefix(a)?;
        }
    }
    match ty {
        PolicyType::ServiceControl => scp_rules(doc),
        PolicyType::ResourceControl => rcp_rules(doc),
        PolicyType::Identity | PolicyType::Resource | PolicyType::Trust => Ok(()),
    }
}

fn principal_rules(doc: &Document, ty: PolicyType) -> Result<(), String> {
    for s in &doc.statements {
        match (ty, &s.principal) {
            (PolicyType::Identity, Some(_)) => return Err(NO_PRINCIPAL.into()),
            (PolicyType::ServiceControl, Some(_)) => return Err(ORGANIZATIONS.into()),
            (PolicyType::Resource | PolicyType::Trust | PolicyType::ResourceControl, None) => {
                return Err(MISSING_PRINCIPAL.into())
            }
            _ => {}
        }
        if let Some(p) = &s.principal {
            for (pty, values) in &p.entries {
                for v in values {
                    if !valid_principal(*pty, v) {
                        let key = match pty {
                            PrincipalType::Aws => "AWS",
                            PrincipalType::Service => "Service",
                            PrincipalType::Federated => "Federated",
                            PrincipalType::CanonicalUser => "CanonicalUser",
                        };
                        return Err(format!("Invalid principal in policy: \"{key}\":\"{v}\""));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The shapes AWS accepts in a Principal element (existence is the caller's business).
pub fn valid_principal(ty: PrincipalType, v: &str) -> bool {
    match ty {
        PrincipalType::Aws => {
            if v == "*" || (v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit())) {
                return true;
            }
            let parts: Vec<&str> = v.splitn(6, ':').collect();
            let [arn, partition, service, region, account, res] = parts.as_slice() else { return false };
            if *arn != "arn" || !PARTITIONS.contains(partition) || !region.is_empty() {
                return false;
            }
            let res = *res;
            let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
            if !account_ok || res.contains('*') || res.contains('?') {
                return false;
            }
            match *service {
                "iam" => res == "root" || res.starts_with("user/") || res.starts_with("role/"),
                "sts" => res.starts_with("assumed-role/") || res.starts_with("federated-user/"),
                _ => false,
            }
        }
        PrincipalType::Service => !v.is_empty() && !v.contains(char::is_whitespace),
        PrincipalType::Federated | PrincipalType::CanonicalUser => !v.is_empty(),
    }
}

/// The legacy parser: case-sensitive Effect, date values, resource shapes. Returns the resource format
/// error to report later (IAM reports it after the action/resource presence checks).
/// `IpAddress`/`NotIpAddress` values must be an IPv4/IPv6 address or CIDR block (`10.0.0.0/33`,
/// `1.2.3` are refused as IAM's parser refuses them, with its legacy-parser message): a value that
/// can never match would silently turn a `Deny … NotIpAddress` guard into a no-op.
fn ip_values(doc: &Document) -> Result<(), String> {
    use crate::ast::Operator;
    for s in &doc.statements {
        for c in &s.conditions {
            if matches!(c.operator.base, Operator::IpAddress | Operator::NotIpAddress)
                && !c.values.iter().all(|v| crate::condition::parse_net(v).is_some())
            {
                return Err(LEGACY.into());
            }
        }
    }
    Ok(())
}

fn legacy(doc: &Document) -> Result<Option<String>, String> {
    ip_values(doc)?;
    for s in &doc.statements {
        if s.effect_text != "Allow" && s.effect_text != "Deny" {
            return Err(LEGACY.into());
        }
        for c in &s.conditions {
            if c.operator.base.is_date() && !c.values.iter().all(|v| legacy_date(v)) {
                return Err(LEGACY.into());
            }
        }
    }
    let mut resource_error = None;
    for s in &doc.statements {
        let Some(r) = &s.resource else { continue };
        let mut values: Vec<&str> = r.values.iter().map(String::as_str).collect();
        // IAM checks a list's resources in reverse lexical order; the last error found is the one reported.
        values.sort_unstable_by(|a, b| b.cmp(a));
        let mut statement_error = None;
        for v in values {
            if let Some(e) = resource_format(v) {
                statement_error = Some(e);
            }
        }
        match statement_error {
            Some(e) => resource_error = Some(e),
            None if resource_error.is_none() => {
                for v in &r.values {
                    if v == "*" {
                        continue;
                    }
                    let colons = v.matches(':').count();
                    let vendor_empty = v.split(':').nth(2).is_none_or(str::is_empty);
                    if (colons < 5 && v.contains("::")) || vendor_empty {
                        return Err(LEGACY.into());
                    }
                }
            }
            None => {}
        }
    }
    Ok(resource_error)
}

/// A date condition value as IAM's legacy parser accepts it: ISO 8601 (date, optional time, fraction,
/// `Z` or `+hh[:mm]`) or a non-negative epoch number.
fn legacy_date(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    if !(lower.contains('t') || lower.contains('-')) {
        // An epoch number must fit a signed 64-bit integer.
        return v.trim().parse::<i64>().is_ok_and(|n| n >= 0);
    }
    let (date, time) = lower.split_once('t').unwrap_or((lower.as_str(), ""));
    let (negative, date) = match date.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, date),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let in_range = |s: &str, lo: i64, hi: i64| s.parse::<i64>().is_ok_and(|n| (lo..=hi).contains(&n));
    let year_ok = parts.first().and_then(|y| y.parse::<i64>().ok()).is_some_and(|y| {
        let y = if negative { -y } else { y };
        (-292_275_054..=292_278_993).contains(&y)
    });
    if !year_ok
        || parts.len() > 3
        || parts.get(1).is_some_and(|m| !in_range(m, 1, 12))
        || parts.get(2).is_some_and(|d| !in_range(d, 1, 31))
    {
        return false;
    }
    let tp: Vec<&str> = time.split(':').collect();
    if tp.first().is_some_and(|h| !h.is_empty() && !in_range(h, 0, 23)) {
        return false;
    }
    if tp.get(1).is_some_and(|m| !in_range(m, 0, 59)) {
        return false;
    }
    if let Some(&sec) = tp.get(2) {
        let sec = if let Some((s, rest)) = sec.split_once('z') {
            if !rest.is_empty() {
                return false;
            }
            s
        } else if let Some((s, zone)) = sec.split_once('+') {
            let zh = zone;
            if zh.len() != 2 || !in_range(zh, 0, 23) {
                return false;
            }
            s
        } else {
            sec
        };
        // `+hh:mm` splits into a fourth part: the zone minutes.
        if let Some(zm) = tp.get(3) {
            if zm.len() != 2 || !in_range(zm, 0, 59) {
                return false;
            }
        }
        let (whole, frac) = sec.split_once('.').map_or((sec, None), |(w, f)| (w, Some(f)));
        if !in_range(whole, 0, 59) || frac.is_some_and(|f| !in_range(f, 0, 999_999_999)) {
            return false;
        }
    }
    true
}

/// IAM's resource ARN format check; `Some(message)` when it fails.
fn resource_format(r: &str) -> Option<String> {
    if r == "*" {
        return None;
    }
    let Some((_, rest)) = r.split_once(':') else {
        return Some(format!("Resource {r} must be in ARN format or \"*\"."));
    };
    let (partition, after_partition) = match rest.split_once(':') {
        Some((p, a)) => (p, Some(a)),
        None => (rest, None),
    };
    if partition != "*" && !PARTITIONS.contains(&partition) {
        let rem: Vec<&str> = after_partition.unwrap_or("").split(':').collect();
        let get = |i: usize| rem.get(i).copied().unwrap_or("*");
        let a1 = if rem.len() == 1 && get(0).is_empty() { "*" } else { get(0) };
        let a4 = match rem.get(3..) {
            Some(tail) if !tail.is_empty() => tail.join(":"),
            _ => "*".to_string(),
        };
        return Some(format!(
            "Partition \"{partition}\" is not valid for resource \"arn:{partition}:{a1}:{}:{}:{a4}\".",
            get(1),
            get(2)
        ));
    }
    let Some(after_partition) = after_partition else {
        return Some("Resource vendor must be fully qualified and cannot contain regexes.".into());
    };
    // `arn:aws:vendor` (no further parts) is accepted: the vendor is all that is left.
    let (service, after_service) = after_partition.split_once(':').unwrap_or((after_partition, ""));
    let resource_id = after_service.splitn(3, ':').nth(2).unwrap_or("");
    if (service == "iam" || service == "s3") && !after_service.starts_with(':') {
        if service == "iam" {
            return Some(format!("IAM resource {r} cannot contain region information."));
        }
        if !resource_id.starts_with("accesspoint/") {
            return Some(format!("Resource {r} can not contain region information."));
        }
    }
    if service == "iam" && resource_id != "*" && !IAM_RESOURCE_TYPES.iter().any(|p| resource_id.starts_with(p)) {
        return Some(format!(
            "IAM resource path must either be \"*\" or start with {}.",
            IAM_RESOURCE_TYPES.join(", ")
        ));
    }
    None
}

fn action_prefix(a: &str) -> Result<(), String> {
    let parts: Vec<&str> = a.split(':').collect();
    let vendor = parts.first().copied().unwrap_or_default();
    if parts.len() == 1 && vendor != "*" {
        return Err(VENDOR_PREFIX.into());
    }
    if parts.len() > 2 {
        return Err(ONE_COLON.into());
    }
    if vendor != "*" && !vendor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
        return Err(format!("Vendor {vendor} is not valid"));
    }
    Ok(())
}

/// IAM's trust-policy validator, on the JSON (its checks and messages differ from other policies').
pub fn check_trust_json(root: &Json) -> Result<(), String> {
    if root.as_object().is_none() {
        return Err(crate::parser::SYNTAX.into());
    }
    if let Some(v) = root.get("Version") {
        if !matches!(v.as_str(), Some("2008-10-17" | "2012-10-17")) {
            return Err(TRUST_VERSION.into());
        }
    }
    let statements: Vec<&Json> = match root.get("Statement").map(|s| &s.value) {
        Some(JsonValue::Object(_)) => root.get("Statement").into_iter().collect(),
        Some(JsonValue::Array(items)) => items.iter().collect(),
        Some(_) => return Err(crate::parser::SYNTAX.into()),
        None => Vec::new(),
    };
    if statements.is_empty() {
        return Err(TRUST_EMPTY.into());
    }
    let mut sids: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for st in statements {
        if st.as_object().is_none() {
            return Err(crate::parser::SYNTAX.into());
        }
        let effect = match st.get("Effect") {
            None => return Err(TRUST_MISSING_EFFECT.into()),
            Some(e) => e.as_str().ok_or_else(|| crate::parser::SYNTAX.to_string())?,
        };
        if effect != "Allow" && effect != "Deny" {
            return Err(format!("Invalid effect: {effect}"));
        }
        if st.get("NotPrincipal").is_some() {
            return Err(if effect == "Allow" { TRUST_ALLOW_NOT_PRINCIPAL } else { TRUST_NOT_PRINCIPAL }.into());
        }
        match st.get("Principal").map(|p| &p.value) {
            None => return Err(MISSING_PRINCIPAL.into()),
            Some(JsonValue::String(s)) if s == "*" => {}
            Some(JsonValue::String(_)) => return Err(TRUST_PRINCIPAL_OBJECT.into()),
            Some(JsonValue::Object(o)) if o.is_empty() => return Err(TRUST_EMPTY_PRINCIPAL.into()),
            Some(JsonValue::Object(o)) => {
                if let Some((k, _)) = o.iter().find(|(k, _)| PrincipalType::from_key(k).is_none()) {
                    return Err(format!("Invalid principal in policy: \"{k}\""));
                }
            }
            Some(_) => return Err(crate::parser::SYNTAX.into()),
        }
        let actions = match (st.get("Action"), st.get("NotAction")) {
            (Some(_), Some(_)) => return Err(crate::parser::SYNTAX.into()),
            (None, None) => return Err(TRUST_MISSING_ACTION.into()),
            (Some(a), None) | (None, Some(a)) => a,
        };
        let list: Vec<&Json> = match &actions.value {
            JsonValue::String(_) => vec![actions],
            JsonValue::Array(items) => items.iter().collect(),
            _ => return Err(crate::parser::SYNTAX.into()),
        };
        if list.is_empty() {
            return Err(TRUST_MISSING_ACTION.into());
        }
        for a in list {
            let a = a.as_str().ok_or_else(|| crate::parser::SYNTAX.to_string())?;
            let sts = a.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("sts:"));
            if a != "*" && !sts {
                return Err(TRUST_ACTIONS.into());
            }
        }
        if st.get("Resource").is_some() {
            return Err(TRUST_RESOURCE.into());
        }
        if st.get("NotResource").is_some() {
            return Err(TRUST_NOT_RESOURCE.into());
        }
        if let Some(sid) = st.get("Sid").and_then(Json::as_str).filter(|s| !s.is_empty()) {
            if !sids.insert(sid) {
                return Err(TRUST_SID_UNIQUE.into());
            }
        }
    }
    Ok(())
}

fn scp_rules(doc: &Document) -> Result<(), String> {
    for s in &doc.statements {
        if s.effect == Effect::Allow && s.resource.as_ref().is_some_and(|r| r.negated) {
            return Err(ORGANIZATIONS.into());
        }
    }
    Ok(())
}

fn rcp_rules(doc: &Document) -> Result<(), String> {
    for s in &doc.statements {
        let Some(p) = &s.principal else { return Err(ORGANIZATIONS.into()) };
        let star_only =
            p.wildcard || p.entries.iter().all(|(t, v)| *t == PrincipalType::Aws && v.iter().all(|x| x == "*"));
        if s.action.as_ref().is_some_and(|a| a.negated)
            || (p.negated && s.effect == Effect::Allow)
            || (!p.negated && !star_only)
        {
            return Err(ORGANIZATIONS.into());
        }
        // Only RCPFullAWSAccess may allow: everything, for everyone, unconditionally.
        if s.effect == Effect::Allow {
            let all = |l: &Option<crate::ast::ValueList>| l.as_ref().is_some_and(|l| !l.negated && l.values == ["*"]);
            if !all(&s.action) || !all(&s.resource) || !s.conditions.is_empty() {
                return Err(ORGANIZATIONS.into());
            }
        }
    }
    Ok(())
}

/// Warnings: things AWS accepts that are probably mistakes.
pub fn lints(doc: &Document) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut warn = |s: &Statement, message: String| {
        out.push(Finding { severity: Severity::Warning, message, statement: Some(s.index), sid: s.sid.clone() })
    };
    for s in &doc.statements {
        if let Some(p) = &s.principal {
            if p.negated && s.effect == Effect::Allow {
                warn(
                    s,
                    "NotPrincipal with Allow grants access to every principal not listed, anonymous users included."
                        .into(),
                );
            }
            if p.negated && s.effect == Effect::Deny {
                let has_account = p.entries.iter().any(|(t, vs)| {
                    *t == PrincipalType::Aws
                        && vs.iter().any(|v| v.ends_with(":root") || v.bytes().all(|b| b.is_ascii_digit()))
                });
                if !has_account {
                    warn(s, "NotPrincipal with Deny should also list the account ARN of each excluded principal; otherwise the whole account is denied.".into());
                }
            }
            if !p.negated && s.effect == Effect::Allow && p.wildcard && s.conditions.is_empty() {
                warn(s, "Principal \"*\" without a Condition allows anyone, anonymous users included.".into());
            }
        }
        if s.effect == Effect::Allow && s.action.as_ref().is_some_and(|a| a.negated) {
            warn(
                s,
                "NotAction with Allow grants every action not listed, including actions of services added later."
                    .into(),
            );
        }
        if s.effect == Effect::Allow && s.resource.as_ref().is_some_and(|r| r.negated) {
            warn(s, "NotResource with Allow grants access to every resource not listed.".into());
        }
        for c in &s.conditions {
            if c.operator.set == crate::ast::SetQualifier::ForAllValues
                && s.effect == Effect::Allow
                && !c.operator.if_exists
            {
                warn(s, format!("{} with Allow is true when {} is missing or empty; add a Null check if the key must be present.", c.operator_text, c.key));
            }
            if c.operator.set != crate::ast::SetQualifier::None && c.operator.base == crate::ast::Operator::Null {
                warn(s, format!("{} makes no sense with a set qualifier.", c.operator_text));
            }
        }
        if doc.version == Version::V2008 {
            let uses_vars = s.resource.iter().flat_map(|r| &r.values).any(|v| v.contains("${"))
                || s.conditions.iter().flat_map(|c| &c.values).any(|v| v.contains("${"));
            if uses_vars {
                warn(s, "Policy variables are substituted only under \"Version\": \"2012-10-17\"; here ${...} is literal text.".into());
            }
        }
    }
    if doc.version_text.is_none() {
        out.push(Finding {
            severity: Severity::Warning,
            message:
                "No Version: the 2008-10-17 language applies (no policy variables). Use \"Version\": \"2012-10-17\"."
                    .into(),
            statement: None,
            sid: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_formats() {
        assert_eq!(resource_format("*"), None);
        assert_eq!(resource_format("arn:aws:s3:::b/*"), None);
        assert_eq!(resource_format("adf").unwrap(), "Resource adf must be in ARN format or \"*\".");
        assert_eq!(
            resource_format("a:bsdfdsafsad").unwrap(),
            "Partition \"bsdfdsafsad\" is not valid for resource \"arn:bsdfdsafsad:*:*:*:*\"."
        );
        assert_eq!(
            resource_format("a:b:cadfsdf").unwrap(),
            "Partition \"b\" is not valid for resource \"arn:b:cadfsdf:*:*:*\"."
        );
        assert_eq!(
            resource_format("a:b:c:d:e:f:g:h").unwrap(),
            "Partition \"b\" is not valid for resource \"arn:b:c:d:e:f:g:h\"."
        );
        assert_eq!(
            resource_format("aws:s3:::example_bucket").unwrap(),
            "Partition \"s3\" is not valid for resource \"arn:s3:::example_bucket:*\"."
        );
        assert_eq!(
            resource_format("arn:aws").unwrap(),
            "Resource vendor must be fully qualified and cannot contain regexes."
        );
        assert_eq!(resource_format("arn:aws:fdsasf"), None);
        assert_eq!(resource_format("arn:aws:test%3Aencoded%3Astring"), None);
        assert!(resource_format("arn:aws:iam:::example_bucket")
            .unwrap()
            .starts_with("IAM resource path must either be"));
        assert_eq!(
            resource_format("arn:aws:iam:us-east-1::user/x").unwrap(),
            "IAM resource arn:aws:iam:us-east-1::user/x cannot contain region information."
        );
        assert_eq!(resource_format("arn:aws:s3:us-east-1:123456789012:accesspoint/x"), None);
    }

    #[test]
    fn dates() {
        for ok in [
            "2019-07-16T12:00:00Z",
            "2019-07-16",
            "2019",
            "1563278400",
            "9223372036854775807",
            "2019-07-16T12:00:00.123+01:00",
            "2019-07-16T12",
        ] {
            assert!(legacy_date(ok), "{ok}");
        }
        for bad in ["2019-13-01", "yesterday", "9223372036854775808", "2019-07-16T25:00:00Z", "2019-07-16T12:00:00Zx"] {
            assert!(!legacy_date(bad), "{bad}");
        }
    }

    #[test]
    fn actions() {
        assert!(action_prefix("s3:GetObject").is_ok());
        assert!(action_prefix("*").is_ok());
        assert_eq!(action_prefix("invalid").unwrap_err(), VENDOR_PREFIX);
        assert_eq!(action_prefix("s3:List:Bucket").unwrap_err(), ONE_COLON);
        assert_eq!(action_prefix("a a:ListBucket").unwrap_err(), "Vendor a a is not valid");
    }
}
