//! The DSP and portable kernels of convolution, depthwise convolution, pooling and ADD
//! on the emulated chips, one single-layer model per shape class, each output compared
//! byte for byte with the host's: 1×1 convolutions on 4, 16 and 24 channels (the row
//! kernel's single-pass widening, the image regrouped into wider rows — 55 and 117
//! pixels too —, strides 1 and 2, clamps deferred to the row), 3×3
//! convolutions on 1 and 3 channels (the three-row kernel) and on 8; dense layers of
//! 1 to 17 units on 1 to 1,030 inputs (every block of the blocked weight layout); 3×3 depthwise with strides 1 and 2, SAME and VALID, odd
//! widths, channel counts that are not multiples of four and beyond one 32-channel
//! block, dilation 2, depth multiplier 2, a 5×5 kernel, ReLU6 clamps, border columns
//! run as one call per column (one and two per side, two whole blocks); average and max
//! pooling with windows clipped at the border; ADD with different scales.

use microcnn_core::ops::conv::Window;
use microcnn_core::quant::{activation_range, quantize_multiplier, Activation};
use microcnn_core::{Model, Shape};
use microcnn_tests::Xorshift;
use microcnn_tools::compile::graph::{ChannelConsts, Graph, LayerParams, OpDef, TensorDef};
use microcnn_tools::compile::{blob, plan};
use microcnn_tools::deploy::qemu::{self, Cpu};
use microcnn_tools::inspect::run;

struct Builder {
    graph: Graph,
    rng: Xorshift,
}

impl Builder {
    fn new(seed: u64) -> Self {
        Self { graph: Graph::default(), rng: Xorshift::new(seed) }
    }

    fn tensor(&mut self, shape: Shape, scale: f32, zero_point: i32) -> usize {
        let name = format!("t{}", self.graph.tensors.len());
        self.graph.tensors.push(TensorDef { name, shape, scale, zero_point });
        self.graph.tensors.len() - 1
    }

    fn finish(mut self, input: usize, output: usize) -> Vec<u8> {
        self.graph.input = input;
        self.graph.output = output;
        self.graph.name = "kernel".into();
        let shape = self.graph.tensors[output].shape;
        self.graph.output_dims = vec![shape.height, shape.width, shape.channels];
        self.graph.labels = (0..shape.channels).map(|c| format!("c{c}")).collect();
        let plan = plan::plan(&self.graph);
        blob::write(&self.graph, &plan).unwrap_or_else(|e| panic!("{e:#}"))
    }
}

/// One axis of a window: output size and leading padding (TFLM's SAME / VALID).
fn axis(input: usize, kernel: usize, stride: usize, dilation: usize, same: bool) -> (usize, usize) {
    let effective = (kernel - 1) * dilation + 1;
    if same || input < effective {
        let out = input.div_ceil(stride);
        (out, ((out - 1) * stride + effective).saturating_sub(input) / 2)
    } else {
        ((input - effective) / stride + 1, 0)
    }
}

fn window(input: Shape, kernel: usize, stride: usize, dilation: usize, same: bool) -> (Window, usize, usize) {
    let (h, top) = axis(input.height, kernel, stride, dilation, same);
    let (w, left) = axis(input.width, kernel, stride, dilation, same);
    let window = Window {
        kernel_h: kernel,
        kernel_w: kernel,
        stride_h: stride,
        stride_w: stride,
        dilation_h: dilation,
        dilation_w: dilation,
        pad_top: top,
        pad_left: left,
    };
    (window, h, w)
}

#[derive(Clone, Copy, Debug)]
struct Dw {
    shape: (usize, usize, usize),
    kernel: usize,
    stride: usize,
    dilation: usize,
    same: bool,
    multiplier: usize,
    relu6: bool,
}

fn depthwise_model(case: Dw, seed: u64) -> Vec<u8> {
    depthwise_model_scaled(case, seed, 0.05, false)
}

