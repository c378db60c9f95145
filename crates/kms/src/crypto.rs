//! The cryptography behind KMS keys, on RustCrypto primitives only.
//!
//! * Symmetric keys: AES-256-GCM; the ciphertext blob names account, key ID and key material
//!   version, and that header plus the canonical encryption context are the AAD.
//! * RSA keys: RSAES-OAEP (SHA-1 / SHA-256, MGF1 with the same hash), RSASSA-PKCS1-v1_5 and
//!   RSASSA-PSS (salt length = digest length), as AWS's algorithm names say.
//! * ECC keys: ECDSA over P-256/P-384/P-521/secp256k1, DER signatures.
//! * HMAC keys: HMAC-SHA-224/256/384/512.
//!
//! Private keys are kept as PKCS#8 DER, public keys as X.509 SubjectPublicKeyInfo DER (what
//! `GetPublicKey` returns).

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand_core::OsRng;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::{Oaep, Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use zeroize::Zeroizing;

/// Cryptographic failures, mapped to AWS's exceptions by the caller.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The ciphertext did not authenticate / decrypt (tampered, wrong key, wrong context).
    #[error("invalid ciphertext")]
    InvalidCiphertext,
    /// A signature or MAC did not verify.
    #[error("invalid signature")]
    InvalidSignature,
    /// Input the primitive cannot take (wrong digest length, plaintext too long, …).
    #[error("{0}")]
    Invalid(String),
    /// Stored key material did not parse (corruption): an internal fault.
    #[error("stored key material is corrupt")]
    Corrupt,
}

/// The key specs Rampart creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum KeySpec {
    SYMMETRIC_DEFAULT,
    RSA_2048,
    RSA_3072,
    RSA_4096,
    ECC_NIST_P256,
    ECC_NIST_P384,
    ECC_NIST_P521,
    ECC_SECG_P256K1,
    HMAC_224,
    HMAC_256,
    HMAC_384,
    HMAC_512,
    ML_KEM_512,
    ML_KEM_768,
    ML_KEM_1024,
}

/// Key usages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum KeyUsage {
    ENCRYPT_DECRYPT,
    SIGN_VERIFY,
    GENERATE_VERIFY_MAC,
    KEY_AGREEMENT,
    ENCAPSULATE_DECAPSULATE,
}

impl KeyUsage {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUsage::ENCRYPT_DECRYPT => "ENCRYPT_DECRYPT",
            KeyUsage::SIGN_VERIFY => "SIGN_VERIFY",
            KeyUsage::GENERATE_VERIFY_MAC => "GENERATE_VERIFY_MAC",
            KeyUsage::KEY_AGREEMENT => "KEY_AGREEMENT",
            KeyUsage::ENCAPSULATE_DECAPSULATE => "ENCAPSULATE_DECAPSULATE",
        }
    }

    pub fn parse(s: &str) -> Option<KeyUsage> {
        Some(match s {
            "ENCRYPT_DECRYPT" => KeyUsage::ENCRYPT_DECRYPT,
            "SIGN_VERIFY" => KeyUsage::SIGN_VERIFY,
            "GENERATE_VERIFY_MAC" => KeyUsage::GENERATE_VERIFY_MAC,
            "KEY_AGREEMENT" => KeyUsage::KEY_AGREEMENT,
            "ENCAPSULATE_DECAPSULATE" => KeyUsage::ENCAPSULATE_DECAPSULATE,
            _ => return None,
        })
    }
}

