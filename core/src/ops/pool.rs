//! MAX_POOL_2D and AVERAGE_POOL_2D int8 (TFLM's integer `MaxPool` / `AveragePool`).
//!
//! The window is clipped to the input; padded cells are neither compared nor counted.
//! Average: `acc / count` rounded half away from zero, then clamped. Input and output
//! share scale and zero point, so there is no requantization. Layout `[H, W, C]`.

#[cfg(microcnn_arm_dsp)]
use super::arch::arm_dsp::{max_i8x4, min_i8x4, sadd16, sxtb16, sxtb16_ror8};
use super::conv::Window;
use super::valid_taps;
use crate::shape::Shape;

/// Parameters of a pooling layer.
#[derive(Clone, Copy, Debug)]
pub struct PoolParams {
    /// Window geometry (dilation 1).
    pub window: Window,
    /// Lower clamp (fused activation).
    pub act_min: i8,
    /// Upper clamp (fused activation).
    pub act_max: i8,
}

/// Max pooling: for each output pixel, the first in-bounds tap is copied and the others
/// folded in with a lane-wise maximum (four channels per `SSUB8`/`SEL` pair on DSP
/// cores), then the clamp. A window without in-bounds taps gives −128, clamped, as
/// in TFLM. Scratch: none.
pub fn max_pool2d_s8(input: &[i8], input_shape: Shape, output: &mut [i8], output_shape: Shape, params: &PoolParams) {
    let w = &params.window;
    let channels = input_shape.channels;
    let full_range = params.act_min == i8::MIN && params.act_max == i8::MAX;
    for out_y in 0..output_shape.height {
        let origin_y = (out_y * w.stride_h) as isize - w.pad_top as isize;
        let (ky_start, ky_end) = valid_taps(origin_y, w.kernel_h, 1, input_shape.height);
        for out_x in 0..output_shape.width {
            let origin_x = (out_x * w.stride_w) as isize - w.pad_left as isize;
            let (kx_start, kx_end) = valid_taps(origin_x, w.kernel_w, 1, input_shape.width);
            let out_base = (out_y * output_shape.width + out_x) * channels;
            let Some(out) = output.get_mut(out_base..out_base + channels) else {
                return;
            };
            if ky_start == ky_end || kx_start == kx_end {
                out.fill(i8::MIN.clamp(params.act_min, params.act_max.max(params.act_min)));
                continue;
            }
            let mut first = true;
            for ky in ky_start..ky_end {
                let row = (origin_y + ky as isize) as usize * input_shape.width;
                for kx in kx_start..kx_end {
                    let base = (row + (origin_x + kx as isize) as usize) * channels;
                    let Some(x) = input.get(base..base + channels) else {
                        return;
                    };
                    if first {
                        out.copy_from_slice(x);
                        first = false;
                    } else {
                        max_into(out, x);
                    }
                }
            }
            if !full_range {
                clamp_into(out, params.act_min, params.act_max);
            }
        }
    }
}

/// `out[i] = max(out[i], x[i])`.
#[inline(always)]
fn max_into(out: &mut [i8], x: &[i8]) {
    #[cfg(microcnn_arm_dsp)]
    {
        let mut outs = out.chunks_exact_mut(4);
        let mut xs = x.chunks_exact(4);
        for (o, v) in (&mut outs).zip(&mut xs) {
            let a = u32::from_le_bytes([o[0] as u8, o[1] as u8, o[2] as u8, o[3] as u8]);
            let b = u32::from_le_bytes([v[0] as u8, v[1] as u8, v[2] as u8, v[3] as u8]);
            let m = max_i8x4(a, b).to_le_bytes();
            o.copy_from_slice(&[m[0] as i8, m[1] as i8, m[2] as i8, m[3] as i8]);
        }
        for (o, &v) in outs.into_remainder().iter_mut().zip(xs.remainder()) {
            *o = (*o).max(v);
        }
    }
    #[cfg(not(microcnn_arm_dsp))]
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (*o).max(v);
    }
}

