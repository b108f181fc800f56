//! The training pipeline end to end through the `microcnn` binary: train → eval (f32)
//! → quantize → eval (int8) agreeing byte for byte with `infer`; resume continuing
//! exactly; and bad input failing with one line, a non-zero exit and no output.

use std::path::{Path, PathBuf};

mod common;
use common::*;

fn arch() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("archs/digits.toml").display().to_string()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).expect("json")
}

fn train(dir: &Path, epochs: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join("run");
    let a = arch();
    let mut args = vec!["train", "--data", "digits", "--arch", &a];
    let o = s(&out);
    args.extend(["--out", &o, "--epochs", epochs, "--seed", "0", "--quiet"]);
    args.extend(extra);
    run_ok(&args);
    out
}

#[test]
fn digits_train_quantize_eval_and_infer_agree() {
    let dir = tempfile::tempdir().unwrap();
    let run = train(dir.path(), "4", &[]);
    for file in ["model.safetensors", "state.safetensors", "arch.toml", "labels.txt", "metrics.csv", "curves.png"] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 5, "header + 4 epochs");

    let float = json(&run_ok(&["eval", &s(&run), "--data", &digits_folder("test"), "--json"]));
    let float_acc = float["accuracy"].as_f64().unwrap();
    assert_eq!(float["samples"], 359);
    assert!(float_acc > 0.85, "4 epochs on digits should reach a clear accuracy, got {float_acc}");
    assert!(run.join("confusion.png").is_file());

    let model = dir.path().join("digits.mcnn");
    run_ok(&["quantize", &s(&run), "--calib", "digits", "-o", &s(&model)]);
    let inputs = dir.path().join("in.npy");
    let outputs = dir.path().join("out.npy");
    let int8 = json(&run_ok(&[
        "eval",
        &s(&model),
        "--data",
        &digits_folder("test"),
        "--json",
        "--save-inputs",
        &s(&inputs),
        "--save-outputs",
        &s(&outputs),
        "--confusion",
        &s(&dir.path().join("c.png")),
    ]));
    let int8_acc = int8["accuracy"].as_f64().unwrap();
    assert!((int8_acc - float_acc).abs() <= 0.02, "int8 {int8_acc} vs f32 {float_acc}");

    // `eval` and `infer` run the same engine on the same bytes.
    let again = dir.path().join("again.npy");
    run_ok(&["infer", &s(&model), "--input", &s(&inputs), "--output", &s(&again)]);
    assert_eq!(std::fs::read(&outputs).unwrap(), std::fs::read(&again).unwrap());
    // Another path than both (which share inspect::run::run_samples): one core
    // interpreter, sample after sample, in this test; and the accuracy recomputed from
    // those outputs with the labels of the same folder.
    let blob = std::fs::read(&model).unwrap();
    let parsed = microcnn_core::Model::from_bytes(&blob).unwrap();
    let mut arena = vec![0u8; parsed.arena_size()];
    let mut engine = microcnn_core::Interpreter::new(&parsed, &mut arena).unwrap();
    let saved_in = microcnn_tools::io::npy::read_i8(&inputs).unwrap().data;
    let saved_out = microcnn_tools::io::npy::read_i8(&outputs).unwrap().data;
    let labels = microcnn_tools::data::dataset::load(&digits_folder("test"), Some([16, 16, 1])).unwrap().labels;
    let (k, mut correct) = (10, 0);
    for (i, x) in saved_in.chunks_exact(16 * 16).enumerate() {
        engine.input_mut().copy_from_slice(x);
        engine.invoke().unwrap();
        assert_eq!(engine.output(), &saved_out[i * k..(i + 1) * k], "sample {i}");
        let top = (0..k).rev().max_by_key(|&c| engine.output()[c]).unwrap(); // ties to the lower class
        correct += usize::from(top == labels[i]);
    }
    assert_eq!(int8["correct"], correct);

    // The architecture's summary predicts the int8 model's arena.
    let arch_summary = json(&run_ok(&["summary", &arch(), "--json"]));
    let model_summary = json(&run_ok(&["summary", &s(&model), "--json"]));
    assert_eq!(arch_summary["arena_bytes"], model_summary["arena_bytes"]);
    assert_eq!(arch_summary["macs"], model_summary["macs"]);
    assert_eq!(arch_summary["params"], model_summary["params"]);
}

