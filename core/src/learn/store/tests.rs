use super::*;
use embedded_storage::nor_flash::ErrorType;

const ERASE: usize = 256;
const WORD: usize = 4;
const REGION: u32 = 4 * 256; // two slots of two erase blocks, after one block of other data
const OFFSET: u32 = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SimError {
    PowerLost,
    NotAligned,
    OutOfBounds,
}

impl NorFlashError for SimError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            SimError::PowerLost => NorFlashErrorKind::Other,
            SimError::NotAligned => NorFlashErrorKind::NotAligned,
            SimError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
        }
    }
}

/// NOR flash: erase sets blocks to 0xFF, programming only clears bits. `budget` counts
/// steps (one per erased block, one per written word); when it runs out, the step in
/// progress is cut half-way (a torn word: a pseudo-random subset of its bits programmed;
/// a torn erase: part of the block erased, the rest left as it was) and every later
/// operation fails, as with the power gone.
#[derive(Clone)]
struct SimFlash {
    bytes: Vec<u8>,
    budget: Option<usize>,
    steps: usize,
    dead: bool,
    seed: u64,
}

impl SimFlash {
    fn new() -> Self {
        SimFlash { bytes: vec![0xA5; 2048], budget: None, steps: 0, dead: false, seed: 0x1234_5678_9ABC_DEF1 }
    }

