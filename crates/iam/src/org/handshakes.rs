//! Handshakes: invitations to join an organization (InviteAccountToOrganization, answered by the
//! invited account), the requests of EnableAllFeatures (ENABLE_ALL_FEATURES to each invited member,
//! then APPROVE_ALL_FEATURES to the management account), and LeaveOrganization.
//!
//! A handshake is its own record (`org_handshakes`), indexed by its organization and by its
//! recipient (an account ID, or `email:addr` for an invitation by email), so both sides list it.

use rampart_service::{op, Entry, Operation};

use super::*;

/// The operations of this family, each listed once.
pub const OPS: &[Entry<OrgService>] = &[
    op::<OrgService, InviteAccountToOrganization>(),
    op::<OrgService, AcceptHandshake>(),
    op::<OrgService, DeclineHandshake>(),
    op::<OrgService, CancelHandshake>(),
    op::<OrgService, DescribeHandshake>(),
    op::<OrgService, ListHandshakesForAccount>(),
    op::<OrgService, ListHandshakesForOrganization>(),
    op::<OrgService, EnableAllFeatures>(),
    op::<OrgService, LeaveOrganization>(),
];

pub(super) const INVITE: &str = "INVITE";
pub(super) const ENABLE_ALL: &str = "ENABLE_ALL_FEATURES";
pub(super) const APPROVE_ALL: &str = "APPROVE_ALL_FEATURES";
pub(super) const TRANSFER: &str = "TRANSFER_RESPONSIBILITY";

/// AWS: a created account can leave its organization four days after it was created.
const LEAVE_WAIT: i64 = 4 * 86_400;

fn handshake_not_found() -> IamError {
    err("HandshakeNotFoundException", "We can't find a handshake with the HandshakeId that you specified.")
}

fn handshake_constraint(reason: &'static str, message: &'static str) -> IamError {
    IamError::Aws(AwsError::new("HandshakeConstraintViolationException", message, 400).with_field("Reason", reason))
}

fn invalid_transition() -> IamError {
    err("InvalidHandshakeTransitionException", "You can't perform the operation on the handshake in its current state.")
}

fn already_in_state() -> IamError {
    err("HandshakeAlreadyInStateException", "The specified handshake is already in the requested state.")
}

fn is_handshake_id(s: &str) -> bool {
    s.strip_prefix("h-").is_some_and(|r| (8..=32).contains(&r.len()) && r.bytes().all(lower_digit))
}

fn handshake_id_arg(i: &In<'_>) -> Result<String> {
    Ok(i.id("HandshakeId", is_handshake_id)?.to_string())
}

/// The index key of a recipient: an account ID, or `email:addr`.
fn party_key(recipient: &str) -> String {
    if is_account_id(recipient) {
        recipient.to_string()
    } else {
        format!("email:{recipient}")
    }
}

/// AWS's shape of a handshake at `now`.
pub(super) fn handshake_json(h: &HandshakeRec, now: i64) -> Value {
    let parties: Vec<Value> = h.parties.iter().map(|(id, ty)| json!({"Id": id, "Type": ty})).collect();
    json!({
        "Id": h.id,
        "Arn": h.arn(),
        "Parties": parties,
        "State": h.state_at(now),
        "RequestedTimestamp": h.requested,
        "ExpirationTimestamp": h.expires,
        "Action": h.action,
        "Resources": h.resources,
    })
}

/// The caller's email as Organizations knows it (an invitation by email reaches that account).
fn caller_email(db: &impl Lookup, account: &str) -> Result<Option<String>> {
    known_email(db, account)
}

/// The ENABLE_ALL_FEATURES request EnableAllFeatures returns (its members' handshakes name it as
/// their parent).
fn is_request(h: &HandshakeRec) -> bool {
    h.action == ENABLE_ALL && h.parent.is_none()
}

/// Whether `account` (with its known email) is the handshake's recipient.
fn is_recipient(h: &HandshakeRec, account: &str, email: Option<&str>) -> bool {
    match &h.recipient {
        Some(r) => r == account || email.is_some_and(|e| e == r),
        None => h.management == account,
    }
}

/// Whether `account` sent the handshake (the management account of its organization;
/// APPROVE_ALL_FEATURES comes from Organizations itself).
fn is_sender(h: &HandshakeRec, account: &str) -> bool {
    h.action != APPROVE_ALL && h.management == account
}

/// A visible handshake, or HandshakeNotFoundException.
fn load(db: &impl Lookup, id: &str, now: i64) -> Result<HandshakeRec> {
    match db.get::<HandshakeRec>(tables::HANDSHAKES, id)? {
        Some(h) if h.visible_at(now) => Ok(h),
        _ => Err(handshake_not_found()),
    }
}

