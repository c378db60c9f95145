//! The policy simulator: SimulateCustomPolicy, SimulatePrincipalPolicy,
//! GetContextKeysForCustomPolicy, GetContextKeysForPrincipalPolicy.

use std::sync::Arc;

use rampart_policy::{
    evaluate, Context, ContextValue, Decision, Evaluation, Layer, LayerDecision, NamedPolicy, Policy, PolicySet,
    PolicyType, Position, Principal, PrincipalKind, Request,
};
use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_service::{op, AuthzPlan, Entry, Input, Operation, Output, RequestContext};

use super::{account, check, one, paginate, xml, Core};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{GroupRec, RoleRec, UserRec};
use crate::resolve::{Resolved, Source, SourcedPolicy};
use crate::validate::{self as v, Args};

const CONTEXT_TYPES: &[&str] = &[
    "string",
    "stringList",
    "numeric",
    "numericList",
    "boolean",
    "booleanList",
    "ip",
    "ipList",
    "binary",
    "binaryList",
    "date",
    "dateList",
];

/// The entity named by `PolicySourceArn`.
enum SourceEntity {
    User(UserRec),
    Group(GroupRec),
    Role(RoleRec),
}

fn invalid_source(arn: &str) -> IamError {
    IamError::InvalidInput(format!(
        "Invalid ARN: {arn}. The PolicySourceArn must be the ARN of an IAM user, group or role."
    ))
}

fn source_entity(core: &Core, acct: &str, arn: &str) -> Result<SourceEntity> {
    let rest = arn.strip_prefix("arn:aws:iam::").ok_or_else(|| invalid_source(arn))?;
    let (owner, resource) = rest.split_once(':').ok_or_else(|| invalid_source(arn))?;
    let (kind, path_name) = resource.split_once('/').ok_or_else(|| invalid_source(arn))?;
    let name = path_name.rsplit('/').next().unwrap_or_default();
    let missing = || IamError::NoSuchEntity(format!("The {kind} with name {name} cannot be found."));
    if owner != acct || name.is_empty() {
        return match kind {
            "user" | "group" | "role" => Err(missing()),
            _ => Err(invalid_source(arn)),
        };
    }
    match kind {
        "user" => core.db.entity::<UserRec>(acct, name)?.filter(|u| u.arn(acct) == arn).map(SourceEntity::User),
        "group" => core.db.entity::<GroupRec>(acct, name)?.filter(|g| g.arn(acct) == arn).map(SourceEntity::Group),
        "role" => core.db.entity::<RoleRec>(acct, name)?.filter(|r| r.arn(acct) == arn).map(SourceEntity::Role),
        _ => return Err(invalid_source(arn)),
    }
    .ok_or_else(missing)
}

fn resolve_source(core: &Core, acct: &str, e: &SourceEntity) -> Result<Resolved> {
    match e {
        SourceEntity::User(u) => core.resolver.user(acct, u),
        SourceEntity::Group(g) => core.resolver.group(acct, g),
        SourceEntity::Role(r) => core.resolver.role(acct, r),
    }
}

/// Parse the documents of an input list; malformed ones are InvalidInput, as the simulator reports them.
fn input_policies(core: &Core, docs: &[String], list: &str, kind: &'static str) -> Result<Vec<SourcedPolicy>> {
    docs.iter()
        .enumerate()
        .map(|(i, doc)| {
            let policy = core
                .resolver
                .policies
                .get(doc, PolicyType::Identity)
                .map_err(|e| IamError::InvalidInput(format!("{list}.{}: {}", i + 1, e.message)))?;
            let id = format!("{list}.{}", i + 1);
            Ok(SourcedPolicy { source: Source { name: id.clone(), id, kind, document: doc.to_string() }, policy })
        })
        .collect()
}

