//! Float32 TFLite models as networks: the imported network computes what TFLite's
//! float interpreter computed, this kit's PTQ of the float model agrees with TFLite's
//! own int8 conversion, `finetune --base MODEL.tflite` trains, quantizes and runs, and
//! bad input fails in one line with nothing written.
//!
//! The models, inputs and TFLite outputs are in `tests/data/float/`, made by
//! `tests/data/gen/gen_float.py` (TensorFlow 2.21.0, Keras 3.15.1).

use microcnn_core::Model;
use microcnn_tools::compile::{blob, plan};
use microcnn_tools::data::dataset::{self, Dataset};
use microcnn_tools::inspect::eval;
use microcnn_tools::quantize::ptq;
use microcnn_tools::train::arch::Act;
use microcnn_tools::train::float_tflite;
use microcnn_tools::train::nn::{Layer, Network};
use std::path::{Path, PathBuf};

mod common;
use common::*;

const MODELS: [&str; 3] = ["mobilenetv2", "vgg", "concat"];

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/float")
}

fn file(name: &str) -> PathBuf {
    data_dir().join(name)
}

fn test_set() -> Dataset {
    dataset::load(&s(&file("test-images-idx4-ubyte")), None).unwrap()
}

/// A float32 `.npy` file's values (little-endian `<f4`, C order).
fn read_f32_npy(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'<f4'") && header.contains("False"), "{header}");
    bytes[10 + header_len..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn without_softmax(net: &Network) -> Network {
    let mut logits = net.clone();
    if let Some(Layer::Dense { act }) = logits.nodes.last_mut().map(|n| &mut n.layer) {
        *act = Act::None;
    }
    logits
}

/// Largest |a − b| over the largest |b|.
fn max_diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f32::max);
    (diff, scale)
}

#[test]
fn imported_float_networks_compute_what_tflite_computes() {
    let test = test_set();
    for name in MODELS {
        let net = float_tflite::load(&file(&format!("{name}.tflite"))).unwrap();
        assert_eq!(net.input_shape(), [32, 32, 3]);
        assert!(net.ends_in_softmax(), "{name}");
        let logits = without_softmax(&net).predict(&test.to_unit(), test.len());
        let (d, scale) = max_diff(&logits, &read_f32_npy(&file(&format!("{name}_logits.npy"))));
        let probs = net.predict(&test.to_unit(), test.len());
        let (dp, _) = max_diff(&probs, &read_f32_npy(&file(&format!("{name}_probs.npy"))));
        eprintln!("{name}: logits max |diff| {d:.3e} (max |logit| {scale:.2}), probabilities max |diff| {dp:.3e}");
        // f32 sums in a different order than TFLite's kernels: measured ≤ 2e-6 relative.
        assert!(d <= 1e-4 * scale.max(1.0), "{name}: logits differ by {d} (scale {scale})");
        assert!(dp <= 1e-4, "{name}: probabilities differ by {dp}");
    }
}

#[test]
fn mobilenetv2_maps_onto_residual_blocks() {
    let net = float_tflite::load(&file("mobilenetv2.tflite")).unwrap();
    let adds = net.nodes.iter().filter(|n| matches!(n.layer, Layer::Add { .. })).count();
    let depthwise = net.nodes.iter().filter(|n| matches!(n.layer, Layer::Depthwise { .. })).count();
    assert_eq!((adds, depthwise), (3, 7));
    let concat = float_tflite::load(&file("concat.tflite")).unwrap();
    assert_eq!(concat.nodes.iter().filter(|n| matches!(n.layer, Layer::Concat)).count(), 1);
    // VGG's second ZeroPadding2D(1) before a stride-2 valid conv is not SAME: explicit
    // padding, which a checkpoint's arch.toml keeps.
    let vgg = float_tflite::load(&file("vgg.tflite")).unwrap();
    let toml = vgg.arch.to_toml();
    assert!(toml.contains("explicit = [1, 1, 1, 1]"), "{toml}");
    assert_eq!(microcnn_tools::train::arch::Arch::parse(&toml).unwrap(), vgg.arch);
}

fn predictions(bytes: &[u8], data: &Dataset) -> Vec<usize> {
    let model = Model::from_bytes(bytes).unwrap();
    eval::run_model(&model, data).unwrap().2
}

#[test]
fn ptq_of_a_float_model_agrees_with_tflites_int8_conversion() {
    let test = test_set();
    let calib = dataset::load(&s(&file("calib-images-idx4-ubyte")), None).unwrap();
    for name in MODELS {
        let net = float_tflite::load(&file(&format!("{name}.tflite"))).unwrap();
        let classes: Vec<String> = (0..net.output_size()).map(|k| k.to_string()).collect();
        let graph = ptq::quantize(&net, &calib, name, &classes).unwrap();
        let ours = predictions(&blob::write(&graph, &plan::plan(&graph)).unwrap(), &test);
        // TFLite's interpreter ran its int8 model (`microcnn import` cannot read
        // vgg_int8: the int8 engine has no PAD).
        let theirs = microcnn_tools::io::npy::read_i8(&file(&format!("{name}_int8_outputs.npy"))).unwrap();
        assert_eq!(theirs.shape, [test.len(), net.output_size()]);
        let theirs: Vec<usize> = theirs
            .data
            .chunks(net.output_size())
            .map(|row| (0..row.len()).fold(0, |best, k| if row[k] > row[best] { k } else { best }))
            .collect();
        let float: Vec<usize> = net
            .predict(&test.to_unit(), test.len())
            .chunks(net.output_size())
            .map(microcnn_tools::train::nn::argmax)
            .collect();
        let agree = |a: &[usize], b: &[usize]| a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64;
        let (with_tflite, with_float) = (agree(&ours, &theirs), agree(&ours, &float));
        eprintln!(
            "{name}: top-1 agreement with TFLite int8 {with_tflite:.3}, with float {with_float:.3}, TFLite int8 with \
             float {:.3} ({} images)",
            agree(&theirs, &float),
            test.len()
        );
        assert!(with_tflite >= 0.97, "{name}: {with_tflite}");
    }
}

