//! Centralized root access for member accounts: ListOrganizationsFeatures,
//! Enable/DisableOrganizationsRootCredentialsManagement, Enable/DisableOrganizationsRootSessions.
//!
//! The features belong to the organization (kept by IAM, keyed by organization ID, so a new
//! organization starts without them). The caller's account must be in an organization, be its
//! management account or the delegated administrator for IAM (only the management account may
//! enable), and the organization must have trusted access for `iam.amazonaws.com` enabled.
//! STS AssumeRoot requires `RootSessions`.

use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{op, AuthzPlan, Entry, Input, Operation, Output, RequestContext};

use super::{account, check, one, xml, Core};
use crate::db::{Db, Lookup};
use crate::error::{IamError, Result};
use crate::org::model::OrgDoc;
use crate::validate::Args;

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, ListOrganizationsFeatures>(),
    op::<Core, EnableOrganizationsRootCredentialsManagement>(),
    op::<Core, DisableOrganizationsRootCredentialsManagement>(),
    op::<Core, EnableOrganizationsRootSessions>(),
    op::<Core, DisableOrganizationsRootSessions>(),
];

/// Table: organization ID → the enabled features, in AWS's order.
pub const TABLE: &str = "iam_org_root_features";
/// IAM's service principal (trusted access, delegated administrators).
pub const IAM_PRINCIPAL: &str = "iam.amazonaws.com";
pub const ROOT_CREDENTIALS: &str = "RootCredentialsManagement";
pub const ROOT_SESSIONS: &str = "RootSessions";

/// The centralized root access features enabled for organization `org_id`.
pub fn root_features(db: &Db, org_id: &str) -> Result<Vec<String>> {
    Ok(db.get::<Vec<String>>(TABLE, org_id)?.unwrap_or_default())
}

fn error(code: &'static str, message: &str) -> IamError {
    IamError::Aws(AwsError::new(code, message, 400))
}

/// Who may call: `manage_only` for the Enable calls.
fn organization(core: &Core, ctx: &RequestContext, manage_only: bool) -> Result<OrgDoc> {
    let acct = account(ctx);
    let org = crate::org::enforce::org_of(&core.db, acct)?.ok_or_else(|| {
        error(
            "OrganizationNotFoundException",
            "The request was rejected because no organization is associated with your account.",
        )
    })?;
    let delegated = org.delegated_admins.get(acct).is_some_and(|s| s.contains_key(IAM_PRINCIPAL));
    if org.management != acct && !delegated {
        return Err(error(
            "AccountNotManagementOrDelegatedAdministratorException",
            "The request was rejected because the account making the request is not the management account or delegated administrator account for centralized root access.",
        ));
    }
    if !org.service_access.contains_key(IAM_PRINCIPAL) {
        return Err(error(
            "ServiceAccessNotEnabledException",
            "The request was rejected because trusted access is not enabled for IAM in Organizations.",
        ));
    }
    if manage_only && org.management != acct {
        return Err(error(
            "CallerIsNotManagementAccountException",
            "The request was rejected because the account making the request is not the management account for the organization.",
        ));
    }
    Ok(org)
}

/// `OrganizationId` and `EnabledFeatures`.
fn answer(org_id: &str, features: &[String]) -> Result<Output> {
    let mut w = XmlWriter::new();
    w.elem("OrganizationId", org_id);
    w.start("EnabledFeatures");
    for f in features {
        w.elem("member", f);
    }
    w.end();
    xml(w.finish())
}

/// Turn `feature` on or off for the caller's organization and answer with the features.
fn set(core: &Core, ctx: &RequestContext, feature: &str, on: bool) -> Result<Output> {
    let org = organization(core, ctx, on)?;
    let features = core.db.write(account(ctx), |tx| {
        let mut f = tx.get::<Vec<String>>(TABLE, &org.id)?.unwrap_or_default();
        f.retain(|x| x != feature);
        if on {
            f.push(feature.to_string());
        }
        // AWS's order: root credentials management, then root sessions.
        f.sort_by_key(|x| x != ROOT_CREDENTIALS);
        tx.put(TABLE, &org.id, &f)?;
        Ok(f)
    })?;
    answer(&org.id, &features)
}

macro_rules! feature_op {
    ($ty:ident, $name:literal, $feature:expr, $on:expr) => {
        pub struct $ty;

        impl Operation<Core> for $ty {
            const NAME: &'static str = $name;
            type Error = IamError;

            fn parse(input: &Input) -> Result<Self> {
                Args::new(input.query()).finish()?;
                Ok($ty)
            }

            fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
                one(check(Self::NAME, "*"))
            }

            fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
                set(core, ctx, $feature, $on)
            }
        }
    };
}

feature_op!(
    EnableOrganizationsRootCredentialsManagement,
    "EnableOrganizationsRootCredentialsManagement",
    ROOT_CREDENTIALS,
    true
);
feature_op!(
    DisableOrganizationsRootCredentialsManagement,
    "DisableOrganizationsRootCredentialsManagement",
    ROOT_CREDENTIALS,
    false
);
feature_op!(EnableOrganizationsRootSessions, "EnableOrganizationsRootSessions", ROOT_SESSIONS, true);
feature_op!(DisableOrganizationsRootSessions, "DisableOrganizationsRootSessions", ROOT_SESSIONS, false);

pub struct ListOrganizationsFeatures;

impl Operation<Core> for ListOrganizationsFeatures {
    const NAME: &'static str = "ListOrganizationsFeatures";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Args::new(input.query()).finish()?;
        Ok(ListOrganizationsFeatures)
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let org = organization(core, ctx, false)?;
        answer(&org.id, &root_features(&core.db, &org.id)?)
    }
}
