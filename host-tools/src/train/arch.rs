//! Architecture files: a Keras-`Sequential`-like list of layers in TOML, plus residual
//! blocks (`type = "residual"`, whose `[[layer.layer]]` body is added to a shortcut)
//! and parallel branches joined on channels (`type = "concat"`, with
//! `[[layer.branch]]` tables each holding `[[layer.branch.layer]]`).
//!
//! ```toml
//! input = [16, 16, 1]            # height, width, channels
//! [[layer]]
//! type = "conv2d"
//! filters = 8
//! kernel = 3                     # or [3, 5]
//! strides = 1                    # or [2, 1]
//! padding = "same"               # default "valid", as Keras
//! activation = "relu"            # relu, relu6, none (default); softmax on the last dense
//! [[layer]]
//! type = "maxpool2d"
//! pool = 2                       # strides default to the window
//! [[layer]]
//! type = "flatten"
//! [[layer]]
//! type = "dense"
//! units = 10
//! activation = "softmax"
//! ```
//!
//! Parsing checks keys and values; [`crate::train::nn::Network::new`] checks shapes and says
//! which layer cannot be built.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A one-or-two number field (`3` or `[3, 5]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Pair {
    /// The same value for height and width.
    One(usize),
    /// `[height, width]`.
    Two([usize; 2]),
}

impl Pair {
    /// `[height, width]`.
    pub fn get(self) -> [usize; 2] {
        match self {
            Pair::One(v) => [v, v],
            Pair::Two(v) => v,
        }
    }
}

fn one() -> Pair {
    Pair::One(1)
}

/// Keras padding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaddingSpec {
    /// No padding.
    #[default]
    Valid,
    /// Output size `ceil(input / stride)`.
    Same,
    /// Zero padding `[top, bottom, left, right]` (`padding = { explicit = [1, 1, 1, 1] }`):
    /// a TFLite `PAD` folded into the convolution after it. Pooling windows do not count
    /// padded cells, as with `same`.
    Explicit([usize; 4]),
}

/// A fused activation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    /// Identity (Keras `linear`).
    #[default]
    #[serde(alias = "linear")]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// Softmax over the units (the last dense layer only).
    Softmax,
}

/// Residual shortcut.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shortcut {
    /// Identity when the shapes agree, else a 1×1 convolution (with the body's stride).
    #[default]
    Auto,
    /// Always the identity (the shapes must agree).
    Identity,
    /// Always a 1×1 projection convolution.
    Conv,
}

/// One branch of a `concat` layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// The branch's layers (none: the input itself).
    #[serde(default)]
    pub layer: Vec<LayerSpec>,
}

/// One layer of an architecture file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// 2-D convolution.
    Conv2d {
        /// Output channels.
        filters: usize,
        /// Kernel size.
        kernel: Pair,
        /// Strides.
        #[serde(default = "one")]
        strides: Pair,
        /// Padding.
        #[serde(default)]
        padding: PaddingSpec,
        /// Fused activation.
        #[serde(default)]
        activation: Act,
        /// Whether the layer has a bias (Keras `use_bias`).
        #[serde(default = "yes")]
        use_bias: bool,
    },
    /// Depthwise convolution.
    DepthwiseConv2d {
        /// Kernel size.
        kernel: Pair,
        /// Strides.
        #[serde(default = "one")]
        strides: Pair,
        /// Padding.
        #[serde(default)]
        padding: PaddingSpec,
        /// Output channels per input channel.
        #[serde(default = "one_usize")]
        depth_multiplier: usize,
        /// Fused activation.
        #[serde(default)]
        activation: Act,
        /// Bias.
        #[serde(default = "yes")]
        use_bias: bool,
    },
    /// Depthwise then 1×1 pointwise convolution (Keras `SeparableConv2D`).
    SeparableConv2d {
        /// Output channels of the pointwise convolution.
        filters: usize,
        /// Depthwise kernel size.
        kernel: Pair,
        /// Depthwise strides.
        #[serde(default = "one")]
        strides: Pair,
        /// Depthwise padding.
        #[serde(default)]
        padding: PaddingSpec,
        /// Depth multiplier.
        #[serde(default = "one_usize")]
        depth_multiplier: usize,
        /// Activation after the pointwise convolution.
        #[serde(default)]
        activation: Act,
        /// Bias on the pointwise convolution.
        #[serde(default = "yes")]
        use_bias: bool,
    },
    /// Max pooling.
    Maxpool2d {
        /// Window.
        pool: Pair,
        /// Strides (default: the window).
        strides: Option<Pair>,
        /// Padding.
        #[serde(default)]
        padding: PaddingSpec,
    },
    /// Average pooling (cells outside the input do not count).
    Avgpool2d {
        /// Window.
        pool: Pair,
        /// Strides (default: the window).
        strides: Option<Pair>,
        /// Padding.
        #[serde(default)]
        padding: PaddingSpec,
    },
    /// Mean over height and width.
    GlobalAvgpool {},
    /// Flattens to one vector (a no-op on NHWC data).
    Flatten {},
    /// Fully connected layer.
    Dense {
        /// Output units.
        units: usize,
        /// Activation.
        #[serde(default)]
        activation: Act,
        /// Bias.
        #[serde(default = "yes")]
        use_bias: bool,
    },
    /// Dropout while training; identity otherwise.
    Dropout {
        /// Fraction dropped, in [0, 1).
        rate: f32,
    },
    /// Batch normalization (folded into the preceding conv, depthwise or dense layer
    /// when quantizing).
    Batchnorm {
        /// Moving-average momentum.
        #[serde(default = "momentum")]
        momentum: f32,
        /// Variance epsilon.
        #[serde(default = "epsilon")]
        epsilon: f32,
        /// Activation after the normalization.
        #[serde(default)]
        activation: Act,
    },
    /// `activation(body(x) + shortcut(x))`.
    Residual {
        /// The body.
        layer: Vec<LayerSpec>,
        /// The shortcut.
        #[serde(default)]
        shortcut: Shortcut,
        /// Activation after the addition.
        #[serde(default)]
        activation: Act,
    },
    /// Branches run on the same input, joined along channels.
    Concat {
        /// The branches.
        branch: Vec<Branch>,
    },
}

