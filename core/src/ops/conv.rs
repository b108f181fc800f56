//! CONV_2D int8 (TFLM's `ConvPerChannel`).
//!
//! `out[y, x, o] = clamp(zp_out + M_o · (bias[o] + Σ w[o, ky, kx, i] · (in[y·sh − pt + ky·dh,
//! x·sw − pl + kx·dw, i] − zp_in)))`, where taps outside the input are skipped (the
//! same as padding with the input zero point) and `M_o` is applied with
//! [`multiply_by_quantized_multiplier`](crate::quant::multiply_by_quantized_multiplier).
//!
//! Layouts: input `[H, W, C_in]`, weights `[C_out, KH, KW, C_in]`, output
//! `[OH, OW, C_out]`. Scratch: two columns on the stack (see [`conv2d_s8`]).

use super::conv_rows::conv2d_s8_rows;
use super::im2col::{dot_2x2, Column, Columns, COLUMN_MAX};
#[cfg(microcnn_arm_dsp)]
use super::im2col::{dot_2x2_wide, dot_2x2_wide_pairs, widen_pairs, WIDE_WORDS};
use super::{acc_bound, reference, ChannelQuant, FastRequant, Requant, Requantize};
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
///
/// On DSP cores, 3-row filters with rows of up to 10 values (3×3 on 1–3 channels) run
/// the three-row kernel (`conv_rows.rs`; 8 KiB of stack). Filters up to 16 values long
/// run the row kernel (`conv_rows.rs`; 7 KiB of stack);
/// longer ones up to 1024 values (`KH·KW·C_in ≤ 1024`) run
/// the im2col kernel (two output pixels × two output channels per pass; 4 KiB of
/// stack for two columns); longer ones the [reference kernel](mod@super::reference).
pub fn conv2d_s8(
    input: &[i8],
    input_shape: Shape,
    input_zero_point: i32,
    output: &mut [i8],
    output_shape: Shape,
    params: &ConvParams<'_>,
) {
    let filter_len = params.window.kernel_h * params.window.kernel_w * input_shape.channels;
    if filter_len == 0 || filter_len > COLUMN_MAX {
        reference::conv2d_s8(input, input_shape, input_zero_point, output, output_shape, params);
        return;
    }
    if conv2d_s8_rows(input, input_shape, input_zero_point, output, output_shape, params) {
        return;
    }
    // A 3×3 first layer on a three-channel image (and other 3-row filters with rows
    // of up to 10 values).
    #[cfg(microcnn_arm_dsp)]
    if super::conv_rows::three_rows(input, input_shape, input_zero_point, output, output_shape, params) {
        return;
    }
    conv2d_s8_im2col(input, input_shape, input_zero_point, output, output_shape, params, filter_len);
}

/// Fills `column` with the receptive field of output pixel `(out_y, out_x)`; `false` when the
/// input is shorter than its shape says.
#[inline(always)]
fn fill_column(
    mut column: Column<'_>,
    input: &[i8],
    input_shape: Shape,
    window: &Window,
    (out_y, out_x): (usize, usize),
    offset: i32,
    filter_len: usize,
) -> bool {
    let origin_y = (out_y * window.stride_h) as isize - window.pad_top as isize;
    let origin_x = (out_x * window.stride_w) as isize - window.pad_left as isize;
    let (height, width) = (input_shape.height as isize, input_shape.width as isize);
    let in_c = input_shape.channels;
    let grouped = in_c.is_multiple_of(4);
    let mut at = 0;
    let kernel_w = window.kernel_w as isize;
    let row_len = window.kernel_w * in_c;
    // With dilation 1 a kernel row's valid taps are one contiguous run of the input.
    let (kx_start, kx_end) = ((-origin_x).clamp(0, kernel_w) as usize, (width - origin_x).clamp(0, kernel_w) as usize);
    let last_y = origin_y + ((window.kernel_h.max(1) - 1) * window.dilation_h) as isize;
    if window.dilation_w == 1 && kx_start == 0 && kx_end == window.kernel_w && origin_y >= 0 && last_y < height {
        // The whole window is inside the image: one run per kernel row.
        let mut start = (origin_y * width + origin_x) as usize * in_c;
        let step = input_shape.width * in_c * window.dilation_h;
        for _ in 0..window.kernel_h {
            let Some(x) = input.get(start..start + row_len) else {
                return false;
            };
            column.run(at, x, offset, grouped);
            at += row_len;
            start += step;
        }
        column.finish(filter_len, grouped);
        return true;
    }
    let mut in_y = origin_y;
    for _ in 0..window.kernel_h {
        if !(0..height).contains(&in_y) {
            column.zeros(at, row_len);
        } else if window.dilation_w == 1 {
            column.zeros(at, kx_start * in_c);
            if kx_start < kx_end {
                let start = (in_y * width + origin_x + kx_start as isize) as usize * in_c;
                let Some(x) = input.get(start..start + (kx_end - kx_start) * in_c) else {
                    return false;
                };
                column.run(at + kx_start * in_c, x, offset, grouped);
            }
            column.zeros(at + kx_end.max(kx_start) * in_c, (window.kernel_w - kx_end.max(kx_start)) * in_c);
        } else {
            let mut in_x = origin_x;
            for kx in 0..window.kernel_w {
                let tap = at + kx * in_c;
                if (0..width).contains(&in_x) {
                    let start = (in_y * width + in_x) as usize * in_c;
                    let Some(x) = input.get(start..start + in_c) else {
                        return false;
                    };
                    column.run(tap, x, offset, grouped);
                } else {
                    column.zeros(tap, in_c);
                }
                in_x += window.dilation_w as isize;
            }
        }
        at += row_len;
        in_y += window.dilation_h as isize;
    }
    column.finish(filter_len, grouped);
    true
}

