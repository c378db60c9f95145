//! Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use rampart_service::{op, AuthzPlan, ContextKey, ContextValue, Entry, Input, Operation, Output, RequestContext};
use rand::RngCore;
use serde_json::{json, Value};

use super::{
    account_plan, dry_run, grant_tokens, invalid, key_id_or_arn_only, later, parse_grant_token, KeyRef, Later, Page,
};
use crate::core::{s, Kms, Loaded};
use crate::error::{KmsError, Result};
use crate::input::In;
use crate::model::*;

const MAX_GRANTS_PER_KEY: usize = 50_000;

/// The operations a grant can allow.
const GRANT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
];

/// The operations of this family, each listed once.
pub(super) const OPS: &[Entry<Kms>] = &[
    op::<Kms, CreateGrant>(),
    op::<Kms, ListGrants>(),
    op::<Kms, ListRetirableGrants>(),
    op::<Kms, RetireGrant>(),
    op::<Kms, RevokeGrant>(),
];

fn grant_token(rec: &KeyRec, g: &GrantRec) -> String {
    B64URL.encode(format!("{}/{}/{}/{}/{}", rec.account, rec.region, rec.key_id, g.grant_id, g.token_secret))
}

fn valid_grant_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn invalid_grant_id(gid: &str) -> KmsError {
    KmsError::InvalidGrantId(format!("Grant ID {gid} is not valid."))
}

/// An IAM principal ARN (user, role, assumed role, federated user, account root) or account ID.
fn valid_principal(p: &str) -> bool {
    if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let parts: Vec<&str> = p.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", "aws", "iam" | "sts", "", acct, res]
        if acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit()) && !res.is_empty())
}

fn caller_matches(ctx: &RequestContext, principal: &str) -> bool {
    let c = &ctx.caller;
    if principal == c.arn || principal == c.account_id && c.is_root() {
        return true;
    }
    if let rampart_service::CallerKind::AssumedRole { role_arn, .. } = &c.kind {
        if principal == role_arn {
            return true;
        }
    }
    c.is_root() && principal == format!("arn:aws:iam::{}:root", c.account_id)
}

impl Kms {
    fn remove_grant(&self, k: &Loaded, gid: &str) -> Result<()> {
        self.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
            let before = r.grants.len();
            r.grants.retain(|g| g.grant_id != gid);
            if r.grants.len() == before {
                return Err(KmsError::NotFound(format!("Grant ID {gid} not found")));
            }
            Ok(())
        })
    }
}

/// What CreateGrant checks after authorization: the grant to create.
struct NewGrant {
    grantee: String,
    retiring: Option<String>,
    operations: Vec<String>,
    constraints: Option<GrantConstraints>,
    name: Option<String>,
}

pub(super) struct CreateGrant {
    key: KeyRef,
    /// The condition keys of the request (`kms:GrantOperations`, `kms:GranteePrincipal`, …), from
    /// the members as given.
    context: Vec<(ContextKey, ContextValue)>,
    grant: Later<NewGrant>,
    dry_run: Later<()>,
}

impl CreateGrant {
    fn grant(i: &In<'_>) -> Result<NewGrant> {
        if i.has("GranteeServicePrincipal") || i.has("RetiringServicePrincipal") {
            return Err(KmsError::Unsupported("Service principals in grants are not supported by Rampart.".into()));
        }
        let grantee = i.req_str_len("GranteePrincipal", 1, 256)?.to_string();
        let retiring = i.str_len("RetiringPrincipal", 1, 256)?.map(str::to_string);
        for p in std::iter::once(&grantee).chain(retiring.iter()) {
            if !valid_principal(p) {
                return Err(KmsError::InvalidArn(format!("{p} is not a valid principal ARN.")));
            }
        }
        let mut operations = i.str_list("Operations")?;
        if operations.is_empty() {
            return Err(invalid("Operations", "Member must have length greater than or equal to 1"));
        }
        for o in &operations {
            if !GRANT_OPERATIONS.contains(&o.as_str()) {
                return Err(invalid(
                    "Operations",
                    &format!("Member must satisfy enum value set: {GRANT_OPERATIONS:?}"),
                ));
            }
        }
        operations.dedup();
        let constraints = match i.0.get("Constraints").filter(|c| !c.is_null()) {
            None => None,
            Some(c) => {
                let ci = In(c);
                let subset =
                    if ci.has("EncryptionContextSubset") { Some(ci.map("EncryptionContextSubset")?) } else { None };
                let equals =
                    if ci.has("EncryptionContextEquals") { Some(ci.map("EncryptionContextEquals")?) } else { None };
                if subset.is_some() && equals.is_some() {
                    return Err(KmsError::Validation(
                        "Grant constraints can have either EncryptionContextSubset or EncryptionContextEquals, not both."
                            .into(),
                    ));
                }
                (subset.is_some() || equals.is_some()).then_some(GrantConstraints { subset, equals })
            }
        };
        let name = i.str_len("Name", 1, 256)?.map(str::to_string);
        grant_tokens(i)?;
        Ok(NewGrant { grantee, retiring, operations, constraints, name })
    }
}

