//! A static estimate of the constants that loading a graph builds: ONNX Runtime's constant
//! folding runs every node whose inputs are all constants (initializers, `Constant` nodes, the
//! outputs of such nodes, and `Shape` of a value whose dimensions are declared) and keeps its
//! output in memory. A `ConstantOfShape` of `[100000, 100000]` is a 400-byte model and a 40 GB
//! constant.
//!
//! The graph's nodes are visited in dependency order (not file order, which a model may scramble).
//! A node with a non-constant input is not folded. For a folded node the size of each output is
//! computed from the shapes and small values of its inputs, or bounded from above; an operator
//! whose output size cannot be bounded from what is known here is refused, so the estimate
//! errs on the side of refusing.

use std::collections::{HashMap, HashSet};

use prost::Message;

use crate::onnx_proto::{AttributeProto, GraphProto, NodeProto, SparseTensorProto, TensorProto};

/// Values kept for arithmetic on shapes: tensors of at most this many elements.
const SMALL: u64 = 1024;

/// What is known of a constant value.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Info {
    /// Its dimensions, when known.
    dims: Option<Vec<u64>>,
    /// Its element count, or an upper bound of it.
    elements: u64,
    /// Its values, for small numeric tensors.
    nums: Option<Vec<f64>>,
}

impl Info {
    fn of_dims(dims: Vec<u64>) -> Info {
        Info {
            elements: product(&dims),
            dims: Some(dims),
            nums: None,
        }
    }

    fn bounded(elements: u64) -> Info {
        Info {
            elements,
            ..Info::default()
        }
    }

    fn values(dims: Vec<u64>, nums: Vec<f64>) -> Info {
        Info {
            elements: nums.len() as u64,
            dims: Some(dims),
            nums: Some(nums),
        }
    }
}

/// The constants a graph holds or folds, on top of those of the graphs around it (a subgraph
/// sees its outer graphs' values by name, unless one of its own inputs hides the name).
#[derive(Debug, Default)]
pub(crate) struct ConstantScope<'a> {
    values: HashMap<String, Info>,
    hidden: HashSet<String>,
    outer: Option<&'a ConstantScope<'a>>,
    /// Elements folded in this graph (initializers not counted: they are in the file).
    folded: u64,
}

impl ConstantScope<'_> {
    /// Elements that folding this graph would build.
    pub(crate) fn elements(&self) -> u64 {
        self.folded
    }

    fn get(&self, name: &str) -> Option<&Info> {
        if let Some(info) = self.values.get(name) {
            return Some(info);
        }
        if self.hidden.contains(name) {
            return None;
        }
        self.outer.and_then(|outer| outer.get(name))
    }
}

/// A folded node whose output is too large, or cannot be bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FoldError {
    pub node: String,
    pub op: String,
    pub reason: String,
}

