//! The organization's resource policy (PutResourcePolicy / DescribeResourcePolicy /
//! DeleteResourcePolicy): AWS's delegation of Organizations to member accounts. What it allows
//! takes effect through [`super::delegate`]: a member account's call of a delegable read
//! operation is checked against it.

use rampart_policy::{Policy, PolicyType};
use rampart_service::{op, Entry, Operation};

use super::*;

/// The operations of this family, each listed once.
pub const OPS: &[Entry<OrgService>] = &[
    op::<OrgService, PutResourcePolicy>(),
    op::<OrgService, DescribeResourcePolicy>(),
    op::<OrgService, DeleteResourcePolicy>(),
];

fn resource_policy_not_found() -> IamError {
    err(
        "ResourcePolicyNotFoundException",
        "We can't find a resource policy request with the parameter that you specified.",
    )
}

fn resource_policy_json(doc: &OrgDoc, rp: &ResourcePolicyRec) -> Value {
    json!({
        "ResourcePolicySummary": {"Id": rp.id, "Arn": doc.resource_policy_arn(&rp.id)},
        "Content": rp.content,
    })
}

/// AWS's checks of a delegation policy: valid resource-policy JSON whose statements name
/// principals and only Organizations actions.
fn validate(content: &str) -> Result<()> {
    let bad_json = || invalid("INVALID_RESOURCE_POLICY_JSON", "You provided a resource policy that isn't valid JSON.");
    let v: Value = serde_json::from_str(content).map_err(|_| bad_json())?;
    let statements = match v.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => return Err(bad_json()),
    };
    for st in &statements {
        if st.get("Principal").is_none() && st.get("NotPrincipal").is_none() {
            return Err(invalid("INVALID_PRINCIPAL", "You specified an invalid principal element in the policy."));
        }
        let actions: Vec<&str> = match st.get("Action").or_else(|| st.get("NotAction")) {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => return Err(bad_json()),
        };
        let organizations =
            |a: &str| a.split_once(':').is_some_and(|(svc, _)| svc.eq_ignore_ascii_case("organizations"));
        if !actions.iter().all(|a| organizations(a)) {
            return Err(invalid(
                "UNSUPPORTED_ACTION_IN_RESOURCE_POLICY",
                "You provided an unsupported action in the resource policy.",
            ));
        }
    }
    Policy::parse(content, PolicyType::Resource).map_err(|e| {
        IamError::Aws(
            AwsError::new("InvalidInputException", format!("The resource policy is invalid: {}", e.message), 400)
                .with_field("Reason", "INVALID_RESOURCE_POLICY_JSON"),
        )
    })?;
    Ok(())
}

pub struct PutResourcePolicy {
    content: String,
    tags: Vec<Tag>,
    /// The policy's ID (the existing one's, or a new one), as the plan named it.
    id: Option<String>,
}

impl Operation<OrgService> for PutResourcePolicy {
    const NAME: &'static str = "PutResourcePolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let content = i.len("Content", 1, 40_000, true)?.unwrap_or_default().to_string();
        let tags = i.tags("Tags")?;
        validate(&content)?;
        Ok(PutResourcePolicy { content, tags, id: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let doc = svc.managed_org(ctx)?;
        let id = doc.resource_policy.as_ref().map(|rp| rp.id.clone()).unwrap_or_else(new_resource_policy_id);
        let mut c = check(Self::NAME, doc.resource_policy_arn(&id));
        let mut checks = Vec::new();
        if !self.tags.is_empty() {
            for t in &self.tags {
                c = c.with_context(format!("aws:RequestTag/{}", t.key), ContextValue::String(t.value.clone()));
            }
            let keys = ContextValue::List(self.tags.iter().map(|t| t.key.clone()).collect());
            c = c.with_context("aws:TagKeys", keys.clone());
            checks.push(check("TagResource", doc.resource_policy_arn(&id)).with_context("aws:TagKeys", keys));
        }
        checks.insert(0, c);
        self.id = Some(id);
        Ok(AuthzPlan::Checks(checks))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let PutResourcePolicy { content, tags, id } = self;
        let out = svc.update(ctx, |_, doc| {
            let rp = match doc.resource_policy.take() {
                Some(mut rp) => {
                    // AWS: tags are set when the policy is created.
                    if !tags.is_empty() {
                        doc.resource_policy = Some(rp);
                        return Err(constraint(
                            "UPDATE_EXISTING_RESOURCE_POLICY_WITH_TAGS_NOT_SUPPORTED",
                            "You can't update an existing resource policy with tags.",
                        ));
                    }
                    rp.content = content;
                    rp
                }
                None => ResourcePolicyRec { id: id.unwrap_or_else(new_resource_policy_id), content, tags },
            };
            let out = resource_policy_json(doc, &rp);
            doc.resource_policy = Some(rp);
            Ok(out)
        })?;
        Ok(Output::Json(json!({"ResourcePolicy": out})))
    }
}

pub struct DescribeResourcePolicy {
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for DescribeResourcePolicy {
    const NAME: &'static str = "DescribeResourcePolicy";
    type Error = IamError;

    fn parse(_: &Input) -> Result<Self> {
        Ok(DescribeResourcePolicy { doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let doc = svc.readable_org(ctx, Self::NAME)?;
        let rp = doc.resource_policy.as_ref().ok_or_else(resource_policy_not_found)?;
        let c = check(Self::NAME, doc.resource_policy_arn(&rp.id));
        self.doc = Some(doc);
        one(c)
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let rp = doc.resource_policy.as_ref().ok_or_else(resource_policy_not_found)?;
        Ok(Output::Json(json!({"ResourcePolicy": resource_policy_json(&doc, rp)})))
    }
}

pub struct DeleteResourcePolicy;

impl Operation<OrgService> for DeleteResourcePolicy {
    const NAME: &'static str = "DeleteResourcePolicy";
    type Error = IamError;

    fn parse(_: &Input) -> Result<Self> {
        Ok(DeleteResourcePolicy)
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let doc = svc.managed_org(ctx)?;
        let rp = doc.resource_policy.as_ref().ok_or_else(resource_policy_not_found)?;
        one(check(Self::NAME, doc.resource_policy_arn(&rp.id)))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        svc.update(ctx, |_, doc| doc.resource_policy.take().map(|_| ()).ok_or_else(resource_policy_not_found))?;
        Ok(Output::Json(json!({})))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegation_policies_name_principals_and_organizations_actions() {
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":["organizations:Describe*","organizations:List*"],"Resource":"*"}]}"#;
        assert!(validate(ok).is_ok());
        let reason = |doc: &str| match validate(doc) {
            Err(IamError::Aws(e)) => e.fields.iter().find(|(k, _)| *k == "Reason").map(|(_, v)| v.to_string()),
            _ => None,
        };
        assert_eq!(reason("{not json").as_deref(), Some("INVALID_RESOURCE_POLICY_JSON"));
        let s3 = ok.replace("organizations:List*", "s3:GetObject");
        assert_eq!(reason(&s3).as_deref(), Some("UNSUPPORTED_ACTION_IN_RESOURCE_POLICY"));
        let anonymous = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"organizations:ListRoots","Resource":"*"}]}"#;
        assert_eq!(reason(anonymous).as_deref(), Some("INVALID_PRINCIPAL"));
    }
}
