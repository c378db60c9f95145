//! Customer managed policies and their versions, plus the AWS managed policies Rampart ships:
//! CreatePolicy, GetPolicy, DeletePolicy, ListPolicies, CreatePolicyVersion, GetPolicyVersion,
//! DeletePolicyVersion, ListPolicyVersions, SetDefaultPolicyVersion, policy tags.

use std::collections::HashMap;

use rampart_policy::{ContextValue, PolicyType};
use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{AuthzCheck, AuthzPlan, ContextKey, Output, RequestContext};

use super::users::tag_page;
use super::xml::{PolicyView, Usage};
use super::{
    account, check, check_new_tags, empty, merge_tags, one, paginate, remove_tags, request_tags, resource_tags, under,
    xml, Core,
};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::managed::{self, AwsPolicy};
use crate::model::{attachment_prefix, tables, AttachmentRec, PolicyRec, Tag, VersionRec};
use crate::resolve::local_policy;
use crate::util::{encode_document, iam_arn, iso8601, now, policy_size, unique_id};
use crate::validate::{self as v, Args};

pub const OPS: &[&str] = &[
    "CreatePolicy",
    "GetPolicy",
    "DeletePolicy",
    "ListPolicies",
    "CreatePolicyVersion",
    "GetPolicyVersion",
    "DeletePolicyVersion",
    "ListPolicyVersions",
    "SetDefaultPolicyVersion",
    "TagPolicy",
    "UntagPolicy",
    "ListPolicyTags",
];

const MAX_POLICIES: usize = 1500;
const MAX_VERSIONS: usize = 5;
/// AWS's quota on managed policy size (non-whitespace characters).
const MAX_POLICY_SIZE: usize = 6144;

/// A managed policy: ours or AWS's.
pub enum Managed {
    Local(PolicyRec),
    Aws(&'static AwsPolicy),
}

fn not_found(arn: &str) -> IamError {
    IamError::NoSuchEntity(format!("Policy {arn} was not found."))
}

/// Is `arn` shaped like an IAM policy ARN? Otherwise AWS answers InvalidInput.
pub fn check_policy_arn(arn: &str) -> Result<()> {
    let ok = arn
        .strip_prefix("arn:aws:iam::")
        .and_then(|r| r.split_once(':'))
        .is_some_and(|(acct, res)| !acct.is_empty() && res.starts_with("policy/") && res.len() > 7);
    if ok {
        Ok(())
    } else {
        Err(IamError::InvalidInput(format!("ARN {arn} is not valid.")))
    }
}

/// The managed policy with this ARN, visible from `acct`.
pub fn find(core: &Core, acct: &str, arn: &str) -> Result<Option<Managed>> {
    if let Some(p) = managed::by_arn(arn) {
        return Ok(Some(Managed::Aws(p)));
    }
    Ok(local_policy(&core.db, acct, arn)?.map(Managed::Local))
}

/// The caller's account's own policy, or the right error (AWS policies cannot be changed).
fn local_for_change(core: &Core, ctx: &RequestContext, op: &str, arn: &str) -> Result<PolicyRec> {
    match find(core, account(ctx), arn)? {
        Some(Managed::Local(p)) => Ok(p),
        Some(Managed::Aws(_)) => Err(IamError::Aws(AwsError::access_denied(format!(
            "User: {} is not authorized to perform: iam:{op} on resource: policy {arn}",
            ctx.caller.arn
        )))),
        None => Err(not_found(arn)),
    }
}

/// `iam:{action}` on the policy, with its tags as `aws:ResourceTag/…`.
pub fn policy_check(core: &Core, ctx: &RequestContext, action: &str, arn: &str) -> Result<AuthzCheck> {
    let c = check(action, arn);
    Ok(match local_policy(&core.db, account(ctx), arn)? {
        Some(p) => resource_tags(c, &p.tags, false),
        None => c,
    })
}

/// Attachment and boundary counts of one policy in `acct`.
pub fn usage(core: &Core, acct: &str, arn: &str) -> Result<Usage> {
    let prefix = attachment_prefix(acct, arn);
    Ok(Usage {
        attachments: core.db.count(tables::ATTACHMENTS, &prefix)?,
        boundaries: core.db.count(tables::BOUNDARY_USES, &prefix)?,
    })
}

/// Counts per policy ARN for the whole account (ListPolicies).
fn usage_map(core: &Core, acct: &str, table: &str) -> Result<HashMap<String, usize>> {
    let mut m = HashMap::new();
    let prefix = format!("{acct}|");
    for (k, _) in core.db.scan::<AttachmentRec>(table, &prefix)? {
        if let Some(arn) = k.strip_prefix(&prefix).and_then(|rest| rest.split('|').next()) {
            *m.entry(arn.to_string()).or_insert(0) += 1;
        }
    }
    Ok(m)
}

fn check_document(core: &Core, doc: &str) -> Result<()> {
    core.validate_policy(doc, PolicyType::Identity)?;
    if policy_size(doc) > MAX_POLICY_SIZE {
        return Err(IamError::LimitExceeded(format!("Cannot exceed quota for PolicySize: {MAX_POLICY_SIZE}")));
    }
    Ok(())
}

struct Create<'a> {
    name: &'a str,
    path: &'a str,
    document: &'a str,
    description: Option<&'a str>,
    tags: Vec<Tag>,
}

