//! `microcnn finetune --base BASE --data D --out DIR --mode feature-extraction|fine-tuning|scratch`

use anyhow::{bail, Context, Result};
use clap::Args;
use microcnn_tools::data::augment::AugmentArgs;
use microcnn_tools::data::dataset::Dataset;
use microcnn_tools::train::checkpoint::{self, State};
use microcnn_tools::train::fit::{self, load_data};
use microcnn_tools::train::float_tflite;
use microcnn_tools::train::metrics::EpochMetrics;
use microcnn_tools::train::nn::optim::{Kind, Optimizer};
use microcnn_tools::train::nn::Network;
use microcnn_tools::train::schedule;
use microcnn_tools::train::transfer::{self, Mode};
use microcnn_tools::train::zoo;
use std::path::PathBuf;

/// Transfer learning from a pretrained base (a zoo name, a checkpoint directory or a
/// float32 `.tflite` model).
#[derive(Args, Debug)]
pub struct Cmd {
    /// Zoo name (`microcnn zoo`), checkpoint directory, or float32 `.tflite` model whose
    /// last FULLY_CONNECTED (+ SOFTMAX) is the classifier to replace. Default: the
    /// general-purpose `vgg-bn-atoms-336`.
    #[arg(long, default_value = schedule::BASE)]
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
    /// Epochs of training (for fine-tuning: of the head, before unfreezing). Default:
    /// from the data, enough for 600 optimizer steps (20 to 300 epochs), stopping early.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Fine-tuning epochs after the top layers are unfrozen (default: half of --epochs).
    #[arg(long)]
    pub fine_tune_epochs: Option<usize>,
    /// Learning rate (Adam). Default: 0.003 for feature extraction and fine-tuning with a
    /// head of at most 256 inputs (`gap`), 0.001 for a wider one (`flatten`) and from
    /// scratch.
    #[arg(long)]
    pub lr: Option<f32>,
    /// Learning rate once the top layers are unfrozen (default: lr / 10).
    #[arg(long)]
    pub fine_tune_lr: Option<f32>,
    /// Base layers (top-level, counted from the top) unfrozen for fine-tuning.
    #[arg(long, default_value_t = 2)]
    pub unfreeze_top: usize,
    /// Use the base's first N top-level layers only (`microcnn summary` lists them).
    /// Default: the whole base, and, with neither --head nor this flag, also the base
    /// without its last width stage (its top layers with as many channels as its
    /// output); each is trained with each default head on the validation split and the
    /// best kept.
    #[arg(long)]
    pub base_layers: Option<usize>,
    /// The new classifier head: `gap` or `flatten`, then `dense:UNITS[:ACT]` and
    /// `dropout:RATE` items, comma-separated; a softmax layer over the data's classes is
    /// appended. Default: `gap,dense:32` and `flatten,dense:32` are both trained on the
    /// validation split (see --base-layers) and the one whose best epoch has the higher
    /// validation accuracy is kept (ties: `gap,dense:32`, also the head when there is
    /// no validation split).
    #[arg(long)]
    pub head: Option<String>,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use at most this many training images per class (a seeded draw).
    #[arg(long)]
    pub per_class: Option<usize>,
    /// Fraction held out for validation, stratified; the best epoch is kept (0: no
    /// validation, keep the last epoch). Default 0.2.
    #[arg(long)]
    pub val_split: Option<f32>,
    /// Stop after this many epochs without a better validation accuracy (default: a
    /// quarter of the epochs, at least 10; 0: never stop early).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Separate validation data.
    #[arg(long)]
    pub val_data: Option<String>,
    /// Folds of stratified cross-validation for choosing the head and base layers: each
    /// candidate trains K times, validated each time on another K-th of the images, and
    /// the one with the most validation images right over all K is kept. Default: 5 when
    /// the defaults choose between candidates on few images (under 50 a class, where one
    /// held-out fifth is a few images and one image decides), 1 (one split) otherwise.
    #[arg(long)]
    pub folds: Option<usize>,
    /// Re-estimate the base's batch-norm moving statistics on the training images
    /// before the head trains (feature extraction and fine-tuning; AdaBN: each layer in
    /// turn, then fixed; no weight changes). Off by default: measured +3.5 points of
    /// feature extraction on one few-shot shape task, none on another, -10 on digits
    /// (README, "Defaults").
    #[arg(long)]
    pub adapt_bn: bool,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
    /// Augmentation.
    #[command(flatten)]
    pub augment: AugmentArgs,
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    let augment = cmd.augment.config()?;
    // Checked with the rate of a narrow head; each candidate's own is set once it is built.
    let lr = cmd.lr.unwrap_or(schedule::head_learning_rate(cmd.mode, 0));
    // The counts the user gave are checked before anything is loaded.
    fit::Config {
        epochs: cmd.epochs.unwrap_or(1),
        batch: cmd.batch,
        lr,
        seed: cmd.seed,
        patience: None,
        augment: augment.clone(),
        progress: false,
        fake_quant: None,
        phase: 1,
    }
    .check()?;
    match cmd.folds {
        Some(0) => bail!("--folds 0: use --folds 1 for one validation split"),
        Some(k) if k > 1 && (cmd.val_split.is_some() || cmd.val_data.is_some()) => {
            bail!("--folds {k}: cross-validation makes its own splits; leave out --val-split and --val-data")
        }
        _ => {}
    }
    if cmd.fine_tune_epochs == Some(0) && cmd.mode == Mode::FineTuning {
        bail!("--fine-tune-epochs 0: use --mode feature-extraction to train the head alone");
    }
    let tflite = float_tflite::is_tflite(&cmd.base);
    let mut base = if tflite {
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
    if let Some(layers) = cmd.base_layers {
        transfer::check_layers(&base, layers).with_context(|| cmd.base.clone())?;
    }
    let full = cmd.base_layers.unwrap_or(depth);
    if cmd.mode == Mode::FineTuning && (cmd.unfreeze_top == 0 || cmd.unfreeze_top > full) {
        let has = if full < depth {
            format!("--base-layers keeps {full} of the base {}'s {depth} layers", cmd.base)
        } else {
            format!("the base {} has {depth} layers", cmd.base)
        };
        bail!("--unfreeze-top {}: {has}; choose 1 to {full}", cmd.unfreeze_top);
    }
    let shape = base.input_shape();
    let val_split = if cmd.val_data.is_some() { 0.0 } else { cmd.val_split.unwrap_or(schedule::VAL_SPLIT) };
    let fit::Loaded { all, train: train_set, val: val_set } =
        load_data(&cmd.data, cmd.val_data.as_deref(), val_split, cmd.seed, shape, cmd.per_class)
            .with_context(|| format!("the base {} takes {}×{}×{} images", cmd.base, shape[0], shape[1], shape[2]))?;
    let epochs = cmd.epochs.unwrap_or_else(|| schedule::epochs(train_set.len(), cmd.batch));
    let fine_tune_epochs = cmd.fine_tune_epochs.unwrap_or_else(|| schedule::fine_tune_epochs(epochs));
    let patience = match cmd.patience {
        Some(0) => None,
        Some(p) => Some(p),
        None => val_set.is_some().then(|| schedule::patience(epochs)),
    };
    let cfg = fit::Config {
        epochs,
        batch: cmd.batch,
        lr,
        seed: cmd.seed,
        patience,
        augment,
        progress: !cmd.quiet,
        fake_quant: None,
        phase: 1,
    };
    let classes = train_set.classes.clone();
    // --adapt-bn: the base's batch-norm statistics re-estimated on the images the head trains on.
    // They depend only on the base's layers, so the base is adapted once and every head
    // built from it (`adapt_batchnorm`'s test checks this equals adapting a built network).
    let adapt = cmd.mode != Mode::Scratch && cmd.adapt_bn;
    if adapt {
        transfer::adapt_batchnorm(&mut base, depth, &train_set);
    }
    let build = |base: &Network, c: &Candidate| {
        transfer::build(base, c.layers, c.head, classes.len(), cmd.mode == Mode::Scratch, cmd.seed)
    };
    // What to train: the user's head or base layers, or the default ones when a
    // validation split can choose between them (the base cut only when neither is given,
    // and deep enough to fine-tune). Each is built (and so checked) before anything is
    // written.
    let heads: Vec<&str> = match (&cmd.head, &val_set) {
        (Some(head), _) => vec![head.as_str()],
        (None, Some(_)) => schedule::HEADS.to_vec(),
        (None, None) => vec![schedule::HEAD],
    };
    let cut = transfer::stage_cut(&base).filter(|&c| cmd.mode != Mode::FineTuning || cmd.unfreeze_top <= c);
    let layers: Vec<usize> = match (&cmd.head, cmd.base_layers, &val_set, cut) {
        (None, None, Some(_), Some(cut)) => vec![depth, cut],
        _ => vec![full],
    };
    let mut candidates: Vec<Candidate> =
        layers.iter().flat_map(|&layers| heads.iter().map(move |&head| Candidate { layers, head, lr })).collect();
    let nets = candidates.iter().map(|c| build(&base, c)).collect::<Result<Vec<_>>>()?;
    if cmd.lr.is_none() {
        for (c, net) in candidates.iter_mut().zip(&nets) {
            c.lr = schedule::head_learning_rate(cmd.mode, transfer::head_inputs(net, c.layers));
        }
    }
    // Few images: the validation run chooses the epoch; the model is then trained again
    // on every image (the held-out ones too) for that many epochs.
    let refit = val_set.is_some()
        && cmd.val_split.is_none()
        && cmd.val_data.is_none()
        && schedule::refit(all.len(), classes.len());
    let folds = cmd.folds.unwrap_or(if refit && candidates.len() > 1 { schedule::FOLDS } else { 1 });
    if folds > all.len() {
        bail!("--folds {folds}: more folds than the {} images of {}", all.len(), cmd.data);
    }
    let splits: Vec<(Dataset, Option<Dataset>)> = if folds > 1 {
        all.stratified_folds(folds, cmd.seed).into_iter().map(|(t, v)| (t, Some(v))).collect()
    } else {
        vec![(train_set.clone(), val_set.clone())]
    };
    if checkpoint::state_path(&cmd.out).exists() {
        bail!("{}: holds a training run already; choose a new --out", cmd.out.display());
    }
    if !cmd.quiet {
        eprintln!(
            "{} training images, {}: {epochs} epochs{}, {}{}{}",
            train_set.len(),
            match &val_set {
                _ if folds > 1 => format!("{folds}-fold cross-validation (best epochs kept)"),
                Some(v) => format!("{} validation images (best epoch kept)", v.len()),
                None => "no validation (last epoch kept)".to_string(),
            },
            if cmd.mode == Mode::FineTuning { format!(" + {fine_tune_epochs} fine-tuning") } else { String::new() },
            candidates.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" or "),
            if adapt { ", the base's batch-norm statistics re-estimated on them" } else { "" },
            patience
                .map(|p| format!(", early stop after {p} epochs without a better val_accuracy"))
                .unwrap_or_default()
        );
    }
    std::fs::create_dir_all(&cmd.out).with_context(|| format!("{}: cannot create the directory", cmd.out.display()))?;
    let phases = Phases { cmd, out: &cmd.out, fine_tune_epochs };
    let (state, chosen, trained_on) = train_candidates(&phases, &candidates, nets, &splits, &cfg)?;
    let best = fit::best_epoch(&state.state.metrics).map_or(0, |m| m.epoch);
    let (state, kept) = if refit {
        for (from, to) in [("metrics.csv", "validation-metrics.csv"), ("curves.png", "validation-curves.png")] {
            let (from, to) = (cmd.out.join(from), cmd.out.join(to));
            std::fs::rename(&from, &to).with_context(|| format!("{}: cannot rename", from.display()))?;
        }
        let first = best.min(state.phase_one);
        if !cmd.quiet {
            eprintln!("best epoch {best} of the validation run; training again on all {} images", all.len());
        }
        if adapt {
            transfer::adapt_batchnorm(&mut base, depth, &all);
        }
        let net = build(&base, &chosen)?;
        let mut cfg = fit::Config { epochs: first, patience: None, ..cfg };
        let refit_phases = Phases { fine_tune_epochs: best - first, ..phases };
        let state = refit_phases.run(chosen, net, &all, None, &mut cfg)?;
        (state, format!("on all {} images for the {best} epochs a validation split chose", all.len()))
    } else {
        (state, format!("on {trained_on} images, kept epoch {best}"))
    };
    outln!(
        "{}: {:?} from {}, {chosen}, {kept} ({} epochs run)",
        cmd.out.display(),
        cmd.mode,
        cmd.base,
        state.state.metrics.len()
    );
    outln!("{}", microcnn_tools::io::memory::peak_rss_line());
    Ok(())
}

