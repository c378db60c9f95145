//! Runs every test vector in tests/vectors/*.json (harness format plus `name` and `expected`) through the
//! fast evaluator and the reference evaluator, and names every case that fails.

use std::path::Path;

use rampart_policy::harness::{self, Case};
use rampart_policy::Decision;

fn load_all() -> Vec<(String, Case)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/vectors exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("readable vector file");
        let (cases, _) = harness::parse_cases(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let file = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for (i, c) in cases.into_iter().enumerate() {
            let name = format!("{file}: {}", c.name.clone().unwrap_or_else(|| format!("case {i}")));
            out.push((name, c));
        }
    }
    out
}

#[test]
fn all_vectors() {
    let cases = load_all();
    let mut failures = Vec::new();
    for (name, case) in &cases {
        let Some(expected) = &case.expected else {
            failures.push(format!("{name}: no \"expected\""));
            continue;
        };
        let eval = match harness::eval_case(case) {
            Ok(e) => e,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let reference = harness::eval_case_with(case, rampart_policy::reference::evaluate).expect("same input parses");
        if eval.decision != expected.decision {
            failures.push(format!("{name}: decision {:?}, expected {:?}", eval.decision, expected.decision));
        }
        if reference.decision != expected.decision {
            failures
                .push(format!("{name}: reference decision {:?}, expected {:?}", reference.decision, expected.decision));
        }
        let layer = eval.explanation.denying_layer().map(|(l, _)| l);
        if let Some(want) = expected.denying_layer {
            if layer != Some(want) {
                failures.push(format!("{name}: denying layer {layer:?}, expected {want:?}"));
            }
        }
        if expected.decision == Decision::Allowed && layer.is_some() {
            failures.push(format!("{name}: allowed but a denying layer is reported"));
        }
        if reference.explanation.denying_layer() != eval.explanation.denying_layer() {
            failures.push(format!(
                "{name}: reference denying layer {:?} differs from {:?}",
                reference.explanation.denying_layer(),
                eval.explanation.denying_layer()
            ));
        }
        if let Some(want) = &expected.matched {
            let mut got: Vec<String> = eval
                .explanation
                .matched_statements()
                .map(|s| s.sid.as_deref().map(str::to_string).unwrap_or_else(|| format!("{}#{}", s.policy, s.index)))
                .collect();
            got.sort();
            let mut want = want.clone();
            want.sort();
            if got != want {
                failures.push(format!("{name}: matched statements {got:?}, expected {want:?}"));
            }
        }
        if let Some(want) = &expected.missing_context_keys {
            let mut got = eval.explanation.missing_context_keys().to_vec();
            got.sort();
            let mut want = want.clone();
            want.sort();
            if got != want {
                failures.push(format!("{name}: missing context keys {got:?}, expected {want:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} vectors failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    eprintln!("{} vectors passed", cases.len());
}

#[test]
fn there_are_enough_vectors() {
    assert!(load_all().len() >= 200, "at least 200 vectors");
}
