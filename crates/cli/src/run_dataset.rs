//! `fresco run` of a dataset (`photos/ -o tags.jsonl`, `az://c/photos/ -o tags.jsonl`,
//! `--manifest picks.txt -o ...`, or `photos/ -o styled/ --style mosaic`): one dataset job
//! through the embedded engine, as `fresco jobs submit` would queue it, so a bad image is an
//! error row and an interrupted run resumes. With a records output (`.jsonl`, `.parquet`) the
//! items are scored into it; with any other output and an image model, each item is styled and
//! written under the output folder or prefix with its own key, and with `--task segment` each
//! item's mask is written there as PNG. Image files named one by one
//! (`a.jpg b.png -o ...`) are not a dataset: they are styled or scored in this process.

use std::path::PathBuf;
use std::process::ExitCode;

use fresco_core::dataset::{DatasetSource, DatasetSpec};
use fresco_worker::StopSignal;

use crate::embedded::{run_videos, EmbeddedOptions, VideoJob};
use crate::exit::{self, Failure};
use crate::run::RunArgs;

/// The dataset a run names, if it is one: a `--manifest`, one prefix URL, or one folder with a
/// dataset flag; always with a records output.
pub(crate) fn dataset_of(args: &RunArgs) -> Result<Option<DatasetSpec>, Failure> {
    let flags = &args.dataset;
    let asked = flags.manifest.is_some()
        || !flags.include.is_empty()
        || flags.max_failed_items.is_some()
        || flags.max_failed_fraction != fresco_core::dataset::DEFAULT_MAX_FAILED_FRACTION
        || flags.max_item_bytes != fresco_core::dataset::DEFAULT_MAX_ITEM_BYTES;
    let prefix = matches!(args.inputs.as_slice(), [one] if one.to_string_lossy().contains("://"));
    let folder = matches!(args.inputs.as_slice(), [one] if one.is_dir());
    if !asked && !prefix && !folder {
        return Ok(None);
    }
    let input = match (&flags.manifest, args.inputs.as_slice()) {
        (Some(_), []) => None,
        (None, [one]) => Some(one.as_path()),
        _ => {
            return Err(Failure::new(
                exit::BAD_INPUT,
                "a dataset is one folder, one prefix URL, or --manifest FILE alone",
            ))
        }
    };
    match flags.spec(input) {
        Some(spec) => Ok(Some(spec)),
        // One object URL (a video), with no dataset flag: not a dataset.
        None if !asked => Ok(None),
        None => Err(Failure::new(
            exit::BAD_INPUT,
            "--include, --max-failed-* and --max-item-bytes take a folder, a prefix URL or --manifest",
        )),
    }
}

pub(crate) fn run_dataset(mut args: RunArgs, dataset: DatasetSpec) -> Result<ExitCode, Failure> {
    let records = fresco_score::RecordFormat::from_path(&args.output).is_some();
    // A model card that says `task = "segment"` asks for masks where no flag names a task.
    if !records && args.scoring.task.is_none() {
        let card = match (&args.scoring.model_card, &args.model.model) {
            (Some(card), _) => Some(fresco_store::absolute(card)),
            (None, Some(model)) => fresco_score::card_beside(model),
            (None, None) => None,
        };
        if fresco_submit::card_asks_segment(card.as_deref())? {
            args.scoring.task = Some("segment".into());
        }
    }
    let segment = args.scoring.task.as_deref() == Some("segment");
    if !records && !segment {
        return run_image_dataset(args, dataset);
    }
    if segment && args.model.model.is_none() {
        // A style names no segmentation model: refused as every entrance refuses it.
        if let Some(style) = &args.model.style {
            if fresco_score::known_by_name(style).is_none() {
                return Err(Failure::new(
                    exit::BAD_INPUT,
                    format!(
                        "--task segment scores a segmentation model, whose output is a \
                         per-pixel map, given with --model FILE; --style {style} names a style \
                         model, whose output is a picture"
                    ),
                ));
            }
        }
    }
    if segment && fresco_pipeline::image::is_image_path(&args.output) {
        return Err(Failure::new(
            exit::OUTPUT,
            format!(
                "{}: a dataset's masks go to a folder (or a prefix ending in /), not one image",
                args.output.display()
            ),
        ));
    }
    crate::scoring_args::locate_named(
        &mut args.model.style,
        &mut args.model.model,
        &mut args.scoring,
    )?;
    let scoring = args
        .scoring
        .ask(args.model.channel_order, fresco_store::absolute);
    let model = crate::run::records_model(&args)?;
    let chatty = !args.quiet;
    if chatty {
        model.announce(&crate::run::engine_label(args.model.device));
    }
    let embedded = EmbeddedOptions::of_run(&args, args.workers.unwrap_or(1), chatty, Some(scoring));
    let pin = args.model.pin(&model.name, &model.digest);
    run_job(&args, dataset, pin, &embedded)
}

/// A dataset styled by an image model into an output folder or prefix (see
/// [`fresco_core::dataset::output_key`] for the names it writes).
fn run_image_dataset(mut args: RunArgs, dataset: DatasetSpec) -> Result<ExitCode, Failure> {
    let scoring = args
        .scoring
        .ask(args.model.channel_order, fresco_store::absolute);
    if scoring.records_only_given() {
        return Err(Failure::new(
            exit::BAD_INPUT,
            crate::run::scoring_needs_records(&args.output),
        ));
    }
    if fresco_pipeline::image::is_image_path(&args.output) {
        return Err(Failure::new(
            exit::OUTPUT,
            format!(
                "{}: a dataset's styled images go to a folder (or a prefix ending in /), not \
                 one image",
                args.output.display()
            ),
        ));
    }
    args.model
        .read_image_card(args.scoring.model_card.as_deref())?;
    let model: crate::run::RunModel = args.model.load_tried(&args.model_trial.trial()?)?.into();
    let chatty = !args.quiet;
    if chatty {
        model.announce(&crate::run::engine_label(args.model.device));
    }
    let workers = args
        .workers
        .unwrap_or_else(|| crate::run::default_workers(&args.model));
    let embedded = EmbeddedOptions::of_run(&args, workers, chatty, None);
    let pin = args.model.pin(&model.name, &model.digest);
    // The workers load their own sessions.
    drop(model);
    run_job(&args, dataset, pin, &embedded)
}

/// Runs one dataset job on the embedded engine and reports it.
fn run_job(
    args: &RunArgs,
    dataset: DatasetSpec,
    pin: fresco_core::ModelPin,
    embedded: &EmbeddedOptions,
) -> Result<ExitCode, Failure> {
    let chatty = !args.quiet;
    let input = match &dataset.source {
        DatasetSource::Folder { path } | DatasetSource::Manifest { path } => path.clone(),
        DatasetSource::Prefix { url } => PathBuf::from(url),
    };
    let stop = StopSignal::new();
    crate::run::stop_on_ctrl_c(&stop);
    let job = VideoJob {
        input,
        output: args.output.clone(),
        dataset: Some(dataset),
    };
    let outcome = run_videos(&[job], pin, args.video.options(), embedded, stop)?
        .pop()
        .expect("one job, one result")?;
    if chatty {
        let counts = outcome.dataset.unwrap_or_default();
        eprintln!(
            "{} -> {}: {} items in {:.1} s ({} scored, {} failed, {} skipped)",
            outcome.input.display(),
            outcome.output.display(),
            outcome.frames,
            outcome.seconds,
            counts.scored,
            counts.failed,
            counts.skipped
        );
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome).expect("serialises")
        );
    }
    Ok(ExitCode::SUCCESS)
}
