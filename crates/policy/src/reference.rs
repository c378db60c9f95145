//! The reference evaluator: the executable specification.
//!
//! It reads the parsed documents directly (no compilation, no index, no fast paths) and follows the
//! IAM User Guide's "Policy evaluation logic", "Cross-account policy evaluation logic", "Permissions
//! boundaries" and "Session policies" pages step by step. It is deliberately simple and slow; property
//! tests check that [`crate::evaluate`] always agrees with it.

use std::net::IpAddr;

use crate::ast::{Condition, Document, Effect, Operator, PrincipalSpec, PrincipalType, SetQualifier, Statement};
use crate::condition::{decode_binary, eq_ignore_case, parse_date, parse_ip, parse_net, parse_number};
use crate::evaluator::{finish, Outcome, Outcomes};
use crate::explain::{Explanation, MatchedStatement};
use crate::principal::Grant;
use crate::variables::{self, Piece};
use crate::{Context, ContextValue, Evaluation, Layer, NamedPolicy, PolicySet, Principal, PrincipalKind, Request};

/// A pattern character: a literal, `*` or `?`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tok {
    Char(char),
    Star,
    One,
}

/// The pattern of `value` after policy-variable substitution; `None` if a variable cannot be resolved.
fn pattern(value: &str, doc: &Document, ctx: &Context, wildcards: bool) -> Option<Vec<Tok>> {
    let text = |s: &str, out: &mut Vec<Tok>| {
        for c in s.chars() {
            out.push(match c {
                '*' if wildcards => Tok::Star,
                '?' if wildcards => Tok::One,
                c => Tok::Char(c),
            });
        }
    };
    let mut out = Vec::new();
    match variables::parse(value, doc.version) {
        None => text(value, &mut out),
        Some(pieces) => {
            for p in pieces {
                match p {
                    Piece::Text(t) => text(&t, &mut out),
                    Piece::Literal(c) => out.push(Tok::Char(c)),
                    Piece::Var { key, default } => {
                        let v = match ctx.get(&key) {
                            Some(ContextValue::String(s)) => s.clone(),
                            _ => default?,
                        };
                        out.extend(v.chars().map(Tok::Char));
                    }
                }
            }
        }
    }
    Some(out)
}

/// Wildcard match by recursion over characters (memoised), optionally ASCII-case-insensitive.
fn wild(p: &[Tok], t: &[char], ci: bool) -> bool {
    let mut memo = vec![None; (p.len() + 1) * (t.len() + 1)];
    fn go(p: &[Tok], t: &[char], i: usize, j: usize, ci: bool, memo: &mut Vec<Option<bool>>) -> bool {
        let k = i * (t.len() + 1) + j;
        if let Some(&Some(r)) = memo.get(k) {
            return r;
        }
        let r = match p.get(i) {
            None => j == t.len(),
            Some(Tok::Star) => go(p, t, i + 1, j, ci, memo) || (j < t.len() && go(p, t, i, j + 1, ci, memo)),
            Some(Tok::One) => j < t.len() && go(p, t, i + 1, j + 1, ci, memo),
            Some(Tok::Char(c)) => {
                t.get(j).is_some_and(|tc| if ci { c.eq_ignore_ascii_case(tc) } else { c == tc })
                    && go(p, t, i + 1, j + 1, ci, memo)
            }
        };
        if let Some(slot) = memo.get_mut(k) {
            *slot = Some(r);
        }
        r
    }
    go(p, t, 0, 0, ci, &mut memo)
}

fn wild_str(p: &[Tok], text: &str, ci: bool) -> bool {
    let t: Vec<char> = text.chars().collect();
    wild(p, &t, ci)
}

/// Action element: action names are case-insensitive; `*` and `?` are wildcards.
fn action_applies(s: &Statement, action: &str) -> bool {
    let Some(list) = &s.action else { return false };
    let hit = list.values.iter().any(|a| {
        let toks: Vec<Tok> = a
            .chars()
            .map(|c| match c {
                '*' => Tok::Star,
                '?' => Tok::One,
                c => Tok::Char(c),
            })
            .collect();
        wild_str(&toks, action, true)
    });
    hit != list.negated
}

