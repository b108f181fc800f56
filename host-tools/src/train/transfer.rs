//! Transfer learning from a pretrained base: feature extraction (the convolutional
//! base frozen, a new classifier head trained on its features), fine-tuning (then the
//! top N base layers unfrozen and trained with the head at a lower learning rate;
//! frozen batch-norm layers stay in inference mode), or the same network from scratch
//! for comparison.
//!
//! The convolutional base is the base network's top-level layers up to its classifier
//! (the trailing flatten / global_avgpool / dense / dropout layers). The new network
//! is an ordinary architecture (base layers + head), so the result is a normal
//! checkpoint.

use crate::data::dataset::Dataset;
use crate::train::arch::{Act, Arch, LayerSpec};
use crate::train::nn::{Layer, Mode as Pass, Network};
use anyhow::{bail, Result};
use clap::ValueEnum;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// How the base is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Base frozen; only the new head trains.
    FeatureExtraction,
    /// Head first (base frozen), then the top N base layers with the head.
    FineTuning,
    /// The same network with random weights, trained on the data alone.
    Scratch,
}

/// Number of top-level layers in the convolutional base of `arch`.
pub fn base_depth(arch: &Arch) -> usize {
    let is_head = |l: &LayerSpec| {
        matches!(
            l,
            LayerSpec::Flatten {} | LayerSpec::GlobalAvgpool {} | LayerSpec::Dense { .. } | LayerSpec::Dropout { .. }
        )
    };
    arch.layer.len() - arch.layer.iter().rev().take_while(|l| is_head(l)).count()
}

/// Parses a head: comma-separated `gap` | `flatten` (first), `dense:UNITS[:relu|relu6|none]`,
/// `dropout:RATE`; the softmax classifier over the classes is appended.
pub fn parse_head(spec: &str, classes: usize) -> Result<Vec<LayerSpec>> {
    let mut layers = Vec::new();
    for (i, part) in spec.split(',').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
        let fields: Vec<&str> = part.split(':').collect();
        let bad =
            || anyhow::anyhow!("--head {spec}: `{part}` is not gap, flatten, dense:UNITS[:ACTIVATION] or dropout:RATE");
        let layer = match fields.as_slice() {
            ["gap"] | ["global_avgpool"] if i == 0 => LayerSpec::GlobalAvgpool {},
            ["flatten"] if i == 0 => LayerSpec::Flatten {},
            ["dense", units, rest @ ..] if i > 0 && rest.len() <= 1 => {
                let units: usize = units.parse().ok().filter(|&u| u > 0).ok_or_else(bad)?;
                let activation = match rest.first().copied().unwrap_or("relu") {
                    "relu" => Act::Relu,
                    "relu6" => Act::Relu6,
                    "none" | "linear" => Act::None,
                    _ => return Err(bad()),
                };
                LayerSpec::Dense { units, activation, use_bias: true }
            }
            ["dropout", rate] if i > 0 => {
                let rate: f32 = rate.parse().ok().filter(|r| (0.0..1.0).contains(r)).ok_or_else(bad)?;
                LayerSpec::Dropout { rate }
            }
            _ if i == 0 => bail!("--head {spec}: must start with gap or flatten"),
            _ => return Err(bad()),
        };
        layers.push(layer);
    }
    if layers.is_empty() {
        bail!("--head is empty; use for example gap or gap,dense:32,dropout:0.2");
    }
    layers.push(LayerSpec::Dense { units: classes, activation: Act::Softmax, use_bias: true });
    Ok(layers)
}

