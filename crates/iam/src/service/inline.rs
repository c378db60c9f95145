//! Inline policies of users, groups and roles: Put/Get/Delete/List{User,Group,Role}Policy.

use std::collections::BTreeMap;

use rampart_policy::PolicyType;
use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_service::{AuthzCheck, AuthzPlan, Output, RequestContext};

use super::{account, empty, one, paginate, xml, Core};
use crate::db::Tx;
use crate::error::{IamError, Result};
use crate::model::EntityKind;
use crate::util::{encode_document, policy_size};
use crate::validate::{self as v, Args};

pub const OPS: &[&str] = &[
    "PutUserPolicy",
    "GetUserPolicy",
    "DeleteUserPolicy",
    "ListUserPolicies",
    "PutGroupPolicy",
    "GetGroupPolicy",
    "DeleteGroupPolicy",
    "ListGroupPolicies",
    "PutRolePolicy",
    "GetRolePolicy",
    "DeleteRolePolicy",
    "ListRolePolicies",
];

/// The entity kind an operation is about, its name parameter and AWS's aggregate size quota.
fn kind_of(op: &str) -> (EntityKind, &'static str, usize) {
    if op.contains("Group") {
        (EntityKind::Group, "GroupName", 5120)
    } else if op.contains("Role") {
        (EntityKind::Role, "RoleName", 10240)
    } else {
        (EntityKind::User, "UserName", 2048)
    }
}

fn name_spec(kind: EntityKind) -> &'static v::Spec {
    match kind {
        EntityKind::User => &v::EXISTING_USER_NAME,
        EntityKind::Group => &v::GROUP_NAME,
        EntityKind::Role => &v::ROLE_NAME,
    }
}

/// The entity's check: its ARN and tags (and for roles the boundary, as AWS provides it).
pub fn entity_check(
    core: &Core,
    ctx: &RequestContext,
    kind: EntityKind,
    action: &str,
    name: &str,
) -> Result<AuthzCheck> {
    match kind {
        EntityKind::User => {
            let (c, user) = super::users::user_check(core, ctx, action, name)?;
            Ok(match user.and_then(|u| u.boundary) {
                Some(b) => c.with_context("iam:PermissionsBoundary", rampart_policy::ContextValue::String(b)),
                None => c,
            })
        }
        EntityKind::Group => super::groups::group_check(core, ctx, action, name),
        EntityKind::Role => {
            let (c, role) = super::roles::role_check(core, ctx, action, name)?;
            Ok(super::roles::with_boundary(c, role.as_ref()))
        }
    }
}

pub fn plan(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<AuthzPlan> {
    let (kind, param, _) = kind_of(op);
    let mut a = Args::new(q);
    let name = a.req(param, name_spec(kind));
    if op.starts_with("List") {
        a.paging();
    } else {
        a.req("PolicyName", &v::POLICY_NAME);
    }
    if op.starts_with("Put") {
        a.req("PolicyDocument", &v::DOCUMENT);
    }
    a.finish()?;
    one(entity_check(core, ctx, kind, op, name)?)
}

/// Read an entity's inline policies.
fn read(core: &Core, acct: &str, kind: EntityKind, name: &str) -> Result<(String, BTreeMap<String, String>)> {
    use crate::db::Lookup;
    Ok(match kind {
        EntityKind::User => {
            let u = super::users::require(&core.db, acct, name)?;
            (u.name, u.inline)
        }
        EntityKind::Group => {
            let g = super::groups::require(&core.db, acct, name)?;
            (g.name, g.inline)
        }
        EntityKind::Role => {
            let r =
                core.db.entity::<crate::model::RoleRec>(acct, name)?.ok_or_else(|| super::roles::no_such_role(name))?;
            (r.name, r.inline)
        }
    })
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

pub fn run(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<Output> {
    let acct = account(ctx);
    let (kind, param, quota) = kind_of(op);
    let name = q.get(param).unwrap_or_default();
    let policy = q.get("PolicyName").unwrap_or_default();
    match op.get(..3).unwrap_or_default() {
        "Put" => {
            let doc = q.get("PolicyDocument").unwrap_or_default();
            read(core, acct, kind, name)?;
            core.validate_policy(doc, PolicyType::Identity)?;
            change(core, acct, kind, name, |entity, inline| {
                inline.insert(policy.to_string(), doc.to_string());
                let total: usize = inline.values().map(|d| policy_size(d)).sum();
                if total > quota {
                    return Err(IamError::LimitExceeded(format!(
                        "Maximum policy size of {quota} bytes exceeded for {} {entity}",
                        kind.as_str()
                    )));
                }
                Ok(())
            })?;
            empty()
        }
        "Get" => {
            let (entity, inline) = read(core, acct, kind, name)?;
            let doc = inline.get(policy).ok_or_else(|| no_such_policy(kind, policy))?;
            let mut w = XmlWriter::new();
            let tag = match kind {
                EntityKind::User => "UserName",
                EntityKind::Group => "GroupName",
                EntityKind::Role => "RoleName",
            };
            w.elem(tag, &entity).elem("PolicyName", policy).elem("PolicyDocument", &encode_document(doc));
            xml(w.finish())
        }
        "Del" => {
            change(core, acct, kind, name, |_, inline| {
                inline.remove(policy).map(|_| ()).ok_or_else(|| no_such_policy(kind, policy))
            })?;
            empty()
        }
        _ => {
            let (marker, max) = Args::new(q).paging();
            let (_, inline) = read(core, acct, kind, name)?;
            let names: Vec<String> = inline.into_keys().collect();
            let page = paginate(names, Clone::clone, marker, max);
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
}
