//! `fresco serve`: the HTTP API over the job queue, with in-process workers so that one command
//! gives a working service. More `fresco worker` processes (here or on other machines) may join
//! it through the same `--db` and `--work-dir`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use fresco_core::Device;
use fresco_server::dataset_watch::{DatasetWatch, DatasetWatchConfig, RecordsFormat};
use fresco_server::watch::{WatchConfig, Watcher};
use fresco_server::{AppState, LocalJobFactory};
use fresco_worker::{worker_name, StopSignal, Worker, WorkerConfig, WorkerSummary};

use crate::exit::{self, Failure};
use crate::queue_args::{runtime, QueueArgs};
use crate::worker_cmd::spawn_signal_handlers;
use fresco_queue::redact_url;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (HTTP).
    #[arg(long, env = "FRESCO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    #[command(flatten)]
    pub queue: QueueArgs,
    #[command(flatten)]
    pub model_trial: crate::model_trial_cmd::ModelTrialArgs,
    #[command(flatten)]
    pub auth: crate::serve_auth::AuthArgs,
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
    /// stores (default: `scratch` beside the work folder); also where an object input's first
    /// and last 8 MiB are probed before its job is queued (default: the temporary folder).
    #[arg(long, env = "FRESCO_SCRATCH_DIR", value_name = "DIR")]
    pub scratch_dir: Option<std::path::PathBuf>,
    /// The most the workers of this process keep in the scratch folder, in MiB (default: no
    /// limit).
    #[arg(long, env = "FRESCO_SCRATCH_BUDGET_MB", value_name = "MIB")]
    pub scratch_budget_mb: Option<u64>,
    /// cpu, or cuda (cuda:N for GPU N), for the in-process workers; also the kind of device that jobs
    /// submitted over HTTP or by the triggers are pinned for, unless a request names one (the
    /// server needs no GPU to queue cuda jobs).
    #[arg(long, env = "FRESCO_DEVICE", default_value = "cpu")]
    pub device: Device,
    /// The device kinds (cpu, cuda) this deployment has workers for: a request naming another
    /// kind gets 422 device-not-served instead of waiting forever (default: --device's kind;
    /// a cluster with GPU and CPU workers sets cpu,cuda).
    #[arg(
        long,
        env = "FRESCO_JOB_DEVICES",
        value_delimiter = ',',
        value_parser = ["cpu", "cuda"],
        value_name = "KIND"
    )]
    pub job_devices: Vec<String>,
    /// Inference threads per in-process worker (default: the cores shared between them).
    #[arg(long, env = "FRESCO_THREADS")]
    pub threads: Option<usize>,
    /// Frames, or a dataset's images, per inference call, for every worker (batching pays on
    /// GPUs; on CPUs it hardly does).
    #[arg(long, env = "FRESCO_BATCH", default_value_t = 1, value_name = "N", value_parser = crate::worker_cmd::parse_batch)]
    pub batch: usize,
    /// A folder or object-store prefix (`az://container/in`, `s3://bucket/in`) to watch: every
    /// new video in it becomes one job.
    #[arg(long, env = "FRESCO_WATCH", value_name = "URL", requires = "output")]
    pub watch: Option<String>,
    /// Where the watch trigger's outputs go (`NAME.STYLE.EXT`, keeping sub-folders): a folder
    /// or an object-store prefix.
    #[arg(long, env = "FRESCO_OUTPUT", value_name = "URL", requires = "watch")]
    pub output: Option<String>,
    /// The style of the jobs the watch and event triggers make.
    #[arg(long, env = "FRESCO_STYLE", conflicts_with = "model")]
    pub style: Option<String>,
    /// The model file of the jobs the watch and event triggers make.
    #[arg(long, env = "FRESCO_MODEL", value_name = "FILE.onnx")]
    pub model: Option<String>,
    /// The watch and event triggers' jobs are steadied (`--temporal` of `fresco run`,
    /// docs/temporal.md); each job is checked as a submission with `"temporal": true` is.
    #[arg(long, env = "FRESCO_TEMPORAL")]
    pub temporal: bool,
    /// A folder or object-store prefix whose new images are collected into dataset jobs: every
    /// --dataset-interval (from the first image waiting) or --dataset-count images, whichever
    /// comes first, one job of exactly those, scored by --dataset-model into records under
    /// --dataset-output. Listed every --watch-interval; storage events for images under it are
    /// collected too.
    #[arg(
        long,
        env = "FRESCO_DATASET_WATCH",
        value_name = "URL",
        requires_all = ["dataset_output", "dataset_model"]
    )]
    pub dataset_watch: Option<String>,
    /// Where the dataset trigger's records (`batch-N.jsonl`) and manifests (`batch-N.manifest`)
    /// go: a folder or an object-store prefix.
    #[arg(
        long,
        env = "FRESCO_DATASET_OUTPUT",
        value_name = "URL",
        requires = "dataset_watch"
    )]
    pub dataset_output: Option<String>,
    /// The scoring model of the dataset trigger's jobs (its card, the `.toml` beside it, says
    /// how to score).
    #[arg(
        long,
        env = "FRESCO_DATASET_MODEL",
        value_name = "FILE.onnx",
        requires = "dataset_watch"
    )]
    pub dataset_model: Option<String>,
    /// The dataset trigger's task, where the model's card does not say.
    #[arg(
        long,
        env = "FRESCO_DATASET_TASK",
        value_parser = ["classify", "detect", "tensors"],
        requires = "dataset_watch"
    )]
    pub dataset_task: Option<String>,
    /// The dataset trigger's records format.
    #[arg(
        long,
        env = "FRESCO_DATASET_FORMAT",
        value_parser = ["jsonl", "parquet"],
        default_value = "jsonl"
    )]
    pub dataset_format: String,
    /// Seconds from the first image collected until its batch becomes a job (1 to 604800, a
    /// week).
    #[arg(
        long,
        env = "FRESCO_DATASET_INTERVAL",
        default_value_t = 300,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=604_800)
    )]
    pub dataset_interval: u64,
    /// Images that make a job at once, and the most a job holds (1 to 100000).
    #[arg(
        long,
        env = "FRESCO_DATASET_COUNT",
        default_value_t = 1000,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=100_000)
    )]
    pub dataset_count: u64,
    /// Each dataset trigger job fails when more of its items than this cannot be scored
    /// (error rows); by default the fraction alone decides.
    #[arg(
        long,
        env = "FRESCO_DATASET_MAX_FAILED_ITEMS",
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(0..=100_000),
        requires = "dataset_watch"
    )]
    pub dataset_max_failed_items: Option<u64>,
    /// Each dataset trigger job fails when more than this share of its items cannot be scored
    /// (0 to 1; default 0.01, as any dataset job's).
    #[arg(
        long,
        env = "FRESCO_DATASET_MAX_FAILED_FRACTION",
        value_name = "F",
        value_parser = share,
        requires = "dataset_watch"
    )]
    pub dataset_max_failed_fraction: Option<f64>,
    /// Make jobs from storage events (`POST /v1/events/azure`, `/v1/events/s3`), with outputs
    /// under this location (`az://container/prefix`, `s3://bucket/prefix` or a folder).
    #[arg(long, env = "FRESCO_EVENT_OUTPUT", value_name = "URL")]
    pub event_output: Option<String>,
    /// The data store: inputs and outputs, which users reach. Uploads (`POST /v1/uploads`) go
    /// there, and a relative `input`/`output` of a submission names an object in it. A folder
    /// or an object-store prefix (`az://container/prefix`, `s3://bucket/prefix`).
    #[arg(
        long,
        env = "FRESCO_DATA",
        value_name = "URL",
        default_value = "./fresco-data"
    )]
    pub data: String,
    /// The server's URL as clients reach it (e.g. behind a proxy), for the upload and download
    /// URLs it hands out (default: from each request's Host header).
    #[arg(long, env = "FRESCO_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// The largest upload accepted, in MiB.
    #[arg(
        long,
        env = "FRESCO_MAX_UPLOAD_MB",
        default_value_t = 4096,
        value_name = "MIB"
    )]
    pub max_upload_mb: u64,
    /// Seconds a request may take before it is answered 408 `request-timeout` (uploads,
    /// downloads and the dashboard's streams excepted).
    #[arg(
        long,
        env = "FRESCO_REQUEST_TIMEOUT_SECONDS",
        default_value_t = 60,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub request_timeout_seconds: u64,
    /// A file of keys that sign upload and download URLs, one per line: the first signs, all
    /// verify (rotation). Default: FRESCO_SIGNING_KEYS, else a random key per start.
    #[arg(long, env = "FRESCO_SIGNING_KEY_FILE", value_name = "FILE")]
    pub signing_key_file: Option<std::path::PathBuf>,
    /// Seconds between listings of the watched folder (a file must be unchanged across two).
    #[arg(
        long,
        env = "FRESCO_WATCH_INTERVAL",
        default_value_t = 5,
        value_name = "SECONDS"
    )]
    pub watch_interval: u64,
    /// Start and stop `fresco worker` processes on this machine from the queue's depth,
    /// between MIN and MAX of them (e.g. 0..4), instead of in-process workers.
    #[arg(
        long,
        env = "FRESCO_AUTOSCALE",
        value_name = "MIN..MAX",
        conflicts_with = "workers"
    )]
    pub autoscale: Option<crate::autoscale::WorkerRange>,
    /// With --autoscale: seconds the workers stay up with nothing to do before they are
    /// stopped, so that jobs arriving within that time find them warm.
    #[arg(
        long,
        env = "FRESCO_AUTOSCALE_IDLE",
        default_value_t = 300,
        value_name = "SECONDS"
    )]
    pub autoscale_idle: u64,
    #[command(flatten)]
    pub security: crate::security_args::SecurityArgs,
    #[command(flatten)]
    pub callbacks: crate::callback_args::CallbackArgs,
}

