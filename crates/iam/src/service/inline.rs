//! Inline policies of users, groups and roles: Put/Get/Delete/List{User,Group,Role}Policy.
//!
//! The three entity kinds share each operation's shape: one generic operation type per shape,
//! made one type per AWS operation by the entity kind it is instantiated with ([`ForUser`], …).

use std::collections::BTreeMap;
use std::marker::PhantomData;

use rampart_policy::PolicyType;
use rampart_protocol::xml::XmlWriter;
use rampart_service::{op, AuthzCheck, AuthzPlan, Entry, Input, Operation, Output, RequestContext};

use super::{account, empty, one, paginate, xml, Core};
use crate::db::Tx;
use crate::error::{IamError, Result};
use crate::model::EntityKind;
use crate::util::{encode_document, policy_size};
use crate::validate::{self as v, Args};

/// Users, as the inline and attachment operations name them.
pub struct ForUser;
/// Groups, as the inline and attachment operations name them.
pub struct ForGroup;
/// Roles, as the inline and attachment operations name them.
pub struct ForRole;

/// What the inline policy operations differ in between users, groups and roles.
pub trait Holder: 'static {
    const KIND: EntityKind;
    /// The member naming the entity, and its constraints.
    const PARAM: &'static str;
    const SPEC: &'static v::Spec;
    /// AWS's quota on the entity's inline policies together (non-whitespace characters).
    const QUOTA: usize;
    /// The response member naming the entity (GetXPolicy).
    const RESPONSE_NAME: &'static str;
    const PUT: &'static str;
    const GET: &'static str;
    const DELETE: &'static str;
    const LIST: &'static str;
}

impl Holder for ForUser {
    const KIND: EntityKind = EntityKind::User;
    const PARAM: &'static str = "UserName";
    const SPEC: &'static v::Spec = &v::EXISTING_USER_NAME;
    const QUOTA: usize = 2048;
    const RESPONSE_NAME: &'static str = "UserName";
    const PUT: &'static str = "PutUserPolicy";
    const GET: &'static str = "GetUserPolicy";
    const DELETE: &'static str = "DeleteUserPolicy";
    const LIST: &'static str = "ListUserPolicies";
}

impl Holder for ForGroup {
    const KIND: EntityKind = EntityKind::Group;
    const PARAM: &'static str = "GroupName";
    const SPEC: &'static v::Spec = &v::GROUP_NAME;
    const QUOTA: usize = 5120;
    const RESPONSE_NAME: &'static str = "GroupName";
    const PUT: &'static str = "PutGroupPolicy";
    const GET: &'static str = "GetGroupPolicy";
    const DELETE: &'static str = "DeleteGroupPolicy";
    const LIST: &'static str = "ListGroupPolicies";
}

impl Holder for ForRole {
    const KIND: EntityKind = EntityKind::Role;
    const PARAM: &'static str = "RoleName";
    const SPEC: &'static v::Spec = &v::ROLE_NAME;
    const QUOTA: usize = 10240;
    const RESPONSE_NAME: &'static str = "RoleName";
    const PUT: &'static str = "PutRolePolicy";
    const GET: &'static str = "GetRolePolicy";
    const DELETE: &'static str = "DeleteRolePolicy";
    const LIST: &'static str = "ListRolePolicies";
}

/// A user, group or role as a plan read it: what inline and attachment operations use of it.
pub struct Entity {
    pub name: String,
    pub inline: BTreeMap<String, String>,
    pub attached: Vec<String>,
}

/// NoSuchEntity for a user, group or role, in AWS's words for each.
pub fn no_such_entity(kind: EntityKind, name: &str) -> IamError {
    match kind {
        EntityKind::User => super::users::no_such_user(name),
        EntityKind::Group => super::groups::no_such_group(name),
        EntityKind::Role => super::roles::no_such_role(name),
    }
}

