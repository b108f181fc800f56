//! Transfer learning end to end: the zoo, frozen bases staying bit-identical, fine-tuning
//! touching only the top layers, every preset through the integer engine, transfer
//! beating training from scratch on a small new task, and bad input.

use microcnn_tools::train::metrics::{read_metrics_csv, EpochMetrics};
use microcnn_tools::train::transfer::Mode;
use microcnn_tools::train::{checkpoint, fit, schedule, transfer, zoo};
use std::path::Path;

mod common;
use common::*;

const NEW_TASK: &str = "shapes:classes=pentagon+hexagon+arrow+tee+ell+crescent";

/// The 96×96 zoo bases, their inputs and families: one per family (VGG, ResNet,
/// Inception-ResNet, Xception, MobileNet), grey and colour for ResNet and MobileNet.
const CAMERA_BASES: [(&str, [usize; 3], &str); 7] = [
    ("mobilenet-atoms-96", [96, 96, 3], "mobilenet"),
    ("mobilenet-atoms-96-grey", [96, 96, 1], "mobilenet"),
    ("resnet-atoms-96", [96, 96, 3], "resnet"),
    ("resnet-atoms-96-grey", [96, 96, 1], "resnet"),
    ("vgg-bn-atoms-96-grey", [96, 96, 1], "vgg-bn"),
    ("inception-resnet-atoms-96-grey", [96, 96, 1], "inception-resnet"),
    ("xception-atoms-96-grey", [96, 96, 1], "xception"),
];

/// The general-purpose 32×32 bases, one per family, each pretrained on all 336
/// formula-driven `atoms` classes (README, "General-purpose bases"), and their preset or
/// architecture file's name.
const ATOMS_BASES: [(&str, &str); 4] = [
    ("resnet-wide-atoms-336", "resnet-wide"),
    ("xception-atoms-336", "xception"),
    ("inception-resnet-atoms-336", "inception-resnet"),
    ("vgg-bn-atoms-336", "vgg-bn"),
];

fn accuracy(model: &Path, data: &str) -> f64 {
    let c = model.with_extension("confusion.png");
    let out = run_ok(&["eval", &s(model), "--data", data, "--json", "--confusion", &s(&c)]);
    serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()["accuracy"].as_f64().unwrap()
}

fn bits(net: &microcnn_tools::train::nn::Network, name: &str) -> Vec<Vec<u32>> {
    let node = net.nodes.iter().find(|n| n.name == name).unwrap_or_else(|| panic!("no node {name}"));
    node.params.iter().map(|p| p.data.iter().map(|v| v.to_bits()).collect()).collect()
}

