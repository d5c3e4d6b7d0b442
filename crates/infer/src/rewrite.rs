//! Exact graph rewrites applied when a model is loaded for the CPU: the same function, computed
//! with less work. [`rewrite_for_cpu`] decodes the ONNX protobuf, replaces each occurrence of a
//! strictly matched pattern and re-encodes it; a model with no match is returned unchanged
//! (`None`), so any other graph runs exactly as written. `FRESCO_NO_REWRITE=1` turns it off
//! ([`disabled_by_env`]), for comparisons. A job's pinned digest stays the digest of the model
//! file: the rewrite is a deterministic function of those bytes.
//!
//! **Upsample fold** (fast-neural-style decoders): nearest 2x `Resize` -> reflect `Pad` of 1 ->
//! 3x3 `Conv` on the upsampled map equals, on the low-resolution map `x`, an edge `Pad` of 1 ->
//! one 2x2 `Conv` with four times the output channels -> `DepthToSpace(2, DCR)` -> `Slice` that
//! drops a one-pixel border. Along one axis, output row `2i` of the original reads upsampled rows
//! `2i-1, 2i, 2i+1`, that is `x[i-1], x[i], x[i]` (weights `w0, w1+w2` on `x[i-1], x[i]`), and
//! row `2i+1` reads `x[i], x[i], x[i+1]` (weights `w0+w1, w2` on `x[i], x[i+1]`); the reflect pad
//! of the upsampled map repeats the low-resolution border, which is an edge pad of `x`. The 2x2
//! convolution at padded position `k` (rows `x[k-1], x[k]`) gives both the odd phase of output
//! row `2k-1` and the even phase of row `2k`, so depth-to-space lays them out as rows `2k`,
//! `2k+1`, one row ahead, and the slice takes rows `1..2H+1`. The kernel does 16 multiply-adds
//! per input channel and output pixel instead of 36, and the `Resize` and the large `Pad`
//! disappear; the weights are sums of the original ones (rounded once from float64), so the
//! output agrees to float rounding.
//!
//! **Thin convolutions** (the networks' last 9x9 convolution, 32 -> 3 channels): ONNX Runtime's
//! NCHWc layout computes output channels in blocks of 8 or 16, so 3 outputs cost as much as 16.
//! A stride-1 convolution with an odd `k x k` kernel and at most 4 outputs on a map of even
//! height and width is computed instead on its 2x2 `SpaceToDepth` (4x the input channels, half
//! the size) with a `(k+1)/2` kernel and four phases of outputs (4x the output channels), then
//! `DepthToSpace`: the same products, rearranged (zero taps where a phase's window is shorter),
//! so the output is exact. It is applied only where the even size is proved from the graph: the
//! map comes from a 2x `DepthToSpace` through shape-keeping ops and even pads.

use std::collections::{HashMap, HashSet};

use prost::Message;

use crate::onnx_proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, ATTR_INT, ATTR_INTS,
    ATTR_STRING,
};

/// The environment variable that turns the rewrites off (`FRESCO_NO_REWRITE=1`).
pub const NO_REWRITE_ENV: &str = "FRESCO_NO_REWRITE";

