//! Forward and backward passes of each layer over a batch (NHWC, f32).

use super::gemm::{sgemm, sgemm_onto, sgemm_then, Then, View};
use super::pool;
use super::simd::wide;
use super::{Layer, Node, PARTS};
use crate::train::arch::Act;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::ops::Range;

/// Window geometry of a convolution or pooling layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geom {
    /// Input `[h, w, c]`.
    pub input: [usize; 3],
    /// Output `[h, w, c]`.
    pub output: [usize; 3],
    /// Kernel `[h, w]`.
    pub kernel: [usize; 2],
    /// Strides `[h, w]`.
    pub strides: [usize; 2],
    /// Padding before `[top, left]`.
    pub pad: [usize; 2],
}

impl Geom {
    fn in_size(&self) -> usize {
        self.input.iter().product()
    }
    fn out_pixels(&self) -> usize {
        self.output[0] * self.output[1]
    }
    fn col_len(&self) -> usize {
        self.kernel[0] * self.kernel[1] * self.input[2]
    }
    /// A 1×1, stride-1, unpadded window: the input is its own im2col matrix.
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.strides == [1, 1] && self.pad == [0, 0]
    }
    /// Input coordinates of kernel tap `(ky, kx)` for output `(oy, ox)`, if inside.
    #[inline]
    pub(super) fn tap(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
        let iy = (oy * self.strides[0] + ky).checked_sub(self.pad[0])?;
        let ix = (ox * self.strides[1] + kx).checked_sub(self.pad[1])?;
        (iy < self.input[0] && ix < self.input[1]).then_some((iy, ix))
    }
}

/// What a layer keeps from its forward pass.
#[derive(Debug)]
pub enum Cache {
    /// Nothing.
    None,
    /// A convolution's or a dense layer's: nothing either, as the backward pass
    /// rebuilds the im2col matrix (or the padded copy, see [`direct`]) from the input
    /// (see [`conv_forward`]).
    Conv,
    /// The statistics batch norm used: the batch's (training mode) or the moving
    /// averages. The backward pass recomputes the normalized input from them.
    BatchNorm {
        /// Mean per channel.
        mean: Vec<f32>,
        /// (Biased) variance per channel.
        var: Vec<f32>,
        /// Whether these are the batch's statistics (training mode).
        batch_stats: bool,
        /// `1 / sqrt(var + eps)` per channel.
        inv_std: Vec<f32>,
    },
    /// Dropout scale per element (0 or `1 / (1 − rate)`).
    Mask(Vec<f32>),
}

/// Samples per part.
fn part(n: usize) -> usize {
    n.div_ceil(PARTS).max(1)
}

/// Values per task of the element-wise passes below.
const ELEMENTWISE_CHUNK: usize = 1 << 14;

// Rows of 8 to 32 channels are too short for a loop vectorized over 16 lanes and
// unrolled, which leaves them to its scalar remainder; so the pooling and depthwise
// loops run on blocks of channels of fixed size (`by_blocks!`) or of values
// ([`mac_into`]). One loop stays in the baseline build on purpose: the
// depthwise weight gradient at stride 2, whose blocks of a pixel's channels measured
// twice as slow in the AVX-512 build.

fn activate(act: Act, y: &mut [f32]) {
    match act {
        Act::Relu => y.par_chunks_mut(ELEMENTWISE_CHUNK).for_each(|c| {
            wide(
                #[inline(always)]
                || relu(c),
            )
        }),
        Act::Relu6 => y.par_chunks_mut(ELEMENTWISE_CHUNK).for_each(|c| {
            wide(
                #[inline(always)]
                || relu6(c),
            )
        }),
        Act::Softmax => {
            // Softmax is only on a dense layer's units (rows of the output).
        }
        Act::None => {}
    }
}

#[inline(always)]
fn relu(y: &mut [f32]) {
    y.iter_mut().for_each(|v| *v = v.max(0.0));
}

#[inline(always)]
fn relu6(y: &mut [f32]) {
    y.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0));
}

/// [`activate`] on one thread (inside a parallel task).
#[inline(always)]
fn act_serial(act: Act, y: &mut [f32]) {
    match act {
        Act::Relu => relu(y),
        Act::Relu6 => relu6(y),
        Act::Softmax | Act::None => {}
    }
}

/// `dy` times the activation's derivative, from the activation's output `y`; a select
/// rather than a branch, so that it vectorizes.
fn act_backward(act: Act, y: &[f32], dy: &mut [f32]) {
    let chunks = dy.par_chunks_mut(ELEMENTWISE_CHUNK).zip(y.par_chunks(ELEMENTWISE_CHUNK));
    match act {
        Act::Relu => chunks.for_each(|(d, y)| {
            wide(
                #[inline(always)]
                || d.iter_mut().zip(y).for_each(|(d, &v)| *d = if v <= 0.0 { 0.0 } else { *d }),
            )
        }),
        Act::Relu6 => chunks.for_each(|(d, y)| {
            wide(
                #[inline(always)]
                || d.iter_mut().zip(y).for_each(|(d, &v)| *d = if v <= 0.0 || v >= 6.0 { 0.0 } else { *d }),
            )
        }),
        Act::None | Act::Softmax => {}
    }
}

/// Numerically stable softmax of one row.
pub fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = row.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// The input columns `ix0..ix0 + kernel_w` of output column `ox`, when all are inside
/// the input (then one kernel row is one contiguous run of `kernel_w × c` values).
#[inline]
fn full_row(g: &Geom, ox: usize) -> Option<usize> {
    let ix0 = (ox * g.strides[1]).checked_sub(g.pad[1])?;
    (ix0 + g.kernel[1] <= g.input[1]).then_some(ix0)
}

/// Runs of these lengths are copied and cleared with code for their length, not a
/// call to `memcpy`/`memset` (a 3×3 window over 1 to 32 channels makes runs of 3 to
/// 96 values, a call per run cost more than the copy).
macro_rules! by_len {
    ($len:expr, $n:ident => $body:expr, _ => $other:expr) => {
        seq_len!($len, $n => $body, _ => $other, 1 2 3 4 5 6 7 8 9 10 11 12 15 16 18 21 24 27 32 48 64 96)
    };
}

macro_rules! seq_len {
    ($len:expr, $n:ident => $body:expr, _ => $other:expr, $($k:literal)*) => {
        match $len {
            $($k => {
                const $n: usize = $k;
                $body
            })*
            _ => $other,
        }
    };
}

/// Runs `$body` for each block of channels of `0..$c`, `$ch` its first channel and
/// `$n` its length: blocks of 16, then one of 8, then single channels, so that loops
/// over pixels (a window's taps, the rows of a batch) run on whole vectors whatever the
/// channel count (8 to 32 in the small nets: too short for a loop of unknown length to
/// vectorize). The channels are independent, so the blocks change no bit.
macro_rules! by_blocks {
    ($c:expr, |$ch:ident, $n:ident| $body:expr) => {{
        let c: usize = $c;
        let mut $ch = 0;
        while $ch + 16 <= c {
            const $n: usize = 16;
            $body;
            $ch += $n;
        }
        if $ch + 8 <= c {
            const $n: usize = 8;
            $body;
            $ch += $n;
        }
        while $ch < c {
            const $n: usize = 1;
            $body;
            $ch += $n;
        }
    }};
}

/// `dst.copy_from_slice(src)`.
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    by_len!(dst.len(), N => {
        let d: &mut [f32; N] = dst.try_into().expect("length");
        *d = src.try_into().expect("length");
    }, _ => dst.copy_from_slice(src))
}

/// `dst.fill(0.0)`.
#[inline(always)]
fn zero_run(dst: &mut [f32]) {
    by_len!(dst.len(), N => {
        let d: &mut [f32; N] = dst.try_into().expect("length");
        *d = [0.0; N];
    }, _ => dst.fill(0.0))
}

/// The im2col matrix of output rows `rows` of `x`'s samples, counted across them
/// (sample `s`'s row `oy` is `s·oh + oy`): `rows.len() · ow` rows of `col`.
pub(super) fn im2col_range(g: &Geom, x: &[f32], rows: Range<usize>, col: &mut [f32]) {
    // Compiled once per common row length (the kernel's width times the channels), so
    // that each row's copy is code of that length, and with AVX-512 (wider copies).
    wide(
        #[inline(always)]
        || by_len!(g.kernel[1] * g.input[2], N => im2col_rows::<N>(g, x, rows, col), _ => im2col_rows::<0>(g, x, rows, col)),
    )
}

/// [`im2col_range`] for rows of `N` values (0: any length): one kernel row `ky` at a
/// time across an output row, so that the output columns whose kernel row lies inside
/// the input (all but the edges) are one tight loop of copies.
#[inline(always)]
fn im2col_rows<const N: usize>(g: &Geom, x: &[f32], rows: Range<usize>, col: &mut [f32]) {
    let [h, w, c] = g.input;
    let [oh, ow, _] = g.output;
    let k = g.col_len();
    // A constant in the builds for one length, so that `copy_run` and `zero_run` pick
    // their code for it at compile time.
    let run = if N > 0 { N } else { g.kernel[1] * c };
    // The output columns `lo..hi` whose kernel row is inside (a range: `full_row`
    // holds from the first column past the left padding to the last before the right).
    let lo = (0..ow).find(|&ox| full_row(g, ox).is_some()).unwrap_or(ow);
    let hi = (lo..ow).find(|&ox| full_row(g, ox).is_none()).unwrap_or(ow);
    let step = g.strides[1] * c;
    for (r, out) in rows.zip(col.chunks_exact_mut(ow * k)) {
        let (s, oy) = (r / oh, r % oh);
        let xs = &x[s * g.in_size()..(s + 1) * g.in_size()];
        for ky in 0..g.kernel[0] {
            let Some(iy) = (oy * g.strides[0] + ky).checked_sub(g.pad[0]).filter(|&iy| iy < h) else {
                for ox in 0..ow {
                    zero_run(&mut out[ox * k + ky * run..][..run]);
                }
                continue;
            };
            for ox in (0..lo).chain(hi..ow) {
                let dst = &mut out[ox * k + ky * run..][..run];
                for kx in 0..g.kernel[1] {
                    let d = &mut dst[kx * c..][..c];
                    match g.tap(oy, ox, ky, kx) {
                        Some((iy, ix)) => copy_run(d, &xs[(iy * w + ix) * c..][..c]),
                        None => zero_run(d),
                    }
                }
            }
            if lo < hi {
                let ix0 = lo * g.strides[1] - g.pad[1];
                let src = &xs[(iy * w + ix0) * c..];
                for (i, ox) in (lo..hi).enumerate() {
                    copy_run(&mut out[ox * k + ky * run..][..run], &src[i * step..][..run]);
                }
            }
        }
    }
}

