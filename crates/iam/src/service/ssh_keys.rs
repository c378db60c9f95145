//! SSH public keys (for CodeCommit): UploadSSHPublicKey, GetSSHPublicKey, ListSSHPublicKeys,
//! UpdateSSHPublicKey, DeleteSSHPublicKey. At most five per user.

use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{AuthzPlan, CallerKind, Output, RequestContext};
use serde::{Deserialize, Serialize};

use super::users::{require, user_check};
use super::{account, empty, one, paginate, xml, Core};
use crate::certs::{SshKey, SshKeyError};
use crate::db::{Lookup, Tx};
use crate::error::{IamError, Result};
use crate::util::{iso8601, now, random_id};
use crate::validate::{self as v, Args};

pub const OPS: &[&str] =
    &["UploadSSHPublicKey", "GetSSHPublicKey", "ListSSHPublicKeys", "UpdateSSHPublicKey", "DeleteSSHPublicKey"];

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

fn parse(a: &mut Args<'_>, op: &str) {
    match op {
        "UploadSSHPublicKey" => {
            a.req("SSHPublicKeyBody", &v::PUBLIC_KEY_BODY);
        }
        "GetSSHPublicKey" => {
            a.req("SSHPublicKeyId", &v::PUBLIC_KEY_ID);
            a.req_enum("Encoding", &["SSH", "PEM"]);
        }
        "UpdateSSHPublicKey" => {
            a.req("SSHPublicKeyId", &v::PUBLIC_KEY_ID);
            a.req_enum("Status", &["Active", "Inactive"]);
        }
        "DeleteSSHPublicKey" => {
            a.req("SSHPublicKeyId", &v::PUBLIC_KEY_ID);
        }
        _ => {
            a.paging();
        }
    }
}

pub fn plan(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<AuthzPlan> {
    let mut a = Args::new(q);
    let name = if op == "ListSSHPublicKeys" {
        a.opt("UserName", &v::USER_NAME)
    } else {
        Some(a.req("UserName", &v::USER_NAME))
    };
    parse(&mut a, op);
    a.finish()?;
    one(user_check(core, ctx, op, target(ctx, name)?)?.0)
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

/// The user's key `id`; NoSuchEntity for the user first, then the key.
fn owned(tx: &impl Lookup, acct: &str, user: &str, id: &str) -> Result<(String, SshKeyRec)> {
    require(tx, acct, user)?;
    let key = format!("{}{id}", user_prefix(acct, user));
    let rec = tx.get::<SshKeyRec>(TABLE, &key)?.ok_or_else(|| no_such_key(id))?;
    Ok((key, rec))
}

pub fn run(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<Output> {
    let acct = account(ctx);
    let user = target(ctx, q.get("UserName"))?;
    let id = q.get("SSHPublicKeyId").unwrap_or_default();
    match op {
        "UploadSSHPublicKey" => {
            let key = SshKey::parse(q.get("SSHPublicKeyBody").unwrap_or_default()).map_err(|e| match e {
                SshKeyError::Unrecognized => coded(
                    "UnrecognizedPublicKeyEncoding",
                    "The public key encoding format is unsupported or unrecognized.",
                ),
                SshKeyError::Invalid => coded("InvalidPublicKey", "The public key is malformed or otherwise invalid."),
            })?;
            let rec = core.db.write(acct, |tx| {
                let u = require(tx, acct, user)?;
                let existing = user_keys(tx, acct, &u.name)?;
                let fingerprint = key.fingerprint();
                if existing.iter().any(|k| k.fingerprint == fingerprint) {
                    return Err(coded(
                        "DuplicateSSHPublicKey",
                        "The SSH public key you are trying to upload is already associated with this user.",
                    ));
                }
                if existing.len() >= MAX_PER_USER {
                    return Err(IamError::LimitExceeded(format!(
                        "Cannot exceed quota for SSHPublicKeysPerUser: {MAX_PER_USER}"
                    )));
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
            key_xml(&mut w, "SSHPublicKey", &rec, q.get("SSHPublicKeyBody").unwrap_or_default());
            xml(w.finish())
        }
        "GetSSHPublicKey" => {
            let (_, rec) = owned(&core.db, acct, user, id)?;
            let body = if q.get("Encoding") == Some("PEM") {
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
        "ListSSHPublicKeys" => {
            let (marker, max) = Args::new(q).paging();
            let u = require(&core.db, acct, user)?;
            let keys = user_keys(&core.db, acct, &u.name)?;
            let indexed: Vec<(usize, SshKeyRec)> = keys.into_iter().enumerate().collect();
            let page = paginate(indexed, |(i, _)| format!("{i:05}"), marker, max);
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
        "UpdateSSHPublicKey" => {
            let active = q.get("Status") == Some("Active");
            core.db.write(acct, |tx| {
                let (key, mut rec) = owned(tx, acct, user, id)?;
                rec.active = active;
                tx.put(TABLE, &key, &rec)
            })?;
            empty()
        }
        "DeleteSSHPublicKey" => {
            core.db.write(acct, |tx| {
                let (key, _) = owned(tx, acct, user, id)?;
                tx.delete(TABLE, &key).map(|_| ())
            })?;
            empty()
        }
        _ => Err(IamError::Internal(format!("unrouted operation {op}"))),
    }
}
