//! Checks the models built in code by `fresco_infer::onnx_build` with the reference tools:
//! `onnx.checker.check_model(full_check=True)` and ONNX Runtime, via python3.
//! Needs python3 with `onnx`, `onnxruntime` and `numpy` (CI installs them).

use std::process::Command;

use fresco_infer::onnx_build::{self, GraphBuilder};

/// Common prelude: imports (with a clear failure if missing), the checker, a session helper.
const PRELUDE: &str = r#"
import sys
try:
    import numpy as np
    import onnx
    import onnxruntime as ort
except ImportError as e:
    print("MISSING_PY_DEPS: python3 needs onnx, onnxruntime and numpy "
          "(pip install onnx onnxruntime numpy): %s" % e)
    sys.exit(3)
path = sys.argv[1]
onnx.checker.check_model(path, full_check=True)
model = onnx.load(path)
assert model.ir_version == 8, model.ir_version
assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)], model.opset_import
assert model.producer_name == "fresco", model.producer_name
meta = {p.key: p.value for p in model.metadata_props}
def dims(vi):
    return [d.dim_param if d.HasField("dim_param") else d.dim_value
            for d in vi.type.tensor_type.shape.dim]
g = model.graph
assert [i.name for i in g.input] == ["input1"], g.input
assert [o.name for o in g.output] == ["output1"], g.output
assert g.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
def run(x):
    return sess.run(["output1"], {"input1": x})[0]
rng = np.random.default_rng(1234)
"#;

/// Writes `model` to a temp file and runs `PRELUDE + script` on it; panics with the script's
/// output unless it prints "OK" and exits 0.
fn check_with_python(model: &[u8], script: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, model).expect("write model");
    let code = format!("{PRELUDE}\n{script}\nprint('OK')\n");
    let out = match Command::new("python3")
        .arg("-c")
        .arg(&code)
        .arg(&path)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run python3 ({e}); these tests need python3 with onnx, onnxruntime, numpy"
        ),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stdout.contains("MISSING_PY_DEPS") {
        panic!("{}", stdout.trim());
    }
    assert!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "python check failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

#[test]
fn identity_is_exact() {
    check_with_python(
        &onnx_build::identity_model(),
        r#"
assert dims(g.input[0]) == ["N", 3, "H", "W"], dims(g.input[0])
assert dims(g.output[0]) == ["N", 3, "H", "W"], dims(g.output[0])
x = (rng.random((1, 3, 7, 9)) * 255).astype(np.float32)
y = run(x)
assert y.dtype == np.float32 and y.shape == x.shape, (y.dtype, y.shape)
assert np.array_equal(y, x)
"#,
    );
}

#[test]
fn vintage_filter_is_a_visible_warm_filter() {
    check_with_python(
        &onnx_build::vintage_filter_model(),
        r#"
assert dims(g.input[0]) == ["N", 3, "H", "W"], dims(g.input[0])
assert dims(g.output[0]) == ["N", 3, "H", "W"], dims(g.output[0])
assert meta.get("fresco.filter") == "vintage", meta
for shape in [(1, 3, 10, 14), (2, 3, 8, 8)]:
    x = (rng.random(shape) * 255).astype(np.float32)
    y = run(x)
    assert y.shape == x.shape, (y.shape, x.shape)
    assert y.dtype == np.float32
    assert np.isfinite(y).all()
    assert y.min() >= 0.0 and y.max() <= 255.0, (y.min(), y.max())
    assert np.abs(y - x).mean() > 5.0, np.abs(y - x).mean()
    assert np.array_equal(run(x), y), "not deterministic"
grey = np.full((1, 3, 4, 4), 128.0, dtype=np.float32)
r, gg, b = run(grey)[0, :, 0, 0]
assert r >= gg >= b and r > b, (r, gg, b)
# Hand-computed reference: 0.9 * sepia + lift, floor to multiples of 32, clip.
sepia = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]],
                 dtype=np.float32) * np.float32(0.9)
