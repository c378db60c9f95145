//! Building one CloudTrail record (eventVersion 1.09) from what the pipeline knows about a call.

use std::net::IpAddr;

use rampart_service::{AwsError, Caller, CallerKind, Input, Output};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::audit::StoredEvent;
use crate::json::{may_need_escaping, needs_escape, write_escaped, write_str, ObjectWriter};
use crate::redact::{allowed, redact, verdict, Part, Verdict};
use rampart_protocol::error::echo_at_most;

/// The record format version written by Rampart.
pub const EVENT_VERSION: &str = "1.09";

/// Who made the call, as far as authentication got.
#[derive(Clone, Copy, Debug)]
pub enum Identity<'a> {
    /// Authenticated (or identified by a known access key whose signature then failed).
    Caller(&'a Caller),
    /// An access key Rampart does not know (or no usable credentials at all).
    Unknown { access_key_id: Option<&'a str> },
}

/// Everything the pipeline knows about one call.
#[derive(Clone, Copy, Debug)]
pub struct CallFacts<'a> {
    pub event_time: OffsetDateTime,
    /// `iam.amazonaws.com`, …
    pub event_source: &'a str,
    pub event_name: &'a str,
    pub region: &'a str,
    pub source_ip: IpAddr,
    pub user_agent: &'a str,
    pub identity: Identity<'a>,
    /// The account whose trail receives the record.
    pub recipient_account_id: &'a str,
    /// The decoded input, when decoding got that far.
    pub input: Option<&'a Input>,
    pub output: Option<&'a Output>,
    pub error: Option<&'a AwsError>,
    pub request_id: &'a str,
    /// TLS facts, when the call came over TLS.
    pub tls: Option<TlsFacts<'a>>,
}

/// `tlsDetails` of a record.
#[derive(Clone, Copy, Debug)]
pub struct TlsFacts<'a> {
    pub tls_version: Option<&'a str>,
    pub cipher_suite: Option<&'a str>,
    pub host: Option<&'a str>,
}

/// A finished record, ready for the audit writer: the CloudTrail JSON (serialised once, as it is
/// stored and delivered) plus the fields LookupEvents filters on.
#[derive(Clone, Debug)]
pub struct Record {
    /// The account whose trail receives the record.
    pub recipient_account_id: String,
    pub event: StoredEvent,
}

impl Record {
    /// The CloudTrail JSON as a value.
    pub fn json(&self) -> Value {
        self.event.record()
    }
}

/// ISO 8601 in UTC to the second, as CloudTrail writes times: `2024-05-01T12:00:00Z`.
pub fn iso_time(t: OffsetDateTime) -> String {
    iso_time_bytes(t).map(|b| b.iter().map(|&c| c as char).collect()).unwrap_or_default()
}

/// [`iso_time`] as ASCII, without allocating; `None` for times RFC 3339 cannot express (years
/// outside 0–9999), which earlier versions wrote as an empty string.
fn iso_time_bytes(t: OffsetDateTime) -> Option<[u8; 20]> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = u16::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let mut b = *b"0000-00-00T00:00:00Z";
    let digits = |b: &mut [u8], mut n: u16| {
        for d in b.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    digits(&mut b[0..4], year);
    digits(&mut b[5..7], t.month() as u16);
    digits(&mut b[8..10], t.day().into());
    digits(&mut b[11..13], t.hour().into());
    digits(&mut b[14..16], t.minute().into());
    digits(&mut b[17..19], t.second().into());
    Some(b)
}

/// A time as a JSON string (see [`iso_time_bytes`]).
fn write_time(out: &mut Vec<u8>, t: OffsetDateTime) {
    out.push(b'"');
    if let Some(b) = iso_time_bytes(t) {
        out.extend_from_slice(&b);
    }
    out.push(b'"');
}

pub use rampart_protocol::new_uuid;

/// Read-only operations (`readOnly: true`; their `responseElements` are `null`, as in AWS).
pub fn is_read_only(event_name: &str) -> bool {
    const PREFIXES: &[&str] =
        &["Get", "List", "Describe", "Lookup", "Simulate", "BatchGet", "Search", "Validate", "Verify"];
    const EXACT: &[&str] = &["Decrypt", "Encrypt", "ReEncrypt", "Sign", "GenerateRandom", "GenerateMac"];
    // The first letter rules out most prefixes without comparing them.
    let first = event_name.as_bytes().first().copied();
    PREFIXES.iter().any(|p| {
        first == p.as_bytes().first().copied()
            && event_name.starts_with(p)
            && event_name[p.len()..].starts_with(char::is_uppercase)
    }) || EXACT.contains(&event_name)
        || (event_name.starts_with("GenerateDataKey"))
}

/// Build the record for a call. The CloudTrail JSON is written once, straight from the facts.
/// Members are written in the order serde_json's (sorted) maps have always written them, so the
/// text is byte for byte what earlier versions stored.
pub fn build(f: &CallFacts<'_>) -> Record {
    let event_id = new_uuid();
    let read_only = is_read_only(f.event_name);
    let input = f.input.filter(|_| f.error.is_none_or(|e| !is_auth_failure(e)));
    let output = f.output.filter(|_| !read_only);
    let mut text = Vec::with_capacity(1024);
    let mut e = ObjectWriter::start(&mut text);
    e.str("awsRegion", f.region);
    if let Some(err) = f.error {
        e.str("errorCode", &err.code);
        e.str("errorMessage", &echo_at_most(&err.message, MAX_ERROR_MESSAGE_CHARS));
    }
    e.str("eventCategory", "Management");
    e.str("eventID", &event_id);
    e.str("eventName", f.event_name);
    e.str("eventSource", f.event_source);
    write_time(e.member_value("eventTime"), f.event_time);
    e.str("eventType", "AwsApiCall");
    e.str("eventVersion", EVENT_VERSION);
    e.bool("managementEvent", true);
    e.bool("readOnly", read_only);
    e.str("recipientAccountId", f.recipient_account_id);
    e.str("requestID", f.request_id);
    let mut res = Resources::new(f.event_source);
    let out = e.member_value("requestParameters");
    let start = out.len();
    write_part(out, f, Part::Request, input.map(Body::Input), Some(&mut res));
    omit_if_oversized(out, start);
    let out = e.member_value("responseElements");
    let start = out.len();
    write_part(out, f, Part::Response, output.map(Body::Output), None);
    omit_if_oversized(out, start);
    write_ip(e.member_value("sourceIPAddress"), f.source_ip);
    if let Some(tls) = f.tls {
        let mut t = e.object("tlsDetails");
        t.opt_str("cipherSuite", tls.cipher_suite);
        t.opt_str("clientProvidedHostHeader", tls.host);
        t.opt_str("tlsVersion", tls.tls_version);
        t.end();
    }
    e.str("userAgent", &echo_at_most(f.user_agent, MAX_USER_AGENT_CHARS));
    write_user_identity(e.object("userIdentity"), &f.identity, f.recipient_account_id);
    e.end();
    let (user, key) = lookup_user_and_key(&f.identity);
    let stored = StoredEvent {
        seq: 0,
        t: f.event_time.unix_timestamp(),
        name: f.event_name.to_string(),
        source: f.event_source.to_string(),
        region: f.region.to_string(),
        ro: read_only,
        user,
        key,
        res: res.into_list(),
        // Every piece written above is UTF-8.
        event: String::from_utf8(text).unwrap_or_default(),
        id: event_id,
    };
    Record { recipient_account_id: f.recipient_account_id.to_string(), event: stored }
}

