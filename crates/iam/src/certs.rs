//! Uploaded key material: SSH public keys (OpenSSH format), X.509 certificates and private keys
//! (PEM), SAML metadata documents. Parsing only: nothing here stores or logs the material.

use base64::Engine;
use md5::{Digest, Md5};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use x509_cert::der::asn1::{Any, BitString, ObjectIdentifier, UintRef};
use x509_cert::der::pem::LineEnding;
use x509_cert::der::{DecodePem, Encode, EncodePem};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;

/// Why an SSH public key was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SshKeyError {
    /// Not an OpenSSH `ssh-rsa` / `ssh-ed25519` public key line.
    Unrecognized,
    /// Recognised, but malformed or too weak (RSA under 2048 bits).
    Invalid,
}

/// A parsed SSH public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKey {
    /// `ssh-rsa` or `ssh-ed25519`.
    pub kind: &'static str,
    /// The decoded key blob (SSH wire format).
    pub blob: Vec<u8>,
    /// RSA: (exponent, modulus), big-endian; Ed25519: the 32-byte key in `modulus`.
    exponent: Vec<u8>,
    modulus: Vec<u8>,
}

const RSA_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ED25519_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Reads SSH wire-format strings (u32 big-endian length + bytes).
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn string(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(self.0.get(..4)?.try_into().ok()?) as usize;
        let end = 4usize.checked_add(len)?;
        let s = self.0.get(4..end)?;
        self.0 = self.0.get(end..)?;
        Some(s)
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(i..).unwrap_or_default()
}

impl SshKey {
    /// Parse `type base64 [comment]`.
    pub fn parse(body: &str) -> Result<SshKey, SshKeyError> {
        let mut parts = body.split_whitespace();
        let kind = match parts.next() {
            Some("ssh-rsa") => "ssh-rsa",
            Some("ssh-ed25519") => "ssh-ed25519",
            _ => return Err(SshKeyError::Unrecognized),
        };
        let b64 = parts.next().ok_or(SshKeyError::Invalid)?;
        let blob = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| SshKeyError::Invalid)?;
        let mut w = Wire(&blob);
        if w.string() != Some(kind.as_bytes()) {
            return Err(SshKeyError::Invalid);
        }
        let (exponent, modulus) = if kind == "ssh-rsa" {
            let e = strip_zeros(w.string().ok_or(SshKeyError::Invalid)?).to_vec();
            let n = strip_zeros(w.string().ok_or(SshKeyError::Invalid)?).to_vec();
            let bits = n.first().map_or(0, |&top| (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize));
            if e.is_empty() || bits < 2048 {
                return Err(SshKeyError::Invalid);
            }
            (e, n)
        } else {
            let k = w.string().ok_or(SshKeyError::Invalid)?;
            if k.len() != 32 {
                return Err(SshKeyError::Invalid);
            }
            (Vec::new(), k.to_vec())
        };
        if !w.0.is_empty() {
            return Err(SshKeyError::Invalid);
        }
        Ok(SshKey { kind, blob, exponent, modulus })
    }

    /// The key as IAM returns it with `Encoding=SSH`: `type base64`.
    pub fn ssh(&self) -> String {
        format!("{} {}", self.kind, base64::engine::general_purpose::STANDARD.encode(&self.blob))
    }

    /// The MD5 fingerprint of the key blob, colon-separated lower-case hex (as IAM reports it).
    pub fn fingerprint(&self) -> String {
        Md5::digest(&self.blob).iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
    }

    /// The key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), for `Encoding=PEM`.
    pub fn pem(&self) -> Option<String> {
        let spki = if self.kind == "ssh-rsa" {
            let rsa = vec![UintRef::new(&self.modulus).ok()?, UintRef::new(&self.exponent).ok()?].to_der().ok()?;
            SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned { oid: RSA_OID, parameters: Some(Any::null()) },
                subject_public_key: BitString::from_bytes(&rsa).ok()?,
            }
        } else {
            SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned { oid: ED25519_OID, parameters: None },
                subject_public_key: BitString::from_bytes(&self.modulus).ok()?,
            }
        };
        spki.to_pem(LineEnding::LF).ok()
    }
}

/// A parsed X.509 certificate: what IAM keeps besides the PEM text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// notAfter, epoch seconds.
    pub not_after: i64,
    /// notBefore, epoch seconds.
    pub not_before: i64,
    /// The DER encoding (duplicate detection).
    pub der: Vec<u8>,
}

