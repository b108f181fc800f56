//! `microcnn finetune --base BASE --data D --out DIR --mode feature-extraction|fine-tuning|scratch`

use anyhow::{bail, Context, Result};
use clap::Args;
use microcnn_tools::data::augment::AugmentArgs;
use microcnn_tools::train::checkpoint::{self, State};
use microcnn_tools::train::fit::{self, load_data};
use microcnn_tools::train::float_tflite;
use microcnn_tools::train::nn::optim::{Kind, Optimizer};
use microcnn_tools::train::transfer::{self, Mode};
use microcnn_tools::train::zoo;
use std::path::PathBuf;

/// Transfer learning from a pretrained base (a zoo name, a checkpoint directory or a
/// float32 `.tflite` model).
#[derive(Args, Debug)]
pub struct Cmd {
    /// Zoo name (`microcnn zoo`), checkpoint directory, or float32 `.tflite` model whose
    /// last FULLY_CONNECTED (+ SOFTMAX) is the classifier to replace.
    #[arg(long)]
    pub base: String,
    /// Training data; images are resized and converted to the base's input.
    #[arg(long)]
    pub data: String,
    /// Checkpoint directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// How to use the base.
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// Epochs of training (for fine-tuning: of the head, before unfreezing).
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Fine-tuning epochs after the top layers are unfrozen.
    #[arg(long, default_value_t = 10)]
    pub fine_tune_epochs: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 0.001)]
    pub lr: f32,
    /// Learning rate once the top layers are unfrozen (default: lr / 10).
    #[arg(long)]
    pub fine_tune_lr: Option<f32>,
    /// Base layers (top-level, counted from the top) unfrozen for fine-tuning.
    #[arg(long, default_value_t = 2)]
    pub unfreeze_top: usize,
    /// The new classifier head: `gap` or `flatten`, then `dense:UNITS[:ACT]` and `dropout:RATE` items, comma-separated; a
    /// softmax layer over the data's classes is appended.
    #[arg(long, default_value = "gap")]
    pub head: String,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use at most this many training images per class (a seeded draw).
    #[arg(long)]
    pub per_class: Option<usize>,
    /// Fraction held out for validation (0: keep the last epoch).
    #[arg(long, default_value_t = 0.0)]
    pub val_split: f32,
    /// Separate validation data.
    #[arg(long)]
    pub val_data: Option<String>,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
    /// Augmentation.
    #[command(flatten)]
    pub augment: AugmentArgs,
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    let mut cfg = fit::Config {
        epochs: cmd.epochs,
        batch: cmd.batch,
        lr: cmd.lr,
        seed: cmd.seed,
        patience: None,
        augment: cmd.augment.config()?,
        progress: !cmd.quiet,
        fake_quant: None,
    };
    cfg.check()?;
    let tflite = float_tflite::is_tflite(&cmd.base);
    let base = if tflite {
        let path = std::path::Path::new(&cmd.base);
        let net = float_tflite::load(path)?;
        float_tflite::check_classifier(&net).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        float_tflite::check_data_size(&cmd.data, path, net.input_shape())?;
        if let Some(v) = &cmd.val_data {
            float_tflite::check_data_size(v, path, net.input_shape())?;
        }
        net
    } else {
        zoo::load(&cmd.base)?.0
    };
    let depth = transfer::base_depth(&base.arch);
    if cmd.mode == Mode::FineTuning && (cmd.unfreeze_top == 0 || cmd.unfreeze_top > depth) {
        bail!("--unfreeze-top {}: the base {} has {depth} layers; choose 1 to {depth}", cmd.unfreeze_top, cmd.base);
    }
    let shape = base.input_shape();
    let (train_set, val_set) =
        load_data(&cmd.data, cmd.val_data.as_deref(), cmd.val_split, cmd.seed, shape, cmd.per_class)
            .with_context(|| format!("the base {} takes {}×{}×{} images", cmd.base, shape[0], shape[1], shape[2]))?;
    let classes = train_set.classes.clone();
    let mut net = transfer::build(&base, &cmd.head, classes.len(), cmd.mode == Mode::Scratch, cmd.seed)?;
    if checkpoint::state_path(&cmd.out).exists() {
        bail!("{}: holds a training run already; choose a new --out", cmd.out.display());
    }
    std::fs::create_dir_all(&cmd.out).with_context(|| format!("{}: cannot create the directory", cmd.out.display()))?;
    if cmd.mode != Mode::Scratch {
        transfer::freeze_base(&mut net, depth, 0);
    }
    let optimizer = Optimizer::new(Kind::Adam, 0.0, &net);
    let state = State { net, optimizer, metrics: vec![], classes };
    let mut state = fit::run(&cmd.out, state, &train_set, val_set.as_ref(), &cfg)?;
    if cmd.mode == Mode::FineTuning {
        transfer::freeze_base(&mut state.net, depth, cmd.unfreeze_top);
        state.optimizer = Optimizer::new(Kind::Adam, 0.0, &state.net);
        cfg.lr = cmd.fine_tune_lr.unwrap_or(cmd.lr / 10.0);
        cfg.epochs = cmd.epochs + cmd.fine_tune_epochs;
        state = fit::run(&cmd.out, state, &train_set, val_set.as_ref(), &cfg)?;
    }
    let (_, info) = checkpoint::load(&cmd.out)?;
    outln!(
        "{}: {:?} from {} on {} images, {} epochs (kept epoch {})",
        cmd.out.display(),
        cmd.mode,
        cmd.base,
        train_set.len(),
        state.metrics.len(),
        info.epoch
    );
    outln!("{}", microcnn_tools::io::memory::peak_rss_line());
    Ok(())
}
