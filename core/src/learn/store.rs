//! Keeping the learned head in flash, through `embedded-storage`'s [`NorFlash`], so
//! that a power cut at any moment leaves the previous or the new head, never a torn
//! one.
//!
//! It lives in `core` (not in the firmware) so that every board, the host tool's
//! `pull` and the tests use one implementation of the protocol, generic over the
//! flash driver.
//!
//! # Layout
//!
//! The learned region is split into two **slots** of equal size, each a whole number
//! of erase blocks (so erasing one never touches the other). A slot:
//!
//! | offset | bytes | field |
//! | --- | --- | --- |
//! | 0 | 32 | header: magic `MCLS`, `u32` sequence, `u32` head length, `u32` CRC-32 of (sequence, length, head), then `0xFF` |
//! | 32 | head length, padded to 32 | the head ([`super::head`]) |
//! | slot end − 32 | 32 | commit marker: magic `MCOK`, `u32` the same sequence, then `0xFF` |
//!
//! All I/O is in 32-byte chunks at 32-byte-aligned offsets, so any flash whose read
//! and write sizes divide 32 and whose erase size is a multiple of 32 works.
//!
//! # Commit protocol
//!
//! [`Store::save`] writes into the slot that does **not** hold the current head:
//! erase it, write header and head, read them back and compare (verify), and only
//! then write the commit marker (and read it back). A slot counts only when its header
//! and marker magics agree on the sequence number and the CRC matches; the valid slot
//! with the higher sequence number (serial-number order) is current.
//!
//! A cut before the marker is complete leaves the new slot without a valid marker, so
//! the old slot, never erased nor written, stays current. A torn marker word (some of
//! its bits programmed) cannot read as the magic plus the sequence unless all of it
//! was programmed, because NOR programming only clears bits. Once the marker is
//! complete, the new head (already verified) is current.

use super::{FlashErrorKind, LearnError};
use crate::crc::Crc32;
use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};

/// Bytes of the slot header and of the commit marker, and of every I/O chunk.
pub const CHUNK: usize = 32;
/// Slot header magic.
pub const SLOT_MAGIC: [u8; 4] = *b"MCLS";
/// Commit marker magic.
pub const COMMIT_MAGIC: [u8; 4] = *b"MCOK";

/// The two-slot store over the learned region `[offset, offset + len)` of a flash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Store {
    slots: [u32; 2],
    slot_len: u32,
}

/// A slot's header and marker agree: its sequence and head length (CRC not checked yet).
#[derive(Clone, Copy)]
struct Candidate {
    slot: u32,
    sequence: u32,
    len: usize,
    crc: u32,
}

