//! Keys: creation, description, state, deletion, key policies, rotation, multi-Region keys,
//! public keys.

use rampart_service::{
    op, AuthzCheck, AuthzPlan, ContextKey, ContextValue, Entry, Input, Operation, Output, RequestContext,
};
use rampart_store::{transact, ReadExt, TransactionExt};
use serde_json::{json, Value};

use super::{
    account_plan, caller_account, empty, flag, key_id_or_arn_only, later, tag_context, tags_input, KeyRef, Later, Page,
    MAX_POLICY, MAX_TAGS,
};
use crate::core::{default_key_policy, pending, s, Kms, Loaded};
use crate::crypto::{KeySpec, KeyUsage};
use crate::error::{KmsError, Result};
use crate::input::{invalid_value, missing, In};
use crate::model::*;

const MAX_ON_DEMAND_ROTATIONS: usize = 10;

/// The operations of this family, each listed once.
pub(super) const OPS: &[Entry<Kms>] = &[
    op::<Kms, CreateKey>(),
    op::<Kms, DescribeKey>(),
    op::<Kms, ListKeys>(),
    op::<Kms, UpdateKeyDescription>(),
    op::<Kms, EnableKey>(),
    op::<Kms, DisableKey>(),
    op::<Kms, ScheduleKeyDeletion>(),
    op::<Kms, CancelKeyDeletion>(),
    op::<Kms, GetKeyPolicy>(),
    op::<Kms, ListKeyPolicies>(),
    op::<Kms, PutKeyPolicy>(),
    op::<Kms, EnableKeyRotation>(),
    op::<Kms, DisableKeyRotation>(),
    op::<Kms, GetKeyRotationStatus>(),
    op::<Kms, RotateKeyOnDemand>(),
    op::<Kms, ListKeyRotations>(),
    op::<Kms, GetPublicKey>(),
    op::<Kms, ReplicateKey>(),
    op::<Kms, UpdatePrimaryRegion>(),
];

/// What CreateKey checks only after authorization.
struct NewKey {
    description: String,
    spec: KeySpec,
    usage: KeyUsage,
    policy: Option<String>,
    /// `Origin=EXTERNAL`: a key for imported key material (PendingImport, no material).
    external: bool,
    /// `Origin=EXTERNAL_KEY_STORE`: `(CustomKeyStoreId, XksKeyId)`.
    xks: Option<(String, String)>,
}

pub(super) struct CreateKey {
    tags: Vec<Tag>,
    /// `KeySpec` (or the deprecated `CustomerMasterKeySpec`), `KeyUsage` and `Origin` as given,
    /// for the condition keys.
    spec_given: Option<String>,
    usage_given: Option<String>,
    origin_given: Option<String>,
    multi_region: bool,
    bypass_lockout_check: bool,
    key: Later<NewKey>,
}

