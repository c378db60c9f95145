//! The authorizer: assembles the caller's policy set for a check and asks the policy engine.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use rampart_policy::{
    evaluate, Context, ContextValue, Decision, Layer, NamedPolicy, Policy, PolicySet, PolicyType, Principal,
    PrincipalKind, Request,
};
use rampart_protocol::AwsError;
use rampart_service::{Authorizer, AuthzCheck, Caller, CallerKind, ContextKey, RequestContext};

use crate::db::Lookup;
use crate::denials;
use crate::error::{IamError, Result};
use crate::model::{RoleRec, UserRec};
use crate::org::enforce::{Applied, OrgEnforcer};
use crate::resolve::{Resolved, Resolver};
use crate::util::iso8601;

/// Resolved principals are cached per account generation: any IAM write in the account
/// invalidates them, so every decision reflects the latest committed state.
const MAX_PRINCIPALS: usize = 65_536;

/// Decides every check of the pipeline.
pub struct IamAuthorizer {
    resolver: Arc<Resolver>,
    org: Arc<OrgEnforcer>,
    principals: RwLock<HashMap<String, (u64, Arc<Resolved>)>>,
}

impl IamAuthorizer {
    pub(crate) fn new(resolver: Arc<Resolver>, org: Arc<OrgEnforcer>) -> Self {
        IamAuthorizer { resolver, org, principals: RwLock::new(HashMap::new()) }
    }

