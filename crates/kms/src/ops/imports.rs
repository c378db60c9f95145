//! Imported key material (BYOK): GetParametersForImport, ImportKeyMaterial,
//! DeleteImportedKeyMaterial, for keys created with `Origin=EXTERNAL`.
//!
//! The import token is self-contained: the wrapping private key, the key it is for, the wrapping
//! algorithm and key spec and its expiry, sealed under the server's master key (so nothing is
//! stored per token, and a token is bound to its key and wrapping key).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rampart_service::{op, AuthzPlan, ContextKey, ContextValue, Entry, Input, Operation, Output, RequestContext};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{b64, key_id_or_arn_only, later, KeyRef, Later, MAX_CIPHERTEXT};
use crate::core::{s, Kms, Loaded};
use crate::crypto::{self, KeySpec};
use crate::error::{KmsError, Result};
use crate::input::{invalid_value, In};
use crate::model::*;

/// The operations of this family, each listed once.
pub(super) const OPS: &[Entry<Kms>] =
    &[op::<Kms, GetParametersForImport>(), op::<Kms, ImportKeyMaterial>(), op::<Kms, DeleteImportedKeyMaterial>()];

/// How long a wrapping key and import token are valid (AWS: 24 hours).
const TOKEN_VALIDITY_MS: i64 = 24 * 3_600_000;
/// The latest `ValidTo` AWS accepts: 365 days from the request.
const MAX_VALID_TO_MS: i64 = 365 * 86_400_000;
const TOKEN_PURPOSE: &str = "import-token";

const WRAPPING_ALGORITHMS: &str =
    "[RSAES_PKCS1_V1_5, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_1, RSA_AES_KEY_WRAP_SHA_256, SM2PKE]";

fn enum_member<'a>(i: &In<'a>, member: &str, set: &str) -> Result<Option<&'a str>> {
    let Some(v) = i.str(member)? else { return Ok(None) };
    if !set.trim_start_matches('[').trim_end_matches(']').split(", ").any(|x| x == v) {
        return Err(invalid_value(member, v, &format!("Member must satisfy enum value set: {set}")));
    }
    Ok(Some(v))
}

/// `KeyMaterialId`: 64 lowercase hex digits.
fn material_id_member(i: &In<'_>) -> Result<Option<String>> {
    let Some(id) = i.str("KeyMaterialId")? else { return Ok(None) };
    if id.chars().count() != 64 {
        let bound = if id.chars().count() < 64 { "greater than or equal to 64" } else { "less than or equal to 64" };
        return Err(invalid_value("KeyMaterialId", id, &format!("Member must have length {bound}")));
    }
    if !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid_value("KeyMaterialId", id, "Member must satisfy regular expression pattern: ^[a-f0-9]+$"));
    }
    Ok(Some(id.to_string()))
}

/// Keys for imported material only (AWS: "The Origin of the KMS key must be EXTERNAL").
fn require_external(k: &Loaded) -> Result<()> {
    if !k.rec.is_external() {
        return Err(KmsError::Unsupported(format!(
            "{} origin is {} which is not valid for this operation.",
            k.arn,
            k.rec.origin()
        )));
    }
    Ok(())
}

/// The identity of imported material: a one-way function of the key ID and the material, as
/// AWS describes ("a unique identifier … based on the KMS key ID and the imported key material"),
/// so re-importing the same material gives the same ID, in every Region of a multi-Region key.
fn imported_material_id(key_id: &str, material: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"rampart/kms/imported-key-material/v1\0");
    h.update(key_id.as_bytes());
    h.update([0u8]);
    h.update(material);
    hex::encode(h.finalize())
}

/// What an import token carries (sealed).
#[derive(Serialize, Deserialize)]
struct Token {
    account: String,
    region: String,
    key_id: String,
    algorithm: String,
    spec: String,
    expires: i64,
    /// The wrapping private key, PKCS#8 DER, base64.
    der: String,
}

impl Drop for Token {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.der);
    }
}

pub(super) struct GetParametersForImport {
    key: KeyRef,
    algorithm: String,
    spec: String,
}