/// The largest `requestParameters` / `responseElements` a record keeps, in bytes of JSON: as
/// CloudTrail, larger ones are omitted — the field becomes `{"omitted":true}` — so a huge input
/// (a 12 MB `SAMLAssertion`) cannot make a huge record.
pub const MAX_PART_BYTES: usize = 100 * 1024;
/// The most characters of an error message a record keeps (then `...`).
pub const MAX_ERROR_MESSAGE_CHARS: usize = 4096;
/// The most characters of a `User-Agent` a record keeps (then `...`).
pub const MAX_USER_AGENT_CHARS: usize = 1024;

/// Replace what was written after `start` with `{"omitted":true}` when it exceeds
/// [`MAX_PART_BYTES`].
fn omit_if_oversized(out: &mut Vec<u8>, start: usize) {
    if out.len().saturating_sub(start) > MAX_PART_BYTES {
        out.truncate(start);
        out.extend_from_slice(br#"{"omitted":true}"#);
    }
}

/// An IP address as a JSON string (its text needs no escaping).
fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    use std::io::Write as _;
    out.push(b'"');
    match ip {
        // Dotted decimal without the formatting machinery (the usual case).
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                let digits = [octet / 100, octet / 10 % 10, octet % 10];
                let skip = if octet >= 100 {
                    0
                } else if octet >= 10 {
                    1
                } else {
                    2
                };
                out.extend(digits[skip..].iter().map(|d| b'0' + d));
            }
        }
        // Writing into a Vec cannot fail.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
    out.push(b'"');
}

/// A request or response as decoded.
#[derive(Clone, Copy)]
enum Body<'a> {
    Input(&'a Input),
    Output(&'a Output),
}

/// `requestParameters` or `responseElements`: redacted, an empty object recorded as `null`. JSON
/// bodies are written straight from the decoded value (see [`write_camel`]); awsQuery parameters
/// and XML outputs go through a [`Value`] as before. `res` collects the lookup resources.
fn write_part(out: &mut Vec<u8>, f: &CallFacts<'_>, part: Part, body: Option<Body<'_>>, res: Option<&mut Resources>) {
    let json = match body {
        None => None,
        Some(Body::Input(Input::Json(v)) | Body::Output(Output::Json(v))) => Some(v),
        Some(Body::Input(input)) => return write_value(out, &redacted(f, part, input_json(input)), res),
        Some(Body::Output(output)) => return write_value(out, &redacted(f, part, output_json(output)), res),
    };
    let Some(v) = json else {
        out.extend_from_slice(b"null");
        return;
    };
    let start = out.len();
    let table = allowed(f.event_source, f.event_name, part);
    let dropped = |name: &Name<'_>| {
        verdict(table, f.event_source, f.event_name, part, name.len(), |m| name.eq_ignore_ascii_case(m))
    };
    match v {
        Value::Object(m) => {
            if write_object(out, m, &dropped, res) == 0 {
                // Everything was redacted (or there was nothing): `null`, as for an empty object.
                out.truncate(start);
                out.extend_from_slice(b"null");
            }
        }
        other => write_camel(out, other, &dropped),
    }
}

/// A `Value` part as serde_json writes it, and its lookup resources.
fn write_value(out: &mut Vec<u8>, v: &Value, res: Option<&mut Resources>) {
    // Writing into a Vec cannot fail, nor can serialising a `Value` (string keys).
    let _ = serde_json::to_writer(&mut *out, v);
    if let (Some(res), Value::Object(m)) = (res, v) {
        for (k, v) in m {
            res.offer(&Name::Owned(k), v);
        }
    }
}

/// An object member's name as CloudTrail writes it: the first letter lowered. Borrowed when that
/// letter is ASCII (lowering it cannot change its length), else computed by [`lower_first`].
enum Name<'a> {
    /// The lowered first byte and the rest of the name, as is.
    Ascii(u8, &'a str),
    Owned(&'a str),
}

impl Name<'_> {
    /// The length in bytes.
    fn len(&self) -> usize {
        match self {
            Name::Ascii(_, rest) => 1 + rest.len(),
            Name::Owned(name) => name.len(),
        }
    }

    fn eq_str(&self, s: &str) -> bool {
        match self {
            Name::Ascii(first, rest) => {
                s.len() == 1 + rest.len() && s.as_bytes()[0] == *first && s.as_bytes()[1..] == *rest.as_bytes()
            }
            Name::Owned(name) => *name == s,
        }
    }

    fn eq_ignore_ascii_case(&self, s: &str) -> bool {
        match self {
            Name::Ascii(first, rest) => {
                s.len() == 1 + rest.len()
                    && s.as_bytes()[0].eq_ignore_ascii_case(first)
                    && s.as_bytes()[1..].eq_ignore_ascii_case(rest.as_bytes())
            }
            Name::Owned(name) => name.eq_ignore_ascii_case(s),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        if let Name::Ascii(first, rest) = self {
            if !needs_escape(*first) && !may_need_escaping(rest.as_bytes()) {
                // The usual case: nothing to escape.
                out.reserve(rest.len() + 4);
                out.push(b'"');
                out.push(*first);
                out.extend_from_slice(rest.as_bytes());
                out.extend_from_slice(b"\":");
                return;
            }
        }
        out.push(b'"');
        match self {
            Name::Ascii(first, rest) => {
                write_escaped(out, &[*first]);
                write_escaped(out, rest.as_bytes());
            }
            Name::Owned(name) => write_escaped(out, name.as_bytes()),
        }
        out.extend_from_slice(b"\":");
    }
}

/// The members of `m` in the order a map of their lowered names iterates, later duplicates
/// winning (what collecting `(lower_first(k), v)` into a `Map` gives), without that map when
/// lowering keeps the keys in order, as SDK member names (`KeyId`, `Plaintext`) do.
fn write_object(
    out: &mut Vec<u8>,
    m: &Map<String, Value>,
    dropped: &dyn Fn(&Name<'_>) -> Verdict,
    res: Option<&mut Resources>,
) -> usize {
    fn ascii_name(k: &str) -> Option<(u8, &str)> {
        match k.as_bytes().first() {
            Some(&b) if b.is_ascii() => Some((b.to_ascii_lowercase(), &k[1..])),
            _ => None,
        }
    }
    let mut prev = None;
    let in_order = m.keys().all(|k| {
        let name = ascii_name(k);
        let ok = name.is_some() && prev.is_none_or(|p| Some(p) < name);
        prev = name;
        ok
    });
    out.push(b'{');
    let mut written = 0;
    let mut member = |out: &mut Vec<u8>, name: Name<'_>, v: &Value, res: &mut Option<&mut Resources>| {
        let verdict = dropped(&name);
        if verdict == Verdict::Drop {
            return;
        }
        if written > 0 {
            out.push(b',');
        }
        written += 1;
        name.write(out);
        if verdict == Verdict::KeepWhole {
            write_camel(out, v, &|_| Verdict::KeepWhole);
        } else {
            write_camel(out, v, dropped);
        }
        if let Some(res) = res {
            res.offer(&name, v);
        }
    };
    let mut res = res;
    if in_order {
        for (k, v) in m {
            if let Some((first, rest)) = ascii_name(k) {
                member(out, Name::Ascii(first, rest), v, &mut res);
            }
        }
    } else {
        let sorted: std::collections::BTreeMap<String, &Value> = m.iter().map(|(k, v)| (lower_first(k), v)).collect();
        for (k, v) in &sorted {
            member(out, Name::Owned(k), v, &mut res);
        }
    }
    out.push(b'}');
    written
}

/// A JSON value with lowerCamelCase member names and redacted members left out (nested empty
/// objects stay `{}`), as serde_json writes `camel_keys(v)` after [`redact`].
fn write_camel(out: &mut Vec<u8>, v: &Value, dropped: &dyn Fn(&Name<'_>) -> Verdict) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::String(s) => write_str(out, s),
        // Writing into a Vec cannot fail.
        Value::Number(n) => {
            let _ = serde_json::to_writer(&mut *out, n);
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_camel(out, item, dropped);
            }
            out.push(b']');
        }
        Value::Object(m) => {
            write_object(out, m, dropped, None);
        }
    }
}

