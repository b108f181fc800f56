//! f32 training: a network built from an [`Arch`], with forward and backward passes
//! written for this layer vocabulary.
//!
//! Layouts follow Keras, so that weights read the same way: activations NHWC,
//! convolution kernels `[KH, KW, C_in, C_out]`, depthwise kernels `[KH, KW, C_in ·
//! multiplier]` (output channel `c · multiplier + j`), dense kernels `[N_in, units]`.
//! Convolutions and dense layers run as im2col + GEMM ([`gemm`]); a batch is cut into a
//! fixed number of parts that run on the rayon pool, and per-part weight gradients are
//! summed in part order, so results do not depend on the number of threads. Large
//! buffers come from a pool (`nn::pool`) and go back to it, so batches reuse them.

pub mod gemm;
mod kernels;
pub mod optim;
mod pool;
mod simd;

use crate::train::arch::{Act, Arch, LayerSpec, PaddingSpec, Shortcut};
use anyhow::{bail, Result};
use microcnn_core::shape::{output_size, padding_before};
use microcnn_core::Padding;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use kernels::Geom;

/// Parts a batch is cut into for the thread pool.
pub const PARTS: usize = 4;

/// A node's operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// The network input.
    Input,
    /// Convolution (also 1×1 pointwise and residual projections).
    Conv2d {
        /// Geometry.
        geom: Geom,
        /// Fused activation.
        act: Act,
    },
    /// Depthwise convolution.
    Depthwise {
        /// Geometry.
        geom: Geom,
        /// Depth multiplier.
        multiplier: usize,
        /// Fused activation.
        act: Act,
    },
    /// Max pooling.
    MaxPool {
        /// Geometry.
        geom: Geom,
    },
    /// Average pooling (valid cells only).
    AvgPool {
        /// Geometry.
        geom: Geom,
    },
    /// Mean over height and width.
    GlobalAvgPool,
    /// Reshape to `[1, 1, N]`.
    Flatten,
    /// Fully connected.
    Dense {
        /// Fused activation.
        act: Act,
    },
    /// Inverted dropout.
    Dropout {
        /// Fraction dropped.
        rate: f32,
    },
    /// Batch normalization.
    BatchNorm {
        /// Momentum of the moving averages.
        momentum: f32,
        /// Variance epsilon.
        epsilon: f32,
        /// Activation after it.
        act: Act,
    },
    /// Element-wise sum of two inputs.
    Add {
        /// Activation after it.
        act: Act,
    },
    /// Channel concatenation.
    Concat,
}

impl Layer {
    /// A short kind name for tables and tensor names.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Input => "input",
            Layer::Conv2d { .. } => "conv2d",
            Layer::Depthwise { .. } => "depthwise_conv2d",
            Layer::MaxPool { .. } => "maxpool2d",
            Layer::AvgPool { .. } => "avgpool2d",
            Layer::GlobalAvgPool => "global_avgpool",
            Layer::Flatten => "flatten",
            Layer::Dense { .. } => "dense",
            Layer::Dropout { .. } => "dropout",
            Layer::BatchNorm { .. } => "batchnorm",
            Layer::Add { .. } => "add",
            Layer::Concat => "concat",
        }
    }

    /// The fused activation, if the layer has one.
    pub fn act(&self) -> Act {
        match self {
            Layer::Conv2d { act, .. }
            | Layer::Depthwise { act, .. }
            | Layer::Dense { act }
            | Layer::BatchNorm { act, .. }
            | Layer::Add { act } => *act,
            _ => Act::None,
        }
    }
}

/// A named parameter tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// `kernel`, `bias`, `gamma`, `beta`, `moving_mean` or `moving_variance`.
    pub name: &'static str,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values.
    pub data: Vec<f32>,
    /// Whether the optimizer updates it (moving statistics never are).
    pub trainable: bool,
}

