//! The `fresco` command: parses arguments and calls into the libraries. Each failure class has
//! its own exit code (see [`exit`]), and every error is one line that names the file and the
//! problem.

mod api_client;
mod bench;
mod bench_jobs;
mod embedded;
mod exit;
mod jobs;
mod models;
mod queue_args;
mod run;
mod serve;
mod worker_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Apply deep-learning models (neural style transfer, or any ONNX image-to-image model) to
/// every frame of videos and to still images.
#[derive(Debug, Parser)]
#[command(name = "fresco", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

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
    /// Measure model-only and end-to-end speed on a generated clip.
    Bench(bench::BenchArgs),
    /// Measure the job engine: 1 vs 2 workers, queue cost per chunk, claims/s on PostgreSQL.
    BenchJobs(bench_jobs::BenchJobsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A worker's log is its record of what it claimed and did; elsewhere only warnings.
    let default_filter = match cli.command {
        Command::Worker(_) | Command::Serve(_) => "info,ort=error,sqlx=warn",
        _ => "warn,ort=error,sqlx=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FRESCO_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Models(cmd) => models::models(cmd),
        Command::Serve(args) => serve::serve(args),
        Command::Worker(args) => worker_cmd::worker(args),
        Command::Jobs(cmd) => jobs::jobs(cmd),
        Command::Bench(args) => bench::bench(args),
        Command::BenchJobs(args) => bench_jobs::bench_jobs(args),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