/// The entity's check (its ARN and tags, and for users and roles the boundary, as AWS provides
/// it), and the entity, for the run to use.
pub fn entity_check(
    core: &Core,
    ctx: &RequestContext,
    kind: EntityKind,
    action: &str,
    name: &str,
) -> Result<(AuthzCheck, Option<Entity>)> {
    match kind {
        EntityKind::User => {
            let (c, user) = super::users::user_check(core, ctx, action, name)?;
            let c = match user.as_ref().and_then(|u| u.boundary.clone()) {
                Some(b) => c.with_context("iam:PermissionsBoundary", rampart_policy::ContextValue::String(b)),
                None => c,
            };
            Ok((c, user.map(|u| Entity { name: u.name, inline: u.inline, attached: u.attached })))
        }
        EntityKind::Group => {
            let (c, group) = super::groups::group_lookup(core, ctx, action, name)?;
            Ok((c, group.map(|g| Entity { name: g.name, inline: g.inline, attached: g.attached })))
        }
        EntityKind::Role => {
            let (c, role) = super::roles::role_check(core, ctx, action, name)?;
            let c = super::roles::with_boundary(c, role.as_ref());
            Ok((c, role.map(|r| Entity { name: r.name, inline: r.inline, attached: r.attached })))
        }
    }
}

/// Change an entity's inline policies in one transaction.
fn change(
    core: &Core,
    acct: &str,
    kind: EntityKind,
    name: &str,
    f: impl FnOnce(&str, &mut BTreeMap<String, String>) -> Result<()>,
) -> Result<()> {
    core.db.write(acct, |tx: &mut Tx<'_>| match kind {
        EntityKind::User => {
            let mut u = super::users::require(tx, acct, name)?;
            f(&u.name, &mut u.inline)?;
            tx.put_entity(acct, &u.name.clone(), &u)
        }
        EntityKind::Group => {
            let mut g = super::groups::require(tx, acct, name)?;
            f(&g.name, &mut g.inline)?;
            tx.put_entity(acct, &g.name.clone(), &g)
        }
        EntityKind::Role => {
            let mut r = super::roles::require(tx, acct, name)?;
            f(&r.name, &mut r.inline)?;
            tx.put_entity(acct, &r.name.clone(), &r)
        }
    })
}

fn no_such_policy(kind: EntityKind, policy: &str) -> IamError {
    IamError::NoSuchEntity(format!("The {} policy with name {policy} cannot be found.", kind.as_str()))
}

pub type PutUserPolicy = PutPolicy<ForUser>;
pub type GetUserPolicy = GetPolicy<ForUser>;
pub type DeleteUserPolicy = DeletePolicy<ForUser>;
pub type ListUserPolicies = ListPolicies<ForUser>;
pub type PutGroupPolicy = PutPolicy<ForGroup>;
pub type GetGroupPolicy = GetPolicy<ForGroup>;
pub type DeleteGroupPolicy = DeletePolicy<ForGroup>;
pub type ListGroupPolicies = ListPolicies<ForGroup>;
pub type PutRolePolicy = PutPolicy<ForRole>;
pub type GetRolePolicy = GetPolicy<ForRole>;
pub type DeleteRolePolicy = DeletePolicy<ForRole>;
pub type ListRolePolicies = ListPolicies<ForRole>;

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, PutUserPolicy>(),
    op::<Core, GetUserPolicy>(),
    op::<Core, DeleteUserPolicy>(),
    op::<Core, ListUserPolicies>(),
    op::<Core, PutGroupPolicy>(),
    op::<Core, GetGroupPolicy>(),
    op::<Core, DeleteGroupPolicy>(),
    op::<Core, ListGroupPolicies>(),
    op::<Core, PutRolePolicy>(),
    op::<Core, GetRolePolicy>(),
    op::<Core, DeleteRolePolicy>(),
    op::<Core, ListRolePolicies>(),
];

/// The entity member and `PolicyName`, as Get/Delete (and Put, before its document) take them.
fn entity_and_policy(a: &mut Args<'_>, param: &str, spec: &v::Spec) -> (String, String) {
    let name = a.req(param, spec).to_string();
    let policy = a.req("PolicyName", &v::POLICY_NAME).to_string();
    (name, policy)
}

pub struct PutPolicy<K> {
    name: String,
    policy: String,
    document: String,
    /// The entity the plan read.
    entity: Option<Entity>,
    kind: PhantomData<K>,
}

