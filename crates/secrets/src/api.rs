//! The Secrets Manager operations, each one type listed once in [`OPERATIONS`]: its input is read
//! and validated once ([`Operation::parse`]), planned on that request ([`Operation::authorize`],
//! which keeps the secret it looked up) and run on the same request and the same secret
//! ([`Operation::run`]): a call reads its secret once and works on what was authorized.

use std::sync::Arc;

use rampart_protocol::AwsError;
use rampart_service::{
    op, AuthzCheck, AuthzPlan, ContextValue, Entry, Input, Operation, Operations, Output, RequestContext,
    ResourcePolicy,
};

use crate::error::{Result, SmError};
use crate::input::{check_len, In};
use crate::model::{SecretRec, AWSCURRENT};
use crate::ops::{no_token, read_value, stages_arg, token, valid_name, valid_tags, SecretValue};
use crate::password::PasswordSpec;
use crate::replication::replica_regions;
use crate::rotation::{parse_rules, RotationRules};
use crate::{new_secret_arn, SecretsManager};

/// The state the operations run on (rotation needs the `Arc` to run in the background).
type Sm = Arc<SecretsManager>;

/// Every operation Rampart implements (replication between the Regions of one server, not
/// between accounts: no AssociateCrossAccountReplica / DisassociateCrossAccountReplica), each
/// listed once.
pub(crate) static OPERATIONS: Operations<Sm> = Operations::new(&[OPS]);

const OPS: &[Entry<Sm>] = &[
    op::<Sm, BatchGetSecretValue>(),
    op::<Sm, CancelRotateSecret>(),
    op::<Sm, CreateSecret>(),
    op::<Sm, DeleteResourcePolicy>(),
    op::<Sm, DeleteSecret>(),
    op::<Sm, DescribeSecret>(),
    op::<Sm, GetRandomPassword>(),
    op::<Sm, GetResourcePolicy>(),
    op::<Sm, GetSecretValue>(),
    op::<Sm, ListSecretVersionIds>(),
    op::<Sm, ListResourcePolicies>(),
    op::<Sm, ListSecrets>(),
    op::<Sm, PutResourcePolicy>(),
    op::<Sm, PutSecretValue>(),
    op::<Sm, RemoveRegionsFromReplication>(),
    op::<Sm, ReplicateSecretToRegions>(),
    op::<Sm, RestoreSecret>(),
    op::<Sm, RotateSecret>(),
    op::<Sm, StopReplicationToReplica>(),
    op::<Sm, TagResource>(),
    op::<Sm, UntagResource>(),
    op::<Sm, UpdateSecret>(),
    op::<Sm, UpdateSecretVersionStage>(),
    op::<Sm, ValidateResourcePolicy>(),
];

fn s(v: impl Into<String>) -> ContextValue {
    ContextValue::String(v.into())
}

fn body(input: &Input) -> In<'_> {
    In(input.json())
}

fn json(v: serde_json::Value) -> Result<Output> {
    Ok(Output::Json(v))
}

fn one(c: AuthzCheck) -> Result<AuthzPlan> {
    Ok(AuthzPlan::Checks(vec![c]))
}

/// `secretsmanager:{action}` without a resource type.
fn any(action: &str) -> Result<AuthzPlan> {
    one(AuthzCheck::new(format!("secretsmanager:{action}"), "*"))
}

/// `aws:RequestTag/…` and `aws:TagKeys` of the tags a request adds.
fn request_tags(c: &mut AuthzCheck, tags: &[(String, String)]) {
    for (k, v) in tags {
        c.context.push((format!("aws:RequestTag/{k}").into(), s(v.clone())));
    }
    c.context.push(("aws:TagKeys".into(), ContextValue::List(tags.iter().map(|(k, _)| k.clone()).collect())));
}

