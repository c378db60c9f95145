//! Account-level operations: GetAccountSummary, account aliases, and the STS global endpoint
//! token version (SetSecurityTokenServicePreferences).

use rampart_protocol::xml::XmlWriter;
use rampart_service::{op, AuthzPlan, Entry, Input, Operation, Output, RequestContext};

use super::{account, check, empty, one, xml, Core};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{tables, AccountRec, AttachmentRec};
use crate::validate::{self as v, Args};

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, GetAccountSummary>(),
    op::<Core, CreateAccountAlias>(),
    op::<Core, DeleteAccountAlias>(),
    op::<Core, ListAccountAliases>(),
    op::<Core, SetSecurityTokenServicePreferences>(),
];

/// `{account}` → the global endpoint token version (1 or 2) SetSecurityTokenServicePreferences
/// chose; absent = 1, AWS's default.
pub const STS_PREFERENCES: &str = "iam_sts_preferences";

/// SetSecurityTokenServicePreferences: the account's global endpoint token version, shown by
/// GetAccountSummary's `GlobalEndpointTokenVersion`. Rampart's session tokens are valid in every
/// Region whichever version is chosen (a Rampart server has no opt-in Regions).
pub struct SetSecurityTokenServicePreferences {
    version: u8,
}

impl Operation<Core> for SetSecurityTokenServicePreferences {
    const NAME: &'static str = "SetSecurityTokenServicePreferences";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let v = a.req_enum("GlobalEndpointTokenVersion", &["v1Token", "v2Token"]);
        let version = if v == "v2Token" { 2 } else { 1 };
        a.finish()?;
        Ok(SetSecurityTokenServicePreferences { version })
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        core.db.write(acct, |tx| tx.put(STS_PREFERENCES, acct, &self.version))?;
        empty()
    }
}

pub struct GetAccountSummary;

impl Operation<Core> for GetAccountSummary {
    const NAME: &'static str = "GetAccountSummary";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Args::new(input.query()).finish()?;
        Ok(GetAccountSummary)
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        summary(core, account(ctx))
    }
}

pub struct CreateAccountAlias {
    alias: String,
}

impl Operation<Core> for CreateAccountAlias {
    const NAME: &'static str = "CreateAccountAlias";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let alias = a.req("AccountAlias", &v::ACCOUNT_ALIAS).to_string();
        a.finish()?;
        Ok(CreateAccountAlias { alias })
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let alias = self.alias.as_str();
        core.db.write(acct, |tx| {
            if let Some(owner) = tx.get::<String>(tables::ALIASES, alias)? {
                if owner == acct {
                    return Ok(());
                }
                return Err(IamError::AlreadyExists(format!("The account alias {alias} already exists.")));
            }
            let mut a = tx
                .get::<AccountRec>(tables::ACCOUNTS, acct)?
                .ok_or_else(|| IamError::Internal(format!("account {acct} is not bootstrapped")))?;
            // An account has one alias: a new one replaces it.
            if let Some(old) = a.alias.replace(alias.to_string()) {
                tx.delete(tables::ALIASES, &old)?;
            }
            tx.put(tables::ALIASES, alias, &acct.to_string())?;
            tx.put(tables::ACCOUNTS, acct, &a)
        })?;
        empty()
    }
}

pub struct DeleteAccountAlias {
    alias: String,
}

impl Operation<Core> for DeleteAccountAlias {
    const NAME: &'static str = "DeleteAccountAlias";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let alias = a.req("AccountAlias", &v::ACCOUNT_ALIAS).to_string();
        a.finish()?;
        Ok(DeleteAccountAlias { alias })
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let alias = self.alias.as_str();
        core.db.write(acct, |tx| {
            let mut a = tx.get::<AccountRec>(tables::ACCOUNTS, acct)?.filter(|a| a.alias.as_deref() == Some(alias));
            let Some(a) = a.as_mut() else {
                return Err(IamError::NoSuchEntity(format!("The account alias {alias} cannot be found.")));
            };
            a.alias = None;
            tx.delete(tables::ALIASES, alias)?;
            tx.put(tables::ACCOUNTS, acct, a)
        })?;
        empty()
    }
}

