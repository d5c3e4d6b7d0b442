//! An ONNX Runtime session for one image-to-image model, and the frame conversions around it:
//! packed RGB samples (8- or 16-bit) in, float tensor in the model's layout and range, float
//! tensor out, packed RGB samples out. Frames are reflect-padded to a multiple of
//! [`EngineOptions::pad_multiple`] (the style networks downsample by 4) and cropped back.
//!
//! Models with a fixed input size (masks, depth, saliency: `[1,3,256,256]`) get each frame
//! stretched to that size, and an output of another size than the frame (fixed, or a fraction
//! of it) is scaled back to the frame's size; both with the `image` crate's triangle filter
//! (bilinear, widened when shrinking so that no pixel is skipped). An output with one channel
//! becomes grey (the channel in R, G and B). A model whose input and output are the frame's
//! size goes through none of this: its frames are exactly what they were before.

use fresco_core::{ChannelOrder, Device, ImageCard, InputRange, Normalization};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{TensorRef, ValueType};

use crate::image_io::{image_shapes, resize_rgb, OutputImage, MAX_FIXED_SIDE};
use crate::runtime::{self, RuntimeError};

/// How a session is made.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Intra-op threads; `None`: one per core.
    pub threads: Option<usize>,
    pub device: Device,
    /// Overrides what the model says (or the 0-255 default).
    pub input_range: Option<InputRange>,
    /// Overrides what the model says (or the RGB default).
    pub channel_order: Option<ChannelOrder>,
    /// A model card's per-channel normalisation: used unless `input_range` is given.
    pub normalization: Option<Normalization>,
    /// A model card's layout: overrides the model's metadata and a guess from its shape (a
    /// shape whose 3 colour channels are on the other axis is refused).
    pub layout: Option<Layout>,
    /// A model card's output range: overrides the model's `fresco.output_range`.
    pub output_range: Option<InputRange>,
    /// Frames are padded to a multiple of this before scoring, then cropped.
    pub pad_multiple: u32,
    /// fp16: the model is converted by [`crate::fp16::to_fp16`] when it is loaded.
    pub precision: crate::fp16::Precision,
}

impl EngineOptions {
    /// These options with what an image model's card pinned (see [`ImageCard`]).
    pub fn with_card(mut self, card: Option<&ImageCard>) -> Self {
        if let Some(card) = card {
            self.normalization = card.normalization;
            self.layout = card.layout;
            self.output_range = card.output_range;
            self.channel_order = self.channel_order.or(card.channel_order);
        }
        self
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            threads: None,
            device: Device::Cpu,
            input_range: None,
            channel_order: None,
            normalization: None,
            layout: None,
            output_range: None,
            pad_multiple: 4,
            precision: crate::fp16::Precision::Fp32,
        }
    }
}

/// Tensor layout of the image axis (a domain type: a job pins it with a model card).
pub use fresco_core::Layout;

/// What the model takes and gives, read from the model (shapes, metadata) and the options.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelIo {
    pub input_name: String,
    pub output_name: String,
    pub layout: Layout,
    /// The input's range: the option, else the model's `fresco.input_range`, else 0-255.
    pub range: InputRange,
    /// How samples become the input's values: the input range's, or a card's mean and std.
    pub normalization: Normalization,
    /// The range of the output's values, mapped to the full range of the samples written:
    /// a card's, else the model's `fresco.output_range`, else [`ModelIo::range`] (style models
    /// give what they take). A mask giving probabilities 0..1 from 0..255 pixels declares `"0-1"`.
    pub output_range: InputRange,
    pub channel_order: ChannelOrder,
    /// The batch size the model fixes, if it fixes one (`None`: any number of frames per call).
    pub fixed_batch: Option<usize>,
    /// The input's width and height when the model fixes both: each frame is scaled to it.
    pub fixed_size: Option<(u32, u32)>,
    /// Channels of the output image: 3 (RGB), 1 (grey), or `None` when the model leaves it open
    /// (read from each output).
    pub output_channels: Option<u32>,
}

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The asked device cannot be used here (no CUDA provider, no GPU, no such GPU).
    #[error(transparent)]
    DeviceUnavailable(#[from] crate::device::DeviceError),
    #[error("{model}: not a valid ONNX model: {reason}")]
    InvalidModel { model: String, reason: String },
    #[error("{model}: not an image-to-image model: {reason}")]
    NotImageModel { model: String, reason: String },
    #[error("device {device}: {reason}")]
    Device { device: Device, reason: String },
    #[error("{model}: inference failed on a {width}x{height} frame: {reason}")]
    Run {
        model: String,
        width: u32,
        height: u32,
        reason: String,
    },
}

