//! `report`: metrics.csv round trip and errors, and curves/confusion PNGs that decode,
//! have the expected size and are not blank, including the degenerate inputs.

use microcnn_tools::train::metrics::{read_metrics_csv, write_metrics_csv, EpochMetrics};
use microcnn_tools::train::plot::{write_confusion_png, write_curves_png};
use std::path::Path;

fn rows(n: usize) -> Vec<EpochMetrics> {
    (1..=n)
        .map(|epoch| {
            let t = epoch as f32;
            EpochMetrics {
                epoch,
                train_loss: 2.0 / t,
                train_accuracy: 1.0 - 0.5 / t,
                val_loss: 2.2 / t + 0.01 * t,
                val_accuracy: 1.0 - 0.6 / t - 0.004 * t,
                learning_rate: 0.001 * 0.9f32.powi(epoch as i32),
                seconds: 0.5 + 0.1 / t,
                phase: 1,
            }
        })
        .collect()
}

fn decode(path: &Path) -> image::RgbImage {
    image::open(path).expect("a PNG").to_rgb8()
}

/// Pixels that differ from the top-left (background) pixel.
fn ink(img: &image::RgbImage) -> usize {
    let background = *img.get_pixel(0, 0);
    img.pixels().filter(|p| **p != background).count()
}

#[test]
fn metrics_csv_round_trips_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("metrics.csv");
    let written = rows(7);
    write_metrics_csv(&path, &written).expect("write");
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(
        text.lines().next(),
        Some("epoch,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate,seconds,phase")
    );
    assert_eq!(text.lines().count(), 8);
    assert_eq!(read_metrics_csv(&path).expect("read back"), written);
    // Fine-tuning's second phase is kept; a file written before the phase column
    // existed reads as phase 1.
    let mut two = written.clone();
    two[5].phase = 2;
    write_metrics_csv(&path, &two).expect("write");
    assert_eq!(read_metrics_csv(&path).expect("read back"), two);
    let old: String = text.lines().map(|l| l.rsplit_once(',').expect("a column").0.to_string() + "\n").collect();
    std::fs::write(&path, old).expect("write");
    assert_eq!(read_metrics_csv(&path).expect("read back"), written);

    write_metrics_csv(&path, &[]).expect("write header only");
    assert_eq!(read_metrics_csv(&path).expect("read back"), Vec::new());
}

#[test]
fn malformed_metrics_csv_line_names_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("metrics.csv");
    write_metrics_csv(&path, &rows(3)).expect("write");
    let text = std::fs::read_to_string(&path).expect("read");
    // Line 3 (epoch 2) gets a learning rate that is not a number.
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut fields: Vec<&str> = lines[2].split(',').collect();
    fields[5] = "fast";
    lines[2] = fields.join(",");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let err = format!("{:#}", read_metrics_csv(&path).expect_err("malformed"));
    assert!(err.contains("metrics.csv") && err.contains("line 3") && err.contains("learning_rate"), "{err}");
    let mut fields: Vec<&str> = text.lines().nth(2).expect("line 3").split(',').collect();
    fields[7] = "second";
    lines[2] = fields.join(",");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let err = format!("{:#}", read_metrics_csv(&path).expect_err("malformed"));
    assert!(err.contains("metrics.csv") && err.contains("line 3") && err.contains("phase"), "{err}");

    std::fs::write(&path, "epoch,train_loss\n1,0.5\n").expect("write");
    let err = format!("{:#}", read_metrics_csv(&path).expect_err("missing columns"));
    assert!(err.contains("metrics.csv") && err.contains("line 1"), "{err}");

    std::fs::write(&path, format!("{}1,2,3\n", text.lines().next().expect("header").to_owned() + "\n")).expect("write");
    let err = format!("{:#}", read_metrics_csv(&path).expect_err("short line"));
    assert!(err.contains("metrics.csv") && err.contains("line 2"), "{err}");
}

#[test]
fn curves_png_decodes_with_expected_size_and_is_not_blank() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("curves.png");
    let mut r = rows(20);
    r[4].val_loss = f32::NAN; // an epoch without a validation loss is skipped, not fatal
    write_curves_png(&path, &r).expect("curves");
    let img = decode(&path);
    assert_eq!(img.dimensions(), (1200, 480));
    assert!(ink(&img) > 5000, "only {} non-background pixels", ink(&img));
}

#[test]
fn curves_of_one_epoch_draw_and_of_none_fail_without_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let one = dir.path().join("one.png");
    write_curves_png(&one, &rows(1)).expect("one epoch");
    let img = decode(&one);
    assert_eq!(img.dimensions(), (1200, 480));
    assert!(ink(&img) > 1000);

    let none = dir.path().join("none.png");
    let err = format!("{:#}", write_curves_png(&none, &[]).expect_err("no rows"));
    assert!(err.contains("none.png"), "{err}");
    assert!(!none.exists());
}

#[test]
fn confusion_png_decodes_and_is_not_blank() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("confusion.png");
    let matrix: Vec<Vec<usize>> =
        (0..10).map(|t| (0..10).map(|p| if t == p { 90 + t } else { (t * p) % 3 }).collect()).collect();
    let labels: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    write_confusion_png(&path, &matrix, &labels).expect("confusion");
    let img = decode(&path);
    let (width, height) = img.dimensions();
    // A 640-pixel grid plus margins for labels and the colour bar.
    assert!((700..1000).contains(&width) && (650..1000).contains(&height), "{width}×{height}");
    assert!(ink(&img) > 20_000, "only {} non-background pixels", ink(&img));
}

#[test]
fn confusion_of_one_class_and_empty_rows_draws_and_bad_shapes_fail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let one = dir.path().join("one.png");
    write_confusion_png(&one, &[vec![0]], &["only \"class\"".to_string()]).expect("1×1 of zero");
    assert!(ink(&decode(&one)) > 1000);

    let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let empty_row = dir.path().join("empty_row.png");
    write_confusion_png(&empty_row, &[vec![3, 0, 1], vec![0, 0, 0], vec![1, 1, 5]], &labels).expect("row of zeros");

    let bad = dir.path().join("bad.png");
    assert!(write_confusion_png(&bad, &[vec![1, 2], vec![3]], &labels[..2]).is_err());
    assert!(write_confusion_png(&bad, &[vec![1, 2], vec![3, 4]], &labels).is_err());
    assert!(write_confusion_png(&bad, &[], &[]).is_err());
    assert!(!bad.exists());
}
