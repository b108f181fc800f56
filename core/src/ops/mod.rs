//! Int8 kernels, one operator family per file.
//!
//! Every kernel is a free function on slices plus a parameter struct decoded from the
//! blob. Layouts are NHWC with batch 1 for activations, `[C_out, KH, KW, C_in]` for
//! convolution weights, `[KH, KW, C_out]` for depthwise weights and `[C_out, C_in]`
//! for dense weights. The kernels assume the shapes were validated at load
//! ([`Model::from_bytes`](crate::Model::from_bytes)); on shapes that were not, they
//! stop early rather than read out of bounds.

pub mod add;
pub mod arch;
pub mod concat;
pub mod conv;
mod conv_rows;
pub mod dense;
pub mod depthwise;
#[cfg(any(test, microcnn_arm_dsp))]
pub(crate) mod depthwise3x3;
mod im2col;
pub mod mean;
pub mod pool;
pub mod reference;
pub mod requantize;
pub mod softmax;
#[cfg(test)]
mod suite;

use crate::quant::multiply_by_quantized_multiplier;

/// A little-endian `i32` array stored in place in the blob (no alignment needed).
#[derive(Clone, Copy, Debug)]
pub struct I32s<'a>(pub(crate) &'a [u8]);

impl<'a> I32s<'a> {
    /// Wraps `bytes` (its length is a multiple of 4).
    pub fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.0.len() < 4
    }

    /// Value `i`, or 0 past the end.
    #[inline(always)]
    pub fn get(&self, i: usize) -> i32 {
        match self.0.get(i * 4..i * 4 + 4) {
            Some(b) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => 0,
        }
    }
}

/// Per-output-channel requantization: bias, Q31 multiplier and shift.
#[derive(Clone, Copy, Debug)]
pub struct ChannelQuant<'a> {
    /// int32 bias per channel, if the layer has one.
    pub bias: Option<I32s<'a>>,
    /// Q0.31 multipliers.
    pub multipliers: I32s<'a>,
    /// Power-of-two shifts (positive = left).
    pub shifts: I32s<'a>,
    /// The output tensor's zero point.
    pub output_zero_point: i32,
    /// Lower clamp (fused activation).
    pub act_min: i8,
    /// Upper clamp (fused activation).
    pub act_max: i8,
}

impl ChannelQuant<'_> {
    /// Turns the int32 accumulator of channel `c` into its int8 output: add the bias,
    /// requantize, add the output zero point, clamp.
    #[inline(always)]
    pub fn output(&self, c: usize, acc: i32) -> i8 {
        let bias = match &self.bias {
            Some(b) => b.get(c),
            None => 0,
        };
        let scaled =
            multiply_by_quantized_multiplier(acc.wrapping_add(bias), self.multipliers.get(c), self.shifts.get(c));
        let value = scaled.wrapping_add(self.output_zero_point);
        value.clamp(i32::from(self.act_min), i32::from(self.act_max)) as i8
    }
}

/// One output channel's requantization, read from the blob once and prepared for the
/// inner loops: the same arithmetic as [`ChannelQuant::output`], bit for bit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Requant {
    bias: i32,
    multiplier: i32,
    left_shift: u32,
    right_shift: i32,
    /// `2^right_shift − 1` and its half: RoundingDivideByPOT's remainder mask and
    /// threshold (before the +1 for negative values).
    mask: i32,
    half: i32,
    output_zero_point: i32,
    act_min: i32,
    act_max: i32,
}

impl Requant {
    /// A placeholder (multiplier 0) for prepared blocks.
    pub(crate) const ZERO: Self = Self {
        bias: 0,
        multiplier: 0,
        left_shift: 0,
        right_shift: 0,
        mask: 0,
        half: 0,
        output_zero_point: 0,
        act_min: 0,
        act_max: 0,
    };

