//! Custom key stores: external key stores (XKS) whose keys are double-encrypted — by KMS with
//! its own key material, then by the customer's external key store proxy — and AWS's answer for
//! CloudHSM key stores (Rampart has no CloudHSM clusters: `CloudHsmClusterNotFoundException`).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rampart_service::{op, AuthzPlan, Entry, Input, Operation, Output, RequestContext};
use rampart_store::{transact, ReadExt, TransactionExt};
use rand::RngCore;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::{account_plan, empty, Page};
use crate::core::{Kms, Loaded};
use crate::crypto;
use crate::error::{KmsError, Result};
use crate::input::{invalid, invalid_value, missing, In};
use crate::model::*;
use crate::xks::{self, Proxy, XksFailure};

/// The operations of this family, each listed once.
pub(super) const OPS: &[Entry<Kms>] = &[
    op::<Kms, CreateCustomKeyStore>(),
    op::<Kms, DescribeCustomKeyStores>(),
    op::<Kms, UpdateCustomKeyStore>(),
    op::<Kms, DeleteCustomKeyStore>(),
    op::<Kms, ConnectCustomKeyStore>(),
    op::<Kms, DisconnectCustomKeyStore>(),
];

/// AWS's quota: custom key stores per account and Region.
const MAX_STORES: usize = 10;

const ENDPOINT_PATTERN: &str = "^https://[a-zA-Z0-9.-]+$";
const PATH_PATTERN: &str = "^(/[a-zA-Z0-9\\/_-]+/kms/xks/v\\d{1,2})$|^(/kms/xks/v\\d{1,2})$";
const ACCESS_KEY_PATTERN: &str = "^[A-Z2-7]+$";
const SECRET_PATTERN: &str = "^[a-zA-Z0-9\\/+=]+$";
const VPC_SERVICE_PATTERN: &str = "^(com|eu)\\.amazonaws\\.vpce\\.([a-z]+-){2,3}\\d+\\.vpce-svc-[0-9a-z]+$";
const CLUSTER_PATTERN: &str = "cluster-[2-7a-zA-Z]{11,16}";
const XKS_KEY_PATTERN: &str = "^[a-zA-Z0-9-_.]+$";

fn pattern_error(member: &str, pattern: &str) -> KmsError {
    invalid(member, &format!("Member must satisfy regular expression pattern: {pattern}"))
}

fn coded(code: &'static str, message: String) -> KmsError {
    KmsError::Coded(code, 400, message)
}

/// AWS answers an unknown custom key store ID without a message (the developer guide's
/// "Deleting an external key store" shows the CLI's output).
fn not_found(_id: &str) -> KmsError {
    coded("CustomKeyStoreNotFoundException", String::new())
}

fn invalid_state(id: &str, state: &str, op: &str) -> KmsError {
    coded(
        "CustomKeyStoreInvalidStateException",
        format!("Custom key store {id} has connection state {state}, which is not valid for {op}."),
    )
}

/// `https://host` (or, where allowed, `http://` and `:port`): `(endpoint, outside AWS's pattern)`.
fn endpoint(i: &In<'_>, member: &str) -> Result<Option<(String, bool)>> {
    let Some(e) = i.str_len(member, 10, 128)? else { return Ok(None) };
    let (rest, http) = match (e.strip_prefix("https://"), e.strip_prefix("http://")) {
        (Some(r), _) => (r, false),
        (None, Some(r)) => (r, true),
        _ => return Err(pattern_error(member, ENDPOINT_PATTERN)),
    };
    let (host, port) = match rest.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if !host_ok || !port_ok {
        return Err(pattern_error(member, ENDPOINT_PATTERN));
    }
    Ok(Some((e.to_string(), http || port.is_some())))
}

fn uri_path(i: &In<'_>, member: &str) -> Result<Option<String>> {
    let Some(p) = i.str_len(member, 10, 128)? else { return Ok(None) };
    let version_ok = |v: &str| {
        v.strip_prefix("/kms/xks/v")
            .is_some_and(|d| (1..=2).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
    };
    let ok = match p.rfind("/kms/xks/v") {
        Some(0) => version_ok(p),
        Some(at) => {
            let (prefix, tail) = p.split_at(at);
            version_ok(tail)
                && prefix.starts_with('/')
                && prefix.len() > 1
                && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
        }
        None => false,
    };
    if !ok {
        return Err(pattern_error(member, PATH_PATTERN));
    }
    Ok(Some(p.to_string()))
}

/// `XksProxyAuthenticationCredential`: `(AccessKeyId, RawSecretAccessKey)`.
fn credential(i: &In<'_>) -> Result<Option<(String, Zeroizing<String>)>> {
    let Some(v) = i.0.get("XksProxyAuthenticationCredential").filter(|v| !v.is_null()) else { return Ok(None) };
    if !v.is_object() {
        return Err(KmsError::Serialization("Member XksProxyAuthenticationCredential must be a structure".into()));
    }
    let c = In(v);
    let member = |m: &str| format!("xksProxyAuthenticationCredential.{m}");
    let akid = c.str("AccessKeyId")?.ok_or_else(|| missing(&member("accessKeyId")))?;
    let n = akid.chars().count();
    if !(20..=30).contains(&n) {
        return Err(invalid(&member("accessKeyId"), "Member must have length between 20 and 30"));
    }
    if !akid.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)) {
        return Err(pattern_error(&member("accessKeyId"), ACCESS_KEY_PATTERN));
    }
    let secret = c.str("RawSecretAccessKey")?.ok_or_else(|| missing(&member("rawSecretAccessKey")))?;
    let n = secret.chars().count();
    if !(43..=64).contains(&n) {
        return Err(invalid(&member("rawSecretAccessKey"), "Member must have length between 43 and 64"));
    }
    if !secret.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'=')) {
        return Err(pattern_error(&member("rawSecretAccessKey"), SECRET_PATTERN));
    }
    Ok(Some((akid.to_string(), Zeroizing::new(secret.to_string()))))
}

