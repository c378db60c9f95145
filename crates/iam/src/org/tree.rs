//! The organization, its OUs and its accounts.

use rampart_service::{op, Entry, Operation};

use super::*;

/// The operations of this family, each listed once.
pub const OPS: &[Entry<OrgService>] = &[
    op::<OrgService, CreateOrganization>(),
    op::<OrgService, DescribeOrganization>(),
    op::<OrgService, DeleteOrganization>(),
    op::<OrgService, ListRoots>(),
    op::<OrgService, CreateOrganizationalUnit>(),
    op::<OrgService, DescribeOrganizationalUnit>(),
    op::<OrgService, UpdateOrganizationalUnit>(),
    op::<OrgService, DeleteOrganizationalUnit>(),
    op::<OrgService, ListOrganizationalUnitsForParent>(),
    op::<OrgService, CreateAccount>(),
    op::<OrgService, DescribeCreateAccountStatus>(),
    op::<OrgService, ListCreateAccountStatus>(),
    op::<OrgService, DescribeAccount>(),
    op::<OrgService, ListAccounts>(),
    op::<OrgService, ListAccountsForParent>(),
    op::<OrgService, ListChildren>(),
    op::<OrgService, ListParents>(),
    op::<OrgService, MoveAccount>(),
    op::<OrgService, RemoveAccountFromOrganization>(),
    op::<OrgService, CloseAccount>(),
    op::<OrgService, CreateGovCloudAccount>(),
];

fn already_in_organization() -> IamError {
    err("AlreadyInOrganizationException", "The AWS account is already a member of an organization.")
}

fn child_not_found() -> IamError {
    err(
        "ChildNotFoundException",
        "We can't find an organizational unit (OU) or AWS account with the ChildId that you specified.",
    )
}

fn duplicate_ou() -> IamError {
    err("DuplicateOrganizationalUnitException", "An OU with the same name already exists.")
}

/// A root or OU ID.
fn parent_id(i: &In<'_>, name: &str) -> Result<String> {
    Ok(i.id(name, |s| is_root_id(s) || is_ou_id(s))?.to_string())
}

pub struct CreateOrganization {
    /// `ALL` (the default) or `CONSOLIDATED_BILLING`.
    feature_set: &'static str,
}

impl Operation<OrgService> for CreateOrganization {
    const NAME: &'static str = "CreateOrganization";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let feature_set = match In::new(input).opt("FeatureSet")? {
            None | Some("ALL") => "ALL",
            Some("CONSOLIDATED_BILLING") => "CONSOLIDATED_BILLING",
            Some(_) => return Err(invalid("INVALID_ENUM", "You specified an invalid value.")),
        };
        Ok(CreateOrganization { feature_set })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        if org_of(&svc.core.db, &ctx.caller.account_id)?.is_some() {
            return Err(already_in_organization());
        }
        one(check(Self::NAME, "*"))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let now = ctx.time.unix_timestamp();
        let account = ctx.caller.account_id.clone();
        let all = self.feature_set == "ALL";
        let doc = svc.core.db.write_untracked(|tx| {
            if org_of(&*tx, &account)?.is_some() {
                return Err(already_in_organization());
            }
            let mut doc = OrgDoc {
                id: new_org_id(),
                management: account.clone(),
                root_id: new_root_id(),
                root_tags: Vec::new(),
                // AWS: an organization with all features is created "with service control
                // policies automatically enabled in the root" (FullAWSAccess attached); one with
                // consolidated billing only has no policy types.
                enabled_types: if all { vec![SCP.to_string()] } else { Vec::new() },
                ous: Default::default(),
                accounts: Default::default(),
                policies: Default::default(),
                attachments: Default::default(),
                create_requests: Vec::new(),
                service_access: Default::default(),
                delegated_admins: Default::default(),
                feature_set: self.feature_set.to_string(),
                resource_policy: None,
                policy_changes: Default::default(),
            };
            let email = known_email(&*tx, &account)?.unwrap_or_else(|| format!("management@{account}.rampart.invalid"));
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
            if all {
                for t in [doc.root_id.clone(), account.clone()] {
                    doc.attachments.entry(t).or_default().push(FULL_AWS_ACCESS.to_string());
                }
            }
            tx.put(tables::ORGS, &doc.id, &doc)?;
            tx.put(tables::MEMBERS, &account, &doc.id)?;
            bump(tx)?;
            Ok(doc)
        })?;
        Ok(Output::Json(json!({"Organization": organization_json(&doc)})))
    }
}

