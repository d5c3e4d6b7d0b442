//! The body of `POST /v1/jobs` (and of the jobs that watch folders and storage events make),
//! with its OpenAPI schema and its field checks.
//!
//! Field bounds appear twice on purpose: once in the `#[schema]` attributes (what clients and
//! contract tests are told) and once in [`SubmitRequest::validate`] (what the server enforces).
//! The server's contract test fails when the two disagree.

use fresco_core::StreamKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::InputRejected;

/// A job to submit. Exactly one of `style` and `model` must be given.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The video to style: an absolute path on the server's machine, or an object URL (`az://container/path`, `s3://bucket/key`, `file:///path`).
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\x00]+$",
        example = "/data/in.mp4"
    )]
    pub input: String,
    /// Where the styled video goes: an absolute path on the server's machine, or an object URL.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\x00]+$",
        example = "/data/out.mp4"
    )]
    pub output: String,
    /// A named style: mosaic, candy, udnie, rain-princess, pointilism, or the built-in vintage.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[a-z0-9][a-z0-9-]*$",
        example = "mosaic"
    )]
    pub style: Option<String>,
    /// Any ONNX image-to-image model file: an absolute path on the server's machine.
    #[schema(min_length = 1, max_length = 4096, pattern = r"^[^\x00]+$")]
    pub model: Option<String>,
    /// Numeric precision the workers run the model in: fp32 (default), or fp16 (the model is
    /// converted to half precision when loaded; only where jobs are pinned for CUDA GPUs).
    #[schema(pattern = r"^(fp32|fp16)$", example = "fp32")]
    pub precision: Option<String>,
    /// The kind of device whose workers do the job: cpu or cuda (default: the server's
    /// `--device`). Only workers of that kind claim its tasks.
    #[schema(pattern = r"^(cpu|cuda)$", example = "cuda")]
    pub device: Option<String>,
    /// Hardware video decoding (ffmpeg's -hwaccel): none (default), auto (falls back to
    /// software), or a method such as cuda (the job fails when planned if it does not work).
    #[schema(
        pattern = r"^(none|auto|cuda|vaapi|qsv|vdpau|vulkan|drm|opencl|videotoolbox|d3d11va|dxva2)$",
        example = "auto"
    )]
    pub hwaccel: Option<String>,
    /// ffmpeg encoder (default: libvpx-vp9 for a .webm output, libx264 otherwise). One the
    /// output's container cannot hold, or the server's ffmpeg lacks, fails the job at its plan.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z0-9_.+-]+$",
        example = "libx264"
    )]
    pub codec: Option<String>,
    /// Constant rate factor (default 18, or 24 for VP9; lower is better).
    #[serde(default, deserialize_with = "integer::optional")]
    #[schema(minimum = 0, maximum = 63)]
    pub crf: Option<u8>,
    /// Encoder preset (default medium).
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_.+-]+$")]
    pub preset: Option<String>,
    /// Output pixel format (default: yuv420p, or yuv420p10le for deeper input).
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_.+-]+$")]
    pub pix_fmt: Option<String>,
    /// Score frames downscaled so that their longer side is at most this, then scale back.
    #[serde(default, deserialize_with = "integer::optional")]
    #[schema(minimum = 1, maximum = 16384)]
    pub max_side: Option<u32>,
    /// Stream kinds not to copy from the input.
    #[serde(default)]
    pub drop_streams: Vec<StreamKindView>,
    /// Replace an output that already exists.
    #[serde(default)]
    pub overwrite: bool,
    /// Steady video: each styled frame is blended with the previous output carried along the
    /// input's optical flow, so that the texture does not flicker; each chunk starts a few
    /// frames early. Only for a video styled into a video by an image-to-image model: with a
    /// records output (`.jsonl`/`.parquet`), a still image, a dataset or a model whose output
    /// is no image it is refused (422 `temporal-not-applicable`, naming `temporal`).
    #[serde(default)]
    pub temporal: bool,
    /// Frames per chunk (default: about 30 s of model time each, from a calibration).
    #[serde(default, deserialize_with = "integer::optional")]
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub chunk_frames: Option<u64>,
    /// Higher runs first (default 0).
    #[serde(default, deserialize_with = "integer::required")]
    #[schema(minimum = -1_000_000, maximum = 1_000_000)]
    pub priority: i32,
    /// Errors a chunk may report before the job fails (default 3).
    #[serde(default, deserialize_with = "integer::optional")]
    #[schema(minimum = 1, maximum = 100)]
    pub max_attempts: Option<u32>,
    /// Leases a chunk may lose (its worker died) before the job fails (default 10).
    #[serde(default, deserialize_with = "integer::optional")]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_expiries: Option<u32>,
    /// http(s) URL to POST the job's JSON to once it ends (succeeded, failed or canceled),
    /// signed by the Standard Webhooks scheme. Its host must resolve to public addresses only
    /// (400 `callback-url-not-allowed` otherwise, unless the operator allows it).
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[!-~]*)?$",
        example = "https://example.com/hooks/fresco"
    )]
    pub callback_url: Option<String>,
    /// For a `.jsonl` or `.parquet` output: how the model's frames are sampled and scored (the
    /// same keys as `fresco run`'s scoring flags). With a video or image output, `model_card`
    /// names an image model's card, and the records keys are refused.
    pub scoring: Option<ScoringRequest>,
    /// The input is a folder or object-store prefix of images, scored into a `.jsonl` or
    /// `.parquet` output one row per image (a dataset job; `scoring` says how), or, with an
    /// image model and any other output, styled into that output folder or prefix with the same
    /// relative keys (bad images listed in its `_errors.jsonl`). A bad image is an error row;
    /// the job fails past the thresholds given here.
    pub dataset: Option<DatasetRequest>,
}

