//! Roles: CreateRole, GetRole, UpdateRole, UpdateRoleDescription, UpdateAssumeRolePolicy,
//! DeleteRole, ListRoles, role tags, role boundaries.

use rampart_policy::{ContextValue, PolicyType};
use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_service::{AuthzCheck, AuthzPlan, ContextKey, Output, RequestContext};

use super::index::{self, EntityRef};
use super::users::{require_boundary, tag_page};
use super::{
    account, check, check_new_tags, empty, merge_tags, one, paginate, remove_tags, request_tags, resource_tags, under,
    xml, Core,
};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{tables, EntityKind, RoleRec, Tag};
use crate::util::{iam_arn, now, policy_size, unique_id};
use crate::validate::{self as v, Args};

pub const OPS: &[&str] = &[
    "CreateRole",
    "GetRole",
    "UpdateRole",
    "UpdateRoleDescription",
    "UpdateAssumeRolePolicy",
    "DeleteRole",
    "ListRoles",
    "TagRole",
    "UntagRole",
    "ListRoleTags",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
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
        return Err(IamError::LimitExceeded(format!("Cannot exceed quota for ACLSizePerRole: {MAX_TRUST_SIZE}")));
    }
    Ok(())
}

struct Create<'a> {
    name: &'a str,
    path: &'a str,
    trust: &'a str,
    description: Option<&'a str>,
    max_session: i64,
    boundary: Option<&'a str>,
    tags: Vec<Tag>,
}

fn parse_create(q: &QueryParams) -> Result<Create<'_>> {
    let mut a = Args::new(q);
    let c = Create {
        path: a.opt("Path", &v::PATH).unwrap_or("/"),
        name: a.req("RoleName", &v::ROLE_NAME),
        trust: a.req("AssumeRolePolicyDocument", &v::DOCUMENT),
        description: a.opt("Description", &v::ROLE_DESCRIPTION),
        max_session: a.int("MaxSessionDuration", 3600, 43200).unwrap_or(3600),
        boundary: a.opt("PermissionsBoundary", &v::ARN),
        tags: a.tags("Tags"),
    };
    a.finish()?;
    Ok(c)
}

