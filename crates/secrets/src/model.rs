//! Stored records. Values are never stored in plaintext: a version's value lives in [`ValueRec`]
//! as AES-256-GCM ciphertext under a data key that only KMS can decrypt.

use serde::{Deserialize, Serialize};

/// `key = {account}/{region}/{name}` → [`SecretRec`].
pub const SECRETS: &str = "secretsmanager.secrets";
/// `key = {secret arn}#{version id}` → [`ValueRec`].
pub const VALUES: &str = "secretsmanager.values";

pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";
pub const AWSPENDING: &str = "AWSPENDING";

/// AWS keeps at most this many versions; the oldest versions without labels go first.
pub const MAX_VERSIONS: usize = 100;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SecretRec {
    pub arn: String,
    pub name: String,
    pub account: String,
    pub region: String,
    #[serde(default)]
    pub description: Option<String>,
    /// As the caller gave it (`None` = the AWS managed key `aws/secretsmanager`).
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Milliseconds since the epoch.
    pub created: i64,
    pub last_changed: i64,
    #[serde(default)]
    pub last_accessed: Option<i64>,
    /// When DeleteSecret was called.
    #[serde(default)]
    pub deleted: Option<i64>,
    /// When the secret is purged.
    #[serde(default)]
    pub deletion_date: Option<i64>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// TagResource or UntagResource was called (DescribeSecret then lists `Tags`, even empty).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tagged: bool,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub rotation: Rotation,
    /// Oldest first.
    #[serde(default)]
    pub versions: Vec<VersionMeta>,
    /// On a primary secret: the Regions it is replicated to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<Replica>,
    /// On a replica: the primary's Region. A replica is stored as a stub (ARN, name, account,
    /// Region, primary Region); reads resolve it into a view of the primary (see `source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_region: Option<String>,
    /// On a view of a replica (never stored): the primary's ARN and Region, which own the values.
    #[serde(skip)]
    pub source: Option<(String, String)>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Replica {
    pub region: String,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// `InSync` or `Failed`.
    pub status: String,
    #[serde(default)]
    pub status_message: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Rotation {
    pub enabled: bool,
    #[serde(default)]
    pub lambda_arn: Option<String>,
    #[serde(default)]
    pub automatically_after_days: Option<i64>,
    #[serde(default)]
    pub schedule_expression: Option<String>,
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub last_rotated: Option<i64>,
    #[serde(default)]
    pub next_rotation: Option<i64>,
    /// The last rotation attempt that failed (cleared by a successful rotation).
    #[serde(default)]
    pub last_failure: Option<RotationFailure>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RotationFailure {
    pub at: i64,
    pub step: String,
    pub version_id: String,
    pub message: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct VersionMeta {
    pub id: String,
    pub stages: Vec<String>,
    pub created: i64,
    #[serde(default)]
    pub last_accessed: Option<i64>,
    /// The KMS key that encrypted the value's data key; `None` for a placeholder (RotateSecret's
    /// AWSPENDING version before the rotator's createSecret step stores a value).
    #[serde(default)]
    pub key_arn: Option<String>,
}

impl VersionMeta {
    pub fn has_value(&self) -> bool {
        self.key_arn.is_some()
    }
    pub fn has(&self, stage: &str) -> bool {
        self.stages.iter().any(|s| s == stage)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValueRec {
    pub key_arn: String,
    /// KMS ciphertext of the data key (base64).
    pub data_key: String,
    /// `nonce || AES-256-GCM ciphertext` of the value under the data key (base64).
    pub ciphertext: String,
    /// SecretBinary rather than SecretString.
    pub binary: bool,
}

impl SecretRec {
    pub fn key(&self) -> String {
        secret_key(&self.account, &self.region, &self.name)
    }
    pub fn version(&self, id: &str) -> Option<&VersionMeta> {
        self.versions.iter().find(|v| v.id == id)
    }
    pub fn version_mut(&mut self, id: &str) -> Option<&mut VersionMeta> {
        self.versions.iter_mut().find(|v| v.id == id)
    }
    pub fn with_stage(&self, stage: &str) -> Option<&VersionMeta> {
        self.versions.iter().find(|v| v.has(stage))
    }
    /// A view of a replica secret (read-only in its Region).
    pub fn is_replica(&self) -> bool {
        self.primary_region.is_some()
    }
    /// The ARN and Region whose values (and encryption context) this secret reads.
    pub fn value_owner(&self) -> (&str, &str) {
        match &self.source {
            Some((arn, region)) => (arn, region),
            None => (&self.arn, &self.region),
        }
    }
    pub fn is_deleted(&self) -> bool {
        self.deleted.is_some()
    }
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Attach `stage` to `to` and remove it from every other version, as AWS moves labels.
    /// Moving AWSCURRENT gives AWSPREVIOUS to the version that had AWSCURRENT.
    pub fn move_stage(&mut self, stage: &str, to: &str) {
        let previous_current = if stage == AWSCURRENT {
            self.with_stage(AWSCURRENT).map(|v| v.id.clone()).filter(|id| id != to)
        } else {
            None
        };
        for v in self.versions.iter_mut() {
            if v.id == to {
                if !v.has(stage) {
                    v.stages.push(stage.to_string());
                }
            } else {
                v.stages.retain(|s| s != stage);
            }
        }
        if let Some(prev) = previous_current {
            self.move_stage(AWSPREVIOUS, &prev);
            // The version AWSCURRENT left loses AWSPENDING too (recorded AWS responses: a version
            // labelled AWSCURRENT and AWSPENDING becomes AWSPREVIOUS alone once a new value is put).
            self.remove_stage(AWSPENDING, &prev);
        }
    }

    /// Remove `stage` from version `from`.
    pub fn remove_stage(&mut self, stage: &str, from: &str) {
        if let Some(v) = self.version_mut(from) {
            v.stages.retain(|s| s != stage);
        }
    }

    /// Versions beyond [`MAX_VERSIONS`] without labels, oldest first: to be deleted.
    pub fn prune_versions(&mut self) -> Vec<String> {
        let mut removed = Vec::new();
        while self.versions.len() > MAX_VERSIONS {
            match self.versions.iter().position(|v| v.stages.is_empty()) {
                Some(i) => removed.push(self.versions.remove(i).id),
                None => break,
            }
        }
        removed
    }
}

pub fn secret_key(account: &str, region: &str, name: &str) -> String {
    format!("{account}/{region}/{name}")
}

pub fn value_key(arn: &str, version_id: &str) -> String {
    format!("{arn}#{version_id}")
}

/// `v[key] = value` for an object `v` (what `IndexMut` does, without its panic on non-objects).
pub(crate) fn put(v: &mut serde_json::Value, key: &str, value: serde_json::Value) {
    if let Some(m) = v.as_object_mut() {
        m.insert(key.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: &str, stages: &[&str]) -> VersionMeta {
        VersionMeta { id: id.into(), stages: stages.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    fn stages(r: &SecretRec, id: &str) -> Vec<String> {
        let mut s = r.version(id).unwrap().stages.clone();
        s.sort();
        s
    }

    #[test]
    fn moving_current_makes_previous() {
        let mut r = SecretRec {
            versions: vec![v("a", &["AWSPREVIOUS"]), v("b", &["AWSCURRENT"]), v("c", &[])],
            ..Default::default()
        };
        r.move_stage(AWSCURRENT, "c");
        assert_eq!(stages(&r, "c"), vec!["AWSCURRENT"]);
        assert_eq!(stages(&r, "b"), vec!["AWSPREVIOUS"]);
        assert!(stages(&r, "a").is_empty());
        // Moving onto the holder is a no-op.
        r.move_stage(AWSCURRENT, "c");
        assert_eq!(stages(&r, "b"), vec!["AWSPREVIOUS"]);
        // Custom labels move alone.
        r.move_stage("blue", "a");
        r.move_stage("blue", "b");
        assert!(stages(&r, "a").is_empty());
        assert_eq!(stages(&r, "b"), vec!["AWSPREVIOUS", "blue"]);
    }

    #[test]
    fn pruning_keeps_labelled_versions() {
        let mut r = SecretRec::default();
        r.versions.push(v("cur", &["AWSCURRENT"]));
        for i in 0..MAX_VERSIONS + 5 {
            r.versions.push(v(&format!("old{i}"), &[]));
        }
        let removed = r.prune_versions();
        assert_eq!(removed.len(), 6);
        assert_eq!(removed[0], "old0");
        assert_eq!(r.versions.len(), MAX_VERSIONS);
        assert!(r.version("cur").is_some());
    }
}