/// Lookup `Resources` from the top-level request parameters (by well-known member names).
struct Resources {
    /// Bit `i` set when `RESOURCE_MEMBERS[i]` is of this call's event source.
    members: u16,
    found: [Option<String>; RESOURCE_MEMBERS.len()],
}

/// `(eventSource, member, resource type)`.
const RESOURCE_MEMBERS: [(&str, &str, &str); 13] = [
    ("iam.amazonaws.com", "userName", "AWS::IAM::User"),
    ("iam.amazonaws.com", "roleName", "AWS::IAM::Role"),
    ("iam.amazonaws.com", "groupName", "AWS::IAM::Group"),
    ("iam.amazonaws.com", "policyArn", "AWS::IAM::Policy"),
    ("iam.amazonaws.com", "accessKeyId", "AWS::IAM::AccessKey"),
    ("iam.amazonaws.com", "instanceProfileName", "AWS::IAM::InstanceProfile"),
    ("sts.amazonaws.com", "roleArn", "AWS::IAM::Role"),
    ("kms.amazonaws.com", "keyId", "AWS::KMS::Key"),
    ("kms.amazonaws.com", "aliasName", "AWS::KMS::Alias"),
    ("secretsmanager.amazonaws.com", "secretId", "AWS::SecretsManager::Secret"),
    ("secretsmanager.amazonaws.com", "name", "AWS::SecretsManager::Secret"),
    ("cloudtrail.amazonaws.com", "name", "AWS::CloudTrail::Trail"),
    ("cloudtrail.amazonaws.com", "trailName", "AWS::CloudTrail::Trail"),
];

// `Resources::members` has a bit per entry.
const _: () = assert!(RESOURCE_MEMBERS.len() <= 16);

impl Resources {
    fn new(event_source: &str) -> Self {
        let members = RESOURCE_MEMBERS
            .iter()
            .enumerate()
            .filter(|(_, (source, _, _))| *source == event_source)
            .fold(0, |bits, (i, _)| bits | 1 << i);
        Resources { members, found: [const { None }; RESOURCE_MEMBERS.len()] }
    }

    /// A top-level member as written (names are unique there).
    fn offer(&mut self, name: &Name<'_>, v: &Value) {
        let Value::String(s) = v else { return };
        for (i, (slot, (_, member, _))) in self.found.iter_mut().zip(RESOURCE_MEMBERS.iter()).enumerate() {
            if self.members & (1 << i) != 0 && name.eq_str(member) {
                *slot = Some(s.clone());
            }
        }
    }

    /// The resources in the order of [`RESOURCE_MEMBERS`].
    fn into_list(self) -> Vec<(String, String)> {
        self.found
            .into_iter()
            .zip(RESOURCE_MEMBERS.iter())
            .filter_map(|(found, (_, _, ty))| found.map(|v| (ty.to_string(), v)))
            .collect()
    }
}

/// Redact a request or response part; an empty object is recorded as `null`.
fn redacted(f: &CallFacts<'_>, part: Part, mut v: Value) -> Value {
    redact(f.event_source, f.event_name, part, &mut v);
    match &v {
        Value::Object(m) if m.is_empty() => Value::Null,
        _ => v,
    }
}

/// LookupEvents' `Username` and `AccessKeyId` of a caller: `root` for the root user, the user name
/// of an IAM user, the session name of a role or federated session.
fn lookup_user_and_key(identity: &Identity<'_>) -> (Option<String>, Option<String>) {
    let c = match identity {
        Identity::Caller(c) => c,
        Identity::Unknown { access_key_id } => return (None, access_key_id.map(str::to_string)),
    };
    let user = match &c.kind {
        CallerKind::Root => Some("root"),
        CallerKind::IamUser { user_name, .. } => Some(user_name.as_str()),
        CallerKind::AssumedRole { .. } | CallerKind::FederatedUser { .. } => c.arn.rsplit('/').next(),
    };
    (user.map(str::to_string), Some(c.access_key_id.clone()))
}

/// Authentication failures record no request parameters (the caller is not known to be who they claim).
fn is_auth_failure(e: &AwsError) -> bool {
    matches!(
        e.code.as_ref(),
        "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "SignatureDoesNotMatch"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "IncompleteSignatureException"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "MissingAuthenticationToken"
            | "MissingAuthenticationTokenException"
    )
}

