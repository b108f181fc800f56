//! Prints the per-layer instruction table of issue 11: executed instructions inside
//! the QEMU firmware (`-icount`, deterministic) for `small_cnn_28x28` and for one
//! single-layer model per MobileNet-style row, beside CMSIS-NN's count measured the
//! same way (GCC 12.2 `-O3`, DSP path; figures quoted from the issue).
//!
//! ```text
//! microcnn import tests/data/vectors/small_cnn_28x28/model.tflite -o small_cnn.mcnn
//! cargo run -p microcnn-tests --example layer_table -- small_cnn.mcnn
//! cargo run -p microcnn-tests --example layer_table -- small_cnn.mcnn cortex-m0plus
//! MICROCNN_QEMU_FIRMWARE=path/to/elf cargo run -p microcnn-tests --example layer_table -- small_cnn.mcnn
//! ```
//!
//! The second argument names the core (`cortex-m4`, the default; `cortex-m7`;
//! `cortex-m0plus`, whose v6m code runs the portable kernels); CMSIS-NN's column is
//! always its Cortex-M4 DSP count. Without the `.mcnn` argument the small_cnn rows
//! are left out; without `MICROCNN_QEMU_FIRMWARE` the QEMU firmware of this tree is
//! built for the core and used.
//!
//! Weights, biases and inputs are seeded random; the shapes, activations and
//! quantization kinds are those of the rows. Counts depend on shapes, not values,
//! except for a few instructions of branches in the requantization clamp.

use microcnn_core::ops::conv::Window;
use microcnn_core::quant::{activation_range, quantize_multiplier, Activation};
use microcnn_core::{Model, Shape};
use microcnn_tests::Xorshift;
use microcnn_tools::compile::graph::{ChannelConsts, Graph, LayerParams, OpDef, TensorDef};
use microcnn_tools::compile::{blob, plan};
use microcnn_tools::deploy::qemu;
use std::path::Path;

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

    fn consts(
        &mut self,
        in_scale: f32,
        out_scale: f32,
        channels: usize,
        activation: Activation,
        out_zp: i32,
    ) -> ChannelConsts {
        let (multipliers, shifts) = (0..channels)
            .map(|_| {
                quantize_multiplier(
                    f64::from(in_scale) * (0.002 + 0.02 * f64::from(self.rng.unit())) / f64::from(out_scale),
                )
            })
            .unzip();
        let bias = Some((0..channels).map(|_| (self.rng.next_u64() % 4000) as i32 - 2000).collect());
        let (act_min, act_max) = activation_range(activation, out_scale, out_zp);
        ChannelConsts { bias, multipliers, shifts, act_min, act_max }
    }

    fn weights(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.rng.i8().max(-127)).collect()
    }

    fn conv(&mut self, input: usize, out_c: usize, kernel: usize, stride: usize, activation: Activation) -> usize {
        let t = self.graph.tensors[input].clone();
        let (window, h, w) = same(t.shape, kernel, stride);
        let (scale, zp) = (t.scale * 2.0, -5);
        let output = self.tensor(Shape::new(h, w, out_c), scale, zp);
        let quant = self.consts(t.scale, scale, out_c, activation, zp);
        let weights = self.weights(out_c * kernel * kernel * t.shape.channels);
        self.graph.ops.push(OpDef {
            inputs: vec![input],
            output,
            params: LayerParams::Conv2d { window, weights, quant },
        });
        output
    }

    fn depthwise(&mut self, input: usize, kernel: usize, stride: usize, activation: Activation) -> usize {
        let t = self.graph.tensors[input].clone();
        let (window, h, w) = same(t.shape, kernel, stride);
        let (scale, zp) = (t.scale * 1.5, 3);
        let c = t.shape.channels;
        let output = self.tensor(Shape::new(h, w, c), scale, zp);
        let quant = self.consts(t.scale, scale, c, activation, zp);
        let weights = self.weights(kernel * kernel * c);
        let params = LayerParams::DepthwiseConv2d { window, depth_multiplier: 1, weights, quant };
        self.graph.ops.push(OpDef { inputs: vec![input], output, params });
        output
    }

    fn avg_pool(&mut self, input: usize, kernel: usize) -> usize {
        let t = self.graph.tensors[input].clone();
        let (window, h, w) = same(t.shape, kernel, kernel);
        let output = self.tensor(Shape::new(h, w, t.shape.channels), t.scale, t.zero_point);
        self.graph.ops.push(OpDef {
            inputs: vec![input],
            output,
            params: LayerParams::AvgPool2d { window, act: (i8::MIN, i8::MAX) },
        });
        output
    }

    /// TFLM's int8 ADD parameters (`add_common.cc`), as the importer computes them.
    fn add(&mut self, a: usize, b: usize) -> usize {
        let (ta, tb) = (self.graph.tensors[a].clone(), self.graph.tensors[b].clone());
        let out_scale = (ta.scale + tb.scale) * 0.8;
        let output = self.tensor(ta.shape, out_scale, 2);
        let left_shift = 20;
        let twice_max = 2.0 * f64::from(ta.scale.max(tb.scale));
        let (m1, s1) = quantize_multiplier(f64::from(ta.scale) / twice_max);
        let (m2, s2) = quantize_multiplier(f64::from(tb.scale) / twice_max);
        let (mo, so) = quantize_multiplier(twice_max / (f64::from(1 << left_shift) * f64::from(out_scale)));
        let params = LayerParams::Add { params: [left_shift, m1, s1, m2, s2, mo, so], act: (i8::MIN, i8::MAX) };
        self.graph.ops.push(OpDef { inputs: vec![a, b], output, params });
        output
    }

    fn finish(mut self, input: usize, output: usize, name: &str) -> Vec<u8> {
        self.graph.input = input;
        self.graph.output = output;
        self.graph.name = name.to_string();
        let shape = self.graph.tensors[output].shape;
        self.graph.output_dims = vec![shape.height, shape.width, shape.channels];
        self.graph.labels = (0..shape.channels).map(|c| format!("c{c}")).collect();
        let plan = plan::plan(&self.graph);
        blob::write(&self.graph, &plan).unwrap_or_else(|e| panic!("{name}: {e:#}"))
    }
}

