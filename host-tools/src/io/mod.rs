//! Files: atomic writes ([`fs`]) and int8 `.npy` arrays ([`npy`]).

pub mod fs;
pub mod npy;
