//! The training loop: seeded shuffling and augmentation, mini-batch backpropagation,
//! validation, best-epoch tracking, early stopping, and a checkpoint after every
//! epoch so that an interruption loses at most the epoch in progress.
//!
//! Every random draw of epoch `e` comes from generators seeded by `(seed, e)`, so a
//! resumed run continues exactly as an uninterrupted one would.

use crate::compile::grid::Quant;
use crate::data::augment::{augment_image, AugmentConfig};
use crate::data::dataset::{self, Dataset};
use crate::train::checkpoint::{self, Info, State};
use crate::train::metrics::{self, EpochMetrics};
use crate::train::nn::optim::Optimizer;
use crate::train::nn::{argmax, cross_entropy, Network};
use crate::train::plot;
use crate::train::step::step;
use anyhow::{anyhow, bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Hyper-parameters.
#[derive(Clone, Debug)]
pub struct Config {
    /// Epochs in total (a resumed run stops at the same count).
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Learning rate.
    pub lr: f32,
    /// Seed of shuffling, augmentation and dropout.
    pub seed: u64,
    /// Stop after this many epochs without a better validation accuracy.
    pub patience: Option<usize>,
    /// On-the-fly augmentation.
    pub augment: AugmentConfig,
    /// Show a progress bar.
    pub progress: bool,
    /// Quantization-aware training: each node's int8 quantization; weights and
    /// activations are fake-quantized in the forward pass ([`crate::train::step`]).
    pub fake_quant: Option<Vec<Quant>>,
    /// The training phase these epochs belong to, recorded in each [`EpochMetrics`]: 1,
    /// or 2 for fine-tuning's second phase (the base's top layers unfrozen). Ties in
    /// validation accuracy go to the lower loss only within a phase ([`stays_best`]).
    pub phase: usize,
}

/// Set (by a Ctrl-C handler) to stop training after the batch in progress: the run
/// then ends with [`Interrupted`], nothing half-written.
pub static INTERRUPT: AtomicBool = AtomicBool::new(false);

/// The error of a run stopped by [`INTERRUPT`]; the folder holds the last finished
/// epoch, if any.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

impl Config {
    /// The settings a resumed run must share with the run it continues (the learning
    /// rate, batch size, seed and augmentation; the optimizer is in the state itself).
    pub fn settings(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("lr".to_string(), self.lr.to_string()),
            ("batch".to_string(), self.batch.to_string()),
            ("seed".to_string(), self.seed.to_string()),
            ("augmentation".to_string(), format!("{:?}", self.augment)),
        ])
    }

    /// Refuses counts that cannot train, before anything is written.
    pub fn check(&self) -> Result<()> {
        if self.epochs == 0 {
            bail!("--epochs 0: train for at least one epoch");
        }
        if self.batch == 0 {
            bail!("--batch 0: batches need at least one image");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!("--lr {:?}: the learning rate must be a positive, finite number", self.lr);
        }
        Ok(())
    }
}

fn epoch_rng(seed: u64, epoch: usize, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((epoch as u64) << 8) | stream);
    rng
}

/// At most `n` images of every class, drawn with `seed` (order kept).
pub fn per_class(data: &Dataset, n: usize, seed: u64) -> Dataset {
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.shuffle(&mut epoch_rng(seed, 0, 4));
    let mut taken = vec![0usize; data.classes.len()];
    let mut keep: Vec<usize> = order
        .into_iter()
        .filter(|&i| {
            let c = &mut taken[data.labels[i]];
            *c += 1;
            *c <= n
        })
        .collect();
    keep.sort_unstable();
    data.subset(&keep)
}

/// The data of a run: the whole set (after `--per-class`), and its training and
/// validation parts (views of the same bytes).
pub struct Loaded {
    /// Every image the run may train on: `train` and a split-off `val` together.
    pub all: Dataset,
    /// The images trained on.
    pub train: Dataset,
    /// The validation images: split off `all`, or another set (`--val-data`).
    pub val: Option<Dataset>,
}