/// Parse one PEM `CERTIFICATE`; `None` when it is not one.
pub fn parse_cert(pem: &str) -> Option<CertInfo> {
    let cert = Certificate::from_pem(pem.trim().as_bytes()).ok()?;
    let v = &cert.tbs_certificate.validity;
    let secs = |t: &x509_cert::time::Time| i64::try_from(t.to_unix_duration().as_secs()).ok();
    Some(CertInfo { not_after: secs(&v.not_after)?, not_before: secs(&v.not_before)?, der: cert.to_der().ok()? })
}

/// A certificate chain: one or more concatenated PEM certificates.
pub fn valid_chain(pem: &str) -> bool {
    Certificate::load_pem_chain(pem.trim().as_bytes()).is_ok_and(|c| !c.is_empty())
}

/// A PEM private key (PKCS#1 RSA, PKCS#8, or SEC1 EC).
pub fn valid_private_key(pem: &str) -> bool {
    PrivateKeyDer::from_pem_slice(pem.trim().as_bytes()).is_ok()
}

/// What a SAML metadata document says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlMetadata {
    /// The root `EntityDescriptor`'s `validUntil`, epoch seconds.
    pub valid_until: Option<i64>,
    /// DER certificates of the `KeyDescriptor`s for signing (`use="signing"` or no `use`) of the
    /// IdP's `IDPSSODescriptor`: the keys its SAML responses are signed with.
    pub signing_certs: Vec<Vec<u8>>,
}

