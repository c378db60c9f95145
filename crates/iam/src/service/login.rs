//! Console passwords: Create/Get/Update/DeleteLoginProfile, ChangePassword, and the account
//! password policy (Update/Get/DeleteAccountPasswordPolicy), enforced on every password set.
//! Passwords are kept only as Argon2id hashes; hashing happens outside store transactions.

use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{op, AuthzPlan, CallerKind, Entry, Input, Operation, Output, RequestContext, SecretString};
use serde::{Deserialize, Serialize};

use super::users::{no_such_user, user_check};
use super::{account, check, empty, one, xml, Core};
use crate::db::{Lookup, Tx};
use crate::error::{IamError, Result};
use crate::model::{entity_key, UserRec};
use crate::password::{self, PasswordPolicy};
use crate::util::iso8601;
use crate::validate::{self as v, Args};

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, CreateLoginProfile>(),
    op::<Core, GetLoginProfile>(),
    op::<Core, UpdateLoginProfile>(),
    op::<Core, DeleteLoginProfile>(),
    op::<Core, ChangePassword>(),
    op::<Core, UpdateAccountPasswordPolicy>(),
    op::<Core, GetAccountPasswordPolicy>(),
    op::<Core, DeleteAccountPasswordPolicy>(),
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

/// A password member: validated like the model says, but never echoed in the message. Kept as a
/// secret (wiped when the request is dropped).
fn password_arg(a: &mut Args<'_>, q: &QueryParams, key: &str, required: bool) -> Option<SecretString> {
    let field = {
        let mut c = key.chars();
        c.next().map(|f| f.to_lowercase().chain(c).collect::<String>()).unwrap_or_default()
    };
    match q.get(key) {
        None if required => {
            a.error(format!("Value null at '{field}' failed to satisfy constraint: Member must not be null"));
            None
        }
        None => None,
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
            Some(SecretString::new(p.to_string()))
        }
    }
}

