//! The firmware under QEMU computes exactly what the host computes: on Cortex-M4
//! (`mps2-an386`, the DSP kernels), Cortex-M7 (`mps2-an500`, the same image) and
//! Cortex-M0+ code (`mps2-an385`, the thumbv6m build with the portable kernels).
//!
//! - every vector model in `tests/data/vectors*`: the firmware's outputs for the
//!   recorded samples and for seeded random samples equal the host engine's, byte for
//!   byte;
//! - RGB565 camera frames preprocessed on the device (crop, resize, quantize) give the
//!   same outputs as the same preprocessing on the host;
//! - a model region with a corrupted or missing blob: the firmware logs the error,
//!   classifies nothing and exits non-zero.
//!
//! Needs `qemu-system-arm` and the `thumbv7em-none-eabihf` and `thumbv6m-none-eabi`
//! targets; builds the firmware first (`scripts/check.sh` installs them).

use microcnn_core::preprocess::{self, Crop, Image, InputQuantization};
use microcnn_core::Model;
use microcnn_layout::frames::{Header, PixelFormat};
use microcnn_tests::{random_bytes, random_i8, vector_cases};
use microcnn_tools::deploy::qemu::{self, Cpu, Firmware};
use microcnn_tools::inspect::run;
use microcnn_tools::io::npy;
use microcnn_tools::tflite;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// The Cortex-M4 firmware (most tests).
fn firmware() -> &'static Firmware {
    firmware_for(Cpu::CortexM4)
}

fn firmware_for(cpu: Cpu) -> &'static Firmware {
    static FIRMWARE: [OnceLock<Firmware>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = Cpu::ALL.iter().position(|&c| c == cpu).expect("a listed core");
    FIRMWARE[slot].get_or_init(|| {
        let path = qemu::build_firmware(cpu).unwrap_or_else(|e| panic!("{e:#}"));
        Firmware::load(&path, cpu).unwrap_or_else(|e| panic!("{e:#}"))
    })
}

#[test]
fn every_vector_model_is_bit_exact_on_qemu_cortex_m4() {
    vectors_bit_exact_on(Cpu::CortexM4);
}

#[test]
fn every_vector_model_is_bit_exact_on_qemu_cortex_m7() {
    vectors_bit_exact_on(Cpu::CortexM7);
}

#[test]
fn every_vector_model_is_bit_exact_on_qemu_cortex_m0plus() {
    vectors_bit_exact_on(Cpu::CortexM0Plus);
}

fn vectors_bit_exact_on(cpu: Cpu) {
    let firmware = firmware_for(cpu);
    let mut checked = 0;
    for (n, case) in vector_cases().into_iter().enumerate() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let blob = tflite::to_blob(&case.join("model.tflite")).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let model = Model::from_bytes(&blob).unwrap();
        let recorded = npy::read_i8(&case.join("input.npy")).expect("input.npy");
        let mut samples = recorded.data.clone();
        samples.extend(random_i8(n as u64 + 1, 8 * model.input().bytes()));
        let host = run::run_samples(&model, &samples).unwrap();
        let device = qemu::infer(firmware, &blob, &samples).unwrap_or_else(|e| panic!("{name} on {cpu}: {e:#}"));
        let device_bytes: Vec<i8> = device.iter().flat_map(|r| r.output.iter().copied()).collect();
        assert_eq!(device_bytes, host, "{name}: QEMU {cpu} outputs differ from the host's");
        assert!(device.iter().all(|r| r.instructions > 0 && r.layers.len() == model.op_count()), "{name}: costs");
        checked += 1;
    }
    assert_eq!(checked, 35, "every vector case ran on {cpu}");
}

/// A frames image of RGB565 (big-endian) frames.
fn rgb565_frames(width: u16, height: u16, frames: &[Vec<u8>]) -> Vec<u8> {
    let header = Header { format: PixelFormat::Rgb565Be, width, height, channels: 3, count: frames.len() as u16 };
    let mut image = header.to_bytes().to_vec();
    for f in frames {
        image.extend(f);
    }
    image
}

#[test]
fn camera_frames_are_preprocessed_on_the_device_as_on_the_host() {
    // A gray 28×28 model and an RGB 3-channel model, fed 2 random 40×30 RGB565 frames.
    for name in ["vectors/small_cnn_28x28", "vectors_extra/mobilenet_like"] {
        let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(name);
        let blob = tflite::to_blob(&case.join("model.tflite")).unwrap();
        let model = Model::from_bytes(&blob).unwrap();
        let (width, height) = (40u16, 30u16);
        let frames: Vec<Vec<u8>> =
            (0..2).map(|i| random_bytes(100 + i, usize::from(width) * usize::from(height) * 2)).collect();
        let quant = InputQuantization::from_model(&model);
        let mut host_inputs = Vec::new();
        for f in &frames {
            let image = Image::new(f, width.into(), height.into(), preprocess::PixelFormat::Rgb565Be).unwrap();
            let mut input = vec![0i8; quant.input_bytes()];
            preprocess::preprocess(&image, Crop::centered(&image, quant.width, quant.height), &quant, &mut input)
                .unwrap();
            host_inputs.extend(input);
        }
        let host = run::run_samples(&model, &host_inputs).unwrap();
        let result = firmware().run(&blob, &rgb565_frames(width, height, &frames), Duration::from_secs(60)).unwrap();
        assert_eq!(result.status, 0, "{name}: {:?}", result.lines);
        let device: Vec<i8> = result
            .lines
            .iter()
            .filter_map(|l| l.message.strip_prefix("output ").and_then(|r| r.split_once(": ")))
            .flat_map(|(_, list)| {
                list.trim_matches(|c| c == '[' || c == ']').split(", ").map(|v| v.parse::<u8>().unwrap() as i8)
            })
            .collect();
        assert_eq!(device, host, "{name}: device preprocessing differs from the host's");
        assert_eq!(result.classifications().count(), 2);
    }
}

