//! `microcnn export`: the Rust source compiles (as a library, and as a module of a
//! program that checks its alignment, name and labels), the C header compiles and
//! runs likewise, every form holds exactly the blob, and a corrupt model gets a
//! one-line error naming it, a non-zero exit and no output file.
//!
//! These tests need `rustc` and a C compiler named `cc` on PATH; without them they
//! fail rather than skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::*;

/// Labels that need escaping in Rust and C: quotes, backslashes, a trigraph, a comment
/// end, a tab, non-ASCII text.
const LABELS: [&str; 10] =
    ["zero", "say \"one\"", "back\\slash", "??=", "*/ end", "tab\there", "été", "数字", "{}", "$x"];
const NAME: &str = "net \"quoted\" */ ünï";

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The small CNN of the test vectors, with a name and labels that need escaping.
fn labelled_blob(dir: &Path) -> (PathBuf, Vec<u8>) {
    let tflite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vectors/small_cnn_28x28/model.tflite");
    let bytes = std::fs::read(tflite).expect("test vector");
    let model = microcnn_tools::tflite::reader::parse(&bytes).expect("tflite");
    let mut graph = microcnn_tools::tflite::import::import(&model, NAME).expect("import");
    graph.labels = LABELS.iter().map(|l| l.to_string()).collect();
    let plan = microcnn_tools::compile::plan::plan(&graph);
    let blob = microcnn_tools::compile::blob::write(&graph, &plan).expect("blob");
    let path = dir.join("cnn.mcnn");
    std::fs::write(&path, &blob).expect("write blob");
    (path, blob)
}

fn arena_bytes(blob: &[u8]) -> usize {
    microcnn_core::Model::from_bytes(blob).expect("valid").arena_size()
}

/// The `0x..` bytes between `start` and the next `end`.
fn hex_bytes(source: &str, start: &str, end: &str) -> Vec<u8> {
    let from = source.find(start).expect("start of the bytes") + start.len();
    let to = from + source[from..].find(end).expect("end of the bytes");
    source[from..to]
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| u8::from_str_radix(t.strip_prefix("0x").expect("hex byte"), 16).expect("hex byte"))
        .collect()
}

fn run_tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program} must be on PATH: {e}"));
    ok(&out)
}

#[test]
fn rust_export_compiles_and_holds_the_blob() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (model, blob) = labelled_blob(dir.path());
    let source_path = dir.path().join("model.rs");
    let printed = ok(&microcnn(&["export", &s(&model), "--format", "rust", "-o", &s(&source_path)]));
    assert_eq!(
        printed.trim_end(),
        format!("{}: rust, {} bytes, arena {} bytes", s(&source_path), blob.len(), arena_bytes(&blob))
    );
    let source = std::fs::read_to_string(&source_path).expect("source");
    assert_eq!(hex_bytes(&source, "Aligned([", "]);"), blob);
    assert!(source.lines().filter(|l| l.contains("0x")).all(|l| l.matches("0x").count() <= 16));

    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).expect("out dir");
    let (out, src) = (s(&out_dir), s(&source_path));
    let lib = ["--edition", "2021", "--crate-type", "lib", "-D", "warnings", "--out-dir", &out, &src];
    run_tool("rustc", &lib);

    // As a module of a program: the blob is aligned and the constants read back.
    let main = dir.path().join("main.rs");
    std::fs::write(
        &main,
        r#"mod model;
fn main() {
    assert_eq!(model::MODEL.0.as_ptr() as usize % 16, 0);
    assert_eq!(model::MODEL.0.len(), model::MODEL_BYTES);
    println!("{}", model::MODEL_NAME);
    println!("{}", model::ARENA_BYTES);
    println!("{:?} {:?}", model::INPUT_SHAPE, model::OUTPUT_SHAPE);
    println!("{} {}", model::INPUT_SCALE, model::INPUT_ZERO_POINT);
    for label in model::LABELS {
        println!("{label}");
    }
}
"#,
    )
    .expect("main.rs");
    let program = dir.path().join("program");
    run_tool("rustc", &["--edition", "2021", "-D", "warnings", "-o", &s(&program), &s(&main)]);
    let printed = run_tool(&s(&program), &[]);
    let expected =
        format!("{NAME}\n{}\n[28, 28, 1] [1, 1, 10]\n0.003921569 -128\n{}\n", arena_bytes(&blob), LABELS.join("\n"));
    assert_eq!(printed, expected);
}

