//! The credential report: GenerateCredentialReport / GetCredentialReport. One CSV per account with
//! AWS's columns, a `<root_account>` row first, then every user. Like IAM, a report is reused for
//! four hours: generating within that time returns COMPLETE without building a new one, and a
//! report older than that is expired.

use base64::Engine;
use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{op, AuthzPlan, Entry, Input, Operation, Output, RequestContext};
use serde::{Deserialize, Serialize};

use super::{account, check, login, mfa, one, xml, Core};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{tables, AccessKeyRec, AccountRec, LastUsedRec, UserRec};
use crate::util::iso8601;
use crate::validate::Args;

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[op::<Core, GenerateCredentialReport>(), op::<Core, GetCredentialReport>()];

/// Account ID → [`ReportRec`].
const REPORTS: &str = "iam_credential_reports";

/// How long a report is reused and then kept (IAM: four hours).
const REPORT_TTL: i64 = 4 * 3600;

/// AWS's columns, in order.
pub const COLUMNS: &[&str] = &[
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ReportRec {
    generated: i64,
    csv: String,
}

/// ISO 8601 as the report writes it: `2024-01-02T03:04:05+00:00`.
fn report_time(epoch: i64) -> String {
    let z = iso8601(epoch);
    match z.strip_suffix('Z') {
        Some(base) => format!("{base}+00:00"),
        None => z,
    }
}

fn flag(b: bool) -> String {
    (if b { "true" } else { "false" }).to_string()
}

const NA: &str = "N/A";

/// The five columns of access key slot N.
fn key_columns(core: &Core, keys: &[(String, AccessKeyRec)], slot: usize) -> Result<Vec<String>> {
    let Some((id, k)) = keys.get(slot) else {
        return Ok(vec![flag(false), NA.into(), NA.into(), NA.into(), NA.into()]);
    };
    let used = core.db.get::<LastUsedRec>(tables::KEY_LAST_USED, id)?;
    Ok(vec![
        flag(k.active),
        report_time(k.created),
        used.as_ref().map_or(NA.into(), |u| report_time(u.at)),
        used.as_ref().map_or(NA.into(), |u| u.region.clone()),
        used.as_ref().map_or(NA.into(), |u| u.service.clone()),
    ])
}

/// The key records of `ids` (kept in creation order), oldest first.
fn keys_of(core: &Core, ids: &[String]) -> Result<Vec<(String, AccessKeyRec)>> {
    let mut keys = Vec::new();
    for id in ids {
        if let Some(k) = core.db.get::<AccessKeyRec>(tables::ACCESS_KEYS, id)? {
            keys.push((id.clone(), k));
        }
    }
    // Stable: keys created within the same second keep their creation order.
    keys.sort_by_key(|k| k.1.created);
    Ok(keys)
}

/// The four signing-certificate columns (`None` = the root user).
fn certs(core: &Core, acct: &str, user: Option<&str>) -> Result<Vec<String>> {
    let certs = super::signing_certs::owner_certs(&core.db, acct, user)?;
    let mut cols = Vec::with_capacity(4);
    for slot in 0..2 {
        match certs.get(slot) {
            Some(c) => cols.extend([flag(c.active), report_time(c.uploaded)]),
            None => cols.extend([flag(false), NA.into()]),
        }
    }
    Ok(cols)
}

/// A CSV field (quoted when it needs to be; IAM names never do).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Build the report CSV for `acct` as of `at`.
fn build(core: &Core, acct: &str, at: i64) -> Result<String> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let account = core.db.get::<AccountRec>(tables::ACCOUNTS, acct)?;
    let root_keys = keys_of(core, &account.as_ref().map(|a| a.root_keys.clone()).unwrap_or_default())?;
    let mut root = vec![
        "<root_account>".to_string(),
        format!("arn:aws:iam::{acct}:root"),
        report_time(account.as_ref().map_or(at, |a| a.created)),
        "not_supported".into(),
        "no_information".into(),
        "not_supported".into(),
        "not_supported".into(),
        flag(false),
    ];
    root.extend(key_columns(core, &root_keys, 0)?);
    root.extend(key_columns(core, &root_keys, 1)?);
    root.extend(certs(core, acct, None)?);
    rows.push(root);

    let policy = login::policy(&core.db, acct)?;
    let devices = mfa::devices(core, acct)?;
    for u in core.db.entities::<UserRec>(acct)? {
        let profile = login::profile(&core.db, acct, &u.name)?;
        let mfa_active = devices.iter().any(|d| d.enabled.is_some() && d.user.as_deref() == Some(u.name.as_str()));
        let mut row = vec![u.name.clone(), u.arn(acct), report_time(u.created)];
        match &profile {
            Some(p) => {
                row.push(flag(true));
                row.push(p.last_used.map_or("no_information".into(), report_time));
                row.push(report_time(p.changed));
                row.push(login::expires(p, policy.as_ref()).map_or(NA.into(), report_time));
            }
            None => row.extend([flag(false), NA.into(), NA.into(), NA.into()]),
        }
        row.push(flag(mfa_active));
        let keys = keys_of(core, &u.keys)?;
        row.extend(key_columns(core, &keys, 0)?);
        row.extend(key_columns(core, &keys, 1)?);
        row.extend(certs(core, acct, Some(&u.name))?);
        rows.push(row);
    }
    let mut lines = vec![COLUMNS.join(",")];
    lines.extend(rows.iter().map(|r| r.iter().map(|f| field(f)).collect::<Vec<_>>().join(",")));
    Ok(lines.join("\n"))
}

