//! AWS Organizations (awsJson1.1, `AWSOrganizationsV20161128`): the organization tree, member
//! accounts that are real Rampart accounts (their own IAM namespace and an
//! `OrganizationAccountAccessRole` the management account assumes), and the SCPs/RCPs the
//! authorizer enforces (see [`enforce`]).

mod admin;
mod directory;
mod effective;
pub mod enforce;
mod handshakes;
pub mod model;
pub use directory::OrgDirectory;
mod policies;
mod resource_policy;
mod transfers;
mod tree;

use std::sync::Arc;

use rampart_policy::{ContextValue, PolicyType};
use rampart_protocol::{AwsError, Protocol};
use rampart_service::{AuthzCheck, AuthzPlan, Input, Operations, Output, RequestContext, ResourcePolicy, Service};
use serde_json::{json, Value};

use crate::db::{Lookup, Tx};
use crate::error::{IamError, Result};
use crate::model::{tables as iam_tables, AccountRec, EntityKind, RoleRec, Tag};
use crate::service::Core;
use crate::util::{policy_size, unique_id};
use enforce::org_of;
use model::*;

/// delegated administrators), from AWS's "AWS services that you can use with AWS Organizations".
const SERVICE_PRINCIPALS: &[&str] = &[
    "access-analyzer.amazonaws.com",
    "account.amazonaws.com",
    "auditmanager.amazonaws.com",
    "aws-artifact-account-sync.amazonaws.com",
    "backup.amazonaws.com",
    "member.org.stacksets.cloudformation.amazonaws.com",
    "cloudtrail.amazonaws.com",
    "compute-optimizer.amazonaws.com",
    "config.amazonaws.com",
    "config-multiaccountsetup.amazonaws.com",
    "controltower.amazonaws.com",
    "cost-optimization-hub.bcm.amazonaws.com",
    "detective.amazonaws.com",
    "devops-guru.amazonaws.com",
    "ds.amazonaws.com",
    "fms.amazonaws.com",
    "guardduty.amazonaws.com",
    "malware-protection.guardduty.amazonaws.com",
    "health.amazonaws.com",
    "iam.amazonaws.com",
    "inspector2.amazonaws.com",
    "ipam.amazonaws.com",
    "license-manager.amazonaws.com",
    "license-manager.member-account.amazonaws.com",
    "macie.amazonaws.com",
    "mgn.amazonaws.com",
    "networkmanager.amazonaws.com",
    "ram.amazonaws.com",
    "reporting.trustedadvisor.amazonaws.com",
    "securityhub.amazonaws.com",
    "securitylake.amazonaws.com",
    "servicecatalog.amazonaws.com",
    "servicequotas.amazonaws.com",
    "sso.amazonaws.com",
    "ssm.amazonaws.com",
    "storage-lens.s3.amazonaws.com",
    "tagpolicies.tag.amazonaws.com",
    "wellarchitected.amazonaws.com",
];

fn service_principal_arg(i: &In<'_>, name: &str) -> Result<String> {
    let sp = i.req(name)?;
    if SERVICE_PRINCIPALS.contains(&sp) {
        Ok(sp.to_string())
    } else {
        Err(invalid("UNRECOGNIZED_SERVICE_PRINCIPAL", "You specified an unrecognized service principal."))
    }
}

fn cannot_register_management() -> IamError {
    IamError::Aws(
        AwsError::new(
            "ConstraintViolationException",
            "You cannot register master account/yourself as delegated administrator for your organization.",
            400,
        )
        .with_field("Reason", "CANNOT_REGISTER_MASTER_AS_DELEGATED_ADMINISTRATOR"),
    )
}

fn account_not_registered() -> IamError {
    err(
        "AccountNotRegisteredException",
        "The provided account is not a registered delegated administrator for your organization.",
    )
}

/// AWS's default quotas.
const MAX_ACCOUNTS: usize = 10;
const MAX_OUS: usize = 1000;
const MAX_OU_DEPTH: usize = 5;
const MAX_POLICIES_PER_TYPE: usize = 1000;
const MAX_ATTACHED_PER_TYPE: usize = 5;
const MAX_POLICY_SIZE: usize = 5120;
const MAX_TAGS: usize = 50;
const DEFAULT_ROLE: &str = "OrganizationAccountAccessRole";

