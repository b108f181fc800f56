//! Getting a model onto a chip: as Rust or C source ([`export`]), into the QEMU
//! firmware ([`qemu`]) and into a board's model region ([`flash`]).

pub mod export;
pub mod flash;
pub mod qemu;
