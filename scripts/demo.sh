#!/usr/bin/env bash
# The main job on built-in data: the whole flow on the bundled `digits` dataset.
# Train the 16×16 CNN in f32, quantize it to int8 (calibrated on the training images),
# evaluate both on the held-out test split (the int8 model on the integer engine the
# chip runs), and export it as Rust source, a C header and a raw blob.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/demo}"
rm -rf "$out/digits"
mkdir -p "$out"
cargo build --release --locked -p microcnn-tools --bin microcnn
mc=target/release/microcnn
arch=host-tools/archs/digits.toml

$mc summary "$arch"
$mc train --data digits --arch "$arch" --out "$out/digits" \
  --epochs 20 --batch 32 --lr 0.001 --optimizer adam --seed 0
$mc quantize "$out/digits" --calib digits -o "$out/digits.mcnn"
float_json=$($mc eval "$out/digits" --data digits:test --json)
int8_json=$($mc eval "$out/digits.mcnn" --data digits:test --json)
summary_json=$($mc summary "$out/digits.mcnn" --json)
$mc export "$out/digits.mcnn" --format rust -o "$out/digits_model.rs"
$mc export "$out/digits.mcnn" --format c -o "$out/digits_model.h"
$mc export "$out/digits.mcnn" --format bin -o "$out/digits_model.bin"

python3 - "$float_json" "$int8_json" "$summary_json" <<'PY'
import json, sys
f, q, s = (json.loads(a) for a in sys.argv[1:])
print(f"float accuracy (f32, digits:test): {f['accuracy']:.4f} ({f['correct']}/{f['samples']})")
print(f"int8 accuracy (integer engine):    {q['accuracy']:.4f} ({q['correct']}/{q['samples']})")
print(f"arena: {s['arena_bytes']} bytes, flash: {s['flash_bytes']} bytes")
PY
echo "outputs in $out: digits/ (checkpoint, metrics.csv, curves.png, confusion.png), digits.mcnn, digits_model.{rs,h,bin}"