fn flash_error<E: NorFlashError>(error: E) -> LearnError {
    LearnError::Flash(match error.kind() {
        NorFlashErrorKind::NotAligned => FlashErrorKind::NotAligned,
        NorFlashErrorKind::OutOfBounds => FlashErrorKind::OutOfBounds,
        _ => FlashErrorKind::Other,
    })
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes.get(at..at + 4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// `a` comes after `b` in serial-number order (RFC 1982), so that the sequence may wrap.
fn newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl Store {
    /// The store over `len` bytes at `offset` of a flash of type `F`, split in two
    /// halves (each rounded down to erase blocks). Fails with
    /// [`LearnError::BadRegion`] unless `offset` is erase-aligned, read and write sizes
    /// divide 32, the erase size is a multiple of 32 and each slot holds at least the
    /// two 32-byte records and one chunk.
    pub fn new<F: NorFlash>(offset: u32, len: u32) -> Result<Self, LearnError> {
        let erase = F::ERASE_SIZE.max(1) as u32;
        let slot_len = len / 2 / erase * erase;
        Self::with_slots::<F>(offset, offset.wrapping_add(slot_len), slot_len)
    }

    /// The store over two separate slots of `slot_len` bytes at `first` and `second`
    /// (for flashes whose free erase blocks are not next to each other). The same
    /// checks as [`new`](Self::new), and the slots must not overlap.
    pub fn with_slots<F: NorFlash>(first: u32, second: u32, slot_len: u32) -> Result<Self, LearnError> {
        let erase = F::ERASE_SIZE as u32;
        let sizes_ok = F::ERASE_SIZE > 0
            && F::ERASE_SIZE.is_multiple_of(CHUNK)
            && F::WRITE_SIZE > 0
            && CHUNK.is_multiple_of(F::WRITE_SIZE)
            && F::READ_SIZE > 0
            && CHUNK.is_multiple_of(F::READ_SIZE);
        let aligned = sizes_ok
            && first.is_multiple_of(erase)
            && second.is_multiple_of(erase)
            && slot_len.is_multiple_of(erase)
            && (slot_len as usize) >= 3 * CHUNK;
        let apart = first.checked_add(slot_len).is_some_and(|end| end <= second)
            || second.checked_add(slot_len).is_some_and(|end| end <= first);
        if !aligned || !apart {
            return Err(LearnError::BadRegion);
        }
        Ok(Store { slots: [first, second], slot_len })
    }

    /// The largest head a slot holds.
    pub const fn capacity(&self) -> usize {
        self.slot_len as usize - 2 * CHUNK
    }

    /// Bytes of one slot.
    pub const fn slot_len(&self) -> u32 {
        self.slot_len
    }

    fn slot_start(&self, slot: u32) -> u32 {
        self.slots[(slot & 1) as usize]
    }

    fn marker_at(&self, slot: u32) -> u32 {
        self.slot_start(slot) + self.slot_len - CHUNK as u32
    }

    fn candidate<F: ReadNorFlash>(&self, flash: &mut F, slot: u32) -> Result<Option<Candidate>, LearnError> {
        let mut header = [0u8; CHUNK];
        let mut marker = [0u8; CHUNK];
        flash.read(self.slot_start(slot), &mut header).map_err(flash_error)?;
        flash.read(self.marker_at(slot), &mut marker).map_err(flash_error)?;
        let sequence = u32_at(&header, 4);
        let len = u32_at(&header, 8) as usize;
        let valid = header[..4] == SLOT_MAGIC
            && marker[..4] == COMMIT_MAGIC
            && u32_at(&marker, 4) == sequence
            && len <= self.capacity();
        Ok(valid.then_some(Candidate { slot, sequence, len, crc: u32_at(&header, 12) }))
    }

    /// Reads the head of `candidate` into `out` (at least `candidate.len` long) and
    /// checks its CRC.
    fn read_head<F: ReadNorFlash>(
        &self,
        flash: &mut F,
        candidate: &Candidate,
        out: &mut [u8],
    ) -> Result<bool, LearnError> {
        let available = out.len();
        let Some(out) = out.get_mut(..candidate.len) else {
            return Err(LearnError::BufferTooSmall { needed: candidate.len, available });
        };
        let start = self.slot_start(candidate.slot) + CHUNK as u32;
        let mut chunk = [0u8; CHUNK];
        for (k, part) in out.chunks_mut(CHUNK).enumerate() {
            flash.read(start + (k * CHUNK) as u32, &mut chunk).map_err(flash_error)?;
            part.copy_from_slice(&chunk[..part.len()]);
        }
        let crc = Crc32::new()
            .update(&candidate.sequence.to_le_bytes())
            .update(&(candidate.len as u32).to_le_bytes())
            .update(out)
            .finish();
        Ok(crc == candidate.crc)
    }

    /// The valid slots, newest first.
    fn candidates<F: ReadNorFlash>(&self, flash: &mut F) -> Result<[Option<Candidate>; 2], LearnError> {
        let a = self.candidate(flash, 0)?;
        let b = self.candidate(flash, 1)?;
        Ok(match (a, b) {
            (Some(x), Some(y)) if newer(y.sequence, x.sequence) => [Some(y), Some(x)],
            (None, y) => [y, None],
            (x, y) => [x, y],
        })
    }

    /// The current head's bytes (read into `out`) and its sequence number.
    /// [`LearnError::NoHead`] when neither slot holds a valid head (erased or corrupt);
    /// a corrupt newest slot falls back to the other one.
    pub fn load<'b, F: ReadNorFlash>(&self, flash: &mut F, out: &'b mut [u8]) -> Result<(&'b [u8], u32), LearnError> {
        let candidates = self.candidates(flash)?;
        let mut found = None;
        for candidate in candidates.iter().flatten() {
            if self.read_head(flash, candidate, out)? {
                found = Some(*candidate);
                break;
            }
        }
        let Some(candidate) = found else { return Err(LearnError::NoHead) };
        let bytes = out.get(..candidate.len).unwrap_or(&[]);
        Ok((bytes, candidate.sequence))
    }

    /// Writes `head` as the new current head: into the other slot, verified, then
    /// committed (see the module doc). Returns its sequence number. After an error
    /// (a power cut, a failed verify) the current head is the previous one, or the new
    /// one if the commit marker was already complete; never anything else.
    pub fn save<F: NorFlash>(&self, flash: &mut F, head: &[u8]) -> Result<u32, LearnError> {
        if head.len() > self.capacity() {
            return Err(LearnError::BufferTooSmall { needed: head.len(), available: self.capacity() });
        }
        // The newest slot whose CRC holds is kept; a newer one with a bad CRC is not a
        // head and may be overwritten.
        let mut current: Option<Candidate> = None;
        for candidate in self.candidates(flash)?.iter().flatten() {
            if self.verify_crc(flash, candidate)? {
                current = Some(*candidate);
                break;
            }
        }
        let (slot, sequence) = match current {
            Some(c) => (1 - c.slot, c.sequence.wrapping_add(1)),
            None => (0, 1),
        };
        let start = self.slot_start(slot);
        flash.erase(start, start + self.slot_len).map_err(flash_error)?;

        let len = head.len() as u32;
        let crc = Crc32::new().update(&sequence.to_le_bytes()).update(&len.to_le_bytes()).update(head).finish();
        let mut header = [0xFFu8; CHUNK];
        header[..4].copy_from_slice(&SLOT_MAGIC);
        header[4..8].copy_from_slice(&sequence.to_le_bytes());
        header[8..12].copy_from_slice(&len.to_le_bytes());
        header[12..16].copy_from_slice(&crc.to_le_bytes());
        flash.write(start, &header).map_err(flash_error)?;
        for (k, part) in head.chunks(CHUNK).enumerate() {
            let mut chunk = [0xFFu8; CHUNK];
            chunk[..part.len()].copy_from_slice(part);
            flash.write(start + ((k + 1) * CHUNK) as u32, &chunk).map_err(flash_error)?;
        }

        // Verify: everything written reads back as written.
        let mut back = [0u8; CHUNK];
        flash.read(start, &mut back).map_err(flash_error)?;
        if back != header {
            return Err(LearnError::VerifyFailed);
        }
        for (k, part) in head.chunks(CHUNK).enumerate() {
            flash.read(start + ((k + 1) * CHUNK) as u32, &mut back).map_err(flash_error)?;
            if back[..part.len()] != *part {
                return Err(LearnError::VerifyFailed);
            }
        }

        // Commit.
        let mut marker = [0xFFu8; CHUNK];
        marker[..4].copy_from_slice(&COMMIT_MAGIC);
        marker[4..8].copy_from_slice(&sequence.to_le_bytes());
        flash.write(self.marker_at(slot), &marker).map_err(flash_error)?;
        flash.read(self.marker_at(slot), &mut back).map_err(flash_error)?;
        if back != marker {
            return Err(LearnError::VerifyFailed);
        }
        Ok(sequence)
    }

    fn verify_crc<F: ReadNorFlash>(&self, flash: &mut F, candidate: &Candidate) -> Result<bool, LearnError> {
        let start = self.slot_start(candidate.slot) + CHUNK as u32;
        let mut chunk = [0u8; CHUNK];
        let mut crc =
            Crc32::new().update(&candidate.sequence.to_le_bytes()).update(&(candidate.len as u32).to_le_bytes());
        let mut left = candidate.len;
        let mut at = start;
        while left > 0 {
            flash.read(at, &mut chunk).map_err(flash_error)?;
            let take = left.min(CHUNK);
            crc = crc.update(&chunk[..take]);
            left -= take;
            at += CHUNK as u32;
        }
        Ok(crc.finish() == candidate.crc)
    }
}

#[cfg(test)]
mod tests;
