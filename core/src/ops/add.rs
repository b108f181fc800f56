//! ADD int8 (TFLM's integer `Add`), for residual connections whose inputs have
//! different scales.
//!
//! Each input is centred, shifted left by `left_shift` (20), scaled by its multiplier
//! (`s_i / (2·max(s_1, s_2))`), the two are summed and scaled by
//! `2·max(s_1, s_2) / (2^20 · s_out)`, then the output zero point is added and the
//! fused activation clamps. Works in place (the output may be either input).

use super::{FastRequant, Requant};
use crate::quant::multiply_by_quantized_multiplier;
use core::cell::Cell;

/// Parameters of an addition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddParams {
    /// Left shift applied to both centred inputs (20 for int8).
    pub left_shift: i32,
    /// First input's multiplier.
    pub input1_multiplier: i32,
    /// First input's shift.
    pub input1_shift: i32,
    /// Second input's multiplier.
    pub input2_multiplier: i32,
    /// Second input's shift.
    pub input2_shift: i32,
    /// Output multiplier.
    pub output_multiplier: i32,
    /// Output shift.
    pub output_shift: i32,
    /// First input's zero point.
    pub input1_zero_point: i32,
    /// Second input's zero point.
    pub input2_zero_point: i32,
    /// Output zero point.
    pub output_zero_point: i32,
    /// Lower clamp.
    pub act_min: i8,
    /// Upper clamp.
    pub act_max: i8,
}

impl AddParams {
    /// One output element from one element of each input.
    #[inline]
    pub fn apply(&self, a: i8, b: i8) -> i8 {
        let shifted1 = (i32::from(a) - self.input1_zero_point) << self.left_shift;
        let shifted2 = (i32::from(b) - self.input2_zero_point) << self.left_shift;
        let scaled1 = multiply_by_quantized_multiplier(shifted1, self.input1_multiplier, self.input1_shift);
        let scaled2 = multiply_by_quantized_multiplier(shifted2, self.input2_multiplier, self.input2_shift);
        let sum = scaled1.wrapping_add(scaled2);
        let out = multiply_by_quantized_multiplier(sum, self.output_multiplier, self.output_shift)
            .wrapping_add(self.output_zero_point);
        out.clamp(i32::from(self.act_min), i32::from(self.act_max)) as i8
    }
}

/// Elements from which [`add_s8`] builds its per-value tables (512 terms to compute).
const TABLE_FROM: usize = 512;