/// The check for an operation on one secret: its real ARN, resource policy and tags when it
/// exists; otherwise what was asked for (AWS authorizes that, then reports the secret missing).
fn secret_check(ctx: &RequestContext, action: &str, id: &str, rec: Option<&SecretRec>) -> AuthzCheck {
    let action = format!("secretsmanager:{action}");
    let Some(rec) = rec else {
        let mut c = AuthzCheck::new(action, id);
        c.context.push(("secretsmanager:SecretId".into(), s(id)));
        return c;
    };
    let mut c = AuthzCheck::new(action, rec.arn.clone());
    if rec.account != ctx.caller.account_id {
        c.resource_account = Some(rec.account.clone());
    }
    if let Some(p) = &rec.policy {
        c.resource_policy = Some(ResourcePolicy::new(rec.arn.as_str(), p.as_str(), false));
    }
    c.context.push(("secretsmanager:SecretId".into(), s(rec.arn.clone())));
    for (k, v) in &rec.tags {
        c.context.push((format!("aws:ResourceTag/{k}").into(), s(v.clone())));
        c.context.push((format!("secretsmanager:ResourceTag/{k}").into(), s(v.clone())));
    }
    if let Some(l) = &rec.rotation.lambda_arn {
        c.context.push(("secretsmanager:resource/AllowRotationLambdaArn".into(), s(l.clone())));
    }
    c
}

/// The ARN of the KMS key a request names, for `secretsmanager:KmsKeyArn`; kept so the run
/// does not ask KMS again (and reports a key KMS does not know at the point it always did).
fn resolve_key(sm: &SecretsManager, ctx: &RequestContext, key: Option<&str>) -> Option<Result<String, AwsError>> {
    key.map(|k| sm.keys.key_arn(ctx, Some(k)))
}

/// `secretsmanager:KmsKeyArn`: the resolved ARN, or the key as given when KMS does not know it.
fn push_key_arn(c: &mut AuthzCheck, given: Option<&str>, resolved: Option<&Result<String, AwsError>>) {
    if let (Some(k), Some(r)) = (given, resolved) {
        let arn = r.as_ref().map_or_else(|_| k.to_string(), String::clone);
        c.context.push(("secretsmanager:KmsKeyArn".into(), s(arn)));
    }
}

/// Check, during the run, that the key named exists (with what planning learned from KMS).
pub(crate) fn require_key(
    sm: &SecretsManager,
    ctx: &RequestContext,
    key: Option<&str>,
    resolved: Option<Result<String, AwsError>>,
) -> Result<()> {
    match (key, resolved) {
        (None, _) => Ok(()),
        (Some(_), Some(r)) => r.map(|_| ()).map_err(SmError::from),
        (Some(k), None) => sm.keys.key_arn(ctx, Some(k)).map(|_| ()).map_err(SmError::from),
    }
}

/// The secret a call names (`SecretId`) and, once planned, what was found under that name.
pub(crate) struct Target {
    pub(crate) id: String,
    /// `Some` once planning looked the secret up.
    found: Option<Option<SecretRec>>,
}

impl Target {
    fn parse(body: In<'_>) -> Result<Self> {
        let id = body.req_str("SecretId")?;
        crate::ops::valid_secret_id(id)?;
        Ok(Target { id: id.to_string(), found: None })
    }

    /// `secretsmanager:{action}` on the secret, keeping what was found for the run.
    fn check(&mut self, sm: &SecretsManager, ctx: &RequestContext, action: &str) -> Result<AuthzCheck> {
        let rec = sm.find(ctx, &self.id)?;
        let c = secret_check(ctx, action, &self.id, rec.as_ref());
        self.found = Some(rec);
        Ok(c)
    }

    /// What planning found (looked up now only if the call was not planned).
    fn found(self, sm: &SecretsManager, ctx: &RequestContext) -> Result<Option<SecretRec>> {
        match self.found {
            Some(f) => Ok(f),
            None => sm.find(ctx, &self.id),
        }
    }

    /// For changes (and GetResourcePolicy): AWS refuses them on a replica ("call must be made in
    /// primary secret's region").
    fn primary(self, sm: &SecretsManager, ctx: &RequestContext) -> Result<Option<SecretRec>> {
        match self.found(sm, ctx)? {
            Some(rec) if rec.is_replica() => Err(SmError::replica()),
            f => Ok(f),
        }
    }
}

/// A secret that exists and is not scheduled for deletion.
pub(crate) fn live(rec: Option<SecretRec>) -> Result<SecretRec> {
    let rec = rec.ok_or_else(SmError::not_found)?;
    if rec.is_deleted() {
        return Err(SmError::deleted());
    }
    Ok(rec)
}

