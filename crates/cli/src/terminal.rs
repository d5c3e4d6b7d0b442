//! What a terminal user expects of a command-line tool, generated from the same clap definition
//! that parses the arguments (so they cannot drift from it): shell completions
//! (`fresco completions bash|zsh|fish|elvish|powershell`), a man page (`fresco man`), and where
//! the config file is looked for (`fresco config path`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Subcommand};

use crate::exit::{self, Failure};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for. Install, e.g.:
    /// bash: `fresco completions bash > ~/.local/share/bash-completion/completions/fresco`;
    /// zsh: `fresco completions zsh > ~/.zfunc/_fresco` (with ~/.zfunc in $fpath);
    /// fish: `fresco completions fish > ~/.config/fish/completions/fresco.fish`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command (fresco.1, fresco-run.1, ...) into this folder instead of
    /// printing the top-level page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the config file that is read: --config, FRESCO_CONFIG, or the default
    /// (~/.config/fresco/config.toml; $XDG_CONFIG_HOME/fresco/config.toml where that is set).
    Path,
}

pub fn completions(args: CompletionsArgs) -> Result<ExitCode, Failure> {
    let mut command = crate::Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, "fresco", &mut out);
    out.flush().map_err(write_failed)?;
    Ok(ExitCode::SUCCESS)
}

pub fn man(args: ManArgs) -> Result<ExitCode, Failure> {
    let command = crate::Cli::command();
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| {
                Failure::new(
                    exit::OUTPUT,
                    format!("--dir {}: cannot create it: {e}", dir.display()),
                )
            })?;
            clap_mangen::generate_to(command, &dir).map_err(|e| {
                Failure::new(
                    exit::OUTPUT,
                    format!("--dir {}: cannot write the pages: {e}", dir.display()),
                )
            })?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(command)
                .render(&mut out)
                .map_err(write_failed)?;
            out.flush().map_err(write_failed)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn config(command: ConfigCommand, args: &[std::ffi::OsString]) -> Result<ExitCode, Failure> {
    match command {
        ConfigCommand::Path => {
            let Some((path, origin)) = crate::config::config_source(args) else {
                return Err(Failure::new(
                    exit::MISSING_DEPENDENCY,
                    "no config file location: neither --config, FRESCO_CONFIG, XDG_CONFIG_HOME nor a home folder is set",
                ));
            };
            println!("{}", path.display());
            let state = if path.is_file() {
                "read"
            } else {
                "not present, so not read"
            };
            eprintln!("({origin}; {state})");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn write_failed(e: std::io::Error) -> Failure {
    Failure::new(
        exit::OUTPUT,
        format!("cannot write to standard output: {e}"),
    )
}
