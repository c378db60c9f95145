//! The contract between the request pipeline (crates/server) and the services.
//!
//! A service is a table of operations ([`Operations`]), each one type ([`Operation`]). For each
//! call ([`Service::call`]) the operation parses its input once into that typed request, says
//! what it needs authorized (IAM action, resource ARN, resource policy, extra context keys), the
//! pipeline has the [`Authorizer`] decide every check, and only then does the operation run, on
//! the same request and on whatever it loaded to plan. Handlers never check permissions by hand.
#![deny(clippy::string_slice, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::string_slice, clippy::indexing_slicing))]

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

pub use rampart_policy::{Context, ContextValue};
use rampart_policy::{Policy, PolicyType};
pub use rampart_protocol::query::QueryParams;
pub use rampart_protocol::{AwsError, Protocol};
use time::OffsetDateTime;

mod model_operations;
mod operation;
pub use model_operations::{BOTOCORE_VERSION, MODEL_OPERATIONS};
pub use operation::{op, Decide, Entry, Operation, Operations};

/// The operations of `model` (a botocore model name) in the botocore models Rampart is built
/// against; empty for a model not in the table.
pub fn model_operations(model: &str) -> &'static [&'static str] {
    MODEL_OPERATIONS.iter().find(|(m, _)| *m == model).map_or(&[], |(_, ops)| ops)
}

/// The kind of authenticated principal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallerKind {
    /// The account's root user.
    Root,
    /// An IAM user with long-term (or GetSessionToken) credentials.
    IamUser { user_name: String, user_id: String },
    /// A role session (AssumeRole*).
    AssumedRole { role_name: String, role_arn: String, role_id: String, session_name: String },
    /// A federated user (GetFederationToken).
    FederatedUser { user_name: String },
}

/// Session facts for temporary credentials (STS).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session token as presented.
    pub token_issue_time: Option<OffsetDateTime>,
    pub mfa_authenticated: bool,
    pub mfa_auth_time: Option<OffsetDateTime>,
    /// Session policy documents (inline `Policy` and `PolicyArns` resolved to documents).
    pub session_policies: Vec<(String, String)>,
    /// Session tags (`aws:PrincipalTag/…` for role sessions).
    pub tags: Vec<(String, String)>,
    pub source_identity: Option<String>,
    /// Session policies were passed: they bound the session even when `session_policies` is empty
    /// (a federated user without a policy has no permissions).
    pub bounded_by_session_policy: bool,
    /// For federated users: the IAM user who called GetFederationToken (`Some(None)` for the root),
    /// whose identity policies the session policies intersect with.
    pub federated_parent: Option<Option<String>>,
    /// A root session from STS AssumeRoot: its task policy (name, document), whose statements are
    /// evaluated with the root's identity on every call (the task policies deny all but a task).
    pub task_policy: Option<(String, String)>,
}

/// Who is calling, as established by authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub account_id: String,
    /// `arn:aws:iam::A:root`, `arn:aws:iam::A:user/path/name`, `arn:aws:sts::A:assumed-role/R/s`.
    pub arn: String,
    /// The account ID for root, `AIDA…` for users, `AROA…:session` for role sessions.
    pub principal_id: String,
    pub access_key_id: String,
    pub kind: CallerKind,
    /// Present for temporary credentials.
    pub session: Option<SessionInfo>,
}

impl Caller {
    /// The account root, as authenticated by the root access keys.
    pub fn root(account_id: &str, access_key_id: &str) -> Self {
        Caller {
            account_id: account_id.to_string(),
            arn: format!("arn:aws:iam::{account_id}:root"),
            principal_id: account_id.to_string(),
            access_key_id: access_key_id.to_string(),
            kind: CallerKind::Root,
            session: None,
        }
    }

    pub fn is_root(&self) -> bool {
        self.kind == CallerKind::Root
    }
}

/// Everything known about one request, shared by authorization, handler and audit.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub request_id: String,
    pub caller: Caller,
    /// From the SigV4 credential scope.
    pub region: String,
    pub source_ip: IpAddr,
    pub user_agent: String,
    pub time: OffsetDateTime,
    pub secure_transport: bool,
}

/// A decoded request body.
#[derive(Clone, Debug)]
pub enum Input {
    /// awsQuery form parameters (`Action` and `Version` included).
    Query(QueryParams),
    /// awsJson / restJson1 body (path and query parameters of REST routes merged in).
    Json(serde_json::Value),
}

