//! IAM and STS for Rampart: identities and their policies, access keys, the credential store
//! the pipeline authenticates with, and the authorizer that assembles policy sets for the
//! policy engine.
//!
//! ```ignore
//! let iam = Iam::new(store, sealer);
//! iam.bootstrap_account("111122223333", "AKIA…", "secret")?;
//! Pipeline::new(vec![iam.iam_service(), iam.sts_service()], iam.authorizer(), iam.credentials());
//! ```
#![deny(clippy::string_slice, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::string_slice, clippy::indexing_slicing))]

mod authz;
mod certs;
mod creds;
mod db;
mod denials;
mod error;
mod managed;
mod model;
mod oidc;
mod org;
mod outbound;
mod password;
mod resolve;
mod service;
mod sts;
mod totp;
mod util;
mod validate;

use std::sync::Arc;

use rampart_service::{Authorizer, CredentialStore, Service};
use rampart_store::{Sealer, Store};

pub use authz::IamAuthorizer;
pub use creds::IamCredentials;
pub use error::IamError;
pub use oidc::OidcFetchLimits;
pub use org::OrgService;
pub use service::IamService;
pub use sts::StsService;

use db::Db;

/// The public base URL until the server sets its own.
const DEFAULT_PUBLIC_URL: &str = "http://localhost:4566";
use resolve::{PolicyCache, Resolver};
use service::Core;

/// IAM and STS over one store: build once, hand the pieces to the pipeline.
pub struct Iam {
    core: Arc<Core>,
    credentials: Arc<IamCredentials>,
    authorizer: Arc<IamAuthorizer>,
    iam: Arc<IamService>,
    sts: Arc<StsService>,
    org: Arc<OrgService>,
}

impl Iam {
    pub fn new(store: Arc<dyn Store>, sealer: Arc<Sealer>) -> Self {
        let db = Db::new(store);
        let resolver = Arc::new(Resolver { db: db.clone(), policies: Arc::new(PolicyCache::default()) });
        let credentials = Arc::new(IamCredentials::new(db.clone(), sealer.clone()));
        let core = Arc::new(Core {
            db,
            resolver: resolver.clone(),
            creds: credentials.clone(),
            sealer,
            activity: std::sync::OnceLock::new(),
            public_url: std::sync::RwLock::new(DEFAULT_PUBLIC_URL.to_string()),
        });
        let sts = Arc::new(StsService::new(core.clone()));
        let org = Arc::new(OrgService::new(core.clone()));
        let enforcer = Arc::new(org::enforce::OrgEnforcer::new(core.db.clone(), resolver.policies.clone()));
        Iam {
            core: core.clone(),
            credentials,
            authorizer: Arc::new(IamAuthorizer::new(resolver, enforcer)),
            iam: Arc::new(IamService::new(core)),
            sts,
            org,
        }
    }

    /// The recorded calls IAM's last-accessed reports read (the audit trail). Set once; later
    /// calls are ignored.
    pub fn set_activity_log(&self, log: Arc<dyn rampart_service::ActivityLog>) {
        let _ = self.core.activity.set(log);
    }

    /// Bounds on AssumeRoleWithWebIdentity's fetches of an issuer's discovery document and key
    /// set (default: 5 s in total, or `RAMPART_OIDC_FETCH_TIMEOUT_MS`; 256 KiB per document).
    pub fn set_oidc_fetch_limits(&self, limits: OidcFetchLimits) {
        self.sts.jwks().set_limits(limits);
    }

    /// Rampart's public base URL (`http://host:port`, as clients reach it): the issuers of
    /// outbound web identity federation are `{url}/_rampart/oidc/{issuer id}`.
    pub fn set_public_url(&self, url: &str) {
        *self.core.public_url.write().unwrap_or_else(|p| p.into_inner()) = outbound::normalize_base(url);
    }

    /// Register an account and its root access key (idempotent; call at every start-up).
    pub fn bootstrap_account(
        &self,
        account_id: &str,
        root_access_key_id: &str,
        root_secret: &str,
    ) -> Result<(), IamError> {
        self.credentials.bootstrap_account(account_id, root_access_key_id, root_secret)
    }

    /// `--dev` (LocalStack's convention): an access key ID that is a 12-digit account number
    /// acts as the root of that account, with the secret `test`.
    pub fn enable_account_keys(&self) {
        self.credentials.enable_account_keys();
    }

    pub fn iam_service(&self) -> Arc<dyn Service> {
        self.iam.clone()
    }

    pub fn sts_service(&self) -> Arc<dyn Service> {
        self.sts.clone()
    }

    /// AWS Organizations (its SCPs and RCPs are enforced by [`Iam::authorizer`]).
    pub fn organizations_service(&self) -> Arc<dyn Service> {
        self.org.clone()
    }

    /// Organizations as other services see it (CloudTrail's organization trails and delegated
    /// administrators).
    pub fn organizations(&self) -> Arc<dyn rampart_service::Organizations> {
        org::OrgDirectory::new(self.core.db.clone())
    }

    pub fn authorizer(&self) -> Arc<dyn Authorizer> {
        self.authorizer.clone()
    }

    pub fn credentials(&self) -> Arc<dyn CredentialStore> {
        self.credentials.clone()
    }

    /// Check a TOTP code from the virtual MFA device `serial_number` enabled for IAM user `user`
    /// (±1 30-second step; a code whose step was already accepted is refused). `Ok(false)` for a
    /// wrong, reused or malformed code or a device not enabled for `user`.
    pub fn verify_mfa_code(
        &self,
        account: &str,
        user: &str,
        serial_number: &str,
        code: &str,
    ) -> Result<bool, IamError> {
        self.core.verify_mfa_code(account, user, serial_number, code)
    }

    /// The IAM operations Rampart implements.
    pub fn operations() -> Vec<&'static str> {
        service::operations()
    }
}
