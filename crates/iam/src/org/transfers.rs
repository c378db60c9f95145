//! Responsibility (billing) transfers between organizations: the management account of one
//! organization (the *target*, the bill-transfer account) invites another organization's
//! management account (the *source*, the bill-source account) to let it manage the source
//! organization's billing. The invitation is a TRANSFER_RESPONSIBILITY handshake that only the
//! source's management account accepts; either side withdraws an accepted transfer
//! (TerminateResponsibilityTransfer), which then ends at the end of a month.

use rampart_service::{op, Entry, Operation};
use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime, Time};

use super::handshakes::{store_handshake, TRANSFER};
use super::*;

/// The operations of this family, each listed once.
pub const OPS: &[Entry<OrgService>] = &[
    op::<OrgService, InviteOrganizationToTransferResponsibility>(),
    op::<OrgService, DescribeResponsibilityTransfer>(),
    op::<OrgService, ListInboundResponsibilityTransfers>(),
    op::<OrgService, ListOutboundResponsibilityTransfers>(),
    op::<OrgService, UpdateResponsibilityTransfer>(),
    op::<OrgService, TerminateResponsibilityTransfer>(),
];

/// Table names.
const TRANSFERS: &str = "org_transfers";
/// `{account}/{rt-…}` → the transfer's ID, for both management accounts.
const TRANSFER_PARTIES: &str = "org_transfer_parties";

/// One transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRec {
    pub id: String,
    pub name: String,
    /// REQUESTED, DECLINED, CANCELED, ACCEPTED, WITHDRAWN (EXPIRED: the handshake's).
    pub status: String,
    /// The bill-transfer account (the inviter) and its organization.
    pub target: String,
    pub target_org: String,
    /// The bill-source account once known (the invited account, or who accepted an email
    /// invitation); the invited email until then.
    pub source: Option<String>,
    pub source_org: Option<String>,
    pub source_email: Option<String>,
    pub start: i64,
    pub end: Option<i64>,
    pub handshake: String,
    pub created: i64,
    /// Creation order (the invitation's).
    #[serde(default)]
    pub order: i64,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

fn transfer_not_found() -> IamError {
    err("ResponsibilityTransferNotFoundException", "We can't find a transfer that you specified.")
}

fn is_transfer_id(s: &str) -> bool {
    s.strip_prefix("rt-").is_some_and(|r| (8..=32).contains(&r.len()) && r.bytes().all(lower_digit))
}

fn transfer_id_arg(i: &In<'_>) -> Result<String> {
    Ok(i.id("Id", is_transfer_id)?.to_string())
}

fn new_transfer_id() -> String {
    // `rt-` + 16 lower-case letters or digits.
    new_handshake_id().replacen("h-", "rt-", 1).chars().take(19).collect()
}

/// `Type`: only BILLING.
fn type_arg(i: &In<'_>) -> Result<()> {
    match i.req("Type")? {
        "BILLING" => Ok(()),
        _ => Err(invalid("INVALID_ENUM", "You specified an invalid value.")),
    }
}

/// A timestamp member (epoch seconds, as the JSON protocols send it).
fn timestamp(i: &In<'_>, name: &str) -> Result<Option<i64>> {
    match i.0.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite() && f.abs() < 1e12)
            .map(|f| Some(f.floor() as i64))
            .ok_or_else(|| err_ser(name)),
        Some(_) => Err(err_ser(name)),
    }
}

fn err_ser(name: &str) -> IamError {
    IamError::Aws(AwsError::new("SerializationException", format!("Value for {name} must be a timestamp"), 400))
}

fn date_of(ts: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(ts).ok()
}

/// 00:00:00 UTC on the first day of the month after `ts`'s month.
fn next_month_start(ts: i64) -> Option<i64> {
    let d = date_of(ts)?;
    let (y, m) =
        if d.month() == Month::December { (d.year() + 1, Month::January) } else { (d.year(), d.month().next()) };
    Some(Date::from_calendar_date(y, m, 1).ok()?.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp())
}

/// AWS: a transfer starts at 00:00:00 UTC on the first day of a month, not in the past.
fn check_start(start: i64, now: i64) -> Result<()> {
    let d = date_of(start)
        .ok_or_else(|| invalid("INVALID_START_DATE", "The start date doesn't meet the minimum requirements."))?;
    if d.time() != Time::MIDNIGHT {
        return Err(invalid("START_DATE_NOT_BEGINNING_OF_DAY", "You provided an invalid start date."));
    }
    if d.day() != 1 {
        return Err(invalid("START_DATE_NOT_BEGINNING_OF_MONTH", "You provided an invalid start date."));
    }
    if start < now {
        return Err(invalid("START_DATE_TOO_EARLY", "You provided an invalid start date."));
    }
    Ok(())
}

