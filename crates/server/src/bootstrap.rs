//! Start-up state: the data directory, account identity, root credentials and the master key.
//!
//! Layout of `--data-dir`:
//! * `rampart.sqlite` (+ WAL): the store.
//! * `account.json` (mode 0600): account ID and root credentials made at first start, the root
//!   secret sealed with the master key (files from before that kept it in plaintext are read and
//!   rewritten sealed at start).
//! * `master.key` (mode 0600): the 256-bit key that seals secrets stored in the database.
//!
//! With `--store postgres://…` the store is PostgreSQL and the data directory holds only
//! `master.key` (or `--master-key-file` names it): the account identity lives in the database
//! (table `_rampart`, the root secret sealed), so every node sharing the database agrees on it.
//! Every node needs the same master key; a node with another key refuses to start.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rampart_store::{transact, PgStore, ReadExt, Sealer, SqliteStore, Store, TransactionExt};
use rand::Rng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// How the server is configured (flags / `RAMPART_*` env, resolved by the CLI).
#[derive(Clone, Debug, Default)]
pub struct ServerConfig {
    pub listen: String,
    /// `None` with `ephemeral` = everything in memory.
    pub data_dir: Option<PathBuf>,
    pub ephemeral: bool,
    pub account_id: Option<String>,
    pub root_access_key_id: Option<String>,
    pub root_secret_access_key: Option<String>,
    /// Another emulator's conventions to follow (`--compat`).
    pub compat: Option<crate::compat::CompatMode>,
    /// `--compat moto`: moto's INITIAL_NO_AUTH_ACTION_COUNT (`None` = "inf", never enforce).
    pub initial_no_auth_action_count: Option<u64>,
    /// `postgres://…` to keep the store in PostgreSQL (several nodes may share it); `None` = the
    /// embedded SQLite store in the data directory.
    pub store: Option<String>,
    /// The master key file; default `master.key` in the data directory (created when missing).
    pub master_key_file: Option<PathBuf>,
    /// The master key itself (`RAMPART_MASTER_KEY`), instead of a file; nothing is written.
    pub master_key: Option<InlineMasterKey>,
    /// Where CloudTrail trails deliver (`<dir>/<S3BucketName>/AWSLogs/…`). Default:
    /// `<data-dir>/trails`; an ephemeral server without it does not deliver trail files.
    pub trail_dir: Option<PathBuf>,
    /// Seconds between trail deliveries (default 300, as CloudTrail's ~5 minutes).
    pub trail_delivery_interval_secs: Option<u64>,
    /// Threads serving connections (`--threads`); default one per CPU.
    pub threads: Option<usize>,
    /// Connection timeouts and the connection cap (defaults: [`crate::conn::ConnectionLimits`]).
    pub connections: crate::conn::ConnectionLimits,
    /// `--dev`: LocalStack's account-number access keys (a 12-digit key ID is the root of that
    /// account, secret `test`). Never on in the default mode.
    pub dev_account_keys: bool,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("data directory file {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(transparent)]
    Store(#[from] rampart_store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("server error: {0}")]
    Serve(String),
}

/// The account's identity (`account.json` keeps it as a [`StoredAccount`], the secret sealed).
#[derive(Clone, Serialize, Deserialize)]
pub struct AccountIdentity {
    pub account_id: String,
    pub root_access_key_id: String,
    pub root_secret_access_key: String,
}

impl std::fmt::Debug for AccountIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountIdentity")
            .field("account_id", &self.account_id)
            .field("root_access_key_id", &self.root_access_key_id)
            .finish_non_exhaustive()
    }
}

/// Everything start-up produced.
pub struct Bootstrapped {
    pub store: Arc<dyn Store>,
    pub sealer: Arc<Sealer>,
    pub identity: AccountIdentity,
    /// `true` when the root credentials were generated now (print them once).
    pub generated_credentials: bool,
    /// Where trails deliver, if anywhere.
    pub trail_dir: Option<PathBuf>,
    pub trail_delivery_interval: std::time::Duration,
    /// `--dev`: account-number access keys act as those accounts' roots.
    pub dev_account_keys: bool,
    /// The URL clients reach this server at (outbound federation issuers live under it).
    pub public_url: String,
}

