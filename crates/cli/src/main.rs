//! The `fresco` command: parses arguments and calls into the libraries. Each failure class has
//! its own exit code (see [`exit`]), and every error is one line that names the file and the
//! problem.

mod api_client;
mod autoscale;
mod bench;
mod bench_jobs;
mod callback_args;
mod config;
mod dataset_args;
mod embedded;
mod estimate;
mod estimate_dataset;
mod eval;
mod exit;
mod image_records;
mod jobs;
mod logging;
mod model_trial_cmd;
mod models;
mod queue_args;
mod run;
mod run_dataset;
mod scoring_args;
mod security_args;
mod serve;
mod serve_auth;
mod terminal;
mod tokens;
mod top;
mod worker_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Apply deep-learning models (neural style transfer, or any ONNX image-to-image model) to
/// every frame of videos and to still images.
#[derive(Debug, Parser)]
#[command(name = "fresco", version, about, long_about = None)]
struct Cli {
    /// A TOML file of settings: each key is a flag's long name (top level, or in a table named
    /// after the command); flags and FRESCO_* variables win over it.
    #[arg(long, global = true, env = "FRESCO_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// How log lines are written: human-readable text, or JSON lines (one object per line,
    /// with the job's id and chunk on every line about a task).
    #[arg(
        long,
        global = true,
        env = "FRESCO_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

// The arguments are parsed once and moved into their command; boxing the big ones (run's) would
// only add indirection to every match on the command.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Style videos or images on this machine.
    Run(run::RunArgs),
    /// List, fetch or export models.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Serve the HTTP API over the job queue, with in-process workers.
    Serve(serve::ServeArgs),
    /// Run a worker: take tasks from a shared queue until stopped (or idle, with --until-idle).
    Worker(worker_cmd::WorkerArgs),
    /// Submit, list, show, cancel or retry jobs in the queue.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// Make, list and revoke the API tokens of `fresco serve`; read the audit trail.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Measure model-only and end-to-end speed on a generated clip.
    Bench(bench::BenchArgs),
    /// Measure the job engine: 1 vs 2 workers, queue cost per chunk, claims/s on PostgreSQL.
    BenchJobs(bench_jobs::BenchJobsArgs),
    /// Estimate compute time, wall time and cost of styling a video (from `fresco bench`'s
    /// calibration) or of scoring a dataset (calibrated on a sample of it).
    Estimate(estimate::EstimateArgs),
    /// Measure a styled result against its input (`fresco eval temporal`: flicker).
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// A live overview of jobs, workers and throughput in the terminal.
    Top(top::TopArgs),
    /// Print shell completions for bash, zsh, fish, elvish or PowerShell.
    Completions(terminal::CompletionsArgs),
    /// Print the man page (roff), e.g. `fresco man > fresco.1`, or write one per command.
    Man(terminal::ManArgs),
    /// Where the config file is looked for (`fresco config path`).
    #[command(subcommand)]
    Config(terminal::ConfigCommand),
    /// Load one model under a memory limit and print its input and output (run by workers, in
    /// a child process, before they load a user's model themselves).
    #[command(name = "model-trial", hide = true)]
    ModelTrial(model_trial_cmd::ModelTrialCommand),
}

/// Two malloc arenas at most, unless `MALLOC_ARENA_MAX` says otherwise. glibc gives threads that
/// allocate at once arenas of their own, up to eight per core, and memory freed in an arena stays
/// resident; a dataset job's allocations pass between many threads (reads ahead, decoders, ONNX
/// Runtime's), so its resident memory grew with the number of items while its heap did not
/// (docs/datasets.md, "Memory": 63.9 MiB at 10,000 items, 89.0 MiB at 100,000, with a heap
/// that peaked at 13 MB; two arenas: 58.4 and 61.1 MiB). Called first, before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// Whether a command only prints what it read (a listing, a job's state, the shell's
/// completions): such a command stops quietly, as `ls` does, when its reader does (`fresco
/// models list | head -1`), instead of panicking in `println!` on the closed pipe. Rust ignores
/// SIGPIPE for every program; the others keep it ignored, since they write to ffmpeg's pipes and
/// must report a child that died, not die with it.
fn only_prints(command: &Command) -> bool {
    matches!(
        command,
        Command::Models(models::ModelsCommand::List { .. })
            | Command::Jobs(
                jobs::JobsCommand::List(_)
                    | jobs::JobsCommand::Show(_)
                    | jobs::JobsCommand::Logs(_)
            )
            | Command::Completions(_)
            | Command::Man(_)
            | Command::Config(_)
    )
}

/// Lets SIGPIPE end the process, the default for Unix programs.
#[cfg(unix)]
fn die_on_closed_pipe() {
    // SAFETY: restores the signal's default disposition; no handler runs Rust code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn die_on_closed_pipe() {}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The terminal helpers describe the configuration; they work even where it is broken.
    let describes_itself = matches!(
        config::subcommand(&args).as_deref(),
        Some("config" | "completions" | "man")
    );
    if !describes_itself {
        if let Err(failure) = config::apply(&args) {
            eprintln!("error: {}", failure.message);
            return ExitCode::from(failure.code);
        }
    }
    let cli = Cli::parse_from(args);
    if only_prints(&cli.command) {
        die_on_closed_pipe();
    }
    // A worker's log is its record of what it claimed and did; elsewhere only warnings.
    let default_filter = match cli.command {
        Command::Worker(_) | Command::Serve(_) => "info,ort=error,sqlx=warn",
        _ => "warn,ort=error,sqlx=warn",
    };
    let _logging = logging::init(cli.log_format, default_filter);
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Models(cmd) => models::models(cmd),
        Command::Serve(args) => serve::serve(args),
        Command::Worker(args) => worker_cmd::worker(args),
        Command::Jobs(cmd) => jobs::jobs(cmd),
        Command::Tokens(cmd) => tokens::tokens(cmd),
        Command::Bench(args) => bench::bench(args),
        Command::BenchJobs(args) => bench_jobs::bench_jobs(args),
        Command::Estimate(args) => estimate::run(args),
        Command::Eval(cmd) => eval::eval(cmd),
        Command::Top(args) => top::top(args),
        Command::ModelTrial(args) => model_trial_cmd::model_trial(args),
        Command::Completions(args) => terminal::completions(args),
        Command::Man(args) => terminal::man(args),
        Command::Config(cmd) => terminal::config(cmd, &std::env::args_os().collect::<Vec<_>>()),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            logging::announce("ERROR", &format!("error: {}", failure.message));
            ExitCode::from(failure.code)
        }
    }
}