/// Loads the training and validation sets for a network input.
pub fn load_data(
    data: &str,
    val_data: Option<&str>,
    val_split: f32,
    seed: u64,
    shape: [usize; 3],
    per_class: Option<usize>,
) -> Result<Loaded> {
    let mut all = dataset::load(data, Some(shape))?;
    all.require_two_classes(data)?;
    if let Some(n) = per_class {
        all = self::per_class(&all, n, seed);
    }
    if let Some(v) = val_data {
        // By name: the validation classes may come in another order, or some may be missing.
        let val = dataset::load(v, Some(shape))?.relabel(&all.classes).map_err(|e| anyhow!("{v}: {e}"))?;
        return Ok(Loaded { train: all.clone(), all, val: Some(val) });
    }
    if !(0.0..1.0).contains(&val_split) {
        bail!("--val-split {val_split}: must be at least 0 and below 1");
    }
    let (train, val) = if val_split > 0.0 {
        let (t, v) = all.split_validation(val_split, seed);
        (t, Some(v))
    } else {
        (all.clone(), None)
    };
    Ok(Loaded { all, train, val })
}

/// Images turned into `f32` at a time for inference: a multiple of the 64 that
/// [`Network::predict`] runs at once, so the forward passes (and their bits) are the
/// ones of a single call on the whole set.
const PREDICT_CHUNK: usize = 64 * 4;

/// `net`'s outputs for every image of `data` (inference mode), the images turned into
/// `f32` `PREDICT_CHUNK` at a time: memory grows with the chunk, not the set.
pub fn predict(net: &Network, data: &Dataset) -> Vec<f32> {
    let mut out = Vec::with_capacity(data.len() * net.output_size());
    for start in (0..data.len()).step_by(PREDICT_CHUNK) {
        let end = (start + PREDICT_CHUNK).min(data.len());
        out.extend(net.predict(&data.range_unit(start..end), end - start));
    }
    out
}

/// Loss and accuracy of `net` on `data` in inference mode.
pub fn evaluate(net: &Network, data: &Dataset) -> (f32, f32) {
    let out = predict(net, data);
    let (loss, correct, _) = cross_entropy(&out, &data.labels, net.output_size(), net.ends_in_softmax());
    (loss, correct as f32 / data.len().max(1) as f32)
}

/// Predicted class per sample (inference mode).
pub fn predictions(net: &Network, data: &Dataset) -> Vec<usize> {
    let k = net.output_size();
    predict(net, data).chunks_exact(k).map(argmax).collect()
}

