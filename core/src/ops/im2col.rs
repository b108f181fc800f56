//! The im2col machinery of the convolution kernels.
//!
//! A *column* holds one output pixel's receptive field in the weights' order
//! (`[KH, KW, C_in]`), each value widened to `i16` with the input offset already
//! added (`x − zp_in`, in [−255, 255]); taps outside the image are 0, which is the
//! same as skipping them. The filter length is padded with zeros to a multiple of 4.
//! A micro-kernel then multiplies two filters with two columns at once (four
//! accumulators), so every weight and column value loaded serves two products.
//!
//! On cores with the DSP extension (`cfg(microcnn_arm_dsp)`) each group of four
//! values is stored as `[x0, x2, x1, x3]`: a weight word widened with `SXTB16` gives
//! the lanes `(w0, w2)`, with `SXTB16 ROR #8` the lanes `(w1, w3)`, and one `SMLAD` per
//! lane pair then does two multiply-accumulates. Elsewhere the column is in order.
//!
//! Accumulator bound: at most [`COLUMN_MAX`] products of |x − zp| ≤ 255 and |w| ≤ 128
//! (2^25 in all), far inside `i32`.

#[cfg(microcnn_arm_dsp)]
use super::arch::arm_dsp::{
    dot_2x2_groups, dot_2x2_widened, dot_2x2_widened_pairs, sxtb16, sxtb16_ror8, widen_groups, COLUMN_STRIDE,
};

/// The longest filter (`KH·KW·C_in`) a column holds;
/// longer filters run the reference kernels. A column takes `2 · COLUMN_MAX` bytes of
/// stack and the convolution keeps two.
pub(crate) const COLUMN_MAX: usize = 1024;

/// Words of one column.
const WORDS: usize = COLUMN_MAX / 2;

#[cfg(microcnn_arm_dsp)]
const _: () = assert!(WORDS == COLUMN_STRIDE, "the DSP micro-kernel addresses column 1 at a fixed offset");

/// Two columns (see the module documentation) in one word-aligned buffer, column 1
/// right after column 0, so that one pointer reaches both.
pub(crate) struct Columns {
    words: [u32; 2 * WORDS],
}

/// Position of filter index `i` in a column.
#[inline(always)]
fn slot(i: usize) -> usize {
    if cfg!(microcnn_arm_dsp) {
        (i & !3) | ((i & 1) << 1) | ((i >> 1) & 1)
    } else {
        i
    }
}

impl Columns {
    pub(crate) fn new() -> Self {
        Self { words: [0; 2 * WORDS] }
    }

    /// Column `k` (0 or 1) for writing.
    #[inline(always)]
    pub(crate) fn column(&mut self, k: usize) -> Column<'_> {
        let start = if k == 0 { 0 } else { WORDS };
        Column { words: &mut self.words[start..start + WORDS] }
    }
}

/// One column of [`Columns`], for writing.
pub(crate) struct Column<'a> {
    words: &'a mut [u32],
}

impl Column<'_> {
    #[inline(always)]
    fn halves(&mut self) -> &mut [i16] {
        bytemuck::cast_slice_mut(&mut self.words[..])
    }

    /// Writes `n` zeros from filter index `at` (in order, or whole groups).
    #[inline(always)]
    pub(crate) fn zeros(&mut self, at: usize, n: usize) {
        if n == 0 {
            return;
        }
        if let Some(h) = self.halves().get_mut(at..at + n) {
            h.fill(0);
        }
    }

    /// Writes `x − zp` for the run `x` from filter index `at` (`offset = −zp`): in
    /// the DSP order when `grouped` (then `at` and the run length are multiples of 4),
    /// else in order, for [`finish`](Self::finish) to reorder.
    #[inline(always)]
    pub(crate) fn run(&mut self, at: usize, x: &[i8], offset: i32, grouped: bool) {
        #[cfg(microcnn_arm_dsp)]
        if grouped {
            // Lanes stay in [−255, 255]: no wrap. One asm loop, 8 instructions per group.
            if let Some(words) = self.words.get_mut(at / 2..(at + x.len()) / 2) {
                widen_groups(x, words, offset);
            }
            return;
        }
        let _ = grouped;
        if let Some(dst) = self.halves().get_mut(at..at + x.len()) {
            for (h, &v) in dst.iter_mut().zip(x) {
                *h = (i32::from(v) + offset) as i16;
            }
        }
    }

    /// Pads filter length `len` with zeros up to a multiple of 4 and, on DSP cores,
    /// brings a column written in order (`grouped` false) into the DSP order.
    #[inline(always)]
    pub(crate) fn finish(&mut self, len: usize, grouped: bool) {
        let padded = len.next_multiple_of(4);
        self.zeros(len, padded - len);
        if cfg!(microcnn_arm_dsp) && !grouped {
            if let Some(words) = self.words.get_mut(..padded / 2) {
                for pair in words.chunks_exact_mut(2) {
                    // (x0, x1), (x2, x3) → (x0, x2), (x1, x3)
                    let (a, b) = (pair[0], pair[1]);
                    pair[0] = (a & 0xFFFF) | (b << 16);
                    pair[1] = (a >> 16) | (b & 0xFFFF_0000);
                }
            }
        }
    }
}

