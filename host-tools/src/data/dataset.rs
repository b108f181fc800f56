//! Labelled image datasets in memory, loaded from a *spec*.
//!
//! Layout: images are NHWC bytes, one byte per pixel and channel (100,000 images of
//! 96×96×3 take 2.76 GB); the network sees each as `byte / 255` in `[0, 1]`
//! ([`unit()`]), converted a batch at a time by the training loop and by evaluation.
//! `labels[i]` is the class index of image `i` and `classes[label]` its name.
//!
//! # Specs
//!
//! | spec | what it loads |
//! | --- | --- |
//! | `DIR` with one subfolder per class | a class-folder tree, as Keras's `image_dataset_from_directory` reads it (see below) |
//! | `FILE` (an IDX images file) or `DIR` holding one IDX pair | MNIST-format IDX data (see [`idx`]) |
//! | `digits`, `digits:train`, `digits:test` | the built-in 8×8 handwritten digits (1438 train / 359 test, classes `0`…`9`) |
//! | `shapes[:key=value,...]` | built-in, procedurally drawn camera-like shapes (see [`shapes`]) |
//! | `atoms[:key=value,...]` | built-in, formula-driven: up to 396 classes of radial contours drawn like `shapes` (for pretraining) |
//!
//! A path that happens to be called `digits` or `shapes` is reached as `./digits`.
//!
//! **Class folders.** The sorted names of the subfolders of `DIR` are the classes (hidden
//! ones, starting with `.`, are skipped). Every file under a class folder, at any depth, whose
//! extension is `png`, `jpg`, `jpeg` or `bmp` (any case) is an image of that class; other files
//! are ignored. Within a class, images are in the byte order of their relative paths (Python's
//! `sorted`). Files are decoded in parallel. The format is taken from the content, so a JPEG
//! called `.png` still loads.
//!
//! **Shape conversion.** With `shape = Some([h, w, c])` (the model's input) every image is
//! converted by the one preprocessing the firmware applies to a camera frame
//! ([`crate::data::preprocess`], i.e. `microcnn_core::preprocess`): the largest centred
//! crop with the input's aspect ratio, a triangle-filter resize in 8 bits, then the BT.709
//! luma for a gray input (colour resized first) or replication for a colour input fed gray.
//! Training, calibration, `eval` and `infer --image` therefore see the very pixels the chip
//! computes. With `None` the images keep their native size, which must then be the same for
//! all; they have 3 channels if any image is in colour, else 1. 16-bit images are reduced to
//! 8 bits first.
//!
//! IDX files hold tensors rather than pictures and are not resized: their height, width and
//! channels must equal `shape` (issue 3 asks for an error there). The built-in `digits`,
//! which is stored as IDX, is resized like the PNG folders it was made from.

pub mod idx;
pub mod shapes;

mod folder;

use crate::data::preprocess::{self, Picture};
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::Path;
use std::sync::{Arc, LazyLock};

/// Labelled images held as bytes, NHWC; the network sees each byte as `byte / 255`
/// ([`unit()`]), converted a batch at a time.
///
/// The pixels live in a shared store: [`subset`](Dataset::subset),
/// [`split_validation`](Dataset::split_validation), `clone` and a no-op
/// [`convert`](Dataset::convert) make views of it (an index list) instead of copies, so
/// a split of 100,000 images costs 100,000 indices, not a second copy of the pixels.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Height, width, channels of every image.
    pub shape: [usize; 3],
    /// Pixels of the images the store holds, `h * w * c` bytes each.
    store: Arc<Vec<u8>>,
    /// Which stored image is image `i` (`None`: image `i` is stored image `i`).
    view: Option<Arc<Vec<usize>>>,
    /// Class index per image.
    pub labels: Vec<usize>,
    /// Class names, index = label.
    pub classes: Vec<String>,
}