/// The top-level layer (1-based) a node belongs to, from its name (`layer3.b1.2` → 3).
pub fn top_level(name: &str) -> usize {
    name.strip_prefix("layer").and_then(|r| r.split('.').next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Builds the transfer network: the base's first `layers` top-level layers (all of its
/// convolutional base, [`base_depth`], or fewer: [`stage_cut`]), with the base's weights
/// unless `scratch`, and a new head for `classes`.
pub fn build(base: &Network, layers: usize, head: &str, classes: usize, scratch: bool, seed: u64) -> Result<Network> {
    check_layers(base, layers)?;
    let mut layer = base.arch.layer[..layers].to_vec();
    layer.extend(parse_head(head, classes)?);
    let name = base.arch.name.clone().map(|n| format!("{n}-transfer"));
    let arch = Arch { name, input: base.arch.input, layer };
    let mut net = Network::new(&arch, seed)?;
    if !scratch {
        for node in net.nodes.iter_mut().filter(|n| (1..=layers).contains(&top_level(&n.name))) {
            let Some(src) = base.nodes.iter().find(|b| b.name == node.name) else {
                bail!("internal error: base node {} missing", node.name);
            };
            for (p, q) in node.params.iter_mut().zip(&src.params) {
                p.data.clone_from(&q.data);
            }
        }
    }
    Ok(net)
}

/// Inputs of the first dense layer of the head on `net`'s first `layers` top-level
/// layers ([`build`]): the base's channels after global average pooling, all of its
/// output values after flattening; 0 when the head has no dense layer.
pub fn head_inputs(net: &Network, layers: usize) -> usize {
    net.nodes
        .iter()
        .find(|n| top_level(&n.name) > layers && n.layer.kind() == "dense")
        .and_then(|n| n.inputs.first())
        .map_or(0, |&i| net.nodes[i].size())
}

/// Checks that `layers` (`--base-layers`) is a number of the base's layers to keep: 1 to
/// [`base_depth`].
pub fn check_layers(base: &Network, layers: usize) -> Result<()> {
    let depth = base_depth(&base.arch);
    if depth == 0 {
        bail!("the base has no convolutional layers to transfer");
    }
    if !(1..=depth).contains(&layers) {
        bail!("--base-layers {layers}: the base has {depth} layers; choose 1 to {depth}");
    }
    Ok(())
}

/// The base without its last width stage: how many top-level layers are left when the
/// top ones whose output has as many channels as the base's output are dropped (VGG's
/// last convolution block with its pooling, ResNet's last residual stage). Earlier
/// layers compute more general features (Yosinski et al., "How transferable are
/// features in deep neural networks?", 2014), which can serve a task far from the
/// base's pictures better. `None` when no layer with weights would be left.
pub fn stage_cut(base: &Network) -> Option<usize> {
    let channels = |k: usize| base.nodes.iter().rev().find(|n| top_level(&n.name) == k).map(|n| n.shape[2]);
    let depth = base_depth(&base.arch);
    let last = channels(depth)?;
    let keep = (1..depth).rev().find(|&k| channels(k) != Some(last))?;
    let weighted = base.nodes.iter().any(|n| (1..=keep).contains(&top_level(&n.name)) && !n.params.is_empty());
    weighted.then_some(keep)
}

/// Freezes the base's layers except the top `unfrozen` ones (0 freezes the whole
/// base). Batch norm anywhere in the base stays in inference mode, unfrozen or not.
pub fn freeze_base(net: &mut Network, depth: usize, unfrozen: usize) {
    for node in &mut net.nodes {
        let k = top_level(&node.name);
        node.frozen = (1..=depth.saturating_sub(unfrozen)).contains(&k);
        node.bn_inference = (1..=depth).contains(&k);
    }
}

/// Re-estimates the moving mean and variance of the base's batch-norm layers (in
/// top-level layers 1..=`depth`) on `data`, each layer in turn with the ones before it
/// already re-estimated, so that on the new pictures every one of them normalises its
/// input as it did on the pictures the base was trained on (AdaBN: Li et al., "Revisiting
/// batch normalization for practical domain adaptation", 2016). Statistics over every
/// image and pixel (the population variance); no weight, `gamma` or `beta` changes.
pub fn adapt_batchnorm(net: &mut Network, depth: usize, data: &Dataset) {
    adapt_batchnorm_with(net, depth, data, Passes::CutAtEachInput);
}

/// How [`adapt_batchnorm_with`] computes a batch norm's input.
#[derive(Clone, Copy)]
enum Passes {
    /// Only the nodes up to the input: nodes run in execution order, so they are a
    /// network of their own computing it (with the batch norms before it already
    /// re-estimated).
    CutAtEachInput,
    /// The whole network, as first written; the tests' reference.
    #[cfg(test)]
    Whole,
}

fn adapt_batchnorm_with(net: &mut Network, depth: usize, data: &Dataset, passes: Passes) {
    let layers: Vec<usize> = (0..net.nodes.len())
        .filter(|&i| {
            let node = &net.nodes[i];
            matches!(node.layer, Layer::BatchNorm { .. }) && (1..=depth).contains(&top_level(&node.name))
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for &i in &layers {
        let src = net.nodes[i].inputs[0];
        let c = net.nodes[src].shape[2];
        // The nodes after the input set aside (moved, not copied) while the passes run.
        let rest = match passes {
            Passes::CutAtEachInput => net.nodes.split_off(src + 1),
            #[cfg(test)]
            Passes::Whole => Vec::new(),
        };
        let (mut sum, mut squares, mut count) = (vec![0f64; c], vec![0f64; c], 0usize);
        for start in (0..data.len()).step_by(ADAPT_CHUNK) {
            let end = (start + ADAPT_CHUNK).min(data.len());
            let trace = net.forward(&data.range_unit(start..end), end - start, Pass::Infer, &mut rng);
            for pixel in trace.outputs[src].chunks_exact(c) {
                for ((s, q), &v) in sum.iter_mut().zip(&mut squares).zip(pixel) {
                    *s += f64::from(v);
                    *q += f64::from(v) * f64::from(v);
                }
            }
            count += (end - start) * net.nodes[src].shape[0] * net.nodes[src].shape[1];
        }
        net.nodes.extend(rest);
        if count == 0 {
            return;
        }
        let n = count as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let var: Vec<f32> = squares.iter().zip(&sum).map(|(q, s)| (q / n - (s / n).powi(2)).max(0.0) as f32).collect();
        let node = &mut net.nodes[i];
        for (name, stat) in [("moving_mean", mean), ("moving_variance", var)] {
            if let Some(p) = node.params.iter_mut().find(|p| p.name == name) {
                p.data = stat;
            }
        }
    }
}

/// Images per forward pass of [`adapt_batchnorm`].
const ADAPT_CHUNK: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    /// Two convolutions, each followed by a batch norm without activation, then a head.
    const ARCH: &str = r#"
input = [6, 6, 2]
[[layer]]
type = "conv2d"
filters = 3
kernel = 3
padding = "same"
[[layer]]
type = "batchnorm"
[[layer]]
type = "conv2d"
filters = 4
kernel = 3
padding = "same"
[[layer]]
type = "batchnorm"
[[layer]]
type = "global_avgpool"
[[layer]]
type = "dense"
units = 2
activation = "softmax"
"#;

    /// A stem, then two residual blocks (batch norms inside branches, the second with a
    /// stride-2 projection shortcut to 4 channels).
    const RESNET: &str = r#"
input = [6, 6, 2]
[[layer]]
type = "conv2d"
filters = 3
kernel = 3
padding = "same"
[[layer]]
type = "batchnorm"
activation = "relu"
[[layer]]
type = "residual"
shortcut = "auto"
activation = "relu"
[[layer.layer]]
type = "conv2d"
filters = 3
kernel = 3
padding = "same"
[[layer.layer]]
type = "batchnorm"
activation = "relu"
[[layer.layer]]
type = "conv2d"
filters = 3
kernel = 3
padding = "same"
[[layer.layer]]
type = "batchnorm"
[[layer]]
type = "residual"
shortcut = "auto"
activation = "relu"
[[layer.layer]]
type = "conv2d"
filters = 4
kernel = 3
strides = 2
padding = "same"
[[layer.layer]]
type = "batchnorm"
[[layer]]
type = "global_avgpool"
[[layer]]
type = "dense"
units = 2
activation = "softmax"
"#;

    /// 70 images (more than one forward chunk), bright and off-centre.
    fn data() -> Dataset {
        data_from(5)
    }

    /// [`data`]'s kind of images, drawn from `seed`.
    fn data_from(seed: u64) -> Dataset {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let images = (0..70 * 72).map(|_| rand::Rng::random_range(&mut rng, 120..250)).collect();
        Dataset::new([6, 6, 2], images, (0..70).map(|i| i % 2).collect(), vec!["a".into(), "b".into()])
    }

    /// Per-channel mean and population variance of every batch-norm layer's output in
    /// inference mode (gamma 1 and beta 0: the normalised input itself).
    fn normalised(net: &Network, data: &Dataset) -> Vec<Vec<(f64, f64)>> {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let trace = net.forward(&data.to_unit(), data.len(), Pass::Infer, &mut rng);
        let bns = net.nodes.iter().enumerate().filter(|(_, n)| matches!(n.layer, Layer::BatchNorm { .. }));
        bns.map(|(i, n)| {
            let c = n.shape[2];
            let out = &trace.outputs[i];
            let count = (out.len() / c) as f64;
            (0..c)
                .map(|k| {
                    let vals = out.iter().skip(k).step_by(c).map(|&v| f64::from(v));
                    let mean = vals.clone().sum::<f64>() / count;
                    (mean, vals.map(|v| (v - mean).powi(2)).sum::<f64>() / count)
                })
                .collect()
        })
        .collect()
    }

    /// Stopping each pass at the batch norm being re-estimated changes nothing: every
    /// parameter equals, bit for bit, what whole forward passes give, on a network with
    /// residual blocks (batch norms inside branches, one block with a projection shortcut).
    #[test]
    fn adaptation_with_passes_cut_at_each_batch_norm_equals_whole_passes() {
        let arch = Arch::parse(RESNET).unwrap();
        let data = data();
        let mut cut = Network::new(&arch, 3).unwrap();
        let mut whole = cut.clone();
        let bns = cut.nodes.iter().filter(|n| matches!(n.layer, Layer::BatchNorm { .. })).count();
        assert_eq!(bns, 4);
        adapt_batchnorm(&mut cut, base_depth(&arch), &data);
        adapt_batchnorm_with(&mut whole, base_depth(&arch), &data, Passes::Whole);
        let params = |net: &Network| net.nodes.iter().map(|n| n.params.clone()).collect::<Vec<_>>();
        assert_ne!(params(&cut), params(&Network::new(&arch, 3).unwrap()));
        assert_eq!(params(&cut), params(&whole));
    }

    /// After adaptation every batch norm (the second one seeing the first one's
    /// adapted output) turns its input into zero mean and unit variance on the data
    /// (up to epsilon), which the untouched statistics (0 and 1) do not; nothing but
    /// the moving statistics changes.
    #[test]
    fn adapted_batch_norm_normalises_the_new_data_layer_after_layer() {
        let arch = Arch::parse(ARCH).unwrap();
        let mut net = Network::new(&arch, 1).unwrap();
        let data = data();
        let before = net.clone();
        let far = normalised(&net, &data);
        assert!(far.iter().flatten().any(|&(m, v)| m.abs() > 0.1 || (v - 1.0).abs() > 0.1), "{far:?}");
        adapt_batchnorm(&mut net, base_depth(&arch), &data);
        for (layer, stats) in normalised(&net, &data).iter().enumerate() {
            for &(mean, var) in stats {
                assert!(mean.abs() < 1e-4, "batch norm {}: mean {mean}", layer + 1);
                // var / (var + epsilon), epsilon 0.001.
                assert!((var - 1.0).abs() < 2e-2, "batch norm {}: variance {var}", layer + 1);
            }
        }
        for (a, b) in net.nodes.iter().zip(&before.nodes) {
            for (p, q) in a.params.iter().zip(&b.params) {
                let stat = matches!(p.name, "moving_mean" | "moving_variance");
                assert_eq!(p.data == q.data, !stat, "{} {}", a.name, p.name);
            }
        }
        // Only the base (top-level layers up to `depth`) adapts.
        let mut top = Network::new(&arch, 1).unwrap();
        adapt_batchnorm(&mut top, 3, &data);
        assert_eq!(top.nodes[4].params, before.nodes[4].params);
        assert_ne!(top.nodes[2].params, before.nodes[2].params);
    }

    /// The base adapted once and then built into networks with different heads gives,
    /// bit for bit, what adapting each built network gives (`finetune` adapts the base
    /// once for all its candidate heads); adapting an adapted base again on other images
    /// gives what adapting the untouched base on them gives (the refit on every image).
    #[test]
    fn adapting_the_base_once_equals_adapting_each_built_network() {
        let arch = Arch::parse(ARCH).unwrap();
        let base = Network::new(&arch, 1).unwrap();
        let depth = base_depth(&arch);
        let params = |net: &Network| net.nodes.iter().map(|n| n.params.clone()).collect::<Vec<_>>();
        let mut adapted = base.clone();
        adapt_batchnorm(&mut adapted, depth, &data());
        for (layers, head) in [(depth, "gap,dense:4"), (depth, "flatten,dense:3"), (2, "gap,dense:4")] {
            let mut built = build(&base, layers, head, 3, false, 9).unwrap();
            adapt_batchnorm(&mut built, layers, &data());
            assert_eq!(params(&build(&adapted, layers, head, 3, false, 9).unwrap()), params(&built), "{head}");
        }
        let other = data_from(11);
        let mut again = adapted.clone();
        adapt_batchnorm(&mut again, depth, &other);
        let mut fresh = base.clone();
        adapt_batchnorm(&mut fresh, depth, &other);
        assert_eq!(params(&again), params(&fresh));
        assert_ne!(params(&again), params(&adapted));
    }

    /// The cut drops the top layers as wide as the base's output: the second block of a
    /// two-block base, ResNet's last stage (the test network above), nothing when only
    /// one width is left; the cut network keeps the base's weights and its shape.
    #[test]
    fn stage_cut_drops_the_last_width_stage() {
        let base = Network::new(&Arch::parse(ARCH).unwrap(), 1).unwrap();
        assert_eq!(stage_cut(&base), Some(2));
        let cut = build(&base, 2, "flatten,dense:5", 2, false, 3).unwrap();
        assert_eq!(cut.arch.layer.len(), 2 + 3);
        assert_eq!(cut.nodes[2].shape, [6, 6, 3]);
        for node in cut.nodes.iter().filter(|n| (1..=2).contains(&top_level(&n.name))) {
            let src = base.nodes.iter().find(|b| b.name == node.name).unwrap();
            assert_eq!(node.params, src.params, "{}", node.name);
        }
        assert!(build(&base, 5, "gap", 2, false, 3).is_err() && build(&base, 0, "gap", 2, false, 3).is_err());
        let one = ARCH.replace("filters = 3", "filters = 4");
        assert_eq!(stage_cut(&Network::new(&Arch::parse(&one).unwrap(), 1).unwrap()), None);
        let resnet = Arch::parse(RESNET).unwrap();
        assert_eq!(stage_cut(&Network::new(&resnet, 1).unwrap()), Some(3));
    }

    /// The head's first dense layer sees every value of a flattened cut (6×6×3) and the
    /// channels after global average pooling, whatever dense layers follow it.
    #[test]
    fn head_inputs_count_the_first_dense_layers_inputs() {
        let base = Network::new(&Arch::parse(ARCH).unwrap(), 1).unwrap();
        assert_eq!(head_inputs(&build(&base, 2, "flatten,dense:5", 2, false, 3).unwrap(), 2), 108);
        assert_eq!(head_inputs(&build(&base, 2, "gap,dense:5", 2, false, 3).unwrap(), 2), 3);
        assert_eq!(head_inputs(&build(&base, 2, "gap", 2, false, 3).unwrap(), 2), 3);
    }
}
