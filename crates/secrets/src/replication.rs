//! Replication of a secret to other Regions of the same server, and StopReplicationToReplica,
//! which promotes a replica to a standalone secret.
//!
//! A replica is stored as a stub in its Region (ARN, name, account, Region, primary Region) and
//! read as a view of its primary: same values (decrypted with the primary's encryption context),
//! versions, description, tags and policy, under the replica's ARN. Replicas are read-only: every
//! change goes through the primary (AWS refuses it in the replica's Region).

use rampart_service::RequestContext;
use rampart_store::{transact, ReadExt, TransactionExt};
use serde_json::{json, Value};

use crate::error::{Result, SmError};
use crate::input::{check_len, In};
use crate::model::put;
use crate::model::{secret_key, value_key, Replica, SecretRec, VersionMeta, SECRETS, VALUES};
use crate::SecretsManager;

/// The ARN of `primary_arn`'s replica in `region` (same name and suffix).
pub(crate) fn replica_arn(primary_arn: &str, region: &str) -> String {
    let mut parts: Vec<&str> = primary_arn.splitn(7, ':').collect();
    if let Some(part) = parts.get_mut(3) {
        *part = region;
    }
    parts.join(":")
}

/// `ReplicationStatus` of a primary secret.
pub(crate) fn replication_status(rec: &SecretRec) -> Value {
    Value::Array(
        rec.replicas
            .iter()
            .map(|r| {
                let mut o = json!({"Region": r.region, "Status": r.status});
                if let Some(k) = &r.kms_key_id {
                    put(&mut o, "KmsKeyId", json!(k));
                }
                if let Some(m) = &r.status_message {
                    put(&mut o, "StatusMessage", json!(m));
                }
                o
            })
            .collect(),
    )
}

/// The `PrimaryRegion` of a replicated secret (a replica, or a primary with replicas).
pub(crate) fn primary_region(rec: &SecretRec) -> Option<&str> {
    match &rec.primary_region {
        Some(p) => Some(p),
        None if !rec.replicas.is_empty() => Some(&rec.region),
        None => None,
    }
}

/// Rampart's bound on `AddReplicaRegions` entries per request. AWS documents no number (the model
/// has only `min: 1`), but a secret cannot be replicated to more Regions than a partition has (fewer
/// than 40), so a longer list can never succeed: it is refused by its length, before authorization
/// and before any per-entry work.
pub(crate) const MAX_REPLICA_REGIONS: usize = 64;

/// `AddReplicaRegions: [{Region, KmsKeyId}]`, without repeated Regions (the first one counts).
pub(crate) fn replica_regions(body: In<'_>) -> Result<Vec<(String, Option<String>)>> {
    let items = body.list("AddReplicaRegions")?.map(|v| v.as_slice()).unwrap_or_default();
    if items.len() > MAX_REPLICA_REGIONS {
        return Err(SmError::Validation(format!(
            "1 validation error detected: Value at 'addReplicaRegions' failed to satisfy constraint: Member must have length less than or equal to {MAX_REPLICA_REGIONS}"
        )));
    }
    let mut out = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    for item in items {
        let r = In(item);
        let region = r.str("Region")?.unwrap_or("");
        check_len("AddReplicaRegions.member.Region", region, 1, 128)?;
        if !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(SmError::InvalidParameter("Invalid replica region.".into()));
        }
        let kms = r.str("KmsKeyId")?.map(str::to_string);
        if seen.insert(region) {
            out.push((region.to_string(), kms));
        }
    }
    Ok(out)
}

impl SecretsManager {
    /// The view of a replica stub, or `None` if its primary no longer replicates to it.
    pub(crate) fn replica_view(&self, stub: SecretRec) -> Result<Option<SecretRec>> {
        let Some(primary_region) = stub.primary_region.clone() else { return Ok(Some(stub)) };
        let key = secret_key(&stub.account, &primary_region, &stub.name);
        let Some(primary) = self.store.get_json::<SecretRec>(SECRETS, &key)? else { return Ok(None) };
        if replica_arn(&primary.arn, &stub.region) != stub.arn
            || !primary.replicas.iter().any(|r| r.region == stub.region && r.status == "InSync")
        {
            return Ok(None);
        }
        let source = Some((primary.arn.clone(), primary.region.clone()));
        Ok(Some(SecretRec {
            arn: stub.arn,
            region: stub.region,
            primary_region: Some(primary_region),
            replicas: Vec::new(),
            source,
            ..primary
        }))
    }

