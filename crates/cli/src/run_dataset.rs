//! `fresco run` of a dataset (`az://c/photos/ -o tags.jsonl`, `--manifest picks.txt -o ...`, or a
//! folder with `--include` / `--max-failed-*`): one dataset job through the embedded engine, as
//! `fresco jobs submit` would queue it, so a bad image is an error row and an interrupted run
//! resumes. A plain folder of images with a records output is still scored in this process
//! ([`crate::image_records`]), failing on the first bad image as before.

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
    if !asked && !prefix {
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
    if fresco_score::RecordFormat::from_path(&args.output).is_none() {
        return Err(Failure::new(
            exit::BAD_INPUT,
            "a dataset is scored into records: give a .jsonl or .parquet output",
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
    let input = match &dataset.source {
        DatasetSource::Folder { path } | DatasetSource::Manifest { path } => path.clone(),
        DatasetSource::Prefix { url } => PathBuf::from(url),
    };
    let stop = StopSignal::new();
    crate::run::stop_on_ctrl_c(&stop);
    let embedded = EmbeddedOptions::of_run(&args, args.workers.unwrap_or(1), chatty, Some(scoring));
    let job = VideoJob {
        input,
        output: args.output.clone(),
        dataset: Some(dataset),
    };
    let pin = args.model.pin(&model.name, &model.digest);
    let outcome = run_videos(&[job], pin, args.video.options(), &embedded, stop)?
        .pop()
        .expect("one job, one result")?;
    if chatty {
        eprintln!(
            "{} -> {}: {} items in {:.1} s",
            outcome.input.display(),
            outcome.output.display(),
            outcome.frames,
            outcome.seconds
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