impl Operation<Kms> for CreateKey {
    const NAME: &'static str = "CreateKey";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        let tags = tags_input(&i)?;
        let (spec, cmk_spec) = (i.str("KeySpec")?, i.str("CustomerMasterKeySpec")?);
        let usage_given = i.str("KeyUsage")?;
        let origin_given = i.str("Origin")?;
        let multi_region = i.bool("MultiRegion")?;
        let bypass_lockout_check = i.bool("BypassPolicyLockoutSafetyCheck")?;
        let key = later(|| {
            let description = i.str_len("Description", 0, 8192)?.unwrap_or("").to_string();
            let spec_name = match (spec, cmk_spec) {
                (Some(_), Some(_)) => {
                    return Err(KmsError::Validation(
                        "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec parameter is deprecated. Use KeySpec parameter instead.".into(),
                    ))
                }
                (Some(s), None) | (None, Some(s)) => s,
                (None, None) => "SYMMETRIC_DEFAULT",
            };
            let spec = KeySpec::parse(spec_name).ok_or_else(|| {
                invalid_value("KeySpec", spec_name, "Member must satisfy enum value set: [RSA_2048, ECC_NIST_P384, ECC_NIST_P256, ECC_NIST_P521, HMAC_384, RSA_3072, ECC_SECG_P256K1, RSA_4096, SYMMETRIC_DEFAULT, HMAC_256, HMAC_224, HMAC_512]")
            })?;
            let usage = match usage_given {
                // "This parameter is optional when you are creating a symmetric encryption KMS key;
                // otherwise, it is required." (CreateKey's API reference.)
                None if spec != KeySpec::SYMMETRIC_DEFAULT => {
                    return Err(KmsError::Validation(
                        "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
                            .into(),
                    ))
                }
                None => KeyUsage::ENCRYPT_DECRYPT,
                Some(u) => {
                    let usage = KeyUsage::parse(u).ok_or_else(|| {
                        invalid_value(
                            "KeyUsage",
                            u,
                            "Member must satisfy enum value set: [ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC]",
                        )
                    })?;
                    if !spec.usages().contains(&usage) {
                        return Err(KmsError::Validation(format!(
                            "KeyUsage {} is not compatible with KeySpec {}",
                            usage.as_str(),
                            spec.as_str()
                        )));
                    }
                    usage
                }
            };
            let external = origin_given == Some("EXTERNAL");
            let mut xks = None;
            match origin_given {
                None | Some("AWS_KMS") => {}
                Some("EXTERNAL") if spec.is_ml_kem() => {
                    return Err(KmsError::Unsupported(format!(
                        "KeySpec {} does not support Origin EXTERNAL.",
                        spec.as_str()
                    )))
                }
                Some("EXTERNAL") => {}
                Some("AWS_CLOUDHSM") => {
                    // Rampart has no CloudHSM key stores: any ID names none.
                    i.str_len("CustomKeyStoreId", 1, 64)?.ok_or_else(|| {
                        KmsError::Validation("CustomKeyStoreId is required for Origin AWS_CLOUDHSM.".into())
                    })?;
                    return Err(KmsError::Coded("CustomKeyStoreNotFoundException", 400, String::new()));
                }
                Some("EXTERNAL_KEY_STORE") => {
                    let ids = super::stores::xks_key_input(&i)?;
                    let (store, key) = match ids {
                        Some(ids) => ids,
                        None if !i.has("CustomKeyStoreId") => {
                            return Err(KmsError::Validation(
                                "CustomKeyStoreId is required for Origin EXTERNAL_KEY_STORE.".into(),
                            ))
                        }
                        None => {
                            return Err(KmsError::Validation(
                                "XksKeyId is required for Origin EXTERNAL_KEY_STORE.".into(),
                            ))
                        }
                    };
                    if spec != KeySpec::SYMMETRIC_DEFAULT || usage != KeyUsage::ENCRYPT_DECRYPT {
                        return Err(KmsError::Unsupported(
                            "KMS keys in an external key store must be symmetric encryption keys (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT).".into(),
                        ));
                    }
                    if multi_region {
                        return Err(KmsError::Unsupported(
                            "Multi-Region keys are not supported in custom key stores.".into(),
                        ));
                    }
                    xks = Some((store, key));
                }
                Some(o) => {
                    return Err(invalid_value(
                        "Origin",
                        o,
                        "Member must satisfy enum value set: [EXTERNAL, AWS_CLOUDHSM, AWS_KMS, EXTERNAL_KEY_STORE]",
                    ))
                }
            }
            if xks.is_none() {
                if i.has("XksKeyId") {
                    return Err(KmsError::Validation(
                        "XksKeyId is valid only for KMS keys with Origin EXTERNAL_KEY_STORE.".into(),
                    ));
                }
                if i.has("CustomKeyStoreId") {
                    return Err(KmsError::Validation(
                        "CustomKeyStoreId is valid only for KMS keys with Origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE."
                            .into(),
                    ));
                }
            }
            let policy = i.str_len("Policy", 1, MAX_POLICY)?.map(str::to_string);
            Ok(NewKey { description, spec, usage, policy, external, xks })
        });
        Ok(CreateKey {
            tags,
            spec_given: spec.or(cmk_spec).map(str::to_string),
            usage_given: usage_given.map(str::to_string),
            origin_given: origin_given.map(str::to_string),
            multi_region,
            bypass_lockout_check,
            key,
        })
    }

    fn authorize(&mut self, _: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut check = AuthzCheck::new("kms:CreateKey", "*");
        check.context = tag_context(&self.tags);
        check.context.push(caller_account(ctx));
        if let Some(spec) = &self.spec_given {
            check.context.push(("kms:KeySpec".into(), s(spec)));
        }
        if let Some(u) = &self.usage_given {
            check.context.push(("kms:KeyUsage".into(), s(u)));
        }
        check.context.push(("kms:KeyOrigin".into(), s(self.origin_given.as_deref().unwrap_or("AWS_KMS"))));
        check.context.push(("kms:MultiRegion".into(), flag(self.multi_region)));
        check.context.push(("kms:BypassPolicyLockoutSafetyCheck".into(), flag(self.bypass_lockout_check)));
        Ok(AuthzPlan::Checks(vec![check]))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let NewKey { description, spec, usage, policy, external, xks } = self.key?;
        let policy = match policy {
            Some(p) => {
                kms.validate_policy(ctx, &p, self.bypass_lockout_check, None)?;
                p
            }
            None => default_key_policy(&ctx.caller.account_id),
        };
        let rec = kms.build_key(
            &ctx.caller.account_id,
            &ctx.region,
            spec,
            usage,
            description,
            policy,
            "CUSTOMER",
            self.tags,
            self.multi_region,
            external,
        )?;
        let mut rec = rec;
        if let Some((store, xks_key)) = xks {
            kms.check_xks_key(ctx, &store, &xks_key)?;
            rec.origin = Some("EXTERNAL_KEY_STORE".into());
            rec.custom_key_store_id = Some(store);
            rec.xks_key_id = Some(xks_key);
            kms.insert_xks_key(&rec)?;
        } else {
            kms.insert_key(&rec)?;
        }
        Ok(Output::Json(json!({"KeyMetadata": kms.key_metadata(&rec)?})))
    }
}

