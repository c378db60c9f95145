//! Virtual MFA devices: CreateVirtualMFADevice, EnableMFADevice, DeactivateMFADevice,
//! DeleteVirtualMFADevice, ResyncMFADevice, GetMFADevice, ListMFADevices, ListVirtualMFADevices,
//! MFA device tags; and [`Core::verify_mfa_code`], which STS uses for `SerialNumber`/`TokenCode`.
//!
//! Seeds are sealed at rest (AAD = the serial number) and leave the server once, in the
//! CreateVirtualMFADevice response. Every accepted code's time step is remembered per device, and a
//! code whose step is not newer than the last accepted one is refused (no replay).

use base64::Engine;
use rampart_policy::ContextValue;
use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{op, AuthzCheck, AuthzPlan, CallerKind, Entry, Input, Operation, Output, RequestContext};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::users::{no_such_user, tag_page, user_check};
use super::{
    account, check, check_new_tags, empty, merge_tags, one, paginate, remove_tags, request_tags, resource_tags, xml,
    Core,
};
use crate::db::{Lookup, Tx};
use crate::error::{IamError, Result};
use crate::model::{entity_key, tables as iam_tables, AccountRec, Tag, UserRec};
use crate::totp;
use crate::util::{from_hex, iam_arn, iso8601, now, to_hex};
use crate::validate::{self as v, Args, Spec};

/// Account ID → virtual MFA devices, keyed `{account}/{lower-case device name}`.
pub const DEVICES: &str = "iam_mfa_devices";

/// AWS's quota of MFA devices per user.
const MAX_DEVICES_PER_USER: usize = 8;
/// Steps either side of now (plus the device's drift) searched for a sign-in code.
const VERIFY_WINDOW: i64 = 1;
/// Steps either side searched for EnableMFADevice's pair of codes.
const ENABLE_WINDOW: i64 = 4;
/// Steps either side searched for ResyncMFADevice's pair (a drifted clock is why one resyncs).
const RESYNC_WINDOW: i64 = 20;

/// A virtual MFA device.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaDeviceRec {
    pub name: String,
    pub path: String,
    pub created: i64,
    /// The TOTP seed, sealed with the master key (AAD = `iam-mfa-seed:` + serial number), hex.
    pub sealed_seed: String,
    /// The user it is assigned to (enabled for), as named when enabled.
    #[serde(default)]
    pub user: Option<String>,
    /// When it was enabled.
    #[serde(default)]
    pub enabled: Option<i64>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The newest time step whose code was accepted: codes of this step or older are refused.
    #[serde(default)]
    pub last_step: Option<i64>,
    /// The device clock's offset from ours, in steps, learnt at enable/resync.
    #[serde(default)]
    pub drift: i64,
}

impl MfaDeviceRec {
    pub fn serial(&self, account: &str) -> String {
        iam_arn(account, "mfa", &self.path, &self.name)
    }

    fn assigned_to(&self, user: &str) -> bool {
        self.user.as_deref().is_some_and(|u| u.eq_ignore_ascii_case(user))
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn serial_chars(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| is_word(c) || "+=/:,.@-".contains(c))
}

fn device_name_chars(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| is_word(c) || "+=,.@-".contains(c))
}

