//! `fresco top`: the dashboard's overview in a terminal, for servers without a browser. It
//! reads the queue's database (`--db`: jobs, workers, totals and the last hour's throughput) or
//! the HTTP API (`--server`, with the same token and TLS options as `fresco jobs --server`:
//! `--token-file` or `FRESCO_TOKEN`, `--ca-cert`), parsed into the server's own response types,
//! and redraws in place every `--interval` seconds, fitted to the terminal's columns and rows;
//! `--once` prints one plain snapshot and exits.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use fresco_core::JobState;
use fresco_server::api::JobPage;
use fresco_server::dashboard::view::{self, JobSummary, Overview, WorkerSummary};
use fresco_server::routes::workers::WorkerList;

use crate::api_client::{self, ClientArgs};
use crate::exit::{self, Failure};
use crate::queue_args::{runtime, QueueArgs};

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Read through the fresco server at this URL instead of the database (token from
    /// --token-file or FRESCO_TOKEN).
    #[arg(long, env = "FRESCO_SERVER", value_name = "URL")]
    pub server: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
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
    let source = match &args.server {
        Some(server) => Source::Api(args.client.connect(server)?),
        None => Source::Queue(runtime.block_on(args.queue.open())?),
    };
    let interval = Duration::from_secs(args.interval.max(1));
    loop {
        let overview = match &source {
            Source::Api(client) => from_api(client)?,
            Source::Queue(queue) => runtime
                .block_on(view::overview(&**queue, None, None))
                .map_err(|e| Failure::new(exit::MISSING_DEPENDENCY, e.to_string()))?,
        };
        let size = screen_size();
        if args.once {
            // A snapshot is not clipped to the rows: it may go to a file or a pager.
            print!("{}", render(&overview, size.columns, None));
            return Ok(ExitCode::SUCCESS);
        }
        let text = render(&overview, size.columns, size.rows);
        // Home, draw, clear what is left of the last frame.
        print!("\x1b[H{}\x1b[J", text.replace('\n', "\x1b[K\n"));
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        std::thread::sleep(interval);
    }
}

enum Source {
    Api(api_client::Client),
    Queue(std::sync::Arc<dyn fresco_queue::Queue>),
}

/// The screen to draw on: columns, and rows where known.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ScreenSize {
    columns: usize,
    rows: Option<usize>,
}

/// The size of the terminal standard output goes to; where it is not a terminal (a pipe, a
/// test), the shell's `COLUMNS` and `LINES`; else 120 columns and no row limit.
fn screen_size() -> ScreenSize {
    if let Some((terminal_size::Width(w), terminal_size::Height(h))) =
        terminal_size::terminal_size_of(std::io::stdout())
    {
        if w > 0 && h > 0 {
            return ScreenSize {
                columns: w as usize,
                rows: Some(h as usize),
            };
        }
    }
    let from_env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
    };
    ScreenSize {
        columns: from_env("COLUMNS").unwrap_or(120),
        rows: from_env("LINES"),
    }
}

