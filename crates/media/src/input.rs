//! The options every ffmpeg and ffprobe run puts before a user's file, so that the tool can open
//! that one file and nothing else.
//!
//! Some demuxers open further files named inside the input: an HLS playlist or a DASH manifest
//! opens its segments, an ffconcat script its entries, an image-sequence pattern
//! (`frame%03d.png`) every file that matches, an IMF composition its assets, a VobSub index the
//! `.sub` beside it, an SDP file network streams. ffmpeg picks a demuxer from the file's
//! content, not its name, so a playlist saved as `clip.mp4` is read as a playlist. Two of
//! ffmpeg's own input options close this, and [`input_args`] gives both before every `-i`:
//!
//! - `-protocol_whitelist file`: the input and anything it opens must be local files (no
//!   `http:`, `concat:`, `data:`, `subfile:`, `pipe:` ...);
//! - `-format_whitelist` with [`ALLOWED_DEMUXERS`]: single-file containers and elementary
//!   streams only. ffmpeg refuses any other demuxer before it reads a header; nested opens
//!   inherit both lists.
//!
//! Debian's ffmpeg 5.1 honours both and refuses with `[hls @ 0x...] Format not on whitelist
//! '...'` or `Protocol 'concat' not on whitelist 'file'!` (exit 1, "Invalid argument"):
//! [`refusal`] recognises these and names what the file is. The MOV demuxer's external data
//! references (`dref`) stay off, as they are by default (`-enable_drefs 0`).
//!
//! fresco's own pipes (`pipe:0` of NUT frames) and its own ffconcat list of scored chunks are
//! opened with [`own_pipe_args`] and [`own_concat_args`], which allow exactly those.

use std::ffi::OsString;
use std::path::Path;

/// The demuxers (ffmpeg's names) a user's file may be read with: containers that hold their
/// streams in the one file, and elementary video streams. Audio-only formats are here so that
/// such a file is refused with "no video stream" rather than as an unknown format.
pub const ALLOWED_DEMUXERS: &[&str] = &[
    // Containers.
    "mov",
    "mp4",
    "matroska",
    "webm",
    "avi",
    "flv",
    "mpegts",
    "mpeg",
    "nut",
    "ogg",
    "asf",
    "mxf",
    "rm",
    "dv",
    "gxf",
    "wtv",
    "gif",
    "apng",
    // Elementary video streams.
    "h264",
    "hevc",
    "m4v",
    "mpegvideo",
    "vc1",
    "ivf",
    "obu",
    "av1",
    "h261",
    "h263",
    "dirac",
    "mjpeg",
    "yuv4mpegpipe",
    // One picture, read from the one file (an image named by a pattern is `image2`, refused).
    "png_pipe",
    "jpeg_pipe",
    "bmp_pipe",
    "tiff_pipe",
    "webp_pipe",
    // Audio alone.
    "mp3",
    "aac",
    "wav",
    "flac",
    "ac3",
    "eac3",
    "aiff",
    "w64",
];

/// `-protocol_whitelist file -format_whitelist ... -i PATH`: the input options of a user's
/// file. Every ffmpeg and ffprobe run over user input builds its `-i` here.
pub fn input_args(path: &Path) -> Vec<OsString> {
    vec![
        OsString::from("-protocol_whitelist"),
        OsString::from("file"),
        OsString::from("-format_whitelist"),
        OsString::from(ALLOWED_DEMUXERS.join(",")),
        OsString::from("-i"),
        input_name(path),
    ]
}

/// The path as ffmpeg must see it: a relative path whose first segment has a colon would be
/// read as a protocol (`concat:a.mp4|b.mp4`), so it is named as a file (`file:concat:...`).
pub fn input_name(path: &Path) -> OsString {
    let text = path.as_os_str();
    let first = path
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    if !path.is_absolute() && first.contains(':') {
        let mut named = OsString::from("file:");
        named.push(text);
        named
    } else {
        text.to_os_string()
    }
}

/// `-f nut -protocol_whitelist pipe -format_whitelist nut -i pipe:0`: fresco's own frames on
/// the encoder's stdin.
pub fn own_pipe_args() -> Vec<OsString> {
    [
        "-f",
        "nut",
        "-protocol_whitelist",
        "pipe",
        "-format_whitelist",
        "nut",
        "-i",
        "pipe:0",
    ]
    .iter()
    .map(OsString::from)
    .collect()
}

/// `-f concat -safe 0 -protocol_whitelist file -format_whitelist concat,nut -i LIST`: fresco's
/// own list of its scored chunks (NUT files it wrote), the one use of the concat demuxer.
pub fn own_concat_args(list: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "-f",
        "concat",
        "-safe",
        "0",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        "concat,nut",
        "-i",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(list.as_os_str().to_os_string());
    args
}

/// What a refused input is, from the tool's stderr; `None` when the run failed otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The content is read by a demuxer that is not allowed (ffmpeg's name for it).
    Format(String),
    /// The name uses a protocol other than `file`.
    Protocol(String),
}

