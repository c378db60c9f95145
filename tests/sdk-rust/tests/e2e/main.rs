//! The AWS SDK for Rust against a real `rampart serve`: one test binary, one module per service.
//! Every test starts its own durable server (rampart_sdk_rust_tests::Server) and stops it at the end.

mod cloudtrail;
mod iam;
mod kms;
mod kms_xks;
mod organizations;
mod secrets;
mod sts;
mod sts_federation;
