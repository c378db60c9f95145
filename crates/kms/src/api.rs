//! The Rust API other services use for envelope encryption (Secrets Manager first).
//!
//! Every call is authorized as the calling principal (the `RequestContext` of the request the
//! other service is serving), exactly like the HTTP operation of the same name, with
//! `kms:ViaService` (and `aws:ViaAWSService = true`) set when `via_service` is given — e.g.
//! `Some("secretsmanager.us-east-1.amazonaws.com")`. Errors are AWS's KMS errors
//! (`NotFoundException`, `DisabledException`, `KMSInvalidStateException`,
//! `InvalidCiphertextException`, `AccessDeniedException`, …), ready to be passed through or
//! wrapped by the calling service.
//!
//! ```ignore
//! pub fn generate_data_key(&self, ctx: &RequestContext, key_id: &str,
//!     encryption_context: &BTreeMap<String, String>, via_service: Option<&str>) -> Result<DataKey, AwsError>;
//! pub fn decrypt(&self, ctx: &RequestContext, ciphertext_blob: &[u8],
//!     encryption_context: &BTreeMap<String, String>, via_service: Option<&str>) -> Result<Decrypted, AwsError>;
//! pub fn encrypt(&self, ctx: &RequestContext, key_id: &str, plaintext: &[u8],
//!     encryption_context: &BTreeMap<String, String>, via_service: Option<&str>) -> Result<Encrypted, AwsError>;
//! pub fn aws_managed_key(&self, account_id: &str, region: &str, service: &str) -> Result<String, AwsError>;
//! pub fn key_arn(&self, ctx: &RequestContext, key_id: &str) -> Result<String, AwsError>;
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use rampart_protocol::AwsError;
use rampart_service::{RequestContext, Service};
use rampart_store::{transact, ReadExt, TransactionExt};
use zeroize::Zeroizing;

use crate::core::{aws_managed_key_policy, context_keys, s, Kms};
use crate::crypto::{KeySpec, KeyUsage};
use crate::error::{KmsError, Result};
use crate::model::{alias_store_key, key_arn, AliasRec, ALIASES, KEYS};
use crate::service::KmsService;

/// A data key: use `plaintext` to encrypt locally, then drop it; store `ciphertext_blob`.
pub struct DataKey {
    pub plaintext: Zeroizing<Vec<u8>>,
    /// A KMS ciphertext blob: [`Kms::decrypt`] (or the HTTP Decrypt, no KeyId needed) opens it.
    pub ciphertext_blob: Vec<u8>,
    /// The ARN of the KMS key that encrypted the data key.
    pub key_arn: String,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey").field("key_arn", &self.key_arn).finish_non_exhaustive()
    }
}

/// The result of [`Kms::decrypt`].
pub struct Decrypted {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub key_arn: String,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decrypted").field("key_arn", &self.key_arn).finish_non_exhaustive()
    }
}

/// The result of [`Kms::encrypt`].
#[derive(Debug, Clone)]
pub struct Encrypted {
    pub ciphertext_blob: Vec<u8>,
    pub key_arn: String,
}

impl Kms {
    /// The pipeline service (`kms`, awsJson1_1, `TrentService`).
    pub fn service(self: &Arc<Self>) -> Arc<dyn Service> {
        Arc::new(KmsService::new(self.clone()))
    }

    fn via_context(via_service: Option<&str>) -> Vec<(rampart_service::ContextKey, rampart_service::ContextValue)> {
        match via_service {
            Some(v) => vec![("kms:ViaService".into(), s(v)), ("aws:ViaAWSService".into(), s("true"))],
            None => Vec::new(),
        }
    }

    /// Resolve `key_id`, creating the AWS managed key when it names `alias/aws/<service>`.
    fn resolve_for_api(&self, ctx: &RequestContext, key_id: &str) -> Result<Arc<crate::core::Loaded>> {
        if let Some(service) = key_id.strip_prefix("alias/aws/") {
            self.aws_managed_key(&ctx.caller.account_id, &ctx.region, service).map_err(KmsError::Aws)?;
        }
        self.resolve(ctx, key_id)
    }

    /// `GenerateDataKey` (AES-256, 32 bytes) under `key_id` (key ID, key ARN, alias name or alias ARN),
    /// authorized as `ctx`'s caller for `kms:GenerateDataKey`.
    pub fn generate_data_key(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        encryption_context: &BTreeMap<String, String>,
        via_service: Option<&str>,
    ) -> std::result::Result<DataKey, AwsError> {
        let run = || -> Result<DataKey> {
            let k = self.resolve_for_api(ctx, key_id)?;
            let mut extra = context_keys("kms:", encryption_context);
            extra.push(("kms:EncryptionAlgorithm".into(), s("SYMMETRIC_DEFAULT")));
            extra.extend(Self::via_context(via_service));
            self.authorize_checks(ctx, vec![self.key_check(ctx, &k, "kms:GenerateDataKey", extra)])?;
            let (plaintext, ciphertext_blob) = self.data_key(ctx, &k, 32, encryption_context, "GenerateDataKey")?;
            self.record_use(&k, "GenerateDataKey", &ctx.request_id);
            Ok(DataKey { plaintext, ciphertext_blob, key_arn: k.arn.clone() })
        };
        run().map_err(AwsError::from)
    }

