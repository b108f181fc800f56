//! Standalone RELU / RELU6 / int8→int8 QUANTIZE: requantize to the output's own scale
//! and zero point, then clamp (LiteRT's `ReluX`; TFLM's standalone RELU6 skips the
//! requantization when scales differ, a known fault we do not copy).
//!
//! `out = clamp(zp_out + M · (in − zp_in), act_min, act_max)` with `M = s_in / s_out`.
//! Works in place.

use crate::quant::multiply_by_quantized_multiplier;
use core::cell::Cell;

/// Parameters of a requantization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequantizeParams {
    /// Q31 multiplier of `s_in / s_out`.
    pub multiplier: i32,
    /// Its shift.
    pub shift: i32,
    /// Input zero point.
    pub input_zero_point: i32,
    /// Output zero point.
    pub output_zero_point: i32,
    /// Lower clamp (the quantized 0 for ReLU).
    pub act_min: i8,
    /// Upper clamp (the quantized 6 for ReLU6).
    pub act_max: i8,
}

/// Requantizes and clamps element by element; `input` and `output` may be the same memory.
pub fn requantize_s8(input: &[Cell<i8>], output: &[Cell<i8>], params: &RequantizeParams) {
    for (x, o) in input.iter().zip(output) {
        let centred = i32::from(x.get()) - params.input_zero_point;
        let v = multiply_by_quantized_multiplier(centred, params.multiplier, params.shift)
            .wrapping_add(params.output_zero_point);
        o.set(v.clamp(i32::from(params.act_min), i32::from(params.act_max)) as i8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::quantize_multiplier;

    #[test]
    fn relu_with_new_scale() {
        let (multiplier, shift) = quantize_multiplier(2.0);
        let p = RequantizeParams {
            multiplier,
            shift,
            input_zero_point: 10,
            output_zero_point: -5,
            act_min: -5,
            act_max: 127,
        };
        let mut data = [10_i8, 20, 0, 127];
        let cells = Cell::from_mut(&mut data[..]).as_slice_of_cells();
        requantize_s8(cells, cells, &p);
        assert_eq!(data, [-5, 15, -5, 127]);
    }
}