/// Adds two tensors element by element. The three slices may be the same memory.
///
/// From 512 elements on, each input's scaled term — a function of its int8
/// value only — comes from a 256-entry table computed once with the same arithmetic
/// (2 KiB of stack), and the output scaling is prepared once; the result is bit for
/// bit [`AddParams::apply`].
pub fn add_s8(input1: &[Cell<i8>], input2: &[Cell<i8>], output: &[Cell<i8>], params: &AddParams) {
    let prepared = Requant::from_parts(
        0,
        params.output_multiplier,
        params.output_shift,
        params.output_zero_point,
        (params.act_min, params.act_max),
    );
    let Some(exact) = prepared.filter(|_| input1.len() >= TABLE_FROM) else {
        for ((a, b), o) in input1.iter().zip(input2).zip(output) {
            o.set(params.apply(a.get(), b.get()));
        }
        return;
    };
    let term = |q: i32, zero_point: i32, multiplier: i32, shift: i32| {
        multiply_by_quantized_multiplier((q - zero_point) << params.left_shift, multiplier, shift)
    };
    let mut table1 = [0_i32; 256];
    let mut table2 = [0_i32; 256];
    for (v, (t1, t2)) in table1.iter_mut().zip(table2.iter_mut()).enumerate() {
        let q = v as i32 - 128;
        *t1 = term(q, params.input1_zero_point, params.input1_multiplier, params.input1_shift);
        *t2 = term(q, params.input2_zero_point, params.input2_multiplier, params.input2_shift);
    }
    let index = |q: i8| usize::from(q as u8 ^ 0x80);
    let largest = |t: &[i32; 256]| t.iter().map(|v| i64::from(*v).abs()).max().unwrap_or(0);
    // The table sums are the accumulators of the output scaling (bias 0).
    if let Some(fast) = FastRequant::new(&exact, largest(&table1) + largest(&table2)) {
        for ((a, b), o) in input1.iter().zip(input2).zip(output) {
            let sum = table1[index(a.get())].wrapping_add(table2[index(b.get())]);
            o.set(fast.output(sum));
        }
        return;
    }
    for ((a, b), o) in input1.iter().zip(input2).zip(output) {
        let sum = table1[index(a.get())].wrapping_add(table2[index(b.get())]);
        o.set(exact.output(sum));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::quantize_multiplier;

    fn params(s1: f64, s2: f64, s_out: f64, zp: (i32, i32, i32)) -> AddParams {
        let twice_max = 2.0 * s1.max(s2);
        let (m1, sh1) = quantize_multiplier(s1 / twice_max);
        let (m2, sh2) = quantize_multiplier(s2 / twice_max);
        let (mo, sho) = quantize_multiplier(twice_max / ((1 << 20) as f64 * s_out));
        AddParams {
            left_shift: 20,
            input1_multiplier: m1,
            input1_shift: sh1,
            input2_multiplier: m2,
            input2_shift: sh2,
            output_multiplier: mo,
            output_shift: sho,
            input1_zero_point: zp.0,
            input2_zero_point: zp.1,
            output_zero_point: zp.2,
            act_min: -128,
            act_max: 127,
        }
    }

    #[test]
    fn different_scales_and_in_place() {
        // real a = 0.1·(q − 2), real b = 0.3·(q + 1), out scale 0.2, zp 0
        let p = params(0.1, 0.3, 0.2, (2, -1, 0));
        assert_eq!(p.apply(12, 1), 8); // 1.0 + 0.6 = 1.6 → 8
        assert_eq!(p.apply(-128, -128), -128); // saturates
        assert_eq!(p.apply(127, 127), 127);
        let mut data = [12_i8, 22];
        let cells = Cell::from_mut(&mut data[..]).as_slice_of_cells();
        let b = [Cell::new(1_i8), Cell::new(-1)];
        add_s8(cells, &b, cells, &p);
        assert_eq!(data, [8, 10]); // 1.0 + 0.6; 2.0 + 0.0
    }

    proptest::proptest! {
        /// The fast output scaling (`FastRequant` on the table sums) is TFLM's, ties included (small right shifts, all
        /// sums near zero and up to the bound).
        #[test]
        fn fast_scale_is_exact(
            real in 1e-3_f64..3.0,
            zp in -128_i32..128,
            bound in 1_i64..5_000_000,
            seed in proptest::prelude::any::<u64>(),
        ) {
            let (mo, so) = quantize_multiplier(real);
            let mut p = params(0.1, 0.3, 0.2, (0, 0, zp));
            p.output_multiplier = mo;
            p.output_shift = so;
            p.act_min = -100;
            let exact = Requant::from_parts(0, mo, so, zp, (p.act_min, p.act_max)).unwrap();
            let fast = FastRequant::new(&exact, bound).unwrap();
            let mut state = seed | 1;
            for x in (-300..300).chain((0..2000).map(|_| {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                (state % (2 * bound as u64 + 1)) as i64 - bound
            }).map(|v| v as i32)) {
                proptest::prop_assert_eq!(fast.output(x), exact.output(x), "x = {}", x);
            }
        }

        /// The table path gives `apply`'s bytes.
        #[test]
        fn tables_match_apply(
            s1 in 0.001_f64..1.0, s2 in 0.001_f64..1.0, s_out in 0.001_f64..2.0,
            zp in (-128_i32..128, -128_i32..128, -128_i32..128),
            seed in proptest::prelude::any::<u64>(),
        ) {
            let p = params(s1, s2, s_out, zp);
            let mut state = seed | 1;
            let mut next = || { state ^= state << 13; state ^= state >> 7; state ^= state << 17; state as i8 };
            let a: Vec<Cell<i8>> = (0..600).map(|_| Cell::new(next())).collect();
            let b: Vec<Cell<i8>> = (0..600).map(|_| Cell::new(next())).collect();
            let out: Vec<Cell<i8>> = (0..600).map(|_| Cell::new(0)).collect();
            add_s8(&a, &b, &out, &p);
            for i in 0..600 {
                proptest::prop_assert_eq!(out[i].get(), p.apply(a[i].get(), b[i].get()));
            }
        }
    }
}
