//! Users: CreateUser, GetUser, UpdateUser, DeleteUser, ListUsers, user tags, user boundaries.

use rampart_policy::ContextValue;
use rampart_protocol::xml::XmlWriter;
use rampart_service::{op, AuthzCheck, AuthzPlan, CallerKind, Entry, Input, Operation, Output, RequestContext};

use super::index::{self, EntityRef};
use super::{
    account, check, check_new_tags, empty, merge_tags, one, paginate, remove_tags, request_tags, resource_tags, xml,
    Core, PathPage,
};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{tables, AccessKeyRec, EntityKind, GroupRec, Tag, UserRec};
use crate::util::{iam_arn, iso8601, now, unique_id};
use crate::validate::{self as v, Args};

/// AWS's quota on users per account.
const MAX_USERS: usize = 5000;

pub fn no_such_user(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The user with name {name} cannot be found."))
}

/// The user, or NoSuchEntity.
pub fn require(tx: &impl Lookup, account: &str, name: &str) -> Result<UserRec> {
    tx.entity::<UserRec>(account, name)?.ok_or_else(|| no_such_user(name))
}

/// `iam:{action}` on the named user (its real ARN when it exists), with its tags as context.
pub fn user_check(
    core: &Core,
    ctx: &RequestContext,
    action: &str,
    name: &str,
) -> Result<(AuthzCheck, Option<UserRec>)> {
    let acct = account(ctx);
    let user = core.db.entity::<UserRec>(acct, name)?;
    let c = match &user {
        Some(u) => resource_tags(check(action, u.arn(acct)), &u.tags, true),
        None => check(action, iam_arn(acct, "user", "/", name)),
    };
    Ok((c, user))
}

/// Check that `arn` names a managed policy usable as a permissions boundary.
pub fn require_boundary(core: &Core, acct: &str, arn: &str) -> Result<()> {
    if !arn.starts_with("arn:aws:iam::") || !arn.contains(":policy/") {
        return Err(IamError::InvalidInput(format!("ARN {arn} is not valid.")));
    }
    match crate::resolve::managed_document(&core.db, acct, arn)? {
        Some(_) => Ok(()),
        // "Scope ARN: …" (recorded AWS responses, localstack
        // tests/aws/services/iam/test_iam_roles.snapshot.json, test_role_permissions_boundary_errors).
        None => Err(IamError::NoSuchEntity(format!("Scope ARN: {arn} does not exist or is not attachable."))),
    }
}

/// The user a call without `UserName` is about: the calling IAM user.
fn caller_user_name(ctx: &RequestContext) -> Option<&str> {
    match &ctx.caller.kind {
        CallerKind::IamUser { user_name, .. } => Some(user_name),
        _ => None,
    }
}

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, CreateUser>(),
    op::<Core, GetUser>(),
    op::<Core, UpdateUser>(),
    op::<Core, DeleteUser>(),
    op::<Core, ListUsers>(),
    op::<Core, TagUser>(),
    op::<Core, UntagUser>(),
    op::<Core, ListUserTags>(),
    op::<Core, PutUserPermissionsBoundary>(),
    op::<Core, DeleteUserPermissionsBoundary>(),
];

pub struct CreateUser {
    name: String,
    path: String,
    boundary: Option<String>,
    tags: Vec<Tag>,
}

impl Operation<Core> for CreateUser {
    const NAME: &'static str = "CreateUser";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("UserName", &v::USER_NAME).to_string();
        let path = a.opt("Path", &v::PATH).unwrap_or("/").to_string();
        let boundary = a.opt("PermissionsBoundary", &v::ARN).map(str::to_string);
        let tags = a.tags("Tags");
        a.finish()?;
        Ok(CreateUser { name, path, boundary, tags })
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let arn = iam_arn(account(ctx), "user", &self.path, &self.name);
        let mut ch = request_tags(check(Self::NAME, arn), &self.tags);
        if let Some(b) = &self.boundary {
            ch = ch.with_context("iam:PermissionsBoundary", ContextValue::String(b.clone()));
        }
        one(ch)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        create(core, account(ctx), self)
    }
}

/// GetUser: the named user, or the caller (an IAM user, or the root user itself).
pub struct GetUser {
    name: Option<String>,
    /// The user the plan read, which the answer shows.
    user: Option<UserRec>,
}

