//! STS (awsQuery, API version 2011-06-15): temporary credentials.
//!
//! - `AssumeRole`: the role's trust policy is the resource policy of an `sts:AssumeRole` check the
//!   authorizer decides with the caller's own policies (same account: a trust policy naming the
//!   principal suffices; another account: both sides must allow). Passing session tags also needs
//!   `sts:TagSession`, a source identity `sts:SetSourceIdentity`, both from the same trust policy.
//! - `AssumeRoleWithSAML` (unsigned): a SAML Response from an IAM SAML provider, signed with a
//!   certificate of the provider's metadata; its content is checked as AWS does (see `saml`).
//! - `GetSessionToken`, `GetFederationToken`: long-term credentials of an IAM user (or the root).
//! - `GetCallerIdentity`, `GetAccessKeyInfo`, `DecodeAuthorizationMessage` (Rampart: the encoded
//!   message is the request ID of a denied request of the caller's account; see docs/sts.md).

pub mod saml;
pub mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rampart_policy::{ContextValue, PolicyType};
use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_protocol::{AwsError, Protocol};
use rampart_service::{
    AuthzCheck, AuthzPlan, Caller, CallerKind, Input, Output, RequestContext, ResourcePolicy, Service,
};

use crate::db::Lookup;
use crate::denials;
use crate::error::{IamError, Result};
use crate::model::{tables, AccessKeyRec, RoleRec, Tag};
use crate::resolve::managed_document;
use crate::service::{request_tags, Core};
use crate::util::{iso8601, policy_size};
use crate::validate::{Args, Pattern, Spec};
use session::{SessionKind, SessionRec};

const OPERATIONS: &[&str] = &[
    "GetCallerIdentity",
    "AssumeRole",
    "GetSessionToken",
    "GetFederationToken",
    "GetAccessKeyInfo",
    "DecodeAuthorizationMessage",
    "AssumeRoleWithWebIdentity",
    "AssumeRoleWithSAML",
];

fn word_plus(s: &str, extra: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(c))
}
fn session_name_chars(s: &str) -> bool {
    word_plus(s, "+=,.@-")
}
fn external_id_chars(s: &str) -> bool {
    word_plus(s, "+=,.@:/-")
}
fn serial_chars(s: &str) -> bool {
    word_plus(s, "+=/:,.@-")
}
fn digits(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_digit())
}
fn document_chars(s: &str) -> bool {
    s.chars().all(|c| matches!(c, '\t' | '\n' | '\r' | ' '..='\u{ff}'))
}
fn any(_: &str) -> bool {
    true
}

const NAME_PATTERN: Option<Pattern> = Some(("[\\w+=,.@-]*", session_name_chars));
const ROLE_ARN: Spec = Spec { min: 20, max: 2048, pattern: None };
const ROLE_SESSION_NAME: Spec = Spec { min: 2, max: 64, pattern: NAME_PATTERN };
const SOURCE_IDENTITY: Spec = Spec { min: 2, max: 64, pattern: NAME_PATTERN };
const FEDERATED_NAME: Spec = Spec { min: 2, max: 32, pattern: NAME_PATTERN };
const EXTERNAL_ID: Spec = Spec { min: 2, max: 1224, pattern: Some(("[\\w+=,.@:\\/-]*", external_id_chars)) };
const SERIAL: Spec = Spec { min: 9, max: 256, pattern: Some(("[\\w+=/:,.@-]*", serial_chars)) };
const TOKEN_CODE: Spec = Spec { min: 6, max: 6, pattern: Some(("[\\d]*", digits)) };
const SESSION_POLICY: Spec =
    Spec { min: 1, max: 2048, pattern: Some(("[\\u0009\\u000A\\u000D\\u0020-\\u00FF]+", document_chars)) };
const ACCESS_KEY: Spec = Spec { min: 16, max: 128, pattern: Some(("[\\w]*", |s| word_plus(s, ""))) };
const ENCODED_MESSAGE: Spec = Spec { min: 1, max: 10240, pattern: Some((".*", any)) };
const POLICY_ARN: Spec = Spec { min: 20, max: 2048, pattern: None };
const WEB_IDENTITY_TOKEN: Spec = Spec { min: 4, max: 20_000, pattern: None };
const PROVIDER_ID: Spec = Spec { min: 4, max: 2048, pattern: None };
const SAML_ASSERTION: Spec = Spec { min: 4, max: 100_000, pattern: None };

/// Session policy plaintext limit (inline + managed ARNs), and the packed limit tags count against.
const MAX_PACKED: usize = 2048;

/// The STS service.
pub struct StsService {
    core: Arc<Core>,
    /// Request ID → when its MFA code was verified during authorization (consumed by invoke).
    mfa_verified: Mutex<HashMap<String, i64>>,
    /// Request ID → the verified web identity of an AssumeRoleWithWebIdentity call.
    web_identities: Mutex<HashMap<String, WebIdentity>>,
    jwks: crate::oidc::JwksCache,
    /// Request ID → the decoded assertion of an AssumeRoleWithSAML call.
    saml_identities: Mutex<HashMap<String, SamlIdentity>>,
}

/// A decoded SAML assertion and its provider, between authentication and invoke.
#[derive(Clone, Debug)]
struct SamlIdentity {
    provider_arn: String,
    account: String,
    assertion: saml::Assertion,
    session_name: String,
    name_qualifier: String,
}

/// A verified web identity token, between authentication and invoke.
#[derive(Clone, Debug)]
struct WebIdentity {
    provider_arn: String,
    provider_key: String,
    issuer: String,
    sub: String,
    aud: String,
    amr: Vec<String>,
}

