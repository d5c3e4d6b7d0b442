//! `fresco estimate FOLDER|PREFIX|--manifest FILE --model FILE.onnx --task ...`: what scoring a
//! dataset will take, before any of it is spent.
//!
//! ```text
//! listing (fresco_worker::listing, streamed) ─> items, bytes, items over --max-item-bytes,
//!                                               the first N items (the sample)
//! STATE/calibration.json, an item entry for this model and device kind
//!   └ none yet (or --recalibrate): the model trial-loaded in a child process, then the
//!     sample read, decoded and scored here, one item at a time, with the worker's reader,
//!     decoder and scorer ─> items/s, recorded
//! items / (items/s) ─> compute time ─> / nodes: wall time; x price: cost
//! ```
//!
//! The listing is the one a dataset job's plan pins (the same include rules, the same order)
//! and is counted as it streams: only the sample's N items are kept. An item entry is keyed by
//! device kind and model (its digest too: a changed model file is measured again); its speed is
//! that of the sampled dataset's items, read, decoded and scored one after another in one
//! process, which a worker, decoding a batch ahead of the model on threads of its own, can
//! only better. Planning, assembly and the start of each worker are not counted.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use fresco_core::dataset::{DatasetSource, DatasetSpec, DEFAULT_MAX_FAILED_FRACTION};
use fresco_core::{Device, ModelChoice};
use fresco_pipeline::image::{decode_rgb_scaled, ImageDecodeError};
use fresco_score::{Frame, Scorer};
use fresco_worker::listing::{self, ItemReader, KeyFilter, Listed};
use fresco_worker::TaskFailure;
use serde::Serialize;

use crate::dataset_args::DatasetArgs;
use crate::estimate::{
    default_calibration_path, human_duration, money, Calibration, CalibrationEntry,
    CalibrationUnit, EstimateArgs, Prices,
};
use crate::exit::{self, Failure};

/// Items scored to calibrate when `--sample` is not given.
pub const DEFAULT_SAMPLE: u64 = 8;

/// A sample stops after this long once one item is scored (a slow model on a large sample).
const SAMPLE_SECONDS: Duration = Duration::from_secs(30);

/// The dataset `args` name, if they name one: a folder, a prefix URL or `--manifest`. Dataset
/// flags with a video are refused, and so are scoring flags without a dataset.
pub(crate) fn dataset_of(args: &EstimateArgs) -> Result<Option<DatasetSpec>, Failure> {
    let flags = DatasetArgs {
        manifest: args.manifest.clone(),
        include: args.include.clone(),
        max_failed_items: None,
        max_failed_fraction: DEFAULT_MAX_FAILED_FRACTION,
        max_item_bytes: args.max_item_bytes,
    };
    if let Some(spec) = flags.spec(args.input.as_deref()) {
        return Ok(Some(spec));
    }
    let input = args.input.as_deref().unwrap_or(Path::new(""));
    if !input.to_string_lossy().contains("://") && !input.exists() {
        return Err(Failure::new(
            exit::INPUT_MISSING,
            format!("{}: no such file or folder", input.display()),
        ));
    }
    let dataset_flag = !args.include.is_empty()
        || args.max_item_bytes != fresco_core::dataset::DEFAULT_MAX_ITEM_BYTES
        || args.sample != DEFAULT_SAMPLE
        || args.recalibrate;
    if dataset_flag {
        return Err(Failure::new(
            exit::BAD_ARGUMENTS,
            format!(
                "{}: --include, --max-item-bytes, --sample and --recalibrate take a dataset (a \
                 folder, a prefix URL or --manifest), not a video",
                input.display()
            ),
        ));
    }
    if args.scoring.ask(None, |p| p.to_path_buf()).is_given() {
        return Err(Failure::new(
            exit::BAD_ARGUMENTS,
            format!(
                "{}: the scoring flags (--task, --labels, ...) take a dataset; a video's \
                 estimate is for styling it (--style or --model)",
                input.display()
            ),
        ));
    }
    Ok(None)
}

/// What the listing counted.
#[derive(Debug, Default, Serialize)]
pub struct DatasetFacts {
    pub items: u64,
    /// Bytes of the items as listed.
    pub bytes: u64,
    /// Listed but not taken: no include pattern (or image extension) matched.
    pub skipped: u64,
    /// Items over `--max-item-bytes`: error rows (too-large) that are never read.
    pub over_item_limit: u64,
    /// Items of 0 bytes, or manifest lines that could not be looked up: error rows.
    pub empty_or_missing: u64,
}

