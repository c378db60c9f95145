//! Log file integrity: AWS's digest file format, SHA256withRSA signatures, the signing key.
//!
//! A digest file lists the log files a trail delivered since the previous digest (their SHA-256
//! over the uncompressed content) and names the previous digest file with its hash and signature,
//! so the digest files form a chain. Each digest is signed with RSA (PKCS #1 v1.5, SHA-256) over
//! AWS's string to sign:
//!
//! ```text
//! digestEndTime \n digestS3Bucket/digestS3Object \n hex(SHA-256(uncompressed digest)) \n previousDigestSignature
//! ```
//!
//! (`null` as the previous signature for the first digest of a chain). S3 keeps the signature in
//! the object's metadata (`x-amz-meta-signature`); locally it is the sidecar file
//! `<digest>.json.gz.metadata.json`: `{"signature": hex, "signature-algorithm": "SHA256withRSA"}`.

use std::io::{Read, Write};

use md5::Digest as _;
use rsa::pkcs1::{DecodeRsaPublicKey, EncodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The signature algorithm name AWS writes.
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";
/// Sidecar suffix holding a digest's signature (S3 object metadata, locally).
pub const METADATA_SUFFIX: &str = ".metadata.json";

/// Digest key errors.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("RSA: {0}")]
    Rsa(String),
}

/// The digest signing key.
pub struct SigningKey {
    private: RsaPrivateKey,
    public_der: Vec<u8>,
    fingerprint: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh 2048-bit key (AWS's digest keys are 2048-bit RSA).
    pub fn generate() -> Result<Self, KeyError> {
        let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|e| KeyError::Rsa(e.to_string()))?;
        Self::from_private(private)
    }

    fn from_private(private: RsaPrivateKey) -> Result<Self, KeyError> {
        let public_der =
            RsaPublicKey::from(&private).to_pkcs1_der().map_err(|e| KeyError::Rsa(e.to_string()))?.as_bytes().to_vec();
        let fingerprint = fingerprint(&public_der);
        Ok(SigningKey { private, public_der, fingerprint })
    }

    /// PKCS #8 DER of the private key (seal it before storing).
    pub fn to_pkcs8_der(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, KeyError> {
        let doc = self.private.to_pkcs8_der().map_err(|e| KeyError::Rsa(e.to_string()))?;
        Ok(zeroize::Zeroizing::new(doc.as_bytes().to_vec()))
    }

    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let private = RsaPrivateKey::from_pkcs8_der(der).map_err(|e| KeyError::Rsa(e.to_string()))?;
        Self::from_private(private)
    }

    /// The public key, DER-encoded PKCS #1 (what ListPublicKeys returns).
    pub fn public_der(&self) -> &[u8] {
        &self.public_der
    }

    /// Hex MD5 of the public key DER, as `digestPublicKeyFingerprint`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Sign `message` (SHA256withRSA); hex signature.
    pub fn sign_hex(&self, message: &[u8]) -> String {
        let key = rsa::pkcs1v15::SigningKey::<Sha256>::new(self.private.clone());
        hex::encode(key.sign(message).to_bytes())
    }
}

/// Hex MD5 of a DER public key.
pub fn fingerprint(public_der: &[u8]) -> String {
    hex::encode(md5::Md5::digest(public_der))
}

/// Verify a hex SHA256withRSA signature with a DER (PKCS #1) public key.
pub fn verify_hex(public_der: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let Ok(public) = RsaPublicKey::from_pkcs1_der(public_der) else { return false };
    let Ok(sig_bytes) = hex::decode(signature_hex) else { return false };
    let Ok(sig) = rsa::pkcs1v15::Signature::try_from(sig_bytes.as_slice()) else { return false };
    rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public).verify(message, &sig).is_ok()
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// AWS's string to sign for a digest file.
pub fn string_to_sign(
    end_time: &str,
    bucket: &str,
    object: &str,
    content: &[u8],
    previous_signature: Option<&str>,
) -> String {
    format!("{end_time}\n{bucket}/{object}\n{}\n{}", sha256_hex(content), previous_signature.unwrap_or("null"))
}

/// A digest file, as AWS writes it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DigestFile {
    pub aws_account_id: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    #[serde(rename = "digestS3Bucket")]
    pub digest_s3_bucket: String,
    #[serde(rename = "digestS3Object")]
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
    pub digest_signature_algorithm: String,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
    #[serde(rename = "previousDigestS3Bucket")]
    pub previous_digest_s3_bucket: Option<String>,
    #[serde(rename = "previousDigestS3Object")]
    pub previous_digest_s3_object: Option<String>,
    pub previous_digest_hash_value: Option<String>,
    pub previous_digest_hash_algorithm: Option<String>,
    pub previous_digest_signature: Option<String>,
    pub log_files: Vec<LogFileEntry>,
}

/// One log file in a digest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogFileEntry {
    #[serde(rename = "s3Bucket")]
    pub s3_bucket: String,
    #[serde(rename = "s3Object")]
    pub s3_object: String,
    pub hash_value: String,
    pub hash_algorithm: String,
    pub newest_event_time: String,
    pub oldest_event_time: String,
}

/// The signature sidecar (S3 object metadata).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SignatureMetadata {
    pub signature: String,
    #[serde(rename = "signature-algorithm")]
    pub signature_algorithm: String,
}

/// Gzip bytes.
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes)?;
    enc.finish()
}

/// Gunzip bytes (bounded to 1 GiB of output).
pub fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).take(1 << 30).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
pub(crate) fn test_key() -> &'static SigningKey {
    static KEY: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate().expect("key generation"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip_and_tamper() {
        let key = test_key();
        let msg = string_to_sign("2024-01-01T00:00:00Z", "b", "AWSLogs/x.json.gz", b"{}", None);
        assert!(msg.ends_with("\nnull"));
        let sig = key.sign_hex(msg.as_bytes());
        assert!(verify_hex(key.public_der(), msg.as_bytes(), &sig));
        assert!(!verify_hex(key.public_der(), b"other", &sig));
        let restored = SigningKey::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap();
        assert_eq!(restored.fingerprint(), key.fingerprint());
        assert_eq!(key.fingerprint().len(), 32);
    }

    #[test]
    fn gzip_round_trip() {
        let data = b"{\"Records\":[]}";
        assert_eq!(gunzip(&gzip(data).unwrap()).unwrap(), data);
    }
}
