//! TFLite → [`Graph`]: maps an int8 TFLite model's operators onto the core's, with
//! every requantization parameter computed here, once, the way TFLM's `Prepare`
//! computes it (double-precision multipliers, `QuantizeMultiplier`, activation
//! ranges from the output quantization).

use crate::compile::graph::{ChannelConsts, Graph, LayerParams, OpDef, TensorDef};
use crate::compile::grid::Quant;
use crate::compile::lower;
use crate::tflite::reader::{
    self, builtin, Activation as TfActivation, BuiltinOptions, Padding as TfPadding, TensorType,
};
use anyhow::{anyhow, bail, Context, Result};
use microcnn_core::ops::conv::Window;
use microcnn_core::quant::{activation_range, softmax_params, Activation};
use microcnn_core::shape::{output_size, padding_before, Padding};
use microcnn_core::Shape;
use std::collections::HashMap;

/// The TFLite operators `import` maps, for error messages.
pub const SUPPORTED: &str = "CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, MAX_POOL_2D, AVERAGE_POOL_2D, \
MEAN (over height and width), ADD, CONCATENATION (channels), SOFTMAX, RELU, RELU6, RELU_N1_TO_1, \
QUANTIZE (int8 to int8), RESHAPE, SQUEEZE, EXPAND_DIMS";

/// Converts a parsed TFLite model into a graph for the core.
pub fn import(model: &reader::Model, name: &str) -> Result<Graph> {
    let sub = model.subgraphs.first().ok_or_else(|| anyhow!("the model has no subgraph"))?;
    if sub.inputs.len() != 1 || sub.outputs.len() != 1 {
        bail!(
            "the model has {} inputs and {} outputs; microcnn runs models with one input and one output",
            sub.inputs.len(),
            sub.outputs.len()
        );
    }
    let mut importer = Importer {
        model,
        sub,
        graph: Graph { name: name.to_string(), ..Graph::default() },
        activations: HashMap::new(),
    };
    let input = sub.inputs[0];
    let input_tensor = importer.tensor(input)?;
    if input_tensor.tensor_type != TensorType::Int8 {
        bail!(
            "the model's input is {}; microcnn runs int8 models: quantize it to int8 \
             (full integer post-training quantization with int8 input and output)",
            input_tensor.tensor_type.name()
        );
    }
    importer.graph.input = importer.activation(input)?;
    for (index, operator) in sub.operators.iter().enumerate() {
        importer.operator(operator).with_context(|| format!("operator {index} ({})", importer.op_name(operator)))?;
    }
    let output = sub.outputs[0];
    let dims = &importer.tensor(output)?.shape;
    let skip = usize::from(dims.len() > 1); // drop the batch axis
    importer.graph.output_dims = dims.iter().skip(skip).map(|&d| d.max(0) as usize).collect();
    importer.graph.output = *importer
        .activations
        .get(&output)
        .ok_or_else(|| anyhow!("the model output is not produced by any operator"))?;
    Ok(importer.graph)
}

struct Importer<'m> {
    model: &'m reader::Model,
    sub: &'m reader::SubGraph,
    graph: Graph,
    /// TFLite tensor index → graph tensor index.
    activations: HashMap<i32, usize>,
}

