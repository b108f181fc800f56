//! Criterion benchmarks of `Interpreter::invoke` (core's kernels, as on the chip), of
//! the host kernel path (`inspect::fast`, what `microcnn infer` and `eval` run) and of
//! `Model::from_bytes`.
//!
//! One "image" = copy one sample into the input tensor, `invoke`, copy the output
//! tensor out (the way TensorFlow Lite Micro's own images/s figure is measured).
//! Throughput is one element per iteration, so criterion's elem/s = images/s.
//!
//! Run with `cargo bench -p microcnn-tools --bench invoke`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use microcnn_core::{Interpreter, Model};
use microcnn_tools::inspect::fast::Plan;
use std::hint::black_box;
use std::path::Path;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/vectors");

/// The benchmarked models (test-vector case directory names).
const CASES: &[&str] = &["small_cnn_28x28", "residual_add"];

/// A case's converted blob and its input samples, split one per image.
struct Case {
    name: &'static str,
    blob: Vec<u8>,
    samples: Vec<Vec<i8>>,
}

fn load_case(name: &'static str) -> Case {
    let dir = Path::new(VECTORS).join(name);
    let model_path = dir.join("model.tflite");
    let blob = microcnn_tools::tflite::to_blob(&model_path)
        .unwrap_or_else(|e| panic!("{}: tflite::to_blob failed: {e:#}", model_path.display()));
    let input_path = dir.join("input.npy");
    let input = microcnn_tools::io::npy::read_i8(&input_path)
        .unwrap_or_else(|e| panic!("{}: read_i8 failed: {e:#}", input_path.display()));
    let count = *input.shape.first().expect("input.npy has no leading sample axis");
    assert!(count > 0, "{}: no samples", input_path.display());
    assert_eq!(input.data.len() % count, 0, "{}: ragged samples", input_path.display());
    let per_sample = input.data.len() / count;
    let samples: Vec<Vec<i8>> = input.data.chunks_exact(per_sample).map(<[i8]>::to_vec).collect();
    Case { name, blob, samples }
}

/// Sanity check before timing: every sample's output must equal the case's
/// `expected_tflm.npy` (so the timed path is the real, bit-exact one).
fn check_against_tflm(name: &str, net: &mut Interpreter<'_, '_>, samples: &[Vec<i8>]) {
    let path = Path::new(VECTORS).join(name).join("expected_tflm.npy");
    let expected =
        microcnn_tools::io::npy::read_i8(&path).unwrap_or_else(|e| panic!("{}: read_i8 failed: {e:#}", path.display()));
    let per_sample = expected.data.len() / samples.len();
    for (i, (sample, want)) in samples.iter().zip(expected.data.chunks_exact(per_sample)).enumerate() {
        net.input_mut().copy_from_slice(sample);
        net.invoke().unwrap_or_else(|e| panic!("{name}: invoke failed on sample {i}: {e:?}"));
        assert_eq!(net.output(), want, "{name}: sample {i} output differs from expected_tflm.npy");
    }
}

fn bench_invoke(c: &mut Criterion) {
    let mut group = c.benchmark_group("invoke");
    group.throughput(Throughput::Elements(1));
    for &name in CASES {
        let case = load_case(name);
        let model = Model::from_bytes(&case.blob).unwrap_or_else(|e| panic!("{name}: Model::from_bytes failed: {e:?}"));
        let mut arena = vec![0u8; model.arena_size()];
        let mut net =
            Interpreter::new(&model, &mut arena).unwrap_or_else(|e| panic!("{name}: Interpreter::new failed: {e:?}"));
        assert_eq!(
            net.input_mut().len(),
            case.samples[0].len(),
            "{name}: input tensor size does not match an input.npy sample"
        );
        let mut out = vec![0i8; net.output().len()];
        check_against_tflm(name, &mut net, &case.samples);
        let mut next = 0usize;
        group.bench_function(BenchmarkId::from_parameter(case.name), |b| {
            b.iter(|| {
                let sample = &case.samples[next];
                next = (next + 1) % case.samples.len();
                net.input_mut().copy_from_slice(black_box(sample));
                net.invoke().expect("invoke failed");
                out.copy_from_slice(net.output());
                black_box(&out);
            })
        });
    }
    group.finish();
}

/// One image through the host kernels: the same bytes as `invoke` (checked first).
fn bench_host(c: &mut Criterion) {
    let mut group = c.benchmark_group("host");
    group.throughput(Throughput::Elements(1));
    for &name in CASES {
        let case = load_case(name);
        let model = Model::from_bytes(&case.blob).unwrap_or_else(|e| panic!("{name}: Model::from_bytes failed: {e:?}"));
        let plan = Plan::new(&model).unwrap_or_else(|e| panic!("{name}: Plan::new failed: {e:#}"));
        let mut runner = plan.runner();
        let mut arena = vec![0u8; model.arena_size()];
        let mut net = Interpreter::new(&model, &mut arena).expect("Interpreter::new");
        for (i, sample) in case.samples.iter().enumerate() {
            net.input_mut().copy_from_slice(sample);
            net.invoke().expect("invoke failed");
            assert_eq!(runner.run(sample).expect("run failed"), net.output(), "{name}: sample {i} differs from core");
        }
        let mut out = vec![0i8; model.output().bytes()];
        let mut next = 0usize;
        group.bench_function(BenchmarkId::from_parameter(case.name), |b| {
            b.iter(|| {
                let sample = &case.samples[next];
                next = (next + 1) % case.samples.len();
                out.copy_from_slice(runner.run(black_box(sample)).expect("run failed"));
                black_box(&out);
            })
        });
    }
    group.finish();
}

fn bench_from_bytes(c: &mut Criterion) {
    let case = load_case("small_cnn_28x28");
    let mut group = c.benchmark_group("from_bytes");
    group.throughput(Throughput::Bytes(case.blob.len() as u64));
    group.bench_function(BenchmarkId::from_parameter(case.name), |b| {
        b.iter(|| {
            let model = Model::from_bytes(black_box(&case.blob)).expect("from_bytes failed");
            black_box(model.arena_size())
        })
    });
    group.finish();
}

criterion_group!(benches, bench_invoke, bench_host, bench_from_bytes);
criterion_main!(benches);
