//! `fresco run`: style videos, images or folders of images on this machine.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use fresco_core::{ChannelOrder, Device, EncodeSettings, InputRange, ModelChoice, StreamKind};
use fresco_infer::registry::Registry;
use fresco_infer::EngineOptions;
use fresco_pipeline::image::{images_in_folder, is_image_path, style_image_file};
use fresco_pipeline::{load_model, prepare_video, style_video, LoadedModel, Tools, VideoOptions};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::exit::{self, Failure};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Videos or images to style, or one folder of images.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output file, or a folder when several inputs (or a folder) are given.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Video encoder (ffmpeg name): libx264, libx265, libx264rgb, ffv1, libvpx-vp9, ...
    #[arg(long, default_value = "libx264")]
    pub codec: String,
    /// Constant rate factor (lower is better quality; 0 is lossless for x264).
    #[arg(long, default_value_t = 18)]
    pub crf: u8,
    /// Encoder preset (x264/x265).
    #[arg(long, default_value = "medium")]
    pub preset: String,
    /// Output pixel format; default yuv420p (8-bit input) or yuv420p10le (deeper input).
    #[arg(long)]
    pub pix_fmt: Option<String>,
    /// Score frames downscaled so that their longer side is at most N pixels, then scale back.
    #[arg(long, value_name = "N")]
    pub max_side: Option<u32>,
    /// Stream kinds not to copy: audio, subtitle, data, attachment (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "KIND")]
    pub drop_streams: Vec<StreamKind>,
    /// Replace outputs that already exist.
    #[arg(long)]
    pub overwrite: bool,
    /// No progress bar or notes (errors and warnings are still printed).
    #[arg(short, long)]
    pub quiet: bool,
    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Which model, and how it runs.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// A named style: mosaic, candy, udnie, rain-princess, pointilism, or the built-in vintage.
    #[arg(long, conflicts_with = "model", required_unless_present = "model")]
    pub style: Option<String>,
    /// Any ONNX image-to-image model file.
    #[arg(long, value_name = "FILE.onnx")]
    pub model: Option<PathBuf>,
    /// Model input value range, when the model does not say.
    #[arg(long)]
    pub input_range: Option<InputRange>,
    /// Model channel order, when the model does not say.
    #[arg(long)]
    pub channel_order: Option<ChannelOrder>,
    /// Inference threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// cpu, or cuda[:N] for an NVIDIA GPU.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Never download a model; fail with where to put it instead.
    #[arg(long)]
    pub no_download: bool,
}

impl ModelArgs {
    pub fn choice(&self) -> ModelChoice {
        match (&self.style, &self.model) {
            (Some(style), _) => ModelChoice::Style(style.clone()),
            (None, Some(path)) => ModelChoice::File(path.clone()),
            (None, None) => unreachable!("clap requires --style or --model"),
        }
    }

    pub fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            threads: self.threads,
            device: self.device,
            input_range: self.input_range,
            channel_order: self.channel_order,
            ..EngineOptions::default()
        }
    }

    pub fn load(&self) -> Result<LoadedModel, Failure> {
        let registry = Registry::from_env();
        Ok(load_model(
            &self.choice(),
            &registry,
            &self.engine_options(),
            !self.no_download,
        )?)
    }
}

/// One input and where its result goes.
#[derive(Debug, Clone)]
struct Job {
    input: PathBuf,
    output: PathBuf,
}

#[derive(Debug, Serialize)]
struct RunSummary {
    model: String,
    model_digest: String,
    model_source: String,
    engine: String,
    frames: u64,
    seconds: f64,
    fps: f64,
    outputs: Vec<serde_json::Value>,
}

