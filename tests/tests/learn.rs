//! On-device learning end to end: a zoo base quantized, a few-shot task of six new
//! shapes learned by core's learner on the host and inside the QEMU firmware (a
//! scripted session), the heads compared byte for byte, and accuracy measured on the
//! held-out test images.

use microcnn_core::learn::{FeatureCut, Head, LearnError, Learner, Method, SgdConfig};
use microcnn_core::{Interpreter, Model};
use microcnn_layout::session;
use microcnn_tools::compile::{blob, plan};
use microcnn_tools::data::dataset;
use microcnn_tools::deploy::qemu;
use microcnn_tools::inspect::eval;
use microcnn_tools::quantize::ptq as quantize;
use microcnn_tools::train::{checkpoint, fit as train};
use std::path::Path;
use std::time::Duration;

const NEW: &str = "shapes:classes=pentagon+hexagon+arrow+tee+ell+crescent";
/// The firmware's capacities (`microcnn_app::learn`).
type HostLearner = Learner<10, 64, 200>;

/// The `vgg-shapes` zoo base, quantized on 300 images of its own data.
fn base() -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host-tools/zoo/vgg-shapes");
    let (net, info) = checkpoint::load(&dir).unwrap();
    let calib = dataset::load("shapes:count=300", Some(net.input_shape())).unwrap();
    let graph = quantize::quantize(&net, &calib, "vgg-shapes", &info.classes).unwrap();
    blob::write(&graph, &plan::plan(&graph)).unwrap()
}

/// (int8 inputs, labels) of a dataset spec for `model`, `per_class` images of each
/// class drawn as `finetune --per-class N --seed 0` draws them.
fn samples(model: &Model<'_>, spec: &str, per_class: Option<usize>) -> (Vec<i8>, Vec<usize>) {
    let s = model.input().shape;
    let mut data = dataset::load(spec, Some([s.height, s.width, s.channels])).unwrap();
    if let Some(n) = per_class {
        data = train::per_class(&data, n, 0);
    }
    (eval::quantize_inputs(model, &data).unwrap(), data.labels)
}

fn learn_on_host(model: &Model<'_>, inputs: &[i8], labels: &[usize], method: Method, config: &SgdConfig) -> Vec<u8> {
    let mut arena = vec![0u8; model.arena_size()];
    let mut net = Interpreter::new(model, &mut arena).unwrap();
    let cut = FeatureCut::find(model).unwrap();
    let mut learner = Box::new(HostLearner::new(method, &cut, model.checksum()).unwrap());
    for (input, &label) in inputs.chunks(model.input().bytes()).zip(labels) {
        net.input_mut().copy_from_slice(input);
        learner.learn(label, cut.extract(&mut net).unwrap()).unwrap();
    }
    learner.train(config).unwrap();
    let mut head = vec![0u8; learner.head_len()];
    learner.write_head(&mut head).unwrap();
    head
}

fn classify_on_host(model: &Model<'_>, head: &[u8], inputs: &[i8]) -> Vec<usize> {
    let mut arena = vec![0u8; model.arena_size()];
    let mut net = Interpreter::new(model, &mut arena).unwrap();
    let (head, cut) = Head::for_model(head, model).unwrap();
    let mut scratch = vec![fixed::types::I16F16::ZERO; head.features()];
    inputs
        .chunks(model.input().bytes())
        .map(|input| {
            net.input_mut().copy_from_slice(input);
            head.classify_features(cut.extract(&mut net).unwrap(), &mut scratch).0
        })
        .collect()
}

fn accuracy(predicted: &[usize], labels: &[usize]) -> f64 {
    predicted.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len() as f64
}

