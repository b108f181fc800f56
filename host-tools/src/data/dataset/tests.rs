use super::*;
use std::path::PathBuf;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn repo_data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn save_rgb(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y))).save(path).expect("save");
}

fn save_gray(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> u8) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    image::GrayImage::from_fn(w, h, |x, y| image::Luma([f(x, y)])).save(path).expect("save");
}

fn error_of(spec: &str, shape: Option<[usize; 3]>) -> String {
    let err = load(spec, shape).expect_err("should fail");
    let text = format!("{err:#}");
    assert_eq!(text.lines().count(), 1, "one-line error: {text}");
    text
}

/// cat: a flat colour PNG (6×4) and a gradient JPEG (8×8, upper-case extension, in a
/// subfolder); dog: a gray BMP (5×5) and a text file that is ignored.
fn mixed_tree(root: &Path) {
    save_rgb(&root.join("cat/flat.png"), 6, 4, |_, _| [200, 100, 50]);
    let jpeg = root.join("cat/more/grad.jpg");
    save_rgb(&jpeg, 8, 8, |x, y| [(x * 30) as u8, (y * 30) as u8, 128]);
    std::fs::rename(&jpeg, root.join("cat/more/grad.JPG")).expect("rename");
    save_gray(&root.join("dog/d.bmp"), 5, 5, |x, _| (x * 60) as u8);
    std::fs::write(root.join("dog/notes.txt"), "not an image").expect("write");
    std::fs::create_dir_all(root.join(".hidden")).expect("mkdir");
}

