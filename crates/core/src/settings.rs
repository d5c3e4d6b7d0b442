//! Settings a run is made of. They are plain data so that a job can pin them and any machine
//! can reproduce the same output.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which model styles the frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelChoice {
    /// A named style from the registry (`mosaic`, `candy`, ..., or the built-in `vintage`).
    Style(String),
    /// Any image-to-image ONNX file.
    File(PathBuf),
}

impl fmt::Display for ModelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelChoice::Style(name) => write!(f, "{name}"),
            ModelChoice::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The value range a model expects for its input pixels (and produces on output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum InputRange {
    /// 0..255, as the fast-neural-style models expect.
    #[default]
    #[serde(rename = "0-255")]
    Byte,
    /// 0..1.
    #[serde(rename = "0-1")]
    Unit,
}

impl InputRange {
    /// The value that stands for full white.
    pub fn max_value(self) -> f32 {
        match self {
            InputRange::Byte => 255.0,
            InputRange::Unit => 1.0,
        }
    }
}

impl FromStr for InputRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "0-255" => Ok(InputRange::Byte),
            "0-1" => Ok(InputRange::Unit),
            other => Err(format!(
                "unknown input range '{other}': expected 0-255 or 0-1"
            )),
        }
    }
}

impl fmt::Display for InputRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputRange::Byte => "0-255",
            InputRange::Unit => "0-1",
        })
    }
}

/// Channel order of the model's colour axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    #[default]
    Rgb,
    Bgr,
}

impl FromStr for ChannelOrder {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "rgb" => Ok(ChannelOrder::Rgb),
            "bgr" => Ok(ChannelOrder::Bgr),
            other => Err(format!(
                "unknown channel order '{other}': expected rgb or bgr"
            )),
        }
    }
}

impl fmt::Display for ChannelOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChannelOrder::Rgb => "rgb",
            ChannelOrder::Bgr => "bgr",
        })
    }
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    #[default]
    Cpu,
    /// An NVIDIA GPU through ONNX Runtime's CUDA provider, by ordinal.
    Cuda(u32),
}

impl FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda(0)),
            _ => match lower.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(Device::Cuda)
                    .map_err(|_| format!("bad CUDA device '{s}': expected cuda or cuda:N")),
                None => Err(format!(
                    "unknown device '{s}': expected cpu, cuda or cuda:N"
                )),
            },
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl Device {
    /// The kind of this device, which is what a job is pinned for.
    pub fn kind(self) -> DeviceKind {
        match self {
            Device::Cpu => DeviceKind::Cpu,
            Device::Cuda(_) => DeviceKind::Cuda,
        }
    }
}

/// The kind of device a job is submitted for (`"cpu"` or `"cuda"` in a job's spec and in the
/// queue's `jobs.device_kind` column): workers claim only jobs of their own kind, because
/// results differ in the last bits from one kind to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    #[default]
    Cpu,
    Cuda,
}

impl DeviceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Cuda => "cuda",
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A device kind that is not `cpu` or `cuda`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown device kind {0:?}: expected cpu or cuda")]
pub struct UnknownDeviceKind(pub String);

impl FromStr for DeviceKind {
    type Err = UnknownDeviceKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" => Ok(DeviceKind::Cuda),
            other => Err(UnknownDeviceKind(other.to_string())),
        }
    }
}

/// Numeric precision a model runs in (`--precision`, and a job's pinned `precision`). Written
/// as `"fp32"`/`"fp16"`; read as [`FromStr`] reads it, so a spec keeps parsing whatever
/// spelling it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// The model as it is (float32).
    #[default]
    Fp32,
    /// The model converted to float16 when it is loaded.
    Fp16,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A precision that is not `fp32` or `fp16`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision {0:?}: expected fp32 or fp16")]
pub struct UnknownPrecision(pub String);

impl FromStr for Precision {
    type Err = UnknownPrecision;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float32" => Ok(Precision::Fp32),
            "fp16" | "float16" => Ok(Precision::Fp16),
            _ => Err(UnknownPrecision(s.to_string())),
        }
    }
}

impl Serialize for Precision {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Precision {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Kinds of non-video streams that are copied through, and that a user may drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    Audio,
    Subtitle,
    Data,
    Attachment,
}

impl StreamKind {
    pub const ALL: [StreamKind; 4] = [
        StreamKind::Audio,
        StreamKind::Subtitle,
        StreamKind::Data,
        StreamKind::Attachment,
    ];

    /// ffmpeg's stream specifier letter (`-map 0:a`).
    pub fn specifier(self) -> &'static str {
        match self {
            StreamKind::Audio => "a",
            StreamKind::Subtitle => "s",
            StreamKind::Data => "d",
            StreamKind::Attachment => "t",
        }
    }

