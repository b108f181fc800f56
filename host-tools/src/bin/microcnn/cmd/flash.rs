//! `microcnn flash MODEL.mcnn --chip CHIP [--probe SERIAL]` and
//! `microcnn flash MODEL.mcnn --image OUT.bin`: see [`microcnn_tools::deploy::flash`].

use anyhow::{anyhow, bail, Result};
use clap::Args;
use microcnn_core::Model;
use microcnn_tools::deploy::flash::{flash, memory_map, region_image};
use microcnn_tools::io::fs;
use std::path::PathBuf;

/// Write a model into a board's model region (through a debug probe), or into a region image file.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("destination").required(true).args(["chip", "image"])))]
pub struct Cmd {
    /// The `.mcnn` model.
    pub model: PathBuf,
    /// The chip, as probe-rs names it (e.g. STM32F411RETx); flashes through a probe.
    #[arg(long)]
    pub chip: Option<String>,
    /// The probe's serial number, when several are attached.
    #[arg(long, requires = "chip")]
    pub probe: Option<String>,
    /// Write the model region's image to this file instead (no hardware needed).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// The firmware target whose memory map to use: nucleo-f411re or
    /// qemu-mps2-an386 (default: the board with `--chip`'s chip, else nucleo-f411re).
    #[arg(long)]
    pub board: Option<String>,
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    let blob = fs::read(&cmd.model)?;
    let model = Model::from_bytes(&blob).map_err(|e| anyhow!("{}: invalid model: {e}", cmd.model.display()))?;
    let map = memory_map(cmd.board.as_deref(), cmd.chip.as_deref())?;
    let image = region_image(&map, &model).map_err(|e| anyhow!("{}: {e:#}", cmd.model.display()))?;
    if let Some(path) = &cmd.image {
        fs::write_atomic(path, &image)?;
        outln!(
            "{}: model region of {} ({} bytes at {:#010x}; model {} bytes)",
            path.display(),
            map.name,
            image.len(),
            map.model.origin,
            blob.len()
        );
        return Ok(());
    }
    let Some(chip) = &cmd.chip else { bail!("give --chip CHIP or --image OUT.bin") };
    if map.chip.is_empty() {
        bail!("{} is not flashed through a probe; use --image", map.name);
    }
    flash(chip, cmd.probe.as_deref(), map.model.origin, &image)?;
    outln!("flashed {} bytes at {:#010x} on {chip} and verified ({})", image.len(), map.model.origin, map.name);
    Ok(())
}