#[test]
fn quantization_aware_finetuning_keeps_eval_and_infer_identical() {
    let dir = tempfile::tempdir().unwrap();
    let run = train(dir.path(), "3", &["--val-split", "0"]);
    let model = dir.path().join("qat.mcnn");
    run_ok(&["quantize", &s(&run), "--calib", "digits", "-o", &s(&model), "--qat-epochs", "1"]);
    let (inputs, outputs, again) = (dir.path().join("i.npy"), dir.path().join("o.npy"), dir.path().join("a.npy"));
    let int8 = json(&run_ok(&[
        "eval",
        &s(&model),
        "--data",
        "digits:test",
        "--json",
        "--save-inputs",
        &s(&inputs),
        "--save-outputs",
        &s(&outputs),
    ]));
    assert!(int8["accuracy"].as_f64().unwrap() > 0.8);
    run_ok(&["infer", &s(&model), "--input", &s(&inputs), "--output", &s(&again)]);
    assert_eq!(std::fs::read(&outputs).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn resume_continues_exactly_where_an_uninterrupted_run_would_be() {
    let straight = tempfile::tempdir().unwrap();
    let a = train(straight.path(), "3", &["--horizontal-flip", "--rotation-range", "10"]);
    let split = tempfile::tempdir().unwrap();
    let b = train(split.path(), "1", &["--horizontal-flip", "--rotation-range", "10"]);
    run_ok(&[
        "train",
        "--data",
        "digits",
        "--out",
        &s(&b),
        "--epochs",
        "3",
        "--seed",
        "0",
        "--quiet",
        "--resume",
        "--horizontal-flip",
        "--rotation-range",
        "10",
    ]);
    let (net_a, info_a) = microcnn_tools::train::checkpoint::load(&a).unwrap();
    let (net_b, info_b) = microcnn_tools::train::checkpoint::load(&b).unwrap();
    assert_eq!(info_a, info_b);
    assert!(net_a == net_b, "resumed weights differ from the uninterrupted run's");
    let rows = |p: &Path| -> Vec<Vec<String>> {
        // Everything but the wall-clock seconds column.
        let text = std::fs::read_to_string(p.join("metrics.csv")).unwrap();
        let seconds = text.lines().next().unwrap().split(',').position(|c| c == "seconds").unwrap();
        let fields =
            |l: &str| l.split(',').enumerate().filter(|&(i, _)| i != seconds).map(|(_, f)| f.to_string()).collect();
        text.lines().map(fields).collect()
    };
    assert_eq!(rows(&a), rows(&b));
    // A fresh run into a directory that holds one is refused.
    fails_cleanly(&microcnn(&["train", "--data", "digits", "--arch", &arch(), "--out", &s(&b)]), "--resume");
}

#[test]
fn bad_input_fails_with_one_line_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let o = s(&out);
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        s(&p)
    };

    let unknown =
        write("unknown.toml", "input = [16, 16, 1]\n[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"lstm\"\n");
    fails_cleanly(
        &microcnn(&["train", "--data", "digits", "--arch", &unknown, "--out", &o]),
        "layer 2 (lstm): unknown layer type",
    );
    let impossible = write(
        "impossible.toml",
        "input = [16, 16, 1]\n[[layer]]\ntype = \"maxpool2d\"\npool = 4\n[[layer]]\ntype = \"conv2d\"\nfilters = 4\nkernel = 5\n",
    );
    fails_cleanly(&microcnn(&["train", "--data", "digits", "--arch", &impossible, "--out", &o]), "layer 2 (conv2d)");
    fails_cleanly(
        &microcnn(&["summary", &impossible]),
        "impossible.toml: layer 2 (conv2d): a 5×5 window does not fit the 4×4 input",
    );
    fails_cleanly(&microcnn(&["train", "--data", &s(&d.join("nowhere")), "--arch", &arch(), "--out", &o]), "nowhere");
    let ten_units_short = write(
        "classes.toml",
        "input = [16, 16, 1]\n[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"dense\"\nunits = 4\nactivation = \"softmax\"\n",
    );
    fails_cleanly(&microcnn(&["train", "--data", "digits", "--arch", &ten_units_short, "--out", &o]), "10 classes");
    fails_cleanly(
        &microcnn(&["train", "--data", "digits", "--arch", &arch(), "--out", &o, "--epochs", "0"]),
        "--epochs 0",
    );
    fails_cleanly(
        &microcnn(&["train", "--data", "digits", "--arch", &arch(), "--out", &o, "--batch", "0"]),
        "--batch 0",
    );
    for lr in ["nan", "inf", "-1", "0"] {
        fails_cleanly(
            &microcnn(&["train", "--data", "digits", "--arch", &arch(), "--out", &o, &format!("--lr={lr}")]),
            "the learning rate must be a positive, finite number",
        );
    }
    // A learning rate that diverges: stopped with the epoch and batch, nothing left.
    let diverged =
        microcnn(&["train", "--data", "digits", "--arch", &arch(), "--out", &o, "--lr", "1e30", "--epochs", "2"]);
    assert!(!diverged.status.success());
    let err = String::from_utf8_lossy(&diverged.stderr);
    let last = err.trim_end().lines().last().unwrap_or("");
    assert!(last.starts_with("error: training diverged at epoch 1, batch "), "{err}");
    assert!(last.contains("is no longer finite (learning rate 1e30)"), "{err}");
    assert!(!out.exists(), "a run diverged before its first epoch leaves no folder");
    fails_cleanly(&microcnn(&["eval", &s(d), "--data", "digits:test"]), "not a checkpoint directory");
    assert!(!out.exists(), "a failed train must not create its output directory");

    // IDX data at 8×8 for a 16×16 model.
    let idx = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits/t10k-images-idx3-ubyte");
    fails_cleanly(&microcnn(&["train", "--data", &s(&idx), "--arch", &arch(), "--out", &o]), "t10k-images-idx3-ubyte");
    assert!(!out.exists());

    // A checkpoint whose architecture file no longer matches its weights.
    let run = train(d, "1", &[]);
    let model = d.join("m.mcnn");
    fails_cleanly(
        &microcnn(&[
            "quantize",
            &s(&run),
            "--calib",
            "digits",
            "-o",
            &s(&model),
            "--qat-epochs",
            "1",
            "--qat-lr",
            "nan",
        ]),
        "--qat-lr NaN: the learning rate must be a positive, finite number",
    );
    assert!(!model.exists());
    let arch_file = run.join("arch.toml");
    let text = std::fs::read_to_string(&arch_file).unwrap().replacen("filters = 16", "filters = 12", 1);
    std::fs::write(&arch_file, text).unwrap();
    fails_cleanly(&microcnn(&["quantize", &s(&run), "--calib", "digits", "-o", &s(&model)]), "does not match");
    fails_cleanly(&microcnn(&["eval", &s(&run), "--data", "digits:test"]), "does not match");
    assert!(!model.exists());
}