pub struct DescribeOrganization {
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for DescribeOrganization {
    const NAME: &'static str = "DescribeOrganization";
    type Error = IamError;

    fn parse(_: &Input) -> Result<Self> {
        Ok(DescribeOrganization { doc: None })
    }

    /// Any member may describe its organization.
    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let doc = svc.org(ctx)?;
        let c = check(Self::NAME, doc.arn());
        self.doc = Some(doc);
        one(c)
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        Ok(Output::Json(json!({"Organization": organization_json(&loaded(self.doc)?)})))
    }
}

pub struct DeleteOrganization;

impl Operation<OrgService> for DeleteOrganization {
    const NAME: &'static str = "DeleteOrganization";
    type Error = IamError;

    fn parse(_: &Input) -> Result<Self> {
        Ok(DeleteOrganization)
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, svc.managed_org(ctx)?.arn()))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let account = ctx.caller.account_id.clone();
        let now = ctx.time.unix_timestamp();
        svc.core.db.write_untracked(|tx| {
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
            // Its open invitations can no longer be answered.
            super::handshakes::cancel_open(tx, &doc.id, now)?;
            bump(tx)
        })?;
        Ok(Output::Json(json!({})))
    }
}

pub struct ListRoots {
    page: Paging,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for ListRoots {
    const NAME: &'static str = "ListRoots";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(ListRoots { page: Paging::parse(&In::new(input))?, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.doc = Some(svc.readable_org(ctx, Self::NAME)?);
        one(check(Self::NAME, "*"))
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        paged("Roots", vec![root_json(&loaded(self.doc)?)], &self.page)
    }
}

pub struct CreateOrganizationalUnit {
    parent: String,
    name: String,
    tags: Vec<Tag>,
}

