//! Shield and Challenge timings on the real clock: the speeds the gateway's tests no longer assert
//! (they run on a manual clock and check behaviour only). Run by bench/gateway/run.sh:
//!
//!   cargo bench -p rampart-gateway --bench shield_timing -- [results.json]
//!
//! Gateway and upstream in-process on loopback, the gateway's default Shield settings unless noted.
//! Figures: how long a Slowloris connection, a head below the minimum rate and a slow POST survive;
//! how fast a normal client is served meanwhile; how long a flood takes to be detected and mitigated,
//! the normal client's latency during it, and how long the event takes to end once the flood stops;
//! the Challenge's proof of work at the default difficulty in Rust and, when `node` is installed, with
//! the page's own script.

#[path = "../../crates/gateway/tests/common/mod.rs"]
mod common;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    ms(v[i.min(v.len() - 1)])
}

/// Writes `head` a byte at a time every `gap` until the gateway closes the connection; how long it lived.
async fn trickle(addr: std::net::SocketAddr, src: IpAddr, head: &'static [u8], gap: Duration) -> Option<Duration> {
    let mut s = connect_from(addr, Some(src)).await.ok()?;
    let t = Instant::now();
    for b in head.iter().cycle().take(10_000) {
        if s.write_all(&[*b]).await.is_err() {
            return Some(t.elapsed());
        }
        let mut buf = [0u8; 1];
        match tokio::time::timeout(gap, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t.elapsed()),
            _ => {}
        }
        if t.elapsed() > Duration::from_secs(120) {
            return None;
        }
    }
    None
}

async fn slowloris() -> serde_json::Value {
    let g = start(None, |_| {}).await;
    let addr = g.addr();
    let cfg = g.gw.state.cfg.shield.clone();
    let head: &'static [u8] =
        b"GET / HTTP/1.1\r\nHost: victim\r\nX-a: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    let slow: Vec<_> = (0..200u32)
        .map(|i| {
            let src = ip(&format!("127.0.0.{}", 10 + i % 4));
            tokio::spawn(trickle(addr, src, head, Duration::from_millis(300)))
        })
        .collect();
    let open = || async { g.gw.state.registry.open_connections() >= 150 };
    wait_until(Duration::from_secs(10), open).await;
    let mut lat = Vec::new();
    let mut ok = 0;
    for _ in 0..30 {
        let t = Instant::now();
        if request(addr, Some(ip("127.0.0.1")), "GET", "/", &[], b"").await.status == 200 {
            ok += 1;
        }
        lat.push(t.elapsed());
    }
    let mut cut: Vec<Duration> = Vec::new();
    let mut survived = 0;
    for h in slow {
        match h.await.ok().flatten() {
            Some(d) => cut.push(d),
            None => survived += 1,
        }
    }
    json!({
        "slow_connections": 200, "byte_every_ms": 300,
        "header_timeout_s": cfg.header_timeout.as_secs_f64(), "min_rate_bytes_per_sec": cfg.min_rate_bytes_per_sec,
        "rate_grace_s": cfg.rate_grace.as_secs_f64(),
        "slow_cut": cut.len(), "slow_survived": survived,
        "slow_cut_p50_ms": pct(&mut cut, 0.5), "slow_cut_max_ms": pct(&mut cut, 1.0),
        "normal_ok": ok, "normal_requests": 30,
        "normal_p50_ms": pct(&mut lat, 0.5), "normal_max_ms": pct(&mut lat, 1.0),
    })
}

async fn head_below_rate() -> serde_json::Value {
    let g = start(None, |_| {}).await;
    let mut s = connect_from(g.addr(), None).await.ok();
    let t = Instant::now();
    let mut cut = None;
    if let Some(s) = s.as_mut() {
        let _ = s.write_all(b"GET / HTTP").await;
        let mut buf = [0u8; 16];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_secs(60), s.read(&mut buf)).await {
            cut = Some(t.elapsed());
        }
    }
    json!({"bytes_sent": 10, "cut_after_ms": cut.map(ms),
           "header_timeout_s": g.gw.state.cfg.shield.header_timeout.as_secs_f64()})
}

async fn slow_post() -> serde_json::Value {
    let g = start(None, |_| {}).await;
    let mut answered = None;
    if let Ok(mut s) = connect_from(g.addr(), None).await {
        let _ = s.write_all(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc").await;
        let t = Instant::now();
        if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(60), read_response(&mut s)).await {
            answered = Some((r.status, t.elapsed()));
        }
    }
    json!({"status": answered.map(|a| a.0), "answered_after_ms": answered.map(|a| ms(a.1)),
           "upstream_hits": g.upstream.hits.load(Ordering::SeqCst)})
}

fn shield_warm_up() -> Duration {
    rampart_gateway::shield::ddos::TICK * 44
}