impl<K: Holder> Operation<Core> for PutPolicy<K> {
    const NAME: &'static str = K::PUT;
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let (name, policy) = entity_and_policy(&mut a, K::PARAM, K::SPEC);
        let document = a.req("PolicyDocument", &v::DOCUMENT).to_string();
        a.finish()?;
        Ok(PutPolicy { name, policy, document, entity: None, kind: PhantomData })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, entity) = entity_check(core, ctx, K::KIND, Self::NAME, &self.name)?;
        self.entity = entity;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        // A missing entity is reported before a malformed document.
        self.entity.ok_or_else(|| no_such_entity(K::KIND, &self.name))?;
        core.validate_policy(&self.document, PolicyType::Identity)?;
        let (policy, document) = (self.policy, self.document);
        change(core, acct, K::KIND, &self.name, |entity, inline| {
            inline.insert(policy, document);
            let total: usize = inline.values().map(|d| policy_size(d)).sum();
            if total > K::QUOTA {
                return Err(IamError::LimitExceeded(format!(
                    "Maximum policy size of {} bytes exceeded for {} {entity}",
                    K::QUOTA,
                    K::KIND.as_str()
                )));
            }
            Ok(())
        })?;
        empty()
    }
}

pub struct GetPolicy<K> {
    name: String,
    policy: String,
    /// The entity the plan read.
    entity: Option<Entity>,
    kind: PhantomData<K>,
}

impl<K: Holder> Operation<Core> for GetPolicy<K> {
    const NAME: &'static str = K::GET;
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let (name, policy) = entity_and_policy(&mut a, K::PARAM, K::SPEC);
        a.finish()?;
        Ok(GetPolicy { name, policy, entity: None, kind: PhantomData })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, entity) = entity_check(core, ctx, K::KIND, Self::NAME, &self.name)?;
        self.entity = entity;
        one(c)
    }

    fn run(self, _: &Core, _: &RequestContext) -> Result<Output> {
        let e = self.entity.ok_or_else(|| no_such_entity(K::KIND, &self.name))?;
        let doc = e.inline.get(&self.policy).ok_or_else(|| no_such_policy(K::KIND, &self.policy))?;
        let mut w = XmlWriter::new();
        w.elem(K::RESPONSE_NAME, &e.name)
            .elem("PolicyName", &self.policy)
            .elem("PolicyDocument", &encode_document(doc));
        xml(w.finish())
    }
}

pub struct DeletePolicy<K> {
    name: String,
    policy: String,
    kind: PhantomData<K>,
}

impl<K: Holder> Operation<Core> for DeletePolicy<K> {
    const NAME: &'static str = K::DELETE;
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let (name, policy) = entity_and_policy(&mut a, K::PARAM, K::SPEC);
        a.finish()?;
        Ok(DeletePolicy { name, policy, kind: PhantomData })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(entity_check(core, ctx, K::KIND, Self::NAME, &self.name)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let policy = &self.policy;
        change(core, account(ctx), K::KIND, &self.name, |_, inline| {
            inline.remove(policy).map(|_| ()).ok_or_else(|| no_such_policy(K::KIND, policy))
        })?;
        empty()
    }
}

pub struct ListPolicies<K> {
    name: String,
    marker: Option<String>,
    max: usize,
    /// The entity the plan read.
    entity: Option<Entity>,
    kind: PhantomData<K>,
}

impl<K: Holder> Operation<Core> for ListPolicies<K> {
    const NAME: &'static str = K::LIST;
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req(K::PARAM, K::SPEC).to_string();
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListPolicies { name, marker, max, entity: None, kind: PhantomData })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, entity) = entity_check(core, ctx, K::KIND, Self::NAME, &self.name)?;
        self.entity = entity;
        one(c)
    }

    fn run(self, _: &Core, _: &RequestContext) -> Result<Output> {
        let e = self.entity.ok_or_else(|| no_such_entity(K::KIND, &self.name))?;
        let names: Vec<String> = e.inline.into_keys().collect();
        let page = paginate(names, Clone::clone, self.marker.as_deref(), self.max);
        let mut w = XmlWriter::new();
        w.start("PolicyNames");
        for n in &page.items {
            w.elem("member", n);
        }
        w.end();
        super::xml::truncation(&mut w, &page.next);
        xml(w.finish())
    }
}
