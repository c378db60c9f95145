//! The STS operations, one type each: the input is read once into the typed request, and what the
//! plan loads (the role, the calling session, a verified MFA code, a federated identity) is what
//! the run issues the session from.

use rampart_policy::ContextValue;
use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{
    op, AuthzCheck, AuthzPlan, CallerKind, Entry, Input, Operation, Output, RequestContext, ResourcePolicy,
};

use super::session::{self, SessionKind, SessionRec};
use super::{
    account_in_key_id, calling_session, credentials_xml, invalid_parameter, not_authorized, plan_tags, role_of, s,
    saml_refusal, saml_source_identity, session_policy_args, SamlIdentity, SessionPolicies, StsService, TagPlan,
    WebIdentity, ACCESS_KEY, ENCODED_MESSAGE, EXTERNAL_ID, FEDERATED_NAME, PROVIDER_ID, ROLE_ARN, ROLE_SESSION_NAME,
    SAML_ASSERTION, SERIAL, SOURCE_IDENTITY, TOKEN_CODE, WEB_IDENTITY_TOKEN,
};
use crate::db::Lookup;
use crate::denials;
use crate::error::{IamError, Result};
use crate::model::{tables, AccessKeyRec, RoleRec, Tag};
use crate::service::request_tags;
use crate::validate::{Args, TAG_KEY};

/// The operations of STS, each listed once.
pub const OPS: &[Entry<StsService>] = &[
    op::<StsService, GetCallerIdentity>(),
    op::<StsService, AssumeRole>(),
    op::<StsService, GetSessionToken>(),
    op::<StsService, GetFederationToken>(),
    op::<StsService, GetAccessKeyInfo>(),
    op::<StsService, DecodeAuthorizationMessage>(),
    op::<StsService, AssumeRoleWithWebIdentity>(),
    op::<StsService, AssumeRoleWithSaml>(),
];

fn xml(w: XmlWriter) -> Result<Output> {
    Ok(Output::Xml(Some(w.finish())))
}

/// The DurationSeconds a role allows (after the role chaining limit, for AssumeRole).
fn check_max_session(duration: i64, role: &RoleRec) -> Result<()> {
    if duration > role.max_session {
        return Err(IamError::Aws(AwsError::validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        )));
    }
    Ok(())
}

/// A `RoleArn` that does not parse as an ARN (`arn:partition:service:region:account:resource`
/// with partition, service and resource present) is refused before anything is looked up:
/// ValidationError "`x` is invalid" (recorded AWS responses, localstack
/// tests/aws/services/sts/test_sts.snapshot.json, test_sts_invalid_parameters).
fn check_arn_syntax(arn: &str) -> Result<()> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = matches!(parts.as_slice(), ["arn", partition, service, _, _, resource]
        if !partition.is_empty() && !service.is_empty() && !resource.is_empty());
    if ok {
        Ok(())
    } else {
        Err(IamError::Aws(AwsError::validation(format!("{} is invalid", rampart_protocol::echo(arn)))))
    }
}

/// `AssumedRoleUser` of a role session's answer.
fn assumed_role_xml(w: &mut XmlWriter, role: &RoleRec, role_account: &str, session_name: &str) {
    w.start("AssumedRoleUser")
        .elem("AssumedRoleId", &format!("{}:{session_name}", role.id))
        .elem("Arn", &format!("arn:aws:sts::{role_account}:assumed-role/{}/{session_name}", role.name))
        .end();
}

/// The trust policy of `role` as the required resource policy of a check on it.
fn trust_check(action: &str, role: &RoleRec, arn: &str) -> AuthzCheck {
    let mut c = AuthzCheck::new(action, arn);
    c.resource_policy = Some(ResourcePolicy::new(format!("{arn}/trust-policy"), role.trust.as_str(), true));
    c
}

pub struct GetCallerIdentity;

impl Operation<StsService> for GetCallerIdentity {
    const NAME: &'static str = "GetCallerIdentity";
    type Error = IamError;

    fn parse(_: &Input) -> Result<Self> {
        Ok(GetCallerIdentity)
    }

    /// AWS always allows GetCallerIdentity, even under an explicit deny.
    fn authorize(&mut self, _: &StsService, _: &RequestContext) -> Result<AuthzPlan> {
        Ok(AuthzPlan::AlwaysAllowed)
    }