fn err(code: &'static str, message: impl Into<String>) -> IamError {
    IamError::Aws(AwsError::new(code, message, 400))
}

fn not_in_use() -> IamError {
    err("AWSOrganizationsNotInUseException", "Your account is not a member of an organization.")
}

fn denied() -> IamError {
    err("AccessDeniedException", "You don't have permissions to access this resource.")
}

fn constraint(reason: &'static str, message: impl Into<String>) -> IamError {
    IamError::Aws(AwsError::new("ConstraintViolationException", message, 400).with_field("Reason", reason))
}

fn invalid(reason: &'static str, message: impl Into<String>) -> IamError {
    IamError::Aws(AwsError::new("InvalidInputException", message, 400).with_field("Reason", reason))
}

fn policy_not_found() -> IamError {
    err("PolicyNotFoundException", "We can't find a policy with the PolicyId that you specified.")
}

fn target_not_found() -> IamError {
    err("TargetNotFoundException", "We can't find a root, OU, account, or policy with the TargetId that you specified.")
}

fn parent_not_found() -> IamError {
    err("ParentNotFoundException", "We can't find a root or OU with the ParentId that you specified.")
}

fn ou_not_found() -> IamError {
    err("OrganizationalUnitNotFoundException", "We can't find an OU with the OrganizationalUnitId that you specified.")
}

fn account_not_found() -> IamError {
    err("AccountNotFoundException", "You specified an account that doesn't exist.")
}

// ---- input ----------------------------------------------------------------------------------

fn is_root_id(s: &str) -> bool {
    s.strip_prefix("r-").is_some_and(|r| (4..=32).contains(&r.len()) && r.bytes().all(lower_digit))
}
fn lower_digit(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}
fn is_ou_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("ou-") else { return false };
    let Some((a, b)) = rest.split_once('-') else { return false };
    (4..=32).contains(&a.len())
        && a.bytes().all(lower_digit)
        && (8..=32).contains(&b.len())
        && b.bytes().all(lower_digit)
}
fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}
fn is_policy_id(s: &str) -> bool {
    s.strip_prefix("p-")
        .is_some_and(|r| (8..=128).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

/// Typed access to the JSON input with Organizations' InvalidInputException reasons.
struct In<'a>(&'a Value);

impl<'a> In<'a> {
    fn new(input: &'a Input) -> Self {
        In(input.json())
    }

    fn opt(&self, name: &str) -> Result<Option<&'a str>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(IamError::Aws(AwsError::new(
                "SerializationException",
                format!("Value for {name} must be a string"),
                400,
            ))),
        }
    }

    fn req(&self, name: &str) -> Result<&'a str> {
        self.opt(name)?.ok_or_else(|| invalid("INPUT_REQUIRED", format!("You must specify a value for {name}.")))
    }

    /// A required ID of a given shape.
    fn id(&self, name: &str, ok: fn(&str) -> bool) -> Result<&'a str> {
        let v = self.req(name)?;
        if !ok(v) {
            // The messages of AWS's InvalidInputException reasons (API reference).
            return Err(if name == "TargetId" {
                invalid(
                    "INVALID_PATTERN_TARGET_ID",
                    "You specified a policy target ID that doesn't match the required pattern.",
                )
            } else {
                invalid("INVALID_PATTERN", "You provided a value that doesn't match the required pattern.")
            });
        }
        Ok(v)
    }

    fn len(&self, name: &str, min: usize, max: usize, required: bool) -> Result<Option<&'a str>> {
        let v = if required { Some(self.req(name)?) } else { self.opt(name)? };
        if let Some(s) = v {
            let n = s.chars().count();
            if n < min {
                return Err(invalid(
                    "MIN_LENGTH_EXCEEDED",
                    format!("You provided a value for {name} that is too short."),
                ));
            }
            if n > max {
                return Err(invalid(
                    "MAX_LENGTH_EXCEEDED",
                    format!("You provided a value for {name} that is too long."),
                ));
            }
        }
        Ok(v)
    }

    fn max_results(&self) -> Result<usize> {
        match self.0.get("MaxResults") {
            None | Some(Value::Null) => Ok(20),
            Some(v) => match v.as_i64() {
                Some(n) if n < 1 => Err(invalid("MIN_VALUE_EXCEEDED", "MaxResults must be at least 1.")),
                Some(n) if n > 20 => Err(invalid("MAX_VALUE_EXCEEDED", "MaxResults must be at most 20.")),
                Some(n) => Ok(n as usize),
                None => Err(IamError::Aws(AwsError::new(
                    "SerializationException",
                    "Value for MaxResults must be an integer",
                    400,
                ))),
            },
        }
    }

    fn tags(&self, name: &str) -> Result<Vec<Tag>> {
        let Some(list) = self.0.get(name) else { return Ok(Vec::new()) };
        let Some(items) = list.as_array() else {
            return Err(IamError::Aws(AwsError::new("SerializationException", format!("{name} must be a list"), 400)));
        };
        // The count first (plans read tags before authorization): a huge list costs nothing, and
        // the per-tag checks below (duplicates included) stay bounded.
        if items.len() > MAX_TAGS {
            return Err(constraint(
                "MAX_TAG_LIMIT_EXCEEDED",
                "You have exceeded the maximum number of tags allowed on this resource.",
            ));
        }
        let mut tags: Vec<Tag> = Vec::with_capacity(items.len());
        for item in items {
            let key = item.get("Key").and_then(Value::as_str).unwrap_or_default();
            let value = item.get("Value").and_then(Value::as_str).unwrap_or_default();
            check_tag(key, value)?;
            if tags.iter().any(|t| t.key == key) {
                return Err(invalid("DUPLICATE_TAG_KEY", "You specified the same tag key more than once."));
            }
            tags.push(Tag { key: key.to_string(), value: value.to_string() });
        }
        Ok(tags)
    }

    fn tag_keys(&self) -> Result<Vec<String>> {
        let items = self
            .0
            .get("TagKeys")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("INPUT_REQUIRED", "You must specify a value for TagKeys."))?;
        items
            .iter()
            .map(|k| {
                let k = k.as_str().unwrap_or_default();
                check_tag(k, "")?;
                Ok(k.to_string())
            })
            .collect()
    }
}

fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

fn check_tag(key: &str, value: &str) -> Result<()> {
    if key.is_empty() || key.chars().count() > 128 || !key.chars().all(tag_char) {
        return Err(invalid("INVALID_PATTERN", "You provided an invalid tag key."));
    }
    if value.chars().count() > 256 || !value.chars().all(tag_char) {
        return Err(invalid("INVALID_PATTERN", "You provided an invalid tag value."));
    }
    if crate::util::has_aws_prefix(key) {
        return Err(invalid("INVALID_SYSTEM_TAGS_PARAMETER", "You can't use the aws: prefix in tag keys."));
    }
    Ok(())
}

fn tags_json(tags: &[Tag]) -> Value {
    Value::Array(tags.iter().map(|t| json!({"Key": t.key, "Value": t.value})).collect())
}

/// Management policy types: stored, attached and listed as AWS does; they take no part in
/// authorization (no Rampart service reads them).
const MANAGEMENT_TYPES: &[&str] = &[
    "TAG_POLICY",
    "BACKUP_POLICY",
    "AISERVICES_OPT_OUT_POLICY",
    "CHATBOT_POLICY",
    "DECLARATIVE_POLICY_EC2",
    "SECURITYHUB_POLICY",
    "INSPECTOR_POLICY",
    "UPGRADE_ROLLOUT_POLICY",
    "BEDROCK_POLICY",
    "S3_POLICY",
    "NETWORK_SECURITY_DIRECTOR_POLICY",
    "GUARDDUTY_POLICY",
];

