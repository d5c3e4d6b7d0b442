//! The limits of a worker's trial load of a user's model (`--model-memory-mib`,
//! `--model-load-seconds`, shared by `fresco worker` and `fresco serve`), and the hidden
//! `fresco model-trial` subcommand that does the load in a child process (see
//! [`fresco_worker::model_trial`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use fresco_worker::model_trial::ModelTrial;

use crate::exit::Failure;

/// How a worker tries a user's model before loading it.
#[derive(Debug, Clone, Args)]
pub struct ModelTrialArgs {
    /// Address space (MiB) a user's model may take while it is first loaded, in a child
    /// process; a model that needs more fails its job.
    #[arg(long, env = "FRESCO_MODEL_MEMORY_MIB", default_value_t = 4096)]
    pub model_memory_mib: u64,
    /// Seconds that first load may take.
    #[arg(long, env = "FRESCO_MODEL_LOAD_SECONDS", default_value_t = 120)]
    pub model_load_seconds: u64,
}

impl ModelTrialArgs {
    /// The trial settings, with this binary as the child.
    pub fn trial(&self) -> Result<ModelTrial, Failure> {
        let program = std::env::current_exe().map_err(|e| {
            Failure::new(
                crate::exit::PROCESSING,
                format!("cannot find the fresco binary for model trials: {e}"),
            )
        })?;
        Ok(ModelTrial {
            program,
            memory_mib: self.model_memory_mib.max(64),
            timeout: Duration::from_secs(self.model_load_seconds.max(1)),
        })
    }
}

/// `fresco model-trial` (hidden; run by workers): loads one model under a memory limit.
#[derive(Debug, Args)]
pub struct ModelTrialCommand {
    /// Address space limit in MiB.
    #[arg(long)]
    pub memory_mib: u64,
    /// Load it as any model with one float input (a records job's), not as an image model.
    #[arg(long)]
    pub tensors: bool,
    /// The model file.
    pub model: PathBuf,
}

pub fn model_trial(args: ModelTrialCommand) -> Result<ExitCode, Failure> {
    use fresco_worker::model_trial::{child_main, Interface};
    let interface = if args.tensors {
        Interface::Tensors
    } else {
        Interface::Image
    };
    let code = child_main(&args.model, args.memory_mib, interface);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
