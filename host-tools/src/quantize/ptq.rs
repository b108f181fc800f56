//! Post-training quantization of a trained network into the core's int8 graph.
//!
//! 1. [`fold`]: batch normalization is folded into the preceding conv, depthwise or
//!    dense layer (`w' = w·γ/√(σ²+ε)`, `b' = (b − μ)·γ/√(σ²+ε) + β`) and dropout
//!    removed, which leaves an f32 network that computes exactly what inference did.
//! 2. [`calibrate`]: every tensor's range is measured on calibration data. Tensors
//!    that TFLM requires to share quantization (pooling and reshape in/out,
//!    concatenation inputs and output) are tied and share the union of their ranges.
//! 3. [`to_graph`]: activations get TFLite's asymmetric int8 scheme from their range
//!    (`scale = (max − min)/255`, `zero_point = round(−128 − min/scale)`, the range
//!    widened to hold 0); the input is `pixel/255` exactly (`scale 1/255`, zero point
//!    −128); softmax outputs `1/256`, −128; weights are symmetric int8 per output
//!    channel (`scale = max|w|/127`, rounded half away from zero as the core rounds);
//!    biases int32 at `input_scale × weight_scale`. Requantization parameters come from
//!    [`crate::compile::lower`], the same code the TFLite importer uses.

use crate::compile::graph::{ChannelConsts, Graph, LayerParams, OpDef, PreprocessDef, TensorDef};
use crate::compile::grid::{quantize_weights, range_quant, Quant, INPUT_QUANT, SOFTMAX_QUANT};
use crate::compile::lower;
use crate::data::dataset::Dataset;
use crate::train::arch::Act;
use crate::train::nn::{Geom, Layer, Mode, Network};
use anyhow::{bail, Result};
use microcnn_core::ops::conv::Window;
use microcnn_core::quant::{activation_range, softmax_params, Activation};
use microcnn_core::Shape;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Folds batch normalization into the layer before it and removes dropout. The last
/// dense layer keeps its softmax.
pub fn fold(net: &Network) -> Result<Network> {
    let mut nodes: Vec<crate::train::nn::Node> = Vec::new();
    let mut map = vec![0usize; net.nodes.len()];
    let consumers = |i: usize| net.nodes.iter().filter(|n| n.inputs.contains(&i)).count();
    for (i, node) in net.nodes.iter().enumerate() {
        match &node.layer {
            Layer::Dropout { .. } => map[i] = map[node.inputs[0]],
            Layer::BatchNorm { epsilon, act, .. } => {
                let src = node.inputs[0];
                let target = map[src];
                let prev = &mut nodes[target];
                let foldable =
                    matches!(prev.layer, Layer::Conv2d { .. } | Layer::Depthwise { .. } | Layer::Dense { .. })
                        && prev.layer.act() == Act::None
                        && consumers(src) == 1
                        && !matches!(net.nodes[src].layer, Layer::Dropout { .. });
                if !foldable {
                    bail!(
                        "{}: batchnorm cannot be folded; it must directly follow a conv2d, depthwise_conv2d or dense \
                         layer without activation",
                        node.origin
                    );
                }
                let [gamma, beta, mean, var] = [0, 1, 2, 3].map(|k| &node.params[k].data);
                let c = gamma.len();
                let factor: Vec<f32> = (0..c).map(|ch| gamma[ch] / (var[ch] + epsilon).sqrt()).collect();
                for (k, w) in prev.params[0].data.iter_mut().enumerate() {
                    *w *= factor[k % c];
                }
                let old_bias = prev.param("bias").map(|p| p.data.clone()).unwrap_or_else(|| vec![0.0; c]);
                let bias: Vec<f32> = (0..c).map(|ch| (old_bias[ch] - mean[ch]) * factor[ch] + beta[ch]).collect();
                prev.params.retain(|p| p.name != "bias");
                prev.params.push(crate::train::nn::Param { name: "bias", shape: vec![c], data: bias, trainable: true });
                match &mut prev.layer {
                    Layer::Conv2d { act: a, .. } | Layer::Depthwise { act: a, .. } | Layer::Dense { act: a } => {
                        *a = *act
                    }
                    _ => {}
                }
                map[i] = target;
            }
            _ => {
                let mut n = node.clone();
                n.inputs = node.inputs.iter().map(|&j| map[j]).collect();
                nodes.push(n);
                map[i] = nodes.len() - 1;
            }
        }
    }
    Ok(Network { arch: net.arch.clone(), nodes })
}