fn context_entries(entries: &[QueryParams]) -> Context {
    let mut c = Context::new();
    for entry in entries {
        let Some(name) = entry.get("ContextKeyName") else { continue };
        let values: Vec<String> = entry.list("ContextKeyValues.member").into_iter().map(str::to_string).collect();
        let is_list = entry.get("ContextKeyType").is_some_and(|t| t.ends_with("List"));
        let value = if is_list || values.len() > 1 {
            ContextValue::List(values)
        } else {
            ContextValue::String(values.into_iter().next().unwrap_or_default())
        };
        c.insert(name, value);
    }
    c
}

/// The context keys a document uses as policy variables (`${aws:username}`, `${aws:PrincipalTag/x, 'd'}`)
/// in its resources and condition values; variables exist only in version 2012-10-17 documents.
fn policy_variables(document: &str) -> Vec<String> {
    fn strings<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::String(s) => out.push(s),
            serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(document) else { return Vec::new() };
    if v.get("Version").and_then(|x| x.as_str()) != Some("2012-10-17") {
        return Vec::new();
    }
    let statements = match v.get("Statement") {
        Some(serde_json::Value::Array(a)) => a.iter().collect(),
        Some(o) => vec![o],
        None => Vec::new(),
    };
    let mut texts = Vec::new();
    for st in statements {
        for field in ["Resource", "NotResource", "Condition"] {
            if let Some(x) = st.get(field) {
                strings(x, &mut texts);
            }
        }
    }
    let mut keys = Vec::new();
    for t in texts {
        let mut rest = t;
        while let Some((_, after)) = rest.split_once("${") {
            let Some((inner, after_close)) = after.split_once('}') else { break };
            let inner = inner.split(',').next().unwrap_or_default().trim();
            if !matches!(inner, "*" | "?" | "$" | "") {
                keys.push(inner.to_string());
            }
            rest = after_close;
        }
    }
    keys
}

/// The account of `ResourceOwner` (an account ID or an ARN naming one).
fn owner_account(owner: &str) -> String {
    if let Some(rest) = owner.strip_prefix("arn:") {
        return rest.split(':').nth(3).unwrap_or_default().to_string();
    }
    owner.to_string()
}

fn decision_name(d: Decision) -> &'static str {
    match d {
        Decision::Allowed => "allowed",
        Decision::ImplicitlyDenied => "implicitDeny",
        Decision::ExplicitlyDenied => "explicitDeny",
    }
}

/// A statement that decided a simulation result, with its source and position.
struct Matched<'a> {
    source: &'a Source,
    start: Position,
    end: Position,
}

/// The engine's decisive statements, mapped back to the simulation's policy sources.
fn matched_statements<'a>(eval: &Evaluation, sources: &[&'a Source]) -> Vec<Matched<'a>> {
    eval.explanation
        .matched_statements()
        .filter_map(|m| {
            let source = sources.iter().copied().find(|s| s.name == m.policy)?;
            Some(Matched { source, start: m.start, end: m.end })
        })
        .collect()
}

/// One (action, resource) outcome of a simulation.
struct SimResult<'a> {
    action: String,
    resource: String,
    decision: Decision,
    matched: Vec<Matched<'a>>,
    missing: Vec<String>,
    boundary_allowed: Option<bool>,
    details: Option<Vec<(&'static str, Decision)>>,
    /// `OrganizationsDecisionDetail.AllowedByOrganizations` when SCPs applied.
    organizations_allowed: Option<bool>,
}

/// EvalDecisionDetails: each policy type's own verdict, for cross-account simulations only. Present
/// but empty for a same-account simulation naming a resource; absent for `*` (AWS's documented shape).
fn decision_details(
    sim: &Sim<'_>,
    set: &PolicySet<'_>,
    resource: &str,
    eval: &Evaluation,
) -> Option<Vec<(&'static str, Decision)>> {
    let cross_account =
        sim.resource_account.as_deref().is_some_and(|owner| !owner.is_empty() && owner != sim.principal.account);
    if !cross_account {
        return (resource != "*").then(Vec::new);
    }
    let verdict = |layer: Layer| match eval.explanation.layer_decision(layer) {
        Some(LayerDecision::Allowed) => Decision::Allowed,
        Some(LayerDecision::ExplicitDeny) => Decision::ExplicitlyDenied,
        Some(LayerDecision::ImplicitDeny) | None => Decision::ImplicitlyDenied,
    };
    let mut details = vec![("IAM Policy", verdict(Layer::Identity))];
    if set.permissions_boundaries.is_some() {
        details.push(("Permissions Boundary Policy", verdict(Layer::PermissionsBoundary)));
    }
    details.push(("Resource Policy", verdict(Layer::ResourcePolicy)));
    Some(details)
}