/// AWS: a withdrawn transfer ends at 23:59:59 UTC on the last day of the month given.
fn end_of_month(ts: i64) -> Option<i64> {
    next_month_start(ts).map(|t| t - 1)
}

/// The transfer's shape as `account` sees it (inbound for the bill-transfer account, outbound
/// for the bill-source account).
fn transfer_json(t: &TransferRec, account: &str, db: &impl Lookup) -> Result<Value> {
    let email = |a: &str| -> Result<String> {
        Ok(known_email(db, a)?.unwrap_or_else(|| format!("management@{a}.rampart.invalid")))
    };
    let mut source = json!({});
    if let Some(s) = &t.source {
        source = json!({"ManagementAccountId": s, "ManagementAccountEmail": email(s)?});
    } else if let Some(e) = &t.source_email {
        source = json!({"ManagementAccountEmail": e});
    }
    let mut v = json!({
        "Arn": transfer_arn(t, account),
        "Name": t.name,
        "Id": t.id,
        "Type": "BILLING",
        "Status": t.status,
        "Source": source,
        "Target": {"ManagementAccountId": t.target, "ManagementAccountEmail": email(&t.target)?},
        "StartTimestamp": t.start,
        "ActiveHandshakeId": t.handshake,
    });
    if let Some(e) = t.end {
        put(&mut v, "EndTimestamp", json!(e));
    }
    Ok(v)
}

/// The transfer's ARN in `account`'s organization: `…/billing/inbound/…` for the bill-transfer
/// account, `…/billing/outbound/…` for the bill-source account.
fn transfer_arn(t: &TransferRec, account: &str) -> String {
    let (direction, owner, org) = if account == t.target {
        ("inbound", t.target.as_str(), t.target_org.as_str())
    } else {
        ("outbound", t.source.as_deref().unwrap_or(account), t.source_org.as_deref().unwrap_or(&t.target_org))
    };
    format!("arn:aws:organizations::{owner}:transfer/{org}/billing/{direction}/{}", t.id)
}

fn is_party(t: &TransferRec, account: &str) -> bool {
    t.target == account || t.source.as_deref() == Some(account)
}

fn store(tx: &mut Tx<'_>, t: &TransferRec) -> Result<()> {
    tx.put(TRANSFERS, &t.id, t)?;
    tx.put(TRANSFER_PARTIES, &format!("{}/{}", t.target, t.id), &t.id)?;
    if let Some(s) = &t.source {
        tx.put(TRANSFER_PARTIES, &format!("{s}/{}", t.id), &t.id)?;
    }
    Ok(())
}

/// The transfer as a party sees it, or not found.
fn load(db: &impl Lookup, id: &str, account: &str) -> Result<TransferRec> {
    match db.get::<TransferRec>(TRANSFERS, id)? {
        Some(t) if is_party(&t, account) => Ok(t),
        _ => Err(transfer_not_found()),
    }
}

/// The status a transfer shows at `now`: an unanswered invitation past its handshake's
/// expiration is EXPIRED.
fn status_at(t: &TransferRec, db: &impl Lookup, now: i64) -> Result<String> {
    if t.status == "REQUESTED" {
        if let Some(h) = db.get::<HandshakeRec>(tables::HANDSHAKES, &t.handshake)? {
            if h.state_at(now) == "EXPIRED" {
                return Ok("EXPIRED".into());
            }
        }
    }
    Ok(t.status.clone())
}

fn shown(mut t: TransferRec, db: &impl Lookup, now: i64, account: &str) -> Result<Value> {
    t.status = status_at(&t, db, now)?;
    transfer_json(&t, account, db)
}

/// The caller as the management account of an organization (transfers are between them).
fn management(svc: &OrgService, ctx: &RequestContext) -> Result<OrgDoc> {
    svc.managed_org(ctx)
}

/// What AcceptHandshake / DeclineHandshake / CancelHandshake of a TRANSFER_RESPONSIBILITY
/// handshake do to its transfer.
pub(super) fn on_handshake(tx: &mut Tx<'_>, h: &HandshakeRec, account: &str, to: &str) -> Result<()> {
    let Some(id) = h.resources.get(0).and_then(|r| r.get("Value")).and_then(Value::as_str) else { return Ok(()) };
    let Some(mut t) = tx.get::<TransferRec>(TRANSFERS, id)? else { return Ok(()) };
    if to == "ACCEPTED" {
        let doc = org_of(&*tx, account)?.ok_or_else(not_in_use)?;
        if doc.management != account {
            return Err(denied());
        }
        if account == t.target {
            return Err(IamError::Aws(
                AwsError::new(
                    "HandshakeConstraintViolationException",
                    "An account can't accept a transfer invitation if it is both the sender and recipient of the invitation.",
                    400,
                )
                .with_field("Reason", "SOURCE_AND_TARGET_CANNOT_MATCH"),
            ));
        }
        t.source = Some(account.to_string());
        t.source_org = Some(doc.id);
    }
    t.status = to.to_string();
    store(tx, &t)
}

