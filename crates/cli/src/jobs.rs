//! `fresco jobs submit|list|show|cancel|retry`: the queue, straight from the database.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use fresco_core::dataset::DatasetSource;
use fresco_core::{JobState, RetryBudgets};
use fresco_queue::{JobRecord, Submitted, TaskRecord};
use fresco_store::absolute;
use fresco_submit::{ModelSource, Submission, Submitter};
use serde::Serialize;

use crate::exit::{self, Failure};
use crate::queue_args::{runtime, QueueArgs};
use crate::run::{ModelArgs, VideoArgs};

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Queue a video for the workers; prints the job id.
    Submit(Box<SubmitArgs>),
    /// Jobs, newest first, with their progress.
    List(ListArgs),
    /// One job: state, times, progress, every chunk and the last error.
    Show(ShowArgs),
    /// Stop a queued or running job; its workers drop its chunks within one lease.
    Cancel(IdArgs),
    /// A job's log: planning, every chunk attempt with its worker, errors, assembly.
    Logs(ShowArgs),
    /// Queue a failed or canceled job again (its plan is kept; its chunks are scored again).
    Retry(IdArgs),
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Use the fresco server's HTTP API at this URL instead of the database.
    #[arg(long, env = "FRESCO_SERVER", value_name = "URL")]
    pub server: Option<String>,
    #[command(flatten)]
    pub client: crate::api_client::ClientArgs,
    /// The video to style or score; or a folder or object-store prefix (`az://c/photos/`) of
    /// images to score into records, one row per image (a dataset job).
    #[arg(required_unless_present = "manifest")]
    pub input: Option<PathBuf>,
    /// Where the styled video goes.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub scoring: crate::scoring_args::ScoringArgs,
    #[command(flatten)]
    pub video: VideoArgs,
    #[command(flatten)]
    pub dataset: crate::dataset_args::DatasetArgs,
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Frames per chunk (items per chunk for a dataset) (default: about 30 s of model time each, from a calibration).
    #[arg(long, value_name = "N")]
    pub chunk_frames: Option<u64>,
    /// Higher runs first; equal priorities share the workers chunk by chunk.
    #[arg(long, default_value_t = 0)]
    pub priority: i32,
    /// Errors a chunk may report before its job fails.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// Leases a chunk may lose (its worker died) before its job fails.
    #[arg(long, default_value_t = 10)]
    pub max_expiries: u32,
    /// Print the job as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Use the fresco server's HTTP API at this URL instead of the database.
    #[arg(long, env = "FRESCO_SERVER", value_name = "URL")]
    pub server: Option<String>,
    #[command(flatten)]
    pub client: crate::api_client::ClientArgs,
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Only jobs in this state (queued, running, succeeded, failed, canceled).
    #[arg(long)]
    pub state: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Use the fresco server's HTTP API at this URL instead of the database.
    #[arg(long, env = "FRESCO_SERVER", value_name = "URL")]
    pub server: Option<String>,
    #[command(flatten)]
    pub client: crate::api_client::ClientArgs,
    pub id: String,
    #[command(flatten)]
    pub queue: QueueArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// Use the fresco server's HTTP API at this URL instead of the database.
    #[arg(long, env = "FRESCO_SERVER", value_name = "URL")]
    pub server: Option<String>,
    #[command(flatten)]
    pub client: crate::api_client::ClientArgs,
    pub id: String,
    #[command(flatten)]
    pub queue: QueueArgs,
}

pub fn jobs(cmd: JobsCommand) -> Result<ExitCode, Failure> {
    match cmd {
        JobsCommand::Submit(args) => submit(*args),
        JobsCommand::List(args) => list(args),
        JobsCommand::Show(args) => show(args),
        JobsCommand::Logs(args) => logs(args),
        JobsCommand::Cancel(args) => cancel(args),
        JobsCommand::Retry(args) => retry(args),
    }
}

fn queue_failure(e: fresco_queue::QueueError) -> Failure {
    match e {
        fresco_queue::QueueError::NoSuchJob(id) => {
            Failure::new(exit::INPUT_MISSING, format!("no job with id '{id}'"))
        }
        other => Failure::new(exit::PROCESSING, format!("job queue: {other}")),
    }
}