/// Check that `doc` is XML whose root element is a SAML `EntityDescriptor`.
pub fn parse_saml_metadata(doc: &str) -> Option<SamlMetadata> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(doc);
    let root = loop {
        match reader.read_event().ok()? {
            Event::Start(e) | Event::Empty(e) => break e.into_owned(),
            Event::Eof => return None,
            Event::Text(t) if !t.iter().all(u8::is_ascii_whitespace) => return None,
            _ => {}
        }
    };
    if root.local_name().as_ref() != b"EntityDescriptor" {
        return None;
    }
    let mut valid_until = None;
    for a in root.attributes() {
        let a = a.ok()?;
        if a.key.local_name().as_ref() == b"validUntil" {
            let v = String::from_utf8(a.value.into_owned()).ok()?;
            let t = time::OffsetDateTime::parse(v.trim(), &time::format_description::well_known::Rfc3339).ok()?;
            valid_until = Some(t.unix_timestamp());
        }
    }
    // The rest must be well-formed too.
    let mut path: Vec<Vec<u8>> = vec![b"EntityDescriptor".to_vec()];
    let mut signing_key = false;
    let mut text = String::new();
    let mut signing_certs = Vec::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_vec();
                if name == b"KeyDescriptor" {
                    let usage = e.attributes().flatten().find(|a| a.key.local_name().as_ref() == b"use");
                    signing_key = usage.is_none_or(|a| a.value.as_ref() == b"signing")
                        && path.last().is_some_and(|p| p == b"IDPSSODescriptor");
                }
                path.push(name);
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml_content().ok()?),
            Event::End(_) => {
                let name = path.pop()?;
                if name == b"X509Certificate" && signing_key && path.iter().any(|p| p == b"KeyDescriptor") {
                    let b64: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                    signing_certs.push(base64::engine::general_purpose::STANDARD.decode(b64).ok()?);
                }
                if name == b"KeyDescriptor" {
                    signing_key = false;
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    path.is_empty().then_some(SamlMetadata { valid_until, signing_certs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh_string(b: &[u8]) -> Vec<u8> {
        let mut v = (b.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(b);
        v
    }

    fn rsa_line(bits: usize) -> (String, Vec<u8>) {
        let mut n = vec![0u8];
        n.push(0xc1);
        n.extend(std::iter::repeat_n(0x5a, bits / 8 - 1));
        let mut blob = ssh_string(b"ssh-rsa");
        blob.extend(ssh_string(&[1, 0, 1]));
        blob.extend(ssh_string(&n));
        (format!("ssh-rsa {} me@host", base64::engine::general_purpose::STANDARD.encode(&blob)), blob)
    }

    #[test]
    fn rsa_keys_parse_and_fingerprint_as_md5_of_the_blob() {
        let (line, blob) = rsa_line(2048);
        let k = SshKey::parse(&line).unwrap();
        assert_eq!(k.kind, "ssh-rsa");
        let digest = Md5::digest(&blob);
        let fp = k.fingerprint();
        assert_eq!(fp.len(), 47);
        assert_eq!(fp.split(':').next().unwrap(), format!("{:02x}", digest[0]));
        assert_eq!(k.ssh(), line.trim_end_matches(" me@host"));
        let pem = k.pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    }

    #[test]
    fn known_fingerprint() {
        // `ssh-keygen -l -E md5` reports MD5:65:96:2d:fc:e8:d5:a9:11:64:0c:0f:ea:00:6e:5b:bd.
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        let k = SshKey::parse(line).unwrap();
        assert_eq!(k.fingerprint(), "65:96:2d:fc:e8:d5:a9:11:64:0c:0f:ea:00:6e:5b:bd");
        assert!(k.pem().unwrap().contains("PUBLIC KEY"));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert_eq!(SshKey::parse("ssh-dss AAAA"), Err(SshKeyError::Unrecognized));
        assert_eq!(SshKey::parse("-----BEGIN CERTIFICATE-----"), Err(SshKeyError::Unrecognized));
        assert_eq!(SshKey::parse("ssh-rsa !!!"), Err(SshKeyError::Invalid));
        assert_eq!(SshKey::parse("ssh-rsa"), Err(SshKeyError::Invalid));
        let (short, _) = rsa_line(1024);
        assert_eq!(SshKey::parse(&short), Err(SshKeyError::Invalid));
        // The type inside the blob must match the line's.
        let ed = "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        assert_eq!(SshKey::parse(ed), Err(SshKeyError::Invalid));
    }

    const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBpzCCARACCQCY5yOdxCTrGjANBgkqhkiG9w0BAQsFADAXMRUwEwYDVQQKDAxt
b3RvIHRlc3RpbmcwIBcNMTgxMTA1MTkwNTIwWhgPMjI5MjA4MTkxOTA1MjBaMBcx
FTATBgNVBAoMDG1vdG8gdGVzdGluZzCBnzANBgkqhkiG9w0BAQEFAAOBjQAwgYkC
gYEA1Jn3g2h7LD3FLqdpcYNbFXCS4V4eDpuTCje9vKFcC3pi/01147X3zdfPy8Mt
ZhKxcREOwm4NXykh23P9KW7fBovpNwnbYsbPqj8Hf1ZaClrgku1arTVhEnKjx8zO
vaR/bVLCss4uE0E0VM1tJn/QGQsfthFsjuHtwx8uIWz35tUCAwEAATANBgkqhkiG
9w0BAQsFAAOBgQBWdOQ7bDc2nWkUhFjZoNIZrqjyNdjlMUndpwREVD7FQ/DuxJMj
FyDHrtlrS80dPUQWNYHw++oACDpWO01LGLPPrGmuO/7cOdojPEd852q5gd+7W9xt
8vUH+pBa6IBLbvBp+szli51V3TLSWcoyy4ceJNQU2vCkTLoFdS0RLd/7tQ==
-----END CERTIFICATE-----";

    #[test]
    fn certificate_validity_is_read() {
        let c = parse_cert(&format!("\n{CERT}\n")).unwrap();
        assert_eq!((c.not_before, c.not_after), (1541444720, 10181358320));
        assert!(valid_chain(&format!("{CERT}\n{CERT}\n")));
    }

    #[test]
    fn certificates_and_keys() {
        assert!(parse_cert("notacert").is_none());
        assert!(parse_cert("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----").is_none());
        assert!(!valid_private_key("privatekey"));
        assert!(!valid_chain("certchain"));
    }

    #[test]
    fn saml_metadata() {
        let doc = r#"<?xml version="1.0"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x" validUntil="2030-01-02T03:04:05Z"><md:IDPSSODescriptor/></md:EntityDescriptor>"#;
        assert_eq!(parse_saml_metadata(doc).unwrap().valid_until, Some(1893553445));
        assert!(parse_saml_metadata("<EntityDescriptor></EntityDescriptor>").unwrap().valid_until.is_none());
        assert!(parse_saml_metadata(&"a".repeat(1024)).is_none());
        assert!(parse_saml_metadata("<Other/>").is_none());
        assert!(parse_saml_metadata("<EntityDescriptor><a></EntityDescriptor>").is_none());
        // Signing certificates: `use="signing"` or no `use`, of the IdP descriptor only.
        let doc = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
            <md:IDPSSODescriptor>
              <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>
                AQID
              </ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
              <md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>BAUG</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
              <md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>BwgJ</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
            </md:IDPSSODescriptor>
            <md:SPSSODescriptor><md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>CgsM</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor></md:SPSSODescriptor>
          </md:EntityDescriptor>"#;
        assert_eq!(parse_saml_metadata(doc).unwrap().signing_certs, vec![vec![1, 2, 3], vec![7, 8, 9]]);
    }
}
