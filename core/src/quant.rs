//! Fixed-point requantization, as TensorFlow Lite Micro does it.
//!
//! A real multiplier `M` (for example `input_scale × weight_scale / output_scale`)
//! is stored as a Q0.31 integer `multiplier` in `[2^30, 2^31)` and a power-of-two
//! `shift`, so that `M ≈ multiplier / 2^31 × 2^shift`. Applying it to an `i32`
//! accumulator uses TFLM's default "double rounding":
//!
//! 1. if `shift > 0`, shift the accumulator left by `shift`;
//! 2. [`saturating_rounding_doubling_high_mul`] with the multiplier
//!    (round half away from zero of `a·b / 2^31`);
//! 3. if `shift < 0`, [`rounding_divide_by_pot`] by `-shift`
//!    (round half away from zero).
//!
//! The host computes multiplier and shift once, at export ([`quantize_multiplier`]);
//! the chip only runs the integer steps. The fixed-point helpers that TFLM's int8
//! softmax uses (gemmlowp's `exp_on_negative_values` and the Newton–Raphson
//! reciprocal) live here too, so every integer routine of the engine is in one place.

/// Round to nearest of `a × b / 2^31` (halves round up, toward +∞, because of the
/// asymmetric nudge), saturating the one overflow case
/// (`a = b = i32::MIN`). This is ARM's `SQRDMULH` / gemmlowp's
/// `SaturatingRoundingDoublingHighMul`.
#[inline(always)]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let product = i64::from(a) * i64::from(b);
    let nudge: i64 = if product >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // |product + nudge| < 2^62, and dividing by 2^31 truncates toward zero as C does.
    ((product + nudge) / (1_i64 << 31)) as i32
}

/// Arithmetic right shift by `exponent` (0..=31) rounding half away from zero
/// (gemmlowp's `RoundingDivideByPOT`).
#[inline(always)]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    let exponent = exponent.clamp(0, 31) as u32;
    let mask = ((1_i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// Applies a quantized multiplier to an accumulator: TFLM's
/// `MultiplyByQuantizedMultiplier` in its default double-rounding form.
///
/// `shift` is in `-31..=30`; positive values shift left before the multiply.
#[inline(always)]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left_shift = if shift > 0 { shift } else { 0 };
    let right_shift = if shift > 0 { 0 } else { -shift };
    // TFLM multiplies by 1 << left_shift in int32; the exporter keeps left shifts small
    // enough for real accumulators, and wrapping keeps this total for hostile inputs.
    let shifted = x.wrapping_mul(1_i32.wrapping_shl(left_shift as u32));
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right_shift)
}

/// Splits a non-negative real multiplier into a Q0.31 multiplier and a shift,
/// exactly as TFLite's `QuantizeMultiplier` (`frexp`, round half away from zero,
/// renormalise at 2^31, flush exponents below −31 to zero).
///
/// Returns `(multiplier, shift)` with `real ≈ multiplier × 2^(shift − 31)`.
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    if real == 0.0 || !real.is_finite() || real < 0.0 {
        return (0, 0);
    }
    let (fraction, mut shift) = frexp(real);
    let mut q_fixed = round_half_away_f64(fraction * (1_i64 << 31) as f64) as i64;
    if q_fixed == 1_i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    (q_fixed as i32, shift)
}

/// The multiplier and shift of a mean over `count` elements with real scale
/// `input_scale / output_scale` (TFLM's `QuantizedMeanOrSum`): the Q31 multiplier
/// is shifted left by `min(floor(log2 count), 32, 31 + shift)` and divided by
/// `count` with truncation, and the shift lowered by as much.
pub fn mean_multiplier(real_scale: f64, count: usize) -> (i32, i32) {
    let (multiplier, shift) = quantize_multiplier(real_scale);
    if count == 0 {
        return (multiplier, shift);
    }
    let log2 = 63 - (count as u64).leading_zeros() as i32;
    let extra = log2.min(32).min(31 + shift).max(0);
    let folded = ((i64::from(multiplier) << extra) / count as i64) as i32;
    (folded, shift - extra)
}