/// The URL clients reach the server at: `RAMPART_PUBLIC_URL`, else `http://` and the listen
/// address (an unspecified address, `0.0.0.0` or `[::]`, as loopback).
pub fn public_url(listen: &str) -> String {
    if let Ok(url) = std::env::var("RAMPART_PUBLIC_URL") {
        if !url.is_empty() {
            return url.trim_end_matches('/').to_string();
        }
    }
    let host_port = match listen.parse::<std::net::SocketAddr>() {
        Ok(a) if a.ip().is_unspecified() && a.is_ipv4() => format!("127.0.0.1:{}", a.port()),
        Ok(a) if a.ip().is_unspecified() => format!("[::1]:{}", a.port()),
        _ => listen.to_string(),
    };
    format!("http://{host_port}")
}

/// The identity to run with, given the one `place` holds: the configured account must match it.
/// Returns it with whether the credentials were generated now and whether `place` must be rewritten.
fn reconcile_identity(
    config: &ServerConfig,
    stored: Option<AccountIdentity>,
    place: &str,
) -> Result<(AccountIdentity, bool, bool), StartupError> {
    if let (Some(s), Some(id)) = (&stored, &config.account_id) {
        if &s.account_id != id {
            return Err(StartupError::Config(format!(
                "RAMPART_ACCOUNT_ID={id} but the {place} belongs to account {}",
                s.account_id
            )));
        }
    }
    let (identity, generated) = resolve_identity(config, stored.clone());
    let changed = stored.as_ref().is_none_or(|s| {
        s.root_access_key_id != identity.root_access_key_id
            || s.root_secret_access_key != identity.root_secret_access_key
    });
    Ok((identity, generated, changed))
}

/// Validate an account ID: exactly 12 digits.
pub fn valid_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// Open or create the data directory (or the in-memory equivalent) and the store.
pub fn bootstrap(config: &ServerConfig) -> Result<Bootstrapped, StartupError> {
    if let Some(id) = &config.account_id {
        if !valid_account_id(id) {
            return Err(StartupError::Config(format!("RAMPART_ACCOUNT_ID must be 12 digits, got {id:?}")));
        }
    }
    match (config.root_access_key_id.is_some(), config.root_secret_access_key.is_some()) {
        (true, false) | (false, true) => {
            return Err(StartupError::Config(
                "set both RAMPART_ROOT_ACCESS_KEY_ID and RAMPART_ROOT_SECRET_ACCESS_KEY, or neither".into(),
            ))
        }
        _ => {}
    }
    if let Some(url) = &config.store {
        if !is_postgres_url(url) {
            return Err(StartupError::Config(
                "--store must be a postgres:// or postgresql:// URL (omit it for the embedded SQLite store)".into(),
            ));
        }
        if config.ephemeral {
            return Err(StartupError::Config(
                "--ephemeral keeps everything in memory; it cannot be used with --store".into(),
            ));
        }
        return bootstrap_postgres(config, url);
    }
    let interval = std::time::Duration::from_secs(config.trail_delivery_interval_secs.unwrap_or(300).max(1));
    match (&config.data_dir, config.ephemeral) {
        (_, true) => {
            let (identity, generated) = resolve_identity(config, None);
            Ok(Bootstrapped {
                dev_account_keys: config.dev_account_keys,
                public_url: public_url(&config.listen),
                store: Arc::new(rampart_store::MemStore::new()),
                sealer: Arc::new(Sealer::new(&Sealer::generate_key())),
                identity,
                generated_credentials: generated,
                trail_dir: config.trail_dir.clone(),
                trail_delivery_interval: interval,
            })
        }
        (Some(dir), false) => {
            let mut boot = bootstrap_dir(config, dir)?;
            boot.trail_dir = Some(config.trail_dir.clone().unwrap_or_else(|| dir.join("trails")));
            boot.trail_delivery_interval = interval;
            Ok(boot)
        }
        (None, false) => Err(StartupError::Config("either --data-dir or --ephemeral is required".into())),
    }
}

