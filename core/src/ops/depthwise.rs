//! DEPTHWISE_CONV_2D int8 (TFLM's `DepthwiseConvPerChannel`).
//!
//! Output channel `o = i·m + j` (input channel `i`, multiplier index `j`) is
//! `clamp(zp_out + M_o · (bias[o] + Σ w[ky, kx, o] · (in[y', x', i] − zp_in)))` over the
//! in-bounds taps, with the same window arithmetic as [`conv2d_s8`](super::conv::conv2d_s8).
//!
//! Layouts: input `[H, W, C]`, weights `[KH, KW, C·m]`, output `[OH, OW, C·m]`.
//! Scratch: none (a 32-entry accumulator block on the stack).

use super::conv::ConvParams;
use super::valid_taps;
use crate::shape::Shape;

/// Output channels accumulated together per pass.
const BLOCK: usize = 32;

/// Runs a depthwise convolution.
pub fn depthwise_conv2d_s8(
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
    let multiplier = params.depth_multiplier.max(1);
    for out_y in 0..output_shape.height {
        let origin_y = (out_y * w.stride_h) as isize - w.pad_top as isize;
        let (ky_start, ky_end) = valid_taps(origin_y, w.kernel_h, w.dilation_h, input_shape.height);
        for out_x in 0..output_shape.width {
            let origin_x = (out_x * w.stride_w) as isize - w.pad_left as isize;
            let (kx_start, kx_end) = valid_taps(origin_x, w.kernel_w, w.dilation_w, input_shape.width);
            let out_base = (out_y * output_shape.width + out_x) * out_c;
            let mut block_start = 0;
            while block_start < out_c {
                let block_len = BLOCK.min(out_c - block_start);
                let mut acc = [0_i32; BLOCK];
                for ky in ky_start..ky_end {
                    let in_y = (origin_y + (ky * w.dilation_h) as isize) as usize;
                    for kx in kx_start..kx_end {
                        let in_x = (origin_x + (kx * w.dilation_w) as isize) as usize;
                        let x_base = (in_y * input_shape.width + in_x) * in_c;
                        let w_base = (ky * w.kernel_w + kx) * out_c + block_start;
                        let (Some(x), Some(k)) =
                            (input.get(x_base..x_base + in_c), params.weights.get(w_base..w_base + block_len))
                        else {
                            return;
                        };
                        if multiplier == 1 {
                            let x = &x[block_start..block_start + block_len];
                            for ((a, &xv), &kv) in acc.iter_mut().zip(x).zip(k) {
                                *a += (i32::from(xv) - input_zero_point) * i32::from(kv);
                            }
                        } else {
                            for (j, (a, &kv)) in acc.iter_mut().zip(k).enumerate() {
                                let xv = x[(block_start + j) / multiplier];
                                *a += (i32::from(xv) - input_zero_point) * i32::from(kv);
                            }
                        }
                    }
                }
                let Some(out) = output.get_mut(out_base + block_start..out_base + block_start + block_len) else {
                    return;
                };
                for (j, (o, &a)) in out.iter_mut().zip(&acc).enumerate() {
                    *o = params.quant.output(block_start + j, a);
                }
                block_start += block_len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv::Window;
    use crate::ops::{ChannelQuant, I32s};
    use crate::quant::quantize_multiplier;

    #[test]
    fn depth_multiplier_two() {
        // 2×2×2 input, 1×1 kernel, multiplier 2: out[o=2i+j] = in[i]·w[o]
        let input: [i8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
        let weights: [i8; 4] = [1, -1, 2, 3];
        let (m, s) = quantize_multiplier(1.0);
        let mut mult = [0_u8; 16];
        let mut shift = [0_u8; 16];
        for c in 0..4 {
            mult[c * 4..c * 4 + 4].copy_from_slice(&m.to_le_bytes());
            shift[c * 4..c * 4 + 4].copy_from_slice(&s.to_le_bytes());
        }
        let params = ConvParams {
            window: Window {
                kernel_h: 1,
                kernel_w: 1,
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
                pad_top: 0,
                pad_left: 0,
            },
            depth_multiplier: 2,
            weights: &weights,
            quant: ChannelQuant {
                bias: None,
                multipliers: I32s::new(&mult),
                shifts: I32s::new(&shift),
                output_zero_point: 0,
                act_min: -128,
                act_max: 127,
            },
        };
        let mut out = [0_i8; 16];
        depthwise_conv2d_s8(&input, Shape::new(2, 2, 2), 0, &mut out, Shape::new(2, 2, 4), &params);
        assert_eq!(out, [1, -1, 4, 6, 3, -3, 8, 12, 5, -5, 12, 18, 7, -7, 16, 24]);
    }
}