fn code_chars(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

const SERIAL: Spec = Spec { min: 9, max: 256, pattern: Some(("[\\w+=/:,.@-]+", serial_chars)) };
const DEVICE_NAME: Spec = Spec { min: 1, max: 226, pattern: Some((v::NAME_RE, device_name_chars)) };
const AUTH_CODE: Spec = Spec { min: 6, max: 6, pattern: Some(("[\\d]+", code_chars)) };

fn seed_aad(serial: &str) -> Vec<u8> {
    format!("iam-mfa-seed:{serial}").into_bytes()
}

fn no_such_device(serial: &str) -> IamError {
    IamError::NoSuchEntity(format!("VirtualMFADevice with serial number {serial} doesn't exist."))
}

fn not_assigned(serial: &str) -> IamError {
    IamError::NoSuchEntity(format!("MFA Device with serial number {serial} does not exist."))
}

fn invalid_code() -> IamError {
    IamError::Aws(AwsError::new("InvalidAuthenticationCode", "Authentication code for device is not valid.", 403))
}

/// The device a serial number names in `acct`, by its name (the serial's last segment).
fn device_key(acct: &str, serial: &str) -> Option<String> {
    let rest = serial.strip_prefix(&format!("arn:aws:iam::{acct}:mfa/"))?;
    let name = rest.rsplit('/').next().filter(|n| !n.is_empty())?;
    Some(entity_key(acct, name))
}

fn find_device(tx: &impl Lookup, acct: &str, serial: &str) -> Result<Option<MfaDeviceRec>> {
    let Some(key) = device_key(acct, serial) else { return Ok(None) };
    Ok(tx.get::<MfaDeviceRec>(DEVICES, &key)?.filter(|d| d.serial(acct).eq_ignore_ascii_case(serial)))
}

fn require_device(tx: &impl Lookup, acct: &str, serial: &str) -> Result<MfaDeviceRec> {
    find_device(tx, acct, serial)?.ok_or_else(|| no_such_device(serial))
}

fn put_device(tx: &mut Tx<'_>, acct: &str, d: &MfaDeviceRec) -> Result<()> {
    tx.put(DEVICES, &entity_key(acct, &d.name), d)
}

/// Every virtual MFA device of the account, ordered by lower-case name.
pub fn devices(core: &Core, acct: &str) -> Result<Vec<MfaDeviceRec>> {
    Ok(core.db.scan::<MfaDeviceRec>(DEVICES, &format!("{acct}/"))?.into_iter().map(|(_, d)| d).collect())
}

/// The devices assigned to `user` (inside a transaction).
pub fn user_devices(tx: &Tx<'_>, acct: &str, user: &str) -> Result<Vec<MfaDeviceRec>> {
    Ok(tx
        .scan::<MfaDeviceRec>(DEVICES, &format!("{acct}/"))?
        .into_iter()
        .map(|(_, d)| d)
        .filter(|d| d.assigned_to(user))
        .collect())
}

/// Keep device assignments pointing at a renamed user (UpdateUser).
pub fn rename_user(tx: &mut Tx<'_>, acct: &str, old: &str, new: &str) -> Result<()> {
    for mut d in user_devices(tx, acct, old)? {
        d.user = Some(new.to_string());
        put_device(tx, acct, &d)?;
    }
    Ok(())
}

impl Core {
    fn open_seed(&self, acct: &str, d: &MfaDeviceRec) -> Result<Zeroizing<Vec<u8>>> {
        let serial = d.serial(acct);
        let sealed = from_hex(&d.sealed_seed)
            .ok_or_else(|| IamError::Internal(format!("sealed seed of {serial} is not hex")))?;
        self.sealer
            .open(&sealed, &seed_aad(&serial))
            .map_err(|e| IamError::Internal(format!("sealed seed of {serial}: {e}")))
    }

    /// Check a sign-in code from the MFA device `serial_number` enabled for IAM user `user` in
    /// `account` (STS's `SerialNumber` + `TokenCode`). Accepts the code of the current 30-second
    /// step (adjusted for the device's learnt drift) or one step either side, and refuses a code
    /// whose step is not newer than the last accepted one (replay). On success, remembers the step.
    ///
    /// `Ok(false)`: wrong, reused or malformed code, unknown device, or a device not enabled for
    /// `user`. `Err` only for storage failures.
    pub fn verify_mfa_code(&self, account: &str, user: &str, serial_number: &str, code: &str) -> Result<bool> {
        self.verify_mfa_code_at(account, user, serial_number, code, now())
    }

    /// [`Core::verify_mfa_code`] at Unix time `at`.
    pub fn verify_mfa_code_at(
        &self,
        account: &str,
        user: &str,
        serial_number: &str,
        code: &str,
        at: i64,
    ) -> Result<bool> {
        if code.len() != totp::DIGITS as usize || !code_chars(code) {
            return Ok(false);
        }
        self.db.write_untracked(|tx| {
            let Some(mut d) = find_device(tx, account, serial_number)? else { return Ok(false) };
            if !d.assigned_to(user) || d.enabled.is_none() {
                return Ok(false);
            }
            let seed = self.open_seed(account, &d)?;
            let center = totp::step_of(at) + d.drift;
            let lo = (center - VERIFY_WINDOW).max(d.last_step.map_or(0, |s| s + 1));
            let Some(step) = totp::find_step(&seed, code, lo, center + VERIFY_WINDOW) else { return Ok(false) };
            d.last_step = Some(step);
            put_device(tx, account, &d)?;
            Ok(true)
        })
    }
}

/// Accept two consecutive codes within `window` steps of now (+ drift), newer than the last
/// accepted step; record the second code's step and the drift it shows.
fn accept_pair(core: &Core, acct: &str, d: &mut MfaDeviceRec, codes: &Codes, window: i64, at: i64) -> Result<()> {
    let seed = core.open_seed(acct, d)?;
    let now_step = totp::step_of(at);
    let center = now_step + d.drift;
    let lo = (center - window).max(d.last_step.map_or(0, |s| s + 1));
    let s = totp::find_consecutive(&seed, &codes.code1, &codes.code2, lo, center + window).ok_or_else(invalid_code)?;
    d.last_step = Some(s + 1);
    d.drift = s + 1 - now_step;
    Ok(())
}

/// Whose devices a call without `UserName` is about.
enum Subject<'a> {
    User(&'a str),
    Root,
}

fn subject<'a>(ctx: &'a RequestContext, name: Option<&'a str>) -> Result<Subject<'a>> {
    match (name, &ctx.caller.kind) {
        (Some(n), _) => Ok(Subject::User(n)),
        (None, CallerKind::IamUser { user_name, .. }) => Ok(Subject::User(user_name)),
        (None, CallerKind::Root) => Ok(Subject::Root),
        (None, _) => {
            Err(IamError::Aws(AwsError::validation("Must specify userName when calling with non-User credentials")))
        }
    }
}

/// The subject's check (the user, with its tags; or the root user itself), and the user it read.
fn subject_check(
    core: &Core,
    ctx: &RequestContext,
    action: &str,
    s: &Subject<'_>,
) -> Result<(AuthzCheck, Option<UserRec>)> {
    match s {
        Subject::User(n) => user_check(core, ctx, action, n),
        Subject::Root => Ok((check(action, ctx.caller.arn.clone()), None)),
    }
}

/// `iam:{action}` on the device (its serial-number ARN), with its tags; and the device.
fn device_check(
    core: &Core,
    ctx: &RequestContext,
    action: &str,
    serial: &str,
) -> Result<(AuthzCheck, Option<MfaDeviceRec>)> {
    let acct = account(ctx);
    let d = find_device(&core.db, acct, serial)?;
    let c = match &d {
        Some(d) => resource_tags(check(action, d.serial(acct)), &d.tags, false),
        None if serial.starts_with("arn:") => check(action, serial.to_string()),
        None => check(action, format!("arn:aws:iam::{acct}:mfa/{serial}")),
    };
    Ok((c, d))
}

/// `<User>` inside a virtual MFA device (as ListUsers shows users).
fn device_xml(w: &mut XmlWriter, tag: &'static str, acct: &str, d: &MfaDeviceRec, user: Option<&UserRec>) {
    w.start(tag).elem("SerialNumber", &d.serial(acct));
    if let Some(u) = user {
        super::xml::user(w, "User", acct, u, false);
    }
    if let Some(e) = d.enabled {
        w.elem("EnableDate", &iso8601(e));
    }
    if !d.tags.is_empty() {
        super::xml::tags(w, &d.tags);
    }
    w.end();
}

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, CreateVirtualMFADevice>(),
    op::<Core, EnableMFADevice>(),
    op::<Core, DeactivateMFADevice>(),
    op::<Core, DeleteVirtualMFADevice>(),
    op::<Core, ResyncMFADevice>(),
    op::<Core, GetMFADevice>(),
    op::<Core, ListMFADevices>(),
    op::<Core, ListVirtualMFADevices>(),
    op::<Core, TagMFADevice>(),
    op::<Core, UntagMFADevice>(),
    op::<Core, ListMFADeviceTags>(),
];