pub(super) struct DescribeKey {
    key: KeyRef,
}

impl Operation<Kms> for DescribeKey {
    const NAME: &'static str = "DescribeKey";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        super::grant_tokens(&i)?;
        Ok(DescribeKey { key: KeyRef::parse(&i, "KeyId")? })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        Ok(Output::Json(json!({"KeyMetadata": kms.key_metadata(&k.rec)?})))
    }
}

pub(super) struct ListKeys {
    page: Later<Page>,
}

impl Operation<Kms> for ListKeys {
    const NAME: &'static str = "ListKeys";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(ListKeys { page: Page::parse(&In(input.json()), 100) })
    }

    fn authorize(&mut self, _: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        Ok(account_plan(ctx, Self::NAME))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let page = self.page?;
        let keys: Vec<Value> = kms
            .list_keys(&ctx.caller.account_id, &ctx.region)?
            .iter()
            .map(|k| json!({"KeyId": k.rec.key_id, "KeyArn": k.arn}))
            .collect();
        page.answer("Keys", keys)
    }
}

pub(super) struct UpdateKeyDescription {
    key: KeyRef,
    description: Later<String>,
}

impl Operation<Kms> for UpdateKeyDescription {
    const NAME: &'static str = "UpdateKeyDescription";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let key = KeyRef::parse(&i, "KeyId")?;
        let description =
            later(|| Ok(i.str_len("Description", 0, 8192)?.ok_or_else(|| missing("Description"))?.to_string()));
        Ok(UpdateKeyDescription { key, description })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let d = self.description?;
        k.require_not_pending()?;
        kms.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
            r.description = d;
            Ok(())
        })?;
        Ok(empty())
    }
}

/// EnableKey (`ENABLE`) and DisableKey.
pub(super) struct SetKeyState<const ENABLE: bool> {
    key: KeyRef,
}

pub(super) type EnableKey = SetKeyState<true>;
pub(super) type DisableKey = SetKeyState<false>;

impl<const ENABLE: bool> Operation<Kms> for SetKeyState<ENABLE> {
    const NAME: &'static str = if ENABLE { "EnableKey" } else { "DisableKey" };
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        Ok(SetKeyState { key: KeyRef::parse(&i, "KeyId")? })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        k.require_not_pending()?;
        let state = if ENABLE { KeyState::Enabled } else { KeyState::Disabled };
        kms.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
            if r.state == KeyState::PendingDeletion {
                return Err(pending(&r.arn()));
            }
            if r.state == KeyState::PendingImport {
                return Err(KmsError::InvalidState(format!("{} is pending import.", r.arn())));
            }
            r.state = state;
            Ok(())
        })?;
        Ok(empty())
    }
}

pub(super) struct ScheduleKeyDeletion {
    key: KeyRef,
    /// `PendingWindowInDays` as given, for its condition key.
    window_given: Option<i64>,
    days: Later<i64>,
}

