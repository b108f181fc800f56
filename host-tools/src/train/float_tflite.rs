//! A float32 TFLite model (Keras's converter without quantization) as a trainable
//! [`Network`]: its operators become an [`Arch`] (so the result checkpoints, trains,
//! fine-tunes and quantizes like any other network) and its weights load from the
//! TFLite buffers.
//!
//! Mapping: `CONV_2D` → `conv2d` (weights OHWI → `[KH, KW, I, O]`),
//! `DEPTHWISE_CONV_2D` → `depthwise_conv2d` (`[1, KH, KW, C·M]` → `[KH, KW, C·M]`, the
//! same channel order), `MAX_POOL_2D` / `AVERAGE_POOL_2D` → pooling, `MEAN` over height
//! and width → `global_avgpool`, `RESHAPE` / `SQUEEZE` to a vector → `flatten`,
//! `FULLY_CONNECTED` → `dense` (`[out, in]` → `[in, out]`), a final `SOFTMAX` → the
//! dense layer's softmax, standalone `RELU` / `RELU6` → the preceding layer's fused
//! activation. `PAD` (zero padding of height and width) is folded into the convolution that
//! reads it: `same` when it is that convolution's SAME padding, else explicit
//! padding (Keras's `ZeroPadding2D` before a `valid` convolution). Branches are found from the
//! graph: a tensor read by several operators forks, and its immediate
//! post-dominator's producer joins: an `ADD` whose other input is the fork itself (or
//! a 1×1 convolution of it) becomes a `residual` block, a `CONCATENATION` along
//! channels a `concat` layer. Folded batch norm needs nothing: the converter has
//! already merged it into the convolution's weights and bias.

use crate::tflite::reader::{self, builtin, Activation as TfAct, BuiltinOptions, Padding as TfPadding, TensorType};
use crate::train::arch::{Act, Arch, Branch, LayerSpec, PaddingSpec, Pair, Shortcut};
use crate::train::nn::Network;
use anyhow::{anyhow, bail, Context, Result};
use microcnn_core::shape::{output_size, padding_before, Padding};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// The operators a float model may use.
pub const SUPPORTED: &str = "CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL_2D, AVERAGE_POOL_2D, PAD (before a \
convolution), MEAN (over height and width), ADD (residual), CONCATENATION (channels), FULLY_CONNECTED, RESHAPE, SQUEEZE, \
SOFTMAX (last), RELU, RELU6";

/// Reads a float32 `.tflite` file as a network; errors name the file.
pub fn load(path: &Path) -> Result<Network> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let model = reader::parse(&bytes).map_err(|e| anyhow!("{}: not a valid TFLite file: {e}", path.display()))?;
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    import(&model, &name).map_err(|e| anyhow!("{}: {e:#}", path.display()))
}

/// Whether a `--base` or quantize source names a TFLite file.
pub fn is_tflite(spec: &str) -> bool {
    spec.to_ascii_lowercase().ends_with(".tflite")
}

/// The classifier check for a base: the model must end in `FULLY_CONNECTED`
/// (optionally with softmax), which transfer learning replaces.
pub fn check_classifier(net: &Network) -> Result<()> {
    if !matches!(net.arch.layer.last(), Some(LayerSpec::Dense { .. })) {
        bail!(
            "the model has no classifier: it must end in FULLY_CONNECTED (optionally then SOFTMAX), which finetune \
             replaces with a new head; this one ends in {}",
            net.arch.layer.last().map_or("nothing", LayerSpec::type_name)
        );
    }
    Ok(())
}

