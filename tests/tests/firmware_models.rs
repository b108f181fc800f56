//! Models that are not in the vector sets: seeded random CNNs (convolution with random
//! kernel, stride, dilation and padding, depthwise with a depth multiplier, max or
//! average pooling, reshape, dense, optional softmax; random weights, biases, scales
//! and zero points) run inside the QEMU firmware and give exactly the host's bytes.

use microcnn_core::ops::conv::Window;
use microcnn_core::quant::{activation_range, quantize_multiplier, softmax_params, Activation};
use microcnn_core::{Model, Shape};
use microcnn_tests::Xorshift;
use microcnn_tools::compile::graph::{ChannelConsts, Graph, LayerParams, OpDef, TensorDef};
use microcnn_tools::compile::{blob, plan};
use microcnn_tools::deploy::qemu::{self, Cpu};
use microcnn_tools::inspect::run;

struct Builder {
    graph: Graph,
    rng: Xorshift,
    /// Convolutions up to 40 output channels (channel blocks, widened and byte-wise
    /// filters on DSP cores; dense inputs beyond the im2col bound), not 12.
    wide: bool,
    /// The first convolution is a 3×3 (dilation 1) on a one- to three-channel input:
    /// the DSP three-row kernels (`core/src/ops/conv_rows.rs`).
    first_3x3: bool,
}

impl Builder {
    fn tensor(&mut self, shape: Shape, scale: f32, zero_point: i32) -> usize {
        let name = format!("t{}", self.graph.tensors.len());
        self.graph.tensors.push(TensorDef { name, shape, scale, zero_point });
        self.graph.tensors.len() - 1
    }

    fn last(&self) -> usize {
        self.graph.tensors.len() - 1
    }

    /// Output size and leading padding of one axis (TFLM's SAME / VALID).
    fn axis(&mut self, input: usize, kernel: usize, stride: usize, dilation: usize, same: bool) -> (usize, usize) {
        let effective = (kernel - 1) * dilation + 1;
        if same || input < effective {
            let out = input.div_ceil(stride);
            let total = ((out - 1) * stride + effective).saturating_sub(input);
            (out, total / 2)
        } else {
            ((input - effective) / stride + 1, 0)
        }
    }

    fn window(&mut self, input: Shape, kernel: usize, stride: usize, dilation: usize) -> (Window, usize, usize) {
        let same = self.rng.bool();
        let (out_h, pad_top) = self.axis(input.height, kernel, stride, dilation, same);
        let (out_w, pad_left) = self.axis(input.width, kernel, stride, dilation, same);
        let window = Window {
            kernel_h: kernel,
            kernel_w: kernel,
            stride_h: stride,
            stride_w: stride,
            dilation_h: dilation,
            dilation_w: dilation,
            pad_top,
            pad_left,
        };
        (window, out_h, out_w)
    }

    fn channel_consts(
        &mut self,
        in_scale: f32,
        out_scale: f32,
        channels: usize,
        taps: usize,
    ) -> (Vec<f32>, ChannelConsts) {
        let weight_scales: Vec<f32> = (0..channels).map(|_| 0.002 + 0.02 * self.rng.unit()).collect();
        let (multipliers, shifts) = weight_scales
            .iter()
            .map(|&w| quantize_multiplier(f64::from(in_scale) * f64::from(w) / f64::from(out_scale)))
            .unzip();
        let spread = (taps as f32).sqrt() as i64 * 2000;
        let bias = self
            .rng
            .bool()
            .then(|| (0..channels).map(|_| (self.rng.next_u64() as i64 % spread.max(1)) as i32).collect());
        let activation = [Activation::None, Activation::Relu, Activation::Relu6][self.rng.range(0, 2)];
        let out_zp = self.graph.tensors[self.last()].zero_point;
        let (act_min, act_max) = activation_range(activation, out_scale, out_zp);
        (weight_scales, ChannelConsts { bias, multipliers, shifts, act_min, act_max })
    }

    fn out_quant(&mut self, in_scale: f32, taps: usize) -> (f32, i32) {
        let scale = in_scale * 0.01 * (taps as f32).sqrt() * 40.0 * (0.5 + self.rng.unit());
        (scale, self.rng.range(0, 60) as i32 - 30)
    }

    fn conv(&mut self, input: usize) -> usize {
        let t = self.graph.tensors[input].clone();
        let first_3x3 = std::mem::take(&mut self.first_3x3);
        let kernel = if first_3x3 { 3 } else { self.rng.range(1, 5) };
        let stride = self.rng.range(1, 2);
        let dilation = if !first_3x3 && kernel > 1 && self.rng.range(0, 3) == 0 { 2 } else { 1 };
        let (window, h, w) = self.window(t.shape, kernel, stride, dilation);
        let channels = self.rng.range(1, if self.wide { 40 } else { 12 });
        let taps = kernel * kernel * t.shape.channels;
        let (scale, zp) = self.out_quant(t.scale, taps);
        let output = self.tensor(Shape { height: h, width: w, channels }, scale, zp);
        let (_, quant) = self.channel_consts(t.scale, scale, channels, taps);
        let weights = (0..channels * taps).map(|_| self.rng.i8()).collect();
        self.graph.ops.push(OpDef {
            inputs: vec![input],
            output,
            params: LayerParams::Conv2d { window, weights, quant },
        });
        output
    }