impl KeySpec {
    pub const ALL: [KeySpec; 15] = [
        KeySpec::SYMMETRIC_DEFAULT,
        KeySpec::RSA_2048,
        KeySpec::RSA_3072,
        KeySpec::RSA_4096,
        KeySpec::ECC_NIST_P256,
        KeySpec::ECC_NIST_P384,
        KeySpec::ECC_NIST_P521,
        KeySpec::ECC_SECG_P256K1,
        KeySpec::HMAC_224,
        KeySpec::HMAC_256,
        KeySpec::HMAC_384,
        KeySpec::HMAC_512,
        KeySpec::ML_KEM_512,
        KeySpec::ML_KEM_768,
        KeySpec::ML_KEM_1024,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeySpec::SYMMETRIC_DEFAULT => "SYMMETRIC_DEFAULT",
            KeySpec::RSA_2048 => "RSA_2048",
            KeySpec::RSA_3072 => "RSA_3072",
            KeySpec::RSA_4096 => "RSA_4096",
            KeySpec::ECC_NIST_P256 => "ECC_NIST_P256",
            KeySpec::ECC_NIST_P384 => "ECC_NIST_P384",
            KeySpec::ECC_NIST_P521 => "ECC_NIST_P521",
            KeySpec::ECC_SECG_P256K1 => "ECC_SECG_P256K1",
            KeySpec::HMAC_224 => "HMAC_224",
            KeySpec::HMAC_256 => "HMAC_256",
            KeySpec::HMAC_384 => "HMAC_384",
            KeySpec::HMAC_512 => "HMAC_512",
            KeySpec::ML_KEM_512 => "ML_KEM_512",
            KeySpec::ML_KEM_768 => "ML_KEM_768",
            KeySpec::ML_KEM_1024 => "ML_KEM_1024",
        }
    }

    pub fn parse(s: &str) -> Option<KeySpec> {
        KeySpec::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, KeySpec::RSA_2048 | KeySpec::RSA_3072 | KeySpec::RSA_4096)
    }

    pub fn is_ecc(self) -> bool {
        matches!(
            self,
            KeySpec::ECC_NIST_P256 | KeySpec::ECC_NIST_P384 | KeySpec::ECC_NIST_P521 | KeySpec::ECC_SECG_P256K1
        )
    }

    pub fn is_hmac(self) -> bool {
        matches!(self, KeySpec::HMAC_224 | KeySpec::HMAC_256 | KeySpec::HMAC_384 | KeySpec::HMAC_512)
    }

    pub fn is_ml_kem(self) -> bool {
        matches!(self, KeySpec::ML_KEM_512 | KeySpec::ML_KEM_768 | KeySpec::ML_KEM_1024)
    }

    /// The NIST curves, which AWS allows for key agreement (secp256k1 is signing only).
    pub fn is_nist_ecc(self) -> bool {
        matches!(self, KeySpec::ECC_NIST_P256 | KeySpec::ECC_NIST_P384 | KeySpec::ECC_NIST_P521)
    }

    pub fn is_asymmetric(self) -> bool {
        self.is_rsa() || self.is_ecc() || self.is_ml_kem()
    }

    /// Usages AWS allows for this spec (the first is the default).
    pub fn usages(self) -> &'static [KeyUsage] {
        match self {
            KeySpec::SYMMETRIC_DEFAULT => &[KeyUsage::ENCRYPT_DECRYPT],
            s if s.is_rsa() => &[KeyUsage::ENCRYPT_DECRYPT, KeyUsage::SIGN_VERIFY],
            s if s.is_nist_ecc() => &[KeyUsage::SIGN_VERIFY, KeyUsage::KEY_AGREEMENT],
            s if s.is_ecc() => &[KeyUsage::SIGN_VERIFY],
            s if s.is_ml_kem() => &[KeyUsage::ENCAPSULATE_DECAPSULATE],
            _ => &[KeyUsage::GENERATE_VERIFY_MAC],
        }
    }

    pub fn encryption_algorithms(self, usage: KeyUsage) -> &'static [&'static str] {
        match (self, usage) {
            (KeySpec::SYMMETRIC_DEFAULT, _) => &["SYMMETRIC_DEFAULT"],
            (s, KeyUsage::ENCRYPT_DECRYPT) if s.is_rsa() => &["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"],
            _ => &[],
        }
    }

    pub fn signing_algorithms(self, usage: KeyUsage) -> &'static [&'static str] {
        if usage != KeyUsage::SIGN_VERIFY {
            return &[];
        }
        match self {
            s if s.is_rsa() => &[
                "RSASSA_PKCS1_V1_5_SHA_256",
                "RSASSA_PKCS1_V1_5_SHA_384",
                "RSASSA_PKCS1_V1_5_SHA_512",
                "RSASSA_PSS_SHA_256",
                "RSASSA_PSS_SHA_384",
                "RSASSA_PSS_SHA_512",
            ],
            KeySpec::ECC_NIST_P256 | KeySpec::ECC_SECG_P256K1 => &["ECDSA_SHA_256"],
            KeySpec::ECC_NIST_P384 => &["ECDSA_SHA_384"],
            KeySpec::ECC_NIST_P521 => &["ECDSA_SHA_512"],
            _ => &[],
        }
    }

    /// `KeyAgreementAlgorithms` of DescribeKey and GetPublicKey.
    pub fn key_agreement_algorithms(self, usage: KeyUsage) -> &'static [&'static str] {
        if usage == KeyUsage::KEY_AGREEMENT && self.is_nist_ecc() {
            &["ECDH"]
        } else {
            &[]
        }
    }

    /// `EncapsulationAlgorithms` of DescribeKey and GetPublicKey.
    pub fn encapsulation_algorithms(self) -> &'static [&'static str] {
        if self.is_ml_kem() {
            &["ML_KEM"]
        } else {
            &[]
        }
    }

    pub fn mac_algorithms(self) -> &'static [&'static str] {
        match self {
            KeySpec::HMAC_224 => &["HMAC_SHA_224"],
            KeySpec::HMAC_256 => &["HMAC_SHA_256"],
            KeySpec::HMAC_384 => &["HMAC_SHA_384"],
            KeySpec::HMAC_512 => &["HMAC_SHA_512"],
            _ => &[],
        }
    }
}

macro_rules! ec_generate {
    ($krate:ident) => {{
        let secret = $krate::SecretKey::random(&mut OsRng);
        let der = secret.to_pkcs8_der().map_err(|_| CryptoError::Corrupt)?;
        let public = secret.public_key().to_public_key_der().map_err(|_| CryptoError::Corrupt)?;
        (Zeroizing::new(der.as_bytes().to_vec()), Some(public.as_bytes().to_vec()))
    }};
}

/// `(private material, public SPKI DER for asymmetric keys)`.
pub type KeyPair = (Zeroizing<Vec<u8>>, Option<Vec<u8>>);

