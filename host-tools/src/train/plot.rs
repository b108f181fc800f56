//! Plots: `curves.png` (loss and accuracy per epoch, drawn from the training record
//! [`EpochMetrics`]) and `confusion.png` (a confusion matrix, for `eval`).
//!
//! Every file is written atomically ([`fs::write_atomic`]): a crash never leaves
//! half a file. PNGs are drawn with plotters into an RGB buffer and encoded with the
//! `image` crate.
//!
//! **Fonts.** Text needs a TrueType font, and none is bundled. The first of
//! `$MICROCNN_FONT` and a short list of well-known system paths that loads is used
//! (on Debian and Ubuntu, `DejaVuSans.ttf` from the package `fonts-dejavu-core`). If
//! none is found, the plots are still drawn, without any text: no titles, axis labels,
//! legends or cell counts, and no error.

use super::metrics::EpochMetrics;
use crate::io::fs;
use anyhow::{anyhow, bail, Context, Result};
use image::ImageEncoder;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::OnceLock;

/// curves.png: two panels side by side, loss and accuracy per epoch, training and validation lines, legend, axis labels, marker on the best epoch by validation accuracy. Atomic write.
///
/// The best epoch is the first with the highest validation accuracy, as the trainer
/// keeps it. Zero rows is an error (there is nothing to plot) and writes nothing.
pub fn write_curves_png(path: &Path, rows: &[EpochMetrics]) -> Result<()> {
    if rows.is_empty() {
        bail!("{}: no epochs to plot", path.display());
    }
    let png = render_curves(rows, text_available()).with_context(|| format!("{}: cannot draw", path.display()))?;
    fs::write_atomic(path, &png)
}

/// confusion.png: `matrix[true][predicted]` counts, class labels on both axes, cell counts as text, colour by row-normalised value. Atomic write.
///
/// The matrix must be square with one label per row; cell counts are left out when the
/// cells are too small to hold them (many classes).
pub fn write_confusion_png(path: &Path, matrix: &[Vec<usize>], labels: &[String]) -> Result<()> {
    let n = matrix.len();
    if n == 0 {
        bail!("{}: empty confusion matrix", path.display());
    }
    if let Some(row) = matrix.iter().position(|r| r.len() != n) {
        bail!("{}: confusion matrix row {row} has {} columns, expected {n}", path.display(), matrix[row].len());
    }
    if labels.len() != n {
        bail!("{}: {} labels for a {n}×{n} confusion matrix", path.display(), labels.len());
    }
    let png = render_confusion(matrix, labels, text_available())
        .with_context(|| format!("{}: cannot draw", path.display()))?;
    fs::write_atomic(path, &png)
}

/// Places where a sans-serif TrueType font is commonly installed, tried in order.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Registers a system font as plotters' "sans-serif" once; true if one was found.
fn text_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let from_env = std::env::var_os("MICROCNN_FONT").map(std::path::PathBuf::from);
        from_env.into_iter().chain(FONT_PATHS.iter().map(Into::into)).any(|p| {
            let Ok(bytes) = std::fs::read(p) else { return false };
            // plotters keeps fonts for the life of the process and wants them 'static;
            // this runs at most once per candidate file.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
        })
    })
}

/// Encodes an RGB buffer as PNG.
fn encode_png(rgb: Vec<u8>, (width, height): (u32, u32)) -> Result<Vec<u8>> {
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png).write_image(&rgb, width, height, image::ExtendedColorType::Rgb8)?;
    Ok(png)
}

/// Turns a plotters error (which borrows nothing, but is generic) into anyhow's.
fn drawing<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| anyhow!("{e}"))
}

const TRAIN_COLOUR: RGBColor = RGBColor(31, 119, 180);
const VAL_COLOUR: RGBColor = RGBColor(255, 127, 14);
const BEST_COLOUR: RGBColor = RGBColor(44, 160, 44);
const CURVES_SIZE: (u32, u32) = (1200, 480);

/// `(low, high)` of the finite values, or `None`.
fn finite_range(values: impl Iterator<Item = f32>) -> Option<(f64, f64)> {
    values.filter(|v| v.is_finite()).map(f64::from).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Index of the first row with the highest finite validation accuracy.
fn best_row(rows: &[EpochMetrics]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, r) in rows.iter().enumerate() {
        if r.val_accuracy.is_finite() && best.is_none_or(|b| r.val_accuracy > rows[b].val_accuracy) {
            best = Some(i);
        }
    }
    best
}

