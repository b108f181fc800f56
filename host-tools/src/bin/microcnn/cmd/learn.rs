//! `microcnn learn BASE.mcnn --data DIR --out HEAD [--method prototypes|sgd] [--epochs N]
//! [--lr X] [--on host|qemu[:CPU]] [--json]`: on-device learning of a new head on the
//! base's features, with core's learner on the host or inside the QEMU firmware (the
//! same bytes either way).

use anyhow::{anyhow, bail, Result};
use clap::{Args, ValueEnum};
use microcnn_core::learn::{Head, Method, SgdConfig};
use microcnn_core::Model;
use microcnn_tools::data::dataset;
use microcnn_tools::deploy::{learn as chip, qemu};
use microcnn_tools::inspect::learn;
use microcnn_tools::io::fs;
use serde::Serialize;
use std::path::PathBuf;

/// Learn a new head on a base model's features, as the chip does.
#[derive(Args, Debug)]
pub struct Cmd {
    /// The base `.mcnn` model (its classifier's input is the features).
    pub base: PathBuf,
    /// Labelled images of the new classes.
    #[arg(long)]
    pub data: String,
    /// The learned head.
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// Prototypes (imprinting, one pass) or SGD (softmax head, several epochs).
    #[arg(long, value_enum, default_value_t = MethodArg::Prototypes)]
    pub method: MethodArg,
    /// SGD epochs over the replay buffer.
    #[arg(long, default_value_t = 30)]
    pub epochs: u16,
    /// SGD learning rate (0 to 64; rounded to Q16.16).
    #[arg(long, default_value_t = 0.25)]
    pub lr: f64,
    /// `host`, or `qemu` / `qemu:CPU` to learn inside the QEMU firmware.
    #[arg(long, default_value = "host")]
    pub on: String,
    /// With `--on qemu`: the firmware ELF.
    #[arg(long)]
    pub firmware: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `--method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// Class prototypes.
    Prototypes,
    /// Softmax head by SGD.
    Sgd,
}

#[derive(Serialize)]
struct Report<'a> {
    head: String,
    bytes: usize,
    method: &'a str,
    classes: Vec<String>,
    features: usize,
    samples: usize,
    on: String,
    #[serde(flatten)]
    chip: Option<chip::ChipLearning>,
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    if !(0.0..=64.0).contains(&cmd.lr) {
        bail!("--lr {}: must be between 0 and 64", cmd.lr);
    }
    let method = match cmd.method {
        MethodArg::Prototypes => Method::Prototypes,
        MethodArg::Sgd => Method::Sgd,
    };
    let config = SgdConfig { epochs: cmd.epochs, learning_rate: fixed::types::I16F16::from_num(cmd.lr) };
    let blob = fs::read(&cmd.base)?;
    let model = Model::from_bytes(&blob).map_err(|e| anyhow!("{}: invalid model: {e}", cmd.base.display()))?;
    let s = model.input().shape;
    let data = dataset::load(&cmd.data, Some([s.height, s.width, s.channels]))?;
    learn::check(&model, &data, method).map_err(|e| anyhow!("{}: {e:#}", cmd.base.display()))?;
    let (head, chip_report) = match qemu::parse_on(&cmd.on)? {
        None => (learn::learn(&model, &data, method, &config)?, None),
        Some(cpu) => {
            let firmware = qemu::Firmware::load(&qemu::find_firmware(cmd.firmware.as_deref(), cpu)?, cpu)?;
            let report = chip::learn(&firmware, &blob, &data, method, &config)?;
            (report.head.clone(), Some(report))
        }
    };
    let (parsed, _) =
        Head::for_model(&head, &model).map_err(|e| anyhow!("internal error: the head is invalid: {e}"))?;
    fs::write_atomic(&cmd.out, &head)?;
    let report = Report {
        head: cmd.out.display().to_string(),
        bytes: head.len(),
        method: if method == Method::Sgd { "sgd" } else { "prototypes" },
        classes: data.classes.clone(),
        features: parsed.features(),
        samples: data.len(),
        on: cmd.on.clone(),
        chip: chip_report,
    };
    if cmd.json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        outln!(
            "{}: {} head, {} classes x {} features, {} bytes, learned from {} images on {}",
            report.head,
            report.method,
            report.classes.len(),
            report.features,
            report.bytes,
            report.samples,
            report.on
        );
        if let Some(c) = &report.chip {
            let max = c.learn_instructions.iter().max().copied().unwrap_or(0);
            outln!(
                "  chip: {max} instructions per learned frame (at most), training {} instructions, learner {} B RAM",
                c.train_instructions,
                c.learner_ram_bytes
            );
        }
    }
    Ok(())
}
