//! Still images and folders of them, the `--json` report, and `fresco models list`.

mod common;

use common::*;
use std::path::Path;

/// A testsrc2 still of `size` as PNG.
fn make_png(path: &Path, size: &str) {
    let src = format!("testsrc2=size={size}");
    ffmpeg(
        &["-f", "lavfi", "-i", &src, "-frames:v", "1", "-update", "1"],
        path,
    );
}

#[test]
fn png_to_png_with_vintage_keeps_the_size_and_changes_the_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("still.png");
    make_png(&input, "64x48");
    let output = dir.path().join("styled.png");
    fresco([
        s("run"),
        p(&input),
        s("-o"),
        p(&output),
        s("--style"),
        s("vintage"),
    ])
    .ok();
    assert_eq!(displayed_size(&output), (64, 48));
    let (_, _, a) = decode_rgb(&input);
    let (_, _, b) = decode_rgb(&output);
    let db = psnr(&a[0], &b[0]);
    assert!(
        db < 25.0,
        "vintage barely changed the picture (PSNR {db:.1} dB)"
    );
    // Sepia: the red channel is at least the blue one everywhere.
    let bluer = b[0].chunks(3).filter(|px| px[2] > px[0]).count();
    assert_eq!(
        bluer, 0,
        "{bluer} pixels are bluer than red after the sepia filter"
    );
}

#[test]
fn png_through_identity_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("still.png");
    make_png(&input, "50x30");
    let model = identity_model(dir.path());
    let output = dir.path().join("same.png");
    fresco([
        s("run"),
        p(&input),
        s("-o"),
        p(&output),
        s("--model"),
        p(&model),
    ])
    .ok();
    assert_eq!(displayed_size(&output), (50, 30));
    assert_eq!(
        decode_rgb(&input).2,
        decode_rgb(&output).2,
        "identity changed pixels"
    );
}

/// A picture decoded by ffmpeg to rgb24 through `filter`.
fn decode_filtered(path: &Path, filter: &str) -> Vec<u8> {
    tool_bytes(
        "ffmpeg",
        &[
            s("-v"),
            s("error"),
            s("-i"),
            p(path),
            s("-vf"),
            s(filter),
            s("-f"),
            s("rawvideo"),
            s("-pix_fmt"),
            s("rgb24"),
            s("-"),
        ],
    )
}

#[test]
fn jpeg_exif_orientation_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.jpg");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48",
            "-frames:v",
            "1",
            "-q:v",
            "2",
            "-pix_fmt",
            "yuvj444p",
            "-update",
            "1",
        ],
        &plain,
    );
    // Orientation 6: the stored picture must be turned 90 degrees clockwise to stand upright.
    let tagged = dir.path().join("tagged.jpg");
    std::fs::write(
        &tagged,
        with_exif_orientation(&std::fs::read(&plain).unwrap(), 6),
    )
    .unwrap();
    let model = identity_model(dir.path());
    let out = dir.path().join("upright.png");
    fresco([
        s("run"),
        p(&tagged),
        s("-o"),
        p(&out),
        s("--model"),
        p(&model),
    ])
    .ok();
    assert_eq!(
        displayed_size(&out),
        (48, 64),
        "EXIF orientation 6 was not applied"
    );
    let styled = decode_rgb(&out).2.remove(0);
    let clockwise = psnr(&styled, &decode_filtered(&plain, "transpose=clock"));
    let counter = psnr(&styled, &decode_filtered(&plain, "transpose=cclock"));
    assert!(
        clockwise > 30.0 && clockwise > counter + 5.0,
        "turned the wrong way: {clockwise:.1} dB clockwise, {counter:.1} dB counter-clockwise"
    );
}

#[test]
fn a_folder_of_images_goes_to_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("photos");
    std::fs::create_dir(&src).unwrap();
    make_png(&src.join("one.png"), "48x32");
    make_png(&src.join("two.png"), "32x48");
    std::fs::write(src.join("readme.txt"), "not an image\n").unwrap();
    let dst = dir.path().join("styled");
    fresco([
        s("run"),
        p(&src),
        s("-o"),
        p(&dst),
        s("--style"),
        s("vintage"),
    ])
    .ok();
    assert!(dst.is_dir(), "the output folder was not created");
    assert_eq!(dir_names(&dst), ["one.png", "two.png"]);
    assert_eq!(displayed_size(&dst.join("one.png")), (48, 32));
    assert_eq!(displayed_size(&dst.join("two.png")), (32, 48));
    assert_ne!(
        decode_rgb(&src.join("one.png")).2,
        decode_rgb(&dst.join("one.png")).2
    );
}

