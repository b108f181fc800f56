//! # microcnn-app
//!
//! The classification loop every firmware target runs:
//!
//! ```text
//! model region ──Model::from_bytes (CRC, version)──► Interpreter (static arena)
//! Camera::capture ─► preprocess (crop, resize, quantize) ─► invoke ─► top-k ─► defmt + LED
//! ```
//!
//! The defmt lines are a contract (the host's `microcnn infer --on qemu` reads them):
//!
//! | level | line |
//! | --- | --- |
//! | info | `frame {n}: {label} score {score} (class {k})` |
//! | debug | `output {n}: {bytes}`: the output tensor's int8 bytes as `u8` |
//! | debug | `layer {n} {op} {KIND}: {count} {unit}` |
//! | debug | `invoke {n}: {count} {unit}` |
//! | debug | `tensor {n} {op}: {bytes}`: operator `op`'s output tensor, in layer-dump mode |
//! | info | `done: {n} frames` |
//! | error | `model region: {error}` (then no frame is classified) |
//!
//! `unit` is the [`Clock`]'s: `instructions` under QEMU (SysTick with `-icount`),
//! `cycles` on a board (DWT `CYCCNT`).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod learn;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use microcnn_camera::{Camera, FrameFormat, PixelFormat};
use microcnn_core::preprocess::{self, Crop, Image, InputQuantization, PreprocessError};
use microcnn_core::{Error, Interpreter, Model, Phase};

/// The most operators whose cost is kept per invoke.
pub const MAX_LAYERS: usize = 64;

/// A monotonic counter for per-layer costs.
pub trait Clock {
    /// What one unit of [`elapsed`](Self::elapsed) is (`"cycles"`, `"instructions"`).
    const UNIT: &'static str;
    /// The raw counter now.
    fn now(&mut self) -> u64;
    /// Units between two raw readings.
    fn elapsed(&self, start: u64, end: u64) -> u64;
}

/// Validates the model region. On failure, logs a defmt error and returns it: the
/// caller must not classify (see [`signal_error`]).
pub fn load_model(region: &[u8]) -> Result<Model<'_>, Error> {
    match Model::from_bytes(region) {
        Ok(model) => {
            defmt::info!(
                "model {=str}: {=usize} operators, arena {=usize} B, blob {=usize} B",
                model.name().unwrap_or("(unnamed)"),
                model.op_count(),
                model.arena_size(),
                model.as_bytes().len()
            );
            Ok(model)
        }
        Err(error) => {
            defmt::error!("model region: {}", error);
            Err(error)
        }
    }
}

/// Blinks `flashes` short flashes then a pause, `rounds` times: the "no valid model"
/// pattern is 3 flashes, a camera fault 2.
pub fn signal_error<L: OutputPin, D: DelayNs>(led: &mut L, delay: &mut D, flashes: u32, rounds: u32) {
    for _ in 0..rounds {
        for _ in 0..flashes {
            let _ = led.set_high();
            delay.delay_ms(150);
            let _ = led.set_low();
            delay.delay_ms(150);
        }
        delay.delay_ms(600);
    }
}

/// Why a frame was not classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum FrameError {
    /// The frame does not fit the model (size, channels, crop).
    Preprocess(PreprocessError),
    /// An `Int8Tensor` frame's length differs from the model input's.
    WrongLength {
        /// Bytes of the model's input.
        expected: usize,
        /// Bytes of the frame.
        found: usize,
    },
    /// The interpreter refused (cannot happen on a model that loaded).
    Engine(Error),
}

/// The result of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classification {
    /// Best class.
    pub class: u16,
    /// Its int8 score.
    pub score: i8,
    /// Clock units the whole invoke took.
    pub invoke_cost: u64,
}

/// Puts `frame` into the model's input: copies an `Int8Tensor` frame, otherwise
/// crops (centred, the input's aspect ratio), resizes and quantizes it.
pub fn fill_input(
    net: &mut Interpreter<'_, '_>,
    quant: &InputQuantization,
    format: FrameFormat,
    frame: &[u8],
) -> Result<(), FrameError> {
    let input = net.input_mut();
    let pixels = match format.pixels {
        PixelFormat::Int8Tensor => {
            if frame.len() != input.len() {
                return Err(FrameError::WrongLength { expected: input.len(), found: frame.len() });
            }
            input.copy_from_slice(bytemuck::cast_slice(frame));
            return Ok(());
        }
        PixelFormat::Gray8 => preprocess::PixelFormat::Gray8,
        PixelFormat::Rgb565Be => preprocess::PixelFormat::Rgb565Be,
        PixelFormat::Rgb888 => preprocess::PixelFormat::Rgb888,
    };
    let image = Image::new(frame, usize::from(format.width), usize::from(format.height), pixels)
        .map_err(FrameError::Preprocess)?;
    let crop = Crop::centered(&image, quant.width, quant.height);
    preprocess::preprocess(&image, crop, quant, input).map_err(FrameError::Preprocess)
}

