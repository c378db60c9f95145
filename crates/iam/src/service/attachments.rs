//! Attaching managed policies: Attach/Detach{User,Group,Role}Policy,
//! ListAttached{User,Group,Role}Policies, ListEntitiesForPolicy. Like the inline policy
//! operations, one generic type per shape, instantiated per entity kind.

use std::marker::PhantomData;

use rampart_policy::ContextValue;
use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{op, AuthzPlan, Entry, Input, Operation, Output, RequestContext};

use super::index::{self, EntityRef};
use super::inline::{entity_check, no_such_entity, Entity, ForGroup, ForRole, ForUser};
use super::managed_policies::{check_policy_arn, find, policy_check, Managed};
use super::{account, empty, one, paginate, policy_not_attachable, under, xml, Core};
use crate::db::Tx;
use crate::error::{IamError, Result};
use crate::model::{attachment_prefix, tables, AttachmentRec, EntityKind};
use crate::validate::{self as v, Args};

/// AWS's default quota on managed policies attached to one entity.
const MAX_ATTACHED: usize = 10;

/// Apply `f` to an entity's attached list (and the index) in one transaction.
fn change(
    core: &Core,
    acct: &str,
    kind: EntityKind,
    name: &str,
    f: impl FnOnce(&mut Tx<'_>, &EntityRef<'_>, &mut Vec<String>) -> Result<()>,
) -> Result<()> {
    core.db.write(acct, |tx| match kind {
        EntityKind::User => {
            let mut u = super::users::require(tx, acct, name)?;
            let mut attached = std::mem::take(&mut u.attached);
            f(tx, &EntityRef { kind, name: &u.name, id: &u.id, path: &u.path }, &mut attached)?;
            u.attached = attached;
            tx.put_entity(acct, &u.name.clone(), &u)
        }
        EntityKind::Group => {
            let mut g = super::groups::require(tx, acct, name)?;
            let mut attached = std::mem::take(&mut g.attached);
            f(tx, &EntityRef { kind, name: &g.name, id: &g.id, path: &g.path }, &mut attached)?;
            g.attached = attached;
            tx.put_entity(acct, &g.name.clone(), &g)
        }
        EntityKind::Role => {
            let mut r = super::roles::require(tx, acct, name)?;
            let mut attached = std::mem::take(&mut r.attached);
            f(tx, &EntityRef { kind, name: &r.name, id: &r.id, path: &r.path }, &mut attached)?;
            r.attached = attached;
            tx.put_entity(acct, &r.name.clone(), &r)
        }
    })
}

/// What the attachment operations differ in between users, groups and roles.
pub trait Attachable: 'static {
    const KIND: EntityKind;
    /// The member naming the entity, and its constraints.
    const PARAM: &'static str;
    const SPEC: &'static v::Spec;
    /// AWS's name for the quota of managed policies attached to one such entity.
    const QUOTA_NAME: &'static str;
    const ATTACH: &'static str;
    const DETACH: &'static str;
    const LIST: &'static str;
}

impl Attachable for ForUser {
    const KIND: EntityKind = EntityKind::User;
    const PARAM: &'static str = "UserName";
    const SPEC: &'static v::Spec = &v::USER_NAME;
    const QUOTA_NAME: &'static str = "PoliciesPerUser";
    const ATTACH: &'static str = "AttachUserPolicy";
    const DETACH: &'static str = "DetachUserPolicy";
    const LIST: &'static str = "ListAttachedUserPolicies";
}

impl Attachable for ForGroup {
    const KIND: EntityKind = EntityKind::Group;
    const PARAM: &'static str = "GroupName";
    const SPEC: &'static v::Spec = &v::GROUP_NAME;
    const QUOTA_NAME: &'static str = "PoliciesPerGroup";
    const ATTACH: &'static str = "AttachGroupPolicy";
    const DETACH: &'static str = "DetachGroupPolicy";
    const LIST: &'static str = "ListAttachedGroupPolicies";
}

impl Attachable for ForRole {
    const KIND: EntityKind = EntityKind::Role;
    const PARAM: &'static str = "RoleName";
    const SPEC: &'static v::Spec = &v::ROLE_NAME;
    const QUOTA_NAME: &'static str = "PoliciesPerRole";
    const ATTACH: &'static str = "AttachRolePolicy";
    const DETACH: &'static str = "DetachRolePolicy";
    const LIST: &'static str = "ListAttachedRolePolicies";
}