/// [`depthwise_model`] with output scale `scale` (0.02: a ReLU6 whose upper end,
/// `zp + 6 / 0.02`, lies past 127, so only the lower clamp acts). `big_last`: the last
/// channel's multiplier is 0.7 (right shift 0), which the channel-plane kernel refuses
/// only when it reaches that channel's group, after writing the earlier groups.
fn depthwise_model_scaled(case: Dw, seed: u64, scale: f32, big_last: bool) -> Vec<u8> {
    let mut b = Builder::new(seed);
    let (h, w, c) = case.shape;
    let input = b.tensor(Shape::new(h, w, c), 0.02, -7 + seed as i32 % 11);
    let (window, oh, ow) = window(Shape::new(h, w, c), case.kernel, case.stride, case.dilation, case.same);
    let out_c = c * case.multiplier;
    let zp = (seed as i32 % 9) - 4;
    let output = b.tensor(Shape::new(oh, ow, out_c), scale, zp);
    let (mut multipliers, mut shifts): (Vec<i32>, Vec<i32>) = (0..out_c)
        .map(|_| quantize_multiplier(0.02 * (0.002 + 0.02 * f64::from(b.rng.unit())) / f64::from(scale)))
        .unzip();
    if big_last {
        (multipliers[out_c - 1], shifts[out_c - 1]) = quantize_multiplier(0.7);
    }
    let bias = Some((0..out_c).map(|_| (b.rng.next_u64() % 4000) as i32 - 2000).collect());
    let activation = if case.relu6 { Activation::Relu6 } else { Activation::None };
    let (act_min, act_max) = activation_range(activation, scale, zp);
    let quant = ChannelConsts { bias, multipliers, shifts, act_min, act_max };
    let weights = (0..case.kernel * case.kernel * out_c).map(|_| b.rng.i8().max(-127)).collect();
    let params = LayerParams::DepthwiseConv2d { window, depth_multiplier: case.multiplier, weights, quant };
    b.graph.ops.push(OpDef { inputs: vec![input], output, params });
    b.finish(input, output)
}

/// One convolution: `out_c` filters of `kernel`×`kernel` on `shape`, input zero point
/// `zp`, with or without ReLU6.
fn conv_model(
    shape: (usize, usize, usize),
    out_c: usize,
    kernel: usize,
    stride: usize,
    relu6: bool,
    zp: i32,
    seed: u64,
) -> Vec<u8> {
    let mut b = Builder::new(seed);
    let shape = Shape::new(shape.0, shape.1, shape.2);
    let input = b.tensor(shape, 0.02, zp);
    let (window, oh, ow) = window(shape, kernel, stride, 1, true);
    let (scale, out_zp) = (0.05_f32, (seed as i32 % 9) - 4);
    let output = b.tensor(Shape::new(oh, ow, out_c), scale, out_zp);
    let (multipliers, shifts) = (0..out_c)
        .map(|_| quantize_multiplier(0.02 * (0.002 + 0.02 * f64::from(b.rng.unit())) / f64::from(scale)))
        .unzip();
    let bias = Some((0..out_c).map(|_| (b.rng.next_u64() % 4000) as i32 - 2000).collect());
    let activation = if relu6 { Activation::Relu6 } else { Activation::None };
    let (act_min, act_max) = activation_range(activation, scale, out_zp);
    let quant = ChannelConsts { bias, multipliers, shifts, act_min, act_max };
    let weights = (0..out_c * kernel * kernel * shape.channels).map(|_| b.rng.i8().max(-127)).collect();
    b.graph.ops.push(OpDef { inputs: vec![input], output, params: LayerParams::Conv2d { window, weights, quant } });
    b.finish(input, output)
}

