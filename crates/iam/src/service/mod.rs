//! The IAM service on the pipeline: operation table, shared helpers.

mod access;
mod access_keys;
mod account;
mod attachments;
mod details;
mod groups;
mod index;
mod inline;
mod last_accessed;
pub(crate) mod login;
mod managed_policies;
pub(crate) mod mfa;
pub(crate) mod oidc_providers;
mod org_access;
mod outbound;
mod profiles;
mod report;
mod roles;
mod root_access;
pub(crate) mod saml_providers;
mod server_certs;
mod service_creds;
mod service_linked;
mod signing_certs;
mod simulate;
mod ssh_keys;
mod users;
pub(crate) mod xml;

pub(crate) use root_access::{root_features, IAM_PRINCIPAL, ROOT_SESSIONS};

use std::sync::Arc;

use rampart_policy::{ContextValue, PolicyType};
use rampart_protocol::{AwsError, Protocol};
use rampart_service::{AuthzCheck, AuthzPlan, Input, Operations, Output, RequestContext, Service};

use crate::creds::IamCredentials;
use crate::db::Db;
use crate::error::{IamError, Result};
use crate::model::Tag;
use crate::resolve::Resolver;

/// State shared by the handlers.
pub(crate) struct Core {
    pub db: Db,
    pub resolver: Arc<Resolver>,
    pub creds: Arc<IamCredentials>,
    /// Seals secrets kept at rest (MFA seeds).
    pub sealer: Arc<rampart_store::Sealer>,
    /// The recorded calls last-accessed reports are computed from (wired by the server).
    pub activity: std::sync::OnceLock<Arc<dyn rampart_service::ActivityLog>>,
    /// Rampart's public base URL (`http://host:port`): outbound federation issuers live under it.
    pub public_url: std::sync::RwLock<String>,
}

impl Core {
    /// The public base URL issuers are published under.
    pub fn public_url(&self) -> String {
        self.public_url.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Parse (and cache) `doc` as a policy of type `ty`; AWS's MalformedPolicyDocument otherwise.
    pub fn validate_policy(&self, doc: &str, ty: PolicyType) -> Result<()> {
        self.resolver.policies.get(doc, ty)?;
        Ok(())
    }
}

/// Every IAM operation, each listed once by its family.
static OPERATIONS: Operations<Core> = Operations::new(&[
    users::OPS,
    access_keys::OPS,
    groups::OPS,
    roles::OPS,
    profiles::OPS,
    account::OPS,
    login::OPS,
    report::OPS,
    service_linked::OPS,
    ssh_keys::OPS,
    service_creds::OPS,
    signing_certs::OPS,
    server_certs::OPS,
    saml_providers::OPS,
    oidc_providers::OPS,
    mfa::OPS,
    managed_policies::OPS,
    inline::OPS,
    attachments::OPS,
    simulate::OPS,
    details::OPS,
    access::OPS,
    last_accessed::OPS,
    org_access::OPS,
    outbound::OPS,
    root_access::OPS,
]);

/// Every operation this service implements.
pub fn operations() -> Vec<&'static str> {
    OPERATIONS.names()
}

/// IAM (awsQuery, API version 2010-05-08).
pub struct IamService {
    core: Arc<Core>,
}

impl IamService {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        IamService { core }
    }
}

impl Service for IamService {
    fn signing_name(&self) -> &'static str {
        "iam"
    }

    fn event_source(&self) -> &'static str {
        "iam.amazonaws.com"
    }

    fn protocol(&self) -> Protocol {
        Protocol::AwsQuery
    }

    fn xml_namespace(&self) -> &'static str {
        "https://iam.amazonaws.com/doc/2010-05-08/"
    }

    fn has_operation(&self, operation: &str) -> bool {
        OPERATIONS.has(operation)
    }

    fn operation_names(&self) -> Vec<&'static str> {
        OPERATIONS.names()
    }

    fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: &Input,
        decide: rampart_service::Decide<'_>,
    ) -> Result<Output, AwsError> {
        OPERATIONS
            .call(&self.core, ctx, operation, input, decide)
            .unwrap_or_else(|| Err(AwsError::invalid_action("iam", operation)))
    }

    fn plan(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        OPERATIONS
            .plan(&self.core, ctx, operation, input)
            .unwrap_or_else(|| Err(AwsError::invalid_action("iam", operation)))
    }
}

