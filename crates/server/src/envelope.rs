//! Secrets Manager's envelope keys from Rampart's KMS: data keys generated and decrypted by KMS as
//! the calling principal, with `kms:ViaService = secretsmanager.<region>.amazonaws.com`.

use std::collections::BTreeMap;
use std::sync::Arc;

use rampart_kms::Kms;
use rampart_protocol::AwsError;
use rampart_secrets::keys::{DataKey, EnvelopeKeys, SealerKeys, DEFAULT_KEY_ALIAS};
use rampart_service::RequestContext;
use zeroize::Zeroizing;

pub struct KmsEnvelopeKeys {
    kms: Arc<Kms>,
    /// Data keys sealed before KMS was wired (`<key arn>\0<sealed>`) still open.
    legacy: SealerKeys,
}

impl KmsEnvelopeKeys {
    pub fn new(kms: Arc<Kms>, legacy: SealerKeys) -> Self {
        KmsEnvelopeKeys { kms, legacy }
    }
}

fn context(pairs: &[(String, String)]) -> BTreeMap<String, String> {
    pairs.iter().cloned().collect()
}

/// KMS's errors as Secrets Manager reports them (AccessDeniedException passes through).
fn as_secrets_error(e: AwsError, decrypting: bool) -> AwsError {
    match e.code.as_ref() {
        "AccessDeniedException" => e,
        "NotFoundException" => AwsError::new("ResourceNotFoundException", e.message, 400),
        _ if decrypting => AwsError::new(
            "DecryptionFailure",
            format!(
                "Secrets Manager can't decrypt the protected secret text using the provided KMS key: {}",
                e.message
            ),
            400,
        ),
        "KMSInternalException" | "InternalFailure" => e,
        _ => AwsError::new(
            "EncryptionFailure",
            format!(
                "Secrets Manager can't encrypt the protected secret text using the provided KMS key: {}",
                e.message
            ),
            400,
        ),
    }
}

impl EnvelopeKeys for KmsEnvelopeKeys {
    fn may_call_out(&self) -> bool {
        self.kms.may_call_out()
    }

    fn key_arn(&self, ctx: &RequestContext, key_id: Option<&str>) -> Result<String, AwsError> {
        let run = || match key_id {
            None => self.kms.aws_managed_key(&ctx.caller.account_id, &ctx.region, "secretsmanager"),
            Some(DEFAULT_KEY_ALIAS) => self.kms.aws_managed_key(&ctx.caller.account_id, &ctx.region, "secretsmanager"),
            Some(k) => self.kms.key_arn(ctx, k),
        };
        run().map_err(|e| as_secrets_error(e, false))
    }

    fn generate_data_key(
        &self,
        ctx: &RequestContext,
        key_id: Option<&str>,
        encryption_context: &[(String, String)],
        via_service: &str,
    ) -> Result<DataKey, AwsError> {
        let key = key_id.unwrap_or(DEFAULT_KEY_ALIAS);
        let dk = self
            .kms
            .generate_data_key(ctx, key, &context(encryption_context), Some(via_service))
            .map_err(|e| as_secrets_error(e, false))?;
        Ok(DataKey { plaintext: dk.plaintext, ciphertext_blob: dk.ciphertext_blob, key_arn: dk.key_arn })
    }

    fn decrypt(
        &self,
        ctx: &RequestContext,
        ciphertext_blob: &[u8],
        encryption_context: &[(String, String)],
        via_service: &str,
    ) -> Result<Zeroizing<Vec<u8>>, AwsError> {
        if ciphertext_blob.starts_with(b"arn:") {
            return self.legacy.decrypt(ctx, ciphertext_blob, encryption_context, via_service);
        }
        self.kms
            .decrypt(ctx, ciphertext_blob, &context(encryption_context), Some(via_service))
            .map(|d| d.plaintext)
            .map_err(|e| as_secrets_error(e, true))
    }
}