#[test]
fn class_folders_mixed_formats_colours_and_sizes_convert_to_the_model_input() {
    let dir = tmp();
    mixed_tree(dir.path());
    let spec = dir.path().display().to_string();

    let gray = load(&spec, Some([4, 4, 1])).expect("load");
    assert_eq!(gray.shape, [4, 4, 1]);
    assert_eq!(gray.classes, ["cat", "dog"]);
    assert_eq!(gray.labels, [0, 0, 1]);
    assert_eq!(gray.class_counts(), [1 + 1, 1]);
    assert_eq!(gray.to_unit().len(), 3 * 16);
    // "cat/flat.png" sorts before "cat/more/grad.JPG". The BT.709 luma of (200, 100, 50)
    // is 118 (the firmware's, core::preprocess::luma).
    assert_eq!(gray.image_unit(0), [118.0 / 255.0; 16]);
    assert!(gray.to_unit().iter().all(|v| (0.0..=1.0).contains(v)));

    let colour = load(&spec, Some([3, 7, 3])).expect("load");
    assert_eq!(colour.shape, [3, 7, 3]);
    let flat: Vec<f32> = [200.0, 100.0, 50.0].iter().map(|v| v / 255.0).cycle().take(3 * 7 * 3).collect();
    assert_eq!(colour.image_unit(0), flat);
    // The gray BMP is replicated to three equal channels.
    assert!(colour.image_unit(2).chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
    // The JPEG gradient survives: red grows to the right, green downwards (over the 3 of
    // 8 rows the centred 7:3 crop keeps, so by about 2 × 30 / 255).
    let jpeg = colour.image_unit(1);
    assert!(jpeg[(7 - 1) * 3] > jpeg[0] + 0.5 && jpeg[(2 * 7) * 3 + 1] > jpeg[1] + 0.2);
}

#[test]
fn native_size_keeps_pixels_and_uses_colour_if_any_image_has_it() {
    let dir = tmp();
    save_gray(&dir.path().join("a/1.png"), 3, 2, |x, y| (10 * x + 100 * y) as u8);
    save_rgb(&dir.path().join("b/2.bmp"), 3, 2, |x, _| [x as u8, 50, 60]);
    let data = load(&dir.path().display().to_string(), None).expect("load");
    assert_eq!(data.shape, [2, 3, 3]);
    let want: Vec<f32> = [0u8, 10, 20, 100, 110, 120].iter().flat_map(|&v| [f32::from(v) / 255.0; 3]).collect();
    assert_eq!(data.image_unit(0), want);
    assert_eq!(data.image_unit(1)[..6], [0.0, 50.0 / 255.0, 60.0 / 255.0, 1.0 / 255.0, 50.0 / 255.0, 60.0 / 255.0]);
}

#[test]
fn conversion_is_the_firmware_preprocessing() {
    // 8-bit RGB pixels, 6×4 → 3×3 gray and colour: the dataset holds exactly the pixels
    // the core's preprocess computes (centred crop, triangle resize, BT.709 luma), / 255.
    let pixels: Vec<u8> = (0..6 * 4 * 3).map(|i| (i * 53 % 256) as u8).collect();
    let rgb = Dataset::new([4, 6, 3], pixels.clone(), vec![0], vec!["x".into()]);
    let frame = microcnn_core::preprocess::Image::new(&pixels, 6, 4, microcnn_core::preprocess::PixelFormat::Rgb888)
        .expect("frame");
    for channels in [1, 3] {
        let quant = microcnn_core::preprocess::InputQuantization {
            width: 3,
            height: 3,
            channels,
            scale: 1.0,
            zero_point: -128,
            pixel_scale: 1.0,
            pixel_offset: 0.0,
        };
        let mut input = vec![0i8; 9 * channels];
        let crop = microcnn_core::preprocess::Crop::centered(&frame, 3, 3);
        microcnn_core::preprocess::preprocess(&frame, crop, &quant, &mut input).expect("preprocess");
        let want: Vec<f32> = input.iter().map(|&q| f32::from(i16::from(q) + 128) / 255.0).collect();
        assert_eq!(rgb.convert([3, 3, channels]).to_unit(), want, "{channels} channels");
    }
}

#[test]
fn convert_changes_channels_by_luma_and_replication() {
    let rgb = Dataset::from_unit([1, 2, 3], &[1.0, 0.0, 0.0, 0.0, 0.5, 1.0], vec![0], vec!["x".into()]);
    let gray = rgb.convert([1, 2, 1]);
    let luma = |p: [u8; 3]| f32::from(microcnn_core::preprocess::luma(p)) / 255.0;
    // 0.5 is the 8-bit 128 (127.5 rounded half away from zero).
    let (red, blue_green) = (luma([255, 0, 0]), luma([0, 128, 255]));
    assert_eq!(gray.to_unit(), [red, blue_green]);
    assert_eq!(red, 54.0 / 255.0);
    let back = gray.convert([1, 2, 3]);
    assert_eq!(back.to_unit(), [red, red, red, blue_green, blue_green, blue_green]);
    assert_eq!(rgb.convert([1, 2, 3]).to_unit(), rgb.to_unit());
}

#[test]
fn missing_folder_is_named() {
    let dir = tmp();
    let missing = dir.path().join("nowhere");
    let err = error_of(&missing.display().to_string(), None);
    assert!(err.contains("nowhere") && err.contains("no such file or folder"), "{err}");
}

#[test]
fn class_folder_without_images_is_named() {
    let dir = tmp();
    save_gray(&dir.path().join("ant/1.png"), 2, 2, |_, _| 0);
    std::fs::create_dir_all(dir.path().join("cat")).expect("mkdir");
    std::fs::write(dir.path().join("cat/readme.txt"), "x").expect("write");
    let err = error_of(&dir.path().display().to_string(), None);
    assert!(err.contains("cat: no PNG, JPEG or BMP images"), "{err}");
}

#[test]
fn folder_without_class_subfolders_is_named() {
    let dir = tmp();
    save_gray(&dir.path().join("loose.png"), 2, 2, |_, _| 0);
    let err = error_of(&dir.path().display().to_string(), None);
    assert!(err.contains(&dir.path().display().to_string()) && err.contains("no class subfolders"), "{err}");
}

#[test]
fn corrupt_and_truncated_images_are_named() {
    let dir = tmp();
    save_rgb(&dir.path().join("a/good.png"), 8, 8, |x, y| [x as u8, y as u8, 0]);
    std::fs::create_dir_all(dir.path().join("b")).expect("mkdir");
    std::fs::write(dir.path().join("b/junk.png"), b"certainly not a picture").expect("write");
    let err = error_of(&dir.path().display().to_string(), Some([8, 8, 3]));
    assert!(err.contains("junk.png"), "{err}");

    std::fs::remove_file(dir.path().join("b/junk.png")).expect("rm");
    let good = std::fs::read(dir.path().join("a/good.png")).expect("read");
    std::fs::write(dir.path().join("b/cut.png"), &good[..good.len() / 2]).expect("write");
    let err = error_of(&dir.path().display().to_string(), Some([8, 8, 3]));
    assert!(err.contains("cut.png") && err.contains("corrupt or truncated"), "{err}");

    std::fs::remove_file(dir.path().join("b/cut.png")).expect("rm");
    save_rgb(&dir.path().join("b/full.jpg"), 32, 32, |x, y| [(x * 8) as u8, (y * 8) as u8, 7]);
    let jpeg = std::fs::read(dir.path().join("b/full.jpg")).expect("read");
    std::fs::write(dir.path().join("b/full.jpg"), &jpeg[..jpeg.len() / 3]).expect("write");
    let err = error_of(&dir.path().display().to_string(), Some([8, 8, 3]));
    assert!(err.contains("full.jpg"), "{err}");
}

#[test]
fn mixed_sizes_without_a_shape_name_the_odd_file() {
    let dir = tmp();
    save_gray(&dir.path().join("a/1.png"), 4, 4, |_, _| 0);
    save_gray(&dir.path().join("b/2.png"), 5, 4, |_, _| 0);
    let err = error_of(&dir.path().display().to_string(), None);
    assert!(err.contains("2.png") && err.contains("4×5"), "{err}");
    assert!(load(&dir.path().display().to_string(), Some([4, 4, 1])).is_ok());
}

#[test]
fn bad_builtin_specs_are_refused() {
    assert!(error_of("digits:valid", None).contains("digits:valid"));
    let err = error_of("shapes:colour=3", None);
    assert!(err.contains("unknown key") && err.contains("colour"), "{err}");
    assert!(error_of("shapes:size=big", None).contains("size=big"));
    assert!(error_of("shapes:channels=2", None).contains("channels=2"));
    assert!(error_of("shapes:split=val", None).contains("split=val"));
    let err = error_of("cifar:train", None);
    assert!(err.contains("cifar") && err.contains("not a built-in"), "{err}");
}

#[test]
fn builtin_digits_has_the_split_sizes_and_ten_classes() {
    let train = load("digits", None).expect("digits");
    let test = load("digits:test", None).expect("digits:test");
    assert_eq!((train.len(), test.len()), (1438, 359));
    assert_eq!(train.shape, [8, 8, 1]);
    assert_eq!(train.classes, (0..10).map(|c| c.to_string()).collect::<Vec<_>>());
    assert_eq!(test.classes.len(), 10);
    assert_eq!(load("digits:train", None).expect("digits:train").to_unit(), train.to_unit());
    assert!(train.class_counts().iter().all(|&n| n > 100));
}

/// Maps each image of a class-folder dataset to its file stem, in the loader's order.
fn stems(dir: &Path, data: &Dataset) -> std::collections::HashMap<String, usize> {
    let mut index = 0;
    let mut map = std::collections::HashMap::new();
    for class in &data.classes {
        let mut names: Vec<String> = std::fs::read_dir(dir.join(class))
            .expect("class dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            map.insert(name.trim_end_matches(".png").to_string(), index);
            index += 1;
        }
    }
    map
}

#[test]
fn builtin_digits_equal_the_png_folders_pixel_for_pixel() {
    let split: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo_data("host-tools/data/digits/split.json")).expect("split.json"))
            .expect("json");
    for (name, spec) in [("train", "digits:train"), ("test", "digits:test")] {
        let builtin = load(spec, None).expect("builtin");
        let dir = repo_data("tests/data/digits").join(name);
        let folder = load(&dir.display().to_string(), None).expect("folder");
        assert_eq!((folder.len(), folder.shape, &folder.classes), (builtin.len(), builtin.shape, &builtin.classes));
        let by_stem = stems(&dir, &folder);
        let indices = split[name].as_array().expect("index list");
        assert_eq!(indices.len(), builtin.len());
        for (k, original) in indices.iter().enumerate() {
            let i = by_stem[&original.to_string()];
            assert_eq!(builtin.labels[k], folder.labels[i], "{name} image {k}");
            assert_eq!(builtin.image_unit(k), folder.image_unit(i), "{name} image {k}");
        }
        // Resized to a model's input, both paths agree too.
        let big = load(spec, Some([16, 16, 3])).expect("resized builtin");
        let big_folder = load(&dir.display().to_string(), Some([16, 16, 3])).expect("resized folder");
        for (k, original) in indices.iter().enumerate().step_by(37) {
            assert_eq!(big.image_unit(k), big_folder.image_unit(by_stem[&original.to_string()]));
        }
    }
}

