//! The training record: one [`EpochMetrics`] row per finished epoch, and its file,
//! `metrics.csv`, written atomically after every epoch and read back by `--resume`.

use crate::io::fs;
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

/// One row of metrics.csv.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, as counted by the trainer.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub train_loss: f32,
    /// Training accuracy, 0 to 1.
    pub train_accuracy: f32,
    /// Validation loss after the epoch (NaN without validation data).
    #[serde(deserialize_with = "nan_if_null")]
    pub val_loss: f32,
    /// Validation accuracy, 0 to 1 (NaN without validation data).
    #[serde(deserialize_with = "nan_if_null")]
    pub val_accuracy: f32,
    /// Learning rate used in the epoch.
    pub learning_rate: f32,
    /// Wall-clock seconds the epoch took.
    pub seconds: f32,
    /// The training phase the epoch belongs to ([`crate::train::fit::Config::phase`]):
    /// 1, or 2 for fine-tuning's second phase. Files written before the column existed
    /// read as 1.
    #[serde(default = "first_phase")]
    pub phase: usize,
}

fn first_phase() -> usize {
    1
}

/// JSON has no NaN: serde writes it as `null`, read back here as NaN (a run without
/// validation data resumes).
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    Ok(<Option<f32> as serde::Deserialize>::deserialize(d)?.unwrap_or(f32::NAN))
}

/// The CSV columns, in the order they are written.
const COLUMNS: [&str; 8] =
    ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds", "phase"];

/// Writes metrics.csv (header + one line per epoch) atomically.
///
/// Floats are written in Rust's shortest round-trip form, so reading the file back
/// gives the very same values.
pub fn write_metrics_csv(path: &Path, rows: &[EpochMetrics]) -> Result<()> {
    let mut text = COLUMNS.join(",");
    text.push('\n');
    for r in rows {
        text.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            r.epoch, r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy, r.learning_rate, r.seconds, r.phase
        ));
    }
    fs::write_atomic(path, text.as_bytes())
}

/// Reads metrics.csv back (for --resume); error names the file and line.
///
/// Columns are found by their header names, so their order does not matter and extra
/// columns are ignored; blank lines are skipped. A file without the `phase` column
/// (written before it existed) is all phase 1.
pub fn read_metrics_csv(path: &Path) -> Result<Vec<EpochMetrics>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        bail!("{}: empty file, expected a header line", path.display());
    };
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let mut index = [0usize; 7];
    for (slot, column) in index.iter_mut().zip(COLUMNS) {
        *slot = names
            .iter()
            .position(|n| *n == column)
            .ok_or_else(|| anyhow!("{}: line 1: missing column {column:?}", path.display()))?;
    }
    let phase = names.iter().position(|n| *n == COLUMNS[7]);
    let mut rows = Vec::new();
    for (number, line) in lines {
        let at = || format!("{}: line {}", path.display(), number + 1);
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != names.len() {
            bail!("{}: expected {} fields, found {}", at(), names.len(), fields.len());
        }
        let float = |column: usize| -> Result<f32> {
            let field = fields[index[column]];
            field.parse().map_err(|_| anyhow!("{}: {}: not a number: {field:?}", at(), COLUMNS[column]))
        };
        let count = |field: &str, column: usize| -> Result<usize> {
            field.parse().map_err(|_| anyhow!("{}: {}: not a count: {field:?}", at(), COLUMNS[column]))
        };
        rows.push(EpochMetrics {
            epoch: count(fields[index[0]], 0)?,
            train_loss: float(1)?,
            train_accuracy: float(2)?,
            val_loss: float(3)?,
            val_accuracy: float(4)?,
            learning_rate: float(5)?,
            seconds: float(6)?,
            phase: phase.map_or(Ok(1), |i| count(fields[i], 7))?,
        });
    }
    Ok(rows)
}
