//! A host kernel path for int8 inference: the same validated [`Model`], the same bits
//! as `microcnn-core`'s [`Interpreter`], faster on x86_64.
//!
//! [`Plan::new`] looks at each operator once. CONV_2D and FULLY_CONNECTED layers whose
//! requantization has the prepared form core's own kernels use (multiplier not
//! `i32::MIN`, right shift at most 31) become matrix products (`Gemm`): the weights
//! are laid out once as `i16` pairs (`[pairs][C_out][2]`); the layer's input is
//! centred once into `i16` (`x − zp_in`) inside a border of zeros as wide as the
//! window reaches past it (TFLM skips those taps; a zero product is the same), so that
//! each kernel row of an output pixel is one run of that image, read in place; and the
//! products run two inputs at a time into `i32` lanes, eight output channels per
//! vector (`x86`, AVX2 `vpmaddwd`, behind a runtime check), or in plain Rust
//! ([`Kernels::Scalar`], the same arithmetic). Products of at most 255 · 128 and sums
//! of two fit `i32` exactly and the sums wrap as core's do, so no order of summation
//! changes a bit. Requantization is core's (`MultiplyByQuantizedMultiplier`, zero
//! point, clamp), lane by lane. MAX_POOL_2D runs a host loop with core's arithmetic.
//!
//! Every other operator (and any conv or dense layer outside that form) runs core's
//! own kernel on the same arena through [`Interpreter::invoke_op`]: a layer is either
//! on the fast path or on core, never a third thing.

#[cfg(target_arch = "x86_64")]
mod x86;

use anyhow::{anyhow, Result};
use microcnn_core::ops::conv::{ConvParams, Window};
use microcnn_core::ops::dense::DenseParams;
use microcnn_core::ops::pool::PoolParams;
use microcnn_core::ops::ChannelQuant;
use microcnn_core::{Interpreter, Model, OpParams, TensorInfo};

/// The most `i16` weights one layer's product may hold (64 MiB).
const MAX_LAID_WEIGHTS: usize = 32 << 20;

/// Which kernels the fast layers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// The best this machine has (AVX2 when the CPU reports it, else scalar).
    Auto,
    /// Plain Rust, the same arithmetic: the safe path the SIMD kernels are tested against.
    Scalar,
    /// No fast layers: every operator runs core's kernel (for tests and comparisons).
    Core,
}

/// One output channel block's requantization, prepared (core's `Requant`, as vectors
/// of `i32` padded to a multiple of 8 channels).
#[derive(Clone, Debug, Default)]
struct Requant {
    bias: Vec<i32>,
    multiplier: Vec<i32>,
    left_shift: Vec<i32>,
    right_shift: Vec<i32>,
    mask: Vec<i32>,
    half: Vec<i32>,
    output_zero_point: i32,
    act_min: i32,
    act_max: i32,
}

impl Requant {
    /// Channels `0..channels` of `quant`, padded to `padded` lanes with multiplier 0;
    /// `None` when a channel has no prepared form (core then runs the layer).
    fn new(quant: &ChannelQuant<'_>, channels: usize, padded: usize) -> Option<Self> {
        let mut r = Requant {
            output_zero_point: quant.output_zero_point,
            act_min: i32::from(quant.act_min),
            act_max: i32::from(quant.act_max),
            ..Requant::default()
        };
        for c in 0..padded {
            let (bias, multiplier, shift) = if c < channels {
                (quant.bias.map_or(0, |b| b.get(c)), quant.multipliers.get(c), quant.shifts.get(c))
            } else {
                (0, 0, 0)
            };
            let right_shift = if shift > 0 { 0 } else { shift.wrapping_neg() };
            if multiplier == i32::MIN || !(0..=31).contains(&right_shift) {
                return None;
            }
            let mask = ((1_i64 << right_shift) - 1) as i32;
            r.bias.push(bias);
            r.multiplier.push(multiplier);
            // As core: 1 << shift wraps like TFLM's (a left shift is at most 30 in a
            // valid blob, so `& 31` never changes it there).
            r.left_shift.push(if shift > 0 { shift & 31 } else { 0 });
            r.right_shift.push(right_shift);
            r.mask.push(mask);
            r.half.push(mask >> 1);
        }
        Some(r)
    }

