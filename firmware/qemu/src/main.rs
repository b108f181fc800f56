//! microcnn on QEMU: `mps2-an386` (Cortex-M4F) and `mps2-an500` (Cortex-M7) run the
//! `thumbv7em-none-eabihf` build; `mps2-an385` (a Cortex-M3, which executes the
//! Cortex-M0/M0+ instruction set) runs the `thumbv6m-none-eabi` build, so its counts
//! are those of v6m code. The three boards share one memory map.
//!
//! Reads the model region and the frames region (see `microcnn-layout`; the host
//! loads them with QEMU's `-device loader`), classifies every frame with the replay
//! camera, logs through defmt over semihosting, and exits through semihosting:
//!
//! | status | meaning |
//! | --- | --- |
//! | 0 | every frame classified |
//! | 1 | panic |
//! | 2 | the model region holds no valid blob (nothing classified) |
//! | 3 | the frames region holds no valid frames header |
//! | 4 | the arena is too small for the model |
//! | 5 | a frame could not be classified |
//! | 6 | a learning session (frames region starts with `MCLN`, see `learn.rs`) failed |
//!
//! With `--dump-layers` on the semihosting command line, each frame runs operator by
//! operator and every layer's output is logged instead (`microcnn diff`).
//!
//! Costs are executed instructions: SysTick counts the 25 MHz core clock, which under
//! `-icount shift=N` advances 2^N / 40 ticks per instruction
//! (`microcnn_layout::QEMU_ICOUNT_SHIFT`). QEMU has no DWT cycle counter.
#![no_std]
#![no_main]

mod learn;

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::{entry, exception};
use defmt_semihosting as _;
use microcnn_app::{load_model, run_loop, signal_error, Clock, Mode};
use microcnn_camera::replay::{Replay, ReplayError};
use microcnn_core::Interpreter;
use microcnn_layout::{Region, QEMU_ICOUNT_SHIFT, QEMU_MPS2_AN386 as MAP};

const ARENA_BYTES: usize = MAP.arena_bytes as usize;
const FRAME_BUFFER_BYTES: usize = MAP.frame_buffer_bytes as usize;

/// SysTick reloads every 2^24 ticks; the exception counts the wraps.
static SYSTICK_WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // Only this handler writes the count, so a load and a store are enough (and
    // thumbv6m has no atomic read-modify-write).
    SYSTICK_WRAPS.store(SYSTICK_WRAPS.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// Executed instructions, from SysTick under `-icount`.
struct IcountClock;

impl IcountClock {
    fn start(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(0x00FF_FFFF);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        // CVR reads 0 until the first reload.
        while SYST::get_current() == 0 {}
        IcountClock
    }
}

impl Clock for IcountClock {
    const UNIT: &'static str = "instructions";

    fn now(&mut self) -> u64 {
        loop {
            let wraps = SYSTICK_WRAPS.load(Ordering::Relaxed);
            let current = SYST::get_current();
            if wraps == SYSTICK_WRAPS.load(Ordering::Relaxed) {
                return (u64::from(wraps) << 24) | u64::from(0x00FF_FFFF - current);
            }
        }
    }

    fn elapsed(&self, start: u64, end: u64) -> u64 {
        // ticks × 40 ns / 2^shift ns per instruction, rounded to nearest.
        let scaled = end.saturating_sub(start) * 40;
        (scaled + (1 << (QEMU_ICOUNT_SHIFT - 1))) >> QEMU_ICOUNT_SHIFT
    }
}

/// LED 0 of the board's FPGA I/O block (`FPGAIO` at `0x4002_8000`, register `LED0`).
struct FpgaLed;

const FPGAIO_LED0: *mut u32 = 0x4002_8000 as *mut u32;

impl embedded_hal::digital::ErrorType for FpgaLed {
    type Error = core::convert::Infallible;
}

impl embedded_hal::digital::OutputPin for FpgaLed {
    fn set_high(&mut self) -> Result<(), Self::Error> {
        // SAFETY: FPGAIO_LED0 is a device register of mps2-an386, always mapped; only
        // this type writes it, and the firmware is single-threaded.
        unsafe { FPGAIO_LED0.write_volatile(1) };
        Ok(())
    }

    fn set_low(&mut self) -> Result<(), Self::Error> {
        // SAFETY: as in set_high.
        unsafe { FPGAIO_LED0.write_volatile(0) };
        Ok(())
    }
}

/// A busy-wait delay on the 25 MHz core clock.
struct SpinDelay;

impl embedded_hal::delay::DelayNs for SpinDelay {
    fn delay_ns(&mut self, ns: u32) {
        cortex_m::asm::delay(ns / 40);
    }
}

/// Bytes of a flash region.
fn region(r: Region) -> &'static [u8] {
    // SAFETY: the region lies inside the mps2-an386 code memory (always mapped and
    // readable), the linker keeps program and data out of it (memory.x), and nothing
    // writes it while the firmware runs: it is immutable for 'static.
    unsafe { core::slice::from_raw_parts(r.origin as *const u8, r.length as usize) }
}