fn small_dataset(n: usize, shape: [usize; 3], classes: usize) -> Dataset {
    let len = shape.iter().product::<usize>();
    Dataset::new(
        shape,
        (0..n * len).map(|i| ((i * 7919) % 256) as u8).collect(),
        (0..n).map(|i| (i * 3) % classes).collect(),
        (0..classes).map(|c| format!("c{c}")).collect(),
    )
}

#[test]
fn idx_round_trip_through_files_and_folder() {
    let dir = tmp();
    for (shape, stem) in [([5, 3, 1], "gray"), ([2, 4, 3], "colour")] {
        let data = small_dataset(13, shape, 11);
        let images = dir.path().join(format!("{stem}-images-idx3-ubyte"));
        std::fs::write(&images, idx::encode_images(&data)).expect("write");
        std::fs::write(dir.path().join(format!("{stem}-labels-idx1-ubyte")), idx::encode_labels(&data)).expect("write");
        let back = load(&images.display().to_string(), Some(shape)).expect("load idx");
        assert_eq!((back.shape, &back.to_unit(), &back.labels), (data.shape, &data.to_unit(), &data.labels));
        assert_eq!(back.classes, (0..11).map(|c| c.to_string()).collect::<Vec<_>>());
    }
    // A folder with one pair loads as IDX; with two, it names them.
    let err = error_of(&dir.path().display().to_string(), None);
    assert!(err.contains("several IDX images files"), "{err}");
    let one = dir.path().join("one");
    std::fs::create_dir(&one).expect("mkdir");
    for f in ["gray-images-idx3-ubyte", "gray-labels-idx1-ubyte"] {
        std::fs::copy(dir.path().join(f), one.join(f)).expect("copy");
    }
    assert_eq!(load(&one.display().to_string(), None).expect("pair dir").len(), 13);
}

