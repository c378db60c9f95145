//! CloudTrail resource-based policies: PutResourcePolicy, GetResourcePolicy and
//! DeleteResourcePolicy on event data stores, channels and dashboards, and the lookup the
//! operations that honour them (StartQuery on another account's event data store, PutAuditEvents
//! on a channel, dashboards) use to put the policy into their authorization plan.
//!
//! Stored in `trail_resource_policies`, keyed by the resource's ARN; the value is the document as
//! the caller wrote it (GetResourcePolicy answers it unchanged).

#![deny(clippy::string_slice, clippy::indexing_slicing)]

use rampart_policy::{Policy, PolicyType};
use rampart_service::{
    op, AuthzCheck, AuthzPlan, AwsError, Entry, Input, Operation, Output, RequestContext, ResourcePolicy,
};
use rampart_store::{Read, ReadExt, StoreError, TransactionExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::service::{atomically, e400, one, required, store_err, Api};

/// Resource policies: key = the resource's ARN.
pub const POLICIES_TABLE: &str = "trail_resource_policies";
/// Channels: key `{account}/{id}` (crate::channels keeps them).
pub const CHANNELS_TABLE: &str = "trail_channels";
/// Dashboards: key `{account}/{name}` (the dashboards module keeps them).
pub const DASHBOARDS_TABLE: &str = "trail_dashboards";

/// AWS's limit on a resource policy's length.
const MAX_POLICY_LEN: usize = 8192;
/// Statements per policy and principals per statement (AWS's documented limits).
const MAX_STATEMENTS: usize = 20;
const MAX_PRINCIPALS: usize = 50;

/// A stored resource policy.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PolicyDoc {
    pub arn: String,
    /// The resource's owning account.
    pub account: String,
    pub policy: String,
}

/// The resource-based policy attached to `arn` (an event data store, channel or dashboard ARN),
/// as written by PutResourcePolicy.
pub(crate) fn resource_policy(store: &dyn Read, arn: &str) -> Result<Option<String>, StoreError> {
    Ok(store.get_json::<PolicyDoc>(POLICIES_TABLE, arn)?.map(|d| d.policy))
}

/// The policy attached to `arn`, ready for an [`AuthzCheck`]'s `resource_policy`.
pub(crate) fn authz_policy(store: &dyn Read, arn: &str) -> Result<Option<ResourcePolicy>, StoreError> {
    Ok(resource_policy(store, arn)?.map(|p| ResourcePolicy::compiled(format!("{arn}/resource-policy"), p, false)))
}

/// `check` on a resource of `owner`, with the resource's policy when it has one (so another
/// account's principal may be allowed by it).
pub(crate) fn with_resource_policy(
    store: &dyn Read,
    mut check: AuthzCheck,
    owner: &str,
    caller_account: &str,
) -> Result<AuthzCheck, StoreError> {
    check.resource_policy = authz_policy(store, &check.resource)?;
    if owner != caller_account {
        check.resource_account = Some(owner.to_string());
    }
    Ok(check)
}

/// Remove the policy of a deleted resource (inside the deleting transaction).
pub(crate) fn drop_policy(tx: &mut dyn rampart_store::Transaction, arn: &str) -> Result<(), StoreError> {
    tx.delete(POLICIES_TABLE, arn).map(|_| ())
}

/// The kinds of resource that take a resource-based policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    EventDataStore,
    Channel,
    Dashboard,
}

/// A resource ARN as PutResourcePolicy and friends read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResourceArn {
    pub arn: String,
    pub kind: Kind,
    pub region: String,
    pub account: String,
    pub id: String,
}

fn arn_invalid(arn: &str) -> AwsError {
    let shown: String = arn.chars().take(256).collect();
    e400("ResourceARNNotValidException", format!("Resource ARN {shown} is not valid."))
}

fn validation(value: &str, member: &str, constraint: &str) -> AwsError {
    let shown: String = value.chars().take(64).collect();
    e400(
        "InvalidParameterException",
        format!(
            "1 validation error detected: Value '{shown}' at '{member}' failed to satisfy constraint: {constraint}"
        ),
    )
}

