//! Instance profiles: Create/Get/Delete/ListInstanceProfiles, Add/RemoveRoleFromInstanceProfile,
//! ListInstanceProfilesForRole, instance profile tags.

use rampart_policy::ContextValue;
use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_service::{AuthzCheck, AuthzPlan, ContextKey, Output, RequestContext};

use super::roles::{no_such_role, role_check};
use super::users::tag_page;
use super::{
    account, check, check_new_tags, empty, merge_tags, one, paginate, remove_tags, request_tags, resource_tags, under,
    xml, Core,
};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{tables, ProfileRec, RoleRec};
use crate::util::{iam_arn, now, unique_id};
use crate::validate::{self as v, Args};

pub const OPS: &[&str] = &[
    "CreateInstanceProfile",
    "GetInstanceProfile",
    "DeleteInstanceProfile",
    "ListInstanceProfiles",
    "AddRoleToInstanceProfile",
    "RemoveRoleFromInstanceProfile",
    "ListInstanceProfilesForRole",
    "TagInstanceProfile",
    "UntagInstanceProfile",
    "ListInstanceProfileTags",
];

const MAX_PROFILES: usize = 1000;

fn no_such_profile(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("Instance Profile {name} cannot be found."))
}

fn require(tx: &impl Lookup, acct: &str, name: &str) -> Result<ProfileRec> {
    tx.entity::<ProfileRec>(acct, name)?.ok_or_else(|| no_such_profile(name))
}

fn profile_check(core: &Core, ctx: &RequestContext, action: &str, name: &str) -> Result<AuthzCheck> {
    let acct = account(ctx);
    Ok(match core.db.entity::<ProfileRec>(acct, name)? {
        Some(p) => resource_tags(check(action, p.arn(acct)), &p.tags, false),
        None => check(action, iam_arn(acct, "instance-profile", "/", name)),
    })
}