/// Store a handshake and its indexes.
pub(super) fn store_handshake(tx: &mut Tx<'_>, h: &HandshakeRec) -> Result<()> {
    store(tx, h)
}

/// A new handshake of `doc`'s organization.
pub(super) fn new_for(
    doc: &OrgDoc,
    action: &str,
    parties: Vec<(String, String)>,
    recipient: Option<String>,
    resources: Value,
    now: i64,
) -> HandshakeRec {
    new_handshake(doc, action, parties, recipient, resources, now)
}

fn store(tx: &mut Tx<'_>, h: &HandshakeRec) -> Result<()> {
    tx.put(tables::HANDSHAKES, &h.id, h)?;
    tx.put(tables::HANDSHAKE_PARTIES, &format!("{}/{}", h.org_id, h.id), &h.id)?;
    if is_request(h) {
        // The EnableAllFeatures request itself is the organization's, received by no one.
        return Ok(());
    }
    let recipient = h.recipient.clone().unwrap_or_else(|| h.management.clone());
    tx.put(tables::HANDSHAKE_PARTIES, &format!("{}/{}", party_key(&recipient), h.id), &h.id)
}

/// Prefix scans of the handshake index, inside and outside transactions.
trait Index: Lookup {
    fn index(&self, prefix: &str) -> Result<Vec<(String, String)>>;
}

impl Index for crate::db::Db {
    fn index(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        self.scan(tables::HANDSHAKE_PARTIES, prefix)
    }
}

impl Index for Tx<'_> {
    fn index(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        self.scan(tables::HANDSHAKE_PARTIES, prefix)
    }
}

