//! Groups and membership: CreateGroup, GetGroup, UpdateGroup, DeleteGroup, ListGroups,
//! AddUserToGroup, RemoveUserFromGroup, ListGroupsForUser.

use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_service::{AuthzCheck, AuthzPlan, Output, RequestContext};

use super::index::{self, EntityRef};
use super::users::{no_such_user, user_check};
use super::{account, check, empty, one, paginate, under, xml, Core};
use crate::db::{Lookup, Tx};
use crate::error::{IamError, Result};
use crate::model::{tables, EntityKind, GroupRec, UserRec};
use crate::util::{iam_arn, now, unique_id};
use crate::validate::{self as v, Args};

pub const OPS: &[&str] = &[
    "CreateGroup",
    "GetGroup",
    "UpdateGroup",
    "DeleteGroup",
    "ListGroups",
    "AddUserToGroup",
    "RemoveUserFromGroup",
    "ListGroupsForUser",
];

const MAX_GROUPS: usize = 300;
const MAX_GROUPS_PER_USER: usize = 10;

pub fn no_such_group(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The group with name {name} cannot be found."))
}

pub fn require(tx: &impl Lookup, account: &str, name: &str) -> Result<GroupRec> {
    tx.entity::<GroupRec>(account, name)?.ok_or_else(|| no_such_group(name))
}

/// `iam:{action}` on the named group (its real ARN when it exists).
pub fn group_check(core: &Core, ctx: &RequestContext, action: &str, name: &str) -> Result<AuthzCheck> {
    let acct = account(ctx);
    Ok(match core.db.entity::<GroupRec>(acct, name)? {
        Some(g) => check(action, g.arn(acct)),
        None => check(action, iam_arn(acct, "group", "/", name)),
    })
}

