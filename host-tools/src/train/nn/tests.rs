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
#[test]
fn conv_input_gradients_with_padding_on_every_side_tight() {
    for (kernel, strides) in [(3, 1), (4, 2), (3, 2), (5, 1)] {
        check_tolerance(
            &format!(
                "input = [7, 6, 2]\n[[layer]]\ntype = \"conv2d\"\nfilters = 3\nkernel = 1\n\
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

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let arch = Arch::parse(&format!(
        "input = [8, 8, 1]\n[[layer]]\ntype = \"conv2d\"\nfilters = 4\nkernel = 3\npadding = \"same\"\n{HEAD}"
    ))
    .unwrap();
    let net = Network::new(&arch, 1).unwrap();
    let x: Vec<f32> = (0..10 * 64).map(|i| (i as f32 * 0.1).sin()).collect();
    let labels: Vec<usize> = (0..10).map(|i| i % 4).collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let trace = net.forward(&x, 10, Mode::Train, &mut ChaCha8Rng::seed_from_u64(0));
            let (_, _, d) = cross_entropy(trace.output(), &labels, 4, false);
            net.backward(&trace, d)
        })
    };
    assert_eq!(run(1), run(3));
}
