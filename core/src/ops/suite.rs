//! One kernel suite: every optimised kernel against its reference kernel
//! ([`reference`]) over random shapes, strides, paddings (SAME and
//! VALID), dilations, zero points, per-channel quantization and clamp ranges, with
//! `assert_eq!` on whole outputs.
//!
//! On the host this checks the portable kernels; the DSP kernels run the same
//! models inside QEMU (`tests/tests/firmware_models.rs`), compared byte for byte
//! with the host.

use super::conv::{conv2d_s8, ConvParams, Window};
use super::dense::{fully_connected_s8, DenseParams};
use super::depthwise::depthwise_conv2d_s8;
use super::depthwise3x3::depthwise3x3_s8;
use super::pool::{avg_pool2d_s8, max_pool2d_s8, PoolParams};
use super::{reference, ChannelQuant, I32s};
use crate::quant::quantize_multiplier;
use crate::shape::{output_size, padding_before, Padding, Shape};
use proptest::prelude::*;

/// Little-endian bytes of `values`.
fn le(values: &[i32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Requantization data for `channels` channels.
#[derive(Debug, Clone)]
struct Quant {
    bias: Option<Vec<u8>>,
    multipliers: Vec<u8>,
    shifts: Vec<u8>,
    output_zero_point: i32,
    act_min: i8,
    act_max: i8,
}

impl Quant {
    fn channel_quant(&self) -> ChannelQuant<'_> {
        ChannelQuant {
            bias: self.bias.as_deref().map(I32s::new),
            multipliers: I32s::new(&self.multipliers),
            shifts: I32s::new(&self.shifts),
            output_zero_point: self.output_zero_point,
            act_min: self.act_min,
            act_max: self.act_max,
        }
    }
}

prop_compose! {
    fn quant(channels: usize)(
        scales in proptest::collection::vec(1e-5_f64..4.0, channels),
        bias in proptest::option::of(proptest::collection::vec(-20_000_i32..20_000, channels)),
        output_zero_point in -128_i32..128,
        bounds in any::<(i8, i8)>(),
    ) -> Quant {
        let (multipliers, shifts): (Vec<i32>, Vec<i32>) = scales.iter().map(|&s| quantize_multiplier(s)).unzip();
        Quant {
            bias: bias.map(|b| le(&b)),
            multipliers: le(&multipliers),
            shifts: le(&shifts),
            output_zero_point,
            act_min: bounds.0.min(bounds.1),
            act_max: bounds.0.max(bounds.1),
        }
    }
}

/// A window and the output shape it gives on `input` (`None` when VALID does not fit).
fn geometry(
    input: Shape,
    (kernel_h, kernel_w): (usize, usize),
    (stride_h, stride_w): (usize, usize),
    (dilation_h, dilation_w): (usize, usize),
    padding: Padding,
) -> Option<(Window, usize, usize)> {
    let out_h = output_size(input.height, kernel_h, stride_h, dilation_h, padding)?;
    let out_w = output_size(input.width, kernel_w, stride_w, dilation_w, padding)?;
    let window = Window {
        kernel_h,
        kernel_w,
        stride_h,
        stride_w,
        dilation_h,
        dilation_w,
        pad_top: padding_before(input.height, kernel_h, stride_h, dilation_h, out_h),
        pad_left: padding_before(input.width, kernel_w, stride_w, dilation_w, out_w),
    };
    Some((window, out_h, out_w))
}

fn padding() -> impl Strategy<Value = Padding> {
    prop_oneof![Just(Padding::Same), Just(Padding::Valid)]
}

#[derive(Debug, Clone)]
struct ConvCase {
    input: Vec<i8>,
    shape: Shape,
    weights: Vec<i8>,
    out_c: usize,
    kernel: (usize, usize),
    stride: (usize, usize),
    dilation: (usize, usize),
    padding: Padding,
    input_zero_point: i32,
    quant: Quant,
}

prop_compose! {
    fn conv_case(max_c: usize, max_kernel: usize, depthwise: bool)(
        (h, w, c, out_c) in (1_usize..12, 1_usize..12, 1_usize..=max_c, 1_usize..=4),
        kernel in (1..=max_kernel, 1..=max_kernel),
        stride in (1_usize..=3, 1_usize..=3),
        dilation in prop_oneof![3 => Just((1_usize, 1_usize)), 1 => (1_usize..=3, 1_usize..=3)],
        padding in padding(),
        input_zero_point in -128_i32..128,
        seed in any::<u64>(),
    )(
        out_c in Just(if depthwise { c * out_c } else { out_c * max_c.min(9) / 4 + out_c % 2 }),
        input in proptest::collection::vec(any::<i8>(), h * w * c),
        weights in proptest::collection::vec(-127_i8..=127, kernel.0 * kernel.1 * c * (if depthwise { out_c } else { out_c * max_c.min(9) / 4 + out_c % 2 })),
        quant in quant(if depthwise { c * out_c } else { out_c * max_c.min(9) / 4 + out_c % 2 }),
        h in Just(h), w in Just(w), c in Just(c), kernel in Just(kernel), stride in Just(stride),
        dilation in Just(dilation), padding in Just(padding), input_zero_point in Just(input_zero_point),
        _seed in Just(seed),
    ) -> ConvCase {
        let weights = if depthwise { weights[..kernel.0 * kernel.1 * out_c].to_vec() } else { weights };
        ConvCase {
            input, shape: Shape::new(h, w, c), weights, out_c, kernel, stride, dilation, padding,
            input_zero_point, quant,
        }
    }
}

prop_compose! {
    fn dw3x3_case()(
        (h, w, c) in (1_usize..14, 1_usize..14, prop_oneof![3 => 1_usize..=12, 1 => 13_usize..=40]),
        stride in (1_usize..=2, 1_usize..=2),
        dilation in prop_oneof![3 => Just((1_usize, 1_usize)), 1 => (1_usize..=2, 1_usize..=2)],
        padding in padding(),
        input_zero_point in -128_i32..128,
    )(
        input in proptest::collection::vec(any::<i8>(), h * w * c),
        weights in proptest::collection::vec(-127_i8..=127, 9 * c),
        quant in quant(c),
        h in Just(h), w in Just(w), c in Just(c), stride in Just(stride),
        dilation in Just(dilation), padding in Just(padding), input_zero_point in Just(input_zero_point),
    ) -> ConvCase {
        ConvCase {
            input, shape: Shape::new(h, w, c), weights, out_c: c, kernel: (3, 3), stride, dilation, padding,
            input_zero_point, quant,
        }
    }
}

fn run_conv(case: &ConvCase, depthwise: bool) -> Option<(Vec<i8>, Vec<i8>)> {
    let (window, out_h, out_w) = geometry(case.shape, case.kernel, case.stride, case.dilation, case.padding)?;
    let out_shape = Shape::new(out_h, out_w, case.out_c);
    let params = ConvParams {
        window,
        depth_multiplier: if depthwise { case.out_c / case.shape.channels } else { 1 },
        weights: &case.weights,
        quant: case.quant.channel_quant(),
    };
    let mut fast = vec![0_i8; out_shape.elements()];
    let mut slow = vec![0_i8; out_shape.elements()];
    if depthwise {
        depthwise_conv2d_s8(&case.input, case.shape, case.input_zero_point, &mut fast, out_shape, &params);
        reference::depthwise_conv2d_s8(&case.input, case.shape, case.input_zero_point, &mut slow, out_shape, &params);
    } else {
        conv2d_s8(&case.input, case.shape, case.input_zero_point, &mut fast, out_shape, &params);
        reference::conv2d_s8(&case.input, case.shape, case.input_zero_point, &mut slow, out_shape, &params);
    }
    Some((fast, slow))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn conv_matches_reference(case in conv_case(9, 4, false)) {
        if let Some((fast, slow)) = run_conv(&case, false) {
            prop_assert_eq!(fast, slow);
        }
    }

    /// Short filters (`KH·KW·C_in ≤ 16`: 1- and 3-channel first layers, 1×1
    /// convolutions) run the row kernel.
    #[test]
    fn conv_short_filters_matches_reference(case in conv_case(3, 3, false)) {
        if let Some((fast, slow)) = run_conv(&case, false) {
            prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn conv_wide_channels_matches_reference(case in conv_case(40, 2, false)) {
        if let Some((fast, slow)) = run_conv(&case, false) {
            prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn depthwise_matches_reference(case in conv_case(10, 4, true)) {
        if let Some((fast, slow)) = run_conv(&case, true) {
            prop_assert_eq!(fast, slow);
        }
    }

    /// The 3×3 kernel of DSP cores (its portable model of the assembly on the host):
    /// strides 1–2, dilations 1–2, SAME and VALID, odd widths, channel counts that are
    /// not multiples of 4 and beyond one 32-channel block.
    #[test]
    fn depthwise3x3_matches_reference(case in dw3x3_case()) {
        let Some((window, out_h, out_w)) = geometry(case.shape, case.kernel, case.stride, case.dilation, case.padding)
        else {
            return Ok(());
        };
        let out_shape = Shape::new(out_h, out_w, case.out_c);
        let params = ConvParams {
            window,
            depth_multiplier: 1,
            weights: &case.weights,
            quant: case.quant.channel_quant(),
        };
        let mut fast = vec![0_i8; out_shape.elements()];
        let mut slow = vec![0_i8; out_shape.elements()];
        // Every case has a proven fast requantization (scales and biases of real layers).
        prop_assert!(depthwise3x3_s8(&case.input, case.shape, case.input_zero_point, &mut fast, out_shape, &params));
        reference::depthwise_conv2d_s8(&case.input, case.shape, case.input_zero_point, &mut slow, out_shape, &params);
        prop_assert_eq!(fast, slow);
    }

    #[test]
    fn dense_matches_reference(
        (n, out) in (1_usize..1200, 1_usize..12),
        input_zero_point in -128_i32..128,
        seed in any::<u64>(),
        quant in quant(12),
    ) {
        let mut state = seed | 1;
        let mut next = || { state ^= state << 13; state ^= state >> 7; state ^= state << 17; state as i8 };
        let input: Vec<i8> = (0..n).map(|_| next()).collect();
        let weights: Vec<i8> = (0..n * out).map(|_| next().max(-127)).collect();
        let mut blocked = vec![0_i8; crate::format::dense_weights_len(out, n).unwrap()];
        prop_assert!(crate::format::pack_dense(&weights, out, n, &mut blocked));
        let params = DenseParams { weights: &blocked, input_len: n, units: out, quant: quant.channel_quant() };
        let mut fast = vec![0_i8; out];
        let mut slow = vec![0_i8; out];
        fully_connected_s8(&input, input_zero_point, &mut fast, &params);
        reference::fully_connected_s8(&input, input_zero_point, &mut slow, &params);
        prop_assert_eq!(&fast, &slow);
        // The same layer computed from the row-major weights, not through the layout.
        let q = quant.channel_quant();
        let row_major: Vec<i8> = (0..out)
            .map(|o| {
                let row = &weights[o * n..(o + 1) * n];
                let acc = row.iter().zip(&input).map(|(&w, &x)| i32::from(w) * (i32::from(x) - input_zero_point)).sum();
                q.output(o, acc)
            })
            .collect();
        prop_assert_eq!(fast, row_major);
    }

    #[test]
    fn pools_match_reference(
        (h, w, c) in (1_usize..12, 1_usize..12, 1_usize..20),
        kernel in (1_usize..=4, 1_usize..=4),
        stride in (1_usize..=3, 1_usize..=3),
        padding in padding(),
        bounds in any::<(i8, i8)>(),
        seed in any::<u64>(),
    ) {
        let shape = Shape::new(h, w, c);
        let Some((window, out_h, out_w)) = geometry(shape, kernel, stride, (1, 1), padding) else {
            return Ok(());
        };
        let mut state = seed | 1;
        let mut next = || { state ^= state << 13; state ^= state >> 7; state ^= state << 17; state as i8 };
        let input: Vec<i8> = (0..shape.elements()).map(|_| next()).collect();
        let params = PoolParams { window, act_min: bounds.0.min(bounds.1), act_max: bounds.0.max(bounds.1) };
        let out_shape = Shape::new(out_h, out_w, c);
        let mut fast = vec![0_i8; out_shape.elements()];
        let mut slow = vec![0_i8; out_shape.elements()];
        max_pool2d_s8(&input, shape, &mut fast, out_shape, &params);
        reference::max_pool2d_s8(&input, shape, &mut slow, out_shape, &params);
        prop_assert_eq!(&fast, &slow);
        avg_pool2d_s8(&input, shape, &mut fast, out_shape, &params);
        reference::avg_pool2d_s8(&input, shape, &mut slow, out_shape, &params);
        prop_assert_eq!(&fast, &slow);
    }
}