/// The overview from the API: the newest jobs and the workers (no throughput history), read
/// into the server's own types, so a change of the API shows here as a clear error.
fn from_api(client: &api_client::Client) -> Result<Overview, Failure> {
    let page: JobPage = api_client::get(client, "/v1/jobs?limit=50")?;
    let workers: WorkerList = api_client::get(client, "/v1/workers")?;
    let now = fresco_queue::now_ms();
    let mut by_state = serde_json::Map::new();
    for state in ["queued", "running", "succeeded", "failed", "canceled"] {
        by_state.insert(state.into(), serde_json::Value::from(0u64));
    }
    let jobs: Vec<JobSummary> = page
        .jobs
        .into_iter()
        .map(|j| {
            let state = JobState::from(j.state);
            if let Some(n) = by_state.get_mut(state.as_str()) {
                *n = serde_json::Value::from(n.as_u64().unwrap_or(0) + 1);
            }
            let (fps, eta_seconds) = view::rate_and_eta(
                state,
                j.frames_done,
                j.frames_total,
                j.started_at_ms,
                j.finished_at_ms,
                now,
            );
            JobSummary {
                id: j.id,
                state: state.as_str().to_string(),
                progress: j.progress,
                frames_done: j.frames_done,
                frames_total: j.frames_total,
                chunks_done: j.chunks_done,
                chunks_total: j.chunks_total,
                fps,
                eta_seconds,
                // The API's job view names no model; the dashboard's does.
                model: "-".into(),
                temporal: j.temporal,
                input: j.input,
                output: j.output,
                submitted_by: None,
                attempts: j.attempts,
                expiries: j.expiries,
                last_error: j.last_error,
                // The API's job view has no item counts; the dashboard's does.
                items: None,
                enqueued_at_ms: j.enqueued_at_ms,
                started_at_ms: j.started_at_ms,
                finished_at_ms: j.finished_at_ms,
            }
        })
        .collect();
    let workers: Vec<WorkerSummary> = workers
        .workers
        .into_iter()
        .map(|w| WorkerSummary {
            id: w.id,
            host: w.host,
            device: w.device,
            state: w.state,
            current: w.current,
            fps: None,
            last_seen_ms: w.last_seen_ms,
            silent: w.silent,
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

/// The overview as text, `width` columns wide at most and, where `rows` is given, at most
/// `rows - 1` lines (the last row keeps the cursor, so the screen does not scroll): the lists
/// of jobs and workers are cut to fit, with a line saying how many are not shown.
pub fn render(view: &Overview, width: usize, rows: Option<usize>) -> String {
    let mut header = Vec::new();
    let counts: Vec<String> = view
        .jobs_by_state
        .iter()
        .map(|(state, n)| format!("{state} {n}"))
        .collect();
    header.push(format!(
        "fresco top · jobs: {} · queue depth {} · active workers {}",
        counts.join(", "),
        view.queue_pending,
        view.workers_active
    ));
    if !view.throughput.is_empty() {
        let rates: Vec<f64> = view
            .throughput
            .iter()
            .map(|p| p.frames_per_second)
            .collect();
        let last = rates.last().copied().unwrap_or(0.0);
        header.push(format!(
            "throughput, last hour: {} now {last:.1} frames/s",
            sparkline(&rates)
        ));
    }
    header.push(String::new());
    header.push(format!(
        "{:<8} {:<9} {:<27} {:>7} {:>8} {:<12} INPUT -> OUTPUT",
        "JOB", "STATE", "PROGRESS", "FPS", "ETA", "MODEL"
    ));
    let mut jobs: Vec<String> = view
        .jobs
        .iter()
        .map(|job| {
            format!(
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
            )
        })
        .collect();
    if jobs.is_empty() {
        jobs.push("(no jobs)".into());
    }
    let middle = [
        String::new(),
        format!(
            "{:<24} {:<8} {:<7} {:>7} {:>9}  CURRENT",
            "WORKER", "DEVICE", "STATE", "FPS", "SEEN"
        ),
    ];
    let mut workers: Vec<String> = view
        .workers
        .iter()
        .map(|worker| {
            let seen = duration(Some((view.now_ms - worker.last_seen_ms) as f64 / 1000.0));
            format!(
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
            )
        })
        .collect();
    if workers.is_empty() {
        workers.push("(no workers heard from)".into());
    }
    if let Some(rows) = rows {
        // Lines left for the two lists, each given at least one line.
        let room = rows.saturating_sub(1 + header.len() + middle.len()).max(2);
        let worker_room = workers.len().min((room / 3).max(1));
        let job_room = room - worker_room;
        fit(&mut jobs, job_room, "jobs");
        fit(&mut workers, room - job_room.min(jobs.len()), "workers");
    }
    let mut out = String::new();
    for line in header.iter().chain(&jobs).chain(&middle).chain(&workers) {
        let _ = writeln!(out, "{}", clip(line, width));
    }
    out
}

/// Cuts `lines` to `room` lines, the last saying how many were left out.
fn fit(lines: &mut Vec<String>, room: usize, what: &str) {
    if lines.len() > room {
        let keep = room.saturating_sub(1);
        let hidden = lines.len() - keep;
        lines.truncate(keep);
        lines.push(format!(
            "… {hidden} more {what} (a taller terminal shows them)"
        ));
    }
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

    fn overview(jobs: usize, workers: usize) -> Overview {
        let job = |i: usize| JobSummary {
            id: format!("job{i:05}xyz"),
            state: "running".into(),
            progress: 0.5,
            frames_done: 5,
            frames_total: Some(10),
            chunks_done: 1,
            chunks_total: 2,
            fps: Some(1.0),
            eta_seconds: Some(5.0),
            model: "vintage".into(),
            temporal: false,
            input: "/a/very/long/input/path/that/goes/on/and/on.mp4".into(),
            output: "/out.mp4".into(),
            submitted_by: None,
            attempts: 0,
            expiries: 0,
            last_error: None,
            items: None,
            enqueued_at_ms: 0,
            started_at_ms: Some(0),
            finished_at_ms: None,
        };
        let worker = |i: usize| WorkerSummary {
            id: format!("host:{i}:0"),
            host: "host".into(),
            device: "cpu".into(),
            state: "busy".into(),
            current: Some("score chunk 1".into()),
            fps: None,
            last_seen_ms: 0,
            silent: false,
        };
        Overview {
            now_ms: 1000,
            jobs: (0..jobs).map(job).collect(),
            jobs_by_state: serde_json::Map::new(),
            queue_pending: 0,
            queue_leased: 0,
            workers_active: workers as u64,
            workers: (0..workers).map(worker).collect(),
            throughput: Vec::new(),
        }
    }

    #[test]
    fn the_overview_fits_the_screen_and_says_what_it_left_out() {
        for (rows, width) in [(10, 40), (15, 60), (24, 80), (50, 200)] {
            let text = render(&overview(60, 30), width, Some(rows));
            let lines: Vec<&str> = text.lines().collect();
            assert!(
                lines.len() < rows,
                "{} lines for {rows} rows:\n{text}",
                lines.len()
            );
            assert!(
                lines.iter().all(|l| l.chars().count() <= width),
                "a line is wider than {width}:\n{text}"
            );
            assert!(text.contains("more jobs"), "{text}");
            assert!(text.contains("WORKER"), "{text}");
            // A tiny screen has room for the count of workers only; a larger one lists some.
            if rows >= 15 {
                assert!(
                    text.contains("host:0:0") && text.contains("more workers"),
                    "{text}"
                );
            } else {
                assert!(text.contains("30 more workers"), "{text}");
            }
        }
        // Everything fits: nothing is left out, and no row limit cuts nothing either.
        let text = render(&overview(3, 2), 120, Some(40));
        assert!(!text.contains("more"), "{text}");
        assert_eq!(text.matches("job0").count(), 3);
        let text = render(&overview(30, 12), 120, None);
        assert_eq!(text.matches("job0").count(), 30);
        assert_eq!(text.matches("host:").count(), 12);
    }
}
