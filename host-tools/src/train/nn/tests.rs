//! Backward passes against central finite differences, for every layer type.

use super::*;
use crate::train::arch::Arch;

fn loss(net: &Network, x: &[f32], n: usize, labels: &[usize]) -> f32 {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let trace = net.forward(x, n, Mode::Train, &mut rng);
    cross_entropy(trace.output(), labels, net.output_size(), net.ends_in_softmax()).0
}

/// Checks every trainable parameter (up to 12 entries of each) of every node.
fn check(toml: &str) {
    check_with(toml, |_| {});
}

/// [`check`] after `adjust` changes the network (for example a layer's mode).
fn check_with(toml: &str, adjust: impl Fn(&mut Network)) {
    check_tolerance(toml, Tolerance { input: 1.0, eps: 3e-3, absolute: 2e-3, relative: 0.03 }, adjust);
}

/// How a check draws inputs and compares: inputs in `[-input, input]`, central
/// differences of step `eps`, `|numeric − analytic| ≤ absolute + relative · max(|·|)`.
#[derive(Clone, Copy)]
struct Tolerance {
    input: f32,
    eps: f32,
    absolute: f32,
    relative: f32,
}

/// Near the true error of central differences in f32 (correct code errs ≤ 0.2 %): a
/// gradient 2 % off fails.
const TIGHT: Tolerance = Tolerance { input: 1.0, eps: 1e-3, absolute: 3e-4, relative: 0.005 };

