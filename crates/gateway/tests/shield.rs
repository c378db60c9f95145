//! Shield L7 against real sockets on loopback: Slowloris, slow POST, connection caps with preemption,
//! size limits, full-request buffering, automatic mitigation with attack events. Deadlines, rates and
//! attack detection run on a manual clock the tests move, so the assertions are about behaviour (what
//! is cut, served, counted) and hold however slow the machine is; waits are on conditions, never
//! sleeps, and their time limits only guard against hangs. Speeds are measured in bench/gateway.

mod common;

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rampart_gateway::clock::ManualClock;
use rampart_gateway::shield::ddos::TICK;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where the manual clocks start (Unix ms; a multiple of every rate window).
const T0_MS: u64 = 1_800_000_000_000;

fn manual_clock() -> Arc<ManualClock> {
    ManualClock::new(T0_MS)
}

/// Whether the gateway closes `s` (EOF or reset) without answering; the limit only guards a hang.
async fn closed_by_gateway(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    matches!(tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await, Ok(Ok(0)) | Ok(Err(_)))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// Many Slowloris connections (each part-way through a request head) hold slots while a normal client
/// is served; once their trickle falls under the minimum data rate, every one of them is cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_off_while_others_are_served() {
    let clock = manual_clock();
    let c2 = clock.clone();
    let g = start(None, move |c| {
        c.clock = c2;
        c.shield.max_connections = 400;
        c.shield.max_connections_per_ip = 50;
        c.shield.header_timeout = Duration::from_secs(60);
        c.shield.min_rate_bytes_per_sec = 2;
        c.shield.rate_grace = Duration::from_secs(1);
    })
    .await;
    let addr = g.addr();
    // 200 slow connections from 4 other loopback addresses (50 each, the per-IP cap), 36 bytes each.
    let head = b"GET / HTTP/1.1\r\nHost: victim\r\nX-a: bb";
    let mut slow = Vec::new();
    for i in 0..200u32 {
        let mut s = connect_from(addr, Some(ip(&format!("127.0.0.{}", 10 + i % 4)))).await.expect("connect");
        s.write_all(head).await.expect("write");
        slow.push(s);
    }
    let all_pending = || async { g.gw.state.registry.receiving_head() == 200 };
    assert!(wait_until(Duration::from_secs(30), all_pending).await, "200 heads in progress");
    // Meanwhile a normal client: 30 requests, all served, with the 200 slow connections still open.
    for _ in 0..30 {
        assert_eq!(request(addr, Some(ip("127.0.0.1")), "GET", "/", &[], b"").await.status, 200);
    }
    assert_eq!(g.gw.state.registry.receiving_head(), 200, "the slow connections were held meanwhile");
    // 19 s on: 36 bytes is under 2 B/s (deadline 18.5 s), far before the 60 s header timeout.
    clock.advance(Duration::from_secs(19));
    for (i, s) in slow.iter_mut().enumerate() {
        assert!(closed_by_gateway(s).await, "slow connection {i} cut");
    }
    assert_eq!(g.gw.state.registry.stats.timed_out.load(Ordering::SeqCst), 200);
    assert_eq!(g.upstream.hits.load(Ordering::SeqCst), 30, "only the normal client reached the upstream");
}