pub fn plan(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<AuthzPlan> {
    let acct = account(ctx);
    if op == "CreateRole" {
        let c = parse_create(q)?;
        let mut ch = request_tags(check(op, iam_arn(acct, "role", c.path, c.name)), &c.tags);
        if let Some(b) = c.boundary {
            ch = ch.with_context("iam:PermissionsBoundary", ContextValue::String(b.into()));
        }
        return one(ch);
    }
    if op == "ListRoles" {
        let mut a = Args::new(q);
        let prefix = a.opt("PathPrefix", &v::PATH_PREFIX);
        a.paging();
        a.finish()?;
        return one(check(op, format!("arn:aws:iam::{acct}:role{}", prefix.unwrap_or("/"))));
    }
    let mut a = Args::new(q);
    let name = a.req("RoleName", &v::ROLE_NAME);
    let mut extra: Vec<(ContextKey, ContextValue)> = Vec::new();
    match op {
        "GetRole" | "DeleteRole" => {}
        "UpdateRole" => {
            a.opt("Description", &v::ROLE_DESCRIPTION);
            a.int("MaxSessionDuration", 3600, 43200);
        }
        "UpdateRoleDescription" => {
            a.req("Description", &v::ROLE_DESCRIPTION);
        }
        "UpdateAssumeRolePolicy" => {
            a.req("PolicyDocument", &v::DOCUMENT);
        }
        "ListRoleTags" => {
            a.paging();
        }
        "TagRole" => {
            let tags = a.tags("Tags");
            if !q.contains("Tags") {
                a.error("Value null at 'tags' failed to satisfy constraint: Member must not be null".into());
            }
            extra = request_tags(AuthzCheck::new("", ""), &tags).context;
        }
        "UntagRole" => {
            let keys = a.list("TagKeys", &v::TAG_KEY, Some(50), true);
            extra.push(("aws:TagKeys".into(), ContextValue::List(keys.iter().map(|k| k.to_string()).collect())));
        }
        "PutRolePermissionsBoundary" => {
            let b = a.req("PermissionsBoundary", &v::ARN);
            extra.push(("iam:PermissionsBoundary".into(), ContextValue::String(b.into())));
        }
        "DeleteRolePermissionsBoundary" => {}
        _ => return Err(IamError::Internal(format!("unrouted operation {op}"))),
    }
    a.finish()?;
    let (mut c, role) = role_check(core, ctx, op, name)?;
    if op == "DeleteRolePermissionsBoundary" {
        c = with_boundary(c, role.as_ref());
    }
    c.context.extend(extra);
    one(c)
}

fn role_xml(acct: &str, tag: &'static str, r: &RoleRec) -> Result<Output> {
    let mut w = XmlWriter::new();
    super::xml::role(&mut w, tag, acct, r, true);
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

pub fn run(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<Output> {
    let acct = account(ctx);
    let name = q.get("RoleName").unwrap_or_default();
    match op {
        "CreateRole" => {
            let c = parse_create(q)?;
            check_new_tags(&c.tags)?;
            check_trust(core, c.trust)?;
            if let Some(b) = c.boundary {
                require_boundary(core, acct, b)?;
            }
            let role = core.db.write(acct, |tx| {
                if tx.entity::<RoleRec>(acct, c.name)?.is_some() {
                    return Err(IamError::AlreadyExists(format!("Role with name {} already exists.", c.name)));
                }
                if tx.count(tables::ROLES, &format!("{acct}/"))? >= MAX_ROLES {
                    return Err(IamError::LimitExceeded(format!(
                        "Cannot exceed quota for RolesPerAccount: {MAX_ROLES}"
                    )));
                }
                let role = RoleRec {
                    name: c.name.to_string(),
                    id: unique_id("AROA"),
                    path: c.path.to_string(),
                    created: now(),
                    trust: c.trust.to_string(),
                    description: c.description.map(str::to_string),
                    max_session: c.max_session,
                    tags: c.tags,
                    boundary: c.boundary.map(str::to_string),
                    inline: Default::default(),
                    attached: Vec::new(),
                    instance_profiles: Vec::new(),
                    last_used: None,
                };
                if let Some(b) = c.boundary {
                    let e = EntityRef { kind: EntityKind::Role, name: &role.name, id: &role.id, path: &role.path };
                    index::set_boundary(tx, acct, None, Some(b), &e)?;
                }
                tx.put_entity(acct, c.name, &role)?;
                Ok(role)
            })?;
            let mut w = XmlWriter::new();
            super::xml::role(&mut w, "Role", acct, &role, true);
            xml(w.finish())
        }
        "GetRole" => role_xml(acct, "Role", &require(&core.db, acct, name)?),
        "UpdateRole" => {
            let description = q.get("Description");
            let max = Args::new(q).int("MaxSessionDuration", 3600, 43200);
            modify(core, acct, name, |r| {
                if let Some(d) = description {
                    r.description = Some(d.to_string());
                }
                if let Some(m) = max {
                    r.max_session = m;
                }
                Ok(())
            })?;
            xml(String::new())
        }
        "UpdateRoleDescription" => {
            let description = q.get("Description").unwrap_or_default().to_string();
            let r = modify(core, acct, name, |r| {
                r.description = Some(description);
                Ok(())
            })?;
            role_xml(acct, "Role", &r)
        }
        "UpdateAssumeRolePolicy" => {
            let doc = q.get("PolicyDocument").unwrap_or_default();
            require(&core.db, acct, name)?;
            check_trust(core, doc)?;
            modify(core, acct, name, |r| {
                r.trust = doc.to_string();
                Ok(())
            })?;
            empty()
        }
        "DeleteRole" => {
            core.db.write(acct, |tx| {
                let r = require(tx, acct, name)?;
                if let Some(e) = super::service_linked::protected(&r) {
                    return Err(e);
                }
                let conflict =
                    |m: &str| Err(IamError::DeleteConflict(format!("Cannot delete entity, must {m} first.")));
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
        "ListRoles" => {
            let mut a = Args::new(q);
            let prefix = a.opt("PathPrefix", &v::PATH_PREFIX);
            let (marker, max) = a.paging();
            let roles: Vec<RoleRec> =
                core.db.entities::<RoleRec>(acct)?.into_iter().filter(|r| under(&r.path, prefix)).collect();
            let page = paginate(roles, |r| r.name.to_ascii_lowercase(), marker, max);
            let mut w = XmlWriter::new();
            w.start("Roles");
            for r in &page.items {
                super::xml::role(&mut w, "member", acct, r, false);
            }
            w.end();
            super::xml::truncation(&mut w, &page.next);
            xml(w.finish())
        }
        "ListRoleTags" => {
            let (marker, max) = Args::new(q).paging();
            tag_page(require(&core.db, acct, name)?.tags, marker, max)
        }
        "TagRole" => {
            let tags = Args::new(q).tags("Tags");
            check_new_tags(&tags)?;
            modify(core, acct, name, |r| merge_tags(&mut r.tags, tags))?;
            empty()
        }
        "UntagRole" => {
            let keys = q.list("TagKeys.member");
            modify(core, acct, name, |r| {
                remove_tags(&mut r.tags, &keys);
                Ok(())
            })?;
            empty()
        }
        "PutRolePermissionsBoundary" | "DeleteRolePermissionsBoundary" => {
            let new = if op == "PutRolePermissionsBoundary" { q.get("PermissionsBoundary") } else { None };
            if let Some(arn) = new {
                require_boundary(core, acct, arn)?;
            }
            core.db.write(acct, |tx| {
                let mut r = require(tx, acct, name)?;
                let old = std::mem::replace(&mut r.boundary, new.map(str::to_string));
                let e = EntityRef { kind: EntityKind::Role, name: &r.name, id: &r.id, path: &r.path };
                index::set_boundary(tx, acct, old.as_deref(), new, &e)?;
                tx.put_entity(acct, &r.name.clone(), &r)
            })?;
            empty()
        }
        _ => Err(IamError::Internal(format!("unrouted operation {op}"))),
    }
}
