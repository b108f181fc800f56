//! DEPTHWISE_CONV_2D with a 3×3 kernel and depth multiplier 1 (any stride, dilation
//! and padding): the kernel of DSP cores.
//!
//! Four channels ("a group") per pass. The filter of a group is prepared once per
//! call into a table of 34 words (see [`GROUP_WORDS`]): its nine taps as `i16` lane
//! pairs (taps 0–1, 2–3, 4–5, 6–7 of one channel per word, for `SMLAD`; tap 8 of
//! channels 0 and 2, 1 and 3 per word), the accumulator start (bias with the input
//! zero-point term `−zp_in·Σw` folded in, valid when all nine taps are read), and the
//! requantization constants. Interior pixels (all nine taps inside the input) read
//! the input in place; a border pixel, or the last group when the channels are not a
//! multiple of four, reads a 3×3 patch copied to the stack with the padded taps (and
//! missing channels) set to the input zero point, which adds nothing.
//!
//! Requantization per output: [`FastRequant`](super::FastRequant), bit for bit
//! TFLM's `MultiplyByQuantizedMultiplier` with its double rounding, proven per channel
//! at preparation (or the layer runs the generic kernel). Its factor
//! `f = 2^(left_shift + 1)` is folded into the weights and the accumulator start, so
//! the accumulator holds `f·x` and one `SMMULR` and four more instructions give the
//! output (the table holds the multiplier, the rounding constant and the shift).
//!
//! Before this kernel, DSP cores try the channel-plane kernel (`planar`, a separate
//! call so that the two kernels' stack buffers are never live together: stride 1 SAME
//! or stride 2 with left padding 0, no dilation, channels and widths multiples of 4,
//! right shifts 1–20): each group of four channels is widened once into four
//! zero-point-padded `i16` bands on the stack (6 KiB; larger planes in bands of output
//! rows; at stride 2 the four interleaved in one), two horizontally adjacent pixels a
//! word, and each channel's output plane is
//! computed from its band, four outputs a pass, the requantization in four
//! instructions (see `plane_args`).

use super::conv::ConvParams;
use super::{FastRequant, Requant};
use crate::shape::Shape;

/// Words of one group's table: 4 accumulator starts, 16 tap-pair words, 2 words of
/// tap 8, 4 × (multiplier, rounding constant, shift).
pub(crate) const GROUP_WORDS: usize = 34;

/// Groups prepared at a time (32 channels; a 1,088-byte table on the stack).
const BLOCK_GROUPS: usize = 8;

/// Geometry of one kernel call: `pixels` output pixels of `groups` groups, the first
/// tap of the first group at input offset 0 (of the slice passed), kernel columns
/// `col` bytes and rows `row` bytes apart, `in_step` / `out_step` bytes from one
/// pixel to the next.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Run {
    pub col: usize,
    pub row: usize,
    pub groups: usize,
    pub pixels: usize,
    pub in_step: usize,
    pub out_step: usize,
}

impl Run {
    /// Bytes of input the call reads from its start, and of output it writes; `None`
    /// on overflow or an empty call.
    pub(crate) fn extent(&self) -> Option<(usize, usize)> {
        if self.groups == 0 || self.pixels == 0 {
            return None;
        }
        let last = (self.pixels - 1).checked_mul(self.in_step)?;
        let reach = last
            .checked_add(4 * self.groups)?
            .checked_add(self.row.checked_mul(2)?)?
            .checked_add(self.col.checked_mul(2)?)?;
        let out = (self.pixels - 1).checked_mul(self.out_step)?.checked_add(4 * self.groups)?;
        Some((reach, out))
    }
}

/// The word of two `i16` lanes `(low, high)`.
fn lanes(low: i32, high: i32) -> u32 {
    u32::from(low as u16) | (u32::from(high as u16) << 16)
}

