//! DEPTHWISE_CONV_2D int8 (TFLM's `DepthwiseConvPerChannel`).
//!
//! Output channel `o = i·m + j` (input channel `i`, multiplier index `j`) is
//! `clamp(zp_out + M_o · (bias[o] + Σ w[ky, kx, o] · (in[y', x', i] − zp_in)))` over the
//! in-bounds taps, with the same window arithmetic as [`conv2d_s8`](super::conv::conv2d_s8).
//!
//! Layouts: input `[H, W, C]`, weights `[KH, KW, C·m]`, output `[OH, OW, C·m]`.
//! Scratch: none.

#[cfg(microcnn_arm_dsp)]
use super::arch::arm_dsp::{sadd16, sxtb16, sxtb16_ror8};
use super::conv::ConvParams;
use super::{reference, valid_taps, Requant};
use crate::shape::Shape;

/// Output channels whose requantization is prepared at a time.
const CHANNEL_BLOCK: usize = 32;

/// Runs a depthwise convolution.
///
/// With depth multiplier 1, four channels at a time: one word of input and one of
/// weights per tap, widened to `i16` lanes (`SXTB16`, the input offset added with
/// `SADD16`) on DSP cores, four accumulators in registers, the requantization
/// prepared once per block of channels. Other multipliers run the
/// [reference kernel](mod@super::reference). Scratch: none (1 KiB of stack; on DSP
/// cores the 3×3 kernels of `depthwise3x3`, separate calls, up to 6.5 KiB).
pub fn depthwise_conv2d_s8(
    input: &[i8],
    input_shape: Shape,
    input_zero_point: i32,
    output: &mut [i8],
    output_shape: Shape,
    params: &ConvParams<'_>,
) {
    #[cfg(microcnn_arm_dsp)]
    if super::depthwise3x3::planar(input, input_shape, input_zero_point, output, output_shape, params) {
        return;
    }
    #[cfg(microcnn_arm_dsp)]
    if super::depthwise3x3::depthwise3x3_s8(input, input_shape, input_zero_point, output, output_shape, params) {
        return;
    }
    let channels = input_shape.channels;
    if params.depth_multiplier != 1 || output_shape.channels != channels {
        reference::depthwise_conv2d_s8(input, input_shape, input_zero_point, output, output_shape, params);
        return;
    }
    let w = &params.window;
    let offset = input_zero_point.wrapping_neg();
    let taps = w.kernel_h * w.kernel_w;
    if taps > MAX_TAPS {
        reference::depthwise_conv2d_s8(input, input_shape, input_zero_point, output, output_shape, params);
        return;
    }
    // Every tap of the kernel as (input, weight) offsets from an interior pixel's first
    // tap and the block's first channel: interior pixels (all taps inside) use this
    // one table and the zero-point term folded into the accumulator start.
    let mut kernel = [(0_usize, 0_usize); MAX_TAPS];
    for (t, slot) in kernel.iter_mut().take(taps).enumerate() {
        let (ky, kx) = (t / w.kernel_w, t % w.kernel_w);
        *slot = ((ky * w.dilation_h * input_shape.width + kx * w.dilation_w) * channels, t * channels);
    }
    let kernel = &kernel[..taps];
    let reach_y = (w.kernel_h - 1) * w.dilation_h;
    let reach_x = (w.kernel_w - 1) * w.dilation_w;
    let mut requants = [Requant::ZERO; CHANNEL_BLOCK];
    let mut starts = [0_i32; CHANNEL_BLOCK];
    let mut block_start = 0;
    while block_start < channels {
        let block_len = CHANNEL_BLOCK.min(channels - block_start);
        if !Requant::prepare(&params.quant, block_start, &mut requants[..block_len]) {
            reference::depthwise_conv2d_s8(input, input_shape, input_zero_point, output, output_shape, params);
            return;
        }
        // −zp·Σw per channel: Σ(x − zp)·w = Σx·w − zp·Σw when every tap is read.
        for (k, start) in starts.iter_mut().take(block_len).enumerate() {
            let mut sum = 0_i32;
            for &(_, w_at) in kernel {
                sum += params.weights.get(w_at + block_start + k).map_or(0, |&v| i32::from(v));
            }
            *start = offset.wrapping_mul(sum);
        }
        // Portable cores: the block's weights widened to i32, four channels of a tap
        // per entry, quad by quad (loads with immediate offsets, no sign extension).
        #[cfg(not(microcnn_arm_dsp))]
        let mut wide = [[0_i32; 4]; WIDE_TAPS * CHANNEL_BLOCK / 4];
        #[cfg(not(microcnn_arm_dsp))]
        let wide = if taps <= WIDE_TAPS {
            let quads = block_len / 4;
            for (i, entry) in wide.iter_mut().take(quads * taps).enumerate() {
                let (q, t) = (i / taps, i % taps);
                for (k, v) in entry.iter_mut().enumerate() {
                    *v = params.weights.get(kernel[t].1 + block_start + 4 * q + k).map_or(0, |&x| i32::from(x));
                }
            }
            &wide[..quads * taps]
        } else {
            &wide[..0]
        };
        #[cfg(microcnn_arm_dsp)]
        let wide: &[[i32; 4]] = &[];
        let interior = Interior { kernel, starts: &starts[..block_len], requants: &requants[..block_len], wide };
        for out_y in 0..output_shape.height {
            let origin_y = (out_y * w.stride_h) as isize - w.pad_top as isize;
            let (ky_start, ky_end) = valid_taps(origin_y, w.kernel_h, w.dilation_h, input_shape.height);
            let rows_inside = origin_y >= 0 && origin_y as usize + reach_y < input_shape.height;
            for out_x in 0..output_shape.width {
                let origin_x = (out_x * w.stride_w) as isize - w.pad_left as isize;
                let out_base = (out_y * output_shape.width + out_x) * channels + block_start;
                let Some(out) = output.get_mut(out_base..out_base + block_len) else {
                    return;
                };
                if rows_inside && origin_x >= 0 && origin_x as usize + reach_x < input_shape.width {
                    let base = (origin_y as usize * input_shape.width + origin_x as usize) * channels + block_start;
                    if !interior.pixel(input, params.weights, base, block_start, out) {
                        return;
                    }
                    continue;
                }
                let (kx_start, kx_end) = valid_taps(origin_x, w.kernel_w, w.dilation_w, input_shape.width);
                // The pixel's valid taps as (input, weight) offsets of the block's first
                // channel, computed once for all channels of the block.
                let mut offsets = [(0_usize, 0_usize); MAX_TAPS];
                let mut count = 0;
                for ky in ky_start..ky_end {
                    let in_y = (origin_y + (ky * w.dilation_h) as isize) as usize;
                    for kx in kx_start..kx_end {
                        let in_x = (origin_x + (kx * w.dilation_w) as isize) as usize;
                        if let Some(slot) = offsets.get_mut(count) {
                            *slot = (
                                (in_y * input_shape.width + in_x) * channels + block_start,
                                (ky * w.kernel_w + kx) * channels + block_start,
                            );
                        }
                        count += 1;
                    }
                }
                let Some(offsets) = offsets.get(..count) else {
                    return;
                };
                let taps = Taps { offsets };
                let mut quads = out.chunks_exact_mut(4);
                let mut c = 0;
                for quad in &mut quads {
                    let mut acc = [0_i32; 4];
                    if !taps.fold(input, params.weights, c, 4, |x, k| mac4(&mut acc, x, k, offset)) {
                        return;
                    }
                    for (k, (y, a)) in quad.iter_mut().zip(acc).enumerate() {
                        if let Some(r) = requants.get(c + k) {
                            *y = r.output(a);
                        }
                    }
                    c += 4;
                }
                for y in quads.into_remainder() {
                    let mut acc = 0_i32;
                    if !taps
                        .fold(input, params.weights, c, 1, |x, k| acc += (i32::from(x[0]) + offset) * i32::from(k[0]))
                    {
                        return;
                    }
                    if let Some(r) = requants.get(c) {
                        *y = r.output(acc);
                    }
                    c += 1;
                }
            }
        }
        block_start += block_len;
    }
}