fn bootstrap_dir(config: &ServerConfig, dir: &Path) -> Result<Bootstrapped, StartupError> {
    let io = |source| StartupError::DataDir { path: dir.to_path_buf(), source };
    fs::create_dir_all(dir).map_err(io)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io)?;

    let (master_key, _) = resolve_master_key(config, Some(dir))?;

    let sealer = Sealer::new(&master_key);
    let account_path = dir.join("account.json");
    let (stored, plaintext) = match read_account_file(&account_path, &sealer)? {
        Some((identity, plaintext)) => (Some(identity), plaintext),
        None => (None, false),
    };
    let (identity, generated, changed) = reconcile_identity(config, stored, "data directory")?;
    // A file from before the secret was sealed is rewritten sealed now.
    if changed || plaintext {
        let json = serde_json::to_vec_pretty(&StoredAccount::seal(&identity, &sealer)?)
            .map_err(|e| StartupError::Config(e.to_string()))?;
        write_private(&account_path, &json).map_err(io)?;
    }

    let store = SqliteStore::open(&dir.join("rampart.sqlite"))?;
    Ok(Bootstrapped {
        dev_account_keys: config.dev_account_keys,
        public_url: public_url(&config.listen),
        store: Arc::new(store),
        sealer: Arc::new(sealer),
        identity,
        generated_credentials: generated,
        trail_dir: None,
        trail_delivery_interval: std::time::Duration::from_secs(300),
    })
}

/// `postgres://` or `postgresql://`.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A master key given inline: 64 hex digits or the base64 of 32 bytes. Never printed.
#[derive(Clone)]
pub struct InlineMasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for InlineMasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InlineMasterKey(<redacted>)")
    }
}

impl std::str::FromStr for InlineMasterKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        use base64::Engine as _;
        let s = s.trim();
        let bytes = Zeroizing::new(if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(s).map_err(|_| "not hex".to_string())?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|_| "RAMPART_MASTER_KEY must be 64 hex digits or the base64 of 32 bytes".to_string())?
        });
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            format!(
                "RAMPART_MASTER_KEY must hold 32 bytes (64 hex digits or 44 base64 characters), not {}",
                bytes.len()
            )
        })?;
        Ok(InlineMasterKey(Zeroizing::new(key)))
    }
}

/// The master key and where it came from (for messages): `RAMPART_MASTER_KEY`, else
/// `--master-key-file`, else `master.key` in `dir` (made when missing).
fn resolve_master_key(
    config: &ServerConfig,
    dir: Option<&Path>,
) -> Result<(Zeroizing<[u8; 32]>, String), StartupError> {
    match (&config.master_key, &config.master_key_file, dir) {
        (Some(_), Some(_), _) => {
            Err(StartupError::Config("give the master key once: RAMPART_MASTER_KEY or --master-key-file".into()))
        }
        (Some(k), None, _) => Ok((k.0.clone(), "from RAMPART_MASTER_KEY".into())),
        (None, Some(p), _) => Ok((load_master_key(p, true)?, p.display().to_string())),
        (None, None, Some(dir)) => {
            let p = dir.join("master.key");
            Ok((load_master_key(&p, true)?, p.display().to_string()))
        }
        (None, None, None) => Err(StartupError::Config(
            "--store needs the master key: give RAMPART_MASTER_KEY, --master-key-file or --data-dir".into(),
        )),
    }
}

/// Read the 32-byte master key at `path`; when missing and `create`, make one (mode 0600).
fn load_master_key(path: &Path, create: bool) -> Result<Zeroizing<[u8; 32]>, StartupError> {
    let io = |source| StartupError::DataDir { path: path.to_path_buf(), source };
    match fs::read(path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            let k: [u8; 32] = bytes.as_slice().try_into().map_err(|_| StartupError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("expected 32 bytes, found {}", bytes.len()),
            })?;
            Ok(Zeroizing::new(k))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                if !parent.exists() {
                    fs::create_dir_all(parent).map_err(io)?;
                    fs::set_permissions(parent, fs::Permissions::from_mode(0o700)).map_err(io)?;
                }
            }
            let k = Sealer::generate_key();
            write_private(path, k.as_ref()).map_err(io)?;
            Ok(k)
        }
        Err(e) => Err(io(e)),
    }
}