/// Splits `x` (finite, positive) into a fraction in `[0.5, 1)` and a power of two,
/// like C's `frexp`.
fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let exponent_bits = ((bits >> 52) & 0x7ff) as i32;
    if exponent_bits == 0 {
        // Subnormal: scale into the normal range first.
        let (fraction, exponent) = frexp(x * (1_u64 << 54) as f64);
        return (fraction, exponent - 54);
    }
    let exponent = exponent_bits - 1022;
    let fraction_bits = (bits & !(0x7ff_u64 << 52)) | (1022_u64 << 52);
    (f64::from_bits(fraction_bits), exponent)
}

/// `round()` of C: half away from zero. Exact for every finite `f64`.
pub fn round_half_away_f64(x: f64) -> f64 {
    if !x.is_finite() || x.abs() >= 4_503_599_627_370_496.0 {
        return x; // already an integer (or not finite)
    }
    let truncated = x as i64 as f64;
    let fraction = x - truncated; // exact
    if fraction >= 0.5 {
        truncated + 1.0
    } else if fraction <= -0.5 {
        truncated - 1.0
    } else {
        truncated
    }
}

/// `roundf()` of C: half away from zero, in `f32`. Exact for every finite `f32`.
pub fn round_half_away_f32(x: f32) -> f32 {
    if !x.is_finite() || x.abs() >= 8_388_608.0 {
        return x;
    }
    let truncated = x as i32 as f32;
    let fraction = x - truncated; // exact
    if fraction >= 0.5 {
        truncated + 1.0
    } else if fraction <= -0.5 {
        truncated - 1.0
    } else {
        truncated
    }
}

/// Quantizes a real value to int8 with `scale` and `zero_point` the way TFLM derives
/// activation bounds (`zero_point + round(value / scale)` in `f32`), clamped.
pub fn quantize_f32_to_i8(value: f32, scale: f32, zero_point: i32) -> i8 {
    let q = zero_point.saturating_add(round_half_away_f32(value / scale) as i32);
    q.clamp(i32::from(i8::MIN), i32::from(i8::MAX)) as i8
}

/// The int8 clamp range of a fused activation on an output with `scale` and
/// `zero_point` (TFLM's `CalculateActivationRangeQuantized`).
pub fn activation_range(activation: Activation, scale: f32, zero_point: i32) -> (i8, i8) {
    let quantize = |f: f32| zero_point.saturating_add(round_half_away_f32(f / scale) as i32);
    let (lo, hi) = match activation {
        Activation::None => (i32::from(i8::MIN), i32::from(i8::MAX)),
        Activation::Relu => (quantize(0.0), i32::from(i8::MAX)),
        Activation::Relu6 => (quantize(0.0), quantize(6.0)),
        Activation::ReluN1To1 => (quantize(-1.0), quantize(1.0)),
    };
    let lo = lo.max(i32::from(i8::MIN)).min(i32::from(i8::MAX));
    let hi = hi.min(i32::from(i8::MAX)).max(i32::from(i8::MIN));
    (lo as i8, hi as i8)
}

/// A fused activation function, as TFLite names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Activation {
    /// No clamp beyond the int8 range.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `min(max(x, -1), 1)`.
    ReluN1To1,
}

// ---------------------------------------------------------------------------------
// Softmax fixed point (gemmlowp semantics), Q-formats named by their integer bits.
// ---------------------------------------------------------------------------------

/// Integer bits of the scaled input difference fed to `exp` (Q5.26).
pub const SOFTMAX_DIFF_INTEGER_BITS: i32 = 5;
/// Integer bits of the sum of exponentials (Q12.19).
pub const SOFTMAX_ACCUM_INTEGER_BITS: i32 = 12;

/// gemmlowp's `RoundingHalfSum`: `(a + b) / 2` rounded half away from zero.
#[inline]
fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = i64::from(a) + i64::from(b);
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// Saturating multiply by `2^exponent` (rounding when `exponent < 0`).
#[inline]
fn saturating_rounding_multiply_by_pot(x: i32, exponent: i32) -> i32 {
    if exponent > 0 {
        let threshold = (1_i32 << (31 - exponent)) - 1;
        if x > threshold {
            i32::MAX
        } else if x < -threshold {
            i32::MIN
        } else {
            x << exponent
        }
    } else if exponent < 0 {
        rounding_divide_by_pot(x, -exponent)
    } else {
        x
    }
}

