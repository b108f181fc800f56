//! The one preprocessing, from image file to model input: what the firmware does to a
//! camera frame, applied by every host path (dataset loading for training, `eval`,
//! PTQ calibration, `infer --image`).
//!
//! A picture is decoded to 8-bit gray or RGB ([`Picture`]: alpha dropped, 16 bits
//! reduced to 8), then [`microcnn_core::preprocess`] runs on it exactly as the firmware
//! app runs it on a frame: the largest centred crop with the input's aspect ratio
//! ([`Crop::centered`]), a triangle-filter resize, the BT.709 luma for a gray model
//! (after resizing) or replication for a colour model fed gray, and the input's
//! quantization. Datasets keep the resized 8-bit pixels as `pixel / 255`
//! ([`resize_pixels`]); `eval` quantizes those pixels with the model's input
//! quantization, which gives the bytes [`to_input`] gives, and the chip computes.

use anyhow::{anyhow, bail, Result};
use microcnn_core::preprocess::{preprocess, Crop, Image, InputQuantization, PixelFormat};
use microcnn_core::Model;
use std::path::Path;

/// A decoded picture: 8-bit, 1 (gray) or 3 (RGB) channels, HWC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Picture {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// 1 or 3.
    pub channels: usize,
    /// `height × width × channels` bytes.
    pub pixels: Vec<u8>,
}

impl Picture {
    /// The picture as the core's frame type.
    fn frame(&self) -> Result<Image<'_>> {
        let format = match self.channels {
            1 => PixelFormat::Gray8,
            3 => PixelFormat::Rgb888,
            c => bail!("a picture has {c} channels; 1 (gray) or 3 (RGB) expected"),
        };
        Image::new(&self.pixels, self.width, self.height, format).map_err(|e| anyhow!("{e}"))
    }
}

/// The most pixels a decoded picture may have (8192 × 8192): far beyond any model
/// input, and small enough that decoding and resizing one stays in memory.
pub const MAX_PIXELS: u64 = 8192 * 8192;

/// Decodes PNG, JPEG or BMP bytes (the format is taken from the content) from `path`.
/// A picture with more than [`MAX_PIXELS`] pixels is refused as too large (its size is
/// read from the header, before any pixel is decoded), not as corrupt.
pub fn decode(bytes: &[u8], path: &Path) -> Result<Picture> {
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| anyhow!("{}: cannot read image: {e}", path.display()))
    };
    let corrupt =
        |e: image::ImageError| anyhow!("{}: corrupt or truncated image: {}", path.display(), one_line(&e.to_string()));
    let (w, h) = reader()?.into_dimensions().map_err(corrupt)?;
    let too_large = || anyhow!("{}: image too large ({w}×{h}, limit {MAX_PIXELS} pixels)", path.display());
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(too_large());
    }
    let image = reader()?.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => too_large(),
        e => corrupt(e),
    })?;
    let (width, height) = (image.width() as usize, image.height() as usize);
    Ok(if image.color().has_color() {
        Picture { height, width, channels: 3, pixels: image.into_rgb8().into_raw() }
    } else {
        Picture { height, width, channels: 1, pixels: image.into_luma8().into_raw() }
    })
}

/// Reads and decodes an image file.
pub fn read(path: &Path) -> Result<Picture> {
    decode(&crate::io::fs::read(path)?, path)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The model input the firmware computes from `picture` as a camera frame:
/// centred crop, resize, colour conversion, quantization.
pub fn to_input(picture: &Picture, quant: &InputQuantization) -> Result<Vec<i8>> {
    let frame = picture.frame()?;
    let mut input = vec![0i8; quant.input_bytes()];
    preprocess(&frame, Crop::centered(&frame, quant.width, quant.height), quant, &mut input)
        .map_err(|e| anyhow!("{e}"))?;
    Ok(input)
}

/// The 8-bit pixels (`[h, w, c]`, HWC) that [`to_input`] quantizes: the same crop,
/// resize and colour conversion, without the quantization.
pub fn resize_pixels(picture: &Picture, [height, width, channels]: [usize; 3]) -> Result<Vec<u8>> {
    // q = round(p / 1) − 128 = p − 128 exactly, for every whole p in 0..=255.
    let identity = InputQuantization {
        width,
        height,
        channels,
        scale: 1.0,
        zero_point: -128,
        pixel_scale: 1.0,
        pixel_offset: 0.0,
    };
    Ok(to_input(picture, &identity)?.into_iter().map(|q| (i16::from(q) + 128) as u8).collect())
}

/// Reads an image file and turns it into `model`'s input ([`to_input`] with the
/// model's input quantization and preprocessing record).
pub fn image_to_input(model: &Model<'_>, path: &Path) -> Result<Vec<i8>> {
    let quant = InputQuantization::from_model(model);
    if quant.channels != 1 && quant.channels != 3 {
        bail!("{}: the model takes {} channels; images give 1 (gray) or 3 (RGB)", path.display(), quant.channels);
    }
    to_input(&read(path)?, &quant).map_err(|e| anyhow!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_pixels_is_to_input_without_quantization() {
        let pixels: Vec<u8> = (0..40 * 30 * 3).map(|i| (i * 37 % 251) as u8).collect();
        let picture = Picture { height: 30, width: 40, channels: 3, pixels };
        for channels in [1, 3] {
            let quant = InputQuantization {
                width: 9,
                height: 7,
                channels,
                scale: 1.0 / 255.0,
                zero_point: -128,
                pixel_scale: 1.0 / 255.0,
                pixel_offset: 0.0,
            };
            let input = to_input(&picture, &quant).unwrap();
            let resized = resize_pixels(&picture, [7, 9, channels]).unwrap();
            let quantized: Vec<i8> = resized.iter().map(|&p| quant.quantize(p)).collect();
            assert_eq!(quantized, input);
        }
    }

    #[test]
    fn same_size_keeps_pixels_and_gray_is_replicated() {
        let picture = Picture { height: 2, width: 3, channels: 1, pixels: vec![0, 10, 20, 100, 110, 255] };
        assert_eq!(resize_pixels(&picture, [2, 3, 1]).unwrap(), picture.pixels);
        let rgb = resize_pixels(&picture, [2, 3, 3]).unwrap();
        assert_eq!(rgb, picture.pixels.iter().flat_map(|&p| [p; 3]).collect::<Vec<_>>());
    }
}