pub fn plan(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<AuthzPlan> {
    let acct = account(ctx);
    let mut a = Args::new(q);
    match op {
        "CreateInstanceProfile" => {
            let name = a.req("InstanceProfileName", &v::PROFILE_NAME);
            let path = a.opt("Path", &v::PATH).unwrap_or("/");
            let tags = a.tags("Tags");
            a.finish()?;
            one(request_tags(check(op, iam_arn(acct, "instance-profile", path, name)), &tags))
        }
        "ListInstanceProfiles" => {
            let prefix = a.opt("PathPrefix", &v::PATH_PREFIX);
            a.paging();
            a.finish()?;
            one(check(op, format!("arn:aws:iam::{acct}:instance-profile{}", prefix.unwrap_or("/"))))
        }
        "ListInstanceProfilesForRole" => {
            let role = a.req("RoleName", &v::ROLE_NAME);
            a.paging();
            a.finish()?;
            one(role_check(core, ctx, op, role)?.0)
        }
        _ => {
            let name = a.req("InstanceProfileName", &v::PROFILE_NAME);
            let mut extra: Vec<(ContextKey, ContextValue)> = Vec::new();
            let mut role = None;
            match op {
                "GetInstanceProfile" | "DeleteInstanceProfile" => {}
                "AddRoleToInstanceProfile" | "RemoveRoleFromInstanceProfile" => {
                    role = Some(a.req("RoleName", &v::ROLE_NAME));
                }
                "ListInstanceProfileTags" => {
                    a.paging();
                }
                "TagInstanceProfile" => {
                    let tags = a.tags("Tags");
                    if !q.contains("Tags") {
                        a.error("Value null at 'tags' failed to satisfy constraint: Member must not be null".into());
                    }
                    extra = request_tags(AuthzCheck::new("", ""), &tags).context;
                }
                "UntagInstanceProfile" => {
                    let keys = a.list("TagKeys", &v::TAG_KEY, Some(50), true);
                    extra
                        .push(("aws:TagKeys".into(), ContextValue::List(keys.iter().map(|k| k.to_string()).collect())));
                }
                _ => return Err(IamError::Internal(format!("unrouted operation {op}"))),
            }
            a.finish()?;
            let mut c = profile_check(core, ctx, op, name)?;
            c.context.extend(extra);
            let mut checks = vec![c];
            if let (Some(r), "AddRoleToInstanceProfile") = (role, op) {
                // Putting a role in a profile passes it to EC2: AWS requires iam:PassRole on the role.
                let pass = role_check(core, ctx, "PassRole", r)?.0;
                checks.push(pass.with_context("iam:PassedToService", ContextValue::String("ec2.amazonaws.com".into())));
            }
            Ok(AuthzPlan::Checks(checks))
        }
    }
}

fn roles_of(core: &Core, acct: &str, p: &ProfileRec) -> Result<Vec<RoleRec>> {
    let mut out = Vec::with_capacity(p.roles.len());
    for r in &p.roles {
        if let Some(role) = core.db.entity::<RoleRec>(acct, r)? {
            out.push(role);
        }
    }
    Ok(out)
}

fn profile_list(core: &Core, acct: &str, profiles: Vec<ProfileRec>, q: &QueryParams) -> Result<Output> {
    let (marker, max) = Args::new(q).paging();
    let page = paginate(profiles, |p| p.name.to_ascii_lowercase(), marker, max);
    let mut w = XmlWriter::new();
    w.start("InstanceProfiles");
    for p in &page.items {
        super::xml::profile(&mut w, "member", acct, p, &roles_of(core, acct, p)?, false);
    }
    w.end();
    super::xml::truncation(&mut w, &page.next);
    xml(w.finish())
}

fn modify(core: &Core, acct: &str, name: &str, f: impl FnOnce(&mut ProfileRec) -> Result<()>) -> Result<()> {
    core.db.write(acct, |tx| {
        let mut p = require(tx, acct, name)?;
        f(&mut p)?;
        tx.put_entity(acct, &p.name.clone(), &p)
    })
}

pub fn run(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<Output> {
    let acct = account(ctx);
    let name = q.get("InstanceProfileName").unwrap_or_default();
    let role_name = q.get("RoleName").unwrap_or_default();
    match op {
        "CreateInstanceProfile" => {
            let tags = Args::new(q).tags("Tags");
            check_new_tags(&tags)?;
            let path = q.get("Path").unwrap_or("/");
            let p = core.db.write(acct, |tx| {
                if tx.entity::<ProfileRec>(acct, name)?.is_some() {
                    return Err(IamError::AlreadyExists(format!("Instance Profile {name} already exists.")));
                }
                if tx.count(tables::PROFILES, &format!("{acct}/"))? >= MAX_PROFILES {
                    return Err(IamError::LimitExceeded(format!(
                        "Cannot exceed quota for InstanceProfilesPerAccount: {MAX_PROFILES}"
                    )));
                }
                let p = ProfileRec {
                    name: name.to_string(),
                    id: unique_id("AIPA"),
                    path: path.to_string(),
                    created: now(),
                    roles: Vec::new(),
                    tags,
                };
                tx.put_entity(acct, name, &p)?;
                Ok(p)
            })?;
            let mut w = XmlWriter::new();
            super::xml::profile(&mut w, "InstanceProfile", acct, &p, &[], true);
            xml(w.finish())
        }
        "GetInstanceProfile" => {
            let p = require(&core.db, acct, name)?;
            let mut w = XmlWriter::new();
            super::xml::profile(&mut w, "InstanceProfile", acct, &p, &roles_of(core, acct, &p)?, true);
            xml(w.finish())
        }
        "DeleteInstanceProfile" => {
            core.db.write(acct, |tx| {
                let p = require(tx, acct, name)?;
                if !p.roles.is_empty() {
                    return Err(IamError::DeleteConflict(
                        "Cannot delete entity, must remove roles from instance profile first.".into(),
                    ));
                }
                tx.delete_entity::<ProfileRec>(acct, &p.name)?;
                Ok(())
            })?;
            empty()
        }
        "ListInstanceProfiles" => {
            let prefix = Args::new(q).opt("PathPrefix", &v::PATH_PREFIX);
            let profiles: Vec<ProfileRec> =
                core.db.entities::<ProfileRec>(acct)?.into_iter().filter(|p| under(&p.path, prefix)).collect();
            profile_list(core, acct, profiles, q)
        }
        "ListInstanceProfilesForRole" => {
            let role = core.db.entity::<RoleRec>(acct, role_name)?.ok_or_else(|| no_such_role(role_name))?;
            let mut profiles = Vec::new();
            for p in &role.instance_profiles {
                if let Some(p) = core.db.entity::<ProfileRec>(acct, p)? {
                    profiles.push(p);
                }
            }
            profiles.sort_by_key(|p| p.name.to_ascii_lowercase());
            profile_list(core, acct, profiles, q)
        }
        "AddRoleToInstanceProfile" | "RemoveRoleFromInstanceProfile" => {
            let add = op == "AddRoleToInstanceProfile";
            core.db.write(acct, |tx| {
                let mut p = require(tx, acct, name)?;
                let mut r = super::roles::require(tx, acct, role_name)?;
                let member = p.roles.iter().any(|x| x.eq_ignore_ascii_case(&r.name));
                if add {
                    if !p.roles.is_empty() {
                        return Err(IamError::LimitExceeded(
                            "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1".into(),
                        ));
                    }
                    p.roles.push(r.name.clone());
                    r.instance_profiles.push(p.name.clone());
                } else {
                    if !member {
                        return Err(no_such_role(role_name));
                    }
                    p.roles.retain(|x| !x.eq_ignore_ascii_case(&r.name));
                    r.instance_profiles.retain(|x| !x.eq_ignore_ascii_case(&p.name));
                }
                tx.put_entity(acct, &p.name.clone(), &p)?;
                tx.put_entity(acct, &r.name.clone(), &r)
            })?;
            empty()
        }
        "ListInstanceProfileTags" => {
            let (marker, max) = Args::new(q).paging();
            tag_page(require(&core.db, acct, name)?.tags, marker, max)
        }
        "TagInstanceProfile" => {
            let tags = Args::new(q).tags("Tags");
            check_new_tags(&tags)?;
            modify(core, acct, name, |p| merge_tags(&mut p.tags, tags))?;
            empty()
        }
        "UntagInstanceProfile" => {
            let keys = q.list("TagKeys.member");
            modify(core, acct, name, |p| {
                remove_tags(&mut p.tags, &keys);
                Ok(())
            })?;
            empty()
        }
        _ => Err(IamError::Internal(format!("unrouted operation {op}"))),
    }
}
