//! `microcnn infer MODEL.mcnn --input IN.npy --output OUT.npy` and `--image FILE`.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use microcnn_core::quant::quantize_f32_to_i8;
use microcnn_core::Model;
use microcnn_tools::npy::{self, ArrayI8};
use microcnn_tools::{fsutil, run};
use std::path::PathBuf;

/// Run a model on int8 samples (`.npy`, first axis = sample) or on an image.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["input", "image"])))]
pub struct Cmd {
    /// The `.mcnn` model.
    pub model: PathBuf,
    /// int8 `.npy` array of samples, shape `(N, …input shape)`.
    #[arg(long, requires = "output")]
    pub input: Option<PathBuf>,
    /// Where to write the int8 outputs, shape `(N, …output shape)`.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// A PNG, JPEG or BMP image to classify.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// How many classes to print for `--image`.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    let bytes = fsutil::read(&cmd.model)?;
    let model = Model::from_bytes(&bytes).map_err(|e| anyhow!("{}: invalid model: {e}", cmd.model.display()))?;
    if let (Some(input), Some(output)) = (&cmd.input, &cmd.output) {
        let array = npy::read_i8(input)?;
        let sample = model.input().bytes();
        let per_sample: usize = array.shape.iter().skip(1).product();
        if array.shape.len() < 2 || per_sample != sample {
            let s = model.input().shape;
            bail!(
                "{}: shape {:?} does not hold samples of the model's input [{}, {}, {}] (first axis is the sample)",
                input.display(),
                array.shape,
                s.height,
                s.width,
                s.channels
            );
        }
        let outputs = run::run_samples(&model, &array.data)?;
        let mut shape = vec![array.shape[0]];
        shape.extend(run::sample_output_shape(&model));
        let encoded = npy::encode_i8(&ArrayI8 { shape, data: outputs })?;
        fsutil::write_atomic(output, &encoded)?;
        println!("{}: {} samples", output.display(), array.shape[0]);
        return Ok(());
    }
    let Some(image_path) = &cmd.image else {
        bail!("give --input and --output, or --image");
    };
    let input = preprocess_image(&model, image_path)?;
    let output = run::run_samples(&model, &input)?;
    let out = model.output();
    let mut ranked: Vec<(usize, i8)> = output.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (class, q) in ranked.into_iter().take(cmd.top) {
        let score = (f32::from(q) - out.zero_point as f32) * out.scale;
        let label = model.label(class).map_or_else(|| format!("class {class}"), str::to_string);
        println!("{label:<20} {score:.4}");
    }
    Ok(())
}

/// Loads an image, converts it to the model's channels, resizes it to the model's
/// input and quantizes it with the input scale and zero point. Pixels map to reals
/// by the blob's preprocessing record, or `pixel / 255` without one.
pub fn preprocess_image(model: &Model<'_>, path: &std::path::Path) -> Result<Vec<i8>> {
    let input = model.input();
    let shape = input.shape;
    let image = image::open(path).with_context(|| format!("{}: cannot read image", path.display()))?;
    let resized = image.resize_exact(shape.width as u32, shape.height as u32, image::imageops::FilterType::Triangle);
    let pixels: Vec<u8> = match shape.channels {
        1 => resized.to_luma8().into_raw(),
        3 => resized.to_rgb8().into_raw(),
        c => bail!("{}: the model takes {c} channels; images give 1 (gray) or 3 (RGB)", path.display()),
    };
    let (pixel_scale, pixel_offset) =
        model.preprocess().map_or((1.0 / 255.0, 0.0), |p| (p.pixel_scale, p.pixel_offset));
    Ok(pixels
        .iter()
        .map(|&p| quantize_f32_to_i8(f32::from(p) * pixel_scale + pixel_offset, input.scale, input.zero_point))
        .collect())
}
