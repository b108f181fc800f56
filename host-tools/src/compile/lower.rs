//! TFLM's `Prepare` arithmetic, shared by every front end (TFLite import and our own
//! quantizer): given the scales of a layer's tensors, the integer parameters the
//! core's kernels take. Computing them in one place keeps imported and trained models
//! on exactly the same path.

use crate::compile::graph::LayerParams;
use crate::compile::grid::Quant;
use microcnn_core::format::mean_mode;
use microcnn_core::quant::{activation_range, mean_multiplier, quantize_multiplier, Activation};

/// Per-channel multipliers and shifts of a conv, depthwise or dense layer:
/// `input_scale × weight_scale[c] / output_scale`, in double precision as TFLM does.
/// One weight scale means per-tensor.
pub fn channel_multipliers(
    input_scale: f32,
    weight_scales: &[f32],
    output_scale: f32,
    channels: usize,
) -> (Vec<i32>, Vec<i32>) {
    (0..channels)
        .map(|c| {
            let w = weight_scales[if weight_scales.len() == 1 { 0 } else { c }];
            quantize_multiplier(f64::from(input_scale) * f64::from(w) / f64::from(output_scale))
        })
        .unzip()
}

/// Fully connected with one (per-tensor) weight scale, as TFLM's
/// `GetQuantizedConvolutionMultipler` computes it: the product
/// `input_scale × weight_scale` in `f32` first, then divided by `output_scale` in
/// double precision; every channel gets the same multiplier and shift.
pub fn per_tensor_multipliers(
    input_scale: f32,
    weight_scale: f32,
    output_scale: f32,
    channels: usize,
) -> (Vec<i32>, Vec<i32>) {
    let product = f64::from(input_scale * weight_scale);
    let (multiplier, shift) = quantize_multiplier(product / f64::from(output_scale));
    (vec![multiplier; channels], vec![shift; channels])
}

/// A standalone requantization (TFLite's `QUANTIZE` int8 → int8, or a `RELU`/`RELU6`
/// /`RELU_N1_TO_1` operator) from `input_scale` into `(output_scale,
/// output_zero_point)`, clamped by `activation`.
pub fn requantize(input_scale: f32, output_scale: f32, output_zero_point: i32, activation: Activation) -> LayerParams {
    let (multiplier, shift) = quantize_multiplier(f64::from(input_scale) / f64::from(output_scale));
    let act = activation_range(activation, output_scale, output_zero_point);
    LayerParams::Requantize { multiplier, shift, act }
}

/// The quantization of a residual addition's tensors. (The inputs' zero points do not
/// enter the parameters: the kernel subtracts them.)
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AddQuant {
    /// Scale of the first input.
    pub input1_scale: f32,
    /// Scale of the second input.
    pub input2_scale: f32,
    /// The output's quantization.
    pub output: Quant,
}

/// Residual addition, with TFLM's `left_shift = 20` and both inputs rescaled to twice
/// the larger input scale; `activation` clamps the output.
pub fn add(quant: AddQuant, activation: Activation) -> LayerParams {
    let AddQuant { input1_scale, input2_scale, output } = quant;
    let left_shift = 20;
    let twice_max = 2.0 * f64::from(input1_scale.max(input2_scale));
    let (input1_multiplier, input1_shift) = quantize_multiplier(f64::from(input1_scale) / twice_max);
    let (input2_multiplier, input2_shift) = quantize_multiplier(f64::from(input2_scale) / twice_max);
    let (output_multiplier, output_shift) =
        quantize_multiplier(twice_max / ((1_i64 << left_shift) as f64 * f64::from(output.scale)));
    let act = activation_range(activation, output.scale, output.zero_point);
    LayerParams::Add {
        params: [
            left_shift,
            input1_multiplier,
            input1_shift,
            input2_multiplier,
            input2_shift,
            output_multiplier,
            output_shift,
        ],
        act,
    }
}

/// Mean over `count` pixels from `input` to `output` quantization.
pub fn mean(input: Quant, output: Quant, count: usize, keep_dims: bool) -> LayerParams {
    let real = f64::from(input.scale) / f64::from(output.scale);
    let (mode, (multiplier, shift)) = if keep_dims {
        (mean_mode::INTEGER, quantize_multiplier(real))
    } else if input == output {
        (mean_mode::EQUAL_QUANT, (0, 0))
    } else {
        (mean_mode::MULTIPLIER, mean_multiplier(real, count))
    };
    LayerParams::Mean { mode, multiplier, shift }
}
