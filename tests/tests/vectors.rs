//! Every TFLite vector in `tests/data`: `import` then run reproduces TFLite Micro's
//! outputs exactly (all samples, every element), and the planned arena is no larger
//! than TFLM's.

use microcnn_core::Model;
use microcnn_tests::{data_dir, vector_cases};
use microcnn_tools::inspect::run;
use microcnn_tools::io::npy;
use microcnn_tools::tflite;
use std::path::Path;

/// Cases where TFLM has a known fault and LiteRT's reference kernels are the reference
/// we follow: TFLM's standalone RELU6 clamps without requantizing when the output's
/// scale or zero point differs from the input's; LiteRT requantizes, and so do we
/// (`core/src/ops/requantize.rs`). The case records both outputs.
const LITERT_REFERENCE: &[&str] = &["standalone_relu6"];

fn meta(case: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(case.join("meta.json")).expect("meta.json");
    serde_json::from_str(&text).expect("valid meta.json")
}

#[test]
fn every_vector_is_bit_exact() {
    let mut checked = 0;
    for case in vector_cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let blob = tflite::to_blob(&case.join("model.tflite")).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let model = Model::from_bytes(&blob).unwrap_or_else(|e| panic!("{name}: {e}"));
        let input = npy::read_i8(&case.join("input.npy")).expect("input.npy");
        let reference =
            if LITERT_REFERENCE.contains(&name.as_str()) { "expected_litert.npy" } else { "expected_tflm.npy" };
        let expected = npy::read_i8(&case.join(reference)).expect("expected outputs");
        let got = run::run_samples(&model, &input.data).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(input.shape[0], 8, "{name}: eight samples");
        let mut shape = vec![input.shape[0]];
        shape.extend(run::sample_output_shape(&model));
        assert_eq!(shape, expected.shape, "{name}: output shape");
        assert_eq!(got, expected.data, "{name}: outputs differ from {reference}");
        checked += 1;
    }
    assert_eq!(checked, 35);
}

#[test]
fn arena_is_no_larger_than_tflm() {
    for case in vector_cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let blob = tflite::to_blob(&case.join("model.tflite")).expect("import");
        let model = Model::from_bytes(&blob).expect("valid blob");
        let tflm = meta(&case)["tflm_arena_bytes_recorded"].as_u64().expect("tflm arena") as usize;
        assert!(model.arena_size() <= tflm, "{name}: arena {} bytes, TFLM {tflm}", model.arena_size());
        // The activations alone must fit: the input and output are live together.
        let floor = model.input().bytes().max(model.output().bytes());
        assert!(model.arena_size() >= floor, "{name}: arena smaller than one tensor");
    }
}

#[test]
fn in_place_and_aliasing_shrink_the_residual_block() {
    // residual_add: conv → (conv, conv) → add. Without in-place the add's output would
    // need its own 16×16×8 buffer next to both inputs.
    let blob = tflite::to_blob(&data_dir().join("vectors/residual_add/model.tflite")).expect("import");
    let model = Model::from_bytes(&blob).expect("valid");
    let tensor = 16 * 16 * 8;
    assert!(model.arena_size() <= 3 * tensor, "arena {}", model.arena_size());
}
