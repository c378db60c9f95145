//! Cryptographic operations: Encrypt, Decrypt, ReEncrypt, data keys and data key pairs, random
//! bytes, signatures and MACs. The ones every envelope-encryption client calls (Encrypt, Decrypt,
//! GenerateDataKey) write their answer directly with [`Answer`].

use std::collections::BTreeMap;
use std::sync::Arc;

use rampart_service::{op, AuthzPlan, ContextKey, ContextValue, Entry, Input, Operation, Output, RequestContext};
use rand::RngCore;
use serde_json::json;

use super::{
    account_plan, b64, checked, dry_run, grant_tokens, invalid, later, wrong_usage, Answer, KeyRef, Later,
    MAX_CIPHERTEXT, MAX_PLAINTEXT,
};
use crate::core::{context_keys, s, Kms, Loaded};
use crate::crypto::{self, KeySpec, KeyUsage};
use crate::error::{KmsError, Result};
use crate::input::{invalid_value, In};
use crate::model::put;

/// The operations of this family, each listed once.
pub(super) const OPS: &[Entry<Kms>] = &[
    op::<Kms, Encrypt>(),
    op::<Kms, Decrypt>(),
    op::<Kms, ReEncrypt>(),
    op::<Kms, GenerateDataKey>(),
    op::<Kms, GenerateDataKeyWithoutPlaintext>(),
    op::<Kms, GenerateDataKeyPair>(),
    op::<Kms, GenerateDataKeyPairWithoutPlaintext>(),
    op::<Kms, GenerateRandom>(),
    op::<Kms, Sign>(),
    op::<Kms, Verify>(),
    op::<Kms, GenerateMac>(),
    op::<Kms, VerifyMac>(),
];

/// The condition keys of a request's encryption context and algorithm.
fn encryption_context(ec: &BTreeMap<String, String>, algorithm: Option<&str>) -> Vec<(ContextKey, ContextValue)> {
    let mut extra = context_keys("kms:", ec);
    extra.push(("kms:EncryptionAlgorithm".into(), s(algorithm.unwrap_or("SYMMETRIC_DEFAULT"))));
    extra
}

impl Kms {
    /// The key for Decrypt/ReEncrypt's source: the named key, else the one the blob names.
    fn source_key(&self, ctx: &RequestContext, key_id: Option<&str>, blob: &[u8]) -> Result<Arc<Loaded>> {
        match key_id {
            Some(id) => self.resolve(ctx, id),
            None => self.key_of_blob(ctx, blob),
        }
    }
}

/// The key a ciphertext is opened with: `KeyId` (or `SourceKeyId`) when given, else the key the
/// blob names; loaded by the plan.
struct SourceKey {
    id: Option<String>,
    key: Option<Arc<Loaded>>,
}

impl SourceKey {
    fn parse(i: &In<'_>, member: &str) -> Result<SourceKey> {
        Ok(SourceKey { id: i.str(member)?.map(str::to_string), key: None })
    }

    fn load(&mut self, kms: &Kms, ctx: &RequestContext, blob: &[u8]) -> Result<&Arc<Loaded>> {
        let key = match self.key.take() {
            Some(k) => k,
            None => kms.source_key(ctx, self.id.as_deref(), blob)?,
        };
        Ok(self.key.insert(key))
    }

    fn planned(self, kms: &Kms, ctx: &RequestContext, blob: &[u8]) -> Result<Arc<Loaded>> {
        match self.key {
            Some(k) => Ok(k),
            None => kms.source_key(ctx, self.id.as_deref(), blob),
        }
    }
}

pub(super) struct Encrypt {
    key: KeyRef,
    encryption_context: BTreeMap<String, String>,
    algorithm: Option<String>,
    /// `Plaintext` (and the grant tokens), checked after authorization.
    plaintext: Later<Vec<u8>>,
    dry_run: Later<()>,
}