#[test]
fn c_header_compiles_and_holds_the_blob() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (model, blob) = labelled_blob(dir.path());
    let header = dir.path().join("digits-net.h");
    let printed = ok(&microcnn(&["export", &s(&model), "--format", "c", "-o", &s(&header)]));
    assert!(printed.starts_with(&format!("{}: c, {} bytes, arena ", s(&header), blob.len())), "{printed}");
    let text = std::fs::read_to_string(&header).expect("header");
    assert_eq!(hex_bytes(&text, "digits_net_model[DIGITS_NET_MODEL_BYTES] = {", "};"), blob);
    assert!(text.contains(&format!("#define DIGITS_NET_ARENA_BYTES {}", arena_bytes(&blob))), "{text}");

    let strict = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror"];
    run_tool("cc", &[&["-fsyntax-only", "-x", "c"][..], &strict, &[&s(&header)]].concat());

    // A program that includes it: the array is aligned and the strings read back.
    let main = dir.path().join("main.c");
    std::fs::write(
        &main,
        r#"#include <stdio.h>
#include "digits-net.h"
int main(void) {
    size_t i;
    if ((uintptr_t)digits_net_model % 16 != 0 || sizeof digits_net_model != DIGITS_NET_MODEL_BYTES) return 1;
    printf("%s\n%d\n%d %d %d\n", DIGITS_NET_MODEL_NAME, DIGITS_NET_ARENA_BYTES, DIGITS_NET_INPUT_HEIGHT,
           DIGITS_NET_INPUT_WIDTH, DIGITS_NET_INPUT_CHANNELS);
    printf("%d %d\n", DIGITS_NET_INPUT_ZERO_POINT, DIGITS_NET_INPUT_BYTES);
    for (i = 0; i < DIGITS_NET_LABEL_COUNT; i++) printf("%s\n", digits_net_labels[i]);
    return 0;
}
"#,
    )
    .expect("main.c");
    let program = dir.path().join("program");
    run_tool("cc", &[&strict[..], &["-o", &s(&program), &s(&main)]].concat());
    let printed = run_tool(&s(&program), &[]);
    let expected = format!("{NAME}\n{}\n28 28 1\n-128 784\n{}\n", arena_bytes(&blob), LABELS.join("\n"));
    assert_eq!(printed, expected);
}

#[test]
fn c_symbols_take_the_name_option() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (model, blob) = labelled_blob(dir.path());
    let header = dir.path().join("model.h");
    ok(&microcnn(&["export", &s(&model), "--format", "c", "-o", &s(&header), "--name", "2nd Net"]));
    let text = std::fs::read_to_string(&header).expect("header");
    assert!(text.contains("#ifndef MICROCNN_MODEL_2ND_NET_H"), "{text}");
    assert_eq!(hex_bytes(&text, "model_2nd_net_model[MODEL_2ND_NET_MODEL_BYTES] = {", "};"), blob);
}

#[test]
fn bin_export_is_the_blob() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (model, blob) = labelled_blob(dir.path());
    let out = dir.path().join("copy.bin");
    let printed = ok(&microcnn(&["export", &s(&model), "--format", "bin", "-o", &s(&out)]));
    assert!(printed.starts_with(&format!("{}: bin, {} bytes", s(&out), blob.len())), "{printed}");
    assert_eq!(std::fs::read(&out).expect("output"), blob);
}

#[test]
fn corrupt_model_fails_cleanly_without_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, mut blob) = labelled_blob(dir.path());
    let last = blob.len() - 1;
    blob[last] ^= 0xff; // the CRC no longer matches
    let corrupt = dir.path().join("corrupt.mcnn");
    std::fs::write(&corrupt, &blob).expect("write");
    for format in ["rust", "c", "bin"] {
        let target = dir.path().join(format!("out.{format}"));
        let out = microcnn(&["export", &s(&corrupt), "--format", format, "-o", &s(&target)]);
        assert!(!out.status.success(), "{format}: expected failure");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "one-line error, got: {err}");
        assert!(err.contains("corrupt.mcnn"), "error should name the file: {err}");
        assert!(!target.exists(), "{format}: no output file");
    }
    let target = dir.path().join("x.bin");
    let missing = microcnn(&["export", &s(&dir.path().join("missing.mcnn")), "--format", "bin", "-o", &s(&target)]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("missing.mcnn"));
    assert!(!target.exists());
}
