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

mod ops;
mod root;
pub mod saml;
pub mod session;
mod web_token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rampart_policy::{ContextValue, PolicyType};
use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_protocol::{AwsError, Protocol};
use rampart_service::{AuthzPlan, Caller, CallerKind, Input, Operation, Operations, Output, RequestContext, Service};

use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{RoleRec, Tag};
use crate::resolve::managed_document;
use crate::service::Core;
use crate::util::{iso8601, policy_size};
use crate::validate::{Args, Pattern, Spec};
use session::{SessionKind, SessionRec};

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
    /// Request ID → the verified web identity of an AssumeRoleWithWebIdentity call, from
    /// authentication (`unsigned_caller`) to the call's plan.
    web_identities: Mutex<HashMap<String, WebIdentity>>,
    jwks: crate::oidc::JwksCache,
    /// Request ID → the decoded assertion of an AssumeRoleWithSAML call, likewise.
    saml_identities: Mutex<HashMap<String, SamlIdentity>>,
}

/// A decoded SAML assertion and its provider, between authentication and the plan.
#[derive(Clone, Debug)]
struct SamlIdentity {
    provider_arn: String,
    account: String,
    assertion: saml::Assertion,
    session_name: String,
    name_qualifier: String,
}

/// A verified web identity token, between authentication and the plan.
#[derive(Clone, Debug)]
struct WebIdentity {
    provider_arn: String,
    provider_key: String,
    issuer: String,
    sub: String,
    aud: String,
    amr: Vec<String>,
}

/// The operations, each listed once.
static OPERATIONS: Operations<StsService> = Operations::new(&[ops::OPS, web_token::OPS, root::OPS]);

