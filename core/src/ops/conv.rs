//! CONV_2D int8 (TFLM's `ConvPerChannel`).
//!
//! `out[y, x, o] = clamp(zp_out + M_o · (bias[o] + Σ w[o, ky, kx, i] · (in[y·sh − pt + ky·dh,
//! x·sw − pl + kx·dw, i] − zp_in)))`, where taps outside the input are skipped (the
//! same as padding with the input zero point) and `M_o` is applied with
//! [`multiply_by_quantized_multiplier`](crate::quant::multiply_by_quantized_multiplier).
//!
//! Layouts: input `[H, W, C_in]`, weights `[C_out, KH, KW, C_in]`, output
//! `[OH, OW, C_out]`. Scratch: none.

use super::{dot_offset, valid_taps, ChannelQuant};
use crate::shape::Shape;

/// Geometry of a convolution or pooling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Window {
    /// Kernel height.
    pub kernel_h: usize,
    /// Kernel width.
    pub kernel_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Vertical dilation (1 for pooling).
    pub dilation_h: usize,
    /// Horizontal dilation (1 for pooling).
    pub dilation_w: usize,
    /// Padding rows above the input.
    pub pad_top: usize,
    /// Padding columns left of the input.
    pub pad_left: usize,
}

/// Parameters of a convolution (also used by depthwise convolution).
#[derive(Clone, Copy, Debug)]
pub struct ConvParams<'a> {
    /// Window geometry.
    pub window: Window,
    /// Depth multiplier (depthwise only; 1 for a normal convolution).
    pub depth_multiplier: usize,
    /// int8 weights.
    pub weights: &'a [i8],
    /// Bias, requantization and clamp per output channel.
    pub quant: ChannelQuant<'a>,
}

