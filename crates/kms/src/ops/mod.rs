//! The KMS operations, one type each: its input is read once ([`Operation::parse`]) into the
//! typed request that planning ([`Operation::authorize`], which loads the keys it checks) and
//! the run ([`Operation::run`], on those same keys) use. Each is listed once, in [`OPERATIONS`].
//!
//! Error precedence is AWS's (and pinned by tests): some members are checked only after the key
//! is loaded, or after authorization. Such members are still read at parse time, into a
//! [`Later`] that the step which reported the error before reports it now.
//!
//! [`Operation::parse`]: rampart_service::Operation::parse
//! [`Operation::authorize`]: rampart_service::Operation::authorize
//! [`Operation::run`]: rampart_service::Operation::run

mod aliases;
mod cryptographic;
mod grants;
mod imports;
mod keys;
mod shared_secrets;
mod stores;
mod tags;

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use rampart_policy::{Policy, PolicyType};
use rampart_service::{
    AuthzCheck, AuthzPlan, ContextKey, ContextValue, Operations, Output, RequestContext, ResourcePolicy,
};
use rand::RngCore;
use serde_json::{json, Value};

use crate::core::{s, Kms, Loaded};
use crate::crypto::{self, KeySpec, KeyUsage};
use crate::error::{KmsError, Result};
use crate::input::{invalid, missing, In};
use crate::model::*;

/// The operations Rampart's KMS implements (others answer UnknownOperationException), each
/// listed once by its family.
pub static OPERATIONS: Operations<Kms> = Operations::new(&[
    keys::OPS,
    cryptographic::OPS,
    shared_secrets::OPS,
    imports::OPS,
    aliases::OPS,
    grants::OPS,
    tags::OPS,
    stores::OPS,
]);

const MAX_PLAINTEXT: usize = 4096;
const MAX_CIPHERTEXT: usize = 6144;
const MAX_POLICY: usize = 32_768;
const MAX_TAGS: usize = 50;

/// Input read at parse time whose error AWS reports later in the call (after a key is loaded,
/// or after authorization): the step that reports it takes it with `?`.
type Later<T> = Result<T>;

/// Read members now, for a [`Later`].
fn later<T>(read: impl FnOnce() -> Result<T>) -> Later<T> {
    read()
}

/// A [`Later`] checked by planning and used again by the run.
fn checked<T>(v: &Later<T>) -> Result<&T> {
    v.as_ref().map_err(Clone::clone)
}

/// `kms:<Operation>`, the action an operation's checks name.
fn action(operation: &str) -> String {
    ["kms:", operation].concat()
}

/// `DryRun`: AWS answers it (or its type error) after every other check of the call.
fn dry_run(i: &In<'_>) -> Later<()> {
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

/// `Tags` of CreateKey, ReplicateKey and TagResource, read before authorization, so the count is
/// checked first (a key has at most [`MAX_TAGS`] tags, and no request can add more): a huge list
/// costs nothing before it is refused, and the per-tag work below is bounded.
fn tags_input(i: &In<'_>) -> Result<Vec<Tag>> {
    let Some(v) = i.0.get("Tags").filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let arr = v.as_array().ok_or_else(|| KmsError::Serialization("Member Tags must be a list".into()))?;
    if arr.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    let mut out: Vec<Tag> = Vec::with_capacity(arr.len());
    for (n, t) in arr.iter().enumerate() {
        let ti = In(t);
        // AWS names the member by its place in the list, with the value (recorded AWS responses).
        let at = |m: &str| format!("tags.{}.member.{m}", n + 1);
        let key = ti.str("TagKey")?.ok_or_else(|| missing(&at("tagKey")))?.to_string();
        check_tag_len(&at("tagKey"), &key, 1, 128)?;
        let value = ti.str("TagValue")?.ok_or_else(|| missing(&at("tagValue")))?.to_string();
        check_tag_len(&at("tagValue"), &value, 0, 256)?;
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(KmsError::Tag("Tags beginning with aws: are reserved".into()));
        }
        if out.iter().any(|x| x.key == key) {
            return Err(KmsError::Tag("Duplicate tag keys".into()));
        }
        out.push(Tag { key, value });
    }
    Ok(out)
}

