//! SSH public keys (for CodeCommit): UploadSSHPublicKey, GetSSHPublicKey, ListSSHPublicKeys,
//! UpdateSSHPublicKey, DeleteSSHPublicKey. At most five per user.

use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{op, AuthzPlan, CallerKind, Entry, Input, Operation, Output, RequestContext};
use serde::{Deserialize, Serialize};

use super::users::{no_such_user, require, user_check};
use super::{account, empty, one, paginate, xml, Core};
use crate::certs::{SshKey, SshKeyError};
use crate::db::{Lookup, Tx};
use crate::error::{IamError, Result};
use crate::model::UserRec;
use crate::util::{iso8601, now, random_id};
use crate::validate::{self as v, Args};

/// `{account}/{lower user}/{key id}` → [`SshKeyRec`].
pub const TABLE: &str = "iam_ssh_public_keys";
const MAX_PER_USER: usize = 5;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SshKeyRec {
    pub id: String,
    pub user: String,
    /// `type base64`, as normalised at upload.
    pub body: String,
    pub fingerprint: String,
    pub active: bool,
    pub uploaded: i64,
    /// Upload order (nanoseconds since the epoch at upload).
    #[serde(default)]
    pub seq: u64,
}

fn user_prefix(acct: &str, user: &str) -> String {
    format!("{acct}/{}/", user.to_ascii_lowercase())
}

/// The user's keys, oldest first.
pub fn user_keys(tx: &impl Scan, acct: &str, user: &str) -> Result<Vec<SshKeyRec>> {
    let mut keys: Vec<SshKeyRec> = tx.scan_rows(TABLE, &user_prefix(acct, user))?;
    keys.sort_by(|a, b| (a.seq, a.uploaded, &a.id).cmp(&(b.seq, b.uploaded, &b.id)));
    Ok(keys)
}

/// Prefix scans, the same on the store and in transactions.
pub trait Scan {
    fn scan_rows<T: serde::de::DeserializeOwned>(&self, table: &str, prefix: &str) -> Result<Vec<T>>;
}

impl Scan for crate::db::Db {
    fn scan_rows<T: serde::de::DeserializeOwned>(&self, table: &str, prefix: &str) -> Result<Vec<T>> {
        Ok(self.scan::<T>(table, prefix)?.into_iter().map(|(_, v)| v).collect())
    }
}

impl Scan for Tx<'_> {
    fn scan_rows<T: serde::de::DeserializeOwned>(&self, table: &str, prefix: &str) -> Result<Vec<T>> {
        Ok(self.scan::<T>(table, prefix)?.into_iter().map(|(_, v)| v).collect())
    }
}

/// Move `table`'s rows of a renamed user (UpdateUser); rows carry the user name in `user`.
pub fn rename_rows<T>(tx: &mut Tx<'_>, table: &str, acct: &str, old: &str, new: &str) -> Result<()>
where
    T: Serialize + serde::de::DeserializeOwned + HasOwner,
{
    for (key, mut row) in tx.scan::<T>(table, &user_prefix(acct, old))? {
        tx.delete(table, &key)?;
        row.set_owner(new);
        let id = row.row_id().to_string();
        tx.put(table, &format!("{}{id}", user_prefix(acct, new)), &row)?;
    }
    Ok(())
}

/// Rows owned by a user.
pub trait HasOwner {
    fn set_owner(&mut self, user: &str);
    fn row_id(&self) -> &str;
}

impl HasOwner for SshKeyRec {
    fn set_owner(&mut self, user: &str) {
        self.user = user.to_string();
    }
    fn row_id(&self) -> &str {
        &self.id
    }
}

fn no_such_key(id: &str) -> IamError {
    IamError::NoSuchEntity(format!("The Public Key with id {id} cannot be found."))
}

fn coded(code: &'static str, message: &str) -> IamError {
    IamError::Aws(AwsError::new(code, message, 400))
}

/// The user a call is about: `UserName`, or (ListSSHPublicKeys only) the calling IAM user.
fn target<'a>(ctx: &'a RequestContext, name: Option<&'a str>) -> Result<&'a str> {
    match (name, &ctx.caller.kind) {
        (Some(n), _) => Ok(n),
        (None, CallerKind::IamUser { user_name, .. }) => Ok(user_name),
        (None, _) => {
            Err(IamError::Aws(AwsError::validation("Must specify userName when calling with non-User credentials")))
        }
    }
}

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, UploadSSHPublicKey>(),
    op::<Core, GetSSHPublicKey>(),
    op::<Core, ListSSHPublicKeys>(),
    op::<Core, UpdateSSHPublicKey>(),
    op::<Core, DeleteSSHPublicKey>(),
];

