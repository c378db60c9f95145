//! Tags of the organization's resources, trusted access of AWS services, delegated administrators.

use rampart_service::{op, Entry, Operation};

use super::*;

/// The operations of this family, each listed once.
pub const OPS: &[Entry<OrgService>] = &[
    op::<OrgService, TagResource>(),
    op::<OrgService, UntagResource>(),
    op::<OrgService, ListTagsForResource>(),
    op::<OrgService, EnableAwsServiceAccess>(),
    op::<OrgService, DisableAwsServiceAccess>(),
    op::<OrgService, ListAwsServiceAccessForOrganization>(),
    op::<OrgService, RegisterDelegatedAdministrator>(),
    op::<OrgService, DeregisterDelegatedAdministrator>(),
    op::<OrgService, ListDelegatedAdministrators>(),
    op::<OrgService, ListDelegatedServicesForAccount>(),
];

/// A root, OU, account or policy ID.
fn resource_id(i: &In<'_>) -> Result<String> {
    Ok(i.id("ResourceId", |s| is_root_id(s) || is_ou_id(s) || is_account_id(s) || is_policy_id(s))?.to_string())
}

/// `organizations:{op}` on a taggable resource (a customer policy or a target), with the
/// organization.
fn resource_check(svc: &OrgService, ctx: &RequestContext, op: &str, id: &str) -> Result<(AuthzCheck, OrgDoc)> {
    let doc = svc.readable_org(ctx, op)?;
    let arn = if is_policy_id(id) {
        match doc.policies.get(id) {
            Some(p) => doc.policy_arn(id, &p.ty),
            None => return Err(target_not_found()),
        }
    } else {
        target_resource(&doc, id)?
    };
    Ok((check(op, arn), doc))
}

/// Change a resource's tags: add or overwrite `tags`, then remove `keys`.
fn retag(svc: &OrgService, ctx: &RequestContext, id: &str, tags: Vec<Tag>, keys: &[String]) -> Result<Output> {
    svc.update(ctx, |_, doc| {
        let list = tags_of(doc, id).ok_or_else(target_not_found)?;
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
    Ok(Output::Json(json!({})))
}

pub struct TagResource {
    id: String,
    tags: Vec<Tag>,
}

impl Operation<OrgService> for TagResource {
    const NAME: &'static str = "TagResource";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let id = resource_id(&i)?;
        Ok(TagResource { id, tags: i.tags("Tags")? })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut c = resource_check(svc, ctx, Self::NAME, &self.id)?.0;
        for t in &self.tags {
            c = c.with_context(format!("aws:RequestTag/{}", t.key), ContextValue::String(t.value.clone()));
        }
        one(c.with_context("aws:TagKeys", ContextValue::List(self.tags.iter().map(|t| t.key.clone()).collect())))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        retag(svc, ctx, &self.id, self.tags, &[])
    }
}

pub struct UntagResource {
    id: String,
    keys: Vec<String>,
}

impl Operation<OrgService> for UntagResource {
    const NAME: &'static str = "UntagResource";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let id = resource_id(&i)?;
        Ok(UntagResource { id, keys: i.tag_keys()? })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let c = resource_check(svc, ctx, Self::NAME, &self.id)?.0;
        one(c.with_context("aws:TagKeys", ContextValue::List(self.keys.clone())))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        retag(svc, ctx, &self.id, Vec::new(), &self.keys)
    }
}

pub struct ListTagsForResource {
    id: String,
    /// Pages of AWS's default size: `MaxResults` is not a member of this operation.
    page: Paging,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for ListTagsForResource {
    const NAME: &'static str = "ListTagsForResource";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let id = resource_id(&i)?;
        Ok(ListTagsForResource { id, page: Paging { max: 20, start: next_token(&i)? }, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, doc) = resource_check(svc, ctx, Self::NAME, &self.id)?;
        self.doc = Some(doc);
        one(c)
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let mut doc = loaded(self.doc)?;
        let tags = tags_of(&mut doc, &self.id).ok_or_else(target_not_found)?;
        let (items, next) = page(tags, &self.page)?;
        let mut out = json!({"Tags": tags_json(&items)});
        if let Some(n) = next {
            put(&mut out, "NextToken", json!(n));
        }
        Ok(Output::Json(out))
    }
}

pub struct EnableAwsServiceAccess {
    sp: String,
}

impl Operation<OrgService> for EnableAwsServiceAccess {
    const NAME: &'static str = "EnableAWSServiceAccess";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(EnableAwsServiceAccess { sp: service_principal_arg(&In::new(input), "ServicePrincipal")? })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        svc.managed_org(ctx)?;
        one(check(Self::NAME, "*"))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let now = ctx.time.unix_timestamp();
        svc.update(ctx, |_, doc| {
            doc.service_access.entry(self.sp).or_insert(now);
            Ok(())
        })?;
        Ok(Output::Json(json!({})))
    }
}

