//! GetAccountAuthorizationDetails: the account's users, groups, roles and managed policies with
//! their relationships, in one paged answer.

use std::collections::HashMap;

use rampart_protocol::xml::XmlWriter;
use rampart_service::{op, AuthzPlan, Entry, Input, Operation, Output, RequestContext};

use super::managed_policies::{aws_version, usage_map, version_number, version_xml};
use super::xml::{boundary, profile, tags, ProfileView};
use super::{account, check, one, paginate, xml, Core};
use crate::error::{IamError, Result};
use crate::managed::{self, AwsPolicy};
use crate::model::{tables, GroupRec, PolicyRec, ProfileRec, RoleRec, UserRec, VersionRec};
use crate::util::{encode_document, iso8601};
use crate::validate::{self as v, Args};

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[op::<Core, GetAccountAuthorizationDetails>()];

/// `Filter`'s values, in the order of AWS's `EntityType` enum (botocore iam 2010-05-08).
const ENTITY_TYPES: &[&str] = &["User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy"];

pub struct GetAccountAuthorizationDetails {
    /// The entity types wanted; empty = all.
    filter: Vec<String>,
    marker: Option<String>,
    max: usize,
}

impl GetAccountAuthorizationDetails {
    fn wants(&self, ty: &str) -> bool {
        self.filter.is_empty() || self.filter.iter().any(|f| f == ty)
    }
}

/// One entry of the answer. The four lists are paged as one sequence (users, groups, roles,
/// policies), each in name order; an entry's key is its list's digit and its name, so one marker
/// says where the next page starts whichever list it falls in.
enum Item {
    User(UserRec),
    Group(GroupRec),
    Role(RoleRec),
    Local(PolicyRec),
    Aws(&'static AwsPolicy),
}

impl Operation<Core> for GetAccountAuthorizationDetails {
    const NAME: &'static str = "GetAccountAuthorizationDetails";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let raw = a.list("Filter", &v::RESOURCE_NAME, None, false);
        let mut filter = Vec::with_capacity(raw.len());
        for (i, f) in raw.iter().enumerate() {
            if !ENTITY_TYPES.contains(f) {
                a.error(format!(
                    "Value '{}' at 'filter.{}.member' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                    rampart_protocol::echo(f),
                    i + 1,
                    ENTITY_TYPES.join(", ")
                ));
            }
            filter.push((*f).to_string());
        }
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(GetAccountAuthorizationDetails { filter, marker, max })
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let attachments = usage_map(core, acct, tables::ATTACHMENTS)?;
        let boundaries = usage_map(core, acct, tables::BOUNDARY_USES)?;
        let mut items: Vec<(String, Item)> = Vec::new();
        if self.wants("User") {
            items.extend(core.db.entities::<UserRec>(acct)?.into_iter().map(|u| (key('1', &u.name), Item::User(u))));
        }
        if self.wants("Group") {
            items.extend(core.db.entities::<GroupRec>(acct)?.into_iter().map(|g| (key('2', &g.name), Item::Group(g))));
        }
        // Every role is read when roles are listed: instance profiles name their roles.
        let roles = if self.wants("Role") { core.db.entities::<RoleRec>(acct)? } else { Vec::new() };
        let roles_by_name: HashMap<String, RoleRec> =
            roles.iter().map(|r| (r.name.to_ascii_lowercase(), r.clone())).collect();
        items.extend(roles.into_iter().map(|r| (key('3', &r.name), Item::Role(r))));
        if self.wants("LocalManagedPolicy") {
            for p in core.db.entities::<PolicyRec>(acct)? {
                let k = format!("4{}|{}", p.name.to_ascii_lowercase(), p.arn(acct));
                items.push((k, Item::Local(p)));
            }
        }
        if self.wants("AWSManagedPolicy") {
            // Only the AWS managed policies the account uses, found from its usage index (never
            // a walk of the whole catalogue).
            let mut in_use: Vec<&'static AwsPolicy> =
                attachments.keys().chain(boundaries.keys()).filter_map(|a| managed::by_arn(a)).collect();
            in_use.sort_by(|a, b| a.key.cmp(&b.key));
            in_use.dedup_by(|a, b| a.key == b.key);
            items.extend(in_use.into_iter().map(|p| (format!("4{}", p.key), Item::Aws(p))));
        }
        items.sort_by(|x, y| x.0.cmp(&y.0));
        let page = paginate(items, |(k, _)| k.clone(), self.marker.as_deref(), self.max);