impl Operation<Core> for GetUser {
    const NAME: &'static str = "GetUser";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.opt("UserName", &v::EXISTING_USER_NAME).map(str::to_string);
        a.finish()?;
        Ok(GetUser { name, user: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        match self.name.as_deref().or(caller_user_name(ctx)) {
            Some(n) => {
                let (c, user) = user_check(core, ctx, Self::NAME, n)?;
                self.user = user;
                one(c)
            }
            None => one(check(Self::NAME, ctx.caller.arn.clone())),
        }
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let mut w = XmlWriter::new();
        match self.name.as_deref().or(caller_user_name(ctx)) {
            Some(n) => {
                let u = self.user.ok_or_else(|| no_such_user(n))?;
                super::xml::user(&mut w, "User", acct, &u, true);
            }
            None if ctx.caller.is_root() => {
                let created = core
                    .db
                    .get::<crate::model::AccountRec>(tables::ACCOUNTS, acct)?
                    .map(|a| a.created)
                    .unwrap_or_else(now);
                w.start("User")
                    .elem("UserId", acct)
                    .elem("Arn", &ctx.caller.arn)
                    .elem("CreateDate", &iso8601(created))
                    .end();
            }
            None => {
                return Err(IamError::Aws(rampart_protocol::AwsError::validation(
                    "Must specify userName when calling with non-User credentials",
                )))
            }
        }
        xml(w.finish())
    }
}

pub struct UpdateUser {
    name: String,
    new_path: Option<String>,
    new_name: Option<String>,
}

impl Operation<Core> for UpdateUser {
    const NAME: &'static str = "UpdateUser";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("UserName", &v::EXISTING_USER_NAME).to_string();
        let new_path = a.opt("NewPath", &v::PATH).map(str::to_string);
        let new_name = a.opt("NewUserName", &v::USER_NAME).map(str::to_string);
        a.finish()?;
        Ok(UpdateUser { name, new_path, new_name })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(user_check(core, ctx, Self::NAME, &self.name)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        update(core, account(ctx), &self.name, self.new_path.as_deref(), self.new_name.as_deref())?;
        empty()
    }
}

pub struct DeleteUser {
    name: String,
}

impl Operation<Core> for DeleteUser {
    const NAME: &'static str = "DeleteUser";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("UserName", &v::EXISTING_USER_NAME).to_string();
        a.finish()?;
        Ok(DeleteUser { name })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(user_check(core, ctx, Self::NAME, &self.name)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        delete(core, account(ctx), &self.name)?;
        empty()
    }
}

pub struct ListUsers(PathPage);

impl Operation<Core> for ListUsers {
    const NAME: &'static str = "ListUsers";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        PathPage::parse(input).map(ListUsers)
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, self.0.resource(ctx, "user")))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let page = self.0.page(core.db.entities::<UserRec>(acct)?, |u| &u.path, |u| &u.name);
        let mut w = XmlWriter::new();
        w.start("Users");
        for u in &page.items {
            super::xml::user(&mut w, "member", acct, u, false);
        }
        w.end();
        super::xml::truncation(&mut w, &page.next);
        xml(w.finish())
    }
}

pub struct ListUserTags {
    name: String,
    marker: Option<String>,
    max: usize,
    /// The user the plan read.
    user: Option<UserRec>,
}

impl Operation<Core> for ListUserTags {
    const NAME: &'static str = "ListUserTags";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("UserName", &v::EXISTING_USER_NAME).to_string();
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListUserTags { name, marker, max, user: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, user) = user_check(core, ctx, Self::NAME, &self.name)?;
        self.user = user;
        one(c)
    }

    fn run(self, _: &Core, _: &RequestContext) -> Result<Output> {
        let u = self.user.ok_or_else(|| no_such_user(&self.name))?;
        tag_page(u.tags, self.marker.as_deref(), self.max)
    }
}

pub struct TagUser {
    name: String,
    tags: Vec<Tag>,
}

impl Operation<Core> for TagUser {
    const NAME: &'static str = "TagUser";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("UserName", &v::EXISTING_USER_NAME).to_string();
        let tags = a.required_tags("Tags");
        a.finish()?;
        Ok(TagUser { name, tags })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(request_tags(user_check(core, ctx, Self::NAME, &self.name)?.0, &self.tags))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        check_new_tags(&self.tags)?;
        let acct = account(ctx);
        core.db.write(acct, |tx| {
            let mut u = require(tx, acct, &self.name)?;
            merge_tags(&mut u.tags, self.tags)?;
            tx.put_entity(acct, &u.name.clone(), &u)
        })?;
        empty()
    }
}