#[test]
fn eval_maps_an_unlabelled_imported_model_onto_the_data_classes() {
    let dir = tempfile::tempdir().unwrap();
    let blob = import_small_cnn(dir.path()); // 28×28×1 → 10 outputs, no labels
    let report = json(&run_ok(&[
        "eval",
        &s(&blob),
        "--data",
        "digits:test",
        "--json",
        "--confusion",
        &s(&dir.path().join("c.png")),
    ]));
    assert_eq!(report["samples"], 359);
    assert_eq!(report["classes"][3], "3");
    fails_cleanly(&microcnn(&["eval", &s(&blob), "--data", "shapes:count=12,size=28,channels=1"]), "6 classes");
}

/// Two runs into one folder: while one holds the folder's lock, another `train` into
/// it fails at once, naming the folder, and writes nothing there.
#[test]
fn a_second_run_into_a_locked_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    std::fs::create_dir(&out).unwrap();
    let lock = microcnn_tools::train::checkpoint::lock(&out).unwrap();
    assert!(microcnn_tools::train::checkpoint::lock(&out).is_err(), "the lock is exclusive");
    let second = microcnn(&["train", "--data", "digits", "--arch", &arch(), "--out", &s(&out), "--epochs", "1"]);
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.trim_end().ends_with("wait for it to finish or choose another --out"), "{err}");
    assert!(!out.join("model.safetensors").exists() && !out.join("state.safetensors").exists());
    drop(lock);
    run_ok(&["train", "--data", "digits", "--arch", &arch(), "--out", &s(&out), "--epochs", "1"]);
    assert!(out.join("model.safetensors").exists());
}

