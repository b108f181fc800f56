#!/usr/bin/env bash
# Every test and check, as CI runs them (.ci/run calls this). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

THUMB_TARGETS=(thumbv6m-none-eabi thumbv7em-none-eabihf thumbv8m.main-none-eabihf)
step() { printf '\n=== %s\n' "$*"; }

step "toolchain: thumb targets, clippy, rustfmt"
rustup target add "${THUMB_TARGETS[@]}"
rustup component add clippy rustfmt

step "format"
cargo fmt --all -- --check

step "clippy (host workspace, all targets)"
cargo clippy --workspace --all-targets --locked -- -D warnings

for target in "${THUMB_TARGETS[@]}"; do
  step "microcnn-core on $target (build + clippy)"
  cargo build -p microcnn-core --release --locked --target "$target"
  cargo clippy -p microcnn-core --locked --target "$target" -- -D warnings
done
cargo clippy -p microcnn-core --locked --target thumbv7em-none-eabihf --features defmt -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "firmware: qemu-system-arm, the images (QEMU Cortex-M4/M7 and Cortex-M0+, Nucleo-F411RE), clippy, camera driver tests"
if ! command -v qemu-system-arm >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq qemu-system-arm
fi
qemu-system-arm --version | head -1
# One package per cargo call: the board HAL turns on cortex-m-rt's `device` feature,
# which the QEMU image (no PAC) must not get through feature unification.
(cd firmware && cargo build --release --locked -p microcnn-fw-qemu \
  && cargo build --release --locked -p microcnn-fw-qemu --target thumbv6m-none-eabi \
  && cargo build --release --locked -p microcnn-fw-f411re \
  && cargo clippy --release --locked -p microcnn-fw-qemu --target thumbv6m-none-eabi -- -D warnings \
  && cargo clippy --release --locked --workspace -- -D warnings \
  && cargo clippy --locked --target x86_64-unknown-linux-gnu -p microcnn-camera -p microcnn-layout --all-targets -- -D warnings \
  && cargo fmt --all -- --check \
  && cargo test --locked --target x86_64-unknown-linux-gnu -p microcnn-camera -p microcnn-layout)

step "tests (unit, property, vectors, robustness, CLI, doctests, QEMU firmware)"
cargo test --workspace --locked

step "fuzz targets compile (a standalone cargo-fuzz project; campaigns are run by hand, see fuzz/README.md)"
# cargo check on stable (libfuzzer-sys needs no nightly flag to type-check); the shared
# target directory reuses the workspace's dependency builds.
cargo check --locked --manifest-path fuzz/Cargo.toml --bins --target-dir target

# The benchmarks are type-checked (and linted) by the clippy step above (`--all-targets`);
# building them in the release profile took 256 more crate builds for no more checks.

step "firmware: QEMU benchmark (per-layer instructions beside CMSIS-NN's, Cortex-M4 and Cortex-M0+) and sizes"
# target/debug/microcnn: built by `cargo test --workspace` above (a separate `cargo build`
# would rebuild dependencies with other features). The table is printed, never asserted.
bench_dir=$(mktemp -d)
target/debug/microcnn import tests/data/vectors/small_cnn_28x28/model.tflite -o "$bench_dir/small_cnn.mcnn"
for cpu in cortex-m4 cortex-m0plus; do
  target/debug/microcnn infer "$bench_dir/small_cnn.mcnn" --input tests/data/vectors/small_cnn_28x28/input.npy \
    --output "$bench_dir/out.npy" --on "qemu:$cpu"
done
for cpu in cortex-m4 cortex-m0plus; do
  cargo run --locked -q -p microcnn-tests --example layer_table -- "$bench_dir/small_cnn.mcnn" "$cpu"
done
rm -rf "$bench_dir"
bash firmware/scripts/sizes.sh

step "all checks passed"
