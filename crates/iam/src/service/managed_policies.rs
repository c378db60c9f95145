//! Customer managed policies and their versions, plus the AWS managed policies Rampart ships:
//! CreatePolicy, GetPolicy, DeletePolicy, ListPolicies, CreatePolicyVersion, GetPolicyVersion,
//! DeletePolicyVersion, ListPolicyVersions, SetDefaultPolicyVersion, policy tags.

use std::collections::HashMap;

use rampart_policy::{ContextValue, PolicyType};
use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{op, AuthzCheck, AuthzPlan, Entry, Input, Operation, Output, RequestContext};

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

/// Attachment and boundary counts of one policy in `acct`.
pub fn usage(core: &Core, acct: &str, arn: &str) -> Result<Usage> {
    let prefix = attachment_prefix(acct, arn);
    Ok(Usage {
        attachments: core.db.count(tables::ATTACHMENTS, &prefix)?,
        boundaries: core.db.count(tables::BOUNDARY_USES, &prefix)?,
    })
}

/// Counts per policy ARN for the whole account (ListPolicies).
pub fn usage_map(core: &Core, acct: &str, table: &str) -> Result<HashMap<String, usize>> {
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
        return Err(IamError::quota("PolicySize", MAX_POLICY_SIZE));
    }
    Ok(())
}

pub fn version_xml(w: &mut XmlWriter, tag: &'static str, v: &VersionRec, default: &str, with_doc: bool) {
    w.start(tag);
    if with_doc {
        w.elem("Document", &encode_document(&v.document));
    }
    w.elem("VersionId", &v.id).bool("IsDefaultVersion", v.id == default).elem("CreateDate", &iso8601(v.created)).end();
}

/// AWS managed policies have one version, their current one.
pub fn aws_version(p: &AwsPolicy) -> VersionRec {
    VersionRec { id: p.version.to_string(), document: p.document.to_string(), created: p.version_created }
}

/// The caller's account's own policy, or the right error (AWS policies cannot be changed).
fn local_for_change(found: Option<Managed>, ctx: &RequestContext, action: &str, arn: &str) -> Result<PolicyRec> {
    match found {
        Some(Managed::Local(p)) => Ok(p),
        Some(Managed::Aws(_)) => Err(IamError::Aws(AwsError::access_denied(format!(
            "User: {} is not authorized to perform: iam:{action} on resource: policy {arn}",
            ctx.caller.arn
        )))),
        None => Err(not_found(arn)),
    }
}

/// `iam:{action}` on the policy, with its tags as `aws:ResourceTag/…`; and the policy (ours or
/// AWS's), for the run to use.
pub fn policy_check(
    core: &Core,
    ctx: &RequestContext,
    action: &str,
    arn: &str,
) -> Result<(AuthzCheck, Option<Managed>)> {
    let found = find(core, account(ctx), arn)?;
    let c = match &found {
        Some(Managed::Local(p)) => resource_tags(check(action, arn), &p.tags, false),
        _ => check(action, arn),
    };
    Ok((c, found))
}

/// `PolicyArn` (read first), then the operation's other members; validated, and shaped like a
/// policy ARN.
fn parse_arn<'a, T>(input: &'a Input, rest: impl FnOnce(&mut Args<'a>) -> T) -> Result<(String, T)> {
    let mut a = Args::new(input.query());
    let arn = a.req("PolicyArn", &v::ARN);
    let t = rest(&mut a);
    a.finish()?;
    check_policy_arn(arn)?;
    Ok((arn.to_string(), t))
}

/// Change a local policy (as found by the plan) in one transaction, re-read inside it.
fn modify(
    core: &Core,
    acct: &str,
    arn: &str,
    name: &str,
    f: impl FnOnce(&mut PolicyRec) -> Result<()>,
) -> Result<PolicyRec> {
    core.db.write(acct, |tx| {
        let mut p = tx.entity::<PolicyRec>(acct, name)?.filter(|x| x.arn(acct) == arn).ok_or_else(|| not_found(arn))?;
        f(&mut p)?;
        tx.put_entity(acct, &p.name.clone(), &p)?;
        Ok(p)
    })
}

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, CreatePolicy>(),
    op::<Core, GetPolicy>(),
    op::<Core, DeletePolicy>(),
    op::<Core, ListPolicies>(),
    op::<Core, CreatePolicyVersion>(),
    op::<Core, GetPolicyVersion>(),
    op::<Core, DeletePolicyVersion>(),
    op::<Core, ListPolicyVersions>(),
    op::<Core, SetDefaultPolicyVersion>(),
    op::<Core, TagPolicy>(),
    op::<Core, UntagPolicy>(),
    op::<Core, ListPolicyTags>(),
];

