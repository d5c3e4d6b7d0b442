//! `fresco eval`: measures of a styled result. `fresco eval temporal INPUT OUTPUT` gives the
//! warping error of OUTPUT (Lai et al., ECCV 2018) with INPUT's flow, and INPUT's own as the
//! floor: docs/temporal.md.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use fresco_temporal::measure::{ChunkSplit, Summary};
use fresco_temporal::{measure_files, FlowSettings, MeasureError, MeasureOptions, TemporalReport};

use crate::exit::{self, Failure};

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Flicker: the warping error of OUTPUT, with INPUT's optical flow and occlusions, beside
    /// INPUT's own (the scene's change, a floor). Both must have the same frames.
    Temporal(TemporalArgs),
}

#[derive(Debug, Args)]
pub struct TemporalArgs {
    /// The original video.
    pub input: PathBuf,
    /// The styled video made from it.
    pub output: PathBuf,
    /// Report the frames that start a chunk of N frames separately (a seam shows there).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_frames: Option<u64>,
    /// Report the frames that start a chunk of this job separately: the chunks its plan cut
    /// (whatever their sizes), read from the queue (`--db`) rather than given as N.
    #[arg(long, value_name = "ID", conflicts_with = "chunk_frames")]
    pub job: Option<String>,
    #[command(flatten)]
    pub queue: crate::queue_args::QueueArgs,
    /// Measure at this size (e.g. 640x360); the input's displayed size by default.
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub size: Option<(usize, usize)>,
    /// Print the report as one JSON object, with every frame's figures.
    #[arg(long)]
    pub json: bool,
    /// Print every frame's figures (the text report).
    #[arg(long)]
    pub per_frame: bool,
}

fn parse_size(text: &str) -> Result<(usize, usize), String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{text:?} is not WIDTHxHEIGHT"))?;
    let side = |s: &str| match s.trim().parse::<usize>() {
        Ok(n) if (2..=16384).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a side from 2 to 16384")),
    };
    Ok((side(w)?, side(h)?))
}

pub fn eval(cmd: EvalCommand) -> Result<ExitCode, Failure> {
    match cmd {
        EvalCommand::Temporal(args) => temporal(args),
    }
}

fn temporal(args: TemporalArgs) -> Result<ExitCode, Failure> {
    for path in [&args.input, &args.output] {
        if !path.is_file() {
            return Err(Failure::new(
                exit::INPUT_MISSING,
                format!("{}: no such file", path.display()),
            ));
        }
    }
    let starts = match &args.job {
        Some(id) => Some(chunk_starts(&args.queue, id)?),
        None => None,
    };
    let options = MeasureOptions {
        size: args.size,
        chunk_frames: args.chunk_frames,
        flow: FlowSettings::default(),
    };
    let mut report = measure_files(&args.input, &args.output, &options).map_err(failure)?;
    if let Some(starts) = starts {
        report.chunks = Some(ChunkSplit::at_starts(&report.per_frame, &starts));
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serialises")
        );
    } else {
        print_text(&report, args.per_frame);
    }
    Ok(ExitCode::SUCCESS)
}

/// The first frames of job `id`'s chunks, as its plan cut them (its score tasks' ranges).
fn chunk_starts(queue: &crate::queue_args::QueueArgs, id: &str) -> Result<Vec<u64>, Failure> {
    crate::queue_args::runtime().block_on(async {
        let queue = queue.open().await?;
        let queue_failure = |e| Failure::new(exit::PROCESSING, format!("job queue: {e}"));
        if queue.job(id).await.map_err(queue_failure)?.is_none() {
            return Err(Failure::new(
                exit::INPUT_MISSING,
                format!("--job: no job with id '{id}'"),
            ));
        }
        let tasks = queue.tasks(id).await.map_err(queue_failure)?;
        let starts: Vec<u64> = tasks
            .iter()
            .filter(|t| t.kind == fresco_core::TaskKind::Score)
            .map(|t| t.frames.start)
            .collect();
        if starts.is_empty() {
            return Err(Failure::new(
                exit::BAD_INPUT,
                format!("--job {id}: the job has no chunks yet (it is not planned)"),
            ));
        }
        Ok(starts)
    })
}

fn failure(e: MeasureError) -> Failure {
    let code = if e.is_missing_tool() {
        exit::MISSING_DEPENDENCY
    } else {
        match e {
            MeasureError::Probe(_)
            | MeasureError::NoVideo(_)
            | MeasureError::PartialFrame(_)
            | MeasureError::FrameCounts { .. } => exit::BAD_INPUT,
            MeasureError::Decode { .. } => exit::PROCESSING,
        }
    };
    Failure::new(code, e.to_string())
}

/// Figures to 6 significant digits: the flow is deterministic, and docs/temporal.md states
/// figures to 4.
fn figure(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{v:.6e}"))
}

fn summary_line(name: &str, summary: &Summary) -> String {
    format!(
        "{name:<18} output {}  input {}  ({} frames)",
        figure(summary.output),
        figure(summary.input),
        summary.frames
    )
}

fn print_text(report: &TemporalReport, per_frame: bool) {
    println!(
        "warping error at {}x{}, {} frames (mean squared RGB difference in [0, 1] over visible pixels)",
        report.width, report.height, report.frames
    );
    println!("{}", summary_line("clip", &report.clip));
    if let Some(chunks) = &report.chunks {
        println!(
            "{}",
            summary_line(
                &format!("chunk starts ({})", chunks.chunk_frames),
                &chunks.boundaries
            )
        );
        println!("{}", summary_line("inside chunks", &chunks.inside));
    }
    if per_frame {
        println!("frame  output        input         visible");
        for f in &report.per_frame {
            println!(
                "{:<6} {:<13} {:<13} {:.4}",
                f.frame,
                figure(f.output),
                figure(f.input),
                f.visible
            );
        }
    }
}