/// Trains one epoch; returns mean loss and accuracy over the batches (training mode).
/// Stops with an error naming the epoch, the batch and the parameter as soon as the
/// loss or a weight stops being finite (a diverging learning rate): a run that has
/// diverged is never reported as trained.
pub fn train_epoch(
    net: &mut Network,
    opt: &mut Optimizer,
    data: &Dataset,
    cfg: &Config,
    epoch: usize,
    bar: Option<&ProgressBar>,
) -> Result<(f32, f32)> {
    let n = data.len();
    let size = data.image_len();
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut epoch_rng(cfg.seed, epoch, 1));
    let mut dropout_rng = epoch_rng(cfg.seed, epoch, 2);
    let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
    let mut x = Vec::with_capacity(cfg.batch * size);
    for (b, batch) in order.chunks(cfg.batch).enumerate() {
        x.clear();
        x.resize(batch.len() * size, 0.0);
        // The batch's images become f32 (byte / 255) here, and only here.
        if cfg.augment.is_identity() {
            x.par_chunks_exact_mut(size).zip(batch).for_each(|(dst, &i)| dataset::to_unit(data.image(i), dst));
        } else {
            x.par_chunks_exact_mut(size).zip(batch).for_each(|(dst, &i)| {
                let mut rng = epoch_rng(cfg.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15), epoch, 3);
                augment_image(&data.image_unit(i), data.shape, &cfg.augment, &mut rng, dst);
            });
        }
        if INTERRUPT.load(Ordering::Relaxed) {
            return Err(Interrupted.into());
        }
        let labels: Vec<usize> = batch.iter().map(|&i| data.labels[i]).collect();
        let (loss, ok) = step(net, opt, &x, &labels, cfg.lr, cfg.fake_quant.as_deref(), &mut dropout_rng);
        // The loss clamps probabilities away from 0, so NaN outputs can still give a
        // finite loss: the weights are checked too.
        let bad = if loss.is_finite() { net.first_non_finite() } else { Some(format!("the loss ({loss})")) };
        if let Some(what) = bad {
            bail!(
                "training diverged at epoch {epoch}, batch {}: {what} is no longer finite (learning rate {:?}); lower --lr",
                b + 1,
                cfg.lr
            );
        }
        loss_sum += f64::from(loss) * batch.len() as f64;
        correct += ok;
        seen += batch.len();
        if let Some(bar) = bar {
            bar.set_position(seen as u64);
            if b % 4 == 0 {
                bar.set_message(format!("loss {:.4} acc {:.4}", loss_sum / seen as f64, correct as f64 / seen as f64));
            }
        }
    }
    Ok(((loss_sum / seen.max(1) as f64) as f32, correct as f32 / seen.max(1) as f32))
}

fn bar(cfg: &Config, epoch: usize, n: usize) -> Option<ProgressBar> {
    cfg.progress.then(|| {
        let bar = ProgressBar::new(n as u64);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "epoch {epoch:>3}/{} [{{bar:30}}] {{pos}}/{{len}} {{msg}}",
                cfg.epochs
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    })
}

/// Whether `kept` stays the best when `other` comes after it: a higher validation
/// accuracy; ties (common on small validation sets) to the lower validation loss
/// between epochs of the same phase ([`Config::phase`]), then to the earlier. Between epochs at
/// different phases (fine-tuning's second phase against its first) ties go to
/// the earlier: a network trained further is more confident, so its loss is lower on
/// the images it gets right without it being better (on circle… two of three seeds kept
/// a second-phase epoch by loss alone, each 1 to 1.5 points under the head alone on the
/// test images). Without validation figures (NaN) the later one wins.
pub fn stays_best(kept: &EpochMetrics, other: &EpochMetrics) -> bool {
    let same_phase = kept.phase == other.phase;
    kept.val_accuracy > other.val_accuracy
        || (kept.val_accuracy == other.val_accuracy && (!same_phase || kept.val_loss <= other.val_loss))
}

/// The best epoch of a run by [`stays_best`]: the one [`run`] keeps as `model.safetensors`
/// (the last one when there is no validation data).
pub fn best_epoch(metrics: &[EpochMetrics]) -> Option<&EpochMetrics> {
    metrics.iter().reduce(|kept, r| if stays_best(kept, r) { kept } else { r })
}

