//! The operation handlers, and the input readers the operations' `parse` uses. A handler runs
//! only after the pipeline authorized its plan, on the typed request and the secret the plan
//! looked up (module `api`); handlers never read the input.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rampart_policy::{Policy, PolicyType};
use rampart_service::{AuthzCheck, RequestContext, ResourcePolicy};
use rampart_store::{transact, ReadExt, TransactionExt};
use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::api::{require_key, BatchTargets, CreateSecret, ListSecrets};
use crate::error::{Result, SmError};
use crate::input::{check_len, In};
use crate::keys::{decrypt_value, encrypt_value, via_service};
use crate::model::*;
use crate::replication::{primary_region, replication_status};
use crate::{new_secret_arn, SecretsManager};

const MAX_SECRET_BYTES: usize = 65_536;
const MAX_TAGS: usize = 50;
const MAX_LABELS_PER_VERSION: usize = 20;

/// A secret value in memory (zeroized on drop).
pub(crate) struct SecretValue {
    pub bytes: Zeroizing<Vec<u8>>,
    pub binary: bool,
}

impl SecretValue {
    fn same_as(&self, other: &SecretValue) -> bool {
        self.binary == other.binary && bool::from(self.bytes.as_slice().ct_eq(other.bytes.as_slice()))
    }
}

fn ts(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

pub(crate) use rampart_protocol::new_uuid;

pub(crate) fn valid_name(name: &str) -> Result<()> {
    check_len("Name", name, 1, 512)?;
    if !name_chars_ok(name) {
        return Err(SmError::Validation(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
                .into(),
        ));
    }
    Ok(())
}

/// AWS's name rule as its error states it: "alphanumeric characters, or any of the following:
/// -/_+=.@!" (spaces, `*`, `?` refused; recorded AWS responses).
fn name_chars_ok(name: &str) -> bool {
    name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-/_+=.@!".contains(&b))
}

/// A `SecretId` that is a name (not an ARN) follows the name rule: AWS refuses it with the same
/// ValidationException before looking anything up (recorded AWS responses for Describe, Get,
/// Put, Delete, Tag, Untag, Update, ListSecretVersionIds, ValidateResourcePolicy).
pub(crate) fn valid_secret_id(id: &str) -> Result<()> {
    if !id.starts_with("arn:") && !name_chars_ok(id) {
        return Err(SmError::Validation(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
                .into(),
        ));
    }
    Ok(())
}

/// AWS's answer to a call from a raw client that left out `ClientRequestToken` (the SDKs and the
/// CLI always fill it in): "If you generate a raw HTTP request to the Secrets Manager service
/// endpoint, then you must generate a ClientRequestToken yourself" (API reference); the wording
/// and code as recorded from AWS (InvalidParameterException for RotateSecret).
pub(crate) fn no_token(rotate: bool) -> SmError {
    let m = "You must provide a ClientRequestToken value. We recommend a UUID-type value.".to_string();
    if rotate {
        SmError::InvalidParameter(m)
    } else {
        SmError::InvalidRequest(m)
    }
}

pub(crate) fn token(body: In<'_>) -> Result<Option<String>> {
    match body.str("ClientRequestToken")? {
        None => Ok(None),
        Some(t) => {
            check_len("ClientRequestToken", t, 32, 64)?;
            Ok(Some(t.to_string()))
        }
    }
}

pub(crate) fn valid_tags(tags: &[(String, String)]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(SmError::Validation(
            "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50".into(),
        ));
    }
    for (k, v) in tags {
        check_len("Tags.member.Key", k, 1, 128)?;
        check_len("Tags.member.Value", v, 0, 256)?;
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(SmError::InvalidParameter("Invalid tag key. Tag keys can't start with 'aws:'.".into()));
        }
    }
    Ok(())
}

fn merge_tags(existing: &mut Vec<(String, String)>, new: &[(String, String)]) -> Result<()> {
    for (k, v) in new {
        match existing.iter_mut().find(|(ek, _)| ek == k) {
            Some(e) => e.1 = v.clone(),
            None => existing.push((k.clone(), v.clone())),
        }
    }
    if existing.len() > MAX_TAGS {
        return Err(SmError::Validation("You can't add more than 50 tags to a secret.".into()));
    }
    Ok(())
}

/// AWS's refusal to reuse a ClientRequestToken for a different value.
fn token_in_use(token: &str, arn: &str) -> SmError {
    SmError::Exists(format!(
        "You can't use ClientRequestToken {token} because that value is already in use for a version of secret {arn}."
    ))
}

fn tags_json(tags: &[(String, String)]) -> Value {
    Value::Array(tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect())
}

/// The SecretString / SecretBinary of a request.
pub(crate) fn read_value(body: In<'_>) -> Result<Option<SecretValue>> {
    let s = body.str("SecretString")?;
    let b = body.str("SecretBinary")?;
    match (s, b) {
        (Some(_), Some(_)) => Err(SmError::InvalidParameter(
            "You can't specify both a binary secret value and a string secret value in the same secret.".into(),
        )),
        (Some(s), None) => {
            if s.len() > MAX_SECRET_BYTES {
                return Err(SmError::Validation(
                    "1 validation error detected: Value at 'secretString' failed to satisfy constraint: Member must have length less than or equal to 65536".into(),
                ));
            }
            Ok(Some(SecretValue { bytes: Zeroizing::new(s.as_bytes().to_vec()), binary: false }))
        }
        (None, Some(b)) => {
            let bytes = Zeroizing::new(B64.decode(b).map_err(|_| {
                SmError::Aws(rampart_protocol::AwsError::new(
                    "SerializationException",
                    "SecretBinary must be base64-encoded",
                    400,
                ))
            })?);
            if bytes.len() > MAX_SECRET_BYTES {
                return Err(SmError::Validation(
                    "1 validation error detected: Value at 'secretBinary' failed to satisfy constraint: Member must have length less than or equal to 65536".into(),
                ));
            }
            Ok(Some(SecretValue { bytes, binary: true }))
        }
        (None, None) => Ok(None),
    }
}

