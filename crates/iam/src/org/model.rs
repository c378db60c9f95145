//! The stored Organizations model: one JSON document per organization (organizations are small and
//! every change is a read-modify-write of the whole tree in one transaction), an index from member
//! account to organization, and one global generation that every change bumps (the authorizer's
//! SCP/RCP cache is valid for exactly one generation).

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::model::Tag;

/// Table names.
pub mod tables {
    /// Organization ID → [`super::OrgDoc`].
    pub const ORGS: &str = "org_organizations";
    /// Account ID → organization ID (members and the management account).
    pub const MEMBERS: &str = "org_members";
    /// Key [`GENERATION_KEY`] → the generation of all organization state.
    pub const GENERATION: &str = "org_generation";
    /// `car-…` → organization ID (DescribeCreateAccountStatus).
    pub const CREATE_REQUESTS: &str = "org_create_account_requests";
    /// `h-…` → [`super::HandshakeRec`].
    pub const HANDSHAKES: &str = "org_handshakes";
    /// `{party}/{h-…}` → the handshake's ID: the handshakes an account (`123456789012`), an
    /// email address (`email:addr`, lower case) or an organization (`o-…`) is a party to.
    pub const HANDSHAKE_PARTIES: &str = "org_handshake_parties";
    /// Account ID → the email address Organizations knows for it (accounts it created, and
    /// invited accounts once they joined), so an invitation by email reaches the account.
    pub const ACCOUNT_EMAILS: &str = "org_account_emails";
}

pub const GENERATION_KEY: &str = "all";

pub const SCP: &str = "SERVICE_CONTROL_POLICY";
pub const RCP: &str = "RESOURCE_CONTROL_POLICY";
pub const FULL_AWS_ACCESS: &str = "p-FullAWSAccess";
pub const RCP_FULL_AWS_ACCESS: &str = "p-RCPFullAWSAccess";
pub const FULL_AWS_ACCESS_DOC: &str =
    "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\n      \"Effect\": \"Allow\",\n      \"Action\": \"*\",\n      \"Resource\": \"*\"\n    }\n  ]\n}";
pub const RCP_FULL_AWS_ACCESS_DOC: &str = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\n      \"Effect\": \"Allow\",\n      \"Principal\": \"*\",\n      \"Action\": \"*\",\n      \"Resource\": \"*\"\n    }\n  ]\n}";

/// `service_control_policy` for ARNs.
pub fn type_slug(ty: &str) -> String {
    ty.to_ascii_lowercase()
}

/// The AWS managed policy of an enforced type.
pub fn aws_managed(ty: &str) -> Option<(&'static str, &'static str, &'static str, &'static str)> {
    match ty {
        SCP => Some((FULL_AWS_ACCESS, "FullAWSAccess", "Allows access to every operation", FULL_AWS_ACCESS_DOC)),
        RCP => {
            Some((RCP_FULL_AWS_ACCESS, "RCPFullAWSAccess", "Allows access to every resource", RCP_FULL_AWS_ACCESS_DOC))
        }
        _ => None,
    }
}

pub fn aws_managed_type(id: &str) -> Option<&'static str> {
    match id {
        FULL_AWS_ACCESS => Some(SCP),
        RCP_FULL_AWS_ACCESS => Some(RCP),
        _ => None,
    }
}

/// An organizational unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OuRec {
    pub name: String,
    pub parent: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Creation order (lists are in creation order; 0 for records older than this field).
    #[serde(default)]
    pub seq: u64,
}

/// A member account (the management account included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRec {
    pub name: String,
    pub email: String,
    pub parent: String,
    /// ACTIVE, SUSPENDED (closed: kept 90 days by AWS; here until removed).
    pub status: String,
    /// INVITED (the management account) or CREATED.
    pub joined_method: String,
    pub joined: i64,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A customer managed policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgPolicyRec {
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub content: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Creation order (lists are in creation order; 0 for records older than this field).
    #[serde(default)]
    pub seq: u64,
    /// When the content was last set (Unix seconds).
    #[serde(default)]
    pub updated: i64,
}

/// A CreateAccount request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateStatusRec {
    pub id: String,
    pub account_name: String,
    pub state: String,
    pub requested: i64,
    pub completed: Option<i64>,
    pub account_id: Option<String>,
    pub failure_reason: Option<String>,
}

