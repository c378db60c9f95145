//! `rampart`: the control plane (`serve`), the gateway, and offline policy tools.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

mod config;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "rampart", version, about = "Self-hosted AWS security services: IAM, STS, KMS, … — enforced")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (IAM, STS, …) speaking AWS's wire protocols.
    Serve(ServeArgs),
    /// Run the WAF + Shield reverse proxy in front of your own HTTP service.
    Gateway(Box<rampart_gateway::GatewayArgs>),
    /// Offline policy tools on the same engine the server uses.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Store administration (moving a data directory to PostgreSQL).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Copy a data directory (SQLite store, account.json, master.key) while the server runs.
    /// Restore: `rampart serve --data-dir DEST`. A PostgreSQL store is backed up with pg_dump.
    Backup {
        /// The data directory to back up.
        #[arg(long, env = "RAMPART_DATA_DIR")]
        data_dir: PathBuf,
        /// The backup: a new directory (refused when it exists).
        #[arg(long)]
        to: PathBuf,
        /// The master key, when it is kept outside the data directory.
        #[arg(long, env = "RAMPART_MASTER_KEY_FILE")]
        master_key_file: Option<PathBuf>,
        /// A PostgreSQL store is not copied by rampart: given, prints how to back it up with pg_dump.
        #[arg(long, env = "RAMPART_STORE", hide_env_values = true)]
        store: Option<String>,
    },
    /// Offline CloudTrail tools.
    Trail {
        #[command(subcommand)]
        command: TrailCommand,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy a stopped server's data directory (SQLite) into an empty PostgreSQL database.
    Migrate {
        /// The data directory to copy from (rampart.sqlite, account.json, master.key).
        #[arg(long)]
        from: PathBuf,
        /// The target: postgres://user:password@host:port/dbname[?schema=NAME].
        #[arg(long, env = "RAMPART_STORE", hide_env_values = true)]
        to: String,
    },
}

