//! # microcnn-core
//!
//! A `no_std`, allocation-free int8 CNN inference engine whose operators are bit-exact
//! with TensorFlow Lite Micro's reference kernels (double-rounding requantization).
//!
//! A model is a `.mcnn` blob (see `FORMAT.md`) made by the `microcnn` host tool, from
//! a TFLite file (`microcnn import`) or from its own training pipeline. The blob is
//! validated once by [`Model::from_bytes`] and then read in place, so it can live in
//! flash. Activations live in one arena whose size the host planner computed
//! ([`Model::arena_size`]).
//!
//! ```no_run
//! use microcnn_core::{Interpreter, Model};
//! static BLOB: &[u8] = &[]; // include_bytes!("model.mcnn") in a real program
//! let model = Model::from_bytes(BLOB).expect("valid model");
//! let mut arena = [0u8; 8192];
//! let mut net = Interpreter::new(&model, &mut arena).expect("arena large enough");
//! net.input_mut().fill(-128);
//! net.invoke().expect("a validated model runs");
//! let best: heapless::Vec<(u16, i8), 3> = net.top_k();
//! ```
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod crc;
pub mod error;
pub mod format;
pub mod interpreter;
pub mod learn;
pub mod model;
pub mod ops;
pub mod preprocess;
pub mod quant;
pub mod shape;

pub use error::{Error, OpError, Section};
pub use format::OpKind;
pub use interpreter::{top_k, Interpreter, Phase};
pub use model::{Model, OpParams, Operator, TensorInfo};
pub use shape::{Padding, Shape};