/// The external-data folder of a model with no folder of its own (a built-in one, bytes): a path
/// that does not exist, so that nothing resolves against the working directory.
const NO_EXTERNAL_DATA_FOLDER: &str = "/nonexistent/fresco-model-has-no-folder";

/// How many ONNX Runtime sessions this process has started to build: a process that must never
/// build one for an untrusted model (the API server) is tested against it.
static SESSIONS_BUILT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The number of sessions this process has started to build (see [`Engine::from_bytes`]).
pub fn sessions_built() -> u64 {
    SESSIONS_BUILT.load(std::sync::atomic::Ordering::Relaxed)
}

/// A pixel sample type the engine reads and writes: 8-bit or 16-bit.
pub trait Sample: Copy + Send + Sync + 'static {
    const MAX: f32;
    fn to_f32(self) -> f32;
    fn from_f32(v: f32) -> Self;
}

impl Sample for u8 {
    const MAX: f32 = 255.0;
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn from_f32(v: f32) -> Self {
        v.round().clamp(0.0, 255.0) as u8
    }
}

impl Sample for u16 {
    const MAX: f32 = 65535.0;
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn from_f32(v: f32) -> Self {
        v.round().clamp(0.0, 65535.0) as u16
    }
}

/// One loaded model, ready to style frames. Not shared between threads: make one per worker.
pub struct Engine {
    session: Session,
    io: ModelIo,
    label: String,
    pad_multiple: u32,
    device: Device,
    input: Vec<f32>,
    /// Frames per inference call (see [`Engine::set_batch`]).
    batch: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("model", &self.label)
            .field("io", &self.io)
            .finish()
    }
}

impl Engine {
    /// Loads a model from memory; `label` names it in messages. External data, if the model has
    /// any, is not found (see [`Engine::from_bytes_in`]).
    pub fn from_bytes(
        bytes: &[u8],
        label: &str,
        options: &EngineOptions,
    ) -> Result<Engine, EngineError> {
        Engine::from_bytes_in(bytes, label, options, None)
    }

    /// Loads a model from memory whose external data files (if any) are in `folder`: the model
    /// file's own folder. ONNX Runtime resolves them against the working directory when a
    /// model comes from memory with no folder set, so one is always set: without `folder`, a
    /// path that does not exist.
    pub fn from_bytes_in(
        bytes: &[u8],
        label: &str,
        options: &EngineOptions,
        folder: Option<&std::path::Path>,
    ) -> Result<Engine, EngineError> {
        let session = build_session(bytes, label, options, folder)?;
        let io = inspect(&session, label, options)?;
        let batch = io_batch(&io);
        Ok(Engine {
            session,
            io,
            label: label.to_string(),
            pad_multiple: options.pad_multiple.max(1),
            device: options.device,
            input: Vec::new(),
            batch,
        })
    }