pub struct DisableAwsServiceAccess {
    sp: String,
}

impl Operation<OrgService> for DisableAwsServiceAccess {
    const NAME: &'static str = "DisableAWSServiceAccess";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(DisableAwsServiceAccess { sp: service_principal_arg(&In::new(input), "ServicePrincipal")? })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        svc.managed_org(ctx)?;
        one(check(Self::NAME, "*"))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        svc.update(ctx, |_, doc| {
            doc.service_access.remove(&self.sp);
            Ok(())
        })?;
        Ok(Output::Json(json!({})))
    }
}

pub struct ListAwsServiceAccessForOrganization {
    page: Paging,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for ListAwsServiceAccessForOrganization {
    const NAME: &'static str = "ListAWSServiceAccessForOrganization";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(ListAwsServiceAccessForOrganization { page: Paging::parse(&In::new(input))?, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.doc = Some(svc.readable_org(ctx, Self::NAME)?);
        one(check(Self::NAME, "*"))
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let items =
            doc.service_access.iter().map(|(sp, at)| json!({"ServicePrincipal": sp, "DateEnabled": at})).collect();
        paged("EnabledServicePrincipals", items, &self.page)
    }
}

/// The member account and service principal of Register/DeregisterDelegatedAdministrator.
fn delegation_args(input: &Input) -> Result<(String, String)> {
    let i = In::new(input);
    let account = i.id("AccountId", is_account_id)?.to_string();
    Ok((account, service_principal_arg(&i, "ServicePrincipal")?))
}

/// A delegated administrator must be a member account other than the management account.
fn delegable(doc: &OrgDoc, account: &str) -> Result<()> {
    if account == doc.management {
        return Err(cannot_register_management());
    }
    if !doc.accounts.contains_key(account) {
        return Err(account_not_found());
    }
    Ok(())
}

pub struct RegisterDelegatedAdministrator {
    account: String,
    sp: String,
}

impl Operation<OrgService> for RegisterDelegatedAdministrator {
    const NAME: &'static str = "RegisterDelegatedAdministrator";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (account, sp) = delegation_args(input)?;
        Ok(RegisterDelegatedAdministrator { account, sp })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(svc.account_check(ctx, Self::NAME, &self.account)?.0)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let now = ctx.time.unix_timestamp();
        let RegisterDelegatedAdministrator { account, sp } = self;
        svc.update(ctx, |_, doc| {
            delegable(doc, &account)?;
            let services = doc.delegated_admins.entry(account).or_default();
            if services.contains_key(&sp) {
                return Err(err(
                    "AccountAlreadyRegisteredException",
                    "The provided account is already a delegated administrator for your organization.",
                ));
            }
            services.insert(sp, now);
            Ok(())
        })?;
        Ok(Output::Json(json!({})))
    }
}

pub struct DeregisterDelegatedAdministrator {
    account: String,
    sp: String,
}

impl Operation<OrgService> for DeregisterDelegatedAdministrator {
    const NAME: &'static str = "DeregisterDelegatedAdministrator";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (account, sp) = delegation_args(input)?;
        Ok(DeregisterDelegatedAdministrator { account, sp })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(svc.account_check(ctx, Self::NAME, &self.account)?.0)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let DeregisterDelegatedAdministrator { account, sp } = self;
        svc.update(ctx, |_, doc| {
            delegable(doc, &account)?;
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
            Ok(())
        })?;
        Ok(Output::Json(json!({})))
    }
}

pub struct ListDelegatedAdministrators {
    sp: Option<String>,
    page: Paging,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for ListDelegatedAdministrators {
    const NAME: &'static str = "ListDelegatedAdministrators";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let sp = match i.opt("ServicePrincipal")? {
            Some(_) => Some(service_principal_arg(&i, "ServicePrincipal")?),
            None => None,
        };
        Ok(ListDelegatedAdministrators { sp, page: Paging::parse(&i)?, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.doc = Some(svc.readable_org(ctx, Self::NAME)?);
        one(check(Self::NAME, "*"))
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let wanted = self.sp.as_deref();
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
        paged("DelegatedAdministrators", items, &self.page)
    }
}

pub struct ListDelegatedServicesForAccount {
    account: String,
    page: Paging,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for ListDelegatedServicesForAccount {
    const NAME: &'static str = "ListDelegatedServicesForAccount";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let account = i.id("AccountId", is_account_id)?.to_string();
        Ok(ListDelegatedServicesForAccount { account, page: Paging::parse(&i)?, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, doc) = svc.account_check(ctx, Self::NAME, &self.account)?;
        self.doc = Some(doc);
        one(c)
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let services = doc.delegated_admins.get(&self.account).ok_or_else(account_not_registered)?;
        let items =
            services.iter().map(|(sp, at)| json!({"ServicePrincipal": sp, "DelegationEnabledDate": at})).collect();
        paged("DelegatedServices", items, &self.page)
    }
}