fn version_stages_json(rec: &SecretRec) -> Value {
    let mut m = Map::new();
    for v in &rec.versions {
        if !v.stages.is_empty() {
            m.insert(v.id.clone(), json!(v.stages));
        }
    }
    Value::Object(m)
}

fn encryption_context(arn: &str, version_id: &str) -> Vec<(String, String)> {
    vec![("SecretARN".into(), arn.to_string()), ("SecretVersionId".into(), version_id.to_string())]
}

impl SecretsManager {
    /// Read-modify-write of one secret in a transaction; fails if it was purged or replaced meanwhile.
    pub(crate) fn update<T>(
        &self,
        rec: &SecretRec,
        f: impl FnOnce(&mut SecretRec, &mut dyn rampart_store::Transaction) -> Result<T>,
    ) -> Result<(SecretRec, T)> {
        transact(self.store.as_ref(), |tx| {
            let mut cur = tx
                .get_json::<SecretRec>(SECRETS, &rec.key())?
                .filter(|c| c.arn == rec.arn)
                .ok_or_else(SmError::not_found)?;
            if cur.is_replica() {
                return Err(SmError::replica());
            }
            let out = f(&mut cur, tx)?;
            let removed = cur.prune_versions();
            for v in &removed {
                tx.delete(VALUES, &value_key(&cur.arn, v))?;
            }
            tx.put_json(SECRETS, &cur.key(), &cur)?;
            Ok((cur, out))
        })
    }

    /// Encrypt `value` for version `version_id` under the secret's KMS key (as the caller).
    pub(crate) fn seal_value(
        &self,
        ctx: &RequestContext,
        rec: &SecretRec,
        version_id: &str,
        value: &SecretValue,
    ) -> Result<ValueRec> {
        default_key_stays_home(ctx, rec)?;
        let ec = encryption_context(&rec.arn, version_id);
        let dk = self.keys.generate_data_key(ctx, rec.kms_key_id.as_deref(), &ec, &via_service(&rec.region))?;
        let ct = encrypt_value(&dk.plaintext, &value.bytes, value_key(&rec.arn, version_id).as_bytes())?;
        Ok(ValueRec {
            key_arn: dk.key_arn,
            data_key: B64.encode(&dk.ciphertext_blob),
            ciphertext: B64.encode(ct),
            binary: value.binary,
        })
    }

    /// Decrypt version `version_id` (KMS decrypts the data key as the caller).
    /// A replica reads its primary's values.
    pub(crate) fn open_value(&self, ctx: &RequestContext, rec: &SecretRec, version_id: &str) -> Result<SecretValue> {
        default_key_stays_home(ctx, rec)?;
        let (arn, region) = rec.value_owner();
        // A replica's values are the primary's, under the primary Region's KMS key.
        let primary_ctx;
        let ctx = if region != ctx.region {
            primary_ctx = RequestContext { region: region.to_string(), ..ctx.clone() };
            &primary_ctx
        } else {
            ctx
        };
        let v: ValueRec = self
            .store
            .get_json(VALUES, &value_key(arn, version_id))?
            .ok_or_else(|| SmError::Internal(format!("value of {arn}#{version_id} is missing")))?;
        let blob = B64.decode(&v.data_key).map_err(|e| SmError::Internal(format!("stored data key: {e}")))?;
        let ct = B64.decode(&v.ciphertext).map_err(|e| SmError::Internal(format!("stored ciphertext: {e}")))?;
        let dk = self.keys.decrypt(ctx, &blob, &encryption_context(arn, version_id), &via_service(region))?;
        let bytes = decrypt_value(&dk, &ct, value_key(arn, version_id).as_bytes())?;
        Ok(SecretValue { bytes, binary: v.binary })
    }

    /// Store a new version (or fill a placeholder) and move `stages` onto it, idempotently by token.
    /// Returns the version's id and labels.
    pub(crate) fn put_version(
        &self,
        ctx: &RequestContext,
        rec: &SecretRec,
        version_id: &str,
        value: &SecretValue,
        stages: &[String],
    ) -> Result<(SecretRec, Vec<String>)> {
        if let Some(existing) = rec.version(version_id).filter(|v| v.has_value()) {
            let old = self.open_value(ctx, rec, version_id)?;
            if old.same_as(value) {
                return Ok((rec.clone(), existing.stages.clone()));
            }
            return Err(token_in_use(version_id, &rec.arn));
        }
        let sealed = self.seal_value(ctx, rec, version_id, value)?;
        let now = self.now_ms();
        let key_arn = sealed.key_arn.clone();
        let (rec, stages) = self.update(rec, |cur, tx| {
            if cur.is_deleted() {
                return Err(SmError::deleted());
            }
            if cur.version(version_id).is_some_and(|v| v.has_value()) {
                return Err(token_in_use(version_id, &cur.arn));
            }
            tx.put_json(VALUES, &value_key(&cur.arn, version_id), &sealed)?;
            match cur.version_mut(version_id) {
                Some(v) => v.key_arn = Some(key_arn),
                None => cur.versions.push(VersionMeta {
                    id: version_id.to_string(),
                    stages: Vec::new(),
                    created: now,
                    last_accessed: None,
                    key_arn: Some(key_arn),
                }),
            }
            for s in stages {
                cur.move_stage(s, version_id);
            }
            cur.last_changed = now;
            Ok(cur.version(version_id).map(|v| v.stages.clone()).unwrap_or_default())
        })?;
        Ok((rec, stages))
    }