impl Operation<Kms> for GetParametersForImport {
    const NAME: &'static str = "GetParametersForImport";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let algorithm = enum_member(&i, "WrappingAlgorithm", WRAPPING_ALGORITHMS)?;
        let spec = enum_member(&i, "WrappingKeySpec", "[RSA_2048, RSA_3072, RSA_4096, SM2]")?;
        let key = KeyRef::parse(&i, "KeyId")?;
        let algorithm = algorithm.ok_or_else(|| crate::input::missing("WrappingAlgorithm"))?;
        let spec = spec.ok_or_else(|| crate::input::missing("WrappingKeySpec"))?;
        // SM2 wrapping is for China Regions only; RSAES_PKCS1_V1_5 is no longer supported (API
        // reference: "As of October 10, 2023, KMS does not support the RSAES_PKCS1_V1_5 wrapping
        // algorithm").
        if algorithm == "RSAES_PKCS1_V1_5" {
            return Err(KmsError::Validation(
                "The RSAES_PKCS1_V1_5 wrapping algorithm is no longer supported. Use RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256."
                    .into(),
            ));
        }
        if algorithm == "SM2PKE" || spec == "SM2" {
            return Err(KmsError::Validation(
                "The SM2 wrapping key spec and the SM2PKE wrapping algorithm are supported only in China Regions."
                    .into(),
            ));
        }
        Ok(GetParametersForImport { key, algorithm: algorithm.to_string(), spec: spec.to_string() })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let extra: Vec<(ContextKey, ContextValue)> =
            vec![("kms:WrappingAlgorithm".into(), s(&self.algorithm)), ("kms:WrappingKeySpec".into(), s(&self.spec))];
        self.key.plan(kms, ctx, Self::NAME, extra)
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        require_external(&k)?;
        k.require_not_pending()?;
        let bits = match self.spec.as_str() {
            "RSA_2048" => 2048,
            "RSA_3072" => 3072,
            _ => 4096,
        };
        let (der, public) = crypto::wrapping_key(bits)?;
        let expires = kms.now_ms() + TOKEN_VALIDITY_MS;
        let token = Token {
            account: k.rec.account.clone(),
            region: k.rec.region.clone(),
            key_id: k.rec.key_id.clone(),
            algorithm: self.algorithm,
            spec: self.spec,
            expires,
            der: B64.encode(&der),
        };
        let plain = Zeroizing::new(serde_json::to_vec(&token).map_err(|e| KmsError::Internal(e.to_string()))?);
        let sealed = kms.seal_aux(TOKEN_PURPOSE, &plain)?;
        Ok(Output::Json(json!({
            "KeyId": k.arn,
            "ImportToken": b64(&sealed),
            "PublicKey": b64(&public),
            "ParametersValidTo": secs(expires),
        })))
    }
}

/// What ImportKeyMaterial checks after the key is loaded.
struct Import {
    token: Vec<u8>,
    wrapped: Vec<u8>,
    expiration_model: String,
    valid_to: Option<i64>,
    import_type: Option<String>,
    description: Option<String>,
    material_id: Option<String>,
}

pub(super) struct ImportKeyMaterial {
    key: KeyRef,
    /// `ExpirationModel` and `ValidTo` as given, for their condition keys.
    model_given: Option<String>,
    valid_to_given: Option<i64>,
    import: Later<Import>,
}

/// A timestamp member (awsJson: epoch seconds, possibly fractional) in milliseconds.
fn timestamp_ms(i: &In<'_>, member: &str) -> Result<Option<i64>> {
    match i.0.get(member).filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite() && f.abs() < 1e14)
            .map(|f| Some((f * 1000.0).round() as i64))
            .ok_or_else(|| KmsError::Serialization(format!("Member {member} must be a timestamp"))),
    }
}

