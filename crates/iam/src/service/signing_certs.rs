//! X.509 signing certificates: UploadSigningCertificate, ListSigningCertificates,
//! UpdateSigningCertificate, DeleteSigningCertificate. At most two per user (or for the root user).

use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{op, AuthzPlan, CallerKind, Entry, Input, Operation, Output, RequestContext};
use serde::{Deserialize, Serialize};

use super::ssh_keys::{HasOwner, Scan};
use super::users::{no_such_user, require, user_check};
use super::{account, check, empty, one, paginate, xml, Core};
use crate::certs::parse_cert;
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::UserRec;
use crate::util::{iso8601, now, random_id};
use crate::validate::{self as v, Args};

/// `{account}/{lower user}/{certificate id}` → [`SigningCertRec`]; the root user's are under
/// `{account}/:root/` (`:` never appears in user names).
pub const TABLE: &str = "iam_signing_certificates";
const MAX_PER_USER: usize = 2;
const ROOT: &str = ":root";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SigningCertRec {
    pub id: String,
    /// The user name; `None` for the root user's certificates.
    pub user: Option<String>,
    pub body: String,
    /// DER of the certificate, hex (duplicate detection).
    pub der_hex: String,
    pub active: bool,
    pub uploaded: i64,
    /// Upload order (nanoseconds since the epoch at upload).
    #[serde(default)]
    pub seq: u64,
}

impl HasOwner for SigningCertRec {
    fn set_owner(&mut self, user: &str) {
        self.user = Some(user.to_string());
    }
    fn row_id(&self) -> &str {
        &self.id
    }
}

fn prefix(acct: &str, owner: Option<&str>) -> String {
    format!("{acct}/{}/", owner.map_or(ROOT.to_string(), str::to_ascii_lowercase))
}

/// The owner's certificates, oldest first (`None` = the root user).
pub fn owner_certs(tx: &impl Scan, acct: &str, owner: Option<&str>) -> Result<Vec<SigningCertRec>> {
    let mut certs: Vec<SigningCertRec> = tx.scan_rows(TABLE, &prefix(acct, owner))?;
    certs.sort_by(|a, b| (a.seq, a.uploaded, &a.id).cmp(&(b.seq, b.uploaded, &b.id)));
    Ok(certs)
}

fn no_such_cert(id: &str) -> IamError {
    IamError::NoSuchEntity(format!("The Certificate with id {id} cannot be found."))
}

/// Whose certificates: `UserName`, else the calling IAM user, else the root user.
fn owner<'a>(ctx: &'a RequestContext, name: Option<&'a str>) -> Result<Option<&'a str>> {
    match (name, &ctx.caller.kind) {
        (Some(n), _) => Ok(Some(n)),
        (None, CallerKind::IamUser { user_name, .. }) => Ok(Some(user_name)),
        (None, CallerKind::Root) => Ok(None),
        (None, _) => {
            Err(IamError::Aws(AwsError::validation("Must specify userName when calling with non-User credentials")))
        }
    }
}

/// The owner's name as stored (NoSuchEntity for a user that is not there).
fn owner_name(tx: &impl Lookup, acct: &str, owner: Option<&str>) -> Result<Option<String>> {
    owner.map(|n| require(tx, acct, n).map(|u| u.name)).transpose()
}

fn cert_xml(w: &mut XmlWriter, tag: &'static str, c: &SigningCertRec) {
    w.start(tag);
    if let Some(u) = &c.user {
        w.elem("UserName", u);
    }
    w.elem("CertificateId", &c.id)
        .elem("CertificateBody", &c.body)
        .elem("Status", if c.active { "Active" } else { "Inactive" })
        .elem("UploadDate", &iso8601(c.uploaded))
        .end();
}

fn coded(code: &'static str, message: &str, status: u16) -> IamError {
    IamError::Aws(AwsError::new(code, message, status))
}

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, UploadSigningCertificate>(),
    op::<Core, ListSigningCertificates>(),
    op::<Core, UpdateSigningCertificate>(),
    op::<Core, DeleteSigningCertificate>(),
];

/// `iam:{action}` on the owner (the user, or the root user itself); keeps the user the check read.
fn owner_check(
    core: &Core,
    ctx: &RequestContext,
    action: &str,
    name: Option<&str>,
    found: &mut Option<UserRec>,
) -> Result<AuthzPlan> {
    match owner(ctx, name)? {
        Some(n) => {
            let (c, user) = user_check(core, ctx, action, n)?;
            *found = user;
            one(c)
        }
        None => one(check(action, ctx.caller.arn.clone())),
    }
}

/// The owner's name as the plan read it (NoSuchEntity for a user that is not there).
fn found_name(who: Option<&str>, found: Option<UserRec>) -> Result<Option<String>> {
    match who {
        Some(n) => found.map(|u| Some(u.name)).ok_or_else(|| no_such_user(n)),
        None => Ok(None),
    }
}

pub struct UploadSigningCertificate {
    user: Option<String>,
    body: String,
    /// The user the plan read.
    found: Option<UserRec>,
}