/// One dense layer of `units` outputs on `n` inputs.
fn dense_model(n: usize, units: usize, zp: i32, seed: u64) -> Vec<u8> {
    let mut b = Builder::new(seed);
    let input = b.tensor(Shape::new(1, 1, n), 0.02, zp);
    let (scale, out_zp) = (0.05_f32, (seed as i32 % 9) - 4);
    let output = b.tensor(Shape::new(1, 1, units), scale, out_zp);
    let (multipliers, shifts) = (0..units)
        .map(|_| quantize_multiplier(0.02 * (0.0005 + 0.004 * f64::from(b.rng.unit())) / f64::from(scale)))
        .unzip();
    let bias = Some((0..units).map(|_| (b.rng.next_u64() % 4000) as i32 - 2000).collect());
    let quant = ChannelConsts { bias, multipliers, shifts, act_min: i8::MIN, act_max: i8::MAX };
    let weights = (0..units * n).map(|_| b.rng.i8().max(-127)).collect();
    b.graph.ops.push(OpDef { inputs: vec![input], output, params: LayerParams::FullyConnected { weights, quant } });
    b.finish(input, output)
}

fn pool_model(shape: (usize, usize, usize), kernel: usize, stride: usize, same: bool, avg: bool, seed: u64) -> Vec<u8> {
    let mut b = Builder::new(seed);
    let shape = Shape::new(shape.0, shape.1, shape.2);
    let input = b.tensor(shape, 0.02, 3);
    let (window, h, w) = window(shape, kernel, stride, 1, same);
    let output = b.tensor(Shape::new(h, w, shape.channels), 0.02, 3);
    let act = if seed.is_multiple_of(2) { (i8::MIN, i8::MAX) } else { (3, 100) };
    let params = if avg { LayerParams::AvgPool2d { window, act } } else { LayerParams::MaxPool2d { window, act } };
    b.graph.ops.push(OpDef { inputs: vec![input], output, params });
    b.finish(input, output)
}

/// `x + conv1×1(x)` with different scales (the layer table's ADD row).
fn add_model(shape: (usize, usize, usize), seed: u64) -> Vec<u8> {
    let mut b = Builder::new(seed);
    let shape = Shape::new(shape.0, shape.1, shape.2);
    let input = b.tensor(shape, 0.02, -7);
    let (window, _, _) = window(shape, 1, 1, 1, true);
    let y = b.tensor(shape, 0.05, 4);
    let c = shape.channels;
    let (multipliers, shifts) = (0..c).map(|_| quantize_multiplier(0.02 * 0.01 / 0.05)).unzip();
    let quant = ChannelConsts { bias: None, multipliers, shifts, act_min: i8::MIN, act_max: i8::MAX };
    let weights = (0..c * c).map(|_| b.rng.i8().max(-127)).collect();
    b.graph.ops.push(OpDef { inputs: vec![input], output: y, params: LayerParams::Conv2d { window, weights, quant } });
    let out_scale = 0.06_f32;
    let output = b.tensor(shape, out_scale, 2);
    let twice_max = 2.0 * 0.05_f64;
    let (m1, s1) = quantize_multiplier(f64::from(0.02_f32) / twice_max);
    let (m2, s2) = quantize_multiplier(f64::from(0.05_f32) / twice_max);
    let (mo, so) = quantize_multiplier(twice_max / (f64::from(1 << 20) * f64::from(out_scale)));
    let params = LayerParams::Add { params: [20, m1, s1, m2, s2, mo, so], act: (-100, 120) };
    b.graph.ops.push(OpDef { inputs: vec![input, y], output, params });
    b.finish(input, output)
}