    fn random(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    /// True when this step is the one the power is cut in.
    fn step(&mut self) -> Result<bool, SimError> {
        if self.dead {
            return Err(SimError::PowerLost);
        }
        self.steps += 1;
        if self.budget == Some(self.steps - 1) {
            self.dead = true;
            return Ok(true);
        }
        Ok(false)
    }

    /// Power back on: no cut pending.
    fn reboot(&mut self) {
        self.budget = None;
        self.dead = false;
    }
}

impl ErrorType for SimFlash {
    type Error = SimError;
}

impl ReadNorFlash for SimFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimError> {
        if self.dead {
            return Err(SimError::PowerLost);
        }
        let at = offset as usize;
        let src = self.bytes.get(at..at + bytes.len()).ok_or(SimError::OutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

impl NorFlash for SimFlash {
    const WRITE_SIZE: usize = WORD;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        let (from, to) = (from as usize, to as usize);
        if !from.is_multiple_of(ERASE) || !to.is_multiple_of(ERASE) {
            return Err(SimError::NotAligned);
        }
        if to > self.bytes.len() || from > to {
            return Err(SimError::OutOfBounds);
        }
        for block in (from..to).step_by(ERASE) {
            if self.step()? {
                let keep = (self.random() % ERASE as u64) as usize;
                self.bytes[block..block + keep].fill(0xFF);
                return Err(SimError::PowerLost);
            }
            self.bytes[block..block + ERASE].fill(0xFF);
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), SimError> {
        let at = offset as usize;
        if !at.is_multiple_of(WORD) || !data.len().is_multiple_of(WORD) {
            return Err(SimError::NotAligned);
        }
        if at + data.len() > self.bytes.len() {
            return Err(SimError::OutOfBounds);
        }
        for (k, word) in data.chunks(WORD).enumerate() {
            let cut = self.step()?;
            for (i, &byte) in word.iter().enumerate() {
                let mask = if cut { self.random() as u8 } else { 0 };
                self.bytes[at + k * WORD + i] &= byte | mask;
            }
            if cut {
                return Err(SimError::PowerLost);
            }
        }
        Ok(())
    }
}

fn store() -> Store {
    Store::new::<SimFlash>(OFFSET, REGION).unwrap()
}

fn head(n: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(n.wrapping_mul(97))).collect()
}

fn load(flash: &mut SimFlash) -> Result<Vec<u8>, LearnError> {
    let mut out = vec![0u8; 1024];
    store().load(flash, &mut out).map(|(bytes, _)| bytes.to_vec())
}

#[test]
fn saves_and_loads_alternating_slots() {
    let mut flash = SimFlash::new();
    assert_eq!(load(&mut flash), Err(LearnError::NoHead), "garbage region");
    flash.erase(OFFSET, OFFSET + REGION).unwrap();
    assert_eq!(load(&mut flash), Err(LearnError::NoHead), "erased region");
    let before = flash.bytes[..OFFSET as usize].to_vec();
    for n in 1..=5u8 {
        let h = head(n, 100 + usize::from(n) * 37);
        assert_eq!(store().save(&mut flash, &h).unwrap(), u32::from(n));
        assert_eq!(load(&mut flash).unwrap(), h);
    }
    assert_eq!(flash.bytes[..OFFSET as usize], before[..], "nothing outside the region is touched");
    assert!(flash.bytes[(OFFSET + REGION) as usize..].iter().all(|&b| b == 0xA5));
    assert_eq!(store().capacity(), 512 - 64);
    assert!(store().save(&mut flash, &head(9, 449)).is_err(), "too big for a slot");
    assert_eq!(load(&mut flash).unwrap(), head(5, 100 + 5 * 37));
}

#[test]
fn a_power_cut_at_every_step_leaves_the_old_or_the_new_head() {
    let mut flash = SimFlash::new();
    let mut torn = 0;
    let mut lost = 0;
    let mut cuts = 0;
    let mut previous: Option<Vec<u8>> = None;
    for n in 1..=4u8 {
        let new = head(n, 150 + usize::from(n) * 61);
        // Count the steps of an uncut save.
        let mut probe = flash.clone();
        probe.steps = 0;
        store().save(&mut probe, &new).unwrap();
        let steps = probe.steps;
        assert!(steps > 2 + new.len() / WORD, "{steps} steps");
        let mut new_seen = false;
        for cut in 0..steps {
            let mut cut_flash = flash.clone();
            cut_flash.steps = 0;
            cut_flash.seed = 0x9E37_79B9 ^ (u64::from(n) << 32) ^ cut as u64;
            cut_flash.budget = Some(cut);
            assert!(store().save(&mut cut_flash, &new).is_err(), "cut at step {cut} must fail the save");
            cut_flash.reboot();
            cuts += 1;
            match (load(&mut cut_flash), &previous) {
                (Ok(bytes), _) if bytes == new => {
                    new_seen = true;
                    // Only a cut in the last word (the commit marker's) can leave the new
                    // head current: everything before it is not committed yet.
                    assert!(cut + 8 >= steps, "new head current after a cut at step {cut} of {steps}");
                }
                (Ok(bytes), Some(old)) if bytes == *old => {}
                (Ok(_), _) => torn += 1,
                (Err(LearnError::NoHead), None) => {}
                (Err(_), Some(_)) => lost += 1,
                (Err(e), None) => panic!("cut at {cut}: {e}"),
            }
            // After the cut, the next save goes through and becomes current.
            store().save(&mut cut_flash, &new).unwrap();
            assert_eq!(load(&mut cut_flash).unwrap(), new);
        }
        assert!(new_seen, "a cut after the marker's magic and sequence leaves the new head");
        store().save(&mut flash, &new).unwrap();
        previous = Some(new);
    }
    assert!(cuts > 350, "{cuts} cuts");
    assert_eq!((torn, lost), (0, 0), "torn heads, lost previous heads over {cuts} cuts");
}

#[test]
fn a_corrupt_newest_slot_falls_back_and_both_corrupt_is_no_head() {
    let mut flash = SimFlash::new();
    store().save(&mut flash, &head(1, 200)).unwrap();
    store().save(&mut flash, &head(2, 200)).unwrap(); // slot 1
    let slot1 = (OFFSET + store().slot_len()) as usize;
    flash.bytes[slot1 + 40] ^= 0x10;
    assert_eq!(load(&mut flash).unwrap(), head(1, 200));
    // A save now keeps the good slot 0 and overwrites the corrupt one.
    store().save(&mut flash, &head(3, 200)).unwrap();
    assert_eq!(load(&mut flash).unwrap(), head(3, 200));
    flash.bytes[OFFSET as usize + 40] ^= 0x10;
    flash.bytes[slot1 + 40] ^= 0x10;
    assert_eq!(load(&mut flash), Err(LearnError::NoHead));
}

#[test]
fn bad_regions_and_small_buffers_are_errors() {
    assert_eq!(Store::new::<SimFlash>(100, REGION), Err(LearnError::BadRegion));
    assert_eq!(Store::new::<SimFlash>(OFFSET, 256), Err(LearnError::BadRegion));
    let mut flash = SimFlash::new();
    store().save(&mut flash, &head(1, 300)).unwrap();
    let mut small = [0u8; 10];
    assert_eq!(
        store().load(&mut flash, &mut small).err(),
        Some(LearnError::BufferTooSmall { needed: 300, available: 10 })
    );
    assert_eq!(Store::with_slots::<SimFlash>(0, 256, 512), Err(LearnError::BadRegion), "overlap");
    let apart = Store::with_slots::<SimFlash>(1536, 256, 256).unwrap();
    apart.save(&mut flash, &head(2, 100)).unwrap();
    apart.save(&mut flash, &head(3, 100)).unwrap();
    let mut out = [0u8; 256];
    assert_eq!(apart.load(&mut flash, &mut out).unwrap().0, &head(3, 100)[..]);
    let far = Store::new::<SimFlash>(2048, 1024).unwrap();
    assert_eq!(far.load(&mut flash, &mut [0u8; 64]).err(), Some(LearnError::Flash(FlashErrorKind::OutOfBounds)));
}
