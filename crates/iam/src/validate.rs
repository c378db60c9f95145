//! Request parameters, validated against the botocore model's constraints, with AWS's
//! `ValidationError` wording ("1 validation error detected: Value 'x' at 'userName' failed to
//! satisfy constraint: …"). All violations of a request are reported together, as AWS does.

use rampart_protocol::query::QueryParams;
use rampart_protocol::AwsError;

use crate::model::Tag;

/// A string member's constraints: length in characters, and a pattern (its regex text for the
/// message, and a checker).
pub struct Spec {
    pub min: usize,
    pub max: usize,
    pub pattern: Option<Pattern>,
}

/// A pattern's regex text (for messages) and its checker.
pub type Pattern = (&'static str, fn(&str) -> bool);

/// A member's constraints (the model's `min`, `max` and `pattern`).
pub const fn spec(min: usize, max: usize, pattern: Option<Pattern>) -> Spec {
    Spec { min, max, pattern }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn name_chars(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| is_word(c) || "+=,.@-".contains(c))
}

fn path_chars(s: &str) -> bool {
    s == "/" || (s.len() >= 3 && s.starts_with('/') && s.ends_with('/') && s.chars().all(|c| ('!'..='~').contains(&c)))
}

fn path_prefix_chars(s: &str) -> bool {
    s.starts_with('/') && s.chars().all(|c| ('!'..='\u{7f}').contains(&c))
}

fn policy_path_chars(s: &str) -> bool {
    // ((/[A-Za-z0-9\.,\+@=_-]+)*)/
    let Some(inner) = s.strip_suffix('/') else { return false };
    if inner.is_empty() {
        return true;
    }
    inner.strip_prefix('/').is_some_and(|rest| {
        rest.split('/')
            .all(|seg| !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || ".,+@=_-".contains(c)))
    })
}

fn document_chars(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| matches!(c, '\t' | '\n' | '\r' | ' '..='\u{ff}'))
}

fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || (c.is_whitespace() && !c.is_control()) || "_.:/=+-@".contains(c)
}

fn tag_key_chars(s: &str) -> bool {
    !s.is_empty() && s.chars().all(tag_char)
}

fn tag_value_chars(s: &str) -> bool {
    s.chars().all(tag_char)
}

fn marker_chars(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| (' '..='\u{ff}').contains(&c))
}

fn id_chars(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_word)
}