    /// The int8 output of channel `c` for accumulator `acc` (core's
    /// `ChannelQuant::output`, bit for bit, for multipliers other than `i32::MIN`).
    #[inline(always)]
    fn output(&self, c: usize, acc: i32) -> i8 {
        let x = acc.wrapping_add(self.bias[c]).wrapping_shl(self.left_shift[c] as u32);
        // SaturatingRoundingDoublingHighMul: only i32::MIN · i32::MIN saturates, and
        // the multiplier is never i32::MIN here; ⌊(p + 2^30) / 2^31⌋ for either sign.
        let high = ((i64::from(x) * i64::from(self.multiplier[c]) + (1 << 30)) >> 31) as i32;
        // RoundingDivideByPOT: half away from zero.
        let threshold = self.half[c] + i32::from(high < 0);
        let rounded = (high >> self.right_shift[c]) + i32::from(high & self.mask[c] > threshold);
        rounded.wrapping_add(self.output_zero_point).max(self.act_min).min(self.act_max) as i8
    }
}

/// A matrix product with requantization. Output pixel `p` reads its centred inputs
/// (`i16`) from `src` at `pixels[p]` plus each segment's offset, two at a time, and
/// gives `channels` int8 outputs.
#[derive(Clone, Debug)]
struct Gemm {
    channels: usize,
    /// `channels` rounded up to a multiple of 8.
    padded: usize,
    /// `(offset from the pixel's start, pairs)` of each run of inputs, in weight order.
    segments: Vec<(usize, usize)>,
    /// Pairs over all segments.
    pairs: usize,
    /// How far past a pixel's start its reads reach.
    reach: usize,
    /// `[pairs][padded][2]`: the weights of each input pair, channel after channel.
    weights: Vec<i16>,
    requant: Requant,
}

impl Gemm {
    /// From `[channels, k]` row-major int8 weights: `taps[s]` is the weight column
    /// (in `0..k`) of input slot `s` of the segments laid end to end, `None` for a
    /// slot whose weight is 0 (an odd run's last pair).
    fn new(
        weights: &[i8],
        (channels, k): (usize, usize),
        segments: Vec<(usize, usize)>,
        taps: &[Option<usize>],
        quant: &ChannelQuant<'_>,
    ) -> Option<Self> {
        let weights = weights.get(..channels * k)?;
        let pairs: usize = segments.iter().map(|s| s.1).sum();
        if taps.len() != 2 * pairs || taps.iter().flatten().any(|&t| t >= k) {
            return None;
        }
        let padded = channels.div_ceil(8) * 8;
        // A layer whose re-laid weights would pass 64 MiB stays on core (a blob's
        // weights can grow up to 32-fold here: `i16`, eight lanes, even runs).
        if 2 * pairs * padded > MAX_LAID_WEIGHTS {
            return None;
        }
        let requant = Requant::new(quant, channels, padded)?;
        let mut laid = vec![0_i16; 2 * pairs * padded];
        for (slot, tap) in taps.iter().enumerate() {
            let Some(t) = tap else { continue };
            for c in 0..channels {
                laid[((slot / 2) * padded + c) * 2 + slot % 2] = i16::from(weights[c * k + t]);
            }
        }
        let reach = segments.iter().map(|&(at, n)| at + 2 * n).max().unwrap_or(0);
        Some(Gemm { channels, padded, segments, pairs, reach, weights: laid, requant })
    }

    /// One segment of `k` inputs (`k` rounded up to even, the extra weight 0): a dense
    /// layer, whose input is `k` centred values and a zero.
    fn dense(weights: &[i8], channels: usize, k: usize, quant: &ChannelQuant<'_>) -> Option<Self> {
        let taps: Vec<Option<usize>> = (0..k + k % 2).map(|t| (t < k).then_some(t)).collect();
        Self::new(weights, (channels, k), vec![(0, k.div_ceil(2))], &taps, quant)
    }

    /// `out[p · channels + c]` for every pixel `p` of `pixels`.
    fn run(&self, kernels: Kernels, src: &[i16], pixels: &[usize], out: &mut [i8]) {
        #[cfg(target_arch = "x86_64")]
        if kernels == Kernels::Auto && x86::available() {
            x86::gemm(self, src, pixels, out);
            return;
        }
        let _ = kernels;
        self.run_scalar(src, pixels, out);
    }