/// Measured `(min, max)` of every node's output (pre-softmax logits for a softmax
/// layer), over `data` in inference mode.
pub fn calibrate(folded: &Network, data: &Dataset) -> Vec<(f32, f32)> {
    let mut logits = folded.clone();
    if let Some(Layer::Dense { act }) = logits.nodes.last_mut().map(|n| &mut n.layer) {
        if *act == Act::Softmax {
            *act = Act::None;
        }
    }
    let mut ranges = vec![(f32::INFINITY, f32::NEG_INFINITY); logits.nodes.len()];
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for start in (0..data.len()).step_by(64) {
        let m = (data.len() - start).min(64);
        let trace = logits.forward(&data.range_unit(start..start + m), m, Mode::Infer, &mut rng);
        for (r, out) in ranges.iter_mut().zip(&trace.outputs) {
            for &v in out {
                r.0 = r.0.min(v);
                r.1 = r.1.max(v);
            }
        }
    }
    ranges
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Quantization of every node's output, with TFLM's ties.
pub fn tensor_quant(folded: &Network, ranges: &[(f32, f32)]) -> Vec<Quant> {
    let n = folded.nodes.len();
    let mut parent: Vec<usize> = (0..n).collect();
    for (i, node) in folded.nodes.iter().enumerate() {
        if matches!(node.layer, Layer::MaxPool { .. } | Layer::AvgPool { .. } | Layer::Flatten | Layer::Concat) {
            for &j in &node.inputs {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let mut group_range = vec![(f32::INFINITY, f32::NEG_INFINITY); n];
    let input_group = find(&mut parent, 0);
    for (i, r) in ranges.iter().enumerate() {
        let g = find(&mut parent, i);
        group_range[g] = (group_range[g].0.min(r.0), group_range[g].1.max(r.1));
    }
    (0..n)
        .map(|i| {
            let g = find(&mut parent, i);
            if g == input_group {
                INPUT_QUANT
            } else {
                range_quant(group_range[g].0, group_range[g].1)
            }
        })
        .collect()
}

fn core_act(act: Act) -> Activation {
    match act {
        Act::Relu => Activation::Relu,
        Act::Relu6 => Activation::Relu6,
        Act::None | Act::Softmax => Activation::None,
    }
}

fn window(g: &Geom) -> Window {
    Window {
        kernel_h: g.kernel[0],
        kernel_w: g.kernel[1],
        stride_h: g.strides[0],
        stride_w: g.strides[1],
        dilation_h: 1,
        dilation_w: 1,
        pad_top: g.pad[0],
        pad_left: g.pad[1],
    }
}

fn channel_consts(
    node: &crate::train::nn::Node,
    channels: usize,
    weight_scales: &[f32],
    input: Quant,
    output: Quant,
) -> ChannelConsts {
    let bias = node.param("bias").map(|b| {
        b.data
            .iter()
            .zip(weight_scales)
            .map(|(&v, &ws)| {
                let q = (f64::from(v) / (f64::from(input.scale) * f64::from(ws))).round();
                q.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
            })
            .collect()
    });
    let (multipliers, shifts) = lower::channel_multipliers(input.scale, weight_scales, output.scale, channels);
    let (act_min, act_max) = activation_range(core_act(node.layer.act()), output.scale, output.zero_point);
    ChannelConsts { bias, multipliers, shifts, act_min, act_max }
}

/// The int8 graph of a folded network with the given per-node quantization.
pub fn to_graph(folded: &Network, quant: &[Quant], name: &str, labels: &[String]) -> Result<Graph> {
    let mut g = Graph { name: name.to_string(), labels: labels.to_vec(), ..Graph::default() };
    for (node, &Quant { scale, zero_point }) in folded.nodes.iter().zip(quant) {
        let [h, w, c] = node.shape;
        g.tensors.push(TensorDef { name: node.name.clone(), shape: Shape::new(h, w, c), scale, zero_point });
    }
    for (i, node) in folded.nodes.iter().enumerate().skip(1) {
        let input = node.inputs[0];
        let (iq, oq) = (quant[input], quant[i]);
        let params = match &node.layer {
            Layer::Conv2d { geom, .. } => {
                let [kh, kw, cin, cout] = [geom.kernel[0], geom.kernel[1], geom.input[2], geom.output[2]];
                let (q, scales) = quantize_weights(&node.params[0].data, cout);
                // [KH, KW, C_in, C_out] → [C_out, KH, KW, C_in]
                let mut weights = vec![0i8; q.len()];
                for (k, &v) in q.iter().enumerate() {
                    let (o, rest) = (k % cout, k / cout);
                    weights[o * kh * kw * cin + rest] = v;
                }
                LayerParams::Conv2d {
                    window: window(geom),
                    weights,
                    quant: channel_consts(node, cout, &scales, iq, oq),
                }
            }
            Layer::Depthwise { geom, multiplier, .. } => {
                let cout = geom.output[2];
                let (weights, scales) = quantize_weights(&node.params[0].data, cout);
                LayerParams::DepthwiseConv2d {
                    window: window(geom),
                    depth_multiplier: *multiplier,
                    weights,
                    quant: channel_consts(node, cout, &scales, iq, oq),
                }
            }
            Layer::Dense { .. } => {
                let units = node.shape[2];
                let n_in = folded.nodes[input].size();
                let (q, scales) = quantize_weights(&node.params[0].data, units);
                // [N, units] → [units, N]
                let mut weights = vec![0i8; q.len()];
                for (k, &v) in q.iter().enumerate() {
                    weights[(k % units) * n_in + k / units] = v;
                }
                LayerParams::FullyConnected { weights, quant: channel_consts(node, units, &scales, iq, oq) }
            }
            Layer::MaxPool { geom } => LayerParams::MaxPool2d { window: window(geom), act: (-128, 127) },
            Layer::AvgPool { geom } => LayerParams::AvgPool2d { window: window(geom), act: (-128, 127) },
            Layer::GlobalAvgPool => {
                let s = folded.nodes[input].shape;
                lower::mean(iq, oq, s[0] * s[1], false)
            }
            Layer::Flatten => LayerParams::Reshape,
            Layer::Add { act } => lower::add(
                lower::AddQuant {
                    input1_scale: quant[node.inputs[0]].scale,
                    input2_scale: quant[node.inputs[1]].scale,
                    output: oq,
                },
                core_act(*act),
            ),
            Layer::Concat => LayerParams::Concatenation,
            Layer::Input | Layer::Dropout { .. } | Layer::BatchNorm { .. } => {
                bail!("{}: {} left in a folded network", node.origin, node.layer.kind())
            }
        };
        g.ops.push(OpDef { inputs: node.inputs.clone(), output: i, params });
    }
    let mut output = folded.nodes.len() - 1;
    if folded.ends_in_softmax() {
        let logits = output;
        let shape = g.tensors[logits].shape;
        let Quant { scale, zero_point } = SOFTMAX_QUANT;
        g.tensors.push(TensorDef { name: "softmax".into(), shape, scale, zero_point });
        output = g.tensors.len() - 1;
        let (input_multiplier, input_left_shift, diff_min) = softmax_params(1.0, quant[logits].scale);
        g.ops.push(OpDef {
            inputs: vec![logits],
            output,
            params: LayerParams::Softmax { input_multiplier, input_left_shift, diff_min },
        });
    }
    g.input = 0;
    g.output = output;
    g.preprocess = Some(PreprocessDef {
        channels: folded.input_shape()[2] as u8,
        pixel_scale: INPUT_QUANT.scale,
        pixel_offset: 0.0,
    });
    g.output_dims = vec![g.tensors[output].shape.elements()];
    Ok(g)
}

/// Folds, calibrates and converts: the whole post-training quantization.
pub fn quantize(net: &Network, calib: &Dataset, name: &str, labels: &[String]) -> Result<Graph> {
    let folded = fold(net)?;
    let ranges = calibrate(&folded, calib);
    let quant = tensor_quant(&folded, &ranges);
    to_graph(&folded, &quant, name, labels)
}