/// The handshakes under an index prefix that are still visible, oldest first.
fn indexed(db: &impl Index, prefix: &str, now: i64) -> Result<Vec<HandshakeRec>> {
    let mut out = Vec::new();
    for (_, id) in db.index(prefix)? {
        if let Some(h) = db.get::<HandshakeRec>(tables::HANDSHAKES, &id)? {
            if h.visible_at(now) {
                out.push(h);
            }
        }
    }
    out.sort_by(|a, b| a.order.cmp(&b.order).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

/// The organization's open ENABLE_ALL_FEATURES request, if one is under way.
fn pending_all_features(db: &impl Index, org_id: &str, now: i64) -> Result<Option<HandshakeRec>> {
    Ok(indexed(db, &format!("{org_id}/"), now)?
        .into_iter()
        .find(|h| is_request(h) && matches!(h.state_at(now), "REQUESTED" | "OPEN")))
}

fn new_handshake(
    doc: &OrgDoc,
    action: &str,
    parties: Vec<(String, String)>,
    recipient: Option<String>,
    resources: Value,
    now: i64,
) -> HandshakeRec {
    HandshakeRec {
        id: new_handshake_id(),
        org_id: doc.id.clone(),
        management: doc.management.clone(),
        action: action.to_string(),
        // As AWS's examples show: a handshake sent to its recipient is OPEN; the request of
        // EnableAllFeatures stays REQUESTED until every member answered.
        state: "OPEN".into(),
        parties,
        recipient,
        resources,
        requested: now,
        expires: now + HANDSHAKE_LIFETIME,
        changed: now,
        parent: None,
        order: micros(),
        tags: Vec::new(),
    }
}

/// Now in microseconds, strictly increasing within this process (the creation order of
/// handshakes made in the same microsecond).
fn micros() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let prev = LAST.fetch_max(now, Ordering::Relaxed);
    if prev >= now {
        LAST.fetch_add(1, Ordering::Relaxed) + 1
    } else {
        now
    }
}

fn org_party(doc: &OrgDoc) -> (String, String) {
    (doc.id.clone(), "ORGANIZATION".to_string())
}

/// The `Filter` of the list operations.
struct Filter {
    action: Option<&'static str>,
    parent: Option<String>,
}

impl Filter {
    fn parse(i: &In<'_>) -> Result<Self> {
        let Some(f) = i.0.get("Filter").filter(|v| !v.is_null()) else {
            return Ok(Filter { action: None, parent: None });
        };
        let f = In(f);
        let action = match f.opt("ActionType")? {
            None => None,
            Some(a) => Some(
                [INVITE, ENABLE_ALL, APPROVE_ALL, "ADD_ORGANIZATIONS_SERVICE_LINKED_ROLE", "TRANSFER_RESPONSIBILITY"]
                    .into_iter()
                    .find(|t| *t == a)
                    .ok_or_else(|| invalid("INVALID_ENUM", "You specified an invalid value."))?,
            ),
        };
        let parent = match f.opt("ParentHandshakeId")? {
            None => None,
            Some(p) if is_handshake_id(p) => Some(p.to_string()),
            Some(_) => {
                return Err(invalid("INVALID_PATTERN", "You provided a value that doesn't match the required pattern."))
            }
        };
        if action.is_some() && parent.is_some() {
            return Err(invalid(
                "MAX_LIMIT_EXCEEDED_FILTER",
                "You can specify only one filter parameter for the operation: ActionType or ParentHandshakeId.",
            ));
        }
        Ok(Filter { action, parent })
    }

    fn keeps(&self, h: &HandshakeRec) -> bool {
        self.action.is_none_or(|a| a == h.action)
            && self.parent.as_deref().is_none_or(|p| h.parent.as_deref() == Some(p))
    }
}

// ---- InviteAccountToOrganization ------------------------------------------------------------

pub struct InviteAccountToOrganization {
    /// An account ID, or a lower-case email address.
    target: String,
    target_type: &'static str,
    /// The email as given (shown in the handshake).
    target_shown: String,
    notes: Option<String>,
    tags: Vec<Tag>,
}

pub(super) fn valid_email(email: &str) -> bool {
    email
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.'))
        && !email.chars().any(char::is_whitespace)
        && email.matches('@').count() == 1
}

impl Operation<OrgService> for InviteAccountToOrganization {
    const NAME: &'static str = "InviteAccountToOrganization";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let target = match i.0.get("Target") {
            Some(t) if t.is_object() => In(t),
            _ => return Err(invalid("INPUT_REQUIRED", "You must specify a value for Target.")),
        };
        let id = target.len("Id", 1, 64, true)?.unwrap_or_default();
        let (target_type, value) = match target.req("Type")? {
            "ACCOUNT" if is_account_id(id) => ("ACCOUNT", id.to_string()),
            "ACCOUNT" => {
                return Err(invalid("INVALID_PATTERN", "You provided a value that doesn't match the required pattern."))
            }
            "EMAIL" if (6..=64).contains(&id.chars().count()) && valid_email(id) => ("EMAIL", id.to_ascii_lowercase()),
            "EMAIL" => {
                return Err(invalid(
                    "INVALID_EMAIL_ADDRESS_TARGET",
                    "You specified an invalid email address for the invited account owner.",
                ))
            }
            "ORGANIZATION" => {
                return Err(invalid(
                    "INVALID_PARTY_TYPE_TARGET",
                    "You specified the wrong type of entity (account, organization, or email) as a party.",
                ))
            }
            _ => return Err(invalid("INVALID_ENUM", "You specified an invalid value.")),
        };
        let notes = i.len("Notes", 0, 1024, false)?.map(str::to_string);
        let tags = i.tags("Tags")?;
        Ok(InviteAccountToOrganization { target: value, target_type, target_shown: id.to_string(), notes, tags })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        svc.managed_org(ctx)?;
        let mut c = check(Self::NAME, "*");
        let mut checks = Vec::new();
        if !self.tags.is_empty() {
            for t in &self.tags {
                c = c.with_context(format!("aws:RequestTag/{}", t.key), ContextValue::String(t.value.clone()));
            }
            let keys = ContextValue::List(self.tags.iter().map(|t| t.key.clone()).collect());
            c = c.with_context("aws:TagKeys", keys.clone());
            // AWS: tags on the request need organizations:TagResource too.
            checks.push(check("TagResource", "*").with_context("aws:TagKeys", keys));
        }
        checks.insert(0, c);
        Ok(AuthzPlan::Checks(checks))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let now = ctx.time.unix_timestamp();
        let caller = ctx.caller.account_id.clone();
        let h = svc.core.db.write_untracked(|tx| {
            let doc = org_of(&*tx, &caller)?.ok_or_else(not_in_use)?;
            if doc.management != caller {
                return Err(denied());
            }
            if pending_all_features(&*tx, &doc.id, now)?.is_some() {
                return Err(handshake_constraint(
                    "INVITE_DISABLED_DURING_ENABLE_ALL_FEATURES",
                    "You can't issue new invitations to join an organization while it's in the process of enabling all features.",
                ));
            }
            let member = if self.target_type == "ACCOUNT" {
                doc.accounts.contains_key(&self.target)
            } else {
                doc.accounts.values().any(|a| a.email.eq_ignore_ascii_case(&self.target))
            };
            if member {
                return Err(handshake_constraint(
                    "ALREADY_IN_AN_ORGANIZATION",
                    "The handshake request is invalid because the invited account is already a member of an organization.",
                ));
            }
            if doc.accounts.len() >= MAX_ACCOUNTS {
                return Err(handshake_constraint(
                    "ACCOUNT_NUMBER_LIMIT_EXCEEDED",
                    "You attempted to exceed the limit on the number of accounts in an organization.",
                ));
            }
            let open = indexed(&*tx, &format!("{}/", doc.id), now)?;
            if open.iter().any(|h| {
                h.action == INVITE
                    && matches!(h.state_at(now), "REQUESTED" | "OPEN")
                    && h.recipient.as_deref() == Some(&self.target)
            }) {
                return Err(err(
                    "DuplicateHandshakeException",
                    "A handshake with the same action and target already exists.",
                ));
            }
            let mgmt = doc.accounts.get(&doc.management);
            let mut resources = vec![
                json!({
                    "Type": "ORGANIZATION",
                    "Value": doc.id,
                    "Resources": [
                        {"Type": "MASTER_EMAIL", "Value": mgmt.map(|a| a.email.clone()).unwrap_or_default()},
                        {"Type": "MASTER_NAME", "Value": mgmt.map(|a| a.name.clone()).unwrap_or_default()},
                        {"Type": "ORGANIZATION_FEATURE_SET", "Value": doc.feature_set},
                    ],
                }),
                json!({"Type": self.target_type, "Value": self.target_shown}),
            ];
            if let Some(n) = &self.notes {
                resources.push(json!({"Type": "NOTES", "Value": n}));
            }
            let parties = vec![org_party(&doc), (self.target_shown.clone(), self.target_type.to_string())];
            let mut h = new_handshake(&doc, INVITE, parties, Some(self.target.clone()), Value::Array(resources), now);
            h.tags = self.tags;
            store(tx, &h)?;
            Ok(h)
        })?;
        Ok(Output::Json(json!({"Handshake": handshake_json(&h, now)})))
    }
}

