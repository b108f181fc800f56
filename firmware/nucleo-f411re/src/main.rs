//! microcnn on the ST Nucleo-F411RE (STM32F411RE, Cortex-M4F, 100 MHz) with an
//! ArduCAM Mini 2MP (OV2640) on SPI1 + I2C1: capture → preprocess → invoke → top-k →
//! a defmt line per frame (over RTT, shown by `probe-rs run`), LED LD2 on while the
//! best class is class 0. Per-layer costs in CPU cycles (DWT `CYCCNT`) at debug level.
//!
//! The user button B1 teaches it new classes (short press: learn frames as the
//! current class; long press: next class; see `learn.rs`), kept in the learned
//! region of the internal flash.
//!
//! The model comes from the model region (`microcnn flash MODEL.mcnn --chip
//! STM32F411RETx` writes it; or build with `MICROCNN_MODEL=model.mcnn` to link it
//! in). A region without a valid blob is refused: a defmt error, LD2 blinks 3
//! flashes forever, nothing is classified. A camera that does not answer: 2 flashes.
//! When the frames region holds frames (bring-up without a sensor), they are
//! replayed instead of the camera.
//!
//! Wiring (ArduCAM pin → Nucleo Arduino header): CS → D10 (PB6), MOSI → D11 (PA7),
//! MISO → D12 (PA6), SCK → D3 (PB3; D13/PA5 drives LD2), SDA → D14 (PB9),
//! SCL → D15 (PB8), VCC → 3V3, GND → GND.
#![no_std]
#![no_main]

mod learn;

use cortex_m::peripheral::DWT;
use cortex_m_rt::entry;
use defmt_rtt as _;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use embedded_hal_bus::spi::ExclusiveDevice;
use microcnn_app::{load_model, run_loop, signal_error, Clock, Mode as LoopMode};
use microcnn_camera::arducam::{ArduCamMini2mp, Resolution};
use microcnn_camera::replay::Replay;
use microcnn_camera::Camera;
use microcnn_core::Interpreter;
use microcnn_layout::{Region, NUCLEO_F411RE as MAP};
use panic_probe as _;
use stm32f4xx_hal::flash::LockedFlash;
use stm32f4xx_hal::i2c::{self, I2c};
use stm32f4xx_hal::pac;
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::rcc::Config;
use stm32f4xx_hal::spi::{Mode, Phase, Polarity, Spi};
use stm32f4xx_hal::timer::Timer;

const ARENA_BYTES: usize = MAP.arena_bytes as usize;
const FRAME_BUFFER_BYTES: usize = MAP.frame_buffer_bytes as usize;
const SYSCLK_HZ: u32 = 100_000_000;

/// The `include_bytes!` path: a blob linked into the model region at build time.
#[cfg(microcnn_embedded_model)]
#[link_section = ".model"]
#[used]
static EMBEDDED_MODEL: [u8; include_bytes!(env!("MICROCNN_MODEL")).len()] = *include_bytes!(env!("MICROCNN_MODEL"));

/// CPU cycles from the DWT cycle counter, extended to 64 bits (read at least once
/// every 2^32 cycles = 43 s at 100 MHz, which every frame does).
struct CycleClock {
    last: u32,
    high: u64,
}

impl Clock for CycleClock {
    const UNIT: &'static str = "cycles";

    fn now(&mut self) -> u64 {
        let now = DWT::cycle_count();
        if now < self.last {
            self.high += 1 << 32;
        }
        self.last = now;
        self.high | u64::from(now)
    }

    fn elapsed(&self, start: u64, end: u64) -> u64 {
        end.saturating_sub(start)
    }
}

/// A busy-wait delay on the core clock (for the LED patterns).
struct SpinDelay;

impl DelayNs for SpinDelay {
    fn delay_ns(&mut self, ns: u32) {
        cortex_m::asm::delay((u64::from(ns) * u64::from(SYSCLK_HZ / 1_000_000) / 1000) as u32);
    }
}

