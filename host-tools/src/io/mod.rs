//! Files and memory: atomic writes ([`fs`]), int8 `.npy` arrays ([`npy`]) and the
//! memory budget checked before large allocations ([`memory`]).

pub mod fs;
pub mod memory;
pub mod npy;