// ---- answering a handshake ------------------------------------------------------------------

/// The plan of Accept/Decline/Cancel/DescribeHandshake: the handshake must be visible and the
/// caller a party in the given role; the check is on the handshake's ARN.
fn handshake_check(
    svc: &OrgService,
    ctx: &RequestContext,
    op: &str,
    id: &str,
    role: Role,
) -> Result<(AuthzCheck, HandshakeRec)> {
    let now = ctx.time.unix_timestamp();
    let h = load(&svc.core.db, id, now)?;
    let account = &ctx.caller.account_id;
    let email = caller_email(&svc.core.db, account)?;
    let ok = match role {
        Role::Recipient => is_recipient(&h, account, email.as_deref()),
        Role::Sender => is_sender(&h, account),
        Role::Either => is_recipient(&h, account, email.as_deref()) || h.management == *account,
    };
    if !ok {
        return Err(denied());
    }
    Ok((check(op, h.arn()), h))
}

#[derive(Clone, Copy)]
enum Role {
    Recipient,
    Sender,
    Either,
}

/// Move an open handshake to `to`, with AWS's errors for one already there or final.
fn transition(h: &mut HandshakeRec, to: &str, now: i64) -> Result<()> {
    let state = h.state_at(now).to_string();
    if state == to {
        return Err(already_in_state());
    }
    if state != "REQUESTED" && state != "OPEN" {
        return Err(invalid_transition());
    }
    h.state = to.to_string();
    h.changed = now;
    Ok(())
}

/// Remove `account` from `doc` (LeaveOrganization, or joining another organization), with
/// AWS's constraints for leaving.
fn depart(tx: &mut Tx<'_>, doc: &mut OrgDoc, account: &str, now: i64) -> Result<()> {
    if account == doc.management {
        return Err(err(
            "MasterCannotLeaveOrganizationException",
            "You can't remove a management account from an organization. If you want the management account to become a member account in another organization, you must first delete the current organization of the management account.",
        ));
    }
    let member = doc.accounts.get(account).ok_or_else(account_not_found)?;
    if doc.delegated_admins.contains_key(account) {
        return Err(constraint(
            "CANNOT_REMOVE_DELEGATED_ADMINISTRATOR_FROM_ORG",
            "You attempted to remove an account that is registered as a delegated administrator for a service integrated with your organization.",
        ));
    }
    if member.joined_method == "CREATED" && now < member.joined + LEAVE_WAIT {
        return Err(constraint(
            "WAIT_PERIOD_ACTIVE",
            "After you create an AWS account, you must wait until at least four days after the account was created.",
        ));
    }
    doc.accounts.remove(account);
    doc.attachments.remove(account);
    tx.put(tables::ORGS, &doc.id, &*doc)?;
    tx.delete(tables::MEMBERS, account)?;
    Ok(())
}

