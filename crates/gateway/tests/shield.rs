//! Shield L7 against real sockets on loopback: Slowloris, slow POST, connection caps with preemption,
//! size limits, full-request buffering, automatic mitigation with attack events. Bounded counts and
//! time; waits are on conditions, not sleeps.

mod common;

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// Many Slowloris connections (a byte of header every 300 ms) while a normal client keeps getting answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_off_while_others_are_served() {
    let g = start(None, |c| {
        c.shield.max_connections = 400;
        c.shield.max_connections_per_ip = 50;
        c.shield.header_timeout = Duration::from_secs(3);
        c.shield.min_rate_bytes_per_sec = 2;
        c.shield.rate_grace = Duration::from_secs(1);
    })
    .await;
    let addr = g.addr();
    // 200 slow connections from 4 other loopback addresses (50 each, the per-IP cap).
    let mut slow = Vec::new();
    for i in 0..200u32 {
        let src = ip(&format!("127.0.0.{}", 10 + i % 4));
        slow.push(tokio::spawn(async move {
            let Ok(mut s) = connect_from(addr, Some(src)).await else { return (false, Duration::ZERO) };
            let start = Instant::now();
            let head = b"GET / HTTP/1.1\r\nHost: victim\r\nX-a: ";
            for b in head.iter().chain(b"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".iter()) {
                if s.write_all(&[*b]).await.is_err() {
                    return (true, start.elapsed());
                }
                // A Slowloris trickle: this pause is the attack itself, not synchronisation.
                let mut buf = [0u8; 1];
                match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return (true, start.elapsed()),
                    Ok(Ok(_)) => {}
                    Err(_) => {}
                }
            }
            (false, start.elapsed())
        }));
    }
    // Meanwhile a normal client: 30 requests, each answered promptly.
    let until_open = || async { g.gw.state.registry.open_connections() >= 150 };
    assert!(wait_until(Duration::from_secs(10), until_open).await, "slow connections established");
    for _ in 0..30 {
        let t = Instant::now();
        let r = request(addr, Some(ip("127.0.0.1")), "GET", "/", &[], b"").await;
        assert_eq!(r.status, 200);
        assert!(t.elapsed() < Duration::from_secs(2), "normal client served promptly: {:?}", t.elapsed());
    }
    let mut cut = 0;
    for h in slow {
        let (closed, after) = h.await.expect("join");
        if closed {
            cut += 1;
            assert!(after < Duration::from_secs(6), "slow connection cut within the header deadline: {after:?}");
        }
    }
    assert_eq!(cut, 200, "every slow connection was closed by the gateway");
    let stats = &g.gw.state.registry.stats;
    assert!(stats.timed_out.load(Ordering::SeqCst) >= 150);
}

/// A head trickling below the minimum data rate is cut long before the header timeout.
#[tokio::test]
async fn head_below_minimum_rate_is_cut_early() {
    let g = start(None, |c| {
        c.shield.header_timeout = Duration::from_secs(30);
        c.shield.min_rate_bytes_per_sec = 50;
        c.shield.rate_grace = Duration::from_millis(300);
    })
    .await;
    let mut s = connect_from(g.addr(), None).await.expect("connect");
    let t = Instant::now();
    let mut cut = false;
    for b in b"GET / HTTP/1.1\r\nHost: victim\r\nX-a: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".iter() {
        if s.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut = true;
                break;
            }
            _ => {}
        }
    }
    assert!(cut, "connection closed");
    assert!(t.elapsed() < Duration::from_secs(3), "cut by the rate rule, not the 30 s timeout: {:?}", t.elapsed());
}

#[tokio::test]
async fn slow_post_gets_408_and_upstream_never_sees_it() {
    let g = start(None, |c| {
        c.shield.body_timeout = Duration::from_secs(2);
        c.shield.min_rate_bytes_per_sec = 100;
        c.shield.rate_grace = Duration::from_millis(300);
    })
    .await;
    let mut s = connect_from(g.addr(), None).await.expect("connect");
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc").await.expect("write");
    let t = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), read_response(&mut s))
        .await
        .expect("answered in time")
        .expect("response");
    assert_eq!(r.status, 408);
    assert!(t.elapsed() < Duration::from_secs(3));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_triggers_attack_event_and_429_while_others_are_served() {
    let g = start(None, |c| {
        c.shield.auto_mitigation = true;
        c.shield.attack_min_rps = 30.0;
        c.shield.attack_multiplier = 4.0;
        c.shield.source_share = 0.2;
        c.shield.source_min_rps = 5.0;
        c.shield.attack_cooldown = Duration::from_millis(750);
    })
    .await;
    let addr = g.addr();
    // The flood: 4 keep-alive connections from 127.0.0.30, bounded at 3000 requests or 15 s.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut flood = Vec::new();
    for _ in 0..4 {
        let stop = stop.clone();
        flood.push(tokio::spawn(async move {
            let (mut ok, mut limited) = (0u32, 0u32);
            let Ok(mut s) = connect_from(addr, Some(ip("127.0.0.30"))).await else { return (0, 0) };
            let t = Instant::now();
            while !stop.load(Ordering::SeqCst) && ok + limited < 3000 && t.elapsed() < Duration::from_secs(15) {
                if s.write_all(b"GET /flood HTTP/1.1\r\nHost: a\r\n\r\n").await.is_err() {
                    break;
                }
                match read_response(&mut s).await {
                    Ok(r) if r.status == 429 => limited += 1,
                    Ok(_) => ok += 1,
                    Err(_) => break,
                }
            }
            (ok, limited)
        }));
    }
    let attacked = || async { g.gw.state.mitigator.under_attack() && g.gw.state.mitigator.mitigated_total() > 50 };
    assert!(wait_until(Duration::from_secs(10), attacked).await, "attack detected and mitigated");
    // A normal client keeps being served during the attack.
    for _ in 0..10 {
        assert_eq!(request(addr, Some(ip("127.0.0.1")), "GET", "/", &[], b"").await.status, 200);
    }
    stop.store(true, Ordering::SeqCst);
    let mut limited_total = 0;
    for f in flood {
        limited_total += f.await.expect("join").1;
    }
    assert!(limited_total > 0, "the flood got 429s");
    let ended = || async { !g.gw.state.mitigator.under_attack() };
    assert!(wait_until(Duration::from_secs(20), ended).await, "attack event ends once quiet");
    let events = g.gw.state.mitigator.events();
    let ev = events.last().expect("an event");
    assert!(ev.end_time.is_some());
    assert_eq!(ev.top_sources.first().map(|s| s.ip.as_str()), Some("127.0.0.30"));
    assert!(ev.mitigated_requests > 0);
    let admin = admin_get(&g, "/shield/attacks").await.json();
    assert_eq!(admin["AttackEvents"][0]["TopSources"][0]["Ip"], "127.0.0.30");
}
