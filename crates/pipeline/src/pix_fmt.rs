//! The output's pixel format when the user names none: the input's form is kept where the
//! encoder can carry it.
//!
//! 4:2:0 plays everywhere, so it is the default; but it halves the colour resolution and needs
//! even sizes. An input whose colour is at full resolution (4:4:4 YUV, or RGB) would lose it, and
//! an input of odd width or height would come out one pixel larger on that side (4:2:0 cannot
//! hold an odd size: H.264 and HEVC crop only in whole chroma samples). So for such inputs the
//! default becomes 4:4:4 (`yuv444p`, or `yuv444p10le` for deeper input) when the encoder has a
//! 4:4:4 profile; `--pix-fmt yuv420p` still asks for 4:2:0, padded by repeating the edge pixels.
//! Encoders without 4:4:4 (e.g. `libsvtav1`, `mpeg4`) keep 4:2:0 and pad, with a note.

use fresco_media::probe::StreamInfo;

use crate::plan::{chroma_subsampling, default_pix_fmt};

/// The output pixel format for `codec` when the user names none, and a note for the user when it
/// differs from the codec's usual default because of the input's form.
pub fn choose_default(
    codec: &str,
    deep: bool,
    video: &StreamInfo,
    width: u32,
    height: u32,
) -> (String, Option<String>) {
    let usual = default_pix_fmt(codec, deep);
    if chroma_subsampling(usual) == (1, 1) {
        return (usual.to_string(), None);
    }
    let Some(full) = four_four_four(codec, deep) else {
        return (usual.to_string(), None);
    };
    let input_fmt = video.pix_fmt.as_deref().unwrap_or("");
    let full_chroma = input_is_full_chroma(input_fmt);
    let (sub_w, sub_h) = chroma_subsampling(usual);
    let odd = !width.is_multiple_of(sub_w) || !height.is_multiple_of(sub_h);
    let why = match (full_chroma, odd) {
        (false, false) => return (usual.to_string(), None),
        (true, false) => format!("the input's colour is at full resolution ({input_fmt})"),
        (false, true) => format!("{width}x{height} is an odd size, which {usual} cannot hold"),
        (true, true) => format!(
            "the input's colour is at full resolution ({input_fmt}) and {width}x{height} is an \
             odd size, which {usual} cannot hold"
        ),
    };
    let note = format!(
        "output in {full}, not {usual}: {why} (--pix-fmt {usual} plays on more devices{})",
        if odd { ", padded by one pixel" } else { "" }
    );
    (full.to_string(), Some(note))
}

/// The 4:4:4 format `codec` can encode at this depth, if it has a 4:4:4 profile.
fn four_four_four(codec: &str, deep: bool) -> Option<&'static str> {
    match (codec, deep) {
        // High 4:4:4 (H.264), Main/RExt 4:4:4 (HEVC), VP9 profiles 1 and 3, AV1 High.
        ("libx264" | "libx265" | "libvpx-vp9" | "libaom-av1", false) => Some("yuv444p"),
        ("libx264" | "libx265" | "libvpx-vp9" | "libaom-av1", true) => Some("yuv444p10le"),
        // NVENC's H.264 and HEVC take 8-bit 4:4:4; deeper input keeps NVENC's own default.
        ("h264_nvenc" | "hevc_nvenc", false) => Some("yuv444p"),
        _ => None,
    }
}

/// A pixel format with one colour sample per pixel: 4:4:4 YUV or RGB (not greyscale, which has
/// no colour to keep, nor formats ffprobe did not name).
fn input_is_full_chroma(pix_fmt: &str) -> bool {
    !pix_fmt.is_empty()
        && !pix_fmt.starts_with("gray")
        && !pix_fmt.starts_with("ya")
        && !pix_fmt.starts_with("mono")
        && !pix_fmt.starts_with("pal")
        && chroma_subsampling(pix_fmt) == (1, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(pix_fmt: &str) -> StreamInfo {
        let json = format!(
            r#"{{"streams":[{{"index":0,"codec_type":"video","width":8,"height":8,"pix_fmt":"{pix_fmt}"}}]}}"#
        );
        fresco_media::probe::ProbeReport::from_json(json.as_bytes())
            .unwrap()
            .streams
            .remove(0)
    }

    #[test]
    fn four_four_four_and_odd_inputs_keep_their_form() {
        let (fmt, note) = choose_default("libx264", false, &stream("yuv444p"), 320, 240);
        assert_eq!(fmt, "yuv444p");
        assert!(note.unwrap().contains("full resolution (yuv444p)"));
        let (fmt, note) = choose_default("libx264", false, &stream("yuv420p"), 321, 241);
        assert_eq!(fmt, "yuv444p");
        assert!(note.unwrap().contains("321x241 is an odd size"));
        let (fmt, _) = choose_default("libx264", true, &stream("yuv444p10le"), 321, 240);
        assert_eq!(fmt, "yuv444p10le");
        let (fmt, _) = choose_default("libx264", false, &stream("rgb24"), 64, 48);
        assert_eq!(fmt, "yuv444p");
    }

    #[test]
    fn ordinary_inputs_and_encoders_without_444_keep_420() {
        assert_eq!(
            choose_default("libx264", false, &stream("yuv420p"), 320, 240),
            ("yuv420p".to_string(), None)
        );
        assert_eq!(
            choose_default("libx264", false, &stream("gray"), 320, 240),
            ("yuv420p".to_string(), None)
        );
        assert_eq!(
            choose_default("libx264", false, &stream("yuv422p"), 320, 240),
            ("yuv420p".to_string(), None)
        );
        assert_eq!(
            choose_default("libsvtav1", false, &stream("yuv444p"), 321, 241),
            ("yuv420p".to_string(), None)
        );
        // Encoders whose default is already full-resolution are left alone.
        assert_eq!(
            choose_default("ffv1", false, &stream("yuv444p"), 321, 241).0,
            "bgr0"
        );
    }

    #[test]
    fn an_odd_rotated_444_input_keeps_its_displayed_size_in_the_plan() {
        let json = r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264",
            "width":321,"height":241,"pix_fmt":"yuv444p","time_base":"1/12800",
            "side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]}],
            "format":{"format_name":"mov,mp4","duration":"2.0"}}"#;
        let report = fresco_media::probe::ProbeReport::from_json(json.as_bytes()).unwrap();
        let plan = crate::plan::video_settings(
            std::path::Path::new("in.mp4"),
            std::path::Path::new("out.mp4"),
            &report,
            &crate::VideoOptions::default(),
        )
        .unwrap();
        assert_eq!((plan.width, plan.height), (241, 321));
        assert_eq!((plan.out_width, plan.out_height), (241, 321));
        assert_eq!(plan.out_pix_fmt, "yuv444p");
    }
}
