//! `fresco estimate INPUT --style NAME`: what styling a video will take, before any of it is
//! spent. A dataset (a folder, a prefix URL or `--manifest`) is estimated per item by
//! [`crate::estimate_dataset`], which calibrates itself on a sample of the dataset.
//!
//! ```text
//! ffprobe INPUT ─> frames, width x height
//! STATE/calibration.json (written by `fresco bench`) ─> end-to-end frames/s per device kind
//! frames / fps (scaled by pixel count) ─> compute time ─> / nodes: wall time; x price: cost
//! ```
//!
//! `fresco bench` records one entry per device kind (cpu, cuda), model and frame size. An
//! input of another size is estimated from the calibration nearest to it in pixel count, its
//! time scaled by the ratio of pixels (the style networks are convolutional: their work grows
//! with the pixel count), and the output says so. The cost is node-hours times the price per
//! node-hour (`--price cpu=0.10,cuda=2.50` or `FRESCO_PRICES`): N nodes for the wall time are
//! the same node-hours as one node for the whole compute time. Planning, assembly and the
//! start of each worker are not counted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use fresco_core::dataset::DEFAULT_MAX_ITEM_BYTES;
use fresco_core::Device;
use fresco_media::probe::{self, parse_ratio, ProbeError};
use fresco_media::process::Tool;
use serde::{Deserialize, Serialize};

use crate::exit::{self, Failure};

/// The calibration file's name in the state folder.
pub const CALIBRATION_FILE: &str = "calibration.json";

/// `STATE/calibration.json`.
pub fn default_calibration_path() -> PathBuf {
    crate::worker_cmd::default_state_dir().join(CALIBRATION_FILE)
}

/// What `fresco bench` measured, per device kind, model and frame size.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Calibration {
    #[serde(default)]
    pub entries: Vec<CalibrationEntry>,
}

/// What a calibration entry's speed counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CalibrationUnit {
    /// Frames of a video, styled end to end (`fresco bench`).
    #[default]
    Frame,
    /// Items of a dataset read, decoded and scored (`fresco estimate` on a sample).
    Item,
}

/// One measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationEntry {
    /// "cpu" or "cuda".
    pub device: String,
    /// The style name, or the model file's name without `.onnx`.
    pub model: String,
    /// sha256 of the model's bytes.
    #[serde(default)]
    pub digest: String,
    pub width: u32,
    pub height: u32,
    /// What `e2e_fps` counts (frames when the file does not say: `fresco bench` wrote it).
    #[serde(default)]
    pub unit: CalibrationUnit,
    /// Frames/s of a whole run: decode, model, encode, mux; for items, items/s read, decoded
    /// and scored.
    pub e2e_fps: f64,
    /// Frames/s of the model alone.
    #[serde(default)]
    pub model_fps: f64,
    #[serde(default)]
    pub threads: usize,
    #[serde(default = "one")]
    pub batch: usize,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub measured_at: String,
    /// Items of the sample an item entry was measured on (scored, not counting those skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_items: Option<u64>,
    /// The dataset the sample was taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_of: Option<String>,
}

fn one() -> usize {
    1
}