impl StsService {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        StsService {
            core,
            web_identities: Mutex::new(HashMap::new()),
            jwks: crate::oidc::JwksCache::default(),
            saml_identities: Mutex::new(HashMap::new()),
        }
    }

    /// The OIDC key-set fetcher (its limits are configurable through [`crate::Iam`]).
    pub(crate) fn jwks(&self) -> &crate::oidc::JwksCache {
        &self.jwks
    }

    /// The web identity `unsigned_caller` verified for this request, taken for its plan.
    fn take_web_identity(&self, request_id: &str) -> Result<WebIdentity> {
        self.web_identities.lock().unwrap_or_else(|p| p.into_inner()).remove(request_id).ok_or_else(missing_token)
    }

    /// The SAML identity `unsigned_caller` verified for this request, taken for its plan.
    fn take_saml_identity(&self, request_id: &str) -> Result<SamlIdentity> {
        self.saml_identities.lock().unwrap_or_else(|p| p.into_inner()).remove(request_id).ok_or_else(missing_token)
    }

    /// AssumeRoleWithWebIdentity and AssumeRoleWithSAML run only for a caller `unsigned_caller`
    /// authenticated: a signed call of them is refused as unauthenticated before its input is read.
    fn require_federated_caller(&self, operation: &str, request_id: &str) -> Result<()> {
        let known = if operation == <ops::AssumeRoleWithWebIdentity as Operation<Self>>::NAME {
            self.web_identities.lock().unwrap_or_else(|p| p.into_inner()).contains_key(request_id)
        } else if operation == <ops::AssumeRoleWithSaml as Operation<Self>>::NAME {
            self.saml_identities.lock().unwrap_or_else(|p| p.into_inner()).contains_key(request_id)
        } else {
            true
        };
        if known {
            Ok(())
        } else {
            Err(missing_token())
        }
    }

    /// AssumeRoleWithSAML is unsigned: the caller is the assertion's subject at its SAML provider,
    /// once the Response's XML signature verifies with the provider's certificates.
    fn saml_caller(&self, input: &Input, request_id: &str) -> Result<Caller> {
        let req = ops::AssumeRoleWithSaml::parse(input)?;
        let (role_arn, provider_arn) = (req.role_arn.as_str(), req.provider_arn.as_str());
        let (xml, assertion) = saml::Assertion::decode(&req.assertion).map_err(saml_refusal)?;
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
    fn web_identity_caller(&self, input: &Input, request_id: &str) -> Result<Caller> {
        let req = ops::AssumeRoleWithWebIdentity::parse(input)?;
        let Some((account, _)) = parse_role_arn(&req.role_arn) else {
            return Err(IamError::Aws(AwsError::access_denied(
                "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            )));
        };
        let token = req.token.as_str();
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

    /// Verify `SerialNumber` + `TokenCode` of an IAM user caller: whether a code was given (and
    /// verified); a wrong or partial pair is refused.
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
        Ok(true)
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
        OPERATIONS.has(operation)
    }

    fn operation_names(&self) -> Vec<&'static str> {
        OPERATIONS.names()
    }

    fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: &Input,
        decide: rampart_service::Decide<'_>,
    ) -> Result<Output, AwsError> {
        self.require_federated_caller(operation, &ctx.request_id)?;
        OPERATIONS
            .call(self, ctx, operation, input, decide)
            .unwrap_or_else(|| Err(AwsError::invalid_action("sts", operation)))
    }

    fn plan(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        self.require_federated_caller(operation, &ctx.request_id)?;
        OPERATIONS.plan(self, ctx, operation, input).unwrap_or_else(|| Err(AwsError::invalid_action("sts", operation)))
    }

    /// The OpenID Connect documents of outbound federation issuers (crate::outbound).
    fn public_document(&self, path: &str) -> Option<Result<serde_json::Value, AwsError>> {
        path.starts_with(crate::outbound::PATH_PREFIX).then(|| {
            crate::outbound::document(&self.core.db, &self.core.public_url(), path)
                .map_err(AwsError::from)
                .and_then(|d| d.ok_or_else(|| AwsError::new("NotFound", "Not Found", 404)))
        })
    }

    fn unsigned_caller(&self, operation: &str, input: &Input, request_id: &str) -> Option<Result<Caller, AwsError>> {
        let caller = if operation == <ops::AssumeRoleWithWebIdentity as Operation<Self>>::NAME {
            self.web_identity_caller(input, request_id)
        } else if operation == <ops::AssumeRoleWithSaml as Operation<Self>>::NAME {
            self.saml_caller(input, request_id)
        } else {
            return None;
        };
        Some(caller.map_err(AwsError::from))
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

/// AWS's answer to a federated call that was not authenticated by its token or assertion.
fn missing_token() -> IamError {
    IamError::Aws(AwsError::new("MissingAuthenticationToken", "Request is missing Authentication Token", 403))
}

fn mfa_failed() -> IamError {
    IamError::Aws(AwsError::access_denied("MultiFactorAuthentication failed with invalid MFA one time pass code. "))
}

/// AWS's limit on `PolicyArns` (managed session policies) per request.
const MAX_POLICY_ARNS: usize = 10;

/// Session policy inputs shared by AssumeRole*, GetFederationToken.
struct SessionPolicies {
    policy: Option<String>,
    arns: Vec<String>,
}

fn session_policy_args(a: &mut Args<'_>, q: &QueryParams) -> SessionPolicies {
    let policy = a.opt("Policy", &SESSION_POLICY).map(str::to_string);
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

impl SessionPolicies {
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
            policy: self.policy.clone(),
            policy_arns: self.arns.clone(),
            has_session_policy: self.passed(),
            tags: Vec::new(),
            transitive: Vec::new(),
            source_identity,
            mfa_time: None,
            task_policy: None,
        }
    }

    /// Parse the inline policy and resolve the managed ones (in `account`, or AWS managed).
    fn check(&self, core: &Core, account: &str) -> Result<()> {
        if let Some(p) = self.policy.as_deref() {
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
        let plain =
            self.policy.as_deref().map(policy_size).unwrap_or(0) + self.arns.iter().map(|a| a.len()).sum::<usize>();
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
}

/// Check the tags passed to a role session against the calling session (`parent`), whose
/// transitive tags the new session inherits.
///
/// AWS's codes and words here are from recorded AWS responses (localstack
/// tests/aws/services/sts/test_sts.snapshot.json, TestSTSAssumeRoleTagging): STS answers
/// `InvalidParameterValue` where IAM answers `InvalidInput` for duplicate keys.
fn plan_tags(parent: Option<&SessionRec>, passed: &[Tag], transitive: &[String]) -> Result<TagPlan> {
    for (i, t) in passed.iter().enumerate() {
        if passed.iter().take(i).any(|o| o.key.eq_ignore_ascii_case(&t.key)) {
            return Err(invalid_parameter("Duplicate tag keys found. Please note that Tag keys are case insensitive."));
        }
    }
    crate::service::check_new_tags(passed)?;
    for k in transitive {
        if !passed.iter().any(|t| t.key.eq_ignore_ascii_case(k)) {
            return Err(invalid_parameter("The specified transitive tag key must be included in the requested tags."));
        }
    }
    let mut tags = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    if let Some(parent) = parent {
        for t in parent.tags.iter().filter(|t| parent.transitive.iter().any(|k| k.eq_ignore_ascii_case(&t.key))) {
            if passed.iter().any(|p| p.key.eq_ignore_ascii_case(&t.key)) {
                return Err(invalid_parameter(
                    "One of the specified transitive tag keys can't be set because it conflicts with a transitive tag key from the calling session.",
                ));
            }
            tags.push(t.clone());
            keys.push(t.key.clone());
        }
    }
    tags.extend(passed.iter().cloned());
    keys.extend(transitive.iter().cloned());
    if tags.len() > 50 {
        return Err(invalid_parameter("The number of session tags, including inherited ones, exceeds 50."));
    }
    Ok(TagPlan { tags, transitive: keys })
}

/// The stored session the caller signs with, when it uses temporary credentials.
fn calling_session(core: &Core, ctx: &RequestContext) -> Result<Option<SessionRec>> {
    if ctx.caller.session.is_none() {
        return Ok(None);
    }
    session::get(&core.db, &ctx.caller.access_key_id)
}

/// `tags` with the session's tags over them (same key, case-insensitive: the session's wins).
fn merge_session_tags(tags: &mut Vec<Tag>, session: &[Tag]) {
    for t in session {
        match tags.iter_mut().find(|e| e.key.eq_ignore_ascii_case(&t.key)) {
            Some(e) => *e = t.clone(),
            None => tags.push(t.clone()),
        }
    }
}

fn credentials_xml(w: &mut XmlWriter, m: &session::Minted) {
    w.start("Credentials")
        .elem("AccessKeyId", &m.access_key_id)
        .elem("SecretAccessKey", &m.secret_access_key)
        .elem("SessionToken", &m.session_token)
        .elem("Expiration", &iso8601(m.expires))
        .end();
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

    #[test]
    fn every_operation_is_listed_once() {
        let expected = vec![
            "AssumeRole",
            "AssumeRoleWithSAML",
            "AssumeRoleWithWebIdentity",
            "AssumeRoot",
            "DecodeAuthorizationMessage",
            "GetAccessKeyInfo",
            "GetCallerIdentity",
            "GetFederationToken",
            "GetSessionToken",
            "GetWebIdentityToken",
        ];
        assert_eq!(OPERATIONS.names(), expected);
    }
}
