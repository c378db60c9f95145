//! AWS IAM policy engine: parse, validate, evaluate, explain. Pure: no I/O, no async.
//!
//! # Using it
//!
//! ```
//! use rampart_policy::*;
//!
//! let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Read","Effect":"Allow",
//!               "Action":"s3:Get*","Resource":"arn:aws:s3:::bucket/${aws:username}/*"}]}"#;
//! let policy = Policy::parse(doc, PolicyType::Identity)?;          // PolicyError: AWS MalformedPolicyDocument message
//! let mut ctx = Context::new();
//! ctx.insert("aws:username", ContextValue::String("alice".into()));  // keys case-insensitive
//! let principal = Principal::iam_user("arn:aws:iam::111122223333:user/alice", "111122223333");
//! let req = Request { principal: &principal, action: "s3:GetObject", resource: "arn:aws:s3:::bucket/alice/x",
//!                     resource_account: Some("111122223333"), context: &ctx };
//! let set = PolicySet { identity: vec![NamedPolicy::new("inline:alice/p", &policy)], ..PolicySet::default() };
//! let eval = evaluate(&req, &set);   // Decision::{Allowed, ImplicitlyDenied, ExplicitlyDenied}
//! assert_eq!(eval.decision, Decision::Allowed);
//! # Ok::<(), PolicyError>(())
//! ```
//!
//! # Explanations (for AccessDenied messages, `rampart policy eval`, and the IAM policy simulator)
//!
//! [`Evaluation::explanation`] is an [`Explanation`]:
//! - [`Explanation::denying_layer`] — `(Layer, explicit)` of a denial, `None` when allowed. An explicit
//!   deny names the first layer holding an applying Deny; an implicit deny names the layer that lacked an
//!   allow (RCP, SCP, resource policy, identity, permissions boundary, session policy — in that order).
//! - [`Explanation::matched_statements`] — the statements that decided (Allow statements of an allowed
//!   request, Deny statements of an explicitly denied one): simulator `MatchedStatements`. Each has
//!   `policy` (the [`NamedPolicy`] name: `SourcePolicyId`), `sid`, `index`, `layer`, and `start`/`end`
//!   line/column of the statement in its document (`StartPosition`/`EndPosition`).
//! - [`Explanation::statements`] — every statement that applied, decisive or not.
//! - [`Explanation::missing_context_keys`] — condition keys referenced by statements whose action,
//!   resource and principal matched, but absent from the context: simulator `MissingContextValues`.
//! - [`Explanation::layers`] / [`Explanation::layer_decision`] — each layer's own verdict
//!   (`allowed` / `explicitDeny` / `implicitDeny`): simulator `EvalDecisionDetails`
//!   (e.g. `layer_decision(Layer::PermissionsBoundary)` for `PermissionsBoundaryDecisionDetail`).
//!
//! `serde_json::to_value(&eval)` gives the JSON `rampart policy eval` prints ([`harness`]).
//!
//! # Two evaluators
//! [`evaluate`] runs compiled, indexed policies ([`evaluator`]); [`reference::evaluate`] follows the AWS
//! documentation step by step over the parsed documents. Property tests check they always agree.
#![deny(clippy::string_slice, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::string_slice, clippy::indexing_slicing))]

pub mod ast;
pub mod compile;
pub mod condition;
pub mod evaluator;
pub mod explain;
pub mod harness;
pub mod json;
pub mod matching;
mod parser;
pub mod principal;
pub mod reference;
pub mod validate;
pub mod variables;

use std::borrow::Cow;
use std::sync::Arc;

pub use ast::{Effect, Version};
pub use explain::{Explanation, LayerDecision, LayerResult, MatchedStatement};
pub use json::Position;
pub use principal::Grant;
pub use validate::{Finding, Severity};

/// Which kind of policy a document is; decides validation rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PolicyType {
    /// Identity-based (also permissions boundaries and session policies): no Principal.
    Identity,
    /// Resource-based (KMS key policy, secret policy, …): Principal required.
    Resource,
    /// Role trust policy: Principal required, sts actions.
    Trust,
    /// Service control policy.
    ServiceControl,
    /// Resource control policy.
    ResourceControl,
}

/// A document AWS would reject. `Display` is AWS's MalformedPolicyDocument message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PolicyError {
    pub message: String,
}

impl PolicyError {
    fn new(message: impl Into<String>) -> Self {
        PolicyError { message: message.into() }
    }
}

#[derive(Debug)]
struct PolicyInner {
    ty: PolicyType,
    document: ast::Document,
    compiled: compile::CompiledPolicy,
    condition_keys: Vec<String>,
}

