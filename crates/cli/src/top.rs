//! `fresco top`: the dashboard's overview in a terminal, for servers without a browser. It
//! reads the queue's database (`--db`: jobs, workers, totals and the last hour's throughput) or
//! the HTTP API (`--server`, with the token in `FRESCO_TOKEN`: jobs and workers), and redraws
//! in place every `--interval` seconds; `--once` prints one plain snapshot and exits.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use fresco_core::JobState;
use fresco_server::dashboard::view::{self, JobSummary, Overview, WorkerSummary};
use serde_json::Value;

use crate::exit::{self, Failure};
use crate::queue_args::{runtime, QueueArgs};

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Read through the fresco server at this URL instead of the database (token from
    /// FRESCO_TOKEN).
    #[arg(long, env = "FRESCO_SERVER", value_name = "URL")]
    pub server: Option<String>,
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Print one snapshot and exit.
    #[arg(long)]
    pub once: bool,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 2, value_name = "SECONDS")]
    pub interval: u64,
}

pub fn top(args: TopArgs) -> Result<ExitCode, Failure> {
    let runtime = runtime();
    let queue = match &args.server {
        Some(_) => None,
        None => Some(runtime.block_on(args.queue.open())?),
    };
    let interval = Duration::from_secs(args.interval.max(1));
    loop {
        let overview = match (&args.server, &queue) {
            (Some(server), _) => from_api(server)?,
            (None, Some(queue)) => runtime
                .block_on(view::overview(&**queue, None, None))
                .map_err(|e| Failure::new(exit::MISSING_DEPENDENCY, e.to_string()))?,
            (None, None) => unreachable!("a queue is opened when there is no server"),
        };
        let text = render(&overview, terminal_width());
        if args.once {
            print!("{text}");
            return Ok(ExitCode::SUCCESS);
        }
        // Home, draw, clear what is left of the last frame.
        print!("\x1b[H{}\x1b[J", text.replace('\n', "\x1b[K\n"));
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        std::thread::sleep(interval);
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(120)
}

/// The overview from the API: the newest jobs and the workers (no throughput history).
fn from_api(server: &str) -> Result<Overview, Failure> {
    let jobs = get_json(server, "/v1/jobs?limit=50")?;
    let workers = get_json(server, "/v1/workers")?;
    let now = fresco_queue::now_ms();
    let mut by_state = serde_json::Map::new();
    for state in ["queued", "running", "succeeded", "failed", "canceled"] {
        by_state.insert(state.into(), Value::from(0u64));
    }
    let jobs: Vec<JobSummary> = jobs["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|j| {
            let state = j["state"].as_str().unwrap_or("?").to_string();
            if let Some(n) = by_state.get_mut(&state) {
                *n = Value::from(n.as_u64().unwrap_or(0) + 1);
            }
            let frames_done = j["frames_done"].as_u64().unwrap_or(0);
            let frames_total = j["frames_total"].as_u64();
            let (fps, eta_seconds) = view::rate_and_eta(
                JobState::parse(&state).unwrap_or(JobState::Queued),
                frames_done,
                frames_total,
                j["started_at_ms"].as_i64(),
                j["finished_at_ms"].as_i64(),
                now,
            );
            JobSummary {
                id: j["id"].as_str().unwrap_or("?").into(),
                state,
                progress: j["progress"].as_f64().unwrap_or(0.0),
                frames_done,
                frames_total,
                chunks_done: j["chunks_done"].as_u64().unwrap_or(0) as u32,
                chunks_total: j["chunks_total"].as_u64().unwrap_or(0) as u32,
                fps,
                eta_seconds,
                model: j["model"].as_str().unwrap_or("-").into(),
                input: j["input"].as_str().unwrap_or("").into(),
                output: j["output"].as_str().unwrap_or("").into(),
                submitted_by: j["submitted_by"].as_str().map(str::to_string),
                attempts: j["attempts"].as_u64().unwrap_or(0) as u32,
                expiries: j["expiries"].as_u64().unwrap_or(0) as u32,
                last_error: j["last_error"].as_str().map(str::to_string),
                enqueued_at_ms: j["enqueued_at_ms"].as_i64().unwrap_or(0),
                started_at_ms: j["started_at_ms"].as_i64(),
                finished_at_ms: j["finished_at_ms"].as_i64(),
            }
        })
        .collect();
    let workers: Vec<WorkerSummary> = workers["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| WorkerSummary {
            id: w["id"].as_str().unwrap_or("?").into(),
            host: w["host"].as_str().unwrap_or("?").into(),
            device: w["device"].as_str().unwrap_or("?").into(),
            state: w["state"].as_str().unwrap_or("?").into(),
            current: w["current"].as_str().map(str::to_string),
            fps: None,
            last_seen_ms: w["last_seen_ms"].as_i64().unwrap_or(0),
            silent: w["silent"].as_bool().unwrap_or(false),
        })
        .collect();
    let active = workers
        .iter()
        .filter(|w| w.state != "stopped" && !w.silent)
        .count() as u64;
    Ok(Overview {
        now_ms: now,
        jobs,
        jobs_by_state: by_state,
        queue_pending: 0,
        queue_leased: 0,
        workers_active: active,
        workers,
        throughput: Vec::new(),
    })
}