    pub(crate) fn create_secret(&self, ctx: &RequestContext, req: CreateSecret) -> Result<Value> {
        let CreateSecret {
            name,
            description,
            kms_key_id,
            tags,
            replica_regions,
            force_overwrite,
            value,
            token: given_token,
            key_arn,
        } = req;
        let token = given_token.clone().unwrap_or_else(new_uuid);
        if let Some(existing) = self.find(ctx, &name)? {
            // A retry with the same token and value is idempotent; another value can't reuse it.
            if let (Some(t), Some(v), false) = (&given_token, &value, existing.is_deleted()) {
                if existing.version(t).is_some_and(|ver| ver.has_value()) {
                    if self.open_value(ctx, &existing, t)?.same_as(v) {
                        return Ok(json!({"ARN": existing.arn, "Name": existing.name, "VersionId": t}));
                    }
                    return Err(token_in_use(t, &existing.arn));
                }
            }
            if existing.is_deleted() {
                return Err(SmError::InvalidRequest(
                    "You can't create this secret because a secret with this name is already scheduled for deletion."
                        .into(),
                ));
            }
            return Err(SmError::Exists(format!("The operation failed because the secret {name} already exists.")));
        }
        // KMS must know the key before the secret exists (AWS fails CreateSecret on a bad key).
        require_key(self, ctx, kms_key_id.as_deref(), key_arn)?;
        let now = self.creation_ms();
        let mut rec = SecretRec {
            arn: new_secret_arn(ctx, &name),
            name: name.clone(),
            account: ctx.caller.account_id.clone(),
            region: ctx.region.clone(),
            description,
            kms_key_id,
            created: now,
            last_changed: now,
            tags,
            ..Default::default()
        };
        let sealed = match &value {
            Some(v) => Some(self.seal_value(ctx, &rec, &token, v)?),
            None => None,
        };
        if let Some(s) = &sealed {
            rec.versions.push(VersionMeta {
                id: token.clone(),
                stages: vec![AWSCURRENT.into()],
                created: now,
                last_accessed: None,
                key_arn: Some(s.key_arn.clone()),
            });
        }
        transact(self.store.as_ref(), |tx| -> Result<()> {
            if tx.get(SECRETS, &rec.key())?.is_some() {
                return Err(SmError::Exists(format!("The operation failed because the secret {name} already exists.")));
            }
            if let Some(s) = &sealed {
                tx.put_json(VALUES, &value_key(&rec.arn, &token), s)?;
            }
            tx.put_json(SECRETS, &rec.key(), &rec)?;
            Ok(())
        })?;
        let mut out = json!({"ARN": rec.arn, "Name": rec.name});
        if sealed.is_some() {
            put(&mut out, "VersionId", json!(token));
        }
        if !replica_regions.is_empty() {
            let rec = self.add_replicas(&rec, &replica_regions, force_overwrite)?;
            put(&mut out, "ReplicationStatus", replication_status(&rec));
        }
        Ok(out)
    }

    pub(crate) fn describe(&self, rec: &SecretRec) -> Value {
        let mut out = json!({
            "ARN": rec.arn,
            "Name": rec.name,
            "LastChangedDate": ts(rec.last_changed),
            "CreatedDate": ts(rec.created),
        });
        // A secret created without a value has no versions, and AWS then leaves the map out.
        if rec.versions.iter().any(|v| !v.stages.is_empty()) {
            put(&mut out, "VersionIdsToStages", version_stages_json(rec));
        }
        // An empty description is not shown (AWS: CreateSecret(Description="") then DescribeSecret).
        if let Some(d) = rec.description.as_ref().filter(|d| !d.is_empty()) {
            put(&mut out, "Description", json!(d));
        }
        if let Some(k) = &rec.kms_key_id {
            put(&mut out, "KmsKeyId", json!(k));
        }
        let r = &rec.rotation;
        if r.enabled || r.lambda_arn.is_some() {
            put(&mut out, "RotationEnabled", json!(r.enabled));
        }
        if let Some(l) = &r.lambda_arn {
            put(&mut out, "RotationLambdaARN", json!(l));
        }
        let mut rules = Map::new();
        if let Some(d) = r.automatically_after_days {
            rules.insert("AutomaticallyAfterDays".into(), json!(d));
        }
        if let Some(s) = &r.schedule_expression {
            rules.insert("ScheduleExpression".into(), json!(s));
        }
        if let Some(d) = &r.duration {
            rules.insert("Duration".into(), json!(d));
        }
        if !rules.is_empty() {
            put(&mut out, "RotationRules", Value::Object(rules));
        }
        if let Some(t) = r.last_rotated {
            put(&mut out, "LastRotatedDate", ts(t));
        }
        if let (true, Some(t)) = (r.enabled, r.next_rotation) {
            put(&mut out, "NextRotationDate", ts(t));
        }
        if let Some(t) = rec.last_accessed {
            put(&mut out, "LastAccessedDate", ts(t));
        }
        if let Some(t) = rec.deleted {
            put(&mut out, "DeletedDate", ts(t));
        }
        // Once tagged, an untagged secret lists `Tags: []`.
        if !rec.tags.is_empty() || rec.tagged {
            put(&mut out, "Tags", tags_json(&rec.tags));
        }
        if let Some(p) = primary_region(rec) {
            put(&mut out, "PrimaryRegion", json!(p));
        }
        if !rec.replicas.is_empty() {
            put(&mut out, "ReplicationStatus", replication_status(rec));
        }
        // Rampart's own report of the last failed rotation (not in AWS's model; SDKs ignore it).
        if let Some(f) = &r.last_failure {
            let status = json!({
                "Status": "FAILED",
                "Step": f.step,
                "VersionId": f.version_id,
                "Message": f.message,
                "FailedDate": ts(f.at),
            });
            put(&mut out, "RampartRotationStatus", status);
        }
        out
    }