/// The gradient of the input from the gradient `col` of the im2col matrix of output
/// rows `rows` (counted as in [`im2col_range`]), added into `dx`: each input value
/// adds its copies' gradients in `(oy, ox)` order, so pieces of rows taken in order
/// give the bits of the whole.
#[inline(always)]
fn col2im(g: &Geom, col: &[f32], rows: Range<usize>, dx: &mut [f32]) {
    let [h, w, c] = g.input;
    let [oh, ow, _] = g.output;
    let (k, run) = (g.col_len(), g.kernel[1] * c);
    for (r, src_rows) in rows.zip(col.chunks_exact(ow * k)) {
        let (s, oy) = (r / oh, r % oh);
        let xs = &mut dx[s * g.in_size()..(s + 1) * g.in_size()];
        for ox in 0..ow {
            let row = &src_rows[ox * k..][..k];
            let full = full_row(g, ox);
            for ky in 0..g.kernel[0] {
                let src = &row[ky * run..][..run];
                let Some(iy) = (oy * g.strides[0] + ky).checked_sub(g.pad[0]).filter(|&iy| iy < h) else {
                    continue;
                };
                if let Some(ix0) = full {
                    xs[(iy * w + ix0) * c..][..run].iter_mut().zip(src).for_each(|(a, b)| *a += b);
                    continue;
                }
                for kx in 0..g.kernel[1] {
                    if let Some((iy, ix)) = g.tap(oy, ox, ky, kx) {
                        xs[(iy * w + ix) * c..][..c].iter_mut().zip(&src[kx * c..][..c]).for_each(|(a, b)| *a += b);
                    }
                }
            }
        }
    }
}

/// Output rows (counted as in [`im2col_range`]) whose im2col matrix is built at a
/// time: about 32 KiB of it, so that it is still in the first-level cache when the
/// products read it (the weight gradient's reads it once per block of its rows).
/// Neither pass keeps the matrix of the whole batch: writing it out and reading it
/// back cost more than building it twice (the backward pass builds it again from the
/// input, a ninth of its size for a 3×3 window).
fn piece_rows(g: &Geom) -> usize {
    ((8 << 10) / (g.output[1] * g.col_len()).max(1)).max(1)
}

/// Whether a convolution reads its windows straight from a zero-padded copy of each
/// sample instead of an im2col matrix: stride 1 (then kernel row `ky` of output
/// column `ox` is the run of `kw·c` padded values from column `ox`, the runs of one
/// output row advancing by `c`), and not pointwise (whose input is its own matrix).
/// The products see the same values in the same order as from the im2col matrix (the
/// padding's zeros included), so the same bits.
fn direct(g: &Geom) -> bool {
    g.strides == [1, 1] && !g.is_pointwise()
}

/// Rows and columns of the padded sample: those the windows reach.
fn padded_dims(g: &Geom) -> (usize, usize) {
    (g.output[0] - 1 + g.kernel[0], g.output[1] - 1 + g.kernel[1])
}

/// One sample `xs` into `p` (`padded_dims` × `c`): input `(iy, ix)` at `(iy + top,
/// ix + left)`, zeros elsewhere (inputs no window reaches are left out).
fn pad_sample(g: &Geom, xs: &[f32], p: &mut [f32]) {
    let [h, w, c] = g.input;
    let (hp, wp) = padded_dims(g);
    let [top, left] = g.pad;
    p.fill(0.0);
    let cols = w.min(wp.saturating_sub(left));
    for iy in 0..h.min(hp.saturating_sub(top)) {
        p[((iy + top) * wp + left) * c..][..cols * c].copy_from_slice(&xs[iy * w * c..][..cols * c]);
    }
}

/// Convolution as im2col + GEMM (or straight from the padded input, see [`direct`]);
/// also dense layers (a 1×1 "image").
fn conv_forward(g: &Geom, w: &[f32], bias: Option<&[f32]>, act: Act, x: &[f32], n: usize) -> (Vec<f32>, Cache) {
    conv_forward_as(g, w, bias, act, x, n, direct(g))
}

/// [`conv_forward`], straight from the padded input when `direct` (stride 1 only).
pub(super) fn conv_forward_as(
    g: &Geom,
    w: &[f32],
    bias: Option<&[f32]>,
    act: Act,
    x: &[f32],
    n: usize,
    direct: bool,
) -> (Vec<f32>, Cache) {
    let (pix, k, cout) = (g.out_pixels(), g.col_len(), g.output[2]);
    let cs = part(n);
    // Written in full below (the product does not read its output).
    let mut y = pool::take(n * pix * cout);
    // Bias and ReLU are applied as the product's values are stored; other activations
    // run after it, in this part's task.
    let then = Then { bias, relu: act == Act::Relu, ..Then::default() };
    let finish = |yc: &mut [f32]| {
        if act != Act::Relu {
            wide(
                #[inline(always)]
                || act_serial(act, yc),
            )
        }
    };
    if g.is_pointwise() {
        y.par_chunks_mut(cs * pix * cout).zip(x.par_chunks(cs * g.in_size())).for_each(|(yc, xc)| {
            let m = yc.len() / cout;
            sgemm_then(View::new(xc, m, k), View::new(w, k, cout), then, yc);
            finish(yc);
        });
        return (y, Cache::Conv);
    }
    if direct {
        assert_eq!(g.strides, [1, 1], "direct convolution at stride 1");
        // One output row at a time, one product per kernel row, each going on from
        // the last (`onto`); bias and ReLU after the last.
        let ((hp, wp), c, ow) = (padded_dims(g), g.input[2], g.output[1]);
        let run = g.kernel[1] * c;
        y.par_chunks_mut(cs * pix * cout).zip(x.par_chunks(cs * g.in_size())).for_each(|(yc, xc)| {
            let mut p = pool::take(hp * wp * c);
            for (ys, xs) in yc.chunks_mut(pix * cout).zip(xc.chunks(g.in_size())) {
                pad_sample(g, xs, &mut p);
                for (oy, yrow) in ys.chunks_mut(ow * cout).enumerate() {
                    for ky in 0..g.kernel[0] {
                        let a = View::strided(&p[(oy + ky) * wp * c..], ow, run, c, 1);
                        let b = View::new(&w[ky * run * cout..], run, cout);
                        let last = ky + 1 == g.kernel[0];
                        let t =
                            if last { Then { onto: ky > 0, ..then } } else { Then { onto: ky > 0, ..Then::default() } };
                        sgemm_then(a, b, t, yrow);
                    }
                    finish(yrow);
                }
            }
            pool::give(p);
        });
        return (y, Cache::Conv);
    }
    // Each output row is its own product, so cutting the rows changes no bit.
    let (ow, piece) = (g.output[1], piece_rows(g));
    y.par_chunks_mut(cs * pix * cout).zip(x.par_chunks(cs * g.in_size())).for_each(|(yc, xc)| {
        let rows = xc.len() / g.in_size() * g.output[0];
        let mut col = pool::take(piece.min(rows) * ow * k);
        for (q, yq) in yc.chunks_mut(piece * ow * cout).enumerate() {
            let r0 = q * piece;
            let mq = yq.len() / cout;
            let cq = &mut col[..mq * k];
            im2col_range(g, xc, r0..r0 + mq / ow, cq);
            sgemm_then(View::new(cq, mq, k), View::new(w, k, cout), then, yq);
            finish(yq);
        }
        pool::give(col);
    });
    (y, Cache::Conv)
}

type Part = (Vec<f32>, Vec<f32>);
type Gradients = (Vec<f32>, Option<Vec<f32>>, Option<Vec<f32>>);

