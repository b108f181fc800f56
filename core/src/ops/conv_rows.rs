//! The row kernel of CONV_2D for short filters (`KH·KW·C_in ≤ ROW_FILTER_MAX`), such
//! as a first layer on a 1- or 3-channel image or a 1×1 convolution on few channels.
//!
//! For such filters the per-pixel im2col column and the per-call overhead of the
//! two-by-two micro-kernel cost more than the multiplications. This kernel instead
//! widens the receptive fields of a whole output row once (pixel after pixel, `i16`
//! pairs in filter order with the input offset added, padding taps 0) and then runs
//! channel by channel over the row: the channel's widened filter and its
//! requantization stay in registers, and each output costs `N` loads and `N`
//! two-lane multiply-accumulates (`SMLAD` on DSP cores) plus the requantization.
//!
//! Stack: [`ROW_WORDS`] words for the row (2 KiB), its sums (1 KiB) and
//! [`FILTER_WORDS`] words for the widened filters (4 KiB). Accumulator bound: at most 16 products of
//! |x − zp| ≤ 255 and |w| ≤ 128, far inside `i32`.

#[cfg(microcnn_arm_dsp)]
use super::arch::arm_dsp::{
    clamp_bytes, requant_strided, smlad, sums_3x2, sums_3x5, sums_row12, sums_row8, widen_groups, widen_in_order,
    ROWS3_STRIDE,
};
use super::conv::ConvParams;
#[cfg(microcnn_arm_dsp)]
use super::FastRequant;
use super::{acc_bound, ChannelQuant, ChannelRequant, Requant};
use crate::shape::Shape;

/// The longest filter the row kernel takes.
pub(crate) const ROW_FILTER_MAX: usize = 16;

/// Words of the widened output row (2 KiB of stack; the row's sums take half as
/// many words again, as every filter has at least two words).
const ROW_WORDS: usize = 512;

/// Words of the widened filters of all output channels (4 KiB of stack).
const FILTER_WORDS: usize = 1024;

/// Channels whose requantization the row kernel prepares once per layer (1.3 KiB of
/// stack); further channels prepare theirs per output row.
const CACHED_CHANNELS: usize = 32;

/// `acc + lo(x)·lo(w) + hi(x)·hi(w)` on the signed `i16` lanes.
#[inline(always)]
fn mac2(x: u32, w: u32, acc: i32) -> i32 {
    #[cfg(microcnn_arm_dsp)]
    {
        smlad(x, w, acc)
    }
    #[cfg(not(microcnn_arm_dsp))]
    {
        acc + i32::from(x as i16) * i32::from(w as i16) + i32::from((x >> 16) as i16) * i32::from((w >> 16) as i16)
    }
}

/// Runs the convolution with the row kernel when the layer fits it; `false` (having
/// written nothing) when it does not, and the caller runs another kernel.
pub(crate) fn conv2d_s8_rows(
    input: &[i8],
    input_shape: Shape,
    input_zero_point: i32,
    output: &mut [i8],
    output_shape: Shape,
    params: &ConvParams<'_>,
) -> bool {
    let filter_len = params.window.kernel_h * params.window.kernel_w * input_shape.channels;
    // Three sizes (padded with zero words) rather than one per length: code size; on
    // DSP cores also twelve words for a 1×1 convolution on 24 channels (lane order).
    let words = match filter_len.div_ceil(2) {
        0..=2 => 2,
        3..=5 => 5,
        12 if lane_order(&params.window, input_shape, output_shape, 12) => 12,
        _ => 8,
    };
    // A 1×1 convolution in lane order whose output has the input's size works pixel by
    // pixel: any [H', W'] with H'·W' = H·W gives the same bytes. The widest row that
    // fits the row buffer spreads each channel's per-row work over more pixels.
    let (input_shape, output_shape) = if lane_order(&params.window, input_shape, output_shape, words)
        && params.window.stride_h == 1
        && (input_shape.height, input_shape.width) == (output_shape.height, output_shape.width)
    {
        let pixels = input_shape.height * input_shape.width;
        let w = (1..=(ROW_WORDS / words).min(pixels)).rev().find(|w| pixels.is_multiple_of(*w)).unwrap_or(1);
        (Shape::new(pixels / w, w, input_shape.channels), Shape::new(pixels / w, w, output_shape.channels))
    } else {
        (input_shape, output_shape)
    };
    let out_c = output_shape.channels;
    if filter_len == 0
        || filter_len > ROW_FILTER_MAX.max(2 * words)
        || out_c == 0
        || output_shape.width * words > ROW_WORDS
        || out_c * words > FILTER_WORDS
    {
        return false;
    }
    // Every channel must have a prepared requantization (checked before any output).
    for o in 0..out_c {
        if Requant::new(&params.quant, o).is_none() {
            return false;
        }
    }
    #[cfg(microcnn_arm_dsp)]
    if three_rows(input, input_shape, input_zero_point, output, output_shape, params) {
        return true;
    }
    match words {
        2 => run::<2>(input, input_shape, input_zero_point, output, output_shape, params),
        5 => run::<5>(input, input_shape, input_zero_point, output, output_shape, params),
        #[cfg(microcnn_arm_dsp)]
        12 => run::<12>(input, input_shape, input_zero_point, output, output_shape, params),
        _ => run::<8>(input, input_shape, input_zero_point, output, output_shape, params),
    }
    true
}