/// Fresh key material for `spec`: 32 random bytes (AES-256), HMAC key bytes, or PKCS#8 DER.
/// Returns `(private material, public SPKI DER for asymmetric keys)`.
pub fn generate(spec: KeySpec) -> Result<KeyPair, CryptoError> {
    let random = |n: usize| {
        let mut v = Zeroizing::new(vec![0u8; n]);
        rand::rng().fill_bytes(&mut v);
        v
    };
    Ok(match spec {
        KeySpec::SYMMETRIC_DEFAULT => (random(32), None),
        KeySpec::HMAC_224 => (random(28), None),
        KeySpec::HMAC_256 => (random(32), None),
        KeySpec::HMAC_384 => (random(48), None),
        KeySpec::HMAC_512 => (random(64), None),
        KeySpec::RSA_2048 | KeySpec::RSA_3072 | KeySpec::RSA_4096 => {
            let bits = match spec {
                KeySpec::RSA_2048 => 2048,
                KeySpec::RSA_3072 => 3072,
                _ => 4096,
            };
            let key = RsaPrivateKey::new(&mut OsRng, bits).map_err(|e| CryptoError::Invalid(e.to_string()))?;
            let der = key.to_pkcs8_der().map_err(|_| CryptoError::Corrupt)?;
            let public = key.to_public_key().to_public_key_der().map_err(|_| CryptoError::Corrupt)?;
            (Zeroizing::new(der.as_bytes().to_vec()), Some(public.as_bytes().to_vec()))
        }
        KeySpec::ECC_NIST_P256 => ec_generate!(p256),
        KeySpec::ECC_NIST_P384 => ec_generate!(p384),
        KeySpec::ECC_NIST_P521 => ec_generate!(p521),
        KeySpec::ECC_SECG_P256K1 => ec_generate!(k256),
        KeySpec::ML_KEM_512 | KeySpec::ML_KEM_768 | KeySpec::ML_KEM_1024 => {
            // The private key is kept as its 64-byte seed (FIPS 203's preferred form).
            let seed = random(64);
            let public = ml_kem_public(spec, &seed)?;
            (seed, Some(public))
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Symmetric ciphertext blobs

const BLOB_FORMAT: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// What a symmetric ciphertext blob says about its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobHeader {
    pub account: String,
    pub key_id: String,
    pub version: u32,
}

/// Parse the clear header of a symmetric ciphertext blob: `(header, header length)`.
pub fn parse_blob(blob: &[u8]) -> Result<(BlobHeader, usize), CryptoError> {
    let bad = || CryptoError::InvalidCiphertext;
    if blob.first() != Some(&BLOB_FORMAT) || blob.len() < 2 + 12 {
        return Err(bad());
    }
    let account = std::str::from_utf8(blob.get(1..13).ok_or_else(bad)?).map_err(|_| bad())?;
    if !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let id_len = *blob.get(13).ok_or_else(bad)? as usize;
    let id_end = 14 + id_len;
    let header_len = id_end + 4;
    if blob.len() < header_len + NONCE_LEN + TAG_LEN {
        return Err(bad());
    }
    let key_id = std::str::from_utf8(blob.get(14..id_end).ok_or_else(bad)?).map_err(|_| bad())?;
    if key_id.is_empty() || !key_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(bad());
    }
    let version_bytes: [u8; 4] = blob.get(id_end..header_len).and_then(|b| b.try_into().ok()).ok_or_else(bad)?;
    let version = u32::from_be_bytes(version_bytes);
    Ok((BlobHeader { account: account.to_string(), key_id: key_id.to_string(), version }, header_len))
}

/// The canonical encoding of an encryption context (sorted, length-prefixed) used as AAD.
pub fn context_aad(context: &BTreeMap<String, String>) -> Vec<u8> {
    aad(&[], context)
}

/// `header` followed by the encryption context's AAD form, in one buffer.
fn aad(header: &[u8], context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + context.iter().map(|(k, v)| k.len() + v.len() + 8).sum::<usize>());
    out.extend_from_slice(header);
    for (k, v) in context {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// Encrypt under a symmetric key version.
pub fn seal_blob(
    key: &[u8],
    header: &BlobHeader,
    plaintext: &[u8],
    context: &BTreeMap<String, String>,
) -> Result<Vec<u8>, CryptoError> {
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| CryptoError::Corrupt)?;
    if header.account.len() != 12 || header.key_id.len() > 255 {
        return Err(CryptoError::Invalid("bad key reference".into()));
    }
    let mut out = Vec::with_capacity(18 + header.key_id.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(BLOB_FORMAT);
    out.extend_from_slice(header.account.as_bytes());
    out.push(header.key_id.len() as u8);
    out.extend_from_slice(header.key_id.as_bytes());
    out.extend_from_slice(&header.version.to_be_bytes());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad(&out, context) })
        .map_err(|_| CryptoError::Invalid("encryption failed".into()))?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypt a symmetric blob whose header was parsed by [`parse_blob`].
pub fn open_blob(
    key: &[u8],
    blob: &[u8],
    header_len: usize,
    context: &BTreeMap<String, String>,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| CryptoError::Corrupt)?;
    let (header, rest) = blob.split_at_checked(header_len).ok_or(CryptoError::InvalidCiphertext)?;
    let (nonce, msg) = rest.split_at_checked(NONCE_LEN).ok_or(CryptoError::InvalidCiphertext)?;
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg, aad: &aad(header, context) })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::InvalidCiphertext)
}

