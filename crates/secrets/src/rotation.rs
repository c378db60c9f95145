//! Rotation: the four Lambda steps (createSecret, setSecret, testSecret, finishSecret), run
//! through a rotator the server operator configures.
//!
//! `RotationLambdaARN` names a rotator: `arn:aws:lambda:REGION:ACCOUNT:function:NAME` → the rotator
//! registered as `NAME` in the rotators file (`RAMPART_SECRETS_ROTATORS`, JSON):
//!
//! ```json
//! {"rotators": {
//!   "hook":  {"type": "webhook", "url": "http://127.0.0.1:9000/rotate", "timeout_seconds": 30},
//!   "script": {"type": "command", "command": ["/usr/local/bin/rotate.sh"], "env": {"AWS_PROFILE": "rot"}},
//!   "pg":    {"type": "postgres"}
//! }}
//! ```
//!
//! Webhooks and commands receive the Lambda event `{"Step", "SecretId", "ClientRequestToken",
//! "RotationToken"}` and do the work themselves through the Secrets Manager API, like a Lambda.
//! The built-in `postgres` rotator is AWS's single-user PostgreSQL rotation.
//! Rotators come only from the server's configuration: a caller can never make the server call
//! an arbitrary URL or run a command.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{Result, SmError};
use crate::input::In;
use crate::model::put;
use crate::model::{SecretRec, VersionMeta, AWSCURRENT, AWSPENDING};
use crate::ops::SecretValue;
use crate::password::{generate, PasswordSpec};
use crate::schedule::{parse_expression, parse_window, Schedule};
use crate::SecretsManager;

pub const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

/// One step of one rotation, as a Lambda receives it.
#[derive(Clone, Debug)]
pub struct RotationEvent {
    pub step: &'static str,
    pub secret_arn: String,
    pub token: String,
    pub account: String,
    pub region: String,
}

impl RotationEvent {
    pub fn json(&self) -> Value {
        json!({
            "Step": self.step,
            "SecretId": self.secret_arn,
            "ClientRequestToken": self.token,
            "RotationToken": self.token,
        })
    }
}

/// Something that performs rotation steps.
pub trait Rotator: Send + Sync {
    fn run(&self, sm: &Arc<SecretsManager>, event: &RotationEvent) -> std::result::Result<(), String>;
}

/// The registered rotators by function name.
#[derive(Clone, Default)]
pub struct Rotators {
    map: HashMap<String, Arc<dyn Rotator>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotatorsFile {
    rotators: HashMap<String, RotatorSpec>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum RotatorSpec {
    Webhook {
        url: String,
        #[serde(default)]
        timeout_seconds: Option<u64>,
    },
    Command {
        command: Vec<String>,
        #[serde(default)]
        env: HashMap<String, String>,
        #[serde(default)]
        timeout_seconds: Option<u64>,
    },
    Postgres {
        #[serde(default)]
        timeout_seconds: Option<u64>,
    },
}

const DEFAULT_TIMEOUT: u64 = 60;

impl Rotators {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `rotator` as function `name`.
    pub fn register(&mut self, name: &str, rotator: Arc<dyn Rotator>) {
        self.map.insert(name.to_string(), rotator);
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Rotator>> {
        self.map.get(name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<_> = self.map.keys().cloned().collect();
        v.sort();
        v
    }

    /// Parse a rotators file (JSON).
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let file: RotatorsFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut r = Rotators::new();
        for (name, spec) in file.rotators {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
                return Err(format!("rotator name {name:?} is not a valid Lambda function name"));
            }
            let rot: Arc<dyn Rotator> = match spec {
                RotatorSpec::Webhook { url, timeout_seconds } => {
                    if !url.starts_with("http://") {
                        return Err(format!("rotator {name}: webhook URL must be http:// (got {url:?})"));
                    }
                    Arc::new(Webhook {
                        url,
                        timeout: StdDuration::from_secs(timeout_seconds.unwrap_or(DEFAULT_TIMEOUT)),
                    })
                }
                RotatorSpec::Command { command, env, timeout_seconds } => {
                    if command.is_empty() {
                        return Err(format!("rotator {name}: command must not be empty"));
                    }
                    Arc::new(CommandRotator {
                        command,
                        env,
                        timeout: StdDuration::from_secs(timeout_seconds.unwrap_or(DEFAULT_TIMEOUT)),
                    })
                }
                RotatorSpec::Postgres { timeout_seconds } => Arc::new(PostgresRotator {
                    timeout: StdDuration::from_secs(timeout_seconds.unwrap_or(DEFAULT_TIMEOUT)),
                }),
            };
            r.register(&name, rot);
        }
        Ok(r)
    }

    /// The rotators file named by `RAMPART_SECRETS_ROTATORS`, if set.
    pub fn from_env() -> std::result::Result<Self, String> {
        match std::env::var_os("RAMPART_SECRETS_ROTATORS") {
            None => Ok(Rotators::new()),
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("RAMPART_SECRETS_ROTATORS {}: {e}", path.to_string_lossy()))?;
                Self::from_json(&text).map_err(|e| format!("RAMPART_SECRETS_ROTATORS {}: {e}", path.to_string_lossy()))
            }
        }
    }
}

