//! `microcnn summary MODEL.mcnn|MODEL.tflite [--json]`

use anyhow::{anyhow, Result};
use clap::Args;
use microcnn_tools::{fsutil, summary, tflite_to_blob};
use std::path::PathBuf;

/// Print a Keras-like table of a model: layers, shapes, parameters, MACs, arena and flash.
#[derive(Args, Debug)]
pub struct Cmd {
    /// A `.mcnn` blob (or a `.tflite` model, imported in memory).
    pub model: PathBuf,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    let bytes = if cmd.model.extension().is_some_and(|e| e == "tflite") {
        tflite_to_blob(&cmd.model)?
    } else {
        fsutil::read(&cmd.model)?
    };
    let model =
        microcnn_core::Model::from_bytes(&bytes).map_err(|e| anyhow!("{}: invalid model: {e}", cmd.model.display()))?;
    let s = summary::summarize(&model);
    if cmd.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        print!("{}", summary::render(&s));
    }
    Ok(())
}