/// The operations on one secret whose plan is the secret check alone and whose run needs only
/// the secret: as found (`found`), or refused on a replica (`primary`).
macro_rules! on_secret {
    ($(#[$doc:meta])* $name:ident, $lookup:ident, |$sm:ident, $rec:ident| $run:expr) => {
        $(#[$doc])*
        pub struct $name {
            target: Target,
        }

        impl Operation<Sm> for $name {
            const NAME: &'static str = stringify!($name);
            type Error = SmError;

            fn parse(input: &Input) -> Result<Self> {
                Ok($name { target: Target::parse(body(input))? })
            }

            fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
                one(self.target.check(sm, ctx, Self::NAME)?)
            }

            fn run(self, $sm: &Sm, ctx: &RequestContext) -> Result<Output> {
                let $rec = self.target.$lookup($sm, ctx)?;
                let out: Result<serde_json::Value> = $run;
                json(out?)
            }
        }
    };
}

on_secret!(
    /// DescribeSecret: also for secrets scheduled for deletion, and replicas.
    DescribeSecret, found, |sm, rec| rec.ok_or_else(SmError::not_found).map(|r| sm.describe(&r))
);
on_secret!(
    /// RestoreSecret: of a secret scheduled for deletion (or not).
    RestoreSecret, primary, |sm, rec| sm.restore_secret(rec.ok_or_else(SmError::not_found)?)
);
on_secret!(CancelRotateSecret, primary, |sm, rec| sm.cancel_rotate_secret(live(rec)?));
on_secret!(GetResourcePolicy, primary, |sm, rec| live(rec).map(|r| sm.get_resource_policy(&r)));
on_secret!(DeleteResourcePolicy, primary, |sm, rec| sm.delete_resource_policy(live(rec)?));

/// ListResourcePolicies: the names of the secret's resource policies. A secret has one, the one
/// PutResourcePolicy sets, named `default` (AWS lists `default` first, then any others by name).
pub struct ListResourcePolicies {
    target: Target,
    max: usize,
    next_token: Option<String>,
}

impl Operation<Sm> for ListResourcePolicies {
    const NAME: &'static str = "ListResourcePolicies";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let target = Target::parse(body)?;
        let max = SecretsManager::max_results(body, 100)?;
        let next_token = body.str("NextToken")?.map(str::to_string);
        if let Some(t) = &next_token {
            check_len("NextToken", t, 1, 4096)?;
        }
        Ok(ListResourcePolicies { target, max, next_token })
    }

    fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(self.target.check(sm, ctx, Self::NAME)?)
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        let rec = live(self.target.primary(sm, ctx)?)?;
        json(crate::ops::list_resource_policies(&rec, self.max, self.next_token.as_deref())?)
    }
}

/// StopReplicationToReplica, called on a replica in its Region: promotes it to a standalone secret
/// (its own copy of every version, encrypted under its own KMS key) and removes it from the
/// primary's replication.
pub struct StopReplicationToReplica {
    target: Target,
}

impl Operation<Sm> for StopReplicationToReplica {
    const NAME: &'static str = "StopReplicationToReplica";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(StopReplicationToReplica { target: Target::parse(body(input))? })
    }

    fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(self.target.check(sm, ctx, Self::NAME)?)
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        let rec = self.target.found(sm, ctx)?.ok_or_else(SmError::not_found)?;
        json(sm.stop_replication_to_replica(ctx, rec)?)
    }
}

pub struct ListSecrets {
    pub(crate) filters: Vec<(String, Vec<String>)>,
    pub(crate) include_deleted: bool,
    pub(crate) descending: bool,
    pub(crate) max: usize,
    pub(crate) next_token: Option<String>,
}

impl Operation<Sm> for ListSecrets {
    const NAME: &'static str = "ListSecrets";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let filters = SecretsManager::parse_filters(body)?;
        let include_deleted = body.bool("IncludePlannedDeletion")?.unwrap_or(false);
        let descending = match body.str("SortOrder")? {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(o) => {
                return Err(SmError::Validation(format!(
                    "1 validation error detected: Value '{}' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [asc, desc]",
                    rampart_protocol::echo(o)
                )))
            }
        };
        let max = SecretsManager::max_results(body, 100)?;
        let next_token = body.str("NextToken")?.map(str::to_string);
        Ok(ListSecrets { filters, include_deleted, descending, max, next_token })
    }

    fn authorize(&mut self, _: &Sm, _: &RequestContext) -> Result<AuthzPlan> {
        any(Self::NAME)
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        json(sm.list_secrets(ctx, self)?)
    }
}