#[test]
fn zoo_lists_the_shipped_bases() {
    let list: serde_json::Value = serde_json::from_str(run_ok(&["zoo", "--json"]).trim()).unwrap();
    let list = list.as_array().unwrap();
    assert!(list.len() >= 4);
    for arch in ["vgg", "resnet", "xception", "inception"] {
        assert!(list.iter().any(|b| b["arch"] == arch), "no {arch} base");
    }
    for b in list {
        assert!(b["name"].is_string() && b["trained_on"].is_string());
        // The recorded input is the shipped network's.
        let (net, _) = zoo::load(b["name"].as_str().unwrap()).unwrap();
        assert_eq!(b["input"], serde_json::json!(net.input_shape()), "{}", b["name"]);
    }
    // The camera-size bases: 96×96, colour and grey, on all 336 formula-driven classes.
    for (name, input, arch) in CAMERA_BASES {
        let b = list.iter().find(|b| b["name"] == *name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(b["input"], serde_json::json!(input), "{name}");
        assert_eq!(b["arch"], arch, "{name}");
        assert_eq!(zoo::load(name).unwrap().0.output_size(), 336, "{name}");
    }
    for (name, arch) in ATOMS_BASES {
        let b = list.iter().find(|b| b["name"] == name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(b["arch"], arch, "{name}");
        assert_eq!(b["trained_on"], "atoms:count=40000,classes=336", "{name}");
        assert_eq!(b["input"], serde_json::json!([32, 32, 3]), "{name}");
        assert_eq!(zoo::load(name).unwrap().0.output_size(), 336, "{name}");
    }
    // The default --base is a shipped base, pretrained on all 336 formula-driven classes.
    let default = list.iter().find(|b| b["name"] == microcnn_tools::train::schedule::BASE).expect("default base");
    assert_eq!(default["trained_on"], "atoms:count=40000,classes=336");
    let (net, _) = zoo::load(microcnn_tools::train::schedule::BASE).unwrap();
    assert_eq!(net.output_size(), 336);
}

/// Feature extraction leaves every base weight and batch-norm statistic bit-identical;
/// with `--adapt-bn` the moving statistics are re-estimated on the new images (and
/// change), the weights still bit-identical.
#[test]
fn feature_extraction_leaves_the_base_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("{NEW_TASK},count=60");
    let (base, _) = zoo::load("resnet-shapes").unwrap();
    let depth = transfer::base_depth(&base.arch);
    for adapt in [false, true] {
        let out = dir.path().join(format!("fe-{adapt}"));
        let mut args = vec![
            "finetune",
            "--base",
            "resnet-shapes",
            "--data",
            &data,
            "--out",
            out.to_str().unwrap(),
            "--mode",
            "feature-extraction",
            "--epochs",
            "2",
            "--quiet",
        ];
        if adapt {
            args.push("--adapt-bn");
        }
        run_ok(&args);
        let (tuned, _) = checkpoint::load(&out).unwrap();
        let (mut weights, mut stats) = (0, 0);
        for node in base.nodes.iter().filter(|n| (1..=depth).contains(&transfer::top_level(&n.name))) {
            let other = tuned.nodes.iter().find(|n| n.name == node.name).unwrap();
            for (p, q) in node.params.iter().zip(&other.params) {
                let same = p.data.iter().map(|v| v.to_bits()).eq(q.data.iter().map(|v| v.to_bits()));
                if matches!(p.name, "moving_mean" | "moving_variance") {
                    assert_eq!(same, !adapt, "{} {} (--adapt-bn {adapt})", node.name, p.name);
                    stats += 1;
                } else {
                    assert!(same, "{} {} changed", node.name, p.name);
                    weights += 1;
                }
            }
        }
        assert!(weights > 20 && stats >= 10, "compared only {weights} weights and {stats} statistics");
        // The head did train.
        let head = tuned.nodes.last().unwrap();
        assert_eq!(head.shape, [1, 1, 6]);
    }
}

#[test]
fn fine_tuning_changes_only_the_top_layers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ft");
    let data = format!("{NEW_TASK},count=60");
    run_ok(&[
        "finetune",
        "--base",
        "vgg-shapes",
        "--data",
        &data,
        "--out",
        &s(&out),
        "--mode",
        "fine-tuning",
        "--epochs",
        "1",
        "--fine-tune-epochs",
        "1",
        "--val-split",
        "0",
        "--unfreeze-top",
        "3",
        "--quiet",
    ]);
    let (base, _) = zoo::load("vgg-shapes").unwrap();
    let (tuned, _) = checkpoint::load(&out).unwrap();
    let depth = transfer::base_depth(&base.arch);
    for node in base.nodes.iter().filter(|n| !n.params.is_empty()) {
        let k = transfer::top_level(&node.name);
        if k == 0 || k > depth {
            continue;
        }
        let same = bits(&base, &node.name) == bits(&tuned, &node.name);
        assert_eq!(same, k <= depth - 3, "{} (layer {k} of {depth})", node.name);
    }
}