/// Whether the semihosting command line (QEMU's `-semihosting-config arg=…`) holds
/// the word `flag`: `--dump-layers` asks for every layer's output (`microcnn diff`).
fn command_line_has(flag: &[u8]) -> bool {
    let mut text = [0u8; 128];
    // SYS_GET_CMDLINE fills `text` and sets the block's length to the bytes written.
    let mut block: [usize; 2] = [text.as_mut_ptr() as usize, text.len()];
    // SAFETY: SYS_GET_CMDLINE (0x15) takes the address of a two-word block (buffer,
    // length); QEMU writes at most `length` bytes into the buffer and the new length
    // into the block, both live and exclusively borrowed for the call.
    let status = unsafe { cortex_m_semihosting::syscall1(0x15, block.as_mut_ptr() as usize) };
    let len = block[1].min(text.len());
    status == 0 && text[..len].split(|&b| b == b' ').any(|word| word == flag)
}

/// Ends the QEMU run with `status` (semihosting `SYS_EXIT_EXTENDED`).
fn exit(status: u32) -> ! {
    // ADP_Stopped_ApplicationExit, then the status.
    let block: [u32; 2] = [0x20026, status];
    // SAFETY: SYS_EXIT_EXTENDED (0x20) with a two-word parameter block is the
    // semihosting call that stops QEMU with `status`; the block outlives the call.
    unsafe { cortex_m_semihosting::syscall(0x20, &block) };
    loop {
        cortex_m::asm::bkpt();
    }
}

#[entry]
fn main() -> ! {
    let Some(peripherals) = cortex_m::Peripherals::take() else { exit(1) };
    let mut clock = IcountClock::start(peripherals.SYST);
    let mut led = FpgaLed;
    let mut delay = SpinDelay;

    let Ok(model) = load_model(region(MAP.model)) else {
        signal_error(&mut led, &mut delay, 3, 1);
        exit(2)
    };
    let Some(arena) = cortex_m::singleton!(: [u8; ARENA_BYTES] = [0; ARENA_BYTES]) else { exit(1) };
    let mut net = match Interpreter::new(&model, arena) {
        Ok(net) => net,
        Err(error) => {
            defmt::error!("arena: {}", error);
            signal_error(&mut led, &mut delay, 4, 1);
            exit(4)
        }
    };
    let Some(buffer) = cortex_m::singleton!(: [u8; FRAME_BUFFER_BYTES] = [0; FRAME_BUFFER_BYTES]) else { exit(1) };
    if let Some(header) = microcnn_layout::session::Header::parse(region(MAP.frames)) {
        exit(learn::session(&mut net, &header, buffer, &mut clock));
    }
    let mut camera = match Replay::new(region(MAP.frames)) {
        Ok(camera) => camera,
        Err(error) => {
            defmt::error!("frames region: {}", error);
            exit(3)
        }
    };
    let mode = if command_line_has(b"--dump-layers") { Mode::DumpLayers } else { Mode::Classify };
    let end = run_loop(&mut net, &mut camera, buffer, &mut clock, &mut led, 0, None, mode);
    defmt::info!("done: {=u32} frames", end.frames);
    match end.camera_error {
        Some(ReplayError::Exhausted) if end.failed == 0 => exit(0),
        Some(ReplayError::Exhausted) => exit(5),
        Some(error) => {
            defmt::error!("camera: {}", error);
            exit(5)
        }
        None => exit(0),
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    exit(1)
}