/// Resource element: case-sensitive, wildcards, policy variables (2012-10-17). No Resource element
/// (trust policies) means the statement is about the resource the policy is attached to.
fn resource_applies(s: &Statement, doc: &Document, resource: &str, ctx: &Context) -> bool {
    let Some(list) = &s.resource else { return true };
    let hit = list.values.iter().any(|r| pattern(r, doc, ctx, true).is_some_and(|p| wild_str(&p, resource, false)));
    hit != list.negated
}

/// The identities a request comes from: (kind of grant if named, the identity string).
fn identities(p: &Principal) -> Vec<(Grant, String)> {
    let account = |a: &str| (Grant::Account, a.to_string());
    match &p.kind {
        PrincipalKind::Root => vec![(Grant::Principal, p.account.clone())],
        PrincipalKind::User | PrincipalKind::FederatedUser => {
            vec![account(&p.account), (Grant::Principal, p.arn.clone())]
        }
        PrincipalKind::AssumedRole { role_arn } if *role_arn == p.arn => {
            vec![account(&p.account), (Grant::Role, role_arn.clone())]
        }
        PrincipalKind::AssumedRole { role_arn } => {
            vec![account(&p.account), (Grant::Role, role_arn.clone()), (Grant::Principal, p.arn.clone())]
        }
        PrincipalKind::Service | PrincipalKind::Anonymous => vec![],
    }
}

/// Whether a Principal-element value names an identity.
fn names(ty: PrincipalType, value: &str, identity: &str, p: &Principal) -> bool {
    match ty {
        PrincipalType::Aws => {
            if value == identity {
                return true;
            }
            // An account may be written as its root ARN.
            let root = format!(":iam::{identity}:root");
            identity.len() == 12
                && value.starts_with("arn:")
                && value.ends_with(&root)
                && value.matches(':').count() == 5
        }
        PrincipalType::Service => false,
        PrincipalType::Federated | PrincipalType::CanonicalUser => value == p.arn && identity == p.arn,
    }
}

/// Principal / NotPrincipal: `Some(grant)` when the statement applies to `p`.
fn principal_applies(spec: &PrincipalSpec, p: &Principal) -> Option<Grant> {
    let is_service = p.kind == PrincipalKind::Service;
    let everyone = spec.wildcard
        || spec.entries.iter().any(|(t, vs)| *t == PrincipalType::Service && vs.iter().any(|v| v == "*"))
        || (!is_service && spec.entries.iter().any(|(t, vs)| *t == PrincipalType::Aws && vs.iter().any(|v| v == "*")));
    let service_named = is_service
        && spec
            .entries
            .iter()
            .any(|(t, vs)| *t == PrincipalType::Service && vs.iter().any(|v| v.eq_ignore_ascii_case(&p.arn)));
    let ids = identities(p);
    let named: Vec<bool> =
        ids.iter().map(|(_, id)| spec.entries.iter().any(|(t, vs)| vs.iter().any(|v| names(*t, v, id, p)))).collect();
    if spec.negated {
        // Excluded only when every identity of the request is listed.
        let all_listed = everyone || service_named || (!ids.is_empty() && named.iter().all(|n| *n));
        return (!all_listed).then_some(Grant::Principal);
    }
    if everyone || service_named {
        return Some(Grant::Principal);
    }
    ids.iter().zip(&named).filter(|(_, n)| **n).map(|((g, _), _)| *g).max()
}

/// The context values of a key: `None` when absent or an empty list.
fn values_of<'c>(ctx: &'c Context, key: &str) -> Option<Vec<&'c str>> {
    match ctx.get(key)? {
        ContextValue::String(s) => Some(vec![s.as_str()]),
        ContextValue::List(l) if l.is_empty() => None,
        ContextValue::List(l) => Some(l.iter().map(String::as_str).collect()),
    }
}

