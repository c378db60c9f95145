//! Access keys: CreateAccessKey, DeleteAccessKey, UpdateAccessKey, ListAccessKeys, GetAccessKeyLastUsed.
//! Root's own keys are handled too (calls without `UserName` by the root user).

use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{AuthzPlan, CallerKind, Output, RequestContext};

use super::users::{no_such_user, user_check};
use super::{account, check, empty, one, paginate, xml, Core};
use crate::db::{Lookup, Tx};
use crate::error::{IamError, Result};
use crate::model::{tables, AccessKeyRec, AccountRec, LastUsedRec, UserRec};
use crate::util::{access_key_id, iso8601, now, secret_access_key};
use crate::validate::{self as v, Args};

pub const OPS: &[&str] =
    &["CreateAccessKey", "DeleteAccessKey", "UpdateAccessKey", "ListAccessKeys", "GetAccessKeyLastUsed"];

const MAX_KEYS: usize = 2;

/// Whose keys a call is about: a named user, or (no `UserName`) the caller.
enum Owner<'a> {
    User(&'a str),
    Root,
}

fn owner<'a>(ctx: &'a RequestContext, name: Option<&'a str>) -> Result<Owner<'a>> {
    match (name, &ctx.caller.kind) {
        (Some(n), _) => Ok(Owner::User(n)),
        (None, CallerKind::IamUser { user_name, .. }) => Ok(Owner::User(user_name)),
        (None, CallerKind::Root) => Ok(Owner::Root),
        (None, _) => {
            Err(IamError::Aws(AwsError::validation("Must specify userName when calling with non-User credentials")))
        }
    }
}

fn no_such_key(id: &str) -> IamError {
    IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found."))
}

fn plan_owner(core: &Core, ctx: &RequestContext, op: &str, owner: &Owner<'_>) -> Result<AuthzPlan> {
    match owner {
        Owner::User(n) => one(user_check(core, ctx, op, n)?.0),
        Owner::Root => one(check(op, ctx.caller.arn.clone())),
    }
}

