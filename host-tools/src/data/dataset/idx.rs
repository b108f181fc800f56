//! MNIST-format IDX files.
//!
//! An IDX file is a big-endian header, two zero bytes, a type byte (`0x08` = unsigned
//! byte, the only type read here), the number of dimensions, each dimension as a `u32`,
//! then the values row-major. Images are `0x00000803` (`n, height, width`, gray) or
//! `0x00000804` (`n, height, width, channels`, channels 1 or 3); labels are `0x00000801`
//! (`n`), one class index per byte. Pixels map to `byte / 255`; classes are named `"0"` up
//! to the largest label.
//!
//! Spec forms: the images file itself (any name; the magic decides), whose labels are the
//! sibling file named with `images` → `labels` and `idx3`/`idx4` → `idx1`
//! (`train-images-idx3-ubyte` → `train-labels-idx1-ubyte`); or a folder without
//! subfolders that holds exactly one file whose name contains `images` and `idx`.

use super::Dataset;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Magic of gray image files, `n × h × w`.
pub const MAGIC_IMAGES_3D: u32 = 0x0000_0803;
/// Magic of image files with channels, `n × h × w × c`.
pub const MAGIC_IMAGES_4D: u32 = 0x0000_0804;
/// Magic of label files, `n`.
pub const MAGIC_LABELS: u32 = 0x0000_0801;

/// Decodes an images file and a labels file into a dataset of native shape. The names are
/// used in errors only.
pub fn decode(images: &[u8], labels: &[u8], images_name: &str, labels_name: &str) -> Result<Dataset> {
    let pair = check_pair(images, labels, images_name, labels_name)?;
    Ok(Dataset::new(pair.shape, images[pair.header..].to_vec(), pair.labels, pair.classes))
}

/// [`decode`] of an images file read into memory, whose bytes become the dataset's
/// without a copy (the header is cut off in place).
pub(super) fn decode_owned(
    mut images: Vec<u8>,
    labels: &[u8],
    images_name: &str,
    labels_name: &str,
) -> Result<Dataset> {
    let pair = check_pair(&images, labels, images_name, labels_name)?;
    images.drain(..pair.header);
    Ok(Dataset::new(pair.shape, images, pair.labels, pair.classes))
}

/// What [`check_pair`] finds in an images file and its labels file.
struct Pair {
    /// The images' height, width and channels.
    shape: [usize; 3],
    /// Bytes of the images file before the pixels.
    header: usize,
    /// Class index per image.
    labels: Vec<usize>,
    /// `"0"` up to the largest label.
    classes: Vec<String>,
}

/// Checks an images file and a labels file.
fn check_pair(images: &[u8], labels: &[u8], images_name: &str, labels_name: &str) -> Result<Pair> {
    let (dims, pixels) = parse(images, images_name, &[MAGIC_IMAGES_3D, MAGIC_IMAGES_4D])?;
    let shape = match dims[..] {
        [_, h, w] => [h, w, 1],
        [_, h, w, c] if c == 1 || c == 3 => [h, w, c],
        _ => bail!("{images_name}: images of shape {:?}: channels must be 1 or 3", &dims[1..]),
    };
    if shape[0] == 0 || shape[1] == 0 {
        bail!("{images_name}: images of size {}×{}", shape[0], shape[1]);
    }
    let (label_dims, labels) = parse(labels, labels_name, &[MAGIC_LABELS])?;
    if label_dims[0] != dims[0] {
        bail!("{labels_name}: {} labels for {} images in {images_name}", label_dims[0], dims[0]);
    }
    let labels: Vec<usize> = labels.iter().map(|&l| usize::from(l)).collect();
    let class_count = labels.iter().max().map_or(0, |&m| m + 1);
    let classes = (0..class_count).map(|c| c.to_string()).collect();
    Ok(Pair { shape, header: images.len() - pixels.len(), labels, classes })
}

