//! Explanations of denied requests, kept per account so the account's administrators can ask why a
//! request was denied: `aws sts decode-authorization-message --encoded-message REQUEST_ID`.
//!
//! Each denial stores the decoded-message JSON AWS's `DecodeAuthorizationMessage` returns
//! (`allowed`, `explicitDeny`, `matchedStatements`, `failures`, `context`), plus a `rampart` member
//! with the denying policy type, every layer's verdict, the evaluated statements and the missing
//! context keys. The store keeps the latest [`MAX_PER_ACCOUNT`] denials of each account.
//!
//! The caller's account reads them, so a statement of a policy it does not own — an SCP or RCP
//! (the organization's), another account's resource policy — shows only its effect and policy
//! type: never the policy's name, statement ID, position or organization level.

use std::sync::atomic::{AtomicU64, Ordering};

use rampart_policy::{ContextValue, Explanation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::db::{Db, Lookup};
use crate::error::Result;

/// `{account}/{request id}` → [`DenialRec`].
pub const DENIALS: &str = "iam_denials";
/// `{account}/{epoch micros:020}/{request id}` → `""`: oldest first, for pruning.
pub const DENIAL_ORDER: &str = "iam_denial_order";
/// Denials kept per account.
pub const MAX_PER_ACCOUNT: usize = 1000;
/// Prune every this many recorded denials (counting is a scan).
const PRUNE_EVERY: u64 = 32;

static RECORDED: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DenialRec {
    pub at: i64,
    /// The decoded message (JSON text).
    pub decoded: String,
}

/// What the authorizer knows about one denied check.
pub struct Denial<'a> {
    pub request_id: &'a str,
    pub at_micros: i128,
    pub account: &'a str,
    pub principal_arn: &'a str,
    pub principal_id: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    /// The resource's account when it is not `account` (a cross-account resource policy).
    pub resource_account: Option<&'a str>,
    pub message: &'a str,
    pub context: Vec<(&'a str, &'a ContextValue)>,
    pub explanation: &'a Explanation,
}

fn layer_name(layer: rampart_policy::Layer) -> &'static str {
    use rampart_policy::Layer;
    match layer {
        Layer::ResourceControlPolicy => "resource control policy",
        Layer::ServiceControlPolicy => "service control policy",
        Layer::ResourcePolicy => "resource-based policy",
        Layer::Identity => "identity-based policy",
        Layer::PermissionsBoundary => "permissions boundary",
        Layer::SessionPolicy => "session policy",
    }
}

/// Whether the denied caller's account owns the policies of `layer`: its own identity policies,
/// boundary and session policies, and resource policies of its own resources; not the
/// organization's SCPs and RCPs, nor another account's resource policy.
fn own_layer(d: &Denial<'_>, layer: rampart_policy::Layer) -> bool {
    use rampart_policy::Layer;
    match layer {
        Layer::Identity | Layer::PermissionsBoundary | Layer::SessionPolicy => true,
        Layer::ResourcePolicy => d.resource_account.is_none_or(|a| a == d.account),
        Layer::ServiceControlPolicy | Layer::ResourceControlPolicy => false,
    }
}

/// A statement as the explanation shows it: whole when the caller's account owns its policy, else
/// its layer, effect and whether it decided only.
fn statement_json(d: &Denial<'_>, m: &rampart_policy::MatchedStatement) -> Value {
    if own_layer(d, m.layer) {
        serde_json::to_value(m).unwrap_or(Value::Null)
    } else {
        json!({ "layer": m.layer, "effect": m.effect, "decisive": m.decisive })
    }
}

/// The explanation as the caller's account may read it (see the module docs).
fn explanation_json(d: &Denial<'_>) -> Value {
    let e = d.explanation;
    let decisive: Vec<String> = e
        .matched_statements()
        .map(|m| match (&m.sid, own_layer(d, m.layer)) {
            (_, false) => format!("a statement in a {}", layer_name(m.layer)),
            (Some(sid), true) => format!("{} ({sid})", m.policy),
            (None, true) => format!("{} (statement {})", m.policy, m.index),
        })
        .collect();
    let summary = match e.denying_layer() {
        None => format!("Allowed by {}.", decisive.join(", ")),
        Some((layer, true)) => format!("Explicitly denied by {} in the {}.", decisive.join(", "), layer.noun()),
        Some((layer, false)) => format!("Implicitly denied: no {} allows the request.", layer.noun()),
    };
    let layers: Vec<Value> = e
        .layers
        .iter()
        .map(|l| {
            if own_layer(d, l.layer) {
                serde_json::to_value(l).unwrap_or(Value::Null)
            } else {
                json!({ "layer": l.layer, "decision": l.decision })
            }
        })
        .collect();
    json!({
        "summary": summary,
        "denyingLayer": e.denying_layer().map(|(l, _)| l),
        "explicitDeny": e.denying_layer().is_some_and(|(_, x)| x),
        "statements": e.statements.iter().map(|m| statement_json(d, m)).collect::<Vec<_>>(),
        "layers": layers,
        "missingContextKeys": e.missing_context_keys(),
        "resourcePolicyGrant": e.resource_policy_grant,
    })
}

