//! The straightforward kernels, one loop nest per TFLM reference kernel: the
//! specification every optimised kernel is tested against (whole outputs,
//! `assert_eq!`), and the fallback where a layer exceeds an optimised kernel's bounds.
//!
//! Formulas, layouts and quantization contracts are those of the operator modules
//! ([`conv`](super::conv), [`depthwise`](super::depthwise), [`dense`](super::dense),
//! [`pool`](super::pool)). Scratch: none.

use super::conv::ConvParams;
use super::dense::DenseParams;
use super::pool::{rounded_divide, PoolParams};
use super::{dot_offset, valid_taps};
use crate::shape::Shape;

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

/// Output channels accumulated together per pass.
const DEPTHWISE_BLOCK: usize = 32;

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
                let block_len = DEPTHWISE_BLOCK.min(out_c - block_start);
                let mut acc = [0_i32; DEPTHWISE_BLOCK];
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

/// Runs a dense layer: `input` has `N` values, `output` has `C_out`.
pub fn fully_connected_s8(input: &[i8], input_zero_point: i32, output: &mut [i8], params: &DenseParams<'_>) {
    let (n, units) = (input.len(), output.len());
    if n != params.input_len
        || units != params.units
        || crate::format::dense_weights_len(units, n).is_none_or(|len| params.weights.len() < len)
    {
        return;
    }
    for (o, out) in output.iter_mut().enumerate() {
        let acc = input.iter().enumerate().fold(0_i32, |acc, (i, &x)| {
            acc.wrapping_add(i32::from(params.weight(o, i)).wrapping_mul(i32::from(x) - input_zero_point))
        });
        *out = params.quant.output(o, acc);
    }
}

#[allow(clippy::too_many_arguments)] // the two closures are the operator; the rest is geometry
fn pool<F: FnMut(&mut [i32], &[i8]), G: Fn(i32, i32) -> i32>(
    input: &[i8],
    input_shape: Shape,
    output: &mut [i8],
    output_shape: Shape,
    params: &PoolParams,
    init: i32,
    mut combine: F,
    finish: G,
) {
    const BLOCK: usize = 64;
    let w = &params.window;
    let channels = input_shape.channels;
    for out_y in 0..output_shape.height {
        let origin_y = (out_y * w.stride_h) as isize - w.pad_top as isize;
        let (ky_start, ky_end) = valid_taps(origin_y, w.kernel_h, 1, input_shape.height);
        for out_x in 0..output_shape.width {
            let origin_x = (out_x * w.stride_w) as isize - w.pad_left as isize;
            let (kx_start, kx_end) = valid_taps(origin_x, w.kernel_w, 1, input_shape.width);
            let count = ((ky_end - ky_start) * (kx_end - kx_start)) as i32;
            let out_base = (out_y * output_shape.width + out_x) * channels;
            let mut c0 = 0;
            while c0 < channels {
                let len = BLOCK.min(channels - c0);
                let mut acc = [init; BLOCK];
                for ky in ky_start..ky_end {
                    let in_y = (origin_y + ky as isize) as usize;
                    for kx in kx_start..kx_end {
                        let in_x = (origin_x + kx as isize) as usize;
                        let base = (in_y * input_shape.width + in_x) * channels + c0;
                        let Some(x) = input.get(base..base + len) else {
                            return;
                        };
                        combine(&mut acc[..len], x);
                    }
                }
                let Some(out) = output.get_mut(out_base + c0..out_base + c0 + len) else {
                    return;
                };
                for (o, &a) in out.iter_mut().zip(&acc) {
                    *o = finish(a, count).clamp(i32::from(params.act_min), i32::from(params.act_max)) as i8;
                }
                c0 += len;
            }
        }
    }
}

/// Max pooling.
pub fn max_pool2d_s8(input: &[i8], input_shape: Shape, output: &mut [i8], output_shape: Shape, params: &PoolParams) {
    pool(
        input,
        input_shape,
        output,
        output_shape,
        params,
        i32::from(i8::MIN),
        |acc, x| {
            for (a, &v) in acc.iter_mut().zip(x) {
                *a = (*a).max(i32::from(v));
            }
        },
        |acc, _| acc,
    );
}

/// Average pooling.
pub fn avg_pool2d_s8(input: &[i8], input_shape: Shape, output: &mut [i8], output_shape: Shape, params: &PoolParams) {
    pool(
        input,
        input_shape,
        output,
        output_shape,
        params,
        0,
        |acc, x| {
            for (a, &v) in acc.iter_mut().zip(x) {
                *a += i32::from(v);
            }
        },
        |acc, count| {
            if count == 0 {
                0
            } else {
                rounded_divide(acc, count)
            }
        },
    );
}
