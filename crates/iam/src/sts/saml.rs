//! SAML 2.0 authentication responses for AssumeRoleWithSAML: decoding and the checks AWS makes on
//! their content (status, validity window, audience, recipient, the Role attribute naming the
//! requested role and provider pair, RoleSessionName).
//!
//! The Response must carry an XML signature (XML-DSig, verified by `bergshamra` with only the
//! provider metadata's signing certificates trusted, never keys embedded in the document) covering
//! the Response or its one Assertion; content is read only from that Assertion (a direct child of
//! the Response), and duplicate `ID`s are refused, against signature-wrapping attacks.

use base64::Engine;
use quick_xml::events::{BytesStart, Event};
use sha1::{Digest, Sha1};

/// The Role attribute: `provider-arn,role-arn` pairs (either order).
pub const ATTR_ROLE: &str = "https://aws.amazon.com/SAML/Attributes/Role";
pub const ATTR_SESSION_NAME: &str = "https://aws.amazon.com/SAML/Attributes/RoleSessionName";
pub const ATTR_SOURCE_IDENTITY: &str = "https://aws.amazon.com/SAML/Attributes/SourceIdentity";

/// Largest clock skew tolerated on the assertion's validity window (seconds).
const SKEW: i64 = 300;

/// What an assertion says, once decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assertion {
    pub status: Option<String>,
    pub issuer: String,
    pub subject: String,
    pub subject_format: Option<String>,
    pub recipient: Option<String>,
    pub audiences: Vec<String>,
    pub not_before: Option<i64>,
    pub not_on_or_after: Option<i64>,
    pub confirmation_not_on_or_after: Option<i64>,
    pub session_not_on_or_after: Option<i64>,
    /// Attribute name → values, in document order.
    pub attributes: Vec<(String, Vec<String>)>,
    pub response_id: Option<String>,
    pub assertion_id: Option<String>,
}

/// Why an assertion is refused: `InvalidIdentityToken` (400) or `ExpiredTokenException` (400).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    Invalid(String),
    Expired,
}

fn invalid(m: impl Into<String>) -> Refusal {
    Refusal::Invalid(m.into())
}

fn timestamp(v: &str) -> Result<i64, Refusal> {
    time::OffsetDateTime::parse(v.trim(), &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| invalid(format!("Invalid SAML timestamp: {v}")))
}

