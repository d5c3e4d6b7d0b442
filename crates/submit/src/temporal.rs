//! Where `--temporal` (steady video: each styled frame blended with the previous output along
//! the input's optical flow, docs/temporal.md) applies, checked once for every entrance: `fresco
//! run`, `fresco jobs submit` (local queue and `--server`), `POST /v1/jobs` (`"temporal":
//! true`), watched folders and storage events (`fresco serve --temporal`).
//!
//! The blend needs consecutive frames of one video and an image for each of them, so it is
//! refused, naming the option, for a records output (`.jsonl`/`.parquet`: rows, no frames to
//! blend), a still image (one frame) or a dataset (images one by one), and a model whose output
//! is no image. Refused rather than ignored: a user who asked for a steady result and got a
//! per-frame one would not know. All are 422 `temporal-not-applicable` from the API and exit 2
//! (a bad combination of arguments) from the CLI.

use std::path::Path;

use fresco_core::ModelChoice;
use fresco_infer::inspect::ModelBudget;
use fresco_infer::registry::Registry;
use fresco_pipeline::check_model;
use fresco_pipeline::image::is_image_path;
use fresco_score::RecordFormat;

use crate::rejection::{model_rejection, Rejection};

/// The code of every refusal here.
pub const TEMPORAL_NOT_APPLICABLE: &str = "temporal-not-applicable";

fn refused(message: String) -> Rejection {
    Rejection::Unusable {
        code: TEMPORAL_NOT_APPLICABLE,
        message: format!("temporal: {message}"),
    }
}

/// Whether a job from `input` to `output` can be steadied: a video styled into a video. A
/// `dataset` job (a folder, prefix or manifest of images) cannot. Checks names only (no I/O),
/// so every entrance can ask before anything is probed or loaded.
pub fn check_temporal(input: &Path, output: &Path, dataset: bool) -> Result<(), Rejection> {
    if dataset {
        return Err(refused(format!(
            "{} is a dataset of images, each scored on its own: --temporal steadies the \
             consecutive frames of a styled video; leave it out",
            input.display()
        )));
    }
    if RecordFormat::from_path(output).is_some() {
        return Err(refused(format!(
            "output {} holds records (rows of scores), not frames to steady: --temporal needs \
             a video output; leave it out for records",
            output.display()
        )));
    }
    if let Some(image) = [input, output].into_iter().find(|p| is_image_path(p)) {
        return Err(refused(format!(
            "{} is a still image, one frame with none before it to steady: --temporal needs a \
             video input and output; leave it out for images",
            image.display()
        )));
    }
    Ok(())
}

/// A model refused for not being image-to-image, said as `--temporal`'s refusal when the job
/// asked for it (the blend needs an image per frame); other refusals are returned as they are.
pub fn temporal_model(rejection: Rejection) -> Rejection {
    match rejection {
        Rejection::Unusable {
            code: "model-not-image",
            message,
        } => refused(format!(
            "{message}; --temporal blends the frames an image-to-image model gives, so this \
             model cannot be steadied"
        )),
        other => other,
    }
}

/// For an entrance that loads the model itself (`fresco run`): a model whose output is no image
/// is refused as [`temporal_model`] says, after the same static inspection the other entrances
/// make. Any other problem is left to the load, whose message says what it is.
pub fn check_temporal_model(
    choice: &ModelChoice,
    registry: &Registry,
    allow_download: bool,
) -> Result<(), Rejection> {
    match check_model(choice, registry, allow_download, &ModelBudget::default()) {
        Ok(_) => Ok(()),
        Err(e) => match temporal_model(model_rejection(e)) {
            refused if refused.code() == TEMPORAL_NOT_APPLICABLE => Err(refused),
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(result: Result<(), Rejection>) -> Option<&'static str> {
        result.err().map(|r| r.code())
    }

    #[test]
    fn only_a_video_into_a_video_is_steadied() {
        let check = |i: &str, o: &str, d| code(check_temporal(Path::new(i), Path::new(o), d));
        assert_eq!(check("/v/in.mp4", "/v/out.mkv", false), None);
        for (input, output, dataset) in [
            ("/v/in.mp4", "/v/rows.jsonl", false),
            ("/v/in.mp4", "/v/rows.parquet", false),
            ("/v/photo.JPG", "/v/out.png", false),
            ("/v/photo.jpg", "/v/out.mp4", false),
            ("/v/in.mp4", "/v/frame.png", false),
            ("/v/photos", "/v/rows.jsonl", true),
        ] {
            assert_eq!(
                check(input, output, dataset),
                Some(TEMPORAL_NOT_APPLICABLE),
                "{input} -> {output}"
            );
        }
        let message = check_temporal(Path::new("/v/in.mp4"), Path::new("/v/r.jsonl"), false)
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("temporal: output /v/r.jsonl"),
            "{message}"
        );
    }

    #[test]
    fn a_model_without_an_image_output_is_refused_as_temporal() {
        let not_image = Rejection::Unusable {
            code: "model-not-image",
            message: "m.onnx: not an image-to-image model: output [1,1000]".into(),
        };
        let said = temporal_model(not_image);
        assert_eq!(said.code(), TEMPORAL_NOT_APPLICABLE);
        assert!(said.to_string().starts_with("temporal: m.onnx"), "{said}");
        let other = Rejection::Unusable {
            code: "model-missing",
            message: "gone".into(),
        };
        assert_eq!(temporal_model(other).code(), "model-missing");
    }
}
