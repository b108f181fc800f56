//! `microcnn augment --data D --preview grid.png [--rows R --cols C --seed S --size HxW
//! --channels N] [augmentation options]`: a picture of what the options do.

use anyhow::{bail, Context, Result};
use clap::Args;
use microcnn_tools::data::augment::{augment_image, AugmentArgs};
use microcnn_tools::data::dataset::{self, Dataset};
use microcnn_tools::io::fs;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;

/// Smallest side of a grid cell in pixels; small images are enlarged by whole factors.
const MIN_CELL: usize = 64;
/// Gap between cells, in pixels.
const GAP: usize = 2;
/// Colour of the gaps.
const GAP_COLOUR: [u8; 3] = [48, 48, 48];

/// Write a PNG grid of augmented samples: one source image per row, the original in the
/// first column and augmented copies in the others.
#[derive(Args, Debug)]
pub struct Cmd {
    /// Dataset: a class folder, an IDX images file, `digits[:train|test]` or `shapes[:...]`.
    #[arg(long)]
    pub data: String,
    /// The PNG to write.
    #[arg(long, value_name = "PNG")]
    pub preview: PathBuf,
    /// Source images (rows), taken from the classes in turn.
    #[arg(long, default_value_t = 4)]
    pub rows: usize,
    /// Columns: the original and `cols - 1` augmented samples.
    #[arg(long, default_value_t = 8)]
    pub cols: usize,
    /// Seed for choosing the images and for the augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Resize the images to `HxW` (or `N` for N×N) first, as training would.
    #[arg(long, value_name = "HxW")]
    pub size: Option<String>,
    /// Convert the images to 1 (gray) or 3 (colour) channels first; 3 when only --size is given.
    #[arg(long)]
    pub channels: Option<usize>,
    #[command(flatten)]
    pub augment: AugmentArgs,
}

/// Runs the command.
pub fn run(cmd: &Cmd) -> Result<()> {
    let config = cmd.augment.config()?;
    if cmd.rows == 0 || cmd.cols == 0 || cmd.rows * cmd.cols > 10_000 {
        bail!("--rows {} --cols {}: need at least one of each and at most 10000 cells", cmd.rows, cmd.cols);
    }
    if let Some(c) = cmd.channels {
        if c != 1 && c != 3 {
            bail!("--channels {c}: must be 1 or 3");
        }
    }
    let size = cmd.size.as_deref().map(parse_size).transpose()?;
    let data = match (size, cmd.channels) {
        (Some([h, w]), channels) => dataset::load(&cmd.data, Some([h, w, channels.unwrap_or(3)]))?,
        (None, Some(c)) => {
            let native = dataset::load(&cmd.data, None)?;
            native.convert([native.shape[0], native.shape[1], c])
        }
        (None, None) => dataset::load(&cmd.data, None)?,
    };
    if data.is_empty() {
        bail!("{}: no images", cmd.data);
    }
    let png = render_grid(&data, cmd.rows, cmd.cols, cmd.seed, &config)?;
    fs::write_atomic(&cmd.preview, &png)?;
    outln!("{}", cmd.preview.display());
    Ok(())
}

/// `HxW` or `N`.
fn parse_size(text: &str) -> Result<[usize; 2]> {
    let (h, w) = text.split_once(['x', 'X']).unwrap_or((text, text));
    let parse = |s: &str| s.trim().parse::<usize>().ok().filter(|&v| (1..=4096).contains(&v));
    match (parse(h), parse(w)) {
        (Some(h), Some(w)) => Ok([h, w]),
        _ => bail!("--size {text}: expected HxW or N, each 1 to 4096"),
    }
}

/// Picks the row images (classes in turn, a random image of each), augments them and
/// encodes the grid as PNG.
fn render_grid(
    data: &Dataset,
    rows: usize,
    cols: usize,
    seed: u64,
    config: &microcnn_tools::data::augment::AugmentConfig,
) -> Result<Vec<u8>> {
    let [h, w, c] = data.shape;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let by_class: Vec<Vec<usize>> =
        (0..data.classes.len()).map(|k| (0..data.len()).filter(|&i| data.labels[i] == k).collect()).collect();
    let present: Vec<&Vec<usize>> = by_class.iter().filter(|members| !members.is_empty()).collect();
    let scale = MIN_CELL.div_ceil(h.max(w)).max(1);
    let (cell_h, cell_w) = (h * scale, w * scale);
    let (grid_w, grid_h) = (cols * cell_w + (cols + 1) * GAP, rows * cell_h + (rows + 1) * GAP);
    let mut grid = image::RgbImage::from_pixel(grid_w as u32, grid_h as u32, image::Rgb(GAP_COLOUR));
    let mut sample = vec![0.0; h * w * c];
    for row in 0..rows {
        let members = present[row % present.len()];
        let source = &data.image_unit(members[rng.random_range(0..members.len())]);
        for col in 0..cols {
            if col == 0 {
                sample.copy_from_slice(source);
            } else {
                augment_image(source, data.shape, config, &mut rng, &mut sample);
            }
            let (left, top) = (GAP + col * (cell_w + GAP), GAP + row * (cell_h + GAP));
            for y in 0..cell_h {
                for x in 0..cell_w {
                    let p = &sample[((y / scale) * w + x / scale) * c..][..c];
                    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                    let rgb = if c == 1 { [byte(p[0]); 3] } else { [byte(p[0]), byte(p[1]), byte(p[2])] };
                    grid.put_pixel((left + x) as u32, (top + y) as u32, image::Rgb(rgb));
                }
            }
        }
    }
    let mut png = Vec::new();
    grid.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).context("cannot encode the PNG")?;
    Ok(png)
}
