//! `fresco bench-jobs`: what the durable job engine costs and how it scales.
//!
//! - one job scored by 1 worker and by 2 workers (one inference thread each): frames/s, ratio;
//! - the queue's own cost per chunk (claim + heartbeat + complete) on SQLite and, with
//!   `--postgres URL`, on PostgreSQL;
//! - claims per second with many concurrent claimers on PostgreSQL (a stand-in for a cluster).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use fresco_core::{FrameRange, RetryBudgets};
use fresco_media::process::Tool;
use fresco_queue::{ClaimFilter, NewJob, Queue};
use fresco_worker::StopSignal;

use crate::bench::make_clip;
use crate::embedded::{run_videos, EmbeddedOptions, VideoJob};
use crate::exit::{self, Failure};
use crate::queue_args::{runtime, QueueArgs};
use crate::run::{ModelArgs, VideoArgs};

#[derive(Debug, Args)]
pub struct BenchJobsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Frame width of the generated clip.
    #[arg(long, default_value_t = 320)]
    pub width: u32,
    /// Frame height of the generated clip.
    #[arg(long, default_value_t = 180)]
    pub height: u32,
    /// Frames in the clip (fixed costs, plan and assembly, weigh more on short clips).
    #[arg(long, default_value_t = 120)]
    pub frames: u32,
    /// Frames per chunk for the scaling run.
    #[arg(long, default_value_t = 10)]
    pub chunk_frames: u64,
    /// A PostgreSQL server to measure too (a scratch database is created and dropped there).
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Chunks for the queue-overhead and claim-rate measurements.
    #[arg(long, default_value_t = 400)]
    pub chunks: u32,
    /// Concurrent claimers for the claim-rate measurement.
    #[arg(long, default_value_t = 32)]
    pub claimers: usize,
    /// Skip the 1-vs-2-worker scaling run (which needs a model and takes longest).
    #[arg(long)]
    pub no_scaling: bool,
    /// Print the figures as one JSON object (for programs) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What `fresco bench-jobs` measured (`--json` prints it as is); a figure not measured is null.
#[derive(Debug, Default, serde::Serialize)]
struct BenchJobsReport {
    width: u32,
    height: u32,
    frames: u32,
    chunk_frames: u64,
    model: Option<String>,
    /// Frames per second of one job on 1 and on 2 workers, one inference thread each.
    fps_1_worker: Option<f64>,
    fps_2_workers: Option<f64>,
    ratio_2_workers_to_1: Option<f64>,
    /// Claim + heartbeat + complete, one worker, in milliseconds per chunk.
    sqlite_ms_per_chunk: f64,
    postgres_ms_per_chunk: Option<f64>,
    postgres_claims_per_second: Option<f64>,
    claimers: usize,
}