impl Operation<Kms> for CreateGrant {
    const NAME: &'static str = "CreateGrant";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let mut context: Vec<(ContextKey, ContextValue)> = vec![
            ("kms:GrantOperations".into(), ContextValue::List(i.str_list("Operations")?)),
            ("kms:GrantIsForAWSResource".into(), s("false")),
        ];
        if let Some(g) = i.str("GranteePrincipal")? {
            context.push(("kms:GranteePrincipal".into(), s(g)));
        }
        if let Some(r) = i.str("RetiringPrincipal")? {
            context.push(("kms:RetiringPrincipal".into(), s(r)));
        }
        if let Some(c) = i.0.get("Constraints").filter(|c| c.is_object()) {
            let types: Vec<String> = ["EncryptionContextSubset", "EncryptionContextEquals"]
                .iter()
                .filter(|t| c.get(**t).is_some_and(|v| !v.is_null()))
                .map(|t| t.to_string())
                .collect();
            if !types.is_empty() {
                context.push(("kms:GrantConstraintType".into(), ContextValue::List(types)));
            }
        }
        let key = KeyRef::parse(&i, "KeyId")?;
        Ok(CreateGrant { key, context, grant: CreateGrant::grant(&i), dry_run: dry_run(&i) })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, std::mem::take(&mut self.context))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let NewGrant { grantee, retiring, operations, constraints, name } = self.grant?;
        k.require_enabled()?;
        self.dry_run?;
        // Same name and parameters: the same grant (AWS's idempotency for retried CreateGrant).
        if let Some(n) = &name {
            if let Some(g) = k.rec.grants.iter().find(|g| {
                g.name.as_ref() == Some(n)
                    && g.grantee == grantee
                    && g.retiring == retiring
                    && g.operations == operations
                    && g.constraints == constraints
            }) {
                return Ok(Output::Json(json!({"GrantToken": grant_token(&k.rec, g), "GrantId": g.grant_id})));
            }
        }
        let mut id = [0u8; 32];
        rand::rng().fill_bytes(&mut id);
        let mut secret = [0u8; 16];
        rand::rng().fill_bytes(&mut secret);
        let grant = GrantRec {
            grant_id: hex::encode(id),
            name,
            created: kms.now_ms(),
            grantee,
            retiring,
            operations,
            constraints,
            issuing_account: format!("arn:aws:iam::{}:root", ctx.caller.account_id),
            token_secret: hex::encode(secret),
        };
        let token = grant_token(&k.rec, &grant);
        let gid = grant.grant_id.clone();
        kms.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
            if r.grants.len() >= MAX_GRANTS_PER_KEY {
                return Err(KmsError::LimitExceeded(format!("The grant limit for {} has been reached.", r.arn())));
            }
            r.grants.push(grant);
            Ok(())
        })?;
        Ok(Output::Json(json!({"GrantToken": token, "GrantId": gid})))
    }
}

/// What ListGrants checks after authorization: the page and its filters.
struct GrantFilter {
    page: Page,
    grant_id: Option<String>,
    grantee: Option<String>,
}

pub(super) struct ListGrants {
    key: KeyRef,
    filter: Later<GrantFilter>,
}

impl Operation<Kms> for ListGrants {
    const NAME: &'static str = "ListGrants";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let key = KeyRef::parse(&i, "KeyId")?;
        let filter = later(|| {
            Ok(GrantFilter {
                page: Page::parse(&i, 50)?,
                grant_id: i.str_len("GrantId", 1, 128)?.map(str::to_string),
                grantee: i.str_len("GranteePrincipal", 1, 256)?.map(str::to_string),
            })
        });
        Ok(ListGrants { key, filter })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let GrantFilter { page, grant_id, grantee } = self.filter?;
        let grants: Vec<Value> = k
            .rec
            .grants
            .iter()
            .filter(|g| {
                grant_id.as_ref().is_none_or(|x| *x == g.grant_id) && grantee.as_ref().is_none_or(|x| *x == g.grantee)
            })
            .map(|g| g.to_json(&k.arn))
            .collect();
        page.answer("Grants", grants)
    }
}

pub(super) struct ListRetirableGrants {
    /// `RetiringPrincipal` and the page, checked after authorization.
    query: Later<(String, Page)>,
}

