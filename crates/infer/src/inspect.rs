//! A static check of an ONNX model's bytes, with no ONNX Runtime: what a process that must stay
//! up (the API server) may do with a model a user submitted.
//!
//! ONNX Runtime does two dangerous things when it builds a session. It reads the files that a
//! tensor's `external_data` names, resolved against the working directory when the model comes
//! from memory (a model could pull any file of the server into its weights), and it runs graph
//! optimisations, whose constant folding can materialise gigabytes from a model of a few hundred
//! bytes (`ConstantOfShape` of a constant shape, `Tile` with huge repeats, ...). So the protobuf
//! is decoded here and walked in full: every graph (the main one, `If`/`Loop`/`Scan` bodies in
//! attributes, functions, training graphs), every tensor in it (initializers, sparse
//! initializers, attributes), and each is held to a [`ModelBudget`]: the file size, the node
//! count, the nesting depth, the opset range, the constants that loading would build
//! ([`crate::fold`]) and the input/output shapes an image-to-image model must have.
//!
//! A model the operator installed ([`Origin::Operator`]) may keep its weights in external files
//! beside it; everything else is checked the same way.

use std::collections::HashMap;

use prost::Message;

use crate::engine::{image_layout, Layout};
use crate::fold::{ConstantScope, FoldError};
use crate::image_io::image_shapes;
use crate::onnx_proto::{
    AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto, SparseTensorProto,
    TensorProto, TrainingInfoProto, ValueInfoProto, DT_FLOAT, LOCATION_EXTERNAL,
};

/// Where a model comes from, which decides what it may reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Bytes from a user (a job's `model` file): nothing outside its own bytes.
    Submitted,
    /// A model the operator installed (the registry, `FRESCO_MODEL_DIR`, `--model-dir`): its
    /// tensors may keep their data in files beside it.
    Operator,
}

/// The limits a submitted model is held to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelBudget {
    /// The largest model file, in bytes.
    pub max_bytes: u64,
    /// The most nodes, counting every subgraph and function.
    pub max_nodes: usize,
    /// How deeply subgraphs (`If`/`Loop`/`Scan` bodies) may nest.
    pub max_depth: usize,
    /// The range of `ai.onnx` opset versions accepted.
    pub min_opset: i64,
    pub max_opset: i64,
    /// The most elements that constants built while loading (constant folding) may hold, each and
    /// together.
    pub max_constant_elements: u64,
    /// The most elements a graph input may declare with fixed dimensions.
    pub max_input_elements: u64,
}

impl Default for ModelBudget {
    fn default() -> Self {
        ModelBudget {
            // Real style models are a few MB; the server reads and decodes the whole file.
            max_bytes: 512 << 20,
            max_nodes: 20_000,
            max_depth: 8,
            min_opset: 7,
            // The newest that the ONNX Runtime in .fresco/venv (1.32) loads.
            max_opset: 28,
            // 2^26 float32 elements are 256 MiB.
            max_constant_elements: 1 << 26,
            // A 16384x16384 RGB frame, batch 4.
            max_input_elements: 4 * 3 * 16384 * 16384,
        }
    }
}

/// Why a model was refused before any runtime saw it. Each has a stable [`InspectError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    #[error("{model}: {bytes} bytes, more than the {limit} bytes a model may have")]
    TooLarge {
        model: String,
        bytes: u64,
        limit: u64,
    },
    #[error("{model}: not an ONNX model (its protobuf does not decode: {reason})")]
    NotOnnx { model: String, reason: String },
    #[error(
        "{model}: {place} keeps its data in an external file ({location}); a submitted model \
         must hold all of its data in its own bytes"
    )]
    ExternalData {
        model: String,
        place: String,
        location: String,
    },
    #[error(
        "{model}: {place} refers to a file outside the model ({what}); a submitted model may not"
    )]
    FileReference {
        model: String,
        place: String,
        what: String,
    },
    #[error("{model}: {what}, more than the {limit} allowed")]
    TooComplex {
        model: String,
        what: String,
        limit: u64,
    },
    #[error("{model}: {place}: {reason}")]
    Constant {
        model: String,
        place: String,
        reason: String,
    },
    #[error(
        "{model}: imports opset {version} of the ONNX operators; this server accepts {min} to {max}"
    )]
    Opset {
        model: String,
        version: i64,
        min: i64,
        max: i64,
    },
    #[error("{model}: not an image-to-image model: {reason}")]
    NotImageModel { model: String, reason: String },
}

