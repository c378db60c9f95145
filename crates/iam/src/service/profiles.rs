//! Instance profiles: Create/Get/Delete/ListInstanceProfiles, Add/RemoveRoleFromInstanceProfile,
//! ListInstanceProfilesForRole, instance profile tags.

use rampart_policy::ContextValue;
use rampart_protocol::xml::XmlWriter;
use rampart_service::{op, AuthzCheck, AuthzPlan, Entry, Input, Operation, Output, RequestContext};

use super::roles::{no_such_role, role_check};
use super::users::tag_page;
use super::xml::ProfileView;
use super::{
    account, check, check_new_tags, empty, merge_tags, one, paginate, remove_tags, request_tags, resource_tags, under,
    xml, Core, PathPage,
};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{ProfileRec, RoleRec, Tag};
use crate::util::{iam_arn, now, unique_id};
use crate::validate::{self as v, Args};

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, CreateInstanceProfile>(),
    op::<Core, GetInstanceProfile>(),
    op::<Core, DeleteInstanceProfile>(),
    op::<Core, ListInstanceProfiles>(),
    op::<Core, AddRoleToInstanceProfile>(),
    op::<Core, RemoveRoleFromInstanceProfile>(),
    op::<Core, ListInstanceProfilesForRole>(),
    op::<Core, TagInstanceProfile>(),
    op::<Core, UntagInstanceProfile>(),
    op::<Core, ListInstanceProfileTags>(),
];

const MAX_PROFILES: usize = 1000;

fn no_such_profile(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("Instance Profile {name} cannot be found."))
}

fn require(tx: &impl Lookup, acct: &str, name: &str) -> Result<ProfileRec> {
    tx.entity::<ProfileRec>(acct, name)?.ok_or_else(|| no_such_profile(name))
}

/// `iam:{action}` on the named profile (its real ARN when it exists), with its tags as context;
/// and the profile it read.
fn profile_check(
    core: &Core,
    ctx: &RequestContext,
    action: &str,
    name: &str,
) -> Result<(AuthzCheck, Option<ProfileRec>)> {
    let acct = account(ctx);
    let profile = core.db.entity::<ProfileRec>(acct, name)?;
    let c = match &profile {
        Some(p) => resource_tags(check(action, p.arn(acct)), &p.tags, false),
        None => check(action, iam_arn(acct, "instance-profile", "/", name)),
    };
    Ok((c, profile))
}

/// The profile a call names, alone: `InstanceProfileName`.
fn profile_name_only(input: &Input) -> Result<String> {
    let mut a = Args::new(input.query());
    let name = a.req("InstanceProfileName", &v::PROFILE_NAME).to_string();
    a.finish()?;
    Ok(name)
}

pub struct CreateInstanceProfile {
    name: String,
    path: String,
    tags: Vec<Tag>,
}

impl Operation<Core> for CreateInstanceProfile {
    const NAME: &'static str = "CreateInstanceProfile";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("InstanceProfileName", &v::PROFILE_NAME).to_string();
        let path = a.opt("Path", &v::PATH).unwrap_or("/").to_string();
        let tags = a.tags("Tags");
        a.finish()?;
        Ok(CreateInstanceProfile { name, path, tags })
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let arn = iam_arn(account(ctx), "instance-profile", &self.path, &self.name);
        one(request_tags(check(Self::NAME, arn), &self.tags))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let CreateInstanceProfile { name, path, tags } = self;
        check_new_tags(&tags)?;
        let p = core.db.write(acct, |tx| {
            if tx.entity::<ProfileRec>(acct, &name)?.is_some() {
                return Err(IamError::AlreadyExists(format!("Instance Profile {name} already exists.")));
            }
            if tx.count_entities::<ProfileRec>(acct)? >= MAX_PROFILES {
                return Err(IamError::quota("InstanceProfilesPerAccount", MAX_PROFILES));
            }
            let p = ProfileRec {
                name: name.clone(),
                id: unique_id("AIPA"),
                path: path.clone(),
                created: now(),
                roles: Vec::new(),
                tags: tags.clone(),
            };
            tx.put_entity(acct, &name, &p)?;
            Ok(p)
        })?;
        let mut w = XmlWriter::new();
        super::xml::profile(&mut w, "InstanceProfile", acct, &p, &[], ProfileView::Create);
        xml(w.finish())
    }
}