// ---------------------------------------------------------------------------------------------
// RSA encryption

fn rsa_private(der: &[u8]) -> Result<RsaPrivateKey, CryptoError> {
    RsaPrivateKey::from_pkcs8_der(der).map_err(|_| CryptoError::Corrupt)
}

fn rsa_public(spki: &[u8]) -> Result<RsaPublicKey, CryptoError> {
    RsaPublicKey::from_public_key_der(spki).map_err(|_| CryptoError::Corrupt)
}

/// The largest plaintext RSAES-OAEP takes for a modulus of `bits` with `algorithm`.
pub fn rsa_max_plaintext(spec: KeySpec, algorithm: &str) -> usize {
    let k = match spec {
        KeySpec::RSA_2048 => 256,
        KeySpec::RSA_3072 => 384,
        _ => 512,
    };
    let h = if algorithm == "RSAES_OAEP_SHA_1" { 20 } else { 32 };
    k - 2 * h - 2
}

pub fn rsa_encrypt(spki: &[u8], algorithm: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let key = rsa_public(spki)?;
    let padding = match algorithm {
        "RSAES_OAEP_SHA_1" => Oaep::new::<sha1::Sha1>(),
        "RSAES_OAEP_SHA_256" => Oaep::new::<Sha256>(),
        _ => return Err(CryptoError::Invalid(format!("unsupported encryption algorithm {algorithm}"))),
    };
    key.encrypt(&mut OsRng, padding, plaintext).map_err(|e| CryptoError::Invalid(e.to_string()))
}

pub fn rsa_decrypt(der: &[u8], algorithm: &str, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let key = rsa_private(der)?;
    let padding = match algorithm {
        "RSAES_OAEP_SHA_1" => Oaep::new::<sha1::Sha1>(),
        "RSAES_OAEP_SHA_256" => Oaep::new::<Sha256>(),
        _ => return Err(CryptoError::InvalidCiphertext),
    };
    key.decrypt(padding, ciphertext).map(Zeroizing::new).map_err(|_| CryptoError::InvalidCiphertext)
}

// ---------------------------------------------------------------------------------------------
// Signatures

/// The digest an algorithm signs: `(hash name, length)`.
pub fn signing_digest_len(algorithm: &str) -> Option<usize> {
    Some(match algorithm {
        "RSASSA_PKCS1_V1_5_SHA_256" | "RSASSA_PSS_SHA_256" | "ECDSA_SHA_256" => 32,
        "RSASSA_PKCS1_V1_5_SHA_384" | "RSASSA_PSS_SHA_384" | "ECDSA_SHA_384" => 48,
        "RSASSA_PKCS1_V1_5_SHA_512" | "RSASSA_PSS_SHA_512" | "ECDSA_SHA_512" => 64,
        _ => return None,
    })
}

/// Hash `message` as `algorithm` does (RAW messages).
pub fn signing_digest(algorithm: &str, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
    Ok(match signing_digest_len(algorithm) {
        Some(32) => Sha256::digest(message).to_vec(),
        Some(48) => Sha384::digest(message).to_vec(),
        Some(64) => Sha512::digest(message).to_vec(),
        _ => return Err(CryptoError::Invalid(format!("unsupported signing algorithm {algorithm}"))),
    })
}

fn rsa_padding_sign(algorithm: &str) -> Result<Result<Pkcs1v15Sign, Pss>, CryptoError> {
    Ok(match algorithm {
        "RSASSA_PKCS1_V1_5_SHA_256" => Ok(Pkcs1v15Sign::new::<Sha256>()),
        "RSASSA_PKCS1_V1_5_SHA_384" => Ok(Pkcs1v15Sign::new::<Sha384>()),
        "RSASSA_PKCS1_V1_5_SHA_512" => Ok(Pkcs1v15Sign::new::<Sha512>()),
        "RSASSA_PSS_SHA_256" => Err(Pss::new::<Sha256>()),
        "RSASSA_PSS_SHA_384" => Err(Pss::new::<Sha384>()),
        "RSASSA_PSS_SHA_512" => Err(Pss::new::<Sha512>()),
        _ => return Err(CryptoError::Invalid(format!("unsupported signing algorithm {algorithm}"))),
    })
}

macro_rules! ec_sign {
    ($krate:ident, $der:expr, $digest:expr) => {{
        use $krate::ecdsa::signature::hazmat::PrehashSigner;
        let secret = $krate::SecretKey::from_pkcs8_der($der).map_err(|_| CryptoError::Corrupt)?;
        let sk = $krate::ecdsa::SigningKey::from_slice(&secret.to_bytes()).map_err(|_| CryptoError::Corrupt)?;
        let sig: $krate::ecdsa::Signature =
            sk.sign_prehash($digest).map_err(|e| CryptoError::Invalid(e.to_string()))?;
        let sig = sig.normalize_s().unwrap_or(sig);
        sig.to_der().as_bytes().to_vec()
    }};
}

