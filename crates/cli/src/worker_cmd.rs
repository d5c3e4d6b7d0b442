//! `fresco worker`: one process taking tasks from a shared queue. Start one per machine or per
//! GPU, by hand, from systemd, Kubernetes, or `mpirun -n 8 fresco worker --until-idle` / a Slurm
//! array: the queue hands out the work, so no MPI code is needed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use fresco_core::Device;
use fresco_worker::{worker_name, StopSignal, Worker, WorkerConfig};

use crate::exit::{self, Failure};
use crate::queue_args::{runtime, QueueArgs};
use fresco_queue::redact_url;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub queue: QueueArgs,
    #[command(flatten)]
    pub model_trial: crate::model_trial_cmd::ModelTrialArgs,
    /// Exit 0 once no job is queued or running.
    #[arg(long, env = "FRESCO_UNTIL_IDLE")]
    pub until_idle: bool,
    /// Seconds a claimed task stays ours without a heartbeat (renewed every third of it).
    #[arg(
        long,
        env = "FRESCO_LEASE_SECONDS",
        default_value_t = 60,
        value_name = "SECONDS"
    )]
    pub lease_seconds: u64,
    /// After SIGTERM, seconds a task in flight may take to finish before it is handed back.
    #[arg(
        long,
        env = "FRESCO_GRACE_SECONDS",
        default_value_t = 30,
        value_name = "SECONDS"
    )]
    pub grace_seconds: u64,
    /// First back-off after a failed task, in milliseconds; doubles with each attempt.
    #[arg(
        long,
        env = "FRESCO_RETRY_DELAY_MS",
        default_value_t = 2000,
        value_name = "MS"
    )]
    pub retry_delay_ms: u64,
    /// A chunk with no frame done for this long is stopped and counted as a failed attempt.
    #[arg(
        long,
        env = "FRESCO_STALL_SECONDS",
        default_value_t = 600,
        value_name = "SECONDS"
    )]
    pub stall_seconds: u64,
    /// Folder for downloaded inputs and outputs being assembled, when they live in object
    /// stores (default: `scratch` beside the work folder).
    #[arg(long, env = "FRESCO_SCRATCH_DIR", value_name = "DIR")]
    pub scratch_dir: Option<std::path::PathBuf>,
    /// The most the workers of this process keep in the scratch folder, in MiB (default: no
    /// limit).
    #[arg(long, env = "FRESCO_SCRATCH_BUDGET_MB", value_name = "MIB")]
    pub scratch_budget_mb: Option<u64>,
    /// cpu, or cuda (cuda:N for GPU N) for an NVIDIA GPU.
    #[arg(long, env = "FRESCO_DEVICE", default_value = "cpu")]
    pub device: Device,
    /// Inference threads (default: one per core).
    #[arg(long, env = "FRESCO_THREADS")]
    pub threads: Option<usize>,
    /// Frames, or a dataset's images, per inference call (batching pays on GPUs; on CPUs it
    /// hardly does).
    #[arg(long, env = "FRESCO_BATCH", default_value_t = 1, value_name = "N", value_parser = parse_batch)]
    pub batch: usize,
    /// Threads that read and decode a dataset's images, beside the inference threads
    /// (default: half the cores, from 1 to 4).
    #[arg(long, env = "FRESCO_DECODE_THREADS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub decode_threads: Option<u16>,
    /// Serve this worker's metrics at `http://ADDR/metrics` (Prometheus text, the same names as
    /// `fresco serve`'s `/metrics`), e.g. `0.0.0.0:9464`. No credentials: keep it on the
    /// cluster's network.
    #[arg(long, env = "FRESCO_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
}