/// Trains `state` (fresh or resumed) until `cfg.epochs`, writing the checkpoint
/// directory after every epoch: `state.safetensors`, `model.safetensors` (the best
/// epoch by validation accuracy, or the last without validation data),
/// `metrics.csv` and `curves.png`.
pub fn run(dir: &Path, mut state: State, train: &Dataset, val: Option<&Dataset>, cfg: &Config) -> Result<State> {
    if train.is_empty() {
        bail!("no training images");
    }
    cfg.check()?;
    let _lock = checkpoint::lock(dir)?;
    let start = state.metrics.len();
    for epoch in start + 1..=cfg.epochs {
        let started = Instant::now();
        let bar = bar(cfg, epoch, train.len());
        let (train_loss, train_accuracy) =
            train_epoch(&mut state.net, &mut state.optimizer, train, cfg, epoch, bar.as_ref())?;
        let (val_loss, val_accuracy) = match val {
            Some(v) if !v.is_empty() => evaluate(&state.net, v),
            _ => (f32::NAN, f32::NAN),
        };
        let seconds = started.elapsed().as_secs_f32();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let row = EpochMetrics {
            epoch,
            train_loss,
            train_accuracy,
            val_loss,
            val_accuracy,
            learning_rate: cfg.lr,
            seconds,
            phase: cfg.phase,
        };
        if cfg.progress {
            eprintln!(
                "epoch {epoch:>3}/{}  loss {train_loss:.4}  acc {train_accuracy:.4}  val_loss {val_loss:.4}  val_acc {val_accuracy:.4}  {seconds:.2}s",
                cfg.epochs
            );
        }
        state.metrics.push(row);
        let has_val = val.is_some_and(|v| !v.is_empty());
        let best = best_epoch(&state.metrics).map_or(epoch, |b| b.epoch);
        let improved = !has_val || best == epoch;
        // The best weights before the state that records the epoch as finished (see
        // the order in [`checkpoint`]).
        if improved {
            let info = Info { classes: state.classes.clone(), epoch, val_accuracy: has_val.then_some(val_accuracy) };
            checkpoint::save(dir, &state.net, &info)?;
        }
        metrics::write_metrics_csv(&dir.join("metrics.csv"), &state.metrics)?;
        plot::write_curves_png(&dir.join("curves.png"), &state.metrics)?;
        checkpoint::save_state(dir, &state, &cfg.settings())?;
        if let (Some(patience), true) = (cfg.patience, has_val) {
            if epoch - best >= patience {
                if cfg.progress {
                    eprintln!("early stop: no better validation accuracy since epoch {best}");
                }
                break;
            }
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::arch::Arch;
    use crate::train::nn::optim::Kind;

    const ARCH: &str = r#"
input = [6, 6, 1]
[[layer]]
type = "conv2d"
filters = 3
kernel = 3
padding = "same"
activation = "relu"
[[layer]]
type = "flatten"
[[layer]]
type = "dense"
units = 2
activation = "softmax"
"#;

    /// Bright or dark 6×6 images with a little noise, labelled by brightness.
    fn data() -> Dataset {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let labels: Vec<usize> = (0..24).map(|i| i % 2).collect();
        let images = labels
            .iter()
            .flat_map(|&l| {
                (0..36).map(|_| 25 + 102 * l as u8 + rand::Rng::random_range(&mut rng, 0..102)).collect::<Vec<u8>>()
            })
            .collect();
        Dataset::new([6, 6, 1], images, labels, vec!["dark".into(), "bright".into()])
    }

    fn fresh() -> State {
        let net = Network::new(&Arch::parse(ARCH).expect("arch"), 3).expect("net");
        let optimizer = Optimizer::new(Kind::Adam, 0.0, &net);
        State { net, optimizer, metrics: vec![], classes: vec!["dark".into(), "bright".into()] }
    }

    fn config(epochs: usize) -> Config {
        Config {
            epochs,
            batch: 5,
            lr: 0.01,
            seed: 1,
            patience: None,
            augment: AugmentConfig::default(),
            progress: false,
            fake_quant: None,
            phase: 1,
        }
    }

    /// The folder's files that hold no wall-clock time, byte for byte, and the state
    /// (whose metrics record seconds per epoch) without the seconds.
    fn files(dir: &Path) -> (Vec<(String, Vec<u8>)>, String) {
        let bytes = ["model.safetensors", "arch.toml", "labels.txt"]
            .iter()
            .map(|f| (f.to_string(), std::fs::read(dir.join(f)).expect(f)))
            .collect();
        let mut state = checkpoint::load_state(dir).expect("state");
        state.metrics.iter_mut().for_each(|m| m.seconds = 0.0);
        let opt = &state.optimizer;
        (bytes, format!("{:?} {:?} {:?} {:?} {:?}", state.net.nodes, opt.m, opt.v, opt.step, state.metrics))
    }

    fn epoch_of(dir: &Path) -> (usize, usize) {
        let model = checkpoint::load(dir).expect("model").1.epoch;
        (model, checkpoint::load_state(dir).expect("state").metrics.len())
    }

    /// A run stopped before any of the writes of epoch 2 (each file in turn fails, as a
    /// kill before writing it would) loses no finished epoch: the folder's best weights
    /// are never older than its state, and resuming ends with the very bytes of an
    /// uninterrupted run. Two identical runs write identical checkpoint bytes (the
    /// safetensors header's keys sorted).
    #[test]
    fn a_stop_between_checkpoint_writes_loses_no_epoch() {
        let (data, val) = (data(), data().subset(&[0, 1, 2, 3]));
        let straight = tempfile::tempdir().expect("tmp");
        run(straight.path(), fresh(), &data, None, &config(3)).expect("straight run");
        let again = tempfile::tempdir().expect("tmp");
        run(again.path(), fresh(), &data, None, &config(3)).expect("second run");
        assert!(files(straight.path()) == files(again.path()), "identical runs, different bytes");

        for failing in ["model.safetensors", "state.safetensors"] {
            let dir = tempfile::tempdir().expect("tmp");
            run(dir.path(), fresh(), &data, None, &config(1)).expect("epoch 1");
            let resumed = checkpoint::load_state(dir.path()).expect("state");
            checkpoint::FAIL_WRITE.with(|f| f.set(Some(failing)));
            let err = run(dir.path(), resumed, &data, None, &config(3)).expect_err("stopped");
            checkpoint::FAIL_WRITE.with(|f| f.set(None));
            assert!(format!("{err:#}").contains("simulated failure"), "{err:#}");
            // Without validation every epoch is the best: the model may run ahead of
            // the state, never behind it.
            let (model_epoch, state_epoch) = epoch_of(dir.path());
            assert!(model_epoch >= state_epoch, "{failing}: model from epoch {model_epoch}, state at {state_epoch}");
            let resumed = checkpoint::load_state(dir.path()).expect("state");
            run(dir.path(), resumed, &data, None, &config(3)).expect("resumed");
            assert!(files(dir.path()) == files(straight.path()), "stopped before {failing}, then resumed: other bytes");
        }
        // With validation data too (the best epoch is not always the last).
        let dir = tempfile::tempdir().expect("tmp");
        run(dir.path(), fresh(), &data, Some(&val), &config(2)).expect("with validation");
        assert_eq!(epoch_of(dir.path()).1, 2);
    }

    /// The best epoch: the highest validation accuracy; a tie goes to the lower loss
    /// within a phase, to the earlier across phases (told apart by the phase, not by the
    /// learning rate: here both phases have the same one); without validation, the
    /// last epoch.
    #[test]
    fn best_epoch_breaks_ties_by_loss_within_a_phase_only() {
        let row = |epoch, val_accuracy, val_loss, phase| EpochMetrics {
            epoch,
            train_loss: 0.0,
            train_accuracy: 0.0,
            val_loss,
            val_accuracy,
            learning_rate: 0.003,
            seconds: 0.0,
            phase,
        };
        let best = |rows: &[EpochMetrics]| best_epoch(rows).map(|r| r.epoch);
        let phase_one = [row(1, 0.5, 0.9, 1), row(2, 0.75, 0.6, 1), row(3, 0.75, 0.5, 1)];
        assert_eq!(best(&phase_one), Some(3));
        let mut both = phase_one.to_vec();
        both.extend([row(4, 0.75, 0.2, 2), row(5, 0.5, 0.1, 2)]);
        assert_eq!(best(&both), Some(3));
        both.push(row(6, 0.875, 0.4, 2));
        assert_eq!(best(&both), Some(6));
        let blind: Vec<_> = (1..=3).map(|e| row(e, f32::NAN, f32::NAN, 1)).collect();
        assert_eq!(best(&blind), Some(3));
        assert_eq!(best(&[]), None);
    }
}
