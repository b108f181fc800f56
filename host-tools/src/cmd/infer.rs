//! `microcnn infer MODEL.mcnn --input IN.npy --output OUT.npy` and `--image FILE`.
//!
//! With `--on qemu` the samples run inside the QEMU firmware instead of on the host
//! (same output bytes; `--json` adds executed instructions per sample and per layer,
//! and instructions per MAC). See [`microcnn_tools::qemu`].

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use microcnn_core::preprocess::InputQuantization;
use microcnn_core::Model;
use microcnn_tools::npy::{self, ArrayI8};
use microcnn_tools::{fsutil, qemu, run};
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
    /// How many classes to print for `--image`.
    #[arg(long, default_value_t = 5)]
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
    let bytes = fsutil::read(&cmd.model)?;
    let model = Model::from_bytes(&bytes).map_err(|e| anyhow!("{}: invalid model: {e}", cmd.model.display()))?;
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
        fsutil::write_atomic(output, &encoded)?;
        match costs {
            Some(results) if cmd.json => {
                outln!("{}", serde_json::to_string_pretty(&cost_report(&model, &results, results_cpu(cmd.on))?)?)
            }
            Some(results) => {
                let cpu = results_cpu(cmd.on);
                outln!("{}: {} samples (on QEMU {}, {cpu})", output.display(), array.shape[0], cpu.machine());
                out!("{}", cost_table(&model, &results)?);
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
    let input = preprocess_image(&model, image_path)?;
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

/// Loads an image, converts it to the model's channels, resizes it to the model's
/// input and quantizes it with the input scale and zero point. Pixels map to reals
/// by the blob's preprocessing record, or `pixel / 255` without one.
pub fn preprocess_image(model: &Model<'_>, path: &std::path::Path) -> Result<Vec<i8>> {
    let input = model.input();
    let shape = input.shape;
    let image = image::open(path).with_context(|| format!("{}: cannot read image", path.display()))?;
    let resized = image.resize_exact(shape.width as u32, shape.height as u32, image::imageops::FilterType::Triangle);
    let pixels: Vec<u8> = match shape.channels {
        1 => resized.to_luma8().into_raw(),
        3 => resized.to_rgb8().into_raw(),
        c => bail!("{}: the model takes {c} channels; images give 1 (gray) or 3 (RGB)", path.display()),
    };
    let quant = InputQuantization::from_model(model);
    Ok(pixels.iter().map(|&p| quant.quantize(p)).collect())
}

/// Per-layer MACs of `model`, in operator order.
fn layer_macs(model: &Model<'_>) -> Result<Vec<(String, u64)>> {
    (0..model.op_count())
        .map(|i| {
            let op = model.operator(i).map_err(|e| anyhow!("operator {i}: {e}"))?;
            let input = model.tensor(op.inputs.get(0).unwrap_or(0)).map_err(|e| anyhow!("{e}"))?;
            let output = model.tensor(op.output).map_err(|e| anyhow!("{e}"))?;
            Ok((op.kind.name().to_string(), op.macs(&input.shape, &output.shape)))
        })
        .collect()
}

/// Mean instructions of layer `index` over the samples.
fn mean_layer(results: &[qemu::SampleResult], index: usize) -> f64 {
    let total: u64 =
        results.iter().filter_map(|r| r.layers.iter().find(|l| l.index == index)).map(|l| l.instructions).sum();
    total as f64 / results.len().max(1) as f64
}

fn per_mac(instructions: f64, macs: u64) -> Option<f64> {
    (macs > 0).then(|| instructions / macs as f64)
}

/// The core `target` runs on (the default for the host, which never reaches here).
fn results_cpu(target: Target) -> qemu::Cpu {
    match target {
        Target::Qemu(cpu) => cpu,
        Target::Host => qemu::Cpu::default(),
    }
}

/// The `--json` report of `infer --on qemu`.
fn cost_report(model: &Model<'_>, results: &[qemu::SampleResult], cpu: qemu::Cpu) -> Result<serde_json::Value> {
    let macs = layer_macs(model)?;
    let total_macs: u64 = macs.iter().map(|(_, m)| m).sum();
    let mean_total = results.iter().map(|r| r.instructions).sum::<u64>() as f64 / results.len().max(1) as f64;
    let layers: Vec<_> = macs
        .iter()
        .enumerate()
        .map(|(i, (op, m))| {
            let mean = mean_layer(results, i);
            serde_json::json!({"index": i, "op": op, "macs": m, "instructions_mean": mean,
                               "instructions_per_mac": per_mac(mean, *m)})
        })
        .collect();
    let samples: Vec<_> = results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let layers: Vec<_> = r
                .layers
                .iter()
                .map(|l| serde_json::json!({"index": l.index, "op": l.op, "instructions": l.instructions}))
                .collect();
            serde_json::json!({"index": i, "instructions": r.instructions, "layers": layers})
        })
        .collect();
    Ok(serde_json::json!({
        "target": format!("qemu-{} ({cpu}, {})", cpu.machine(), cpu.rust_target()),
        "cpu": cpu.name(),
        "unit": "executed instructions (QEMU -icount, SysTick)",
        "samples_count": results.len(),
        "macs": total_macs,
        "instructions_mean": mean_total,
        "instructions_per_mac": per_mac(mean_total, total_macs),
        "layers": layers,
        "samples": samples,
    }))
}

/// The human table of `infer --on qemu`: per layer, MACs, mean instructions and
/// instructions per MAC, then the whole invoke.
fn cost_table(model: &Model<'_>, results: &[qemu::SampleResult]) -> Result<String> {
    use std::fmt::Write;
    let macs = layer_macs(model)?;
    let mut t = String::new();
    writeln!(t, "{:>3}  {:<18} {:>10} {:>14} {:>10}", "#", "layer", "MACs", "instructions", "instr/MAC")?;
    for (i, (op, m)) in macs.iter().enumerate() {
        let mean = mean_layer(results, i);
        let ratio = per_mac(mean, *m).map_or_else(|| "-".to_string(), |r| format!("{r:.2}"));
        writeln!(t, "{i:>3}  {op:<18} {m:>10} {mean:>14.0} {ratio:>10}")?;
    }
    let total_macs: u64 = macs.iter().map(|(_, m)| m).sum();
    let mean_total = results.iter().map(|r| r.instructions).sum::<u64>() as f64 / results.len().max(1) as f64;
    let ratio = per_mac(mean_total, total_macs).map_or_else(|| "-".to_string(), |r| format!("{r:.2}"));
    writeln!(t, "{:>3}  {:<18} {total_macs:>10} {mean_total:>14.0} {ratio:>10}", "", "invoke (total)")?;
    Ok(t)
}