    fn depthwise(&mut self, input: usize) -> usize {
        let t = self.graph.tensors[input].clone();
        let kernel = self.rng.range(1, 4);
        let stride = self.rng.range(1, 2);
        let (window, h, w) = self.window(t.shape, kernel, stride, 1);
        let depth_multiplier = self.rng.range(1, 2);
        let channels = t.shape.channels * depth_multiplier;
        let (scale, zp) = self.out_quant(t.scale, kernel * kernel);
        let output = self.tensor(Shape { height: h, width: w, channels }, scale, zp);
        let (_, quant) = self.channel_consts(t.scale, scale, channels, kernel * kernel);
        let weights = (0..kernel * kernel * channels).map(|_| self.rng.i8()).collect();
        let params = LayerParams::DepthwiseConv2d { window, depth_multiplier, weights, quant };
        self.graph.ops.push(OpDef { inputs: vec![input], output, params });
        output
    }

    fn pool(&mut self, input: usize) -> usize {
        let t = self.graph.tensors[input].clone();
        let kernel = self.rng.range(2, 3).min(t.shape.height).min(t.shape.width).max(1);
        let (window, h, w) = self.window(t.shape, kernel, kernel, 1);
        let output = self.tensor(Shape { height: h, width: w, channels: t.shape.channels }, t.scale, t.zero_point);
        let act = (i8::MIN, i8::MAX);
        let params = if self.rng.bool() {
            LayerParams::MaxPool2d { window, act }
        } else {
            LayerParams::AvgPool2d { window, act }
        };
        self.graph.ops.push(OpDef { inputs: vec![input], output, params });
        output
    }

    fn reshape(&mut self, input: usize) -> usize {
        let t = self.graph.tensors[input].clone();
        let output = self.tensor(Shape { height: 1, width: 1, channels: t.shape.elements() }, t.scale, t.zero_point);
        self.graph.ops.push(OpDef { inputs: vec![input], output, params: LayerParams::Reshape });
        output
    }

    fn dense(&mut self, input: usize) -> usize {
        let t = self.graph.tensors[input].clone();
        let n = t.shape.elements();
        let units = self.rng.range(2, 12);
        let (scale, zp) = self.out_quant(t.scale, n);
        let output = self.tensor(Shape { height: 1, width: 1, channels: units }, scale, zp);
        let (_, quant) = self.channel_consts(t.scale, scale, units, n);
        let weights = (0..units * n).map(|_| self.rng.i8()).collect();
        self.graph.ops.push(OpDef {
            inputs: vec![input],
            output,
            params: LayerParams::FullyConnected { weights, quant },
        });
        output
    }

    fn softmax(&mut self, input: usize) -> usize {
        let t = self.graph.tensors[input].clone();
        let output = self.tensor(t.shape, 1.0 / 256.0, -128);
        let (input_multiplier, input_left_shift, diff_min) = softmax_params(1.0, t.scale);
        let params = LayerParams::Softmax { input_multiplier, input_left_shift, diff_min };
        self.graph.ops.push(OpDef { inputs: vec![input], output, params });
        output
    }
}

fn random_model(seed: u64) -> Vec<u8> {
    random_model_with(seed, false)
}

fn random_model_with(seed: u64, wide: bool) -> Vec<u8> {
    random_model_of(seed, wide, false)
}

fn random_model_of(seed: u64, wide: bool, first_3x3: bool) -> Vec<u8> {
    let mut b = Builder { graph: Graph::default(), rng: Xorshift::new(seed), wide, first_3x3 };
    let mut shape = Shape { height: b.rng.range(3, 20), width: b.rng.range(3, 20), channels: b.rng.range(1, 4) };
    if first_3x3 {
        // One channel (3×3×1: two words per kernel row), else two or three (five words).
        shape.channels = [1, 1, 2, 3][seed as usize % 4];
    }
    let scale = 0.005 + 0.05 * b.rng.unit();
    let zp = b.rng.range(0, 40) as i32 - 20;
    let input = b.tensor(shape, scale, zp);
    let mut x = b.conv(input);
    if b.rng.bool() {
        x = b.depthwise(x);
    }
    if b.rng.bool() {
        x = b.pool(x);
    }
    if b.rng.bool() {
        x = b.conv(x);
    }
    x = b.reshape(x);
    x = b.dense(x);
    if b.rng.bool() {
        x = b.softmax(x);
    }
    b.graph.input = input;
    b.graph.output = x;
    b.graph.name = format!("random_{seed}");
    let channels = b.graph.tensors[x].shape.channels;
    b.graph.output_dims = vec![channels];
    b.graph.labels = (0..channels).map(|c| format!("class{c}")).collect();
    let plan = plan::plan(&b.graph);
    blob::write(&b.graph, &plan).unwrap_or_else(|e| panic!("random model {seed}: {e:#}"))
}