pub fn run(args: RunArgs) -> Result<ExitCode, Failure> {
    // Inputs first: a missing input must not leave an output folder behind.
    if !(args.inputs.len() == 1 && args.inputs[0].is_dir()) {
        for input in &args.inputs {
            fresco_pipeline::video::check_input_file(input).map_err(Failure::from)?;
        }
    }
    let jobs = plan_jobs(&args)?;
    for job in &jobs {
        if !is_image_path(&job.input) && is_image_path(&job.output) {
            return Err(Failure::new(
                exit::OUTPUT,
                format!(
                    "{}: a video needs a video output (.mp4, .mkv, .mov, ...), not an image",
                    job.output.display()
                ),
            ));
        }
    }
    let started = Instant::now();
    let mut model = args.model.load()?;
    let engine_label = engine_label(args.model.device);
    let chatty = !args.quiet;
    if chatty {
        eprintln!(
            "model: {} ({}), sha256 {}…; engine: {engine_label}",
            model.name,
            model.source,
            &model.digest[..12]
        );
    }
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = Arc::clone(&cancel);
        let _ = ctrlc::set_handler(move || {
            if cancel.swap(true, Ordering::SeqCst) {
                std::process::exit(exit::CANCELED as i32);
            }
            eprintln!("\nstopping after the current frame (Ctrl-C again to quit at once)");
        });
    }

    let tools = Tools::default();
    let options = VideoOptions {
        encode: EncodeSettings {
            codec: args.codec.clone(),
            crf: Some(args.crf),
            preset: Some(args.preset.clone()),
            pix_fmt: args.pix_fmt.clone(),
            threads: None,
        },
        max_side: args.max_side,
        drop_streams: args.drop_streams.clone(),
        overwrite: args.overwrite,
    };
    let mut outputs = Vec::new();
    let mut frames_total = 0u64;
    let mut first_failure: Option<Failure> = None;
    let mut failed = 0usize;
    for job in &jobs {
        let result = if is_image_path(&job.input) {
            style_image_file(&mut model.engine, &job.input, &job.output, args.overwrite)
                .map(|s| {
                    frames_total += 1;
                    if chatty {
                        eprintln!("{} -> {}", s.input.display(), s.output.display());
                    }
                    serde_json::to_value(&s).expect("summary serialises")
                })
                .map_err(Failure::from)
        } else {
            style_one_video(&tools, job, &mut model, &options, &cancel, chatty).map(|s| {
                frames_total += s.frames;
                serde_json::to_value(&s).expect("summary serialises")
            })
        };
        match result {
            Ok(value) => outputs.push(value),
            Err(failure) => {
                if failure.code == exit::CANCELED {
                    return Err(failure);
                }
                if jobs.len() == 1 {
                    return Err(failure);
                }
                eprintln!("error: {}", failure.message);
                failed += 1;
                first_failure.get_or_insert(failure);
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let summary = RunSummary {
            model: model.name.clone(),
            model_digest: model.digest.clone(),
            model_source: model.source.clone(),
            engine: engine_label,
            frames: frames_total,
            seconds,
            fps: if seconds > 0.0 {
                frames_total as f64 / seconds
            } else {
                0.0
            },
            outputs,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("summary serialises")
        );
    }
    match first_failure {
        Some(failure) => Err(Failure::new(
            failure.code,
            format!(
                "{failed} of {} inputs failed (first: {})",
                jobs.len(),
                failure.message
            ),
        )),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn style_one_video(
    tools: &Tools,
    job: &Job,
    model: &mut LoadedModel,
    options: &VideoOptions,
    cancel: &Arc<AtomicBool>,
    chatty: bool,
) -> Result<fresco_pipeline::VideoSummary, Failure> {
    let prepared = prepare_video(tools, &job.input, &job.output, options)?;
    for warning in &prepared.warnings {
        eprintln!("warning: {warning}");
    }
    if chatty {
        for note in &prepared.plan.notes {
            eprintln!("note: {note}");
        }
    }
    let total = prepared.frame_pts.len() as u64;
    let bar = if chatty && std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:32}] {pos}/{len} frames  {per_sec}  ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(
        job.input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let summary = style_video(
        tools,
        &prepared,
        &mut model.engine,
        options,
        cancel,
        &mut |p| bar.set_position(p.frames_done),
    );
    bar.finish_and_clear();
    let summary = summary?;
    if chatty {
        eprintln!(
            "{} -> {}: {} frames in {:.1} s ({:.2} frames/s)",
            summary.input.display(),
            summary.output.display(),
            summary.frames,
            summary.seconds,
            summary.fps
        );
    }
    Ok(summary)
}

/// Pairs each input with its output: one file to a file, or many (or a folder) into a folder.
fn plan_jobs(args: &RunArgs) -> Result<Vec<Job>, Failure> {
    let out = &args.output;
    let out_is_dir = out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/');
    if args.inputs.len() == 1 && args.inputs[0].is_dir() {
        let dir = &args.inputs[0];
        let images = images_in_folder(dir)?;
        if images.is_empty() {
            return Err(Failure::new(
                exit::BAD_INPUT,
                format!(
                    "{}: the folder holds no images ({})",
                    dir.display(),
                    fresco_pipeline::image::IMAGE_EXTENSIONS.join(", ")
                ),
            ));
        }
        ensure_dir(out)?;
        return Ok(images
            .into_iter()
            .map(|input| Job {
                output: out.join(input.file_name().expect("a file has a name")),
                input,
            })
            .collect());
    }
    if args.inputs.len() > 1 || out_is_dir {
        ensure_dir(out)?;
        let mut seen = std::collections::HashSet::new();
        let mut jobs = Vec::new();
        for input in &args.inputs {
            let Some(name) = input.file_name() else {
                return Err(Failure::new(
                    exit::INPUT_MISSING,
                    format!("{}: not a file", input.display()),
                ));
            };
            let output = out.join(name);
            if !seen.insert(output.clone()) {
                return Err(Failure::new(
                    exit::OUTPUT,
                    format!("{}: two inputs would be written here", output.display()),
                ));
            }
            jobs.push(Job {
                input: input.clone(),
                output,
            });
        }
        return Ok(jobs);
    }
    let input = &args.inputs[0];
    let mut output = out.clone();
    if output.extension().is_none() {
        // No extension: keep the input's container.
        if let Some(ext) = input.extension() {
            output.set_extension(ext);
        }
    }
    Ok(vec![Job {
        input: input.clone(),
        output,
    }])
}

fn ensure_dir(dir: &Path) -> Result<(), Failure> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        return Err(Failure::new(
            exit::OUTPUT,
            format!(
                "{}: several outputs need a folder, and this is a file",
                dir.display()
            ),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        Failure::new(
            exit::OUTPUT,
            format!("{}: cannot create the output folder: {e}", dir.display()),
        )
    })
}

/// "onnxruntime 1.32.0 (cpu)".
pub fn engine_label(device: Device) -> String {
    let version = fresco_infer::runtime::loaded_library()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("libonnxruntime.so."))
        .unwrap_or("")
        .to_string();
    if version.is_empty() {
        format!("onnxruntime ({device})")
    } else {
        format!("onnxruntime {version} ({device})")
    }
}