#[test]
fn idx_errors_name_the_file_and_the_problem() {
    let dir = tmp();
    let data = small_dataset(6, [4, 4, 1], 3);
    let images = dir.path().join("x-images-idx3-ubyte");
    let labels = dir.path().join("x-labels-idx1-ubyte");
    let spec = images.display().to_string();
    let encoded = idx::encode_images(&data);
    std::fs::write(&labels, idx::encode_labels(&data)).expect("write");

    let mut wrong = encoded.clone();
    wrong[3] = 0x01;
    std::fs::write(&images, &wrong).expect("write");
    let err = error_of(&spec, None);
    assert!(err.contains("x-images-idx3-ubyte") && err.contains("magic 0x00000801"), "{err}");

    std::fs::write(&images, &encoded[..encoded.len() - 5]).expect("write");
    let err = error_of(&spec, None);
    assert!(err.contains("x-images-idx3-ubyte") && err.contains("truncated"), "{err}");

    std::fs::write(&images, &encoded).expect("write");
    std::fs::write(&labels, idx::encode_labels(&data.subset(&[0, 1, 2, 3, 4]))).expect("write");
    let err = error_of(&spec, None);
    assert!(err.contains("x-labels-idx1-ubyte") && err.contains("5 labels for 6 images"), "{err}");

    std::fs::write(&labels, idx::encode_labels(&data)).expect("write");
    let err = error_of(&spec, Some([8, 8, 1]));
    assert!(err.contains("x-images-idx3-ubyte") && err.contains("4×4×1") && err.contains("8×8×1"), "{err}");

    std::fs::remove_file(&labels).expect("rm");
    let err = error_of(&spec, None);
    assert!(err.contains("x-labels-idx1-ubyte") && err.contains("not found"), "{err}");
}