impl Importer<'_> {
    fn op_name(&self, operator: &reader::Operator) -> String {
        self.model
            .operator_codes
            .get(operator.opcode_index as usize)
            .map_or_else(|| "UNKNOWN".to_string(), |c| c.name().to_string())
    }

    fn tensor(&self, index: i32) -> Result<&reader::Tensor> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.sub.tensors.get(i))
            .ok_or_else(|| anyhow!("tensor index {index} is out of range"))
    }

    fn quant(&self, index: i32) -> Result<(f32, i32)> {
        let t = self.tensor(index)?;
        let q = t
            .quantization
            .as_ref()
            .filter(|q| !q.scale.is_empty())
            .ok_or_else(|| anyhow!("tensor '{}' has no quantization parameters", t.name))?;
        Ok((q.scale[0], q.zero_point.first().copied().unwrap_or(0) as i32))
    }

    /// Registers (once) a TFLite activation tensor and returns its graph index.
    fn activation(&mut self, index: i32) -> Result<usize> {
        if let Some(&i) = self.activations.get(&index) {
            return Ok(i);
        }
        let t = self.tensor(index)?;
        if t.tensor_type != TensorType::Int8 {
            bail!(
                "tensor '{}' is {}; microcnn runs int8 activations: quantize the model to int8",
                t.name,
                t.tensor_type.name()
            );
        }
        let shape = to_shape(&t.shape).with_context(|| format!("tensor '{}'", t.name))?;
        let (scale, zero_point) = self.quant(index)?;
        if !(scale > 0.0 && scale.is_finite() && (-128..=127).contains(&zero_point)) {
            bail!("tensor '{}' has invalid quantization (scale {scale}, zero point {zero_point})", t.name);
        }
        let i = self.graph.tensors.len();
        self.graph.tensors.push(TensorDef { name: t.name.clone(), shape, scale, zero_point });
        self.activations.insert(index, i);
        Ok(i)
    }

    /// An input that must already exist (produced earlier or the model input).
    fn existing(&self, index: i32) -> Result<usize> {
        self.activations.get(&index).copied().ok_or_else(|| {
            anyhow!(
                "input tensor {index} is neither the model input nor produced by an earlier operator \
                 (constant activations are not supported)"
            )
        })
    }

    fn buffer(&self, index: i32) -> Result<&[u8]> {
        let t = self.tensor(index)?;
        let data = self
            .model
            .buffers
            .get(t.buffer as usize)
            .ok_or_else(|| anyhow!("tensor '{}' refers to a missing buffer", t.name))?;
        if data.is_empty() {
            bail!("tensor '{}' should be constant but has no data", t.name);
        }
        Ok(data)
    }

    fn weights(&self, index: i32, expected: usize) -> Result<(Vec<i8>, Vec<f32>)> {
        let t = self.tensor(index)?;
        if t.tensor_type != TensorType::Int8 {
            bail!("weights '{}' are {}; only int8 weights are supported", t.name, t.tensor_type.name());
        }
        let data = self.buffer(index)?;
        if data.len() != expected {
            bail!("weights '{}' hold {} values, expected {expected}", t.name, data.len());
        }
        let q = t.quantization.as_ref().ok_or_else(|| anyhow!("weights '{}' are not quantized", t.name))?;
        if q.zero_point.iter().any(|&z| z != 0) {
            bail!("weights '{}' have a non-zero zero point; int8 weights must be symmetric", t.name);
        }
        Ok((data.iter().map(|&b| b as i8).collect(), q.scale.clone()))
    }

    fn bias(&self, index: Option<&i32>, channels: usize) -> Result<Option<Vec<i32>>> {
        let Some(&index) = index.filter(|&&i| i >= 0) else {
            return Ok(None);
        };
        let t = self.tensor(index)?;
        if t.tensor_type != TensorType::Int32 {
            bail!("bias '{}' is {}; int8 models need int32 bias", t.name, t.tensor_type.name());
        }
        let data = self.buffer(index)?;
        if data.len() != channels * 4 {
            bail!("bias '{}' holds {} bytes, expected {}", t.name, data.len(), channels * 4);
        }
        Ok(Some(data.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
    }

    fn push(&mut self, inputs: Vec<usize>, output: i32, params: LayerParams) -> Result<()> {
        let output = self.activation(output)?;
        self.graph.ops.push(OpDef { inputs, output, params });
        Ok(())
    }

    fn operator(&mut self, operator: &reader::Operator) -> Result<()> {
        let code = self
            .model
            .operator_codes
            .get(operator.opcode_index as usize)
            .ok_or_else(|| anyhow!("operator code index {} out of range", operator.opcode_index))?;
        if code.custom_code.is_some() {
            bail!("custom operators are not supported; supported operators: {SUPPORTED}");
        }
        let output = *operator.outputs.first().ok_or_else(|| anyhow!("operator has no output"))?;
        let first_input = *operator.inputs.first().ok_or_else(|| anyhow!("operator has no input"))?;
        let output_type = self.tensor(output)?.tensor_type;
        if output_type != TensorType::Int8 {
            bail!("its output is {}; microcnn runs int8 models: quantize the model to int8", output_type.name());
        }
        match code.builtin_code {
            builtin::CONV_2D | builtin::DEPTHWISE_CONV_2D => {
                self.conv(operator, code.builtin_code, first_input, output)
            }
            builtin::FULLY_CONNECTED => self.dense(operator, first_input, output),
            builtin::MAX_POOL_2D | builtin::AVERAGE_POOL_2D => {
                self.pool(operator, code.builtin_code, first_input, output)
            }
            builtin::MEAN => self.mean(operator, first_input, output),
            builtin::ADD => self.add(operator, output),
            builtin::CONCATENATION => self.concat(operator, output),
            builtin::SOFTMAX => self.softmax(operator, first_input, output),
            builtin::RELU | builtin::RELU6 | builtin::RELU_N1_TO_1 | builtin::QUANTIZE => {
                let activation = match code.builtin_code {
                    builtin::RELU => Activation::Relu,
                    builtin::RELU6 => Activation::Relu6,
                    builtin::RELU_N1_TO_1 => Activation::ReluN1To1,
                    _ => Activation::None,
                };
                if self.tensor(first_input)?.tensor_type != TensorType::Int8 {
                    bail!("only int8 → int8 requantization is supported");
                }
                let input = self.existing(first_input)?;
                let (in_scale, _) = self.quant(first_input)?;
                let (out_scale, out_zp) = self.quant(output)?;
                self.push(vec![input], output, lower::requantize(in_scale, out_scale, out_zp, activation))?;
                self.check_same_shape(input, output)
            }
            builtin::RESHAPE | builtin::SQUEEZE | builtin::EXPAND_DIMS => {
                let input = self.existing(first_input)?;
                if self.quant(first_input)? != self.quant(output)? {
                    bail!("input and output quantization differ");
                }
                self.push(vec![input], output, LayerParams::Reshape)?;
                let out = self.graph.ops.last().map_or(0, |o| o.output);
                if self.graph.tensors[out].shape.elements() != self.graph.tensors[input].shape.elements() {
                    bail!("reshape changes the number of elements");
                }
                Ok(())
            }
            other => bail!("{} is not supported; supported operators: {SUPPORTED}", reader::builtin_name(other)),
        }
    }

    fn check_same_shape(&self, input: usize, output_tensor: i32) -> Result<()> {
        let output = self.activations[&output_tensor];
        let (a, b) = (self.graph.tensors[input].shape, self.graph.tensors[output].shape);
        if a != b {
            bail!("input shape {a:?} and output shape {b:?} differ");
        }
        Ok(())
    }

    fn per_channel(
        &self,
        input: i32,
        output: i32,
        weight_scales: &[f32],
        channels: usize,
    ) -> Result<(Vec<i32>, Vec<i32>)> {
        if weight_scales.len() != 1 && weight_scales.len() != channels {
            bail!("{} weight scales for {channels} output channels", weight_scales.len());
        }
        let (in_scale, _) = self.quant(input)?;
        let (out_scale, _) = self.quant(output)?;
        Ok(lower::channel_multipliers(in_scale, weight_scales, out_scale, channels))
    }

    fn conv(&mut self, operator: &reader::Operator, code: i32, input_index: i32, output: i32) -> Result<()> {
        let input = self.existing(input_index)?;
        let in_shape = self.graph.tensors[input].shape;
        let out_shape = to_shape(&self.tensor(output)?.shape)?;
        let filter_index = *operator.inputs.get(1).ok_or_else(|| anyhow!("missing weights"))?;
        let filter_shape = self.tensor(filter_index)?.shape.clone();
        if filter_shape.len() != 4 {
            bail!("weights have shape {filter_shape:?}, expected 4 dimensions");
        }
        let (kernel_h, kernel_w) = (dim(filter_shape[1])?, dim(filter_shape[2])?);
        let (padding, stride_w, stride_h, activation, dilation_w, dilation_h, depth_multiplier) = match &operator
            .options
        {
            BuiltinOptions::Conv2D { padding, stride_w, stride_h, activation, dilation_w, dilation_h } => {
                (*padding, *stride_w, *stride_h, *activation, *dilation_w, *dilation_h, 1)
            }
            BuiltinOptions::DepthwiseConv2D {
                padding, stride_w, stride_h, activation, dilation_w, dilation_h, ..
            } => {
                let multiplier = out_shape.channels / in_shape.channels.max(1);
                (*padding, *stride_w, *stride_h, *activation, *dilation_w, *dilation_h, multiplier)
            }
            _ => bail!("missing convolution options"),
        };
        let window = window(
            in_shape,
            out_shape,
            [kernel_h, kernel_w],
            [dim(stride_h)?, dim(stride_w)?],
            [dim(dilation_h)?, dim(dilation_w)?],
            padding,
        )?;
        let channels = out_shape.channels;
        let (weight_len, kind) = if code == builtin::CONV_2D {
            if dim(filter_shape[0])? != channels {
                bail!("weights have {} output channels, the output has {channels}", filter_shape[0]);
            }
            if dim(filter_shape[3])? != in_shape.channels {
                bail!(
                    "grouped convolution ({} weight input channels for {} input channels) is not supported",
                    filter_shape[3],
                    in_shape.channels
                );
            }
            (channels * kernel_h * kernel_w * in_shape.channels, ConvKind::Standard)
        } else {
            if dim(filter_shape[3])? != channels || channels != in_shape.channels * depth_multiplier {
                bail!("depthwise weights {filter_shape:?} do not match {in_shape:?} → {out_shape:?}");
            }
            (kernel_h * kernel_w * channels, ConvKind::Depthwise)
        };
        let (weights, scales) = self.weights(filter_index, weight_len)?;
        let bias = self.bias(operator.inputs.get(2), channels)?;
        let (multipliers, shifts) = self.per_channel(input_index, output, &scales, channels)?;
        let (out_scale, out_zp) = self.quant(output)?;
        let (act_min, act_max) = activation_range(map_activation(activation)?, out_scale, out_zp);
        let quant = ChannelConsts { bias, multipliers, shifts, act_min, act_max };
        let params = match kind {
            ConvKind::Standard => LayerParams::Conv2d { window, weights, quant },
            ConvKind::Depthwise => LayerParams::DepthwiseConv2d { window, depth_multiplier, weights, quant },
        };
        self.push(vec![input], output, params)
    }

    fn dense(&mut self, operator: &reader::Operator, input_index: i32, output: i32) -> Result<()> {
        let input = self.existing(input_index)?;
        let n = self.graph.tensors[input].shape.elements();
        let BuiltinOptions::FullyConnected { activation, weights_format, .. } = &operator.options else {
            bail!("missing fully-connected options");
        };
        if *weights_format != 0 {
            bail!("shuffled fully-connected weights are not supported");
        }
        let filter_index = *operator.inputs.get(1).ok_or_else(|| anyhow!("missing weights"))?;
        let filter_shape = self.tensor(filter_index)?.shape.clone();
        if filter_shape.len() != 2 || dim(filter_shape[1])? != n {
            bail!("weights have shape {filter_shape:?}; expected [units, {n}] (batch 1)");
        }
        let channels = dim(filter_shape[0])?;
        let out_shape = to_shape(&self.tensor(output)?.shape)?;
        if out_shape.elements() != channels {
            bail!("output {out_shape:?} does not hold {channels} units");
        }
        let (weights, scales) = self.weights(filter_index, channels * n)?;
        let bias = self.bias(operator.inputs.get(2), channels)?;
        let (multipliers, shifts) = if scales.len() == 1 {
            let (in_scale, _) = self.quant(input_index)?;
            let (out_scale, _) = self.quant(output)?;
            lower::per_tensor_multipliers(in_scale, scales[0], out_scale, channels)
        } else {
            self.per_channel(input_index, output, &scales, channels)?
        };
        let (out_scale, out_zp) = self.quant(output)?;
        let (act_min, act_max) = activation_range(map_activation(*activation)?, out_scale, out_zp);
        self.push(
            vec![input],
            output,
            LayerParams::FullyConnected {
                weights,
                quant: ChannelConsts { bias, multipliers, shifts, act_min, act_max },
            },
        )?;
        let out = self.activations[&output];
        self.graph.tensors[out].shape = Shape::new(1, 1, channels);
        Ok(())
    }

    fn pool(&mut self, operator: &reader::Operator, code: i32, input_index: i32, output: i32) -> Result<()> {
        let input = self.existing(input_index)?;
        let in_shape = self.graph.tensors[input].shape;
        let out_shape = to_shape(&self.tensor(output)?.shape)?;
        let BuiltinOptions::Pool2D { padding, stride_w, stride_h, filter_w, filter_h, activation } = &operator.options
        else {
            bail!("missing pooling options");
        };
        if self.quant(input_index)? != self.quant(output)? {
            bail!("pooling input and output quantization differ (TFLM requires them equal)");
        }
        let window = window(
            in_shape,
            out_shape,
            [dim(*filter_h)?, dim(*filter_w)?],
            [dim(*stride_h)?, dim(*stride_w)?],
            [1, 1],
            *padding,
        )?;
        let (out_scale, out_zp) = self.quant(output)?;
        let act = activation_range(map_activation(*activation)?, out_scale, out_zp);
        let params = if code == builtin::MAX_POOL_2D {
            LayerParams::MaxPool2d { window, act }
        } else {
            LayerParams::AvgPool2d { window, act }
        };
        self.push(vec![input], output, params)
    }

    fn mean(&mut self, operator: &reader::Operator, input_index: i32, output: i32) -> Result<()> {
        let input = self.existing(input_index)?;
        let in_rank = self.tensor(input_index)?.shape.len();
        let axis_index = *operator.inputs.get(1).ok_or_else(|| anyhow!("missing axis"))?;
        let axis: Vec<i32> = self
            .buffer(axis_index)?
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .map(|a| if a < 0 { a + in_rank as i32 } else { a })
            .collect();
        let mut sorted = axis.clone();
        sorted.sort_unstable();
        if in_rank != 4 || sorted != [1, 2] {
            bail!("MEAN over axes {axis:?} of a rank-{in_rank} tensor; only the mean over height and width (axes 1 and 2) is supported");
        }
        let keep_dims = matches!(operator.options, BuiltinOptions::Reducer { keep_dims: true });
        let (in_scale, in_zp) = self.quant(input_index)?;
        let (out_scale, out_zp) = self.quant(output)?;
        let count = self.graph.tensors[input].shape.pixels();
        let params = lower::mean(
            Quant { scale: in_scale, zero_point: in_zp },
            Quant { scale: out_scale, zero_point: out_zp },
            count,
            keep_dims,
        );
        self.push(vec![input], output, params)?;
        let out = self.activations[&output];
        let channels = self.graph.tensors[input].shape.channels;
        if self.graph.tensors[out].shape.elements() != channels {
            bail!("MEAN output does not have one value per channel");
        }
        self.graph.tensors[out].shape = Shape::new(1, 1, channels);
        Ok(())
    }

    fn add(&mut self, operator: &reader::Operator, output: i32) -> Result<()> {
        if operator.inputs.len() != 2 {
            bail!("ADD with {} inputs", operator.inputs.len());
        }
        let (a, b) = (operator.inputs[0], operator.inputs[1]);
        let (ia, ib) = (self.existing(a)?, self.existing(b)?);
        if self.graph.tensors[ia].shape != self.graph.tensors[ib].shape {
            bail!("ADD with broadcasting is not supported (both inputs must have the same shape)");
        }
        let BuiltinOptions::Add { activation } = &operator.options else {
            bail!("missing ADD options");
        };
        let (input1_scale, _) = self.quant(a)?;
        let (input2_scale, _) = self.quant(b)?;
        let (scale, zero_point) = self.quant(output)?;
        let quant = lower::AddQuant { input1_scale, input2_scale, output: Quant { scale, zero_point } };
        let params = lower::add(quant, map_activation(*activation)?);
        self.push(vec![ia, ib], output, params)?;
        self.check_same_shape(ia, output)
    }

    fn concat(&mut self, operator: &reader::Operator, output: i32) -> Result<()> {
        let BuiltinOptions::Concatenation { axis, activation } = &operator.options else {
            bail!("missing CONCATENATION options");
        };
        if !matches!(activation, TfActivation::None) {
            bail!("a fused activation on CONCATENATION is not supported");
        }
        let rank = self.tensor(output)?.shape.len() as i32;
        let axis = if *axis < 0 { axis + rank } else { *axis };
        if axis != rank - 1 {
            bail!("concatenation along axis {axis} of a rank-{rank} tensor; only the channel (last) axis is supported");
        }
        let out_quant = self.quant(output)?;
        let mut inputs = Vec::new();
        for &t in &operator.inputs {
            if self.quant(t)? != out_quant {
                bail!("concatenation inputs must share the output's scale and zero point (TFLM requires it)");
            }
            inputs.push(self.existing(t)?);
        }
        self.push(inputs, output, LayerParams::Concatenation)
    }

    fn softmax(&mut self, operator: &reader::Operator, input_index: i32, output: i32) -> Result<()> {
        let input = self.existing(input_index)?;
        let BuiltinOptions::Softmax { beta } = &operator.options else {
            bail!("missing SOFTMAX options");
        };
        let (in_scale, _) = self.quant(input_index)?;
        let (out_scale, out_zp) = self.quant(output)?;
        if out_zp != -128 || (out_scale * 256.0 - 1.0).abs() > 1e-6 {
            bail!("int8 SOFTMAX output must have scale 1/256 and zero point -128 (found {out_scale}, {out_zp})");
        }
        let (input_multiplier, input_left_shift, diff_min) = softmax_params(*beta, in_scale);
        self.push(vec![input], output, LayerParams::Softmax { input_multiplier, input_left_shift, diff_min })?;
        self.check_same_shape(input, output)
    }
}

/// Which convolution `CONV_2D` or `DEPTHWISE_CONV_2D` maps onto.
enum ConvKind {
    /// Every output channel sees every input channel.
    Standard,
    /// Each output channel sees one input channel.
    Depthwise,
}

fn map_activation(activation: TfActivation) -> Result<Activation> {
    Ok(match activation {
        TfActivation::None => Activation::None,
        TfActivation::Relu => Activation::Relu,
        TfActivation::Relu6 => Activation::Relu6,
        TfActivation::ReluN1To1 => Activation::ReluN1To1,
        other => bail!("fused activation {other:?} is not supported (NONE, RELU, RELU6, RELU_N1_TO_1 are)"),
    })
}

fn dim(value: i32) -> Result<usize> {
    usize::try_from(value)
        .ok()
        .filter(|&v| v > 0 && v <= usize::from(u16::MAX))
        .ok_or_else(|| anyhow!("dimension {value} is out of range"))
}

/// A TFLite shape (batch first, batch 1) as the core's `Shape`.
fn to_shape(shape: &[i32]) -> Result<Shape> {
    let dims: Vec<usize> = shape.iter().map(|&d| dim(d)).collect::<Result<_>>()?;
    Ok(match dims.as_slice() {
        [n] => Shape::new(1, 1, *n),
        [1, n] => Shape::new(1, 1, *n),
        [1, w, c] => Shape::new(1, *w, *c),
        [1, h, w, c] => Shape::new(*h, *w, *c),
        _ => bail!("shape {shape:?} is not supported (batch must be 1, at most 4 dimensions)"),
    })
}

fn window(
    input: Shape,
    output: Shape,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    padding: TfPadding,
) -> Result<Window> {
    let padding = match padding {
        TfPadding::Same => Padding::Same,
        TfPadding::Valid => Padding::Valid,
    };
    let expected_h = output_size(input.height, kernel[0], stride[0], dilation[0], padding);
    let expected_w = output_size(input.width, kernel[1], stride[1], dilation[1], padding);
    if expected_h != Some(output.height) || expected_w != Some(output.width) {
        bail!(
            "output {}x{} does not follow from input {}x{}, kernel {:?}, stride {:?}, dilation {:?}, padding {padding:?}",
            output.height,
            output.width,
            input.height,
            input.width,
            kernel,
            stride,
            dilation
        );
    }
    Ok(Window {
        kernel_h: kernel[0],
        kernel_w: kernel[1],
        stride_h: stride[0],
        stride_w: stride[1],
        dilation_h: dilation[0],
        dilation_w: dilation[1],
        pad_top: padding_before(input.height, kernel[0], stride[0], dilation[0], output.height),
        pad_left: padding_before(input.width, kernel[1], stride[1], dilation[1], output.width),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_cnn() -> reader::Model {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/vectors/small_cnn_28x28/model.tflite");
        reader::parse(&std::fs::read(path).expect("vector model")).expect("valid TFLite")
    }

    #[test]
    fn unsupported_operator_names_itself_its_index_and_the_supported_list() {
        let mut model = small_cnn();
        // Operator 6 is the SOFTMAX; make its code LOGISTIC.
        let code = model.subgraphs[0].operators[6].opcode_index as usize;
        model.operator_codes[code].builtin_code = builtin::LOGISTIC;
        let err = format!("{:#}", import(&model, "m").unwrap_err());
        assert!(err.contains("operator 6 (LOGISTIC)"), "{err}");
        assert!(err.contains("not supported") && err.contains("CONV_2D, DEPTHWISE_CONV_2D"), "{err}");
    }

    #[test]
    fn float_model_is_refused_with_advice_to_quantize() {
        let mut model = small_cnn();
        let input = model.subgraphs[0].inputs[0] as usize;
        model.subgraphs[0].tensors[input].tensor_type = TensorType::Float32;
        let err = format!("{:#}", import(&model, "m").unwrap_err());
        assert!(err.contains("FLOAT32") && err.contains("quantize it to int8"), "{err}");
    }
}
