//! The `microcnn` binary end to end: import → infer reproduces TFLM's outputs byte for
//! byte, summary reports the arena, and bad input gets a one-line error naming the
//! file, a non-zero exit and no output file.

use std::path::Path;

mod common;
use common::*;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

#[test]
fn import_then_infer_matches_tflm_bytes() {
    let dir = tmp();
    let blob = import_small_cnn(dir.path());
    let out_npy = dir.path().join("out.npy");
    let out =
        microcnn(&["infer", &s(&blob), "--input", &vector("small_cnn_28x28", "input.npy"), "--output", &s(&out_npy)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = microcnn_tools::io::npy::read_i8(&out_npy).expect("output npy");
    let want =
        microcnn_tools::io::npy::read_i8(Path::new(&vector("small_cnn_28x28", "expected_tflm.npy"))).expect("expected");
    assert_eq!(got, want);
}

#[test]
fn summary_json_reports_arena_flash_params_macs_layers() {
    let dir = tmp();
    let blob = import_small_cnn(dir.path());
    let out = microcnn(&["summary", &s(&blob), "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let flash = std::fs::metadata(&blob).expect("blob").len();
    assert_eq!(v["flash_bytes"].as_u64(), Some(flash));
    assert!(v["arena_bytes"].as_u64().expect("arena") <= 10256);
    // Keras counts 9,098 parameters for this net.
    assert_eq!(v["params"].as_u64(), Some(9098));
    // conv 28·28·8·9 + conv 14·14·16·72 + dense 784·10
    assert_eq!(v["macs"].as_u64(), Some(28 * 28 * 8 * 9 + 14 * 14 * 16 * 72 + 784 * 10));
    assert_eq!(v["layers"].as_array().map(Vec::len), Some(7));
    let table = microcnn(&["summary", &s(&blob)]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("Conv2D") && text.contains("Total params: 9098"), "{text}");
}

#[test]
fn summary_takes_a_zoo_base_by_name_like_quantize_and_eval() {
    // By name the base comes from the bytes built into the binary; by folder from the
    // checkpoint files: the two must describe the same network.
    let by_name = microcnn(&["summary", "vgg-shapes", "--json"]);
    assert!(by_name.status.success(), "{}", String::from_utf8_lossy(&by_name.stderr));
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("zoo/vgg-shapes");
    let by_folder = microcnn(&["summary", &s(&folder), "--json"]);
    let a: serde_json::Value = serde_json::from_slice(&by_name.stdout).expect("one JSON object");
    let b: serde_json::Value = serde_json::from_slice(&by_folder.stdout).expect("one JSON object");
    assert!(a["params"].as_u64().expect("params") > 0);
    assert_eq!(a["layers"], b["layers"]);
    assert_eq!(a["params"], b["params"]);
}

#[test]
fn not_a_tflite_file_names_the_file() {
    let dir = tmp();
    let junk = dir.path().join("junk.tflite");
    std::fs::write(&junk, b"not a flatbuffer at all").expect("write");
    let blob = dir.path().join("out.mcnn");
    let out = microcnn(&["import", &s(&junk), "-o", &s(&blob)]);
    fails_cleanly(&out, "junk.tflite");
    assert!(!blob.exists(), "no partial output");
}

#[test]
fn corrupt_blob_and_wrong_input_are_clear_errors() {
    let dir = tmp();
    let blob = import_small_cnn(dir.path());
    let out_npy = dir.path().join("out.npy");
    // Samples of another model's shape.
    let out = microcnn(&["infer", &s(&blob), "--input", &vector("conv1x1", "input.npy"), "--output", &s(&out_npy)]);
    fails_cleanly(&out, "input.npy");
    assert!(!out_npy.exists());
    // A float array.
    let out = microcnn(&[
        "infer",
        &s(&blob),
        "--input",
        &vector("small_cnn_28x28", "input_float.npy"),
        "--output",
        &s(&out_npy),
    ]);
    fails_cleanly(&out, "int8");
    assert!(!out_npy.exists());
    // A corrupted blob.
    let mut bytes = std::fs::read(&blob).expect("blob");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    let bad = dir.path().join("bad.mcnn");
    std::fs::write(&bad, &bytes).expect("write");
    fails_cleanly(&microcnn(&["summary", &s(&bad)]), "checksum");
    // A missing file.
    fails_cleanly(&microcnn(&["summary", &s(&dir.path().join("missing.mcnn"))]), "missing.mcnn");
}

#[test]
fn image_inference_prints_top_classes() {
    let dir = tmp();
    let blob = import_small_cnn(dir.path());
    // A 28×28 gray image of a vertical bar.
    let img = image::GrayImage::from_fn(28, 28, |x, _| image::Luma([if (12..16).contains(&x) { 255 } else { 0 }]));
    let png = dir.path().join("bar.png");
    img.save(&png).expect("save png");
    let out = microcnn(&["infer", &s(&blob), "--image", &s(&png), "--top", "3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
}

#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    // Like `microcnn zoo | head -0`: the reader is gone before the output is written.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_microcnn"))
        .args(["zoo"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run microcnn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
}