/// The constants of `graph` (seeing `outer`'s, as a subgraph does); an error for a folded node
/// above `limit` elements, for all of them together above it, or for one that cannot be bounded.
/// Linear in the size of the graph: a model is hostile until it is checked.
pub(crate) fn estimate<'a>(
    graph: &GraphProto,
    outer: &'a ConstantScope<'a>,
    limit: u64,
) -> Result<ConstantScope<'a>, FoldError> {
    let mut scope = ConstantScope {
        outer: Some(outer),
        ..ConstantScope::default()
    };
    for tensor in &graph.initializer {
        scope
            .values
            .insert(tensor.name.clone(), tensor_info(tensor));
    }
    // A graph input that no initializer feeds is not a constant, and hides an outer constant
    // of the same name.
    for input in &graph.input {
        if !scope.values.contains_key(&input.name) {
            scope.hidden.insert(input.name.clone());
        }
    }
    // ONNX Runtime also folds `Shape` of any value whose shape its inference fixes; the shapes
    // the model declares (inputs, outputs, value_info) and those carried through elementwise
    // operators are followed here. Shapes only ONNX Runtime's inference finds (through a Conv,
    // say) are not: the worker's trial load in a child process is the backstop for those.
    let mut declared: HashMap<&str, Vec<u64>> = HashMap::new();
    for value in graph
        .input
        .iter()
        .chain(&graph.value_info)
        .chain(&graph.output)
    {
        if let Some(dims) = crate::inspect::declared_dims(value) {
            if dims.iter().all(|&d| d >= 0) {
                declared.insert(&value.name, dims.iter().map(|&d| d as u64).collect());
            }
        }
    }
    // Dependency order (Kahn): a node is visited once every node producing one of its inputs
    // was; a value produced twice, or a cycle, leaves nodes unvisited (ONNX Runtime refuses
    // such graphs), which are then not constants.
    let mut producers: HashMap<&str, usize> = HashMap::new();
    for (i, node) in graph.node.iter().enumerate() {
        for output in &node.output {
            producers.insert(output, i);
        }
    }
    // What this graph produces hides an outer value of the same name, constant or not.
    scope
        .hidden
        .extend(producers.keys().map(|name| name.to_string()));
    let mut consumers: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut waiting_for: Vec<usize> = vec![0; graph.node.len()];
    for (i, node) in graph.node.iter().enumerate() {
        for input in &node.input {
            if let Some(&p) = producers.get(input.as_str()) {
                if p != i {
                    waiting_for[i] += 1;
                    consumers.entry(p).or_default().push(i);
                }
            }
        }
    }
    let mut ready: Vec<usize> = (0..graph.node.len())
        .filter(|&i| waiting_for[i] == 0)
        .collect();
    while let Some(i) = ready.pop() {
        for &c in consumers.get(&i).map(Vec::as_slice).unwrap_or_default() {
            waiting_for[c] -= 1;
            if waiting_for[c] == 0 {
                ready.push(c);
            }
        }
        let node = &graph.node[i];
        let inputs: Option<Vec<Option<&Info>>> = node
            .input
            .iter()
            .map(|name| match name.as_str() {
                "" => Some(None),
                name => scope.get(name).map(Some),
            })
            .collect();
        let shape_of_declared = node.op_type == "Shape"
            && node
                .input
                .first()
                .is_some_and(|i| declared.contains_key(i.as_str()));
        let infos = match inputs {
            _ if shape_of_declared => {
                let dims = &declared[node.input[0].as_str()];
                vec![shape_values(node, dims)]
            }
            Some(inputs) if is_foldable(node) => fold(node, &inputs)?,
            // A non-constant input, or a node that is never folded: not a constant, but its
            // shape may be known.
            _ => {
                let same_shape = is_elementwise(&node.op_type)
                    && node.input.len() == 1
                    && node.output.len() == 1;
                if let (true, Some(dims)) = (
                    same_shape,
                    node.input
                        .first()
                        .and_then(|i| declared.get(i.as_str()))
                        .cloned(),
                ) {
                    declared.insert(&node.output[0], dims);
                }
                continue;
            }
        };
        for (name, info) in node.output.iter().zip(infos) {
            if info.elements > limit {
                return Err(too_large(node, info.elements, limit));
            }
            scope.folded = scope.folded.saturating_add(info.elements);
            if scope.folded > limit {
                return Err(FoldError {
                    node: node.name.clone(),
                    op: node.op_type.clone(),
                    reason: format!(
                        "loading would build constants of {} elements in all, more than the \
                         {limit} allowed",
                        scope.folded
                    ),
                });
            }
            scope.values.insert(name.clone(), info);
        }
    }
    Ok(scope)
}