/// The store's own table in a shared database: the account identity and the master key check.
const META_TABLE: &str = "_rampart";
const META_ACCOUNT: &str = "account";
const META_KEY_CHECK: &str = "master_key_check";
const KEY_CHECK_AAD: &[u8] = b"rampart/master-key-check";

/// The account identity as kept in a shared database: the root secret sealed.
#[derive(Clone, Serialize, Deserialize)]
struct StoredAccount {
    account_id: String,
    root_access_key_id: String,
    sealed_root_secret: String,
}

fn root_secret_aad(key_id: &str) -> Vec<u8> {
    format!("rampart/root-secret/{key_id}").into_bytes()
}

impl StoredAccount {
    fn seal(identity: &AccountIdentity, sealer: &Sealer) -> Result<Self, StartupError> {
        let sealed = sealer
            .seal(identity.root_secret_access_key.as_bytes(), &root_secret_aad(&identity.root_access_key_id))
            .map_err(|e| StartupError::Config(format!("cannot seal the root secret: {e}")))?;
        Ok(StoredAccount {
            account_id: identity.account_id.clone(),
            root_access_key_id: identity.root_access_key_id.clone(),
            sealed_root_secret: hex::encode(sealed),
        })
    }

    fn open(&self, sealer: &Sealer) -> Option<AccountIdentity> {
        let sealed = hex::decode(&self.sealed_root_secret).ok()?;
        let secret = sealer.open(&sealed, &root_secret_aad(&self.root_access_key_id)).ok()?;
        Some(AccountIdentity {
            account_id: self.account_id.clone(),
            root_access_key_id: self.root_access_key_id.clone(),
            root_secret_access_key: String::from_utf8(secret.to_vec()).ok()?,
        })
    }
}

/// `account.json` as written now (the secret sealed) or before (the secret in plaintext).
#[derive(Deserialize)]
#[serde(untagged)]
enum AccountFile {
    Sealed(StoredAccount),
    Plaintext(AccountIdentity),
}

/// The identity in a data directory's `account.json`, if there is one, and whether the file still
/// keeps the secret in plaintext (to be rewritten sealed).
fn read_account_file(path: &Path, sealer: &Sealer) -> Result<Option<(AccountIdentity, bool)>, StartupError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StartupError::DataDir { path: path.to_path_buf(), source }),
    };
    let corrupt = |reason: String| StartupError::Corrupt { path: path.to_path_buf(), reason };
    match serde_json::from_slice::<AccountFile>(&bytes).map_err(|e| corrupt(e.to_string()))? {
        AccountFile::Sealed(stored) => {
            let identity = stored.open(sealer).ok_or_else(|| {
                StartupError::Config(format!(
                    "the root secret in {} does not open with this master key (give the master key this \
                     data directory was made with)",
                    path.display()
                ))
            })?;
            Ok(Some((identity, false)))
        }
        AccountFile::Plaintext(identity) => Ok(Some((identity, true))),
    }
}

/// Check that `sealer` holds the database's master key, recording it for a fresh database.
fn check_master_key(
    tx: &mut dyn rampart_store::Transaction,
    sealer: &Sealer,
    key_source: &str,
) -> Result<(), StartupError> {
    match tx.get(META_TABLE, META_KEY_CHECK)? {
        Some(check) => sealer.open(&check, KEY_CHECK_AAD).map(|_| ()).map_err(|_| {
            StartupError::Config(format!(
                "the master key {key_source} is not the one this database's secrets are sealed with: give \
                 every node the same master key (copy master.key from the first node, or use \
                 --master-key-file or RAMPART_MASTER_KEY)"
            ))
        }),
        None => {
            let check = sealer
                .seal(b"rampart", KEY_CHECK_AAD)
                .map_err(|e| StartupError::Config(format!("cannot seal the master key check: {e}")))?;
            Ok(tx.put(META_TABLE, META_KEY_CHECK, &check)?)
        }
    }
}