#[allow(clippy::needless_range_loop)]
fn check_tolerance(toml: &str, tol: Tolerance, adjust: impl Fn(&mut Network)) {
    let arch = Arch::parse(toml).unwrap();
    let mut net = Network::new(&arch, 3).unwrap();
    adjust(&mut net);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for node in &mut net.nodes {
        for p in &mut node.params {
            if p.name == "bias" || p.name == "beta" || p.name == "gamma" {
                p.data.iter_mut().for_each(|v| *v += rng.random_range(-0.5..0.5));
            }
        }
    }
    let n = 3;
    let size: usize = arch.input.iter().product();
    let x: Vec<f32> = (0..n * size).map(|_| rng.random_range(-tol.input..tol.input)).collect();
    let classes = net.output_size();
    let labels: Vec<usize> = (0..n).map(|i| (i * 7 + 1) % classes).collect();

    let mut fwd_rng = ChaCha8Rng::seed_from_u64(99);
    let trace = net.forward(&x, n, Mode::Train, &mut fwd_rng);
    let (_, _, d) = cross_entropy(trace.output(), &labels, classes, net.ends_in_softmax());
    let grads = net.backward(&trace, d);

    let eps = tol.eps;
    let mut checked = 0;
    for i in 0..net.nodes.len() {
        for j in 0..net.nodes[i].params.len() {
            if !net.nodes[i].params[j].trainable {
                assert!(grads[i][j].is_empty());
                continue;
            }
            let len = net.nodes[i].params[j].data.len();
            assert_eq!(grads[i][j].len(), len, "{} {}", net.nodes[i].name, net.nodes[i].params[j].name);
            let step = (len / 12).max(1);
            for k in (0..len).step_by(step) {
                let orig = net.nodes[i].params[j].data[k];
                net.nodes[i].params[j].data[k] = orig + eps;
                let up = loss(&net, &x, n, &labels);
                net.nodes[i].params[j].data[k] = orig - eps;
                let down = loss(&net, &x, n, &labels);
                net.nodes[i].params[j].data[k] = orig;
                let numeric = (up - down) / (2.0 * eps);
                let analytic = grads[i][j][k];
                let tolerance = tol.absolute + tol.relative * numeric.abs().max(analytic.abs());
                assert!(
                    (numeric - analytic).abs() <= tolerance,
                    "{}.{}[{k}]: analytic {analytic}, numeric {numeric}",
                    net.nodes[i].name,
                    net.nodes[i].params[j].name
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "only {checked} values checked");
}

const HEAD: &str = "[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"dense\"\nunits = 4\n";

/// Convolutions padded on every side (SAME, 3×3 stride 1; 4×4 stride 2, which pads
/// one more on the bottom and right; 3×3 stride 2 on an odd size), each after a
/// trainable 1×1 convolution so that its input gradient (col2im, edge rows and
/// columns included) is checked through the kernel before it, at [`TIGHT`] tolerance.
/// The wide inputs make im2col matrices of more than one piece a sample (one row a
/// piece at 160 columns; three at 80, across samples of four output rows).
#[test]
fn conv_input_gradients_with_padding_on_every_side_tight() {
    let cases = [([7, 6, 2], 3, 1), ([7, 6, 2], 4, 2), ([7, 6, 2], 3, 2), ([7, 6, 2], 5, 1)];
    for (input, kernel, strides) in cases.into_iter().chain([([3, 160, 2], 3, 1), ([7, 160, 2], 3, 2)]) {
        check_tolerance(
            &format!(
                "input = {input:?}\n[[layer]]\ntype = \"conv2d\"\nfilters = 3\nkernel = 1\n\
                 [[layer]]\ntype = \"conv2d\"\nfilters = 2\nkernel = {kernel}\nstrides = {strides}\npadding = \"same\"\n{HEAD}"
            ),
            TIGHT,
            |_| {},
        );
    }
}

/// Depthwise convolutions (stride 1 and 2, SAME, multiplier 1 and 2) after a trainable
/// 1×1 convolution: the depthwise input gradient, at [`TIGHT`] tolerance.
#[test]
fn depthwise_input_gradients_tight() {
    for (strides, multiplier) in [(1, 1), (2, 2), (1, 2)] {
        check_tolerance(
            &format!(
                "input = [7, 6, 2]\n[[layer]]\ntype = \"conv2d\"\nfilters = 3\nkernel = 1\n\
                 [[layer]]\ntype = \"depthwise_conv2d\"\nkernel = 3\nstrides = {strides}\npadding = \"same\"\ndepth_multiplier = {multiplier}\n{HEAD}"
            ),
            TIGHT,
            |_| {},
        );
    }
}

/// ReLU6 with inputs well past both clip points (many activations at 0 and at 6, as
/// asserted): the gradient is zero beyond the clips, at [`TIGHT`] tolerance.
#[test]
fn relu6_past_both_clip_points_tight() {
    let toml = format!(
        "input = [5, 5, 2]\n[[layer]]\ntype = \"conv2d\"\nfilters = 4\nkernel = 1\nactivation = \"relu6\"\n\
         [[layer]]\ntype = \"conv2d\"\nfilters = 3\nkernel = 3\npadding = \"same\"\nactivation = \"relu6\"\n{HEAD}"
    );
    let net = Network::new(&Arch::parse(&toml).unwrap(), 3).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x: Vec<f32> = (0..3 * 50).map(|_| rng.random_range(-12.0..12.0)).collect();
    let trace = net.forward(&x, 3, Mode::Train, &mut rng);
    for (layer, share) in [(1, 8), (2, 100)] {
        let y = &trace.outputs[layer];
        let (low, high) = (y.iter().filter(|&&v| v == 0.0).count(), y.iter().filter(|&&v| v == 6.0).count());
        let enough = low * share >= y.len() && high * share >= y.len();
        assert!(enough, "layer {layer}: {low} at 0, {high} at 6 of {}", y.len());
    }
    check_tolerance(&toml, Tolerance { input: 12.0, ..TIGHT }, |_| {});
}

#[test]
fn conv2d_same_and_valid_strided() {
    check(&format!(
        "input = [7, 6, 2]\n[[layer]]\ntype = \"conv2d\"\nfilters = 3\nkernel = 3\npadding = \"same\"\n\
         [[layer]]\ntype = \"conv2d\"\nfilters = 2\nkernel = [3, 2]\nstrides = 2\n{HEAD}"
    ));
}

#[test]
fn depthwise_with_multiplier_and_stride() {
    check(&format!(
        "input = [7, 7, 2]\n[[layer]]\ntype = \"conv2d\"\nfilters = 3\nkernel = 1\n\
         [[layer]]\ntype = \"depthwise_conv2d\"\nkernel = 3\nstrides = 2\npadding = \"same\"\ndepth_multiplier = 2\n{HEAD}"
    ));
}

#[test]
fn separable_conv() {
    check(&format!(
        "input = [6, 6, 2]\n[[layer]]\ntype = \"conv2d\"\nfilters = 3\nkernel = 1\n\
         [[layer]]\ntype = \"separable_conv2d\"\nfilters = 4\nkernel = 3\npadding = \"same\"\n{HEAD}"
    ));
}

#[test]
fn max_and_average_pooling_with_padding() {
    check(&format!(
        "input = [7, 5, 2]\n[[layer]]\ntype = \"conv2d\"\nfilters = 3\nkernel = 1\n\
         [[layer]]\ntype = \"maxpool2d\"\npool = 2\npadding = \"same\"\n\
         [[layer]]\ntype = \"conv2d\"\nfilters = 3\nkernel = 1\n\
         [[layer]]\ntype = \"avgpool2d\"\npool = 3\nstrides = 2\npadding = \"same\"\n{HEAD}"
    ));
}

#[test]
fn global_average_pooling_and_softmax_dense() {
    check(
        "input = [5, 5, 2]\n[[layer]]\ntype = \"conv2d\"\nfilters = 6\nkernel = 3\n\
         [[layer]]\ntype = \"global_avgpool\"\n[[layer]]\ntype = \"dense\"\nunits = 5\nactivation = \"softmax\"\n",
    );
}

#[test]
fn batchnorm_dropout_and_relu() {
    check(&format!(
        "input = [5, 5, 2]\n[[layer]]\ntype = \"conv2d\"\nfilters = 4\nkernel = 3\n\
         [[layer]]\ntype = \"batchnorm\"\n[[layer]]\ntype = \"dropout\"\nrate = 0.3\n\
         [[layer]]\ntype = \"conv2d\"\nfilters = 3\nkernel = 1\nactivation = \"relu6\"\n{HEAD}"
    ));
}

#[test]
fn batchnorm_in_inference_mode_while_training() {
    check_with(
        &format!(
            "input = [5, 5, 2]\n[[layer]]\ntype = \"conv2d\"\nfilters = 4\nkernel = 3\n\
             [[layer]]\ntype = \"batchnorm\"\nactivation = \"relu\"\n{HEAD}"
        ),
        |net| {
            let bn = &mut net.nodes[2];
            bn.bn_inference = true;
            bn.params[2].data = vec![0.1, -0.2, 0.3, 0.0];
            bn.params[3].data = vec![0.5, 2.0, 1.5, 0.8];
        },
    );
}

#[test]
fn residual_identity_and_projection() {
    check(&format!(
        "input = [6, 6, 3]\n[[layer]]\ntype = \"residual\"\n[[layer.layer]]\ntype = \"conv2d\"\nfilters = 3\nkernel = 3\npadding = \"same\"\n\
         [[layer]]\ntype = \"residual\"\n[[layer.layer]]\ntype = \"conv2d\"\nfilters = 4\nkernel = 3\nstrides = 2\npadding = \"same\"\n{HEAD}"
    ));
}

#[test]
fn concat_branches() {
    check(&format!(
        "input = [5, 5, 2]\n[[layer]]\ntype = \"concat\"\n\
         [[layer.branch]]\n[[layer.branch.layer]]\ntype = \"conv2d\"\nfilters = 2\nkernel = 1\n\
         [[layer.branch]]\n[[layer.branch.layer]]\ntype = \"conv2d\"\nfilters = 3\nkernel = 3\npadding = \"same\"\n{HEAD}"
    ));
}

#[test]
fn impossible_shapes_name_the_layer() {
    let arch = Arch::parse("input = [4, 4, 1]\n[[layer]]\ntype = \"conv2d\"\nfilters = 2\nkernel = 5\n").unwrap();
    let e = Network::new(&arch, 0).unwrap_err().to_string();
    assert!(e.starts_with("layer 1 (conv2d): a 5×5 window does not fit the 4×4 input"), "{e}");
    let arch = Arch::parse("input = [4, 4, 1]\n[[layer]]\ntype = \"dense\"\nunits = 2\n").unwrap();
    let e = Network::new(&arch, 0).unwrap_err().to_string();
    assert!(e.starts_with("layer 1 (dense): its input is 4×4×1"), "{e}");
    let arch = Arch::parse(
        "input = [4, 4, 1]\n[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"dense\"\nunits = 2\nactivation = \"softmax\"\n\
         [[layer]]\ntype = \"dense\"\nunits = 2\n",
    )
    .unwrap();
    let e = Network::new(&arch, 0).unwrap_err().to_string();
    assert!(e.contains("layer 2 (dense): softmax is only allowed on the last layer"), "{e}");
}

/// Whole training steps (forward, backward, Adam, batch-norm statistics) give the same
/// weights on 1 and 3 threads: a plain convolution, and the `mobilenet` preset
/// (depthwise and pointwise convolutions, batch norm, ReLU6) at a size where the batch
/// norm and element-wise passes split into several parts and chunks.
#[test]
fn results_do_not_depend_on_the_thread_count() {
    use crate::train::nn::optim::{Kind, Optimizer};
    let conv = Arch::parse(&format!(
        "input = [8, 8, 1]\n[[layer]]\ntype = \"conv2d\"\nfilters = 4\nkernel = 3\npadding = \"same\"\n{HEAD}"
    ))
    .unwrap();
    let mut mobilenet = crate::train::presets::with_classes(crate::train::presets::preset("mobilenet").unwrap(), 4);
    mobilenet.input = [24, 20, 3];
    for arch in [conv, mobilenet] {
        let size: usize = arch.input.iter().product();
        let net = Network::new(&arch, 1).unwrap();
        let x: Vec<f32> = (0..10 * size).map(|i| (i as f32 * 0.1).sin()).collect();
        let labels: Vec<usize> = (0..10).map(|i| i % 4).collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut net = net.clone();
                let mut opt = Optimizer::new(Kind::Adam, 0.0, &net);
                let mut rng = ChaCha8Rng::seed_from_u64(0);
                let trace = net.forward(&x, 10, Mode::Train, &mut rng);
                let (_, _, d) = cross_entropy(trace.output(), &labels, 4, net.ends_in_softmax());
                let grads = net.backward(&trace, d);
                // Two plain training steps (as `train::step` runs them, written out here
                // because `nn` sits below `step` in the layering).
                for _ in 0..2 {
                    let trace = net.forward(&x, 10, Mode::Train, &mut rng);
                    let (_, _, d) = cross_entropy(trace.output(), &labels, 4, net.ends_in_softmax());
                    let grads = net.backward(&trace, d);
                    opt.apply(&mut net, &grads, 1e-2);
                    net.update_batch_stats(&trace);
                }
                (grads, net)
            })
        };
        let (one, three) = (run(1), run(3));
        assert!(one.0.iter().flatten().any(|g| g.iter().any(|&v| v != 0.0)));
        assert_eq!(one, three, "{:?}", arch.name);
    }
}