/// SAME window of a square kernel.
fn same(input: Shape, kernel: usize, stride: usize) -> (Window, usize, usize) {
    let axis = |n: usize| {
        let out = n.div_ceil(stride);
        (out, ((out - 1) * stride + kernel).saturating_sub(n) / 2)
    };
    let ((h, top), (w, left)) = (axis(input.height), axis(input.width));
    let window = Window {
        kernel_h: kernel,
        kernel_w: kernel,
        stride_h: stride,
        stride_w: stride,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: top,
        pad_left: left,
    };
    (window, h, w)
}

/// A row: our label, CMSIS-NN's instructions, and the model plus the index of the
/// layer it measures.
struct Row {
    label: &'static str,
    cmsis: Option<u64>,
    blob: Vec<u8>,
    layer: Option<usize>,
}

fn single(
    label: &'static str,
    cmsis: u64,
    seed: u64,
    shape: Shape,
    build: impl FnOnce(&mut Builder, usize) -> usize,
) -> Row {
    let mut b = Builder::new(seed);
    let input = b.tensor(shape, 0.02, -7);
    let output = build(&mut b, input);
    let layer = Some(b.graph.ops.len() - 1);
    Row { label, cmsis: Some(cmsis), blob: b.finish(input, output, label), layer }
}

fn main() {
    let small_cnn = std::env::args().nth(1).map(|path| std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")));
    let cpu: qemu::Cpu = std::env::args().nth(2).map_or(Ok(qemu::Cpu::default()), |name| name.parse()).expect("core");
    let firmware_path = match std::env::var_os("MICROCNN_QEMU_FIRMWARE") {
        Some(path) => path.into(),
        None => qemu::build_firmware(cpu).expect("building the QEMU firmware"),
    };
    let firmware = qemu::Firmware::load(&firmware_path, cpu).expect("loading the firmware");

    let mut rows = Vec::new();
    if let Some(blob) = &small_cnn {
        let small = [
            ("conv 3×3 s1 SAME 28×28×1→8, ReLU", Some(794_425)),
            ("max pool 2×2 28×28×8", Some(83_066)),
            ("conv 3×3 s1 SAME 14×14×8→16, ReLU", Some(648_384)),
            ("max pool 2×2 14×14×16", Some(34_234)),
            ("reshape", None),
            ("dense 784→10, per-channel", Some(15_394)),
            ("softmax 10", Some(1_800)),
        ];
        for (layer, (label, cmsis)) in small.into_iter().enumerate() {
            rows.push(Row { label, cmsis, blob: blob.clone(), layer: Some(layer) });
        }
        rows.push(Row {
            label: "**small_cnn_28x28, whole invoke**",
            cmsis: Some(1_577_226),
            blob: blob.clone(),
            layer: None,
        });
    }
    rows.push(single("conv 3×3 s2 SAME 32×32×3→16, ReLU6", 534_006, 11, Shape::new(32, 32, 3), |b, x| {
        b.conv(x, 16, 3, 2, Activation::Relu6)
    }));
    rows.push(single("depthwise 3×3 s1 SAME 16×16×16, ReLU6", 336_342, 12, Shape::new(16, 16, 16), |b, x| {
        b.depthwise(x, 3, 1, Activation::Relu6)
    }));
    rows.push(single("conv 1×1 16×16×16→24, ReLU6", 390_785, 13, Shape::new(16, 16, 16), |b, x| {
        b.conv(x, 24, 1, 1, Activation::Relu6)
    }));
    rows.push(single("depthwise 3×3 s2 SAME 16×16×24→8×8×24", 123_254, 14, Shape::new(16, 16, 24), |b, x| {
        b.depthwise(x, 3, 2, Activation::None)
    }));
    rows.push(single("conv 1×1 8×8×24→32", 164_381, 15, Shape::new(8, 8, 24), |b, x| {
        b.conv(x, 32, 1, 1, Activation::None)
    }));
    rows.push(single("add 16×16×8 (different scales)", 165_730, 16, Shape::new(16, 16, 8), |b, x| {
        let y = b.conv(x, 8, 1, 1, Activation::None);
        b.add(x, y)
    }));
    rows.push(single("avg pool 2×2 28×28×8", 85_184, 17, Shape::new(28, 28, 8), |b, x| b.avg_pool(x, 2)));

    println!("{cpu} ({}, {}): {}", cpu.machine(), cpu.rust_target(), firmware_path.display());
    println!("| layer | CMSIS-NN (M4, DSP) | per MAC | microcnn on {cpu} | per MAC | ratio |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    if let Some(dir) = std::env::var_os("MICROCNN_LAYER_TABLE_DUMP") {
        // The models, for profiling one of them with `microcnn infer`.
        for (i, row) in rows.iter().enumerate() {
            std::fs::write(Path::new(&dir).join(format!("row{i}.mcnn")), &row.blob).expect("writing a model");
        }
    }
    let mut cache: Vec<(Vec<u8>, Vec<Costs>)> = Vec::new();
    for row in &rows {
        let model = Model::from_bytes(&row.blob).expect("valid model");
        let costs = match cache.iter().find(|(blob, _)| *blob == row.blob) {
            Some((_, costs)) => costs.clone(),
            None => {
                let mut rng = Xorshift::new(0x5EED);
                let sample: Vec<i8> = (0..model.input().bytes()).map(|_| rng.i8()).collect();
                let result = qemu::infer(&firmware, &row.blob, &sample).expect("QEMU run");
                let costs: Vec<Costs> = result
                    .iter()
                    .map(|r| {
                        let layers = r.layers.iter().map(|l| (l.instructions, macs(&model, l.index))).collect();
                        (r.instructions, layers)
                    })
                    .collect();
                cache.push((row.blob.clone(), costs.clone()));
                costs
            }
        };
        let (total, layers) = &costs[0];
        let (ours, macs) = match row.layer {
            Some(i) => layers[i],
            None => (*total, (0..model.op_count()).map(|i| macs(&model, i)).sum()),
        };
        let per = |n: u64| if macs > 0 { format!("{:.2}", n as f64 / macs as f64) } else { "—".into() };
        let (cmsis, cmsis_per, ratio) = match row.cmsis {
            Some(c) => (group(c), per(c), format!("{:.2}×", ours as f64 / c as f64)),
            None => ("—".into(), "—".into(), "—".into()),
        };
        println!("| {} | {} | {} | {} | {} | {} |", row.label, cmsis, cmsis_per, group(ours), per(ours), ratio);
    }
}

/// Multiply-accumulates of layer `index` (convolutions, depthwise, dense).
fn macs(model: &Model<'_>, index: usize) -> u64 {
    let Ok(op) = model.operator(index) else { return 0 };
    match (model.tensor(op.inputs.get(0).unwrap_or(0)), model.tensor(op.output)) {
        (Ok(input), Ok(output)) => op.macs(&input.shape, &output.shape),
        _ => 0,
    }
}

/// One sample's whole-invoke instructions and `(instructions, MACs)` per layer.
type Costs = (u64, Vec<(u64, u64)>);

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