/// `--resume` on a folder without a finished epoch (empty, or left by a run stopped
/// before its first epoch) says so; changed hyper-parameters are refused unless
/// `--force-resume`.
#[test]
fn resume_needs_a_finished_epoch_and_the_same_settings() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("arch.toml"), std::fs::read(arch()).unwrap()).unwrap(); // a run stopped mid-write
    fails_cleanly(
        &microcnn(&["train", "--data", "digits", "--out", &s(&empty), "--resume"]),
        "no finished epoch to resume; start again without --resume",
    );
    let run = train(dir.path(), "1", &["--lr", "0.002", "--batch", "16"]);
    let o = s(&run);
    let resume = |extra: &[&str]| {
        let mut args = vec!["train", "--data", "digits", "--out", &o, "--epochs", "2", "--quiet"];
        args.extend(["--resume"]);
        args.extend(extra);
        microcnn(&args)
    };
    fails_cleanly(&resume(&["--lr", "0.002"]), "batch 32 (the run's 16) differs from the run being resumed");
    fails_cleanly(&resume(&["--batch", "16"]), "lr 0.001 (the run's 0.002)");
    let sgd = resume(&["--lr", "0.002", "--batch", "16", "--optimizer", "sgd"]);
    fails_cleanly(&sgd, "optimizer sgd (the run's adam)");
    fails_cleanly(&resume(&["--lr", "0.002", "--batch", "16", "--seed", "3"]), "seed 3 (the run's 0)");
    fails_cleanly(&resume(&["--lr", "0.002", "--batch", "16", "--horizontal-flip"]), "augmentation");
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "nothing trained by a refused resume");
    assert!(resume(&["--lr", "0.002", "--batch", "16"]).status.success());
    let forced = microcnn(&[
        "train",
        "--data",
        "digits",
        "--out",
        &o,
        "--epochs",
        "3",
        "--quiet",
        "--resume",
        "--force-resume",
        "--optimizer",
        "sgd",
    ]);
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    assert_eq!(std::fs::read_to_string(run.join("metrics.csv")).unwrap().lines().count(), 4);
}