/// Runs a 2-D convolution. `input` holds `input_shape.elements()` values,
/// `output` holds `output_shape.elements()`.
pub fn conv2d_s8(
    input: &[i8],
    input_shape: Shape,
    input_zero_point: i32,
    output: &mut [i8],
    output_shape: Shape,
    params: &ConvParams<'_>,
) {
    let w = &params.window;
    let in_c = input_shape.channels;
    let out_c = output_shape.channels;
    let filter_len = w.kernel_h * w.kernel_w * in_c;
    for out_y in 0..output_shape.height {
        let origin_y = (out_y * w.stride_h) as isize - w.pad_top as isize;
        let (ky_start, ky_end) = valid_taps(origin_y, w.kernel_h, w.dilation_h, input_shape.height);
        for out_x in 0..output_shape.width {
            let origin_x = (out_x * w.stride_w) as isize - w.pad_left as isize;
            let (kx_start, kx_end) = valid_taps(origin_x, w.kernel_w, w.dilation_w, input_shape.width);
            let out_base = (out_y * output_shape.width + out_x) * out_c;
            let Some(out_pixel) = output.get_mut(out_base..out_base + out_c) else {
                return;
            };
            for (o, out) in out_pixel.iter_mut().enumerate() {
                let Some(filter) = params.weights.get(o * filter_len..(o + 1) * filter_len) else {
                    return;
                };
                let mut acc = 0_i32;
                for ky in ky_start..ky_end {
                    let in_y = (origin_y + (ky * w.dilation_h) as isize) as usize;
                    let row = in_y * input_shape.width;
                    if w.dilation_w == 1 {
                        // The valid taps of one kernel row are contiguous in both the
                        // input (NHWC) and the weights (OHWI).
                        let in_x = (origin_x + kx_start as isize) as usize;
                        let run = (kx_end - kx_start) * in_c;
                        let x_start = (row + in_x) * in_c;
                        let w_start = (ky * w.kernel_w + kx_start) * in_c;
                        if let (Some(x), Some(k)) =
                            (input.get(x_start..x_start + run), filter.get(w_start..w_start + run))
                        {
                            acc = acc.wrapping_add(dot_offset(x, k, input_zero_point));
                        }
                    } else {
                        for kx in kx_start..kx_end {
                            let in_x = (origin_x + (kx * w.dilation_w) as isize) as usize;
                            let x_start = (row + in_x) * in_c;
                            let w_start = (ky * w.kernel_w + kx) * in_c;
                            if let (Some(x), Some(k)) =
                                (input.get(x_start..x_start + in_c), filter.get(w_start..w_start + in_c))
                            {
                                acc = acc.wrapping_add(dot_offset(x, k, input_zero_point));
                            }
                        }
                    }
                }
                *out = params.quant.output(o, acc);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::I32s;
    use crate::quant::quantize_multiplier;

    fn le(values: &[i32]) -> [u8; 64] {
        let mut out = [0_u8; 64];
        for (i, v) in values.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    fn window(k: usize, s: usize, pad: usize) -> Window {
        Window {
            kernel_h: k,
            kernel_w: k,
            stride_h: s,
            stride_w: s,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: pad,
            pad_left: pad,
        }
    }

    /// A 3×3 box filter over a 3×3 image with SAME padding, multiplier 1:
    /// each output is the sum of the in-bounds neighbours (hand-checkable).
    #[test]
    fn box_filter_same_padding() {
        let input: [i8; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        let weights = [1_i8; 9];
        let (m, s) = quantize_multiplier(1.0);
        let mult = le(&[m]);
        let shift = le(&[s]);
        let params = ConvParams {
            window: window(3, 1, 1),
            depth_multiplier: 1,
            weights: &weights,
            quant: ChannelQuant {
                bias: None,
                multipliers: I32s::new(&mult[..4]),
                shifts: I32s::new(&shift[..4]),
                output_zero_point: 0,
                act_min: -128,
                act_max: 127,
            },
        };
        let mut out = [0_i8; 9];
        conv2d_s8(&input, Shape::new(3, 3, 1), 0, &mut out, Shape::new(3, 3, 1), &params);
        assert_eq!(out, [12, 21, 16, 27, 45, 33, 24, 39, 28]);
    }

    /// Input zero point: padded taps contribute nothing, in-bounds taps contribute
    /// `x − zp`; and the clamp saturates at both ends.
    #[test]
    fn zero_point_and_saturation() {
        let input: [i8; 4] = [10, 10, 10, 10];
        let weights = [1_i8; 9];
        let (m, s) = quantize_multiplier(1.0);
        let mult = le(&[m, m]);
        let shift = le(&[s, s]);
        let bias = le(&[0, 0]);
        let run = |zp: i32, bias_value: i32| {
            let bias = le(&[bias_value]);
            let params = ConvParams {
                window: window(3, 1, 1),
                depth_multiplier: 1,
                weights: &weights,
                quant: ChannelQuant {
                    bias: Some(I32s::new(&bias[..4])),
                    multipliers: I32s::new(&mult[..4]),
                    shifts: I32s::new(&shift[..4]),
                    output_zero_point: -3,
                    act_min: -128,
                    act_max: 127,
                },
            };
            let mut out = [0_i8; 4];
            conv2d_s8(&input, Shape::new(2, 2, 1), zp, &mut out, Shape::new(2, 2, 1), &params);
            out
        };
        let _ = bias;
        assert_eq!(run(7, 0), [9, 9, 9, 9]); // 4 taps × (10 − 7) − 3
        assert_eq!(run(7, 1000), [127; 4]);
        assert_eq!(run(7, -1000), [-128; 4]);
    }

    /// A kernel larger than the input with SAME padding, and a stride larger than
    /// the kernel with VALID padding.
    #[test]
    fn kernel_larger_than_input_and_stride_larger_than_kernel() {
        let input: [i8; 1] = [5];
        let weights = [2_i8; 25];
        let (m, s) = quantize_multiplier(1.0);
        let mult = le(&[m]);
        let shift = le(&[s]);
        let quant = ChannelQuant {
            bias: None,
            multipliers: I32s::new(&mult[..4]),
            shifts: I32s::new(&shift[..4]),
            output_zero_point: 0,
            act_min: -128,
            act_max: 127,
        };
        let params = ConvParams { window: window(5, 1, 2), depth_multiplier: 1, weights: &weights, quant };
        let mut out = [0_i8; 1];
        conv2d_s8(&input, Shape::new(1, 1, 1), 0, &mut out, Shape::new(1, 1, 1), &params);
        assert_eq!(out, [10]); // only the centre tap is inside

        let input: [i8; 25] = core::array::from_fn(|i| i as i8);
        let weights = [1_i8; 1];
        let params = ConvParams { window: window(1, 3, 0), depth_multiplier: 1, weights: &weights, quant };
        let mut out = [0_i8; 4];
        conv2d_s8(&input, Shape::new(5, 5, 1), 0, &mut out, Shape::new(2, 2, 1), &params);
        assert_eq!(out, [0, 3, 15, 18]);
    }
}
