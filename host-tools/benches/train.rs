//! Seconds per training epoch, f32, Adam, batch 32 (README training speed table).
//!
//! - `digits_16x16` (criterion): the digits recipe (16×16×1, conv 8 → pool → conv 16 →
//!   pool → dense 10) on the built-in digits training split, the way `microcnn train`
//!   runs it (90% of the 1,438 images after the validation split).
//! - `cnn32` and `mobilenet96` (plain timing, every epoch printed, then the median of
//!   epochs 2..): 4,000 images of 32×32×3 through conv 16/32/32 with 2×2 max pools, dense
//!   32, 4 classes; and 4,000 images of 96×96×3 through the `mobilenet` preset. Their
//!   data is the formula `benches/keras_recipes.py` computes too (pixel `i` =
//!   `hash(i) / 2²⁴`, label `s % 4`), and the Keras nets there are the same, so the two
//!   scripts measure the same work. Each epoch is shuffled batches through
//!   [`step`] (forward, cross-entropy, backward, Adam), data in memory as in Keras.
//!
//! `cargo bench -p microcnn-tools --bench train -- cnn32 [EPOCHS]` runs one of them
//! (a name filter: `digits`, `cnn32`, `mobilenet96`); no filter runs all three.
//! `-- digits-epochs [EPOCHS]` times the digits epochs the plain way instead (the
//! median wall and the mean CPU seconds over epochs 2..; default 30): CPU time is the
//! figure to compare on a machine shared with other work.

use criterion::Criterion;
use microcnn_tools::data::augment::AugmentConfig;
use microcnn_tools::data::dataset;
use microcnn_tools::train::arch::Arch;
use microcnn_tools::train::fit::{train_epoch, Config};
use microcnn_tools::train::nn::optim::{Kind, Optimizer};
use microcnn_tools::train::nn::Network;
use microcnn_tools::train::presets;
use microcnn_tools::train::step::step;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

// As in the `microcnn` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn digits(c: &mut Criterion) {
    let (arch, train, cfg) = digits_recipe();
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

/// The digits recipe's epochs timed one by one (wall and CPU), then the median wall
/// time and the mean CPU time.
fn digits_epochs(epochs: usize) {
    let (arch, train, cfg) = digits_recipe();
    let mut net = Network::new(&arch, 0).expect("net");
    let mut opt = Optimizer::new(Kind::Adam, 0.0, &net);
    let (mut times, mut cpu) = (Vec::new(), Vec::new());
    for e in 1..=epochs {
        let (t, c) = (Instant::now(), cpu_seconds());
        train_epoch(&mut net, &mut opt, &train, &cfg, e, None).expect("a finite epoch");
        times.push(t.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c);
    }
    let skip = 1.min(times.len() - 1);
    // CPU time comes in ticks of 10 ms: its mean over the epochs, not its median.
    let cpu_mean = cpu[skip..].iter().sum::<f64>() / (cpu.len() - skip) as f64;
    println!(
        "microcnn digits: median s/epoch (epochs 2..{epochs}) {:.4}, mean cpu s/epoch {cpu_mean:.4}",
        median(times[skip..].to_vec()),
    );
}

/// The digits architecture, its training split and the training configuration.
fn digits_recipe() -> (Arch, dataset::Dataset, Config) {
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
        phase: 1,
    };
    (arch, train, cfg)
}

const IMAGES: usize = 4000;
const CLASSES: usize = 4;
const BATCH: usize = 32;

const CNN32: &str = r#"
name = "cnn32"
input = [32, 32, 3]
[[layer]]
type = "conv2d"
filters = 16
kernel = 3
padding = "same"
activation = "relu"
[[layer]]
type = "maxpool2d"
pool = 2
[[layer]]
type = "conv2d"
filters = 32
kernel = 3
padding = "same"
activation = "relu"
[[layer]]
type = "maxpool2d"
pool = 2
[[layer]]
type = "conv2d"
filters = 32
kernel = 3
padding = "same"
activation = "relu"
[[layer]]
type = "maxpool2d"
pool = 2
[[layer]]
type = "flatten"
[[layer]]
type = "dense"
units = 32
activation = "relu"
[[layer]]
type = "dense"
units = 4
activation = "softmax"
"#;