impl Operation<Kms> for Encrypt {
    const NAME: &'static str = "Encrypt";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        let encryption_context = i.map("EncryptionContext")?;
        let algorithm = i.str("EncryptionAlgorithm")?.map(str::to_string);
        let key = KeyRef::parse(&i, "KeyId")?;
        let plaintext = later(|| {
            let pt = i.req_blob("Plaintext", 1, MAX_PLAINTEXT)?;
            grant_tokens(&i)?;
            Ok(pt)
        });
        Ok(Encrypt { key, encryption_context, algorithm, plaintext, dry_run: dry_run(&i) })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let extra = encryption_context(&self.encryption_context, self.algorithm.as_deref());
        self.key.plan(kms, ctx, Self::NAME, extra)
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let pt = self.plaintext?;
        k.require_enabled()?;
        if k.rec.usage != KeyUsage::ENCRYPT_DECRYPT {
            return Err(wrong_usage(&k, Self::NAME));
        }
        let alg = kms.encryption_algorithm(&k, self.algorithm.as_deref())?;
        self.dry_run?;
        let blob = kms.encrypt_under(ctx, Self::NAME, &k, alg, &pt, &self.encryption_context)?;
        kms.record_use(&k, Self::NAME, &ctx.request_id);
        let mut out = Answer::new();
        out.b64("CiphertextBlob", &blob);
        out.str("EncryptionAlgorithm", alg);
        out.str("KeyId", &k.arn);
        Ok(out.finish())
    }
}

pub(super) struct Decrypt {
    blob: Vec<u8>,
    key: SourceKey,
    /// `EncryptionContext` and `EncryptionAlgorithm`, checked once the key is loaded.
    context: Later<(BTreeMap<String, String>, Option<String>)>,
    grant_tokens: Later<()>,
    dry_run: Later<()>,
}

impl Operation<Kms> for Decrypt {
    const NAME: &'static str = "Decrypt";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        let blob = i.req_blob("CiphertextBlob", 1, MAX_CIPHERTEXT)?;
        let key = SourceKey::parse(&i, "KeyId")?;
        let context = later(|| Ok((i.map("EncryptionContext")?, i.str("EncryptionAlgorithm")?.map(str::to_string))));
        Ok(Decrypt { blob, key, context, grant_tokens: grant_tokens(&i), dry_run: dry_run(&i) })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let k = self.key.load(kms, ctx, &self.blob)?;
        let (ec, alg) = checked(&self.context)?;
        let extra = encryption_context(ec, alg.as_deref());
        Ok(AuthzPlan::Checks(vec![kms.key_check(ctx, k, "kms:Decrypt", extra)]))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let (ec, alg) = self.context?;
        self.grant_tokens?;
        let k = self.key.planned(kms, ctx, &self.blob)?;
        let (pt, alg, material) = kms.decrypt_with(ctx, Self::NAME, &k, &self.blob, &ec, alg.as_deref())?;
        self.dry_run?;
        kms.record_use(&k, Self::NAME, &ctx.request_id);
        let mut out = Answer::new();
        out.str("EncryptionAlgorithm", alg);
        out.str("KeyId", &k.arn);
        if let Some(m) = &material {
            out.str("KeyMaterialId", m);
        }
        out.b64("Plaintext", &pt);
        Ok(out.finish())
    }
}

/// ReEncrypt's encryption contexts and algorithms.
struct ReEncryptContexts {
    source: BTreeMap<String, String>,
    source_algorithm: Option<String>,
    destination: BTreeMap<String, String>,
    destination_algorithm: Option<String>,
}

pub(super) struct ReEncrypt {
    blob: Vec<u8>,
    source: SourceKey,
    /// `DestinationKeyId`, checked once the source key is loaded.
    destination: Later<KeyRef>,
    /// Checked once both keys are loaded.
    contexts: Later<ReEncryptContexts>,
    grant_tokens: Later<()>,
    dry_run: Later<()>,
}