impl Operation<Core> for UploadSigningCertificate {
    const NAME: &'static str = "UploadSigningCertificate";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let user = a.opt("UserName", &v::EXISTING_USER_NAME).map(str::to_string);
        let body = a.req("CertificateBody", &v::CERTIFICATE_BODY).to_string();
        a.finish()?;
        Ok(UploadSigningCertificate { user, body, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        owner_check(core, ctx, Self::NAME, self.user.as_deref(), &mut self.found)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let who = owner(ctx, self.user.as_deref())?;
        let info = parse_cert(&self.body).ok_or_else(|| {
            coded(
                "MalformedCertificate",
                "Unable to parse certificate. Please ensure the certificate is in PEM format.",
                400,
            )
        })?;
        // A user that does not exist is reported before the certificate's validity.
        found_name(who, self.found)?;
        let t = now();
        if info.not_after < t || info.not_before > t {
            return Err(coded("InvalidCertificate", "The certificate is not valid at this time.", 400));
        }
        let der_hex = crate::util::to_hex(&info.der);
        let rec = core.db.write(acct, |tx| {
            let name = owner_name(tx, acct, who)?;
            let existing = owner_certs(tx, acct, name.as_deref())?;
            if existing.iter().any(|c| c.der_hex == der_hex) {
                return Err(coded(
                    "DuplicateCertificate",
                    "The certificate you are trying to upload is already associated with this user.",
                    409,
                ));
            }
            if existing.len() >= MAX_PER_USER {
                return Err(IamError::quota("CertificatesPerUser", MAX_PER_USER));
            }
            let rec = SigningCertRec {
                id: random_id("", 32),
                user: name.clone(),
                body: self.body.clone(),
                der_hex,
                active: true,
                uploaded: t,
                seq: crate::util::now_nanos(),
            };
            tx.put(TABLE, &format!("{}{}", prefix(acct, name.as_deref()), rec.id), &rec)?;
            Ok(rec)
        })?;
        let mut w = XmlWriter::new();
        cert_xml(&mut w, "Certificate", &rec);
        xml(w.finish())
    }
}

pub struct ListSigningCertificates {
    user: Option<String>,
    marker: Option<String>,
    max: usize,
    /// The user the plan read.
    found: Option<UserRec>,
}

impl Operation<Core> for ListSigningCertificates {
    const NAME: &'static str = "ListSigningCertificates";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let user = a.opt("UserName", &v::EXISTING_USER_NAME).map(str::to_string);
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListSigningCertificates { user, marker, max, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        owner_check(core, ctx, Self::NAME, self.user.as_deref(), &mut self.found)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let name = found_name(owner(ctx, self.user.as_deref())?, self.found)?;
        let certs = owner_certs(&core.db, acct, name.as_deref())?;
        let indexed: Vec<(usize, SigningCertRec)> = certs.into_iter().enumerate().collect();
        let page = paginate(indexed, |(i, _)| format!("{i:05}"), self.marker.as_deref(), self.max);
        let mut w = XmlWriter::new();
        w.start("Certificates");
        for (_, c) in &page.items {
            cert_xml(&mut w, "member", c);
        }
        w.end();
        super::xml::truncation(&mut w, &page.next);
        xml(w.finish())
    }
}

pub struct UpdateSigningCertificate {
    user: Option<String>,
    id: String,
    active: bool,
}

impl Operation<Core> for UpdateSigningCertificate {
    const NAME: &'static str = "UpdateSigningCertificate";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let user = a.opt("UserName", &v::EXISTING_USER_NAME).map(str::to_string);
        let id = a.req("CertificateId", &v::CERTIFICATE_ID).to_string();
        let active = a.req_enum("Status", &["Active", "Inactive"]) == "Active";
        a.finish()?;
        Ok(UpdateSigningCertificate { user, id, active })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        owner_check(core, ctx, Self::NAME, self.user.as_deref(), &mut None)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let who = owner(ctx, self.user.as_deref())?;
        core.db.write(acct, |tx| {
            let (key, mut rec) = owned(tx, acct, who, &self.id)?;
            rec.active = self.active;
            tx.put(TABLE, &key, &rec)
        })?;
        empty()
    }
}

pub struct DeleteSigningCertificate {
    user: Option<String>,
    id: String,
}

impl Operation<Core> for DeleteSigningCertificate {
    const NAME: &'static str = "DeleteSigningCertificate";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let user = a.opt("UserName", &v::EXISTING_USER_NAME).map(str::to_string);
        let id = a.req("CertificateId", &v::CERTIFICATE_ID).to_string();
        a.finish()?;
        Ok(DeleteSigningCertificate { user, id })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        owner_check(core, ctx, Self::NAME, self.user.as_deref(), &mut None)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let who = owner(ctx, self.user.as_deref())?;
        core.db.write(acct, |tx| {
            let (key, _) = owned(tx, acct, who, &self.id)?;
            tx.delete(TABLE, &key).map(|_| ())
        })?;
        empty()
    }
}

/// The owner's certificate `id` (in a transaction); NoSuchEntity for the user first, then it.
fn owned(tx: &impl Lookup, acct: &str, who: Option<&str>, id: &str) -> Result<(String, SigningCertRec)> {
    let name = owner_name(tx, acct, who)?;
    let key = format!("{}{id}", prefix(acct, name.as_deref()));
    let rec = tx.get::<SigningCertRec>(TABLE, &key)?.ok_or_else(|| no_such_cert(id))?;
    Ok((key, rec))
}

/// Keep a renamed user's certificates (UpdateUser).
pub fn rename_user(tx: &mut crate::db::Tx<'_>, acct: &str, old: &str, new: &str) -> Result<()> {
    super::ssh_keys::rename_rows::<SigningCertRec>(tx, TABLE, acct, old, new)
}