/// The value the network sees for a pixel byte: `byte / 255`, in `[0, 1]` (the one
/// scaling of the kit; the same `f32` the datasets held before they were kept as bytes).
#[inline]
pub fn unit(byte: u8) -> f32 {
    UNIT[usize::from(byte)]
}

/// `k / 255` for every byte `k`, each computed as `f32::from(k) / 255.0`.
static UNIT: LazyLock<[f32; 256]> = LazyLock::new(|| std::array::from_fn(|k| f32::from(k as u8) / 255.0));

/// Writes `unit(byte)` of every byte of `bytes` to `out` (equal lengths).
///
/// # Panics
/// If the lengths differ.
pub fn to_unit(bytes: &[u8], out: &mut [f32]) {
    assert_eq!(bytes.len(), out.len(), "to_unit: {} bytes into {} values", bytes.len(), out.len());
    let table = &*UNIT;
    for (o, &b) in out.iter_mut().zip(bytes) {
        *o = table[usize::from(b)];
    }
}

impl Dataset {
    /// A dataset of `labels.len()` images whose pixels are `images` (HWC bytes, image
    /// after image).
    ///
    /// # Panics
    /// If `images` does not hold `labels.len()` images of `shape`.
    pub fn new(shape: [usize; 3], images: Vec<u8>, labels: Vec<usize>, classes: Vec<String>) -> Dataset {
        let len: usize = shape.iter().product();
        assert_eq!(images.len(), labels.len() * len, "{} bytes for {} images of {shape:?}", images.len(), labels.len());
        Dataset { shape, store: Arc::new(images), view: None, labels, classes }
    }