pub struct GetRandomPassword {
    spec: PasswordSpec,
}

impl Operation<Sm> for GetRandomPassword {
    const NAME: &'static str = "GetRandomPassword";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let spec = PasswordSpec {
            length: body.int("PasswordLength")?,
            exclude_characters: body.str("ExcludeCharacters")?.unwrap_or("").to_string(),
            exclude_numbers: body.bool("ExcludeNumbers")?.unwrap_or(false),
            exclude_punctuation: body.bool("ExcludePunctuation")?.unwrap_or(false),
            exclude_uppercase: body.bool("ExcludeUppercase")?.unwrap_or(false),
            exclude_lowercase: body.bool("ExcludeLowercase")?.unwrap_or(false),
            include_space: body.bool("IncludeSpace")?.unwrap_or(false),
            require_each_included_type: body.bool("RequireEachIncludedType")?,
        };
        check_len("ExcludeCharacters", &spec.exclude_characters, 0, 4096)?;
        Ok(GetRandomPassword { spec })
    }

    fn authorize(&mut self, _: &Sm, _: &RequestContext) -> Result<AuthzPlan> {
        any(Self::NAME)
    }

    fn run(self, _: &Sm, _: &RequestContext) -> Result<Output> {
        let p = crate::password::generate(&self.spec)?;
        json(serde_json::json!({"RandomPassword": p.as_str()}))
    }
}

/// What BatchGetSecretValue reads: named secrets, or a filtered page.
pub(crate) enum BatchTargets {
    Ids(Vec<String>),
    Filters { filters: Vec<(String, Vec<String>)>, max: usize, next_token: Option<String> },
}

pub struct BatchGetSecretValue {
    pub(crate) targets: BatchTargets,
}

impl Operation<Sm> for BatchGetSecretValue {
    const NAME: &'static str = "BatchGetSecretValue";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let ids = body.str_list("SecretIdList")?;
        let filters = SecretsManager::parse_filters(body)?;
        let has_filters = body.get("Filters").is_some();
        let targets = match (ids, has_filters) {
            (Some(_), true) | (None, false) => {
                return Err(SmError::InvalidParameter(
                    "Either 'SecretIdList' or 'Filters' must be provided, but not both.".into(),
                ))
            }
            (Some(ids), false) => {
                if ids.is_empty() || ids.len() > 20 {
                    return Err(SmError::Validation(
                        "1 validation error detected: Value at 'secretIdList' failed to satisfy constraint: Member must have length between 1 and 20".into(),
                    ));
                }
                if body.get("MaxResults").is_some() {
                    return Err(SmError::InvalidParameter(
                        "'Filters' not specified. 'Filters' must also be specified when 'MaxResults' is provided."
                            .into(),
                    ));
                }
                BatchTargets::Ids(ids.into_iter().map(str::to_string).collect())
            }
            (None, true) => {
                let max = SecretsManager::max_results(body, 20)?;
                let next_token = body.str("NextToken")?.map(str::to_string);
                BatchTargets::Filters { filters, max, next_token }
            }
        };
        Ok(BatchGetSecretValue { targets })
    }

    /// Each secret's GetSecretValue is checked during the run, one by one (a denied secret is
    /// reported in `Errors`, not as the call's failure).
    fn authorize(&mut self, _: &Sm, _: &RequestContext) -> Result<AuthzPlan> {
        any(Self::NAME)
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        json(sm.batch_get_secret_value(ctx, self.targets)?)
    }
}

pub struct ValidateResourcePolicy {
    /// The secret the policy is meant for, if named.
    target: Option<Target>,
    doc: String,
}

