//! Dataset jobs at submission (issue 17): a folder, an object-store prefix or a manifest of
//! images scored into records. The checks are the records job's (the model's scoring plan
//! resolved and pinned, the output checked) with the source's own: a folder or manifest that
//! exists, a prefix whose store opens, every location within the submitter's roots. What the
//! source holds is listed by the job's plan task, not here: a million objects are not listed
//! in a request.

use super::*;
use fresco_core::dataset::{DatasetSource, DatasetSpec};

/// The dataset an API request asks for: its input (placed in the data store already) as a
/// folder or prefix. Manifests are not taken through the API: their lines could name what
/// the submitter's roots do not hold.
pub(crate) fn requested(request: &SubmitRequest) -> Result<Option<DatasetSpec>, Rejection> {
    let Some(asked) = &request.dataset else {
        return Ok(None);
    };
    if asked.include.len() > 64 {
        return Err(Rejection::BadField {
            code: "bad-include",
            message: "dataset.include: at most 64 patterns".into(),
        });
    }
    let source = if fresco_store::is_object_url(Path::new(&request.input)) {
        DatasetSource::Prefix {
            url: request.input.clone(),
        }
    } else {
        DatasetSource::Folder {
            path: PathBuf::from(&request.input),
        }
    };
    Ok(Some(DatasetSpec {
        source,
        include: asked.include.clone(),
        max_failed_items: asked.max_failed_items,
        max_failed_fraction: asked
            .max_failed_fraction
            .unwrap_or(fresco_core::dataset::DEFAULT_MAX_FAILED_FRACTION),
        max_item_bytes: asked
            .max_item_bytes
            .unwrap_or(fresco_core::dataset::DEFAULT_MAX_ITEM_BYTES),
    }))
}

impl Submitter {
    /// Checks a dataset submission (`submission.input` is the folder, prefix URL or manifest
    /// that `dataset.source` names) and makes its job.
    pub fn build_dataset(
        &self,
        submission: &Submission,
        dataset: &DatasetSpec,
    ) -> Result<Built, Rejection> {
        if let Some(rules) = &self.paths {
            rules.check("input", &submission.input)?;
            rules.check("output", &submission.output)?;
        }
        let output_url = object_url("output", &submission.output)?;
        let output = match &output_url {
            Some(_) => PathBuf::from(&submission.output),
            None => absolute_path("output", &submission.output)?,
        };
        if RecordFormat::from_path(&output).is_none() {
            return Err(Rejection::BadField {
                code: "dataset-output",
                message: format!(
                    "input {} names no single object or file, so it is read as a dataset of \
                     images (a folder or prefix), whose rows (error rows too) are written as \
                     records: give a .jsonl or .parquet output rather than {}, or name one \
                     object (az://container/path/clip.mp4)",
                    submission.input,
                    output.display()
                ),
            });
        }
        if submission.options.temporal {
            crate::check_temporal(Path::new(&submission.input), &output, true)?;
        }
        if submission
            .scoring
            .as_ref()
            .is_some_and(|s| s.sampling != Default::default())
        {
            return Err(Rejection::BadField {
                code: "dataset-sampling",
                message: "--every and --fps pick frames of a video; each image of a dataset is \
                          scored once"
                    .into(),
            });
        }
        if !(0.0..=1.0).contains(&dataset.max_failed_fraction) {
            return Err(Rejection::BadField {
                code: "bad-threshold",
                message: format!(
                    "--max-failed-fraction {}: give a share from 0 to 1",
                    dataset.max_failed_fraction
                ),
            });
        }
        fresco_core::dataset::check_max_item_bytes(dataset.max_item_bytes).map_err(|message| {
            Rejection::BadField {
                code: "bad-item-limit",
                message,
            }
        })?;
        let (source, fingerprint) = match &dataset.source {
            // A manifest in an object store (the dataset trigger's, written beside its output):
            // read by the plan task through the store, as its items are.
            DatasetSource::Manifest { path } if fresco_store::is_object_url(path) => {
                let text = path.display().to_string();
                let url = object_url("input", &text)?.expect("an object URL");
                input_object(&url)?;
                (DatasetSource::Manifest { path: path.clone() }, text)
            }
            DatasetSource::Folder { path } | DatasetSource::Manifest { path } => {
                let path = absolute_path("input", &path.display().to_string())?;
                let is_folder = matches!(dataset.source, DatasetSource::Folder { .. });
                let fits = if is_folder {
                    path.is_dir()
                } else {
                    path.is_file()
                };
                if !fits {
                    return Err(run_rejection(RunError::InputMissing { path }));
                }
                let source = if is_folder {
                    DatasetSource::Folder { path: path.clone() }
                } else {
                    DatasetSource::Manifest { path: path.clone() }
                };
                (source, fresco_store::fingerprint(&path))
            }
            DatasetSource::Prefix { url } => {
                fresco_store::Store::from_url(url).map_err(|e| Rejection::BadField {
                    code: "bad-url",
                    message: format!("input: {e}"),
                })?;
                (DatasetSource::Prefix { url: url.clone() }, url.clone())
            }
        };
        match &output_url {
            Some(url) => check_output_object(url, &output, submission.options.overwrite)?,
            None => {
                check_output_target(&output, submission.options.overwrite).map_err(run_rejection)?
            }
        }
        let mut options = fresco_pipeline::container::for_output(&submission.options, &output);
        options.limits = self.limits.media();
        let (model, scoring) = self.pin_scoring(submission)?;
        let input = match &source {
            DatasetSource::Folder { path } | DatasetSource::Manifest { path } => path.clone(),
            DatasetSource::Prefix { url } => PathBuf::from(url),
        };
        let spec = JobSpec {
            input,
            output: match &output_url {
                Some(_) => output,
                None => absolute(&output),
            },
            model,
            options,
            chunk_frames: submission.chunk_frames,
            scoring: Some(scoring),
            dataset: Some(DatasetSpec {
                source,
                ..dataset.clone()
            }),
        };
        let identity = spec.identity_from(&fingerprint);
        Ok(Built::new(spec, identity, submission))
    }
}