/// Does context value `v` match policy value `pv` under the positive form of `op`?
fn positive(op: Operator, v: &str, pv: &str, doc: &Document, ctx: &Context) -> bool {
    use Operator as O;
    let ord = |a: Option<f64>, b: Option<f64>| a.zip(b).and_then(|(a, b)| a.partial_cmp(&b));
    let dord = |a: Option<i128>, b: Option<i128>| a.zip(b).map(|(a, b)| a.cmp(&b));
    use std::cmp::Ordering::*;
    match op {
        O::StringEquals | O::StringNotEquals => pattern(pv, doc, ctx, false).is_some_and(|p| wild_str(&p, v, false)),
        O::StringEqualsIgnoreCase | O::StringNotEqualsIgnoreCase => pattern(pv, doc, ctx, false).is_some_and(|p| {
            let s: String = p.iter().filter_map(|t| if let Tok::Char(c) = t { Some(*c) } else { None }).collect();
            eq_ignore_case(&s, v)
        }),
        O::StringLike | O::StringNotLike => pattern(pv, doc, ctx, true).is_some_and(|p| wild_str(&p, v, false)),
        O::ArnEquals | O::ArnLike | O::ArnNotEquals | O::ArnNotLike => pattern(pv, doc, ctx, true).is_some_and(|p| {
            // Six colon-separated parts, each matched on its own; the last keeps further colons.
            let pparts: Vec<&[Tok]> = p.splitn(6, |t| *t == Tok::Char(':')).collect();
            let vparts: Vec<&str> = v.splitn(6, ':').collect();
            pparts.len() == 6 && vparts.len() == 6 && pparts.iter().zip(&vparts).all(|(p, v)| wild_str(p, v, false))
        }),
        O::NumericEquals | O::NumericNotEquals => ord(parse_number(v), parse_number(pv)) == Some(Equal),
        O::NumericLessThan => ord(parse_number(v), parse_number(pv)) == Some(Less),
        O::NumericLessThanEquals => matches!(ord(parse_number(v), parse_number(pv)), Some(Less | Equal)),
        O::NumericGreaterThan => ord(parse_number(v), parse_number(pv)) == Some(Greater),
        O::NumericGreaterThanEquals => matches!(ord(parse_number(v), parse_number(pv)), Some(Greater | Equal)),
        O::DateEquals | O::DateNotEquals => dord(parse_date(v), parse_date(pv)) == Some(Equal),
        O::DateLessThan => dord(parse_date(v), parse_date(pv)) == Some(Less),
        O::DateLessThanEquals => matches!(dord(parse_date(v), parse_date(pv)), Some(Less | Equal)),
        O::DateGreaterThan => dord(parse_date(v), parse_date(pv)) == Some(Greater),
        O::DateGreaterThanEquals => matches!(dord(parse_date(v), parse_date(pv)), Some(Greater | Equal)),
        O::Bool => v.eq_ignore_ascii_case(pv),
        O::BinaryEquals => matches!((decode_binary(v), decode_binary(pv)), (Some(a), Some(b)) if a == b),
        O::IpAddress | O::NotIpAddress => {
            let ip: Option<IpAddr> = parse_ip(v);
            matches!((ip, parse_net(pv)), (Some(ip), Some(net)) if net.contains(&ip))
        }
        O::Null => false,
    }
}

