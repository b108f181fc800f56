//! The host kernel path (`inspect::fast`) gives core's bytes: on every test-vector
//! model and on seeded random networks (conv, depthwise, dense, pooling, residual add,
//! concat, global mean, softmax; SAME and VALID, strides, odd channel counts), its
//! SIMD kernels and its scalar kernels each equal core's interpreter byte for byte,
//! and `run_samples` gives the same bytes on one thread and on two.

use microcnn_core::Model;
use microcnn_tools::compile::{blob, plan};
use microcnn_tools::data::dataset::Dataset;
use microcnn_tools::inspect::fast::{Kernels, Plan};
use microcnn_tools::inspect::run::{run_samples, run_samples_with};
use microcnn_tools::quantize::ptq;
use microcnn_tools::train::arch::Arch;
use microcnn_tools::train::nn::Network;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data");

/// Runs `inputs` through `model` with every kernel choice and asserts equal bytes;
/// returns how many layers ran on the host kernels.
fn assert_paths_agree(name: &str, model: &Model<'_>, inputs: &[i8]) -> usize {
    let core = run_samples_with(model, inputs, Kernels::Core).unwrap();
    let scalar = run_samples_with(model, inputs, Kernels::Scalar).unwrap();
    let auto = run_samples_with(model, inputs, Kernels::Auto).unwrap();
    assert_eq!(scalar, core, "{name}: scalar host kernels differ from core");
    assert_eq!(auto, core, "{name}: SIMD host kernels differ from core");
    Plan::new(model).unwrap().fast_layers()
}

#[test]
fn every_test_vector_model_gives_cores_bytes() {
    let mut cases = 0_usize;
    let mut fast = 0;
    for set in ["vectors", "vectors_extra"] {
        let mut dirs: Vec<_> = std::fs::read_dir(Path::new(DATA).join(set))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("model.tflite").exists())
            .collect();
        dirs.sort();
        for dir in dirs {
            let name = dir.display().to_string();
            let bytes = microcnn_tools::tflite::to_blob(&dir.join("model.tflite")).unwrap();
            let model = Model::from_bytes(&bytes).unwrap();
            let input = microcnn_tools::io::npy::read_i8(&dir.join("input.npy")).unwrap();
            fast += assert_paths_agree(&name, &model, &input.data);
            // And the recorded reference bytes (LiteRT's where TFLM has a known fault,
            // as in tests/tests/vectors.rs).
            let reference =
                if name.ends_with("standalone_relu6") { "expected_litert.npy" } else { "expected_tflm.npy" };
            let want = microcnn_tools::io::npy::read_i8(&dir.join(reference)).unwrap();
            assert_eq!(run_samples(&model, &input.data).unwrap(), want.data, "{name}: differs from {reference}");
            // Random bytes too: the recorded samples may not reach every clamp.
            let mut rng = ChaCha8Rng::seed_from_u64(cases as u64);
            let noise: Vec<i8> = (0..model.input().bytes() * 16).map(|_| rng.random()).collect();
            assert_paths_agree(&name, &model, &noise);
            cases += 1;
        }
    }
    assert!(cases >= 30, "only {cases} vector models found");
    assert!(fast >= cases, "only {fast} layers on the host kernels over {cases} models");
}