impl Input {
    /// The query parameters; other protocols get an empty set (services know their protocol).
    pub fn query(&self) -> &QueryParams {
        static EMPTY: std::sync::OnceLock<QueryParams> = std::sync::OnceLock::new();
        match self {
            Input::Query(q) => q,
            Input::Json(_) => EMPTY.get_or_init(QueryParams::default),
        }
    }

    /// The JSON body; other protocols get `null`.
    pub fn json(&self) -> &serde_json::Value {
        match self {
            Input::Json(v) => v,
            Input::Query(_) => &serde_json::Value::Null,
        }
    }
}

/// An operation's result, before the protocol envelope.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// awsQuery: the inner XML of `<OpResult>`; `None` for operations without a result element.
    Xml(Option<String>),
    /// JSON protocols: the response body.
    Json(serde_json::Value),
    /// JSON protocols: the response body, already serialized (a hot operation writing its
    /// answer directly). Must be one JSON object.
    JsonText(String),
}

impl Output {
    /// The JSON answer as a `Value` (`Null` for XML answers).
    pub fn json_value(&self) -> serde_json::Value {
        match self {
            Output::Json(v) => v.clone(),
            Output::JsonText(t) => serde_json::from_str(t).unwrap_or(serde_json::Value::Null),
            Output::Xml(_) => serde_json::Value::Null,
        }
    }
}

/// A resource's own policy, consulted with the caller's identity policies. Cheap to clone (the
/// text is shared), so a resource loaded once — a KMS key — lends its policy to every call.
#[derive(Clone, Debug)]
pub struct ResourcePolicy {
    /// A name for explanations, e.g. the key ARN + `/policy/default`.
    pub name: Arc<str>,
    /// The policy document (JSON).
    pub document: Arc<str>,
    /// KMS key policies and role trust policies must allow explicitly.
    pub required: bool,
    /// `document` compiled as a resource-based policy, when its owner keeps one; otherwise the
    /// authorizer compiles the document (through its cache) on each use.
    pub compiled: Option<Arc<Policy>>,
}

impl ResourcePolicy {
    pub fn new(name: impl Into<Arc<str>>, document: impl Into<Arc<str>>, required: bool) -> Self {
        ResourcePolicy { name: name.into(), document: document.into(), required, compiled: None }
    }

    /// [`ResourcePolicy::new`] with the document compiled now as a resource-based policy (not a
    /// role trust policy). A document that does not compile is left for the authorizer to report.
    pub fn compiled(name: impl Into<Arc<str>>, document: impl Into<Arc<str>>, required: bool) -> Self {
        let mut rp = Self::new(name, document, required);
        rp.compiled = Policy::parse(&rp.document, PolicyType::Resource).ok().map(Arc::new);
        rp
    }
}

/// Equal when they name the same document the same way (`compiled` follows from `document`).
impl PartialEq for ResourcePolicy {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.document == other.document && self.required == other.required
    }
}

impl Eq for ResourcePolicy {}

/// A condition key name in an [`AuthzCheck`]: fixed names borrowed, built ones owned.
pub type ContextKey = Cow<'static, str>;

/// One thing the pipeline must authorize before the handler runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthzCheck {
    /// `service:Action`, e.g. `iam:CreateUser`.
    pub action: String,
    /// The resource ARN, or `*` for actions without a resource type.
    pub resource: String,
    /// The resource's owning account when it differs from the caller's.
    pub resource_account: Option<String>,
    pub resource_policy: Option<ResourcePolicy>,
    /// Request-specific context keys (`aws:RequestTag/…`, `aws:TagKeys`, `iam:PassedToService`, …).
    /// Fixed key names written in lower case are taken into the policy context without a copy.
    pub context: Vec<(ContextKey, ContextValue)>,
}

impl AuthzCheck {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        AuthzCheck {
            action: action.into(),
            resource: resource.into(),
            resource_account: None,
            resource_policy: None,
            context: Vec::new(),
        }
    }

    pub fn with_context(mut self, key: impl Into<Cow<'static, str>>, value: ContextValue) -> Self {
        self.context.push((key.into(), value));
        self
    }
}

/// What an operation needs authorized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthzPlan {
    /// Every check must be allowed.
    Checks(Vec<AuthzCheck>),
    /// No permission is needed (e.g. `sts:GetCallerIdentity`, which AWS always allows).
    AlwaysAllowed,
}