/// A parsed, validated and compiled policy document. Cheap to clone (shared inside).
#[derive(Clone, Debug)]
pub struct Policy {
    inner: Arc<PolicyInner>,
}

impl Policy {
    /// Parse and validate `json` as AWS does for `ty`.
    pub fn parse(json: &str, ty: PolicyType) -> Result<Policy, PolicyError> {
        let document = parse_document(json, ty).map_err(PolicyError::new)?;
        validate::check(&document, ty).map_err(PolicyError::new)?;
        Ok(Policy::from_document(document, ty))
    }

    /// Parse a document AWS itself stores and serves (AWS managed policies): its syntax only, not
    /// the rules AWS applies to policies customers write (AWS's root-task policies name
    /// `arn:aws:iam::*:root`, which a customer's policy may not).
    pub fn parse_stored(json: &str, ty: PolicyType) -> Result<Policy, PolicyError> {
        let document = parse_document(json, ty).map_err(PolicyError::new)?;
        Ok(Policy::from_document(document, ty))
    }

    /// Compile an already-validated document.
    fn from_document(document: ast::Document, ty: PolicyType) -> Policy {
        let compiled = compile::CompiledPolicy::new(&document);
        let mut condition_keys: Vec<String> = Vec::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        for s in &document.statements {
            for c in &s.conditions {
                if seen.insert(c.key.to_ascii_lowercase()) {
                    condition_keys.push(c.key.clone());
                }
            }
        }
        Policy { inner: Arc::new(PolicyInner { ty, document, compiled, condition_keys }) }
    }

    /// The condition keys this policy's statements reference (for GetContextKeysFor*Policy): as first
    /// written in the document, de-duplicated case-insensitively.
    pub fn condition_keys(&self) -> Vec<String> {
        self.inner.condition_keys.clone()
    }

    pub fn policy_type(&self) -> PolicyType {
        self.inner.ty
    }

    /// Whether evaluating this policy can read the request context (conditions, policy variables).
    pub fn reads_context(&self) -> bool {
        self.inner.compiled.reads_context
    }

    /// The parsed document.
    pub fn document(&self) -> &ast::Document {
        &self.inner.document
    }

    /// Whether an `Allow` statement of this policy names some action of the service with this
    /// namespace (`s3`), by its `Action` patterns (or a `NotAction` that leaves some of them).
    pub fn allows_some_action_of(&self, service: &str) -> bool {
        self.inner.compiled.allows_some_action_of(service)
    }

    pub(crate) fn compiled(&self) -> &compile::CompiledPolicy {
        &self.inner.compiled
    }
}

/// The grammar stage, with the message IAM gives for `ty` (trust policies have their own validator).
pub(crate) fn parse_document(text: &str, ty: PolicyType) -> Result<ast::Document, String> {
    if ty == PolicyType::Trust {
        let root = json::parse(text).map_err(|_| validate::TRUST_INVALID_JSON.to_string())?;
        validate::check_trust_json(&root)?;
        return parser::document(&root).map_err(|_| parser::SYNTAX.to_string());
    }
    parser::parse(text).map_err(|_| parser::SYNTAX.to_string())
}

/// A context value: AWS condition keys are single- or multi-valued; operators coerce
/// (numbers, dates, bools, IPs) from the string form.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum ContextValue {
    String(String),
    List(Vec<String>),
}

/// Request context keys → values. Key lookup is case-insensitive.
///
/// A flat list: a request has a few dozen keys and a policy looks up a handful (often none), so
/// building a hash table per request costs more than scanning the list on each lookup. Past
/// [`INDEX_FROM`] keys (a request carrying many tags or encryption-context pairs) a hash index is
/// kept beside the list, so building and reading a large context stays linear, never quadratic.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Keys lower-cased and unique; fixed key names are borrowed (no allocation per request).
    entries: Vec<(Cow<'static, str>, ContextValue)>,
    /// Lower-cased key → position in `entries`, once there are more than [`INDEX_FROM`] entries.
    index: Option<std::collections::HashMap<String, usize>>,
}

/// Above this many keys a [`Context`] keeps a hash index.
const INDEX_FROM: usize = 32;