/// POSTs the event as JSON; any 2xx is success.
struct Webhook {
    url: String,
    timeout: StdDuration,
}

impl Rotator for Webhook {
    fn run(&self, _sm: &Arc<SecretsManager>, event: &RotationEvent) -> std::result::Result<(), String> {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(self.timeout)).http_status_as_error(false).build().into();
        let resp = agent
            .post(&self.url)
            .header("content-type", "application/json")
            .send(event.json().to_string())
            .map_err(|e| format!("webhook request failed: {e}"))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            // The body is not reported: a rotator might echo secret material.
            Err(format!("webhook answered HTTP {status}"))
        }
    }
}

/// Runs a local command with the event on stdin (and in `RAMPART_ROTATION_*` variables); exit 0 is success.
struct CommandRotator {
    command: Vec<String>,
    env: HashMap<String, String>,
    timeout: StdDuration,
}

impl Rotator for CommandRotator {
    fn run(&self, _sm: &Arc<SecretsManager>, event: &RotationEvent) -> std::result::Result<(), String> {
        let Some((program, args)) = self.command.split_first() else {
            return Err("the rotation command is empty".into());
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(&self.env)
            .env("RAMPART_ROTATION_STEP", event.step)
            .env("RAMPART_ROTATION_SECRET_ID", &event.secret_arn)
            .env("RAMPART_ROTATION_TOKEN", &event.token)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("cannot start {program}: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(event.json().to_string().as_bytes());
        }
        let mut stderr = child.stderr.take();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.take(4096).read_to_end(&mut buf);
            }
            let _ = tx.send(());
            buf
        });
        let deadline = std::time::Instant::now() + self.timeout;
        // The child's exit is what we wait for; stderr closing usually coincides with it.
        let _ = rx.recv_timeout(self.timeout);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let err = reader.join().unwrap_or_default();
                    if status.success() {
                        return Ok(());
                    }
                    let first = String::from_utf8_lossy(&err)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .chars()
                        .take(200)
                        .collect::<String>();
                    return Err(format!(
                        "command exited with {status}{}",
                        if first.is_empty() { String::new() } else { format!(": {first}") }
                    ));
                }
                Ok(None) if std::time::Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("command timed out after {}s", self.timeout.as_secs()));
                }
                Ok(None) => {
                    // Stderr closed early but the process lives on: wait for it in small steps.
                    std::thread::park_timeout(StdDuration::from_millis(20));
                }
                Err(e) => return Err(format!("waiting for command: {e}")),
            }
        }
    }
}

/// AWS's single-user PostgreSQL rotation: the secret is JSON with `host`, `port`, `username`,
/// `password`, `dbname`; the new password is set by connecting as the user with the current one.
struct PostgresRotator {
    timeout: StdDuration,
}

#[derive(Deserialize)]
struct PgSecret {
    host: String,
    #[serde(default)]
    port: Option<Value>,
    username: String,
    password: String,
    #[serde(default)]
    dbname: Option<String>,
}

impl PostgresRotator {
    fn parse(value: &SecretValue) -> std::result::Result<(PgSecret, Value), String> {
        let text = std::str::from_utf8(&value.bytes).map_err(|_| "the secret is not a JSON string".to_string())?;
        let json: Value = serde_json::from_str(text).map_err(|_| "the secret is not JSON".to_string())?;
        if !json.is_object() {
            return Err("the secret must be a JSON object".to_string());
        }
        let s: PgSecret = serde_json::from_value(json.clone())
            .map_err(|_| "the secret must have host, username and password (and may have port, dbname)".to_string())?;
        Ok((s, json))
    }

