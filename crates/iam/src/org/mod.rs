//! AWS Organizations (awsJson1.1, `AWSOrganizationsV20161128`): the organization tree, member
//! accounts that are real Rampart accounts (their own IAM namespace and an
//! `OrganizationAccountAccessRole` the management account assumes), and the SCPs/RCPs the
//! authorizer enforces (see [`enforce`]).

pub mod enforce;
pub mod model;

use std::sync::Arc;

use rampart_policy::{ContextValue, PolicyType};
use rampart_protocol::{AwsError, Protocol};
use rampart_service::{AuthzCheck, AuthzPlan, Input, Output, RequestContext, Service};
use serde_json::{json, Value};

use crate::db::{Lookup, Tx};
use crate::error::{IamError, Result};
use crate::model::{tables as iam_tables, AccountRec, EntityKind, RoleRec, Tag};
use crate::service::Core;
use crate::util::{policy_size, unique_id};
use enforce::org_of;
use model::*;

const OPERATIONS: &[&str] = &[
    "CreateOrganization",
    "DescribeOrganization",
    "DeleteOrganization",
    "ListRoots",
    "CreateOrganizationalUnit",
    "DescribeOrganizationalUnit",
    "UpdateOrganizationalUnit",
    "DeleteOrganizationalUnit",
    "ListOrganizationalUnitsForParent",
    "CreateAccount",
    "DescribeCreateAccountStatus",
    "ListCreateAccountStatus",
    "DescribeAccount",
    "ListAccounts",
    "ListAccountsForParent",
    "ListChildren",
    "ListParents",
    "MoveAccount",
    "RemoveAccountFromOrganization",
    "CloseAccount",
    "CreatePolicy",
    "DescribePolicy",
    "UpdatePolicy",
    "DeletePolicy",
    "ListPolicies",
    "AttachPolicy",
    "DetachPolicy",
    "ListPoliciesForTarget",
    "ListTargetsForPolicy",
    "EnablePolicyType",
    "DisablePolicyType",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "EnableAWSServiceAccess",
    "DisableAWSServiceAccess",
    "ListAWSServiceAccessForOrganization",
    "RegisterDelegatedAdministrator",
    "DeregisterDelegatedAdministrator",
    "ListDelegatedAdministrators",
    "ListDelegatedServicesForAccount",
];