/// One condition (operator, key, values), per the "Condition operators" and multivalued-key rules.
fn condition_holds(c: &Condition, doc: &Document, ctx: &Context) -> bool {
    let op = c.operator;
    let values = values_of(ctx, &c.key);
    if op.base == Operator::Null {
        let is_null = values.is_none();
        return c.values.iter().any(|v| v.eq_ignore_ascii_case(if is_null { "true" } else { "false" }));
    }
    let negated = op.base.is_negated();
    // The value matches the policy's values: any of them (the negated form: none of them).
    let matches = |v: &str| c.values.iter().any(|pv| positive(op.base, v, pv, doc, ctx)) != negated;
    let Some(values) = values else {
        return match op.set {
            SetQualifier::ForAllValues => true,
            SetQualifier::ForAnyValue => op.if_exists,
            SetQualifier::None => op.if_exists || negated,
        };
    };
    match op.set {
        SetQualifier::ForAllValues => values.iter().all(|v| matches(v)),
        SetQualifier::ForAnyValue => values.iter().any(|v| matches(v)),
        SetQualifier::None => {
            let any_positive = values.iter().any(|v| c.values.iter().any(|pv| positive(op.base, v, pv, doc, ctx)));
            any_positive != negated
        }
    }
}

struct Walk<'r> {
    req: &'r Request<'r>,
    out: Explanation,
}

impl Walk<'_> {
    /// Which statements of one policy apply, and what the policy says.
    fn policy(
        &mut self,
        layer: Layer,
        level: Option<usize>,
        np: &NamedPolicy<'_>,
        principals: bool,
        quirk: bool,
    ) -> Outcome {
        let doc = np.policy.document();
        let req = self.req;
        let mut o = Outcome::default();
        for s in &doc.statements {
            if !action_applies(s, req.action) || !resource_applies(s, doc, req.resource, req.context) {
                continue;
            }
            let mut grant = None;
            if principals {
                let Some(spec) = &s.principal else { continue };
                grant = if quirk && spec.negated && s.effect == Effect::Deny {
                    Some(Grant::Principal)
                } else {
                    principal_applies(spec, req.principal)
                };
                if grant.is_none() {
                    continue;
                }
            }
            for c in &s.conditions {
                if req.context.get(&c.key).is_none()
                    && !self.out.missing_context_keys.iter().any(|k| k.eq_ignore_ascii_case(&c.key))
                {
                    self.out.missing_context_keys.push(c.key.clone());
                }
            }
            if !s.conditions.iter().all(|c| condition_holds(c, doc, req.context)) {
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
                sid: s.sid.as_deref().map(Into::into),
                index: s.index,
                effect: s.effect,
                start: s.start,
                end: s.end,
                decisive: false,
            });
        }
        o
    }

    fn list(&mut self, layer: Layer, level: Option<usize>, list: &[NamedPolicy<'_>], principals: bool) -> Outcome {
        let mut o = Outcome::default();
        for np in list {
            let p = self.policy(layer, level, np, principals, false);
            o.allow |= p.allow;
            o.deny |= p.deny;
            o.grant = o.grant.max(p.grant);
        }
        o
    }
}

/// Evaluate `req` against `set`, step by step.
pub fn evaluate(req: &Request<'_>, set: &PolicySet<'_>) -> Evaluation {
    let mut w = Walk { req, out: Explanation::default() };
    let iam_principal = matches!(req.principal.kind, PrincipalKind::User | PrincipalKind::AssumedRole { .. });
    let o = Outcomes {
        rcp: set.resource_control_policies.as_ref().map(|levels| {
            levels.iter().enumerate().map(|(i, l)| w.list(Layer::ResourceControlPolicy, Some(i), l, true)).collect()
        }),
        scp: set.service_control_policies.as_ref().map(|levels| {
            levels.iter().enumerate().map(|(i, l)| w.list(Layer::ServiceControlPolicy, Some(i), l, false)).collect()
        }),
        resource: set.resource_policy.as_ref().map(|np| {
            w.policy(Layer::ResourcePolicy, None, np, true, iam_principal && set.permissions_boundaries.is_some())
        }),
        identity: w.list(Layer::Identity, None, &set.identity, false),
        boundary: set.permissions_boundaries.as_ref().map(|l| w.list(Layer::PermissionsBoundary, None, l, false)),
        session: set.session_policies.as_ref().map(|l| w.list(Layer::SessionPolicy, None, l, false)),
    };
    let denied_by = steps(req, set, &o);
    let mut out = w.out;
    finish(&mut out, &o, denied_by);
    let decision = out.decision();
    Evaluation { decision, explanation: out }
}