    /// The scalar product: the same pairs, the same wrapping `i32` sums.
    fn run_scalar(&self, src: &[i16], pixels: &[usize], out: &mut [i8]) {
        let mut acc = vec![0_i32; self.padded];
        for (&base, y) in pixels.iter().zip(out.chunks_exact_mut(self.channels)) {
            acc.fill(0);
            let mut w = self.weights.chunks_exact(2 * self.padded);
            for &(at, n) in &self.segments {
                for pair in src[base + at..base + at + 2 * n].chunks_exact(2) {
                    let Some(w) = w.next() else { return };
                    let (x0, x1) = (i32::from(pair[0]), i32::from(pair[1]));
                    for (a, w) in acc.iter_mut().zip(w.chunks_exact(2)) {
                        *a = a.wrapping_add(x0 * i32::from(w[0]) + x1 * i32::from(w[1]));
                    }
                }
            }
            for (c, v) in y.iter_mut().enumerate() {
                *v = self.requant.output(c, acc[c]);
            }
        }
    }
}

/// A convolution as a [`Gemm`] reading straight from the centred input: `image` is
/// the input minus its zero point, with a border of zeros as wide as the window
/// reaches past the input (TFLM skips those taps; a zero product is the same), so
/// each kernel row's taps of an output pixel are one run of `image` (one run per tap
/// with dilation), and the pixels are offsets into it.
#[derive(Clone, Debug)]
struct Conv {
    input: TensorInfo,
    output: TensorInfo,
    pad_top: usize,
    pad_left: usize,
    /// Width of the bordered image, in pixels.
    padded_width: usize,
    /// Values of the bordered image, plus one (an odd run's last pair reads one past).
    image_len: usize,
    /// Each output pixel's first value in the image.
    pixels: Vec<usize>,
    gemm: Gemm,
}

impl Conv {
    fn new(
        input: TensorInfo,
        output: TensorInfo,
        w: &Window,
        weights: &[i8],
        quant: &ChannelQuant<'_>,
    ) -> Option<Self> {
        let (i, o, c) = (input.shape, output.shape, input.shape.channels);
        let reach_h = (o.height - 1) * w.stride_h + (w.kernel_h - 1) * w.dilation_h + 1;
        let reach_w = (o.width - 1) * w.stride_w + (w.kernel_w - 1) * w.dilation_w + 1;
        let padded_h = reach_h.max(w.pad_top + i.height);
        let padded_w = reach_w.max(w.pad_left + i.width);
        let row = padded_w * c;
        // One run per kernel row (dilation 1 across), else one per tap.
        let (runs_per_row, run) = if w.dilation_w == 1 { (1, w.kernel_w * c) } else { (w.kernel_w, c) };
        let mut segments = Vec::new();
        let mut taps = Vec::new();
        for ky in 0..w.kernel_h {
            for r in 0..runs_per_row {
                segments.push((ky * w.dilation_h * row + r * w.dilation_w * c, run.div_ceil(2)));
                let first = (ky * w.kernel_w + r) * c;
                taps.extend((0..run).map(|t| Some(first + t)));
                if run % 2 == 1 {
                    taps.push(None);
                }
            }
        }
        let k = w.kernel_h * w.kernel_w * c;
        let gemm = Gemm::new(weights, (o.channels, k), segments, &taps, quant)?;
        let pixels = (0..o.height)
            .flat_map(|oy| (0..o.width).map(move |ox| (oy * w.stride_h * padded_w + ox * w.stride_w) * c))
            .collect();
        Some(Conv {
            input,
            output,
            pad_top: w.pad_top,
            pad_left: w.pad_left,
            padded_width: padded_w,
            image_len: padded_h * row + 1,
            pixels,
            gemm,
        })
    }

    /// The input, centred, inside its border of zeros.
    #[inline(never)]
    fn centre(&self, x: &[i8], image: &mut Vec<i16>) {
        let i = self.input.shape;
        let c = i.channels;
        image.clear();
        image.resize(self.image_len, 0);
        let zp = self.input.zero_point;
        for (y, row) in x.chunks_exact(i.width * c).enumerate() {
            let at = ((y + self.pad_top) * self.padded_width + self.pad_left) * c;
            for (d, &s) in image[at..at + row.len()].iter_mut().zip(row) {
                *d = (i32::from(s) - zp) as i16;
            }
        }
    }
}

/// A max pooling layer (core's arithmetic: the maximum of the in-bounds taps, −128
/// when there are none, then the clamp).
#[derive(Clone, Debug)]
struct MaxPool {
    input: TensorInfo,
    output: TensorInfo,
    params: PoolParams,
}

