//! CloudTrail and AWS Organizations: RegisterOrganizationDelegatedAdmin /
//! DeregisterOrganizationDelegatedAdmin, and who may manage an organization trail (the management
//! account and CloudTrail's delegated administrators).

use rampart_service::{op, AuthzCheck, AuthzPlan, AwsError, Entry, Input, Operation, OrgView, Output, RequestContext};
use serde_json::{json, Value};

use crate::service::{e400, Api};

/// CloudTrail's service principal in Organizations.
pub const SERVICE_PRINCIPAL: &str = "cloudtrail.amazonaws.com";
/// An organization has at most three CloudTrail delegated administrators.
const MAX_DELEGATED_ADMINS: usize = 3;

pub const OPS: &[Entry<Api>] =
    &[op::<Api, RegisterOrganizationDelegatedAdmin>(), op::<Api, DeregisterOrganizationDelegatedAdmin>()];

/// What the caller's account is to its organization's trails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Management,
    DelegatedAdmin,
    Member,
}

impl Api {
    /// The caller's organization, if Organizations is wired and the account is in one.
    pub(crate) fn organization(&self, account: &str) -> Result<Option<OrgView>, AwsError> {
        match self.0.orgs.get() {
            Some(o) => o.organization_of(account),
            None => Ok(None),
        }
    }

    /// The caller's organization and role in it.
    pub(crate) fn org_role(&self, ctx: &RequestContext) -> Result<Option<(OrgView, Role)>, AwsError> {
        let account = &ctx.caller.account_id;
        Ok(self.organization(account)?.map(|v| {
            let role = if &v.management_account == account {
                Role::Management
            } else if v.is_delegated_admin(account, SERVICE_PRINCIPAL) {
                Role::DelegatedAdmin
            } else {
                Role::Member
            };
            (v, role)
        }))
    }

    /// The organization an organization trail is made or changed in by this caller: the caller
    /// must be its management account or a CloudTrail delegated administrator, with trusted
    /// access for CloudTrail on.
    pub(crate) fn org_admin(&self, ctx: &RequestContext) -> Result<OrgView, AwsError> {
        let (view, role) = self.org_role(ctx)?.ok_or_else(not_in_use)?;
        if role == Role::Member {
            return Err(not_admin(&ctx.caller.account_id));
        }
        trusted(&view)?;
        Ok(view)
    }
}

pub(crate) fn not_in_use() -> AwsError {
    e400(
        "OrganizationsNotInUseException",
        "This account is not a member of an organization. Create an organization or join one first.",
    )
}

pub(crate) fn not_admin(account: &str) -> AwsError {
    e400(
        "NotOrganizationMasterAccountException",
        format!(
            "Account {account} is neither the management account nor a CloudTrail delegated administrator of its organization."
        ),
    )
}

fn not_management(account: &str) -> AwsError {
    e400(
        "NotOrganizationManagementAccountException",
        format!("Account {account} is not the management account of its organization."),
    )
}

fn trusted(view: &OrgView) -> Result<(), AwsError> {
    if view.trusted_services.iter().any(|s| s == SERVICE_PRINCIPAL) {
        Ok(())
    } else {
        Err(e400(
            "CloudTrailAccessNotEnabledException",
            "Trusted access for CloudTrail (cloudtrail.amazonaws.com) is not enabled in the organization.",
        ))
    }
}