/// `userIdentity` (members in sorted order, as in [`build`]).
fn write_user_identity(mut m: ObjectWriter<'_>, identity: &Identity<'_>, recipient: &str) {
    let c = match identity {
        Identity::Caller(c) => c,
        Identity::Unknown { access_key_id } => {
            m.opt_str("accessKeyId", *access_key_id);
            m.str("accountId", recipient);
            m.str("type", "Unknown");
            return m.end();
        }
    };
    m.str("accessKeyId", &c.access_key_id);
    m.str("accountId", &c.account_id);
    m.str("arn", &c.arn);
    m.str("principalId", &c.principal_id);
    if let Some(s) = &c.session {
        let mut ctx = m.object("sessionContext");
        let mut attributes = ctx.object("attributes");
        if let Some(t) = s.token_issue_time {
            write_time(attributes.member_value("creationDate"), t);
        }
        attributes.str("mfaAuthenticated", if s.mfa_authenticated { "true" } else { "false" });
        attributes.end();
        match &c.kind {
            CallerKind::AssumedRole { role_name, role_arn, role_id, .. } => {
                let mut issuer = ctx.object("sessionIssuer");
                issuer.str("accountId", &c.account_id);
                issuer.str("arn", role_arn);
                issuer.str("principalId", role_id);
                issuer.str("type", "Role");
                issuer.str("userName", role_name);
                issuer.end();
            }
            CallerKind::FederatedUser { .. } => ctx.object("sessionIssuer").end(),
            _ => {}
        }
        ctx.opt_str("sourceIdentity", s.source_identity.as_deref());
        ctx.end();
    }
    let kind = match &c.kind {
        CallerKind::Root => "Root",
        CallerKind::IamUser { .. } => "IAMUser",
        CallerKind::AssumedRole { .. } => "AssumedRole",
        CallerKind::FederatedUser { .. } => "FederatedUser",
    };
    m.str("type", kind);
    if let CallerKind::IamUser { user_name, .. } = &c.kind {
        m.str("userName", user_name);
    }
    m.end();
}

/// `requestParameters` from the decoded input: awsQuery params as nested lowerCamelCase JSON,
/// JSON bodies with lowerCamelCase member names (CloudTrail's convention).
pub fn input_json(input: &Input) -> Value {
    match input {
        Input::Json(v) => camel_keys(v),
        Input::Query(q) => {
            let mut root = Value::Object(Map::new());
            for (k, v) in q.iter() {
                if k == "Action" || k == "Version" {
                    continue;
                }
                insert_path(&mut root, k, v);
            }
            root
        }
    }
}

/// `UserName` → `userName`; `QRCodePNG` → `qRCodePNG` (CloudTrail lowers only the first letter).
pub fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn camel_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (lower_first(k), camel_keys(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(camel_keys).collect()),
        other => other.clone(),
    }
}

/// Insert `Tags.member.1.Key=v` as `{"tags": [{"key": v}]}`; `Attributes.entry.1.key` likewise.
fn insert_path(root: &mut Value, key: &str, value: &str) {
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = root;
    let mut i = 0;
    while i < parts.len() {
        let last = i + 1 == parts.len();
        let is_list = matches!(parts.get(i + 1), Some(&"member") | Some(&"entry"))
            && parts.get(i + 2).is_some_and(|n| n.parse::<usize>().is_ok());
        let name = lower_first(parts[i]);
        let Value::Object(map) = cur else { return };
        if is_list {
            let idx = parts[i + 2].parse::<usize>().unwrap_or(1).max(1) - 1;
            let list = map.entry(name).or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(items) = list else { return };
            if idx > 1000 {
                return;
            }
            while items.len() <= idx {
                items.push(Value::Null);
            }
            let rest_last = i + 3 == parts.len();
            if rest_last {
                items[idx] = Value::String(value.to_string());
                return;
            }
            if !items[idx].is_object() {
                items[idx] = Value::Object(Map::new());
            }
            cur = &mut items[idx];
            i += 3;
        } else if last {
            map.insert(name, Value::String(value.to_string()));
            return;
        } else {
            let next = map.entry(name).or_insert_with(|| Value::Object(Map::new()));
            if !next.is_object() {
                *next = Value::Object(Map::new());
            }
            cur = next;
            i += 1;
        }
    }
}

/// `responseElements` from an output: JSON as is (member names lowerCamelCase), awsQuery XML
/// converted (elements → members, `<member>` lists → arrays, text → strings).
pub fn output_json(output: &Output) -> Value {
    match output {
        Output::Json(v) => camel_keys(v),
        Output::JsonText(_) => camel_keys(&output.json_value()),
        Output::Xml(None) => Value::Null,
        Output::Xml(Some(xml)) => xml_to_json(xml).unwrap_or(Value::Null),
    }
}

enum Node {
    Elem(String, Vec<Node>),
    Text(String),
}

fn xml_to_json(xml: &str) -> Option<Value> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<(String, Vec<Node>)> = vec![(String::new(), Vec::new())];
    loop {
        match reader.read_event().ok()? {
            Event::Start(s) => stack.push((String::from_utf8_lossy(s.local_name().as_ref()).into_owned(), Vec::new())),
            Event::Empty(s) => {
                let name = String::from_utf8_lossy(s.local_name().as_ref()).into_owned();
                stack.last_mut()?.1.push(Node::Elem(name, Vec::new()));
            }
            Event::End(_) => {
                let (name, children) = stack.pop()?;
                stack.last_mut()?.1.push(Node::Elem(name, children));
            }
            Event::Text(t) => {
                let s = t.xml_content().ok()?.into_owned();
                if !s.trim().is_empty() {
                    stack.last_mut()?.1.push(Node::Text(s));
                }
            }
            Event::GeneralRef(r) => {
                let s = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match r.decode().ok()?.as_ref() {
                        "amp" => "&".to_string(),
                        "lt" => "<".to_string(),
                        "gt" => ">".to_string(),
                        "quot" => "\"".to_string(),
                        "apos" => "'".to_string(),
                        _ => String::new(),
                    },
                };
                stack.last_mut()?.1.push(Node::Text(s));
            }
            Event::CData(c) => stack.last_mut()?.1.push(Node::Text(String::from_utf8_lossy(&c).into_owned())),
            Event::Eof => break,
            _ => {}
        }
    }
    let (_, children) = stack.pop()?;
    Some(nodes_to_json(&children))
}

