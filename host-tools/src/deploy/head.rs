//! A learned head in a board's learned region: the two-slot image that
//! `microcnn_core::learn::store::Store` reads (for `microcnn flash --head`), and the head
//! read back out of the region's bytes (for `microcnn pull`).

use anyhow::{anyhow, bail, Result};
use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};
use microcnn_core::learn::store::Store;
use microcnn_layout::learned::{self, LearnedRegion};
use microcnn_layout::MemoryMap;

/// The learned region of the firmware with memory map `map`.
pub fn learned_region(map: &MemoryMap) -> Result<LearnedRegion> {
    match map.name {
        "nucleo-f411re" => Ok(learned::NUCLEO_F411RE),
        "qemu-mps2-an386" => Ok(learned::QEMU),
        other => bail!("{other} has no learned region"),
    }
}

/// Two slots' bytes, addressed as on the chip, with NOR flash behaviour.
pub struct SlotImages {
    /// `(address, bytes)` of each slot.
    pub slots: [(u32, Vec<u8>); 2],
}

/// Outside the two slots.
#[derive(Debug)]
pub struct OutOfSlots;

impl NorFlashError for OutOfSlots {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::OutOfBounds
    }
}

impl SlotImages {
    /// Both slots of `region` erased.
    pub fn erased(region: &LearnedRegion) -> Self {
        let slot = |r: microcnn_layout::Region| (r.origin, vec![0xFF; r.length as usize]);
        SlotImages { slots: [slot(region.slots[0]), slot(region.slots[1])] }
    }

    fn find(&mut self, address: u32, len: usize) -> Result<&mut [u8], OutOfSlots> {
        for (origin, bytes) in &mut self.slots {
            if address >= *origin {
                let at = (address - *origin) as usize;
                if let Some(part) = bytes.get_mut(at..at + len) {
                    return Ok(part);
                }
            }
        }
        Err(OutOfSlots)
    }

    /// The store over these slots.
    pub fn store(&self) -> Result<Store> {
        let [(a, bytes), (b, _)] = &self.slots;
        Store::with_slots::<SlotImages>(*a, *b, bytes.len() as u32).map_err(|e| anyhow!("{e}"))
    }
}

impl ErrorType for SlotImages {
    type Error = OutOfSlots;
}

impl ReadNorFlash for SlotImages {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), OutOfSlots> {
        bytes.copy_from_slice(self.find(offset, bytes.len())?);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.slots.iter().map(|(o, b)| *o as usize + b.len()).max().unwrap_or(0)
    }
}

impl NorFlash for SlotImages {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), OutOfSlots> {
        self.find(from, to.saturating_sub(from) as usize)?.fill(0xFF);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), OutOfSlots> {
        for (cell, &b) in self.find(offset, bytes.len())?.iter_mut().zip(bytes) {
            *cell &= b;
        }
        Ok(())
    }
}

/// The learned region's slots holding `head` as the current head (slot 0, sequence 1;
/// slot 1 erased).
pub fn region_images(region: &LearnedRegion, head: &[u8]) -> Result<SlotImages> {
    let mut images = SlotImages::erased(region);
    let store = images.store()?;
    store.save(&mut images, head).map_err(|e| anyhow!("{e}"))?;
    Ok(images)
}

/// The current head in slot bytes read from a chip.
pub fn head_from_images(mut images: SlotImages) -> Result<Vec<u8>> {
    let store = images.store()?;
    let mut out = vec![0u8; store.capacity()];
    let (bytes, _) = store.load(&mut images, &mut out).map_err(|e| anyhow!("{e}"))?;
    Ok(bytes.to_vec())
}

/// Reads both slots of `region` from `chip` through a debug probe.
pub fn read_from_chip(chip: &str, serial: Option<&str>, region: &LearnedRegion) -> Result<SlotImages> {
    use anyhow::Context as _;
    use probe_rs::probe::list::Lister;
    use probe_rs::{MemoryInterface, Permissions};
    let probes = Lister::new().list_all();
    let info = match serial {
        _ if probes.is_empty() => bail!("no debug probe found: connect the board (its ST-LINK) over USB"),
        Some(serial) => probes
            .iter()
            .find(|p| p.serial_number.as_deref() == Some(serial))
            .ok_or_else(|| anyhow!("no debug probe with serial {serial}"))?,
        None if probes.len() > 1 => bail!("{} debug probes found; pick one with --probe SERIAL", probes.len()),
        None => &probes[0],
    };
    let probe = info.open().with_context(|| format!("cannot open the debug probe {info}"))?;
    let mut session = probe.attach(chip, Permissions::default()).with_context(|| format!("cannot attach to {chip}"))?;
    let mut core = session.core(0).context("cannot access the core")?;
    let mut images = SlotImages::erased(region);
    for (origin, bytes) in &mut images.slots {
        core.read(u64::from(*origin), bytes).context("cannot read the learned region")?;
    }
    Ok(images)
}
