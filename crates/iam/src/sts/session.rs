//! Temporary credentials: the stored session record, issuing one, and turning one back into the
//! pipeline's [`Credential`] when its `ASIA…` key signs a request.
//!
//! A session is stored under its access key ID with its secret and token sealed together (AAD =
//! the key ID). The token is opaque random bytes; nothing about the session can be read from it.
//! Whether a session still stands is decided at every lookup: it expires exactly at its
//! `expires` second (the pipeline answers `ExpiredToken`), and it dies with its role or user — a
//! session remembers the role's (or user's) unique ID, so a deleted and re-created namesake does
//! not revive it (`InvalidClientTokenId`).

use base64::Engine;
use rampart_service::{Caller, CallerKind, Credential, SessionInfo};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::db::{Db, Lookup};
use crate::error::{IamError, Result};
use crate::model::{RoleRec, Tag, UserRec};
use crate::resolve::managed_document;
use crate::util::{from_hex, to_hex};

/// Table: access key ID (`ASIA…`) → [`SessionRec`].
pub const SESSIONS: &str = "sts_sessions";
/// Table: `{expires:012}/{key id}` → `""`, to purge expired sessions oldest first.
pub const SESSION_EXPIRY: &str = "sts_session_expiry";
/// Expired sessions purged per issued session (keeps the table bounded by the live sessions).
const PURGE_PER_ISSUE: usize = 8;

/// Whose session it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum SessionKind {
    /// AssumeRole / AssumeRoleWithWebIdentity.
    Role {
        role_name: String,
        role_id: String,
        role_arn: String,
        session_name: String,
        /// Assumed with role-session credentials (role chaining: 1 hour at most).
        #[serde(default)]
        chained: bool,
    },
    /// GetSessionToken by an IAM user.
    User { user_name: String, user_id: String },
    /// GetSessionToken by the account root.
    Root,
    /// GetFederationToken by an IAM user (`user_*`) or the root (`None`).
    Federated { name: String, user_name: Option<String>, user_id: Option<String> },
}

/// One issued session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRec {
    pub account: String,
    /// Hex of the sealed JSON `[secret, token]` (AAD = the access key ID).
    pub sealed: String,
    pub issued: i64,
    pub expires: i64,
    pub kind: SessionKind,
    /// Inline session policy.
    #[serde(default)]
    pub policy: Option<String>,
    /// Managed session policies (resolved to their default version at each use).
    #[serde(default)]
    pub policy_arns: Vec<String>,
    /// Whether session policies were passed at all (then they bound the session, even if empty).
    #[serde(default)]
    pub has_session_policy: bool,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Keys of `tags` that pass to chained sessions.
    #[serde(default)]
    pub transitive: Vec<String>,
    #[serde(default)]
    pub source_identity: Option<String>,
    /// When the MFA code was checked (epoch seconds), for MFA-authenticated sessions.
    #[serde(default)]
    pub mfa_time: Option<i64>,
    /// AssumeRoot: the task policy (`arn:aws:iam::aws:policy/root-task/…`) scoping the session.
    #[serde(default)]
    pub task_policy: Option<String>,
}

/// Freshly minted credentials, returned once to the caller.
pub struct Minted {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expires: i64,
}