impl DatasetRequest {
    /// The bounds the schema states.
    pub fn validate(&self) -> Result<(), InputRejected> {
        if self.include.len() > 64 {
            return Err(field_error("dataset.include", "at most 64 patterns"));
        }
        bounded(
            "dataset.max_failed_items",
            self.max_failed_items,
            0,
            1_000_000_000_000,
        )?;
        bounded(
            "dataset.max_item_bytes",
            self.max_item_bytes,
            1,
            fresco_core::dataset::MAX_ITEM_BYTES_LIMIT,
        )?;
        if let Some(fraction) = self.max_failed_fraction {
            if !(0.0..=1.0).contains(&fraction) {
                return Err(field_error(
                    "dataset.max_failed_fraction",
                    "must be between 0 and 1",
                ));
            }
        }
        Ok(())
    }
}

/// The options of a dataset job (the input a folder or prefix of images).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetRequest {
    /// Glob patterns the images' keys must match (`*.jpg`); default: the image extensions.
    #[serde(default)]
    #[schema(max_items = 64)]
    pub include: Vec<String>,
    /// The job fails when more items than this cannot be scored.
    #[serde(default, deserialize_with = "integer::optional")]
    #[schema(minimum = 0, maximum = 1_000_000_000_000u64)]
    pub max_failed_items: Option<u64>,
    /// The job fails when more than this share of its items cannot be scored (default 0.01).
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub max_failed_fraction: Option<f64>,
    /// An item larger than this many bytes is an error row of kind `too-large`, never read
    /// whole (default 268435456, 256 MiB).
    #[serde(default, deserialize_with = "integer::optional")]
    #[schema(minimum = 1, maximum = 17_179_869_184u64)]
    pub max_item_bytes: Option<u64>,
}

