//! `microcnn pull --chip CHIP -o HEAD [--probe SERIAL]`: reads the learned head back
//! from a board's learned region through a debug probe (see
//! [`microcnn_tools::deploy::head`]).

use anyhow::{anyhow, Result};
use clap::Args;
use microcnn_tools::deploy::flash::memory_map;
use microcnn_tools::deploy::head::{head_from_images, learned_region, read_from_chip};
use microcnn_tools::io::fs;
use std::path::PathBuf;

/// Read the head a board learned out of its learned region.
#[derive(Args, Debug)]
pub struct Cmd {
    /// The chip, as probe-rs names it (e.g. STM32F411RETx).
    #[arg(long)]
    pub chip: String,
    /// The probe's serial number, when several are attached.
    #[arg(long)]
    pub probe: Option<String>,
    /// Where to write the head.
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// The firmware target whose memory map to use (default: the board with the chip).
    #[arg(long)]
    pub board: Option<String>,
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    let map = memory_map(cmd.board.as_deref(), Some(&cmd.chip))?;
    let region = learned_region(&map)?;
    let images = read_from_chip(&cmd.chip, cmd.probe.as_deref(), &region)?;
    let head = head_from_images(images).map_err(|e| anyhow!("{}: learned region: {e}", cmd.chip))?;
    fs::write_atomic(&cmd.out, &head)?;
    outln!("{}: {} bytes of learned head from {} ({})", cmd.out.display(), head.len(), cmd.chip, map.name);
    Ok(())
}