impl Context {
    pub fn new() -> Self {
        Self::default()
    }
    /// An empty context with room for `n` keys (a request's global keys are known in advance).
    pub fn with_capacity(n: usize) -> Self {
        Context { entries: Vec::with_capacity(n), index: None }
    }
    pub fn insert(&mut self, key: &str, value: ContextValue) {
        match self.position(key) {
            Some(i) => {
                if let Some(entry) = self.entries.get_mut(i) {
                    entry.1 = value;
                }
            }
            None => self.push(Cow::Owned(key.to_ascii_lowercase()), value),
        }
    }
    /// [`Context::insert`] taking the key: a borrowed key already in lower case is stored as is,
    /// an owned one is lowered in place (no allocation either way).
    pub fn insert_key(&mut self, key: Cow<'static, str>, value: ContextValue) {
        if let Some(entry) = self.position(&key).and_then(|i| self.entries.get_mut(i)) {
            entry.1 = value;
            return;
        }
        let key = if key.bytes().any(|b| b.is_ascii_uppercase()) {
            let mut owned = key.into_owned();
            owned.make_ascii_lowercase();
            Cow::Owned(owned)
        } else {
            key
        };
        self.push(key, value);
    }
    /// [`Context::insert`] for a key written in lower case in the program (no allocation).
    pub fn insert_static(&mut self, key: &'static str, value: ContextValue) {
        debug_assert!(!key.bytes().any(|b| b.is_ascii_uppercase()), "{key} is not in lower case");
        self.insert_key(Cow::Borrowed(key), value);
    }
    /// Append a new entry (`key` lower-cased, not present yet).
    fn push(&mut self, key: Cow<'static, str>, value: ContextValue) {
        let at = self.entries.len();
        match &mut self.index {
            Some(index) => {
                index.insert(key.to_string(), at);
            }
            None if at >= INDEX_FROM => {
                let mut index: std::collections::HashMap<String, usize> =
                    self.entries.iter().enumerate().map(|(i, (k, _))| (k.to_string(), i)).collect();
                index.insert(key.to_string(), at);
                self.index = Some(index);
            }
            None => {}
        }
        self.entries.push((key, value));
    }
    /// Where `key` (any case) is.
    fn position(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) if key.bytes().any(|b| b.is_ascii_uppercase()) => index.get(&key.to_ascii_lowercase()).copied(),
            Some(index) => index.get(key).copied(),
            None => self.entries.iter().position(|(k, _)| k.len() == key.len() && k.eq_ignore_ascii_case(key)),
        }
    }
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        self.position(key).and_then(|i| self.entries.get(i)).map(|(_, v)| v)
    }
    /// Lookup by an already lower-cased key.
    pub(crate) fn get_lower(&self, key: &str) -> Option<&ContextValue> {
        match &self.index {
            Some(index) => index.get(key).and_then(|&i| self.entries.get(i)).map(|e| &e.1),
            None => self.entries.iter().find(|(k, _)| k.as_ref() == key).map(|(_, v)| v),
        }
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Entries (keys lower-cased).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v))
    }
}

/// What kind of principal makes the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account root user (`arn:aws:iam::ACCOUNT:root`).
    Root,
    /// An IAM user.
    User,
    /// A role session; `role_arn` is the role (`arn:aws:iam::A:role/path/Name`), the principal
    /// ARN is the session (`arn:aws:sts::A:assumed-role/Name/session`).
    AssumedRole { role_arn: String },
    /// A federated user session (GetFederationToken).
    FederatedUser,
    /// An AWS service principal (`Service` in policies), e.g. `lambda.amazonaws.com`.
    Service,
    /// Unauthenticated.
    Anonymous,
}

/// The principal making the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The principal's ARN as AWS reports it (user ARN, root ARN, assumed-role session ARN, service name).
    pub arn: String,
    /// The principal's account (empty for services / anonymous).
    pub account: String,
    pub kind: PrincipalKind,
}

impl Principal {
    pub fn iam_user(arn: &str, account: &str) -> Self {
        Principal { arn: arn.into(), account: account.into(), kind: PrincipalKind::User }
    }
    pub fn root(account: &str) -> Self {
        Principal { arn: format!("arn:aws:iam::{account}:root"), account: account.into(), kind: PrincipalKind::Root }
    }