/// The im2col matrix (rows copied by code for their length, or by the general copy)
/// against its definition, to the bit: every `(ky, kx, c)` of every output pixel is
/// the input there, or 0 in the padding; 1 to 32 channels, 3×3 and 5×5, strides 1
/// and 2, SAME and VALID; all rows at once, and in two pieces, the first ending one
/// row into the second sample.
#[test]
fn im2col_matches_its_definition() {
    let cases = [
        ([16, 16, 1], "kernel = 3\npadding = \"same\""),
        ([8, 8, 8], "kernel = 3\npadding = \"same\""),
        ([7, 9, 3], "kernel = 5\nstrides = 2\npadding = \"same\""),
        ([7, 6, 3], "kernel = 3\nstrides = 2"),
        ([6, 6, 5], "kernel = [3, 2]\npadding = \"same\""),
        ([6, 5, 16], "kernel = 3\npadding = \"same\""),
        ([5, 5, 32], "kernel = 3\nstrides = 2\npadding = \"same\""),
    ];
    for (input, layer) in cases {
        let toml = format!("input = {input:?}\n[[layer]]\ntype = \"conv2d\"\nfilters = 2\n{layer}\n");
        let g = match Network::new(&Arch::parse(&toml).unwrap(), 0).unwrap().nodes[1].layer {
            Layer::Conv2d { geom, .. } => geom,
            ref other => panic!("{other:?}"),
        };
        let n = 2;
        let [h, w, c] = g.input;
        let [oh, ow, _] = g.output;
        let x: Vec<f32> = (0..n * h * w * c).map(|i| i as f32 + 1.0).collect();
        let mut want = Vec::new();
        for s in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ky in 0..g.kernel[0] {
                        for kx in 0..g.kernel[1] {
                            for ch in 0..c {
                                want.push(
                                    g.tap(oy, ox, ky, kx).map_or(0.0, |(iy, ix)| x[((s * h + iy) * w + ix) * c + ch]),
                                );
                            }
                        }
                    }
                }
            }
        }
        // NaN where nothing is written.
        let mut col = vec![f32::NAN; want.len()];
        kernels::im2col_range(&g, &x, 0..n * oh, &mut col);
        assert_eq!(col, want, "{input:?} {layer}");
        // The same rows in pieces, one crossing from the first sample to the second.
        let mut pieces = vec![f32::NAN; want.len()];
        let row = ow * g.kernel[0] * g.kernel[1] * c;
        let (a, b) = pieces.split_at_mut((oh + 1) * row);
        kernels::im2col_range(&g, &x, 0..oh + 1, a);
        kernels::im2col_range(&g, &x, oh + 1..n * oh, b);
        assert_eq!(pieces, want, "{input:?} {layer}: in two pieces");
    }
}