macro_rules! ec_verify {
    ($krate:ident, $spki:expr, $digest:expr, $sig:expr) => {{
        use $krate::ecdsa::signature::hazmat::PrehashVerifier;
        let public = $krate::PublicKey::from_public_key_der($spki).map_err(|_| CryptoError::Corrupt)?;
        let vk =
            $krate::ecdsa::VerifyingKey::from_sec1_bytes(&public.to_sec1_bytes()).map_err(|_| CryptoError::Corrupt)?;
        let sig = $krate::ecdsa::Signature::from_der($sig).map_err(|_| CryptoError::InvalidSignature)?;
        let sig = sig.normalize_s().unwrap_or(sig);
        vk.verify_prehash($digest, &sig).map_err(|_| CryptoError::InvalidSignature)
    }};
}

/// Sign a digest (already hashed with the algorithm's hash) with a private key (PKCS#8 DER).
pub fn sign(spec: KeySpec, der: &[u8], algorithm: &str, digest: &[u8]) -> Result<Vec<u8>, CryptoError> {
    Ok(match spec {
        s if s.is_rsa() => {
            let key = rsa_private(der)?;
            match rsa_padding_sign(algorithm)? {
                Ok(p) => key.sign(p, digest),
                Err(p) => key.sign_with_rng(&mut OsRng, p, digest),
            }
            .map_err(|e| CryptoError::Invalid(e.to_string()))?
        }
        KeySpec::ECC_NIST_P256 => ec_sign!(p256, der, digest),
        KeySpec::ECC_NIST_P384 => ec_sign!(p384, der, digest),
        KeySpec::ECC_NIST_P521 => ec_sign!(p521, der, digest),
        KeySpec::ECC_SECG_P256K1 => ec_sign!(k256, der, digest),
        _ => return Err(CryptoError::Invalid("not a signing key".into())),
    })
}

/// Verify a signature over a digest with a public key (SPKI DER).
pub fn verify(spec: KeySpec, spki: &[u8], algorithm: &str, digest: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    match spec {
        s if s.is_rsa() => {
            let key = rsa_public(spki)?;
            match rsa_padding_sign(algorithm)? {
                Ok(p) => key.verify(p, digest, sig),
                Err(p) => key.verify(p, digest, sig),
            }
            .map_err(|_| CryptoError::InvalidSignature)
        }
        KeySpec::ECC_NIST_P256 => ec_verify!(p256, spki, digest, sig),
        KeySpec::ECC_NIST_P384 => ec_verify!(p384, spki, digest, sig),
        KeySpec::ECC_NIST_P521 => ec_verify!(p521, spki, digest, sig),
        KeySpec::ECC_SECG_P256K1 => ec_verify!(k256, spki, digest, sig),
        _ => Err(CryptoError::Invalid("not a signing key".into())),
    }
}

// ---------------------------------------------------------------------------------------------
// HMAC

pub fn mac(algorithm: &str, key: &[u8], message: &[u8]) -> Result<Vec<u8>, CryptoError> {
    macro_rules! hmac {
        ($h:ty) => {{
            let mut m = <Hmac<$h> as Mac>::new_from_slice(key).map_err(|_| CryptoError::Corrupt)?;
            m.update(message);
            m.finalize().into_bytes().to_vec()
        }};
    }
    Ok(match algorithm {
        "HMAC_SHA_224" => hmac!(Sha224),
        "HMAC_SHA_256" => hmac!(Sha256),
        "HMAC_SHA_384" => hmac!(Sha384),
        "HMAC_SHA_512" => hmac!(Sha512),
        _ => return Err(CryptoError::Invalid(format!("unsupported MAC algorithm {algorithm}"))),
    })
}

pub fn mac_verify(algorithm: &str, key: &[u8], message: &[u8], tag: &[u8]) -> Result<(), CryptoError> {
    use subtle::ConstantTimeEq;
    let expected = mac(algorithm, key, message)?;
    if expected.len() == tag.len() && bool::from(expected.ct_eq(tag)) {
        Ok(())
    } else {
        Err(CryptoError::InvalidSignature)
    }
}

// ---------------------------------------------------------------------------------------------
// Key agreement (ECDH)

macro_rules! ecdh {
    ($krate:ident, $der:expr, $peer:expr) => {{
        use $krate::elliptic_curve::sec1::ToEncodedPoint;
        let secret = $krate::SecretKey::from_pkcs8_der($der).map_err(|_| CryptoError::Corrupt)?;
        let peer = $krate::PublicKey::from_public_key_der($peer).map_err(|_| bad_peer_key())?;
        let point = (peer.to_projective() * *secret.to_nonzero_scalar()).to_affine();
        let encoded = point.to_encoded_point(false);
        Zeroizing::new(encoded.x().ok_or_else(bad_peer_key)?.to_vec())
    }};
}

fn bad_peer_key() -> CryptoError {
    CryptoError::Invalid("PublicKey".into())
}

/// ECDH (the cofactor Diffie-Hellman primitive; the NIST curves have cofactor 1): the
/// x-coordinate of the private scalar times the peer's public point, as SEC 1 encodes it.
/// `peer` is a DER SubjectPublicKeyInfo on the key's curve; anything else is
/// `CryptoError::Invalid("PublicKey")`.
pub fn ecdh(spec: KeySpec, der: &[u8], peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    Ok(match spec {
        KeySpec::ECC_NIST_P256 => ecdh!(p256, der, peer),
        KeySpec::ECC_NIST_P384 => ecdh!(p384, der, peer),
        KeySpec::ECC_NIST_P521 => ecdh!(p521, der, peer),
        _ => return Err(CryptoError::Invalid("not a key agreement key".into())),
    })
}