/// Sums the parts' weight and bias gradients in part order (so the result does not
/// depend on the thread count).
fn reduce_parts(parts: Vec<Part>, weights: usize, bias: Option<usize>, dx: Option<Vec<f32>>) -> Gradients {
    let mut dw = vec![0.0; weights];
    let mut db = vec![0.0; bias.unwrap_or(0)];
    for (pw, pb) in parts {
        dw.iter_mut().zip(&pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(&pb).for_each(|(a, b)| *a += b);
    }
    (dw, bias.map(|_| db), dx)
}

/// Cuts `dx` (when there is one) into the parts' shares of `per_part` values, or
/// gives `parts` empty slots.
fn slots(dx: Option<&mut Vec<f32>>, per_part: usize, parts: usize) -> Vec<Option<&mut [f32]>> {
    match dx {
        Some(dx) => dx.chunks_mut(per_part.max(1)).map(Some).collect(),
        None => (0..parts).map(|_| None).collect(),
    }
}

#[allow(clippy::too_many_arguments)]
/// Convolution (or dense) backward from the gradient `dy` at the activation's output
/// `y`: each part first takes its share of `dy` through the activation's derivative
/// (as [`act_backward`] would, in place), then the products.
fn conv_backward(
    g: &Geom,
    w: &[f32],
    has_bias: bool,
    x: &[f32],
    (act, y, dy): (Act, &[f32], &mut [f32]),
    n: usize,
    need_dx: bool,
) -> Gradients {
    conv_backward_as(g, w, has_bias, x, (act, y, dy), n, need_dx, direct(g))
}

/// [`conv_backward`], the weight gradient straight from the padded input when
/// `direct` (stride 1 only).
#[allow(clippy::too_many_arguments)]
pub(super) fn conv_backward_as(
    g: &Geom,
    w: &[f32],
    has_bias: bool,
    x: &[f32],
    (act, y, dy): (Act, &[f32], &mut [f32]),
    n: usize,
    need_dx: bool,
    direct: bool,
) -> Gradients {
    assert!(!direct || g.strides == [1, 1], "direct convolution at stride 1");
    let (pix, k, cout) = (g.out_pixels(), g.col_len(), g.output[2]);
    let cs = part(n);
    let pointwise = g.is_pointwise();
    let mut dx = need_dx.then(|| pool::take(n * g.in_size()));
    // The input gradient's `b` is the weight matrix transposed (`cout × k`): laid out
    // once here, not by the product in every part.
    let wt: Vec<f32> =
        if need_dx { (0..cout).flat_map(|o| (0..k).map(move |i| w[i * cout + o])).collect() } else { Vec::new() };
    let chunks = dy.chunks(cs * pix * cout).len();
    let parts: Vec<Part> = dy
        .par_chunks_mut(cs * pix * cout)
        .zip(y.par_chunks(cs * pix * cout))
        .zip(slots(dx.as_mut(), cs * g.in_size(), chunks))
        .enumerate()
        .map(|(p, ((dc, yc), dxp))| {
            if !matches!(act, Act::None | Act::Softmax) {
                wide(
                    #[inline(always)]
                    || {
                        with_act(
                            act,
                            #[inline(always)]
                            |act| dc.iter_mut().zip(yc).for_each(|(d, &v)| *d = act_grad(act, v, *d)),
                        )
                    },
                );
            }
            let dc = &*dc;
            let m = dc.len() / cout;
            let xc = &x[p * cs * g.in_size()..][..m / pix * g.in_size()];
            let mut dw = vec![0.0; k * cout];
            let mut db = vec![0.0; if has_bias { cout } else { 0 }];
            if has_bias {
                // Row after row, per channel (in blocks that stay in registers).
                wide(
                    #[inline(always)]
                    || {
                        by_blocks!(cout, |ch, N| {
                            let mut acc = [0.0f32; N];
                            for row in dc.chunks_exact(cout) {
                                let r: &[f32; N] = row[ch..][..N].try_into().expect("lanes");
                                for l in 0..N {
                                    acc[l] += r[l];
                                }
                            }
                            db[ch..][..N].copy_from_slice(&acc);
                        })
                    },
                );
            }
            if pointwise {
                sgemm(View::transposed(xc, m, k), View::new(dc, m, cout), &mut dw);
                if let Some(dxp) = dxp {
                    // The input gradient is the column gradient itself.
                    sgemm(View::new(dc, m, cout), View::new(&wt, cout, k), dxp);
                }
                return (dw, db);
            }
            // The im2col matrix again, a few rows at a time: the weight gradient's
            // chains go on from one piece of rows to the next (`sgemm_onto`), so they
            // have the bits of one product over the part; each input gradient row is
            // its own product, and `col2im` adds in row order.
            let (ow, piece) = (g.output[1], piece_rows(g));
            if direct {
                // The weight gradient's chains over the part's output pixels in order,
                // one product per output row and kernel row (its `kw·c` rows of `dw`).
                let ((hp, wp), c) = (padded_dims(g), g.input[2]);
                let run = g.kernel[1] * c;
                let mut p = pool::take(hp * wp * c);
                for (xs, ds) in xc.chunks(g.in_size()).zip(dc.chunks(pix * cout)) {
                    pad_sample(g, xs, &mut p);
                    for (oy, drow) in ds.chunks(ow * cout).enumerate() {
                        for ky in 0..g.kernel[0] {
                            let a = View::strided(&p[(oy + ky) * wp * c..], run, ow, 1, c);
                            sgemm_onto(a, View::new(drow, ow, cout), &mut dw[ky * run * cout..][..run * cout]);
                        }
                    }
                }
                pool::give(p);
            }
            let mut col = pool::take(if direct { 0 } else { piece.min(m / ow) * ow * k });
            let mut dcol = pool::take(if dxp.is_some() { piece.min(m / ow) * ow * k } else { 0 });
            let mut dxp = dxp;
            if let Some(dxp) = dxp.as_deref_mut() {
                dxp.fill(0.0);
            }
            for (q, dq) in dc.chunks(piece * ow * cout).enumerate() {
                let mq = dq.len() / cout;
                let rows = q * piece..q * piece + mq / ow;
                if !direct {
                    let cq = &mut col[..mq * k];
                    im2col_range(g, xc, rows.clone(), cq);
                    sgemm_onto(View::transposed(cq, mq, k), View::new(dq, mq, cout), &mut dw);
                }
                if let Some(dxp) = dxp.as_deref_mut() {
                    let dcq = &mut dcol[..mq * k];
                    sgemm(View::new(dq, mq, cout), View::new(&wt, cout, k), dcq);
                    wide(
                        #[inline(always)]
                        || col2im(g, dcq, rows, dxp),
                    );
                }
            }
            pool::give(col);
            pool::give(dcol);
            (dw, db)
        })
        .collect();
    reduce_parts(parts, k * cout, has_bias.then_some(cout), dx)
}

/// The output columns `ox0..ox1` whose kernel column `kx` lands inside the input.
#[inline]
fn valid_cols(g: &Geom, kx: usize) -> (usize, usize) {
    let (s, pad, w) = (g.strides[1], g.pad[1], g.input[1]);
    let ox0 = pad.saturating_sub(kx).div_ceil(s);
    // ix = ox·s + kx − pad < w  ⇔  ox·s < w + pad − kx.
    let ox1 = (w + pad).checked_sub(kx).map_or(0, |lim| lim.div_ceil(s)).min(g.output[1]);
    (ox0, ox1.max(ox0))
}

/// `lanes` values of `s` from `at`, as an array (so that loops over them vectorize).
#[inline(always)]
fn lanes<const N: usize>(s: &[f32], at: usize) -> &[f32; N] {
    s[at..][..N].try_into().expect("lanes")
}

/// [`lanes`], writable.
#[inline(always)]
fn lanes_mut<const N: usize>(s: &mut [f32], at: usize) -> &mut [f32; N] {
    (&mut s[at..][..N]).try_into().expect("lanes")
}

/// `act` on one value, as [`act_serial`] computes it.
#[inline(always)]
fn act_value(act: Act, v: f32) -> f32 {
    match act {
        Act::Relu => v.max(0.0),
        Act::Relu6 => v.clamp(0.0, 6.0),
        Act::Softmax | Act::None => v,
    }
}

/// The kernel taps along `axis` (0: rows, 1: columns) of output row or column `o`
/// that land inside the input: a range, as the inside of the input is one.
fn tap_range(g: &Geom, axis: usize, o: usize) -> Range<usize> {
    let (at, pad, len) = (o * g.strides[axis], g.pad[axis], g.input[axis]);
    let lo = pad.saturating_sub(at).min(g.kernel[axis]);
    let hi = (len + pad).saturating_sub(at).min(g.kernel[axis]);
    lo..hi.max(lo)
}

/// For each input row or column `i` along `axis`, the outputs whose windows reach it
/// and the tap they reach it with, `(o, k)`, in increasing `o` (rows; then each row's
/// taps reach `i` once) or increasing `k` (columns): the order in which the input's
/// gradient took its terms when it was added tap after tap over the output.
fn reached_by(g: &Geom, axis: usize, increasing_tap: bool) -> Vec<Vec<(usize, usize)>> {
    let mut by_input = vec![Vec::new(); g.input[axis]];
    for o in 0..g.output[axis] {
        for k in tap_range(g, axis, o) {
            by_input[o * g.strides[axis] + k - g.pad[axis]].push((o, k));
        }
    }
    if increasing_tap {
        by_input.iter_mut().for_each(|v| v.sort_by_key(|&(_, k)| k));
    }
    by_input
}

/// `out[i] = act(init[i] + Σ src[s + i] · wt[w + i])` over the terms `(s, w)` in
/// order (from 0 without `init`), the sums held in registers.
#[inline(always)]
fn mac_run(out: &mut [f32], init: Option<&[f32]>, terms: &[(usize, usize)], src: &[f32], wt: &[f32], act: Act) {
    by_blocks!(out.len(), |i, N| {
        let mut acc = match init {
            Some(b) => *lanes::<N>(b, i),
            None => [0.0; N],
        };
        for &(so, wo) in terms {
            let (xv, wv) = (*lanes::<N>(src, so + i), *lanes::<N>(wt, wo + i));
            for l in 0..N {
                acc[l] += xv[l] * wv[l];
            }
        }
        let o = lanes_mut::<N>(out, i);
        for l in 0..N {
            o[l] = act_value(act, acc[l]);
        }
    })
}

/// `acc[i] += a[i] · b[i]` (`a` and `b` at least as long as `acc`), in blocks of 16
/// copied to registers (the stores cannot alias the loads), then one value at a time.
#[inline(always)]
fn mac_into(acc: &mut [f32], a: &[f32], b: &[f32]) {
    let len = acc.len();
    let (a, b) = (&a[..len], &b[..len]);
    let mut blocks = acc.chunks_exact_mut(16);
    let (mut ab, mut bb) = (a.chunks_exact(16), b.chunks_exact(16));
    for ((o, x), y) in (&mut blocks).zip(&mut ab).zip(&mut bb) {
        let o: &mut [f32; 16] = o.try_into().expect("lanes");
        let (x, y, mut v): ([f32; 16], [f32; 16], [f32; 16]) =
            (x.try_into().expect("lanes"), y.try_into().expect("lanes"), *o);
        for l in 0..16 {
            v[l] += x[l] * y[l];
        }
        *o = v;
        // Keeps the loop over blocks a loop (else it was vectorized across blocks).
        std::hint::black_box(());
    }
    for ((o, x), y) in blocks.into_remainder().iter_mut().zip(ab.remainder()).zip(bb.remainder()) {
        *o += x * y;
    }
}

/// Each tap's `c` weights repeated over `len` values (`len` a multiple of `c`).
fn tap_tiles(w: &[f32], taps: usize, c: usize, len: usize) -> Vec<f32> {
    (0..taps).flat_map(|t| w[t * c..][..c].iter().copied().cycle().take(len)).collect()
}

/// The run `lo..hi` of output columns whose window lies inside the input (each of
/// `cols` the full `0..kw`), empty if none.
fn full_run(cols: &[Range<usize>], kw: usize) -> Range<usize> {
    let lo = cols.iter().position(|r| *r == (0..kw)).unwrap_or(cols.len());
    let hi = lo + cols[lo..].iter().take_while(|r| **r == (0..kw)).count();
    lo..hi
}

/// Depthwise convolution with multiplier 1, one output pixel at a time, its channels
/// in blocks held in registers (16, 8, then single channels) in the AVX-512 build when
/// there is one: each value starts from the bias (or 0), adds its window's taps inside
/// the input in `(ky, kx)` order, then goes through `act` before it is stored, as
/// before (see [`depthwise_forward_general`]), so the same bits; the output is written
/// once.
pub(super) fn depthwise_forward_m1(
    g: &Geom,
    w: &[f32],
    bias: Option<&[f32]>,
    act: Act,
    x: &[f32],
    n: usize,
) -> Vec<f32> {
    let [_, wd, c] = g.input;
    let [oh, ow, _] = g.output;
    let out_size = oh * ow * c;
    let (kw, [sy, sx], [py, px]) = (g.kernel[1], g.strides, g.pad);
    let rows: Vec<Range<usize>> = (0..oh).map(|oy| tap_range(g, 0, oy)).collect();
    let cols: Vec<Range<usize>> = (0..ow).map(|ox| tap_range(g, 1, ox)).collect();
    // At stride 1, the output columns whose windows lie inside the input are one run
    // per row, each tap a shifted run of the input row: computed along the row, in
    // blocks of 16 values whatever the channel count, against the weights repeated
    // along the row (the same values and order of additions per value).
    let row = ow * c;
    let run = if sx == 1 { full_run(&cols, kw) } else { 0..0 };
    let tiles = if run.is_empty() { Vec::new() } else { tap_tiles(w, g.kernel[0] * kw, c, row) };
    let bias_row = bias.map(|b| tiled(b, row));
    let mut y = pool::take(n * out_size);
    y.par_chunks_mut(out_size).zip(x.par_chunks(g.in_size())).for_each(|(ys, xs)| {
        wide_act(
            act,
            #[inline(always)]
            |act| {
                let mut terms = Vec::with_capacity(g.kernel[0] * kw);
                for (oy, ky_r) in rows.iter().enumerate() {
                    if !run.is_empty() {
                        terms.clear();
                        for ky in ky_r.clone() {
                            let iy = oy * sy + ky - py;
                            for kx in 0..kw {
                                terms.push(((iy * wd + run.start + kx - px) * c, (ky * kw + kx) * row + run.start * c));
                            }
                        }
                        let out = &mut ys[oy * row + run.start * c..][..run.len() * c];
                        let init = bias_row.as_deref().map(|b| &b[run.start * c..]);
                        mac_run(out, init, &terms, xs, &tiles, act);
                    }
                    for (ox, kx_r) in cols.iter().enumerate() {
                        if run.contains(&ox) {
                            continue;
                        }
                        let o = (oy * ow + ox) * c;
                        by_blocks!(c, |ch, N| {
                            let mut acc = match bias {
                                Some(b) => *lanes::<N>(b, ch),
                                None => [0.0; N],
                            };
                            for ky in ky_r.clone() {
                                let iy = oy * sy + ky - py;
                                for kx in kx_r.clone() {
                                    let ix = ox * sx + kx - px;
                                    let xv = lanes::<N>(xs, (iy * wd + ix) * c + ch);
                                    let wv = lanes::<N>(w, (ky * kw + kx) * c + ch);
                                    for l in 0..N {
                                        acc[l] += xv[l] * wv[l];
                                    }
                                }
                            }
                            let out = lanes_mut::<N>(ys, o + ch);
                            for l in 0..N {
                                out[l] = act_value(act, acc[l]);
                            }
                        })
                    }
                }
            },
        )
    });
    y
}

/// Depthwise backward with multiplier 1, in the AVX-512 build when there is one. The
/// weight and bias gradients accumulate in row-wide tiles (one lane per tap, output
/// column and channel; each lane takes one term per output row, rows in order) folded
/// at the end of each part in a fixed order, as before. The input gradient is
/// gathered: each input pixel adds, in registers, the terms of the output pixels
/// whose windows reach it in the order they were once scattered onto it (output row,
/// then tap column), from 0, and is written once.
pub(super) fn depthwise_backward_m1(
    g: &Geom,
    w: &[f32],
    has_bias: bool,
    x: &[f32],
    dpre: &[f32],
    n: usize,
    need_dx: bool,
) -> Gradients {
    let [_, wd, c] = g.input;
    let [oh, ow, _] = g.output;
    let (row, out_size) = (ow * c, oh * ow * c);
    let (kw, [sy, sx], [py, px]) = (g.kernel[1], g.strides, g.pad);
    let taps = g.kernel[0] * kw;
    let rows: Vec<Range<usize>> = (0..oh).map(|oy| tap_range(g, 0, oy)).collect();
    let (in_rows, in_cols) = (reached_by(g, 0, false), reached_by(g, 1, true));
    // At stride 1, the input columns every tap column reaches are one run per row,
    // gathered along the row as in the forward pass (see [`depthwise_forward_m1`]).
    let in_run = if sx == 1 && need_dx {
        let lo = in_cols.iter().position(|v| v.len() == kw).unwrap_or(wd);
        lo..lo + in_cols[lo..].iter().take_while(|v| v.len() == kw).count()
    } else {
        0..0
    };
    let tile_len = ow.max(wd) * c;
    let tiles = if in_run.is_empty() { Vec::new() } else { tap_tiles(w, taps, c, tile_len) };
    let cs = part(n);
    let mut dx_all = need_dx.then(|| pool::take(n * g.in_size()));
    let chunks = x.chunks(cs * g.in_size()).len();
    let parts: Vec<Part> = dpre
        .par_chunks(cs * out_size)
        .zip(x.par_chunks(cs * g.in_size()))
        .zip(slots(dx_all.as_mut(), cs * g.in_size(), chunks))
        .map(|((dc, xc), dxp)| {
            let samples = xc.len() / g.in_size();
            // On a 64-byte boundary: a block of 16 lanes read and written back across
            // two cache lines took twice as long as the whole pass in narrow vectors.
            let mut tile_buf = vec![0.0f32; taps * row + 16];
            let skip = tile_buf.as_ptr().align_offset(64).min(16);
            let dw_tile = &mut tile_buf[skip..][..taps * row];
            let mut db_tile = vec![0.0; if has_bias { row } else { 0 }];
            let mut dxp = dxp;
            let mut terms = Vec::with_capacity(taps);
            for s in 0..samples {
                let xs = &xc[s * g.in_size()..][..g.in_size()];
                let ds = &dc[s * out_size..][..out_size];
                // The weight and bias gradients: in the AVX-512 build at stride 1 (long
                // runs); at stride 2 in the baseline build, which measured twice as
                // fast for these blocks of a pixel's channels.
                wide_if(
                    sx == 1,
                    #[inline(always)]
                    || {
                        for (oy, ky_r) in rows.iter().enumerate() {
                            let drow = &ds[oy * row..][..row];
                            if has_bias {
                                db_tile.iter_mut().zip(drow).for_each(|(a, b)| *a += b);
                            }
                            for ky in ky_r.clone() {
                                let xrow = &xs[(oy * sy + ky - py) * wd * c..][..wd * c];
                                for kx in 0..kw {
                                    let acc = &mut dw_tile[(ky * kw + kx) * row..][..row];
                                    if sx == 1 {
                                        // The valid output columns are one run of `x · d`.
                                        let (ox0, ox1) = valid_cols(g, kx);
                                        if ox0 == ox1 {
                                            continue;
                                        }
                                        let (len, ix0) = ((ox1 - ox0) * c, ox0 + kx - px);
                                        mac_into(
                                            &mut acc[ox0 * c..][..len],
                                            &xrow[ix0 * c..][..len],
                                            &drow[ox0 * c..][..len],
                                        );
                                        continue;
                                    }
                                    let (ox0, ox1) = valid_cols(g, kx);
                                    for ox in ox0..ox1 {
                                        let ix = ox * sx + kx - px;
                                        by_blocks!(c, |ch, N| {
                                            // Copies in registers: the stores cannot
                                            // alias the loads, so the lanes vectorize.
                                            let a = lanes_mut::<N>(acc, ox * c + ch);
                                            let (xv, d, mut av) =
                                                (*lanes::<N>(xrow, ix * c + ch), *lanes::<N>(drow, ox * c + ch), *a);
                                            for l in 0..N {
                                                av[l] += xv[l] * d[l];
                                            }
                                            *a = av;
                                        });
                                    }
                                }
                            }
                        }
                    },
                );
                let Some(dx) = dxp.as_deref_mut() else { continue };
                wide(
                    #[inline(always)]
                    || {
                        let dxs = &mut dx[s * g.in_size()..][..g.in_size()];
                        for (iy, by_row) in in_rows.iter().enumerate() {
                            if !in_run.is_empty() {
                                terms.clear();
                                for &(oy, ky) in by_row {
                                    for kx in 0..kw {
                                        terms.push((
                                            oy * row + (in_run.start + px - kx) * c,
                                            (ky * kw + kx) * tile_len + in_run.start * c,
                                        ));
                                    }
                                }
                                let out = &mut dxs[(iy * wd + in_run.start) * c..][..in_run.len() * c];
                                mac_run(out, None, &terms, ds, &tiles, Act::None);
                            }
                            for (ix, by_col) in in_cols.iter().enumerate() {
                                if in_run.contains(&ix) {
                                    continue;
                                }
                                let at = (iy * wd + ix) * c;
                                by_blocks!(c, |ch, N| {
                                    let mut acc = [0.0f32; N];
                                    for &(oy, ky) in by_row {
                                        for &(ox, kx) in by_col {
                                            let d = lanes::<N>(ds, (oy * ow + ox) * c + ch);
                                            let wv = lanes::<N>(w, (ky * kw + kx) * c + ch);
                                            for l in 0..N {
                                                acc[l] += d[l] * wv[l];
                                            }
                                        }
                                    }
                                    *lanes_mut::<N>(dxs, at + ch) = acc;
                                })
                            }
                        }
                    },
                );
            }
            let fold = |tile: &[f32]| -> Vec<f32> {
                let mut out = vec![0.0; c];
                for lane in tile.chunks_exact(c) {
                    out.iter_mut().zip(lane).for_each(|(a, b)| *a += b);
                }
                out
            };
            let dw: Vec<f32> = dw_tile.chunks_exact(row).flat_map(fold).collect();
            let db = if has_bias { fold(&db_tile) } else { Vec::new() };
            (dw, db)
        })
        .collect();
    reduce_parts(parts, w.len(), has_bias.then_some(c), dx_all)
}

/// `o[i] += a[i] · b[i]` (`a` and `b` at least as long as `o`).
#[cfg(test)]
#[inline(always)]
fn add_products(o: &mut [f32], a: &[f32], b: &[f32]) {
    for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
        *o += a * b;
    }
}