pub struct CreatePolicy {
    name: String,
    path: String,
    document: String,
    description: Option<String>,
    tags: Vec<Tag>,
}

impl Operation<Core> for CreatePolicy {
    const NAME: &'static str = "CreatePolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("PolicyName", &v::POLICY_NAME).to_string();
        let path = a.opt("Path", &v::POLICY_PATH).unwrap_or("/").to_string();
        let document = a.req("PolicyDocument", &v::DOCUMENT).to_string();
        let description = a.opt("Description", &v::POLICY_DESCRIPTION).map(str::to_string);
        let tags = a.tags("Tags");
        a.finish()?;
        Ok(CreatePolicy { name, path, document, description, tags })
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(request_tags(check(Self::NAME, iam_arn(account(ctx), "policy", &self.path, &self.name)), &self.tags))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        check_new_tags(&self.tags)?;
        check_document(core, &self.document)?;
        let p = core.db.write(acct, |tx| {
            if tx.entity::<PolicyRec>(acct, &self.name)?.is_some() {
                return Err(IamError::AlreadyExists(format!(
                    "A policy called {} already exists. Duplicate names are not allowed.",
                    self.name
                )));
            }
            if tx.count_entities::<PolicyRec>(acct)? >= MAX_POLICIES {
                return Err(IamError::quota("PoliciesPerAccount", MAX_POLICIES));
            }
            let t = now();
            let p = PolicyRec {
                name: self.name.clone(),
                id: unique_id("ANPA"),
                path: self.path.clone(),
                created: t,
                updated: t,
                description: self.description.clone(),
                default_version: "v1".into(),
                versions: vec![VersionRec { id: "v1".into(), document: self.document.clone(), created: t }],
                next_version: 2,
                tags: self.tags.clone(),
            };
            tx.put_entity(acct, &self.name, &p)?;
            Ok(p)
        })?;
        let mut w = XmlWriter::new();
        super::xml::policy(&mut w, "Policy", acct, &p, &Usage { attachments: 0, boundaries: 0 }, PolicyView::Create);
        xml(w.finish())
    }
}

pub struct GetPolicy {
    arn: String,
    /// The policy the plan read.
    found: Option<Managed>,
}

impl Operation<Core> for GetPolicy {
    const NAME: &'static str = "GetPolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (arn, ()) = parse_arn(input, |_| ())?;
        Ok(GetPolicy { arn, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, found) = policy_check(core, ctx, Self::NAME, &self.arn)?;
        self.found = found;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let arn = &self.arn;
        let mut w = XmlWriter::new();
        match self.found.ok_or_else(|| not_found(arn))? {
            Managed::Local(p) => {
                super::xml::policy(&mut w, "Policy", acct, &p, &usage(core, acct, arn)?, PolicyView::Get)
            }
            Managed::Aws(p) => super::xml::aws_policy(&mut w, "Policy", p, &usage(core, acct, arn)?, true),
        }
        xml(w.finish())
    }
}

pub struct DeletePolicy {
    arn: String,
    /// The policy the plan read.
    found: Option<Managed>,
}

impl Operation<Core> for DeletePolicy {
    const NAME: &'static str = "DeletePolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (arn, ()) = parse_arn(input, |_| ())?;
        Ok(DeletePolicy { arn, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, found) = policy_check(core, ctx, Self::NAME, &self.arn)?;
        self.found = found;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let arn = &self.arn;
        let p = local_for_change(self.found, ctx, Self::NAME, arn)?;
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
}

pub struct ListPolicies {
    /// `All` (the default), `AWS` or `Local`.
    scope: String,
    only_attached: bool,
    prefix: Option<String>,
    usage_filter: Option<String>,
    marker: Option<String>,
    max: usize,
}

impl Operation<Core> for ListPolicies {
    const NAME: &'static str = "ListPolicies";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let scope = a.enumeration("Scope", &["All", "AWS", "Local"]).unwrap_or("All").to_string();
        let only_attached = a.bool("OnlyAttached").unwrap_or(false);
        let prefix = a.opt("PathPrefix", &v::POLICY_PATH).map(str::to_string);
        let usage_filter =
            a.enumeration("PolicyUsageFilter", &["PermissionsPolicy", "PermissionsBoundary"]).map(str::to_string);
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListPolicies { scope, only_attached, prefix, usage_filter, marker, max })
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, format!("arn:aws:iam::{}:policy/", account(ctx))))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        list(core, account(ctx), &self)
    }
}

