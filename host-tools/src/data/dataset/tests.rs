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
    assert_eq!(gray.images.len(), 3 * 16);
    // "cat/flat.png" sorts before "cat/more/grad.JPG". The BT.709 luma of (200, 100, 50)
    // is 118 (the firmware's, core::preprocess::luma).
    assert_eq!(gray.image(0), [118.0 / 255.0; 16]);
    assert!(gray.images.iter().all(|v| (0.0..=1.0).contains(v)));

    let colour = load(&spec, Some([3, 7, 3])).expect("load");
    assert_eq!(colour.shape, [3, 7, 3]);
    let flat: Vec<f32> = [200.0, 100.0, 50.0].iter().map(|v| v / 255.0).cycle().take(3 * 7 * 3).collect();
    assert_eq!(colour.image(0), flat);
    // The gray BMP is replicated to three equal channels.
    assert!(colour.image(2).chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
    // The JPEG gradient survives: red grows to the right, green downwards (over the 3 of
    // 8 rows the centred 7:3 crop keeps, so by about 2 × 30 / 255).
    let jpeg = colour.image(1);
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
    assert_eq!(data.image(0), want);
    assert_eq!(data.image(1)[..6], [0.0, 50.0 / 255.0, 60.0 / 255.0, 1.0 / 255.0, 50.0 / 255.0, 60.0 / 255.0]);
}

#[test]
fn conversion_is_the_firmware_preprocessing() {
    // 8-bit RGB pixels, 6×4 → 3×3 gray and colour: the dataset holds exactly the pixels
    // the core's preprocess computes (centred crop, triangle resize, BT.709 luma), / 255.
    let pixels: Vec<u8> = (0..6 * 4 * 3).map(|i| (i * 53 % 256) as u8).collect();
    let rgb = Dataset {
        shape: [4, 6, 3],
        images: pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
        labels: vec![0],
        classes: vec!["x".into()],
    };
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
        assert_eq!(rgb.convert([3, 3, channels]).images, want, "{channels} channels");
    }
}

#[test]
fn convert_changes_channels_by_luma_and_replication() {
    let rgb = Dataset {
        shape: [1, 2, 3],
        images: vec![1.0, 0.0, 0.0, 0.0, 0.5, 1.0],
        labels: vec![0],
        classes: vec!["x".into()],
    };
    let gray = rgb.convert([1, 2, 1]);
    let luma = |p: [u8; 3]| f32::from(microcnn_core::preprocess::luma(p)) / 255.0;
    // 0.5 is the 8-bit 128 (127.5 rounded half away from zero).
    let (red, blue_green) = (luma([255, 0, 0]), luma([0, 128, 255]));
    assert_eq!(gray.images, [red, blue_green]);
    assert_eq!(red, 54.0 / 255.0);
    let back = gray.convert([1, 2, 3]);
    assert_eq!(back.images, [red, red, red, blue_green, blue_green, blue_green]);
    assert_eq!(rgb.convert([1, 2, 3]).images, rgb.images);
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
    assert_eq!(load("digits:train", None).expect("digits:train").images, train.images);
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
            assert_eq!(builtin.image(k), folder.image(i), "{name} image {k}");
        }
        // Resized to a model's input, both paths agree too.
        let big = load(spec, Some([16, 16, 3])).expect("resized builtin");
        let big_folder = load(&dir.display().to_string(), Some([16, 16, 3])).expect("resized folder");
        for (k, original) in indices.iter().enumerate().step_by(37) {
            assert_eq!(big.image(k), big_folder.image(by_stem[&original.to_string()]));
        }
    }
}

fn small_dataset(n: usize, shape: [usize; 3], classes: usize) -> Dataset {
    let len = shape.iter().product::<usize>();
    Dataset {
        shape,
        images: (0..n * len).map(|i| ((i * 7919) % 256) as f32 / 255.0).collect(),
        labels: (0..n).map(|i| (i * 3) % classes).collect(),
        classes: (0..classes).map(|c| format!("c{c}")).collect(),
    }
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
        assert_eq!((back.shape, &back.images, &back.labels), (data.shape, &data.images, &data.labels));
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
    assert_eq!(train.images, train_again.images);
    let (train_other, _) = data.split_validation(0.2, 6);
    assert_ne!(train.images, train_other.images);
    // A class of two keeps one on each side even at a small fraction; one of one stays in train.
    let tiny = Dataset { labels: vec![0, 0, 1], ..small_dataset(3, [1, 1, 1], 2) };
    let (t, v) = tiny.split_validation(0.1, 0);
    assert_eq!((t.class_counts(), v.class_counts()), (vec![1, 1], vec![1, 0]));
}

#[test]
fn shapes_are_deterministic_and_have_the_requested_shape() {
    let a = load("shapes:size=20x24,channels=1,count=30,seed=4", None).expect("shapes");
    assert_eq!((a.shape, a.len(), a.classes.len()), ([20, 24, 1], 30, 6));
    assert_eq!(a.class_counts(), [5; 6]);
    assert!(a.images.iter().all(|&v| (0.0..=1.0).contains(&v) && (v * 255.0 - (v * 255.0).round()).abs() < 1e-3));
    let again = load("shapes:seed=4,count=30,channels=1,size=20x24", None).expect("shapes");
    assert_eq!(a.images, again.images);
    let other_seed = load("shapes:size=20x24,channels=1,count=30,seed=5", None).expect("shapes");
    assert_ne!(a.images, other_seed.images);
    let test = load("shapes:size=20x24,channels=1,count=30,seed=4,split=test", None).expect("shapes");
    assert_ne!(a.images, test.images);
    // A longer set begins with the shorter one.
    let longer = load("shapes:size=20x24,channels=1,count=40,seed=4", None).expect("shapes");
    assert_eq!(longer.images[..a.images.len()], a.images[..]);
    // Defaults follow the model's input; explicit keys are drawn then converted.
    let model = load("shapes:count=12", Some([16, 16, 3])).expect("shapes");
    assert_eq!(model.shape, [16, 16, 3]);
    assert_eq!(load("shapes:count=12,size=32,channels=1", Some([16, 16, 3])).expect("shapes").shape, [16, 16, 3]);
    assert_eq!(load("shapes:count=6", None).expect("shapes").shape, [32, 32, 3]);
}