pub type AttachUserPolicy = AttachPolicy<ForUser>;
pub type DetachUserPolicy = DetachPolicy<ForUser>;
pub type ListAttachedUserPolicies = ListAttachedPolicies<ForUser>;
pub type AttachGroupPolicy = AttachPolicy<ForGroup>;
pub type DetachGroupPolicy = DetachPolicy<ForGroup>;
pub type ListAttachedGroupPolicies = ListAttachedPolicies<ForGroup>;
pub type AttachRolePolicy = AttachPolicy<ForRole>;
pub type DetachRolePolicy = DetachPolicy<ForRole>;
pub type ListAttachedRolePolicies = ListAttachedPolicies<ForRole>;

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, AttachUserPolicy>(),
    op::<Core, DetachUserPolicy>(),
    op::<Core, ListAttachedUserPolicies>(),
    op::<Core, AttachGroupPolicy>(),
    op::<Core, DetachGroupPolicy>(),
    op::<Core, ListAttachedGroupPolicies>(),
    op::<Core, AttachRolePolicy>(),
    op::<Core, DetachRolePolicy>(),
    op::<Core, ListAttachedRolePolicies>(),
    op::<Core, ListEntitiesForPolicy>(),
];

/// The entity member and `PolicyArn` (shaped like a policy ARN), as Attach and Detach take them.
fn entity_and_arn(input: &Input, param: &str, spec: &v::Spec) -> Result<(String, String)> {
    let mut a = Args::new(input.query());
    let name = a.req(param, spec).to_string();
    // Attach*/Detach* answer ValidationError "ARN x is not valid." for a value that is not a
    // policy ARN, even one shorter than the model's 20 characters, where the boundary calls
    // answer InvalidInput (recorded AWS responses, localstack
    // tests/aws/services/iam/test_iam_roles.snapshot.json, test_role_managed_policy_errors).
    if let Some(raw) = input.query().get("PolicyArn") {
        if check_policy_arn(raw).is_err() {
            a.finish()?;
            return Err(IamError::Aws(AwsError::validation(format!(
                "ARN {} is not valid.",
                rampart_protocol::echo(raw)
            ))));
        }
    }
    let arn = a.req("PolicyArn", &v::ARN).to_string();
    a.finish()?;
    Ok((name, arn))
}

/// The entity's check, with the policy as `iam:PolicyARN`.
fn attach_check(
    core: &Core,
    ctx: &RequestContext,
    kind: EntityKind,
    action: &str,
    name: &str,
    arn: &str,
) -> Result<(rampart_service::AuthzCheck, Option<Entity>)> {
    let (c, entity) = entity_check(core, ctx, kind, action, name)?;
    Ok((c.with_context("iam:PolicyARN", ContextValue::String(arn.to_string())), entity))
}

pub struct AttachPolicy<K> {
    name: String,
    arn: String,
    /// The entity the plan read.
    entity: Option<Entity>,
    kind: PhantomData<K>,
}

impl<K: Attachable> Operation<Core> for AttachPolicy<K> {
    const NAME: &'static str = K::ATTACH;
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (name, arn) = entity_and_arn(input, K::PARAM, K::SPEC)?;
        Ok(AttachPolicy { name, arn, entity: None, kind: PhantomData })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, entity) = attach_check(core, ctx, K::KIND, Self::NAME, &self.name, &self.arn)?;
        self.entity = entity;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let arn = &self.arn;
        // The entity is reported missing before the policy, as AWS does.
        self.entity.ok_or_else(|| no_such_entity(K::KIND, &self.name))?;
        if find(core, acct, arn)?.is_none() {
            return Err(policy_not_attachable(arn));
        }
        change(core, acct, K::KIND, &self.name, |tx, e, attached| {
            if attached.iter().any(|a| a == arn) {
                return Ok(());
            }
            if attached.len() >= MAX_ATTACHED {
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for {}: {MAX_ATTACHED}",
                    K::QUOTA_NAME
                )));
            }
            attached.push(arn.clone());
            index::attach(tx, acct, arn, e)
        })?;
        empty()
    }
}

pub struct DetachPolicy<K> {
    name: String,
    arn: String,
    kind: PhantomData<K>,
}

impl<K: Attachable> Operation<Core> for DetachPolicy<K> {
    const NAME: &'static str = K::DETACH;
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (name, arn) = entity_and_arn(input, K::PARAM, K::SPEC)?;
        Ok(DetachPolicy { name, arn, kind: PhantomData })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(attach_check(core, ctx, K::KIND, Self::NAME, &self.name, &self.arn)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let arn = &self.arn;
        change(core, acct, K::KIND, &self.name, |tx, e, attached| {
            if !attached.iter().any(|a| a == arn) {
                return Err(IamError::NoSuchEntity(format!("Policy {arn} was not found.")));
            }
            attached.retain(|a| a != arn);
            index::detach(tx, acct, arn, e.kind, e.name)
        })?;
        empty()
    }
}

