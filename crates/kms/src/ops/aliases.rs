//! Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

use rampart_service::{op, AuthzCheck, AuthzPlan, Entry, Input, Operation, Output, RequestContext};
use rampart_store::{transact, ReadExt, TransactionExt};
use serde_json::{json, Value};

use super::{account_plan, action, empty, key_id_or_arn_only, later, names_alias, KeyRef, Later, Page};
use crate::core::{Kms, Loaded};
use crate::error::{KmsError, Result};
use crate::input::{invalid_value, In};
use crate::model::*;

/// The operations of this family, each listed once.
pub(super) const OPS: &[Entry<Kms>] =
    &[op::<Kms, CreateAlias>(), op::<Kms, UpdateAlias>(), op::<Kms, DeleteAlias>(), op::<Kms, ListAliases>()];

/// AWS's checks on an `AliasName`, in its order: the model's pattern (`^[a-zA-Z0-9:/_-]+$`,
/// ValidationException naming the value), then the service's rules — the `alias/` prefix
/// ("Invalid identifier"), the reserved `alias/aws/` prefix (NotAuthorizedException, no message),
/// and `:` (allowed by the pattern, refused in a name).
fn alias_name(i: &In<'_>) -> Result<String> {
    let name = i.req_str_len("AliasName", 1, 256)?;
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-')) {
        return Err(invalid_value(
            "AliasName",
            name,
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
        ));
    }
    // Without the prefix, AWS's recorded wording; `alias/` alone stays "Invalid identifier".
    if !name.starts_with("alias/") {
        return Err(KmsError::Validation(
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html".into(),
        ));
    }
    if name.len() == "alias/".len() {
        return Err(KmsError::Validation("Invalid identifier".into()));
    }
    if name.starts_with("alias/aws/") {
        return Err(KmsError::NotAuthorized(String::new()));
    }
    if name.contains(':') {
        return Err(KmsError::Validation(format!("{name} contains invalid characters for an alias")));
    }
    Ok(name.to_string())
}

fn alias_not_found(ctx: &RequestContext, name: &str) -> KmsError {
    KmsError::NotFound(format!("Alias {} is not found.", alias_arn(&ctx.region, &ctx.caller.account_id, name)))
}

/// The check on the alias itself, and on the key it names now.
fn current_alias_checks(kms: &Kms, ctx: &RequestContext, action: &str, name: &str) -> Result<Vec<AuthzCheck>> {
    let alias_res = alias_arn(&ctx.region, &ctx.caller.account_id, name);
    let a = kms.alias(&ctx.caller.account_id, &ctx.region, name)?.ok_or_else(|| alias_not_found(ctx, name))?;
    let k = kms.resolve(ctx, &a.target_key_id)?;
    Ok(vec![AuthzCheck::new(action, alias_res), kms.key_check(ctx, &k, action, Vec::new())])
}

/// An alias's target must be a key of the caller's account.
fn own_key(ctx: &RequestContext, k: &Loaded) -> Result<()> {
    if k.rec.account != ctx.caller.account_id {
        return Err(KmsError::NotFound(format!("Key '{}' does not exist", k.arn)));
    }
    Ok(())
}

/// CreateAlias, and UpdateAlias (`UPDATE`: the alias exists and is pointed at another key).
pub(super) struct SetAlias<const UPDATE: bool> {
    name: String,
    /// `TargetKeyId`, checked after the alias (UpdateAlias) is found.
    target: Later<KeyRef>,
}

pub(super) type CreateAlias = SetAlias<false>;
pub(super) type UpdateAlias = SetAlias<true>;

