//! On-device learning run on the host: core's very learner (`microcnn_core::learn`)
//! with the firmware's capacities, so a head learned here is byte for byte the one the
//! chip learns from the same frames, and fits the chip.

use crate::data::dataset::Dataset;
use crate::inspect::eval;
use anyhow::{anyhow, bail, Result};
use microcnn_core::learn::{FeatureCut, Head, Learner, Method, SgdConfig};
use microcnn_core::{Interpreter, Model};

/// Classes the chip's learner holds (`firmware/app/src/learn.rs`).
pub const CLASSES: usize = 10;
/// Features it holds.
pub const FEATURES: usize = 64;
/// Replay samples it holds.
pub const SAMPLES: usize = 200;
/// The learner, with the chip's capacities.
pub type ChipLearner = Learner<CLASSES, FEATURES, SAMPLES>;

/// Checks what the chip's learner cannot take before anything runs: no classifier,
/// more classes than the capacity, an empty class, too many frames for the replay
/// buffer (SGD).
pub fn check(model: &Model<'_>, data: &Dataset, method: Method) -> Result<FeatureCut> {
    let cut = FeatureCut::find(model).map_err(|e| anyhow!("{e}"))?;
    if cut.len > FEATURES {
        bail!("the base model has {} features, the chip's learner holds at most {FEATURES}", cut.len);
    }
    if data.classes.len() > CLASSES {
        bail!("{} classes, the chip's learner holds at most {CLASSES}", data.classes.len());
    }
    if let Some(class) = data.class_counts().iter().position(|&n| n == 0) {
        bail!("class {:?} has no images", data.classes[class]);
    }
    if method == Method::Sgd && data.len() > SAMPLES {
        bail!("{} images, the chip's replay buffer holds at most {SAMPLES}", data.len());
    }
    Ok(cut)
}

/// Learns `data` on the features of `model`; returns the head's bytes.
pub fn learn(model: &Model<'_>, data: &Dataset, method: Method, config: &SgdConfig) -> Result<Vec<u8>> {
    let cut = check(model, data, method)?;
    let inputs = eval::quantize_inputs(model, data)?;
    let mut arena = vec![0u8; model.arena_size()];
    let mut net = Interpreter::new(model, &mut arena).map_err(|e| anyhow!("{e}"))?;
    let mut learner = Box::new(ChipLearner::EMPTY);
    learner.reset(method, &cut, model.checksum()).map_err(|e| anyhow!("{e}"))?;
    for (input, &label) in inputs.chunks_exact(model.input().bytes()).zip(&data.labels) {
        net.input_mut().copy_from_slice(input);
        let features = cut.extract(&mut net).map_err(|e| anyhow!("{e}"))?;
        learner.learn(label, features).map_err(|e| anyhow!("{e}"))?;
    }
    learner.train(config).map_err(|e| anyhow!("{e}"))?;
    let mut head = vec![0u8; learner.head_len()];
    learner.write_head(&mut head).map_err(|e| anyhow!("{e}"))?;
    Ok(head)
}

/// The class `head` gives each image of `data`.
pub fn classify(model: &Model<'_>, head: &[u8], data: &Dataset) -> Result<Vec<usize>> {
    let (head, cut) = Head::for_model(head, model).map_err(|e| anyhow!("{e}"))?;
    let inputs = eval::quantize_inputs(model, data)?;
    let mut arena = vec![0u8; model.arena_size()];
    let mut net = Interpreter::new(model, &mut arena).map_err(|e| anyhow!("{e}"))?;
    let mut scratch = vec![fixed::types::I16F16::ZERO; head.features()];
    let mut classes = Vec::with_capacity(data.len());
    for input in inputs.chunks_exact(model.input().bytes()) {
        net.input_mut().copy_from_slice(input);
        let features = cut.extract(&mut net).map_err(|e| anyhow!("{e}"))?;
        classes.push(head.classify_features(features, &mut scratch).0);
    }
    Ok(classes)
}