/// Whether `FRESCO_NO_REWRITE` is set to something other than empty or `0`.
pub fn disabled_by_env() -> bool {
    std::env::var_os(NO_REWRITE_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Why a model could not be read for rewriting.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("not a valid ONNX model: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// What [`rewrite_for_cpu`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewriteReport {
    /// Nearest 2x upsample + reflect pad + 3x3 conv groups folded into one low-resolution conv.
    pub upsample_folds: usize,
    /// Convolutions with few output channels computed on the 2x2 space-to-depth of their input.
    pub thin_convs: usize,
}

/// The most output channels of a convolution that [`split_thin_convs`] rewrites: four phases of
/// them still fit one 16-channel block of ONNX Runtime's NCHWc layout.
const THIN_CONV_MAX_CHANNELS: usize = 4;

/// The default-domain opsets whose `Resize`, `Pad`, `Conv`, `Slice` and `DepthToSpace` the fold
/// is written for (inputs rather than attributes for pads and slice bounds from 11 on).
const OPSETS: std::ops::RangeInclusive<i64> = 11..=22;

/// Rewrites `model` for the CPU: `Ok(None)` when nothing matched (use the bytes as they are).
pub fn rewrite_for_cpu(model: &[u8]) -> Result<Option<(Vec<u8>, RewriteReport)>, RewriteError> {
    let mut decoded = ModelProto::decode(model)?;
    let opset = decoded
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version);
    if !opset.is_some_and(|v| OPSETS.contains(&v)) {
        return Ok(None);
    }
    let Some(graph) = decoded.graph.as_mut() else {
        return Ok(None);
    };
    // Subgraphs (If/Loop bodies) may read outer values the rewrite cannot see as consumers:
    // leave such models as they are.
    if graph.node.iter().any(|n| {
        n.attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty())
    }) {
        return Ok(None);
    }
    let upsample_folds = fold_upsamples(graph);
    let report = RewriteReport {
        upsample_folds,
        thin_convs: split_thin_convs(graph),
    };
    if report == RewriteReport::default() {
        return Ok(None);
    }
    Ok(Some((decoded.encode_to_vec(), report)))
}

/// One matched Resize -> Pad -> Conv group, by node index, with the conv's weights.
struct Fold {
    resize: usize,
    pad: usize,
    conv: usize,
    weights: Vec<f32>,
    out_channels: usize,
    in_channels: usize,
    bias: Option<Vec<f32>>,
}

fn fold_upsamples(graph: &mut GraphProto) -> usize {
    let folds: Vec<Fold> = {
        let view = GraphView::new(graph);
        (0..graph.node.len())
            .filter_map(|i| view.match_fold(i))
            .collect()
    };
    if folds.is_empty() {
        return 0;
    }
    let mut names = Names::new(graph);
    let mut replaced: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    let mut removed: HashSet<usize> = HashSet::new();
    let mut maybe_unused: HashSet<String> = HashSet::new();
    let mut gone_values: HashSet<String> = HashSet::new();
    for fold in &folds {
        let (resize, pad, conv) = (
            &graph.node[fold.resize],
            &graph.node[fold.pad],
            &graph.node[fold.conv],
        );
        maybe_unused.extend(resize.input[1..].iter().cloned());
        maybe_unused.extend(pad.input[1..].iter().cloned());
        maybe_unused.extend(conv.input[1..].iter().cloned());
        gone_values.insert(resize.output[0].clone());
        gone_values.insert(pad.output[0].clone());
        let (nodes, tensors) = folded_nodes(fold, &resize.input[0], conv, &mut names);
        graph.initializer.extend(tensors);
        removed.insert(fold.resize);
        removed.insert(fold.pad);
        replaced.insert(fold.conv, nodes);
    }
    let old = std::mem::take(&mut graph.node);
    for (i, node) in old.into_iter().enumerate() {
        if let Some(nodes) = replaced.remove(&i) {
            graph.node.extend(nodes);
        } else if !removed.contains(&i) {
            graph.node.push(node);
        }
    }
    // Drop the weights and constants only the replaced nodes used, and the shapes recorded for
    // the values that no longer exist.
    let used: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(graph.output.iter().map(|v| v.name.as_str()))
        .collect();
    let unused: HashSet<String> = maybe_unused
        .into_iter()
        .filter(|n| !n.is_empty() && !used.contains(n.as_str()))
        .collect();
    graph.initializer.retain(|t| !unused.contains(&t.name));
    graph
        .value_info
        .retain(|v| !gone_values.contains(&v.name) && !unused.contains(&v.name));
    folds.len()
}