/// The invited account joins the handshake's organization.
fn join(tx: &mut Tx<'_>, h: &mut HandshakeRec, account: &str, now: i64) -> Result<()> {
    let mut doc = tx.get::<OrgDoc>(tables::ORGS, &h.org_id)?.ok_or_else(handshake_not_found)?;
    if let Some(mut current) = org_of(&*tx, account)? {
        if current.id == doc.id {
            return Err(handshake_constraint(
                "ALREADY_IN_AN_ORGANIZATION",
                "The handshake request is invalid because the invited account is already a member of an organization.",
            ));
        }
        // AWS: a member account may accept an invitation from another organization; it
        // departs its current one first (the management account cannot).
        depart(tx, &mut current, account, now)?;
    }
    if doc.accounts.len() >= MAX_ACCOUNTS {
        return Err(handshake_constraint(
            "ACCOUNT_NUMBER_LIMIT_EXCEEDED",
            "You attempted to exceed the limit on the number of accounts in an organization.",
        ));
    }
    let email = match known_email(&*tx, account)? {
        Some(e) => e,
        None => match &h.recipient {
            Some(r) if !is_account_id(r) => r.clone(),
            _ => format!("{account}@rampart.invalid"),
        },
    };
    let alias = tx.get::<AccountRec>(iam_tables::ACCOUNTS, account)?.and_then(|a| a.alias);
    doc.accounts.insert(
        account.to_string(),
        MemberRec {
            name: alias.unwrap_or_else(|| account.to_string()),
            email: email.clone(),
            parent: doc.root_id.clone(),
            status: "ACTIVE".into(),
            joined_method: "INVITED".into(),
            joined: now,
            tags: std::mem::take(&mut h.tags),
        },
    );
    attach_defaults(&mut doc, account);
    tx.put(tables::ORGS, &doc.id, &doc)?;
    tx.put(tables::MEMBERS, account, &doc.id)?;
    tx.put(tables::ACCOUNT_EMAILS, account, &email)?;
    // As in AWS's AcceptHandshake example, the accepted invitation names the account.
    if let Some(items) = h.resources.as_array_mut() {
        for r in items.iter_mut() {
            if r.get("Type").and_then(Value::as_str) == Some("EMAIL") {
                *r = json!({"Type": "ACCOUNT", "Value": account});
            }
        }
    }
    Ok(())
}

/// A member approved the ENABLE_ALL_FEATURES request: when every invited member has, the
/// management account gets the APPROVE_ALL_FEATURES handshake and the request is OPEN.
fn after_member_approval(tx: &mut Tx<'_>, parent_id: &str, now: i64) -> Result<()> {
    let Some(mut parent) = tx.get::<HandshakeRec>(tables::HANDSHAKES, parent_id)? else { return Ok(()) };
    let children: Vec<HandshakeRec> = indexed(&*tx, &format!("{}/", parent.org_id), now)?
        .into_iter()
        .filter(|c| c.parent.as_deref() == Some(parent_id) && c.action == ENABLE_ALL)
        .collect();
    if children.iter().all(|c| c.state == "ACCEPTED") && parent.state == "REQUESTED" {
        let doc = tx.get::<OrgDoc>(tables::ORGS, &parent.org_id)?.ok_or_else(handshake_not_found)?;
        open_approval(tx, &doc, &mut parent, now)?;
    }
    Ok(())
}

/// The APPROVE_ALL_FEATURES handshake for the management account; the request becomes OPEN.
fn open_approval(tx: &mut Tx<'_>, doc: &OrgDoc, parent: &mut HandshakeRec, now: i64) -> Result<()> {
    let resources = json!([
        {"Type": "ORGANIZATION", "Value": doc.id},
        {"Type": "PARENT_HANDSHAKE", "Value": parent.id},
    ]);
    let mut approve = new_handshake(doc, APPROVE_ALL, vec![org_party(doc)], None, resources, now);
    approve.parent = Some(parent.id.clone());
    approve.expires = parent.expires;
    store(tx, &approve)?;
    parent.state = "OPEN".into();
    parent.changed = now;
    store(tx, parent)
}

/// The organization's open handshakes end CANCELED (DeleteOrganization).
pub(super) fn cancel_open(tx: &mut Tx<'_>, org_id: &str, now: i64) -> Result<()> {
    for mut h in indexed(&*tx, &format!("{org_id}/"), now)? {
        if matches!(h.state_at(now), "REQUESTED" | "OPEN") {
            h.state = "CANCELED".into();
            h.changed = now;
            store(tx, &h)?;
        }
    }
    Ok(())
}

/// The organization has all features.
fn finalize(tx: &mut Tx<'_>, org_id: &str, _now: i64) -> Result<()> {
    let mut doc = tx.get::<OrgDoc>(tables::ORGS, org_id)?.ok_or_else(handshake_not_found)?;
    doc.feature_set = "ALL".into();
    tx.put(tables::ORGS, &doc.id, &doc)
}