/// One channel block's interior pixels: the kernel's taps as (input, weight) offsets
/// (from the pixel's first tap; weights from channel 0), the accumulator starts with
/// the zero-point term, the prepared requantization.
struct Interior<'a> {
    kernel: &'a [(usize, usize)],
    starts: &'a [i32],
    requants: &'a [Requant],
    /// Widened weights, `taps` entries per quad of channels, or empty.
    wide: &'a [[i32; 4]],
}

/// Kernel taps up to which portable cores widen the weights (1,152 bytes of stack).
#[cfg(not(microcnn_arm_dsp))]
const WIDE_TAPS: usize = 9;

impl Interior<'_> {
    /// Output pixel whose first tap of the block's first channel is `input[base]`,
    /// four channels a pass with the accumulators in registers; `false` when a slice
    /// is shorter than its shape says.
    #[inline(always)]
    fn pixel(&self, input: &[i8], weights: &[i8], base: usize, block_start: usize, out: &mut [i8]) -> bool {
        let mut quads = out.chunks_exact_mut(4);
        let mut c = 0;
        for quad in &mut quads {
            let Some(&[s0, s1, s2, s3]) = self.starts.get(c..c + 4) else {
                return false;
            };
            let mut acc = [s0, s1, s2, s3];
            let taps = self.kernel.len();
            if let Some(wide) = self.wide.get(c / 4 * taps..c / 4 * taps + taps) {
                for (&(x_at, _), k) in self.kernel.iter().zip(wide) {
                    let at = base + x_at + c;
                    let Some(x) = input.get(at..at + 4) else {
                        return false;
                    };
                    for ((a, &xv), &kv) in acc.iter_mut().zip(x).zip(k) {
                        *a += i32::from(xv) * kv;
                    }
                }
            } else {
                for &(x_at, w_at) in self.kernel {
                    let (x_at, w_at) = (base + x_at + c, w_at + block_start + c);
                    let (Some(x), Some(k)) = (input.get(x_at..x_at + 4), weights.get(w_at..w_at + 4)) else {
                        return false;
                    };
                    mac4_raw(&mut acc, x, k);
                }
            }
            for (k, (y, a)) in quad.iter_mut().zip(acc).enumerate() {
                if let Some(r) = self.requants.get(c + k) {
                    *y = r.output(a);
                }
            }
            c += 4;
        }
        for y in quads.into_remainder() {
            let mut acc = self.starts.get(c).copied().unwrap_or(0);
            for &(x_at, w_at) in self.kernel {
                let (Some(&x), Some(&k)) = (input.get(base + x_at + c), weights.get(w_at + block_start + c)) else {
                    return false;
                };
                acc += i32::from(x) * i32::from(k);
            }
            if let Some(r) = self.requants.get(c) {
                *y = r.output(acc);
            }
            c += 1;
        }
        true
    }
}