/// Each tap's `c` weights repeated across an output row (`kh·kw` rows of `ow·c`), so
/// that a stride-1 row of taps is one long element-wise product.
#[cfg(test)]
fn tiled_taps(g: &Geom, w: &[f32]) -> Vec<f32> {
    let [_, ow, c] = g.output;
    let taps = g.kernel[0] * g.kernel[1];
    let mut t = Vec::with_capacity(taps * ow * c);
    for tap in 0..taps {
        for _ in 0..ow {
            t.extend_from_slice(&w[tap * c..][..c]);
        }
    }
    t
}

/// Depthwise convolution with multiplier 1 as it was before [`depthwise_forward_m1`]
/// (kept for the tests, which compare the two to the bit), one output row at a time: for each tap,
/// the valid run of output columns gets `x · w` as one contiguous element-wise pass
/// (stride 1) or one `c`-wide pass per column. Taps add in `(ky, kx)` order onto the
/// bias, as in [`depthwise_forward_general`], so the result is the same to the bit.
#[cfg(test)]
pub(super) fn depthwise_forward_runs(
    g: &Geom,
    w: &[f32],
    bias: Option<&[f32]>,
    act: Act,
    x: &[f32],
    n: usize,
) -> Vec<f32> {
    let [h, wd, c] = g.input;
    let [oh, ow, _] = g.output;
    let (row, out_size) = (ow * c, oh * ow * c);
    let tiles = tiled_taps(g, w);
    let mut y = pool::take(n * out_size);
    y.par_chunks_mut(out_size).zip(x.par_chunks(g.in_size())).for_each(|(ys, xs)| {
        // Baseline build (rows of a few channels, see above).
        for (oy, yrow) in ys.chunks_exact_mut(row).enumerate() {
            match bias {
                Some(b) => yrow.chunks_exact_mut(c).for_each(|o| o.copy_from_slice(b)),
                None => yrow.fill(0.0),
            }
            for ky in 0..g.kernel[0] {
                let Some(iy) = (oy * g.strides[0] + ky).checked_sub(g.pad[0]).filter(|&iy| iy < h) else {
                    continue;
                };
                let xrow = &xs[iy * wd * c..][..wd * c];
                for kx in 0..g.kernel[1] {
                    let tap = ky * g.kernel[1] + kx;
                    let (ox0, ox1) = valid_cols(g, kx);
                    if ox0 == ox1 {
                        continue;
                    }
                    let ix0 = ox0 * g.strides[1] + kx - g.pad[1];
                    if g.strides[1] == 1 {
                        let len = (ox1 - ox0) * c;
                        let wt = &tiles[tap * row..][..len];
                        add_products(&mut yrow[ox0 * c..][..len], &xrow[ix0 * c..][..len], wt);
                    } else {
                        let wk = &w[tap * c..][..c];
                        for (i, ox) in (ox0..ox1).enumerate() {
                            let xin = &xrow[(ix0 + i * g.strides[1]) * c..][..c];
                            add_products(&mut yrow[ox * c..][..c], xin, wk);
                        }
                    }
                }
            }
        }
        act_serial(act, ys);
    });
    y
}

