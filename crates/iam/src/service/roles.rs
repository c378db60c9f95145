//! Roles: CreateRole, GetRole, UpdateRole, UpdateRoleDescription, UpdateAssumeRolePolicy,
//! DeleteRole, ListRoles, role tags, role boundaries.

use rampart_policy::{ContextValue, PolicyType};
use rampart_protocol::xml::XmlWriter;
use rampart_service::{op, AuthzCheck, AuthzPlan, Entry, Input, Operation, Output, RequestContext};

use super::index::{self, EntityRef};
use super::users::{require_boundary, tag_page};
use super::xml::RoleView;
use super::{
    account, check, check_new_tags, empty, merge_tags, one, remove_tags, request_tags, resource_tags, xml, Core,
    PathPage,
};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{EntityKind, RoleRec, Tag};
use crate::util::{iam_arn, now, policy_size, unique_id};
use crate::validate::{self as v, Args};

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, CreateRole>(),
    op::<Core, GetRole>(),
    op::<Core, UpdateRole>(),
    op::<Core, UpdateRoleDescription>(),
    op::<Core, UpdateAssumeRolePolicy>(),
    op::<Core, DeleteRole>(),
    op::<Core, ListRoles>(),
    op::<Core, TagRole>(),
    op::<Core, UntagRole>(),
    op::<Core, ListRoleTags>(),
    op::<Core, PutRolePermissionsBoundary>(),
    op::<Core, DeleteRolePermissionsBoundary>(),
];

const MAX_ROLES: usize = 1000;
/// AWS's default quota on trust policy size (non-whitespace characters).
pub const MAX_TRUST_SIZE: usize = 2048;

pub fn no_such_role(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The role with name {name} cannot be found."))
}

pub fn require(tx: &impl Lookup, account: &str, name: &str) -> Result<RoleRec> {
    tx.entity::<RoleRec>(account, name)?.ok_or_else(|| no_such_role(name))
}

/// `iam:{action}` on the named role (its real ARN when it exists), with its tags as context.
pub fn role_check(
    core: &Core,
    ctx: &RequestContext,
    action: &str,
    name: &str,
) -> Result<(AuthzCheck, Option<RoleRec>)> {
    let acct = account(ctx);
    let role = core.db.entity::<RoleRec>(acct, name)?;
    let c = match &role {
        Some(r) => resource_tags(check(action, r.arn(acct)), &r.tags, true),
        None => check(action, iam_arn(acct, "role", "/", name)),
    };
    Ok((c, role))
}

/// The role's permissions boundary as `iam:PermissionsBoundary` (AWS puts it on role-changing actions).
pub fn with_boundary(c: AuthzCheck, role: Option<&RoleRec>) -> AuthzCheck {
    match role.and_then(|r| r.boundary.clone()) {
        Some(b) => c.with_context("iam:PermissionsBoundary", ContextValue::String(b)),
        None => c,
    }
}

fn check_trust(core: &Core, doc: &str) -> Result<()> {
    core.validate_policy(doc, PolicyType::Trust)?;
    if policy_size(doc) > MAX_TRUST_SIZE {
        return Err(IamError::quota("ACLSizePerRole", MAX_TRUST_SIZE));
    }
    Ok(())
}

pub struct CreateRole {
    name: String,
    path: String,
    trust: String,
    description: Option<String>,
    max_session: i64,
    boundary: Option<String>,
    tags: Vec<Tag>,
}