/// Stride-1 convolutions straight from the padded input against im2col + GEMM, to the
/// bit, forward and backward: 1 to 16 channels, 3×3, 5×5 and oblong windows, SAME,
/// VALID and uneven explicit padding, with and without bias, fused ReLU or another
/// activation after, a batch that splits unevenly into parts.
#[test]
fn direct_convolution_has_the_bits_of_im2col() {
    let cases = [
        ([9, 8, 3], "kernel = 3\npadding = \"same\"\nactivation = \"relu\""),
        ([6, 7, 1], "kernel = 3\npadding = \"same\""),
        ([7, 6, 16], "kernel = 3\npadding = \"same\"\nactivation = \"relu6\"\nuse_bias = false"),
        ([8, 9, 2], "kernel = 5\npadding = \"same\"\nactivation = \"relu\""),
        ([7, 8, 4], "kernel = 3\nactivation = \"relu\""),
        ([6, 7, 5], "kernel = [3, 2]\npadding = \"same\""),
        ([6, 7, 3], "kernel = 3\npadding = { explicit = [2, 0, 0, 1] }\nactivation = \"relu\""),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for (input, layer) in cases {
        let toml = format!("input = {input:?}\n[[layer]]\ntype = \"conv2d\"\nfilters = 5\n{layer}\n");
        let net = Network::new(&Arch::parse(&toml).unwrap(), 0).unwrap();
        let node = &net.nodes[1];
        let Layer::Conv2d { geom: g, act } = node.layer else { panic!("{:?}", node.layer) };
        let n = 5;
        let mut draw = |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let x = draw(n * input.iter().product::<usize>());
        let w = draw(node.params[0].data.len());
        let bias = node.params.get(1).map(|_| draw(g.output[2]));
        let dy = draw(n * g.output.iter().product::<usize>());
        let (y, _) = kernels::conv_forward_as(&g, &w, bias.as_deref(), act, &x, n, false);
        let (yd, _) = kernels::conv_forward_as(&g, &w, bias.as_deref(), act, &x, n, true);
        assert!(y.iter().any(|&v| v != 0.0));
        assert_eq!(yd, y, "{input:?} {layer}: forward");
        let (mut d1, mut d2) = (dy.clone(), dy.clone());
        let want = kernels::conv_backward_as(&g, &w, bias.is_some(), &x, (act, &y, &mut d1), n, true, false);
        let got = kernels::conv_backward_as(&g, &w, bias.is_some(), &x, (act, &y, &mut d2), n, true, true);
        assert_eq!(got, want, "{input:?} {layer}: backward");
    }
}

/// A pooling node's geometry, from a one-layer architecture.
fn pool_geom(input: [usize; 3], layer: &str) -> Geom {
    let toml = format!("input = {input:?}\n[[layer]]\ntype = \"maxpool2d\"\n{layer}\n");
    match Network::new(&Arch::parse(&toml).unwrap(), 0).unwrap().nodes[1].layer {
        Layer::MaxPool { geom } => geom,
        ref other => panic!("{other:?}"),
    }
}

/// The pooling kernels (channels in blocks of 16, 8, then one at a time; windows that
/// tile the input, leave some of it out, or overlap) against the per-value
/// definitions, to the bit: 2×2 and overlapping 3×3 stride-2 windows, SAME and VALID,
/// channel counts below, at and past the blocks, and inputs of a few
/// values, so that windows often hold their maximum twice (its gradient goes to the
/// first in tap order).
#[test]
fn pooling_matches_the_per_value_definitions() {
    let cases = [
        ([8, 8, 8], "pool = 2"),
        ([6, 5, 16], "pool = 2\npadding = \"same\""),
        ([7, 7, 11], "pool = 3\nstrides = 2\npadding = \"same\""),
        ([5, 6, 3], "pool = 3\nstrides = 2"),
        ([9, 4, 1], "pool = 2\npadding = \"same\""),
        ([8, 6, 32], "pool = 2"),
        ([7, 9, 24], "pool = 2"),
        ([6, 6, 41], "pool = 3\nstrides = 2\npadding = \"same\""),
    ];
    for (input, layer) in cases {
        let g = pool_geom(input, layer);
        // Stale values in the reused buffers: the kernels must write or clear every value.
        for _ in 0..4 {
            pool::give(vec![f32::NAN; 1 << 14]);
        }
        let n = 3;
        let [h, w, c] = g.input;
        let [oh, ow, _] = g.output;
        let x: Vec<f32> = (0..n * h * w * c).map(|i| ((i * 7919) % 5) as f32 - 2.0).collect();
        let dy: Vec<f32> = (0..n * oh * ow * c).map(|i| (i as f32 * 0.37).sin()).collect();
        // The definitions: each output value over its window's taps in (ky, kx) order.
        let taps = |oy: usize, ox: usize| -> Vec<(usize, usize)> {
            (0..g.kernel[0])
                .flat_map(|ky| (0..g.kernel[1]).map(move |kx| (ky, kx)))
                .filter_map(|(ky, kx)| g.tap(oy, ox, ky, kx))
                .collect()
        };
        let (mut max, mut avg) = (vec![0.0f32; dy.len()], vec![0.0f32; dy.len()]);
        let mut dx = vec![0.0f32; x.len()];
        for s in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    let t = taps(oy, ox);
                    for ch in 0..c {
                        let o = ((s * oh + oy) * ow + ox) * c + ch;
                        let at = |&(iy, ix): &(usize, usize)| ((s * h + iy) * w + ix) * c + ch;
                        max[o] = t.iter().fold(f32::NEG_INFINITY, |a, p| a.max(x[at(p)]));
                        avg[o] = t.iter().fold(0.0, |a, p| a + x[at(p)]) * (1.0 / t.len() as f32);
                        let mut open = 1.0;
                        for p in &t {
                            let hit = if x[at(p)] == max[o] { open } else { 0.0 };
                            dx[at(p)] += hit * dy[o];
                            open -= hit;
                        }
                    }
                }
            }
        }
        assert!(max.iter().zip(&avg).any(|(a, b)| a != b), "{layer}");
        assert_eq!(kernels::pool_forward(&g, true, &x, n).0, max, "{input:?} {layer}: max");
        assert_eq!(kernels::pool_forward(&g, false, &x, n).0, avg, "{input:?} {layer}: average");
        assert_eq!(kernels::maxpool_backward(&g, &x, &max, &dy), dx, "{input:?} {layer}: max gradient");
    }
}