/// `out[i] = clamp(out[i], min, max)` (`max` then `min`, as the reference's clamp for
/// `min ≤ max`).
#[inline(always)]
fn clamp_into(out: &mut [i8], min: i8, max: i8) {
    #[cfg(microcnn_arm_dsp)]
    {
        let (low, high) = (u32::from_le_bytes([min as u8; 4]), u32::from_le_bytes([max as u8; 4]));
        let mut outs = out.chunks_exact_mut(4);
        for o in &mut outs {
            let a = u32::from_le_bytes([o[0] as u8, o[1] as u8, o[2] as u8, o[3] as u8]);
            let m = min_i8x4(max_i8x4(a, low), high).to_le_bytes();
            o.copy_from_slice(&[m[0] as i8, m[1] as i8, m[2] as i8, m[3] as i8]);
        }
        for o in outs.into_remainder() {
            *o = (*o).max(min).min(max);
        }
    }
    #[cfg(not(microcnn_arm_dsp))]
    for o in out.iter_mut() {
        *o = (*o).max(min).min(max);
    }
}

/// Window taps up to which [`avg_pool2d_s8`] runs its own loop (the DSP sums are `i16`
/// lanes); larger windows run the reference kernel.
const MAX_POOL_TAPS: usize = 64;

/// Average pooling: four channels a pass, their sums in registers (on DSP cores two
/// `i16` lanes per register, widened with `SXTB16` and summed with `SADD16`), then
/// the rounded division and the clamp per channel. Scratch: none.
pub fn avg_pool2d_s8(input: &[i8], input_shape: Shape, output: &mut [i8], output_shape: Shape, params: &PoolParams) {
    let w = &params.window;
    if w.kernel_h * w.kernel_w > MAX_POOL_TAPS {
        super::reference::avg_pool2d_s8(input, input_shape, output, output_shape, params);
        return;
    }
    let channels = input_shape.channels;
    let (act_min, act_max) = (i32::from(params.act_min), i32::from(params.act_max));
    let finish = |sum: i32, count: i32| {
        let value = if count == 0 { 0 } else { rounded_divide(sum, count) };
        value.max(act_min).min(act_max) as i8
    };
    // Interior pixels (the whole window inside the input): one offset table, one
    // divisor by multiplication.
    let taps = w.kernel_h * w.kernel_w;
    let mut window = [0_usize; MAX_POOL_TAPS];
    for (t, at) in window.iter_mut().take(taps).enumerate() {
        *at = ((t / w.kernel_w) * input_shape.width + t % w.kernel_w) * channels;
    }
    let window = &window[..taps];
    let divider = Divider::new(taps as u32);
    let full = |sum: i32| divider.rounded(sum).max(act_min).min(act_max) as i8;
    for out_y in 0..output_shape.height {
        let origin_y = (out_y * w.stride_h) as isize - w.pad_top as isize;
        let (ky_start, ky_end) = valid_taps(origin_y, w.kernel_h, 1, input_shape.height);
        for out_x in 0..output_shape.width {
            let origin_x = (out_x * w.stride_w) as isize - w.pad_left as isize;
            let (kx_start, kx_end) = valid_taps(origin_x, w.kernel_w, 1, input_shape.width);
            let out_base = (out_y * output_shape.width + out_x) * channels;
            let Some(out) = output.get_mut(out_base..out_base + channels) else {
                return;
            };
            if ky_end - ky_start == w.kernel_h && kx_end - kx_start == w.kernel_w {
                let base = (origin_y as usize * input_shape.width + origin_x as usize) * channels;
                let mut quads = out.chunks_exact_mut(4);
                let mut c = 0;
                for quad in &mut quads {
                    let Some(sums) = sums4(input, window.iter().map(|&t| base + c + t)) else {
                        return;
                    };
                    for (y, s) in quad.iter_mut().zip(sums) {
                        *y = full(s);
                    }
                    c += 4;
                }
                for y in quads.into_remainder() {
                    let mut sum = 0_i32;
                    for &at in window {
                        let Some(&v) = input.get(base + at + c) else {
                            return;
                        };
                        sum += i32::from(v);
                    }
                    *y = full(sum);
                    c += 1;
                }
                continue;
            }
            let taps = PixelTaps {
                rows: ky_start..ky_end,
                cols: kx_start..kx_end,
                origin_y,
                origin_x,
                width: input_shape.width,
                channels,
            };
            let count = (ky_end - ky_start) * (kx_end - kx_start);
            let count = count as i32;
            let mut quads = out.chunks_exact_mut(4);
            let mut c = 0;
            for quad in &mut quads {
                let Some(sums) = sums4(input, taps.offsets().map(|at| at + c)) else {
                    return;
                };
                for (y, s) in quad.iter_mut().zip(sums) {
                    *y = finish(s, count);
                }
                c += 4;
            }
            for y in quads.into_remainder() {
                let mut sum = 0_i32;
                for at in taps.offsets() {
                    let Some(&v) = input.get(at + c) else {
                        return;
                    };
                    sum += i32::from(v);
                }
                *y = finish(sum, count);
                c += 1;
            }
        }
    }
}