impl MaxPool {
    #[inline(never)]
    fn run(&self, x: &[i8], y: &mut [i8]) {
        let (i, o, w) = (self.input.shape, self.output.shape, &self.params.window);
        let c = i.channels;
        let (lo, hi) = (self.params.act_min, self.params.act_max);
        let mut out = y.chunks_exact_mut(c);
        for oy in 0..o.height {
            let origin_y = (oy * w.stride_h) as isize - w.pad_top as isize;
            let ys =
                origin_y.max(0) as usize..((origin_y + w.kernel_h as isize).min(i.height as isize)).max(0) as usize;
            for ox in 0..o.width {
                let origin_x = (ox * w.stride_w) as isize - w.pad_left as isize;
                let xs =
                    origin_x.max(0) as usize..((origin_x + w.kernel_w as isize).min(i.width as isize)).max(0) as usize;
                let Some(out) = out.next() else { return };
                out.fill(i8::MIN);
                for yy in ys.clone() {
                    let row = yy * i.width;
                    for xx in xs.clone() {
                        let at = (row + xx) * c;
                        max_into(out, &x[at..at + c]);
                    }
                }
                if (lo, hi) != (i8::MIN, i8::MAX) {
                    for m in out.iter_mut() {
                        *m = (*m).max(lo).min(hi);
                    }
                }
            }
        }
    }
}

/// `max(a, b)` as an unsigned maximum of the bytes with the sign bit flipped: the same
/// value, and one instruction on baseline x86_64 (`pmaxub`; `pmaxsb` needs SSE4.1).
#[inline(always)]
fn max_i8(a: i8, b: i8) -> i8 {
    ((a as u8 ^ 0x80).max(b as u8 ^ 0x80) ^ 0x80) as i8
}

/// `out[i] ← max(out[i], x[i])`, sixteen and eight lanes at a time where it can.
#[inline(always)]
fn max_into(out: &mut [i8], x: &[i8]) {
    fn lanes<const N: usize>(out: &mut [i8], x: &[i8]) -> usize {
        let mut done = 0;
        for (o, x) in out.chunks_exact_mut(N).zip(x.chunks_exact(N)) {
            let (o, x): (&mut [i8; N], &[i8; N]) = (o.try_into().expect("N lanes"), x.try_into().expect("N lanes"));
            for (o, &x) in o.iter_mut().zip(x) {
                *o = max_i8(*o, x);
            }
            done += N;
        }
        done
    }
    let done = lanes::<16>(out, x);
    let done = done + lanes::<8>(&mut out[done..], &x[done..]);
    for (o, &x) in out[done..].iter_mut().zip(&x[done..]) {
        *o = max_i8(*o, x);
    }
}

/// A dense layer: the flattened input centred into one column.
#[derive(Clone, Debug)]
struct Dense {
    input: TensorInfo,
    output: TensorInfo,
    gemm: Gemm,
}

#[derive(Clone, Debug)]
enum Step {
    Conv(Conv),
    Dense(Dense),
    MaxPool(MaxPool),
    /// Operator `index` on core's kernel.
    Core(usize),
}

/// A model prepared for the host kernels: weights re-laid-out once, shared by the
/// [`Runner`]s of every thread.
#[derive(Debug)]
pub struct Plan<'m, 'a> {
    model: &'m Model<'a>,
    steps: Vec<Step>,
    kernels: Kernels,
}

impl<'m, 'a> Plan<'m, 'a> {
    /// Prepares `model` with the best kernels of this machine.
    pub fn new(model: &'m Model<'a>) -> Result<Self> {
        Self::with_kernels(model, Kernels::Auto)
    }

    /// Prepares `model` with the given kernels.
    pub fn with_kernels(model: &'m Model<'a>, kernels: Kernels) -> Result<Self> {
        let mut steps = Vec::with_capacity(model.op_count());
        for index in 0..model.op_count() {
            let op = model.operator(index).map_err(|e| anyhow!("operator {index}: {e}"))?;
            let fast = if kernels == Kernels::Core { None } else { fast_step(model, &op)? };
            steps.push(fast.unwrap_or(Step::Core(index)));
        }
        Ok(Plan { model, steps, kernels })
    }

    /// How many operators run on the host kernels (the rest run core's).
    pub fn fast_layers(&self) -> usize {
        self.steps.iter().filter(|s| !matches!(s, Step::Core(_))).count()
    }

    /// A runner with its own arena and scratch.
    pub fn runner(&self) -> Runner<'_, 'm, 'a> {
        Runner { plan: self, arena: vec![0; self.model.arena_size()], columns: Vec::new() }
    }
}

