//! Camera frame → model input: crop, resize, colour conversion and quantization.
//!
//! The contract, for an output pixel `(x, y)` and channel `c` of the model's input
//! (`[H, W, C]`, int8):
//!
//! 1. the frame is **cropped** to a [`Crop`] rectangle (the whole frame, or the centred
//!    rectangle with the input's aspect ratio: [`Crop::centered`]);
//! 2. the crop is **resized** to `W × H` with a separable triangle (bilinear, area-aware
//!    when shrinking) filter: first along the height into `f32`, then along the width,
//!    rounding half away from zero and clamping to `0..=255`. This is the arithmetic of
//!    the `image` crate's `resize_exact(.., FilterType::Triangle)` that `microcnn infer
//!    --image` uses, operation for operation in `f32`, so an RGB888 or gray frame gives
//!    the same bytes here and on the host;
//! 3. RGB565 is widened to RGB888 by bit replication (`r8 = r5 << 3 | r5 >> 2`) before
//!    resizing; a 1-channel model takes the BT.709 luma of the resized RGB ([`luma`],
//!    in `f32` as the host's `to_luma8`);
//! 4. each 8-bit value `p` is **quantized** to
//!    `clamp(zero_point + round(real / scale))` with
//!    `real = p × pixel_scale + pixel_offset` ([`InputQuantization`], from the model's
//!    input tensor and its preprocessing record, or `p / 255` without one).
//!
//! No allocation: intermediate values are recomputed per output pixel, which costs
//! `taps_x × taps_y` multiply-adds per output value (a handful when the frame is less
//! than twice the input's size).
//!
//! ```
//! use microcnn_core::preprocess::{preprocess, Crop, Image, InputQuantization, PixelFormat};
//! let frame = [255u8; 4 * 4]; // a white 4×4 gray frame
//! let image = Image::new(&frame, 4, 4, PixelFormat::Gray8).unwrap();
//! let quant = InputQuantization { width: 2, height: 2, channels: 1, scale: 1.0 / 255.0,
//!     zero_point: -128, pixel_scale: 1.0 / 255.0, pixel_offset: 0.0 };
//! let mut input = [0i8; 4];
//! preprocess(&image, Crop::full(&image), &quant, &mut input).unwrap();
//! assert_eq!(input, [127; 4]);
//! ```

use crate::model::Model;
use crate::quant::{quantize_f32_to_i8, round_half_away_f32};
use core::fmt;

/// How a frame's pixels are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PixelFormat {
    /// One byte per pixel.
    Gray8,
    /// Three bytes per pixel, `R, G, B`.
    Rgb888,
    /// Two bytes per pixel, big-endian `RRRRRGGG GGGBBBBB` (as OV2640-class sensors send).
    Rgb565Be,
    /// Two bytes per pixel, little-endian RGB565.
    Rgb565Le,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub const fn bytes_per_pixel(self) -> usize {
        match self {
            Self::Gray8 => 1,
            Self::Rgb888 => 3,
            Self::Rgb565Be | Self::Rgb565Le => 2,
        }
    }
}

/// What can be wrong with a preprocessing call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PreprocessError {
    /// The pixel buffer does not hold `width × height` pixels of its format.
    WrongFrameLength {
        /// Bytes expected.
        expected: usize,
        /// Bytes given.
        found: usize,
    },
    /// The crop is empty or leaves the frame.
    CropOutsideFrame,
    /// The output slice does not hold the model's input.
    WrongInputLength {
        /// Bytes expected (`W × H × C`).
        expected: usize,
        /// Bytes given.
        found: usize,
    },
    /// The model's input has neither 1 nor 3 channels, or a zero dimension.
    UnsupportedInput {
        /// Its channels.
        channels: usize,
    },
}