pub struct CreateVirtualMFADevice {
    path: String,
    name: String,
    tags: Vec<Tag>,
}

impl Operation<Core> for CreateVirtualMFADevice {
    const NAME: &'static str = "CreateVirtualMFADevice";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let path = a.opt("Path", &v::PATH).unwrap_or("/").to_string();
        let name = a.req("VirtualMFADeviceName", &DEVICE_NAME).to_string();
        let tags = a.tags("Tags");
        a.finish()?;
        Ok(CreateVirtualMFADevice { path, name, tags })
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(request_tags(check(Self::NAME, iam_arn(account(ctx), "mfa", &self.path, &self.name)), &self.tags))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        create(core, account(ctx), self)
    }
}

/// The two consecutive codes of EnableMFADevice and ResyncMFADevice (wiped when dropped).
struct Codes {
    code1: Zeroizing<String>,
    code2: Zeroizing<String>,
}

/// UserName, SerialNumber and the two codes, as EnableMFADevice and ResyncMFADevice take them.
fn parse_pair(input: &Input) -> Result<(String, String, Codes)> {
    let mut a = Args::new(input.query());
    let user = a.req("UserName", &v::EXISTING_USER_NAME).to_string();
    let serial = a.req("SerialNumber", &SERIAL).to_string();
    let code1 = Zeroizing::new(a.req_unshown("AuthenticationCode1", &AUTH_CODE).to_string());
    let code2 = Zeroizing::new(a.req_unshown("AuthenticationCode2", &AUTH_CODE).to_string());
    a.finish()?;
    Ok((user, serial, Codes { code1, code2 }))
}

