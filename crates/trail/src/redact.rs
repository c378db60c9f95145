//! Redaction: which request and response members never reach an audit record.
//!
//! Data-driven, per `eventSource` / `eventName`, after AWS's own CloudTrail behaviour: secret values,
//! plaintexts, passwords, private keys and secret access keys are omitted. A rule matches a member
//! name (lowerCamelCase, as in the record) at any depth of `requestParameters` or
//! `responseElements`. Services that land later are covered by adding rows here.

use serde_json::Value;

/// Which part of the record a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Request,
    Response,
    Both,
}

/// One redaction rule.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// `eventSource`, e.g. `kms.amazonaws.com`; `*` = every service.
    pub event_source: &'static str,
    /// `eventName`, e.g. `Encrypt`; `*` = every operation of the source.
    pub event_name: &'static str,
    pub part: Part,
    /// Member name (lowerCamelCase), compared case-insensitively, at any depth.
    pub member: &'static str,
}

const fn rule(event_source: &'static str, event_name: &'static str, part: Part, member: &'static str) -> Rule {
    Rule { event_source, event_name, part, member }
}

/// The rules. Every service is covered by the `*` rows; the others follow AWS's per-service behaviour.
pub const RULES: &[Rule] = &[
    // Everywhere: credentials, passwords and private keys.
    rule("*", "*", Part::Both, "secretAccessKey"),
    rule("*", "*", Part::Both, "password"),
    rule("*", "*", Part::Both, "oldPassword"),
    rule("*", "*", Part::Both, "newPassword"),
    rule("*", "*", Part::Both, "privateKey"),
    rule("*", "*", Part::Both, "privateKeyPlaintext"),
    rule("*", "*", Part::Both, "plaintext"),
    rule("*", "*", Part::Both, "secretString"),
    rule("*", "*", Part::Both, "secretBinary"),
    // IAM: CreateAccessKey's secret (also covered above), virtual MFA seeds, service-specific
    // credential passwords, MFA codes.
    rule("iam.amazonaws.com", "CreateAccessKey", Part::Response, "secretAccessKey"),
    rule("iam.amazonaws.com", "CreateVirtualMFADevice", Part::Response, "base32StringSeed"),
    rule("iam.amazonaws.com", "CreateVirtualMFADevice", Part::Response, "qRCodePNG"),
    rule("iam.amazonaws.com", "*", Part::Response, "servicePassword"),
    rule("iam.amazonaws.com", "*", Part::Request, "authenticationCode1"),
    rule("iam.amazonaws.com", "*", Part::Request, "authenticationCode2"),
    rule("iam.amazonaws.com", "UploadServerCertificate", Part::Request, "privateKey"),
    rule("iam.amazonaws.com", "*", Part::Request, "addPrivateKey"),
    // STS: the secret half of issued credentials (AWS keeps accessKeyId, sessionToken, expiration),
    // MFA codes, and federation assertions.
    rule("sts.amazonaws.com", "*", Part::Response, "secretAccessKey"),
    rule("sts.amazonaws.com", "*", Part::Request, "tokenCode"),
    rule("sts.amazonaws.com", "AssumeRoleWithSAML", Part::Request, "sAMLAssertion"),
    rule("sts.amazonaws.com", "AssumeRoleWithWebIdentity", Part::Request, "webIdentityToken"),
    // KMS: plaintext in Encrypt requests and in GenerateDataKey / Decrypt / GenerateRandom responses.
    rule("kms.amazonaws.com", "Encrypt", Part::Request, "plaintext"),
    rule("kms.amazonaws.com", "*", Part::Response, "plaintext"),
    rule("kms.amazonaws.com", "GenerateDataKeyPair", Part::Response, "privateKeyPlaintext"),
    // Secrets Manager: secret values in requests and in GetSecretValue responses.
    rule("secretsmanager.amazonaws.com", "*", Part::Request, "secretString"),
    rule("secretsmanager.amazonaws.com", "*", Part::Request, "secretBinary"),
    rule("secretsmanager.amazonaws.com", "GetSecretValue", Part::Response, "secretString"),
    rule("secretsmanager.amazonaws.com", "GetSecretValue", Part::Response, "secretBinary"),
    rule("secretsmanager.amazonaws.com", "BatchGetSecretValue", Part::Response, "secretString"),
    rule("secretsmanager.amazonaws.com", "BatchGetSecretValue", Part::Response, "secretBinary"),
    rule("secretsmanager.amazonaws.com", "GetRandomPassword", Part::Response, "randomPassword"),
];