pub fn bench_jobs(args: BenchJobsArgs) -> Result<ExitCode, Failure> {
    let dir = tempfile::tempdir()
        .map_err(|e| Failure::new(exit::OUTPUT, format!("temporary folder: {e}")))?;
    let mut report = BenchJobsReport {
        width: args.width,
        height: args.height,
        frames: args.frames,
        chunk_frames: args.chunk_frames,
        claimers: args.claimers,
        ..Default::default()
    };
    let text = !args.json;
    if text {
        println!("fresco bench-jobs");
    }
    if !args.no_scaling {
        scaling(&args, dir.path(), &mut report)?;
    }
    let sqlite_url = format!("sqlite://{}", dir.path().join("bench-queue.db").display());
    runtime().block_on(async {
        let sqlite = fresco_queue::open(&sqlite_url)
            .await
            .map_err(|e| Failure::new(exit::PROCESSING, e.to_string()))?;
        let ms = per_chunk_overhead(&*sqlite, args.chunks).await?;
        report.sqlite_ms_per_chunk = ms;
        if text {
            println!("  queue cost per chunk, SQLite      {ms:8.2} ms   (claim + heartbeat + complete, one worker)");
        }
        if let Some(admin) = &args.postgres {
            let (url, db) = scratch_database(admin).await?;
            let result = async {
                let pg = fresco_queue::open(&url)
                    .await
                    .map_err(|e| Failure::new(exit::PROCESSING, e.to_string()))?;
                let ms = per_chunk_overhead(&*pg, args.chunks).await?;
                if text {
                    println!("  queue cost per chunk, PostgreSQL  {ms:8.2} ms   (claim + heartbeat + complete, one worker)");
                }
                let rate = claim_rate(&pg, args.chunks.max(2000), args.claimers).await?;
                if text {
                    println!(
                        "  claims/s, PostgreSQL, {} claimers {rate:8.0}      (target >= 500)",
                        args.claimers
                    );
                }
                Ok::<(f64, f64), Failure>((ms, rate))
            }
            .await;
            drop_database(admin, &db).await;
            let (ms, rate) = result?;
            report.postgres_ms_per_chunk = Some(ms);
            report.postgres_claims_per_second = Some(rate);
        } else if text {
            println!("  PostgreSQL                        (skipped: pass --postgres URL)");
        }
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("serialises")
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// One job through 1 worker and through 2 workers, one inference thread each.
fn scaling(
    args: &BenchJobsArgs,
    dir: &std::path::Path,
    report: &mut BenchJobsReport,
) -> Result<(), Failure> {
    let clip = dir.join("clip.mp4");
    make_clip(&Tool::ffmpeg(), &clip, args.width, args.height, args.frames)?;
    let model = args.model.load()?;
    let pin = args.model.pin(&model.name, &model.digest);
    drop(model);
    let video = VideoArgs {
        codec: Some("libx264".into()),
        crf: Some(18),
        preset: Some("medium".into()),
        pix_fmt: None,
        encoder_threads: Some(1),
        max_side: None,
        drop_streams: Vec::new(),
        overwrite: true,
        hwaccel: None,
        temporal: false,
    };
    let mut fps = Vec::new();
    for workers in [1usize, 2] {
        let state = dir.join(format!("state-{workers}"));
        let opts = EmbeddedOptions {
            workers,
            chunk_frames: Some(args.chunk_frames),
            queue: QueueArgs {
                db: Some(crate::worker_cmd::default_db_url(&state)),
                work_dir: Some(state.join("work")),
                system: None,
            },
            chatty: false,
            device: args.model.device,
            threads: Some(1),
            scoring: None,
            batch: 1,
        };
        let job = VideoJob {
            input: clip.clone(),
            output: dir.join(format!("out-{workers}.mp4")),
            dataset: None,
        };
        let t0 = Instant::now();
        let results = run_videos(
            &[job],
            pin.clone(),
            video.options(),
            &opts,
            StopSignal::new(),
        )?;
        let seconds = t0.elapsed().as_secs_f64();
        for result in results {
            result?;
        }
        let rate = args.frames as f64 / seconds;
        if args.json {
            fps.push(rate);
            continue;
        }
        println!(
            "  {workers} worker{}, 1 thread each      {rate:8.3} frames/s   ({} {}x{} frames, chunks of {}, {} model)",
            if workers == 1 { " " } else { "s" },
            args.frames,
            args.width,
            args.height,
            args.chunk_frames,
            pin.name
        );
        fps.push(rate);
    }
    report.model = Some(pin.name.clone());
    report.fps_1_worker = Some(fps[0]);
    report.fps_2_workers = Some(fps[1]);
    report.ratio_2_workers_to_1 = Some(fps[1] / fps[0]);
    if !args.json {
        println!(
            "  ratio 2 workers / 1              {:8.3}              (target >= 1.8 on 2 cores)",
            fps[1] / fps[0]
        );
    }
    Ok(())
}

/// Average wall time of claim + heartbeat + complete over `chunks` chunks of one job.
async fn per_chunk_overhead(queue: &dyn Queue, chunks: u32) -> Result<f64, Failure> {
    let job = planned_job(queue, chunks).await?;
    let filter = ClaimFilter {
        jobs: Some(vec![job]),
        ..ClaimFilter::default()
    };
    let lease = Duration::from_secs(60);
    let t0 = Instant::now();
    let mut n = 0u32;
    while let Some(task) = queue.claim("bench", lease, &filter).await.map_err(qf)? {
        if task.kind != fresco_core::TaskKind::Score {
            queue.release(&task).await.map_err(qf)?;
            break;
        }
        queue.heartbeat(&task, lease).await.map_err(qf)?;
        queue.complete_chunk(&task).await.map_err(qf)?;
        n += 1;
    }
    Ok(t0.elapsed().as_secs_f64() * 1000.0 / n.max(1) as f64)
}

/// Claims per second with `claimers` concurrent claimers until `chunks` chunks are taken.
async fn claim_rate(queue: &Arc<dyn Queue>, chunks: u32, claimers: usize) -> Result<f64, Failure> {
    let job = planned_job(&**queue, chunks).await?;
    let filter = ClaimFilter {
        jobs: Some(vec![job]),
        ..ClaimFilter::default()
    };
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..claimers {
        let queue = Arc::clone(queue);
        let filter = filter.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let name = format!("bench-{c}");
            while let Ok(Some(task)) = queue.claim(&name, Duration::from_secs(60), &filter).await {
                if task.kind != fresco_core::TaskKind::Score {
                    break;
                }
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap_or(0);
    }
    Ok(total as f64 / t0.elapsed().as_secs_f64())
}

/// Submits a job and completes its plan with `chunks` one-frame chunks.
async fn planned_job(queue: &dyn Queue, chunks: u32) -> Result<String, Failure> {
    let identity = format!("bench-{}-{}", std::process::id(), fresco_queue::now_ms());
    let id = queue
        .submit(NewJob {
            identity: identity.clone(),
            input: "bench".into(),
            output: "bench".into(),
            spec: "{}".into(),
            device_kind: fresco_core::DeviceKind::Cpu,
            priority: 0,
            budgets: RetryBudgets::default(),
            idempotency_key: None,
        })
        .await
        .map_err(qf)?
        .id()
        .to_string();
    let filter = ClaimFilter {
        jobs: Some(vec![id.clone()]),
        ..ClaimFilter::default()
    };
    let plan = queue
        .claim("bench", Duration::from_secs(60), &filter)
        .await
        .map_err(qf)?
        .ok_or_else(|| {
            Failure::new(
                exit::PROCESSING,
                "the bench job's plan task was not claimable",
            )
        })?;
    let ranges: Vec<FrameRange> = (0..chunks as u64)
        .map(|i| FrameRange {
            start: i,
            end: i + 1,
        })
        .collect();
    queue
        .complete_plan(&plan, "{}", chunks as u64, &ranges)
        .await
        .map_err(qf)?;
    Ok(id)
}

fn qf(e: fresco_queue::QueueError) -> Failure {
    Failure::new(exit::PROCESSING, format!("job queue: {e}"))
}

/// Creates `fresco_bench_PID` on the server at `admin`; returns its URL and name.
async fn scratch_database(admin: &str) -> Result<(String, String), Failure> {
    use sqlx::Connection;
    let db = format!("fresco_bench_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .map_err(|e| Failure::new(exit::MISSING_DEPENDENCY, format!("{admin}: {e}")))?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut conn)
        .await
        .map_err(|e| Failure::new(exit::PROCESSING, format!("create {db}: {e}")))?;
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
    Ok((format!("{base}/{db}"), db))
}

async fn drop_database(admin: &str, db: &str) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}