/// `acc[i] += x[i] · w[i]` for four channels (the zero-point term is in the start).
#[inline(always)]
fn mac4_raw(acc: &mut [i32; 4], x: &[i8], w: &[i8]) {
    #[cfg(microcnn_arm_dsp)]
    {
        let word = |v: &[i8]| u32::from_le_bytes([v[0] as u8, v[1] as u8, v[2] as u8, v[3] as u8]);
        let (xs, ws) = (word(x), word(w));
        let (xe, xo, we, wo) = (sxtb16(xs), sxtb16_ror8(xs), sxtb16(ws), sxtb16_ror8(ws));
        let low = |v: u32| i32::from(v as u16 as i16);
        let high = |v: u32| (v as i32) >> 16;
        acc[0] += low(xe) * low(we);
        acc[1] += low(xo) * low(wo);
        acc[2] += high(xe) * high(we);
        acc[3] += high(xo) * high(wo);
    }
    #[cfg(not(microcnn_arm_dsp))]
    for ((a, &xv), &wv) in acc.iter_mut().zip(x).zip(w) {
        *a += i32::from(xv) * i32::from(wv);
    }
}

/// Kernel taps (`KH·KW`) up to which the optimised kernel runs (a 256-byte table on
/// the stack); larger kernels run the reference kernel.
const MAX_TAPS: usize = 25;

/// One output pixel's valid taps: offsets of the current block's first channel in
/// the input and in the weights.
struct Taps<'a> {
    offsets: &'a [(usize, usize)],
}

impl Taps<'_> {
    /// Calls `mac(input run, weight run)` for the `n` channels from `c` at every
    /// valid tap; `false` when a slice is shorter than its shape says.
    #[inline(always)]
    fn fold<F: FnMut(&[i8], &[i8])>(&self, input: &[i8], weights: &[i8], c: usize, n: usize, mut mac: F) -> bool {
        for &(x_at, w_at) in self.offsets {
            let (x_at, w_at) = (x_at + c, w_at + c);
            let (Some(x), Some(k)) = (input.get(x_at..x_at + n), weights.get(w_at..w_at + n)) else {
                return false;
            };
            mac(x, k);
        }
        true
    }
}

/// `acc[i] += (x[i] + offset) · w[i]` for four channels (`x`, `w` hold four values).
/// Sums stay within `i32`: at most 2^16 taps of 255 × 128 (validation bound).
#[inline(always)]
fn mac4(acc: &mut [i32; 4], x: &[i8], w: &[i8], offset: i32) {
    #[cfg(microcnn_arm_dsp)]
    {
        let word = |v: &[i8]| u32::from_le_bytes([v[0] as u8, v[1] as u8, v[2] as u8, v[3] as u8]);
        let (xs, ws) = (word(x), word(w));
        let lanes = u32::from(offset as u16) * 0x0001_0001;
        // (x0, x2), (x1, x3) with the offset added (in [−255, 255]: no wrap).
        let (xe, xo) = (sadd16(sxtb16(xs), lanes), sadd16(sxtb16_ror8(xs), lanes));
        let (we, wo) = (sxtb16(ws), sxtb16_ror8(ws));
        let low = |v: u32| i32::from(v as u16 as i16);
        let high = |v: u32| (v as i32) >> 16;
        acc[0] += low(xe) * low(we);
        acc[1] += low(xo) * low(wo);
        acc[2] += high(xe) * high(we);
        acc[3] += high(xo) * high(wo);
    }
    #[cfg(not(microcnn_arm_dsp))]
    for ((a, &xv), &wv) in acc.iter_mut().zip(x).zip(w) {
        *a += (i32::from(xv) + offset) * i32::from(wv);
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