pub struct EnableMFADevice {
    user: String,
    serial: String,
    codes: Codes,
}

impl Operation<Core> for EnableMFADevice {
    const NAME: &'static str = "EnableMFADevice";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (user, serial, codes) = parse_pair(input)?;
        Ok(EnableMFADevice { user, serial, codes })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(user_check(core, ctx, Self::NAME, &self.user)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let at = ctx.time.unix_timestamp();
        let (user, serial) = (&self.user, &self.serial);
        core.db.write(acct, |tx| {
            let u = tx.entity::<UserRec>(acct, user)?.ok_or_else(|| no_such_user(user))?;
            let mut d = require_device(tx, acct, serial)?;
            if d.user.is_some() {
                return Err(IamError::AlreadyExists("MFA Device is already in use.".into()));
            }
            if user_devices(tx, acct, &u.name)?.len() >= MAX_DEVICES_PER_USER {
                return Err(IamError::quota("MfaDevicesPerUser", MAX_DEVICES_PER_USER));
            }
            accept_pair(core, acct, &mut d, &self.codes, ENABLE_WINDOW, at)?;
            d.user = Some(u.name.clone());
            d.enabled = Some(at);
            put_device(tx, acct, &d)
        })?;
        empty()
    }
}

pub struct ResyncMFADevice {
    user: String,
    serial: String,
    codes: Codes,
}

