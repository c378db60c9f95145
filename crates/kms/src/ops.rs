//! The KMS operations: what each needs authorized ([`Kms::plan`]) and what it does ([`Kms::exec`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use rampart_policy::{Policy, PolicyType};
use rampart_service::{AuthzCheck, ContextKey, ContextValue, Output, RequestContext, ResourcePolicy};
use rampart_store::{transact, ReadExt, TransactionExt};
use rand::RngCore;
use serde_json::{json, Value};

use crate::core::{context_keys, default_key_policy, pending, s, Kms, Loaded};
use crate::crypto::{self, KeySpec, KeyUsage};
use crate::error::{KmsError, Result};
use crate::input::{invalid, invalid_value, missing, paginate, In};
use crate::model::*;

/// The operations Rampart's KMS implements (others answer UnknownOperationException).
pub const OPERATIONS: &[&str] = &[
    "CancelKeyDeletion",
    "CreateAlias",
    "CreateGrant",
    "CreateKey",
    "Decrypt",
    "DeleteAlias",
    "DescribeKey",
    "DisableKey",
    "DisableKeyRotation",
    "EnableKey",
    "EnableKeyRotation",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GenerateRandom",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "GetPublicKey",
    "ListAliases",
    "ListGrants",
    "ListKeyPolicies",
    "ListKeyRotations",
    "ListKeys",
    "ListResourceTags",
    "ListRetirableGrants",
    "PutKeyPolicy",
    "ReEncrypt",
    "ReplicateKey",
    "RetireGrant",
    "RevokeGrant",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "Sign",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateKeyDescription",
    "UpdatePrimaryRegion",
    "Verify",
    "VerifyMac",
];

const GRANT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
];

const MAX_PLAINTEXT: usize = 4096;
const MAX_CIPHERTEXT: usize = 6144;
const MAX_POLICY: usize = 32_768;
const MAX_GRANTS_PER_KEY: usize = 50_000;
const MAX_TAGS: usize = 50;
const MAX_ON_DEMAND_ROTATIONS: usize = 10;

fn dry_run(i: &In<'_>) -> Result<()> {
    if i.bool("DryRun")? {
        return Err(KmsError::DryRun("The request would have succeeded, but the DryRun option is set.".into()));
    }
    Ok(())
}

fn wrong_usage(key: &Loaded, op: &str) -> KmsError {
    KmsError::InvalidKeyUsage(format!(
        "{} key usage is {} which is not valid for {op}.",
        key.arn,
        key.rec.usage.as_str()
    ))
}

fn grant_tokens(i: &In<'_>) -> Result<()> {
    let tokens = i.str_list("GrantTokens")?;
    if tokens.len() > 10 {
        return Err(invalid("GrantTokens", "Member must have length less than or equal to 10"));
    }
    for t in &tokens {
        if t.is_empty() || t.len() > 8192 || parse_grant_token(t).is_none() {
            return Err(KmsError::InvalidGrantToken("Grant token is invalid".into()));
        }
    }
    Ok(())
}

/// `(account, region, key id, grant id, secret)` from a grant token.
fn parse_grant_token(t: &str) -> Option<(String, String, String, String, String)> {
    let raw = B64URL.decode(t).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let parts: Vec<&str> = s.split('/').collect();
    match parts.as_slice() {
        [a, r, k, g, sec] => Some((a.to_string(), r.to_string(), k.to_string(), g.to_string(), sec.to_string())),
        _ => None,
    }
}

/// `Tags` of CreateKey, ReplicateKey and TagResource. Planning reads it before authorization, so
/// the count is checked first (a key has at most [`MAX_TAGS`] tags, and no request can add more):
/// a huge list costs nothing before it is refused, and the per-tag work below is bounded.
fn tags_input(i: &In<'_>) -> Result<Vec<Tag>> {
    let Some(v) = i.0.get("Tags").filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let arr = v.as_array().ok_or_else(|| KmsError::Serialization("Member Tags must be a list".into()))?;
    if arr.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    let mut out: Vec<Tag> = Vec::with_capacity(arr.len());
    for t in arr {
        let ti = In(t);
        let key = ti.req_str_len("TagKey", 1, 128)?.to_string();
        let value = ti.str_len("TagValue", 0, 256)?.ok_or_else(|| missing("TagValue"))?.to_string();
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(KmsError::Tag("Tags beginning with aws: are reserved.".into()));
        }
        out.retain(|x| x.key != key);
        out.push(Tag { key, value });
    }
    Ok(out)
}

fn too_many_tags() -> KmsError {
    KmsError::Tag(format!("A KMS key can have at most {MAX_TAGS} tags."))
}

fn tag_context(tags: &[Tag]) -> Vec<(ContextKey, ContextValue)> {
    let mut v: Vec<(ContextKey, ContextValue)> =
        tags.iter().map(|t| (format!("aws:RequestTag/{}", t.key).into(), s(&t.value))).collect();
    if !tags.is_empty() {
        v.push(("aws:TagKeys".into(), ContextValue::List(tags.iter().map(|t| t.key.clone()).collect())));
    }
    v
}

/// AWS's checks on an `AliasName`, in its order: the model's pattern (`^[a-zA-Z0-9:/_-]+$`,
/// ValidationException naming the value), then the service's rules — the `alias/` prefix
/// ("Invalid identifier"), the reserved `alias/aws/` prefix (NotAuthorizedException, no message),
/// and `:` (allowed by the pattern, refused in a name).
fn validate_alias_name(name: &str) -> Result<()> {
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-')) {
        return Err(invalid_value(
            "AliasName",
            name,
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
        ));
    }
    if !name.starts_with("alias/") || name.len() == "alias/".len() {
        return Err(KmsError::Validation("Invalid identifier".into()));
    }
    if name.starts_with("alias/aws/") {
        return Err(KmsError::NotAuthorized(String::new()));
    }
    if name.contains(':') {
        return Err(KmsError::Validation(format!("{name} contains invalid characters for an alias")));
    }
    Ok(())
}

/// The model's enums of Sign/Verify (checked before anything else, as AWS's model validation is).
const SIGNING_ALGORITHMS: &str = "[RSASSA_PSS_SHA_256, RSASSA_PSS_SHA_384, RSASSA_PSS_SHA_512, RSASSA_PKCS1_V1_5_SHA_256, RSASSA_PKCS1_V1_5_SHA_384, RSASSA_PKCS1_V1_5_SHA_512, ECDSA_SHA_256, ECDSA_SHA_384, ECDSA_SHA_512, SM2DSA, ML_DSA_SHAKE_256, ED25519_SHA_512, ED25519_PH_SHA_512]";

fn signing_enums(i: &In<'_>) -> Result<()> {
    if let Some(a) = i.str("SigningAlgorithm")? {
        if !SIGNING_ALGORITHMS.trim_start_matches('[').trim_end_matches(']').split(", ").any(|x| x == a) {
            return Err(invalid_value(
                "SigningAlgorithm",
                a,
                &format!("Member must satisfy enum value set: {SIGNING_ALGORITHMS}"),
            ));
        }
    }
    if let Some(m) = i.str("MessageType")? {
        if !matches!(m, "RAW" | "DIGEST" | "EXTERNAL_MU") {
            return Err(invalid_value(
                "MessageType",
                m,
                "Member must satisfy enum value set: [RAW, DIGEST, EXTERNAL_MU]",
            ));
        }
    }
    Ok(())
}

/// Operations whose `KeyId` is a key ID or key ARN only (AWS's API reference: "Specify the key ID
/// or key ARN of the KMS key"); an alias there is "Invalid keyId".
const KEY_ONLY_OPERATIONS: &[&str] = &[
    "CancelKeyDeletion",
    "CreateGrant",
    "DisableKey",
    "DisableKeyRotation",
    "EnableKey",
    "EnableKeyRotation",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "ListAliases",
    "ListGrants",
    "ListKeyPolicies",
    "ListKeyRotations",
    "ListResourceTags",
    "PutKeyPolicy",
    "ReplicateKey",
    "RetireGrant",
    "RevokeGrant",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "TagResource",
    "UntagResource",
    "UpdateKeyDescription",
    "UpdatePrimaryRegion",
];

/// `alias/…` or `arn:…:alias/…`.
fn names_alias(key_id: &str) -> bool {
    key_id.starts_with("alias/") || (key_id.starts_with("arn:") && key_id.contains(":alias/"))
}

/// Refuse an alias in the `KeyId` of an operation that takes a key ID or key ARN only.
fn key_only(op: &str, i: &In<'_>) -> Result<()> {
    if KEY_ONLY_OPERATIONS.contains(&op) {
        if let Some(id) = i.str("KeyId")? {
            if names_alias(id) {
                return Err(KmsError::NotFound(format!("Invalid keyId {id}")));
            }
        }
    }
    Ok(())
}