    /// Channel `c` of `quant`, or `None` when its multiplier or shift lies outside
    /// what [`quantize_multiplier`](crate::quant::quantize_multiplier) produces
    /// (multiplier `i32::MIN`, a right shift beyond 31): the kernels leave such
    /// layers to the reference kernels, which handle any value as TFLM does.
    #[inline(always)]
    pub(crate) fn new(quant: &ChannelQuant<'_>, c: usize) -> Option<Self> {
        let bias = match &quant.bias {
            Some(b) => b.get(c),
            None => 0,
        };
        let clamp = (quant.act_min, quant.act_max);
        Self::from_parts(bias, quant.multipliers.get(c), quant.shifts.get(c), quant.output_zero_point, clamp)
    }

    /// From its parts (see [`new`](Self::new) for when it is `None`).
    #[inline(always)]
    pub(crate) fn from_parts(
        bias: i32,
        multiplier: i32,
        shift: i32,
        output_zero_point: i32,
        (act_min, act_max): (i8, i8),
    ) -> Option<Self> {
        let right_shift = if shift > 0 { 0 } else { shift.wrapping_neg() };
        if multiplier == i32::MIN || !(0..=31).contains(&right_shift) {
            return None;
        }
        let mask = ((1_i64 << right_shift) - 1) as i32;
        Some(Self {
            bias,
            multiplier,
            // As in `multiply_by_quantized_multiplier`: 1 << shift wraps like TFLM's.
            left_shift: if shift > 0 { shift as u32 & 31 } else { 0 },
            right_shift,
            mask,
            half: mask >> 1,
            output_zero_point,
            act_min: i32::from(act_min),
            act_max: i32::from(act_max),
        })
    }

    /// Prepares channels `first..first + out.len()` of `quant` into `out`; `false`
    /// when one of them has no prepared form (see [`new`](Self::new)).
    pub(crate) fn prepare(quant: &ChannelQuant<'_>, first: usize, out: &mut [Requant]) -> bool {
        for (k, r) in out.iter_mut().enumerate() {
            match Self::new(quant, first + k) {
                Some(prepared) => *r = prepared,
                None => return false,
            }
        }
        true
    }

    /// The int8 outputs of two accumulators of this channel (two pixels).
    /// Not inlined on DSP cores: there a call with its own registers costs less than
    /// the spills the prepared fields cause inside the micro-kernel's loop (measured).
    #[cfg_attr(microcnn_arm_dsp, inline(never))]
    #[cfg_attr(not(microcnn_arm_dsp), inline(always))]
    pub(crate) fn output2(&self, acc0: i32, acc1: i32) -> (i8, i8) {
        (self.output(acc0), self.output(acc1))
    }

    /// The int8 output for accumulator `acc`: `ChannelQuant::output(c, acc)`.
    #[inline(always)]
    pub(crate) fn output(&self, acc: i32) -> i8 {
        let x = acc.wrapping_add(self.bias).wrapping_shl(self.left_shift);
        // SaturatingRoundingDoublingHighMul without its division: for a product
        // p ≥ 0, (p + 2^30) / 2^31 truncated is ⌊(p + 2^30) / 2^31⌋; for p < 0,
        // (p + 1 − 2^30) / 2^31 truncated toward zero is ⌈(p + 1 − 2^30) / 2^31⌉
        // = ⌊(p + 2^30) / 2^31⌋ too. Only a = b = i32::MIN saturates, and the
        // multiplier is not i32::MIN here. |p| ≤ 2^62, so the sum fits i64.
        let high = ((i64::from(x) * i64::from(self.multiplier) + (1 << 30)) >> 31) as i32;
        // RoundingDivideByPOT(high, right_shift) with the mask and threshold prepared.
        let threshold = self.half + i32::from(high < 0);
        let rounded = (high >> self.right_shift) + i32::from(high & self.mask > threshold);
        let value = rounded.wrapping_add(self.output_zero_point);
        // max then min: the clamp of valid blobs (act_min ≤ act_max), without a panic path.
        value.max(self.act_min).min(self.act_max) as i8
    }
}