fn connectivity(i: &In<'_>) -> Result<Option<String>> {
    match i.str("XksProxyConnectivity")? {
        None => Ok(None),
        Some(c @ ("PUBLIC_ENDPOINT" | "VPC_ENDPOINT_SERVICE")) => Ok(Some(c.to_string())),
        Some(c) => Err(invalid_value(
            "XksProxyConnectivity",
            c,
            "Member must satisfy enum value set: [PUBLIC_ENDPOINT, VPC_ENDPOINT_SERVICE]",
        )),
    }
}

/// The VPC endpoint service members (validated; Rampart has no VPC endpoint services).
fn vpc_members(i: &In<'_>) -> Result<Option<String>> {
    let name = i.str_len("XksProxyVpcEndpointServiceName", 20, 64)?;
    if let Some(n) = name {
        let ok = (n.starts_with("com.amazonaws.vpce.") || n.starts_with("eu.amazonaws.vpce."))
            && n.contains(".vpce-svc-")
            && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !ok {
            return Err(pattern_error("XksProxyVpcEndpointServiceName", VPC_SERVICE_PATTERN));
        }
    }
    if let Some(o) = i.str_len("XksProxyVpcEndpointServiceOwner", 12, 12)? {
        if !o.bytes().all(|b| b.is_ascii_digit()) {
            return Err(pattern_error("XksProxyVpcEndpointServiceOwner", "[0-9]{12}"));
        }
    }
    Ok(name.map(str::to_string))
}

/// The CloudHSM members (validated).
fn cloudhsm_members(i: &In<'_>) -> Result<Option<String>> {
    let cluster = i.str_len("CloudHsmClusterId", 19, 24)?;
    if let Some(c) = cluster {
        let ok = c.strip_prefix("cluster-").is_some_and(|r| {
            (11..=16).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphabetic() || (b'2'..=b'7').contains(&b))
        });
        if !ok {
            return Err(pattern_error("CloudHsmClusterId", CLUSTER_PATTERN));
        }
    }
    i.str_len("KeyStorePassword", 7, 32)?;
    Ok(cluster.map(str::to_string))
}

fn store_id(i: &In<'_>) -> Result<String> {
    Ok(i.req_str_len("CustomKeyStoreId", 1, 64)?.to_string())
}

/// The members a proxy connection is made with.
struct ProxySettings {
    endpoint: String,
    path: String,
    access_key_id: String,
    secret: Zeroizing<String>,
}

impl Kms {
    /// Accept `http://` proxy endpoints and explicit ports (`--dev`, `RAMPART_KMS_XKS_ALLOW_HTTP=1`).
    /// AWS requires `https://` on port 443.
    pub fn allow_xks_http(&self, allow: bool) {
        self.xks_allow_http.store(allow, Ordering::Relaxed);
    }

    /// Whether a KMS call might call an external key store proxy (a custom key store exists):
    /// the pipeline then runs KMS's cryptographic calls off its serving threads.
    pub fn may_call_out(&self) -> bool {
        self.xks_in_use.load(Ordering::Relaxed)
    }

    fn check_endpoint_allowed(&self, endpoint: &Option<(String, bool)>, member: &str) -> Result<()> {
        match endpoint {
            Some((_, true)) if !self.xks_allow_http.load(Ordering::Relaxed) => {
                Err(pattern_error(member, ENDPOINT_PATTERN))
            }
            _ => Ok(()),
        }
    }

    fn stores(&self, account: &str, region: &str) -> Result<Vec<StoreRec>> {
        let mut v: Vec<StoreRec> = self
            .store
            .scan_json::<StoreRec>(STORES, &format!("{account}/{region}/"))?
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        v.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
        Ok(v)
    }

    fn load_store(&self, ctx: &RequestContext, id: &str) -> Result<StoreRec> {
        self.store
            .get_json::<StoreRec>(STORES, &store_store_key(&ctx.caller.account_id, &ctx.region, id))?
            .ok_or_else(|| not_found(id))
    }

    fn seal_secret(&self, sk: &str, secret: &str) -> Result<String> {
        Ok(B64.encode(self.seal_aux(&format!("xks-secret/{sk}"), secret.as_bytes())?))
    }