// ---------------------------------------------------------------------------------------------
// ML-KEM (FIPS 203), RustCrypto's ml-kem: private keys are 64-byte seeds, public keys SPKI DER.

macro_rules! with_ml_kem {
    ($spec:expr, $P:ident => $body:expr) => {
        match $spec {
            KeySpec::ML_KEM_512 => {
                type $P = ml_kem::MlKem512;
                $body
            }
            KeySpec::ML_KEM_768 => {
                type $P = ml_kem::MlKem768;
                $body
            }
            KeySpec::ML_KEM_1024 => {
                type $P = ml_kem::MlKem1024;
                $body
            }
            _ => Err(CryptoError::Invalid("not an ML-KEM key".into())),
        }
    };
}

fn ml_kem_seed(seed: &[u8]) -> Result<ml_kem::Seed, CryptoError> {
    ml_kem::Seed::try_from(seed).map_err(|_| CryptoError::Corrupt)
}

/// The SPKI DER of the encapsulation key of an ML-KEM seed.
pub fn ml_kem_public(spec: KeySpec, seed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    use ml_kem::pkcs8::EncodePublicKey;
    with_ml_kem!(spec, P => {
        let dk = ml_kem::DecapsulationKey::<P>::from_seed(ml_kem_seed(seed)?);
        let der = dk.encapsulation_key().to_public_key_der().map_err(|_| CryptoError::Corrupt)?;
        Ok(der.as_bytes().to_vec())
    })
}

/// Encapsulate to an ML-KEM public key (SPKI DER): `(ciphertext, 32-byte shared secret)`.
pub fn ml_kem_encapsulate(spec: KeySpec, spki: &[u8]) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), CryptoError> {
    use ml_kem::pkcs8::DecodePublicKey;
    with_ml_kem!(spec, P => {
        let ek = ml_kem::EncapsulationKey::<P>::from_public_key_der(spki).map_err(|_| CryptoError::Corrupt)?;
        let mut m = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(m.as_mut());
        let (ct, mut ss) = ek.encapsulate_deterministic(&ml_kem::B32::from(*m));
        let secret = Zeroizing::new(ss.to_vec());
        zeroize::Zeroize::zeroize(ss.as_mut_slice());
        Ok((ct.to_vec(), secret))
    })
}

/// Decapsulate with an ML-KEM seed. A ciphertext of the wrong length for the parameter set is
/// `InvalidCiphertext`; any other ciphertext gives 32 bytes (FIPS 203's implicit rejection).
pub fn ml_kem_decapsulate(spec: KeySpec, seed: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    use ml_kem::kem::Decapsulate;
    with_ml_kem!(spec, P => {
        let dk = ml_kem::DecapsulationKey::<P>::from_seed(ml_kem_seed(seed)?);
        let ct = ml_kem::Ciphertext::<P>::try_from(ct).map_err(|_| CryptoError::InvalidCiphertext)?;
        let mut ss = dk.decapsulate(&ct);
        let secret = Zeroizing::new(ss.to_vec());
        zeroize::Zeroize::zeroize(ss.as_mut_slice());
        Ok(secret)
    })
}

// ---------------------------------------------------------------------------------------------
// Imported key material

/// A wrapping key pair of GetParametersForImport: `(PKCS#8 DER, SPKI DER)`.
pub fn wrapping_key(bits: usize) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CryptoError> {
    let key = RsaPrivateKey::new(&mut OsRng, bits).map_err(|e| CryptoError::Invalid(e.to_string()))?;
    let der = key.to_pkcs8_der().map_err(|_| CryptoError::Corrupt)?;
    let public = key.to_public_key().to_public_key_der().map_err(|_| CryptoError::Corrupt)?;
    Ok((Zeroizing::new(der.as_bytes().to_vec()), public.as_bytes().to_vec()))
}

/// Unwrap `EncryptedKeyMaterial` with the wrapping private key: RSAES-OAEP directly, or
/// CKM_RSA_AES_KEY_WRAP (an RSAES-OAEP-wrapped ephemeral AES key of 128–256 bits followed by the
/// material under AES key wrap with padding, RFC 5649). Any failure is `InvalidCiphertext`.
pub fn unwrap_key_material(
    wrapping_der: &[u8],
    algorithm: &str,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let key = rsa_private(wrapping_der)?;
    let oaep = |sha256: bool| if sha256 { Oaep::new::<Sha256>() } else { Oaep::new::<sha1::Sha1>() };
    let rsa_len = rsa::traits::PublicKeyParts::size(&key);
    match algorithm {
        "RSAES_OAEP_SHA_1" | "RSAES_OAEP_SHA_256" => key
            .decrypt(oaep(algorithm == "RSAES_OAEP_SHA_256"), wrapped)
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::InvalidCiphertext),
        "RSA_AES_KEY_WRAP_SHA_1" | "RSA_AES_KEY_WRAP_SHA_256" => {
            let (head, tail) = wrapped.split_at_checked(rsa_len).ok_or(CryptoError::InvalidCiphertext)?;
            let aes_key = Zeroizing::new(
                key.decrypt(oaep(algorithm == "RSA_AES_KEY_WRAP_SHA_256"), head)
                    .map_err(|_| CryptoError::InvalidCiphertext)?,
            );
            let mut out = Zeroizing::new(vec![0u8; tail.len()]);
            let n = kwp_unwrap(&aes_key, tail, &mut out)?;
            out.truncate(n);
            Ok(out)
        }
        _ => Err(CryptoError::InvalidCiphertext),
    }
}