#[test]
fn stratified_split_keeps_every_class_on_both_sides() {
    let data = small_dataset(200, [2, 2, 1], 7);
    let (train, validation) = data.split_validation(0.2, 5);
    assert_eq!(train.len() + validation.len(), data.len());
    assert!(train.class_counts().iter().all(|&n| n > 0));
    assert!(validation.class_counts().iter().all(|&n| n > 0));
    for (c, (&all, &val)) in data.class_counts().iter().zip(&validation.class_counts()).enumerate() {
        assert_eq!(val, ((all as f32) * 0.2).round() as usize, "class {c}");
    }
    let (train_again, _) = data.split_validation(0.2, 5);
    assert_eq!(train.to_unit(), train_again.to_unit());
    let (train_other, _) = data.split_validation(0.2, 6);
    assert_ne!(train.to_unit(), train_other.to_unit());
    // A class of two keeps one on each side even at a small fraction; one of one stays in train.
    let tiny = Dataset { labels: vec![0, 0, 1], ..small_dataset(3, [1, 1, 1], 2) };
    let (t, v) = tiny.split_validation(0.1, 0);
    assert_eq!((t.class_counts(), v.class_counts()), (vec![1, 1], vec![1, 0]));
}

#[test]
fn stratified_folds_validate_every_image_once_with_every_class_spread() {
    // 7 classes of uneven sizes: 5 folds.
    let data = Dataset {
        labels: (0..103).map(|i| if i < 70 { i % 7 } else { i % 3 }).collect(),
        ..small_dataset(103, [2, 2, 1], 7)
    };
    let folds = data.stratified_folds(5, 3);
    assert_eq!(folds.len(), 5);
    let images = |d: &Dataset| (0..d.len()).map(|i| (d.image(i).to_vec(), d.labels[i])).collect::<Vec<_>>();
    let mut validated = Vec::new();
    for (train, validation) in &folds {
        assert_eq!(train.len() + validation.len(), data.len());
        // Each class: the fold's share within one image.
        for (c, (&all, &val)) in data.class_counts().iter().zip(&validation.class_counts()).enumerate() {
            assert!(val == all / 5 || val == all.div_ceil(5), "class {c}: {val} of {all}");
        }
        let mut both = images(train);
        both.extend(images(validation));
        both.sort();
        let mut every = images(&data);
        every.sort();
        assert_eq!(both, every);
        validated.extend(images(validation));
    }
    let sizes: Vec<usize> = folds.iter().map(|f| f.1.len()).collect();
    assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
    validated.sort();
    let mut every = images(&data);
    every.sort();
    assert_eq!(validated, every, "every image validated exactly once");
    let again = data.stratified_folds(5, 3);
    assert!(folds.iter().zip(&again).all(|(a, b)| a.1.to_unit() == b.1.to_unit()));
    assert_ne!(folds[0].1.to_unit(), data.stratified_folds(5, 4)[0].1.to_unit());
}

