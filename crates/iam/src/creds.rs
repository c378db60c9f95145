//! The credential store: access key ID → secret and principal, for SigV4 authentication.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rampart_protocol::AwsError;
use rampart_service::{Caller, CallerKind, Credential, CredentialStore, SecretString};
use rampart_store::Sealer;
use time::OffsetDateTime;

use crate::db::{Db, Lookup};
use crate::error::{IamError, Result};
use crate::model::{tables, AccessKeyRec, AccountRec, LastUsedRec, UserRec};
use crate::sts::session;
use crate::util::{from_hex, now, to_hex};

const MAX_CACHED: usize = 100_000;

/// Resolves IAM users' and account roots' access keys.
pub struct IamCredentials {
    db: Db,
    sealer: Arc<Sealer>,
    /// key ID → (account, generation it was read at, credential).
    cache: RwLock<HashMap<String, (String, u64, Cached)>>,
    /// key ID → (minute, service, region) last written, so `record_use` writes at most once a minute.
    last_used: Mutex<HashMap<String, (i64, String, String)>>,
    /// `--dev` (LocalStack's convention): an unknown access key ID of 12 digits is the root of
    /// that account, with the secret `test`. Off unless [`IamCredentials::enable_account_keys`].
    account_keys: AtomicBool,
}

/// The secret of an account-number access key under `--dev` (LocalStack's value).
pub const DEV_ACCOUNT_SECRET: &str = "test";

/// A cached credential: the secret and session token zeroized when evicted or replaced.
#[derive(Clone, Debug)]
struct Cached {
    secret_access_key: SecretString,
    session_token: Option<SecretString>,
    expires_at: Option<OffsetDateTime>,
    active: bool,
    caller: Caller,
}

impl Cached {
    fn new(c: Credential) -> Self {
        let Credential { secret_access_key, session_token, expires_at, active, caller } = c;
        Cached { secret_access_key, session_token, expires_at, active, caller }
    }

    /// The credential the pipeline checks a request against.
    fn credential(&self) -> Credential {
        Credential {
            secret_access_key: self.secret_access_key.clone(),
            session_token: self.session_token.clone(),
            expires_at: self.expires_at,
            active: self.active,
            caller: self.caller.clone(),
        }
    }
}

impl IamCredentials {
    pub fn new(db: Db, sealer: Arc<Sealer>) -> Self {
        IamCredentials {
            db,
            sealer,
            cache: RwLock::new(HashMap::new()),
            last_used: Mutex::new(HashMap::new()),
            account_keys: AtomicBool::new(false),
        }
    }

    /// `--dev`: let an access key ID that is a 12-digit account number act as that account's
    /// root (secret [`DEV_ACCOUNT_SECRET`]), so tests reach several accounts without
    /// Organizations. Never on in the default mode.
    pub fn enable_account_keys(&self) {
        self.account_keys.store(true, Ordering::Relaxed);
    }

