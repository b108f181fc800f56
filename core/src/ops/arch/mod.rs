//! Per-architecture primitives. Chosen at compile time by `build.rs`
//! (`cfg(microcnn_arm_dsp)`); the portable kernels need none of them.

#[cfg(microcnn_arm_dsp)]
pub mod arm_dsp;