fn nodes_to_json(children: &[Node]) -> Value {
    let texts: String = children
        .iter()
        .filter_map(|n| match n {
            Node::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let elems: Vec<(&String, &Vec<Node>)> = children
        .iter()
        .filter_map(|n| match n {
            Node::Elem(name, c) => Some((name, c)),
            _ => None,
        })
        .collect();
    if elems.is_empty() {
        return if texts.is_empty() { Value::Null } else { Value::String(texts) };
    }
    if elems.iter().all(|(n, _)| n.as_str() == "member") {
        return Value::Array(elems.iter().map(|(_, c)| nodes_to_json(c)).collect());
    }
    let mut m = Map::new();
    for (name, c) in elems {
        m.insert(lower_first(name), nodes_to_json(c));
    }
    Value::Object(m)
}

/// Lookup `Resources` from request parameters as a value (what [`Resources`] collects).
#[cfg(test)]
fn resources_of(params: &Value, event_source: &str) -> Vec<(String, String)> {
    let Value::Object(m) = params else { return Vec::new() };
    RESOURCE_MEMBERS
        .iter()
        .filter(|(src, _, _)| *src == event_source)
        .filter_map(|(_, member, ty)| m.get(*member).and_then(Value::as_str).map(|v| (ty.to_string(), v.to_string())))
        .collect()
}

/// A record of a root call by `account` named `name` (tests of the crates' storage and delivery).
#[cfg(test)]
pub(crate) fn test_record(account: &str, name: &str) -> Record {
    let caller = Caller::root(account, "AKIAROOT");
    build(&CallFacts {
        event_time: OffsetDateTime::now_utc(),
        event_source: "iam.amazonaws.com",
        event_name: name,
        region: "us-east-1",
        source_ip: "127.0.0.1".parse().unwrap(),
        user_agent: "test",
        identity: Identity::Caller(&caller),
        recipient_account_id: account,
        input: None,
        output: None,
        error: None,
        request_id: "r",
        tls: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rampart_service::{QueryParams, SessionInfo};
    use serde_json::json;

    fn facts<'a>(identity: Identity<'a>, input: Option<&'a Input>, output: Option<&'a Output>) -> CallFacts<'a> {
        CallFacts {
            event_time: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            event_source: "iam.amazonaws.com",
            event_name: "CreateAccessKey",
            region: "us-east-1",
            source_ip: "127.0.0.1".parse().unwrap(),
            user_agent: "aws-cli/2",
            identity,
            recipient_account_id: "123456789012",
            input,
            output,
            error: None,
            request_id: "req-1",
            tls: None,
        }
    }

    /// A record never grows with the request: oversized parameters are omitted as CloudTrail
    /// omits them, error messages and user agents are cut.
    #[test]
    fn oversized_parts_are_omitted_and_long_texts_cut() {
        let big = "x".repeat(MAX_PART_BYTES + 1);
        let input = Input::Query(QueryParams::from_pairs([("Action", "CreateUser"), ("UserName", big.as_str())]));
        let json_input = Input::Json(json!({"Description": big}));
        let output = Output::Json(json!({"KeyMetadata": {"Description": big}}));
        let caller = Caller::root("123456789012", "AKIAROOT");
        let user = Output::Xml(Some(format!("<User><UserName>{big}</UserName></User>")));
        // Members the allow-list keeps (IAM CreateUser's UserName, KMS CreateKey's Description).
        for (source, name, input, output) in [
            ("iam.amazonaws.com", "CreateUser", &input, &user),
            ("kms.amazonaws.com", "CreateKey", &json_input, &output),
        ] {
            let mut f = facts(Identity::Caller(&caller), Some(input), Some(output));
            (f.event_source, f.event_name) = (source, name);
            let r = build(&f);
            assert!(r.event.event.len() < 4096, "{}", r.event.event.len());
            assert_eq!(r.json()["requestParameters"], json!({"omitted": true}));
            assert_eq!(r.json()["responseElements"], json!({"omitted": true}));
        }

        let huge = "A".repeat(2_000_000);
        let err = AwsError::new("ValidationError", format!("Value '{huge}' at 'x' failed"), 400);
        let mut f = facts(Identity::Caller(&caller), None, None);
        f.error = Some(&err);
        f.user_agent = &huge;
        let r = build(&f);
        assert!(r.event.event.len() < 8 * 1024, "{}", r.event.event.len());
        let message = r.json()["errorMessage"].as_str().unwrap().to_string();
        assert_eq!(message.chars().count(), MAX_ERROR_MESSAGE_CHARS + 3);
        assert!(message.ends_with("..."));
        assert_eq!(r.json()["userAgent"].as_str().unwrap().chars().count(), MAX_USER_AGENT_CHARS + 3);

        // Below the bound, parameters are kept.
        let fits = "y".repeat(1000);
        let input = Input::Query(QueryParams::from_pairs([("Action", "CreateUser"), ("UserName", fits.as_str())]));
        let r = build(&facts(Identity::Caller(&caller), Some(&input), None));
        assert_eq!(r.json()["requestParameters"]["userName"], fits.as_str());
    }

    #[test]
    fn query_params_become_nested_camel_case() {
        let q = QueryParams::from_pairs([
            ("Action", "CreateUser"),
            ("Version", "2010-05-08"),
            ("UserName", "alice"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "red"),
            ("Tags.member.2.Key", "env"),
            ("PolicyArns.member.1", "arn:x"),
        ]);
        let v = input_json(&Input::Query(q));
        assert_eq!(
            v,
            json!({"userName": "alice", "tags": [{"key": "team", "value": "red"}, {"key": "env"}],
                   "policyArns": ["arn:x"]})
        );
    }

    #[test]
    fn xml_output_converts_and_secret_is_redacted() {
        let input = Input::Query(QueryParams::from_pairs([("Action", "CreateAccessKey"), ("UserName", "bob")]));
        let output = Output::Xml(Some(
            "<AccessKey><UserName>bob</UserName><AccessKeyId>AKIAX</AccessKeyId><Status>Active</Status>\
             <SecretAccessKey>topsecret</SecretAccessKey><CreateDate>2024-01-01T00:00:00Z</CreateDate></AccessKey>"
                .into(),
        ));
        let caller = Caller::root("123456789012", "AKIAROOT");
        let r = build(&facts(Identity::Caller(&caller), Some(&input), Some(&output)));
        let text = &r.event.event;
        assert!(!text.contains("topsecret"), "{text}");
        assert_eq!(r.json()["responseElements"]["accessKey"]["accessKeyId"], "AKIAX");
        assert_eq!(r.json()["requestParameters"], json!({"userName": "bob"}));
        assert_eq!(r.json()["userIdentity"]["type"], "Root");
        assert_eq!(r.json()["userIdentity"]["principalId"], "123456789012");
        assert_eq!(r.json()["eventTime"], "2023-11-14T22:13:20Z");
        assert_eq!(r.json()["readOnly"], false);
        assert_eq!(r.json()["eventVersion"], "1.09");
        assert_eq!(r.event.res, vec![("AWS::IAM::User".to_string(), "bob".to_string())]);
    }

    #[test]
    fn xml_lists_and_entities() {
        let v = xml_to_json("<Users><member><UserName>a&amp;b</UserName></member><member><UserName>c</UserName></member></Users><IsTruncated>false</IsTruncated>").unwrap();
        assert_eq!(v, json!({"users": [{"userName": "a&b"}, {"userName": "c"}], "isTruncated": "false"}));
    }

    #[test]
    fn read_only_calls_have_null_response_elements() {
        let output = Output::Xml(Some("<User><UserName>bob</UserName></User>".into()));
        let caller = Caller::root("123456789012", "AKIAROOT");
        let mut f = facts(Identity::Caller(&caller), None, Some(&output));
        f.event_name = "GetUser";
        let r = build(&f);
        assert_eq!(r.json()["readOnly"], true);
        assert_eq!(r.json()["responseElements"], Value::Null);
        assert!(is_read_only("ListUsers") && is_read_only("GetCallerIdentity") && is_read_only("Decrypt"));
        assert!(!is_read_only("CreateUser") && !is_read_only("Getaway") && !is_read_only("DeleteUser"));
    }

    proptest! {
        /// The first-letter check changes nothing.
        #[test]
        fn read_only_is_as_before(
            name in "(Get|List|Describe|Lookup|Simulate|BatchGet|Search|Validate|Verify|Generate|Encrypt|Decrypt|ReEncrypt|Sign|GenerateRandom|GenerateMac|GenerateDataKey|[A-Za-z\u{c9}]{0,3})[A-Za-z\u{c9}]{0,6}",
        ) {
            const PREFIXES: &[&str] =
                &["Get", "List", "Describe", "Lookup", "Simulate", "BatchGet", "Search", "Validate", "Verify"];
            const EXACT: &[&str] = &["Decrypt", "Encrypt", "ReEncrypt", "Sign", "GenerateRandom", "GenerateMac"];
            let before = PREFIXES.iter().any(|p| name.starts_with(p) && name[p.len()..].starts_with(char::is_uppercase))
                || EXACT.contains(&name.as_str())
                || name.starts_with("GenerateDataKey");
            prop_assert_eq!(is_read_only(&name), before);
        }
    }

    #[test]
    fn identities() {
        let user = Caller {
            account_id: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/alice".into(),
            principal_id: "AIDAEXAMPLE".into(),
            access_key_id: "AKIAUSER".into(),
            kind: CallerKind::IamUser { user_name: "alice".into(), user_id: "AIDAEXAMPLE".into() },
            session: None,
        };
        let r = build(&facts(Identity::Caller(&user), None, None));
        let j = r.json();
        let ui = &j["userIdentity"];
        assert_eq!(ui["type"], "IAMUser");
        assert_eq!(ui["userName"], "alice");
        assert!(ui.get("sessionContext").is_none());

        let role = assumed_role(session(None, Some(1_700_000_000), true));
        let r = build(&facts(Identity::Caller(&role), None, None));
        let j = r.json();
        let sc = &j["userIdentity"]["sessionContext"];
        assert_eq!(sc["attributes"]["mfaAuthenticated"], "true");
        assert_eq!(sc["attributes"]["creationDate"], "2023-11-14T22:13:20Z");
        assert_eq!(sc["sessionIssuer"]["type"], "Role");
        assert_eq!(sc["sessionIssuer"]["userName"], "R");

        let mut f = facts(Identity::Unknown { access_key_id: Some("AKIANOPE") }, None, None);
        let err = AwsError::new("InvalidClientTokenId", "The security token included in the request is invalid.", 403);
        f.error = Some(&err);
        let r = build(&f);
        assert_eq!(
            r.json()["userIdentity"],
            json!({"type": "Unknown", "accountId": "123456789012", "accessKeyId": "AKIANOPE"})
        );
        assert_eq!(r.json()["errorCode"], "InvalidClientTokenId");
    }

    /// The record as earlier versions built it (a `Value` map, serialised with `to_string`): the
    /// new writer must produce the same bytes.
    fn reference_event(f: &CallFacts<'_>, event_id: &str) -> String {
        let read_only = is_read_only(f.event_name);
        let request_parameters = match f.input {
            Some(input) if f.error.is_none_or(|e| !is_auth_failure(e)) => redacted(f, Part::Request, input_json(input)),
            _ => Value::Null,
        };
        let response_elements = match (f.output, read_only) {
            (Some(out), false) => redacted(f, Part::Response, output_json(out)),
            _ => Value::Null,
        };
        let old_iso = |t: OffsetDateTime| {
            use time::format_description::well_known::Rfc3339;
            let t = t.to_offset(time::UtcOffset::UTC).replace_nanosecond(0).unwrap_or(t);
            t.format(&Rfc3339).unwrap_or_default()
        };
        let mut e = Map::new();
        e.insert("eventVersion".into(), json!(EVENT_VERSION));
        e.insert("userIdentity".into(), reference_user_identity(&f.identity, f.recipient_account_id, &old_iso));
        e.insert("eventTime".into(), json!(old_iso(f.event_time)));
        e.insert("eventSource".into(), json!(f.event_source));
        e.insert("eventName".into(), json!(f.event_name));
        e.insert("awsRegion".into(), json!(f.region));
        e.insert("sourceIPAddress".into(), json!(f.source_ip.to_string()));
        e.insert("userAgent".into(), json!(f.user_agent));
        if let Some(err) = f.error {
            e.insert("errorCode".into(), json!(err.code));
            e.insert("errorMessage".into(), json!(err.message));
        }
        e.insert("requestParameters".into(), request_parameters);
        e.insert("responseElements".into(), response_elements);
        e.insert("requestID".into(), json!(f.request_id));
        e.insert("eventID".into(), json!(event_id));
        e.insert("readOnly".into(), json!(read_only));
        e.insert("eventType".into(), json!("AwsApiCall"));
        e.insert("managementEvent".into(), json!(true));
        e.insert("recipientAccountId".into(), json!(f.recipient_account_id));
        e.insert("eventCategory".into(), json!("Management"));
        if let Some(tls) = f.tls {
            let mut t = Map::new();
            for (k, v) in [
                ("tlsVersion", tls.tls_version),
                ("cipherSuite", tls.cipher_suite),
                ("clientProvidedHostHeader", tls.host),
            ] {
                if let Some(v) = v {
                    t.insert(k.into(), json!(v));
                }
            }
            e.insert("tlsDetails".into(), Value::Object(t));
        }
        Value::Object(e).to_string()
    }

    /// LookupEvents' `Username` and `AccessKeyId` as earlier versions read them back from the record.
    fn reference_user_and_key(event: &Value) -> (Option<String>, Option<String>) {
        let ui = &event["userIdentity"];
        let user = match ui["type"].as_str() {
            Some("Root") => Some("root".to_string()),
            Some("IAMUser") => ui["userName"].as_str().map(str::to_string),
            Some("AssumedRole") | Some("FederatedUser") => {
                ui["arn"].as_str().and_then(|a| a.rsplit('/').next()).map(str::to_string)
            }
            _ => None,
        };
        (user, ui["accessKeyId"].as_str().map(str::to_string))
    }

    fn reference_user_identity(
        identity: &Identity<'_>,
        recipient: &str,
        iso: &dyn Fn(OffsetDateTime) -> String,
    ) -> Value {
        let c = match identity {
            Identity::Caller(c) => c,
            Identity::Unknown { access_key_id } => {
                let mut m = Map::new();
                m.insert("type".into(), json!("Unknown"));
                m.insert("accountId".into(), json!(recipient));
                if let Some(k) = access_key_id {
                    m.insert("accessKeyId".into(), json!(k));
                }
                return Value::Object(m);
            }
        };
        let mut m = Map::new();
        let kind = match &c.kind {
            CallerKind::Root => "Root",
            CallerKind::IamUser { .. } => "IAMUser",
            CallerKind::AssumedRole { .. } => "AssumedRole",
            CallerKind::FederatedUser { .. } => "FederatedUser",
        };
        m.insert("type".into(), json!(kind));
        m.insert("principalId".into(), json!(c.principal_id));
        m.insert("arn".into(), json!(c.arn));
        m.insert("accountId".into(), json!(c.account_id));
        m.insert("accessKeyId".into(), json!(c.access_key_id));
        if let CallerKind::IamUser { user_name, .. } = &c.kind {
            m.insert("userName".into(), json!(user_name));
        }
        if let Some(s) = &c.session {
            let mut attributes = Map::new();
            if let Some(t) = s.token_issue_time {
                attributes.insert("creationDate".into(), json!(iso(t)));
            }
            attributes.insert("mfaAuthenticated".into(), json!(if s.mfa_authenticated { "true" } else { "false" }));
            let mut ctx = Map::new();
            match &c.kind {
                CallerKind::AssumedRole { role_name, role_arn, role_id, .. } => {
                    ctx.insert(
                        "sessionIssuer".into(),
                        json!({"type": "Role", "principalId": role_id, "arn": role_arn,
                               "accountId": c.account_id, "userName": role_name}),
                    );
                }
                CallerKind::FederatedUser { .. } => {
                    ctx.insert("sessionIssuer".into(), json!({}));
                }
                _ => {}
            }
            ctx.insert("attributes".into(), Value::Object(attributes));
            if let Some(si) = &s.source_identity {
                ctx.insert("sourceIdentity".into(), json!(si));
            }
            m.insert("sessionContext".into(), Value::Object(ctx));
        }
        Value::Object(m)
    }

    fn assert_same_as_reference(f: &CallFacts<'_>) {
        let r = build(f);
        let expected = reference_event(f, &r.event.id);
        assert_eq!(r.event.event, expected);
        let json = r.json();
        assert_eq!((r.event.user.clone(), r.event.key.clone()), reference_user_and_key(&json));
        assert_eq!(r.event.name, f.event_name);
        assert_eq!(r.event.source, f.event_source);
        assert_eq!(r.event.region, f.region);
        assert_eq!(r.event.ro, json["readOnly"].as_bool().unwrap());
        assert_eq!(r.event.t, f.event_time.unix_timestamp());
        assert_eq!(r.recipient_account_id, f.recipient_account_id);
        assert_eq!(r.event.res, reference_resources(f));
    }

    /// Lookup resources as earlier versions found them: in the redacted request parameters value.
    fn reference_resources(f: &CallFacts<'_>) -> Vec<(String, String)> {
        let request_parameters = match f.input {
            Some(input) if f.error.is_none_or(|e| !is_auth_failure(e)) => redacted(f, Part::Request, input_json(input)),
            _ => Value::Null,
        };
        resources_of(&request_parameters, f.event_source)
    }

    /// JSON bodies whose member names do not lower in order, collide once lowered, start with a
    /// non-ASCII letter (some of which lower to ASCII or to two characters), are empty or need
    /// escaping; values of every kind; members the rules drop, at the top and nested.
    fn tricky_json_bodies() -> Vec<Value> {
        vec![
            json!({}),
            json!({"Plaintext": "c2VjcmV0"}),
            json!({"KeyId": "alias/x", "Plaintext": "c2VjcmV0"}),
            json!({"KeyId": "k1", "keyId": "k2"}),
            json!({"keyId": "k2", "KeyId": "k1", "Zeta": 1, "alpha": 2, "Beta": [3]}),
            json!({"\u{c9}clair": "e", "\u{130}x": "dotted", "\u{212a}elvin": "kelvin", "kelvin": "k", "\u{df}": 0}),
            json!({"": "empty", "A\"b\\c\n": "esc", "\u{1}X": "ctl", "_under": null}),
            json!({"N": [1, -2, 3.25, 1e300, 18446744073709551615_u64, -9223372036854775808_i64, 0.1]}),
            json!({"B": [true, false, null], "S": "\u{7f}\u{2028}\u{1F600}\"\\\u{0}"}),
            json!({"EncryptionContext": {"Password": "x", "Dept": "a"}, "GrantTokens": ["t"], "Plaintext": "p"}),
            json!({"Grants": [{"Plaintext": "p", "A": {"SecretString": "s"}}, {"plaintext": 1}, []], "Nested": {"Password": 1}}),
            json!({"PASSWORD": "upper", "pAssword": "mixed", "Key": {"Key": {"Key": {}}}}),
            json!({"AliasName": "alias/a", "KeyID": "not-a-key-id", "SecretId": "s", "Name": "n", "TrailName": "t"}),
            json!({"KeyId": 7, "AliasName": ["alias/a"]}),
            json!(["KeyId", {"Plaintext": "p", "X": 1}]),
            json!("just a string"),
            json!(null),
            json!(12),
        ]
    }

    #[test]
    fn json_bodies_are_written_as_earlier_versions_wrote_them() {
        let root = Caller::root("123456789012", "AKIAROOT");
        let denied = AwsError::new("AccessDenied", "no", 403);
        let sources = [
            ("kms.amazonaws.com", "Encrypt"),
            ("kms.amazonaws.com", "CreateAlias"),
            ("kms.amazonaws.com", "GenerateDataKey"),
            ("secretsmanager.amazonaws.com", "CreateSecret"),
            ("cloudtrail.amazonaws.com", "CreateTrail"),
            ("iam.amazonaws.com", "CreateUser"),
        ];
        for body in tricky_json_bodies() {
            let input = Input::Json(body.clone());
            let output = Output::Json(body.clone());
            for (source, name) in sources {
                for error in [None, Some(&denied)] {
                    let mut f = facts(Identity::Caller(&root), Some(&input), Some(&output));
                    (f.event_source, f.event_name, f.error) = (source, name, error);
                    assert_same_as_reference(&f);
                }
            }
        }
    }

    /// Member names drawn from a small alphabet so that collisions, reordering and redaction happen.
    fn arb_json() -> impl Strategy<Value = Value> {
        let name = prop_oneof![
            Just("KeyId".to_string()),
            Just("keyId".to_string()),
            Just("Plaintext".to_string()),
            Just("PlainText".to_string()),
            Just("password".to_string()),
            Just("AliasName".to_string()),
            Just(String::new()),
            "[a-zA-Z\u{c9}\u{e9}\u{130}\u{212a}\u{1}\"\\\\_]{1,4}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-z\u{0}-\u{1f}\"\\\\\u{7f}\u{e9}\u{2028}\u{1F600}]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::vec((name.clone(), inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn random_json_bodies_are_written_as_earlier_versions_wrote_them(body in arb_json(), which in 0usize..3) {
            let root = Caller::root("123456789012", "AKIAROOT");
            let (source, name) =
                [("kms.amazonaws.com", "Encrypt"), ("kms.amazonaws.com", "CreateKey"), ("secretsmanager.amazonaws.com", "CreateSecret")][which];
            let input = Input::Json(body.clone());
            let output = Output::Json(body);
            let mut f = facts(Identity::Caller(&root), Some(&input), Some(&output));
            (f.event_source, f.event_name) = (source, name);
            assert_same_as_reference(&f);
        }
    }

    /// A session of role `R` in account 123456789012.
    fn assumed_role(session: SessionInfo) -> Caller {
        Caller {
            account_id: "123456789012".into(),
            arn: "arn:aws:sts::123456789012:assumed-role/R/s".into(),
            principal_id: "AROAX:s".into(),
            access_key_id: "ASIAX".into(),
            kind: CallerKind::AssumedRole {
                role_name: "R".into(),
                role_arn: "arn:aws:iam::123456789012:role/R".into(),
                role_id: "AROAX".into(),
                session_name: "s".into(),
            },
            session: Some(session),
        }
    }

    fn session(source_identity: Option<&str>, issued: Option<i64>, mfa: bool) -> SessionInfo {
        SessionInfo {
            token_issue_time: issued.map(|t| OffsetDateTime::from_unix_timestamp(t).unwrap()),
            mfa_authenticated: mfa,
            source_identity: source_identity.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn records_are_byte_for_byte_what_earlier_versions_wrote() {
        let root = Caller::root("123456789012", "AKIAROOT");
        let user = Caller {
            account_id: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/path/al\"ice".into(),
            principal_id: "AIDAEXAMPLE".into(),
            access_key_id: "AKIAUSER".into(),
            kind: CallerKind::IamUser { user_name: "al\"ice\u{e9}\n".into(), user_id: "AIDAEXAMPLE".into() },
            session: None,
        };
        let role = assumed_role(session(Some("me\\you"), Some(1_700_000_123), true));
        let role_no_time = Caller { session: Some(session(None, None, false)), ..role.clone() };
        let federated = Caller {
            account_id: "123456789012".into(),
            arn: "arn:aws:sts::123456789012:federated-user/bob".into(),
            principal_id: "123456789012:bob".into(),
            access_key_id: "ASIAF".into(),
            kind: CallerKind::FederatedUser { user_name: "bob".into() },
            session: Some(session(None, Some(1_600_000_000), false)),
        };
        let query = Input::Query(QueryParams::from_pairs([
            ("Action", "CreateUser"),
            ("UserName", "b\"o\\b\u{1}\u{2028}"),
            ("Tags.member.1.Key", "k"),
            ("Password", "hunter2"),
        ]));
        let json_input = Input::Json(json!({"KeyId": "alias/x", "Plaintext": "c2VjcmV0", "Grants": [{"A": 1.5}]}));
        let xml_out =
            Output::Xml(Some("<CreateUserResult><User><UserName>b</UserName></User></CreateUserResult>".into()));
        let json_out = Output::Json(json!({"KeyMetadata": {"KeyId": "k", "Enabled": true, "Size": 256}}));
        let denied = AwsError::new("AccessDenied", "User: \"x\" is not authorized\t", 403);
        let bad_key =
            AwsError::new("InvalidClientTokenId", "The security token included in the request is invalid.", 403);
        let identities = [
            Identity::Caller(&root),
            Identity::Caller(&user),
            Identity::Caller(&role),
            Identity::Caller(&role_no_time),
            Identity::Caller(&federated),
            Identity::Unknown { access_key_id: Some("AKIANOPE") },
            Identity::Unknown { access_key_id: None },
        ];
        let tls = [
            None,
            Some(TlsFacts { tls_version: None, cipher_suite: None, host: Some("iam.local:4566") }),
            Some(TlsFacts { tls_version: Some("TLSv1.3"), cipher_suite: Some("TLS_AES_128_GCM_SHA256"), host: None }),
        ];
        let calls: [(&str, &str, Option<&Input>, Option<&Output>); 5] = [
            ("iam.amazonaws.com", "CreateUser", Some(&query), Some(&xml_out)),
            ("iam.amazonaws.com", "GetUser", Some(&query), Some(&xml_out)),
            ("kms.amazonaws.com", "Encrypt", Some(&json_input), Some(&json_out)),
            ("kms.amazonaws.com", "CreateKey", Some(&json_input), Some(&json_out)),
            ("sts.amazonaws.com", "GetCallerIdentity", None, None),
        ];
        let times = [1_700_000_000, 0, 253_402_300_799, 1_700_000_000_i64];
        for (i, identity) in identities.into_iter().enumerate() {
            for (j, tls) in tls.into_iter().enumerate() {
                for (k, (source, name, input, output)) in calls.into_iter().enumerate() {
                    for error in [None, Some(&denied), Some(&bad_key)] {
                        let mut f = facts(identity, input, output);
                        f.event_source = source;
                        f.event_name = name;
                        f.tls = tls;
                        f.error = error;
                        f.event_time = OffsetDateTime::from_unix_timestamp(times[(i + j + k) % times.len()]).unwrap()
                            + time::Duration::nanoseconds(123_456_789 * ((i + k) % 2) as i64);
                        if (i + j) % 2 == 1 {
                            f.source_ip = "2001:db8::1".parse().unwrap();
                            f.region = "eu-west-\"1";
                            f.user_agent = "Boto3/1.34 \u{7f} \u{0}";
                        }
                        assert_same_as_reference(&f);
                    }
                }
            }
        }
    }

    #[test]
    fn iso_time_matches_rfc3339_to_the_second() {
        use time::format_description::well_known::Rfc3339;
        for t in [0, 1, 951_782_400, 1_700_000_000, 4_102_444_800, 253_402_300_799, -62_167_219_200] {
            let t = OffsetDateTime::from_unix_timestamp(t).unwrap();
            assert_eq!(iso_time(t), t.format(&Rfc3339).unwrap());
            let offset = t.to_offset(time::UtcOffset::from_hms(-5, -30, 0).unwrap());
            assert_eq!(iso_time(offset + time::Duration::milliseconds(999)), t.format(&Rfc3339).unwrap());
        }
        let year_10000 = OffsetDateTime::from_unix_timestamp(253_402_300_800);
        if let Ok(t) = year_10000 {
            assert_eq!(iso_time(t), "");
        }
    }

    #[test]
    fn ip_addresses_are_written_as_displayed() {
        for ip in ["0.0.0.0", "127.0.0.1", "10.20.255.9", "192.168.1.100", "255.255.255.255", "::1", "2001:db8::8:1"] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            write_ip(&mut out, ip);
            assert_eq!(String::from_utf8(out).unwrap(), format!("\"{ip}\""));
        }
    }

    #[test]
    fn uuids_are_version_4() {
        let id = new_uuid();
        assert_eq!(id.len(), 36);
        let groups: Vec<&str> = id.split('-').collect();
        assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), vec![8, 4, 4, 4, 12]);
        assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(&groups[2][..1], "4");
        assert!(matches!(&groups[3][..1], "8" | "9" | "a" | "b"));
        assert_ne!(new_uuid(), id);
    }
}
