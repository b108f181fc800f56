//! Quantization-aware fine-tuning: the folded network trains with its weights and
//! activations fake-quantized, i.e. rounded to the int8 grid they will have in the
//! blob with the core's own rounding (`quantize_f32_to_i8`: half away from zero,
//! saturating), and gradients passed straight through the rounding. Activation
//! ranges are those calibration measured; weight scales follow the weights
//! (`max|w|/127` per output channel) at every step.

use crate::augment::AugmentConfig;
use crate::dataset::Dataset;
use crate::nn::optim::{Kind, Optimizer};
use crate::nn::{cross_entropy, Layer, Mode, Network};
use crate::quantize::{calibrate, fold, quantize_weights, tensor_quant};
use crate::train;
use anyhow::Result;
use microcnn_core::quant::quantize_f32_to_i8;
use rand_chacha::ChaCha8Rng;

/// `value` rounded onto the int8 grid of `(scale, zero_point)`, back in reals.
pub fn fake_quant(value: f32, scale: f32, zero_point: i32) -> f32 {
    (i32::from(quantize_f32_to_i8(value, scale, zero_point)) - zero_point) as f32 * scale
}

/// A copy of `net` whose kernels are replaced by their per-channel int8 values.
pub fn fake_quant_weights(net: &Network) -> Network {
    let mut q = net.clone();
    for node in &mut q.nodes {
        if matches!(node.layer, Layer::Conv2d { .. } | Layer::Depthwise { .. } | Layer::Dense { .. }) {
            let channels = node.shape[2];
            let kernel = &mut node.params[0].data;
            let (ints, scales) = quantize_weights(kernel, channels);
            for (k, (w, i)) in kernel.iter_mut().zip(ints).enumerate() {
                *w = f32::from(i) * scales[k % channels];
            }
        }
    }
    q
}

/// One training step with fake quantization: the forward and backward passes run on a
/// copy with int8-grid weights and activations (straight-through gradients), and the
/// update goes to the f32 weights of `net`. Returns the batch's loss and correct count.
pub fn step(
    net: &mut Network,
    opt: &mut Optimizer,
    quant: &[(f32, i32)],
    x: &[f32],
    labels: &[usize],
    lr: f32,
    rng: &mut ChaCha8Rng,
) -> (f32, usize) {
    let last = net.nodes.len() - 1;
    let softmax = net.ends_in_softmax();
    let hook = |i: usize, out: &mut [f32]| {
        // The input is exact already; a softmax layer's output is probabilities.
        if i == 0 || (i == last && softmax) {
            return;
        }
        let (s, z) = quant[i];
        out.iter_mut().for_each(|v| *v = fake_quant(*v, s, z));
    };
    let shadow = fake_quant_weights(net);
    let trace = shadow.forward_with(x, labels.len(), Mode::Train, rng, &hook);
    let (loss, ok, d) = cross_entropy(trace.output(), labels, shadow.output_size(), softmax);
    let grads = shadow.backward(&trace, d);
    opt.apply(net, &grads, lr);
    (loss, ok)
}

/// Fine-tunes `net` (batch norm folded first) for `epochs` on `data` with fake
/// quantization (the training loop of [`train::train_epoch`], its shuffling and
/// seeding) and returns the folded, fine-tuned network.
pub fn finetune(
    net: &Network,
    data: &Dataset,
    epochs: usize,
    lr: f32,
    batch: usize,
    seed: u64,
    calib: &Dataset,
) -> Result<Network> {
    let mut folded = fold(net)?;
    let cfg = train::Config {
        epochs,
        batch,
        lr,
        seed,
        patience: None,
        augment: AugmentConfig::default(),
        progress: false,
        fake_quant: Some(tensor_quant(&folded, &calibrate(&folded, calib))),
    };
    cfg.check()?;
    let mut opt = Optimizer::new(Kind::Adam, 0.0, &folded);
    for epoch in 1..=epochs {
        let (loss, accuracy) = train::train_epoch(&mut folded, &mut opt, data, &cfg, epoch, None);
        eprintln!("qat epoch {epoch}/{epochs}  loss {loss:.4}  acc {accuracy:.4}");
    }
    Ok(folded)
}