#[test]
fn finetune_from_a_float_tflite_base_quantizes_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ft");
    let base = s(&file("mobilenetv2.tflite"));
    let data = "shapes:classes=circle+square+triangle,count=48,size=32,channels=3";
    run_ok(&[
        "finetune",
        "--base",
        &base,
        "--data",
        data,
        "--out",
        &s(&out),
        "--mode",
        "fine-tuning",
        "--epochs",
        "2",
        "--fine-tune-epochs",
        "1",
        "--quiet",
    ]);
    // The base's weights came from the file: the first convolution is bit-identical
    // (fine-tuning only unfreezes the top layers).
    let (tuned, info) = microcnn_tools::train::checkpoint::load(&out).unwrap();
    assert_eq!(info.classes.len(), 3);
    let imported = float_tflite::load(&file("mobilenetv2.tflite")).unwrap();
    let first = |n: &Network| n.nodes[1].params[0].data.clone();
    assert_eq!(first(&tuned), first(&imported));
    let model = dir.path().join("ft.mcnn");
    run_ok(&["quantize", &s(&out), "--calib", data, "-o", &s(&model)]);
    let (i, o, again) = (dir.path().join("i.npy"), dir.path().join("o.npy"), dir.path().join("a.npy"));
    run_ok(&[
        "eval",
        &s(&model),
        "--data",
        "shapes:classes=circle+square+triangle,split=test,count=12,size=32,channels=3",
        "--save-inputs",
        &s(&i),
        "--save-outputs",
        &s(&o),
        "--confusion",
        &s(&dir.path().join("c.png")),
    ]);
    run_ok(&["infer", &s(&model), "--input", &s(&i), "--output", &s(&again)]);
    assert_eq!(std::fs::read(&o).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn quantize_takes_a_float_tflite_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("vgg.mcnn");
    let calib = s(&file("calib-images-idx4-ubyte"));
    let out = run_ok(&["quantize", &s(&file("vgg.tflite")), "--calib", &calib, "-o", &s(&model)]);
    assert!(out.contains("calibrated on 100 images"), "{out}");
    let json = run_ok(&[
        "eval",
        &s(&model),
        "--data",
        &s(&file("test-images-idx4-ubyte")),
        "--json",
        "--confusion",
        &s(&dir.path().join("c.png")),
    ]);
    let acc = serde_json::from_str::<serde_json::Value>(json.trim()).unwrap()["accuracy"].as_f64().unwrap();
    // TFLite's float and int8 models are right on all 200 (meta.json).
    assert!(acc >= 0.97, "{acc}");
}

#[test]
fn bad_float_models_and_data_fail_in_one_line_writing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let calib = s(&file("calib-images-idx4-ubyte"));
    let mcnn = dir.path().join("m.mcnn");
    let ckpt = dir.path().join("ft");
    let finetune = |base: &str, data: &str| {
        microcnn(&[
            "finetune",
            "--base",
            base,
            "--data",
            data,
            "--out",
            &s(&ckpt),
            "--mode",
            "feature-extraction",
            "--epochs",
            "1",
            "--quiet",
        ])
    };
    let quantize = |src: &str, data: &str| microcnn(&["quantize", src, "--calib", data, "-o", &s(&mcnn)]);
    let unsupported = s(&file("unsupported_op.tflite"));
    for out in [finetune(&unsupported, &calib), quantize(&unsupported, &calib)] {
        fails_cleanly(&out, "unsupported_op.tflite: operator 1 (LEAKY_RELU) is not supported in a float model");
    }
    let features = s(&file("noclassifier.tflite"));
    fails_cleanly(&finetune(&features, &calib), "noclassifier.tflite: the model has no classifier");
    let int8 = s(&file("mobilenetv2_int8.tflite"));
    for out in [finetune(&int8, &calib), quantize(&int8, &calib)] {
        fails_cleanly(&out, "mobilenetv2_int8.tflite: the model's input is INT8, not FLOAT32");
        fails_cleanly(&out, "`microcnn import`");
    }
    // 16×16 images for a 32×32 model.
    let small = dir.path().join("small-images-idx4-ubyte");
    let mut idx = vec![0, 0, 8, 4];
    for d in [2u32, 16, 16, 3] {
        idx.extend(d.to_be_bytes());
    }
    idx.extend(vec![100u8; 2 * 16 * 16 * 3]);
    std::fs::write(&small, idx).unwrap();
    std::fs::write(dir.path().join("small-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 2, 0, 1]).unwrap();
    let vgg = s(&file("vgg.tflite"));
    for out in [finetune(&vgg, &s(&small)), quantize(&vgg, &s(&small))] {
        fails_cleanly(&out, "small-images-idx4-ubyte: images are 16×16, but the model");
        fails_cleanly(&out, "vgg.tflite takes 32×32");
    }
    assert!(!mcnn.exists() && !ckpt.exists());
}