/// Runs one frame that [`fill_input`] put in: invoke with per-layer costs, top-k,
/// and the defmt lines of the module contract.
pub fn classify<K: Clock>(
    net: &mut Interpreter<'_, '_>,
    clock: &mut K,
    frame: u32,
) -> Result<Classification, FrameError> {
    let mut starts = [0u64; MAX_LAYERS];
    let mut costs = [0u64; MAX_LAYERS];
    let begin = clock.now();
    net.invoke_with(|index, phase| {
        if index < MAX_LAYERS {
            match phase {
                Phase::Start => starts[index] = clock.now(),
                Phase::End => costs[index] = clock.now(),
            }
        }
    })
    .map_err(FrameError::Engine)?;
    let end = clock.now();
    let model = net.model();
    for (index, (&start, &stop)) in starts.iter().zip(costs.iter()).take(model.op_count()).enumerate() {
        let kind = model.operator(index).map(|op| op.kind.name()).unwrap_or("?");
        defmt::debug!(
            "layer {=u32} {=usize} {=str}: {=u64} {=str}",
            frame,
            index,
            kind,
            clock.elapsed(start, stop),
            K::UNIT
        );
    }
    let invoke_cost = clock.elapsed(begin, end);
    defmt::debug!("invoke {=u32}: {=u64} {=str}", frame, invoke_cost, K::UNIT);
    let output = net.output();
    defmt::debug!("output {=u32}: {=[u8]}", frame, bytemuck::cast_slice::<i8, u8>(output));
    let best: heapless::Vec<(u16, i8), 3> = net.top_k();
    let (class, score) = best.first().copied().unwrap_or((0, i8::MIN));
    let out = model.output();
    let real = (f32::from(score) - out.zero_point as f32) * out.scale;
    let label = model.label(usize::from(class)).unwrap_or("?");
    defmt::info!("frame {=u32}: {=str} score {=f32} (class {=u16})", frame, label, real, class);
    Ok(Classification { class, score, invoke_cost })
}

/// Runs the frame that [`fill_input`] put in operator by operator and logs every
/// operator's output tensor (`tensor {n} {op}: {bytes}`), then the `output` line: the
/// device half of `microcnn diff`. Costs are not logged (logging would distort them).
pub fn dump_layers(net: &mut Interpreter<'_, '_>, frame: u32) -> Result<(), FrameError> {
    let model = net.model();
    for index in 0..model.op_count() {
        net.invoke_op(index).map_err(FrameError::Engine)?;
        let operator = model.operator(index).map_err(FrameError::Engine)?;
        let info = model.tensor(operator.output).map_err(FrameError::Engine)?;
        let bytes = bytemuck::cast_slice::<i8, u8>(net.tensor_data(&info));
        defmt::debug!("tensor {=u32} {=usize}: {=[u8]}", frame, index, bytes);
    }
    defmt::debug!("output {=u32}: {=[u8]}", frame, bytemuck::cast_slice::<i8, u8>(net.output()));
    Ok(())
}

/// What [`run_loop`] does with each frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Classify it ([`classify`]).
    Classify,
    /// Log every layer's output ([`dump_layers`]).
    DumpLayers,
}

/// How [`run_loop`] ended.
#[derive(Debug)]
pub struct LoopEnd<E> {
    /// Frames captured.
    pub frames: u32,
    /// Frames that could not be classified (logged at error level).
    pub failed: u32,
    /// The camera's error, if it stopped the loop.
    pub camera_error: Option<E>,
}

/// Captures, preprocesses and classifies frames (or dumps their layers, see [`Mode`])
/// until the camera fails or `max_frames` were captured; lights `led` while the best
/// class is `led_class`.
#[allow(clippy::too_many_arguments)]
pub fn run_loop<C: Camera, K: Clock, L: OutputPin>(
    net: &mut Interpreter<'_, '_>,
    camera: &mut C,
    buffer: &mut [u8],
    clock: &mut K,
    led: &mut L,
    led_class: u16,
    max_frames: Option<u32>,
    mode: Mode,
) -> LoopEnd<C::Error> {
    let quant = InputQuantization::from_model(net.model());
    let format = camera.format();
    let mut done = 0u32;
    let mut failed = 0u32;
    while max_frames.is_none_or(|max| done < max) {
        let frame = match camera.capture(buffer) {
            Ok(frame) => frame,
            Err(error) => return LoopEnd { frames: done, failed, camera_error: Some(error) },
        };
        let result = fill_input(net, &quant, format, frame).and_then(|()| match mode {
            Mode::Classify => classify(net, clock, done).map(Some),
            Mode::DumpLayers => dump_layers(net, done).map(|()| None),
        });
        match result {
            Ok(Some(c)) => {
                let _ = if c.class == led_class { led.set_high() } else { led.set_low() };
            }
            Ok(None) => {}
            Err(error) => {
                defmt::error!("frame {=u32}: {}", done, error);
                failed += 1;
            }
        }
        done += 1;
    }
    LoopEnd { frames: done, failed, camera_error: None }
}