    fn filter_matches(rec: &SecretRec, key: &str, value: &str) -> bool {
        match key {
            "name" => rec.name.starts_with(value),
            // Searched by words, as "all" is (AWS splits the value and the description into words).
            "description" => rec.description.as_deref().is_some_and(|d| words_match(value, std::iter::once(d))),
            "tag-key" => rec.tags.iter().any(|(k, _)| k.starts_with(value)),
            "tag-value" => rec.tags.iter().any(|(_, v)| v.starts_with(value)),
            "primary-region" => primary_region(rec).is_some_and(|p| p.starts_with(value)),
            "owning-service" => false,
            "all" => {
                let attributes = std::iter::once(rec.name.as_str())
                    .chain(rec.description.as_deref())
                    .chain(rec.tags.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]));
                words_match(value, attributes)
            }
            _ => false,
        }
    }

    /// ListSecrets' filters: values of one filter are OR'ed, filters AND'ed, `!` negates.
    pub(crate) fn parse_filters(body: In<'_>) -> Result<Vec<(String, Vec<String>)>> {
        let mut out = Vec::new();
        for f in body.list("Filters")?.map(|v| v.as_slice()).unwrap_or_default() {
            let f = In(f);
            let Some(key) = f.str("Key")? else {
                return Err(SmError::InvalidParameter("Invalid filter key".into()));
            };
            if !["description", "name", "tag-key", "tag-value", "primary-region", "owning-service", "all"]
                .contains(&key)
            {
                return Err(SmError::Validation(format!(
                    "1 validation error detected: Value '{}' at 'filters.1.member.key' failed to satisfy constraint: Member must satisfy enum value set: [all, name, tag-key, description, tag-value, owning-service, primary-region]",
                    rampart_protocol::echo(key)
                )));
            }
            let values: Vec<String> =
                f.str_list("Values")?.unwrap_or_default().into_iter().map(str::to_string).collect();
            if values.is_empty() || values.len() > 10 {
                return Err(SmError::InvalidParameter(format!("Invalid filter values for key: {key}")));
            }
            for v in &values {
                let ok = v.len() <= 512
                    && v.strip_prefix('!')
                        .unwrap_or(v)
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || " :_@/+=.-!".contains(c));
                if !ok {
                    return Err(SmError::InvalidParameter(format!("Invalid filter value: {v}")));
                }
            }
            out.push((key.to_string(), values));
        }
        Ok(out)
    }

    /// Filters are AND'ed; the values of one filter OR'ed, a `!value` matching what `value` does not.
    fn passes(rec: &SecretRec, filters: &[(String, Vec<String>)]) -> bool {
        filters.iter().all(|(key, values)| {
            values.iter().any(|v| match v.strip_prefix('!') {
                Some(neg) => !Self::filter_matches(rec, key, neg),
                None => Self::filter_matches(rec, key, v),
            })
        })
    }

    /// Secrets of the caller's account and region matching `filters`, sorted by creation date,
    /// paged by an opaque token (the last item's `created/name`).
    fn page(
        &self,
        ctx: &RequestContext,
        filters: &[(String, Vec<String>)],
        include_deleted: bool,
        descending: bool,
        max: usize,
        next: Option<&str>,
    ) -> Result<(Vec<SecretRec>, Option<String>)> {
        let now = self.now_ms();
        let mut all: Vec<SecretRec> = Vec::new();
        for rec in self.all(&ctx.caller.account_id, &ctx.region)? {
            if rec.deletion_date.is_some_and(|d| d <= now) {
                self.purge(&rec)?;
                continue;
            }
            if (include_deleted || !rec.is_deleted()) && Self::passes(&rec, filters) {
                all.push(rec);
            }
        }
        all.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
        if descending {
            all.reverse();
        }
        let start = match next {
            None => 0,
            Some(t) => {
                let raw = B64.decode(t).ok().and_then(|b| String::from_utf8(b).ok());
                let cursor = raw
                    .as_deref()
                    .and_then(|r| r.split_once('/'))
                    .and_then(|(c, n)| Some((c.parse::<i64>().ok()?, n.to_string())));
                let Some((created, name)) = cursor else {
                    return Err(SmError::InvalidNextToken("The NextToken value is invalid.".into()));
                };
                all.iter()
                    .position(|r| {
                        let k = (r.created, r.name.as_str());
                        if descending {
                            k < (created, name.as_str())
                        } else {
                            k > (created, name.as_str())
                        }
                    })
                    .unwrap_or(all.len())
            }
        };
        let page: Vec<SecretRec> = all.iter().skip(start).take(max).cloned().collect();
        let more = start + page.len() < all.len();
        let token = match (more, page.last()) {
            (true, Some(last)) => Some(B64.encode(format!("{}/{}", last.created, last.name))),
            _ => None,
        };
        Ok((page, token))
    }

    pub(crate) fn max_results(body: In<'_>, max: i64) -> Result<usize> {
        match body.int("MaxResults")? {
            None => Ok(max as usize),
            Some(n) if (1..=max).contains(&n) => Ok(n as usize),
            Some(n) => Err(SmError::Validation(format!(
                "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value {}",
                if n < 1 { "greater than or equal to 1".to_string() } else { format!("less than or equal to {max}") }
            ))),
        }
    }

    pub(crate) fn list_secrets(&self, ctx: &RequestContext, req: ListSecrets) -> Result<Value> {
        let ListSecrets { filters, include_deleted, descending, max, next_token } = req;
        let (page, next) = self.page(ctx, &filters, include_deleted, descending, max, next_token.as_deref())?;
        let list: Vec<Value> = page
            .iter()
            .map(|rec| {
                let mut d = self.describe(rec);
                if let Some(m) = d.as_object_mut() {
                    if let Some(v) = m.remove("VersionIdsToStages") {
                        m.insert("SecretVersionsToStages".into(), v);
                    }
                    m.remove("RampartRotationStatus");
                }
                d
            })
            .collect();
        let mut out = json!({ "SecretList": list });
        if let Some(t) = next {
            put(&mut out, "NextToken", json!(t));
        }
        Ok(out)
    }

    /// The version a GetSecretValue-style request names.
    fn pick_version<'r>(rec: &'r SecretRec, version_id: Option<&str>, stage: Option<&str>) -> Result<&'r VersionMeta> {
        let v = match (version_id, stage) {
            (Some(id), _) => {
                let v = rec.version(id).filter(|v| v.has_value()).ok_or_else(|| {
                    SmError::NotFound(format!(
                        "Secrets Manager can't find the specified secret value for VersionId: {id}"
                    ))
                })?;
                if let Some(s) = stage {
                    if !v.has(s) {
                        return Err(SmError::InvalidRequest(
                            "You provided a VersionStage that is not associated to the provided VersionId.".into(),
                        ));
                    }
                }
                v
            }
            (None, stage) => {
                let s = stage.unwrap_or(AWSCURRENT);
                rec.with_stage(s).filter(|v| v.has_value()).ok_or_else(|| {
                    SmError::NotFound(format!(
                        "Secrets Manager can't find the specified secret value for staging label: {s}"
                    ))
                })?
            }
        };
        Ok(v)
    }

    fn value_json(&self, ctx: &RequestContext, rec: &SecretRec, v: &VersionMeta) -> Result<Value> {
        let value = self.open_value(ctx, rec, &v.id)?;
        let mut out = json!({
            "ARN": rec.arn,
            "Name": rec.name,
            "VersionId": v.id,
            "VersionStages": v.stages,
            "CreatedDate": ts(v.created),
        });
        if value.binary {
            put(&mut out, "SecretBinary", json!(B64.encode(value.bytes.as_slice())));
        } else {
            let s = String::from_utf8(value.bytes.to_vec())
                .map_err(|_| SmError::Internal("stored SecretString is not UTF-8".into()))?;
            put(&mut out, "SecretString", Value::String(s));
        }
        Ok(out)
    }

    /// LastAccessedDate is kept to the day, as AWS does; written at most once a day per version.
    fn touch(&self, rec: &SecretRec, version_id: &str) {
        if rec.is_replica() {
            return;
        }
        let day = self.now_ms().div_euclid(86_400_000) * 86_400_000;
        let stale =
            rec.last_accessed != Some(day) || rec.version(version_id).is_some_and(|v| v.last_accessed != Some(day));
        if !stale {
            return;
        }
        let r = self.update(rec, |cur, _| {
            cur.last_accessed = Some(day);
            if let Some(v) = cur.version_mut(version_id) {
                v.last_accessed = Some(day);
            }
            Ok(())
        });
        if let Err(e) = r {
            tracing::warn!(secret = %rec.arn, error = %e, "could not record LastAccessedDate");
        }
    }

    pub(crate) fn get_secret_value(
        &self,
        ctx: &RequestContext,
        rec: &SecretRec,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> Result<Value> {
        let v = Self::pick_version(rec, version_id, stage)?;
        let out = self.value_json(ctx, rec, v)?;
        self.touch(rec, &v.id.clone());
        Ok(out)
    }

    pub(crate) fn batch_get_secret_value(&self, ctx: &RequestContext, targets: BatchTargets) -> Result<Value> {
        let mut next = None;
        let targets: Vec<(String, Option<SecretRec>)> = match targets {
            BatchTargets::Ids(ids) => {
                let mut found = Vec::with_capacity(ids.len());
                for id in ids {
                    let rec = self.find(ctx, &id)?;
                    found.push((id, rec));
                }
                found
            }
            BatchTargets::Filters { filters, max, next_token } => {
                let (page, token) = self.page(ctx, &filters, false, false, max, next_token.as_deref())?;
                next = token;
                page.into_iter().map(|r| (r.arn.clone(), Some(r))).collect()
            }
        };
        let authorizer = self.authorizer.get().cloned();
        let mut values = Vec::new();
        let mut errors = Vec::new();
        for (id, rec) in targets {
            let result = (|| -> Result<Value> {
                let rec = rec.ok_or_else(SmError::not_found)?;
                // Each secret needs secretsmanager:GetSecretValue, with its own resource policy.
                let mut check = AuthzCheck::new("secretsmanager:GetSecretValue", rec.arn.clone());
                if rec.account != ctx.caller.account_id {
                    check.resource_account = Some(rec.account.clone());
                }
                if let Some(p) = &rec.policy {
                    check.resource_policy = Some(ResourcePolicy::new(rec.arn.as_str(), p.as_str(), false));
                }
                check
                    .context
                    .push(("secretsmanager:SecretId".into(), rampart_service::ContextValue::String(rec.arn.clone())));
                for (k, v) in &rec.tags {
                    check.context.push((
                        format!("aws:ResourceTag/{k}").into(),
                        rampart_service::ContextValue::String(v.clone()),
                    ));
                    check.context.push((
                        format!("secretsmanager:ResourceTag/{k}").into(),
                        rampart_service::ContextValue::String(v.clone()),
                    ));
                }
                match &authorizer {
                    Some(a) => a.check(ctx, "secretsmanager", check)?,
                    None => return Err(SmError::Internal("no authorizer wired for BatchGetSecretValue".into())),
                }
                if rec.is_deleted() {
                    return Err(SmError::deleted());
                }
                let v = Self::pick_version(&rec, None, None)?;
                let out = self.value_json(ctx, &rec, v)?;
                self.touch(&rec, &v.id.clone());
                Ok(out)
            })();
            match result {
                Ok(v) => values.push(v),
                Err(SmError::Internal(m)) => return Err(SmError::Internal(m)),
                Err(e) => {
                    let e = rampart_protocol::AwsError::from(e);
                    errors.push(json!({"SecretId": id, "ErrorCode": e.code, "Message": e.message}));
                }
            }
        }
        let mut out = json!({"SecretValues": values, "Errors": errors});
        if let Some(t) = next {
            put(&mut out, "NextToken", json!(t));
        }
        Ok(out)
    }
}

