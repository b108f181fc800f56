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