impl fmt::Display for PreprocessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongFrameLength { expected, found } => {
                write!(f, "frame has {found} bytes, its size and format need {expected}")
            }
            Self::CropOutsideFrame => write!(f, "crop rectangle is empty or outside the frame"),
            Self::WrongInputLength { expected, found } => {
                write!(f, "input buffer has {found} bytes, the model's input needs {expected}")
            }
            Self::UnsupportedInput { channels } => {
                write!(f, "model input has {channels} channels; images give 1 (gray) or 3 (RGB)")
            }
        }
    }
}

/// A frame: pixels, size and format, checked to agree.
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    data: &'a [u8],
    width: usize,
    height: usize,
    format: PixelFormat,
}

impl<'a> Image<'a> {
    /// A frame of `width × height` pixels in `format`; `data` must hold exactly that.
    pub fn new(data: &'a [u8], width: usize, height: usize, format: PixelFormat) -> Result<Self, PreprocessError> {
        let expected = width.saturating_mul(height).saturating_mul(format.bytes_per_pixel());
        if data.len() != expected {
            return Err(PreprocessError::WrongFrameLength { expected, found: data.len() });
        }
        Ok(Self { data, width, height, format })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Pixel format.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// The pixel at `(x, y)` as 8-bit R, G, B (gray repeated). `(x, y)` must be inside.
    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * self.format.bytes_per_pixel();
        let at = |k: usize| self.data.get(i + k).copied().unwrap_or(0);
        match self.format {
            PixelFormat::Gray8 => [at(0); 3],
            PixelFormat::Rgb888 => [at(0), at(1), at(2)],
            PixelFormat::Rgb565Be => rgb565_to_rgb888(u16::from_be_bytes([at(0), at(1)])),
            PixelFormat::Rgb565Le => rgb565_to_rgb888(u16::from_le_bytes([at(0), at(1)])),
        }
    }
}

/// RGB565 → RGB888 by bit replication, so that 0 → 0 and full scale → 255.
pub fn rgb565_to_rgb888(pixel: u16) -> [u8; 3] {
    let r = ((pixel >> 11) & 0x1f) as u8;
    let g = ((pixel >> 5) & 0x3f) as u8;
    let b = (pixel & 0x1f) as u8;
    [(r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)]
}

/// The luma coefficients: the Y row of the BT.709 (sRGB) RGB→XYZ matrix for a D65
/// white point, as `f32` (`0x3e59c05b`, `0x3f3715fc`, `0x3d93cf75`): the values the
/// host `image` crate derives for `to_luma8`.
pub const LUMA_COEFFICIENTS: [f32; 3] = [0.212_647_84, 0.715_179_2, 0.072_173_04];

/// Luma of an 8-bit RGB pixel: `round(255 × Σ coefficient × value / 255)` in `f32`,
/// accumulated in R, G, B order without fused multiply-add (the host `image` crate's
/// `to_luma8` arithmetic).
pub fn luma(rgb: [u8; 3]) -> u8 {
    let mut luma = 0.0f32;
    for (value, coefficient) in rgb.into_iter().zip(LUMA_COEFFICIENTS) {
        luma += f32::from(value) * (1.0 / 255.0) * coefficient;
    }
    round_half_away_f32((luma * 255.0).clamp(0.0, 255.0)) as u8
}

/// A rectangle of the frame, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Crop {
    /// Left column.
    pub x: usize,
    /// Top row.
    pub y: usize,
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
}

impl Crop {
    /// The whole frame.
    pub fn full(image: &Image<'_>) -> Self {
        Self { x: 0, y: 0, width: image.width, height: image.height }
    }

    /// The largest centred rectangle with the aspect ratio `width : height` (for
    /// example the model input's), so that resizing does not distort.
    pub fn centered(image: &Image<'_>, width: usize, height: usize) -> Self {
        let (w, h) = (image.width, image.height);
        if width == 0 || height == 0 {
            return Self::full(image);
        }
        // Compare w / h with width / height without division.
        let (cw, ch) = if w * height > h * width { (h * width / height, h) } else { (w, w * height / width) };
        let (cw, ch) = (cw.max(1).min(w), ch.max(1).min(h));
        Self { x: (w - cw) / 2, y: (h - ch) / 2, width: cw, height: ch }
    }
}