/// `AccountId`: 12 to 16 digits (the model), a 12-digit account in fact.
fn account_arg(body: &Value, member: &str) -> Result<String, AwsError> {
    let v = crate::service::required(body, member)?;
    if !(12..=16).contains(&v.len()) || !v.bytes().all(|c| c.is_ascii_digit()) {
        return Err(e400(
            "InvalidParameterException",
            format!(
                "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must satisfy regular expression pattern: \\d+ and length 12 to 16",
                lower_first(member)
            ),
        ));
    }
    Ok(v.to_string())
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

/// The checks of both operations: the CloudTrail action, and the Organizations actions AWS
/// documents it needs (on the member account's ARN, once the organization is known).
fn plan(api: &Api, ctx: &RequestContext, action: &str, org_action: &str, account: &str) -> Result<AuthzPlan, AwsError> {
    let mut checks = vec![AuthzCheck::new(format!("cloudtrail:{action}"), "*")];
    if let Some(v) = api.organization(&ctx.caller.account_id)? {
        checks.push(AuthzCheck::new(
            format!("organizations:{org_action}"),
            format!("arn:aws:organizations::{}:account/{}/{account}", v.management_account, v.id),
        ));
        checks.push(AuthzCheck::new("organizations:ListAWSServiceAccessForOrganization", "*"));
    }
    Ok(AuthzPlan::Checks(checks))
}

/// The organization, with the caller as its management account and `account` a member other
/// than it.
fn managed(api: &Api, ctx: &RequestContext, account: &str) -> Result<OrgView, AwsError> {
    let (view, role) = api.org_role(ctx)?.ok_or_else(not_in_use)?;
    if role != Role::Management {
        return Err(not_management(&ctx.caller.account_id));
    }
    if account == view.management_account {
        return Err(e400(
            "CannotDelegateManagementAccountException",
            "You cannot register the management account of the organization as a CloudTrail delegated administrator.",
        ));
    }
    if !view.accounts.iter().any(|a| a == account) {
        return Err(e400(
            "AccountNotFoundException",
            format!("Account {account} is not a member of the organization {}.", view.id),
        ));
    }
    Ok(view)
}

fn orgs(api: &Api) -> Result<&dyn rampart_service::Organizations, AwsError> {
    api.0.orgs.get().map(|o| o.as_ref()).ok_or_else(not_in_use)
}

pub struct RegisterOrganizationDelegatedAdmin {
    account: String,
}

impl Operation<Api> for RegisterOrganizationDelegatedAdmin {
    const NAME: &'static str = "RegisterOrganizationDelegatedAdmin";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        Ok(RegisterOrganizationDelegatedAdmin { account: account_arg(input.json(), "MemberAccountId")? })
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        plan(api, ctx, Self::NAME, "RegisterDelegatedAdministrator", &self.account)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let view = managed(api, ctx, &self.account)?;
        trusted(&view)?;
        let admins = view.delegated_admins_of(SERVICE_PRINCIPAL);
        if admins.contains(&self.account.as_str()) {
            return Err(e400(
                "AccountRegisteredException",
                format!("Account {} is already registered as a CloudTrail delegated administrator.", self.account),
            ));
        }
        if admins.len() >= MAX_DELEGATED_ADMINS {
            return Err(e400(
                "DelegatedAdminAccountLimitExceededException",
                format!("The organization already has {MAX_DELEGATED_ADMINS} CloudTrail delegated administrators."),
            ));
        }
        if !orgs(api)?.register_delegated_admin(
            &view.id,
            &self.account,
            SERVICE_PRINCIPAL,
            ctx.time.unix_timestamp(),
        )? {
            return Err(e400(
                "AccountRegisteredException",
                format!("Account {} is already registered as a CloudTrail delegated administrator.", self.account),
            ));
        }
        Ok(Output::Json(json!({})))
    }
}

pub struct DeregisterOrganizationDelegatedAdmin {
    account: String,
}

impl Operation<Api> for DeregisterOrganizationDelegatedAdmin {
    const NAME: &'static str = "DeregisterOrganizationDelegatedAdmin";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        Ok(DeregisterOrganizationDelegatedAdmin { account: account_arg(input.json(), "DelegatedAdminAccountId")? })
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        plan(api, ctx, Self::NAME, "DeregisterDelegatedAdministrator", &self.account)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let view = managed(api, ctx, &self.account)?;
        let not_registered = || {
            e400(
                "AccountNotRegisteredException",
                format!("Account {} is not registered as a CloudTrail delegated administrator.", self.account),
            )
        };
        if !view.is_delegated_admin(&self.account, SERVICE_PRINCIPAL) {
            return Err(not_registered());
        }
        if !orgs(api)?.deregister_delegated_admin(&view.id, &self.account, SERVICE_PRINCIPAL)? {
            return Err(not_registered());
        }
        Ok(Output::Json(json!({})))
    }
}
