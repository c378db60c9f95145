//! Service-specific credentials: CreateServiceSpecificCredential, ListServiceSpecificCredentials,
//! UpdateServiceSpecificCredential, ResetServiceSpecificCredential, DeleteServiceSpecificCredential.
//!
//! A user may hold two per service. The services are those IAM issues them for: CodeCommit and
//! Amazon Keyspaces (a generated user name and password), and the API-key services, Amazon Bedrock
//! and CloudWatch Logs (an alias and a secret, optionally expiring after `CredentialAgeDays`). The
//! password or secret is answered by Create and Reset only; the store keeps an Argon2id hash of it.

use base64::Engine as _;
use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{op, AuthzPlan, CallerKind, Entry, Input, Operation, Output, RequestContext};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::ssh_keys::{HasOwner, Scan};
use super::users::{no_such_user, require, user_check};
use super::{account, check, empty, one, paginate, xml, Core};
use crate::db::{Lookup, Tx};
use crate::error::{IamError, Result};
use crate::model::UserRec;
use crate::util::{iso8601, now, random_id};
use crate::validate::{self as v, Args};

/// `{account}/{lower user}/{credential id}` → [`ServiceCredRec`].
pub const TABLE: &str = "iam_service_specific_credentials";
/// Credentials per user per service.
const MAX_PER_SERVICE: usize = 2;
/// The services with a user name and password.
const PASSWORD_SERVICES: &[&str] = &["codecommit.amazonaws.com", "cassandra.amazonaws.com"];
/// The services with long-term API keys (an alias and a secret, optionally expiring).
const API_KEY_SERVICES: &[&str] = &["bedrock.amazonaws.com", "logs.amazonaws.com"];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceCredRec {
    pub id: String,
    pub user: String,
    pub service: String,
    /// `user-at-account` (password services).
    #[serde(default)]
    pub service_user_name: Option<String>,
    /// The public part of an API key (API-key services).
    #[serde(default)]
    pub alias: Option<String>,
    /// Argon2id PHC hash of the current password or secret; never the value itself.
    pub secret_hash: String,
    pub active: bool,
    pub created: i64,
    /// Epoch seconds when an API key stops working (`CredentialAgeDays`).
    #[serde(default)]
    pub expires: Option<i64>,
    /// Creation order (nanoseconds since the epoch).
    #[serde(default)]
    pub seq: u64,
}

impl ServiceCredRec {
    /// `Active`, `Inactive`, or `Expired` once an API key's age has run out.
    fn status(&self, at: i64) -> &'static str {
        match self.expires {
            Some(e) if e <= at => "Expired",
            _ if self.active => "Active",
            _ => "Inactive",
        }
    }
}

impl HasOwner for ServiceCredRec {
    fn set_owner(&mut self, user: &str) {
        self.user = user.to_string();
    }
    fn row_id(&self) -> &str {
        &self.id
    }
}

fn user_prefix(acct: &str, user: &str) -> String {
    format!("{acct}/{}/", user.to_ascii_lowercase())
}

fn row_key(acct: &str, user: &str, id: &str) -> String {
    format!("{}{id}", user_prefix(acct, user))
}

/// The user's credentials, oldest first.
pub fn user_creds(tx: &impl Scan, acct: &str, user: &str) -> Result<Vec<ServiceCredRec>> {
    let mut v: Vec<ServiceCredRec> = tx.scan_rows(TABLE, &user_prefix(acct, user))?;
    v.sort_by(|a, b| (a.seq, a.created, &a.id).cmp(&(b.seq, b.created, &b.id)));
    Ok(v)
}

/// Move a renamed user's rows (UpdateUser).
pub fn rename_user(tx: &mut Tx<'_>, acct: &str, old: &str, new: &str) -> Result<()> {
    super::ssh_keys::rename_rows::<ServiceCredRec>(tx, TABLE, acct, old, new)
}

fn no_such_credential(id: &str) -> IamError {
    IamError::NoSuchEntity(format!("No such credential {id} exists"))
}

/// `NotSupportedService` (404) for a service IAM issues no service-specific credentials for.
fn not_supported(service: &str) -> IamError {
    IamError::Aws(AwsError::new(
        "NotSupportedService",
        format!("No such service {} is supported for Service-Specific Credentials", rampart_protocol::echo(service)),
        404,
    ))
}