/// The images and labels of `keras_recipes.py`: pixel `i` is the top 24 bits of the
/// low 32 bits of `i · 2654435761`, over 2²⁴ (exact in f32).
fn formula_data(shape: [usize; 3]) -> (Vec<f32>, Vec<usize>) {
    let size = IMAGES * shape.iter().product::<usize>();
    let x = (0..size as u64).map(|i| ((i.wrapping_mul(2654435761) & 0xFFFF_FFFF) >> 8) as f32 / (1 << 24) as f32);
    (x.collect(), (0..IMAGES).map(|s| s % CLASSES).collect())
}

/// CPU seconds this process has used, all threads, user and system (`/proc/self/stat`,
/// 100 ticks a second as on Linux); 0 where that file does not exist.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesized command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0.0)).collect();
    f.get(11).zip(f.get(12)).map_or(0.0, |(u, s)| (u + s) / 100.0)
}

/// The middle value, or the mean of the two middle ones (as Python's `statistics.median`).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let h = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[h - 1] + v[h]) / 2.0
    } else {
        v[h]
    }
}

/// Trains `arch` on the formula data for `epochs`, printing each epoch's wall and CPU
/// seconds and their medians over epochs 2.. (as the Keras script does).
fn timed(name: &str, arch: &Arch, epochs: usize) {
    let (x, y) = formula_data(arch.input);
    let size: usize = arch.input.iter().product();
    let mut net = Network::new(arch, 0).expect("net");
    let mut opt = Optimizer::new(Kind::Adam, 0.0, &net);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut order: Vec<usize> = (0..IMAGES).collect();
    let (mut bx, mut by) = (Vec::with_capacity(BATCH * size), Vec::with_capacity(BATCH));
    let (mut times, mut cpu) = (Vec::new(), Vec::new());
    for e in 1..=epochs {
        let (t, c) = (Instant::now(), cpu_seconds());
        order.shuffle(&mut rng);
        let (mut loss, mut correct) = (0.0, 0);
        for chunk in order.chunks(BATCH) {
            bx.clear();
            by.clear();
            for &i in chunk {
                bx.extend_from_slice(&x[i * size..(i + 1) * size]);
                by.push(y[i]);
            }
            let (l, ok) = step(&mut net, &mut opt, &bx, &by, 1e-3, None, &mut rng);
            loss += l * chunk.len() as f32;
            correct += ok;
        }
        let s = t.elapsed().as_secs_f64();
        times.push(s);
        cpu.push(cpu_seconds() - c);
        println!(
            "{name} epoch {e} {s:.3}s cpu {:.3}s loss {:.4} accuracy {:.4}",
            cpu[e - 1],
            loss / IMAGES as f32,
            correct as f32 / IMAGES as f32
        );
    }
    let skip = 1.min(times.len() - 1);
    println!(
        "microcnn {name}: params {}, median s/epoch (epochs 2..{epochs}) {:.3}, cpu s/epoch {:.3}",
        net.param_count(),
        median(times[skip..].to_vec()),
        median(cpu[skip..].to_vec())
    );
}

fn main() {
    // `cargo bench` passes `--bench`; the first other argument filters, the second
    // sets the epochs of the timed recipes.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let filter = args.first().cloned().unwrap_or_default();
    let epochs = args.get(1).and_then(|e| e.parse().ok()).unwrap_or(5);
    if filter == "digits-epochs" {
        digits_epochs(args.get(1).and_then(|e| e.parse().ok()).unwrap_or(30));
        return;
    }
    let wants = |name: &str| filter.is_empty() || name.contains(&filter);
    if wants("digits_16x16") {
        let mut c = Criterion::default().configure_from_args();
        digits(&mut c);
        c.final_summary();
    }
    if wants("cnn32") {
        timed("cnn32", &Arch::parse(CNN32).expect("arch"), epochs);
    }
    if wants("mobilenet96") {
        let mut arch = presets::with_classes(presets::preset("mobilenet").expect("preset"), CLASSES);
        arch.input = [96, 96, 3];
        timed("mobilenet96", &arch, epochs);
    }
}
