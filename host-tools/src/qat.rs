//! Quantization-aware fine-tuning: the folded network trains with its weights and
//! activations fake-quantized, i.e. rounded to the int8 grid they will have in the
//! blob with the core's own rounding (`quantize_f32_to_i8`: half away from zero,
//! saturating), and gradients passed straight through the rounding. Activation
//! ranges are those calibration measured; weight scales follow the weights
//! (`max|w|/127` per output channel) at every step.

use crate::dataset::Dataset;
use crate::nn::optim::{Kind, Optimizer};
use crate::nn::{cross_entropy, Layer, Mode, Network};
use crate::quantize::{calibrate, fold, quantize_weights, tensor_quant};
use anyhow::Result;
use microcnn_core::quant::quantize_f32_to_i8;
use rand::seq::SliceRandom;
use rand::SeedableRng;
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

/// Fine-tunes `net` (batch norm folded first) for `epochs` on `data` with fake
/// quantization and returns the folded, fine-tuned network.
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
    let quant = tensor_quant(&folded, &calibrate(&folded, calib));
    let last = folded.nodes.len() - 1;
    let softmax = folded.ends_in_softmax();
    let hook = |i: usize, out: &mut [f32]| {
        // The input is exact already; a softmax layer's output is probabilities.
        if i == 0 || (i == last && softmax) {
            return;
        }
        let (s, z) = quant[i];
        out.iter_mut().for_each(|v| *v = fake_quant(*v, s, z));
    };
    let mut opt = Optimizer::new(Kind::Adam, 0.0, &folded);
    let size = data.image_len();
    for epoch in 0..epochs {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5147_4154);
        rng.set_stream(epoch as u64);
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.shuffle(&mut rng);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for chunk in order.chunks(batch.max(1)) {
            let x: Vec<f32> = chunk.iter().flat_map(|&i| data.image(i).iter().copied()).collect();
            let labels: Vec<usize> = chunk.iter().map(|&i| data.labels[i]).collect();
            let shadow = fake_quant_weights(&folded);
            let trace = shadow.forward_with(&x, chunk.len(), Mode::Train, &mut rng, &hook);
            let (loss, ok, d) = cross_entropy(trace.output(), &labels, shadow.output_size(), softmax);
            let grads = shadow.backward(&trace, d);
            opt.apply(&mut folded, &grads, lr);
            loss_sum += f64::from(loss) * chunk.len() as f64;
            correct += ok;
        }
        let _ = size;
        eprintln!(
            "qat epoch {}/{epochs}  loss {:.4}  acc {:.4}",
            epoch + 1,
            loss_sum / data.len().max(1) as f64,
            correct as f64 / data.len().max(1) as f64
        );
    }
    Ok(folded)
}