async fn flood() -> serde_json::Value {
    let g = start(None, |c| {
        c.shield.auto_mitigation = true;
        c.shield.attack_min_rps = 200.0;
        c.shield.attack_cooldown = Duration::from_secs(5);
    })
    .await;
    let addr = g.addr();
    // The scenario, not synchronisation: a gateway that has been up a while (its detector past the
    // fast cold-start learning of its first 40 steps) when the flood starts.
    tokio::time::sleep(shield_warm_up()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let first_429 = Arc::new(std::sync::Mutex::new(None::<Duration>));
    let flooders: Vec<_> = (0..4)
        .map(|_| {
            let (stop, first) = (stop.clone(), first_429.clone());
            tokio::spawn(async move {
                let (mut ok, mut limited) = (0u64, 0u64);
                let Ok(mut s) = connect_from(addr, Some(ip("127.0.0.30"))).await else { return (0, 0) };
                while !stop.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(60) {
                    if s.write_all(b"GET /flood HTTP/1.1\r\nHost: a\r\n\r\n").await.is_err() {
                        break;
                    }
                    match read_response(&mut s).await {
                        Ok(r) if r.status == 429 => {
                            limited += 1;
                            let mut f = first.lock().unwrap_or_else(|p| p.into_inner());
                            f.get_or_insert(t0.elapsed());
                        }
                        Ok(_) => ok += 1,
                        Err(_) => break,
                    }
                }
                (ok, limited)
            })
        })
        .collect();
    let attacked = || async { g.gw.state.mitigator.under_attack() };
    let detected = wait_until(Duration::from_secs(30), attacked).await.then(|| t0.elapsed());
    let mut lat = Vec::new();
    let mut normal_ok = 0;
    for _ in 0..20 {
        let t = Instant::now();
        if request(addr, Some(ip("127.0.0.1")), "GET", "/", &[], b"").await.status == 200 {
            normal_ok += 1;
        }
        lat.push(t.elapsed());
    }
    stop.store(true, Ordering::SeqCst);
    let (mut ok, mut limited) = (0, 0);
    for f in flooders {
        let (o, l) = f.await.unwrap_or((0, 0));
        ok += o;
        limited += l;
    }
    let stopped = Instant::now();
    let ended = || async { !g.gw.state.mitigator.under_attack() };
    let ended = wait_until(Duration::from_secs(60), ended).await.then(|| stopped.elapsed());
    let first = *first_429.lock().unwrap_or_else(|p| p.into_inner());
    json!({
        "attack_min_rps": 200, "cooldown_s": 5, "flood_connections": 4,
        "warm_up_ms": ms(shield_warm_up()),
        "detected_after_ms": detected.map(ms), "first_429_after_ms": first.map(ms),
        "flood_served": ok, "flood_429": limited,
        "normal_ok": normal_ok, "normal_requests": 20,
        "normal_p50_ms": pct(&mut lat, 0.5), "normal_max_ms": pct(&mut lat, 1.0),
        "event_ended_after_flood_ms": ended.map(ms),
    })
}

async fn challenge() -> serde_json::Value {
    use sha2::Digest;
    let bits = rampart_gateway::token::DEFAULT_DIFFICULTY;
    let acl = acl(json!([{"Name": "ch", "Priority": 1, "Action": {"Challenge": {}}, "VisibilityConfig": vis("ch"),
        "Statement": {"ByteMatchStatement": {"SearchString": "/", "PositionalConstraint": "STARTS_WITH",
        "TextTransformations": [{"Priority": 0, "Type": "NONE"}], "FieldToMatch": {"UriPath": {}}}}}]));
    let g = start(Some(acl), |_| {}).await;
    let mut rust = Vec::new();
    let mut node = Vec::new();
    for _ in 0..5 {
        let page = get(g.addr(), "/", &[("Accept", "text/html")]).await.text();
        let seed = page.split("var seed=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("").to_string();
        let t = Instant::now();
        let _ = (0u64..).find(|n| {
            let d = sha2::Sha256::new().chain_update(&seed).chain_update(n.to_string()).finalize();
            rampart_gateway::token::leading_zero_bits(&d) >= u32::from(bits)
        });
        rust.push(t.elapsed());
        // The page's script under Node.js, fetching against the gateway (includes Node's start-up).
        let Some(script) = page.split("<script>").nth(1).and_then(|s| s.split("</script>").next()) else { continue };
        let harness = format!(
            "const f=globalThis.fetch;globalThis.fetch=(p,o)=>f('http://{}'+p,o);\
             globalThis.location={{reload(){{console.log('RELOAD');}}}};\
             globalThis.document={{getElementById(){{return {{}};}}}};\n{script}",
            g.addr()
        );
        let path = std::env::temp_dir().join(format!("rampart-challenge-{}.js", std::process::id()));
        if std::fs::write(&path, harness).is_err() {
            continue;
        }
        let t = Instant::now();
        let p2 = path.clone();
        let out = tokio::task::spawn_blocking(move || std::process::Command::new("node").arg(&p2).output()).await;
        let _ = std::fs::remove_file(&path);
        if let Ok(Ok(o)) = out {
            if String::from_utf8_lossy(&o.stdout).contains("RELOAD") {
                node.push(t.elapsed());
            }
        }
    }
    json!({"difficulty_bits": bits, "seeds": 5,
           "rust_solve_p50_ms": pct(&mut rust, 0.5), "rust_solve_max_ms": pct(&mut rust, 1.0),
           "node_page_script_runs": node.len(),
           "node_page_script_p50_ms": pct(&mut node, 0.5), "node_page_script_max_ms": pct(&mut node, 1.0)})
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let out = std::env::args().skip(1).find(|a| a.ends_with(".json"));
    let mut res = serde_json::Map::new();
    for (name, v) in [
        ("slowloris", slowloris().await),
        ("head_below_min_rate", head_below_rate().await),
        ("slow_post", slow_post().await),
        ("flood", flood().await),
        ("challenge", challenge().await),
    ] {
        println!("{name}: {v}");
        res.insert(name.to_string(), v);
    }
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(res)).unwrap_or_default();
    if let Some(p) = out {
        if let Err(e) = std::fs::write(&p, text) {
            eprintln!("cannot write {p}: {e}");
        }
    }
}