#[allow(clippy::too_many_arguments)]
fn conv2d_s8_im2col(
    input: &[i8],
    input_shape: Shape,
    input_zero_point: i32,
    output: &mut [i8],
    output_shape: Shape,
    params: &ConvParams<'_>,
    filter_len: usize,
) {
    // The fast requantization when every channel has it (the usual case); else, on DSP
    // cores, the reference kernel (one instantiation of the im2col kernel: code size;
    // such layers have a real scale ≥ 0.5 or a bias near 2^30).
    let bound = acc_bound(filter_len, input_zero_point);
    if (0..output_shape.channels).all(|o| FastRequant::for_channel(&params.quant, o, bound).is_some()) {
        im2col_blocks::<FastRequant>(input, input_shape, input_zero_point, output, output_shape, params, filter_len);
    } else if cfg!(microcnn_arm_dsp) {
        reference::conv2d_s8(input, input_shape, input_zero_point, output, output_shape, params);
    } else {
        im2col_blocks::<Requant>(input, input_shape, input_zero_point, output, output_shape, params, filter_len);
    }
}

#[allow(clippy::too_many_arguments)]
fn im2col_blocks<Q: Requantize>(
    input: &[i8],
    input_shape: Shape,
    input_zero_point: i32,
    output: &mut [i8],
    output_shape: Shape,
    params: &ConvParams<'_>,
    filter_len: usize,
) {
    let bound = acc_bound(filter_len, input_zero_point);
    let window = &params.window;
    let out_c = output_shape.channels;
    let pixels = output_shape.height * output_shape.width;
    let offset = input_zero_point.wrapping_neg();
    let Some(weights) = params.weights.get(..out_c * filter_len) else {
        return;
    };
    let Some(output) = output.get_mut(..pixels * out_c) else {
        return;
    };
    let mut columns = Columns::new();
    let fill = |columns: &mut Columns, k: usize, at: (usize, usize)| {
        fill_column(columns.column(k), input, input_shape, window, at, offset, filter_len)
    };
    let width = output_shape.width;
    let next = |(y, x): (usize, usize)| if x + 1 < width { (y, x + 1) } else { (y + 1, 0) };
    // Output channels in blocks whose requantization (and, on DSP cores, widened
    // weights) is prepared once per layer; wider layers fill each column once per block.
    let mut requants = [Q::ZERO; CHANNEL_BLOCK];
    #[cfg(microcnn_arm_dsp)]
    let mut wide = [0_u32; WIDE_WORDS];
    #[cfg(microcnn_arm_dsp)]
    let wide_pairs = WIDE_WORDS / filter_len.next_multiple_of(4);
    #[cfg(microcnn_arm_dsp)]
    let (widened, block) = match 2 * wide_pairs >= out_c.min(8) {
        true => (true, CHANNEL_BLOCK.min(2 * wide_pairs)),
        false => (false, CHANNEL_BLOCK),
    };
    #[cfg(not(microcnn_arm_dsp))]
    let block = CHANNEL_BLOCK;
    let mut block_start = 0;
    while block_start < out_c {
        let block_len = block.min(out_c - block_start);
        for (k, r) in requants[..block_len].iter_mut().enumerate() {
            match Q::for_channel(&params.quant, block_start + k, bound) {
                Some(prepared) => *r = prepared,
                None => {
                    reference::conv2d_s8(input, input_shape, input_zero_point, output, output_shape, params);
                    return;
                }
            }
        }
        let requants = &requants[..block_len];
        let Some(weights) = weights.get(block_start * filter_len..(block_start + block_len) * filter_len) else {
            return;
        };
        #[cfg(microcnn_arm_dsp)]
        let filters = if widened {
            let Some(per_pair) = widen_pairs(weights, filter_len, block_len, &mut wide) else {
                return;
            };
            Filters::Widened(&wide[..], per_pair)
        } else {
            Filters::Bytes(weights)
        };
        #[cfg(not(microcnn_arm_dsp))]
        let filters = Filters::Bytes(weights);
        let mut outputs = output.chunks_exact_mut(2 * out_c.max(1));
        let mut at = (0, 0);
        for pair in &mut outputs {
            let second = next(at);
            if !fill(&mut columns, 0, at) || !fill(&mut columns, 1, second) {
                return;
            }
            let (out0, out1) = pair.split_at_mut(out_c);
            let out0 = &mut out0[block_start..block_start + block_len];
            let out1 = &mut out1[block_start..block_start + block_len];
            conv_pixels(&columns, &filters, filter_len, requants, out0, Some(out1));
            at = next(second);
        }
        let last = outputs.into_remainder();
        if let Some(last) = last.get_mut(block_start..block_start + block_len) {
            if !fill(&mut columns, 0, at) {
                return;
            }
            conv_pixels(&columns, &filters, filter_len, requants, last, None);
        }
        block_start += block_len;
    }
}

