//! Helpers shared by the CLI tests: run the built `microcnn`, and check the one-line
//! error contract.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `microcnn` binary this package built.
pub fn microcnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_microcnn")).args(args).output().expect("run microcnn")
}

/// Runs `microcnn`, asserts success and returns its stdout.
pub fn run_ok(args: &[&str]) -> String {
    let out = microcnn(args);
    assert!(out.status.success(), "microcnn {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A path as an argument.
pub fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A failure with exactly one line of error output that mentions `needle`.
pub fn fails_cleanly(out: &Output, needle: &str) {
    assert!(!out.status.success(), "expected failure");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error, got: {err}");
    assert!(err.contains(needle), "error should mention {needle:?}: {err}");
}

/// `tests/data/digits/<split>` (the digits PNG folders).
pub fn digits_folder(split: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/digits").join(split).display().to_string()
}

/// A file of a vector case in `tests/data/vectors`.
pub fn vector(case: &str, file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vectors").join(case).join(file).display().to_string()
}

/// Imports small_cnn_28x28 into `dir/cnn.mcnn`.
pub fn import_small_cnn(dir: &Path) -> PathBuf {
    let blob = dir.join("cnn.mcnn");
    run_ok(&["import", &vector("small_cnn_28x28", "model.tflite"), "-o", &s(&blob)]);
    blob
}