impl Operation<Kms> for ScheduleKeyDeletion {
    const NAME: &'static str = "ScheduleKeyDeletion";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let window_given = i.int("PendingWindowInDays")?;
        let key = KeyRef::parse(&i, "KeyId")?;
        let days = later(|| Ok(i.int_range("PendingWindowInDays", 7, 30)?.unwrap_or(30)));
        Ok(ScheduleKeyDeletion { key, window_given, days })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut extra = Vec::new();
        if let Some(d) = self.window_given {
            extra.push(("kms:ScheduleKeyDeletionPendingWindowInDays".into(), s(&d.to_string())));
        }
        self.key.plan(kms, ctx, Self::NAME, extra)
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let days = self.days?;
        if k.rec.manager == "AWS" {
            return Err(KmsError::Unsupported(format!("{} is an AWS managed key and cannot be deleted.", k.arn)));
        }
        let deletion = kms.now_ms() + days * 86_400_000;
        kms.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
            if r.state == KeyState::PendingDeletion {
                return Err(pending(&r.arn()));
            }
            r.state = KeyState::PendingDeletion;
            r.deletion_date = Some(deletion);
            r.pending_window_days = Some(days as u32);
            Ok(())
        })?;
        Ok(Output::Json(json!({
            "KeyId": k.arn,
            "DeletionDate": secs(deletion),
            "KeyState": "PendingDeletion",
            "PendingWindowInDays": days,
        })))
    }
}

pub(super) struct CancelKeyDeletion {
    key: KeyRef,
}

impl Operation<Kms> for CancelKeyDeletion {
    const NAME: &'static str = "CancelKeyDeletion";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        Ok(CancelKeyDeletion { key: KeyRef::parse(&i, "KeyId")? })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        kms.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
            if r.state != KeyState::PendingDeletion {
                return Err(KmsError::InvalidState(format!("{} is not pending deletion.", r.arn())));
            }
            // A key whose imported material is absent goes back to PendingImport.
            r.state = if r.is_external() && !r.all_imported() { KeyState::PendingImport } else { KeyState::Disabled };
            r.deletion_date = None;
            r.pending_window_days = None;
            Ok(())
        })?;
        Ok(Output::Json(json!({"KeyId": k.arn})))
    }
}

/// `PolicyName`: a key has one policy, `default`.
fn policy_name(i: &In<'_>) -> Result<()> {
    match i.str("PolicyName")? {
        None | Some("default") => Ok(()),
        Some(_) => Err(KmsError::NotFound("No such policy exists".into())),
    }
}

pub(super) struct GetKeyPolicy {
    key: KeyRef,
    policy_name: Later<()>,
}

impl Operation<Kms> for GetKeyPolicy {
    const NAME: &'static str = "GetKeyPolicy";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let key = KeyRef::parse(&i, "KeyId")?;
        Ok(GetKeyPolicy { key, policy_name: policy_name(&i) })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        self.policy_name?;
        Ok(Output::Json(json!({"Policy": k.rec.policy, "PolicyName": "default"})))
    }
}

pub(super) struct ListKeyPolicies {
    key: KeyRef,
    /// Checked, not used: the one page is the one policy.
    page: Later<Page>,
}

impl Operation<Kms> for ListKeyPolicies {
    const NAME: &'static str = "ListKeyPolicies";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let key = KeyRef::parse(&i, "KeyId")?;
        Ok(ListKeyPolicies { key, page: Page::parse(&i, 100) })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let _k = self.key.planned(kms, ctx)?;
        self.page?;
        Ok(Output::Json(json!({"PolicyNames": ["default"], "Truncated": false})))
    }
}

pub(super) struct PutKeyPolicy {
    key: KeyRef,
    bypass_lockout_check: bool,
    policy: Later<String>,
}

impl Operation<Kms> for PutKeyPolicy {
    const NAME: &'static str = "PutKeyPolicy";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let bypass_lockout_check = i.bool("BypassPolicyLockoutSafetyCheck")?;
        let key = KeyRef::parse(&i, "KeyId")?;
        let policy = later(|| {
            policy_name(&i)?;
            Ok(i.req_str_len("Policy", 1, MAX_POLICY)?.to_string())
        });
        Ok(PutKeyPolicy { key, bypass_lockout_check, policy })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let extra = vec![("kms:BypassPolicyLockoutSafetyCheck".into(), flag(self.bypass_lockout_check))];
        self.key.plan(kms, ctx, Self::NAME, extra)
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let policy = self.policy?;
        // AWS's key-state table: PutKeyPolicy works in every state, pending deletion included.
        kms.validate_policy(ctx, &policy, self.bypass_lockout_check, Some(&k))?;
        kms.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
            r.policy = policy;
            Ok(())
        })?;
        Ok(empty())
    }
}

