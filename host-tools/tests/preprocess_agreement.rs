//! One preprocessing from picture to chip: for a folder of PNG pictures (colour and
//! gray, 40×30, a different aspect ratio and size than the model's input), the int8
//! outputs of `eval` equal, picture by picture, those of `infer --image` and those of
//! the QEMU firmware fed the same pictures as camera frames, for a gray and a colour
//! model.
//!
//! Needs `qemu-system-arm` and the `thumbv7em-none-eabihf` target, as `cli_qemu.rs`.

use microcnn_core::Model;
use microcnn_layout::frames::PixelFormat;
use microcnn_tools::compile::{blob, plan};
use microcnn_tools::data::dataset;
use microcnn_tools::deploy::qemu::{self, Cpu, Firmware};
use microcnn_tools::io::npy;
use microcnn_tools::quantize::ptq;
use microcnn_tools::train::arch::Arch;
use microcnn_tools::train::nn::Network;
use std::path::{Path, PathBuf};

mod common;
use common::*;

const WIDTH: u32 = 40;
const HEIGHT: u32 = 30;

/// A smooth picture with some texture, different for every `seed`.
fn pixel(seed: u32, x: u32, y: u32, channel: u32) -> u8 {
    let v = (x * (3 + seed + channel) + y * (5 + 2 * seed) + (x * y * (seed + 1)) % 23) * 7 % 256;
    v as u8
}

/// `dir/colour/{0,1,2}.png` (RGB) and `dir/gray/{0,1,2}.png`; returns the raw pixels of
/// each class's pictures, in the order the dataset loads them.
fn pictures(dir: &Path) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut colour, mut gray) = (Vec::new(), Vec::new());
    for seed in 0..3 {
        let rgb = image::RgbImage::from_fn(WIDTH, HEIGHT, |x, y| image::Rgb([0, 1, 2].map(|c| pixel(seed, x, y, c))));
        let luma = image::GrayImage::from_fn(WIDTH, HEIGHT, |x, y| image::Luma([pixel(seed + 7, x, y, 0)]));
        for (class, save) in [("colour", 0), ("gray", 1)] {
            std::fs::create_dir_all(dir.join(class)).unwrap();
            let path = dir.join(class).join(format!("{seed}.png"));
            if save == 0 {
                rgb.save(&path).unwrap();
            } else {
                luma.save(&path).unwrap();
            }
        }
        colour.push(rgb.into_raw());
        gray.push(luma.into_raw());
    }
    (colour, gray)
}

/// A small random-weight CNN on `channels`-channel 12×12 input, quantized on the
/// pictures, with the folder's classes as labels.
fn model(dir: &Path, data: &str, channels: usize) -> PathBuf {
    let toml = format!(
        "name = \"agree\"\ninput = [12, 12, {channels}]\n\
         [[layer]]\ntype = \"conv2d\"\nfilters = 6\nkernel = 3\nstrides = 2\npadding = \"same\"\nactivation = \"relu\"\n\
         [[layer]]\ntype = \"flatten\"\n\
         [[layer]]\ntype = \"dense\"\nunits = 2\nactivation = \"softmax\"\n"
    );
    let arch = Arch::parse(&toml).unwrap();
    let net = Network::new(&arch, 3).unwrap();
    let calib = dataset::load(data, Some(net.input_shape())).unwrap();
    let graph = ptq::quantize(&net, &calib, "agree", &calib.classes).unwrap();
    let bytes = blob::write(&graph, &plan::plan(&graph)).unwrap();
    let path = dir.join(format!("agree{channels}.mcnn"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `infer --image`'s printed scores, in class order.
fn infer_scores(model: &Path, picture: &Path, labels: &[&str]) -> Vec<String> {
    let out = run_ok(&["infer", &s(model), "--image", &s(picture), "--top", "2"]);
    let printed: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(name, score)| (name.to_string(), score.trim().to_string())))
        .collect();
    labels
        .iter()
        .map(|label| {
            printed
                .iter()
                .find(|(name, _)| name == label)
                .map(|(_, score)| score.clone())
                .unwrap_or_else(|| panic!("{label} missing in {out}"))
        })
        .collect()
}

#[test]
fn eval_infer_image_and_the_qemu_camera_path_agree_picture_by_picture() {
    let firmware = Firmware::load(&qemu::build_firmware(Cpu::CortexM4).unwrap(), Cpu::CortexM4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pictures");
    let (colour, gray) = pictures(&data);
    let labels = ["colour", "gray"];
    for channels in [1, 3] {
        let model_path = model(dir.path(), &s(&data), channels);
        let blob = std::fs::read(&model_path).unwrap();
        let model = Model::from_bytes(&blob).unwrap();
        let out = model.output();

        // eval: the int8 outputs of every picture, in dataset order (colour 0..3, gray 0..3).
        let saved = dir.path().join("outputs.npy");
        run_ok(&[
            "eval",
            &s(&model_path),
            "--data",
            &s(&data),
            "--save-outputs",
            &s(&saved),
            "--confusion",
            &s(&dir.path().join("confusion.png")),
        ]);
        let eval = npy::read_i8(&saved).unwrap();
        assert_eq!(eval.shape, [6, 2]);
        let distinct: std::collections::HashSet<&[i8]> = eval.data.chunks(2).collect();
        assert!(distinct.len() >= 3, "{channels}-channel model: the pictures should not all score alike");

        // infer --image: the same scores, picture by picture.
        for (n, (class, seed)) in labels.iter().flat_map(|c| (0..3).map(move |k| (*c, k))).enumerate() {
            let picture = data.join(class).join(format!("{seed}.png"));
            let expected: Vec<String> = eval.data[n * 2..n * 2 + 2]
                .iter()
                .map(|&q| format!("{:.4}", (f32::from(q) - out.zero_point as f32) * out.scale))
                .collect();
            assert_eq!(
                infer_scores(&model_path, &picture, &labels),
                expected,
                "{channels}-channel model, {class}/{seed}"
            );
        }

        // The firmware, fed the pictures as camera frames: the same bytes.
        let device_colour =
            qemu::classify_frames(&firmware, &blob, PixelFormat::Rgb888, WIDTH as u16, HEIGHT as u16, &colour).unwrap();
        let device_gray =
            qemu::classify_frames(&firmware, &blob, PixelFormat::Gray8, WIDTH as u16, HEIGHT as u16, &gray).unwrap();
        let device: Vec<i8> = device_colour.iter().chain(&device_gray).flat_map(|r| r.output.iter().copied()).collect();
        assert_eq!(device, eval.data, "{channels}-channel model: QEMU camera path differs from eval");
    }
}
