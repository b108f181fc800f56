//! Writing a model into the firmware's model region (`microcnn flash`).
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
use microcnn_core::Model;
use microcnn_layout::MemoryMap;
use probe_rs::flashing::DownloadOptions;
use probe_rs::probe::list::Lister;
use probe_rs::{MemoryInterface, Permissions};

/// The image of `map`'s model region holding `model`: the blob, then erased bytes.
/// Refuses a model the region or the firmware's arena cannot hold (the firmware would
/// only blink "arena too small"), naming both sizes.
pub fn region_image(map: &MemoryMap, model: &Model<'_>) -> Result<Vec<u8>> {
    let blob = model.as_bytes();
    map.check_model(model.arena_size(), blob.len()).map_err(|e| anyhow!("{e}"))?;
    let length = map.model.length as usize;
    let mut image = blob.to_vec();
    image.resize(length, map.erased_byte);
    Ok(image)
}

/// The memory map of the firmware for `board`, else the board with `chip`, else the
/// nucleo-f411re.
pub fn memory_map(board: Option<&str>, chip: Option<&str>) -> Result<MemoryMap> {
    let known = || microcnn_layout::ALL.iter().map(|m| m.name).collect::<Vec<_>>().join(", ");
    let name = match (board, chip) {
        (Some(board), _) => board.to_string(),
        (None, Some(chip)) => chip.to_string(),
        (None, None) => microcnn_layout::NUCLEO_F411RE.name.to_string(),
    };
    MemoryMap::find(&name).ok_or_else(|| {
        if board.is_some() {
            anyhow!("unknown board {name}; known: {}", known())
        } else {
            anyhow!("no firmware memory map for chip {name}; pass --board (known: {})", known())
        }
    })
}

/// Writes `image` at `address` through a probe, verifies it and reads it back.
pub fn flash(chip: &str, serial: Option<&str>, address: u32, image: &[u8]) -> Result<()> {
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