/// The fast step for `op`, if it has one.
fn fast_step(model: &Model<'_>, op: &microcnn_core::Operator<'_>) -> Result<Option<Step>> {
    let input = model.tensor(op.inputs.get(0).unwrap_or(0)).map_err(|e| anyhow!("{e}"))?;
    let output = model.tensor(op.output).map_err(|e| anyhow!("{e}"))?;
    // The arena plan never shares bytes between a conv or dense layer's input and
    // output; should it, core runs the layer.
    let (ri, ro) = (input.arena_range(), output.arena_range());
    if ri.start < ro.end && ro.start < ri.end {
        return Ok(None);
    }
    Ok(match &op.params {
        OpParams::Conv2d(ConvParams { window, weights, quant, .. }) => {
            Conv::new(input, output, window, weights, quant).map(Step::Conv)
        }
        OpParams::FullyConnected(p @ DenseParams { quant, .. }) => {
            // Back to `[C_out, N]` from the blob's blocked layout.
            let (units, n) = (p.units, p.input_len);
            let row_major: Vec<i8> = (0..units).flat_map(|o| (0..n).map(move |i| p.weight(o, i))).collect();
            Gemm::dense(&row_major, units, n, quant).map(|gemm| Step::Dense(Dense { input, output, gemm }))
        }
        OpParams::MaxPool2d(params) if params.act_min <= params.act_max => {
            Some(Step::MaxPool(MaxPool { input, output, params: *params }))
        }
        _ => None,
    })
}

/// Runs samples one after the other on a [`Plan`], reusing its arena and scratch.
pub struct Runner<'p, 'm, 'a> {
    plan: &'p Plan<'m, 'a>,
    arena: Vec<u8>,
    /// Centred inputs of the current layer.
    columns: Vec<i16>,
}

impl Runner<'_, '_, '_> {
    /// Runs one sample (`model.input().bytes()` values) and returns the output tensor.
    pub fn run(&mut self, input: &[i8]) -> Result<&[i8]> {
        let model = self.plan.model;
        let range = model.input().arena_range();
        let slot = self.arena.get_mut(range).ok_or_else(|| anyhow!("arena smaller than the model's input"))?;
        if slot.len() != input.len() {
            anyhow::bail!("a sample holds {} values, the model's input {}", input.len(), slot.len());
        }
        slot.copy_from_slice(bytemuck::cast_slice(input));
        let kernels = self.plan.kernels;
        for step in &self.plan.steps {
            match step {
                Step::Core(index) => {
                    let mut net = Interpreter::new(model, &mut self.arena).map_err(|e| anyhow!("{e}"))?;
                    net.invoke_op(*index).map_err(|e| anyhow!("operator {index}: {e}"))?;
                }
                Step::Conv(conv) => {
                    let (x, y) = split(&mut self.arena, &conv.input, &conv.output)?;
                    conv.centre(x, &mut self.columns);
                    conv.gemm.run(kernels, &self.columns, &conv.pixels, y);
                }
                Step::MaxPool(pool) => {
                    let (x, y) = split(&mut self.arena, &pool.input, &pool.output)?;
                    pool.run(x, y);
                }
                Step::Dense(dense) => {
                    let (x, y) = split(&mut self.arena, &dense.input, &dense.output)?;
                    let gemm = &dense.gemm;
                    self.columns.clear();
                    self.columns.extend(x.iter().map(|&v| (i32::from(v) - dense.input.zero_point) as i16));
                    self.columns.resize(2 * gemm.pairs, 0);
                    gemm.run(kernels, &self.columns, &[0], y);
                }
            }
        }
        let out = model.output().arena_range();
        Ok(bytemuck::cast_slice(&self.arena[out]))
    }
}