/// The other handshakes of an ENABLE_ALL_FEATURES request end with it.
fn end_request(tx: &mut Tx<'_>, parent: &HandshakeRec, to: &str, now: i64) -> Result<()> {
    for mut c in indexed(&*tx, &format!("{}/", parent.org_id), now)? {
        if c.parent.as_deref() == Some(parent.id.as_str()) && matches!(c.state_at(now), "REQUESTED" | "OPEN") {
            c.state = to.to_string();
            c.changed = now;
            store(tx, &c)?;
        }
    }
    Ok(())
}

pub struct AcceptHandshake {
    id: String,
}

impl Operation<OrgService> for AcceptHandshake {
    const NAME: &'static str = "AcceptHandshake";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(AcceptHandshake { id: handshake_id_arg(&In::new(input))? })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(handshake_check(svc, ctx, Self::NAME, &self.id, Role::Recipient)?.0)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let now = ctx.time.unix_timestamp();
        let account = ctx.caller.account_id.clone();
        let h = svc.core.db.write_untracked(|tx| {
            let mut h = load(&*tx, &self.id, now)?;
            let email = caller_email(&*tx, &account)?;
            if !is_recipient(&h, &account, email.as_deref()) {
                return Err(denied());
            }
            let self_state_before = h.state_at(now).to_string();
            transition(&mut h, "ACCEPTED", now)?;
            match h.action.as_str() {
                INVITE => join(tx, &mut h, &account, now)?,
                ENABLE_ALL if is_request(&h) => {
                    // AWS: "you finalize the feature set change by accepting the handshake that
                    // contains ENABLE_ALL_FEATURES" once every member approved (it is OPEN).
                    if self_state_before != "OPEN" {
                        return Err(invalid_transition());
                    }
                    finalize(tx, &h.org_id, now)?;
                    end_request(tx, &h, "ACCEPTED", now)?;
                }
                ENABLE_ALL => {
                    store(tx, &h)?;
                    if let Some(p) = h.parent.clone() {
                        after_member_approval(tx, &p, now)?;
                    }
                }
                TRANSFER => super::transfers::on_handshake(tx, &h, &account, "ACCEPTED")?,
                APPROVE_ALL => {
                    finalize(tx, &h.org_id, now)?;
                    if let Some(p) = &h.parent {
                        if let Some(mut parent) = tx.get::<HandshakeRec>(tables::HANDSHAKES, p)? {
                            parent.state = "ACCEPTED".into();
                            parent.changed = now;
                            store(tx, &parent)?;
                        }
                    }
                }
                _ => return Err(invalid_transition()),
            }
            store(tx, &h)?;
            bump(tx)?;
            Ok(h)
        })?;
        Ok(Output::Json(json!({"Handshake": handshake_json(&h, now)})))
    }
}

pub struct DeclineHandshake {
    id: String,
}

impl Operation<OrgService> for DeclineHandshake {
    const NAME: &'static str = "DeclineHandshake";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(DeclineHandshake { id: handshake_id_arg(&In::new(input))? })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(handshake_check(svc, ctx, Self::NAME, &self.id, Role::Recipient)?.0)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let now = ctx.time.unix_timestamp();
        let account = ctx.caller.account_id.clone();
        let h = svc.core.db.write_untracked(|tx| {
            let mut h = load(&*tx, &self.id, now)?;
            let email = caller_email(&*tx, &account)?;
            if !is_recipient(&h, &account, email.as_deref()) {
                return Err(denied());
            }
            transition(&mut h, "DECLINED", now)?;
            store(tx, &h)?;
            if h.action == TRANSFER {
                super::transfers::on_handshake(tx, &h, &account, "DECLINED")?;
            }
            // The management account declining the final approval ends the request.
            if let (APPROVE_ALL, Some(p)) = (h.action.as_str(), &h.parent) {
                if let Some(mut parent) = tx.get::<HandshakeRec>(tables::HANDSHAKES, p)? {
                    parent.state = "DECLINED".into();
                    parent.changed = now;
                    store(tx, &parent)?;
                }
            }
            Ok(h)
        })?;
        Ok(Output::Json(json!({"Handshake": handshake_json(&h, now)})))
    }
}

pub struct CancelHandshake {
    id: String,
}

impl Operation<OrgService> for CancelHandshake {
    const NAME: &'static str = "CancelHandshake";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(CancelHandshake { id: handshake_id_arg(&In::new(input))? })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(handshake_check(svc, ctx, Self::NAME, &self.id, Role::Sender)?.0)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let now = ctx.time.unix_timestamp();
        let account = ctx.caller.account_id.clone();
        let h = svc.core.db.write_untracked(|tx| {
            let mut h = load(&*tx, &self.id, now)?;
            if !is_sender(&h, &account) {
                return Err(denied());
            }
            transition(&mut h, "CANCELED", now)?;
            store(tx, &h)?;
            if h.action == TRANSFER {
                super::transfers::on_handshake(tx, &h, &account, "CANCELED")?;
            }
            // Canceling the ENABLE_ALL_FEATURES request cancels what it sent.
            if h.action == ENABLE_ALL && h.parent.is_none() {
                end_request(tx, &h, "CANCELED", now)?;
            }
            Ok(h)
        })?;
        Ok(Output::Json(json!({"Handshake": handshake_json(&h, now)})))
    }
}