/// Open the PostgreSQL store and agree on the account identity with the other nodes.
fn bootstrap_postgres(config: &ServerConfig, url: &str) -> Result<Bootstrapped, StartupError> {
    let (master_key, key_source) = resolve_master_key(config, config.data_dir.as_deref())?;
    let sealer = Sealer::new(&master_key);
    let store = PgStore::open(url)?;
    let (identity, generated) = transact(&store, |tx| -> Result<_, StartupError> {
        check_master_key(tx, &sealer, &key_source)?;
        let stored = match tx.get_json::<StoredAccount>(META_TABLE, META_ACCOUNT)? {
            None => None,
            Some(s) => Some(s.open(&sealer).ok_or_else(|| {
                StartupError::Config("the account identity in the database does not open with this master key".into())
            })?),
        };
        let (identity, generated, changed) = reconcile_identity(config, stored, "database")?;
        if changed {
            tx.put_json(META_TABLE, META_ACCOUNT, &StoredAccount::seal(&identity, &sealer)?)?;
        }
        Ok((identity, generated))
    })?;
    Ok(Bootstrapped {
        dev_account_keys: config.dev_account_keys,
        public_url: public_url(&config.listen),
        store: Arc::new(store),
        sealer: Arc::new(sealer),
        identity,
        generated_credentials: generated,
        trail_dir: config.trail_dir.clone().or_else(|| config.data_dir.as_ref().map(|d| d.join("trails"))),
        trail_delivery_interval: std::time::Duration::from_secs(
            config.trail_delivery_interval_secs.unwrap_or(300).max(1),
        ),
    })
}

/// What `rampart store migrate` did.
#[derive(Debug)]
pub struct MigrateReport {
    pub rows: u64,
    pub account_id: String,
    pub master_key: PathBuf,
}

/// `rampart store migrate --from DIR --to postgres://…`: copy a stopped server's SQLite data
/// directory into an empty PostgreSQL store, in one transaction, with the account identity.
/// The nodes then run with `--store URL` and the same master key.
pub fn migrate_to_postgres(from: &Path, to: &str) -> Result<MigrateReport, StartupError> {
    if !is_postgres_url(to) {
        return Err(StartupError::Config("--to must be a postgres:// or postgresql:// URL".into()));
    }
    let db_path = from.join("rampart.sqlite");
    let account_path = from.join("account.json");
    let key_path = from.join("master.key");
    for p in [&db_path, &account_path, &key_path] {
        if !p.exists() {
            return Err(StartupError::Config(format!(
                "{} not found: --from must be a rampart data directory",
                p.display()
            )));
        }
    }
    let master_key = load_master_key(&key_path, false)?;
    let sealer = Sealer::new(&master_key);
    let (identity, _) = read_account_file(&account_path, &sealer)?.ok_or_else(|| {
        StartupError::Config(format!("{} not found: --from must be a rampart data directory", account_path.display()))
    })?;
    let source = SqliteStore::open(&db_path)?;
    let target = PgStore::open(to)?;
    if !target.is_empty()? {
        return Err(StartupError::Config(
            "the target store already holds data; migrate into an empty database or schema".into(),
        ));
    }
    let rows = transact(&target, |tx| -> Result<u64, StartupError> {
        let rows = source.export(&mut |t, k, v| tx.put(t, k, v))?;
        check_master_key(tx, &sealer, &key_path.display().to_string())?;
        tx.put_json(META_TABLE, META_ACCOUNT, &StoredAccount::seal(&identity, &sealer)?)?;
        Ok(rows)
    })?;
    Ok(MigrateReport { rows, account_id: identity.account_id, master_key: key_path })
}