/// `VersionStages`: at most 20 labels, each 1–256 characters; repeats count once.
pub(crate) fn stages_arg(body: In<'_>) -> Result<Option<Vec<String>>> {
    match body.str_list("VersionStages")? {
        None => Ok(None),
        Some(list) => {
            if list.len() > MAX_LABELS_PER_VERSION {
                return Err(SmError::Validation(
                    "1 validation error detected: Value at 'versionStages' failed to satisfy constraint: Member must have length less than or equal to 20".into(),
                ));
            }
            for s in &list {
                check_len("VersionStages.member", s, 1, 256)?;
            }
            let mut out: Vec<String> = Vec::new();
            for s in list {
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_string());
                }
            }
            Ok(Some(out))
        }
    }
}

impl SecretsManager {
    pub(crate) fn put_secret_value(
        &self,
        ctx: &RequestContext,
        rec: SecretRec,
        value: &SecretValue,
        token: Option<String>,
        mut stages: Vec<String>,
    ) -> Result<Value> {
        let token = token.unwrap_or_else(new_uuid);
        // "If this operation creates the first version for the secret, then Secrets Manager
        // automatically attaches the staging label AWSCURRENT to the new version." (AWS docs)
        if !rec.versions.iter().any(|v| v.has_value()) && !stages.iter().any(|s| s == AWSCURRENT) {
            stages.push(AWSCURRENT.to_string());
        }
        let (rec, labels) = self.put_version(ctx, &rec, &token, value, &stages)?;
        Ok(json!({"ARN": rec.arn, "Name": rec.name, "VersionId": token, "VersionStages": labels}))
    }

