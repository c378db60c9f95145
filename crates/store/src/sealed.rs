//! Sealing secrets at rest: AES-256-GCM under the server's master key.
//!
//! Anything secret that must be stored retrievably (IAM secret access keys, KMS key material,
//! secret values' data keys) is sealed with a [`Sealer`] before it reaches the store, with an
//! AAD naming what it is, so a sealed value cannot be swapped onto another record.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;
const VERSION: u8 = 1;

/// Sealing failed or a sealed value did not open (wrong key, wrong AAD, tampered).
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value failed authentication")]
    Authentication,
    /// The cipher refused to seal (AES-GCM: a plaintext beyond its length limit).
    #[error("sealing failed")]
    Encryption,
}

/// Seals and opens values under one 256-bit master key.
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer over a 32-byte master key.
    pub fn new(master_key: &[u8; 32]) -> Self {
        Sealer { cipher: Aes256Gcm::new(master_key.into()) }
    }

    /// A fresh random master key.
    pub fn generate_key() -> Zeroizing<[u8; 32]> {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(k.as_mut());
        k
    }

    /// `version || nonce || ciphertext+tag`, bound to `aad`. An error when the cipher refuses: the
    /// caller must fail rather than store something that will not open.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
            .map_err(|_| SealError::Encryption)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Open a value sealed by [`Sealer::seal`] with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let Some((&VERSION, rest)) = sealed.split_first() else { return Err(SealError::Malformed) };
        let Some((nonce, msg)) = rest.split_at_checked(NONCE_LEN).filter(|(_, msg)| msg.len() >= 16) else {
            return Err(SealError::Malformed);
        };
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg, aad })
            .map(Zeroizing::new)
            .map_err(|_| SealError::Authentication)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let s = Sealer::new(&Sealer::generate_key());
        let sealed = s.seal(b"wJalrXUtnFEMI", b"iam/accesskey/AKIA1").unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"wJalr"));
        assert_eq!(&s.open(&sealed, b"iam/accesskey/AKIA1").unwrap()[..], b"wJalrXUtnFEMI");
        assert!(matches!(s.open(&sealed, b"iam/accesskey/AKIA2"), Err(SealError::Authentication)));
        let mut t = sealed.clone();
        *t.last_mut().unwrap() ^= 1;
        assert!(s.open(&t, b"iam/accesskey/AKIA1").is_err());
        assert!(matches!(s.open(&[1, 2], b""), Err(SealError::Malformed)));
        let other = Sealer::new(&Sealer::generate_key());
        assert!(other.open(&sealed, b"iam/accesskey/AKIA1").is_err());
        assert!(matches!(s.open(&[VERSION; 1 + NONCE_LEN + 15], b""), Err(SealError::Malformed)));
        assert!(matches!(s.open(&[], b""), Err(SealError::Malformed)));
    }

    /// Sealing reports failure as an error (it used to return an empty ciphertext, stored as if it
    /// were a sealed value and lost for good): every outcome is a `Result` the caller must handle.
    #[test]
    fn seal_returns_a_result_and_never_an_empty_ciphertext() {
        let s = Sealer::new(&Sealer::generate_key());
        for len in [0usize, 1, 4096] {
            let sealed: Result<Vec<u8>, SealError> = s.seal(&vec![7u8; len], b"aad");
            let sealed = sealed.unwrap();
            assert_eq!(sealed.len(), 1 + NONCE_LEN + len + 16);
            assert_eq!(&s.open(&sealed, b"aad").unwrap()[..], &vec![7u8; len][..]);
        }
        assert_eq!(SealError::Encryption.to_string(), "sealing failed");
    }
}