impl Operation<OrgService> for CreateOrganizationalUnit {
    const NAME: &'static str = "CreateOrganizationalUnit";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let parent = parent_id(&i, "ParentId")?;
        let name = i.len("Name", 1, 128, true)?.unwrap_or_default().to_string();
        let tags = i.tags("Tags")?;
        Ok(CreateOrganizationalUnit { parent, name, tags })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(svc.parent_check(ctx, Self::NAME, &self.parent)?.0)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let CreateOrganizationalUnit { parent, name, tags } = self;
        let out = svc.update(ctx, |_, doc| {
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
                return Err(duplicate_ou());
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
}

pub struct DescribeOrganizationalUnit {
    id: String,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for DescribeOrganizationalUnit {
    const NAME: &'static str = "DescribeOrganizationalUnit";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let id = In::new(input).id("OrganizationalUnitId", is_ou_id)?.to_string();
        Ok(DescribeOrganizationalUnit { id, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, doc) = svc.ou_check(ctx, Self::NAME, &self.id)?;
        self.doc = Some(doc);
        one(c)
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let ou = doc.ous.get(&self.id).ok_or_else(ou_not_found)?;
        Ok(Output::Json(json!({"OrganizationalUnit": ou_json(&doc, &self.id, ou)})))
    }
}

pub struct UpdateOrganizationalUnit {
    id: String,
    name: Option<String>,
}

impl Operation<OrgService> for UpdateOrganizationalUnit {
    const NAME: &'static str = "UpdateOrganizationalUnit";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let id = i.id("OrganizationalUnitId", is_ou_id)?.to_string();
        let name = i.len("Name", 1, 128, false)?.map(str::to_string);
        Ok(UpdateOrganizationalUnit { id, name })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(svc.ou_check(ctx, Self::NAME, &self.id)?.0)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let UpdateOrganizationalUnit { id, name } = self;
        let out = svc.update(ctx, |_, doc| {
            let parent = doc.ous.get(&id).ok_or_else(ou_not_found)?.parent.clone();
            if let Some(n) = &name {
                if doc.ous.iter().any(|(oid, o)| *oid != id && o.parent == parent && o.name == *n) {
                    return Err(duplicate_ou());
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
}

pub struct DeleteOrganizationalUnit {
    id: String,
}

impl Operation<OrgService> for DeleteOrganizationalUnit {
    const NAME: &'static str = "DeleteOrganizationalUnit";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(DeleteOrganizationalUnit { id: In::new(input).id("OrganizationalUnitId", is_ou_id)?.to_string() })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(svc.ou_check(ctx, Self::NAME, &self.id)?.0)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let id = self.id;
        svc.update(ctx, |_, doc| {
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
        Ok(Output::Json(json!({})))
    }
}

pub struct ListOrganizationalUnitsForParent {
    parent: String,
    page: Paging,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for ListOrganizationalUnitsForParent {
    const NAME: &'static str = "ListOrganizationalUnitsForParent";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let parent = parent_id(&i, "ParentId")?;
        Ok(ListOrganizationalUnitsForParent { parent, page: Paging::parse(&i)?, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, doc) = svc.parent_check(ctx, Self::NAME, &self.parent)?;
        self.doc = Some(doc);
        one(c)
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let mut ous: Vec<_> = doc.ous.iter().filter(|(_, o)| o.parent == self.parent).collect();
        ous.sort_by_key(|(_, o)| o.seq);
        let items = ous.into_iter().map(|(id, o)| ou_json(&doc, id, o)).collect();
        paged("OrganizationalUnits", items, &self.page)
    }
}

pub struct CreateAccount {
    email: String,
    name: String,
    role_name: String,
    tags: Vec<Tag>,
}

impl Operation<OrgService> for CreateAccount {
    const NAME: &'static str = "CreateAccount";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let tags = i.tags("Tags")?;
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
        Ok(CreateAccount { email, name, role_name, tags })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        create_account_check(svc, ctx, Self::NAME, &self.tags)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        self.create(svc, ctx)
    }
}

/// The check of CreateAccount / CreateGovCloudAccount, with the request's tags.
fn create_account_check(svc: &OrgService, ctx: &RequestContext, op: &str, tags: &[Tag]) -> Result<AuthzPlan> {
    svc.managed_org(ctx)?;
    let mut c = check(op, "*");
    for t in tags {
        c = c.with_context(format!("aws:RequestTag/{}", t.key), ContextValue::String(t.value.clone()));
    }
    if !tags.is_empty() {
        c = c.with_context("aws:TagKeys", ContextValue::List(tags.iter().map(|t| t.key.clone()).collect()));
    }
    one(c)
}

impl CreateAccount {
    fn create(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let now = ctx.time.unix_timestamp();
        let CreateAccount { email, name, role_name, tags } = self;
        let status = svc.update(ctx, |tx, doc| {
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
                tx.put(tables::ACCOUNT_EMAILS, &account, &email.to_ascii_lowercase())?;
                status.account_id = Some(account);
            }
            tx.put(tables::CREATE_REQUESTS, &status.id, &doc.id)?;
            doc.create_requests.push(status.clone());
            Ok(status)
        })?;
        Ok(Output::Json(json!({"CreateAccountStatus": status_json(&status)})))
    }
}

/// CreateGovCloudAccount: the same request as CreateAccount. Rampart has no AWS GovCloud (US)
/// partition to pair accounts with, so every organization is one whose management account has no
/// associated GovCloud account, and AWS's answer to it is MASTER_ACCOUNT_NOT_GOVCLOUD_ENABLED.
pub struct CreateGovCloudAccount(CreateAccount);

impl Operation<OrgService> for CreateGovCloudAccount {
    const NAME: &'static str = "CreateGovCloudAccount";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        CreateAccount::parse(input).map(CreateGovCloudAccount)
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        create_account_check(svc, ctx, Self::NAME, &self.0.tags)
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        Err(constraint(
            "MASTER_ACCOUNT_NOT_GOVCLOUD_ENABLED",
            "To complete this operation, the management account must have an associated account in the AWS GovCloud (US-West) Region.",
        ))
    }
}

pub struct DescribeCreateAccountStatus {
    id: String,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for DescribeCreateAccountStatus {
    const NAME: &'static str = "DescribeCreateAccountStatus";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        i.max_results()?;
        let id = i.id("CreateAccountRequestId", |s| {
            s.strip_prefix("car-").is_some_and(|r| (8..=32).contains(&r.len()) && r.bytes().all(lower_digit))
        })?;
        Ok(DescribeCreateAccountStatus { id: id.to_string(), doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.doc = Some(svc.readable_org(ctx, Self::NAME)?);
        one(check(Self::NAME, "*"))
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let s = doc.create_requests.iter().find(|r| r.id == self.id).ok_or_else(|| {
            err(
                "CreateAccountStatusNotFoundException",
                "We can't find an create account request with the CreateAccountRequestId that you specified.",
            )
        })?;
        Ok(Output::Json(json!({"CreateAccountStatus": status_json(s)})))
    }
}

pub struct ListCreateAccountStatus {
    states: Vec<String>,
    page: Paging,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for ListCreateAccountStatus {
    const NAME: &'static str = "ListCreateAccountStatus";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let max = i.max_results()?;
        let states: Vec<String> = match i.0.get("States").and_then(Value::as_array) {
            Some(v) => v.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
            None => Vec::new(),
        };
        for s in &states {
            if !["IN_PROGRESS", "SUCCEEDED", "FAILED"].contains(&s.as_str()) {
                return Err(invalid("INVALID_ENUM", "You specified an invalid value."));
            }
        }
        Ok(ListCreateAccountStatus { states, page: Paging { max, start: next_token(&i)? }, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.doc = Some(svc.readable_org(ctx, Self::NAME)?);
        one(check(Self::NAME, "*"))
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let items = doc
            .create_requests
            .iter()
            .filter(|r| self.states.is_empty() || self.states.contains(&r.state))
            .map(status_json)
            .collect();
        paged("CreateAccountStatuses", items, &self.page)
    }
}

pub struct DescribeAccount {
    id: String,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for DescribeAccount {
    const NAME: &'static str = "DescribeAccount";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(DescribeAccount { id: In::new(input).id("AccountId", is_account_id)?.to_string(), doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, doc) = svc.account_check(ctx, Self::NAME, &self.id)?;
        self.doc = Some(doc);
        one(c)
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let a = doc.accounts.get(&self.id).ok_or_else(account_not_found)?;
        Ok(Output::Json(json!({"Account": account_json(&doc, &self.id, a)})))
    }
}

pub struct ListAccounts {
    page: Paging,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for ListAccounts {
    const NAME: &'static str = "ListAccounts";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(ListAccounts { page: Paging::parse(&In::new(input))?, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.doc = Some(svc.readable_org(ctx, Self::NAME)?);
        one(check(Self::NAME, "*"))
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let items = doc.accounts.iter().map(|(id, a)| account_json(&doc, id, a)).collect();
        paged("Accounts", items, &self.page)
    }
}

pub struct ListAccountsForParent {
    parent: String,
    page: Paging,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for ListAccountsForParent {
    const NAME: &'static str = "ListAccountsForParent";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let parent = parent_id(&i, "ParentId")?;
        Ok(ListAccountsForParent { parent, page: Paging::parse(&i)?, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, doc) = svc.parent_check(ctx, Self::NAME, &self.parent)?;
        self.doc = Some(doc);
        one(c)
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let items = doc
            .accounts
            .iter()
            .filter(|(_, a)| a.parent == self.parent)
            .map(|(id, a)| account_json(&doc, id, a))
            .collect();
        paged("Accounts", items, &self.page)
    }
}

pub struct ListChildren {
    parent: String,
    /// `ChildType`: `ACCOUNT` or `ORGANIZATIONAL_UNIT`.
    child_type: &'static str,
    page: Paging,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for ListChildren {
    const NAME: &'static str = "ListChildren";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let parent = parent_id(&i, "ParentId")?;
        let child_type = match i.req("ChildType")? {
            "ACCOUNT" => "ACCOUNT",
            "ORGANIZATIONAL_UNIT" => "ORGANIZATIONAL_UNIT",
            _ => return Err(invalid("INVALID_ENUM", "You specified an invalid value.")),
        };
        Ok(ListChildren { parent, child_type, page: Paging::parse(&i)?, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let doc = svc.readable_org(ctx, Self::NAME)?;
        if !doc.target_exists(&self.parent) {
            return Err(parent_not_found());
        }
        let c = check(Self::NAME, doc.target_arn(&self.parent));
        self.doc = Some(doc);
        one(c)
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let (parent, ty) = (self.parent.as_str(), self.child_type);
        let items: Vec<Value> = if ty == "ACCOUNT" {
            doc.accounts
                .iter()
                .filter(|(_, a)| a.parent == parent)
                .map(|(id, _)| json!({"Id": id, "Type": ty}))
                .collect()
        } else {
            doc.ous.iter().filter(|(_, o)| o.parent == parent).map(|(id, _)| json!({"Id": id, "Type": ty})).collect()
        };
        paged("Children", items, &self.page)
    }
}

pub struct ListParents {
    child: String,
    page: Paging,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for ListParents {
    const NAME: &'static str = "ListParents";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let child = i.id("ChildId", |s| is_account_id(s) || is_ou_id(s))?.to_string();
        Ok(ListParents { child, page: Paging::parse(&i)?, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let doc = svc.readable_org(ctx, Self::NAME)?;
        if !doc.ous.contains_key(&self.child) && !doc.accounts.contains_key(&self.child) {
            return Err(child_not_found());
        }
        let c = check(Self::NAME, doc.target_arn(&self.child));
        self.doc = Some(doc);
        one(c)
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let parent = doc.parent_of(&self.child).ok_or_else(child_not_found)?;
        let ty = if parent == doc.root_id { "ROOT" } else { "ORGANIZATIONAL_UNIT" };
        paged("Parents", vec![json!({"Id": parent, "Type": ty})], &self.page)
    }
}

pub struct MoveAccount {
    account: String,
    source: String,
    dest: String,
}

impl Operation<OrgService> for MoveAccount {
    const NAME: &'static str = "MoveAccount";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let account = i.id("AccountId", is_account_id)?.to_string();
        let source = parent_id(&i, "SourceParentId")?;
        let dest = parent_id(&i, "DestinationParentId")?;
        Ok(MoveAccount { account, source, dest })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(svc.account_check(ctx, Self::NAME, &self.account)?.0)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let MoveAccount { account, source, dest } = self;
        let now = ctx.time.unix_timestamp();
        svc.update(ctx, |_, doc| {
            for ty in doc.enabled_types.clone() {
                doc.policy_changes.insert(ty, now);
            }
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
        Ok(Output::Json(json!({})))
    }
}

pub struct RemoveAccountFromOrganization {
    account: String,
}

impl Operation<OrgService> for RemoveAccountFromOrganization {
    const NAME: &'static str = "RemoveAccountFromOrganization";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(RemoveAccountFromOrganization { account: In::new(input).id("AccountId", is_account_id)?.to_string() })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(svc.account_check(ctx, Self::NAME, &self.account)?.0)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let account = self.account;
        let org_id = svc.update(ctx, |_, doc| {
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
        svc.core.db.write_untracked(|tx| {
            if tx.get::<String>(tables::MEMBERS, &account)?.as_deref() == Some(org_id.as_str()) {
                tx.delete(tables::MEMBERS, &account)?;
            }
            bump(tx)
        })?;
        Ok(Output::Json(json!({})))
    }
}

pub struct CloseAccount {
    account: String,
}

impl Operation<OrgService> for CloseAccount {
    const NAME: &'static str = "CloseAccount";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(CloseAccount { account: In::new(input).id("AccountId", is_account_id)?.to_string() })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(svc.account_check(ctx, Self::NAME, &self.account)?.0)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let account = self.account;
        svc.update(ctx, |_, doc| {
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
        Ok(Output::Json(json!({})))
    }
}