fn caller_matches(ctx: &RequestContext, principal: &str) -> bool {
    let c = &ctx.caller;
    if principal == c.arn || principal == c.account_id && c.is_root() {
        return true;
    }
    if let rampart_service::CallerKind::AssumedRole { role_arn, .. } = &c.kind {
        if principal == role_arn {
            return true;
        }
    }
    c.is_root() && principal == format!("arn:aws:iam::{}:root", c.account_id)
}

fn b64(b: &[u8]) -> Value {
    Value::String(B64.encode(b))
}

/// A JSON object written member by member, in the sorted order serde_json's maps write (the
/// same bytes a `Value` answer had).
pub(crate) struct Answer(String);

impl Answer {
    pub(crate) fn new() -> Self {
        let mut s = String::with_capacity(256);
        s.push('{');
        Answer(s)
    }

    fn name(&mut self, name: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(name);
        self.0.push_str("\":");
    }

    pub(crate) fn str(&mut self, name: &str, value: &str) {
        self.name(name);
        // serde_json escapes only quotes, backslashes and control characters.
        if !value.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            self.0.push('"');
            self.0.push_str(value);
            self.0.push('"');
        } else {
            self.0.push_str(&Value::from(value).to_string());
        }
    }

    pub(crate) fn b64(&mut self, name: &str, bytes: &[u8]) {
        self.name(name);
        self.0.push('"');
        B64.encode_string(bytes, &mut self.0);
        self.0.push('"');
    }

    pub(crate) fn finish(mut self) -> Output {
        self.0.push('}');
        Output::JsonText(self.0)
    }
}

/// The keys a call's plan loaded, by the member that named them (`source` for the key a
/// ciphertext or `SourceKeyId` names): the call then runs on what it authorized, each key read
/// once per call.
#[derive(Default)]
pub(crate) struct Planned {
    keys: Vec<(&'static str, Arc<Loaded>)>,
    /// `EncryptionContext` and the decoded `CiphertextBlob`, as the plan read them.
    encryption_context: Option<BTreeMap<String, String>>,
    blob: Option<Vec<u8>>,
}

impl Planned {
    /// The request's `EncryptionContext`, as planned or read now.
    fn encryption_context<'p>(&'p self, i: &In<'_>) -> Result<Cow<'p, BTreeMap<String, String>>> {
        match &self.encryption_context {
            Some(ec) => Ok(Cow::Borrowed(ec)),
            None => Ok(Cow::Owned(i.map("EncryptionContext")?)),
        }
    }

    /// The request's decoded `CiphertextBlob`, as planned or decoded now.
    fn blob<'p>(&'p self, i: &In<'_>) -> Result<Cow<'p, [u8]>> {
        match &self.blob {
            Some(b) => Ok(Cow::Borrowed(b)),
            None => Ok(Cow::Owned(i.req_blob("CiphertextBlob", 1, MAX_CIPHERTEXT)?)),
        }
    }

    fn get(&self, member: &str) -> Option<Arc<Loaded>> {
        self.keys.iter().find(|(m, _)| *m == member).map(|(_, k)| k.clone())
    }

    fn put(&mut self, member: &'static str, key: &Arc<Loaded>) {
        self.keys.push((member, key.clone()));
    }
}

impl Kms {
    /// A key named by a required member.
    fn key_param(&self, ctx: &RequestContext, i: &In<'_>, member: &str) -> Result<Arc<Loaded>> {
        self.resolve(ctx, i.key_id(member)?)
    }

    /// [`Kms::key_param`], taking the key the plan loaded when there is one.
    fn planned_key(&self, ctx: &RequestContext, i: &In<'_>, member: &str, planned: &Planned) -> Result<Arc<Loaded>> {
        match planned.get(member) {
            Some(k) => Ok(k),
            None => self.key_param(ctx, i, member),
        }
    }

    /// [`Kms::source_key`], taking the key the plan loaded when there is one.
    fn planned_source(
        &self,
        ctx: &RequestContext,
        key_id: Option<&str>,
        blob: &[u8],
        planned: &Planned,
    ) -> Result<Arc<Loaded>> {
        match planned.get("source") {
            Some(k) => Ok(k),
            None => self.source_key(ctx, key_id, blob),
        }
    }

    /// The key for Decrypt/ReEncrypt's source: the named key, else the one the blob names.
    fn source_key(&self, ctx: &RequestContext, key_id: Option<&str>, blob: &[u8]) -> Result<Arc<Loaded>> {
        match key_id {
            Some(id) => self.resolve(ctx, id),
            None => self.key_of_blob(ctx, blob),
        }
    }

