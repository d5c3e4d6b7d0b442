//! The configuration file: every flag that has a `FRESCO_*` environment variable also has a key
//! in a TOML file given by `--config FILE` (or `FRESCO_CONFIG`), or else in the default file,
//! `~/.config/fresco/config.toml` (`$XDG_CONFIG_HOME/fresco/config.toml` where that is set), read
//! when it exists. `fresco config path` prints which file that is.
//!
//! ```toml
//! db = "postgres://fresco@db/fresco"   # --db, FRESCO_DB
//! system = "az://fresco-system/work"   # --system, FRESCO_SYSTEM
//!
//! [serve]                              # keys for `fresco serve` only
//! listen = "0.0.0.0:8080"
//! workers = 2
//! ```
//!
//! A key is the flag's long name (`lease-seconds` or `lease_seconds`). Top-level keys apply to
//! every command that has the flag; a table named after a command (`[serve]`, `[worker]`,
//! `[run]`, `[jobs]`) applies to that command and wins over the top level. Precedence:
//! command line, then environment, then file. The file is read by setting each key's
//! environment variable when it is not already set, so the flags' own parsing, defaults and
//! errors apply unchanged. An unknown key, or a value that is not a string, number, boolean or
//! list of those, is an error that names the file and the key.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::exit::{self, Failure};

/// The config file that applies, and where its name came from: `--config`, `FRESCO_CONFIG`, or
/// the default location (which is read only when the file exists).
pub fn config_source(args: &[OsString]) -> Option<(PathBuf, &'static str)> {
    if let Some(path) = config_path(args) {
        let origin = if std::env::var_os("FRESCO_CONFIG").is_some_and(|v| v == path.as_os_str())
            && !args.iter().any(|a| {
                a.to_str()
                    .is_some_and(|t| t == "--config" || t.starts_with("--config="))
            }) {
            "from FRESCO_CONFIG"
        } else {
            "from --config"
        };
        return Some((path, origin));
    }
    default_path().map(|path| (path, "the default location"))
}

/// `$XDG_CONFIG_HOME/fresco/config.toml`, else `~/.config/fresco/config.toml`. On Linux
/// `dirs::config_dir` is exactly that; elsewhere (macOS's Library folder) the XDG-style path is
/// used too, as command-line tools there usually do.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| dirs::home_dir().map(|home| home.join(".config")))
        .or_else(dirs::config_dir)?;
    Some(base.join("fresco").join("config.toml"))
}

/// The config file named by `--config FILE` / `--config=FILE` in `args`, or `FRESCO_CONFIG`.
pub fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let Some(text) = arg.to_str() else { continue };
        if text == "--" {
            break;
        }
        if text == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(value) = text.strip_prefix("--config=") {
            return Some(PathBuf::from(value));
        }
    }
    std::env::var_os("FRESCO_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The subcommand named in `args` (the first argument that is not an option), if any.
pub fn subcommand(args: &[OsString]) -> Option<String> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let text = arg.to_str()?;
        if text == "--config" {
            iter.next();
            continue;
        }
        if !text.starts_with('-') {
            return Some(text.to_string());
        }
    }
    None
}

/// For each flag with an environment variable, per command: long name -> variable.
fn flag_variables() -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let root = crate::Cli::command();
    fn walk(
        command: &clap::Command,
        name: String,
        out: &mut BTreeMap<String, BTreeMap<String, String>>,
    ) {
        let entry = out.entry(name.clone()).or_default();
        for arg in command.get_arguments() {
            if let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) {
                entry.insert(long.to_string(), env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            // Nested commands (`jobs submit`) share their parent's table.
            let key = if name.is_empty() {
                sub.get_name().to_string()
            } else {
                name.clone()
            };
            walk(sub, key, out);
        }
    }
    walk(&root, String::new(), &mut out);
    out
}

/// Reads the config file (if any) and sets the environment variables of its keys that are not
/// already set. Call before parsing the command line.
pub fn apply(args: &[OsString]) -> Result<Option<PathBuf>, Failure> {
    let path = match config_path(args) {
        Some(path) => path,
        // The default file is optional: read it only where it exists.
        None => match default_path().filter(|p| p.exists()) {
            Some(path) => path,
            None => return Ok(None),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure::new(
            exit::BAD_INPUT,
            format!("{}: cannot read the config file: {e}", path.display()),
        )
    })?;
    let settings = settings(&path, &text, subcommand(args).as_deref())?;
    for (variable, value) in settings {
        if std::env::var_os(&variable).is_none() {
            std::env::set_var(variable, value);
        }
    }
    Ok(Some(path))
}

