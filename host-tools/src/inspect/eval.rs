//! Accuracy on a dataset: on the integer engine for a `.mcnn` blob (the very code the
//! chip runs), or in f32 for a checkpoint directory.

use crate::data::dataset::Dataset;
use crate::inspect::run;
use anyhow::{bail, Result};
use microcnn_core::preprocess::InputQuantization;
use microcnn_core::{top_k, Model};
use serde::Serialize;

/// The input bytes the engine sees for each image: the 8-bit pixel (datasets hold the
/// one preprocessing's pixels as bytes), mapped to a real by
/// the blob's preprocessing record (`pixel · scale + offset`; `pixel / 255` without one)
/// and quantized with the input scale and zero point: the bytes `infer --image` and the
/// firmware compute from the same picture.
pub fn quantize_inputs(model: &Model<'_>, data: &Dataset) -> Result<Vec<i8>> {
    let input = model.input();
    let s = input.shape;
    if data.shape != [s.height, s.width, s.channels] {
        bail!("images are {:?}, the model takes {:?}", data.shape, [s.height, s.width, s.channels]);
    }
    let quant = InputQuantization::from_model(model);
    Ok(data.bytes().map(|v| quant.quantize(v)).collect())
}

/// Accuracy report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Correct / samples.
    pub accuracy: f64,
    /// Samples evaluated.
    pub samples: usize,
    /// Correct predictions.
    pub correct: usize,
    /// Class names.
    pub classes: Vec<String>,
    /// Accuracy per class; `None` (JSON `null`) for a class without samples.
    pub per_class_accuracy: Vec<Option<f64>>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    /// `int8` (integer engine) or `f32`.
    pub engine: String,
}

/// Builds a report from predictions.
pub fn report(predicted: &[usize], labels: &[usize], classes: &[String], engine: &str) -> Report {
    let k = classes.len();
    let mut confusion = vec![vec![0usize; k]; k];
    for (&p, &l) in predicted.iter().zip(labels) {
        if l < k && p < k {
            confusion[l][p] += 1;
        }
    }
    let correct = (0..k).map(|c| confusion[c][c]).sum();
    let per_class_accuracy = (0..k)
        .map(|c| {
            let total: usize = confusion[c].iter().sum();
            (total > 0).then(|| confusion[c][c] as f64 / total as f64)
        })
        .collect();
    Report {
        accuracy: correct as f64 / labels.len().max(1) as f64,
        samples: labels.len(),
        correct,
        classes: classes.to_vec(),
        per_class_accuracy,
        confusion,
        engine: engine.into(),
    }
}

/// Runs a blob over a dataset: int8 inputs, int8 outputs, predictions.
pub fn run_model(model: &Model<'_>, data: &Dataset) -> Result<(Vec<i8>, Vec<i8>, Vec<usize>)> {
    let inputs = quantize_inputs(model, data)?;
    let outputs = run::run_samples(model, &inputs)?;
    let k = model.output().bytes();
    // The top class, ties to the lower index: the firmware's own top-k.
    let predicted =
        outputs.chunks_exact(k).map(|row| top_k::<1>(row).first().map_or(0, |&(c, _)| usize::from(c))).collect();
    Ok((inputs, outputs, predicted))
}
