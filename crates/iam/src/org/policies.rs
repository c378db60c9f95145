//! Policies (SCPs, RCPs, management policies), their attachments, and the policy types of the root.

use rampart_service::{op, Entry, Operation};

use super::*;

/// The operations of this family, each listed once.
pub const OPS: &[Entry<OrgService>] = &[
    op::<OrgService, CreatePolicy>(),
    op::<OrgService, DescribePolicy>(),
    op::<OrgService, UpdatePolicy>(),
    op::<OrgService, DeletePolicy>(),
    op::<OrgService, ListPolicies>(),
    op::<OrgService, AttachPolicy>(),
    op::<OrgService, DetachPolicy>(),
    op::<OrgService, ListPoliciesForTarget>(),
    op::<OrgService, ListTargetsForPolicy>(),
    op::<OrgService, EnablePolicyType>(),
    op::<OrgService, DisablePolicyType>(),
];

fn policy_id(i: &In<'_>) -> Result<String> {
    Ok(i.id("PolicyId", is_policy_id)?.to_string())
}

/// A root, OU or account ID.
fn target_id(i: &In<'_>) -> Result<String> {
    Ok(i.id("TargetId", |s| is_root_id(s) || is_ou_id(s) || is_account_id(s))?.to_string())
}

/// AWS managed policies cannot be changed or deleted.
fn mutable(id: &str) -> Result<()> {
    if aws_managed_type(id).is_some() {
        return Err(invalid(
            "IMMUTABLE_POLICY",
            "You specified a policy that is managed by AWS and can't be modified.",
        ));
    }
    Ok(())
}

/// Both checks of AttachPolicy/DetachPolicy: on the policy and on the target, with the type.
fn attachment_checks(svc: &OrgService, ctx: &RequestContext, op: &str, id: &str, target: &str) -> Result<AuthzPlan> {
    let doc = svc.managed_org(ctx)?;
    let ty = doc.policy_type(id).ok_or_else(policy_not_found)?;
    let target_arn = target_resource(&doc, target)?;
    Ok(AuthzPlan::Checks(vec![
        with_type(check(op, doc.policy_arn(id, &ty)), &ty),
        with_type(check(op, target_arn), &ty),
    ]))
}

/// The check of EnablePolicyType/DisablePolicyType: on the organization's root.
fn root_check(svc: &OrgService, ctx: &RequestContext, op: &str, root: &str, ty: &str) -> Result<AuthzPlan> {
    let doc = svc.managed_org(ctx)?;
    if root != doc.root_id {
        return Err(err("RootNotFoundException", "We can't find a root with the RootId that you specified."));
    }
    one(with_type(check(op, doc.root_arn()), ty))
}

pub struct CreatePolicy {
    ty: &'static str,
    name: String,
    description: String,
    content: String,
    tags: Vec<Tag>,
}

impl Operation<OrgService> for CreatePolicy {
    const NAME: &'static str = "CreatePolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let ty = policy_type_arg(&i, "Type")?;
        let name = i.len("Name", 1, 128, true)?.unwrap_or_default().to_string();
        let description = i.len("Description", 0, 512, true)?.unwrap_or_default().to_string();
        let content = i.len("Content", 1, usize::MAX, true)?.unwrap_or_default().to_string();
        let tags = i.tags("Tags")?;
        Ok(CreatePolicy { ty, name, description, content, tags })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        svc.managed_org(ctx)?;
        one(with_type(check(Self::NAME, "*"), self.ty))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let CreatePolicy { ty, name, description, content, tags } = self;
        let now = ctx.time.unix_timestamp();
        svc.validate_content(&content, ty)?;
        let out = svc.update(ctx, |_, doc| {
            if doc.policies.values().filter(|p| p.ty == ty).count() >= MAX_POLICIES_PER_TYPE {
                return Err(constraint(
                    "POLICY_NUMBER_LIMIT_EXCEEDED",
                    "You have reached the maximum number of policies of this type in the organization.",
                ));
            }
            check_unique_name(doc, ty, &name, None)?;
            let id = loop {
                let id = new_policy_id();
                if !doc.policies.contains_key(&id) {
                    break id;
                }
            };
            let seq = doc.next_seq();
            let updated = now;
            doc.policies.insert(
                id.clone(),
                OrgPolicyRec { name, description, ty: ty.to_string(), content, tags, seq, updated },
            );
            policy_json(doc, &id).ok_or_else(policy_not_found)
        })?;
        Ok(Output::Json(json!({"Policy": out})))
    }
}