/// The decoded-message JSON for a denial.
pub fn decoded(d: &Denial<'_>) -> Value {
    let explicit = d.explanation.denying_layer().is_some_and(|(_, e)| e);
    let matched: Vec<Value> = d
        .explanation
        .matched_statements()
        .map(|m| {
            let effect = format!("{:?}", m.effect).to_uppercase();
            if own_layer(d, m.layer) {
                json!({
                    "statementId": m.sid.as_deref().unwrap_or(""),
                    "effect": effect,
                    "policy": m.policy,
                    "policyType": layer_name(m.layer),
                    "index": m.index,
                })
            } else {
                json!({ "effect": effect, "policyType": layer_name(m.layer) })
            }
        })
        .collect();
    let mut conditions: Vec<(&str, &ContextValue)> = d.context.clone();
    conditions.sort_by(|a, b| a.0.cmp(b.0));
    let conditions: Vec<Value> = conditions
        .into_iter()
        .map(|(k, v)| {
            let values: Vec<Value> = match v {
                ContextValue::String(s) => vec![json!({ "value": s })],
                ContextValue::List(l) => l.iter().map(|s| json!({ "value": s })).collect(),
            };
            json!({ "key": k, "values": { "items": values } })
        })
        .collect();
    json!({
        "allowed": false,
        "explicitDeny": explicit,
        "matchedStatements": { "items": matched },
        "failures": { "items": [] },
        "context": {
            "principal": { "id": d.principal_id, "arn": d.principal_arn },
            "action": d.action,
            "resource": d.resource,
            "conditions": { "items": conditions },
        },
        "rampart": {
            "requestId": d.request_id,
            "message": d.message,
            "denyingPolicyType": d.explanation.denying_layer().map(|(l, _)| layer_name(l)),
            "explanation": explanation_json(d),
        },
    })
}

/// Keep a denial's explanation (best effort: a failure is logged, the request is denied anyway).
pub fn record(db: &Db, d: &Denial<'_>) {
    if let Err(e) = record_inner(db, d) {
        tracing::warn!(error = %e, "could not record a denial explanation");
    }
}

fn record_inner(db: &Db, d: &Denial<'_>) -> Result<()> {
    let rec = DenialRec { at: (d.at_micros / 1_000_000) as i64, decoded: decoded(d).to_string() };
    let prune = RECORDED.fetch_add(1, Ordering::Relaxed).is_multiple_of(PRUNE_EVERY);
    let account = d.account;
    db.write_untracked(|tx| {
        tx.put(DENIALS, &format!("{account}/{}", d.request_id), &rec)?;
        tx.put(DENIAL_ORDER, &format!("{account}/{:020}/{}", d.at_micros.max(0), d.request_id), &"")?;
        if prune {
            let prefix = format!("{account}/");
            let keys = tx.keys(DENIAL_ORDER, &prefix, 0)?;
            if keys.len() > MAX_PER_ACCOUNT {
                for k in keys.iter().take(keys.len() - MAX_PER_ACCOUNT) {
                    tx.delete(DENIAL_ORDER, k)?;
                    if let Some(rid) = k.rsplit('/').next() {
                        tx.delete(DENIALS, &format!("{account}/{rid}"))?;
                    }
                }
            }
        }
        Ok(())
    })
}

/// The decoded message of a denial in `account`, by request ID.
pub fn decoded_message(db: &Db, account: &str, request_id: &str) -> Result<Option<String>> {
    if request_id.is_empty() || request_id.contains('/') {
        return Ok(None);
    }
    Ok(db.get::<DenialRec>(DENIALS, &format!("{account}/{request_id}"))?.map(|r| r.decoded))
}
