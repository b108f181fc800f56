//! # microcnn-tools
//!
//! The host side of microcnn: read TFLite models ([`tflite`]), map them onto the
//! core's operators ([`import`]), plan the activation arena ([`plan`]), write the
//! `.mcnn` blob ([`blob`]), run it on the very integer engine the chip runs
//! ([`run`]), and report on it ([`summary`]). The `microcnn` binary wraps these in
//! subcommands (`src/cmd/`).

pub mod arch;
pub mod augment;
pub mod blob;
pub mod checkpoint;
pub mod dataset;
pub mod eval;
pub mod export;
pub mod finetune;
pub mod fsutil;
pub mod graph;
pub mod import;
pub mod layer_diff;
pub mod lower;
pub mod nn;
pub mod npy;
pub mod plan;
pub mod presets;
pub mod qat;
pub mod qemu;
pub mod quantize;
pub mod report;
pub mod run;
pub mod summary;
pub mod tflite;
pub mod train;
pub mod zoo;

use anyhow::{Context, Result};
use std::path::Path;

/// Reads a `.tflite` file and converts it into a validated `.mcnn` blob.
pub fn tflite_to_blob(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let model = tflite::parse(&bytes).with_context(|| format!("{}: not a valid TFLite file", path.display()))?;
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let graph = import::import(&model, &name).with_context(|| format!("{}: cannot import", path.display()))?;
    let plan = plan::plan(&graph);
    blob::write(&graph, &plan)
}