pub struct DescribePolicy {
    id: String,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for DescribePolicy {
    const NAME: &'static str = "DescribePolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(DescribePolicy { id: policy_id(&In::new(input))?, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, doc, _) = svc.policy_check(ctx, Self::NAME, &self.id)?;
        self.doc = Some(doc);
        one(c)
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let p = policy_json(&loaded(self.doc)?, &self.id).ok_or_else(policy_not_found)?;
        Ok(Output::Json(json!({"Policy": p})))
    }
}

pub struct UpdatePolicy {
    id: String,
    name: Option<String>,
    description: Option<String>,
    content: Option<String>,
    /// The policy's type, as the plan found it (its content is validated as that type).
    ty: Option<String>,
}

impl Operation<OrgService> for UpdatePolicy {
    const NAME: &'static str = "UpdatePolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let id = policy_id(&i)?;
        let name = i.len("Name", 1, 128, false)?.map(str::to_string);
        let description = i.len("Description", 0, 512, false)?.map(str::to_string);
        let content = i.len("Content", 1, usize::MAX, false)?.map(str::to_string);
        mutable(&id)?;
        Ok(UpdatePolicy { id, name, description, content, ty: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, _, ty) = svc.policy_check(ctx, Self::NAME, &self.id)?;
        self.ty = Some(ty);
        one(c)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let UpdatePolicy { id, name, description, content, ty } = self;
        let now = ctx.time.unix_timestamp();
        let ty = ty.ok_or_else(policy_not_found)?;
        if let Some(c) = &content {
            svc.validate_content(c, &ty)?;
        }
        let out = svc.update(ctx, |_, doc| {
            let ty = doc.policy_type(&id).ok_or_else(policy_not_found)?;
            if let Some(n) = &name {
                check_unique_name(doc, &ty, n, Some(&id))?;
            }
            let p = doc.policies.get_mut(&id).ok_or_else(policy_not_found)?;
            if let Some(n) = name {
                p.name = n;
            }
            if let Some(d) = description {
                p.description = d;
            }
            if let Some(c) = content {
                p.content = c;
                p.updated = now;
            }
            policy_json(doc, &id).ok_or_else(policy_not_found)
        })?;
        Ok(Output::Json(json!({"Policy": out})))
    }
}

pub struct DeletePolicy {
    id: String,
}

impl Operation<OrgService> for DeletePolicy {
    const NAME: &'static str = "DeletePolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let id = policy_id(&In::new(input))?;
        mutable(&id)?;
        Ok(DeletePolicy { id })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(svc.policy_check(ctx, Self::NAME, &self.id)?.0)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let id = self.id;
        svc.update(ctx, |_, doc| {
            if !doc.policies.contains_key(&id) {
                return Err(policy_not_found());
            }
            if doc.attachments.values().any(|v| v.contains(&id)) {
                return Err(err(
                    "PolicyInUseException",
                    "The policy is attached to one or more entities. You must detach it from all roots, OUs, and accounts before performing this operation.",
                ));
            }
            doc.policies.remove(&id);
            Ok(())
        })?;
        Ok(Output::Json(json!({})))
    }
}

