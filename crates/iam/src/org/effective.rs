//! Effective management policies (DescribeEffectivePolicy): the policies of one management type
//! attached to the root, each OU on the account's path and the account, merged top-down with
//! AWS's inheritance operators (`@@assign`, `@@append`, `@@remove`, and the child control operator
//! `@@operators_allowed_for_child_policies`).

use std::collections::BTreeMap;

use rampart_service::{op, Entry, Operation};
use serde_json::Map;

use super::*;

/// The operations of this family, each listed once.
pub const OPS: &[Entry<OrgService>] = &[op::<OrgService, DescribeEffectivePolicy>()];

const ASSIGN: &str = "@@assign";
const APPEND: &str = "@@append";
const REMOVE: &str = "@@remove";
const CHILD_CONTROL: &str = "@@operators_allowed_for_child_policies";
const VALUE_OPERATORS: [&str; 3] = [ASSIGN, APPEND, REMOVE];

/// The EffectivePolicyType enum of the model: the management policy types.
fn effective_type_arg(i: &In<'_>) -> Result<&'static str> {
    let v = i.req("PolicyType")?;
    MANAGEMENT_TYPES
        .iter()
        .chain(["SECURITYHUB_CSPM_POLICY"].iter())
        .find(|t| **t == v)
        .copied()
        .ok_or_else(|| invalid("INVALID_ENUM_POLICY_TYPE", "You specified an invalid policy type string."))
}

fn effective_not_found() -> IamError {
    err(
        "EffectivePolicyNotFoundException",
        "We can't find an effective policy of the specified type for the specified target.",
    )
}

/// The operators a policy level allows its children, per path in the policy document.
#[derive(Default)]
struct Controls(BTreeMap<Vec<String>, Vec<String>>);

impl Controls {
    /// Whether `op` may be used at `path`: every control set at the path or above it allows it.
    fn allows(&self, path: &[String], op: &str) -> bool {
        (0..=path.len()).all(|n| {
            path.get(..n).and_then(|p| self.0.get(p)).is_none_or(|ops| ops.iter().any(|o| o == "@@all" || o == op))
        })
    }

    /// Add a level's controls (a child can only narrow what its parents allowed).
    fn narrow(&mut self, path: Vec<String>, ops: Vec<String>) {
        match self.0.get_mut(&path) {
            Some(existing) if !existing.iter().any(|o| o == "@@all") => {
                if !ops.iter().any(|o| o == "@@all") {
                    existing.retain(|o| ops.contains(o));
                }
            }
            _ => {
                self.0.insert(path, ops);
            }
        }
    }
}

/// The operators listed in a `@@operators_allowed_for_child_policies` value.
fn control_ops(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Merge one policy document into the effective document. Operators the controls of earlier
/// (parent) levels do not allow are not applied, as AWS's child control operator documents.
fn merge(
    effective: &mut Map<String, Value>,
    policy: &Map<String, Value>,
    path: &mut Vec<String>,
    controls: &Controls,
    new_controls: &mut Vec<(Vec<String>, Vec<String>)>,
) {
    if let Some(c) = policy.get(CHILD_CONTROL) {
        new_controls.push((path.clone(), control_ops(c)));
    }
    for (key, value) in policy {
        if key == CHILD_CONTROL {
            continue;
        }
        path.push(key.clone());
        match value {
            Value::Object(node) if VALUE_OPERATORS.iter().any(|o| node.contains_key(*o)) => {
                if let Some(c) = node.get(CHILD_CONTROL) {
                    new_controls.push((path.clone(), control_ops(c)));
                }
                apply_operators(effective, key, node, path, controls);
            }
            Value::Object(node) => {
                let existed = effective.contains_key(key);
                let slot = effective.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(inner) = slot {
                    merge(inner, node, path, controls, new_controls);
                    // Nothing set under a new node (its operators were not allowed): no node.
                    if inner.is_empty() && !existed {
                        effective.remove(key);
                    }
                }
            }
            // A plain value is an assignment.
            other => {
                if controls.allows(path, ASSIGN) {
                    effective.insert(key.clone(), other.clone());
                }
            }
        }
        path.pop();
    }
}

/// `@@assign`, then `@@append`, then `@@remove` of one setting.
fn apply_operators(
    effective: &mut Map<String, Value>,
    key: &str,
    node: &Map<String, Value>,
    path: &[String],
    controls: &Controls,
) {
    if let Some(v) = node.get(ASSIGN) {
        if controls.allows(path, ASSIGN) {
            effective.insert(key.to_string(), v.clone());
        }
    }
    if let Some(v) = node.get(APPEND) {
        if controls.allows(path, APPEND) {
            let add = match v {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            match effective.get_mut(key) {
                Some(Value::Array(existing)) => {
                    for item in add {
                        if !existing.contains(&item) {
                            existing.push(item);
                        }
                    }
                }
                Some(existing) => {
                    let mut list = vec![existing.clone()];
                    list.extend(add.into_iter().filter(|i| i != existing));
                    *existing = Value::Array(list);
                }
                None => {
                    effective.insert(key.to_string(), Value::Array(add));
                }
            }
        }
    }
    if let Some(v) = node.get(REMOVE) {
        if controls.allows(path, REMOVE) {
            let gone = match v {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            let drop_key = match effective.get_mut(key) {
                Some(Value::Array(existing)) => {
                    existing.retain(|i| !gone.contains(i));
                    false
                }
                Some(existing) => gone.contains(existing),
                None => false,
            };
            if drop_key {
                effective.remove(key);
            }
        }
    }
}

/// The effective document of levels root → OUs → account, each level's policy documents in
/// attachment order. `None` when no policy applies.
pub(super) fn effective_document(levels: &[Vec<&str>]) -> Option<Value> {
    let mut effective = Map::new();
    let mut controls = Controls::default();
    let mut any = false;
    for level in levels {
        let mut level_controls = Vec::new();
        for content in level {
            let Ok(Value::Object(policy)) = serde_json::from_str::<Value>(content) else { continue };
            any = true;
            merge(&mut effective, &policy, &mut Vec::new(), &controls, &mut level_controls);
        }
        for (path, ops) in level_controls {
            controls.narrow(path, ops);
        }
    }
    any.then_some(Value::Object(effective))
}

pub struct DescribeEffectivePolicy {
    ty: &'static str,
    target: Option<String>,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for DescribeEffectivePolicy {
    const NAME: &'static str = "DescribeEffectivePolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let ty = effective_type_arg(&i)?;
        let target = match i.opt("TargetId")? {
            None => None,
            Some(_) => Some(i.id("TargetId", |s| is_root_id(s) || is_ou_id(s) || is_account_id(s))?.to_string()),
        };
        // AWS: "Specifying an organization root or organizational unit (OU) as the target is not
        // supported."
        if target.as_deref().is_some_and(|t| !is_account_id(t)) {
            return Err(invalid(
                "TARGET_NOT_SUPPORTED",
                "You can't perform the specified operation on that target entity.",
            ));
        }
        Ok(DescribeEffectivePolicy { ty, target, doc: None })
    }

    /// Any account of the organization may read its own effective policy; other accounts'
    /// are the management account's (or a delegated administrator's) to read.
    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let me = &ctx.caller.account_id;
        let target = self.target.get_or_insert_with(|| me.clone()).clone();
        let doc = if target == *me { svc.org(ctx)? } else { svc.readable_org(ctx, Self::NAME)? };
        if !doc.accounts.contains_key(&target) {
            return Err(target_not_found());
        }
        let c = with_type(check(Self::NAME, doc.account_arn(&target)), self.ty);
        self.doc = Some(doc);
        one(c)
    }

    fn run(self, _: &OrgService, _: &RequestContext) -> Result<Output> {
        let doc = loaded(self.doc)?;
        let target = self.target.ok_or_else(target_not_found)?;
        if !doc.type_enabled(self.ty) {
            return Err(effective_not_found());
        }
        let chain = doc.path(&target).ok_or_else(target_not_found)?;
        let levels: Vec<Vec<&str>> = chain
            .iter()
            .map(|t| {
                doc.attached_of_type(t, self.ty)
                    .iter()
                    .filter_map(|p| doc.policies.get(p).map(|rec| rec.content.as_str()))
                    .collect()
            })
            .collect();
        let content = effective_document(&levels).ok_or_else(effective_not_found)?;
        let updated = chain
            .iter()
            .flat_map(|t| doc.attached_of_type(t, self.ty))
            .filter_map(|p| doc.policies.get(&p).map(|rec| rec.updated))
            .chain(doc.policy_changes.get(self.ty).copied())
            .max()
            .unwrap_or(0);
        Ok(Output::Json(json!({"EffectivePolicy": {
            "PolicyContent": content.to_string(),
            "LastUpdatedTimestamp": updated,
            "TargetId": target,
            "PolicyType": self.ty,
        }})))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eff(levels: &[Vec<Value>]) -> Value {
        let texts: Vec<Vec<String>> = levels.iter().map(|l| l.iter().map(Value::to_string).collect()).collect();
        let refs: Vec<Vec<&str>> = texts.iter().map(|l| l.iter().map(String::as_str).collect()).collect();
        effective_document(&refs).unwrap()
    }

    /// AWS's tag policy example: the root assigns a key and values, an OU appends values.
    #[test]
    fn assign_then_append() {
        let root = json!({"tags": {"costcenter": {"tag_key": {"@@assign": "CostCenter"}, "tag_value": {"@@assign": ["100", "200"]}}}});
        let ou = json!({"tags": {"costcenter": {"tag_value": {"@@append": ["300"]}}}});
        assert_eq!(
            eff(&[vec![root], vec![ou], vec![]]),
            json!({"tags": {"costcenter": {"tag_key": "CostCenter", "tag_value": ["100", "200", "300"]}}})
        );
    }

    #[test]
    fn child_assign_overwrites_and_remove_takes_values_away() {
        let root = json!({"tags": {"env": {"tag_value": {"@@assign": ["prod", "dev", "test"]}}}});
        let ou = json!({"tags": {"env": {"tag_value": {"@@remove": ["test"]}}}});
        let acct = json!({"tags": {"owner": {"tag_key": {"@@assign": "Owner"}}}});
        assert_eq!(
            eff(&[vec![root.clone()], vec![ou], vec![acct]]),
            json!({"tags": {"env": {"tag_value": ["prod", "dev"]}, "owner": {"tag_key": "Owner"}}})
        );
        let reassign = json!({"tags": {"env": {"tag_value": {"@@assign": ["qa"]}}}});
        assert_eq!(eff(&[vec![root], vec![reassign]]), json!({"tags": {"env": {"tag_value": ["qa"]}}}));
    }

    /// `@@operators_allowed_for_child_policies`: `@@none` locks a setting for every level below;
    /// a list allows only those operators; it applies to the node and everything under it.
    #[test]
    fn child_control_operators() {
        let root = json!({"tags": {"costcenter": {
            "tag_key": {"@@assign": "CostCenter", "@@operators_allowed_for_child_policies": ["@@none"]},
            "tag_value": {"@@assign": ["100"], "@@operators_allowed_for_child_policies": ["@@append"]}}}});
        let ou = json!({"tags": {"costcenter": {
            "tag_key": {"@@assign": "costcenter"},
            "tag_value": {"@@append": ["200"], "@@remove": ["100"]}}}});
        assert_eq!(
            eff(&[vec![root], vec![ou]]),
            json!({"tags": {"costcenter": {"tag_key": "CostCenter", "tag_value": ["100", "200"]}}})
        );
        // On an inner node: everything under "services" is locked.
        let root = json!({"services": {"@@operators_allowed_for_child_policies": ["@@none"],
            "default": {"opt_out_policy": {"@@assign": "optOut"}}}});
        let acct = json!({"services": {"default": {"opt_out_policy": {"@@assign": "optIn"}}, "rekognition": {"opt_out_policy": {"@@assign": "optIn"}}}});
        assert_eq!(eff(&[vec![root], vec![acct]]), json!({"services": {"default": {"opt_out_policy": "optOut"}}}));
    }

    /// A control applies to the levels below the one that sets it, not to its own level.
    #[test]
    fn controls_bind_lower_levels_only() {
        let a = json!({"s": {"v": {"@@assign": "a", "@@operators_allowed_for_child_policies": ["@@none"]}}});
        let b = json!({"s": {"v": {"@@assign": "b"}}});
        assert_eq!(eff(&[vec![a.clone(), b.clone()]]), json!({"s": {"v": "b"}}));
        assert_eq!(eff(&[vec![a], vec![b]]), json!({"s": {"v": "a"}}));
        assert!(effective_document(&[vec![], vec![]]).is_none());
    }
}
