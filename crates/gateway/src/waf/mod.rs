//! The WAF: web ACLs in AWS WAFv2's JSON, compiled and evaluated per request.

pub mod compile;
pub mod detect;
pub mod eval;
pub mod fields;
pub mod managed;
pub mod metrics;
pub mod model;
pub mod rate;
pub mod request;
pub mod transform;

use std::path::Path;

pub use compile::{compile, AclError, WebAcl};
pub use eval::{evaluate, EvalEnv, Verdict};
pub use request::WafRequest;

/// Reads, parses and compiles a web ACL file.
pub fn load_file(path: &Path, metrics: &metrics::WafMetrics) -> Result<WebAcl, AclError> {
    let text = std::fs::read_to_string(path).map_err(|e| AclError(format!("cannot read {}: {e}", path.display())))?;
    load_str(&text, metrics)
}

pub fn load_str(text: &str, metrics: &metrics::WafMetrics) -> Result<WebAcl, AclError> {
    let file: model::AclFile = serde_json::from_str(text).map_err(|e| AclError(format!("invalid JSON: {e}")))?;
    compile(&file, metrics)
}
