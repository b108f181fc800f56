//! Looking at int8 models: running them on the host's copy of the engine ([`run`],
//! through the host kernels of [`fast`]),
//! Keras-like [`summary`] tables, accuracy ([`eval`]) and on-device learning run on
//! the host ([`learn`]).

pub mod eval;
pub mod fast;
pub mod layer_diff;
pub mod learn;
pub mod run;
pub mod summary;