        let profiles: HashMap<String, ProfileRec> = if page.items.iter().any(|(_, i)| matches!(i, Item::Role(_))) {
            core.db.entities::<ProfileRec>(acct)?.into_iter().map(|p| (p.name.to_ascii_lowercase(), p)).collect()
        } else {
            HashMap::new()
        };
        let count = |m: &HashMap<String, usize>, arn: &str| m.get(arn).copied().unwrap_or(0);

        let mut w = XmlWriter::new();
        w.start("UserDetailList");
        for (_, i) in &page.items {
            if let Item::User(u) = i {
                user_detail(&mut w, acct, u);
            }
        }
        w.end().start("GroupDetailList");
        for (_, i) in &page.items {
            if let Item::Group(g) = i {
                group_detail(&mut w, acct, g);
            }
        }
        w.end().start("RoleDetailList");
        for (_, i) in &page.items {
            if let Item::Role(r) = i {
                role_detail(&mut w, acct, r, &profiles, &roles_by_name);
            }
        }
        w.end().start("Policies");
        for (_, i) in &page.items {
            match i {
                Item::Local(p) => {
                    let arn = p.arn(acct);
                    let d = PolicyDetail {
                        name: &p.name,
                        id: &p.id,
                        arn: &arn,
                        path: &p.path,
                        default_version: &p.default_version,
                        attachments: count(&attachments, &arn),
                        boundaries: count(&boundaries, &arn),
                        description: p.description.as_deref(),
                        created: p.created,
                        updated: p.updated,
                    };
                    policy_detail(&mut w, &d, p.versions.clone());
                }
                Item::Aws(p) => {
                    let d = PolicyDetail {
                        name: p.name,
                        id: &p.id,
                        arn: &p.arn,
                        path: p.path,
                        default_version: p.version,
                        attachments: count(&attachments, &p.arn),
                        boundaries: count(&boundaries, &p.arn),
                        description: Some(p.description).filter(|d| !d.is_empty()),
                        created: p.created,
                        updated: p.updated,
                    };
                    policy_detail(&mut w, &d, vec![aws_version(p)]);
                }
                _ => {}
            }
        }
        w.end();
        super::xml::truncation(&mut w, &page.next);
        xml(w.finish())
    }
}

/// `{list digit}{lower-case name}`.
fn key(list: char, name: &str) -> String {
    let mut k = String::with_capacity(name.len() + 1);
    k.push(list);
    k.push_str(&name.to_ascii_lowercase());
    k
}

/// The policy's name: the last segment of its ARN (names cannot contain `/`).
fn name_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn inline_list(w: &mut XmlWriter, tag: &'static str, inline: &std::collections::BTreeMap<String, String>) {
    w.start(tag);
    for (name, doc) in inline {
        w.start("member").elem("PolicyName", name).elem("PolicyDocument", &encode_document(doc)).end();
    }
    w.end();
}

fn attached_list(w: &mut XmlWriter, attached: &[String]) {
    w.start("AttachedManagedPolicies");
    for arn in attached {
        w.start("member").elem("PolicyName", name_of(arn)).elem("PolicyArn", arn).end();
    }
    w.end();
}

