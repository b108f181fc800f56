//! Class-folder trees: `DIR/<class>/**/<image>.{png,jpg,jpeg,bmp}`.

use super::Dataset;
use crate::data::preprocess::{self, Picture};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Loads `dir` as a class-folder tree (see the module docs of [`super`]).
pub(super) fn load(dir: &Path, shape: Option<[usize; 3]>) -> Result<Dataset> {
    let mut classes = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}: cannot list folder", dir.display()))? {
        let entry = entry.with_context(|| format!("{}: cannot list folder", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && !name.starts_with('.') {
            classes.push(name);
        }
    }
    classes.sort();
    if classes.is_empty() {
        bail!("{}: no class subfolders (expected one folder of images per class)", dir.display());
    }
    let mut files: Vec<(PathBuf, usize)> = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let class_dir = dir.join(class);
        let mut images = Vec::new();
        collect_images(&class_dir, &mut images)?;
        if images.is_empty() {
            bail!("{}: no PNG, JPEG or BMP images", class_dir.display());
        }
        images.sort();
        files.extend(images.into_iter().map(|p| (p, label)));
    }
    let decoded: Vec<Result<Picture>> = files.par_iter().map(|(path, _)| preprocess::read(path)).collect();
    let decoded: Vec<Picture> = decoded.into_iter().collect::<Result<_>>()?;
    let labels: Vec<usize> = files.iter().map(|&(_, label)| label).collect();

    let shape = match shape {
        Some(s) => s,
        None => {
            let first = &decoded[0];
            if let Some((i, d)) =
                decoded.iter().enumerate().find(|(_, d)| (d.height, d.width) != (first.height, first.width))
            {
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
            [first.height, first.width, channels]
        }
    };
    let images: Vec<Result<Vec<f32>>> = decoded.par_iter().map(|d| to_f32(d, shape)).collect();
    let images = images.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(Dataset { shape, images: images.concat(), labels, classes })
}

/// Adds the image files under `dir` (recursively) to `out`.
fn collect_images(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}: cannot list folder", dir.display()))? {
        let path = entry.with_context(|| format!("{}: cannot list folder", dir.display()))?.path();
        if path.is_dir() {
            collect_images(&path, out)?;
        } else if is_image_name(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether the extension is png, jpg, jpeg or bmp, in any case.
fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["png", "jpg", "jpeg", "bmp"].iter().any(|k| e.eq_ignore_ascii_case(k)))
}

/// Converts a decoded picture to `shape` with the one preprocessing (see
/// [`crate::data::preprocess`]) and scales it to `[0, 1]`.
fn to_f32(picture: &Picture, shape: [usize; 3]) -> Result<Vec<f32>> {
    Ok(preprocess::resize_pixels(picture, shape)?.into_iter().map(|v| f32::from(v) / 255.0).collect())
}
