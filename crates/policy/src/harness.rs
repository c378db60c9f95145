//! The `rampart policy eval` / `rampart policy validate` formats.
//!
//! Input: one case or an array of cases:
//! ```json
//! {"request": {"principal": "arn:aws:iam::111122223333:user/alice", "action": "s3:GetObject",
//!              "resource": "arn:aws:s3:::bucket/key", "resourceAccount": "111122223333",
//!              "context": {"aws:SourceIp": "203.0.113.7", "aws:TagKeys": ["env", "team"]}},
//!  "identityPolicies": [ {document}, … ],
//!  "permissionsBoundaries": [ … ], "sessionPolicy": {…} | null, "resourcePolicy": {…} | null,
//!  "resourcePolicyType": "resource" | "trust", "resourcePolicyRequired": false,
//!  "serviceControlPolicies": [[ … root … ], [ … OU … ], [ … account … ]],
//!  "resourceControlPolicies": [[ … ], …]}
//! ```
//! A policy is a document object, a string holding the document, or `{"name": "…", "document": …}`.
//! Absent lists mean "no such policies"; an empty SCP/RCP list means no Organizations.
//! Output (per case): `{"decision": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied", "explanation": …}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::validate::{self, Finding, Severity};
use crate::{
    evaluate, Context, ContextValue, Decision, Evaluation, Layer, NamedPolicy, Policy, PolicySet, PolicyType,
    Principal, Request,
};

/// Why a harness input could not be evaluated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HarnessError {
    pub message: String,
}

fn err(message: impl Into<String>) -> HarnessError {
    HarnessError { message: message.into() }
}

/// The request part of a case.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestSpec {
    pub principal: String,
    pub action: String,
    #[serde(default = "star")]
    pub resource: String,
    #[serde(default)]
    pub resource_account: Option<String>,
    #[serde(default)]
    pub context: serde_json::Map<String, Value>,
}

fn star() -> String {
    "*".into()
}

/// What a test vector expects.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expected {
    pub decision: Decision,
    #[serde(default)]
    pub denying_layer: Option<Layer>,
    /// Sids (or `policy#index`) of the decisive statements, when the vector checks them.
    #[serde(default)]
    pub matched: Option<Vec<String>>,
    #[serde(default)]
    pub missing_context_keys: Option<Vec<String>>,
}

/// Whether the resource policy is a resource-based policy or a role trust policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ResourcePolicyType {
    #[default]
    Resource,
    Trust,
}

/// One case of `rampart policy eval` (and one test vector, with `name`/`expected`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Case {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub request: RequestSpec,
    #[serde(default)]
    pub identity_policies: Option<Vec<Value>>,
    #[serde(default)]
    pub permissions_boundaries: Option<Vec<Value>>,
    #[serde(default)]
    pub session_policy: Option<Value>,
    #[serde(default)]
    pub session_policies: Option<Vec<Value>>,
    #[serde(default)]
    pub resource_policy: Option<Value>,
    #[serde(default)]
    pub resource_policy_type: ResourcePolicyType,
    #[serde(default)]
    pub resource_policy_required: bool,
    #[serde(default)]
    pub service_control_policies: Option<Vec<Vec<Value>>>,
    #[serde(default)]
    pub resource_control_policies: Option<Vec<Vec<Value>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Expected>,
}

/// A policy of a case, parsed, with the name explanations use.
struct Loaded {
    name: String,
    policy: Policy,
}

fn load(v: &Value, default_name: String, ty: PolicyType) -> Result<Loaded, HarnessError> {
    let (name, doc) = match v {
        Value::Object(o) if o.len() == 2 && o.contains_key("name") && o.contains_key("document") => {
            let name = o["name"].as_str().ok_or_else(|| err(format!("{default_name}: name must be a string")))?;
            (name.to_string(), &o["document"])
        }
        _ => (default_name, v),
    };
    let text = match doc {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).map_err(|e| err(e.to_string()))?,
    };
    let policy = Policy::parse(&text, ty).map_err(|e| err(format!("{name}: MalformedPolicyDocument: {e}")))?;
    Ok(Loaded { name, policy })
}