impl Operation<Core> for ResyncMFADevice {
    const NAME: &'static str = "ResyncMFADevice";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let (user, serial, codes) = parse_pair(input)?;
        Ok(ResyncMFADevice { user, serial, codes })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(user_check(core, ctx, Self::NAME, &self.user)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let at = ctx.time.unix_timestamp();
        let (user, serial) = (&self.user, &self.serial);
        core.db.write_untracked(|tx| {
            tx.entity::<UserRec>(acct, user)?.ok_or_else(|| no_such_user(user))?;
            let mut d =
                find_device(tx, acct, serial)?.filter(|d| d.assigned_to(user)).ok_or_else(|| not_assigned(serial))?;
            accept_pair(core, acct, &mut d, &self.codes, RESYNC_WINDOW, at)?;
            put_device(tx, acct, &d)
        })?;
        empty()
    }
}

pub struct DeactivateMFADevice {
    user: Option<String>,
    serial: String,
}

impl Operation<Core> for DeactivateMFADevice {
    const NAME: &'static str = "DeactivateMFADevice";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let user = a.opt("UserName", &v::EXISTING_USER_NAME).map(str::to_string);
        let serial = a.req("SerialNumber", &SERIAL).to_string();
        a.finish()?;
        Ok(DeactivateMFADevice { user, serial })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(subject_check(core, ctx, Self::NAME, &subject(ctx, self.user.as_deref())?)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let serial = &self.serial;
        let who = subject(ctx, self.user.as_deref())?;
        core.db.write(acct, |tx| {
            let Subject::User(user) = who else { return Err(not_assigned(serial)) };
            tx.entity::<UserRec>(acct, user)?.ok_or_else(|| no_such_user(user))?;
            let mut d =
                find_device(tx, acct, serial)?.filter(|d| d.assigned_to(user)).ok_or_else(|| not_assigned(serial))?;
            d.user = None;
            d.enabled = None;
            d.drift = 0;
            put_device(tx, acct, &d)
        })?;
        empty()
    }
}

pub struct DeleteVirtualMFADevice {
    serial: String,
}

impl Operation<Core> for DeleteVirtualMFADevice {
    const NAME: &'static str = "DeleteVirtualMFADevice";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let serial = a.req("SerialNumber", &SERIAL).to_string();
        a.finish()?;
        Ok(DeleteVirtualMFADevice { serial })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(device_check(core, ctx, Self::NAME, &self.serial)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        core.db.write(acct, |tx| {
            let d = require_device(tx, acct, &self.serial)?;
            if d.user.is_some() {
                return Err(IamError::DeleteConflict("MFA Device is still in use".into()));
            }
            tx.delete(DEVICES, &entity_key(acct, &d.name))?;
            Ok(())
        })?;
        empty()
    }
}

pub struct GetMFADevice {
    user: Option<String>,
    serial: String,
    /// The user the plan read.
    found: Option<UserRec>,
}

impl Operation<Core> for GetMFADevice {
    const NAME: &'static str = "GetMFADevice";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let user = a.opt("UserName", &v::USER_NAME).map(str::to_string);
        let serial = a.req("SerialNumber", &SERIAL).to_string();
        a.finish()?;
        Ok(GetMFADevice { user, serial, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, found) = subject_check(core, ctx, Self::NAME, &subject(ctx, self.user.as_deref())?)?;
        self.found = found;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let serial = &self.serial;
        let Subject::User(user) = subject(ctx, self.user.as_deref())? else { return Err(not_assigned(serial)) };
        let u = self.found.ok_or_else(|| no_such_user(user))?;
        let d = find_device(&core.db, acct, serial)?
            .filter(|d| d.assigned_to(&u.name))
            .ok_or_else(|| not_assigned(serial))?;
        let mut w = XmlWriter::new();
        w.elem("UserName", &u.name).elem("SerialNumber", &d.serial(acct));
        if let Some(e) = d.enabled {
            w.elem("EnableDate", &iso8601(e));
        }
        xml(w.finish())
    }
}

/// ListMFADevices: the named user's enabled devices, or the calling IAM user's (none for root).
pub struct ListMFADevices {
    user: Option<String>,
    marker: Option<String>,
    max: usize,
    /// The user the plan read.
    found: Option<UserRec>,
}

