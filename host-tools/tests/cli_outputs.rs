//! Outputs never replace what is not a regular file: `-o -` writes to standard output,
//! a FIFO is written through and stays a FIFO, a symlinked output stays a link.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

mod common;
use common::*;

fn small_cnn() -> String {
    s(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vectors/small_cnn_28x28/model.tflite"))
}

#[test]
fn import_to_stdout_gives_the_same_bytes_as_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.mcnn");
    assert!(microcnn(&["import", &small_cnn(), "-o", &s(&file)]).status.success());
    let out = microcnn(&["import", &small_cnn(), "-o", "-"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written = std::fs::read(&file).unwrap();
    assert_eq!(out.stdout, written, "stdout holds the blob and nothing else");
}

#[test]
fn a_fifo_output_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("out.pipe");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(&fifo).unwrap())
    };
    let out = microcnn(&["import", &small_cnn(), "-o", &s(&fifo)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = reader.join().unwrap();
    assert_eq!(&bytes[..4], b"MCNN");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn a_symlinked_output_stays_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.mcnn");
    std::fs::write(&real, b"old").unwrap();
    let link = dir.path().join("link.mcnn");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert!(microcnn(&["import", &small_cnn(), "-o", &s(&link)]).status.success());
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(&std::fs::read(&real).unwrap()[..4], b"MCNN");
}

/// Small refusals of issue 10: a TFLite file where a blob is expected suggests
/// `import`; a firmware that is not an ELF, `--top 0`, `--calib-samples 0` and
/// `--val-split nan` are refused; `import` and `export` take `--out` like `quantize`.
#[test]
fn small_mistakes_get_clear_answers() {
    let dir = tempfile::tempdir().unwrap();
    let tflite = small_cnn();
    let x = dir.path().join("x.npy");
    let y = dir.path().join("y.npy");
    std::fs::write(&x, b"").unwrap();
    fails_cleanly(
        &microcnn(&["infer", &tflite, "--input", &s(&x), "--output", &s(&y)]),
        "a TFLite model, not a .mcnn blob: convert it with `microcnn import",
    );
    let blob = dir.path().join("m.mcnn");
    assert!(microcnn(&["import", &tflite, "--out", &s(&blob)]).status.success(), "--out alias");
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vectors/small_cnn_28x28/input.npy");
    let text = dir.path().join("firmware.txt");
    std::fs::write(&text, "not firmware").unwrap();
    let out = microcnn(&[
        "infer",
        &s(&blob),
        "--input",
        &s(&input),
        "--output",
        &s(&y),
        "--on",
        "qemu",
        "--firmware",
        &s(&text),
    ]);
    fails_cleanly(&out, "not an ELF file");
    assert!(!y.exists());
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/digits/test/3");
    let first = std::fs::read_dir(&image).unwrap().next().unwrap().unwrap().path();
    assert!(!microcnn(&["infer", &s(&blob), "--image", &s(&first), "--top", "0"]).status.success());
    let run = dir.path().join("run");
    fails_cleanly(
        &microcnn(&["train", "--data", "digits", "--arch", "vgg", "--out", &s(&run), "--val-split", "nan"]),
        "--val-split NaN: must be at least 0 and below 1",
    );
    assert!(!run.exists());
    assert!(!microcnn(&["quantize", &s(&run), "--calib", "digits", "-o", &s(&blob), "--calib-samples", "0"])
        .status
        .success());
}