// ---- operations -----------------------------------------------------------------------------

pub struct InviteOrganizationToTransferResponsibility {
    target: String,
    target_type: &'static str,
    target_shown: String,
    notes: Option<String>,
    start: i64,
    name: String,
    tags: Vec<Tag>,
}

impl Operation<OrgService> for InviteOrganizationToTransferResponsibility {
    const NAME: &'static str = "InviteOrganizationToTransferResponsibility";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        type_arg(&i)?;
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
            "EMAIL" if (6..=64).contains(&id.chars().count()) && super::handshakes::valid_email(id) => {
                ("EMAIL", id.to_ascii_lowercase())
            }
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
        let start = timestamp(&i, "StartTimestamp")?
            .ok_or_else(|| invalid("INPUT_REQUIRED", "You must specify a value for StartTimestamp."))?;
        let name = i.len("SourceName", 1, 128, true)?.unwrap_or_default().to_string();
        if !name.chars().all(|c| (' '..='~').contains(&c)) {
            return Err(invalid("INVALID_PATTERN", "You provided a value that doesn't match the required pattern."));
        }
        let tags = i.tags("Tags")?;
        Ok(InviteOrganizationToTransferResponsibility {
            target: value,
            target_type,
            target_shown: id.to_string(),
            notes,
            start,
            name,
            tags,
        })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        management(svc, ctx)?;
        let mut c = check(Self::NAME, "*");
        let mut checks = Vec::new();
        if !self.tags.is_empty() {
            for t in &self.tags {
                c = c.with_context(format!("aws:RequestTag/{}", t.key), ContextValue::String(t.value.clone()));
            }
            let keys = ContextValue::List(self.tags.iter().map(|t| t.key.clone()).collect());
            c = c.with_context("aws:TagKeys", keys.clone());
            checks.push(check("TagResource", "*").with_context("aws:TagKeys", keys));
        }
        checks.insert(0, c);
        Ok(AuthzPlan::Checks(checks))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let now = ctx.time.unix_timestamp();
        check_start(self.start, now)?;
        let caller = ctx.caller.account_id.clone();
        let h = svc.core.db.write_untracked(|tx| {
            let doc = org_of(&*tx, &caller)?.ok_or_else(not_in_use)?;
            if doc.management != caller {
                return Err(denied());
            }
            if self.target == caller || known_email(&*tx, &caller)?.as_deref() == Some(self.target.as_str()) {
                return Err(IamError::Aws(
                    AwsError::new(
                        "HandshakeConstraintViolationException",
                        "An account can't accept a transfer invitation if it is both the sender and recipient of the invitation.",
                        400,
                    )
                    .with_field("Reason", "SOURCE_AND_TARGET_CANNOT_MATCH"),
                ));
            }
            // One active transfer (or invitation) between the same two accounts.
            for (_, id) in tx.scan::<String>(TRANSFER_PARTIES, &format!("{caller}/"))? {
                if let Some(t) = tx.get::<TransferRec>(TRANSFERS, &id)? {
                    let same = t.source.as_deref() == Some(self.target.as_str())
                        || t.source_email.as_deref() == Some(self.target.as_str());
                    if same && matches!(status_at(&t, &*tx, now)?.as_str(), "REQUESTED" | "ACCEPTED") {
                        return Err(IamError::Aws(
                            AwsError::new(
                                "HandshakeConstraintViolationException",
                                "You cannot perform this operation with the current transfer.",
                                400,
                            )
                            .with_field("Reason", "RESPONSIBILITY_TRANSFER_ALREADY_EXISTS"),
                        ));
                    }
                }
            }
            let id = new_transfer_id();
            let mgmt = doc.accounts.get(&doc.management);
            let mut resources = vec![
                json!({
                    "Type": "RESPONSIBILITY_TRANSFER",
                    "Value": id,
                    "Resources": [
                        {"Type": "TRANSFER_TYPE", "Value": "BILLING"},
                        {"Type": "TRANSFER_START_TIMESTAMP", "Value": self.start.to_string()},
                        {"Type": "MANAGEMENT_ACCOUNT", "Value": caller},
                        {"Type": "MANAGEMENT_EMAIL", "Value": mgmt.map(|a| a.email.clone()).unwrap_or_default()},
                        {"Type": "MANAGEMENT_NAME", "Value": mgmt.map(|a| a.name.clone()).unwrap_or_default()},
                    ],
                }),
                json!({"Type": self.target_type, "Value": self.target_shown}),
            ];
            if let Some(n) = &self.notes {
                resources.push(json!({"Type": "NOTES", "Value": n}));
            }
            let h = super::handshakes::new_for(
                &doc,
                TRANSFER,
                vec![(doc.id.clone(), "ORGANIZATION".into()), (self.target_shown.clone(), self.target_type.into())],
                Some(self.target.clone()),
                Value::Array(resources),
                now,
            );
            let (source, source_email) = if self.target_type == "ACCOUNT" {
                (Some(self.target.clone()), None)
            } else {
                (None, Some(self.target.clone()))
            };
            let t = TransferRec {
                id,
                name: self.name,
                status: "REQUESTED".into(),
                target: caller.clone(),
                target_org: doc.id.clone(),
                source,
                source_org: None,
                source_email,
                start: self.start,
                end: None,
                handshake: h.id.clone(),
                created: now,
                order: h.order,
                tags: self.tags,
            };
            store(tx, &t)?;
            store_handshake(tx, &h)?;
            Ok(h)
        })?;
        Ok(Output::Json(json!({"Handshake": super::handshakes::handshake_json(&h, now)})))
    }
}