fn get_json(server: &str, path: &str) -> Result<Value, Failure> {
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let mut request = ureq::get(&url).timeout(Duration::from_secs(30));
    if let Some(token) = std::env::var("FRESCO_TOKEN").ok().filter(|t| !t.is_empty()) {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    match request.call() {
        Ok(response) => response.into_json().map_err(|e| {
            Failure::new(
                exit::PROCESSING,
                format!("{url}: the answer is not JSON: {e}"),
            )
        }),
        Err(ureq::Error::Status(status, response)) => {
            let body: Value = response.into_json().unwrap_or(Value::Null);
            let message = body["error"]["message"].as_str().unwrap_or("no message");
            let code = match status {
                401 | 403 => exit::BAD_ARGUMENTS,
                _ => exit::PROCESSING,
            };
            Err(Failure::new(
                code,
                format!("{url}: {message} (HTTP {status}){}", token_hint(status)),
            ))
        }
        Err(e) => Err(Failure::new(
            exit::MISSING_DEPENDENCY,
            format!("{server}: the fresco server cannot be reached: {e}"),
        )),
    }
}

fn token_hint(status: u16) -> &'static str {
    match status {
        401 if std::env::var_os("FRESCO_TOKEN").is_none() => {
            "; set FRESCO_TOKEN to a token (fresco tokens create)"
        }
        _ => "",
    }
}

/// The overview as text, `width` columns wide at most.
pub fn render(view: &Overview, width: usize) -> String {
    let mut out = String::new();
    let counts: Vec<String> = view
        .jobs_by_state
        .iter()
        .map(|(state, n)| format!("{state} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "fresco top · jobs: {} · queue depth {} · active workers {}",
        counts.join(", "),
        view.queue_pending,
        view.workers_active
    );
    if !view.throughput.is_empty() {
        let rates: Vec<f64> = view
            .throughput
            .iter()
            .map(|p| p.frames_per_second)
            .collect();
        let last = rates.last().copied().unwrap_or(0.0);
        let _ = writeln!(
            out,
            "throughput, last hour: {} now {last:.1} frames/s",
            sparkline(&rates)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<8} {:<9} {:<27} {:>7} {:>8} {:<12} INPUT -> OUTPUT",
        "JOB", "STATE", "PROGRESS", "FPS", "ETA", "MODEL"
    );
    for job in &view.jobs {
        let line = format!(
            "{:<8} {:<9} {} {:>7} {:>8} {:<12} {} -> {}",
            job.id.chars().take(8).collect::<String>(),
            job.state,
            bar(job.progress),
            rate(job.fps),
            if job.state == "running" {
                duration(job.eta_seconds)
            } else {
                "-".into()
            },
            clip(&job.model, 12),
            job.input,
            job.output
        );
        let _ = writeln!(out, "{}", clip(&line, width));
    }
    if view.jobs.is_empty() {
        let _ = writeln!(out, "(no jobs)");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<24} {:<8} {:<7} {:>7} {:>9}  CURRENT",
        "WORKER", "DEVICE", "STATE", "FPS", "SEEN"
    );
    for worker in &view.workers {
        let seen = duration(Some((view.now_ms - worker.last_seen_ms) as f64 / 1000.0));
        let line = format!(
            "{:<24} {:<8} {:<7} {:>7} {:>9}  {}",
            clip(&worker.id, 24),
            worker.device,
            if worker.silent {
                "SILENT"
            } else {
                &worker.state
            },
            rate(worker.fps),
            format!("{seen} ago"),
            worker.current.as_deref().unwrap_or("-")
        );
        let _ = writeln!(out, "{}", clip(&line, width));
    }
    if view.workers.is_empty() {
        let _ = writeln!(out, "(no workers heard from)");
    }
    out
}

fn bar(progress: f64) -> String {
    let p = progress.clamp(0.0, 1.0);
    let filled = (p * 20.0).round() as usize;
    format!(
        "[{}{}] {:>3.0}%",
        "#".repeat(filled),
        "-".repeat(20 - filled),
        p * 100.0
    )
}

fn rate(fps: Option<f64>) -> String {
    fps.map(|f| format!("{f:.1}")).unwrap_or_else(|| "-".into())
}

fn duration(seconds: Option<f64>) -> String {
    let Some(s) = seconds.filter(|s| s.is_finite()) else {
        return "-".into();
    };
    let s = s.max(0.0).round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

fn sparkline(values: &[f64]) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().fold(0.0, f64::max);
    values
        .iter()
        .map(|v| {
            if max <= 0.0 {
                BLOCKS[0]
            } else {
                BLOCKS[((v / max) * 7.0).round() as usize]
            }
        })
        .collect()
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut clipped: String = text.chars().take(width.saturating_sub(1)).collect();
        clipped.push('…');
        clipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_durations_and_sparklines() {
        assert_eq!(bar(0.5), "[##########----------]  50%");
        assert_eq!(bar(1.0), "[####################] 100%");
        assert_eq!(duration(Some(75.0)), "1m15s");
        assert_eq!(duration(Some(7300.0)), "2h01m");
        assert_eq!(duration(None), "-");
        assert_eq!(sparkline(&[0.0, 1.0, 2.0]), "▁▅█");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
