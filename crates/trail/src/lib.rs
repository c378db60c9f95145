//! CloudTrail for Rampart: one audit record per call, committed before the call's response is
//! released (a group-commit writer thread), LookupEvents, trails that deliver gzipped log files
//! with a signed digest chain, and the offline verifier behind `rampart trail verify`.

pub mod activity;
pub mod audit;
pub(crate) mod channels;
mod data;
pub mod delivery;
pub mod digest;
pub mod insights;
mod insights_api;
mod json;
pub mod lake;
pub mod lookup;
mod org;
pub(crate) mod policies;
pub mod record;
pub mod redact;
mod rows;
pub mod verify;

pub use audit::{AuditError, AuditLog, Receipt, Retention, StoredEvent};
pub use record::{build, CallFacts, Identity, Record, TlsFacts};
pub mod service;

pub use insights::{Clock, InsightsConfig, SystemClock};
pub use service::{CloudTrail, TrailConfig};