/// Ctrl-C (a real SIGINT) stops a run after the batch in progress, exits 130 and
/// prints the command that resumes it; that command works.
#[cfg(unix)]
#[test]
fn ctrl_c_prints_the_resume_command_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_microcnn"))
        .args(["train", "--data", "digits", "--arch", &arch(), "--out", &s(&out), "--epochs", "500", "--quiet"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !out.join("state.safetensors").exists() {
        assert!(started.elapsed().as_secs() < 300, "no epoch finished in 300 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let kill = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted; the last finished epoch is saved"), "{err}");
    let command = err.lines().last().unwrap().trim();
    assert!(command.starts_with("microcnn train --data digits") && command.ends_with(" --resume"), "{command}");
    let finished = microcnn_tools::train::checkpoint::load_state(&out).unwrap().metrics.len();
    assert!((1..500).contains(&finished), "{finished} epochs");
    // The printed command resumes (here for one more epoch).
    let mut args: Vec<&str> = command.split(' ').skip(1).collect();
    let epochs = (finished + 1).to_string();
    let at = args.iter().position(|a| *a == "500").unwrap();
    args[at] = &epochs;
    run_ok(&args);
    assert_eq!(microcnn_tools::train::checkpoint::load_state(&out).unwrap().metrics.len(), finished + 1);
}

/// Writes `data`'s images as PNG class folders under `root`.
fn write_folders(root: &Path, data: &microcnn_tools::data::dataset::Dataset) {
    for i in 0..data.len() {
        let class = root.join(&data.classes[data.labels[i]]);
        std::fs::create_dir_all(&class).unwrap();
        let [h, w, _] = data.shape;
        let pixels: Vec<u8> = data.image(i).to_vec();
        image::GrayImage::from_raw(w as u32, h as u32, pixels)
            .unwrap()
            .save(class.join(format!("{i:04}.png")))
            .unwrap();
    }
}

/// A model trained on built-in `shapes` (classes in the order given) is evaluated on
/// class folders of the same images (sorted names: another order) by class name; an
/// unknown class is named; a class without samples has accuracy null; `eval` works in
/// a read-only folder with `--no-confusion`, and a confusion plot that cannot be
/// written is named.
#[test]
fn eval_maps_classes_by_name_and_reports_missing_classes_as_null() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let arch_file = d.join("tiny.toml");
    std::fs::write(
        &arch_file,
        "input = [16, 16, 1]\n[[layer]]\ntype = \"conv2d\"\nfilters = 4\nkernel = 3\nactivation = \"relu\"\n\
         [[layer]]\ntype = \"maxpool2d\"\npool = 2\n[[layer]]\ntype = \"flatten\"\n\
         [[layer]]\ntype = \"dense\"\nunits = 3\nactivation = \"softmax\"\n",
    )
    .unwrap();
    let spec = "shapes:classes=triangle+circle+square,count=240";
    let run = d.join("run");
    run_ok(&["train", "--data", spec, "--arch", &s(&arch_file), "--out", &s(&run), "--epochs", "2", "--quiet"]);
    let test = "shapes:classes=triangle+circle+square,count=60,split=test";
    let data = microcnn_tools::data::dataset::load(test, Some([16, 16, 1])).unwrap();
    let folders = d.join("folders");
    write_folders(&folders, &data);

    let builtin = json(&run_ok(&["eval", &s(&run), "--data", test, "--json", "--no-confusion"]));
    let folder = json(&run_ok(&["eval", &s(&run), "--data", &s(&folders), "--json", "--no-confusion"]));
    assert_eq!(builtin["classes"], serde_json::json!(["triangle", "circle", "square"]));
    assert_eq!(folder["classes"], builtin["classes"]);
    assert_eq!(folder["confusion"], builtin["confusion"], "the same images, mapped by name");

    // A class the model does not know.
    write_folders(&d.join("more"), &data);
    std::fs::rename(d.join("more/square"), d.join("more/blob")).unwrap();
    fails_cleanly(
        &microcnn(&["eval", &s(&run), "--data", &s(&d.join("more"))]),
        "[\"blob\"] are not among the model's",
    );

    // Only two of the three classes: the third's accuracy is null, not 0.
    std::fs::remove_dir_all(folders.join("circle")).unwrap();
    let two = json(&run_ok(&["eval", &s(&run), "--data", &s(&folders), "--json", "--no-confusion"]));
    assert!(two["per_class_accuracy"][1].is_null(), "{two}");
    assert!(two["per_class_accuracy"][0].is_f64() && two["per_class_accuracy"][2].is_f64(), "{two}");
    let text = run_ok(&["eval", &s(&run), "--data", &s(&folders), "--no-confusion"]);
    assert!(text.contains("circle           n/a (no samples)") && !text.contains("confusion matrix"), "{text}");

    // A read-only checkpoint folder: the default plot cannot be written, and is named.
    let writable = std::fs::metadata(&run).unwrap().permissions();
    let mut perms = writable.clone();
    perms.set_readonly(true);
    std::fs::set_permissions(&run, perms).unwrap();
    let readonly_blocks = std::fs::write(run.join("probe"), b"").is_err(); // root ignores modes
    if readonly_blocks {
        fails_cleanly(
            &microcnn(&["eval", &s(&run), "--data", test]),
            "confusion.png: cannot write the confusion matrix",
        );
    }
    run_ok(&["eval", &s(&run), "--data", test, "--no-confusion"]);
    std::fs::set_permissions(&run, writable).unwrap();
    assert!(!run.join("confusion.png").exists());
    let blocked = d.join("plot-dir");
    std::fs::create_dir(&blocked).unwrap(); // a folder where the plot should go
    fails_cleanly(
        &microcnn(&["eval", &s(&run), "--data", test, "--confusion", &s(&blocked)]),
        "plot-dir: cannot write the confusion matrix",
    );

    // Fewer than two classes cannot be trained on.
    let one = d.join("one");
    std::fs::create_dir_all(one.join("only")).unwrap();
    std::fs::rename(folders.join("square"), one.join("only/square")).unwrap();
    fails_cleanly(
        &microcnn(&["train", "--data", &s(&one), "--arch", &s(&arch_file), "--out", &s(&d.join("r1"))]),
        "a classifier needs at least two",
    );
}