    /// The caller's identity policies, boundary and tags (cached per generation).
    fn resolve(&self, caller: &Caller) -> Result<Arc<Resolved>> {
        let (kind, name) = match &caller.kind {
            CallerKind::IamUser { user_name, .. } => ("u", user_name.as_str()),
            CallerKind::AssumedRole { role_name, .. } => ("r", role_name.as_str()),
            // A federated user has the policies of the IAM user who federated it (bounded by its
            // session policies).
            CallerKind::FederatedUser { .. } => {
                match caller.session.as_ref().and_then(|s| s.federated_parent.as_ref()).and_then(|p| p.as_deref()) {
                    Some(parent) => ("u", parent),
                    None => return Ok(Arc::new(Resolved::default())),
                }
            }
            CallerKind::Root => return Ok(Arc::new(Resolved::default())),
        };
        let account = &caller.account_id;
        let key = format!("{account}/{kind}/{}", name.to_ascii_lowercase());
        let generation = self.resolver.db.generation(account)?;
        if let Some((g, r)) = self.principals.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
            if *g == generation {
                return Ok(r.clone());
            }
        }
        let resolved = match kind {
            "u" => match self.resolver.db.entity::<UserRec>(account, name)? {
                Some(u) => self.resolver.user(account, &u)?,
                None => Resolved::default(),
            },
            _ => match self.resolver.db.entity::<RoleRec>(account, name)? {
                Some(r) => self.resolver.role(account, &r)?,
                None => Resolved::default(),
            },
        };
        let resolved = Arc::new(resolved);
        let mut map = self.principals.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_PRINCIPALS {
            map.clear();
        }
        map.insert(key, (generation, resolved.clone()));
        Ok(resolved)
    }

    fn decide(&self, ctx: &RequestContext, service: &str, mut check: AuthzCheck) -> Result<()> {
        let caller = &ctx.caller;
        let same_account = check.resource_account.as_deref().is_none_or(|a| a == caller.account_id);
        // SCPs bind the caller's account, RCPs the resource's (Organizations).
        let resource_account = check.resource_account.as_deref().unwrap_or(&caller.account_id);
        let org = Applied::new(&self.org, &caller.account_id, resource_account, &check.action)?;
        // An AssumeRoot session's task policy binds root too: no shortcut for it.
        let task_policy = caller.session.as_ref().and_then(|s| s.task_policy.as_ref());
        if caller.is_root() && same_account && check.resource_policy.is_none() && !org.binds() && task_policy.is_none()
        {
            return Ok(());
        }
        let resolved = self.resolve(caller)?;
        let resource_policy = match &check.resource_policy {
            Some(rp) => {
                let ty = resource_policy_type(&check.resource);
                let policy = match &rp.compiled {
                    // Compiled by its owner as a resource-based policy (a KMS key's, once per load).
                    Some(p) if ty == PolicyType::Resource => p.clone(),
                    _ => self.resolver.policies.get(&rp.document, ty).map_err(|e| {
                        IamError::Internal(format!("resource policy {} does not parse: {}", rp.name, e.message))
                    })?,
                };
                Some((rp, policy))
            }
            None => None,
        };
        let session_policies =
            match &caller.session {
                Some(s) if s.bounded_by_session_policy || !s.session_policies.is_empty() => Some(
                    s.session_policies
                        .iter()
                        .map(|(name, doc)| {
                            self.resolver.policies.get(doc, PolicyType::Identity).map(|p| (name.as_str(), p)).map_err(
                                |e| IamError::Internal(format!("session policy does not parse: {}", e.message)),
                            )
                        })
                        .collect::<Result<Vec<_>>>()?,
                ),
                _ => None,
            };

        let principal = principal_of(caller);
        let root_policy;
        let root_federated = matches!(caller.kind, CallerKind::FederatedUser { .. })
            && caller.session.as_ref().is_some_and(|s| matches!(s.federated_parent, Some(None)));
        let task = match task_policy {
            Some((name, doc)) => Some((
                name.as_str(),
                self.resolver
                    .policies
                    .get_stored(doc, PolicyType::Identity)
                    .map_err(|e| IamError::Internal(format!("task policy {name} does not parse: {}", e.message)))?,
            )),
            None => None,
        };
        let identity: Vec<NamedPolicy<'_>> = if caller.is_root() || root_federated {
            root_policy = root_identity_policy()?;
            let mut v = vec![NamedPolicy::new("root", root_policy)];
            if let Some((name, p)) = &task {
                v.push(NamedPolicy::new(name, p));
            }
            v
        } else {
            resolved.identity.iter().map(|p| NamedPolicy::new(&p.source.name, &p.policy)).collect()
        };
        let set = PolicySet {
            identity,
            permissions_boundaries: resolved
                .boundary
                .as_ref()
                .map(|b| vec![NamedPolicy::new(&b.source.name, &b.policy)]),
            session_policies: session_policies
                .as_ref()
                .map(|v| v.iter().map(|(name, p)| NamedPolicy::new(name, p)).collect()),
            resource_policy: resource_policy.as_ref().map(|(rp, p)| NamedPolicy::new(&rp.name, p)),
            resource_policy_required: check.resource_policy.as_ref().is_some_and(|rp| rp.required),
            service_control_policies: org.scp(),
            resource_control_policies: org.rcp(),
        };
        // The request context is built only when some policy reads it (a condition, a policy
        // variable), or for a denial's record; otherwise the decision cannot depend on it.
        let extra = std::mem::take(&mut check.context);
        let full_context = |extra| {
            let mut context = request_context(ctx, &resolved, extra);
            org.add_context(&mut context);
            context
        };
        let (context, extra) =
            if set.reads_context() { (full_context(extra), None) } else { (Context::new(), Some(extra)) };
        let request = Request {
            principal: &principal,
            action: &check.action,
            resource: &check.resource,
            resource_account: check.resource_account.as_deref(),
            context: &context,
        };
        let eval = evaluate(&request, &set);
        if eval.decision == Decision::Allowed {
            return Ok(());
        }
        let context = match extra {
            Some(extra) => full_context(extra),
            None => context,
        };
        let layer = eval.explanation.denying_layer();
        let err = access_denied(service, &caller.arn, &check.action, &check.resource, layer);
        denials::record(
            &self.resolver.db,
            &denials::Denial {
                request_id: &ctx.request_id,
                at_micros: ctx.time.unix_timestamp_nanos() / 1000,
                account: &caller.account_id,
                principal_arn: &caller.arn,
                principal_id: &caller.principal_id,
                action: &check.action,
                resource: &check.resource,
                resource_account: check.resource_account.as_deref(),
                message: &err.message,
                context: context.iter().collect(),
                explanation: &eval.explanation,
            },
        );
        Err(IamError::Aws(err))
    }
}

impl Authorizer for IamAuthorizer {
    fn check(&self, ctx: &RequestContext, operation_service: &str, check: AuthzCheck) -> Result<(), AwsError> {
        self.decide(ctx, operation_service, check).map_err(AwsError::from)
    }
}