pub struct CreatePolicyVersion {
    arn: String,
    document: String,
    set_default: bool,
    /// The policy the plan read.
    found: Option<Managed>,
}

impl Operation<Core> for CreatePolicyVersion {
    const NAME: &'static str = "CreatePolicyVersion";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (arn, (document, set_default)) = parse_arn(input, |a| {
            let document = a.req("PolicyDocument", &v::DOCUMENT).to_string();
            (document, a.bool("SetAsDefault").unwrap_or(false))
        })?;
        Ok(CreatePolicyVersion { arn, document, set_default, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, found) = policy_check(core, ctx, Self::NAME, &self.arn)?;
        self.found = found;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let local = local_for_change(self.found, ctx, Self::NAME, &self.arn)?;
        check_document(core, &self.document)?;
        let mut created = None;
        let p = modify(core, acct, &self.arn, &local.name, |p| {
            if p.versions.len() >= MAX_VERSIONS {
                return Err(IamError::LimitExceeded(format!(
                    "A managed policy can have up to {MAX_VERSIONS} versions. Before you create a new version, \
                     you must delete an existing version."
                )));
            }
            let t = now();
            let ver = VersionRec { id: format!("v{}", p.next_version), document: self.document, created: t };
            p.next_version += 1;
            if self.set_default {
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
}

pub struct GetPolicyVersion {
    arn: String,
    version_id: String,
    /// The policy the plan read.
    found: Option<Managed>,
}

impl Operation<Core> for GetPolicyVersion {
    const NAME: &'static str = "GetPolicyVersion";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (arn, version_id) = parse_arn(input, |a| a.req("VersionId", &v::VERSION_ID).to_string())?;
        Ok(GetPolicyVersion { arn, version_id, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, found) = policy_check(core, ctx, Self::NAME, &self.arn)?;
        self.found = found;
        one(c)
    }

    fn run(self, _: &Core, _: &RequestContext) -> Result<Output> {
        let (arn, version_id) = (&self.arn, &self.version_id);
        let missing = || {
            IamError::NoSuchEntity(format!("Policy {arn} version {version_id} does not exist or is not attachable."))
        };
        let (ver, default) = match self.found.ok_or_else(|| not_found(arn))? {
            Managed::Local(p) => {
                let ver = p.versions.iter().find(|x| &x.id == version_id).cloned().ok_or_else(missing)?;
                (ver, p.default_version)
            }
            Managed::Aws(p) if p.version == version_id => (aws_version(p), p.version.to_string()),
            Managed::Aws(_) => return Err(missing()),
        };
        let mut w = XmlWriter::new();
        version_xml(&mut w, "PolicyVersion", &ver, &default, true);
        xml(w.finish())
    }
}

pub struct DeletePolicyVersion {
    arn: String,
    version_id: String,
    /// The policy the plan read.
    found: Option<Managed>,
}

impl Operation<Core> for DeletePolicyVersion {
    const NAME: &'static str = "DeletePolicyVersion";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (arn, version_id) = parse_arn(input, |a| a.req("VersionId", &v::VERSION_ID).to_string())?;
        Ok(DeletePolicyVersion { arn, version_id, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, found) = policy_check(core, ctx, Self::NAME, &self.arn)?;
        self.found = found;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let (arn, version_id) = (&self.arn, &self.version_id);
        let local = local_for_change(self.found, ctx, Self::NAME, arn)?;
        modify(core, account(ctx), arn, &local.name, |p| {
            if !p.versions.iter().any(|x| &x.id == version_id) {
                return Err(IamError::NoSuchEntity(format!(
                    "Policy {arn} version {version_id} does not exist or is not deletable."
                )));
            }
            if &p.default_version == version_id {
                return Err(IamError::DeleteConflict("Cannot delete the default version of a policy.".into()));
            }
            p.versions.retain(|x| &x.id != version_id);
            Ok(())
        })?;
        empty()
    }
}

pub struct SetDefaultPolicyVersion {
    arn: String,
    version_id: String,
    /// The policy the plan read.
    found: Option<Managed>,
}

impl Operation<Core> for SetDefaultPolicyVersion {
    const NAME: &'static str = "SetDefaultPolicyVersion";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (arn, version_id) = parse_arn(input, |a| a.req("VersionId", &v::VERSION_ID).to_string())?;
        Ok(SetDefaultPolicyVersion { arn, version_id, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, found) = policy_check(core, ctx, Self::NAME, &self.arn)?;
        self.found = found;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let (arn, version_id) = (&self.arn, &self.version_id);
        let local = local_for_change(self.found, ctx, Self::NAME, arn)?;
        modify(core, account(ctx), arn, &local.name, |p| {
            if !p.versions.iter().any(|x| &x.id == version_id) {
                return Err(IamError::NoSuchEntity(format!(
                    "Policy {arn} version {version_id} does not exist or is not attachable."
                )));
            }
            p.default_version = version_id.clone();
            p.updated = now();
            Ok(())
        })?;
        empty()
    }
}

pub struct ListPolicyVersions {
    arn: String,
    marker: Option<String>,
    max: usize,
    /// The policy the plan read.
    found: Option<Managed>,
}

impl Operation<Core> for ListPolicyVersions {
    const NAME: &'static str = "ListPolicyVersions";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (arn, (marker, max)) = parse_arn(input, |a| {
            let (marker, max) = a.paging();
            (marker.map(str::to_string), max)
        })?;
        Ok(ListPolicyVersions { arn, marker, max, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, found) = policy_check(core, ctx, Self::NAME, &self.arn)?;
        self.found = found;
        one(c)
    }

    fn run(self, _: &Core, _: &RequestContext) -> Result<Output> {
        let (mut versions, default) = match self.found.ok_or_else(|| not_found(&self.arn))? {
            Managed::Local(p) => (p.versions, p.default_version),
            Managed::Aws(p) => (vec![aws_version(p)], p.version.to_string()),
        };
        // Newest first, as AWS lists them.
        versions.sort_by_key(|x| std::cmp::Reverse(version_number(&x.id)));
        let page = paginate(
            versions,
            |x| format!("{:010}", u32::MAX - version_number(&x.id)),
            self.marker.as_deref(),
            self.max,
        );
        let mut w = XmlWriter::new();
        w.start("Versions");
        for ver in &page.items {
            version_xml(&mut w, "member", ver, &default, false);
        }
        w.end();
        super::xml::truncation(&mut w, &page.next);
        xml(w.finish())
    }
}

pub struct ListPolicyTags {
    arn: String,
    marker: Option<String>,
    max: usize,
    /// The policy the plan read.
    found: Option<Managed>,
}

impl Operation<Core> for ListPolicyTags {
    const NAME: &'static str = "ListPolicyTags";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (arn, (marker, max)) = parse_arn(input, |a| {
            let (marker, max) = a.paging();
            (marker.map(str::to_string), max)
        })?;
        Ok(ListPolicyTags { arn, marker, max, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, found) = policy_check(core, ctx, Self::NAME, &self.arn)?;
        self.found = found;
        one(c)
    }

    fn run(self, _: &Core, _: &RequestContext) -> Result<Output> {
        let marker = self.marker.as_deref();
        match self.found.ok_or_else(|| not_found(&self.arn))? {
            Managed::Local(p) => tag_page(p.tags, marker, self.max),
            Managed::Aws(_) => tag_page(Vec::new(), marker, self.max),
        }
    }
}