/// One panel of the curves: a quantity for training and validation against epochs.
struct Panel<'a> {
    title: &'a str,
    y_label: &'a str,
    y_range: (f64, f64),
    train: Vec<(i64, f64)>,
    val: Vec<(i64, f64)>,
    legend: SeriesLabelPosition,
}

fn render_curves(rows: &[EpochMetrics], text: bool) -> Result<Vec<u8>> {
    let (width, height) = CURVES_SIZE;
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        drawing(root.fill(&WHITE))?;
        let points = |f: fn(&EpochMetrics) -> f32| -> Vec<(i64, f64)> {
            rows.iter().filter(|r| f(r).is_finite()).map(|r| (r.epoch as i64, f64::from(f(r)))).collect()
        };
        let loss_high = finite_range(rows.iter().flat_map(|r| [r.train_loss, r.val_loss])).map_or(1.0, |(_, hi)| {
            if hi > 0.0 {
                hi * 1.08
            } else {
                1.0
            }
        });
        // Accuracy from the tenth below the lowest value up to 1 (or above, if a
        // caller logs percentages), so late epochs are not squashed against the top.
        let (accuracy_low, accuracy_high) = finite_range(rows.iter().flat_map(|r| [r.train_accuracy, r.val_accuracy]))
            .map_or((0.0, 1.0), |(lo, hi)| ((lo * 10.0).floor().clamp(0.0, 9.0) / 10.0, hi.max(1.0)));
        let panels = [
            Panel {
                title: "Loss",
                y_label: "loss",
                y_range: (0.0, loss_high),
                train: points(|r| r.train_loss),
                val: points(|r| r.val_loss),
                legend: SeriesLabelPosition::UpperRight,
            },
            Panel {
                title: "Accuracy",
                y_label: "accuracy",
                y_range: (accuracy_low, accuracy_high),
                train: points(|r| r.train_accuracy),
                val: points(|r| r.val_accuracy),
                legend: SeriesLabelPosition::LowerRight,
            },
        ];
        let areas = root.split_evenly((1, 2));
        for (area, panel) in areas.iter().zip(&panels) {
            draw_panel(area, panel, rows, text)?;
        }
        drawing(root.present())?;
    }
    encode_png(rgb, (width, height))
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    panel: &Panel<'_>,
    rows: &[EpochMetrics],
    text: bool,
) -> Result<()> {
    let first = rows.iter().map(|r| r.epoch).min().unwrap_or(0) as i64;
    let last = rows.iter().map(|r| r.epoch).max().unwrap_or(0) as i64;
    // A single epoch still gets an axis around it.
    let (x_low, x_high) = if first == last { (first - 1, last + 1) } else { (first, last) };
    let mut builder = ChartBuilder::on(area);
    builder.margin(16);
    if text {
        builder.caption(panel.title, ("sans-serif", 22)).x_label_area_size(44).y_label_area_size(60);
    }
    let mut chart = drawing(builder.build_cartesian_2d(x_low..x_high, panel.y_range.0..panel.y_range.1))?;
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(RGBColor(235, 235, 235)).bold_line_style(RGBColor(200, 200, 200));
    let epochs = usize::try_from(x_high - x_low + 1).unwrap_or(usize::MAX);
    mesh.x_labels(epochs.min(12)).y_labels(8);
    if text {
        mesh.x_desc("epoch").y_desc(panel.y_label).label_style(("sans-serif", 14)).axis_desc_style(("sans-serif", 16));
    } else {
        // Invisible tick labels: the backend skips transparent text before it looks
        // for a font, and the grid lines stay.
        mesh.label_style(("sans-serif", 14).into_font().color(&TRANSPARENT));
    }
    drawing(mesh.draw())?;

    // Markers on every point make a single epoch (a line of one point) visible too.
    let dots = rows.len() <= 60;
    for (name, data, colour) in [("training", &panel.train, TRAIN_COLOUR), ("validation", &panel.val, VAL_COLOUR)] {
        let series = drawing(chart.draw_series(LineSeries::new(data.iter().copied(), colour.stroke_width(2))))?;
        if text {
            series
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        }
        if dots {
            drawing(chart.draw_series(data.iter().map(|&p| Circle::new(p, 3, colour.filled()))))?;
        }
    }
    if let Some(best) = best_row(rows) {
        let epoch = rows[best].epoch as i64;
        let (y_low, y_high) = panel.y_range;
        let line = DashedLineSeries::new([(epoch, y_low), (epoch, y_high)], 6, 4, BEST_COLOUR.stroke_width(2));
        let series = drawing(chart.draw_series(line))?;
        if text {
            let caption = format!("best: epoch {} (val. acc. {:.4})", rows[best].epoch, rows[best].val_accuracy);
            series
                .label(caption)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BEST_COLOUR.stroke_width(2)));
        }
        let marked = panel.val.iter().filter(|p| p.0 == epoch);
        drawing(chart.draw_series(marked.map(|&p| Circle::new(p, 7, BEST_COLOUR.stroke_width(2)))))?;
    }
    if text {
        drawing(
            chart
                .configure_series_labels()
                .position(panel.legend.clone())
                .label_font(("sans-serif", 14))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(160, 160, 160))
                .draw(),
        )?;
    }
    Ok(())
}

