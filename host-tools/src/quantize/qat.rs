//! Quantization-aware training: the folded network trains on with its weights and
//! activations fake-quantized, i.e. rounded to the int8 grid they will have in the
//! blob (the step is [`crate::train::step`] with fake quantization; the grid is
//! [`crate::compile::grid`]'s). Activation ranges are those calibration measured.

use crate::data::augment::AugmentConfig;
use crate::data::dataset::Dataset;
use crate::quantize::ptq::{calibrate, fold, tensor_quant};
use crate::train::fit;
use crate::train::nn::optim::{Kind, Optimizer};
use crate::train::nn::Network;
use anyhow::{bail, Result};

/// Trains `net` further (batch norm folded first) for `epochs` on `data` with fake
/// quantization (the training loop of [`fit::train_epoch`], its shuffling and
/// seeding) and returns the folded, quantization-aware trained network.
pub fn fit(
    net: &Network,
    data: &Dataset,
    epochs: usize,
    lr: f32,
    batch: usize,
    seed: u64,
    calib: &Dataset,
) -> Result<Network> {
    if !(lr.is_finite() && lr > 0.0) {
        bail!("--qat-lr {lr:?}: the learning rate must be a positive, finite number");
    }
    let mut folded = fold(net)?;
    let cfg = fit::Config {
        epochs,
        batch,
        lr,
        seed,
        patience: None,
        augment: AugmentConfig::default(),
        progress: false,
        fake_quant: Some(tensor_quant(&folded, &calibrate(&folded, calib))),
        phase: 1,
    };
    cfg.check()?;
    let mut opt = Optimizer::new(Kind::Adam, 0.0, &folded);
    for epoch in 1..=epochs {
        let (loss, accuracy) = fit::train_epoch(&mut folded, &mut opt, data, &cfg, epoch, None)?;
        eprintln!("qat epoch {epoch}/{epochs}  loss {loss:.4}  acc {accuracy:.4}");
    }
    Ok(folded)
}