/// Prepares the table of channels `first..first + 4·groups` (channels past the layer's
/// give 0); `false` when a channel's requantization has no proven fast form.
fn prepare(params: &ConvParams<'_>, channels: usize, input_zero_point: i32, first: usize, table: &mut [u32]) -> bool {
    let quant = &params.quant;
    for (g, words) in table.chunks_exact_mut(GROUP_WORDS).enumerate() {
        // Tap 8's words are or-ed into; every other word is written below.
        words[20] = 0;
        words[21] = 0;
        // The group's nine taps, one word each (byte k: channel k of the group), read
        // a word at a time when the group's four channels are the layer's.
        let c0 = first + 4 * g;
        let mut taps = [[0_i8; 4]; 9];
        for (t, tap) in taps.iter_mut().enumerate() {
            let at = t * channels + c0;
            if c0 + 4 <= channels {
                match params.weights.get(at..at + 4) {
                    Some(src) => tap.copy_from_slice(src),
                    None => return false,
                }
            } else {
                for (k, v) in tap.iter_mut().enumerate().take(channels.saturating_sub(c0)) {
                    match params.weights.get(at + k) {
                        Some(&x) => *v = x,
                        None => return false,
                    }
                }
            }
        }
        for k in 0..4 {
            let c = first + 4 * g + k;
            if c >= channels {
                // Zero weights and start, multiplier 0: output 0, discarded.
                words[k] = 0;
                for j in 0..4 {
                    words[4 + 4 * j + k] = 0;
                }
                words[22 + 3 * k..25 + 3 * k].copy_from_slice(&[0, 0, 1]);
                continue;
            }
            let w: [i32; 9] = core::array::from_fn(|t| i32::from(taps[t][k]));
            let bias = quant.bias.as_ref().map_or(0, |b| b.get(c));
            let Some(r) = Requant::from_parts(
                bias,
                quant.multipliers.get(c),
                quant.shifts.get(c),
                quant.output_zero_point,
                (quant.act_min, quant.act_max),
            ) else {
                return false;
            };
            // |Σ w·(x − zp)| ≤ 255·Σ|w|: the bound from this channel's own weights.
            let sum_abs: i32 = w.iter().map(|&v| v.abs()).sum();
            let Some(fast) = FastRequant::new(&r, 255 * i64::from(sum_abs)) else {
                return false;
            };
            // Each f·w must fit an i16 lane: always for f ≤ 256 (|w| ≤ 128).
            let f = fast.scale();
            if f > 256 && w.iter().any(|&v| !(-32768..=32767).contains(&(i64::from(v) * i64::from(f)))) {
                return false;
            }
            // 32-bit arithmetic (this runs per channel): the start f·(bias − zp·Σw) is
            // f·x for an all-zero input, inside the bound FastRequant proved, so its
            // wrapping computation is exact; so are the lanes.
            let sum: i32 = w.iter().sum();
            words[k] = bias.wrapping_sub(input_zero_point.wrapping_mul(sum)).wrapping_mul(f) as u32;
            let scaled = |t: usize| w[t].wrapping_mul(f);
            for j in 0..4 {
                words[4 + 4 * j + k] = lanes(scaled(2 * j), scaled(2 * j + 1));
            }
            // Tap 8: channels (0, 2) in word 20, (1, 3) in word 21.
            let (word, half) = (20 + k % 2, k / 2);
            words[word] |= lanes(scaled(8), 0) << (16 * half);
            let [multiplier, round, down] = fast.tail();
            words[22 + 3 * k] = multiplier as u32;
            words[22 + 3 * k + 1] = round as u32;
            words[22 + 3 * k + 2] = down as u32;
        }
    }
    true
}

/// `table` with kernel column `column` (0 or 2) removed from every group: its three
/// taps' weights set to 0 and their zero-point term taken out of the accumulator start
/// (the start holds `f·(bias − zp·Σw)`, the lanes `f·w`), so a pixel whose only outside
/// column is that one reads anything there and gets the padded result. The bound of
/// the fast requantization holds: fewer taps, a smaller sum.
fn edge_table(table: &[u32], edge: &mut [u32], column: usize, input_zero_point: i32) {
    for (src, dst) in table.chunks_exact(GROUP_WORDS).zip(edge.chunks_exact_mut(GROUP_WORDS)) {
        dst.copy_from_slice(src);
        for k in 0..4 {
            let mut removed = 0_i32;
            for t in [column, column + 3, column + 6] {
                // Tap 8: channels (0, 2) in word 20, (1, 3) in word 21; others two taps a word.
                let (word, half) = if t == 8 { (20 + k % 2, k / 2) } else { (4 + 4 * (t / 2) + k, t % 2) };
                let shift = 16 * half as u32;
                removed = removed.wrapping_add(i32::from((dst[word] >> shift) as u16 as i16));
                dst[word] &= !(0xFFFF << shift);
            }
            dst[k] = (dst[k] as i32).wrapping_add(input_zero_point.wrapping_mul(removed)) as u32;
        }
    }
}

