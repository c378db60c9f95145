//! The fast evaluator: compiled policies, indexed candidates, no allocation unless a statement applies
//! (explanations) or a policy variable must be substituted.
//!
//! Every layer is evaluated (all explicit denies must be found); then the decision follows the IAM User
//! Guide's "Policy evaluation logic" — see [`decide`].

use crate::ast::Effect;
use crate::explain::{Explanation, LayerDecision, LayerResult, MatchedStatement};
use crate::principal::Grant;
use crate::{Decision, Evaluation, Layer, NamedPolicy, PolicySet, PrincipalKind, Request};

/// What one layer (or one SCP/RCP level) said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub allow: bool,
    pub deny: bool,
    /// For resource policies: the strongest grant among the applying Allow statements.
    pub grant: Option<Grant>,
}

impl Outcome {
    fn merge(&mut self, o: Outcome) {
        self.allow |= o.allow;
        self.deny |= o.deny;
        self.grant = self.grant.max(o.grant);
    }

    pub fn layer_decision(&self) -> LayerDecision {
        if self.deny {
            LayerDecision::ExplicitDeny
        } else if self.allow {
            LayerDecision::Allowed
        } else {
            LayerDecision::ImplicitDeny
        }
    }
}

/// The per-layer outcomes of a request, the input to [`decide`].
#[derive(Clone, Debug, Default)]
pub struct Outcomes {
    pub rcp: Option<Vec<Outcome>>,
    pub scp: Option<Vec<Outcome>>,
    pub resource: Option<Outcome>,
    pub identity: Outcome,
    pub boundary: Option<Outcome>,
    pub session: Option<Outcome>,
}

struct Eval<'r> {
    req: &'r Request<'r>,
    service: &'r str,
    name: &'r str,
    out: Explanation,
}

