//! `rampart serve --config FILE`: a TOML file that can set every flag of `serve`.
//!
//! Each key is a flag's name without its dashes (`data-dir = "/var/lib/rampart"`). Precedence:
//! flags > `RAMPART_*` environment variables > the file > defaults. A key the file does not know is
//! an error that names it (a typo must not silently fall back to a default).

use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, ValueEnum};
use serde::Deserialize;

use crate::{CompatArg, LogFormat, ServeArgs};

/// The file's keys: `serve`'s flags, in kebab-case as on the command line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeFile {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    ephemeral: Option<bool>,
    account_id: Option<String>,
    root_access_key_id: Option<String>,
    root_secret_access_key: Option<String>,
    dev: Option<bool>,
    compat: Option<String>,
    store: Option<String>,
    master_key_file: Option<PathBuf>,
    trail_dir: Option<PathBuf>,
    trail_delivery_interval: Option<u64>,
    threads: Option<u16>,
    log_format: Option<String>,
    log: Option<String>,
}

impl ServeFile {
    /// Read and parse `path`.
    pub fn load(path: &Path) -> Result<ServeFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("config file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    fn parse(text: &str) -> Result<ServeFile, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }
}

/// Whether `id` came neither from the command line nor from the environment.
fn unset(matches: &ArgMatches, id: &str) -> bool {
    matches!(matches.value_source(id), None | Some(ValueSource::DefaultValue))
}

/// Fill the settings of `args` that flags and environment left unset from `file`.
pub fn merge(args: &mut ServeArgs, matches: &ArgMatches, file: ServeFile) -> Result<(), String> {
    // Which of the settings that exclude `ephemeral` the file supplied (a flag beats the file).
    let mut from_file: Vec<&'static str> = Vec::new();
    macro_rules! take {
        ($field:ident, $id:literal) => {
            if let Some(v) = file.$field {
                if unset(matches, $id) {
                    args.$field = v.into();
                    from_file.push($id);
                }
            }
        };
    }
    take!(listen, "listen");
    take!(data_dir, "data_dir");
    take!(ephemeral, "ephemeral");
    take!(account_id, "account_id");
    take!(root_access_key_id, "root_access_key_id");
    take!(root_secret_access_key, "root_secret_access_key");
    take!(dev, "dev");
    take!(store, "store");
    take!(master_key_file, "master_key_file");
    take!(trail_dir, "trail_dir");
    take!(trail_delivery_interval, "trail_delivery_interval");
    take!(log, "log");
    if let Some(v) = file.compat {
        if unset(matches, "compat") {
            args.compat =
                Some(CompatArg::from_str(&v, false).map_err(|_| format!("compat: unknown value {v:?} (moto)"))?);
        }
    }
    if let Some(v) = file.log_format {
        if unset(matches, "log_format") {
            args.log_format =
                LogFormat::from_str(&v, false).map_err(|_| format!("log-format: unknown value {v:?} (text, json)"))?;
        }
    }
    if let Some(n) = file.threads {
        if !(1..=1024).contains(&n) {
            return Err(format!("threads: {n} is not in 1..=1024"));
        }
        if unset(matches, "threads") {
            args.threads = Some(n);
        }
    }
    resolve_ephemeral(args, &from_file)
}

/// `ephemeral` excludes a data directory, a store URL and a master key file. When one side of a
/// clash came from the file and the other from flags or the environment, the flag wins; a file
/// that sets both is refused.
fn resolve_ephemeral(args: &mut ServeArgs, from_file: &[&str]) -> Result<(), String> {
    if !args.ephemeral {
        return Ok(());
    }
    let persistent = [
        ("data_dir", "data-dir", args.data_dir.is_some()),
        ("store", "store", args.store.is_some()),
        ("master_key_file", "master-key-file", args.master_key_file.is_some()),
    ];
    let clashing: Vec<_> = persistent.iter().filter(|(_, _, set)| *set).collect();
    if clashing.is_empty() {
        return Ok(());
    }
    if from_file.contains(&"ephemeral") {
        if let Some((_, name, _)) = clashing.iter().find(|(id, _, _)| from_file.contains(id)) {
            return Err(format!("ephemeral keeps everything in memory; it cannot be used with {name}"));
        }
        // The file's `ephemeral` yields to a data directory or store given as a flag.
        args.ephemeral = false;
    } else {
        // `--ephemeral` given as a flag: the file's persistent settings do not apply.
        for (id, _, _) in clashing {
            match *id {
                "data_dir" => args.data_dir = None,
                "store" => args.store = None,
                _ => args.master_key_file = None,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let e = ServeFile::parse("listen = \"127.0.0.1:1\"\ndata_dir = \"/x\"\n").unwrap_err();
        assert!(e.contains("unknown field `data_dir`"), "{e}");
        let f = ServeFile::parse("listen = \"127.0.0.1:1\"\ndata-dir = \"/x\"\nthreads = 2\n").unwrap();
        assert_eq!(f.data_dir.as_deref(), Some(Path::new("/x")));
        assert_eq!(f.threads, Some(2));
        let e = ServeFile::parse("threads = \"two\"").unwrap_err();
        assert!(e.contains("threads"), "{e}");
    }

    /// `rampart serve FLAGS…` merged with the file `toml`.
    fn merged(flags: &[&str], toml: &str) -> Result<ServeArgs, String> {
        use clap::{CommandFactory, FromArgMatches};
        let argv = ["rampart", "serve"].into_iter().chain(flags.iter().copied());
        let matches = crate::Cli::command().try_get_matches_from(argv).map_err(|e| e.to_string())?;
        let serve = matches.subcommand_matches("serve").cloned().unwrap();
        let mut args = match crate::Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?.command {
            crate::Command::Serve(a) => a,
            _ => unreachable!(),
        };
        merge(&mut args, &serve, ServeFile::parse(toml)?)?;
        Ok(args)
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let a =
            merged(&["--listen", "127.0.0.1:9"], "listen = \"0.0.0.0:1\"\nthreads = 3\nlog-format = \"json\"").unwrap();
        assert_eq!(a.listen, "127.0.0.1:9");
        assert_eq!(a.threads, Some(3));
        assert!(matches!(a.log_format, LogFormat::Json));
        let a = merged(&[], "trail-delivery-interval = 7\ncompat = \"moto\"").unwrap();
        assert_eq!(a.trail_delivery_interval, 7);
        assert!(a.compat.is_some());
        assert_eq!(merged(&[], "").unwrap().trail_delivery_interval, 300, "the default stands");
        assert!(merged(&[], "compat = \"localstack\"").err().unwrap().contains("compat"));
        assert!(merged(&[], "threads = 0").err().unwrap().contains("threads"));
    }

    #[test]
    fn ephemeral_clashes_resolve_towards_the_flag() {
        let a = merged(&["--ephemeral"], "data-dir = \"/var/lib/rampart\"").unwrap();
        assert!(a.ephemeral && a.data_dir.is_none());
        let a = merged(&["--data-dir", "/d"], "ephemeral = true").unwrap();
        assert!(!a.ephemeral && a.data_dir.as_deref() == Some(Path::new("/d")));
        let e = merged(&[], "ephemeral = true\nstore = \"postgres://h/db\"").err().unwrap();
        assert!(e.contains("cannot be used with store"), "{e}");
    }
}
