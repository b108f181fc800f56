//! BatchNorm folding (`quantize::ptq::fold`) computes the unfolded network in f32.

use microcnn_tools::quantize::ptq::fold;
use microcnn_tools::train::arch::Arch;
use microcnn_tools::train::nn::Network;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A conv, a depthwise conv and a dense layer, each followed by a BatchNorm with
/// non-trivial statistics (and ReLU/ReLU6/none after it), plus dropout: the folded net's
/// predictions equal the unfolded net's within 1e-5 (f32 rounding), and differ visibly
/// when a BatchNorm is left out.
#[test]
fn folded_batchnorm_equals_the_unfolded_network() {
    let toml = "input = [8, 7, 3]\n\
        [[layer]]\ntype = \"conv2d\"\nfilters = 5\nkernel = 3\npadding = \"same\"\nstrides = 2\n\
        [[layer]]\ntype = \"batchnorm\"\nactivation = \"relu\"\n\
        [[layer]]\ntype = \"depthwise_conv2d\"\nkernel = 3\npadding = \"same\"\n\
        [[layer]]\ntype = \"batchnorm\"\nactivation = \"relu6\"\n\
        [[layer]]\ntype = \"dropout\"\nrate = 0.5\n\
        [[layer]]\ntype = \"flatten\"\n\
        [[layer]]\ntype = \"dense\"\nunits = 6\n\
        [[layer]]\ntype = \"batchnorm\"\n\
        [[layer]]\ntype = \"dense\"\nunits = 4\nactivation = \"softmax\"\n";
    let mut net = Network::new(&Arch::parse(toml).unwrap(), 1).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut batchnorms = 0;
    for node in &mut net.nodes {
        for p in &mut node.params {
            let range = match p.name {
                "gamma" => 0.5..2.0,
                "beta" | "moving_mean" => -0.5..0.5,
                "moving_variance" => 0.2..3.0,
                _ => continue,
            };
            p.data.iter_mut().for_each(|v| *v = rng.random_range(range.clone()));
            batchnorms += usize::from(p.name == "gamma");
        }
    }
    assert_eq!(batchnorms, 3);
    let folded = fold(&net).unwrap();
    assert_eq!(folded.nodes.len(), net.nodes.len() - 4, "three batchnorms and the dropout are gone");
    let n = 16;
    let x: Vec<f32> = (0..n * 8 * 7 * 3).map(|_| rng.random_range(0.0..1.0)).collect();
    let (want, got) = (net.predict(&x, n), folded.predict(&x, n));
    let worst = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-5, "folded differs by {worst}");

    // The comparison has teeth: statistics ignored (a fold that forgot the variance).
    let mut unscaled = net.clone();
    for node in &mut unscaled.nodes {
        for p in &mut node.params {
            if p.name == "moving_variance" {
                p.data.iter_mut().for_each(|v| *v = 1.0);
            }
        }
    }
    let off = fold(&unscaled).unwrap().predict(&x, n);
    let worst = want.iter().zip(&off).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst > 1e-3, "a wrong fold differs by only {worst}");
}
