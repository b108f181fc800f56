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

use crate::train::arch::{Act, Arch, LayerSpec};
use crate::train::nn::Network;
use anyhow::{bail, Result};
use clap::ValueEnum;

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

/// Builds the transfer network: the base's convolutional layers (with the base's
/// weights unless `scratch`) and a new head for `classes`.
pub fn build(base: &Network, head: &str, classes: usize, scratch: bool, seed: u64) -> Result<Network> {
    let depth = base_depth(&base.arch);
    if depth == 0 {
        bail!("the base has no convolutional layers to transfer");
    }
    let mut layer = base.arch.layer[..depth].to_vec();
    layer.extend(parse_head(head, classes)?);
    let name = base.arch.name.clone().map(|n| format!("{n}-transfer"));
    let arch = Arch { name, input: base.arch.input, layer };
    let mut net = Network::new(&arch, seed)?;
    if !scratch {
        for node in net.nodes.iter_mut().filter(|n| (1..=depth).contains(&top_level(&n.name))) {
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

/// Freezes the base's layers except the top `unfrozen` ones (0 freezes the whole
/// base). Batch norm anywhere in the base stays in inference mode, unfrozen or not.
pub fn freeze_base(net: &mut Network, depth: usize, unfrozen: usize) {
    for node in &mut net.nodes {
        let k = top_level(&node.name);
        node.frozen = (1..=depth.saturating_sub(unfrozen)).contains(&k);
        node.bn_inference = (1..=depth).contains(&k);
    }
}