/// `[w0·c0, w0·c1, w1·c0, w1·c1]` over the first `len` values: two filters times the
/// two columns.
#[inline(never)]
pub(crate) fn dot_2x2(w0: &[i8], w1: &[i8], len: usize, columns: &Columns) -> [i32; 4] {
    // Weights past a filter's end (the next filter's, when the slices reach that far)
    // meet the column's zero padding: whole groups cover the tail then.
    let padded = len.next_multiple_of(4);
    let body = if !cfg!(microcnn_arm_dsp) {
        len // the portable loop needs no whole groups
    } else if w0.len() >= padded && w1.len() >= padded {
        padded
    } else {
        len & !3
    };
    let (Some(w0), Some(w1)) = (w0.get(..len.max(body)), w1.get(..len.max(body))) else {
        return [0; 4];
    };
    let (c0, c1) = columns.words.split_at(WORDS);
    let mut acc: [i32; 4];
    #[cfg(microcnn_arm_dsp)]
    {
        acc = dot_2x2_groups(w0, w1, &columns.words, body / 4, [0; 4]);
    }
    let (h0, h1): (&[i16], &[i16]) = (bytemuck::cast_slice(c0), bytemuck::cast_slice(c1));
    #[cfg(not(microcnn_arm_dsp))]
    {
        // One column at a time: two accumulators (fewer spills on ARMv6-M's eight low
        // registers than four).
        let [a00, a10] = dot_2x1_portable(&w0[..body], &w1[..body], &h0[..body]);
        let [a01, a11] = dot_2x1_portable(&w0[..body], &w1[..body], &h1[..body]);
        acc = [a00, a01, a10, a11];
    }
    for i in body..len {
        let (f0, f1) = (i32::from(w0[i]), i32::from(w1[i]));
        let s = slot(i);
        let (x0, x1) = (i32::from(h0.get(s).copied().unwrap_or(0)), i32::from(h1.get(s).copied().unwrap_or(0)));
        acc[0] += f0 * x0;
        acc[1] += f0 * x1;
        acc[2] += f1 * x0;
        acc[3] += f1 * x1;
    }
    acc
}

/// Words of the widened-filter scratch ([`widen_pairs`]): 4 KiB of stack.
#[cfg(microcnn_arm_dsp)]
pub(crate) const WIDE_WORDS: usize = 1024;

/// Widens `channels` filters of `len` int8 weights (`weights` holds them one after
/// another) into `out` for [`dot_2x2_widened`]: per pair of filters, per group of
/// four, the lane pairs `(w0, w2), (w1, w3)` of the first filter then of the second; an
/// odd last filter is paired with itself; weights past `len` are 0. Returns the
/// words per pair (`len` rounded up to 4), or `None` when `out` is too short.
#[cfg(microcnn_arm_dsp)]
pub(crate) fn widen_pairs(weights: &[i8], len: usize, channels: usize, out: &mut [u32]) -> Option<usize> {
    let padded = len.next_multiple_of(4);
    let pairs = channels.div_ceil(2);
    let out = out.get_mut(..pairs * padded)?;
    let group = |filter: &[i8], g: usize| {
        let b = |i: usize| if i < len { filter.get(i).copied().unwrap_or(0) as u8 } else { 0 };
        u32::from_le_bytes([b(4 * g), b(4 * g + 1), b(4 * g + 2), b(4 * g + 3)])
    };
    for (p, pair) in out.chunks_exact_mut(padded).enumerate() {
        let first = 2 * p;
        let second = (first + 1).min(channels - 1);
        let f0 = weights.get(first * len..(first + 1) * len)?;
        let f1 = weights.get(second * len..(second + 1) * len)?;
        for (g, words) in pair.chunks_exact_mut(4).enumerate() {
            let (a, b) = (group(f0, g), group(f1, g));
            words.copy_from_slice(&[sxtb16(a), sxtb16_ror8(a), sxtb16(b), sxtb16_ror8(b)]);
        }
    }
    Some(padded)
}

/// `[w0·c0, w0·c1, w1·c0, w1·c1]` for one pair widened by [`widen_pairs`].
#[cfg(microcnn_arm_dsp)]
#[inline(always)]
pub(crate) fn dot_2x2_wide(pair: &[u32], columns: &Columns) -> [i32; 4] {
    dot_2x2_widened(pair, &columns.words, pair.len() / 4, [0; 4])
}

/// [`dot_2x2_wide`] for the first `pairs` pairs of `wide` (`per_pair` words each) in
/// one call: pair k's four sums in `sums[4k..4k + 4]`.
#[cfg(microcnn_arm_dsp)]
#[inline(always)]
pub(crate) fn dot_2x2_wide_pairs(wide: &[u32], per_pair: usize, pairs: usize, columns: &Columns, sums: &mut [i32]) {
    dot_2x2_widened_pairs(wide, per_pair / 4, pairs, &columns.words, sums);
}

/// `[Σ w0·x, Σ w1·x]` over equally long runs (the portable micro-kernel).
#[cfg(not(microcnn_arm_dsp))]
#[inline(always)]
fn dot_2x1_portable(w0: &[i8], w1: &[i8], x: &[i16]) -> [i32; 2] {
    let (mut a0, mut a1) = (0_i32, 0_i32);
    for ((&f0, &f1), &v) in w0.iter().zip(w1).zip(x) {
        let v = i32::from(v);
        a0 += i32::from(f0) * v;
        a1 += i32::from(f1) * v;
    }
    [a0, a1]
}