/// Whether a row's receptive fields with `words` words each are its input row as it
/// is (DSP cores): a 1×1 convolution with stride 1 along the width, no padding and
/// exactly `2·words` input channels, a multiple of 4. The row kernel then widens the
/// row in one pass (`widen_groups`) in `SXTB16` lane order, and the filters take that
/// order too.
#[inline(always)]
fn lane_order(window: &super::conv::Window, input_shape: Shape, output_shape: Shape, words: usize) -> bool {
    let in_c = input_shape.channels;
    cfg!(microcnn_arm_dsp)
        && window.kernel_h == 1
        && window.kernel_w == 1
        && window.stride_w == 1
        && window.pad_top == 0
        && window.pad_left == 0
        && in_c == 2 * words
        && in_c.is_multiple_of(4)
        && output_shape.width <= input_shape.width
        && (output_shape.height.max(1) - 1) * window.stride_h < input_shape.height
}

/// The row kernel with `N` words (`2·N` values, the tail zeros) per filter.
#[inline(never)]
fn run<const N: usize>(
    input: &[i8],
    input_shape: Shape,
    input_zero_point: i32,
    output: &mut [i8],
    output_shape: Shape,
    params: &ConvParams<'_>,
) {
    let window = &params.window;
    let in_c = input_shape.channels;
    let filter_len = window.kernel_h * window.kernel_w * in_c;
    let out_c = output_shape.channels;
    let out_w = output_shape.width;
    let offset = input_zero_point.wrapping_neg();
    let bound = acc_bound(filter_len, input_zero_point);
    // A 1×1 convolution with stride 1 along the width, no padding and exactly `2·N`
    // input channels (a multiple of 4): a row's receptive fields are its input row as
    // it is, widened in one pass (`widen_groups`) in `SXTB16` lane order, so the
    // filters take that order too.
    let lane_order = cfg!(microcnn_arm_dsp) && lane_order(window, input_shape, output_shape, N);
    // Filters widened once per layer: word j of channel o holds weights 2j, 2j + 1 (in
    // lane order: words 2g, 2g + 1 hold weights (4g, 4g + 2), (4g + 1, 4g + 3)).
    let mut filter_words = [0_u32; FILTER_WORDS];
    let Some(filters) = filter_words.as_chunks_mut::<N>().0.get_mut(..out_c) else {
        return;
    };
    for (o, f) in filters.iter_mut().enumerate() {
        let Some(w) = params.weights.get(o * filter_len..(o + 1) * filter_len) else {
            return;
        };
        for (j, word) in f.iter_mut().enumerate() {
            let (a, b) = if lane_order { (j / 2 * 4 + j % 2, j / 2 * 4 + j % 2 + 2) } else { (2 * j, 2 * j + 1) };
            let lo = w.get(a).copied().unwrap_or(0) as i16 as u16;
            let hi = w.get(b).copied().unwrap_or(0) as i16 as u16;
            *word = u32::from(lo) | (u32::from(hi) << 16);
        }
    }
    let mut row_words = [0_u32; ROW_WORDS];
    let Some(row) = row_words.as_chunks_mut::<N>().0.get_mut(..out_w) else {
        return;
    };
    let mut sums = [0_i32; ROW_WORDS / 2];
    let Some(sums) = sums.get_mut(..out_w) else {
        return;
    };
    let (height, width) = (input_shape.height as isize, input_shape.width as isize);
    let kernel_w = window.kernel_w as isize;
    let row_len = window.kernel_w * in_c;
    // The requantization of the first channels, prepared once per layer rather than
    // per output row.
    let mut cached = [None; CACHED_CHANNELS];
    prepare_cached(&params.quant, bound, &mut cached[..out_c.min(CACHED_CHANNELS)]);
    // On DSP cores, channels requantized by `requant_strided` saturate to int8 only;
    // the layer's clamp then runs over each whole output row (`clamp_bytes`).
    #[cfg(microcnn_arm_dsp)]
    let (act_min, act_max) = (params.quant.act_min, params.quant.act_max);
    for (out_y, out_row) in output.chunks_exact_mut(out_w * out_c).take(output_shape.height).enumerate() {
        let origin_y = (out_y * window.stride_h) as isize - window.pad_top as isize;
        #[cfg(microcnn_arm_dsp)]
        if lane_order {
            let start = out_y * window.stride_h * input_shape.width * in_c;
            let Some(x) = input.get(start..start + out_w * in_c) else {
                return;
            };
            widen_groups(x, row.as_flattened_mut(), offset);
        }
        for (out_x, col) in row.iter_mut().enumerate() {
            if lane_order {
                break;
            }
            let origin_x = (out_x * window.stride_w) as isize - window.pad_left as isize;
            // Zeros first (N word stores), then only the valid runs are written.
            *col = [0; N];
            let h: &mut [i16] = bytemuck::cast_slice_mut(&mut col[..]);
            let mut at = 0;
            let mut in_y = origin_y;
            // With dilation 1 a kernel row's valid taps are one contiguous run.
            let (kx_start, kx_end) =
                ((-origin_x).clamp(0, kernel_w) as usize, (width - origin_x).clamp(0, kernel_w) as usize);
            for _ in 0..window.kernel_h {
                let Some(taps) = h.get_mut(at..at + row_len) else {
                    return;
                };
                if !(0..height).contains(&in_y) {
                    // Padding rows stay 0.
                } else if window.dilation_w == 1 {
                    let (lo, hi) = (kx_start * in_c, kx_end.max(kx_start) * in_c);
                    // origin_x + kx_start ≥ 0 (or the run is empty).
                    let start = (in_y * width + origin_x + kx_start as isize).max(0) as usize * in_c;
                    let (Some(x), Some(run)) = (input.get(start..start + (hi - lo)), taps.get_mut(lo..hi)) else {
                        return;
                    };
                    for (t, &v) in run.iter_mut().zip(x) {
                        *t = (i32::from(v) + offset) as i16;
                    }
                } else {
                    let mut in_x = origin_x;
                    for tap in taps.chunks_exact_mut(in_c) {
                        if (0..width).contains(&in_x) {
                            let start = (in_y * width + in_x) as usize * in_c;
                            let Some(x) = input.get(start..start + in_c) else {
                                return;
                            };
                            for (t, &v) in tap.iter_mut().zip(x) {
                                *t = (i32::from(v) + offset) as i16;
                            }
                        }
                        in_x += window.dilation_w as isize;
                    }
                }
                at += row_len;
                in_y += window.dilation_h as isize;
            }
        }
        for (o, f) in filters.iter().enumerate() {
            let Some(r) = (match cached.get(o) {
                Some(c) => *c,
                None => channel_requant(&params.quant, o, bound),
            }) else {
                return;
            };
            #[cfg(microcnn_arm_dsp)]
            if let Some(mut parts) = match &r {
                ChannelRequant::Fast(fast) => fast.parts_unshifted(),
                ChannelRequant::Exact(_) => None,
            } {
                // The sums, then the requantization loop of arm_dsp.rs (int8
                // saturation only; the row's clamp follows).
                channel_sums(row, sums, f);
                parts[4] = -128;
                parts[5] = 127;
                if let Some(out) = out_row.get_mut(o..) {
                    requant_strided(sums, out, out_c, parts);
                }
                continue;
            }
            match r {
                ChannelRequant::Fast(r) => channel_row(row, sums, f, out_row, out_c, o, |acc| r.output(acc)),
                ChannelRequant::Exact(r) => channel_row(row, sums, f, out_row, out_c, o, |acc| r.output(acc)),
            }
        }
        // Clamping the outputs already clamped again changes nothing.
        #[cfg(microcnn_arm_dsp)]
        if (act_min, act_max) != (-128, 127) {
            clamp_bytes(out_row, act_min, act_max);
        }
    }
}