fn yes() -> bool {
    true
}
fn one_usize() -> usize {
    1
}
fn momentum() -> f32 {
    0.99
}
fn epsilon() -> f32 {
    1e-3
}

impl LayerSpec {
    /// The `type` key.
    pub fn type_name(&self) -> &'static str {
        match self {
            LayerSpec::Conv2d { .. } => "conv2d",
            LayerSpec::DepthwiseConv2d { .. } => "depthwise_conv2d",
            LayerSpec::SeparableConv2d { .. } => "separable_conv2d",
            LayerSpec::Maxpool2d { .. } => "maxpool2d",
            LayerSpec::Avgpool2d { .. } => "avgpool2d",
            LayerSpec::GlobalAvgpool {} => "global_avgpool",
            LayerSpec::Flatten {} => "flatten",
            LayerSpec::Dense { .. } => "dense",
            LayerSpec::Dropout { .. } => "dropout",
            LayerSpec::Batchnorm { .. } => "batchnorm",
            LayerSpec::Residual { .. } => "residual",
            LayerSpec::Concat { .. } => "concat",
        }
    }
}

/// A whole architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arch {
    /// Optional model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `[height, width, channels]`.
    pub input: [usize; 3],
    /// The layers in order.
    pub layer: Vec<LayerSpec>,
}

const TYPES: &str = "conv2d, depthwise_conv2d, separable_conv2d, maxpool2d, avgpool2d, global_avgpool, \
                     flatten, dense, dropout, batchnorm, residual, concat";

impl Arch {
    /// Parses TOML text; errors name the layer (1-based) and the problem.
    pub fn parse(text: &str) -> Result<Arch> {
        let value: toml::Table = toml::from_str(text).map_err(|e| anyhow!("{}", one_line(&e.to_string())))?;
        for key in value.keys() {
            if !matches!(key.as_str(), "name" | "input" | "layer") {
                bail!("unknown key `{key}` (expected input, layer, name)");
            }
        }
        let input = value.get("input").ok_or_else(|| anyhow!("missing `input = [height, width, channels]`"))?;
        let input: [usize; 3] = input
            .clone()
            .try_into()
            .map_err(|_| anyhow!("`input` must be [height, width, channels] of positive integers"))?;
        if input.contains(&0) {
            bail!("`input` has a zero dimension: {input:?}");
        }
        let name = match value.get("name") {
            Some(toml::Value::String(s)) => Some(s.clone()),
            Some(_) => bail!("`name` must be a string"),
            None => None,
        };
        let Some(toml::Value::Array(layers)) = value.get("layer") else {
            bail!("no layers: add [[layer]] tables");
        };
        let layer = parse_layers(layers, "layer ")?;
        if layer.is_empty() {
            bail!("no layers: add [[layer]] tables");
        }
        Ok(Arch { name, input, layer })
    }

    /// Reads and parses a file; errors name it.
    pub fn load(path: &Path) -> Result<Arch> {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
        Arch::parse(&text).with_context(|| format!("{}", path.display()))
    }