pub struct DescribeHandshake {
    id: String,
    handshake: Option<HandshakeRec>,
}

impl Operation<OrgService> for DescribeHandshake {
    const NAME: &'static str = "DescribeHandshake";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(DescribeHandshake { id: handshake_id_arg(&In::new(input))?, handshake: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, h) = handshake_check(svc, ctx, Self::NAME, &self.id, Role::Either)?;
        self.handshake = Some(h);
        one(c)
    }

    fn run(self, _: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let h = self.handshake.ok_or_else(handshake_not_found)?;
        Ok(Output::Json(json!({"Handshake": handshake_json(&h, ctx.time.unix_timestamp())})))
    }
}

pub struct ListHandshakesForAccount {
    filter: Filter,
    page: Paging,
}

impl Operation<OrgService> for ListHandshakesForAccount {
    const NAME: &'static str = "ListHandshakesForAccount";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        Ok(ListHandshakesForAccount { filter: Filter::parse(&i)?, page: Paging::parse(&i)? })
    }

    /// Any account may list what it received (standalone accounts see their invitations).
    fn authorize(&mut self, _: &OrgService, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let now = ctx.time.unix_timestamp();
        let db = &svc.core.db;
        let account = &ctx.caller.account_id;
        let mut list = indexed(db, &format!("{account}/"), now)?;
        if let Some(email) = caller_email(db, account)? {
            list.extend(indexed(db, &format!("email:{email}/"), now)?);
            list.sort_by(|a, b| a.order.cmp(&b.order).then_with(|| a.id.cmp(&b.id)));
        }
        let items = list.iter().filter(|h| self.filter.keeps(h)).map(|h| handshake_json(h, now)).collect();
        paged("Handshakes", items, &self.page)
    }
}

pub struct ListHandshakesForOrganization {
    filter: Filter,
    page: Paging,
    doc: Option<OrgDoc>,
}

impl Operation<OrgService> for ListHandshakesForOrganization {
    const NAME: &'static str = "ListHandshakesForOrganization";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        Ok(ListHandshakesForOrganization { filter: Filter::parse(&i)?, page: Paging::parse(&i)?, doc: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        self.doc = Some(svc.readable_org(ctx, Self::NAME)?);
        one(check(Self::NAME, "*"))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let now = ctx.time.unix_timestamp();
        let doc = loaded(self.doc)?;
        let list = indexed(&svc.core.db, &format!("{}/", doc.id), now)?;
        let items = list.iter().filter(|h| self.filter.keeps(h)).map(|h| handshake_json(h, now)).collect();
        paged("Handshakes", items, &self.page)
    }
}

// ---- EnableAllFeatures, LeaveOrganization ---------------------------------------------------

pub struct EnableAllFeatures;

impl Operation<OrgService> for EnableAllFeatures {
    const NAME: &'static str = "EnableAllFeatures";
    type Error = IamError;

    fn parse(_: &Input) -> Result<Self> {
        Ok(EnableAllFeatures)
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        svc.managed_org(ctx)?;
        one(check(Self::NAME, "*"))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let now = ctx.time.unix_timestamp();
        let caller = ctx.caller.account_id.clone();
        let h = svc.core.db.write_untracked(|tx| {
            let doc = org_of(&*tx, &caller)?.ok_or_else(not_in_use)?;
            if doc.management != caller {
                return Err(denied());
            }
            if doc.feature_set == "ALL" {
                return Err(handshake_constraint(
                    "ORGANIZATION_ALREADY_HAS_ALL_FEATURES",
                    "The handshake request is invalid because the organization has already enabled all features.",
                ));
            }
            if pending_all_features(&*tx, &doc.id, now)?.is_some() {
                return Err(handshake_constraint(
                    "ORGANIZATION_IS_ALREADY_PENDING_ALL_FEATURES_MIGRATION",
                    "The handshake request is invalid because the organization has already started the process to enable all features.",
                ));
            }
            let org_resource = json!([{"Type": "ORGANIZATION", "Value": doc.id}]);
            let mut parent = new_handshake(&doc, ENABLE_ALL, vec![org_party(&doc)], None, org_resource, now);
            parent.state = "REQUESTED".into();
            // AWS: the request goes to every invited member account; created accounts' approval
            // is inferred.
            let invited: Vec<String> = doc
                .accounts
                .iter()
                .filter(|(id, a)| **id != doc.management && a.joined_method == "INVITED")
                .map(|(id, _)| id.clone())
                .collect();
            for account in &invited {
                let resources = json!([
                    {"Type": "ORGANIZATION", "Value": doc.id},
                    {"Type": "PARENT_HANDSHAKE", "Value": parent.id},
                ]);
                let parties = vec![org_party(&doc), (account.clone(), "ACCOUNT".to_string())];
                let mut child = new_handshake(&doc, ENABLE_ALL, parties, Some(account.clone()), resources, now);
                child.parent = Some(parent.id.clone());
                store(tx, &child)?;
            }
            if invited.is_empty() {
                open_approval(tx, &doc, &mut parent, now)?;
            } else {
                store(tx, &parent)?;
            }
            Ok(parent)
        })?;
        Ok(Output::Json(json!({"Handshake": handshake_json(&h, now)})))
    }
}