impl InspectError {
    /// The stable code an API answers with (all are 422s: the request is well formed, the model
    /// cannot be used).
    pub fn code(&self) -> &'static str {
        match self {
            InspectError::TooLarge { .. } => "model-too-large",
            InspectError::NotOnnx { .. } => "model-not-onnx",
            InspectError::ExternalData { .. } => "model-external-data",
            InspectError::FileReference { .. } => "model-file-reference",
            InspectError::TooComplex { .. } | InspectError::Constant { .. } => "model-too-complex",
            InspectError::Opset { .. } => "model-opset-not-supported",
            InspectError::NotImageModel { .. } => "model-not-image",
        }
    }
}

/// What the static check learned about a model that passed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectedModel {
    pub input_name: String,
    /// The input's declared shape (symbolic axes negative).
    pub input_shape: Vec<i64>,
    pub output_name: String,
    pub layout: Layout,
    /// The batch size the model fixes, if any.
    pub fixed_batch: Option<usize>,
    /// The input's width and height when the model fixes both (frames are scaled to it).
    pub fixed_size: Option<(u32, u32)>,
    /// Channels of the output image (1: grey, 3: RGB), `None` when left open.
    pub output_channels: Option<u32>,
    /// Nodes in every graph and function.
    pub nodes: usize,
    /// The `ai.onnx` opset imported.
    pub opset: i64,
}

/// Checks `bytes` (named `label` in messages) as a model from `origin`, held to `budget`.
pub fn inspect_model(
    bytes: &[u8],
    label: &str,
    origin: Origin,
    budget: &ModelBudget,
) -> Result<InspectedModel, InspectError> {
    let model = label.to_string();
    if bytes.len() as u64 > budget.max_bytes {
        return Err(InspectError::TooLarge {
            model,
            bytes: bytes.len() as u64,
            limit: budget.max_bytes,
        });
    }
    let proto = decode::<ModelProto>(bytes, label, "the model")?;
    let opset = default_opset(&proto);
    let Some(version) = opset else {
        return Err(InspectError::NotOnnx {
            model,
            reason: "it imports no version of the ONNX operators (opset_import)".into(),
        });
    };
    if !(budget.min_opset..=budget.max_opset).contains(&version) {
        return Err(InspectError::Opset {
            model,
            version,
            min: budget.min_opset,
            max: budget.max_opset,
        });
    }
    let Some(graph) = &proto.graph else {
        return Err(InspectError::NotOnnx {
            model,
            reason: "it has no graph".into(),
        });
    };
    let mut walker = Walker {
        model: label,
        origin,
        budget,
        nodes: 0,
        constant_elements: 0,
    };
    walker.graph(graph, "the graph", 0, &ConstantScope::default())?;
    for (i, bytes) in proto.functions.iter().enumerate() {
        let function = decode::<FunctionProto>(bytes, label, &format!("function {i}"))?;
        walker.function(&function)?;
    }
    for (i, bytes) in proto.training_info.iter().enumerate() {
        let place = format!("training info {i}");
        let info = decode::<TrainingInfoProto>(bytes, label, &place)?;
        for graph in [&info.initialization, &info.algorithm]
            .into_iter()
            .flatten()
        {
            walker.graph(graph, &place, 1, &ConstantScope::default())?;
        }
    }
    let metadata: HashMap<&str, &str> = proto
        .metadata_props
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    let io = image_io(graph, label, &metadata)?;
    Ok(InspectedModel {
        nodes: walker.nodes,
        opset: version,
        ..io
    })
}