fn session_token() -> String {
    // 96 random bytes: opaque, as long as AWS's shorter tokens.
    let mut bytes = [0u8; 96];
    rand::fill(&mut bytes[..]);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Seal `[secret, token]` for `key_id`.
fn seal(sealer: &rampart_store::Sealer, key_id: &str, secret: &str, token: &str) -> Result<String> {
    let plain = serde_json::to_vec(&[secret, token]).map_err(|e| IamError::Internal(e.to_string()))?;
    let plain = zeroize::Zeroizing::new(plain);
    let sealed = sealer
        .seal(&plain, key_id.as_bytes())
        .map_err(|e| IamError::Internal(format!("sealing session {key_id}: {e}")))?;
    Ok(to_hex(&sealed))
}

fn open(sealer: &rampart_store::Sealer, key_id: &str, rec: &SessionRec) -> Result<(String, String)> {
    let sealed = from_hex(&rec.sealed).ok_or_else(|| IamError::Internal(format!("session {key_id} is not hex")))?;
    let plain =
        sealer.open(&sealed, key_id.as_bytes()).map_err(|e| IamError::Internal(format!("session {key_id}: {e}")))?;
    let [secret, token]: [String; 2] =
        serde_json::from_slice(&plain).map_err(|e| IamError::Internal(format!("session {key_id}: {e}")))?;
    Ok((secret, token))
}

/// Store a new session built from `rec` (its `sealed` field is filled here) and return the keys.
pub fn issue(db: &Db, sealer: &rampart_store::Sealer, mut rec: SessionRec, now: i64) -> Result<Minted> {
    let access_key_id = crate::util::random_id("ASIA", 20);
    let secret_access_key = crate::util::secret_access_key();
    let session_token = session_token();
    rec.sealed = seal(sealer, &access_key_id, &secret_access_key, &session_token)?;
    let expires = rec.expires;
    db.write_untracked(|tx| {
        // Purge a few expired sessions first, oldest first.
        for k in tx.keys(SESSION_EXPIRY, "", PURGE_PER_ISSUE)? {
            let Some((exp, id)) = k.split_once('/') else { continue };
            if exp.parse::<i64>().map_or(true, |e| e > now) {
                break;
            }
            tx.delete(SESSION_EXPIRY, &k)?;
            tx.delete(SESSIONS, id)?;
        }
        tx.put(SESSIONS, &access_key_id, &rec)?;
        tx.put(SESSION_EXPIRY, &format!("{expires:012}/{access_key_id}"), &"")?;
        Ok(())
    })?;
    Ok(Minted { access_key_id, secret_access_key, session_token, expires })
}

/// The stored session of an `ASIA…` key, if any.
pub fn get(db: &Db, access_key_id: &str) -> Result<Option<SessionRec>> {
    db.get(SESSIONS, access_key_id)
}

/// The session's credential, or `None` when it no longer stands (its role or user was deleted,
/// or replaced by a namesake). Expiry is left to the pipeline, which answers `ExpiredToken`.
pub fn credential(
    db: &Db,
    sealer: &rampart_store::Sealer,
    access_key_id: &str,
    rec: &SessionRec,
) -> Result<Option<Credential>> {
    let account = rec.account.as_str();
    let (kind, arn, principal_id) = match &rec.kind {
        SessionKind::Role { role_name, role_id, role_arn, session_name, .. } => {
            match db.entity::<RoleRec>(account, role_name)? {
                Some(r) if r.id == *role_id => {}
                _ => return Ok(None),
            }
            (
                CallerKind::AssumedRole {
                    role_name: role_name.clone(),
                    role_arn: role_arn.clone(),
                    role_id: role_id.clone(),
                    session_name: session_name.clone(),
                },
                format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"),
                format!("{role_id}:{session_name}"),
            )
        }
        SessionKind::User { user_name, user_id } => {
            let Some(u) = db.entity::<UserRec>(account, user_name)?.filter(|u| u.id == *user_id) else {
                return Ok(None);
            };
            (CallerKind::IamUser { user_name: u.name.clone(), user_id: u.id.clone() }, u.arn(account), u.id.clone())
        }
        SessionKind::Root => (CallerKind::Root, format!("arn:aws:iam::{account}:root"), account.to_string()),
        SessionKind::Federated { name, user_name, user_id } => {
            if let (Some(un), Some(uid)) = (user_name, user_id) {
                if db.entity::<UserRec>(account, un)?.filter(|u| u.id == *uid).is_none() {
                    return Ok(None);
                }
            }
            (
                CallerKind::FederatedUser { user_name: name.clone() },
                format!("arn:aws:sts::{account}:federated-user/{name}"),
                format!("{account}:{name}"),
            )
        }
    };
    let session_policies = if rec.has_session_policy {
        let mut v = Vec::new();
        if let Some(p) = &rec.policy {
            v.push(("session/inline".to_string(), p.clone()));
        }
        for arn in &rec.policy_arns {
            if let Some((_, doc, _)) = managed_document(db, account, arn)? {
                v.push((arn.clone(), doc));
            }
        }
        v
    } else {
        Vec::new()
    };
    // A root session's task policy; a session whose task policy cannot be read does not stand.
    let task_policy = match &rec.task_policy {
        Some(arn) => match managed_document(db, account, arn)? {
            Some((_, doc, _)) => Some((arn.clone(), doc)),
            None => return Ok(None),
        },
        None => None,
    };
    let (secret, token) = open(sealer, access_key_id, rec)?;
    let at = |t: i64| OffsetDateTime::from_unix_timestamp(t).ok();
    let caller = Caller {
        account_id: account.to_string(),
        arn,
        principal_id,
        access_key_id: access_key_id.to_string(),
        kind,
        session: Some(SessionInfo {
            token_issue_time: at(rec.issued),
            mfa_authenticated: rec.mfa_time.is_some(),
            mfa_auth_time: rec.mfa_time.and_then(at),
            session_policies,
            tags: rec.tags.iter().map(|t| (t.key.clone(), t.value.clone())).collect(),
            source_identity: rec.source_identity.clone(),
            bounded_by_session_policy: rec.has_session_policy,
            federated_parent: match &rec.kind {
                SessionKind::Federated { user_name, .. } => Some(user_name.clone()),
                _ => None,
            },
            task_policy,
        }),
    };
    Ok(Some(Credential {
        secret_access_key: secret.into(),
        session_token: Some(token.into()),
        expires_at: at(rec.expires),
        active: true,
        caller,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn db() -> (Db, rampart_store::Sealer) {
        let store = rampart_store::SqliteStore::in_memory().expect("store");
        (Db::new(Arc::new(store)), rampart_store::Sealer::new(&[7u8; 32]))
    }

    fn root_rec(expires: i64) -> SessionRec {
        SessionRec {
            account: "111122223333".into(),
            sealed: String::new(),
            issued: 100,
            expires,
            kind: SessionKind::Root,
            policy: None,
            policy_arns: vec![],
            has_session_policy: false,
            tags: vec![],
            transitive: vec![],
            source_identity: None,
            mfa_time: None,
            task_policy: None,
        }
    }

    #[test]
    fn issued_sessions_round_trip_sealed_and_expire_exactly() {
        let (db, sealer) = db();
        let m = issue(&db, &sealer, root_rec(1_000), 100).unwrap();
        assert!(m.access_key_id.starts_with("ASIA") && m.access_key_id.len() == 20);
        let rec = get(&db, &m.access_key_id).unwrap().unwrap();
        // Nothing secret in the stored record.
        let raw = serde_json::to_string(&rec).unwrap();
        assert!(!raw.contains(&m.secret_access_key) && !raw.contains(&m.session_token));
        let c = credential(&db, &sealer, &m.access_key_id, &rec).unwrap().unwrap();
        assert_eq!(c.secret_access_key.expose(), m.secret_access_key);
        assert_eq!(c.session_token.as_ref().map(|t| t.expose()), Some(m.session_token.as_str()));
        // The pipeline refuses at `expires_at <= now`: exactly at Expiration.
        let exp = c.expires_at.unwrap();
        assert_eq!(exp.unix_timestamp(), 1_000);
        assert!(c.caller.is_root());
    }

    #[test]
    fn expired_sessions_are_purged_by_later_issues() {
        let (db, sealer) = db();
        let old = issue(&db, &sealer, root_rec(50), 0).unwrap();
        let live = issue(&db, &sealer, root_rec(5_000), 0).unwrap();
        assert!(get(&db, &old.access_key_id).unwrap().is_some());
        let _ = issue(&db, &sealer, root_rec(6_000), 100).unwrap();
        assert!(get(&db, &old.access_key_id).unwrap().is_none());
        assert!(get(&db, &live.access_key_id).unwrap().is_some());
    }

    #[test]
    fn role_sessions_die_with_their_role() {
        let (db, sealer) = db();
        let mut rec = root_rec(5_000);
        rec.kind = SessionKind::Role {
            role_name: "R".into(),
            role_id: "AROAEXAMPLE".into(),
            role_arn: "arn:aws:iam::111122223333:role/R".into(),
            session_name: "s".into(),
            chained: false,
        };
        let m = issue(&db, &sealer, rec, 0).unwrap();
        let rec = get(&db, &m.access_key_id).unwrap().unwrap();
        // No such role: the session does not stand.
        assert!(credential(&db, &sealer, &m.access_key_id, &rec).unwrap().is_none());
        let role = RoleRec {
            name: "R".into(),
            id: "AROAEXAMPLE".into(),
            path: "/".into(),
            created: 0,
            trust: "{}".into(),
            description: None,
            max_session: 3600,
            tags: vec![],
            boundary: None,
            inline: Default::default(),
            attached: vec![],
            instance_profiles: vec![],
            last_used: None,
        };
        db.write("111122223333", |tx| tx.put_entity("111122223333", "R", &role)).unwrap();
        let c = credential(&db, &sealer, &m.access_key_id, &rec).unwrap().unwrap();
        assert_eq!(c.caller.arn, "arn:aws:sts::111122223333:assumed-role/R/s");
        assert_eq!(c.caller.principal_id, "AROAEXAMPLE:s");
        // A namesake with another ID does not revive it.
        let other = RoleRec { id: "AROAOTHER".into(), ..role };
        db.write("111122223333", |tx| tx.put_entity("111122223333", "R", &other)).unwrap();
        assert!(credential(&db, &sealer, &m.access_key_id, &rec).unwrap().is_none());
    }
}