    /// Decide the principal's kind from its ARN: `…:root`, `…:user/…`, `…:role/…` (a session of that role),
    /// `arn:aws:sts::A:assumed-role/Name/session`, `arn:aws:sts::A:federated-user/name`, a service name
    /// (`*.amazonaws.com`), or `*`/`anonymous`. `None` for anything else.
    pub fn from_arn(arn: &str) -> Option<Principal> {
        if arn == "*" || arn.eq_ignore_ascii_case("anonymous") {
            return Some(Principal { arn: "*".into(), account: String::new(), kind: PrincipalKind::Anonymous });
        }
        if !arn.starts_with("arn:") {
            let service = arn.contains('.') && !arn.contains(':') && !arn.contains('/');
            return service.then(|| Principal {
                arn: arn.into(),
                account: String::new(),
                kind: PrincipalKind::Service,
            });
        }
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [_, partition, service, _region, account, resource] = parts[..] else { return None };
        let p = |kind| Some(Principal { arn: arn.into(), account: account.into(), kind });
        match (service, resource.split_once('/')) {
            ("iam", None) if resource == "root" => p(PrincipalKind::Root),
            ("iam", Some(("user", _))) => p(PrincipalKind::User),
            ("iam", Some(("role", _))) => p(PrincipalKind::AssumedRole { role_arn: arn.into() }),
            ("sts", Some(("assumed-role", rest))) => {
                let (role, _session) = rest.split_once('/')?;
                p(PrincipalKind::AssumedRole { role_arn: format!("arn:{partition}:iam::{account}:role/{role}") })
            }
            ("sts", Some(("federated-user", _))) => p(PrincipalKind::FederatedUser),
            _ => None,
        }
    }
}

/// One authorization question.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    /// `service:Action`, e.g. `iam:CreateUser`.
    pub action: &'a str,
    /// The resource ARN (or `*`).
    pub resource: &'a str,
    /// The account that owns the resource; `None` = same as the principal's.
    pub resource_account: Option<&'a str>,
    pub context: &'a Context,
}

/// A policy with the name explanations refer to it by (e.g. a managed policy ARN, `user/alice/inline/p`).
#[derive(Clone, Copy, Debug)]
pub struct NamedPolicy<'a> {
    pub name: &'a str,
    pub policy: &'a Policy,
}

impl<'a> NamedPolicy<'a> {
    pub fn new(name: &'a str, policy: &'a Policy) -> Self {
        NamedPolicy { name, policy }
    }
}

/// Every policy that applies to a request, by layer.
#[derive(Clone, Debug, Default)]
pub struct PolicySet<'a> {
    /// Identity policies of the principal (user inline + attached + its groups', or the role's).
    pub identity: Vec<NamedPolicy<'a>>,
    /// Permissions boundary (`None` = no boundary set).
    pub permissions_boundaries: Option<Vec<NamedPolicy<'a>>>,
    /// Session policies (`None` = not a session with policies).
    pub session_policies: Option<Vec<NamedPolicy<'a>>>,
    /// The resource's policy, if it has one.
    pub resource_policy: Option<NamedPolicy<'a>>,
    /// KMS key policies and role trust policies must allow explicitly (identity alone never suffices).
    pub resource_policy_required: bool,
    /// SCPs by level (root, OU…, account). `None` = no Organizations or the management account.
    pub service_control_policies: Option<Vec<Vec<NamedPolicy<'a>>>>,
    /// RCPs by level. `None` = none apply.
    pub resource_control_policies: Option<Vec<Vec<NamedPolicy<'a>>>>,
}

impl PolicySet<'_> {
    /// Whether evaluating the set can read the request context: when no policy does, the
    /// decision is the same for every context, so callers may skip building one.
    pub fn reads_context(&self) -> bool {
        let any = |ps: &[NamedPolicy<'_>]| ps.iter().any(|p| p.policy.reads_context());
        any(&self.identity)
            || self.permissions_boundaries.as_deref().is_some_and(any)
            || self.session_policies.as_deref().is_some_and(any)
            || self.resource_policy.as_ref().is_some_and(|p| p.policy.reads_context())
            || self.service_control_policies.iter().flatten().any(|level| any(level))
            || self.resource_control_policies.iter().flatten().any(|level| any(level))
    }
}

/// The outcome of evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Decision {
    Allowed,
    ImplicitlyDenied,
    ExplicitlyDenied,
}

/// Which layer of policy a statement or a missing allow belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Layer {
    ResourceControlPolicy,
    ServiceControlPolicy,
    ResourcePolicy,
    Identity,
    PermissionsBoundary,
    SessionPolicy,
}

impl Layer {
    /// How AWS's messages name the layer ("identity-based policy", "permissions boundary", …).
    pub fn noun(self) -> &'static str {
        match self {
            Layer::ResourceControlPolicy => "resource control policy",
            Layer::ServiceControlPolicy => "service control policy",
            Layer::ResourcePolicy => "resource-based policy",
            Layer::Identity => "identity-based policy",
            Layer::PermissionsBoundary => "permissions boundary",
            Layer::SessionPolicy => "session policy",
        }
    }
}

/// A decision plus the reasons.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Evaluation {
    pub decision: Decision,
    pub explanation: Explanation,
}