/// The model input's size and how 8-bit pixel values become its int8 values.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InputQuantization {
    /// Input width.
    pub width: usize,
    /// Input height.
    pub height: usize,
    /// Input channels (1 or 3).
    pub channels: usize,
    /// The input tensor's scale.
    pub scale: f32,
    /// The input tensor's zero point.
    pub zero_point: i32,
    /// `real = pixel × pixel_scale + pixel_offset`.
    pub pixel_scale: f32,
    /// See `pixel_scale`.
    pub pixel_offset: f32,
}

impl InputQuantization {
    /// From the model's input tensor and its preprocessing record (`pixel / 255`
    /// without one), as `microcnn infer --image` does.
    pub fn from_model(model: &Model<'_>) -> Self {
        let input = model.input();
        let (pixel_scale, pixel_offset) =
            model.preprocess().map_or((1.0 / 255.0, 0.0), |p| (p.pixel_scale, p.pixel_offset));
        Self {
            width: input.shape.width,
            height: input.shape.height,
            channels: input.shape.channels,
            scale: input.scale,
            zero_point: input.zero_point,
            pixel_scale,
            pixel_offset,
        }
    }

    /// Bytes of the model's input.
    pub fn input_bytes(&self) -> usize {
        self.width * self.height * self.channels
    }

    /// The int8 value of an 8-bit pixel value.
    pub fn quantize(&self, pixel: u8) -> i8 {
        self.quantize_value(f32::from(pixel))
    }

    /// The int8 value of a pixel value on the 0–255 scale that need not be a whole
    /// number (a resampled pixel, as the host's datasets hold them).
    pub fn quantize_value(&self, pixel: f32) -> i8 {
        quantize_f32_to_i8(pixel * self.pixel_scale + self.pixel_offset, self.scale, self.zero_point)
    }
}

/// Crops, resizes and quantizes `image` into `input` (the model's input, `[H, W, C]`).
pub fn preprocess(
    image: &Image<'_>,
    crop: Crop,
    quant: &InputQuantization,
    input: &mut [i8],
) -> Result<(), PreprocessError> {
    if quant.channels != 1 && quant.channels != 3 || quant.width == 0 || quant.height == 0 {
        return Err(PreprocessError::UnsupportedInput { channels: quant.channels });
    }
    let expected = quant.input_bytes();
    if input.len() != expected {
        return Err(PreprocessError::WrongInputLength { expected, found: input.len() });
    }
    let inside = crop.width > 0
        && crop.height > 0
        && crop.x.checked_add(crop.width).is_some_and(|e| e <= image.width)
        && crop.y.checked_add(crop.height).is_some_and(|e| e <= image.height);
    if !inside {
        return Err(PreprocessError::CropOutsideFrame);
    }
    let columns = Axis::new(crop.width, quant.width);
    let rows = Axis::new(crop.height, quant.height);
    for (oy, row) in input.chunks_exact_mut(quant.width * quant.channels).enumerate() {
        let ywin = rows.window(oy);
        for (ox, pixel) in row.chunks_exact_mut(quant.channels).enumerate() {
            let xwin = columns.window(ox);
            let rgb = resample(image, crop, &xwin, &ywin);
            if quant.channels == 1 {
                pixel[0] = quant.quantize(if image.format == PixelFormat::Gray8 { rgb[0] } else { luma(rgb) });
            } else {
                for (value, channel) in pixel.iter_mut().zip(rgb) {
                    *value = quant.quantize(channel);
                }
            }
        }
    }
    Ok(())
}