/// The scoring options of a records job (`.jsonl`/`.parquet` output), or of a dataset's masks
/// (`task` `segment`, an output folder or prefix). Keys left out come from the model card
/// (`model_card`, or the `.toml` beside the model) or the model itself.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoringRequest {
    /// classify, detect or tensors (records), or segment: one mask (PNG) per item of a
    /// dataset, written under its output folder or prefix.
    #[schema(pattern = r"^(classify|detect|tensors|segment)$", example = "classify")]
    pub task: Option<String>,
    /// A labels file (one label per line): an absolute path on the server's machine, or a
    /// name in the data store (an upload's, like `input`).
    #[schema(min_length = 1, max_length = 4096, pattern = r"^[^\x00]+$")]
    pub labels: Option<String>,
    /// A model card (TOML): an absolute path on the server's machine, or a name in the data
    /// store (an upload's, like `input`). With a video or image
    /// output, an image model's card (mean, std, channel_order, layout, output_range).
    #[schema(min_length = 1, max_length = 4096, pattern = r"^[^\x00]+$")]
    pub model_card: Option<String>,
    /// classify: classes kept per frame (default 5); detect: boxes kept (default all).
    #[serde(default, deserialize_with = "integer::optional")]
    #[schema(minimum = 1, maximum = 100000)]
    pub top_k: Option<usize>,
    /// detect: boxes scoring less are dropped (default 0.25).
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub min_score: Option<f32>,
    /// detect: non-maximum suppression threshold (default 0.45).
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub nms_iou: Option<f32>,
    /// detect: yolo, yolov8, ssd or anchors.
    #[schema(pattern = r"^(yolo|yolov8|ssd|anchors)$")]
    pub detect_format: Option<String>,
    /// The model's input size, WxH.
    #[schema(pattern = r"^[0-9]{1,5}x[0-9]{1,5}$", example = "224x224")]
    pub input_size: Option<String>,
    /// stretch, letterbox or crop.
    #[schema(pattern = r"^(stretch|letterbox|crop)$")]
    pub resize: Option<String>,
    /// Per channel (R, G, B), subtracted from 0..255 pixel values.
    #[schema(min_items = 3, max_items = 3)]
    pub mean: Option<[f32; 3]>,
    /// Per channel (R, G, B), dividing after the mean.
    #[schema(min_items = 3, max_items = 3)]
    pub std: Option<[f32; 3]>,
    /// nchw or nhwc.
    #[schema(pattern = r"^(nchw|nhwc)$")]
    pub layout: Option<String>,
    /// rgb or bgr.
    #[schema(pattern = r"^(rgb|bgr)$")]
    pub channel_order: Option<String>,
    /// The outputs to read, by name.
    pub outputs: Option<Vec<String>>,
    /// Score every N-th frame of the decode order.
    #[serde(default, deserialize_with = "integer::optional")]
    #[schema(minimum = 1, maximum = 1000000000)]
    pub every: Option<u64>,
    /// Score this many frames a second.
    #[schema(exclusive_minimum = 0.0)]
    pub fps: Option<f64>,
    /// segment, a one-channel output: a pixel above this is 255 in the mask, else 0 (default
    /// 0.5, for probabilities; 0 for logits).
    #[schema(minimum = -1000000.0, maximum = 1000000.0)]
    pub mask_threshold: Option<f32>,
}

impl ScoringRequest {
    /// The bounds the schema states (the scoring plan checks the rest against the model).
    pub fn validate(&self) -> Result<(), InputRejected> {
        let one_of = |field: &str, value: &Option<String>, allowed: &[&str]| match value {
            Some(v) if !allowed.contains(&v.as_str()) => Err(field_error(
                field,
                &format!("expected one of {}, got {v:?}", allowed.join(", ")),
            )),
            _ => Ok(()),
        };
        one_of(
            "scoring.task",
            &self.task,
            &["classify", "detect", "tensors", "segment"],
        )?;
        one_of(
            "scoring.detect_format",
            &self.detect_format,
            &["yolo", "yolov8", "ssd", "anchors"],
        )?;
        one_of(
            "scoring.resize",
            &self.resize,
            &["stretch", "letterbox", "crop"],
        )?;
        one_of("scoring.layout", &self.layout, &["nchw", "nhwc"])?;
        one_of(
            "scoring.channel_order",
            &self.channel_order,
            &["rgb", "bgr"],
        )?;
        if let Some(labels) = &self.labels {
            path_field("scoring.labels", labels)?;
        }
        if let Some(card) = &self.model_card {
            path_field("scoring.model_card", card)?;
        }
        if let Some(size) = &self.input_size {
            let digits =
                |t: &str| (1..=5).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit());
            let ok = size
                .split_once('x')
                .is_some_and(|(w, h)| digits(w) && digits(h));
            if !ok {
                return Err(field_error(
                    "scoring.input_size",
                    "expected WxH (e.g. 224x224)",
                ));
            }
        }
        bounded("scoring.top_k", self.top_k.map(|k| k as u64), 1, 100_000)?;
        bounded("scoring.every", self.every, 1, 1_000_000_000)?;
        for (field, value) in [
            ("scoring.min_score", self.min_score),
            ("scoring.nms_iou", self.nms_iou),
        ] {
            if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                return Err(field_error(field, "must be between 0 and 1"));
            }
        }
        if self.fps.is_some_and(|f| f <= 0.0 || !f.is_finite()) {
            return Err(field_error("scoring.fps", "must be a positive number"));
        }
        if self
            .mask_threshold
            .is_some_and(|t| !(-1_000_000.0..=1_000_000.0).contains(&t))
        {
            return Err(field_error(
                "scoring.mask_threshold",
                "must be a number from -1000000 to 1000000",
            ));
        }
        Ok(())
    }
}

/// Integers as JSON Schema defines them: any number without a fractional part, so `5.0` is the
/// integer 5 (serde alone refuses it, and a schema-valid request must not be refused).
pub mod integer {
    use serde::de::{Deserialize, Deserializer, Error};
    use serde_json::Number;