/// Largest `|Σ w·(x − zp)|` over `taps` products of int8 weights (`|w| ≤ 128`) and int8
/// inputs centred on `input_zero_point`: the accumulator bound the fast requantization
/// needs, proven from the layer's shape alone (nothing to read from the weights).
#[inline(always)]
pub(crate) fn acc_bound(taps: usize, input_zero_point: i32) -> i64 {
    let zp = i64::from(input_zero_point);
    let centred = (-128 - zp).abs().max((127 - zp).abs());
    (taps as i64).saturating_mul(128).saturating_mul(centred)
}

/// `(a·b + 2^31) >> 32`: the rounded high word of the product (`SMMULR` on DSP cores).
#[inline(always)]
pub(crate) fn mul_high_rounded(a: i32, b: i32) -> i32 {
    #[cfg(microcnn_arm_dsp)]
    {
        arch::arm_dsp::smmulr(a, b)
    }
    #[cfg(not(microcnn_arm_dsp))]
    {
        ((i64::from(a) * i64::from(b) + (1 << 31)) >> 32) as i32
    }
}

/// `SMMULR(xf, M)` then the rounding division by `2^(down − 1)` plus the output zero
/// point (folded into `round`): the fast requantization's arithmetic after the scaled
/// sum, shared by [`FastRequant::output`] and the depthwise table of DSP cores.
#[inline(always)]
pub(crate) fn fast_requant_scaled(xf: i32, multiplier: i32, round: i32, down: u32) -> i32 {
    let h = mul_high_rounded(xf, multiplier);
    h.wrapping_mul(2).wrapping_add(h >> 31).wrapping_add(round) >> down
}

/// A channel's requantization in the fast form, bit for bit [`Requant::output`] (and so
/// TFLM's `MultiplyByQuantizedMultiplier` + zero point + clamp) for every accumulator
/// within the bound it was prepared for. The one form of the kit: the convolutions
/// use it per output, the 3×3 depthwise kernel of DSP cores folds `f` into its weights
/// and accumulator start, ADD applies it to its table sums.
///
/// With `x = acc + bias`, left shift `ls` and right shift `r` (one of them 0), and
/// `f = 2^(ls + 1)`:
/// - one rounding high multiply gives TFLM's saturating rounding doubling high multiply
///   of `x·2^ls`: `h = ⌊(f·x·M + 2^31) / 2^32⌋ = ⌊(x·2^ls·M + 2^30) / 2^31⌋` (see
///   [`Requant::output`]; `SMMULR` on DSP cores), with no saturation as `|f·x| < 2^31`
///   (the saturating case `x·2^ls = M = i32::MIN` cannot occur then);
/// - its rounding division by `2^r` (ties away from zero) plus the output zero point is
///   `(2h + 2^r + (h >> 31) + zp·2^(r+1)) >> (r + 1)`: for `h ≥ 0` that is
///   `⌊(h + 2^(r−1)) / 2^r⌋ + zp` (and `h + zp` for `r = 0`); for `h < 0` the numerator
///   is odd, one less than `2h + 2^r + zp·2^(r+1)`, and
///   `⌊(2h + 2^r − 1) / 2^(r+1)⌋ = ⌊(h + 2^(r−1) − 1) / 2^r⌋` (ties round down, away
///   from zero) because an odd number is never a multiple of `2^(r+1)`; adding
///   `zp·2^(r+1)` adds exactly `zp` after the shift.
///
/// So `out = clamp((2h + (h >> 31) + round) >> (r + 1))` with
/// `round = 2^r + zp·2^(r+1)`. [`FastRequant::new`] refuses (the caller keeps the exact
/// [`Requant`]) when `|acc| ≤ bound` does not prove that every step stays inside `i32`,
/// or for shifts beyond `ls ≤ 29`, `r ≤ 30`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FastRequant {
    /// `f = 2^(ls + 1)`.
    scale: i32,
    /// `f · bias`.
    bias_scaled: i32,
    multiplier: i32,
    /// `2^r + zp·2^(r+1)`.
    round: i32,
    /// `r + 1`.
    down: u32,
    act_min: i32,
    act_max: i32,
}