impl Operation<Kms> for ReEncrypt {
    const NAME: &'static str = "ReEncrypt";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        let blob = i.req_blob("CiphertextBlob", 1, MAX_CIPHERTEXT)?;
        let source = SourceKey::parse(&i, "SourceKeyId")?;
        let destination = KeyRef::parse(&i, "DestinationKeyId");
        let contexts = later(|| {
            Ok(ReEncryptContexts {
                source: i.map("SourceEncryptionContext")?,
                source_algorithm: i.str("SourceEncryptionAlgorithm")?.map(str::to_string),
                destination: i.map("DestinationEncryptionContext")?,
                destination_algorithm: i.str("DestinationEncryptionAlgorithm")?.map(str::to_string),
            })
        });
        Ok(ReEncrypt { blob, source, destination, contexts, grant_tokens: grant_tokens(&i), dry_run: dry_run(&i) })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let src = self.source.load(kms, ctx, &self.blob)?;
        let dst = self.destination.as_mut().map_err(|e| e.clone())?.load(kms, ctx)?;
        let c = checked(&self.contexts)?;
        let same = s(if src.arn == dst.arn { "true" } else { "false" });
        let mut from = context_keys("kms:", &c.source);
        from.push(("kms:ReEncryptOnSameKey".into(), same.clone()));
        from.push(("kms:EncryptionAlgorithm".into(), s(c.source_algorithm.as_deref().unwrap_or("SYMMETRIC_DEFAULT"))));
        let mut to = context_keys("kms:", &c.destination);
        to.push(("kms:ReEncryptOnSameKey".into(), same));
        to.push((
            "kms:EncryptionAlgorithm".into(),
            s(c.destination_algorithm.as_deref().unwrap_or("SYMMETRIC_DEFAULT")),
        ));
        Ok(AuthzPlan::Checks(vec![
            kms.key_check(ctx, src, "kms:ReEncryptFrom", from),
            kms.key_check(ctx, dst, "kms:ReEncryptTo", to),
        ]))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        self.grant_tokens?;
        let src = self.source.planned(kms, ctx, &self.blob)?;
        let dst = self.destination?.planned(kms, ctx)?;
        let c = self.contexts?;
        let (pt, src_alg, _) =
            kms.decrypt_with(ctx, Self::NAME, &src, &self.blob, &c.source, c.source_algorithm.as_deref())?;
        dst.require_enabled()?;
        if dst.rec.usage != KeyUsage::ENCRYPT_DECRYPT {
            return Err(wrong_usage(&dst, Self::NAME));
        }
        let dst_alg = kms.encryption_algorithm(&dst, c.destination_algorithm.as_deref())?;
        self.dry_run?;
        let out = kms.encrypt_under(ctx, Self::NAME, &dst, dst_alg, &pt, &c.destination)?;
        kms.record_use(&src, Self::NAME, &ctx.request_id);
        kms.record_use(&dst, Self::NAME, &ctx.request_id);
        Ok(Output::Json(json!({
            "CiphertextBlob": b64(&out),
            "SourceKeyId": src.arn,
            "KeyId": dst.arn,
            "SourceEncryptionAlgorithm": src_alg,
            "DestinationEncryptionAlgorithm": dst_alg,
        })))
    }
}

/// `NumberOfBytes` or `KeySpec` of a data key.
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

/// Nitro Enclaves attestation documents are not supported.
pub(super) fn no_recipient(i: &In<'_>) -> Result<()> {
    if i.has("Recipient") {
        return Err(KmsError::Unsupported("Recipient (Nitro Enclaves attestation) is not supported.".into()));
    }
    Ok(())
}

/// GenerateDataKey (`PLAINTEXT`: the answer carries the plaintext too) and
/// GenerateDataKeyWithoutPlaintext.
pub(super) struct DataKeyOp<const PLAINTEXT: bool> {
    key: KeyRef,
    encryption_context: BTreeMap<String, String>,
    /// `EncryptionAlgorithm` as given, for its condition key.
    algorithm: Option<String>,
    /// The data key's length (and the other members), checked after authorization.
    len: Later<usize>,
    dry_run: Later<()>,
}

pub(super) type GenerateDataKey = DataKeyOp<true>;
pub(super) type GenerateDataKeyWithoutPlaintext = DataKeyOp<false>;

