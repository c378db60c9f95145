//! `rampart backup --data-dir DIR --to DEST`: an online, consistent copy of a SQLite data directory.
//!
//! The store is copied with SQLite's `VACUUM INTO` on a connection of its own: one read
//! transaction, so the copy is the store as of one instant, while the server keeps serving (WAL
//! readers do not block the writer, nor it them). `account.json` and the master key come along
//! (mode 0600). Everything is written into a hidden directory beside `DEST`, synced, then renamed
//! to `DEST`: a backup that did not finish never looks like one.
//!
//! Restore: start a server on the copy (`rampart serve --data-dir DEST`), or stop the server and
//! put the copy's files in place of its data directory's (docs/operations.md#backups).

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::bootstrap::StartupError;

/// What a backup wrote.
#[derive(Debug)]
pub struct BackupReport {
    pub dest: PathBuf,
    /// Size of the copied store, bytes.
    pub store_bytes: u64,
    /// The files written, in `dest`.
    pub files: Vec<&'static str>,
}

/// Copy the data directory `dir` (its store, `account.json` and the master key: `master_key_file`
/// or `dir/master.key`) into the new directory `dest`.
pub fn backup_data_dir(dir: &Path, dest: &Path, master_key_file: Option<&Path>) -> Result<BackupReport, StartupError> {
    let db = dir.join("rampart.sqlite");
    if !db.is_file() {
        return Err(StartupError::Config(format!(
            "{} not found: --data-dir must be a rampart data directory with the SQLite store (a PostgreSQL \
             store is backed up with pg_dump; see docs/operations.md#backups)",
            db.display()
        )));
    }
    let key = master_key_file.map_or_else(|| dir.join("master.key"), Path::to_path_buf);
    if !key.is_file() {
        return Err(StartupError::Config(format!(
            "{} not found: give --master-key-file when the key is kept outside the data directory",
            key.display()
        )));
    }
    if dest.exists() {
        return Err(StartupError::Config(format!("{} already exists; back up into a new directory", dest.display())));
    }
    let name = dest.file_name().ok_or_else(|| StartupError::Config("--to must name a directory".into()))?;
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut partial_name = std::ffi::OsString::from(".");
    partial_name.push(name);
    partial_name.push(format!(".partial-{}", std::process::id()));
    let partial = parent.join(partial_name);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StartupError::DataDir { path, source }
    };
    fs::DirBuilder::new().mode(0o700).create(&partial).map_err(io(&partial))?;
    let result = (|| {
        let store_bytes = copy_store(&db, &partial.join("rampart.sqlite"))?;
        let mut files = vec!["rampart.sqlite"];
        let account = dir.join("account.json");
        if account.is_file() {
            copy_private(&account, &partial.join("account.json"))?;
            files.push("account.json");
        }
        copy_private(&key, &partial.join("master.key"))?;
        files.push("master.key");
        fs::File::open(&partial).and_then(|d| d.sync_all()).map_err(io(&partial))?;
        fs::rename(&partial, dest).map_err(io(dest))?;
        fs::File::open(parent).and_then(|d| d.sync_all()).map_err(io(parent))?;
        Ok(BackupReport { dest: dest.to_path_buf(), store_bytes, files })
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&partial);
    }
    result
}

/// `VACUUM INTO` from a connection of our own to the live store; the copy is synced and made 0600.
fn copy_store(db: &Path, to: &Path) -> Result<u64, StartupError> {
    let sql = |e: rusqlite::Error| StartupError::Store(rampart_store::StoreError::Backend(e.to_string()));
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(sql)?;
    // The server's writer holds the lock only for a commit; wait for it rather than fail.
    conn.busy_timeout(Duration::from_secs(30)).map_err(sql)?;
    let target = to.to_str().ok_or_else(|| StartupError::Config(format!("{} is not UTF-8", to.display())))?;
    conn.execute("VACUUM INTO ?1", [target]).map_err(sql)?;
    drop(conn);
    let io = |source| StartupError::DataDir { path: to.to_path_buf(), source };
    let f = fs::OpenOptions::new().read(true).write(true).open(to).map_err(io)?;
    f.set_permissions(fs::Permissions::from_mode(0o600)).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(f.metadata().map_err(io)?.len())
}

/// Copy a small private file (the account identity, the master key): mode 0600, synced.
fn copy_private(from: &Path, to: &Path) -> Result<(), StartupError> {
    use std::io::Write;
    let bytes = Zeroizing::new(fs::read(from).map_err(|source| StartupError::DataDir { path: from.into(), source })?);
    let io = |source| StartupError::DataDir { path: to.to_path_buf(), source };
    let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(to).map_err(io)?;
    f.set_permissions(fs::Permissions::from_mode(0o600)).map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_store::{transact, Read, ReadExt, SqliteStore, TransactionExt};

    #[test]
    fn copies_a_consistent_store_while_a_writer_commits() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir(&data).unwrap();
        fs::write(data.join("master.key"), [7u8; 32]).unwrap();
        fs::write(data.join("account.json"), b"{}").unwrap();
        let store = std::sync::Arc::new(SqliteStore::open(&data.join("rampart.sqlite")).unwrap());
        // A writer that keeps two keys equal in every transaction, committing while the backup runs.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 50 {
                    n += 1;
                    transact(store.as_ref(), |tx| -> Result<(), rampart_store::StoreError> {
                        tx.put_json("t", "a", &n)?;
                        tx.put_json("t", &format!("row{n:06}"), &n)?;
                        tx.put_json("t", "b", &n)
                    })
                    .unwrap();
                }
                n
            })
        };
        let dest = dir.path().join("backup");
        let report = backup_data_dir(&data, &dest, None).unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let written = writer.join().unwrap();
        assert_eq!(report.files, ["rampart.sqlite", "account.json", "master.key"]);
        for f in ["master.key", "account.json", "rampart.sqlite"] {
            let mode = fs::metadata(dest.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
        assert_eq!(fs::read(dest.join("master.key")).unwrap(), [7u8; 32]);
        let copy = SqliteStore::open(&dest.join("rampart.sqlite")).unwrap();
        let a: u64 = copy.get_json("t", "a").unwrap().unwrap_or(0);
        let b: u64 = copy.get_json("t", "b").unwrap().unwrap_or(0);
        assert_eq!(a, b, "one transaction is in the copy whole or not at all");
        assert_eq!(copy.scan("t", "row", None, 0).unwrap().len() as u64, a, "every earlier commit is in the copy");
        assert!(a <= written);
        // No second backup over the first; nothing left behind by the refusal.
        assert!(matches!(backup_data_dir(&data, &dest, None), Err(StartupError::Config(_))));
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers.len(), 2, "{leftovers:?}");
        drop(store);
    }

    #[test]
    fn refuses_a_directory_without_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let e = backup_data_dir(dir.path(), &dir.path().join("b"), None).unwrap_err();
        assert!(e.to_string().contains("pg_dump"), "{e}");
    }
}
