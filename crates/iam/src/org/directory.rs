//! Organizations as other services see it ([`rampart_service::Organizations`]): an account's
//! organization, and the delegated administrators CloudTrail registers through Organizations.

use std::sync::Arc;

use rampart_protocol::AwsError;
use rampart_service::{OrgView, Organizations};

use super::model::{tables, OrgDoc};
use super::{bump, enforce::org_of};
use crate::db::{Db, Lookup};
use crate::error::IamError;

/// The view of the organizations in one store.
pub struct OrgDirectory {
    db: Db,
}

impl OrgDirectory {
    pub(crate) fn new(db: Db) -> Arc<Self> {
        Arc::new(OrgDirectory { db })
    }
}

fn view(doc: &OrgDoc) -> OrgView {
    let mut accounts: Vec<String> = doc.accounts.keys().cloned().collect();
    if !accounts.contains(&doc.management) {
        accounts.push(doc.management.clone());
    }
    OrgView {
        id: doc.id.clone(),
        management_account: doc.management.clone(),
        accounts,
        trusted_services: doc.service_access.keys().cloned().collect(),
        delegated_admins: doc
            .delegated_admins
            .iter()
            .map(|(a, sps)| (a.clone(), sps.keys().cloned().collect()))
            .collect(),
    }
}

impl OrgDirectory {
    /// Change organization `org_id` in one transaction (the policy generation moves on, so cached
    /// views see it).
    fn change(&self, org_id: &str, f: impl FnOnce(&mut OrgDoc) -> bool) -> Result<bool, AwsError> {
        self.db
            .write_untracked(|tx| {
                let Some(mut doc) = tx.get::<OrgDoc>(tables::ORGS, org_id)? else {
                    return Err(IamError::Aws(AwsError::new(
                        "OrganizationsNotInUseException",
                        "This account is not a member of an organization.",
                        400,
                    )));
                };
                let changed = f(&mut doc);
                if changed {
                    tx.put(tables::ORGS, &doc.id, &doc)?;
                    bump(tx)?;
                }
                Ok(changed)
            })
            .map_err(AwsError::from)
    }
}

impl Organizations for OrgDirectory {
    fn organization_of(&self, account: &str) -> Result<Option<OrgView>, AwsError> {
        Ok(org_of(&self.db, account).map_err(AwsError::from)?.as_ref().map(view))
    }

    fn register_delegated_admin(
        &self,
        org_id: &str,
        account: &str,
        service_principal: &str,
        at: i64,
    ) -> Result<bool, AwsError> {
        self.change(org_id, |doc| {
            let services = doc.delegated_admins.entry(account.to_string()).or_default();
            if services.contains_key(service_principal) {
                return false;
            }
            services.insert(service_principal.to_string(), at);
            true
        })
    }

    fn deregister_delegated_admin(
        &self,
        org_id: &str,
        account: &str,
        service_principal: &str,
    ) -> Result<bool, AwsError> {
        self.change(org_id, |doc| {
            let Some(services) = doc.delegated_admins.get_mut(account) else { return false };
            let removed = services.remove(service_principal).is_some();
            if services.is_empty() {
                doc.delegated_admins.remove(account);
            }
            removed
        })
    }
}