#[test]
fn random_models_are_bit_exact_on_qemu_cortex_m4() {
    random_models_bit_exact_on(Cpu::CortexM4);
}

#[test]
fn random_models_are_bit_exact_on_qemu_cortex_m0plus() {
    random_models_bit_exact_on(Cpu::CortexM0Plus);
}

fn random_models_bit_exact_on(cpu: Cpu) {
    let firmware = qemu::Firmware::load(&qemu::build_firmware(cpu).unwrap(), cpu).unwrap();
    let mut informative = 0;
    let mut kinds = std::collections::BTreeSet::new();
    for seed in 1..=24u64 {
        let blob = random_model(seed);
        let model = Model::from_bytes(&blob).unwrap_or_else(|e| panic!("random model {seed}: {e}"));
        kinds.extend((0..model.op_count()).map(|i| model.operator(i).unwrap().kind.name()));
        let mut rng = Xorshift::from_state(seed ^ 0xABCD_EF01);
        let samples: Vec<i8> = (0..6 * model.input().bytes()).map(|_| rng.i8()).collect();
        let host = run::run_samples(&model, &samples).unwrap();
        let device = qemu::infer(&firmware, &blob, &samples).unwrap_or_else(|e| panic!("random model {seed}: {e:#}"));
        let device: Vec<i8> = device.into_iter().flat_map(|r| r.output).collect();
        assert_eq!(device, host, "random model {seed}: QEMU {cpu} outputs differ from the host's");
        informative += usize::from(host.iter().any(|&v| v != host[0]));
    }
    // The generator makes models whose outputs vary, and covers every layer kind.
    assert!(informative >= 16, "only {informative} of 24 random models give varying outputs");
    assert_eq!(kinds.len(), 7, "{kinds:?}");
}

/// Wider convolutions (up to 40 channels): the optimised kernels' channel blocks and
/// both filter layouts of the DSP micro-kernels, and dense inputs past the im2col bound.
#[test]
fn wide_random_models_are_bit_exact_on_qemu() {
    for cpu in [Cpu::CortexM4, Cpu::CortexM0Plus] {
        let firmware = qemu::Firmware::load(&qemu::build_firmware(cpu).unwrap(), cpu).unwrap();
        for seed in 101..=112u64 {
            let blob = random_model_with(seed, true);
            let model = Model::from_bytes(&blob).unwrap_or_else(|e| panic!("wide random model {seed}: {e}"));
            let mut rng = Xorshift::from_state(seed ^ 0x1234_5678);
            let samples: Vec<i8> = (0..3 * model.input().bytes()).map(|_| rng.i8()).collect();
            let host = run::run_samples(&model, &samples).unwrap();
            let device = qemu::infer(&firmware, &blob, &samples)
                .unwrap_or_else(|e| panic!("wide random model {seed} on {cpu}: {e:#}"));
            let device: Vec<i8> = device.into_iter().flat_map(|r| r.output).collect();
            assert_eq!(device, host, "wide random model {seed}: {cpu} outputs differ from the host's");
        }
    }
}

/// First layers of 3×3 on a one- to three-channel image (stride 1 and 2, SAME and
/// VALID, up to 40 output channels): the DSP three-row kernels on Cortex-M4 against the host.
#[test]
fn first_3x3_layers_are_bit_exact_on_qemu() {
    let cpu = Cpu::CortexM4;
    let firmware = qemu::Firmware::load(&qemu::build_firmware(cpu).unwrap(), cpu).unwrap();
    for seed in 201..=224u64 {
        let blob = random_model_of(seed, seed % 2 == 0, true);
        let model = Model::from_bytes(&blob).unwrap_or_else(|e| panic!("3×3 random model {seed}: {e}"));
        let mut rng = Xorshift::from_state(seed ^ 0x5EED_3333);
        let samples: Vec<i8> = (0..3 * model.input().bytes()).map(|_| rng.i8()).collect();
        let host = run::run_samples(&model, &samples).unwrap();
        let device =
            qemu::infer(&firmware, &blob, &samples).unwrap_or_else(|e| panic!("3×3 random model {seed}: {e:#}"));
        let device: Vec<i8> = device.into_iter().flat_map(|r| r.output).collect();
        assert_eq!(device, host, "3×3 random model {seed}: {cpu} outputs differ from the host's");
    }
}
