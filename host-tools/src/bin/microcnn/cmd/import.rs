//! `microcnn import MODEL.tflite -o MODEL.mcnn`

use anyhow::Result;
use clap::Args;
use microcnn_tools::inspect::summary;
use microcnn_tools::io::fs;
use microcnn_tools::tflite;
use std::path::PathBuf;

/// Convert an int8 TFLite model into a `.mcnn` blob.
#[derive(Args, Debug)]
pub struct Cmd {
    /// The int8 `.tflite` model.
    pub model: PathBuf,
    /// Where to write the `.mcnn` blob (`-`: standard output).
    #[arg(short, long, visible_alias = "out")]
    pub output: PathBuf,
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    let blob = tflite::to_blob(&cmd.model)?;
    fs::write_atomic(&cmd.output, &blob)?;
    let model = microcnn_core::Model::from_bytes(&blob).map_err(|e| anyhow::anyhow!("{e}"))?;
    let s = summary::summarize(&model);
    status_for!(
        cmd.output,
        "{}: {} operators, {} params, arena {} bytes, blob {} bytes",
        cmd.output.display(),
        s.layers.len(),
        s.params,
        s.arena_bytes,
        s.flash_bytes
    );
    Ok(())
}