#[test]
fn every_preset_trains_quantizes_and_agrees_with_infer() {
    let dir = tempfile::tempdir().unwrap();
    for &(preset, _) in microcnn_tools::train::presets::PRESETS {
        let run = dir.path().join(preset);
        run_ok(&[
            "train",
            "--data",
            "shapes:count=96",
            "--arch",
            preset,
            "--out",
            &s(&run),
            "--epochs",
            "1",
            "--quiet",
        ]);
        let model = dir.path().join(format!("{preset}.mcnn"));
        run_ok(&["quantize", &s(&run), "--calib", "shapes:count=48", "-o", &s(&model)]);
        let (i, o, again) = (dir.path().join("i.npy"), dir.path().join("o.npy"), dir.path().join("a.npy"));
        run_ok(&[
            "eval",
            &s(&model),
            "--data",
            "shapes:split=test,count=24",
            "--save-inputs",
            &s(&i),
            "--save-outputs",
            &s(&o),
            "--confusion",
            &s(&dir.path().join("c.png")),
        ]);
        run_ok(&["infer", &s(&model), "--input", &s(&i), "--output", &s(&again)]);
        assert_eq!(std::fs::read(&o).unwrap(), std::fs::read(&again).unwrap(), "{preset}");
    }
}

#[test]
fn transfer_beats_scratch_on_a_small_new_task() {
    let dir = tempfile::tempdir().unwrap();
    let test = format!("{NEW_TASK},split=test,count=600");
    let mut acc = std::collections::HashMap::new();
    for mode in ["feature-extraction", "fine-tuning", "scratch"] {
        let out = dir.path().join(mode);
        run_ok(&[
            "finetune",
            "--base",
            "vgg-shapes",
            "--data",
            NEW_TASK,
            "--per-class",
            "20",
            "--out",
            &s(&out),
            "--mode",
            mode,
            "--epochs",
            "40",
            "--fine-tune-epochs",
            "20",
            "--lr",
            "0.003",
            "--head",
            "gap,dense:32",
            "--quiet",
        ]);
        acc.insert(mode, accuracy(&out, &test));
    }
    let (fe, ft, scratch) = (acc["feature-extraction"], acc["fine-tuning"], acc["scratch"]);
    assert!(fe >= scratch + 0.1, "feature extraction {fe} vs scratch {scratch}");
    assert!(ft >= scratch + 0.1, "fine-tuning {ft} vs scratch {scratch}");
    assert!(ft >= fe, "fine-tuning {ft} vs feature extraction {fe}");
}

#[test]
fn bad_transfer_input_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let o = s(&out);
    fails_cleanly(
        &microcnn(&["finetune", "--base", "alexnet", "--data", NEW_TASK, "--out", &o, "--mode", "scratch"]),
        "vgg-shapes",
    );
    fails_cleanly(
        &microcnn(&[
            "finetune",
            "--base",
            "vgg-shapes",
            "--data",
            NEW_TASK,
            "--out",
            &o,
            "--mode",
            "fine-tuning",
            "--unfreeze-top",
            "40",
        ]),
        "--unfreeze-top 40",
    );
    for folds in [&["--folds", "0"][..], &["--folds", "5", "--val-split", "0.2"]] {
        let mut all = vec!["finetune", "--base", "vgg-shapes", "--data", NEW_TASK, "--out", &o, "--mode", "scratch"];
        all.extend(folds);
        fails_cleanly(&microcnn(&all), &format!("--folds {}", folds[1]));
    }
    for (layers, mode, said) in
        [("40", "feature-extraction", "--base-layers 40"), ("2", "fine-tuning", "--unfreeze-top 3")]
    {
        let args = ["--base-layers", layers, "--unfreeze-top", "3"];
        let mut all = vec!["finetune", "--base", "vgg-shapes", "--data", NEW_TASK, "--out", &o, "--mode", mode];
        all.extend(args);
        fails_cleanly(&microcnn(&all), said);
    }
    let idx = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits/train-images-idx3-ubyte");
    fails_cleanly(
        &microcnn(&[
            "finetune",
            "--base",
            "vgg-shapes",
            "--data",
            &s(&idx),
            "--out",
            &o,
            "--mode",
            "feature-extraction",
        ]),
        "32×32×3",
    );
    fails_cleanly(
        &microcnn(&[
            "finetune",
            "--base",
            "vgg-shapes",
            "--data",
            NEW_TASK,
            "--out",
            &o,
            "--mode",
            "scratch",
            "--head",
            "dense:8",
        ]),
        "--head",
    );
    assert!(!out.exists());
}