    /// What `op` needs authorized; the keys it loaded to say so go to `planned`.
    pub(crate) fn plan(
        &self,
        ctx: &RequestContext,
        op: &str,
        input: &Value,
        planned: &mut Planned,
    ) -> Result<Vec<AuthzCheck>> {
        let i = In(input);
        key_only(op, &i)?;
        let action = ["kms:", op].concat();
        let mut key = |member: &'static str, extra: Vec<(ContextKey, ContextValue)>| -> Result<Vec<AuthzCheck>> {
            let k = self.key_param(ctx, &i, member)?;
            planned.put(member, &k);
            Ok(vec![self.key_check(ctx, &k, &action, extra)])
        };
        match op {
            "CreateKey" => {
                let tags = tags_input(&i)?;
                let mut check = AuthzCheck::new(&action, "*");
                check.context = tag_context(&tags);
                check.context.push(("kms:CallerAccount".into(), s(&ctx.caller.account_id)));
                if let Some(spec) = i.str("KeySpec")?.or(i.str("CustomerMasterKeySpec")?) {
                    check.context.push(("kms:KeySpec".into(), s(spec)));
                }
                if let Some(u) = i.str("KeyUsage")? {
                    check.context.push(("kms:KeyUsage".into(), s(u)));
                }
                check.context.push(("kms:KeyOrigin".into(), s(i.str("Origin")?.unwrap_or("AWS_KMS"))));
                check
                    .context
                    .push(("kms:MultiRegion".into(), s(if i.bool("MultiRegion")? { "true" } else { "false" })));
                check.context.push((
                    "kms:BypassPolicyLockoutSafetyCheck".into(),
                    s(if i.bool("BypassPolicyLockoutSafetyCheck")? { "true" } else { "false" }),
                ));
                Ok(vec![check])
            }
            "ListKeys" | "ListAliases" | "GenerateRandom" | "ListRetirableGrants" => {
                let mut c = AuthzCheck::new(&action, "*");
                c.context.push(("kms:CallerAccount".into(), s(&ctx.caller.account_id)));
                Ok(vec![c])
            }
            "CreateAlias" | "DeleteAlias" | "UpdateAlias" => {
                let name = i.req_str_len("AliasName", 1, 256)?;
                validate_alias_name(name)?;
                let alias_res = alias_arn(&ctx.region, &ctx.caller.account_id, name);
                let mut checks = vec![AuthzCheck::new(&action, alias_res)];
                if op != "CreateAlias" {
                    let a = self
                        .alias(&ctx.caller.account_id, &ctx.region, name)?
                        .ok_or_else(|| alias_not_found(ctx, name))?;
                    let k = self.resolve(ctx, &a.target_key_id)?;
                    checks.push(self.key_check(ctx, &k, &action, Vec::new()));
                }
                if op != "DeleteAlias" {
                    let k = self.alias_target(ctx, &i)?;
                    checks.push(self.key_check(ctx, &k, &action, Vec::new()));
                }
                Ok(checks)
            }
            "Encrypt" | "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => {
                let ec = i.map("EncryptionContext")?;
                let mut extra = context_keys("kms:", &ec);
                extra.push((
                    "kms:EncryptionAlgorithm".into(),
                    s(i.str("EncryptionAlgorithm")?.unwrap_or("SYMMETRIC_DEFAULT")),
                ));
                let checks = key("KeyId", extra)?;
                planned.encryption_context = Some(ec);
                Ok(checks)
            }
            "GenerateDataKeyPair" | "GenerateDataKeyPairWithoutPlaintext" => {
                let ec = i.map("EncryptionContext")?;
                let mut extra = context_keys("kms:", &ec);
                extra.push(("kms:EncryptionAlgorithm".into(), s("SYMMETRIC_DEFAULT")));
                if let Some(spec) = i.str("KeyPairSpec")? {
                    extra.push(("kms:DataKeyPairSpec".into(), s(spec)));
                }
                key("KeyId", extra)
            }
            "Decrypt" => {
                let blob = i.req_blob("CiphertextBlob", 1, MAX_CIPHERTEXT)?;
                let k = self.source_key(ctx, i.str("KeyId")?, &blob)?;
                planned.put("source", &k);
                let ec = i.map("EncryptionContext")?;
                let mut extra = context_keys("kms:", &ec);
                extra.push((
                    "kms:EncryptionAlgorithm".into(),
                    s(i.str("EncryptionAlgorithm")?.unwrap_or("SYMMETRIC_DEFAULT")),
                ));
                let checks = vec![self.key_check(ctx, &k, &action, extra)];
                planned.encryption_context = Some(ec);
                planned.blob = Some(blob);
                Ok(checks)
            }
            "ReEncrypt" => {
                let blob = i.req_blob("CiphertextBlob", 1, MAX_CIPHERTEXT)?;
                let src = self.source_key(ctx, i.str("SourceKeyId")?, &blob)?;
                let dst = self.key_param(ctx, &i, "DestinationKeyId")?;
                planned.put("source", &src);
                planned.put("DestinationKeyId", &dst);
                let same = s(if src.arn == dst.arn { "true" } else { "false" });
                let mut from = context_keys("kms:", &i.map("SourceEncryptionContext")?);
                from.push(("kms:ReEncryptOnSameKey".into(), same.clone()));
                from.push((
                    "kms:EncryptionAlgorithm".into(),
                    s(i.str("SourceEncryptionAlgorithm")?.unwrap_or("SYMMETRIC_DEFAULT")),
                ));
                let mut to = context_keys("kms:", &i.map("DestinationEncryptionContext")?);
                to.push(("kms:ReEncryptOnSameKey".into(), same));
                to.push((
                    "kms:EncryptionAlgorithm".into(),
                    s(i.str("DestinationEncryptionAlgorithm")?.unwrap_or("SYMMETRIC_DEFAULT")),
                ));
                Ok(vec![
                    self.key_check(ctx, &src, "kms:ReEncryptFrom", from),
                    self.key_check(ctx, &dst, "kms:ReEncryptTo", to),
                ])
            }
            "Sign" | "Verify" => {
                signing_enums(&i)?;
                let mut extra = Vec::new();
                if let Some(a) = i.str("SigningAlgorithm")? {
                    extra.push(("kms:SigningAlgorithm".into(), s(a)));
                }
                extra.push(("kms:MessageType".into(), s(i.str("MessageType")?.unwrap_or("RAW"))));
                key("KeyId", extra)
            }
            "GenerateMac" | "VerifyMac" => {
                let mut extra = Vec::new();
                if let Some(a) = i.str("MacAlgorithm")? {
                    extra.push(("kms:MacAlgorithm".into(), s(a)));
                }
                key("KeyId", extra)
            }
            "ScheduleKeyDeletion" => {
                let mut extra = Vec::new();
                if let Some(d) = i.int("PendingWindowInDays")? {
                    extra.push(("kms:ScheduleKeyDeletionPendingWindowInDays".into(), s(&d.to_string())));
                }
                key("KeyId", extra)
            }
            "EnableKeyRotation" => {
                let mut extra = Vec::new();
                if let Some(d) = i.int("RotationPeriodInDays")? {
                    extra.push(("kms:RotationPeriodInDays".into(), s(&d.to_string())));
                }
                key("KeyId", extra)
            }
            "PutKeyPolicy" => key(
                "KeyId",
                vec![(
                    "kms:BypassPolicyLockoutSafetyCheck".into(),
                    s(if i.bool("BypassPolicyLockoutSafetyCheck")? { "true" } else { "false" }),
                )],
            ),
            "TagResource" => key("KeyId", tag_context(&tags_input(&i)?)),
            "UntagResource" => {
                let keys = i.str_list("TagKeys")?;
                key("KeyId", vec![("aws:TagKeys".into(), ContextValue::List(keys))])
            }
            "CreateGrant" => {
                let ops = i.str_list("Operations")?;
                let mut extra = vec![
                    ("kms:GrantOperations".into(), ContextValue::List(ops)),
                    ("kms:GrantIsForAWSResource".into(), s("false")),
                ];
                if let Some(g) = i.str("GranteePrincipal")? {
                    extra.push(("kms:GranteePrincipal".into(), s(g)));
                }
                if let Some(r) = i.str("RetiringPrincipal")? {
                    extra.push(("kms:RetiringPrincipal".into(), s(r)));
                }
                if let Some(c) = input.get("Constraints").filter(|c| c.is_object()) {
                    let types: Vec<String> = ["EncryptionContextSubset", "EncryptionContextEquals"]
                        .iter()
                        .filter(|t| c.get(**t).is_some_and(|v| !v.is_null()))
                        .map(|t| t.to_string())
                        .collect();
                    if !types.is_empty() {
                        extra.push(("kms:GrantConstraintType".into(), ContextValue::List(types)));
                    }
                }
                key("KeyId", extra)
            }
            "RetireGrant" => {
                // Decided by the grant itself: its retiring principal, its grantee when it allows
                // RetireGrant, or the issuing account's root. A policy alone cannot allow it.
                let (k, grant) = self.grant_for_retire(ctx, &i)?;
                let allowed = grant.retiring.as_deref().is_some_and(|r| caller_matches(ctx, r))
                    || (grant.operations.iter().any(|o| o == "RetireGrant") && caller_matches(ctx, &grant.grantee))
                    || (ctx.caller.is_root() && grant.issuing_account == ctx.caller.arn);
                if !allowed {
                    return Err(KmsError::AccessDenied(format!(
                        "User: {} is not authorized to perform: kms:RetireGrant on resource: {} because no grant allows it",
                        ctx.caller.arn, k.arn
                    )));
                }
                Ok(Vec::new())
            }
            "DescribeKey" | "GetPublicKey" => {
                grant_tokens(&i)?;
                key("KeyId", Vec::new())
            }
            "ReplicateKey" => {
                // AWS: kms:ReplicateKey on the primary key, kms:CreateKey (IAM) for the replica.
                let region = replica_region(&i, "ReplicaRegion")?;
                let tags = tags_input(&i)?;
                let mut checks = key("KeyId", vec![("kms:ReplicaRegion".into(), s(region))])?;
                let mut create = AuthzCheck::new("kms:CreateKey", "*");
                create.context = tag_context(&tags);
                create.context.push(("kms:CallerAccount".into(), s(&ctx.caller.account_id)));
                create.context.push(("kms:MultiRegion".into(), s("true")));
                create.context.push(("kms:MultiRegionKeyType".into(), s("REPLICA")));
                checks.push(create);
                Ok(checks)
            }
            "UpdatePrimaryRegion" => {
                // AWS: kms:UpdatePrimaryRegion on the primary key and on the replica that becomes primary.
                let region = replica_region(&i, "PrimaryRegion")?;
                let extra: Vec<(ContextKey, ContextValue)> = vec![("kms:PrimaryRegion".into(), s(region))];
                let k = self.key_param(ctx, &i, "KeyId")?;
                let mut checks = vec![self.key_check(ctx, &k, &action, extra.clone())];
                if let Some(r) = self.load(&k.rec.account, region, &k.rec.key_id)? {
                    checks.push(self.key_check(ctx, &r, &action, extra));
                }
                Ok(checks)
            }
            _ => key("KeyId", Vec::new()),
        }
    }

    fn alias_target(&self, ctx: &RequestContext, i: &In<'_>) -> Result<Arc<Loaded>> {
        let target = i.key_id("TargetKeyId")?;
        if names_alias(target) {
            return Err(KmsError::Validation("Aliases must refer to keys. Not aliases".into()));
        }
        let k = self.resolve(ctx, target)?;
        if k.rec.account != ctx.caller.account_id {
            return Err(KmsError::NotFound(format!("Key '{}' does not exist", k.arn)));
        }
        Ok(k)
    }

    /// Run `op` (authorized), on the keys its plan loaded. The data-plane operations every
    /// envelope-encryption client calls write their answer directly; the others build a `Value`.
    pub(crate) fn exec(&self, ctx: &RequestContext, op: &str, input: &Value, planned: &Planned) -> Result<Output> {
        let i = In(input);
        match op {
            "Encrypt" => {
                key_only(op, &i)?;
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                let pt = i.req_blob("Plaintext", 1, MAX_PLAINTEXT)?;
                let ec = planned.encryption_context(&i)?;
                grant_tokens(&i)?;
                k.require_enabled()?;
                if k.rec.usage != KeyUsage::ENCRYPT_DECRYPT {
                    return Err(wrong_usage(&k, "Encrypt"));
                }
                let alg = self.encryption_algorithm(&k, i.str("EncryptionAlgorithm")?)?;
                dry_run(&i)?;
                let blob = self.encrypt_under(&k, alg, &pt, &ec)?;
                let mut out = Answer::new();
                out.b64("CiphertextBlob", &blob);
                out.str("EncryptionAlgorithm", alg);
                out.str("KeyId", &k.arn);
                Ok(out.finish())
            }
            "Decrypt" => {
                key_only(op, &i)?;
                let blob = planned.blob(&i)?;
                let ec = planned.encryption_context(&i)?;
                grant_tokens(&i)?;
                let k = self.planned_source(ctx, i.str("KeyId")?, &blob, planned)?;
                let (pt, alg, material) = self.decrypt_with(&k, &blob, &ec, i.str("EncryptionAlgorithm")?)?;
                dry_run(&i)?;
                let mut out = Answer::new();
                out.str("EncryptionAlgorithm", alg);
                out.str("KeyId", &k.arn);
                if let Some(m) = &material {
                    out.str("KeyMaterialId", m);
                }
                out.b64("Plaintext", &pt);
                Ok(out.finish())
            }
            "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => {
                key_only(op, &i)?;
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                let ec = planned.encryption_context(&i)?;
                let n = data_key_len(&i)?;
                grant_tokens(&i)?;
                if i.has("Recipient") {
                    return Err(KmsError::Unsupported(
                        "Recipient (Nitro Enclaves attestation) is not supported.".into(),
                    ));
                }
                let (pt, blob) = self.data_key(&k, n, &ec, op)?;
                dry_run(&i)?;
                let mut out = Answer::new();
                out.b64("CiphertextBlob", &blob);
                out.str("KeyId", &k.arn);
                if let Some(v) = k.rec.versions.last() {
                    out.str("KeyMaterialId", &v.material_id);
                }
                if op == "GenerateDataKey" {
                    out.b64("Plaintext", &pt);
                }
                Ok(out.finish())
            }
            _ => Ok(Output::Json(self.exec_value(ctx, op, input, planned)?)),
        }
    }

    /// [`Kms::exec`] for the operations answered with a `Value`.
    fn exec_value(&self, ctx: &RequestContext, op: &str, input: &Value, planned: &Planned) -> Result<Value> {
        let i = In(input);
        key_only(op, &i)?;
        match op {
            "CreateKey" => self.create_key(ctx, &i),
            "DescribeKey" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                Ok(json!({"KeyMetadata": self.key_metadata(&k.rec)?}))
            }
            "ListKeys" => {
                let (limit, marker) = i.page(100)?;
                let keys: Vec<Value> = self
                    .list_keys(&ctx.caller.account_id, &ctx.region)?
                    .iter()
                    .map(|k| json!({"KeyId": k.rec.key_id, "KeyArn": k.arn}))
                    .collect();
                let (page, next) = paginate(&keys, limit, marker)?;
                Ok(page_json("Keys", page, next))
            }
            "UpdateKeyDescription" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                let d = i.str_len("Description", 0, 8192)?.ok_or_else(|| missing("Description"))?.to_string();
                k.require_not_pending()?;
                self.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
                    r.description = d;
                    Ok(())
                })?;
                Ok(json!({}))
            }
            "EnableKey" | "DisableKey" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                k.require_not_pending()?;
                let state = if op == "EnableKey" { KeyState::Enabled } else { KeyState::Disabled };
                self.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
                    if r.state == KeyState::PendingDeletion {
                        return Err(pending(&r.arn()));
                    }
                    r.state = state;
                    Ok(())
                })?;
                Ok(json!({}))
            }
            "ScheduleKeyDeletion" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                let days = i.int_range("PendingWindowInDays", 7, 30)?.unwrap_or(30);
                if k.rec.manager == "AWS" {
                    return Err(KmsError::Unsupported(format!(
                        "{} is an AWS managed key and cannot be deleted.",
                        k.arn
                    )));
                }
                let now = self.now_ms();
                let deletion = now + days * 86_400_000;
                self.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
                    if r.state == KeyState::PendingDeletion {
                        return Err(pending(&r.arn()));
                    }
                    r.state = KeyState::PendingDeletion;
                    r.deletion_date = Some(deletion);
                    r.pending_window_days = Some(days as u32);
                    Ok(())
                })?;
                Ok(json!({
                    "KeyId": k.arn,
                    "DeletionDate": secs(deletion),
                    "KeyState": "PendingDeletion",
                    "PendingWindowInDays": days,
                }))
            }
            "CancelKeyDeletion" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                self.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
                    if r.state != KeyState::PendingDeletion {
                        return Err(KmsError::InvalidState(format!("{} is not pending deletion.", r.arn())));
                    }
                    r.state = KeyState::Disabled;
                    r.deletion_date = None;
                    r.pending_window_days = None;
                    Ok(())
                })?;
                Ok(json!({"KeyId": k.arn}))
            }
            "CreateAlias" | "UpdateAlias" => {
                let name = i.req_str_len("AliasName", 1, 256)?;
                validate_alias_name(name)?;
                let k = self.alias_target(ctx, &i)?;
                k.require_not_pending()?;
                let now = self.now_ms();
                let sk = alias_store_key(&ctx.caller.account_id, &ctx.region, name);
                let create = op == "CreateAlias";
                transact(self.store.as_ref(), |tx| -> Result<()> {
                    let existing: Option<AliasRec> = tx.get_json(ALIASES, &sk)?;
                    let rec = match (existing, create) {
                        (Some(_), true) => {
                            return Err(KmsError::AlreadyExists(format!(
                                "An alias with the name {} already exists",
                                alias_arn(&ctx.region, &ctx.caller.account_id, name)
                            )))
                        }
                        (None, true) => AliasRec {
                            name: name.to_string(),
                            target_key_id: k.rec.key_id.clone(),
                            created: now,
                            updated: now,
                        },
                        (Some(mut a), false) => {
                            a.target_key_id = k.rec.key_id.clone();
                            a.updated = now;
                            a
                        }
                        (None, false) => return Err(alias_not_found(ctx, name)),
                    };
                    tx.put_json(ALIASES, &sk, &rec)?;
                    Ok(())
                })?;
                Ok(json!({}))
            }
            "DeleteAlias" => {
                let name = i.req_str_len("AliasName", 1, 256)?;
                validate_alias_name(name)?;
                let sk = alias_store_key(&ctx.caller.account_id, &ctx.region, name);
                transact(self.store.as_ref(), |tx| -> Result<()> {
                    if !tx.delete(ALIASES, &sk)? {
                        return Err(alias_not_found(ctx, name));
                    }
                    Ok(())
                })?;
                Ok(json!({}))
            }
            "ListAliases" => {
                let (limit, marker) = i.page(50)?;
                let filter = match i.str_len("KeyId", 1, 2048)? {
                    Some(id) => Some(self.resolve(ctx, id)?.rec.key_id.clone()),
                    None => None,
                };
                let prefix = format!("{}/{}/", ctx.caller.account_id, ctx.region);
                let aliases: Vec<Value> = self
                    .store
                    .scan_json::<AliasRec>(ALIASES, &prefix)?
                    .into_iter()
                    .filter(|(_, a)| filter.as_ref().is_none_or(|f| *f == a.target_key_id))
                    .map(|(_, a)| {
                        json!({
                            "AliasName": a.name,
                            "AliasArn": alias_arn(&ctx.region, &ctx.caller.account_id, &a.name),
                            "TargetKeyId": a.target_key_id,
                            "CreationDate": secs(a.created),
                            "LastUpdatedDate": secs(a.updated),
                        })
                    })
                    .collect();
                let (page, next) = paginate(&aliases, limit, marker)?;
                Ok(page_json("Aliases", page, next))
            }
            "ReEncrypt" => {
                let blob = i.req_blob("CiphertextBlob", 1, MAX_CIPHERTEXT)?;
                grant_tokens(&i)?;
                let src = self.planned_source(ctx, i.str("SourceKeyId")?, &blob, planned)?;
                let dst = self.planned_key(ctx, &i, "DestinationKeyId", planned)?;
                let (pt, src_alg, _) = self.decrypt_with(
                    &src,
                    &blob,
                    &i.map("SourceEncryptionContext")?,
                    i.str("SourceEncryptionAlgorithm")?,
                )?;
                dst.require_enabled()?;
                if dst.rec.usage != KeyUsage::ENCRYPT_DECRYPT {
                    return Err(wrong_usage(&dst, "ReEncrypt"));
                }
                let dst_alg = self.encryption_algorithm(&dst, i.str("DestinationEncryptionAlgorithm")?)?;
                dry_run(&i)?;
                let out = self.encrypt_under(&dst, dst_alg, &pt, &i.map("DestinationEncryptionContext")?)?;
                Ok(json!({
                    "CiphertextBlob": b64(&out),
                    "SourceKeyId": src.arn,
                    "KeyId": dst.arn,
                    "SourceEncryptionAlgorithm": src_alg,
                    "DestinationEncryptionAlgorithm": dst_alg,
                }))
            }
            "GenerateDataKeyPair" | "GenerateDataKeyPairWithoutPlaintext" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                let ec = i.map("EncryptionContext")?;
                let spec_name = i.req_str("KeyPairSpec")?;
                let spec = KeySpec::parse(spec_name).filter(|s| s.is_asymmetric()).ok_or_else(|| {
                    invalid("KeyPairSpec", "Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1]")
                })?;
                grant_tokens(&i)?;
                if i.has("Recipient") {
                    return Err(KmsError::Unsupported(
                        "Recipient (Nitro Enclaves attestation) is not supported.".into(),
                    ));
                }
                k.require_enabled()?;
                if k.rec.spec != KeySpec::SYMMETRIC_DEFAULT {
                    return Err(wrong_usage(&k, op));
                }
                dry_run(&i)?;
                let (private, public) = crypto::generate(spec)?;
                let blob = self.encrypt_symmetric(&k, &private, &ec)?;
                let mut out = json!({
                    "PrivateKeyCiphertextBlob": b64(&blob),
                    "PublicKey": b64(&public.unwrap_or_default()),
                    "KeyId": k.arn,
                    "KeyPairSpec": spec.as_str(),
                });
                if op == "GenerateDataKeyPair" {
                    put(&mut out, "PrivateKeyPlaintext", b64(&private));
                }
                Ok(out)
            }
            "GenerateRandom" => {
                let n = i.int_range("NumberOfBytes", 1, 1024)?.ok_or_else(|| missing("NumberOfBytes"))?;
                if i.has("CustomKeyStoreId") {
                    return Err(KmsError::Unsupported("Custom key stores are not supported.".into()));
                }
                let mut b = zeroize::Zeroizing::new(vec![0u8; n as usize]);
                rand::rng().fill_bytes(&mut b);
                Ok(json!({"Plaintext": b64(&b)}))
            }
            "Sign" | "Verify" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                let msg = i.req_blob("Message", 1, MAX_PLAINTEXT)?;
                let alg = i.req_str("SigningAlgorithm")?;
                let mt = i.str("MessageType")?.unwrap_or("RAW");
                signing_enums(&i)?;
                let sig = if op == "Verify" { Some(i.req_blob("Signature", 1, 6144)?) } else { None };
                grant_tokens(&i)?;
                k.require_enabled()?;
                if k.rec.usage != KeyUsage::SIGN_VERIFY {
                    return Err(wrong_usage(&k, op));
                }
                if !k.rec.spec.signing_algorithms(k.rec.usage).contains(&alg) {
                    return Err(KmsError::InvalidKeyUsage(format!(
                        "Algorithm {alg} is incompatible with key spec {}.",
                        k.rec.spec.as_str()
                    )));
                }
                let digest = match mt {
                    "RAW" => crypto::signing_digest(alg, &msg)?,
                    "DIGEST" => {
                        if Some(msg.len()) != crypto::signing_digest_len(alg) {
                            return Err(KmsError::Validation(format!("Digest is invalid length for algorithm {alg}.")));
                        }
                        msg
                    }
                    _ => {
                        return Err(KmsError::Unsupported(format!(
                            "MessageType {mt} is not supported for signing algorithm {alg}."
                        )))
                    }
                };
                dry_run(&i)?;
                match sig {
                    None => {
                        let sig = crypto::sign(k.rec.spec, k.current_material()?, alg, &digest)?;
                        Ok(json!({"KeyId": k.arn, "Signature": b64(&sig), "SigningAlgorithm": alg}))
                    }
                    Some(sig) => {
                        crypto::verify(k.rec.spec, &k.public_key()?, alg, &digest, &sig)?;
                        Ok(json!({"KeyId": k.arn, "SignatureValid": true, "SigningAlgorithm": alg}))
                    }
                }
            }
            "GenerateMac" | "VerifyMac" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                let msg = i.req_blob("Message", 1, MAX_PLAINTEXT)?;
                let alg = i.req_str("MacAlgorithm")?;
                let tag = if op == "VerifyMac" { Some(i.req_blob("Mac", 1, 6144)?) } else { None };
                grant_tokens(&i)?;
                k.require_enabled()?;
                if k.rec.usage != KeyUsage::GENERATE_VERIFY_MAC {
                    return Err(wrong_usage(&k, op));
                }
                if !k.rec.spec.mac_algorithms().contains(&alg) {
                    return Err(KmsError::InvalidKeyUsage(format!(
                        "Algorithm {alg} is incompatible with key spec {}.",
                        k.rec.spec.as_str()
                    )));
                }
                dry_run(&i)?;
                match tag {
                    None => {
                        let mac = crypto::mac(alg, k.current_material()?, &msg)?;
                        Ok(json!({"Mac": b64(&mac), "MacAlgorithm": alg, "KeyId": k.arn}))
                    }
                    Some(tag) => {
                        crypto::mac_verify(alg, k.current_material()?, &msg, &tag)
                            .map_err(|_| KmsError::InvalidMac(String::new()))?;
                        Ok(json!({"KeyId": k.arn, "MacValid": true, "MacAlgorithm": alg}))
                    }
                }
            }
            "GetPublicKey" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                k.require_enabled()?;
                if !k.rec.spec.is_asymmetric() {
                    return Err(KmsError::Unsupported(format!(
                        "{} key usage is {} which is not valid for GetPublicKey.",
                        k.arn,
                        k.rec.spec.as_str()
                    )));
                }
                let mut out = json!({
                    "KeyId": k.arn,
                    "PublicKey": b64(&k.public_key()?),
                    "CustomerMasterKeySpec": k.rec.spec.as_str(),
                    "KeySpec": k.rec.spec.as_str(),
                    "KeyUsage": k.rec.usage.as_str(),
                });
                let enc = k.rec.spec.encryption_algorithms(k.rec.usage);
                if !enc.is_empty() {
                    put(&mut out, "EncryptionAlgorithms", json!(enc));
                }
                let sig = k.rec.spec.signing_algorithms(k.rec.usage);
                if !sig.is_empty() {
                    put(&mut out, "SigningAlgorithms", json!(sig));
                }
                Ok(out)
            }
            "GetKeyPolicy" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                policy_name(&i)?;
                Ok(json!({"Policy": k.rec.policy, "PolicyName": "default"}))
            }
            "ListKeyPolicies" => {
                let _k = self.planned_key(ctx, &i, "KeyId", planned)?;
                i.page(100)?;
                Ok(json!({"PolicyNames": ["default"], "Truncated": false}))
            }
            "PutKeyPolicy" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                policy_name(&i)?;
                let policy = i.req_str_len("Policy", 1, MAX_POLICY)?;
                // AWS's key-state table: PutKeyPolicy works in every state, pending deletion included.
                self.validate_policy(ctx, policy, i.bool("BypassPolicyLockoutSafetyCheck")?, Some(&k))?;
                let policy = policy.to_string();
                self.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
                    r.policy = policy;
                    Ok(())
                })?;
                Ok(json!({}))
            }
            "EnableKeyRotation" | "DisableKeyRotation" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                let period = if op == "EnableKeyRotation" {
                    i.int_range("RotationPeriodInDays", 90, 2560)?.unwrap_or(365)
                } else {
                    0
                };
                k.require_enabled()?;
                self.require_rotatable(&k)?;
                let now = self.now_ms();
                let rec = self.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
                    if op == "EnableKeyRotation" {
                        r.rotation_enabled = true;
                        r.rotation_period_days = Some(period as u32);
                        r.next_rotation = Some(now + period * 86_400_000);
                    } else {
                        r.rotation_enabled = false;
                        r.next_rotation = None;
                    }
                    Ok(r.clone())
                })?;
                if rec.multi_region_primary == Some(true) {
                    self.sync_rotation_settings(&rec)?;
                }
                Ok(json!({}))
            }
            "GetKeyRotationStatus" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                // AWS's key-state table: GetKeyRotationStatus works on a key pending deletion.
                self.require_rotatable_spec(&k)?;
                let mut out = json!({"KeyRotationEnabled": k.rec.rotation_enabled, "KeyId": k.arn});
                if k.rec.rotation_enabled {
                    put(&mut out, "RotationPeriodInDays", json!(k.rec.rotation_period_days.unwrap_or(365)));
                    if let Some(n) = k.rec.next_rotation {
                        put(&mut out, "NextRotationDate", json!(secs(n)));
                    }
                }
                Ok(out)
            }
            "RotateKeyOnDemand" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                k.require_enabled()?;
                self.require_rotatable(&k)?;
                let on_demand =
                    k.rec.versions.iter().filter(|v| v.rotation_type.as_deref() == Some("ON_DEMAND")).count();
                if on_demand >= MAX_ON_DEMAND_ROTATIONS {
                    return Err(KmsError::LimitExceeded(format!(
                        "The on-demand rotations limit has been reached for {}.",
                        k.arn
                    )));
                }
                self.rotate(&k.rec.account, &k.rec.region, &k.rec.key_id, "ON_DEMAND")?;
                Ok(json!({"KeyId": k.arn}))
            }
            "ListKeyRotations" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                let (limit, marker) = i.page(100)?;
                k.require_not_pending()?;
                self.require_rotatable_spec(&k)?;
                let rotations: Vec<Value> = k
                    .rec
                    .versions
                    .iter()
                    .filter_map(|v| {
                        v.rotation_type.as_ref().map(|t| {
                            json!({
                                "KeyId": k.arn,
                                "KeyMaterialId": v.material_id,
                                "RotationDate": secs(v.created),
                                "RotationType": t,
                                "KeyMaterialState": if Some(v.material_id.as_str()) == k.rec.versions.last().map(|l| l.material_id.as_str()) { "CURRENT" } else { "NON_CURRENT" },
                            })
                        })
                    })
                    .collect();
                let (page, next) = paginate(&rotations, limit, marker)?;
                Ok(page_json("Rotations", page, next))
            }
            "TagResource" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                if !i.has("Tags") {
                    return Err(missing("Tags"));
                }
                let tags = tags_input(&i)?;
                k.require_not_pending()?;
                self.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
                    for t in tags {
                        r.tags.retain(|x| x.key != t.key);
                        r.tags.push(t);
                    }
                    if r.tags.len() > MAX_TAGS {
                        return Err(KmsError::Tag(format!("A KMS key can have at most {MAX_TAGS} tags.")));
                    }
                    Ok(())
                })?;
                Ok(json!({}))
            }
            "UntagResource" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                if !i.has("TagKeys") {
                    return Err(missing("TagKeys"));
                }
                let keys = i.str_list("TagKeys")?;
                k.require_not_pending()?;
                self.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
                    r.tags.retain(|t| !keys.contains(&t.key));
                    Ok(())
                })?;
                Ok(json!({}))
            }
            "ListResourceTags" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                let (limit, marker) = i.page(50)?;
                let tags: Vec<Value> =
                    k.rec.tags.iter().map(|t| json!({"TagKey": t.key, "TagValue": t.value})).collect();
                let (page, next) = paginate(&tags, limit, marker)?;
                Ok(page_json("Tags", page, next))
            }
            "CreateGrant" => self.create_grant(ctx, &i),
            "ReplicateKey" => self.replicate_key(ctx, &i),
            "UpdatePrimaryRegion" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                let region = replica_region(&i, "PrimaryRegion")?.to_string();
                if k.rec.multi_region_primary != Some(true) {
                    return Err(not_primary(&k));
                }
                if region == k.rec.region {
                    return Ok(json!({}));
                }
                let (account, key_id) = (k.rec.account.clone(), k.rec.key_id.clone());
                transact(self.store.as_ref(), |tx| -> Result<()> {
                    let replica_sk = key_store_key(&account, &region, &key_id);
                    let mut replica: KeyRec = tx.get_json(KEYS, &replica_sk)?.ok_or_else(|| {
                        KmsError::NotFound(format!("Key '{}' does not exist", key_arn(&region, &account, &key_id)))
                    })?;
                    let mut primary: KeyRec = tx
                        .get_json(KEYS, &k.rec.store_key())?
                        .ok_or_else(|| KmsError::NotFound(format!("Key '{}' does not exist", k.arn)))?;
                    if replica.state == KeyState::PendingDeletion {
                        return Err(pending(&replica.arn()));
                    }
                    replica.multi_region_primary = Some(true);
                    primary.multi_region_primary = Some(false);
                    tx.put_json(KEYS, &replica_sk, &replica)?;
                    tx.put_json(KEYS, &primary.store_key(), &primary)?;
                    Ok(())
                })?;
                Ok(json!({}))
            }
            "ListGrants" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                let (limit, marker) = i.page(50)?;
                let gid = i.str_len("GrantId", 1, 128)?;
                let grantee = i.str_len("GranteePrincipal", 1, 256)?;
                let grants: Vec<Value> = k
                    .rec
                    .grants
                    .iter()
                    .filter(|g| gid.is_none_or(|x| x == g.grant_id) && grantee.is_none_or(|x| x == g.grantee))
                    .map(|g| g.to_json(&k.arn))
                    .collect();
                let (page, next) = paginate(&grants, limit, marker)?;
                Ok(page_json("Grants", page, next))
            }
            "ListRetirableGrants" => {
                let principal = i.req_str_len("RetiringPrincipal", 1, 256)?;
                let (limit, marker) = i.page(50)?;
                let mut grants = Vec::new();
                for k in self.all_keys_in_region(&ctx.region)? {
                    for g in &k.rec.grants {
                        if g.retiring.as_deref() == Some(principal) {
                            grants.push(g.to_json(&k.arn));
                        }
                    }
                }
                let (page, next) = paginate(&grants, limit, marker)?;
                Ok(page_json("Grants", page, next))
            }
            "RetireGrant" => {
                let (k, grant) = self.grant_for_retire(ctx, &i)?;
                dry_run(&i)?;
                self.remove_grant(&k, &grant.grant_id)?;
                Ok(json!({}))
            }
            "RevokeGrant" => {
                let k = self.planned_key(ctx, &i, "KeyId", planned)?;
                let gid = i.req_str_len("GrantId", 1, 128)?;
                if !valid_grant_id(gid) {
                    return Err(KmsError::InvalidGrantId(format!("Grant ID {gid} is not valid.")));
                }
                dry_run(&i)?;
                self.remove_grant(&k, gid)?;
                Ok(json!({}))
            }
            _ => Err(KmsError::Unsupported(format!("{op} is not supported"))),
        }
    }

    fn require_rotatable_spec(&self, k: &Loaded) -> Result<()> {
        if k.rec.spec != KeySpec::SYMMETRIC_DEFAULT {
            return Err(KmsError::Unsupported(format!(
                "{} key spec {} does not support automatic key rotation.",
                k.arn,
                k.rec.spec.as_str()
            )));
        }
        Ok(())
    }

    fn require_rotatable(&self, k: &Loaded) -> Result<()> {
        self.require_rotatable_spec(k)?;
        if k.rec.manager == "AWS" {
            return Err(KmsError::Unsupported(format!("{} is an AWS managed key; AWS rotates it every year.", k.arn)));
        }
        if k.rec.multi_region_primary == Some(false) {
            return Err(KmsError::Unsupported(format!(
                "{} is a multi-Region replica key; its rotation is managed on its primary key.",
                k.arn
            )));
        }
        Ok(())
    }

    fn encryption_algorithm<'a>(&self, k: &Loaded, requested: Option<&'a str>) -> Result<&'a str> {
        let algs = k.rec.spec.encryption_algorithms(k.rec.usage);
        let alg = requested.unwrap_or("SYMMETRIC_DEFAULT");
        if !algs.contains(&alg) {
            return Err(KmsError::InvalidKeyUsage(format!(
                "Algorithm {alg} is incompatible with key spec {}.",
                k.rec.spec.as_str()
            )));
        }
        Ok(alg)
    }

    /// Decrypt with a key: `(plaintext, algorithm, key material id)`.
    fn decrypt_with(
        &self,
        k: &Loaded,
        blob: &[u8],
        ec: &BTreeMap<String, String>,
        algorithm: Option<&str>,
    ) -> Result<Opened> {
        k.require_enabled()?;
        if k.rec.usage != KeyUsage::ENCRYPT_DECRYPT {
            return Err(wrong_usage(k, "Decrypt"));
        }
        let alg = self.encryption_algorithm(k, algorithm)?;
        if alg == "SYMMETRIC_DEFAULT" {
            let (pt, material) = self.decrypt_symmetric(k, blob, ec)?;
            Ok((pt, "SYMMETRIC_DEFAULT", Some(material)))
        } else {
            let pt = crypto::rsa_decrypt(k.current_material()?, alg, blob)?;
            let name = if alg == "RSAES_OAEP_SHA_1" { "RSAES_OAEP_SHA_1" } else { "RSAES_OAEP_SHA_256" };
            Ok((pt, name, None))
        }
    }

    /// `plaintext` encrypted under `k` with `algorithm` (checked against the key by
    /// [`Kms::encryption_algorithm`]): a symmetric blob bound to `context`, or RSAES-OAEP.
    fn encrypt_under(
        &self,
        k: &Loaded,
        algorithm: &str,
        plaintext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>> {
        if algorithm == "SYMMETRIC_DEFAULT" {
            return self.encrypt_symmetric(k, plaintext, context);
        }
        if plaintext.len() > crypto::rsa_max_plaintext(k.rec.spec, algorithm) {
            return Err(KmsError::Validation(format!(
                "Plaintext is too long for the {algorithm} encryption algorithm with a {} key.",
                k.rec.spec.as_str()
            )));
        }
        Ok(crypto::rsa_encrypt(&k.public_key()?, algorithm, plaintext)?)
    }

    /// A data key of `n` bytes and its ciphertext under `k`.
    pub(crate) fn data_key(
        &self,
        k: &Loaded,
        n: usize,
        ec: &BTreeMap<String, String>,
        op: &str,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>)> {
        k.require_enabled()?;
        if k.rec.spec != KeySpec::SYMMETRIC_DEFAULT {
            return Err(wrong_usage(k, op));
        }
        let mut pt = zeroize::Zeroizing::new(vec![0u8; n]);
        rand::rng().fill_bytes(&mut pt);
        let blob = self.encrypt_symmetric(k, &pt, ec)?;
        Ok((pt, blob))
    }

    /// Parse, validate and (unless bypassed) run the lockout safety check on a key policy.
    fn validate_policy(&self, ctx: &RequestContext, policy: &str, bypass: bool, key: Option<&Loaded>) -> Result<()> {
        Policy::parse(policy, PolicyType::Resource).map_err(|e| KmsError::MalformedPolicy(e.message))?;
        if bypass {
            return Ok(());
        }
        let (resource, account) = match key {
            Some(k) => (k.arn.clone(), k.rec.account.clone()),
            None => (key_arn(&ctx.region, &ctx.caller.account_id, "new-key"), ctx.caller.account_id.clone()),
        };
        let check = AuthzCheck {
            action: "kms:PutKeyPolicy".into(),
            resource,
            resource_account: Some(account),
            resource_policy: Some(ResourcePolicy::new("new key policy", policy, true)),
            context: vec![
                ("kms:CallerAccount".into(), s(&ctx.caller.account_id)),
                ("kms:BypassPolicyLockoutSafetyCheck".into(), s("false")),
            ],
        };
        if self.authorizer.check(ctx, "kms", check).is_err() {
            return Err(KmsError::MalformedPolicy(
                "The new key policy will not allow you to update the key policy in the future.".into(),
            ));
        }
        Ok(())
    }

    fn create_key(&self, ctx: &RequestContext, i: &In<'_>) -> Result<Value> {
        let description = i.str_len("Description", 0, 8192)?.unwrap_or("").to_string();
        let spec_name = match (i.str("KeySpec")?, i.str("CustomerMasterKeySpec")?) {
            (Some(_), Some(_)) => {
                return Err(KmsError::Validation(
                    "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec parameter is deprecated. Use KeySpec parameter instead.".into(),
                ))
            }
            (Some(s), None) | (None, Some(s)) => s,
            (None, None) => "SYMMETRIC_DEFAULT",
        };
        let spec = KeySpec::parse(spec_name).ok_or_else(|| {
            invalid_value("KeySpec", spec_name, "Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1, SYMMETRIC_DEFAULT, HMAC_224, HMAC_256, HMAC_384, HMAC_512]")
        })?;
        let usage = match i.str("KeyUsage")? {
            None => {
                *spec.usages().first().ok_or_else(|| KmsError::Internal(format!("{spec_name} has no key usage")))?
            }
            Some(u) => {
                let usage = KeyUsage::parse(u).ok_or_else(|| {
                    invalid_value(
                        "KeyUsage",
                        u,
                        "Member must satisfy enum value set: [SIGN_VERIFY, ENCRYPT_DECRYPT, GENERATE_VERIFY_MAC]",
                    )
                })?;
                if !spec.usages().contains(&usage) {
                    return Err(KmsError::Validation(format!(
                        "KeyUsage {} is not compatible with KeySpec {}",
                        usage.as_str(),
                        spec.as_str()
                    )));
                }
                usage
            }
        };
        match i.str("Origin")? {
            None | Some("AWS_KMS") => {}
            Some(o @ ("EXTERNAL" | "AWS_CLOUDHSM" | "EXTERNAL_KEY_STORE")) => {
                return Err(KmsError::Unsupported(format!("Origin {o} is not supported by Rampart.")))
            }
            Some(o) => {
                return Err(invalid_value(
                    "Origin",
                    o,
                    "Member must satisfy enum value set: [EXTERNAL, AWS_CLOUDHSM, AWS_KMS, EXTERNAL_KEY_STORE]",
                ))
            }
        }
        if i.has("CustomKeyStoreId") || i.has("XksKeyId") {
            return Err(KmsError::Unsupported("Custom key stores are not supported by Rampart.".into()));
        }
        let tags = tags_input(i)?;
        if tags.len() > MAX_TAGS {
            return Err(KmsError::Tag(format!("A KMS key can have at most {MAX_TAGS} tags.")));
        }
        let policy = match i.str_len("Policy", 1, MAX_POLICY)? {
            Some(p) => {
                self.validate_policy(ctx, p, i.bool("BypassPolicyLockoutSafetyCheck")?, None)?;
                p.to_string()
            }
            None => default_key_policy(&ctx.caller.account_id),
        };
        let rec = self.build_key(
            &ctx.caller.account_id,
            &ctx.region,
            spec,
            usage,
            description,
            policy,
            "CUSTOMER",
            tags,
            i.bool("MultiRegion")?,
        )?;
        self.insert_key(&rec)?;
        Ok(json!({"KeyMetadata": self.key_metadata(&rec)?}))
    }

    fn create_grant(&self, ctx: &RequestContext, i: &In<'_>) -> Result<Value> {
        let k = self.key_param(ctx, i, "KeyId")?;
        if i.has("GranteeServicePrincipal") || i.has("RetiringServicePrincipal") {
            return Err(KmsError::Unsupported("Service principals in grants are not supported by Rampart.".into()));
        }
        let grantee = i.req_str_len("GranteePrincipal", 1, 256)?.to_string();
        let retiring = i.str_len("RetiringPrincipal", 1, 256)?.map(str::to_string);
        for p in std::iter::once(&grantee).chain(retiring.iter()) {
            if !valid_principal(p) {
                return Err(KmsError::InvalidArn(format!("{p} is not a valid principal ARN.")));
            }
        }
        let mut operations = i.str_list("Operations")?;
        if operations.is_empty() {
            return Err(invalid("Operations", "Member must have length greater than or equal to 1"));
        }
        for o in &operations {
            if !GRANT_OPERATIONS.contains(&o.as_str()) {
                return Err(invalid(
                    "Operations",
                    &format!("Member must satisfy enum value set: {GRANT_OPERATIONS:?}"),
                ));
            }
        }
        operations.dedup();
        let constraints = match i.0.get("Constraints").filter(|c| !c.is_null()) {
            None => None,
            Some(c) => {
                let ci = In(c);
                let subset =
                    if ci.has("EncryptionContextSubset") { Some(ci.map("EncryptionContextSubset")?) } else { None };
                let equals =
                    if ci.has("EncryptionContextEquals") { Some(ci.map("EncryptionContextEquals")?) } else { None };
                if subset.is_some() && equals.is_some() {
                    return Err(KmsError::Validation(
                        "Grant constraints can have either EncryptionContextSubset or EncryptionContextEquals, not both."
                            .into(),
                    ));
                }
                (subset.is_some() || equals.is_some()).then_some(GrantConstraints { subset, equals })
            }
        };
        let name = i.str_len("Name", 1, 256)?.map(str::to_string);
        grant_tokens(i)?;
        k.require_enabled()?;
        dry_run(i)?;
        // Same name and parameters: the same grant (AWS's idempotency for retried CreateGrant).
        if let Some(n) = &name {
            if let Some(g) = k.rec.grants.iter().find(|g| {
                g.name.as_ref() == Some(n)
                    && g.grantee == grantee
                    && g.retiring == retiring
                    && g.operations == operations
                    && g.constraints == constraints
            }) {
                return Ok(json!({"GrantToken": grant_token(&k.rec, g), "GrantId": g.grant_id}));
            }
        }
        let mut id = [0u8; 32];
        rand::rng().fill_bytes(&mut id);
        let mut secret = [0u8; 16];
        rand::rng().fill_bytes(&mut secret);
        let grant = GrantRec {
            grant_id: hex::encode(id),
            name,
            created: self.now_ms(),
            grantee,
            retiring,
            operations,
            constraints,
            issuing_account: format!("arn:aws:iam::{}:root", ctx.caller.account_id),
            token_secret: hex::encode(secret),
        };
        let token = grant_token(&k.rec, &grant);
        let gid = grant.grant_id.clone();
        self.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
            if r.grants.len() >= MAX_GRANTS_PER_KEY {
                return Err(KmsError::LimitExceeded(format!("The grant limit for {} has been reached.", r.arn())));
            }
            r.grants.push(grant);
            Ok(())
        })?;
        Ok(json!({"GrantToken": token, "GrantId": gid}))
    }

    /// ReplicateKey: a copy of a multi-Region primary key in another Region of the account, with
    /// the same key ID, key material (every version), key spec, usage and rotation; its own
    /// policy, description, tags, grants, aliases and state.
    fn replicate_key(&self, ctx: &RequestContext, i: &In<'_>) -> Result<Value> {
        let k = self.key_param(ctx, i, "KeyId")?;
        let region = replica_region(i, "ReplicaRegion")?.to_string();
        let description = i.str_len("Description", 0, 8192)?.unwrap_or("").to_string();
        let tags = tags_input(i)?;
        if tags.len() > MAX_TAGS {
            return Err(KmsError::Tag(format!("A KMS key can have at most {MAX_TAGS} tags.")));
        }
        if k.rec.multi_region_primary != Some(true) {
            return Err(not_primary(&k));
        }
        k.require_not_pending()?;
        if region == k.rec.region {
            return Err(KmsError::Validation(format!(
                "The replica Region {region} is the Region of the primary key {}.",
                k.arn
            )));
        }
        let policy = match i.str_len("Policy", 1, MAX_POLICY)? {
            Some(p) => {
                self.validate_policy(ctx, p, i.bool("BypassPolicyLockoutSafetyCheck")?, None)?;
                p.to_string()
            }
            None => default_key_policy(&k.rec.account),
        };
        let now = self.now_ms();
        let replica_arn = key_arn(&region, &k.rec.account, &k.rec.key_id);
        let versions = k
            .rec
            .versions
            .iter()
            .zip(k.materials())
            .map(|(v, m)| self.seal_version(&replica_arn, m, &v.material_id, v.rotation_type.as_deref(), v.created))
            .collect::<Result<_>>()?;
        let rec = KeyRec {
            account: k.rec.account.clone(),
            region: region.clone(),
            key_id: k.rec.key_id.clone(),
            created: now,
            description,
            spec: k.rec.spec,
            usage: k.rec.usage,
            manager: k.rec.manager.clone(),
            state: KeyState::Enabled,
            deletion_date: None,
            pending_window_days: None,
            policy: policy.clone(),
            tags: tags.clone(),
            rotation_enabled: k.rec.rotation_enabled,
            rotation_period_days: k.rec.rotation_period_days,
            next_rotation: k.rec.next_rotation,
            on_demand_rotation_start: None,
            versions,
            public_key: k.rec.public_key.clone(),
            grants: Vec::new(),
            multi_region_primary: Some(false),
        };
        transact(self.store.as_ref(), |tx| -> Result<()> {
            if tx.get(KEYS, &rec.store_key())?.is_some() {
                return Err(KmsError::AlreadyExists(format!(
                    "Replica key {replica_arn} already exists in Region {region}."
                )));
            }
            tx.put_json(KEYS, &rec.store_key(), &rec)?;
            Ok(())
        })?;
        let tags: Vec<Value> = tags.iter().map(|t| json!({"TagKey": t.key, "TagValue": t.value})).collect();
        Ok(json!({
            "ReplicaKeyMetadata": self.key_metadata(&rec)?,
            "ReplicaPolicy": policy,
            "ReplicaTags": tags,
        }))
    }

    /// The grant RetireGrant names (by token, or by key + grant ID).
    fn grant_for_retire(&self, ctx: &RequestContext, i: &In<'_>) -> Result<(Arc<Loaded>, GrantRec)> {
        if let Some(t) = i.str_len("GrantToken", 1, 8192)? {
            let (a, r, kid, gid, secret) =
                parse_grant_token(t).ok_or_else(|| KmsError::InvalidGrantToken("Grant token is invalid".into()))?;
            let k =
                self.load(&a, &r, &kid)?.ok_or_else(|| KmsError::InvalidGrantToken("Grant token is invalid".into()))?;
            let g = k
                .rec
                .grants
                .iter()
                .find(|g| g.grant_id == gid && g.token_secret == secret)
                .cloned()
                .ok_or_else(|| KmsError::NotFound("Grant not found".into()))?;
            return Ok((k, g));
        }
        let key_id = i.str("KeyId")?;
        let gid = i.str("GrantId")?;
        let (Some(key_id), Some(gid)) = (key_id, gid) else {
            return Err(KmsError::Validation("Either GrantToken or both KeyId and GrantId must be specified.".into()));
        };
        if !valid_grant_id(gid) {
            return Err(KmsError::InvalidGrantId(format!("Grant ID {gid} is not valid.")));
        }
        let k = self.resolve(ctx, key_id)?;
        let g = k
            .rec
            .grants
            .iter()
            .find(|g| g.grant_id == gid)
            .cloned()
            .ok_or_else(|| KmsError::NotFound(format!("Grant ID {gid} not found")))?;
        Ok((k, g))
    }

    fn remove_grant(&self, k: &Loaded, gid: &str) -> Result<()> {
        self.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
            let before = r.grants.len();
            r.grants.retain(|g| g.grant_id != gid);
            if r.grants.len() == before {
                return Err(KmsError::NotFound(format!("Grant ID {gid} not found")));
            }
            Ok(())
        })
    }
}

