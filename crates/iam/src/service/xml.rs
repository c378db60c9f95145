//! XML shapes of IAM's entities, with AWS's element names and order.

use rampart_protocol::xml::XmlWriter;

use crate::managed::AwsPolicy;
use crate::model::{GroupRec, PolicyRec, ProfileRec, RoleRec, Tag, UserRec};
use crate::util::{encode_document, iso8601};

pub fn tags(w: &mut XmlWriter, tags: &[Tag]) {
    w.start("Tags");
    for t in tags {
        w.start("member").elem("Key", &t.key).elem("Value", &t.value).end();
    }
    w.end();
}

pub fn boundary(w: &mut XmlWriter, arn: Option<&String>) {
    if let Some(arn) = arn {
        w.start("PermissionsBoundary")
            // "can only have a value of Policy" (API_AttachedPermissionsBoundary), as AWS answers.
            .elem("PermissionsBoundaryType", "Policy")
            .elem("PermissionsBoundaryArn", arn)
            .end();
    }
}

/// `<{tag}>` with a user; `full` adds the boundary and tags (GetUser/CreateUser, not ListUsers).
pub fn user(w: &mut XmlWriter, tag: &'static str, account: &str, u: &UserRec, full: bool) {
    w.start(tag)
        .elem("Path", &u.path)
        .elem("UserName", &u.name)
        .elem("UserId", &u.id)
        .elem("Arn", &u.arn(account))
        .elem("CreateDate", &iso8601(u.created));
    if full {
        boundary(w, u.boundary.as_ref());
        if !u.tags.is_empty() {
            tags(w, &u.tags);
        }
    }
    w.end();
}

pub fn group(w: &mut XmlWriter, tag: &'static str, account: &str, g: &GroupRec) {
    w.start(tag)
        .elem("Path", &g.path)
        .elem("GroupName", &g.name)
        .elem("GroupId", &g.id)
        .elem("Arn", &g.arn(account))
        .elem("CreateDate", &iso8601(g.created))
        .end();
}

/// Which call a role is shown by: AWS returns different members for each.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RoleView {
    /// CreateRole: neither `Description`, `MaxSessionDuration` nor `RoleLastUsed`; the boundary
    /// and tags when set.
    Create,
    /// UpdateRoleDescription: as CreateRole, with `Description`.
    UpdateDescription,
    /// GetRole: every member, `RoleLastUsed` always (possibly empty).
    Get,
    /// ListRoles: `Description` and `MaxSessionDuration`, no boundary, tags or last use.
    List,
    /// A role inside an instance profile: the six identifying members only.
    InProfile,
}

/// A role; `full` is GetRole's view, otherwise ListRoles' (see [`role_view`]).
pub fn role(w: &mut XmlWriter, tag: &'static str, account: &str, r: &RoleRec, full: bool) {
    role_view(w, tag, account, r, if full { RoleView::Get } else { RoleView::List });
}

/// A role with the members `view` returns, in AWS's order. Recorded AWS responses:
/// localstack tests/aws/services/iam/test_iam_roles.snapshot.json (CreateRole with Description
/// and PermissionsBoundary returns neither Description nor MaxSessionDuration;
/// UpdateRoleDescription returns Description without MaxSessionDuration and RoleLastUsed).
pub fn role_view(w: &mut XmlWriter, tag: &'static str, account: &str, r: &RoleRec, view: RoleView) {
    w.start(tag)
        .elem("Path", &r.path)
        .elem("RoleName", &r.name)
        .elem("RoleId", &r.id)
        .elem("Arn", &r.arn(account))
        .elem("CreateDate", &iso8601(r.created))
        .elem("AssumeRolePolicyDocument", &encode_document(&r.trust));
    if view == RoleView::InProfile {
        w.end();
        return;
    }
    if view != RoleView::Create {
        if let Some(d) = &r.description {
            w.elem("Description", d);
        }
    }
    if matches!(view, RoleView::Get | RoleView::List) {
        w.num("MaxSessionDuration", r.max_session);
    }
    if matches!(view, RoleView::Create | RoleView::UpdateDescription | RoleView::Get) {
        boundary(w, r.boundary.as_ref());
        if !r.tags.is_empty() {
            tags(w, &r.tags);
        }
    }
    if view == RoleView::Get {
        w.start("RoleLastUsed");
        if let Some((at, region)) = &r.last_used {
            w.elem("LastUsedDate", &iso8601(*at)).elem("Region", region);
        }
        w.end();
    }
    w.end();
}