/// Each 96×96 base fine-tunes on data generated at its input (colour or grey), quantizes,
/// and runs on the integer engine with `eval` equal to `infer`, byte for byte.
#[test]
fn camera_bases_fine_tune_quantize_and_agree_with_infer() {
    let dir = tempfile::tempdir().unwrap();
    for (name, [h, w, c], _) in CAMERA_BASES {
        let run = dir.path().join(name);
        let out = run_ok(&[
            "finetune",
            "--base",
            name,
            "--data",
            "shapes:count=24",
            "--out",
            &s(&run),
            "--mode",
            "fine-tuning",
            "--epochs",
            "1",
            "--fine-tune-epochs",
            "1",
            "--quiet",
        ]);
        let (net, _) = checkpoint::load(&run).unwrap();
        assert_eq!(net.input_shape(), [h, w, c], "{name}: {out}");
        assert_eq!(net.output_size(), 6, "{name}");
        let model = dir.path().join(format!("{name}.mcnn"));
        run_ok(&["quantize", &s(&run), "--calib", "shapes:count=16", "-o", &s(&model)]);
        let (i, o, again) = (dir.path().join("i.npy"), dir.path().join("o.npy"), dir.path().join("a.npy"));
        let report = run_ok(&[
            "eval",
            &s(&model),
            "--data",
            "shapes:split=test,count=8",
            "--json",
            "--save-inputs",
            &s(&i),
            "--save-outputs",
            &s(&o),
            "--confusion",
            &s(&dir.path().join("c.png")),
        ]);
        let report: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
        assert_eq!(report["samples"], 8, "{name}");
        // The saved inputs are the model's: 8 pictures of h×w×c int8 values.
        let inputs = std::fs::read(&i).unwrap();
        assert!(inputs.len() >= 8 * h * w * c, "{name}: {} bytes of inputs", inputs.len());
        run_ok(&["infer", &s(&model), "--input", &s(&i), "--output", &s(&again)]);
        assert_eq!(std::fs::read(&o).unwrap(), std::fs::read(&again).unwrap(), "{name}");
    }
}