/// One node of the network graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// A stable name (`layer3`, `layer4.1`, `layer4.shortcut`), used for tensor names.
    pub name: String,
    /// Where it came from in the architecture file, for messages (`layer 3 (conv2d)`).
    pub origin: String,
    /// The operation.
    pub layer: Layer,
    /// Input nodes.
    pub inputs: Vec<usize>,
    /// Output shape `[h, w, c]`.
    pub shape: [usize; 3],
    /// Parameters.
    pub params: Vec<Param>,
    /// Frozen nodes keep their parameters, and their batch norm runs in inference mode.
    pub frozen: bool,
    /// Batch norm in inference mode (moving statistics) even while training, as Keras
    /// advises for a fine-tuned base; `gamma` and `beta` still train unless frozen.
    pub bn_inference: bool,
}

impl Node {
    /// Elements of one sample's output.
    pub fn size(&self) -> usize {
        self.shape.iter().product()
    }

    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Multiply-accumulates for one sample.
    pub fn macs(&self, nodes: &[Node]) -> usize {
        let out = self.size();
        match &self.layer {
            Layer::Conv2d { geom, .. } => out * geom.kernel[0] * geom.kernel[1] * geom.input[2],
            Layer::Depthwise { geom, .. } => out * geom.kernel[0] * geom.kernel[1],
            Layer::Dense { .. } => out * nodes[self.inputs[0]].size(),
            _ => 0,
        }
    }

    /// Trainable and non-trainable parameter count.
    pub fn param_count(&self) -> usize {
        self.params.iter().map(|p| p.data.len()).sum()
    }
}

/// Whether a pass trains (batch statistics, dropout) or infers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Training.
    Train,
    /// Inference.
    Infer,
}

/// A network ready to train or run.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    /// The architecture it was built from.
    pub arch: Arch,
    /// Nodes in execution order; node 0 is the input, the last node the output.
    pub nodes: Vec<Node>,
}

/// What a forward pass keeps for the backward pass.
#[derive(Debug)]
pub struct Trace {
    /// Samples in the batch.
    pub n: usize,
    /// Every node's output, `n × size`.
    pub outputs: Vec<Vec<f32>>,
    caches: Vec<kernels::Cache>,
}

impl Drop for Trace {
    /// The buffers go back to the pool for the next batch.
    fn drop(&mut self) {
        for v in self.outputs.drain(..) {
            pool::give(v);
        }
        for cache in self.caches.drain(..) {
            match cache {
                kernels::Cache::Mask(v) => pool::give(v),
                kernels::Cache::BatchNorm { .. } | kernels::Cache::Conv | kernels::Cache::None => {}
            }
        }
    }
}

impl Trace {
    /// The network output.
    pub fn output(&self) -> &[f32] {
        self.outputs.last().map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Gradients, one vector per parameter of every node (empty for non-trainable ones).
pub type Grads = Vec<Vec<Vec<f32>>>;

struct Builder {
    nodes: Vec<Node>,
    rng: ChaCha8Rng,
}

fn padding(p: PaddingSpec) -> Padding {
    match p {
        PaddingSpec::Same => Padding::Same,
        PaddingSpec::Valid | PaddingSpec::Explicit(_) => Padding::Valid,
    }
}

fn glorot(rng: &mut ChaCha8Rng, len: usize, fan_in: usize, fan_out: usize) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
    (0..len).map(|_| rng.random_range(-limit..limit)).collect()
}

/// The most parameters one layer may have (checked before anything is allocated):
/// 64 Mi values, 256 MiB in f32 (and as much again for each of the gradient and the
/// two Adam moments). Networks for microcontrollers are a thousand times smaller.
pub const MAX_LAYER_PARAMS: usize = 64 << 20;

/// The most values one sample's activation of one layer may have: 64 Mi (a
/// 4,096×4,096×4 tensor), 256 MiB in f32 per sample, before the batch multiplies it.
pub const MAX_ACTIVATION: usize = 64 << 20;

/// `dims` multiplied, if the product stays within `limit`.
fn bounded_product(dims: &[usize], limit: usize) -> Option<usize> {
    dims.iter().try_fold(1_usize, |acc, &d| acc.checked_mul(d)).filter(|&n| n <= limit)
}

/// Refuses a kernel of `dims` (before it is allocated) beyond [`MAX_LAYER_PARAMS`].
fn check_params(dims: &[usize]) -> Result<usize> {
    bounded_product(dims, MAX_LAYER_PARAMS).ok_or_else(|| {
        let shown: Vec<String> = dims.iter().map(usize::to_string).collect();
        anyhow::anyhow!("a {} kernel is too large: at most {MAX_LAYER_PARAMS} parameters per layer", shown.join("×"))
    })
}

impl Builder {
    fn push(&mut self, name: String, origin: &str, layer: Layer, inputs: Vec<usize>, shape: [usize; 3]) -> usize {
        self.nodes.push(Node {
            name,
            origin: origin.to_string(),
            layer,
            inputs,
            shape,
            params: vec![],
            frozen: false,
            bn_inference: false,
        });
        self.nodes.len() - 1
    }

