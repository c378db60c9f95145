//! Rampart's policy evaluation vs cedar-policy on the same decision.
//! Run: `cd bench/policy && cargo bench` (prints the ratio at the end).

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use rampart_policy::{evaluate, reference, Request};
use rampart_policy_bench::{cedar, iam_context, Iam, ACCOUNT, MAIN};

fn bench(c: &mut Criterion) {
    let iam = Iam::new();
    let set = iam.set();
    let ctx = iam_context(&MAIN);
    let req = Request {
        principal: &iam.principal,
        action: MAIN.action,
        resource: MAIN.resource,
        resource_account: Some(ACCOUNT),
        context: &ctx,
    };
    assert_eq!(evaluate(&req, &set).decision, rampart_policy::Decision::Allowed);
    let prepared = cedar::prepare(&MAIN);
    assert!(prepared.decide());

    let mut g = c.benchmark_group("policy");
    g.bench_function("rampart/evaluate", |b| b.iter(|| evaluate(black_box(&req), black_box(&set))));
    g.bench_function("rampart/reference", |b| b.iter(|| reference::evaluate(black_box(&req), black_box(&set))));
    g.bench_function("cedar/is_authorized x5 layers", |b| b.iter(|| black_box(&prepared).decide()));
    g.finish();

    // A plain side-by-side median for the report (criterion's own numbers are printed above).
    let median = |f: &mut dyn FnMut()| {
        let mut samples = Vec::with_capacity(201);
        for _ in 0..201 {
            let t = Instant::now();
            for _ in 0..1000 {
                f();
            }
            samples.push(t.elapsed().as_nanos() as f64 / 1000.0);
        }
        samples.sort_by(|a, b| a.total_cmp(b));
        samples[100]
    };
    let ours = median(&mut || {
        black_box(evaluate(black_box(&req), black_box(&set)));
    });
    let theirs = median(&mut || {
        black_box(black_box(&prepared).decide());
    });
    println!("median: rampart {ours:.0} ns, cedar {theirs:.0} ns, rampart is {:.1}x faster", theirs / ours);
}

criterion_group!(benches, bench);
criterion_main!(benches);