impl ResourceArn {
    /// The `ResourceArn` member: the model's length and pattern, then AWS's ARN forms.
    pub(crate) fn parse(v: &str) -> Result<Self, AwsError> {
        if !(3..=256).contains(&v.len()) {
            return Err(validation(v, "resourceArn", "Member must have length between 3 and 256"));
        }
        if !v.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b'-' | b':')) {
            return Err(validation(
                v,
                "resourceArn",
                "Member must satisfy regular expression pattern: ^[a-zA-Z0-9._/\\-:]+$",
            ));
        }
        let p: Vec<&str> = v.splitn(6, ':').collect();
        let ["arn", partition, service, region, account, res] = p.as_slice() else { return Err(arn_invalid(v)) };
        if !partition.starts_with("aws")
            || *service != "cloudtrail"
            || region.is_empty()
            || account.len() != 12
            || !account.bytes().all(|c| c.is_ascii_digit())
        {
            return Err(arn_invalid(v));
        }
        let Some((ty, id)) = res.split_once('/') else { return Err(arn_invalid(v)) };
        let kind = match ty {
            "eventdatastore" => Kind::EventDataStore,
            "channel" => Kind::Channel,
            "dashboard" => Kind::Dashboard,
            "trail" => {
                return Err(e400(
                    "ResourceTypeNotSupportedException",
                    "The specified resource type is not supported. Resource-based policies can be attached to event data stores, channels and dashboards.",
                ))
            }
            _ => return Err(arn_invalid(v)),
        };
        if id.is_empty() || id.contains('/') {
            return Err(arn_invalid(v));
        }
        Ok(ResourceArn {
            arn: v.to_string(),
            kind,
            region: region.to_string(),
            account: account.to_string(),
            id: id.to_string(),
        })
    }

    /// Whether the resource exists (an event data store pending deletion still does).
    pub(crate) fn exists(&self, store: &dyn Read) -> Result<bool, StoreError> {
        let key = format!("{}/{}", self.account, self.id);
        Ok(match self.kind {
            Kind::EventDataStore => crate::lake::find(store, &self.arn)?.is_some(),
            Kind::Channel => store
                .get_json::<Value>(CHANNELS_TABLE, &key)?
                .is_some_and(|c| c.get("region").and_then(Value::as_str) == Some(self.region.as_str())),
            Kind::Dashboard => store
                .get_json::<Value>(DASHBOARDS_TABLE, &key)?
                .is_some_and(|c| c.get("region").and_then(Value::as_str) == Some(self.region.as_str())),
        })
    }
}

fn policy_invalid(msg: impl Into<String>) -> AwsError {
    e400("ResourcePolicyNotValidException", msg)
}

/// Check `doc` as a resource-based policy for `target`: it parses as an IAM resource policy, has
/// 1–20 statements, each with 1–50 principals (and no `NotPrincipal`), whose resources name the
/// resource itself, and whose actions are the ones the resource type serves (a channel's only
/// `cloudtrail-data:PutAuditEvents`).
pub(crate) fn validate(doc: &str, target: &ResourceArn) -> Result<(), AwsError> {
    let policy = Policy::parse(doc, PolicyType::Resource)
        .map_err(|e| policy_invalid(format!("Resource policy is not valid: {}", e.message)))?;
    let d = policy.document();
    if d.statements.is_empty() || d.statements.len() > MAX_STATEMENTS {
        return Err(policy_invalid(format!(
            "Resource policy is not valid: a policy must have between 1 and {MAX_STATEMENTS} statements."
        )));
    }
    for s in &d.statements {
        let Some(p) = &s.principal else {
            return Err(policy_invalid("Resource policy is not valid: each statement must have a Principal."));
        };
        if p.negated {
            return Err(policy_invalid("Resource policy is not valid: NotPrincipal is not supported."));
        }
        let count = if p.wildcard { 1 } else { p.entries.iter().map(|(_, v)| v.len()).sum() };
        if count == 0 || count > MAX_PRINCIPALS {
            return Err(policy_invalid(format!(
                "Resource policy is not valid: a statement must have between 1 and {MAX_PRINCIPALS} principals."
            )));
        }
        for (_, values) in &p.entries {
            for v in values {
                if !principal_ok(v) {
                    let shown: String = v.chars().take(128).collect();
                    return Err(policy_invalid(format!("Resource policy is not valid: invalid principal {shown}.")));
                }
            }
        }
        if let Some(r) = &s.resource {
            if r.negated || r.values.iter().any(|x| x != &target.arn) {
                return Err(policy_invalid(format!(
                    "Resource policy is not valid: the policy's resource must be {}.",
                    target.arn
                )));
            }
        }
        let Some(actions) = &s.action else {
            return Err(policy_invalid("Resource policy is not valid: each statement must have an Action."));
        };
        let allowed = |a: &str| match target.kind {
            Kind::Channel => a.eq_ignore_ascii_case("cloudtrail-data:PutAuditEvents"),
            Kind::EventDataStore | Kind::Dashboard => {
                a.split_once(':').is_some_and(|(ns, _)| ns.eq_ignore_ascii_case("cloudtrail"))
            }
        };
        if actions.negated || !actions.values.iter().all(|a| allowed(a)) {
            let msg = match target.kind {
                Kind::Channel => {
                    "Resource policy is not valid: a channel's policy can only allow cloudtrail-data:PutAuditEvents."
                }
                _ => "Resource policy is not valid: the policy can only name CloudTrail actions.",
            };
            return Err(policy_invalid(msg));
        }
    }
    Ok(())
}