impl Rule {
    fn applies(&self, event_source: &str, event_name: &str, part: Part) -> bool {
        (self.event_source == "*" || self.event_source == event_source)
            && (self.event_name == "*" || self.event_name == event_name)
            && (self.part == Part::Both || self.part == part)
    }
}

/// Remove every member the rules name from `value`, at any depth.
pub fn redact(event_source: &str, event_name: &str, part: Part, value: &mut Value) {
    if !matches!(value, Value::Object(_) | Value::Array(_)) {
        return;
    }
    let dropped =
        |k: &str| is_redacted(event_source, event_name, part, k.len(), |member| member.eq_ignore_ascii_case(k));
    strip(value, &dropped);
}

/// Bit `n` is set when a rule names a member of `n` bytes: most names are ruled out by length alone.
const MEMBER_LENGTHS: u64 = {
    let mut lengths = 0u64;
    let mut i = 0;
    while i < RULES.len() {
        assert!(RULES[i].member.len() < 64);
        lengths |= 1 << RULES[i].member.len();
        i += 1;
    }
    lengths
};

/// Whether a rule for this call drops a member whose name is `name_len` bytes long: `name_is`
/// tells whether that name is a rule's (lowerCamelCase, ASCII) member name, ignoring ASCII case.
pub(crate) fn is_redacted(
    event_source: &str,
    event_name: &str,
    part: Part,
    name_len: usize,
    name_is: impl Fn(&str) -> bool,
) -> bool {
    if name_len >= 64 || MEMBER_LENGTHS & (1 << name_len) == 0 {
        return false;
    }
    // The member name first: it rules out almost every rule at once.
    RULES.iter().any(|r| r.member.len() == name_len && name_is(r.member) && r.applies(event_source, event_name, part))
}

/// Remove the members `dropped` names, at any depth.
fn strip(value: &mut Value, dropped: &dyn Fn(&str) -> bool) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !dropped(k));
            for v in map.values_mut() {
                strip(v, dropped);
            }
        }
        Value::Array(items) => {
            for v in items {
                strip(v, dropped);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn create_access_key_secret_is_dropped_at_depth() {
        let mut v = json!({"accessKey": {"accessKeyId": "AKIA1", "secretAccessKey": "s3cr3t", "status": "Active"}});
        redact("iam.amazonaws.com", "CreateAccessKey", Part::Response, &mut v);
        assert_eq!(v, json!({"accessKey": {"accessKeyId": "AKIA1", "status": "Active"}}));
    }

    #[test]
    fn kms_and_secrets_rules_apply_by_source_and_event() {
        let mut req = json!({"keyId": "k", "Plaintext": "aGVsbG8="});
        redact("kms.amazonaws.com", "Encrypt", Part::Request, &mut req);
        assert_eq!(req, json!({"keyId": "k"}));
        let mut resp = json!({"keyId": "k", "plaintext": "x", "ciphertextBlob": "y"});
        redact("kms.amazonaws.com", "GenerateDataKey", Part::Response, &mut resp);
        assert_eq!(resp, json!({"keyId": "k", "ciphertextBlob": "y"}));
        let mut s = json!({"name": "n", "secretString": "pw", "tags": [{"key": "a", "secretBinary": "b"}]});
        redact("secretsmanager.amazonaws.com", "CreateSecret", Part::Request, &mut s);
        assert_eq!(s, json!({"name": "n", "tags": [{"key": "a"}]}));
    }

    #[test]
    fn generated_passwords_and_saml_private_keys_are_dropped() {
        let mut v = json!({"randomPassword": "hunter2"});
        redact("secretsmanager.amazonaws.com", "GetRandomPassword", Part::Response, &mut v);
        assert_eq!(v, json!({}));
        let mut v = json!({"sAMLProviderArn": "arn", "addPrivateKey": "-----BEGIN PRIVATE KEY-----"});
        redact("iam.amazonaws.com", "UpdateSAMLProvider", Part::Request, &mut v);
        assert_eq!(v, json!({"sAMLProviderArn": "arn"}));
    }

    #[test]
    fn per_event_rules_do_not_leak_to_other_events() {
        let mut v = json!({"virtualMFADevice": {"serialNumber": "arn", "base32StringSeed": "seed"}});
        redact("iam.amazonaws.com", "ListVirtualMFADevices", Part::Response, &mut v);
        assert!(v["virtualMFADevice"].get("base32StringSeed").is_some());
        redact("iam.amazonaws.com", "CreateVirtualMFADevice", Part::Response, &mut v);
        assert!(v["virtualMFADevice"].get("base32StringSeed").is_none());
    }
}
