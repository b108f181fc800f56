//! Defaults from the data: how long to train, how fast, and when to stop, for a user who
//! passes no flags. A fixed epoch count is wrong at both ends: 20 epochs of 4,000 images
//! are 2,500 optimizer steps, 20 epochs of 80 images are 60, far too few for a new head
//! to converge. So a default run trains for at least [`MIN_STEPS`] steps (at least
//! [`MIN_EPOCHS`] epochs, at most [`MAX_EPOCHS`]), holds out a stratified validation
//! split, keeps the best epoch, and stops early once the validation accuracy has not
//! improved for a quarter of the run. With few images (under 50 a class), `finetune`
//! then trains again on all of them, held-out ones included, for the epochs validation
//! chose ([`refit`]). Every value a flag gives wins over its default.
//!
//! The figures come from measurement on three few-shot tasks (README, "Defaults"):
//! new heads on frozen bases kept improving up to 500–800 steps, and a learning rate of
//! 0.003 with a `gap,dense:32` head was best or within noise of the best on each.

use crate::train::transfer::Mode;

/// Optimizer steps a default schedule gives at least.
pub const MIN_STEPS: usize = 600;
/// Fewest epochs of a default schedule (large datasets).
pub const MIN_EPOCHS: usize = 20;
/// Most epochs of a default schedule (tiny datasets).
pub const MAX_EPOCHS: usize = 300;
/// Fraction held out (stratified) for validation when neither `--val-split` nor
/// `--val-data` is given.
pub const VAL_SPLIT: f32 = 0.2;
/// The zoo base `finetune` starts from when `--base` is not given: the general-purpose
/// base that transferred best to the README's few-shot tasks (all five, feature
/// extraction and fine-tuning).
pub const BASE: &str = "vgg-bn-atoms-336";
/// The classifier heads a default `finetune` run tries on the validation split, keeping
/// the one that validates better (ties go to the first): global average pooling keeps
/// what a feature is, wherever it is, and is best on the shape tasks; flattening keeps
/// where it is, and is best on digits (README, "Defaults").
pub const HEADS: [&str; 2] = ["gap,dense:32", "flatten,dense:32"];
/// Folds of the cross-validation that chooses between the default candidates (heads and
/// base depths) when there are few images ([`refit`]): one held-out fifth of 20 images
/// a class is 4 a class, where one image decides; five folds validate on every image.
pub const FOLDS: usize = 5;
/// The head `finetune` uses when no validation split can choose one (`--val-split 0`).
pub const HEAD: &str = HEADS[0];

/// Epochs for `images` training images in batches of `batch`: enough for
/// [`MIN_STEPS`] optimizer steps, within [`MIN_EPOCHS`]..=[`MAX_EPOCHS`].
pub fn epochs(images: usize, batch: usize) -> usize {
    let steps_per_epoch = images.div_ceil(batch.max(1)).max(1);
    MIN_STEPS.div_ceil(steps_per_epoch).clamp(MIN_EPOCHS, MAX_EPOCHS)
}

/// Epochs without a better validation accuracy after which a default run stops: a
/// quarter of the planned epochs, at least 10.
pub fn patience(epochs: usize) -> usize {
    (epochs / 4).max(10)
}

/// The learning rate (Adam) for training a new head or a network from scratch.
pub fn learning_rate(mode: Option<Mode>) -> f32 {
    match mode {
        Some(Mode::FeatureExtraction | Mode::FineTuning) => 0.003,
        Some(Mode::Scratch) | None => 0.001,
    }
}

/// Inputs of a head's first dense layer above which [`head_learning_rate`] takes the
/// lower rate.
pub const WIDE_HEAD: usize = 256;

/// The learning rate (Adam) for a new head whose first dense layer has `inputs` inputs:
/// [`learning_rate`]'s 0.003, but 0.001 (Keras's default) for a head wider than
/// [`WIDE_HEAD`]. Adam moves every weight by about the rate each step, so a unit's
/// input moves by up to the rate times the sum of its inputs: with a `flatten` head on a
/// cut ResNet (4,096 inputs) at 0.003, two of six runs on 20 digits a class stalled at
/// 0.3–0.6 training accuracy (one refit 0.48 on the test digits; at 0.001, 0.94), where
/// `gap` heads (16 to 64 inputs) train best at 0.003. From scratch the whole network
/// trains at 0.001 whatever its head.
pub fn head_learning_rate(mode: Mode, inputs: usize) -> f32 {
    match mode {
        Mode::FeatureExtraction | Mode::FineTuning if inputs > WIDE_HEAD => 0.001,
        _ => learning_rate(Some(mode)),
    }
}

/// Whether a default run on `images` images of `classes` classes trains again on every
/// image once validation has chosen the epoch: below 50 images per class, where the
/// fifth held out for validation is a fifth of what there is to learn from.
pub fn refit(images: usize, classes: usize) -> bool {
    images < 50 * classes.max(1)
}

/// Epochs of the second fine-tuning phase (top layers unfrozen): half the first's.
pub fn fine_tune_epochs(epochs: usize) -> usize {
    (epochs / 2).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_heads_train_at_the_lower_rate() {
        for mode in [Mode::FeatureExtraction, Mode::FineTuning] {
            assert_eq!(head_learning_rate(mode, 64), 0.003);
            assert_eq!(head_learning_rate(mode, WIDE_HEAD), 0.003);
            assert_eq!(head_learning_rate(mode, WIDE_HEAD + 1), 0.001);
        }
        assert_eq!(head_learning_rate(Mode::Scratch, 16), 0.001);
    }

    #[test]
    fn small_data_gets_enough_steps_and_large_data_the_floor() {
        // 80 images in batches of 32: 3 steps an epoch, 200 epochs for 600 steps.
        assert_eq!(epochs(80, 32), 200);
        assert!(epochs(80, 32) * 80usize.div_ceil(32) >= MIN_STEPS);
        // 4,000 images: 125 steps an epoch; the 20-epoch floor.
        assert_eq!(epochs(4000, 32), MIN_EPOCHS);
        // A handful of images: capped.
        assert_eq!(epochs(4, 32), MAX_EPOCHS);
        assert_eq!(epochs(0, 32), MAX_EPOCHS);
        assert_eq!(patience(200), 50);
        assert_eq!(patience(20), 10);
        assert!(refit(80, 4) && !refit(200, 4));
    }
}