pub struct DescribeResponsibilityTransfer {
    id: String,
    transfer: Option<TransferRec>,
}

impl Operation<OrgService> for DescribeResponsibilityTransfer {
    const NAME: &'static str = "DescribeResponsibilityTransfer";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(DescribeResponsibilityTransfer { id: transfer_id_arg(&In::new(input))?, transfer: None })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let doc = management(svc, ctx)?;
        let t = load(&svc.core.db, &self.id, &ctx.caller.account_id)?;
        let c = check(Self::NAME, transfer_arn(&t, &doc.management));
        self.transfer = Some(t);
        one(c)
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let t = self.transfer.ok_or_else(transfer_not_found)?;
        let v = shown(t, &svc.core.db, ctx.time.unix_timestamp(), &ctx.caller.account_id)?;
        Ok(Output::Json(json!({"ResponsibilityTransfer": v})))
    }
}

/// The caller's transfers in one direction, oldest first.
fn listed(svc: &OrgService, ctx: &RequestContext, inbound: bool, only: Option<&str>) -> Result<Vec<Value>> {
    let now = ctx.time.unix_timestamp();
    let account = &ctx.caller.account_id;
    let db = &svc.core.db;
    let mut items: Vec<TransferRec> = Vec::new();
    for (_, id) in db.scan::<String>(TRANSFER_PARTIES, &format!("{account}/"))? {
        if let Some(t) = db.get::<TransferRec>(TRANSFERS, &id)? {
            if (t.target == *account) == inbound && only.is_none_or(|o| o == t.id) {
                items.push(t);
            }
        }
    }
    items.sort_by(|a, b| a.order.cmp(&b.order).then_with(|| a.id.cmp(&b.id)));
    items.into_iter().map(|t| shown(t, db, now, account)).collect()
}

pub struct ListInboundResponsibilityTransfers {
    id: Option<String>,
    page: Paging,
}

impl Operation<OrgService> for ListInboundResponsibilityTransfers {
    const NAME: &'static str = "ListInboundResponsibilityTransfers";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        type_arg(&i)?;
        let id = match i.opt("Id")? {
            Some(_) => Some(transfer_id_arg(&i)?),
            None => None,
        };
        Ok(ListInboundResponsibilityTransfers { id, page: Paging::parse(&i)? })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        management(svc, ctx)?;
        one(check(Self::NAME, "*"))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let items = listed(svc, ctx, true, self.id.as_deref())?;
        if self.id.is_some() && items.is_empty() {
            return Err(transfer_not_found());
        }
        paged("ResponsibilityTransfers", items, &self.page)
    }
}

pub struct ListOutboundResponsibilityTransfers {
    page: Paging,
}

impl Operation<OrgService> for ListOutboundResponsibilityTransfers {
    const NAME: &'static str = "ListOutboundResponsibilityTransfers";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        type_arg(&i)?;
        Ok(ListOutboundResponsibilityTransfers { page: Paging::parse(&i)? })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        management(svc, ctx)?;
        one(check(Self::NAME, "*"))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        paged("ResponsibilityTransfers", listed(svc, ctx, false, None)?, &self.page)
    }
}