impl Operation<Sm> for ValidateResourcePolicy {
    const NAME: &'static str = "ValidateResourcePolicy";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let target = match body.str("SecretId")? {
            Some(id) => {
                crate::ops::valid_secret_id(id)?;
                Some(Target { id: id.to_string(), found: None })
            }
            None => None,
        };
        let doc = body.req_str("ResourcePolicy")?.to_string();
        Ok(ValidateResourcePolicy { target, doc })
    }

    fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
        match &mut self.target {
            Some(t) => one(t.check(sm, ctx, Self::NAME)?),
            None => any(Self::NAME),
        }
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        if let Some(t) = self.target {
            live(t.found(sm, ctx)?)?;
        }
        json(SecretsManager::validate_resource_policy(&self.doc))
    }
}

pub struct CreateSecret {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) kms_key_id: Option<String>,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) replica_regions: Vec<(String, Option<String>)>,
    pub(crate) force_overwrite: bool,
    pub(crate) value: Option<SecretValue>,
    pub(crate) token: Option<String>,
    /// KMS's answer for `kms_key_id`, from planning.
    pub(crate) key_arn: Option<Result<String, AwsError>>,
}

impl Operation<Sm> for CreateSecret {
    const NAME: &'static str = "CreateSecret";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let name = body.req_str("Name")?;
        let description = body.str("Description")?;
        let kms_key_id = body.str("KmsKeyId")?;
        let tags = body.tags("Tags")?.unwrap_or_default();
        let replica_regions = replica_regions(body)?;
        valid_name(name)?;
        if let Some(d) = description {
            check_len("Description", d, 0, 2048)?;
        }
        if let Some(k) = kms_key_id {
            check_len("KmsKeyId", k, 0, 2048)?;
        }
        valid_tags(&tags)?;
        let force_overwrite = body.bool("ForceOverwriteReplicaSecret")?.unwrap_or(false);
        let value = read_value(body)?;
        let token = token(body)?;
        if value.is_some() && token.is_none() {
            return Err(no_token(false));
        }
        Ok(CreateSecret {
            name: name.to_string(),
            description: description.map(str::to_string),
            kms_key_id: kms_key_id.map(str::to_string),
            tags,
            replica_regions,
            force_overwrite,
            value,
            token,
            key_arn: None,
        })
    }

    fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
        // A secret cannot be replicated to its own Region (the request's).
        if self.replica_regions.iter().any(|(r, _)| *r == ctx.region) {
            return Err(SmError::InvalidParameter("Invalid replica region.".into()));
        }
        let arn = new_secret_arn(ctx, &self.name);
        let mut c = AuthzCheck::new("secretsmanager:CreateSecret", arn.clone());
        c.context.push(("secretsmanager:Name".into(), s(self.name.clone())));
        if let Some(d) = &self.description {
            c.context.push(("secretsmanager:Description".into(), s(d.clone())));
        }
        self.key_arn = resolve_key(sm, ctx, self.kms_key_id.as_deref());
        push_key_arn(&mut c, self.kms_key_id.as_deref(), self.key_arn.as_ref());
        let mut checks = Vec::new();
        if self.tags.is_empty() {
            checks.push(c);
        } else {
            request_tags(&mut c, &self.tags);
            let mut t = AuthzCheck::new("secretsmanager:TagResource", arn.clone());
            request_tags(&mut t, &self.tags);
            checks.push(c);
            checks.push(t);
        }
        // Replicating on creation also needs permission to replicate (as AWS requires).
        if !self.replica_regions.is_empty() {
            checks.push(AuthzCheck::new("secretsmanager:ReplicateSecretToRegions", arn));
        }
        Ok(AuthzPlan::Checks(checks))
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        json(sm.create_secret(ctx, self)?)
    }
}

pub struct GetSecretValue {
    target: Target,
    version_id: Option<String>,
    stage: Option<String>,
}

impl Operation<Sm> for GetSecretValue {
    const NAME: &'static str = "GetSecretValue";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let target = Target::parse(body)?;
        let version_id = body.str("VersionId")?.map(str::to_string);
        let stage = body.str("VersionStage")?.map(str::to_string);
        Ok(GetSecretValue { target, version_id, stage })
    }

    fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut c = self.target.check(sm, ctx, Self::NAME)?;
        if let Some(v) = &self.version_id {
            c.context.push(("secretsmanager:VersionId".into(), s(v.clone())));
        }
        if let Some(v) = &self.stage {
            c.context.push(("secretsmanager:VersionStage".into(), s(v.clone())));
        }
        one(c)
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        let rec = live(self.target.found(sm, ctx)?)?;
        json(sm.get_secret_value(ctx, &rec, self.version_id.as_deref(), self.stage.as_deref())?)
    }
}

