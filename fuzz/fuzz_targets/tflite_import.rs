//! Untrusted `.tflite` bytes (a downloaded model) through the whole import path of
//! `microcnn import`: the FlatBuffer reader, then, for a file that parses, the importer
//! onto the int8 graph, the arena planner and the blob writer. Any panic, overflow
//! (debug assertions are on), ASan report, timeout or OOM is a failure; errors are the
//! expected outcome for bad input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use microcnn_tools::compile::{blob, plan};
use microcnn_tools::tflite::{import, reader};

fuzz_target!(|data: &[u8]| {
    let Ok(model) = reader::parse(data) else { return };
    let Ok(graph) = import::import(&model, "fuzz") else { return };
    let plan = plan::plan(&graph);
    // The writer validates what it wrote with `Model::from_bytes`.
    let _ = blob::write(&graph, &plan);
});