fn policy_type_arg(i: &In<'_>, name: &str) -> Result<&'static str> {
    let v = i.req(name)?;
    match v {
        SCP => Ok(SCP),
        RCP => Ok(RCP),
        _ => MANAGEMENT_TYPES
            .iter()
            .find(|t| **t == v)
            .copied()
            .ok_or_else(|| invalid("INVALID_ENUM_POLICY_TYPE", "You specified an invalid policy type string.")),
    }
}

/// AWS's quotas: policies of a type attached to one root, OU or account, and a policy's size.
fn type_limits(ty: &str) -> (usize, usize) {
    match ty {
        SCP | RCP => (MAX_ATTACHED_PER_TYPE, MAX_POLICY_SIZE),
        "AISERVICES_OPT_OUT_POLICY" => (5, 2500),
        _ => (10, 10_000),
    }
}

/// Simple offset pagination with an opaque-looking token.
/// A page request: `MaxResults` and the position a `NextToken` names (checked against the list
/// when the page is cut).
struct Paging {
    max: usize,
    start: Option<usize>,
}

impl Paging {
    fn parse(i: &In<'_>) -> Result<Self> {
        let max = i.max_results()?;
        Ok(Paging { max, start: next_token(i)? })
    }
}

/// The position of an opaque-looking `NextToken` (`rampart-N`).
fn next_token(i: &In<'_>) -> Result<Option<usize>> {
    let invalid_token = || invalid("INVALID_NEXT_TOKEN", "The specified token is invalid.");
    match i.opt("NextToken")? {
        None => Ok(None),
        Some(t) => t.strip_prefix("rampart-").and_then(|n| n.parse::<usize>().ok()).map(Some).ok_or_else(invalid_token),
    }
}

/// Simple offset pagination.
fn page<T: Clone>(items: &[T], p: &Paging) -> Result<(Vec<T>, Option<String>)> {
    let start = match p.start {
        None => 0,
        Some(n) if n <= items.len() => n,
        Some(_) => return Err(invalid("INVALID_NEXT_TOKEN", "The specified token is invalid.")),
    };
    let end = (start + p.max).min(items.len());
    let next = (end < items.len()).then(|| format!("rampart-{end}"));
    Ok((items.get(start..end).unwrap_or_default().to_vec(), next))
}

fn paged(key: &str, items: Vec<Value>, p: &Paging) -> Result<Output> {
    let (items, next) = page(&items, p)?;
    let mut out = json!({ key: items });
    if let Some(n) = next {
        put(&mut out, "NextToken", Value::String(n));
    }
    Ok(Output::Json(out))
}

/// The organization a plan loaded, for the run.
fn loaded(doc: Option<OrgDoc>) -> Result<OrgDoc> {
    doc.ok_or_else(not_in_use)
}

fn one(c: AuthzCheck) -> Result<AuthzPlan> {
    Ok(AuthzPlan::Checks(vec![c]))
}

// ---- shapes ---------------------------------------------------------------------------------

fn organization_json(doc: &OrgDoc) -> Value {
    let email = doc.accounts.get(&doc.management).map(|a| a.email.clone()).unwrap_or_default();
    json!({
        "Id": doc.id,
        "Arn": doc.arn(),
        "FeatureSet": doc.feature_set,
        "MasterAccountArn": doc.account_arn(&doc.management),
        "MasterAccountId": doc.management,
        "MasterAccountEmail": email,
        "AvailablePolicyTypes": if doc.feature_set == "ALL" { json!([{"Type": SCP, "Status": "ENABLED"}]) } else { json!([]) },
    })
}

fn root_json(doc: &OrgDoc) -> Value {
    let types: Vec<Value> = doc.enabled_types.iter().map(|t| json!({"Type": t, "Status": "ENABLED"})).collect();
    json!({"Id": doc.root_id, "Arn": doc.root_arn(), "Name": "Root", "PolicyTypes": types})
}

fn ou_json(doc: &OrgDoc, id: &str, ou: &OuRec) -> Value {
    json!({"Id": id, "Arn": doc.ou_arn(id), "Name": ou.name, "Path": doc.path_string(id).unwrap_or_default()})
}

fn account_json(doc: &OrgDoc, id: &str, a: &MemberRec) -> Value {
    // AWS: a closed account is SUSPENDED (Status and State) for the 90-day post-closure period.
    let state = if a.status == "ACTIVE" { "ACTIVE" } else { "SUSPENDED" };
    json!({
        "Id": id,
        "Arn": doc.account_arn(id),
        "Email": a.email,
        "Name": a.name,
        "Status": a.status,
        "State": state,
        "Paths": [doc.path_string(id).unwrap_or_default()],
        "JoinedMethod": a.joined_method,
        "JoinedTimestamp": a.joined,
    })
}

fn status_json(s: &CreateStatusRec) -> Value {
    let mut v = json!({
        "Id": s.id,
        "AccountName": s.account_name,
        "State": s.state,
        "RequestedTimestamp": s.requested,
    });
    if let Some(c) = s.completed {
        put(&mut v, "CompletedTimestamp", json!(c));
    }
    if let Some(a) = &s.account_id {
        put(&mut v, "AccountId", json!(a));
    }
    if let Some(r) = &s.failure_reason {
        put(&mut v, "FailureReason", json!(r));
    }
    v
}

fn policy_summary(doc: &OrgDoc, id: &str) -> Option<Value> {
    if let Some(ty) = aws_managed_type(id) {
        let (_, name, description, _) = aws_managed(ty)?;
        return Some(json!({
            "Id": id, "Arn": doc.policy_arn(id, ty), "Name": name, "Description": description,
            "Type": ty, "AwsManaged": true,
        }));
    }
    let p = doc.policies.get(id)?;
    Some(json!({
        "Id": id, "Arn": doc.policy_arn(id, &p.ty), "Name": p.name, "Description": p.description,
        "Type": p.ty, "AwsManaged": false,
    }))
}

fn policy_json(doc: &OrgDoc, id: &str) -> Option<Value> {
    let content = match aws_managed_type(id) {
        Some(ty) => aws_managed(ty)?.3.to_string(),
        None => doc.policies.get(id)?.content.clone(),
    };
    Some(json!({"PolicySummary": policy_summary(doc, id)?, "Content": content}))
}

fn target_summary(doc: &OrgDoc, target: &str) -> Value {
    let (name, ty) = if target == doc.root_id {
        ("Root".to_string(), "ROOT")
    } else if let Some(ou) = doc.ous.get(target) {
        (ou.name.clone(), "ORGANIZATIONAL_UNIT")
    } else {
        (doc.accounts.get(target).map(|a| a.name.clone()).unwrap_or_default(), "ACCOUNT")
    };
    json!({"TargetId": target, "Arn": doc.target_arn(target), "Name": name, "Type": ty})
}

// ---- the service ----------------------------------------------------------------------------

/// Organizations on the pipeline.
pub struct OrgService {
    core: Arc<Core>,
}

impl OrgService {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        OrgService { core }
    }
}