/// [`rounded_divide`] by a fixed count `n` in `1..=64` for `|acc| ≤ 64·128`, by a
/// multiplication: `⌊a / n⌋ = ⌊a·m / 2^s⌋` for `0 ≤ a < 2^14`, `s = 14 + ⌈log2 n⌉`,
/// `m = ⌈2^s / n⌉` (Granlund and Montgomery, 1994); `a·m < 2^29`.
#[derive(Clone, Copy, Debug)]
struct Divider {
    half: u32,
    multiplier: u32,
    shift: u32,
}

impl Divider {
    fn new(n: u32) -> Self {
        let n = n.clamp(1, MAX_POOL_TAPS as u32);
        let shift = 14 + (32 - (n - 1).leading_zeros());
        Self { half: n / 2, multiplier: (1_u32 << shift).div_ceil(n), shift }
    }

    /// `rounded_divide(acc, n)`: `(|acc| + n/2) / n` with `acc`'s sign.
    #[inline(always)]
    fn rounded(&self, acc: i32) -> i32 {
        let q = ((acc.unsigned_abs() + self.half) * self.multiplier) >> self.shift;
        if acc > 0 {
            q as i32
        } else {
            (q as i32).wrapping_neg()
        }
    }
}

/// Sums of four consecutive channels over the taps starting at `starts` (at most
/// [`MAX_POOL_TAPS`]); `None` when the input is shorter than its shape says.
#[inline(always)]
fn sums4(input: &[i8], starts: impl Iterator<Item = usize>) -> Option<[i32; 4]> {
    #[cfg(microcnn_arm_dsp)]
    {
        // |sum| ≤ 64 · 128 = 2^13 fits an i16 lane.
        let (mut even, mut odd) = (0_u32, 0_u32);
        for at in starts {
            let x = input.get(at..at + 4)?;
            let word = u32::from_le_bytes([x[0] as u8, x[1] as u8, x[2] as u8, x[3] as u8]);
            even = sadd16(even, sxtb16(word));
            odd = sadd16(odd, sxtb16_ror8(word));
        }
        let low = |v: u32| i32::from(v as u16 as i16);
        let high = |v: u32| (v as i32) >> 16;
        Some([low(even), low(odd), high(even), high(odd)])
    }
    #[cfg(not(microcnn_arm_dsp))]
    {
        let mut sums = [0_i32; 4];
        for at in starts {
            let x = input.get(at..at + 4)?;
            for (s, &v) in sums.iter_mut().zip(x) {
                *s += i32::from(v);
            }
        }
        Some(sums)
    }
}

