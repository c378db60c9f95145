//! Groups and membership: CreateGroup, GetGroup, UpdateGroup, DeleteGroup, ListGroups,
//! AddUserToGroup, RemoveUserFromGroup, ListGroupsForUser.

use rampart_protocol::xml::XmlWriter;
use rampart_service::{op, AuthzCheck, AuthzPlan, Entry, Input, Operation, Output, RequestContext};

use super::index::{self, EntityRef};
use super::users::{no_such_user, user_check};
use super::{account, check, empty, one, paginate, xml, Core, PathPage};
use crate::db::{Lookup, Tx};
use crate::error::{IamError, Result};
use crate::model::{EntityKind, GroupRec, UserRec};
use crate::util::{iam_arn, now, unique_id};
use crate::validate::{self as v, Args};

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, CreateGroup>(),
    op::<Core, GetGroup>(),
    op::<Core, UpdateGroup>(),
    op::<Core, DeleteGroup>(),
    op::<Core, ListGroups>(),
    op::<Core, AddUserToGroup>(),
    op::<Core, RemoveUserFromGroup>(),
    op::<Core, ListGroupsForUser>(),
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
    Ok(group_lookup(core, ctx, action, name)?.0)
}

/// [`group_check`], with the group it read.
pub(super) fn group_lookup(
    core: &Core,
    ctx: &RequestContext,
    action: &str,
    name: &str,
) -> Result<(AuthzCheck, Option<GroupRec>)> {
    let acct = account(ctx);
    let group = core.db.entity::<GroupRec>(acct, name)?;
    let c = match &group {
        Some(g) => check(action, g.arn(acct)),
        None => check(action, iam_arn(acct, "group", "/", name)),
    };
    Ok((c, group))
}

fn group_list(w: &mut XmlWriter, acct: &str, groups: &[GroupRec], next: &Option<String>) {
    w.start("Groups");
    for g in groups {
        super::xml::group(w, "member", acct, g);
    }
    w.end();
    super::xml::truncation(w, next);
}

pub struct CreateGroup {
    name: String,
    path: String,
}

impl Operation<Core> for CreateGroup {
    const NAME: &'static str = "CreateGroup";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("GroupName", &v::GROUP_NAME).to_string();
        let path = a.opt("Path", &v::PATH).unwrap_or("/").to_string();
        a.finish()?;
        Ok(CreateGroup { name, path })
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, iam_arn(account(ctx), "group", &self.path, &self.name)))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let CreateGroup { name, path } = self;
        let g = core.db.write(acct, |tx| {
            if tx.entity::<GroupRec>(acct, &name)?.is_some() {
                return Err(IamError::AlreadyExists(format!("Group with name {name} already exists.")));
            }
            if tx.count_entities::<GroupRec>(acct)? >= MAX_GROUPS {
                return Err(IamError::quota("GroupsPerAccount", MAX_GROUPS));
            }
            let g = GroupRec {
                name: name.clone(),
                id: unique_id("AGPA"),
                path: path.clone(),
                created: now(),
                inline: Default::default(),
                attached: Vec::new(),
                members: Vec::new(),
            };
            tx.put_entity(acct, &name, &g)?;
            Ok(g)
        })?;
        let mut w = XmlWriter::new();
        super::xml::group(&mut w, "Group", acct, &g);
        xml(w.finish())
    }
}

pub struct GetGroup {
    name: String,
    marker: Option<String>,
    max: usize,
    /// The group the plan read, which the answer shows.
    group: Option<GroupRec>,
}

impl Operation<Core> for GetGroup {
    const NAME: &'static str = "GetGroup";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("GroupName", &v::GROUP_NAME).to_string();
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(GetGroup { name, marker, max, group: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, group) = group_lookup(core, ctx, Self::NAME, &self.name)?;
        self.group = group;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let g = self.group.ok_or_else(|| no_such_group(&self.name))?;
        let mut users = Vec::with_capacity(g.members.len());
        for m in &g.members {
            if let Some(u) = core.db.entity::<UserRec>(acct, m)? {
                users.push(u);
            }
        }
        users.sort_by_key(|u| u.name.to_ascii_lowercase());
        let page = paginate(users, |u| u.name.to_ascii_lowercase(), self.marker.as_deref(), self.max);
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
}

pub struct UpdateGroup {
    name: String,
    new_path: Option<String>,
    new_name: Option<String>,
}

impl Operation<Core> for UpdateGroup {
    const NAME: &'static str = "UpdateGroup";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("GroupName", &v::GROUP_NAME).to_string();
        let new_path = a.opt("NewPath", &v::PATH).map(str::to_string);
        let new_name = a.opt("NewGroupName", &v::GROUP_NAME).map(str::to_string);
        a.finish()?;
        Ok(UpdateGroup { name, new_path, new_name })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(group_check(core, ctx, Self::NAME, &self.name)?)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        update(core, account(ctx), &self.name, self.new_path.as_deref(), self.new_name.as_deref())?;
        empty()
    }
}