    pub fn io(&self) -> &ModelIo {
        &self.io
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// Frames per inference call that the frame loops should gather.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Asks for `asked` frames per inference call (`--batch`). A model that fixes its batch
    /// size gets that size instead, and the returned note says so: with a fixed size of 1,
    /// frames are scored one at a time; with a larger one, a short last batch is padded.
    pub fn set_batch(&mut self, asked: usize) -> Option<String> {
        let asked = asked.max(1);
        match self.io.fixed_batch {
            Some(fixed) if fixed != asked => {
                self.batch = fixed;
                Some(format!(
                    "{}: the model fixes its batch size at {fixed}, so frames are scored {} per \
                     call instead of the {asked} asked",
                    self.label,
                    if fixed == 1 {
                        "one".to_string()
                    } else {
                        fixed.to_string()
                    }
                ))
            }
            _ => {
                self.batch = asked;
                None
            }
        }
    }

    /// Refuses a model that fixes its input at more than [`MAX_FIXED_SIDE`] a side: every
    /// frame is scaled to that size (videos are decoded at it), so a tiny clip would become
    /// huge frames. Not part of loading, so that a model's first load (the trial under a
    /// memory limit) is what it was; checked before any frame is scaled.
    pub fn check_fixed_size(&self) -> Result<(), EngineError> {
        match self.io.fixed_size {
            Some((w, h)) if w.max(h) > MAX_FIXED_SIDE => Err(EngineError::NotImageModel {
                model: self.label.clone(),
                reason: format!(
                    "its input fixes its size at {w}x{h}; fresco scales frames to a fixed size \
                     of at most {MAX_FIXED_SIDE} a side"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Styles one packed-RGB frame (`width*height*3` samples) into `output` (same size).
    pub fn style_rgb<S: Sample>(
        &mut self,
        width: u32,
        height: u32,
        input: &[S],
        output: &mut [S],
    ) -> Result<(), EngineError> {
        self.style_frames(width, height, &[input], &mut [output])
    }

    /// Styles several frames of one size, [`Engine::batch`] of them per inference call.
    pub fn style_frames<S: Sample>(
        &mut self,
        width: u32,
        height: u32,
        inputs: &[&[S]],
        outputs: &mut [&mut [S]],
    ) -> Result<(), EngineError> {
        assert_eq!(inputs.len(), outputs.len(), "one output per input frame");
        // A model with a fixed batch size takes exactly that many frames per call.
        let per_call = self.io.fixed_batch.unwrap_or(self.batch).max(1);
        for (ins, outs) in inputs.chunks(per_call).zip(outputs.chunks_mut(per_call)) {
            self.style_call(width, height, ins, outs)?;
        }
        Ok(())
    }

    /// One inference call on up to a batch of frames.
    fn style_call<S: Sample>(
        &mut self,
        width: u32,
        height: u32,
        inputs: &[&[S]],
        outputs: &mut [&mut [S]],
    ) -> Result<(), EngineError> {
        self.check_fixed_size()?;
        let (w, h) = (width as usize, height as usize);
        let expected = w * h * 3;
        for (input, output) in inputs.iter().zip(outputs.iter()) {
            assert_eq!(input.len(), expected, "input frame has the wrong length");
            assert_eq!(output.len(), expected, "output frame has the wrong length");
        }
        let frames = inputs.len();
        // A fixed batch size is filled up by repeating the last frame; those outputs are dropped.
        let batch = self.io.fixed_batch.unwrap_or(frames).max(frames);
        // What the model is fed: the frame reflect-padded to the pad multiple, or the frame
        // scaled to the model's fixed size (no padding: the size is the model's).
        let scaled = self.io.fixed_size.filter(|&size| size != (width, height));
        let (pw, ph) = match self.io.fixed_size {
            Some((fw, fh)) => (fw as usize, fh as usize),
            None => {
                let m = self.pad_multiple as usize;
                (w.div_ceil(m) * m, h.div_ceil(m) * m)
            }
        };
        let bgr = self.io.channel_order == ChannelOrder::Bgr;
        // Per frame channel (R, G, B): value = sample * gain + bias, from the model channel's
        // normalisation; `unit` for samples already in 0..1 (a resize's output).
        let per_pixel_channel = |(gain, bias): ([f32; 3], [f32; 3])| {
            let m = |c: usize| if bgr { 2 - c } else { c };
            (
                std::array::from_fn::<f32, 3, _>(|c| gain[m(c)]),
                std::array::from_fn::<f32, 3, _>(|c| bias[m(c)]),
            )
        };
        let (gain, bias) = per_pixel_channel(self.io.normalization.gain_bias(S::MAX));
        let (unit_gain, unit_bias) = per_pixel_channel(self.io.normalization.gain_bias(1.0));
        let plane = pw * ph;
        self.input.clear();
        self.input.resize(batch * plane * 3, 0.0);
        for b in 0..batch {
            let input = inputs[b.min(frames - 1)];
            let image = &mut self.input[b * plane * 3..(b + 1) * plane * 3];
            let layout = self.io.layout;
            let mut put = |px: usize, py: usize, c: usize, value: f32| {
                let channel = if bgr { 2 - c } else { c };
                let dst = match layout {
                    Layout::Nchw => channel * plane + py * pw + px,
                    Layout::Nhwc => (py * pw + px) * 3 + channel,
                };
                image[dst] = value;
            };
            if let Some((fw, fh)) = scaled {
                // Samples go through the resize as 0..1 (the `image` crate clamps floats there).
                let unit: Vec<f32> = input.iter().map(|v| v.to_f32() / S::MAX).collect();
                let small = resize_rgb(unit, width, height, fw, fh);
                for (i, rgb) in small.chunks_exact(3).enumerate() {
                    for (c, v) in rgb.iter().enumerate() {
                        put(i % pw, i / pw, c, v * unit_gain[c] + unit_bias[c]);
                    }
                }
                continue;
            }
            for py in 0..ph {
                let sy = reflect(py, h);
                for px in 0..pw {
                    let sx = reflect(px, w);
                    let src = (sy * w + sx) * 3;
                    for c in 0..3 {
                        put(px, py, c, input[src + c].to_f32() * gain[c] + bias[c]);
                    }
                }
            }
        }
        let shape: [usize; 4] = match self.io.layout {
            Layout::Nchw => [batch, 3, ph, pw],
            Layout::Nhwc => [batch, ph, pw, 3],
        };
        let run_error = |reason: String| EngineError::Run {
            model: self.label.clone(),
            width,
            height,
            reason,
        };
        let tensor = TensorRef::from_array_view((shape, &self.input[..]))
            .map_err(|e| run_error(e.to_string()))?;
        let results = self
            .session
            .run(ort::inputs![self.io.input_name.as_str() => tensor])
            .map_err(|e| run_error(first_line(&e.to_string())))?;
        let (out_shape, data) = results[self.io.output_name.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| run_error(e.to_string()))?;
        let dims: Vec<i64> = out_shape.iter().copied().collect();
        let out = match (self.io.layout, &dims[..]) {
            (Layout::Nchw, &[_, c @ (1 | 3), oh, ow]) => OutputImage::new(c, oh, ow, Layout::Nchw),
            (Layout::Nhwc, &[_, oh, ow, c @ (1 | 3)]) => OutputImage::new(c, oh, ow, Layout::Nhwc),
            _ => {
                return Err(run_error(format!(
                    "output has shape {dims:?}, expected an image with 1 or 3 channels"
                )))
            }
        };
        if dims[0] < frames as i64 {
            return Err(run_error(format!(
                "output has {} images for a batch of {batch} frames",
                dims[0]
            )));
        }
        let scale_out = S::MAX / self.io.output_range.max_value();
        let max = self.io.output_range.max_value();
        // The output covers what was fed: the padded frame (cropped back to the frame when the
        // output has its size, as style models' do), or the frame itself when it was scaled to
        // a fixed size. An output of any other size is scaled back over what was fed.
        let cropped = self.io.fixed_size.is_none() && (out.width, out.height) == (pw, ph);
        for (b, output) in outputs.iter_mut().enumerate() {
            let image = &data[b * out.len()..(b + 1) * out.len()];
            if cropped {
                for y in 0..h {
                    for x in 0..w {
                        let dst = (y * w + x) * 3;
                        for c in 0..3 {
                            let value = out.sample(image, x, y, c, bgr);
                            output[dst + c] = S::from_f32(value.clamp(0.0, max) * scale_out);
                        }
                    }
                }
                continue;
            }
            let mut unit = Vec::with_capacity(out.width * out.height * 3);
            for y in 0..out.height {
                for x in 0..out.width {
                    for c in 0..3 {
                        unit.push(out.sample(image, x, y, c, bgr).clamp(0.0, max) / max);
                    }
                }
            }
            // Scaled to the size that was fed (the frame, or the padded frame), then cropped.
            let (fed_w, fed_h) = if self.io.fixed_size.is_some() {
                (w, h)
            } else {
                (pw, ph)
            };
            let back = resize_rgb(
                unit,
                out.width as u32,
                out.height as u32,
                fed_w as u32,
                fed_h as u32,
            );
            for y in 0..h {
                let row = &back[y * fed_w * 3..(y * fed_w + w) * 3];
                output[y * w * 3..(y + 1) * w * 3]
                    .iter_mut()
                    .zip(row)
                    .for_each(|(o, v)| *o = S::from_f32(v * S::MAX));
            }
        }
        Ok(())
    }
}

/// A session for `bytes` with the options every model gets, whatever it computes: threads,
/// device (CUDA preflight), the CPU rewrites or the fp16 conversion, and the external-data
/// folder (see [`Engine::from_bytes_in`]). Shared by [`Engine`] and [`crate::tensors::TensorEngine`].
pub(crate) fn build_session(
    bytes: &[u8],
    label: &str,
    options: &EngineOptions,
    folder: Option<&std::path::Path>,
) -> Result<Session, EngineError> {
    let env = runtime::environment()?;
    let invalid = |e: ort::Error| EngineError::InvalidModel {
        model: label.to_string(),
        reason: first_line(&e.to_string()),
    };
    let mut builder = Session::builder(env)
        .map_err(invalid)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| invalid(e.into()))?;
    // ONNX Runtime's `kOrtSessionOptionsModelExternalInitializersFileFolderPath`.
    let folder = folder.map_or_else(
        || NO_EXTERNAL_DATA_FOLDER.to_string(),
        |f| f.display().to_string(),
    );
    builder = builder
        .with_config_entry(
            "session.model_external_initializers_file_folder_path",
            &folder,
        )
        .map_err(|e| invalid(e.into()))?;
    let threads = options.threads.unwrap_or_else(default_threads);
    builder = builder
        .with_intra_threads(threads)
        .map_err(|e| invalid(e.into()))?;
    if let Device::Cuda(ordinal) = options.device {
        crate::device::preflight(options.device).map_err(|e| match e {
            crate::device::PreflightError::Runtime(e) => EngineError::Runtime(e),
            crate::device::PreflightError::Device(e) => EngineError::DeviceUnavailable(e),
        })?;
        let provider = ort::ep::CUDA::default()
            .with_device_id(ordinal as i32)
            .build()
            .error_on_failure();
        builder =
            builder
                .with_execution_providers([provider])
                .map_err(|e| EngineError::Device {
                    device: options.device,
                    reason: format!(
                        "{}; {}",
                        first_line(&e.to_string()),
                        crate::device::CUDA_HINT
                    ),
                })?;
    }
    let rewritten;
    let converted;
    let bytes = match options.precision {
        crate::fp16::Precision::Fp32 if options.device == Device::Cpu => {
            rewritten = cpu_rewrite(bytes, label);
            rewritten.as_deref().unwrap_or(bytes)
        }
        crate::fp16::Precision::Fp32 => bytes,
        crate::fp16::Precision::Fp16 => {
            crate::fp16::check_device(options.precision, options.device).map_err(|e| {
                EngineError::Device {
                    device: options.device,
                    reason: e.to_string(),
                }
            })?;
            converted = crate::fp16::to_fp16(bytes)
                .map_err(|e| EngineError::InvalidModel {
                    model: label.to_string(),
                    reason: format!("--precision fp16: {e}"),
                })?
                .0;
            &converted[..]
        }
    };
    SESSIONS_BUILT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    builder.commit_from_memory(bytes).map_err(invalid)
}

/// Mirror index for reflect padding (`abcd|cb`), valid for any pad smaller than the size.
fn reflect(i: usize, n: usize) -> usize {
    if i < n {
        return i;
    }
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let k = i % period;
    if k < n {
        k
    } else {
        period - k
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The model with [`crate::rewrite`]'s exact CPU rewrites applied, or `None` to load it as it
/// is (nothing matched, `FRESCO_NO_REWRITE` is set, or the bytes do not decode, in which case
/// ONNX Runtime reports the problem).
fn cpu_rewrite(bytes: &[u8], label: &str) -> Option<Vec<u8>> {
    if crate::rewrite::disabled_by_env() {
        return None;
    }
    match crate::rewrite::rewrite_for_cpu(bytes) {
        Ok(Some((rewritten, report))) => {
            tracing::debug!(model = label, ?report, "exact CPU graph rewrite applied");
            Some(rewritten)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::debug!(model = label, error = %e, "graph rewrite skipped");
            None
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

/// Reads the model's input and output, and checks that it maps an RGB image to an RGB image.
fn inspect(
    session: &Session,
    label: &str,
    options: &EngineOptions,
) -> Result<ModelIo, EngineError> {
    let not_image = |reason: String| EngineError::NotImageModel {
        model: label.to_string(),
        reason,
    };
    let [input] = session.inputs() else {
        return Err(not_image(format!(
            "it has {} inputs, expected one image input",
            session.inputs().len()
        )));
    };
    let Some(output) = session.outputs().first() else {
        return Err(not_image("it has no outputs".into()));
    };
    let metadata = session.metadata().ok();
    let custom = |key: &str| metadata.as_ref().and_then(|m| m.custom(key));

    let shape_of = |name: &str, dtype: &ValueType| -> Result<Vec<i64>, EngineError> {
        match dtype {
            ValueType::Tensor { ty, shape, .. } => {
                if *ty != ort::value::TensorElementType::Float32 {
                    return Err(not_image(format!(
                        "{name} has element type {ty:?}, expected float32"
                    )));
                }
                Ok(shape.iter().copied().collect())
            }
            other => Err(not_image(format!(
                "{name} is a {other:?}, expected a tensor"
            ))),
        }
    };
    let in_shape = shape_of(&format!("input '{}'", input.name()), input.dtype())?;
    let out_shape = shape_of(&format!("output '{}'", output.name()), output.dtype())?;
    let layout = image_layout(
        options.layout,
        custom("fresco.layout").as_deref(),
        input.name(),
        &in_shape,
    )
    .map_err(not_image)?;
    let image = image_shapes(
        layout,
        (input.name(), &in_shape),
        (output.name(), &out_shape),
    )
    .map_err(not_image)?;
    let range = match options.input_range {
        Some(r) => r,
        None => custom("fresco.input_range")
            .and_then(|r| r.parse().ok())
            .unwrap_or_default(),
    };
    // The range option is the user's flag: it wins over a card's normalisation.
    let normalization = match (options.input_range, options.normalization) {
        (None, Some(card)) => card,
        _ => Normalization::of_range(range),
    };
    let output_range = options
        .output_range
        .or_else(|| custom("fresco.output_range").and_then(|r| r.parse().ok()))
        .unwrap_or(range);
    let channel_order = match options.channel_order {
        Some(o) => o,
        None => custom("fresco.channel_order")
            .and_then(|r| r.parse().ok())
            .unwrap_or_default(),
    };
    Ok(ModelIo {
        input_name: input.name().to_string(),
        output_name: output.name().to_string(),
        layout,
        range,
        normalization,
        output_range,
        channel_order,
        // The batch axis comes first in both layouts; symbolic sizes are negative.
        fixed_batch: in_shape
            .first()
            .copied()
            .filter(|n| *n > 0)
            .map(|n| n as usize),
        fixed_size: image.fixed_size,
        output_channels: image.output_channels,
    })
}

/// Frames per call before any `--batch`: one, or what the model fixes.
fn io_batch(io: &ModelIo) -> usize {
    io.fixed_batch.unwrap_or(1)
}

/// The layout of an image model's input `name` of shape `shape`: the one `asked` (a card's),
/// else the model's `fresco.layout` metadata, else guessed from the shape. An asked layout
/// that the shape contradicts (its 3 colour channels on the other axis) is refused.
pub fn image_layout(
    asked: Option<Layout>,
    metadata: Option<&str>,
    name: &str,
    shape: &[i64],
) -> Result<Layout, String> {
    let shown = show_shape(shape);
    if let Some(asked) = asked {
        let says = match (shape.get(1), shape.get(3)) {
            (Some(3), Some(d)) if *d != 3 => Some(Layout::Nchw),
            (Some(d), Some(3)) if *d != 3 => Some(Layout::Nhwc),
            _ => None,
        };
        return match says {
            Some(says) if says != asked => Err(format!(
                "layout: input '{name}' has shape {shown}, which is {says}, but {asked} was given"
            )),
            _ => Ok(asked),
        };
    }
    match metadata {
        Some("nhwc") => Ok(Layout::Nhwc),
        Some("nchw") => Ok(Layout::Nchw),
        _ => guess_layout(shape).ok_or_else(|| {
            format!("input '{name}' has shape {shown}, expected [N,3,H,W] or [N,H,W,3]")
        }),
    }
}

pub(crate) fn guess_layout(shape: &[i64]) -> Option<Layout> {
    if shape.len() != 4 {
        return None;
    }
    match (shape[1], shape[3]) {
        (3, _) => Some(Layout::Nchw),
        (_, 3) => Some(Layout::Nhwc),
        (-1, -1) => Some(Layout::Nchw),
        _ => None,
    }
}

pub(crate) fn show_shape(shape: &[i64]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|d| {
            if *d < 0 {
                "?".to_string()
            } else {
                d.to_string()
            }
        })
        .collect();
    format!("[{}]", dims.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_mirrors_without_repeating_the_edge() {
        let n = 5;
        let got: Vec<usize> = (0..9).map(|i| reflect(i, n)).collect();
        assert_eq!(got, vec![0, 1, 2, 3, 4, 3, 2, 1, 0]);
        assert_eq!(reflect(3, 1), 0);
    }

    #[test]
    fn layouts_are_guessed_from_the_channel_axis() {
        assert_eq!(guess_layout(&[1, 3, -1, -1]), Some(Layout::Nchw));
        assert_eq!(guess_layout(&[-1, -1, -1, 3]), Some(Layout::Nhwc));
        assert_eq!(guess_layout(&[1, 1, 8, 8]), None);
        assert_eq!(guess_layout(&[1, 3]), None);
    }

    #[test]
    fn samples_convert_with_rounding_and_clamping() {
        assert_eq!(u8::from_f32(254.6), 255);
        assert_eq!(u8::from_f32(-3.0), 0);
        assert_eq!(u8::from_f32(300.0), 255);
        assert_eq!(u16::from_f32(65535.4), 65535);
    }
}