impl Operation<Core> for ListMFADevices {
    const NAME: &'static str = "ListMFADevices";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let user = a.opt("UserName", &v::EXISTING_USER_NAME).map(str::to_string);
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListMFADevices { user, marker, max, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, found) = subject_check(core, ctx, Self::NAME, &subject(ctx, self.user.as_deref())?)?;
        self.found = found;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let mut list: Vec<(String, String, i64)> = Vec::new();
        if let Subject::User(user) = subject(ctx, self.user.as_deref())? {
            let u = self.found.ok_or_else(|| no_such_user(user))?;
            for d in devices(core, acct)? {
                if let (true, Some(e)) = (d.assigned_to(&u.name), d.enabled) {
                    list.push((u.name.clone(), d.serial(acct), e));
                }
            }
        }
        list.sort_by(|a, b| a.1.cmp(&b.1));
        let page = paginate(list, |(_, s, _)| s.clone(), self.marker.as_deref(), self.max);
        let mut w = XmlWriter::new();
        w.start("MFADevices");
        for (user, serial, enabled) in &page.items {
            w.start("member")
                .elem("UserName", user)
                .elem("SerialNumber", serial)
                .elem("EnableDate", &iso8601(*enabled))
                .end();
        }
        w.end();
        super::xml::truncation(&mut w, &page.next);
        xml(w.finish())
    }
}

pub struct ListVirtualMFADevices {
    /// `Assigned`, `Unassigned` or `Any` (the default).
    status: String,
    marker: Option<String>,
    max: usize,
}

impl Operation<Core> for ListVirtualMFADevices {
    const NAME: &'static str = "ListVirtualMFADevices";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let status = a.enumeration("AssignmentStatus", &["Assigned", "Unassigned", "Any"]).unwrap_or("Any").to_string();
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListVirtualMFADevices { status, marker, max })
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let list: Vec<MfaDeviceRec> = devices(core, acct)?
            .into_iter()
            .filter(|d| match self.status.as_str() {
                "Assigned" => d.user.is_some(),
                "Unassigned" => d.user.is_none(),
                _ => true,
            })
            .collect();
        let page = paginate(list, |d| d.name.to_ascii_lowercase(), self.marker.as_deref(), self.max);
        let mut w = XmlWriter::new();
        w.start("VirtualMFADevices");
        for d in &page.items {
            let user = match &d.user {
                Some(n) => core.db.entity::<UserRec>(acct, n)?,
                None => None,
            };
            device_xml(&mut w, "member", acct, d, user.as_ref());
        }
        w.end();
        super::xml::truncation(&mut w, &page.next);
        xml(w.finish())
    }
}

pub struct ListMFADeviceTags {
    serial: String,
    marker: Option<String>,
    max: usize,
    /// The device the plan read.
    device: Option<MfaDeviceRec>,
}

impl Operation<Core> for ListMFADeviceTags {
    const NAME: &'static str = "ListMFADeviceTags";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let serial = a.req("SerialNumber", &SERIAL).to_string();
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListMFADeviceTags { serial, marker, max, device: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, d) = device_check(core, ctx, Self::NAME, &self.serial)?;
        self.device = d;
        one(c)
    }

    fn run(self, _: &Core, _: &RequestContext) -> Result<Output> {
        let d = self.device.ok_or_else(|| no_such_device(&self.serial))?;
        tag_page(d.tags, self.marker.as_deref(), self.max)
    }
}

pub struct TagMFADevice {
    serial: String,
    tags: Vec<Tag>,
}

impl Operation<Core> for TagMFADevice {
    const NAME: &'static str = "TagMFADevice";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let serial = a.req("SerialNumber", &SERIAL).to_string();
        let tags = a.required_tags("Tags");
        a.finish()?;
        Ok(TagMFADevice { serial, tags })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(request_tags(device_check(core, ctx, Self::NAME, &self.serial)?.0, &self.tags))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        check_new_tags(&self.tags)?;
        core.db.write(acct, |tx| {
            let mut d = require_device(tx, acct, &self.serial)?;
            merge_tags(&mut d.tags, self.tags)?;
            put_device(tx, acct, &d)
        })?;
        empty()
    }
}