fn role_description_chars(s: &str) -> bool {
    s.chars().all(|c| matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{a1}'..='\u{ff}'))
}

fn version_id_chars(s: &str) -> bool {
    // v[1-9][0-9]*(\.[A-Za-z0-9-]*)?
    let Some(rest) = s.strip_prefix('v') else { return false };
    let (num, suffix) = match rest.split_once('.') {
        Some((num, suffix)) => (num, Some(suffix)),
        None => (rest, None),
    };
    let num_ok =
        num.chars().next().is_some_and(|c| ('1'..='9').contains(&c)) && num.chars().all(|c| c.is_ascii_digit());
    num_ok && suffix.is_none_or(|x| x.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

fn alias_chars(s: &str) -> bool {
    // ^[a-z0-9]([a-z0-9]|-(?!-)){1,61}[a-z0-9]$
    let b = s.as_bytes();
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    b.len() >= 3
        && b.len() <= 63
        && b.first().is_some_and(|&c| ok(c))
        && b.last().is_some_and(|&c| ok(c))
        && b.iter().all(|&c| ok(c) || c == b'-')
        && !s.contains("--")
}

/// The longest list (rendered) a validation error repeats; longer ones are shown as `[...]`.
pub(crate) const MAX_ECHOED_LIST: usize = 4096;

pub const NAME_RE: &str = "[\\w+=,.@-]+";
const NAME: Option<Pattern> = Some((NAME_RE, name_chars));

pub const USER_NAME: Spec = spec(1, 64, NAME);
pub const EXISTING_USER_NAME: Spec = spec(1, 128, NAME);
pub const GROUP_NAME: Spec = spec(1, 128, NAME);
pub const ROLE_NAME: Spec = spec(1, 64, NAME);
pub const POLICY_NAME: Spec = spec(1, 128, NAME);
pub const PROFILE_NAME: Spec = spec(1, 128, NAME);
pub const PATH: Spec = spec(1, 512, Some(("(\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)", path_chars)));
pub const PATH_PREFIX: Spec = spec(1, 512, Some(("\\u002F[\\u0021-\\u007F]*", path_prefix_chars)));
pub const POLICY_PATH: Spec = spec(1, 512, Some(("((/[A-Za-z0-9\\.,\\+@=_-]+)*)/", policy_path_chars)));
pub const ARN: Spec = spec(20, 2048, None);
pub const DOCUMENT: Spec = spec(1, 131072, Some(("[\\u0009\\u000A\\u000D\\u0020-\\u00FF]+", document_chars)));
pub const POLICY_DESCRIPTION: Spec = spec(0, 1000, None);
pub const ROLE_DESCRIPTION: Spec =
    spec(0, 1000, Some(("[\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]*", role_description_chars)));
pub const MARKER: Spec = spec(1, 320, Some(("[\\u0020-\\u00FF]+", marker_chars)));
pub const ACCESS_KEY_ID: Spec = spec(16, 128, Some(("[\\w]+", id_chars)));
pub const VERSION_ID: Spec = spec(0, usize::MAX, Some(("v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?", version_id_chars)));
pub const ACCOUNT_ALIAS: Spec = spec(3, 63, Some(("^[a-z0-9]([a-z0-9]|-(?!-)){1,61}[a-z0-9]$", alias_chars)));
pub const TAG_KEY: Spec = spec(1, 128, Some(("[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+", tag_key_chars)));
pub const TAG_VALUE: Spec = spec(0, 256, Some(("[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*", tag_value_chars)));
pub const RESOURCE_NAME: Spec = spec(1, 2048, None);
pub const ACTION_NAME: Spec = spec(3, 128, None);
pub const CONTEXT_KEY_NAME: Spec = spec(5, 256, None);
pub const RESOURCE_HANDLING: Spec = spec(1, 64, None);
pub const PUBLIC_KEY_BODY: Spec = spec(1, 16384, Some(("[\\u0009\\u000A\\u000D\\u0020-\\u00FF]+", document_chars)));
pub const PUBLIC_KEY_ID: Spec = spec(20, 128, Some(("[\\w]+", id_chars)));
pub const CERTIFICATE_BODY: Spec = PUBLIC_KEY_BODY;
pub const CERTIFICATE_CHAIN: Spec = spec(1, 2097152, Some(("[\\u0009\\u000A\\u000D\\u0020-\\u00FF]+", document_chars)));
pub const CERTIFICATE_ID: Spec = spec(24, 128, Some(("[\\w]+", id_chars)));
pub const SERVER_CERT_NAME: Spec = spec(1, 128, NAME);
pub const SAML_NAME: Spec = spec(1, 128, Some(("[\\w._-]+", saml_name_chars)));
pub const SAML_METADATA: Spec = spec(1000, 10000000, None);
/// `AWSServiceName` (IAM models it as a group name).
/// A service namespace (`s3`): serviceNamespaceType, 1–64 of `[\w-]*`.
pub const SERVICE_NAMESPACE: Spec = spec(1, 64, Some(("[\\w-]*", namespace_chars)));
pub const SERVICE_NAME: Spec = spec(1, 128, NAME);
pub const CUSTOM_SUFFIX: Spec = spec(1, 64, NAME);
pub const DELETION_TASK_ID: Spec = spec(1, 1000, None);

fn namespace_chars(s: &str) -> bool {
    s.chars().all(|c| is_word(c) || c == '-')
}

fn saml_name_chars(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| is_word(c) || c == '.' || c == '-')
}

/// A sensitive member (private keys): checked like the others, but never echoed back.
pub fn check_secret(a: &mut Args<'_>, field: &str, value: Option<&str>, max: usize) {
    match value {
        None => a.error(format!("Value null at '{field}' failed to satisfy constraint: Member must not be null")),
        Some(v) if v.is_empty() || v.chars().count() > max || !document_chars(v) => a.error(format!(
            "Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to {max}, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"
        )),
        Some(_) => {}
    }
}

/// `UserName` → `userName`, as AWS names members in validation messages.
fn member_name(key: &str) -> String {
    let mut c = key.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Validated access to one request's parameters. Getters record violations and return
/// placeholders; [`Args::finish`] turns the violations into one `ValidationError`.
pub struct Args<'a> {
    q: &'a QueryParams,
    errors: Vec<String>,
}

impl<'a> Args<'a> {
    pub fn new(q: &'a QueryParams) -> Self {
        Args { q, errors: Vec::new() }
    }

    fn check(&mut self, field: &str, value: &str, spec: &Spec) {
        self.check_shown(field, value, spec, true);
    }

    /// Checks `value`; messages quote it (at most [`rampart_protocol::echo`]'s prefix) when `shown`,
    /// and name only the member otherwise (MFA codes, SAML assertions: values that must not reach
    /// the response or the audit trail).
    fn check_shown(&mut self, field: &str, value: &str, spec: &Spec, shown: bool) {
        let len = value.chars().count();
        let subject = if shown {
            format!("Value '{}' at '{field}'", rampart_protocol::echo(value))
        } else {
            format!("Value at '{field}'")
        };
        if len < spec.min {
            self.errors.push(format!(
                "{subject} failed to satisfy constraint: Member must have length greater than or equal to {}",
                spec.min
            ));
        }
        if len > spec.max {
            self.errors.push(format!(
                "{subject} failed to satisfy constraint: Member must have length less than or equal to {}",
                spec.max
            ));
        }
        if let Some((re, ok)) = spec.pattern {
            if len >= spec.min.max(1) && !ok(value) {
                self.errors.push(format!(
                    "{subject} failed to satisfy constraint: Member must satisfy regular expression pattern: {re}"
                ));
            }
        }
    }

    fn null(&mut self, key: &str) {
        self.errors.push(format!(
            "Value null at '{}' failed to satisfy constraint: Member must not be null",
            member_name(key)
        ));
    }

    /// A required string member.
    pub fn req(&mut self, key: &str, spec: &Spec) -> &'a str {
        match self.q.get(key) {
            Some(v) => {
                self.check(&member_name(key), v, spec);
                v
            }
            None => {
                self.null(key);
                ""
            }
        }
    }

    /// An optional string member.
    pub fn opt(&mut self, key: &str, spec: &Spec) -> Option<&'a str> {
        let v = self.q.get(key)?;
        self.check(&member_name(key), v, spec);
        Some(v)
    }

    /// [`Args::req`] for a member whose value error messages must not repeat (`SAMLAssertion`,
    /// `AuthenticationCode1`/`2`): the audit trail redacts these parameters, and a message quoting
    /// them would carry them there anyway.
    pub fn req_unshown(&mut self, key: &str, spec: &Spec) -> &'a str {
        match self.q.get(key) {
            Some(v) => {
                self.check_shown(&member_name(key), v, spec, false);
                v
            }
            None => {
                self.null(key);
                ""
            }
        }
    }

    /// [`Args::opt`] for a member whose value error messages must not repeat (`TokenCode`).
    pub fn opt_unshown(&mut self, key: &str, spec: &Spec) -> Option<&'a str> {
        let v = self.q.get(key)?;
        self.check_shown(&member_name(key), v, spec, false);
        Some(v)
    }

    /// An optional integer member within `[min, max]`.
    pub fn int(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        let raw = self.q.get(key)?;
        let field = member_name(key);
        let Ok(v) = raw.trim().parse::<i64>() else {
            self.errors.push(format!(
                "Value '{}' at '{field}' failed to satisfy constraint: Member must be a number",
                rampart_protocol::echo(raw)
            ));
            return None;
        };
        if v < min {
            self.errors.push(format!(
                "Value '{v}' at '{field}' failed to satisfy constraint: Member must have value greater than or equal to {min}"
            ));
        }
        if v > max {
            self.errors.push(format!(
                "Value '{v}' at '{field}' failed to satisfy constraint: Member must have value less than or equal to {max}"
            ));
        }
        Some(v)
    }

    /// An optional boolean member.
    pub fn bool(&mut self, key: &str) -> Option<bool> {
        let raw = self.q.get(key)?;
        if raw.eq_ignore_ascii_case("true") {
            Some(true)
        } else if raw.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            self.errors.push(format!(
                "Value '{}' at '{}' failed to satisfy constraint: Member must be a boolean",
                rampart_protocol::echo(raw),
                member_name(key)
            ));
            None
        }
    }

    /// An optional enum member.
    pub fn enumeration(&mut self, key: &str, values: &[&str]) -> Option<&'a str> {
        let v = self.q.get(key)?;
        if !values.contains(&v) {
            self.errors.push(format!(
                "Value '{}' at '{}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                rampart_protocol::echo(v),
                member_name(key),
                values.join(", ")
            ));
        }
        Some(v)
    }

    /// A required enum member.
    pub fn req_enum(&mut self, key: &str, values: &[&str]) -> &'a str {
        match self.enumeration(key, values) {
            Some(v) => v,
            None => {
                self.null(key);
                ""
            }
        }
    }

    /// `Marker` and `MaxItems` (1–1000, default 100).
    pub fn paging(&mut self) -> (Option<&'a str>, usize) {
        let marker = self.opt("Marker", &MARKER);
        let max = self.int("MaxItems", 1, 1000).unwrap_or(100).clamp(1, 1000);
        (marker, usize::try_from(max).unwrap_or(100))
    }

    /// A list of strings `Key.member.N`; `required` → null error when absent. Over `max_len`, the
    /// list is refused as a whole (its members are not checked one by one).
    pub fn list(&mut self, key: &str, spec: &Spec, max_len: Option<usize>, required: bool) -> Vec<&'a str> {
        let items = self.q.list(&format!("{key}.member"));
        if items.is_empty() && required && !self.q.contains(key) {
            self.null(key);
        }
        let field = member_name(key);
        if let Some(max) = max_len {
            if items.len() > max {
                // AWS echoes the list; a long one is elided so errors stay bounded. The members of
                // a list already refused are not checked one by one.
                let len: usize = items.iter().map(|v| v.len() + 2).sum();
                let shown = if len <= MAX_ECHOED_LIST { items.join(", ") } else { "...".to_string() };
                self.errors.push(format!(
                    "Value '[{shown}]' at '{field}' failed to satisfy constraint: Member must have length less than or equal to {max}"
                ));
                return items;
            }
        }
        for (i, v) in items.iter().enumerate() {
            self.check(&format!("{field}.{}.member", i + 1), v, spec);
        }
        items
    }

    /// IAM's `Tags.member.N.Key/Value` (max 50 per request). IAM names the member without its
    /// value: "Value at 'tags.1.member.key' failed to satisfy constraint: …", "Value at 'tags'
    /// failed to satisfy constraint: Member must have length less than or equal to 50" (recorded
    /// AWS responses, localstack tests/aws/services/iam/test_iam_roles.snapshot.json).
    pub fn tags(&mut self, key: &str) -> Vec<Tag> {
        self.tag_list(key, false)
    }

    /// A required `Tags` list (Tag{User,Role,InstanceProfile,MFADevice,…}): present, maybe empty.
    pub fn required_tags(&mut self, key: &str) -> Vec<Tag> {
        let tags = self.tags(key);
        if !self.q.contains(key) {
            self.null(key);
        }
        tags
    }

    /// STS's session `Tags`, whose messages quote the value.
    pub fn session_tags(&mut self, key: &str) -> Vec<Tag> {
        self.tag_list(key, true)
    }

    /// IAM's `TagKeys` of an Untag* call: AWS reports the list as a whole ("Value at 'tagKeys'
    /// failed to satisfy constraint: Member must satisfy constraint: [...]", recorded AWS
    /// responses, localstack tests/aws/services/iam/test_iam_roles.snapshot.json).
    pub fn tag_keys(&mut self, key: &str) -> Vec<&'a str> {
        let items = self.q.list(&format!("{key}.member"));
        if items.is_empty() && !self.q.contains(key) {
            self.null(key);
        }
        let field = member_name(key);
        if items.len() > 50 {
            self.errors.push(format!(
                "Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to 50"
            ));
        } else if items.iter().any(|k| k.is_empty() || k.chars().count() > TAG_KEY.max || !tag_key_chars(k)) {
            self.errors.push(format!(
                "Value at '{field}' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to {}, Member must have length greater than or equal to {}, Member must satisfy regular expression pattern: {}, Member must not be null]",
                TAG_KEY.max,
                TAG_KEY.min,
                TAG_KEY.pattern.map_or("", |p| p.0)
            ));
        }
        items
    }

    fn tag_list(&mut self, key: &str, shown: bool) -> Vec<Tag> {
        let items = self.q.struct_list(&format!("{key}.member"));
        let field = member_name(key);
        if items.len() > 50 {
            let subject = if shown { format!("Value '[...]' at '{field}'") } else { format!("Value at '{field}'") };
            self.errors.push(format!(
                "{subject} failed to satisfy constraint: Member must have length less than or equal to 50"
            ));
            // Refused as a whole: no per-tag checks (whose errors would echo every tag).
            return Vec::new();
        }
        let mut tags = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let base = format!("{field}.{}.member", i + 1);
            let k = match item.get("Key") {
                Some(k) => {
                    self.check_shown(&format!("{base}.key"), k, &TAG_KEY, shown);
                    k
                }
                None => {
                    self.errors.push(format!(
                        "Value null at '{base}.key' failed to satisfy constraint: Member must not be null"
                    ));
                    ""
                }
            };
            let v = match item.get("Value") {
                Some(v) => {
                    self.check_shown(&format!("{base}.value"), v, &TAG_VALUE, shown);
                    v
                }
                None => {
                    self.errors.push(format!(
                        "Value null at '{base}.value' failed to satisfy constraint: Member must not be null"
                    ));
                    ""
                }
            };
            tags.push(Tag { key: k.to_string(), value: v.to_string() });
        }
        tags
    }

    /// Check a value found by the caller (members of struct lists) against `spec`.
    pub fn check_value(&mut self, field: &str, value: &str, spec: &Spec) {
        self.check(field, value, spec);
    }

    /// Record a violation found by the caller.
    pub fn error(&mut self, message: String) {
        self.errors.push(message);
    }

    /// `Ok` when nothing was violated; else AWS's `ValidationError`.
    pub fn finish(self) -> Result<(), AwsError> {
        match self.errors.as_slice() {
            [] => Ok(()),
            [one] => Err(AwsError::validation(format!("1 validation error detected: {one}"))),
            all => Err(AwsError::validation(format!("{} validation errors detected: {}", all.len(), all.join("; ")))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn patterns() {
        assert!(name_chars("alice+x=,.@-_9"));
        assert!(!name_chars("al ice") && !name_chars("a/b") && !name_chars(""));
        assert!(path_chars("/") && path_chars("/a/b/") && !path_chars("//") && !path_chars("/a") && !path_chars("a/"));
        assert!(
            policy_path_chars("/")
                && policy_path_chars("/x/y-z/")
                && !policy_path_chars("//")
                && !policy_path_chars("/a b/")
        );
        assert!(
            version_id_chars("v1") && version_id_chars("v12.a-b") && !version_id_chars("v0") && !version_id_chars("1")
        );
        assert!(alias_chars("my-alias") && !alias_chars("my--alias") && !alias_chars("-ab") && !alias_chars("AB1"));
        assert!(tag_key_chars("Cost Center:é/1") && !tag_key_chars("a*b") && tag_value_chars(""));
        assert!(document_chars("{\n\t\"a\": \"é\"}") && !document_chars("{\"a\": \"\u{2603}\"}"));
        assert!(role_description_chars("ok é") && !role_description_chars("\u{7f}"));
    }

    /// Codes and assertions never come back in messages; other values come back bounded.
    #[test]
    fn unshown_members_and_long_values() {
        const CODE: Spec = spec(6, 6, Some(("[\\d]+", |s: &str| s.bytes().all(|b| b.is_ascii_digit()))));
        let long = "é".repeat(200_000);
        let p = q(&[
            ("AuthenticationCode1", "12a456"),
            ("TokenCode", "98765x"),
            ("SAMLAssertion", &long),
            ("UserName", &long),
        ]);
        let mut a = Args::new(&p);
        a.req_unshown("AuthenticationCode1", &CODE);
        a.opt_unshown("TokenCode", &CODE);
        a.req_unshown("SAMLAssertion", &spec(4, 100_000, None));
        a.req("UserName", &USER_NAME);
        let e = a.finish().unwrap_err();
        assert!(!e.message.contains("12a456") && !e.message.contains("98765x"), "{}", e.message);
        assert!(e.message.contains("Value at 'authenticationCode1' failed"), "{}", e.message);
        assert!(e.message.contains("Value at 'tokenCode' failed"), "{}", e.message);
        assert!(e.message.contains("Value at 'sAMLAssertion' failed"), "{}", e.message);
        assert!(e.message.contains("...' at 'userName'"), "{}", e.message);
        assert!(e.message.chars().count() < 2_000, "{}", e.message.chars().count());
    }

    #[test]
    fn collects_all_violations() {
        let p = q(&[("UserName", "bad name"), ("Path", "nope"), ("MaxItems", "0")]);
        let mut a = Args::new(&p);
        a.req("UserName", &USER_NAME);
        a.opt("Path", &PATH);
        a.paging();
        a.req("GroupName", &GROUP_NAME);
        let e = a.finish().unwrap_err();
        assert_eq!(e.code, "ValidationError");
        assert!(e.message.starts_with("4 validation errors detected: "), "{}", e.message);
        assert!(e.message.contains(
            "Value 'bad name' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        ));
        assert!(e.message.contains("Value null at 'groupName' failed to satisfy constraint: Member must not be null"));
        assert!(e.message.contains("Member must have value greater than or equal to 1"));
    }

    #[test]
    fn lengths_and_tags() {
        let long = "a".repeat(65);
        let p = q(&[("UserName", long.as_str()), ("Tags.member.1.Key", "k"), ("Tags.member.1.Value", "v*")]);
        let mut a = Args::new(&p);
        a.req("UserName", &USER_NAME);
        let tags = a.tags("Tags");
        assert_eq!(tags.len(), 1);
        let e = a.finish().unwrap_err();
        assert!(e.message.starts_with("2 validation errors detected"));
        assert!(e.message.contains("Member must have length less than or equal to 64"));
        assert!(e.message.contains("at 'tags.1.member.value'"));
        let ok = q(&[("UserName", "bob")]);
        let mut a = Args::new(&ok);
        assert_eq!(a.req("UserName", &USER_NAME), "bob");
        assert!(a.finish().is_ok());
    }
}