fn supported(service: &str) -> Result<()> {
    if PASSWORD_SERVICES.contains(&service) || API_KEY_SERVICES.contains(&service) {
        Ok(())
    } else {
        Err(not_supported(service))
    }
}

/// The user a call is about: `UserName`, or the calling IAM user.
fn target<'a>(ctx: &'a RequestContext, name: Option<&'a str>) -> Result<&'a str> {
    match (name, &ctx.caller.kind) {
        (Some(n), _) => Ok(n),
        (None, CallerKind::IamUser { user_name, .. }) => Ok(user_name),
        (None, _) => {
            Err(IamError::Aws(AwsError::validation("Must specify userName when calling with non-User credentials")))
        }
    }
}

/// A fresh password or API-key secret: 32 random bytes, base64 (44 characters).
fn new_secret() -> Zeroizing<String> {
    let mut raw = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(raw.as_mut());
    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(raw.as_ref()))
}

fn hash(secret: &str) -> Result<String> {
    crate::password::hash(secret).map_err(IamError::Internal)
}

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, CreateServiceSpecificCredential>(),
    op::<Core, ListServiceSpecificCredentials>(),
    op::<Core, UpdateServiceSpecificCredential>(),
    op::<Core, ResetServiceSpecificCredential>(),
    op::<Core, DeleteServiceSpecificCredential>(),
];

pub struct CreateServiceSpecificCredential {
    user: String,
    service: String,
    age_days: Option<i64>,
}

impl Operation<Core> for CreateServiceSpecificCredential {
    const NAME: &'static str = "CreateServiceSpecificCredential";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let user = a.req("UserName", &v::USER_NAME).to_string();
        let service = match input.query().get("ServiceName") {
            Some(s) => s.to_string(),
            None => a.req("ServiceName", &v::RESOURCE_NAME).to_string(),
        };
        let age_days = a.int("CredentialAgeDays", 1, 36600);
        a.finish()?;
        supported(&service)?;
        if age_days.is_some() && !API_KEY_SERVICES.contains(&service.as_str()) {
            return Err(IamError::InvalidInput(format!(
                "CredentialAgeDays is only supported for API keys of {}.",
                API_KEY_SERVICES.join(", ")
            )));
        }
        Ok(CreateServiceSpecificCredential { user, service, age_days })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(user_check(core, ctx, Self::NAME, &self.user)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let secret = new_secret();
        let secret_hash = hash(&secret)?;
        let api_key = API_KEY_SERVICES.contains(&self.service.as_str());
        let created = now();
        let rec = core.db.write(acct, |tx| {
            let u = require(tx, acct, &self.user)?;
            let existing = user_creds(tx, acct, &u.name)?;
            if existing.iter().filter(|c| c.service == self.service).count() >= MAX_PER_SERVICE {
                return Err(IamError::quota("ServiceSpecificCredentialsPerUserPerService", MAX_PER_SERVICE));
            }
            let id = random_id("ACCA", 21);
            let (service_user_name, alias) = if api_key {
                // The alias: the user name and a suffix with the key's version and creation time.
                (None, Some(format!("{}+1-at-{acct}-{created}", u.name)))
            } else {
                (Some(format!("{}-at-{acct}", u.name)), None)
            };
            let rec = ServiceCredRec {
                id,
                user: u.name.clone(),
                service: self.service.clone(),
                service_user_name,
                alias,
                secret_hash,
                active: true,
                created,
                expires: self.age_days.map(|d| created.saturating_add(d.saturating_mul(86_400))),
                seq: crate::util::now_nanos(),
            };
            tx.put(TABLE, &row_key(acct, &u.name, &rec.id), &rec)?;
            Ok(rec)
        })?;
        let mut w = XmlWriter::new();
        credential_xml(&mut w, &rec, &secret);
        xml(w.finish())
    }
}

pub struct ListServiceSpecificCredentials {
    user: Option<String>,
    service: Option<String>,
    all_users: bool,
    marker: Option<String>,
    max: usize,
    /// The user the plan read.
    found: Option<UserRec>,
}