/// Changes a raw fixed-point value from `src_integer_bits` to `dst_integer_bits`
/// (gemmlowp's `Rescale`).
#[inline]
pub fn rescale(raw: i32, src_integer_bits: i32, dst_integer_bits: i32) -> i32 {
    saturating_rounding_multiply_by_pot(raw, src_integer_bits - dst_integer_bits)
}

/// `exp(x)` for `x` in `[-1/4, 0)`, all Q0.31 (Taylor series around −1/8).
fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const CONSTANT_TERM: i32 = 1_895_147_668; // exp(-1/8) in Q0.31
    const ONE_THIRD: i32 = 715_827_883; // 1/3 in Q0.31
    let mul = saturating_rounding_doubling_high_mul;
    let x = a.wrapping_add(1 << 28); // a + 1/8
    let x2 = mul(x, x);
    let x3 = mul(x2, x);
    let x4 = mul(x2, x2);
    let x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2);
    let inner = mul(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2);
    let x4_over_24_plus_x3_over_6_plus_x2_over_2 = saturating_rounding_multiply_by_pot(inner, -1);
    CONSTANT_TERM.wrapping_add(mul(CONSTANT_TERM, x.wrapping_add(x4_over_24_plus_x3_over_6_plus_x2_over_2)))
}

/// `exp(a)` for `a ≤ 0` given with `integer_bits` integer bits; result in Q0.31
/// (gemmlowp's `exp_on_negative_values`).
pub fn exp_on_negative_values(a: i32, integer_bits: i32) -> i32 {
    let fractional_bits = 31 - integer_bits;
    let one_quarter = 1_i32 << (fractional_bits - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(rescale(
        a_mod_quarter_minus_one_quarter,
        integer_bits,
        0,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    // exp(-2^k) in Q0.31 for k = -2..=4.
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947),
        (-1, 1_302_514_674),
        (0, 790_015_084),
        (1, 290_630_308),
        (2, 39_332_535),
        (3, 720_401),
        (4, 242),
    ];
    for (exponent, multiplier) in BARREL {
        if integer_bits > exponent {
            let shift = fractional_bits + exponent;
            if remainder & (1 << shift) != 0 {
                result = saturating_rounding_doubling_high_mul(result, multiplier);
            }
        }
    }
    if integer_bits > 5 {
        let clamp = -(1_i32 << (36 - integer_bits));
        if a < clamp {
            result = 0;
        }
    }
    if a == 0 {
        result = i32::MAX;
    }
    result
}

/// `1 / (1 + x)` for `x` in `[0, 1)`, Q0.31 in and out (three Newton–Raphson steps).
fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    let half_denominator = rounding_half_sum(a, i32::MAX);
    const CONSTANT_48_OVER_17: i32 = 1_515_870_810; // Q2.29
    const CONSTANT_NEG_32_OVER_17: i32 = -1_010_580_540; // Q2.29
    const ONE_Q2_29: i32 = 1 << 29;
    let mut x = CONSTANT_48_OVER_17
        .wrapping_add(saturating_rounding_doubling_high_mul(half_denominator, CONSTANT_NEG_32_OVER_17));
    for _ in 0..3 {
        let half_denominator_times_x = saturating_rounding_doubling_high_mul(half_denominator, x);
        let one_minus = ONE_Q2_29.wrapping_sub(half_denominator_times_x);
        let correction = rescale(saturating_rounding_doubling_high_mul(x, one_minus), 4, 2);
        x = x.wrapping_add(correction);
    }
    // ExactMulByPot<-1> turns Q2.29 into Q1.30 without touching the raw value.
    rescale(x, 1, 0)
}

