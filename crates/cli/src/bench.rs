//! `fresco bench`: model-only frames/s, end-to-end frames/s of a real run, their ratio (the
//! pipeline's overhead), achieved GFLOP/s and peak memory, on a clip generated with ffmpeg.
//! With python3 and its onnxruntime available, the same model on the same frame size is timed
//! there too, for comparison.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use fresco_core::EncodeSettings;
use fresco_media::process::{Pipes, Tool};
use fresco_pipeline::{prepare_video, score_video, Tools, VideoOptions};

use crate::exit::{self, Failure};
use crate::run::ModelArgs;

/// Multiply-adds per pixel of the fast-neural-style networks (70.9 GFLOP per 640x360 frame).
const STYLE_MACS_PER_PIXEL: f64 = 154_000.0;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Frame width of the generated clip.
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    /// Frame height of the generated clip.
    #[arg(long, default_value_t = 360)]
    pub height: u32,
    /// Frames in the clip.
    #[arg(long, default_value_t = 12)]
    pub frames: u32,
    /// Skip the Python onnxruntime comparison.
    #[arg(long)]
    pub no_python: bool,
    /// Frames per inference call.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = crate::worker_cmd::parse_batch)]
    pub batch: usize,
    /// Where the measurement is recorded for `fresco estimate` (default:
    /// STATE/calibration.json).
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<std::path::PathBuf>,
    /// Do not record the measurement.
    #[arg(long)]
    pub no_save: bool,
    /// Print the figures as one JSON object (for programs) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn bench(args: BenchArgs) -> Result<ExitCode, Failure> {
    // Before minutes of clip making: a device that cannot be used is said at once.
    crate::worker_cmd::preflight_device(args.model.device)?;
    let dir = tempfile::tempdir()
        .map_err(|e| Failure::new(exit::OUTPUT, format!("temporary folder: {e}")))?;
    let clip = dir.path().join("bench.mp4");
    let ffmpeg = Tool::ffmpeg();
    let size = format!("{}x{}", args.width, args.height);
    make_clip(&ffmpeg, &clip, args.width, args.height, args.frames)?;

    let mut model = args.model.load()?;
    if let Some(note) = model.engine.set_batch(args.batch) {
        eprintln!("note: {note}");
    }
    let threads = args.model.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let tools = Tools::default();
    let options = VideoOptions {
        encode: EncodeSettings::default(),
        overwrite: true,
        ..Default::default()
    };
    let out_path = dir.path().join("styled.mp4");
    let t1 = Instant::now();
    let prepared = prepare_video(&tools, &clip, &out_path, &options)?;
    let summary = score_video(
        &tools,
        &prepared,
        &mut model.engine,
        &options,
        &Arc::new(AtomicBool::new(false)),
        &mut |_| {},
    )?;
    let e2e_fps = summary.frames as f64 / t1.elapsed().as_secs_f64();
    // Measured before the model-only pass, which holds the decoded clip in memory.
    let peak_kib = peak_rss_kib();

    let frames = decode_frames(&ffmpeg, &clip, args.width, args.height)?;
    let (w, h) = (args.width, args.height);
    let mut out = vec![0u8; (w * h * 3) as usize];
    // One warm-up frame: the first run allocates and picks kernels.
    model
        .engine
        .style_rgb(w, h, &frames[0], &mut out)
        .map_err(|e| Failure::new(exit::MODEL, e.to_string()))?;
    let batch = model.engine.batch();
    let mut outs = vec![vec![0u8; (w * h * 3) as usize]; batch];
    let t0 = Instant::now();
    for group in frames.chunks(batch) {
        let ins: Vec<&[u8]> = group.iter().map(Vec::as_slice).collect();
        let mut out_refs: Vec<&mut [u8]> = outs[..group.len()]
            .iter_mut()
            .map(Vec::as_mut_slice)
            .collect();
        model
            .engine
            .style_frames(w, h, &ins, &mut out_refs)
            .map_err(|e| Failure::new(exit::MODEL, e.to_string()))?;
    }
    let model_fps = frames.len() as f64 / t0.elapsed().as_secs_f64();
    drop(frames);

    let pixels = (w * h) as f64;
    let gflops = model_fps * pixels * STYLE_MACS_PER_PIXEL * 2.0 / 1e9;
    let python_fps = if args.no_python {
        None
    } else {
        python_fps(&model.source, w, h, threads, args.frames)
    };
    let calibration = if args.no_save {
        None
    } else {
        let path = args
            .calibration
            .clone()
            .unwrap_or_else(crate::estimate::default_calibration_path);
        let entry = crate::estimate::CalibrationEntry {
            device: args.model.device.kind().to_string(),
            model: model.name.clone(),
            digest: model.digest.clone(),
            width: w,
            height: h,
            unit: crate::estimate::CalibrationUnit::Frame,
            e2e_fps,
            model_fps,
            threads,
            batch: model.engine.batch(),
            host: fresco_worker::sweep::host_name(),
            measured_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string(),
            sample_items: None,
            sample_of: None,
        };
        crate::estimate::record_calibration(&path, entry)?;
        Some(path)
    };
    let report = BenchReport {
        model: model.name.clone(),
        source: model.source.to_string(),
        width: w,
        height: h,
        frames: args.frames,
        threads,
        device: args.model.device.to_string(),
        batch: model.engine.batch(),
        model_fps,
        e2e_fps,
        ratio: e2e_fps / model_fps,
        gflops,
        peak_rss_mib: peak_kib as f64 / 1024.0,
        python_fps,
        calibration,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serialises")
        );
    } else {
        print_report(&report, !args.no_python, size);
    }
    Ok(ExitCode::SUCCESS)
}

