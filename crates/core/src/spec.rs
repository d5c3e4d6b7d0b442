//! What a job asks for, as stored in the queue: input, output, the pinned model and options.
//! Plain data with no I/O, so that every layer (the queue, the server, workers) reads the same
//! types. A job's identity is derived from these and from a fingerprint of the input that the
//! caller takes (see `fresco_store::fingerprint`), so that submitting the same work twice finds
//! the job already there (which is how an interrupted `fresco run` resumes).
//!
//! Input and output are local paths or object URLs (`az://container/in/clip.mp4`, see
//! `fresco_store::ObjectUrl`); a URL is kept in the `PathBuf` as its text.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::settings::{
    ChannelOrder, DeviceKind, EncodeSettings, InputRange, ModelChoice, Precision, StreamKind,
};
use crate::{ImageCard, MediaLimits};

/// What the user asked for, beyond the model.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VideoOptions {
    pub encode: EncodeSettings,
    /// Score frames downscaled so that their longer side is at most this, then scale back.
    pub max_side: Option<u32>,
    /// Stream kinds not to copy.
    pub drop_streams: Vec<StreamKind>,
    pub overwrite: bool,
    /// ffmpeg's hardware decoding method (`--hwaccel`, see `fresco_pipeline::hardware`);
    /// `None`: software. Left out of the JSON when `None`, so that jobs' identities stay as
    /// they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hwaccel: Option<String>,
    /// Limits on what the input holds, checked on the probe and on what the frame scan
    /// measures (set by `fresco serve` from its `--max-input-*` flags; none for `fresco run`).
    /// Left out of the JSON when unset, so that jobs' identities stay as they were.
    #[serde(default, skip_serializing_if = "MediaLimits::is_none")]
    pub limits: MediaLimits,
    /// The frame size the job's model fixes (width, height), when it fixes one: frames are
    /// decoded at that size and the results scaled back, as with `max_side`. Not part of what
    /// a job asks (never stored with it): the plan stage sets it from the model it loaded, and
    /// the plan it stores keeps the size.
    #[serde(skip)]
    pub model_size: Option<(u32, u32)>,
    /// `--temporal`: each styled frame is blended with the previous output carried along the
    /// input's optical flow, so that the texture does not flicker (docs/temporal.md). Left out
    /// of the JSON when off, so that jobs' identities stay as they were.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub temporal: bool,
}

/// A model pinned by the digest of its bytes, with how it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPin {
    pub choice: ModelChoice,
    /// The style name or file stem, for messages.
    pub name: String,
    /// sha256 of the model bytes: a worker refuses a model whose bytes differ.
    pub digest: String,
    pub input_range: Option<InputRange>,
    pub channel_order: Option<ChannelOrder>,
    /// The kind of device the job was submitted for.
    pub device_kind: DeviceKind,
    /// `--precision`: every worker of the job loads the model so.
    pub precision: Precision,
    /// An image model's card (normalisation, layout, output range), resolved at submission.
    /// Left out of the JSON when `None`, so that stored specs read and write as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_card: Option<ImageCard>,
}

/// Everything a worker needs to do a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpec {
    pub input: PathBuf,
    pub output: PathBuf,
    pub model: ModelPin,
    pub options: VideoOptions,
    /// Frames per chunk; `None`: sized from a calibration at plan time.
    pub chunk_frames: Option<u64>,
    /// A records job (`.jsonl`/`.parquet` output): how frames are sampled and scored. Left out
    /// of the JSON when `None`, so that video jobs' specs and identities stay as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring: Option<crate::scoring::ScoringSpec>,
    /// A dataset job (a folder, prefix or manifest of images; records output): where its items
    /// come from and how many may fail. Left out of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<crate::dataset::DatasetSpec>,
}

impl JobSpec {
    /// The job's identity, from the input's `fingerprint` (for a local file: absolute path,
    /// size, modification time; for an object: URL, size and ETag), the model digest, the
    /// options and the output path. Equal identities are the same work.
    pub fn identity_from(&self, fingerprint: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(fingerprint.as_bytes());
        hasher.update(b"\0");
        hasher.update(self.model.digest.as_bytes());
        hasher.update(b"\0");
        hasher.update(serde_json::to_vec(&self.options).expect("options serialise"));
        hasher.update(b"\0");
        hasher.update(serde_json::to_vec(&self.chunk_frames).expect("serialises"));
        hasher.update(b"\0");
        hasher.update(self.output.to_string_lossy().as_bytes());
        // Only when there is one, so that other jobs' identities stay as they were: another
        // card (or the same card's other normalisation) is other work.
        if let Some(card) = &self.model.image_card {
            hasher.update(b"\0card\0");
            hasher.update(serde_json::to_vec(card).expect("a card serialises"));
        }
        if let Some(scoring) = &self.scoring {
            hasher.update(b"\0");
            hasher.update(serde_json::to_vec(scoring).expect("scoring serialises"));
        }
        if let Some(dataset) = &self.dataset {
            hasher.update(b"\0");
            hasher.update(serde_json::to_vec(dataset).expect("dataset serialises"));
        }
        hex::encode(hasher.finalize())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a job spec serialises")
    }

