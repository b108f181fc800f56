//! FULLY_CONNECTED int8 (TFLM's `FullyConnected` / `FullyConnectedPerChannel`).
//!
//! `out[o] = clamp(zp_out + M_o · (bias[o] + Σ_i w[o, i] · (in[i] − zp_in)))` over the
//! flattened input. Weights are symmetric (zero point 0). Layout: weights `[C_out, N]`.

#[cfg(microcnn_arm_dsp)]
use super::im2col::dot_3x1;
use super::im2col::{dot_2x1, Columns, COLUMN_MAX};
use super::{acc_bound, reference, ChannelQuant, ChannelRequant, Requant};

/// Parameters of a dense layer.
#[derive(Clone, Copy, Debug)]
pub struct DenseParams<'a> {
    /// int8 weights `[C_out, N]`.
    pub weights: &'a [i8],
    /// Bias, requantization and clamp per output unit.
    pub quant: ChannelQuant<'a>,
}

/// Runs a dense layer: `input` has `N` values, `output` has `C_out`.
///
/// Inputs up to 1024 values run the im2col kernel (the input widened once into a
/// column on the stack, 2 KiB; two output units per pass); longer ones the
/// [reference kernel](mod@super::reference).
pub fn fully_connected_s8(input: &[i8], input_zero_point: i32, output: &mut [i8], params: &DenseParams<'_>) {
    let n = input.len();
    if n == 0 || n > COLUMN_MAX {
        reference::fully_connected_s8(input, input_zero_point, output, params);
        return;
    }
    if (0..output.len()).any(|o| Requant::new(&params.quant, o).is_none()) {
        reference::fully_connected_s8(input, input_zero_point, output, params);
        return;
    }
    let mut columns = Columns::new();
    let mut column = columns.column(0);
    let grouped = n.is_multiple_of(4);
    column.run(0, input, input_zero_point.wrapping_neg(), grouped);
    column.finish(n, grouped);
    let Some(weights) = params.weights.get(..output.len() * n) else {
        return;
    };
    let bound = acc_bound(n, input_zero_point);
    let requant = |o: usize, acc: i32| unit_output(&params.quant, o, bound, acc);
    let mut o = 0;
    // DSP cores: three output units per pass (one column load for three rows).
    #[cfg(microcnn_arm_dsp)]
    let output = {
        // 3k + 1 units run as 3(k − 1) + 2 + 2 (no single unit through the pair kernel).
        let units = output.len();
        let threes = if units % 3 == 1 && units >= 4 { units / 3 - 1 } else { units / 3 };
        let (head, rest) = output.split_at_mut(3 * threes);
        for y in head.chunks_exact_mut(3) {
            let Some(rows) = weights.get(o * n..) else {
                return;
            };
            let acc = dot_3x1(rows, n, &columns);
            y[0] = requant(o, acc[0]);
            y[1] = requant(o + 1, acc[1]);
            y[2] = requant(o + 2, acc[2]);
            o += 3;
        }
        rest
    };
    let mut outputs = output.chunks_exact_mut(2);
    for y in &mut outputs {
        // Each row slice runs on to the end of the weights (see `dot_2x1`).
        let (Some(w0), Some(w1)) = (weights.get(o * n..), weights.get((o + 1) * n..)) else {
            return;
        };
        let acc = dot_2x1(w0, w1, n, &columns);
        y[0] = requant(o, acc[0]);
        y[1] = requant(o + 1, acc[1]);
        o += 2;
    }
    if let (Some(y), Some(w)) = (outputs.into_remainder().first_mut(), weights.get(o * n..)) {
        *y = requant(o, dot_2x1(w, w, n, &columns)[0]);
    }
}

/// Unit `o`'s output for `acc` (one call per unit: code size over a few instructions).
#[inline(never)]
fn unit_output(quant: &ChannelQuant<'_>, o: usize, bound: i64, acc: i32) -> i8 {
    ChannelRequant::new(quant, o, bound).map_or(0, |r| r.output(acc))
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
        let params = DenseParams {
            weights: &weights,
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
