//! Users: CreateUser, GetUser, UpdateUser, DeleteUser, ListUsers, user tags, user boundaries.

use rampart_policy::ContextValue;
use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_service::{AuthzCheck, AuthzPlan, CallerKind, Output, RequestContext};

use super::index::{self, EntityRef};
use super::{
    account, check, check_new_tags, empty, merge_tags, one, paginate, remove_tags, request_tags, resource_tags, under,
    xml, Core,
};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{tables, AccessKeyRec, EntityKind, GroupRec, UserRec};
use crate::util::{iam_arn, iso8601, now, unique_id};
use crate::validate::{self as v, Args};

pub const OPS: &[&str] = &[
    "CreateUser",
    "GetUser",
    "UpdateUser",
    "DeleteUser",
    "ListUsers",
    "TagUser",
    "UntagUser",
    "ListUserTags",
    "PutUserPermissionsBoundary",
    "DeleteUserPermissionsBoundary",
];

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
        None => Err(super::policy_not_attachable(arn)),
    }
}

/// The user a call without `UserName` is about: the calling IAM user.
fn caller_user_name(ctx: &RequestContext) -> Option<&str> {
    match &ctx.caller.kind {
        CallerKind::IamUser { user_name, .. } => Some(user_name),
        _ => None,
    }
}

struct Create<'a> {
    name: &'a str,
    path: &'a str,
    boundary: Option<&'a str>,
    tags: Vec<crate::model::Tag>,
}

fn parse_create(q: &QueryParams) -> Result<Create<'_>> {
    let mut a = Args::new(q);
    let name = a.req("UserName", &v::USER_NAME);
    let path = a.opt("Path", &v::PATH).unwrap_or("/");
    let boundary = a.opt("PermissionsBoundary", &v::ARN);
    let tags = a.tags("Tags");
    a.finish()?;
    Ok(Create { name, path, boundary, tags })
}