/// A tag key's or value's length, refused with the value whole as AWS prints it (bounded: a value
/// a little over the limit comes back entire, a huge one cut).
fn check_tag_len(at: &str, v: &str, min: usize, max: usize) -> Result<()> {
    let n = v.chars().count();
    let bound = if n < min {
        format!("greater than or equal to {min}")
    } else if n > max {
        format!("less than or equal to {max}")
    } else {
        return Ok(());
    };
    Err(KmsError::Validation(format!(
        "1 validation error detected: Value '{}' at '{at}' failed to satisfy constraint: Member must have length {bound}",
        rampart_protocol::error::echo_at_most(v, 1024)
    )))
}

fn too_many_tags() -> KmsError {
    KmsError::Tag("Too many tags".into())
}

fn tag_context(tags: &[Tag]) -> Vec<(ContextKey, ContextValue)> {
    let mut v: Vec<(ContextKey, ContextValue)> =
        tags.iter().map(|t| (format!("aws:RequestTag/{}", t.key).into(), s(&t.value))).collect();
    if !tags.is_empty() {
        v.push(("aws:TagKeys".into(), ContextValue::List(tags.iter().map(|t| t.key.clone()).collect())));
    }
    v
}

/// `alias/…` or `arn:…:alias/…`.
fn names_alias(key_id: &str) -> bool {
    key_id.starts_with("alias/") || (key_id.starts_with("arn:") && key_id.contains(":alias/"))
}

/// For the operations whose `KeyId` is a key ID or key ARN only (AWS's API reference: "Specify
/// the key ID or key ARN of the KMS key"): an alias there is "Invalid keyId". Checked first.
fn key_id_or_arn_only(i: &In<'_>) -> Result<()> {
    if let Some(id) = i.str("KeyId")? {
        if names_alias(id) {
            return Err(KmsError::NotFound(format!("Invalid keyId '{id}'")));
        }
    }
    Ok(())
}

fn b64(b: &[u8]) -> Value {
    Value::String(B64.encode(b))
}

/// `Limit` and `Marker` of a list call.
struct Page {
    limit: usize,
    marker: Option<String>,
}

impl Page {
    fn parse(i: &In<'_>, default: usize) -> Result<Page> {
        let (limit, marker) = i.page(default)?;
        Ok(Page { limit, marker: marker.map(str::to_string) })
    }

    /// One page of `items` as `{member: [...], Truncated, NextMarker}`.
    fn answer(&self, member: &str, items: Vec<Value>) -> Result<Output> {
        let (page, next) = crate::input::paginate(&items, self.limit, self.marker.as_deref())?;
        let mut v = json!({ member: page, "Truncated": next.is_some() });
        if let Some(m) = next {
            put(&mut v, "NextMarker", json!(m));
        }
        Ok(Output::Json(v))
    }
}

/// The empty answer of the calls that answer nothing.
fn empty() -> Output {
    Output::Json(json!({}))
}

/// A key named by a request member: its reference validated at parse time, the key loaded by
/// planning — so the run works on exactly the key that was authorized, read once per call.
struct KeyRef {
    id: String,
    key: Option<Arc<Loaded>>,
}

impl KeyRef {
    /// A required key reference (`KeyId`, `DestinationKeyId`, …): 1–2048 characters.
    fn parse(i: &In<'_>, member: &str) -> Result<KeyRef> {
        Ok(KeyRef::named(i.key_id(member)?))
    }

    fn named(id: &str) -> KeyRef {
        KeyRef { id: id.to_string(), key: None }
    }