impl FastRequant {
    /// A placeholder for prepared blocks.
    pub(crate) const ZERO: Self =
        Self { scale: 2, bias_scaled: 0, multiplier: 0, round: 0, down: 1, act_min: 0, act_max: 0 };

    /// The fast form of `r` for accumulators with `|acc| ≤ acc_bound`, or `None`.
    #[inline(always)]
    pub(crate) fn new(r: &Requant, acc_bound: i64) -> Option<Self> {
        let (ls, e) = (r.left_shift, r.right_shift);
        if ls > 29 || !(0..=30).contains(&e) || r.multiplier == i32::MIN {
            return None;
        }
        // Cheap arithmetic only (kernels prepare per output row): 32-bit shifts, no
        // 64-bit multiply.
        let up = ls + 1;
        // |f·x| < 2^31 for every |x| ≤ |acc| + |bias|, i.e. |x| < 2^(31 − up): f·x and
        // f·bias fit an i32.
        let x_bound = acc_bound.checked_add(i64::from(r.bias).abs())?;
        if x_bound >= 1 << 31 || (x_bound as u32) >> (31 - up) != 0 {
            return None;
        }
        let x_bound = i64::from((x_bound as u32) << up);
        // |h| ≤ (|f·x|·|M| + 2^31) / 2^32 + 1 ≤ x_bound / 2 + 1 (|M| < 2^31); then
        // |2h + (h >> 31) + round| ≤ x_bound + 3 + |round|, round = (1 + 2·zp)·2^e.
        let round = (1 + 2 * i64::from(r.output_zero_point)) << e;
        if x_bound + 3 + round.abs() >= 1 << 31 {
            return None;
        }
        Some(Self {
            scale: 1 << up,
            bias_scaled: r.bias << up,
            multiplier: r.multiplier,
            round: round as i32,
            down: e as u32 + 1,
            act_min: r.act_min,
            act_max: r.act_max,
        })
    }

    /// `f = 2^(ls + 1)`, the factor of the accumulator (and of the weights and bias
    /// when a kernel folds it into them).
    #[cfg(any(test, microcnn_arm_dsp))]
    #[inline(always)]
    pub(crate) fn scale(&self) -> i32 {
        self.scale
    }

    /// `[multiplier, round, down]`, the constants after the scaled sum.
    #[cfg(any(test, microcnn_arm_dsp))]
    #[inline(always)]
    pub(crate) fn tail(&self) -> [i32; 3] {
        [self.multiplier, self.round, self.down as i32]
    }

    /// `[2·bias, multiplier, round, r + 1, act_min, act_max]` for the DSP loop
    /// (`arm_dsp::requant_strided`, which doubles the sum with a shifted add), or `None`
    /// under a left shift (`f > 2`: the callers then use [`output`](Self::output)).
    #[cfg(microcnn_arm_dsp)]
    #[inline(always)]
    pub(crate) fn parts_unshifted(&self) -> Option<[i32; 6]> {
        (self.scale == 2).then_some([
            self.bias_scaled,
            self.multiplier,
            self.round,
            self.down as i32,
            self.act_min,
            self.act_max,
        ])
    }

    /// The int8 outputs of two accumulators (two pixels); not inlined on DSP cores, as
    /// [`Requant::output2`].
    #[cfg_attr(microcnn_arm_dsp, inline(never))]
    #[cfg_attr(not(microcnn_arm_dsp), inline(always))]
    pub(crate) fn output2(&self, acc0: i32, acc1: i32) -> (i8, i8) {
        (self.output(acc0), self.output(acc1))
    }

    /// The int8 output for accumulator `acc` (`|acc|` within the prepared bound).
    #[inline(always)]
    pub(crate) fn output(&self, acc: i32) -> i8 {
        let xf = acc.wrapping_mul(self.scale).wrapping_add(self.bias_scaled);
        let v = fast_requant_scaled(xf, self.multiplier, self.round, self.down);
        v.max(self.act_min).min(self.act_max) as i8
    }
}

