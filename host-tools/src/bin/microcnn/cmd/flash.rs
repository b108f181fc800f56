//! `microcnn flash MODEL.mcnn --chip CHIP [--probe SERIAL]` and
//! `microcnn flash MODEL.mcnn --image OUT.bin`: see [`microcnn_tools::deploy::flash`].

use anyhow::{anyhow, bail, Result};
use clap::Args;
use microcnn_tools::deploy::flash::{flash, memory_map, region_image};
use microcnn_tools::io::fs;
use std::path::PathBuf;

/// Write a model into a board's model region (through a debug probe), or into a region image file.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("destination").required(true).args(["chip", "image"])))]
#[command(group(clap::ArgGroup::new("what").required(true).args(["model", "head"])))]
pub struct Cmd {
    /// The `.mcnn` model.
    pub model: Option<PathBuf>,
    /// Write this learned head (`microcnn learn`) into the learned region instead: both
    /// slots are rewritten, the head current in the first (with `--image`, the first
    /// slot's image is written).
    #[arg(long)]
    pub head: Option<PathBuf>,
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
    let Some(model_path) = &cmd.model else { return run_head(cmd) };
    let blob = fs::read(model_path)?;
    let model = microcnn_tools::io::fs::model_from_bytes(model_path, &blob)?;
    let map = memory_map(cmd.board.as_deref(), cmd.chip.as_deref())?;
    let image = region_image(&map, &model).map_err(|e| anyhow!("{}: {e:#}", model_path.display()))?;
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

/// `--head`: the learned region's two slots with the head committed in the first.
fn run_head(cmd: &Cmd) -> Result<()> {
    use microcnn_tools::deploy::head::{learned_region, region_images};
    let Some(head_path) = &cmd.head else { bail!("give a MODEL or --head HEAD") };
    let head = fs::read(head_path)?;
    let map = memory_map(cmd.board.as_deref(), cmd.chip.as_deref())?;
    let region = learned_region(&map)?;
    // The head's own checks (magic, version, CRC); its base model is the chip's business.
    let crc = head.get(12..16).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    microcnn_core::learn::Head::from_bytes(&head, crc).map_err(|e| anyhow!("{}: {e}", head_path.display()))?;
    let images = region_images(&region, &head).map_err(|e| anyhow!("{}: {e:#}", head_path.display()))?;
    if let Some(path) = &cmd.image {
        let (origin, bytes) = &images.slots[0];
        fs::write_atomic(path, bytes)?;
        outln!(
            "{}: learned slot of {} ({} bytes at {origin:#010x}; head {} bytes)",
            path.display(),
            map.name,
            bytes.len(),
            head.len()
        );
        return Ok(());
    }
    let Some(chip) = &cmd.chip else { bail!("give --chip CHIP or --image OUT.bin") };
    if map.chip.is_empty() {
        bail!("{} is not flashed through a probe; use --image", map.name);
    }
    for (origin, bytes) in &images.slots {
        flash(chip, cmd.probe.as_deref(), *origin, bytes)?;
    }
    outln!("flashed the learned head ({} bytes) into both slots on {chip} and verified ({})", head.len(), map.name);
    Ok(())
}