#[test]
fn shapes_are_deterministic_and_have_the_requested_shape() {
    let a = load("shapes:size=20x24,channels=1,count=30,seed=4", None).expect("shapes");
    assert_eq!((a.shape, a.len(), a.classes.len()), ([20, 24, 1], 30, 6));
    assert_eq!(a.class_counts(), [5; 6]);
    assert!(a.to_unit().iter().all(|&v| (0.0..=1.0).contains(&v) && (v * 255.0 - (v * 255.0).round()).abs() < 1e-3));
    let again = load("shapes:seed=4,count=30,channels=1,size=20x24", None).expect("shapes");
    assert_eq!(a.to_unit(), again.to_unit());
    let other_seed = load("shapes:size=20x24,channels=1,count=30,seed=5", None).expect("shapes");
    assert_ne!(a.to_unit(), other_seed.to_unit());
    let test = load("shapes:size=20x24,channels=1,count=30,seed=4,split=test", None).expect("shapes");
    assert_ne!(a.to_unit(), test.to_unit());
    // A longer set begins with the shorter one.
    let longer = load("shapes:size=20x24,channels=1,count=40,seed=4", None).expect("shapes");
    assert_eq!(longer.to_unit()[..a.to_unit().len()], a.to_unit()[..]);
    // Defaults follow the model's input; explicit keys are drawn then converted.
    let model = load("shapes:count=12", Some([16, 16, 3])).expect("shapes");
    assert_eq!(model.shape, [16, 16, 3]);
    assert_eq!(load("shapes:count=12,size=32,channels=1", Some([16, 16, 3])).expect("shapes").shape, [16, 16, 3]);
    assert_eq!(load("shapes:count=6", None).expect("shapes").shape, [32, 32, 3]);
}

/// Two classes of two 4×4 gray images each, pixel values 10·class + image.
fn two_class_tree(root: &Path) {
    for (c, class) in ["a", "b"].iter().enumerate() {
        for i in 0..2u8 {
            save_gray(&root.join(class).join(format!("{i}.png")), 4, 4, |_, _| 10 * c as u8 + i);
        }
    }
}

#[cfg(unix)]
#[test]
fn symlink_loops_end_and_links_out_of_a_class_are_not_followed() {
    use std::os::unix::fs::symlink;
    let dir = tmp();
    let root = dir.path().join("data");
    two_class_tree(&root);
    // Two links to `.` (a loop that grows without end if followed), one to `..` (the
    // whole dataset again, other classes' images under this class) and one to another class.
    symlink(".", root.join("a/self1")).expect("symlink");
    symlink(".", root.join("a/self2")).expect("symlink");
    symlink("..", root.join("a/up")).expect("symlink");
    symlink("../b", root.join("a/other")).expect("symlink");
    symlink("../..", root.join("b/outside")).expect("symlink");
    save_gray(&dir.path().join("foreign.png"), 4, 4, |_, _| 99);
    let data = load(&root.display().to_string(), None).expect("loads");
    assert_eq!(data.classes, ["a", "b"]);
    assert_eq!(data.labels, [0, 0, 1, 1]);
    let firsts: Vec<f32> = (0..data.len()).map(|i| (data.image_unit(i)[0] * 255.0).round()).collect();
    assert_eq!(firsts, [0.0, 1.0, 10.0, 11.0]);

    // A real subfolder reached also through a link is read once.
    save_gray(&root.join("b/deep/2.png"), 4, 4, |_, _| 12);
    symlink("deep", root.join("b/deep-again")).expect("symlink");
    assert_eq!(load(&root.display().to_string(), None).expect("loads").labels, [0, 0, 1, 1, 1]);
}

#[test]
fn hidden_files_and_macos_metadata_are_skipped() {
    let dir = tmp();
    two_class_tree(dir.path());
    // What unzipping a Mac's archive leaves: resource forks that are not PNGs.
    std::fs::write(dir.path().join("a/._0.png"), b"\0\x05\x16\x07 AppleDouble").expect("write");
    std::fs::write(dir.path().join("a/.DS_Store"), b"Bud1").expect("write");
    std::fs::create_dir_all(dir.path().join("__MACOSX/a")).expect("mkdir");
    std::fs::write(dir.path().join("__MACOSX/a/._0.png"), b"\0\x05\x16\x07").expect("write");
    std::fs::create_dir_all(dir.path().join("b/.thumbnails")).expect("mkdir");
    std::fs::write(dir.path().join("b/.thumbnails/t.png"), b"junk").expect("write");
    let data = load(&dir.path().display().to_string(), None).expect("loads");
    assert_eq!(
        (data.classes.as_slice(), data.labels.as_slice()),
        (&["a".to_string(), "b".into()][..], &[0, 0, 1, 1][..])
    );
}