/// One organization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgDoc {
    pub id: String,
    pub management: String,
    pub root_id: String,
    #[serde(default)]
    pub root_tags: Vec<Tag>,
    /// Enabled policy types of the root.
    #[serde(default)]
    pub enabled_types: Vec<String>,
    #[serde(default)]
    pub ous: BTreeMap<String, OuRec>,
    #[serde(default)]
    pub accounts: BTreeMap<String, MemberRec>,
    #[serde(default)]
    pub policies: BTreeMap<String, OrgPolicyRec>,
    /// Target (root, OU, account) → attached policy IDs, in attach order.
    #[serde(default)]
    pub attachments: BTreeMap<String, Vec<String>>,
    /// CreateAccount requests, oldest first.
    #[serde(default)]
    pub create_requests: Vec<CreateStatusRec>,
    /// Trusted access: service principal → when it was enabled (Unix seconds).
    #[serde(default)]
    pub service_access: BTreeMap<String, i64>,
    /// Delegated administrators: account → service principal → when it was registered.
    #[serde(default)]
    pub delegated_admins: BTreeMap<String, BTreeMap<String, i64>>,
    /// `ALL` or `CONSOLIDATED_BILLING`.
    #[serde(default = "all_features")]
    pub feature_set: String,
    /// The organization's resource policy (delegation of Organizations to member accounts).
    #[serde(default)]
    pub resource_policy: Option<ResourcePolicyRec>,
    /// Policy type → when its attachments (or the tree they apply through) last changed, for
    /// the effective policy's LastUpdatedTimestamp.
    #[serde(default)]
    pub policy_changes: BTreeMap<String, i64>,
}

fn all_features() -> String {
    "ALL".to_string()
}