/// Every command that takes a checkpoint directory takes a zoo base's name too:
/// `quantize vgg-shapes` and `eval vgg-shapes` work without unpacking the zoo.
#[test]
fn quantize_and_eval_take_a_zoo_name() {
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("base.mcnn");
    let out = microcnn(&["quantize", "vgg-shapes", "--calib", "shapes:count=60", "-o", &s(&blob)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(microcnn_core::Model::from_bytes(&std::fs::read(&blob).unwrap()).is_ok());
    let plot = dir.path().join("c.png");
    let out =
        microcnn(&["eval", "vgg-shapes", "--data", "shapes:count=24,split=test", "--json", "--confusion", &s(&plot)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["samples"], 24);
    fails_cleanly(&microcnn(&["quantize", "no-such-base", "--calib", "digits", "-o", &s(&blob)]), "unknown zoo base");
}

/// `(epoch, val_accuracy, val_loss)` rows of a metrics.csv.
/// `microcnn finetune --base vgg-shapes --data DATA --out OUT --quiet` and `args`.
fn finetune_vgg_shapes(data: &str, out: &Path, args: &[&str]) -> String {
    let out = s(out);
    let mut all = vec!["finetune", "--base", "vgg-shapes", "--data", data, "--out", &out, "--quiet"];
    all.extend_from_slice(args);
    run_ok(&all)
}

/// What a default `finetune` run on `vgg-shapes` says it kept (`head H on N base
/// layers,`), after [`kept_candidate`]'s checks, with the images each candidate was
/// validated on in all (`folds` runs each).
fn kept_head(out: &Path, folds: usize, validated: usize) -> String {
    let (head, layers, lr) = kept_candidate(out, folds, validated);
    format!("head {head} on {layers} base layers at lr {lr},")
}

/// One row of `heads.csv`: one candidate's run on one split.
#[derive(Debug)]
struct HeadRun {
    head: String,
    layers: usize,
    lr: f32,
    fold: usize,
    validated: usize,
    accuracy: f32,
    loss: f32,
    epoch: usize,
    kept: bool,
}

/// The head and base layers a default `finetune` run on `vgg-shapes` kept, after
/// checking `heads.csv`: each default head on the whole base and on the base without its
/// last width stage trained on each of `folds` splits, the one with the most validation
/// images right over them kept (ties: the first), and of its runs the one whose best
/// epoch is the median; its head and base layers in the checkpoint's architecture, the
/// other runs removed; each head trained at the rate for its width (no `--lr` given).
fn kept_candidate(out: &Path, folds: usize, validated: usize) -> (String, usize, f32) {
    let rows: Vec<HeadRun> = std::fs::read_to_string(out.join("heads.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.rsplitn(9, ',').collect();
            HeadRun {
                head: f[8].trim_matches('"').to_string(),
                layers: f[7].parse().unwrap(),
                lr: f[6].parse().unwrap(),
                fold: f[5].parse().unwrap(),
                validated: f[4].parse().unwrap(),
                accuracy: f[3].parse().unwrap(),
                loss: f[2].parse().unwrap(),
                epoch: f[1].parse().unwrap(),
                kept: f[0] == "true",
            }
        })
        .collect();
    let (base, _) = zoo::load("vgg-shapes").unwrap();
    let (depth, cut) = (transfer::base_depth(&base.arch), transfer::stage_cut(&base).unwrap());
    assert!(cut < depth);
    let expected: Vec<(&str, usize, usize)> = [depth, cut]
        .iter()
        .flat_map(|&l| microcnn_tools::train::schedule::HEADS.map(|h| (h, l)))
        .flat_map(|(h, l)| (1..=folds).map(move |f| (h, l, f)))
        .collect();
    assert_eq!(rows.iter().map(|r| (r.head.as_str(), r.layers, r.fold)).collect::<Vec<_>>(), expected);
    // `gap` feeds the dense layer the base's channels; `flatten` every value of its output.
    for r in &rows {
        let net = transfer::build(&base, r.layers, &r.head, 2, false, 0).unwrap();
        let inputs = transfer::head_inputs(&net, r.layers);
        assert_eq!(inputs <= 64, r.head.starts_with("gap"), "{inputs} inputs: {r:?}");
        assert_eq!(r.lr, schedule::head_learning_rate(Mode::FineTuning, inputs), "{r:?}");
    }
    let candidates: Vec<&[HeadRun]> = rows.chunks(folds).collect();
    // Every candidate validated on the same images in all; its score, the images right.
    let right = |c: &[HeadRun]| c.iter().map(|r| (r.accuracy * r.validated as f32).round() as usize).sum::<usize>();
    assert!(candidates.iter().all(|c| c.iter().map(|r| r.validated).sum::<usize>() == validated), "{rows:?}");
    let top = candidates.iter().map(|c| right(c)).max().unwrap();
    let kept = candidates.iter().position(|c| right(c) == top).unwrap();
    let mut epochs: Vec<usize> = candidates[kept].iter().map(|r| r.epoch).collect();
    epochs.sort();
    let kept_run = candidates[kept].iter().find(|r| r.kept).expect("a kept run of the kept candidate");
    assert_eq!(kept_run.epoch, epochs[(folds - 1) / 2], "{rows:?}");
    assert_eq!(rows.iter().filter(|r| r.kept).count(), 1, "{rows:?}");
    let arch = std::fs::read_to_string(out.join("arch.toml")).unwrap();
    assert_eq!(arch.contains("\"flatten\""), kept_run.head.starts_with("flatten"), "{arch}");
    // Top level: the base layers kept, then the head's pooling, dense and softmax layers.
    assert_eq!(arch.matches("[[layer]]").count(), kept_run.layers + 3, "{arch}");
    let left = std::fs::read_dir(out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap());
    assert!(left.filter(|name| name.starts_with("head-")).count() == 0, "runs left in {}", out.display());
    // The kept row's figures are its run's best epoch (the validation run's, when the
    // model was then trained again on every image).
    let run = ["validation-metrics.csv", "metrics.csv"].map(|f| out.join(f)).into_iter().find(|p| p.exists());
    let best = best_epoch(&metrics(&run.unwrap())).clone();
    assert_eq!(kept_run.epoch, best.epoch);
    assert_eq!((kept_run.accuracy, kept_run.loss), (best.val_accuracy, best.val_loss), "{rows:?}");
    (kept_run.head.clone(), kept_run.layers, kept_run.lr)
}

fn metrics(path: &Path) -> Vec<EpochMetrics> {
    read_metrics_csv(path).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The best epoch of a run as `finetune` chooses it.
fn best_epoch(rows: &[EpochMetrics]) -> &EpochMetrics {
    fit::best_epoch(rows).expect("a run with epochs")
}

#[test]
fn default_schedule_validates_then_trains_again_on_every_image() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ft");
    let data = format!("{NEW_TASK},count=30");
    // No --val-split: with 5 images a class, five stratified folds choose the head and
    // base layers (every image validated once) and the kept run's epoch; the model is
    // then trained again on all 30 for that many epochs.
    let said = finetune_vgg_shapes(&data, &out, &["--mode", "fine-tuning", "--epochs", "4", "--fine-tune-epochs", "3"]);
    let chosen = metrics(&out.join("validation-metrics.csv"));
    assert!((4..=7).contains(&chosen.len()), "{} validation epochs", chosen.len());
    let best = best_epoch(&chosen).epoch;
    // The head's phase, then fine-tuning's second phase at a tenth of the rate.
    let phase_one = chosen.iter().take_while(|r| r.phase == 1).count();
    assert!(phase_one < chosen.len() && chosen[phase_one..].iter().all(|r| r.phase == 2), "{chosen:?}");
    let lr = chosen[0].learning_rate;
    assert!(chosen.iter().all(|r| r.learning_rate == if r.phase == 1 { lr } else { lr / 10.0 }), "{chosen:?}");
    assert!(said.contains(&format!("on all 30 images for the {best} epochs")), "{said}");
    // No --head: each default head was trained on each fold, the best kept.
    assert!(said.contains(&kept_head(&out, 5, 30)), "{said}");
    let refit = metrics(&out.join("metrics.csv"));
    assert_eq!(refit.len(), best);
    // Trained on everything: no validation figures.
    assert!(refit.iter().all(|r| r.val_accuracy.is_nan()));
    // With an explicit split there is no second run. (60 images: here the two heads
    // validate differently, 0.25 against 0.17.)
    let data = format!("{NEW_TASK},count=60");
    let kept = dir.path().join("kept");
    let said =
        finetune_vgg_shapes(&data, &kept, &["--mode", "feature-extraction", "--epochs", "2", "--val-split", "0.2"]);
    assert!(said.contains("on 48 images, kept epoch"), "{said}");
    assert!(said.contains(&kept_head(&kept, 1, 12)), "{said}");
    assert!(!kept.join("validation-metrics.csv").exists());
    // A head the user gives is the only one trained.
    let given = dir.path().join("given");
    let said = finetune_vgg_shapes(
        &data,
        &given,
        &["--mode", "feature-extraction", "--epochs", "2", "--head", "flatten,dense:8"],
    );
    assert!(said.contains("head flatten,dense:8 on "), "{said}");
    assert!(!given.join("heads.csv").exists());
}