impl Operation<Core> for CreateRole {
    const NAME: &'static str = "CreateRole";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let path = a.opt("Path", &v::PATH).unwrap_or("/").to_string();
        let name = a.req("RoleName", &v::ROLE_NAME).to_string();
        let trust = a.req("AssumeRolePolicyDocument", &v::DOCUMENT).to_string();
        let description = a.opt("Description", &v::ROLE_DESCRIPTION).map(str::to_string);
        let max_session = a.int("MaxSessionDuration", 3600, 43200).unwrap_or(3600);
        let boundary = a.opt("PermissionsBoundary", &v::ARN).map(str::to_string);
        let tags = a.tags("Tags");
        a.finish()?;
        Ok(CreateRole { name, path, trust, description, max_session, boundary, tags })
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let arn = iam_arn(account(ctx), "role", &self.path, &self.name);
        let mut ch = request_tags(check(Self::NAME, arn), &self.tags);
        if let Some(b) = &self.boundary {
            ch = ch.with_context("iam:PermissionsBoundary", ContextValue::String(b.clone()));
        }
        one(ch)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let c = self;
        check_new_tags(&c.tags)?;
        check_trust(core, &c.trust)?;
        if let Some(b) = &c.boundary {
            require_boundary(core, acct, b)?;
        }
        let role = core.db.write(acct, |tx| {
            if tx.entity::<RoleRec>(acct, &c.name)?.is_some() {
                return Err(IamError::AlreadyExists(format!("Role with name {} already exists.", c.name)));
            }
            if tx.count_entities::<RoleRec>(acct)? >= MAX_ROLES {
                return Err(IamError::quota("RolesPerAccount", MAX_ROLES));
            }
            let role = RoleRec {
                name: c.name.clone(),
                id: unique_id("AROA"),
                path: c.path.clone(),
                created: now(),
                trust: c.trust.clone(),
                description: c.description.clone(),
                max_session: c.max_session,
                tags: c.tags.clone(),
                boundary: c.boundary.clone(),
                inline: Default::default(),
                attached: Vec::new(),
                instance_profiles: Vec::new(),
                last_used: None,
            };
            if let Some(b) = c.boundary.as_deref() {
                let e = EntityRef { kind: EntityKind::Role, name: &role.name, id: &role.id, path: &role.path };
                index::set_boundary(tx, acct, None, Some(b), &e)?;
            }
            tx.put_entity(acct, &c.name, &role)?;
            Ok(role)
        })?;
        role_xml(acct, "Role", &role, RoleView::Create)
    }
}

/// The role a call names, alone: `RoleName`.
fn role_name_only(input: &Input) -> Result<String> {
    let mut a = Args::new(input.query());
    let name = a.req("RoleName", &v::ROLE_NAME).to_string();
    a.finish()?;
    Ok(name)
}

pub struct GetRole {
    name: String,
    /// The role the plan read, which the answer shows.
    role: Option<RoleRec>,
}

impl Operation<Core> for GetRole {
    const NAME: &'static str = "GetRole";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(GetRole { name: role_name_only(input)?, role: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, role) = role_check(core, ctx, Self::NAME, &self.name)?;
        self.role = role;
        one(c)
    }

    fn run(self, _: &Core, ctx: &RequestContext) -> Result<Output> {
        let r = self.role.ok_or_else(|| no_such_role(&self.name))?;
        role_xml(account(ctx), "Role", &r, RoleView::Get)
    }
}

pub struct UpdateRole {
    name: String,
    description: Option<String>,
    max_session: Option<i64>,
}

impl Operation<Core> for UpdateRole {
    const NAME: &'static str = "UpdateRole";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("RoleName", &v::ROLE_NAME).to_string();
        let description = a.opt("Description", &v::ROLE_DESCRIPTION).map(str::to_string);
        let max_session = a.int("MaxSessionDuration", 3600, 43200);
        a.finish()?;
        Ok(UpdateRole { name, description, max_session })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(role_check(core, ctx, Self::NAME, &self.name)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let UpdateRole { name, description, max_session } = self;
        modify(core, account(ctx), &name, |r| {
            if let Some(d) = description {
                r.description = Some(d);
            }
            if let Some(m) = max_session {
                r.max_session = m;
            }
            Ok(())
        })?;
        xml(String::new())
    }
}

pub struct UpdateRoleDescription {
    name: String,
    description: String,
}

