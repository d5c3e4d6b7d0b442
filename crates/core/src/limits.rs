//! Limits on what a video holds: duration, frames, frame rate, frame size, streams and chapters.
//! The server sets them (`fresco serve --max-input-*`) and they travel in a job's options, so a
//! worker's plan applies them to what its frame scan measures, not only to what a header claims
//! (a live-written Matroska or a raw H.264 stream has no duration in its header). Each breach
//! has a stable code and a message that names the value, the limit and its flag.

use serde::{Deserialize, Serialize};

/// Limits on a video's content. `None` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MediaLimits {
    /// Seconds, from the header or from the frames' timestamps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_seconds: Option<f64>,
    /// Frames of the video stream, counted by decoding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_frames: Option<u64>,
    /// Frames per second over the whole video, measured from the frames' timestamps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_fps: Option<f64>,
    /// Width and height of any frame, in pixels, and their product.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pixels: Option<u64>,
    /// Streams of the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_streams: Option<u64>,
    /// Chapters of the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_chapters: Option<u64>,
}

/// A value over its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LimitBreach {
    /// Stable kebab-case code (`input-too-long`, `input-too-many-frames`, ...).
    pub code: &'static str,
    /// "SUBJECT: the video ...; this server takes at most N (--max-input-...)".
    pub message: String,
}

fn breach(code: &'static str, message: String) -> LimitBreach {
    LimitBreach { code, message }
}

impl MediaLimits {
    /// No limit at all (`fresco run`: the user's own files on their own machine).
    pub fn none() -> Self {
        MediaLimits::default()
    }

    /// Whether any limit is set.
    pub fn is_none(&self) -> bool {
        *self == MediaLimits::none()
    }

    /// A duration; `measured` when it comes from the frames rather than a header.
    pub fn check_seconds(
        &self,
        subject: &str,
        seconds: f64,
        measured: bool,
    ) -> Result<(), LimitBreach> {
        match self.max_seconds {
            Some(max) if !seconds.is_finite() || seconds > max => Err(breach(
                "input-too-long",
                format!(
                    "{subject}: the video lasts {}{seconds:.1} s{}; this server takes at most \
                     {max:.0} s (--max-input-seconds)",
                    if measured { "at least " } else { "" },
                    if measured {
                        " by its frames' timestamps"
                    } else {
                        ""
                    }
                ),
            )),
            _ => Ok(()),
        }
    }