// ---- shared helpers -------------------------------------------------------------------------

/// Record a managed-policy attachment in the usage index (Organizations provisions roles).
pub(crate) fn index_attach(
    tx: &mut crate::db::Tx<'_>,
    account: &str,
    policy_arn: &str,
    kind: crate::model::EntityKind,
    name: &str,
    id: &str,
    path: &str,
) -> Result<()> {
    index::attach(tx, account, policy_arn, &index::EntityRef { kind, name, id, path })
}

/// The caller's account.
pub(crate) fn account(ctx: &RequestContext) -> &str {
    &ctx.caller.account_id
}

/// One check.
pub(crate) fn one(check: AuthzCheck) -> Result<AuthzPlan> {
    Ok(AuthzPlan::Checks(vec![check]))
}

/// `iam:{action}` on `resource`.
pub(crate) fn check(action: &str, resource: impl Into<String>) -> AuthzCheck {
    AuthzCheck::new(format!("iam:{action}"), resource)
}

/// `aws:ResourceTag/k` for each of the resource's tags (and `iam:ResourceTag/k` for users and
/// roles, as IAM documents).
pub(crate) fn resource_tags(mut c: AuthzCheck, tags: &[Tag], iam_key: bool) -> AuthzCheck {
    for t in tags {
        c.context.push((format!("aws:ResourceTag/{}", t.key).into(), ContextValue::String(t.value.clone())));
        if iam_key {
            c.context.push((format!("iam:ResourceTag/{}", t.key).into(), ContextValue::String(t.value.clone())));
        }
    }
    c
}

/// `aws:RequestTag/k` and `aws:TagKeys` for tags in the request.
pub(crate) fn request_tags(mut c: AuthzCheck, tags: &[Tag]) -> AuthzCheck {
    if tags.is_empty() {
        return c;
    }
    for t in tags {
        c.context.push((format!("aws:RequestTag/{}", t.key).into(), ContextValue::String(t.value.clone())));
    }
    c.context.push(("aws:TagKeys".into(), ContextValue::List(tags.iter().map(|t| t.key.clone()).collect())));
    c
}

/// Result XML.
pub(crate) fn xml(s: String) -> Result<Output> {
    Ok(Output::Xml(Some(s)))
}

/// No result element.
pub(crate) fn empty() -> Result<Output> {
    Ok(Output::Xml(None))
}

/// One page of a sorted listing.
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    /// The marker for the next page, when truncated.
    pub next: Option<String>,
}

/// Paginate `items` (already ordered by `key`) after `marker`, at most `max` items.
pub(crate) fn paginate<T>(items: Vec<T>, key: impl Fn(&T) -> String, marker: Option<&str>, max: usize) -> Page<T> {
    let mut rest: Vec<T> = match marker {
        Some(m) => items.into_iter().filter(|i| key(i).as_str() > m).collect(),
        None => items,
    };
    if rest.len() > max {
        rest.truncate(max);
        let next = rest.last().map(&key);
        Page { items: rest, next }
    } else {
        Page { items: rest, next: None }
    }
}

/// Tag rules beyond the model's patterns: no duplicates (case-insensitive), no `aws:` prefix.
pub(crate) fn check_new_tags(tags: &[Tag]) -> Result<()> {
    for (i, t) in tags.iter().enumerate() {
        if crate::util::has_aws_prefix(&t.key) {
            return Err(IamError::InvalidInput("User-defined tag keys can't start with 'aws:'.".into()));
        }
        if tags.iter().take(i).any(|o| o.key.eq_ignore_ascii_case(&t.key)) {
            return Err(IamError::InvalidInput(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.".into(),
            ));
        }
    }
    Ok(())
}

