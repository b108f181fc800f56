//! `microcnn infer --on qemu` end to end: the output file is byte-identical to the
//! host `infer`'s, `--json` reports instructions per sample, per layer and per MAC,
//! and a missing firmware ELF is a one-line error that says how to build it.

use std::path::Path;

mod common;
use common::*;

#[test]
fn infer_on_qemu_writes_the_same_bytes_as_on_the_host() {
    let firmware = microcnn_tools::deploy::qemu::build_firmware(microcnn_tools::deploy::qemu::Cpu::CortexM4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vectors/small_cnn_28x28");
    let blob = dir.path().join("cnn.mcnn");
    assert!(microcnn(&["import", &s(&case.join("model.tflite")), "-o", &s(&blob)]).status.success());
    let input = s(&case.join("input.npy"));
    let (host, device) = (dir.path().join("host.npy"), dir.path().join("qemu.npy"));
    assert!(microcnn(&["infer", &s(&blob), "--input", &input, "--output", &s(&host)]).status.success());
    let out = microcnn(&[
        "infer",
        &s(&blob),
        "--input",
        &input,
        "--output",
        &s(&device),
        "--on",
        "qemu",
        "--firmware",
        &s(&firmware),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&device).unwrap(), std::fs::read(&host).unwrap());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("instr/MAC") && table.contains("invoke (total)"), "{table}");

    let out = microcnn(&["infer", &s(&blob), "--input", &input, "--output", &s(&device), "--on", "qemu", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["samples_count"], 8);
    assert_eq!(report["macs"], 290_080);
    assert!(report["instructions_per_mac"].as_f64().unwrap() > 1.0);
    assert_eq!(report["layers"].as_array().unwrap().len(), 7);
    assert_eq!(report["samples"][0]["layers"].as_array().unwrap().len(), 7);
    assert!(report["samples"][7]["instructions"].as_u64().unwrap() > 290_080);
}

#[test]
fn missing_firmware_is_a_one_line_error() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vectors/small_cnn_28x28");
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("cnn.mcnn");
    assert!(microcnn(&["import", &s(&case.join("model.tflite")), "-o", &s(&blob)]).status.success());
    let output = dir.path().join("out.npy");
    let out = microcnn(&[
        "infer",
        &s(&blob),
        "--input",
        &s(&case.join("input.npy")),
        "--output",
        &s(&output),
        "--on",
        "qemu",
        "--firmware",
        &s(&dir.path().join("nope.elf")),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("cargo build --release -p microcnn-fw-qemu"), "{err}");
    assert!(!output.exists());
}

/// `--on qemu:cortex-m0plus` runs the thumbv6m firmware on mps2-an385 and
/// `--on qemu:cortex-m7` the thumbv7em one on mps2-an500: same bytes as the host,
/// the core named in the report; an unknown core is a one-line error.
#[test]
fn infer_on_each_qemu_core_writes_the_same_bytes() {
    use microcnn_tools::deploy::qemu::{build_firmware, Cpu};
    let dir = tempfile::tempdir().unwrap();
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vectors/small_cnn_28x28");
    let blob = dir.path().join("cnn.mcnn");
    assert!(microcnn(&["import", &s(&case.join("model.tflite")), "-o", &s(&blob)]).status.success());
    let input = s(&case.join("input.npy"));
    let host = dir.path().join("host.npy");
    assert!(microcnn(&["infer", &s(&blob), "--input", &input, "--output", &s(&host)]).status.success());
    for cpu in [Cpu::CortexM0Plus, Cpu::CortexM7] {
        build_firmware(cpu).unwrap();
        let device = dir.path().join(format!("{cpu}.npy"));
        let on = format!("qemu:{cpu}");
        let out = microcnn(&["infer", &s(&blob), "--input", &input, "--output", &s(&device), "--on", &on, "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(std::fs::read(&device).unwrap(), std::fs::read(&host).unwrap(), "{cpu}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
        assert_eq!(report["cpu"], cpu.name());
        assert!(report["target"].as_str().unwrap().contains(cpu.machine()), "{report}");
    }
    let out = microcnn(&["infer", &s(&blob), "--input", &input, "--output", &s(&host), "--on", "qemu:cortex-a53"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cortex-a53") && err.contains("cortex-m0plus"), "{err}");
}

/// `microcnn diff` on QEMU: every layer of every sample identical, exit 0; a sample
/// index past the end, or `--on host`, is a one-line error.
#[test]
fn diff_reports_every_layer_identical_on_qemu() {
    microcnn_tools::deploy::qemu::build_firmware(microcnn_tools::deploy::qemu::Cpu::CortexM4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/vectors/small_cnn_28x28");
    let blob = dir.path().join("cnn.mcnn");
    assert!(microcnn(&["import", &s(&case.join("model.tflite")), "-o", &s(&blob)]).status.success());
    let input = s(&case.join("input.npy"));
    let out = microcnn(&["diff", &s(&blob), "--input", &input, "--on", "qemu"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 8, "{text}");
    assert!(text.lines().all(|l| l.ends_with("all 7 layers identical (host, cortex-m4)")), "{text}");
    for bad in [vec!["--sample", "8"], vec!["--on", "host"]] {
        let mut args = vec!["diff", &blob.to_str().unwrap(), "--input", &input];
        args.extend(bad.iter().copied());
        let out = microcnn(&args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}