/// A principal CloudTrail accepts: an account ID, an account root / IAM user / role / STS session
/// ARN, `*`, or a service principal.
fn principal_ok(v: &str) -> bool {
    if v == "*" || (v.len() == 12 && v.bytes().all(|c| c.is_ascii_digit())) {
        return true;
    }
    if v.ends_with(".amazonaws.com") {
        return true;
    }
    let p: Vec<&str> = v.splitn(6, ':').collect();
    match p.as_slice() {
        ["arn", part, svc @ ("iam" | "sts"), "", acct, res] => {
            part.starts_with("aws")
                && acct.len() == 12
                && acct.bytes().all(|c| c.is_ascii_digit())
                && (*res == "root"
                    || (*svc == "iam" && (res.starts_with("user/") || res.starts_with("role/")))
                    || (*svc == "sts" && res.starts_with("assumed-role/")))
        }
        _ => false,
    }
}

pub(crate) const OPS: &[Entry<Api>] =
    &[op::<Api, PutResourcePolicy>(), op::<Api, GetResourcePolicy>(), op::<Api, DeleteResourcePolicy>()];

/// The resource must be the caller's and exist.
fn load_target(api: &Api, ctx: &RequestContext, target: &ResourceArn) -> Result<(), AwsError> {
    let mine = target.account == ctx.caller.account_id && target.region == ctx.region;
    if !mine || !target.exists(api.store()).map_err(store_err)? {
        let what = match target.kind {
            Kind::EventDataStore => "event data store",
            Kind::Channel => "channel",
            Kind::Dashboard => "dashboard",
        };
        return Err(e400("ResourceNotFoundException", format!("The specified {what} {} was not found.", target.arn)));
    }
    Ok(())
}

fn no_policy(arn: &str) -> AwsError {
    e400("ResourcePolicyNotFoundException", format!("No resource-based policy found for resource {arn}."))
}

fn check(target: &ResourceArn, action: &str) -> AuthzCheck {
    AuthzCheck::new(format!("cloudtrail:{action}"), target.arn.clone())
}

struct PutResourcePolicy {
    target: ResourceArn,
    policy: String,
}

impl Operation<Api> for PutResourcePolicy {
    const NAME: &'static str = "PutResourcePolicy";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let arn = required(body, "ResourceArn")?;
        let policy = required(body, "ResourcePolicy")?;
        if policy.is_empty() || policy.chars().count() > MAX_POLICY_LEN {
            return Err(validation("…", "resourcePolicy", "Member must have length between 1 and 8192"));
        }
        let target = ResourceArn::parse(arn)?;
        Ok(PutResourcePolicy { target, policy: policy.to_string() })
    }

    fn authorize(&mut self, _: &Api, _: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(check(&self.target, Self::NAME))
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        load_target(api, ctx, &self.target)?;
        validate(&self.policy, &self.target)?;
        let doc = PolicyDoc { arn: self.target.arn.clone(), account: self.target.account.clone(), policy: self.policy };
        atomically(api.store(), |tx| tx.put_json(POLICIES_TABLE, &doc.arn, &doc).map_err(store_err))?;
        Ok(Output::Json(json!({"ResourceArn": doc.arn, "ResourcePolicy": doc.policy})))
    }
}