/// Service principals of the AWS services that work with Organizations (trusted access and
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
fn page<T: Clone>(items: &[T], i: &In<'_>) -> Result<(Vec<T>, Option<String>)> {
    let max = i.max_results()?;
    let start = match i.opt("NextToken")? {
        None => 0,
        Some(t) => t
            .strip_prefix("rampart-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| invalid("INVALID_NEXT_TOKEN", "The specified token is invalid."))?,
    };
    let end = (start + max).min(items.len());
    let next = (end < items.len()).then(|| format!("rampart-{end}"));
    Ok((items.get(start..end).unwrap_or_default().to_vec(), next))
}

fn paged(key: &str, items: Vec<Value>, i: &In<'_>) -> Result<Output> {
    let (items, next) = page(&items, i)?;
    let mut out = json!({ key: items });
    if let Some(n) = next {
        put(&mut out, "NextToken", Value::String(n));
    }
    Ok(Output::Json(out))
}

// ---- shapes ---------------------------------------------------------------------------------

fn organization_json(doc: &OrgDoc) -> Value {
    let email = doc.accounts.get(&doc.management).map(|a| a.email.clone()).unwrap_or_default();
    json!({
        "Id": doc.id,
        "Arn": doc.arn(),
        "FeatureSet": "ALL",
        "MasterAccountArn": doc.account_arn(&doc.management),
        "MasterAccountId": doc.management,
        "MasterAccountEmail": email,
        "AvailablePolicyTypes": [{"Type": SCP, "Status": "ENABLED"}],
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

    fn json_target_prefix(&self) -> &'static str {
        "AWSOrganizationsV20161128"
    }

    fn has_operation(&self, operation: &str) -> bool {
        OPERATIONS.contains(&operation)
    }

    fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: &Input,
        decide: rampart_service::Decide<'_>,
    ) -> Result<Output, AwsError> {
        // Families not yet moved to typed operations: plan, decide, run.
        if let AuthzPlan::Checks(checks) = self.legacy_authorize(ctx, operation, input)? {
            decide(checks)?;
        }
        self.legacy_invoke(ctx, operation, input)
    }

    fn plan(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        self.legacy_authorize(ctx, operation, input)
    }
}

impl OrgService {
    fn legacy_authorize(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        self.plan(ctx, operation, &In(input.json())).map_err(AwsError::from)
    }

    fn legacy_invoke(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<Output, AwsError> {
        self.run(ctx, operation, &In(input.json())).map_err(AwsError::from)
    }
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

    /// The caller's organization, when the caller is its management account.
    fn managed_org(&self, ctx: &RequestContext) -> Result<OrgDoc> {
        let doc = self.org(ctx)?;
        if doc.management != ctx.caller.account_id {
            return Err(denied());
        }
        Ok(doc)
    }

    fn plan(&self, ctx: &RequestContext, op: &str, i: &In<'_>) -> Result<AuthzPlan> {
        let one = |c: AuthzCheck| Ok(AuthzPlan::Checks(vec![c]));
        match op {
            "CreateOrganization" => {
                if let Some(fs) = i.opt("FeatureSet")? {
                    if fs == "CONSOLIDATED_BILLING" {
                        return Err(invalid(
                            "INVALID_ENUM",
                            "Rampart supports only organizations with all features (FeatureSet ALL).",
                        ));
                    }
                    if fs != "ALL" {
                        return Err(invalid("INVALID_ENUM", "You specified an invalid value."));
                    }
                }
                if org_of(&self.core.db, &ctx.caller.account_id)?.is_some() {
                    return Err(err(
                        "AlreadyInOrganizationException",
                        "The AWS account is already a member of an organization.",
                    ));
                }
                one(check(op, "*"))
            }
            "DescribeOrganization" => {
                let doc = self.org(ctx)?;
                one(check(op, doc.arn()))
            }
            _ => {
                let doc = self.managed_org(ctx)?;
                self.plan_managed(op, i, &doc).map(AuthzPlan::Checks)
            }
        }
    }

    fn plan_managed(&self, op: &str, i: &In<'_>, doc: &OrgDoc) -> Result<Vec<AuthzCheck>> {
        let c = match op {
            "DeleteOrganization" => check(op, doc.arn()),
            "ListRoots" | "ListAccounts" | "ListCreateAccountStatus" | "DescribeCreateAccountStatus" => {
                i.max_results()?;
                check(op, "*")
            }
            "CreateOrganizationalUnit" | "ListOrganizationalUnitsForParent" | "ListAccountsForParent" => {
                let parent = i.id("ParentId", |s| is_root_id(s) || is_ou_id(s))?;
                if !doc.target_exists(parent) || is_account_id(parent) {
                    return Err(parent_not_found());
                }
                check(op, doc.target_arn(parent))
            }
            "ListChildren" => {
                let parent = i.id("ParentId", |s| is_root_id(s) || is_ou_id(s))?;
                match i.req("ChildType")? {
                    "ACCOUNT" | "ORGANIZATIONAL_UNIT" => {}
                    _ => return Err(invalid("INVALID_ENUM", "You specified an invalid value.")),
                }
                if !doc.target_exists(parent) {
                    return Err(parent_not_found());
                }
                check(op, doc.target_arn(parent))
            }
            "ListParents" => {
                let child = i.id("ChildId", |s| is_account_id(s) || is_ou_id(s))?;
                if !doc.ous.contains_key(child) && !doc.accounts.contains_key(child) {
                    return Err(err(
                        "ChildNotFoundException",
                        "We can't find an organizational unit (OU) or AWS account with the ChildId that you specified.",
                    ));
                }
                check(op, doc.target_arn(child))
            }
            "DescribeOrganizationalUnit" | "UpdateOrganizationalUnit" | "DeleteOrganizationalUnit" => {
                let ou = i.id("OrganizationalUnitId", is_ou_id)?;
                if !doc.ous.contains_key(ou) {
                    return Err(ou_not_found());
                }
                check(op, doc.ou_arn(ou))
            }
            "CreateAccount" => {
                let tags = i.tags("Tags")?;
                let mut c = check(op, "*");
                for t in &tags {
                    c = c.with_context(format!("aws:RequestTag/{}", t.key), ContextValue::String(t.value.clone()));
                }
                if !tags.is_empty() {
                    c = c.with_context("aws:TagKeys", ContextValue::List(tags.iter().map(|t| t.key.clone()).collect()));
                }
                c
            }
            "DescribeAccount" | "MoveAccount" | "RemoveAccountFromOrganization" | "CloseAccount" => {
                let account = i.id("AccountId", is_account_id)?;
                if !doc.accounts.contains_key(account) {
                    return Err(account_not_found());
                }
                check(op, doc.account_arn(account))
            }
            "CreatePolicy" => {
                let ty = policy_type_arg(i, "Type")?;
                with_type(check(op, "*"), ty)
            }
            "ListPolicies" => {
                let ty = policy_type_arg(i, "Filter")?;
                i.max_results()?;
                with_type(check(op, "*"), ty)
            }
            "DescribePolicy" | "UpdatePolicy" | "DeletePolicy" | "ListTargetsForPolicy" => {
                let id = i.id("PolicyId", is_policy_id)?;
                let ty = doc.policy_type(id).ok_or_else(policy_not_found)?;
                with_type(check(op, doc.policy_arn(id, &ty)), &ty)
            }
            "AttachPolicy" | "DetachPolicy" => {
                let id = i.id("PolicyId", is_policy_id)?;
                let target = i.id("TargetId", |s| is_root_id(s) || is_ou_id(s) || is_account_id(s))?;
                let ty = doc.policy_type(id).ok_or_else(policy_not_found)?;
                let target_arn = target_resource(doc, target)?;
                return Ok(vec![
                    with_type(check(op, doc.policy_arn(id, &ty)), &ty),
                    with_type(check(op, target_arn), &ty),
                ]);
            }
            "ListPoliciesForTarget" => {
                let target = i.id("TargetId", |s| is_root_id(s) || is_ou_id(s) || is_account_id(s))?;
                let ty = policy_type_arg(i, "Filter")?;
                with_type(check(op, target_resource(doc, target)?), ty)
            }
            "EnableAWSServiceAccess" | "DisableAWSServiceAccess" => {
                service_principal_arg(i, "ServicePrincipal")?;
                check(op, "*")
            }
            "ListAWSServiceAccessForOrganization" => {
                i.max_results()?;
                check(op, "*")
            }
            "ListDelegatedAdministrators" => {
                if i.opt("ServicePrincipal")?.is_some() {
                    service_principal_arg(i, "ServicePrincipal")?;
                }
                i.max_results()?;
                check(op, "*")
            }
            "RegisterDelegatedAdministrator"
            | "DeregisterDelegatedAdministrator"
            | "ListDelegatedServicesForAccount" => {
                let account = i.id("AccountId", is_account_id)?;
                if op != "ListDelegatedServicesForAccount" {
                    service_principal_arg(i, "ServicePrincipal")?;
                }
                if !doc.accounts.contains_key(account) {
                    return Err(account_not_found());
                }
                check(op, doc.account_arn(account))
            }
            "EnablePolicyType" | "DisablePolicyType" => {
                let root = i.id("RootId", is_root_id)?;
                if root != doc.root_id {
                    return Err(err(
                        "RootNotFoundException",
                        "We can't find a root with the RootId that you specified.",
                    ));
                }
                let ty = policy_type_arg(i, "PolicyType")?;
                with_type(check(op, doc.root_arn()), ty)
            }
            "TagResource" | "UntagResource" | "ListTagsForResource" => {
                let id = i.id("ResourceId", |s| is_root_id(s) || is_ou_id(s) || is_account_id(s) || is_policy_id(s))?;
                let arn = if is_policy_id(id) {
                    match doc.policies.get(id) {
                        Some(p) => doc.policy_arn(id, &p.ty),
                        None => return Err(target_not_found()),
                    }
                } else {
                    target_resource(doc, id)?
                };
                let mut c = check(op, arn);
                if op == "TagResource" {
                    let tags = i.tags("Tags")?;
                    for t in &tags {
                        c = c.with_context(format!("aws:RequestTag/{}", t.key), ContextValue::String(t.value.clone()));
                    }
                    c = c.with_context("aws:TagKeys", ContextValue::List(tags.iter().map(|t| t.key.clone()).collect()));
                } else if op == "UntagResource" {
                    c = c.with_context("aws:TagKeys", ContextValue::List(i.tag_keys()?));
                }
                c
            }
            other => return Err(IamError::Aws(AwsError::unknown_operation("organizations", other))),
        };
        Ok(vec![c])
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

    fn run(&self, ctx: &RequestContext, op: &str, i: &In<'_>) -> Result<Output> {
        let now = ctx.time.unix_timestamp();
        let empty = || Ok(Output::Json(json!({})));
        match op {
            "CreateOrganization" => {
                let account = ctx.caller.account_id.clone();
                let doc = self.core.db.write_untracked(|tx| {
                    if org_of(&*tx, &account)?.is_some() {
                        return Err(err(
                            "AlreadyInOrganizationException",
                            "The AWS account is already a member of an organization.",
                        ));
                    }
                    let mut doc = OrgDoc {
                        id: new_org_id(),
                        management: account.clone(),
                        root_id: new_root_id(),
                        root_tags: Vec::new(),
                        // AWS: an organization with all features is created "with service control
                        // policies automatically enabled in the root" (FullAWSAccess attached).
                        enabled_types: vec![SCP.to_string()],
                        ous: Default::default(),
                        accounts: Default::default(),
                        policies: Default::default(),
                        attachments: Default::default(),
                        create_requests: Vec::new(),
                        service_access: Default::default(),
                        delegated_admins: Default::default(),
                    };
                    let email = format!("management@{account}.rampart.invalid");
                    doc.accounts.insert(
                        account.clone(),
                        MemberRec {
                            name: "management".into(),
                            email,
                            parent: doc.root_id.clone(),
                            status: "ACTIVE".into(),
                            joined_method: "INVITED".into(),
                            joined: now,
                            tags: Vec::new(),
                        },
                    );
                    for t in [doc.root_id.clone(), account.clone()] {
                        doc.attachments.entry(t).or_default().push(FULL_AWS_ACCESS.to_string());
                    }
                    tx.put(tables::ORGS, &doc.id, &doc)?;
                    tx.put(tables::MEMBERS, &account, &doc.id)?;
                    bump(tx)?;
                    Ok(doc)
                })?;
                Ok(Output::Json(json!({"Organization": organization_json(&doc)})))
            }
            "DescribeOrganization" => {
                let doc = self.org(ctx)?;
                Ok(Output::Json(json!({"Organization": organization_json(&doc)})))
            }
            "DeleteOrganization" => {
                let account = ctx.caller.account_id.clone();
                self.core.db.write_untracked(|tx| {
                    let doc = org_of(&*tx, &account)?.ok_or_else(not_in_use)?;
                    if doc.management != account {
                        return Err(denied());
                    }
                    if doc.accounts.keys().any(|a| *a != account) {
                        return Err(err(
                            "OrganizationNotEmptyException",
                            "To delete an organization you must first remove all member accounts (except the management account).",
                        ));
                    }
                    for r in &doc.create_requests {
                        tx.delete(tables::CREATE_REQUESTS, &r.id)?;
                    }
                    tx.delete(tables::ORGS, &doc.id)?;
                    tx.delete(tables::MEMBERS, &account)?;
                    bump(tx)
                })?;
                empty()
            }
            "ListRoots" => {
                let doc = self.managed_org(ctx)?;
                paged("Roots", vec![root_json(&doc)], i)
            }
            "CreateOrganizationalUnit" => {
                let parent = i.req("ParentId")?.to_string();
                let name = i.len("Name", 1, 128, true)?.unwrap_or_default().to_string();
                let tags = i.tags("Tags")?;
                let out = self.update(ctx, |_, doc| {
                    if !(parent == doc.root_id || doc.ous.contains_key(&parent)) {
                        return Err(parent_not_found());
                    }
                    if doc.ous.len() >= MAX_OUS {
                        return Err(constraint(
                            "OU_NUMBER_LIMIT_EXCEEDED",
                            "You have reached the maximum number of OUs that you can have in an organization.",
                        ));
                    }
                    if parent != doc.root_id && doc.depth(&parent) >= MAX_OU_DEPTH {
                        return Err(constraint(
                            "OU_DEPTH_LIMIT_EXCEEDED",
                            "You attempted to create an OU tree that is too many levels deep.",
                        ));
                    }
                    if doc.ous.values().any(|o| o.parent == parent && o.name == name) {
                        return Err(err(
                            "DuplicateOrganizationalUnitException",
                            "An OU with the same name already exists.",
                        ));
                    }
                    let id = loop {
                        let id = new_ou_id(&doc.root_id);
                        if !doc.ous.contains_key(&id) {
                            break id;
                        }
                    };
                    let ou = OuRec { name, parent, tags, seq: doc.next_seq() };
                    doc.ous.insert(id.clone(), ou.clone());
                    attach_defaults(doc, &id);
                    Ok(ou_json(doc, &id, &ou))
                })?;
                Ok(Output::Json(json!({"OrganizationalUnit": out})))
            }
            "DescribeOrganizationalUnit" => {
                let doc = self.managed_org(ctx)?;
                let id = i.req("OrganizationalUnitId")?;
                let ou = doc.ous.get(id).ok_or_else(ou_not_found)?;
                Ok(Output::Json(json!({"OrganizationalUnit": ou_json(&doc, id, ou)})))
            }
            "UpdateOrganizationalUnit" => {
                let id = i.req("OrganizationalUnitId")?.to_string();
                let name = i.len("Name", 1, 128, false)?.map(str::to_string);
                let out = self.update(ctx, |_, doc| {
                    let parent = doc.ous.get(&id).ok_or_else(ou_not_found)?.parent.clone();
                    if let Some(n) = &name {
                        if doc.ous.iter().any(|(oid, o)| *oid != id && o.parent == parent && o.name == *n) {
                            return Err(err(
                                "DuplicateOrganizationalUnitException",
                                "An OU with the same name already exists.",
                            ));
                        }
                    }
                    let ou = doc.ous.get_mut(&id).ok_or_else(ou_not_found)?;
                    if let Some(n) = name {
                        ou.name = n;
                    }
                    let ou = ou.clone();
                    Ok(ou_json(doc, &id, &ou))
                })?;
                Ok(Output::Json(json!({"OrganizationalUnit": out})))
            }
            "DeleteOrganizationalUnit" => {
                let id = i.req("OrganizationalUnitId")?.to_string();
                self.update(ctx, |_, doc| {
                    if !doc.ous.contains_key(&id) {
                        return Err(ou_not_found());
                    }
                    if doc.ous.values().any(|o| o.parent == id) || doc.accounts.values().any(|a| a.parent == id) {
                        return Err(err(
                            "OrganizationalUnitNotEmptyException",
                            "The specified OU is not empty. Move all accounts to another root or to other OUs, remove all child OUs, and try again.",
                        ));
                    }
                    doc.ous.remove(&id);
                    doc.attachments.remove(&id);
                    Ok(())
                })?;
                empty()
            }
            "ListOrganizationalUnitsForParent" => {
                let doc = self.managed_org(ctx)?;
                let parent = i.req("ParentId")?;
                let mut ous: Vec<_> = doc.ous.iter().filter(|(_, o)| o.parent == parent).collect();
                ous.sort_by_key(|(_, o)| o.seq);
                let items = ous.into_iter().map(|(id, o)| ou_json(&doc, id, o)).collect();
                paged("OrganizationalUnits", items, i)
            }
            "CreateAccount" => self.create_account(ctx, i, now),
            "DescribeCreateAccountStatus" => {
                let doc = self.managed_org(ctx)?;
                let id = i.id("CreateAccountRequestId", |s| {
                    s.strip_prefix("car-").is_some_and(|r| (8..=32).contains(&r.len()) && r.bytes().all(lower_digit))
                })?;
                let s = doc.create_requests.iter().find(|r| r.id == id).ok_or_else(|| {
                    err(
                        "CreateAccountStatusNotFoundException",
                        "We can't find an create account request with the CreateAccountRequestId that you specified.",
                    )
                })?;
                Ok(Output::Json(json!({"CreateAccountStatus": status_json(s)})))
            }
            "ListCreateAccountStatus" => {
                let doc = self.managed_org(ctx)?;
                let states: Vec<String> = match i.0.get("States").and_then(Value::as_array) {
                    Some(v) => v.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
                    None => Vec::new(),
                };
                for s in &states {
                    if !["IN_PROGRESS", "SUCCEEDED", "FAILED"].contains(&s.as_str()) {
                        return Err(invalid("INVALID_ENUM", "You specified an invalid value."));
                    }
                }
                let items = doc
                    .create_requests
                    .iter()
                    .filter(|r| states.is_empty() || states.contains(&r.state))
                    .map(status_json)
                    .collect();
                paged("CreateAccountStatuses", items, i)
            }
            "DescribeAccount" => {
                let doc = self.managed_org(ctx)?;
                let id = i.req("AccountId")?;
                let a = doc.accounts.get(id).ok_or_else(account_not_found)?;
                Ok(Output::Json(json!({"Account": account_json(&doc, id, a)})))
            }
            "ListAccounts" => {
                let doc = self.managed_org(ctx)?;
                let items = doc.accounts.iter().map(|(id, a)| account_json(&doc, id, a)).collect();
                paged("Accounts", items, i)
            }
            "ListAccountsForParent" => {
                let doc = self.managed_org(ctx)?;
                let parent = i.req("ParentId")?;
                let items = doc
                    .accounts
                    .iter()
                    .filter(|(_, a)| a.parent == parent)
                    .map(|(id, a)| account_json(&doc, id, a))
                    .collect();
                paged("Accounts", items, i)
            }
            "ListChildren" => {
                let doc = self.managed_org(ctx)?;
                let parent = i.req("ParentId")?;
                let ty = i.req("ChildType")?;
                let items: Vec<Value> = if ty == "ACCOUNT" {
                    doc.accounts
                        .iter()
                        .filter(|(_, a)| a.parent == parent)
                        .map(|(id, _)| json!({"Id": id, "Type": ty}))
                        .collect()
                } else {
                    doc.ous
                        .iter()
                        .filter(|(_, o)| o.parent == parent)
                        .map(|(id, _)| json!({"Id": id, "Type": ty}))
                        .collect()
                };
                paged("Children", items, i)
            }
            "ListParents" => {
                let doc = self.managed_org(ctx)?;
                let child = i.req("ChildId")?;
                let parent = doc.parent_of(child).ok_or_else(|| {
                    err(
                        "ChildNotFoundException",
                        "We can't find an organizational unit (OU) or AWS account with the ChildId that you specified.",
                    )
                })?;
                let ty = if parent == doc.root_id { "ROOT" } else { "ORGANIZATIONAL_UNIT" };
                paged("Parents", vec![json!({"Id": parent, "Type": ty})], i)
            }
            "MoveAccount" => {
                let account = i.req("AccountId")?.to_string();
                let source = i.id("SourceParentId", |s| is_root_id(s) || is_ou_id(s))?.to_string();
                let dest = i.id("DestinationParentId", |s| is_root_id(s) || is_ou_id(s))?.to_string();
                self.update(ctx, |_, doc| {
                    let exists = |p: &str| p == doc.root_id || doc.ous.contains_key(p);
                    if !exists(&source) {
                        return Err(err(
                            "SourceParentNotFoundException",
                            "We can't find a source root or OU with the ParentId that you specified.",
                        ));
                    }
                    if !exists(&dest) {
                        return Err(err(
                            "DestinationParentNotFoundException",
                            "We can't find a destination root or OU with the ParentId that you specified.",
                        ));
                    }
                    let a = doc.accounts.get_mut(&account).ok_or_else(account_not_found)?;
                    if a.parent != source {
                        return Err(account_not_found());
                    }
                    if a.parent == dest {
                        return Err(err(
                            "DuplicateAccountException",
                            "That account is already present in the specified destination.",
                        ));
                    }
                    a.parent = dest;
                    Ok(())
                })?;
                empty()
            }
            "RemoveAccountFromOrganization" => {
                let account = i.req("AccountId")?.to_string();
                let org_id = self.update(ctx, |_, doc| {
                    if account == doc.management {
                        return Err(err(
                            "MasterCannotLeaveOrganizationException",
                            "You can't remove a management account from an organization. If you want the management account to become a member account in another organization, you must first delete the current organization of the management account.",
                        ));
                    }
                    doc.accounts.remove(&account).ok_or_else(account_not_found)?;
                    doc.attachments.remove(&account);
                    Ok(doc.id.clone())
                })?;
                self.core.db.write_untracked(|tx| {
                    if tx.get::<String>(tables::MEMBERS, &account)?.as_deref() == Some(org_id.as_str()) {
                        tx.delete(tables::MEMBERS, &account)?;
                    }
                    bump(tx)
                })?;
                empty()
            }
            "CloseAccount" => {
                let account = i.req("AccountId")?.to_string();
                self.update(ctx, |_, doc| {
                    if account == doc.management {
                        return Err(constraint(
                            "CANNOT_CLOSE_MANAGEMENT_ACCOUNT",
                            "You can't close the management account with the Organizations API.",
                        ));
                    }
                    let a = doc.accounts.get_mut(&account).ok_or_else(account_not_found)?;
                    if a.status != "ACTIVE" {
                        return Err(err(
                            "AccountAlreadyClosedException",
                            "You attempted to close an account that is already closed.",
                        ));
                    }
                    a.status = "SUSPENDED".into();
                    Ok(())
                })?;
                empty()
            }
            "CreatePolicy" => {
                let ty = policy_type_arg(i, "Type")?;
                let name = i.len("Name", 1, 128, true)?.unwrap_or_default().to_string();
                let description = i.len("Description", 0, 512, true)?.unwrap_or_default().to_string();
                let content = i.len("Content", 1, usize::MAX, true)?.unwrap_or_default().to_string();
                let tags = i.tags("Tags")?;
                self.validate_content(&content, ty)?;
                let out = self.update(ctx, |_, doc| {
                    if doc.policies.values().filter(|p| p.ty == ty).count() >= MAX_POLICIES_PER_TYPE {
                        return Err(constraint(
                            "POLICY_NUMBER_LIMIT_EXCEEDED",
                            "You have reached the maximum number of policies of this type in the organization.",
                        ));
                    }
                    check_unique_name(doc, ty, &name, None)?;
                    let id = loop {
                        let id = new_policy_id();
                        if !doc.policies.contains_key(&id) {
                            break id;
                        }
                    };
                    let seq = doc.next_seq();
                    doc.policies
                        .insert(id.clone(), OrgPolicyRec { name, description, ty: ty.to_string(), content, tags, seq });
                    policy_json(doc, &id).ok_or_else(policy_not_found)
                })?;
                Ok(Output::Json(json!({"Policy": out})))
            }
            "DescribePolicy" => {
                let doc = self.managed_org(ctx)?;
                let p = policy_json(&doc, i.req("PolicyId")?).ok_or_else(policy_not_found)?;
                Ok(Output::Json(json!({"Policy": p})))
            }
            "UpdatePolicy" => {
                let id = i.req("PolicyId")?.to_string();
                let name = i.len("Name", 1, 128, false)?.map(str::to_string);
                let description = i.len("Description", 0, 512, false)?.map(str::to_string);
                let content = i.len("Content", 1, usize::MAX, false)?.map(str::to_string);
                if aws_managed_type(&id).is_some() {
                    return Err(invalid(
                        "IMMUTABLE_POLICY",
                        "You specified a policy that is managed by AWS and can't be modified.",
                    ));
                }
                let doc = self.managed_org(ctx)?;
                let ty = doc.policy_type(&id).ok_or_else(policy_not_found)?;
                if let Some(c) = &content {
                    self.validate_content(c, &ty)?;
                }
                let out = self.update(ctx, |_, doc| {
                    let ty = doc.policy_type(&id).ok_or_else(policy_not_found)?;
                    if let Some(n) = &name {
                        check_unique_name(doc, &ty, n, Some(&id))?;
                    }
                    let p = doc.policies.get_mut(&id).ok_or_else(policy_not_found)?;
                    if let Some(n) = name {
                        p.name = n;
                    }
                    if let Some(d) = description {
                        p.description = d;
                    }
                    if let Some(c) = content {
                        p.content = c;
                    }
                    policy_json(doc, &id).ok_or_else(policy_not_found)
                })?;
                Ok(Output::Json(json!({"Policy": out})))
            }
            "DeletePolicy" => {
                let id = i.req("PolicyId")?.to_string();
                if aws_managed_type(&id).is_some() {
                    return Err(invalid(
                        "IMMUTABLE_POLICY",
                        "You specified a policy that is managed by AWS and can't be modified.",
                    ));
                }
                self.update(ctx, |_, doc| {
                    if !doc.policies.contains_key(&id) {
                        return Err(policy_not_found());
                    }
                    if doc.attachments.values().any(|v| v.contains(&id)) {
                        return Err(err(
                            "PolicyInUseException",
                            "The policy is attached to one or more entities. You must detach it from all roots, OUs, and accounts before performing this operation.",
                        ));
                    }
                    doc.policies.remove(&id);
                    Ok(())
                })?;
                empty()
            }
            "ListPolicies" => {
                let doc = self.managed_org(ctx)?;
                let ty = policy_type_arg(i, "Filter")?;
                let mut items = Vec::new();
                if let Some((mid, ..)) = aws_managed(ty) {
                    items.extend(policy_summary(&doc, mid));
                }
                items.extend({
                    let mut ps: Vec<_> = doc.policies.iter().filter(|(_, p)| p.ty == ty).collect();
                    ps.sort_by_key(|(_, p)| p.seq);
                    ps.into_iter().filter_map(|(id, _)| policy_summary(&doc, id)).collect::<Vec<_>>()
                });
                paged("Policies", items, i)
            }
            "AttachPolicy" => {
                let id = i.req("PolicyId")?.to_string();
                let target = i.req("TargetId")?.to_string();
                self.update(ctx, |_, doc| {
                    let ty = doc.policy_type(&id).ok_or_else(policy_not_found)?;
                    if !doc.target_exists(&target) {
                        return Err(target_not_found());
                    }
                    if !doc.type_enabled(&ty) {
                        return Err(err(
                            "PolicyTypeNotEnabledException",
                            "This operation can be performed only for enabled policy types.",
                        ));
                    }
                    let list = doc.attachments.entry(target.clone()).or_default();
                    if list.contains(&id) {
                        return Err(err(
                            "DuplicatePolicyAttachmentException",
                            "The selected policy is already attached to the specified target.",
                        ));
                    }
                    if doc.attached_of_type(&target, &ty).len() >= type_limits(&ty).0 {
                        return Err(constraint(
                            "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
                            "You have attached the maximum number of policies of this type to the specified target.",
                        ));
                    }
                    doc.attachments.entry(target).or_default().push(id);
                    Ok(())
                })?;
                empty()
            }
            "DetachPolicy" => {
                let id = i.req("PolicyId")?.to_string();
                let target = i.req("TargetId")?.to_string();
                self.update(ctx, |_, doc| {
                    let ty = doc.policy_type(&id).ok_or_else(policy_not_found)?;
                    if !doc.target_exists(&target) {
                        return Err(target_not_found());
                    }
                    if !doc.attachments.get(&target).is_some_and(|v| v.contains(&id)) {
                        return Err(err(
                            "PolicyNotAttachedException",
                            "The policy isn't attached to the specified target in the specified root.",
                        ));
                    }
                    if doc.attached_of_type(&target, &ty).len() <= 1 {
                        return Err(constraint(
                            "MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
                            "You have attached the minimum number of policies of this type to the specified target. Every root, OU and account must have at least one policy of each enabled type attached.",
                        ));
                    }
                    if let Some(v) = doc.attachments.get_mut(&target) {
                        v.retain(|p| *p != id);
                    }
                    Ok(())
                })?;
                empty()
            }
            "ListPoliciesForTarget" => {
                let doc = self.managed_org(ctx)?;
                let target = i.req("TargetId")?;
                let ty = policy_type_arg(i, "Filter")?;
                if !doc.target_exists(target) {
                    return Err(target_not_found());
                }
                let items = doc.attached_of_type(target, ty).iter().filter_map(|p| policy_summary(&doc, p)).collect();
                paged("Policies", items, i)
            }
            "ListTargetsForPolicy" => {
                let doc = self.managed_org(ctx)?;
                let id = i.req("PolicyId")?;
                doc.policy_type(id).ok_or_else(policy_not_found)?;
                let items = doc
                    .targets()
                    .iter()
                    .filter(|t| doc.attachments.get(*t).is_some_and(|v| v.iter().any(|p| p == id)))
                    .map(|t| target_summary(&doc, t))
                    .collect();
                paged("Targets", items, i)
            }
            "EnablePolicyType" => {
                let ty = policy_type_arg(i, "PolicyType")?;
                let root = self.update(ctx, |_, doc| {
                    if doc.type_enabled(ty) {
                        return Err(err(
                            "PolicyTypeAlreadyEnabledException",
                            "The specified policy type is already enabled.",
                        ));
                    }
                    doc.enabled_types.push(ty.to_string());
                    // AWS attaches the managed full-access policy of the type everywhere.
                    if let Some((mid, ..)) = aws_managed(ty) {
                        for t in doc.targets() {
                            let list = doc.attachments.entry(t).or_default();
                            if !list.iter().any(|p| p == mid) {
                                list.push(mid.to_string());
                            }
                        }
                    }
                    Ok(root_json(doc))
                })?;
                Ok(Output::Json(json!({"Root": root})))
            }
            "DisablePolicyType" => {
                let ty = policy_type_arg(i, "PolicyType")?;
                let root = self.update(ctx, |_, doc| {
                    if !doc.type_enabled(ty) {
                        return Err(err(
                            "PolicyTypeNotEnabledException",
                            "This operation can be performed only for enabled policy types.",
                        ));
                    }
                    doc.enabled_types.retain(|t| t != ty);
                    let types: Vec<(String, String)> = doc
                        .attachments
                        .values()
                        .flatten()
                        .filter_map(|p| doc.policy_type(p).map(|t| (p.clone(), t)))
                        .collect();
                    for list in doc.attachments.values_mut() {
                        list.retain(|p| !types.iter().any(|(id, t)| id == p && t == ty));
                    }
                    Ok(root_json(doc))
                })?;
                Ok(Output::Json(json!({"Root": root})))
            }
            "EnableAWSServiceAccess" | "DisableAWSServiceAccess" => {
                let sp = service_principal_arg(i, "ServicePrincipal")?;
                self.update(ctx, |_, doc| {
                    if op == "EnableAWSServiceAccess" {
                        doc.service_access.entry(sp).or_insert(now);
                    } else {
                        doc.service_access.remove(&sp);
                    }
                    Ok(())
                })?;
                empty()
            }
            "ListAWSServiceAccessForOrganization" => {
                let doc = self.managed_org(ctx)?;
                let items = doc
                    .service_access
                    .iter()
                    .map(|(sp, at)| json!({"ServicePrincipal": sp, "DateEnabled": at}))
                    .collect();
                paged("EnabledServicePrincipals", items, i)
            }
            "RegisterDelegatedAdministrator" | "DeregisterDelegatedAdministrator" => {
                let account = i.req("AccountId")?.to_string();
                let sp = service_principal_arg(i, "ServicePrincipal")?;
                self.update(ctx, |_, doc| {
                    if account == doc.management {
                        return Err(cannot_register_management());
                    }
                    if !doc.accounts.contains_key(&account) {
                        return Err(account_not_found());
                    }
                    if op == "RegisterDelegatedAdministrator" {
                        let services = doc.delegated_admins.entry(account.clone()).or_default();
                        if services.contains_key(&sp) {
                            return Err(err(
                                "AccountAlreadyRegisteredException",
                                "The provided account is already a delegated administrator for your organization.",
                            ));
                        }
                        services.insert(sp, now);
                    } else {
                        let services = doc.delegated_admins.get_mut(&account).ok_or_else(account_not_registered)?;
                        if services.remove(&sp).is_none() {
                            return Err(invalid(
                                "UNRECOGNIZED_SERVICE_PRINCIPAL",
                                "You specified an unrecognized service principal.",
                            ));
                        }
                        if services.is_empty() {
                            doc.delegated_admins.remove(&account);
                        }
                    }
                    Ok(())
                })?;
                empty()
            }
            "ListDelegatedAdministrators" => {
                let doc = self.managed_org(ctx)?;
                let wanted = i.opt("ServicePrincipal")?;
                let items = doc
                    .delegated_admins
                    .iter()
                    .filter_map(|(id, services)| {
                        let since = match wanted {
                            Some(sp) => *services.get(sp)?,
                            None => *services.values().min()?,
                        };
                        let a = doc.accounts.get(id)?;
                        let mut v = account_json(&doc, id, a);
                        put(&mut v, "DelegationEnabledDate", json!(since));
                        Some(v)
                    })
                    .collect();
                paged("DelegatedAdministrators", items, i)
            }
            "ListDelegatedServicesForAccount" => {
                let doc = self.managed_org(ctx)?;
                let account = i.req("AccountId")?;
                let services = doc.delegated_admins.get(account).ok_or_else(account_not_registered)?;
                let items = services
                    .iter()
                    .map(|(sp, at)| json!({"ServicePrincipal": sp, "DelegationEnabledDate": at}))
                    .collect();
                paged("DelegatedServices", items, i)
            }
            "TagResource" | "UntagResource" => {
                let id = i.req("ResourceId")?.to_string();
                let tags = if op == "TagResource" { i.tags("Tags")? } else { Vec::new() };
                let keys = if op == "UntagResource" { i.tag_keys()? } else { Vec::new() };
                self.update(ctx, |_, doc| {
                    let list = tags_of(doc, &id).ok_or_else(target_not_found)?;
                    for t in tags {
                        match list.iter_mut().find(|e| e.key == t.key) {
                            Some(e) => e.value = t.value,
                            None => list.push(t),
                        }
                    }
                    list.retain(|t| !keys.contains(&t.key));
                    if list.len() > MAX_TAGS {
                        return Err(constraint(
                            "MAX_TAG_LIMIT_EXCEEDED",
                            "You have exceeded the maximum number of tags allowed on this resource.",
                        ));
                    }
                    Ok(())
                })?;
                empty()
            }
            "ListTagsForResource" => {
                let mut doc = self.managed_org(ctx)?;
                let id = i.req("ResourceId")?;
                let tags = tags_of(&mut doc, id).ok_or_else(target_not_found)?.clone();
                let (items, next) = page(&tags, &In(&json!({"NextToken": i.opt("NextToken")?})))?;
                let mut out = json!({"Tags": tags_json(&items)});
                if let Some(n) = next {
                    put(&mut out, "NextToken", json!(n));
                }
                Ok(Output::Json(out))
            }
            other => Err(IamError::Aws(AwsError::unknown_operation("organizations", other))),
        }
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

    fn create_account(&self, ctx: &RequestContext, i: &In<'_>, now: i64) -> Result<Output> {
        let email = i.len("Email", 6, 64, true)?.unwrap_or_default().to_string();
        let valid_email = email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.'))
            && !email.chars().any(char::is_whitespace)
            && email.matches('@').count() == 1;
        if !valid_email {
            return Err(invalid("INVALID_PATTERN", "You specified an invalid value for Email."));
        }
        let name = i.len("AccountName", 1, 50, true)?.unwrap_or_default().to_string();
        if !name.chars().all(|c| (' '..='~').contains(&c)) {
            return Err(invalid("INVALID_PATTERN", "You specified an invalid value for AccountName."));
        }
        let role_name = i.len("RoleName", 1, 64, false)?.unwrap_or(DEFAULT_ROLE).to_string();
        if !role_name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)) {
            return Err(invalid("INVALID_ROLE_NAME", "You specified an invalid value for RoleName."));
        }
        if let Some(b) = i.opt("IamUserAccessToBilling")? {
            if b != "ALLOW" && b != "DENY" {
                return Err(invalid("INVALID_ENUM", "You specified an invalid value."));
            }
        }
        let tags = i.tags("Tags")?;
        let status = self.update(ctx, |tx, doc| {
            let mut status = CreateStatusRec {
                id: new_request_id(),
                account_name: name.clone(),
                state: "SUCCEEDED".into(),
                requested: now,
                completed: Some(now),
                account_id: None,
                failure_reason: None,
            };
            if doc.accounts.len() >= MAX_ACCOUNTS {
                return Err(constraint(
                    "ACCOUNT_NUMBER_LIMIT_EXCEEDED",
                    "You have reached the limit on the number of accounts in your organization.",
                ));
            }
            if doc.accounts.values().any(|a| a.email.eq_ignore_ascii_case(&email)) {
                status.state = "FAILED".into();
                status.failure_reason = Some("EMAIL_ALREADY_EXISTS".into());
            } else {
                let account = loop {
                    let id = new_account_id();
                    if tx.get::<AccountRec>(iam_tables::ACCOUNTS, &id)?.is_none() && !doc.accounts.contains_key(&id) {
                        break id;
                    }
                };
                provision_account(tx, &account, &doc.management, &role_name, now)?;
                doc.accounts.insert(
                    account.clone(),
                    MemberRec {
                        name: name.clone(),
                        email: email.clone(),
                        parent: doc.root_id.clone(),
                        status: "ACTIVE".into(),
                        joined_method: "CREATED".into(),
                        joined: now,
                        tags,
                    },
                );
                attach_defaults(doc, &account);
                tx.put(tables::MEMBERS, &account, &doc.id)?;
                status.account_id = Some(account);
            }
            tx.put(tables::CREATE_REQUESTS, &status.id, &doc.id)?;
            doc.create_requests.push(status.clone());
            Ok(status)
        })?;
        Ok(Output::Json(json!({"CreateAccountStatus": status_json(&status)})))
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
        let v = json!({});
        let (a, next) = page(&items, &In(&v)).unwrap();
        assert_eq!(a.len(), 20);
        let v = json!({"NextToken": next.unwrap(), "MaxResults": 3});
        let (b, next) = page(&items, &In(&v)).unwrap();
        assert_eq!(b, vec![20, 21, 22]);
        assert!(next.is_some());
        let v = json!({"NextToken": "garbage"});
        assert!(page(&items, &In(&v)).is_err());
        let v = json!({"MaxResults": 21});
        assert!(page(&items, &In(&v)).is_err());
    }
}
