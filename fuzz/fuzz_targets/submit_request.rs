//! A job submission's body, as `POST /v1/jobs` reads it: JSON into `SubmitRequest`, the
//! field checks, and the path rules on its input and output. Nothing may panic.
#![no_main]

use fresco_wire::limits::PathRules;
use fresco_wire::SubmitRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<SubmitRequest>(data) else {
        return;
    };
    if request.validate().is_err() {
        return;
    }
    let _ = request.model_ref();
    let rules = PathRules::default()
        .allow("/nonexistent-fuzz-root/data")
        .and_then(|r| r.allow("az://videos/in"))
        .and_then(|r| r.allow("s3://bucket"))
        .expect("fixed roots are valid");
    for (field, text) in [("input", &request.input), ("output", &request.output)] {
        let _ = rules.check(field, text);
        let _ = PathRules::any_local_path().check(field, text);
    }
});