/// The operations, each listed once by its family.
static OPERATIONS: Operations<OrgService> = Operations::new(&[
    tree::OPS,
    policies::OPS,
    admin::OPS,
    handshakes::OPS,
    resource_policy::OPS,
    effective::OPS,
    transfers::OPS,
]);

/// The read operations a member account may call when the organization's resource policy
/// (PutResourcePolicy) allows it: AWS's "delegated administrator for AWS Organizations".
const DELEGABLE: &[&str] = &[
    "DescribeAccount",
    "DescribeCreateAccountStatus",
    "DescribeEffectivePolicy",
    "DescribeOrganizationalUnit",
    "DescribePolicy",
    "DescribeResourcePolicy",
    "ListAWSServiceAccessForOrganization",
    "ListAccounts",
    "ListAccountsForParent",
    "ListChildren",
    "ListCreateAccountStatus",
    "ListDelegatedAdministrators",
    "ListDelegatedServicesForAccount",
    "ListHandshakesForOrganization",
    "ListOrganizationalUnitsForParent",
    "ListParents",
    "ListPolicies",
    "ListPoliciesForTarget",
    "ListRoots",
    "ListTagsForResource",
    "ListTargetsForPolicy",
];

impl Service for OrgService {
    fn signing_name(&self) -> &'static str {
        "organizations"
    }

    fn event_source(&self) -> &'static str {
        "organizations.amazonaws.com"
    }

    fn protocol(&self) -> Protocol {
        Protocol::AwsJson1_1
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
        let delegation = self.delegation(ctx, operation, input)?;
        let mut delegated = |checks: Vec<AuthzCheck>| decide(delegate(checks, delegation.as_ref()));
        OPERATIONS
            .call(self, ctx, operation, input, &mut delegated)
            .unwrap_or_else(|| Err(AwsError::unknown_operation("organizations", operation)))
    }

    fn plan(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        let delegation = self.delegation(ctx, operation, input)?;
        match OPERATIONS.plan(self, ctx, operation, input) {
            Some(Ok(AuthzPlan::Checks(checks))) => Ok(AuthzPlan::Checks(delegate(checks, delegation.as_ref()))),
            Some(other) => other,
            None => Err(AwsError::unknown_operation("organizations", operation)),
        }
    }
}