/// What `fresco bench` measured (`--json` prints it as is).
#[derive(Debug, serde::Serialize)]
struct BenchReport {
    model: String,
    source: String,
    width: u32,
    height: u32,
    frames: u32,
    threads: usize,
    device: String,
    batch: usize,
    /// Frames per second of the model alone, on decoded frames in memory.
    model_fps: f64,
    /// Frames per second of `fresco run`: probe, decode, score, encode, mux.
    e2e_fps: f64,
    /// end-to-end / model-only; 1.0 = no overhead.
    ratio: f64,
    gflops: f64,
    /// VmHWM after the end-to-end run.
    peak_rss_mib: f64,
    /// Python's onnxruntime on the same model and size; null when skipped.
    python_fps: Option<f64>,
    /// Where the calibration for `fresco estimate` was saved; null with --no-save.
    calibration: Option<std::path::PathBuf>,
}

fn print_report(r: &BenchReport, python_asked: bool, size: String) {
    println!(
        "fresco bench: {} ({}), {size}, {} frames, {} threads, {}, batch {}",
        r.model, r.source, r.frames, r.threads, r.device, r.batch
    );
    println!("  model-only      {:8.3} frames/s", r.model_fps);
    println!(
        "  end-to-end      {:8.3} frames/s   (fresco run: probe, decode, score, encode, mux)",
        r.e2e_fps
    );
    println!(
        "  ratio           {:8.3}                 (end-to-end / model-only; 1.0 = no overhead)",
        r.ratio
    );
    println!(
        "  achieved        {:8.1} GFLOP/s     (at {STYLE_MACS_PER_PIXEL} multiply-adds per pixel)",
        r.gflops
    );
    println!(
        "  peak memory     {:8.1} MiB         (VmHWM after the end-to-end run)",
        r.peak_rss_mib
    );
    if python_asked {
        match r.python_fps {
            Some(fps) => println!("  python ort      {fps:8.3} frames/s   (same model and size; fresco/python = {:.3})", r.model_fps / fps),
            None => println!("  python ort      (skipped: python3 with onnxruntime and numpy, and a model file, are needed)"),
        }
    }
    if let Some(path) = &r.calibration {
        println!(
            "  calibration     saved to {} (for fresco estimate)",
            path.display()
        );
    }
}

/// A testsrc2 clip with a sine tone: `frames` frames of `w`x`h` at 25 fps, H.264 and AAC.
pub fn make_clip(ffmpeg: &Tool, clip: &Path, w: u32, h: u32, frames: u32) -> Result<(), Failure> {
    let size = format!("{w}x{h}");
    let seconds = format!("{}", frames as f64 / 25.0);
    ffmpeg
        .output(
            [
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                &format!("testsrc2=s={size}:r=25:d={seconds}"),
                "-f",
                "lavfi",
                "-i",
                &format!("sine=f=440:d={seconds}"),
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-shortest",
                clip.to_str().expect("temp path is UTF-8"),
            ],
            Duration::from_secs(120),
        )
        .map_err(|e| Failure::new(exit::MISSING_DEPENDENCY, e.to_string()))?;
    Ok(())
}

fn decode_frames(ffmpeg: &Tool, clip: &Path, w: u32, h: u32) -> Result<Vec<Vec<u8>>, Failure> {
    let mut running = ffmpeg
        .spawn(
            ffmpeg.command([
                "-v".as_ref(),
                "error".as_ref(),
                "-i".as_ref(),
                clip.as_os_str(),
                "-f".as_ref(),
                "rawvideo".as_ref(),
                "-pix_fmt".as_ref(),
                "rgb24".as_ref(),
                "pipe:1".as_ref(),
            ]),
            Pipes::stdout(),
        )
        .map_err(|e| Failure::new(exit::MISSING_DEPENDENCY, e.to_string()))?;
    let mut bytes = Vec::new();
    running
        .take_stdout()
        .expect("piped")
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::new(exit::PROCESSING, e.to_string()))?;
    running
        .finish(Duration::from_secs(60))
        .map_err(|e| Failure::new(exit::PROCESSING, e.to_string()))?;
    Ok(bytes
        .chunks_exact((w * h * 3) as usize)
        .map(<[u8]>::to_vec)
        .collect())
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Times Python's onnxruntime on random frames of the same size (after one warm-up run).
fn python_fps(model_path: &str, w: u32, h: u32, threads: usize, frames: u32) -> Option<f64> {
    if !Path::new(model_path).is_file() {
        return None;
    }
    let script = format!(
        "import time, numpy as np, onnxruntime as ort\n\
         o = ort.SessionOptions(); o.intra_op_num_threads = {threads}\n\
         s = ort.InferenceSession({model_path:?}, o, providers=['CPUExecutionProvider'])\n\
         name = s.get_inputs()[0].name\n\
         x = (np.random.rand(1, 3, {h}, {w}) * 255).astype(np.float32)\n\
         s.run(None, {{name: x}})\n\
         t = time.perf_counter()\n\
         for _ in range({frames}): s.run(None, {{name: x}})\n\
         print({frames} / (time.perf_counter() - t))\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
