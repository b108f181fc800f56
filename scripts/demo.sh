#!/usr/bin/env bash
# The main job on built-in data: import a bundled int8 TFLite model, show its
# summary, run its eight samples on the integer engine and compare with TFLite Micro.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/demo}"
mkdir -p "$out"
case_dir=tests/data/vectors/small_cnn_28x28
cargo build --release --locked -p microcnn-tools --bin microcnn
mc=target/release/microcnn
$mc import "$case_dir/model.tflite" -o "$out/small_cnn.mcnn"
$mc summary "$out/small_cnn.mcnn"
$mc infer "$out/small_cnn.mcnn" --input "$case_dir/input.npy" --output "$out/outputs.npy"
if cmp -s <(tail -c 80 "$out/outputs.npy") <(tail -c 80 "$case_dir/expected_tflm.npy"); then
  echo "outputs of all 8 samples are byte-identical to TensorFlow Lite Micro's"
else
  echo "outputs differ from TensorFlow Lite Micro's" >&2
  exit 1
fi