/// A prepared requantization of one channel, as the generic kernels use it.
pub(crate) trait Requantize: Copy {
    /// A placeholder for prepared blocks.
    const ZERO: Self;
    /// Channel `c` of `quant` for accumulators with `|acc| ≤ acc_bound`, or `None`.
    fn for_channel(quant: &ChannelQuant<'_>, c: usize, acc_bound: i64) -> Option<Self>;
    /// The int8 output for `acc`.
    fn output(&self, acc: i32) -> i8;
    /// The int8 outputs of two accumulators (two pixels).
    fn output2(&self, acc0: i32, acc1: i32) -> (i8, i8);
}

impl Requantize for Requant {
    const ZERO: Self = Requant::ZERO;
    #[inline(always)]
    fn for_channel(quant: &ChannelQuant<'_>, c: usize, _acc_bound: i64) -> Option<Self> {
        Requant::new(quant, c)
    }
    #[inline(always)]
    fn output(&self, acc: i32) -> i8 {
        Requant::output(self, acc)
    }
    #[inline(always)]
    fn output2(&self, acc0: i32, acc1: i32) -> (i8, i8) {
        Requant::output2(self, acc0, acc1)
    }
}

impl Requantize for FastRequant {
    const ZERO: Self = FastRequant::ZERO;
    #[inline(always)]
    fn for_channel(quant: &ChannelQuant<'_>, c: usize, acc_bound: i64) -> Option<Self> {
        FastRequant::new(&Requant::new(quant, c)?, acc_bound)
    }
    #[inline(always)]
    fn output(&self, acc: i32) -> i8 {
        FastRequant::output(self, acc)
    }
    #[inline(always)]
    fn output2(&self, acc0: i32, acc1: i32) -> (i8, i8) {
        FastRequant::output2(self, acc0, acc1)
    }
}

/// Channel `c`'s requantization: the fast form when `acc_bound` allows it, else the
/// exact prepared form; `None` when even that is refused (see [`Requant::new`]).
#[derive(Clone, Copy, Debug)]
pub(crate) enum ChannelRequant {
    Fast(FastRequant),
    Exact(Requant),
}

impl ChannelRequant {
    /// Channel `c` of `quant` for accumulators with `|acc| ≤ acc_bound`.
    #[inline(always)]
    pub(crate) fn new(quant: &ChannelQuant<'_>, c: usize, acc_bound: i64) -> Option<Self> {
        let r = Requant::new(quant, c)?;
        Some(match FastRequant::new(&r, acc_bound) {
            Some(f) => Self::Fast(f),
            None => Self::Exact(r),
        })
    }
}

/// Sum of `(x − zero_point) × w` over two equally long runs. Validation bounds the run
/// length (≤ 65,536 products of at most 255 × 128), so the sum fits an `i32`.
#[inline(always)]
pub(crate) fn dot_offset(x: &[i8], w: &[i8], input_zero_point: i32) -> i32 {
    let mut sum_xw = 0_i32;
    let mut sum_w = 0_i32;
    for (&a, &b) in x.iter().zip(w) {
        sum_xw += i32::from(a) * i32::from(b);
        sum_w += i32::from(b);
    }
    // Σ(x − zp)·w = Σx·w − zp·Σw; both parts stay within i32 by the same bound.
    sum_xw.wrapping_sub(input_zero_point.wrapping_mul(sum_w))
}

/// The window of kernel taps `[start, end)` along one axis whose input coordinate
/// `origin + tap × dilation` falls inside `0..input`.
#[inline(always)]
pub(crate) fn valid_taps(origin: isize, kernel: usize, dilation: usize, input: usize) -> (usize, usize) {
    let dilation = dilation as isize;
    let start = if origin < 0 { ((-origin + dilation - 1) / dilation) as usize } else { 0 };
    let remaining = input as isize - origin; // taps with origin + t·d < input
    let end = if remaining <= 0 { 0 } else { (((remaining + dilation - 1) / dilation) as usize).min(kernel) };
    (start.min(end), end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_inside_the_image() {
        assert_eq!(valid_taps(-1, 3, 1, 5), (1, 3));
        assert_eq!(valid_taps(3, 3, 1, 5), (0, 2));
        assert_eq!(valid_taps(-2, 5, 1, 3), (2, 5));
        assert_eq!(valid_taps(-2, 3, 2, 12), (1, 3));
        assert_eq!(valid_taps(9, 3, 2, 12), (0, 2)); // 9, 11 inside; 13 outside
        assert_eq!(valid_taps(7, 3, 1, 5), (0, 0));
        assert_eq!(valid_taps(-9, 3, 1, 5), (3, 3)); // empty
    }

    proptest::proptest! {
        #[test]
        fn prepared_requant_is_channel_quant(
            acc in proptest::prelude::any::<i32>(),
            bias in proptest::prelude::any::<i32>(),
            multiplier in proptest::prelude::any::<i32>(),
            shift in -31_i32..40,
            zp in -128_i32..128,
            bounds in proptest::prelude::any::<(i8, i8)>(),
        ) {
            let (act_min, act_max) = (bounds.0.min(bounds.1), bounds.0.max(bounds.1));
            let (b, m, s) = (bias.to_le_bytes(), multiplier.to_le_bytes(), shift.to_le_bytes());
            let quant = ChannelQuant {
                bias: Some(I32s::new(&b)),
                multipliers: I32s::new(&m),
                shifts: I32s::new(&s),
                output_zero_point: zp,
                act_min,
                act_max,
            };
            if let Some(r) = Requant::new(&quant, 0) {
                proptest::prop_assert_eq!(r.output(acc), quant.output(0, acc));
            }
            let near_q31 = (multiplier & 0x3FFF_FFFF) | 0x4000_0000;
            let m = near_q31.to_le_bytes();
            let quant = ChannelQuant { multipliers: I32s::new(&m), ..quant };
            let r = Requant::new(&quant, 0);
            proptest::prop_assert!(r.is_some());
            proptest::prop_assert_eq!(r.map(|r| r.output(acc)), Some(quant.output(0, acc)));
        }
    }

    proptest::proptest! {
        /// The fast requantization equals the exact one for every accumulator within
        /// the bound it accepted, including both ends of the bound and ties.
        #[test]
        fn fast_requant_is_exact_within_its_bound(
            acc in proptest::prelude::any::<i32>(),
            bias in proptest::prelude::any::<i32>(),
            multiplier in 0x4000_0000_i32..=i32::MAX,
            shift in -31_i32..32,
            zp in -128_i32..128,
            bound in 0_i64..(1 << 31),
            small in proptest::prelude::any::<bool>(),
            bounds in proptest::prelude::any::<(i8, i8)>(),
        ) {
            let (act_min, act_max) = (bounds.0.min(bounds.1), bounds.0.max(bounds.1));
            // Half the cases with realistic magnitudes, so the fast form is accepted
            // (a left shift scales the sum: smaller bounds then).
            let ls = shift.clamp(0, 31) as u32;
            let (bias, bound) =
                if small { (bias % 100_000, (bound % 40_000_000) >> ls) } else { (bias, bound) };
            let Some(r) = Requant::from_parts(bias, multiplier, shift, zp, (act_min, act_max)) else {
                return Ok(());
            };
            let Some(f) = FastRequant::new(&r, bound) else {
                // Refused: only for a large shift or a wide bound (or a huge round term).
                let scaled = || (bound + i64::from(bias).abs()) << (ls + 1);
                proptest::prop_assert!(!(-20..=20).contains(&shift) || scaled() >= 1 << 30);
                return Ok(());
            };
            let clamp = |a: i64| a.clamp(-bound, bound) as i32;
            for a in [clamp(i64::from(acc)), clamp(i64::from(acc % 1000)), bound as i32, -(bound as i32)] {
                proptest::prop_assert_eq!(f.output(a), r.output(a), "acc {}", a);
            }
        }
    }

    /// Ties of RoundingDivideByPOT on both signs, and the bound that forces the exact form.
    #[test]
    fn fast_requant_ties_and_refusal() {
        // Multiplier 2^30 (0.5) and right shift 1: x·0.5 then /2 — x = ±2, ±6 hit ties.
        let r = Requant::from_parts(0, 1 << 30, -1, 0, (-128, 127)).unwrap_or(Requant::ZERO);
        let f = FastRequant::new(&r, 1000).map(|f| (-400..=400).map(|a| f.output(a)).collect::<std::vec::Vec<_>>());
        let exact: std::vec::Vec<_> = (-400..=400).map(|a| r.output(a)).collect();
        assert_eq!(f, Some(exact));
        assert_eq!(r.output(2), 1); // 0.5 rounds up
        assert_eq!(r.output(-2), -1); // −0.5 rounds away from zero
        assert_eq!(r.output(-6), -2); // −1.5 as well
                                      // No right shift (r = 0, the zero point alone in `round`), and left shifts.
        for shift in [0, 1, 5] {
            let r = Requant::from_parts(7, 0x5A82_7999, shift, -3, (-128, 127)).unwrap_or(Requant::ZERO);
            let f =
                FastRequant::new(&r, 1000).map(|f| (-1000..=1000).map(|a| f.output(a)).collect::<std::vec::Vec<_>>());
            assert_eq!(f, Some((-1000..=1000).map(|a| r.output(a)).collect()), "shift {shift}");
        }
        // 2·(|acc| + |bias|) + 3 + |round| < 2^31 (round = 2^3 + 5·2^4 = 88).
        let r = Requant::from_parts(1000, 1 << 30, -3, 5, (-128, 127)).unwrap_or(Requant::ZERO);
        assert!(FastRequant::new(&r, (1 << 30) - 1046).is_some());
        assert!(FastRequant::new(&r, (1 << 30) - 1045).is_none());
        // Left shift 4: f = 32, so |acc| + |bias| < 2^26 (less the round term).
        let r = Requant::from_parts(1000, 1 << 30, 4, 0, (-128, 127)).unwrap_or(Requant::ZERO);
        assert!(FastRequant::new(&r, (1 << 26) - 1001).is_some());
        assert!(FastRequant::new(&r, (1 << 26) - 1000).is_none());
        assert!(matches!(ChannelRequant::new(&one_channel(1000, -3), 0, 1 << 30), Some(ChannelRequant::Exact(_))));
        assert!(matches!(ChannelRequant::new(&one_channel(1000, -3), 0, 1 << 20), Some(ChannelRequant::Fast(_))));
        // No right shift: fast form too; a left shift of 30: exact form.
        assert!(matches!(ChannelRequant::new(&one_channel(0, 0), 0, 10), Some(ChannelRequant::Fast(_))));
        assert!(matches!(ChannelRequant::new(&one_channel(0, 30), 0, 10), Some(ChannelRequant::Exact(_))));
        assert_eq!(acc_bound(9, -128), 9 * 128 * 255);
        assert_eq!(acc_bound(9, 127), 9 * 128 * 255);
        assert_eq!(acc_bound(9, 0), 9 * 128 * 128);
    }

    fn one_channel(bias: i32, shift: i32) -> ChannelQuant<'static> {
        let b: &'static [u8] = std::vec::Vec::leak(bias.to_le_bytes().to_vec());
        let m: &'static [u8] = std::vec::Vec::leak((1_i32 << 30).to_le_bytes().to_vec());
        let s: &'static [u8] = std::vec::Vec::leak(shift.to_le_bytes().to_vec());
        ChannelQuant {
            bias: Some(I32s::new(b)),
            multipliers: I32s::new(m),
            shifts: I32s::new(s),
            output_zero_point: 0,
            act_min: -128,
            act_max: 127,
        }
    }

    #[test]
    fn dot_with_offset() {
        assert_eq!(dot_offset(&[1, 2, 3], &[4, 5, 6], 0), 32);
        assert_eq!(dot_offset(&[1, 2, 3], &[4, 5, 6], 1), 32 - 15);
        assert_eq!(dot_offset(&[-128; 4], &[-128; 4], 127), 4 * (-255) * (-128));
    }
}