/// The management account and resource policy a member account's delegable call is checked
/// against.
struct Delegation {
    management: String,
    policy: ResourcePolicy,
}

/// A member account's checks are cross-account checks against the management account's
/// resource, with the organization's resource policy: both it and the caller's identity
/// policies must allow, as AWS evaluates delegated administration.
fn delegate(checks: Vec<AuthzCheck>, delegation: Option<&Delegation>) -> Vec<AuthzCheck> {
    let Some(d) = delegation else { return checks };
    checks
        .into_iter()
        .map(|mut c| {
            c.resource_account = Some(d.management.clone());
            c.resource_policy = Some(d.policy.clone());
            c
        })
        .collect()
}

fn check(op: &str, resource: impl Into<String>) -> AuthzCheck {
    AuthzCheck::new(format!("organizations:{op}"), resource)
}

fn with_type(c: AuthzCheck, ty: &str) -> AuthzCheck {
    c.with_context("organizations:PolicyType", ContextValue::String(ty.to_string()))
}

/// Which resource a target ID names, for the checks.
fn target_resource(doc: &OrgDoc, target: &str) -> Result<String> {
    if doc.target_exists(target) {
        Ok(doc.target_arn(target))
    } else {
        Err(target_not_found())
    }
}

impl OrgService {
    fn org(&self, ctx: &RequestContext) -> Result<OrgDoc> {
        org_of(&self.core.db, &ctx.caller.account_id)?.ok_or_else(not_in_use)
    }