    /// The TOML text of this architecture.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

fn parse_layers(layers: &[toml::Value], prefix: &str) -> Result<Vec<LayerSpec>> {
    layers
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let ty = v.get("type").and_then(|t| t.as_str()).unwrap_or("?");
            let where_ = format!("{prefix}{} ({ty})", i + 1);
            if v.get("type").is_none() {
                bail!("{where_}: missing `type` (one of {TYPES})");
            }
            if !TYPES.split(", ").any(|t| t == ty) {
                bail!("{where_}: unknown layer type `{ty}` (known: {TYPES})");
            }
            let spec: LayerSpec =
                v.clone().try_into().map_err(|e: toml::de::Error| anyhow!("{where_}: {}", one_line(e.message())))?;
            check_values(&spec).map_err(|e| anyhow!("{where_}: {e}"))?;
            Ok(spec)
        })
        .collect()
}

fn check_values(spec: &LayerSpec) -> Result<()> {
    let positive = |name: &str, p: Pair| -> Result<()> {
        if p.get().contains(&0) {
            bail!("`{name}` must be positive");
        }
        Ok(())
    };
    match spec {
        LayerSpec::Conv2d { filters, kernel, strides, .. }
        | LayerSpec::SeparableConv2d { filters, kernel, strides, .. } => {
            if *filters == 0 {
                bail!("`filters` must be positive");
            }
            positive("kernel", *kernel)?;
            positive("strides", *strides)?;
        }
        LayerSpec::DepthwiseConv2d { kernel, strides, depth_multiplier, .. } => {
            positive("kernel", *kernel)?;
            positive("strides", *strides)?;
            if *depth_multiplier == 0 {
                bail!("`depth_multiplier` must be positive");
            }
        }
        LayerSpec::Maxpool2d { pool, strides, .. } | LayerSpec::Avgpool2d { pool, strides, .. } => {
            positive("pool", *pool)?;
            if let Some(s) = strides {
                positive("strides", *s)?;
            }
        }
        LayerSpec::Dense { units, .. } if *units == 0 => bail!("`units` must be positive"),
        LayerSpec::Dropout { rate } if !(0.0..1.0).contains(rate) => bail!("`rate` must be in [0, 1)"),
        LayerSpec::Batchnorm { momentum, epsilon, .. } if !(0.0..1.0).contains(momentum) || *epsilon <= 0.0 => {
            bail!("`momentum` must be in [0, 1) and `epsilon` positive")
        }
        LayerSpec::Residual { layer, .. } if layer.is_empty() => bail!("a residual block needs [[layer.layer]] tables"),
        LayerSpec::Concat { branch } if branch.len() < 2 => bail!("a concat layer needs two or more [[layer.branch]]"),
        _ => {}
    }
    if let LayerSpec::Residual { layer, .. } = spec {
        for l in layer {
            check_values(l)?;
        }
    }
    if let LayerSpec::Concat { branch } = spec {
        for l in branch.iter().flat_map(|b| &b.layer) {
            check_values(l)?;
        }
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGITS: &str = r#"
input = [16, 16, 1]
[[layer]]
type = "conv2d"
filters = 8
kernel = 3
strides = 1
padding = "same"
activation = "relu"
[[layer]]
type = "maxpool2d"
pool = 2
[[layer]]
type = "residual"
activation = "relu"
[[layer.layer]]
type = "conv2d"
filters = 8
kernel = 3
padding = "same"
[[layer]]
type = "flatten"
[[layer]]
type = "dense"
units = 10
activation = "softmax"
"#;

    #[test]
    fn parses_the_contract_keys_and_a_residual_block() {
        let arch = Arch::parse(DIGITS).unwrap();
        assert_eq!(arch.input, [16, 16, 1]);
        assert_eq!(arch.layer.len(), 5);
        assert!(matches!(arch.layer[0], LayerSpec::Conv2d { filters: 8, padding: PaddingSpec::Same, .. }));
        let LayerSpec::Residual { layer, .. } = &arch.layer[2] else { panic!() };
        assert_eq!(layer.len(), 1);
        assert_eq!(Arch::parse(&arch.to_toml()).unwrap(), arch);
    }

    #[test]
    fn unknown_layer_and_bad_keys_name_the_layer() {
        let e = Arch::parse("input = [8, 8, 1]\n[[layer]]\ntype = \"lstm\"\n").unwrap_err().to_string();
        assert!(e.contains("layer 1 (lstm): unknown layer type `lstm`"), "{e}");
        let e =
            Arch::parse("input = [8, 8, 1]\n[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"dense\"\nunit = 3\n")
                .unwrap_err()
                .to_string();
        assert!(e.starts_with("layer 2 (dense):"), "{e}");
        let e = Arch::parse("input = [8, 8, 1]\n[[layer]]\ntype = \"dropout\"\nrate = 1.5\n").unwrap_err().to_string();
        assert!(e.contains("layer 1 (dropout): `rate`"), "{e}");
        assert!(Arch::parse("input = [8, 0, 1]\n[[layer]]\ntype = \"flatten\"\n").is_err());
    }
}