impl Calibration {
    /// Reads a calibration file; `None` where there is none.
    pub fn load(path: &Path) -> Result<Option<Calibration>, Failure> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Failure::new(
                    exit::BAD_INPUT,
                    format!("{}: cannot read the calibration: {e}", path.display()),
                ))
            }
        };
        let calibration: Calibration = serde_json::from_str(&text).map_err(|e| {
            Failure::new(
                exit::BAD_INPUT,
                format!("{}: not a fresco calibration file: {e}", path.display()),
            )
        })?;
        for entry in &calibration.entries {
            if !(entry.e2e_fps.is_finite() && entry.e2e_fps > 0.0)
                || entry.width == 0
                || entry.height == 0
            {
                return Err(Failure::new(
                    exit::BAD_INPUT,
                    format!(
                        "{}: the entry for {} on {} at {}x{} has no usable speed ({} frames/s)",
                        path.display(),
                        entry.model,
                        entry.device,
                        entry.width,
                        entry.height,
                        entry.e2e_fps
                    ),
                ));
            }
        }
        Ok(Some(calibration))
    }

    /// Adds a measurement, replacing the one for the same device kind, model, size and unit.
    pub fn record(&mut self, entry: CalibrationEntry) {
        self.entries.retain(|e| {
            (&e.device, &e.model, e.width, e.height, e.unit)
                != (
                    &entry.device,
                    &entry.model,
                    entry.width,
                    entry.height,
                    entry.unit,
                )
        });
        self.entries.push(entry);
        self.entries.sort_by(|a, b| {
            (&a.model, &a.device, a.width * a.height).cmp(&(
                &b.model,
                &b.device,
                b.width * b.height,
            ))
        });
    }

    /// Writes the file whole (a temporary file renamed over it).
    pub fn save(&self, path: &Path) -> Result<(), Failure> {
        let fail = |e: std::io::Error| {
            Failure::new(
                exit::OUTPUT,
                format!("{}: cannot save the calibration: {e}", path.display()),
            )
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let temp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).expect("calibration serializes");
        std::fs::write(&temp, text + "\n").map_err(fail)?;
        std::fs::rename(&temp, path).map_err(fail)
    }
}

/// Adds `entry` to the calibration at `path` (creating it).
pub fn record_calibration(path: &Path, entry: CalibrationEntry) -> Result<(), Failure> {
    let mut calibration = Calibration::load(path)?.unwrap_or_default();
    calibration.record(entry);
    calibration.save(path)
}

/// Prices per node-hour by device kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prices(pub BTreeMap<String, f64>);

/// `cpu=0.10,cuda=2.50`.
pub fn parse_prices(text: &str) -> Result<Prices, String> {
    let mut prices = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((kind, price)) = part.split_once('=') else {
            return Err(format!(
                "'{part}': expected KIND=PRICE per node-hour, e.g. cpu=0.10,cuda=2.50"
            ));
        };
        let kind = kind.trim().to_ascii_lowercase();
        if kind != "cpu" && kind != "cuda" {
            return Err(format!(
                "'{part}': unknown device kind '{kind}' (cpu or cuda)"
            ));
        }
        let price: f64 = price
            .trim()
            .parse()
            .ok()
            .filter(|p: &f64| p.is_finite() && *p >= 0.0)
            .ok_or_else(|| format!("'{part}': the price must be a number, 0 or more"))?;
        prices.insert(kind, price);
    }
    Ok(Prices(prices))
}

fn parse_nodes(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{text}' is not a number of nodes")),
    }
}