fn parse_create(q: &QueryParams) -> Result<Create<'_>> {
    let mut a = Args::new(q);
    let c = Create {
        name: a.req("PolicyName", &v::POLICY_NAME),
        path: a.opt("Path", &v::POLICY_PATH).unwrap_or("/"),
        document: a.req("PolicyDocument", &v::DOCUMENT),
        description: a.opt("Description", &v::POLICY_DESCRIPTION),
        tags: a.tags("Tags"),
    };
    a.finish()?;
    Ok(c)
}

pub fn plan(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<AuthzPlan> {
    let acct = account(ctx);
    if op == "CreatePolicy" {
        let c = parse_create(q)?;
        return one(request_tags(check(op, iam_arn(acct, "policy", c.path, c.name)), &c.tags));
    }
    let mut a = Args::new(q);
    if op == "ListPolicies" {
        a.enumeration("Scope", &["All", "AWS", "Local"]);
        a.bool("OnlyAttached");
        a.opt("PathPrefix", &v::POLICY_PATH);
        a.enumeration("PolicyUsageFilter", &["PermissionsPolicy", "PermissionsBoundary"]);
        a.paging();
        a.finish()?;
        return one(check(op, format!("arn:aws:iam::{acct}:policy/")));
    }
    let arn = a.req("PolicyArn", &v::ARN);
    let mut extra: Vec<(ContextKey, ContextValue)> = Vec::new();
    match op {
        "GetPolicy" | "DeletePolicy" => {}
        "ListPolicyVersions" | "ListPolicyTags" => {
            a.paging();
        }
        "CreatePolicyVersion" => {
            a.req("PolicyDocument", &v::DOCUMENT);
            a.bool("SetAsDefault");
        }
        "GetPolicyVersion" | "DeletePolicyVersion" | "SetDefaultPolicyVersion" => {
            a.req("VersionId", &v::VERSION_ID);
        }
        "TagPolicy" => {
            let tags = a.tags("Tags");
            if !q.contains("Tags") {
                a.error("Value null at 'tags' failed to satisfy constraint: Member must not be null".into());
            }
            extra = request_tags(AuthzCheck::new("", ""), &tags).context;
        }
        "UntagPolicy" => {
            let keys = a.list("TagKeys", &v::TAG_KEY, Some(50), true);
            extra.push(("aws:TagKeys".into(), ContextValue::List(keys.iter().map(|k| k.to_string()).collect())));
        }
        _ => return Err(IamError::Internal(format!("unrouted operation {op}"))),
    }
    a.finish()?;
    check_policy_arn(arn)?;
    let mut c = policy_check(core, ctx, op, arn)?;
    c.context.extend(extra);
    one(c)
}

fn version_xml(w: &mut XmlWriter, tag: &'static str, v: &VersionRec, default: &str, with_doc: bool) {
    w.start(tag);
    if with_doc {
        w.elem("Document", &encode_document(&v.document));
    }
    w.elem("VersionId", &v.id).bool("IsDefaultVersion", v.id == default).elem("CreateDate", &iso8601(v.created)).end();
}

/// AWS managed policies have one version, their current one.
fn aws_version(p: &AwsPolicy) -> VersionRec {
    VersionRec { id: p.version.to_string(), document: p.document.to_string(), created: p.updated }
}

/// Change a local policy in one transaction.
fn modify(
    core: &Core,
    ctx: &RequestContext,
    op: &str,
    arn: &str,
    f: impl FnOnce(&mut PolicyRec) -> Result<()>,
) -> Result<PolicyRec> {
    let acct = account(ctx);
    let p = local_for_change(core, ctx, op, arn)?;
    core.db.write(acct, |tx| {
        let mut p =
            tx.entity::<PolicyRec>(acct, &p.name)?.filter(|x| x.arn(acct) == arn).ok_or_else(|| not_found(arn))?;
        f(&mut p)?;
        tx.put_entity(acct, &p.name.clone(), &p)?;
        Ok(p)
    })
}

pub fn run(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<Output> {
    let acct = account(ctx);
    let arn = q.get("PolicyArn").unwrap_or_default();
    let version_id = q.get("VersionId").unwrap_or_default();
    match op {
        "CreatePolicy" => {
            let c = parse_create(q)?;
            check_new_tags(&c.tags)?;
            check_document(core, c.document)?;
            let p = core.db.write(acct, |tx| {
                if tx.entity::<PolicyRec>(acct, c.name)?.is_some() {
                    return Err(IamError::AlreadyExists(format!(
                        "A policy called {} already exists. Duplicate names are not allowed.",
                        c.name
                    )));
                }
                if tx.count(tables::POLICIES, &format!("{acct}/"))? >= MAX_POLICIES {
                    return Err(IamError::LimitExceeded(format!(
                        "Cannot exceed quota for PoliciesPerAccount: {MAX_POLICIES}"
                    )));
                }
                let t = now();
                let p = PolicyRec {
                    name: c.name.to_string(),
                    id: unique_id("ANPA"),
                    path: c.path.to_string(),
                    created: t,
                    updated: t,
                    description: c.description.map(str::to_string),
                    default_version: "v1".into(),
                    versions: vec![VersionRec { id: "v1".into(), document: c.document.to_string(), created: t }],
                    next_version: 2,
                    tags: c.tags,
                };
                tx.put_entity(acct, c.name, &p)?;
                Ok(p)
            })?;
            let mut w = XmlWriter::new();
            super::xml::policy(
                &mut w,
                "Policy",
                acct,
                &p,
                &Usage { attachments: 0, boundaries: 0 },
                PolicyView::Create,
            );
            xml(w.finish())
        }
        "GetPolicy" => {
            let mut w = XmlWriter::new();
            match find(core, acct, arn)?.ok_or_else(|| not_found(arn))? {
                Managed::Local(p) => {
                    super::xml::policy(&mut w, "Policy", acct, &p, &usage(core, acct, arn)?, PolicyView::Get)
                }
                Managed::Aws(p) => super::xml::aws_policy(&mut w, "Policy", p, &usage(core, acct, arn)?, true),
            }
            xml(w.finish())
        }
        "DeletePolicy" => {
            let p = local_for_change(core, ctx, op, arn)?;
            core.db.write(acct, |tx| {
                let prefix = attachment_prefix(acct, arn);
                if tx.count(tables::ATTACHMENTS, &prefix)? > 0 || tx.count(tables::BOUNDARY_USES, &prefix)? > 0 {
                    return Err(IamError::DeleteConflict("Cannot delete a policy attached to entities.".into()));
                }
                if p.versions.len() > 1 {
                    return Err(IamError::DeleteConflict(
                        "This policy has more than one version. Before you delete a policy, you must delete the \
                         policy's versions. The default version is deleted with the policy."
                            .into(),
                    ));
                }
                tx.delete_entity::<PolicyRec>(acct, &p.name)?;
                Ok(())
            })?;
            empty()
        }
        "ListPolicies" => list(core, acct, q),
        "CreatePolicyVersion" => {
            let doc = q.get("PolicyDocument").unwrap_or_default();
            let set_default = Args::new(q).bool("SetAsDefault").unwrap_or(false);
            local_for_change(core, ctx, op, arn)?;
            check_document(core, doc)?;
            let mut created = None;
            let p = modify(core, ctx, op, arn, |p| {
                if p.versions.len() >= MAX_VERSIONS {
                    return Err(IamError::LimitExceeded(format!(
                        "A managed policy can have up to {MAX_VERSIONS} versions. Before you create a new version, \
                         you must delete an existing version."
                    )));
                }
                let t = now();
                let ver = VersionRec { id: format!("v{}", p.next_version), document: doc.to_string(), created: t };
                p.next_version += 1;
                if set_default {
                    p.default_version = ver.id.clone();
                    p.updated = t;
                }
                created = Some(ver.clone());
                p.versions.push(ver);
                Ok(())
            })?;
            let ver = created.ok_or_else(|| IamError::Internal("version not created".into()))?;
            let mut w = XmlWriter::new();
            version_xml(&mut w, "PolicyVersion", &ver, &p.default_version, false);
            xml(w.finish())
        }
        "GetPolicyVersion" => {
            let missing = || {
                IamError::NoSuchEntity(format!(
                    "Policy {arn} version {version_id} does not exist or is not attachable."
                ))
            };
            let (ver, default) = match find(core, acct, arn)?.ok_or_else(|| not_found(arn))? {
                Managed::Local(p) => {
                    let ver = p.versions.iter().find(|x| x.id == version_id).cloned().ok_or_else(missing)?;
                    (ver, p.default_version)
                }
                Managed::Aws(p) if p.version == version_id => (aws_version(p), p.version.to_string()),
                Managed::Aws(_) => return Err(missing()),
            };
            let mut w = XmlWriter::new();
            version_xml(&mut w, "PolicyVersion", &ver, &default, true);
            xml(w.finish())
        }
        "DeletePolicyVersion" => {
            modify(core, ctx, op, arn, |p| {
                if !p.versions.iter().any(|x| x.id == version_id) {
                    return Err(IamError::NoSuchEntity(format!(
                        "Policy {arn} version {version_id} does not exist or is not deletable."
                    )));
                }
                if p.default_version == version_id {
                    return Err(IamError::DeleteConflict("Cannot delete the default version of a policy.".into()));
                }
                p.versions.retain(|x| x.id != version_id);
                Ok(())
            })?;
            empty()
        }
        "SetDefaultPolicyVersion" => {
            modify(core, ctx, op, arn, |p| {
                if !p.versions.iter().any(|x| x.id == version_id) {
                    return Err(IamError::NoSuchEntity(format!(
                        "Policy {arn} version {version_id} does not exist or is not attachable."
                    )));
                }
                p.default_version = version_id.to_string();
                p.updated = now();
                Ok(())
            })?;
            empty()
        }
        "ListPolicyVersions" => {
            let (marker, max) = Args::new(q).paging();
            let (mut versions, default) = match find(core, acct, arn)?.ok_or_else(|| not_found(arn))? {
                Managed::Local(p) => (p.versions, p.default_version),
                Managed::Aws(p) => (vec![aws_version(p)], p.version.to_string()),
            };
            // Newest first, as AWS lists them.
            versions.sort_by_key(|x| std::cmp::Reverse(version_number(&x.id)));
            let page = paginate(versions, |x| format!("{:010}", u32::MAX - version_number(&x.id)), marker, max);
            let mut w = XmlWriter::new();
            w.start("Versions");
            for ver in &page.items {
                version_xml(&mut w, "member", ver, &default, false);
            }
            w.end();
            super::xml::truncation(&mut w, &page.next);
            xml(w.finish())
        }
        "ListPolicyTags" => {
            let (marker, max) = Args::new(q).paging();
            match find(core, acct, arn)?.ok_or_else(|| not_found(arn))? {
                Managed::Local(p) => tag_page(p.tags, marker, max),
                Managed::Aws(_) => tag_page(Vec::new(), marker, max),
            }
        }
        "TagPolicy" => {
            let tags = Args::new(q).tags("Tags");
            check_new_tags(&tags)?;
            modify(core, ctx, op, arn, |p| merge_tags(&mut p.tags, tags))?;
            empty()
        }
        "UntagPolicy" => {
            let keys = q.list("TagKeys.member");
            modify(core, ctx, op, arn, |p| {
                remove_tags(&mut p.tags, &keys);
                Ok(())
            })?;
            empty()
        }
        _ => Err(IamError::Internal(format!("unrouted operation {op}"))),
    }
}

fn version_number(id: &str) -> u32 {
    id.trim_start_matches('v').split('.').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn list(core: &Core, acct: &str, q: &QueryParams) -> Result<Output> {
    let mut a = Args::new(q);
    let scope = a.enumeration("Scope", &["All", "AWS", "Local"]).unwrap_or("All");
    let only_attached = a.bool("OnlyAttached").unwrap_or(false);
    let prefix = a.opt("PathPrefix", &v::POLICY_PATH);
    let usage_filter = a.enumeration("PolicyUsageFilter", &["PermissionsPolicy", "PermissionsBoundary"]);
    let (marker, max) = a.paging();
    let attachments = usage_map(core, acct, tables::ATTACHMENTS)?;
    let boundaries = usage_map(core, acct, tables::BOUNDARY_USES)?;
    let mut items: Vec<(String, Managed)> = Vec::new();
    if scope != "AWS" {
        for p in core.db.entities::<PolicyRec>(acct)? {
            items.push((format!("{}|{}", p.name.to_ascii_lowercase(), p.arn(acct)), Managed::Local(p)));
        }
    }
    if scope != "Local" {
        for p in managed::all() {
            items.push((format!("{}|{}", p.name.to_ascii_lowercase(), p.arn), Managed::Aws(p)));
        }
    }
    let arn_of = |m: &Managed| match m {
        Managed::Local(p) => p.arn(acct),
        Managed::Aws(p) => p.arn.clone(),
    };
    items.retain(|(_, m)| {
        let (path, arn) = match m {
            Managed::Local(p) => (p.path.as_str(), p.arn(acct)),
            Managed::Aws(p) => (p.path, p.arn.clone()),
        };
        let n_att = attachments.get(&arn).copied().unwrap_or(0);
        let n_bnd = boundaries.get(&arn).copied().unwrap_or(0);
        let attached_ok = !only_attached || n_att + n_bnd > 0;
        // The usage filter lists the policies in that use: attached as permissions, or set as a boundary.
        let usage_ok = match usage_filter {
            Some("PermissionsPolicy") => n_att > 0,
            Some("PermissionsBoundary") => n_bnd > 0,
            _ => true,
        };
        under(path, prefix) && attached_ok && usage_ok
    });
    items.sort_by(|x, y| x.0.cmp(&y.0));
    let page = paginate(items, |(k, _)| k.clone(), marker, max);
    let mut w = XmlWriter::new();
    w.start("Policies");
    for (_, m) in &page.items {
        let arn = arn_of(m);
        let u = Usage {
            attachments: attachments.get(&arn).copied().unwrap_or(0),
            boundaries: boundaries.get(&arn).copied().unwrap_or(0),
        };
        match m {
            Managed::Local(p) => super::xml::policy(&mut w, "member", acct, p, &u, PolicyView::List),
            Managed::Aws(p) => super::xml::aws_policy(&mut w, "member", p, &u, false),
        }
    }
    w.end();
    super::xml::truncation(&mut w, &page.next);
    xml(w.finish())
}
