//! Runs samples through the int8 engine on the host, one at a time (batch 1), with
//! the bits the firmware computes: core's kernels, or the host kernels of
//! [`fast`](crate::inspect::fast) that give the same bits faster.

use crate::inspect::fast::{Kernels, Plan};
use anyhow::{bail, Result};
use microcnn_core::Model;
use rayon::prelude::*;

/// Runs every sample of `inputs` (concatenated, each `model.input().bytes()` long)
/// and returns the concatenated outputs, on the host kernels.
pub fn run_samples(model: &Model<'_>, inputs: &[i8]) -> Result<Vec<i8>> {
    run_samples_with(model, inputs, Kernels::Auto)
}

/// [`run_samples`] with the given kernels ([`Kernels::Core`]: core's alone).
pub fn run_samples_with(model: &Model<'_>, inputs: &[i8], kernels: Kernels) -> Result<Vec<i8>> {
    let sample = model.input().bytes();
    if sample == 0 || !inputs.len().is_multiple_of(sample) {
        bail!("input holds {} values, not a multiple of the model's input size {sample}", inputs.len());
    }
    let plan = Plan::with_kernels(model, kernels)?;
    let out_len = model.output().bytes();
    let count = inputs.len() / sample;
    // Chunks of samples run on the thread pool, each with its own runner (arena and
    // scratch), writing its own part of the output: the bytes do not depend on the
    // thread count. Every sample is still one invoke at batch 1.
    let mut outputs = vec![0_i8; count * out_len];
    const CHUNK: usize = 64;
    outputs.par_chunks_mut(CHUNK * out_len).zip(inputs.par_chunks(CHUNK * sample)).try_for_each(
        |(out, batch)| -> Result<()> {
            let mut runner = plan.runner();
            for (y, x) in out.chunks_exact_mut(out_len).zip(batch.chunks_exact(sample)) {
                y.copy_from_slice(runner.run(x)?);
            }
            Ok(())
        },
    )?;
    Ok(outputs)
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
