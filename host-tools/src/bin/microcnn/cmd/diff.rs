//! `microcnn diff MODEL.mcnn --input X.npy --on qemu[:CPU]`: runs each sample on the
//! host and inside the emulated chip, operator by operator, and prints the first layer
//! and element where they differ, or that every layer is identical. Exits non-zero on
//! a difference. See [`microcnn_tools::inspect::layer_diff`].

use anyhow::{bail, Result};
use clap::Args;
use microcnn_tools::deploy::qemu;
use microcnn_tools::inspect::layer_diff::{self, Comparison};
use microcnn_tools::io::{fs, npy};
use std::path::PathBuf;

/// Compare every layer's output on the host and on the emulated chip.
#[derive(Args, Debug)]
pub struct Cmd {
    /// The `.mcnn` model.
    pub model: PathBuf,
    /// int8 `.npy` array of samples, shape `(N, …input shape)`.
    #[arg(long)]
    pub input: PathBuf,
    /// The chip: `qemu` (Cortex-M4) or `qemu:CPU` (`cortex-m4`, `cortex-m7`,
    /// `cortex-m0plus`).
    #[arg(long, default_value = "qemu")]
    pub on: String,
    /// Compare only sample N (default: every sample, stopping at the first that differs).
    #[arg(long)]
    pub sample: Option<usize>,
    /// The firmware ELF (default: $MICROCNN_QEMU_FIRMWARE, else the release build in
    /// this source tree's firmware/target).
    #[arg(long)]
    pub firmware: Option<PathBuf>,
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    let Some(cpu) = qemu::parse_on(&cmd.on)? else {
        bail!("--on host: diff compares the host with a chip; use --on qemu or qemu:CPU");
    };
    let bytes = fs::read(&cmd.model)?;
    let model = microcnn_tools::io::fs::model_from_bytes(&cmd.model, &bytes)?;
    let array = npy::read_i8(&cmd.input)?;
    let per_sample = model.input().bytes();
    let count = array.shape.first().copied().unwrap_or(0);
    if array.shape.len() < 2 || array.data.len() != count * per_sample {
        bail!(
            "{}: shape {:?} does not hold samples of the model's {per_sample}-byte input",
            cmd.input.display(),
            array.shape
        );
    }
    let samples: Vec<usize> = match cmd.sample {
        Some(n) if n >= count => bail!("{}: --sample {n}, but it holds {count} samples", cmd.input.display()),
        Some(n) => vec![n],
        None => (0..count).collect(),
    };
    let firmware = qemu::Firmware::load(&qemu::find_firmware(cmd.firmware.as_deref(), cpu)?, cpu)?;
    for n in samples {
        let sample = &array.data[n * per_sample..(n + 1) * per_sample];
        let host = layer_diff::host_layer_outputs(&model, sample)?;
        let device = qemu::layer_outputs(&firmware, &bytes, sample)?;
        match layer_diff::compare(&model, &host, &device)? {
            Comparison::Identical { layers } => outln!("sample {n}: all {layers} layers identical (host, {cpu})"),
            Comparison::Differs(d) => {
                let (y, x, c) = d.position;
                outln!(
                    "sample {n}: layer {} ({}) differs first at element {} (row {y}, column {x}, channel {c}): host {}, {cpu} {} ({} of {} elements differ)",
                    d.layer,
                    d.op,
                    d.element,
                    d.host,
                    d.device,
                    d.differing,
                    d.elements
                );
                bail!("{}: the host and {cpu} differ at layer {}", cmd.model.display(), d.layer);
            }
        }
    }
    Ok(())
}