fn kwp_unwrap(aes_key: &[u8], data: &[u8], out: &mut [u8]) -> Result<usize, CryptoError> {
    use aes_kw::KeyInit;
    let bad = |_| CryptoError::InvalidCiphertext;
    Ok(match aes_key.len() {
        16 => aes_kw::KwpAes128::new_from_slice(aes_key)
            .map_err(|_| CryptoError::InvalidCiphertext)?
            .unwrap_key(data, out)
            .map_err(bad)?
            .len(),
        24 => aes_kw::KwpAes192::new_from_slice(aes_key)
            .map_err(|_| CryptoError::InvalidCiphertext)?
            .unwrap_key(data, out)
            .map_err(bad)?
            .len(),
        32 => aes_kw::KwpAes256::new_from_slice(aes_key)
            .map_err(|_| CryptoError::InvalidCiphertext)?
            .unwrap_key(data, out)
            .map_err(bad)?
            .len(),
        _ => return Err(CryptoError::InvalidCiphertext),
    })
}

/// AES key wrap with padding (tests: the client side of RSA_AES_KEY_WRAP).
pub fn kwp_wrap(aes_key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    use aes_kw::KeyInit;
    let mut out = vec![0u8; data.len().div_ceil(8) * 8 + 8];
    let kw = aes_kw::KwpAes256::new_from_slice(aes_key).map_err(|_| CryptoError::Invalid("AES-256 key".into()))?;
    let n = kw.wrap_key(data, &mut out).map_err(|_| CryptoError::Invalid("wrap".into()))?.len();
    out.truncate(n);
    Ok(out)
}

