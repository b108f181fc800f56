//! `microcnn flash` end to end without hardware: the region image is the blob padded
//! with erased bytes to the model region's size (from `microcnn-layout`), the QEMU
//! firmware classifies with such an image in its model region, a missing probe is a
//! one-line error, and a bad model writes nothing.

use microcnn_core::Model;
use microcnn_layout::{NUCLEO_F411RE, QEMU_MPS2_AN386};
use microcnn_tools::deploy::qemu::{self, Cpu};

use std::time::Duration;

mod common;
use common::*;

#[test]
fn image_is_the_blob_then_erased_flash() {
    let dir = tempfile::tempdir().unwrap();
    let blob_path = import_small_cnn(dir.path());
    let blob = std::fs::read(&blob_path).unwrap();
    let image_path = dir.path().join("region.bin");
    let out = microcnn(&["flash", &s(&blob_path), "--image", &s(&image_path)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let image = std::fs::read(&image_path).unwrap();
    assert_eq!(image.len(), NUCLEO_F411RE.model.length as usize);
    assert_eq!(&image[..blob.len()], &blob[..]);
    assert!(image[blob.len()..].iter().all(|&b| b == 0xFF));
    assert!(Model::from_bytes(&image).is_ok(), "the firmware reads the blob from the padded region");
    assert!(String::from_utf8_lossy(&out.stdout).contains("0x08040000"));
}

#[test]
fn qemu_firmware_classifies_with_a_flashed_region_image() {
    let dir = tempfile::tempdir().unwrap();
    let blob_path = import_small_cnn(dir.path());
    let image_path = dir.path().join("qemu-region.bin");
    let out = microcnn(&["flash", &s(&blob_path), "--image", &s(&image_path), "--board", "qemu-mps2-an386"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let image = std::fs::read(&image_path).unwrap();
    assert_eq!(image.len(), QEMU_MPS2_AN386.model.length as usize);
    let blob = std::fs::read(&blob_path).unwrap();
    let model = Model::from_bytes(&blob).unwrap();
    let frames = qemu::frames_image(&model, &vec![0i8; model.input().bytes()]).unwrap();
    let firmware = qemu::Firmware::load(&qemu::build_firmware(Cpu::CortexM4).unwrap(), Cpu::CortexM4).unwrap();
    let run = firmware.run(&image, &frames, Duration::from_secs(60)).unwrap();
    assert_eq!(run.status, 0, "{:?}", run.lines);
    assert_eq!(run.classifications().count(), 1);
}

#[test]
fn no_probe_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let blob_path = import_small_cnn(dir.path());
    let out = microcnn(&["flash", &s(&blob_path), "--chip", "STM32F411RETx"]);
    fails_cleanly(&out, "no debug probe found");
    let out = microcnn(&["flash", &s(&blob_path), "--chip", "NRF52840_xxAA"]);
    fails_cleanly(&out, "no firmware memory map for chip NRF52840_xxAA");
}

#[test]
fn a_bad_model_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.mcnn");
    std::fs::write(&bad, b"MCNN not really a model").unwrap();
    let image_path = dir.path().join("region.bin");
    let out = microcnn(&["flash", &s(&bad), "--image", &s(&image_path)]);
    fails_cleanly(&out, "invalid model");
    assert!(!image_path.exists());
}

/// A model whose arena the board's firmware cannot hold is refused before anything is
/// written, naming both sizes (the firmware would only blink "arena too small").
#[test]
fn a_model_larger_than_the_firmware_arena_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let case = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vectors/small_cnn_28x28");
    let blob_path = dir.path().join("m.mcnn");
    assert!(microcnn(&["import", &s(&case.join("model.tflite")), "-o", &s(&blob_path)]).status.success());
    // The header's arena size (bytes 16..20) raised to 300 KiB, the CRC recomputed:
    // still a valid model, one that needs more arena than the F411 firmware's.
    let mut blob = std::fs::read(&blob_path).unwrap();
    blob[16..20].copy_from_slice(&(300 * 1024_u32).to_le_bytes());
    let crc = microcnn_core::crc::crc32(&blob[16..]);
    blob[12..16].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(Model::from_bytes(&blob).unwrap().arena_size(), 300 * 1024);
    std::fs::write(&blob_path, &blob).unwrap();
    let image_path = dir.path().join("region.bin");
    let out = microcnn(&["flash", &s(&blob_path), "--image", &s(&image_path)]);
    fails_cleanly(&out, "needs a 307200 byte arena");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{} bytes", NUCLEO_F411RE.arena_bytes)), "{err}");
    assert!(!image_path.exists());
}
