//! Shared secrets: DeriveSharedSecret (ECDH with KEY_AGREEMENT keys) and Encapsulate /
//! Decapsulate (ML-KEM with ENCAPSULATE_DECAPSULATE keys); and GetKeyLastUsage.

use rampart_service::{op, AuthzPlan, ContextKey, ContextValue, Entry, Input, Operation, Output, RequestContext};
use serde_json::json;

use super::cryptographic::no_recipient;
use super::{dry_run, grant_tokens, later, wrong_usage, Answer, KeyRef, Later, MAX_CIPHERTEXT};
use crate::core::{s, Kms};
use crate::crypto::{self, CryptoError, KeyUsage};
use crate::error::{KmsError, Result};
use crate::input::{invalid_value, missing, In};
use crate::model::{put, secs};

/// The operations of this family, each listed once.
pub(super) const OPS: &[Entry<Kms>] = &[
    op::<Kms, DeriveSharedSecret>(),
    op::<Kms, Encapsulate>(),
    op::<Kms, Decapsulate>(),
    op::<Kms, GetKeyLastUsage>(),
];

/// The largest peer public key the model takes.
const MAX_PUBLIC_KEY: usize = 8192;

/// A required member with a one-value enum (`KeyAgreementAlgorithm`, `EncapsulationAlgorithm`).
fn one_value_enum(i: &In<'_>, member: &str, value: &str) -> Result<()> {
    match i.str(member)? {
        None => Err(missing(member)),
        Some(v) if v == value => Ok(()),
        Some(v) => Err(invalid_value(member, v, &format!("Member must satisfy enum value set: [{value}]"))),
    }
}

pub(super) struct DeriveSharedSecret {
    key: KeyRef,
    public_key: Vec<u8>,
    /// Grant tokens and `Recipient`, checked after authorization.
    rest: Later<()>,
    dry_run: Later<()>,
}

impl Operation<Kms> for DeriveSharedSecret {
    const NAME: &'static str = "DeriveSharedSecret";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        one_value_enum(&i, "KeyAgreementAlgorithm", "ECDH")?;
        let key = KeyRef::parse(&i, "KeyId")?;
        let public_key = i.req_blob("PublicKey", 1, MAX_PUBLIC_KEY)?;
        let rest = later(|| {
            grant_tokens(&i)?;
            no_recipient(&i)
        });
        Ok(DeriveSharedSecret { key, public_key, rest, dry_run: dry_run(&i) })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let extra: Vec<(ContextKey, ContextValue)> = vec![("kms:KeyAgreementAlgorithm".into(), s("ECDH"))];
        self.key.plan(kms, ctx, Self::NAME, extra)
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        self.rest?;
        k.require_enabled()?;
        if k.rec.usage != KeyUsage::KEY_AGREEMENT {
            return Err(wrong_usage(&k, Self::NAME));
        }
        self.dry_run?;
        let secret = crypto::ecdh(k.rec.spec, k.current_material()?, &self.public_key).map_err(|e| match e {
            // AWS says nothing more (recorded: an empty message, LocalStack's test_kms.snapshot.json,
            // test_derive_shared_secret).
            CryptoError::Invalid(_) => KmsError::Validation(String::new()),
            other => KmsError::from(other),
        })?;
        kms.record_use(&k, Self::NAME, &ctx.request_id);
        let mut out = Answer::new();
        out.str("KeyAgreementAlgorithm", "ECDH");
        out.str("KeyId", &k.arn);
        out.str("KeyOrigin", k.rec.origin());
        out.b64("SharedSecret", &secret);
        Ok(out.finish())
    }
}

pub(super) struct Encapsulate {
    key: KeyRef,
    grant_tokens: Later<()>,
    dry_run: Later<()>,
}

impl Operation<Kms> for Encapsulate {
    const NAME: &'static str = "Encapsulate";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        one_value_enum(&i, "EncapsulationAlgorithm", "ML_KEM")?;
        let key = KeyRef::parse(&i, "KeyId")?;
        Ok(Encapsulate { key, grant_tokens: grant_tokens(&i), dry_run: dry_run(&i) })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        self.grant_tokens?;
        k.require_enabled()?;
        if k.rec.usage != KeyUsage::ENCAPSULATE_DECAPSULATE {
            return Err(wrong_usage(&k, Self::NAME));
        }
        self.dry_run?;
        let (ct, secret) = crypto::ml_kem_encapsulate(k.rec.spec, &k.public_key()?)?;
        kms.record_use(&k, Self::NAME, &ctx.request_id);
        let mut out = Answer::new();
        out.str("EncapsulationAlgorithm", "ML_KEM");
        out.str("KeyId", &k.arn);
        out.b64("SharedSecret", &secret);
        out.b64("SharedSecretCiphertextBlob", &ct);
        Ok(out.finish())
    }
}

pub(super) struct Decapsulate {
    key: KeyRef,
    ciphertext: Vec<u8>,
    grant_tokens: Later<()>,
    dry_run: Later<()>,
}

impl Operation<Kms> for Decapsulate {
    const NAME: &'static str = "Decapsulate";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        one_value_enum(&i, "EncapsulationAlgorithm", "ML_KEM")?;
        let key = KeyRef::parse(&i, "KeyId")?;
        let ciphertext = i.req_blob("SharedSecretCiphertextBlob", 1, MAX_CIPHERTEXT)?;
        Ok(Decapsulate { key, ciphertext, grant_tokens: grant_tokens(&i), dry_run: dry_run(&i) })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        self.grant_tokens?;
        k.require_enabled()?;
        if k.rec.usage != KeyUsage::ENCAPSULATE_DECAPSULATE {
            return Err(wrong_usage(&k, Self::NAME));
        }
        self.dry_run?;
        // Only a ciphertext of the wrong length is refused; any other decapsulates (implicit
        // rejection), as the API reference says.
        let secret = crypto::ml_kem_decapsulate(k.rec.spec, k.current_material()?, &self.ciphertext)?;
        kms.record_use(&k, Self::NAME, &ctx.request_id);
        let mut out = Answer::new();
        out.str("EncapsulationAlgorithm", "ML_KEM");
        out.str("KeyId", &k.arn);
        out.b64("SharedSecret", &secret);
        Ok(out.finish())
    }
}

/// GetKeyLastUsage: from what this server recorded of the key's successful cryptographic calls
/// (see [`crate::core::USAGE_PERSIST_INTERVAL_MS`] for how precise it is).
pub(super) struct GetKeyLastUsage {
    key: KeyRef,
}

impl Operation<Kms> for GetKeyLastUsage {
    const NAME: &'static str = "GetKeyLastUsage";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        Ok(GetKeyLastUsage { key: KeyRef::parse(&i, "KeyId")? })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        // Cross-account use: No (API reference).
        if k.rec.account != ctx.caller.account_id {
            return Err(KmsError::NotFound(format!("Key '{}' does not exist", k.arn)));
        }
        let mut usage = json!({});
        if let Some(u) = kms.last_use(&k)? {
            put(&mut usage, "Operation", json!(u.operation));
            put(&mut usage, "Timestamp", json!(secs(u.at)));
            put(&mut usage, "KmsRequestId", json!(u.request_id));
        }
        Ok(Output::Json(json!({
            "KeyId": k.arn,
            "KeyLastUsage": usage,
            "TrackingStartDate": secs(kms.tracking_start()?),
            "KeyCreationDate": secs(k.rec.created),
        })))
    }
}