/// The output pixel at windows `xwin`, `ywin`: vertical pass into `f32` per column,
/// then the horizontal pass, rounded and clamped.
fn resample(image: &Image<'_>, crop: Crop, xwin: &Window, ywin: &Window) -> [u8; 3] {
    if xwin.identity && ywin.identity {
        return image.rgb(crop.x + xwin.first, crop.y + ywin.first);
    }
    let mut acc = [0.0f32; 3];
    for ix in xwin.first..xwin.end {
        let wx = xwin.weight(ix);
        // The vertical pass's value for column ix at this output row.
        let mut column = [0.0f32; 3];
        for iy in ywin.first..ywin.end {
            let wy = ywin.weight(iy);
            let p = image.rgb(crop.x + ix, crop.y + iy);
            for (c, v) in column.iter_mut().zip(p) {
                *c += f32::from(v) * wy;
            }
        }
        for (a, c) in acc.iter_mut().zip(column) {
            *a += c * wx;
        }
    }
    acc.map(|v| round_half_away_f32(v.clamp(0.0, 255.0)) as u8)
}

/// One axis of the resize: `from` source samples onto `to` output samples.
struct Axis {
    from: usize,
    to: usize,
    ratio: f32,
    sratio: f32,
    support: f32,
}

/// The source samples `first..end` that feed one output sample, with their weights.
struct Window {
    first: usize,
    end: usize,
    center: f32,
    sratio: f32,
    sum: f32,
    /// Source and output sizes are equal: the sample is copied.
    identity: bool,
}

impl Axis {
    fn new(from: usize, to: usize) -> Self {
        let ratio = from as f32 / to as f32;
        let sratio = if ratio < 1.0 { 1.0 } else { ratio };
        // Triangle filter: support 1, widened by the ratio when shrinking.
        Self { from, to, ratio, sratio, support: sratio }
    }

    fn window(&self, out: usize) -> Window {
        if self.from == self.to {
            // Weights (0, 1, 0): the sample itself, exactly.
            return Window { first: out, end: out + 1, center: 0.0, sratio: 1.0, sum: 1.0, identity: true };
        }
        let center = (out as f32 + 0.5) * self.ratio;
        let last = self.from as i64 - 1;
        let first = (floor(center - self.support) as i64).clamp(0, last);
        let end = (ceil(center + self.support) as i64).clamp(first + 1, self.from as i64);
        let mut window = Window {
            first: first as usize,
            end: end as usize,
            center: center - 0.5,
            sratio: self.sratio,
            sum: 1.0,
            identity: false,
        };
        let mut sum = 0.0f32;
        for i in window.first..window.end {
            sum += window.kernel(i);
        }
        window.sum = sum;
        window
    }
}

impl Window {
    fn kernel(&self, i: usize) -> f32 {
        let x = (i as f32 - self.center) / self.sratio;
        let a = if x < 0.0 { -x } else { x };
        if a < 1.0 {
            1.0 - a
        } else {
            0.0
        }
    }

    fn weight(&self, i: usize) -> f32 {
        if self.identity {
            return 1.0;
        }
        self.kernel(i) / self.sum
    }
}

/// `floor` for the finite, moderate values used here (`core` has no `f32::floor`).
fn floor(x: f32) -> f32 {
    let t = x as i64 as f32;
    if t > x {
        t - 1.0
    } else {
        t
    }
}

