//! The board learns: the user button B1 (PC13) teaches the camera new classes on the
//! spot, and the learned head is kept in the internal flash.
//!
//! - **Short press**: capture [`FRAMES_PER_PRESS`] frames as the current class (LD2
//!   on while capturing), learn them (prototypes: one pass), write the head and save
//!   it through `embedded-storage`'s `NorFlash` (the HAL's `UnlockedFlash`) into the
//!   learned region (`microcnn_layout::learned::NUCLEO_F411RE`: sectors 1 and 2,
//!   16 KiB each).
//! - **Long press** (at least one second): the next class; LD2 blinks the new class's
//!   number (1 for class 0).
//! - Between presses every frame is classified with the learned head (a defmt line
//!   `learned class {c} score {bits}`), or with the base model while nothing is
//!   learned. LD2 is on while the learned class is class 0.
//!
//! At boot the head saved last is read back and used when it was learned on the model
//! in the model region; a head for another model, or a corrupt region, is reported
//! with a defmt line. The learner itself starts empty at every boot: the first press
//! after a reset starts a new head, which replaces the saved one once written.
//!
//! When the frames region (sector 7) holds frames, the firmware replays them instead
//! (see `main.rs`) and this module is not entered. Learning erases only sectors 1 and
//! 2: never the program, the model or the frames.

use crate::{CycleClock, SpinDelay};
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};
use microcnn_app::learn::{self, FirmwareLearner, CLASSES, HEAD_BYTES};
use microcnn_app::{classify, signal_error, Clock};
use microcnn_camera::Camera;
use microcnn_core::learn::store::{Store, CHUNK};
use microcnn_core::learn::{FeatureCut, Head, Method, SgdConfig};
use microcnn_core::preprocess::InputQuantization;
use microcnn_core::Interpreter;
use microcnn_layout::learned::NUCLEO_F411RE as LEARNED;
use stm32f4xx_hal::flash::{FlashExt, LockedFlash, UnlockedFlash};

/// Frames captured per short press.
pub const FRAMES_PER_PRESS: u32 = 10;
/// How the board learns (one pass, instant).
pub const METHOD: Method = Method::Prototypes;
/// Cycles of a long press (1 s at 100 MHz).
const LONG_PRESS_CYCLES: u64 = 100_000_000;
/// Start of the flash: the HAL's `NorFlash` offsets count from here.
const FLASH_BASE: u32 = 0x0800_0000;

/// The largest head the firmware writes fits a slot (beside the store's two records).
const _: () = assert!(HEAD_BYTES.div_ceil(CHUNK) * CHUNK + 2 * CHUNK <= LEARNED.slots[0].length as usize);

/// The learned region as the HAL's flash offsets.
fn store() -> Option<Store> {
    let [a, b] = LEARNED.slots;
    Store::with_slots::<SmallSectors<'static>>(a.origin - FLASH_BASE, b.origin - FLASH_BASE, a.length).ok()
}

/// The HAL's flash as the learned slots see it. The HAL's `NorFlash` declares its
/// largest sector (128 KiB) as the erase size and erases every sector from `from` on
/// until `to`; the slots are 16 KiB sectors, so this declares
/// [`LEARNED.erase_size`](microcnn_layout::learned::LearnedRegion::erase_size) and
/// refuses to erase anything but a run of whole learned slots (never the boot block
/// or the program beside them).
pub struct SmallSectors<'a>(pub UnlockedFlash<'a>);

/// A flash error of [`SmallSectors`].
#[derive(Debug)]
pub enum SlotFlashError {
    /// From the HAL.
    Hal(stm32f4xx_hal::flash::Error),
    /// An erase outside the learned slots, or not on their boundaries.
    OutsideSlots,
}

impl NorFlashError for SlotFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::Hal(e) => e.kind(),
            Self::OutsideSlots => NorFlashErrorKind::OutOfBounds,
        }
    }
}

impl ErrorType for SmallSectors<'_> {
    type Error = SlotFlashError;
}

impl ReadNorFlash for SmallSectors<'_> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SlotFlashError> {
        ReadNorFlash::read(&mut self.0, offset, bytes).map_err(SlotFlashError::Hal)
    }

    fn capacity(&self) -> usize {
        ReadNorFlash::capacity(&self.0)
    }
}

impl NorFlash for SmallSectors<'_> {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = LEARNED.erase_size as usize;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SlotFlashError> {
        let inside = LEARNED.slots.iter().any(|s| {
            let (start, end) = (s.origin - FLASH_BASE, s.end() - FLASH_BASE);
            start <= from && to <= end && from < to
        });
        if !inside || !from.is_multiple_of(LEARNED.erase_size) || !to.is_multiple_of(LEARNED.erase_size) {
            return Err(SlotFlashError::OutsideSlots);
        }
        // The HAL erases the sector holding `from`, then the next, until `to`: here
        // exactly the 16 KiB sectors of [from, to).
        NorFlash::erase(&mut self.0, from, to).map_err(SlotFlashError::Hal)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SlotFlashError> {
        NorFlash::write(&mut self.0, offset, bytes).map_err(SlotFlashError::Hal)
    }
}