pub struct UploadSSHPublicKey {
    user: String,
    /// The key as sent, which the answer repeats.
    body: String,
}

impl Operation<Core> for UploadSSHPublicKey {
    const NAME: &'static str = "UploadSSHPublicKey";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let user = a.req("UserName", &v::USER_NAME).to_string();
        let body = a.req("SSHPublicKeyBody", &v::PUBLIC_KEY_BODY).to_string();
        a.finish()?;
        Ok(UploadSSHPublicKey { user, body })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(user_check(core, ctx, Self::NAME, &self.user)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let key = SshKey::parse(&self.body).map_err(|e| match e {
            SshKeyError::Unrecognized => {
                coded("UnrecognizedPublicKeyEncoding", "The public key encoding format is unsupported or unrecognized.")
            }
            SshKeyError::Invalid => coded("InvalidPublicKey", "The public key is malformed or otherwise invalid."),
        })?;
        let rec = core.db.write(acct, |tx| {
            let u = require(tx, acct, &self.user)?;
            let existing = user_keys(tx, acct, &u.name)?;
            let fingerprint = key.fingerprint();
            if existing.iter().any(|k| k.fingerprint == fingerprint) {
                return Err(coded(
                    "DuplicateSSHPublicKey",
                    "The SSH public key you are trying to upload is already associated with this user.",
                ));
            }
            if existing.len() >= MAX_PER_USER {
                return Err(IamError::quota("SSHPublicKeysPerUser", MAX_PER_USER));
            }
            let rec = SshKeyRec {
                id: random_id("APKA", 20),
                user: u.name.clone(),
                body: key.ssh(),
                fingerprint,
                active: true,
                uploaded: now(),
                seq: crate::util::now_nanos(),
            };
            tx.put(TABLE, &format!("{}{}", user_prefix(acct, &u.name), rec.id), &rec)?;
            Ok(rec)
        })?;
        let mut w = XmlWriter::new();
        key_xml(&mut w, "SSHPublicKey", &rec, &self.body);
        xml(w.finish())
    }
}

pub struct GetSSHPublicKey {
    user: String,
    id: String,
    /// `Encoding=PEM` (else SSH).
    pem: bool,
    /// The user the plan read.
    found: Option<UserRec>,
}

impl Operation<Core> for GetSSHPublicKey {
    const NAME: &'static str = "GetSSHPublicKey";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let user = a.req("UserName", &v::USER_NAME).to_string();
        let id = a.req("SSHPublicKeyId", &v::PUBLIC_KEY_ID).to_string();
        let pem = a.req_enum("Encoding", &["SSH", "PEM"]) == "PEM";
        a.finish()?;
        Ok(GetSSHPublicKey { user, id, pem, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, found) = user_check(core, ctx, Self::NAME, &self.user)?;
        self.found = found;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        // NoSuchEntity for the user first, then the key.
        self.found.ok_or_else(|| no_such_user(&self.user))?;
        let rec = core
            .db
            .get::<SshKeyRec>(TABLE, &row_key(acct, &self.user, &self.id))?
            .ok_or_else(|| no_such_key(&self.id))?;
        let body = if self.pem {
            SshKey::parse(&rec.body)
                .ok()
                .and_then(|k| k.pem())
                .ok_or_else(|| IamError::Internal(format!("stored SSH key {} does not parse", rec.id)))?
        } else {
            rec.body.clone()
        };
        let mut w = XmlWriter::new();
        key_xml(&mut w, "SSHPublicKey", &rec, &body);
        xml(w.finish())
    }
}