/// The requantization of channels `0..cached.len()`.
fn prepare_cached(quant: &ChannelQuant<'_>, bound: i64, cached: &mut [Option<ChannelRequant>]) {
    for (o, c) in cached.iter_mut().enumerate() {
        *c = channel_requant(quant, o, bound);
    }
}

/// `ChannelRequant::new`, not inlined: one copy for the three filter widths (flash).
#[inline(never)]
fn channel_requant(quant: &ChannelQuant<'_>, o: usize, bound: i64) -> Option<ChannelRequant> {
    ChannelRequant::new(quant, o, bound)
}

/// Output channel `o` of one output row: the sums of the widened filter `f` over the
/// row's receptive fields, requantized by `requant`.
#[inline(always)]
fn channel_row<const N: usize>(
    row: &[[u32; N]],
    sums: &mut [i32],
    f: &[u32; N],
    out_row: &mut [i8],
    out_c: usize,
    o: usize,
    requant: impl Fn(i32) -> i8,
) {
    let f = *f;
    if !cfg!(microcnn_arm_dsp) {
        // ARMv6-M: one pass (two passes cost more there, measured).
        for (col, px) in row.iter().zip(out_row.chunks_exact_mut(out_c)) {
            let mut acc = 0;
            for j in 0..N {
                acc = mac2(col[j], f[j], acc);
            }
            if let Some(y) = px.get_mut(o) {
                *y = requant(acc);
            }
        }
        return;
    }
    // Two passes over the row, so that neither spills: the sums (filter in
    // registers), then their requantization (prepared fields in registers).
    channel_sums(row, sums, &f);
    for (&acc, px) in sums.iter().zip(out_row.chunks_exact_mut(out_c)) {
        if let Some(y) = px.get_mut(o) {
            *y = requant(acc);
        }
    }
}