/// A head on the base's first `layers` layers, trained at `lr` (fine-tuning's second
/// phase at a tenth of it unless `--fine-tune-lr`).
#[derive(Clone, Copy, Debug)]
struct Candidate<'a> {
    layers: usize,
    head: &'a str,
    lr: f32,
}

impl std::fmt::Display for Candidate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "head {} on {} base layers at lr {}", self.head, self.layers, self.lr)
    }
}

/// Trains each candidate's network on each split (one, or the folds of a
/// cross-validation) and keeps the candidate with the most validation images right at
/// its runs' best epochs ([`fit::best_epoch`]); ties go to the earlier candidate, not to
/// the lower validation loss as between epochs of one run: candidates come in order of
/// preference (the whole base, then the cut; `gap`, then `flatten`), and the larger
/// heads are more confident, so their loss is lower on the images they get right. On
/// the drawn tasks the loss broke accuracy ties towards the cut on 2 of 4 seed-0
/// runs, 0.5 and 3.75 points below the whole base on the test images. Of the kept
/// candidate's runs, the one whose best epoch is the median is kept (it chooses the
/// epochs of a refit). One candidate on one split trains in `--out` itself; otherwise
/// each run trains in a folder of its own inside it, the kept run is moved to `--out`,
/// every run's figures go to `heads.csv` and the other runs are removed. Returns the
/// kept run, its candidate and the number of images it trained on.
fn train_candidates<'c>(
    phases: &Phases,
    candidates: &[Candidate<'c>],
    nets: Vec<Network>,
    splits: &[(Dataset, Option<Dataset>)],
    cfg: &fit::Config,
) -> Result<(Trained, Candidate<'c>, usize)> {
    let out = phases.out;
    if let ([one], [(train, val)]) = (candidates, splits) {
        let net = nets.into_iter().next().context("internal error: no network for the head")?;
        return Ok((phases.run(*one, net, train, val.as_ref(), &mut cfg.clone())?, *one, train.len()));
    }
    struct Run {
        dir: std::path::PathBuf,
        best: EpochMetrics,
        validated: usize,
    }
    // Validation images right: accuracy × images, exact for the counts they come from.
    let right = |r: &Run| (r.best.val_accuracy * r.validated as f32).round() as usize;
    let score = |folds: &[Run]| folds.iter().map(right).sum::<usize>();
    let mut runs: Vec<Vec<Run>> = Vec::new();
    // The kept candidate so far, its median run (by best epoch) and that run's state;
    // every other run's state is dropped as soon as its candidate is scored.
    let mut kept: Option<(usize, usize, Trained)> = None;
    for (i, (net, c)) in nets.into_iter().zip(candidates).enumerate() {
        let mut folds = Vec::new();
        let mut states = Vec::new();
        let mut net = Some(net);
        for (j, (train, val)) in splits.iter().enumerate() {
            let (name, label) = match splits.len() {
                1 => (format!("head-{}", i + 1), String::new()),
                k => (format!("head-{}-fold-{}", i + 1, j + 1), format!(", fold {} of {k}", j + 1)),
            };
            let dir = out.join(name);
            if dir.exists() {
                bail!("{}: exists; choose a new --out", dir.display());
            }
            std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create the directory", dir.display()))?;
            if cfg.progress {
                eprintln!("{c}{label}:");
            }
            // The last split takes the network itself, the others a copy.
            let net = if j + 1 == splits.len() { net.take() } else { net.clone() };
            let net = net.context("internal error: no network for the head")?;
            let trained = Phases { out: &dir, ..*phases }.run(*c, net, train, val.as_ref(), &mut cfg.clone())?;
            let best = fit::best_epoch(&trained.state.metrics).context("internal error: a run without epochs")?.clone();
            let validated = val.as_ref().map_or(0, Dataset::len);
            folds.push(Run { dir, best, validated });
            states.push(Some(trained));
        }
        let mut order: Vec<usize> = (0..folds.len()).collect();
        order.sort_by_key(|&j| folds[j].best.epoch);
        let median = order[(order.len() - 1) / 2];
        if kept.as_ref().is_none_or(|&(b, _, _)| score(&folds) > score(&runs[b])) {
            let state = states[median].take().context("internal error: no state for the median run")?;
            kept = Some((i, median, state));
        }
        runs.push(folds);
    }
    let (kept, median, trained) = kept.context("internal error: no candidate")?;
    let mut table = String::from("head,base_layers,lr,fold,validated,val_accuracy,val_loss,epoch,kept\n");
    for (i, (c, folds)) in candidates.iter().zip(&runs).enumerate() {
        for (j, r) in folds.iter().enumerate() {
            let (accuracy, loss, epoch, validated) = (r.best.val_accuracy, r.best.val_loss, r.best.epoch, r.validated);
            let is_kept = i == kept && j == median;
            table += &format!(
                "\"{}\",{},{},{},{validated},{accuracy},{loss},{epoch},{is_kept}\n",
                c.head,
                c.layers,
                c.lr,
                j + 1
            );
        }
        if cfg.progress {
            let total: usize = folds.iter().map(|r| r.validated).sum();
            eprintln!(
                "{c}: {} of {total} validation images right{}",
                score(folds),
                if i == kept { ", kept" } else { "" }
            );
        }
    }
    let run = runs[kept].swap_remove(median);
    for entry in std::fs::read_dir(&run.dir).with_context(|| format!("{}: cannot read", run.dir.display()))? {
        let from = entry.with_context(|| format!("{}: cannot read", run.dir.display()))?.path();
        if from.file_name() != Some(std::ffi::OsStr::new(checkpoint::LOCK_FILE)) {
            let to = out.join(from.file_name().expect("a file name"));
            std::fs::rename(&from, &to).with_context(|| format!("{}: cannot move", from.display()))?;
        }
    }
    for dir in std::iter::once(&run.dir).chain(runs.iter().flatten().map(|r| &r.dir)) {
        std::fs::remove_dir_all(dir).with_context(|| format!("{}: cannot remove", dir.display()))?;
    }
    let path = out.join("heads.csv");
    std::fs::write(&path, table).with_context(|| format!("{}: cannot write", path.display()))?;
    Ok((trained, candidates[kept], splits[median].0.len()))
}