    pub fn from_json(text: &str) -> Result<JobSpec, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Whether the stored spec `text` asks for `--temporal` (for views of a job, which show it
    /// whatever else the spec holds; an unreadable spec asks for nothing).
    pub fn temporal_in(text: &str) -> bool {
        serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|spec| spec["options"]["temporal"].as_bool())
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec as fresco wrote them before the device kind and the precision were enums (taken
    /// from a queue database): it must still parse, and be written back the same.
    const STORED: &str = r#"{"input":"/srv/in.mp4","output":"/srv/out.mp4","model":{"choice":{"style":"mosaic"},"name":"mosaic","digest":"ab12","input_range":null,"channel_order":null,"device_kind":"cuda","precision":"fp16"},"options":{"encode":{"codec":"libx264","crf":18,"preset":"medium","pix_fmt":null,"threads":null},"max_side":null,"drop_streams":[],"overwrite":false},"chunk_frames":null}"#;

    #[test]
    fn specs_stored_as_text_still_parse_and_round_trip() {
        let spec = JobSpec::from_json(STORED).expect("a stored spec parses");
        assert_eq!(spec.model.device_kind, DeviceKind::Cuda);
        assert_eq!(spec.model.precision, Precision::Fp16);
        assert_eq!(spec.model.choice, ModelChoice::Style("mosaic".into()));
        assert_eq!(spec.to_json(), STORED);
        let cpu = STORED
            .replace(r#""cuda""#, r#""cpu""#)
            .replace(r#""fp16""#, r#""fp32""#);
        let spec = JobSpec::from_json(&cpu).unwrap();
        assert_eq!(
            (spec.model.device_kind, spec.model.precision),
            (DeviceKind::Cpu, Precision::Fp32)
        );
        assert_eq!(spec.to_json(), cpu);
    }

    #[test]
    fn unknown_kinds_and_precisions_are_refused() {
        let bad = STORED.replace(r#""cuda""#, r#""tpu""#);
        assert!(JobSpec::from_json(&bad).is_err());
        let bad = STORED.replace(r#""fp16""#, r#""int8""#);
        let err = JobSpec::from_json(&bad).unwrap_err().to_string();
        assert!(err.contains("expected fp32 or fp16"), "{err}");
    }

    #[test]
    fn identity_follows_the_fingerprint_and_the_output() {
        let spec = JobSpec::from_json(STORED).unwrap();
        let a = spec.identity_from("/srv/in.mp4|10|5");
        assert_eq!(a, spec.identity_from("/srv/in.mp4|10|5"));
        assert_ne!(a, spec.identity_from("/srv/in.mp4|10|6"));
        let mut other = spec.clone();
        other.output = "/srv/other.mp4".into();
        assert_ne!(a, other.identity_from("/srv/in.mp4|10|5"));
    }

    #[test]
    fn an_image_card_is_pinned_and_part_of_the_identity() {
        let spec = JobSpec::from_json(STORED).unwrap();
        assert_eq!(spec.model.image_card, None);
        let mut carded = spec.clone();
        carded.model.image_card = Some(ImageCard {
            path: "/srv/seg.toml".into(),
            digest: "cd34".into(),
            normalization: Some(crate::Normalization {
                mean: [123.675, 116.28, 103.53],
                std: [58.395, 57.12, 57.375],
            }),
            layout: None,
            output_range: Some(InputRange::Unit),
            channel_order: None,
        });
        let json = carded.to_json();
        assert!(
            json.contains(r#""image_card":{"path":"/srv/seg.toml""#),
            "{json}"
        );
        assert!(!json.contains("layout"), "unset keys are left out: {json}");
        assert_eq!(JobSpec::from_json(&json).unwrap().model, carded.model);
        let fingerprint = "/srv/in.mp4|10|5";
        assert_ne!(
            spec.identity_from(fingerprint),
            carded.identity_from(fingerprint)
        );
        let mut other = carded.clone();
        other.model.image_card.as_mut().unwrap().output_range = None;
        assert_ne!(
            other.identity_from(fingerprint),
            carded.identity_from(fingerprint)
        );
    }
}