/// UserDetail, members in AWS's order (botocore's shape); the empty lists are sent, as AWS's
/// example shows (`"UserPolicyList": []`).
fn user_detail(w: &mut XmlWriter, acct: &str, u: &UserRec) {
    w.start("member")
        .elem("Path", &u.path)
        .elem("UserName", &u.name)
        .elem("UserId", &u.id)
        .elem("Arn", &u.arn(acct))
        .elem("CreateDate", &iso8601(u.created));
    inline_list(w, "UserPolicyList", &u.inline);
    w.start("GroupList");
    for g in &u.groups {
        w.elem("member", g);
    }
    w.end();
    attached_list(w, &u.attached);
    boundary(w, u.boundary.as_ref());
    if !u.tags.is_empty() {
        tags(w, &u.tags);
    }
    w.end();
}

fn group_detail(w: &mut XmlWriter, acct: &str, g: &GroupRec) {
    w.start("member")
        .elem("Path", &g.path)
        .elem("GroupName", &g.name)
        .elem("GroupId", &g.id)
        .elem("Arn", &g.arn(acct))
        .elem("CreateDate", &iso8601(g.created));
    inline_list(w, "GroupPolicyList", &g.inline);
    attached_list(w, &g.attached);
    w.end();
}

fn role_detail(
    w: &mut XmlWriter,
    acct: &str,
    r: &RoleRec,
    profiles: &HashMap<String, ProfileRec>,
    roles: &HashMap<String, RoleRec>,
) {
    w.start("member")
        .elem("Path", &r.path)
        .elem("RoleName", &r.name)
        .elem("RoleId", &r.id)
        .elem("Arn", &r.arn(acct))
        .elem("CreateDate", &iso8601(r.created))
        .elem("AssumeRolePolicyDocument", &encode_document(&r.trust));
    w.start("InstanceProfileList");
    for name in &r.instance_profiles {
        if let Some(p) = profiles.get(&name.to_ascii_lowercase()) {
            let members: Vec<RoleRec> =
                p.roles.iter().filter_map(|n| roles.get(&n.to_ascii_lowercase()).cloned()).collect();
            profile(w, "member", acct, p, &members, ProfileView::List);
        }
    }
    w.end();
    inline_list(w, "RolePolicyList", &r.inline);
    attached_list(w, &r.attached);
    boundary(w, r.boundary.as_ref());
    if !r.tags.is_empty() {
        tags(w, &r.tags);
    }
    w.start("RoleLastUsed");
    if let Some((at, region)) = &r.last_used {
        w.elem("LastUsedDate", &iso8601(*at)).elem("Region", region);
    }
    w.end();
    w.end();
}

struct PolicyDetail<'a> {
    name: &'a str,
    id: &'a str,
    arn: &'a str,
    path: &'a str,
    default_version: &'a str,
    attachments: usize,
    boundaries: usize,
    description: Option<&'a str>,
    created: i64,
    updated: i64,
}

/// ManagedPolicyDetail with every version and its document (newest first, as ListPolicyVersions).
fn policy_detail(w: &mut XmlWriter, d: &PolicyDetail<'_>, mut versions: Vec<VersionRec>) {
    w.start("member")
        .elem("PolicyName", d.name)
        .elem("PolicyId", d.id)
        .elem("Arn", d.arn)
        .elem("Path", d.path)
        .elem("DefaultVersionId", d.default_version)
        .num("AttachmentCount", d.attachments)
        .num("PermissionsBoundaryUsageCount", d.boundaries)
        .bool("IsAttachable", true);
    if let Some(desc) = d.description {
        w.elem("Description", desc);
    }
    w.elem("CreateDate", &iso8601(d.created)).elem("UpdateDate", &iso8601(d.updated));
    versions.sort_by_key(|x| std::cmp::Reverse(version_number(&x.id)));
    w.start("PolicyVersionList");
    for ver in &versions {
        version_xml(w, "member", ver, d.default_version, true);
    }
    w.end();
    w.end();
}