/// The input (shared) and output (exclusive) bytes of a layer whose tensors are
/// disjoint (checked when the plan was made).
fn split<'x>(arena: &'x mut [u8], input: &TensorInfo, output: &TensorInfo) -> Result<(&'x [i8], &'x mut [i8])> {
    let (ri, ro) = (input.arena_range(), output.arena_range());
    if ri.end.max(ro.end) > arena.len() {
        anyhow::bail!("arena of {} bytes is too small for the plan", arena.len());
    }
    let (x, y) = if ri.end <= ro.start {
        let (low, high) = arena.split_at_mut(ro.start);
        (&low[ri], &mut high[..ro.end - ro.start])
    } else {
        let (low, high) = arena.split_at_mut(ri.start);
        (&high[..ri.end - ri.start], &mut low[ro])
    };
    Ok((bytemuck::cast_slice(x), bytemuck::cast_slice_mut(y)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use microcnn_core::ops::I32s;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn le(values: &[i32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// Random per-channel requantization in the range valid blobs hold, with the edges
    /// (shift −31 and 30, multiplier 0 and `i32::MAX`) drawn often.
    fn random_quant(rng: &mut ChaCha8Rng, channels: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>, i32, i8, i8) {
        let pick = |rng: &mut ChaCha8Rng, edges: &[i32], range: std::ops::RangeInclusive<i32>| {
            if rng.random_range(0..4) == 0 {
                edges[rng.random_range(0..edges.len())]
            } else {
                rng.random_range(range)
            }
        };
        let bias: Vec<i32> = (0..channels).map(|_| pick(rng, &[i32::MIN, i32::MAX, 0], -(1 << 20)..=1 << 20)).collect();
        let mult: Vec<i32> = (0..channels).map(|_| pick(rng, &[0, 1, i32::MAX, 1 << 30], 1 << 30..=i32::MAX)).collect();
        let shift: Vec<i32> = (0..channels).map(|_| pick(rng, &[-31, 30, 0, 1, -1], -12..=2)).collect();
        let (a, b): (i8, i8) = (rng.random(), rng.random());
        (le(&bias), le(&mult), le(&shift), rng.random_range(-128..=127), a.min(b), a.max(b))
    }

    #[test]
    fn prepared_requantization_is_cores() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..200 {
            let (bias, mult, shift, zp, lo, hi) = random_quant(&mut rng, 16);
            let quant = ChannelQuant {
                bias: Some(I32s::new(&bias)),
                multipliers: I32s::new(&mult),
                shifts: I32s::new(&shift),
                output_zero_point: zp,
                act_min: lo,
                act_max: hi,
            };
            let r = Requant::new(&quant, 16, 16).unwrap();
            for c in 0..16 {
                for acc in [i32::MIN, i32::MAX, 0, -1, 1].into_iter().chain((0..50).map(|_| rng.random::<i32>() >> 4)) {
                    assert_eq!(r.output(c, acc), quant.output(c, acc), "channel {c}, accumulator {acc}");
                }
            }
        }
    }

    /// The product (SIMD where the CPU has it, and scalar) against core's
    /// requantization of the plain `Σ w·x`, on random shapes and extreme values.
    #[test]
    fn products_equal_the_plain_sum() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for case in 0..300 {
            let channels = rng.random_range(1..=41);
            let k = rng.random_range(1..=77);
            let pixels = rng.random_range(1..=11);
            let (bias, mult, shift, zp, lo, hi) = random_quant(&mut rng, channels);
            let quant = ChannelQuant {
                bias: (case % 3 != 0).then(|| I32s::new(&bias)),
                multipliers: I32s::new(&mult),
                shifts: I32s::new(&shift),
                output_zero_point: zp,
                act_min: lo,
                act_max: hi,
            };
            let extreme = case % 2 == 0;
            let weights: Vec<i8> = (0..channels * k)
                .map(|_| if extreme { [-128, 127][rng.random_range(0..2)] } else { rng.random() })
                .collect();
            let gemm = Gemm::dense(&weights, channels, k, &quant).unwrap();
            let kp = 2 * gemm.pairs;
            let mut columns = vec![0_i16; pixels * kp];
            for column in columns.chunks_exact_mut(kp) {
                for v in &mut column[..k] {
                    *v = if extreme { [-255, 255][rng.random_range(0..2)] } else { rng.random_range(-255..=255) };
                }
            }
            let mut want = vec![0_i8; pixels * channels];
            for (p, y) in want.chunks_exact_mut(channels).enumerate() {
                for (c, v) in y.iter_mut().enumerate() {
                    let x = &columns[p * kp..p * kp + k];
                    let sum: i64 = x.iter().zip(&weights[c * k..]).map(|(&x, &w)| i64::from(x) * i64::from(w)).sum();
                    *v = quant.output(c, sum as i32);
                }
            }
            for kernels in [Kernels::Scalar, Kernels::Auto] {
                let mut got = vec![0_i8; pixels * channels];
                let starts: Vec<usize> = (0..pixels).map(|p| p * kp).collect();
                gemm.run(kernels, &columns, &starts, &mut got);
                assert_eq!(got, want, "case {case} ({kernels:?}): {pixels} pixels × {k} taps × {channels} channels");
            }
        }
    }
}
