//! Outbound web identity federation: a per-account OpenID Connect issuer whose JWTs
//! (STS GetWebIdentityToken) external services verify against the issuer's published keys.
//!
//! Enabling the feature (IAM EnableOutboundWebIdentityFederation) gives the account an issuer ID
//! and two signing keys, an RSA-2048 key (RS256) and a P-384 key (ES384). The private keys are
//! sealed with the server's master key (AAD = the account), never stored or logged in the clear;
//! the public halves are kept as JWK members. The issuer URL is
//! `{public base URL}/_rampart/oidc/{issuer ID}`, and Rampart's HTTP server publishes, unsigned,
//! `{issuer}/.well-known/openid-configuration` and `{issuer}/.well-known/jwks.json` (AWS's paths).
//! Disabling stops issuing but keeps the issuer and its keys published, so tokens already issued
//! still verify (as AWS documents); enabling again reuses them.

use base64::Engine;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::signature::{SignatureEncoding, Signer};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::db::{Db, Lookup};
use crate::error::{IamError, Result};

/// Table: account → [`OutboundRec`].
pub const TABLE: &str = "iam_outbound_federation";
/// Table: issuer ID → account.
pub const ISSUERS: &str = "iam_outbound_issuers";
/// The path under which issuers live on Rampart's HTTP server.
pub const PATH_PREFIX: &str = "/_rampart/oidc/";
/// The namespace of the AWS-specific claims (AWS's token claims documentation).
pub const CLAIMS_NAMESPACE: &str = "https://sts.amazonaws.com/";
/// Signing algorithms GetWebIdentityToken offers.
pub const ALGORITHMS: [&str; 2] = ["RS256", "ES384"];

/// An account's outbound federation settings and keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRec {
    pub enabled: bool,
    pub issuer_id: String,
    pub created: i64,
    pub rsa_kid: String,
    /// RSA modulus and exponent, base64url (JWK `n`, `e`).
    pub rsa_n: String,
    pub rsa_e: String,
    pub ec_kid: String,
    /// P-384 public point, base64url (JWK `x`, `y`).
    pub ec_x: String,
    pub ec_y: String,
    /// Hex of the sealed JSON `[rsa PKCS#8 DER, P-384 scalar]` (both base64), AAD = the account.
    pub sealed: String,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str) -> Result<Zeroizing<Vec<u8>>> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map(Zeroizing::new)
        .map_err(|_| IamError::Internal("outbound signing key is not base64".into()))
}

fn aad(account: &str) -> Vec<u8> {
    format!("outbound-federation/{account}").into_bytes()
}

fn crypto(e: impl std::fmt::Display) -> IamError {
    IamError::Internal(format!("outbound signing key: {e}"))
}

/// A random issuer ID shaped like AWS's (`8-4-4-4-12` lower-case hex).
fn issuer_id() -> String {
    let mut b = [0u8; 16];
    rand::fill(&mut b[..]);
    let h = crate::util::to_hex(&b);
    let parts = [(0, 8), (8, 12), (12, 16), (16, 20), (20, 32)];
    parts.iter().filter_map(|(a, z)| h.get(*a..*z)).collect::<Vec<_>>().join("-")
}

/// A new record with fresh keys for `account`.
pub fn generate(sealer: &rampart_store::Sealer, account: &str, now: i64) -> Result<OutboundRec> {
    let mut rng = rand_core::OsRng;
    let rsa_key = rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(crypto)?;
    let rsa_der = rsa_key.to_pkcs8_der().map_err(crypto)?;
    let public = rsa_key.to_public_key();
    use rsa::traits::PublicKeyParts;
    let (rsa_n, rsa_e) = (b64url(&public.n().to_bytes_be()), b64url(&public.e().to_bytes_be()));
    let ec_key = p384::ecdsa::SigningKey::random(&mut rng);
    let point = ec_key.verifying_key().to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err(IamError::Internal("outbound signing key: P-384 point has no coordinates".into()));
    };
    let (ec_x, ec_y) = (b64url(x), b64url(y));
    let scalar = Zeroizing::new(ec_key.to_bytes().to_vec());
    let plain = Zeroizing::new(
        serde_json::to_vec(&[b64(rsa_der.as_bytes()), b64(&scalar)]).map_err(|e| IamError::Internal(e.to_string()))?,
    );
    let sealed = sealer.seal(&plain, &aad(account)).map_err(crypto)?;
    let kid = |alg: &str| format!("{alg}-{}", crate::util::random_id("", 16).to_ascii_lowercase());
    Ok(OutboundRec {
        enabled: true,
        issuer_id: issuer_id(),
        created: now,
        rsa_kid: kid("rs256"),
        rsa_n,
        rsa_e,
        ec_kid: kid("es384"),
        ec_x,
        ec_y,
        sealed: crate::util::to_hex(&sealed),
    })
}

impl OutboundRec {
    /// The issuer URL under `base` (Rampart's public URL, no trailing `/`).
    pub fn issuer(&self, base: &str) -> String {
        format!("{base}{PATH_PREFIX}{}", self.issuer_id)
    }

