//! KMS for Rampart: keys (symmetric AES-256-GCM, RSA, ECC, HMAC), aliases, key policies, grants,
//! rotation, scheduled deletion — over the pipeline (`TrentService`, awsJson1_1) and as a Rust
//! API for envelope encryption by other services (see [`Kms::generate_data_key`]).
//!
//! ```ignore
//! let kms = Kms::new(store, sealer, iam.authorizer());
//! Pipeline::new(vec![..., kms.service()], ...);
//! // Secrets Manager:
//! let key = kms.generate_data_key(&ctx, "alias/aws/secretsmanager", &context, Some("secretsmanager.us-east-1.amazonaws.com"))?;
//! ```
//!
//! Key material is sealed under the server's master key before it reaches the store; every use
//! of a key is authorized with the key policy (which must allow, directly or by delegating to
//! the account's IAM policies), IAM policies and grants, by the policy engine.
#![deny(clippy::string_slice, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::string_slice, clippy::indexing_slicing))]

mod api;
mod core;
pub mod crypto;
mod error;
mod input;
mod model;
mod ops;
mod service;
mod xks;

pub use crate::api::{DataKey, Decrypted, Encrypted};
pub use crate::core::{aws_managed_key_policy, default_key_policy, Clock, Kms};
pub use crate::error::KmsError;
pub use crate::ops::OPERATIONS;
pub use crate::service::KmsService;

#[cfg(test)]
mod tests;