impl Operation<Kms> for ImportKeyMaterial {
    const NAME: &'static str = "ImportKeyMaterial";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let model_given = enum_member(&i, "ExpirationModel", "[KEY_MATERIAL_EXPIRES, KEY_MATERIAL_DOES_NOT_EXPIRE]")?
            .map(str::to_string);
        let import_type =
            enum_member(&i, "ImportType", "[NEW_KEY_MATERIAL, EXISTING_KEY_MATERIAL]")?.map(str::to_string);
        let material_id = material_id_member(&i)?;
        let description = match i.str_len("KeyMaterialDescription", 0, 256)? {
            Some(d) if !d.is_empty() && !d.chars().all(|c| c.is_ascii_alphanumeric() || ":/_.- \t\n\r".contains(c)) => {
                return Err(invalid_value(
                    "KeyMaterialDescription",
                    d,
                    "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_\\s.-]+$",
                ))
            }
            d => d.map(str::to_string),
        };
        let valid_to_given = timestamp_ms(&i, "ValidTo")?;
        let key = KeyRef::parse(&i, "KeyId")?;
        let token = i.req_blob("ImportToken", 1, MAX_CIPHERTEXT)?;
        let wrapped = i.req_blob("EncryptedKeyMaterial", 1, MAX_CIPHERTEXT)?;
        let import = later(|| {
            let expiration_model = model_given.clone().unwrap_or_else(|| "KEY_MATERIAL_EXPIRES".into());
            match (expiration_model.as_str(), valid_to_given) {
                ("KEY_MATERIAL_EXPIRES", None) => {
                    return Err(KmsError::Validation(
                        "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES".into(),
                    ))
                }
                ("KEY_MATERIAL_DOES_NOT_EXPIRE", Some(_)) => {
                    return Err(KmsError::Validation(
                        "The parameter ValidTo cannot be specified for a key with an expiration model of KEY_MATERIAL_DOES_NOT_EXPIRE".into(),
                    ))
                }
                _ => {}
            }
            if import_type.as_deref() == Some("NEW_KEY_MATERIAL") && material_id.is_some() {
                return Err(KmsError::Validation(
                    "You cannot specify a KeyMaterialId when ImportType is NEW_KEY_MATERIAL.".into(),
                ));
            }
            Ok(Import {
                token,
                wrapped,
                expiration_model,
                valid_to: valid_to_given,
                import_type,
                description,
                material_id,
            })
        });
        Ok(ImportKeyMaterial { key, model_given, valid_to_given, import })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut extra: Vec<(ContextKey, ContextValue)> = Vec::new();
        extra.push(("kms:ExpirationModel".into(), s(self.model_given.as_deref().unwrap_or("KEY_MATERIAL_EXPIRES"))));
        if let Some(t) = self.valid_to_given {
            // A date condition key: epoch seconds compare with the Date operators.
            extra.push(("kms:ValidTo".into(), s(&(t / 1000).to_string())));
        }
        self.key.plan(kms, ctx, Self::NAME, extra)
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let imp = self.import?;
        require_external(&k)?;
        k.require_not_pending()?;
        let now = kms.now_ms();
        if let Some(t) = imp.valid_to {
            if t <= now {
                return Err(KmsError::Validation("ValidTo must be in the future".into()));
            }
            if t > now + MAX_VALID_TO_MS {
                return Err(KmsError::Validation("ValidTo must be no more than 365 days from the request date".into()));
            }
        }
        // The token: ours, for this key, unexpired.
        let invalid_token = || KmsError::InvalidImportToken("Import token is invalid for the specified key.".into());
        let plain = kms.open_aux(TOKEN_PURPOSE, &imp.token).ok_or_else(invalid_token)?;
        let token: Token = serde_json::from_slice(&plain).map_err(|_| invalid_token())?;
        if token.account != k.rec.account || token.region != k.rec.region || token.key_id != k.rec.key_id {
            return Err(invalid_token());
        }
        if token.expires <= now {
            return Err(KmsError::ExpiredImportToken("Import token has expired.".into()));
        }
        let der = Zeroizing::new(B64.decode(&token.der).map_err(|_| invalid_token())?);
        let material = crypto::unwrap_key_material(&der, &token.algorithm, &imp.wrapped)
            .map_err(|_| KmsError::InvalidCiphertext(String::new()))?;
        let (material, public) = crypto::check_imported(k.rec.spec, &material).map_err(|e| match e {
            crypto::CryptoError::Invalid(m) => KmsError::IncorrectKeyMaterial(m),
            other => KmsError::from(other),
        })?;
        let id = imported_material_id(&k.rec.key_id, &material);
        if let Some(given) = &imp.material_id {
            if *given != id {
                return Err(KmsError::IncorrectKeyMaterial(
                    "The key material does not match the specified KeyMaterialId.".into(),
                ));
            }
        }
        let symmetric = k.rec.spec == KeySpec::SYMMETRIC_DEFAULT;
        if !symmetric && (imp.import_type.is_some() || imp.material_id.is_some() || imp.description.is_some()) {
            return Err(KmsError::Validation(
                "ImportType, KeyMaterialId and KeyMaterialDescription are only valid for symmetric encryption keys."
                    .into(),
            ));
        }
        let arn = k.arn.clone();
        let valid_to = imp.valid_to;
        let model = imp.expiration_model;
        kms.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
            if r.state == KeyState::PendingDeletion {
                return Err(crate::core::pending(&arn));
            }
            let had_material = !r.versions.is_empty();
            let import_type = imp.import_type.clone().unwrap_or_else(|| {
                if had_material { "EXISTING_KEY_MATERIAL" } else { "NEW_KEY_MATERIAL" }.to_string()
            });
            let existing = r.versions.iter().position(|v| v.material_id == id);
            let index = match (import_type.as_str(), existing) {
                ("EXISTING_KEY_MATERIAL", Some(i)) => i,
                ("EXISTING_KEY_MATERIAL", None) => {
                    return Err(KmsError::IncorrectKeyMaterial(
                        "The key material is not the same key material that was previously imported into this KMS key."
                            .into(),
                    ))
                }
                (_, Some(_)) => {
                    return Err(KmsError::IncorrectKeyMaterial(
                        "This key material was already imported into this KMS key. Use ImportType EXISTING_KEY_MATERIAL to reimport it."
                            .into(),
                    ))
                }
                (_, None) if !had_material => {
                    r.versions.push(kms.seal_version(&arn, &material, &id, None, now)?);
                    0
                }
                (_, None) if r.multi_region_primary == Some(false) => {
                    return Err(KmsError::Unsupported(format!(
                        "{arn} is a multi-Region replica key. Import new key material into its primary key, then the same material into each replica with ImportType EXISTING_KEY_MATERIAL."
                    )))
                }
                (_, None) => {
                    // New material for on-demand rotation: symmetric keys only, one at a time.
                    if !symmetric {
                        return Err(KmsError::IncorrectKeyMaterial(
                            "The key material is not the same key material that was previously imported into this KMS key."
                                .into(),
                        ));
                    }
                    if let Some(pending) = r.versions.last().filter(|v| v.pending_rotation) {
                        // AWS's words (recorded: LocalStack's test_kms.snapshot.json,
                        // test_import_key_material_raises_if_there_is_already_key_material_pending).
                        return Err(KmsError::InvalidState(format!(
                            "New key material (id: {id}) cannot be imported into KMS key {arn}, because another key material (id: {}) is pending rotation.",
                            pending.material_id
                        )));
                    }
                    let mut v = kms.seal_version(&arn, &material, &id, None, now)?;
                    v.pending_rotation = true;
                    r.versions.push(v);
                    r.versions.len() - 1
                }
            };
            let sealed = kms.seal_version(&arn, &material, &id, None, now)?.sealed;
            let v = r.versions.get_mut(index).ok_or_else(|| KmsError::Internal("material index".into()))?;
            v.sealed = sealed;
            v.expiration_model = Some(model.clone());
            v.valid_to = valid_to;
            if imp.description.is_some() {
                v.description = imp.description.clone();
            }
            if let Some(p) = &public {
                r.public_key = Some(B64.encode(p));
            }
            if r.state == KeyState::PendingImport && r.all_imported() {
                r.state = KeyState::Enabled;
            }
            Ok(())
        })?;
        Ok(Output::Json(json!({"KeyId": k.arn, "KeyMaterialId": id})))
    }
}

