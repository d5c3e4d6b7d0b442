//! The `fresco` command: parses arguments and calls into the libraries. Each failure class has
//! its own exit code (see [`exit`]), and every error is one line that names the file and the
//! problem.

mod bench;
mod exit;
mod models;
mod run;

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
    /// Measure model-only and end-to-end speed on a generated clip.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FRESCO_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,ort=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Models(cmd) => models::models(cmd),
        Command::Bench(args) => bench::bench(args),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