    fn convert<T: TryFrom<i128>, E: Error>(n: &Number) -> Result<T, E> {
        let whole = if let Some(i) = n.as_i64() {
            Some(i128::from(i))
        } else if let Some(u) = n.as_u64() {
            Some(i128::from(u))
        } else {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e30)
                .map(|f| f as i128)
        };
        whole
            .and_then(|w| T::try_from(w).ok())
            .ok_or_else(|| E::custom(format!("expected an integer in range, got {n}")))
    }

    pub fn required<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
        convert(&Number::deserialize(d)?)
    }

    pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<i128>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        Option::<Number>::deserialize(d)?
            .map(|n| convert(&n))
            .transpose()
    }
}

/// The model a submission names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    Style(String),
    File(String),
}

impl SubmitRequest {
    /// Checks every field on its own (no file system access): 400 with the field named.
    pub fn validate(&self) -> Result<(), InputRejected> {
        path_field("input", &self.input)?;
        path_field("output", &self.output)?;
        self.model_ref()?;
        if let Some(style) = &self.style {
            let ok = style.len() <= 64
                && style.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && style
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(field_error(
                    "style",
                    "a style name is lowercase letters, digits and '-' (e.g. mosaic)",
                ));
            }
        }
        if let Some(model) = &self.model {
            path_field("model", model)?;
        }
        if let Some(device) = &self.device {
            if device != "cpu" && device != "cuda" {
                return Err(field_error(
                    "device",
                    &format!("expected cpu or cuda, got {device:?}"),
                ));
            }
        }
        if let Some(hwaccel) = &self.hwaccel {
            // The schema's pattern is case-sensitive: so is this check.
            if hwaccel.chars().any(|c| c.is_ascii_uppercase()) {
                return Err(field_error("hwaccel", "must be lowercase"));
            }
            fresco_core::settings::parse_hwaccel(hwaccel)
                .map_err(|e| field_error("hwaccel", &e))?;
        }
        if let Some(precision) = &self.precision {
            if precision != "fp32" && precision != "fp16" {
                return Err(field_error(
                    "precision",
                    &format!("expected fp32 or fp16, got {:?}", precision),
                ));
            }
        }
        for (name, value) in [
            ("codec", &self.codec),
            ("preset", &self.preset),
            ("pix_fmt", &self.pix_fmt),
        ] {
            if let Some(value) = value {
                encoder_token(name, value)?;
            }
        }
        bounded("crf", self.crf.map(u64::from), 0, 63)?;
        bounded("max_side", self.max_side.map(u64::from), 1, 16384)?;
        bounded("chunk_frames", self.chunk_frames, 1, 1_000_000_000)?;
        bounded("max_attempts", self.max_attempts.map(u64::from), 1, 100)?;
        bounded("max_expiries", self.max_expiries.map(u64::from), 1, 1000)?;
        if !(-1_000_000..=1_000_000).contains(&self.priority) {
            return Err(field_error(
                "priority",
                "must be between -1000000 and 1000000",
            ));
        }
        if let Some(url) = &self.callback_url {
            callback_url(url)?;
        }
        if let Some(scoring) = &self.scoring {
            scoring.validate()?;
        }
        if let Some(dataset) = &self.dataset {
            dataset.validate()?;
        }
        Ok(())
    }

    /// The style or model file; exactly one must be given (a `null` counts as absent).
    pub fn model_ref(&self) -> Result<ModelRef, InputRejected> {
        match (&self.style, &self.model) {
            (Some(style), None) => Ok(ModelRef::Style(style.clone())),
            (None, Some(model)) => Ok(ModelRef::File(model.clone())),
            (Some(_), Some(_)) => Err(InputRejected::new(
                "conflicting-fields",
                "give either 'style' or 'model', not both",
            )),
            (None, None) => Err(InputRejected::new(
                "missing-field",
                "give 'style' (a named style such as mosaic) or 'model' (an ONNX file)",
            )),
        }
    }
}

fn field_error(field: &str, what: &str) -> InputRejected {
    InputRejected::new("invalid-field", format!("{field}: {what}"))
}

fn path_field(field: &str, value: &str) -> Result<(), InputRejected> {
    if value.is_empty() || value.len() > 4096 || value.contains('\0') {
        return Err(field_error(
            field,
            "must be a path of 1 to 4096 bytes without NUL characters",
        ));
    }
    Ok(())
}

fn encoder_token(field: &str, value: &str) -> Result<(), InputRejected> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'));
    if ok {
        Ok(())
    } else {
        Err(field_error(
            field,
            "must be 1 to 64 characters of letters, digits, '_', '.', '+' or '-' (an ffmpeg name)",
        ))
    }
}