/// EnableKeyRotation (`ENABLE`, with its period) and DisableKeyRotation.
pub(super) struct SetKeyRotation<const ENABLE: bool> {
    key: KeyRef,
    /// `RotationPeriodInDays` as given, for its condition key.
    period_given: Option<i64>,
    period: Later<i64>,
}

pub(super) type EnableKeyRotation = SetKeyRotation<true>;
pub(super) type DisableKeyRotation = SetKeyRotation<false>;

impl<const ENABLE: bool> Operation<Kms> for SetKeyRotation<ENABLE> {
    const NAME: &'static str = if ENABLE { "EnableKeyRotation" } else { "DisableKeyRotation" };
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let period_given = if ENABLE { i.int("RotationPeriodInDays")? } else { None };
        let key = KeyRef::parse(&i, "KeyId")?;
        let period =
            if ENABLE { later(|| Ok(i.int_range("RotationPeriodInDays", 90, 2560)?.unwrap_or(365))) } else { Ok(0) };
        Ok(SetKeyRotation { key, period_given, period })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut extra = Vec::new();
        if let Some(d) = self.period_given {
            extra.push(("kms:RotationPeriodInDays".into(), s(&d.to_string())));
        }
        self.key.plan(kms, ctx, Self::NAME, extra)
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let period = self.period?;
        k.require_enabled()?;
        kms.require_rotatable(&k)?;
        if k.rec.is_external() {
            return Err(KmsError::Unsupported(format!(
                "{} origin is EXTERNAL which is not valid for this operation.",
                k.arn
            )));
        }
        let now = kms.now_ms();
        let rec = kms.update(&k.rec.account, &k.rec.region, &k.rec.key_id, |r| {
            if ENABLE {
                r.rotation_enabled = true;
                r.rotation_period_days = Some(period as u32);
                r.next_rotation = Some(now + period * 86_400_000);
            } else {
                r.rotation_enabled = false;
                r.next_rotation = None;
            }
            Ok(r.clone())
        })?;
        if rec.multi_region_primary == Some(true) {
            kms.sync_rotation_settings(&rec)?;
        }
        Ok(empty())
    }
}

pub(super) struct GetKeyRotationStatus {
    key: KeyRef,
}

impl Operation<Kms> for GetKeyRotationStatus {
    const NAME: &'static str = "GetKeyRotationStatus";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        Ok(GetKeyRotationStatus { key: KeyRef::parse(&i, "KeyId")? })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        // AWS's key-state table: GetKeyRotationStatus works on a key pending deletion. `KeyId` is
        // the key ARN, the same value RotateKeyOnDemand answers (recorded AWS responses: LocalStack's
        // test_kms.snapshot.json, test_rotate_key_on_demand_with_symmetric_key_and_automatic_rotation_*
        // shows one value for both, and test_rotate_on_demand_returns_arn_for_key_id asserts the ARN).
        kms.require_rotatable_spec(&k)?;
        let mut out = json!({"KeyRotationEnabled": k.rec.rotation_enabled, "KeyId": k.arn});
        if k.rec.rotation_enabled {
            put(&mut out, "RotationPeriodInDays", json!(k.rec.rotation_period_days.unwrap_or(365)));
            if let Some(n) = k.rec.next_rotation {
                put(&mut out, "NextRotationDate", json!(secs(n)));
            }
        }
        Ok(Output::Json(out))
    }
}

pub(super) struct RotateKeyOnDemand {
    key: KeyRef,
}