pub struct UntagUser {
    name: String,
    keys: Vec<String>,
}

impl Operation<Core> for UntagUser {
    const NAME: &'static str = "UntagUser";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("UserName", &v::EXISTING_USER_NAME).to_string();
        let keys = a.tag_keys("TagKeys").into_iter().map(str::to_string).collect();
        a.finish()?;
        Ok(UntagUser { name, keys })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let c = user_check(core, ctx, Self::NAME, &self.name)?.0;
        one(c.with_context("aws:TagKeys", ContextValue::List(self.keys.clone())))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        core.db.write(acct, |tx| {
            let mut u = require(tx, acct, &self.name)?;
            remove_tags(&mut u.tags, &keys);
            tx.put_entity(acct, &u.name.clone(), &u)
        })?;
        empty()
    }
}

pub struct PutUserPermissionsBoundary {
    name: String,
    arn: String,
}

impl Operation<Core> for PutUserPermissionsBoundary {
    const NAME: &'static str = "PutUserPermissionsBoundary";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("UserName", &v::USER_NAME).to_string();
        let arn = a.req("PermissionsBoundary", &v::ARN).to_string();
        a.finish()?;
        Ok(PutUserPermissionsBoundary { name, arn })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let c = user_check(core, ctx, Self::NAME, &self.name)?.0;
        one(c.with_context("iam:PermissionsBoundary", ContextValue::String(self.arn.clone())))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        require_boundary(core, acct, &self.arn)?;
        core.db.write(acct, |tx| {
            let mut u = require(tx, acct, &self.name)?;
            let old = u.boundary.replace(self.arn.clone());
            let e = EntityRef { kind: EntityKind::User, name: &u.name, id: &u.id, path: &u.path };
            index::set_boundary(tx, acct, old.as_deref(), Some(&self.arn), &e)?;
            tx.put_entity(acct, &u.name.clone(), &u)
        })?;
        empty()
    }
}

pub struct DeleteUserPermissionsBoundary {
    name: String,
}

impl Operation<Core> for DeleteUserPermissionsBoundary {
    const NAME: &'static str = "DeleteUserPermissionsBoundary";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("UserName", &v::USER_NAME).to_string();
        a.finish()?;
        Ok(DeleteUserPermissionsBoundary { name })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (mut c, user) = user_check(core, ctx, Self::NAME, &self.name)?;
        if let Some(b) = user.and_then(|u| u.boundary) {
            c = c.with_context("iam:PermissionsBoundary", ContextValue::String(b));
        }
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        core.db.write(acct, |tx| {
            let mut u = require(tx, acct, &self.name)?;
            let old = u.boundary.take();
            let e = EntityRef { kind: EntityKind::User, name: &u.name, id: &u.id, path: &u.path };
            index::set_boundary(tx, acct, old.as_deref(), None, &e)?;
            tx.put_entity(acct, &u.name.clone(), &u)
        })?;
        empty()
    }
}

/// A page of tags (ListUserTags, ListRoleTags, …): markers are positions.
pub fn tag_page(tags: Vec<crate::model::Tag>, marker: Option<&str>, max: usize) -> Result<Output> {
    let indexed: Vec<(usize, crate::model::Tag)> = tags.into_iter().enumerate().collect();
    let page = paginate(indexed, |(i, _)| format!("{i:05}"), marker, max);
    let mut w = XmlWriter::new();
    let tags: Vec<crate::model::Tag> = page.items.into_iter().map(|(_, t)| t).collect();
    super::xml::tags(&mut w, &tags);
    super::xml::truncation(&mut w, &page.next);
    xml(w.finish())
}

fn create(core: &Core, acct: &str, c: CreateUser) -> Result<Output> {
    check_new_tags(&c.tags)?;
    if let Some(b) = &c.boundary {
        require_boundary(core, acct, b)?;
    }
    let user = core.db.write(acct, |tx| {
        if tx.entity::<UserRec>(acct, &c.name)?.is_some() {
            return Err(IamError::AlreadyExists(format!("User with name {} already exists.", c.name)));
        }
        if tx.count_entities::<UserRec>(acct)? >= MAX_USERS {
            return Err(IamError::quota("UsersPerAccount", MAX_USERS));
        }
        let user = UserRec {
            name: c.name.clone(),
            id: unique_id("AIDA"),
            path: c.path.clone(),
            created: now(),
            tags: c.tags.clone(),
            boundary: c.boundary.clone(),
            inline: Default::default(),
            attached: Vec::new(),
            groups: Vec::new(),
            keys: Vec::new(),
        };
        if let Some(b) = c.boundary.as_deref() {
            let e = EntityRef { kind: EntityKind::User, name: &user.name, id: &user.id, path: &user.path };
            index::set_boundary(tx, acct, None, Some(b), &e)?;
        }
        tx.put_entity(acct, &c.name, &user)?;
        Ok(user)
    })?;
    let mut w = XmlWriter::new();
    super::xml::user(&mut w, "User", acct, &user, true);
    xml(w.finish())
}