/// The organization's resource-based delegation policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourcePolicyRec {
    pub id: String,
    pub content: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A handshake: an invitation to join, or a step of enabling all features.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeRec {
    pub id: String,
    pub org_id: String,
    /// The organization's management account (the handshake ARN's account).
    pub management: String,
    /// INVITE, ENABLE_ALL_FEATURES, APPROVE_ALL_FEATURES.
    pub action: String,
    /// REQUESTED, OPEN, ACCEPTED, DECLINED, CANCELED (EXPIRED is derived from the time).
    pub state: String,
    /// (Id, Type) as AWS lists them: the organization first.
    pub parties: Vec<(String, String)>,
    /// The recipient: an account ID or a lower-case email address (`None`: the organization's
    /// management account, for APPROVE_ALL_FEATURES and the parent ENABLE_ALL_FEATURES).
    pub recipient: Option<String>,
    pub resources: serde_json::Value,
    pub requested: i64,
    pub expires: i64,
    /// When the state last changed (final handshakes are kept 30 days after it).
    pub changed: i64,
    /// The ENABLE_ALL_FEATURES request this handshake belongs to.
    #[serde(default)]
    pub parent: Option<String>,
    /// Creation order: the request time in microseconds (lists are oldest first).
    #[serde(default)]
    pub order: i64,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// AWS: a handshake expires 15 days after it was requested.
pub const HANDSHAKE_LIFETIME: i64 = 15 * 86_400;
/// AWS: handshakes in a final state are listed for 30 days, then deleted.
pub const HANDSHAKE_RETENTION: i64 = 30 * 86_400;

impl HandshakeRec {
    /// The state at `now`: an open request past its expiration is EXPIRED.
    pub fn state_at(&self, now: i64) -> &str {
        if (self.state == "REQUESTED" || self.state == "OPEN") && now >= self.expires {
            "EXPIRED"
        } else {
            &self.state
        }
    }

    /// When the handshake reached its current state (expiry included).
    pub fn final_since(&self, now: i64) -> Option<i64> {
        match self.state_at(now) {
            "EXPIRED" => Some(self.expires),
            "REQUESTED" | "OPEN" => None,
            _ => Some(self.changed),
        }
    }

    /// Whether the handshake is still visible (AWS deletes final ones after 30 days).
    pub fn visible_at(&self, now: i64) -> bool {
        self.final_since(now).is_none_or(|t| now < t + HANDSHAKE_RETENTION)
    }

    pub fn arn(&self) -> String {
        format!(
            "arn:aws:organizations::{}:handshake/{}/{}/{}",
            self.management,
            self.org_id,
            self.action.to_ascii_lowercase(),
            self.id
        )
    }
}

impl OrgDoc {
    /// The next creation-order number for an OU or policy.
    pub fn next_seq(&self) -> u64 {
        let ous = self.ous.values().map(|o| o.seq);
        let policies = self.policies.values().map(|p| p.seq);
        ous.chain(policies).max().unwrap_or(0) + 1
    }

    pub fn arn(&self) -> String {
        format!("arn:aws:organizations::{}:organization/{}", self.management, self.id)
    }

    pub fn resource_policy_arn(&self, id: &str) -> String {
        format!("arn:aws:organizations::{}:resourcepolicy/{}/{id}", self.management, self.id)
    }

    pub fn root_arn(&self) -> String {
        format!("arn:aws:organizations::{}:root/{}/{}", self.management, self.id, self.root_id)
    }

    pub fn ou_arn(&self, ou: &str) -> String {
        format!("arn:aws:organizations::{}:ou/{}/{ou}", self.management, self.id)
    }

    pub fn account_arn(&self, account: &str) -> String {
        format!("arn:aws:organizations::{}:account/{}/{account}", self.management, self.id)
    }

    pub fn policy_arn(&self, id: &str, ty: &str) -> String {
        if aws_managed_type(id).is_some() {
            format!("arn:aws:organizations::aws:policy/{}/{id}", type_slug(ty))
        } else {
            format!("arn:aws:organizations::{}:policy/{}/{}/{id}", self.management, self.id, type_slug(ty))
        }
    }

    /// The ARN of a root, OU or account.
    pub fn target_arn(&self, target: &str) -> String {
        if target == self.root_id {
            self.root_arn()
        } else if target.starts_with("ou-") {
            self.ou_arn(target)
        } else {
            self.account_arn(target)
        }
    }

    pub fn type_enabled(&self, ty: &str) -> bool {
        self.enabled_types.iter().any(|t| t == ty)
    }

    /// Whether a root, OU or account exists.
    pub fn target_exists(&self, target: &str) -> bool {
        target == self.root_id || self.ous.contains_key(target) || self.accounts.contains_key(target)
    }

    /// The parent of an OU or account.
    pub fn parent_of(&self, child: &str) -> Option<&str> {
        self.ous.get(child).map(|o| o.parent.as_str()).or_else(|| self.accounts.get(child).map(|a| a.parent.as_str()))
    }

    /// The chain root → … → `target` (inclusive), or `None` for an unknown target.
    pub fn path(&self, target: &str) -> Option<Vec<String>> {
        let mut chain = vec![target.to_string()];
        let mut cur = target.to_string();
        while cur != self.root_id {
            let parent = self.parent_of(&cur)?.to_string();
            chain.push(parent.clone());
            cur = parent;
            if chain.len() > 16 {
                return None;
            }
        }
        chain.reverse();
        Some(chain)
    }

    /// AWS's path string for an entity: `o-…/r-…/ou-…/` (accounts end with `ACCOUNT/`).
    pub fn path_string(&self, target: &str) -> Option<String> {
        let chain = self.path(target)?;
        let mut s = format!("{}/", self.id);
        for t in chain {
            s.push_str(&t);
            s.push('/');
        }
        Some(s)
    }

    /// The OU path of an account as `aws:PrincipalOrgPaths` has it: the parent's path.
    pub fn org_path_of_account(&self, account: &str) -> Option<String> {
        let parent = self.accounts.get(account)?.parent.clone();
        self.path_string(&parent)
    }

    /// An OU's depth: 1 for an OU directly under the root.
    pub fn depth(&self, ou: &str) -> usize {
        self.path(ou).map(|p| p.len() - 1).unwrap_or(0)
    }

    /// The attached policies of `target` of one type.
    pub fn attached_of_type(&self, target: &str, ty: &str) -> Vec<String> {
        self.attachments
            .get(target)
            .map(|v| v.iter().filter(|p| self.policy_type(p).as_deref() == Some(ty)).cloned().collect())
            .unwrap_or_default()
    }

    pub fn policy_type(&self, id: &str) -> Option<String> {
        aws_managed_type(id).map(str::to_string).or_else(|| self.policies.get(id).map(|p| p.ty.clone()))
    }

    /// Every target: root, OUs, accounts.
    pub fn targets(&self) -> Vec<String> {
        let mut v = vec![self.root_id.clone()];
        v.extend(self.ous.keys().cloned());
        v.extend(self.accounts.keys().cloned());
        v
    }
}

const LOWER_DIGITS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn random_chars(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n).filter_map(|_| LOWER_DIGITS.get(rng.random_range(0..LOWER_DIGITS.len())).map(|&b| char::from(b))).collect()
}