/// White to dark blue as `v` goes from 0 to 1.
fn cell_colour(v: f64) -> RGBColor {
    let v = v.clamp(0.0, 1.0);
    let mix = |from: u8, to: u8| (f64::from(from) + (f64::from(to) - f64::from(from)) * v).round() as u8;
    RGBColor(mix(247, 8), mix(251, 48), mix(255, 107))
}

fn render_confusion(matrix: &[Vec<usize>], labels: &[String], text: bool) -> Result<Vec<u8>> {
    let n = matrix.len();
    let cell = (640 / n as u32).clamp(6, 64);
    let cell_i = cell as i32;
    let label_size = (f64::from(cell) * 0.45).clamp(10.0, 16.0);
    let count_size = (f64::from(cell) * 0.36).min(16.0);
    let counts_fit = text && cell >= 20;
    // Labels are drawn every `step` cells so that they never overlap.
    let step = (12.0 / f64::from(cell)).ceil().max(1.0) as usize;

    // Margins from the widest label; without a font there is no text to make room for.
    let label_width = if text {
        let font = ("sans-serif", label_size).into_font();
        labels.iter().map(|l| font.box_size(l).map_or(0, |(w, _)| w)).max().unwrap_or(0) as i32
    } else {
        0
    };
    let rotate_columns = label_width > cell_i - 4;
    let (top, left, bottom, right) = if text {
        let bottom = if rotate_columns { label_width + 44 } else { 52 };
        (52, label_width + 46, bottom, 96)
    } else {
        (16, 16, 16, 56)
    };
    let side = cell_i * n as i32;
    let (width, height) = ((left + side + right) as u32, (top + side + bottom) as u32);

    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        drawing(root.fill(&WHITE))?;
        let total: usize = matrix.iter().flatten().sum();
        let correct: usize = (0..n).map(|i| matrix[i][i]).sum();
        for (t, row) in matrix.iter().enumerate() {
            let row_sum: usize = row.iter().sum();
            for (p, &count) in row.iter().enumerate() {
                let v = if row_sum == 0 { 0.0 } else { count as f64 / row_sum as f64 };
                let (x, y) = (left + p as i32 * cell_i, top + t as i32 * cell_i);
                drawing(root.draw(&Rectangle::new([(x, y), (x + cell_i, y + cell_i)], cell_colour(v).filled())))?;
                if cell >= 8 {
                    let grid = RGBColor(210, 210, 210);
                    drawing(root.draw(&Rectangle::new([(x, y), (x + cell_i, y + cell_i)], grid.stroke_width(1))))?;
                }
                if counts_fit {
                    let ink = if v > 0.5 { WHITE } else { BLACK };
                    let style =
                        ("sans-serif", count_size).into_font().color(&ink).pos(Pos::new(HPos::Center, VPos::Center));
                    drawing(root.draw(&Text::new(count.to_string(), (x + cell_i / 2, y + cell_i / 2), style)))?;
                }
            }
        }
        drawing(root.draw(&Rectangle::new([(left, top), (left + side, top + side)], BLACK.stroke_width(1))))?;

        // Colour bar: row share from 0 (bottom) to 1 (top).
        let (bar_x, bar_w) = (left + side + 20, 16);
        for y in 0..side {
            let v = 1.0 - f64::from(y) / f64::from(side.max(1) - 1).max(1.0);
            let line = [(bar_x, top + y), (bar_x + bar_w, top + y)];
            drawing(root.draw(&PathElement::new(line, cell_colour(v))))?;
        }
        drawing(root.draw(&Rectangle::new([(bar_x, top), (bar_x + bar_w, top + side)], BLACK.stroke_width(1))))?;

        if text {
            let small = ("sans-serif", 13).into_font();
            let left_mid = small.color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
            drawing(root.draw(&Text::new("100%", (bar_x + bar_w + 4, top), left_mid.clone())))?;
            drawing(root.draw(&Text::new("0%", (bar_x + bar_w + 4, top + side), left_mid)))?;

            let accuracy = if total == 0 { 0.0 } else { 100.0 * correct as f64 / total as f64 };
            let title = format!("Confusion matrix: {total} samples, accuracy {accuracy:.2}%");
            let title_style = ("sans-serif", 18).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center));
            drawing(root.draw(&Text::new(title, (left + side / 2, top / 2), title_style)))?;

            let label_font = ("sans-serif", label_size).into_font();
            let row_style = label_font.color(&BLACK).pos(Pos::new(HPos::Right, VPos::Center));
            let column_style = if rotate_columns {
                label_font.transform(FontTransform::Rotate270).color(&BLACK).pos(Pos::new(HPos::Right, VPos::Center))
            } else {
                label_font.color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top))
            };
            for (i, label) in labels.iter().enumerate().step_by(step) {
                let centre = i as i32 * cell_i + cell_i / 2;
                drawing(root.draw(&Text::new(label.as_str(), (left - 6, top + centre), row_style.clone())))?;
                drawing(root.draw(&Text::new(label.as_str(), (left + centre, top + side + 6), column_style.clone())))?;
            }
            let axis = ("sans-serif", 16).into_font();
            let predicted = axis.color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
            drawing(root.draw(&Text::new("predicted", (left + side / 2, height as i32 - 8), predicted)))?;
            let truth = axis.transform(FontTransform::Rotate270).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
            drawing(root.draw(&Text::new("true", (8, top + side / 2), truth)))?;
        }
        drawing(root.present())?;
    }
    encode_png(rgb, (width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<EpochMetrics> {
        (1..=n)
            .map(|e| {
                let t = e as f32;
                EpochMetrics {
                    epoch: e,
                    train_loss: 2.0 / t,
                    train_accuracy: 1.0 - 0.5 / t,
                    val_loss: 2.2 / t + 0.01 * t,
                    val_accuracy: 1.0 - 0.6 / t - 0.002 * t,
                    learning_rate: 0.001,
                    seconds: 0.5 + 0.01 * t,
                    phase: 1,
                }
            })
            .collect()
    }

    fn decode(png: &[u8]) -> image::RgbImage {
        image::load_from_memory(png).expect("a PNG").to_rgb8()
    }

    fn non_white(img: &image::RgbImage) -> usize {
        img.pixels().filter(|p| p.0 != [255, 255, 255]).count()
    }

    #[test]
    fn curves_without_a_font_are_drawn_without_text() {
        let img = decode(&render_curves(&rows(5), false).expect("drawn"));
        assert_eq!(img.dimensions(), CURVES_SIZE);
        assert!(non_white(&img) > 1000);
    }

    #[test]
    fn confusion_without_a_font_is_drawn_without_text() {
        let matrix = vec![vec![5, 1], vec![0, 7]];
        let labels = vec!["a".to_string(), "b".to_string()];
        let img = decode(&render_confusion(&matrix, &labels, false).expect("drawn"));
        assert!(non_white(&img) > 1000);
    }

    #[test]
    fn best_row_is_the_first_maximum_of_validation_accuracy() {
        let mut r = rows(4);
        r[1].val_accuracy = 0.9;
        r[2].val_accuracy = 0.9;
        r[3].val_accuracy = f32::NAN;
        r[0].val_accuracy = 0.1;
        assert_eq!(best_row(&r), Some(1));
    }
}