/// A service on the pipeline.
pub trait Service: Send + Sync {
    /// The SigV4 signing name / endpoint prefix: `iam`, `sts`, `kms`, `secretsmanager`.
    fn signing_name(&self) -> &'static str;
    /// The `eventSource` of audit records: `iam.amazonaws.com`.
    fn event_source(&self) -> &'static str;
    fn protocol(&self) -> Protocol;
    /// awsQuery XML namespace, e.g. `https://iam.amazonaws.com/doc/2010-05-08/`.
    fn xml_namespace(&self) -> &'static str {
        ""
    }
    /// The service's botocore model name (`kms`, `cloudtrail`): what its wire details are looked
    /// up by. Default: the signing name, which it is for every service so far.
    fn model_name(&self) -> &'static str {
        self.signing_name()
    }
    /// awsJson `X-Amz-Target` prefix as botocore sends it (`TrentService`), from the table generated
    /// from botocore's models (the Smithy SDKs' shorter form is accepted as well; see
    /// [`rampart_protocol::json_target_matches`]).
    fn json_target_prefix(&self) -> &'static str {
        rampart_protocol::json_target_prefix(self.model_name()).unwrap_or("")
    }
    /// The member a JSON error body carries its message in (`message` for KMS, `Message` for
    /// Secrets Manager), from the generated table of botocore's models.
    fn json_error_message(&self) -> rampart_protocol::JsonMessage {
        rampart_protocol::JsonMessage::of_model(self.model_name())
    }
    /// The SigV4 rules this service applies beyond those of every AWS service: S3 signs the
    /// claimed payload hash (`UNSIGNED-PAYLOAD`) and ends presigned URLs at `X-Amz-Expires`.
    /// Default: neither (the body's own hash is always the one signed).
    fn sigv4_options(&self) -> rampart_protocol::sigv4::VerifyOptions {
        rampart_protocol::sigv4::VerifyOptions::default()
    }
    /// restJson1: the operation a request's method and path name (the model's `requestUri`), if
    /// any. Default: none (awsQuery and awsJson services name it in the request).
    fn rest_operation(&self, _method: &str, _path: &str) -> Option<&'static str> {
        None
    }
    /// Whether this service's reads may now call out over the network (KMS once an external key
    /// store exists): the pipeline then runs them off its serving threads too. Default: no.
    fn reads_may_call_out(&self) -> bool {
        false
    }
    /// Whether `operation` is implemented. Others get an AWS-style unknown-operation error.
    fn has_operation(&self, operation: &str) -> bool;
    /// Every implemented operation, sorted (the service's [`Operations`] table).
    fn operation_names(&self) -> Vec<&'static str>;
    /// For operations AWS accepts unsigned (STS `AssumeRoleWithWebIdentity`): authenticate the
    /// request from its input (e.g. a verified identity token) and return the caller.
    /// `None` (the default): the operation must be SigV4-signed.
    fn unsigned_caller(&self, _operation: &str, _input: &Input, _request_id: &str) -> Option<Result<Caller, AwsError>> {
        None
    }
    /// A public, unauthenticated JSON document this service publishes at `path` of the server
    /// (an OpenID Connect issuer's discovery document and key set), if any. Default: none.
    fn public_document(&self, _path: &str) -> Option<Result<serde_json::Value, AwsError>> {
        None
    }
    /// One call: read the input once into the operation's typed request, plan what it needs
    /// authorized, have `decide` allow every check, then run on the same request. Services
    /// implement it with their [`Operations`] table; handlers never check permissions by hand.
    fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: &Input,
        decide: Decide<'_>,
    ) -> Result<Output, AwsError>;
    /// What `operation` would need authorized for `input` (parse and plan, nothing run): for
    /// explanations and tests.
    fn plan(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError>;
}

/// Who made a recorded call, as last-accessed reports count principals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivityPrincipal {
    Root,
    User,
    /// A role session (counted as its role).
    Role,
}

/// One authenticated call as the audit trail recorded it (IAM's last-accessed reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    /// `eventTime`, Unix seconds.
    pub time: i64,
    pub kind: ActivityPrincipal,
    /// The caller's ARN: the IAM user's, the session's role (its session issuer), or root's.
    pub principal: String,
    /// The service namespace (`iam` for `iam.amazonaws.com`).
    pub namespace: String,
    /// `eventName`: the action.
    pub action: String,
    pub region: String,
}

/// The recorded calls of an account (implemented by crates/trail, wired by the server).
pub trait ActivityLog: Send + Sync {
    /// Visit the authenticated calls recorded for `account` whose time is in `[since, until]`,
    /// newest first; allowed and denied attempts alike.
    fn visit(&self, account: &str, since: i64, until: i64, f: &mut dyn FnMut(&Activity)) -> Result<(), String>;
}