/// The nodes and initializers that replace one fold; the last node writes the conv's output.
fn folded_nodes(
    fold: &Fold,
    low_res: &str,
    conv: &NodeProto,
    names: &mut Names,
) -> (Vec<NodeProto>, Vec<TensorProto>) {
    let base = base_name(conv);
    let (co, ci) = (fold.out_channels, fold.in_channels);
    // Taps of the 3-tap kernel that land on each of the two taps of a phase: slot 0 is the odd
    // phase (w0 + w1, w2), slot 1 the even phase (w0, w1 + w2).
    const GROUPS: [[&[usize]; 2]; 2] = [[&[0, 1], &[2]], [&[0], &[1, 2]]];
    let mut weights = vec![0f32; 4 * co * ci * 4];
    for (sy, rows) in GROUPS.iter().enumerate() {
        for (sx, cols) in GROUPS.iter().enumerate() {
            for o in 0..co {
                for i in 0..ci {
                    let src = &fold.weights[(o * ci + i) * 9..(o * ci + i + 1) * 9];
                    let dst = (((sy * 2 + sx) * co + o) * ci + i) * 4;
                    for (a, row_taps) in rows.iter().enumerate() {
                        for (b, col_taps) in cols.iter().enumerate() {
                            let mut sum = 0f64;
                            for &ky in *row_taps {
                                for &kx in *col_taps {
                                    sum += src[ky * 3 + kx] as f64;
                                }
                            }
                            weights[dst + a * 2 + b] = sum as f32;
                        }
                    }
                }
            }
        }
    }
    let pads = names.fresh(&format!("{base}__fold_pads"));
    let w = names.fresh(&format!("{base}__fold_w"));
    let starts = names.fresh(&format!("{base}__fold_starts"));
    let ends = names.fresh(&format!("{base}__fold_ends"));
    let axes = names.fresh(&format!("{base}__fold_axes"));
    let padded = names.fresh(&format!("{base}__fold_padded"));
    let phases = names.fresh(&format!("{base}__fold_phases"));
    let spread = names.fresh(&format!("{base}__fold_spread"));
    let mut tensors = vec![
        TensorProto::from_int64s(&pads, &[8], &[0, 0, 1, 1, 0, 0, 1, 1]),
        TensorProto::from_floats(&w, &[4 * co as i64, ci as i64, 2, 2], &weights),
        TensorProto::from_int64s(&starts, &[2], &[1, 1]),
        TensorProto::from_int64s(&ends, &[2], &[-1, -1]),
        TensorProto::from_int64s(&axes, &[2], &[2, 3]),
    ];
    let mut conv_inputs = vec![padded.clone(), w];
    if let Some(bias) = &fold.bias {
        let b = names.fresh(&format!("{base}__fold_b"));
        tensors.push(phase_bias(&b, bias));
        conv_inputs.push(b);
    }
    let mut node = |op: &str, suffix: &str, inputs: Vec<String>, output: String, attrs| {
        new_node(
            names.fresh(&format!("{base}__fold_{suffix}")),
            op,
            inputs,
            output,
            attrs,
        )
    };
    let nodes = vec![
        node(
            "Pad",
            "pad",
            vec![low_res.to_string(), pads],
            padded.clone(),
            vec![attr_string("mode", "edge")],
        ),
        node(
            "Conv",
            "conv",
            conv_inputs,
            phases.clone(),
            vec![attr_ints("kernel_shape", &[2, 2])],
        ),
        node(
            "DepthToSpace",
            "depth_to_space",
            vec![phases],
            spread.clone(),
            vec![attr_int("blocksize", 2), attr_string("mode", "DCR")],
        ),
        node(
            "Slice",
            "crop",
            vec![spread, starts, ends, axes],
            conv.output[0].clone(),
            vec![],
        ),
    ];
    (nodes, tensors)
}