    /// The root credential of the account an account-number key names (`--dev` only), the
    /// account registered on first use.
    fn account_key(&self, access_key_id: &str) -> Result<Option<Credential>> {
        if !self.account_keys.load(Ordering::Relaxed)
            || access_key_id.len() != 12
            || !access_key_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Ok(None);
        }
        if self.db.get::<AccountRec>(tables::ACCOUNTS, access_key_id)?.is_none() {
            self.db.write(access_key_id, |tx| {
                if tx.get::<AccountRec>(tables::ACCOUNTS, access_key_id)?.is_none() {
                    let rec =
                        AccountRec { created: now(), bootstrap_key: String::new(), root_keys: Vec::new(), alias: None };
                    tx.put(tables::ACCOUNTS, access_key_id, &rec)?;
                }
                Ok(())
            })?;
        }
        Ok(Some(Credential {
            secret_access_key: SecretString::new(DEV_ACCOUNT_SECRET.to_string()),
            session_token: None,
            expires_at: None,
            active: true,
            caller: Caller::root(access_key_id, access_key_id),
        }))
    }

    /// Register the account and its configured root access key (idempotent). A changed root key
    /// replaces the one registered before.
    pub fn bootstrap_account(&self, account_id: &str, root_access_key_id: &str, root_secret: &str) -> Result<()> {
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IamError::InvalidInput(format!("account ID must be 12 digits, got {account_id:?}")));
        }
        if root_access_key_id.is_empty() || !root_access_key_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(IamError::InvalidInput("the root access key ID must be alphanumeric".into()));
        }
        if root_secret.is_empty() {
            return Err(IamError::InvalidInput("the root secret access key must not be empty".into()));
        }
        self.db.write(account_id, |tx| {
            let mut account = tx.get::<AccountRec>(tables::ACCOUNTS, account_id)?.unwrap_or(AccountRec {
                created: now(),
                bootstrap_key: String::new(),
                root_keys: Vec::new(),
                alias: None,
            });
            if !account.bootstrap_key.is_empty() && account.bootstrap_key != root_access_key_id {
                tx.delete(tables::ACCESS_KEYS, &account.bootstrap_key)?;
                let old = account.bootstrap_key.clone();
                account.root_keys.retain(|k| *k != old);
            }
            let record = match tx.get::<AccessKeyRec>(tables::ACCESS_KEYS, root_access_key_id)? {
                Some(existing) if existing.account != account_id || existing.user.is_some() => {
                    return Err(IamError::InvalidInput(format!(
                        "access key {root_access_key_id} already belongs to another principal"
                    )))
                }
                Some(existing) if self.open(root_access_key_id, &existing).is_ok_and(|s| s.expose() == root_secret) => {
                    existing
                }
                Some(existing) => {
                    AccessKeyRec { sealed_secret: self.seal(root_access_key_id, root_secret)?, ..existing }
                }
                None => AccessKeyRec {
                    account: account_id.to_string(),
                    user: None,
                    active: true,
                    created: now(),
                    sealed_secret: self.seal(root_access_key_id, root_secret)?,
                },
            };
            tx.put(tables::ACCESS_KEYS, root_access_key_id, &record)?;
            account.bootstrap_key = root_access_key_id.to_string();
            if !account.root_keys.iter().any(|k| k == root_access_key_id) {
                account.root_keys.push(root_access_key_id.to_string());
            }
            tx.put(tables::ACCOUNTS, account_id, &account)?;
            Ok(())
        })
    }

    /// Seal a secret for storage (AAD = the key ID).
    pub fn seal(&self, key_id: &str, secret: &str) -> Result<String> {
        let sealed = self
            .sealer
            .seal(secret.as_bytes(), key_id.as_bytes())
            .map_err(|e| IamError::Internal(format!("sealing the secret of {key_id}: {e}")))?;
        Ok(to_hex(&sealed))
    }

    fn open(&self, key_id: &str, rec: &AccessKeyRec) -> Result<SecretString> {
        let sealed = from_hex(&rec.sealed_secret)
            .ok_or_else(|| IamError::Internal(format!("sealed secret of {key_id} is not hex")))?;
        let plain = self
            .sealer
            .open(&sealed, key_id.as_bytes())
            .map_err(|e| IamError::Internal(format!("sealed secret of {key_id}: {e}")))?;
        std::str::from_utf8(&plain)
            .map(|s| SecretString::new(s.to_string()))
            .map_err(|_| IamError::Internal(format!("secret of {key_id} is not UTF-8")))
    }

    /// The sealer (STS seals session secrets with it too).
    pub fn sealer(&self) -> Arc<Sealer> {
        self.sealer.clone()
    }

    /// A temporary (`ASIA…`) key: its session, if it still stands.
    fn load_session(&self, access_key_id: &str) -> Result<Option<(String, u64, Credential)>> {
        let Some(rec) = session::get(&self.db, access_key_id)? else { return Ok(None) };
        let generation = self.db.generation(&rec.account)?;
        let Some(credential) = session::credential(&self.db, &self.sealer, access_key_id, &rec)? else {
            return Ok(None);
        };
        Ok(Some((rec.account, generation, credential)))
    }

    fn load(&self, access_key_id: &str) -> Result<Option<(String, u64, Credential)>> {
        if access_key_id.starts_with("ASIA") {
            return self.load_session(access_key_id);
        }
        let Some(first) = self.db.get::<AccessKeyRec>(tables::ACCESS_KEYS, access_key_id)? else { return Ok(None) };
        // Read the generation before the data we cache under it (a key never changes account).
        let generation = self.db.generation(&first.account)?;
        let Some(rec) = self.db.get::<AccessKeyRec>(tables::ACCESS_KEYS, access_key_id)? else { return Ok(None) };
        let account = rec.account.clone();
        let caller = match &rec.user {
            None => Caller::root(&account, access_key_id),
            Some(name) => {
                let Some(user) = self.db.entity::<UserRec>(&account, name)? else { return Ok(None) };
                Caller {
                    account_id: account.clone(),
                    arn: user.arn(&account),
                    principal_id: user.id.clone(),
                    access_key_id: access_key_id.to_string(),
                    kind: CallerKind::IamUser { user_name: user.name.clone(), user_id: user.id.clone() },
                    session: None,
                }
            }
        };
        let credential = Credential {
            secret_access_key: self.open(access_key_id, &rec)?,
            session_token: None,
            expires_at: None,
            active: rec.active,
            caller,
        };
        Ok(Some((account, generation, credential)))
    }

    fn lookup_inner(&self, access_key_id: &str) -> Result<Option<Credential>> {
        let cached = self
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(access_key_id)
            .map(|(account, generation, c)| (account.clone(), *generation, c.credential()));
        if let Some((account, generation, credential)) = cached {
            if self.db.generation(&account)? == generation {
                return Ok(Some(credential));
            }
        }
        let loaded = self.load(access_key_id)?;
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        match loaded {
            Some((account, generation, credential)) => {
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
                let cached = Cached::new(credential);
                let credential = cached.credential();
                cache.insert(access_key_id.to_string(), (account, generation, cached));
                Ok(Some(credential))
            }
            None => {
                cache.remove(access_key_id);
                drop(cache);
                self.account_key(access_key_id)
            }
        }
    }

    fn record(&self, access_key_id: &str, service: &str, region: &str, at: OffsetDateTime) -> Result<()> {
        let minute = at.unix_timestamp().div_euclid(60);
        {
            let mut seen = self.last_used.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((m, s, r)) = seen.get(access_key_id) {
                if *m == minute && s == service && r == region {
                    return Ok(());
                }
            }
            if seen.len() >= MAX_CACHED {
                seen.clear();
            }
            seen.insert(access_key_id.to_string(), (minute, service.to_string(), region.to_string()));
        }
        let rec = LastUsedRec { at: at.unix_timestamp(), service: service.to_string(), region: region.to_string() };
        self.db.write_untracked(|tx| tx.put(tables::KEY_LAST_USED, access_key_id, &rec))
    }
}

impl CredentialStore for IamCredentials {
    fn lookup(&self, access_key_id: &str) -> Result<Option<Credential>, AwsError> {
        self.lookup_inner(access_key_id).map_err(AwsError::from)
    }

    fn record_use(&self, access_key_id: &str, service: &str, region: &str, at: OffsetDateTime) {
        // Temporary keys have no last-used record (GetAccessKeyLastUsed is for long-term keys).
        if access_key_id.starts_with("ASIA") {
            return;
        }
        if let Err(e) = self.record(access_key_id, service, region, at) {
            tracing::warn!(error = %e, "could not record access key use");
        }
    }
}
