//! Harness for the AWS SDK for Rust end-to-end tests (tests/e2e): a real `rampart serve` process and
//! SDK configs pointed at it.
//!
//! Every test starts its own server, in the durable default (`--data-dir` in a fresh temp dir, never
//! `--ephemeral`), on a free loopback port, with a random account ID and root credentials passed in
//! `RAMPART_*` env; it is healthy once `GET /_rampart/health` answers 200 (polled, with a timeout).
//! `Server::stop` sends SIGTERM and checks the exit code is 0; a server still running when its
//! `Server` is dropped (a failed test) is killed, and its logs are printed.
//!
//! The binary is `$RAMPART_BIN`, else `<repo>/target/debug/rampart`.

use std::collections::hash_map::RandomState;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_iam::config::Credentials;
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

pub const REGION: &str = "us-east-1";
/// Non-ASCII text (Latin-1, CJK, a symbol) that must round-trip exactly where a field allows it.
pub const NON_ASCII: &str = "naïve 日本語 ✓";
/// The same without the symbol: for fields whose pattern is `[\p{L}\p{Z}\p{N}_.:/=+\-@]*` (tag values).
pub const NON_ASCII_WORDS: &str = "naïve 日本語";
pub const ADMIN_ARN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A random 64-bit number (std's per-process random hash keys, mixed with a counter).
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

fn random_chars(alphabet: &[u8], n: usize) -> String {
    (0..n).map(|_| alphabet[(random_u64() % alphabet.len() as u64) as usize] as char).collect()
}

/// `unique("user")` → `user-4f1c9a0b2d7e`: a fresh name.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:012x}", random_u64() & 0xffff_ffff_ffff)
}

/// The bytes 0..=255, then 0..=255 reversed: every byte value, NUL and invalid UTF-8 included.
pub fn all_bytes() -> Vec<u8> {
    (0..=255u8).chain((0..=255u8).rev()).collect()
}

fn rampart_bin() -> PathBuf {
    let path = std::env::var_os("RAMPART_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/debug/rampart")));
    assert!(
        path.is_file(),
        "rampart binary not found at {}: build it first (`cargo build --bin rampart`) or point RAMPART_BIN at it",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One plain HTTP/1.1 GET of the health endpoint: true when it answers 200.
fn healthy(addr: SocketAddr) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(s, "GET /_rampart/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        Ok(&head == b"HTTP/1.1 200")
    };
    attempt().unwrap_or(false)
}

/// Credentials of an IAM user created for a test.
pub struct TestUser {
    pub name: String,
    pub arn: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// A running `rampart serve`.
pub struct Server {
    pub endpoint: String,
    pub account_id: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    work: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// Starts a server with a fresh data dir and waits until it is healthy.
    pub fn start() -> Server {
        Server::start_with_env(&[])
    }