/// The environment variables the file sets for `command`: (variable, value).
pub fn settings(
    path: &Path,
    text: &str,
    command: Option<&str>,
) -> Result<Vec<(String, String)>, Failure> {
    let bad =
        |message: String| Failure::new(exit::BAD_INPUT, format!("{}: {message}", path.display()));
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| bad(format!("not valid TOML: {}", e.message())))?;
    let flags = flag_variables();
    let known_commands: Vec<&String> = flags.keys().filter(|k| !k.is_empty()).collect();
    // Every flag of any command, for top-level keys.
    let mut any: BTreeMap<&str, &str> = BTreeMap::new();
    for vars in flags.values() {
        for (long, var) in vars {
            any.insert(long, var);
        }
    }
    let mut top = Vec::new();
    let mut scoped = Vec::new();
    for (key, value) in &table {
        if let toml::Value::Table(inner) = value {
            let Some(vars) = flags.get(key.as_str()).filter(|_| !key.is_empty()) else {
                return Err(bad(format!(
                    "[{key}]: no such command (tables are named after commands: {})",
                    known_commands
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            for (inner_key, inner_value) in inner {
                let long = inner_key.replace('_', "-");
                let var = vars.get(&long).ok_or_else(|| {
                    bad(format!(
                        "[{key}] {inner_key}: `fresco {key}` has no flag --{long} that a config file can set"
                    ))
                })?;
                let value = scalar(inner_value)
                    .ok_or_else(|| bad(format!("[{key}] {inner_key}: {}", VALUE_KINDS)))?;
                if command == Some(key.as_str()) {
                    scoped.push((var.clone(), value));
                }
            }
            continue;
        }
        let long = key.replace('_', "-");
        let var = any.get(long.as_str()).ok_or_else(|| {
            bad(format!(
                "{key}: no command has a flag --{long} that a config file can set"
            ))
        })?;
        let value = scalar(value).ok_or_else(|| bad(format!("{key}: {VALUE_KINDS}")))?;
        top.push((var.to_string(), value));
    }
    // A command's table wins over the top level.
    let mut merged: BTreeMap<String, String> = top.into_iter().collect();
    merged.extend(scoped);
    Ok(merged.into_iter().collect())
}

const VALUE_KINDS: &str = "the value must be a string, a number, a boolean or a list of those";

/// A TOML value as the flag's text (lists comma-separated).
fn scalar(value: &toml::Value) -> Option<String> {
    Some(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::Array(_) | toml::Value::Table(_) => None,
                other => scalar(other),
            })
            .collect::<Option<Vec<_>>>()?
            .join(","),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Table(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, command: &str) -> Result<Vec<(String, String)>, String> {
        settings(Path::new("fresco.toml"), text, Some(command)).map_err(|f| f.message)
    }

    #[test]
    fn keys_become_the_flags_variables() {
        let got = run(
            "db = \"sqlite:///tmp/q.db\"\nlease_seconds = 30\n[serve]\nlisten = \"0.0.0.0:9000\"\nworkers = 3\n[worker]\nlease-seconds = 90\n",
            "serve",
        )
        .unwrap();
        let map: BTreeMap<_, _> = got.into_iter().collect();
        assert_eq!(map["FRESCO_DB"], "sqlite:///tmp/q.db");
        assert_eq!(map["FRESCO_LISTEN"], "0.0.0.0:9000");
        assert_eq!(map["FRESCO_WORKERS"], "3");
        // The [worker] table does not apply to serve; the top level does.
        assert_eq!(map["FRESCO_LEASE_SECONDS"], "30");
    }

    #[test]
    fn a_command_table_wins_over_the_top_level() {
        let got = run(
            "lease-seconds = 30\n[worker]\nlease-seconds = 90\n",
            "worker",
        )
        .unwrap();
        assert_eq!(got, vec![("FRESCO_LEASE_SECONDS".into(), "90".into())]);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_file_and_key() {
        let err = run("colour = \"red\"\n", "serve").unwrap_err();
        assert!(
            err.contains("fresco.toml") && err.contains("colour"),
            "{err}"
        );
        let err = run("[serve]\nnope = 1\n", "serve").unwrap_err();
        assert!(
            err.contains("[serve] nope") && err.contains("--nope"),
            "{err}"
        );
        let err = run("[nosuch]\nx = 1\n", "serve").unwrap_err();
        assert!(
            err.contains("[nosuch]") && err.contains("no such command"),
            "{err}"
        );
        let err = run("db = [[1, 2]]\n", "serve").unwrap_err();
        assert!(err.contains("db") && err.contains("string"), "{err}");
        let err = run("db = \n", "serve").unwrap_err();
        assert!(err.contains("not valid TOML"), "{err}");
    }

    #[test]
    fn the_path_comes_from_the_flag_or_the_environment() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            config_path(&args(&["fresco", "serve", "--config", "a.toml"])),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            config_path(&args(&["fresco", "--config=b.toml", "worker"])),
            Some(PathBuf::from("b.toml"))
        );
        assert_eq!(
            subcommand(&args(&["fresco", "--config", "a.toml", "worker", "--x"])),
            Some("worker".into())
        );
    }
}
