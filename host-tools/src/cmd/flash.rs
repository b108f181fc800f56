//! `microcnn flash MODEL.mcnn --chip CHIP [--probe SERIAL]` and
//! `microcnn flash MODEL.mcnn --image OUT.bin`.
//!
//! Writes a model into the firmware's **model region** without rebuilding the
//! firmware. The region's address and size come from `microcnn-layout`, the memory
//! map the firmware's linker script is generated from (`firmware/layout`). The region
//! image is the blob followed by erased bytes (`0xFF`) up to the region's size, so a
//! shorter model leaves nothing of an older one behind.
//!
//! With `--chip`, the image goes through a debug probe with the probe-rs library,
//! is verified by probe-rs after writing and read back once more; with `--image`, it
//! is written to a file (atomically) for another programmer or for QEMU's
//! `-device loader`.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use microcnn_core::Model;
use microcnn_layout::MemoryMap;
use microcnn_tools::fsutil;
use probe_rs::flashing::DownloadOptions;
use probe_rs::probe::list::Lister;
use probe_rs::{MemoryInterface, Permissions};
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

/// The image of `map`'s model region holding `blob`: the blob, then erased bytes.
pub fn region_image(map: &MemoryMap, blob: &[u8]) -> Result<Vec<u8>> {
    let length = map.model.length as usize;
    if blob.len() > length {
        bail!("the model has {} bytes; the {} model region holds {length}", blob.len(), map.name);
    }
    let mut image = blob.to_vec();
    image.resize(length, map.erased_byte);
    Ok(image)
}

fn memory_map(cmd: &Cmd) -> Result<MemoryMap> {
    let known = || microcnn_layout::ALL.iter().map(|m| m.name).collect::<Vec<_>>().join(", ");
    let name = match (&cmd.board, &cmd.chip) {
        (Some(board), _) => board.clone(),
        (None, Some(chip)) => chip.clone(),
        (None, None) => microcnn_layout::NUCLEO_F411RE.name.to_string(),
    };
    MemoryMap::find(&name).ok_or_else(|| {
        if cmd.board.is_some() {
            anyhow!("unknown board {name}; known: {}", known())
        } else {
            anyhow!("no firmware memory map for chip {name}; pass --board (known: {})", known())
        }
    })
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    let blob = fsutil::read(&cmd.model)?;
    let model = Model::from_bytes(&blob).map_err(|e| anyhow!("{}: invalid model: {e}", cmd.model.display()))?;
    let map = memory_map(cmd)?;
    if model.arena_size() > map.arena_bytes as usize {
        bail!(
            "{}: the model needs a {} byte arena; the {} firmware has {} bytes",
            cmd.model.display(),
            model.arena_size(),
            map.name,
            map.arena_bytes
        );
    }
    let image = region_image(&map, &blob)?;
    if let Some(path) = &cmd.image {
        fsutil::write_atomic(path, &image)?;
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

/// Writes `image` at `address` through a probe, verifies it and reads it back.
fn flash(chip: &str, serial: Option<&str>, address: u32, image: &[u8]) -> Result<()> {
    let lister = Lister::new();
    let probes = lister.list_all();
    let info = match serial {
        _ if probes.is_empty() => bail!("no debug probe found: connect the board (its ST-LINK) over USB"),
        Some(serial) => probes.iter().find(|p| p.serial_number.as_deref() == Some(serial)).ok_or_else(|| {
            let found: Vec<String> = probes.iter().map(|p| p.serial_number.clone().unwrap_or_default()).collect();
            anyhow!("no debug probe with serial {serial}; found: {}", found.join(", "))
        })?,
        None if probes.len() > 1 => {
            let found: Vec<String> = probes.iter().map(|p| p.serial_number.clone().unwrap_or_default()).collect();
            bail!("{} debug probes found; pick one with --probe SERIAL: {}", probes.len(), found.join(", "))
        }
        None => &probes[0],
    };
    let probe = info.open().with_context(|| format!("cannot open the debug probe {info}"))?;
    let mut session = probe.attach(chip, Permissions::default()).with_context(|| format!("cannot attach to {chip}"))?;
    let mut loader = session.target().flash_loader();
    loader.add_data(u64::from(address), image).context("the model region is not in the chip's flash")?;
    let mut options = DownloadOptions::default();
    options.verify = true;
    loader.commit(&mut session, options).context("flashing failed")?;
    let mut read_back = vec![0u8; image.len()];
    let mut core = session.core(0).context("cannot access the core to verify")?;
    core.read(u64::from(address), &mut read_back).context("cannot read the model region back")?;
    if read_back != image {
        let at = read_back.iter().zip(image).position(|(a, b)| a != b).unwrap_or(0);
        bail!("verification failed: byte {at} of the model region differs after flashing");
    }
    Ok(())
}