/// A role's resource policy is its trust policy (validated as one); other resources have
/// resource-based policies.
fn resource_policy_type(resource: &str) -> PolicyType {
    if crate::sts::parse_role_arn(resource).is_some() {
        PolicyType::Trust
    } else {
        PolicyType::Resource
    }
}

/// Root's identity: everything in its own account (resource policies still apply).
fn root_identity_policy() -> Result<&'static Policy> {
    static ROOT: OnceLock<std::result::Result<Policy, String>> = OnceLock::new();
    ROOT.get_or_init(|| {
        Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            PolicyType::Identity,
        )
        .map_err(|e| e.message)
    })
    .as_ref()
    .map_err(|e| IamError::Internal(format!("root policy: {e}")))
}

/// The engine's view of the caller.
pub fn principal_of(caller: &Caller) -> Principal {
    let kind = match &caller.kind {
        CallerKind::Root => PrincipalKind::Root,
        CallerKind::IamUser { .. } => PrincipalKind::User,
        CallerKind::AssumedRole { role_arn, .. } => PrincipalKind::AssumedRole { role_arn: role_arn.clone() },
        CallerKind::FederatedUser { .. } => PrincipalKind::FederatedUser,
    };
    Principal { arn: caller.arn.clone(), account: caller.account_id.clone(), kind }
}

fn s(v: impl Into<String>) -> ContextValue {
    ContextValue::String(v.into())
}

fn bool_value(b: bool) -> ContextValue {
    s(if b { "true" } else { "false" })
}

/// The global keys of [`request_context`] (an upper bound, to size the context once).
const GLOBAL_KEYS: usize = 20;

/// The string forms of a request's time and source IP: formatted once per second and per
/// address on each thread, since consecutive requests nearly always share them.
struct Formatted {
    second: i64,
    current_time: String,
    epoch_time: String,
    ip: Option<std::net::IpAddr>,
    source_ip: String,
}

thread_local! {
    static FORMATTED: std::cell::RefCell<Formatted> = const {
        std::cell::RefCell::new(Formatted {
            second: i64::MIN,
            current_time: String::new(),
            epoch_time: String::new(),
            ip: None,
            source_ip: String::new(),
        })
    };
}

/// `aws:CurrentTime`, `aws:EpochTime` and `aws:SourceIp` of a request.
fn time_and_ip(second: i64, ip: std::net::IpAddr) -> (String, String, String) {
    FORMATTED.with(|f| {
        let mut f = f.borrow_mut();
        if f.second != second {
            f.current_time = iso8601(second);
            f.epoch_time = second.to_string();
            f.second = second;
        }
        if f.ip != Some(ip) {
            f.source_ip = ip.to_string();
            f.ip = Some(ip);
        }
        (f.current_time.clone(), f.epoch_time.clone(), f.source_ip.clone())
    })
}

/// The global condition keys AWS puts in every signed request's context, plus the check's own
/// (`extra`, taken without copies).
pub fn request_context(ctx: &RequestContext, resolved: &Resolved, extra: Vec<(ContextKey, ContextValue)>) -> Context {
    let caller = &ctx.caller;
    let session_keys = caller.session.as_ref().map_or(0, |s| s.tags.len());
    let mut c = Context::with_capacity(GLOBAL_KEYS + resolved.tags.len() + session_keys + extra.len());
    let (principal_type, principal_arn) = match &caller.kind {
        CallerKind::Root => ("Account", caller.arn.as_str()),
        CallerKind::IamUser { user_name, .. } => {
            c.insert_static("aws:username", s(user_name.as_str()));
            ("User", caller.arn.as_str())
        }
        CallerKind::AssumedRole { role_arn, .. } => ("AssumedRole", role_arn.as_str()),
        CallerKind::FederatedUser { .. } => ("FederatedUser", caller.arn.as_str()),
    };
    let (current_time, epoch_time, source_ip) = time_and_ip(ctx.time.unix_timestamp(), ctx.source_ip);
    c.insert_static("aws:userid", s(caller.principal_id.as_str()));
    c.insert_static("aws:principalarn", s(principal_arn));
    c.insert_static("aws:principalaccount", s(caller.account_id.as_str()));
    c.insert_static("aws:principaltype", s(principal_type));
    c.insert_static("aws:currenttime", s(current_time));
    c.insert_static("aws:epochtime", s(epoch_time));
    c.insert_static("aws:sourceip", s(source_ip));
    c.insert_static("aws:securetransport", bool_value(ctx.secure_transport));
    c.insert_static("aws:useragent", s(ctx.user_agent.as_str()));
    c.insert_static("aws:requestedregion", s(ctx.region.as_str()));
    c.insert_static("aws:viaawsservice", bool_value(false));
    c.insert_static("aws:principalisawsservice", bool_value(false));
    for t in &resolved.tags {
        c.insert(&format!("aws:PrincipalTag/{}", t.key), s(t.value.as_str()));
    }
    if let Some(session) = &caller.session {
        for (k, v) in &session.tags {
            c.insert(&format!("aws:PrincipalTag/{k}"), s(v.as_str()));
        }
        if let Some(t) = session.token_issue_time {
            c.insert_static("aws:tokenissuetime", s(iso8601(t.unix_timestamp())));
        }
        c.insert_static("aws:multifactorauthpresent", bool_value(session.mfa_authenticated));
        if let Some(t) = session.mfa_auth_time {
            c.insert_static("aws:multifactorauthage", s((ctx.time - t).whole_seconds().max(0).to_string()));
        }
        if let Some(si) = &session.source_identity {
            c.insert_static("aws:sourceidentity", s(si.as_str()));
        }
    }
    for (k, v) in extra {
        c.insert_key(k, v);
    }
    c
}

