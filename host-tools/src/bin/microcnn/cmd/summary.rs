//! `microcnn summary MODEL.mcnn|MODEL.tflite|ARCH.toml|DIR [--json]`

use anyhow::{Context, Result};
use clap::Args;
use microcnn_tools::inspect::summary;
use microcnn_tools::io::fs;
use microcnn_tools::tflite;
use microcnn_tools::train::nn::Network;
use microcnn_tools::train::{presets, zoo};
use std::path::PathBuf;

/// Print a Keras-like table of a model: layers, shapes, parameters, MACs, arena and flash.
#[derive(Args, Debug)]
pub struct Cmd {
    /// A `.mcnn` blob, a `.tflite` model (imported in memory), an architecture file
    /// (`.toml`), a preset name (vgg, resnet, xception, inception, mobilenet,
    /// inception-resnet), a zoo base's name
    /// (`microcnn zoo` lists them) or a checkpoint directory.
    pub model: PathBuf,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    let spec = cmd.model.to_string_lossy();
    let net = if cmd.model.is_dir() || zoo::bases().iter().any(|b| b.name == spec) {
        Some(zoo::load(&spec)?.0)
    } else if cmd.model.extension().is_some_and(|e| e == "toml")
        || presets::preset(&cmd.model.to_string_lossy()).is_some()
    {
        let (arch, _) = presets::resolve(&cmd.model.to_string_lossy())?;
        Some(Network::new(&arch, 0).with_context(|| format!("{}", cmd.model.display()))?)
    } else {
        None
    };
    if let Some(net) = net {
        let s = summary::summarize_arch(&net).with_context(|| format!("{}", cmd.model.display()))?;
        if cmd.json {
            outln!("{}", serde_json::to_string(&s)?);
        } else {
            out!("{}", summary::render_arch(&s));
        }
        return Ok(());
    }
    let bytes = if cmd.model.extension().is_some_and(|e| e == "tflite") {
        tflite::to_blob(&cmd.model)?
    } else {
        fs::read(&cmd.model)?
    };
    let model = microcnn_tools::io::fs::model_from_bytes(&cmd.model, &bytes)?;
    let s = summary::summarize(&model);
    if cmd.json {
        outln!("{}", serde_json::to_string(&s)?);
    } else {
        out!("{}", summary::render(&s));
    }
    Ok(())
}