#[test]
fn json_report_describes_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mp4");
    make_h264(&input, "64x48", 25, 0.6);
    let want_frames = frame_md5s(&input).len() as u64;
    let model = identity_model(dir.path());
    let output = dir.path().join("clip-out.mkv");
    let out = fresco([
        s("run"),
        p(&input),
        s("-o"),
        p(&output),
        s("--model"),
        p(&model),
        s("--json"),
    ])
    .ok();
    let json = out.json();
    assert!(json.is_object(), "{json}");
    assert_eq!(json["frames"].as_u64(), Some(want_frames), "{json}");
    let digest = json["model_digest"].as_str().unwrap_or_default();
    assert!(
        digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()),
        "model_digest is not 64 hex chars: {json}"
    );
    assert_eq!(
        digest.to_lowercase(),
        sha256(&model),
        "model_digest is not the model file's sha256"
    );
    assert!(
        json["model"].is_string() && json["engine"].is_string(),
        "{json}"
    );
    assert!(
        json["seconds"].is_number() && json["fps"].is_number(),
        "{json}"
    );
    let outputs = json["outputs"]
        .as_array()
        .unwrap_or_else(|| panic!("no outputs array: {json}"));
    assert_eq!(outputs.len(), 1, "{json}");
    let o = &outputs[0];
    let reported = Path::new(o["output"].as_str().unwrap_or_default());
    assert!(
        reported == output || reported.canonicalize().ok() == output.canonicalize().ok(),
        "output {reported:?} is not {output:?}"
    );
    assert!(
        o["input"]
            .as_str()
            .unwrap_or_default()
            .ends_with("clip.mp4"),
        "{json}"
    );
    assert_eq!(o["frames"].as_u64(), Some(want_frames), "{json}");
    assert_eq!(
        (o["width"].as_u64(), o["height"].as_u64()),
        (Some(64), Some(48)),
        "{json}"
    );
    assert!(o["notes"].is_array() && o["warnings"].is_array(), "{json}");
    assert_eq!(frame_md5s(&output).len() as u64, want_frames);
}

/// `fresco models list | head -1`: a reader that stops early ends the listing quietly (SIGPIPE,
/// as for `ls`), where `println!` used to panic on the closed pipe ("failed printing to
/// stdout"), which under `set -o pipefail` failed the demo script.
#[test]
fn a_listing_whose_reader_stops_early_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    for args in [&["models", "list"][..], &["jobs", "list"][..]] {
        let mut child = fresco_cmd()
            .args(args)
            .env("FRESCO_CACHE_DIR", dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the listing is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("failed printing"),
            "fresco {args:?} complained of the closed pipe:\n{stderr}"
        );
        assert!(
            out.status.signal() == Some(libc::SIGPIPE) || out.status.success(),
            "fresco {args:?} ended with {:?}:\n{stderr}",
            out.status
        );
    }
}

#[test]
fn models_list_names_all_styles_and_marks_vintage_built_in() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("FRESCO_CACHE_DIR", p(dir.path()))];
    let out = fresco_env([s("models"), s("list")], &env).ok();
    let names = [
        "mosaic",
        "candy",
        "udnie",
        "rain-princess",
        "pointilism",
        "vintage",
    ];
    for name in names {
        assert!(
            out.stdout.contains(name),
            "{name} not listed:\n{}",
            out.dump()
        );
    }
    let vintage = out.stdout.lines().find(|l| l.contains("vintage")).unwrap();
    assert!(
        vintage.to_lowercase().contains("built-in"),
        "vintage not labelled built-in: {vintage}"
    );

    let json = fresco_env([s("models"), s("list"), s("--json")], &env)
        .ok()
        .json();
    let text = json.to_string();
    for name in names {
        assert!(
            text.contains(&format!("\"{name}\"")),
            "{name} missing from {json}"
        );
    }
    // Whatever the shape, the entry named vintage says built-in somewhere.
    fn find(v: &serde_json::Value) -> Option<&serde_json::Value> {
        match v {
            serde_json::Value::Object(m)
                if m.get("name").and_then(|n| n.as_str()) == Some("vintage") =>
            {
                Some(v)
            }
            serde_json::Value::Object(m) => m.values().find_map(find),
            serde_json::Value::Array(a) => a.iter().find_map(find),
            _ => None,
        }
    }
    let entry = find(&json).unwrap_or_else(|| panic!("no entry named vintage in {json}"));
    assert!(
        entry.to_string().to_lowercase().contains("built-in"),
        "vintage entry: {entry}"
    );
}