pub fn plan(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<AuthzPlan> {
    let acct = account(ctx);
    let mut a = Args::new(q);
    let name = a.opt("UserName", &v::EXISTING_USER_NAME);
    match op {
        "CreateAccessKey" => {
            a.finish()?;
            plan_owner(core, ctx, op, &owner(ctx, name)?)
        }
        "ListAccessKeys" => {
            a.paging();
            a.finish()?;
            plan_owner(core, ctx, op, &owner(ctx, name)?)
        }
        "DeleteAccessKey" | "UpdateAccessKey" => {
            a.req("AccessKeyId", &v::ACCESS_KEY_ID);
            if op == "UpdateAccessKey" {
                a.req_enum("Status", &["Active", "Inactive"]);
            }
            a.finish()?;
            plan_owner(core, ctx, op, &owner(ctx, name)?)
        }
        "GetAccessKeyLastUsed" => {
            let id = a.req("AccessKeyId", &v::ACCESS_KEY_ID);
            a.finish()?;
            match core.db.get::<AccessKeyRec>(tables::ACCESS_KEYS, id)?.filter(|k| k.account == acct) {
                Some(AccessKeyRec { user: Some(u), .. }) => one(user_check(core, ctx, op, &u)?.0),
                Some(_) => one(check(op, format!("arn:aws:iam::{acct}:root"))),
                None => one(check(op, "*")),
            }
        }
        _ => Err(IamError::Internal(format!("unrouted operation {op}"))),
    }
}

/// The owner's key IDs (inside a transaction).
fn owner_keys(tx: &impl Lookup, acct: &str, owner: &Owner<'_>) -> Result<Vec<String>> {
    match owner {
        Owner::User(n) => Ok(tx.entity::<UserRec>(acct, n)?.ok_or_else(|| no_such_user(n))?.keys),
        Owner::Root => Ok(tx.get::<AccountRec>(tables::ACCOUNTS, acct)?.map(|a| a.root_keys).unwrap_or_default()),
    }
}

/// The key, if it belongs to `owner` in `acct`.
fn owned_key(tx: &Tx<'_>, acct: &str, owner: &Owner<'_>, id: &str) -> Result<AccessKeyRec> {
    let rec = tx
        .get::<AccessKeyRec>(tables::ACCESS_KEYS, id)?
        .filter(|k| k.account == acct)
        .ok_or_else(|| no_such_key(id))?;
    let matches = match (owner, &rec.user) {
        (Owner::User(n), Some(u)) => n.eq_ignore_ascii_case(u),
        (Owner::Root, None) => true,
        _ => false,
    };
    if !matches {
        // A named user that does not exist is reported as such.
        if let Owner::User(n) = owner {
            tx.entity::<UserRec>(acct, n)?.ok_or_else(|| no_such_user(n))?;
        }
        return Err(no_such_key(id));
    }
    Ok(rec)
}

fn key_metadata(w: &mut XmlWriter, tag: &'static str, id: &str, rec: &AccessKeyRec) {
    w.start(tag);
    if let Some(u) = &rec.user {
        w.elem("UserName", u);
    }
    w.elem("AccessKeyId", id)
        .elem("Status", if rec.active { "Active" } else { "Inactive" })
        .elem("CreateDate", &iso8601(rec.created))
        .end();
}

pub fn run(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<Output> {
    let acct = account(ctx);
    let who = owner(ctx, q.get("UserName"))?;
    match op {
        "CreateAccessKey" => {
            let id = access_key_id();
            let secret = secret_access_key();
            let sealed = core.creds.seal(&id, &secret)?;
            let rec = core.db.write(acct, |tx| {
                let keys = owner_keys(tx, acct, &who)?;
                if keys.len() >= MAX_KEYS {
                    return Err(IamError::LimitExceeded(format!(
                        "Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS}"
                    )));
                }
                let user_name = match &who {
                    Owner::User(n) => {
                        let mut u = tx.entity::<UserRec>(acct, n)?.ok_or_else(|| no_such_user(n))?;
                        u.keys.push(id.clone());
                        tx.put_entity(acct, &u.name.clone(), &u)?;
                        Some(u.name)
                    }
                    Owner::Root => {
                        let mut a = tx
                            .get::<AccountRec>(tables::ACCOUNTS, acct)?
                            .ok_or_else(|| IamError::Internal(format!("account {acct} is not bootstrapped")))?;
                        a.root_keys.push(id.clone());
                        tx.put(tables::ACCOUNTS, acct, &a)?;
                        None
                    }
                };
                let rec = AccessKeyRec {
                    account: acct.to_string(),
                    user: user_name,
                    active: true,
                    created: now(),
                    sealed_secret: sealed,
                };
                tx.put(tables::ACCESS_KEYS, &id, &rec)?;
                Ok(rec)
            })?;
            let mut w = XmlWriter::new();
            w.start("AccessKey");
            if let Some(u) = &rec.user {
                w.elem("UserName", u);
            }
            w.elem("AccessKeyId", &id)
                .elem("Status", "Active")
                .elem("SecretAccessKey", &secret)
                .elem("CreateDate", &iso8601(rec.created))
                .end();
            xml(w.finish())
        }
        "DeleteAccessKey" => {
            let id = q.get("AccessKeyId").unwrap_or_default();
            core.db.write(acct, |tx| {
                let rec = owned_key(tx, acct, &who, id)?;
                match &rec.user {
                    Some(n) => {
                        let mut u = tx.entity::<UserRec>(acct, n)?.ok_or_else(|| no_such_user(n))?;
                        u.keys.retain(|k| k != id);
                        tx.put_entity(acct, &u.name.clone(), &u)?;
                    }
                    None => {
                        if let Some(mut a) = tx.get::<AccountRec>(tables::ACCOUNTS, acct)? {
                            a.root_keys.retain(|k| k != id);
                            tx.put(tables::ACCOUNTS, acct, &a)?;
                        }
                    }
                }
                tx.delete(tables::ACCESS_KEYS, id)?;
                tx.delete(tables::KEY_LAST_USED, id)?;
                Ok(())
            })?;
            empty()
        }
        "UpdateAccessKey" => {
            let id = q.get("AccessKeyId").unwrap_or_default();
            let active = q.get("Status") == Some("Active");
            core.db.write(acct, |tx| {
                let mut rec = owned_key(tx, acct, &who, id)?;
                rec.active = active;
                tx.put(tables::ACCESS_KEYS, id, &rec)
            })?;
            empty()
        }
        "ListAccessKeys" => {
            let (marker, max) = Args::new(q).paging();
            let mut keys = Vec::new();
            for id in owner_keys(&core.db, acct, &who)? {
                if let Some(rec) = core.db.get::<AccessKeyRec>(tables::ACCESS_KEYS, &id)? {
                    keys.push((id, rec));
                }
            }
            keys.sort_by(|a, b| a.0.cmp(&b.0));
            let page = paginate(keys, |(id, _)| id.clone(), marker, max);
            let mut w = XmlWriter::new();
            w.start("AccessKeyMetadata");
            for (id, rec) in &page.items {
                key_metadata(&mut w, "member", id, rec);
            }
            w.end();
            super::xml::truncation(&mut w, &page.next);
            xml(w.finish())
        }
        "GetAccessKeyLastUsed" => {
            let id = q.get("AccessKeyId").unwrap_or_default();
            let rec = core
                .db
                .get::<AccessKeyRec>(tables::ACCESS_KEYS, id)?
                .filter(|k| k.account == acct)
                .ok_or_else(|| no_such_key(id))?;
            let used = core.db.get::<LastUsedRec>(tables::KEY_LAST_USED, id)?;
            let mut w = XmlWriter::new();
            if let Some(u) = &rec.user {
                w.elem("UserName", u);
            }
            w.start("AccessKeyLastUsed");
            match used {
                Some(u) => {
                    w.elem("LastUsedDate", &iso8601(u.at)).elem("ServiceName", &u.service).elem("Region", &u.region);
                }
                None => {
                    w.elem("ServiceName", "N/A").elem("Region", "N/A");
                }
            }
            w.end();
            xml(w.finish())
        }
        _ => Err(IamError::Internal(format!("unrouted operation {op}"))),
    }
}