/// A head trickling below the minimum data rate is cut by the rate rule, long before the header
/// timeout; a head arriving at the minimum rate is not.
#[tokio::test]
async fn head_below_minimum_rate_is_cut_early() {
    let clock = manual_clock();
    let c2 = clock.clone();
    let g = start(None, move |c| {
        c.clock = c2;
        c.shield.header_timeout = Duration::from_secs(30);
        c.shield.min_rate_bytes_per_sec = 50;
        c.shield.rate_grace = Duration::from_millis(300);
    })
    .await;
    let mut trickle = connect_from(g.addr(), None).await.expect("connect");
    trickle.write_all(b"GET / HTTP").await.expect("write");
    let mut steady = connect_from(g.addr(), None).await.expect("connect");
    let mut head = b"GET / HTTP/1.1\r\nHost: victim\r\nX-a: ".to_vec();
    head.extend_from_slice(&[b'b'; 200]);
    steady.write_all(&head).await.expect("write");
    let both = || async { g.gw.state.registry.receiving_head() == 2 };
    assert!(wait_until(Duration::from_secs(10), both).await);
    // One second on: 10 bytes is under 50 B/s, 235 bytes is over it.
    clock.advance(Duration::from_secs(1));
    assert!(closed_by_gateway(&mut trickle).await, "the trickle is cut by the rate rule, not the 30 s timeout");
    steady.write_all(b"\r\nConnection: close\r\n\r\n").await.expect("write");
    let r = read_response(&mut steady).await.expect("the steady client is answered");
    assert_eq!(r.status, 200);
    assert_eq!(g.gw.state.registry.stats.timed_out.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn slow_post_gets_408_and_upstream_never_sees_it() {
    let clock = manual_clock();
    let c2 = clock.clone();
    let g = start(None, move |c| {
        c.clock = c2;
        c.shield.body_timeout = Duration::from_secs(2);
        c.shield.min_rate_bytes_per_sec = 100;
        c.shield.rate_grace = Duration::from_millis(300);
    })
    .await;
    let mut s = connect_from(g.addr(), None).await.expect("connect");
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc").await.expect("write");
    let reading = || async { g.gw.state.registry.requests_in_flight() == 1 };
    assert!(wait_until(Duration::from_secs(10), reading).await, "the gateway is reading the body");
    // Under the body timeout (2 s), but 3 bytes in 1 s is under 100 B/s.
    clock.advance(Duration::from_secs(1));
    let r = tokio::time::timeout(Duration::from_secs(30), read_response(&mut s))
        .await
        .expect("an answer, not a hang")
        .expect("response");
    assert_eq!(r.status, 408);
    assert_eq!(g.upstream.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn whole_request_is_buffered_before_the_upstream_sees_a_byte() {
    let g = start(None, |_| {}).await;
    let mut s = connect_from(g.addr(), None).await.expect("connect");
    s.write_all(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345").await.expect("write");
    // The gateway has the head and half the body: give it every chance to forward early.
    let early = || async { g.upstream.hits.load(Ordering::SeqCst) > 0 };
    assert!(!wait_until(Duration::from_millis(300), early).await, "upstream contacted before the body was complete");
    s.write_all(b"67890").await.expect("write");
    let r = read_response(&mut s).await.expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body"], "1234567890");
}

#[tokio::test]
async fn size_limits() {
    let g = start(None, |c| {
        c.shield.max_body_bytes = 1000;
        c.shield.max_header_bytes = 8192;
    })
    .await;
    assert_eq!(request(g.addr(), None, "POST", "/", &[], &[b'a'; 1001]).await.status, 413);
    assert_eq!(request(g.addr(), None, "POST", "/", &[], &[b'a'; 1000]).await.status, 200);
    // Chunked, no Content-Length: still cut at the limit.
    let mut req = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..3 {
        req.extend_from_slice(b"200\r\n");
        req.extend_from_slice(&[b'x'; 512]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(raw(g.addr(), None, &req).await.expect("resp").status, 413);
    // Oversized head: hyper refuses it (431) before any handler runs.
    let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "b".repeat(20_000));
    let r = raw(g.addr(), None, big.as_bytes()).await;
    assert!(r.map(|r| r.status == 431).unwrap_or(true), "oversized head refused");
    assert_eq!(g.upstream.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn per_ip_cap_answers_503_and_global_cap_preempts_half_open() {
    let g = start(None, |c| {
        c.shield.max_connections = 20;
        c.shield.max_connections_per_ip = 5;
        c.shield.header_timeout = Duration::from_secs(30);
        c.shield.min_rate_bytes_per_sec = 0;
    })
    .await;
    let addr = g.addr();
    // 5 half-open connections from one address fill its quota; the 6th gets a clean 503.
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut s = connect_from(addr, Some(ip("127.0.0.20"))).await.expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").await.expect("write");
        held.push(s);
    }
    let filled = || async { g.gw.state.registry.open_connections() >= 5 };
    assert!(wait_until(Duration::from_secs(5), filled).await);
    let r = raw(addr, Some(ip("127.0.0.20")), b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .expect("503 response");
    assert_eq!(r.status, 503);
    // Fill the gateway with half-open connections from other addresses.
    for i in 0..15u32 {
        let mut s = connect_from(addr, Some(ip(&format!("127.0.1.{}", i + 1)))).await.expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").await.expect("write");
        held.push(s);
    }
    let full = || async { g.gw.state.registry.open_connections() >= 20 };
    assert!(wait_until(Duration::from_secs(5), full).await);
    // A new client is still served: the slowest half-open connection makes room.
    let r = request(addr, Some(ip("127.0.0.1")), "GET", "/", &[], b"").await;
    assert_eq!(r.status, 200);
    assert!(g.gw.state.registry.stats.preempted.load(Ordering::SeqCst) >= 1);
}

/// `n` requests on one keep-alive connection from `src`: (answered by the upstream, answered 429).
async fn burst_from(addr: std::net::SocketAddr, src: &str, n: usize) -> (usize, usize) {
    let mut s = connect_from(addr, Some(ip(src))).await.expect("connect");
    let (mut ok, mut limited) = (0, 0);
    for _ in 0..n {
        s.write_all(b"GET /flood HTTP/1.1\r\nHost: a\r\n\r\n").await.expect("write");
        let r = read_response(&mut s).await.expect("response");
        match r.status {
            429 => limited += 1,
            200 => ok += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    (ok, limited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_triggers_attack_event_and_429_while_others_are_served() {
    let clock = manual_clock();
    let c2 = clock.clone();
    let g = start(None, move |c| {
        c.clock = c2;
        c.shield.auto_mitigation = true;
        c.shield.attack_min_rps = 30.0;
        c.shield.attack_multiplier = 4.0;
        c.shield.source_share = 0.2;
        c.shield.source_min_rps = 5.0;
        c.shield.attack_cooldown = Duration::from_millis(750);
    })
    .await;
    let addr = g.addr();
    let m = &g.gw.state.mitigator;
    // Within one instant of the clock: 400 requests from the flooder (4 connections) and 5 from a
    // normal client, all served: no attack has been declared yet.
    let floods = futures_join4(addr).await;
    assert_eq!(floods, (400, 0));
    for _ in 0..5 {
        assert_eq!(request(addr, Some(ip("127.0.0.1")), "GET", "/", &[], b"").await.status, 200);
    }
    // The detector's next step sees 405 requests in the 10 s window: 40.5 rps > 30.
    clock.advance(TICK);
    m.tick();
    assert!(m.under_attack(), "attack detected at {} rps", m.current_rps());
    // During the attack: every further flood request gets 429, the normal client is served.
    assert_eq!(burst_from(addr, "127.0.0.30", 100).await, (0, 100));
    for _ in 0..10 {
        assert_eq!(request(addr, Some(ip("127.0.0.1")), "GET", "/", &[], b"").await.status, 200);
    }
    assert_eq!(m.mitigated_total(), 100);
    // Quiet from here: the window empties and, after the cooldown, the event ends (bounded steps).
    let mut steps = 0;
    while m.under_attack() && steps < 400 {
        clock.advance(TICK);
        m.tick();
        steps += 1;
    }
    assert!(!m.under_attack(), "attack event ends once quiet");
    let events = m.events();
    let ev = events.last().expect("an event");
    assert!(ev.end_time.is_some_and(|e| e > ev.start_time));
    assert_eq!(ev.top_sources.first().map(|s| (s.ip.as_str(), s.requests)), Some(("127.0.0.30", 100)));
    assert_eq!(ev.mitigated_requests, 100);
    assert_eq!(ev.total_requests, 110);
    let admin = admin_get(&g, "/shield/attacks").await.json();
    assert_eq!(admin["AttackEvents"][0]["TopSources"][0]["Ip"], "127.0.0.30");
}

/// 4 keep-alive connections from the flooder, 100 requests each: (served, 429) in total.
async fn futures_join4(addr: std::net::SocketAddr) -> (usize, usize) {
    let (a, b, c, d) = tokio::join!(
        burst_from(addr, "127.0.0.30", 100),
        burst_from(addr, "127.0.0.30", 100),
        burst_from(addr, "127.0.0.30", 100),
        burst_from(addr, "127.0.0.30", 100)
    );
    (a.0 + b.0 + c.0 + d.0, a.1 + b.1 + c.1 + d.1)
}