/// Runs a 3×3, depth-multiplier-1 depthwise convolution; `false` (nothing useful
/// written) when the layer is not of that kind or a channel's requantization has no
/// proven fast form, for the caller to run another kernel.
#[inline(never)]
pub(crate) fn depthwise3x3_s8(
    input: &[i8],
    input_shape: Shape,
    input_zero_point: i32,
    output: &mut [i8],
    output_shape: Shape,
    params: &ConvParams<'_>,
) -> bool {
    let w = &params.window;
    let channels = input_shape.channels;
    if w.kernel_h != 3
        || w.kernel_w != 3
        || params.depth_multiplier != 1
        || output_shape.channels != channels
        || channels == 0
        || w.stride_h == 0
        || w.stride_w == 0
        || w.dilation_h == 0
        || w.dilation_w == 0
        || !(-128..=127).contains(&input_zero_point)
    {
        return false;
    }
    let zp_byte = input_zero_point as i8;
    let act = (params.quant.act_min, params.quant.act_max);
    let (height, width) = (input_shape.height, input_shape.width);
    let (dh, dw) = (w.dilation_h, w.dilation_w);
    let col = dw * channels;
    let row = dh * width * channels;
    // Interior columns: origin_x ≥ 0 and origin_x + 2·dw < width.
    let x_lo = w.pad_left.div_ceil(w.stride_w).min(output_shape.width);
    let x_hi = match (width + w.pad_left).checked_sub(2 * dw + 1) {
        Some(n) => (n / w.stride_w + 1).min(output_shape.width),
        None => 0,
    }
    .max(x_lo);
    let mut table = [0_u32; GROUP_WORDS * BLOCK_GROUPS];
    // The table with kernel column 0 (left) or 2 (right) removed, for border pixels of
    // interior rows with only that column outside the input.
    let mut edges = [[0_u32; GROUP_WORDS * BLOCK_GROUPS]; 2];
    // Scratch, every byte written before it is read: one pixel's 3×3 patch, or three
    // padded input rows of a border row.
    let mut patch = [0_i8; 9 * 4 * BLOCK_GROUPS];
    let mut strip = [0_i8; STRIP_BYTES];
    let zp_word = [zp_byte; 4];
    let strip_w = (output_shape.width.max(1) - 1) * w.stride_w + 2 * dw + 1;
    // Interior rows: origin_y ≥ 0 and origin_y + 2·dh < height.
    let y_lo = w.pad_top.div_ceil(w.stride_h).min(output_shape.height);
    let y_hi = match (height + w.pad_top).checked_sub(2 * dh + 1) {
        Some(n) => (n / w.stride_h + 1).min(output_shape.height),
        None => 0,
    }
    .max(y_lo);
    let mut block_start = 0;
    while block_start < channels {
        let block_len = (4 * BLOCK_GROUPS).min(channels - block_start);
        let groups = block_len.div_ceil(4);
        let full = block_len / 4;
        let table = &mut table[..GROUP_WORDS * groups];
        if !prepare(params, channels, input_zero_point, block_start, table) {
            return false;
        }
        // Only the sides that have border columns (a layer may pad one side only).
        let [left_edge, right_edge] = &mut edges;
        if x_lo > 0 {
            edge_table(&table[..GROUP_WORDS * full], &mut left_edge[..GROUP_WORDS * full], 0, input_zero_point);
        }
        if x_hi < output_shape.width {
            edge_table(&table[..GROUP_WORDS * full], &mut right_edge[..GROUP_WORDS * full], 2, input_zero_point);
        }
        // Border columns with one kernel column outside, over the interior rows: one
        // call per column (its pixels one input row stride and one output row apart)
        // with the edge table, recorded as (column, first row, end row); the rows a
        // call cannot cover (the input ends too soon) run below, one pixel at a time.
        let mut batched = [(0_usize, 0_usize, 0_usize); 4];
        let mut batches = 0;
        if full == groups && y_lo < y_hi {
            let (reach, width) = (dw as isize, width as isize);
            for out_x in (0..x_lo).chain(x_hi..output_shape.width) {
                if batches == batched.len() {
                    break;
                }
                let origin_x = (out_x * w.stride_w) as isize - w.pad_left as isize;
                let left = origin_x < 0 && origin_x + reach >= 0 && origin_x + 2 * reach < width;
                let right = origin_x >= 0 && origin_x + reach < width && origin_x + 2 * reach >= width;
                if !(left || right) {
                    continue;
                }
                let start_of = |y: usize| {
                    ((y * w.stride_h) as isize - w.pad_top as isize) * width * channels as isize
                        + origin_x * channels as isize
                        + block_start as isize
                };
                // Only the first interior row can start before the input (origin_y = 0).
                let first_y = if start_of(y_lo) < 0 { y_lo + 1 } else { y_lo };
                if first_y >= y_hi || start_of(first_y) < 0 {
                    continue;
                }
                let start = start_of(first_y) as usize;
                let mut run = Run {
                    col,
                    row,
                    groups: full,
                    pixels: y_hi - first_y,
                    in_step: w.stride_h * width as usize * channels,
                    out_step: output_shape.width * channels,
                };
                let available = input.len().saturating_sub(start);
                while run.pixels > 0 && run.extent().is_none_or(|(reach, _)| reach > available) {
                    run.pixels -= 1;
                }
                if run.pixels == 0 {
                    continue;
                }
                let at = first_y * output_shape.width * channels + block_start + out_x * channels;
                let edge = &edges[usize::from(right)][..GROUP_WORDS * full];
                if let (Some(x), Some(y)) = (input.get(start..), output.get_mut(at..)) {
                    if groups_s8(x, y, edge, &run, act) {
                        batched[batches] = (out_x, first_y, first_y + run.pixels);
                        batches += 1;
                    }
                }
            }
        }
        let batched = &batched[..batches];
        for out_y in 0..output_shape.height {
            let origin_y = (out_y * w.stride_h) as isize - w.pad_top as isize;
            let rows_inside = origin_y >= 0 && origin_y as usize + 2 * dh < height;
            let out_row = out_y * output_shape.width * channels + block_start;
            let n = 4 * full;
            let strip_len = 3 * strip_w * n;
            let (first_x, end_x) = if rows_inside { (x_lo, x_hi) } else { (0, 0) };
            if rows_inside && full > 0 && first_x < end_x {
                // Interior pixels read the input in place.
                let origin_x = first_x * w.stride_w - w.pad_left;
                let start = (origin_y as usize * width + origin_x) * channels + block_start;
                let run = Run {
                    col,
                    row,
                    groups: full,
                    pixels: end_x - first_x,
                    in_step: w.stride_w * channels,
                    out_step: channels,
                };
                let (Some(x), Some(y)) = (input.get(start..), output.get_mut(out_row + first_x * channels..)) else {
                    return true;
                };
                if !groups_s8(x, y, &table[..GROUP_WORDS * full], &run, act) {
                    return true;
                }
            }
            let strip_row = !rows_inside && full > 0 && strip_len <= STRIP_BYTES;
            if strip_row {
                // A border row: its three input rows, padded with the zero point.
                let strip = &mut strip[..strip_len];
                for (r, cells) in strip.chunks_exact_mut(strip_w * n).enumerate() {
                    let in_y = origin_y + (r * dh) as isize;
                    let row_inside = in_y >= 0 && (in_y as usize) < height;
                    if row_inside && n == channels {
                        // The block is every channel: the row's pixels inside the input
                        // are contiguous there, one copy between the padding.
                        let lo = w.pad_left.min(strip_w);
                        let hi = (w.pad_left + width).min(strip_w).max(lo);
                        let at = in_y as usize * width * channels;
                        let Some(src) = input.get(at..at + (hi - lo) * n) else {
                            return true;
                        };
                        let (pad, rest) = cells.split_at_mut(lo * n);
                        let (inside, tail) = rest.split_at_mut((hi - lo) * n);
                        fill_words(pad, zp_word);
                        copy_words(inside, src);
                        fill_words(tail, zp_word);
                        continue;
                    }
                    for (sx, cell) in cells.chunks_exact_mut(n).enumerate() {
                        let in_x = sx as isize - w.pad_left as isize;
                        if row_inside && in_x >= 0 && (in_x as usize) < width {
                            let at = (in_y as usize * width + in_x as usize) * channels + block_start;
                            let Some(src) = input.get(at..at + n) else {
                                return true;
                            };
                            copy_words(cell, src);
                        } else {
                            fill_words(cell, zp_word);
                        }
                    }
                }
                let run = Run {
                    col: dw * n,
                    row: strip_w * n,
                    groups: full,
                    pixels: output_shape.width,
                    in_step: w.stride_w * n,
                    out_step: channels,
                };
                let Some(y) = output.get_mut(out_row..) else {
                    return true;
                };
                if !groups_s8(strip, y, &table[..GROUP_WORDS * full], &run, act) {
                    return true;
                }
            }
            // The pixels left: all of them for the last group when the channels are not a
            // multiple of four, else those the calls above did not cover.
            let (skip_lo, skip_hi) = match (full == groups, strip_row) {
                (false, _) => (0, 0),
                (true, true) => (0, output_shape.width),
                (true, false) => (first_x, end_x),
            };
            for out_x in (0..skip_lo).chain(skip_hi..output_shape.width) {
                let done = (first_x..end_x).contains(&out_x) || strip_row;
                let first_group = if done { full } else { 0 };
                if first_group == groups || batched.iter().any(|&(x, a, b)| x == out_x && (a..b).contains(&out_y)) {
                    continue;
                }
                let origin_x = (out_x * w.stride_w) as isize - w.pad_left as isize;
                if first_group == 0 && full == groups && rows_inside {
                    // One kernel column outside: the input in place (the outside column
                    // reads neighbouring pixels, against zero weights) with its edge table.
                    let (reach, width) = (dw as isize, width as isize);
                    let left = origin_x < 0 && origin_x + reach >= 0 && origin_x + 2 * reach < width;
                    let right = origin_x >= 0 && origin_x + reach < width && origin_x + 2 * reach >= width;
                    let start = (origin_y * width + origin_x) * channels as isize + block_start as isize;
                    let at = out_row + out_x * channels;
                    if (left || right) && start >= 0 {
                        let edge = &edges[usize::from(right)][..GROUP_WORDS * full];
                        let run = Run { col, row, groups: full, pixels: 1, in_step: 0, out_step: 0 };
                        if let (Some(x), Some(y)) = (input.get(start as usize..), output.get_mut(at..at + 4 * full)) {
                            if groups_s8(x, y, edge, &run, act) {
                                continue;
                            }
                        }
                    }
                }
                let first = block_start + 4 * first_group;
                let n = 4 * (groups - first_group);
                // The patch: tap t's n channels at t·n, the padding at the zero point.
                let patch = &mut patch[..9 * n];
                let copy = n.min(channels - first);
                for (t, tap) in patch.chunks_exact_mut(n).enumerate() {
                    let in_y = origin_y + ((t / 3) * dh) as isize;
                    let in_x = origin_x + ((t % 3) * dw) as isize;
                    if in_y < 0 || in_x < 0 || in_y as usize >= height || in_x as usize >= width {
                        fill_words(tap, zp_word);
                        continue;
                    }
                    let at = (in_y as usize * width + in_x as usize) * channels + first;
                    let Some(src) = input.get(at..at + copy) else {
                        return true;
                    };
                    if copy == n {
                        copy_words(tap, src);
                    } else {
                        tap[..copy].copy_from_slice(src);
                        tap[copy..].fill(zp_byte);
                    }
                }
                let run = Run { col: n, row: 3 * n, groups: groups - first_group, pixels: 1, in_step: 0, out_step: 0 };
                let at = out_row + out_x * channels + 4 * first_group;
                let table = &table[GROUP_WORDS * first_group..];
                if copy == n {
                    let Some(y) = output.get_mut(at..at + n) else {
                        return true;
                    };
                    if !groups_s8(patch, y, table, &run, act) {
                        return true;
                    }
                } else {
                    let mut out = [0_i8; 4 * BLOCK_GROUPS];
                    if !groups_s8(patch, &mut out[..n], table, &run, act) {
                        return true;
                    }
                    let Some(y) = output.get_mut(at..at + copy) else {
                        return true;
                    };
                    y.copy_from_slice(&out[..copy]);
                }
            }
        }
        block_start += block_len;
    }
    true
}

