//! `microcnn infer MODEL.mcnn --input IN.npy --output OUT.npy` and `--image FILE`.
//!
//! With `--on qemu` the samples run inside the QEMU firmware instead of on the host
//! (same output bytes; `--json` adds executed instructions per sample and per layer,
//! and instructions per MAC). See [`microcnn_tools::deploy::qemu`].

use anyhow::{bail, Result};
use clap::Args;
use microcnn_tools::data::preprocess::image_to_input;
use microcnn_tools::deploy::qemu;
use microcnn_tools::inspect::run;
use microcnn_tools::io::fs;
use microcnn_tools::io::npy::{self, ArrayI8};
use std::path::PathBuf;

/// Run a model on int8 samples (`.npy`, first axis = sample) or on an image.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["input", "image"])))]
pub struct Cmd {
    /// The `.mcnn` model.
    pub model: PathBuf,
    /// int8 `.npy` array of samples, shape `(N, …input shape)`.
    #[arg(long, requires = "output")]
    pub input: Option<PathBuf>,
    /// Where to write the int8 outputs, shape `(N, …output shape)`.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// A PNG, JPEG or BMP image to classify.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Classify `--image` with this learned head (`microcnn learn`) on the model's
    /// features, instead of the model's own classifier.
    #[arg(long, requires = "image")]
    pub head: Option<PathBuf>,
    /// How many classes to print for `--image`.
    #[arg(long, default_value_t = 5, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub top: usize,
    /// Where the samples run: `host` (this machine), `qemu` (the firmware under QEMU
    /// mps2-an386, Cortex-M4F) or `qemu:CPU` with CPU `cortex-m4`, `cortex-m7`
    /// (mps2-an500) or `cortex-m0plus` (the thumbv6m firmware on mps2-an385).
    #[arg(long, value_parser = parse_target, default_value = "host")]
    pub on: Target,
    /// With `--on qemu`: print a JSON report (instructions per sample and per layer,
    /// instructions per MAC) instead of the table.
    #[arg(long, requires = "input")]
    pub json: bool,
    /// With `--on qemu`: the firmware ELF (default: $MICROCNN_QEMU_FIRMWARE, else the
    /// release build in this source tree's firmware/target).
    #[arg(long)]
    pub firmware: Option<PathBuf>,
}

/// Where `infer` runs the samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The host's copy of the engine.
    Host,
    /// The firmware under QEMU, on one emulated core.
    Qemu(qemu::Cpu),
}

/// `host`, `qemu` (Cortex-M4) or `qemu:CPU`.
fn parse_target(s: &str) -> std::result::Result<Target, String> {
    match qemu::parse_on(s) {
        Ok(None) => Ok(Target::Host),
        Ok(Some(cpu)) => Ok(Target::Qemu(cpu)),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    let bytes = fs::read(&cmd.model)?;
    let model = microcnn_tools::io::fs::model_from_bytes(&cmd.model, &bytes)?;
    if let (Some(input), Some(output)) = (&cmd.input, &cmd.output) {
        let array = npy::read_i8(input)?;
        let sample = model.input().bytes();
        let per_sample: usize = array.shape.iter().skip(1).product();
        if array.shape.len() < 2 || per_sample != sample {
            let s = model.input().shape;
            bail!(
                "{}: shape {:?} does not hold samples of the model's input [{}, {}, {}] (first axis is the sample)",
                input.display(),
                array.shape,
                s.height,
                s.width,
                s.channels
            );
        }
        if cmd.json && cmd.on == Target::Host {
            bail!("--json reports instruction counts: use it with --on qemu");
        }
        let (outputs, costs) = match cmd.on {
            Target::Host => (run::run_samples(&model, &array.data)?, None),
            Target::Qemu(cpu) => {
                let firmware = qemu::Firmware::load(&qemu::find_firmware(cmd.firmware.as_deref(), cpu)?, cpu)?;
                let results = qemu::infer(&firmware, &bytes, &array.data)?;
                (results.iter().flat_map(|r| r.output.iter().copied()).collect(), Some(results))
            }
        };
        let mut shape = vec![array.shape[0]];
        shape.extend(run::sample_output_shape(&model));
        let encoded = npy::encode_i8(&ArrayI8 { shape, data: outputs })?;
        fs::write_atomic(output, &encoded)?;
        match costs {
            Some(results) if cmd.json => {
                outln!("{}", serde_json::to_string_pretty(&qemu::cost_report(&model, &results, results_cpu(cmd.on))?)?)
            }
            Some(results) => {
                let cpu = results_cpu(cmd.on);
                outln!("{}: {} samples (on QEMU {}, {cpu})", output.display(), array.shape[0], cpu.machine());
                out!("{}", qemu::cost_table(&model, &results)?);
            }
            None => outln!("{}: {} samples", output.display(), array.shape[0]),
        }
        return Ok(());
    }
    if cmd.on != Target::Host {
        bail!("--on qemu runs --input samples; --image runs on the host");
    }
    let Some(image_path) = &cmd.image else {
        bail!("give --input and --output, or --image");
    };
    let input = image_to_input(&model, image_path)?;
    if let Some(head_path) = &cmd.head {
        return print_head_scores(&model, head_path, &input, cmd.top);
    }
    let output = run::run_samples(&model, &input)?;
    let out = model.output();
    let mut ranked: Vec<(usize, i8)> = output.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (class, q) in ranked.into_iter().take(cmd.top) {
        let score = (f32::from(q) - out.zero_point as f32) * out.scale;
        let label = model.label(class).map_or_else(|| format!("class {class}"), str::to_string);
        outln!("{label:<20} {score:.4}");
    }
    Ok(())
}

/// The core `target` runs on (the default for the host, which never reaches here).
fn results_cpu(target: Target) -> qemu::Cpu {
    match target {
        Target::Qemu(cpu) => cpu,
        Target::Host => qemu::Cpu::default(),
    }
}

/// `--head`: the learned head's scores (Q16.16, as the chip computes them), best first.
fn print_head_scores(
    model: &microcnn_core::Model<'_>,
    head_path: &std::path::Path,
    input: &[i8],
    top: usize,
) -> Result<()> {
    use microcnn_core::learn::{embed, Head};
    let bytes = fs::read(head_path)?;
    let (head, cut) = Head::for_model(&bytes, model).map_err(|e| anyhow::anyhow!("{}: {e}", head_path.display()))?;
    let mut arena = vec![0u8; model.arena_size()];
    let mut net = microcnn_core::Interpreter::new(model, &mut arena).map_err(|e| anyhow::anyhow!("{e}"))?;
    net.input_mut().copy_from_slice(input);
    let features = cut.extract(&mut net).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut embedding = vec![fixed::types::I16F16::ZERO; head.features()];
    embed(features, cut.zero_point, &mut embedding);
    let mut scores = vec![fixed::types::I16F16::ZERO; head.classes()];
    head.scores(&embedding, &mut scores);
    let mut ranked: Vec<(usize, fixed::types::I16F16)> = scores.into_iter().enumerate().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (class, score) in ranked.into_iter().take(top) {
        outln!("{:<20} {:.4}", format!("class {class}"), score.to_num::<f64>());
    }
    Ok(())
}