/// Operators whose one output has the shape of their one input.
fn is_elementwise(op: &str) -> bool {
    matches!(
        op,
        "Identity"
            | "Relu"
            | "Neg"
            | "Abs"
            | "Floor"
            | "Ceil"
            | "Round"
            | "Sqrt"
            | "Exp"
            | "Log"
            | "Sigmoid"
            | "Tanh"
            | "Reciprocal"
            | "Sign"
            | "Erf"
            | "Sin"
            | "Cos"
            | "LeakyRelu"
            | "Elu"
            | "Selu"
            | "HardSigmoid"
            | "Softmax"
            | "LogSoftmax"
            | "Clip"
            | "Cast"
            | "Dropout"
            | "InstanceNormalization"
            | "IsNaN"
            | "IsInf"
            | "Not"
    )
}

/// Nodes that constant folding leaves alone: those with subgraphs and random ones.
fn is_foldable(node: &NodeProto) -> bool {
    !matches!(
        node.op_type.as_str(),
        "If" | "Loop"
            | "Scan"
            | "RandomNormal"
            | "RandomUniform"
            | "RandomNormalLike"
            | "RandomUniformLike"
            | "Multinomial"
            | "Bernoulli"
    )
}

fn too_large(node: &NodeProto, elements: u64, limit: u64) -> FoldError {
    FoldError {
        node: node.name.clone(),
        op: node.op_type.clone(),
        reason: format!(
            "loading would build a constant of {elements} elements, more than the {limit} allowed"
        ),
    }
}

fn product(dims: &[u64]) -> u64 {
    dims.iter().fold(1u64, |n, &d| n.saturating_mul(d))
}

/// The outputs of a node whose inputs are all constants: a dispatch on the operator, the
/// longer computations in `Folding`'s methods.
fn fold(node: &NodeProto, inputs: &[Option<&Info>]) -> Result<Vec<Info>, FoldError> {
    let f = Folding { node, inputs };
    let op = node.op_type.as_str();
    let one = |info: Info| Ok(vec![info]);
    match op {
        "Constant" => one(constant_info(node).ok_or_else(|| f.unbounded("an unknown value"))?),
        "ConstantOfShape" => one(Info::of_dims(to_dims(
            &f.known(0, "its shape is not known")?,
        ))),
        "Expand" => one(f.expand()?),
        "Tile" => one(f.tile()?),
        "Range" => one(f.range()?),
        "Resize" | "Upsample" => one(f.resize()?),
        "Pad" => one(f.pad()?),
        "Shape" => match f.dims(0) {
            Some(d) => one(shape_values(node, &d)),
            None => one(Info::bounded(64)),
        },
        "Size" => one(Info::values(vec![], vec![f.elements(0) as f64])),
        "Identity" | "Cast" | "CastLike" | "Squeeze" | "Unsqueeze" | "Reshape" | "Flatten" => {
            // Same elements, perhaps another shape; values kept for shape arithmetic.
            let dims = if matches!(op, "Identity" | "Cast" | "CastLike") {
                f.dims(0)
            } else {
                None
            };
            one(Info {
                dims,
                elements: f.elements(0),
                nums: f.nums(0),
            })
        }
        "Neg" | "Abs" | "Floor" | "Ceil" | "Round" | "Relu" => one(Info {
            dims: f.dims(0),
            elements: f.elements(0),
            nums: f
                .nums(0)
                .map(|v| v.into_iter().map(|x| unary(op, x)).collect()),
        }),
        "Sqrt"
        | "Exp"
        | "Log"
        | "Sigmoid"
        | "Tanh"
        | "Reciprocal"
        | "Sign"
        | "Not"
        | "Erf"
        | "Softmax"
        | "LogSoftmax"
        | "Clip"
        | "LeakyRelu"
        | "Elu"
        | "Selu"
        | "HardSigmoid"
        | "Dropout"
        | "Sin"
        | "Cos"
        | "IsNaN"
        | "IsInf"
        | "Transpose"
        | "InstanceNormalization"
        | "BatchNormalization"
        | "LayerNormalization"
        | "QuantizeLinear"
        | "DequantizeLinear" => {
            let mut outs = vec![Info::bounded(f.elements(0))];
            outs[0].dims = if op == "Transpose" { None } else { f.dims(0) };
            outs.resize(node.output.len().max(1), Info::bounded(f.elements(0)));
            Ok(outs)
        }
        "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1"
        | "ReduceL2"
            if f.dims(0).is_some() =>
        {
            one(Info::of_dims(reduced(
                node,
                &f.dims(0).unwrap_or_default(),
                f.nums(1),
            )))
        }
        "Slice" | "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceProd"
        | "ReduceL1" | "ReduceL2" | "ArgMax" | "ArgMin" | "Split" | "NonZero" | "Compress"
        | "Unique" | "TopK" => Ok(vec![
            Info::bounded(f.elements(0).saturating_mul(
                if op == "NonZero" { 8 } else { 1 }
            ));
            node.output.len().max(1)
        ]),
        "Concat" => one(f.concat()),
        "Gather" => one(f.gather()),
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Max" | "Min" | "Mean" | "Sum" | "Equal"
        | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or" | "Xor"
        | "Where" | "Mod" | "BitShift" | "PRelu" => one(f.broadcasting()),
        "MatMul" | "Gemm" => one(f.matmul()),
        _ => Err(f.unbounded("fresco does not know this operator's output size")),
    }
}