pub fn new_org_id() -> String {
    format!("o-{}", random_chars(10))
}

pub fn new_root_id() -> String {
    format!("r-{}", random_chars(4))
}

pub fn new_ou_id(root_id: &str) -> String {
    format!("ou-{}-{}", root_id.trim_start_matches("r-"), random_chars(8))
}

pub fn new_policy_id() -> String {
    format!("p-{}", random_chars(8))
}

pub fn new_handshake_id() -> String {
    format!("h-{}", random_chars(32))
}

pub fn new_resource_policy_id() -> String {
    format!("rp-{}", random_chars(8))
}

pub fn new_request_id() -> String {
    format!("car-{}", random_chars(32))
}

/// A 12-digit account ID (callers check it is unused).
pub fn new_account_id() -> String {
    let mut rng = rand::rng();
    format!("{:012}", rng.random_range(100_000_000_000u64..1_000_000_000_000u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> OrgDoc {
        let mut d = OrgDoc {
            id: "o-abcdefghij".into(),
            management: "111111111111".into(),
            root_id: "r-ab12".into(),
            root_tags: vec![],
            enabled_types: vec![],
            ous: BTreeMap::new(),
            accounts: BTreeMap::new(),
            policies: BTreeMap::new(),
            attachments: BTreeMap::new(),
            create_requests: vec![],
            service_access: Default::default(),
            delegated_admins: Default::default(),
            feature_set: "ALL".into(),
            resource_policy: None,
            policy_changes: Default::default(),
        };
        d.ous.insert(
            "ou-ab12-aaaaaaaa".into(),
            OuRec { name: "a".into(), parent: "r-ab12".into(), tags: vec![], seq: 1 },
        );
        d.ous.insert(
            "ou-ab12-bbbbbbbb".into(),
            OuRec { name: "b".into(), parent: "ou-ab12-aaaaaaaa".into(), tags: vec![], seq: 2 },
        );
        d.accounts.insert(
            "222222222222".into(),
            MemberRec {
                name: "m".into(),
                email: "m@example.com".into(),
                parent: "ou-ab12-bbbbbbbb".into(),
                status: "ACTIVE".into(),
                joined_method: "CREATED".into(),
                joined: 0,
                tags: vec![],
            },
        );
        d
    }

    #[test]
    fn paths_and_depth() {
        let d = doc();
        assert_eq!(d.path("222222222222").unwrap(), ["r-ab12", "ou-ab12-aaaaaaaa", "ou-ab12-bbbbbbbb", "222222222222"]);
        assert_eq!(
            d.org_path_of_account("222222222222").unwrap(),
            "o-abcdefghij/r-ab12/ou-ab12-aaaaaaaa/ou-ab12-bbbbbbbb/"
        );
        assert_eq!(d.depth("ou-ab12-bbbbbbbb"), 2);
        assert_eq!(d.depth("ou-ab12-aaaaaaaa"), 1);
        assert!(d.path("333333333333").is_none());
        assert_eq!(d.target_arn("r-ab12"), "arn:aws:organizations::111111111111:root/o-abcdefghij/r-ab12");
        assert_eq!(
            d.policy_arn(FULL_AWS_ACCESS, SCP),
            "arn:aws:organizations::aws:policy/service_control_policy/p-FullAWSAccess"
        );
    }

    #[test]
    fn ids_have_aws_shapes() {
        assert!(new_org_id().len() == 12 && new_org_id().starts_with("o-"));
        let ou = new_ou_id("r-ab12");
        assert!(ou.starts_with("ou-ab12-") && ou.len() == 16);
        assert_eq!(new_account_id().len(), 12);
        assert_eq!(new_policy_id().len(), 10);
    }
}
