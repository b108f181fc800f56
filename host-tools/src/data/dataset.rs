//! Labelled image datasets in memory, loaded from a *spec*.
//!
//! Layout: images are NHWC `f32`, each pixel `value / 255` in `[0, 1]`; `labels[i]` is the
//! class index of image `i` and `classes[label]` its name.
//!
//! # Specs
//!
//! | spec | what it loads |
//! | --- | --- |
//! | `DIR` with one subfolder per class | a class-folder tree, as Keras's `image_dataset_from_directory` reads it (see below) |
//! | `FILE` (an IDX images file) or `DIR` holding one IDX pair | MNIST-format IDX data (see [`idx`]) |
//! | `digits`, `digits:train`, `digits:test` | the built-in 8×8 handwritten digits (1438 train / 359 test, classes `0`…`9`) |
//! | `shapes[:key=value,...]` | built-in, procedurally drawn camera-like shapes (see [`shapes`]) |
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
//! converted as Keras does: first the channels, as `color_mode` does (colour → gray by the
//! ITU-R 601 luma `L = 0.299 R + 0.587 G + 0.114 B` in PIL's 8-bit fixed point, gray → colour by
//! replication, alpha dropped), then the size, as `tf.image.resize` bilinear does (half-pixel
//! centres, no antialiasing). With `None` the images keep their native size, which must then
//! be the same for all; they have 3 channels if any image is in colour, else 1. 16-bit images
//! are reduced to 8 bits first (Keras would keep `0..65535`).
//!
//! IDX files hold tensors rather than pictures and are not resized: their height, width and
//! channels must equal `shape` (issue 3 asks for an error there). The built-in `digits`,
//! which is stored as IDX, is resized like the PNG folders it was made from.

pub mod idx;
pub mod shapes;

mod folder;

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// Images in NHWC f32, pixel/255 in [0, 1].
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Height, width, channels of every image.
    pub shape: [usize; 3],
    /// Pixels of all images, `len = n * h * w * c`.
    pub images: Vec<f32>,
    /// Class index per image.
    pub labels: Vec<usize>,
    /// Class names, index = label.
    pub classes: Vec<String>,
}

impl Dataset {
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

    /// The pixels of image `i`, HWC.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// The images at `indices` (in that order, repeats allowed), with the same classes.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Dataset {
            shape: self.shape,
            images,
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

    /// Resize (bilinear as tf.image.resize: half-pixel centres, no antialias) and convert
    /// channels as Keras color_mode does (RGB→gray by ITU-R 601 luma
    /// L = 0.299R + 0.587G + 0.114B as PIL 'L'; gray→RGB by replication). No-op when equal.
    ///
    /// Channels are converted first, then the size, as Keras decodes with the channel count
    /// and then resizes. On `f32` data the luma is not rounded to 8 bits.
    ///
    /// # Panics
    /// If a shape has a zero dimension or a channel count other than 1 or 3 is involved in
    /// a conversion between different channel counts.
    pub fn convert(&self, shape: [usize; 3]) -> Dataset {
        if shape == self.shape {
            return self.clone();
        }
        let n = self.image_len();
        let mut images = Vec::with_capacity(self.len() * shape.iter().product::<usize>());
        for i in 0..self.len() {
            images.extend(convert_image(&self.images[i * n..(i + 1) * n], self.shape, shape));
        }
        Dataset { shape, images, labels: self.labels.clone(), classes: self.classes.clone() }
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
        "shapes" => {
            let params = shapes::Params::parse(options.unwrap_or(""), shape)?;
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
            bail!("{spec}: no such file or folder, and {name:?} is not a built-in dataset (digits, shapes)");
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

/// Converts one HWC image from `from` to `to`: channels first, then bilinear resize.
pub(crate) fn convert_image(image: &[f32], from: [usize; 3], to: [usize; 3]) -> Vec<f32> {
    let [h, w, c] = from;
    let channels_converted: Vec<f32>;
    let image = if c == to[2] {
        image
    } else {
        channels_converted = match (c, to[2]) {
            (3, 1) => image.chunks_exact(3).map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]).collect(),
            (1, 3) => image.iter().flat_map(|&v| [v, v, v]).collect(),
            (a, b) => panic!("cannot convert {a} channels to {b}"),
        };
        &channels_converted[..]
    };
    resize_bilinear(image, [h, w, to[2]], [to[0], to[1]])
}

/// One axis of `tf.image.resize` bilinear (half-pixel centres): for each output index,
/// the two source indices and the weight of the upper one.
fn resize_weights(in_size: usize, out_size: usize) -> Vec<(usize, usize, f32)> {
    // TF computes the scale and the source coordinate in f32; so do we.
    let scale = in_size as f32 / out_size as f32;
    (0..out_size)
        .map(|o| {
            let source = (o as f32 + 0.5) * scale - 0.5;
            let floor = source.floor();
            let lower = (floor.max(0.0) as usize).min(in_size - 1);
            let upper = (source.ceil().max(0.0) as usize).min(in_size - 1);
            (lower, upper, source - floor)
        })
        .collect()
}

/// Bilinear resize of an HWC image as `tf.image.resize(..., "bilinear", antialias=False)`.
pub(crate) fn resize_bilinear(image: &[f32], shape: [usize; 3], size: [usize; 2]) -> Vec<f32> {
    let [h, w, c] = shape;
    if [h, w] == size {
        return image.to_vec();
    }
    let rows = resize_weights(h, size[0]);
    let cols = resize_weights(w, size[1]);
    let mut out = Vec::with_capacity(size[0] * size[1] * c);
    let at = |y: usize, x: usize, ch: usize| image[(y * w + x) * c + ch];
    for &(top, bottom, y_lerp) in &rows {
        for &(left, right, x_lerp) in &cols {
            for ch in 0..c {
                let top_left = at(top, left, ch);
                let top_right = at(top, right, ch);
                let bottom_left = at(bottom, left, ch);
                let bottom_right = at(bottom, right, ch);
                let upper = top_left + (top_right - top_left) * x_lerp;
                let lower = bottom_left + (bottom_right - bottom_left) * x_lerp;
                out.push(upper + (lower - upper) * y_lerp);
            }
        }
    }
    out
}

/// 8-bit colour to 8-bit gray as PIL's `convert("L")`: ITU-R 601 luma in 16-bit fixed point.
pub(crate) fn luma_u8(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
}

#[cfg(test)]
mod tests;