/// Decides authorization checks (implemented by crates/iam, which knows identities and their policies).
pub trait Authorizer: Send + Sync {
    /// `Ok(())` when allowed; otherwise AWS's `AccessDenied` (or the service's equivalent code).
    /// Takes the check by value: its context moves into the policy context without copies.
    fn check(&self, ctx: &RequestContext, operation_service: &str, check: AuthzCheck) -> Result<(), AwsError>;
}

/// An organization as other services see it (crates/iam implements [`Organizations`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgView {
    /// `o-…`.
    pub id: String,
    pub management_account: String,
    /// Every account of the organization, the management account included.
    pub accounts: Vec<String>,
    /// Service principals with trusted access (`cloudtrail.amazonaws.com`, …).
    pub trusted_services: Vec<String>,
    /// Delegated administrators: (account, the service principals it administers).
    pub delegated_admins: Vec<(String, Vec<String>)>,
}

impl OrgView {
    /// Whether `account` is a delegated administrator of `service_principal`.
    pub fn is_delegated_admin(&self, account: &str, service_principal: &str) -> bool {
        self.delegated_admins.iter().any(|(a, sps)| a == account && sps.iter().any(|s| s == service_principal))
    }

    /// The delegated administrators of `service_principal`.
    pub fn delegated_admins_of(&self, service_principal: &str) -> Vec<&str> {
        self.delegated_admins
            .iter()
            .filter(|(_, sps)| sps.iter().any(|s| s == service_principal))
            .map(|(a, _)| a.as_str())
            .collect()
    }
}

/// What other services may read of, and change in, AWS Organizations: the organization an account
/// belongs to, and the delegated administrators of a service (CloudTrail's
/// RegisterOrganizationDelegatedAdmin registers through Organizations, as in AWS). Implemented
/// by crates/iam; the server wires it into the services that need it.
pub trait Organizations: Send + Sync {
    /// The organization `account` belongs to, if any.
    fn organization_of(&self, account: &str) -> Result<Option<OrgView>, AwsError>;
    /// Register `account` (a member of organization `org_id`) as a delegated administrator of
    /// `service_principal`, at `at` (Unix seconds). `Ok(false)` when it already was one.
    fn register_delegated_admin(
        &self,
        org_id: &str,
        account: &str,
        service_principal: &str,
        at: i64,
    ) -> Result<bool, AwsError>;
    /// Deregister it. `Ok(false)` when it was not one.
    fn deregister_delegated_admin(
        &self,
        org_id: &str,
        account: &str,
        service_principal: &str,
    ) -> Result<bool, AwsError>;
}

/// A secret held in memory: wiped when dropped, never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(zeroize::Zeroizing<String>);

impl SecretString {
    pub fn new(secret: String) -> Self {
        SecretString(zeroize::Zeroizing::new(secret))
    }

    /// The secret itself (for signing or comparing; never for logs).
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl From<String> for SecretString {
    fn from(secret: String) -> Self {
        SecretString::new(secret)
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A credential found by access key ID. The secret and the session token are wiped when it is
/// dropped, and `Debug` leaves them out.
#[derive(Clone)]
pub struct Credential {
    pub secret_access_key: SecretString,
    /// Required for temporary credentials: must equal `X-Amz-Security-Token`.
    pub session_token: Option<SecretString>,
    pub expires_at: Option<OffsetDateTime>,
    /// `false` for Inactive keys.
    pub active: bool,
    pub caller: Caller,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .field("expires_at", &self.expires_at)
            .field("active", &self.active)
            .field("caller", &self.caller)
            .finish()
    }
}

/// Resolves access key IDs (implemented by crates/iam).
pub trait CredentialStore: Send + Sync {
    fn lookup(&self, access_key_id: &str) -> Result<Option<Credential>, AwsError>;
    /// Note that a key was used (GetAccessKeyLastUsed). Best effort.
    fn record_use(&self, _access_key_id: &str, _service: &str, _region: &str, _at: OffsetDateTime) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credential {
            secret_access_key: "wJalrXUtnFEMIsecretvalue".to_string().into(),
            session_token: Some("FwoGZXIvYXdzEsessiontoken".to_string().into()),
            expires_at: None,
            active: true,
            caller: Caller::root("111122223333", "AKIAEXAMPLE"),
        };
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("wJalrXUtnFEMIsecretvalue"), "{shown}");
        assert!(!shown.contains("FwoGZXIvYXdzEsessiontoken"), "{shown}");
        assert!(shown.contains("AKIAEXAMPLE") && shown.contains("<redacted>"), "{shown}");
        let s = SecretString::from("hunter2hunter2".to_string());
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.expose(), "hunter2hunter2");
    }
}
