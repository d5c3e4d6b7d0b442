//! `TensorEngine`: a model of any shape, one float input in, every output out as f32 (integer
//! outputs converted), in declared order; models it cannot feed are refused when loaded.

use fresco_infer::onnx_build::{sym, tensor_i64, Dim, GraphBuilder, DT_INT64};
use fresco_infer::{EngineError, EngineOptions, TensorEngine};
use prost::Message;

fn options() -> EngineOptions {
    EngineOptions {
        threads: Some(1),
        ..EngineOptions::default()
    }
}

#[test]
fn every_output_comes_back_named_shaped_and_as_f32() {
    // out "doubled" = input + input ([N,2]); out "ids" = an int64 constant [3].
    let mut model = GraphBuilder::new("two-outputs")
        .input("x", &[sym("N"), Dim::Fixed(2)])
        .output("doubled", &[sym("N"), Dim::Fixed(2)])
        .output("ids", &[Dim::Fixed(3)])
        .initializer(tensor_i64("ids_value", &[3], &[7, -1, 40]))
        .node("Add", &["x", "x"], &["doubled"], vec![])
        .node("Identity", &["ids_value"], &["ids"], vec![])
        .build();
    let ids = &mut model.graph.as_mut().unwrap().output[1];
    ids.r#type
        .as_mut()
        .unwrap()
        .tensor_type
        .as_mut()
        .unwrap()
        .elem_type = DT_INT64;
    let bytes = model.encode_to_vec();
    let mut engine = TensorEngine::from_bytes_in(&bytes, "two-outputs", &options(), None).unwrap();
    assert_eq!(engine.input().name, "x");
    assert_eq!(engine.input().shape, vec![-1, 2]);
    let names: Vec<&str> = engine.outputs().iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["doubled", "ids"]);
    let out = engine.run(&[2, 2], &[1.0, 2.0, 3.0, 4.5]).unwrap();
    assert_eq!(out[0].name, "doubled");
    assert_eq!(out[0].shape, vec![2, 2]);
    assert_eq!(out[0].values, vec![2.0, 4.0, 6.0, 9.0]);
    assert_eq!(out[1].name, "ids");
    assert_eq!(out[1].shape, vec![3]);
    assert_eq!(out[1].values, vec![7.0, -1.0, 40.0]);
}

#[test]
fn models_with_more_than_one_input_are_refused() {
    let bytes = GraphBuilder::new("two-inputs")
        .input("a", &[Dim::Fixed(1)])
        .input("b", &[Dim::Fixed(1)])
        .output("sum", &[Dim::Fixed(1)])
        .node("Add", &["a", "b"], &["sum"], vec![])
        .to_bytes();
    let err = TensorEngine::from_bytes_in(&bytes, "two-inputs", &options(), None).unwrap_err();
    assert!(matches!(err, EngineError::InvalidModel { .. }), "{err}");
    assert!(err.to_string().contains("2 inputs"), "{err}");
}
