//! Int8 kernels, one operator family per file.
//!
//! Every kernel is a free function on slices plus a parameter struct decoded from the
//! blob. Layouts are NHWC with batch 1 for activations, `[C_out, KH, KW, C_in]` for
//! convolution weights, `[KH, KW, C_out]` for depthwise weights and `[C_out, C_in]`
//! for dense weights. The kernels assume the shapes were validated at load
//! ([`Model::from_bytes`](crate::Model::from_bytes)); on shapes that were not, they
//! stop early rather than read out of bounds.

pub mod add;
pub mod concat;
pub mod conv;
pub mod dense;
pub mod depthwise;
pub mod mean;
pub mod pool;
pub mod requantize;
pub mod softmax;

use crate::quant::multiply_by_quantized_multiplier;

/// A little-endian `i32` array stored in place in the blob (no alignment needed).
#[derive(Clone, Copy, Debug)]
pub struct I32s<'a>(pub(crate) &'a [u8]);

impl<'a> I32s<'a> {
    /// Wraps `bytes` (its length is a multiple of 4).
    pub fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.0.len() < 4
    }

    /// Value `i`, or 0 past the end.
    #[inline(always)]
    pub fn get(&self, i: usize) -> i32 {
        match self.0.get(i * 4..i * 4 + 4) {
            Some(b) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => 0,
        }
    }
}

/// Per-output-channel requantization: bias, Q31 multiplier and shift.
#[derive(Clone, Copy, Debug)]
pub struct ChannelQuant<'a> {
    /// int32 bias per channel, if the layer has one.
    pub bias: Option<I32s<'a>>,
    /// Q0.31 multipliers.
    pub multipliers: I32s<'a>,
    /// Power-of-two shifts (positive = left).
    pub shifts: I32s<'a>,
    /// The output tensor's zero point.
    pub output_zero_point: i32,
    /// Lower clamp (fused activation).
    pub act_min: i8,
    /// Upper clamp (fused activation).
    pub act_max: i8,
}

impl ChannelQuant<'_> {
    /// Turns the int32 accumulator of channel `c` into its int8 output: add the bias,
    /// requantize, add the output zero point, clamp.
    #[inline(always)]
    pub fn output(&self, c: usize, acc: i32) -> i8 {
        let bias = match &self.bias {
            Some(b) => b.get(c),
            None => 0,
        };
        let scaled =
            multiply_by_quantized_multiplier(acc.wrapping_add(bias), self.multipliers.get(c), self.shifts.get(c));
        let value = scaled.wrapping_add(self.output_zero_point);
        value.clamp(i32::from(self.act_min), i32::from(self.act_max)) as i8
    }
}

/// Sum of `(x − zero_point) × w` over two equally long runs. Validation bounds the run
/// length (≤ 65,536 products of at most 255 × 128), so the sum fits an `i32`.
#[inline(always)]
pub(crate) fn dot_offset(x: &[i8], w: &[i8], input_zero_point: i32) -> i32 {
    let mut sum_xw = 0_i32;
    let mut sum_w = 0_i32;
    for (&a, &b) in x.iter().zip(w) {
        sum_xw += i32::from(a) * i32::from(b);
        sum_w += i32::from(b);
    }
    // Σ(x − zp)·w = Σx·w − zp·Σw; both parts stay within i32 by the same bound.
    sum_xw.wrapping_sub(input_zero_point.wrapping_mul(sum_w))
}

/// The window of kernel taps `[start, end)` along one axis whose input coordinate
/// `origin + tap × dilation` falls inside `0..input`.
#[inline(always)]
pub(crate) fn valid_taps(origin: isize, kernel: usize, dilation: usize, input: usize) -> (usize, usize) {
    let dilation = dilation as isize;
    let start = if origin < 0 { ((-origin + dilation - 1) / dilation) as usize } else { 0 };
    let remaining = input as isize - origin; // taps with origin + t·d < input
    let end = if remaining <= 0 { 0 } else { (((remaining + dilation - 1) / dilation) as usize).min(kernel) };
    (start.min(end), end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_inside_the_image() {
        assert_eq!(valid_taps(-1, 3, 1, 5), (1, 3));
        assert_eq!(valid_taps(3, 3, 1, 5), (0, 2));
        assert_eq!(valid_taps(-2, 5, 1, 3), (2, 5));
        assert_eq!(valid_taps(-2, 3, 2, 12), (1, 3));
        assert_eq!(valid_taps(9, 3, 2, 12), (0, 2)); // 9, 11 inside; 13 outside
        assert_eq!(valid_taps(7, 3, 1, 5), (0, 0));
        assert_eq!(valid_taps(-9, 3, 1, 5), (3, 3)); // empty
    }

    #[test]
    fn dot_with_offset() {
        assert_eq!(dot_offset(&[1, 2, 3], &[4, 5, 6], 0), 32);
        assert_eq!(dot_offset(&[1, 2, 3], &[4, 5, 6], 1), 32 - 15);
        assert_eq!(dot_offset(&[-128; 4], &[-128; 4], 127), 4 * (-255) * (-128));
    }
}
