//! Runs samples through `microcnn-core` on the host, one at a time (batch 1), exactly
//! as the firmware does.

use anyhow::{anyhow, bail, Result};
use microcnn_core::{Interpreter, Model};
use rayon::prelude::*;

/// Runs every sample of `inputs` (concatenated, each `model.input().bytes()` long)
/// and returns the concatenated outputs.
pub fn run_samples(model: &Model<'_>, inputs: &[i8]) -> Result<Vec<i8>> {
    let sample = model.input().bytes();
    if sample == 0 || !inputs.len().is_multiple_of(sample) {
        bail!("input holds {} values, not a multiple of the model's input size {sample}", inputs.len());
    }
    // Batches of samples run on the thread pool, each with its own arena and
    // interpreter; every sample is still one invoke at batch 1.
    let outputs: Vec<Vec<i8>> = inputs
        .par_chunks(sample * 256)
        .map(|batch| -> Result<Vec<i8>> {
            let mut arena = vec![0_u8; model.arena_size()];
            let mut net = Interpreter::new(model, &mut arena).map_err(|e| anyhow!("{e}"))?;
            let mut out = Vec::with_capacity(batch.len() / sample * model.output().bytes());
            for x in batch.chunks_exact(sample) {
                net.input_mut().copy_from_slice(x);
                net.invoke().map_err(|e| anyhow!("{e}"))?;
                out.extend_from_slice(net.output());
            }
            Ok(out)
        })
        .collect::<Result<_>>()?;
    Ok(outputs.concat())
}

/// The output shape of one sample: as the source model gave it if the blob records
/// it, else `[C]` for vectors and `[H, W, C]` otherwise.
pub fn sample_output_shape(model: &Model<'_>) -> Vec<usize> {
    if let Some(dims) = model.output_dims() {
        return dims.to_vec();
    }
    let s = model.output().shape;
    if s.height == 1 && s.width == 1 {
        vec![s.channels]
    } else {
        vec![s.height, s.width, s.channels]
    }
}