impl Operation<Core> for UpdateRoleDescription {
    const NAME: &'static str = "UpdateRoleDescription";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("RoleName", &v::ROLE_NAME).to_string();
        let description = a.req("Description", &v::ROLE_DESCRIPTION).to_string();
        a.finish()?;
        Ok(UpdateRoleDescription { name, description })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(role_check(core, ctx, Self::NAME, &self.name)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let UpdateRoleDescription { name, description } = self;
        let r = modify(core, acct, &name, |r| {
            r.description = Some(description);
            Ok(())
        })?;
        role_xml(acct, "Role", &r, RoleView::UpdateDescription)
    }
}

pub struct UpdateAssumeRolePolicy {
    name: String,
    doc: String,
    /// The role the plan read: a missing role is reported before a malformed document.
    role: Option<RoleRec>,
}

impl Operation<Core> for UpdateAssumeRolePolicy {
    const NAME: &'static str = "UpdateAssumeRolePolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("RoleName", &v::ROLE_NAME).to_string();
        let doc = a.req("PolicyDocument", &v::DOCUMENT).to_string();
        a.finish()?;
        Ok(UpdateAssumeRolePolicy { name, doc, role: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, role) = role_check(core, ctx, Self::NAME, &self.name)?;
        self.role = role;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let UpdateAssumeRolePolicy { name, doc, role } = self;
        role.ok_or_else(|| no_such_role(&name))?;
        check_trust(core, &doc)?;
        modify(core, account(ctx), &name, |r| {
            r.trust = doc;
            Ok(())
        })?;
        empty()
    }
}

pub struct DeleteRole {
    name: String,
}

impl Operation<Core> for DeleteRole {
    const NAME: &'static str = "DeleteRole";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(DeleteRole { name: role_name_only(input)? })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(role_check(core, ctx, Self::NAME, &self.name)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        core.db.write(acct, |tx| {
            let r = require(tx, acct, &self.name)?;
            if let Some(e) = super::service_linked::protected(&r) {
                return Err(e);
            }
            let conflict = |m: &str| Err(IamError::DeleteConflict(format!("Cannot delete entity, must {m} first.")));
            if !r.instance_profiles.is_empty() {
                return conflict("remove roles from instance profile");
            }
            if !r.inline.is_empty() {
                return conflict("delete policies");
            }
            if !r.attached.is_empty() {
                return conflict("detach all policies");
            }
            if let Some(b) = &r.boundary {
                let e = EntityRef { kind: EntityKind::Role, name: &r.name, id: &r.id, path: &r.path };
                index::set_boundary(tx, acct, Some(b), None, &e)?;
            }
            tx.delete_entity::<RoleRec>(acct, &r.name)?;
            Ok(())
        })?;
        empty()
    }
}

pub struct ListRoles(PathPage);

impl Operation<Core> for ListRoles {
    const NAME: &'static str = "ListRoles";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        PathPage::parse(input).map(ListRoles)
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, self.0.resource(ctx, "role")))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let page = self.0.page(core.db.entities::<RoleRec>(acct)?, |r| &r.path, |r| &r.name);
        let mut w = XmlWriter::new();
        w.start("Roles");
        for r in &page.items {
            super::xml::role(&mut w, "member", acct, r, false);
        }
        w.end();
        super::xml::truncation(&mut w, &page.next);
        xml(w.finish())
    }
}

pub struct ListRoleTags {
    name: String,
    marker: Option<String>,
    max: usize,
    /// The role the plan read.
    role: Option<RoleRec>,
}

impl Operation<Core> for ListRoleTags {
    const NAME: &'static str = "ListRoleTags";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("RoleName", &v::ROLE_NAME).to_string();
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListRoleTags { name, marker, max, role: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, role) = role_check(core, ctx, Self::NAME, &self.name)?;
        self.role = role;
        one(c)
    }

    fn run(self, _: &Core, _: &RequestContext) -> Result<Output> {
        let r = self.role.ok_or_else(|| no_such_role(&self.name))?;
        tag_page(r.tags, self.marker.as_deref(), self.max)
    }
}