fn decode<M: Message + Default>(bytes: &[u8], model: &str, what: &str) -> Result<M, InspectError> {
    M::decode(bytes).map_err(|e| InspectError::NotOnnx {
        model: model.to_string(),
        reason: format!("{what}: {e}"),
    })
}

/// The `ai.onnx` opset version the model imports (the empty domain is `ai.onnx`).
fn default_opset(model: &ModelProto) -> Option<i64> {
    model
        .opset_import
        .iter()
        .filter(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .max()
}

/// Walks every graph, node, attribute and tensor, counting nodes.
struct Walker<'a> {
    model: &'a str,
    origin: Origin,
    budget: &'a ModelBudget,
    nodes: usize,
    constant_elements: u64,
}

impl Walker<'_> {
    fn graph(
        &mut self,
        graph: &GraphProto,
        place: &str,
        depth: usize,
        outer: &ConstantScope,
    ) -> Result<(), InspectError> {
        if depth > self.budget.max_depth {
            return Err(InspectError::TooComplex {
                model: self.model.to_string(),
                what: format!("{place} nests subgraphs {depth} deep"),
                limit: self.budget.max_depth as u64,
            });
        }
        // Where a subgraph's nodes are, for messages ("... in the subgraph of node 'if' ...").
        let within = if place == "the graph" {
            String::new()
        } else {
            format!(" in {place}")
        };
        // A subgraph counts as a node: empty ones cost work too.
        if depth > 0 {
            self.count_nodes(1)?;
        }
        for tensor in &graph.initializer {
            self.tensor(tensor, &format!("initializer '{}'{within}", tensor.name))?;
        }
        for (i, bytes) in graph.sparse_initializer.iter().enumerate() {
            self.sparse(bytes, &format!("sparse initializer {i}{within}"))?;
        }
        self.count_nodes(graph.node.len())?;
        for input in &graph.input {
            self.declared_input(input)?;
        }
        // The constants that loading this graph would fold, before its subgraphs are walked (they
        // may use the outer graph's constants).
        let scope = self.fold(graph, outer)?;
        self.constant_elements = self.constant_elements.saturating_add(scope.elements());
        if self.constant_elements > self.budget.max_constant_elements {
            return Err(InspectError::TooComplex {
                model: self.model.to_string(),
                what: format!(
                    "constants of {} elements would be built while loading",
                    self.constant_elements
                ),
                limit: self.budget.max_constant_elements,
            });
        }
        for node in &graph.node {
            self.node(node, depth, &scope, &within)?;
        }
        Ok(())
    }

    fn function(&mut self, function: &FunctionProto) -> Result<(), InspectError> {
        let place = format!("function '{}'", function.name);
        self.count_nodes(function.node.len())?;
        for attribute in &function.attribute_proto {
            self.attribute(attribute, &place, 1, &ConstantScope::default())?;
        }
        // A function's body is folded where it is inlined; its own constants are checked here.
        let body = GraphProto {
            node: function.node.clone(),
            ..GraphProto::default()
        };
        let top = ConstantScope::default();
        let scope = self.fold(&body, &top)?;
        for node in &function.node {
            self.node(node, 1, &scope, &format!(" in {place}"))?;
        }
        Ok(())
    }

    fn count_nodes(&mut self, more: usize) -> Result<(), InspectError> {
        self.nodes = self.nodes.saturating_add(more);
        if self.nodes > self.budget.max_nodes {
            return Err(InspectError::TooComplex {
                model: self.model.to_string(),
                what: format!(
                    "more than {} nodes (subgraphs and functions included)",
                    self.budget.max_nodes
                ),
                limit: self.budget.max_nodes as u64,
            });
        }
        Ok(())
    }

    fn node(
        &mut self,
        node: &NodeProto,
        depth: usize,
        scope: &ConstantScope,
        within: &str,
    ) -> Result<(), InspectError> {
        let place = format!("node '{}' ({}){within}", node.name, node.op_type);
        // ONNX Runtime's EPContext nodes name a compiled-context file beside the model
        // (`ep_cache_context` with `embed_mode` 0).
        if node.op_type == "EPContext" {
            return Err(InspectError::FileReference {
                model: self.model.to_string(),
                place,
                what: "an execution provider's context, which may be a file".into(),
            });
        }
        for attribute in &node.attribute {
            self.attribute(attribute, &place, depth, scope)?;
        }
        Ok(())
    }

    fn attribute(
        &mut self,
        attribute: &AttributeProto,
        node: &str,
        depth: usize,
        scope: &ConstantScope,
    ) -> Result<(), InspectError> {
        let place = format!("{node}, attribute '{}'", attribute.name);
        if let Some(tensor) = &attribute.t {
            self.tensor(tensor, &place)?;
        }
        for (i, bytes) in attribute.tensors.iter().enumerate() {
            let tensor = decode::<TensorProto>(bytes, self.model, &place)?;
            self.tensor(&tensor, &format!("{place} [{i}]"))?;
        }
        for bytes in attribute
            .sparse_tensor
            .iter()
            .chain(&attribute.sparse_tensors)
        {
            self.sparse(bytes, &place)?;
        }
        for bytes in attribute.g.iter().chain(&attribute.graphs) {
            let graph = decode::<GraphProto>(bytes, self.model, &place)?;
            self.graph(
                &graph,
                &format!("the subgraph of {place}"),
                depth + 1,
                scope,
            )?;
        }
        Ok(())
    }

    fn sparse(&mut self, bytes: &[u8], place: &str) -> Result<(), InspectError> {
        let sparse = decode::<SparseTensorProto>(bytes, self.model, place)?;
        for (part, tensor) in [("values", &sparse.values), ("indices", &sparse.indices)] {
            if let Some(tensor) = tensor {
                self.tensor(tensor, &format!("{place} ({part})"))?;
            }
        }
        Ok(())
    }

    fn tensor(&self, tensor: &TensorProto, place: &str) -> Result<(), InspectError> {
        let external =
            tensor.data_location == LOCATION_EXTERNAL || !tensor.external_data.is_empty();
        if external && self.origin == Origin::Submitted {
            return Err(InspectError::ExternalData {
                model: self.model.to_string(),
                place: format!("tensor '{}' of {place}", tensor.name),
                location: external_location(tensor),
            });
        }
        Ok(())
    }

    /// A graph input that declares fixed dimensions larger than any frame: `Shape` of it would
    /// fold into a huge constant.
    fn declared_input(&self, input: &ValueInfoProto) -> Result<(), InspectError> {
        let elements = declared_dims(input)
            .map(|dims| {
                dims.iter()
                    .fold(1u64, |n, &d| n.saturating_mul(d.max(1) as u64))
            })
            .unwrap_or(0);
        if elements > self.budget.max_input_elements {
            return Err(InspectError::TooComplex {
                model: self.model.to_string(),
                what: format!("input '{}' declares {elements} elements", input.name),
                limit: self.budget.max_input_elements,
            });
        }
        Ok(())
    }

    /// The constants loading `graph` would fold, for a submitted model; an operator's models
    /// are trusted not to be bombs (and may use operators the estimate does not know).
    fn fold<'s>(
        &self,
        graph: &GraphProto,
        outer: &'s ConstantScope<'s>,
    ) -> Result<ConstantScope<'s>, InspectError> {
        if self.origin == Origin::Operator {
            return Ok(ConstantScope::default());
        }
        crate::fold::estimate(graph, outer, self.budget.max_constant_elements)
            .map_err(|e| self.fold_error(e))
    }

    fn fold_error(&self, e: FoldError) -> InspectError {
        InspectError::Constant {
            model: self.model.to_string(),
            place: format!("node '{}' ({})", e.node, e.op),
            reason: e.reason,
        }
    }
}