pub struct UntagMFADevice {
    serial: String,
    keys: Vec<String>,
}

impl Operation<Core> for UntagMFADevice {
    const NAME: &'static str = "UntagMFADevice";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let serial = a.req("SerialNumber", &SERIAL).to_string();
        let keys = a.tag_keys("TagKeys").into_iter().map(str::to_string).collect();
        a.finish()?;
        Ok(UntagMFADevice { serial, keys })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let c = device_check(core, ctx, Self::NAME, &self.serial)?.0;
        one(c.with_context("aws:TagKeys", ContextValue::List(self.keys.clone())))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        core.db.write(acct, |tx| {
            let mut d = require_device(tx, acct, &self.serial)?;
            remove_tags(&mut d.tags, &keys);
            put_device(tx, acct, &d)
        })?;
        empty()
    }
}

fn create(core: &Core, acct: &str, c: CreateVirtualMFADevice) -> Result<Output> {
    let CreateVirtualMFADevice { path, name, tags } = c;
    check_new_tags(&tags)?;
    let seed = totp::new_seed();
    let serial = iam_arn(acct, "mfa", &path, &name);
    let seed32 = Zeroizing::new(totp::base32(&seed));
    // The QR code names the account by its alias when it has one.
    let account_name = core.db.get::<AccountRec>(iam_tables::ACCOUNTS, acct)?.and_then(|a| a.alias);
    let uri = Zeroizing::new(totp::otpauth_uri(&name, account_name.as_deref().unwrap_or(acct), &seed32));
    let png = Zeroizing::new(totp::qr_png(&uri).map_err(IamError::Internal)?);
    let sealed_seed = core
        .sealer
        .seal(&seed, &seed_aad(&serial))
        .map_err(|e| IamError::Internal(format!("sealing an MFA seed: {e}")))?;
    let key = entity_key(acct, &name);
    let rec = MfaDeviceRec {
        name,
        path,
        created: now(),
        sealed_seed: to_hex(&sealed_seed),
        user: None,
        enabled: None,
        tags,
        last_step: None,
        drift: 0,
    };
    core.db.write(acct, |tx| {
        if tx.get::<MfaDeviceRec>(DEVICES, &key)?.is_some() {
            return Err(IamError::AlreadyExists("MFADevice entity at the same path and name already exists.".into()));
        }
        put_device(tx, acct, &rec)
    })?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut w = XmlWriter::new();
    w.start("VirtualMFADevice")
        .elem("SerialNumber", &serial)
        .elem("Base32StringSeed", &b64.encode(seed32.as_bytes()))
        .elem("QRCodePNG", &b64.encode(png.as_slice()));
    if !rec.tags.is_empty() {
        super::xml::tags(&mut w, &rec.tags);
    }
    w.end();
    xml(w.finish())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rampart_store::{Sealer, SqliteStore};

    use super::*;
    use crate::creds::IamCredentials;
    use crate::db::Db;
    use crate::resolve::{PolicyCache, Resolver};

    const ACCT: &str = "111122223333";

    fn core() -> Core {
        let db = Db::new(Arc::new(SqliteStore::in_memory().unwrap()));
        let sealer = Arc::new(Sealer::new(&Sealer::generate_key()));
        Core {
            resolver: Arc::new(Resolver { db: db.clone(), policies: Arc::new(PolicyCache::default()) }),
            creds: Arc::new(IamCredentials::new(db.clone(), sealer.clone())),
            db,
            sealer,
            activity: std::sync::OnceLock::new(),
            public_url: Default::default(),
        }
    }

    /// A device enabled for `user` at step `s0` (its codes for `s0 - 1` and `s0` used), and its seed.
    fn enabled_device(core: &Core, user: &str, s0: i64) -> (String, Zeroizing<Vec<u8>>) {
        let seed = totp::new_seed();
        let serial = iam_arn(ACCT, "mfa", "/", "dev");
        let rec = MfaDeviceRec {
            name: "dev".into(),
            path: "/".into(),
            created: 0,
            sealed_seed: to_hex(&core.sealer.seal(&seed, &seed_aad(&serial)).unwrap()),
            user: Some(user.into()),
            enabled: Some(0),
            tags: vec![],
            last_step: Some(s0),
            drift: 0,
        };
        core.db.write(ACCT, |tx| put_device(tx, ACCT, &rec)).unwrap();
        (serial, seed)
    }

    #[test]
    fn verify_accepts_one_step_either_side_once() {
        let core = core();
        let t = 1_700_000_000;
        let s = totp::step_of(t);
        let (serial, seed) = enabled_device(&core, "alice", s - 3);
        let code = |step: i64| totp::code_at_step(&seed, step, totp::DIGITS);
        let verify = |c: &str, at: i64| core.verify_mfa_code_at(ACCT, "Alice", &serial, c, at).unwrap();
        // Two steps away: refused.
        assert!(!verify(&code(s - 2), t));
        assert!(!verify(&code(s + 2), t));
        // The previous step's code is accepted, once.
        assert!(verify(&code(s - 1), t));
        assert!(!verify(&code(s - 1), t));
        // The current one, then the next one; then nothing older is accepted any more.
        assert!(verify(&code(s), t));
        assert!(!verify(&code(s), t));
        assert!(verify(&code(s + 1), t));
        assert!(!verify(&code(s), t + 30));
        // Wrong user, device, or malformed code.
        assert!(!core.verify_mfa_code_at(ACCT, "bob", &serial, &code(s + 2), t + 30).unwrap());
        let other = iam_arn(ACCT, "mfa", "/", "nodev");
        assert!(!core.verify_mfa_code_at(ACCT, "alice", &other, &code(s + 2), t + 30).unwrap());
        assert!(!verify("12345", t + 30));
        assert!(!verify("12345x", t + 30));
        assert!(verify(&code(s + 2), t + 30));
    }

    #[test]
    fn verify_refuses_codes_used_to_enable() {
        let core = core();
        let t = 1_700_000_000;
        let s = totp::step_of(t);
        let (serial, seed) = enabled_device(&core, "alice", s);
        let code = |step: i64| totp::code_at_step(&seed, step, totp::DIGITS);
        assert!(!core.verify_mfa_code_at(ACCT, "alice", &serial, &code(s), t).unwrap());
        assert!(!core.verify_mfa_code_at(ACCT, "alice", &serial, &code(s - 1), t).unwrap());
        assert!(core.verify_mfa_code_at(ACCT, "alice", &serial, &code(s + 1), t).unwrap());
        // The seed is sealed at rest: the stored record does not contain it.
        let stored = core.db.get::<MfaDeviceRec>(DEVICES, &entity_key(ACCT, "dev")).unwrap().unwrap();
        assert!(!stored.sealed_seed.contains(&to_hex(&seed)));
        assert_eq!(core.open_seed(ACCT, &stored).unwrap().as_slice(), seed.as_slice());
    }

    #[test]
    fn serial_numbers_name_devices() {
        assert_eq!(
            device_key("111122223333", "arn:aws:iam::111122223333:mfa/a/b/Dev"),
            Some("111122223333/dev".into())
        );
        assert_eq!(device_key("111122223333", "arn:aws:iam::999999999999:mfa/Dev"), None);
        assert_eq!(device_key("111122223333", "GAHT12345678"), None);
        assert_eq!(device_key("111122223333", "arn:aws:iam::111122223333:mfa/"), None);
        assert!(serial_chars("arn:aws:iam::1:mfa/x") && !serial_chars("a b"));
        assert!(code_chars("012345") && !code_chars("01234a"));
    }
}