/// ListSSHPublicKeys: the named user's keys, or the calling IAM user's.
pub struct ListSSHPublicKeys {
    user: Option<String>,
    marker: Option<String>,
    max: usize,
    /// The user the plan read.
    found: Option<UserRec>,
}

impl Operation<Core> for ListSSHPublicKeys {
    const NAME: &'static str = "ListSSHPublicKeys";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let user = a.opt("UserName", &v::USER_NAME).map(str::to_string);
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListSSHPublicKeys { user, marker, max, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, found) = user_check(core, ctx, Self::NAME, target(ctx, self.user.as_deref())?)?;
        self.found = found;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let user = target(ctx, self.user.as_deref())?;
        let u = self.found.ok_or_else(|| no_such_user(user))?;
        let keys = user_keys(&core.db, acct, &u.name)?;
        let indexed: Vec<(usize, SshKeyRec)> = keys.into_iter().enumerate().collect();
        let page = paginate(indexed, |(i, _)| format!("{i:05}"), self.marker.as_deref(), self.max);
        let mut w = XmlWriter::new();
        w.start("SSHPublicKeys");
        for (_, k) in &page.items {
            w.start("member")
                .elem("UserName", &k.user)
                .elem("SSHPublicKeyId", &k.id)
                .elem("Status", if k.active { "Active" } else { "Inactive" })
                .elem("UploadDate", &iso8601(k.uploaded))
                .end();
        }
        w.end();
        super::xml::truncation(&mut w, &page.next);
        xml(w.finish())
    }
}

pub struct UpdateSSHPublicKey {
    user: String,
    id: String,
    active: bool,
}

impl Operation<Core> for UpdateSSHPublicKey {
    const NAME: &'static str = "UpdateSSHPublicKey";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let user = a.req("UserName", &v::USER_NAME).to_string();
        let id = a.req("SSHPublicKeyId", &v::PUBLIC_KEY_ID).to_string();
        let active = a.req_enum("Status", &["Active", "Inactive"]) == "Active";
        a.finish()?;
        Ok(UpdateSSHPublicKey { user, id, active })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(user_check(core, ctx, Self::NAME, &self.user)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        core.db.write(acct, |tx| {
            let (key, mut rec) = owned(tx, acct, &self.user, &self.id)?;
            rec.active = self.active;
            tx.put(TABLE, &key, &rec)
        })?;
        empty()
    }
}

pub struct DeleteSSHPublicKey {
    user: String,
    id: String,
}

impl Operation<Core> for DeleteSSHPublicKey {
    const NAME: &'static str = "DeleteSSHPublicKey";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let user = a.req("UserName", &v::USER_NAME).to_string();
        let id = a.req("SSHPublicKeyId", &v::PUBLIC_KEY_ID).to_string();
        a.finish()?;
        Ok(DeleteSSHPublicKey { user, id })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(user_check(core, ctx, Self::NAME, &self.user)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        core.db.write(acct, |tx| {
            let (key, _) = owned(tx, acct, &self.user, &self.id)?;
            tx.delete(TABLE, &key).map(|_| ())
        })?;
        empty()
    }
}

fn key_xml(w: &mut XmlWriter, tag: &'static str, k: &SshKeyRec, body: &str) {
    w.start(tag)
        .elem("UserName", &k.user)
        .elem("SSHPublicKeyId", &k.id)
        .elem("Fingerprint", &k.fingerprint)
        .elem("SSHPublicKeyBody", body)
        .elem("Status", if k.active { "Active" } else { "Inactive" })
        .elem("UploadDate", &iso8601(k.uploaded))
        .end();
}

/// The store key of the user's key `id`.
fn row_key(acct: &str, user: &str, id: &str) -> String {
    format!("{}{id}", user_prefix(acct, user))
}

/// The user's key `id`; NoSuchEntity for the user first, then the key.
fn owned(tx: &impl Lookup, acct: &str, user: &str, id: &str) -> Result<(String, SshKeyRec)> {
    require(tx, acct, user)?;
    let key = row_key(acct, user, id);
    let rec = tx.get::<SshKeyRec>(TABLE, &key)?.ok_or_else(|| no_such_key(id))?;
    Ok((key, rec))
}