/// Bytes of a flash region.
fn region(r: Region) -> &'static [u8] {
    // SAFETY: the region lies inside the STM32F411RE's flash (always mapped and
    // readable), the linker keeps program and data out of it (memory.x), and the
    // firmware never programs flash: it is immutable for 'static.
    unsafe { core::slice::from_raw_parts(r.origin as *const u8, r.length as usize) }
}

/// Blinks `flashes` forever: the firmware stops here.
fn halt<L: OutputPin>(led: &mut L, flashes: u32) -> ! {
    loop {
        signal_error(led, &mut SpinDelay, flashes, 1);
    }
}

/// Classifies frames from `camera` forever (or until it fails).
fn classify_forever<C: Camera, L: OutputPin>(
    net: &mut Interpreter<'_, '_>,
    camera: &mut C,
    led: &mut L,
    buffer: &mut [u8],
) -> ! {
    let mut clock = CycleClock { last: 0, high: 0 };
    let end = run_loop(net, camera, buffer, &mut clock, led, 0, None, LoopMode::Classify);
    if let Some(error) = end.camera_error {
        defmt::error!("camera stopped after {=u32} frames: {}", end.frames, defmt::Debug2Format(&error));
    }
    halt(led, 2)
}

#[entry]
fn main() -> ! {
    let Some(dp) = pac::Peripherals::take() else { panic!("peripherals taken") };
    let Some(mut cp) = cortex_m::Peripherals::take() else { panic!("core peripherals taken") };
    let mut rcc = dp.RCC.freeze(Config::hsi().sysclk(SYSCLK_HZ.Hz()));
    cp.DCB.enable_trace();
    cp.DWT.enable_cycle_counter();

    let gpioa = dp.GPIOA.split(&mut rcc);
    let gpiob = dp.GPIOB.split(&mut rcc);
    let mut led = gpioa.pa5.into_push_pull_output();

    let Ok(model) = load_model(region(MAP.model)) else { halt(&mut led, 3) };
    let Some(arena) = cortex_m::singleton!(: [u8; ARENA_BYTES] = [0; ARENA_BYTES]) else { halt(&mut led, 3) };
    let mut net = match Interpreter::new(&model, arena) {
        Ok(net) => net,
        Err(error) => {
            // A valid model this firmware's arena cannot hold: 4 flashes, not the
            // "no valid blob" 3.
            defmt::error!("arena: {}", error);
            halt(&mut led, 4)
        }
    };

    // One capture buffer for either path.
    let Some(buffer) = cortex_m::singleton!(: [u8; FRAME_BUFFER_BYTES] = [0; FRAME_BUFFER_BYTES]) else {
        halt(&mut led, 2)
    };
    if let Ok(replay) = Replay::new(region(MAP.frames)) {
        defmt::info!("replaying {=usize} frames from flash", replay.len());
        classify_forever(&mut net, &mut replay.looping(), &mut led, buffer)
    }

    let mode = Mode { polarity: Polarity::IdleLow, phase: Phase::CaptureOnFirstTransition };
    let spi =
        Spi::new(dp.SPI1, (Some(gpiob.pb3.into_input()), Some(gpioa.pa6), Some(gpioa.pa7)), mode, 4.MHz(), &mut rcc);
    // The chip-select pin cannot fail (its error type is Infallible).
    let Ok(spi) = ExclusiveDevice::new_no_delay(spi, gpiob.pb6.into_push_pull_output());
    let i2c = I2c::new(dp.I2C1, (gpiob.pb8, gpiob.pb9), i2c::Mode::standard(100.kHz()), &mut rcc);
    let delay = Timer::syst(cp.SYST, &rcc.clocks).delay();
    let mut camera = ArduCamMini2mp::new(spi, i2c, delay, Resolution::Qqvga);
    if let Err(error) = camera.init() {
        defmt::error!("camera: {}", error);
        halt(&mut led, 2)
    }
    defmt::info!("camera ready: OV2640, 160x120 RGB565");
    // B1 (PC13) has an external pull-up: low while pressed.
    let mut button = dp.GPIOC.split(&mut rcc).pc13.into_floating_input();
    learn::learn_forever(&mut net, &mut camera, &mut led, &mut button, LockedFlash::new(dp.FLASH), buffer)
}