/// The training phases of a mode: the head on the frozen base, then (fine-tuning) the
/// top layers unfrozen, written to `out`.
#[derive(Clone, Copy)]
struct Phases<'a> {
    cmd: &'a Cmd,
    out: &'a std::path::Path,
    fine_tune_epochs: usize,
}

/// A trained state and how many epochs its first phase ran.
struct Trained {
    state: State,
    phase_one: usize,
}

impl Phases<'_> {
    /// Trains `net`, the candidate `c`'s network.
    fn run(
        &self,
        c: Candidate,
        mut net: Network,
        train: &Dataset,
        val: Option<&Dataset>,
        cfg: &mut fit::Config,
    ) -> Result<Trained> {
        let cmd = self.cmd;
        if cmd.mode != Mode::Scratch {
            transfer::freeze_base(&mut net, c.layers, 0);
        }
        cfg.lr = c.lr;
        let optimizer = Optimizer::new(Kind::Adam, 0.0, &net);
        let classes = train.classes.clone();
        let state = State { net, optimizer, metrics: vec![], classes };
        let mut state = fit::run(self.out, state, train, val, cfg)?;
        let phase_one = state.metrics.len();
        if cmd.mode == Mode::FineTuning && self.fine_tune_epochs > 0 {
            if val.is_some() {
                // Unfreeze from the best head (as Keras's EarlyStopping(restore_best_weights=True)
                // would), not from the epoch the first phase happened to stop at; the
                // second phase gets its full patience from its own start.
                let (best, info) = checkpoint::load(self.out)?;
                state.net = best;
                cfg.patience = cfg.patience.map(|p| p + phase_one - info.epoch);
            }
            transfer::freeze_base(&mut state.net, c.layers, cmd.unfreeze_top);
            state.optimizer = Optimizer::new(Kind::Adam, 0.0, &state.net);
            cfg.lr = cmd.fine_tune_lr.unwrap_or(c.lr / 10.0);
            cfg.phase = 2;
            cfg.epochs = phase_one + self.fine_tune_epochs;
            state = fit::run(self.out, state, train, val, cfg)?;
        }
        Ok(Trained { state, phase_one })
    }
}