impl<const PLAINTEXT: bool> Operation<Kms> for DataKeyOp<PLAINTEXT> {
    const NAME: &'static str = if PLAINTEXT { "GenerateDataKey" } else { "GenerateDataKeyWithoutPlaintext" };
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        let encryption_context = i.map("EncryptionContext")?;
        let algorithm = i.str("EncryptionAlgorithm")?.map(str::to_string);
        let key = KeyRef::parse(&i, "KeyId")?;
        let len = later(|| {
            let n = data_key_len(&i)?;
            grant_tokens(&i)?;
            no_recipient(&i)?;
            Ok(n)
        });
        Ok(DataKeyOp { key, encryption_context, algorithm, len, dry_run: dry_run(&i) })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let extra = encryption_context(&self.encryption_context, self.algorithm.as_deref());
        self.key.plan(kms, ctx, Self::NAME, extra)
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let n = self.len?;
        let (pt, blob) = kms.data_key(ctx, &k, n, &self.encryption_context, Self::NAME)?;
        self.dry_run?;
        kms.record_use(&k, Self::NAME, &ctx.request_id);
        let mut out = Answer::new();
        out.b64("CiphertextBlob", &blob);
        out.str("KeyId", &k.arn);
        if let Some(v) = k.rec.versions.last() {
            out.str("KeyMaterialId", &v.material_id);
        }
        if PLAINTEXT {
            out.b64("Plaintext", &pt);
        }
        Ok(out.finish())
    }
}

/// GenerateDataKeyPair (`PLAINTEXT`: the answer carries the private key's plaintext too) and
/// GenerateDataKeyPairWithoutPlaintext.
pub(super) struct DataKeyPairOp<const PLAINTEXT: bool> {
    key: KeyRef,
    encryption_context: BTreeMap<String, String>,
    /// `KeyPairSpec` as given, for its condition key.
    spec_given: Option<String>,
    /// The pair's spec (and the other members), checked after authorization.
    spec: Later<KeySpec>,
    dry_run: Later<()>,
}

pub(super) type GenerateDataKeyPair = DataKeyPairOp<true>;
pub(super) type GenerateDataKeyPairWithoutPlaintext = DataKeyPairOp<false>;

impl<const PLAINTEXT: bool> Operation<Kms> for DataKeyPairOp<PLAINTEXT> {
    const NAME: &'static str = if PLAINTEXT { "GenerateDataKeyPair" } else { "GenerateDataKeyPairWithoutPlaintext" };
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        let encryption_context = i.map("EncryptionContext")?;
        let spec_given = i.str("KeyPairSpec")?.map(str::to_string);
        let key = KeyRef::parse(&i, "KeyId")?;
        let spec = later(|| {
            let spec_name = i.req_str("KeyPairSpec")?;
            let spec = KeySpec::parse(spec_name).filter(|s| s.is_asymmetric()).ok_or_else(|| {
                invalid("KeyPairSpec", "Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1]")
            })?;
            grant_tokens(&i)?;
            no_recipient(&i)?;
            Ok(spec)
        });
        Ok(DataKeyPairOp { key, encryption_context, spec_given, spec, dry_run: dry_run(&i) })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut extra = encryption_context(&self.encryption_context, None);
        if let Some(spec) = &self.spec_given {
            extra.push(("kms:DataKeyPairSpec".into(), s(spec)));
        }
        self.key.plan(kms, ctx, Self::NAME, extra)
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let spec = self.spec?;
        k.require_enabled()?;
        if k.rec.spec != KeySpec::SYMMETRIC_DEFAULT {
            return Err(wrong_usage(&k, Self::NAME));
        }
        self.dry_run?;
        let (private, public) = crypto::generate(spec)?;
        let blob = kms.encrypt_symmetric(ctx, Self::NAME, &k, &private, &self.encryption_context)?;
        kms.record_use(&k, Self::NAME, &ctx.request_id);
        let mut out = json!({
            "PrivateKeyCiphertextBlob": b64(&blob),
            "PublicKey": b64(&public.unwrap_or_default()),
            "KeyId": k.arn,
            "KeyPairSpec": spec.as_str(),
        });
        if PLAINTEXT {
            put(&mut out, "PrivateKeyPlaintext", b64(&private));
        }
        Ok(Output::Json(out))
    }
}