/// One output pixel's valid window: kernel rows and columns, origin, input geometry.
struct PixelTaps {
    rows: core::ops::Range<usize>,
    cols: core::ops::Range<usize>,
    origin_y: isize,
    origin_x: isize,
    width: usize,
    channels: usize,
}

impl PixelTaps {
    /// Input offsets (of channel 0) of the valid taps.
    #[inline(always)]
    fn offsets(&self) -> impl Iterator<Item = usize> + '_ {
        self.rows.clone().flat_map(move |ky| {
            let row = (self.origin_y + ky as isize) as usize * self.width;
            self.cols.clone().map(move |kx| (row + (self.origin_x + kx as isize) as usize) * self.channels)
        })
    }
}

/// `acc / count` rounded half away from zero (C's truncating division after adding
/// or subtracting half the divisor), as TFLM's pooling and mean kernels do.
#[inline]
pub(crate) fn rounded_divide(acc: i32, count: i32) -> i32 {
    if acc > 0 {
        (acc + count / 2) / count
    } else {
        (acc - count / 2) / count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(k: usize, s: usize, pad: usize) -> PoolParams {
        PoolParams {
            window: Window {
                kernel_h: k,
                kernel_w: k,
                stride_h: s,
                stride_w: s,
                dilation_h: 1,
                dilation_w: 1,
                pad_top: pad,
                pad_left: pad,
            },
            act_min: -128,
            act_max: 127,
        }
    }

    #[test]
    fn average_excludes_padding_and_rounds_away_from_zero() {
        // 2×2 input, 3×3 window SAME stride 1: every window sees all 4 cells.
        let input: [i8; 4] = [1, 2, 3, 5];
        let mut out = [0_i8; 4];
        avg_pool2d_s8(&input, Shape::new(2, 2, 1), &mut out, Shape::new(2, 2, 1), &params(3, 1, 1));
        assert_eq!(out, [3; 4]); // 11 / 4 = 2.75 → 3
        let input: [i8; 4] = [-1, -2, -3, -4];
        avg_pool2d_s8(&input, Shape::new(2, 2, 1), &mut out, Shape::new(2, 2, 1), &params(3, 1, 1));
        assert_eq!(out, [-3; 4]); // −10 / 4 = −2.5 → −3
    }

    #[test]
    fn max_pool_stride_larger_than_window_and_saturation() {
        let input: [i8; 9] = [-128, 1, 2, 3, 127, 5, 6, 7, 8];
        let mut out = [0_i8; 4];
        max_pool2d_s8(&input, Shape::new(3, 3, 1), &mut out, Shape::new(2, 2, 1), &params(1, 2, 0));
        assert_eq!(out, [-128, 2, 6, 8]);
        let mut out = [0_i8; 1];
        max_pool2d_s8(&input, Shape::new(3, 3, 1), &mut out, Shape::new(1, 1, 1), &params(3, 1, 0));
        assert_eq!(out, [127]);
    }

    #[test]
    fn one_by_one_input() {
        let input: [i8; 3] = [-7, 0, 9];
        let mut out = [0_i8; 3];
        avg_pool2d_s8(&input, Shape::new(1, 1, 3), &mut out, Shape::new(1, 1, 3), &params(2, 2, 0));
        assert_eq!(out, input);
        max_pool2d_s8(&input, Shape::new(1, 1, 3), &mut out, Shape::new(1, 1, 3), &params(2, 2, 0));
        assert_eq!(out, input);
    }

    #[test]
    fn divider_is_rounded_divide() {
        for n in 1..=64 {
            let d = Divider::new(n as u32);
            for acc in -(64 * 128)..=64 * 128 {
                assert_eq!(d.rounded(acc), rounded_divide(acc, n), "{acc} / {n}");
            }
        }
    }

    #[test]
    fn rounding() {
        assert_eq!(rounded_divide(5, 2), 3);
        assert_eq!(rounded_divide(-5, 2), -3);
        assert_eq!(rounded_divide(0, 7), 0);
        assert_eq!(rounded_divide(4, 3), 1);
    }
}