/// Rewrites each thin convolution (see the module doc) whose input is known to have even height
/// and width; returns how many.
fn split_thin_convs(graph: &mut GraphProto) -> usize {
    let matches: Vec<(usize, ThinConv)> = {
        let view = GraphView::new(graph);
        (0..graph.node.len())
            .filter_map(|i| Some((i, view.match_thin_conv(i)?)))
            .collect()
    };
    if matches.is_empty() {
        return 0;
    }
    let mut names = Names::new(graph);
    let mut replaced: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    let mut maybe_unused: HashSet<String> = HashSet::new();
    for (index, thin) in &matches {
        let conv = &graph.node[*index];
        maybe_unused.extend(conv.input[1..].iter().cloned());
        let (nodes, tensors) = thin_conv_nodes(thin, conv, &mut names);
        graph.initializer.extend(tensors);
        replaced.insert(*index, nodes);
    }
    let old = std::mem::take(&mut graph.node);
    for (i, node) in old.into_iter().enumerate() {
        match replaced.remove(&i) {
            Some(nodes) => graph.node.extend(nodes),
            None => graph.node.push(node),
        }
    }
    let used: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(graph.output.iter().map(|v| v.name.as_str()))
        .collect();
    let unused: HashSet<String> = maybe_unused
        .into_iter()
        .filter(|n| !n.is_empty() && !used.contains(n.as_str()))
        .collect();
    graph.initializer.retain(|t| !unused.contains(&t.name));
    matches.len()
}

/// A matched thin convolution's weights: `[out, in, k, k]`, `k` odd.
struct ThinConv {
    weights: Vec<f32>,
    out_channels: usize,
    in_channels: usize,
    kernel: usize,
    bias: Option<Vec<f32>>,
}

