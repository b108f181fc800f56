//! Image files to model input: decoding, resizing, colour conversion and
//! quantization, as `microcnn infer --image` applies them.

use anyhow::{bail, Context, Result};
use microcnn_core::preprocess::InputQuantization;
use microcnn_core::Model;
use std::path::Path;

/// Loads an image, converts it to the model's channels, resizes it to the model's
/// input and quantizes it with the input scale and zero point. Pixels map to reals
/// by the blob's preprocessing record, or `pixel / 255` without one.
pub fn image_to_input(model: &Model<'_>, path: &Path) -> Result<Vec<i8>> {
    let input = model.input();
    let shape = input.shape;
    let image = image::open(path).with_context(|| format!("{}: cannot read image", path.display()))?;
    let resized = image.resize_exact(shape.width as u32, shape.height as u32, image::imageops::FilterType::Triangle);
    let pixels: Vec<u8> = match shape.channels {
        1 => resized.to_luma8().into_raw(),
        3 => resized.to_rgb8().into_raw(),
        c => bail!("{}: the model takes {c} channels; images give 1 (gray) or 3 (RGB)", path.display()),
    };
    let quant = InputQuantization::from_model(model);
    Ok(pixels.iter().map(|&p| quant.quantize(p)).collect())
}
