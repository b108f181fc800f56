//! SOFTMAX int8 with TFLM's fixed-point algorithm (not a lookup table).
//!
//! Per row (all channels of one pixel): `d = x − max`; for `d ≥ diff_min`,
//! `e = exp(d·β·s_in)` in Q0.31 from the Q5.26 rescaled difference; the sum of `e`
//! in Q12.19; its reciprocal; `out = e × 1/Σ` rounded to 1/256 and shifted by −128.
//! Entries below `diff_min` give −128. Output scale 1/256, zero point −128.
//! Works in place: each output element is written after its input was last read.

use super::I32s;
use crate::format::SOFTMAX_TABLE_LEN;
use crate::quant::{
    exp_on_negative_values, reciprocal, rescale, rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
    SOFTMAX_ACCUM_INTEGER_BITS, SOFTMAX_DIFF_INTEGER_BITS,
};
use core::cell::Cell;

/// Parameters of a softmax (from `β` and the input scale, computed at export).
#[derive(Clone, Copy, Debug)]
pub struct SoftmaxParams<'a> {
    /// Q31 multiplier of `β · s_in · 2^26`.
    pub input_multiplier: i32,
    /// Its left shift.
    pub input_left_shift: i32,
    /// The most negative difference that still contributes.
    pub diff_min: i32,
    /// The exps of the 256 possible differences, computed offline
    /// ([`exp_table_entry`](Self::exp_table_entry) for `k` in 0..256; the loader checks
    /// every entry), or `None`: the kernel then computes each exp.
    pub exp_table: Option<I32s<'a>>,
}

impl SoftmaxParams<'_> {
    /// Not inlined: called from both passes (code size).
    #[inline(never)]
    fn exp(&self, diff: i32) -> i32 {
        let shifted = diff.wrapping_mul(1_i32.wrapping_shl(self.input_left_shift as u32));
        let rescaled = saturating_rounding_doubling_high_mul(shifted, self.input_multiplier);
        exp_on_negative_values(rescaled, SOFTMAX_DIFF_INTEGER_BITS)
    }

    /// `exp(diff)`, 0 below `diff_min`.
    #[inline(always)]
    fn exp_or_zero(&self, diff: i32) -> i32 {
        if diff >= self.diff_min {
            self.exp(diff)
        } else {
            0
        }
    }

    /// Entry `k` of the exp table: the exp of the difference `−k`, 0 below `diff_min`.
    pub fn exp_table_entry(&self, k: usize) -> i32 {
        self.exp_or_zero(-(k.min(SOFTMAX_TABLE_LEN) as i32))
    }

    /// Whether `table` holds exactly the entries of [`exp_table_entry`](Self::exp_table_entry).
    pub fn table_matches(&self, table: I32s<'_>) -> bool {
        table.len() == SOFTMAX_TABLE_LEN && (0..SOFTMAX_TABLE_LEN).all(|k| table.get(k) == self.exp_table_entry(k))
    }
}

/// Softmax over rows of `depth` values; `input` and `output` may be the same memory.
pub fn softmax_s8(input: &[Cell<i8>], output: &[Cell<i8>], depth: usize, params: &SoftmaxParams<'_>) {
    if depth == 0 {
        return;
    }
    match params.exp_table.filter(|t| t.len() == SOFTMAX_TABLE_LEN) {
        // Entry k is the exp of −k; k = max − x is in 0..=255 for int8 values.
        Some(table) => {
            softmax_rows::<false>(input, output, depth, move |k| table.get(k as usize & (SOFTMAX_TABLE_LEN - 1)))
        }
        None => softmax_rows::<true>(input, output, depth, |k| params.exp_or_zero(-k)),
    }
}

/// TFLM's two passes over each row with the exps from `exp` (`exp(k)` is the exp of the
/// difference `x − max = −k`, 0 below `diff_min`): an entry whose exp is 0 adds nothing
/// to the sum and gives −128, exactly as one below `diff_min` does. With `CACHE`, the
/// first pass keeps the row's first [`EXP_CACHE`] exps for the second instead of
/// computing each twice.
#[inline(never)]
fn softmax_rows<const CACHE: bool>(input: &[Cell<i8>], output: &[Cell<i8>], depth: usize, exp: impl Fn(i32) -> i32) {
    for (row_in, row_out) in input.chunks_exact(depth).zip(output.chunks_exact(depth)) {
        let max = i32::from(row_in.iter().map(Cell::get).max().unwrap_or(i8::MIN));
        let mut cached = [0_i32; EXP_CACHE];
        let mut sum_of_exps = 0_i32; // Q12.19
        for (i, x) in row_in.iter().enumerate() {
            let e = exp(max - i32::from(x.get()));
            if let (true, Some(slot)) = (CACHE, cached.get_mut(i)) {
                *slot = e;
            }
            sum_of_exps = sum_of_exps.wrapping_add(rescale(e, 0, SOFTMAX_ACCUM_INTEGER_BITS));
        }
        let (scale, bits_over_unit) = reciprocal(sum_of_exps, SOFTMAX_ACCUM_INTEGER_BITS);
        let exponent = (bits_over_unit + 31 - 8).clamp(0, 31);
        for (i, (x, o)) in row_in.iter().zip(row_out).enumerate() {
            let e = match (CACHE, cached.get(i)) {
                (true, Some(&e)) => e,
                _ => exp(max - i32::from(x.get())),
            };
            let unsat = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scale, e), exponent);
            o.set((unsat - 128).clamp(-128, 127) as i8);
        }
    }
}