/// The dataset's items counted as the listing streams, keeping only the first `sample`.
fn count(spec: &DatasetSpec, sample: usize) -> Result<(DatasetFacts, Vec<Listed>), Failure> {
    let filter = KeyFilter::new(spec).map_err(task_failure)?;
    let mut facts = DatasetFacts::default();
    let mut first = Vec::with_capacity(sample);
    let mut skipped = 0;
    listing::list(spec, &filter, &mut skipped, &mut |item| {
        facts.items += 1;
        facts.bytes += item.size;
        if item.size > spec.max_item_bytes {
            facts.over_item_limit += 1;
        } else if item.size == 0 {
            facts.empty_or_missing += 1;
        }
        if first.len() < sample {
            first.push(item);
        }
        Ok(())
    })
    .map_err(task_failure)?;
    facts.skipped = skipped;
    Ok((facts, first))
}

fn task_failure(e: TaskFailure) -> Failure {
    Failure::new(exit::code_for(e.class()), e.message().to_string())
}

/// A sample item that could not be scored, and why (its error row's kind and message).
#[derive(Debug, Clone, Serialize)]
pub struct SkippedItem {
    pub key: String,
    pub kind: String,
    pub message: String,
}

/// What scoring the sample measured.
#[derive(Debug, Clone, Serialize)]
pub struct SampleRun {
    /// Items tried (the first listed, fewer where the time ran out).
    pub tried: u64,
    pub scored: u64,
    pub skipped: Vec<SkippedItem>,
    /// Seconds reading, decoding and scoring the scored items.
    pub seconds: f64,
    /// Seconds of those in the model.
    pub model_seconds: f64,
}

/// One call of the model on `frame`, decoded as its task is: rows, or (segment) a mask at the
/// picture's size, as a worker makes it (less the PNG's encoding).
fn score_one(scorer: &mut Scorer, frame: Frame) -> Result<(), fresco_score::ScoreError> {
    match scorer.plan().task {
        fresco_score::Task::Segment => scorer.segment(&[frame]).map(drop),
        fresco_score::Task::Classify | fresco_score::Task::Detect | fresco_score::Task::Tensors => {
            scorer.score(&[frame]).map(drop)
        }
    }
}

/// Reads, decodes and scores `items` one at a time with the worker's reader, decoder and
/// scorer, after one untimed warm-up call; an item that cannot be scored is skipped and named.
fn score_sample(
    spec: &DatasetSpec,
    items: Vec<Listed>,
    scorer: &mut Scorer,
    handle: &tokio::runtime::Handle,
) -> Result<SampleRun, Failure> {
    let reader = ItemReader::new(spec).map_err(task_failure)?;
    let model_error = |e: fresco_score::ScoreError| Failure::new(exit::MODEL, e.to_string());
    // The first call allocates and picks kernels: not the items' time.
    let (w, h) = scorer.scaled_size(1280, 720);
    let grey = vec![128u8; w as usize * h as usize * 3];
    score_one(scorer, Frame::still(&grey, (w, h), (1280, 720), "")).map_err(model_error)?;
    let mut run = SampleRun {
        tried: 0,
        scored: 0,
        skipped: Vec::new(),
        seconds: 0.0,
        model_seconds: 0.0,
    };
    let started = Instant::now();
    for (index, item) in items.into_iter().enumerate() {
        if run.scored > 0 && started.elapsed() > SAMPLE_SECONDS {
            break;
        }
        run.tried += 1;
        let key = item.key.clone();
        let timed = Instant::now();
        let decoded = handle
            .block_on(reader.fetch(&item.pinned(index as u64)))
            .and_then(|bytes| {
                decode_rgb_scaled(&bytes, |w, h| scorer.scaled_size(w, h)).map_err(|e| match e {
                    ImageDecodeError::TooLarge(m) => {
                        (fresco_core::dataset::ItemErrorKind::TooLarge, m)
                    }
                    ImageDecodeError::NotImage(m) => {
                        (fresco_core::dataset::ItemErrorKind::NotImage, m)
                    }
                })
            });
        let image = match decoded {
            Ok(image) => image,
            Err((kind, message)) => {
                run.skipped.push(SkippedItem {
                    key,
                    kind: kind.as_str().to_string(),
                    message,
                });
                continue;
            }
        };
        let frame = Frame::still(&image.rgb, image.scaled, image.displayed, &key);
        let model = Instant::now();
        score_one(scorer, frame).map_err(model_error)?;
        run.model_seconds += model.elapsed().as_secs_f64();
        run.seconds += timed.elapsed().as_secs_f64();
        run.scored += 1;
    }
    Ok(run)
}