/// `(plaintext, encryption algorithm, key material ID of symmetric ciphertexts)`.
type Opened = (zeroize::Zeroizing<Vec<u8>>, &'static str, Option<String>);

fn grant_token(rec: &KeyRec, g: &GrantRec) -> String {
    B64URL.encode(format!("{}/{}/{}/{}/{}", rec.account, rec.region, rec.key_id, g.grant_id, g.token_secret))
}

fn valid_grant_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An IAM principal ARN (user, role, assumed role, federated user, account root) or account ID.
fn valid_principal(p: &str) -> bool {
    if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let parts: Vec<&str> = p.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", "aws", "iam" | "sts", "", acct, res]
        if acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit()) && !res.is_empty())
}

/// `ReplicaRegion` / `PrimaryRegion`: AWS's pattern `^([a-z]+-){2,3}\d+$`.
fn replica_region<'a>(i: &In<'a>, member: &str) -> Result<&'a str> {
    let r = i.req_str_len(member, 1, 32)?;
    let parts: Vec<&str> = r.split('-').collect();
    let ok = (3..=4).contains(&parts.len())
        && parts
            .iter()
            .take(parts.len().saturating_sub(1))
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts.last().is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return Err(invalid_value(member, r, "Member must satisfy regular expression pattern: ^([a-z]+-){2,3}\\d+$"));
    }
    Ok(r)
}