fn submit(mut args: SubmitArgs) -> Result<ExitCode, Failure> {
    crate::scoring_args::model_by_name(&mut args.model.style, &mut args.model.model);
    // Local paths are made absolute, as the checks require; URLs are kept as they are.
    let place = |p: &std::path::Path| {
        let text = p.to_string_lossy();
        if text.contains("://") {
            text.into_owned()
        } else {
            absolute(p).display().to_string()
        }
    };
    let dataset = args.dataset.spec(args.input.as_deref());
    let input = match (&dataset, &args.input) {
        (Some(d), _) => match &d.source {
            DatasetSource::Folder { path } | DatasetSource::Manifest { path } => place(path),
            DatasetSource::Prefix { url } => url.clone(),
        },
        (None, Some(input)) => place(input),
        (None, None) => unreachable!("clap requires an input or --manifest"),
    };
    if let Some(server) = &args.server {
        let dataset = args
            .dataset
            .for_server(args.input.as_deref())
            .map_err(|why| Failure::new(exit::BAD_INPUT, why))?;
        // The server checks everything.
        let model = args.model.model.as_deref().map(place);
        let mut body = crate::api_client::submission(
            &input,
            &place(&args.output),
            args.model.style.as_deref(),
            model.as_deref(),
            &args.video,
            args.chunk_frames,
            args.priority,
            args.max_attempts,
            args.max_expiries,
        );
        if args.model.precision != fresco_infer::fp16::Precision::Fp32 {
            // Sent only when asked for, so that servers without the field still take fp32 jobs.
            body["precision"] = args.model.precision.to_string().into();
        }
        if let Some(scoring) = args
            .scoring
            .to_json(args.model.channel_order, |p| PathBuf::from(place(p)))
        {
            body["scoring"] = scoring;
        }
        if args.model.device != fresco_core::Device::Cpu {
            // Likewise: without it the server pins the job for its own --device.
            body["device"] = "cuda".into();
        }
        if let Some(dataset) = dataset {
            body["dataset"] = dataset;
        }
        return crate::api_client::submit(&args.client.connect(server)?, &body, args.json);
    }
    if args.max_attempts == 0 || args.max_expiries == 0 {
        return Err(Failure::new(
            exit::BAD_INPUT,
            "--max-attempts and --max-expiries must be at least 1",
        ));
    }
    if args.chunk_frames == Some(0) {
        return Err(Failure::new(
            exit::BAD_INPUT,
            "--chunk-frames must be at least 1",
        ));
    }
    // The checks the API server makes, in the same words (`fresco_submit`): the input is probed,
    // the output checked, the model inspected statically (no session, as the server does,
    // whatever device the job is for) and its digest pinned. Local paths are made absolute.
    let model = match (&args.model.style, &args.model.model) {
        (Some(style), _) => ModelSource::Style(style.clone()),
        (None, Some(path)) => ModelSource::File(place(path)),
        (None, None) => unreachable!("clap requires --style or --model"),
    };
    let submission = Submission {
        input,
        output: place(&args.output),
        model,
        device: args.model.device,
        precision: args.model.precision,
        input_range: args.model.input_range,
        channel_order: args.model.channel_order,
        options: args.video.options(),
        chunk_frames: args.chunk_frames,
        priority: args.priority,
        budgets: RetryBudgets {
            max_attempts: args.max_attempts,
            max_expiries: args.max_expiries,
        },
        scoring: Some(
            args.scoring
                .ask(args.model.channel_order, |p| PathBuf::from(place(p))),
        ),
    };
    let submitter = Submitter::new(fresco_infer::registry::Registry::from_env())
        .allow_download(!args.model.no_download)
        .limits(fresco_wire::limits::InputLimits::none());
    runtime().block_on(async {
        let built = tokio::task::spawn_blocking(move || match &dataset {
            Some(dataset) => submitter.build_dataset(&submission, dataset),
            None => submitter.build(&submission),
        })
        .await
        .map_err(|e| Failure::new(exit::PROCESSING, format!("job checks panicked: {e}")))??;
        let queue = args.queue.open().await?;
        let submitted = queue.submit(built.job).await.map_err(queue_failure)?;
        let record = queue
            .job(submitted.id())
            .await
            .map_err(queue_failure)?
            .ok_or_else(|| Failure::new(exit::PROCESSING, "the submitted job vanished"))?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&record).expect("serialises")
            );
        } else {
            if let Submitted::Existing(id) = &submitted {
                eprintln!("the same job is already {}: {id}", record.state);
            }
            println!("{}", submitted.id());
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn list(args: ListArgs) -> Result<ExitCode, Failure> {
    if let Some(server) = &args.server {
        return crate::api_client::list(
            &args.client.connect(server)?,
            args.state.as_deref(),
            args.limit,
            args.json,
        );
    }
    let states = match &args.state {
        None => Vec::new(),
        Some(s) => vec![JobState::parse(s).ok_or_else(|| {
            Failure::new(
                exit::BAD_INPUT,
                format!("--state {s}: use queued, running, succeeded, failed or canceled"),
            )
        })?],
    };
    runtime().block_on(async {
        let queue = args.queue.open().await?;
        let jobs = queue
            .jobs(&states, args.limit)
            .await
            .map_err(queue_failure)?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&jobs).expect("serialises")
            );
            return Ok(ExitCode::SUCCESS);
        }
        if jobs.is_empty() {
            eprintln!("no jobs");
        }
        for job in &jobs {
            println!("{}", job_line(job));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// "ID  running  120/300 frames  4/10 chunks  input -> output".
fn job_line(job: &JobRecord) -> String {
    let frames = match job.frames_total {
        Some(total) => format!("{}/{total} frames", job.frames_done),
        None => "planning".into(),
    };
    format!(
        "{}  {:<9}  {frames}  {}/{} chunks  {} -> {}{}",
        job.id,
        job.state.as_str(),
        job.chunks_done,
        job.chunks_total,
        job.input,
        job.output,
        match (&job.last_error, job.state) {
            (Some(e), JobState::Failed) => format!("\n    error: {e}"),
            _ => String::new(),
        }
    )
}

#[derive(Serialize)]
struct JobDetail {
    #[serde(flatten)]
    job: JobRecord,
    /// Whether the job is steadied (`--temporal`, pinned in its spec), as the API's view says.
    temporal: bool,
    tasks: Vec<TaskRecord>,
}

fn show(args: ShowArgs) -> Result<ExitCode, Failure> {
    if let Some(server) = &args.server {
        return crate::api_client::show(&args.client.connect(server)?, &args.id, args.json);
    }
    runtime().block_on(async {
        let queue = args.queue.open().await?;
        let job = queue
            .job(&args.id)
            .await
            .map_err(queue_failure)?
            .ok_or_else(|| queue_failure(fresco_queue::QueueError::NoSuchJob(args.id.clone())))?;
        let tasks = queue.tasks(&args.id).await.map_err(queue_failure)?;
        if args.json {
            let temporal = fresco_core::JobSpec::temporal_in(&job.spec);
            let detail = JobDetail {
                job,
                temporal,
                tasks,
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&detail).expect("serialises")
            );
            return Ok(ExitCode::SUCCESS);
        }
        println!("job {}", job.id);
        println!("  state:     {}", job.state);
        println!("  input:     {}", job.input);
        println!("  output:    {}", job.output);
        println!("  priority:  {}", job.priority);
        if fresco_core::JobSpec::temporal_in(&job.spec) {
            println!("  temporal:  on (frames blended along the input's flow)");
        }
        match job.frames_total {
            Some(total) => println!(
                "  progress:  {}/{total} frames, {}/{} chunks",
                job.frames_done, job.chunks_done, job.chunks_total
            ),
            None => println!("  progress:  not planned yet"),
        }
        println!(
            "  attempts:  {} errors (max {} per chunk), {} lost leases (max {})",
            job.attempts, job.max_attempts, job.expiries, job.max_expiries
        );
        println!("  enqueued:  {}", time_text(Some(job.enqueued_at_ms)));
        println!("  started:   {}", time_text(job.started_at_ms));
        println!("  finished:  {}", time_text(job.finished_at_ms));
        if let Some(error) = &job.last_error {
            println!("  error:     {error}");
        }
        println!("  tasks:");
        for task in &tasks {
            let what = match task.kind {
                fresco_core::TaskKind::Score => format!(
                    "chunk {:>4}  frames {}-{}",
                    task.chunk,
                    task.frames.start,
                    task.frames.end.saturating_sub(1)
                ),
                other => format!("{other:<25}"),
            };
            println!(
                "    {what:<28} {:<8} attempts {} expiries {}{}{}",
                task.state.as_str(),
                task.attempts,
                task.expiries,
                task.worker
                    .as_ref()
                    .map(|w| format!("  worker {w}"))
                    .unwrap_or_default(),
                task.last_error
                    .as_ref()
                    .map(|e| format!("\n        error: {e}"))
                    .unwrap_or_default()
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Milliseconds since the epoch as RFC 3339 UTC ("2026-11-28T11:22:33Z").
fn time_text(ms: Option<i64>) -> String {
    match ms {
        Some(ms) if ms >= 0 => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64),
        )
        .to_string(),
        _ => "-".into(),
    }
}

fn logs(args: ShowArgs) -> Result<ExitCode, Failure> {
    if let Some(server) = &args.server {
        return crate::api_client::logs(&args.client.connect(server)?, &args.id, args.json);
    }
    runtime().block_on(async {
        let queue = args.queue.open().await?;
        queue
            .job(&args.id)
            .await
            .map_err(queue_failure)?
            .ok_or_else(|| queue_failure(fresco_queue::QueueError::NoSuchJob(args.id.clone())))?;
        let mut after = None;
        loop {
            let lines = queue
                .job_log(&args.id, after, 1000)
                .await
                .map_err(queue_failure)?;
            let Some(last) = lines.last() else { break };
            after = Some(last.id);
            for line in &lines {
                if args.json {
                    println!("{}", serde_json::to_string(line).expect("serialises"));
                } else {
                    println!(
                        "{}  {}  {}",
                        time_text(Some(line.at_ms)),
                        line.worker.as_deref().unwrap_or("-"),
                        line.message
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn cancel(args: IdArgs) -> Result<ExitCode, Failure> {
    if let Some(server) = &args.server {
        return crate::api_client::action(&args.client.connect(server)?, &args.id, "cancel");
    }
    runtime().block_on(async {
        let queue = args.queue.open().await?;
        let changed = queue.cancel(&args.id).await.map_err(queue_failure)?;
        // Workers drop the job's chunks at their next heartbeat; its folder goes now if this
        // machine sees it (and at the next sweep of any worker otherwise).
        let system = args.queue.system_store()?;
        fresco_store::system::remove_job_files(
            Some(&args.queue.work_dir()),
            system.as_ref(),
            &args.id,
        )
        .await;
        if changed {
            println!("canceled {}", args.id);
        } else {
            let state = queue
                .job(&args.id)
                .await
                .map_err(queue_failure)?
                .map(|j| j.state.to_string())
                .unwrap_or_default();
            println!("{} was already {state}", args.id);
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn retry(args: IdArgs) -> Result<ExitCode, Failure> {
    if let Some(server) = &args.server {
        return crate::api_client::action(&args.client.connect(server)?, &args.id, "retry");
    }
    runtime().block_on(async {
        let queue = args.queue.open().await?;
        if queue.retry(&args.id).await.map_err(queue_failure)? {
            println!("queued {} again", args.id);
            Ok(ExitCode::SUCCESS)
        } else {
            let state = queue
                .job(&args.id)
                .await
                .map_err(queue_failure)?
                .map(|j| j.state.to_string())
                .ok_or_else(|| {
                    queue_failure(fresco_queue::QueueError::NoSuchJob(args.id.clone()))
                })?;
            Err(Failure::new(
                exit::BAD_INPUT,
                format!(
                    "job {} is {state}: only failed or canceled jobs can be retried",
                    args.id
                ),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::time_text;

    #[test]
    fn times_print_in_utc() {
        assert_eq!(time_text(Some(0)), "1970-01-01T00:00:00Z");
        assert_eq!(time_text(Some(1_764_328_953_000)), "2025-11-28T11:22:33Z");
        assert_eq!(time_text(None), "-");
    }
}
