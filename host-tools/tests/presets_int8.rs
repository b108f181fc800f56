//! Every preset, trained briefly on `shapes` and quantized (PTQ): the int8 engine's
//! top-1 agrees with the f32 network's on at least 90 % of held-out images.

use microcnn_tools::compile::{blob, plan};
use microcnn_tools::data::dataset;
use microcnn_tools::inspect::eval;
use microcnn_tools::quantize::ptq;
use microcnn_tools::train::checkpoint::State;
use microcnn_tools::train::fit;
use microcnn_tools::train::nn::optim::{Kind, Optimizer};
use microcnn_tools::train::nn::Network;
use microcnn_tools::train::presets;

#[test]
fn every_preset_int8_agrees_with_f32() {
    for &(name, _) in presets::PRESETS {
        let arch = presets::with_classes(presets::preset(name).expect(name), 6);
        let shape = arch.input;
        let train = dataset::load("shapes:count=1200,seed=1", Some(shape)).unwrap();
        let test = dataset::load("shapes:count=200,split=test", Some(shape)).unwrap();
        let net = Network::new(&arch, 0).unwrap();
        let optimizer = Optimizer::new(Kind::Adam, 0.0, &net);
        let state = State { net, optimizer, metrics: vec![], classes: train.classes.clone() };
        let cfg = fit::Config {
            epochs: 8,
            batch: 32,
            lr: 0.001,
            seed: 0,
            patience: None,
            augment: Default::default(),
            progress: false,
            fake_quant: None,
            phase: 1,
        };
        let dir = tempfile::tempdir().unwrap();
        let state = fit::run(dir.path(), state, &train, None, &cfg).unwrap();
        let float = fit::predictions(&state.net, &test);
        let calib = train.subset(&(0..train.len()).step_by(6).collect::<Vec<_>>());
        let graph = ptq::quantize(&state.net, &calib, name, &train.classes).unwrap();
        let bytes = blob::write(&graph, &plan::plan(&graph)).unwrap();
        let model = microcnn_core::Model::from_bytes(&bytes).unwrap();
        let (_, _, int8) = eval::run_model(&model, &test).unwrap();
        let agree = float.iter().zip(&int8).filter(|(a, b)| a == b).count();
        let accuracy = float.iter().zip(&test.labels).filter(|(a, b)| a == b).count();
        let distinct = (0..6).filter(|c| float.contains(c)).count();
        eprintln!(
            "{name}: int8 agrees with f32 on {agree}/{} (f32 accuracy {accuracy}, {distinct} classes predicted)",
            test.len()
        );
        // A net answering one class everywhere would agree trivially.
        assert!(distinct >= 2, "{name}: f32 predicts only {distinct} classes; train longer");
        assert!(agree * 10 >= test.len() * 9, "{name}: int8 agrees with f32 on only {agree}/{}", test.len());
    }
}