/// `SpaceToDepth(2)` -> conv with a `(k+1)/2` kernel and four phases of outputs ->
/// `DepthToSpace(2, DCR)`. Output phase `(py, px)` at `(R, C)` is output pixel
/// `(2R+py, 2C+px)`; its tap `(a, b)` reads input pixel `(2R+py+a, 2C+px+b)`, which is
/// space-to-depth channel `(qy, qx)` at `(R+my, C+mx)` where `py+a = 2my+qy`.
fn thin_conv_nodes(
    thin: &ThinConv,
    conv: &NodeProto,
    names: &mut Names,
) -> (Vec<NodeProto>, Vec<TensorProto>) {
    let base = base_name(conv);
    let (co, ci, k) = (thin.out_channels, thin.in_channels, thin.kernel);
    let kk = k.div_ceil(2);
    let mut weights = vec![0f32; 4 * co * 4 * ci * kk * kk];
    for py in 0..2 {
        for px in 0..2 {
            for o in 0..co {
                for qy in 0..2 {
                    for qx in 0..2 {
                        for i in 0..ci {
                            for my in 0..kk {
                                for mx in 0..kk {
                                    let (a, b) = (2 * my + qy, 2 * mx + qx);
                                    if a < py || b < px || a - py >= k || b - px >= k {
                                        continue;
                                    }
                                    let src = ((o * ci + i) * k + a - py) * k + b - px;
                                    let out_ch = (py * 2 + px) * co + o;
                                    let in_ch = (qy * 2 + qx) * ci + i;
                                    let dst = ((out_ch * 4 * ci + in_ch) * kk + my) * kk + mx;
                                    weights[dst] = thin.weights[src];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let w = names.fresh(&format!("{base}__s2d_w"));
    let packed = names.fresh(&format!("{base}__s2d_packed"));
    let phases = names.fresh(&format!("{base}__s2d_phases"));
    let dims = [4 * co as i64, 4 * ci as i64, kk as i64, kk as i64];
    let mut tensors = vec![TensorProto::from_floats(&w, &dims, &weights)];
    let mut conv_inputs = vec![packed.clone(), w];
    if let Some(bias) = &thin.bias {
        let b = names.fresh(&format!("{base}__s2d_b"));
        tensors.push(phase_bias(&b, bias));
        conv_inputs.push(b);
    }
    let mut node = |op: &str, suffix: &str, inputs: Vec<String>, output: String, attrs| {
        new_node(
            names.fresh(&format!("{base}__s2d_{suffix}")),
            op,
            inputs,
            output,
            attrs,
        )
    };
    let nodes = vec![
        node(
            "SpaceToDepth",
            "pack",
            vec![conv.input[0].clone()],
            packed,
            vec![attr_int("blocksize", 2)],
        ),
        node(
            "Conv",
            "conv",
            conv_inputs,
            phases.clone(),
            vec![attr_ints("kernel_shape", &[kk as i64, kk as i64])],
        ),
        node(
            "DepthToSpace",
            "unpack",
            vec![phases],
            conv.output[0].clone(),
            vec![attr_int("blocksize", 2), attr_string("mode", "DCR")],
        ),
    ];
    (nodes, tensors)
}

/// What a rewrite's new names start with: the replaced convolution's name, or its output's.
fn base_name(conv: &NodeProto) -> String {
    if conv.name.is_empty() {
        conv.output[0].clone()
    } else {
        conv.name.clone()
    }
}

/// The bias of a convolution split into four output phases (phase-major channels): the
/// original bias once per phase.
fn phase_bias(name: &str, bias: &[f32]) -> TensorProto {
    let four: Vec<f32> = (0..4).flat_map(|_| bias.iter().copied()).collect();
    TensorProto::from_floats(name, &[four.len() as i64], &four)
}

/// One node of a rewrite, with one output.
fn new_node(
    name: String,
    op: &str,
    inputs: Vec<String>,
    output: String,
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        name,
        op_type: op.to_string(),
        input: inputs,
        output: vec![output],
        attribute: attrs,
        ..Default::default()
    }
}

/// Lookups over a graph for matching.
struct GraphView<'g> {
    graph: &'g GraphProto,
    initializers: HashMap<&'g str, &'g TensorProto>,
    /// value name -> (consumer node, input slot)
    consumers: HashMap<&'g str, Vec<(usize, usize)>>,
    graph_outputs: HashSet<&'g str>,
    graph_inputs: HashSet<&'g str>,
}

impl<'g> GraphView<'g> {
    fn new(graph: &'g GraphProto) -> GraphView<'g> {
        let mut consumers: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
        for (n, node) in graph.node.iter().enumerate() {
            for (slot, input) in node.input.iter().enumerate() {
                consumers.entry(input.as_str()).or_default().push((n, slot));
            }
        }
        GraphView {
            graph,
            initializers: graph
                .initializer
                .iter()
                .map(|t| (t.name.as_str(), t))
                .collect(),
            consumers,
            graph_outputs: graph.output.iter().map(|v| v.name.as_str()).collect(),
            graph_inputs: graph.input.iter().map(|v| v.name.as_str()).collect(),
        }
    }

    /// A constant the graph's caller cannot override (an initializer that is not also an input).
    fn constant(&self, name: &str) -> Option<&'g TensorProto> {
        if self.graph_inputs.contains(name) {
            return None;
        }
        self.initializers.get(name).copied()
    }

    /// The only consumer of `value`, reading it as its first input; `None` when the value has
    /// other consumers or is a graph output.
    fn sole_consumer(&self, value: &str) -> Option<&'g NodeProto> {
        if self.graph_outputs.contains(value) {
            return None;
        }
        match self.consumers.get(value)?.as_slice() {
            [(node, 0)] => Some(&self.graph.node[*node]),
            _ => None,
        }
    }

    /// Matches a stride-1, unpadded, odd-kernel `Conv` with at most
    /// [`THIN_CONV_MAX_CHANNELS`] outputs whose input has even height and width.
    fn match_thin_conv(&self, index: usize) -> Option<ThinConv> {
        let conv = &self.graph.node[index];
        if !is_op(conv, "Conv") || conv.output.len() != 1 {
            return None;
        }
        let (x, w, b) = match conv.input.as_slice() {
            [x, w] => (x, w, None),
            [x, w, b] if b.is_empty() => (x, w, None),
            [x, w, b] => (x, w, Some(b)),
            _ => return None,
        };
        let w = self.constant(w)?;
        let [co, ci, kh, kw] = w.dims.as_slice() else {
            return None;
        };
        if kh != kw || kh % 2 == 0 || *kh < 3 {
            return None;
        }
        let (co, ci, k) = (
            usize::try_from(*co).ok()?,
            usize::try_from(*ci).ok()?,
            usize::try_from(*kh).ok()?,
        );
        if co == 0 || co > THIN_CONV_MAX_CHANNELS {
            return None;
        }
        let bias = match b {
            Some(b) => {
                let t = self.constant(b)?;
                if t.dims != [co as i64] {
                    return None;
                }
                Some(t.floats()?)
            }
            None => None,
        };
        for attr in &conv.attribute {
            let ok = match attr.name.as_str() {
                "kernel_shape" => attr.ints == [k as i64, k as i64],
                "strides" | "dilations" => attr.ints == [1, 1],
                "pads" => attr.ints == [0, 0, 0, 0],
                "group" => attr.i == Some(1),
                "auto_pad" => string_attr(attr)? == "NOTSET",
                _ => false,
            };
            if !ok {
                return None;
            }
        }
        if !self.has_even_spatial_dims(x, 0) {
            return None;
        }
        Some(ThinConv {
            weights: w.floats()?,
            out_channels: co,
            in_channels: ci,
            kernel: k,
            bias,
        })
    }

    /// Whether the NCHW value `name` has even height and width for every input size, proved
    /// from how it is made: a 2x `DepthToSpace`, then only shape-keeping ops (`Relu`,
    /// `InstanceNormalization`), pads that add an even number of rows and columns, and the
    /// upsample fold's one-pixel crop.
    fn has_even_spatial_dims(&self, name: &str, depth: usize) -> bool {
        let Some(node) = self.producer(name) else {
            return false;
        };
        if depth > 32 || node.output.len() != 1 {
            return false;
        }
        let even_pads = |pads: &str| {
            self.constant(pads)
                .and_then(TensorProto::int64s)
                .is_some_and(|p| {
                    p.len() == 8
                        && p.iter().all(|v| *v >= 0)
                        && (p[2] + p[6]) % 2 == 0
                        && (p[3] + p[7]) % 2 == 0
                })
        };
        let ints = |name: &str| self.constant(name).and_then(TensorProto::int64s);
        let up = |input: &str| self.has_even_spatial_dims(input, depth + 1);
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return false;
        }
        match (node.op_type.as_str(), node.input.as_slice()) {
            ("DepthToSpace", [_]) => node
                .attribute
                .iter()
                .any(|a| a.name == "blocksize" && a.i == Some(2)),
            ("Relu", [x]) | ("InstanceNormalization", [x, _, _]) => up(x),
            ("Pad", [x, pads]) | ("Pad", [x, pads, _]) => even_pads(pads) && up(x),
            ("Slice", [x, starts, ends, axes]) => {
                ints(starts).as_deref() == Some(&[1, 1])
                    && ints(ends).as_deref() == Some(&[-1, -1])
                    && ints(axes).as_deref() == Some(&[2, 3])
                    && up(x)
            }
            _ => false,
        }
    }

    fn producer(&self, value: &str) -> Option<&'g NodeProto> {
        self.graph
            .node
            .iter()
            .find(|n| n.output.iter().any(|o| o == value))
    }

    fn index_of(&self, node: &NodeProto) -> usize {
        self.graph
            .node
            .iter()
            .position(|n| std::ptr::eq(n, node))
            .expect("node of this graph")
    }

    /// Matches the fold starting at the `Resize` node `index`, strictly.
    fn match_fold(&self, index: usize) -> Option<Fold> {
        let resize = &self.graph.node[index];
        if !is_op(resize, "Resize") || resize.output.len() != 1 {
            return None;
        }
        // Inputs: X, roi (absent or empty), scales [1, 1, 2, 2], no sizes.
        let (roi, scales) = match resize.input.as_slice() {
            [_, roi, scales] => (roi, scales),
            [_, roi, scales, sizes] if sizes.is_empty() => (roi, scales),
            _ => return None,
        };
        if !(roi.is_empty() || self.constant(roi).is_some_and(|t| t.dims == [0])) {
            return None;
        }
        if self.constant(scales)?.floats()? != [1.0, 1.0, 2.0, 2.0] {
            return None;
        }
        for attr in &resize.attribute {
            let ok = match attr.name.as_str() {
                "mode" => string_attr(attr)? == "nearest",
                "coordinate_transformation_mode" => string_attr(attr)? == "asymmetric",
                "nearest_mode" => matches!(string_attr(attr)?, "floor" | "round_prefer_floor"),
                // Used by cubic interpolation only.
                "cubic_coeff_a" | "exclude_outside" => true,
                _ => false,
            };
            if !ok {
                return None;
            }
        }
        // Both mode and the transformation must be given: their defaults differ from these.
        for needed in ["mode", "coordinate_transformation_mode"] {
            if !resize.attribute.iter().any(|a| a.name == needed) {
                return None;
            }
        }

        let pad = self.sole_consumer(&resize.output[0])?;
        if !is_op(pad, "Pad") || pad.output.len() != 1 {
            return None;
        }
        match pad.input.as_slice() {
            [_, pads] | [_, pads, _] => {
                if pad.input.get(2).is_some_and(|c| !c.is_empty()) {
                    return None;
                }
                if self.constant(pads)?.int64s()? != [0, 0, 1, 1, 0, 0, 1, 1] {
                    return None;
                }
            }
            _ => return None,
        }
        if pad.attribute.len() != 1 || pad.attribute[0].name != "mode" {
            return None;
        }
        if string_attr(&pad.attribute[0])? != "reflect" {
            return None;
        }

        let conv = self.sole_consumer(&pad.output[0])?;
        if !is_op(conv, "Conv") || conv.output.len() != 1 {
            return None;
        }
        let (w, b) = match conv.input.as_slice() {
            [_, w] => (w, None),
            [_, w, b] if b.is_empty() => (w, None),
            [_, w, b] => (w, Some(b)),
            _ => return None,
        };
        let w = self.constant(w)?;
        let [co, ci, 3, 3] = w.dims.as_slice() else {
            return None;
        };
        let (co, ci) = (usize::try_from(*co).ok()?, usize::try_from(*ci).ok()?);
        let weights = w.floats()?;
        let bias = match b {
            Some(b) => {
                let t = self.constant(b)?;
                if t.dims != [co as i64] {
                    return None;
                }
                Some(t.floats()?)
            }
            None => None,
        };
        for attr in &conv.attribute {
            let ok = match attr.name.as_str() {
                "kernel_shape" => attr.ints == [3, 3],
                "strides" | "dilations" => attr.ints == [1, 1],
                "pads" => attr.ints == [0, 0, 0, 0],
                "group" => attr.i == Some(1),
                "auto_pad" => string_attr(attr)? == "NOTSET",
                _ => false,
            };
            if !ok {
                return None;
            }
        }
        Some(Fold {
            resize: index,
            pad: self.index_of(pad),
            conv: self.index_of(conv),
            weights,
            out_channels: co,
            in_channels: ci,
            bias,
        })
    }
}

fn is_op(node: &NodeProto, op: &str) -> bool {
    node.op_type == op && (node.domain.is_empty() || node.domain == "ai.onnx")
}

fn string_attr(attr: &AttributeProto) -> Option<&str> {
    std::str::from_utf8(attr.s.as_deref()?).ok()
}

fn attr_string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: ATTR_STRING,
        s: Some(value.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn attr_int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: ATTR_INT,
        i: Some(value),
        ..Default::default()
    }
}

fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: ATTR_INTS,
        ints: values.to_vec(),
        ..Default::default()
    }
}

/// Names already used in a graph (values, initializers, nodes), to make new ones unique.
struct Names(HashSet<String>);

impl Names {
    fn new(graph: &GraphProto) -> Names {
        let mut taken = HashSet::new();
        for node in &graph.node {
            taken.extend(node.input.iter().cloned());
            taken.extend(node.output.iter().cloned());
            taken.insert(node.name.clone());
        }
        taken.extend(graph.initializer.iter().map(|t| t.name.clone()));
        taken.extend(graph.input.iter().map(|v| v.name.clone()));
        taken.extend(graph.output.iter().map(|v| v.name.clone()));
        taken.extend(graph.value_info.iter().map(|v| v.name.clone()));
        Names(taken)
    }

    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut n = 1;
        while self.0.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.0.insert(name.clone());
        name
    }
}