pub struct TagPolicy {
    arn: String,
    tags: Vec<Tag>,
    /// The policy the plan read.
    found: Option<Managed>,
}

impl Operation<Core> for TagPolicy {
    const NAME: &'static str = "TagPolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (arn, tags) = parse_arn(input, |a| a.required_tags("Tags"))?;
        Ok(TagPolicy { arn, tags, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, found) = policy_check(core, ctx, Self::NAME, &self.arn)?;
        self.found = found;
        one(request_tags(c, &self.tags))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        check_new_tags(&self.tags)?;
        let local = local_for_change(self.found, ctx, Self::NAME, &self.arn)?;
        modify(core, account(ctx), &self.arn, &local.name, |p| merge_tags(&mut p.tags, self.tags))?;
        empty()
    }
}

pub struct UntagPolicy {
    arn: String,
    keys: Vec<String>,
    /// The policy the plan read.
    found: Option<Managed>,
}

impl Operation<Core> for UntagPolicy {
    const NAME: &'static str = "UntagPolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (arn, keys) = parse_arn(input, |a| a.tag_keys("TagKeys").into_iter().map(str::to_string).collect())?;
        Ok(UntagPolicy { arn, keys, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, found) = policy_check(core, ctx, Self::NAME, &self.arn)?;
        self.found = found;
        one(c.with_context("aws:TagKeys", ContextValue::List(self.keys.clone())))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let local = local_for_change(self.found, ctx, Self::NAME, &self.arn)?;
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        modify(core, account(ctx), &self.arn, &local.name, |p| {
            remove_tags(&mut p.tags, &keys);
            Ok(())
        })?;
        empty()
    }
}