/// Converts a parsed float32 TFLite model into a network with its weights.
pub fn import(model: &reader::Model, name: &str) -> Result<Network> {
    let sub = model.subgraphs.first().ok_or_else(|| anyhow!("the model has no subgraph"))?;
    if sub.inputs.len() != 1 || sub.outputs.len() != 1 {
        bail!("the model has {} inputs and {} outputs; one of each is supported", sub.inputs.len(), sub.outputs.len());
    }
    let g = Graph::new(model, sub)?;
    let input = g.tensor(sub.inputs[0])?;
    if input.tensor_type != TensorType::Float32 {
        bail!(
            "the model's input is {}, not FLOAT32: this is a quantized model; import an int8 model with `microcnn \
             import`, or convert the Keras model without quantization for finetune --base and quantize",
            input.tensor_type.name()
        );
    }
    let dims = &input.shape;
    let [1, h, w, c] = dims.as_slice() else {
        bail!("the model input has shape {dims:?}; expected [1, height, width, channels]");
    };
    let shape = [*h, *w, *c].map(|d| usize::try_from(d).unwrap_or(0));
    if shape.contains(&0) {
        bail!("the model input has shape {dims:?}; expected positive [1, height, width, channels]");
    }
    for (i, op) in sub.operators.iter().enumerate() {
        g.check_supported(i, op)?;
    }
    let mut w = Walk { g: &g, weights: vec![] };
    let (layer, _) = w.walk(sub.inputs[0], sub.outputs[0], &BTreeSet::new())?;
    let arch = Arch { name: Some(name.to_string()), input: shape, layer };
    let mut net = Network::new(&arch, 0).context("the mapped network cannot be built")?;
    let mut weights = w.weights.into_iter();
    for node in net.nodes.iter_mut().filter(|n| !n.params.is_empty()) {
        let (op, kernel, bias) =
            weights.next().ok_or_else(|| anyhow!("internal error: fewer weight tensors than layers"))?;
        let Some(k) = node.params.iter_mut().find(|p| p.name == "kernel") else { continue };
        if k.data.len() != kernel.len() {
            bail!("operator {op}: weights hold {} values, the layer needs {}", kernel.len(), k.data.len());
        }
        k.data = kernel;
        if let Some(b) = node.params.iter_mut().find(|p| p.name == "bias") {
            let bias = bias.unwrap_or_else(|| vec![0.0; b.data.len()]);
            if b.data.len() != bias.len() {
                bail!("operator {op}: bias holds {} values, the layer needs {}", bias.len(), b.data.len());
            }
            b.data = bias;
        }
    }
    if weights.next().is_some() {
        bail!("internal error: more weight tensors than layers");
    }
    let out = g.tensor(sub.outputs[0])?;
    let elements: i64 = out.shape.iter().map(|&d| i64::from(d)).product();
    if elements != net.output_size() as i64 {
        bail!("the mapped network outputs {} values, the model {elements}", net.output_size());
    }
    Ok(net)
}

struct Graph<'m> {
    model: &'m reader::Model,
    sub: &'m reader::SubGraph,
    /// Tensor → operators reading it as an activation.
    consumers: HashMap<i32, Vec<usize>>,
    /// Tensor → the operator writing it.
    producer: HashMap<i32, usize>,
    /// Tensor → its post-dominators (tensors every path to the output passes).
    pdom: HashMap<i32, BTreeSet<i32>>,
}