struct GetResourcePolicy(ResourceArn);

impl Operation<Api> for GetResourcePolicy {
    const NAME: &'static str = "GetResourcePolicy";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        ResourceArn::parse(required(input.json(), "ResourceArn")?).map(GetResourcePolicy)
    }

    fn authorize(&mut self, _: &Api, _: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(check(&self.0, Self::NAME))
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        load_target(api, ctx, &self.0)?;
        let policy =
            resource_policy(api.store(), &self.0.arn).map_err(store_err)?.ok_or_else(|| no_policy(&self.0.arn))?;
        Ok(Output::Json(json!({"ResourceArn": self.0.arn, "ResourcePolicy": policy})))
    }
}

struct DeleteResourcePolicy(ResourceArn);

impl Operation<Api> for DeleteResourcePolicy {
    const NAME: &'static str = "DeleteResourcePolicy";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        ResourceArn::parse(required(input.json(), "ResourceArn")?).map(DeleteResourcePolicy)
    }

    fn authorize(&mut self, _: &Api, _: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(check(&self.0, Self::NAME))
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        load_target(api, ctx, &self.0)?;
        let arn = self.0.arn;
        atomically(api.store(), |tx| -> Result<(), AwsError> {
            if tx.get_json::<PolicyDoc>(POLICIES_TABLE, &arn).map_err(store_err)?.is_none() {
                return Err(no_policy(&arn));
            }
            drop_policy(tx, &arn).map_err(store_err)
        })?;
        Ok(Output::Json(json!({})))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eds() -> ResourceArn {
        ResourceArn::parse("arn:aws:cloudtrail:us-east-1:111111111111:eventdatastore/abc-123").unwrap()
    }

    #[test]
    fn arn_forms() {
        assert_eq!(eds().kind, Kind::EventDataStore);
        assert_eq!(
            ResourceArn::parse("arn:aws:cloudtrail:us-east-1:111111111111:channel/x").unwrap().kind,
            Kind::Channel
        );
        assert_eq!(
            ResourceArn::parse("arn:aws:cloudtrail:us-east-1:111111111111:dashboard/d").unwrap().kind,
            Kind::Dashboard
        );
        let code = |a: &str| ResourceArn::parse(a).unwrap_err().code;
        assert_eq!(code("arn:aws:cloudtrail:us-east-1:111111111111:trail/t"), "ResourceTypeNotSupportedException");
        assert_eq!(code("arn:aws:s3:::bucket/x"), "ResourceARNNotValidException");
        assert_eq!(code("arn:aws:cloudtrail:us-east-1:1111:channel/x"), "ResourceARNNotValidException");
        assert_eq!(code("not an arn"), "InvalidParameterException");
    }

    #[test]
    fn policy_rules() {
        let t = eds();
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":["cloudtrail:StartQuery","cloudtrail:GetQueryResults"],"Resource":"arn:aws:cloudtrail:us-east-1:111111111111:eventdatastore/abc-123"}]}"#;
        assert!(validate(ok, &t).is_ok());
        let code = |d: &str| validate(d, &t).unwrap_err().code;
        assert_eq!(code("{"), "ResourcePolicyNotValidException");
        assert_eq!(
            code(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"cloudtrail:StartQuery","Resource":"*"}]}"#
            ),
            "ResourcePolicyNotValidException"
        );
        assert_eq!(
            code(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"222222222222"},"Action":"s3:GetObject"}]}"#
            ),
            "ResourcePolicyNotValidException"
        );
        let ch = ResourceArn::parse("arn:aws:cloudtrail:us-east-1:111111111111:channel/c1").unwrap();
        let chp = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["222222222222"]},"Action":"cloudtrail-data:PutAuditEvents","Resource":"arn:aws:cloudtrail:us-east-1:111111111111:channel/c1"}]}"#;
        assert!(validate(chp, &ch).is_ok());
        assert!(validate(ok, &ch).is_err());
    }
}