/// ListAccountAliases: an account has at most one alias, so paging is validated but never needed.
pub struct ListAccountAliases;

impl Operation<Core> for ListAccountAliases {
    const NAME: &'static str = "ListAccountAliases";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        a.paging();
        a.finish()?;
        Ok(ListAccountAliases)
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let alias = core.db.get::<AccountRec>(tables::ACCOUNTS, account(ctx))?.and_then(|a| a.alias);
        let mut w = XmlWriter::new();
        w.start("AccountAliases");
        if let Some(a) = &alias {
            w.elem("member", a);
        }
        w.end();
        w.bool("IsTruncated", false);
        xml(w.finish())
    }
}

fn summary(core: &Core, acct: &str) -> Result<Output> {
    let prefix = format!("{acct}/");
    let count = |t: &str| core.db.count(t, &prefix);
    let account = core.db.get::<AccountRec>(tables::ACCOUNTS, acct)?;
    let root_keys = account.map(|a| a.root_keys.len()).unwrap_or(0);
    let mut in_use = std::collections::HashSet::new();
    for t in [tables::ATTACHMENTS, tables::BOUNDARY_USES] {
        for (k, _) in core.db.scan::<AttachmentRec>(t, &format!("{acct}|"))? {
            if let Some(arn) = k.split('|').nth(1) {
                in_use.insert(arn.to_string());
            }
        }
    }
    let token_version = core.db.get::<u8>(STS_PREFERENCES, acct)?.unwrap_or(1);
    let devices = super::mfa::devices(core, acct)?;
    let devices_in_use = devices.iter().filter(|d| d.user.is_some()).count();
    let entries: Vec<(&str, usize)> = vec![
        ("Users", count(tables::USERS)?),
        ("UsersQuota", 5000),
        ("Groups", count(tables::GROUPS)?),
        ("GroupsQuota", 300),
        ("Roles", count(tables::ROLES)?),
        ("RolesQuota", 1000),
        ("Policies", count(tables::POLICIES)?),
        ("PoliciesQuota", 1500),
        ("PolicyVersionsInUse", in_use.len()),
        ("PolicyVersionsInUseQuota", 10000),
        ("InstanceProfiles", count(tables::PROFILES)?),
        ("InstanceProfilesQuota", 1000),
        ("ServerCertificates", count(super::server_certs::TABLE)?),
        ("ServerCertificatesQuota", 20),
        ("Providers", count(super::saml_providers::TABLE)? + count(crate::oidc::PROVIDERS)?),
        ("MFADevices", devices.len()),
        ("MFADevicesInUse", devices_in_use),
        ("AccountMFAEnabled", 0),
        ("AccountAccessKeysPresent", usize::from(root_keys > 0)),
        ("AccountPasswordPresent", 0),
        (
            "AccountSigningCertificatesPresent",
            usize::from(!super::signing_certs::owner_certs(&core.db, acct, None)?.is_empty()),
        ),
        ("AccessKeysPerUserQuota", 2),
        ("SigningCertificatesPerUserQuota", 2),
        ("GroupsPerUserQuota", 10),
        ("AttachedPoliciesPerUserQuota", 10),
        ("AttachedPoliciesPerGroupQuota", 10),
        ("AttachedPoliciesPerRoleQuota", 10),
        ("UserPolicySizeQuota", 2048),
        ("GroupPolicySizeQuota", 5120),
        ("RolePolicySizeQuota", 10240),
        ("PolicySizeQuota", 6144),
        ("VersionsPerPolicyQuota", 5),
        ("AssumeRolePolicySizeQuota", 2048),
        ("GlobalEndpointTokenVersion", usize::from(token_version)),
    ];
    let mut w = XmlWriter::new();
    w.start("SummaryMap");
    for (k, n) in entries {
        w.start("entry").elem("key", k).num("value", n).end();
    }
    w.end();
    xml(w.finish())
}