/// The sums of the widened filter `f` over the row's receptive fields.
#[inline(always)]
fn channel_sums<const N: usize>(row: &[[u32; N]], sums: &mut [i32], f: &[u32; N]) {
    #[cfg(microcnn_arm_dsp)]
    if let Ok(f8) = <&[u32; 8]>::try_from(&f[..]) {
        let n = row.len().min(sums.len());
        sums_row8(row.as_flattened(), f8, &mut sums[..n]);
        return;
    }
    #[cfg(microcnn_arm_dsp)]
    if let Ok(f12) = <&[u32; 12]>::try_from(&f[..]) {
        let n = row.len().min(sums.len());
        sums_row12(row.as_flattened(), f12, &mut sums[..n]);
        return;
    }
    let f = *f;
    for (col, a) in row.iter().zip(sums.iter_mut()) {
        let mut acc = 0;
        for j in 0..N {
            acc = mac2(col[j], f[j], acc);
        }
        *a = acc;
    }
}

/// Widened input rows of [`three_rows`]: three rows of `ROWS3_STRIDE` bytes (1.5 KiB).
#[cfg(microcnn_arm_dsp)]
const THREE_ROWS_WORDS: usize = 3 * ROWS3_STRIDE / 4;

/// Output channels [`three_rows`] takes (their prepared requantizations: 1.5 KiB of stack).
#[cfg(microcnn_arm_dsp)]
const THREE_ROWS_CHANNELS: usize = 64;

/// Halfwords of one widened row.
#[cfg(microcnn_arm_dsp)]
const ROW_HALVES: usize = ROWS3_STRIDE / 2;