impl Operation<Kms> for RotateKeyOnDemand {
    const NAME: &'static str = "RotateKeyOnDemand";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        Ok(RotateKeyOnDemand { key: KeyRef::parse(&i, "KeyId")? })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        k.require_enabled()?;
        if k.rec.spec != KeySpec::SYMMETRIC_DEFAULT {
            // AWS says nothing more here (recorded: an empty message), unlike EnableKeyRotation.
            return Err(KmsError::Unsupported(String::new()));
        }
        kms.require_rotatable(&k)?;
        let on_demand = k.rec.versions.iter().filter(|v| v.rotation_type.as_deref() == Some("ON_DEMAND")).count();
        if on_demand >= MAX_ON_DEMAND_ROTATIONS {
            return Err(KmsError::LimitExceeded(format!(
                "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: {}",
                k.arn
            )));
        }
        if k.rec.is_external() {
            kms.rotate_to_imported(&k)?;
        } else {
            kms.rotate(&k.rec.account, &k.rec.region, &k.rec.key_id, "ON_DEMAND")?;
        }
        Ok(Output::Json(json!({"KeyId": k.arn})))
    }
}

pub(super) struct ListKeyRotations {
    key: KeyRef,
    page: Later<Page>,
}

impl Operation<Kms> for ListKeyRotations {
    const NAME: &'static str = "ListKeyRotations";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let key = KeyRef::parse(&i, "KeyId")?;
        Ok(ListKeyRotations { key, page: Page::parse(&i, 100) })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let page = self.page?;
        k.require_not_pending()?;
        kms.require_rotatable_spec(&k)?;
        let current = k.rec.current().map(|l| l.material_id.as_str());
        let external = k.rec.is_external();
        let rotations: Vec<Value> = k
            .rec
            .versions
            .iter()
            .filter(|v| external || v.rotation_type.is_some())
            .map(|v| {
                let state = if v.pending_rotation {
                    "PENDING_ROTATION"
                } else if Some(v.material_id.as_str()) == current {
                    "CURRENT"
                } else {
                    "NON_CURRENT"
                };
                let mut e = json!({"KeyId": k.arn, "KeyMaterialId": v.material_id, "KeyMaterialState": state});
                if let Some(t) = &v.rotation_type {
                    put(&mut e, "RotationDate", json!(secs(v.created)));
                    put(&mut e, "RotationType", json!(t));
                }
                if external {
                    put(&mut e, "ImportState", json!(if v.present() { "IMPORTED" } else { "PENDING_IMPORT" }));
                    if let Some(d) = &v.description {
                        put(&mut e, "KeyMaterialDescription", json!(d));
                    }
                    if let Some(m) = &v.expiration_model {
                        put(&mut e, "ExpirationModel", json!(m));
                    }
                    if let Some(t) = v.valid_to {
                        put(&mut e, "ValidTo", json!(secs(t)));
                    }
                }
                e
            })
            .collect();
        page.answer("Rotations", rotations)
    }
}

pub(super) struct GetPublicKey {
    key: KeyRef,
}

impl Operation<Kms> for GetPublicKey {
    const NAME: &'static str = "GetPublicKey";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        super::grant_tokens(&i)?;
        Ok(GetPublicKey { key: KeyRef::parse(&i, "KeyId")? })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.key.plan(kms, ctx, Self::NAME, Vec::new())
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        k.require_enabled()?;
        if !k.rec.spec.is_asymmetric() {
            return Err(KmsError::Unsupported(format!(
                "{} key usage is {} which is not valid for GetPublicKey.",
                k.arn,
                k.rec.spec.as_str()
            )));
        }
        let mut out = json!({
            "KeyId": k.arn,
            "PublicKey": super::b64(&k.public_key()?),
            "CustomerMasterKeySpec": k.rec.spec.as_str(),
            "KeySpec": k.rec.spec.as_str(),
            "KeyUsage": k.rec.usage.as_str(),
        });
        let enc = k.rec.spec.encryption_algorithms(k.rec.usage);
        if !enc.is_empty() {
            put(&mut out, "EncryptionAlgorithms", json!(enc));
        }
        let sig = k.rec.spec.signing_algorithms(k.rec.usage);
        if !sig.is_empty() {
            put(&mut out, "SigningAlgorithms", json!(sig));
        }
        let agreement = k.rec.spec.key_agreement_algorithms(k.rec.usage);
        if !agreement.is_empty() {
            put(&mut out, "KeyAgreementAlgorithms", json!(agreement));
        }
        let encapsulation = k.rec.spec.encapsulation_algorithms();
        if !encapsulation.is_empty() {
            put(&mut out, "EncapsulationAlgorithms", json!(encapsulation));
        }
        Ok(Output::Json(out))
    }
}

