//! FULLY_CONNECTED int8 (TFLM's `FullyConnected` / `FullyConnectedPerChannel`).
//!
//! `out[o] = clamp(zp_out + M_o · (bias[o] + Σ_i w[o, i] · (in[i] − zp_in)))` over the
//! flattened input. Weights are symmetric (zero point 0), stored in the blob in the
//! [`DENSE_BLOCKED`](crate::format::weight_layout::DENSE_BLOCKED) layout
//! ([`format::dense_index`]): blocks of four output units, each group of four inputs
//! holding the four units' weights in turn, so a kernel reads one word per unit per
//! group and the input once per block.

#[cfg(microcnn_arm_dsp)]
use super::arch::arm_dsp::{dense_block1, dense_block2, dense_block4, dense_column};
use super::ChannelQuant;
use crate::format;

/// Parameters of a dense layer.
#[derive(Clone, Copy, Debug)]
pub struct DenseParams<'a> {
    /// int8 weights `[C_out, N]` in the
    /// [`DENSE_BLOCKED`](crate::format::weight_layout::DENSE_BLOCKED) layout
    /// ([`format::dense_weights_len`] bytes).
    pub weights: &'a [i8],
    /// `N`, the flattened input length.
    pub input_len: usize,
    /// `C_out`, the number of output units.
    pub units: usize,
    /// Bias, requantization and clamp per output unit.
    pub quant: ChannelQuant<'a>,
}

impl DenseParams<'_> {
    /// Weight `(o, i)` (0 outside the weights).
    #[inline(always)]
    pub fn weight(&self, o: usize, i: usize) -> i8 {
        self.weights.get(format::dense_index(self.units, self.input_len, o, i)).copied().unwrap_or(0)
    }
}

/// Runs a dense layer: `input` has `N` values, `output` has `C_out`.
///
/// One pass per block of output units over the input: on DSP cores the input widened
/// once into a column on the stack (inputs up to 1024, weights word-aligned), else read
/// directly by the portable loop.
pub fn fully_connected_s8(input: &[i8], input_zero_point: i32, output: &mut [i8], params: &DenseParams<'_>) {
    let (n, units) = (input.len(), output.len());
    let weights = match format::dense_weights_len(units, n) {
        Some(len) if n == params.input_len && units == params.units => params.weights.get(..len),
        _ => None,
    };
    let Some(weights) = weights else {
        return;
    };
    let n4 = n.next_multiple_of(4);
    // One output per unit: the plain requantization (any multiplier and shift, as
    // TFLM) costs less than preparing a faster one.
    let mut store = |first: usize, acc: &[i32]| {
        for (k, &a) in acc.iter().enumerate() {
            if let Some(y) = output.get_mut(first + k) {
                *y = params.quant.output(first + k, a);
            }
        }
    };
    #[cfg(microcnn_arm_dsp)]
    {
        let done = (weights.as_ptr() as usize).is_multiple_of(4)
            && dense_column(input, input_zero_point.wrapping_neg(), |column| {
                let groups = n4 / 4;
                let mut o = 0;
                while o < units {
                    let (k, first) = format::dense_block(units, o);
                    let block = weights.get(first * n4..).unwrap_or(&[]);
                    let ok = match k {
                        4 => dense_block4(block, column, groups).map(|acc| store(first, &acc)),
                        2 => dense_block2(block, column, groups).map(|acc| store(first, &acc)),
                        _ => dense_block1(block, column, groups).map(|acc| store(first, &[acc])),
                    };
                    if ok.is_none() {
                        return false;
                    }
                    o += k;
                }
                true
            })
            .unwrap_or(false);
        if done {
            return;
        }
    }
    let mut o = 0;
    while o < units {
        let (k, first) = format::dense_block(units, o);
        let block = weights.get(first * n4..(first + k) * n4).unwrap_or(&[]);
        match k {
            4 => store(first, &block_portable::<4>(block, input, input_zero_point)),
            2 => store(first, &block_portable::<2>(block, input, input_zero_point)),
            _ => store(first, &block_portable::<1>(block, input, input_zero_point)),
        }
        o += k;
    }
}

/// One block of `K` units (`block`: per group of four inputs, each unit's four weights
/// in turn) over the whole input, `x − zp` formed on the fly. Validation bounds the
/// input length (at most 65,536 products of at most 255 × 128), so the sums fit an
/// `i32`; they wrap, never panic, for longer inputs given directly.
#[inline(always)]
fn block_portable<const K: usize>(block: &[i8], input: &[i8], zero_point: i32) -> [i32; K] {
    let mut acc = [0_i32; K];
    for (w, x) in block.chunks_exact(4 * K).zip(input.chunks(4)) {
        let mut v = [0_i32; 4];
        for (d, &x) in v.iter_mut().zip(x) {
            *d = i32::from(x) - zero_point;
        }
        for (a, w) in acc.iter_mut().zip(w.chunks_exact(4)) {
            let dot = i32::from(w[0]) * v[0] + i32::from(w[1]) * v[1] + i32::from(w[2]) * v[2] + i32::from(w[3]) * v[3];
            *a = a.wrapping_add(dot);
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::I32s;
    use crate::quant::quantize_multiplier;

    #[test]
    fn per_channel_scales_and_bias() {
        let input: [i8; 3] = [10, 20, 30];
        let weights: [i8; 6] = [1, 1, 1, -1, 0, 1];
        let (m1, s1) = quantize_multiplier(1.0);
        let (m2, s2) = quantize_multiplier(0.5);
        let mut mult = [0_u8; 8];
        let mut shift = [0_u8; 8];
        let mut bias = [0_u8; 8];
        mult[..4].copy_from_slice(&m1.to_le_bytes());
        mult[4..].copy_from_slice(&m2.to_le_bytes());
        shift[..4].copy_from_slice(&s1.to_le_bytes());
        shift[4..].copy_from_slice(&s2.to_le_bytes());
        bias[..4].copy_from_slice(&5_i32.to_le_bytes());
        bias[4..].copy_from_slice(&(-1_i32).to_le_bytes());
        let mut blocked = [0_i8; 8];
        assert!(format::pack_dense(&weights, 2, 3, &mut blocked));
        let params = DenseParams {
            weights: &blocked,
            input_len: 3,
            units: 2,
            quant: ChannelQuant {
                bias: Some(I32s::new(&bias)),
                multipliers: I32s::new(&mult),
                shifts: I32s::new(&shift),
                output_zero_point: 1,
                act_min: -128,
                act_max: 127,
            },
        };
        let mut out = [0_i8; 2];
        fully_connected_s8(&input, 10, &mut out, &params);
        // unit 0: (0 + 10 + 20) + 5 = 35 → 35 + 1 = 36
        // unit 1: (−0 + 20) − 1 = 19 → 19 × 0.5 = 9.5 → 10 (half away from zero) + 1 = 11
        assert_eq!(out, [36, 11]);
    }
}