/// The estimate for one device kind.
#[derive(Debug, Clone, Serialize)]
pub struct ItemEstimate {
    pub device: String,
    /// Items/s of the calibration used.
    pub calibrated_items_per_second: f64,
    /// Items of the sample it was measured on, and the dataset it was taken from.
    pub sample_items: Option<u64>,
    pub sample_of: Option<String>,
    /// Measured by this call (false: read from the calibration file).
    pub sampled_now: bool,
    pub seconds_per_item: f64,
    /// Node-seconds of work.
    pub compute_seconds: f64,
    /// With the work split evenly over the nodes.
    pub wall_seconds: f64,
    pub price_per_node_hour: Option<f64>,
    pub cost: Option<f64>,
}

/// The arithmetic: `items` at each entry's items/s, over `nodes`, priced per node-hour.
pub fn estimate_items(
    items: u64,
    entries: &[&CalibrationEntry],
    sampled_now: bool,
    nodes: u32,
    prices: &Prices,
) -> Vec<ItemEstimate> {
    entries
        .iter()
        .map(|entry| {
            let seconds_per_item = 1.0 / entry.e2e_fps;
            let compute_seconds = seconds_per_item * items as f64;
            let price = prices.0.get(&entry.device).copied();
            ItemEstimate {
                device: entry.device.clone(),
                calibrated_items_per_second: entry.e2e_fps,
                sample_items: entry.sample_items,
                sample_of: entry.sample_of.clone(),
                sampled_now,
                seconds_per_item,
                compute_seconds,
                wall_seconds: compute_seconds / f64::from(nodes.max(1)),
                price_per_node_hour: price,
                cost: price.map(|p| compute_seconds / 3600.0 * p),
            }
        })
        .collect()
}

/// The item entries for `model` (with this digest, where the entry has one), the newest per
/// device kind, `only` that kind where given.
fn item_entries<'c>(
    calibration: &'c Calibration,
    model: &str,
    digest: &str,
    only: Option<&str>,
) -> Vec<&'c CalibrationEntry> {
    let mut found: Vec<&CalibrationEntry> = calibration
        .entries
        .iter()
        .filter(|e| {
            e.unit == CalibrationUnit::Item
                && e.model == model
                && (e.digest.is_empty() || e.digest == digest)
                && only.is_none_or(|d| e.device == d)
        })
        .collect();
    // The newest per device kind (another --input-size, say, is another entry).
    found.sort_by(|a, b| (&a.device, &b.measured_at).cmp(&(&b.device, &a.measured_at)));
    found.dedup_by(|later, kept| later.device == kept.device);
    found
}

/// The name a dataset is called by in messages and in the calibration.
fn dataset_name(spec: &DatasetSpec) -> String {
    match &spec.source {
        DatasetSource::Folder { path } => path.display().to_string(),
        DatasetSource::Prefix { url } => url.clone(),
        DatasetSource::Manifest { path } => format!("--manifest {}", path.display()),
    }
}

