//! Every ffmpeg command the plan builds opens the user's file with both whitelists (see
//! `fresco_media::input`): the decoder (whole and windowed, with a hardware method), the
//! encoder, a chunk's encoder and the assembly, whose one concat reads fresco's own list.

use std::path::Path;

use fresco_media::input::every_input_is_restricted;
use fresco_media::probe::ProbeReport;
use fresco_pipeline::plan::{video_settings, FrameWindow, VideoOptions};

#[test]
fn every_input_is_opened_with_the_whitelists() {
    let report = ProbeReport::from_json(
        br#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264","width":64,
        "height":48,"pix_fmt":"yuv420p","time_base":"1/12800"},
        {"index":1,"codec_type":"audio","codec_name":"aac"}],
        "format":{"format_name":"mov,mp4","duration":"2.0"}}"#,
    )
    .unwrap();
    let options = VideoOptions {
        hwaccel: Some("cuda".into()),
        ..Default::default()
    };
    let p = video_settings(Path::new("in.mp4"), Path::new("out.mp4"), &report, &options).unwrap();
    let window = FrameWindow::Times {
        seek_secs: 1.0,
        from_secs: Some(1.0),
        to_secs: None,
    };
    for args in [
        p.decoder_args(),
        p.window_decoder_args(Some(&window)),
        p.encoder_args(Path::new("t.mp4")),
        p.chunk_encoder_args(Path::new("c.nut")),
        p.assemble_args(Path::new("list.ffconcat"), 40, Path::new("o.mp4")),
    ] {
        assert!(every_input_is_restricted(&args), "{args:?}");
        assert!(args.iter().any(|a| a == "-i"), "{args:?}");
    }
    let assemble: Vec<String> = p
        .assemble_args(Path::new("list.ffconcat"), 0, Path::new("o.mp4"))
        .iter()
        .map(|a| a.to_string_lossy().into())
        .collect();
    // The one concat: fresco's own list, which may open only NUT chunks.
    assert!(assemble
        .windows(2)
        .any(|w| w == ["-format_whitelist", "concat,nut"]));
    assert_eq!(assemble.iter().filter(|a| *a == "concat").count(), 1);
    // The user's file comes after it, restricted like everywhere else.
    let input_at = assemble.iter().position(|a| a == "in.mp4").unwrap();
    assert_eq!(assemble[input_at - 1], "-i");
    assert_eq!(assemble[input_at - 3], "-format_whitelist");
    assert_eq!(assemble[input_at - 4], "file");
    assert_eq!(assemble[input_at - 5], "-protocol_whitelist");
}
