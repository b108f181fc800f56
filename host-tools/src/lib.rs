//! # microcnn-tools
//!
//! The host side of microcnn, in wings that follow the data flow. Each wing imports
//! only wings **below** it in this list (`tests/layering.rs` checks it), so the list
//! reads bottom-up as "what each step builds on":
//!
//! 1. [`io`]: atomic file writes and `.npy` arrays.
//! 2. [`compile`]: the int8 graph, TFLM's Prepare arithmetic ([`compile::lower`], the
//!    one place for it), the quantization grid shared by PTQ and QAT
//!    ([`compile::grid`]), the arena planner and the `.mcnn` blob writer.
//! 3. [`tflite`]: the TFLite reader and the importer onto the int8 graph.
//! 4. [`data`]: datasets, the one image preprocessing (core's, as on the chip) and
//!    augmentation.
//! 5. [`train`]: f32 networks ([`train::nn`]), architectures and presets, one training
//!    step (with optional fake quantization), the training loop, checkpoints, the
//!    training record and its plots, transfer learning and the zoo.
//! 6. [`quantize`]: post-training quantization and the quantization-aware training
//!    driver.
//! 7. [`inspect`]: running a blob on the integer engine, summaries and evaluation.
//! 8. [`deploy`]: export as source, the QEMU firmware and flashing through probe-rs.
//!
//! The `microcnn` binary (`src/bin/microcnn/`) sits on top: one `cmd/<verb>.rs` per
//! subcommand, parsing arguments and printing results, never importing another
//! command.

pub mod io;

pub mod compile;

pub mod tflite;

pub mod data;

pub mod train;

pub mod quantize;

pub mod inspect;

pub mod deploy;
