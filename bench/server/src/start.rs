//! `start`: spawn a server, measure the time until its health URL answers 200.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct StartArgs {
    health_url: String,
    log: String,
    timeout: Duration,
    command: Vec<String>,
}

fn parse(argv: &[String]) -> Result<StartArgs, String> {
    let usage = "start --health-url http://HOST:PORT/PATH --log FILE [--timeout-ms MS] -- CMD ARGS…";
    let (flags, command) = match argv.iter().position(|a| a == "--") {
        Some(i) => (&argv[..i], argv[i + 1..].to_vec()),
        None => return Err(format!("missing `-- CMD`\n{usage}")),
    };
    let mut a = StartArgs { health_url: String::new(), log: String::new(), timeout: Duration::from_secs(30), command };
    let mut it = flags.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--health-url" => a.health_url = value.clone(),
            "--log" => a.log = value.clone(),
            "--timeout-ms" => {
                a.timeout = Duration::from_millis(value.parse().map_err(|_| format!("--timeout-ms: {value:?}"))?)
            }
            other => return Err(format!("unknown flag {other:?}\n{usage}")),
        }
    }
    if a.health_url.is_empty() || a.log.is_empty() || a.command.is_empty() {
        return Err(usage.to_string());
    }
    Ok(a)
}

/// `host:port` and path of an `http://` URL.
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("http://").ok_or("--health-url must be http://")?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    Ok((authority.to_string(), path))
}

/// One `GET` on a fresh connection; `true` on a 200.
fn healthy(authority: &str, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(authority) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(s, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && (head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
}

pub fn start(argv: &[String]) -> Result<String, String> {
    let a = parse(argv)?;
    let (authority, path) = split_url(&a.health_url)?;
    if healthy(&authority, &path) {
        return Err(format!("something already answers on {authority}"));
    }
    let log = File::create(&a.log).map_err(|e| format!("{}: {e}", a.log))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    // The child's output goes to the log, never to our stdout: the caller reads our stdout to the end.
    let mut child = Command::new(&a.command[0])
        .args(&a.command[1..])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", a.command[0]))?;
    loop {
        if healthy(&authority, &path) {
            let ms = t0.elapsed().as_secs_f64() * 1000.0;
            return Ok(format!("{{\"pid\":{},\"healthy_ms\":{ms:.1}}}", child.id()));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("server exited before it was healthy ({status}); see {}", a.log));
        }
        if t0.elapsed() > a.timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("not healthy after {:?}; see {}", a.timeout, a.log));
        }
        // Connection attempts to a closed loopback port fail in microseconds; a short pause keeps
        // the poll from competing with the starting server for CPU.
        std::thread::sleep(Duration::from_micros(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_url("http://127.0.0.1:4566/_rampart/health").unwrap(),
            ("127.0.0.1:4566".to_string(), "/_rampart/health".to_string())
        );
        assert_eq!(split_url("http://h:1").unwrap(), ("h:1".to_string(), "/".to_string()));
        assert!(split_url("https://h").is_err());
    }

    #[test]
    fn needs_a_command() {
        let argv: Vec<String> =
            ["--health-url", "http://h:1/", "--log", "/tmp/x"].iter().map(|s| s.to_string()).collect();
        assert!(parse(&argv).is_err());
    }

    #[test]
    fn a_server_that_dies_is_reported() {
        let log = std::env::temp_dir().join(format!("loadgen-start-test-{}.log", std::process::id()));
        let argv: Vec<String> = ["--health-url", "http://127.0.0.1:9/", "--log", log.to_str().unwrap(), "--", "false"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let err = start(&argv).unwrap_err();
        assert!(err.contains("exited before it was healthy"), "{err}");
        let _ = std::fs::remove_file(log);
    }
}