fn small_cnn_blob() -> Vec<u8> {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/vectors/small_cnn_28x28");
    tflite::to_blob(&case.join("model.tflite")).unwrap()
}

fn small_cnn_frames(blob: &[u8]) -> Vec<u8> {
    let model = Model::from_bytes(blob).unwrap();
    qemu::frames_image(&model, &random_i8(7, 2 * model.input().bytes())).unwrap()
}

#[test]
fn corrupted_model_region_is_refused_without_classifying() {
    let blob = small_cnn_blob();
    let frames = small_cnn_frames(&blob);
    // One flipped weight byte: the CRC catches it.
    let mut corrupted = blob.clone();
    let last = corrupted.len() - 1;
    corrupted[last] ^= 0x40;
    let run = firmware().run(&corrupted, &frames, Duration::from_secs(60)).unwrap();
    assert_eq!(run.status, 2, "{:?}", run.lines);
    let errors: Vec<_> = run.errors().map(|l| l.message.clone()).collect();
    assert!(errors.iter().any(|m| m.starts_with("model region: ChecksumMismatch")), "{errors:?}");
    assert_eq!(run.classifications().count(), 0, "no frame may be classified with a bad model");
    assert!(!run.lines.iter().any(|l| l.message.starts_with("output ")));

    // An erased region (all 0xFF) and a blob of a future format version.
    let mut future = blob.clone();
    future[4] = 0x7f; // header version field
    for (what, region) in [("erased", vec![0xFF; 4096]), ("future version", future)] {
        let run = firmware().run(&region, &frames, Duration::from_secs(60)).unwrap();
        assert_eq!(run.status, 2, "{what}: {:?}", run.lines);
        assert!(run.errors().any(|l| l.message.starts_with("model region: ")), "{what}: {:?}", run.lines);
        assert_eq!(run.classifications().count(), 0, "{what}");
    }

    // The intact blob classifies both frames.
    let run = firmware().run(&blob, &frames, Duration::from_secs(60)).unwrap();
    assert_eq!(run.status, 0, "{:?}", run.lines);
    assert_eq!(run.classifications().count(), 2);
}

#[test]
fn missing_frames_header_is_an_error() {
    let blob = small_cnn_blob();
    let run = firmware().run(&blob, &[0xFF; 64], Duration::from_secs(60)).unwrap();
    assert_eq!(run.status, 3, "{:?}", run.lines);
    assert!(run.errors().any(|l| l.message.contains("frames region")));
}

#[test]
fn instruction_counts_are_deterministic() {
    let blob = small_cnn_blob();
    let model = Model::from_bytes(&blob).unwrap();
    let samples = random_i8(3, model.input().bytes());
    let first = qemu::infer(firmware(), &blob, &samples).unwrap();
    let second = qemu::infer(firmware(), &blob, &samples).unwrap();
    assert_eq!(first, second);
}

#[test]
fn samples_beyond_one_frames_region_are_split_over_runs() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/vectors/avgpool2x2_valid");
    let blob = tflite::to_blob(&case.join("model.tflite")).unwrap();
    let model = Model::from_bytes(&blob).unwrap();
    let per_sample = model.input().bytes();
    let per_run = (microcnn_layout::QEMU_MPS2_AN386.frames.length as usize - 16) / per_sample;
    let samples = random_i8(11, (per_run + 3) * per_sample);
    let device = qemu::infer(firmware(), &blob, &samples).unwrap();
    assert_eq!(device.len(), per_run + 3);
    let device_bytes: Vec<i8> = device.into_iter().flat_map(|r| r.output).collect();
    assert_eq!(device_bytes, run::run_samples(&model, &samples).unwrap());
}

/// The device half of `microcnn diff`: every operator's output, dumped by the firmware
/// operator by operator, equals the host's, on every vector model (M4 and M0+).
#[test]
fn every_layer_output_on_qemu_equals_the_hosts() {
    for cpu in [Cpu::CortexM4, Cpu::CortexM0Plus] {
        let mut layers = 0;
        for case in vector_cases() {
            let name = case.file_name().unwrap().to_string_lossy().into_owned();
            let blob = tflite::to_blob(&case.join("model.tflite")).unwrap();
            let model = Model::from_bytes(&blob).unwrap();
            let sample = random_i8(99, model.input().bytes());
            let host = microcnn_tools::inspect::layer_diff::host_layer_outputs(&model, &sample).unwrap();
            let device = qemu::layer_outputs(firmware_for(cpu), &blob, &sample)
                .unwrap_or_else(|e| panic!("{name} on {cpu}: {e:#}"));
            assert_eq!(device, host, "{name}: layer outputs on {cpu}");
            layers += host.len();
        }
        assert!(layers > 35, "{layers}");
    }
}