pub fn worker(args: WorkerArgs) -> Result<ExitCode, Failure> {
    if args.lease_seconds == 0 {
        return Err(Failure::new(
            exit::BAD_INPUT,
            "--lease-seconds must be at least 1",
        ));
    }
    preflight_device(args.device)?;
    let runtime = runtime();
    runtime.block_on(async move {
        let queue = args.queue.open().await?;
        let work_dir = args.queue.work_dir();
        let system = args.queue.system_store()?;
        std::fs::create_dir_all(&work_dir).map_err(|e| {
            Failure::new(
                exit::OUTPUT,
                format!("{}: cannot create the work folder: {e}", work_dir.display()),
            )
        })?;
        if let Some(addr) = &args.metrics_listen {
            serve_metrics(addr, args.device).await?;
        }
        let stop = StopSignal::new();
        spawn_signal_handlers(Arc::clone(&stop));
        let mut config = WorkerConfig::new(worker_name(0), work_dir.clone());
        config.system = system.clone();
        config.lease = Duration::from_secs(args.lease_seconds);
        config.grace = Duration::from_secs(args.grace_seconds);
        config.until_idle = args.until_idle;
        config.retry_delay = Duration::from_millis(args.retry_delay_ms);
        config.stall_limit = Duration::from_secs(args.stall_seconds.max(1));
        config.device = args.device;
        if let Some(dir) = &args.scratch_dir {
            config.scratch_dir = dir.clone();
        }
        config.scratch_budget = args.scratch_budget_mb.map(|mb| mb.saturating_mul(1 << 20));
        config.threads = args.threads;
        config.batch = args.batch.max(1);
        config.decode_threads = args.decode_threads.map(usize::from);
        config.model_trial = Some(args.model_trial.trial()?);
        tracing::info!(
            "worker {} on {} (work folder {}, lease {} s)",
            config.name,
            redact_url(&args.queue.db_url()),
            work_dir.display(),
            args.lease_seconds
        );
        Worker::new(queue, config, stop).run().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// `--metrics-listen ADDR`: the recorder, every family at zero, and `GET /metrics` on ADDR
/// for as long as the process lives.
async fn serve_metrics(addr: &str, device: Device) -> Result<(), Failure> {
    if fresco_server::metrics::install().is_none() {
        return Err(Failure::new(
            exit::BAD_INPUT,
            format!("--metrics-listen {addr}: the metrics recorder could not be installed"),
        ));
    }
    fresco_server::metrics::zero_worker_families(device);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Failure::new(
            exit::BAD_INPUT,
            format!("--metrics-listen {addr}: cannot listen there: {e}"),
        )
    })?;
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| addr.to_string());
    crate::logging::announce(
        "INFO",
        &format!("fresco worker: metrics on http://{address}/metrics"),
    );
    tokio::spawn(async move {
        if let Err(e) = fresco_server::metrics::serve_worker(listener).await {
            tracing::warn!("the metrics endpoint stopped: {e}");
        }
    });
    Ok(())
}

/// `--batch N`: frames per inference call, at least one.
pub(crate) fn parse_batch(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1 (frames per inference call)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{text}' is not a number of frames")),
    }
}

/// Refuses a device this machine cannot use (a CPU build of ONNX Runtime, no GPU, no such
/// GPU) before any task is claimed: a worker that cannot style must not fail jobs.
pub(crate) fn preflight_device(device: Device) -> Result<(), Failure> {
    use fresco_infer::device::PreflightError;
    fresco_infer::device::preflight(device).map_err(|e| {
        let code = match &e {
            PreflightError::Device(d) if d.is_bad_argument() => exit::BAD_ARGUMENTS,
            PreflightError::Device(_) | PreflightError::Runtime(_) => exit::MISSING_DEPENDENCY,
        };
        Failure::new(code, e.to_string())
    })
}

/// SIGTERM and SIGINT ask the worker to stop; a second one exits at once.
pub(crate) fn spawn_signal_handlers(stop: Arc<StopSignal>) {
    use tokio::signal::unix::{signal, SignalKind};
    for kind in [SignalKind::terminate(), SignalKind::interrupt()] {
        let stop = Arc::clone(&stop);
        let Ok(mut stream) = signal(kind) else {
            continue;
        };
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if stop.is_stopping() {
                    std::process::exit(exit::CANCELED as i32);
                }
                tracing::info!("stop requested: finishing or handing back the task in flight");
                stop.stop();
            }
        });
    }
}

/// The folder where `fresco run` keeps its queue and chunks when none is given: the per-user
/// state folder (`$XDG_STATE_HOME/fresco`, `~/.local/state/fresco`), or `FRESCO_STATE_DIR`.
pub(crate) fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FRESCO_STATE_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(|| PathBuf::from(".fresco-state"))
        .join("fresco")
}

/// `sqlite://STATE/queue.db`.
pub(crate) fn default_db_url(state_dir: &Path) -> String {
    format!("sqlite://{}", state_dir.join("queue.db").display())
}