    fn connect(&self, s: &PgSecret) -> std::result::Result<postgres::Client, String> {
        let port = match &s.port {
            None => 5432,
            Some(Value::Number(n)) => n.as_u64().unwrap_or(5432) as u16,
            Some(Value::String(p)) => p.parse().map_err(|_| "port is not a number".to_string())?,
            Some(_) => return Err("port is not a number".into()),
        };
        let mut cfg = postgres::Config::new();
        cfg.host(&s.host)
            .port(port)
            .user(&s.username)
            .password(s.password.as_bytes())
            .dbname(s.dbname.as_deref().unwrap_or("postgres"))
            .connect_timeout(self.timeout)
            .application_name("rampart-secretsmanager-rotation");
        cfg.connect(postgres::NoTls)
            .map_err(|e| format!("cannot connect to {}:{port} as {}: {}", s.host, s.username, pg_reason(&e)))
    }
}

fn pg_reason(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    }
}

/// A SQL string literal (standard_conforming_strings on): single quotes doubled.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A SQL identifier.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

impl Rotator for PostgresRotator {
    fn run(&self, sm: &Arc<SecretsManager>, event: &RotationEvent) -> std::result::Result<(), String> {
        let ctx = sm.service_context(&event.account, &event.region);
        let aws = |e: SmError| rampart_protocol::AwsError::from(e).message;
        let rec = sm.find(&ctx, &event.secret_arn).map_err(aws)?.ok_or("the secret no longer exists")?;
        let current_id =
            rec.with_stage(AWSCURRENT).map(|v| v.id.clone()).ok_or("the secret has no AWSCURRENT version")?;
        let pending = rec.version(&event.token).filter(|v| v.has_value()).map(|v| v.id.clone());
        match event.step {
            "createSecret" => {
                if pending.is_some() {
                    return Ok(());
                }
                let current = sm.open_value(&ctx, &rec, &current_id).map_err(aws)?;
                let (_, mut json) = Self::parse(&current)?;
                // Characters that break connection strings or shells are left out, as AWS's templates do.
                let spec = PasswordSpec { exclude_characters: "/@\"'\\".into(), ..Default::default() };
                let password = generate(&spec).map_err(aws)?;
                put(&mut json, "password", Value::String(password.to_string()));
                let text = Zeroizing::new(json.to_string());
                let value = SecretValue { bytes: Zeroizing::new(text.as_bytes().to_vec()), binary: false };
                sm.put_version(&ctx, &rec, &event.token, &value, &[AWSPENDING.to_string()]).map_err(aws)?;
                Ok(())
            }
            "setSecret" => {
                let pending = pending.ok_or("createSecret did not store the pending version")?;
                let (new, _) = Self::parse(&sm.open_value(&ctx, &rec, &pending).map_err(aws)?)?;
                // Trust authentication (or a password already changed by an earlier attempt) means a
                // successful login proves nothing; so ALTER USER always runs, logged in with the current
                // password, or with the pending one when an earlier attempt already set it.
                let (cur, _) = Self::parse(&sm.open_value(&ctx, &rec, &current_id).map_err(aws)?)?;
                if cur.username != new.username {
                    return Err("the pending version names a different user".into());
                }
                let mut client = match self.connect(&cur) {
                    Ok(c) => c,
                    Err(first) => self.connect(&new).map_err(|_| first)?,
                };
                let sql = Zeroizing::new(format!(
                    "ALTER USER {} WITH PASSWORD {}",
                    quote_ident(&new.username),
                    quote_literal(&new.password)
                ));
                client.batch_execute(&sql).map_err(|e| format!("ALTER USER failed: {}", pg_reason(&e)))?;
                Ok(())
            }
            "testSecret" => {
                let pending = pending.ok_or("createSecret did not store the pending version")?;
                let (new, _) = Self::parse(&sm.open_value(&ctx, &rec, &pending).map_err(aws)?)?;
                let mut client = self.connect(&new)?;
                client.simple_query("SELECT 1").map_err(|e| format!("test query failed: {}", pg_reason(&e)))?;
                Ok(())
            }
            "finishSecret" => {
                if current_id == event.token {
                    return Ok(());
                }
                sm.update(&rec, |cur, _| {
                    cur.move_stage(AWSCURRENT, &event.token);
                    Ok(())
                })
                .map_err(aws)?;
                Ok(())
            }
            _ => Err(format!("unknown step {}", event.step)),
        }
    }
}