lift = np.array([24, 14, 4], dtype=np.float32)
x = (rng.random((1, 3, 5, 6)) * 255).astype(np.float32)
ref = np.einsum("oc,nchw->nohw", sepia, x) + lift[None, :, None, None]
ref = np.clip(np.floor(ref / 32) * 32, 0, 255)
y = run(x)
# A value right at a level boundary may floor either way with different float rounding.
mism = (y != ref).mean()
assert mism < 0.05, mism
"#,
    );
}

#[test]
fn rank2_model_declares_rank2_input() {
    check_with_python(
        &onnx_build::rank2_model(),
        r#"
assert dims(g.input[0]) == ["N", 3], dims(g.input[0])
assert dims(g.output[0]) == ["N", 3], dims(g.output[0])
x = rng.random((2, 3)).astype(np.float32)
assert np.array_equal(run(x), x)
"#,
    );
}

#[test]
fn one_channel_model_declares_one_channel() {
    check_with_python(
        &onnx_build::one_channel_model(),
        r#"
assert dims(g.input[0]) == ["N", 1, "H", "W"], dims(g.input[0])
assert dims(g.output[0]) == ["N", 1, "H", "W"], dims(g.output[0])
x = (rng.random((1, 1, 5, 4)) * 255).astype(np.float32)
assert np.array_equal(run(x), x)
"#,
    );
}

#[test]
fn nhwc_unit_range_identity() {
    check_with_python(
        &onnx_build::identity_nhwc_unit_range_model(),
        r#"
assert dims(g.input[0]) == ["N", "H", "W", 3], dims(g.input[0])
assert dims(g.output[0]) == ["N", "H", "W", 3], dims(g.output[0])
assert meta == {"fresco.layout": "nhwc", "fresco.input_range": "0-1"}, meta
x = rng.random((1, 6, 11, 3)).astype(np.float32)
y = run(x)
assert y.shape == x.shape and np.array_equal(y, x)
"#,
    );
}

#[test]
fn failing_model_fails_at_run_time() {
    check_with_python(
        &onnx_build::failing_model(),
        r#"
assert dims(g.input[0]) == ["N", 3, "H", "W"], dims(g.input[0])
for shape in [(1, 3, 4, 4), (2, 3, 9, 7)]:
    try:
        run(np.zeros(shape, dtype=np.float32))
    except Exception as e:
        assert "Gather" in str(e), e
    else:
        raise AssertionError("failing_model ran without error")
"#,
    );
}

#[test]
fn builder_makes_other_models() {
    // A scale-by-2 model made with the public builder, as later tests may do.
    let model = GraphBuilder::nchw_rgb("double")
        .constant_f32("two", &[], &[2.0])
        .node("Mul", &["input1", "two"], &["output1"], vec![])
        .metadata("k", "v")
        .to_bytes();
    check_with_python(
        &model,
        r#"
assert meta == {"k": "v"}, meta
x = (rng.random((1, 3, 3, 5)) * 100).astype(np.float32)
assert np.array_equal(run(x), x * 2)
"#,
    );
}

#[test]
fn models_round_trip_through_prost() {
    use prost::Message;
    for bytes in [
        onnx_build::identity_model(),
        onnx_build::vintage_filter_model(),
        onnx_build::rank2_model(),
        onnx_build::one_channel_model(),
        onnx_build::identity_nhwc_unit_range_model(),
        onnx_build::failing_model(),
    ] {
        let m = onnx_build::ModelProto::decode(bytes.as_slice()).expect("decode");
        assert_eq!(m.ir_version, 8);
        assert_eq!(m.producer_name, "fresco");
        assert_eq!(m.opset_import[0].version, 13);
        assert_eq!(m.encode_to_vec(), bytes);
        let g = m.graph.expect("graph");
        assert_eq!(g.input[0].name, "input1");
        assert_eq!(g.output[0].name, "output1");
    }
}