impl<'m> Graph<'m> {
    fn new(model: &'m reader::Model, sub: &'m reader::SubGraph) -> Result<Graph<'m>> {
        let mut g = Graph { model, sub, consumers: HashMap::new(), producer: HashMap::new(), pdom: HashMap::new() };
        for (i, op) in sub.operators.iter().enumerate() {
            for t in g.act_inputs(op) {
                g.consumers.entry(t).or_default().push(i);
            }
            for &t in &op.outputs {
                g.producer.insert(t, i);
            }
        }
        // Operators are stored in execution order, so every consumer of an operator's
        // output comes later: walking backwards sees consumers first.
        let output = sub.outputs[0];
        let mut tensors: Vec<i32> = sub.operators.iter().rev().flat_map(|op| op.outputs.clone()).collect();
        tensors.push(sub.inputs[0]);
        for t in tensors {
            let mut set: Option<BTreeSet<i32>> = None;
            if t != output {
                for &c in g.consumers.get(&t).map(Vec::as_slice).unwrap_or(&[]) {
                    let out = sub.operators[c].outputs.first().copied().unwrap_or(-1);
                    let theirs = g.pdom.get(&out).cloned().unwrap_or_default();
                    set = Some(match set {
                        None => theirs,
                        Some(s) => s.intersection(&theirs).copied().collect(),
                    });
                }
            }
            let mut set = set.unwrap_or_default();
            set.insert(t);
            g.pdom.insert(t, set);
        }
        Ok(g)
    }

    fn code(&self, op: &reader::Operator) -> i32 {
        self.model.operator_codes.get(op.opcode_index as usize).map_or(-1, |c| c.builtin_code)
    }

    fn op_name(&self, i: usize) -> String {
        let op = &self.sub.operators[i];
        self.model.operator_codes.get(op.opcode_index as usize).map_or_else(|| "UNKNOWN".into(), |c| c.name().into())
    }

    /// The inputs that carry activations (not weights, paddings or axes).
    fn act_inputs(&self, op: &reader::Operator) -> Vec<i32> {
        match self.code(op) {
            builtin::ADD | builtin::CONCATENATION => op.inputs.clone(),
            _ => op.inputs.first().copied().into_iter().collect(),
        }
    }

    fn tensor(&self, index: i32) -> Result<&reader::Tensor> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.sub.tensors.get(i))
            .ok_or_else(|| anyhow!("tensor index {index} is out of range"))
    }

    fn out(&self, op: usize) -> i32 {
        self.sub.operators[op].outputs.first().copied().unwrap_or(-1)
    }

    fn check_supported(&self, i: usize, op: &reader::Operator) -> Result<()> {
        let code = self.model.operator_codes.get(op.opcode_index as usize);
        let ok = code.is_some_and(|c| {
            c.custom_code.is_none()
                && matches!(
                    c.builtin_code,
                    builtin::CONV_2D
                        | builtin::DEPTHWISE_CONV_2D
                        | builtin::MAX_POOL_2D
                        | builtin::AVERAGE_POOL_2D
                        | builtin::PAD
                        | builtin::MEAN
                        | builtin::ADD
                        | builtin::CONCATENATION
                        | builtin::FULLY_CONNECTED
                        | builtin::RESHAPE
                        | builtin::SQUEEZE
                        | builtin::SOFTMAX
                        | builtin::RELU
                        | builtin::RELU6
                )
        });
        if !ok {
            bail!("operator {i} ({}) is not supported in a float model (supported: {SUPPORTED})", self.op_name(i));
        }
        if op.outputs.len() != 1 {
            bail!("operator {i} ({}) has {} outputs; expected one", self.op_name(i), op.outputs.len());
        }
        for &t in self.act_inputs(op).iter().chain(&op.outputs) {
            let tt = self.tensor(t)?.tensor_type;
            if tt != TensorType::Float32 {
                bail!(
                    "operator {i} ({}): tensor '{}' is {}, not FLOAT32; a float model is converted without \
                     quantization (an int8 model imports with `microcnn import`)",
                    self.op_name(i),
                    self.tensor(t)?.name,
                    tt.name()
                );
            }
        }
        Ok(())
    }

    /// The values of a constant tensor of `ty` (f32 or i32), as f32 / i64.
    fn constant(&self, index: i32) -> Result<(&reader::Tensor, &[u8])> {
        let t = self.tensor(index)?;
        let data = self
            .model
            .buffers
            .get(t.buffer as usize)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| anyhow!("tensor '{}' should be constant but has no data", t.name))?;
        Ok((t, data))
    }

    fn floats(&self, index: i32, expected: usize) -> Result<Vec<f32>> {
        let (t, data) = self.constant(index)?;
        if t.tensor_type != TensorType::Float32 {
            bail!(
                "weights '{}' are {}, not FLOAT32 (convert the model without quantization)",
                t.name,
                t.tensor_type.name()
            );
        }
        if data.len() != expected * 4 {
            bail!("weights '{}' hold {} bytes, expected {}", t.name, data.len(), expected * 4);
        }
        Ok(data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    fn ints(&self, index: i32) -> Result<Vec<i64>> {
        let (t, data) = self.constant(index)?;
        Ok(match t.tensor_type {
            TensorType::Int32 => {
                data.chunks_exact(4).map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect()
            }
            TensorType::Int64 => data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
            other => bail!("tensor '{}' is {}; expected INT32", t.name, other.name()),
        })
    }

    /// `[h, w, c]` of a 4-D `[1, h, w, c]` tensor.
    fn hwc(&self, index: i32) -> Result<[usize; 3]> {
        let t = self.tensor(index)?;
        match t.shape.as_slice() {
            [1, h, w, c] if *h > 0 && *w > 0 && *c > 0 => Ok([*h as usize, *w as usize, *c as usize]),
            s => bail!("tensor '{}' has shape {s:?}; expected [1, height, width, channels]", t.name),
        }
    }

    fn elements(&self, index: i32) -> Result<usize> {
        Ok(self.tensor(index)?.shape.iter().map(|&d| d.max(0) as usize).product())
    }
}

fn act(i: usize, name: &str, a: TfAct) -> Result<Act> {
    Ok(match a {
        TfAct::None => Act::None,
        TfAct::Relu => Act::Relu,
        TfAct::Relu6 => Act::Relu6,
        other => bail!("operator {i} ({name}): fused activation {other:?} is not supported (NONE, RELU, RELU6)"),
    })
}

fn pad_spec(p: TfPadding) -> PaddingSpec {
    match p {
        TfPadding::Same => PaddingSpec::Same,
        TfPadding::Valid => PaddingSpec::Valid,
    }
}

/// One weight-bearing layer's weights, in the order [`Network::new`] creates its
/// nodes: (operator index, kernel in Keras layout, bias).
type Weights = (usize, Vec<f32>, Option<Vec<f32>>);

struct Walk<'g, 'm> {
    g: &'g Graph<'m>,
    weights: Vec<Weights>,
}

/// A walked branch: its layers and its weights.
struct Seq {
    layers: Vec<LayerSpec>,
    weights: Vec<Weights>,
}

impl Walk<'_, '_> {
    /// Layers from tensor `t` until `end` (or, inside a branch, until a tensor in
    /// `stop`); the weights are appended in node-creation order.
    fn walk(&mut self, mut t: i32, end: i32, stop: &BTreeSet<i32>) -> Result<(Vec<LayerSpec>, i32)> {
        let mut layers: Vec<LayerSpec> = Vec::new();
        while t != end && !stop.contains(&t) {
            let consumers = self.g.consumers.get(&t).cloned().unwrap_or_default();
            match consumers.as_slice() {
                [] => bail!("tensor '{}' is not used and is not the output", self.g.tensor(t)?.name),
                [op] => t = self.single(*op, &mut layers, end)?,
                _ => t = self.fork(t, &consumers, &mut layers)?,
            }
        }
        Ok((layers, t))
    }

    fn branch(&mut self, start: usize, stop: &BTreeSet<i32>, end: i32) -> Result<(i32, Seq)> {
        let saved = std::mem::take(&mut self.weights);
        let mut layers = Vec::new();
        let t = self.single(start, &mut layers, end)?;
        let (rest, last) = self.walk(t, end, stop)?;
        layers.extend(rest);
        let weights = std::mem::replace(&mut self.weights, saved);
        Ok((last, Seq { layers, weights }))
    }

    /// A tensor read by several operators: the branches up to the operator joining
    /// them, as one residual or concat layer. Returns the join's output.
    fn fork(&mut self, t: i32, consumers: &[usize], layers: &mut Vec<LayerSpec>) -> Result<i32> {
        let g = self.g;
        let join_tensor = g
            .pdom
            .get(&t)
            .and_then(|s| {
                s.iter().filter(|&&u| u != t).min_by_key(|u| g.producer.get(u).copied().unwrap_or(usize::MAX))
            })
            .copied()
            .ok_or_else(|| {
                anyhow!(
                    "tensor '{}' forks and its branches never join",
                    g.tensor(t).map(|x| x.name.as_str()).unwrap_or("?")
                )
            })?;
        let j = g.producer[&join_tensor];
        let join = &g.sub.operators[j];
        let code = g.code(join);
        if code != builtin::ADD && code != builtin::CONCATENATION {
            bail!(
                "operator {j} ({}) joins branches; only ADD (residual) and CONCATENATION join branches here",
                g.op_name(j)
            );
        }
        let inputs = join.inputs.clone();
        let stop: BTreeSet<i32> = inputs.iter().copied().filter(|&u| u != t).collect();
        let mut ends: Vec<(i32, Seq)> = Vec::new();
        for &c in consumers.iter().filter(|&&c| c != j) {
            ends.push(self.branch(c, &stop, join_tensor)?);
        }
        let identity = inputs.iter().filter(|&&u| u == t).count();
        if identity > 1 || ends.len() + identity != inputs.len() || stop.len() != ends.len() {
            bail!("operator {j} ({}): its inputs are not separate branches of one tensor; unsupported", g.op_name(j));
        }
        let mut branches: Vec<Seq> = Vec::new();
        for &u in &inputs {
            if u == t {
                branches.push(Seq { layers: vec![], weights: vec![] });
            } else {
                let k = ends.iter().position(|(e, _)| *e == u).ok_or_else(|| {
                    anyhow!(
                        "operator {j} ({}): cannot trace input '{}'",
                        g.op_name(j),
                        g.tensor(u).map(|x| x.name.as_str()).unwrap_or("?")
                    )
                })?;
                branches.push(ends.remove(k).1);
            }
        }
        match (&join.options, code) {
            (BuiltinOptions::Add { activation }, builtin::ADD) if branches.len() == 2 => {
                let activation = act(j, "ADD", *activation)?;
                let is_short = |s: &Seq| {
                    s.layers.is_empty()
                        || matches!(
                            s.layers.as_slice(),
                            [LayerSpec::Conv2d { kernel: Pair::Two([1, 1]), activation: Act::None, .. }]
                        )
                };
                let (body, short) = if is_short(&branches[1]) {
                    let s = branches.pop().unwrap_or(Seq { layers: vec![], weights: vec![] });
                    (branches.pop(), s)
                } else if is_short(&branches[0]) {
                    let s = branches.remove(0);
                    (branches.pop(), s)
                } else {
                    bail!(
                        "operator {j} (ADD) adds two computed branches; a residual block needs one side to be the \
                         block's input or a 1×1 convolution of it"
                    );
                };
                let body = body.ok_or_else(|| anyhow!("internal error: no residual body"))?;
                if body.layers.is_empty() {
                    bail!("operator {j} (ADD) adds a tensor to itself; unsupported");
                }
                self.weights.extend(body.weights);
                let shortcut = if short.layers.is_empty() { Shortcut::Identity } else { Shortcut::Conv };
                self.weights.extend(short.weights);
                layers.push(LayerSpec::Residual { layer: body.layers, shortcut, activation });
            }
            (BuiltinOptions::Concatenation { axis, activation }, builtin::CONCATENATION) => {
                let rank = g.tensor(join_tensor)?.shape.len() as i32;
                if rank != 4 || (*axis != 3 && *axis != -1) {
                    bail!("operator {j} (CONCATENATION) joins along axis {axis}; only channels (axis 3) are supported");
                }
                if *activation != TfAct::None {
                    bail!("operator {j} (CONCATENATION): a fused activation is not supported");
                }
                let mut branch = Vec::new();
                for s in branches {
                    self.weights.extend(s.weights);
                    branch.push(Branch { layer: s.layers });
                }
                layers.push(LayerSpec::Concat { branch });
            }
            _ => bail!("operator {j} ({}): unsupported join ({} inputs)", g.op_name(j), branches.len()),
        }
        Ok(join_tensor)
    }

    /// Maps operator `i` (the only reader of its input), pushing its layer; returns
    /// the tensor to continue from.
    fn single(&mut self, i: usize, layers: &mut Vec<LayerSpec>, end: i32) -> Result<i32> {
        let g = self.g;
        let op = &g.sub.operators[i];
        let name = g.op_name(i);
        let code = g.code(op);
        let input = op.inputs[0];
        let output = g.out(i);
        let at = |e: anyhow::Error| anyhow!("operator {i} ({name}): {e:#}");
        match (code, &op.options) {
            (builtin::CONV_2D | builtin::DEPTHWISE_CONV_2D, _) => {
                self.conv(i, input, None, layers).map_err(at)?;
                Ok(output)
            }
            (builtin::PAD, _) => {
                let pads = g.ints(op.inputs.get(1).copied().unwrap_or(-1)).map_err(at)?;
                let next = match g.consumers.get(&output).map(Vec::as_slice) {
                    Some([n])
                        if matches!(g.code(&g.sub.operators[*n]), builtin::CONV_2D | builtin::DEPTHWISE_CONV_2D) =>
                    {
                        *n
                    }
                    _ => bail!("operator {i} (PAD): only padding read by one convolution is supported"),
                };
                if pads.len() != 8 || pads[0] != 0 || pads[1] != 0 || pads[6] != 0 || pads[7] != 0 {
                    bail!("operator {i} (PAD): pads {pads:?}; only height and width padding is supported");
                }
                let p = [pads[2], pads[3], pads[4], pads[5]].map(|v| v.max(0) as usize);
                self.conv(next, input, Some((i, p)), layers)
                    .map_err(|e| anyhow!("operator {next} ({}): {e:#}", g.op_name(next)))?;
                Ok(g.out(next))
            }
            (
                builtin::MAX_POOL_2D | builtin::AVERAGE_POOL_2D,
                BuiltinOptions::Pool2D { padding, stride_w, stride_h, filter_w, filter_h, activation },
            ) => {
                if act(i, &name, *activation)? != Act::None {
                    bail!("operator {i} ({name}): a fused activation on pooling is not supported");
                }
                let dims = [*filter_h, *filter_w, *stride_h, *stride_w].map(|v| usize::try_from(v).unwrap_or(0));
                if dims.contains(&0) {
                    bail!("operator {i} ({name}): window and strides must be positive");
                }
                let pool = Pair::Two([dims[0], dims[1]]);
                let strides = Some(Pair::Two([dims[2], dims[3]]));
                let padding = pad_spec(*padding);
                layers.push(if code == builtin::MAX_POOL_2D {
                    LayerSpec::Maxpool2d { pool, strides, padding }
                } else {
                    LayerSpec::Avgpool2d { pool, strides, padding }
                });
                Ok(output)
            }
            (builtin::MEAN, _) => {
                let mut axes = g.ints(op.inputs.get(1).copied().unwrap_or(-1)).map_err(at)?;
                axes.iter_mut().for_each(|a| *a = a.rem_euclid(4));
                axes.sort_unstable();
                g.hwc(input).map_err(at)?;
                if axes != [1, 2] {
                    bail!(
                        "operator {i} (MEAN) averages over axes {axes:?}; only height and width (1, 2) are supported"
                    );
                }
                layers.push(LayerSpec::GlobalAvgpool {});
                Ok(output)
            }
            (builtin::RESHAPE | builtin::SQUEEZE, _) => {
                let out = &g.tensor(output)?.shape;
                let n = g.elements(output)?;
                if out.iter().filter(|&&d| d != 1).count() > 1 || g.elements(input)? != n {
                    bail!("operator {i} ({name}) reshapes to {out:?}; only flattening to a vector is supported");
                }
                layers.push(LayerSpec::Flatten {});
                Ok(output)
            }
            (builtin::FULLY_CONNECTED, BuiltinOptions::FullyConnected { activation, weights_format, .. }) => {
                if *weights_format != 0 {
                    bail!("operator {i} (FULLY_CONNECTED): shuffled weights are not supported");
                }
                let n_in = g.elements(input)?;
                let units = g.elements(output)?;
                let wt = g.floats(op.inputs[1], units * n_in).map_err(at)?;
                let mut kernel = vec![0.0; wt.len()];
                for o in 0..units {
                    for k in 0..n_in {
                        kernel[k * units + o] = wt[o * n_in + k];
                    }
                }
                let bias = match op.inputs.get(2) {
                    Some(&b) if b >= 0 => Some(g.floats(b, units).map_err(at)?),
                    _ => None,
                };
                let in_shape = &g.tensor(input)?.shape;
                if in_shape.len() == 4 && in_shape[1] * in_shape[2] > 1 {
                    layers.push(LayerSpec::Flatten {});
                }
                layers.push(LayerSpec::Dense {
                    units,
                    activation: act(i, &name, *activation)?,
                    use_bias: bias.is_some(),
                });
                self.weights.push((i, kernel, bias));
                Ok(output)
            }
            (builtin::SOFTMAX, BuiltinOptions::Softmax { beta }) => {
                let last = layers.last_mut();
                match last {
                    Some(LayerSpec::Dense { activation: a @ Act::None, .. }) if output == end && *beta == 1.0 => {
                        *a = Act::Softmax;
                    }
                    _ => bail!(
                        "operator {i} (SOFTMAX): only a softmax (beta 1) right after the last FULLY_CONNECTED, as the \
                         model output, is supported"
                    ),
                }
                Ok(output)
            }
            (builtin::RELU | builtin::RELU6, _) => {
                let new = if code == builtin::RELU { Act::Relu } else { Act::Relu6 };
                match layers.last_mut() {
                    Some(
                        LayerSpec::Conv2d { activation: a @ Act::None, .. }
                        | LayerSpec::DepthwiseConv2d { activation: a @ Act::None, .. }
                        | LayerSpec::Dense { activation: a @ Act::None, .. }
                        | LayerSpec::Residual { activation: a @ Act::None, .. },
                    ) => *a = new,
                    _ => bail!(
                        "operator {i} ({name}): a standalone activation is supported only right after a convolution, \
                         dense layer or residual ADD without one"
                    ),
                }
                Ok(output)
            }
            (builtin::ADD | builtin::CONCATENATION, _) => {
                bail!("operator {i} ({name}) joins tensors that do not branch from one tensor; unsupported")
            }
            _ => bail!("operator {i} ({name}) has unexpected options"),
        }
    }

    /// A convolution (operator `i`) reading `input`, with an optional PAD operator
    /// `(index, [top, bottom, left, right])` folded into it.
    fn conv(
        &mut self,
        i: usize,
        input: i32,
        pad: Option<(usize, [usize; 4])>,
        layers: &mut Vec<LayerSpec>,
    ) -> Result<()> {
        let g = self.g;
        let op = &g.sub.operators[i];
        let name = g.op_name(i);
        let (padding, sw, sh, dw, dh, activation, depthwise) = match &op.options {
            BuiltinOptions::Conv2D { padding, stride_w, stride_h, activation, dilation_w, dilation_h } => {
                (*padding, *stride_w, *stride_h, *dilation_w, *dilation_h, *activation, false)
            }
            BuiltinOptions::DepthwiseConv2D {
                padding, stride_w, stride_h, activation, dilation_w, dilation_h, ..
            } => (*padding, *stride_w, *stride_h, *dilation_w, *dilation_h, *activation, true),
            _ => bail!("missing convolution options"),
        };
        if dw != 1 || dh != 1 {
            bail!("dilation {dh}×{dw} is not supported");
        }
        let strides = [sh, sw].map(|s| usize::try_from(s).unwrap_or(0));
        if strides.contains(&0) {
            bail!("strides must be positive");
        }
        let in_shape = g.hwc(input)?;
        let out_shape = g.hwc(g.out(i))?;
        let wt = g.tensor(op.inputs[1])?;
        let ws: Vec<usize> = wt.shape.iter().map(|&d| d.max(0) as usize).collect();
        let (kh, kw) = match ws.as_slice() {
            [_, kh, kw, _] if *kh > 0 && *kw > 0 => (*kh, *kw),
            s => bail!("weights have shape {s:?}; expected 4 dimensions"),
        };
        let mut padding = pad_spec(padding);
        if let Some((p, [top, bottom, left, right])) = pad {
            if padding != PaddingSpec::Valid {
                bail!("operator {p} (PAD) before a SAME convolution is not supported");
            }
            // SAME when it pads the rows SAME would (the converter usually folds
            // those itself), else explicit padding.
            let same = |n: usize, k: usize, s: usize, before: usize, out: usize| {
                output_size(n, k, s, 1, Padding::Same) == Some(out) && padding_before(n, k, s, 1, out) == before
            };
            padding = if top + bottom + left + right == 0 {
                PaddingSpec::Valid
            } else if same(in_shape[0], kh, strides[0], top, out_shape[0])
                && same(in_shape[1], kw, strides[1], left, out_shape[1])
            {
                PaddingSpec::Same
            } else {
                PaddingSpec::Explicit([top, bottom, left, right])
            };
        }
        let activation = act(i, &name, activation)?;
        let cout = out_shape[2];
        let cin = in_shape[2];
        let bias = match op.inputs.get(2) {
            Some(&b) if b >= 0 => Some(g.floats(b, cout)?),
            _ => None,
        };
        let use_bias = bias.is_some();
        let kernel = Pair::Two([kh, kw]);
        let strides = Pair::Two(strides);
        if depthwise {
            if ws[0] != 1 || ws[3] != cout || cin == 0 || cout % cin != 0 {
                bail!("depthwise weights {ws:?} do not fit {cin} → {cout} channels");
            }
            let kernel_data = g.floats(op.inputs[1], kh * kw * cout)?; // [1, KH, KW, C·M] = [KH, KW, C·M]
            layers.push(LayerSpec::DepthwiseConv2d {
                kernel,
                strides,
                padding,
                depth_multiplier: cout / cin,
                activation,
                use_bias,
            });
            self.weights.push((i, kernel_data, bias));
        } else {
            if ws[0] != cout || ws[3] != cin {
                bail!("weights {ws:?} do not fit {cin} → {cout} channels (grouped convolution is not supported)");
            }
            let ohwi = g.floats(op.inputs[1], cout * kh * kw * cin)?;
            // [O, KH, KW, I] → [KH, KW, I, O]
            let mut k = vec![0.0; ohwi.len()];
            let rest = kh * kw * cin;
            for o in 0..cout {
                for r in 0..rest {
                    k[r * cout + o] = ohwi[o * rest + r];
                }
            }
            layers.push(LayerSpec::Conv2d { filters: cout, kernel, strides, padding, activation, use_bias });
            self.weights.push((i, k, bias));
        }
        Ok(())
    }
}

/// Refuses data on disk whose images are not the model's height and width (a float
/// model was trained at its own input size; resizing would change what it sees).
/// Built-in data (`digits`, `shapes`) is generated or resized at the model's input.
pub fn check_data_size(spec: &str, model: &Path, input: [usize; 3]) -> Result<()> {
    let name = spec.split_once(':').map_or(spec, |(n, _)| n);
    if matches!(name, "digits" | "shapes") {
        return Ok(());
    }
    let native = crate::data::dataset::load(spec, None)?;
    if native.shape[..2] != input[..2] {
        bail!(
            "{spec}: images are {}×{}, but the model {} takes {}×{}; resize the data to the model's input",
            native.shape[0],
            native.shape[1],
            model.display(),
            input[0],
            input[1]
        );
    }
    Ok(())
}
