//! On-device learning for every firmware target: features from the frozen network,
//! the learner of `microcnn_core::learn`, the learned head kept in flash.
//!
//! defmt lines (a contract: the host's tests and `microcnn learn --on qemu` read them):
//!
//! | level | line |
//! | --- | --- |
//! | info | `learner: {bytes} B RAM, {classes} classes x {features} features, {samples} replay samples` |
//! | info | `learn {n}: class {c}, {cost} {unit}` (features + update of one frame) |
//! | info | `train: {epochs} epochs over {samples} samples, {cost} {unit}` |
//! | info | `head {len}: {bytes}` (the head's bytes as `u8`) |
//! | info | `saved: sequence {s}` |
//! | info | `invoke: {cost} {unit}` (one whole inference of the base, for comparison) |
//! | info | `predict {n}: class {c} score {bits} {cost} {unit}` (Q16.16 score bits) |
//! | error | `learn: {error}` |

use crate::{fill_input, Clock, FrameError};
use embedded_storage::nor_flash::NorFlash;
use fixed::types::I16F16;
use microcnn_camera::Camera;
use microcnn_core::learn::store::Store;
use microcnn_core::learn::{FeatureCut, Head, LearnError, Learner, Method, SgdConfig};
use microcnn_core::preprocess::InputQuantization;
use microcnn_core::Interpreter;

/// Classes the firmware learner holds.
pub const CLASSES: usize = 10;
/// Features it holds (the zoo bases have 32).
pub const FEATURES: usize = 64;
/// Replay samples (20 per class).
pub const SAMPLES: usize = 200;
/// The firmware's learner.
pub type FirmwareLearner = Learner<CLASSES, FEATURES, SAMPLES>;
/// The largest head it writes.
pub const HEAD_BYTES: usize = microcnn_core::learn::head::len(CLASSES, FEATURES);

/// Why a learning session stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum SessionError {
    /// Learning, the head or the flash.
    Learn(LearnError),
    /// A frame could not be put into the model's input.
    Frame(FrameError),
    /// The camera ran out of frames or failed.
    Camera,
}

impl From<LearnError> for SessionError {
    fn from(e: LearnError) -> Self {
        SessionError::Learn(e)
    }
}

/// Resets `learner` (a static the caller owns) for `net`'s model and logs its size.
pub fn start(
    net: &Interpreter<'_, '_>,
    method: Method,
    learner: &mut FirmwareLearner,
) -> Result<FeatureCut, SessionError> {
    let model = net.model();
    let cut = FeatureCut::find(model)?;
    learner.reset(method, &cut, model.checksum())?;
    defmt::info!(
        "learner: {=usize} B RAM, {=usize} classes x {=usize} features, {=usize} replay samples",
        FirmwareLearner::RAM_BYTES,
        CLASSES,
        FEATURES,
        SAMPLES
    );
    Ok(cut)
}

/// Captures one frame from `camera` into the model's input.
pub fn capture<C: Camera>(
    net: &mut Interpreter<'_, '_>,
    camera: &mut C,
    buffer: &mut [u8],
    quant: &InputQuantization,
) -> Result<(), SessionError> {
    let format = camera.format();
    let frame = camera.capture(buffer).map_err(|_| SessionError::Camera)?;
    fill_input(net, quant, format, frame).map_err(SessionError::Frame)
}

/// Learns the frame in `net`'s input as `label`; logs and returns the cost
/// (features + update).
pub fn learn_frame<K: Clock>(
    net: &mut Interpreter<'_, '_>,
    cut: &FeatureCut,
    learner: &mut FirmwareLearner,
    label: usize,
    clock: &mut K,
    n: u32,
) -> Result<u64, SessionError> {
    let begin = clock.now();
    let features = cut.extract(net)?;
    learner.learn(label, features)?;
    let end = clock.now();
    let cost = clock.elapsed(begin, end);
    defmt::info!("learn {=u32}: class {=usize}, {=u64} {=str}", n, label, cost, K::UNIT);
    Ok(cost)
}

/// Trains (SGD; nothing for prototypes), writes the head into `head`, logs it, saves
/// it through `store` and returns its length.
pub fn finish<K: Clock, F: NorFlash>(
    learner: &mut FirmwareLearner,
    config: &SgdConfig,
    clock: &mut K,
    flash: &mut F,
    store: &Store,
    head: &mut [u8],
) -> Result<usize, SessionError> {
    let begin = clock.now();
    learner.train(config)?;
    let end = clock.now();
    let cost = clock.elapsed(begin, end);
    let samples: usize = learner.counts().iter().map(|&n| usize::from(n)).sum();
    let epochs = if learner.method() == Method::Sgd { config.epochs } else { 0 };
    defmt::info!("train: {=u16} epochs over {=usize} samples, {=u64} {=str}", epochs, samples, cost, K::UNIT);
    let len = learner.write_head(head)?;
    let bytes = head.get(..len).unwrap_or(&[]);
    defmt::info!("head {=usize}: {=[u8]}", len, bytes);
    let sequence = store.save(flash, bytes)?;
    defmt::info!("saved: sequence {=u32}", sequence);
    Ok(len)
}

/// Classifies the frame in `net`'s input with `head`; logs and returns the class.
pub fn predict<K: Clock>(
    net: &mut Interpreter<'_, '_>,
    cut: &FeatureCut,
    head: &Head<'_>,
    clock: &mut K,
    n: u32,
) -> Result<usize, SessionError> {
    let begin = clock.now();
    let features = cut.extract(net)?;
    let mut scratch = [I16F16::ZERO; FEATURES];
    let (class, score) = head.classify_features(features, &mut scratch);
    let end = clock.now();
    let cost = clock.elapsed(begin, end);
    defmt::info!("predict {=u32}: class {=usize} score {=i32} {=u64} {=str}", n, class, score.to_bits(), cost, K::UNIT);
    Ok(class)
}