pub struct PutSecretValue {
    target: Target,
    value: SecretValue,
    token: Option<String>,
    stages: Vec<String>,
}

impl Operation<Sm> for PutSecretValue {
    const NAME: &'static str = "PutSecretValue";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let target = Target::parse(body)?;
        let value = read_value(body)?
            .ok_or_else(|| SmError::InvalidRequest("You must provide either SecretString or SecretBinary.".into()))?;
        let token = token(body)?;
        if token.is_none() {
            return Err(no_token(false));
        }
        let stages = stages_arg(body)?.unwrap_or_else(|| vec![AWSCURRENT.to_string()]);
        Ok(PutSecretValue { target, value, token, stages })
    }

    fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(self.target.check(sm, ctx, Self::NAME)?)
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        let PutSecretValue { target, value, token, stages } = self;
        let rec = live(target.primary(sm, ctx)?)?;
        json(sm.put_secret_value(ctx, rec, &value, token, stages)?)
    }
}

pub struct UpdateSecret {
    target: Target,
    description: Option<String>,
    kms_key_id: Option<String>,
    value: Option<SecretValue>,
    token: Option<String>,
    /// KMS's answer for `kms_key_id`, from planning.
    key_arn: Option<Result<String, AwsError>>,
}

impl Operation<Sm> for UpdateSecret {
    const NAME: &'static str = "UpdateSecret";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let target = Target::parse(body)?;
        let description = body.str("Description")?.map(str::to_string);
        let kms_key_id = body.str("KmsKeyId")?.map(str::to_string);
        if let Some(d) = &description {
            check_len("Description", d, 0, 2048)?;
        }
        let value = read_value(body)?;
        let token = token(body)?;
        if value.is_some() && token.is_none() {
            return Err(no_token(false));
        }
        Ok(UpdateSecret { target, description, kms_key_id, value, token, key_arn: None })
    }

    fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut c = self.target.check(sm, ctx, Self::NAME)?;
        if let Some(d) = &self.description {
            c.context.push(("secretsmanager:Description".into(), s(d.clone())));
        }
        self.key_arn = resolve_key(sm, ctx, self.kms_key_id.as_deref());
        push_key_arn(&mut c, self.kms_key_id.as_deref(), self.key_arn.as_ref());
        one(c)
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        let UpdateSecret { target, description, kms_key_id, value, token, key_arn } = self;
        let rec = live(target.primary(sm, ctx)?)?;
        require_key(sm, ctx, kms_key_id.as_deref(), key_arn)?;
        json(sm.update_secret(ctx, rec, description, kms_key_id, value, token)?)
    }
}

pub struct UpdateSecretVersionStage {
    target: Target,
    stage: String,
    remove_from: Option<String>,
    move_to: Option<String>,
}

impl Operation<Sm> for UpdateSecretVersionStage {
    const NAME: &'static str = "UpdateSecretVersionStage";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let target = Target::parse(body)?;
        let stage = body.req_str("VersionStage")?.to_string();
        check_len("VersionStage", &stage, 1, 256)?;
        let remove_from = body.str("RemoveFromVersionId")?.map(str::to_string);
        let move_to = body.str("MoveToVersionId")?.map(str::to_string);
        Ok(UpdateSecretVersionStage { target, stage, remove_from, move_to })
    }

    fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut c = self.target.check(sm, ctx, Self::NAME)?;
        c.context.push(("secretsmanager:VersionStage".into(), s(self.stage.clone())));
        one(c)
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        let UpdateSecretVersionStage { target, stage, remove_from, move_to } = self;
        let rec = live(target.primary(sm, ctx)?)?;
        json(sm.update_secret_version_stage(rec, &stage, remove_from.as_deref(), move_to.as_deref())?)
    }
}

pub struct ListSecretVersionIds {
    target: Target,
    include_deprecated: bool,
    max: usize,
    next_token: Option<String>,
}