pub(super) struct GenerateRandom {
    len: Later<usize>,
    /// `CustomKeyStoreId`: a CloudHSM key store's (checked once authorized).
    store: Option<String>,
}

impl Operation<Kms> for GenerateRandom {
    const NAME: &'static str = "GenerateRandom";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        let len = later(|| {
            // AWS's own wording for a GenerateRandom without NumberOfBytes (recorded response).
            let n = i
                .int_range("NumberOfBytes", 1, 1024)?
                .ok_or_else(|| KmsError::Validation("NumberOfBytes is required.".into()))?;
            Ok(n as usize)
        });
        let store = i.str_len("CustomKeyStoreId", 1, 64)?.map(str::to_string);
        Ok(GenerateRandom { len, store })
    }

    fn authorize(&mut self, _: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        Ok(account_plan(ctx, Self::NAME))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let n = self.len?;
        if let Some(id) = &self.store {
            // Only CloudHSM key stores generate random bytes, and Rampart has none: an external key
            // store's ID is UnsupportedOperationException, any other ID names no store.
            return Err(super::stores::random_in_store(kms, ctx, id));
        }
        let mut b = zeroize::Zeroizing::new(vec![0u8; n]);
        rand::rng().fill_bytes(&mut b);
        Ok(Output::Json(json!({"Plaintext": b64(&b)})))
    }
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

/// What Sign and Verify check after authorization.
struct Signing {
    message: Vec<u8>,
    algorithm: String,
    /// Verify's `Signature`.
    signature: Option<Vec<u8>>,
}

/// Sign, and Verify (`VERIFY`).
pub(super) struct SignOp<const VERIFY: bool> {
    key: KeyRef,
    /// `SigningAlgorithm` as given, for its condition key.
    algorithm_given: Option<String>,
    message_type: String,
    signing: Later<Signing>,
    dry_run: Later<()>,
}

pub(super) type Sign = SignOp<false>;
pub(super) type Verify = SignOp<true>;

impl<const VERIFY: bool> Operation<Kms> for SignOp<VERIFY> {
    const NAME: &'static str = if VERIFY { "Verify" } else { "Sign" };
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        signing_enums(&i)?;
        let algorithm_given = i.str("SigningAlgorithm")?.map(str::to_string);
        let message_type = i.str("MessageType")?.unwrap_or("RAW").to_string();
        let key = KeyRef::parse(&i, "KeyId")?;
        let signing = later(|| {
            let message = i.req_blob("Message", 1, MAX_PLAINTEXT)?;
            let algorithm = i.req_str("SigningAlgorithm")?.to_string();
            let signature = if VERIFY { Some(i.req_blob("Signature", 1, 6144)?) } else { None };
            grant_tokens(&i)?;
            Ok(Signing { message, algorithm, signature })
        });
        Ok(SignOp { key, algorithm_given, message_type, signing, dry_run: dry_run(&i) })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut extra = Vec::new();
        if let Some(a) = &self.algorithm_given {
            extra.push(("kms:SigningAlgorithm".into(), s(a)));
        }
        extra.push(("kms:MessageType".into(), s(&self.message_type)));
        self.key.plan(kms, ctx, Self::NAME, extra)
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let Signing { message, algorithm, signature } = self.signing?;
        let alg = algorithm.as_str();
        k.require_enabled()?;
        if k.rec.usage != KeyUsage::SIGN_VERIFY {
            return Err(wrong_usage(&k, Self::NAME));
        }
        if !k.rec.spec.signing_algorithms(k.rec.usage).contains(&alg) {
            return Err(KmsError::InvalidKeyUsage(format!(
                "Algorithm {alg} is incompatible with key spec {}.",
                k.rec.spec.as_str()
            )));
        }
        let digest = match self.message_type.as_str() {
            "RAW" => crypto::signing_digest(alg, &message)?,
            "DIGEST" => {
                if Some(message.len()) != crypto::signing_digest_len(alg) {
                    return Err(KmsError::Validation(format!("Digest is invalid length for algorithm {alg}.")));
                }
                message
            }
            mt => {
                return Err(KmsError::Unsupported(format!(
                    "MessageType {mt} is not supported for signing algorithm {alg}."
                )))
            }
        };
        self.dry_run?;
        match signature {
            None => {
                let sig = crypto::sign(k.rec.spec, k.current_material()?, alg, &digest)?;
                kms.record_use(&k, Self::NAME, &ctx.request_id);
                Ok(Output::Json(json!({"KeyId": k.arn, "Signature": b64(&sig), "SigningAlgorithm": alg})))
            }
            Some(sig) => {
                crypto::verify(k.rec.spec, &k.public_key()?, alg, &digest, &sig)?;
                kms.record_use(&k, Self::NAME, &ctx.request_id);
                Ok(Output::Json(json!({"KeyId": k.arn, "SignatureValid": true, "SigningAlgorithm": alg})))
            }
        }
    }
}