    /// The JWKS: both public keys.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": [
            {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.rsa_kid, "n": self.rsa_n, "e": self.rsa_e},
            {"kty": "EC", "use": "sig", "alg": "ES384", "kid": self.ec_kid, "crv": "P-384", "x": self.ec_x, "y": self.ec_y},
        ]})
    }

    /// The OpenID Provider configuration of the issuer.
    pub fn discovery(&self, base: &str) -> serde_json::Value {
        let issuer = self.issuer(base);
        serde_json::json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ALGORITHMS,
        })
    }

    /// A signed JWT (`alg` one of [`ALGORITHMS`]) of `claims`.
    pub fn sign(&self, sealer: &rampart_store::Sealer, account: &str, alg: &str, claims: &[u8]) -> Result<String> {
        let sealed = crate::util::from_hex(&self.sealed)
            .ok_or_else(|| IamError::Internal("outbound signing key is not hex".into()))?;
        let plain = sealer.open(&sealed, &aad(account)).map_err(crypto)?;
        let [rsa_der, scalar]: [String; 2] =
            serde_json::from_slice(&plain).map_err(|e| IamError::Internal(format!("outbound signing key: {e}")))?;
        let (rsa_der, scalar) = (unb64(&rsa_der)?, unb64(&scalar)?);
        let kid = if alg == "RS256" { &self.rsa_kid } else { &self.ec_kid };
        let header = serde_json::json!({"alg": alg, "typ": "JWT", "kid": kid});
        let signing_input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims));
        let sig = match alg {
            "RS256" => {
                let key = rsa::RsaPrivateKey::from_pkcs8_der(&rsa_der).map_err(crypto)?;
                let sk = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(key);
                sk.sign(signing_input.as_bytes()).to_vec()
            }
            "ES384" => {
                let sk = p384::ecdsa::SigningKey::from_slice(&scalar).map_err(crypto)?;
                let sig: p384::ecdsa::Signature = sk.sign(signing_input.as_bytes());
                sig.to_bytes().to_vec()
            }
            other => return Err(IamError::Internal(format!("unsupported signing algorithm {other}"))),
        };
        Ok(format!("{signing_input}.{}", b64url(&sig)))
    }
}

/// The settings of `account`, if outbound federation was ever enabled.
pub fn get(db: &Db, account: &str) -> Result<Option<OutboundRec>> {
    db.get(TABLE, account)
}

/// The published document at `path` (`/_rampart/oidc/{id}/.well-known/…`): the discovery document
/// or the key set of an issuer that exists.
pub fn document(db: &Db, base: &str, path: &str) -> Result<Option<serde_json::Value>> {
    let Some(rest) = path.strip_prefix(PATH_PREFIX) else { return Ok(None) };
    let Some((id, doc)) = rest.split_once('/') else { return Ok(None) };
    let Some(account) = db.get::<String>(ISSUERS, id)? else { return Ok(None) };
    let Some(rec) = get(db, &account)?.filter(|r| r.issuer_id == id) else { return Ok(None) };
    Ok(match doc {
        ".well-known/openid-configuration" => Some(rec.discovery(base)),
        ".well-known/jwks.json" => Some(rec.jwks()),
        _ => None,
    })
}

/// `base` as an issuer URL prefix: `http(s)://host[:port][/path]`, no trailing `/`.
pub fn normalize_base(base: &str) -> String {
    base.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unb64url(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    #[test]
    fn tokens_verify_with_the_published_keys_and_keys_stay_sealed() {
        let sealer = rampart_store::Sealer::new(&[9u8; 32]);
        let rec = generate(&sealer, "111122223333", 5).unwrap();
        assert_eq!(rec.issuer_id.len(), 36);
        let raw = serde_json::to_string(&rec).unwrap();
        assert!(!raw.contains("PRIVATE"));
        let jwks = rec.jwks();
        let claims = br#"{"sub":"x"}"#;

        let t = rec.sign(&sealer, "111122223333", "RS256", claims).unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        let header: serde_json::Value = serde_json::from_slice(&unb64url(parts[0])).unwrap();
        assert_eq!(header["kid"], jwks["keys"][0]["kid"]);
        assert_eq!(unb64url(parts[1]), claims);
        let n = rsa::BigUint::from_bytes_be(&unb64url(jwks["keys"][0]["n"].as_str().unwrap()));
        let e = rsa::BigUint::from_bytes_be(&unb64url(jwks["keys"][0]["e"].as_str().unwrap()));
        let vk = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(rsa::RsaPublicKey::new(n, e).unwrap());
        let sig = rsa::pkcs1v15::Signature::try_from(unb64url(parts[2]).as_slice()).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        vk.verify(input.as_bytes(), &sig).unwrap();
        assert!(vk.verify(b"other", &sig).is_err());

        let t = rec.sign(&sealer, "111122223333", "ES384", claims).unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        let mut sec1 = vec![4u8];
        sec1.extend(unb64url(jwks["keys"][1]["x"].as_str().unwrap()));
        sec1.extend(unb64url(jwks["keys"][1]["y"].as_str().unwrap()));
        let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
        let sig = p384::ecdsa::Signature::from_slice(&unb64url(parts[2])).unwrap();
        use p384::ecdsa::signature::Verifier as _;
        vk.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig).unwrap();

        // Another account's AAD does not open the keys.
        assert!(rec.sign(&sealer, "999999999999", "RS256", claims).is_err());
        let d = rec.discovery("http://h:1");
        assert_eq!(d["issuer"], format!("http://h:1/_rampart/oidc/{}", rec.issuer_id));
        assert_eq!(d["jwks_uri"], format!("http://h:1/_rampart/oidc/{}/.well-known/jwks.json", rec.issuer_id));
    }
}