/// What an external tensor names, for the message: the `location` entry (quoted, cut short),
/// never anything read from it.
fn external_location(tensor: &TensorProto) -> String {
    #[derive(Clone, PartialEq, Message)]
    struct Entry {
        #[prost(string, tag = "1")]
        key: String,
        #[prost(string, tag = "2")]
        value: String,
    }
    let location = tensor
        .external_data
        .iter()
        .filter_map(|bytes| Entry::decode(&bytes[..]).ok())
        .find(|e| e.key == "location")
        .map(|e| e.value);
    match location {
        Some(location) => {
            let short: String = location.chars().take(120).collect();
            format!("location {short:?}")
        }
        None => "no location given".into(),
    }
}

/// The fixed dimensions of a tensor value (symbolic ones as -1); `None` when it has no shape.
pub(crate) fn declared_dims(value: &ValueInfoProto) -> Option<Vec<i64>> {
    use crate::onnx_proto::tensor_shape_proto::dimension::Value;
    let shape = value
        .r#type
        .as_ref()?
        .tensor_type
        .as_ref()?
        .shape
        .as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match d.value {
                Some(Value::DimValue(n)) if n >= 0 => n,
                _ => -1,
            })
            .collect(),
    )
}

/// The image input and output, checked as [`crate::Engine`] checks a session's: one float32
/// input `[N,3,H,W]` (or `[N,H,W,3]`) and a first float32 output with 1 or 3 channels.
fn image_io(
    graph: &GraphProto,
    model: &str,
    metadata: &HashMap<&str, &str>,
) -> Result<InspectedModel, InspectError> {
    let not_image = |reason: String| InspectError::NotImageModel {
        model: model.to_string(),
        reason,
    };
    // Inputs that an initializer feeds are weights (IR < 4 lists them), not what a caller gives.
    let weights: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !weights.contains(i.name.as_str()))
        .collect();
    let [input] = inputs[..] else {
        return Err(not_image(format!(
            "it has {} inputs, expected one image input",
            inputs.len()
        )));
    };
    let Some(output) = graph.output.first() else {
        return Err(not_image("it has no outputs".into()));
    };
    let shape_of = |what: &str, value: &ValueInfoProto| -> Result<Vec<i64>, InspectError> {
        let tensor = value.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
        let Some(tensor) = tensor else {
            return Err(not_image(format!(
                "{what} '{}' is not a tensor",
                value.name
            )));
        };
        if tensor.elem_type != DT_FLOAT {
            return Err(not_image(format!(
                "{what} '{}' has element type {}, expected float32",
                value.name, tensor.elem_type
            )));
        }
        declared_dims(value)
            .ok_or_else(|| not_image(format!("{what} '{}' declares no shape", value.name)))
    };
    let in_shape = shape_of("input", input)?;
    let out_shape = shape_of("output", output)?;
    let layout = image_layout(
        None,
        metadata.get("fresco.layout").copied(),
        &input.name,
        &in_shape,
    )
    .map_err(not_image)?;
    let image = image_shapes(layout, (&input.name, &in_shape), (&output.name, &out_shape))
        .map_err(not_image)?;
    Ok(InspectedModel {
        input_shape: in_shape.clone(),
        input_name: input.name.clone(),
        output_name: output.name.clone(),
        layout,
        fixed_batch: in_shape
            .first()
            .copied()
            .filter(|n| *n > 0)
            .map(|n| n as usize),
        fixed_size: image.fixed_size,
        output_channels: image.output_channels,
        nodes: 0,
        opset: 0,
    })
}