    /// Replicate `primary` to `regions`: a Region holding a secret of the same name fails unless
    /// `force` (which deletes that secret). Returns the primary as stored.
    pub(crate) fn add_replicas(
        &self,
        primary: &SecretRec,
        regions: &[(String, Option<String>)],
        force: bool,
    ) -> Result<SecretRec> {
        for (region, _) in regions {
            if *region == primary.region {
                return Err(SmError::InvalidParameter("Invalid replica region.".into()));
            }
        }
        let mut replicas = primary.replicas.clone();
        let mut stubs = Vec::new();
        for (region, kms) in regions {
            if replicas.iter().any(|r| r.region == *region && r.status == "InSync") {
                continue;
            }
            replicas.retain(|r| r.region != *region);
            let key = secret_key(&primary.account, region, &primary.name);
            let existing = self.store.get_json::<SecretRec>(SECRETS, &key)?;
            let (status, message) = match existing {
                Some(other) if !force || other.is_replica() => {
                    let m =
                        format!("Replication failed: Secret name {} already exists in region {region}.", primary.name);
                    ("Failed", Some(m))
                }
                Some(other) => {
                    self.purge(&other)?;
                    stubs.push(region.clone());
                    ("InSync", None)
                }
                None => {
                    stubs.push(region.clone());
                    ("InSync", None)
                }
            };
            replicas.push(Replica {
                region: region.clone(),
                kms_key_id: kms.clone(),
                status: status.into(),
                status_message: message,
            });
        }
        transact(self.store.as_ref(), |tx| -> Result<SecretRec> {
            let mut cur = tx
                .get_json::<SecretRec>(SECRETS, &primary.key())?
                .filter(|c| c.arn == primary.arn)
                .ok_or_else(SmError::not_found)?;
            for region in &stubs {
                let key = secret_key(&cur.account, region, &cur.name);
                if tx.get(SECRETS, &key)?.is_some() {
                    return Err(SmError::Exists(format!(
                        "Replication failed: Secret name {} already exists in region {region}.",
                        cur.name
                    )));
                }
                let stub = SecretRec {
                    arn: replica_arn(&cur.arn, region),
                    name: cur.name.clone(),
                    account: cur.account.clone(),
                    region: region.clone(),
                    created: cur.created,
                    last_changed: cur.last_changed,
                    primary_region: Some(cur.region.clone()),
                    ..Default::default()
                };
                tx.put_json(SECRETS, &key, &stub)?;
            }
            cur.replicas = replicas.clone();
            tx.put_json(SECRETS, &cur.key(), &cur)?;
            Ok(cur)
        })
    }

    /// ReplicateSecretToRegions of `rec` (a live primary).
    pub(crate) fn replicate_secret_to_regions(
        &self,
        rec: &SecretRec,
        regions: &[(String, Option<String>)],
        force: bool,
    ) -> Result<Value> {
        let rec = self.add_replicas(rec, regions, force)?;
        Ok(json!({"ARN": rec.arn, "ReplicationStatus": replication_status(&rec)}))
    }

    /// RemoveRegionsFromReplication of `rec` (a live primary).
    pub(crate) fn remove_regions_from_replication(&self, rec: &SecretRec, regions: &[String]) -> Result<Value> {
        let rec = transact(self.store.as_ref(), |tx| -> Result<SecretRec> {
            let mut cur = tx
                .get_json::<SecretRec>(SECRETS, &rec.key())?
                .filter(|c| c.arn == rec.arn)
                .ok_or_else(SmError::not_found)?;
            for region in regions {
                let key = secret_key(&cur.account, region, &cur.name);
                if let Some(stub) = tx.get_json::<SecretRec>(SECRETS, &key)? {
                    if stub.primary_region.as_deref() == Some(cur.region.as_str()) {
                        tx.delete(SECRETS, &key)?;
                    }
                }
            }
            cur.replicas.retain(|r| !regions.contains(&r.region));
            tx.put_json(SECRETS, &cur.key(), &cur)?;
            Ok(cur)
        })?;
        Ok(json!({"ARN": rec.arn, "ReplicationStatus": replication_status(&rec)}))
    }

    /// StopReplicationToReplica of `view` (a replica, read in its Region): promote it to a
    /// standalone secret under its own ARN — description, tags and policy as they are, every
    /// version's value decrypted with the primary's key and encrypted again under the replica's
    /// KMS key (as the caller, as every value operation) — and drop its Region from the primary's
    /// replication.
    pub(crate) fn stop_replication_to_replica(&self, ctx: &RequestContext, view: SecretRec) -> Result<Value> {
        let Some(primary_region) = view.primary_region.clone() else {
            return Err(SmError::InvalidRequest(
                "StopReplicationToReplica is valid only for a replica secret; this secret is a primary secret.".into(),
            ));
        };
        let primary_key = secret_key(&view.account, &primary_region, &view.name);
        let primary = self.store.get_json::<SecretRec>(SECRETS, &primary_key)?.ok_or_else(SmError::not_found)?;
        let kms_key_id = primary.replicas.iter().find(|r| r.region == view.region).and_then(|r| r.kms_key_id.clone());
        let now = self.now_ms();
        let mut promoted = SecretRec {
            arn: view.arn.clone(),
            name: view.name.clone(),
            account: view.account.clone(),
            region: view.region.clone(),
            description: view.description.clone(),
            kms_key_id,
            created: view.created,
            last_changed: now,
            tags: view.tags.clone(),
            tagged: view.tagged,
            policy: view.policy.clone(),
            ..Default::default()
        };
        let mut values = Vec::new();
        for v in &view.versions {
            let mut meta = VersionMeta { key_arn: None, last_accessed: None, ..v.clone() };
            if v.has_value() {
                let plain = self.open_value(ctx, &view, &v.id)?;
                let sealed = self.seal_value(ctx, &promoted, &v.id, &plain)?;
                meta.key_arn = Some(sealed.key_arn.clone());
                values.push((v.id.clone(), sealed));
            }
            promoted.versions.push(meta);
        }
        transact(self.store.as_ref(), |tx| -> Result<()> {
            let stub = tx
                .get_json::<SecretRec>(SECRETS, &promoted.key())?
                .filter(|s| s.arn == promoted.arn && s.primary_region.as_deref() == Some(primary_region.as_str()))
                .ok_or_else(SmError::not_found)?;
            for (id, sealed) in &values {
                tx.put_json(VALUES, &value_key(&stub.arn, id), sealed)?;
            }
            tx.put_json(SECRETS, &promoted.key(), &promoted)?;
            if let Some(mut p) = tx.get_json::<SecretRec>(SECRETS, &primary_key)? {
                p.replicas.retain(|r| r.region != promoted.region);
                tx.put_json(SECRETS, &primary_key, &p)?;
            }
            Ok(())
        })?;
        Ok(json!({"ARN": promoted.arn}))
    }
}