fn load_list(vs: &Option<Vec<Value>>, prefix: &str, ty: PolicyType) -> Result<Option<Vec<Loaded>>, HarnessError> {
    vs.as_ref()
        .map(|vs| vs.iter().enumerate().map(|(i, v)| load(v, format!("{prefix}[{i}]"), ty)).collect())
        .transpose()
}

fn load_levels(
    vs: &Option<Vec<Vec<Value>>>,
    prefix: &str,
    ty: PolicyType,
) -> Result<Option<Vec<Vec<Loaded>>>, HarnessError> {
    match vs {
        None => Ok(None),
        Some(levels) if levels.is_empty() => Ok(None),
        Some(levels) => levels
            .iter()
            .enumerate()
            .map(|(l, vs)| vs.iter().enumerate().map(|(i, v)| load(v, format!("{prefix}[{l}][{i}]"), ty)).collect())
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Build the engine's context from the JSON `context` object.
pub fn context_of(map: &serde_json::Map<String, Value>) -> Result<Context, HarnessError> {
    let mut ctx = Context::new();
    for (k, v) in map {
        let value = match v {
            Value::Array(items) => ContextValue::List(
                items
                    .iter()
                    .map(|i| scalar(i).ok_or_else(|| err(format!("context {k}: values must be scalars"))))
                    .collect::<Result<_, _>>()?,
            ),
            other => ContextValue::String(scalar(other).ok_or_else(|| err(format!("context {k}: unsupported value")))?),
        };
        ctx.insert(k, value);
    }
    Ok(ctx)
}

fn named(l: &[Loaded]) -> Vec<NamedPolicy<'_>> {
    l.iter().map(|p| NamedPolicy::new(&p.name, &p.policy)).collect()
}

/// Evaluate one case.
pub fn eval_case(case: &Case) -> Result<Evaluation, HarnessError> {
    eval_case_with(case, evaluate)
}

/// Evaluate one case with the given evaluator (the fast one, or [`crate::reference::evaluate`]).
pub fn eval_case_with(
    case: &Case,
    evaluator: fn(&Request<'_>, &PolicySet<'_>) -> Evaluation,
) -> Result<Evaluation, HarnessError> {
    let r = &case.request;
    let principal =
        Principal::from_arn(&r.principal).ok_or_else(|| err(format!("unrecognised principal {:?}", r.principal)))?;
    let context = context_of(&r.context)?;
    let identity = load_list(&case.identity_policies, "identityPolicies", PolicyType::Identity)?.unwrap_or_default();
    let boundaries = load_list(&case.permissions_boundaries, "permissionsBoundaries", PolicyType::Identity)?;
    let mut sessions = load_list(&case.session_policies, "sessionPolicies", PolicyType::Identity)?;
    if let Some(v) = case.session_policy.as_ref().filter(|v| !v.is_null()) {
        sessions.get_or_insert_with(Vec::new).push(load(v, "sessionPolicy".into(), PolicyType::Identity)?);
    }
    let rp_type = match case.resource_policy_type {
        ResourcePolicyType::Resource => PolicyType::Resource,
        ResourcePolicyType::Trust => PolicyType::Trust,
    };
    let resource = match case.resource_policy.as_ref().filter(|v| !v.is_null()) {
        Some(v) => Some(load(v, "resourcePolicy".into(), rp_type)?),
        None => None,
    };
    let scps = load_levels(&case.service_control_policies, "serviceControlPolicies", PolicyType::ServiceControl)?;
    let rcps = load_levels(&case.resource_control_policies, "resourceControlPolicies", PolicyType::ResourceControl)?;

    let set = PolicySet {
        identity: named(&identity),
        permissions_boundaries: boundaries.as_deref().map(named),
        session_policies: sessions.as_deref().map(named),
        resource_policy: resource.as_ref().map(|p| NamedPolicy::new(&p.name, &p.policy)),
        resource_policy_required: case.resource_policy_required,
        service_control_policies: scps.as_ref().map(|ls| ls.iter().map(|l| named(l)).collect()),
        resource_control_policies: rcps.as_ref().map(|ls| ls.iter().map(|l| named(l)).collect()),
    };
    let request = Request {
        principal: &principal,
        action: &r.action,
        resource: &r.resource,
        resource_account: r.resource_account.as_deref(),
        context: &context,
    };
    Ok(evaluator(&request, &set))
}

/// Parse the input: one case or an array of cases. The bool says whether it was an array.
pub fn parse_cases(input: &str) -> Result<(Vec<Case>, bool), HarnessError> {
    let v: Value = serde_json::from_str(input).map_err(|e| err(format!("input is not JSON: {e}")))?;
    match v {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, c)| serde_json::from_value(c).map_err(|e| err(format!("case {i}: {e}"))))
            .collect::<Result<Vec<_>, _>>()
            .map(|c| (c, true)),
        other => serde_json::from_value(other).map(|c| (vec![c], false)).map_err(|e| err(format!("case: {e}"))),
    }
}