/// A node being folded, with what is known of its inputs (`None` for an absent one).
struct Folding<'a> {
    node: &'a NodeProto,
    inputs: &'a [Option<&'a Info>],
}

impl Folding<'_> {
    fn unbounded(&self, why: &str) -> FoldError {
        FoldError {
            node: self.node.name.clone(),
            op: self.node.op_type.clone(),
            reason: format!(
                "its inputs are constants, so loading would fold it, and the size of what it \
                 makes cannot be bounded before loading ({why})"
            ),
        }
    }

    fn input(&self, i: usize) -> Option<&Info> {
        self.inputs.get(i).copied().flatten()
    }

    fn nums(&self, i: usize) -> Option<Vec<f64>> {
        self.input(i).and_then(|info| info.nums.clone())
    }

    /// The values of input `i`, or an error saying `why` they are needed.
    fn known(&self, i: usize, why: &str) -> Result<Vec<f64>, FoldError> {
        self.nums(i).ok_or_else(|| self.unbounded(why))
    }

    fn dims(&self, i: usize) -> Option<Vec<u64>> {
        self.input(i).and_then(|info| info.dims.clone())
    }

    fn elements(&self, i: usize) -> u64 {
        self.input(i).map_or(1, |info| info.elements)
    }

    fn expand(&self) -> Result<Info, FoldError> {
        let shape = to_dims(&self.known(1, "its shape is not known")?);
        Ok(match self.dims(0) {
            Some(data) => Info::of_dims(broadcast(&[data, shape])),
            None => Info::bounded(product(&shape).saturating_mul(self.elements(0))),
        })
    }

    fn tile(&self) -> Result<Info, FoldError> {
        let repeats = to_dims(&self.known(1, "its repeats are not known")?);
        Ok(match self.dims(0) {
            Some(data) if data.len() == repeats.len() => Info::of_dims(
                data.iter()
                    .zip(&repeats)
                    .map(|(d, r)| d.saturating_mul(*r))
                    .collect(),
            ),
            _ => Info::bounded(self.elements(0).saturating_mul(product(&repeats))),
        })
    }

    fn range(&self) -> Result<Info, FoldError> {
        let scalar = |i| self.nums(i).and_then(|v| v.first().copied());
        let (Some(start), Some(end), Some(delta)) = (scalar(0), scalar(1), scalar(2)) else {
            return Err(self.unbounded("its bounds are not known"));
        };
        let count = if delta == 0.0 {
            0.0
        } else {
            ((end - start) / delta).ceil().max(0.0)
        };
        let count = if count.is_finite() {
            count as u64
        } else {
            u64::MAX
        };
        let values =
            (count <= SMALL).then(|| (0..count).map(|k| start + k as f64 * delta).collect());
        Ok(Info {
            dims: Some(vec![count]),
            elements: count,
            nums: values,
        })
    }

    /// `Resize` (sizes, or scales, from inputs) and `Upsample` (scales from an input or an
    /// attribute).
    fn resize(&self) -> Result<Info, FoldError> {
        let (scales_at, sizes_at) = if self.node.op_type == "Upsample" {
            (1, usize::MAX)
        } else {
            (2, 3)
        };
        if let Some(sizes) = self.nums(sizes_at).filter(|s| !s.is_empty()) {
            return Ok(Info::of_dims(to_dims(&sizes)));
        }
        let scales = self
            .nums(scales_at)
            .filter(|s| !s.is_empty())
            .or_else(|| floats_attr(self.node, "scales"))
            .ok_or_else(|| self.unbounded("its scales are not known"))?;
        let data = self
            .dims(0)
            .ok_or_else(|| self.unbounded("its input's shape is not known"))?;
        if scales.len() != data.len() {
            return Err(self.unbounded("its scales do not match its input"));
        }
        Ok(Info::of_dims(
            data.iter()
                .zip(&scales)
                .map(|(d, s)| scaled(*d, *s))
                .collect(),
        ))
    }

    fn pad(&self) -> Result<Info, FoldError> {
        let pads = self
            .nums(1)
            .or_else(|| ints_attr(self.node, "pads"))
            .ok_or_else(|| self.unbounded("its pads are not known"))?;
        let data = self
            .dims(0)
            .ok_or_else(|| self.unbounded("its input's shape is not known"))?;
        if pads.len() != 2 * data.len() {
            return Err(self.unbounded("its pads do not match its input"));
        }
        let rank = data.len();
        Ok(Info::of_dims(
            (0..rank)
                .map(|i| {
                    let total = data[i] as f64 + pads[i] + pads[i + rank];
                    if total.is_finite() && total > 0.0 {
                        total.min(u64::MAX as f64) as u64
                    } else {
                        0
                    }
                })
                .collect(),
        ))
    }

    fn concat(&self) -> Info {
        let count = self.inputs.len();
        let total = (0..count).fold(0u64, |n, i| n.saturating_add(self.elements(i)));
        let values: Option<Vec<f64>> = (0..count)
            .map(|i| self.nums(i))
            .collect::<Option<Vec<_>>>()
            .map(|parts| parts.concat());
        match values.filter(|v| v.len() as u64 <= SMALL) {
            Some(v) => Info::values(vec![v.len() as u64], v),
            None => Info::bounded(total),
        }
    }

    /// Values picked from a small one-dimensional constant are kept (shape arithmetic).
    fn gather(&self) -> Info {
        if let (Some(data), Some(indices)) = (self.nums(0), self.nums(1)) {
            if self.dims(0).is_some_and(|d| d.len() == 1) {
                let n = data.len() as i64;
                let picked = indices
                    .iter()
                    .map(|&i| {
                        let i = if i < 0.0 { i as i64 + n } else { i as i64 };
                        data.get(usize::try_from(i).ok()?).copied()
                    })
                    .collect::<Option<Vec<f64>>>();
                if let Some(v) = picked {
                    return Info::values(self.dims(1).unwrap_or_default(), v);
                }
            }
        }
        Info::bounded(self.elements(0).saturating_mul(self.elements(1)))
    }

    /// Elementwise operators over broadcast inputs; values computed for two small ones.
    fn broadcasting(&self) -> Info {
        let count = self.inputs.len();
        let all_dims: Option<Vec<Vec<u64>>> = (0..count).map(|i| self.dims(i)).collect();
        let values = (count == 2)
            .then(|| arithmetic(&self.node.op_type, self.nums(0)?, self.nums(1)?))
            .flatten();
        let mut info = match all_dims {
            Some(all) => Info::of_dims(broadcast(&all)),
            None => Info::bounded((0..count).fold(1u64, |n, i| n.saturating_mul(self.elements(i)))),
        };
        if let Some(v) = values {
            info.elements = v.len() as u64;
            info.nums = Some(v);
        }
        info
    }

    fn matmul(&self) -> Info {
        match (self.dims(0), self.dims(1)) {
            (Some(a), Some(b)) if a.len() >= 2 && b.len() >= 2 => {
                let trans =
                    |name| ints_attr(self.node, name).is_some_and(|v| v.first() == Some(&1.0));
                let (m, n) = if self.node.op_type == "Gemm" {
                    (
                        if trans("transA") { a[1] } else { a[0] },
                        if trans("transB") { b[0] } else { b[1] },
                    )
                } else {
                    (a[a.len() - 2], b[b.len() - 1])
                };
                let batch = broadcast(&[a[..a.len() - 2].to_vec(), b[..b.len() - 2].to_vec()]);
                Info::bounded(product(&batch).saturating_mul(m).saturating_mul(n))
            }
            _ => Info::bounded(self.elements(0).saturating_mul(self.elements(1))),
        }
    }
}