/// Evaluate `request` against `set` as AWS's policy evaluation logic does.
pub fn evaluate(request: &Request<'_>, set: &PolicySet<'_>) -> Evaluation {
    evaluator::evaluate(request, set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_contexts_stay_case_insensitive_and_unique() {
        let mut c = Context::new();
        c.insert_static("aws:username", ContextValue::String("a".into()));
        for i in 0..2000 {
            c.insert_key(Cow::Owned(format!("aws:RequestTag/K{i}")), ContextValue::String(i.to_string()));
        }
        // Re-inserting (any case) replaces; nothing is duplicated.
        c.insert("AWS:REQUESTTAG/k7", ContextValue::String("seven".into()));
        c.insert("aws:UserName", ContextValue::String("b".into()));
        assert_eq!(c.len(), 2001);
        assert_eq!(c.get("aws:requesttag/K7"), Some(&ContextValue::String("seven".into())));
        assert_eq!(c.get_lower("aws:requesttag/k1999"), Some(&ContextValue::String("1999".into())));
        assert_eq!(c.get("AWS:USERNAME"), Some(&ContextValue::String("b".into())));
        assert_eq!(c.get("aws:requesttag/k2000"), None);
        let clone = c.clone();
        assert_eq!(clone.get("aws:RequestTag/K1000"), Some(&ContextValue::String("1000".into())));
    }

    #[test]
    fn principal_kinds_from_arns() {
        let k = |a: &str| Principal::from_arn(a).map(|p| p.kind);
        assert_eq!(k("arn:aws:iam::111122223333:root"), Some(PrincipalKind::Root));
        assert_eq!(k("arn:aws:iam::111122223333:user/a/b"), Some(PrincipalKind::User));
        assert_eq!(
            k("arn:aws:sts::111122223333:assumed-role/R/s"),
            Some(PrincipalKind::AssumedRole { role_arn: "arn:aws:iam::111122223333:role/R".into() })
        );
        assert_eq!(k("arn:aws:sts::111122223333:federated-user/bob"), Some(PrincipalKind::FederatedUser));
        assert_eq!(k("lambda.amazonaws.com"), Some(PrincipalKind::Service));
        assert_eq!(k("*"), Some(PrincipalKind::Anonymous));
        assert_eq!(k("nonsense"), None);
        assert_eq!(Principal::from_arn("arn:aws:iam::111122223333:user/a").unwrap().account, "111122223333");
    }

    #[test]
    fn static_and_owned_keys_are_one_map() {
        let mut c = Context::with_capacity(2);
        c.insert_static("aws:sourceip", ContextValue::String("10.0.0.1".into()));
        c.insert("AWS:SourceIp", ContextValue::String("10.0.0.2".into()));
        assert_eq!(c.len(), 1);
        assert_eq!(c.get("aws:SOURCEIP"), Some(&ContextValue::String("10.0.0.2".into())));
        c.insert_static("aws:userid", ContextValue::String("u".into()));
        assert_eq!(c.get_lower("aws:userid"), Some(&ContextValue::String("u".into())));
        let mut keys: Vec<&str> = c.iter().map(|(k, _)| k).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["aws:sourceip", "aws:userid"]);
    }

    #[test]
    fn taken_keys_are_stored_in_lower_case() {
        let mut c = Context::new();
        c.insert_key(Cow::Borrowed("kms:calleraccount"), ContextValue::String("1".into()));
        c.insert_key(Cow::Borrowed("kms:KeySpec"), ContextValue::String("2".into()));
        c.insert_key(Cow::Owned("aws:ResourceTag/Team".into()), ContextValue::String("3".into()));
        assert_eq!(c.get("KMS:CallerAccount"), Some(&ContextValue::String("1".into())));
        assert_eq!(c.get_lower("kms:keyspec"), Some(&ContextValue::String("2".into())));
        assert_eq!(c.get_lower("aws:resourcetag/team"), Some(&ContextValue::String("3".into())));
        let mut keys: Vec<&str> = c.iter().map(|(k, _)| k).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["aws:resourcetag/team", "kms:calleraccount", "kms:keyspec"]);
    }

    #[test]
    fn condition_keys_dedup() {
        let p = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*",
                "Condition":{"StringEquals":{"aws:PrincipalTag/team":"a","s3:prefix":"x"},"Bool":{"AWS:principaltag/TEAM":"true"}}}]}"#,
            PolicyType::Identity,
        )
        .unwrap();
        assert_eq!(p.condition_keys(), vec!["aws:PrincipalTag/team", "s3:prefix"]);
    }
}
