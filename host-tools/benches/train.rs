//! Seconds per training epoch for the digits recipe (16×16×1, conv 8 → pool → conv 16
//! → pool → dense 10, Adam, batch 32), on the built-in digits training split, the way
//! `microcnn train` runs it (90% of the 1,438 images after the validation split).

use criterion::{criterion_group, criterion_main, Criterion};
use microcnn_tools::data::augment::AugmentConfig;
use microcnn_tools::data::dataset;
use microcnn_tools::train::arch::Arch;
use microcnn_tools::train::fit::{train_epoch, Config};
use microcnn_tools::train::nn::optim::{Kind, Optimizer};
use microcnn_tools::train::nn::Network;
use std::time::Duration;

// As in the `microcnn` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn epoch(c: &mut Criterion) {
    let arch = Arch::parse(include_str!("../archs/digits.toml")).expect("arch");
    let data = dataset::load("digits", Some(arch.input)).expect("digits");
    let (train, _) = data.split_validation(0.1, 0);
    let cfg = Config {
        epochs: 1,
        batch: 32,
        lr: 1e-3,
        seed: 0,
        patience: None,
        augment: AugmentConfig::default(),
        progress: false,
        fake_quant: None,
    };
    let mut net = Network::new(&arch, 0).expect("net");
    let mut opt = Optimizer::new(Kind::Adam, 0.0, &net);
    let mut e = 0;
    let mut group = c.benchmark_group("train_epoch");
    group.sample_size(20).measurement_time(Duration::from_secs(10));
    group.bench_function("digits_16x16", |b| {
        b.iter(|| {
            e += 1;
            train_epoch(&mut net, &mut opt, &train, &cfg, e, None).expect("a finite epoch")
        })
    });
    group.finish();
}

criterion_group!(benches, epoch);
criterion_main!(benches);