pub struct ListPolicies {
    ty: &'static str,
    page: Paging,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for ListPolicies {
    const NAME: &'static str = "ListPolicies";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let ty = policy_type_arg(&i, "Filter")?;
        Ok(ListPolicies { ty, page: Paging::parse(&i)?, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.doc = Some(svc.readable_org(ctx, Self::NAME)?);
        one(with_type(check(Self::NAME, "*"), self.ty))
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let ty = self.ty;
        let mut items = Vec::new();
        if let Some((mid, ..)) = aws_managed(ty) {
            items.extend(policy_summary(&doc, mid));
        }
        let mut ps: Vec<_> = doc.policies.iter().filter(|(_, p)| p.ty == ty).collect();
        ps.sort_by_key(|(_, p)| p.seq);
        items.extend(ps.into_iter().filter_map(|(id, _)| policy_summary(&doc, id)));
        paged("Policies", items, &self.page)
    }
}

pub struct AttachPolicy {
    id: String,
    target: String,
}

impl Operation<OrgService> for AttachPolicy {
    const NAME: &'static str = "AttachPolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let id = policy_id(&i)?;
        Ok(AttachPolicy { id, target: target_id(&i)? })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        attachment_checks(svc, ctx, Self::NAME, &self.id, &self.target)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let AttachPolicy { id, target } = self;
        let now = ctx.time.unix_timestamp();
        svc.update(ctx, |_, doc| {
            let ty = doc.policy_type(&id).ok_or_else(policy_not_found)?;
            if !doc.target_exists(&target) {
                return Err(target_not_found());
            }
            if !doc.type_enabled(&ty) {
                return Err(err(
                    "PolicyTypeNotEnabledException",
                    "This operation can be performed only for enabled policy types.",
                ));
            }
            let list = doc.attachments.entry(target.clone()).or_default();
            if list.contains(&id) {
                return Err(err(
                    "DuplicatePolicyAttachmentException",
                    "The selected policy is already attached to the specified target.",
                ));
            }
            if doc.attached_of_type(&target, &ty).len() >= type_limits(&ty).0 {
                return Err(constraint(
                    "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
                    "You have attached the maximum number of policies of this type to the specified target.",
                ));
            }
            doc.attachments.entry(target).or_default().push(id);
            doc.policy_changes.insert(ty, now);
            Ok(())
        })?;
        Ok(Output::Json(json!({})))
    }
}

pub struct DetachPolicy {
    id: String,
    target: String,
}

impl Operation<OrgService> for DetachPolicy {
    const NAME: &'static str = "DetachPolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let id = policy_id(&i)?;
        Ok(DetachPolicy { id, target: target_id(&i)? })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        attachment_checks(svc, ctx, Self::NAME, &self.id, &self.target)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let DetachPolicy { id, target } = self;
        let now = ctx.time.unix_timestamp();
        svc.update(ctx, |_, doc| {
            let ty = doc.policy_type(&id).ok_or_else(policy_not_found)?;
            if !doc.target_exists(&target) {
                return Err(target_not_found());
            }
            if !doc.attachments.get(&target).is_some_and(|v| v.contains(&id)) {
                return Err(err(
                    "PolicyNotAttachedException",
                    "The policy isn't attached to the specified target in the specified root.",
                ));
            }
            // Only SCPs and RCPs must stay attached (AWS); management policies may all go.
            if aws_managed(&ty).is_some() && doc.attached_of_type(&target, &ty).len() <= 1 {
                return Err(constraint(
                    "MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
                    "You have attached the minimum number of policies of this type to the specified target. Every root, OU and account must have at least one policy of each enabled type attached.",
                ));
            }
            if let Some(v) = doc.attachments.get_mut(&target) {
                v.retain(|p| *p != id);
            }
            doc.policy_changes.insert(ty, now);
            Ok(())
        })?;
        Ok(Output::Json(json!({})))
    }
}

