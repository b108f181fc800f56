//! Architecture presets: the classic families at microcontroller size, usable wherever
//! an architecture file is (`--arch vgg`). Each is an ordinary architecture file in
//! `host-tools/archs/`, compiled in; the classifier's units follow the data's classes.
//! At their default 32×32×3 input each fits in 64 KiB of arena and 256 KiB of flash
//! as int8 (`microcnn summary vgg`).

use crate::train::arch::{Arch, LayerSpec};
use anyhow::{bail, Result};
use std::path::Path;

/// `(name, TOML)` of every preset.
pub const PRESETS: &[(&str, &str)] = &[
    ("vgg", include_str!("../../archs/vgg.toml")),
    ("resnet", include_str!("../../archs/resnet.toml")),
    ("xception", include_str!("../../archs/xception.toml")),
    ("inception", include_str!("../../archs/inception.toml")),
    ("mobilenet", include_str!("../../archs/mobilenet.toml")),
    ("inception-resnet", include_str!("../../archs/inception-resnet.toml")),
];

/// The names, for messages.
pub fn names() -> String {
    PRESETS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// A preset by name.
pub fn preset(name: &str) -> Option<Arch> {
    PRESETS.iter().find(|(n, _)| *n == name).and_then(|(_, text)| Arch::parse(text).ok())
}

/// An architecture from a file path or a preset name; `true` when it is a preset
/// (whose classifier adapts to the number of classes).
pub fn resolve(spec: &str) -> Result<(Arch, bool)> {
    let path = Path::new(spec);
    if path.exists() || spec.ends_with(".toml") || spec.contains('/') {
        return Ok((Arch::load(path)?, false));
    }
    match preset(spec) {
        Some(arch) => Ok((arch, true)),
        None => bail!("{spec}: no such architecture file or preset (presets: {})", names()),
    }
}

/// The architecture with its last dense layer set to `classes` units.
pub fn with_classes(mut arch: Arch, classes: usize) -> Arch {
    if let Some(LayerSpec::Dense { units, .. }) = arch.layer.last_mut() {
        *units = classes;
    }
    arch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_list_the_presets() {
        let e = resolve("alexnet").unwrap_err().to_string();
        assert!(e.contains("vgg, resnet, xception, inception, mobilenet, inception-resnet"), "{e}");
        assert!(resolve("resnet").unwrap().1);
    }
}
