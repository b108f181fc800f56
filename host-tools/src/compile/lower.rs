//! TFLM's `Prepare` arithmetic, shared by every front end (TFLite import and our own
//! quantizer): given the scales of a layer's tensors, the integer parameters the
//! core's kernels take. Computing them in one place keeps imported and trained models
//! on exactly the same path.

use crate::compile::graph::LayerParams;
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

/// Residual addition of inputs with scales `s1`, `s2` into `(so, zo)`, with TFLM's
/// `left_shift = 20` and both inputs rescaled to twice the larger input scale.
pub fn add(s1: f32, s2: f32, so: f32, zo: i32, activation: Activation) -> LayerParams {
    let left_shift = 20;
    let twice_max = 2.0 * f64::from(s1.max(s2));
    let (m1, sh1) = quantize_multiplier(f64::from(s1) / twice_max);
    let (m2, sh2) = quantize_multiplier(f64::from(s2) / twice_max);
    let (mo, sho) = quantize_multiplier(twice_max / ((1_i64 << left_shift) as f64 * f64::from(so)));
    let act = activation_range(activation, so, zo);
    LayerParams::Add { params: [left_shift, m1, sh1, m2, sh2, mo, sho], act }
}

/// Mean over `count` pixels from `(in_scale, in_zp)` to `(out_scale, out_zp)`.
pub fn mean(in_scale: f32, in_zp: i32, out_scale: f32, out_zp: i32, count: usize, keep_dims: bool) -> LayerParams {
    let real = f64::from(in_scale) / f64::from(out_scale);
    let (mode, (multiplier, shift)) = if keep_dims {
        (mean_mode::INTEGER, quantize_multiplier(real))
    } else if in_scale == out_scale && in_zp == out_zp {
        (mean_mode::EQUAL_QUANT, (0, 0))
    } else {
        (mean_mode::MULTIPLIER, mean_multiplier(real, count))
    };
    LayerParams::Mean { mode, multiplier, shift }
}