/// A session image for the frames region: header, labels, then the frames.
fn session_image(
    model: &Model<'_>,
    method: Method,
    config: &SgdConfig,
    learn: (&[i8], &[usize]),
    classify: &[i8],
) -> Vec<u8> {
    let per = model.input().bytes();
    let header = session::Header {
        method: method.code(),
        epochs: config.epochs,
        learning_rate_bits: config.learning_rate.to_bits(),
        learn_count: learn.1.len() as u16,
        classify_count: (classify.len() / per) as u16,
    };
    let mut image = header.to_bytes().to_vec();
    image.extend(learn.1.iter().map(|&l| l as u8));
    image.resize(header.frames_offset(), 0);
    let all: Vec<i8> = learn.0.iter().chain(classify).copied().collect();
    image.extend(qemu::frames_image(model, &all).unwrap());
    image
}

/// The `u8` list after `prefix` in a defmt line such as `head 123: [1, 2, 3]`.
fn bytes_of(line: &str) -> Vec<u8> {
    let list = line.split_once('[').and_then(|(_, rest)| rest.split_once(']')).map(|(l, _)| l).unwrap_or("");
    list.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().parse().unwrap()).collect()
}

fn number_after(line: &str, word: &str) -> u64 {
    let rest = line.split_once(word).unwrap().1.trim_start();
    rest.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

#[test]
fn the_chip_learns_the_same_bytes_as_the_host() {
    let blob = base();
    let model = Model::from_bytes(&blob).unwrap();
    let (train, train_labels) = samples(&model, NEW, Some(20));
    let (test, test_labels) = samples(&model, &format!("{NEW},split=test,count=600"), None);
    assert_eq!(train_labels.len(), 120);
    assert_eq!(test_labels.len(), 600);
    let per = model.input().bytes();
    let sgd = SgdConfig::default();
    for cpu in [qemu::Cpu::CortexM4, qemu::Cpu::CortexM0Plus] {
        let firmware = qemu::Firmware::load(&qemu::build_firmware(cpu).unwrap(), cpu).unwrap();
        for (method, config) in [(Method::Prototypes, SgdConfig::default()), (Method::Sgd, sgd)] {
            let host = learn_on_host(&model, &train, &train_labels, method, &config);
            let predicted = classify_on_host(&model, &host, &test);
            let acc = accuracy(&predicted, &test_labels);
            println!("{method:?}: host accuracy on 600 test images {acc:.4}");

            // Inside the emulated chip: the same frames, 40 test frames to classify.
            let classify = &test[..40 * per];
            let image = session_image(&model, method, &config, (&train, &train_labels), classify);
            let run = firmware.run(&blob, &image, Duration::from_secs(600)).unwrap();
            let text: Vec<&str> = run.lines.iter().map(|l| l.message.as_str()).collect();
            assert_eq!(run.status, 0, "{cpu:?} {method:?}: {text:#?}");
            let head_line = text.iter().find(|l| l.starts_with("head ")).expect("a head line");
            assert_eq!(bytes_of(head_line), host, "{cpu:?} {method:?}: the chip's head differs from the host's");
            let device: Vec<usize> =
                text.iter().filter(|l| l.starts_with("predict ")).map(|l| number_after(l, "class") as usize).collect();
            assert_eq!(device, predicted[..40], "{cpu:?} {method:?}: predictions differ");
            let learn_costs: Vec<u64> =
                text.iter().filter(|l| l.starts_with("learn ")).map(|l| number_after(l, ",")).collect();
            let invoke = text.iter().find(|l| l.starts_with("invoke:")).map(|l| number_after(l, ":")).unwrap();
            let train_cost =
                text.iter().find(|l| l.starts_with("train:")).map(|l| number_after(l, "samples,")).unwrap();
            let ram = text.iter().find(|l| l.starts_with("learner:")).map(|l| number_after(l, ":")).unwrap();
            println!(
                "{cpu:?} {method:?}: learned frame {}..{} instructions, one inference {invoke}, training {train_cost}, learner RAM {ram} B",
                learn_costs.iter().min().unwrap(),
                learn_costs.iter().max().unwrap()
            );
            assert_eq!(learn_costs.len(), 120);
            assert!(acc > 0.4, "{method:?}: {acc}");
        }
    }
}

#[test]
fn a_head_for_another_model_is_refused() {
    let blob = base();
    let model = Model::from_bytes(&blob).unwrap();
    let (train, labels) = samples(&model, NEW, Some(2));
    let head = learn_on_host(&model, &train, &labels, Method::Prototypes, &SgdConfig::default());
    // The same network with a different blob (another name): another checksum.
    let mut other = blob.clone();
    let mut graph_name = b"vgg-shapes".to_vec();
    graph_name[0] = b'w';
    let at = other.windows(10).position(|w| w == b"vgg-shapes").unwrap();
    other[at..at + 10].copy_from_slice(&graph_name);
    let crc = microcnn_core::crc::crc32(&other[16..]);
    other[12..16].copy_from_slice(&crc.to_le_bytes());
    let other = Model::from_bytes(&other).unwrap();
    let error = Head::for_model(&head, &other).unwrap_err();
    assert!(matches!(error, LearnError::WrongBaseModel { .. }), "{error}");
    assert!(error.to_string().contains("another base model"));
}

/// The SGD learning rate and epochs on the few-shot task (host only; how the default
/// was picked): `cargo test --release -p microcnn-tests --test learn -- --ignored --nocapture`.
#[test]
#[ignore]
fn sgd_learning_rate_sweep() {
    let blob = base();
    let model = Model::from_bytes(&blob).unwrap();
    let (train, train_labels) = samples(&model, NEW, Some(20));
    let (test, test_labels) = samples(&model, &format!("{NEW},split=test,count=600"), None);
    for lr in [0.25f32, 0.5, 1.0, 2.0, 4.0, 8.0] {
        for epochs in [10u16, 30, 60, 100] {
            let config = SgdConfig { epochs, learning_rate: fixed::types::I16F16::from_num(lr) };
            let host = learn_on_host(&model, &train, &train_labels, Method::Sgd, &config);
            let acc = accuracy(&classify_on_host(&model, &host, &test), &test_labels);
            println!("lr {lr} epochs {epochs}: {acc:.4}");
        }
    }
}

/// Bad input gets one-line errors: a base without a classifier, more classes than the
/// capacity, an empty class, a corrupt head.
#[test]
fn bad_input_is_refused_with_one_line() {
    use microcnn_tools::tflite::{import, reader};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/vectors/conv1x1/model.tflite");
    let tfl = reader::parse(&std::fs::read(&path).unwrap()).unwrap();
    let graph = import::import(&tfl, "conv1x1").unwrap();
    let no_classifier = blob::write(&graph, &plan::plan(&graph)).unwrap();
    let model = Model::from_bytes(&no_classifier).unwrap();
    let error = FeatureCut::find(&model).unwrap_err();
    assert_eq!(error, LearnError::NoClassifier);

    let blob = base();
    let model = Model::from_bytes(&blob).unwrap();
    let cut = FeatureCut::find(&model).unwrap();
    let mut learner = Box::new(HostLearner::new(Method::Sgd, &cut, model.checksum()).unwrap());
    let features = vec![0i8; cut.len];
    let too_many = learner.learn(10, &features).unwrap_err();
    learner.learn(1, &features).unwrap();
    let mut out = vec![0u8; 4096];
    let empty = learner.write_head(&mut out).unwrap_err();
    learner.learn(0, &features).unwrap();
    let len = learner.write_head(&mut out).unwrap();
    out[len / 2] ^= 0x40;
    let corrupt = Head::for_model(&out[..len], &model).unwrap_err();
    for (error, says) in [
        (error, "no classifier"),
        (too_many, "beyond the learner's capacity of 10 classes"),
        (empty, "class 0 has no samples"),
        (corrupt, "corrupt head"),
    ] {
        let text = error.to_string();
        assert!(text.contains(says) && !text.contains('\n'), "{text}");
    }
}
