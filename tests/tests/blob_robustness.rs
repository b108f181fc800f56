//! A valid blob cut at every length and with every byte flipped never panics: the
//! loader returns an error (or, for a flip it cannot see, a model that still runs).

use microcnn_core::{Error, Interpreter, Model};
use microcnn_tools::tflite;
use std::path::Path;

fn blob(case: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/vectors").join(case).join("model.tflite");
    tflite::to_blob(&path).expect("import")
}

fn exercise(bytes: &[u8]) -> Result<(), Error> {
    let model = Model::from_bytes(bytes)?;
    let mut arena = vec![0_u8; model.arena_size()];
    let mut net = Interpreter::new(&model, &mut arena)?;
    net.input_mut().fill(7);
    net.invoke()?;
    let _ = net.top_k::<3>();
    Ok(())
}

/// Rewrites the CRC so that a corruption reaches the structural checks.
fn fix_crc(bytes: &mut [u8]) {
    if bytes.len() >= 64 {
        let crc = microcnn_core::crc::crc32(&bytes[16..]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    }
}

#[test]
fn every_truncation_is_an_error() {
    for case in ["small_cnn_28x28", "residual_add"] {
        let full = blob(case);
        exercise(&full).expect("the intact blob runs");
        for len in 0..full.len() {
            assert!(Model::from_bytes(&full[..len]).is_err(), "{case}: cut at {len} loaded");
        }
    }
}

#[test]
fn every_byte_flip_is_caught_or_harmless() {
    for case in ["small_cnn_28x28", "residual_add", "global_avgpool"] {
        let full = blob(case);
        for i in 0..full.len() {
            let mut bad = full.clone();
            bad[i] ^= 0xff;
            // The CRC catches every single-byte change outside the CRC field itself.
            if !(12..16).contains(&i) {
                assert!(Model::from_bytes(&bad).is_err(), "{case}: flip at {i} loaded without a checksum error");
            }
            // With the CRC rewritten, the structural checks must hold on their own.
            fix_crc(&mut bad);
            let _ = exercise(&bad);
        }
    }
}

#[test]
fn structural_corruptions_give_typed_errors() {
    let full = blob("small_cnn_28x28");
    let mut bad = full.clone();
    bad[0] = b'X';
    assert_eq!(Model::from_bytes(&bad).unwrap_err(), Error::BadMagic);
    let mut bad = full.clone();
    bad[4] = 99;
    fix_crc(&mut bad);
    assert!(matches!(Model::from_bytes(&bad), Err(Error::UnsupportedVersion { found: 99, .. })));
    let mut bad = full.clone();
    bad[20] ^= 1;
    assert!(matches!(Model::from_bytes(&bad), Err(Error::ChecksumMismatch { .. })));
    // An arena smaller than the plan: every tensor must lie inside it.
    let mut bad = full.clone();
    bad[16..20].copy_from_slice(&16_u32.to_le_bytes());
    fix_crc(&mut bad);
    assert!(matches!(Model::from_bytes(&bad), Err(Error::BadTensor { .. })));
    // Move the pooling output onto the convolution output it reads: the plan check fails.
    let model = Model::from_bytes(&full).expect("valid");
    let tensors_offset = u32::from_le_bytes(full[28..32].try_into().unwrap()) as usize;
    let conv_out = model.operator(0).expect("op").output;
    let pool_out = model.operator(1).expect("op").output as usize;
    let mut bad = full.clone();
    let conv_offset = model.tensor(conv_out).expect("tensor").arena_offset as u32;
    let at = tensors_offset + pool_out * microcnn_core::format::TENSOR_RECORD_LEN;
    bad[at..at + 4].copy_from_slice(&conv_offset.to_le_bytes());
    fix_crc(&mut bad);
    assert!(matches!(Model::from_bytes(&bad), Err(Error::ArenaOverlap { .. })), "{:?}", Model::from_bytes(&bad));
}

/// The weight layout tag of each operator and the size of the dense weights are
/// checked: a dense layer tagged row-major, a convolution tagged blocked, dense weights
/// running past the constant section.
#[test]
fn weight_layouts_are_validated() {
    use microcnn_core::error::OpError;
    use microcnn_core::format::{op, weight_layout, OpKind, OP_RECORD_LEN};
    let full = blob("small_cnn_28x28");
    let model = Model::from_bytes(&full).expect("valid");
    let u32_at = |at: usize| u32::from_le_bytes(full[at..at + 4].try_into().unwrap()) as usize;
    let record = |k: usize| u32_at(32) + k * OP_RECORD_LEN;
    let dense = (0..model.op_count()).find(|&k| model.operator(k).unwrap().kind == OpKind::FullyConnected).unwrap();
    assert_eq!(full[record(dense) + op::WEIGHT_LAYOUT], weight_layout::DENSE_BLOCKED);
    assert_eq!(full[record(0) + op::WEIGHT_LAYOUT], weight_layout::ROW_MAJOR);
    let corrupt = |at: usize, bytes: &[u8]| {
        let mut bad = full.clone();
        bad[at..at + bytes.len()].copy_from_slice(bytes);
        fix_crc(&mut bad);
        Model::from_bytes(&bad).unwrap_err()
    };
    let e = corrupt(record(dense) + op::WEIGHT_LAYOUT, &[weight_layout::ROW_MAJOR]);
    assert_eq!(e, Error::BadOperator { op: dense as u16, reason: OpError::WeightLayout(0) });
    assert!(e.to_string().contains("weight layout 0"), "{e}");
    let e = corrupt(record(0) + op::WEIGHT_LAYOUT, &[weight_layout::DENSE_BLOCKED]);
    assert_eq!(e, Error::BadOperator { op: 0, reason: OpError::WeightLayout(1) });
    assert_eq!(
        corrupt(record(dense) + op::WEIGHT_LAYOUT, &[7]),
        Error::BadOperator { op: dense as u16, reason: OpError::WeightLayout(7) }
    );
    // Dense weights whose last 4 bytes lie past the constant section.
    let room = u32_at(40) - (784 * 10 - 4);
    let e = corrupt(record(dense) + op::WEIGHTS, &(room as u32).to_le_bytes());
    assert_eq!(e, Error::BadOperator { op: dense as u16, reason: OpError::ConstantOutOfBounds });
}

/// A Softmax's exp table must hold exactly the exps its parameters give, and lie inside
/// the constant section.
#[test]
fn softmax_exp_table_is_validated() {
    use microcnn_core::error::OpError;
    use microcnn_core::format::{op, OpKind, OP_RECORD_LEN, SOFTMAX_TABLE_LEN};
    let full = blob("small_cnn_28x28");
    let model = Model::from_bytes(&full).expect("valid");
    let u32_at = |at: usize| u32::from_le_bytes(full[at..at + 4].try_into().unwrap()) as usize;
    let softmax = (0..model.op_count()).find(|&k| model.operator(k).unwrap().kind == OpKind::Softmax).unwrap();
    let record = u32_at(32) + softmax * OP_RECORD_LEN;
    let table = u32_at(36) + u32_at(record + op::EXP_TABLE);
    let corrupt = |at: usize, bytes: &[u8]| {
        let mut bad = full.clone();
        bad[at..at + bytes.len()].copy_from_slice(bytes);
        fix_crc(&mut bad);
        Model::from_bytes(&bad).err()
    };
    // Entry 0 is exp(0) = 1.0 in Q0.31 (i32::MAX); entry 5 is some smaller exp.
    assert_eq!(i32::from_le_bytes(full[table..table + 4].try_into().unwrap()), i32::MAX);
    let entry5 = i32::from_le_bytes(full[table + 20..table + 24].try_into().unwrap());
    assert!(entry5 > 0 && entry5 < i32::MAX);
    let reason = |r: Option<Error>| match r {
        Some(Error::BadOperator { op, reason }) if usize::from(op) == softmax => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(reason(corrupt(table + 20, &(entry5 + 1).to_le_bytes())), OpError::Parameter);
    let past = (u32_at(40) - 4 * SOFTMAX_TABLE_LEN + 4) as u32;
    assert_eq!(reason(corrupt(record + op::EXP_TABLE, &past.to_le_bytes())), OpError::ConstantOutOfBounds);
    // Without a table the kernel computes the exps: the blob loads and runs.
    let bytes = {
        let mut b = full.clone();
        b[record + op::EXP_TABLE..record + op::EXP_TABLE + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        fix_crc(&mut b);
        b
    };
    exercise(&bytes).expect("a softmax without a table runs");
}

#[test]
fn interpreter_refuses_a_small_arena() {
    let full = blob("small_cnn_28x28");
    let model = Model::from_bytes(&full).expect("valid");
    let mut arena = vec![0_u8; model.arena_size() - 1];
    assert_eq!(
        Interpreter::new(&model, &mut arena).err(),
        Some(Error::ArenaTooSmall { needed: model.arena_size(), available: model.arena_size() - 1 })
    );
}

/// Labels must name the output channels one to one: the writer refuses a label with a
/// line break, an empty one or a wrong count, and the loader refuses a blob whose
/// labels became one more (a line break patched into a label).
#[test]
fn labels_must_match_the_output_channels() {
    use microcnn_tools::compile::{blob, plan};
    use microcnn_tools::tflite::{import, reader};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/vectors/small_cnn_28x28/model.tflite");
    let model = reader::parse(&std::fs::read(&path).unwrap()).unwrap();
    let mut graph = import::import(&model, "small").unwrap();
    let plan = plan::plan(&graph);
    let channels = graph.tensors[graph.output].shape.channels;
    assert_eq!(channels, 10);
    for (labels, expected) in [
        ((0..9).map(|c| format!("class{c}")).collect::<Vec<_>>(), "9 class labels for 10 output channels"),
        ((0..10).map(|c| if c == 4 { "four\nfive".into() } else { format!("class{c}") }).collect(), "line break"),
        ((0..10).map(|c| if c == 4 { " ".into() } else { format!("class{c}") }).collect(), "empty"),
    ] {
        graph.labels = labels;
        let err = blob::write(&graph, &plan).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
    graph.labels = (0..10).map(|c| format!("class{c}")).collect();
    let mut bytes = blob::write(&graph, &plan).unwrap();
    assert_eq!(Model::from_bytes(&bytes).unwrap().labels().count(), 10);
    let at = bytes.windows(6).position(|w| w == b"class4").unwrap();
    bytes[at + 2] = b'\n'; // "cl" and "ss4": eleven labels
    fix_crc(&mut bytes);
    assert_eq!(Model::from_bytes(&bytes).unwrap_err(), Error::LabelCount { labels: 11, outputs: 10 });
}