impl<const UPDATE: bool> Operation<Kms> for SetAlias<UPDATE> {
    const NAME: &'static str = if UPDATE { "UpdateAlias" } else { "CreateAlias" };
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        let name = alias_name(&i)?;
        let target = later(|| {
            let target = i.key_id("TargetKeyId")?;
            if names_alias(target) {
                return Err(KmsError::Validation("Aliases must refer to keys. Not aliases".into()));
            }
            Ok(KeyRef::named(target))
        });
        Ok(SetAlias { name, target })
    }

    /// The alias, the key it names now (UpdateAlias), and the new target key.
    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        let action = action(Self::NAME);
        let mut checks = if UPDATE {
            current_alias_checks(kms, ctx, &action, &self.name)?
        } else {
            vec![AuthzCheck::new(&action, alias_arn(&ctx.region, &ctx.caller.account_id, &self.name))]
        };
        let target = self.target.as_mut().map_err(|e| e.clone())?.load(kms, ctx)?;
        own_key(ctx, target)?;
        checks.push(kms.key_check(ctx, target, &action, Vec::new()));
        Ok(AuthzPlan::Checks(checks))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let name = self.name;
        let k = self.target?.planned(kms, ctx)?;
        own_key(ctx, &k)?;
        k.require_not_pending()?;
        let now = kms.now_ms();
        let sk = alias_store_key(&ctx.caller.account_id, &ctx.region, &name);
        transact(kms.store.as_ref(), |tx| -> Result<()> {
            let existing: Option<AliasRec> = tx.get_json(ALIASES, &sk)?;
            let rec = match (existing, UPDATE) {
                (Some(_), false) => {
                    return Err(KmsError::AlreadyExists(format!(
                        "An alias with the name {} already exists",
                        alias_arn(&ctx.region, &ctx.caller.account_id, &name)
                    )))
                }
                (None, false) => {
                    AliasRec { name: name.clone(), target_key_id: k.rec.key_id.clone(), created: now, updated: now }
                }
                (Some(mut a), true) => {
                    a.target_key_id = k.rec.key_id.clone();
                    a.updated = now;
                    a
                }
                (None, true) => return Err(alias_not_found(ctx, &name)),
            };
            tx.put_json(ALIASES, &sk, &rec)?;
            Ok(())
        })?;
        Ok(empty())
    }
}

pub(super) struct DeleteAlias {
    name: String,
}

impl Operation<Kms> for DeleteAlias {
    const NAME: &'static str = "DeleteAlias";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(DeleteAlias { name: alias_name(&In(input.json()))? })
    }

    /// The alias and the key it names.
    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        Ok(AuthzPlan::Checks(current_alias_checks(kms, ctx, &action(Self::NAME), &self.name)?))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let sk = alias_store_key(&ctx.caller.account_id, &ctx.region, &self.name);
        transact(kms.store.as_ref(), |tx| -> Result<()> {
            if !tx.delete(ALIASES, &sk)? {
                return Err(alias_not_found(ctx, &self.name));
            }
            Ok(())
        })?;
        Ok(empty())
    }
}

/// What ListAliases checks after authorization: the page, and the key whose aliases to list.
struct AliasFilter {
    page: Page,
    key_id: Option<String>,
}

pub(super) struct ListAliases {
    filter: Later<AliasFilter>,
}

impl Operation<Kms> for ListAliases {
    const NAME: &'static str = "ListAliases";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        key_id_or_arn_only(&i)?;
        let filter = later(|| {
            let page = Page::parse(&i, 50)?;
            Ok(AliasFilter { page, key_id: i.str_len("KeyId", 1, 2048)?.map(str::to_string) })
        });
        Ok(ListAliases { filter })
    }

    fn authorize(&mut self, _: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        Ok(account_plan(ctx, Self::NAME))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let AliasFilter { page, key_id } = self.filter?;
        let filter = match key_id {
            Some(id) => Some(kms.resolve(ctx, &id)?.rec.key_id.clone()),
            None => None,
        };
        let prefix = format!("{}/{}/", ctx.caller.account_id, ctx.region);
        let aliases: Vec<Value> = kms
            .store
            .scan_json::<AliasRec>(ALIASES, &prefix)?
            .into_iter()
            .filter(|(_, a)| filter.as_ref().is_none_or(|f| *f == a.target_key_id))
            .map(|(_, a)| {
                json!({
                    "AliasName": a.name,
                    "AliasArn": alias_arn(&ctx.region, &ctx.caller.account_id, &a.name),
                    "TargetKeyId": a.target_key_id,
                    "CreationDate": secs(a.created),
                    "LastUpdatedDate": secs(a.updated),
                })
            })
            .collect();
        page.answer("Aliases", aliases)
    }
}