pub fn serve(args: ServeArgs) -> Result<ExitCode, Failure> {
    // Before any store is opened: local stores encrypt with this key.
    let encrypted = args.security.install_store_key()?;
    // Before any worker counts anything: /metrics renders what this recorder collects.
    fresco_server::metrics::install();
    // Every family from the first scrape, before any worker counts anything.
    fresco_server::metrics::zero_worker_families(args.device);
    if args.workers > 0 || args.autoscale.is_some() {
        crate::worker_cmd::preflight_device(args.device)?;
    }
    runtime().block_on(async move {
        let queue = args.queue.open().await?;
        let work_dir = args.queue.work_dir();
        let system = args.queue.system_store()?;
        std::fs::create_dir_all(&work_dir).map_err(|e| {
            Failure::new(
                exit::OUTPUT,
                format!("{}: cannot create the work folder: {e}", work_dir.display()),
            )
        })?;
        let tls = args.auth.tls()?;
        let auth = args.auth.settings()?;
        let callbacks = args.callbacks.settings(&work_dir)?;
        crate::serve_auth::hint_when_no_tokens(queue.as_ref(), &redact_url(&args.queue.db_url()))
            .await;
        let listener = listen(&args.listen).await?;
        // With --autoscale the workers are processes of their own (see autoscale.rs).
        let in_process = if args.autoscale.is_some() {
            0
        } else {
            args.workers
        };
        announce(&args, &listener, tls.is_some(), in_process);

        let stop = StopSignal::new();
        spawn_signal_handlers(Arc::clone(&stop));
        let workers = spawn_workers(&args, &queue, &work_dir, &system, &stop, in_process)?;

        let data = open_data_store(&args.data)?;
        let data_root_text =
            crate::security_args::data_root_for_jobs(data_root(&args.data), encrypted);
        let factory = job_factory(&args, &data_root_text)?;
        check_trigger_temporal(&args)?;
        spawn_watcher(&args, &queue, &factory, &stop)?;
        let dataset_watch = spawn_dataset_watch(&args, &queue, &factory, &stop)?;
        let mut state = AppState::new(Arc::clone(&queue), factory);
        state.dataset_watch = dataset_watch;
        state.tls = tls.is_some();
        state.auth = auth;
        state.data = Some(data);
        // Submitters each get a namespace in the data store (fresco_server::tenancy).
        state.tenancy = Some(fresco_server::tenancy::Tenancy::new(data_root_text.clone()));
        state.public_url = args.public_url.clone();
        state.max_upload_bytes = args.max_upload_mb.saturating_mul(1 << 20);
        state.request_timeout = Duration::from_secs(args.request_timeout_seconds);
        state.signer = Arc::new(url_signer(&args)?);
        state.callbacks = callbacks;
        state.work_dir = Some(work_dir);
        state.system = system.clone();
        state.events = event_trigger(&args)?;
        let shutdown = {
            let stop = Arc::clone(&stop);
            async move { stop.stopped().await }
        };
        let autoscaler = args.autoscale.map(|range| {
            let config = crate::autoscale::config_for(&args, range);
            tokio::spawn(crate::autoscale::run(
                Arc::clone(&queue),
                config,
                Arc::clone(&stop),
            ))
        });
        log_event_routes(&state);
        // Pending callbacks (of this server's jobs and others') are sent from here.
        let deliveries = fresco_server::callback::spawn_delivery_loop(&state);
        let served = match tls {
            Some(config) => fresco_server::tls::serve_tls(listener, state, config, shutdown).await,
            None => fresco_server::serve(listener, state, shutdown).await,
        };
        // The server stops on a stop request; so do the workers (after their grace period).
        // A delivery cut short here is sent again after its lease runs out.
        deliveries.abort();
        stop.stop();
        for worker in workers {
            let _ = worker.await;
        }
        if let Some(autoscaler) = autoscaler {
            let _ = autoscaler.await;
        }
        served
            .map_err(|e| Failure::new(exit::PROCESSING, format!("the HTTP server failed: {e}")))?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn listen(address: &str) -> Result<tokio::net::TcpListener, Failure> {
    tokio::net::TcpListener::bind(address).await.map_err(|e| {
        Failure::new(
            exit::BAD_INPUT,
            format!("--listen {address}: cannot listen there: {e}"),
        )
    })
}

/// The one line a script (or a test) waits for.
fn announce(args: &ServeArgs, listener: &tokio::net::TcpListener, tls: bool, in_process: usize) {
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| args.listen.clone());
    crate::logging::announce(
        "INFO",
        &format!(
            "fresco serve: listening on {}://{address} (queue {}, {} worker{})",
            if tls { "https" } else { "http" },
            redact_url(&args.queue.db_url()),
            in_process,
            if in_process == 1 { "" } else { "s" }
        ),
    );
}

/// Starts `count` in-process workers on the queue.
fn spawn_workers(
    args: &ServeArgs,
    queue: &Arc<dyn fresco_queue::Queue>,
    work_dir: &std::path::Path,
    system: &Option<fresco_store::Store>,
    stop: &Arc<StopSignal>,
    count: usize,
) -> Result<Vec<tokio::task::JoinHandle<WorkerSummary>>, Failure> {
    let threads = fresco_worker::threads_per_worker(args.threads, count);
    let mut workers = Vec::new();
    for n in 0..count {
        let mut config = WorkerConfig::new(worker_name(n), work_dir.to_path_buf());
        config.system = system.clone();
        config.lease = Duration::from_secs(args.lease_seconds.max(1));
        config.grace = Duration::from_secs(args.grace_seconds);
        config.device = args.device;
        if let Some(dir) = &args.scratch_dir {
            config.scratch_dir = dir.clone();
        }
        config.scratch_budget = args.scratch_budget_mb.map(|mb| mb.saturating_mul(1 << 20));
        config.threads = threads;
        config.batch = args.batch;
        config.model_trial = Some(args.model_trial.trial()?);
        let worker = Worker::new(Arc::clone(queue), config, Arc::clone(stop));
        workers.push(tokio::spawn(worker.run()));
    }
    Ok(workers)
}

/// What turns HTTP submissions and the triggers' finds into jobs. Inputs and outputs: under
/// --allow-prefix roots, the data store (`data_root_text`) and the trigger locations (see
/// fresco_server::limits), within the input limits.
fn job_factory(
    args: &ServeArgs,
    data_root_text: &str,
) -> Result<Arc<dyn fresco_server::JobFactory>, Failure> {
    let trigger_roots: Vec<String> = [
        &args.watch,
        &args.output,
        &args.event_output,
        &args.dataset_watch,
        &args.dataset_output,
    ]
    .into_iter()
    .flatten()
    .map(|location| data_root(location))
    .collect();
    let mut roots = vec![data_root_text];
    roots.extend(trigger_roots.iter().map(String::as_str));
    let rules = args.security.path_rules(roots)?;
    Ok(Arc::new(
        LocalJobFactory::default()
            // Jobs from HTTP and the triggers are pinned for this kind of device unless a
            // request names one; the server itself needs no GPU for that.
            .device(args.device)
            .served_kinds(if args.job_devices.is_empty() {
                vec![args.device.kind()]
            } else {
                // clap took only "cpu" and "cuda".
                args.job_devices
                    .iter()
                    .filter_map(|k| k.parse().ok())
                    .collect()
            })
            .data_root(data_root_text.to_string())
            .paths(rules)
            .limits(args.security.limits())
            .model_budget(args.security.model_budget())
            .scratch_dir(args.scratch_dir.clone().unwrap_or_else(std::env::temp_dir)),
    ))
}

/// The watch trigger, when --watch and --output are given: it runs until `stop`.
fn spawn_watcher(
    args: &ServeArgs,
    queue: &Arc<dyn fresco_queue::Queue>,
    factory: &Arc<dyn fresco_server::JobFactory>,
    stop: &Arc<StopSignal>,
) -> Result<(), Failure> {
    let (Some(watch), Some(output)) = (&args.watch, &args.output) else {
        return Ok(());
    };
    let config = WatchConfig {
        watch: watch.clone(),
        output: output.clone(),
        style: args.style.clone(),
        model: trigger_model(args),
        temporal: args.temporal,
        interval: Duration::from_secs(args.watch_interval.max(1)),
    };
    let watcher = Watcher::new(config, Arc::clone(queue), Arc::clone(factory))
        .map_err(|e| Failure::new(exit::BAD_INPUT, e.to_string()))?;
    let stop = Arc::clone(stop);
    tokio::spawn(watcher.run(async move { stop.stopped().await }));
    Ok(())
}

/// The dataset trigger, when --dataset-watch is given: it lists and cuts until `stop`, and the
/// event routes feed it.
fn spawn_dataset_watch(
    args: &ServeArgs,
    queue: &Arc<dyn fresco_queue::Queue>,
    factory: &Arc<dyn fresco_server::JobFactory>,
    stop: &Arc<StopSignal>,
) -> Result<Option<Arc<DatasetWatch>>, Failure> {
    let (Some(watch), Some(output), Some(model)) = (
        &args.dataset_watch,
        &args.dataset_output,
        &args.dataset_model,
    ) else {
        return Ok(None);
    };
    let config = DatasetWatchConfig {
        watch: watch.clone(),
        output: output.clone(),
        model: fresco_store::absolute(std::path::Path::new(model))
            .display()
            .to_string(),
        task: args.dataset_task.clone(),
        format: match args.dataset_format.as_str() {
            "parquet" => RecordsFormat::Parquet,
            _ => RecordsFormat::Jsonl, // clap took only jsonl and parquet
        },
        interval: Duration::from_secs(args.dataset_interval),
        count: args.dataset_count,
        poll: Duration::from_secs(args.watch_interval.max(1)),
        max_failed_items: args.dataset_max_failed_items,
        max_failed_fraction: args.dataset_max_failed_fraction,
    };
    let watch = DatasetWatch::new(config, Arc::clone(queue), Arc::clone(factory))
        .map_err(|e| Failure::new(exit::BAD_INPUT, e.to_string()))?;
    let watch = Arc::new(watch);
    let stop = Arc::clone(stop);
    tokio::spawn(Arc::clone(&watch).run(async move { stop.stopped().await }));
    Ok(Some(watch))
}

/// A share from 0 to 1 (`--dataset-max-failed-fraction`).
fn share(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number: give a share from 0 to 1"))?;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!(
            "{value} is outside 0..=1: give a share from 0 to 1"
        ));
    }
    Ok(value)
}

