//! rampart-loadgen: the load generator behind bench/server/run.sh.
//!
//! ```text
//! rampart-loadgen run   --url URL --op OP --connections N --count M --access-key AK --secret SK
//! rampart-loadgen setup --url URL --access-key AK --secret SK [--user-name NAME]
//! rampart-loadgen kms-setup --url URL --access-key AK --secret SK
//! rampart-loadgen start --health-url URL --log FILE [--timeout-ms MS] -- CMD ARGS…
//! ```
//! `run` fires M signed calls of OP (`iam-get-user` | `sts-get-caller-identity`) over N keep-alive
//! HTTP/1.1 connections and prints one JSON line (calls/s, latency percentiles, errors).
//! `setup` creates the IAM user that `iam-get-user` reads; `kms-setup` creates a KMS key and
//! prints `{"key_id":…,"ciphertext":…}` for the `kms-*` ops (`--key-id`, `--ciphertext`). `start` spawns a server, polls its
//! health URL until it answers 200 and prints `{"pid":…,"healthy_ms":…}`; the server keeps running.

mod args;
mod load;
mod request;
mod start;

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = match argv.first().map(String::as_str) {
        Some("run") => args::Args::parse(&argv[1..]).and_then(|a| load::run(&a)),
        Some("setup") => args::Args::parse(&argv[1..]).and_then(|a| load::setup(&a)),
        Some("kms-setup") => args::Args::parse(&argv[1..]).and_then(|a| load::kms_setup(&a)),
        Some("start") => start::start(&argv[1..]),
        _ => Err(format!("usage: rampart-loadgen run|setup|start …\n{}", args::USAGE)),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rampart-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
