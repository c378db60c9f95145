//! Stored records. Key material is only ever stored sealed under the server's master key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::crypto::{KeySpec, KeyUsage};

/// `v[key] = value` for an object `v` (what `IndexMut` does, without its panic on non-objects).
pub(crate) fn put(v: &mut Value, key: &str, value: Value) {
    if let Some(m) = v.as_object_mut() {
        m.insert(key.to_string(), value);
    }
}

pub const KEYS: &str = "kms_keys";
pub const ALIASES: &str = "kms_aliases";
/// Last successful cryptographic use per key (GetKeyLastUsage), written at most once per
/// [`crate::core::USAGE_PERSIST_INTERVAL_MS`] per key.
pub const USAGE: &str = "kms_key_usage";
/// Custom key stores, by `account/region/id`.
pub const STORES: &str = "kms_custom_key_stores";

/// A custom key store (external key stores only: Rampart has no CloudHSM clusters).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoreRec {
    pub account: String,
    pub region: String,
    /// `cks-` and 17 hex digits.
    pub id: String,
    pub name: String,
    pub created: i64,
    /// `CONNECTED`, `DISCONNECTED`, `FAILED` (a connection is made while ConnectCustomKeyStore
    /// runs, so `CONNECTING` / `DISCONNECTING` are never stored).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// `PUBLIC_ENDPOINT` (or `VPC_ENDPOINT_SERVICE`, which Rampart never creates).
    pub connectivity: String,
    pub uri_endpoint: String,
    pub uri_path: String,
    pub access_key_id: String,
    /// The raw secret access key sealed under the master key (base64).
    pub sealed_secret: String,
}

impl StoreRec {
    pub fn store_key(&self) -> String {
        store_store_key(&self.account, &self.region, &self.id)
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "CustomKeyStoreId": self.id,
            "CustomKeyStoreName": self.name,
            "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
            "ConnectionState": self.state,
            "CreationDate": secs(self.created),
            "XksProxyConfiguration": {
                "Connectivity": self.connectivity,
                "AccessKeyId": self.access_key_id,
                "UriEndpoint": self.uri_endpoint,
                "UriPath": self.uri_path,
            },
        });
        if let Some(c) = &self.error_code {
            put(&mut v, "ConnectionErrorCode", json!(c));
        }
        v
    }
}

pub fn store_store_key(account: &str, region: &str, id: &str) -> String {
    format!("{account}/{region}/{id}")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
    /// A key with `EXTERNAL` origin whose (current) key material is not imported.
    PendingImport,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
            KeyState::PendingImport => "PendingImport",
        }
    }
}

/// One version of a key's material (rotation adds versions; every version still decrypts).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MaterialVersion {
    /// AWS's `KeyMaterialId`: 64 hex characters.
    pub material_id: String,
    /// Milliseconds since the epoch.
    pub created: i64,
    /// `AUTOMATIC` / `ON_DEMAND` for rotations; `None` for the original material.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_type: Option<String>,
    /// The material sealed by the master key (base64); empty when imported material was deleted
    /// or expired (the version stays, so its ciphertexts decrypt again after a re-import).
    pub sealed: String,
    /// Imported material: `KEY_MATERIAL_EXPIRES` / `KEY_MATERIAL_DOES_NOT_EXPIRE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_model: Option<String>,
    /// Imported material: when it expires (milliseconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<i64>,
    /// Imported material: `KeyMaterialDescription`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Imported for on-demand rotation (`ImportType=NEW_KEY_MATERIAL` on a key that has
    /// material): not used to encrypt until RotateKeyOnDemand. Always the last version.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending_rotation: bool,
}