    /// `Encrypt` (SYMMETRIC_DEFAULT) under `key_id`, authorized as `ctx`'s caller for `kms:Encrypt`.
    pub fn encrypt(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        plaintext: &[u8],
        encryption_context: &BTreeMap<String, String>,
        via_service: Option<&str>,
    ) -> std::result::Result<Encrypted, AwsError> {
        let run = || -> Result<Encrypted> {
            let k = self.resolve_for_api(ctx, key_id)?;
            let mut extra = context_keys("kms:", encryption_context);
            extra.push(("kms:EncryptionAlgorithm".into(), s("SYMMETRIC_DEFAULT")));
            extra.extend(Self::via_context(via_service));
            self.authorize_checks(ctx, vec![self.key_check(ctx, &k, "kms:Encrypt", extra)])?;
            k.require_enabled()?;
            if k.rec.spec != KeySpec::SYMMETRIC_DEFAULT || k.rec.usage != KeyUsage::ENCRYPT_DECRYPT {
                return Err(KmsError::InvalidKeyUsage(format!(
                    "{} key usage is {} which is not valid for Encrypt.",
                    k.arn,
                    k.rec.usage.as_str()
                )));
            }
            if plaintext.is_empty() || plaintext.len() > 4096 {
                return Err(KmsError::Validation(
                    "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length between 1 and 4096".into(),
                ));
            }
            let ciphertext_blob = self.encrypt_symmetric(ctx, "Encrypt", &k, plaintext, encryption_context)?;
            self.record_use(&k, "Encrypt", &ctx.request_id);
            Ok(Encrypted { ciphertext_blob, key_arn: k.arn.clone() })
        };
        run().map_err(AwsError::from)
    }

    /// `Decrypt` of a symmetric ciphertext blob (the blob names its key and key version),
    /// authorized as `ctx`'s caller for `kms:Decrypt` on that key.
    pub fn decrypt(
        &self,
        ctx: &RequestContext,
        ciphertext_blob: &[u8],
        encryption_context: &BTreeMap<String, String>,
        via_service: Option<&str>,
    ) -> std::result::Result<Decrypted, AwsError> {
        let run = || -> Result<Decrypted> {
            let k = self.key_of_blob(ctx, ciphertext_blob)?;
            let mut extra = context_keys("kms:", encryption_context);
            extra.push(("kms:EncryptionAlgorithm".into(), s("SYMMETRIC_DEFAULT")));
            extra.extend(Self::via_context(via_service));
            self.authorize_checks(ctx, vec![self.key_check(ctx, &k, "kms:Decrypt", extra)])?;
            k.require_enabled()?;
            let (plaintext, _) = self.decrypt_symmetric(ctx, "Decrypt", &k, ciphertext_blob, encryption_context)?;
            self.record_use(&k, "Decrypt", &ctx.request_id);
            Ok(Decrypted { plaintext, key_arn: k.arn.clone() })
        };
        run().map_err(AwsError::from)
    }

    /// The key ARN `key_id` names (no authorization; `NotFoundException` when it names nothing).
    pub fn key_arn(&self, ctx: &RequestContext, key_id: &str) -> std::result::Result<String, AwsError> {
        Ok(self.resolve(ctx, key_id)?.arn.clone())
    }

    /// The AWS managed key `alias/aws/<service>` of an account and region, created on first use
    /// (KeyManager AWS, AWS's managed-key policy: usable by the account's principals only through
    /// `<service>.<region>.amazonaws.com`, rotated yearly). Returns its key ARN.
    pub fn aws_managed_key(
        &self,
        account_id: &str,
        region: &str,
        service: &str,
    ) -> std::result::Result<String, AwsError> {
        let run = || -> Result<String> {
            if service.is_empty() || !service.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(KmsError::NotFound(format!("Alias alias/aws/{service} is not found.")));
            }
            let alias = format!("alias/aws/{service}");
            let ask = alias_store_key(account_id, region, &alias);
            if let Some(a) = self.store.get_json::<AliasRec>(ALIASES, &ask)? {
                return Ok(key_arn(region, account_id, &a.target_key_id));
            }
            let description = match service {
                "secretsmanager" => {
                    "Default key that protects my Secrets Manager data when no other key is defined".to_string()
                }
                _ => format!("Default key that protects my {service} data when no other key is defined"),
            };
            let rec = self.build_key(
                account_id,
                region,
                KeySpec::SYMMETRIC_DEFAULT,
                KeyUsage::ENCRYPT_DECRYPT,
                description,
                aws_managed_key_policy(account_id, region, service),
                "AWS",
                Vec::new(),
                false,
                false,
            )?;
            let now = self.now_ms();
            transact(self.store.as_ref(), |tx| -> Result<String> {
                if let Some(a) = tx.get_json::<AliasRec>(ALIASES, &ask)? {
                    return Ok(key_arn(region, account_id, &a.target_key_id));
                }
                tx.put_json(KEYS, &rec.store_key(), &rec)?;
                tx.put_json(
                    ALIASES,
                    &ask,
                    &AliasRec { name: alias.clone(), target_key_id: rec.key_id.clone(), created: now, updated: now },
                )?;
                Ok(rec.arn())
            })
        };
        run().map_err(AwsError::from)
    }
}
