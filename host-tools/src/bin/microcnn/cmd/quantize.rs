//! `microcnn quantize DIR --calib D -o MODEL.mcnn [--qat-epochs N]`: int8 model from a
//! checkpoint, calibrated on data, arena planned, written atomically.

use anyhow::{anyhow, Context, Result};
use clap::Args;
use microcnn_core::Model;
use microcnn_tools::compile::{blob, plan};
use microcnn_tools::data::dataset;
use microcnn_tools::inspect::summary;
use microcnn_tools::io::fs;
use microcnn_tools::quantize::{ptq, qat};
use microcnn_tools::train::checkpoint::Info;
use microcnn_tools::train::float_tflite;
use std::path::PathBuf;

/// Quantize a trained checkpoint to an int8 `.mcnn` model.
#[derive(Args, Debug)]
pub struct Cmd {
    /// Checkpoint directory (from `train` or `finetune`), zoo base, or float32 `.tflite`
    /// model (quantized whole, classifier included).
    pub dir: PathBuf,
    /// Calibration data (typically the training data).
    #[arg(long)]
    pub calib: String,
    /// Output `.mcnn` file.
    #[arg(short = 'o', long = "out", visible_alias = "output")]
    pub out: PathBuf,
    /// Calibrate on at most this many images (an even draw over the data).
    #[arg(long, default_value_t = 2000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub calib_samples: usize,
    /// Quantization-aware fine-tuning epochs on the calibration data before export.
    #[arg(long, default_value_t = 0)]
    pub qat_epochs: usize,
    /// Learning rate of quantization-aware fine-tuning.
    #[arg(long, default_value_t = 1e-4)]
    pub qat_lr: f32,
    /// Batch size of quantization-aware fine-tuning.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Seed of quantization-aware fine-tuning.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Model name recorded in the blob (default: the checkpoint directory's name).
    #[arg(long)]
    pub name: Option<String>,
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    // A checkpoint directory or a zoo base's name (`microcnn quantize vgg-shapes …`).
    let spec = cmd.dir.to_string_lossy();
    let tflite = float_tflite::is_tflite(&spec);
    let (mut net, info) = if tflite {
        let net = float_tflite::load(&cmd.dir)?;
        float_tflite::check_data_size(&cmd.calib, &cmd.dir, net.input_shape())?;
        // A TFLite file has no label names: the classes are numbered.
        let classes = (0..net.output_size()).map(|k| k.to_string()).collect();
        (net, Info { classes, epoch: 0, val_accuracy: None })
    } else {
        microcnn_tools::train::zoo::load(&spec)?
    };
    let data = dataset::load(&cmd.calib, Some(net.input_shape()))?;

    if !tflite && data.classes.len() != info.classes.len() {
        eprintln!(
            "warning: {} has {} classes, the checkpoint {}; calibration only needs images",
            cmd.calib,
            data.classes.len(),
            info.classes.len()
        );
    }
    let step = data.len().div_ceil(cmd.calib_samples.max(1)).max(1);
    let calib = data.subset(&(0..data.len()).step_by(step).collect::<Vec<_>>());
    if cmd.qat_epochs > 0 {
        net = qat::fit(&net, &data, cmd.qat_epochs, cmd.qat_lr, cmd.batch, cmd.seed, &calib)?;
    }
    let name = cmd.name.clone().unwrap_or_else(|| {
        let stem = if tflite { cmd.dir.file_stem() } else { cmd.dir.file_name() };
        stem.map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into())
    });
    let graph = ptq::quantize(&net, &calib, &name, &info.classes).with_context(|| format!("{}", cmd.dir.display()))?;
    let plan = plan::plan(&graph);
    let bytes = blob::write(&graph, &plan)?;
    let model = Model::from_bytes(&bytes).map_err(|e| anyhow!("internal error: the written model is invalid: {e}"))?;
    let s = summary::summarize(&model);
    fs::write_atomic(&cmd.out, &bytes)?;
    outln!(
        "{}: {} operators, {} params, {} MACs, arena {} bytes, flash {} bytes (calibrated on {} images{})",
        cmd.out.display(),
        model.op_count(),
        s.params,
        s.macs,
        s.arena_bytes,
        s.flash_bytes,
        calib.len(),
        if cmd.qat_epochs > 0 { format!(", {} QAT epochs", cmd.qat_epochs) } else { String::new() }
    );
    Ok(())
}