pub fn plan(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<AuthzPlan> {
    let acct = account(ctx);
    let mut a = Args::new(q);
    match op {
        "CreateGroup" => {
            let name = a.req("GroupName", &v::GROUP_NAME);
            let path = a.opt("Path", &v::PATH).unwrap_or("/");
            a.finish()?;
            one(check(op, iam_arn(acct, "group", path, name)))
        }
        "GetGroup" | "DeleteGroup" | "UpdateGroup" => {
            let name = a.req("GroupName", &v::GROUP_NAME);
            if op == "GetGroup" {
                a.paging();
            }
            if op == "UpdateGroup" {
                a.opt("NewPath", &v::PATH);
                a.opt("NewGroupName", &v::GROUP_NAME);
            }
            a.finish()?;
            one(group_check(core, ctx, op, name)?)
        }
        "ListGroups" => {
            let prefix = a.opt("PathPrefix", &v::PATH_PREFIX);
            a.paging();
            a.finish()?;
            one(check(op, format!("arn:aws:iam::{acct}:group{}", prefix.unwrap_or("/"))))
        }
        "AddUserToGroup" | "RemoveUserFromGroup" => {
            let group = a.req("GroupName", &v::GROUP_NAME);
            a.req("UserName", &v::EXISTING_USER_NAME);
            a.finish()?;
            one(group_check(core, ctx, op, group)?)
        }
        "ListGroupsForUser" => {
            let user = a.req("UserName", &v::EXISTING_USER_NAME);
            a.paging();
            a.finish()?;
            one(user_check(core, ctx, op, user)?.0)
        }
        _ => Err(IamError::Internal(format!("unrouted operation {op}"))),
    }
}

fn group_list(w: &mut XmlWriter, acct: &str, groups: &[GroupRec], next: &Option<String>) {
    w.start("Groups");
    for g in groups {
        super::xml::group(w, "member", acct, g);
    }
    w.end();
    super::xml::truncation(w, next);
}

pub fn run(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<Output> {
    let acct = account(ctx);
    let mut a = Args::new(q);
    let group_name = q.get("GroupName").unwrap_or_default();
    let user_name = q.get("UserName").unwrap_or_default();
    match op {
        "CreateGroup" => {
            let path = q.get("Path").unwrap_or("/");
            let g = core.db.write(acct, |tx| {
                if tx.entity::<GroupRec>(acct, group_name)?.is_some() {
                    return Err(IamError::AlreadyExists(format!("Group with name {group_name} already exists.")));
                }
                if tx.count(tables::GROUPS, &format!("{acct}/"))? >= MAX_GROUPS {
                    return Err(IamError::LimitExceeded(format!(
                        "Cannot exceed quota for GroupsPerAccount: {MAX_GROUPS}"
                    )));
                }
                let g = GroupRec {
                    name: group_name.to_string(),
                    id: unique_id("AGPA"),
                    path: path.to_string(),
                    created: now(),
                    inline: Default::default(),
                    attached: Vec::new(),
                    members: Vec::new(),
                };
                tx.put_entity(acct, group_name, &g)?;
                Ok(g)
            })?;
            let mut w = XmlWriter::new();
            super::xml::group(&mut w, "Group", acct, &g);
            xml(w.finish())
        }
        "GetGroup" => {
            let (marker, max) = a.paging();
            let g = require(&core.db, acct, group_name)?;
            let mut users = Vec::with_capacity(g.members.len());
            for m in &g.members {
                if let Some(u) = core.db.entity::<UserRec>(acct, m)? {
                    users.push(u);
                }
            }
            users.sort_by_key(|u| u.name.to_ascii_lowercase());
            let page = paginate(users, |u| u.name.to_ascii_lowercase(), marker, max);
            let mut w = XmlWriter::new();
            super::xml::group(&mut w, "Group", acct, &g);
            w.start("Users");
            for u in &page.items {
                super::xml::user(&mut w, "member", acct, u, false);
            }
            w.end();
            super::xml::truncation(&mut w, &page.next);
            xml(w.finish())
        }
        "UpdateGroup" => {
            update(core, acct, group_name, q.get("NewPath"), q.get("NewGroupName"))?;
            empty()
        }
        "DeleteGroup" => {
            core.db.write(acct, |tx| {
                let g = require(tx, acct, group_name)?;
                let conflict =
                    |m: &str| Err(IamError::DeleteConflict(format!("Cannot delete entity, must {m} first.")));
                if !g.members.is_empty() {
                    return conflict("remove users from group");
                }
                if !g.inline.is_empty() {
                    return conflict("delete policies");
                }
                if !g.attached.is_empty() {
                    return conflict("detach all policies");
                }
                tx.delete_entity::<GroupRec>(acct, &g.name)?;
                Ok(())
            })?;
            empty()
        }
        "ListGroups" => {
            let prefix = a.opt("PathPrefix", &v::PATH_PREFIX);
            let (marker, max) = a.paging();
            let groups: Vec<GroupRec> =
                core.db.entities::<GroupRec>(acct)?.into_iter().filter(|g| under(&g.path, prefix)).collect();
            let page = paginate(groups, |g| g.name.to_ascii_lowercase(), marker, max);
            let mut w = XmlWriter::new();
            group_list(&mut w, acct, &page.items, &page.next);
            xml(w.finish())
        }
        "AddUserToGroup" => {
            core.db.write(acct, |tx| {
                // IAM looks the user up first: with neither present, the user is reported missing.
                let mut u = tx.entity::<UserRec>(acct, user_name)?.ok_or_else(|| no_such_user(user_name))?;
                let mut g = require(tx, acct, group_name)?;
                if u.groups.iter().any(|x| x.eq_ignore_ascii_case(&g.name)) {
                    return Ok(());
                }
                if u.groups.len() >= MAX_GROUPS_PER_USER {
                    return Err(IamError::LimitExceeded(format!(
                        "Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}"
                    )));
                }
                u.groups.push(g.name.clone());
                g.members.push(u.name.clone());
                tx.put_entity(acct, &u.name.clone(), &u)?;
                tx.put_entity(acct, &g.name.clone(), &g)
            })?;
            empty()
        }
        "RemoveUserFromGroup" => {
            core.db.write(acct, |tx| {
                let mut g = require(tx, acct, group_name)?;
                let mut u = tx.entity::<UserRec>(acct, user_name)?.ok_or_else(|| no_such_user(user_name))?;
                if !u.groups.iter().any(|x| x.eq_ignore_ascii_case(&g.name)) {
                    return Err(no_such_user(user_name));
                }
                u.groups.retain(|x| !x.eq_ignore_ascii_case(&g.name));
                g.members.retain(|x| !x.eq_ignore_ascii_case(&u.name));
                tx.put_entity(acct, &u.name.clone(), &u)?;
                tx.put_entity(acct, &g.name.clone(), &g)
            })?;
            empty()
        }
        "ListGroupsForUser" => {
            let (marker, max) = a.paging();
            let u = core.db.entity::<UserRec>(acct, user_name)?.ok_or_else(|| no_such_user(user_name))?;
            let mut groups = Vec::with_capacity(u.groups.len());
            for name in &u.groups {
                if let Some(g) = core.db.entity::<GroupRec>(acct, name)? {
                    groups.push(g);
                }
            }
            groups.sort_by_key(|g| g.name.to_ascii_lowercase());
            let page = paginate(groups, |g| g.name.to_ascii_lowercase(), marker, max);
            let mut w = XmlWriter::new();
            group_list(&mut w, acct, &page.items, &page.next);
            xml(w.finish())
        }
        _ => Err(IamError::Internal(format!("unrouted operation {op}"))),
    }
}

fn update(core: &Core, acct: &str, name: &str, new_path: Option<&str>, new_name: Option<&str>) -> Result<()> {
    core.db.write(acct, |tx: &mut Tx<'_>| {
        let mut g = require(tx, acct, name)?;
        let old_name = g.name.clone();
        if let Some(n) = new_name {
            if !n.eq_ignore_ascii_case(&old_name) && tx.entity::<GroupRec>(acct, n)?.is_some() {
                return Err(IamError::AlreadyExists(format!("Group with name {n} already exists.")));
            }
            g.name = n.to_string();
        }
        if let Some(p) = new_path {
            g.path = p.to_string();
        }
        tx.delete_entity::<GroupRec>(acct, &old_name)?;
        tx.put_entity(acct, &g.name.clone(), &g)?;
        let e = EntityRef { kind: EntityKind::Group, name: &g.name, id: &g.id, path: &g.path };
        index::rename(tx, acct, &g.attached, None, &old_name, &e)?;
        if old_name != g.name {
            for m in &g.members {
                if let Some(mut u) = tx.entity::<UserRec>(acct, m)? {
                    for x in u.groups.iter_mut() {
                        if x.eq_ignore_ascii_case(&old_name) {
                            *x = g.name.clone();
                        }
                    }
                    tx.put_entity(acct, m, &u)?;
                }
            }
        }
        Ok(())
    })
}