/// A required password member (present once the request is validated).
fn required_password(a: &mut Args<'_>, q: &QueryParams, key: &str) -> SecretString {
    password_arg(a, q, key, true).unwrap_or_else(|| SecretString::new(String::new()))
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

/// The user a call names (`UserName`), validated; `None` when absent.
fn named_user(a: &mut Args<'_>) -> Option<String> {
    a.opt("UserName", &v::USER_NAME).map(str::to_string)
}

/// `iam:{op}` on the user a login-profile call is about, and that user as the check read it.
fn target_check(
    core: &Core,
    ctx: &RequestContext,
    op: &str,
    name: Option<&str>,
) -> Result<(AuthzPlan, Option<UserRec>)> {
    let (c, user) = user_check(core, ctx, op, target(ctx, name)?)?;
    Ok((one(c)?, user))
}

/// The user the plan read, or NoSuchEntity for the name the call is about.
fn planned_user(ctx: &RequestContext, name: Option<&str>, user: Option<UserRec>) -> Result<UserRec> {
    let name = target(ctx, name)?;
    user.ok_or_else(|| no_such_user(name))
}

pub struct CreateLoginProfile {
    name: Option<String>,
    password: SecretString,
    reset_required: bool,
    /// The user the plan read.
    user: Option<UserRec>,
}

impl Operation<Core> for CreateLoginProfile {
    const NAME: &'static str = "CreateLoginProfile";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let q = input.query();
        let mut a = Args::new(q);
        let name = named_user(&mut a);
        let password = required_password(&mut a, q, "Password");
        let reset_required = a.bool("PasswordResetRequired").unwrap_or(false);
        a.finish()?;
        Ok(CreateLoginProfile { name, password, reset_required, user: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (plan, user) = target_check(core, ctx, Self::NAME, self.name.as_deref())?;
        self.user = user;
        Ok(plan)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let at = ctx.time.unix_timestamp();
        let u = planned_user(ctx, self.name.as_deref(), self.user)?;
        let exists = || IamError::AlreadyExists(format!("Login Profile for user {} already exists.", u.name));
        if profile(&core.db, acct, &u.name)?.is_some() {
            return Err(exists());
        }
        let hash = new_hash(policy(&core.db, acct)?.as_ref(), self.password.expose(), None)?;
        let rec = LoginProfileRec {
            user: u.name.clone(),
            created: at,
            hash,
            changed: at,
            reset_required: self.reset_required,
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
}

pub struct GetLoginProfile {
    name: Option<String>,
    /// The user the plan read.
    user: Option<UserRec>,
}

impl Operation<Core> for GetLoginProfile {
    const NAME: &'static str = "GetLoginProfile";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = named_user(&mut a);
        a.finish()?;
        Ok(GetLoginProfile { name, user: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (plan, user) = target_check(core, ctx, Self::NAME, self.name.as_deref())?;
        self.user = user;
        Ok(plan)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let u = planned_user(ctx, self.name.as_deref(), self.user)?;
        profile_xml(&profile(&core.db, account(ctx), &u.name)?.ok_or_else(|| no_such_profile(&u.name))?)
    }
}

pub struct UpdateLoginProfile {
    name: String,
    password: Option<SecretString>,
    reset_required: Option<bool>,
    /// The user the plan read.
    user: Option<UserRec>,
}

impl Operation<Core> for UpdateLoginProfile {
    const NAME: &'static str = "UpdateLoginProfile";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let q = input.query();
        let mut a = Args::new(q);
        let name = a.req("UserName", &v::USER_NAME).to_string();
        let password = password_arg(&mut a, q, "Password", false);
        let reset_required = a.bool("PasswordResetRequired");
        a.finish()?;
        Ok(UpdateLoginProfile { name, password, reset_required, user: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (plan, user) = target_check(core, ctx, Self::NAME, Some(&self.name))?;
        self.user = user;
        Ok(plan)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let at = ctx.time.unix_timestamp();
        let u = self.user.ok_or_else(|| no_such_user(&self.name))?;
        let mut p = profile(&core.db, acct, &u.name)?.ok_or_else(|| no_such_profile(&u.name))?;
        let read_hash = p.hash.clone();
        if let Some(new) = &self.password {
            let hash = new_hash(policy(&core.db, acct)?.as_ref(), new.expose(), Some(&p))?;
            set_password(&mut p, hash, at);
        }
        if let Some(r) = self.reset_required {
            p.reset_required = r;
        }
        core.db.write(acct, |tx| store_if_unchanged(tx, acct, &read_hash, &p))?;
        empty()
    }
}

pub struct DeleteLoginProfile {
    name: Option<String>,
}

impl Operation<Core> for DeleteLoginProfile {
    const NAME: &'static str = "DeleteLoginProfile";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = named_user(&mut a);
        a.finish()?;
        Ok(DeleteLoginProfile { name })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        Ok(target_check(core, ctx, Self::NAME, self.name.as_deref())?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let name = target(ctx, self.name.as_deref())?;
        core.db.write(acct, |tx| {
            let u = tx.entity::<UserRec>(acct, name)?.ok_or_else(|| no_such_user(name))?;
            if !tx.delete(PROFILES, &entity_key(acct, &u.name))? {
                return Err(no_such_profile(&u.name));
            }
            Ok(())
        })?;
        empty()
    }
}

/// ChangePassword: the calling IAM user changes its own password.
pub struct ChangePassword {
    old: SecretString,
    new: SecretString,
    /// The caller's user record and the account's password policy, as the plan read them.
    user: Option<UserRec>,
    policy: Option<PasswordPolicy>,
}

impl Operation<Core> for ChangePassword {
    const NAME: &'static str = "ChangePassword";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let q = input.query();
        let mut a = Args::new(q);
        let old = required_password(&mut a, q, "OldPassword");
        let new = required_password(&mut a, q, "NewPassword");
        a.finish()?;
        Ok(ChangePassword { old, new, user: None, policy: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let acct = account(ctx);
        let user = caller_user(ctx)?;
        self.policy = policy(&core.db, acct)?;
        // "Allow users to change their own password" grants this at the account level.
        if self.policy.as_ref().is_some_and(|p| p.allow_users_to_change) {
            self.user = core.db.entity::<UserRec>(acct, user)?;
            return Ok(AuthzPlan::AlwaysAllowed);
        }
        let (c, rec) = user_check(core, ctx, Self::NAME, user)?;
        self.user = rec;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let at = ctx.time.unix_timestamp();
        let name = caller_user(ctx)?;
        let u = self.user.ok_or_else(|| no_such_user(name))?;
        let mut p = profile(&core.db, acct, &u.name)?.ok_or_else(|| no_such_profile(&u.name))?;
        if !password::verify(self.old.expose(), &p.hash) {
            return Err(IamError::Aws(AwsError::access_denied(
                "The old password is incorrect. Failed to change the password.",
            )));
        }
        let pol = self.policy;
        if let Some(pp) = pol.as_ref().filter(|pp| pp.hard_expiry) {
            if expires(&p, Some(pp)).is_some_and(|e| e <= at) {
                return Err(IamError::Aws(AwsError::access_denied(
                    "Your password has expired and the account password policy does not allow you to change it. \
                     Ask an administrator to reset it.",
                )));
            }
        }
        let read_hash = p.hash.clone();
        let hash = new_hash(pol.as_ref(), self.new.expose(), Some(&p))?;
        set_password(&mut p, hash, at);
        p.reset_required = false;
        core.db.write(acct, |tx| store_if_unchanged(tx, acct, &read_hash, &p))?;
        empty()
    }
}

pub struct UpdateAccountPasswordPolicy {
    policy: PasswordPolicy,
}

impl Operation<Core> for UpdateAccountPasswordPolicy {
    const NAME: &'static str = "UpdateAccountPasswordPolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let minimum_length = a.int("MinimumPasswordLength", 6, 128);
        let mut flags = [false; 6];
        for (flag, k) in flags.iter_mut().zip([
            "RequireSymbols",
            "RequireNumbers",
            "RequireUppercaseCharacters",
            "RequireLowercaseCharacters",
            "AllowUsersToChangePassword",
            "HardExpiry",
        ]) {
            *flag = a.bool(k).unwrap_or(false);
        }
        let max_age = a.int("MaxPasswordAge", 1, 1095);
        let reuse = a.int("PasswordReusePrevention", 1, 24);
        a.finish()?;
        let int = |n: Option<i64>| n.and_then(|n| u32::try_from(n).ok());
        let [require_symbols, require_numbers, require_uppercase, require_lowercase, allow_users_to_change, hard_expiry] =
            flags;
        let policy = PasswordPolicy {
            minimum_length: int(minimum_length).unwrap_or(PasswordPolicy::default().minimum_length),
            require_symbols,
            require_numbers,
            require_uppercase,
            require_lowercase,
            allow_users_to_change,
            max_age_days: int(max_age),
            reuse_prevention: int(reuse),
            hard_expiry,
        };
        Ok(UpdateAccountPasswordPolicy { policy })
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        core.db.write(acct, |tx| tx.put(POLICIES, acct, &self.policy))?;
        empty()
    }
}

pub struct GetAccountPasswordPolicy {
    /// The account's policy, as the plan read it.
    policy: Option<PasswordPolicy>,
}

impl Operation<Core> for GetAccountPasswordPolicy {
    const NAME: &'static str = "GetAccountPasswordPolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Args::new(input.query()).finish()?;
        Ok(GetAccountPasswordPolicy { policy: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.policy = policy(&core.db, account(ctx))?;
        // Users allowed to change their password may also read the policy.
        let own = matches!(ctx.caller.kind, CallerKind::IamUser { .. });
        if own && self.policy.as_ref().is_some_and(|p| p.allow_users_to_change) {
            return Ok(AuthzPlan::AlwaysAllowed);
        }
        one(check(Self::NAME, "*"))
    }

    fn run(self, _: &Core, ctx: &RequestContext) -> Result<Output> {
        let p = self.policy.ok_or_else(|| no_policy(account(ctx)))?;
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
}

pub struct DeleteAccountPasswordPolicy;

impl Operation<Core> for DeleteAccountPasswordPolicy {
    const NAME: &'static str = "DeleteAccountPasswordPolicy";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Args::new(input.query()).finish()?;
        Ok(DeleteAccountPasswordPolicy)
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
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
}

/// When the profile's password expires under `policy` (MaxPasswordAge), if it does.
pub fn expires(p: &LoginProfileRec, policy: Option<&PasswordPolicy>) -> Option<i64> {
    policy.and_then(|pp| pp.max_age_days).map(|d| p.changed + i64::from(d) * 86_400)
}
