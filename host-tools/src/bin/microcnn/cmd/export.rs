//! `microcnn export MODEL.mcnn --format rust|c|bin -o FILE [--name NAME]`

use anyhow::Result;
use clap::Args;
use microcnn_tools::deploy::export::{self, Format};
use microcnn_tools::inspect::summary;
use microcnn_tools::io::fs;
use std::path::PathBuf;

/// Write a model for a firmware build: Rust source, a C header or the raw blob.
#[derive(Args, Debug)]
pub struct Cmd {
    /// The `.mcnn` blob.
    pub model: PathBuf,
    /// What to write.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Where to write it (`-`: standard output).
    #[arg(short, long, visible_alias = "out")]
    pub output: PathBuf,
    /// Prefix of the C symbols (`NAME_model`, `NAME_ARENA_BYTES`); the output file's
    /// name by default. Rust items are named by their module instead.
    #[arg(long)]
    pub name: Option<String>,
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    let bytes = fs::read(&cmd.model)?;
    let model = microcnn_tools::io::fs::model_from_bytes(&cmd.model, &bytes)?;
    let stem = cmd.output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = export::c_identifier(cmd.name.as_deref().unwrap_or(&stem));
    fs::write_atomic(&cmd.output, &export::render(&model, cmd.format, &prefix))?;
    status_for!(
        cmd.output,
        "{}: {}, {} bytes, arena {} bytes",
        cmd.output.display(),
        cmd.format.name(),
        model.as_bytes().len(),
        summary::summarize(&model).arena_bytes
    );
    Ok(())
}