    /// UpdateSecret on `rec` (live, its KMS key known).
    pub(crate) fn update_secret(
        &self,
        ctx: &RequestContext,
        rec: SecretRec,
        description: Option<String>,
        kms_key_id: Option<String>,
        value: Option<SecretValue>,
        token: Option<String>,
    ) -> Result<Value> {
        let now = self.now_ms();
        let (rec, _) = self.update(&rec, |cur, _| {
            if let Some(d) = description {
                cur.description = Some(d);
            }
            if let Some(k) = kms_key_id {
                cur.kms_key_id = Some(k);
            }
            cur.last_changed = now;
            Ok(())
        })?;
        let mut out = json!({"ARN": rec.arn, "Name": rec.name});
        if let Some(value) = value {
            let token = token.unwrap_or_else(new_uuid);
            self.put_version(ctx, &rec, &token, &value, &[AWSCURRENT.to_string()])?;
            put(&mut out, "VersionId", json!(token));
        }
        Ok(out)
    }

    pub(crate) fn update_secret_version_stage(
        &self,
        rec: SecretRec,
        stage: &str,
        remove_from: Option<&str>,
        move_to: Option<&str>,
    ) -> Result<Value> {
        if remove_from.is_none() && move_to.is_none() {
            return Err(SmError::InvalidParameter(
                "You must specify either RemoveFromVersionId or MoveToVersionId.".into(),
            ));
        }
        let (rec, _) = self.update(&rec, |cur, _| {
            if let Some(to) = move_to {
                let v = cur.version(to).ok_or_else(|| {
                    SmError::InvalidParameter(format!("The version {to} doesn't exist for secret {}.", cur.name))
                })?;
                if !v.has(stage) && v.stages.len() >= MAX_LABELS_PER_VERSION {
                    return Err(SmError::LimitExceeded(
                        "A version can't have more than 20 staging labels.".into(),
                    ));
                }
            }
            let holder = cur.with_stage(stage).map(|v| v.id.clone());
            match (&holder, remove_from, move_to) {
                // Moving a label that is attached elsewhere requires naming where it comes from.
                (Some(h), None, Some(to)) if h != to => {
                    return Err(SmError::InvalidParameter(format!(
                        "The parameter RemoveFromVersionId can't be empty. Staging label {stage} is currently attached to version {h}, so you must explicitly reference that version in RemoveFromVersionId."
                    )))
                }
                (Some(h), Some(from), _) if h != from => {
                    return Err(SmError::InvalidParameter(format!(
                        "The staging label {stage} is currently attached to version {h}, not to version {from}."
                    )))
                }
                (None, Some(from), _) if cur.version(from).is_none() => {
                    return Err(SmError::InvalidParameter(format!(
                        "The version {from} doesn't exist for secret {}.",
                        cur.name
                    )));
                }
                _ => {}
            }
            match move_to {
                Some(to) => cur.move_stage(stage, to),
                None => {
                    if stage == AWSCURRENT {
                        return Err(SmError::InvalidParameter(
                            "You can only move staging label AWSCURRENT to a different secret version. It can't be completely removed.".into(),
                        ));
                    }
                    if let Some(from) = remove_from {
                        cur.remove_stage(stage, from);
                    }
                }
            }
            cur.last_changed = self.now_ms();
            Ok(())
        })?;
        Ok(json!({"ARN": rec.arn, "Name": rec.name}))
    }