pub struct UpdateResponsibilityTransfer {
    id: String,
    name: String,
}

impl Operation<OrgService> for UpdateResponsibilityTransfer {
    const NAME: &'static str = "UpdateResponsibilityTransfer";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        let id = transfer_id_arg(&i)?;
        let name = i.len("Name", 1, 128, true)?.unwrap_or_default().to_string();
        if !name.chars().all(|c| (' '..='~').contains(&c)) {
            return Err(invalid("INVALID_PATTERN", "You provided a value that doesn't match the required pattern."));
        }
        Ok(UpdateResponsibilityTransfer { id, name })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let doc = management(svc, ctx)?;
        let t = load(&svc.core.db, &self.id, &ctx.caller.account_id)?;
        one(check(Self::NAME, transfer_arn(&t, &doc.management)))
    }

    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let now = ctx.time.unix_timestamp();
        let account = ctx.caller.account_id.clone();
        let t = svc.core.db.write_untracked(|tx| {
            let mut t = load(&*tx, &self.id, &account)?;
            if !matches!(status_at(&t, &*tx, now)?.as_str(), "REQUESTED" | "ACCEPTED") {
                return Err(constraint(
                    "TRANSFER_RESPONSIBILITY_UPDATE_NOT_ALLOWED",
                    "You cannot update this transfer because it is no longer active.",
                ));
            }
            t.name = self.name;
            store(tx, &t)?;
            Ok(t)
        })?;
        Ok(Output::Json(json!({"ResponsibilityTransfer": shown(t, &svc.core.db, now, &account)?})))
    }
}

pub struct TerminateResponsibilityTransfer {
    id: String,
    end: Option<i64>,
}

impl Operation<OrgService> for TerminateResponsibilityTransfer {
    const NAME: &'static str = "TerminateResponsibilityTransfer";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In::new(input);
        Ok(TerminateResponsibilityTransfer { id: transfer_id_arg(&i)?, end: timestamp(&i, "EndTimestamp")? })
    }

    fn authorize(&mut self, svc: &OrgService, ctx: &RequestContext) -> Result<AuthzPlan> {
        let doc = management(svc, ctx)?;
        let t = load(&svc.core.db, &self.id, &ctx.caller.account_id)?;
        one(check(Self::NAME, transfer_arn(&t, &doc.management)))
    }

    /// Either account withdraws an accepted transfer; it ends at 23:59:59 UTC on the last day of
    /// the month of `EndTimestamp` (default: this month), never before it started.
    fn run(self, svc: &OrgService, ctx: &RequestContext) -> Result<Output> {
        let now = ctx.time.unix_timestamp();
        let account = ctx.caller.account_id.clone();
        let t = svc.core.db.write_untracked(|tx| {
            let mut t = load(&*tx, &self.id, &account)?;
            match status_at(&t, &*tx, now)?.as_str() {
                "ACCEPTED" => {}
                "WITHDRAWN" => {
                    return Err(err(
                        "ResponsibilityTransferAlreadyInStatusException",
                        "The responsibility transfer is already in the status that you specified.",
                    ))
                }
                _ => {
                    return Err(err(
                        "InvalidResponsibilityTransferTransitionException",
                        "The responsibility transfer can't transition to the requested state because it's not in a valid state for this operation.",
                    ))
                }
            }
            let requested = self.end.unwrap_or(now);
            let end = end_of_month(requested)
                .ok_or_else(|| invalid("INVALID_END_DATE", "You provided an invalid end date."))?;
            if end < now || end < t.start {
                return Err(invalid("END_DATE_TOO_EARLY", "You provided an invalid end date."));
            }
            t.status = "WITHDRAWN".into();
            t.end = Some(end);
            store(tx, &t)?;
            Ok(t)
        })?;
        Ok(Output::Json(json!({"ResponsibilityTransfer": shown(t, &svc.core.db, now, &account)?})))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months() {
        // 2026-12-01T00:00:00Z
        let dec1 = 1_796_083_200;
        assert!(check_start(dec1, dec1 - 10).is_ok());
        assert!(check_start(dec1 + 86_400, 0).is_err());
        assert!(check_start(dec1 + 60, 0).is_err());
        assert!(check_start(dec1, dec1 + 1).is_err());
        // December ends 2026-12-31T23:59:59Z; the month after starts 2027-01-01.
        assert_eq!(next_month_start(dec1 + 5 * 86_400), Some(dec1 + 31 * 86_400));
        assert_eq!(end_of_month(dec1), Some(dec1 + 31 * 86_400 - 1));
        assert!(is_transfer_id(&new_transfer_id()));
    }
}
