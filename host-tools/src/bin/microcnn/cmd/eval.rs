//! `microcnn eval MODEL.mcnn|DIR --data D [--json]`: accuracy on the integer engine
//! (a `.mcnn`, with its own classifier or a learned `--head`) or in f32 (a checkpoint
//! directory), per class, and a confusion matrix.

use anyhow::{anyhow, Context, Result};
use clap::Args;
use microcnn_tools::data::dataset;
use microcnn_tools::inspect::eval;
use microcnn_tools::io::fs;
use microcnn_tools::io::npy::{self, ArrayI8};
use microcnn_tools::train::{fit, plot};
use std::path::{Path, PathBuf};

/// Evaluate a model on a labelled dataset.
#[derive(Args, Debug)]
pub struct Cmd {
    /// A `.mcnn` model (integer engine) or a checkpoint directory (f32).
    pub model: PathBuf,
    /// Labelled data.
    #[arg(long)]
    pub data: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Confusion-matrix PNG (default: `confusion.png` in a checkpoint directory, or
    /// `MODEL.confusion.png` beside a `.mcnn`).
    #[arg(long, conflicts_with = "no_confusion")]
    pub confusion: Option<PathBuf>,
    /// Write no confusion-matrix PNG (a model in a read-only folder, say).
    #[arg(long)]
    pub no_confusion: bool,
    /// Also write the int8 inputs fed to the engine (`.npy`, `.mcnn` only).
    #[arg(long)]
    pub save_inputs: Option<PathBuf>,
    /// Also write the int8 outputs of the engine (`.npy`, `.mcnn` only).
    #[arg(long)]
    pub save_outputs: Option<PathBuf>,
    /// A head learned on the model (`microcnn learn`): classify with it on the model's
    /// features instead of the model's own classifier (`.mcnn` only).
    #[arg(long)]
    pub head: Option<PathBuf>,
}

fn default_confusion(model: &Path) -> PathBuf {
    if model.is_dir() {
        model.join("confusion.png")
    } else {
        model.with_extension("confusion.png")
    }
}

/// Whether `path` names a zoo base rather than a file.
fn is_zoo_name(path: &std::path::Path) -> bool {
    !path.exists() && microcnn_tools::train::zoo::bases().iter().any(|b| std::path::Path::new(b.name) == path)
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    let report = if let Some(head_path) = &cmd.head {
        if cmd.model.is_dir() {
            anyhow::bail!("--head works on a .mcnn base, not a checkpoint directory");
        }
        let bytes = fs::read(&cmd.model)?;
        let model = microcnn_tools::io::fs::model_from_bytes(&cmd.model, &bytes)?;
        let head = fs::read(head_path)?;
        let (parsed, _) = microcnn_core::learn::Head::for_model(&head, &model)
            .map_err(|e| anyhow!("{}: {e}", head_path.display()))?;
        let s = model.input().shape;
        let data = dataset::load(&cmd.data, Some([s.height, s.width, s.channels]))?;
        if data.classes.len() != parsed.classes() {
            anyhow::bail!("{}: {} classes, the head has {}", cmd.data, data.classes.len(), parsed.classes());
        }
        let predicted = microcnn_tools::inspect::learn::classify(&model, &head, &data)?;
        eval::report(&predicted, &data.labels, &data.classes, "int8 + learned head")
    } else if cmd.model.is_dir() || is_zoo_name(&cmd.model) {
        let (net, info) = microcnn_tools::train::zoo::load(&cmd.model.to_string_lossy())?;
        let data = by_name(&cmd.data, dataset::load(&cmd.data, Some(net.input_shape()))?, &info.classes)?;
        eval::report(&fit::predictions(&net, &data), &data.labels, &info.classes, "f32")
    } else {
        let bytes = fs::read(&cmd.model)?;
        let model = microcnn_tools::io::fs::model_from_bytes(&cmd.model, &bytes)?;
        let s = model.input().shape;
        let data = dataset::load(&cmd.data, Some([s.height, s.width, s.channels]))?;
        let outputs = model.output().bytes();
        let (data, labels): (_, Vec<String>) = if model.labels().next().is_some() {
            let labels: Vec<String> =
                (0..outputs).map(|i| model.label(i).map_or_else(|| i.to_string(), str::to_string)).collect();
            (by_name(&cmd.data, data, &labels)?, labels)
        } else {
            // A model without labels (an imported TFLite model, say): output i is the
            // data's class i, as Keras's sorted class folders would have it.
            if data.classes.len() != outputs {
                anyhow::bail!("{}: {} classes, the model has {outputs} outputs", cmd.data, data.classes.len());
            }
            let labels = data.classes.clone();
            (data, labels)
        };
        let (inputs, outputs, predicted) =
            eval::run_model(&model, &data).map_err(|e| anyhow!("{}: {e}", cmd.model.display()))?;
        let n = data.len();
        if let Some(path) = &cmd.save_inputs {
            fs::write_atomic(
                path,
                &npy::encode_i8(&ArrayI8 { shape: vec![n, s.height, s.width, s.channels], data: inputs })?,
            )?;
        }
        if let Some(path) = &cmd.save_outputs {
            let k = model.output().bytes();
            fs::write_atomic(path, &npy::encode_i8(&ArrayI8 { shape: vec![n, k], data: outputs })?)?;
        }
        eval::report(&predicted, &data.labels, &labels, "int8")
    };
    let confusion = if cmd.no_confusion {
        None
    } else {
        Some(cmd.confusion.clone().unwrap_or_else(|| default_confusion(&cmd.model)))
    };
    if let Some(path) = &confusion {
        plot::write_confusion_png(path, &report.confusion, &report.classes).with_context(|| {
            format!(
                "{}: cannot write the confusion matrix (choose another --confusion, or --no-confusion)",
                path.display()
            )
        })?;
    }
    if cmd.json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        outln!(
            "{} on {} ({}): accuracy {:.4} ({}/{})",
            cmd.model.display(),
            cmd.data,
            report.engine,
            report.accuracy,
            report.correct,
            report.samples
        );
        for (name, acc) in report.classes.iter().zip(&report.per_class_accuracy) {
            match acc {
                Some(acc) => outln!("  {name:<16} {acc:.4}"),
                None => outln!("  {name:<16} n/a (no samples)"),
            }
        }
        if let Some(path) = &confusion {
            outln!("confusion matrix: {}", path.display());
        }
    }
    Ok(())
}

/// The data labelled with the model's classes, matched by name (another order is fine;
/// a class the model does not know is an error naming the data).
fn by_name(spec: &str, data: dataset::Dataset, classes: &[String]) -> Result<dataset::Dataset> {
    data.relabel(classes).map_err(|e| anyhow!("{spec}: {e}"))
}