    /// ListSecretVersionIds of `rec` (live).
    pub(crate) fn list_secret_version_ids(
        rec: &SecretRec,
        include_deprecated: bool,
        max: usize,
        next_token: Option<&str>,
    ) -> Result<Value> {
        // Newest first, as AWS lists them.
        let versions: Vec<&VersionMeta> =
            rec.versions.iter().rev().filter(|v| include_deprecated || !v.stages.is_empty()).collect();
        let start = match next_token {
            None => 0,
            Some(t) => {
                let id = B64
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| SmError::InvalidNextToken("The NextToken value is invalid.".into()))?;
                versions
                    .iter()
                    .position(|v| v.id == id)
                    .map(|p| p + 1)
                    .ok_or_else(|| SmError::InvalidNextToken("The NextToken value is invalid.".into()))?
            }
        };
        let page: Vec<&&VersionMeta> = versions.iter().skip(start).take(max).collect();
        let list: Vec<Value> = page
            .iter()
            .map(|v| {
                // A version without labels has no VersionStages member (recorded AWS responses).
                let mut o = json!({"VersionId": v.id, "CreatedDate": ts(v.created)});
                if !v.stages.is_empty() {
                    put(&mut o, "VersionStages", json!(v.stages));
                }
                if let Some(t) = v.last_accessed {
                    put(&mut o, "LastAccessedDate", ts(t));
                }
                // Under the AWS managed key AWS names it "DefaultEncryptionKey".
                if let Some(k) = &v.key_arn {
                    let k = if rec.kms_key_id.is_none() { "DefaultEncryptionKey" } else { k.as_str() };
                    put(&mut o, "KmsKeyIds", json!([k]));
                }
                o
            })
            .collect();
        let mut out = json!({"ARN": rec.arn, "Name": rec.name, "Versions": list});
        if start + page.len() < versions.len() {
            if let Some(last) = page.last() {
                put(&mut out, "NextToken", json!(B64.encode(&last.id)));
            }
        }
        Ok(out)
    }

    /// DeleteSecret of `id`, found as `rec` (the window and `force` already checked).
    pub(crate) fn delete_secret(
        &self,
        ctx: &RequestContext,
        id: &str,
        rec: Option<SecretRec>,
        window: Option<i64>,
        force: bool,
    ) -> Result<Value> {
        let now = self.now_ms();
        let rec = match rec {
            Some(rec) => rec,
            // AWS answers a forced deletion of a secret that does not exist with success (it is
            // idempotent): there is nothing left to delete.
            None if force => {
                let (arn, name) = match crate::parse_secret_arn(id) {
                    Some(_) => (id.to_string(), id.rsplit(':').next().unwrap_or(id).to_string()),
                    None => (new_secret_arn(ctx, id), id.to_string()),
                };
                return Ok(json!({"ARN": arn, "Name": name, "DeletionDate": ts(now)}));
            }
            None => return Err(SmError::not_found()),
        };
        if !rec.replicas.is_empty() {
            let regions: Vec<&str> = rec.replicas.iter().map(|r| r.region.as_str()).collect();
            return Err(SmError::InvalidParameter(format!(
                "You can't delete secret {} that still has replica regions [{}]",
                rec.arn,
                regions.join(", ")
            )));
        }
        if force {
            self.purge(&rec)?;
            return Ok(json!({"ARN": rec.arn, "Name": rec.name, "DeletionDate": ts(now)}));
        }
        if rec.is_deleted() {
            return Err(SmError::InvalidRequest(
                "You can't perform this operation on the secret because it was already scheduled for deletion.".into(),
            ));
        }
        let days = window.unwrap_or(30);
        let (rec, _) = self.update(&rec, |cur, _| {
            cur.deleted = Some(now);
            cur.deletion_date = Some(now + days * 86_400_000);
            Ok(())
        })?;
        Ok(json!({"ARN": rec.arn, "Name": rec.name, "DeletionDate": ts(rec.deletion_date.unwrap_or(now))}))
    }

    pub(crate) fn restore_secret(&self, rec: SecretRec) -> Result<Value> {
        let (rec, _) = self.update(&rec, |cur, _| {
            cur.deleted = None;
            cur.deletion_date = None;
            Ok(())
        })?;
        Ok(json!({"ARN": rec.arn, "Name": rec.name}))
    }

    /// PutResourcePolicy on `rec` (live): the document must compile and, unless `block_public`
    /// is off, must not grant public access.
    pub(crate) fn put_resource_policy(&self, rec: SecretRec, doc: String, block_public: bool) -> Result<Value> {
        Policy::parse(&doc, PolicyType::Resource).map_err(|e| {
            SmError::MalformedPolicy(format!("This resource policy contains a syntax error: {}", e.message))
        })?;
        if block_public && grants_public_access(&doc) {
            return Err(SmError::PublicPolicy("This resource policy grants public access to the secret. Remove the public statements or set BlockPublicPolicy to false.".into()));
        }
        let now = self.now_ms();
        let (rec, _) = self.update(&rec, |cur, _| {
            cur.policy = Some(doc);
            cur.last_changed = now;
            Ok(())
        })?;
        Ok(json!({"ARN": rec.arn, "Name": rec.name}))
    }

    pub(crate) fn get_resource_policy(&self, rec: &SecretRec) -> Value {
        let mut out = json!({"ARN": rec.arn, "Name": rec.name});
        if let Some(p) = &rec.policy {
            put(&mut out, "ResourcePolicy", json!(p));
        }
        out
    }

    pub(crate) fn delete_resource_policy(&self, rec: SecretRec) -> Result<Value> {
        let now = self.now_ms();
        let (rec, _) = self.update(&rec, |cur, _| {
            cur.policy = None;
            cur.last_changed = now;
            Ok(())
        })?;
        Ok(json!({"ARN": rec.arn, "Name": rec.name}))
    }

    /// ValidateResourcePolicy's findings on `doc`.
    pub(crate) fn validate_resource_policy(doc: &str) -> Value {
        let mut errors = Vec::new();
        match Policy::parse(doc, PolicyType::Resource) {
            Err(e) => errors.push(json!({"CheckName": "SYNTAX_CHECK", "ErrorMessage": e.message})),
            Ok(_) => {
                if grants_public_access(doc) {
                    errors.push(json!({
                        "CheckName": "PUBLIC_ACCESS_CHECK",
                        "ErrorMessage": "This resource policy grants public access to the secret."
                    }));
                }
            }
        }
        json!({"PolicyValidationPassed": errors.is_empty(), "ValidationErrors": errors})
    }

    pub(crate) fn tag_resource(&self, rec: SecretRec, tags: &[(String, String)]) -> Result<Value> {
        let now = self.now_ms();
        self.update(&rec, |cur, _| {
            merge_tags(&mut cur.tags, tags)?;
            cur.tagged = true;
            cur.last_changed = now;
            Ok(())
        })?;
        Ok(json!({}))
    }

    pub(crate) fn untag_resource(&self, rec: SecretRec, keys: &[String]) -> Result<Value> {
        let now = self.now_ms();
        self.update(&rec, |cur, _| {
            cur.tags.retain(|(k, _)| !keys.contains(k));
            cur.tagged = true;
            cur.last_changed = now;
            Ok(())
        })?;
        Ok(json!({}))
    }
}

/// Words as AWS's search splits them: on non-alphanumerics, before an uppercase letter that
/// follows a lowercase letter or digit, and before the last uppercase letter of a run that a
/// lowercase letter follows (`COMPANYthings` → `compan`, `ythings`); lowercased. Digits do not
/// start a word of their own.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur).to_lowercase());
            }
            continue;
        }
        if c.is_uppercase() && !cur.is_empty() {
            let Some(&prev) = i.checked_sub(1).and_then(|p| chars.get(p)) else {
                cur.push(c);
                continue;
            };
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_numeric() || (prev.is_uppercase() && next_lower) {
                out.push(std::mem::take(&mut cur).to_lowercase());
            }
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur.to_lowercase());
    }
    out
}

