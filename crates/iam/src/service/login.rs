//! Console passwords: Create/Get/Update/DeleteLoginProfile, ChangePassword, and the account
//! password policy (Update/Get/DeleteAccountPasswordPolicy), enforced on every password set.
//! Passwords are kept only as Argon2id hashes; hashing happens outside store transactions.

use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{AuthzPlan, CallerKind, Output, RequestContext};
use serde::{Deserialize, Serialize};

use super::users::{no_such_user, user_check};
use super::{account, check, empty, one, xml, Core};
use crate::db::{Lookup, Tx};
use crate::error::{IamError, Result};
use crate::model::{entity_key, UserRec};
use crate::password::{self, PasswordPolicy};
use crate::util::iso8601;
use crate::validate::{self as v, Args};

pub const OPS: &[&str] = &[
    "CreateLoginProfile",
    "GetLoginProfile",
    "UpdateLoginProfile",
    "DeleteLoginProfile",
    "ChangePassword",
    "UpdateAccountPasswordPolicy",
    "GetAccountPasswordPolicy",
    "DeleteAccountPasswordPolicy",
];

/// `{account}/{lower-case user name}` → [`LoginProfileRec`].
pub const PROFILES: &str = "iam_login_profiles";
/// Account ID → [`PasswordPolicy`].
pub const POLICIES: &str = "iam_password_policies";

/// At most this many previous hashes are kept (IAM's PasswordReusePrevention maximum).
const MAX_HISTORY: usize = 24;

/// A user's console password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginProfileRec {
    pub user: String,
    pub created: i64,
    /// Argon2id PHC string of the current password.
    pub hash: String,
    /// When the password was last set.
    pub changed: i64,
    pub reset_required: bool,
    /// Hashes of earlier passwords, newest first (for PasswordReusePrevention).
    #[serde(default)]
    pub history: Vec<String>,
    #[serde(default)]
    pub last_used: Option<i64>,
}

fn no_such_profile(user: &str) -> IamError {
    IamError::NoSuchEntity(format!("Login Profile for User {user} cannot be found."))
}

fn violation(message: String) -> IamError {
    IamError::Aws(AwsError::new("PasswordPolicyViolation", message, 400))
}

fn no_policy(acct: &str) -> IamError {
    IamError::NoSuchEntity(format!("The Password Policy with domain name {acct} cannot be found."))
}

/// The account's password policy, if one is set.
pub fn policy(db: &impl Lookup, acct: &str) -> Result<Option<PasswordPolicy>> {
    db.get::<PasswordPolicy>(POLICIES, acct)
}

/// The user's login profile, if any.
pub fn profile(db: &impl Lookup, acct: &str, user: &str) -> Result<Option<LoginProfileRec>> {
    db.get::<LoginProfileRec>(PROFILES, &entity_key(acct, user))
}

/// Re-key a renamed user's login profile (UpdateUser).
pub fn rename_user(tx: &mut Tx<'_>, acct: &str, old: &str, new: &str) -> Result<()> {
    if let Some(mut p) = profile(tx, acct, old)? {
        tx.delete(PROFILES, &entity_key(acct, old))?;
        p.user = new.to_string();
        tx.put(PROFILES, &entity_key(acct, new), &p)?;
    }
    Ok(())
}

/// A password member: validated like the model says, but never echoed in the message.
fn password_arg(a: &mut Args<'_>, q: &QueryParams, key: &str, required: bool) {
    let field = {
        let mut c = key.chars();
        c.next().map(|f| f.to_lowercase().chain(c).collect::<String>()).unwrap_or_default()
    };
    match q.get(key) {
        None if required => {
            a.error(format!("Value null at '{field}' failed to satisfy constraint: Member must not be null"))
        }
        None => {}
        Some(p) => {
            let len = p.chars().count();
            if len < 1 {
                a.error(format!(
                    "Value at '{field}' failed to satisfy constraint: Member must have length greater than or equal to 1"
                ));
            }
            if len > 128 {
                a.error(format!(
                    "Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to 128"
                ));
            }
            if len >= 1 && !p.chars().all(|c| matches!(c, '\t' | '\n' | '\r' | ' '..='\u{ff}')) {
                a.error(format!(
                    "Value at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: \
                     [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"
                ));
            }
        }
    }
}

