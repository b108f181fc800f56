//! The scripted learning session under QEMU (see `microcnn_layout::session`): learn
//! the labelled frames, train, keep the head in the learned region through
//! [`NorFlash`], read it back from there, classify the remaining frames with it.
//!
//! The learned region lies in the code memory QEMU maps as RAM; [`CodeMemoryNor`]
//! gives it NOR flash behaviour (erase to `0xFF` in 4 KiB blocks, programming only
//! clears bits), so the very same `Store` protocol runs as on a chip.

use crate::{region, IcountClock};
use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};
use fixed::types::I16F16;
use microcnn_app::learn::{self, FirmwareLearner, SessionError, HEAD_BYTES};
use microcnn_app::{fill_input, Clock};
use microcnn_camera::replay::Replay;
use microcnn_camera::Camera;
use microcnn_core::learn::store::Store;
use microcnn_core::learn::{Head, Method, SgdConfig};
use microcnn_core::preprocess::InputQuantization;
use microcnn_core::Interpreter;
use microcnn_layout::learned::{LearnedRegion, QEMU as LEARNED};
use microcnn_layout::{session, Region};

/// The learned region of the code memory as NOR flash. Offsets are addresses.
pub struct CodeMemoryNor {
    region: LearnedRegion,
}

/// Out of the learned region, or misaligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeMemoryError {
    /// Not inside one of the two slots.
    OutOfBounds,
    /// Not aligned to the write or erase size.
    NotAligned,
}

impl NorFlashError for CodeMemoryError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            CodeMemoryError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            CodeMemoryError::NotAligned => NorFlashErrorKind::NotAligned,
        }
    }
}

impl CodeMemoryNor {
    fn check(&self, from: u32, len: usize) -> Result<(), CodeMemoryError> {
        let end = from.checked_add(len as u32).ok_or(CodeMemoryError::OutOfBounds)?;
        let inside = self.region.slots.iter().any(|s| from >= s.origin && end <= s.end());
        if inside {
            Ok(())
        } else {
            Err(CodeMemoryError::OutOfBounds)
        }
    }
}

impl ErrorType for CodeMemoryNor {
    type Error = CodeMemoryError;
}

impl ReadNorFlash for CodeMemoryNor {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), CodeMemoryError> {
        self.check(offset, bytes.len())?;
        for (i, b) in bytes.iter_mut().enumerate() {
            // SAFETY: `check` put the address inside a learned slot, which lies in the
            // mps2 code memory (always mapped, byte-addressable) and outside every
            // linker region, so nothing else owns these bytes.
            *b = unsafe { ((offset as usize + i) as *const u8).read_volatile() };
        }
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.region.slots[1].end() as usize
    }
}

impl NorFlash for CodeMemoryNor {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), CodeMemoryError> {
        let erase = Self::ERASE_SIZE as u32;
        if !from.is_multiple_of(erase) || !to.is_multiple_of(erase) || to < from {
            return Err(CodeMemoryError::NotAligned);
        }
        self.check(from, (to - from) as usize)?;
        for address in from..to {
            // SAFETY: as in `read`; the firmware is single-threaded and holds the only
            // CodeMemoryNor, so no reference to these bytes exists.
            unsafe { (address as *mut u8).write_volatile(0xFF) };
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), CodeMemoryError> {
        if !offset.is_multiple_of(Self::WRITE_SIZE as u32) || !bytes.len().is_multiple_of(Self::WRITE_SIZE) {
            return Err(CodeMemoryError::NotAligned);
        }
        self.check(offset, bytes.len())?;
        for (i, &b) in bytes.iter().enumerate() {
            let address = (offset as usize + i) as *mut u8;
            // SAFETY: as in `erase`. NOR programming only clears bits: AND.
            unsafe { address.write_volatile(address.read_volatile() & b) };
        }
        Ok(())
    }
}

/// Runs the session whose header is at the start of the frames region.
pub fn run(
    net: &mut Interpreter<'_, '_>,
    header: &session::Header,
    frames: Region,
    buffer: &mut [u8],
    clock: &mut IcountClock,
    learner: &mut FirmwareLearner,
    head_buffer: &mut [u8; HEAD_BYTES],
) -> Result<(), SessionError> {
    let all = region(frames);
    let labels = all.get(session::HEADER_LEN..session::HEADER_LEN + usize::from(header.learn_count)).unwrap_or(&[]);
    let frames_bytes = all.get(header.frames_offset()..).unwrap_or(&[]);
    let mut camera = Replay::new(frames_bytes).map_err(|_| SessionError::Camera)?;
    let quant = InputQuantization::from_model(net.model());
    let method = if header.method == 1 { Method::Sgd } else { Method::Prototypes };
    let cut = learn::start(net, method, learner)?;

    for (n, &label) in labels.iter().enumerate() {
        learn::capture(net, &mut camera, buffer, &quant)?;
        learn::learn_frame(net, &cut, learner, usize::from(label), clock, n as u32)?;
    }
    let config = SgdConfig { epochs: header.epochs, learning_rate: I16F16::from_bits(header.learning_rate_bits) };
    let mut flash = CodeMemoryNor { region: LEARNED };
    let slots = LEARNED.slots;
    let store = Store::with_slots::<CodeMemoryNor>(slots[0].origin, slots[1].origin, slots[0].length)?;
    learn::finish(learner, &config, clock, &mut flash, &store, head_buffer)?;

    // Classify with the head as read back from the learned region.
    let (bytes, _) = store.load(&mut flash, head_buffer)?;
    let (head, _) = Head::for_model(bytes, net.model())?;
    let format = camera.format();
    for n in 0..u32::from(header.classify_count) {
        let frame = camera.capture(buffer).map_err(|_| SessionError::Camera)?;
        let frame_len = frame.len();
        let frame = buffer.get(..frame_len).unwrap_or(&[]);
        if n == 0 {
            // One whole inference of the base, for comparison with a learned frame
            // (it may overwrite the input, so the frame is put in again after).
            fill_input(net, &quant, format, frame).map_err(SessionError::Frame)?;
            let begin = clock.now();
            net.invoke().map_err(|e| SessionError::Learn(e.into()))?;
            let end = clock.now();
            let cost = clock.elapsed(begin, end);
            defmt::info!("invoke: {=u64} {=str}", cost, IcountClock::UNIT);
        }
        fill_input(net, &quant, format, frame).map_err(SessionError::Frame)?;
        learn::predict(net, &cut, &head, clock, n)?;
    }
    Ok(())
}

/// Runs the session in the frames region (the firmware's learner and head buffer are
/// statics here) and returns the exit status: 0, or 6 when the session failed.
pub fn session(
    net: &mut Interpreter<'_, '_>,
    header: &session::Header,
    buffer: &mut [u8],
    clock: &mut IcountClock,
) -> u32 {
    let Some(learner) = cortex_m::singleton!(: FirmwareLearner = FirmwareLearner::EMPTY) else { return 1 };
    let Some(head) = cortex_m::singleton!(: [u8; HEAD_BYTES] = [0; HEAD_BYTES]) else { return 1 };
    match run(net, header, crate::MAP.frames, buffer, clock, learner, head) {
        Ok(()) => {
            defmt::info!("learning session done");
            0
        }
        Err(error) => {
            defmt::error!("learn: {}", error);
            6
        }
    }
}