pub struct GetInstanceProfile {
    name: String,
    /// The profile the plan read, which the answer shows.
    profile: Option<ProfileRec>,
}

impl Operation<Core> for GetInstanceProfile {
    const NAME: &'static str = "GetInstanceProfile";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(GetInstanceProfile { name: profile_name_only(input)?, profile: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, profile) = profile_check(core, ctx, Self::NAME, &self.name)?;
        self.profile = profile;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let p = self.profile.ok_or_else(|| no_such_profile(&self.name))?;
        let mut w = XmlWriter::new();
        super::xml::profile(&mut w, "InstanceProfile", acct, &p, &roles_of(core, acct, &p)?, ProfileView::Get);
        xml(w.finish())
    }
}

pub struct DeleteInstanceProfile {
    name: String,
}

impl Operation<Core> for DeleteInstanceProfile {
    const NAME: &'static str = "DeleteInstanceProfile";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(DeleteInstanceProfile { name: profile_name_only(input)? })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(profile_check(core, ctx, Self::NAME, &self.name)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        core.db.write(acct, |tx| {
            let p = require(tx, acct, &self.name)?;
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
}

pub struct ListInstanceProfiles(PathPage);

impl Operation<Core> for ListInstanceProfiles {
    const NAME: &'static str = "ListInstanceProfiles";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        PathPage::parse(input).map(ListInstanceProfiles)
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, self.0.resource(ctx, "instance-profile")))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let profiles: Vec<ProfileRec> = core
            .db
            .entities::<ProfileRec>(acct)?
            .into_iter()
            .filter(|p| under(&p.path, self.0.prefix.as_deref()))
            .collect();
        profile_list(core, acct, profiles, self.0.marker.as_deref(), self.0.max)
    }
}

/// The members of AddRoleToInstanceProfile and RemoveRoleFromInstanceProfile.
fn membership(input: &Input) -> Result<(String, String)> {
    let mut a = Args::new(input.query());
    let name = a.req("InstanceProfileName", &v::PROFILE_NAME).to_string();
    let role = a.req("RoleName", &v::ROLE_NAME).to_string();
    a.finish()?;
    Ok((name, role))
}

pub struct AddRoleToInstanceProfile {
    name: String,
    role: String,
}

impl Operation<Core> for AddRoleToInstanceProfile {
    const NAME: &'static str = "AddRoleToInstanceProfile";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (name, role) = membership(input)?;
        Ok(AddRoleToInstanceProfile { name, role })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let c = profile_check(core, ctx, Self::NAME, &self.name)?.0;
        // Putting a role in a profile passes it to EC2: AWS requires iam:PassRole on the role.
        let pass = role_check(core, ctx, "PassRole", &self.role)?.0;
        let pass = pass.with_context("iam:PassedToService", ContextValue::String("ec2.amazonaws.com".into()));
        Ok(AuthzPlan::Checks(vec![c, pass]))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        core.db.write(acct, |tx| {
            let mut p = require(tx, acct, &self.name)?;
            let mut r = super::roles::require(tx, acct, &self.role)?;
            if !p.roles.is_empty() {
                return Err(IamError::LimitExceeded(
                    "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1".into(),
                ));
            }
            p.roles.push(r.name.clone());
            r.instance_profiles.push(p.name.clone());
            tx.put_entity(acct, &p.name.clone(), &p)?;
            tx.put_entity(acct, &r.name.clone(), &r)
        })?;
        empty()
    }
}

pub struct RemoveRoleFromInstanceProfile {
    name: String,
    role: String,
}

impl Operation<Core> for RemoveRoleFromInstanceProfile {
    const NAME: &'static str = "RemoveRoleFromInstanceProfile";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (name, role) = membership(input)?;
        Ok(RemoveRoleFromInstanceProfile { name, role })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(profile_check(core, ctx, Self::NAME, &self.name)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        core.db.write(acct, |tx| {
            let mut p = require(tx, acct, &self.name)?;
            let mut r = super::roles::require(tx, acct, &self.role)?;
            if !p.roles.iter().any(|x| x.eq_ignore_ascii_case(&r.name)) {
                return Err(no_such_role(&self.role));
            }
            p.roles.retain(|x| !x.eq_ignore_ascii_case(&r.name));
            r.instance_profiles.retain(|x| !x.eq_ignore_ascii_case(&p.name));
            tx.put_entity(acct, &p.name.clone(), &p)?;
            tx.put_entity(acct, &r.name.clone(), &r)
        })?;
        empty()
    }
}