/// The user a login-profile call is about: `UserName`, or the calling IAM user.
fn target<'a>(ctx: &'a RequestContext, name: Option<&'a str>) -> Result<&'a str> {
    match (name, &ctx.caller.kind) {
        (Some(n), _) => Ok(n),
        (None, CallerKind::IamUser { user_name, .. }) => Ok(user_name),
        (None, _) => {
            Err(IamError::Aws(AwsError::validation("Must specify userName when calling with non-User credentials")))
        }
    }
}

fn caller_user(ctx: &RequestContext) -> Result<&str> {
    match &ctx.caller.kind {
        CallerKind::IamUser { user_name, .. } => Ok(user_name),
        _ => Err(IamError::Aws(AwsError::new(
            "InvalidUserType",
            "Only IAM users can change their own password with ChangePassword.",
            400,
        ))),
    }
}

pub fn plan(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<AuthzPlan> {
    let acct = account(ctx);
    let mut a = Args::new(q);
    match op {
        "CreateLoginProfile" | "UpdateLoginProfile" => {
            let user = if op == "CreateLoginProfile" {
                a.opt("UserName", &v::USER_NAME)
            } else {
                Some(a.req("UserName", &v::USER_NAME))
            };
            password_arg(&mut a, q, "Password", op == "CreateLoginProfile");
            a.bool("PasswordResetRequired");
            a.finish()?;
            one(user_check(core, ctx, op, target(ctx, user)?)?.0)
        }
        "GetLoginProfile" | "DeleteLoginProfile" => {
            let user = a.opt("UserName", &v::USER_NAME);
            a.finish()?;
            one(user_check(core, ctx, op, target(ctx, user)?)?.0)
        }
        "ChangePassword" => {
            password_arg(&mut a, q, "OldPassword", true);
            password_arg(&mut a, q, "NewPassword", true);
            a.finish()?;
            let user = caller_user(ctx)?;
            // "Allow users to change their own password" grants this at the account level.
            if policy(&core.db, acct)?.is_some_and(|p| p.allow_users_to_change) {
                return Ok(AuthzPlan::AlwaysAllowed);
            }
            one(user_check(core, ctx, op, user)?.0)
        }
        "UpdateAccountPasswordPolicy" => {
            a.int("MinimumPasswordLength", 6, 128);
            for k in [
                "RequireSymbols",
                "RequireNumbers",
                "RequireUppercaseCharacters",
                "RequireLowercaseCharacters",
                "AllowUsersToChangePassword",
                "HardExpiry",
            ] {
                a.bool(k);
            }
            a.int("MaxPasswordAge", 1, 1095);
            a.int("PasswordReusePrevention", 1, 24);
            a.finish()?;
            one(check(op, "*"))
        }
        "GetAccountPasswordPolicy" => {
            a.finish()?;
            // Users allowed to change their password may also read the policy.
            let own = matches!(ctx.caller.kind, CallerKind::IamUser { .. });
            if own && policy(&core.db, acct)?.is_some_and(|p| p.allow_users_to_change) {
                return Ok(AuthzPlan::AlwaysAllowed);
            }
            one(check(op, "*"))
        }
        "DeleteAccountPasswordPolicy" => {
            a.finish()?;
            one(check(op, "*"))
        }
        _ => Err(IamError::Internal(format!("unrouted operation {op}"))),
    }
}

fn profile_xml(p: &LoginProfileRec) -> Result<Output> {
    let mut w = XmlWriter::new();
    w.start("LoginProfile")
        .elem("UserName", &p.user)
        .elem("CreateDate", &iso8601(p.created))
        .bool("PasswordResetRequired", p.reset_required)
        .end();
    xml(w.finish())
}

/// Check `new` against the policy and (for an existing profile) the reuse rule; hash it.
/// Runs outside any transaction: Argon2 is deliberately slow.
fn new_hash(policy: Option<&PasswordPolicy>, new: &str, existing: Option<&LoginProfileRec>) -> Result<String> {
    if let Some(m) = password::violation(policy, new) {
        return Err(violation(m));
    }
    if let (Some(n), Some(p)) = (policy.and_then(|p| p.reuse_prevention), existing) {
        let recent = std::iter::once(&p.hash).chain(p.history.iter()).take(n as usize);
        for h in recent {
            if password::verify(new, h) {
                return Err(violation(password::reuse_violation(n)));
            }
        }
    }
    password::hash(new).map_err(IamError::Internal)
}

/// Replace `p`'s password with `hash` (keeping the old one in the history).
fn set_password(p: &mut LoginProfileRec, hash: String, at: i64) {
    let old = std::mem::replace(&mut p.hash, hash);
    p.history.insert(0, old);
    p.history.truncate(MAX_HISTORY);
    p.changed = at;
}

/// Store `p` if the profile still has the hash it had when read (else someone changed it
/// concurrently: AWS's EntityTemporarilyUnmodifiable).
fn store_if_unchanged(tx: &mut Tx<'_>, acct: &str, read_hash: &str, p: &LoginProfileRec) -> Result<()> {
    match profile(tx, acct, &p.user)? {
        Some(cur) if cur.hash == read_hash => tx.put(PROFILES, &entity_key(acct, &p.user), p),
        Some(_) => Err(IamError::Aws(AwsError::new(
            "EntityTemporarilyUnmodifiable",
            format!("Login Profile for User {} is being changed. Try again.", p.user),
            409,
        ))),
        None => Err(no_such_profile(&p.user)),
    }
}

pub fn run(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<Output> {
    let acct = account(ctx);
    let at = ctx.time.unix_timestamp();
    match op {
        "CreateLoginProfile" => {
            let name = target(ctx, q.get("UserName"))?;
            let u = core.db.entity::<UserRec>(acct, name)?.ok_or_else(|| no_such_user(name))?;
            let exists = || IamError::AlreadyExists(format!("Login Profile for user {} already exists.", u.name));
            if profile(&core.db, acct, &u.name)?.is_some() {
                return Err(exists());
            }
            let hash = new_hash(policy(&core.db, acct)?.as_ref(), q.get("Password").unwrap_or_default(), None)?;
            let rec = LoginProfileRec {
                user: u.name.clone(),
                created: at,
                hash,
                changed: at,
                reset_required: q.get_bool("PasswordResetRequired")?.unwrap_or(false),
                history: Vec::new(),
                last_used: None,
            };
            core.db.write(acct, |tx| {
                let u = tx.entity::<UserRec>(acct, &rec.user)?.ok_or_else(|| no_such_user(&rec.user))?;
                if profile(tx, acct, &u.name)?.is_some() {
                    return Err(exists());
                }
                tx.put(PROFILES, &entity_key(acct, &u.name), &rec)
            })?;
            profile_xml(&rec)
        }
        "GetLoginProfile" => {
            let name = target(ctx, q.get("UserName"))?;
            let u = core.db.entity::<UserRec>(acct, name)?.ok_or_else(|| no_such_user(name))?;
            profile_xml(&profile(&core.db, acct, &u.name)?.ok_or_else(|| no_such_profile(&u.name))?)
        }
        "UpdateLoginProfile" => {
            let name = q.get("UserName").unwrap_or_default();
            let u = core.db.entity::<UserRec>(acct, name)?.ok_or_else(|| no_such_user(name))?;
            let mut p = profile(&core.db, acct, &u.name)?.ok_or_else(|| no_such_profile(&u.name))?;
            let read_hash = p.hash.clone();
            if let Some(new) = q.get("Password") {
                let hash = new_hash(policy(&core.db, acct)?.as_ref(), new, Some(&p))?;
                set_password(&mut p, hash, at);
            }
            if let Some(r) = q.get_bool("PasswordResetRequired")? {
                p.reset_required = r;
            }
            core.db.write(acct, |tx| store_if_unchanged(tx, acct, &read_hash, &p))?;
            empty()
        }
        "DeleteLoginProfile" => {
            let name = target(ctx, q.get("UserName"))?;
            core.db.write(acct, |tx| {
                let u = tx.entity::<UserRec>(acct, name)?.ok_or_else(|| no_such_user(name))?;
                if !tx.delete(PROFILES, &entity_key(acct, &u.name))? {
                    return Err(no_such_profile(&u.name));
                }
                Ok(())
            })?;
            empty()
        }
        "ChangePassword" => {
            let name = caller_user(ctx)?;
            let old = q.get("OldPassword").unwrap_or_default();
            let new = q.get("NewPassword").unwrap_or_default();
            let u = core.db.entity::<UserRec>(acct, name)?.ok_or_else(|| no_such_user(name))?;
            let mut p = profile(&core.db, acct, &u.name)?.ok_or_else(|| no_such_profile(&u.name))?;
            if !password::verify(old, &p.hash) {
                return Err(IamError::Aws(AwsError::access_denied(
                    "The old password is incorrect. Failed to change the password.",
                )));
            }
            let pol = policy(&core.db, acct)?;
            if let Some(pp) = pol.as_ref().filter(|pp| pp.hard_expiry) {
                if expires(&p, Some(pp)).is_some_and(|e| e <= at) {
                    return Err(IamError::Aws(AwsError::access_denied(
                        "Your password has expired and the account password policy does not allow you to change it. \
                         Ask an administrator to reset it.",
                    )));
                }
            }
            let read_hash = p.hash.clone();
            let hash = new_hash(pol.as_ref(), new, Some(&p))?;
            set_password(&mut p, hash, at);
            p.reset_required = false;
            core.db.write(acct, |tx| store_if_unchanged(tx, acct, &read_hash, &p))?;
            empty()
        }
        "UpdateAccountPasswordPolicy" => {
            let d = PasswordPolicy::default();
            let b = |k: &str| q.get_bool(k).map(|v| v.unwrap_or(false));
            let int = |k: &str| -> Result<Option<u32>> { Ok(q.get_i64(k)?.and_then(|n| u32::try_from(n).ok())) };
            let p = PasswordPolicy {
                minimum_length: int("MinimumPasswordLength")?.unwrap_or(d.minimum_length),
                require_symbols: b("RequireSymbols")?,
                require_numbers: b("RequireNumbers")?,
                require_uppercase: b("RequireUppercaseCharacters")?,
                require_lowercase: b("RequireLowercaseCharacters")?,
                allow_users_to_change: b("AllowUsersToChangePassword")?,
                max_age_days: int("MaxPasswordAge")?,
                reuse_prevention: int("PasswordReusePrevention")?,
                hard_expiry: b("HardExpiry")?,
            };
            core.db.write(acct, |tx| tx.put(POLICIES, acct, &p))?;
            empty()
        }
        "GetAccountPasswordPolicy" => {
            let p = policy(&core.db, acct)?.ok_or_else(|| no_policy(acct))?;
            let mut w = XmlWriter::new();
            w.start("PasswordPolicy")
                .num("MinimumPasswordLength", p.minimum_length)
                .bool("RequireSymbols", p.require_symbols)
                .bool("RequireNumbers", p.require_numbers)
                .bool("RequireUppercaseCharacters", p.require_uppercase)
                .bool("RequireLowercaseCharacters", p.require_lowercase)
                .bool("AllowUsersToChangePassword", p.allow_users_to_change)
                .bool("ExpirePasswords", p.max_age_days.is_some());
            if let Some(d) = p.max_age_days {
                w.num("MaxPasswordAge", d);
            }
            if let Some(n) = p.reuse_prevention {
                w.num("PasswordReusePrevention", n);
            }
            w.bool("HardExpiry", p.hard_expiry);
            w.end();
            xml(w.finish())
        }
        "DeleteAccountPasswordPolicy" => {
            core.db.write(acct, |tx| {
                if !tx.delete(POLICIES, acct)? {
                    // Delete words it differently from Get.
                    return Err(IamError::NoSuchEntity(
                        "The account policy with name PasswordPolicy cannot be found.".into(),
                    ));
                }
                Ok(())
            })?;
            empty()
        }
        _ => Err(IamError::Internal(format!("unrouted operation {op}"))),
    }
}

/// When the profile's password expires under `policy` (MaxPasswordAge), if it does.
pub fn expires(p: &LoginProfileRec, policy: Option<&PasswordPolicy>) -> Option<i64> {
    policy.and_then(|pp| pp.max_age_days).map(|d| p.changed + i64::from(d) * 86_400)
}