/// Environment wins; then what the data dir kept; then fresh values.
fn resolve_identity(config: &ServerConfig, stored: Option<AccountIdentity>) -> (AccountIdentity, bool) {
    let account_id = config
        .account_id
        .clone()
        .or_else(|| stored.as_ref().map(|s| s.account_id.clone()))
        .unwrap_or_else(generate_account_id);
    if let (Some(k), Some(s)) = (&config.root_access_key_id, &config.root_secret_access_key) {
        return (
            AccountIdentity { account_id, root_access_key_id: k.clone(), root_secret_access_key: s.clone() },
            false,
        );
    }
    match stored {
        Some(s) => (AccountIdentity { account_id, ..s }, false),
        None => (
            AccountIdentity {
                account_id,
                root_access_key_id: generate_key_id("AKIA"),
                root_secret_access_key: generate_secret(),
            },
            true,
        ),
    }
}

/// Write a file readable only by the owner, durably (write to a temp file, fsync, rename).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// A 12-digit account ID not starting with 0.
pub fn generate_account_id() -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(12);
    s.push(char::from(b'1' + rng.random_range(0..9u8)));
    for _ in 0..11 {
        s.push(char::from(b'0' + rng.random_range(0..10u8)));
    }
    s
}

/// An access key ID like AWS's: prefix + 16 characters of [A-Z2-7].
pub fn generate_key_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let mut s = String::from(prefix);
    for _ in 0..16 {
        s.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    s
}