/// Checks imported key material against the key spec, as AWS's requirements for imported key
/// material say: 256-bit symmetric keys; HMAC keys of the spec's length range; asymmetric
/// private keys as PKCS#8 DER of the key spec's type and size. Returns the material as stored
/// and, for asymmetric keys, the public key (SPKI DER). Anything else is `Invalid`.
pub fn check_imported(spec: KeySpec, material: &[u8]) -> Result<KeyPair, CryptoError> {
    let wrong = || CryptoError::Invalid(format!("The key material is not valid for key spec {}.", spec.as_str()));
    let len_ok = |min: usize, max: usize| (min..=max).contains(&material.len());
    macro_rules! ec_import {
        ($krate:ident) => {{
            let secret = $krate::SecretKey::from_pkcs8_der(material).map_err(|_| wrong())?;
            let der = secret.to_pkcs8_der().map_err(|_| CryptoError::Corrupt)?;
            let public = secret.public_key().to_public_key_der().map_err(|_| CryptoError::Corrupt)?;
            (Zeroizing::new(der.as_bytes().to_vec()), Some(public.as_bytes().to_vec()))
        }};
    }
    Ok(match spec {
        KeySpec::SYMMETRIC_DEFAULT if material.len() == 32 => (Zeroizing::new(material.to_vec()), None),
        KeySpec::HMAC_224 if len_ok(28, 64) => (Zeroizing::new(material.to_vec()), None),
        KeySpec::HMAC_256 if len_ok(32, 64) => (Zeroizing::new(material.to_vec()), None),
        KeySpec::HMAC_384 if len_ok(48, 128) => (Zeroizing::new(material.to_vec()), None),
        KeySpec::HMAC_512 if len_ok(64, 128) => (Zeroizing::new(material.to_vec()), None),
        KeySpec::RSA_2048 | KeySpec::RSA_3072 | KeySpec::RSA_4096 => {
            let key = RsaPrivateKey::from_pkcs8_der(material).map_err(|_| wrong())?;
            let bits = match spec {
                KeySpec::RSA_2048 => 2048,
                KeySpec::RSA_3072 => 3072,
                _ => 4096,
            };
            if rsa::traits::PublicKeyParts::size(&key) * 8 != bits || key.validate().is_err() {
                return Err(wrong());
            }
            let der = key.to_pkcs8_der().map_err(|_| CryptoError::Corrupt)?;
            let public = key.to_public_key().to_public_key_der().map_err(|_| CryptoError::Corrupt)?;
            (Zeroizing::new(der.as_bytes().to_vec()), Some(public.as_bytes().to_vec()))
        }
        KeySpec::ECC_NIST_P256 => ec_import!(p256),
        KeySpec::ECC_NIST_P384 => ec_import!(p384),
        KeySpec::ECC_NIST_P521 => ec_import!(p521),
        KeySpec::ECC_SECG_P256K1 => ec_import!(k256),
        _ => return Err(wrong()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> BlobHeader {
        BlobHeader { account: "111122223333".into(), key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(), version: 3 }
    }

    proptest! {
        #[test]
        fn symmetric_round_trip(pt in proptest::collection::vec(any::<u8>(), 0..512),
                                ctx in proptest::collection::btree_map("[a-z]{1,8}", "[a-z0-9]{0,8}", 0..4)) {
            let (key, _) = generate(KeySpec::SYMMETRIC_DEFAULT).unwrap();
            let blob = seal_blob(&key, &header(), &pt, &ctx).unwrap();
            let (h, len) = parse_blob(&blob).unwrap();
            prop_assert_eq!(h, header());
            prop_assert_eq!(&open_blob(&key, &blob, len, &ctx).unwrap()[..], &pt[..]);
        }

        #[test]
        fn any_tamper_is_rejected(pt in proptest::collection::vec(any::<u8>(), 1..64), pos in any::<usize>(), bit in 0u8..8) {
            let (key, _) = generate(KeySpec::SYMMETRIC_DEFAULT).unwrap();
            let ctx = BTreeMap::from([("purpose".to_string(), "test".to_string())]);
            let mut blob = seal_blob(&key, &header(), &pt, &ctx).unwrap();
            let i = pos % blob.len();
            blob[i] ^= 1 << bit;
            let opened = parse_blob(&blob).and_then(|(_, len)| open_blob(&key, &blob, len, &ctx));
            prop_assert!(opened.is_err());
        }
    }

    #[test]
    fn wrong_context_and_truncation() {
        let (key, _) = generate(KeySpec::SYMMETRIC_DEFAULT).unwrap();
        let ctx = BTreeMap::from([("a".to_string(), "1".to_string())]);
        let blob = seal_blob(&key, &header(), b"secret", &ctx).unwrap();
        let (_, len) = parse_blob(&blob).unwrap();
        assert_eq!(open_blob(&key, &blob, len, &BTreeMap::new()), Err(CryptoError::InvalidCiphertext));
        let other = BTreeMap::from([("a".to_string(), "2".to_string())]);
        assert_eq!(open_blob(&key, &blob, len, &other), Err(CryptoError::InvalidCiphertext));
        for n in 0..blob.len() {
            let t = &blob[..n];
            assert!(parse_blob(t).and_then(|(_, l)| open_blob(&key, t, l, &ctx)).is_err());
        }
        // Context encoding is unambiguous: {"ab": ""} != {"a": "b"}.
        let c1 = BTreeMap::from([("ab".to_string(), String::new())]);
        let c2 = BTreeMap::from([("a".to_string(), "b".to_string())]);
        assert_ne!(context_aad(&c1), context_aad(&c2));
    }

    #[test]
    fn ecc_sign_verify_all_curves() {
        for (spec, alg) in [
            (KeySpec::ECC_NIST_P256, "ECDSA_SHA_256"),
            (KeySpec::ECC_NIST_P384, "ECDSA_SHA_384"),
            (KeySpec::ECC_NIST_P521, "ECDSA_SHA_512"),
            (KeySpec::ECC_SECG_P256K1, "ECDSA_SHA_256"),
        ] {
            let (der, spki) = generate(spec).unwrap();
            let spki = spki.unwrap();
            let d = signing_digest(alg, b"hello").unwrap();
            let sig = sign(spec, &der, alg, &d).unwrap();
            verify(spec, &spki, alg, &d, &sig).unwrap();
            let d2 = signing_digest(alg, b"hellO").unwrap();
            assert_eq!(verify(spec, &spki, alg, &d2, &sig), Err(CryptoError::InvalidSignature), "{spec:?}");
        }
    }

    #[test]
    fn rsa_encrypt_and_sign() {
        let (der, spki) = generate(KeySpec::RSA_2048).unwrap();
        let spki = spki.unwrap();
        for alg in ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"] {
            let ct = rsa_encrypt(&spki, alg, b"data").unwrap();
            assert_eq!(&rsa_decrypt(&der, alg, &ct).unwrap()[..], b"data");
            let max = rsa_max_plaintext(KeySpec::RSA_2048, alg);
            assert!(rsa_encrypt(&spki, alg, &vec![0u8; max]).is_ok());
            assert!(rsa_encrypt(&spki, alg, &vec![0u8; max + 1]).is_err());
        }
        let ct = rsa_encrypt(&spki, "RSAES_OAEP_SHA_1", b"data").unwrap();
        assert!(rsa_decrypt(&der, "RSAES_OAEP_SHA_256", &ct).is_err());
        for alg in KeySpec::RSA_2048.signing_algorithms(KeyUsage::SIGN_VERIFY) {
            let d = signing_digest(alg, b"msg").unwrap();
            let sig = sign(KeySpec::RSA_2048, &der, alg, &d).unwrap();
            verify(KeySpec::RSA_2048, &spki, alg, &d, &sig).unwrap();
            let mut bad = sig.clone();
            bad[10] ^= 1;
            assert!(verify(KeySpec::RSA_2048, &spki, alg, &d, &bad).is_err());
        }
    }

    #[test]
    fn hmac_known_answer() {
        // RFC 4231 test case 2.
        let tag = mac("HMAC_SHA_256", b"Jefe", b"what do ya want for nothing?").unwrap();
        assert_eq!(hex::encode(&tag), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(mac_verify("HMAC_SHA_256", b"Jefe", b"what do ya want for nothing?", &tag).is_ok());
        assert!(mac_verify("HMAC_SHA_256", b"Jefe", b"what do ya want for nothing!", &tag).is_err());
        assert!(mac_verify("HMAC_SHA_256", b"Jefe", b"what do ya want for nothing?", &tag[..31]).is_err());
    }
}