/// DSP kernel for three kernel rows of at most ten values each (`KH = 3`,
/// `KW·C_in ≤ 10`, dilation 1 along the width: a 3×3 first layer on a one- to
/// three-channel image), when every channel has the fast requantization. Rows of up
/// to four values take two words per kernel row (the filter in registers), longer
/// ones five (the filter read from memory).
///
/// Per output row, the three input rows it reads are widened once (`x − zp` as `i16`,
/// padding columns 0) into rows of `ROWS3_STRIDE` bytes; then per output channel the
/// sums over the row come straight from them (`sums_3x2`: two words per kernel row,
/// read at any halfword offset, the filter's unused lanes 0) and are requantized into
/// the channel's outputs (`requant_strided`). No per-pixel receptive field is built.
/// `false` (having written nothing) when the layer does not fit.
#[cfg(microcnn_arm_dsp)]
#[inline(never)]
pub(crate) fn three_rows(
    input: &[i8],
    input_shape: Shape,
    input_zero_point: i32,
    output: &mut [i8],
    output_shape: Shape,
    params: &ConvParams<'_>,
) -> bool {
    let window = &params.window;
    let in_c = input_shape.channels;
    let run = window.kernel_w * in_c; // values per kernel row
    let (out_w, out_c) = (output_shape.width, output_shape.channels);
    let step = window.stride_w * in_c; // halfwords between neighbouring pixels' fields
    let words = if run <= 4 { 2 } else { 5 }; // per kernel row
                                              // The last pixel's loads reach halfword (out_w − 1)·step + 2·words − 1 of each row.
    let span = (out_w.max(1) - 1) * step + 2 * words;
    if window.kernel_h != 3
        || window.dilation_w != 1
        || run == 0
        || run > 2 * words
        || out_w == 0
        || out_w > ROW_WORDS / 2
        || span > ROW_HALVES
        || out_c * 15 > FILTER_WORDS
    {
        return false;
    }
    let bound = acc_bound(3 * run, input_zero_point);
    let mut requants = [[0_i32; 6]; THREE_ROWS_CHANNELS];
    if out_c > requants.len() {
        return false;
    }
    for (o, r) in requants.iter_mut().take(out_c).enumerate() {
        match Requant::new(&params.quant, o).and_then(|r| FastRequant::new(&r, bound)?.parts_unshifted()) {
            // int8 saturation only: the layer's clamp runs once per output row.
            Some(f) => *r = [f[0], f[1], f[2], f[3], -128, 127],
            None => return false,
        }
    }
    // Filters widened once: kernel row r of channel o in words 2r, 2r + 1, unused lanes 0.
    let mut filter_words = [0_u32; FILTER_WORDS];
    // Each channel's filter in a 15-word slot (its first 3·words words used).
    let Some(filters) = filter_words.as_chunks_mut::<15>().0.get_mut(..out_c) else {
        return false;
    };
    for (o, f) in filters.iter_mut().enumerate() {
        let Some(w) = params.weights.get(o * 3 * run..(o + 1) * 3 * run) else {
            return false;
        };
        let h: &mut [i16] = bytemuck::cast_slice_mut(&mut f[..]);
        for (lanes, taps) in h.chunks_exact_mut(2 * words).zip(w.chunks_exact(run)) {
            for (l, &t) in lanes.iter_mut().zip(taps) {
                *l = i16::from(t);
            }
        }
    }
    let mut rows = [0_u32; THREE_ROWS_WORDS];
    let mut sums = [0_i32; ROW_WORDS / 2];
    let sums = &mut sums[..out_w];
    let (height, width) = (input_shape.height as isize, input_shape.width as isize);
    let in_row = input_shape.width * in_c;
    let offset = input_zero_point.wrapping_neg();
    let used = span.div_ceil(2); // words of each row the loads reach
    for (out_y, out_row) in output.chunks_exact_mut(out_w * out_c).take(output_shape.height).enumerate() {
        let origin_y = (out_y * window.stride_h) as isize - window.pad_top as isize;
        for (r, wide) in rows.chunks_exact_mut(ROWS3_STRIDE / 4).enumerate() {
            let Some(wide) = wide.get_mut(..used) else {
                return true;
            };
            wide.fill(0);
            let in_y = origin_y + (r * window.dilation_h) as isize;
            if !(0..height).contains(&in_y) {
                continue;
            }
            // Input column ix lands at halfword (ix + pad_left)·C_in; columns whose
            // halfwords the loads never reach are skipped.
            let h: &mut [i16] = bytemuck::cast_slice_mut(wide);
            let first = window.pad_left.min(h.len() / in_c);
            let columns = (h.len() / in_c - first).min(width as usize);
            let start = in_y as usize * in_row;
            let (Some(x), Some(dst)) =
                (input.get(start..start + columns * in_c), h.get_mut(first * in_c..(first + columns) * in_c))
            else {
                return true;
            };
            widen_in_order(x, dst, offset);
        }
        for (o, (f, r)) in filters.iter().zip(&requants).enumerate() {
            if words == 2 {
                if let Ok(f) = <&[u32; 6]>::try_from(&f[..6]) {
                    sums_3x2(&rows, 2 * step, f, sums);
                }
            } else {
                sums_3x5(&rows, 2 * step, f, sums);
            }
            let Some(out) = out_row.get_mut(o..) else {
                return true;
            };
            requant_strided(sums, out, out_c, *r);
        }
        if (params.quant.act_min, params.quant.act_max) != (-128, 127) {
            clamp_bytes(out_row, params.quant.act_min, params.quant.act_max);
        }
    }
    true
}