fn models() -> Vec<(String, Vec<u8>)> {
    let dw = |shape, kernel, stride, dilation, same, multiplier, relu6| Dw {
        shape,
        kernel,
        stride,
        dilation,
        same,
        multiplier,
        relu6,
    };
    let cases = [
        dw((16, 16, 16), 3, 1, 1, true, 1, true),
        dw((16, 16, 24), 3, 2, 1, true, 1, false),
        dw((9, 7, 8), 3, 1, 1, false, 1, false),
        dw((7, 9, 5), 3, 2, 1, true, 1, true),
        dw((6, 11, 3), 3, 1, 1, true, 1, false),
        dw((5, 5, 37), 3, 1, 1, true, 1, true),
        dw((8, 9, 12), 3, 2, 1, false, 1, false),
        dw((10, 10, 6), 3, 1, 2, true, 1, false),
        dw((3, 3, 4), 3, 1, 1, true, 1, false),
        dw((2, 5, 4), 3, 1, 1, true, 1, false),
        dw((7, 7, 6), 3, 1, 1, true, 2, false),
        dw((9, 8, 10), 5, 1, 1, true, 1, true),
        dw((6, 6, 7), 2, 2, 1, false, 1, false),
        // Border columns batched over the interior rows: two whole blocks (40 channels),
        // two columns per side (dilation 2), stride 2 with padding on both sides.
        dw((11, 12, 40), 3, 1, 1, true, 1, true),
        dw((9, 12, 8), 3, 1, 2, true, 1, true),
        dw((9, 11, 8), 3, 2, 1, true, 1, false),
    ];
    let mut models = Vec::new();
    for (i, (shape, out_c, kernel, stride, relu6, zp)) in [
        ((16, 16, 16), 24, 1, 1, true, -7),
        ((16, 16, 16), 24, 1, 1, false, 5),
        ((5, 7, 4), 9, 1, 1, true, -128),
        ((7, 6, 16), 6, 1, 2, true, 3),
        ((8, 8, 24), 32, 1, 1, true, -7),
        ((11, 5, 24), 7, 1, 1, false, 9),
        ((13, 9, 16), 5, 1, 1, true, -100),
        ((9, 9, 24), 12, 1, 2, true, 0),
        ((32, 32, 3), 16, 3, 2, true, -7),
        ((9, 11, 1), 8, 3, 1, true, 12),
        ((7, 7, 8), 16, 3, 1, false, -7),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("conv {shape:?} -> {out_c} k{kernel} s{stride} relu6={relu6} zp={zp}");
        models.push((name, conv_model(shape, out_c, kernel, stride, relu6, zp, 80 + i as u64)));
    }
    for (i, (n, units, zp)) in [(784, 10, -128), (37, 5, 3), (100, 4, -7), (64, 2, 0)].into_iter().enumerate() {
        models.push((format!("dense {n} -> {units} zp={zp}"), dense_model(n, units, zp, 90 + i as u64)));
    }
    // Dense in the blocked layout (blocks of 4 units, then 2, then 1): input lengths
    // that are not multiples of 4 (the column's last group, the zero-padded weights),
    // 1, 3, 5, 7, 17 units (every tail block), odd and even group counts, and inputs
    // beyond the DSP column (1,030: the portable loop on every core).
    for (i, (n, units, zp)) in
        [(783, 10, 5), (13, 1, 7), (1, 3, -4), (6, 7, 0), (31, 5, 100), (99, 17, -128), (2, 10, 1), (1030, 6, -9)]
            .into_iter()
            .enumerate()
    {
        models.push((format!("dense blocked {n} -> {units} zp={zp}"), dense_model(n, units, zp, 190 + i as u64)));
    }
    for (i, case) in cases.into_iter().enumerate() {
        models.push((format!("{case:?}"), depthwise_model(case, 40 + i as u64)));
    }
    // The channel-plane kernel of DSP cores (3×3, stride 1 SAME or stride 2 with left
    // padding 0, channels and widths multiples of 4): one to five channel groups, odd
    // heights, each clamp kind (none; ReLU6 at scale 0.05, both ends; ReLU6 at scale
    // 0.02, the lower end only).
    for (i, (shape, stride, relu6, scale)) in [
        ((8, 8, 4), 1, false, 0.05),
        ((7, 12, 8), 1, true, 0.02),
        ((6, 4, 20), 1, true, 0.05),
        ((9, 8, 12), 2, true, 0.05),
        ((10, 16, 8), 2, true, 0.02),
        ((11, 12, 4), 2, false, 0.05),
        // Stride 2 (one interleaved band of four channels): five groups, odd height;
        // eight outputs a pass (output widths multiples of 8 up to 16): two strips in
        // bands of 10 and 3 output rows, both clamps; one strip, three groups, no clamp.
        ((13, 24, 20), 2, true, 0.02),
        ((26, 32, 8), 2, true, 0.05),
        ((6, 16, 12), 2, false, 0.05),
        // Planes larger than the band buffer: bands of 19 and 8 output rows; stride 2,
        // three groups, bands of 6, 6 and 1 output rows.
        ((40, 32, 4), 1, true, 0.05),
        ((44, 40, 8), 2, false, 0.05),
        ((26, 48, 12), 2, true, 0.05),
    ]
    .into_iter()
    .enumerate()
    {
        let case = dw(shape, 3, stride, 1, true, 1, relu6);
        models.push((format!("{case:?} scale {scale}"), depthwise_model_scaled(case, 100 + i as u64, scale, false)));
    }
    // The channel-plane kernel gives up at the last of three groups (a multiplier of
    // 0.7 there): the other kernel must write the whole output again.
    let case = dw((8, 8, 12), 3, 1, 1, true, 1, true);
    models.push((format!("{case:?} last multiplier 0.7"), depthwise_model_scaled(case, 120, 0.05, true)));
    for (i, (shape, kernel, stride, same)) in [
        ((28, 28, 8), 2, 2, false),
        ((7, 9, 5), 2, 2, true),
        ((9, 9, 12), 3, 2, true),
        ((6, 5, 3), 3, 1, true),
        ((14, 14, 16), 2, 2, false),
    ]
    .into_iter()
    .enumerate()
    {
        for avg in [true, false] {
            let name = format!("{} pool {shape:?} k{kernel} s{stride} same={same}", if avg { "avg" } else { "max" });
            models.push((name, pool_model(shape, kernel, stride, same, avg, 60 + i as u64)));
        }
    }
    models.push(("add (16, 16, 8)".into(), add_model((16, 16, 8), 70)));
    models.push(("add (5, 3, 7)".into(), add_model((5, 3, 7), 71)));
    models
}

