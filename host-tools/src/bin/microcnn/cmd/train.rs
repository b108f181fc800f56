//! `microcnn train --data D --arch A.toml --out DIR`: f32 training with a checkpoint
//! after every epoch.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use microcnn_tools::data::augment::AugmentArgs;
use microcnn_tools::data::dataset::Dataset;
use microcnn_tools::train::checkpoint::{self, State};
use microcnn_tools::train::fit::{self, load_data};
use microcnn_tools::train::nn::optim::{Kind, Optimizer};
use microcnn_tools::train::nn::Network;
use microcnn_tools::train::presets;
use microcnn_tools::train::schedule;
use std::path::PathBuf;

/// Train a CNN in f32 on a dataset.
#[derive(Args, Debug)]
pub struct Cmd {
    /// Training data: a folder of class folders, an IDX images file, `digits`, or `shapes[:…]`.
    #[arg(long)]
    pub data: String,
    /// Architecture file (TOML) or preset (vgg, resnet, xception, inception, mobilenet,
    /// inception-resnet).
    #[arg(long, required_unless_present = "resume")]
    pub arch: Option<String>,
    /// Checkpoint directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Epochs. Default: from the data, enough for 600 optimizer steps (20 to 300
    /// epochs), stopping early (see --patience).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 0.001)]
    pub lr: f32,
    /// Optimizer.
    #[arg(long, value_enum, default_value_t = Kind::Adam)]
    pub optimizer: Kind,
    /// Momentum for SGD (Keras's default is 0).
    #[arg(long, default_value_t = 0.0)]
    pub momentum: f32,
    /// Seed of initialization, split, shuffling, augmentation and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of the training data held out for validation (stratified).
    #[arg(long, default_value_t = 0.1)]
    pub val_split: f32,
    /// Separate validation data (instead of --val-split).
    #[arg(long)]
    pub val_data: Option<String>,
    /// Use at most this many training images per class (a seeded draw), to study
    /// small-data training.
    #[arg(long)]
    pub per_class: Option<usize>,
    /// Stop after this many epochs without a better validation accuracy. Default: with
    /// the default --epochs, a quarter of them (at least 10); with --epochs, never.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Continue the run in --out from its last finished epoch (with the same
    /// optimizer, momentum, learning rate, batch, seed and augmentation).
    #[arg(long)]
    pub resume: bool,
    /// With --resume: continue even though those settings differ from the run's (a new
    /// optimizer starts with fresh moments).
    #[arg(long, requires = "resume")]
    pub force_resume: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Augmentation.
    #[command(flatten)]
    pub augment: AugmentArgs,
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    let mut cfg = fit::Config {
        epochs: cmd.epochs.unwrap_or(1),
        batch: cmd.batch,
        lr: cmd.lr,
        seed: cmd.seed,
        patience: cmd.patience,
        augment: cmd.augment.config()?,
        progress: !cmd.quiet,
        fake_quant: None,
        phase: 1,
    };
    cfg.check()?;
    let load = |shape| load_data(&cmd.data, cmd.val_data.as_deref(), cmd.val_split, cmd.seed, shape, cmd.per_class);
    // A preset's data is read before its network is built (for the class count); kept here.
    let mut early = None;
    let state = if cmd.resume {
        let state =
            checkpoint::load_state(&cmd.out).with_context(|| format!("{}: cannot resume", cmd.out.display()))?;
        let mut state = state;
        let before = checkpoint::load_settings(&cmd.out)?;
        let mut now = cfg.settings();
        now.insert("optimizer".into(), format!("{:?}", cmd.optimizer).to_lowercase());
        now.insert("momentum".into(), cmd.momentum.to_string());
        let mut was = before;
        was.insert("optimizer".into(), format!("{:?}", state.optimizer.kind).to_lowercase());
        was.insert("momentum".into(), state.optimizer.momentum.to_string());
        let changed: Vec<String> = now
            .iter()
            .filter(|(k, v)| was.get(*k).is_some_and(|w| w != *v))
            .map(|(k, v)| format!("{k} {v} (the run's {})", was[k]))
            .collect();
        if !changed.is_empty() {
            if !cmd.force_resume {
                bail!(
                    "{}: {} differs from the run being resumed; pass the run's values, or --force-resume to continue with the new ones",
                    cmd.out.display(),
                    changed.join(", ")
                );
            }
            if cmd.optimizer != state.optimizer.kind || cmd.momentum != state.optimizer.momentum {
                state.optimizer = Optimizer::new(cmd.optimizer, cmd.momentum, &state.net);
            }
        }
        if let Some(spec) = &cmd.arch {
            let (arch, preset) = presets::resolve(spec)?;
            let arch = if preset { presets::with_classes(arch, state.net.output_size()) } else { arch };
            if arch != state.net.arch {
                bail!(
                    "{spec}: differs from the architecture in {}; resume without --arch or use a new --out",
                    cmd.out.display()
                );
            }
        }
        state
    } else {
        let spec = cmd.arch.as_ref().context("--arch is required")?;
        let (arch, preset) = presets::resolve(spec)?;
        let arch = if preset {
            // A preset's classifier takes as many units as the data has classes.
            let loaded = load(arch.input)?;
            let classes = loaded.all.classes.len();
            early = Some(loaded);
            presets::with_classes(arch, classes)
        } else {
            arch
        };
        let net = Network::new(&arch, cmd.seed).with_context(|| spec.clone())?;
        if checkpoint::state_path(&cmd.out).exists() {
            bail!(
                "{}: holds a training run already; pass --resume to continue it, or choose a new --out",
                cmd.out.display()
            );
        }
        let optimizer = Optimizer::new(cmd.optimizer, cmd.momentum, &net);
        State { net, optimizer, metrics: vec![], classes: vec![] }
    };
    let shape = state.net.input_shape();
    let fit::Loaded { train: train_set, val: val_set, .. } = match early {
        Some(loaded) => loaded,
        None => load(shape)?,
    };
    let outputs = state.net.output_size();
    if train_set.classes.len() != outputs {
        bail!("{}: {} classes, but the network's last layer has {outputs} units", cmd.data, train_set.classes.len());
    }
    // A resumed run keeps the checkpoint's classes, matched by name.
    let (train_set, val_set) = if state.classes.is_empty() {
        (train_set, val_set)
    } else {
        let relabel = |d: Dataset| d.relabel(&state.classes).map_err(|e| anyhow!("{}: {e}", cmd.data));
        (relabel(train_set)?, val_set.map(relabel).transpose()?)
    };
    let state = State { classes: train_set.classes.clone(), ..state };
    if cmd.epochs.is_none() {
        cfg.epochs = schedule::epochs(train_set.len(), cmd.batch);
        if cfg.patience.is_none() && val_set.as_ref().is_some_and(|v| !v.is_empty()) {
            cfg.patience = Some(schedule::patience(cfg.epochs));
        }
    }
    let created = !cmd.out.exists();
    std::fs::create_dir_all(&cmd.out).with_context(|| format!("{}: cannot create the directory", cmd.out.display()))?;
    eprintln!(
        "training on {} images ({} classes, {}×{}×{}), validating on {}: {} epochs{}",
        train_set.len(),
        train_set.classes.len(),
        shape[0],
        shape[1],
        shape[2],
        val_set.as_ref().map_or(0, Dataset::len),
        cfg.epochs,
        cfg.patience.map(|p| format!(", early stop after {p} without a better val_accuracy")).unwrap_or_default()
    );
    interrupt_handler(cmd)?;
    let state = match fit::run(&cmd.out, state, &train_set, val_set.as_ref(), &cfg) {
        Ok(state) => state,
        Err(e) if e.is::<fit::Interrupted>() => {
            let finished = checkpoint::state_path(&cmd.out).is_file();
            if created && !finished {
                let _ = std::fs::remove_file(cmd.out.join(checkpoint::LOCK_FILE));
                let _ = std::fs::remove_dir(&cmd.out);
            }
            eprintln!("{}", interrupted_message(cmd, finished));
            std::process::exit(130);
        }
        Err(e) => {
            // A run that stopped before its first epoch was saved leaves no empty
            // folder behind (remove_dir only removes an empty one).
            if created {
                let _ = std::fs::remove_file(cmd.out.join(checkpoint::LOCK_FILE));
                let _ = std::fs::remove_dir(&cmd.out);
            }
            return Err(e);
        }
    };
    let (_, info) = checkpoint::load(&cmd.out)?;
    let last = state.metrics.last();
    let per_epoch: f32 = state.metrics.iter().map(|m| m.seconds).sum::<f32>() / state.metrics.len().max(1) as f32;
    outln!(
        "{}: best epoch {} (val_accuracy {}), last train_accuracy {:.4}, {:.2} s/epoch",
        cmd.out.display(),
        info.epoch,
        info.val_accuracy.map_or("n/a".into(), |a| format!("{a:.4}")),
        last.map_or(0.0, |m| m.train_accuracy),
        per_epoch
    );
    outln!("{}", microcnn_tools::io::memory::peak_rss_line());
    Ok(())
}

