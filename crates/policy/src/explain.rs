//! Explanations: why a decision came out as it did.

use std::sync::Arc;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::ast::Effect;
use crate::json::Position;
use crate::{Decision, Layer};

/// A statement that applied to the request (its action, resource, principal and conditions matched).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchedStatement {
    pub layer: Layer,
    /// For SCPs/RCPs: the level in the OU path (0 = organization root).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub level: Option<usize>,
    /// The [`crate::NamedPolicy`] name.
    pub policy: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<Arc<str>>,
    /// 0-based position in the policy's Statement list.
    pub index: usize,
    pub effect: Effect,
    /// Where the statement is in its document, as the IAM simulator reports it (StartPosition /
    /// EndPosition): 1-based line and column just past the statement's `{`, and just past its `}`.
    pub start: Position,
    pub end: Position,
    /// Whether the statement decided the outcome: an Allow of an allowed request, a Deny of an
    /// explicitly denied one. (Simulation results' MatchedStatements.)
    pub decisive: bool,
}

/// One layer's own verdict (the simulator's EvalDecisionDetails).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LayerDecision {
    /// A statement in the layer allows and none denies.
    Allowed,
    /// A statement in the layer denies.
    ExplicitDeny,
    /// Nothing in the layer applies.
    ImplicitDeny,
}

/// The verdict of one layer (one level, for SCPs/RCPs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerResult {
    pub layer: Layer,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub level: Option<usize>,
    pub decision: LayerDecision,
}

/// Why: the statements that applied, each layer's verdict, the layer that denied (explicitly, or by
/// lacking an allow), and the condition keys the evaluated statements referenced that the request
/// context did not have. Serializes (with a human-readable `summary`) as `rampart policy eval` prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Explanation {
    pub(crate) denied_by: Option<(Layer, bool)>,
    /// Every statement that applied, in layer order, then policy order, then statement order.
    pub statements: Vec<MatchedStatement>,
    pub layers: Vec<LayerResult>,
    /// Condition keys (as first written) that evaluated statements referenced and the context lacked.
    pub missing_context_keys: Vec<String>,
    /// Whether the resource policy's allow sufficed on its own (same account, naming the principal).
    pub resource_policy_grant: Option<crate::principal::Grant>,
}

impl Explanation {
    /// For AccessDenied messages: the layer that denied, and whether explicitly. `None` when allowed.
    pub fn denying_layer(&self) -> Option<(Layer, bool)> {
        self.denied_by
    }

    /// The statements that decided the outcome (Allow statements of an allowed request, Deny statements
    /// of an explicitly denied one; none for an implicit deny) — the simulator's MatchedStatements.
    pub fn matched_statements(&self) -> impl Iterator<Item = &MatchedStatement> {
        self.statements.iter().filter(|s| s.decisive)
    }

    /// Condition keys referenced by evaluated statements that the context lacked (MissingContextValues).
    pub fn missing_context_keys(&self) -> &[String] {
        &self.missing_context_keys
    }

    /// The verdict of `layer` (the first level's for SCPs/RCPs), if that layer took part.
    pub fn layer_decision(&self, layer: Layer) -> Option<LayerDecision> {
        let mut levels = self.layers.iter().filter(|l| l.layer == layer).peekable();
        levels.peek()?;
        let mut out = LayerDecision::Allowed;
        for l in levels {
            match l.decision {
                LayerDecision::ExplicitDeny => return Some(LayerDecision::ExplicitDeny),
                LayerDecision::ImplicitDeny => out = LayerDecision::ImplicitDeny,
                LayerDecision::Allowed => {}
            }
        }
        Some(out)
    }

    /// One sentence: what decided.
    pub fn summary(&self) -> String {
        let decisive: Vec<String> = self
            .matched_statements()
            .map(|s| match &s.sid {
                Some(sid) => format!("{} ({sid})", s.policy),
                None => format!("{} (statement {})", s.policy, s.index),
            })
            .collect();
        match self.denied_by {
            None => format!("Allowed by {}.", decisive.join(", ")),
            Some((layer, true)) => format!("Explicitly denied by {} in the {}.", decisive.join(", "), layer.noun()),
            Some((layer, false)) => format!("Implicitly denied: no {} allows the request.", layer.noun()),
        }
    }

    pub(crate) fn decision(&self) -> Decision {
        match self.denied_by {
            None => Decision::Allowed,
            Some((_, true)) => Decision::ExplicitlyDenied,
            Some((_, false)) => Decision::ImplicitlyDenied,
        }
    }
}

impl Serialize for Explanation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Explanation", 7)?;
        s.serialize_field("summary", &self.summary())?;
        s.serialize_field("denyingLayer", &self.denied_by.map(|(l, _)| l))?;
        s.serialize_field("explicitDeny", &self.denied_by.is_some_and(|(_, e)| e))?;
        s.serialize_field("statements", &self.statements)?;
        s.serialize_field("layers", &self.layers)?;
        s.serialize_field("missingContextKeys", &self.missing_context_keys)?;
        s.serialize_field("resourcePolicyGrant", &self.resource_policy_grant)?;
        s.end()
    }
}