fn update(core: &Core, acct: &str, name: &str, new_path: Option<&str>, new_name: Option<&str>) -> Result<()> {
    core.db.write(acct, |tx| {
        let mut u = require(tx, acct, name)?;
        let old_name = u.name.clone();
        if let Some(n) = new_name {
            if !n.eq_ignore_ascii_case(&old_name) && tx.entity::<UserRec>(acct, n)?.is_some() {
                return Err(IamError::AlreadyExists(format!("User with name {n} already exists.")));
            }
            u.name = n.to_string();
        }
        if let Some(p) = new_path {
            u.path = p.to_string();
        }
        tx.delete_entity::<UserRec>(acct, &old_name)?;
        tx.put_entity(acct, &u.name.clone(), &u)?;
        let e = EntityRef { kind: EntityKind::User, name: &u.name, id: &u.id, path: &u.path };
        index::rename(tx, acct, &u.attached, u.boundary.as_deref(), &old_name, &e)?;
        if old_name != u.name {
            super::mfa::rename_user(tx, acct, &old_name, &u.name)?;
            super::ssh_keys::rename_rows::<super::ssh_keys::SshKeyRec>(
                tx,
                super::ssh_keys::TABLE,
                acct,
                &old_name,
                &u.name,
            )?;
            super::signing_certs::rename_user(tx, acct, &old_name, &u.name)?;
            super::login::rename_user(tx, acct, &old_name, &u.name)?;
            super::service_creds::rename_user(tx, acct, &old_name, &u.name)?;
            for g in &u.groups {
                if let Some(mut group) = tx.entity::<GroupRec>(acct, g)? {
                    for m in group.members.iter_mut() {
                        if m.eq_ignore_ascii_case(&old_name) {
                            *m = u.name.clone();
                        }
                    }
                    tx.put_entity(acct, g, &group)?;
                }
            }
            for k in &u.keys {
                if let Some(mut rec) = tx.get::<AccessKeyRec>(tables::ACCESS_KEYS, k)? {
                    rec.user = Some(u.name.clone());
                    tx.put(tables::ACCESS_KEYS, k, &rec)?;
                }
            }
        }
        Ok(())
    })
}

fn delete(core: &Core, acct: &str, name: &str) -> Result<()> {
    core.db.write(acct, |tx| {
        let u = require(tx, acct, name)?;
        let conflict = |m: &str| Err(IamError::DeleteConflict(format!("Cannot delete entity, must {m} first.")));
        if !u.inline.is_empty() {
            return conflict("delete policies");
        }
        if !u.attached.is_empty() {
            return conflict("detach all policies");
        }
        if !u.keys.is_empty() {
            return conflict("delete access keys");
        }
        if !u.groups.is_empty() {
            return conflict("remove users from group");
        }
        if super::login::profile(tx, acct, &u.name)?.is_some() {
            return conflict("delete login profile");
        }
        if !super::mfa::user_devices(tx, acct, &u.name)?.is_empty() {
            return conflict("delete MFA device");
        }
        if !super::signing_certs::owner_certs(tx, acct, Some(&u.name))?.is_empty() {
            return conflict("delete signing certificates");
        }
        if !super::ssh_keys::user_keys(tx, acct, &u.name)?.is_empty() {
            return conflict("delete SSH public keys");
        }
        if !super::service_creds::user_creds(tx, acct, &u.name)?.is_empty() {
            return conflict("delete service specific credentials");
        }
        if let Some(b) = &u.boundary {
            let e = EntityRef { kind: EntityKind::User, name: &u.name, id: &u.id, path: &u.path };
            index::set_boundary(tx, acct, Some(b), None, &e)?;
        }
        tx.delete_entity::<UserRec>(acct, &u.name)?;
        Ok(())
    })
}
