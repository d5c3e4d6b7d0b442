//! An operator's model that keeps its weights in an external file beside it (saved by python
//! `onnx` at test time) loads from another working directory, with the weights from the
//! model's own folder: a decoy file of the same name in the working directory is not read.
//! The same file submitted as a job's model is refused by the static inspection.
//!
//! Needs python3 with `onnx` (`.fresco/venv` or on PATH) and ONNX Runtime, as the other
//! real-model tests do.

use std::path::{Path, PathBuf};
use std::process::Command;

use fresco_core::ModelChoice;
use fresco_infer::inspect::ModelBudget;
use fresco_infer::registry::Registry;
use fresco_infer::{onnx_build, EngineOptions};
use fresco_pipeline::{check_model, load_model, ModelError};

fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.fresco/venv/bin/python3");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Saves `source` as `target` with every tensor in `weights` beside it.
fn save_with_external_data(source: &Path, target: &Path, weights: &str) {
    let script = r#"
import sys, onnx
from onnx.external_data_helper import convert_model_to_external_data
model = onnx.load(sys.argv[1])
convert_model_to_external_data(model, all_tensors_to_one_file=True,
                               location=sys.argv[3], size_threshold=0)
onnx.save_model(model, sys.argv[2])
"#;
    let out = Command::new(python())
        .args(["-c", script])
        .arg(source)
        .arg(target)
        .arg(weights)
        .output()
        .expect("python3 with onnx is needed (scripts/setup.sh makes .fresco/venv)");
    assert!(
        out.status.success(),
        "python could not save the model: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn style(engine: &mut fresco_infer::Engine) -> Vec<u8> {
    let (w, h) = (8u32, 4u32);
    let input: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 256) as u8).collect();
    let mut output = vec![0u8; input.len()];
    engine
        .style_rgb(w, h, &input, &mut output)
        .expect("the model runs");
    output
}

#[test]
fn operator_external_data_resolves_beside_the_model_not_in_the_working_directory() {
    if let Err(e) = fresco_infer::runtime::environment() {
        panic!("ONNX Runtime cannot be loaded: {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let (models, elsewhere) = (root.join("models"), root.join("elsewhere"));
    std::fs::create_dir_all(&models).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let source = root.join("vintage.onnx");
    std::fs::write(&source, onnx_build::vintage_filter_model()).unwrap();
    // "candy" is a zoo style: the registry finds candy.onnx in the model folder.
    let model = models.join("candy.onnx");
    save_with_external_data(&source, &model, "candy.weights");
    let weights = std::fs::read(models.join("candy.weights")).expect("external weights saved");
    assert!(std::fs::read(&model).unwrap().len() < weights.len() + 2000);
    // A decoy of the same name and size in the working directory, all zero weights.
    std::fs::write(elsewhere.join("candy.weights"), vec![0u8; weights.len()]).unwrap();
    std::env::set_current_dir(&elsewhere).unwrap();

    let registry = Registry::new(
        Some(models.clone()),
        root.join("cache"),
        "http://127.0.0.1:9".into(),
    );
    let options = EngineOptions {
        threads: Some(1),
        ..EngineOptions::default()
    };
    let choice = ModelChoice::Style("candy".into());
    let mut loaded = load_model(&choice, &registry, &options, false).expect("the style loads");
    let vintage = ModelChoice::Style("vintage".into());
    let mut builtin = load_model(&vintage, &registry, &options, false).unwrap();
    assert_eq!(
        style(&mut loaded.engine),
        style(&mut builtin.engine),
        "the weights were not read from the model's folder"
    );
    // The server's static check: an operator's style passes, the same file as a job's model
    // does not.
    check_model(&choice, &registry, false, &ModelBudget::default()).expect("an operator style");
    let submitted = ModelChoice::File(model.clone());
    match check_model(&submitted, &registry, false, &ModelBudget::default()) {
        Err(ModelError::Inspect(e)) => {
            assert_eq!(e.code(), "model-external-data");
            assert!(e.to_string().contains("\"candy.weights\""), "{e}");
        }
        other => panic!("a submitted model with external data passed: {other:?}"),
    }
}