    fn run(self, _: &StsService, ctx: &RequestContext) -> Result<Output> {
        let c = &ctx.caller;
        let mut w = XmlWriter::new();
        w.elem("UserId", &c.principal_id).elem("Account", &c.account_id).elem("Arn", &c.arn);
        xml(w)
    }
}

pub struct AssumeRole {
    role_arn: String,
    session_name: String,
    duration: Option<i64>,
    policies: SessionPolicies,
    tags: Vec<Tag>,
    transitive: Vec<String>,
    external_id: Option<String>,
    serial: Option<String>,
    code: Option<String>,
    source_identity: Option<String>,
    /// What the plan loaded and checked, for the run.
    planned: Option<PlannedRole>,
}

/// The role to assume and the session it is assumed from, as planned.
struct PlannedRole {
    role_account: String,
    role: RoleRec,
    tags: TagPlan,
    packed: Option<usize>,
    /// The calling session (temporary credentials): transitive tags, source identity, MFA.
    parent: Option<SessionRec>,
    /// When the call's own MFA code was verified.
    mfa_time: Option<i64>,
}

impl Operation<StsService> for AssumeRole {
    const NAME: &'static str = "AssumeRole";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let q = input.query();
        let mut a = Args::new(q);
        let role_arn = a.req("RoleArn", &ROLE_ARN).to_string();
        let session_name = a.req("RoleSessionName", &ROLE_SESSION_NAME).to_string();
        let duration = a.int("DurationSeconds", 900, 43_200);
        let policies = session_policy_args(&mut a, q);
        let tags = a.session_tags("Tags");
        let transitive =
            a.list("TransitiveTagKeys", &TAG_KEY, Some(50), false).into_iter().map(str::to_string).collect();
        let external_id = a.opt("ExternalId", &EXTERNAL_ID).map(str::to_string);
        let serial = a.opt("SerialNumber", &SERIAL).map(str::to_string);
        let code = a.opt_unshown("TokenCode", &TOKEN_CODE).map(str::to_string);
        let source_identity = a.opt("SourceIdentity", &SOURCE_IDENTITY).map(str::to_string);
        a.finish()?;
        check_arn_syntax(&role_arn)?;
        if source_identity.as_deref().is_some_and(crate::util::has_aws_prefix) {
            return Err(IamError::Aws(AwsError::validation(
                "1 validation error detected: Value at 'sourceIdentity' failed to satisfy constraint: Member must not start with 'aws:'",
            )));
        }
        Ok(AssumeRole {
            role_arn,
            session_name,
            duration,
            policies,
            tags,
            transitive,
            external_id,
            serial,
            code,
            source_identity,
            planned: None,
        })
    }

    fn authorize(&mut self, svc: &StsService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let core = &svc.core;
        let Some((role_account, role)) = role_of(core, &self.role_arn)? else {
            return Err(not_authorized(ctx, "sts:AssumeRole", &self.role_arn));
        };
        self.policies.check(core, &role_account)?;
        let parent = calling_session(core, ctx)?;
        let tags = plan_tags(parent.as_ref(), &self.tags, &self.transitive)?;
        let packed = self.policies.packed_percent(&tags.tags)?;
        if let (Some(p), Some(si)) =
            (parent.as_ref().and_then(|p| p.source_identity.as_deref()), self.source_identity.as_deref())
        {
            if p != si {
                return Err(invalid_parameter("The source identity of the calling session cannot be changed."));
            }
        }
        let mfa = svc.check_mfa(ctx, self.serial.as_deref(), self.code.as_deref())?;

        let arn = role.arn(&role_account);
        let mut base = trust_check("sts:AssumeRole", &role, &arn);
        base.resource_account = (role_account != ctx.caller.account_id).then(|| role_account.clone());
        base.context.push(("sts:RoleSessionName".into(), s(self.session_name.as_str())));
        if let Some(e) = &self.external_id {
            base.context.push(("sts:ExternalId".into(), s(e.as_str())));
        }
        if let Some(si) = &self.source_identity {
            base.context.push(("sts:SourceIdentity".into(), s(si.as_str())));
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
        if !self.tags.is_empty() {
            let mut tag = request_tags(base.clone(), &self.tags);
            tag.action = "sts:TagSession".into();
            if !tags.transitive.is_empty() {
                tag.context.push(("sts:TransitiveTagKeys".into(), ContextValue::List(tags.transitive.clone())));
            }
            if let Some(first) = checks.first_mut() {
                *first = request_tags(first.clone(), &self.tags);
            }
            checks.push(tag);
        }
        if self.source_identity.is_some() {
            let mut si = base;
            si.action = "sts:SetSourceIdentity".into();
            checks.push(si);
        }
        let mfa_time = mfa.then(|| ctx.time.unix_timestamp());
        self.planned = Some(PlannedRole { role_account, role, tags, packed, parent, mfa_time });
        Ok(AuthzPlan::Checks(checks))
    }

    fn run(self, svc: &StsService, ctx: &RequestContext) -> Result<Output> {
        let core = &svc.core;
        let now = ctx.time.unix_timestamp();
        let Some(PlannedRole { role_account, role, tags, packed, parent, mfa_time }) = self.planned else {
            return Err(not_authorized(ctx, "sts:AssumeRole", &self.role_arn));
        };
        let chained = matches!(ctx.caller.kind, CallerKind::AssumedRole { .. });
        let duration = self.duration.unwrap_or(3600);
        if chained && duration > 3600 {
            return Err(IamError::Aws(AwsError::validation(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
            )));
        }
        check_max_session(duration, &role)?;
        let source_identity = self.source_identity.or_else(|| parent.as_ref().and_then(|p| p.source_identity.clone()));
        // A session assumed with MFA-authenticated credentials stays MFA-authenticated.
        let mfa_time = mfa_time.or_else(|| parent.as_ref().and_then(|p| p.mfa_time));
        let session_name = self.session_name;
        let has_session_policy = self.policies.passed();
        let rec = SessionRec {
            account: role_account.clone(),
            sealed: String::new(),
            issued: now,
            expires: now + duration,
            kind: SessionKind::Role {
                role_name: role.name.clone(),
                role_id: role.id.clone(),
                role_arn: role.arn(&role_account),
                session_name: session_name.clone(),
                chained,
            },
            policy: self.policies.policy,
            policy_arns: self.policies.arns,
            has_session_policy,
            tags: tags.tags,
            transitive: tags.transitive,
            source_identity: source_identity.clone(),
            mfa_time,
            task_policy: None,
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
        assumed_role_xml(&mut w, &role, &role_account, &session_name);
        if let Some(p) = packed {
            w.elem("PackedPolicySize", &p.to_string());
        }
        if let Some(si) = &source_identity {
            w.elem("SourceIdentity", si);
        }
        xml(w)
    }
}

pub struct AssumeRoleWithWebIdentity {
    pub(super) role_arn: String,
    session_name: String,
    /// The token `unsigned_caller` verifies.
    pub(super) token: String,
    duration: Option<i64>,
    policies: SessionPolicies,
    /// The verified identity and the role it assumes, as planned.
    planned: Option<(WebIdentity, String, RoleRec, Option<usize>)>,
}

impl Operation<StsService> for AssumeRoleWithWebIdentity {
    const NAME: &'static str = "AssumeRoleWithWebIdentity";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let q = input.query();
        let mut a = Args::new(q);
        let role_arn = a.req("RoleArn", &ROLE_ARN).to_string();
        let session_name = a.req("RoleSessionName", &ROLE_SESSION_NAME).to_string();
        let token = a.req_unshown("WebIdentityToken", &WEB_IDENTITY_TOKEN).to_string();
        let provider_id = a.opt("ProviderId", &PROVIDER_ID).is_some();
        let duration = a.int("DurationSeconds", 900, 43_200);
        let policies = session_policy_args(&mut a, q);
        a.finish()?;
        if provider_id {
            return Err(invalid_parameter(
                "OAuth 2.0 providers (ProviderId) are not supported; use an OpenID Connect provider.",
            ));
        }
        Ok(AssumeRoleWithWebIdentity { role_arn, session_name, token, duration, policies, planned: None })
    }

    fn authorize(&mut self, svc: &StsService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let core = &svc.core;
        let wi = svc.take_web_identity(&ctx.request_id)?;
        let Some((role_account, role)) = role_of(core, &self.role_arn)? else {
            return Err(IamError::Aws(AwsError::access_denied(
                "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            )));
        };
        self.policies.check(core, &role_account)?;
        let packed = self.policies.packed_percent(&[])?;
        let mut c = trust_check("sts:AssumeRoleWithWebIdentity", &role, &role.arn(&role_account));
        let k = &wi.provider_key;
        c.context.push(("sts:RoleSessionName".into(), s(self.session_name.as_str())));
        c.context.push((format!("{k}:aud").into(), s(wi.aud.as_str())));
        c.context.push((format!("{k}:sub").into(), s(wi.sub.as_str())));
        if !wi.amr.is_empty() {
            c.context.push((format!("{k}:amr").into(), ContextValue::List(wi.amr.clone())));
        }
        c.context.push(("aws:FederatedProvider".into(), s(wi.provider_arn.as_str())));
        self.planned = Some((wi, role_account, role, packed));
        Ok(AuthzPlan::Checks(vec![c]))
    }

    fn run(self, svc: &StsService, ctx: &RequestContext) -> Result<Output> {
        let core = &svc.core;
        let now = ctx.time.unix_timestamp();
        let Some((wi, role_account, role, packed)) = self.planned else { return Err(super::missing_token()) };
        let duration = self.duration.unwrap_or(3600);
        check_max_session(duration, &role)?;
        let session_name = self.session_name;
        let rec = self.policies.federated_session(&role, &role_account, &session_name, now, now + duration, None);
        let m = session::issue(&core.db, &core.creds.sealer(), rec, now)?;
        let mut w = XmlWriter::new();
        credentials_xml(&mut w, &m);
        w.elem("SubjectFromWebIdentityToken", &wi.sub);
        assumed_role_xml(&mut w, &role, &role_account, &session_name);
        if let Some(p) = packed {
            w.elem("PackedPolicySize", &p.to_string());
        }
        w.elem("Provider", &wi.issuer);
        w.elem("Audience", &wi.aud);
        xml(w)
    }
}

/// AssumeRoleWithSAML.
pub struct AssumeRoleWithSaml {
    pub(super) role_arn: String,
    pub(super) provider_arn: String,
    /// The encoded SAML Response `unsigned_caller` verifies.
    pub(super) assertion: String,
    duration: Option<i64>,
    policies: SessionPolicies,
    /// The verified assertion and the role it assumes, as planned.
    planned: Option<PlannedSaml>,
}

struct PlannedSaml {
    id: SamlIdentity,
    role_account: String,
    role: RoleRec,
    source_identity: Option<String>,
    packed: Option<usize>,
}

impl Operation<StsService> for AssumeRoleWithSaml {
    const NAME: &'static str = "AssumeRoleWithSAML";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let q = input.query();
        let mut a = Args::new(q);
        let role_arn = a.req("RoleArn", &ROLE_ARN).to_string();
        let provider_arn = a.req("PrincipalArn", &ROLE_ARN).to_string();
        let assertion = a.req_unshown("SAMLAssertion", &SAML_ASSERTION).to_string();
        let duration = a.int("DurationSeconds", 900, 43_200);
        let policies = session_policy_args(&mut a, q);
        a.finish()?;
        Ok(AssumeRoleWithSaml { role_arn, provider_arn, assertion, duration, policies, planned: None })
    }

    fn authorize(&mut self, svc: &StsService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let core = &svc.core;
        let id = svc.take_saml_identity(&ctx.request_id)?;
        id.assertion.check(ctx.time.unix_timestamp()).map_err(saml_refusal)?;
        let source_identity = saml_source_identity(&id.assertion)?;
        let denied = || IamError::Aws(AwsError::access_denied("Not authorized to perform sts:AssumeRoleWithSAML"));
        let Some((role_account, role)) = role_of(core, &self.role_arn)? else { return Err(denied()) };
        if role_account != id.account {
            return Err(denied());
        }
        self.policies.check(core, &role_account)?;
        let packed = self.policies.packed_percent(&[])?;
        let mut c = trust_check("sts:AssumeRoleWithSAML", &role, &role.arn(&role_account));
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
        self.planned = Some(PlannedSaml { id, role_account, role, source_identity, packed });
        Ok(AuthzPlan::Checks(checks))
    }

    fn run(self, svc: &StsService, ctx: &RequestContext) -> Result<Output> {
        let core = &svc.core;
        let now = ctx.time.unix_timestamp();
        let Some(PlannedSaml { id, role_account, role, source_identity, packed }) = self.planned else {
            return Err(super::missing_token());
        };
        // DurationSeconds (default one hour), never past the assertion's SessionNotOnOrAfter. The
        // SessionDuration attribute is for console sessions and does not apply to the API.
        let duration = self.duration.unwrap_or(3600);
        check_max_session(duration, &role)?;
        let mut expires = now + duration;
        if let Some(end) = id.assertion.session_not_on_or_after {
            expires = expires.min(end.max(now + 1));
        }
        let session_name = id.session_name.as_str();
        let rec =
            self.policies.federated_session(&role, &role_account, session_name, now, expires, source_identity.clone());
        let m = session::issue(&core.db, &core.creds.sealer(), rec, now)?;
        let as_ = &id.assertion;
        let mut w = XmlWriter::new();
        credentials_xml(&mut w, &m);
        assumed_role_xml(&mut w, &role, &role_account, session_name);
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
        xml(w)
    }
}

pub struct GetSessionToken {
    duration: Option<i64>,
    serial: Option<String>,
    code: Option<String>,
    /// When the plan verified the MFA code.
    mfa_time: Option<i64>,
}

impl Operation<StsService> for GetSessionToken {
    const NAME: &'static str = "GetSessionToken";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let duration = a.int("DurationSeconds", 900, 129_600);
        let serial = a.opt("SerialNumber", &SERIAL).map(str::to_string);
        let code = a.opt_unshown("TokenCode", &TOKEN_CODE).map(str::to_string);
        a.finish()?;
        Ok(GetSessionToken { duration, serial, code, mfa_time: None })
    }

    /// No permission is needed: GetSessionToken cannot be controlled by policies.
    fn authorize(&mut self, svc: &StsService, ctx: &RequestContext) -> Result<AuthzPlan> {
        if ctx.caller.session.is_some() {
            return Err(IamError::Aws(AwsError::access_denied("Cannot call GetSessionToken with session credentials")));
        }
        if svc.check_mfa(ctx, self.serial.as_deref(), self.code.as_deref())? {
            self.mfa_time = Some(ctx.time.unix_timestamp());
        }
        Ok(AuthzPlan::AlwaysAllowed)
    }

    fn run(self, svc: &StsService, ctx: &RequestContext) -> Result<Output> {
        let core = &svc.core;
        let now = ctx.time.unix_timestamp();
        let (kind, duration) = match &ctx.caller.kind {
            CallerKind::Root => (SessionKind::Root, self.duration.unwrap_or(3600).min(3600)),
            CallerKind::IamUser { user_name, user_id } => (
                SessionKind::User { user_name: user_name.clone(), user_id: user_id.clone() },
                self.duration.unwrap_or(43_200),
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
            mfa_time: self.mfa_time,
            task_policy: None,
        };
        let m = session::issue(&core.db, &core.creds.sealer(), rec, now)?;
        let mut w = XmlWriter::new();
        credentials_xml(&mut w, &m);
        xml(w)
    }
}

pub struct GetFederationToken {
    name: String,
    duration: Option<i64>,
    policies: SessionPolicies,
    tags: Vec<Tag>,
    /// AWS's PackedPolicySize, as the plan measured it.
    packed: Option<usize>,
}

impl Operation<StsService> for GetFederationToken {
    const NAME: &'static str = "GetFederationToken";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let q = input.query();
        let mut a = Args::new(q);
        let name = a.req("Name", &FEDERATED_NAME).to_string();
        let duration = a.int("DurationSeconds", 900, 129_600);
        let policies = session_policy_args(&mut a, q);
        let tags = a.session_tags("Tags");
        a.finish()?;
        crate::service::check_new_tags(&tags)?;
        Ok(GetFederationToken { name, duration, policies, tags, packed: None })
    }

    fn authorize(&mut self, svc: &StsService, ctx: &RequestContext) -> Result<AuthzPlan> {
        if ctx.caller.session.is_some() {
            return Err(IamError::Aws(AwsError::access_denied(
                "Cannot call GetFederationToken with session credentials",
            )));
        }
        self.policies.check(&svc.core, &ctx.caller.account_id)?;
        self.packed = self.policies.packed_percent(&self.tags)?;
        let arn = format!("arn:aws:sts::{}:federated-user/{}", ctx.caller.account_id, self.name);
        let mut checks = vec![request_tags(AuthzCheck::new("sts:GetFederationToken", arn.clone()), &self.tags)];
        if !self.tags.is_empty() {
            checks.push(request_tags(AuthzCheck::new("sts:TagSession", arn), &self.tags));
        }
        Ok(AuthzPlan::Checks(checks))
    }

    fn run(self, svc: &StsService, ctx: &RequestContext) -> Result<Output> {
        let core = &svc.core;
        let now = ctx.time.unix_timestamp();
        let account = ctx.caller.account_id.clone();
        let (user_name, user_id, duration) = match &ctx.caller.kind {
            CallerKind::Root => (None, None, self.duration.unwrap_or(3600).min(3600)),
            CallerKind::IamUser { user_name, user_id } => {
                (Some(user_name.clone()), Some(user_id.clone()), self.duration.unwrap_or(43_200))
            }
            _ => {
                return Err(IamError::Aws(AwsError::access_denied(
                    "Cannot call GetFederationToken with session credentials",
                )))
            }
        };
        let name = self.name;
        let rec = SessionRec {
            account: account.clone(),
            sealed: String::new(),
            issued: now,
            expires: now + duration,
            kind: SessionKind::Federated { name: name.clone(), user_name, user_id },
            policy: self.policies.policy,
            policy_arns: self.policies.arns,
            // A federated user has no permissions without a session policy.
            has_session_policy: true,
            tags: self.tags,
            transitive: Vec::new(),
            source_identity: None,
            mfa_time: None,
            task_policy: None,
        };
        let m = session::issue(&core.db, &core.creds.sealer(), rec, now)?;
        let mut w = XmlWriter::new();
        credentials_xml(&mut w, &m);
        w.start("FederatedUser")
            .elem("FederatedUserId", &format!("{account}:{name}"))
            .elem("Arn", &format!("arn:aws:sts::{account}:federated-user/{name}"))
            .end();
        // Always present: 0 without session policies or tags (recorded AWS response, localstack
        // tests/aws/services/sts/test_sts.snapshot.json, test_get_federation_token).
        w.elem("PackedPolicySize", &self.packed.unwrap_or(0).to_string());
        xml(w)
    }
}

pub struct GetAccessKeyInfo {
    key: String,
}

impl Operation<StsService> for GetAccessKeyInfo {
    const NAME: &'static str = "GetAccessKeyInfo";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let key = a.req("AccessKeyId", &ACCESS_KEY).to_string();
        a.finish()?;
        Ok(GetAccessKeyInfo { key })
    }

    fn authorize(&mut self, _: &StsService, _: &RequestContext) -> Result<AuthzPlan> {
        Ok(AuthzPlan::Checks(vec![AuthzCheck::new("sts:GetAccessKeyInfo", "*")]))
    }

    fn run(self, svc: &StsService, _: &RequestContext) -> Result<Output> {
        let db = &svc.core.db;
        let key = self.key.as_str();
        let account = match db.get::<AccessKeyRec>(tables::ACCESS_KEYS, key)? {
            Some(k) => Some(k.account),
            None => session::get(db, key)?.map(|s| s.account),
        };
        // AWS answers for any well-formed key ID, known or not: the account is encoded in it.
        let account = account
            .or_else(|| account_in_key_id(key))
            .ok_or_else(|| invalid_parameter("The access key ID is not valid."))?;
        let mut w = XmlWriter::new();
        w.elem("Account", &account);
        xml(w)
    }
}

pub struct DecodeAuthorizationMessage {
    encoded: String,
}

impl Operation<StsService> for DecodeAuthorizationMessage {
    const NAME: &'static str = "DecodeAuthorizationMessage";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let encoded = a.req("EncodedMessage", &ENCODED_MESSAGE).to_string();
        a.finish()?;
        Ok(DecodeAuthorizationMessage { encoded })
    }

    fn authorize(&mut self, _: &StsService, _: &RequestContext) -> Result<AuthzPlan> {
        Ok(AuthzPlan::Checks(vec![AuthzCheck::new("sts:DecodeAuthorizationMessage", "*")]))
    }

    fn run(self, svc: &StsService, ctx: &RequestContext) -> Result<Output> {
        let decoded =
            denials::decoded_message(&svc.core.db, &ctx.caller.account_id, self.encoded.trim())?.ok_or_else(|| {
                IamError::Aws(AwsError::new(
                    "InvalidAuthorizationMessageException",
                    "The encoded authorization message is invalid or has expired.",
                    400,
                ))
            })?;
        let mut w = XmlWriter::new();
        w.elem("DecodedMessage", &decoded);
        xml(w)
    }
}
