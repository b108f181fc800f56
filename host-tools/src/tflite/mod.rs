//! The TFLite front end: [`reader`] parses the FlatBuffer (an untrusted file, read
//! with bounds checks everywhere), [`import`] maps its operators onto the int8 graph.

pub mod import;
pub mod reader;

use crate::compile::{blob, plan};
use anyhow::{Context, Result};
use std::path::Path;

/// Reads a `.tflite` file and converts it into a validated `.mcnn` blob.
pub fn to_blob(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let model = reader::parse(&bytes).with_context(|| format!("{}: not a valid TFLite file", path.display()))?;
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let graph = import::import(&model, &name).with_context(|| format!("{}: cannot import", path.display()))?;
    let plan = plan::plan(&graph);
    blob::write(&graph, &plan)
}