/// A seeded random network of `toml`, quantized (per-channel PTQ) on random images.
fn random_model(toml: &str, seed: u64) -> Vec<u8> {
    let arch = Arch::parse(toml).unwrap();
    let net = Network::new(&arch, seed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = 24;
    let calib = Dataset::new(
        arch.input,
        (0..n * arch.input.iter().product::<usize>()).map(|_| rng.random()).collect(),
        (0..n).map(|i| i % 2).collect(),
        vec!["a".into(), "b".into()],
    );
    let graph = ptq::quantize(&net, &calib, "random", &[]).unwrap();
    blob::write(&graph, &plan::plan(&graph)).unwrap()
}

fn layer(body: &str) -> String {
    format!("[[layer]]\n{body}\n")
}

#[test]
fn seeded_random_networks_give_cores_bytes() {
    let conv = |f: usize, k: &str, s: &str, pad: &str, act: &str| {
        layer(&format!(
            "type = \"conv2d\"\nfilters = {f}\nkernel = {k}\nstrides = {s}\npadding = \"{pad}\"\nactivation = \"{act}\""
        ))
    };
    let nets = [
        // SAME and VALID, strides, odd and even channel counts, 1×1, 5×5, 2×3 kernels.
        format!(
            "input = [13, 11, 3]\n{}{}{}{}{}{}",
            conv(5, "3", "1", "same", "relu"),
            conv(17, "[2, 3]", "[2, 1]", "valid", "relu6"),
            conv(8, "1", "1", "valid", "none"),
            layer("type = \"maxpool2d\"\npool = 2"),
            conv(3, "5", "2", "same", "relu"),
            layer("type = \"flatten\"\n[[layer]]\ntype = \"dense\"\nunits = 7\nactivation = \"softmax\""),
        ),
        // Depthwise, average pooling, separable, global mean, dense without softmax.
        format!(
            "input = [12, 12, 1]\n{}{}{}{}{}{}",
            conv(6, "3", "2", "same", "relu"),
            layer("type = \"depthwise_conv2d\"\nkernel = 3\npadding = \"same\"\nactivation = \"relu6\""),
            layer("type = \"avgpool2d\"\npool = 2"),
            layer("type = \"separable_conv2d\"\nfilters = 9\nkernel = 3\npadding = \"valid\"\nactivation = \"relu\""),
            layer("type = \"global_avgpool\""),
            layer("type = \"dense\"\nunits = 33"),
        ),
        // A residual block (ADD) and parallel branches (CONCATENATION).
        format!(
            "input = [10, 9, 3]\n{}{}{}{}",
            conv(8, "3", "1", "same", "relu"),
            "[[layer]]\ntype = \"residual\"\nactivation = \"relu\"\n[[layer.layer]]\ntype = \"conv2d\"\nfilters = 8\n\
             kernel = 3\npadding = \"same\"\nactivation = \"relu\"\n[[layer.layer]]\ntype = \"conv2d\"\nfilters = 8\n\
             kernel = 3\npadding = \"same\"\n",
            "[[layer]]\ntype = \"concat\"\n[[layer.branch]]\n[[layer.branch.layer]]\ntype = \"conv2d\"\nfilters = 3\n\
             kernel = 1\n[[layer.branch]]\n[[layer.branch.layer]]\ntype = \"conv2d\"\nfilters = 6\nkernel = 3\n\
             padding = \"same\"\nstrides = 1\nactivation = \"relu\"\n",
            layer("type = \"flatten\"\n[[layer]]\ntype = \"dense\"\nunits = 4\nactivation = \"softmax\""),
        ),
    ];
    for (i, toml) in nets.iter().enumerate() {
        for seed in 0..3 {
            let bytes = random_model(toml, seed);
            let model = Model::from_bytes(&bytes).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(100 + seed);
            let inputs: Vec<i8> = (0..model.input().bytes() * 20).map(|_| rng.random()).collect();
            let fast = assert_paths_agree(&format!("net {i} seed {seed}"), &model, &inputs);
            assert!(fast >= 3, "net {i}: only {fast} layers on the host kernels");
        }
    }
}

#[test]
fn one_thread_and_two_give_the_same_bytes() {
    let dir = Path::new(DATA).join("vectors/small_cnn_28x28");
    let bytes = microcnn_tools::tflite::to_blob(&dir.join("model.tflite")).unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // Enough samples for several chunks per thread, and a ragged last chunk.
    let inputs: Vec<i8> = (0..model.input().bytes() * 301).map(|_| rng.random()).collect();
    let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
    let one = pool(1).install(|| run_samples(&model, &inputs).unwrap());
    let two = pool(2).install(|| run_samples(&model, &inputs).unwrap());
    assert_eq!(one, two);
    assert_eq!(one, run_samples_with(&model, &inputs, Kernels::Core).unwrap());
}
