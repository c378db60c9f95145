//! The recorded calls of an account, as IAM's last-accessed reports read them
//! ([`rampart_service::ActivityLog`]): authenticated calls only (root, IAM users, role sessions),
//! allowed and denied alike, newest first.

use std::sync::Arc;

use rampart_service::{Activity, ActivityLog, ActivityPrincipal};
use rampart_store::Store;
use serde_json::Value;

use crate::audit::{StoredEvent, EVENTS_TABLE};

const PAGE: usize = 512;

/// [`ActivityLog`] over the audit records in the store.
pub struct TrailActivity {
    store: Arc<dyn Store>,
}

impl TrailActivity {
    pub fn new(store: Arc<dyn Store>) -> Self {
        TrailActivity { store }
    }
}

/// The activity one record shows (`None` for an unauthenticated call or a federated user).
pub fn activity_of(e: &StoredEvent) -> Option<Activity> {
    let record: Value = serde_json::from_str(&e.event).ok()?;
    let ui = record.get("userIdentity")?;
    let (kind, principal) = match ui.get("type")?.as_str()? {
        "Root" => (ActivityPrincipal::Root, ui.get("arn")?.as_str()?),
        "IAMUser" => (ActivityPrincipal::User, ui.get("arn")?.as_str()?),
        "AssumedRole" => (ActivityPrincipal::Role, ui.pointer("/sessionContext/sessionIssuer/arn")?.as_str()?),
        _ => return None,
    };
    let namespace = e.source.strip_suffix(".amazonaws.com").unwrap_or(&e.source);
    Some(Activity {
        time: e.t,
        kind,
        principal: principal.to_string(),
        namespace: namespace.to_string(),
        action: e.name.clone(),
        region: e.region.clone(),
    })
}

impl ActivityLog for TrailActivity {
    fn visit(&self, account: &str, since: i64, until: i64, f: &mut dyn FnMut(&Activity)) -> Result<(), String> {
        let prefix = format!("{account}/");
        let mut after: Option<String> = None;
        loop {
            let rows = self.store.scan(EVENTS_TABLE, &prefix, after.as_deref(), PAGE).map_err(|e| e.to_string())?;
            let Some((last, _)) = rows.last() else { return Ok(()) };
            after = Some(last.clone());
            for (_, row) in &rows {
                let Some(e) = StoredEvent::from_row(row) else { continue };
                // Newest first by commit; event times may lag commits by a little.
                if e.t < since.saturating_sub(60) {
                    return Ok(());
                }
                if e.t < since || e.t > until {
                    continue;
                }
                if let Some(a) = activity_of(&e) {
                    f(&a);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(source: &str, record: serde_json::Value) -> StoredEvent {
        StoredEvent {
            seq: 1,
            id: "e".into(),
            t: 100,
            name: "ListUsers".into(),
            source: source.into(),
            region: "us-east-1".into(),
            ro: true,
            user: None,
            key: None,
            res: Vec::new(),
            event: record.to_string(),
        }
    }

    #[test]
    fn principals_of_records() {
        let user = event(
            "iam.amazonaws.com",
            serde_json::json!({"userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/a/u"}}),
        );
        let a = activity_of(&user).unwrap();
        assert_eq!(
            (a.kind, a.principal.as_str(), a.namespace.as_str(), a.action.as_str()),
            (ActivityPrincipal::User, "arn:aws:iam::111122223333:user/a/u", "iam", "ListUsers")
        );
        let role = event(
            "kms.amazonaws.com",
            serde_json::json!({"userIdentity": {"type": "AssumedRole",
                "arn": "arn:aws:sts::111122223333:assumed-role/r/s",
                "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/r"}}}}),
        );
        let a = activity_of(&role).unwrap();
        assert_eq!(
            (a.kind, a.principal.as_str(), a.namespace.as_str()),
            (ActivityPrincipal::Role, "arn:aws:iam::111122223333:role/r", "kms")
        );
        let unknown = event("sts.amazonaws.com", serde_json::json!({"userIdentity": {"type": "Unknown"}}));
        assert!(activity_of(&unknown).is_none());
    }
}
