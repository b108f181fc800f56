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
    let fit::Loaded { train, val, .. } = fit::load_data(data, None, 0.2, 3, arch.input, None).expect("data");
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
        phase: 1,
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
    // sees, the batch order, augmentation or validation moves them. Taken again when
    // training's matrix products moved from `matrixmultiply` to the own kernel
    // (`train/nn/gemm.rs`: one fused multiply-add chain per value, so other roundings;
    // the same on every CPU since).
    let want = [0xfca8_e50c_c4cc_6676_u64, 0xac5a_ccb0_30cd_c2c8, 0x93b7_33ea_2e79_77d4, 0xa9e0_bef1_0ab9_1ab3];
    assert_eq!(got, want, "{got:#018x?}");
}

mod common;
use common::*;

/// A class-folder tree of 8×8 gray PNGs, `per_class` of each of two classes.
fn png_tree(root: &std::path::Path, per_class: u32) {
    for (class, level) in [("dark", 40u8), ("light", 200)] {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for i in 0..per_class {
            let picture =
                image::GrayImage::from_fn(8, 8, |x, y| image::Luma([level.wrapping_add((x * y + i) as u8 % 30)]));
            picture.save(dir.join(format!("{i:03}.png"))).expect("png");
        }
    }
}

const TINY_ARCH: &str = "input = [8, 8, 1]\n[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"dense\"\nunits = 2\nactivation = \"softmax\"\n";

/// `train` ends with its peak resident memory; a corrupt image among good ones is one
/// line naming it, before any epoch: a new run leaves no folder, a resumed one keeps its
/// last finished epoch byte for byte.
#[test]
fn train_reports_peak_rss_and_a_corrupt_image_leaves_the_last_good_epoch() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    png_tree(&data, 6);
    let arch = dir.path().join("tiny.toml");
    std::fs::write(&arch, TINY_ARCH).expect("arch");
    let run = dir.path().join("run");
    let stdout =
        run_ok(&["train", "--data", &s(&data), "--arch", &s(&arch), "--out", &s(&run), "--epochs", "1", "--quiet"]);
    let rss = stdout.lines().last().unwrap_or("");
    if cfg!(target_os = "linux") {
        assert!(rss.starts_with("peak RSS ") && rss.ends_with(" MiB)"), "{stdout}");
    } else {
        assert_eq!(rss, "peak RSS n/a", "{stdout}");
    }
    let state = std::fs::read(run.join("state.safetensors")).expect("state");
    let model = std::fs::read(run.join("model.safetensors")).expect("model");

    // A PNG cut short, in the middle of a class.
    let good = std::fs::read(data.join("light/003.png")).expect("png");
    std::fs::write(data.join("light/003.png"), &good[..good.len() / 2]).expect("truncate");
    let resumed = microcnn(&["train", "--data", &s(&data), "--out", &s(&run), "--epochs", "2", "--resume", "--quiet"]);
    fails_cleanly(&resumed, "003.png");
    assert_eq!(std::fs::read(run.join("state.safetensors")).expect("state"), state, "state changed");
    assert_eq!(std::fs::read(run.join("model.safetensors")).expect("model"), model, "model changed");
    let fresh = dir.path().join("fresh");
    let failed = microcnn(&["train", "--data", &s(&data), "--arch", &s(&arch), "--out", &s(&fresh), "--quiet"]);
    fails_cleanly(&failed, "light/003.png");
    assert!(!fresh.exists(), "a failed run left {}", fresh.display());
}