pub struct DeleteGroup {
    name: String,
}

impl Operation<Core> for DeleteGroup {
    const NAME: &'static str = "DeleteGroup";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("GroupName", &v::GROUP_NAME).to_string();
        a.finish()?;
        Ok(DeleteGroup { name })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(group_check(core, ctx, Self::NAME, &self.name)?)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        core.db.write(acct, |tx| {
            let g = require(tx, acct, &self.name)?;
            let conflict = |m: &str| Err(IamError::DeleteConflict(format!("Cannot delete entity, must {m} first.")));
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
}

pub struct ListGroups(PathPage);

impl Operation<Core> for ListGroups {
    const NAME: &'static str = "ListGroups";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        PathPage::parse(input).map(ListGroups)
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, self.0.resource(ctx, "group")))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let page = self.0.page(core.db.entities::<GroupRec>(acct)?, |g| &g.path, |g| &g.name);
        let mut w = XmlWriter::new();
        group_list(&mut w, acct, &page.items, &page.next);
        xml(w.finish())
    }
}

/// The members of AddUserToGroup and RemoveUserFromGroup.
fn membership(input: &Input) -> Result<(String, String)> {
    let mut a = Args::new(input.query());
    let group = a.req("GroupName", &v::GROUP_NAME).to_string();
    let user = a.req("UserName", &v::EXISTING_USER_NAME).to_string();
    a.finish()?;
    Ok((group, user))
}

pub struct AddUserToGroup {
    group: String,
    user: String,
}

impl Operation<Core> for AddUserToGroup {
    const NAME: &'static str = "AddUserToGroup";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (group, user) = membership(input)?;
        Ok(AddUserToGroup { group, user })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(group_check(core, ctx, Self::NAME, &self.group)?)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        core.db.write(acct, |tx| {
            // IAM looks the user up first: with neither present, the user is reported missing.
            let mut u = tx.entity::<UserRec>(acct, &self.user)?.ok_or_else(|| no_such_user(&self.user))?;
            let mut g = require(tx, acct, &self.group)?;
            if u.groups.iter().any(|x| x.eq_ignore_ascii_case(&g.name)) {
                return Ok(());
            }
            if u.groups.len() >= MAX_GROUPS_PER_USER {
                return Err(IamError::quota("GroupsPerUser", MAX_GROUPS_PER_USER));
            }
            u.groups.push(g.name.clone());
            g.members.push(u.name.clone());
            tx.put_entity(acct, &u.name.clone(), &u)?;
            tx.put_entity(acct, &g.name.clone(), &g)
        })?;
        empty()
    }
}

pub struct RemoveUserFromGroup {
    group: String,
    user: String,
}

impl Operation<Core> for RemoveUserFromGroup {
    const NAME: &'static str = "RemoveUserFromGroup";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (group, user) = membership(input)?;
        Ok(RemoveUserFromGroup { group, user })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(group_check(core, ctx, Self::NAME, &self.group)?)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        core.db.write(acct, |tx| {
            let mut g = require(tx, acct, &self.group)?;
            let mut u = tx.entity::<UserRec>(acct, &self.user)?.ok_or_else(|| no_such_user(&self.user))?;
            if !u.groups.iter().any(|x| x.eq_ignore_ascii_case(&g.name)) {
                return Err(no_such_user(&self.user));
            }
            u.groups.retain(|x| !x.eq_ignore_ascii_case(&g.name));
            g.members.retain(|x| !x.eq_ignore_ascii_case(&u.name));
            tx.put_entity(acct, &u.name.clone(), &u)?;
            tx.put_entity(acct, &g.name.clone(), &g)
        })?;
        empty()
    }
}

pub struct ListGroupsForUser {
    user: String,
    marker: Option<String>,
    max: usize,
    /// The user the plan read, whose groups the answer lists.
    rec: Option<UserRec>,
}

impl Operation<Core> for ListGroupsForUser {
    const NAME: &'static str = "ListGroupsForUser";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let user = a.req("UserName", &v::EXISTING_USER_NAME).to_string();
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListGroupsForUser { user, marker, max, rec: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, rec) = user_check(core, ctx, Self::NAME, &self.user)?;
        self.rec = rec;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let u = self.rec.ok_or_else(|| no_such_user(&self.user))?;
        let mut groups = Vec::with_capacity(u.groups.len());
        for name in &u.groups {
            if let Some(g) = core.db.entity::<GroupRec>(acct, name)? {
                groups.push(g);
            }
        }
        groups.sort_by_key(|g| g.name.to_ascii_lowercase());
        let page = paginate(groups, |g| g.name.to_ascii_lowercase(), self.marker.as_deref(), self.max);
        let mut w = XmlWriter::new();
        group_list(&mut w, acct, &page.items, &page.next);
        xml(w.finish())
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