    /// The kind of an ffprobe `codec_type`.
    pub fn from_codec_type(codec_type: &str) -> Option<StreamKind> {
        match codec_type {
            "audio" => Some(StreamKind::Audio),
            "subtitle" => Some(StreamKind::Subtitle),
            "data" => Some(StreamKind::Data),
            "attachment" => Some(StreamKind::Attachment),
            _ => None,
        }
    }
}

impl FromStr for StreamKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "audio" | "a" => Ok(StreamKind::Audio),
            "subtitle" | "subtitles" | "s" => Ok(StreamKind::Subtitle),
            "data" | "d" => Ok(StreamKind::Data),
            "attachment" | "attachments" | "t" => Ok(StreamKind::Attachment),
            other => Err(format!(
                "unknown stream kind '{other}': expected audio, subtitle, data or attachment"
            )),
        }
    }
}

impl fmt::Display for StreamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StreamKind::Audio => "audio",
            StreamKind::Subtitle => "subtitle",
            StreamKind::Data => "data",
            StreamKind::Attachment => "attachment",
        })
    }
}

/// How the styled video is encoded. A job pins these so that chunks made on different machines
/// assemble into one consistent stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodeSettings {
    /// ffmpeg encoder name (`libx264`, `libx264rgb`, `ffv1`, `libx265`, ...), or
    /// [`AUTO_CODEC`]: the output container's default, chosen when the job is planned.
    pub codec: String,
    /// Constant rate factor, for the encoders that have one. `None`: fresco's default for the
    /// codec, chosen when the job is planned (the scales differ: x264's 18 is not VP9's).
    pub crf: Option<u8>,
    /// Encoder preset, for the encoders that have one. `None`: the codec's default.
    pub preset: Option<String>,
    /// Output pixel format; `None` picks one from the codec and the input's bit depth.
    pub pix_fmt: Option<String>,
    /// Encoder threads; `None` lets the encoder decide. Pin it for reproducible bitstreams.
    pub threads: Option<u32>,
}

/// The codec name that lets the output container choose: VP9 for WebM, H.264 elsewhere.
pub const AUTO_CODEC: &str = "auto";

impl Default for EncodeSettings {
    fn default() -> Self {
        EncodeSettings {
            codec: AUTO_CODEC.into(),
            crf: None,
            preset: None,
            pix_fmt: None,
            threads: None,
        }
    }
}

/// ffmpeg's hardware decoding methods (`-hwaccel`) that `--hwaccel` accepts besides `none`
/// (software decoding, the default). `auto` lets ffmpeg pick one and fall back to software
/// when none works; a named one must work, or the job fails when it is planned.
pub const HWACCELS: &[&str] = &[
    "auto",
    "cuda",
    "vaapi",
    "qsv",
    "vdpau",
    "vulkan",
    "drm",
    "opencl",
    "videotoolbox",
    "d3d11va",
    "dxva2",
];

/// Parses `--hwaccel`: `none` (software) is `None`, a method of [`HWACCELS`] is itself.
pub fn parse_hwaccel(text: &str) -> Result<Option<String>, String> {
    let lower = text.to_ascii_lowercase();
    if lower == "none" {
        Ok(None)
    } else if HWACCELS.contains(&lower.as_str()) {
        Ok(Some(lower))
    } else {
        Err(format!(
            "unknown hardware decoding method '{text}': expected none, {}",
            HWACCELS.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hwaccel_names_parse_and_none_is_software() {
        assert_eq!(parse_hwaccel("none"), Ok(None));
        assert_eq!(parse_hwaccel("CUDA"), Ok(Some("cuda".into())));
        assert_eq!(parse_hwaccel("auto"), Ok(Some("auto".into())));
        let err = parse_hwaccel("nvdec").unwrap_err();
        assert!(err.contains("'nvdec'") && err.contains("cuda"), "{err}");
    }

    #[test]
    fn device_parses_cpu_and_cuda_ordinals() {
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert_eq!("cuda:3".parse::<Device>().unwrap(), Device::Cuda(3));
        assert!("cuda:x".parse::<Device>().is_err());
        assert!("tpu".parse::<Device>().is_err());
    }

    #[test]
    fn ranges_and_orders_round_trip_through_text() {
        for r in [InputRange::Byte, InputRange::Unit] {
            assert_eq!(r.to_string().parse::<InputRange>().unwrap(), r);
        }
        assert_eq!("BGR".parse::<ChannelOrder>().unwrap(), ChannelOrder::Bgr);
        assert!("0-100".parse::<InputRange>().is_err());
    }

    #[test]
    fn stream_kinds_parse_names_and_letters() {
        assert_eq!(
            "subtitle".parse::<StreamKind>().unwrap(),
            StreamKind::Subtitle
        );
        assert_eq!("a".parse::<StreamKind>().unwrap(), StreamKind::Audio);
        assert_eq!(StreamKind::from_codec_type("data"), Some(StreamKind::Data));
        assert_eq!(StreamKind::from_codec_type("video"), None);
    }
}