/// Classifies and learns from `camera` forever.
pub fn learn_forever<C: Camera, L: OutputPin, B: InputPin>(
    net: &mut Interpreter<'_, '_>,
    camera: &mut C,
    led: &mut L,
    button: &mut B,
    mut flash: LockedFlash,
    buffer: &mut [u8],
) -> ! {
    let mut clock = CycleClock { last: 0, high: 0 };
    let Some(learner) = cortex_m::singleton!(: FirmwareLearner = FirmwareLearner::EMPTY) else { halt(led) };
    let Some(head_buffer) = cortex_m::singleton!(: [u8; HEAD_BYTES] = [0; HEAD_BYTES]) else { halt(led) };
    let Some(store) = store() else { halt(led) };
    let cut = match learn::start(net, METHOD, learner) {
        Ok(cut) => cut,
        Err(error) => {
            defmt::error!("learn: {}", error);
            halt(led)
        }
    };
    let mut have_head = match store.load(&mut flash, head_buffer) {
        Ok((bytes, sequence)) => match Head::for_model(bytes, net.model()) {
            Ok(_) => {
                defmt::info!("learned head {=u32} loaded", sequence);
                true
            }
            Err(error) => {
                defmt::warn!("learned region: {}", error);
                false
            }
        },
        Err(error) => {
            defmt::info!("learned region: {}", error);
            false
        }
    };
    let quant = InputQuantization::from_model(net.model());
    let mut class = 0usize;
    let mut frame = 0u32;
    loop {
        if button.is_low().unwrap_or(false) {
            let begin = clock.now();
            while button.is_low().unwrap_or(false) {}
            let end = clock.now();
            if clock.elapsed(begin, end) >= LONG_PRESS_CYCLES {
                class = (class + 1) % CLASSES;
                defmt::info!("next class: {=usize}", class);
                signal_error(led, &mut SpinDelay, class as u32 + 1, 1);
            } else {
                let _ = led.set_high();
                if learn_class(net, camera, buffer, &quant, &cut, learner, class, &mut clock, frame) {
                    have_head |= save(learner, &mut clock, &mut flash, &store, head_buffer);
                }
                let _ = led.set_low();
                frame = frame.wrapping_add(FRAMES_PER_PRESS);
            }
            continue;
        }
        if let Err(error) = learn::capture(net, camera, buffer, &quant) {
            defmt::error!("frame {=u32}: {}", frame, error);
            SpinDelay.delay_ms(100);
            continue;
        }
        let best = if have_head {
            match Head::for_model(head_bytes(head_buffer), net.model()) {
                Ok((head, _)) => learn::predict(net, &cut, &head, &mut clock, frame).ok(),
                Err(_) => None,
            }
        } else {
            classify(net, &mut clock, frame).ok().map(|c| usize::from(c.class))
        };
        let _ = if best == Some(0) { led.set_high() } else { led.set_low() };
        frame = frame.wrapping_add(1);
    }
}

/// The head in `buffer` (its length is in its header; the whole buffer otherwise).
fn head_bytes(buffer: &[u8; HEAD_BYTES]) -> &[u8] {
    let classes = usize::from(buffer[7]);
    let features = usize::from(u16::from_le_bytes([buffer[8], buffer[9]]));
    let len = microcnn_core::learn::head::len(classes, features).min(HEAD_BYTES);
    &buffer[..len]
}

/// Captures and learns [`FRAMES_PER_PRESS`] frames as `class`; true when all were learned.
#[allow(clippy::too_many_arguments)]
fn learn_class<C: Camera>(
    net: &mut Interpreter<'_, '_>,
    camera: &mut C,
    buffer: &mut [u8],
    quant: &InputQuantization,
    cut: &FeatureCut,
    learner: &mut FirmwareLearner,
    class: usize,
    clock: &mut CycleClock,
    first: u32,
) -> bool {
    defmt::info!("learning class {=usize}: {=u32} frames", class, FRAMES_PER_PRESS);
    for n in 0..FRAMES_PER_PRESS {
        let learned = learn::capture(net, camera, buffer, quant)
            .and_then(|()| learn::learn_frame(net, cut, learner, class, clock, first + n));
        if let Err(error) = learned {
            defmt::error!("learn: {}", error);
            return false;
        }
    }
    true
}

/// Writes the head and keeps it in flash; on failure the previous head stays (in
/// flash and in `head`). True when saved.
fn save(
    learner: &mut FirmwareLearner,
    clock: &mut CycleClock,
    flash: &mut LockedFlash,
    store: &Store,
    head: &mut [u8; HEAD_BYTES],
) -> bool {
    let mut unlocked = SmallSectors(flash.unlocked());
    match learn::finish(learner, &SgdConfig::default(), clock, &mut unlocked, store, head) {
        Ok(_) => true,
        Err(error) => {
            // A class skipped with long presses has no frames yet: the head waits for it.
            defmt::warn!("head not saved: {}", error);
            false
        }
    }
}

fn halt<L: OutputPin>(led: &mut L) -> ! {
    loop {
        signal_error(led, &mut SpinDelay, 4, 1);
    }
}