/// What GenerateMac and VerifyMac check after authorization.
struct Macing {
    message: Vec<u8>,
    algorithm: String,
    /// VerifyMac's `Mac`.
    mac: Option<Vec<u8>>,
}

/// GenerateMac, and VerifyMac (`VERIFY`).
pub(super) struct MacOp<const VERIFY: bool> {
    key: KeyRef,
    /// `MacAlgorithm` as given, for its condition key.
    algorithm_given: Option<String>,
    mac: Later<Macing>,
    dry_run: Later<()>,
}

pub(super) type GenerateMac = MacOp<false>;
pub(super) type VerifyMac = MacOp<true>;

impl<const VERIFY: bool> Operation<Kms> for MacOp<VERIFY> {
    const NAME: &'static str = if VERIFY { "VerifyMac" } else { "GenerateMac" };
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        let algorithm_given = i.str("MacAlgorithm")?.map(str::to_string);
        // An algorithm outside the enum is the framework's validation error, before any key.
        if let Some(a) = algorithm_given.as_deref() {
            if !matches!(a, "HMAC_SHA_224" | "HMAC_SHA_256" | "HMAC_SHA_384" | "HMAC_SHA_512") {
                return Err(invalid_value(
                    "MacAlgorithm",
                    a,
                    "Member must satisfy enum value set: [HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]",
                ));
            }
        }
        let key = KeyRef::parse(&i, "KeyId")?;
        let mac = later(|| {
            let message = i.req_blob("Message", 1, MAX_PLAINTEXT)?;
            let algorithm = i.req_str("MacAlgorithm")?.to_string();
            let mac = if VERIFY { Some(i.req_blob("Mac", 1, 6144)?) } else { None };
            grant_tokens(&i)?;
            Ok(Macing { message, algorithm, mac })
        });
        Ok(MacOp { key, algorithm_given, mac, dry_run: dry_run(&i) })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut extra = Vec::new();
        if let Some(a) = &self.algorithm_given {
            extra.push(("kms:MacAlgorithm".into(), s(a)));
        }
        self.key.plan(kms, ctx, Self::NAME, extra)
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let Macing { message, algorithm, mac } = self.mac?;
        let alg = algorithm.as_str();
        k.require_enabled()?;
        if k.rec.usage != KeyUsage::GENERATE_VERIFY_MAC {
            return Err(wrong_usage(&k, Self::NAME));
        }
        if !k.rec.spec.mac_algorithms().contains(&alg) {
            return Err(KmsError::InvalidKeyUsage(format!(
                "Algorithm {alg} is incompatible with key spec {}.",
                k.rec.spec.as_str()
            )));
        }
        self.dry_run?;
        match mac {
            None => {
                let mac = crypto::mac(alg, k.current_material()?, &message)?;
                kms.record_use(&k, Self::NAME, &ctx.request_id);
                Ok(Output::Json(json!({"Mac": b64(&mac), "MacAlgorithm": alg, "KeyId": k.arn})))
            }
            Some(tag) => {
                crypto::mac_verify(alg, k.current_material()?, &message, &tag)
                    .map_err(|_| KmsError::InvalidMac(String::new()))?;
                kms.record_use(&k, Self::NAME, &ctx.request_id);
                Ok(Output::Json(json!({"KeyId": k.arn, "MacValid": true, "MacAlgorithm": alg})))
            }
        }
    }
}
