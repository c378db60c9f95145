//! Two gateways, one Redis: a rate-based rule counts the fleet's traffic, so a flood spread over nodes
//! is still caught. The gateways share a manual clock, so every count falls in the same window however
//! slow the machine is. Needs Redis on 127.0.0.1:6379 (CI starts one): without it the tests fail,
//! unless RAMPART_TEST_NO_REDIS=1 says to skip them.

mod common;

use std::time::Duration;

use common::*;
use rampart_gateway::clock::ManualClock;
use rampart_gateway::shield::ddos::TICK;
use serde_json::json;

const T0_MS: u64 = 1_800_000_000_000;

/// Whether to run: `true` with Redis up; `false` (skip) only when RAMPART_TEST_NO_REDIS=1; a
/// missing Redis otherwise fails the test.
async fn redis_up() -> bool {
    let up = matches!(
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect("127.0.0.1:6379")).await,
        Ok(Ok(_))
    );
    if !up && std::env::var("RAMPART_TEST_NO_REDIS").is_ok_and(|v| v == "1") {
        return false;
    }
    assert!(up, "no Redis on 127.0.0.1:6379: start one (.ci/run does) or set RAMPART_TEST_NO_REDIS=1 to skip");
    true
}

fn rate_acl() -> serde_json::Value {
    acl(json!([{
        "Name": "per-ip", "Priority": 1, "Action": {"Block": {}}, "VisibilityConfig": vis("per-ip"),
        "Statement": {"RateBasedStatement": {"Limit": 20, "EvaluationWindowSec": 60, "AggregateKeyType": "IP"}}
    }]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_shared_across_gateways() {
    if !redis_up().await {
        eprintln!("SKIP rate_limit_is_shared_across_gateways: RAMPART_TEST_NO_REDIS=1");
        return;
    }
    let prefix = format!("rampart:test:{:016x}:", rand_u64());
    let clock = ManualClock::new(T0_MS);
    let (p1, k1) = (prefix.clone(), clock.clone());
    let a = start(Some(rate_acl()), move |c| {
        c.redis = Some("redis://127.0.0.1:6379".into());
        c.redis_prefix = p1;
        c.clock = k1;
    })
    .await;
    let (p2, k2) = (prefix.clone(), clock.clone());
    let b = start(Some(rate_acl()), move |c| {
        c.redis = Some("redis://127.0.0.1:6379".into());
        c.redis_prefix = p2;
        c.clock = k2;
    })
    .await;
    // 12 requests on each node: under the limit (20) on each alone, over it together.
    for _ in 0..12 {
        assert_eq!(get(a.addr(), "/", &[]).await.status, 200);
        assert_eq!(get(b.addr(), "/", &[]).await.status, 200);
    }
    // Once the nodes have synced (every 100 ms), both see 24+ and block.
    let blocked_a = || async { get(a.addr(), "/", &[]).await.status == 403 };
    assert!(wait_until(Duration::from_secs(5), blocked_a).await, "node A blocks on the fleet-wide count");
    let blocked_b = || async { get(b.addr(), "/", &[]).await.status == 403 };
    assert!(wait_until(Duration::from_secs(5), blocked_b).await, "node B too");

    // Control: a gateway without Redis counts alone and still allows.
    let k3 = clock.clone();
    let c = start(Some(rate_acl()), move |c| c.clock = k3).await;
    for _ in 0..12 {
        assert_eq!(get(c.addr(), "/", &[]).await.status, 200);
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

async fn burst(addr: std::net::SocketAddr, n: usize) {
    use tokio::io::AsyncWriteExt;
    let mut s = connect_from(addr, None).await.expect("connect");
    for _ in 0..n {
        s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\n").await.expect("write");
        read_response(&mut s).await.expect("response");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shield_sees_the_fleets_traffic() {
    if !redis_up().await {
        eprintln!("SKIP shield_sees_the_fleets_traffic: RAMPART_TEST_NO_REDIS=1");
        return;
    }
    let prefix = format!("rampart:test:{:016x}:", rand_u64());
    let clock = ManualClock::new(T0_MS);
    let k = clock.clone();
    let shield = move |c: &mut rampart_gateway::GatewayConfig| {
        c.clock = k.clone();
        c.shield.auto_mitigation = true;
        c.shield.attack_min_rps = 40.0;
        // A fixed threshold: with a multiplier the baseline learns the burst's ramp when the machine
        // is slow (a burst spread over seconds raises the threshold above the flood itself).
        c.shield.attack_multiplier = 0.0;
        c.shield.source_min_rps = 1e9; // detection only: nobody gets 429 here
    };
    let (p1, p2) = (prefix.clone(), prefix.clone());
    let (s1, s2) = (shield.clone(), shield.clone());
    let a = start(None, move |c| {
        s1(c);
        c.redis = Some("redis://127.0.0.1:6379".into());
        c.redis_prefix = p1;
    })
    .await;
    let b = start(None, move |c| {
        s2(c);
        c.redis = Some("redis://127.0.0.1:6379".into());
        c.redis_prefix = p2;
    })
    .await;
    let alone = start(None, shield).await;
    // 250 requests on each node within one instant of the clock (so within the 10 s window): 25 rps
    // each, 50 rps for the fleet (> 40).
    tokio::join!(burst(a.addr(), 250), burst(b.addr(), 250), burst(alone.addr(), 250));
    let (ma, mb, ml) = (&a.gw.state.mitigator, &b.gw.state.mitigator, &alone.gw.state.mitigator);
    let synced = || async { ma.current_rps() >= 50.0 && mb.current_rps() >= 50.0 };
    assert!(wait_until(Duration::from_secs(10), synced).await, "both nodes count the fleet's 500 requests");
    assert_eq!(ml.current_rps(), 25.0, "a node counting alone sees only its own");
    clock.advance(TICK);
    for m in [ma, mb, ml] {
        m.tick();
    }
    assert!(ma.under_attack() && mb.under_attack(), "both nodes see the fleet-wide flood");
    assert!(!ml.under_attack(), "a node counting alone sees 25 rps: no attack");
}
