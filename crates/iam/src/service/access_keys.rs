//! Access keys: CreateAccessKey, DeleteAccessKey, UpdateAccessKey, ListAccessKeys, GetAccessKeyLastUsed.
//! Root's own keys are handled too (calls without `UserName` by the root user).

use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{op, AuthzPlan, CallerKind, Entry, Input, Operation, Output, RequestContext};

use super::users::{no_such_user, user_check};
use super::{account, check, empty, one, paginate, xml, Core};
use crate::db::{Lookup, Tx};
use crate::error::{IamError, Result};
use crate::model::{tables, AccessKeyRec, AccountRec, LastUsedRec, UserRec};
use crate::util::{access_key_id, iso8601, now, secret_access_key};
use crate::validate::{self as v, Args};

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, CreateAccessKey>(),
    op::<Core, DeleteAccessKey>(),
    op::<Core, UpdateAccessKey>(),
    op::<Core, ListAccessKeys>(),
    op::<Core, GetAccessKeyLastUsed>(),
];

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

/// The check on the keys' owner, and the owning user as the check read it (`None` for root or
/// a user that does not exist).
fn plan_owner(core: &Core, ctx: &RequestContext, op: &str, name: Option<&str>) -> Result<(AuthzPlan, Option<UserRec>)> {
    match owner(ctx, name)? {
        Owner::User(n) => {
            let (c, user) = user_check(core, ctx, op, n)?;
            Ok((one(c)?, user))
        }
        Owner::Root => Ok((one(check(op, ctx.caller.arn.clone()))?, None)),
    }
}

/// The optional `UserName` every call of the family reads first.
fn user_name(a: &mut Args<'_>) -> Option<String> {
    a.opt("UserName", &v::EXISTING_USER_NAME).map(str::to_string)
}

pub struct CreateAccessKey {
    name: Option<String>,
}

impl Operation<Core> for CreateAccessKey {
    const NAME: &'static str = "CreateAccessKey";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = user_name(&mut a);
        a.finish()?;
        Ok(CreateAccessKey { name })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        Ok(plan_owner(core, ctx, Self::NAME, self.name.as_deref())?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let who = owner(ctx, self.name.as_deref())?;
        let id = access_key_id();
        let secret = secret_access_key();
        let sealed = core.creds.seal(&id, &secret)?;
        let rec = core.db.write(acct, |tx| {
            let keys = owner_keys(tx, acct, &who)?;
            if keys.len() >= MAX_KEYS {
                return Err(IamError::quota("AccessKeysPerUser", MAX_KEYS));
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
}

pub struct DeleteAccessKey {
    name: Option<String>,
    id: String,
}

impl Operation<Core> for DeleteAccessKey {
    const NAME: &'static str = "DeleteAccessKey";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = user_name(&mut a);
        let id = a.req("AccessKeyId", &v::ACCESS_KEY_ID).to_string();
        a.finish()?;
        Ok(DeleteAccessKey { name, id })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        Ok(plan_owner(core, ctx, Self::NAME, self.name.as_deref())?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let who = owner(ctx, self.name.as_deref())?;
        let id = self.id.as_str();
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
}

pub struct UpdateAccessKey {
    name: Option<String>,
    id: String,
    active: bool,
}

impl Operation<Core> for UpdateAccessKey {
    const NAME: &'static str = "UpdateAccessKey";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = user_name(&mut a);
        let id = a.req("AccessKeyId", &v::ACCESS_KEY_ID).to_string();
        let active = a.req_enum("Status", &["Active", "Inactive"]) == "Active";
        a.finish()?;
        Ok(UpdateAccessKey { name, id, active })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        Ok(plan_owner(core, ctx, Self::NAME, self.name.as_deref())?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let who = owner(ctx, self.name.as_deref())?;
        core.db.write(acct, |tx| {
            let mut rec = owned_key(tx, acct, &who, &self.id)?;
            rec.active = self.active;
            tx.put(tables::ACCESS_KEYS, &self.id, &rec)
        })?;
        empty()
    }
}

pub struct ListAccessKeys {
    name: Option<String>,
    marker: Option<String>,
    max: usize,
    /// The owning user the plan read (`None` for root, or a user that does not exist).
    user: Option<UserRec>,
}

impl Operation<Core> for ListAccessKeys {
    const NAME: &'static str = "ListAccessKeys";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = user_name(&mut a);
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListAccessKeys { name, marker, max, user: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (plan, user) = plan_owner(core, ctx, Self::NAME, self.name.as_deref())?;
        self.user = user;
        Ok(plan)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let ids = match owner(ctx, self.name.as_deref())? {
            Owner::User(n) => self.user.ok_or_else(|| no_such_user(n))?.keys,
            Owner::Root => owner_keys(&core.db, acct, &Owner::Root)?,
        };
        let mut keys = Vec::new();
        for id in ids {
            if let Some(rec) = core.db.get::<AccessKeyRec>(tables::ACCESS_KEYS, &id)? {
                keys.push((id, rec));
            }
        }
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        let page = paginate(keys, |(id, _)| id.clone(), self.marker.as_deref(), self.max);
        let mut w = XmlWriter::new();
        w.start("AccessKeyMetadata");
        for (id, rec) in &page.items {
            key_metadata(&mut w, "member", id, rec);
        }
        w.end();
        super::xml::truncation(&mut w, &page.next);
        xml(w.finish())
    }
}

pub struct GetAccessKeyLastUsed {
    id: String,
    /// The key the plan read (when it is in the caller's account), which the answer describes.
    key: Option<AccessKeyRec>,
}

impl Operation<Core> for GetAccessKeyLastUsed {
    const NAME: &'static str = "GetAccessKeyLastUsed";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        // The request has only AccessKeyId (botocore's GetAccessKeyLastUsedRequest): the key
        // names its owner, whoever the caller is.
        let mut a = Args::new(input.query());
        let id = a.req("AccessKeyId", &v::ACCESS_KEY_ID).to_string();
        a.finish()?;
        Ok(GetAccessKeyLastUsed { id, key: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let acct = account(ctx);
        self.key = core.db.get::<AccessKeyRec>(tables::ACCESS_KEYS, &self.id)?.filter(|k| k.account == acct);
        match &self.key {
            Some(AccessKeyRec { user: Some(u), .. }) => one(user_check(core, ctx, Self::NAME, u)?.0),
            Some(_) => one(check(Self::NAME, format!("arn:aws:iam::{acct}:root"))),
            None => one(check(Self::NAME, "*")),
        }
    }

    fn run(self, core: &Core, _: &RequestContext) -> Result<Output> {
        let rec = self.key.ok_or_else(|| no_such_key(&self.id))?;
        let used = core.db.get::<LastUsedRec>(tables::KEY_LAST_USED, &self.id)?;
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