/// Ctrl-C stops training after the batch in progress (see [`fit::INTERRUPT`]); a second
/// Ctrl-C ends the process at once.
fn interrupt_handler(cmd: &Cmd) -> Result<()> {
    let out = cmd.out.clone();
    ctrlc::set_handler(move || {
        if fit::INTERRUPT.swap(true, std::sync::atomic::Ordering::Relaxed) {
            eprintln!("\n{}: interrupted again; stopping now", out.display());
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")
}

/// What to run next after Ctrl-C: this command with `--resume`, or (nothing finished)
/// the same command again.
fn interrupted_message(cmd: &Cmd, finished: bool) -> String {
    let quote = |a: String| {
        if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@".contains(c)) {
            a
        } else {
            format!("'{}'", a.replace('\'', "'\\''"))
        }
    };
    let mut args: Vec<String> = std::env::args().map(quote).collect();
    if let Some(first) = args.first_mut() {
        *first = "microcnn".into();
    }
    if finished {
        if !cmd.resume {
            args.push("--resume".into());
        }
        format!(
            "\ninterrupted; the last finished epoch is saved in {}. Continue with:\n  {}",
            cmd.out.display(),
            args.join(" ")
        )
    } else {
        args.retain(|a| a != "--resume" && a != "--force-resume");
        format!(
            "\ninterrupted before the first epoch finished; nothing was saved. Start again with:\n  {}",
            args.join(" ")
        )
    }
}