/// A node's depthwise geometry, from a one-layer architecture.
fn depthwise_geom(input: [usize; 3], layer: &str) -> Geom {
    let toml = format!("input = {input:?}\n[[layer]]\ntype = \"depthwise_conv2d\"\n{layer}\n");
    match Network::new(&Arch::parse(&toml).unwrap(), 0).unwrap().nodes[1].layer {
        Layer::Depthwise { geom, .. } => geom,
        ref other => panic!("{other:?}"),
    }
}

fn close(name: &str, got: &[f32], want: &[f32], tolerance: f32) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tolerance * (1.0 + b.abs()), "{name}[{i}]: {a} against {b}");
    }
}

/// The multiplier-1 depthwise kernels against the general ones, over strides 1 and 2,
/// SAME, VALID and explicit padding, square and oblong windows, odd sizes and a batch
/// that splits unevenly into parts: the forward pass is the same to the bit (same
/// order of additions), the gradients agree to float rounding (they add in another
/// order).
#[test]
fn depthwise_multiplier_one_matches_the_general_kernels() {
    let cases = [
        ([7, 6, 3], "kernel = 3\npadding = \"same\""),
        ([7, 6, 3], "kernel = 3\nstrides = 2\npadding = \"same\""),
        ([8, 9, 5], "kernel = [3, 5]\nstrides = [1, 2]"),
        ([6, 7, 4], "kernel = 5\npadding = { explicit = [2, 1, 0, 3] }"),
        ([5, 5, 8], "kernel = 2\nstrides = 2\npadding = \"same\""),
        ([4, 6, 2], "kernel = 1"),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for (input, layer) in cases {
        let g = depthwise_geom(input, layer);
        let n = 5;
        let c = input[2];
        let mut draw = |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let (x, w, b) = (draw(n * input.iter().product::<usize>()), draw(g.kernel[0] * g.kernel[1] * c), draw(c));
        let dy = draw(n * g.output.iter().product::<usize>());
        for act in [Act::None, Act::Relu6] {
            let want = kernels::depthwise_forward_general(&g, 1, &w, Some(&b), act, &x, n);
            assert_eq!(kernels::depthwise_forward_m1(&g, &w, Some(&b), act, &x, n), want, "{layer}");
        }
        let (dw, db, dx) = kernels::depthwise_backward_m1(&g, &w, true, &x, &dy, n, true);
        let (rw, rb, rx) = kernels::depthwise_backward_general(&g, 1, &w, true, &x, &dy, n, true);
        close(&format!("{layer}: dw"), &dw, &rw, 1e-5);
        close(&format!("{layer}: db"), &db.unwrap(), &rb.unwrap(), 1e-5);
        close(&format!("{layer}: dx"), &dx.unwrap(), &rx.unwrap(), 1e-5);
        let (dw2, db2, dx2) = kernels::depthwise_backward_m1(&g, &w, false, &x, &dy, n, false);
        assert_eq!((dw2, db2, dx2), (dw, None, None));
    }
}

/// The multiplier-1 depthwise kernels (a pixel at a time, channels in blocks of 16, 8
/// and 1, the input gradient gathered) against the kernels they replaced (a row of
/// taps at a time, the input gradient scattered), to the bit: strides 1 and 2, SAME,
/// VALID and explicit padding, oblong windows, channel counts below, between and past
/// the blocks, odd sizes, bias or none, every activation, batches that split unevenly,
/// and stale NaNs in the reused buffers (every output value must be written).
#[test]
fn depthwise_pixel_kernels_have_the_bits_of_the_row_kernels() {
    let cases = [
        ([7, 6, 3], "kernel = 3\npadding = \"same\""),
        ([7, 6, 3], "kernel = 3\nstrides = 2\npadding = \"same\""),
        ([8, 9, 5], "kernel = [3, 5]\nstrides = [1, 2]"),
        ([6, 7, 4], "kernel = 5\npadding = { explicit = [2, 1, 0, 3] }"),
        ([5, 5, 8], "kernel = 2\nstrides = 2\npadding = \"same\""),
        ([4, 6, 2], "kernel = 1"),
        ([9, 7, 16], "kernel = 3\nstrides = 2\npadding = \"same\""),
        ([8, 8, 19], "kernel = 3\npadding = \"same\""),
        ([11, 10, 24], "kernel = 3\nstrides = 2\npadding = \"same\""),
        ([6, 5, 40], "kernel = 3\nstrides = [2, 1]\npadding = \"same\""),
        ([10, 9, 11], "kernel = 3\nstrides = 2"),
        ([12, 12, 32], "kernel = 3\nstrides = 2\npadding = \"same\""),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    for (input, layer) in cases {
        let g = depthwise_geom(input, layer);
        let c = input[2];
        for n in [1, 5] {
            let mut draw = |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-2.0..2.0)).collect() };
            let (x, w, b) = (draw(n * input.iter().product::<usize>()), draw(g.kernel[0] * g.kernel[1] * c), draw(c));
            let dy = draw(n * g.output.iter().product::<usize>());
            for _ in 0..4 {
                pool::give(vec![f32::NAN; 1 << 14]);
            }
            for act in [Act::None, Act::Relu, Act::Relu6] {
                for bias in [None, Some(b.as_slice())] {
                    let want = kernels::depthwise_forward_runs(&g, &w, bias, act, &x, n);
                    let got = kernels::depthwise_forward_m1(&g, &w, bias, act, &x, n);
                    assert!(want.iter().any(|&v| v != 0.0));
                    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
                    assert_eq!(bits(&got), bits(&want), "{input:?} {layer} {act:?} forward");
                    pool::give(got);
                }
            }
            for (has_bias, need_dx) in [(true, true), (false, true), (true, false)] {
                let want = kernels::depthwise_backward_runs(&g, &w, has_bias, &x, &dy, n, need_dx);
                let got = kernels::depthwise_backward_m1(&g, &w, has_bias, &x, &dy, n, need_dx);
                let bits = |(dw, db, dx): &(Vec<f32>, Option<Vec<f32>>, Option<Vec<f32>>)| {
                    let b = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
                    (b(dw), db.as_deref().map(b), dx.as_deref().map(b))
                };
                assert_eq!(bits(&got), bits(&want), "{input:?} {layer} n {n} bias {has_bias}: backward");
            }
        }
    }
}