    fn open_secret(&self, s: &StoreRec) -> Result<Zeroizing<String>> {
        let sealed = B64.decode(&s.sealed_secret).map_err(|_| KmsError::Internal("sealed XKS secret".into()))?;
        let raw = self
            .open_aux(&format!("xks-secret/{}", s.store_key()), &sealed)
            .ok_or_else(|| KmsError::Internal(format!("the proxy credential of {} does not open", s.id)))?;
        String::from_utf8(raw.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| KmsError::Internal("XKS secret is not UTF-8".into()))
    }

    /// The proxy of a custom key store, with its credential opened.
    fn with_proxy<T>(&self, s: &StoreRec, f: impl FnOnce(&Proxy<'_>) -> T) -> Result<T> {
        let secret = self.open_secret(s)?;
        Ok(f(&Proxy {
            endpoint: &s.uri_endpoint,
            path: &s.uri_path,
            access_key_id: &s.access_key_id,
            secret: &secret,
            region: &s.region,
        }))
    }

    /// Uniqueness of a store's name and proxy address among the account's stores in the Region.
    fn check_unique(
        &self,
        others: &[StoreRec],
        me: Option<&str>,
        name: &str,
        endpoint: &str,
        path: &str,
    ) -> Result<()> {
        for o in others.iter().filter(|o| Some(o.id.as_str()) != me) {
            if o.name == name {
                return Err(coded(
                    "CustomKeyStoreNameInUseException",
                    format!("Custom key store name '{name}' is already in use in this account and Region."),
                ));
            }
            if o.uri_endpoint == endpoint && o.uri_path == path {
                return Err(coded(
                    "XksProxyUriInUseException",
                    format!("The XKS proxy URI {endpoint}{path} is already associated with custom key store {}.", o.id),
                ));
            }
            if o.uri_endpoint == endpoint && o.connectivity != "PUBLIC_ENDPOINT" {
                return Err(coded(
                    "XksProxyUriEndpointInUseException",
                    format!(
                        "The XKS proxy URI endpoint {endpoint} is already associated with custom key store {}.",
                        o.id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// CreateCustomKeyStore / UpdateCustomKeyStore's check of a public-endpoint proxy: KMS
    /// connects to it (GetHealthStatus) before it accepts the settings.
    fn verify_proxy(&self, ctx: &RequestContext, op: &str, p: &ProxySettings) -> Result<()> {
        let proxy = Proxy {
            endpoint: &p.endpoint,
            path: &p.path,
            access_key_id: &p.access_key_id,
            secret: &p.secret,
            region: &ctx.region,
        };
        match xks::health(&proxy, op, &ctx.request_id) {
            Ok(()) => Ok(()),
            Err(XksFailure::Unreachable | XksFailure::TimedOut) => Err(coded(
                "XksProxyUriUnreachableException",
                format!("KMS cannot reach the external key store proxy at {}{}.", p.endpoint, p.path),
            )),
            Err(XksFailure::Proxy { status: 401 | 403, .. }) => Err(coded(
                "XksProxyIncorrectAuthenticationCredentialException",
                "The external key store proxy rejected KMS's request: the proxy authentication credential is not valid on the proxy.".into(),
            )),
            Err(f) if f.named("InvalidUriPathException") => Err(coded(
                "XksProxyInvalidConfigurationException",
                format!("The external key store proxy does not serve the path {}.", p.path),
            )),
            Err(_) => Err(coded(
                "XksProxyInvalidResponseException",
                "KMS cannot interpret the response it received from the external key store proxy.".into(),
            )),
        }
    }

    /// The store a key in an external key store lives in, which must be connected.
    fn connected_store_of(&self, key: &Loaded) -> Result<StoreRec> {
        let id = key.rec.custom_key_store_id.as_deref().unwrap_or_default();
        let s = self.store.get_json::<StoreRec>(STORES, &store_store_key(&key.rec.account, &key.rec.region, id))?;
        match s {
            Some(s) if s.state == "CONNECTED" => Ok(s),
            _ => Err(KmsError::InvalidState(format!("{} is unavailable.", key.arn))),
        }
    }

    /// Whether a key's custom key store is connected (DescribeKey's `Unavailable` state).
    pub(crate) fn key_store_connected(&self, rec: &KeyRec) -> Result<bool> {
        let Some(id) = rec.custom_key_store_id.as_deref() else { return Ok(true) };
        let s = self.store.get_json::<StoreRec>(STORES, &store_store_key(&rec.account, &rec.region, id))?;
        Ok(s.is_some_and(|s| s.state == "CONNECTED"))
    }

    fn xks_metadata(ctx: &RequestContext, key: &Loaded, op: &str) -> Value {
        json!({
            "awsPrincipalArn": ctx.caller.arn,
            "kmsKeyArn": key.arn,
            "kmsOperation": op,
            "kmsRequestId": ctx.request_id,
        })
    }

    fn xks_failure(key: &Loaded, f: XksFailure) -> KmsError {
        match f {
            XksFailure::TimedOut => KmsError::Coded(
                "DependencyTimeoutException",
                503,
                "The external key store proxy did not respond in time.".into(),
            ),
            XksFailure::Proxy { ref name, .. } if name == "InvalidCiphertextException" => {
                KmsError::InvalidCiphertext(String::new())
            }
            XksFailure::Proxy { ref name, .. } if name == "KeyNotFoundException" => KmsError::InvalidState(format!(
                "{} is unavailable: the external key store proxy cannot find its external key.",
                key.arn
            )),
            XksFailure::Unreachable => KmsError::InvalidState(format!(
                "{} is unavailable: KMS cannot reach the external key store proxy.",
                key.arn
            )),
            _ => KmsError::InvalidState(format!(
                "{} is unavailable: the external key store proxy did not complete the request.",
                key.arn
            )),
        }
    }

    /// Double encryption, second layer: the proxy encrypts KMS's ciphertext `inner` with the
    /// external key, bound (AAD) to the blob's header and the encryption context.
    pub(crate) fn xks_wrap(
        &self,
        ctx: &RequestContext,
        op: &str,
        key: &Loaded,
        header: &[u8],
        inner: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>> {
        let s = self.connected_store_of(key)?;
        let xks_key = key.rec.xks_key_id.as_deref().unwrap_or_default();
        let aad = [header, &crypto::context_aad(context)].concat();
        let meta = Self::xks_metadata(ctx, key, op);
        let sealed = self
            .with_proxy(&s, |p| xks::encrypt(p, xks_key, &meta, inner, &aad))?
            .map_err(|f| Self::xks_failure(key, f))?;
        Ok([header, &xks::encode(&sealed)].concat())
    }

    /// The proxy's layer of a double-encrypted blob off: KMS's own ciphertext.
    pub(crate) fn xks_unwrap(
        &self,
        ctx: &RequestContext,
        op: &str,
        key: &Loaded,
        blob: &[u8],
        header_len: usize,
        context: &BTreeMap<String, String>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let (header, body) =
            blob.split_at_checked(header_len).ok_or_else(|| KmsError::InvalidCiphertext(String::new()))?;
        let sealed = xks::decode(body).ok_or_else(|| KmsError::InvalidCiphertext(String::new()))?;
        let s = self.connected_store_of(key)?;
        let xks_key = key.rec.xks_key_id.as_deref().unwrap_or_default();
        let aad = [header, &crypto::context_aad(context)].concat();
        let meta = Self::xks_metadata(ctx, key, op);
        self.with_proxy(&s, |p| xks::decrypt(p, xks_key, &meta, &sealed, &aad))?.map_err(|f| Self::xks_failure(key, f))
    }

    /// CreateKey in an external key store: the store is connected, the external key unused by
    /// the store's other keys, and the proxy reports it an enabled AES-256 key that encrypts
    /// and decrypts.
    pub(crate) fn check_xks_key(&self, ctx: &RequestContext, store_id: &str, xks_key_id: &str) -> Result<()> {
        let s = self.load_store(ctx, store_id)?;
        if s.state != "CONNECTED" {
            return Err(invalid_state(&s.id, &s.state, "CreateKey"));
        }
        self.check_xks_key_unused(&s, xks_key_id)?;
        let meta = json!({
            "awsPrincipalArn": ctx.caller.arn,
            "kmsOperation": "CreateKey",
            "kmsRequestId": ctx.request_id,
        });
        match self.with_proxy(&s, |p| xks::key_usable(p, xks_key_id, &meta))? {
            Ok(true) => Ok(()),
            Ok(false) => Err(coded(
                "XksKeyInvalidConfigurationException",
                format!("The external key {xks_key_id} must be an enabled AES-256 symmetric key that encrypts and decrypts."),
            )),
            Err(f) if f.named("KeyNotFoundException") => Err(coded(
                "XksKeyNotFoundException",
                format!("The external key store proxy cannot find the external key {xks_key_id}."),
            )),
            Err(XksFailure::TimedOut) => Err(KmsError::Coded(
                "DependencyTimeoutException",
                503,
                "The external key store proxy did not respond in time.".into(),
            )),
            Err(_) => Err(coded(
                "CustomKeyStoreInvalidStateException",
                format!("KMS cannot use the external key store proxy of custom key store {}.", s.id),
            )),
        }
    }

    pub(crate) fn check_xks_key_unused(&self, s: &StoreRec, xks_key_id: &str) -> Result<()> {
        let used =
            self.store.scan_json::<KeyRec>(KEYS, &format!("{}/{}/", s.account, s.region))?.into_iter().any(|(_, k)| {
                k.custom_key_store_id.as_deref() == Some(&s.id) && k.xks_key_id.as_deref() == Some(xks_key_id)
            });
        if used {
            return Err(coded(
                "XksKeyAlreadyInUseException",
                format!(
                    "The external key {xks_key_id} is already associated with a KMS key in custom key store {}.",
                    s.id
                ),
            ));
        }
        Ok(())
    }

    /// Insert a new key in an external key store, its external key still unused by the store's
    /// other keys (re-checked in the transaction).
    pub(crate) fn insert_xks_key(&self, rec: &KeyRec) -> Result<()> {
        let (Some(store), Some(xks_key)) = (rec.custom_key_store_id.as_deref(), rec.xks_key_id.as_deref()) else {
            return self.insert_key(rec);
        };
        transact(self.store.as_ref(), |tx| -> Result<()> {
            let used =
                tx.scan_json::<KeyRec>(KEYS, &format!("{}/{}/", rec.account, rec.region))?.into_iter().any(|(_, k)| {
                    k.custom_key_store_id.as_deref() == Some(store) && k.xks_key_id.as_deref() == Some(xks_key)
                });
            if used {
                return Err(coded(
                    "XksKeyAlreadyInUseException",
                    format!(
                        "The external key {xks_key} is already associated with a KMS key in custom key store {store}."
                    ),
                ));
            }
            tx.put_json(KEYS, &rec.store_key(), rec)?;
            Ok(())
        })?;
        self.mark_xks_in_use();
        Ok(())
    }

    pub(crate) fn mark_xks_in_use(&self) {
        self.xks_in_use.store(true, Ordering::Relaxed);
    }
}

/// GenerateRandom's answer for a `CustomKeyStoreId` (as its API reference says: "External key store
/// IDs are not valid for this parameter"; Rampart has no CloudHSM key stores).
pub(super) fn random_in_store(kms: &Kms, ctx: &RequestContext, id: &str) -> KmsError {
    match kms.load_store(ctx, id) {
        Ok(s) => KmsError::Unsupported(format!(
            "{} is an external key store; GenerateRandom takes the ID of an AWS CloudHSM key store only.",
            s.id
        )),
        Err(e) => e,
    }
}

/// `CustomKeyStoreId` and `XksKeyId` of CreateKey with `Origin=EXTERNAL_KEY_STORE`.
pub(super) fn xks_key_input(i: &In<'_>) -> Result<Option<(String, String)>> {
    let store = i.str_len("CustomKeyStoreId", 1, 64)?;
    let key = i.str_len("XksKeyId", 1, 128)?;
    if let Some(k) = key {
        if !k.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
            return Err(pattern_error("XksKeyId", XKS_KEY_PATTERN));
        }
    }
    Ok(store.zip(key).map(|(s, k)| (s.to_string(), k.to_string())))
}

/// What CreateCustomKeyStore makes.
enum NewStore {
    /// Rampart has no CloudHSM clusters.
    CloudHsm {
        cluster: String,
    },
    /// AWS cannot find a VPC endpoint service Rampart does not have.
    Vpc {
        service: String,
    },
    Public(ProxySettings),
}

pub(super) struct CreateCustomKeyStore {
    name: String,
    endpoint: Option<(String, bool)>,
    store: NewStore,
}

impl Operation<Kms> for CreateCustomKeyStore {
    const NAME: &'static str = "CreateCustomKeyStore";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        let name = i.req_str_len("CustomKeyStoreName", 1, 256)?.to_string();
        let cluster = cloudhsm_members(&i)?;
        i.str_len("TrustAnchorCertificate", 1, 5000)?;
        let kind = i.str("CustomKeyStoreType")?;
        if let Some(k) = kind {
            if !matches!(k, "AWS_CLOUDHSM" | "EXTERNAL_KEY_STORE") {
                return Err(invalid_value(
                    "CustomKeyStoreType",
                    k,
                    "Member must satisfy enum value set: [AWS_CLOUDHSM, EXTERNAL_KEY_STORE]",
                ));
            }
        }
        let endpoint = endpoint(&i, "XksProxyUriEndpoint")?;
        let path = uri_path(&i, "XksProxyUriPath")?;
        let vpc = vpc_members(&i)?;
        let cred = credential(&i)?;
        let connectivity = connectivity(&i)?;
        let store = if kind == Some("EXTERNAL_KEY_STORE") {
            if cluster.is_some() || i.has("TrustAnchorCertificate") || i.has("KeyStorePassword") {
                return Err(KmsError::Validation(
                    "CloudHsmClusterId, TrustAnchorCertificate and KeyStorePassword are not valid for a custom key store of type EXTERNAL_KEY_STORE.".into(),
                ));
            }
            let need = |m: &str| {
                KmsError::Validation(format!("{m} is required for a custom key store of type EXTERNAL_KEY_STORE."))
            };
            let connectivity = connectivity.ok_or_else(|| need("XksProxyConnectivity"))?;
            let (e, _) = endpoint.clone().ok_or_else(|| need("XksProxyUriEndpoint"))?;
            let path = path.ok_or_else(|| need("XksProxyUriPath"))?;
            let (access_key_id, secret) = cred.ok_or_else(|| need("XksProxyAuthenticationCredential"))?;
            match (connectivity.as_str(), vpc) {
                ("VPC_ENDPOINT_SERVICE", Some(service)) => NewStore::Vpc { service },
                ("VPC_ENDPOINT_SERVICE", None) => {
                    return Err(need("XksProxyVpcEndpointServiceName (with XksProxyConnectivity VPC_ENDPOINT_SERVICE)"))
                }
                (_, Some(_)) => {
                    return Err(KmsError::Validation(
                        "XksProxyVpcEndpointServiceName is valid only with XksProxyConnectivity VPC_ENDPOINT_SERVICE."
                            .into(),
                    ))
                }
                (_, None) => NewStore::Public(ProxySettings { endpoint: e, path, access_key_id, secret }),
            }
        } else {
            if endpoint.is_some() || path.is_some() || vpc.is_some() || cred.is_some() || connectivity.is_some() {
                return Err(KmsError::Validation(
                    "The XksProxy parameters are valid only for a custom key store of type EXTERNAL_KEY_STORE.".into(),
                ));
            }
            let need =
                |m: &str| KmsError::Validation(format!("{m} is required for a custom key store of type AWS_CLOUDHSM."));
            let cluster = cluster.ok_or_else(|| need("CloudHsmClusterId"))?;
            if !i.has("TrustAnchorCertificate") {
                return Err(need("TrustAnchorCertificate"));
            }
            if !i.has("KeyStorePassword") {
                return Err(need("KeyStorePassword"));
            }
            NewStore::CloudHsm { cluster }
        };
        Ok(CreateCustomKeyStore { name, endpoint, store })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        kms.check_endpoint_allowed(&self.endpoint, "XksProxyUriEndpoint")?;
        Ok(account_plan(ctx, Self::NAME))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let p = match self.store {
            NewStore::CloudHsm { cluster } => {
                return Err(coded(
                    "CloudHsmClusterNotFoundException",
                    format!("AWS CloudHSM cluster {cluster} could not be found."),
                ))
            }
            NewStore::Vpc { service } => {
                return Err(coded(
                    "XksProxyVpcEndpointServiceNotFoundException",
                    format!("The Amazon VPC endpoint service {service} could not be found."),
                ))
            }
            NewStore::Public(p) => p,
        };
        let (account, region) = (ctx.caller.account_id.as_str(), ctx.region.as_str());
        kms.check_unique(&kms.stores(account, region)?, None, &self.name, &p.endpoint, &p.path)?;
        kms.verify_proxy(ctx, Self::NAME, &p)?;
        let mut raw = [0u8; 9];
        rand::rng().fill_bytes(&mut raw);
        let id = format!("cks-{}", hex::encode(raw).get(..17).unwrap_or_default());
        let sk = store_store_key(account, region, &id);
        let rec = StoreRec {
            account: account.to_string(),
            region: region.to_string(),
            id: id.clone(),
            name: self.name,
            created: kms.now_ms(),
            state: "DISCONNECTED".into(),
            error_code: None,
            connectivity: "PUBLIC_ENDPOINT".into(),
            uri_endpoint: p.endpoint,
            uri_path: p.path,
            access_key_id: p.access_key_id,
            sealed_secret: kms.seal_secret(&sk, &p.secret)?,
        };
        transact(kms.store.as_ref(), |tx| -> Result<()> {
            let others: Vec<StoreRec> = tx
                .scan_json::<StoreRec>(STORES, &format!("{account}/{region}/"))?
                .into_iter()
                .map(|(_, s)| s)
                .collect();
            if others.len() >= MAX_STORES {
                return Err(KmsError::LimitExceeded(format!(
                    "An account can have at most {MAX_STORES} custom key stores in a Region."
                )));
            }
            kms.check_unique(&others, None, &rec.name, &rec.uri_endpoint, &rec.uri_path)?;
            tx.put_json(STORES, &sk, &rec)?;
            Ok(())
        })?;
        kms.mark_xks_in_use();
        Ok(Output::Json(json!({"CustomKeyStoreId": id})))
    }
}

pub(super) struct DescribeCustomKeyStores {
    id: Option<String>,
    name: Option<String>,
    page: Page,
}

impl Operation<Kms> for DescribeCustomKeyStores {
    const NAME: &'static str = "DescribeCustomKeyStores";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        let id = i.str_len("CustomKeyStoreId", 1, 64)?.map(str::to_string);
        let name = i.str_len("CustomKeyStoreName", 1, 256)?.map(str::to_string);
        let page = Page::parse(&i, 1000)?;
        if id.is_some() && name.is_some() {
            return Err(KmsError::Validation(
                "Specify either the CustomKeyStoreId or the CustomKeyStoreName, not both.".into(),
            ));
        }
        Ok(DescribeCustomKeyStores { id, name, page })
    }

    fn authorize(&mut self, _: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        Ok(account_plan(ctx, Self::NAME))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let all = kms.stores(&ctx.caller.account_id, &ctx.region)?;
        let picked: Vec<Value> = all
            .iter()
            .filter(|s| self.id.as_ref().is_none_or(|id| &s.id == id))
            .filter(|s| self.name.as_ref().is_none_or(|n| &s.name == n))
            .map(StoreRec::to_json)
            .collect();
        if picked.is_empty() {
            if let Some(id) = &self.id {
                return Err(not_found(id));
            }
            if let Some(n) = &self.name {
                return Err(not_found(n));
            }
        }
        self.page.answer("CustomKeyStores", picked)
    }
}

pub(super) struct UpdateCustomKeyStore {
    id: String,
    name: Option<String>,
    endpoint: Option<(String, bool)>,
    path: Option<String>,
    credential: Option<(String, Zeroizing<String>)>,
    connectivity: Option<String>,
    vpc: Option<String>,
    cloudhsm: bool,
}

impl Operation<Kms> for UpdateCustomKeyStore {
    const NAME: &'static str = "UpdateCustomKeyStore";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        let i = In(input.json());
        let id = store_id(&i)?;
        let name = i.str_len("NewCustomKeyStoreName", 1, 256)?.map(str::to_string);
        let cluster = cloudhsm_members(&i)?;
        let endpoint = endpoint(&i, "XksProxyUriEndpoint")?;
        let path = uri_path(&i, "XksProxyUriPath")?;
        let vpc = vpc_members(&i)?;
        let credential = credential(&i)?;
        let connectivity = connectivity(&i)?;
        let cloudhsm = cluster.is_some() || i.has("KeyStorePassword");
        Ok(UpdateCustomKeyStore { id, name, endpoint, path, credential, connectivity, vpc, cloudhsm })
    }

    fn authorize(&mut self, kms: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        kms.check_endpoint_allowed(&self.endpoint, "XksProxyUriEndpoint")?;
        Ok(account_plan(ctx, Self::NAME))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let s = kms.load_store(ctx, &self.id)?;
        if self.cloudhsm {
            return Err(KmsError::Validation(format!(
                "CloudHsmClusterId and KeyStorePassword are not valid for custom key store {}, whose type is EXTERNAL_KEY_STORE.",
                s.id
            )));
        }
        // Name, credential and path change while CONNECTED or DISCONNECTED; the rest only while
        // DISCONNECTED.
        let needs_disconnected = self.endpoint.is_some() || self.connectivity.is_some() || self.vpc.is_some();
        let allowed = s.state == "DISCONNECTED" || (s.state == "CONNECTED" && !needs_disconnected);
        if !allowed {
            return Err(invalid_state(&s.id, &s.state, Self::NAME));
        }
        if self.connectivity.as_deref() == Some("VPC_ENDPOINT_SERVICE") || self.vpc.is_some() {
            return match &self.vpc {
                Some(service) => Err(coded(
                    "XksProxyVpcEndpointServiceNotFoundException",
                    format!("The Amazon VPC endpoint service {service} could not be found."),
                )),
                None => Err(KmsError::Validation(
                    "XksProxyVpcEndpointServiceName is required with XksProxyConnectivity VPC_ENDPOINT_SERVICE.".into(),
                )),
            };
        }
        let name = self.name.clone().unwrap_or_else(|| s.name.clone());
        let endpoint = self.endpoint.as_ref().map_or_else(|| s.uri_endpoint.clone(), |(e, _)| e.clone());
        let path = self.path.clone().unwrap_or_else(|| s.uri_path.clone());
        kms.check_unique(&kms.stores(&s.account, &s.region)?, Some(&s.id), &name, &endpoint, &path)?;
        let proxy_changed = self.endpoint.is_some() || self.path.is_some() || self.credential.is_some();
        let (access_key_id, secret) = match self.credential {
            Some((a, sec)) => (a, sec),
            None => (s.access_key_id.clone(), kms.open_secret(&s)?),
        };
        if proxy_changed {
            let p = ProxySettings { endpoint: endpoint.clone(), path: path.clone(), access_key_id, secret };
            kms.verify_proxy(ctx, Self::NAME, &p)?;
            let sealed = kms.seal_secret(&s.store_key(), &p.secret)?;
            kms.write_store(&s, |r| {
                r.uri_endpoint = endpoint;
                r.uri_path = path;
                r.access_key_id = p.access_key_id;
                r.sealed_secret = sealed;
                r.name = name;
            })?;
        } else {
            kms.write_store(&s, |r| r.name = name)?;
        }
        Ok(empty())
    }
}

impl Kms {
    /// Re-read a store in a transaction, re-check its uniqueness, change it.
    fn write_store(&self, s: &StoreRec, f: impl FnOnce(&mut StoreRec)) -> Result<()> {
        let sk = s.store_key();
        transact(self.store.as_ref(), |tx| -> Result<()> {
            let mut rec: StoreRec = tx.get_json(STORES, &sk)?.ok_or_else(|| not_found(&s.id))?;
            f(&mut rec);
            let others: Vec<StoreRec> = tx
                .scan_json::<StoreRec>(STORES, &format!("{}/{}/", s.account, s.region))?
                .into_iter()
                .map(|(_, s)| s)
                .collect();
            self.check_unique(&others, Some(&rec.id), &rec.name, &rec.uri_endpoint, &rec.uri_path)?;
            tx.put_json(STORES, &sk, &rec)?;
            Ok(())
        })
    }
}

pub(super) struct DeleteCustomKeyStore {
    id: String,
}

impl Operation<Kms> for DeleteCustomKeyStore {
    const NAME: &'static str = "DeleteCustomKeyStore";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(DeleteCustomKeyStore { id: store_id(&In(input.json()))? })
    }

    fn authorize(&mut self, _: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        Ok(account_plan(ctx, Self::NAME))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let s = kms.load_store(ctx, &self.id)?;
        let sk = s.store_key();
        transact(kms.store.as_ref(), |tx| -> Result<()> {
            let rec: StoreRec = tx.get_json(STORES, &sk)?.ok_or_else(|| not_found(&s.id))?;
            if rec.state != "DISCONNECTED" {
                return Err(invalid_state(&rec.id, &rec.state, Self::NAME));
            }
            let has_keys = tx
                .scan_json::<KeyRec>(KEYS, &format!("{}/{}/", rec.account, rec.region))?
                .into_iter()
                .any(|(_, k)| k.custom_key_store_id.as_deref() == Some(&rec.id));
            if has_keys {
                return Err(coded(
                    "CustomKeyStoreHasCMKsException",
                    format!(
                        "Custom key store {} contains KMS keys. Delete them before deleting the custom key store.",
                        rec.id
                    ),
                ));
            }
            tx.delete(STORES, &sk)?;
            Ok(())
        })?;
        Ok(empty())
    }
}

pub(super) struct ConnectCustomKeyStore {
    id: String,
}

impl Operation<Kms> for ConnectCustomKeyStore {
    const NAME: &'static str = "ConnectCustomKeyStore";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(ConnectCustomKeyStore { id: store_id(&In(input.json()))? })
    }

    fn authorize(&mut self, _: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        Ok(account_plan(ctx, Self::NAME))
    }

    /// Connects before it answers (AWS answers at once and connects in the background: the
    /// store's `CONNECTING` is never seen here); a failed connection is the store's `FAILED`
    /// state and `ConnectionErrorCode`, and the call itself succeeds, as AWS's does.
    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let s = kms.load_store(ctx, &self.id)?;
        match s.state.as_str() {
            "CONNECTED" => return Ok(empty()),
            "DISCONNECTED" => {}
            other => return Err(invalid_state(&s.id, other, Self::NAME)),
        }
        let outcome = kms.with_proxy(&s, |p| xks::health(p, Self::NAME, &ctx.request_id))?;
        let error_code = match outcome {
            Ok(()) => None,
            Err(XksFailure::Unreachable) => Some("XKS_PROXY_NOT_REACHABLE"),
            Err(XksFailure::TimedOut) => Some("XKS_PROXY_TIMED_OUT"),
            Err(XksFailure::InvalidResponse) => Some("XKS_PROXY_INVALID_RESPONSE"),
            Err(XksFailure::Proxy { status: 401, .. }) => Some("INVALID_CREDENTIALS"),
            Err(XksFailure::Proxy { status: 403, .. }) => Some("XKS_PROXY_ACCESS_DENIED"),
            Err(XksFailure::Proxy { ref name, .. }) if name == "InvalidUriPathException" => {
                Some("XKS_PROXY_INVALID_CONFIGURATION")
            }
            Err(XksFailure::Proxy { .. }) => Some("XKS_PROXY_INVALID_RESPONSE"),
        };
        let sk = s.store_key();
        transact(kms.store.as_ref(), |tx| -> Result<()> {
            let mut rec: StoreRec = tx.get_json(STORES, &sk)?.ok_or_else(|| not_found(&s.id))?;
            if rec.state != "DISCONNECTED" {
                return Ok(());
            }
            rec.state = if error_code.is_some() { "FAILED" } else { "CONNECTED" }.into();
            rec.error_code = error_code.map(str::to_string);
            tx.put_json(STORES, &sk, &rec)?;
            Ok(())
        })?;
        kms.mark_xks_in_use();
        Ok(empty())
    }
}

pub(super) struct DisconnectCustomKeyStore {
    id: String,
}

impl Operation<Kms> for DisconnectCustomKeyStore {
    const NAME: &'static str = "DisconnectCustomKeyStore";
    type Error = KmsError;

    fn parse(input: &Input) -> Result<Self> {
        Ok(DisconnectCustomKeyStore { id: store_id(&In(input.json()))? })
    }

    fn authorize(&mut self, _: &Kms, ctx: &RequestContext) -> Result<AuthzPlan> {
        Ok(account_plan(ctx, Self::NAME))
    }

    fn run(self, kms: &Kms, ctx: &RequestContext) -> Result<Output> {
        let s = kms.load_store(ctx, &self.id)?;
        let sk = s.store_key();
        transact(kms.store.as_ref(), |tx| -> Result<()> {
            let mut rec: StoreRec = tx.get_json(STORES, &sk)?.ok_or_else(|| not_found(&s.id))?;
            if matches!(rec.state.as_str(), "DISCONNECTED" | "DISCONNECTING") {
                return Err(invalid_state(&rec.id, &rec.state, Self::NAME));
            }
            rec.state = "DISCONNECTED".into();
            rec.error_code = None;
            tx.put_json(STORES, &sk, &rec)?;
            Ok(())
        })?;
        Ok(empty())
    }
}