/// A block's filters: as stored, or widened in pairs for the DSP micro-kernel (with
/// the words per pair).
enum Filters<'a> {
    Bytes(&'a [i8]),
    #[cfg(microcnn_arm_dsp)]
    Widened(&'a [u32], usize),
}

/// Output channels whose requantization the im2col kernel prepares at a time.
const CHANNEL_BLOCK: usize = 32;

/// All output channels of one or two pixels whose columns are filled.
#[inline(always)]
fn conv_pixels<Q: Requantize>(
    columns: &Columns,
    filters: &Filters<'_>,
    filter_len: usize,
    requants: &[Q],
    out0: &mut [i8],
    mut out1: Option<&mut [i8]>,
) {
    // Widened filters: every pair's sums in one call, then their requantization.
    #[cfg(microcnn_arm_dsp)]
    if let Filters::Widened(wide, per_pair) = *filters {
        let mut sums = [0_i32; 2 * CHANNEL_BLOCK + 2];
        let Some(sums) = sums.get_mut(..2 * requants.len().next_multiple_of(2)) else {
            return;
        };
        dot_2x2_wide_pairs(wide, per_pair, sums.len() / 4, columns, sums);
        for ((o, r), s) in requants.iter().enumerate().zip(sums.chunks_exact(2)) {
            // s = [channel o at pixel 0, at pixel 1] (pairs lay out [w0·c0, w0·c1, w1·c0, w1·c1]).
            if let Some(y) = out0.get_mut(o) {
                *y = r.output(s[0]);
            }
            if let Some(y) = out1.as_deref_mut().and_then(|out| out.get_mut(o)) {
                *y = r.output(s[1]);
            }
        }
        return;
    }
    let mut pairs = requants.chunks_exact(2);
    let mut o = 0;
    for r in &mut pairs {
        let acc = match *filters {
            Filters::Bytes(weights) => {
                // Each filter slice runs on to the end of the block's weights (see `dot_2x2`).
                let (Some(w0), Some(w1)) = (weights.get(o * filter_len..), weights.get((o + 1) * filter_len..)) else {
                    return;
                };
                dot_2x2(w0, w1, filter_len, columns)
            }
            #[cfg(microcnn_arm_dsp)]
            Filters::Widened(wide, per_pair) => match wide.get(o / 2 * per_pair..(o / 2 + 1) * per_pair) {
                Some(pair) => dot_2x2_wide(pair, columns),
                None => return,
            },
        };
        let (y00, y01) = r[0].output2(acc[0], acc[1]);
        let (y10, y11) = r[1].output2(acc[2], acc[3]);
        if let Some(y) = out0.get_mut(o..o + 2) {
            y[0] = y00;
            y[1] = y10;
        }
        if let Some(y) = out1.as_deref_mut().and_then(|out| out.get_mut(o..o + 2)) {
            y[0] = y01;
            y[1] = y11;
        }
        o += 2;
    }
    if let Some(r) = pairs.remainder().first() {
        let acc = match *filters {
            Filters::Bytes(weights) => match weights.get(o * filter_len..) {
                Some(w) => dot_2x2(w, w, filter_len, columns),
                None => return,
            },
            #[cfg(microcnn_arm_dsp)]
            Filters::Widened(wide, per_pair) => match wide.get(o / 2 * per_pair..(o / 2 + 1) * per_pair) {
                Some(pair) => dot_2x2_wide(pair, columns),
                None => return,
            },
        };
        if let Some(y) = out0.get_mut(o) {
            *y = r.output(acc[0]);
        }
        if let Some(y) = out1.and_then(|out| out.get_mut(o)) {
            *y = r.output(acc[1]);
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
