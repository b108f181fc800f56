//! `microcnn augment` end to end: the preview grid has the promised layout, is
//! reproducible under its seed, and bad input gets a one-line error naming it, a non-zero
//! exit and no output file.

use std::process::Output;

mod common;
use common::*;

fn succeeds(out: &Output) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn builtin_digits_grid_has_one_enlarged_cell_per_sample() {
    let dir = tempfile::tempdir().expect("temp dir");
    let grid = dir.path().join("grid.png");
    let out = microcnn(&[
        "augment",
        "--data",
        "digits",
        "--preview",
        &s(&grid),
        "--rows",
        "3",
        "--cols",
        "5",
        "--rotation-range",
        "20",
        "--zoom-range",
        "0.1",
        "--fill-mode",
        "constant",
    ]);
    succeeds(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), s(&grid));
    let image = image::open(&grid).expect("a PNG");
    // 8×8 digits are enlarged 8 times to 64 px cells, with 2 px gaps around every cell.
    assert_eq!((image.width(), image.height()), (5 * 64 + 6 * 2, 3 * 64 + 4 * 2));
}

#[test]
fn image_folder_grid_is_resized_and_reproducible() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |name: &str, seed: &str| {
        let grid = dir.path().join(name);
        let out = microcnn(&[
            "augment",
            "--data",
            &digits_folder("test"),
            "--preview",
            &s(&grid),
            "--size",
            "20x12",
            "--channels",
            "1",
            "--cols",
            "3",
            "--seed",
            seed,
            "--width-shift-range",
            "0.2",
            "--horizontal-flip",
            "--brightness-range",
            "0.5,1.5",
        ]);
        succeeds(&out);
        std::fs::read(grid).expect("grid")
    };
    let first = run("a.png", "1");
    let image = image::load_from_memory(&first).expect("a PNG");
    // 20×12 cells enlarged 4 times (the longer side reaches 64 px); 4 rows by default.
    assert_eq!((image.width(), image.height()), (3 * 48 + 4 * 2, 4 * 80 + 5 * 2));
    assert_eq!(run("b.png", "1"), first, "same seed, same grid");
    assert_ne!(run("c.png", "2"), first, "another seed, another grid");
}

#[test]
fn missing_folder_fails_naming_it_without_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let grid = dir.path().join("grid.png");
    let missing = dir.path().join("no-such-photos");
    let out = microcnn(&["augment", "--data", &s(&missing), "--preview", &s(&grid)]);
    fails_cleanly(&out, "no-such-photos");
    assert!(!grid.exists(), "no partial output");
}

#[test]
fn bad_option_and_empty_class_fail_without_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let grid = dir.path().join("grid.png");
    let out = microcnn(&["augment", "--data", "digits", "--preview", &s(&grid), "--zoom-range", "2"]);
    fails_cleanly(&out, "--zoom-range");
    assert!(!grid.exists(), "no partial output");

    let photos = dir.path().join("photos");
    std::fs::create_dir_all(photos.join("cat")).expect("mkdir");
    std::fs::create_dir_all(photos.join("dog")).expect("mkdir");
    image::GrayImage::new(4, 4).save(photos.join("cat/1.png")).expect("png");
    let out = microcnn(&["augment", "--data", &s(&photos), "--preview", &s(&grid)]);
    fails_cleanly(&out, "dog: no PNG, JPEG or BMP images");
    assert!(!grid.exists(), "no partial output");
}