impl StsService {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        StsService {
            core,
            mfa_verified: Mutex::new(HashMap::new()),
            web_identities: Mutex::new(HashMap::new()),
            jwks: crate::oidc::JwksCache::default(),
            saml_identities: Mutex::new(HashMap::new()),
        }
    }

    /// The OIDC key-set fetcher (its limits are configurable through [`crate::Iam`]).
    pub(crate) fn jwks(&self) -> &crate::oidc::JwksCache {
        &self.jwks
    }

    fn remember_mfa(&self, request_id: &str, at: i64) {
        let mut m = self.mfa_verified.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= 10_000 {
            m.clear();
        }
        m.insert(request_id.to_string(), at);
    }

    fn take_mfa(&self, request_id: &str) -> Option<i64> {
        self.mfa_verified.lock().unwrap_or_else(|p| p.into_inner()).remove(request_id)
    }

    fn web_identity(&self, request_id: &str, take: bool) -> Option<WebIdentity> {
        let mut m = self.web_identities.lock().unwrap_or_else(|p| p.into_inner());
        if take {
            m.remove(request_id)
        } else {
            m.get(request_id).cloned()
        }
    }

    fn saml_identity(&self, request_id: &str, take: bool) -> Option<SamlIdentity> {
        let mut m = self.saml_identities.lock().unwrap_or_else(|p| p.into_inner());
        if take {
            m.remove(request_id)
        } else {
            m.get(request_id).cloned()
        }
    }

    /// AssumeRoleWithSAML is unsigned: the caller is the assertion's subject at its SAML provider,
    /// once the Response's XML signature verifies with the provider's certificates.
    fn saml_caller(&self, q: &QueryParams, request_id: &str) -> Result<Caller> {
        let mut a = Args::new(q);
        let role_arn = a.req("RoleArn", &ROLE_ARN);
        let provider_arn = a.req("PrincipalArn", &ROLE_ARN);
        let encoded = a.req_unshown("SAMLAssertion", &SAML_ASSERTION);
        a.int("DurationSeconds", 900, 43_200);
        session_policy_args(&mut a, q);
        a.finish()?;
        let (xml, assertion) = saml::Assertion::decode(encoded).map_err(saml_refusal)?;
        let (account, provider_name) = parse_saml_provider_arn(provider_arn).ok_or_else(|| {
            invalid_identity(format!("Invalid PrincipalArn {provider_arn}: not the ARN of a SAML provider"))
        })?;
        let Some(provider) = crate::service::saml_providers::get(&self.core, account, provider_arn)? else {
            return Err(invalid_identity(format!("SAML provider {provider_arn} does not exist")));
        };
        let certs = crate::certs::parse_saml_metadata(&provider.metadata).map(|m| m.signing_certs).unwrap_or_default();
        saml::verify_signature(&xml, &assertion, &certs).map_err(saml_refusal)?;
        if !assertion.names_role(role_arn, provider_arn) {
            return Err(IamError::Aws(AwsError::access_denied("Not authorized to perform sts:AssumeRoleWithSAML")));
        }
        let session_name = match assertion.attribute(saml::ATTR_SESSION_NAME).as_slice() {
            [name] if (2..=64).contains(&name.len()) && session_name_chars(name) => name.to_string(),
            [] => return Err(invalid_identity("The SAML assertion has no RoleSessionName attribute")),
            _ => return Err(invalid_identity("The SAML assertion's RoleSessionName attribute is not valid")),
        };
        let name_qualifier = saml::name_qualifier(&assertion.issuer, account, provider_name);
        let caller = Caller {
            account_id: account.to_string(),
            arn: provider_arn.to_string(),
            principal_id: format!("{name_qualifier}:{}", assertion.subject),
            access_key_id: String::new(),
            kind: CallerKind::FederatedUser { user_name: assertion.subject.clone() },
            session: None,
        };
        let id = SamlIdentity {
            provider_arn: provider_arn.to_string(),
            account: account.to_string(),
            assertion,
            session_name,
            name_qualifier,
        };
        remember(&self.saml_identities, request_id, id);
        Ok(caller)
    }

    /// AssumeRoleWithWebIdentity is unsigned: the caller is the verified token's provider.
    fn web_identity_caller(&self, q: &QueryParams, request_id: &str) -> Result<Caller> {
        let mut a = Args::new(q);
        let role_arn = a.req("RoleArn", &ROLE_ARN);
        a.req("RoleSessionName", &ROLE_SESSION_NAME);
        let token = a.req_unshown("WebIdentityToken", &WEB_IDENTITY_TOKEN);
        a.opt("ProviderId", &PROVIDER_ID);
        a.int("DurationSeconds", 900, 43_200);
        session_policy_args(&mut a, q);
        a.finish()?;
        if q.get("ProviderId").is_some() {
            return Err(invalid_parameter(
                "OAuth 2.0 providers (ProviderId) are not supported; use an OpenID Connect provider.",
            ));
        }
        let Some((account, _)) = parse_role_arn(role_arn) else {
            return Err(IamError::Aws(AwsError::access_denied(
                "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            )));
        };
        let issuer = crate::oidc::unverified_issuer(token)?;
        let provider = crate::service::oidc_providers::by_issuer(&self.core, account, &issuer)?.ok_or_else(|| {
            IamError::Aws(AwsError::new(
                "InvalidIdentityToken",
                format!("No OpenIDConnect provider found in your account for {issuer}"),
                400,
            ))
        })?;
        let claims = self.jwks.verify(&provider, token)?;
        let aud = claims
            .aud
            .values()
            .into_iter()
            .find(|a| provider.client_ids.iter().any(|c| c == a))
            .unwrap_or_default()
            .to_string();
        let amr = match &claims.amr {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(v)) => v.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        let provider_arn = provider.arn(account);
        let wi = WebIdentity {
            provider_arn: provider_arn.clone(),
            provider_key: provider.key().to_string(),
            issuer: claims.iss.clone(),
            sub: claims.sub.clone(),
            aud,
            amr,
        };
        remember(&self.web_identities, request_id, wi);
        Ok(Caller {
            account_id: account.to_string(),
            arn: provider_arn,
            principal_id: format!("{}:{}", provider.key(), claims.sub),
            access_key_id: String::new(),
            kind: CallerKind::FederatedUser { user_name: claims.sub },
            session: None,
        })
    }
}

impl Service for StsService {
    fn signing_name(&self) -> &'static str {
        "sts"
    }

    fn event_source(&self) -> &'static str {
        "sts.amazonaws.com"
    }

    fn protocol(&self) -> Protocol {
        Protocol::AwsQuery
    }

    fn xml_namespace(&self) -> &'static str {
        "https://sts.amazonaws.com/doc/2011-06-15/"
    }

    fn has_operation(&self, operation: &str) -> bool {
        OPERATIONS.contains(&operation)
    }

    fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: &Input,
        decide: rampart_service::Decide<'_>,
    ) -> Result<Output, AwsError> {
        // Families not yet moved to typed operations: plan, decide, run.
        if let AuthzPlan::Checks(checks) = self.legacy_authorize(ctx, operation, input)? {
            decide(checks)?;
        }
        self.legacy_invoke(ctx, operation, input)
    }

    fn plan(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        self.legacy_authorize(ctx, operation, input)
    }

    fn unsigned_caller(&self, operation: &str, input: &Input, request_id: &str) -> Option<Result<Caller, AwsError>> {
        match operation {
            "AssumeRoleWithWebIdentity" => {
                Some(self.web_identity_caller(input.query(), request_id).map_err(AwsError::from))
            }
            "AssumeRoleWithSAML" => Some(self.saml_caller(input.query(), request_id).map_err(AwsError::from)),
            _ => None,
        }
    }
}