/// Counts shown with a managed policy.
pub struct Usage {
    pub attachments: usize,
    pub boundaries: usize,
}

/// Which call a customer managed policy is shown by: AWS returns different subsets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PolicyView {
    /// CreatePolicy: no `Description`; `Tags` only when the policy has some.
    Create,
    /// GetPolicy: `Description` when set; `Tags` always (possibly empty).
    Get,
    /// ListPolicies: neither.
    List,
}

/// A customer managed policy, with the members `view` returns.
pub fn policy(w: &mut XmlWriter, tag: &'static str, account: &str, p: &PolicyRec, usage: &Usage, view: PolicyView) {
    w.start(tag)
        .elem("PolicyName", &p.name)
        .elem("PolicyId", &p.id)
        .elem("Arn", &p.arn(account))
        .elem("Path", &p.path)
        .elem("DefaultVersionId", &p.default_version)
        .num("AttachmentCount", usage.attachments)
        .num("PermissionsBoundaryUsageCount", usage.boundaries)
        .bool("IsAttachable", true);
    if view == PolicyView::Get {
        if let Some(d) = &p.description {
            w.elem("Description", d);
        }
    }
    w.elem("CreateDate", &iso8601(p.created)).elem("UpdateDate", &iso8601(p.updated));
    if view == PolicyView::Get || (view == PolicyView::Create && !p.tags.is_empty()) {
        tags(w, &p.tags);
    }
    w.end();
}

pub fn aws_policy(w: &mut XmlWriter, tag: &'static str, p: &AwsPolicy, usage: &Usage, full: bool) {
    w.start(tag)
        .elem("PolicyName", p.name)
        .elem("PolicyId", &p.id)
        .elem("Arn", &p.arn)
        .elem("Path", p.path)
        .elem("DefaultVersionId", p.version)
        .num("AttachmentCount", usage.attachments)
        .num("PermissionsBoundaryUsageCount", usage.boundaries)
        .bool("IsAttachable", true);
    if full && !p.description.is_empty() {
        w.elem("Description", p.description);
    }
    w.elem("CreateDate", &iso8601(p.created)).elem("UpdateDate", &iso8601(p.updated)).end();
}

/// Which call an instance profile is shown by.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ProfileView {
    /// CreateInstanceProfile: `Tags` only when the profile has some.
    Create,
    /// GetInstanceProfile: `Tags` always (possibly empty).
    Get,
    /// ListInstanceProfiles(ForRole): no `Tags`.
    List,
}

/// An instance profile with its roles. Recorded AWS responses (localstack
/// tests/aws/services/iam/test_iam_instance_profiles.snapshot.json): a profile's roles carry
/// only Path, RoleName, RoleId, Arn, CreateDate and AssumeRolePolicyDocument; GetInstanceProfile
/// returns `Tags: []`, Create and List return no `Tags` member.
pub fn profile(
    w: &mut XmlWriter,
    tag: &'static str,
    account: &str,
    p: &ProfileRec,
    roles: &[RoleRec],
    view: ProfileView,
) {
    w.start(tag)
        .elem("Path", &p.path)
        .elem("InstanceProfileName", &p.name)
        .elem("InstanceProfileId", &p.id)
        .elem("Arn", &p.arn(account))
        .elem("CreateDate", &iso8601(p.created));
    w.start("Roles");
    for r in roles {
        role_view(w, "member", account, r, RoleView::InProfile);
    }
    w.end();
    if view == ProfileView::Get || (view == ProfileView::Create && !p.tags.is_empty()) {
        tags(w, &p.tags);
    }
    w.end();
}

/// `<IsTruncated>` and, when truncated, `<Marker>`.
pub fn truncation(w: &mut XmlWriter, next: &Option<String>) {
    w.bool("IsTruncated", next.is_some());
    if let Some(m) = next {
        w.elem("Marker", m);
    }
}
