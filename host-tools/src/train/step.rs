//! One training step on a mini-batch: forward, cross-entropy, backward, one optimizer
//! update; with optional fake quantization (quantization-aware training).
//!
//! With fake quantization, the forward and backward passes run on a copy of the network
//! whose weights are rounded onto their per-channel int8 grid and whose activations are
//! rounded onto each node's `(scale, zero_point)` with the core's own rounding
//! ([`grid::fake_quant`]); gradients pass straight through the rounding and the update
//! goes to the f32 weights. Activation ranges are those calibration measured; weight
//! scales follow the weights (`max|w|/127` per output channel) at every step.

use crate::compile::grid::{self, Quant};
use crate::train::nn::optim::Optimizer;
use crate::train::nn::{cross_entropy, Layer, Mode, Network};
use rand_chacha::ChaCha8Rng;

/// A copy of `net` whose kernels are replaced by their per-channel int8 values.
pub fn fake_quant_weights(net: &Network) -> Network {
    let mut q = net.clone();
    for node in &mut q.nodes {
        if matches!(node.layer, Layer::Conv2d { .. } | Layer::Depthwise { .. } | Layer::Dense { .. }) {
            let channels = node.shape[2];
            let kernel = &mut node.params[0].data;
            let (ints, scales) = grid::quantize_weights(kernel, channels);
            for (k, (w, i)) in kernel.iter_mut().zip(ints).enumerate() {
                *w = f32::from(i) * scales[k % channels];
            }
        }
    }
    q
}

/// Trains `net` on one batch `x` (NHWC, `labels.len()` images) with learning rate
/// `lr`; `fake_quant` holds each node's int8 quantization for
/// quantization-aware training. Returns the batch's mean loss and correct count.
pub fn step(
    net: &mut Network,
    opt: &mut Optimizer,
    x: &[f32],
    labels: &[usize],
    lr: f32,
    fake_quant: Option<&[Quant]>,
    rng: &mut ChaCha8Rng,
) -> (f32, usize) {
    let softmax = net.ends_in_softmax();
    let Some(quant) = fake_quant else {
        let trace = net.forward(x, labels.len(), Mode::Train, rng);
        let (loss, ok, d) = cross_entropy(trace.output(), labels, net.output_size(), softmax);
        let grads = net.backward(&trace, d);
        opt.apply(net, &grads, lr);
        net.update_batch_stats(&trace);
        return (loss, ok);
    };
    let last = net.nodes.len() - 1;
    let hook = |i: usize, out: &mut [f32]| {
        // The input is exact already; a softmax layer's output is probabilities.
        if i == 0 || (i == last && softmax) {
            return;
        }
        out.iter_mut().for_each(|v| *v = grid::fake_quant(*v, quant[i]));
    };
    let shadow = fake_quant_weights(net);
    let trace = shadow.forward_with(x, labels.len(), Mode::Train, rng, &hook);
    let (loss, ok, d) = cross_entropy(trace.output(), labels, shadow.output_size(), softmax);
    let grads = shadow.backward(&trace, d);
    opt.apply(net, &grads, lr);
    (loss, ok)
}