/// Batch norm in training mode, forward and backward, against the plain per-row
/// formulas (the kernels before they were tiled and split into parts), for channel
/// counts that do and do not divide the tile and batches that split unevenly.
#[test]
#[allow(clippy::needless_range_loop)]
fn batchnorm_matches_the_per_row_formulas() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for (rows, c) in [(1, 3), (37, 3), (1000, 8), (333, 64), (50, 300)] {
        let toml = format!("input = [{rows}, 1, {c}]\n[[layer]]\ntype = \"batchnorm\"\nactivation = \"relu6\"\n");
        let mut net = Network::new(&Arch::parse(&toml).unwrap(), 0).unwrap();
        for p in &mut net.nodes[1].params[..2] {
            p.data.iter_mut().for_each(|v| *v += rng.random_range(-0.5..0.5));
        }
        let node = &net.nodes[1];
        let (gamma, beta) = (&node.params[0].data, &node.params[1].data);
        let x: Vec<f32> = (0..rows * c).map(|_| rng.random_range(-3.0..5.0)).collect();
        let dy: Vec<f32> = (0..rows * c).map(|_| rng.random_range(-1.0..1.0)).collect();
        // Reference forward.
        let mut mean = vec![0.0f64; c];
        let mut var = vec![0.0f64; c];
        for r in 0..rows {
            for ch in 0..c {
                mean[ch] += f64::from(x[r * c + ch]) / rows as f64;
            }
        }
        for r in 0..rows {
            for ch in 0..c {
                var[ch] += (f64::from(x[r * c + ch]) - mean[ch]).powi(2) / rows as f64;
            }
        }
        let inv: Vec<f32> = var.iter().map(|&v| 1.0 / (v as f32 + 1e-3).sqrt()).collect();
        let xhat: Vec<f32> = (0..rows * c).map(|i| (x[i] - mean[i % c] as f32) * inv[i % c]).collect();
        let y: Vec<f32> = (0..rows * c).map(|i| (gamma[i % c] * xhat[i] + beta[i % c]).clamp(0.0, 6.0)).collect();
        let (got, cache) = kernels::batchnorm_forward(node, 1e-3, Act::Relu6, &x, true);
        close("y", &got, &y, 1e-5);
        let kernels::Cache::BatchNorm { mean: got_mean, inv_std, var: got_var, batch_stats: true } = cache else {
            panic!()
        };
        close("var", &got_var, &var.iter().map(|&v| v as f32).collect::<Vec<_>>(), 1e-6);
        // Reference backward: through ReLU6 (at the kernel's output), then batch norm.
        let dy_out = dy.clone();
        let dy: Vec<f32> = dy.iter().zip(&got).map(|(&d, &v)| if v <= 0.0 || v >= 6.0 { 0.0 } else { d }).collect();
        assert!(dy.iter().zip(&dy_out).any(|(a, b)| a != b) || rows * c < 10);
        let (mut dgamma, mut dbeta) = (vec![0.0f32; c], vec![0.0f32; c]);
        for i in 0..rows * c {
            dgamma[i % c] += dy[i] * xhat[i];
            dbeta[i % c] += dy[i];
        }
        let n = rows as f32;
        let dx: Vec<f32> = (0..rows * c)
            .map(|i| {
                let ch = i % c;
                inv[ch] / n * (n * dy[i] * gamma[ch] - gamma[ch] * dbeta[ch] - xhat[i] * gamma[ch] * dgamma[ch])
            })
            .collect();
        let [gdx, gdgamma, gdbeta] =
            kernels::batchnorm_backward_train(gamma, &got_mean, &inv_std, Act::Relu6, &x, &got, dy_out);
        close("dgamma", &gdgamma, &dgamma, 1e-4);
        close("dbeta", &gdbeta, &dbeta, 1e-4);
        close("dx", &gdx, &dx, 1e-4);
    }
}