    /// [`Server::start`] with more environment for `rampart serve` (e.g. RAMPART_KMS_XKS_ALLOW_HTTP).
    pub fn start_with_env(extra_env: &[(&str, &str)]) -> Server {
        let bin = rampart_bin();
        let work = std::env::temp_dir().join(unique(&format!("rampart-sdk-rust-{}", std::process::id())));
        let data = work.join("data");
        fs::create_dir_all(&work).unwrap();
        let account_id = (100_000_000_000 + random_u64() % 900_000_000_000).to_string();
        let access_key_id = format!("AKIA{}", random_chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16));
        let secret_access_key = random_chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40);
        let port = free_port();
        let mut cmd = Command::new(&bin);
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(&data)
            .current_dir(&work)
            .stdin(Stdio::null())
            .stdout(File::create(work.join("server.stdout")).unwrap())
            .stderr(File::create(work.join("server.stderr")).unwrap());
        // Nothing from the caller's AWS / RAMPART setup leaks in (RAMPART_STORE would pick another store).
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("AWS_") || k.starts_with("RAMPART_") {
                cmd.env_remove(&*k);
            }
        }
        cmd.env("RAMPART_ACCOUNT_ID", &account_id)
            .env("RAMPART_ROOT_ACCESS_KEY_ID", &access_key_id)
            .env("RAMPART_ROOT_SECRET_ACCESS_KEY", &secret_access_key);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        // If this test's thread dies without stopping it (the test process was killed), so does the
        // server: no orphaned servers holding ports.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut srv = Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            account_id,
            access_key_id,
            secret_access_key,
            work,
            child: Some(child),
        };
        srv.wait_healthy(SocketAddr::from(([127, 0, 0, 1], port)));
        srv
    }

    fn wait_healthy(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!("rampart serve exited with {status} before becoming healthy\n{}", self.logs());
            }
            if healthy(addr) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20)); // poll interval of a condition wait
        }
        panic!("rampart serve not healthy after {START_TIMEOUT:?}\n{}", self.logs());
    }

    /// The tail of the server's stdout and stderr.
    pub fn logs(&self) -> String {
        let tail = |name: &str| {
            let text = fs::read_to_string(self.work.join(name)).unwrap_or_default();
            let start = text.len().saturating_sub(4000);
            let start = (start..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
            text[start..].to_string()
        };
        format!("--- stdout ---\n{}\n--- stderr ---\n{}", tail("server.stdout"), tail("server.stderr"))
    }

    /// SIGTERM, then wait for the exit; asserts a clean exit (code 0) and removes the temp dir.
    pub fn stop(mut self) {
        let mut child = self.child.take().expect("not running");
        // SAFETY: kill(2) on the pid of a child this process started and has not reaped yet.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("rampart serve did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "rampart serve exited with {status} after SIGTERM\n{}", self.logs());
        let _ = fs::remove_dir_all(&self.work);
    }

    /// An SDK config signed as the account root.
    pub async fn root_config(&self) -> SdkConfig {
        self.config(&self.access_key_id, &self.secret_access_key, None).await
    }

    /// An SDK config for these credentials: the endpoint URL is the only change from AWS.
    pub async fn config(&self, key: &str, secret: &str, token: Option<&str>) -> SdkConfig {
        sdk_config(&self.endpoint, Credentials::new(key, secret, token.map(str::to_string), None, "rampart-test")).await
    }

    /// Creates an IAM user (with these inline policies) and an access key for it, as root.
    pub async fn make_user(&self, iam: &aws_sdk_iam::Client, inline: &[&str]) -> TestUser {
        let name = unique("user");
        let user = iam.create_user().user_name(&name).send().await.unwrap();
        let arn = user.user().unwrap().arn().to_string();
        for (i, doc) in inline.iter().enumerate() {
            iam.put_user_policy()
                .user_name(&name)
                .policy_name(format!("p{i}"))
                .policy_document(*doc)
                .send()
                .await
                .unwrap();
        }
        let key = iam.create_access_key().user_name(&name).send().await.unwrap();
        let key = key.access_key().unwrap();
        TestUser {
            name,
            arn,
            access_key_id: key.access_key_id().to_string(),
            secret_access_key: key.secret_access_key().to_string(),
        }
    }

    pub async fn user_config(&self, user: &TestUser) -> SdkConfig {
        self.config(&user.access_key_id, &user.secret_access_key, None).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("rampart serve (work dir {}) was killed\n{}", self.work.display(), self.logs());
        }
    }
}

/// The config a user of the SDK writes, with the endpoint URL pointed at Rampart. Retries are off
/// (the first answer is what the tests assert on); the HTTP client is plain HTTP (no TLS stack to
/// build: the server is on loopback).
pub async fn sdk_config(endpoint: &str, credentials: Credentials) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(credentials)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(RetryConfig::disabled())
        .load()
        .await
}

/// An IAM policy document allowing `actions` on `resource`.
pub fn allow(actions: &[&str], resource: &str) -> String {
    let actions: Vec<String> = actions.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{}],"Resource":"{resource}"}}]}}"#,
        actions.join(",")
    )
}

/// The error code and message of an SDK error (any service).
pub fn code_message<E: ProvideErrorMetadata>(err: &E) -> (String, String) {
    (err.code().unwrap_or_default().to_string(), err.message().unwrap_or_default().to_string())
}

/// The HTTP status of an SDK error's response.
pub fn status<E>(err: &SdkError<E, HttpResponse>) -> u16 {
    err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0)
}

/// Decodes the RFC 3986 percent-encoding IAM applies to policy documents in its responses.
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("bad percent-encoding"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("percent-decoded document is not UTF-8")
}