/// Bytes of the padded rows of a border row, on the stack (wider rows run patches).
const STRIP_BYTES: usize = 2048;

/// `dst = src` four bytes at a time (both as long, a multiple of 4).
#[cfg(microcnn_arm_dsp)]
#[inline(always)]
fn copy_words(dst: &mut [i8], src: &[i8]) {
    super::arch::arm_dsp::copy_words(dst, src);
}

/// `dst = src` four bytes at a time (both as long, a multiple of 4).
#[cfg(not(microcnn_arm_dsp))]
#[inline(always)]
fn copy_words(dst: &mut [i8], src: &[i8]) {
    for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
        d.copy_from_slice(s);
    }
}

/// Every byte of `dst` (a multiple of 4 long) set to `word`'s.
#[inline(always)]
fn fill_words(dst: &mut [i8], word: [i8; 4]) {
    for d in dst.chunks_exact_mut(4) {
        d.copy_from_slice(&word);
    }
}

/// The kernel: `run.pixels` pixels of `run.groups` groups; `false` when a slice is
/// shorter than the run needs.
#[cfg(microcnn_arm_dsp)]
#[inline(always)]
fn groups_s8(input: &[i8], output: &mut [i8], table: &[u32], run: &Run, act: (i8, i8)) -> bool {
    super::arch::arm_dsp::depthwise3x3_groups(input, output, table, run, act)
}