pub(crate) fn run(mut args: EstimateArgs, dataset: DatasetSpec) -> Result<ExitCode, Failure> {
    crate::scoring_args::locate_named(&mut args.style, &mut args.model, &mut args.scoring)?;
    let Some(path) = args.model.clone() else {
        return Err(Failure::new(
            exit::BAD_ARGUMENTS,
            format!(
                "{}: a dataset is scored into records by a model file: give --model FILE.onnx \
                 with --task (a styled dataset is not estimated yet)",
                dataset_name(&dataset)
            ),
        ));
    };
    let ask = args.scoring.ask(None, fresco_store::absolute);
    if ask.sampling != Default::default() {
        return Err(Failure::new(
            exit::BAD_ARGUMENTS,
            "--every and --fps pick frames of a video; each item of a dataset is scored once",
        ));
    }
    let (_, digest) = crate::image_records::read_model(&path)?;
    let model = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let device = args.device.unwrap_or(Device::Cpu);
    let only = args.device.map(|d| d.kind().as_str());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(exit::PROCESSING, format!("cannot start a runtime: {e}")))?;
    let _context = runtime.enter();
    let name = dataset_name(&dataset);
    let (facts, first) = count(&dataset, args.sample as usize)?;
    if facts.items == 0 {
        return Err(Failure::new(
            exit::BAD_INPUT,
            format!(
                "{name}: no items to score ({} skipped by the include patterns{})",
                facts.skipped,
                if dataset.include.is_empty() {
                    format!(
                        ", which are by default the image extensions {}",
                        fresco_pipeline::image::IMAGE_EXTENSIONS.join(", ")
                    )
                } else {
                    String::new()
                }
            ),
        ));
    }
    let calibration_path = args
        .calibration
        .clone()
        .unwrap_or_else(default_calibration_path);
    let mut calibration = Calibration::load(&calibration_path)?.unwrap_or_default();
    let mut sample = None;
    if args.recalibrate || item_entries(&calibration, &model, &digest, only).is_empty() {
        let pin = fresco_core::ModelPin {
            choice: ModelChoice::File(fresco_store::absolute(&path)),
            name: model.clone(),
            digest: digest.clone(),
            input_range: None,
            channel_order: None,
            device_kind: device.kind(),
            precision: Default::default(),
            image_card: None,
        };
        // As `fresco run` does: the first load in a child process under the trial's limits,
        // so a model that explodes while loading takes the child down, not this process.
        use fresco_worker::model_trial::{trial_load_as, Interface};
        match trial_load_as(
            &args.model_trial.trial()?,
            &path,
            &digest,
            Interface::Tensors,
        ) {
            Err(e) if e.is_retryable() => {}
            Err(e) => return Err(Failure::new(exit::MODEL, e.to_string())),
            Ok(()) => {}
        }
        let engine = fresco_infer::EngineOptions {
            device,
            ..Default::default()
        };
        let (mut scorer, _labels) = crate::image_records::pinned_scorer(
            &path,
            pin,
            &engine,
            &ask,
            Path::new("estimate.jsonl"),
            Default::default(),
        )?;
        let (w, h) = scorer.scaled_size(1280, 720);
        let run = score_sample(&dataset, first, &mut scorer, runtime.handle())?;
        if run.scored == 0 {
            let why: Vec<String> = run
                .skipped
                .iter()
                .map(|s| format!("{}: {} ({})", s.key, s.kind, s.message))
                .collect();
            return Err(Failure::new(
                exit::BAD_INPUT,
                format!(
                    "{name}: none of the {} sample items could be scored, so there is nothing \
                     to calibrate on: {}",
                    run.tried,
                    why.join("; ")
                ),
            ));
        }
        let entry = CalibrationEntry {
            device: device.kind().to_string(),
            model: model.clone(),
            digest: digest.clone(),
            width: w,
            height: h,
            unit: CalibrationUnit::Item,
            e2e_fps: run.scored as f64 / run.seconds.max(1e-9),
            model_fps: run.scored as f64 / run.model_seconds.max(1e-9),
            threads: 0,
            batch: 1,
            host: fresco_worker::sweep::host_name(),
            measured_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string(),
            sample_items: Some(run.scored),
            sample_of: Some(name.clone()),
        };
        calibration.record(entry);
        calibration.save(&calibration_path)?;
        sample = Some(run);
    }
    let prices = args.prices.clone().unwrap_or_default();
    let entries = item_entries(&calibration, &model, &digest, only);
    let estimates = estimate_items(facts.items, &entries, sample.is_some(), args.nodes, &prices);
    if args.json {
        let report = serde_json::json!({
            "input": name,
            "model": model,
            "items": facts.items,
            "bytes": facts.bytes,
            "skipped": facts.skipped,
            "over_item_limit": facts.over_item_limit,
            "max_item_bytes": dataset.max_item_bytes,
            "empty_or_missing": facts.empty_or_missing,
            "nodes": args.nodes,
            "calibration": calibration_path,
            "sample": sample,
            "devices": estimates,
        });
        println!("{report}");
        return Ok(ExitCode::SUCCESS);
    }
    print_report(
        &args,
        &name,
        &model,
        &facts,
        &dataset,
        sample.as_ref(),
        &estimates,
    );
    Ok(ExitCode::SUCCESS)
}