struct Sim<'a> {
    principal: Principal,
    identity: Vec<SourcedPolicy>,
    boundary: Option<Vec<SourcedPolicy>>,
    resource_policy: Option<(Source, Arc<Policy>)>,
    resource_account: Option<String>,
    context: Context,
    /// The SCP levels of the principal's account (SimulatePrincipalPolicy in a member account).
    scp: Option<Vec<crate::org::enforce::Level>>,
    /// The actions, resources and page asked for.
    input: &'a SimInput,
}

fn simulate(sim: Sim<'_>) -> Result<Output> {
    let actions = &sim.input.actions;
    let mut resources: Vec<&str> = sim.input.resources.iter().map(String::as_str).collect();
    if resources.is_empty() {
        resources.push("*");
    }
    let identity: Vec<NamedPolicy<'_>> =
        sim.identity.iter().map(|p| NamedPolicy::new(&p.source.name, &p.policy)).collect();
    let boundary: Option<Vec<NamedPolicy<'_>>> =
        sim.boundary.as_ref().map(|b| b.iter().map(|p| NamedPolicy::new(&p.source.name, &p.policy)).collect());
    let set = PolicySet {
        identity,
        permissions_boundaries: boundary,
        resource_policy: sim.resource_policy.as_ref().map(|(s, p)| NamedPolicy::new(&s.name, p)),
        service_control_policies: sim.scp.as_deref().map(crate::org::enforce::named),
        ..PolicySet::default()
    };
    let mut sources: Vec<&Source> = sim.identity.iter().map(|p| &p.source).collect();
    if let Some(b) = &sim.boundary {
        sources.extend(b.iter().map(|p| &p.source));
    }
    if let Some((s, _)) = &sim.resource_policy {
        sources.push(s);
    }

    let mut results = Vec::new();
    for action in actions {
        for resource in &resources {
            let request = Request {
                principal: &sim.principal,
                action,
                resource,
                resource_account: sim.resource_account.as_deref(),
                context: &sim.context,
            };
            let eval = evaluate(&request, &set);
            let boundary_allowed =
                eval.explanation.layer_decision(Layer::PermissionsBoundary).map(|d| d == LayerDecision::Allowed);
            let matched = matched_statements(&eval, &sources);
            let missing = eval.explanation.missing_context_keys().to_vec();
            let details = decision_details(&sim, &set, resource, &eval);
            let organizations_allowed = sim.scp.as_ref().map(|_| {
                eval.explanation
                    .layers
                    .iter()
                    .filter(|l| l.layer == Layer::ServiceControlPolicy)
                    .all(|l| l.decision == LayerDecision::Allowed)
            });
            results.push(SimResult {
                action: action.to_string(),
                resource: resource.to_string(),
                decision: eval.decision,
                matched,
                missing,
                boundary_allowed,
                details,
                organizations_allowed,
            });
        }
    }

    let (marker, max) = (sim.input.marker.as_deref(), sim.input.max);
    let indexed: Vec<(usize, _)> = results.into_iter().enumerate().collect();
    let page = paginate(indexed, |(i, _)| format!("{i:06}"), marker, max);
    let mut w = XmlWriter::new();
    w.start("EvaluationResults");
    for (_, r) in &page.items {
        let SimResult {
            action,
            resource,
            decision,
            matched,
            missing,
            boundary_allowed,
            details,
            organizations_allowed,
        } = r;
        w.start("member").elem("EvalActionName", action).elem("EvalResourceName", resource);
        w.elem("EvalDecision", decision_name(*decision));
        if let Some(details) = details {
            w.start("EvalDecisionDetails");
            for (key, value) in details {
                w.start("entry").elem("key", key).elem("value", decision_name(*value)).end();
            }
            w.end();
        }
        statements(&mut w, matched);
        missing_values(&mut w, missing);
        if let Some(o) = organizations_allowed {
            w.start("OrganizationsDecisionDetail").bool("AllowedByOrganizations", *o).end();
        }
        if let Some(b) = boundary_allowed {
            w.start("PermissionsBoundaryDecisionDetail").bool("AllowedByPermissionsBoundary", *b).end();
        }
        if resource.as_str() != "*" {
            w.start("ResourceSpecificResults").start("member");
            w.elem("EvalResourceName", resource).elem("EvalResourceDecision", decision_name(*decision));
            statements(&mut w, matched);
            missing_values(&mut w, missing);
            if let Some(b) = boundary_allowed {
                w.start("PermissionsBoundaryDecisionDetail").bool("AllowedByPermissionsBoundary", *b).end();
            }
            w.end().end();
        }
        w.end();
    }
    w.end();
    super::xml::truncation(&mut w, &page.next);
    xml(w.finish())
}