/// Checks the header and size; returns the dimensions and the data.
fn parse<'a>(bytes: &'a [u8], name: &str, magics: &[u32]) -> Result<(Vec<usize>, &'a [u8])> {
    let expected = magics.iter().map(|m| format!("{m:#010x}")).collect::<Vec<_>>().join(" or ");
    let Some(magic) = bytes.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])) else {
        bail!("{name}: truncated IDX file ({} bytes)", bytes.len());
    };
    if !magics.contains(&magic) {
        bail!("{name}: not an IDX file of the expected kind (magic {magic:#010x}, expected {expected})");
    }
    let ndims = (magic & 0xff) as usize;
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        bail!("{name}: truncated IDX header ({} bytes)", bytes.len());
    }
    let dims: Vec<usize> =
        bytes[4..header].chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).collect();
    let count = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let Some(count) = count.filter(|&c| c <= bytes.len()) else {
        bail!("{name}: truncated IDX data: dimensions {dims:?} need more than the {} bytes present", bytes.len());
    };
    let data = &bytes[header..];
    if data.len() != count {
        let problem = if data.len() < count { "truncated IDX data" } else { "trailing bytes after IDX data" };
        bail!("{name}: {problem}: dimensions {dims:?} need {count} bytes, found {}", data.len());
    }
    Ok((dims, data))
}

/// Encodes the images as an IDX file (`0x803` for gray, `0x804` otherwise), their bytes
/// as they are.
pub fn encode_images(dataset: &Dataset) -> Vec<u8> {
    let [h, w, c] = dataset.shape;
    let (magic, dims) = if c == 1 {
        (MAGIC_IMAGES_3D, vec![dataset.len(), h, w])
    } else {
        (MAGIC_IMAGES_4D, vec![dataset.len(), h, w, c])
    };
    let mut out = header(magic, &dims);
    out.extend(dataset.bytes());
    out
}

/// Encodes the labels as an IDX file.
///
/// # Panics
/// If a label does not fit in a byte.
pub fn encode_labels(dataset: &Dataset) -> Vec<u8> {
    let mut out = header(MAGIC_LABELS, &[dataset.len()]);
    out.extend(dataset.labels.iter().map(|&l| u8::try_from(l).expect("IDX labels are bytes")));
    out
}

fn header(magic: u32, dims: &[usize]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    for &d in dims {
        out.extend((d as u32).to_be_bytes());
    }
    out
}

/// The labels file that goes with an images file.
pub fn labels_path(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_str()?;
    if !name.contains("images") {
        return None;
    }
    let name = name.replace("images", "labels").replace("idx3", "idx1").replace("idx4", "idx1");
    Some(images.with_file_name(name))
}

/// Loads an images file and its labels; with `shape`, the images must have that shape.
pub(super) fn load_images_file(path: &Path, shape: Option<[usize; 3]>) -> Result<Dataset> {
    let images = crate::io::fs::read(path)?;
    let Some(labels_file) = labels_path(path) else {
        bail!("{}: cannot tell the labels file: an IDX images file must have \"images\" in its name", path.display());
    };
    if !labels_file.is_file() {
        bail!("{}: labels file {} not found", path.display(), labels_file.display());
    }
    let labels = crate::io::fs::read(&labels_file)?;
    let dataset = decode_owned(images, &labels, &path.display().to_string(), &labels_file.display().to_string())?;
    if let Some(s) = shape {
        if s != dataset.shape {
            bail!(
                "{}: IDX images are {}×{}×{} but the model's input is {}×{}×{} (IDX data is not resized)",
                path.display(),
                dataset.shape[0],
                dataset.shape[1],
                dataset.shape[2],
                s[0],
                s[1],
                s[2]
            );
        }
    }
    Ok(dataset)
}

/// The images file of a folder that holds one IDX pair and no subfolders, if it is one.
pub(super) fn pair_in_dir(dir: &Path) -> Result<Option<PathBuf>> {
    let mut images = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}: cannot list folder", dir.display()))? {
        let path = entry.with_context(|| format!("{}: cannot list folder", dir.display()))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() && !name.starts_with('.') {
            return Ok(None);
        }
        if path.is_file() && name.contains("images") && name.contains("idx") {
            images.push(path);
        }
    }
    match images.len() {
        0 => Ok(None),
        1 => Ok(images.pop()),
        _ => {
            images.sort();
            let names: Vec<String> = images.iter().map(|p| p.display().to_string()).collect();
            bail!("{}: several IDX images files ({}); give one of them", dir.display(), names.join(", "))
        }
    }
}