/// With `--temporal`, the triggers' model must give images: a model that gives records is
/// refused once, at the start, in the words `fresco run --temporal` uses, rather than in every
/// job the watch and the storage events would make. A style not yet downloaded is checked when
/// its jobs are made, as without `--temporal`.
fn check_trigger_temporal(args: &ServeArgs) -> Result<(), Failure> {
    if !args.temporal {
        return Ok(());
    }
    let choice = match (&args.style, trigger_model(args)) {
        (Some(style), _) => fresco_core::ModelChoice::Style(style.clone()),
        (None, Some(path)) => fresco_core::ModelChoice::File(path.into()),
        (None, None) => return Ok(()),
    };
    let registry = fresco_infer::registry::Registry::from_env();
    fresco_submit::check_temporal_model(&choice, &registry, false)?;
    Ok(())
}

/// The model file of the triggers' jobs, made absolute.
fn trigger_model(args: &ServeArgs) -> Option<String> {
    args.model.as_ref().map(|m| {
        fresco_store::absolute(std::path::Path::new(m))
            .display()
            .to_string()
    })
}

/// The signer of upload and download URLs: --signing-key-file, else FRESCO_SIGNING_KEYS, else
/// a random key.
fn url_signer(args: &ServeArgs) -> Result<fresco_server::signing::UrlSigner, Failure> {
    let env_keys = std::env::var("FRESCO_SIGNING_KEYS").ok();
    let (signer, source) = fresco_server::signing::UrlSigner::from_config(
        args.signing_key_file.as_deref(),
        env_keys.as_deref(),
    )
    .map_err(|e| Failure::new(exit::BAD_INPUT, e.to_string()))?;
    if source == fresco_server::signing::KeySource::Random {
        tracing::info!("no --signing-key-file or FRESCO_SIGNING_KEYS: upload and download URLs are signed with a random key and stop working when this server restarts");
    }
    Ok(signer)
}