/// `ReplicaRegion` / `PrimaryRegion`: AWS's pattern `^([a-z]+-){2,3}\d+$`.
fn region_member(i: &In<'_>, member: &str) -> Result<String> {
    let r = i.req_str_len(member, 1, 32)?;
    let parts: Vec<&str> = r.split('-').collect();
    let ok = (3..=4).contains(&parts.len())
        && parts
            .iter()
            .take(parts.len().saturating_sub(1))
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts.last().is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return Err(invalid_value(member, r, "Member must satisfy regular expression pattern: ^([a-z]+-){2,3}\\d+$"));
    }
    Ok(r.to_string())
}

fn not_primary(k: &Loaded) -> KmsError {
    match k.rec.multi_region_primary {
        None => KmsError::Unsupported(format!("{} is not a multi-Region key.", k.arn)),
        _ => KmsError::Unsupported(format!("{} is not a multi-region primary key.", k.arn)),
    }
}

/// ReplicateKey: a copy of a multi-Region primary key in another Region of the account, with the
/// same key ID, key material (every version), key spec, usage and rotation; its own policy,
/// description, tags, grants, aliases and state.
pub(super) struct ReplicateKey {
    key: KeyRef,
    region: String,
    tags: Vec<Tag>,
    description: Later<String>,
    /// `Policy` and `BypassPolicyLockoutSafetyCheck`, checked after the key's state.
    policy: Later<Option<(String, bool)>>,
}

impl Operation<Kms> for ReplicateKey {
    const NAME: &'static str = "ReplicateKey";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let region = region_member(&i, "ReplicaRegion")?;
        let tags = tags_input(&i)?;
        let key = KeyRef::parse(&i, "KeyId")?;
        let description = later(|| Ok(i.str_len("Description", 0, 8192)?.unwrap_or("").to_string()));
        let policy = later(|| match i.str_len("Policy", 1, MAX_POLICY)? {
            Some(p) => Ok(Some((p.to_string(), i.bool("BypassPolicyLockoutSafetyCheck")?))),
            None => Ok(None),
        });
        Ok(ReplicateKey { key, region, tags, description, policy })
    }

    /// AWS: kms:ReplicateKey on the primary key, kms:CreateKey (IAM) for the replica.
    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let extra = vec![("kms:ReplicaRegion".into(), s(&self.region))];
        let replicate = self.key.check(kms, ctx, "kms:ReplicateKey", extra)?;
        let mut create = AuthzCheck::new("kms:CreateKey", "*");
        create.context = tag_context(&self.tags);
        create.context.push(caller_account(ctx));
        create.context.push(("kms:MultiRegion".into(), s("true")));
        create.context.push(("kms:MultiRegionKeyType".into(), s("REPLICA")));
        Ok(AuthzPlan::Checks(vec![replicate, create]))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let region = self.region;
        let description = self.description?;
        if self.tags.len() > MAX_TAGS {
            return Err(super::too_many_tags());
        }
        if k.rec.multi_region_primary != Some(true) {
            return Err(not_primary(&k));
        }
        k.require_not_pending()?;
        if region == k.rec.region {
            return Err(KmsError::Validation(format!(
                "The replica Region {region} is the Region of the primary key {}.",
                k.arn
            )));
        }
        let policy = match self.policy? {
            Some((p, bypass)) => {
                kms.validate_policy(ctx, &p, bypass, None)?;
                p
            }
            None => default_key_policy(&k.rec.account),
        };
        let now = kms.now_ms();
        let replica_arn = key_arn(&region, &k.rec.account, &k.rec.key_id);
        // Imported key material is not copied: the replica waits (PendingImport) for the same
        // material to be imported into it, as in AWS.
        let external = k.rec.is_external();
        let versions = k
            .rec
            .versions
            .iter()
            .zip(k.materials())
            .map(|(v, m)| match m {
                Some(m) if !external => {
                    kms.seal_version(&replica_arn, m, &v.material_id, v.rotation_type.as_deref(), v.created)
                }
                _ => Ok(MaterialVersion { sealed: String::new(), valid_to: None, ..v.clone() }),
            })
            .collect::<Result<_>>()?;
        let tags = self.tags;
        let rec = KeyRec {
            account: k.rec.account.clone(),
            region: region.clone(),
            key_id: k.rec.key_id.clone(),
            created: now,
            description,
            spec: k.rec.spec,
            usage: k.rec.usage,
            manager: k.rec.manager.clone(),
            state: if external { KeyState::PendingImport } else { KeyState::Enabled },
            deletion_date: None,
            pending_window_days: None,
            policy: policy.clone(),
            tags: tags.clone(),
            rotation_enabled: k.rec.rotation_enabled,
            rotation_period_days: k.rec.rotation_period_days,
            next_rotation: k.rec.next_rotation,
            on_demand_rotation_start: None,
            versions,
            public_key: k.rec.public_key.clone(),
            grants: Vec::new(),
            multi_region_primary: Some(false),
            origin: k.rec.origin.clone(),
            custom_key_store_id: None,
            xks_key_id: None,
        };
        transact(kms.store.as_ref(), |tx| -> Result<()> {
            if tx.get(KEYS, &rec.store_key())?.is_some() {
                return Err(KmsError::AlreadyExists(format!(
                    "Replica key {replica_arn} already exists in Region {region}."
                )));
            }
            tx.put_json(KEYS, &rec.store_key(), &rec)?;
            Ok(())
        })?;
        let tags: Vec<Value> = tags.iter().map(|t| json!({"TagKey": t.key, "TagValue": t.value})).collect();
        // The answer describes the replica as it starts, as AWS's does (recorded): `Creating`, not
        // yet enabled, no key material ID. Rampart's replication is done when the call returns,
        // so DescribeKey in the replica's Region already shows it Enabled.
        let mut metadata = kms.key_metadata(&rec)?;
        if let Some(m) = metadata.as_object_mut() {
            m.insert("KeyState".into(), json!("Creating"));
            m.insert("Enabled".into(), json!(false));
            m.remove("CurrentKeyMaterialId");
        }
        let mut out = serde_json::Map::new();
        out.insert("ReplicaKeyMetadata".into(), metadata);
        out.insert("ReplicaPolicy".into(), json!(policy));
        if !tags.is_empty() {
            out.insert("ReplicaTags".into(), Value::Array(tags));
        }
        Ok(Output::Json(Value::Object(out)))
    }
}