fn missing_values(w: &mut XmlWriter, missing: &[String]) {
    w.start("MissingContextValues");
    for k in missing {
        w.elem("member", k);
    }
    w.end();
}

fn statements(w: &mut XmlWriter, matched: &[Matched<'_>]) {
    w.start("MatchedStatements");
    for m in matched {
        w.start("member").elem("SourcePolicyId", &m.source.id).elem("SourcePolicyType", m.source.kind);
        w.start("StartPosition").num("Line", m.start.line).num("Column", m.start.column).end();
        w.start("EndPosition").num("Line", m.end.line).num("Column", m.end.column).end();
        w.end();
    }
    w.end();
}

fn caller_principal(arn: Option<&str>) -> Result<Option<Principal>> {
    let Some(arn) = arn else { return Ok(None) };
    let account = arn.strip_prefix("arn:aws:iam::").and_then(|r| r.split(':').next()).unwrap_or_default();
    if !arn.contains(":user/") || account.is_empty() {
        return Err(IamError::InvalidInput(format!(
            "Invalid CallerArn: {arn}. The CallerArn must be the ARN of an IAM user."
        )));
    }
    Ok(Some(Principal::iam_user(arn, account)))
}

fn resource_policy(core: &Core, doc: Option<&str>) -> Result<Option<(Source, Arc<Policy>)>> {
    let Some(doc) = doc else { return Ok(None) };
    let p = core
        .resolver
        .policies
        .get(doc, PolicyType::Resource)
        .map_err(|e| IamError::InvalidInput(format!("ResourcePolicy: {}", e.message)))?;
    let id = "ResourcePolicy".to_string();
    Ok(Some((Source { name: id.clone(), id, kind: "resource", document: doc.to_string() }, p)))
}

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, SimulateCustomPolicy>(),
    op::<Core, SimulatePrincipalPolicy>(),
    op::<Core, GetContextKeysForCustomPolicy>(),
    op::<Core, GetContextKeysForPrincipalPolicy>(),
];

/// What both simulations take besides `PolicySourceArn`.
struct SimInput {
    policies: Vec<String>,
    boundaries: Vec<String>,
    actions: Vec<String>,
    resources: Vec<String>,
    resource_policy: Option<String>,
    resource_owner: Option<String>,
    caller_arn: Option<String>,
    context: Context,
    marker: Option<String>,
    max: usize,
}

fn strings(v: Vec<&str>) -> Vec<String> {
    v.into_iter().map(str::to_string).collect()
}