impl Operation<Core> for ListServiceSpecificCredentials {
    const NAME: &'static str = "ListServiceSpecificCredentials";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let user = a.opt("UserName", &v::USER_NAME).map(str::to_string);
        let service = input.query().get("ServiceName").map(str::to_string);
        let all_users = a.bool("AllUsers").unwrap_or(false);
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        if let Some(s) = &service {
            supported(s)?;
        }
        if all_users && user.is_some() {
            return Err(IamError::InvalidInput("AllUsers cannot be specified together with UserName.".into()));
        }
        Ok(ListServiceSpecificCredentials { user, service, all_users, marker, max, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        if self.all_users {
            return one(check(Self::NAME, format!("arn:aws:iam::{}:user/*", account(ctx))));
        }
        let (c, found) = user_check(core, ctx, Self::NAME, target(ctx, self.user.as_deref())?)?;
        self.found = found;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let mut creds = if self.all_users {
            let mut all: Vec<ServiceCredRec> = core.db.scan_rows(TABLE, &format!("{acct}/"))?;
            all.sort_by(|a, b| {
                (a.user.to_ascii_lowercase(), a.seq, &a.id).cmp(&(b.user.to_ascii_lowercase(), b.seq, &b.id))
            });
            all
        } else {
            let user = target(ctx, self.user.as_deref())?;
            let u = self.found.ok_or_else(|| no_such_user(user))?;
            user_creds(&core.db, acct, &u.name)?
        };
        if let Some(s) = &self.service {
            creds.retain(|c| &c.service == s);
        }
        let indexed: Vec<(usize, ServiceCredRec)> = creds.into_iter().enumerate().collect();
        let page = paginate(indexed, |(i, _)| format!("{i:06}"), self.marker.as_deref(), self.max);
        let at = now();
        let mut w = XmlWriter::new();
        w.start("ServiceSpecificCredentials");
        for (_, c) in &page.items {
            w.start("member").elem("UserName", &c.user).elem("Status", c.status(at));
            if let Some(n) = &c.service_user_name {
                w.elem("ServiceUserName", n);
            }
            if let Some(a) = &c.alias {
                w.elem("ServiceCredentialAlias", a);
            }
            w.elem("CreateDate", &iso8601(c.created));
            if let Some(e) = c.expires {
                w.elem("ExpirationDate", &iso8601(e));
            }
            w.elem("ServiceSpecificCredentialId", &c.id).elem("ServiceName", &c.service).end();
        }
        w.end();
        super::xml::truncation(&mut w, &page.next);
        xml(w.finish())
    }
}

/// The `UserName` (optional) and `ServiceSpecificCredentialId` of Update, Reset and Delete.
fn user_and_id(a: &mut Args<'_>) -> (Option<String>, String) {
    let user = a.opt("UserName", &v::USER_NAME).map(str::to_string);
    let id = a.req("ServiceSpecificCredentialId", &v::PUBLIC_KEY_ID).to_string();
    (user, id)
}

/// The user's credential `id`; NoSuchEntity for the user first, then the credential.
fn owned(tx: &impl Lookup, acct: &str, user: &str, id: &str) -> Result<(String, ServiceCredRec)> {
    let u = require(tx, acct, user)?;
    let key = row_key(acct, &u.name, id);
    let rec = tx.get::<ServiceCredRec>(TABLE, &key)?.ok_or_else(|| no_such_credential(id))?;
    Ok((key, rec))
}

pub struct UpdateServiceSpecificCredential {
    user: Option<String>,
    id: String,
    active: bool,
}

impl Operation<Core> for UpdateServiceSpecificCredential {
    const NAME: &'static str = "UpdateServiceSpecificCredential";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let (user, id) = user_and_id(&mut a);
        let active = a.req_enum("Status", &["Active", "Inactive"]) == "Active";
        a.finish()?;
        Ok(UpdateServiceSpecificCredential { user, id, active })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(user_check(core, ctx, Self::NAME, target(ctx, self.user.as_deref())?)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let user = target(ctx, self.user.as_deref())?;
        core.db.write(acct, |tx| {
            let (key, mut rec) = owned(tx, acct, user, &self.id)?;
            rec.active = self.active;
            tx.put(TABLE, &key, &rec)
        })?;
        empty()
    }
}

pub struct ResetServiceSpecificCredential {
    user: Option<String>,
    id: String,
}

impl Operation<Core> for ResetServiceSpecificCredential {
    const NAME: &'static str = "ResetServiceSpecificCredential";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let (user, id) = user_and_id(&mut a);
        a.finish()?;
        Ok(ResetServiceSpecificCredential { user, id })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(user_check(core, ctx, Self::NAME, target(ctx, self.user.as_deref())?)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let user = target(ctx, self.user.as_deref())?;
        let secret = new_secret();
        let secret_hash = hash(&secret)?;
        let rec = core.db.write(acct, |tx| {
            let (key, mut rec) = owned(tx, acct, user, &self.id)?;
            rec.secret_hash = secret_hash;
            tx.put(TABLE, &key, &rec)?;
            Ok(rec)
        })?;
        let mut w = XmlWriter::new();
        credential_xml(&mut w, &rec, &secret);
        xml(w.finish())
    }
}

pub struct DeleteServiceSpecificCredential {
    user: Option<String>,
    id: String,
}

impl Operation<Core> for DeleteServiceSpecificCredential {
    const NAME: &'static str = "DeleteServiceSpecificCredential";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let (user, id) = user_and_id(&mut a);
        a.finish()?;
        Ok(DeleteServiceSpecificCredential { user, id })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(user_check(core, ctx, Self::NAME, target(ctx, self.user.as_deref())?)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let user = target(ctx, self.user.as_deref())?;
        core.db.write(acct, |tx| {
            let (key, _) = owned(tx, acct, user, &self.id)?;
            tx.delete(TABLE, &key).map(|_| ())
        })?;
        empty()
    }
}

/// The `ServiceSpecificCredential` of Create and Reset, with the new password or secret.
fn credential_xml(w: &mut XmlWriter, c: &ServiceCredRec, secret: &str) {
    w.start("ServiceSpecificCredential").elem("CreateDate", &iso8601(c.created));
    if let Some(e) = c.expires {
        w.elem("ExpirationDate", &iso8601(e));
    }
    w.elem("ServiceName", &c.service);
    match (&c.service_user_name, &c.alias) {
        (Some(n), _) => {
            w.elem("ServiceUserName", n).elem("ServicePassword", secret);
        }
        (None, Some(a)) => {
            w.elem("ServiceCredentialAlias", a).elem("ServiceCredentialSecret", secret);
        }
        (None, None) => {}
    }
    w.elem("ServiceSpecificCredentialId", &c.id).elem("UserName", &c.user).elem("Status", c.status(now())).end();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(active: bool, expires: Option<i64>) -> ServiceCredRec {
        ServiceCredRec {
            id: "ACCAEXAMPLE".into(),
            user: "u".into(),
            service: "bedrock.amazonaws.com".into(),
            service_user_name: None,
            alias: Some("a".into()),
            secret_hash: String::new(),
            active,
            created: 0,
            expires,
            seq: 0,
        }
    }

    #[test]
    fn status_follows_expiry_then_flag() {
        assert_eq!(rec(true, None).status(100), "Active");
        assert_eq!(rec(false, None).status(100), "Inactive");
        assert_eq!(rec(true, Some(100)).status(99), "Active");
        assert_eq!(rec(true, Some(100)).status(100), "Expired");
        assert_eq!(rec(false, Some(100)).status(200), "Expired");
    }

    #[test]
    fn secrets_are_fresh_and_hashed_not_stored() {
        let a = new_secret();
        let b = new_secret();
        assert_eq!(a.len(), 44);
        assert_ne!(*a, *b);
        let h = hash(&a).unwrap();
        assert!(!h.contains(a.as_str()));
        assert!(crate::password::verify(&a, &h) && !crate::password::verify(&b, &h));
    }

    #[test]
    fn only_aws_services_are_supported() {
        for s in ["codecommit.amazonaws.com", "cassandra.amazonaws.com", "bedrock.amazonaws.com"] {
            assert!(supported(s).is_ok());
        }
        let e = AwsError::from(supported("s3.amazonaws.com").unwrap_err());
        assert_eq!((e.code.as_ref(), e.status), ("NotSupportedService", 404));
    }
}
