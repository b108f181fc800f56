//! Pretrained bases shipped with the tool: the presets trained by the kit itself on its
//! built-in data. Each lives in `host-tools/zoo/<name>/` (an ordinary checkpoint) and
//! is compiled in, so `--base NAME` works anywhere. The README gives the command that
//! reproduces each one.

use crate::train::checkpoint::{self, Info};
use crate::train::nn::Network;
use anyhow::{bail, Result};
use serde::Serialize;
use std::path::Path;

/// A shipped base.
#[derive(Clone, Debug, Serialize)]
pub struct Base {
    /// Name (`--base NAME`).
    pub name: &'static str,
    /// The preset it instantiates.
    pub arch: &'static str,
    /// Input `[height, width, channels]`.
    pub input: [usize; 3],
    /// The data it was trained on.
    pub trained_on: &'static str,
    /// Test accuracy in f32 on the matching test split.
    pub test_accuracy: f32,
    /// The command that made it.
    pub command: &'static str,
    #[serde(skip)]
    arch_toml: &'static str,
    #[serde(skip)]
    weights: &'static [u8],
}

macro_rules! base {
    ($name:literal, $arch:literal, $input:expr, $data:literal, $acc:expr, $cmd:literal) => {
        Base {
            name: $name,
            arch: $arch,
            input: $input,
            trained_on: $data,
            test_accuracy: $acc,
            command: $cmd,
            arch_toml: include_str!(concat!("../zoo/", $name, "/arch.toml")),
            weights: include_bytes!(concat!("../zoo/", $name, "/model.safetensors")),
        }
    };
}

/// Every shipped base.
pub fn bases() -> Vec<Base> {
    include!("../../zoo/index.rs")
}

/// The known names, for messages.
pub fn names() -> String {
    bases().iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
}

/// Loads a base by zoo name, or a checkpoint directory.
pub fn load(spec: &str) -> Result<(Network, Info)> {
    let path = Path::new(spec);
    if path.is_dir() {
        return checkpoint::load(path);
    }
    let Some(base) = bases().into_iter().find(|b| b.name == spec) else {
        bail!("{spec}: unknown zoo base and not a checkpoint directory (zoo: {})", names());
    };
    let origin = Path::new("zoo").join(base.name);
    checkpoint::from_parts(base.arch_toml, &origin.join("arch.toml"), base.weights, &origin.join("model.safetensors"))
}