#[derive(Subcommand)]
enum TrailCommand {
    /// Validate a trail's delivered files (like `aws cloudtrail validate-logs`): every digest's
    /// signature, the digest chain, every log file's hash; unlisted log files count as added.
    /// Exits 0 when everything is valid, 1 otherwise.
    Verify {
        /// The trail's bucket directory: <trail-dir>/<S3BucketName>.
        dir: PathBuf,
        /// Public key (DER, from ListPublicKeys or <trail-dir>/public-keys/). Repeatable.
        /// Default: the keys in <trail-dir>/public-keys/ beside DIR.
        #[arg(long = "public-key")]
        public_keys: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// A TOML file setting any of these flags (keys are the flag names without the leading dashes: `data-dir = "…"`).
    /// Flags and RAMPART_* variables override it.
    #[arg(long, env = "RAMPART_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "RAMPART_LISTEN", default_value = "127.0.0.1:4566")]
    listen: String,
    /// Directory for the store, the account identity and the master key [default: ./rampart-data;
    /// in memory with --dev or --compat].
    #[arg(long, env = "RAMPART_DATA_DIR", conflicts_with = "ephemeral")]
    data_dir: Option<PathBuf>,
    /// Keep everything in memory; nothing is written to disk.
    #[arg(long, env = "RAMPART_EPHEMERAL")]
    ephemeral: bool,
    /// The account ID (12 digits). Default: made at first start and kept in the data directory.
    #[arg(long, env = "RAMPART_ACCOUNT_ID")]
    account_id: Option<String>,
    /// Root access key ID. Default: made at first start, printed once, kept in the data directory.
    #[arg(long, env = "RAMPART_ROOT_ACCESS_KEY_ID", hide_env_values = true)]
    root_access_key_id: Option<String>,
    /// Root secret access key (prefer the environment variable over the flag).
    #[arg(long, env = "RAMPART_ROOT_SECRET_ACCESS_KEY", hide_env_values = true)]
    root_secret_access_key: Option<String>,
    /// LocalStack-style development defaults: account 000000000000, root keys test/test, in memory
    /// unless --data-dir is given.
    #[arg(long, env = "RAMPART_DEV")]
    dev: bool,
    /// Follow another emulator's server-mode conventions (moto: account 123456789012, any access key
    /// is the root until INITIAL_NO_AUTH_ACTION_COUNT calls are spent, /moto-api/reset …).
    #[arg(long, env = "RAMPART_COMPAT", value_enum)]
    compat: Option<CompatArg>,
    /// Keep the store in PostgreSQL: postgres://user:password@host:port/dbname[?schema=NAME&pool_size=N].
    /// Several nodes may share one database. Default: embedded SQLite in the data directory.
    #[arg(long, env = "RAMPART_STORE", hide_env_values = true, conflicts_with = "ephemeral")]
    store: Option<String>,
    /// The master key file (32 bytes, mode 0600). Default: master.key in the data directory.
    #[arg(long, env = "RAMPART_MASTER_KEY_FILE", conflicts_with = "ephemeral")]
    master_key_file: Option<PathBuf>,
    /// Where CloudTrail trails deliver log and digest files. Default: <data-dir>/trails.
    #[arg(long, env = "RAMPART_TRAIL_DIR")]
    trail_dir: Option<PathBuf>,
    /// Seconds between CloudTrail deliveries (StopLogging and shutdown also deliver).
    #[arg(long, env = "RAMPART_TRAIL_DELIVERY_INTERVAL", default_value_t = 300)]
    trail_delivery_interval: u64,
    /// Threads serving connections, each with its own listening socket [default: one per CPU].
    #[arg(long, env = "RAMPART_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Log lines as text or as JSON objects, one a line (on standard error).
    #[arg(long, env = "RAMPART_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log filter (tracing env-filter syntax, e.g. `info,rampart_iam=debug`) [default: info].
    #[arg(long, env = "RAMPART_LOG")]
    log: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum CompatArg {
    Moto,
}

#[derive(Clone, Copy, Default, ValueEnum)]
enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Evaluate one request (or a JSON array of requests) with its policies; prints the decisions.
    Eval {
        /// Input file, or `-` for standard input.
        #[arg(default_value = "-")]
        file: String,
    },
    /// Validate a policy document as AWS would for the given policy type; prints findings.
    Validate {
        /// Policy document file, or `-` for standard input.
        file: String,
        #[arg(long = "type", value_enum, default_value = "identity")]
        policy_type: PolicyKindArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum PolicyKindArg {
    Identity,
    Resource,
    Trust,
    Scp,
    Rcp,
}

impl From<PolicyKindArg> for rampart_policy::PolicyType {
    fn from(k: PolicyKindArg) -> Self {
        use rampart_policy::PolicyType as T;
        match k {
            PolicyKindArg::Identity => T::Identity,
            PolicyKindArg::Resource => T::Resource,
            PolicyKindArg::Trust => T::Trust,
            PolicyKindArg::Scp => T::ServiceControl,
            PolicyKindArg::Rcp => T::ResourceControl,
        }
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Serve(args) => {
            let serve_matches = matches.subcommand_matches("serve").cloned().unwrap_or_default();
            serve(args, &serve_matches)
        }
        Command::Gateway(args) => gateway(*args),
        Command::Policy { command } => policy(command),
        Command::Store { command } => store(command),
        Command::Backup { data_dir, to, master_key_file, store } => {
            backup(&data_dir, &to, master_key_file.as_deref(), store.as_deref())
        }
        Command::Trail { command: TrailCommand::Verify { dir, public_keys } } => trail_verify(&dir, &public_keys),
    }
}

fn gateway(args: rampart_gateway::GatewayArgs) -> ExitCode {
    let format = match std::env::var("RAMPART_LOG_FORMAT") {
        Ok(v) => match LogFormat::from_str(&v, false) {
            Ok(f) => f,
            Err(_) => {
                eprintln!("rampart: RAMPART_LOG_FORMAT must be text or json, got {v:?}");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => LogFormat::Text,
    };
    init_tracing(format, std::env::var("RAMPART_LOG").ok().as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rampart: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(rampart_gateway::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to standard error, as text or as one JSON object a line.
fn init_tracing(format: LogFormat, filter: Option<&str>) {
    let filter = filter
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        // Colours only on a terminal: a log file or journal gets plain text.
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
    }
}

fn serve(mut args: ServeArgs, matches: &clap::ArgMatches) -> ExitCode {
    if let Some(path) = args.config.clone() {
        if let Err(e) = config::ServeFile::load(&path).and_then(|file| config::merge(&mut args, matches, file)) {
            eprintln!("rampart: {e}");
            return ExitCode::FAILURE;
        }
    }
    init_tracing(args.log_format, args.log.as_deref());
    let config = match serve_config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rampart: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rampart_server::serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolve `serve`'s flags: `--dev` and `--compat` supply defaults that explicit settings override.
fn serve_config(args: ServeArgs) -> Result<rampart_server::ServerConfig, String> {
    use rampart_server::compat::{parse_no_auth_count, CompatMode, MOTO_ACCOUNT_ID};
    let compat = args.compat.map(|CompatArg::Moto| CompatMode::Moto);
    let (default_account, default_keys) = match (compat, args.dev) {
        (Some(CompatMode::Moto), _) => (Some(MOTO_ACCOUNT_ID), true),
        (None, true) => (Some("000000000000"), true),
        (None, false) => (None, false),
    };
    if compat.is_some() && args.data_dir.is_some() {
        // POST /moto-api/reset starts over from nothing, as moto's in-memory server does.
        return Err("--compat moto keeps its state in memory; drop --data-dir".into());
    }
    let convention = compat.is_some() || args.dev;
    let store = args.store.filter(|s| !s.is_empty());
    let ephemeral = args.ephemeral || (convention && args.data_dir.is_none() && store.is_none());
    let data_dir = (!ephemeral).then(|| args.data_dir.unwrap_or_else(|| PathBuf::from("./rampart-data")));
    let keys_given = args.root_access_key_id.is_some() || args.root_secret_access_key.is_some();
    let (root_access_key_id, root_secret_access_key) = if default_keys && !keys_given {
        (Some("test".to_string()), Some("test".to_string()))
    } else {
        (args.root_access_key_id, args.root_secret_access_key)
    };
    // moto reads INITIAL_NO_AUTH_ACTION_COUNT from its environment at start ("inf" when unset).
    let initial_no_auth_action_count = match std::env::var("INITIAL_NO_AUTH_ACTION_COUNT") {
        Ok(v) if compat.is_some() => {
            parse_no_auth_count(&v).map_err(|e| format!("INITIAL_NO_AUTH_ACTION_COUNT: {e}"))?
        }
        _ => None,
    };
    // The key itself comes only from the environment: a command-line value would show in `ps`.
    let master_key = match std::env::var("RAMPART_MASTER_KEY") {
        Ok(v) if !v.is_empty() => {
            if ephemeral {
                return Err("RAMPART_MASTER_KEY is for a data directory or --store; --ephemeral needs none".into());
            }
            Some(v.parse::<rampart_server::bootstrap::InlineMasterKey>()?)
        }
        _ => None,
    };
    Ok(rampart_server::ServerConfig {
        listen: args.listen,
        data_dir,
        ephemeral,
        account_id: args.account_id.or(default_account.map(str::to_string)),
        root_access_key_id,
        root_secret_access_key,
        compat,
        initial_no_auth_action_count,
        store,
        master_key_file: args.master_key_file,
        master_key,
        trail_dir: args.trail_dir,
        trail_delivery_interval_secs: Some(args.trail_delivery_interval),
        threads: args.threads.map(usize::from),
        connections: Default::default(),
        // LocalStack's account-number keys: `--dev` only (not moto's mode, not the default).
        dev_account_keys: args.dev && compat.is_none(),
    })
}

fn store(command: StoreCommand) -> ExitCode {
    match command {
        StoreCommand::Migrate { from, to } => match rampart_server::bootstrap::migrate_to_postgres(&from, &to) {
            Ok(r) => {
                println!(
                    "Copied {} rows of account {} into the PostgreSQL store.\nStart each node with --store <URL> and \
                     the same master key: --master-key-file {} (or a copy of it).",
                    r.rows,
                    r.account_id,
                    r.master_key.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rampart store migrate: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn backup(dir: &std::path::Path, to: &std::path::Path, key: Option<&std::path::Path>, store: Option<&str>) -> ExitCode {
    if store.is_some_and(|s| !s.is_empty()) {
        eprintln!(
            "rampart backup: the store is PostgreSQL; back it up with PostgreSQL's tools and keep the master key \
             apart, e.g.\n  pg_dump --format=custom --schema=SCHEMA --file=rampart.pgdump 'postgres://USER@HOST/DB'\n  \
             cp MASTER_KEY_FILE /secure/place/master.key\n(see docs/operations.md#backups)"
        );
        return ExitCode::from(2);
    }
    match rampart_server::backup::backup_data_dir(dir, to, key) {
        Ok(r) => {
            println!(
                "Backed up {} to {} ({} bytes of store): {}.\nRestore: rampart serve --data-dir {}",
                dir.display(),
                r.dest.display(),
                r.store_bytes,
                r.files.join(", "),
                r.dest.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rampart backup: {e}");
            ExitCode::FAILURE
        }
    }
}

fn trail_verify(dir: &std::path::Path, public_keys: &[PathBuf]) -> ExitCode {
    let keys = if public_keys.is_empty() {
        rampart_trail::verify::published_keys(dir)
    } else {
        rampart_trail::verify::load_keys(public_keys)
    };
    let report = keys.and_then(|keys| rampart_trail::verify::verify(dir, &keys));
    match report {
        Ok(r) => {
            print!("{}", r.render(dir));
            if r.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("rampart trail verify: {e}");
            ExitCode::from(2)
        }
    }
}

fn read_input(file: &str) -> Result<String, String> {
    let mut s = String::new();
    if file == "-" {
        std::io::stdin().read_to_string(&mut s).map_err(|e| format!("cannot read standard input: {e}"))?;
    } else {
        s = std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?;
    }
    Ok(s)
}

fn policy(command: PolicyCommand) -> ExitCode {
    match command {
        PolicyCommand::Eval { file } => {
            let input = match read_input(&file) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("rampart: {e}");
                    return ExitCode::from(2);
                }
            };
            match rampart_policy::harness::eval_json(&input) {
                Ok(out) => {
                    println!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("rampart: {e}");
                    ExitCode::from(2)
                }
            }
        }
        PolicyCommand::Validate { file, policy_type } => {
            let input = match read_input(&file) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("rampart: {e}");
                    return ExitCode::from(2);
                }
            };
            let findings = rampart_policy::harness::validate(&input, policy_type.into());
            match serde_json::to_string_pretty(&findings) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("rampart: {e}");
                    return ExitCode::from(2);
                }
            }
            if findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