/// Longest row whose exps are kept on the stack (256 bytes) between the two passes.
const EXP_CACHE: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::softmax_params;

    fn run(values: &mut [i8], scale: f32) {
        let (input_multiplier, input_left_shift, diff_min) = softmax_params(1.0, scale);
        let p = SoftmaxParams { input_multiplier, input_left_shift, diff_min, exp_table: None };
        let n = values.len();
        let cells = Cell::from_mut(values).as_slice_of_cells();
        softmax_s8(cells, cells, n, &p);
    }

    /// TFLM's two passes as written (the exp computed in each): the cached exps give
    /// the same bytes, for rows shorter and longer than the cache.
    fn two_pass(row: &[i8], p: &SoftmaxParams<'_>) -> std::vec::Vec<i8> {
        extern crate std;
        let max = i32::from(row.iter().copied().max().unwrap_or(i8::MIN));
        let mut sum = 0_i32;
        for &x in row {
            let diff = i32::from(x) - max;
            if diff >= p.diff_min {
                sum = sum.wrapping_add(rescale(p.exp(diff), 0, SOFTMAX_ACCUM_INTEGER_BITS));
            }
        }
        let (scale, bits) = reciprocal(sum, SOFTMAX_ACCUM_INTEGER_BITS);
        let exponent = (bits + 31 - 8).clamp(0, 31);
        row.iter()
            .map(|&x| {
                let diff = i32::from(x) - max;
                if diff >= p.diff_min {
                    let unsat =
                        rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scale, p.exp(diff)), exponent);
                    (unsat - 128).clamp(-128, 127) as i8
                } else {
                    -128
                }
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn cached_exps_match_two_passes(
            row in proptest::collection::vec(proptest::prelude::any::<i8>(), 1..100),
            scale in 0.001_f32..2.0,
        ) {
            let (input_multiplier, input_left_shift, diff_min) = softmax_params(1.0, scale);
            let p = SoftmaxParams { input_multiplier, input_left_shift, diff_min, exp_table: None };
            let mut got = row.clone();
            let n = got.len();
            let cells = Cell::from_mut(&mut got[..]).as_slice_of_cells();
            softmax_s8(cells, cells, n, &p);
            let want = two_pass(&row, &p);
            proptest::prop_assert_eq!(&got, &want);
            // The same with the exps read from the table.
            let table: std::vec::Vec<u8> =
                (0..SOFTMAX_TABLE_LEN).flat_map(|k| p.exp_table_entry(k).to_le_bytes()).collect();
            let with_table = SoftmaxParams { exp_table: Some(I32s::new(&table)), ..p };
            proptest::prop_assert!(with_table.table_matches(I32s::new(&table)));
            let mut got = row.clone();
            let cells = Cell::from_mut(&mut got[..]).as_slice_of_cells();
            softmax_s8(cells, cells, n, &with_table);
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn uniform_and_peaked_rows() {
        let mut uniform = [5_i8; 4];
        run(&mut uniform, 0.1);
        assert_eq!(uniform, [-64; 4]); // 0.25 × 256 − 128
        let mut peaked = [127_i8, -128];
        run(&mut peaked, 0.5); // e^-127.5 vanishes: all mass on the first entry
        assert_eq!(peaked, [127, -128]);
    }

    #[test]
    fn close_to_real_softmax() {
        extern crate std;
        let mut v = [10_i8, 0, -10, 20];
        let scale = 0.05_f32;
        let real: std::vec::Vec<f64> = v.iter().map(|&x| (f64::from(x) * f64::from(scale)).exp()).collect();
        let total: f64 = real.iter().sum();
        run(&mut v, scale);
        for (q, r) in v.iter().zip(&real) {
            let got = (f64::from(*q) + 128.0) / 256.0;
            assert!((got - r / total).abs() <= 1.0 / 256.0, "{got} vs {}", r / total);
        }
    }
}
