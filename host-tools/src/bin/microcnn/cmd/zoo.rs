//! `microcnn zoo [--json]`: the pretrained bases shipped with the tool.

use anyhow::Result;
use clap::Args;
use microcnn_tools::train::zoo;

/// List the pretrained bases.
#[derive(Args, Debug)]
pub struct Cmd {
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    let bases = zoo::bases();
    if cmd.json {
        outln!("{}", serde_json::to_string(&bases)?);
        return Ok(());
    }
    // Columns as wide as their longest entry.
    let name = bases.iter().map(|b| b.name.chars().count()).max().unwrap_or(0).max(4);
    let arch = bases.iter().map(|b| b.arch.chars().count()).max().unwrap_or(0).max(4);
    let data = bases.iter().map(|b| b.trained_on.chars().count()).max().unwrap_or(0).max(10);
    outln!("{:<name$} {:<arch$} {:<12} {:<data$} {:>9}", "name", "arch", "input", "trained on", "test acc.");
    for b in &bases {
        outln!(
            "{:<name$} {:<arch$} {:<12} {:<data$} {:>9.4}",
            b.name,
            b.arch,
            format!("{}×{}×{}", b.input[0], b.input[1], b.input[2]),
            b.trained_on,
            b.test_accuracy
        );
    }
    Ok(())
}