/// The kernel, in portable Rust with the DSP code's arithmetic (lane pairs, `SMMULR`,
/// the rounding constant), for testing the tables and the driver on the host.
#[cfg(not(microcnn_arm_dsp))]
pub(crate) fn groups_s8(input: &[i8], output: &mut [i8], table: &[u32], run: &Run, act: (i8, i8)) -> bool {
    let Some((reach, out_len)) = run.extent() else {
        return false;
    };
    if reach > input.len() || out_len > output.len() || table.len() < GROUP_WORDS * run.groups {
        return false;
    }
    let low = |v: u32| i32::from(v as u16 as i16);
    let high = |v: u32| (v as i32) >> 16;
    for p in 0..run.pixels {
        for (g, words) in table.chunks_exact(GROUP_WORDS).take(run.groups).enumerate() {
            let base = p * run.in_step + 4 * g;
            let tap = |t: usize, k: usize| i32::from(input[base + (t / 3) * run.row + (t % 3) * run.col + k]);
            for k in 0..4 {
                let mut acc = words[k] as i32;
                for j in 0..4 {
                    let wj = words[4 + 4 * j + k];
                    acc = acc.wrapping_add(tap(2 * j, k) * low(wj)).wrapping_add(tap(2 * j + 1, k) * high(wj));
                }
                let w8 = words[20 + k % 2];
                acc = acc.wrapping_add(tap(8, k) * if k < 2 { low(w8) } else { high(w8) });
                let (m, r, s) = (words[22 + 3 * k] as i32, words[23 + 3 * k] as i32, words[24 + 3 * k]);
                let n = super::fast_requant_scaled(acc, m, r, s);
                let v = n.clamp(-128, 127).max(i32::from(act.0)).min(i32::from(act.1));
                output[p * run.out_step + 4 * g + k] = v as i8;
            }
        }
    }
    true
}

