//! Class-folder trees: `DIR/<class>/**/<image>.{png,jpg,jpeg,bmp}`.

use super::{convert_image, luma_u8, Dataset};
use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// An image as decoded: 8-bit, 1 or 3 channels.
struct Decoded {
    height: usize,
    width: usize,
    channels: usize,
    pixels: Vec<u8>,
}

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
    let decoded: Vec<Result<Decoded>> = files.par_iter().map(|(path, _)| decode(path)).collect();
    let decoded: Vec<Decoded> = decoded.into_iter().collect::<Result<_>>()?;
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
    let images: Vec<Vec<f32>> = decoded.par_iter().map(|d| to_f32(d, shape)).collect();
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

/// Decodes one file to 8-bit gray or RGB (alpha dropped, 16 bits reduced to 8).
fn decode(path: &Path) -> Result<Decoded> {
    let bytes = crate::io::fs::read(path)?;
    let image = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| anyhow!("{}: cannot read image: {e}", path.display()))?
        .decode()
        .map_err(|e| anyhow!("{}: corrupt or truncated image: {}", path.display(), one_line(&e.to_string())))?;
    let (width, height) = (image.width() as usize, image.height() as usize);
    if image.color().has_color() {
        Ok(Decoded { height, width, channels: 3, pixels: image.into_rgb8().into_raw() })
    } else {
        Ok(Decoded { height, width, channels: 1, pixels: image.into_luma8().into_raw() })
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Converts channels in 8 bits (as Keras decodes with `color_mode`), then scales to
/// `[0, 1]` and resizes.
fn to_f32(d: &Decoded, shape: [usize; 3]) -> Vec<f32> {
    let pixels: Vec<u8> = match (d.channels, shape[2]) {
        (3, 1) => d.pixels.chunks_exact(3).map(|p| luma_u8(p[0], p[1], p[2])).collect(),
        (1, 3) => d.pixels.iter().flat_map(|&v| [v, v, v]).collect(),
        _ => d.pixels.clone(),
    };
    let values: Vec<f32> = pixels.iter().map(|&v| f32::from(v) / 255.0).collect();
    convert_image(&values, [d.height, d.width, shape[2]], shape)
}