/// AWS's AccessDenied, worded by the layer that denied.
pub fn access_denied(
    service: &str,
    caller_arn: &str,
    action: &str,
    resource: &str,
    layer: Option<(Layer, bool)>,
) -> AwsError {
    let reason = match layer {
        Some((layer, true)) => format!("with an explicit deny in {}", layer_phrase(layer)),
        Some((layer, false)) => format!("because no {} allows the {action} action", layer_noun(layer)),
        None => format!("because no identity-based policy allows the {action} action"),
    };
    let message = format!("User: {caller_arn} is not authorized to perform: {action} on resource: {resource} {reason}");
    match service {
        "iam" | "sts" => AwsError::access_denied(message),
        _ => AwsError::new("AccessDeniedException", message, 400),
    }
}

fn layer_noun(layer: Layer) -> &'static str {
    match layer {
        Layer::ResourceControlPolicy => "resource control policy",
        Layer::ServiceControlPolicy => "service control policy",
        Layer::ResourcePolicy => "resource-based policy",
        Layer::Identity => "identity-based policy",
        Layer::PermissionsBoundary => "permissions boundary",
        Layer::SessionPolicy => "session policy",
    }
}

fn layer_phrase(layer: Layer) -> String {
    match layer {
        Layer::ResourceControlPolicy => "a resource control policy".into(),
        Layer::ServiceControlPolicy => "a service control policy".into(),
        Layer::ResourcePolicy => "a resource-based policy".into(),
        Layer::Identity => "an identity-based policy".into(),
        Layer::PermissionsBoundary => "a permissions boundary".into(),
        Layer::SessionPolicy => "a session policy".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denial_messages() {
        let arn = "arn:aws:iam::111122223333:user/bob";
        let e = access_denied(
            "iam",
            arn,
            "iam:CreateUser",
            "arn:aws:iam::111122223333:user/x",
            Some((Layer::Identity, false)),
        );
        assert_eq!(e.code, "AccessDenied");
        assert_eq!(e.status, 403);
        assert_eq!(
            e.message,
            "User: arn:aws:iam::111122223333:user/bob is not authorized to perform: iam:CreateUser on resource: \
             arn:aws:iam::111122223333:user/x because no identity-based policy allows the iam:CreateUser action"
        );
        let e = access_denied("iam", arn, "iam:GetUser", "r", Some((Layer::Identity, true)));
        assert!(e.message.ends_with("on resource: r with an explicit deny in an identity-based policy"));
        let e = access_denied("iam", arn, "iam:GetUser", "r", Some((Layer::PermissionsBoundary, false)));
        assert!(e.message.ends_with("because no permissions boundary allows the iam:GetUser action"));
        let e = access_denied("kms", arn, "kms:Decrypt", "r", Some((Layer::ResourcePolicy, false)));
        assert_eq!(e.code, "AccessDeniedException");
        assert!(e.message.ends_with("because no resource-based policy allows the kms:Decrypt action"));
    }
}