/// The channel-plane kernel: stride 1 or 2, no dilation, channels, input and output
/// widths multiples of 4, every channel's requantization in the four-instruction form
/// (see [`plane_args`]); planes whose four bands exceed the band buffer
/// (`arm_dsp::BAND_WORDS`, 6 KiB of stack) run in bands of output rows, each band's
/// input rows widened (the two or one rows shared with the next band again).
/// Per group of four channels the input plane is widened once into four bands (`i16`,
/// two horizontally adjacent pixels a word, padded with the input zero point, so the
/// padded taps add nothing after the zero-point term of the start; at stride 2 the four
/// bands interleaved by blocks of two words, so that one `STM` stores a block of all
/// four channels, see `arm_dsp::widen_interleaved`); then each channel's
/// output plane is computed from its band, four outputs of a row per pass with the
/// three kernel rows' filter as two words each. `false` (output not all written) when
/// the layer is not of that kind.
#[cfg(microcnn_arm_dsp)]
#[inline(never)]
pub(crate) fn planar(
    input: &[i8],
    input_shape: Shape,
    input_zero_point: i32,
    output: &mut [i8],
    output_shape: Shape,
    params: &ConvParams<'_>,
) -> bool {
    use super::arch::arm_dsp::{
        depthwise_planes, widen_interleaved, widen_planes, with_band, DwPlaneArgs, PlaneGeometry, BAND_WORDS,
        WIDE_ROW_WORDS,
    };
    let w = &params.window;
    let channels = input_shape.channels;
    let (height, width) = (input_shape.height, input_shape.width);
    let (out_h, out_w) = (output_shape.height, output_shape.width);
    let s = w.stride_w;
    if w.kernel_h != 3
        || w.kernel_w != 3
        || params.depth_multiplier != 1
        || output_shape.channels != channels
        || !(-128..=127).contains(&input_zero_point)
        || w.stride_h != s
        || !(1..=2).contains(&s)
        || w.dilation_h != 1
        || w.dilation_w != 1
        || !channels.is_multiple_of(4)
        || !out_w.is_multiple_of(4)
        || !width.is_multiple_of(4)
        || out_h == 0
        || height == 0
    {
        return false;
    }
    // Band column of input column 0 (even, so pixel pairs are words); the first tap
    // of output column x is at band column s·x + phase.
    let phase = w.pad_left % 2;
    // The routines there are (3×3 SAME or VALID with widths multiples of 4 gives
    // these two only).
    if (s, phase) != (1, 1) && (s, phase) != (2, 0) {
        return false;
    }
    let first_col = w.pad_left + phase;
    // Stride 2: the four channels in one band, interleaved by blocks of two pixel pairs
    // (`widen_interleaved`), input column 0 at the start of a block; row_words counts
    // one channel's pairs a row (even, whole blocks).
    let interleaved = s == 2;
    if interleaved && !first_col.is_multiple_of(4) {
        return false;
    }
    let reach = if s == 1 { out_w / 2 + 2 } else { out_w + 2 };
    let row_words = reach.max((first_col + width).div_ceil(2));
    let row_words = if interleaved { row_words.next_multiple_of(2) } else { row_words };
    // Stride 2 with output widths a multiple of 8 that fit: the fixed rows of the
    // eight-output routines.
    let row_words =
        if interleaved && out_w.is_multiple_of(8) && row_words <= WIDE_ROW_WORDS { WIDE_ROW_WORDS } else { row_words };
    // Band words of one input row's first pixel, rows apart (per band).
    let (first_word, row_stride) =
        if interleaved { (2 * first_col, 4 * row_words) } else { (first_col / 2, row_words) };
    // Output rows per band: as many as four planes of their input rows fit the buffer.
    let fit_rows = BAND_WORDS / (4 * row_words);
    if fit_rows < 3 {
        return false;
    }
    let band_out = ((fit_rows - 3) / s + 1).min(out_h);
    let band_rows = (band_out - 1) * s + 3;
    let plane = band_rows * row_words;
    let single = band_out == out_h;
    let quant = &params.quant;
    let (lo, hi) = (i32::from(quant.act_min), i32::from(quant.act_max));
    let clamp = if hi < 127 {
        2
    } else if lo > -128 {
        1
    } else {
        0
    };
    let full =
        PlaneGeometry { stride: s, phase, clamp, rows: out_h, columns: out_w, band_row_words: row_words, channels };
    if single && w.pad_top >= band_rows {
        return false;
    }
    // Input rows the outputs read (VALID may leave the last ones out).
    let full_rows = height.min(band_rows - w.pad_top);
    let full_first = w.pad_top * row_stride + first_word;
    let zp_pair = lanes(input_zero_point, input_zero_point);
    // One input slice's `rows` rows into the band from word `first`, in the layout of
    // the stride.
    let widen = |x: &[i8], band: &mut [u32], rows: usize, first: usize| {
        if interleaved {
            widen_interleaved(x, channels, width, rows, band, row_stride, first)
        } else {
            widen_planes(x, channels, width, rows, band, plane, row_words, first)
        }
    };
    with_band(4 * plane, zp_pair, |band| {
        let mut args = [DwPlaneArgs::ZERO; 4];
        let mut group = 0;
        while group < channels {
            if !plane_args(params, channels, group, input_zero_point, clamp, &mut args) {
                return false;
            }
            if single {
                // The whole plane in one band, its pad rows never written.
                let Some(x) = input.get(group..) else {
                    return false;
                };
                if !widen(x, band, full_rows, full_first) {
                    return false;
                }
                let Some(y) = output.get_mut(group..) else {
                    return false;
                };
                if !depthwise_planes(band, plane, y, &full, &mut args) {
                    return false;
                }
                group += 4;
                continue;
            }
            let mut y0 = 0;
            while y0 < out_h {
                let rows = band_out.min(out_h - y0);
                // Padded rows p0..p0 + used of this band; the input rows among them.
                let (p0, used) = (y0 * s, (rows - 1) * s + 3);
                let in_lo = p0.saturating_sub(w.pad_top).min(height);
                let in_hi = (p0 + used).saturating_sub(w.pad_top).min(height);
                let top = (in_lo + w.pad_top).saturating_sub(p0).min(used);
                let bottom = (in_hi + w.pad_top).saturating_sub(p0).min(used).max(top);
                // Band rows holding no input row: back to the zero point (an earlier band
                // or group may have written them).
                let (bands, offset) = if interleaved { (1, 0) } else { (4, plane) };
                for k in 0..bands {
                    for r in (0..top).chain(bottom..used) {
                        let at = k * offset + r * row_stride;
                        if let Some(cells) = band.get_mut(at..at + row_stride) {
                            cells.fill(zp_pair);
                        }
                    }
                }
                if bottom > top {
                    let Some(x) = input.get(in_lo * width * channels + group..) else {
                        return false;
                    };
                    let first = top * row_stride + first_word;
                    if !widen(x, band, bottom - top, first) {
                        return false;
                    }
                }
                let geometry = PlaneGeometry {
                    stride: s,
                    phase,
                    clamp,
                    rows,
                    columns: out_w,
                    band_row_words: row_words,
                    channels,
                };
                let Some(y) = output.get_mut(y0 * out_w * channels + group..) else {
                    return false;
                };
                if !depthwise_planes(band, plane, y, &geometry, &mut args) {
                    return false;
                }
                y0 += rows;
            }
            group += 4;
        }
        true
    })
    .unwrap_or(false)
}