/// `PolicySourceArn` (SimulatePrincipalPolicy) and the members of both simulations, in AWS's
/// order of validation.
fn parse_sim(input: &Input, custom: bool) -> Result<(String, SimInput)> {
    let q = input.query();
    let mut a = Args::new(q);
    let source = if custom { String::new() } else { a.req("PolicySourceArn", &v::ARN).to_string() };
    let policies = strings(a.list("PolicyInputList", &v::DOCUMENT, None, custom));
    let boundaries = strings(a.list("PermissionsBoundaryPolicyInputList", &v::DOCUMENT, None, false));
    let actions = strings(a.list("ActionNames", &v::ACTION_NAME, None, true));
    let resources = strings(a.list("ResourceArns", &v::RESOURCE_NAME, None, false));
    let resource_policy = a.opt("ResourcePolicy", &v::DOCUMENT).map(str::to_string);
    let resource_owner = a.opt("ResourceOwner", &v::RESOURCE_NAME).map(str::to_string);
    let caller_arn = a.opt("CallerArn", &v::RESOURCE_NAME).map(str::to_string);
    a.opt("ResourceHandlingOption", &v::RESOURCE_HANDLING);
    let (marker, max) = a.paging();
    let marker = marker.map(str::to_string);
    let entries = q.struct_list("ContextEntries.member");
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("contextEntries.{}.member", i + 1);
        if let Some(name) = entry.get("ContextKeyName") {
            a.check_value(&format!("{field}.contextKeyName"), name, &v::CONTEXT_KEY_NAME);
        }
        if let Some(t) = entry.get("ContextKeyType") {
            if !CONTEXT_TYPES.contains(&t) {
                a.error(format!(
                    "Value '{}' at '{field}.contextKeyType' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                    rampart_protocol::echo(t),
                    CONTEXT_TYPES.join(", ")
                ));
            }
        }
    }
    a.finish()?;
    let context = context_entries(&entries);
    let sim = SimInput {
        policies,
        boundaries,
        actions,
        resources,
        resource_policy,
        resource_owner,
        caller_arn,
        context,
        marker,
        max,
    };
    Ok((source, sim))
}

pub struct SimulateCustomPolicy {
    input: SimInput,
}

impl Operation<Core> for SimulateCustomPolicy {
    const NAME: &'static str = "SimulateCustomPolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(SimulateCustomPolicy { input: parse_sim(input, true)?.1 })
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let i = &self.input;
        let caller = caller_principal(i.caller_arn.as_deref())?;
        let resource_policy = resource_policy(core, i.resource_policy.as_deref())?;
        if resource_policy.is_some() && caller.is_none() {
            return Err(IamError::InvalidInput("CallerArn is required when ResourcePolicy is specified.".into()));
        }
        let boundary = input_policies(core, &i.boundaries, "PermissionsBoundaryPolicyInputList", "none")?;
        simulate(Sim {
            principal: caller.unwrap_or_else(|| Principal::iam_user(&format!("arn:aws:iam::{acct}:user/"), acct)),
            identity: input_policies(core, &i.policies, "PolicyInputList", "none")?,
            boundary: (!boundary.is_empty()).then_some(boundary),
            resource_policy,
            resource_account: i.resource_owner.as_deref().map(owner_account),
            context: i.context.clone(),
            scp: None,
            input: i,
        })
    }
}

pub struct SimulatePrincipalPolicy {
    source: String,
    input: SimInput,
}

