//! Offline validation of a trail's files (`rampart trail verify DIR`), like
//! `aws cloudtrail validate-logs`: every digest's signature, the digest chain, and every log
//! file's hash; log files that no digest lists are reported as added.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::digest::{self, DigestFile, SignatureMetadata, METADATA_SUFFIX};

/// What validation found.
#[derive(Debug, Default)]
pub struct Report {
    pub digests_total: usize,
    pub digests_valid: usize,
    pub logs_total: usize,
    pub logs_valid: usize,
    /// One line per problem, naming the file.
    pub problems: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// A human summary in the style of `aws cloudtrail validate-logs`.
    pub fn render(&self, dir: &Path) -> String {
        let mut s = format!("Validating log files in {}\n\n", dir.display());
        for p in &self.problems {
            s.push_str(p);
            s.push('\n');
        }
        if !self.problems.is_empty() {
            s.push('\n');
        }
        s.push_str(&format!("{}/{} digest files valid\n", self.digests_valid, self.digests_total));
        s.push_str(&format!("{}/{} log files valid\n", self.logs_valid, self.logs_total));
        s
    }
}

/// Validation could not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no public key: pass --public-key FILE (DER), or keep the trail directory's public-keys/ beside {0}")]
    NoKeys(PathBuf),
}

/// Public keys by fingerprint.
pub type Keys = BTreeMap<String, Vec<u8>>;

/// Load DER public keys from files.
pub fn load_keys(files: &[PathBuf]) -> Result<Keys, VerifyError> {
    let mut keys = Keys::new();
    for f in files {
        let der = fs::read(f).map_err(|source| VerifyError::Io { path: f.clone(), source })?;
        keys.insert(digest::fingerprint(&der), der);
    }
    Ok(keys)
}

/// The keys the server published beside a bucket directory (`<trail-dir>/public-keys/*.der`).
pub fn published_keys(bucket_dir: &Path) -> Result<Keys, VerifyError> {
    let mut files = Vec::new();
    for dir in bucket_dir.ancestors().skip(1).take(3) {
        let keys = dir.join("public-keys");
        if let Ok(rd) = fs::read_dir(&keys) {
            for e in rd.flatten() {
                if e.path().extension().is_some_and(|x| x == "der") {
                    files.push(e.path());
                }
            }
            break;
        }
    }
    if files.is_empty() {
        return Err(VerifyError::NoKeys(bucket_dir.to_path_buf()));
    }
    load_keys(&files)
}

fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) -> Result<(), VerifyError> {
    let rd = fs::read_dir(dir).map_err(|source| VerifyError::Io { path: dir.to_path_buf(), source })?;
    for e in rd {
        let e = e.map_err(|source| VerifyError::Io { path: dir.to_path_buf(), source })?;
        let p = e.path();
        if p.is_dir() {
            walk(&p, base, out)?;
        } else if let Ok(rel) = p.strip_prefix(base) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

struct Digest {
    object: String,
    doc: DigestFile,
    content: Vec<u8>,
    signature: Option<String>,
}

/// Validate every digest chain and log file under `bucket_dir` (the directory a trail's
/// `S3BucketName` maps to).
pub fn verify(bucket_dir: &Path, keys: &Keys) -> Result<Report, VerifyError> {
    let mut files = Vec::new();
    walk(bucket_dir, bucket_dir, &mut files)?;
    let bucket = bucket_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut report = Report::default();
    let is_digest = |f: &str| f.contains("/CloudTrail-Digest/") && f.ends_with(".json.gz");
    let is_log = |f: &str| f.contains("/CloudTrail/") && f.ends_with(".json.gz");
    let existing: BTreeSet<&str> = files.iter().map(String::as_str).collect();

    // Parse digests and group them into chains (file name without its timestamp).
    let mut chains: BTreeMap<String, Vec<Digest>> = BTreeMap::new();
    for f in files.iter().filter(|f| is_digest(f)) {
        report.digests_total += 1;
        let path = bucket_dir.join(f);
        let parsed = fs::read(&path)
            .ok()
            .and_then(|gz| digest::gunzip(&gz).ok())
            .and_then(|c| serde_json::from_slice::<DigestFile>(&c).ok().map(|d| (d, c)));
        let Some((doc, content)) = parsed else {
            report.problems.push(format!("Digest file {f}\tINVALID: not a readable digest file"));
            continue;
        };
        let signature = fs::read(format!("{}{METADATA_SUFFIX}", path.display()))
            .ok()
            .and_then(|m| serde_json::from_slice::<SignatureMetadata>(&m).ok())
            .map(|m| m.signature);
        let name = f.rsplit('/').next().unwrap_or(f);
        let chain_id = format!(
            "{}/{}",
            f.split("/CloudTrail-Digest/").next().unwrap_or_default(),
            name.rsplit_once('_').map_or(name, |(c, _)| c)
        );
        chains.entry(chain_id).or_default().push(Digest { object: f.clone(), doc, content, signature });
    }

    let mut listed: BTreeSet<String> = BTreeSet::new();
    for chain in chains.values_mut() {
        chain.sort_by(|a, b| a.doc.digest_end_time.cmp(&b.doc.digest_end_time));
        for i in 0..chain.len() {
            let d = &chain[i];
            let mut problems = Vec::new();
            if d.doc.digest_s3_object != d.object || d.doc.digest_s3_bucket != bucket {
                problems.push(format!(
                    "Digest file {}\tINVALID: it names itself {}/{} (moved or copied)",
                    d.object, d.doc.digest_s3_bucket, d.doc.digest_s3_object
                ));
            }
            match (&d.signature, keys.get(&d.doc.digest_public_key_fingerprint)) {
                (None, _) => problems.push(format!("Digest file {}\tINVALID: signature metadata not found", d.object)),
                (_, None) => problems.push(format!(
                    "Digest file {}\tINVALID: public key {} not found",
                    d.object, d.doc.digest_public_key_fingerprint
                )),
                (Some(sig), Some(der)) => {
                    let to_sign = digest::string_to_sign(
                        &d.doc.digest_end_time,
                        &d.doc.digest_s3_bucket,
                        &d.doc.digest_s3_object,
                        &d.content,
                        d.doc.previous_digest_signature.as_deref(),
                    );
                    if !digest::verify_hex(der, to_sign.as_bytes(), sig) {
                        problems.push(format!(
                            "Digest file {}\tINVALID: signature verification failed (changed)",
                            d.object
                        ));
                    }
                }
            }
            // The chain: this digest must name the previous one, by hash and signature.
            match (&d.doc.previous_digest_s3_object, i.checked_sub(1).map(|j| &chain[j])) {
                (Some(prev_obj), Some(prev)) if prev_obj == &prev.object => {
                    if d.doc.previous_digest_hash_value.as_deref() != Some(digest::sha256_hex(&prev.content).as_str()) {
                        problems.push(format!(
                            "Digest file {}\tINVALID: hash value doesn't match its successor's (changed)",
                            prev.object
                        ));
                    }
                    if d.doc.previous_digest_signature != prev.signature {
                        problems.push(format!(
                            "Digest file {}\tINVALID: signature doesn't match its successor's (changed)",
                            prev.object
                        ));
                    }
                }
                (Some(prev_obj), _) if !existing.contains(prev_obj.as_str()) => {
                    problems.push(format!("Digest file {prev_obj}\tINVALID: not found (deleted)"));
                }
                (Some(prev_obj), _) => {
                    problems.push(format!(
                        "Digest file {}\tINVALID: chain broken: it names {prev_obj} as its predecessor",
                        d.object
                    ));
                }
                (None, Some(prev)) => {
                    problems.push(format!(
                        "Digest file {}\tINVALID: chain broken: {} precedes it but is not named",
                        d.object, prev.object
                    ));
                }
                (None, None) => {}
            }
            let digest_ok = problems.is_empty();
            report.problems.extend(problems);
            if digest_ok {
                report.digests_valid += 1;
            }
            for lf in &d.doc.log_files {
                listed.insert(lf.s3_object.clone());
                report.logs_total += 1;
                let path = bucket_dir.join(&lf.s3_object);
                match fs::read(&path) {
                    Err(_) => report.problems.push(format!("Log file {}\tINVALID: not found (deleted)", lf.s3_object)),
                    Ok(gz) => match digest::gunzip(&gz) {
                        Ok(c) if digest::sha256_hex(&c) == lf.hash_value => report.logs_valid += 1,
                        _ => report
                            .problems
                            .push(format!("Log file {}\tINVALID: hash value doesn't match (changed)", lf.s3_object)),
                    },
                }
            }
        }
    }
    for f in files.iter().filter(|f| is_log(f) && !listed.contains(f.as_str())) {
        report.logs_total += 1;
        report.problems.push(format!("Log file {f}\tINVALID: not listed in any digest file (added)"));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rampart_store::{transact, Sealer, SqliteStore, Store, StoreError, TransactionExt};

    use super::*;
    use crate::audit::AuditLog;
    use crate::delivery::{Delivery, TrailDoc, TRAILS_TABLE};
    use crate::record::test_record;

    const ACCT: &str = "123456789012";

    fn call(log: &AuditLog, name: &str) {
        log.submit(test_record(ACCT, name)).wait().unwrap();
    }

    /// A trail with validation, three deliveries (three digests, three log files).
    fn delivered() -> (tempfile::TempDir, PathBuf, Keys) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
        let log = AuditLog::start(store.clone()).unwrap();
        let t = TrailDoc {
            name: "main".into(),
            account: ACCT.into(),
            home_region: "us-east-1".into(),
            bucket: "audit-bucket".into(),
            include_global: true,
            validation: true,
            logging: true,
            ..Default::default()
        };
        transact(store.as_ref(), |tx| -> Result<(), StoreError> { tx.put_json(TRAILS_TABLE, "123456789012/main", &t) })
            .unwrap();
        let delivery =
            Delivery::new(store.clone(), Arc::new(Sealer::new(&Sealer::generate_key())), Some(dir.path().into()));
        for round in 0..3 {
            call(&log, &format!("CreateUser{round}"));
            call(&log, "GetUser");
            delivery.deliver("123456789012/main").unwrap();
        }
        // Nothing new: no empty files.
        delivery.deliver("123456789012/main").unwrap();
        let bucket = dir.path().join("audit-bucket");
        let keys = published_keys(&bucket).unwrap();
        (dir, bucket, keys)
    }

    fn files(bucket: &Path, kind: &str) -> Vec<String> {
        let mut all = Vec::new();
        walk(bucket, bucket, &mut all).unwrap();
        let mut v: Vec<String> =
            all.into_iter().filter(|f| f.contains(&format!("/{kind}/")) && f.ends_with(".json.gz")).collect();
        v.sort();
        v
    }

    #[test]
    fn untouched_trail_verifies() {
        let (_d, bucket, keys) = delivered();
        let r = verify(&bucket, &keys).unwrap();
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!((r.digests_total, r.digests_valid, r.logs_total, r.logs_valid), (3, 3, 3, 3));
        // Log files hold the records.
        let log = &files(&bucket, "CloudTrail")[0];
        let v: serde_json::Value =
            serde_json::from_slice(&digest::gunzip(&fs::read(bucket.join(log)).unwrap()).unwrap()).unwrap();
        assert_eq!(v["Records"].as_array().unwrap().len(), 2);
        // Keys are in AWS's layout.
        assert!(log.starts_with("AWSLogs/123456789012/CloudTrail/us-east-1/"), "{log}");
        assert!(log.rsplit('/').next().unwrap().starts_with("123456789012_CloudTrail_us-east-1_"));
    }

    #[test]
    fn changed_log_file_is_named() {
        let (_d, bucket, keys) = delivered();
        let victim = files(&bucket, "CloudTrail")[1].clone();
        fs::write(bucket.join(&victim), digest::gzip(b"{\"Records\":[]}").unwrap()).unwrap();
        let r = verify(&bucket, &keys).unwrap();
        assert!(!r.ok());
        assert!(r.problems.iter().any(|p| p.contains(&victim) && p.contains("changed")), "{:?}", r.problems);
    }

    #[test]
    fn deleted_and_inserted_log_files_are_named() {
        let (_d, bucket, keys) = delivered();
        let victim = files(&bucket, "CloudTrail")[0].clone();
        let inserted = victim.replace(".json.gz", "X.json.gz");
        fs::copy(bucket.join(&victim), bucket.join(&inserted)).unwrap();
        fs::remove_file(bucket.join(&victim)).unwrap();
        let r = verify(&bucket, &keys).unwrap();
        assert!(r.problems.iter().any(|p| p.contains(&victim) && p.contains("deleted")), "{:?}", r.problems);
        assert!(r.problems.iter().any(|p| p.contains(&inserted) && p.contains("added")), "{:?}", r.problems);
    }

    #[test]
    fn changed_or_deleted_digest_breaks_the_chain() {
        let (_d, bucket, keys) = delivered();
        let digests = files(&bucket, "CloudTrail-Digest");
        // Re-written digest content (e.g. a log file's hash swapped): signature fails.
        let path = bucket.join(&digests[1]);
        let mut doc: DigestFile = serde_json::from_slice(&digest::gunzip(&fs::read(&path).unwrap()).unwrap()).unwrap();
        doc.log_files[0].hash_value = "0".repeat(64);
        fs::write(&path, digest::gzip(&serde_json::to_vec(&doc).unwrap()).unwrap()).unwrap();
        let r = verify(&bucket, &keys).unwrap();
        assert!(r.problems.iter().any(|p| p.contains(&digests[1])), "{:?}", r.problems);

        let (_d, bucket, keys) = delivered();
        let digests = files(&bucket, "CloudTrail-Digest");
        fs::remove_file(bucket.join(&digests[0])).unwrap();
        let r = verify(&bucket, &keys).unwrap();
        assert!(r.problems.iter().any(|p| p.contains(&digests[0]) && p.contains("deleted")), "{:?}", r.problems);
    }

    #[test]
    fn a_foreign_key_is_rejected() {
        let (_d, bucket, _) = delivered();
        let other = crate::digest::test_key();
        let keys: Keys = [(crate::digest::fingerprint(other.public_der()), other.public_der().to_vec())].into();
        let r = verify(&bucket, &keys).unwrap();
        assert_eq!(r.digests_valid, 0);
    }

    /// Delivered files and the directories delivery creates are the owner's alone, whatever the
    /// process umask lets through (the trail directory may live outside the 0700 data directory).
    #[cfg(unix)]
    #[test]
    fn delivered_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, _bucket, _keys) = delivered();
        fn check(p: &Path, found: &mut (usize, usize)) {
            for e in fs::read_dir(p).unwrap() {
                let e = e.unwrap();
                let path = e.path();
                let mode = e.metadata().unwrap().permissions().mode() & 0o777;
                if e.file_type().unwrap().is_dir() {
                    assert_eq!(mode, 0o700, "{}", path.display());
                    found.0 += 1;
                    check(&path, found);
                } else {
                    assert_eq!(mode, 0o600, "{}", path.display());
                    found.1 += 1;
                }
            }
        }
        let mut found = (0, 0);
        check(dir.path(), &mut found);
        // public-keys/, the bucket's AWSLogs tree; three logs, three digests, one public key.
        assert!(found.0 > 5 && found.1 >= 7, "{found:?}");
    }
}