/// Channels `group..group + 4`'s constants for the channel-plane kernel into `out`;
/// `false` when one's requantization has no four-instruction form: the fast form ([`FastRequant`]) with
/// `f = 2` (no left shift) and a right shift `r ≥ 1`, a multiplier `≥ 0`. Then, with
/// `h = SMMULR(2x, M)` and the fast form's `round = 2^r + zp·2^(r+1)` (even),
/// `(2h + (h >> 31) + round) >> (r + 1) = (h + round/2 − [h < 0]) >> r` (an odd
/// numerator is never a multiple of `2^(r+1)`), and `[h < 0]` may be replaced by
/// `[x < 0]`: they differ only for `h = 0`, where `round/2 = 2^(r−1) + zp·2^r` is not a
/// multiple of `2^r` and the `−1` changes nothing. `SMMLAR(2x, M, round/2)` gives
/// `h + round/2`. A lower clamp `lo > −128` subtracts `(lo + 128)·2^r` there, so the
/// shifted value is `v − lo − 128`; `SSAT` to int8, adding `lo + 128` back and `SSAT`
/// again gives `clamp(v, lo, 127)`.
#[cfg(microcnn_arm_dsp)]
fn plane_args(
    params: &ConvParams<'_>,
    channels: usize,
    group: usize,
    input_zero_point: i32,
    clamp: usize,
    out: &mut [super::arch::arm_dsp::DwPlaneArgs; 4],
) -> bool {
    use super::arch::arm_dsp::{le_i32, sadd16, sxtb16, sxtb16_ror8, taps9};
    let quant = &params.quant;
    let zp_out = quant.output_zero_point;
    if !(-128..=127).contains(&zp_out) {
        return false;
    }
    // The group's nine taps, one word each (byte k: channel group + k), as `i16` lane
    // pairs: channels (0, 2) and (1, 3).
    let Some(words) = taps9(params.weights, group, channels) else {
        return false;
    };
    let even = words.map(sxtb16);
    let odd = words.map(sxtb16_ror8);
    // Σw of the four channels, lane-wise (|Σw| ≤ 9·128 fits a lane).
    let (sum_even, sum_odd) = (1..9).fold((even[0], odd[0]), |(e, o), t| (sadd16(e, even[t]), sadd16(o, odd[t])));
    let sums = [sum_even as i16, sum_odd as i16, (sum_even >> 16) as i16, (sum_odd >> 16) as i16];
    // Per kernel row, the filter words of channels 0..4: (w0, w1) and (w1, w2), doubled.
    let low_pair = |a: u32, b: u32| (a & 0xFFFF) | (b << 16);
    let high_pair = |a: u32, b: u32| (a >> 16) | (b & 0xFFFF_0000);
    for row in 0..3 {
        let t = 3 * row;
        for (j, (x, y)) in [(t, t + 1), (t + 1, t + 2)].into_iter().enumerate() {
            let words = [
                low_pair(even[x], even[y]),
                low_pair(odd[x], odd[y]),
                high_pair(even[x], even[y]),
                high_pair(odd[x], odd[y]),
            ];
            for (a, w) in out.iter_mut().zip(words) {
                a.filter[2 * row + j] = sadd16(w, w);
            }
        }
    }
    let lower = i32::from(quant.act_min) + 128;
    for (k, a) in out.iter_mut().enumerate() {
        let c = group + k;
        let bias = quant.bias.as_ref().map_or(0, |b| le_i32(b.0, c));
        let multiplier = le_i32(quant.multipliers.0, c);
        let shift = le_i32(quant.shifts.0, c);
        // FastRequant's conditions for left shift 0 (f = 2), here with margins that
        // keep every value inside i32 without 64-bit arithmetic: right shift r in
        // 1..=20, x = |acc| + |bias| < 2^28 with |acc| ≤ 255·9·128 = 293,760, so
        // 2x + 3 + |round| < 2^31 for round = (1 + 2·zp)·2^r, |round| ≤ 255·2^20.
        if !(-20..=-1).contains(&shift) || multiplier < 0 || bias.unsigned_abs() >= (1 << 28) - 293_760 {
            return false;
        }
        let r = shift.unsigned_abs();
        let round = (1 + 2 * zp_out) << r;
        // |half| < 2^27 + 2^28 and |h| < 2^30: h + half stays inside i32.
        let half = if clamp >= 1 { round / 2 - (lower << r) } else { round / 2 };
        let sum = i32::from(sums[k]);
        let start = bias.wrapping_sub(input_zero_point.wrapping_mul(sum)).wrapping_mul(2);
        a.start = [start; 4];
        a.multiplier = multiplier;
        a.round = half;
        a.shift = r;
        a.lower = lower;
        a.upper = i32::from(quant.act_max);
    }
    true
}