pub(super) struct DeleteImportedKeyMaterial {
    key: KeyRef,
    material_id: Option<String>,
}

impl Operation<Kms> for DeleteImportedKeyMaterial {
    const NAME: &'static str = "DeleteImportedKeyMaterial";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let material_id = material_id_member(&i)?;
        Ok(DeleteImportedKeyMaterial { key: KeyRef::parse(&i, "KeyId")?, material_id })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        require_external(&k)?;
        let arn = k.arn.clone();
        let wanted = self.material_id;
        let deleted = kms.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
            let index =
                match &wanted {
                    Some(id) => r.versions.iter().position(|v| v.material_id == *id).ok_or_else(|| {
                        KmsError::NotFound(format!("Key material {id} is not associated with {arn}."))
                    })?,
                    None => r
                        .current_index()
                        .ok_or_else(|| KmsError::InvalidState(format!("{arn} has no imported key material.")))?,
                };
            let Some(v) = r.versions.get_mut(index) else {
                return Err(KmsError::Internal("material index".into()));
            };
            let id = v.material_id.clone();
            if v.pending_rotation {
                // Never used to encrypt: it simply goes.
                r.versions.remove(index);
                return Ok(id);
            }
            v.sealed.clear();
            v.valid_to = None;
            v.expiration_model = None;
            if r.state != KeyState::PendingDeletion {
                r.state = KeyState::PendingImport;
            }
            Ok(id)
        })?;
        Ok(Output::Json(json!({"KeyId": k.arn, "KeyMaterialId": deleted})))
    }
}
