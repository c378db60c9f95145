//! The stored IAM model. Every record is JSON in a table of the shared store; per-account
//! records are keyed `{account}/{lower-case name}` because IAM names are unique case-insensitively.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::util::iam_arn;

/// A resource tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// An IAM user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRec {
    pub name: String,
    pub id: String,
    pub path: String,
    pub created: i64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub boundary: Option<String>,
    /// Inline policies: name → document as submitted.
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    /// Attached managed policy ARNs, in attach order.
    #[serde(default)]
    pub attached: Vec<String>,
    /// Group names (as created), in join order.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Access key IDs.
    #[serde(default)]
    pub keys: Vec<String>,
}

impl UserRec {
    pub fn arn(&self, account: &str) -> String {
        iam_arn(account, "user", &self.path, &self.name)
    }
}

/// An IAM group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRec {
    pub name: String,
    pub id: String,
    pub path: String,
    pub created: i64,
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: Vec<String>,
    /// Member user names, in join order.
    #[serde(default)]
    pub members: Vec<String>,
}

impl GroupRec {
    pub fn arn(&self, account: &str) -> String {
        iam_arn(account, "group", &self.path, &self.name)
    }
}

/// An IAM role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRec {
    pub name: String,
    pub id: String,
    pub path: String,
    pub created: i64,
    /// The trust policy, as submitted.
    pub trust: String,
    #[serde(default)]
    pub description: Option<String>,
    pub max_session: i64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub boundary: Option<String>,
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: Vec<String>,
    /// Instance profile names this role is in.
    #[serde(default)]
    pub instance_profiles: Vec<String>,
    /// Last use (epoch seconds, region), set by STS.
    #[serde(default)]
    pub last_used: Option<(i64, String)>,
}

impl RoleRec {
    pub fn arn(&self, account: &str) -> String {
        iam_arn(account, "role", &self.path, &self.name)
    }
}

/// One version of a managed policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRec {
    pub id: String,
    pub document: String,
    pub created: i64,
}

/// A customer managed policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRec {
    pub name: String,
    pub id: String,
    pub path: String,
    pub created: i64,
    pub updated: i64,
    #[serde(default)]
    pub description: Option<String>,
    pub default_version: String,
    pub versions: Vec<VersionRec>,
    /// Version numbers are never reused: the next `CreatePolicyVersion` gets `v{next_version}`.
    pub next_version: u32,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl PolicyRec {
    pub fn arn(&self, account: &str) -> String {
        iam_arn(account, "policy", &self.path, &self.name)
    }

    pub fn default_document(&self) -> Option<&str> {
        self.versions.iter().find(|v| v.id == self.default_version).map(|v| v.document.as_str())
    }
}

/// An instance profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileRec {
    pub name: String,
    pub id: String,
    pub path: String,
    pub created: i64,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl ProfileRec {
    pub fn arn(&self, account: &str) -> String {
        iam_arn(account, "instance-profile", &self.path, &self.name)
    }
}

/// An access key: a user's, or the account root's (`user: None`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyRec {
    pub account: String,
    pub user: Option<String>,
    pub active: bool,
    pub created: i64,
    /// The secret, sealed with the server's master key (AAD = the key ID), hex.
    pub sealed_secret: String,
}

/// When and where a key was last used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastUsedRec {
    pub at: i64,
    pub service: String,
    pub region: String,
}

/// Per-account facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRec {
    pub created: i64,
    /// The root access key made at bootstrap (replaced when the configured one changes).
    pub bootstrap_key: String,
    /// Root access keys (bootstrap + CreateAccessKey by root).
    #[serde(default)]
    pub root_keys: Vec<String>,
    #[serde(default)]
    pub alias: Option<String>,
}

/// Which kind of entity a policy is attached to (ListEntitiesForPolicy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntityKind {
    User,
    Group,
    Role,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::User => "user",
            EntityKind::Group => "group",
            EntityKind::Role => "role",
        }
    }
}

/// An entry of the attachment indexes: `{account}|{policy arn}|{kind}|{lower name}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRec {
    pub kind: EntityKind,
    pub name: String,
    pub id: String,
    pub path: String,
}