    /// The delegation a member account's call of a delegable operation is checked with.
    fn delegation(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<Option<Delegation>, AwsError> {
        if !DELEGABLE.contains(&operation) {
            return Ok(None);
        }
        // Every account reads its own effective policy without delegation.
        if operation == "DescribeEffectivePolicy" {
            let target = input.json().get("TargetId").and_then(Value::as_str);
            if target.is_none_or(|t| t == ctx.caller.account_id) {
                return Ok(None);
            }
        }
        let Some(doc) = org_of(&self.core.db, &ctx.caller.account_id).map_err(AwsError::from)? else {
            return Ok(None);
        };
        if doc.management == ctx.caller.account_id {
            return Ok(None);
        }
        Ok(doc.resource_policy.as_ref().map(|rp| Delegation {
            management: doc.management.clone(),
            policy: ResourcePolicy::compiled(doc.resource_policy_arn(&rp.id), rp.content.clone(), false),
        }))
    }

    /// The caller's organization for a read operation: the management account's, or a member
    /// account's when the organization has a resource policy (which the checks then carry, see
    /// [`delegate`]) and the operation is one AWS lets delegated administrators call.
    fn readable_org(&self, ctx: &RequestContext, op: &str) -> Result<OrgDoc> {
        let doc = self.org(ctx)?;
        if doc.management == ctx.caller.account_id || (DELEGABLE.contains(&op) && doc.resource_policy.is_some()) {
            return Ok(doc);
        }
        Err(denied())
    }

    /// The caller's organization, when the caller is its management account.
    fn managed_org(&self, ctx: &RequestContext) -> Result<OrgDoc> {
        let doc = self.org(ctx)?;
        if doc.management != ctx.caller.account_id {
            return Err(denied());
        }
        Ok(doc)
    }

    /// `organizations:{op}` on a root or OU that can parent OUs and accounts, with the organization.
    fn parent_check(&self, ctx: &RequestContext, op: &str, parent: &str) -> Result<(AuthzCheck, OrgDoc)> {
        let doc = self.readable_org(ctx, op)?;
        if !doc.target_exists(parent) || is_account_id(parent) {
            return Err(parent_not_found());
        }
        Ok((check(op, doc.target_arn(parent)), doc))
    }

    /// `organizations:{op}` on an OU, with the organization.
    fn ou_check(&self, ctx: &RequestContext, op: &str, ou: &str) -> Result<(AuthzCheck, OrgDoc)> {
        let doc = self.readable_org(ctx, op)?;
        if !doc.ous.contains_key(ou) {
            return Err(ou_not_found());
        }
        Ok((check(op, doc.ou_arn(ou)), doc))
    }

    /// `organizations:{op}` on a member account, with the organization.
    fn account_check(&self, ctx: &RequestContext, op: &str, account: &str) -> Result<(AuthzCheck, OrgDoc)> {
        let doc = self.readable_org(ctx, op)?;
        if !doc.accounts.contains_key(account) {
            return Err(account_not_found());
        }
        Ok((check(op, doc.account_arn(account)), doc))
    }

    /// `organizations:{op}` on a policy (with its type as context), the organization and the type.
    fn policy_check(&self, ctx: &RequestContext, op: &str, id: &str) -> Result<(AuthzCheck, OrgDoc, String)> {
        let doc = self.readable_org(ctx, op)?;
        let ty = doc.policy_type(id).ok_or_else(policy_not_found)?;
        Ok((with_type(check(op, doc.policy_arn(id, &ty)), &ty), doc, ty))
    }

    /// Read-modify-write the caller's organization in one transaction; bumps the organization
    /// generation so the authorizer sees the change on the next call.
    fn update<T>(&self, ctx: &RequestContext, f: impl FnOnce(&mut Tx<'_>, &mut OrgDoc) -> Result<T>) -> Result<T> {
        let account = ctx.caller.account_id.clone();
        self.core.db.write_untracked(|tx| {
            let mut doc = org_of(&*tx, &account)?.ok_or_else(not_in_use)?;
            if doc.management != account {
                return Err(denied());
            }
            let out = f(tx, &mut doc)?;
            tx.put(tables::ORGS, &doc.id, &doc)?;
            bump(tx)?;
            Ok(out)
        })
    }

    /// SCP/RCP documents: the policy engine's SCP/RCP grammar, and the type's size limit.
    fn validate_content(&self, content: &str, ty: &str) -> Result<()> {
        if ty == SCP || ty == RCP {
            let pty = if ty == SCP { PolicyType::ServiceControl } else { PolicyType::ResourceControl };
            self.core
                .resolver
                .policies
                .get(content, pty)
                .map_err(|e| err("MalformedPolicyDocumentException", e.message))?;
        } else if !serde_json::from_str::<Value>(content).is_ok_and(|v| v.is_object()) {
            // Management policies use their own JSON syntax; Rampart checks it is a JSON object.
            return Err(err("MalformedPolicyDocumentException", "The provided policy document is not valid JSON."));
        }
        if policy_size(content) > type_limits(ty).1 {
            return Err(constraint(
                "POLICY_CONTENT_LIMIT_EXCEEDED",
                "You attempted to create a policy that exceeds the maximum size allowed for policies of this type.",
            ));
        }
        Ok(())
    }
}

fn check_unique_name(doc: &OrgDoc, ty: &str, name: &str, except: Option<&str>) -> Result<()> {
    let managed_clash = aws_managed(ty).is_some_and(|(_, n, ..)| n == name);
    if managed_clash || doc.policies.iter().any(|(id, p)| p.ty == ty && p.name == name && Some(id.as_str()) != except) {
        return Err(err("DuplicatePolicyException", "A policy with the same name already exists."));
    }
    Ok(())
}

/// The tags of a root, OU, account or customer policy.
fn tags_of<'d>(doc: &'d mut OrgDoc, id: &str) -> Option<&'d mut Vec<Tag>> {
    if id == doc.root_id {
        return Some(&mut doc.root_tags);
    }
    if let Some(o) = doc.ous.get_mut(id) {
        return Some(&mut o.tags);
    }
    if let Some(a) = doc.accounts.get_mut(id) {
        return Some(&mut a.tags);
    }
    doc.policies.get_mut(id).map(|p| &mut p.tags)
}

