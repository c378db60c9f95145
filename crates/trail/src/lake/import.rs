//! Imports: copy trail log files Rampart delivered (`<trail-dir>/<bucket>/…/CloudTrail/…json.gz`)
//! into an event data store.
//!
//! The source is `s3://<bucket>[/<prefix>]`, the bucket one of the caller's trails delivers to;
//! only files under `AWSLogs/<caller's account>/` in a `CloudTrail` prefix are read, and only
//! records whose `recipientAccountId` is the caller's are copied (a bucket directory may be shared
//! by trails of several accounts on one server). Events are keyed by `eventID`, so importing a
//! file twice copies its events once.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rampart_store::{ReadExt, Store, StoreError, TransactionExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Lake, LAKE_TABLE};
use crate::audit::StoredEvent;

/// Imports: key `{account}/{import id}`.
pub const IMPORTS_TABLE: &str = "trail_lake_imports";
/// Failures kept per import at most.
const MAX_FAILURES: usize = 1000;
/// A log file larger than this (uncompressed) is a failure, not read.
const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// One file that could not be imported.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImportFailure {
    pub location: String,
    pub error_type: String,
    pub error_message: String,
    pub time: f64,
}

/// An import, as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImportDoc {
    pub id: String,
    pub account: String,
    pub region: String,
    /// Destination event data store ARN (one).
    pub destination: String,
    /// Its ID.
    pub store_id: String,
    pub s3_uri: String,
    pub bucket_region: String,
    pub role_arn: String,
    pub start: Option<f64>,
    pub end: Option<f64>,
    /// INITIALIZING, IN_PROGRESS, FAILED, STOPPED, COMPLETED.
    pub status: String,
    pub created: f64,
    pub updated: f64,
    #[serde(default)]
    pub prefixes_found: u64,
    #[serde(default)]
    pub prefixes_completed: u64,
    #[serde(default)]
    pub files_completed: u64,
    #[serde(default)]
    pub events_completed: u64,
    #[serde(default)]
    pub failed_entries: u64,
    #[serde(default)]
    pub failures: Vec<ImportFailure>,
}

impl ImportDoc {
    pub fn key(&self) -> String {
        format!("{}/{}", self.account, self.id)
    }

    pub fn active(&self) -> bool {
        matches!(self.status.as_str(), "INITIALIZING" | "IN_PROGRESS")
    }
}

/// `s3://bucket[/prefix]` → (bucket, prefix without slashes at its ends).
pub fn parse_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && !bucket.contains("..");
    let prefix = prefix.trim_matches('/');
    let prefix_ok = prefix.len() <= 1024
        && !prefix.split('/').any(|seg| seg == ".." || seg == ".")
        && !prefix.contains('\\')
        && !prefix.contains('\0');
    (bucket_ok && prefix_ok).then(|| (bucket.to_string(), prefix.to_string()))
}

fn now() -> f64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9
}

/// Run an import (stored INITIALIZING) on its own thread once the current call has committed.
pub fn spawn(lake: Arc<Lake>, doc: ImportDoc, root: PathBuf) {
    rampart_store::unit::after_commit(Box::new(move || {
        let _ = std::thread::Builder::new().name("rampart-lake-import".into()).spawn(move || {
            if let Err(e) = run(&lake, &doc, &root) {
                tracing::warn!(import = %doc.id, error = %e, "import failed");
                let _ = update(lake.store().as_ref(), &doc.key(), |d| {
                    d.status = "FAILED".into();
                    d.updated = now();
                });
            }
        });
    }));
}

fn update(store: &dyn Store, key: &str, f: impl FnOnce(&mut ImportDoc)) -> Result<Option<ImportDoc>, StoreError> {
    rampart_store::transact(store, |tx| -> Result<Option<ImportDoc>, StoreError> {
        let Some(mut d) = tx.get_json::<ImportDoc>(IMPORTS_TABLE, key)? else { return Ok(None) };
        f(&mut d);
        tx.put_json(IMPORTS_TABLE, key, &d)?;
        Ok(Some(d))
    })
}

/// The log files under `dir` (the bucket directory joined with the prefix) that belong to
/// `account`: `…/AWSLogs/<account>/CloudTrail/…/*.json.gz`, grouped by their directory (a prefix).
fn log_files(dir: &Path, account: &str) -> std::collections::BTreeMap<PathBuf, Vec<PathBuf>> {
    let mut out: std::collections::BTreeMap<PathBuf, Vec<PathBuf>> = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_symlink() {
                continue; // never leave the bucket directory
            }
            if ft.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".json.gz") {
                let comps: Vec<String> =
                    path.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                let ours = comps
                    .windows(3)
                    .any(|w| matches!(w, [a, b, c] if a == "AWSLogs" && b == account && c == "CloudTrail"));
                if ours {
                    out.entry(d.clone()).or_default().push(path);
                }
            }
        }
    }
    for files in out.values_mut() {
        files.sort();
    }
    out
}