pub struct TagRole {
    name: String,
    tags: Vec<Tag>,
}

impl Operation<Core> for TagRole {
    const NAME: &'static str = "TagRole";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("RoleName", &v::ROLE_NAME).to_string();
        let tags = a.required_tags("Tags");
        a.finish()?;
        Ok(TagRole { name, tags })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut c = role_check(core, ctx, Self::NAME, &self.name)?.0;
        c.context.extend(request_tags(AuthzCheck::new("", ""), &self.tags).context);
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        check_new_tags(&self.tags)?;
        let TagRole { name, tags } = self;
        modify(core, account(ctx), &name, |r| merge_tags(&mut r.tags, tags))?;
        empty()
    }
}

pub struct UntagRole {
    name: String,
    keys: Vec<String>,
}

impl Operation<Core> for UntagRole {
    const NAME: &'static str = "UntagRole";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("RoleName", &v::ROLE_NAME).to_string();
        let keys = a.tag_keys("TagKeys").into_iter().map(str::to_string).collect();
        a.finish()?;
        Ok(UntagRole { name, keys })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let c = role_check(core, ctx, Self::NAME, &self.name)?.0;
        one(c.with_context("aws:TagKeys", ContextValue::List(self.keys.clone())))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        modify(core, account(ctx), &self.name, |r| {
            remove_tags(&mut r.tags, &keys);
            Ok(())
        })?;
        empty()
    }
}

pub struct PutRolePermissionsBoundary {
    name: String,
    arn: String,
}

impl Operation<Core> for PutRolePermissionsBoundary {
    const NAME: &'static str = "PutRolePermissionsBoundary";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("RoleName", &v::ROLE_NAME).to_string();
        let arn = a.req("PermissionsBoundary", &v::ARN).to_string();
        a.finish()?;
        Ok(PutRolePermissionsBoundary { name, arn })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let c = role_check(core, ctx, Self::NAME, &self.name)?.0;
        one(c.with_context("iam:PermissionsBoundary", ContextValue::String(self.arn.clone())))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        require_boundary(core, acct, &self.arn)?;
        set_boundary(core, acct, &self.name, Some(&self.arn))?;
        empty()
    }
}

pub struct DeleteRolePermissionsBoundary {
    name: String,
}

impl Operation<Core> for DeleteRolePermissionsBoundary {
    const NAME: &'static str = "DeleteRolePermissionsBoundary";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(DeleteRolePermissionsBoundary { name: role_name_only(input)? })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, role) = role_check(core, ctx, Self::NAME, &self.name)?;
        one(with_boundary(c, role.as_ref()))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        set_boundary(core, account(ctx), &self.name, None)?;
        empty()
    }
}

fn role_xml(acct: &str, tag: &'static str, r: &RoleRec, view: RoleView) -> Result<Output> {
    let mut w = XmlWriter::new();
    super::xml::role_view(&mut w, tag, acct, r, view);
    xml(w.finish())
}

/// Modify an existing role in one transaction.
fn modify(core: &Core, acct: &str, name: &str, f: impl FnOnce(&mut RoleRec) -> Result<()>) -> Result<RoleRec> {
    core.db.write(acct, |tx| {
        let mut r = require(tx, acct, name)?;
        f(&mut r)?;
        tx.put_entity(acct, &r.name.clone(), &r)?;
        Ok(r)
    })
}

/// Set (or remove) the role's permissions boundary, keeping the usage index in step.
fn set_boundary(core: &Core, acct: &str, name: &str, new: Option<&str>) -> Result<()> {
    core.db.write(acct, |tx| {
        let mut r = require(tx, acct, name)?;
        let old = std::mem::replace(&mut r.boundary, new.map(str::to_string));
        let e = EntityRef { kind: EntityKind::Role, name: &r.name, id: &r.id, path: &r.path };
        index::set_boundary(tx, acct, old.as_deref(), new, &e)?;
        tx.put_entity(acct, &r.name.clone(), &r)
    })
}
