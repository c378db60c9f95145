//! The policy document model: what a document says, element by element, as written.

use serde::{Deserialize, Serialize};

use crate::json::Position;

/// The policy language version. A missing `Version` means 2008-10-17 (no policy variables).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    #[serde(rename = "2008-10-17")]
    V2008,
    #[serde(rename = "2012-10-17")]
    V2012,
}

/// Allow or Deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// A parsed document.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// `Version` as written (`None` when absent).
    pub version_text: Option<String>,
    pub version: Version,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

/// `Action`/`NotAction`, `Resource`/`NotResource`: the listed values, and whether negated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueList {
    pub negated: bool,
    pub values: Vec<String>,
}

/// Which kind of principal a `Principal` entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PrincipalType {
    #[serde(rename = "AWS")]
    Aws,
    Service,
    Federated,
    CanonicalUser,
}

impl PrincipalType {
    pub fn from_key(key: &str) -> Option<PrincipalType> {
        match key {
            "AWS" => Some(PrincipalType::Aws),
            "Service" => Some(PrincipalType::Service),
            "Federated" => Some(PrincipalType::Federated),
            "CanonicalUser" => Some(PrincipalType::CanonicalUser),
            _ => None,
        }
    }
}

/// `Principal`/`NotPrincipal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrincipalSpec {
    pub negated: bool,
    /// `"Principal": "*"`.
    pub wildcard: bool,
    pub entries: Vec<(PrincipalType, Vec<String>)>,
}

/// The set prefix of a condition operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetQualifier {
    None,
    ForAllValues,
    ForAnyValue,
}

/// The base condition operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

impl Operator {
    pub const ALL: [Operator; 27] = [
        Operator::StringEquals,
        Operator::StringNotEquals,
        Operator::StringEqualsIgnoreCase,
        Operator::StringNotEqualsIgnoreCase,
        Operator::StringLike,
        Operator::StringNotLike,
        Operator::NumericEquals,
        Operator::NumericNotEquals,
        Operator::NumericLessThan,
        Operator::NumericLessThanEquals,
        Operator::NumericGreaterThan,
        Operator::NumericGreaterThanEquals,
        Operator::DateEquals,
        Operator::DateNotEquals,
        Operator::DateLessThan,
        Operator::DateLessThanEquals,
        Operator::DateGreaterThan,
        Operator::DateGreaterThanEquals,
        Operator::Bool,
        Operator::BinaryEquals,
        Operator::IpAddress,
        Operator::NotIpAddress,
        Operator::ArnEquals,
        Operator::ArnLike,
        Operator::ArnNotEquals,
        Operator::ArnNotLike,
        Operator::Null,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operator::StringEquals => "StringEquals",
            Operator::StringNotEquals => "StringNotEquals",
            Operator::StringEqualsIgnoreCase => "StringEqualsIgnoreCase",
            Operator::StringNotEqualsIgnoreCase => "StringNotEqualsIgnoreCase",
            Operator::StringLike => "StringLike",
            Operator::StringNotLike => "StringNotLike",
            Operator::NumericEquals => "NumericEquals",
            Operator::NumericNotEquals => "NumericNotEquals",
            Operator::NumericLessThan => "NumericLessThan",
            Operator::NumericLessThanEquals => "NumericLessThanEquals",
            Operator::NumericGreaterThan => "NumericGreaterThan",
            Operator::NumericGreaterThanEquals => "NumericGreaterThanEquals",
            Operator::DateEquals => "DateEquals",
            Operator::DateNotEquals => "DateNotEquals",
            Operator::DateLessThan => "DateLessThan",
            Operator::DateLessThanEquals => "DateLessThanEquals",
            Operator::DateGreaterThan => "DateGreaterThan",
            Operator::DateGreaterThanEquals => "DateGreaterThanEquals",
            Operator::Bool => "Bool",
            Operator::BinaryEquals => "BinaryEquals",
            Operator::IpAddress => "IpAddress",
            Operator::NotIpAddress => "NotIpAddress",
            Operator::ArnEquals => "ArnEquals",
            Operator::ArnLike => "ArnLike",
            Operator::ArnNotEquals => "ArnNotEquals",
            Operator::ArnNotLike => "ArnNotLike",
            Operator::Null => "Null",
        }
    }

    pub fn from_name(name: &str) -> Option<Operator> {
        Operator::ALL.iter().copied().find(|o| o.name() == name)
    }

    /// Negated operators match when the positive form does not; with a missing key they are true.
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            Operator::StringNotEquals
                | Operator::StringNotEqualsIgnoreCase
                | Operator::StringNotLike
                | Operator::NumericNotEquals
                | Operator::DateNotEquals
                | Operator::NotIpAddress
                | Operator::ArnNotEquals
                | Operator::ArnNotLike
        )
    }

    /// Whether policy variables are substituted in this operator's values (string and ARN operators).
    pub fn takes_variables(self) -> bool {
        matches!(
            self,
            Operator::StringEquals
                | Operator::StringNotEquals
                | Operator::StringEqualsIgnoreCase
                | Operator::StringNotEqualsIgnoreCase
                | Operator::StringLike
                | Operator::StringNotLike
                | Operator::ArnEquals
                | Operator::ArnLike
                | Operator::ArnNotEquals
                | Operator::ArnNotLike
        )
    }

    pub fn is_date(self) -> bool {
        self.name().starts_with("Date")
    }
}

/// A full condition operator as written: `[ForAllValues:|ForAnyValue:]Base[IfExists]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionOperator {
    pub set: SetQualifier,
    pub base: Operator,
    pub if_exists: bool,
}

impl ConditionOperator {
    /// Parse an operator name; `None` when AWS does not know it.
    pub fn parse(name: &str) -> Option<ConditionOperator> {
        let (set, rest) = if let Some(r) = name.strip_prefix("ForAllValues:") {
            (SetQualifier::ForAllValues, r)
        } else if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (SetQualifier::ForAnyValue, r)
        } else {
            (SetQualifier::None, name)
        };
        let (rest, if_exists) = match rest.strip_suffix("IfExists") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let base = Operator::from_name(rest)?;
        Some(ConditionOperator { set, base, if_exists })
    }
}

/// One `operator: { key: values }` pair of a Condition block.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub operator: ConditionOperator,
    /// The operator as written.
    pub operator_text: String,
    /// The key as written (matching is case-insensitive).
    pub key: String,
    /// Values in their string form (`true`, `10` for JSON booleans and numbers).
    pub values: Vec<String>,
}

/// One statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// 0-based position in the Statement array.
    pub index: usize,
    pub sid: Option<String>,
    pub effect: Effect,
    /// Effect as written (AWS's legacy parser is case-sensitive about it).
    pub effect_text: String,
    /// `None` when neither Action nor NotAction is present.
    pub action: Option<ValueList>,
    /// `None` when neither Resource nor NotResource is present.
    pub resource: Option<ValueList>,
    pub principal: Option<PrincipalSpec>,
    pub conditions: Vec<Condition>,
    pub start: Position,
    pub end: Position,
}