pub fn plan(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<AuthzPlan> {
    let acct = account(ctx);
    match op {
        "CreateUser" => {
            let c = parse_create(q)?;
            let mut ch = request_tags(check(op, iam_arn(acct, "user", c.path, c.name)), &c.tags);
            if let Some(b) = c.boundary {
                ch = ch.with_context("iam:PermissionsBoundary", ContextValue::String(b.into()));
            }
            one(ch)
        }
        "GetUser" => {
            let mut a = Args::new(q);
            let name = a.opt("UserName", &v::EXISTING_USER_NAME);
            a.finish()?;
            match name.or(caller_user_name(ctx)) {
                Some(n) => one(user_check(core, ctx, op, n)?.0),
                None => one(check(op, ctx.caller.arn.clone())),
            }
        }
        "UpdateUser" => {
            let mut a = Args::new(q);
            let name = a.req("UserName", &v::EXISTING_USER_NAME);
            a.opt("NewPath", &v::PATH);
            a.opt("NewUserName", &v::USER_NAME);
            a.finish()?;
            one(user_check(core, ctx, op, name)?.0)
        }
        "DeleteUser" | "ListUserTags" => {
            let mut a = Args::new(q);
            let name = a.req("UserName", &v::EXISTING_USER_NAME);
            if op == "ListUserTags" {
                a.paging();
            }
            a.finish()?;
            one(user_check(core, ctx, op, name)?.0)
        }
        "ListUsers" => {
            let mut a = Args::new(q);
            let prefix = a.opt("PathPrefix", &v::PATH_PREFIX);
            a.paging();
            a.finish()?;
            one(check(op, format!("arn:aws:iam::{acct}:user{}", prefix.unwrap_or("/"))))
        }
        "TagUser" => {
            let mut a = Args::new(q);
            let name = a.req("UserName", &v::EXISTING_USER_NAME);
            let tags = a.tags("Tags");
            if !q.contains("Tags") {
                a.error("Value null at 'tags' failed to satisfy constraint: Member must not be null".into());
            }
            a.finish()?;
            one(request_tags(user_check(core, ctx, op, name)?.0, &tags))
        }
        "UntagUser" => {
            let mut a = Args::new(q);
            let name = a.req("UserName", &v::EXISTING_USER_NAME);
            let keys = a.list("TagKeys", &v::TAG_KEY, Some(50), true);
            a.finish()?;
            let keys = keys.iter().map(|k| k.to_string()).collect();
            one(user_check(core, ctx, op, name)?.0.with_context("aws:TagKeys", ContextValue::List(keys)))
        }
        "PutUserPermissionsBoundary" => {
            let mut a = Args::new(q);
            let name = a.req("UserName", &v::USER_NAME);
            let arn = a.req("PermissionsBoundary", &v::ARN);
            a.finish()?;
            one(user_check(core, ctx, op, name)?
                .0
                .with_context("iam:PermissionsBoundary", ContextValue::String(arn.into())))
        }
        "DeleteUserPermissionsBoundary" => {
            let mut a = Args::new(q);
            let name = a.req("UserName", &v::USER_NAME);
            a.finish()?;
            let (mut c, user) = user_check(core, ctx, op, name)?;
            if let Some(b) = user.and_then(|u| u.boundary) {
                c = c.with_context("iam:PermissionsBoundary", ContextValue::String(b));
            }
            one(c)
        }
        _ => Err(IamError::Internal(format!("unrouted operation {op}"))),
    }
}

pub fn run(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<Output> {
    let acct = account(ctx);
    match op {
        "CreateUser" => create(core, acct, parse_create(q)?),
        "GetUser" => {
            let name = q.get("UserName").or(caller_user_name(ctx));
            let mut w = XmlWriter::new();
            match name {
                Some(n) => {
                    let u = core.db.entity::<UserRec>(acct, n)?.ok_or_else(|| no_such_user(n))?;
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
        "UpdateUser" => {
            let name = q.get("UserName").unwrap_or_default();
            let new_path = q.get("NewPath");
            let new_name = q.get("NewUserName");
            update(core, acct, name, new_path, new_name)?;
            empty()
        }
        "DeleteUser" => {
            let name = q.get("UserName").unwrap_or_default();
            delete(core, acct, name)?;
            empty()
        }
        "ListUsers" => {
            let mut a = Args::new(q);
            let prefix = a.opt("PathPrefix", &v::PATH_PREFIX);
            let (marker, max) = a.paging();
            a.finish()?;
            let users: Vec<UserRec> =
                core.db.entities::<UserRec>(acct)?.into_iter().filter(|u| under(&u.path, prefix)).collect();
            let page = paginate(users, |u| u.name.to_ascii_lowercase(), marker, max);
            let mut w = XmlWriter::new();
            w.start("Users");
            for u in &page.items {
                super::xml::user(&mut w, "member", acct, u, false);
            }
            w.end();
            super::xml::truncation(&mut w, &page.next);
            xml(w.finish())
        }
        "ListUserTags" => {
            let mut a = Args::new(q);
            let name = a.req("UserName", &v::EXISTING_USER_NAME);
            let (marker, max) = a.paging();
            a.finish()?;
            let u = core.db.entity::<UserRec>(acct, name)?.ok_or_else(|| no_such_user(name))?;
            tag_page(u.tags, marker, max)
        }
        "TagUser" => {
            let tags = Args::new(q).tags("Tags");
            check_new_tags(&tags)?;
            let name = q.get("UserName").unwrap_or_default();
            core.db.write(acct, |tx| {
                let mut u = require(tx, acct, name)?;
                merge_tags(&mut u.tags, tags)?;
                tx.put_entity(acct, &u.name.clone(), &u)
            })?;
            empty()
        }
        "UntagUser" => {
            let keys = q.list("TagKeys.member");
            let name = q.get("UserName").unwrap_or_default();
            core.db.write(acct, |tx| {
                let mut u = require(tx, acct, name)?;
                remove_tags(&mut u.tags, &keys);
                tx.put_entity(acct, &u.name.clone(), &u)
            })?;
            empty()
        }
        "PutUserPermissionsBoundary" => {
            let name = q.get("UserName").unwrap_or_default();
            let arn = q.get("PermissionsBoundary").unwrap_or_default();
            require_boundary(core, acct, arn)?;
            core.db.write(acct, |tx| {
                let mut u = require(tx, acct, name)?;
                let old = u.boundary.replace(arn.to_string());
                let e = EntityRef { kind: EntityKind::User, name: &u.name, id: &u.id, path: &u.path };
                index::set_boundary(tx, acct, old.as_deref(), Some(arn), &e)?;
                tx.put_entity(acct, &u.name.clone(), &u)
            })?;
            empty()
        }
        "DeleteUserPermissionsBoundary" => {
            let name = q.get("UserName").unwrap_or_default();
            core.db.write(acct, |tx| {
                let mut u = require(tx, acct, name)?;
                let old = u.boundary.take();
                let e = EntityRef { kind: EntityKind::User, name: &u.name, id: &u.id, path: &u.path };
                index::set_boundary(tx, acct, old.as_deref(), None, &e)?;
                tx.put_entity(acct, &u.name.clone(), &u)
            })?;
            empty()
        }
        _ => Err(IamError::Internal(format!("unrouted operation {op}"))),
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

fn create(core: &Core, acct: &str, c: Create<'_>) -> Result<Output> {
    check_new_tags(&c.tags)?;
    if let Some(b) = c.boundary {
        require_boundary(core, acct, b)?;
    }
    let user = core.db.write(acct, |tx| {
        if tx.entity::<UserRec>(acct, c.name)?.is_some() {
            return Err(IamError::AlreadyExists(format!("User with name {} already exists.", c.name)));
        }
        if tx.count(tables::USERS, &format!("{acct}/"))? >= MAX_USERS {
            return Err(IamError::LimitExceeded(format!("Cannot exceed quota for UsersPerAccount: {MAX_USERS}")));
        }
        let user = UserRec {
            name: c.name.to_string(),
            id: unique_id("AIDA"),
            path: c.path.to_string(),
            created: now(),
            tags: c.tags,
            boundary: c.boundary.map(str::to_string),
            inline: Default::default(),
            attached: Vec::new(),
            groups: Vec::new(),
            keys: Vec::new(),
        };
        if let Some(b) = c.boundary {
            let e = EntityRef { kind: EntityKind::User, name: &user.name, id: &user.id, path: &user.path };
            index::set_boundary(tx, acct, None, Some(b), &e)?;
        }
        tx.put_entity(acct, c.name, &user)?;
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
        if let Some(b) = &u.boundary {
            let e = EntityRef { kind: EntityKind::User, name: &u.name, id: &u.id, path: &u.path };
            index::set_boundary(tx, acct, Some(b), None, &e)?;
        }
        tx.delete_entity::<UserRec>(acct, &u.name)?;
        Ok(())
    })
}