/// Reciprocal of a positive fixed-point value with `integer_bits` integer bits
/// (TFLite's `GetReciprocal`): returns the Q0.31 reciprocal of the value
/// normalised into `[1, 2)` and the number of bits it was shifted by.
pub fn reciprocal(x: i32, integer_bits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros() as i32;
    let bits_over_unit = integer_bits - headroom_plus_one;
    let shifted_sum_minus_one = ((x as u32).wrapping_shl(headroom_plus_one as u32)).wrapping_sub(1_u32 << 31) as i32;
    (one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), bits_over_unit)
}

/// Softmax input scaling: `(multiplier, left_shift, diff_min)` for an int8 softmax
/// with `beta` on an input of `input_scale` (TFLite's `PreprocessSoftmaxScaling`
/// with 5 integer bits, and `-CalculateInputRadius(5, left_shift, 31)`).
pub fn softmax_params(beta: f32, input_scale: f32) -> (i32, i32, i32) {
    let max_real_multiplier = ((1_i64 << 31) - 1) as f64;
    let real = (f64::from(beta) * f64::from(input_scale) * (1_i64 << (31 - SOFTMAX_DIFF_INTEGER_BITS)) as f64)
        .min(max_real_multiplier);
    let (multiplier, left_shift) = quantize_multiplier(real);
    let max_input_rescaled = ((1_i64 << SOFTMAX_DIFF_INTEGER_BITS) - 1) as f64
        * (1_i64 << (31 - SOFTMAX_DIFF_INTEGER_BITS)) as f64
        / (1_i64 << left_shift.clamp(0, 62)) as f64;
    let radius = floor_f64(max_input_rescaled) as i32;
    (multiplier, left_shift, -radius)
}

