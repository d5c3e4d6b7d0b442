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
        let records = RecordFormat::from_path(Path::new(&submission.output)).is_some();
        // A segment model's masks, written under an output folder or prefix: asked for, or
        // named by the model's card where no task is asked for.
        if crate::scoring::asks_segment(submission) {
            if records {
                return Err(crate::scoring::segment_records(&submission.output));
            }
            return self.build_image_dataset(submission, dataset, true);
        }
        if !records && self.card_asks_segment(submission)? {
            let asked = crate::scoring::asking_segment(submission);
            return self.build_image_dataset(&asked, dataset, true);
        }
        // No records output and no scoring asked for: an image model's styled images, written
        // under an output folder or prefix with the items' keys.
        if !records
            && !submission
                .scoring
                .as_ref()
                .is_some_and(|s| s.records_only_given())
        {
            return self.build_image_dataset(submission, dataset, false);
        }
        let output_url = object_url("output", &submission.output)?;
        let output = match &output_url {
            Some(_) => PathBuf::from(&submission.output),
            None => absolute_path("output", &submission.output)?,
        };
        if !records {
            return Err(Rejection::BadField {
                code: "dataset-output",
                message: format!(
                    "input {} names no single object or file, so it is read as a dataset of \
                     images (a folder or prefix), whose scores (error rows too) are written as \
                     records: give a .jsonl or .parquet output rather than {}, or name one \
                     object (az://container/path/clip.mp4); styled images go to an output \
                     folder with a style model and no scoring options",
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
        // A card's task may say segment where no flag did.
        if scoring.settings.task.as_deref() == Some("segment") {
            return Err(crate::scoring::segment_records(&submission.output));
        }
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

impl Submitter {
    /// Checks a dataset of images to style (no scoring, an output folder or prefix), or to
    /// segment (`masks`: `--task segment`), and makes its job: the source as for records, the
    /// output a folder (absolute, not a file) or a prefix whose store opens, neither inside the
    /// other, and an image model pinned, or the segment model with its scoring plan. Whether
    /// the output is empty is the plan's to check: a resumed job finds its own outputs there.
    fn build_image_dataset(
        &self,
        submission: &Submission,
        dataset: &DatasetSpec,
        masks: bool,
    ) -> Result<Built, Rejection> {
        if let Some(rules) = &self.paths {
            rules.check("input", &submission.input)?;
            rules.check("output", &submission.output)?;
        }
        let bad = |code: &'static str, message: String| Rejection::BadField { code, message };
        if masks {
            crate::scoring::check_segment_model(submission)?;
            if submission
                .scoring
                .as_ref()
                .is_some_and(|s| s.sampling != Default::default())
            {
                return Err(bad(
                    "dataset-sampling",
                    "--every and --fps pick frames of a video; each image of a dataset is \
                     segmented once"
                        .into(),
                ));
            }
        }
        if matches!(dataset.source, DatasetSource::Manifest { .. }) {
            return Err(bad(
                "dataset-output",
                "a manifest's lines have no common folder to keep their keys under: style a \
                 folder or a prefix into an output folder, or score the manifest into records \
                 (.jsonl, .parquet)"
                    .into(),
            ));
        }
        if submission.options.temporal {
            crate::check_temporal(
                Path::new(&submission.input),
                Path::new(&submission.output),
                true,
            )?;
        }
        // An output named like a video or a picture was meant for one object: the input named
        // none, so it is a dataset, whose styled images go to a folder.
        let named_like_a_file = Path::new(&submission.output)
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .is_some_and(|e| {
                fresco_core::dataset::VIDEO_EXTENSIONS.contains(&e.as_str())
                    || fresco_pipeline::image::is_image_path(Path::new(&submission.output))
            });
        if named_like_a_file && !Path::new(&submission.output).is_dir() {
            return Err(bad(
                "dataset-output",
                format!(
                    "input {} names no single object or file, so it is read as a dataset of \
                     images (a folder or prefix), styled (or, with --task segment, made masks) \
                     into an output folder: give a folder or \
                     prefix rather than {}, a .jsonl or .parquet output for records, or name one \
                     object (az://container/path/clip.mp4)",
                    submission.input, submission.output
                ),
            ));
        }
        if !(0.0..=1.0).contains(&dataset.max_failed_fraction) {
            return Err(bad(
                "bad-threshold",
                format!(
                    "--max-failed-fraction {}: give a share from 0 to 1",
                    dataset.max_failed_fraction
                ),
            ));
        }
        fresco_core::dataset::check_max_item_bytes(dataset.max_item_bytes)
            .map_err(|message| bad("bad-item-limit", message))?;
        let output_is_url = fresco_store::is_object_url(Path::new(&submission.output));
        let output = if output_is_url {
            fresco_store::Store::from_url(&submission.output)
                .map_err(|e| bad("bad-url", format!("output: {e}")))?;
            PathBuf::from(&submission.output)
        } else {
            let path = absolute_path("output", &submission.output)?;
            if path.exists() && !path.is_dir() {
                return Err(bad(
                    "dataset-output",
                    format!(
                        "output {}: a dataset's styled images (or masks) go to a folder, and this is a \
                         file",
                        path.display()
                    ),
                ));
            }
            path
        };
        let (source, fingerprint, input_text) = match &dataset.source {
            DatasetSource::Folder { path } => {
                let path = absolute_path("input", &path.display().to_string())?;
                if !path.is_dir() {
                    return Err(run_rejection(RunError::InputMissing { path }));
                }
                let text = path.display().to_string();
                (
                    DatasetSource::Folder { path: path.clone() },
                    fresco_store::fingerprint(&path),
                    text,
                )
            }
            DatasetSource::Prefix { url } => {
                fresco_store::Store::from_url(url)
                    .map_err(|e| bad("bad-url", format!("input: {e}")))?;
                (
                    DatasetSource::Prefix { url: url.clone() },
                    url.clone(),
                    url.clone(),
                )
            }
            DatasetSource::Manifest { .. } => unreachable!("refused above"),
        };
        if let Some(message) = overlap(&input_text, &output.display().to_string()) {
            return Err(bad("dataset-output-overlaps", message));
        }
        let mut options = submission.options.clone();
        options.limits = self.limits.media();
        let (model, scoring) = if masks {
            let (model, scoring) = self.pin_scoring(submission)?;
            (model, Some(scoring))
        } else {
            (self.pin(submission)?, None)
        };
        let spec = JobSpec {
            input: PathBuf::from(&input_text),
            output,
            model,
            options,
            chunk_frames: submission.chunk_frames,
            scoring,
            dataset: Some(DatasetSpec {
                source,
                ..dataset.clone()
            }),
        };
        let identity = spec.identity_from(&fingerprint);
        Ok(Built::new(spec, identity, submission))
    }
}

/// Why an image dataset's output cannot be where it is: inside its input (a later listing
/// would take the outputs as items, styling them again), or its input inside it. Folders and
/// `file://` prefixes are compared as the folders they resolve to (links followed), other
/// prefixes as URLs.
pub(crate) fn overlap(input: &str, output: &str) -> Option<String> {
    let (a, b) = (place(input), place(output));
    if b.starts_with(&a) {
        Some(format!(
            "output {output} is inside the input {input}: the outputs would be read as items \
             of the next listing; write them outside the input"
        ))
    } else if a.starts_with(&b) {
        Some(format!(
            "input {input} is inside the output {output}: write the outputs to a folder of \
             their own"
        ))
    } else {
        None
    }
}

/// Where a folder or prefix is, comparable by prefix: `file:///resolved/folder/` or the URL
/// with one trailing `/`.
fn place(text: &str) -> String {
    let local = match text.strip_prefix("file://") {
        Some(path) => Some(PathBuf::from(path)),
        None if !text.contains("://") => Some(PathBuf::from(text)),
        None => None,
    };
    match local {
        Some(path) => {
            let resolved = resolve_existing(&absolute(&path));
            format!(
                "file://{}/",
                resolved.display().to_string().trim_end_matches('/')
            )
        }
        None => format!("{}/", text.trim_end_matches('/')),
    }
}

/// `path` with its longest existing ancestor resolved (links followed), the rest appended.
fn resolve_existing(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut at = path.to_path_buf();
    loop {
        if let Ok(mut resolved) = at.canonicalize() {
            resolved.extend(rest.iter().rev());
            return resolved;
        }
        match (at.file_name().map(|n| n.to_os_string()), at.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                at = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod overlap_tests {
    use super::overlap;

    #[test]
    fn outputs_inside_inputs_and_inputs_inside_outputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("photos");
        std::fs::create_dir(&input).unwrap();
        let inp = input.display().to_string();
        let inside = input.join("styled").display().to_string();
        assert!(overlap(&inp, &inside).unwrap().contains("inside the input"));
        assert!(overlap(&inp, &inp).is_some());
        assert!(overlap(&inp, &format!("file://{inside}/")).is_some());
        let outside = dir.path().join("photos-styled").display().to_string();
        assert_eq!(
            overlap(&inp, &outside),
            None,
            "a sibling with a longer name"
        );
        assert!(overlap(&inp, &dir.path().display().to_string())
            .unwrap()
            .contains("inside the output"));
        // A link to the input is the input.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        let through = link.join("out").display().to_string();
        assert!(overlap(&inp, &through).is_some());
        assert!(overlap("az://c/photos/", "az://c/photos/styled/").is_some());
        assert_eq!(overlap("az://c/photos/", "az://c/photos-styled/"), None);
        assert_eq!(overlap("az://c/photos", "az://d/photos"), None);
    }
}
