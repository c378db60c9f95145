//! Attaching managed policies: Attach/Detach{User,Group,Role}Policy,
//! ListAttached{User,Group,Role}Policies, ListEntitiesForPolicy.

use rampart_policy::ContextValue;
use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_service::{AuthzPlan, Output, RequestContext};

use super::index::{self, EntityRef};
use super::inline::entity_check;
use super::managed_policies::{check_policy_arn, find, policy_check, Managed};
use super::{account, empty, one, paginate, policy_not_attachable, under, xml, Core};
use crate::db::Tx;
use crate::error::{IamError, Result};
use crate::model::{attachment_prefix, tables, AttachmentRec, EntityKind};
use crate::validate::{self as v, Args};

pub const OPS: &[&str] = &[
    "AttachUserPolicy",
    "DetachUserPolicy",
    "ListAttachedUserPolicies",
    "AttachGroupPolicy",
    "DetachGroupPolicy",
    "ListAttachedGroupPolicies",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "ListAttachedRolePolicies",
    "ListEntitiesForPolicy",
];

/// AWS's default quota on managed policies attached to one entity.
const MAX_ATTACHED: usize = 10;

fn kind_of(op: &str) -> (EntityKind, &'static str) {
    if op.contains("Group") {
        (EntityKind::Group, "GroupName")
    } else if op.contains("Role") {
        (EntityKind::Role, "RoleName")
    } else {
        (EntityKind::User, "UserName")
    }
}

fn name_spec(kind: EntityKind) -> &'static v::Spec {
    match kind {
        EntityKind::User => &v::USER_NAME,
        EntityKind::Group => &v::GROUP_NAME,
        EntityKind::Role => &v::ROLE_NAME,
    }
}

pub fn plan(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<AuthzPlan> {
    let mut a = Args::new(q);
    if op == "ListEntitiesForPolicy" {
        let arn = a.req("PolicyArn", &v::ARN);
        a.enumeration("EntityFilter", &["User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy"]);
        a.opt("PathPrefix", &v::PATH);
        a.enumeration("PolicyUsageFilter", &["PermissionsPolicy", "PermissionsBoundary"]);
        a.paging();
        a.finish()?;
        check_policy_arn(arn)?;
        return one(policy_check(core, ctx, op, arn)?.0);
    }
    let (kind, param) = kind_of(op);
    let name = a.req(param, name_spec(kind));
    if op.starts_with("ListAttached") {
        a.opt("PathPrefix", &v::POLICY_PATH);
        a.paging();
        a.finish()?;
        return one(entity_check(core, ctx, kind, op, name)?);
    }
    let arn = a.req("PolicyArn", &v::ARN);
    a.finish()?;
    check_policy_arn(arn)?;
    one(entity_check(core, ctx, kind, op, name)?.with_context("iam:PolicyARN", ContextValue::String(arn.into())))
}

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

fn attached_list(core: &Core, acct: &str, kind: EntityKind, name: &str) -> Result<Vec<String>> {
    use crate::db::Lookup;
    Ok(match kind {
        EntityKind::User => super::users::require(&core.db, acct, name)?.attached,
        EntityKind::Group => super::groups::require(&core.db, acct, name)?.attached,
        EntityKind::Role => {
            core.db
                .entity::<crate::model::RoleRec>(acct, name)?
                .ok_or_else(|| super::roles::no_such_role(name))?
                .attached
        }
    })
}

pub fn run(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<Output> {
    let acct = account(ctx);
    if op == "ListEntitiesForPolicy" {
        return list_entities(core, acct, q);
    }
    let (kind, param) = kind_of(op);
    let name = q.get(param).unwrap_or_default();
    let arn = q.get("PolicyArn").unwrap_or_default();
    if op.starts_with("Attach") {
        // The entity is reported missing before the policy, as AWS does.
        attached_list(core, acct, kind, name)?;
        if find(core, acct, arn)?.is_none() {
            return Err(policy_not_attachable(arn));
        }
        change(core, acct, kind, name, |tx, e, attached| {
            if attached.iter().any(|a| a == arn) {
                return Ok(());
            }
            if attached.len() >= MAX_ATTACHED {
                let what = match kind {
                    EntityKind::User => "PoliciesPerUser",
                    EntityKind::Group => "PoliciesPerGroup",
                    EntityKind::Role => "PoliciesPerRole",
                };
                return Err(IamError::LimitExceeded(format!("Cannot exceed quota for {what}: {MAX_ATTACHED}")));
            }
            attached.push(arn.to_string());
            index::attach(tx, acct, arn, e)
        })?;
        return empty();
    }
    if op.starts_with("Detach") {
        change(core, acct, kind, name, |tx, e, attached| {
            if !attached.iter().any(|a| a == arn) {
                return Err(IamError::NoSuchEntity(format!("Policy {arn} was not found.")));
            }
            attached.retain(|a| a != arn);
            index::detach(tx, acct, arn, e.kind, e.name)
        })?;
        return empty();
    }
    // ListAttached*Policies
    let mut a = Args::new(q);
    let prefix = a.opt("PathPrefix", &v::POLICY_PATH);
    let (marker, max) = a.paging();
    let mut items: Vec<(String, String, String)> = Vec::new();
    for arn in attached_list(core, acct, kind, name)? {
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
    let page = paginate(items, |i| i.0.clone(), marker, max);
    let mut w = XmlWriter::new();
    w.start("AttachedPolicies");
    for (_, n, arn) in &page.items {
        w.start("member").elem("PolicyName", n).elem("PolicyArn", arn).end();
    }
    w.end();
    super::xml::truncation(&mut w, &page.next);
    xml(w.finish())
}

fn list_entities(core: &Core, acct: &str, q: &QueryParams) -> Result<Output> {
    let mut a = Args::new(q);
    let arn = a.req("PolicyArn", &v::ARN);
    let filter = a.enumeration("EntityFilter", &["User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy"]);
    let prefix = a.opt("PathPrefix", &v::PATH);
    let usage = a.enumeration("PolicyUsageFilter", &["PermissionsPolicy", "PermissionsBoundary"]);
    let (marker, max) = a.paging();
    if find(core, acct, arn)?.is_none() {
        return Err(IamError::NoSuchEntity(format!("Policy {arn} was not found.")));
    }
    let table = match usage {
        Some("PermissionsBoundary") => tables::BOUNDARY_USES,
        _ => tables::ATTACHMENTS,
    };
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
    let page = paginate(entities, key, marker, max);
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
