//! The plan a server checks a records submission with comes from the interface the model file
//! declares, without ONNX Runtime: no session is built (this file holds one test, so no other
//! test's session can move the process's count), the plan is the one a loaded model gives, and
//! a misfit is refused in the same words.

use fresco_infer::onnx_build::constant_classifier_model;
use fresco_infer::EngineOptions;
use fresco_score::{ScoreSettings, Scorer};

#[test]
fn the_declared_plan_builds_no_session_and_matches_the_loaded_one() {
    let model = constant_classifier_model(10);
    let classify = ScoreSettings {
        task: Some("classify".into()),
        ..Default::default()
    };
    let before = fresco_infer::engine::sessions_built();
    let declared = Scorer::plan_declared(&model, "tiny", &classify, None).unwrap();
    let detect = ScoreSettings {
        task: Some("detect".into()),
        detect_format: Some("ssd".into()),
        ..Default::default()
    };
    let refused = Scorer::plan_declared(&model, "tiny", &detect, None)
        .expect_err("one [1, 10] output is no boxes, scores and classes")
        .to_string();
    assert_eq!(
        fresco_infer::engine::sessions_built(),
        before,
        "reading the declared interface built a session"
    );
    let options = EngineOptions {
        threads: Some(1),
        ..EngineOptions::default()
    };
    let loaded = Scorer::new(&model, "tiny", None, &options, &classify, None).unwrap();
    assert_eq!(&declared, loaded.plan());
    let loaded_refusal = match Scorer::new(&model, "tiny", None, &options, &detect, None) {
        Ok(_) => panic!("the loaded model was not refused"),
        Err(e) => e.to_string(),
    };
    assert_eq!(refused, loaded_refusal);
    assert!(
        Scorer::plan_declared(b"not a model", "junk", &classify, None).is_err(),
        "bytes that are no ONNX model are refused"
    );
}
