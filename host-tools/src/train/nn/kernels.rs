//! Forward and backward passes of each layer over a batch (NHWC, f32).

use super::gemm::{sgemm, View};
use super::{Layer, Node, PARTS};
use crate::train::arch::Act;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

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
    fn tap(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
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
    /// The im2col matrix of the batch (empty for pointwise convolutions).
    Col(Vec<f32>),
    /// Batch statistics and normalized input (training mode), or only `inv_std`.
    BatchNorm {
        /// Batch mean per channel.
        mean: Vec<f32>,
        /// Batch (biased) variance per channel.
        var: Vec<f32>,
        /// Normalized input (training mode only).
        xhat: Vec<f32>,
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

fn activate(act: Act, y: &mut [f32]) {
    match act {
        Act::Relu => y.iter_mut().for_each(|v| *v = v.max(0.0)),
        Act::Relu6 => y.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)),
        Act::Softmax => {
            // Softmax is only on a dense layer's units (rows of the output).
        }
        Act::None => {}
    }
}

/// `dy` times the activation's derivative, from the activation's output `y`.
fn act_backward(act: Act, y: &[f32], dy: &mut [f32]) {
    match act {
        Act::Relu => dy.iter_mut().zip(y).for_each(|(d, &v)| {
            if v <= 0.0 {
                *d = 0.0
            }
        }),
        Act::Relu6 => dy.iter_mut().zip(y).for_each(|(d, &v)| {
            if v <= 0.0 || v >= 6.0 {
                *d = 0.0
            }
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

fn im2col(g: &Geom, x: &[f32], samples: usize, col: &mut [f32]) {
    let [h, w, c] = g.input;
    let [oh, ow, _] = g.output;
    let (k, run) = (g.col_len(), g.kernel[1] * c);
    for s in 0..samples {
        let xs = &x[s * g.in_size()..(s + 1) * g.in_size()];
        for oy in 0..oh {
            for ox in 0..ow {
                let row = &mut col[((s * oh + oy) * ow + ox) * k..][..k];
                let full = full_row(g, ox);
                for ky in 0..g.kernel[0] {
                    let dst = &mut row[ky * run..][..run];
                    let iy = (oy * g.strides[0] + ky).checked_sub(g.pad[0]).filter(|&iy| iy < h);
                    match (iy, full) {
                        (None, _) => dst.fill(0.0),
                        (Some(iy), Some(ix0)) => dst.copy_from_slice(&xs[(iy * w + ix0) * c..][..run]),
                        (Some(_), None) => {
                            for kx in 0..g.kernel[1] {
                                let d = &mut dst[kx * c..][..c];
                                match g.tap(oy, ox, ky, kx) {
                                    Some((iy, ix)) => d.copy_from_slice(&xs[(iy * w + ix) * c..][..c]),
                                    None => d.fill(0.0),
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn col2im(g: &Geom, col: &[f32], samples: usize, dx: &mut [f32]) {
    let [h, w, c] = g.input;
    let [oh, ow, _] = g.output;
    let (k, run) = (g.col_len(), g.kernel[1] * c);
    for s in 0..samples {
        let xs = &mut dx[s * g.in_size()..(s + 1) * g.in_size()];
        for oy in 0..oh {
            for ox in 0..ow {
                let row = &col[((s * oh + oy) * ow + ox) * k..][..k];
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
}

fn add_bias(y: &mut [f32], bias: Option<&[f32]>) {
    if let Some(b) = bias {
        for row in y.chunks_exact_mut(b.len()) {
            row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
        }
    }
}

/// Convolution as im2col + GEMM; also dense layers (a 1×1 "image").
fn conv_forward(g: &Geom, w: &[f32], bias: Option<&[f32]>, act: Act, x: &[f32], n: usize) -> (Vec<f32>, Cache) {
    let (pix, k, cout) = (g.out_pixels(), g.col_len(), g.output[2]);
    let cs = part(n);
    let mut y = vec![0.0; n * pix * cout];
    let finish = |yc: &mut [f32]| {
        add_bias(yc, bias);
        activate(act, yc);
    };
    if g.is_pointwise() {
        y.par_chunks_mut(cs * pix * cout).zip(x.par_chunks(cs * g.in_size())).for_each(|(yc, xc)| {
            let m = yc.len() / cout;
            sgemm(View::new(xc, m, k), View::new(w, k, cout), 0.0, yc);
            finish(yc);
        });
        return (y, Cache::Col(Vec::new()));
    }
    let mut col = vec![0.0; n * pix * k];
    y.par_chunks_mut(cs * pix * cout)
        .zip(col.par_chunks_mut(cs * pix * k))
        .zip(x.par_chunks(cs * g.in_size()))
        .for_each(|((yc, cc), xc)| {
            let samples = xc.len() / g.in_size();
            im2col(g, xc, samples, cc);
            sgemm(View::new(cc, samples * pix, k), View::new(w, k, cout), 0.0, yc);
            finish(yc);
        });
    (y, Cache::Col(col))
}

type Part = (Vec<f32>, Vec<f32>, Option<Vec<f32>>);
type Gradients = (Vec<f32>, Option<Vec<f32>>, Option<Vec<f32>>);

/// Sums the parts' weight and bias gradients in part order (so the result does not
/// depend on the thread count) and concatenates their input gradients.
fn reduce_parts(parts: Vec<Part>, weights: usize, bias: Option<usize>, input: Option<usize>) -> Gradients {
    let mut dw = vec![0.0; weights];
    let mut db = vec![0.0; bias.unwrap_or(0)];
    let mut dx = input.map(Vec::with_capacity);
    for (pw, pb, px) in parts {
        dw.iter_mut().zip(&pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(&pb).for_each(|(a, b)| *a += b);
        if let (Some(dx), Some(px)) = (&mut dx, px) {
            dx.extend_from_slice(&px);
        }
    }
    (dw, bias.map(|_| db), dx)
}

#[allow(clippy::too_many_arguments)]
fn conv_backward(
    g: &Geom,
    w: &[f32],
    has_bias: bool,
    x: &[f32],
    col: &[f32],
    dpre: &[f32],
    n: usize,
    need_dx: bool,
) -> Gradients {
    let (pix, k, cout) = (g.out_pixels(), g.col_len(), g.output[2]);
    let cs = part(n);
    let pointwise = g.is_pointwise();
    let parts: Vec<Part> = dpre
        .par_chunks(cs * pix * cout)
        .enumerate()
        .map(|(p, dc)| {
            let m = dc.len() / cout;
            let samples = m / pix;
            let cc = if pointwise { &x[p * cs * g.in_size()..][..m * k] } else { &col[p * cs * pix * k..][..m * k] };
            let mut dw = vec![0.0; k * cout];
            sgemm(View::transposed(cc, m, k), View::new(dc, m, cout), 0.0, &mut dw);
            let mut db = vec![0.0; if has_bias { cout } else { 0 }];
            if has_bias {
                for row in dc.chunks_exact(cout) {
                    db.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                }
            }
            let dx = need_dx.then(|| {
                let mut dcol = vec![0.0; m * k];
                sgemm(View::new(dc, m, cout), View::transposed(w, k, cout), 0.0, &mut dcol);
                if pointwise {
                    dcol
                } else {
                    let mut dx = vec![0.0; samples * g.in_size()];
                    col2im(g, &dcol, samples, &mut dx);
                    dx
                }
            });
            (dw, db, dx)
        })
        .collect();
    reduce_parts(parts, k * cout, has_bias.then_some(cout), need_dx.then(|| n * g.in_size()))
}

fn depthwise_forward(g: &Geom, m: usize, w: &[f32], bias: Option<&[f32]>, act: Act, x: &[f32], n: usize) -> Vec<f32> {
    let [_, wd, cin] = g.input;
    let [oh, ow, cout] = g.output;
    let out_size = oh * ow * cout;
    let mut y = vec![0.0; n * out_size];
    y.par_chunks_mut(out_size).zip(x.par_chunks(g.in_size())).for_each(|(ys, xs)| {
        for oy in 0..oh {
            for ox in 0..ow {
                let out = &mut ys[(oy * ow + ox) * cout..][..cout];
                if let Some(b) = bias {
                    out.copy_from_slice(b);
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
fn depthwise_backward(
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
    let parts: Vec<Part> = dpre
        .par_chunks(cs * out_size)
        .zip(x.par_chunks(cs * g.in_size()))
        .map(|(dc, xc)| {
            let samples = xc.len() / g.in_size();
            let mut dw = vec![0.0; w.len()];
            let mut db = vec![0.0; if has_bias { cout } else { 0 }];
            let mut dx = vec![0.0; if need_dx { xc.len() } else { 0 }];
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
            (dw, db, need_dx.then_some(dx))
        })
        .collect();
    reduce_parts(parts, w.len(), has_bias.then_some(cout), need_dx.then(|| n * g.in_size()))
}

fn pool_forward(g: &Geom, max: bool, x: &[f32], n: usize) -> (Vec<f32>, Cache) {
    let [_, w, c] = g.input;
    let [oh, ow, _] = g.output;
    let out_size = oh * ow * c;
    let mut y = vec![0.0; n * out_size];
    // One sample per task; channels innermost and branch-free, so the loops vectorize.
    y.par_chunks_mut(out_size).zip(x.par_chunks(g.in_size())).for_each(|(ys, xs)| {
        for oy in 0..oh {
            for ox in 0..ow {
                let yo = &mut ys[(oy * ow + ox) * c..][..c];
                yo.fill(if max { f32::NEG_INFINITY } else { 0.0 });
                let mut count = 0;
                for ky in 0..g.kernel[0] {
                    for kx in 0..g.kernel[1] {
                        let Some((iy, ix)) = g.tap(oy, ox, ky, kx) else { continue };
                        let xin = &xs[(iy * w + ix) * c..][..c];
                        if max {
                            yo.iter_mut().zip(xin).for_each(|(a, b)| *a = a.max(*b));
                        } else {
                            yo.iter_mut().zip(xin).for_each(|(a, b)| *a += b);
                        }
                        count += 1;
                    }
                }
                if !max {
                    let inv = 1.0 / count.max(1) as f32;
                    yo.iter_mut().for_each(|v| *v *= inv);
                }
            }
        }
    });
    (y, Cache::None)
}

/// Max pooling backward: each output's gradient goes to the first input of its window
/// (in tap order) that holds the maximum.
fn maxpool_backward(g: &Geom, x: &[f32], y: &[f32], dy: &[f32]) -> Vec<f32> {
    let [_, w, c] = g.input;
    let [oh, ow, _] = g.output;
    let out_size = oh * ow * c;
    let mut dx = vec![0.0; x.len()];
    dx.par_chunks_mut(g.in_size())
        .zip(x.par_chunks(g.in_size()))
        .zip(y.par_chunks(out_size).zip(dy.par_chunks(out_size)))
        .for_each(|((dxs, xs), (ys, dys))| {
            let mut open = vec![1.0f32; c];
            for oy in 0..oh {
                for ox in 0..ow {
                    let o = (oy * ow + ox) * c;
                    open.fill(1.0);
                    for ky in 0..g.kernel[0] {
                        for kx in 0..g.kernel[1] {
                            let Some((iy, ix)) = g.tap(oy, ox, ky, kx) else { continue };
                            let at = (iy * w + ix) * c;
                            let (xa, dxa) = (&xs[at..at + c], &mut dxs[at..at + c]);
                            let (yo, dyo) = (&ys[o..o + c], &dys[o..o + c]);
                            // Branch-free (it vectorizes): `open` is 1 until a tap took the
                            // channel's gradient, then 0.
                            for (((d, &x), (&y, &g)), o) in
                                dxa.iter_mut().zip(xa).zip(yo.iter().zip(dyo)).zip(open.iter_mut())
                            {
                                let hit = if x == y { *o } else { 0.0 };
                                *d += hit * g;
                                *o -= hit;
                            }
                        }
                    }
                }
            }
        });
    dx
}

fn avgpool_backward(g: &Geom, dy: &[f32], n: usize) -> Vec<f32> {
    let [_, w, c] = g.input;
    let [oh, ow, _] = g.output;
    let out_size = oh * ow * c;
    let mut dx = vec![0.0; n * g.in_size()];
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

fn batchnorm_forward(node: &Node, eps: f32, act: Act, x: &[f32], train: bool) -> (Vec<f32>, Cache) {
    let c = node.shape[2];
    let rows = x.len() / c;
    let [gamma, beta, moving_mean, moving_var] = [0, 1, 2, 3].map(|i| &node.params[i].data);
    let (mean, var) = if train {
        let mut mean = vec![0.0f64; c];
        for row in x.chunks_exact(c) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += f64::from(*v));
        }
        mean.iter_mut().for_each(|m| *m /= rows as f64);
        let mut var = vec![0.0f64; c];
        for row in x.chunks_exact(c) {
            var.iter_mut().zip(row).zip(&mean).for_each(|((s, v), m)| *s += (f64::from(*v) - m).powi(2));
        }
        let var: Vec<f32> = var.iter().map(|s| (s / rows as f64) as f32).collect();
        (mean.iter().map(|&m| m as f32).collect::<Vec<f32>>(), var)
    } else {
        (moving_mean.clone(), moving_var.clone())
    };
    let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let mut y = vec![0.0; x.len()];
    let mut xhat = vec![0.0; if train { x.len() } else { 0 }];
    for (r, (yr, xr)) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)).enumerate() {
        for ch in 0..c {
            let h = (xr[ch] - mean[ch]) * inv_std[ch];
            if train {
                xhat[r * c + ch] = h;
            }
            yr[ch] = gamma[ch] * h + beta[ch];
        }
    }
    activate(act, &mut y);
    (y, Cache::BatchNorm { mean, var, xhat, inv_std })
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
        Layer::Input => (x.to_vec(), Cache::None),
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
            (depthwise_forward(geom, *multiplier, &node.params[0].data, bias, *act, x, n), Cache::None)
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
        Layer::Flatten => (x.to_vec(), Cache::None),
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
            let mut y: Vec<f32> = x.iter().zip(inputs[1]).map(|(a, b)| a + b).collect();
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
    if !skip_act {
        act_backward(node.layer.act(), y, &mut dy);
    }
    let x = inputs[0];
    let has_bias = node.param("bias").is_some();
    let with_bias = |dw: Vec<f32>, db: Option<Vec<f32>>| -> Vec<Vec<f32>> {
        let mut g = vec![dw];
        g.extend(db);
        g
    };
    match (&node.layer, cache) {
        (Layer::Conv2d { geom, .. }, Cache::Col(col)) => {
            let (dw, db, dx) = conv_backward(geom, &node.params[0].data, has_bias, x, col, &dy, n, need_dx[0]);
            (vec![dx], with_bias(dw, db))
        }
        (Layer::Dense { .. }, Cache::Col(col)) => {
            let g = dense_geom(x.len() / n.max(1), node.shape[2]);
            let (dw, db, dx) = conv_backward(&g, &node.params[0].data, has_bias, x, col, &dy, n, need_dx[0]);
            (vec![dx], with_bias(dw, db))
        }
        (Layer::Depthwise { geom, multiplier, .. }, _) => {
            let (dw, db, dx) =
                depthwise_backward(geom, *multiplier, &node.params[0].data, has_bias, x, &dy, n, need_dx[0]);
            (vec![dx], with_bias(dw, db))
        }
        (Layer::MaxPool { geom }, _) => (vec![Some(maxpool_backward(geom, x, y, &dy))], vec![]),
        (Layer::AvgPool { geom }, _) => (vec![Some(avgpool_backward(geom, &dy, n))], vec![]),
        (Layer::GlobalAvgPool, _) => {
            let c = node.shape[2];
            let in_size = x.len() / n.max(1);
            let pixels = (in_size / c) as f32;
            let mut dx = vec![0.0; x.len()];
            for (xs, ds) in dx.chunks_exact_mut(in_size).zip(dy.chunks_exact(c)) {
                for px in xs.chunks_exact_mut(c) {
                    px.iter_mut().zip(ds).for_each(|(a, b)| *a = b / pixels);
                }
            }
            (vec![Some(dx)], vec![])
        }
        (Layer::Flatten, _) => (vec![Some(dy)], vec![]),
        (Layer::Dropout { .. }, Cache::Mask(mask)) => {
            dy.iter_mut().zip(mask).for_each(|(d, m)| *d *= m);
            (vec![Some(dy)], vec![])
        }
        (Layer::Dropout { .. }, _) => (vec![Some(dy)], vec![]),
        (Layer::BatchNorm { .. }, Cache::BatchNorm { xhat, inv_std, .. }) => {
            let c = node.shape[2];
            let gamma = &node.params[0].data;
            let mut dgamma = vec![0.0f32; c];
            let mut dbeta = vec![0.0f32; c];
            if xhat.is_empty() {
                // Inference mode: a fixed affine map of the input with the moving mean.
                let mean = &node.params[2].data;
                for (dr, xr) in dy.chunks_exact(c).zip(x.chunks_exact(c)) {
                    for ch in 0..c {
                        dgamma[ch] += dr[ch] * (xr[ch] - mean[ch]) * inv_std[ch];
                        dbeta[ch] += dr[ch];
                    }
                }
                let mut dx = dy;
                for row in dx.chunks_exact_mut(c) {
                    for ch in 0..c {
                        row[ch] *= gamma[ch] * inv_std[ch];
                    }
                }
                return (vec![Some(dx)], vec![dgamma, dbeta, vec![], vec![]]);
            }
            let rows = (dy.len() / c) as f32;
            for (dr, hr) in dy.chunks_exact(c).zip(xhat.chunks_exact(c)) {
                for ch in 0..c {
                    dgamma[ch] += dr[ch] * hr[ch];
                    dbeta[ch] += dr[ch];
                }
            }
            let mut dx = vec![0.0; dy.len()];
            for ((xr, dr), hr) in dx.chunks_exact_mut(c).zip(dy.chunks_exact(c)).zip(xhat.chunks_exact(c)) {
                for ch in 0..c {
                    let dxhat = dr[ch] * gamma[ch];
                    xr[ch] =
                        inv_std[ch] / rows * (rows * dxhat - gamma[ch] * dbeta[ch] - hr[ch] * gamma[ch] * dgamma[ch]);
                }
            }
            (vec![Some(dx)], vec![dgamma, dbeta, vec![], vec![]])
        }
        (Layer::Add { .. }, _) => (vec![Some(dy.clone()), Some(dy)], vec![]),
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
    }
}