impl StsService {
    fn legacy_authorize(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        self.plan(ctx, operation, input.query()).map_err(AwsError::from)
    }

    fn legacy_invoke(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<Output, AwsError> {
        self.run(ctx, operation, input.query()).map_err(AwsError::from)
    }
}

/// `arn:aws:iam::ACCOUNT:role/path/name` → (account, name).
pub fn parse_role_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, res) = rest.split_once(':')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let path_and_name = res.strip_prefix("role/")?;
    let name = path_and_name.rsplit('/').next()?;
    (!name.is_empty()).then_some((account, name))
}

/// The account an `AKIA…`/`ASIA…` key ID encodes, as AWS's GetAccessKeyInfo reads it for keys it
/// does not hold: bits 1..=40 of the base32-decoded characters after the prefix.
fn account_in_key_id(key: &str) -> Option<String> {
    let rest = key.strip_prefix("AKIA").or_else(|| key.strip_prefix("ASIA"))?;
    if rest.len() != 16 {
        return None;
    }
    let bytes = data_encoding::BASE32_NOPAD.decode(rest.as_bytes()).ok()?;
    let mut z: u64 = 0;
    for b in bytes.iter().take(6) {
        z = (z << 8) | u64::from(*b);
    }
    Some(format!("{:012}", (z & 0x7fff_ffff_ff80) >> 7))
}

/// The SourceIdentity attribute, if the assertion carries one (validated as AssumeRole's parameter).
fn saml_source_identity(a: &saml::Assertion) -> Result<Option<String>> {
    match a.attribute(saml::ATTR_SOURCE_IDENTITY).as_slice() {
        [] => Ok(None),
        [si] if (2..=64).contains(&si.len()) && session_name_chars(si) && !crate::util::has_aws_prefix(si) => {
            Ok(Some(si.to_string()))
        }
        _ => Err(invalid_identity("The SAML assertion's SourceIdentity attribute is not valid")),
    }
}

/// `arn:aws:iam::ACCOUNT:saml-provider/NAME` → (account, name).
fn parse_saml_provider_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, res) = rest.split_once(':')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let name = res.strip_prefix("saml-provider/")?;
    (!name.is_empty() && !name.contains('/')).then_some((account, name))
}

fn invalid_identity(message: impl Into<String>) -> IamError {
    IamError::Aws(AwsError::new("InvalidIdentityToken", message, 400))
}

fn saml_refusal(r: saml::Refusal) -> IamError {
    match r {
        saml::Refusal::Invalid(m) => invalid_identity(m),
        saml::Refusal::Expired => IamError::Aws(AwsError::new(
            "ExpiredTokenException",
            "The SAML assertion has expired (its NotOnOrAfter has passed).",
            400,
        )),
    }
}

fn s(v: impl Into<String>) -> ContextValue {
    ContextValue::String(v.into())
}

fn invalid_parameter(message: impl Into<String>) -> IamError {
    IamError::Aws(AwsError::new("InvalidParameterValue", message, 400))
}

fn malformed(message: impl Into<String>) -> IamError {
    IamError::Aws(AwsError::new("MalformedPolicyDocument", message, 400))
}

/// Keep what a federated caller proved for its request (taken back when the call runs); bounded
/// so calls that never run cannot grow it.
fn remember<T>(stash: &Mutex<HashMap<String, T>>, request_id: &str, value: T) {
    let mut m = stash.lock().unwrap_or_else(|p| p.into_inner());
    if m.len() >= 10_000 {
        m.clear();
    }
    m.insert(request_id.to_string(), value);
}

fn mfa_failed() -> IamError {
    IamError::Aws(AwsError::access_denied("MultiFactorAuthentication failed with invalid MFA one time pass code. "))
}

/// AWS's limit on `PolicyArns` (managed session policies) per request.
const MAX_POLICY_ARNS: usize = 10;

/// Session policy inputs shared by AssumeRole and GetFederationToken.
struct SessionPolicies<'a> {
    policy: Option<&'a str>,
    arns: Vec<String>,
}

fn session_policy_args<'a>(a: &mut Args<'a>, q: &'a QueryParams) -> SessionPolicies<'a> {
    let policy = a.opt("Policy", &SESSION_POLICY);
    let items = q.struct_list("PolicyArns.member");
    if items.len() > MAX_POLICY_ARNS {
        // Refused as a whole, before authorization: no per-ARN checks, and a long list is elided.
        let len: usize = items.iter().map(|i| i.get("arn").map_or(0, str::len) + 2).sum();
        let shown = if len <= crate::validate::MAX_ECHOED_LIST {
            items.iter().filter_map(|i| i.get("arn")).collect::<Vec<_>>().join(", ")
        } else {
            "...".to_string()
        };
        a.error(format!(
            "Value '[{shown}]' at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to {MAX_POLICY_ARNS}"
        ));
        return SessionPolicies { policy, arns: Vec::new() };
    }
    let mut arns = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Some(arn) = item.get("arn") {
            a.check_value(&format!("policyArns.{}.member.arn", i + 1), arn, &POLICY_ARN);
            arns.push(arn.to_string());
        }
    }
    SessionPolicies { policy, arns }
}