/// The storage event trigger, when --event-output is given.
fn event_trigger(
    args: &ServeArgs,
) -> Result<Option<fresco_server::routes::events::EventTrigger>, Failure> {
    let Some(output) = &args.event_output else {
        return Ok(None);
    };
    if args.style.is_none() && args.model.is_none() {
        return Err(Failure::new(
            exit::BAD_INPUT,
            "--event-output needs --style or --model for the jobs it makes",
        ));
    }
    Ok(Some(fresco_server::routes::events::EventTrigger {
        output: output.clone(),
        style: args.style.clone(),
        model: trigger_model(args),
        temporal: args.temporal,
    }))
}

/// Says why the storage event routes are off, when they are (a warning when --event-output
/// expects them).
fn log_event_routes(state: &AppState) {
    if state.auth.event_secret.is_none() {
        if state.events.is_some() {
            tracing::warn!("storage event routes (/v1/events/...) are off: no event secret; --event-output makes no jobs until --event-secret-file or FRESCO_EVENT_SECRET is set");
        } else {
            tracing::info!("storage event routes (/v1/events/...) are off: no event secret (--event-secret-file or FRESCO_EVENT_SECRET)");
        }
    }
}

/// Opens the data store (creating a local folder).
fn open_data_store(data: &str) -> Result<fresco_store::Store, Failure> {
    fresco_store::Store::from_url(data)
        .map_err(|e| Failure::new(exit::BAD_INPUT, format!("--data {data}: {e}")))
}

/// The data store as submissions' relative names are resolved against it: an absolute folder
/// or the URL of a prefix.
fn data_root(data: &str) -> String {
    if let Some(path) = data.strip_prefix("file://") {
        return path.to_string();
    }
    if data.contains("://") {
        return data.trim_end_matches('/').to_string();
    }
    fresco_store::absolute(std::path::Path::new(data))
        .display()
        .to_string()
}