/// The flowchart. `None` = allow.
fn steps(req: &Request<'_>, set: &PolicySet<'_>, o: &Outcomes) -> Option<(Layer, bool)> {
    // 1. Deny evaluation: an explicit deny in any applicable policy is final.
    if let Some(levels) = &o.rcp {
        if levels.iter().any(|l| l.deny) {
            return Some((Layer::ResourceControlPolicy, true));
        }
    }
    if let Some(levels) = &o.scp {
        if levels.iter().any(|l| l.deny) {
            return Some((Layer::ServiceControlPolicy, true));
        }
    }
    if o.resource.is_some_and(|r| r.deny) {
        return Some((Layer::ResourcePolicy, true));
    }
    if o.identity.deny {
        return Some((Layer::Identity, true));
    }
    if o.boundary.is_some_and(|b| b.deny) {
        return Some((Layer::PermissionsBoundary, true));
    }
    if o.session.is_some_and(|s| s.deny) {
        return Some((Layer::SessionPolicy, true));
    }
    // 2. RCPs: each level from the root to the resource's account must allow.
    if let Some(levels) = &o.rcp {
        for l in levels {
            if !l.allow {
                return Some((Layer::ResourceControlPolicy, false));
            }
        }
    }
    // 3. SCPs: each level from the root to the principal's account must allow.
    if let Some(levels) = &o.scp {
        for l in levels {
            if !l.allow {
                return Some((Layer::ServiceControlPolicy, false));
            }
        }
    }
    let p = req.principal;
    let rp_allows = o.resource.is_some_and(|r| r.allow);
    let rp_grant = o.resource.and_then(|r| if r.allow { r.grant } else { None });
    // Services and anonymous callers: only the resource-based policy can grant.
    if matches!(p.kind, PrincipalKind::Service | PrincipalKind::Anonymous) {
        return if rp_allows { None } else { Some((Layer::ResourcePolicy, false)) };
    }
    let identity_allows = o.identity.allow || p.kind == PrincipalKind::Root;
    let boundary_allows = o.boundary.is_none_or(|b| b.allow);
    let session_allows = o.session.is_none_or(|s| s.allow);
    let cross_account = req.resource_account.is_some_and(|a| a != p.account);
    // 4. Cross-account: the resource's policy must allow the principal (or its account) AND the
    //    principal's own account must allow it (identity, boundary, session).
    if cross_account {
        if !rp_allows {
            return Some((Layer::ResourcePolicy, false));
        }
        if !identity_allows {
            return Some((Layer::Identity, false));
        }
        if !boundary_allows {
            return Some((Layer::PermissionsBoundary, false));
        }
        if !session_allows {
            return Some((Layer::SessionPolicy, false));
        }
        return None;
    }
    // 5. Same account. KMS key policies and role trust policies must allow explicitly.
    if set.resource_policy_required && !rp_allows {
        return Some((Layer::ResourcePolicy, false));
    }
    // 5a. A resource-based policy that names the principal itself (the IAM user ARN, the role-session
    //     ARN, the federated-user ARN, or "*") grants on its own: an implicit deny in identity
    //     policies, the boundary or a session policy does not limit it.
    if rp_grant == Some(Grant::Principal) {
        return None;
    }
    // 5b. One that names the role ARN is limited by the session's boundary and session policies.
    if rp_grant == Some(Grant::Role) {
        if !boundary_allows {
            return Some((Layer::PermissionsBoundary, false));
        }
        if !session_allows {
            return Some((Layer::SessionPolicy, false));
        }
        return None;
    }
    // 5c. Otherwise (no resource policy, or one that names only the account): identity-based
    //     policies must allow, within the boundary and the session policies.
    if !identity_allows {
        return Some((Layer::Identity, false));
    }
    if !boundary_allows {
        return Some((Layer::PermissionsBoundary, false));
    }
    if !session_allows {
        return Some((Layer::SessionPolicy, false));
    }
    None
}