fn bounded(field: &str, value: Option<u64>, min: u64, max: u64) -> Result<(), InputRejected> {
    match value {
        Some(v) if v < min || v > max => Err(field_error(
            field,
            &format!("must be between {min} and {max}, got {v}"),
        )),
        _ => Ok(()),
    }
}

/// Checks what the schema's pattern says, `^https?://HOST(:PORT)?(/PATH)?$`, by hand: a URL
/// library would refuse some hosts the pattern allows (a schema-valid request must not be
/// refused), and one that cannot be reached fails at call time, in the log.
fn callback_url(text: &str) -> Result<(), InputRejected> {
    let ok = text.len() <= 2048
        && text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("https://"))
            .is_some_and(|rest| {
                let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                // An IPv6 literal in brackets, or a name (or IPv4 address) of letters, digits,
                // '.' and '-'. Which addresses may be called is the server's check, after this.
                let (host, port) = match authority.strip_prefix('[') {
                    Some(v6) => match v6.split_once(']') {
                        Some((inside, after)) => (
                            inside,
                            if after.is_empty() {
                                None
                            } else {
                                after.strip_prefix(':').or(Some(""))
                            },
                        ),
                        None => ("", None),
                    },
                    None => match authority.split_once(':') {
                        Some((host, port)) => (host, Some(port)),
                        None => (authority, None),
                    },
                };
                let bracketed = authority.starts_with('[');
                !host.is_empty()
                    && host.chars().all(|c| {
                        if bracketed {
                            c.is_ascii_hexdigit() || c == ':' || c == '.'
                        } else {
                            c.is_ascii_alphanumeric() || c == '.' || c == '-'
                        }
                    })
                    && port.is_none_or(|p| {
                        (1..=5).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit())
                    })
                    && path.chars().all(|c| c.is_ascii_graphic())
            });
    if ok {
        Ok(())
    } else {
        Err(field_error(
            "callback_url",
            "must be an http:// or https:// URL: a host of letters, digits, '.' and '-' (or an IPv6 address in brackets), an optional port and a path of visible ASCII",
        ))
    }
}

/// A kind of non-video stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamKindView {
    Audio,
    Subtitle,
    Data,
    Attachment,
}

impl From<StreamKindView> for StreamKind {
    fn from(kind: StreamKindView) -> StreamKind {
        match kind {
            StreamKindView::Audio => StreamKind::Audio,
            StreamKindView::Subtitle => StreamKind::Subtitle,
            StreamKindView::Data => StreamKind::Data,
            StreamKindView::Attachment => StreamKind::Attachment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{callback_url, DatasetRequest};

    #[test]
    fn dataset_item_limits_follow_the_schema_bounds() {
        let limit = |bytes: u64| {
            let request: DatasetRequest =
                serde_json::from_value(serde_json::json!({ "max_item_bytes": bytes })).unwrap();
            request.validate()
        };
        // The schema's maximum is written out as a literal; it must be the core's limit.
        assert_eq!(fresco_core::dataset::MAX_ITEM_BYTES_LIMIT, 17_179_869_184);
        assert!(limit(1).is_ok());
        assert!(limit(fresco_core::dataset::MAX_ITEM_BYTES_LIMIT).is_ok());
        assert_eq!(limit(0).unwrap_err().code, "invalid-field");
        let over = limit(fresco_core::dataset::MAX_ITEM_BYTES_LIMIT + 1);
        assert_eq!(over.unwrap_err().code, "invalid-field");
    }

    #[test]
    fn callback_urls_follow_the_schema_pattern() {
        for ok in [
            "https://example.com/hooks/fresco",
            "http://10.0.0.1:8080/x?y=1",
            "http://2130706433/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]:9000/hook",
            "http://[fd00:ec2::254]",
        ] {
            assert!(callback_url(ok).is_ok(), "{ok}");
        }
        // Which of those the server may call is its own check (fresco_server::outbound).
        for bad in [
            "ftp://example.com/",
            "http://user@example.com/",
            "http://user:pw@example.com/",
            "http://[::1]x/",
            "http://[::1]:/",
            "http://[::1/",
            "http://[]/",
            "http://[g::1]/",
            "http://exa mple.com/",
            "http://example.com:123456/",
            "http://example.com\\@evil/",
            "not a url",
        ] {
            let refused = callback_url(bad).expect_err(bad);
            assert_eq!(refused.code, "invalid-field", "{bad}");
        }
    }
}