impl MaterialVersion {
    pub fn present(&self) -> bool {
        !self.sealed.is_empty()
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GrantConstraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GrantRec {
    pub grant_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub created: i64,
    pub grantee: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring: Option<String>,
    pub operations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<GrantConstraints>,
    /// The account that created the grant (`arn:aws:iam::A:root`).
    pub issuing_account: String,
    /// The secret part of the grant token.
    pub token_secret: String,
}

impl GrantRec {
    pub fn to_json(&self, key_id: &str) -> Value {
        let mut v = json!({
            "KeyId": key_id,
            "GrantId": self.grant_id,
            "CreationDate": secs(self.created),
            "GranteePrincipal": self.grantee,
            "IssuingAccount": self.issuing_account,
            "Operations": self.operations,
        });
        if let Some(n) = &self.name {
            put(&mut v, "Name", json!(n));
        }
        if let Some(r) = &self.retiring {
            put(&mut v, "RetiringPrincipal", json!(r));
        }
        if let Some(c) = &self.constraints {
            let mut cv = json!({});
            if let Some(s) = &c.subset {
                put(&mut cv, "EncryptionContextSubset", json!(s));
            }
            if let Some(e) = &c.equals {
                put(&mut cv, "EncryptionContextEquals", json!(e));
            }
            put(&mut v, "Constraints", cv);
        }
        v
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A KMS key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyRec {
    pub account: String,
    pub region: String,
    pub key_id: String,
    pub created: i64,
    pub description: String,
    pub spec: KeySpec,
    pub usage: KeyUsage,
    /// `CUSTOMER` or `AWS`.
    pub manager: String,
    pub state: KeyState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_window_days: Option<u32>,
    pub policy: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub rotation_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_period_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_rotation_start: Option<i64>,
    pub versions: Vec<MaterialVersion>,
    /// SPKI DER (base64) for asymmetric keys: public, so not sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(default)]
    pub grants: Vec<GrantRec>,
    /// A multi-Region key (`mrk-` ID): copies with the same key ID and key material in other
    /// Regions of the account; `Some(true)` on the primary, `Some(false)` on replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_region_primary: Option<bool>,
    /// `EXTERNAL` for keys made for imported key material; `None` is `AWS_KMS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// `Origin=EXTERNAL_KEY_STORE`: the custom key store and the proxy's key ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_key_store_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xks_key_id: Option<String>,
}

pub fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

impl KeyRec {
    pub fn origin(&self) -> &str {
        self.origin.as_deref().unwrap_or("AWS_KMS")
    }

    pub fn is_external(&self) -> bool {
        self.origin.as_deref() == Some("EXTERNAL")
    }

    /// The index of the version that encrypts: the newest one not pending rotation.
    pub fn current_index(&self) -> Option<usize> {
        self.versions.iter().rposition(|v| !v.pending_rotation)
    }

    pub fn current(&self) -> Option<&MaterialVersion> {
        self.current_index().and_then(|i| self.versions.get(i))
    }

    /// Every version that must be present for the key to leave PendingImport.
    pub fn all_imported(&self) -> bool {
        !self.versions.is_empty() && self.versions.iter().filter(|v| !v.pending_rotation).all(|v| v.present())
    }

    pub fn arn(&self) -> String {
        key_arn(&self.region, &self.account, &self.key_id)
    }

    pub fn store_key(&self) -> String {
        key_store_key(&self.account, &self.region, &self.key_id)
    }

    pub fn metadata(&self) -> Value {
        let mut m = json!({
            "AWSAccountId": self.account,
            "KeyId": self.key_id,
            "Arn": self.arn(),
            "CreationDate": secs(self.created),
            "Enabled": self.state == KeyState::Enabled,
            "Description": self.description,
            "KeyUsage": self.usage.as_str(),
            "KeyState": self.state.as_str(),
            "Origin": self.origin(),
            "KeyManager": self.manager,
            "CustomerMasterKeySpec": self.spec.as_str(),
            "KeySpec": self.spec.as_str(),
            "MultiRegion": self.multi_region_primary.is_some(),
        });
        let enc = self.spec.encryption_algorithms(self.usage);
        if !enc.is_empty() {
            put(&mut m, "EncryptionAlgorithms", json!(enc));
        }
        let sig = self.spec.signing_algorithms(self.usage);
        if !sig.is_empty() {
            put(&mut m, "SigningAlgorithms", json!(sig));
        }
        let mac = self.spec.mac_algorithms();
        if !mac.is_empty() {
            put(&mut m, "MacAlgorithms", json!(mac));
        }
        let agreement = self.spec.key_agreement_algorithms(self.usage);
        if !agreement.is_empty() {
            put(&mut m, "KeyAgreementAlgorithms", json!(agreement));
        }
        let encapsulation = self.spec.encapsulation_algorithms();
        if !encapsulation.is_empty() {
            put(&mut m, "EncapsulationAlgorithms", json!(encapsulation));
        }
        if self.is_external() {
            if let Some(v) = self.current().filter(|v| v.present()) {
                if let Some(e) = &v.expiration_model {
                    put(&mut m, "ExpirationModel", json!(e));
                }
                if let Some(t) = v.valid_to {
                    put(&mut m, "ValidTo", json!(secs(t)));
                }
            }
        }
        if let (Some(store), Some(xks)) = (&self.custom_key_store_id, &self.xks_key_id) {
            put(&mut m, "CustomKeyStoreId", json!(store));
            put(&mut m, "XksKeyConfiguration", json!({"Id": xks}));
        }
        if let Some(d) = self.deletion_date {
            put(&mut m, "DeletionDate", json!(secs(d)));
        }
        if let Some(w) = self.pending_window_days {
            put(&mut m, "PendingDeletionWindowInDays", json!(w));
        }
        if self.spec == KeySpec::SYMMETRIC_DEFAULT {
            if let Some(v) = self.current() {
                put(&mut m, "CurrentKeyMaterialId", json!(v.material_id));
            }
        }
        m
    }
}

impl KeyRec {
    /// `PRIMARY` / `REPLICA` for multi-Region keys.
    pub fn multi_region_type(&self) -> Option<&'static str> {
        self.multi_region_primary.map(|p| if p { "PRIMARY" } else { "REPLICA" })
    }
}

pub fn key_arn(region: &str, account: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:key/{key_id}")
}

pub fn alias_arn(region: &str, account: &str, alias: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:{alias}")
}

pub fn key_store_key(account: &str, region: &str, key_id: &str) -> String {
    // Every use of a key builds this: `join` sizes and copies once, without `format!`'s machinery.
    [account, region, key_id].join("/")
}

pub fn alias_store_key(account: &str, region: &str, alias: &str) -> String {
    format!("{account}/{region}/{alias}")
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AliasRec {
    pub name: String,
    pub target_key_id: String,
    pub created: i64,
    pub updated: i64,
}
