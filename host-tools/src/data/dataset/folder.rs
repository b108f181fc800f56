//! Class-folder trees: `DIR/<class>/**/<image>.{png,jpg,jpeg,bmp}`.

use super::Dataset;
use crate::data::preprocess::{self, Picture};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Loads `dir` as a class-folder tree (see the module docs of [`super`]).
pub(super) fn load(dir: &Path, shape: Option<[usize; 3]>) -> Result<Dataset> {
    let mut classes = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}: cannot list folder", dir.display()))? {
        let entry = entry.with_context(|| format!("{}: cannot list folder", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && !is_skipped_name(&name) {
            classes.push(name);
        }
    }
    classes.sort();
    if classes.is_empty() {
        bail!("{}: no class subfolders (expected one folder of images per class)", dir.display());
    }
    // Every folder is read at most once: the root and the class folders are marked
    // first, so a link to `.`, to `..` or to another class is skipped, not followed.
    let mut walk = Walk { root: canonical(dir)?, seen: HashSet::new() };
    walk.seen.insert(walk.root.clone());
    for class in &classes {
        walk.seen.insert(canonical(&dir.join(class))?);
    }
    let mut files: Vec<(PathBuf, usize)> = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let class_dir = dir.join(class);
        let mut images = Vec::new();
        walk.collect_images(&class_dir, &mut images)?;
        if images.is_empty() {
            bail!("{}: no PNG, JPEG or BMP images", class_dir.display());
        }
        images.sort();
        files.extend(images.into_iter().map(|p| (p, label)));
    }
    let labels: Vec<usize> = files.iter().map(|&(_, label)| label).collect();
    let (shape, images) = match shape {
        Some(shape) => (shape, decode_resized(&files, shape)?),
        None => decode_native(&files)?,
    };
    Ok(Dataset::new(shape, images, labels, classes))
}

/// Reads, decodes and converts every file to `shape` in parallel, each straight into
/// its place in the dataset's bytes: no decoded picture outlives its conversion, so
/// loading needs the dataset's bytes plus one picture per thread. The error is the
/// first file's, in the dataset's order.
fn decode_resized(files: &[(PathBuf, usize)], shape: [usize; 3]) -> Result<Vec<u8>> {
    let len: usize = shape.iter().product();
    let bytes = crate::io::memory::dataset_bytes(files.len(), shape);
    crate::io::memory::check(&format!("{} images of {}×{}×{}", files.len(), shape[0], shape[1], shape[2]), bytes)?;
    let mut images = vec![0u8; files.len() * len];
    let done: Vec<Result<()>> = images
        .par_chunks_exact_mut(len)
        .zip(files.par_iter())
        .map(|(dst, (path, _))| {
            dst.copy_from_slice(&preprocess::resize_pixels(&preprocess::read(path)?, shape)?);
            Ok(())
        })
        .collect();
    done.into_iter().collect::<Result<()>>()?;
    Ok(images)
}

/// Decodes every file at its native size, which must be the same for all; 3 channels
/// if any picture has colour, else 1.
fn decode_native(files: &[(PathBuf, usize)]) -> Result<([usize; 3], Vec<u8>)> {
    let decoded: Vec<Result<Picture>> = files.par_iter().map(|(path, _)| preprocess::read(path)).collect();
    let decoded: Vec<Picture> = decoded.into_iter().collect::<Result<_>>()?;
    let first = &decoded[0];
    if let Some((i, d)) = decoded.iter().enumerate().find(|(_, d)| (d.height, d.width) != (first.height, first.width)) {
        bail!(
            "{}: {}×{} but {} is {}×{}; give the model's input size to resize them",
            files[i].0.display(),
            d.height,
            d.width,
            files[0].0.display(),
            first.height,
            first.width
        );
    }
    let channels = if decoded.iter().any(|d| d.channels == 3) { 3 } else { 1 };
    let shape = [first.height, first.width, channels];
    let len: usize = shape.iter().product();
    let mut images = vec![0u8; decoded.len() * len];
    let done: Vec<Result<()>> = images
        .par_chunks_exact_mut(len)
        .zip(decoded.par_iter())
        .map(|(dst, picture)| {
            dst.copy_from_slice(&preprocess::resize_pixels(picture, shape)?);
            Ok(())
        })
        .collect();
    done.into_iter().collect::<Result<()>>()?;
    Ok((shape, images))
}

/// Hidden files and folders (`.DS_Store`, macOS's `._name` resource forks, `.git`) and
/// the `__MACOSX` folder of zip archives made on a Mac: never classes, never images.
fn is_skipped_name(name: &str) -> bool {
    name.starts_with('.') || name == "__MACOSX"
}

fn canonical(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).with_context(|| format!("{}: cannot resolve the path", path.display()))
}

/// The folders already read (canonical paths) under a dataset's `root`.
struct Walk {
    root: PathBuf,
    seen: HashSet<PathBuf>,
}

impl Walk {
    /// Adds the image files under `dir` (recursively) to `out`. A subfolder (or a link
    /// to one) already read, or one holding the dataset itself (a link to `..`), is
    /// skipped: symlink loops end and no image outside the class is taken.
    fn collect_images(&mut self, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("{}: cannot list folder", dir.display()))? {
            let entry = entry.with_context(|| format!("{}: cannot list folder", dir.display()))?;
            if is_skipped_name(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                let real = canonical(&path)?;
                if self.root.starts_with(&real) || !self.seen.insert(real) {
                    continue;
                }
                self.collect_images(&path, out)?;
            } else if is_image_name(&path) {
                out.push(path);
            }
        }
        Ok(())
    }
}

/// Whether the extension is png, jpg, jpeg or bmp, in any case.
fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["png", "jpg", "jpeg", "bmp"].iter().any(|k| e.eq_ignore_ascii_case(k)))
}