fn bit_exact_on(cpu: Cpu) {
    let firmware = qemu::Firmware::load(&qemu::build_firmware(cpu).unwrap(), cpu).unwrap();
    for (name, blob) in models() {
        let model = Model::from_bytes(&blob).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut rng = Xorshift::from_state(0xD3F7 ^ blob.len() as u64);
        let samples: Vec<i8> = (0..2 * model.input().bytes()).map(|_| rng.i8()).collect();
        let host = run::run_samples(&model, &samples).unwrap();
        let device = qemu::infer(&firmware, &blob, &samples).unwrap_or_else(|e| panic!("{name} on {cpu}: {e:#}"));
        let device: Vec<i8> = device.into_iter().flat_map(|r| r.output).collect();
        assert_eq!(device, host, "{name}: QEMU {cpu} outputs differ from the host's");
        assert!(host.iter().any(|&v| v != host[0]), "{name}: constant output tests nothing");
    }
}

#[test]
fn conv_depthwise_pool_add_kernels_are_bit_exact_on_qemu_cortex_m4() {
    bit_exact_on(Cpu::CortexM4);
}

#[test]
fn conv_depthwise_pool_add_kernels_are_bit_exact_on_qemu_cortex_m7() {
    bit_exact_on(Cpu::CortexM7);
}

#[test]
fn conv_depthwise_pool_add_kernels_are_bit_exact_on_qemu_cortex_m0plus() {
    bit_exact_on(Cpu::CortexM0Plus);
}