pub struct GenerateCredentialReport;

impl Operation<Core> for GenerateCredentialReport {
    const NAME: &'static str = "GenerateCredentialReport";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Args::new(input.query()).finish()?;
        Ok(GenerateCredentialReport)
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let at = ctx.time.unix_timestamp();
        let existing = core.db.get::<ReportRec>(REPORTS, acct)?;
        let mut w = XmlWriter::new();
        if existing.is_some_and(|r| at - r.generated < REPORT_TTL) {
            w.elem("State", "COMPLETE");
        } else {
            // Built synchronously: the report is ready as soon as this call returns.
            let rec = ReportRec { generated: at, csv: build(core, acct, at)? };
            core.db.write_untracked(|tx| tx.put(REPORTS, acct, &rec))?;
            w.elem("State", "STARTED").elem("Description", "No report exists. Starting a new report generation task");
        }
        xml(w.finish())
    }
}

pub struct GetCredentialReport;

impl Operation<Core> for GetCredentialReport {
    const NAME: &'static str = "GetCredentialReport";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Args::new(input.query()).finish()?;
        Ok(GetCredentialReport)
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let at = ctx.time.unix_timestamp();
        let r = core.db.get::<ReportRec>(REPORTS, acct)?.ok_or_else(|| {
            IamError::Aws(AwsError::new(
                "ReportNotPresent",
                "Credential report does not exist. Use GenerateCredentialReport to generate a report.",
                410,
            ))
        })?;
        if at - r.generated >= REPORT_TTL {
            return Err(IamError::Aws(AwsError::new(
                "ReportExpired",
                "Credential report has expired. Use GenerateCredentialReport to generate a new report.",
                410,
            )));
        }
        let mut w = XmlWriter::new();
        w.elem("Content", &base64::engine::general_purpose::STANDARD.encode(r.csv.as_bytes()))
            .elem("ReportFormat", "text/csv")
            .elem("GeneratedTime", &iso8601(r.generated));
        xml(w.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_and_times() {
        assert_eq!(COLUMNS.len(), 22);
        assert_eq!(COLUMNS[7], "mfa_active");
        assert_eq!(COLUMNS[21], "cert_2_last_rotated");
        assert_eq!(report_time(1_700_000_000), "2023-11-14T22:13:20+00:00");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("plain"), "plain");
    }
}