#[test]
fn relabel_maps_classes_by_name_and_names_unknown_ones() {
    let data = Dataset::new([1, 1, 1], vec![0, 25, 51], vec![0, 1, 1], vec!["circle".into(), "square".into()]);
    let model: Vec<String> = ["square", "triangle", "circle"].iter().map(|s| s.to_string()).collect();
    let mapped = data.clone().relabel(&model).expect("relabels");
    assert_eq!((mapped.labels.as_slice(), mapped.classes.as_slice()), (&[2, 0, 0][..], model.as_slice()));
    let err = format!("{:#}", data.relabel(&model[..2]).expect_err("circle unknown"));
    assert!(err.contains("\"circle\"") && err.contains("not among"), "{err}");
}

#[test]
fn fewer_than_two_classes_are_refused_for_training() {
    let dir = tmp();
    save_gray(&dir.path().join("only/1.png"), 4, 4, |_, _| 0);
    save_gray(&dir.path().join("only/2.png"), 4, 4, |_, _| 0);
    let spec = dir.path().display().to_string();
    let data = load(&spec, None).expect("one class loads (eval, calibration)");
    let err = format!("{:#}", data.require_two_classes(&spec).expect_err("refused"));
    assert!(err.contains(&spec) && err.contains("at least two"), "{err}");
}

/// A valid PNG of `width × height` black gray pixels, a few kilobytes: one fixed-Huffman
/// deflate block of a literal zero and copies of 258 bytes at distance 1.
fn black_png(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
    struct Bits(Vec<u8>, u32, u32);
    impl Bits {
        /// `n` bits of `v`, least significant first (deflate's header fields).
        fn lsb(&mut self, v: u32, n: u32) {
            for i in 0..n {
                self.1 |= ((v >> i) & 1) << self.2;
                self.2 += 1;
                if self.2 == 8 {
                    self.0.push(self.1 as u8);
                    (self.1, self.2) = (0, 0);
                }
            }
        }
        /// A Huffman code of `n` bits, most significant first.
        fn code(&mut self, v: u32, n: u32) {
            for i in (0..n).rev() {
                self.lsb((v >> i) & 1, 1);
            }
        }
    }
    let total = u64::from(height) * (u64::from(width) + 1); // a filter byte per row
    let mut bits = Bits(vec![0x78, 0x01], 0, 0);
    bits.lsb(1, 1); // last block
    bits.lsb(1, 2); // fixed Huffman codes
    bits.code(0x30, 8); // literal 0
    for _ in 0..(total - 1) / 258 {
        bits.code(0xC5, 8); // length 258 (code 285)
        bits.code(0, 5); // distance 1
    }
    for _ in 0..(total - 1) % 258 {
        bits.code(0x30, 8);
    }
    bits.code(0, 7); // end of block
    bits.lsb(0, 7); // pad to a byte
    let mut zlib = bits.0;
    let adler = ((total % 65521) as u32) << 16 | 1; // all bytes zero: a = 1, b = n
    zlib.extend(adler.to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend((data.len() as u32).to_be_bytes());
        let body: Vec<u8> = kind.iter().chain(data).copied().collect();
        png.extend(&body);
        png.extend(crc32(&body).to_be_bytes());
    };
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit gray, no interlace
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &zlib);
    chunk(b"IEND", &[]);
    png
}

#[test]
fn a_huge_valid_png_is_too_large_not_corrupt() {
    let dir = tmp();
    let small = dir.path().join("small.png");
    std::fs::write(&small, black_png(300, 200)).expect("write");
    let picture = preprocess::read(&small).expect("the hand-made PNG is valid");
    assert_eq!((picture.width, picture.height, picture.channels), (300, 200, 1));
    assert!(picture.pixels.iter().all(|&p| p == 0));

    let huge = dir.path().join("huge.png");
    let bytes = black_png(14000, 14000);
    assert!(bytes.len() < 2_000_000, "{} bytes", bytes.len());
    std::fs::write(&huge, bytes).expect("write");
    let err = format!("{:#}", preprocess::read(&huge).expect_err("refused"));
    assert!(err.contains("huge.png: image too large (14000×14000, limit 67108864 pixels)"), "{err}");
}