/// UpdatePrimaryRegion: the replica in `PrimaryRegion` becomes the primary key.
pub(super) struct UpdatePrimaryRegion {
    key: KeyRef,
    region: String,
}

impl Operation<Kms> for UpdatePrimaryRegion {
    const NAME: &'static str = "UpdatePrimaryRegion";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let region = region_member(&i, "PrimaryRegion")?;
        Ok(UpdatePrimaryRegion { key: KeyRef::parse(&i, "KeyId")?, region })
    }

    /// AWS: kms:UpdatePrimaryRegion on the primary key and on the replica that becomes primary.
    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let action = super::action(Self::NAME);
        let extra: Vec<(ContextKey, ContextValue)> = vec![("kms:PrimaryRegion".into(), s(&self.region))];
        let k = self.key.load(kms, ctx)?;
        let mut checks = vec![kms.key_check(ctx, k, &action, extra.clone())];
        if let Some(r) = kms.load(&k.rec.account, &self.region, &k.rec.key_id)? {
            checks.push(kms.key_check(ctx, &r, &action, extra));
        }
        Ok(AuthzPlan::Checks(checks))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let k = self.key.planned(kms, ctx)?;
        let region = self.region;
        if k.rec.multi_region_primary != Some(true) {
            return Err(not_primary(&k));
        }
        if region == k.rec.region {
            return Ok(empty());
        }
        let (account, key_id) = (k.rec.account.clone(), k.rec.key_id.clone());
        transact(kms.store.as_ref(), |tx| -> Result<()> {
            let replica_sk = key_store_key(&account, &region, &key_id);
            let mut replica: KeyRec = tx.get_json(KEYS, &replica_sk)?.ok_or_else(|| {
                KmsError::NotFound(format!("Key '{}' does not exist", key_arn(&region, &account, &key_id)))
            })?;
            let mut primary: KeyRec = tx
                .get_json(KEYS, &k.rec.store_key())?
                .ok_or_else(|| KmsError::NotFound(format!("Key '{}' does not exist", k.arn)))?;
            if replica.state == KeyState::PendingDeletion {
                return Err(pending(&replica.arn()));
            }
            replica.multi_region_primary = Some(true);
            primary.multi_region_primary = Some(false);
            tx.put_json(KEYS, &replica_sk, &replica)?;
            tx.put_json(KEYS, &primary.store_key(), &primary)?;
            Ok(())
        })?;
        Ok(empty())
    }
}
