#!/usr/bin/env bash
# Flash and RAM of the firmware images, and the .text of microcnn-core alone on
# thumbv7em-none-eabihf. Run from anywhere; builds what it measures. Needs binutils'
# `size` and `ar` (any ELF `size` reads ARM objects).
set -euo pipefail
cd "$(dirname "$0")/.."

report() { # ELF name
  size -A "$1" | awk -v name="$2" '
    $1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" || $1 == ".boot" { flash += $2 }
    $1 == ".data" { flash += $2; ram += $2 }
    $1 == ".bss" || $1 == ".uninit" { ram += $2 }
    $1 == ".model" { model = $2 }
    END { printf "%-22s flash %7d B   RAM (static) %7d B   linked model %d B\n", name, flash, ram, model }'
}

cargo build --release --locked -p microcnn-fw-qemu >/dev/null 2>&1
cargo build --release --locked -p microcnn-fw-f411re >/dev/null 2>&1
cargo build --release --locked -p microcnn-fw-qemu --target thumbv6m-none-eabi >/dev/null 2>&1
report target/thumbv7em-none-eabihf/release/microcnn-fw-qemu qemu-mps2-an386
report target/thumbv6m-none-eabi/release/microcnn-fw-qemu qemu-mps2-an385-v6m
report target/thumbv7em-none-eabihf/release/microcnn-fw-f411re nucleo-f411re

for target in thumbv7em-none-eabihf thumbv6m-none-eabi thumbv8m.main-none-eabihf; do
  (cd .. && cargo build -p microcnn-core --release --locked --target "$target" >/dev/null 2>&1)
  work=$(mktemp -d)
  rlib="$PWD/../target/$target/release/libmicrocnn_core.rlib"
  (cd "$work" && ar x "$rlib")
  size -A "$work"/*.o | awk -v t="$target" '$1 ~ /^\.text/ { text += $2 } $1 ~ /^\.rodata/ { ro += $2 }
    END { printf "%-22s .text %7d B   .rodata %6d B   (%s, release, unlinked object)\n", "microcnn-core", text, ro, t }'
  rm -rf "$work"
done