fn attr(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, Refusal> {
    for a in e.attributes() {
        let a = a.map_err(|_| invalid("Invalid SAML response: malformed XML"))?;
        if a.key.local_name().as_ref() == name.as_bytes() {
            let v = a.unescape_value().map_err(|_| invalid("Invalid SAML response: malformed XML"))?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

impl Assertion {
    /// Decode the base64 `SAMLAssertion` parameter (a `samlp:Response` with one `Assertion`):
    /// the XML and what it says.
    pub fn decode(b64: &str) -> Result<(String, Assertion), Refusal> {
        let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| invalid("Invalid base64 SAMLResponse (Error decoding SAML Response)"))?;
        let xml = String::from_utf8(bytes).map_err(|_| invalid("Invalid SAML response: not UTF-8"))?;
        let a = Assertion::parse(&xml)?;
        Ok((xml, a))
    }

    /// Parse the XML of a SAML Response. Namespaces are matched by local name.
    pub fn parse(xml: &str) -> Result<Assertion, Refusal> {
        let malformed = || invalid("Invalid SAML response: malformed XML");
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut path: Vec<String> = Vec::new();
        let mut out = Assertion::default();
        let mut assertions = 0usize;
        let mut response_issuer = None;
        let mut text = String::new();
        let mut current_attr: Option<usize> = None;
        let mut ids: Vec<String> = Vec::new();
        loop {
            let ev = reader.read_event().map_err(|_| malformed())?;
            match ev {
                Event::DocType(_) => return Err(invalid("Invalid SAML response: DTDs are not allowed")),
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                    let parent = path.last().map(String::as_str).unwrap_or("");
                    // Only the Response's own Assertion counts (signature wrapping puts others elsewhere).
                    let in_assertion = path.get(1).is_some_and(|p| p == "Assertion");
                    if let Some(id) = attr(e, "ID")? {
                        if ids.contains(&id) {
                            return Err(invalid("Invalid SAML response: duplicate ID attributes"));
                        }
                        match path.len() {
                            0 => out.response_id = Some(id.clone()),
                            1 if name == "Assertion" => out.assertion_id = Some(id.clone()),
                            _ => {}
                        }
                        ids.push(id);
                    }
                    match (parent, name.as_str()) {
                        ("", root) if root != "Response" => {
                            return Err(invalid("Invalid SAML response: the root element must be a samlp:Response"))
                        }
                        ("Response", "EncryptedAssertion") => {
                            return Err(invalid("Encrypted SAML assertions are not supported"))
                        }
                        ("Response", "Assertion") => assertions += 1,
                        ("Status", "StatusCode") if out.status.is_none() => out.status = attr(e, "Value")?,
                        ("Subject", "NameID") if in_assertion => out.subject_format = attr(e, "Format")?,
                        ("SubjectConfirmation", "SubjectConfirmationData") if in_assertion => {
                            out.recipient = attr(e, "Recipient")?;
                            if let Some(t) = attr(e, "NotOnOrAfter")? {
                                out.confirmation_not_on_or_after = Some(timestamp(&t)?);
                            }
                        }
                        ("Assertion", "Conditions") if path.len() == 2 => {
                            if let Some(t) = attr(e, "NotBefore")? {
                                out.not_before = Some(timestamp(&t)?);
                            }
                            if let Some(t) = attr(e, "NotOnOrAfter")? {
                                out.not_on_or_after = Some(timestamp(&t)?);
                            }
                        }
                        ("Assertion", "AuthnStatement") if path.len() == 2 => {
                            if let Some(t) = attr(e, "SessionNotOnOrAfter")? {
                                out.session_not_on_or_after = Some(timestamp(&t)?);
                            }
                        }
                        ("AttributeStatement", "Attribute") if in_assertion => {
                            let n = attr(e, "Name")?.ok_or_else(malformed)?;
                            out.attributes.push((n, Vec::new()));
                            current_attr = Some(out.attributes.len() - 1);
                        }
                        _ => {}
                    }
                    if matches!(ev, Event::Start(_)) {
                        path.push(name);
                        text.clear();
                    } else if name == "AttributeValue" {
                        if let Some(attr) = current_attr.and_then(|i| out.attributes.get_mut(i)) {
                            attr.1.push(String::new());
                        }
                    }
                }
                Event::Text(t) => text.push_str(&t.xml_content().map_err(|_| malformed())?),
                Event::CData(t) => text.push_str(&t.decode().map_err(|_| malformed())?),
                Event::GeneralRef(r) => {
                    if let Some(c) = r.resolve_char_ref().map_err(|_| malformed())? {
                        text.push(c);
                    } else {
                        let c = match r.decode().map_err(|_| malformed())?.as_ref() {
                            "amp" => '&',
                            "lt" => '<',
                            "gt" => '>',
                            "quot" => '"',
                            "apos" => '\'',
                            _ => return Err(malformed()),
                        };
                        text.push(c);
                    }
                }
                Event::End(_) => {
                    let name = path.pop().ok_or_else(malformed)?;
                    let parent = path.last().map(String::as_str).unwrap_or("");
                    let value = text.trim().to_string();
                    let in_assertion = path.get(1).is_some_and(|p| p == "Assertion");
                    match (parent, name.as_str()) {
                        ("Response", "Issuer") => response_issuer = Some(value),
                        ("Assertion", "Issuer") if path.len() == 2 => out.issuer = value,
                        ("Subject", "NameID") if in_assertion => out.subject = value,
                        ("AudienceRestriction", "Audience") if in_assertion => out.audiences.push(value),
                        ("Attribute", "AttributeValue") if in_assertion => {
                            if let Some(attr) = current_attr.and_then(|i| out.attributes.get_mut(i)) {
                                attr.1.push(value);
                            }
                        }
                        ("AttributeStatement", "Attribute") => current_attr = None,
                        _ => {}
                    }
                    text.clear();
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if !path.is_empty() {
            return Err(malformed());
        }
        if assertions != 1 {
            return Err(invalid("Invalid SAML response: it must contain exactly one Assertion"));
        }
        if out.issuer.is_empty() {
            out.issuer = response_issuer.unwrap_or_default();
        }
        Ok(out)
    }

    /// The values of an attribute (empty when absent).
    pub fn attribute(&self, name: &str) -> Vec<&str> {
        self.attributes.iter().filter(|(n, _)| n == name).flat_map(|(_, v)| v.iter().map(String::as_str)).collect()
    }

    /// AWS's checks of the content, at `now` (unix seconds).
    pub fn check(&self, now: i64) -> Result<(), Refusal> {
        match self.status.as_deref() {
            Some("urn:oasis:names:tc:SAML:2.0:status:Success") => {}
            _ => return Err(invalid("The SAML response does not have a Success status")),
        }
        if self.issuer.is_empty() {
            return Err(invalid("Invalid SAML response: no Issuer"));
        }
        if self.subject.is_empty() {
            return Err(invalid("Invalid SAML response: no Subject NameID"));
        }
        if self.not_before.is_some_and(|t| now + SKEW < t) {
            return Err(invalid("The SAML assertion is not yet valid (Conditions NotBefore)"));
        }
        for end in [self.not_on_or_after, self.confirmation_not_on_or_after].into_iter().flatten() {
            if now - SKEW >= end {
                return Err(Refusal::Expired);
            }
        }
        let aws_audience = |a: &str| {
            a.starts_with("urn:amazon:webservices")
                || (a.starts_with("https://") && a.contains("signin.") && a.trim_end_matches('/').ends_with("/saml"))
        };
        if !self.audiences.iter().any(|a| aws_audience(a)) {
            return Err(invalid(
                "The SAML assertion's audience restriction does not name AWS (urn:amazon:webservices)",
            ));
        }
        Ok(())
    }

    /// AWS's `SubjectType`: `persistent`/`transient` for those formats, else the format URI.
    pub fn subject_type(&self) -> String {
        match self.subject_format.as_deref() {
            Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent") => "persistent".into(),
            Some("urn:oasis:names:tc:SAML:2.0:nameid-format:transient") => "transient".into(),
            Some(f) => f.to_string(),
            None => "unspecified".into(),
        }
    }

    /// `true` when the Role attribute pairs `role_arn` with `provider_arn`.
    pub fn names_role(&self, role_arn: &str, provider_arn: &str) -> bool {
        self.attribute(ATTR_ROLE).iter().any(|v| {
            let parts: Vec<&str> = v.split(',').map(str::trim).collect();
            matches!(parts.as_slice(), [a, b] if (*a == role_arn && *b == provider_arn)
                || (*a == provider_arn && *b == role_arn))
        })
    }
}

/// Verify the XML signature of `xml` (whose content is `a`) with the provider's signing
/// certificates (DER): only those keys are trusted, and a verified reference must cover the whole
/// Response or its Assertion.
pub fn verify_signature(xml: &str, a: &Assertion, certs: &[Vec<u8>]) -> Result<(), Refusal> {
    use bergshamra::dsig::verify::{verify, VerifyResult};
    use bergshamra::keys::loader::load_x509_cert_der;
    if certs.is_empty() {
        return Err(invalid("The SAML provider's metadata has no signing certificate to verify the response with"));
    }
    let mut keys = bergshamra::KeysManager::new();
    for der in certs {
        let key = load_x509_cert_der(der)
            .map_err(|_| invalid("The SAML provider's metadata has a signing certificate that cannot be read"))?;
        keys.add_key(key);
    }
    let ctx = bergshamra::DsigContext::new(keys).with_trusted_keys_only(true).with_strict_verification(true);
    let bad = || invalid("Invalid SAML response: its signature does not verify with the SAML provider's certificates");
    let references = match verify(&ctx, xml) {
        Ok(VerifyResult::Valid { references, .. }) => references,
        Ok(VerifyResult::Invalid { .. }) => return Err(bad()),
        Err(_) if !xml.contains("Signature") => return Err(invalid("Invalid SAML response: it is not signed")),
        Err(_) => return Err(bad()),
    };
    let covers = |uri: &str| match uri.strip_prefix('#') {
        None => uri.is_empty(),
        Some(id) => a.response_id.as_deref() == Some(id) || a.assertion_id.as_deref() == Some(id),
    };
    if !references.iter().any(|r| covers(&r.uri)) {
        return Err(invalid("Invalid SAML response: its signature covers neither the Response nor its Assertion"));
    }
    Ok(())
}

/// AWS's NameQualifier: base64(SHA1(issuer + account ID + "/" + provider name)).
pub fn name_qualifier(issuer: &str, account: &str, provider_name: &str) -> String {
    let mut h = Sha1::new();
    h.update(issuer.as_bytes());
    h.update(account.as_bytes());
    h.update(b"/");
    h.update(provider_name.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDER: &str = "arn:aws:iam::123456789012:saml-provider/idp";
    const ROLE: &str = "arn:aws:iam::123456789012:role/r";

    fn response(assertion_ns: &str, extra_attrs: &str) -> String {
        let p = assertion_ns;
        format!(
            r#"<?xml version="1.0"?><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">
<saml:Issuer>https://idp.example.com/</saml:Issuer>
<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
<{p}Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="_1" Version="2.0">
<{p}Issuer>https://idp.example.com/</{p}Issuer>
<{p}Subject><{p}NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">user&amp;1</{p}NameID>
<{p}SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><{p}SubjectConfirmationData NotOnOrAfter="2030-01-01T13:00:00Z" Recipient="https://signin.aws.amazon.com/saml"/></{p}SubjectConfirmation></{p}Subject>
<{p}Conditions NotBefore="2030-01-01T12:00:00Z" NotOnOrAfter="2030-01-01T13:00:00Z"><{p}AudienceRestriction><{p}Audience>urn:amazon:webservices</{p}Audience></{p}AudienceRestriction></{p}Conditions>
<{p}AttributeStatement>
<{p}Attribute Name="https://aws.amazon.com/SAML/Attributes/Role"><{p}AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">{PROVIDER},{ROLE}</{p}AttributeValue></{p}Attribute>
<{p}Attribute Name="https://aws.amazon.com/SAML/Attributes/RoleSessionName"><{p}AttributeValue>alice</{p}AttributeValue></{p}Attribute>
{extra_attrs}
</{p}AttributeStatement>
<{p}AuthnStatement AuthnInstant="2030-01-01T12:00:00Z" SessionNotOnOrAfter="2030-01-01T12:30:00Z"/>
</{p}Assertion></samlp:Response>"#
        )
    }

    fn at(s: &str) -> i64 {
        timestamp(s).unwrap()
    }

    #[test]
    fn parses_with_or_without_prefixes() {
        for p in ["", "saml:"] {
            let a = Assertion::parse(&response(p, "")).unwrap();
            assert_eq!(a.assertion_id.as_deref(), Some("_1"));
            assert_eq!(a.issuer, "https://idp.example.com/");
            assert_eq!(a.subject, "user&1");
            assert_eq!(a.subject_type(), "persistent");
            assert_eq!(a.recipient.as_deref(), Some("https://signin.aws.amazon.com/saml"));
            assert_eq!(a.attribute(ATTR_SESSION_NAME), vec!["alice"]);
            assert_eq!(a.session_not_on_or_after, Some(at("2030-01-01T12:30:00Z")));
            assert!(a.names_role(ROLE, PROVIDER));
            assert!(!a.names_role("arn:aws:iam::123456789012:role/other", PROVIDER));
            a.check(at("2030-01-01T12:10:00Z")).unwrap();
            assert_eq!(a.check(at("2030-01-01T14:00:00Z")), Err(Refusal::Expired));
            assert!(matches!(a.check(at("2030-01-01T11:00:00Z")), Err(Refusal::Invalid(_))));
        }
    }

    #[test]
    fn refuses_what_aws_refuses() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(matches!(Assertion::decode("not base64!"), Err(Refusal::Invalid(_))));
        assert!(matches!(Assertion::decode(&b64("<a>")), Err(Refusal::Invalid(_))));
        assert!(matches!(Assertion::decode(&b64("<Other/>")), Err(Refusal::Invalid(_))));
        let dtd =
            format!("<!DOCTYPE x [<!ENTITY e \"x\">]>{}", response("", "").replace("<?xml version=\"1.0\"?>", ""));
        assert!(matches!(Assertion::parse(&dtd), Err(Refusal::Invalid(_))));
        let failed = response("", "").replace("status:Success", "status:Requester");
        assert!(Assertion::parse(&failed).unwrap().check(at("2030-01-01T12:10:00Z")).is_err());
        let other_audience = response("", "").replace("urn:amazon:webservices", "https://app.example.com");
        assert!(Assertion::parse(&other_audience).unwrap().check(at("2030-01-01T12:10:00Z")).is_err());
        let two = response("", "").replace("</samlp:Response>", "<Assertion/></samlp:Response>");
        assert!(Assertion::parse(&two).is_err());
        let dup = response("", "").replace("<samlp:Status>", "<X ID=\"_1\"/><samlp:Status>");
        assert!(Assertion::parse(&dup).is_err());
        assert!(verify_signature(&response("", ""), &Assertion::parse(&response("", "")).unwrap(), &[]).is_err());
    }

    #[test]
    fn reads_only_the_responses_own_assertion() {
        // A wrapped (e.g. originally signed) assertion elsewhere in the document is ignored.
        let xml = response("", "").replace(
            "<samlp:Status>",
            "<samlp:Extensions><Assertion ID=\"_w\"><Issuer>evil</Issuer><Subject><NameID>root</NameID></Subject><AttributeStatement><Attribute Name=\"https://aws.amazon.com/SAML/Attributes/RoleSessionName\"><AttributeValue>x</AttributeValue></Attribute></AttributeStatement></Assertion></samlp:Extensions><samlp:Status>",
        );
        let a = Assertion::parse(&xml).unwrap();
        assert_eq!((a.issuer.as_str(), a.subject.as_str()), ("https://idp.example.com/", "user&1"));
        assert_eq!(a.attribute(ATTR_SESSION_NAME), vec!["alice"]);
        assert_eq!(a.assertion_id.as_deref(), Some("_1"));
    }

    #[test]
    fn name_qualifier_is_awss_hash() {
        // base64(sha1("https://idp.example.com/123456789012/idp"))
        let mut h = Sha1::new();
        h.update(b"https://idp.example.com/123456789012/idp");
        let expected = base64::engine::general_purpose::STANDARD.encode(h.finalize());
        assert_eq!(name_qualifier("https://idp.example.com/", "123456789012", "idp"), expected);
    }
}
