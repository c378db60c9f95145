//! AssumeRoot: short-term credentials of a member account's root user, scoped by a task policy.
//!
//! The caller is an IAM principal (not a root user) of the organization's management account or
//! of the delegated administrator for IAM; the organization has root sessions enabled
//! (IAM EnableOrganizationsRootSessions); the target is a member account other than the
//! caller's. The session acts as the target's root with the task policy (one of AWS's five
//! `arn:aws:iam::aws:policy/root-task/*` policies) enforced on every call: the authorizer adds it
//! to the root's allow-everything identity, so its denials bind (crate::authz).

use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{op, AuthzCheck, AuthzPlan, Entry, Input, Operation, Output, RequestContext};

use super::session::{self, SessionKind, SessionRec};
use super::{calling_session, credentials_xml, invalid_parameter, s, StsService};
use crate::error::{IamError, Result};
use crate::org::model::OrgDoc;
use crate::validate::{Args, Spec};

/// The operations of this family, each listed once.
pub const OPS: &[Entry<StsService>] = &[op::<StsService, AssumeRoot>()];

/// The task policies AssumeRoot accepts (AWS's API reference).
pub const TASK_POLICIES: [&str; 5] = [
    "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials",
    "arn:aws:iam::aws:policy/root-task/IAMCreateRootUserPassword",
    "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials",
    "arn:aws:iam::aws:policy/root-task/S3UnlockBucketPolicy",
    "arn:aws:iam::aws:policy/root-task/SQSUnlockQueuePolicy",
];

const TARGET: Spec = Spec { min: 12, max: 2048, pattern: None };
const TASK_ARN: Spec = Spec { min: 20, max: 2048, pattern: None };

/// The member account a `TargetPrincipal` names: a 12-digit account ID or
/// `arn:aws:iam::ACCOUNT:root`.
pub fn target_account(target: &str) -> Option<&str> {
    let account = match target.strip_prefix("arn:aws:iam::") {
        Some(rest) => rest.strip_suffix(":root")?,
        None => target,
    };
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

pub struct AssumeRoot {
    target: String,
    task_policy: String,
    duration: i64,
    /// The organization and the calling session, as planned.
    planned: Option<(OrgDoc, Option<SessionRec>)>,
}

impl Operation<StsService> for AssumeRoot {
    const NAME: &'static str = "AssumeRoot";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let q = input.query();
        let mut a = Args::new(q);
        let target = a.req("TargetPrincipal", &TARGET).to_string();
        let task_policy = match q.get("TaskPolicyArn.arn") {
            Some(arn) => {
                a.check_value("taskPolicyArn.arn", arn, &TASK_ARN);
                arn.to_string()
            }
            None => {
                a.error("Value null at 'taskPolicyArn' failed to satisfy constraint: Member must not be null".into());
                String::new()
            }
        };
        let duration = a.int("DurationSeconds", 0, 900).unwrap_or(900);
        a.int("MinimumSessionTokenSize", 0, 4096);
        a.finish()?;
        let Some(account) = target_account(&target) else {
            return Err(invalid_parameter(format!(
                "The TargetPrincipal {} is not a valid account ID or root user ARN.",
                rampart_protocol::echo(&target)
            )));
        };
        let target = account.to_string();
        if !TASK_POLICIES.contains(&task_policy.as_str()) {
            return Err(invalid_parameter(format!(
                "The TaskPolicyArn {} is not a supported task policy.",
                rampart_protocol::echo(&task_policy)
            )));
        }
        Ok(AssumeRoot { target, task_policy, duration, planned: None })
    }

    fn authorize(&mut self, svc: &StsService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let core = &svc.core;
        if ctx.caller.is_root() {
            return Err(IamError::Aws(AwsError::access_denied("Root user credentials cannot call AssumeRoot.")));
        }
        let caller = ctx.caller.account_id.as_str();
        let resource = format!("arn:aws:iam::{}:root", self.target);
        let mut c = AuthzCheck::new("sts:AssumeRoot", resource.clone());
        c.context.push(("sts:TaskPolicyArn".into(), s(self.task_policy.as_str())));
        let denied = |why: &str| {
            IamError::Aws(AwsError::access_denied(format!(
                "User: {} is not authorized to perform: sts:AssumeRoot on resource: {resource} because {why}",
                ctx.caller.arn
            )))
        };
        let org = crate::org::enforce::org_of(&core.db, caller)?
            .ok_or_else(|| denied("the account is not in an organization"))?;
        let iam_admin = org.delegated_admins.get(caller).is_some_and(|s| s.contains_key(crate::service::IAM_PRINCIPAL));
        if org.management != caller && !iam_admin {
            return Err(denied("the account is not the management account or the delegated administrator for IAM"));
        }
        if !crate::service::root_features(&core.db, &org.id)?.iter().any(|f| f == crate::service::ROOT_SESSIONS) {
            return Err(denied("root sessions are not enabled for the organization"));
        }
        if self.target == caller || self.target == org.management || !org.accounts.contains_key(&self.target) {
            return Err(denied("the target is not a member account of the organization"));
        }
        let parent = calling_session(core, ctx)?;
        self.planned = Some((org, parent));
        Ok(AuthzPlan::Checks(vec![c]))
    }

    fn run(self, svc: &StsService, ctx: &RequestContext) -> Result<Output> {
        let core = &svc.core;
        let now = ctx.time.unix_timestamp();
        let Some((_, parent)) = self.planned else { return Err(super::missing_token()) };
        let source_identity = parent.as_ref().and_then(|p| p.source_identity.clone());
        let rec = SessionRec {
            account: self.target,
            sealed: String::new(),
            issued: now,
            expires: now + self.duration,
            kind: SessionKind::Root,
            policy: None,
            policy_arns: Vec::new(),
            has_session_policy: false,
            tags: Vec::new(),
            transitive: Vec::new(),
            source_identity: source_identity.clone(),
            mfa_time: None,
            task_policy: Some(self.task_policy),
        };
        let m = session::issue(&core.db, &core.creds.sealer(), rec, now)?;
        let mut w = XmlWriter::new();
        credentials_xml(&mut w, &m);
        if let Some(si) = &source_identity {
            w.elem("SourceIdentity", si);
        }
        Ok(Output::Xml(Some(w.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_account_ids_or_root_arns() {
        assert_eq!(target_account("111122223333"), Some("111122223333"));
        assert_eq!(target_account("arn:aws:iam::111122223333:root"), Some("111122223333"));
        assert_eq!(target_account("arn:aws:iam::111122223333:user/x"), None);
        assert_eq!(target_account("11112222333"), None);
        assert_eq!(target_account("11112222333x"), None);
        assert_eq!(target_account("arn:aws:iam::1111222233334:root"), None);
    }
}