#[derive(Debug, Args)]
pub struct EstimateArgs {
    /// The video to estimate, or a dataset: a folder of images or a prefix URL.
    #[arg(required_unless_present = "manifest")]
    pub input: Option<PathBuf>,
    /// A named style (as calibrated with `fresco bench --style NAME`).
    #[arg(long, conflicts_with = "model", required_unless_present = "model")]
    pub style: Option<String>,
    /// A model file (as calibrated with `fresco bench --model FILE`; for a dataset, the
    /// scoring model, with `--task` and the other scoring flags).
    #[arg(long, value_name = "FILE.onnx")]
    pub model: Option<PathBuf>,
    /// A dataset listed in a file, one path or object URL a line (as `fresco jobs submit`).
    #[arg(long, value_name = "FILE", conflicts_with = "input")]
    pub manifest: Option<PathBuf>,
    /// A dataset's keys to count (`*.jpg`; repeatable). Default: the image extensions.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// A dataset's items larger than this are counted as error rows (too-large) and not read.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_ITEM_BYTES,
          value_parser = crate::dataset_args::item_limit)]
    pub max_item_bytes: u64,
    /// A dataset with no calibration for its model: score the first N items listed to measure
    /// items/s (1 to 64).
    #[arg(long, value_name = "N", default_value_t = crate::estimate_dataset::DEFAULT_SAMPLE,
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub sample: u64,
    /// A dataset: measure a new sample even where a calibration exists, and record it.
    #[arg(long)]
    pub recalibrate: bool,
    #[command(flatten)]
    pub scoring: crate::scoring_args::ScoringArgs,
    /// The limits of a dataset's model's first load, in a child process, before a sample.
    #[command(flatten)]
    pub model_trial: crate::model_trial_cmd::ModelTrialArgs,
    /// Nodes (workers, one per machine or GPU) sharing the job.
    #[arg(long, default_value_t = 1, value_parser = parse_nodes)]
    pub nodes: u32,
    /// Only this device kind: cpu or cuda (default: every calibrated kind).
    #[arg(long)]
    pub device: Option<Device>,
    /// Prices per node-hour by device kind, e.g. cpu=0.10,cuda=2.50.
    #[arg(
        long = "price",
        env = "FRESCO_PRICES",
        value_name = "KIND=PRICE,...",
        value_parser = parse_prices
    )]
    pub prices: Option<Prices>,
    /// The calibration file (default: STATE/calibration.json, written by `fresco bench`).
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Print a machine-readable estimate on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What the probe says of the input.
#[derive(Debug, Clone, Serialize)]
pub struct VideoFacts {
    pub frames: u64,
    /// From the container's index (true) or from duration x frame rate (false).
    pub frames_exact: bool,
    pub width: u32,
    pub height: u32,
    pub duration_seconds: Option<f64>,
}

/// The estimate for one device kind.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceEstimate {
    pub device: String,
    /// The calibration used.
    pub calibrated_width: u32,
    pub calibrated_height: u32,
    pub calibrated_fps: f64,
    /// Input pixels / calibrated pixels: the factor on the calibrated time per frame.
    pub pixel_scale: f64,
    pub seconds_per_frame: f64,
    /// Node-seconds of work.
    pub compute_seconds: f64,
    /// With the work split evenly over the nodes.
    pub wall_seconds: f64,
    pub price_per_node_hour: Option<f64>,
    pub cost: Option<f64>,
}

/// The arithmetic: per device kind, the calibration nearest the input's pixel count, scaled.
pub fn estimate(
    video: &VideoFacts,
    model: &str,
    entries: &[CalibrationEntry],
    only: Option<&str>,
    nodes: u32,
    prices: &Prices,
) -> Vec<DeviceEstimate> {
    let pixels = f64::from(video.width) * f64::from(video.height);
    let mut best: BTreeMap<&str, &CalibrationEntry> = BTreeMap::new();
    for entry in entries.iter().filter(|e| {
        e.unit == CalibrationUnit::Frame && e.model == model && only.is_none_or(|d| e.device == d)
    }) {
        let distance = |e: &CalibrationEntry| {
            (f64::from(e.width) * f64::from(e.height) / pixels)
                .ln()
                .abs()
        };
        match best.get(entry.device.as_str()) {
            Some(held) if distance(held) <= distance(entry) => {}
            _ => {
                best.insert(entry.device.as_str(), entry);
            }
        }
    }
    best.into_values()
        .map(|entry| {
            let calibrated = f64::from(entry.width) * f64::from(entry.height);
            let pixel_scale = pixels / calibrated;
            let seconds_per_frame = pixel_scale / entry.e2e_fps;
            let compute_seconds = seconds_per_frame * video.frames as f64;
            let price = prices.0.get(&entry.device).copied();
            DeviceEstimate {
                device: entry.device.clone(),
                calibrated_width: entry.width,
                calibrated_height: entry.height,
                calibrated_fps: entry.e2e_fps,
                pixel_scale,
                seconds_per_frame,
                compute_seconds,
                wall_seconds: compute_seconds / f64::from(nodes.max(1)),
                price_per_node_hour: price,
                cost: price.map(|p| compute_seconds / 3600.0 * p),
            }
        })
        .collect()
}

