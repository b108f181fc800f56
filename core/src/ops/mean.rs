//! MEAN over height and width (Keras's `GlobalAveragePooling2D`), with TFLM's three
//! int8 paths, chosen at export (see [`mean_mode`]):
//!
//! - **multiplier** (`keep_dims = false`, what Keras produces): `Σx − zp_in·n`
//!   requantized by one multiplier that folds `1/n` into `s_in / s_out` (TFLM's
//!   `QuantizedMeanOrSum`: the Q31 multiplier shifted left by `floor(log2 n)` and
//!   divided by `n` with truncation, at export), plus `zp_out`, clamped;
//! - **integer** (`keep_dims = true`): `Σ(x − zp_in)` requantized by `s_in / s_out`,
//!   divided by `n` rounding half away from zero, plus `zp_out`, clamped;
//! - **equal quantization**: `Σx / n` with C's truncating division.
//!
//! Layout: input `[H, W, C]`, output `C` values.

use super::pool::rounded_divide;
use crate::format::mean_mode;
use crate::quant::multiply_by_quantized_multiplier;
use crate::shape::Shape;

/// Parameters of a mean.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanParams {
    /// One of [`mean_mode`].
    pub mode: u8,
    /// Multiplier: of `s_in / s_out` (integer mode) or of `s_in / (s_out · n)`
    /// (multiplier mode).
    pub multiplier: i32,
    /// Its shift.
    pub shift: i32,
    /// Input zero point.
    pub input_zero_point: i32,
    /// Output zero point.
    pub output_zero_point: i32,
}

/// Averages each channel over all pixels.
pub fn mean_hw_s8(input: &[i8], input_shape: Shape, output: &mut [i8], params: &MeanParams) {
    let channels = input_shape.channels;
    let count = input_shape.pixels();
    for (c, out) in output.iter_mut().enumerate().take(channels) {
        // At most 2^23 pixels (validated), so the sums fit in i32.
        let sum: i32 = (0..count).map(|p| i32::from(input.get(p * channels + c).copied().unwrap_or(0))).sum();
        let centred = sum.wrapping_sub(params.input_zero_point.wrapping_mul(count as i32));
        let value = match params.mode {
            mean_mode::INTEGER => {
                let scaled = multiply_by_quantized_multiplier(centred, params.multiplier, params.shift);
                rounded_divide(scaled, count as i32) + params.output_zero_point
            }
            mean_mode::EQUAL_QUANT => sum / count as i32,
            _ => multiply_by_quantized_multiplier(centred, params.multiplier, params.shift)
                .wrapping_add(params.output_zero_point),
        };
        *out = value.clamp(-128, 127) as i8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{mean_multiplier, quantize_multiplier};

    #[test]
    fn three_paths() {
        let input: [i8; 8] = [1, 10, 2, 20, 3, 30, 5, 41]; // 2×2×2
        let shape = Shape::new(2, 2, 2);
        let mut out = [0_i8; 2];
        let (multiplier, shift) = quantize_multiplier(0.5);
        let mut params =
            MeanParams { mode: mean_mode::EQUAL_QUANT, multiplier, shift, input_zero_point: 1, output_zero_point: 2 };
        mean_hw_s8(&input, shape, &mut out, &params);
        assert_eq!(out, [2, 25]); // 11/4 = 2 (truncated), 101/4 = 25
        params.mode = mean_mode::MULTIPLIER;
        let (m, s) = mean_multiplier(0.5, 4);
        params.multiplier = m;
        params.shift = s;
        mean_hw_s8(&input, shape, &mut out, &params);
        // Σ(x−1) = 7 → 7·0.5/4 = 0.875 → 1, +2 = 3; 97 → 12.125 → 12, +2 = 14
        assert_eq!(out, [3, 14]);
        let (m, s) = quantize_multiplier(0.5);
        params.multiplier = m;
        params.shift = s;
        params.mode = mean_mode::INTEGER;
        mean_hw_s8(&input, shape, &mut out, &params);
        // Σ(x−1) = 7 → ·0.5 = 3.5 → 4 → 4/4 = 1, +2 = 3; Σ = 97 → 48.5 → 49 → 12.25 → 12, +2 = 14
        assert_eq!(out, [3, 14]);
    }
}
