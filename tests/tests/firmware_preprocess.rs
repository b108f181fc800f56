//! `microcnn_core::preprocess` (what the firmware runs on camera frames) is the one
//! preprocessing of every host path (`microcnn_tools::data::preprocess`: datasets,
//! `eval`, calibration, `infer --image`), and its resize is, byte for byte, an
//! independent reference: the `image` crate's `resize_exact(.., FilterType::Triangle)`
//! followed by the same quantization.

use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, RgbImage};
use microcnn_core::preprocess::{preprocess, Crop, Image, InputQuantization, PixelFormat};
use microcnn_core::quant::quantize_f32_to_i8;
use microcnn_tests::random_bytes;
use microcnn_tools::data::preprocess::{self as host_preprocess, Picture};

fn quant(width: usize, height: usize, channels: usize) -> InputQuantization {
    InputQuantization {
        width,
        height,
        channels,
        scale: 0.007_843_138,
        zero_point: -1,
        pixel_scale: 1.0 / 127.5,
        pixel_offset: -1.0,
    }
}

/// The reference: the `image` crate's triangle resize (and `to_luma8`), then the
/// quantization.
fn reference(image: DynamicImage, q: &InputQuantization) -> Vec<i8> {
    let resized = image.resize_exact(q.width as u32, q.height as u32, FilterType::Triangle);
    let bytes = if q.channels == 1 { resized.to_luma8().into_raw() } else { resized.to_rgb8().into_raw() };
    bytes
        .iter()
        .map(|&p| quantize_f32_to_i8(f32::from(p) * q.pixel_scale + q.pixel_offset, q.scale, q.zero_point))
        .collect()
}

const SIZES: [(usize, usize, usize, usize); 7] = [
    // (frame w, h) → (input w, h): shrink by integer and odd ratios, enlarge, same size, mixed.
    (160, 120, 28, 28),
    (64, 48, 32, 32),
    (97, 53, 13, 29),
    (10, 8, 28, 28),
    (28, 28, 28, 28),
    (40, 20, 40, 10),
    (33, 99, 96, 17),
];

#[test]
fn rgb888_matches_the_image_crate_exactly() {
    for (n, &(w, h, iw, ih)) in SIZES.iter().enumerate() {
        let data = random_bytes(n as u64 + 1, w * h * 3);
        let q = quant(iw, ih, 3);
        let expected =
            reference(DynamicImage::ImageRgb8(RgbImage::from_raw(w as u32, h as u32, data.clone()).unwrap()), &q);
        let image = Image::new(&data, w, h, PixelFormat::Rgb888).unwrap();
        let mut got = vec![0i8; q.input_bytes()];
        preprocess(&image, Crop::full(&image), &q, &mut got).unwrap();
        assert_eq!(got, expected, "{w}x{h} -> {iw}x{ih}");
    }
}

#[test]
fn gray_matches_the_image_crate_exactly() {
    for (n, &(w, h, iw, ih)) in SIZES.iter().enumerate() {
        let data = random_bytes(n as u64 + 50, w * h);
        let q = quant(iw, ih, 1);
        let expected =
            reference(DynamicImage::ImageLuma8(GrayImage::from_raw(w as u32, h as u32, data.clone()).unwrap()), &q);
        let image = Image::new(&data, w, h, PixelFormat::Gray8).unwrap();
        let mut got = vec![0i8; q.input_bytes()];
        preprocess(&image, Crop::full(&image), &q, &mut got).unwrap();
        assert_eq!(got, expected, "{w}x{h} -> {iw}x{ih}");
    }
}

#[test]
fn rgb_frame_on_a_gray_model_matches_resize_then_luma() {
    for (n, &(w, h, iw, ih)) in SIZES.iter().enumerate() {
        let data = random_bytes(n as u64 + 90, w * h * 3);
        let q = quant(iw, ih, 1);
        let expected =
            reference(DynamicImage::ImageRgb8(RgbImage::from_raw(w as u32, h as u32, data.clone()).unwrap()), &q);
        let image = Image::new(&data, w, h, PixelFormat::Rgb888).unwrap();
        let mut got = vec![0i8; q.input_bytes()];
        preprocess(&image, Crop::full(&image), &q, &mut got).unwrap();
        assert_eq!(got, expected, "{w}x{h} -> {iw}x{ih}");
    }
}

#[test]
fn a_crop_equals_resizing_the_cropped_image() {
    let (w, h) = (160, 120);
    let data = random_bytes(7, w * h * 3);
    let full = RgbImage::from_raw(w as u32, h as u32, data.clone()).unwrap();
    let q = quant(28, 28, 3);
    let image = Image::new(&data, w, h, PixelFormat::Rgb888).unwrap();
    let crop = Crop::centered(&image, 28, 28);
    let cropped = image::imageops::crop_imm(&full, crop.x as u32, crop.y as u32, crop.width as u32, crop.height as u32)
        .to_image();
    let expected = reference(DynamicImage::ImageRgb8(cropped), &q);
    let mut got = vec![0i8; q.input_bytes()];
    preprocess(&image, crop, &q, &mut got).unwrap();
    assert_eq!(got, expected);
}

#[test]
fn the_host_path_is_the_firmware_path() {
    for (n, &(w, h, iw, ih)) in SIZES.iter().enumerate() {
        for (channels, format) in [(1, PixelFormat::Gray8), (3, PixelFormat::Rgb888)] {
            let data = random_bytes(n as u64 + 300, w * h * channels);
            for model_channels in [1, 3] {
                let q = quant(iw, ih, model_channels);
                let image = Image::new(&data, w, h, format).unwrap();
                let mut firmware = vec![0i8; q.input_bytes()];
                preprocess(&image, Crop::centered(&image, iw, ih), &q, &mut firmware).unwrap();
                let picture = Picture { height: h, width: w, channels, pixels: data.clone() };
                let host = host_preprocess::to_input(&picture, &q).unwrap();
                assert_eq!(host, firmware, "{w}x{h}x{channels} -> {iw}x{ih}x{model_channels}");
            }
        }
    }
}