impl Operation<Kms> for ListRetirableGrants {
    const NAME: &'static str = "ListRetirableGrants";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        let query = later(|| {
            let principal = i.req_str_len("RetiringPrincipal", 1, 256)?.to_string();
            Ok((principal, Page::parse(&i, 50)?))
        });
        Ok(ListRetirableGrants { query })
    }

    fn authorize(&mut self, _: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        Ok(account_plan(ctx, Self::NAME))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let (principal, page) = self.query?;
        let mut grants = Vec::new();
        for k in kms.all_keys_in_region(&ctx.region)? {
            for g in &k.rec.grants {
                if g.retiring.as_deref() == Some(principal.as_str()) {
                    grants.push(g.to_json(&k.arn));
                }
            }
        }
        page.answer("Grants", grants)
    }
}

/// The grant RetireGrant names: by its token, or by key and grant ID.
enum Retiring {
    Token { account: String, region: String, key_id: String, grant_id: String, secret: String },
    Id { key_id: String, grant_id: String },
}

/// RetireGrant is decided by the grant itself — its retiring principal, its grantee when it
/// allows RetireGrant, or the issuing account's root — not by policies: its plan loads the grant,
/// decides, and needs no check.
pub(super) struct RetireGrant {
    grant: Retiring,
    /// The key and grant the plan found.
    found: Option<(Arc<Loaded>, String)>,
    dry_run: Later<()>,
}

impl RetireGrant {
    fn find(&self, kms: &Kms, ctx: &RequestContext) -> Result<(Arc<Loaded>, GrantRec)> {
        match &self.grant {
            Retiring::Token { account, region, key_id, grant_id, secret } => {
                let k = kms
                    .load(account, region, key_id)?
                    .ok_or_else(|| KmsError::InvalidGrantToken("Grant token is invalid".into()))?;
                let g = k
                    .rec
                    .grants
                    .iter()
                    .find(|g| g.grant_id == *grant_id && g.token_secret == *secret)
                    .cloned()
                    .ok_or_else(|| KmsError::NotFound("Grant not found".into()))?;
                Ok((k, g))
            }
            Retiring::Id { key_id, grant_id } => {
                let k = kms.resolve(ctx, key_id)?;
                let g = k
                    .rec
                    .grants
                    .iter()
                    .find(|g| g.grant_id == *grant_id)
                    .cloned()
                    .ok_or_else(|| KmsError::NotFound(format!("Grant ID {grant_id} not found")))?;
                Ok((k, g))
            }
        }
    }
}

impl Operation<Kms> for RetireGrant {
    const NAME: &'static str = "RetireGrant";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let grant = if let Some(t) = i.str_len("GrantToken", 1, 8192)? {
            let (account, region, key_id, grant_id, secret) =
                parse_grant_token(t).ok_or_else(|| KmsError::InvalidGrantToken("Grant token is invalid".into()))?;
            Retiring::Token { account, region, key_id, grant_id, secret }
        } else {
            let (Some(key_id), Some(grant_id)) = (i.str("KeyId")?, i.str("GrantId")?) else {
                return Err(KmsError::Validation(
                    "Either GrantToken or both KeyId and GrantId must be specified.".into(),
                ));
            };
            if !valid_grant_id(grant_id) {
                return Err(invalid_grant_id(grant_id));
            }
            Retiring::Id { key_id: key_id.to_string(), grant_id: grant_id.to_string() }
        };
        Ok(RetireGrant { grant, found: None, dry_run: dry_run(&i) })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (k, grant) = self.find(kms, ctx)?;
        let allowed = grant.retiring.as_deref().is_some_and(|r| caller_matches(ctx, r))
            || (grant.operations.iter().any(|o| o == "RetireGrant") && caller_matches(ctx, &grant.grantee))
            || (ctx.caller.is_root() && grant.issuing_account == ctx.caller.arn);
        if !allowed {
            return Err(KmsError::AccessDenied(format!(
                "User: {} is not authorized to perform: kms:RetireGrant on resource: {} because no grant allows it",
                ctx.caller.arn, k.arn
            )));
        }
        self.found = Some((k, grant.grant_id));
        Ok(AuthzPlan::AlwaysAllowed)
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let (k, grant_id) = match self.found {
            Some(f) => f,
            None => self.find(kms, ctx).map(|(k, g)| (k, g.grant_id))?,
        };
        self.dry_run?;
        kms.remove_grant(&k, &grant_id)?;
        Ok(super::empty())
    }
}

pub(super) struct RevokeGrant {
    key: KeyRef,
    /// `GrantId` (and `DryRun`), checked after authorization.
    grant_id: Later<String>,
}

impl Operation<Kms> for RevokeGrant {
    const NAME: &'static str = "RevokeGrant";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let key = KeyRef::parse(&i, "KeyId")?;
        let grant_id = later(|| {
            let gid = i.req_str_len("GrantId", 1, 128)?;
            if !valid_grant_id(gid) {
                return Err(invalid_grant_id(gid));
            }
            dry_run(&i)?;
            Ok(gid.to_string())
        });
        Ok(RevokeGrant { key, grant_id })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let gid = self.grant_id?;
        kms.remove_grant(&k, &gid)?;
        Ok(super::empty())
    }
}