/// A CloudTrail record as a stored row (`None` when it is not one).
fn stored(record: &Value) -> Option<StoredEvent> {
    let s = |k: &str| record.get(k).and_then(Value::as_str);
    let t = time::OffsetDateTime::parse(s("eventTime")?, &time::format_description::well_known::Rfc3339)
        .ok()?
        .unix_timestamp();
    Some(StoredEvent {
        seq: 0,
        id: s("eventID")?.to_string(),
        t,
        name: s("eventName")?.to_string(),
        source: s("eventSource")?.to_string(),
        region: s("awsRegion").unwrap_or_default().to_string(),
        ro: record.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
        user: None,
        key: None,
        res: Vec::new(),
        event: record.to_string(),
    })
}

fn read_gz(path: &Path) -> Result<Vec<u8>, String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(f)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("not a gzip file: {e}"))?;
    if out.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes uncompressed"));
    }
    Ok(out)
}

/// Copy the files into the destination, file by file (each file's events and the statistics
/// in one transaction), stopping when the import is stopped.
pub fn run(lake: &Lake, doc: &ImportDoc, root: &Path) -> Result<(), StoreError> {
    let store = lake.store();
    let key = doc.key();
    let (bucket, prefix) = parse_uri(&doc.s3_uri).unwrap_or_default();
    let bucket_dir = root.join(&bucket);
    let dir = if prefix.is_empty() { bucket_dir.clone() } else { bucket_dir.join(&prefix) };
    let prefixes = if bucket.is_empty() { Default::default() } else { log_files(&dir, &doc.account) };
    // The destination's MaxEventSize applies to imported events as to live ones.
    let max_event = store
        .get_json::<super::EventDataStoreDoc>(super::EDS_TABLE, &format!("{}/{}", doc.account, doc.store_id))?
        .map_or(super::STANDARD_EVENT_BYTES, |d| d.max_event_bytes());
    let Some(_) = update(store.as_ref(), &key, |d| {
        d.status = "IN_PROGRESS".into();
        d.prefixes_found = prefixes.len() as u64;
        d.prefixes_completed = 0;
        d.files_completed = 0;
        d.events_completed = 0;
        d.updated = now();
    })?
    else {
        return Ok(());
    };
    for files in prefixes.values() {
        for path in files {
            let current: Option<ImportDoc> = store.get_json(IMPORTS_TABLE, &key)?;
            if current.is_none_or(|d| d.status != "IN_PROGRESS") {
                return Ok(()); // stopped
            }
            let object = path.strip_prefix(&bucket_dir).unwrap_or(path).to_string_lossy().into_owned();
            let location = format!("s3://{bucket}/{object}");
            let parsed = read_gz(path).and_then(|body| {
                serde_json::from_slice::<Value>(&body).map_err(|e| format!("not a CloudTrail log file: {e}"))
            });
            let mut rows: Vec<(String, Vec<u8>)> = Vec::new();
            let failure = match parsed {
                Err(m) => Some(m),
                Ok(v) => match v.get("Records").and_then(Value::as_array) {
                    None => Some("not a CloudTrail log file: no Records".to_string()),
                    Some(records) => {
                        for r in records {
                            if r.get("recipientAccountId").and_then(Value::as_str) != Some(doc.account.as_str()) {
                                continue;
                            }
                            let Some(e) = stored(r).and_then(|e| super::fit_event(e, max_event)) else { continue };
                            let t = e.t as f64;
                            if doc.start.is_some_and(|s| t < s) || doc.end.is_some_and(|x| t > x) {
                                continue;
                            }
                            rows.push((format!("{}/i/{}", doc.store_id, e.id), e.encode_row()));
                        }
                        None
                    }
                },
            };
            rampart_store::transact(store.as_ref(), |tx| -> Result<(), StoreError> {
                let Some(mut d) = tx.get_json::<ImportDoc>(IMPORTS_TABLE, &key)? else { return Ok(()) };
                match &failure {
                    Some(m) => {
                        d.failed_entries += 1;
                        if d.failures.len() < MAX_FAILURES {
                            d.failures.push(ImportFailure {
                                location: location.clone(),
                                error_type: "InvalidLogFile".into(),
                                error_message: m.chars().take(500).collect(),
                                time: now(),
                            });
                        }
                    }
                    None => {
                        d.events_completed += rows.len() as u64;
                        for (k, v) in &rows {
                            tx.put(LAKE_TABLE, k, v)?;
                        }
                    }
                }
                d.files_completed += 1;
                d.updated = now();
                tx.put_json(IMPORTS_TABLE, &key, &d)
            })?;
        }
        update(store.as_ref(), &key, |d| d.prefixes_completed += 1)?;
    }
    update(store.as_ref(), &key, |d| {
        if d.status == "IN_PROGRESS" {
            d.status = "COMPLETED".into();
            d.updated = now();
        }
    })?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris_name_a_bucket_and_a_safe_prefix() {
        assert_eq!(parse_uri("s3://audit"), Some(("audit".into(), String::new())));
        assert_eq!(parse_uri("s3://audit/logs/x/"), Some(("audit".into(), "logs/x".into())));
        assert_eq!(parse_uri("s3://audit/../etc"), None);
        assert_eq!(parse_uri("s3://Bad_Bucket"), None);
        assert_eq!(parse_uri("https://audit"), None);
    }
}