impl SessionPolicies<'_> {
    fn passed(&self) -> bool {
        self.policy.is_some() || !self.arns.is_empty()
    }

    /// The session of a federated role assumption (SAML, web identity): no tags, no MFA, no chain.
    fn federated_session(
        &self,
        role: &RoleRec,
        role_account: &str,
        session_name: &str,
        issued: i64,
        expires: i64,
        source_identity: Option<String>,
    ) -> SessionRec {
        SessionRec {
            account: role_account.to_string(),
            sealed: String::new(),
            issued,
            expires,
            kind: SessionKind::Role {
                role_name: role.name.clone(),
                role_id: role.id.clone(),
                role_arn: role.arn(role_account),
                session_name: session_name.to_string(),
                chained: false,
            },
            policy: self.policy.map(str::to_string),
            policy_arns: self.arns.clone(),
            has_session_policy: self.passed(),
            tags: Vec::new(),
            transitive: Vec::new(),
            source_identity,
            mfa_time: None,
        }
    }

    /// Parse the inline policy and resolve the managed ones (in `account`, or AWS managed).
    fn check(&self, core: &Core, account: &str) -> Result<()> {
        if let Some(p) = self.policy {
            core.resolver.policies.get(p, PolicyType::Identity).map_err(|e| malformed(e.message))?;
        }
        if self.arns.len() > 10 {
            return Err(IamError::Aws(AwsError::validation(format!(
                "1 validation error detected: Value '[{}]' at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10",
                rampart_protocol::echo(&self.arns.join(", "))
            ))));
        }
        for arn in &self.arns {
            if managed_document(&core.db, account, arn)?.is_none() {
                return Err(invalid_parameter(format!("Policy {arn} does not exist or is not attachable.")));
            }
        }
        Ok(())
    }

    /// AWS's PackedPolicySize: the percentage of the packed limit used by policies and tags.
    fn packed_percent(&self, tags: &[Tag]) -> Result<Option<usize>> {
        if !self.passed() && tags.is_empty() {
            return Ok(None);
        }
        let plain = self.policy.map(policy_size).unwrap_or(0) + self.arns.iter().map(|a| a.len()).sum::<usize>();
        if plain > MAX_PACKED {
            return Err(IamError::Aws(AwsError::new(
                "PackedPolicyTooLarge",
                format!(
                    "Packed policy consumes {}% of allotted space, please use smaller policy.",
                    plain * 100 / MAX_PACKED
                ),
                400,
            )));
        }
        let packed = plain + tags.iter().map(|t| t.key.len() + t.value.len() + 2).sum::<usize>();
        let pct = packed * 100 / MAX_PACKED;
        if pct > 100 {
            return Err(IamError::Aws(AwsError::new(
                "PackedPolicyTooLarge",
                format!("Packed policy and session tags consume {pct}% of allotted space, please use smaller policy and fewer tags."),
                400,
            )));
        }
        Ok(Some(pct.max(1)))
    }
}

/// The role named by an ARN, in its account (which may differ from the caller's).
fn role_of(core: &Core, arn: &str) -> Result<Option<(String, RoleRec)>> {
    let Some((account, name)) = parse_role_arn(arn) else { return Ok(None) };
    Ok(core.db.entity::<RoleRec>(account, name)?.filter(|r| r.arn(account) == arn).map(|r| (account.to_string(), r)))
}

/// AccessDenied for a role that does not exist: worded as for a role whose trust policy does not
/// allow the caller, so the answer does not reveal which roles exist.
fn not_authorized(ctx: &RequestContext, action: &str, resource: &str) -> IamError {
    IamError::Aws(crate::authz::access_denied(
        "sts",
        &ctx.caller.arn,
        action,
        resource,
        Some((rampart_policy::Layer::ResourcePolicy, false)),
    ))
}

/// Tags passed to the new session plus the transitive ones inherited from the calling session.
struct TagPlan {
    tags: Vec<Tag>,
    transitive: Vec<String>,
    passed: Vec<Tag>,
}

fn plan_tags(core: &Core, ctx: &RequestContext, passed: Vec<Tag>, transitive: Vec<&str>) -> Result<TagPlan> {
    crate::service::check_new_tags(&passed)?;
    for k in &transitive {
        if !passed.iter().any(|t| t.key.eq_ignore_ascii_case(k)) {
            return Err(invalid_parameter(format!(
                "The specified transitive tag key must be included in the requested tags: {k}."
            )));
        }
    }
    let mut tags = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    if let Some(parent) = calling_session(core, ctx)? {
        for t in parent.tags.iter().filter(|t| parent.transitive.iter().any(|k| k.eq_ignore_ascii_case(&t.key))) {
            if passed.iter().any(|p| p.key.eq_ignore_ascii_case(&t.key)) {
                return Err(invalid_parameter(
                    "One or more of the specified session tags conflict with transitive session tags of the calling session.",
                ));
            }
            tags.push(t.clone());
            keys.push(t.key.clone());
        }
    }
    tags.extend(passed.iter().cloned());
    keys.extend(transitive.iter().map(|k| k.to_string()));
    if tags.len() > 50 {
        return Err(invalid_parameter("The number of session tags, including inherited ones, exceeds 50."));
    }
    Ok(TagPlan { tags, transitive: keys, passed })
}

/// The stored session the caller signs with, when it uses temporary credentials.
fn calling_session(core: &Core, ctx: &RequestContext) -> Result<Option<SessionRec>> {
    if ctx.caller.session.is_none() {
        return Ok(None);
    }
    session::get(&core.db, &ctx.caller.access_key_id)
}

fn credentials_xml(w: &mut XmlWriter, m: &session::Minted) {
    w.start("Credentials")
        .elem("AccessKeyId", &m.access_key_id)
        .elem("SecretAccessKey", &m.secret_access_key)
        .elem("SessionToken", &m.session_token)
        .elem("Expiration", &iso8601(m.expires))
        .end();
}