/// `rampart policy eval`: evaluate the input and return the pretty-printed result(s).
pub fn eval_json(input: &str) -> Result<String, HarnessError> {
    let (cases, array) = parse_cases(input)?;
    let mut out = Vec::with_capacity(cases.len());
    for (i, c) in cases.iter().enumerate() {
        out.push(eval_case(c).map_err(|e| if array { err(format!("case {i}: {}", e.message)) } else { e })?);
    }
    let text = match (array, out.first()) {
        (false, Some(one)) => serde_json::to_string_pretty(one),
        _ => serde_json::to_string_pretty(&out),
    };
    text.map_err(|e| err(e.to_string()))
}

/// `rampart policy validate`: AWS's error (if AWS would reject the document) and warnings.
pub fn validate(json: &str, ty: PolicyType) -> Vec<Finding> {
    let doc = match crate::parse_document(json, ty) {
        Ok(d) => d,
        Err(message) => return vec![Finding { severity: Severity::Error, message, statement: None, sid: None }],
    };
    let mut out = Vec::new();
    if let Err(message) = validate::check(&doc, ty) {
        out.push(Finding { severity: Severity::Error, message, statement: None, sid: None });
    }
    out.extend(validate::lints(&doc));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_single_and_array() {
        let case = r#"{"request":{"principal":"arn:aws:iam::111122223333:user/alice","action":"s3:GetObject",
            "resource":"arn:aws:s3:::b/k"},
            "identityPolicies":[{"Version":"2012-10-17","Statement":{"Sid":"R","Effect":"Allow","Action":"s3:Get*","Resource":"*"}}]}"#;
        let out: Value = serde_json::from_str(&eval_json(case).unwrap()).unwrap();
        assert_eq!(out["decision"], "Allowed");
        assert_eq!(out["explanation"]["statements"][0]["sid"], "R");
        let out: Value = serde_json::from_str(&eval_json(&format!("[{case},{case}]")).unwrap()).unwrap();
        assert_eq!(out.as_array().unwrap().len(), 2);
        assert!(eval_json("{").is_err());
        assert!(eval_json(r#"{"request":{"principal":"bogus","action":"a:b"}}"#).is_err());
    }

    #[test]
    fn validate_reports_aws_message() {
        let f = validate(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*"}}"#,
            PolicyType::Identity,
        );
        assert_eq!(f[0].severity, Severity::Error);
        assert_eq!(f[0].message, "Policy statement must contain resources.");
        assert_eq!(validate("nope", PolicyType::Identity)[0].message, "Syntax errors in policy.");
        let ok = validate(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
            PolicyType::Identity,
        );
        assert!(ok.iter().all(|f| f.severity == Severity::Warning));
    }
}