impl Eval<'_> {
    /// Evaluate one policy. `principals`: check Principal/NotPrincipal (resource policies, RCPs).
    /// `boundary_quirk`: a resource-policy Deny with NotPrincipal applies to any IAM principal that has a
    /// permissions boundary, whatever NotPrincipal lists (documented AWS behaviour).
    fn policy(
        &mut self,
        layer: Layer,
        level: Option<usize>,
        np: &NamedPolicy<'_>,
        principals: bool,
        boundary_quirk: bool,
    ) -> Outcome {
        let mut o = Outcome::default();
        let req = self.req;
        for s in np.policy.compiled().candidates(self.service) {
            if !s.action_matches(self.service, self.name, req.action) || !s.resource_matches(req.resource, req.context)
            {
                continue;
            }
            let mut grant = None;
            if principals {
                match &s.principal {
                    Some(m) => {
                        let quirk = boundary_quirk && m.negated && s.effect == Effect::Deny;
                        grant = if quirk { Some(Grant::Principal) } else { m.applies(req.principal) };
                        if grant.is_none() {
                            continue;
                        }
                    }
                    None => continue,
                }
            }
            // Evaluate every condition (no short-circuit) so missing keys are all reported.
            let mut ok = true;
            for c in &s.conditions {
                let mut missing = false;
                ok &= c.eval(req.context, &mut missing);
                if missing && !self.out.missing_context_keys.iter().any(|k| k.eq_ignore_ascii_case(&c.key)) {
                    self.out.missing_context_keys.push(c.key.to_string());
                }
            }
            if !ok {
                continue;
            }
            match s.effect {
                Effect::Allow => {
                    o.allow = true;
                    o.grant = o.grant.max(grant);
                }
                Effect::Deny => o.deny = true,
            }
            self.out.statements.push(MatchedStatement {
                layer,
                level,
                policy: np.name.to_string(),
                sid: s.sid.clone(),
                index: s.index,
                effect: s.effect,
                start: s.start,
                end: s.end,
                decisive: false,
            });
        }
        o
    }

    fn policies(&mut self, layer: Layer, level: Option<usize>, list: &[NamedPolicy<'_>], principals: bool) -> Outcome {
        let mut o = Outcome::default();
        for np in list {
            o.merge(self.policy(layer, level, np, principals, false));
        }
        o
    }

    fn levels(&mut self, layer: Layer, levels: &[Vec<NamedPolicy<'_>>], principals: bool) -> Vec<Outcome> {
        levels.iter().enumerate().map(|(i, l)| self.policies(layer, Some(i), l, principals)).collect()
    }
}

/// Evaluate with the compiled policies.
pub fn evaluate(req: &Request<'_>, set: &PolicySet<'_>) -> Evaluation {
    let (service, name) = req.action.split_once(':').unwrap_or((req.action, ""));
    let mut e =
        Eval { req, service, name, out: Explanation { statements: Vec::with_capacity(8), ..Explanation::default() } };
    let is_iam_principal = matches!(req.principal.kind, PrincipalKind::User | PrincipalKind::AssumedRole { .. });
    let quirk = is_iam_principal && set.permissions_boundaries.is_some();
    let outcomes = Outcomes {
        rcp: set.resource_control_policies.as_ref().map(|l| e.levels(Layer::ResourceControlPolicy, l, true)),
        scp: set.service_control_policies.as_ref().map(|l| e.levels(Layer::ServiceControlPolicy, l, false)),
        resource: set.resource_policy.as_ref().map(|np| e.policy(Layer::ResourcePolicy, None, np, true, quirk)),
        identity: e.policies(Layer::Identity, None, &set.identity, false),
        boundary: set.permissions_boundaries.as_ref().map(|l| e.policies(Layer::PermissionsBoundary, None, l, false)),
        session: set.session_policies.as_ref().map(|l| e.policies(Layer::SessionPolicy, None, l, false)),
    };
    let mut out = e.out;
    let denied_by = decide(req, set, &outcomes);
    finish(&mut out, &outcomes, denied_by);
    let decision = out.decision();
    Evaluation { decision, explanation: out }
}

/// Fill in the layer verdicts and mark decisive statements.
pub fn finish(out: &mut Explanation, o: &Outcomes, denied_by: Option<(Layer, bool)>) {
    out.denied_by = denied_by;
    out.resource_policy_grant = o.resource.and_then(|r| r.grant);
    let mut layers = Vec::with_capacity(6);
    for (layer, levels) in [(Layer::ResourceControlPolicy, &o.rcp), (Layer::ServiceControlPolicy, &o.scp)] {
        if let Some(levels) = levels {
            for (i, l) in levels.iter().enumerate() {
                layers.push(LayerResult { layer, level: Some(i), decision: l.layer_decision() });
            }
        }
    }
    if let Some(r) = o.resource {
        layers.push(LayerResult { layer: Layer::ResourcePolicy, level: None, decision: r.layer_decision() });
    }
    layers.push(LayerResult { layer: Layer::Identity, level: None, decision: o.identity.layer_decision() });
    if let Some(b) = o.boundary {
        layers.push(LayerResult { layer: Layer::PermissionsBoundary, level: None, decision: b.layer_decision() });
    }
    if let Some(s) = o.session {
        layers.push(LayerResult { layer: Layer::SessionPolicy, level: None, decision: s.layer_decision() });
    }
    out.layers = layers;
    let decisive = match denied_by {
        None => Some(Effect::Allow),
        Some((_, true)) => Some(Effect::Deny),
        Some((_, false)) => None,
    };
    for s in &mut out.statements {
        s.decisive = Some(s.effect) == decisive;
    }
}

/// The decision from the layers' outcomes: `None` = allowed, `Some((layer, explicit))` = denied.
///
/// 1. An explicit Deny in any layer denies (reported in the order RCP, SCP, resource, identity,
///    boundary, session).
/// 2. RCPs, then SCPs: every level of the OU path must allow.
/// 3. Services and anonymous callers have no identity policies: the resource policy decides.
/// 4. Cross-account: the resource policy must allow (any grant, account delegation included) and the
///    principal's identity policies, boundary and session policies must allow.
/// 5. Same account: if the resource policy must allow (KMS key policies, role trust policies) and does
///    not, deny. A resource-policy Allow naming the principal itself (IAM user ARN, role-session ARN,
///    federated-user ARN, `*`) suffices alone; one naming the role ARN still needs the boundary and the
///    session policies; one naming only the account delegates to identity policies. Otherwise the
///    identity policies must allow, then the boundary, then the session policies.
pub fn decide(req: &Request<'_>, set: &PolicySet<'_>, o: &Outcomes) -> Option<(Layer, bool)> {
    let explicit = [
        (Layer::ResourceControlPolicy, o.rcp.as_ref().is_some_and(|l| l.iter().any(|x| x.deny))),
        (Layer::ServiceControlPolicy, o.scp.as_ref().is_some_and(|l| l.iter().any(|x| x.deny))),
        (Layer::ResourcePolicy, o.resource.is_some_and(|x| x.deny)),
        (Layer::Identity, o.identity.deny),
        (Layer::PermissionsBoundary, o.boundary.is_some_and(|x| x.deny)),
        (Layer::SessionPolicy, o.session.is_some_and(|x| x.deny)),
    ];
    if let Some((layer, _)) = explicit.iter().find(|(_, d)| *d) {
        return Some((*layer, true));
    }
    if o.rcp.as_ref().is_some_and(|l| l.iter().any(|x| !x.allow)) {
        return Some((Layer::ResourceControlPolicy, false));
    }
    if o.scp.as_ref().is_some_and(|l| l.iter().any(|x| !x.allow)) {
        return Some((Layer::ServiceControlPolicy, false));
    }
    let kind = &req.principal.kind;
    let grant = o.resource.and_then(|r| r.grant.filter(|_| r.allow));
    if matches!(kind, PrincipalKind::Service | PrincipalKind::Anonymous) {
        return if grant.is_some() { None } else { Some((Layer::ResourcePolicy, false)) };
    }
    // The root user has full access in its own account; its identity side always allows.
    let identity_allows = o.identity.allow || matches!(kind, PrincipalKind::Root);
    let boundary_allows = o.boundary.is_none_or(|b| b.allow);
    let session_allows = o.session.is_none_or(|s| s.allow);
    let identity_chain = || {
        if !identity_allows {
            Some((Layer::Identity, false))
        } else if !boundary_allows {
            Some((Layer::PermissionsBoundary, false))
        } else if !session_allows {
            Some((Layer::SessionPolicy, false))
        } else {
            None
        }
    };
    let same_account = req.resource_account.is_none_or(|a| a == req.principal.account);
    if !same_account || (set.resource_policy_required && grant.is_none()) {
        if grant.is_none() {
            return Some((Layer::ResourcePolicy, false));
        }
        if !same_account {
            return identity_chain();
        }
    }
    match grant {
        Some(Grant::Principal) => None,
        Some(Grant::Role) => {
            if !boundary_allows {
                Some((Layer::PermissionsBoundary, false))
            } else if !session_allows {
                Some((Layer::SessionPolicy, false))
            } else {
                None
            }
        }
        Some(Grant::Account) | None => identity_chain(),
    }
}

/// Convenience for callers that only need the decision.
pub fn decision_of(req: &Request<'_>, set: &PolicySet<'_>) -> Decision {
    evaluate(req, set).decision
}