/// Table names.
pub mod tables {
    pub const USERS: &str = "iam_users";
    pub const GROUPS: &str = "iam_groups";
    pub const ROLES: &str = "iam_roles";
    pub const POLICIES: &str = "iam_policies";
    pub const PROFILES: &str = "iam_instance_profiles";
    /// Global: access key ID → [`super::AccessKeyRec`].
    pub const ACCESS_KEYS: &str = "iam_access_keys";
    /// Global: access key ID → [`super::LastUsedRec`].
    pub const KEY_LAST_USED: &str = "iam_access_key_last_used";
    /// Global: account ID → [`super::AccountRec`].
    pub const ACCOUNTS: &str = "iam_accounts";
    /// Global: alias → account ID (aliases are unique across accounts).
    pub const ALIASES: &str = "iam_account_aliases";
    /// Managed policy → entities it is attached to as a permissions policy.
    pub const ATTACHMENTS: &str = "iam_policy_attachments";
    /// Managed policy → entities that use it as their permissions boundary.
    pub const BOUNDARY_USES: &str = "iam_policy_boundary_uses";
    /// Account ID → generation, bumped by every IAM write (cache validation).
    pub const GENERATION: &str = "iam_generation";
    /// `{entity table}/{account}` → how many entities of that kind the account has (quotas).
    pub const ENTITY_COUNTS: &str = "iam_entity_counts";
}

/// `{account}/{lower-case name}`.
pub fn entity_key(account: &str, name: &str) -> String {
    let mut k = String::with_capacity(account.len() + 1 + name.len());
    k.push_str(account);
    k.push('/');
    for c in name.chars() {
        k.push(c.to_ascii_lowercase());
    }
    k
}

/// Attachment index prefix for one policy: `{account}|{arn}|`.
pub fn attachment_prefix(account: &str, policy_arn: &str) -> String {
    format!("{account}|{policy_arn}|")
}

/// Attachment index key.
pub fn attachment_key(account: &str, policy_arn: &str, kind: EntityKind, name: &str) -> String {
    format!("{}{}|{}", attachment_prefix(account, policy_arn), kind.as_str(), name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_and_prefix_safe() {
        assert_eq!(entity_key("111122223333", "Alice"), "111122223333/alice");
        assert_eq!(
            attachment_key("1", "arn:aws:iam::1:policy/a/B", EntityKind::User, "Bob"),
            "1|arn:aws:iam::1:policy/a/B|user|bob"
        );
        // A policy whose ARN extends another's does not share its index prefix.
        let a = attachment_prefix("1", "arn:aws:iam::1:policy/a");
        assert!(!attachment_key("1", "arn:aws:iam::1:policy/a/b", EntityKind::Role, "r").starts_with(&a));
    }

    #[test]
    fn records_round_trip_and_arns() {
        let u = UserRec {
            name: "Bob".into(),
            id: "AIDAXXXXXXXXXXXXXXXXX".into(),
            path: "/eng/".into(),
            created: 0,
            tags: vec![],
            boundary: None,
            inline: Default::default(),
            attached: vec![],
            groups: vec![],
            keys: vec![],
        };
        assert_eq!(u.arn("1"), "arn:aws:iam::1:user/eng/Bob");
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(serde_json::from_str::<UserRec>(&json).unwrap(), u);
        // Older records without optional fields still load.
        let minimal: UserRec = serde_json::from_str(r#"{"name":"a","id":"AIDA1","path":"/","created":1}"#).unwrap();
        assert!(minimal.keys.is_empty() && minimal.boundary.is_none());
        let p = PolicyRec {
            name: "P".into(),
            id: "ANPA1".into(),
            path: "/".into(),
            created: 0,
            updated: 0,
            description: None,
            default_version: "v2".into(),
            versions: vec![
                VersionRec { id: "v1".into(), document: "one".into(), created: 0 },
                VersionRec { id: "v2".into(), document: "two".into(), created: 0 },
            ],
            next_version: 3,
            tags: vec![],
        };
        assert_eq!(p.default_document(), Some("two"));
    }
}