#[test]
fn bytes_become_the_values_the_f32_datasets_held() {
    for k in 0..=255u8 {
        let v = unit(k);
        // Folders, IDX files and conversions held f32::from(k) / 255; `shapes` held
        // (k / 255 in f64) as f32; `eval` turned a value back into k by rounding v · 255.
        assert_eq!(v.to_bits(), (f32::from(k) / 255.0).to_bits(), "{k}");
        assert_eq!(v.to_bits(), ((f64::from(k) / 255.0) as f32).to_bits(), "{k}");
        assert_eq!((v * 255.0).round().clamp(0.0, 255.0) as u8, k);
    }
    let bytes: Vec<u8> = (0..=255).collect();
    let mut out = vec![0.0; 256];
    to_unit(&bytes, &mut out);
    assert_eq!(out, bytes.iter().map(|&b| f32::from(b) / 255.0).collect::<Vec<_>>());
}

#[test]
fn subsets_and_splits_are_views_of_the_same_pixels() {
    let data = small_dataset(50, [2, 3, 1], 4);
    let picked = [7, 3, 3, 49, 0];
    let sub = data.subset(&picked);
    for (k, &i) in picked.iter().enumerate() {
        assert_eq!((sub.image(k), sub.labels[k]), (data.image(i), data.labels[i]));
    }
    // A subset of a subset indexes the original.
    let inner = sub.subset(&[3, 1]);
    assert_eq!((inner.image(0), inner.image(1)), (data.image(49), data.image(3)));
    assert_eq!(inner.to_unit(), [data.image_unit(49), data.image_unit(3)].concat());
    assert_eq!(sub.range_unit(1..4), [data.image_unit(3), data.image_unit(3), data.image_unit(49)].concat());
    assert_eq!(
        sub.bytes().collect::<Vec<u8>>(),
        picked.iter().flat_map(|&i| data.image(i).to_vec()).collect::<Vec<_>>()
    );
    // No copy: every view shares the store.
    let (train, validation) = data.split_validation(0.3, 1);
    assert!(Arc::ptr_eq(&train.store, &data.store) && Arc::ptr_eq(&validation.store, &data.store));
    assert!(Arc::ptr_eq(&inner.store, &data.store) && Arc::ptr_eq(&data.convert(data.shape).store, &data.store));
    // A converted view converts the images of the view.
    let big = inner.convert([4, 6, 3]);
    assert_eq!(big.image(1), data.subset(&[3]).convert([4, 6, 3]).image(0));
}

#[test]
fn atoms_are_formula_driven_classes_drawn_like_shapes() {
    let a = load("atoms:count=24,classes=12,seed=3", None).expect("atoms");
    assert_eq!((a.shape, a.len(), a.classes.len()), ([32, 32, 3], 24, 12));
    assert_eq!(a.classes[0], "atom000");
    assert_eq!(a.classes[11], "atom011");
    assert_eq!(a.class_counts(), [2; 12]);
    assert_eq!(a.to_unit(), load("atoms:classes=12,seed=3,count=24", None).expect("atoms").to_unit());
    assert_eq!(load("atoms:count=4", None).expect("atoms").classes.len(), 200);
    // Same picture streams as `shapes`, another outline: no picture equals its shapes twin.
    let s = load("shapes:count=24,seed=3", None).expect("shapes");
    for i in 0..24 {
        assert_ne!(a.image(i), s.image(i), "picture {i}");
    }
    assert!(error_of("atoms:classes=1", None).contains("classes=1: must be 2 to 336"));
    assert!(error_of("atoms:classes=337", None).contains("classes=337"));
    assert!(error_of("atoms:classes=circle+square", None).contains("atoms: classes=circle+square"));
}
