//! One submission path: `fresco jobs submit` and the HTTP API (`POST /v1/jobs`) make the same
//! checks before queueing (`fresco_submit`), so the same bad inputs are refused by both with
//! the same message: a missing input, a file that is not a video, an option the job cannot
//! have (fp16 on the CPU), an output that exists.

mod common;

use common::api::{cli_message, Api};
use common::jobs::sqlite_queue;
use common::*;

#[test]
fn the_cli_and_the_api_refuse_the_same_inputs_in_the_same_words() {
    if let Err(e) = fresco_infer::runtime::environment() {
        panic!("ONNX Runtime cannot be loaded, so the vintage style cannot be checked: {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    make_h264(&clip, "64x48", 25, 0.2);
    let notes = dir.path().join("notes.mp4");
    std::fs::write(&notes, "not a video at all").unwrap();
    let existing = dir.path().join("existing.mp4");
    std::fs::write(&existing, "x").unwrap();
    let missing = dir.path().join("missing.mp4");
    let out = dir.path().join("out.mp4");
    let queue = sqlite_queue(dir.path());
    let api = Api::submitter(dir.path());

    // (input, output, precision, the API's code, the CLI's exit code)
    let cases = [
        (&missing, &out, None, "input-missing", 3),
        (&notes, &out, None, "input-not-media", 4),
        (&clip, &out, Some("fp16"), "precision-needs-cuda", 2),
        (&clip, &existing, None, "output-exists", 5),
    ];
    for (input, output, precision, code, exit) in cases {
        let mut args = vec![s("jobs"), s("submit"), p(input), s("-o"), p(output)];
        args.extend([s("--style"), s("vintage"), s("--no-download")]);
        if let Some(precision) = precision {
            args.extend([s("--precision"), s(precision)]);
        }
        args.extend(queue.args());
        let cli = fresco(args);
        assert_eq!(cli.code, Some(exit), "{code}: {}", cli.dump());

        let mut body = serde_json::json!({
            "input": input.display().to_string(),
            "output": output.display().to_string(),
            "style": "vintage",
            "device": "cpu",
        });
        if let Some(precision) = precision {
            body["precision"] = precision.into();
        }
        let (status, api_code, api_message) = api.refuse(&body);
        assert!((400..500).contains(&status), "{code}: {status}");
        assert_eq!(api_code, code);
        assert_eq!(
            cli_message(&cli),
            api_message,
            "{code}: the two entrances disagree"
        );
    }
    // Nothing was queued by either.
    let listed = fresco([&[s("jobs"), s("list"), s("--json")][..], &queue.args()].concat());
    assert_eq!(listed.ok().json(), serde_json::json!([]));
}