pub struct LeaveOrganization;

impl Operation<OrgService> for LeaveOrganization {
    const NAME: &'static str = "LeaveOrganization";
    type Error = IamError;

    fn parse(_: &Input) -> Result<Self> {
        Ok(LeaveOrganization)
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        svc.org(ctx)?;
        one(check(Self::NAME, "*"))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let now = ctx.time.unix_timestamp();
        let account = ctx.caller.account_id.clone();
        svc.core.db.write_untracked(|tx| {
            let mut doc = org_of(&*tx, &account)?.ok_or_else(not_in_use)?;
            depart(tx, &mut doc, &account, now)?;
            bump(tx)
        })?;
        Ok(Output::Json(json!({})))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(state: &str) -> HandshakeRec {
        HandshakeRec {
            id: "h-abcdefgh".into(),
            org_id: "o-abcdefghij".into(),
            management: "111111111111".into(),
            action: INVITE.into(),
            state: state.into(),
            parties: vec![],
            recipient: Some("222222222222".into()),
            resources: json!([]),
            requested: 1000,
            expires: 1000 + HANDSHAKE_LIFETIME,
            changed: 1000,
            parent: None,
            order: 0,
            tags: vec![],
        }
    }

    #[test]
    fn expiry_and_retention() {
        let h = rec("REQUESTED");
        assert_eq!(h.state_at(1000 + HANDSHAKE_LIFETIME - 1), "REQUESTED");
        assert_eq!(h.state_at(1000 + HANDSHAKE_LIFETIME), "EXPIRED");
        // Listed for 30 days after it expired, then gone.
        assert!(h.visible_at(1000 + HANDSHAKE_LIFETIME + HANDSHAKE_RETENTION - 1));
        assert!(!h.visible_at(1000 + HANDSHAKE_LIFETIME + HANDSHAKE_RETENTION));
        let mut a = rec("ACCEPTED");
        a.changed = 5000;
        assert_eq!(a.state_at(i64::MAX / 2), "ACCEPTED");
        assert!(a.visible_at(5000 + HANDSHAKE_RETENTION - 1) && !a.visible_at(5000 + HANDSHAKE_RETENTION));
        assert_eq!(a.arn(), "arn:aws:organizations::111111111111:handshake/o-abcdefghij/invite/h-abcdefgh");
    }

    #[test]
    fn transitions() {
        let mut h = rec("REQUESTED");
        assert!(transition(&mut h, "ACCEPTED", 2000).is_ok());
        assert_eq!(h.state, "ACCEPTED");
        let e = AwsError::from(transition(&mut h, "ACCEPTED", 2001).unwrap_err());
        assert_eq!(e.code, "HandshakeAlreadyInStateException");
        let e = AwsError::from(transition(&mut h, "CANCELED", 2001).unwrap_err());
        assert_eq!(e.code, "InvalidHandshakeTransitionException");
        let mut old = rec("REQUESTED");
        let e = AwsError::from(transition(&mut old, "ACCEPTED", 1000 + HANDSHAKE_LIFETIME).unwrap_err());
        assert_eq!(e.code, "InvalidHandshakeTransitionException");
    }

    #[test]
    fn recipients_and_senders() {
        let mut h = rec("REQUESTED");
        assert!(is_recipient(&h, "222222222222", None) && !is_recipient(&h, "111111111111", None));
        assert!(is_sender(&h, "111111111111") && !is_sender(&h, "222222222222"));
        h.recipient = Some("x@example.com".into());
        assert!(is_recipient(&h, "333333333333", Some("x@example.com")));
        assert!(!is_recipient(&h, "333333333333", Some("y@example.com")));
        h.action = APPROVE_ALL.into();
        h.recipient = None;
        assert!(is_recipient(&h, "111111111111", None) && !is_sender(&h, "111111111111"));
    }
}