/// Whole training steps give the same weights and gradients whether the kernels run
/// their AVX-512 build (element-wise passes and the products of `gemm.rs`) or the
/// baseline build (and the products' AVX2 or plain loop): only the vector width
/// changes. On a CPU without AVX-512 both runs take the baseline.
#[test]
fn same_bits_with_and_without_avx512() {
    use crate::train::nn::optim::{Kind, Optimizer};
    let conv = Arch::parse(&format!(
        "input = [10, 10, 3]\n[[layer]]\ntype = \"conv2d\"\nfilters = 8\nkernel = 3\npadding = \"same\"\nactivation = \"relu\"\n[[layer]]\ntype = \"maxpool2d\"\npool = 2\n[[layer]]\ntype = \"conv2d\"\nfilters = 16\nkernel = 3\npadding = \"same\"\nactivation = \"relu6\"\n{HEAD}"
    ))
    .unwrap();
    let mut mobilenet = crate::train::presets::with_classes(crate::train::presets::preset("mobilenet").unwrap(), 4);
    mobilenet.input = [24, 20, 3];
    for arch in [conv, mobilenet] {
        let size: usize = arch.input.iter().product();
        let net = Network::new(&arch, 1).unwrap();
        let x: Vec<f32> = (0..10 * size).map(|i| (i as f32 * 0.1).sin()).collect();
        let labels: Vec<usize> = (0..10).map(|i| i % 4).collect();
        let run = |baseline: bool| {
            super::simd::force_baseline(baseline);
            let mut net = net.clone();
            let mut opt = Optimizer::new(Kind::Adam, 0.0, &net);
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let mut all = Vec::new();
            for _ in 0..3 {
                let trace = net.forward(&x, 10, Mode::Train, &mut rng);
                let (_, _, d) = cross_entropy(trace.output(), &labels, 4, net.ends_in_softmax());
                let grads = net.backward(&trace, d);
                opt.apply(&mut net, &grads, 1e-2);
                net.update_batch_stats(&trace);
                all.push(grads);
            }
            super::simd::force_baseline(false);
            (all, net)
        };
        let (narrow, wide) = (run(true), run(false));
        assert!(narrow.0[0].iter().flatten().any(|g| g.iter().any(|&v| v != 0.0)));
        assert_eq!(narrow, wide, "{:?}", arch.name);
    }
}