impl Refusal {
    /// Why the file is refused, for a message that starts with its name.
    pub fn reason(&self) -> String {
        match self {
            Refusal::Format(name) => match describe_demuxer(name) {
                Some(what) => format!(
                    "is {what}, which can open other files; fresco reads only single-file \
                     containers (MP4/MOV, Matroska/WebM, AVI, MPEG-TS, ...)"
                ),
                None => format!(
                    "is in the '{}' format, which fresco does not read; fresco reads only \
                     single-file video containers (MP4/MOV, Matroska/WebM, AVI, MPEG-TS, ...)",
                    name.escape_default()
                ),
            },
            Refusal::Protocol(name) => format!(
                "names the '{}' protocol; fresco reads only the one local file it is given",
                name.escape_default()
            ),
        }
    }
}

/// What the refused demuxers that open other files read.
fn describe_demuxer(name: &str) -> Option<&'static str> {
    Some(match name {
        "hls" | "applehttp" => "an HLS playlist",
        "dash" => "a DASH manifest",
        "webm_dash_manifest" => "a WebM DASH manifest",
        "concat" => "an ffconcat script",
        "image2" => "an image-sequence pattern",
        "imf" => "an IMF composition",
        "vobsub" => "a VobSub index",
        "sdp" | "rtp" | "rtsp" | "sap" => "a network session description",
        "lavfi" => "a filter graph",
        _ => return None,
    })
}

/// Recognises ffmpeg's refusals in a stderr tail: `[hls @ 0x55d...] Format not on whitelist
/// 'mov,...'` (the demuxer's name is the context of the line) and `Protocol 'concat' not on
/// whitelist 'file'!`.
pub fn refusal(stderr: &str) -> Option<Refusal> {
    for line in stderr.lines() {
        let line = line.trim();
        if line.contains("Format not on whitelist") {
            let name = line
                .strip_prefix('[')
                .and_then(|rest| rest.split_once(" @ "))
                .map(|(name, _)| name.to_string())
                .unwrap_or_else(|| "unknown".into());
            return Some(Refusal::Format(name));
        }
        if let Some(at) = line.find("Protocol '") {
            let rest = &line[at + "Protocol '".len()..];
            if let Some((name, tail)) = rest.split_once('\'') {
                if tail.contains("not on whitelist") {
                    return Some(Refusal::Protocol(name.to_string()));
                }
            }
        }
    }
    None
}

/// Whether an argument list gives a user's file with the restrictions of [`input_args`]: each
/// `-i` is preceded by both whitelists (for tests of every command builder).
pub fn every_input_is_restricted(args: &[OsString]) -> bool {
    let mut protocol = false;
    let mut format = false;
    for (i, arg) in args.iter().enumerate() {
        match arg.to_str() {
            Some("-protocol_whitelist") => protocol = args.get(i + 1).is_some(),
            Some("-format_whitelist") => format = args.get(i + 1).is_some(),
            Some("-i") => {
                if !(protocol && format) {
                    return false;
                }
                protocol = false;
                format = false;
            }
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_named_from_ffmpegs_messages() {
        let hls = "[hls @ 0x559d5a7ea5c0] Format not on whitelist 'mov,matroska'\n\
                   data/clip.mp4: Invalid argument";
        assert_eq!(refusal(hls), Some(Refusal::Format("hls".into())));
        assert!(Refusal::Format("hls".into())
            .reason()
            .starts_with("is an HLS playlist, which can open other files"));
        let concat = "[concat @ 0x559cc42a2c40] Protocol 'concat' not on whitelist 'file'!";
        assert_eq!(refusal(concat), Some(Refusal::Protocol("concat".into())));
        assert_eq!(
            refusal("[image2 @ 0x1] Format not on whitelist 'x'"),
            Some(Refusal::Format("image2".into()))
        );
        assert!(Refusal::Format("tty".into())
            .reason()
            .contains("the 'tty' format, which fresco does not read"));
        assert_eq!(refusal("moov atom not found\nInvalid data"), None);
    }

    #[test]
    fn inputs_get_both_whitelists_and_colons_are_files() {
        let args = input_args(Path::new("/data/clip.mp4"));
        assert!(every_input_is_restricted(&args));
        assert_eq!(args.last().unwrap(), "/data/clip.mp4");
        let whitelist = args[3].to_str().unwrap();
        for refused in [
            "hls", "dash", "concat", "image2", "imf", "vobsub", "sdp", "lavfi",
        ] {
            assert!(!whitelist.split(',').any(|d| d == refused), "{refused}");
        }
        assert_eq!(
            input_name(Path::new("concat:a.mp4|b.mp4")),
            "file:concat:a.mp4|b.mp4"
        );
        assert_eq!(input_name(Path::new("clip.mp4")), "clip.mp4");
        assert_eq!(input_name(Path::new("/x/a:b.mp4")), "/x/a:b.mp4");
        let bare = ["-i".into(), "/data/clip.mp4".into()];
        assert!(!every_input_is_restricted(&bare));
    }
}