    /// A dataset from values on the 8-bit grid (`k / 255`), as the datasets were held
    /// before: each value is stored as `round(v · 255)`, which gives `v` back exactly
    /// for those values.
    ///
    /// # Panics
    /// As [`Dataset::new`].
    pub fn from_unit(shape: [usize; 3], values: &[f32], labels: Vec<usize>, classes: Vec<String>) -> Dataset {
        let bytes = values.iter().map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8).collect();
        Dataset::new(shape, bytes, labels, classes)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per image, `h * w * c`.
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The pixel bytes of image `i`, HWC.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        let stored = self.view.as_ref().map_or(i, |v| v[i]);
        &self.store[stored * n..(stored + 1) * n]
    }

    /// Image `i` as the network sees it: `byte / 255` ([`unit()`]), HWC.
    pub fn image_unit(&self, i: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.image_len()];
        to_unit(self.image(i), &mut out);
        out
    }

    /// Images `range` (in order) as the network sees them, one after the other.
    pub fn range_unit(&self, range: std::ops::Range<usize>) -> Vec<f32> {
        let n = self.image_len();
        let mut out = vec![0.0; range.len() * n];
        for (dst, i) in out.chunks_exact_mut(n.max(1)).zip(range) {
            to_unit(self.image(i), dst);
        }
        out
    }

    /// Every image as the network sees it (`len · h · w · c` values: for small sets).
    pub fn to_unit(&self) -> Vec<f32> {
        self.range_unit(0..self.len())
    }

    /// The pixel bytes of every image, in order.
    pub fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        (0..self.len()).flat_map(|i| self.image(i).iter().copied())
    }

    /// The images at `indices` (in that order, repeats allowed), with the same classes:
    /// a view of the same pixels, not a copy.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let stored: Vec<usize> = match &self.view {
            Some(v) => indices.iter().map(|&i| v[i]).collect(),
            None => indices.to_vec(),
        };
        Dataset {
            shape: self.shape,
            store: Arc::clone(&self.store),
            view: Some(Arc::new(stored)),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
        }
    }

    /// Stratified, seeded split: (train, validation). fraction in (0,1).
    ///
    /// Each class gives `round(fraction · count)` of its images, chosen at random, to the
    /// validation set, but never all of them: a class with at least two images keeps at
    /// least one on each side, a class with one image keeps it for training. Both halves
    /// keep the original order of the images.
    ///
    /// # Panics
    /// If `fraction` is not in `(0, 1)`.
    pub fn split_validation(&self, fraction: f32, seed: u64) -> (Dataset, Dataset) {
        assert!(fraction > 0.0 && fraction < 1.0, "validation fraction {fraction} is not in (0, 1)");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut in_validation = vec![false; self.len()];
        for class in 0..self.classes.len() {
            let mut members: Vec<usize> = (0..self.len()).filter(|&i| self.labels[i] == class).collect();
            let count = members.len();
            let wanted = (fraction * count as f32).round() as usize;
            let take = if count >= 2 { wanted.clamp(1, count - 1) } else { 0 };
            members.shuffle(&mut rng);
            for &i in &members[..take] {
                in_validation[i] = true;
            }
        }
        let (validation, train): (Vec<usize>, Vec<usize>) = (0..self.len()).partition(|&i| in_validation[i]);
        (self.subset(&train), self.subset(&validation))
    }

    /// Stratified, seeded k-fold split: `k` (train, validation) pairs whose validation
    /// parts are disjoint and together hold every image once (k-fold cross-validation).
    /// Each class's images are shuffled and dealt to the folds in turn, the next class
    /// starting at the fold where the last one stopped, so every class is spread as
    /// evenly as it can be and the folds' sizes differ by at most one image. Both halves
    /// keep the original order of the images.
    ///
    /// # Panics
    /// If `k < 2`.
    pub fn stratified_folds(&self, k: usize, seed: u64) -> Vec<(Dataset, Dataset)> {
        assert!(k >= 2, "k-fold split with k = {k}");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut fold = vec![0; self.len()];
        let mut next = 0;
        for class in 0..self.classes.len() {
            let mut members: Vec<usize> = (0..self.len()).filter(|&i| self.labels[i] == class).collect();
            members.shuffle(&mut rng);
            for i in members {
                fold[i] = next;
                next = (next + 1) % k;
            }
        }
        (0..k)
            .map(|f| {
                let (validation, train): (Vec<usize>, Vec<usize>) = (0..self.len()).partition(|&i| fold[i] == f);
                (self.subset(&train), self.subset(&validation))
            })
            .collect()
    }

    /// The images converted to `shape` as the firmware converts a camera frame (see
    /// [`crate::data::preprocess`]): centred crop to the new aspect ratio, triangle
    /// resize, BT.709 luma or gray replication, in 8 bits. No-op when equal.
    ///
    /// # Panics
    /// If a shape has a zero dimension or a channel count other than 1 or 3.
    pub fn convert(&self, shape: [usize; 3]) -> Dataset {
        if shape == self.shape {
            return self.clone();
        }
        let len: usize = shape.iter().product();
        let mut images = vec![0u8; self.len() * len];
        images.par_chunks_exact_mut(len.max(1)).enumerate().for_each(|(i, dst)| {
            dst.copy_from_slice(&convert_image(self.image(i), self.shape, shape));
        });
        Dataset::new(shape, images, self.labels.clone(), self.classes.clone())
    }

    /// The same images labelled by `classes` (a model's class names) instead of this
    /// dataset's own: each image's class is looked up by name, so two sources that
    /// list the same classes in another order agree. Classes of `classes` without
    /// images are allowed; a class of the data that `classes` lacks is an error
    /// naming it.
    pub fn relabel(self, classes: &[String]) -> Result<Dataset> {
        let unknown: Vec<&String> = self.classes.iter().filter(|c| !classes.contains(c)).collect();
        if !unknown.is_empty() {
            bail!("classes {unknown:?} are not among the model's {classes:?}");
        }
        let index: Vec<usize> =
            self.classes.iter().map(|c| classes.iter().position(|k| k == c).unwrap_or_default()).collect();
        Ok(Dataset { labels: self.labels.iter().map(|&l| index[l]).collect(), classes: classes.to_vec(), ..self })
    }

    /// Refuses data with fewer than two classes (nothing to tell apart): `what` names
    /// the data in the one-line error.
    pub fn require_two_classes(&self, what: &str) -> Result<()> {
        if self.classes.len() < 2 {
            bail!("{what}: {} class ({:?}); a classifier needs at least two", self.classes.len(), self.classes);
        }
        Ok(())
    }

    /// Per-class image counts.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &label in &self.labels {
            counts[label] += 1;
        }
        counts
    }
}