/// Frames and size of the input's video stream.
pub fn video_facts(input: &Path) -> Result<VideoFacts, Failure> {
    if !input.exists() {
        return Err(Failure::new(
            exit::INPUT_MISSING,
            format!("{}: no such file", input.display()),
        ));
    }
    let report =
        probe::probe(&Tool::ffprobe(), input, Duration::from_secs(120)).map_err(|e| match e {
            ProbeError::Tool(t) if t.is_missing_tool() => {
                Failure::new(exit::MISSING_DEPENDENCY, t.to_string())
            }
            other => Failure::new(exit::BAD_INPUT, other.to_string()),
        })?;
    let unusable = |why: &str| Failure::new(exit::BAD_INPUT, format!("{}: {why}", input.display()));
    let stream = report
        .video_stream()
        .ok_or_else(|| unusable("no video stream"))?;
    let (Some(width), Some(height)) = (stream.width, stream.height) else {
        return Err(unusable("the video stream has no frame size"));
    };
    let duration = stream
        .duration
        .as_deref()
        .and_then(|d| d.parse::<f64>().ok())
        .or_else(|| report.duration_seconds());
    let indexed = stream
        .nb_frames
        .as_deref()
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n > 0);
    let (frames, exact) = match indexed {
        Some(n) => (n, true),
        None => {
            let rate = stream
                .avg_frame_rate
                .as_deref()
                .and_then(parse_ratio)
                .filter(|(n, d)| *n > 0 && *d > 0)
                .map(|(n, d)| n as f64 / d as f64);
            match (duration, rate) {
                (Some(seconds), Some(rate)) if seconds > 0.0 => {
                    ((seconds * rate).round().max(1.0) as u64, false)
                }
                _ => return Err(unusable(
                    "cannot tell how many frames it has (no frame count, duration or frame rate)",
                )),
            }
        }
    };
    Ok(VideoFacts {
        frames,
        frames_exact: exact,
        width,
        height,
        duration_seconds: duration,
    })
}

/// `1 h 02 min`, `3 min 20 s`, `4.2 s`.
pub(crate) fn human_duration(seconds: f64) -> String {
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let total = seconds.round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h} h {m:02} min")
    } else {
        format!("{m} min {s:02} s")
    }
}

pub(crate) fn money(amount: f64) -> String {
    if amount >= 0.01 || amount == 0.0 {
        format!("{amount:.2}")
    } else {
        format!("{amount:.6}")
    }
}