/// Validated RotationRules: `AutomaticallyAfterDays`, `ScheduleExpression`, `Duration`.
pub(crate) type RotationRules = (Option<i64>, Option<String>, Option<String>);

/// Parse and validate RotationRules.
pub(crate) fn parse_rules(rules: In<'_>) -> Result<RotationRules> {
    let days = rules.int("AutomaticallyAfterDays")?;
    let expr = rules.str("ScheduleExpression")?;
    let window = rules.str("Duration")?;
    if days.is_some() && expr.is_some() {
        return Err(SmError::InvalidParameter(
            "You cannot specify both rotation frequency and schedule expression together.".into(),
        ));
    }
    if let Some(d) = days {
        if !(1..=1000).contains(&d) {
            return Err(SmError::InvalidParameter(
                "RotationRules.AutomaticallyAfterDays must be within 1-1000.".into(),
            ));
        }
    }
    if let Some(e) = expr {
        parse_expression(e)?;
    }
    if let Some(w) = window {
        parse_window(w)?;
    }
    Ok((days, expr.map(str::to_string), window.map(str::to_string)))
}

/// When the next scheduled rotation is due, counted from `from`.
pub(crate) fn next_rotation(rec: &SecretRec, from: i64) -> Option<i64> {
    let base = OffsetDateTime::from_unix_timestamp_nanos(from as i128 * 1_000_000).ok()?;
    let schedule = match (&rec.rotation.automatically_after_days, &rec.rotation.schedule_expression) {
        (Some(d), _) => Schedule::Every(time::Duration::days(*d)),
        (None, Some(e)) => parse_expression(e).ok()?,
        (None, None) => return None,
    };
    schedule.next_after(base).map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]` → NAME.
pub(crate) fn function_name(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let parts: Vec<&str> = rest.split(':').collect();
    match parts.as_slice() {
        [_, "lambda", _, _, "function", name, ..] if !name.is_empty() => Some(name),
        _ => None,
    }
}

const CANNOT_INVOKE: &str = "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to the principal secretsmanager.amazonaws.com.";

impl SecretsManager {
    fn rotator_for(&self, lambda_arn: &str) -> Result<Arc<dyn Rotator>> {
        function_name(lambda_arn)
            .and_then(|n| self.rotators.get(n))
            .ok_or_else(|| SmError::Aws(rampart_protocol::AwsError::new("AccessDeniedException", CANNOT_INVOKE, 400)))
    }

    /// The version carrying AWSPENDING while not AWSCURRENT: a rotation in progress (or failed).
    fn pending_rotation(rec: &SecretRec) -> Option<&VersionMeta> {
        rec.versions.iter().find(|v| v.has(AWSPENDING) && !v.has(AWSCURRENT))
    }

    /// RotateSecret of `rec` (a live primary): configure rotation, and start it when `immediately`.
    pub(crate) fn rotate_secret(
        self: &Arc<Self>,
        rec: SecretRec,
        token: Option<String>,
        lambda: Option<String>,
        rules: Option<RotationRules>,
        immediately: bool,
    ) -> Result<Value> {
        let lambda_arn = lambda.or_else(|| rec.rotation.lambda_arn.clone()).ok_or_else(|| {
            SmError::InvalidRequest("No Lambda rotation function ARN is associated with this secret.".into())
        })?;
        self.rotator_for(&lambda_arn)?;
        if let Some(p) = Self::pending_rotation(&rec) {
            if token.as_deref() != Some(p.id.as_str()) {
                let (arn, pending) = (rec.arn.clone(), p.id.clone());
                self.spawn_rotation(rec.account.clone(), rec.region.clone(), arn, pending);
                return Err(SmError::InvalidRequest(
                    "A previous rotation isn't complete. That rotation will be reattempted.".into(),
                ));
            }
        }
        if immediately && rec.with_stage(AWSCURRENT).is_none() {
            return Err(SmError::InvalidRequest(
                "You can't rotate a secret that has no AWSCURRENT version. Store a value first.".into(),
            ));
        }
        let token = token.unwrap_or_else(crate::ops::new_uuid);
        let now = self.now_ms();
        let (rec, _) = self.update(&rec, |cur, _| {
            cur.rotation.enabled = true;
            cur.rotation.lambda_arn = Some(lambda_arn.clone());
            if let Some((days, expr, window)) = &rules {
                cur.rotation.automatically_after_days = *days;
                cur.rotation.schedule_expression = expr.clone();
                cur.rotation.duration = window.clone();
            }
            cur.rotation.next_rotation = next_rotation(cur, cur.rotation.last_rotated.unwrap_or(now).max(now));
            if immediately {
                if let Some(v) = cur.version(&token) {
                    if v.has_value() && !v.has(AWSPENDING) {
                        return Err(SmError::Exists(
                            "A version with this ClientRequestToken already exists. Use a new token to rotate.".into(),
                        ));
                    }
                } else {
                    cur.versions.push(VersionMeta {
                        id: token.clone(),
                        stages: Vec::new(),
                        created: now,
                        last_accessed: None,
                        key_arn: None,
                    });
                }
                cur.move_stage(AWSPENDING, &token);
            }
            cur.last_changed = now;
            Ok(())
        })?;
        let mut out = json!({"ARN": rec.arn, "Name": rec.name});
        if immediately {
            self.spawn_rotation(rec.account.clone(), rec.region.clone(), rec.arn.clone(), token.clone());
            put(&mut out, "VersionId", json!(token));
        }
        Ok(out)
    }

    pub(crate) fn cancel_rotate_secret(&self, rec: SecretRec) -> Result<Value> {
        if rec.rotation.lambda_arn.is_none() {
            // AWS's documented answer for a secret that never had rotation configured.
            return Err(SmError::InvalidRequest(
                "You tried to enable rotation on a secret that doesn't already have a Lambda function ARN configured and you didn't include such an ARN as a parameter in this call.".into(),
            ));
        }
        let now = self.now_ms();
        let (rec, _) = self.update(&rec, |cur, _| {
            cur.rotation.enabled = false;
            cur.rotation.next_rotation = None;
            cur.last_changed = now;
            Ok(())
        })?;
        let mut out = json!({"ARN": rec.arn, "Name": rec.name});
        if let Some(p) = Self::pending_rotation(&rec) {
            put(&mut out, "VersionId", json!(p.id));
        }
        Ok(out)
    }

    /// Start a scheduled rotation (from [`SecretsManager::tick`]).
    pub(crate) fn start_scheduled_rotation(self: &Arc<Self>, rec: &SecretRec) -> Result<()> {
        if let Some(p) = Self::pending_rotation(rec) {
            self.spawn_rotation(rec.account.clone(), rec.region.clone(), rec.arn.clone(), p.id.clone());
            return Ok(());
        }
        let token = crate::ops::new_uuid();
        let now = self.now_ms();
        // Decided again inside the (cluster-wide serialized) transaction: another node's sweep may
        // have started this rotation since `rec` was read.
        let (rec, started) = self.update(rec, |cur, _| {
            let due = cur.rotation.enabled && !cur.is_deleted() && cur.rotation.next_rotation.is_some_and(|n| n <= now);
            if !due || Self::pending_rotation(cur).is_some() {
                return Ok(false);
            }
            cur.versions.push(VersionMeta {
                id: token.clone(),
                stages: Vec::new(),
                created: now,
                last_accessed: None,
                key_arn: None,
            });
            cur.move_stage(AWSPENDING, &token);
            // Until this rotation finishes, the next is not due again.
            cur.rotation.next_rotation = next_rotation(cur, now);
            Ok(true)
        })?;
        if started {
            self.spawn_rotation(rec.account.clone(), rec.region.clone(), rec.arn.clone(), token);
        }
        Ok(())
    }

    /// Run the four steps for `token`, in the background (server) or inline (tests). In the
    /// background, once the calling API call's changes are committed (the job reads them).
    pub(crate) fn spawn_rotation(self: &Arc<Self>, account: String, region: String, arn: String, token: String) {
        let sm = self.clone();
        let start = move || {
            {
                let mut running = sm.rotating.lock().unwrap_or_else(|p| p.into_inner());
                if !running.insert(arn.clone()) {
                    return;
                }
            }
            let background = sm.background_rotation;
            let job_sm = sm.clone();
            let job = move || {
                job_sm.run_rotation(&account, &region, &arn, &token);
                job_sm.rotating.lock().unwrap_or_else(|p| p.into_inner()).remove(&arn);
            };
            if background {
                if let Err(e) = std::thread::Builder::new().name("secrets-rotation".into()).spawn(job) {
                    tracing::error!(error = %e, "cannot start a rotation thread");
                    sm.rotating.lock().unwrap_or_else(|p| p.into_inner()).clear();
                }
            } else {
                job();
            }
        };
        if self.background_rotation {
            rampart_store::unit::after_commit(Box::new(start));
        } else {
            start();
        }
    }

    fn run_rotation(self: &Arc<Self>, account: &str, region: &str, arn: &str, token: &str) {
        let ctx = self.service_context(account, region);
        let rec = match self.find(&ctx, arn) {
            Ok(Some(r)) if !r.is_deleted() => r,
            _ => return,
        };
        let Some(lambda) = rec.rotation.lambda_arn.clone() else { return };
        let rotator = match self.rotator_for(&lambda) {
            Ok(r) => r,
            Err(_) => {
                self.rotation_failed(&rec, "createSecret", token, format!("no rotator is registered for {lambda}"));
                return;
            }
        };
        for step in STEPS {
            let event = RotationEvent {
                step,
                secret_arn: rec.arn.clone(),
                token: token.to_string(),
                account: account.to_string(),
                region: region.to_string(),
            };
            tracing::info!(secret = %rec.arn, version_id = token, step, "rotation step");
            if let Err(message) = rotator.run(self, &event) {
                self.rotation_failed(&rec, step, token, message);
                return;
            }
        }
        let now = self.now_ms();
        let result = self.update(&rec, |cur, _| {
            if !cur.version(token).is_some_and(|v| v.has(AWSCURRENT)) {
                return Err(SmError::InvalidRequest(format!(
                    "finishSecret did not move AWSCURRENT to version {token}"
                )));
            }
            cur.remove_stage(AWSPENDING, token);
            cur.rotation.last_rotated = Some(now);
            cur.rotation.next_rotation = if cur.rotation.enabled { next_rotation(cur, now) } else { None };
            cur.rotation.last_failure = None;
            cur.last_changed = now;
            Ok(())
        });
        match result {
            Ok(_) => tracing::info!(secret = %rec.arn, version_id = token, "rotation succeeded"),
            Err(e) => self.rotation_failed(&rec, "finishSecret", token, rampart_protocol::AwsError::from(e).message),
        }
    }

    /// AWSCURRENT stays where it is, AWSPENDING stays for the retry; the failure is recorded.
    fn rotation_failed(&self, rec: &SecretRec, step: &str, token: &str, message: String) {
        tracing::warn!(secret = %rec.arn, version_id = token, step, error = %message, "rotation failed");
        let now = self.now_ms();
        let r = self.update(rec, |cur, _| {
            cur.rotation.last_failure = Some(crate::model::RotationFailure {
                at: now,
                step: step.to_string(),
                version_id: token.to_string(),
                message: message.clone(),
            });
            Ok(())
        });
        if let Err(e) = r {
            tracing::warn!(secret = %rec.arn, error = %e, "could not record the rotation failure");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names() {
        assert_eq!(function_name("arn:aws:lambda:us-east-1:111122223333:function:my-rot"), Some("my-rot"));
        assert_eq!(function_name("arn:aws:lambda:us-east-1:111122223333:function:my-rot:live"), Some("my-rot"));
        assert_eq!(function_name("arn:aws:s3:::bucket"), None);
        assert_eq!(function_name("my-rot"), None);
    }

    #[test]
    fn rotators_file() {
        let r = Rotators::from_json(
            r#"{"rotators": {"hook": {"type": "webhook", "url": "http://127.0.0.1:1/x"}, "pg": {"type": "postgres"},
                "cmd": {"type": "command", "command": ["/bin/true"]}}}"#,
        )
        .unwrap();
        assert_eq!(r.names(), vec!["cmd", "hook", "pg"]);
        assert!(Rotators::from_json(r#"{"rotators": {"x": {"type": "webhook", "url": "ftp://h"}}}"#).is_err());
        assert!(Rotators::from_json(r#"{"rotators": {"x": {"type": "lambda"}}}"#).is_err());
        assert!(Rotators::from_json(r#"{"rotators": {"a b": {"type": "postgres"}}}"#).is_err());
        assert!(Rotators::from_json(r#"{"rotators": {"c": {"type": "command", "command": []}}}"#).is_err());
    }

    #[test]
    fn sql_quoting() {
        assert_eq!(quote_literal("a'b"), "'a''b'");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