impl Operation<Core> for SimulatePrincipalPolicy {
    const NAME: &'static str = "SimulatePrincipalPolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (source, input) = parse_sim(input, false)?;
        Ok(SimulatePrincipalPolicy { source, input })
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, self.source.clone()))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let i = &self.input;
        let entity = source_entity(core, acct, &self.source)?;
        let resolved = resolve_source(core, acct, &entity)?;
        let mut identity = resolved.identity;
        identity.extend(input_policies(core, &i.policies, "PolicyInputList", "none")?);
        let input_boundary = input_policies(core, &i.boundaries, "PermissionsBoundaryPolicyInputList", "none")?;
        let boundary =
            if input_boundary.is_empty() { resolved.boundary.map(|b| vec![b]) } else { Some(input_boundary) };
        let resource_policy = resource_policy(core, i.resource_policy.as_deref())?;
        let principal = match (caller_principal(i.caller_arn.as_deref())?, &entity) {
            (Some(p), _) => p,
            (None, SourceEntity::User(u)) => Principal::iam_user(&u.arn(acct), acct),
            (None, SourceEntity::Role(r)) => Principal {
                arn: r.arn(acct),
                account: acct.to_string(),
                kind: PrincipalKind::AssumedRole { role_arn: r.arn(acct) },
            },
            (None, SourceEntity::Group(_)) if resource_policy.is_some() => {
                return Err(IamError::InvalidInput(
                    "CallerArn is required when ResourcePolicy is specified and PolicySourceArn is not a user.".into(),
                ))
            }
            (None, SourceEntity::Group(g)) => Principal::iam_user(&g.arn(acct), acct),
        };
        // SCPs of the principal's account bind the simulation as they bind its requests.
        let scp = crate::org::enforce::OrgEnforcer::new(core.db.clone(), core.resolver.policies.clone())
            .view(acct)?
            .and_then(|v| v.scp.clone());
        simulate(Sim {
            principal,
            identity,
            boundary,
            resource_policy,
            resource_account: i.resource_owner.as_deref().map(owner_account),
            context: i.context.clone(),
            scp,
            input: i,
        })
    }
}

/// The context keys `policies` use, each once (case-insensitively), as GetContextKeys* list them.
fn context_keys(policies: &[SourcedPolicy]) -> Result<Output> {
    let mut keys: Vec<String> = Vec::new();
    for p in policies {
        for k in p.policy.condition_keys().into_iter().chain(policy_variables(&p.source.document)) {
            if !keys.iter().any(|x| x.eq_ignore_ascii_case(&k)) {
                keys.push(k);
            }
        }
    }
    let mut w = XmlWriter::new();
    w.start("ContextKeyNames");
    for k in &keys {
        w.elem("member", k);
    }
    w.end();
    xml(w.finish())
}

pub struct GetContextKeysForCustomPolicy {
    policies: Vec<String>,
}

impl Operation<Core> for GetContextKeysForCustomPolicy {
    const NAME: &'static str = "GetContextKeysForCustomPolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let policies = strings(a.list("PolicyInputList", &v::DOCUMENT, None, true));
        a.finish()?;
        Ok(GetContextKeysForCustomPolicy { policies })
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, _: &RequestContext) -> Result<Output> {
        context_keys(&input_policies(core, &self.policies, "PolicyInputList", "none")?)
    }
}

pub struct GetContextKeysForPrincipalPolicy {
    source: String,
    policies: Vec<String>,
}

impl Operation<Core> for GetContextKeysForPrincipalPolicy {
    const NAME: &'static str = "GetContextKeysForPrincipalPolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let source = a.req("PolicySourceArn", &v::ARN).to_string();
        let policies = strings(a.list("PolicyInputList", &v::DOCUMENT, None, false));
        a.finish()?;
        Ok(GetContextKeysForPrincipalPolicy { source, policies })
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, self.source.clone()))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let mut policies = input_policies(core, &self.policies, "PolicyInputList", "none")?;
        let entity = source_entity(core, acct, &self.source)?;
        let resolved = resolve_source(core, acct, &entity)?;
        policies.extend(resolved.identity);
        policies.extend(resolved.boundary);
        context_keys(&policies)
    }
}

#[cfg(test)]
mod tests {
    use super::policy_variables;

    #[test]
    fn variables_of_2012_documents() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*",
            "Resource":["arn:aws:s3:::b/${aws:username}/*","arn:aws:s3:::b/${aws:PrincipalTag/team, 'none'}/${*}"],
            "Condition":{"StringEquals":{"s3:prefix":"${aws:userid}"}}}]}"#;
        assert_eq!(policy_variables(doc), vec!["aws:username", "aws:PrincipalTag/team", "aws:userid"]);
        assert!(policy_variables(&doc.replace("2012-10-17", "2008-10-17")).is_empty());
        assert!(policy_variables("not json").is_empty());
    }
}
