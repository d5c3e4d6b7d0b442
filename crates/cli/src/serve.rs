//! `fresco serve`: the HTTP API over the job queue, with in-process workers so that one command
//! gives a working service. More `fresco worker` processes (here or on other machines) may join
//! it through the same `--db` and `--work-dir`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use fresco_core::Device;
use fresco_server::watch::{WatchConfig, Watcher};
use fresco_server::{AppState, LocalJobFactory};
use fresco_worker::{worker_name, StopSignal, Worker, WorkerConfig};

use crate::exit::{self, Failure};
use crate::queue_args::{redact, runtime, QueueArgs};
use crate::worker_cmd::spawn_signal_handlers;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (HTTP).
    #[arg(long, env = "FRESCO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    #[command(flatten)]
    pub queue: QueueArgs,
    /// In-process workers (0: the API only, for deployments whose workers run elsewhere).
    #[arg(long, env = "FRESCO_WORKERS", default_value_t = 1)]
    pub workers: usize,
    /// Seconds a claimed task stays a worker's without a heartbeat.
    #[arg(long, env = "FRESCO_LEASE_SECONDS", default_value_t = 60)]
    pub lease_seconds: u64,
    /// On SIGTERM, seconds a task in flight may take to finish before it is handed back.
    #[arg(long, env = "FRESCO_GRACE_SECONDS", default_value_t = 30)]
    pub grace_seconds: u64,
    /// Folder for downloaded inputs and outputs being assembled, when they live in object
    /// stores (default: `scratch` beside the work folder).
    #[arg(long, env = "FRESCO_SCRATCH_DIR", value_name = "DIR")]
    pub scratch_dir: Option<std::path::PathBuf>,
    /// The most the workers of this process keep in the scratch folder, in MiB (default: no
    /// limit).
    #[arg(long, env = "FRESCO_SCRATCH_BUDGET_MB", value_name = "MIB")]
    pub scratch_budget_mb: Option<u64>,
    /// cpu, or cuda[:N], for the in-process workers.
    #[arg(long, env = "FRESCO_DEVICE", default_value = "cpu")]
    pub device: Device,
    /// Inference threads per in-process worker (default: the cores shared between them).
    #[arg(long, env = "FRESCO_THREADS")]
    pub threads: Option<usize>,
    /// A folder to watch: every new video in it becomes one job (local folders for now).
    #[arg(long, env = "FRESCO_WATCH", value_name = "DIR", requires = "output")]
    pub watch: Option<String>,
    /// Where the watch trigger's outputs go (`NAME.STYLE.EXT`, keeping sub-folders).
    #[arg(long, env = "FRESCO_OUTPUT", value_name = "DIR", requires = "watch")]
    pub output: Option<String>,
    /// The style of the jobs the watch and event triggers make.
    #[arg(long, env = "FRESCO_STYLE", conflicts_with = "model")]
    pub style: Option<String>,
    /// The model file of the jobs the watch and event triggers make.
    #[arg(long, env = "FRESCO_MODEL", value_name = "FILE.onnx")]
    pub model: Option<String>,
    /// Make jobs from storage events (`POST /v1/events/azure`, `/v1/events/s3`), with outputs
    /// under this location (`az://container/prefix`, `s3://bucket/prefix` or a folder).
    #[arg(long, env = "FRESCO_EVENT_OUTPUT", value_name = "URL")]
    pub event_output: Option<String>,
    /// Seconds between listings of the watched folder (a file must be unchanged across two).
    #[arg(
        long,
        env = "FRESCO_WATCH_INTERVAL",
        default_value_t = 5,
        value_name = "SECONDS"
    )]
    pub watch_interval: u64,
}

pub fn serve(args: ServeArgs) -> Result<ExitCode, Failure> {
    runtime().block_on(async move {
        let queue = args.queue.open().await?;
        let work_dir = args.queue.work_dir();
        std::fs::create_dir_all(&work_dir).map_err(|e| {
            Failure::new(
                exit::OUTPUT,
                format!("{}: cannot create the work folder: {e}", work_dir.display()),
            )
        })?;
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| {
                Failure::new(
                    exit::BAD_INPUT,
                    format!("--listen {}: cannot listen there: {e}", args.listen),
                )
            })?;
        let address = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| args.listen.clone());
        // The one line a script (or a test) waits for.
        eprintln!(
            "fresco serve: listening on http://{address} (queue {}, {} worker{})",
            redact(&args.queue.db_url()),
            args.workers,
            if args.workers == 1 { "" } else { "s" }
        );

        let stop = StopSignal::new();
        spawn_signal_handlers(Arc::clone(&stop));
        let threads = fresco_worker::threads_per_worker(args.threads, args.workers);
        let mut workers = Vec::new();
        for n in 0..args.workers {
            let mut config = WorkerConfig::new(worker_name(n), work_dir.clone());
            config.lease = Duration::from_secs(args.lease_seconds.max(1));
            config.grace = Duration::from_secs(args.grace_seconds);
            config.device = args.device;
            if let Some(dir) = &args.scratch_dir {
                config.scratch_dir = dir.clone();
            }
            config.scratch_budget = args.scratch_budget_mb.map(|mb| mb.saturating_mul(1 << 20));
            config.threads = threads;
            let worker = Worker::new(Arc::clone(&queue), config, Arc::clone(&stop));
            workers.push(tokio::spawn(worker.run()));
        }

        let factory: Arc<dyn fresco_server::JobFactory> = Arc::new(LocalJobFactory::default());
        if let (Some(watch), Some(output)) = (&args.watch, &args.output) {
            let model = args.model.as_ref().map(|m| {
                fresco_worker::absolute(std::path::Path::new(m))
                    .display()
                    .to_string()
            });
            let config = WatchConfig {
                watch: watch.clone(),
                output: output.clone(),
                style: args.style.clone(),
                model,
                interval: Duration::from_secs(args.watch_interval.max(1)),
            };
            let watcher = Watcher::new(config, Arc::clone(&queue), Arc::clone(&factory))
                .map_err(|e| Failure::new(exit::BAD_INPUT, e.to_string()))?;
            let stop = Arc::clone(&stop);
            tokio::spawn(watcher.run(async move { stop.stopped().await }));
        }
        let mut state = AppState::new(Arc::clone(&queue), factory);
        state.work_dir = Some(work_dir);
        if let Some(output) = &args.event_output {
            if args.style.is_none() && args.model.is_none() {
                return Err(Failure::new(
                    exit::BAD_INPUT,
                    "--event-output needs --style or --model for the jobs it makes",
                ));
            }
            state.events = Some(fresco_server::routes::events::EventTrigger {
                output: output.clone(),
                style: args.style.clone(),
                model: args.model.as_ref().map(|m| {
                    fresco_worker::absolute(std::path::Path::new(m))
                        .display()
                        .to_string()
                }),
            });
        }
        let shutdown = {
            let stop = Arc::clone(&stop);
            async move { stop.stopped().await }
        };
        let served = fresco_server::serve(listener, state, shutdown).await;
        // The server stops on a stop request; so do the workers (after their grace period).
        stop.stop();
        for worker in workers {
            let _ = worker.await;
        }
        served
            .map_err(|e| Failure::new(exit::PROCESSING, format!("the HTTP server failed: {e}")))?;
        Ok(ExitCode::SUCCESS)
    })
}
