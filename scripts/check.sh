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

step "tests (unit, property, vectors, robustness, CLI, doctests)"
cargo test --workspace --locked

step "benchmarks compile"
cargo bench --workspace --locked --no-run

step "firmware (placeholder crate, thumbv7em)"
(cd firmware && cargo build --release --locked && cargo clippy --release --locked -- -D warnings)

step "all checks passed"