fn not_primary(k: &Loaded) -> KmsError {
    match k.rec.multi_region_primary {
        None => KmsError::Unsupported(format!("{} is not a multi-Region key.", k.arn)),
        _ => KmsError::Unsupported(format!("{} is not a multi-Region primary key.", k.arn)),
    }
}

fn alias_not_found(ctx: &RequestContext, name: &str) -> KmsError {
    KmsError::NotFound(format!("Alias {} is not found.", alias_arn(&ctx.region, &ctx.caller.account_id, name)))
}

fn policy_name(i: &In<'_>) -> Result<()> {
    match i.str("PolicyName")? {
        None | Some("default") => Ok(()),
        Some(_) => Err(KmsError::NotFound("No such policy exists".into())),
    }
}

fn data_key_len(i: &In<'_>) -> Result<usize> {
    let n = i.int_range("NumberOfBytes", 1, 1024)?;
    let spec = i.str("KeySpec")?;
    match (n, spec) {
        (Some(_), Some(_)) => Err(KmsError::Validation("Please specify either number of bytes or key spec.".into())),
        (Some(n), None) => Ok(n as usize),
        (None, Some("AES_256")) => Ok(32),
        (None, Some("AES_128")) => Ok(16),
        (None, Some(_)) => Err(invalid("KeySpec", "Member must satisfy enum value set: [AES_256, AES_128]")),
        (None, None) => Err(KmsError::Validation("Please specify either number of bytes or key spec.".into())),
    }
}

fn page_json(member: &str, items: Vec<Value>, next: Option<String>) -> Value {
    let mut v = json!({ member: items, "Truncated": next.is_some() });
    if let Some(m) = next {
        put(&mut v, "NextMarker", json!(m));
    }
    v
}
