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
    macro_rules! take {
        ($field:ident, $id:literal) => {
            if let Some(v) = file.$field {
                if unset(matches, $id) {
                    args.$field = v.into();
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
    if args.ephemeral {
        let with = [
            ("data-dir", args.data_dir.is_some()),
            ("store", args.store.is_some()),
            ("master-key-file", args.master_key_file.is_some()),
        ];
        if let Some((name, _)) = with.iter().find(|(_, set)| *set) {
            return Err(format!("ephemeral keeps everything in memory; it cannot be used with {name}"));
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
}