/// `ceil`, likewise.
fn ceil(x: f32) -> f32 {
    let t = x as i64 as f32;
    if t < x {
        t + 1.0
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quant(width: usize, height: usize, channels: usize) -> InputQuantization {
        InputQuantization {
            width,
            height,
            channels,
            scale: 1.0 / 255.0,
            zero_point: -128,
            pixel_scale: 1.0 / 255.0,
            pixel_offset: 0.0,
        }
    }

    #[test]
    fn rgb565_widens_by_bit_replication() {
        assert_eq!(rgb565_to_rgb888(0xffff), [255, 255, 255]);
        assert_eq!(rgb565_to_rgb888(0x0000), [0, 0, 0]);
        assert_eq!(rgb565_to_rgb888(0xf800), [255, 0, 0]);
        assert_eq!(rgb565_to_rgb888(0x07e0), [0, 255, 0]);
        assert_eq!(rgb565_to_rgb888(0x001f), [0, 0, 255]);
        assert_eq!(rgb565_to_rgb888(0x8410), [132, 130, 132]);
    }

    #[test]
    fn same_size_copies_and_quantizes() {
        let frame = [0u8, 51, 102, 255];
        let image = Image::new(&frame, 2, 2, PixelFormat::Gray8).unwrap();
        let mut input = [0i8; 4];
        preprocess(&image, Crop::full(&image), &quant(2, 2, 1), &mut input).unwrap();
        assert_eq!(input, [-128, -77, -26, 127]);
    }

    #[test]
    fn halving_averages_pairs() {
        // 4×1 → 2×1: each output is the triangle-weighted mean of its neighbourhood.
        let frame = [0u8, 100, 200, 40];
        let image = Image::new(&frame, 4, 1, PixelFormat::Gray8).unwrap();
        let q = InputQuantization { scale: 1.0, zero_point: -128, pixel_scale: 1.0, ..quant(2, 1, 1) };
        let mut input = [0i8; 2];
        preprocess(&image, Crop::full(&image), &q, &mut input).unwrap();
        // Shrinking by 2 widens the triangle to ±2 source pixels around the output's
        // centre (source 0.5 and 2.5): weights 0.75, 0.75, 0.25 and 0.25, 0.75, 0.75.
        let expect0 = (0.0 * 0.75 + 100.0 * 0.75 + 200.0 * 0.25) / 1.75;
        let expect1 = (100.0 * 0.25 + 200.0 * 0.75 + 40.0 * 0.75) / 1.75;
        assert_eq!(i32::from(input[0]) + 128, round_half_away_f32(expect0) as i32);
        assert_eq!(i32::from(input[1]) + 128, round_half_away_f32(expect1) as i32);
    }

    #[test]
    fn rgb565_gray_model_takes_luma() {
        // A pure-green 2×2 RGB565 frame on a 1×1 gray model.
        let frame = [0x07u8, 0xe0, 0x07, 0xe0, 0x07, 0xe0, 0x07, 0xe0];
        let image = Image::new(&frame, 2, 2, PixelFormat::Rgb565Be).unwrap();
        let q = InputQuantization { scale: 1.0, zero_point: -128, pixel_scale: 1.0, ..quant(1, 1, 1) };
        let mut input = [0i8; 1];
        preprocess(&image, Crop::full(&image), &q, &mut input).unwrap();
        assert_eq!(i32::from(input[0]) + 128, i32::from(luma([0, 255, 0])));
    }

    #[test]
    fn centered_crop_keeps_aspect() {
        let frame = [0u8; 160 * 120 * 2];
        let image = Image::new(&frame, 160, 120, PixelFormat::Rgb565Be).unwrap();
        assert_eq!(Crop::centered(&image, 28, 28), Crop { x: 20, y: 0, width: 120, height: 120 });
        assert_eq!(Crop::centered(&image, 4, 1), Crop { x: 0, y: 40, width: 160, height: 40 });
    }

    #[test]
    fn errors_are_typed() {
        let frame = [0u8; 5];
        assert_eq!(
            Image::new(&frame, 2, 2, PixelFormat::Gray8).unwrap_err(),
            PreprocessError::WrongFrameLength { expected: 4, found: 5 }
        );
        let image = Image::new(&frame[..4], 2, 2, PixelFormat::Gray8).unwrap();
        let mut input = [0i8; 4];
        let outside = Crop { x: 1, y: 0, width: 2, height: 2 };
        assert_eq!(preprocess(&image, outside, &quant(2, 2, 1), &mut input), Err(PreprocessError::CropOutsideFrame));
        assert_eq!(
            preprocess(&image, Crop::full(&image), &quant(2, 2, 3), &mut input),
            Err(PreprocessError::WrongInputLength { expected: 12, found: 4 })
        );
        assert_eq!(
            preprocess(&image, Crop::full(&image), &quant(2, 2, 2), &mut input),
            Err(PreprocessError::UnsupportedInput { channels: 2 })
        );
    }
}