pub fn version_number(id: &str) -> u32 {
    id.trim_start_matches('v').split('.').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn list(core: &Core, acct: &str, l: &ListPolicies) -> Result<Output> {
    let (scope, only_attached, prefix) = (l.scope.as_str(), l.only_attached, l.prefix.as_deref());
    let usage_filter = l.usage_filter.as_deref();
    let marker = l.marker.as_deref();
    let attachments = usage_map(core, acct, tables::ATTACHMENTS)?;
    let boundaries = usage_map(core, acct, tables::BOUNDARY_USES)?;
    let arn_of = |m: &Managed| match m {
        Managed::Local(p) => p.arn(acct),
        Managed::Aws(p) => p.arn.clone(),
    };
    let wanted = |path: &str, arn: &str| {
        let n_att = attachments.get(arn).copied().unwrap_or(0);
        let n_bnd = boundaries.get(arn).copied().unwrap_or(0);
        let attached_ok = !only_attached || n_att + n_bnd > 0;
        // The usage filter lists the policies in that use: attached as permissions, or set as a boundary.
        let usage_ok = match usage_filter {
            Some("PermissionsPolicy") => n_att > 0,
            Some("PermissionsBoundary") => n_bnd > 0,
            _ => true,
        };
        under(path, prefix) && attached_ok && usage_ok
    };
    // The account's own policies (few): all of them after the marker, in order.
    let mut local: Vec<(String, Managed)> = Vec::new();
    if scope != "AWS" {
        for p in core.db.entities::<PolicyRec>(acct)? {
            let key = format!("{}|{}", p.name.to_ascii_lowercase(), p.arn(acct));
            if marker.is_none_or(|m| key.as_str() > m) && wanted(&p.path, &p.arn(acct)) {
                local.push((key, Managed::Local(p)));
            }
        }
        local.sort_by(|x, y| x.0.cmp(&y.0));
    }
    // AWS's (the whole catalogue, kept in this same order): the page starts at the marker by binary
    // search and stops once full; when only policies in use are wanted, they come from the usage
    // maps rather than from a walk of the catalogue.
    let by_usage = only_attached || usage_filter.is_some();
    let mut in_use: Vec<&'static AwsPolicy> = Vec::new();
    if scope != "Local" && by_usage {
        in_use = attachments.keys().chain(boundaries.keys()).filter_map(|a| managed::by_arn(a)).collect();
        in_use.sort_by(|a, b| a.key.cmp(&b.key));
        in_use.dedup_by(|a, b| a.key == b.key);
        in_use.retain(|p| marker.is_none_or(|m| p.key.as_str() > m));
    }
    let catalogue: &'static [AwsPolicy] = if scope == "Local" || by_usage { &[] } else { managed::after(marker) };
    let mut aws_iter = in_use.iter().copied().chain(catalogue.iter()).filter(|p| wanted(p.path, &p.arn)).peekable();
    let mut local_iter = local.into_iter().peekable();
    // One more than a page, so paging knows whether more follow.
    let mut items: Vec<(String, Managed)> = Vec::new();
    while items.len() <= l.max {
        let take_local = match (local_iter.peek(), aws_iter.peek()) {
            (Some(a), Some(b)) => a.0 < b.key,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next =
            if take_local { local_iter.next() } else { aws_iter.next().map(|p| (p.key.clone(), Managed::Aws(p))) };
        items.extend(next);
    }
    let page = paginate(items, |(k, _)| k.clone(), None, l.max);
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