    /// Load the key (once per call).
    fn load(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<&Arc<Loaded>> {
        let key = match self.key.take() {
            Some(k) => k,
            None => kms.resolve(ctx, &self.id)?,
        };
        Ok(self.key.insert(key))
    }

    /// Load the key and the check for using it with `action`.
    fn check(
        &mut self,
        kms: &Kms,
        ctx: &RequestContext,
        action: &str,
        extra: Vec<(ContextKey, ContextValue)>,
    ) -> Result<AuthzCheck> {
        let k = self.load(kms, ctx)?;
        Ok(kms.key_check(ctx, k, action, extra))
    }

    /// The plan of the calls that need `kms:<operation>` on this key only.
    fn plan(
        &mut self,
        kms: &Kms,
        ctx: &RequestContext,
        operation: &str,
        extra: Vec<(ContextKey, ContextValue)>,
    ) -> Result<AuthzPlan> {
        Ok(AuthzPlan::Checks(vec![self.check(kms, ctx, &action(operation), extra)?]))
    }

    /// The key the plan loaded (loaded now if it was not).
    fn planned(self, kms: &Kms, ctx: &RequestContext) -> Result<Arc<Loaded>> {
        match self.key {
            Some(k) => Ok(k),
            None => kms.resolve(ctx, &self.id),
        }
    }
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

/// `(plaintext, encryption algorithm, key material ID of symmetric ciphertexts)`.
type Opened = (zeroize::Zeroizing<Vec<u8>>, &'static str, Option<String>);

impl Kms {
    fn require_rotatable_spec(&self, k: &Loaded) -> Result<()> {
        if k.rec.custom_key_store_id.is_some() {
            return Err(KmsError::Unsupported(format!(
                "{} is in a custom key store; KMS keys in custom key stores do not support key rotation.",
                k.arn
            )));
        }
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
        ctx: &RequestContext,
        op: &str,
        k: &Loaded,
        blob: &[u8],
        ec: &BTreeMap<String, String>,
        algorithm: Option<&str>,
    ) -> Result<Opened> {
        k.require_enabled()?;
        // A symmetric ciphertext of another key: AWS answers IncorrectKeyException whatever the
        // named key is (recorded AWS response: Decrypt with an HMAC key's ID).
        if let Ok((h, _)) = crypto::parse_blob(blob) {
            if h.account != k.rec.account || h.key_id != k.rec.key_id {
                return Err(KmsError::IncorrectKey(
                    "The key ID in the request does not identify a CMK that can perform this operation.".into(),
                ));
            }
        }
        if k.rec.usage != KeyUsage::ENCRYPT_DECRYPT {
            return Err(wrong_usage(k, "Decrypt"));
        }
        let alg = self.encryption_algorithm(k, algorithm)?;
        if alg == "SYMMETRIC_DEFAULT" {
            let (pt, material) = self.decrypt_symmetric(ctx, op, k, blob, ec)?;
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
        ctx: &RequestContext,
        op: &str,
        k: &Loaded,
        algorithm: &str,
        plaintext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>> {
        if algorithm == "SYMMETRIC_DEFAULT" {
            return self.encrypt_symmetric(ctx, op, k, plaintext, context);
        }
        if plaintext.len() > crypto::rsa_max_plaintext(k.rec.spec, algorithm) {
            return Err(KmsError::Validation(format!(
                "Algorithm {algorithm} and key spec {} cannot encrypt data larger than {} bytes.",
                k.rec.spec.as_str(),
                crypto::rsa_max_plaintext(k.rec.spec, algorithm)
            )));
        }
        Ok(crypto::rsa_encrypt(&k.public_key()?, algorithm, plaintext)?)
    }

    /// A data key of `n` bytes and its ciphertext under `k`.
    pub(crate) fn data_key(
        &self,
        ctx: &RequestContext,
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
        let blob = self.encrypt_symmetric(ctx, op, k, &pt, ec)?;
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
}

/// `"true"` / `"false"`, as condition keys compare booleans.
fn flag(b: bool) -> ContextValue {
    s(if b { "true" } else { "false" })
}

/// The `kms:CallerAccount` context of the checks on `*`.
fn caller_account(ctx: &RequestContext) -> (ContextKey, ContextValue) {
    ("kms:CallerAccount".into(), s(&ctx.caller.account_id))
}

/// The plan of the calls that need `kms:<operation>` on `*` only.
fn account_plan(ctx: &RequestContext, operation: &str) -> AuthzPlan {
    let mut c = AuthzCheck::new(action(operation), "*");
    c.context.push(caller_account(ctx));
    AuthzPlan::Checks(vec![c])
}
