//! Validation vectors (tests/validation.json): each document with its policy type and AWS's
//! MalformedPolicyDocument message (or `null` when AWS accepts it).

use rampart_policy::{harness, Policy, PolicyType, Severity};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vector {
    name: String,
    #[serde(rename = "type")]
    ty: PolicyType,
    document: serde_json::Value,
    error: Option<String>,
}

#[test]
fn validation_vectors() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/validation.json")).expect("file");
    let vectors: Vec<Vector> = serde_json::from_str(&text).expect("valid vector file");
    let mut failures = Vec::new();
    for v in &vectors {
        let doc = match &v.document {
            serde_json::Value::String(s) => s.clone(),
            other => serde_json::to_string_pretty(other).expect("serializable"),
        };
        let got = Policy::parse(&doc, v.ty).err().map(|e| e.message);
        if got != v.error {
            failures.push(format!("{}: got {got:?}, expected {:?}", v.name, v.error));
        }
        let findings = harness::validate(&doc, v.ty);
        let error = findings.iter().find(|f| f.severity == Severity::Error).map(|f| f.message.clone());
        if error != v.error {
            failures.push(format!("{}: validate() reported {error:?}", v.name));
        }
    }
    assert!(failures.is_empty(), "{} of {} failed:\n{}", failures.len(), vectors.len(), failures.join("\n"));
}
