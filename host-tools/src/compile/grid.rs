//! The int8 grid, shared by post-training quantization and quantization-aware
//! training so that both round exactly as the core does
//! ([`quantize_f32_to_i8`]: half away from zero, saturating):
//!
//! - activations: TFLite's asymmetric per-tensor scheme from a real range
//!   ([`range_quant`]: `scale = (max − min)/255`, `zero_point = round(−128 − min/scale)`,
//!   the range widened to hold 0); the model input is `pixel/255` exactly
//!   ([`INPUT_QUANT`]); a softmax output is TFLite's fixed `1/256`, −128
//!   ([`SOFTMAX_QUANT`]);
//! - weights: symmetric int8 per output channel ([`quantize_weights`]:
//!   `scale = max|w|/127`).

use microcnn_core::quant::{quantize_f32_to_i8, round_half_away_f32};

/// A tensor's int8 quantization: `real = (q − zero_point) × scale`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quant {
    /// Real value of one step.
    pub scale: f32,
    /// The int8 value of real 0.
    pub zero_point: i32,
}

/// The input's quantization: `pixel / 255` maps exactly onto `q = pixel − 128`.
pub const INPUT_QUANT: Quant = Quant { scale: 1.0 / 255.0, zero_point: -128 };
/// TFLite's fixed int8 softmax output quantization.
pub const SOFTMAX_QUANT: Quant = Quant { scale: 1.0 / 256.0, zero_point: -128 };

/// TFLite's asymmetric int8 parameters for a real range (widened to hold 0).
pub fn range_quant(min: f32, max: f32) -> Quant {
    let (min, max) = (min.min(0.0), max.max(0.0));
    if !(max - min).is_finite() || max - min <= 0.0 {
        return Quant { scale: 1.0 / 255.0, zero_point: -128 };
    }
    let scale = (max - min) / 255.0;
    let zero_point = round_half_away_f32(-128.0 - min / scale).clamp(-128.0, 127.0) as i32;
    Quant { scale, zero_point }
}

/// Symmetric per-channel int8 weights for a kernel whose last axis is the output
/// channel; returns the weights in the same order and the scales.
pub fn quantize_weights(kernel: &[f32], channels: usize) -> (Vec<i8>, Vec<f32>) {
    let mut max_abs = vec![0.0f32; channels];
    for (k, w) in kernel.iter().enumerate() {
        max_abs[k % channels] = max_abs[k % channels].max(w.abs());
    }
    let scales: Vec<f32> = max_abs.iter().map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 }).collect();
    let q = kernel
        .iter()
        .enumerate()
        .map(|(k, &w)| round_half_away_f32(w / scales[k % channels]).clamp(-127.0, 127.0) as i8)
        .collect();
    (q, scales)
}

/// `value` rounded onto the int8 grid of `quant`, back in reals.
pub fn fake_quant(value: f32, quant: Quant) -> f32 {
    let Quant { scale, zero_point } = quant;
    (i32::from(quantize_f32_to_i8(value, scale, zero_point)) - zero_point) as f32 * scale
}
