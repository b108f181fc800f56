//! Datasets held as `u8` (issue 14, part 3) train to the very weights the `f32`
//! datasets gave: the fingerprints below were taken from runs of the code before the
//! change (commit 7b554f3, where every dataset was decoded to `f32`), and must not move.

use microcnn_tools::data::augment::AugmentConfig;
use microcnn_tools::train::arch::Arch;
use microcnn_tools::train::checkpoint::State;
use microcnn_tools::train::fit;
use microcnn_tools::train::nn::optim::{Kind, Optimizer};
use microcnn_tools::train::nn::Network;

const ARCH: &str = r#"
input = [12, 12, 3]
[[layer]]
type = "conv2d"
filters = 4
kernel = 3
padding = "same"
activation = "relu"
[[layer]]
type = "maxpool2d"
pool = 2
[[layer]]
type = "flatten"
[[layer]]
type = "dense"
units = 6
activation = "softmax"
"#;

/// FNV-1a over the bits of every weight, then of the validation loss and accuracy of
/// every epoch: one bit changed anywhere changes it.
fn fingerprint(state: &State) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut eat = |bits: u32| {
        for byte in bits.to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for node in &state.net.nodes {
        for param in &node.params {
            param.data.iter().for_each(|v| eat(v.to_bits()));
        }
    }
    for m in &state.metrics {
        for v in [m.train_loss, m.train_accuracy, m.val_loss, m.val_accuracy] {
            eat(v.to_bits());
        }
    }
    hash
}

/// Two epochs on `data` (drawn at 16×16 and converted to the 12×12 input), a
/// validation split, with or without augmentation: the fingerprint of the result.
fn short_run(data: &str, classes: usize, augment: bool) -> u64 {
    let arch = Arch::parse(&ARCH.replace("units = 6", &format!("units = {classes}"))).expect("arch");
    let (train, val) = fit::load_data(data, None, 0.2, 3, arch.input, None).expect("data");
    let net = Network::new(&arch, 5).expect("net");
    let optimizer = Optimizer::new(Kind::Adam, 0.0, &net);
    let state = State { net, optimizer, metrics: vec![], classes: train.classes.clone() };
    let augment = if augment {
        AugmentConfig {
            rotation_range: 15.0,
            width_shift_range: 0.1,
            height_shift_range: 0.1,
            zoom_range: [0.9, 1.1],
            horizontal_flip: true,
            brightness_range: Some([0.8, 1.2]),
            ..AugmentConfig::default()
        }
    } else {
        AugmentConfig::default()
    };
    let cfg = fit::Config {
        epochs: 2,
        batch: 16,
        lr: 0.01,
        seed: 9,
        patience: None,
        augment,
        progress: false,
        fake_quant: None,
    };
    let dir = tempfile::tempdir().expect("tmp");
    let state = fit::run(dir.path(), state, &train, val.as_ref(), &cfg).expect("run");
    fingerprint(&state)
}

#[test]
fn a_short_run_trains_to_the_weights_it_trained_to_before_u8_datasets() {
    let runs = [
        ("shapes:size=16,count=150,seed=4", 6, false),
        ("shapes:size=16,count=150,seed=4", 6, true),
        ("shapes:count=120,seed=2", 6, false),
        ("digits:train", 10, true),
    ];
    let got: Vec<u64> = runs.iter().map(|&(data, classes, augment)| short_run(data, classes, augment)).collect();
    // Taken at commit 7b554f3 (f32 datasets); any change to the pixels the network
    // sees, the batch order, augmentation or validation moves them.
    let want = [0xc430_4cf8_7465_de8a_u64, 0xccc4_2aa2_7c43_481c, 0x5069_5b92_6c25_4ce6, 0x1476_26eb_2e6a_5b94];
    assert_eq!(got, want, "{got:#018x?}");
}
