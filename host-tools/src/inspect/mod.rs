//! Looking at int8 models: running them on the host's copy of the engine ([`run`]),
//! Keras-like [`summary`] tables and accuracy ([`eval`]).

pub mod eval;
pub mod layer_diff;
pub mod run;
pub mod summary;