impl Operation<Sm> for ListSecretVersionIds {
    const NAME: &'static str = "ListSecretVersionIds";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let target = Target::parse(body)?;
        let include_deprecated = body.bool("IncludeDeprecated")?.unwrap_or(false);
        let max = SecretsManager::max_results(body, 100)?;
        let next_token = body.str("NextToken")?.map(str::to_string);
        Ok(ListSecretVersionIds { target, include_deprecated, max, next_token })
    }

    fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(self.target.check(sm, ctx, Self::NAME)?)
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        let ListSecretVersionIds { target, include_deprecated, max, next_token } = self;
        let rec = live(target.found(sm, ctx)?)?;
        json(SecretsManager::list_secret_version_ids(&rec, include_deprecated, max, next_token.as_deref())?)
    }
}

pub struct DeleteSecret {
    target: Target,
    window: Option<i64>,
    /// As given (the condition key is set only when the request names it).
    force: Option<bool>,
}

impl Operation<Sm> for DeleteSecret {
    const NAME: &'static str = "DeleteSecret";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let target = Target::parse(body)?;
        let window = body.int("RecoveryWindowInDays")?;
        let force = body.bool("ForceDeleteWithoutRecovery")?;
        if let Some(w) = window {
            if !(7..=30).contains(&w) {
                return Err(SmError::InvalidParameter(
                    "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).".into(),
                ));
            }
        }
        if force == Some(true) && window.is_some() {
            return Err(SmError::InvalidParameter(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.".into(),
            ));
        }
        Ok(DeleteSecret { target, window, force })
    }

    fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut c = self.target.check(sm, ctx, Self::NAME)?;
        if let Some(d) = self.window {
            c.context.push(("secretsmanager:RecoveryWindowInDays".into(), s(d.to_string())));
        }
        if let Some(f) = self.force {
            c.context.push(("secretsmanager:ForceDeleteWithoutRecovery".into(), s(f.to_string())));
        }
        one(c)
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        let DeleteSecret { target, window, force } = self;
        let id = target.id.clone();
        let rec = target.primary(sm, ctx)?;
        json(sm.delete_secret(ctx, &id, rec, window, force.unwrap_or(false))?)
    }
}

pub struct RotateSecret {
    target: Target,
    token: Option<String>,
    lambda: Option<String>,
    rules: Option<RotationRules>,
    immediately: bool,
}

impl Operation<Sm> for RotateSecret {
    const NAME: &'static str = "RotateSecret";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let target = Target::parse(body)?;
        let lambda = body.str("RotationLambdaARN")?;
        let immediately = body.bool("RotateImmediately")?.unwrap_or(true);
        let token = match body.str("ClientRequestToken")? {
            Some(t) => {
                if !(32..=64).contains(&t.chars().count()) {
                    return Err(SmError::InvalidParameter("ClientRequestToken must be 32-64 characters long.".into()));
                }
                Some(t.to_string())
            }
            None => return Err(no_token(true)),
        };
        if let Some(l) = lambda {
            check_len("RotationLambdaARN", l, 0, 2048)?;
        }
        let rules = match body.obj("RotationRules")? {
            Some(r) => Some(parse_rules(r)?),
            None => None,
        };
        Ok(RotateSecret { target, token, lambda: lambda.map(str::to_string), rules, immediately })
    }

    fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut c = self.target.check(sm, ctx, Self::NAME)?;
        if let Some(l) = &self.lambda {
            c.context.push(("secretsmanager:RotationLambdaARN".into(), s(l.clone())));
        }
        c.context.push(("secretsmanager:RotateImmediately".into(), s(self.immediately.to_string())));
        c.context.push(("secretsmanager:ModifyRotationRules".into(), s(self.rules.is_some().to_string())));
        one(c)
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        let RotateSecret { target, token, lambda, rules, immediately } = self;
        let rec = live(target.primary(sm, ctx)?)?;
        json(sm.rotate_secret(rec, token, lambda, rules, immediately)?)
    }
}

pub struct PutResourcePolicy {
    target: Target,
    /// As given: "By default, public policies aren't blocked." (API reference); the condition key
    /// is set only when the request names it.
    block_public: Option<bool>,
    doc: String,
}