/// Merge `new` into `existing` (same key, case-insensitive, overwrites); at most 50 tags.
pub(crate) fn merge_tags(existing: &mut Vec<Tag>, new: Vec<Tag>) -> Result<()> {
    for t in new {
        match existing.iter_mut().find(|e| e.key.eq_ignore_ascii_case(&t.key)) {
            Some(e) => e.value = t.value,
            None => existing.push(t),
        }
    }
    if existing.len() > 50 {
        return Err(IamError::LimitExceeded("The number of tags has reached the maximum limit.".into()));
    }
    Ok(())
}

/// Remove tags by key (case-insensitive).
pub(crate) fn remove_tags(existing: &mut Vec<Tag>, keys: &[&str]) {
    existing.retain(|t| !keys.iter().any(|k| k.eq_ignore_ascii_case(&t.key)));
}

/// NoSuchEntity for a policy ARN that is not there (AWS's attach wording).
pub(crate) fn policy_not_attachable(arn: &str) -> IamError {
    IamError::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable."))
}

/// `path_prefix` filter (`None` = everything).
pub(crate) fn under(path: &str, prefix: Option<&str>) -> bool {
    prefix.is_none_or(|p| path.starts_with(p))
}

/// The input of the calls that list an account's entities by path (ListUsers, ListRoles,
/// ListGroups, ListInstanceProfiles, ListServerCertificates): `PathPrefix` and paging.
pub(crate) struct PathPage {
    pub prefix: Option<String>,
    pub marker: Option<String>,
    pub max: usize,
}

impl PathPage {
    pub fn parse(input: &Input) -> Result<Self> {
        let mut a = crate::validate::Args::new(input.query());
        let prefix = a.opt("PathPrefix", &crate::validate::PATH_PREFIX).map(str::to_string);
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(PathPage { prefix, marker, max })
    }

    /// What the listing is authorized on: `arn:aws:iam::ACCOUNT:{kind}{prefix}`.
    pub fn resource(&self, ctx: &RequestContext, kind: &str) -> String {
        format!("arn:aws:iam::{}:{kind}{}", account(ctx), self.prefix.as_deref().unwrap_or("/"))
    }

    /// The page of `items` (ordered by lower-case name) whose path is under the prefix.
    pub fn page<T>(&self, items: Vec<T>, path: impl Fn(&T) -> &str, name: impl Fn(&T) -> &str) -> Page<T> {
        let items = items.into_iter().filter(|i| under(path(i), self.prefix.as_deref())).collect();
        paginate(items, |i| name(i).to_ascii_lowercase(), self.marker.as_deref(), self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag { key: k.into(), value: v.into() }
    }

    #[test]
    fn pages_follow_markers() {
        let items: Vec<u32> = (0..7).collect();
        let key = |i: &u32| format!("{i:03}");
        let p = paginate(items.clone(), key, None, 3);
        assert_eq!(p.items, vec![0, 1, 2]);
        assert_eq!(p.next.as_deref(), Some("002"));
        let p = paginate(items.clone(), key, p.next.as_deref(), 3);
        assert_eq!(p.items, vec![3, 4, 5]);
        let p = paginate(items.clone(), key, p.next.as_deref(), 3);
        assert_eq!((p.items, p.next), (vec![6], None));
        assert_eq!(paginate(items, key, None, 7).next, None);
    }

    #[test]
    fn tag_rules() {
        assert!(check_new_tags(&[tag("a", "1"), tag("b", "2")]).is_ok());
        assert!(matches!(check_new_tags(&[tag("a", "1"), tag("A", "2")]), Err(IamError::InvalidInput(_))));
        assert!(matches!(check_new_tags(&[tag("AWS:x", "1")]), Err(IamError::InvalidInput(_))));
        let mut t = vec![tag("Team", "red")];
        merge_tags(&mut t, vec![tag("team", "blue"), tag("env", "")]).unwrap();
        assert_eq!(t, vec![tag("Team", "blue"), tag("env", "")]);
        remove_tags(&mut t, &["TEAM"]);
        assert_eq!(t, vec![tag("env", "")]);
        let many: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(matches!(merge_tags(&mut t, many), Err(IamError::LimitExceeded(_))));
        assert!(under("/a/b/", Some("/a/")) && !under("/b/", Some("/a/")) && under("/x/", None));
    }
}