pub struct ListAttachedPolicies<K> {
    name: String,
    prefix: Option<String>,
    marker: Option<String>,
    max: usize,
    /// The entity the plan read.
    entity: Option<Entity>,
    kind: PhantomData<K>,
}

impl<K: Attachable> Operation<Core> for ListAttachedPolicies<K> {
    const NAME: &'static str = K::LIST;
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req(K::PARAM, K::SPEC).to_string();
        let prefix = a.opt("PathPrefix", &v::POLICY_PATH).map(str::to_string);
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListAttachedPolicies { name, prefix, marker, max, entity: None, kind: PhantomData })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, entity) = entity_check(core, ctx, K::KIND, Self::NAME, &self.name)?;
        self.entity = entity;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let prefix = self.prefix.as_deref();
        let entity = self.entity.ok_or_else(|| no_such_entity(K::KIND, &self.name))?;
        let mut items: Vec<(String, String, String)> = Vec::new();
        for arn in entity.attached {
            match find(core, acct, &arn)? {
                Some(Managed::Local(p)) if under(&p.path, prefix) => {
                    items.push((format!("{}|{arn}", p.name.to_ascii_lowercase()), p.name.clone(), arn))
                }
                Some(Managed::Aws(p)) if under(p.path, prefix) => {
                    items.push((format!("{}|{arn}", p.name.to_ascii_lowercase()), p.name.to_string(), arn))
                }
                _ => {}
            }
        }
        items.sort();
        let page = paginate(items, |i| i.0.clone(), self.marker.as_deref(), self.max);
        let mut w = XmlWriter::new();
        w.start("AttachedPolicies");
        for (_, n, arn) in &page.items {
            w.start("member").elem("PolicyName", n).elem("PolicyArn", arn).end();
        }
        w.end();
        super::xml::truncation(&mut w, &page.next);
        xml(w.finish())
    }
}

pub struct ListEntitiesForPolicy {
    arn: String,
    /// `User`, `Role`, `Group` (others list every kind).
    filter: Option<String>,
    prefix: Option<String>,
    /// `PermissionsBoundary` lists boundary uses; otherwise attachments.
    usage: Option<String>,
    marker: Option<String>,
    max: usize,
    /// Whether the plan found the policy.
    exists: bool,
}

impl Operation<Core> for ListEntitiesForPolicy {
    const NAME: &'static str = "ListEntitiesForPolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let arn = a.req("PolicyArn", &v::ARN).to_string();
        let filter = a
            .enumeration("EntityFilter", &["User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy"])
            .map(str::to_string);
        let prefix = a.opt("PathPrefix", &v::PATH).map(str::to_string);
        let usage =
            a.enumeration("PolicyUsageFilter", &["PermissionsPolicy", "PermissionsBoundary"]).map(str::to_string);
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        check_policy_arn(&arn)?;
        Ok(ListEntitiesForPolicy { arn, filter, prefix, usage, marker, max, exists: false })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, found) = policy_check(core, ctx, Self::NAME, &self.arn)?;
        self.exists = found.is_some();
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let arn = &self.arn;
        if !self.exists {
            return Err(IamError::NoSuchEntity(format!("Policy {arn} was not found.")));
        }
        let table = match self.usage.as_deref() {
            Some("PermissionsBoundary") => tables::BOUNDARY_USES,
            _ => tables::ATTACHMENTS,
        };
        let (prefix, filter) = (self.prefix.as_deref(), self.filter.as_deref());
        let mut entities: Vec<AttachmentRec> = core
            .db
            .scan::<AttachmentRec>(table, &attachment_prefix(acct, arn))?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| super::under(&r.path, prefix))
            .filter(|r| match filter {
                Some("User") => r.kind == EntityKind::User,
                Some("Group") => r.kind == EntityKind::Group,
                Some("Role") => r.kind == EntityKind::Role,
                _ => true,
            })
            .collect();
        let key = |r: &AttachmentRec| format!("{}|{}", r.kind.as_str(), r.name.to_ascii_lowercase());
        entities.sort_by_key(key);
        let page = paginate(entities, key, self.marker.as_deref(), self.max);
        let mut w = XmlWriter::new();
        for (kind, list, name_tag, id_tag) in [
            (EntityKind::Group, "PolicyGroups", "GroupName", "GroupId"),
            (EntityKind::User, "PolicyUsers", "UserName", "UserId"),
            (EntityKind::Role, "PolicyRoles", "RoleName", "RoleId"),
        ] {
            w.start(list);
            for r in page.items.iter().filter(|r| r.kind == kind) {
                w.start("member").elem(name_tag, &r.name).elem(id_tag, &r.id).end();
            }
            w.end();
        }
        super::xml::truncation(&mut w, &page.next);
        xml(w.finish())
    }
}