/// FNV-1a over the bits of every parameter (moving statistics included) of `net`.
fn weights_fingerprint(net: &Network) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for v in net.nodes.iter().flat_map(|n| &n.params).flat_map(|p| &p.data) {
        for byte in v.to_bits().to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// A few Adam steps of `arch` on `n` samples of a fixed formula: the fingerprint of
/// the weights and moving statistics after them.
fn steps_fingerprint(arch: &Arch, n: usize, steps: usize) -> u64 {
    use crate::train::nn::optim::{Kind, Optimizer};
    let size: usize = arch.input.iter().product();
    let mut net = Network::new(arch, 2).unwrap();
    let classes = net.output_size();
    let x: Vec<f32> = (0..n * size).map(|i| ((i * 2654435761) % 1000) as f32 / 500.0 - 0.7).collect();
    let labels: Vec<usize> = (0..n).map(|i| (i * 3 + 1) % classes).collect();
    let mut opt = Optimizer::new(Kind::Adam, 0.0, &net);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for _ in 0..steps {
        let trace = net.forward(&x, n, Mode::Train, &mut rng);
        let (_, _, d) = cross_entropy(trace.output(), &labels, classes, net.ends_in_softmax());
        let grads = net.backward(&trace, d);
        opt.apply(&mut net, &grads, 1e-2);
        net.update_batch_stats(&trace);
    }
    weights_fingerprint(&net)
}

/// Depthwise-separable blocks over channel counts off the blocks of 8 and 16, odd
/// sizes, both strides, with and without bias, and every activation after batch norm.
const ODD_SEPARABLE: &str = r#"
input = [17, 15, 3]
[[layer]]
type = "conv2d"
filters = 5
kernel = 3
strides = 2
padding = "same"
use_bias = false
[[layer]]
type = "batchnorm"
activation = "relu6"
[[layer]]
type = "depthwise_conv2d"
kernel = 3
strides = 2
padding = "same"
use_bias = false
[[layer]]
type = "batchnorm"
activation = "relu"
[[layer]]
type = "conv2d"
filters = 19
kernel = 1
use_bias = false
[[layer]]
type = "batchnorm"
[[layer]]
type = "depthwise_conv2d"
kernel = 3
padding = "same"
[[layer]]
type = "batchnorm"
activation = "relu6"
[[layer]]
type = "depthwise_conv2d"
kernel = 3
strides = 2
[[layer]]
type = "batchnorm"
activation = "relu6"
[[layer]]
type = "conv2d"
filters = 9
kernel = 1
activation = "relu"
[[layer]]
type = "global_avgpool"
[[layer]]
type = "dense"
units = 3
activation = "softmax"
"#;

/// Training steps keep the bits they had before the passes over memory were fused
/// (fingerprints taken from the code before that change): the `mobilenet` preset at
/// its size and at 96×96 with batches that split evenly and unevenly into parts, and
/// separable blocks of odd shapes.
#[test]
fn training_steps_keep_their_bits() {
    let mobilenet = |input: [usize; 3]| {
        let mut arch = crate::train::presets::with_classes(crate::train::presets::preset("mobilenet").unwrap(), 4);
        arch.input = input;
        arch
    };
    let odd = Arch::parse(ODD_SEPARABLE).unwrap();
    let got = [
        steps_fingerprint(&mobilenet([96, 96, 3]), 32, 2),
        steps_fingerprint(&mobilenet([32, 32, 3]), 33, 3),
        steps_fingerprint(&mobilenet([24, 20, 3]), 10, 3),
        steps_fingerprint(&odd, 7, 3),
        steps_fingerprint(&odd, 32, 3),
    ];
    let want = [
        0x3f20_5cd0_683a_facf,
        0xe5a4_10b7_a1a8_22ca,
        0xaa41_9853_b222_1df6,
        0xbb3a_eea7_bfa2_d64c,
        0x1263_9f0f_d93c_7a2c,
    ];
    assert_eq!(got, want, "{got:#x?}");
}