impl StsService {
    fn plan(&self, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<AuthzPlan> {
        let core = &self.core;
        match op {
            // AWS always allows GetCallerIdentity, even under an explicit deny.
            "GetCallerIdentity" => Ok(AuthzPlan::AlwaysAllowed),
            "AssumeRole" => self.plan_assume_role(ctx, q),
            "AssumeRoleWithWebIdentity" => {
                let wi = self.web_identity(&ctx.request_id, false).ok_or_else(|| {
                    IamError::Aws(AwsError::new(
                        "MissingAuthenticationToken",
                        "Request is missing Authentication Token",
                        403,
                    ))
                })?;
                let role_arn = q.get("RoleArn").unwrap_or_default();
                let session_name = q.get("RoleSessionName").unwrap_or_default();
                let mut a = Args::new(q);
                let policies = session_policy_args(&mut a, q);
                a.finish()?;
                let Some((role_account, role)) = role_of(core, role_arn)? else {
                    return Err(IamError::Aws(AwsError::access_denied(
                        "Not authorized to perform sts:AssumeRoleWithWebIdentity",
                    )));
                };
                policies.check(core, &role_account)?;
                policies.packed_percent(&[])?;
                let arn = role.arn(&role_account);
                let mut c = AuthzCheck::new("sts:AssumeRoleWithWebIdentity", arn.clone());
                c.resource_policy = Some(ResourcePolicy::new(format!("{arn}/trust-policy"), role.trust.as_str(), true));
                let k = &wi.provider_key;
                c.context.push(("sts:RoleSessionName".into(), s(session_name)));
                c.context.push((format!("{k}:aud").into(), s(wi.aud.as_str())));
                c.context.push((format!("{k}:sub").into(), s(wi.sub.as_str())));
                if !wi.amr.is_empty() {
                    c.context.push((format!("{k}:amr").into(), ContextValue::List(wi.amr.clone())));
                }
                c.context.push(("aws:FederatedProvider".into(), s(wi.provider_arn.as_str())));
                Ok(AuthzPlan::Checks(vec![c]))
            }
            "AssumeRoleWithSAML" => self.plan_saml(ctx, q),
            "GetSessionToken" => {
                let mut a = Args::new(q);
                a.int("DurationSeconds", 900, 129_600);
                let serial = a.opt("SerialNumber", &SERIAL);
                let code = a.opt_unshown("TokenCode", &TOKEN_CODE);
                a.finish()?;
                if ctx.caller.session.is_some() {
                    return Err(IamError::Aws(AwsError::access_denied(
                        "Cannot call GetSessionToken with session credentials",
                    )));
                }
                self.check_mfa(ctx, serial, code)?;
                // No permission is needed: GetSessionToken cannot be controlled by policies.
                Ok(AuthzPlan::AlwaysAllowed)
            }
            "GetFederationToken" => {
                let mut a = Args::new(q);
                let name = a.req("Name", &FEDERATED_NAME);
                a.int("DurationSeconds", 900, 129_600);
                let policies = session_policy_args(&mut a, q);
                let tags = a.tags("Tags");
                a.finish()?;
                crate::service::check_new_tags(&tags)?;
                if ctx.caller.session.is_some() {
                    return Err(IamError::Aws(AwsError::access_denied(
                        "Cannot call GetFederationToken with session credentials",
                    )));
                }
                policies.check(core, &ctx.caller.account_id)?;
                policies.packed_percent(&tags)?;
                let arn = format!("arn:aws:sts::{}:federated-user/{name}", ctx.caller.account_id);
                let mut checks = vec![request_tags(AuthzCheck::new("sts:GetFederationToken", arn.clone()), &tags)];
                if !tags.is_empty() {
                    checks.push(request_tags(AuthzCheck::new("sts:TagSession", arn), &tags));
                }
                Ok(AuthzPlan::Checks(checks))
            }
            "GetAccessKeyInfo" => {
                let mut a = Args::new(q);
                a.req("AccessKeyId", &ACCESS_KEY);
                a.finish()?;
                Ok(AuthzPlan::Checks(vec![AuthzCheck::new("sts:GetAccessKeyInfo", "*")]))
            }
            "DecodeAuthorizationMessage" => {
                let mut a = Args::new(q);
                a.req("EncodedMessage", &ENCODED_MESSAGE);
                a.finish()?;
                Ok(AuthzPlan::Checks(vec![AuthzCheck::new("sts:DecodeAuthorizationMessage", "*")]))
            }
            other => Err(IamError::Aws(AwsError::invalid_action("sts", other))),
        }
    }

    fn plan_saml(&self, ctx: &RequestContext, q: &QueryParams) -> Result<AuthzPlan> {
        let core = &self.core;
        let id = self.saml_identity(&ctx.request_id, false).ok_or_else(|| {
            IamError::Aws(AwsError::new("MissingAuthenticationToken", "Request is missing Authentication Token", 403))
        })?;
        id.assertion.check(ctx.time.unix_timestamp()).map_err(saml_refusal)?;
        let role_arn = q.get("RoleArn").unwrap_or_default();
        let mut a = Args::new(q);
        let policies = session_policy_args(&mut a, q);
        a.finish()?;
        let source_identity = saml_source_identity(&id.assertion)?;
        let denied = || IamError::Aws(AwsError::access_denied("Not authorized to perform sts:AssumeRoleWithSAML"));
        let Some((role_account, role)) = role_of(core, role_arn)? else { return Err(denied()) };
        if role_account != id.account {
            return Err(denied());
        }
        policies.check(core, &role_account)?;
        policies.packed_percent(&[])?;
        let arn = role.arn(&role_account);
        let mut c = AuthzCheck::new("sts:AssumeRoleWithSAML", arn.clone());
        c.resource_policy = Some(ResourcePolicy::new(format!("{arn}/trust-policy"), role.trust.as_str(), true));
        let as_ = &id.assertion;
        let provider_name = id.provider_arn.rsplit('/').next().unwrap_or_default();
        c.context.push(("sts:RoleSessionName".into(), s(id.session_name.as_str())));
        if let Some(r) = &as_.recipient {
            c.context.push(("SAML:aud".into(), s(r.as_str())));
        }
        c.context.push(("SAML:iss".into(), s(as_.issuer.as_str())));
        c.context.push(("SAML:sub".into(), s(as_.subject.as_str())));
        c.context.push(("SAML:sub_type".into(), s(as_.subject_type())));
        c.context.push(("SAML:namequalifier".into(), s(id.name_qualifier.as_str())));
        c.context.push(("SAML:doc".into(), s(format!("{}/{provider_name}", id.account))));
        c.context.push(("aws:FederatedProvider".into(), s(id.provider_arn.as_str())));
        if let Some(si) = &source_identity {
            c.context.push(("sts:SourceIdentity".into(), s(si.as_str())));
        }
        let mut checks = vec![c.clone()];
        if source_identity.is_some() {
            c.action = "sts:SetSourceIdentity".into();
            checks.push(c);
        }
        Ok(AuthzPlan::Checks(checks))
    }

    /// Verify `SerialNumber` + `TokenCode` of an IAM user caller; remember success for invoke.
    fn check_mfa(&self, ctx: &RequestContext, serial: Option<&str>, code: Option<&str>) -> Result<bool> {
        let (serial, code) = match (serial, code) {
            (None, None) => return Ok(false),
            (Some(s), Some(c)) => (s, c),
            _ => return Err(mfa_failed()),
        };
        let CallerKind::IamUser { user_name, .. } = &ctx.caller.kind else { return Err(mfa_failed()) };
        if !self.core.verify_mfa_code(&ctx.caller.account_id, user_name, serial, code)? {
            return Err(mfa_failed());
        }
        self.remember_mfa(&ctx.request_id, ctx.time.unix_timestamp());
        Ok(true)
    }

    fn plan_assume_role(&self, ctx: &RequestContext, q: &QueryParams) -> Result<AuthzPlan> {
        let core = &self.core;
        let mut a = Args::new(q);
        let role_arn = a.req("RoleArn", &ROLE_ARN);
        let session_name = a.req("RoleSessionName", &ROLE_SESSION_NAME);
        a.int("DurationSeconds", 900, 43_200);
        let policies = session_policy_args(&mut a, q);
        let tags = a.tags("Tags");
        let transitive = a.list("TransitiveTagKeys", &crate::validate::TAG_KEY, Some(50), false);
        let external_id = a.opt("ExternalId", &EXTERNAL_ID);
        let serial = a.opt("SerialNumber", &SERIAL);
        let code = a.opt_unshown("TokenCode", &TOKEN_CODE);
        let source_identity = a.opt("SourceIdentity", &SOURCE_IDENTITY);
        a.finish()?;
        if source_identity.is_some_and(crate::util::has_aws_prefix) {
            return Err(IamError::Aws(AwsError::validation(
                "1 validation error detected: Value at 'sourceIdentity' failed to satisfy constraint: Member must not start with 'aws:'",
            )));
        }
        let Some((role_account, role)) = role_of(core, role_arn)? else {
            return Err(not_authorized(ctx, "sts:AssumeRole", role_arn));
        };
        policies.check(core, &role_account)?;
        let plan = plan_tags(core, ctx, tags, transitive)?;
        policies.packed_percent(&plan.tags)?;
        let parent = calling_session(core, ctx)?;
        if let (Some(p), Some(si)) = (parent.as_ref().and_then(|p| p.source_identity.as_deref()), source_identity) {
            if p != si {
                return Err(invalid_parameter("The source identity of the calling session cannot be changed."));
            }
        }
        let mfa = self.check_mfa(ctx, serial, code)?;

        let arn = role.arn(&role_account);
        let resource_account = (role_account != ctx.caller.account_id).then(|| role_account.clone());
        let trust = ResourcePolicy::new(format!("{arn}/trust-policy"), role.trust.as_str(), true);
        let mut base = AuthzCheck::new("sts:AssumeRole", arn.clone());
        base.resource_account = resource_account;
        base.resource_policy = Some(trust);
        base.context.push(("sts:RoleSessionName".into(), s(session_name)));
        if let Some(e) = external_id {
            base.context.push(("sts:ExternalId".into(), s(e)));
        }
        if let Some(si) = source_identity {
            base.context.push(("sts:SourceIdentity".into(), s(si)));
        }
        if mfa {
            base.context.push(("aws:MultiFactorAuthPresent".into(), s("true")));
            base.context.push(("aws:MultiFactorAuthAge".into(), s("0")));
        }
        for t in &role.tags {
            base.context.push((format!("aws:ResourceTag/{}", t.key).into(), s(t.value.as_str())));
            base.context.push((format!("iam:ResourceTag/{}", t.key).into(), s(t.value.as_str())));
        }
        let mut checks = vec![base.clone()];
        if !plan.passed.is_empty() {
            let mut tag = request_tags(base.clone(), &plan.passed);
            tag.action = "sts:TagSession".into();
            if !plan.transitive.is_empty() {
                tag.context.push(("sts:TransitiveTagKeys".into(), ContextValue::List(plan.transitive.clone())));
            }
            if let Some(first) = checks.first_mut() {
                *first = request_tags(first.clone(), &plan.passed);
            }
            checks.push(tag);
        }
        if source_identity.is_some() {
            let mut si = base;
            si.action = "sts:SetSourceIdentity".into();
            checks.push(si);
        }
        Ok(AuthzPlan::Checks(checks))
    }

    fn run(&self, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<Output> {
        let core = &self.core;
        let now = ctx.time.unix_timestamp();
        match op {
            "GetCallerIdentity" => {
                let c = &ctx.caller;
                let mut w = XmlWriter::new();
                w.elem("UserId", &c.principal_id).elem("Account", &c.account_id).elem("Arn", &c.arn);
                Ok(Output::Xml(Some(w.finish())))
            }
            "AssumeRole" => self.assume_role(ctx, q, now),
            "AssumeRoleWithWebIdentity" => self.assume_role_with_web_identity(ctx, q, now),
            "AssumeRoleWithSAML" => self.assume_role_with_saml(ctx, q, now),
            "GetSessionToken" => {
                let requested = q.get("DurationSeconds").and_then(|d| d.parse::<i64>().ok());
                let (kind, duration) = match &ctx.caller.kind {
                    CallerKind::Root => (SessionKind::Root, requested.unwrap_or(3600).min(3600)),
                    CallerKind::IamUser { user_name, user_id } => (
                        SessionKind::User { user_name: user_name.clone(), user_id: user_id.clone() },
                        requested.unwrap_or(43_200),
                    ),
                    _ => {
                        return Err(IamError::Aws(AwsError::access_denied(
                            "Cannot call GetSessionToken with session credentials",
                        )))
                    }
                };
                let rec = SessionRec {
                    account: ctx.caller.account_id.clone(),
                    sealed: String::new(),
                    issued: now,
                    expires: now + duration,
                    kind,
                    policy: None,
                    policy_arns: Vec::new(),
                    has_session_policy: false,
                    tags: Vec::new(),
                    transitive: Vec::new(),
                    source_identity: None,
                    mfa_time: self.take_mfa(&ctx.request_id),
                };
                let m = session::issue(&core.db, &core.creds.sealer(), rec, now)?;
                let mut w = XmlWriter::new();
                credentials_xml(&mut w, &m);
                Ok(Output::Xml(Some(w.finish())))
            }
            "GetFederationToken" => {
                let mut a = Args::new(q);
                let name = a.req("Name", &FEDERATED_NAME).to_string();
                let requested = a.int("DurationSeconds", 900, 129_600);
                let policies = session_policy_args(&mut a, q);
                let tags = a.tags("Tags");
                a.finish()?;
                let account = ctx.caller.account_id.clone();
                let (user_name, user_id, duration) = match &ctx.caller.kind {
                    CallerKind::Root => (None, None, requested.unwrap_or(3600).min(3600)),
                    CallerKind::IamUser { user_name, user_id } => {
                        (Some(user_name.clone()), Some(user_id.clone()), requested.unwrap_or(43_200))
                    }
                    _ => {
                        return Err(IamError::Aws(AwsError::access_denied(
                            "Cannot call GetFederationToken with session credentials",
                        )))
                    }
                };
                let packed = policies.packed_percent(&tags)?;
                let rec = SessionRec {
                    account: account.clone(),
                    sealed: String::new(),
                    issued: now,
                    expires: now + duration,
                    kind: SessionKind::Federated { name: name.clone(), user_name, user_id },
                    policy: policies.policy.map(str::to_string),
                    policy_arns: policies.arns.clone(),
                    // A federated user has no permissions without a session policy.
                    has_session_policy: true,
                    tags,
                    transitive: Vec::new(),
                    source_identity: None,
                    mfa_time: None,
                };
                let m = session::issue(&core.db, &core.creds.sealer(), rec, now)?;
                let mut w = XmlWriter::new();
                credentials_xml(&mut w, &m);
                w.start("FederatedUser")
                    .elem("FederatedUserId", &format!("{account}:{name}"))
                    .elem("Arn", &format!("arn:aws:sts::{account}:federated-user/{name}"))
                    .end();
                if let Some(p) = packed {
                    w.elem("PackedPolicySize", &p.to_string());
                }
                Ok(Output::Xml(Some(w.finish())))
            }
            "GetAccessKeyInfo" => {
                let key = q.get("AccessKeyId").unwrap_or_default();
                let account = match core.db.get::<AccessKeyRec>(tables::ACCESS_KEYS, key)? {
                    Some(k) => Some(k.account),
                    None => session::get(&core.db, key)?.map(|s| s.account),
                };
                // AWS answers for any well-formed key ID, known or not: the account is encoded in it.
                let account = account
                    .or_else(|| account_in_key_id(key))
                    .ok_or_else(|| invalid_parameter("The access key ID is not valid."))?;
                let mut w = XmlWriter::new();
                w.elem("Account", &account);
                Ok(Output::Xml(Some(w.finish())))
            }
            "DecodeAuthorizationMessage" => {
                let encoded = q.get("EncodedMessage").unwrap_or_default();
                let decoded =
                    denials::decoded_message(&core.db, &ctx.caller.account_id, encoded.trim())?.ok_or_else(|| {
                        IamError::Aws(AwsError::new(
                            "InvalidAuthorizationMessageException",
                            "The encoded authorization message is invalid or has expired.",
                            400,
                        ))
                    })?;
                let mut w = XmlWriter::new();
                w.elem("DecodedMessage", &decoded);
                Ok(Output::Xml(Some(w.finish())))
            }
            other => Err(IamError::Aws(AwsError::invalid_action("sts", other))),
        }
    }

    fn assume_role_with_saml(&self, ctx: &RequestContext, q: &QueryParams, now: i64) -> Result<Output> {
        let core = &self.core;
        let id = self.saml_identity(&ctx.request_id, true).ok_or_else(|| {
            IamError::Aws(AwsError::new("MissingAuthenticationToken", "Request is missing Authentication Token", 403))
        })?;
        let mut a = Args::new(q);
        let role_arn = a.req("RoleArn", &ROLE_ARN);
        let requested = a.int("DurationSeconds", 900, 43_200);
        let policies = session_policy_args(&mut a, q);
        a.finish()?;
        let Some((role_account, role)) = role_of(core, role_arn)? else {
            return Err(IamError::Aws(AwsError::access_denied("Not authorized to perform sts:AssumeRoleWithSAML")));
        };
        // DurationSeconds (default one hour), never past the assertion's SessionNotOnOrAfter. The
        // SessionDuration attribute is for console sessions and does not apply to the API.
        let duration = requested.unwrap_or(3600);
        if duration > role.max_session {
            return Err(IamError::Aws(AwsError::validation(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            )));
        }
        let mut expires = now + duration;
        if let Some(end) = id.assertion.session_not_on_or_after {
            expires = expires.min(end.max(now + 1));
        }
        let source_identity = saml_source_identity(&id.assertion)?;
        let packed = policies.packed_percent(&[])?;
        let session_name = id.session_name.clone();
        let rec =
            policies.federated_session(&role, &role_account, &session_name, now, expires, source_identity.clone());
        let m = session::issue(&core.db, &core.creds.sealer(), rec, now)?;
        let as_ = &id.assertion;
        let mut w = XmlWriter::new();
        credentials_xml(&mut w, &m);
        w.start("AssumedRoleUser")
            .elem("AssumedRoleId", &format!("{}:{session_name}", role.id))
            .elem("Arn", &format!("arn:aws:sts::{role_account}:assumed-role/{}/{session_name}", role.name))
            .end();
        if let Some(p) = packed {
            w.elem("PackedPolicySize", &p.to_string());
        }
        w.elem("Subject", &as_.subject);
        w.elem("SubjectType", &as_.subject_type());
        w.elem("Issuer", &as_.issuer);
        if let Some(r) = &as_.recipient {
            w.elem("Audience", r);
        }
        w.elem("NameQualifier", &id.name_qualifier);
        if let Some(si) = &source_identity {
            w.elem("SourceIdentity", si);
        }
        Ok(Output::Xml(Some(w.finish())))
    }

    fn assume_role_with_web_identity(&self, ctx: &RequestContext, q: &QueryParams, now: i64) -> Result<Output> {
        let core = &self.core;
        let wi = self.web_identity(&ctx.request_id, true).ok_or_else(|| {
            IamError::Aws(AwsError::new("MissingAuthenticationToken", "Request is missing Authentication Token", 403))
        })?;
        let mut a = Args::new(q);
        let role_arn = a.req("RoleArn", &ROLE_ARN);
        let session_name = a.req("RoleSessionName", &ROLE_SESSION_NAME).to_string();
        let requested = a.int("DurationSeconds", 900, 43_200);
        let policies = session_policy_args(&mut a, q);
        a.finish()?;
        let Some((role_account, role)) = role_of(core, role_arn)? else {
            return Err(IamError::Aws(AwsError::access_denied(
                "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            )));
        };
        let duration = requested.unwrap_or(3600);
        if duration > role.max_session {
            return Err(IamError::Aws(AwsError::validation(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            )));
        }
        let packed = policies.packed_percent(&[])?;
        let rec = policies.federated_session(&role, &role_account, &session_name, now, now + duration, None);
        let m = session::issue(&core.db, &core.creds.sealer(), rec, now)?;
        let mut w = XmlWriter::new();
        credentials_xml(&mut w, &m);
        w.elem("SubjectFromWebIdentityToken", &wi.sub);
        w.start("AssumedRoleUser")
            .elem("AssumedRoleId", &format!("{}:{session_name}", role.id))
            .elem("Arn", &format!("arn:aws:sts::{role_account}:assumed-role/{}/{session_name}", role.name))
            .end();
        if let Some(p) = packed {
            w.elem("PackedPolicySize", &p.to_string());
        }
        w.elem("Provider", &wi.issuer);
        w.elem("Audience", &wi.aud);
        Ok(Output::Xml(Some(w.finish())))
    }

    fn assume_role(&self, ctx: &RequestContext, q: &QueryParams, now: i64) -> Result<Output> {
        let core = &self.core;
        let mut a = Args::new(q);
        let role_arn = a.req("RoleArn", &ROLE_ARN);
        let session_name = a.req("RoleSessionName", &ROLE_SESSION_NAME).to_string();
        let requested = a.int("DurationSeconds", 900, 43_200);
        let policies = session_policy_args(&mut a, q);
        let tags = a.tags("Tags");
        let transitive = a.list("TransitiveTagKeys", &crate::validate::TAG_KEY, Some(50), false);
        let source_identity = a.opt("SourceIdentity", &SOURCE_IDENTITY).map(str::to_string);
        a.finish()?;
        let mfa_time = self.take_mfa(&ctx.request_id);
        let Some((role_account, role)) = role_of(core, role_arn)? else {
            return Err(not_authorized(ctx, "sts:AssumeRole", role_arn));
        };
        let chained = matches!(ctx.caller.kind, CallerKind::AssumedRole { .. });
        let duration = requested.unwrap_or(3600);
        if chained && duration > 3600 {
            return Err(IamError::Aws(AwsError::validation(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
            )));
        }
        if duration > role.max_session {
            return Err(IamError::Aws(AwsError::validation(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            )));
        }
        let plan = plan_tags(core, ctx, tags, transitive)?;
        let packed = policies.packed_percent(&plan.tags)?;
        let parent = calling_session(core, ctx)?;
        let source_identity = source_identity.or_else(|| parent.as_ref().and_then(|p| p.source_identity.clone()));
        // A session assumed with MFA-authenticated credentials stays MFA-authenticated.
        let mfa_time = mfa_time.or_else(|| parent.as_ref().and_then(|p| p.mfa_time));
        let arn = role.arn(&role_account);
        let rec = SessionRec {
            account: role_account.clone(),
            sealed: String::new(),
            issued: now,
            expires: now + duration,
            kind: SessionKind::Role {
                role_name: role.name.clone(),
                role_id: role.id.clone(),
                role_arn: arn,
                session_name: session_name.clone(),
                chained,
            },
            policy: policies.policy.map(str::to_string),
            policy_arns: policies.arns.clone(),
            has_session_policy: policies.passed(),
            tags: plan.tags,
            transitive: plan.transitive,
            source_identity: source_identity.clone(),
            mfa_time,
        };
        let m = session::issue(&core.db, &core.creds.sealer(), rec, now)?;
        // RoleLastUsed (not authorization state: no generation bump).
        core.db.write_untracked(|tx| {
            if let Some(mut r) = tx.entity::<RoleRec>(&role_account, &role.name)? {
                r.last_used = Some((now, ctx.region.clone()));
                tx.put_entity(&role_account, &role.name, &r)?;
            }
            Ok(())
        })?;
        let mut w = XmlWriter::new();
        credentials_xml(&mut w, &m);
        w.start("AssumedRoleUser")
            .elem("AssumedRoleId", &format!("{}:{session_name}", role.id))
            .elem("Arn", &format!("arn:aws:sts::{role_account}:assumed-role/{}/{session_name}", role.name))
            .end();
        if let Some(p) = packed {
            w.elem("PackedPolicySize", &p.to_string());
        }
        if let Some(si) = &source_identity {
            w.elem("SourceIdentity", si);
        }
        Ok(Output::Xml(Some(w.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns() {
        assert_eq!(parse_role_arn("arn:aws:iam::111122223333:role/a/b/R"), Some(("111122223333", "R")));
        assert_eq!(parse_role_arn("arn:aws:iam::111122223333:role/R"), Some(("111122223333", "R")));
        assert_eq!(parse_role_arn("arn:aws:iam::111122223333:user/R"), None);
        assert_eq!(parse_role_arn("arn:aws:iam::11112222333:role/R"), None);
        assert_eq!(parse_role_arn("arn:aws:iam::111122223333:role/"), None);
        assert!(session_name_chars("a.b@c=d,e+f-g_h") && !session_name_chars("a b"));
    }

    #[test]
    fn key_ids_encode_their_account() {
        assert_eq!(account_in_key_id("ASIAY34FZKBOKMUTVV7A").as_deref(), Some("609629065308"));
        assert_eq!(account_in_key_id("AKIAIOSFODNN7EXAMPLE").as_deref(), Some("581039954779"));
        assert_eq!(account_in_key_id("AKIAIOSFODNN7EXAMPL1"), None);
        assert_eq!(account_in_key_id("AIDAIOSFODNN7EXAMPLE"), None);
        assert_eq!(account_in_key_id("AKIAIOSFODNN7EXAMPLEE"), None);
    }
}