    /// A frame count; `at_least` while a scan is still counting.
    pub fn check_frames(
        &self,
        subject: &str,
        frames: u64,
        at_least: bool,
    ) -> Result<(), LimitBreach> {
        match self.max_frames {
            Some(max) if frames > max => Err(breach(
                "input-too-many-frames",
                format!(
                    "{subject}: the video has {}{frames} frames (counted by decoding); this \
                     server takes at most {max} (--max-input-frames)",
                    if at_least { "at least " } else { "" }
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The frame rate measured over `frames` frames spanning `seconds`.
    pub fn check_fps(&self, subject: &str, frames: u64, seconds: f64) -> Result<(), LimitBreach> {
        let Some(max) = self.max_fps else {
            return Ok(());
        };
        if frames < 2 {
            return Ok(());
        }
        let fps = if seconds > 0.0 {
            (frames - 1) as f64 / seconds
        } else {
            f64::INFINITY
        };
        if fps > max {
            return Err(breach(
                "input-frame-rate-too-high",
                format!(
                    "{subject}: the video has {frames} frames in {seconds:.3} s, {} frames per \
                     second by its timestamps; this server takes at most {max} \
                     (--max-input-fps)",
                    if fps.is_finite() {
                        format!("{fps:.1}")
                    } else {
                        "infinitely many".into()
                    }
                ),
            ));
        }
        Ok(())
    }

    /// A frame size.
    pub fn check_size(&self, subject: &str, width: u32, height: u32) -> Result<(), LimitBreach> {
        self.check_dimensions(subject, "the video", width, height)
    }

    /// A picture's size (an item of a dataset styled at its own size), against the same
    /// limits as a video's frames.
    pub fn check_picture_size(
        &self,
        subject: &str,
        width: u32,
        height: u32,
    ) -> Result<(), LimitBreach> {
        self.check_dimensions(subject, "the picture", width, height)
    }

    fn check_dimensions(
        &self,
        subject: &str,
        noun: &str,
        width: u32,
        height: u32,
    ) -> Result<(), LimitBreach> {
        let too_big = |what: &str, value: u64, max: u64, flag: &str| {
            breach(
                "input-dimensions-too-large",
                format!(
                    "{subject}: {noun} is {width}x{height}; its {what} ({value}) is over this \
                     server's limit of {max} ({flag})"
                ),
            )
        };
        if let Some(max) = self.max_width.filter(|&m| width > m) {
            return Err(too_big(
                "width",
                width.into(),
                max.into(),
                "--max-input-width",
            ));
        }
        if let Some(max) = self.max_height.filter(|&m| height > m) {
            return Err(too_big(
                "height",
                height.into(),
                max.into(),
                "--max-input-height",
            ));
        }
        let pixels = u64::from(width) * u64::from(height);
        if let Some(max) = self.max_pixels.filter(|&m| pixels > m) {
            return Err(too_big("pixel count", pixels, max, "--max-input-pixels"));
        }
        Ok(())
    }

    /// The container's stream count.
    pub fn check_streams(&self, subject: &str, streams: u64) -> Result<(), LimitBreach> {
        match self.max_streams {
            Some(max) if streams > max => Err(breach(
                "input-too-many-streams",
                format!(
                    "{subject}: the file has {streams} streams; this server takes at most {max} \
                     (--max-input-streams)"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The container's chapter count.
    pub fn check_chapters(&self, subject: &str, chapters: u64) -> Result<(), LimitBreach> {
        match self.max_chapters {
            Some(max) if chapters > max => Err(breach(
                "input-too-many-chapters",
                format!(
                    "{subject}: the file has {chapters} chapters; this server takes at most \
                     {max} (--max-input-chapters)"
                ),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaches_name_the_value_the_limit_and_its_flag() {
        let limits = MediaLimits {
            max_seconds: Some(60.0),
            max_frames: Some(100),
            max_fps: Some(120.0),
            max_streams: Some(4),
            max_chapters: Some(10),
            ..MediaLimits::none()
        };
        let e = limits.check_seconds("clip.mkv", 75.0, true).unwrap_err();
        assert_eq!(e.code, "input-too-long");
        assert!(
            e.message
                .contains("at least 75.0 s by its frames' timestamps"),
            "{e}"
        );
        assert!(e.message.contains("--max-input-seconds"), "{e}");
        assert!(limits.check_seconds("x", f64::INFINITY, false).is_err());
        let e = limits.check_frames("raw.h264", 101, true).unwrap_err();
        assert_eq!(e.code, "input-too-many-frames");
        assert!(e.message.contains("at least 101 frames"), "{e}");
        assert!(limits.check_frames("x", 100, false).is_ok());
        let e = limits.check_fps("x", 1001, 1.0).unwrap_err();
        assert_eq!(e.code, "input-frame-rate-too-high");
        assert!(limits.check_fps("x", 2, 0.0).is_err());
        assert!(limits.check_fps("x", 31, 1.0).is_ok());
        assert_eq!(
            limits.check_streams("x", 5).unwrap_err().code,
            "input-too-many-streams"
        );
        let e = limits.check_chapters("bomb.mkv", 100_000).unwrap_err();
        assert_eq!(e.code, "input-too-many-chapters");
        assert!(e.message.contains("100000 chapters"), "{e}");
        assert!(MediaLimits::none().check_chapters("x", u64::MAX).is_ok());
    }

    #[test]
    fn unset_limits_leave_the_json_as_it_was() {
        assert_eq!(serde_json::to_string(&MediaLimits::none()).unwrap(), "{}");
        let back: MediaLimits = serde_json::from_str(r#"{"max_frames":5}"#).unwrap();
        assert_eq!(back.max_frames, Some(5));
    }
}