fn floor_f64(x: f64) -> f64 {
    let r = round_half_away_f64(x);
    if r > x {
        r - 1.0
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 64-bit reference of the double-rounding pipeline, written from its definition
    /// (real arithmetic with explicit rounding), not from the fast path.
    fn reference_mbqm(x: i32, multiplier: i32, shift: i32) -> i32 {
        let left = shift.max(0);
        let right = (-shift).max(0);
        let shifted = (i64::from(x) << left) as i32 as i64; // int32 wrap as in C
        let product = shifted * i64::from(multiplier);
        // nearest of product / 2^31, halves toward +inf (what the nudge does)
        let high = (product + (1 << 30)).div_euclid(1 << 31);
        let high = if x == i32::MIN && multiplier == i32::MIN && left == 0 { i64::from(i32::MAX) } else { high };
        if right == 0 {
            return high as i32;
        }
        let divisor = 1_i64 << right;
        let magnitude = (high.abs() * 2 + divisor) / (2 * divisor);
        (if high < 0 { -magnitude } else { magnitude }) as i32
    }

    #[test]
    fn srdhm_known_values() {
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
        assert_eq!(saturating_rounding_doubling_high_mul(1 << 30, 1 << 30), 1 << 29);
        // 3 * 2^30 / 2^31 = 1.5 -> 2, but -1.5 -> -1: halves round toward +inf
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 30), 1); // 0.5 -> 1
        assert_eq!(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0); // -0.5 -> 0
        assert_eq!(saturating_rounding_doubling_high_mul(-5, 1 << 29), -1); // -1.25 -> -1
    }

    #[test]
    fn rounding_divide_known_values() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3); // 2.5 -> 3
        assert_eq!(rounding_divide_by_pot(-5, 1), -3); // -2.5 -> -3
        assert_eq!(rounding_divide_by_pot(7, 2), 2); // 1.75 -> 2
        assert_eq!(rounding_divide_by_pot(-6, 2), -2); // -1.5 -> -2
        assert_eq!(rounding_divide_by_pot(-5, 2), -1); // -1.25 -> -1
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(12345, 0), 12345);
    }

    #[test]
    fn quantize_multiplier_known_values() {
        assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
        assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
        assert_eq!(quantize_multiplier(0.25), (1 << 30, -1));
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        // 0.75 = 0.75 * 2^0 -> round(0.75 * 2^31)
        assert_eq!(quantize_multiplier(0.75), (1_610_612_736, 0));
        // just below 1.0: the mantissa rounds up to 2^31 and is renormalised
        assert_eq!(quantize_multiplier(1.0 - 1e-12), (1 << 30, 1));
        // tiny values flush to zero
        assert_eq!(quantize_multiplier(1e-12), (0, 0));
        assert_eq!(frexp(3.0), (0.75, 2));
        assert_eq!(frexp(f64::MIN_POSITIVE / 4.0), (0.5, -1023));
    }

    #[test]
    fn activation_ranges() {
        // scale 6/255, zp -128: relu6 spans the whole int8 range
        assert_eq!(activation_range(Activation::Relu6, 6.0 / 255.0, -128), (-128, 127));
        assert_eq!(activation_range(Activation::Relu, 0.1, 5), (5, 127));
        assert_eq!(activation_range(Activation::Relu6, 0.1, -10), (-10, 50));
        assert_eq!(activation_range(Activation::None, 0.1, 0), (-128, 127));
        assert_eq!(activation_range(Activation::ReluN1To1, 0.01, 0), (-100, 100));
        // out of range bounds saturate
        assert_eq!(activation_range(Activation::Relu, 0.1, 127), (127, 127));
    }

    #[test]
    fn exp_and_reciprocal_match_real_functions() {
        // exp(-x) in Q5.26 input → Q0.31 output, within a few ulps of the real value
        for i in 0..=640 {
            let x = -(i as f64) / 20.0;
            let raw = (x * (1_i64 << 26) as f64) as i32;
            let got = exp_on_negative_values(raw, 5) as f64 / (1_i64 << 31) as f64;
            let want = libm_exp(x);
            assert!((got - want).abs() < 1e-6, "exp({x}) = {got}, want {want}");
        }
        // 1 / (1 + x) for x in [0, 1)
        for i in 0..100 {
            let x = i as f64 / 100.0;
            let raw = (x * (1_i64 << 31) as f64) as i32;
            let got = one_over_one_plus_x_for_x_in_0_1(raw) as f64 / (1_i64 << 31) as f64;
            assert!((got - 1.0 / (1.0 + x)).abs() < 1e-6);
        }
    }

    fn libm_exp(x: f64) -> f64 {
        // the test runs on the host with std
        extern crate std;
        x.exp()
    }

    proptest! {
        #[test]
        fn mbqm_matches_64bit_reference(
            x in -(1_i32 << 24)..(1_i32 << 24),
            multiplier in (1_i32 << 30)..i32::MAX,
            shift in -31_i32..=6,
        ) {
            prop_assert_eq!(
                multiply_by_quantized_multiplier(x, multiplier, shift),
                reference_mbqm(x, multiplier, shift)
            );
        }

        #[test]
        fn mbqm_approximates_real_product(
            x in -(1_i32 << 20)..(1_i32 << 20),
            real in 1e-6_f64..4.0,
        ) {
            let (multiplier, shift) = quantize_multiplier(real);
            let got = multiply_by_quantized_multiplier(x, multiplier, shift) as f64;
            let want = x as f64 * real;
            // two roundings: at most one unit away, plus relative error of the Q31 multiplier
            prop_assert!((got - want).abs() <= 1.0 + want.abs() * 1e-9);
        }

        #[test]
        fn rounding_divide_matches_reference(x in any::<i32>(), e in 0_i32..=31) {
            let divisor = 1_i64 << e;
            let v = i64::from(x);
            let magnitude = (v.abs() * 2 + divisor) / (2 * divisor);
            let want = if v < 0 { -magnitude } else { magnitude };
            prop_assert_eq!(i64::from(rounding_divide_by_pot(x, e)), want);
        }

        #[test]
        fn quantize_multiplier_reconstructs(real in 1e-8_f64..1e4) {
            let (multiplier, shift) = quantize_multiplier(real);
            prop_assert!(multiplier >= 1 << 30);
            let back = multiplier as f64 * 2_f64.powi(shift - 31);
            prop_assert!((back - real).abs() <= real * 1e-9);
        }

        #[test]
        fn round_half_away_is_exact(x in -1e7_f32..1e7) {
            let r = round_half_away_f32(x);
            prop_assert_eq!(r, x.round());
            let d = x as f64 * 3.3;
            prop_assert_eq!(round_half_away_f64(d), d.round());
        }
    }
}