pub fn run(args: EstimateArgs) -> Result<ExitCode, Failure> {
    if let Some(dataset) = crate::estimate_dataset::dataset_of(&args)? {
        return crate::estimate_dataset::run(args, dataset);
    }
    let input = args
        .input
        .clone()
        .expect("clap requires an input without --manifest");
    let model = match (&args.style, &args.model) {
        (Some(style), _) => style.clone(),
        (None, Some(path)) => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
        (None, None) => unreachable!("clap requires --style or --model"),
    };
    let only = args.device.map(|d| d.kind().as_str());
    let path = args
        .calibration
        .clone()
        .unwrap_or_else(default_calibration_path);
    let bench_hint = |device: Option<&str>| {
        let what = match (&args.style, &args.model) {
            (Some(style), _) => format!("--style {style}"),
            (None, Some(file)) => format!("--model {}", file.display()),
            (None, None) => String::new(),
        };
        match device {
            Some("cuda") => format!("run `fresco bench {what} --device cuda` on a GPU machine"),
            _ => format!(
                "run `fresco bench {what}` (add `--device cuda` on a GPU machine) to calibrate"
            ),
        }
    };
    let Some(calibration) = Calibration::load(&path)? else {
        return Err(Failure::new(
            exit::MISSING_DEPENDENCY,
            format!(
                "{}: no calibration yet; {}",
                path.display(),
                bench_hint(only)
            ),
        ));
    };
    let video = video_facts(&input)?;
    let prices = args.prices.clone().unwrap_or_default();
    let estimates = estimate(
        &video,
        &model,
        &calibration.entries,
        only,
        args.nodes,
        &prices,
    );
    if estimates.is_empty() {
        let mut known: Vec<String> = calibration
            .entries
            .iter()
            .filter(|e| e.unit == CalibrationUnit::Frame)
            .map(|e| format!("{} on {}", e.model, e.device))
            .collect();
        known.sort();
        known.dedup();
        return Err(Failure::new(
            exit::MISSING_DEPENDENCY,
            format!(
                "{}: no calibration for {model}{}{}; {}",
                path.display(),
                only.map(|d| format!(" on {d}")).unwrap_or_default(),
                if known.is_empty() {
                    String::new()
                } else {
                    format!(" (it has {})", known.join(", "))
                },
                bench_hint(only)
            ),
        ));
    }
    if args.json {
        let report = serde_json::json!({
            "input": input,
            "model": model,
            "frames": video.frames,
            "frames_exact": video.frames_exact,
            "width": video.width,
            "height": video.height,
            "duration_seconds": video.duration_seconds,
            "nodes": args.nodes,
            "calibration": path,
            "devices": estimates,
        });
        println!("{report}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "fresco estimate: {}: {}{} frames of {}x{}{}, {model}, {} node{}",
        input.display(),
        if video.frames_exact { "" } else { "about " },
        video.frames,
        video.width,
        video.height,
        video
            .duration_seconds
            .map(|s| format!(" ({})", human_duration(s)))
            .unwrap_or_default(),
        args.nodes,
        if args.nodes == 1 { "" } else { "s" }
    );
    for e in &estimates {
        println!(
            "  {:<5} {:>10.3} s/frame   compute {:>12}   wall {:>12}   {}",
            e.device,
            e.seconds_per_frame,
            human_duration(e.compute_seconds),
            human_duration(e.wall_seconds),
            match (e.cost, e.price_per_node_hour) {
                (Some(cost), Some(price)) => {
                    format!("cost {} (at {} per node-hour)", money(cost), money(price))
                }
                _ => format!("cost: no price (--price {}=PRICE per node-hour)", e.device),
            }
        );
        if (e.pixel_scale - 1.0).abs() > 1e-9 {
            println!(
                "        calibrated at {}x{} ({:.3} frames/s end to end); time scaled by pixel \
                 count x{:.3}",
                e.calibrated_width, e.calibrated_height, e.calibrated_fps, e.pixel_scale
            );
        } else {
            println!(
                "        calibrated at this size ({:.3} frames/s end to end)",
                e.calibrated_fps
            );
        }
    }
    println!(
        "  (node-hours x price; the work split evenly over the nodes; planning, assembly and \
         worker start-up not counted)"
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(device: &str, model: &str, w: u32, h: u32, fps: f64) -> CalibrationEntry {
        CalibrationEntry {
            device: device.into(),
            model: model.into(),
            digest: String::new(),
            width: w,
            height: h,
            e2e_fps: fps,
            model_fps: fps * 1.2,
            threads: 2,
            batch: 1,
            host: "test".into(),
            measured_at: String::new(),
            unit: CalibrationUnit::Frame,
            sample_items: None,
            sample_of: None,
        }
    }

    fn video(frames: u64, width: u32, height: u32) -> VideoFacts {
        VideoFacts {
            frames,
            frames_exact: true,
            width,
            height,
            duration_seconds: None,
        }
    }

    #[test]
    fn time_scales_with_pixels_and_cost_with_node_hours() {
        let entries = [
            entry("cpu", "mosaic", 640, 360, 2.0),
            entry("cuda", "mosaic", 1920, 1080, 30.0),
            entry("cpu", "candy", 1920, 1080, 9.0),
        ];
        let prices = parse_prices("cpu=0.10, cuda=2.50").unwrap();
        let got = estimate(
            &video(3600, 1920, 1080),
            "mosaic",
            &entries,
            None,
            4,
            &prices,
        );
        assert_eq!(got.len(), 2);
        let cpu = &got[0];
        assert_eq!(cpu.device, "cpu");
        assert!((cpu.pixel_scale - 9.0).abs() < 1e-12);
        assert!((cpu.seconds_per_frame - 4.5).abs() < 1e-12);
        assert!((cpu.compute_seconds - 16_200.0).abs() < 1e-9);
        assert!((cpu.wall_seconds - 4_050.0).abs() < 1e-9);
        assert!((cpu.cost.unwrap() - 0.45).abs() < 1e-12);
        let cuda = &got[1];
        assert_eq!(cuda.pixel_scale, 1.0);
        assert!((cuda.compute_seconds - 120.0).abs() < 1e-9);
        assert!((cuda.wall_seconds - 30.0).abs() < 1e-9);
        assert!((cuda.cost.unwrap() - 120.0 / 3600.0 * 2.5).abs() < 1e-12);

        let only_cuda = estimate(
            &video(10, 64, 48),
            "mosaic",
            &entries,
            Some("cuda"),
            1,
            &Prices::default(),
        );
        assert_eq!(only_cuda.len(), 1);
        assert_eq!(only_cuda[0].cost, None);
        assert!(estimate(&video(10, 64, 48), "udnie", &entries, None, 1, &prices).is_empty());
    }

    #[test]
    fn the_calibration_nearest_in_pixels_is_used() {
        let entries = [
            entry("cpu", "m", 640, 360, 2.0),
            entry("cpu", "m", 1920, 1080, 0.25),
            entry("cpu", "m", 3840, 2160, 0.05),
        ];
        let got = estimate(
            &video(1, 1280, 720),
            "m",
            &entries,
            None,
            1,
            &Prices::default(),
        );
        // 1280x720 is 4x 640x360 and 0.44x 1920x1080: the latter is nearer by ratio.
        assert_eq!(
            (got[0].calibrated_width, got[0].calibrated_height),
            (1920, 1080)
        );
        let got = estimate(
            &video(1, 3840, 2160),
            "m",
            &entries,
            None,
            1,
            &Prices::default(),
        );
        assert_eq!(got[0].pixel_scale, 1.0);
        assert!((got[0].seconds_per_frame - 20.0).abs() < 1e-12);
    }

    #[test]
    fn prices_parse_with_clear_errors() {
        let p = parse_prices("cpu=0.1,CUDA=2.5").unwrap();
        assert_eq!(p.0.get("cuda"), Some(&2.5));
        assert!(parse_prices("tpu=1")
            .unwrap_err()
            .contains("unknown device kind 'tpu'"));
        assert!(parse_prices("cpu").unwrap_err().contains("KIND=PRICE"));
        assert!(parse_prices("cpu=-1").unwrap_err().contains("0 or more"));
        assert!(parse_prices("cpu=abc")
            .unwrap_err()
            .contains("must be a number"));
    }

    #[test]
    fn recording_replaces_the_same_measurement() {
        let mut c = Calibration::default();
        c.record(entry("cpu", "m", 640, 360, 2.0));
        c.record(entry("cuda", "m", 640, 360, 20.0));
        c.record(entry("cpu", "m", 640, 360, 3.0));
        assert_eq!(c.entries.len(), 2);
        assert!(c
            .entries
            .iter()
            .any(|e| e.device == "cpu" && e.e2e_fps == 3.0));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(4.25), "4.2 s");
        assert_eq!(human_duration(200.0), "3 min 20 s");
        assert_eq!(human_duration(3720.0), "1 h 02 min");
    }
}