/// Whether every word of `needle` starts a word of one of `attributes` (case-insensitive).
fn words_match<'a>(needle: &str, attributes: impl Iterator<Item = &'a str>) -> bool {
    let needles = words(needle);
    if needles.is_empty() {
        return false;
    }
    let haystack: Vec<String> = attributes.flat_map(words).collect();
    needles.iter().all(|n| haystack.iter().any(|h| h.starts_with(n.as_str())))
}

/// Condition keys that pin a statement to known principals, accounts or networks.
const RESTRICTING_KEYS: &[&str] = &[
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceowner",
    "aws:sourceorgid",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceip",
    "aws:userid",
    "aws:username",
];

/// Whether an Allow statement lets anyone (`"*"` principal) in without a restricting condition.
pub(crate) fn grants_public_access(doc: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(doc) else { return false };
    let statements = match v.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => return false,
    };
    statements.iter().any(|st| {
        if st.get("Effect").and_then(Value::as_str) != Some("Allow") {
            return false;
        }
        let public_principal = match st.get("Principal") {
            Some(Value::String(s)) => s == "*",
            Some(Value::Object(m)) => m.get("AWS").is_some_and(|a| match a {
                Value::String(s) => s == "*",
                Value::Array(items) => items.iter().any(|i| i.as_str() == Some("*")),
                _ => false,
            }),
            _ => false,
        } || st.get("NotPrincipal").is_some();
        if !public_principal {
            return false;
        }
        let restricted = st.get("Condition").and_then(Value::as_object).is_some_and(|ops| {
            ops.values()
                .filter_map(Value::as_object)
                .any(|keys| keys.keys().any(|k| RESTRICTING_KEYS.contains(&k.to_ascii_lowercase().as_str())))
        });
        !restricted
    })
}

/// ListResourcePolicies of `rec`: `default` when it has a policy. The list has at most one name,
/// so no answer carries a NextToken and any token given is not one Rampart issued.
pub(crate) fn list_resource_policies(rec: &SecretRec, max: usize, next_token: Option<&str>) -> Result<Value> {
    if next_token.is_some() {
        return Err(SmError::InvalidNextToken("The NextToken value is invalid.".into()));
    }
    let names: Vec<Value> =
        rec.policy.iter().take(max).map(|_| json!({"PolicyName": crate::ops::DEFAULT_POLICY_NAME})).collect();
    Ok(json!({"ResourcePolicies": names}))
}

/// The name of the policy PutResourcePolicy sets.
pub(crate) const DEFAULT_POLICY_NAME: &str = "default";

/// The AWS managed key `aws/secretsmanager` cannot be used from another account (its key policy
/// names only its own account, and nobody can change it), so AWS refuses reading or writing the
/// value of such a secret across accounts before asking KMS — with this message, not KMS's
/// AccessDenied.
fn default_key_stays_home(ctx: &RequestContext, rec: &SecretRec) -> Result<()> {
    let owner = rec.arn.split(':').nth(4).unwrap_or_default();
    let default_key = match rec.kms_key_id.as_deref() {
        None => true,
        Some(k) => k == crate::keys::DEFAULT_KEY_ALIAS || k.ends_with(&format!(":{}", crate::keys::DEFAULT_KEY_ALIAS)),
    };
    if default_key && owner != ctx.caller.account_id {
        return Err(SmError::InvalidRequest(
            "You can't access a secret from a different AWS account if you encrypt the secret with the default KMS service key."
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn search_words() {
        assert_eq!(words("credsDatabase#892"), vec!["creds", "database", "892"]);
        assert_eq!(words("My_Secret"), vec!["my", "secret"]);
        // Acronyms keep their letters but the last, which starts the next word; digits do not split.
        assert_eq!(words("uat/COMPANYthings/9f8a7b"), vec!["uat", "compan", "ythings", "9f8a7b"]);
        assert_eq!(words("SecretFTag3d4e"), vec!["secret", "f", "tag3d4e"]);
        assert_eq!(words("+"), Vec::<String>::new());
    }

    #[test]
    fn search_by_words() {
        assert!(words_match("o t", ["one and two"].into_iter()));
        assert!(words_match("Secret", ["SecretOne", "desc"].into_iter()));
        assert!(!words_match("ret", ["SecretOne"].into_iter()));
        assert!(!words_match("things", ["uat/COMPANYthings/x"].into_iter()));
        assert!(!words_match("d", ["SecretOne9f8a3d"].into_iter()));
        assert!(!words_match("+", ["prod+AppBeta"].into_iter()));
    }

    #[test]
    fn public_policies() {
        let p = |principal: &str, cond: &str| {
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal},"Action":"secretsmanager:GetSecretValue","Resource":"*"{cond}}}]}}"#
            )
        };
        assert!(grants_public_access(&p("\"*\"", "")));
        assert!(grants_public_access(&p(r#"{"AWS":"*"}"#, "")));
        assert!(grants_public_access(&p(r#"{"AWS":["arn:aws:iam::111122223333:root","*"]}"#, "")));
        assert!(!grants_public_access(&p(r#"{"AWS":"arn:aws:iam::111122223333:root"}"#, "")));
        assert!(!grants_public_access(&p(
            "\"*\"",
            r#","Condition":{"StringEquals":{"aws:PrincipalAccount":"111122223333"}}"#
        )));
        assert!(grants_public_access(&p("\"*\"", r#","Condition":{"StringEquals":{"aws:UserAgent":"x"}}"#)));
    }

    #[test]
    fn resource_policy_names() {
        let mut rec = SecretRec::default();
        assert_eq!(list_resource_policies(&rec, 100, None).unwrap(), json!({"ResourcePolicies": []}));
        rec.policy = Some("{}".into());
        assert_eq!(
            list_resource_policies(&rec, 1, None).unwrap(),
            json!({"ResourcePolicies": [{"PolicyName": "default"}]})
        );
        assert!(matches!(list_resource_policies(&rec, 1, Some("t")), Err(SmError::InvalidNextToken(_))));
    }
}