fn print_report(
    args: &EstimateArgs,
    name: &str,
    model: &str,
    facts: &DatasetFacts,
    dataset: &DatasetSpec,
    sample: Option<&SampleRun>,
    estimates: &[ItemEstimate],
) {
    println!(
        "fresco estimate: {name}: {} item{} ({}), {model}, {} node{}",
        facts.items,
        if facts.items == 1 { "" } else { "s" },
        human_bytes(facts.bytes),
        args.nodes,
        if args.nodes == 1 { "" } else { "s" }
    );
    for e in estimates {
        println!(
            "  {:<5} {:>10.4} s/item   compute {:>12}   wall {:>12}   {}",
            e.device,
            e.seconds_per_item,
            human_duration(e.compute_seconds),
            human_duration(e.wall_seconds),
            match (e.cost, e.price_per_node_hour) {
                (Some(cost), Some(price)) => {
                    format!("cost {} (at {} per node-hour)", money(cost), money(price))
                }
                _ => format!("cost: no price (--price {}=PRICE per node-hour)", e.device),
            }
        );
        let size = e
            .sample_items
            .map(|n| format!("a sample of {n} item{}", if n == 1 { "" } else { "s" }))
            .unwrap_or_else(|| "a sample".into());
        if e.sampled_now {
            println!(
                "        calibrated now on {size} of this dataset ({:.3} items/s read, decoded \
                 and scored one at a time)",
                e.calibrated_items_per_second
            );
        } else {
            println!(
                "        calibrated earlier on {size}{} ({:.3} items/s; --recalibrate measures \
                 this dataset)",
                e.sample_of
                    .as_deref()
                    .map(|of| format!(" of {of}"))
                    .unwrap_or_default(),
                e.calibrated_items_per_second
            );
        }
    }
    if let Some(sample) = sample {
        for skipped in &sample.skipped {
            println!(
                "  sample item {} skipped ({}: {})",
                skipped.key, skipped.kind, skipped.message
            );
        }
    }
    if facts.skipped > 0 {
        println!(
            "  {} listed file{} not taken by the include patterns",
            facts.skipped,
            if facts.skipped == 1 { "" } else { "s" }
        );
    }
    if facts.over_item_limit > 0 {
        println!(
            "  {} item{} larger than --max-item-bytes {}: error rows (too-large), never read",
            facts.over_item_limit,
            if facts.over_item_limit == 1 {
                " is"
            } else {
                "s are"
            },
            dataset.max_item_bytes
        );
    }
    if facts.empty_or_missing > 0 {
        println!(
            "  {} item{} empty or could not be looked up: error rows",
            facts.empty_or_missing,
            if facts.empty_or_missing == 1 {
                " is"
            } else {
                "s are"
            }
        );
    }
    println!(
        "  (node-hours x price; the work split evenly over the nodes; planning, assembly and \
         worker start-up not counted)"
    );
}

/// `812 bytes`, `3.4 MiB`, `1.2 TiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(device: &str, items_per_second: f64) -> CalibrationEntry {
        CalibrationEntry {
            device: device.into(),
            model: "m".into(),
            digest: "d".into(),
            width: 32,
            height: 32,
            unit: CalibrationUnit::Item,
            e2e_fps: items_per_second,
            model_fps: items_per_second * 2.0,
            threads: 0,
            batch: 1,
            host: "test".into(),
            measured_at: String::new(),
            sample_items: Some(8),
            sample_of: Some("/photos".into()),
        }
    }

    #[test]
    fn items_take_their_calibrated_time_over_the_nodes() {
        let cpu = item("cpu", 50.0);
        let cuda = item("cuda", 400.0);
        let prices = crate::estimate::parse_prices("cpu=0.10,cuda=2.50").unwrap();
        let got = estimate_items(1_000_000, &[&cpu, &cuda], false, 4, &prices);
        assert!((got[0].seconds_per_item - 0.02).abs() < 1e-12);
        assert!((got[0].compute_seconds - 20_000.0).abs() < 1e-6);
        assert!((got[0].wall_seconds - 5_000.0).abs() < 1e-6);
        assert!((got[0].cost.unwrap() - 20_000.0 / 3600.0 * 0.10).abs() < 1e-9);
        assert!((got[1].compute_seconds - 2_500.0).abs() < 1e-6);
        assert_eq!(got[1].sample_items, Some(8));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(812), "812 bytes");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
        assert_eq!(human_bytes((5 << 40) + (1 << 39)), "5.5 TiB");
    }

    #[test]
    fn item_entries_are_this_models_items_with_its_digest() {
        let mut calibration = Calibration::default();
        calibration.record(item("cpu", 50.0));
        let mut frames = item("cuda", 9.0);
        frames.unit = CalibrationUnit::Frame;
        calibration.record(frames);
        let mut other = item("cuda", 80.0);
        other.digest = "changed".into();
        calibration.record(other);
        let found = item_entries(&calibration, "m", "d", None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].device, "cpu");
        // Measured again at another input size: the newer entry is the one used.
        let mut newer = item("cpu", 70.0);
        newer.width = 64;
        newer.measured_at = "2026-12-06T08:00:00Z".into();
        let mut older = item("cpu", 60.0);
        older.width = 16;
        older.measured_at = "2026-12-05T08:00:00Z".into();
        calibration.record(newer);
        calibration.record(older);
        let found = item_entries(&calibration, "m", "d", None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].e2e_fps, 70.0);
        assert!(item_entries(&calibration, "m", "d", Some("cuda")).is_empty());
        assert!(item_entries(&calibration, "other", "d", None).is_empty());
        // Frame and item entries of the same model and size are kept apart.
        assert_eq!(calibration.entries.len(), 5);
    }
}