/// Depthwise backward with multiplier 1 as it was before [`depthwise_backward_m1`]
/// (kept for the tests), laid out like [`depthwise_forward_runs`]: the
/// input gradient as contiguous runs, the weight and bias gradients accumulated in
/// row-wide tiles (one lane per output column and channel) folded at the end of each
/// part, in a fixed order.
#[cfg(test)]
pub(super) fn depthwise_backward_runs(
    g: &Geom,
    w: &[f32],
    has_bias: bool,
    x: &[f32],
    dpre: &[f32],
    n: usize,
    need_dx: bool,
) -> Gradients {
    let [h, wd, c] = g.input;
    let [oh, ow, _] = g.output;
    let (row, out_size) = (ow * c, oh * ow * c);
    let taps = g.kernel[0] * g.kernel[1];
    let tiles = tiled_taps(g, w);
    let cs = part(n);
    let mut dx_all = need_dx.then(|| pool::take(n * g.in_size()));
    let chunks = x.chunks(cs * g.in_size()).len();
    let parts: Vec<Part> = dpre
        .par_chunks(cs * out_size)
        .zip(x.par_chunks(cs * g.in_size()))
        .zip(slots(dx_all.as_mut(), cs * g.in_size(), chunks))
        .map(|((dc, xc), dxp)| {
            // Baseline build (rows of a few channels, see above).
            let samples = xc.len() / g.in_size();
            let mut dw_tile = vec![0.0; taps * row];
            let mut db_tile = vec![0.0; if has_bias { row } else { 0 }];
            let dx = dxp.unwrap_or_default();
            dx.fill(0.0);
            for s in 0..samples {
                let xs = &xc[s * g.in_size()..][..g.in_size()];
                for (oy, drow) in dc[s * out_size..][..out_size].chunks_exact(row).enumerate() {
                    if has_bias {
                        db_tile.iter_mut().zip(drow).for_each(|(a, b)| *a += b);
                    }
                    for ky in 0..g.kernel[0] {
                        let Some(iy) = (oy * g.strides[0] + ky).checked_sub(g.pad[0]).filter(|&iy| iy < h) else {
                            continue;
                        };
                        let at = (s * h + iy) * wd * c;
                        let xrow = &xs[iy * wd * c..][..wd * c];
                        for kx in 0..g.kernel[1] {
                            let tap = ky * g.kernel[1] + kx;
                            let (ox0, ox1) = valid_cols(g, kx);
                            if ox0 == ox1 {
                                continue;
                            }
                            let ix0 = ox0 * g.strides[1] + kx - g.pad[1];
                            let acc = &mut dw_tile[tap * row..][..row];
                            if g.strides[1] == 1 {
                                let len = (ox1 - ox0) * c;
                                let (d, xr) = (&drow[ox0 * c..][..len], &xrow[ix0 * c..][..len]);
                                add_products(&mut acc[ox0 * c..][..len], xr, d);
                                if need_dx {
                                    let wt = &tiles[tap * row..][..len];
                                    add_products(&mut dx[at + ix0 * c..][..len], d, wt);
                                }
                            } else {
                                let wk = &w[tap * c..][..c];
                                for (i, ox) in (ox0..ox1).enumerate() {
                                    let ix = ix0 + i * g.strides[1];
                                    let d = &drow[ox * c..][..c];
                                    add_products(&mut acc[ox * c..][..c], &xrow[ix * c..][..c], d);
                                    if need_dx {
                                        add_products(&mut dx[at + ix * c..][..c], d, wk);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let fold = |tile: &[f32]| -> Vec<f32> {
                let mut out = vec![0.0; c];
                for lane in tile.chunks_exact(c) {
                    out.iter_mut().zip(lane).for_each(|(a, b)| *a += b);
                }
                out
            };
            let dw: Vec<f32> = dw_tile.chunks_exact(row).flat_map(fold).collect();
            let db = if has_bias { fold(&db_tile) } else { Vec::new() };
            (dw, db)
        })
        .collect();
    reduce_parts(parts, w.len(), has_bias.then_some(c), dx_all)
}

pub(super) fn depthwise_forward_general(
    g: &Geom,
    m: usize,
    w: &[f32],
    bias: Option<&[f32]>,
    act: Act,
    x: &[f32],
    n: usize,
) -> Vec<f32> {
    let [_, wd, cin] = g.input;
    let [oh, ow, cout] = g.output;
    let out_size = oh * ow * cout;
    let mut y = pool::take(n * out_size);
    y.par_chunks_mut(out_size).zip(x.par_chunks(g.in_size())).for_each(|(ys, xs)| {
        for oy in 0..oh {
            for ox in 0..ow {
                let out = &mut ys[(oy * ow + ox) * cout..][..cout];
                match bias {
                    Some(b) => out.copy_from_slice(b),
                    None => out.fill(0.0),
                }
                for ky in 0..g.kernel[0] {
                    for kx in 0..g.kernel[1] {
                        let Some((iy, ix)) = g.tap(oy, ox, ky, kx) else { continue };
                        let xin = &xs[(iy * wd + ix) * cin..][..cin];
                        let wk = &w[(ky * g.kernel[1] + kx) * cout..][..cout];
                        for (c, &xv) in xin.iter().enumerate() {
                            for j in 0..m {
                                out[c * m + j] += xv * wk[c * m + j];
                            }
                        }
                    }
                }
                activate(act, out);
            }
        }
    });
    y
}

#[allow(clippy::too_many_arguments)]
pub(super) fn depthwise_backward_general(
    g: &Geom,
    m: usize,
    w: &[f32],
    has_bias: bool,
    x: &[f32],
    dpre: &[f32],
    n: usize,
    need_dx: bool,
) -> Gradients {
    let [_, wd, cin] = g.input;
    let [oh, ow, cout] = g.output;
    let out_size = oh * ow * cout;
    let cs = part(n);
    let mut dx_all = need_dx.then(|| pool::take(n * g.in_size()));
    let chunks = x.chunks(cs * g.in_size()).len();
    let parts: Vec<Part> = dpre
        .par_chunks(cs * out_size)
        .zip(x.par_chunks(cs * g.in_size()))
        .zip(slots(dx_all.as_mut(), cs * g.in_size(), chunks))
        .map(|((dc, xc), dxp)| {
            let samples = xc.len() / g.in_size();
            let mut dw = vec![0.0; w.len()];
            let mut db = vec![0.0; if has_bias { cout } else { 0 }];
            let dx = dxp.unwrap_or_default();
            dx.fill(0.0);
            for s in 0..samples {
                let xs = &xc[s * g.in_size()..][..g.in_size()];
                for oy in 0..oh {
                    for ox in 0..ow {
                        let d = &dc[s * out_size + (oy * ow + ox) * cout..][..cout];
                        if has_bias {
                            db.iter_mut().zip(d).for_each(|(a, b)| *a += b);
                        }
                        for ky in 0..g.kernel[0] {
                            for kx in 0..g.kernel[1] {
                                let Some((iy, ix)) = g.tap(oy, ox, ky, kx) else { continue };
                                let at = (iy * wd + ix) * cin;
                                let tap = (ky * g.kernel[1] + kx) * cout;
                                for c in 0..cin {
                                    let xv = xs[at + c];
                                    let mut sum = 0.0;
                                    for j in 0..m {
                                        let o = c * m + j;
                                        dw[tap + o] += xv * d[o];
                                        sum += w[tap + o] * d[o];
                                    }
                                    if need_dx {
                                        dx[s * g.in_size() + at + c] += sum;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (dw, db)
        })
        .collect();
    reduce_parts(parts, w.len(), has_bias.then_some(cout), dx_all)
}

/// The input offsets of the kernel taps `0..k` along `axis` (0: rows, 1: columns) of
/// output row or column `o` that lie inside the input, each coordinate times `scale`.
fn inside(g: &Geom, axis: usize, o: usize, scale: usize, into: &mut Vec<usize>) {
    into.clear();
    for t in 0..g.kernel[axis] {
        if let Some(i) = (o * g.strides[axis] + t).checked_sub(g.pad[axis]).filter(|&i| i < g.input[axis]) {
            into.push(i * scale);
        }
    }
}

/// The windows of one sample's output pixels, worked out once per layer and pass (not
/// per sample): pixel `i` (in `(oy, ox)` order) has the input offsets
/// `taps[starts[i]..starts[i + 1]]` (`(iy·w + ix)·c`) of its window's taps inside the
/// input, in `(ky, kx)` order (those [`Geom::tap`] finds).
struct Windows {
    starts: Vec<usize>,
    taps: Vec<usize>,
    c: usize,
}

impl Windows {
    fn new(g: &Geom) -> Windows {
        let [_, w, c] = g.input;
        let [oh, ow, _] = g.output;
        let cols: Vec<Vec<usize>> = (0..ow)
            .map(|ox| {
                let mut v = Vec::new();
                inside(g, 1, ox, c, &mut v);
                v
            })
            .collect();
        let (mut rows, mut starts, mut taps) = (Vec::new(), vec![0], Vec::new());
        for oy in 0..oh {
            inside(g, 0, oy, w * c, &mut rows);
            for cx in &cols {
                for &ry in &rows {
                    taps.extend(cx.iter().map(|&x| ry + x));
                }
                starts.push(taps.len());
            }
        }
        Windows { starts, taps, c }
    }

    /// Calls `f(o, taps)` for each output pixel in `(oy, ox)` order: `o` is the offset
    /// of its values in the output (`(oy·ow + ox)·c`), `taps` its window's. Mark `f`
    /// `#[inline(always)]`.
    #[inline(always)]
    fn each(&self, mut f: impl FnMut(usize, &[usize])) {
        for (i, ends) in self.starts.windows(2).enumerate() {
            f(i * self.c, &self.taps[ends[0]..ends[1]]);
        }
    }
}

/// Pooling of channels `ch..ch + N` of one output pixel (values `yo`) over its
/// window's `taps`: each value starts from `init`, takes the taps in order through
/// `f`, and ends through `last`.
#[inline(always)]
fn pool_lanes<const N: usize>(
    xs: &[f32],
    taps: &[usize],
    yo: &mut [f32],
    ch: usize,
    init: f32,
    f: impl Fn(f32, f32) -> f32,
    last: impl Fn(f32) -> f32,
) {
    let mut acc = [init; N];
    for &at in taps {
        let xv: &[f32; N] = xs[at + ch..][..N].try_into().expect("lanes");
        for l in 0..N {
            acc[l] = f(acc[l], xv[l]);
        }
    }
    let yb: &mut [f32; N] = (&mut yo[ch..][..N]).try_into().expect("lanes");
    for (y, a) in yb.iter_mut().zip(acc) {
        *y = last(a);
    }
}

pub(super) fn pool_forward(g: &Geom, max: bool, x: &[f32], n: usize) -> (Vec<f32>, Cache) {
    let c = g.input[2];
    let out_size = g.out_pixels() * c;
    let mut y = pool::take(n * out_size);
    let windows = Windows::new(g);
    // One sample per task; each output value takes its window's taps in `(ky, kx)`
    // order (max from −∞, or a sum from 0 times 1/taps).
    y.par_chunks_mut(out_size).zip(x.par_chunks(g.in_size())).for_each(|(ys, xs)| {
        wide(
            #[inline(always)]
            || {
                windows.each(
                    #[inline(always)]
                    |o, taps| {
                        let yo = &mut ys[o..][..c];
                        if max {
                            by_blocks!(c, |ch, N| pool_lanes::<N>(
                                xs,
                                taps,
                                yo,
                                ch,
                                f32::NEG_INFINITY,
                                f32::max,
                                |v| v
                            ));
                        } else {
                            let inv = 1.0 / taps.len().max(1) as f32;
                            by_blocks!(c, |ch, N| pool_lanes::<N>(xs, taps, yo, ch, 0.0, |a, b| a + b, |v| v * inv));
                        }
                    },
                )
            },
        )
    });
    (y, Cache::None)
}

/// The gradient of channels `ch..ch + N` of one output pixel (values `ys`, gradients
/// `ds`) into `dxs` through its window's `taps`: tap after tap, `hit · d` is added
/// (`ADD`) or written onto 0 (`0 + hit · d`, the same bits when nothing else was
/// there), where `hit` is 1 for the first tap (in order) whose input equals the
/// maximum and 0 for the others (`open` is 1 until a tap took the gradient).
#[inline(always)]
fn unpool_lanes<const N: usize, const ADD: bool>(
    xs: &[f32],
    dxs: &mut [f32],
    taps: &[usize],
    ch: usize,
    ys: &[f32],
    ds: &[f32],
) {
    let yv: &[f32; N] = ys[ch..][..N].try_into().expect("lanes");
    let dv: &[f32; N] = ds[ch..][..N].try_into().expect("lanes");
    let mut open = [1.0f32; N];
    for &at in taps {
        let xv: &[f32; N] = xs[at + ch..][..N].try_into().expect("lanes");
        let dx: &mut [f32; N] = (&mut dxs[at + ch..][..N]).try_into().expect("lanes");
        // One pass per operation, each over whole vectors.
        let hit: [f32; N] = std::array::from_fn(|l| if xv[l] == yv[l] { open[l] } else { 0.0 });
        let old = if ADD { *dx } else { [0.0; N] };
        *dx = std::array::from_fn(|l| old[l] + hit[l] * dv[l]);
        open = std::array::from_fn(|l| open[l] - hit[l]);
    }
}

/// Max pooling backward: each output's gradient goes to the first input of its window
/// (in tap order) that holds the maximum.
pub(super) fn maxpool_backward(g: &Geom, x: &[f32], y: &[f32], dy: &[f32]) -> Vec<f32> {
    let c = g.input[2];
    let out_size = g.out_pixels() * c;
    // Windows that do not overlap write each input at most once: onto 0, not into a
    // cleared buffer; and when they tile the input, nothing is left to clear.
    let apart = g.strides[0] >= g.kernel[0] && g.strides[1] >= g.kernel[1];
    let tiled = g.strides == g.kernel
        && g.pad == [0, 0]
        && g.output[0] * g.kernel[0] == g.input[0]
        && g.output[1] * g.kernel[1] == g.input[1];
    let mut dx = pool::take(x.len());
    let windows = Windows::new(g);
    dx.par_chunks_mut(g.in_size())
        .zip(x.par_chunks(g.in_size()))
        .zip(y.par_chunks(out_size).zip(dy.par_chunks(out_size)))
        .for_each(|((dxs, xs), (ys, dys))| {
            if !tiled {
                dxs.fill(0.0);
            }
            wide(
                #[inline(always)]
                || {
                    windows.each(
                        #[inline(always)]
                        |o, taps| {
                            let (yo, dyo) = (&ys[o..][..c], &dys[o..][..c]);
                            if apart {
                                by_blocks!(c, |ch, N| unpool_lanes::<N, false>(xs, dxs, taps, ch, yo, dyo));
                            } else {
                                by_blocks!(c, |ch, N| unpool_lanes::<N, true>(xs, dxs, taps, ch, yo, dyo));
                            }
                        },
                    )
                },
            )
        });
    dx
}

fn avgpool_backward(g: &Geom, dy: &[f32], n: usize) -> Vec<f32> {
    let [_, w, c] = g.input;
    let [oh, ow, _] = g.output;
    let out_size = oh * ow * c;
    let mut dx = pool::zeroed(n * g.in_size());
    for s in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                let taps: Vec<(usize, usize)> = (0..g.kernel[0])
                    .flat_map(|ky| (0..g.kernel[1]).map(move |kx| (ky, kx)))
                    .filter_map(|(ky, kx)| g.tap(oy, ox, ky, kx))
                    .collect();
                let scale = 1.0 / taps.len().max(1) as f32;
                for ch in 0..c {
                    let d = dy[s * out_size + (oy * ow + ox) * c + ch] * scale;
                    for &(iy, ix) in &taps {
                        dx[s * g.in_size() + (iy * w + ix) * c + ch] += d;
                    }
                }
            }
        }
    }
    dx
}

/// Lanes of a batch-norm tile: whole rows of `c` channels, about 256 values, so the
/// per-channel passes run as long element-wise loops over `tile_len` values.
fn tile_len(c: usize) -> usize {
    (256 / c).max(1) * c
}

/// `v` repeated to `len` values.
fn tiled<T: Copy>(v: &[T], len: usize) -> Vec<T> {
    v.iter().copied().cycle().take(len).collect()
}

/// Values per part of a batch-norm pass: whole tiles, the rows cut into [`PARTS`]
/// (a function of the size only, so sums do not depend on the thread count).
fn bn_part(len: usize, c: usize) -> usize {
    let t = tile_len(c);
    (len.div_ceil(PARTS)).div_ceil(t).max(1) * t
}

/// Adds the lanes of `tile` into `c` per-channel values, lane after lane.
fn fold_tile<T: Copy + std::ops::AddAssign + Default>(tile: &[T], c: usize) -> Vec<T> {
    let mut out = vec![T::default(); c];
    for lane in tile.chunks_exact(c) {
        out.iter_mut().zip(lane).for_each(|(a, &b)| *a += b);
    }
    out
}

/// Per-channel sums over the rows of `x` (`c` channels a row), in f64: of `x` itself,
/// or of `(x − center)²` when `center` is given. Each part sums into a tile, the parts
/// add up in order.
fn channel_sums(x: &[f32], c: usize, center: Option<&[f64]>) -> Vec<f64> {
    let t = tile_len(c);
    let center = center.map(|m| tiled(m, t));
    let parts: Vec<Vec<f64>> = x
        .par_chunks(bn_part(x.len(), c))
        .map(|xp| {
            let mut acc = vec![0.0f64; t];
            wide(
                #[inline(always)]
                || {
                    for chunk in xp.chunks(t) {
                        match &center {
                            None => acc.iter_mut().zip(chunk).for_each(|(a, &v)| *a += f64::from(v)),
                            Some(m) => acc
                                .iter_mut()
                                .zip(chunk)
                                .zip(m)
                                .for_each(|((a, &v), &m)| *a += (f64::from(v) - m).powi(2)),
                        }
                    }
                },
            );
            fold_tile(&acc, c)
        })
        .collect();
    let mut sums = vec![0.0f64; c];
    for p in parts {
        sums.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
    sums
}

pub(super) fn batchnorm_forward(node: &Node, eps: f32, act: Act, x: &[f32], train: bool) -> (Vec<f32>, Cache) {
    let c = node.shape[2];
    let rows = x.len() / c;
    let [gamma, beta, moving_mean, moving_var] = [0, 1, 2, 3].map(|i| &node.params[i].data);
    let (mean, var) = if train {
        let mean: Vec<f64> = channel_sums(x, c, None).iter().map(|s| s / rows as f64).collect();
        let var: Vec<f32> = channel_sums(x, c, Some(&mean)).iter().map(|s| (s / rows as f64) as f32).collect();
        (mean.iter().map(|&m| m as f32).collect::<Vec<f32>>(), var)
    } else {
        (moving_mean.clone(), moving_var.clone())
    };
    let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let t = tile_len(c);
    let [mean_t, inv_t, gamma_t, beta_t] = [&mean, &inv_std, gamma, beta].map(|v| tiled(v, t));
    // Written in full below. The normalized input is not kept: the backward pass
    // recomputes it from `x` with the same operations (so the same bits).
    let mut y = pool::take(x.len());
    let part_len = bn_part(x.len(), c);
    y.par_chunks_mut(part_len).zip(x.par_chunks(part_len)).for_each(|(yp, xp)| {
        wide(
            #[inline(always)]
            || {
                for (yc, xc) in yp.chunks_mut(t).zip(xp.chunks(t)) {
                    let len = yc.len();
                    let (xc, mean_t, inv_t, gamma_t, beta_t) =
                        (&xc[..len], &mean_t[..len], &inv_t[..len], &gamma_t[..len], &beta_t[..len]);
                    for i in 0..len {
                        yc[i] = gamma_t[i] * ((xc[i] - mean_t[i]) * inv_t[i]) + beta_t[i];
                    }
                    act_serial(act, yc);
                }
            },
        )
    });
    (y, Cache::BatchNorm { mean, var, batch_stats: train, inv_std })
}

/// `d` through the derivative of `act` at its output `y` (as [`act_backward`]).
#[inline(always)]
fn act_grad(act: Act, y: f32, d: f32) -> f32 {
    match act {
        Act::Relu => {
            if y <= 0.0 {
                0.0
            } else {
                d
            }
        }
        Act::Relu6 => {
            if y <= 0.0 || y >= 6.0 {
                0.0
            } else {
                d
            }
        }
        Act::None | Act::Softmax => d,
    }
}

/// Runs `f` with `act` as a constant, so that each activation gets its own loop
/// (the `match` in [`act_grad`] folds away).
#[inline(always)]
fn with_act<R>(act: Act, mut f: impl FnMut(Act) -> R) -> R {
    match act {
        Act::Relu => f(Act::Relu),
        Act::Relu6 => f(Act::Relu6),
        Act::None | Act::Softmax => f(Act::None),
    }
}

/// Runs `f(act)` in the AVX-512 build when there is one, with `act` a constant (see
/// [`with_act`]). Mark `f` `#[inline(always)]`.
#[inline(always)]
fn wide_act<R>(act: Act, f: impl FnMut(Act) -> R) -> R {
    wide(
        #[inline(always)]
        || with_act(act, f),
    )
}

/// Runs `f` through [`wide`] when `on`, else in the baseline build.
#[inline(always)]
fn wide_if<R>(on: bool, f: impl FnOnce() -> R) -> R {
    if on {
        wide(f)
    } else {
        f()
    }
}

/// The driver of batch norm backward's passes over one part of `len` values: calls
/// `body(act, range)` for each tile-long range in order, in the AVX-512 build when
/// there is one and with `act` a constant (one loop per activation, see [`with_act`]).
/// Mark `body` `#[inline(always)]` so that it is compiled inside the wide build.
#[inline(always)]
fn bn_tiles(act: Act, len: usize, t: usize, mut body: impl FnMut(Act, std::ops::Range<usize>)) {
    wide(
        #[inline(always)]
        || {
            with_act(
                act,
                #[inline(always)]
                |act| {
                    for at in (0..len).step_by(t) {
                        body(act, at..(at + t).min(len));
                    }
                },
            )
        },
    )
}

/// Batch norm backward in training mode (batch statistics), with the gradient of the
/// activation after it (`act`, at its output `y`) folded in: `dγ = Σ d·x̂`, `dβ = Σ d`
/// per channel (tiles per part, parts in order), then the input gradient as one
/// element-wise pass, written over `dy`. `x̂ = (x − mean)·inv_std` is recomputed as
/// the forward pass computed it.
#[allow(clippy::too_many_arguments)]
pub(super) fn batchnorm_backward_train(
    gamma: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    act: Act,
    x: &[f32],
    y: &[f32],
    mut dy: Vec<f32>,
) -> [Vec<f32>; 3] {
    let c = gamma.len();
    let t = tile_len(c);
    let part_len = bn_part(dy.len(), c);
    let [mean_t, inv_t] = [mean, inv_std].map(|v| tiled(v, t));
    let parts: Vec<(Vec<f32>, Vec<f32>)> = dy
        .par_chunks(part_len)
        .zip(x.par_chunks(part_len).zip(y.par_chunks(part_len)))
        .map(|(dp, (xp, yp))| {
            let (mut g, mut b) = (vec![0.0f32; t], vec![0.0f32; t]);
            bn_tiles(
                act,
                dp.len(),
                t,
                #[inline(always)]
                |act, r| {
                    let dc = &dp[r.clone()];
                    let len = dc.len();
                    let (xc, yc, m, s) = (&xp[r.clone()], &yp[r], &mean_t[..len], &inv_t[..len]);
                    let (g, b) = (&mut g[..len], &mut b[..len]);
                    for i in 0..len {
                        let d = act_grad(act, yc[i], dc[i]);
                        let h = (xc[i] - m[i]) * s[i];
                        g[i] += d * h;
                        b[i] += d;
                    }
                },
            );
            (fold_tile(&g, c), fold_tile(&b, c))
        })
        .collect();
    let (mut dgamma, mut dbeta) = (vec![0.0f32; c], vec![0.0f32; c]);
    for (g, b) in parts {
        dgamma.iter_mut().zip(&g).for_each(|(a, v)| *a += v);
        dbeta.iter_mut().zip(&b).for_each(|(a, v)| *a += v);
    }
    let rows = (dy.len() / c) as f32;
    let scale: Vec<f32> = inv_std.iter().map(|s| s / rows).collect();
    let gdb: Vec<f32> = gamma.iter().zip(&dbeta).map(|(g, b)| g * b).collect();
    let gdg: Vec<f32> = gamma.iter().zip(&dgamma).map(|(g, d)| g * d).collect();
    let [scale_t, gamma_t, gdb_t, gdg_t] = [&scale, gamma, &gdb, &gdg].map(|v| tiled(v, t));
    dy.par_chunks_mut(part_len).zip(x.par_chunks(part_len).zip(y.par_chunks(part_len))).for_each(|(dp, (xp, yp))| {
        bn_tiles(
            act,
            dp.len(),
            t,
            #[inline(always)]
            |act, r| {
                let dc = &mut dp[r.clone()];
                let len = dc.len();
                let (xc, yc, m, is) = (&xp[r.clone()], &yp[r], &mean_t[..len], &inv_t[..len]);
                let (s, g, gb, gg) = (&scale_t[..len], &gamma_t[..len], &gdb_t[..len], &gdg_t[..len]);
                for i in 0..len {
                    let d = act_grad(act, yc[i], dc[i]);
                    let h = (xc[i] - m[i]) * is[i];
                    dc[i] = s[i] * (rows * (d * g[i]) - gb[i] - h * gg[i]);
                }
            },
        )
    });
    [dy, dgamma, dbeta]
}

/// Runs one node forward over `n` samples.
pub fn forward(
    node: &Node,
    nodes: &[Node],
    inputs: &[&[f32]],
    n: usize,
    train: bool,
    rng: &mut ChaCha8Rng,
) -> (Vec<f32>, Cache) {
    let x = inputs[0];
    let bias = node.param("bias").map(|p| p.data.as_slice());
    match &node.layer {
        Layer::Input => (pool::copy(x), Cache::None),
        Layer::Conv2d { geom, act } => conv_forward(geom, &node.params[0].data, bias, *act, x, n),
        Layer::Dense { act } => {
            let n_in = nodes[node.inputs[0]].size();
            let g = dense_geom(n_in, node.shape[2]);
            let (mut y, cache) = conv_forward(&g, &node.params[0].data, bias, Act::None, x, n);
            for row in y.chunks_exact_mut(node.shape[2]) {
                match act {
                    Act::Softmax => {
                        let p = softmax(row);
                        row.copy_from_slice(&p);
                    }
                    other => activate(*other, row),
                }
            }
            (y, cache)
        }
        Layer::Depthwise { geom, multiplier, act } => {
            let w = &node.params[0].data;
            let y = if *multiplier == 1 {
                depthwise_forward_m1(geom, w, bias, *act, x, n)
            } else {
                depthwise_forward_general(geom, *multiplier, w, bias, *act, x, n)
            };
            (y, Cache::None)
        }
        Layer::MaxPool { geom } => pool_forward(geom, true, x, n),
        Layer::AvgPool { geom } => pool_forward(geom, false, x, n),
        Layer::GlobalAvgPool => {
            let c = node.shape[2];
            let in_size = x.len() / n.max(1);
            let pixels = in_size / c;
            let mut y = vec![0.0; n * c];
            for (ys, xs) in y.chunks_exact_mut(c).zip(x.chunks_exact(in_size)) {
                for px in xs.chunks_exact(c) {
                    ys.iter_mut().zip(px).for_each(|(a, b)| *a += b);
                }
                ys.iter_mut().for_each(|v| *v /= pixels as f32);
            }
            (y, Cache::None)
        }
        Layer::Flatten => (pool::copy(x), Cache::None),
        Layer::Dropout { rate } => {
            if !train || *rate == 0.0 {
                return (x.to_vec(), Cache::None);
            }
            let keep = 1.0 - rate;
            let mask: Vec<f32> =
                (0..x.len()).map(|_| if rng.random::<f32>() < keep { 1.0 / keep } else { 0.0 }).collect();
            (x.iter().zip(&mask).map(|(a, b)| a * b).collect(), Cache::Mask(mask))
        }
        Layer::BatchNorm { epsilon, act, .. } => batchnorm_forward(node, *epsilon, *act, x, train),
        Layer::Add { act } => {
            let mut y = pool::take(x.len());
            y.iter_mut().zip(x.iter().zip(inputs[1])).for_each(|(v, (a, b))| *v = a + b);
            activate(*act, &mut y);
            (y, Cache::None)
        }
        Layer::Concat => {
            let pixels = node.shape[0] * node.shape[1];
            let widths: Vec<usize> = node.inputs.iter().map(|&i| nodes[i].shape[2]).collect();
            let mut y = Vec::with_capacity(n * node.size());
            for p in 0..n * pixels {
                for (inp, &w) in inputs.iter().zip(&widths) {
                    y.extend_from_slice(&inp[p * w..(p + 1) * w]);
                }
            }
            (y, Cache::None)
        }
    }
}

/// A dense layer as a 1×1 convolution over a 1×1 image.
fn dense_geom(n_in: usize, units: usize) -> Geom {
    Geom { input: [1, 1, n_in], output: [1, 1, units], kernel: [1, 1], strides: [1, 1], pad: [0, 0] }
}

/// Runs one node backward: gradients for its inputs (where `need_dx`) and its params.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    node: &Node,
    inputs: &[&[f32]],
    y: &[f32],
    cache: &Cache,
    mut dy: Vec<f32>,
    n: usize,
    need_dx: &[bool],
    skip_act: bool,
) -> (Vec<Option<Vec<f32>>>, Vec<Vec<f32>>) {
    // Batch norm in training mode folds its activation's gradient into its own passes.
    // So do convolutions and dense layers (per part, before their products).
    let fused_act = matches!(cache, Cache::BatchNorm { batch_stats: true, .. } | Cache::Conv);
    let act = if skip_act { Act::None } else { node.layer.act() };
    if !skip_act && !fused_act {
        act_backward(node.layer.act(), y, &mut dy);
    }
    let x = inputs[0];
    let has_bias = node.param("bias").is_some();
    let with_bias = |dw: Vec<f32>, db: Option<Vec<f32>>| -> Vec<Vec<f32>> {
        let mut g = vec![dw];
        g.extend(db);
        g
    };
    let out = match (&node.layer, cache) {
        (Layer::Conv2d { geom, .. }, Cache::Conv) => {
            let (dw, db, dx) = conv_backward(geom, &node.params[0].data, has_bias, x, (act, y, &mut dy), n, need_dx[0]);
            (vec![dx], with_bias(dw, db))
        }
        (Layer::Dense { .. }, Cache::Conv) => {
            let g = dense_geom(x.len() / n.max(1), node.shape[2]);
            let (dw, db, dx) = conv_backward(&g, &node.params[0].data, has_bias, x, (act, y, &mut dy), n, need_dx[0]);
            (vec![dx], with_bias(dw, db))
        }
        (Layer::Depthwise { geom, multiplier, .. }, _) => {
            let w = &node.params[0].data;
            let (dw, db, dx) = if *multiplier == 1 {
                depthwise_backward_m1(geom, w, has_bias, x, &dy, n, need_dx[0])
            } else {
                depthwise_backward_general(geom, *multiplier, w, has_bias, x, &dy, n, need_dx[0])
            };
            (vec![dx], with_bias(dw, db))
        }
        (Layer::MaxPool { geom }, _) => (vec![Some(maxpool_backward(geom, x, y, &dy))], vec![]),
        (Layer::AvgPool { geom }, _) => (vec![Some(avgpool_backward(geom, &dy, n))], vec![]),
        (Layer::GlobalAvgPool, _) => {
            let c = node.shape[2];
            let in_size = x.len() / n.max(1);
            let pixels = (in_size / c) as f32;
            // Every value is written below.
            let mut dx = pool::take(x.len());
            for (xs, ds) in dx.chunks_exact_mut(in_size).zip(dy.chunks_exact(c)) {
                for px in xs.chunks_exact_mut(c) {
                    px.iter_mut().zip(ds).for_each(|(a, b)| *a = b / pixels);
                }
            }
            (vec![Some(dx)], vec![])
        }
        (Layer::Flatten, _) => (vec![Some(std::mem::take(&mut dy))], vec![]),
        (Layer::Dropout { .. }, Cache::Mask(mask)) => {
            dy.iter_mut().zip(mask).for_each(|(d, m)| *d *= m);
            (vec![Some(std::mem::take(&mut dy))], vec![])
        }
        (Layer::Dropout { .. }, _) => (vec![Some(std::mem::take(&mut dy))], vec![]),
        (Layer::BatchNorm { act, .. }, Cache::BatchNorm { mean, batch_stats, inv_std, .. }) => {
            let c = node.shape[2];
            let gamma = &node.params[0].data;
            let mut dgamma = vec![0.0f32; c];
            let mut dbeta = vec![0.0f32; c];
            if !batch_stats {
                // Inference mode: a fixed affine map of the input with the moving mean.
                let mean = &node.params[2].data;
                for (dr, xr) in dy.chunks_exact(c).zip(x.chunks_exact(c)) {
                    for ch in 0..c {
                        dgamma[ch] += dr[ch] * (xr[ch] - mean[ch]) * inv_std[ch];
                        dbeta[ch] += dr[ch];
                    }
                }
                let mut dx = std::mem::take(&mut dy);
                for row in dx.chunks_exact_mut(c) {
                    for ch in 0..c {
                        row[ch] *= gamma[ch] * inv_std[ch];
                    }
                }
                return (vec![Some(dx)], vec![dgamma, dbeta, vec![], vec![]]);
            }
            let act = if skip_act { Act::None } else { *act };
            let [dx, dgamma, dbeta] =
                batchnorm_backward_train(gamma, mean, inv_std, act, x, y, std::mem::take(&mut dy));
            (vec![Some(dx)], vec![dgamma, dbeta, vec![], vec![]])
        }
        (Layer::Add { .. }, _) => (vec![Some(pool::copy(&dy)), Some(std::mem::take(&mut dy))], vec![]),
        (Layer::Concat, _) => {
            let pixels = n * node.shape[0] * node.shape[1];
            let widths: Vec<usize> = inputs.iter().map(|inp| inp.len() / pixels.max(1)).collect();
            let mut dxs: Vec<Vec<f32>> = widths.iter().map(|w| Vec::with_capacity(w * pixels)).collect();
            for p in dy.chunks_exact(node.shape[2]) {
                let mut at = 0;
                for (dx, &w) in dxs.iter_mut().zip(&widths) {
                    dx.extend_from_slice(&p[at..at + w]);
                    at += w;
                }
            }
            (dxs.into_iter().map(Some).collect(), vec![])
        }
        (layer, _) => unreachable!("no backward cache for {}", layer.kind()),
    };
    pool::give(dy);
    out
}