/// The dims a `Reduce*` of `dims` keeps: its `axes` (attribute, or input from opset 18; none
/// means all), each kept as 1 or dropped (`keepdims`).
fn reduced(node: &NodeProto, dims: &[u64], axes_input: Option<Vec<f64>>) -> Vec<u64> {
    let rank = dims.len() as i64;
    let keep = ints_attr(node, "keepdims").and_then(|v| v.first().copied()) != Some(0.0);
    let axes: Vec<usize> = match axes_input.or_else(|| ints_attr(node, "axes")) {
        Some(axes) if !axes.is_empty() => axes
            .iter()
            .map(|&a| {
                let a = a as i64;
                (if a < 0 { a + rank } else { a }).clamp(0, rank.max(1) - 1) as usize
            })
            .collect(),
        // No axes: the input as it is with `noop_with_empty_axes`, else all of them.
        _ if ints_attr(node, "noop_with_empty_axes").is_some_and(|v| v.first() == Some(&1.0)) => {
            return dims.to_vec();
        }
        _ => (0..dims.len()).collect(),
    };
    dims.iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keep) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// The output of `Shape` for dims `dims` (with opset 15's `start`/`end`).
fn shape_values(node: &NodeProto, dims: &[u64]) -> Info {
    let rank = dims.len() as i64;
    let at = |name: &str, default: i64| {
        let v = ints_attr(node, name)
            .and_then(|v| v.first().copied())
            .map_or(default, |v| v as i64);
        (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize
    };
    let (start, end) = (at("start", 0), at("end", rank));
    let values: Vec<f64> = dims[start..end.max(start)]
        .iter()
        .map(|&d| d as f64)
        .collect();
    Info::values(vec![values.len() as u64], values)
}

fn to_dims(values: &[f64]) -> Vec<u64> {
    values
        .iter()
        .map(|&v| {
            if v.is_finite() && v > 0.0 {
                v.min(u64::MAX as f64) as u64
            } else {
                0
            }
        })
        .collect()
}

fn scaled(d: u64, s: f64) -> u64 {
    let v = (d as f64 * s).floor();
    if v.is_finite() && v > 0.0 {
        v.min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// Numpy broadcasting of several shapes (a mismatch takes the larger size: an upper bound).
fn broadcast(shapes: &[Vec<u64>]) -> Vec<u64> {
    let rank = shapes.iter().map(Vec::len).max().unwrap_or(0);
    (0..rank)
        .map(|k| {
            shapes
                .iter()
                .filter_map(|s| (k + s.len()).checked_sub(rank).map(|i| s[i]))
                .max()
                .unwrap_or(1)
        })
        .collect()
}

fn unary(op: &str, x: f64) -> f64 {
    match op {
        "Neg" => -x,
        "Abs" => x.abs(),
        "Floor" => x.floor(),
        "Ceil" => x.ceil(),
        "Round" => x.round(),
        "Relu" => x.max(0.0),
        _ => x,
    }
}

/// Elementwise arithmetic on small values of equal length, or one of them a scalar.
fn arithmetic(op: &str, a: Vec<f64>, b: Vec<f64>) -> Option<Vec<f64>> {
    let f = |x: f64, y: f64| match op {
        "Add" | "Sum" => Some(x + y),
        "Sub" => Some(x - y),
        "Mul" => Some(x * y),
        "Div" if y != 0.0 => Some((x / y).trunc()),
        "Max" => Some(x.max(y)),
        "Min" => Some(x.min(y)),
        _ => None,
    };
    let n = a.len().max(b.len());
    if !(a.len() == b.len() || a.len() == 1 || b.len() == 1) {
        return None;
    }
    (0..n)
        .map(|i| f(a[i.min(a.len() - 1)], b[i.min(b.len() - 1)]))
        .collect()
}

/// Dims and (small) values of a tensor stored in the model.
fn tensor_info(tensor: &TensorProto) -> Info {
    let dims: Vec<u64> = tensor.dims.iter().map(|&d| d.max(0) as u64).collect();
    let mut info = Info::of_dims(dims);
    if info.elements <= SMALL {
        info.nums = tensor_values(tensor);
    }
    info
}

fn tensor_values(tensor: &TensorProto) -> Option<Vec<f64>> {
    use crate::onnx_proto::{DT_FLOAT, DT_INT64};
    const DT_INT32: i32 = 6;
    const DT_DOUBLE: i32 = 11;
    match tensor.data_type {
        DT_INT64 => tensor
            .int64s()
            .map(|v| v.into_iter().map(|x| x as f64).collect()),
        DT_FLOAT => tensor
            .floats()
            .map(|v| v.into_iter().map(f64::from).collect()),
        DT_INT32 if tensor.raw_data.is_empty() => {
            Some(tensor.int32_data.iter().map(|&x| f64::from(x)).collect())
        }
        DT_INT32 => Some(
            tensor
                .raw_data
                .chunks_exact(4)
                .map(|b| f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
        ),
        DT_DOUBLE if tensor.raw_data.is_empty() => Some(tensor.double_data.clone()),
        _ => None,
    }
}

/// The value of a `Constant` node, from whichever attribute holds it.
fn constant_info(node: &NodeProto) -> Option<Info> {
    let attribute = node.attribute.first()?;
    let attr: &AttributeProto = attribute;
    match attr.name.as_str() {
        "value" => attr.t.as_ref().map(tensor_info),
        "value_float" => attr.f.map(|f| Info::values(vec![], vec![f64::from(f)])),
        "value_int" => attr.i.map(|i| Info::values(vec![], vec![i as f64])),
        "value_floats" => Some(Info::values(
            vec![attr.floats.len() as u64],
            attr.floats.iter().map(|&f| f64::from(f)).collect(),
        )),
        "value_ints" => Some(Info::values(
            vec![attr.ints.len() as u64],
            attr.ints.iter().map(|&i| i as f64).collect(),
        )),
        "value_string" => Some(Info::bounded(1)),
        "value_strings" => Some(Info::of_dims(vec![attr.strings.len() as u64])),
        "sparse_value" => {
            let sparse = SparseTensorProto::decode(attr.sparse_tensor.as_deref()?).ok()?;
            Some(Info::of_dims(
                sparse.dims.iter().map(|&d| d.max(0) as u64).collect(),
            ))
        }
        _ => None,
    }
}

fn ints_attr(node: &NodeProto, name: &str) -> Option<Vec<f64>> {
    let a = node.attribute.iter().find(|a| a.name == name)?;
    match a.i {
        Some(i) => Some(vec![i as f64]),
        None => Some(a.ints.iter().map(|&i| i as f64).collect()),
    }
}

fn floats_attr(node: &NodeProto, name: &str) -> Option<Vec<f64>> {
    let a = node.attribute.iter().find(|a| a.name == name)?;
    Some(a.floats.iter().map(|&f| f64::from(f)).collect())
}