pub struct ListPoliciesForTarget {
    target: String,
    ty: &'static str,
    page: Paging,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for ListPoliciesForTarget {
    const NAME: &'static str = "ListPoliciesForTarget";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let target = target_id(&i)?;
        let ty = policy_type_arg(&i, "Filter")?;
        Ok(ListPoliciesForTarget { target, ty, page: Paging::parse(&i)?, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let doc = svc.readable_org(ctx, Self::NAME)?;
        let c = with_type(check(Self::NAME, target_resource(&doc, &self.target)?), self.ty);
        self.doc = Some(doc);
        one(c)
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let items =
            doc.attached_of_type(&self.target, self.ty).iter().filter_map(|p| policy_summary(&doc, p)).collect();
        paged("Policies", items, &self.page)
    }
}

pub struct ListTargetsForPolicy {
    id: String,
    page: Paging,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for ListTargetsForPolicy {
    const NAME: &'static str = "ListTargetsForPolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let id = policy_id(&i)?;
        Ok(ListTargetsForPolicy { id, page: Paging::parse(&i)?, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, doc, _) = svc.policy_check(ctx, Self::NAME, &self.id)?;
        self.doc = Some(doc);
        one(c)
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let id = self.id.as_str();
        let items = doc
            .targets()
            .iter()
            .filter(|t| doc.attachments.get(*t).is_some_and(|v| v.iter().any(|p| p == id)))
            .map(|t| target_summary(&doc, t))
            .collect();
        paged("Targets", items, &self.page)
    }
}

pub struct EnablePolicyType {
    root: String,
    ty: &'static str,
}

impl Operation<OrgService> for EnablePolicyType {
    const NAME: &'static str = "EnablePolicyType";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let root = i.id("RootId", is_root_id)?.to_string();
        Ok(EnablePolicyType { root, ty: policy_type_arg(&i, "PolicyType")? })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        root_check(svc, ctx, Self::NAME, &self.root, self.ty)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let ty = self.ty;
        let root = svc.update(ctx, |_, doc| {
            if doc.feature_set != "ALL" {
                return Err(err(
                    "PolicyTypeNotAvailableForOrganizationException",
                    "You can't use a policy type that isn't available for your organization. Enable all features first.",
                ));
            }
            if doc.type_enabled(ty) {
                return Err(err("PolicyTypeAlreadyEnabledException", "The specified policy type is already enabled."));
            }
            doc.enabled_types.push(ty.to_string());
            // AWS attaches the managed full-access policy of the type everywhere.
            if let Some((mid, ..)) = aws_managed(ty) {
                for t in doc.targets() {
                    let list = doc.attachments.entry(t).or_default();
                    if !list.iter().any(|p| p == mid) {
                        list.push(mid.to_string());
                    }
                }
            }
            Ok(root_json(doc))
        })?;
        Ok(Output::Json(json!({"Root": root})))
    }
}

pub struct DisablePolicyType {
    root: String,
    ty: &'static str,
}

impl Operation<OrgService> for DisablePolicyType {
    const NAME: &'static str = "DisablePolicyType";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let root = i.id("RootId", is_root_id)?.to_string();
        Ok(DisablePolicyType { root, ty: policy_type_arg(&i, "PolicyType")? })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        root_check(svc, ctx, Self::NAME, &self.root, self.ty)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let ty = self.ty;
        let root = svc.update(ctx, |_, doc| {
            if !doc.type_enabled(ty) {
                return Err(err(
                    "PolicyTypeNotEnabledException",
                    "This operation can be performed only for enabled policy types.",
                ));
            }
            doc.enabled_types.retain(|t| t != ty);
            let types: Vec<(String, String)> =
                doc.attachments.values().flatten().filter_map(|p| doc.policy_type(p).map(|t| (p.clone(), t))).collect();
            for list in doc.attachments.values_mut() {
                list.retain(|p| !types.iter().any(|(id, t)| id == p && t == ty));
            }
            Ok(root_json(doc))
        })?;
        Ok(Output::Json(json!({"Root": root})))
    }
}