    fn param(&mut self, node: usize, name: &'static str, shape: Vec<usize>, data: Vec<f32>, trainable: bool) {
        self.nodes[node].params.push(Param { name, shape, data, trainable });
    }

    fn geom(
        &self,
        input: usize,
        kernel: [usize; 2],
        strides: [usize; 2],
        pad: PaddingSpec,
        out_c: usize,
    ) -> Result<Geom> {
        let s = self.nodes[input].shape;
        let (p, dil) = (padding(pad), 1);
        // Explicit padding: a valid window over the padded input.
        let extra = match pad {
            PaddingSpec::Explicit([t, b, l, r]) => [t + b, l + r],
            _ => [0, 0],
        };
        let (Some(oh), Some(ow)) = (
            output_size(s[0] + extra[0], kernel[0], strides[0], dil, p),
            output_size(s[1] + extra[1], kernel[1], strides[1], dil, p),
        ) else {
            bail!("a {}×{} window does not fit the {}×{} input (padding \"valid\")", kernel[0], kernel[1], s[0], s[1]);
        };
        if bounded_product(&[oh, ow, out_c], MAX_ACTIVATION).is_none() {
            bail!("a {oh}×{ow}×{out_c} output is too large (at most {MAX_ACTIVATION} values per sample)");
        }
        Ok(Geom {
            input: s,
            output: [oh, ow, out_c],
            kernel,
            strides,
            pad: match pad {
                PaddingSpec::Explicit([t, _, l, _]) => [t, l],
                _ => [
                    padding_before(s[0], kernel[0], strides[0], dil, oh),
                    padding_before(s[1], kernel[1], strides[1], dil, ow),
                ],
            },
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        name: String,
        origin: &str,
        x: usize,
        filters: usize,
        kernel: [usize; 2],
        strides: [usize; 2],
        pad: PaddingSpec,
        act: Act,
        use_bias: bool,
    ) -> Result<usize> {
        let geom = self.geom(x, kernel, strides, pad, filters)?;
        let cin = geom.input[2];
        let node = self.push(name, origin, Layer::Conv2d { geom, act }, vec![x], geom.output);
        let rf = kernel[0] * kernel[1];
        let len = check_params(&[kernel[0], kernel[1], cin, filters])?;
        let k = glorot(&mut self.rng, len, rf * cin, rf * filters);
        self.param(node, "kernel", vec![kernel[0], kernel[1], cin, filters], k, true);
        if use_bias {
            self.param(node, "bias", vec![filters], vec![0.0; filters], true);
        }
        Ok(node)
    }

    fn layers(&mut self, specs: &[LayerSpec], mut x: usize, prefix: &str, origin_prefix: &str) -> Result<usize> {
        for (i, spec) in specs.iter().enumerate() {
            let name = format!("{prefix}{}", i + 1);
            let origin = format!("{origin_prefix}{} ({})", i + 1, spec.type_name());
            x = self.layer(spec, x, &name, &origin).map_err(|e| {
                if e.to_string().starts_with("layer ") {
                    e
                } else {
                    anyhow::anyhow!("{origin}: {e}")
                }
            })?;
        }
        Ok(x)
    }

    fn layer(&mut self, spec: &LayerSpec, x: usize, name: &str, origin: &str) -> Result<usize> {
        let in_shape = self.nodes[x].shape;
        let needs_image = |what: &str| -> Result<()> {
            if in_shape[0] == 1
                && in_shape[1] == 1
                && matches!(self.nodes[x].layer, Layer::Flatten | Layer::Dense { .. })
            {
                bail!("{what} needs an image input, but its input is a flat vector of {}", in_shape[2]);
            }
            Ok(())
        };
        Ok(match spec {
            LayerSpec::Conv2d { filters, kernel, strides, padding, activation, use_bias } => {
                needs_image("a convolution")?;
                self.conv(
                    name.into(),
                    origin,
                    x,
                    *filters,
                    kernel.get(),
                    strides.get(),
                    *padding,
                    *activation,
                    *use_bias,
                )?
            }
            LayerSpec::DepthwiseConv2d { kernel, strides, padding, depth_multiplier, activation, use_bias } => {
                needs_image("a depthwise convolution")?;
                self.depthwise(
                    name.into(),
                    origin,
                    x,
                    kernel.get(),
                    strides.get(),
                    *padding,
                    *depth_multiplier,
                    *activation,
                    *use_bias,
                )?
            }
            LayerSpec::SeparableConv2d {
                filters,
                kernel,
                strides,
                padding,
                depth_multiplier,
                activation,
                use_bias,
            } => {
                needs_image("a separable convolution")?;
                let d = self.depthwise(
                    format!("{name}.depthwise"),
                    origin,
                    x,
                    kernel.get(),
                    strides.get(),
                    *padding,
                    *depth_multiplier,
                    Act::None,
                    false,
                )?;
                self.conv(
                    format!("{name}.pointwise"),
                    origin,
                    d,
                    *filters,
                    [1, 1],
                    [1, 1],
                    PaddingSpec::Valid,
                    *activation,
                    *use_bias,
                )?
            }
            LayerSpec::Maxpool2d { pool, strides, padding } | LayerSpec::Avgpool2d { pool, strides, padding } => {
                needs_image("pooling")?;
                let geom = self.geom(x, pool.get(), strides.unwrap_or(*pool).get(), *padding, in_shape[2])?;
                let layer = if matches!(spec, LayerSpec::Maxpool2d { .. }) {
                    Layer::MaxPool { geom }
                } else {
                    Layer::AvgPool { geom }
                };
                self.push(name.into(), origin, layer, vec![x], geom.output)
            }
            LayerSpec::GlobalAvgpool {} => {
                needs_image("global average pooling")?;
                self.push(name.into(), origin, Layer::GlobalAvgPool, vec![x], [1, 1, in_shape[2]])
            }
            LayerSpec::Flatten {} => {
                self.push(name.into(), origin, Layer::Flatten, vec![x], [1, 1, in_shape.iter().product()])
            }
            LayerSpec::Dense { units, activation, use_bias } => {
                if in_shape[0] != 1 || in_shape[1] != 1 {
                    bail!(
                        "its input is {}×{}×{}; add a flatten or global_avgpool layer before a dense layer",
                        in_shape[0],
                        in_shape[1],
                        in_shape[2]
                    );
                }
                let n_in = in_shape[2];
                let node = self.push(name.into(), origin, Layer::Dense { act: *activation }, vec![x], [1, 1, *units]);
                let len = check_params(&[n_in, *units])?;
                let k = glorot(&mut self.rng, len, n_in, *units);
                self.param(node, "kernel", vec![n_in, *units], k, true);
                if *use_bias {
                    self.param(node, "bias", vec![*units], vec![0.0; *units], true);
                }
                node
            }
            LayerSpec::Dropout { rate } => {
                self.push(name.into(), origin, Layer::Dropout { rate: *rate }, vec![x], in_shape)
            }
            LayerSpec::Batchnorm { momentum, epsilon, activation } => {
                let c = in_shape[2];
                let layer = Layer::BatchNorm { momentum: *momentum, epsilon: *epsilon, act: *activation };
                let node = self.push(name.into(), origin, layer, vec![x], in_shape);
                self.param(node, "gamma", vec![c], vec![1.0; c], true);
                self.param(node, "beta", vec![c], vec![0.0; c], true);
                self.param(node, "moving_mean", vec![c], vec![0.0; c], false);
                self.param(node, "moving_variance", vec![c], vec![1.0; c], false);
                node
            }
            LayerSpec::Residual { layer, shortcut, activation } => {
                needs_image("a residual block")?;
                let body = self.layers(layer, x, &format!("{name}."), &format!("{origin}: body layer "))?;
                let out = self.nodes[body].shape;
                let identity = out == in_shape;
                let short = match (shortcut, identity) {
                    (Shortcut::Identity, false) => {
                        bail!("identity shortcut from {in_shape:?} to the body's {out:?}; use shortcut = \"conv\" or \"auto\"")
                    }
                    (Shortcut::Identity, true) | (Shortcut::Auto, true) => x,
                    _ => {
                        let strides = [in_shape[0].div_ceil(out[0]), in_shape[1].div_ceil(out[1])];
                        let s = self.conv(
                            format!("{name}.shortcut"),
                            origin,
                            x,
                            out[2],
                            [1, 1],
                            strides,
                            PaddingSpec::Same,
                            Act::None,
                            true,
                        )?;
                        if self.nodes[s].shape != out {
                            bail!("no 1×1 shortcut maps {in_shape:?} to the body's {out:?}");
                        }
                        s
                    }
                };
                self.push(name.into(), origin, Layer::Add { act: *activation }, vec![short, body], out)
            }
            LayerSpec::Concat { branch } => {
                needs_image("a concat layer")?;
                let mut ends = Vec::new();
                for (b, br) in branch.iter().enumerate() {
                    let end = self.layers(
                        &br.layer,
                        x,
                        &format!("{name}.b{}.", b + 1),
                        &format!("{origin}: branch {} layer ", b + 1),
                    )?;
                    ends.push(end);
                }
                let [h, w, _] = self.nodes[ends[0]].shape;
                let mut channels = 0;
                for &e in &ends {
                    let s = self.nodes[e].shape;
                    if s[0] != h || s[1] != w {
                        bail!(
                            "branches end at different sizes ({h}×{w} and {}×{}); they must agree to concatenate",
                            s[0],
                            s[1]
                        );
                    }
                    channels += s[2];
                }
                self.push(name.into(), origin, Layer::Concat, ends, [h, w, channels])
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn depthwise(
        &mut self,
        name: String,
        origin: &str,
        x: usize,
        kernel: [usize; 2],
        strides: [usize; 2],
        pad: PaddingSpec,
        multiplier: usize,
        act: Act,
        use_bias: bool,
    ) -> Result<usize> {
        let cin = self.nodes[x].shape[2];
        let geom = self.geom(x, kernel, strides, pad, cin * multiplier)?;
        let node = self.push(name, origin, Layer::Depthwise { geom, multiplier, act }, vec![x], geom.output);
        let rf = kernel[0] * kernel[1];
        let cout = cin * multiplier;
        let len = check_params(&[kernel[0], kernel[1], cout])?;
        let k = glorot(&mut self.rng, len, rf * cin, rf * multiplier);
        self.param(node, "kernel", vec![kernel[0], kernel[1], cout], k, true);
        if use_bias {
            self.param(node, "bias", vec![cout], vec![0.0; cout], true);
        }
        Ok(node)
    }
}

impl Network {
    /// Builds the network with Glorot-uniform kernels and zero biases (Keras's
    /// defaults), seeded. Errors name the layer whose shapes do not work.
    pub fn new(arch: &Arch, seed: u64) -> Result<Network> {
        let too_large = |what: &str, shape: [usize; 3]| {
            anyhow::anyhow!(
                "{what}: a {}×{}×{} activation is too large (at most {MAX_ACTIVATION} values per sample)",
                shape[0],
                shape[1],
                shape[2]
            )
        };
        if bounded_product(&arch.input, MAX_ACTIVATION).is_none() {
            return Err(too_large("input", arch.input));
        }
        let mut b = Builder { nodes: vec![], rng: ChaCha8Rng::seed_from_u64(seed) };
        b.push("input".into(), "input", Layer::Input, vec![], arch.input);
        let last = b.layers(&arch.layer, 0, "layer", "layer ")?;
        for (i, node) in b.nodes.iter().enumerate() {
            if node.layer.act() == Act::Softmax && (i != last || !matches!(node.layer, Layer::Dense { .. })) {
                bail!("{}: softmax is only allowed on the last layer, a dense layer", node.origin);
            }
        }
        if last == 0 {
            bail!("the architecture has no layers");
        }
        Ok(Network { arch: arch.clone(), nodes: b.nodes })
    }

    /// The first parameter holding a NaN or an infinity, as `layer 3 (conv2d) kernel`.
    pub fn first_non_finite(&self) -> Option<String> {
        self.nodes.iter().find_map(|node| {
            let param = node.params.iter().find(|p| p.data.iter().any(|v| !v.is_finite()))?;
            Some(format!("{} {}", node.origin, param.name))
        })
    }

    /// Input shape `[h, w, c]`.
    pub fn input_shape(&self) -> [usize; 3] {
        self.nodes[0].shape
    }

    /// Number of outputs per sample.
    pub fn output_size(&self) -> usize {
        self.nodes.last().map_or(0, Node::size)
    }

    /// Whether the last layer applies softmax (else its outputs are logits).
    pub fn ends_in_softmax(&self) -> bool {
        self.nodes.last().is_some_and(|n| n.layer.act() == Act::Softmax)
    }

    /// Total parameters.
    pub fn param_count(&self) -> usize {
        self.nodes.iter().map(Node::param_count).sum()
    }

    /// Forward pass over `n` samples (`x` is `n × h × w × c`). In training mode batch
    /// norm uses batch statistics and dropout draws its masks from `rng`.
    pub fn forward(&self, x: &[f32], n: usize, mode: Mode, rng: &mut ChaCha8Rng) -> Trace {
        self.forward_with(x, n, mode, rng, &|_, _| {})
    }

    /// [`Network::forward`] with `hook(node, output)` applied to every node's output
    /// before later nodes read it (quantization-aware training fake-quantizes there).
    pub fn forward_with(
        &self,
        x: &[f32],
        n: usize,
        mode: Mode,
        rng: &mut ChaCha8Rng,
        hook: &dyn Fn(usize, &mut [f32]),
    ) -> Trace {
        assert_eq!(x.len(), n * self.nodes[0].size(), "input size");
        let mut outputs: Vec<Vec<f32>> = Vec::with_capacity(self.nodes.len());
        let mut caches = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let (out, cache) = if matches!(node.layer, Layer::Input) {
                (pool::copy(x), kernels::Cache::None)
            } else {
                let inputs: Vec<&[f32]> = node.inputs.iter().map(|&i| outputs[i].as_slice()).collect();
                let train = mode == Mode::Train && !node.frozen && !node.bn_inference;
                kernels::forward(node, &self.nodes, &inputs, n, train, rng)
            };
            let mut out = out;
            hook(outputs.len(), &mut out);
            outputs.push(out);
            caches.push(cache);
        }
        Trace { n, outputs, caches }
    }

    /// Inference on `n` samples: the output (probabilities when the net ends in
    /// softmax), computed in batches of at most 64.
    pub fn predict(&self, x: &[f32], n: usize) -> Vec<f32> {
        let size = self.nodes[0].size();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut out = Vec::with_capacity(n * self.output_size());
        for start in (0..n).step_by(64) {
            let m = (n - start).min(64);
            let trace = self.forward(&x[start * size..(start + m) * size], m, Mode::Infer, &mut rng);
            out.extend_from_slice(trace.output());
        }
        out
    }

    /// Backward pass from the gradient of the loss with respect to the last layer's
    /// pre-activation (for softmax + cross-entropy, `p − onehot` over the batch).
    /// Returns gradients for every trainable parameter of unfrozen nodes.
    pub fn backward(&self, trace: &Trace, d_last: Vec<f32>) -> Grads {
        let n = trace.n;
        let count = self.nodes.len();
        let mut grads: Grads = self.nodes.iter().map(|nd| vec![Vec::new(); nd.params.len()]).collect();
        let mut d: Vec<Option<Vec<f32>>> = vec![None; count];
        d[count - 1] = Some(d_last);
        // The first node that needs a gradient: nothing before a frozen prefix does.
        let first_trainable = self.nodes.iter().position(|nd| !nd.frozen && nd.params.iter().any(|p| p.trainable));
        let Some(first_trainable) = first_trainable else { return grads };
        for i in (1..count).rev() {
            let Some(dy) = d[i].take() else { continue };
            let node = &self.nodes[i];
            let inputs: Vec<&[f32]> = node.inputs.iter().map(|&j| trace.outputs[j].as_slice()).collect();
            let need_dx: Vec<bool> = node.inputs.iter().map(|&j| j >= first_trainable && j > 0).collect();
            // The loss gives the gradient before a final softmax.
            let skip_act = i == count - 1 && node.layer.act() == Act::Softmax;
            let (dxs, g) =
                kernels::backward(node, &inputs, &trace.outputs[i], &trace.caches[i], dy, n, &need_dx, skip_act);
            if !node.frozen {
                for (slot, (p, g)) in grads[i].iter_mut().zip(node.params.iter().zip(g)) {
                    if p.trainable {
                        *slot = g;
                    }
                }
            }
            for (&j, dx) in node.inputs.iter().zip(dxs) {
                if let Some(dx) = dx {
                    match &mut d[j] {
                        Some(acc) => {
                            acc.iter_mut().zip(&dx).for_each(|(a, b)| *a += b);
                            pool::give(dx);
                        }
                        slot @ None => *slot = Some(dx),
                    }
                }
            }
        }
        grads
    }

    /// Applies the batch statistics a training pass measured to the moving averages
    /// of unfrozen batch-norm layers (Keras: `moving = moving·m + batch·(1 − m)`).
    pub fn update_batch_stats(&mut self, trace: &Trace) {
        for (node, cache) in self.nodes.iter_mut().zip(&trace.caches) {
            if node.frozen || node.bn_inference {
                continue;
            }
            if let (Layer::BatchNorm { momentum, .. }, kernels::Cache::BatchNorm { mean, var, .. }) =
                (&node.layer, cache)
            {
                let m = *momentum;
                for (p, stat) in [(2, mean), (3, var)] {
                    for (v, s) in node.params[p].data.iter_mut().zip(stat) {
                        *v = *v * m + s * (1.0 - m);
                    }
                }
            }
        }
    }
}

/// Softmax cross-entropy: mean loss, correct predictions, and the gradient with
/// respect to the last pre-activation. `output` holds probabilities when
/// `probabilities` is true, logits otherwise.
pub fn cross_entropy(output: &[f32], labels: &[usize], classes: usize, probabilities: bool) -> (f32, usize, Vec<f32>) {
    let n = labels.len();
    let mut grad = vec![0.0; output.len()];
    let mut loss = 0.0f64;
    let mut correct = 0;
    for (s, &label) in labels.iter().enumerate() {
        let row = &output[s * classes..(s + 1) * classes];
        let p: Vec<f32> = if probabilities { row.to_vec() } else { kernels::softmax(row) };
        loss -= f64::from(p[label].max(1e-7).ln());
        if argmax(&p) == label {
            correct += 1;
        }
        for (k, g) in grad[s * classes..(s + 1) * classes].iter_mut().enumerate() {
            *g = (p[k] - if k == label { 1.0 } else { 0.0 }) / n as f32;
        }
    }
    ((loss / n.max(1) as f64) as f32, correct, grad)
}

/// Index of the largest value (the first on ties).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests;