/// A 40-character secret access key (base64 alphabet, as AWS's).
pub fn generate_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..40).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_follows_the_listen_address() {
        if std::env::var("RAMPART_PUBLIC_URL").is_ok() {
            return; // set by whoever runs the tests: it wins, as documented
        }
        assert_eq!(public_url("127.0.0.1:4566"), "http://127.0.0.1:4566");
        assert_eq!(public_url("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(public_url("[::]:8080"), "http://[::1]:8080");
        assert_eq!(public_url("[::1]:9"), "http://[::1]:9");
        assert_eq!(public_url("localhost:4566"), "http://localhost:4566");
    }

    fn cfg(dir: &Path) -> ServerConfig {
        ServerConfig { data_dir: Some(dir.to_path_buf()), ..Default::default() }
    }

    #[test]
    fn first_start_generates_and_keeps_identity() {
        let dir = tempfile::tempdir().unwrap();
        let a = bootstrap(&cfg(dir.path())).unwrap();
        assert!(a.generated_credentials);
        assert!(valid_account_id(&a.identity.account_id));
        assert!(a.identity.root_access_key_id.starts_with("AKIA") && a.identity.root_access_key_id.len() == 20);
        assert_eq!(a.identity.root_secret_access_key.len(), 40);
        let mode = fs::metadata(dir.path().join("account.json")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mode = fs::metadata(dir.path().join("master.key")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let first = a.identity.clone();
        drop(a);
        let b = bootstrap(&cfg(dir.path())).unwrap();
        assert!(!b.generated_credentials);
        assert_eq!(b.identity.account_id, first.account_id);
        assert_eq!(b.identity.root_access_key_id, first.root_access_key_id);
        assert_eq!(b.identity.root_secret_access_key, first.root_secret_access_key);
    }

    /// The root secret is not on disk in plaintext: `account.json` keeps it sealed.
    #[test]
    fn account_file_does_not_hold_the_root_secret() {
        let dir = tempfile::tempdir().unwrap();
        let a = bootstrap(&cfg(dir.path())).unwrap();
        let file = fs::read_to_string(dir.path().join("account.json")).unwrap();
        assert!(!file.contains(&a.identity.root_secret_access_key), "{file}");
        assert!(file.contains(&a.identity.account_id) && file.contains(&a.identity.root_access_key_id));
        // Configured credentials too.
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.root_access_key_id = Some("AKIAEXAMPLE".into());
        c.root_secret_access_key = Some("configured-secret-value".into());
        bootstrap(&c).unwrap();
        let file = fs::read_to_string(dir.path().join("account.json")).unwrap();
        assert!(!file.contains("configured-secret-value"), "{file}");
    }

    /// A plaintext `account.json` from an older version is read, then rewritten sealed.
    #[test]
    fn plaintext_account_file_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let old = r#"{"account_id":"123456789012","root_access_key_id":"AKIAOLDFILE","root_secret_access_key":"old-plaintext-secret"}"#;
        fs::write(dir.path().join("account.json"), old).unwrap();
        let a = bootstrap(&cfg(dir.path())).unwrap();
        assert!(!a.generated_credentials);
        assert_eq!(a.identity.account_id, "123456789012");
        assert_eq!(a.identity.root_access_key_id, "AKIAOLDFILE");
        assert_eq!(a.identity.root_secret_access_key, "old-plaintext-secret");
        drop(a);
        let file = fs::read_to_string(dir.path().join("account.json")).unwrap();
        assert!(!file.contains("old-plaintext-secret"), "{file}");
        let mode = fs::metadata(dir.path().join("account.json")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = bootstrap(&cfg(dir.path())).unwrap();
        assert_eq!(b.identity.root_secret_access_key, "old-plaintext-secret");
    }

    /// A sealed `account.json` and another master key: refused, as a PostgreSQL node with another key is.
    #[test]
    fn account_file_under_another_master_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(bootstrap(&cfg(dir.path())).unwrap());
        fs::write(dir.path().join("master.key"), [9u8; 32]).unwrap();
        assert!(matches!(bootstrap(&cfg(dir.path())), Err(StartupError::Config(_))));
    }

    #[test]
    fn env_overrides_and_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.account_id = Some("123456789012".into());
        c.root_access_key_id = Some("AKIAEXAMPLE".into());
        c.root_secret_access_key = Some("secret".into());
        let a = bootstrap(&c).unwrap();
        assert!(!a.generated_credentials);
        assert_eq!(a.identity.account_id, "123456789012");
        drop(a);
        c.account_id = Some("999999999999".into());
        assert!(matches!(bootstrap(&c), Err(StartupError::Config(_))));
        c.account_id = Some("12ab".into());
        assert!(matches!(bootstrap(&c), Err(StartupError::Config(_))));
        let half = ServerConfig { ephemeral: true, root_access_key_id: Some("x".into()), ..Default::default() };
        assert!(matches!(bootstrap(&half), Err(StartupError::Config(_))));
    }

    #[test]
    fn corrupt_master_key_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("master.key"), b"short").unwrap();
        assert!(matches!(bootstrap(&cfg(dir.path())), Err(StartupError::Corrupt { .. })));
    }

    #[test]
    fn inline_master_key_is_parsed_and_never_written() {
        let hex_key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let k: InlineMasterKey = hex_key.parse().unwrap();
        let b64: InlineMasterKey = "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=".parse().unwrap();
        assert_eq!(*k.0, *b64.0, "hex and base64 of the same 32 bytes");
        assert_eq!(format!("{k:?}"), "InlineMasterKey(<redacted>)");
        for bad in ["", "00", "not a key", &hex_key[..62]] {
            assert!(bad.parse::<InlineMasterKey>().is_err(), "{bad:?}");
        }

        let dir = tempfile::tempdir().unwrap();
        let c = ServerConfig { master_key: Some(k.clone()), ..cfg(dir.path()) };
        let a = bootstrap(&c).unwrap();
        assert!(!dir.path().join("master.key").exists(), "an inline key is not written to disk");
        let sealed = a.sealer.seal(b"payload", b"aad").unwrap();
        drop(a);
        // The same key opens what it sealed; a different one does not.
        let again = bootstrap(&c).unwrap();
        assert_eq!(again.sealer.open(&sealed, b"aad").unwrap().as_slice(), b"payload");
        // Another key: not for this data directory (its root secret is sealed), nor for what it sealed.
        let other = ServerConfig { master_key: Some("11".repeat(32).parse().unwrap()), ..cfg(dir.path()) };
        assert!(matches!(bootstrap(&other), Err(StartupError::Config(_))));
        let elsewhere = tempfile::tempdir().unwrap();
        let other = ServerConfig { master_key: Some("11".repeat(32).parse().unwrap()), ..cfg(elsewhere.path()) };
        assert!(bootstrap(&other).unwrap().sealer.open(&sealed, b"aad").is_err());
        // Both an inline key and a file: refused.
        let both = ServerConfig { master_key_file: Some(dir.path().join("k")), ..c };
        assert!(matches!(bootstrap(&both), Err(StartupError::Config(_))));
    }
}