/// Loads a dataset from a spec; `shape` = the model's input (images are resized/converted
/// to it; None keeps native size, which must then be uniform).
pub fn load(spec: &str, shape: Option<[usize; 3]>) -> Result<Dataset> {
    if let Some(s) = shape {
        if s.contains(&0) || !(s[2] == 1 || s[2] == 3) {
            bail!("input shape {s:?}: height and width must be positive and channels 1 or 3");
        }
    }
    let (name, options) = match spec.split_once(':') {
        Some((name, options)) => (name, Some(options)),
        None => (spec, None),
    };
    match name {
        "digits" => return digits(options.unwrap_or("train"), shape),
        "shapes" | "atoms" => {
            let params = if name == "atoms" {
                shapes::Params::parse_atoms(options.unwrap_or(""), shape)?
            } else {
                shapes::Params::parse(options.unwrap_or(""), shape)?
            };
            let dataset = shapes::generate(&params);
            return Ok(match shape {
                Some(s) => dataset.convert(s),
                None => dataset,
            });
        }
        _ => {}
    }
    let path = Path::new(spec);
    if !path.exists() {
        if options.is_some() && !name.contains(['/', '\\']) && !name.is_empty() {
            bail!("{spec}: no such file or folder, and {name:?} is not a built-in dataset (digits, shapes, atoms)");
        }
        bail!("{}: no such file or folder", path.display());
    }
    if path.is_file() {
        return idx::load_images_file(path, shape);
    }
    if let Some(images) = idx::pair_in_dir(path)? {
        return idx::load_images_file(&images, shape);
    }
    folder::load(path, shape)
}

const DIGITS_TRAIN_IMAGES: &[u8] = include_bytes!("../../data/digits/train-images-idx3-ubyte");
const DIGITS_TRAIN_LABELS: &[u8] = include_bytes!("../../data/digits/train-labels-idx1-ubyte");
const DIGITS_TEST_IMAGES: &[u8] = include_bytes!("../../data/digits/t10k-images-idx3-ubyte");
const DIGITS_TEST_LABELS: &[u8] = include_bytes!("../../data/digits/t10k-labels-idx1-ubyte");

/// The built-in digits (`host-tools/data/digits`), resized like images.
fn digits(split: &str, shape: Option<[usize; 3]>) -> Result<Dataset> {
    let (images, labels) = match split {
        "train" => (DIGITS_TRAIN_IMAGES, DIGITS_TRAIN_LABELS),
        "test" => (DIGITS_TEST_IMAGES, DIGITS_TEST_LABELS),
        other => bail!("digits:{other}: unknown split (use digits:train or digits:test)"),
    };
    let dataset = idx::decode(images, labels, "digits", "digits")?;
    Ok(match shape {
        Some(s) => dataset.convert(s),
        None => dataset,
    })
}

/// Converts one HWC image of bytes from `from` to `to` with the one preprocessing
/// ([`preprocess::resize_pixels`]).
///
/// # Panics
/// If a channel count is neither 1 nor 3, or a dimension is zero.
pub(crate) fn convert_image(image: &[u8], from: [usize; 3], to: [usize; 3]) -> Vec<u8> {
    let [height, width, channels] = from;
    let picture = Picture { height, width, channels, pixels: image.to_vec() };
    match preprocess::resize_pixels(&picture, to) {
        Ok(resized) => resized,
        Err(e) => panic!("cannot convert {from:?} to {to:?}: {e}"),
    }
}

#[cfg(test)]
mod tests;