impl Operation<Sm> for PutResourcePolicy {
    const NAME: &'static str = "PutResourcePolicy";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let target = Target::parse(body)?;
        let block_public = body.bool("BlockPublicPolicy")?;
        let doc = body.req_str("ResourcePolicy")?.to_string();
        check_len("ResourcePolicy", &doc, 1, 20_480)?;
        Ok(PutResourcePolicy { target, block_public, doc })
    }

    fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut c = self.target.check(sm, ctx, Self::NAME)?;
        if let Some(b) = self.block_public {
            c.context.push(("secretsmanager:BlockPublicPolicy".into(), s(b.to_string())));
        }
        one(c)
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        let rec = live(self.target.primary(sm, ctx)?)?;
        json(sm.put_resource_policy(rec, self.doc, self.block_public.unwrap_or(false))?)
    }
}

pub struct TagResource {
    target: Target,
    tags: Vec<(String, String)>,
}

impl Operation<Sm> for TagResource {
    const NAME: &'static str = "TagResource";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let target = Target::parse(body)?;
        let tags = body.tags("Tags")?.ok_or_else(|| {
            SmError::Validation("1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null".into())
        })?;
        valid_tags(&tags)?;
        Ok(TagResource { target, tags })
    }

    fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut c = self.target.check(sm, ctx, Self::NAME)?;
        request_tags(&mut c, &self.tags);
        one(c)
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        let rec = live(self.target.primary(sm, ctx)?)?;
        json(sm.tag_resource(rec, &self.tags)?)
    }
}

pub struct UntagResource {
    target: Target,
    keys: Vec<String>,
}

impl Operation<Sm> for UntagResource {
    const NAME: &'static str = "UntagResource";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let target = Target::parse(body)?;
        let keys = body.str_list("TagKeys")?.ok_or_else(|| {
            SmError::Validation("1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null".into())
        })?;
        Ok(UntagResource { target, keys: keys.into_iter().map(str::to_string).collect() })
    }

    fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut c = self.target.check(sm, ctx, Self::NAME)?;
        c.context.push(("aws:TagKeys".into(), ContextValue::List(self.keys.clone())));
        one(c)
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        let rec = live(self.target.primary(sm, ctx)?)?;
        json(sm.untag_resource(rec, &self.keys)?)
    }
}

pub struct ReplicateSecretToRegions {
    target: Target,
    regions: Vec<(String, Option<String>)>,
    force: bool,
}

impl Operation<Sm> for ReplicateSecretToRegions {
    const NAME: &'static str = "ReplicateSecretToRegions";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let target = Target::parse(body)?;
        // The list's bound before the secret is read and the call authorized.
        let regions = replica_regions(body)?;
        if regions.is_empty() {
            return Err(SmError::Validation(
                "1 validation error detected: Value null at 'addReplicaRegions' failed to satisfy constraint: Member must not be null".into(),
            ));
        }
        let force = body.bool("ForceOverwriteReplicaSecret")?.unwrap_or(false);
        Ok(ReplicateSecretToRegions { target, regions, force })
    }

    fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(self.target.check(sm, ctx, Self::NAME)?)
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        let rec = live(self.target.primary(sm, ctx)?)?;
        json(sm.replicate_secret_to_regions(&rec, &self.regions, self.force)?)
    }
}

pub struct RemoveRegionsFromReplication {
    target: Target,
    regions: Vec<String>,
}

impl Operation<Sm> for RemoveRegionsFromReplication {
    const NAME: &'static str = "RemoveRegionsFromReplication";
    type Error = SmError;

    fn parse(input: &Input) -> Result<Self> {
        let body = body(input);
        let target = Target::parse(body)?;
        let regions = body.str_list("RemoveReplicaRegions")?.ok_or_else(|| {
            SmError::Validation("1 validation error detected: Value null at 'removeReplicaRegions' failed to satisfy constraint: Member must not be null".into())
        })?;
        Ok(RemoveRegionsFromReplication { target, regions: regions.into_iter().map(str::to_string).collect() })
    }

    fn authorize(&mut self, sm: &Sm, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(self.target.check(sm, ctx, Self::NAME)?)
    }

    fn run(self, sm: &Sm, ctx: &RequestContext) -> Result<Output> {
        let rec = live(self.target.primary(sm, ctx)?)?;
        json(sm.remove_regions_from_replication(&rec, &self.regions)?)
    }
}