/// A new OU or account gets the managed full-access policy of every enabled type.
fn attach_defaults(doc: &mut OrgDoc, target: &str) {
    let ids: Vec<&'static str> = doc.enabled_types.iter().filter_map(|t| aws_managed(t).map(|m| m.0)).collect();
    let list = doc.attachments.entry(target.to_string()).or_default();
    for id in ids {
        if !list.iter().any(|p| p == id) {
            list.push(id.to_string());
        }
    }
}

/// The email address Organizations knows for an account (lower case).
fn known_email(db: &impl Lookup, account: &str) -> Result<Option<String>> {
    db.get::<String>(tables::ACCOUNT_EMAILS, account)
}

fn bump(tx: &mut Tx<'_>) -> Result<()> {
    let g = enforce::generation(&*tx)? + 1;
    tx.put(tables::GENERATION, GENERATION_KEY, &g)
}

/// A new account's IAM namespace: the account record (its root has no access keys) and the
/// role the management account reaches it through.
fn provision_account(tx: &mut Tx<'_>, account: &str, management: &str, role_name: &str, now: i64) -> Result<()> {
    tx.put(
        iam_tables::ACCOUNTS,
        account,
        &AccountRec { created: now, bootstrap_key: String::new(), root_keys: Vec::new(), alias: None },
    )?;
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{management}:root")},
            "Action": "sts:AssumeRole",
        }],
    })
    .to_string();
    let admin = "arn:aws:iam::aws:policy/AdministratorAccess".to_string();
    let role = RoleRec {
        name: role_name.to_string(),
        id: unique_id("AROA"),
        path: "/".into(),
        created: now,
        trust,
        description: None,
        max_session: 3600,
        tags: Vec::new(),
        boundary: None,
        inline: Default::default(),
        attached: vec![admin.clone()],
        instance_profiles: Vec::new(),
        last_used: None,
    };
    tx.put_entity(account, role_name, &role)?;
    crate::service::index_attach(tx, account, &admin, EntityKind::Role, &role.name, &role.id, &role.path)?;
    let g = tx.get::<u64>(iam_tables::GENERATION, account)?.unwrap_or(0) + 1;
    tx.put(iam_tables::GENERATION, account, &g)
}

/// `v[key] = value` for an object `v` (what `IndexMut` does, without its panic on non-objects).
fn put(v: &mut Value, key: &str, value: Value) {
    if let Some(m) = v.as_object_mut() {
        m.insert(key.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_shapes() {
        assert!(is_root_id("r-ab12") && !is_root_id("r-AB12") && !is_root_id("r-ab1"));
        assert!(is_ou_id("ou-ab12-abcdefgh") && !is_ou_id("ou-ab12-abc") && !is_ou_id("ou-abcdefgh"));
        assert!(is_account_id("123456789012") && !is_account_id("12345678901"));
        assert!(is_policy_id("p-FullAWSAccess") && is_policy_id("p-abcd1234") && !is_policy_id("p-abc"));
    }

    #[test]
    fn pagination() {
        let items: Vec<u32> = (0..25).collect();
        let pg = |v: Value| Paging::parse(&In(&v)).and_then(|p| page(&items, &p));
        let (a, next) = pg(json!({})).unwrap();
        assert_eq!(a.len(), 20);
        let (b, next) = pg(json!({"NextToken": next.unwrap(), "MaxResults": 3})).unwrap();
        assert_eq!(b, vec![20, 21, 22]);
        assert!(next.is_some());
        assert!(pg(json!({"NextToken": "garbage"})).is_err());
        assert!(pg(json!({"NextToken": "rampart-26"})).is_err());
        assert!(pg(json!({"MaxResults": 21})).is_err());
    }

    #[test]
    fn every_operation_is_listed_once() {
        // The model's operations but the two not offered (docs/organizations.md says why), each
        // once: derived from the generated model table rather than copied from it.
        let absent = ["ListAccountsWithInvalidEffectivePolicy", "ListEffectivePolicyValidationErrors"];
        let expected: Vec<&str> = rampart_service::model_operations("organizations")
            .iter()
            .copied()
            .filter(|o| !absent.contains(o))
            .collect();
        assert_eq!(OPERATIONS.names(), expected);
    }
}