pub struct ListInstanceProfilesForRole {
    role: String,
    marker: Option<String>,
    max: usize,
    /// The role the plan read, whose profiles the answer lists.
    rec: Option<RoleRec>,
}

impl Operation<Core> for ListInstanceProfilesForRole {
    const NAME: &'static str = "ListInstanceProfilesForRole";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let role = a.req("RoleName", &v::ROLE_NAME).to_string();
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListInstanceProfilesForRole { role, marker, max, rec: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, rec) = role_check(core, ctx, Self::NAME, &self.role)?;
        self.rec = rec;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let role = self.rec.ok_or_else(|| no_such_role(&self.role))?;
        let mut profiles = Vec::new();
        for p in &role.instance_profiles {
            if let Some(p) = core.db.entity::<ProfileRec>(acct, p)? {
                profiles.push(p);
            }
        }
        profiles.sort_by_key(|p| p.name.to_ascii_lowercase());
        profile_list(core, acct, profiles, self.marker.as_deref(), self.max)
    }
}

pub struct ListInstanceProfileTags {
    name: String,
    marker: Option<String>,
    max: usize,
    /// The profile the plan read.
    profile: Option<ProfileRec>,
}

impl Operation<Core> for ListInstanceProfileTags {
    const NAME: &'static str = "ListInstanceProfileTags";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("InstanceProfileName", &v::PROFILE_NAME).to_string();
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListInstanceProfileTags { name, marker, max, profile: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, profile) = profile_check(core, ctx, Self::NAME, &self.name)?;
        self.profile = profile;
        one(c)
    }

    fn run(self, _: &Core, _: &RequestContext) -> Result<Output> {
        let p = self.profile.ok_or_else(|| no_such_profile(&self.name))?;
        tag_page(p.tags, self.marker.as_deref(), self.max)
    }
}

pub struct TagInstanceProfile {
    name: String,
    tags: Vec<Tag>,
}

impl Operation<Core> for TagInstanceProfile {
    const NAME: &'static str = "TagInstanceProfile";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("InstanceProfileName", &v::PROFILE_NAME).to_string();
        let tags = a.required_tags("Tags");
        a.finish()?;
        Ok(TagInstanceProfile { name, tags })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut c = profile_check(core, ctx, Self::NAME, &self.name)?.0;
        c.context.extend(request_tags(AuthzCheck::new("", ""), &self.tags).context);
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        check_new_tags(&self.tags)?;
        let TagInstanceProfile { name, tags } = self;
        modify(core, account(ctx), &name, |p| merge_tags(&mut p.tags, tags))?;
        empty()
    }
}

pub struct UntagInstanceProfile {
    name: String,
    keys: Vec<String>,
}

impl Operation<Core> for UntagInstanceProfile {
    const NAME: &'static str = "UntagInstanceProfile";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("InstanceProfileName", &v::PROFILE_NAME).to_string();
        let keys = a.tag_keys("TagKeys").into_iter().map(str::to_string).collect();
        a.finish()?;
        Ok(UntagInstanceProfile { name, keys })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let c = profile_check(core, ctx, Self::NAME, &self.name)?.0;
        one(c.with_context("aws:TagKeys", ContextValue::List(self.keys.clone())))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        modify(core, account(ctx), &self.name, |p| {
            remove_tags(&mut p.tags, &keys);
            Ok(())
        })?;
        empty()
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

fn profile_list(
    core: &Core,
    acct: &str,
    profiles: Vec<ProfileRec>,
    marker: Option<&str>,
    max: usize,
) -> Result<Output> {
    let page = paginate(profiles, |p| p.name.to_ascii_lowercase(), marker, max);
    let mut w = XmlWriter::new();
    w.start("InstanceProfiles");
    for p in &page.items {
        super::xml::profile(&mut w, "member", acct, p, &roles_of(core, acct, p)?, ProfileView::List);
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
